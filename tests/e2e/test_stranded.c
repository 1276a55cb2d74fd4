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
 * dropshipd: max_attempts 2, backoff 10..20 ms. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/CUnit.h>
#include <jansson.h>

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
static PGconn *db;
static struct testsrv srv;
static struct testsrv sim;
static struct receiver store_rx;   /* the store's webhook endpoint */

static int suite_init(void)
{
	const char *tls = getenv("DROPSHIP_TEST_TLS_DIR");
	char cert[300], key[300], conf[800], port[16], dead[16];
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
	receiver_stop(&store_rx);
	if (db)
		PQfinish(db);
	return rc == 0 ? 0 : -1;
}

/* Posts a one-line order (quantity 2); returns dropship's order id (malloc'd) or NULL. */
static char *order(const char *id, const char *sku)
{
	const struct shop_line lines[] = { { sku, 2, NULL, NULL } };
	char *body = shop_order_json(id, "US", lines, 1, false);
	struct https_resp r;
	char *oid = NULL;
	if (shop_post(srv.port, "shop", SECRET, (int64_t)time(NULL), body, &r) == 0 && r.status == 202) {
		json_t *j = json_loads(r.body, 0, NULL);
		const char *s = json_string_value(json_object_get(j, "order_id"));
		oid = s ? strdup(s) : NULL;
		json_decref(j);
	}
	https_resp_free(&r);
	free(body);
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

/* The order's status, or "" (static buffer). */
static const char *status_of(const char *order_id)
{
	static char st[32];
	const char *v[1] = { order_id };
	char *s = testdb_value(db, "SELECT status FROM orders WHERE id = $1", 1, v);
	snprintf(st, sizeof st, "%s", s ? s : "");
	free(s);
	return st;
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
		{ "no order is stuck where stranded_orders does not show it", test_nothing_stranded_unseen },
		{ NULL, NULL },
	};
	return harness_main("stranded", suite_init, suite_cleanup, tests);
}
