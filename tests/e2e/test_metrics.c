/* End to end: /metrics. Where it is served (the admin listener; or, with
 * none, the main one behind the admin token), that every metric is there,
 * and that the numbers follow what really happens: orders and callbacks
 * through the simulator, a failing supplier whose breaker opens and whose
 * messages pile up in the outbox, then drain once it is healthy again, and
 * stranded orders as reporting.stranded_orders counts them. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/CUnit.h>

#include "support/harness.h"
#include "support/https.h"
#include "support/shop.h"
#include "support/testdb.h"
#include "support/testsrv.h"
#include "support/wait.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SUP_SECRET "whsec_c2Vjb25kLXNlY3JldC1mb3ItdGVzdHMtMTIzNA=="
#define TOKEN "metrics-test-token-0123456789"

static char conninfo[512];
static PGconn *db;
static char tls_cert[300];
/* Quick retries and a breaker that opens after 2 failures, for 1.5 s. */
static char dispatch_conf[1024];

/* Every family /metrics has. */
static const char *const families[] = {
	"dropship_build_info", "dropship_workers", "dropship_connections", "dropship_http_requests_total",
	"dropship_orders_total", "dropship_db_unavailable_total", "dropship_connections_shed_total",
	"dropship_connections_refused_total", "dropship_dispatch_attempts_total",
	"dropship_http_request_duration_seconds", "dropship_intake_orders_total", "dropship_callbacks_total",
	"dropship_group_commit_size", "dropship_dispatch_duration_seconds", "dropship_breaker_open",
	"dropship_outbox_pending", "dropship_outbox_oldest_pending_seconds", "dropship_stranded_orders",
	"dropship_backlog_updated_timestamp_seconds", "dropship_db_pool_size", "dropship_db_pool_in_use",
	"dropship_db_pool_waiting", NULL,
};

/* GET /metrics from s's admin listener: the body (caller frees), or NULL. */
static char *scrape(const struct testsrv *s)
{
	struct https_resp r;
	if (https_once(s->admin_port, "GET", "/metrics", NULL, NULL, 0, &r) < 0)
		return NULL;
	char *body = r.status == 200 ? r.body : NULL;
	if (body)
		r.body = NULL;
	https_resp_free(&r);
	return body;
}

/* The value of the sample whose name and labels are series ("name" or
 * "name{a=\"b\"}"), or -1 when text has none. */
static double sample(const char *text, const char *series)
{
	size_t n = strlen(series);
	for (const char *p = text; p && (p = strstr(p, series)) != NULL; p += n)
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

/* One sample of a fresh scrape, or -1. */
static double scrape_sample(const struct testsrv *s, const char *series)
{
	char *t = scrape(s);
	double v = t ? sample(t, series) : -1;
	free(t);
	return v;
}

struct want {
	const struct testsrv *srv;
	const char *series;
	double min, max;      /* holds when min <= value <= max */
	double got;
};

static bool sample_within(void *arg)
{
	struct want *w = arg;
	w->got = scrape_sample(w->srv, w->series);
	return w->got >= w->min && w->got <= w->max;
}

/* Waits up to timeout_ms for series to come within [min, max]; says what
 * it saw when it does not. */
static int wait_sample(const struct testsrv *s, const char *series, double min, double max, int timeout_ms)
{
	struct want w = { s, series, min, max, -1 };
	bool ok = wait_until(sample_within, &w, timeout_ms, 200);
	HARNESS_CHECK(ok, "%s: %g, want %g..%g", series, w.got, min, max);
	return ok;
}

/* Starts the simulator serving supplier code (extra flags NULL-terminated)
 * and points the supplier, made on first use with one offer of SKU-<code>,
 * at it. */
static int start_supplier(struct testsrv *sim, const char *code, const char *const *flags)
{
	char sup[200];
	snprintf(sup, sizeof sup, "%s=%s", code, SUP_SECRET);
	const char *sups[] = { sup, NULL };
	if (testsrv_start_sim(sim, sups, flags, 10000) < 0)
		return -1;
	char endpoint[200];
	snprintf(endpoint, sizeof endpoint, "https://127.0.0.1:%d/suppliers/%s/fulfillments", sim->port, code);
	const char *v[] = { code, endpoint };
	return testdb_exec(db,
	        "WITH s AS (INSERT INTO suppliers (code, endpoint, secrets) VALUES ($1, $2, ARRAY['" SUP_SECRET "'])"
	        "   ON CONFLICT (code) DO UPDATE SET endpoint = EXCLUDED.endpoint RETURNING id, (xmax = 0) AS made)"
	        " INSERT INTO offers (supplier_id, sku, supplier_sku, cost, stock, lead_time_days)"
	        " SELECT id, 'SKU-' || $1, 'X-' || $1, 1, 1000000, 1 FROM s WHERE made", 2, v);
}

/* Posts an order `id` of one SKU; returns the status. */
static int post_order(const struct testsrv *s, const char *id, const char *sku)
{
	const struct shop_line line[] = { { sku, 1, NULL, NULL } };
	char *body = shop_order_json(id, "US", line, 1, false);
	struct https_resp r;
	int status = shop_post(s->port, "shop", SECRET, (int64_t)time(NULL), body, &r) == 0 ? r.status : 0;
	https_resp_free(&r);
	free(body);
	return status;
}

static int suite_init(void)
{
	snprintf(tls_cert, sizeof tls_cert, "%s/server.crt", testsrv_tls_dir());
	snprintf(dispatch_conf, sizeof dispatch_conf,
	         "workers = 1\n[dispatch]\nallow_private_endpoints = true\ntls_ca_file = %s\ntimeout_ms = 2000\n"
	         "backoff_base_ms = 20\nbackoff_max_ms = 100\nmax_attempts = 1000\nbreaker_threshold = 2\n"
	         "breaker_cooldown_ms = 1500\n", tls_cert);
	if (testsrv_prepare_db("dropship_metrics", SECRET, conninfo, sizeof conninfo) < 0)
		return -1;
	db = testdb_connect(conninfo);
	return db ? 0 : -1;
}

static int suite_cleanup(void)
{
	if (db)
		PQfinish(db);
	return 0;
}

/* Every family, each with HELP and TYPE; served on the admin listener as
 * text/plain version 0.0.4, and not on the public one. */
static void test_every_metric_on_the_admin_listener(void)
{
	struct testsrv srv;
	CU_ASSERT_EQUAL_FATAL(testsrv_start(&srv, conninfo, "", 1), 0);
	struct https_resp r;
	CU_ASSERT_EQUAL_FATAL(https_once(srv.port, "GET", "/metrics", NULL, NULL, 0, &r), 0);
	CU_ASSERT_EQUAL(r.status, 404);
	https_resp_free(&r);
	CU_ASSERT_EQUAL_FATAL(https_once(srv.port, "GET", "/metrics", "Authorization: Bearer " TOKEN "\r\n", NULL, 0,
	                                 &r), 0);
	CU_ASSERT_EQUAL(r.status, 404);
	https_resp_free(&r);
	CU_ASSERT_EQUAL_FATAL(https_once(srv.admin_port, "GET", "/metrics", NULL, NULL, 0, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	char ctype[80];
	CU_ASSERT_STRING_EQUAL(https_header(&r, "Content-Type", ctype, sizeof ctype), "text/plain; version=0.0.4");
	for (const char *const *f = families; *f; f++) {
		char help[128], type[128];
		snprintf(help, sizeof help, "# HELP %s ", *f);
		snprintf(type, sizeof type, "# TYPE %s ", *f);
		HARNESS_CHECK(strstr(r.body, help) && strstr(r.body, type), "no HELP or TYPE for %s", *f);
	}
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\ndropship_build_info{version=\""));
	CU_ASSERT_EQUAL(sample(r.body, "dropship_workers"), 2);
	CU_ASSERT_EQUAL(sample(r.body, "dropship_db_pool_size"), 8); /* 2 workers x pool_size 4 */
	/* the five kinds of the schema, at 0 with nothing queued */
	CU_ASSERT_EQUAL(sample(r.body, "dropship_outbox_pending{kind=\"fulfillment.requested\"}"), 0);
	CU_ASSERT_EQUAL(sample(r.body, "dropship_outbox_pending{kind=\"order.needs_attention\"}"), 0);
	https_resp_free(&r);
	/* the scrape itself is timed, on its own route */
	wait_sample(&srv, "dropship_http_request_duration_seconds_count{route=\"metrics\",class=\"2xx\"}", 1, 1e9,
	            5000);
	CU_ASSERT_EQUAL(testsrv_stop(&srv, SIGTERM), 0);
}

/* With no admin listener, /metrics is on the main listener, for the admin
 * token only. */
static void test_main_listener_needs_the_token(void)
{
	struct testsrv srv;
	CU_ASSERT_EQUAL_FATAL(testsrv_start(&srv, conninfo, "[admin]\nlisten =\ntoken = " TOKEN "\n", 1), 0);
	CU_ASSERT_EQUAL(srv.admin_port, 0);
	static const struct { const char *headers; int status; } cases[] = {
		{ NULL, 401 },
		{ "Authorization: Bearer wrong-token\r\n", 401 },
		{ "Authorization: Basic " TOKEN "\r\n", 401 },
		{ "Authorization: Bearer " TOKEN "\r\n", 200 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct https_resp r;
		CU_ASSERT_EQUAL_FATAL(https_once(srv.port, "GET", "/metrics", cases[i].headers, NULL, 0, &r), 0);
		HARNESS_CHECK(r.status == cases[i].status, "%s: %d, want %d", cases[i].headers ? cases[i].headers : "none",
		              r.status, cases[i].status);
		const char *body = r.body ? r.body : "";
		HARNESS_CHECK(r.status == 200 ? strstr(body, "# TYPE dropship_outbox_pending gauge") != NULL
		                              : strstr(body, "dropship_") == NULL, "body: %.80s", body);
		https_resp_free(&r);
	}
	CU_ASSERT_EQUAL(testsrv_stop(&srv, SIGTERM), 0);
}

/* Orders in, requests out, callbacks back: each counted where it happened. */
static void test_values_follow_the_traffic(void)
{
	struct testsrv srv, sim;
	CU_ASSERT_EQUAL_FATAL(testsrv_start(&srv, conninfo, dispatch_conf, 1), 0);
	char url[64];
	snprintf(url, sizeof url, "https://127.0.0.1:%d", srv.port);
	const char *flags[] = { "--callback-url", url, "--ca-file", tls_cert, "--accept-after-ms", "0",
		                "--ship-after-ms", "100", "--deliver-after-ms", "200", NULL };
	CU_ASSERT_EQUAL_FATAL(start_supplier(&sim, "acme", flags), 0);
	enum { N = 12 };
	for (int i = 0; i < N; i++) {
		char id[32];
		snprintf(id, sizeof id, "m-load-%d", i);
		CU_ASSERT_EQUAL(post_order(&srv, id, "SKU-acme"), 202);
	}
	CU_ASSERT_EQUAL(post_order(&srv, "m-load-0", "SKU-acme"), 200); /* a redelivery */
	struct https_resp r;
	CU_ASSERT_EQUAL(shop_post(srv.port, "shop", "whsec_d3JvbmctLXNlY3JldC0tMTIzNDU2Nzg5MA==", (int64_t)time(NULL),
	                          "{}", &r), 0);
	CU_ASSERT_EQUAL(r.status, 401);
	https_resp_free(&r);
	CU_ASSERT_EQUAL(shop_post(srv.port, "no-such-store", SECRET, (int64_t)time(NULL), "{}", &r), 0);
	CU_ASSERT_EQUAL(r.status, 404);
	https_resp_free(&r);

	/* every request accepted, shipped and delivered by the simulator */
	wait_sample(&srv, "dropship_callbacks_total{type=\"delivered\",outcome=\"applied\"}", N, N, 30000);
	char *t = scrape(&srv);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	static const struct { const char *series; double min, max; } want[] = {
		{ "dropship_intake_orders_total{store=\"shop\",outcome=\"created\"}", N, N },
		{ "dropship_intake_orders_total{store=\"shop\",outcome=\"duplicate\"}", 1, 1 },
		{ "dropship_intake_orders_total{store=\"shop\",outcome=\"rejected\"}", 1, 1 },
		{ "dropship_intake_orders_total{store=\"shop\",outcome=\"error\"}", 0, 0 },
		{ "dropship_intake_orders_total{store=\"no-such-store\",outcome=\"rejected\"}", -1, -1 },
		{ "dropship_orders_total{outcome=\"created\"}", N, N },
		{ "dropship_http_request_duration_seconds_count{route=\"webhooks\",class=\"2xx\"}", N + 1, N + 1 },
		{ "dropship_http_request_duration_seconds_count{route=\"webhooks\",class=\"4xx\"}", 2, 2 },
		{ "dropship_http_request_duration_seconds_count{route=\"callbacks\",class=\"2xx\"}", 3 * N, 1e9 },
		{ "dropship_callbacks_total{type=\"accepted\",outcome=\"applied\"}", N, N },
		{ "dropship_callbacks_total{type=\"shipped\",outcome=\"applied\"}", N, N },
		{ "dropship_callbacks_total{type=\"rejected\",outcome=\"refused\"}", 0, 0 },
		/* the redelivery is found a duplicate inside its group */
		{ "dropship_group_commit_size_sum{group=\"orders\"}", N + 1, N + 1 },
		{ "dropship_group_commit_size_count{group=\"orders\"}", 1, N + 1 },
		{ "dropship_group_commit_size_sum{group=\"callbacks\"}", 3 * N, 1e9 },
		{ "dropship_dispatch_attempts_total{outcome=\"delivered\"}", N, 1e9 },
		{ "dropship_dispatch_attempts_total{outcome=\"failed\"}", 0, 0 },
		{ "dropship_dispatch_duration_seconds_count", N, 1e9 },
		{ "dropship_breaker_open{supplier=\"acme\"}", 0, 0 },
		{ "dropship_db_pool_size", 4, 4 },
		{ "dropship_db_pool_in_use", 0, 4 },
		{ "dropship_db_pool_waiting", 0, 1e9 },
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		double v = sample(t, want[i].series);
		HARNESS_CHECK(v >= want[i].min && v <= want[i].max, "%s: %g, want %g..%g", want[i].series, v,
		              want[i].min, want[i].max);
	}
	free(t);
	CU_ASSERT_EQUAL(testsrv_stop_sim(&sim, 10000), 0);
	CU_ASSERT_EQUAL(testsrv_stop(&srv, SIGTERM), 0);
}

/* A supplier answering 503 opens its breaker (gauge and one log line with
 * its code) while its requests wait in the outbox; healthy again, the
 * breaker closes and the backlog drains to 0. */
static void test_breaker_and_backlog(void)
{
	struct testsrv srv, sick, well;
	CU_ASSERT_EQUAL_FATAL(testsrv_start(&srv, conninfo, dispatch_conf, 1), 0);
	const char *sick_flags[] = { "--status", "503", NULL };
	CU_ASSERT_EQUAL_FATAL(start_supplier(&sick, "bolt", sick_flags), 0);
	for (int i = 0; i < 3; i++) {
		char id[32];
		snprintf(id, sizeof id, "m-sick-%d", i);
		CU_ASSERT_EQUAL(post_order(&srv, id, "SKU-bolt"), 202);
	}
	wait_sample(&srv, "dropship_breaker_open{supplier=\"bolt\"}", 1, 1, 15000);
	CU_ASSERT_TRUE(testsrv_log_contains(&srv, "msg=\"breaker opened\" supplier=bolt from=closed"));
	CU_ASSERT_FALSE(testsrv_log_contains(&srv, "supplier_id="));
	CU_ASSERT_TRUE(scrape_sample(&srv, "dropship_dispatch_attempts_total{outcome=\"retry\"}") >= 2);
	/* read every 5 s: the three requests, waiting for a while already */
	wait_sample(&srv, "dropship_outbox_pending{kind=\"fulfillment.requested\"}", 3, 3, 15000);
	wait_sample(&srv, "dropship_outbox_oldest_pending_seconds{kind=\"fulfillment.requested\"}", 0.001, 3600, 15000);
	CU_ASSERT_TRUE(scrape_sample(&srv, "dropship_backlog_updated_timestamp_seconds") >= (double)time(NULL) - 60);

	CU_ASSERT_EQUAL(testsrv_stop_sim(&sick, 10000), 0);
	CU_ASSERT_EQUAL_FATAL(start_supplier(&well, "bolt", NULL), 0);
	wait_sample(&srv, "dropship_breaker_open{supplier=\"bolt\"}", 0, 0, 15000);
	CU_ASSERT_TRUE(testsrv_log_contains(&srv, "msg=\"breaker half-open\" supplier=bolt from=open"));
	CU_ASSERT_TRUE(testsrv_log_contains(&srv, "msg=\"breaker closed\" supplier=bolt from=half_open"));
	wait_sample(&srv, "dropship_outbox_pending{kind=\"fulfillment.requested\"}", 0, 0, 20000);
	CU_ASSERT_EQUAL(scrape_sample(&srv, "dropship_outbox_oldest_pending_seconds{kind=\"fulfillment.requested\"}"), 0);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM outbox o JOIN suppliers s ON s.id = o.supplier_id"
	                                 " WHERE s.code = 'bolt' AND o.state = 'delivered'", 0, NULL), 3);
	CU_ASSERT_EQUAL(testsrv_stop_sim(&well, 10000), 0);
	CU_ASSERT_EQUAL(testsrv_stop(&srv, SIGTERM), 0);
}

/* The stranded-orders gauge counts what reporting.stranded_orders lists
 * (read at start, then every few minutes). */
static void test_stranded_orders(void)
{
	struct testsrv srv;
	CU_ASSERT_EQUAL_FATAL(testsrv_start(&srv, conninfo, dispatch_conf, 1), 0);
	CU_ASSERT_EQUAL(post_order(&srv, "m-stranded-1", "SKU-nobody-sells"), 202);
	CU_ASSERT_EQUAL(post_order(&srv, "m-stranded-2", "SKU-nobody-sells"), 202);
	CU_ASSERT_EQUAL(testsrv_stop(&srv, SIGTERM), 0);
	long stranded = testdb_count(db, "SELECT count(*) FROM reporting.stranded_orders", 0, NULL);
	CU_ASSERT_TRUE(stranded >= 2);
	CU_ASSERT_EQUAL_FATAL(testsrv_start(&srv, conninfo, dispatch_conf, 1), 0);
	wait_sample(&srv, "dropship_stranded_orders", (double)stranded, (double)stranded, 15000);
	CU_ASSERT_EQUAL(testsrv_stop(&srv, SIGTERM), 0);
}

int main(void)
{
	static const struct harness_test tests[] = {
		{ "every metric, on the admin listener only", test_every_metric_on_the_admin_listener },
		{ "no admin listener: on the main one, with the admin token", test_main_listener_needs_the_token },
		{ "orders, dispatches and callbacks are counted", test_values_follow_the_traffic },
		{ "a failing supplier: breaker gauge and log, backlog up and back to 0", test_breaker_and_backlog },
		{ "stranded orders as the report counts them", test_stranded_orders },
		{ NULL, NULL },
	};
	return harness_main("metrics", suite_init, suite_cleanup, tests);
}
