/* End to end: three dropshipd on one database behind HAProxy, run with
 * deploy/haproxy/haproxy.cfg (TLS passthrough, HTTPS checks on /readyz).
 *
 * A client thread sends signed orders through HAProxy, retrying on a
 * connection error or a 503 (a retry of a committed order is a duplicate by
 * its id, answered 200). The supplier simulator holds each answer to a
 * fulfillment request for 1.5 s, so that nodes hold claimed messages at any
 * moment, and calls back (accepted, shipped) through HAProxy too. Mid-run
 * node1 is killed with SIGKILL and node2 restarted (SIGTERM, then started
 * again on its port). Right before each, a few orders go straight to that
 * node and the test waits until the supplier has their fulfillment
 * requests: the node, which sends what it commits at once, then most likely
 * holds claims whose answers have not come back.
 *
 * Outcomes: every order that got a 2xx is in the database; every order has
 * one fulfillment request, delivered (the outbox drains) and taken once as
 * new by the supplier (a dead node's claims are sent again after their
 * lease, with the same Idempotency-Key: the simulator's repeats); every
 * callback applied once. The figures go to the test log. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/CUnit.h>
#include <jansson.h>

#include "support/harness.h"
#include "support/https.h"
#include "support/nodes.h"
#include "support/shop.h"
#include "support/testdb.h"
#include "support/testsrv.h"
#include "support/wait.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SUP_SECRET "whsec_c2Vjb25kLXNlY3JldC1mb3ItdGVzdHMtMTIzNA=="
#define NODES 3
#define KILLED 0              /* node1: SIGKILL */
#define RESTARTED 1           /* node2: SIGTERM, then started again */
#define LOAD_MAX 4000         /* orders at most, whatever happens */
#define LOAD_TRIES 100        /* attempts per order, 100 ms apart */
#define LOAD_PACE_MS 20       /* between two orders */
#define PHASE_ORDERS 60       /* acknowledged orders between two events */
#define PROBES 5              /* orders straight to a node before its kill or restart */

static char conninfo[512];
static PGconn *db;
static struct nodes cluster;
static struct testsrv sim;

/* The storefront: one thread, one order at a time. Counters are read by
 * the main thread while it runs; acked_id only after it is joined. */
static struct load {
	pthread_t thread;
	atomic_bool stop;
	atomic_long sent;       /* distinct orders tried */
	atomic_long acked;      /* orders answered 2xx */
	atomic_long attempts;   /* HTTP attempts, retries included */
	atomic_long retried;    /* attempts that met a connection error or a 503 */
	atomic_long refused;    /* orders answered something else: none expected */
	atomic_long gave_up;    /* orders still unanswered after LOAD_TRIES */
	bool acked_id[LOAD_MAX];
} load;
static bool load_running;

/* Figures measured by the scenario, checked and printed by later tests. */
static struct {
	char kill_at[64];           /* the database's clock at the kill */
	char probe[2][PROBES][64];  /* request ids in flight at the kill and at the SIGTERM */
	int probes;                 /* orders acknowledged straight by a node */
	int restart_rc;             /* node2's exit status after SIGTERM */
	double drain_ms;            /* from the end of the load to a drained outbox */
	bool drained;
} run;

static void order_id(char *buf, size_t cap, long i)
{
	snprintf(buf, cap, "NODES-%05ld", i);
}

/* POSTs a one-line order to port, signed now. Returns the status, 0 when
 * no answer was read. */
static int post_order(int port, const char *ext_id)
{
	const struct shop_line lines[] = { { "NODE-SKU", 1, NULL, NULL } };
	char *body = shop_order_json(ext_id, "US", lines, 1, false);
	struct https_resp r;
	int status = shop_post(port, "shop", SECRET, (int64_t)time(NULL), body, &r) == 0 ? r.status : 0;
	https_resp_free(&r);
	free(body);
	return status;
}

static void *load_main(void *arg)
{
	(void)arg;
	for (long i = 0; i < LOAD_MAX && !atomic_load(&load.stop); i++) {
		char id[32];
		order_id(id, sizeof id, i);
		atomic_fetch_add(&load.sent, 1);
		int tries = 0, status = 0;
		for (; tries < LOAD_TRIES; tries++) {
			atomic_fetch_add(&load.attempts, 1);
			status = post_order(cluster.port, id);
			if (status != 0 && status != 503)
				break;
			atomic_fetch_add(&load.retried, 1);
			wait_ms(100);
		}
		if (status >= 200 && status < 300) {
			load.acked_id[i] = true;
			atomic_fetch_add(&load.acked, 1);
		} else if (tries == LOAD_TRIES) {
			atomic_fetch_add(&load.gave_up, 1);
		} else {
			fprintf(stderr, "order %s answered %d\n", id, status);
			atomic_fetch_add(&load.refused, 1);
		}
		wait_ms(LOAD_PACE_MS);
	}
	return NULL;
}

static int suite_init(void)
{
	const char *tls = testsrv_tls_dir();
	char cert[300], cb_url[64], conf[600], port[16];
	snprintf(cert, sizeof cert, "%s/server.crt", tls);
	/* A short dispatch timeout: a dead node's leases expire 3 + 5 s after its claim. */
	snprintf(conf, sizeof conf, "[dispatch]\nallow_private_endpoints = true\ntls_ca_file = %s\n"
	         "timeout_ms = 3000\n", cert);
	if (testsrv_prepare_db("dropship_nodes", SECRET, conninfo, sizeof conninfo) < 0 ||
	    !(db = testdb_connect(conninfo)) || nodes_start(&cluster, NODES, conninfo, conf) < 0)
		return -1;
	snprintf(cb_url, sizeof cb_url, "https://127.0.0.1:%d", cluster.port);
	const char *sups[] = { "acme=" SUP_SECRET, NULL };
	/* Delivered never comes during the test: accepted and shipped are the callbacks. */
	const char *extra[] = { "--callback-url", cb_url, "--ca-file", cert, "--slow-ms", "1500",
		                "--accept-after-ms", "200", "--ship-after-ms", "1000",
		                "--deliver-after-ms", "86400000", "--seed", "7", NULL };
	if (testsrv_start_sim(&sim, sups, extra, 15000) < 0)
		return -1;
	snprintf(port, sizeof port, "%d", sim.port);
	const char *v[] = { port };
	return testdb_exec(db,
	        "WITH s AS (INSERT INTO suppliers (code, endpoint, secrets) VALUES ('acme',"
	        "   'https://127.0.0.1:' || $1 || '/suppliers/acme/fulfillments', ARRAY['" SUP_SECRET "'])"
	        "   RETURNING id)"
	        " INSERT INTO offers (supplier_id, sku, supplier_sku, cost, stock, lead_time_days)"
	        " SELECT id, 'NODE-SKU', 'AC-NODE', 1.00, 1000000, 1 FROM s", 1, v);
}

static int suite_cleanup(void)
{
	if (load_running) {
		atomic_store(&load.stop, true);
		pthread_join(load.thread, NULL);
	}
	nodes_stop(&cluster);
	testsrv_stop_sim(&sim, 10000);
	if (db)
		PQfinish(db);
	return 0;
}

/* What HAProxy's statistics should say of a node. */
struct hastate {
	int node;
	const char *status, *check;   /* check NULL: any */
	char seen_status[32], seen_check[32];
};

static bool haproxy_says(void *arg)
{
	struct hastate *h = arg;
	return nodes_haproxy_state(&cluster, h->node, h->seen_status, sizeof h->seen_status, h->seen_check,
	                           sizeof h->seen_check) == 0 &&
	       strcmp(h->seen_status, h->status) == 0 && (!h->check || strcmp(h->seen_check, h->check) == 0);
}

static bool wait_haproxy(int node, const char *status, const char *check)
{
	struct hastate h = { node, status, check, "", "" };
	bool ok = wait_until(haproxy_says, &h, 30000, 250);
	if (!ok)
		printf("    HAProxy says node%d is %s (%s), not %s (%s)\n", node + 1, h.seen_status, h.seen_check,
		       status, check ? check : "any check");
	return ok;
}

static void test_haproxy_checks_every_node(void)
{
	/* L7OK: the HTTPS GET /readyz of the example's check answered 200 on each node. */
	for (int i = 0; i < NODES; i++)
		CU_ASSERT(wait_haproxy(i, "UP", "L7OK"));
}

static bool acked_reached(void *arg)
{
	return atomic_load(&load.acked) >= *(long *)arg;
}

/* Waits until PHASE_ORDERS more orders are acknowledged. */
static bool more_orders(void)
{
	long want = atomic_load(&load.acked) + PHASE_ORDERS;
	return wait_until(acked_reached, &want, 60000, 50);
}

static const char *const order_needles[] = { "msg=\"request\"", "path=\"/v1/stores/shop/webhooks\"", "status=20",
	                                     NULL };

static bool took_orders(void *arg)
{
	return nodes_log_count(arg, order_needles) > 0;
}

static long db_count(const char *sql)
{
	return testdb_count(db, sql, 0, NULL);
}

/* Everything settled: no message waits, the supplier took every request
 * once as new and its callbacks (accepted, shipped) were all answered. */
static bool drained(void *arg)
{
	(void)arg;
	if (db_count("SELECT count(*) FROM outbox WHERE state = 'pending'") != 0)
		return false;
	json_t *st = testsrv_sim_stats(sim.port);
	long accepted = testsrv_sim_stat(st, "accepted");
	long settled = testsrv_sim_stat(st, "callbacks_sent") + testsrv_sim_stat(st, "callbacks_failed");
	json_decref(st);
	return accepted == db_count("SELECT count(*) FROM fulfillment_requests") && settled == 2 * accepted;
}

/* The fulfillment request the simulator was waited for. */
struct sim_has {
	const char *request_id;
	long times;
};

static bool sim_received(void *arg)
{
	struct sim_has *h = arg;
	json_t *st = testsrv_sim_stats(sim.port);
	json_t *n = json_object_get(json_object_get(st, "by_request"), h->request_id);
	h->times = json_is_integer(n) ? (long)json_integer_value(n) : 0;
	json_decref(st);
	return h->times > 0;
}

/* Sends PROBES orders straight to node i, then waits until the simulator
 * has received their fulfillment requests (and holds the answers back).
 * Keeps the request ids in ids. */
static bool probe_in_flight(int i, const char *tag, char ids[PROBES][64])
{
	bool ok = true;
	for (int k = 0; k < PROBES && ok; k++) {
		char ext_id[32];
		snprintf(ext_id, sizeof ext_id, "PROBE-%s-%d", tag, k + 1);
		ok = post_order(cluster.node[i].port, ext_id) == 202;
		run.probes += ok;
		const char *v[] = { ext_id };
		char *id = ok ? testdb_value(db, "SELECT r.id::text FROM fulfillment_requests r JOIN orders o"
		                                 " ON o.store_id = r.store_id AND o.id = r.order_id"
		                                 " WHERE o.external_id = $1", 1, v) : NULL;
		snprintf(ids[k], sizeof ids[k], "%s", id ? id : "");
		ok = id != NULL;
		free(id);
	}
	for (int k = 0; k < PROBES && ok; k++) {
		struct sim_has h = { ids[k], 0 };
		ok = wait_until(sim_received, &h, 10000, 10);
	}
	return ok;
}

static void test_kill_and_restart_under_load(void)
{
	CU_ASSERT_FATAL(pthread_create(&load.thread, NULL, load_main, NULL) == 0);
	load_running = true;
	CU_ASSERT_FATAL(more_orders());

	CU_ASSERT(probe_in_flight(KILLED, "KILL", run.probe[0]));
	char *now = testdb_value(db, "SELECT now()::text", 0, NULL);
	snprintf(run.kill_at, sizeof run.kill_at, "%s", now ? now : "");
	free(now);
	CU_ASSERT_EQUAL(nodes_stop_node(&cluster, KILLED, SIGKILL), 128 + SIGKILL);
	CU_ASSERT(wait_haproxy(KILLED, "DOWN", NULL));
	CU_ASSERT_FATAL(more_orders());

	CU_ASSERT(probe_in_flight(RESTARTED, "TERM", run.probe[1]));
	run.restart_rc = nodes_stop_node(&cluster, RESTARTED, SIGTERM);
	CU_ASSERT_EQUAL(run.restart_rc, 0);
	CU_ASSERT_FATAL(nodes_start_node(&cluster, RESTARTED) == 0);
	CU_ASSERT(wait_haproxy(RESTARTED, "UP", "L7OK"));
	/* Back in rotation: the new process takes orders through HAProxy. */
	CU_ASSERT(wait_until(took_orders, cluster.node[RESTARTED].log, 60000, 200));
	CU_ASSERT(more_orders());

	atomic_store(&load.stop, true);
	pthread_join(load.thread, NULL);
	load_running = false;
	double t0 = wait_now_ms();
	run.drained = wait_until(drained, NULL, 90000, 250);
	run.drain_ms = wait_now_ms() - t0;
	CU_ASSERT(run.drained);
}

/* "{a,b,...}": the acknowledged order ids as a text[] literal (malloc'd). */
static char *acked_array(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	CU_ASSERT_FATAL(f != NULL);
	fputc('{', f);
	for (long i = 0, n = 0; i < atomic_load(&load.sent); i++) {
		char id[32];
		order_id(id, sizeof id, i);
		if (load.acked_id[i])
			fprintf(f, "%s%s", n++ ? "," : "", id);
	}
	fputc('}', f);
	fclose(f);
	return buf;
}

static void test_no_acknowledged_order_lost(void)
{
	char *ids = acked_array();
	const char *v[] = { ids };
	long acked = atomic_load(&load.acked);
	long found = testdb_count(db, "SELECT count(*) FROM orders WHERE external_id = ANY($1::text[])", 1, v);
	long in_db = db_count("SELECT count(*) FROM orders");
	printf("\n    orders: sent %ld through HAProxy (and %d straight to a node), acknowledged %ld,"
	       " in the database %ld, lost %ld\n"
	       "    client: %ld attempts, %ld met a connection error or 503, %ld refused, %ld given up\n",
	       atomic_load(&load.sent), run.probes, acked, in_db, acked - found, atomic_load(&load.attempts),
	       atomic_load(&load.retried), atomic_load(&load.refused), atomic_load(&load.gave_up));
	CU_ASSERT(acked >= 3 * PHASE_ORDERS);
	CU_ASSERT_EQUAL(found, acked);
	CU_ASSERT_EQUAL(atomic_load(&load.refused), 0);
	CU_ASSERT_EQUAL(atomic_load(&load.gave_up), 0);
	/* Nothing in the database the store did not send, and no order twice. */
	CU_ASSERT_EQUAL(in_db, acked + run.probes);
	free(ids);
}

/* The simulator's view of the fulfillment requests. */
struct sim_view {
	long keys;         /* distinct Idempotency-Keys (request ids) taken */
	long deliveries;   /* fulfillment.requested received and answered 2xx, repeats included */
	long repeated;     /* keys received more than once */
	char *keys_array;  /* "{id,...}" (malloc'd) */
};

static void sim_view(const json_t *stats, struct sim_view *v)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	CU_ASSERT_FATAL(f != NULL);
	const char *key;
	json_t *n;
	memset(v, 0, sizeof *v);
	fputc('{', f);
	json_object_foreach(json_object_get(stats, "by_request"), key, n) {
		fprintf(f, "%s%s", v->keys++ ? "," : "", key);
		v->deliveries += (long)json_integer_value(n);
		v->repeated += json_integer_value(n) > 1;
	}
	fputc('}', f);
	fclose(f);
	v->keys_array = buf;
}

/* Claims whose attempt was never recorded (their holder died mid-send),
 * of messages written before ($2 = 'f') or after ($2 = 't') the kill. */
#define ORPHANS "FROM outbox o WHERE o.attempts > (SELECT count(*) FROM outbox_attempts a" \
	" WHERE a.outbox_id = o.id) AND (o.created_at > $1::timestamptz) = $2::boolean"

static long orphans(const char *after_kill)
{
	const char *v[] = { run.kill_at, after_kill };
	return testdb_count(db, "SELECT count(*) " ORPHANS, 2, v);
}

/* "n,n,...": how many times the simulator received each of ids. */
static const char *probe_counts(const json_t *by_request, char ids[PROBES][64], char *buf, size_t cap)
{
	size_t len = 0;
	buf[0] = '\0';
	for (int k = 0; k < PROBES && len < cap; k++)
		len += (size_t)snprintf(buf + len, cap - len, "%s%lld", k ? "," : "",
		                        json_integer_value(json_object_get(by_request, ids[k])));
	return buf;
}

static void test_every_order_forwarded_once(void)
{
	CU_ASSERT_FATAL(run.drained);
	json_t *st = testsrv_sim_stats(sim.port);
	CU_ASSERT_FATAL(st != NULL);
	struct sim_view sv;
	sim_view(st, &sv);
	const char *v[] = { sv.keys_array }, *k[] = { run.kill_at, "f" };
	long requests = db_count("SELECT count(*) FROM fulfillment_requests");
	long known = testdb_count(db, "SELECT count(*) FROM fulfillment_requests WHERE id::text = ANY($1::text[])",
	                          1, v);
	long by_kill = orphans("f"), by_restart = orphans("t");
	/* How long the killed node's claims waited: their lease, then a poll. */
	char *taken_over = testdb_value(db, "SELECT round(extract(epoch FROM max(o.delivered_at) - $1::timestamptz)"
	                                    " * 1000)::text " ORPHANS, 2, k);
	json_t *by = json_object_get(st, "by_request");
	char kc[64], tc[64];
	printf("\n    forwarded: %ld fulfillment requests; outbox %ld delivered, %ld pending, %ld failed\n"
	       "    supplier: %ld deliveries (%ld requests), %ld distinct keys, %ld repeats answered 200"
	       " (%ld keys more than once), taken twice as new: %ld\n"
	       "    claims left by the SIGKILL: %ld, delivered again by %s ms after it;"
	       " left by the SIGTERM: %ld\n"
	       "    orders sent straight to a node, delivered (times each): before the SIGKILL %s;"
	       " before the SIGTERM %s\n"
	       "    drained %.0f ms after the load ended\n",
	       requests, db_count("SELECT count(*) FROM outbox WHERE state = 'delivered'"),
	       db_count("SELECT count(*) FROM outbox WHERE state = 'pending'"),
	       db_count("SELECT count(*) FROM outbox WHERE state = 'failed'"), sv.deliveries,
	       testsrv_sim_stat(st, "requests"), sv.keys, testsrv_sim_stat(st, "duplicates"), sv.repeated,
	       testsrv_sim_stat(st, "accepted") - sv.keys, by_kill, taken_over ? taken_over : "-", by_restart,
	       probe_counts(by, run.probe[0], kc, sizeof kc), probe_counts(by, run.probe[1], tc, sizeof tc),
	       run.drain_ms);
	/* One request per order, each delivered, each key taken as new once. */
	CU_ASSERT_EQUAL(requests, db_count("SELECT count(*) FROM orders"));
	CU_ASSERT_EQUAL(db_count("SELECT count(*) FROM orders o WHERE (SELECT count(*) FROM fulfillment_requests r"
	                         " WHERE r.store_id = o.store_id AND r.order_id = o.id) <> 1"), 0);
	CU_ASSERT_EQUAL(db_count("SELECT count(*) FROM outbox WHERE state <> 'delivered'"), 0);
	CU_ASSERT_EQUAL(sv.keys, requests);
	CU_ASSERT_EQUAL(known, requests);
	CU_ASSERT_EQUAL(testsrv_sim_stat(st, "accepted"), sv.keys);
	CU_ASSERT_EQUAL(sv.deliveries, sv.keys + testsrv_sim_stat(st, "duplicates"));
	/* The kill did leave claims, and another node sent them after the lease;
	 * the stopped node waited for the answers of what it was sending. */
	CU_ASSERT(by_kill >= 1);
	CU_ASSERT_EQUAL(by_restart, 0);
	free(taken_over);
	free(sv.keys_array);
	json_decref(st);
}

static void test_every_callback_applied_once(void)
{
	CU_ASSERT_FATAL(run.drained);
	json_t *st = testsrv_sim_stats(sim.port);
	CU_ASSERT_FATAL(st != NULL);
	long requests = db_count("SELECT count(*) FROM fulfillment_requests");
	long applied = db_count("SELECT count(*) FROM request_events WHERE type IN"
	                        " ('fulfillment.accepted', 'fulfillment.shipped')");
	printf("\n    callbacks: %ld sent (%ld attempts failed and were retried, %ld given up), %ld applied;"
	       " requests shipped %ld of %ld\n",
	       testsrv_sim_stat(st, "callbacks_sent"), testsrv_sim_stat(st, "callbacks_retried"),
	       testsrv_sim_stat(st, "callbacks_failed"), applied,
	       db_count("SELECT count(*) FROM fulfillment_requests WHERE status = 'shipped'"), requests);
	CU_ASSERT_EQUAL(testsrv_sim_stat(st, "callbacks_sent"), 2 * requests);
	CU_ASSERT_EQUAL(testsrv_sim_stat(st, "callbacks_failed"), 0);
	CU_ASSERT_EQUAL(applied, 2 * requests);
	CU_ASSERT_EQUAL(db_count("SELECT count(*) FROM fulfillment_requests WHERE status <> 'shipped'"), 0);
	json_decref(st);
}

static const char *const callback_needles[] = { "msg=\"request\"", "path=\"/v1/suppliers/acme/callbacks\"",
	                                        "status=20", NULL };
static const char *const send_needles[] = { "msg=\"dispatch attempt\"", "outcome=delivered", NULL };

/* Prints one process's share and counts it among those that took orders
 * through HAProxy (straight ones, the probes, left out) and callbacks. */
static void print_share(const char *name, const char *log, long straight, int *with_orders, int *with_callbacks)
{
	long o = nodes_log_count(log, order_needles) - straight, cb = nodes_log_count(log, callback_needles);
	printf("    %-16s orders %5ld (and %ld straight), callbacks %5ld, fulfillment requests sent %5ld\n", name, o,
	       straight, cb, nodes_log_count(log, send_needles));
	*with_orders += o > 0;
	*with_callbacks += cb > 0;
}

static void test_traffic_spread_over_nodes(void)
{
	int with_orders = 0, with_callbacks = 0;
	char log[400], name[32];
	printf("\n    kills 1 (node%d, SIGKILL), restarts 1 (node%d, SIGTERM exit %d, then started again);"
	       " logs in %s\n", KILLED + 1, RESTARTED + 1, run.restart_rc, cluster.dir);
	for (int i = 0; i < NODES; i++)
		for (int s = 1; s <= cluster.starts[i]; s++) {
			snprintf(log, sizeof log, "%s/node%d.%d.log", cluster.dir, i + 1, s);
			snprintf(name, sizeof name, "node%d process %d", i + 1, s);
			/* The probes went to the first process of each node stopped. */
			long straight = s == 1 && (i == KILLED || i == RESTARTED) ? PROBES : 0;
			print_share(name, log, straight, &with_orders, &with_callbacks);
		}
	/* leastconn also counts the simulator's keep-alive connections, so the
	 * share of each node varies from run to run: more than one took orders
	 * and callbacks (the restarted process among them: it was waited for). */
	CU_ASSERT(with_orders >= 2);
	CU_ASSERT(with_callbacks >= 2);
}

int main(void)
{
	static const struct harness_test tests[] = {
		{ "HAProxy's HTTPS checks of /readyz pass on every node", test_haproxy_checks_every_node },
		{ "orders and callbacks through HAProxy while a node is killed and another restarted",
		  test_kill_and_restart_under_load },
		{ "no acknowledged order is lost", test_no_acknowledged_order_lost },
		{ "every order forwarded, no request taken twice as new", test_every_order_forwarded_once },
		{ "every callback applied once", test_every_callback_applied_once },
		{ "orders and callbacks spread over the nodes", test_traffic_spread_over_nodes },
		{ NULL, NULL },
	};
	if (!nodes_haproxy_bin()) {
		printf("test_nodes: SKIPPED: haproxy is not installed (Debian package haproxy; .ci/deps.sh"
		       " installs it)\nRESULT passed=0 failed=0\n");
		return 0;
	}
	return harness_main("nodes", suite_init, suite_cleanup, tests);
}
