/* End to end: the outbox reaches suppliers. Real dropshipd processes, real
 * PostgreSQL and the supplier simulator; the simulator's /stats says what
 * arrived, the outbox tables say what dropshipd believes. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/CUnit.h>
#include <jansson.h>

#include "support/harness.h"
#include "support/https.h"
#include "support/shop.h"
#include "support/stranded.h"
#include "support/testdb.h"
#include "support/testsrv.h"
#include "support/wait.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SUP_SECRET "whsec_c2Vjb25kLXNlY3JldC1mb3ItdGVzdHMtMTIzNA=="

static char conninfo[512];
static PGconn *db;
static char dispatch_conf[1024];

/* Starts the simulator serving supplier `code` (seed 7, then the extra
 * flags, NULL-terminated) and adds the supplier with one offer for SKU-<code>. */
static int start_supplier(struct testsrv *s, const char *code, const char *const *flags)
{
	char sup[200];
	snprintf(sup, sizeof sup, "%s=%s", code, SUP_SECRET);
	const char *sups[] = { sup, NULL };
	const char *extra[24] = { "--seed", "7" };
	for (size_t i = 0, n = 2; flags && flags[i] && n < sizeof extra / sizeof extra[0] - 1; i++)
		extra[n++] = flags[i];
	if (testsrv_start_sim(s, sups, extra, 10000) < 0)
		return -1;
	/* The supplier and one offer for SKU-<code>, pointing at this simulator. */
	char endpoint[200], sku[64];
	snprintf(endpoint, sizeof endpoint, "https://127.0.0.1:%d/suppliers/%s/fulfillments", s->port, code);
	snprintf(sku, sizeof sku, "SKU-%s", code);
	const char *v[] = { code, endpoint, sku };
	return testdb_exec(db,
	        "WITH s AS (INSERT INTO suppliers (code, endpoint, secrets) VALUES ($1, $2, ARRAY['" SUP_SECRET "'])"
	        "  RETURNING id)"
	        " INSERT INTO offers (supplier_id, sku, supplier_sku, cost, stock, lead_time_days)"
	        " SELECT id, $3, 'X-' || $3, 1, 1000000, 1 FROM s", 3, v);
}

/* Every request id delivered exactly `times` times (0 = at least once). */
static int by_request_all(json_t *stats, int times, long *count)
{
	const char *k;
	json_t *v;
	int ok = 1;
	*count = 0;
	json_object_foreach(json_object_get(stats, "by_request"), k, v) {
		(*count)++;
		if (times ? json_integer_value(v) != times : json_integer_value(v) < 1)
			ok = 0;
	}
	return ok;
}

static int suite_init(void)
{
	if (testsrv_prepare_db("dropship_dispatch", SECRET, conninfo, sizeof conninfo) < 0)
		return -1;
	db = testdb_connect(conninfo);
	if (!db)
		return -1;
	/* Quick retries so failure tests finish in seconds. */
	snprintf(dispatch_conf, sizeof dispatch_conf,
	         "[dispatch]\nallow_private_endpoints = true\ntls_ca_file = %s/server.crt\n"
	         "timeout_ms = 1500\nbackoff_base_ms = 20\nbackoff_max_ms = 200\nmax_attempts = 40\n",
	         testsrv_tls_dir());
	return 0;
}

static int suite_cleanup(void)
{
	if (db)
		PQfinish(db);
	return 0;
}

struct poster {
	int port;
	const char *sku;
	const char *prefix;
	int from, to;
	int created;
	double total_ms;   /* time spent waiting for answers */
};

/* Mean answer time of the last post_orders call, for the log (never asserted). */
static double last_mean_ms;

static void *post_range(void *arg)
{
	struct poster *p = arg;
	struct https_conn c;
	if (https_connect(&c, p->port, 15000) < 0) {
		fprintf(stderr, "%s: cannot connect to port %d\n", p->prefix, p->port);
		return NULL;
	}
	for (int i = p->from; i < p->to; i++) {
		char id[64], hdrs[1024], msg[64];
		snprintf(id, sizeof id, "%s-%d", p->prefix, i);
		const struct shop_line line[] = { { p->sku, 1, NULL, NULL } };
		char *body = shop_order_json(id, "US", line, 1, false);
		snprintf(msg, sizeof msg, "msg_%s_%d", p->prefix, i);
		https_webhook_headers(SECRET, msg, (int64_t)time(NULL), body, hdrs, sizeof hdrs);
		struct https_resp r;
		double t0 = wait_now_ms();
		int rc = https_request(&c, "POST", "/v1/stores/shop/webhooks", hdrs, body, strlen(body), &r);
		p->total_ms += wait_now_ms() - t0;
		free(body);
		if (rc < 0) {
			https_close(&c);
			if (https_connect(&c, p->port, 15000) < 0) {
				fprintf(stderr, "%s: cannot reconnect to port %d\n", p->prefix, p->port);
				return NULL;
			}
			i--; /* the server may close a keep-alive connection; send again */
			continue;
		}
		p->created += r.status == 202;
		if (r.status != 202)
			fprintf(stderr, "order %s-%d: %d %s\n", p->prefix, i, r.status, r.body ? r.body : "");
		https_resp_free(&r);
	}
	https_close(&c);
	return NULL;
}

/* Posts n one-line orders for sku over `threads` keep-alive connections,
 * alternating between the given servers. Returns how many got 202. */
static int post_orders(const int *ports, int nports, const char *sku, const char *prefix, int n, int threads)
{
	pthread_t th[16];
	struct poster ps[16];
	for (int t = 0; t < threads; t++) {
		ps[t] = (struct poster){ ports[t % nports], sku, prefix, n * t / threads, n * (t + 1) / threads, 0, 0 };
		pthread_create(&th[t], NULL, post_range, &ps[t]);
	}
	int created = 0;
	double total = 0;
	for (int t = 0; t < threads; t++) {
		pthread_join(th[t], NULL);
		created += ps[t].created;
		total += ps[t].total_ms;
	}
	last_mean_ms = n ? total / n : 0;
	return created;
}

static long outbox_count(const char *code, const char *state)
{
	const char *v[] = { code, state };
	return testdb_count(db, "SELECT count(*) FROM outbox o JOIN suppliers s ON s.id = o.supplier_id"
	                        " WHERE s.code = $1 AND o.state = $2", 2, v);
}

/* True when no outbox message for supplier code arg is pending. */
static bool settled(void *arg)
{
	return outbox_count(arg, "pending") == 0;
}

/* Waits until no outbox message for the supplier is pending. */
static bool wait_settled(const char *code, int timeout_ms)
{
	return wait_until(settled, (void *)code, timeout_ms, 200);
}

/* True once a message of supplier code arg has been delivered. */
static bool some_delivered(void *arg)
{
	return outbox_count(arg, "delivered") > 0;
}

/* 1,000 orders, nothing failing: each request arrives exactly once. */
static void test_exactly_once_when_nothing_fails(void)
{
	struct testsrv s;
	CU_ASSERT_EQUAL_FATAL(start_supplier(&s, "acme", NULL), 0);
	struct testsrv d;
	CU_ASSERT_EQUAL_FATAL(testsrv_start(&d, conninfo, dispatch_conf, 1), 0);
	CU_ASSERT_EQUAL(post_orders(&d.port, 1, "SKU-acme", "ONE", 1000, 8), 1000);
	CU_ASSERT_TRUE(wait_settled("acme", 60000));
	CU_ASSERT_EQUAL(outbox_count("acme", "delivered"), 1000);
	json_t *st = testsrv_sim_stats(s.port);
	long n;
	CU_ASSERT_TRUE(by_request_all(st, 1, &n));
	CU_ASSERT_EQUAL(n, 1000);
	CU_ASSERT_EQUAL(testsrv_sim_stat(st, "duplicates"), 0);
	CU_ASSERT_EQUAL(testsrv_sim_stat(st, "requests"), 1000);
	/* Every request is `sent`, every attempt recorded. */
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM fulfillment_requests r JOIN suppliers s"
	                                 " ON s.id = r.supplier_id WHERE s.code = 'acme' AND r.status = 'sent'",
	                             0, NULL), 1000);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM outbox_attempts a JOIN outbox o ON o.id = a.outbox_id"
	                                 " JOIN suppliers s ON s.id = o.supplier_id WHERE s.code = 'acme'",
	                             0, NULL), 1000);
	json_decref(st);
	CU_ASSERT_EQUAL(testsrv_stop(&d, SIGTERM), 0);
	testsrv_stop_sim(&s, 5000);
}

/* 30% of attempts fail: everything still arrives; repeats only as retries
 * (the simulator fails them before accepting, so none is a duplicate). */
static void test_retries_deliver_everything(void)
{
	struct testsrv s;
	const char *flags[] = { "--fail-rate", "0.3", NULL };
	CU_ASSERT_EQUAL_FATAL(start_supplier(&s, "bolt", flags), 0);
	struct testsrv d;
	CU_ASSERT_EQUAL_FATAL(testsrv_start(&d, conninfo, dispatch_conf, 1), 0);
	CU_ASSERT_EQUAL(post_orders(&d.port, 1, "SKU-bolt", "FLAKY", 300, 4), 300);
	CU_ASSERT_TRUE(wait_settled("bolt", 60000));
	CU_ASSERT_EQUAL(outbox_count("bolt", "delivered"), 300);
	json_t *st = testsrv_sim_stats(s.port);
	long n;
	CU_ASSERT_TRUE(by_request_all(st, 1, &n));
	CU_ASSERT_EQUAL(n, 300);
	CU_ASSERT_TRUE(testsrv_sim_stat(st, "failed_injected") > 0);
	CU_ASSERT_EQUAL(testsrv_sim_stat(st, "requests"), 300 + testsrv_sim_stat(st, "failed_injected"));
	/* dropshipd's record agrees: one attempt row per attempt, retries used the same key. */
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM outbox_attempts a JOIN outbox o ON o.id = a.outbox_id"
	                                 " JOIN suppliers s ON s.id = o.supplier_id WHERE s.code = 'bolt'", 0, NULL),
	                300 + testsrv_sim_stat(st, "failed_injected"));
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM outbox o JOIN suppliers s ON s.id = o.supplier_id"
	                                 " WHERE s.code = 'bolt' AND o.idempotency_key <> o.request_id::text", 0, NULL), 0);
	json_decref(st);
	CU_ASSERT_EQUAL(testsrv_stop(&d, SIGTERM), 0);
	testsrv_stop_sim(&s, 5000);
}

/* dropshipd killed with SIGKILL while sending, then restarted: nothing
 * lost, nothing stuck (expired leases are reclaimed). */
static void test_sigkill_mid_dispatch(void)
{
	struct testsrv s;
	const char *flags[] = { "--slow-ms", "200", NULL };
	CU_ASSERT_EQUAL_FATAL(start_supplier(&s, "cask", flags), 0);
	struct testsrv d;
	CU_ASSERT_EQUAL_FATAL(testsrv_start(&d, conninfo, dispatch_conf, 1), 0);
	CU_ASSERT_EQUAL(post_orders(&d.port, 1, "SKU-cask", "KILL", 200, 4), 200);
	/* Kill while some are delivered and some are not. */
	CU_ASSERT_TRUE(wait_until(some_delivered, "cask", 5000, 50));
	CU_ASSERT_EQUAL(testsrv_stop(&d, SIGKILL), 128 + SIGKILL);
	CU_ASSERT_TRUE(outbox_count("cask", "pending") > 0);
	CU_ASSERT_EQUAL_FATAL(testsrv_start(&d, conninfo, dispatch_conf, 1), 0);
	CU_ASSERT_TRUE(wait_settled("cask", 60000));
	CU_ASSERT_EQUAL(outbox_count("cask", "delivered"), 200);
	json_t *st = testsrv_sim_stats(s.port);
	long n;
	CU_ASSERT_TRUE(by_request_all(st, 0, &n)); /* at least once */
	CU_ASSERT_EQUAL(n, 200);
	json_decref(st);
	CU_ASSERT_EQUAL(testsrv_stop(&d, SIGTERM), 0);
	testsrv_stop_sim(&s, 5000);
}

/* Two dropshipd processes on one database: leases keep them from sending
 * one message twice. */
static void test_two_processes(void)
{
	struct testsrv s;
	CU_ASSERT_EQUAL_FATAL(start_supplier(&s, "dusk", NULL), 0);
	struct testsrv d1, d2;
	CU_ASSERT_EQUAL_FATAL(testsrv_start(&d1, conninfo, dispatch_conf, 1), 0);
	CU_ASSERT_EQUAL_FATAL(testsrv_start(&d2, conninfo, dispatch_conf, 1), 0);
	int ports[2] = { d1.port, d2.port };
	CU_ASSERT_EQUAL(post_orders(ports, 2, "SKU-dusk", "TWO", 600, 8), 600);
	CU_ASSERT_TRUE(wait_settled("dusk", 60000));
	json_t *st = testsrv_sim_stats(s.port);
	long n;
	CU_ASSERT_TRUE(by_request_all(st, 1, &n));
	CU_ASSERT_EQUAL(n, 600);
	CU_ASSERT_EQUAL(testsrv_sim_stat(st, "duplicates"), 0);
	json_decref(st);
	CU_ASSERT_EQUAL(testsrv_stop(&d1, SIGTERM), 0);
	CU_ASSERT_EQUAL(testsrv_stop(&d2, SIGTERM), 0);
	testsrv_stop_sim(&s, 5000);
}

/* True once every request of supplier `code` has failed (the failure is
 * applied in its own transaction, right after the attempt is recorded). */
static bool requests_failed(void *arg)
{
	const char *v[1] = { arg };
	return testdb_count(db, "SELECT count(*) FROM fulfillment_requests r JOIN suppliers s"
	                        " ON s.id = r.supplier_id WHERE s.code = $1 AND r.status <> 'failed'", 1, v) == 0;
}

/* A 4xx other than 408/429 fails at once, response kept; a supplier that
 * never answers leaves intake unaffected and its messages pending. */
static void test_permanent_failure_and_hanging_supplier(void)
{
	struct testsrv bad, hang;
	const char *f400[] = { "--status", "400", NULL };
	const char *fhang[] = { "--hang-rate", "1", NULL };
	CU_ASSERT_EQUAL_FATAL(start_supplier(&bad, "eave", f400), 0);
	CU_ASSERT_EQUAL_FATAL(start_supplier(&hang, "fogg", fhang), 0);
	struct testsrv d;
	CU_ASSERT_EQUAL_FATAL(testsrv_start(&d, conninfo, dispatch_conf, 1), 0);
	CU_ASSERT_EQUAL(post_orders(&d.port, 1, "SKU-eave", "BAD", 5, 1), 5);
	CU_ASSERT_EQUAL(post_orders(&d.port, 1, "SKU-fogg", "HANG", 5, 1), 5);
	CU_ASSERT_TRUE(wait_settled("eave", 20000));
	CU_ASSERT_EQUAL(outbox_count("eave", "failed"), 5);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM outbox o JOIN suppliers s ON s.id = o.supplier_id"
	                                 " WHERE s.code = 'eave' AND o.attempts = 1 AND o.last_status = 400"
	                                 " AND o.last_response IS NOT NULL", 0, NULL), 5);
	CU_ASSERT_TRUE(wait_until(requests_failed, "eave", 10000, 100));
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM fulfillment_requests r JOIN suppliers s"
	                                 " ON s.id = r.supplier_id WHERE s.code = 'eave' AND r.status = 'failed'",
	                             0, NULL), 5);
	/* Intake still answers while the hanging supplier holds connections.
	 * The means are printed for the record; timing is never asserted. */
	CU_ASSERT_EQUAL(post_orders(&d.port, 1, "SKU-eave", "BASELINE", 200, 1), 200);
	double baseline = last_mean_ms;
	CU_ASSERT_EQUAL(post_orders(&d.port, 1, "SKU-fogg", "MOREHANG", 200, 2), 200);
	CU_ASSERT_EQUAL(post_orders(&d.port, 1, "SKU-eave", "WHILEHANG", 200, 1), 200);
	printf("\nintake mean latency: %.2f ms without hanging deliveries, %.2f ms with %ld in flight\n",
	       baseline, last_mean_ms, testdb_count(db, "SELECT count(*) FROM outbox o JOIN suppliers s"
	       " ON s.id = o.supplier_id WHERE s.code = 'fogg' AND o.lease_token IS NOT NULL", 0, NULL));
	CU_ASSERT_EQUAL(outbox_count("fogg", "delivered"), 0);
	CU_ASSERT_EQUAL(testsrv_stop(&d, SIGTERM), 0);
	testsrv_stop_sim(&bad, 5000);
	testsrv_stop_sim(&hang, 5000);
}

/* Without allow_private_endpoints a loopback endpoint is refused (docs/dispatch.md,
 * Outbound HTTPS): the message fails at once and nothing reaches the simulator. */
static void test_private_endpoint_refused(void)
{
	struct testsrv s;
	CU_ASSERT_EQUAL_FATAL(start_supplier(&s, "gate", NULL), 0);
	char conf[512];
	snprintf(conf, sizeof conf, "[dispatch]\ntls_ca_file = %s/server.crt\n", testsrv_tls_dir());
	struct testsrv d;
	CU_ASSERT_EQUAL_FATAL(testsrv_start(&d, conninfo, conf, 1), 0);
	CU_ASSERT_EQUAL(post_orders(&d.port, 1, "SKU-gate", "GATE", 3, 1), 3);
	CU_ASSERT_TRUE(wait_settled("gate", 20000));
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM outbox o JOIN suppliers s ON s.id = o.supplier_id"
	                                 " WHERE s.code = 'gate' AND o.state = 'failed' AND o.attempts = 1"
	                                 " AND o.last_error LIKE '%private or loopback address%'", 0, NULL), 3);
	json_t *st = testsrv_sim_stats(s.port);
	CU_ASSERT_EQUAL(testsrv_sim_stat(st, "requests"), 0);
	json_decref(st);
	CU_ASSERT_EQUAL(testsrv_stop(&d, SIGTERM), 0);
	testsrv_stop_sim(&s, 5000);
}

/* Last: whatever the tests above left behind is either on its way or
 * listed by reporting.stranded_orders. */
static void test_nothing_stranded_unseen(void)
{
	stranded_check(db);
}

int main(void)
{
	static const struct harness_test tests[] = {
		{ "1,000 orders, nothing failing: each request delivered exactly once", test_exactly_once_when_nothing_fails },
		{ "30% of attempts failing: every request delivered, repeats only as retries", test_retries_deliver_everything },
		{ "SIGKILL mid-dispatch and restart: nothing lost, nothing stuck", test_sigkill_mid_dispatch },
		{ "two dropshipd processes on one database: no request sent twice", test_two_processes },
		{ "4xx fails at once; a hanging supplier does not block intake", test_permanent_failure_and_hanging_supplier },
		{ "a loopback endpoint is refused unless allowed", test_private_endpoint_refused },
		{ "no order is stuck where stranded_orders does not show it", test_nothing_stranded_unseen },
		{ NULL, NULL },
	};
	return harness_main("dispatch", suite_init, suite_cleanup, tests);
}
