/* End to end: no stranded orders. A fulfillment request that cannot be
 * delivered (a 4xx from the supplier, or every attempt used up) is a
 * rejection: its stock is given back and its lines go to the next supplier;
 * with none left the order needs attention and the store is told.
 *
 * Suppliers: good (the simulator, answers 200), refuser (a path of the
 * simulator it does not know: 404), gone (a port nothing listens on).
 *   SKU-A: refuser 1.00 (cheapest), good 2.00
 *   SKU-B: refuser only
 *   SKU-C: gone only
 *   SKU-W, SKU-X: good, no stock (lines wait for it)
 * and, added by the tests that need them:
 *   SKU-D: good, no stock; off (disabled) 10 at 0.10
 *   SKU-H: slow 1.00 (never answers, then fixed), good 2.00
 *   SKU-E: flaky 1.00 (its endpoint down, then back), good 2.00
 * dropshipd: max_attempts 2, backoff 10..20 ms, 2 s per attempt. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/CUnit.h>
#include <jansson.h>

#include "support/ctl.h"
#include "support/harness.h"
#include "support/https.h"
#include "support/receiver.h"
#include "support/shop.h"
#include "support/stranded.h"
#include "support/testdb.h"
#include "support/testsrv.h"
#include "support/wait.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SUP_SECRET "whsec_c2Vjb25kLXNlY3JldC1mb3ItdGVzdHMtMTIzNA=="

static char conninfo[512];
static char conf[800];             /* dropshipd's, for a restart */
static char cert[300];
static PGconn *db;
static struct testsrv srv;
static struct testsrv sim;
static struct testsrv flaky;       /* another supplier's endpoint, started by a test */
static struct receiver store_rx;   /* the store's webhook endpoint */

static int suite_init(void)
{
	const char *tls = getenv("DROPSHIP_TEST_TLS_DIR");
	char key[300], port[16], dead[16];
	snprintf(cert, sizeof cert, "%s/server.crt", tls ? tls : "/tmp");
	snprintf(key, sizeof key, "%s/server.key", tls ? tls : "/tmp");
	const char *sups[] = { "good=" SUP_SECRET, NULL };
	if (testsrv_prepare_db("dropship_stranded", SECRET, conninfo, sizeof conninfo) < 0 ||
	    !(db = testdb_connect(conninfo)) || testsrv_start_sim(&sim, sups, NULL, 10000) < 0 ||
	    receiver_start(&store_rx, cert, key) < 0)
		return -1;
	snprintf(port, sizeof port, "%d", sim.port);
	/* A port nothing listens on: the receiver's, plus one, is free enough; check it. */
	snprintf(dead, sizeof dead, "%d", store_rx.port + 1);
	const char *v[] = { port, dead };
	if (testdb_exec(db,
	        "WITH s AS (INSERT INTO suppliers (code, endpoint, secrets) VALUES"
	        "   ('good', 'https://127.0.0.1:' || $1 || '/suppliers/good/fulfillments', ARRAY['" SUP_SECRET "']),"
	        "   ('refuser', 'https://127.0.0.1:' || $1 || '/suppliers/refuser/fulfillments',"
	        "    ARRAY['" SUP_SECRET "']),"
	        "   ('gone', 'https://127.0.0.1:' || $2 || '/orders', ARRAY['" SUP_SECRET "'])"
	        "   RETURNING id, code)"
	        " INSERT INTO offers (supplier_id, sku, supplier_sku, cost, stock, lead_time_days)"
	        " SELECT s.id, o.sku, 'X', o.cost, 10, 1 FROM s JOIN (VALUES ('refuser', 'SKU-A', 1.00),"
	        "   ('good', 'SKU-A', 2.00), ('refuser', 'SKU-B', 1.00), ('gone', 'SKU-C', 1.00),"
	        "   ('good', 'SKU-W', 3.00), ('good', 'SKU-X', 3.00)) o(code, sku, cost)"
	        "   ON o.code = s.code", 2, v) != 0 ||
	    testdb_exec(db, "UPDATE offers SET stock = 0 WHERE sku IN ('SKU-W', 'SKU-X')", 0, NULL) != 0)
		return -1;
	char rx_port[16];
	snprintf(rx_port, sizeof rx_port, "%d", store_rx.port);
	const char *rv[] = { rx_port };
	if (testdb_exec(db, "UPDATE stores SET callback_url = 'https://127.0.0.1:' || $1 || '/hooks'"
	                    " WHERE code = 'shop'", 1, rv) != 0)
		return -1;
	snprintf(conf, sizeof conf,
	         "[dispatch]\nallow_private_endpoints = true\ntls_ca_file = %s\nmax_attempts = 2\n"
	         "backoff_base_ms = 10\nbackoff_max_ms = 20\ntimeout_ms = 2000\n", cert);
	return testsrv_start(&srv, conninfo, conf, 1);
}

static int suite_cleanup(void)
{
	int rc = srv.pid > 0 ? testsrv_stop(&srv, SIGTERM) : 0;
	testsrv_stop_sim(&sim, 5000);
	if (flaky.pid > 0)
		testsrv_stop_sim(&flaky, 5000);
	receiver_stop(&store_rx);
	if (db)
		PQfinish(db);
	return rc == 0 ? 0 : -1;
}

/* Posts a one-line order (quantity 2); returns dropship's order id (malloc'd) or NULL. */
static char *order(const char *id, const char *sku)
{
	const struct shop_line lines[] = { { sku, 2, NULL, NULL } };
	json_t *j = shop_place(srv.port, "shop", SECRET, id, lines, 1);
	const char *s = json_string_value(json_object_get(j, "order_id"));
	char *oid = s ? strdup(s) : NULL;
	json_decref(j);
	return oid;
}

/* The test's view of one order while it waits for an outcome. */
struct outcome {
	const char *order_id;
	const char *status;   /* the order status waited for */
};

/* The order has the status and one of its requests has failed and been
 * handled (none waits in request_failures). */
static bool order_is(void *arg)
{
	struct outcome *o = arg;
	const char *v[2] = { o->order_id, o->status };
	return testdb_count(db, "SELECT count(*) FROM orders WHERE id = $1 AND status = $2", 2, v) == 1 &&
	       testdb_count(db, "SELECT count(*) FROM fulfillment_requests WHERE order_id = $1"
	                        " AND status = 'failed'", 1, v) == 1 &&
	       testdb_count(db, "SELECT count(*) FROM request_failures f JOIN fulfillment_requests r"
	                        " ON r.id = f.request_id WHERE r.order_id = $1", 1, v) == 0;
}

static long stock(const char *supplier, const char *sku)
{
	const char *v[2] = { supplier, sku };
	return testdb_count(db, "SELECT o.stock FROM offers o JOIN suppliers s ON s.id = o.supplier_id"
	                        " WHERE s.code = $1 AND o.sku = $2", 2, v);
}

struct heard {
	const char *needle;
};

static bool store_heard(void *arg)
{
	struct heard *h = arg;
	return receiver_count(&store_rx, h->needle, "\"order.needs_attention\"") >= 1;
}

static void test_refused_request_goes_to_the_next_supplier(void)
{
	char *oid = order("ST-1", "SKU-A");
	CU_ASSERT_PTR_NOT_NULL_FATAL(oid);
	/* refuser answers 404: its request fails, the line goes to good, which gets it. */
	const char *v[1] = { oid };
	struct outcome want = { oid, "routed" };
	CU_ASSERT(wait_until(order_is, &want, 15000, 100));
	CU_ASSERT(testdb_count(db, "SELECT count(*) FROM fulfillment_requests r JOIN suppliers s ON s.id = r.supplier_id"
	                           " WHERE r.order_id = $1 AND s.code = 'refuser' AND r.status = 'failed'"
	                           " AND r.reason LIKE 'HTTP 404%'", 1, v) == 1);
	CU_ASSERT(testdb_count(db, "SELECT count(*) FROM order_lines l JOIN suppliers s ON s.id = l.supplier_id"
	                           " WHERE l.order_id = $1 AND s.code = 'good' AND l.status = 'routed'"
	                           " AND l.reserved = 2 AND l.request_id IS NOT NULL", 1, v) == 1);
	CU_ASSERT(testdb_count(db, "SELECT count(*) FROM routing_decisions WHERE order_id = $1 AND attempt = 2", 1, v) == 1);
	/* The refused request's stock is back; the new one holds its own. */
	CU_ASSERT_EQUAL(stock("refuser", "SKU-A"), 10);
	CU_ASSERT_EQUAL(stock("good", "SKU-A"), 8);
	/* The failure is an audit event of the request, recorded once. */
	CU_ASSERT(testdb_count(db, "SELECT count(*) FROM request_events e JOIN fulfillment_requests r"
	                           " ON r.id = e.request_id WHERE r.order_id = $1 AND e.type = 'fulfillment.failed'"
	                           " AND e.to_status = 'failed'", 1, v) == 1);
	free(oid);
}

static void test_refused_with_nobody_left_needs_attention(void)
{
	char *oid = order("ST-2", "SKU-B");
	CU_ASSERT_PTR_NOT_NULL_FATAL(oid);
	const char *v[1] = { oid };
	struct outcome want = { oid, "needs_attention" };
	CU_ASSERT(wait_until(order_is, &want, 15000, 100));
	CU_ASSERT(testdb_count(db, "SELECT count(*) FROM order_lines WHERE order_id = $1 AND status = 'unroutable'"
	                           " AND reserved = 0", 1, v) == 1);
	CU_ASSERT_EQUAL(stock("refuser", "SKU-B"), 10);
	struct heard h = { "\"ST-2\"" };
	CU_ASSERT(wait_until(store_heard, &h, 10000, 100));
	free(oid);
}

static void test_attempts_used_up_needs_attention(void)
{
	char *oid = order("ST-3", "SKU-C");
	CU_ASSERT_PTR_NOT_NULL_FATAL(oid);
	const char *v[1] = { oid };
	struct outcome want = { oid, "needs_attention" };
	CU_ASSERT(wait_until(order_is, &want, 20000, 100));
	/* Two attempts, both recorded, then the request failed with the network's reason. */
	CU_ASSERT(testdb_count(db, "SELECT count(*) FROM outbox_attempts a JOIN outbox o ON o.id = a.outbox_id"
	                           " JOIN fulfillment_requests r ON r.id = o.request_id WHERE r.order_id = $1", 1, v) == 2);
	CU_ASSERT(testdb_count(db, "SELECT count(*) FROM fulfillment_requests WHERE order_id = $1"
	                           " AND status = 'failed' AND reason NOT LIKE 'HTTP%'", 1, v) == 1);
	CU_ASSERT_EQUAL(stock("gone", "SKU-C"), 10);
	struct heard h = { "\"ST-3\"" };
	CU_ASSERT(wait_until(store_heard, &h, 10000, 100));
	free(oid);
}

/* The value a query of one parameter gives, or "" (static buffers, two in turn). */
static const char *value_of(const char *sql, const char *param)
{
	static char buf[2][64];
	static int k;
	const char *v[1] = { param };
	char *s = testdb_value(db, sql, 1, v);
	k ^= 1;
	snprintf(buf[k], sizeof buf[k], "%s", s ? s : "");
	free(s);
	return buf[k];
}

/* The order's status, or "". */
static const char *status_of(const char *order_id)
{
	return value_of("SELECT status FROM orders WHERE id = $1", order_id);
}

struct line_wait {
	const char *order_id, *status, *reason;   /* reason NULL: any */
};

static bool line_is(void *arg)
{
	struct line_wait *w = arg;
	const char *v[3] = { w->order_id, w->status, w->reason };
	return testdb_count(db, "SELECT count(*) FROM order_lines WHERE order_id = $1 AND status = $2"
	                        " AND ($3::text IS NULL OR reason = $3)", 3, v) == 1;
}

static void test_waiting_line_routed_when_stock_comes(void)
{
	char *oid = order("ST-4", "SKU-W");
	CU_ASSERT_PTR_NOT_NULL_FATAL(oid);
	CU_ASSERT_STRING_EQUAL(status_of(oid), "needs_attention");
	struct line_wait waiting = { oid, "unroutable", "out_of_stock" };
	CU_ASSERT(line_is(&waiting));
	/* The supplier's stock arrives (what an import or a feed does). */
	CU_ASSERT_FATAL(testdb_exec(db, "UPDATE offers SET stock = 5 WHERE sku = 'SKU-W'", 0, NULL) == 0);
	CU_ASSERT_FATAL(testdb_exec(db, "INSERT INTO sku_changes (sku) VALUES ('SKU-W')", 0, NULL) == 0);
	CU_ASSERT_FATAL(testdb_exec(db, "NOTIFY dropship_stock", 0, NULL) == 0);
	double t0 = wait_now_ms();
	struct line_wait routed = { oid, "routed", NULL };
	CU_ASSERT(wait_until(line_is, &routed, 5000, 20));
	printf("\n    waiting line routed %.0f ms after the stock arrived\n", wait_now_ms() - t0);
	CU_ASSERT_STRING_EQUAL(status_of(oid), "routed");
	const char *v[1] = { oid };
	CU_ASSERT(testdb_count(db, "SELECT count(*) FROM routing_decisions WHERE order_id = $1 AND attempt = 2"
	                           " AND reason IS NULL", 1, v) == 1);
	CU_ASSERT(testdb_count(db, "SELECT count(*) FROM order_lines l JOIN fulfillment_requests r"
	                           " ON r.id = l.request_id WHERE l.order_id = $1 AND l.reserved = 2", 1, v) == 1);
	CU_ASSERT_EQUAL(stock("good", "SKU-W"), 3);
	CU_ASSERT(testdb_count(db, "SELECT count(*) FROM sku_changes", 0, NULL) == 0);
	free(oid);
}

static void test_waiting_line_expires(void)
{
	char *oid = order("ST-5", "SKU-X");
	CU_ASSERT_PTR_NOT_NULL_FATAL(oid);
	/* The store holds waiting lines for a second only. */
	CU_ASSERT_FATAL(testdb_exec(db, "UPDATE stores SET hold_for = interval '1 second' WHERE code = 'shop'",
	                            0, NULL) == 0);
	struct line_wait expired = { oid, "unroutable", "expired" };
	CU_ASSERT(wait_until(line_is, &expired, 15000, 100));
	/* Stock that comes afterwards does not route it. */
	CU_ASSERT_FATAL(testdb_exec(db, "UPDATE offers SET stock = 5 WHERE sku = 'SKU-X'", 0, NULL) == 0);
	CU_ASSERT_FATAL(testdb_exec(db, "INSERT INTO sku_changes (sku) VALUES ('SKU-X')", 0, NULL) == 0);
	CU_ASSERT_FATAL(testdb_exec(db, "NOTIFY dropship_stock", 0, NULL) == 0);
	wait_ms(1500);
	CU_ASSERT(line_is(&expired));
	CU_ASSERT_STRING_EQUAL(status_of(oid), "needs_attention");
	CU_ASSERT_EQUAL(stock("good", "SKU-X"), 5);
	CU_ASSERT_FATAL(testdb_exec(db, "UPDATE stores SET hold_for = interval '72 hours' WHERE code = 'shop'",
	                            0, NULL) == 0);
	free(oid);
}

static bool request_of_sent(void *arg)
{
	const char *v[1] = { arg };
	return testdb_count(db, "SELECT count(*) FROM fulfillment_requests WHERE order_id = $1 AND status = 'sent'",
	                    1, v) == 1;
}

static bool order_needs_attention(void *arg)
{
	return strcmp(status_of(arg), "needs_attention") == 0;
}

/* A cancellation the supplier never got: the supplier may still ship, so
 * the order needs a person, the store is told, and the order is on the
 * operator's list with why. */
static void test_cancellation_not_delivered(void)
{
	char port[16], dead[16];
	snprintf(port, sizeof port, "%d", sim.port);
	snprintf(dead, sizeof dead, "%d", store_rx.port + 1);
	const char *v[] = { port };
	CU_ASSERT_FATAL(testdb_exec(db,
	        "WITH s AS (INSERT INTO suppliers (code, endpoint, secrets) VALUES"
	        "   ('fickle', 'https://127.0.0.1:' || $1 || '/suppliers/good/fulfillments', ARRAY['" SUP_SECRET "'])"
	        "   RETURNING id)"
	        " INSERT INTO offers (supplier_id, sku, supplier_sku, cost, stock, lead_time_days)"
	        " SELECT id, 'SKU-F', 'X', 1, 10, 1 FROM s", 1, v) == 0);
	char *oid = order("ST-C1", "SKU-F");
	CU_ASSERT_PTR_NOT_NULL_FATAL(oid);
	CU_ASSERT_FATAL(wait_until(request_of_sent, oid, 10000, 50));
	/* The supplier's endpoint goes away, then the store cancels. */
	const char *d[] = { dead };
	CU_ASSERT_FATAL(testdb_exec(db, "UPDATE suppliers SET endpoint = 'https://127.0.0.1:' || $1 || '/orders'"
	                                " WHERE code = 'fickle'", 1, d) == 0);
	struct https_resp r;
	const char *cancel = "{\"type\": \"order.cancelled\", \"order\": {\"id\": \"ST-C1\"}}";
	CU_ASSERT_FATAL(shop_post(srv.port, "shop", SECRET, (int64_t)time(NULL), cancel, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	https_resp_free(&r);
	CU_ASSERT(wait_until(order_needs_attention, oid, 20000, 100));
	struct heard h = { "ST-C1" };
	CU_ASSERT(wait_until(store_heard, &h, 10000, 100));
	const char *o[1] = { oid };
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM reporting.stranded_orders WHERE order_id = $1"
	                                 " AND reasons = 'cancel_not_delivered' AND status = 'needs_attention'",
	                             1, o), 1);
	free(oid);
}

/* ---- disabled stores and suppliers ---- */

static void test_disabled_store_refused(void)
{
	char *oid = order("ST-6", "SKU-A");   /* taken while the store is enabled */
	CU_ASSERT_PTR_NOT_NULL_FATAL(oid);
	CU_ASSERT_EQUAL_FATAL(ctl_rc(conninfo, "store", "disable", "shop", NULL), 0);
	long orders = testdb_count(db, "SELECT count(*) FROM orders", 0, NULL);
	const struct shop_line lines[] = { { "SKU-A", 1, NULL, NULL } };
	char *body = shop_order_json("ST-7", "US", lines, 1, false);
	struct https_resp r;
	CU_ASSERT_EQUAL_FATAL(shop_post(srv.port, "shop", SECRET, (int64_t)time(NULL), body, &r), 0);
	CU_ASSERT_EQUAL(r.status, 403);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"store_disabled\""));
	https_resp_free(&r);
	free(body);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM orders", 0, NULL), orders);
	/* What it has goes on: a cancellation of an order it sent before is taken. */
	body = strdup("{\"type\": \"order.cancelled\", \"order\": {\"id\": \"ST-6\"}}");
	CU_ASSERT_EQUAL_FATAL(shop_post(srv.port, "shop", SECRET, (int64_t)time(NULL), body, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	https_resp_free(&r);
	free(body);
	CU_ASSERT_STRING_EQUAL(status_of(oid), "cancelled");
	CU_ASSERT_EQUAL(ctl_rc(conninfo, "store", "enable", "shop", NULL), 0);
	free(oid);
}

static bool skus_claimed(void *arg)
{
	(void)arg;
	return testdb_count(db, "SELECT count(*) FROM sku_changes", 0, NULL) == 0;
}

/* A disabled supplier's offer is never routed to, at intake or when waiting lines are planned again. */
static void test_disabled_supplier_never_routed(void)
{
	CU_ASSERT_FATAL(testdb_exec(db,
	        "WITH s AS (INSERT INTO suppliers (code, endpoint, secrets, active) VALUES ('off',"
	        "   'https://127.0.0.1:1/off', ARRAY['" SUP_SECRET "'], false) RETURNING id)"
	        " INSERT INTO offers (supplier_id, sku, supplier_sku, cost, stock, lead_time_days)"
	        " SELECT s.id, 'SKU-D', 'X', 0.10, 10, 1 FROM s UNION ALL"
	        " SELECT id, 'SKU-D', 'X', 3.00, 0, 1 FROM suppliers WHERE code = 'good'", 0, NULL) == 0);
	char *oid = order("ST-8", "SKU-D");
	CU_ASSERT_PTR_NOT_NULL_FATAL(oid);
	struct line_wait waiting = { oid, "unroutable", "out_of_stock" };
	CU_ASSERT(line_is(&waiting));
	const char *v[1] = { oid };
	CU_ASSERT(testdb_count(db, "SELECT count(*) FROM routing_decisions d, jsonb_array_elements(d.candidates) c"
	                           " WHERE d.order_id = $1 AND c->>'supplier' = 'off'"
	                           " AND c->>'why_not' = 'supplier_inactive'", 1, v) == 1);
	/* The SKU is planned again: still nobody but off has it. */
	CU_ASSERT_FATAL(testdb_exec(db, "INSERT INTO sku_changes (sku) VALUES ('SKU-D')", 0, NULL) == 0);
	CU_ASSERT_FATAL(testdb_exec(db, "NOTIFY dropship_stock", 0, NULL) == 0);
	CU_ASSERT(wait_until(skus_claimed, NULL, 10000, 50));
	CU_ASSERT(line_is(&waiting));
	CU_ASSERT_EQUAL(stock("off", "SKU-D"), 10);
	free(oid);
}

/* ---- outbox retry and the failures dropshipd has yet to handle ---- */

/* Suppliers code (endpoint: the flaky simulator's) with sku at 1.00 and
 * good with it at 2.00, 10 of each. */
static void add_second_choice(const char *code, const char *sku)
{
	char port[16];
	snprintf(port, sizeof port, "%d", flaky.port);
	const char *v[3] = { port, code, sku };
	CU_ASSERT_FATAL(testdb_exec(db,
	        "WITH s AS (INSERT INTO suppliers (code, endpoint, secrets) VALUES ($2,"
	        "   'https://127.0.0.1:' || $1 || '/suppliers/' || $2 || '/fulfillments', ARRAY['" SUP_SECRET "'])"
	        "   RETURNING id)"
	        " INSERT INTO offers (supplier_id, sku, supplier_sku, cost, stock, lead_time_days)"
	        " SELECT s.id, $3, 'X', 1.00, 10, 1 FROM s UNION ALL"
	        " SELECT id, $3, 'X', 2.00, 10, 1 FROM suppliers WHERE code = 'good'", 3, v) == 0);
}

/* (Re)starts the flaky simulator for supplier code, on port (0: any), with extra flags. */
static int start_flaky(const char *code, int port, const char *flag)
{
	char sup[128], listen[32];
	snprintf(sup, sizeof sup, "%s=" SUP_SECRET, code);
	snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
	const char *sups[] = { sup, NULL };
	const char *extra[] = { "--listen", listen, flag, NULL };
	return testsrv_start_sim(&flaky, sups, extra, 10000);
}

static long flaky_deliveries(const char *request_id)
{
	json_t *st = testsrv_sim_stats(flaky.port);
	json_t *n = json_object_get(json_object_get(st, "by_request"), request_id);
	long v = json_is_integer(n) ? (long)json_integer_value(n) : 0;
	json_decref(st);
	return v;
}

/* The request of the order's line, or "". */
static const char *request_of(const char *order_id)
{
	return value_of("SELECT request_id FROM order_lines WHERE order_id = $1", order_id);
}

static bool failure_waits_for_lock(void *arg)
{
	const char *v[1] = { arg };
	return testdb_count(db, "SELECT count(*) FROM request_failures WHERE request_id = $1", 1, v) == 1 &&
	       /* callback_lock, by its start: pg_stat_activity keeps a query's first 1024 bytes */
	       testdb_count(db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
	                        " AND wait_event_type = 'Lock' AND query LIKE 'SELECT k.i, r.status, r.supplier_id,%'",
	                    0, NULL) >= 1;
}

struct message_wait {
	const char *request_id, *state;
};

static bool message_is(void *arg)
{
	struct message_wait *w = arg;
	const char *v[2] = { w->request_id, w->state };
	return testdb_count(db, "SELECT count(*) FROM outbox WHERE request_id = $1 AND state = $2", 2, v) == 1;
}

/* dropshipd records a failed delivery and, before it re-routes the lines,
 * waits for the request's lock, which stands here for `outbox retry`:
 * the failure withdrawn under it, dropshipd leaves the lines alone and the
 * message goes to the same supplier, once. */
static void test_failure_withdrawn_while_dropshipd_waits(void)
{
	CU_ASSERT_FATAL(start_flaky("slow", 0, "--hang-rate=1") == 0);
	int port = flaky.port;
	add_second_choice("slow", "SKU-H");
	char *oid = order("ST-9", "SKU-H");
	CU_ASSERT_PTR_NOT_NULL_FATAL(oid);
	char rid[64];
	snprintf(rid, sizeof rid, "%s", request_of(oid));
	PGconn *a = testdb_connect(conninfo);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	const char *v[1] = { rid };
	CU_ASSERT_FATAL(testdb_exec(a, "BEGIN", 0, NULL) == 0);
	/* As outbox retry locks it: recording the failure (a foreign key to the
	 * request) goes on, dropshipd's handling of it waits. */
	CU_ASSERT_FATAL(testdb_count(a, "SELECT count(*) FROM (SELECT id FROM fulfillment_requests WHERE id = $1"
	                                " FOR NO KEY UPDATE) l", 1, v) == 1);
	/* Both attempts time out; dropshipd records the failure and waits for the lock. */
	if (!wait_until(failure_waits_for_lock, rid, 30000, 100)) {
		char *why = testdb_value(db, "SELECT (SELECT count(*) FROM request_failures WHERE request_id = $1)"
		                             " || ' ' || coalesce((SELECT string_agg(wait_event_type || ':' || left(query, 60),"
		                             " ' | ') FROM pg_stat_activity WHERE datname = current_database()), '')", 1, v);
		printf("\n    failures, sessions: %s\n", why ? why : "?");
		free(why);
		CU_FAIL_FATAL("dropshipd did not wait for the request's lock with its failure recorded");
	}
	/* The endpoint is fixed; the retry, as dropshipctl does it under the lock. */
	testsrv_stop_sim(&flaky, 5000);
	CU_ASSERT_FATAL(start_flaky("slow", port, "--hang-rate=0") == 0);
	CU_ASSERT(testdb_exec(a, "DELETE FROM request_failures WHERE request_id = $1", 1, v) == 0);
	CU_ASSERT(testdb_exec(a, "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = now()"
	                         " WHERE request_id = $1", 1, v) == 0);
	CU_ASSERT(testdb_exec(a, "COMMIT", 0, NULL) == 0);
	PQfinish(a);
	struct message_wait delivered = { rid, "delivered" };
	CU_ASSERT(wait_until(message_is, &delivered, 15000, 100));
	CU_ASSERT_EQUAL(flaky_deliveries(rid), 1);
	const char *ov[1] = { oid }, *lv[2] = { oid, rid };
	CU_ASSERT(testdb_count(db, "SELECT count(*) FROM order_lines WHERE order_id = $1 AND status = 'routed'"
	                           " AND request_id = $2::uuid", 2, lv) == 1);
	CU_ASSERT(testdb_count(db, "SELECT count(*) FROM fulfillment_requests WHERE order_id = $1", 1, ov) == 1);
	CU_ASSERT(testdb_count(db, "SELECT count(*) FROM fulfillment_requests WHERE id = $1 AND status = 'sent'", 1,
	                       v) == 1);
	CU_ASSERT(testsrv_log_contains(&srv, "delivery failure withdrawn"));
	CU_ASSERT_EQUAL(stock("good", "SKU-H"), 10);
	testsrv_stop_sim(&flaky, 5000);
	free(oid);
}

/* Written by SQL: what dropshipd leaves when it stops after recording a
 * failed delivery and before re-routing its lines (its sweep finds such
 * failures when it starts again): orders ST-10 and ST-11, each a line of 2
 * SKU-E routed to flaky by a pending request whose message failed. */
static const char window_sql[] =
	"WITH o AS (INSERT INTO orders (store_id, external_id, status, raw, ship_name, ship_line1, ship_city,"
	"   ship_country) SELECT st.id, x.ext, 'routed', '{}', 'Ann', '1 Main St', 'Austin', 'US'"
	"   FROM stores st, (VALUES ('ST-10'), ('ST-11')) x(ext) WHERE st.code = 'shop' RETURNING store_id, id),"
	" f AS (SELECT f.id, f.supplier_id FROM offers f JOIN suppliers s ON s.id = f.supplier_id"
	"   WHERE s.code = 'flaky' AND f.sku = 'SKU-E'),"
	" r AS (INSERT INTO fulfillment_requests (id, store_id, order_id, supplier_id)"
	"   SELECT gen_random_uuid(), o.store_id, o.id, f.supplier_id FROM o, f RETURNING id, store_id, order_id),"
	" l AS (INSERT INTO order_lines (store_id, order_id, line_no, sku, quantity, status, supplier_id, offer_id,"
	"   reserved, unit_cost, request_id)"
	"   SELECT r.store_id, r.order_id, 1, 'SKU-E', 2, 'routed', f.supplier_id, f.id, 2, 1.00, r.id FROM r, f),"
	" m AS (INSERT INTO outbox (kind, request_id, supplier_id, store_id, idempotency_key, payload, state,"
	"   attempts, last_error)"
	"   SELECT 'fulfillment.requested', r.id, f.supplier_id, r.store_id, r.id::text,"
	"     jsonb_build_object('type', 'fulfillment.requested', 'request_id', r.id, 'store', 'shop',"
	"       'order_id', r.order_id::text, 'items', jsonb_build_array(jsonb_build_object('line', 1,"
	"       'sku', 'SKU-E', 'supplier_sku', 'X', 'quantity', 2)), 'created_at', now()),"
	"     'failed', 2, 'connect: connection refused' FROM r, f),"
	" s AS (UPDATE offers SET stock = stock - 4 WHERE id IN (SELECT id FROM f))"
	" INSERT INTO request_failures (request_id, supplier_id, cause)"
	" SELECT r.id, f.supplier_id, 'connect: connection refused' FROM r, f";

/* The request of an order given by the store's id, or "". */
static const char *request_of_external(const char *ext)
{
	return value_of("SELECT l.request_id FROM order_lines l JOIN orders o ON o.store_id = l.store_id"
	                " AND o.id = l.order_id WHERE o.external_id = $1", ext);
}

static bool line_moved_to_good(void *arg)
{
	const char *v[1] = { arg };
	return testdb_count(db, "SELECT count(*) FROM order_lines l JOIN orders o ON o.store_id = l.store_id"
	                        " AND o.id = l.order_id JOIN suppliers s ON s.id = l.supplier_id"
	                        " WHERE o.external_id = $1 AND s.code = 'good' AND l.status = 'routed'", 1, v) == 1;
}

/* The endpoint came back while dropshipd was down; the operator retries
 * ST-10's message: it is delivered once, to flaky, and its line stays;
 * ST-11's failure, not retried, is re-routed to good by the sweep. */
static void test_retry_after_the_endpoint_recovers(void)
{
	CU_ASSERT_FATAL(start_flaky("flaky", 0, "--hang-rate=0") == 0);
	add_second_choice("flaky", "SKU-E");
	CU_ASSERT_FATAL(testsrv_stop(&srv, SIGTERM) == 0);
	CU_ASSERT_FATAL(testdb_exec(db, window_sql, 0, NULL) == 0);
	char r10[64], r11[64];
	snprintf(r10, sizeof r10, "%s", request_of_external("ST-10"));
	snprintf(r11, sizeof r11, "%s", request_of_external("ST-11"));
	const char *v10[1] = { r10 }, *v11[1] = { r11 };
	char *m10 = testdb_value(db, "SELECT id FROM outbox WHERE request_id = $1", 1, v10);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m10);
	struct ctl_run r = ctl(conninfo, "outbox", "retry", m10, NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_PTR_NOT_NULL(r.out ? strstr(r.out, "re-queued") : NULL);
	ctl_run_free(&r);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM request_failures WHERE request_id = $1", 1, v10), 0);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM request_failures WHERE request_id = $1", 1, v11), 1);

	CU_ASSERT_FATAL(testsrv_start(&srv, conninfo, conf, 1) == 0);
	struct message_wait delivered = { r10, "delivered" };
	CU_ASSERT(wait_until(message_is, &delivered, 15000, 100));
	CU_ASSERT(wait_until(line_moved_to_good, "ST-11", 15000, 100));
	CU_ASSERT_EQUAL(flaky_deliveries(r10), 1);
	CU_ASSERT_EQUAL(flaky_deliveries(r11), 0);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM fulfillment_requests WHERE id = $1 AND status = 'sent'",
	                             1, v10), 1);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM fulfillment_requests WHERE id = $1 AND status = 'failed'",
	                             1, v11), 1);
	CU_ASSERT_STRING_EQUAL(request_of_external("ST-10"), r10);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM fulfillment_requests r JOIN orders o"
	                                 " ON o.store_id = r.store_id AND o.id = r.order_id"
	                                 " WHERE o.external_id = 'ST-10'", 0, NULL), 1);
	/* flaky holds ST-10's 2 and got ST-11's back; good took ST-11's. */
	CU_ASSERT_EQUAL(stock("flaky", "SKU-E"), 8);
	CU_ASSERT_EQUAL(stock("good", "SKU-E"), 8);
	free(m10);
	testsrv_stop_sim(&flaky, 5000);
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
		{ "a refused request goes to the next supplier, its stock given back",
		  test_refused_request_goes_to_the_next_supplier },
		{ "refused with nobody left: needs_attention, the store is told",
		  test_refused_with_nobody_left_needs_attention },
		{ "attempts used up: needs_attention, the store is told", test_attempts_used_up_needs_attention },
		{ "a line waiting for stock is routed when it comes", test_waiting_line_routed_when_stock_comes },
		{ "a line waiting past its store's hold expires", test_waiting_line_expires },
		{ "a cancellation the supplier never got: needs_attention, on the list", test_cancellation_not_delivered },
		{ "a disabled store's orders are refused; its cancellations are taken", test_disabled_store_refused },
		{ "a disabled supplier is never routed to", test_disabled_supplier_never_routed },
		{ "a failure withdrawn while dropshipd waits for the request: delivered once, lines stay",
		  test_failure_withdrawn_while_dropshipd_waits },
		{ "outbox retry after the endpoint recovers delivers once; the sweep leaves it alone",
		  test_retry_after_the_endpoint_recovers },
		{ "no order is stuck where stranded_orders does not show it", test_nothing_stranded_unseen },
		{ NULL, NULL },
	};
	return harness_main("stranded", suite_init, suite_cleanup, tests);
}
