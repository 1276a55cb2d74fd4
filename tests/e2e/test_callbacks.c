/* End to end: supplier callbacks. Orders go in through the API and are
 * forwarded to the simulator (which only acknowledges); the test then plays
 * the supplier, signing callbacks itself, and checks the database. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/CUnit.h>
#include <jansson.h>

#include "sig/sig.h"
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
#define OTHER_SECRET "whsec_dGhpcmQtc2VjcmV0LW5ldmVyLWNvbmZpZ3VyZWQhIQ=="

static char conninfo[512];
static PGconn *db;
static struct testsrv srv;
static struct testsrv sim;
static struct receiver store_rx;   /* the store's webhook endpoint */

static int suite_init(void)
{
	const char *tls = getenv("DROPSHIP_TEST_TLS_DIR");
	char cert[300], key[300], conf[600], port[16];
	snprintf(cert, sizeof cert, "%s/server.crt", tls ? tls : "/tmp");
	snprintf(key, sizeof key, "%s/server.key", tls ? tls : "/tmp");
	const char *sups[] = { "acme=" SUP_SECRET, "bolt=" OTHER_SECRET, NULL };
	if (testsrv_prepare_db("dropship_callbacks", SECRET, conninfo, sizeof conninfo) < 0 ||
	    !(db = testdb_connect(conninfo)) || testsrv_start_sim(&sim, sups, NULL, 10000) < 0)
		return -1;
	snprintf(port, sizeof port, "%d", sim.port);
	const char *v[] = { port };
	if (testdb_exec(db,
	        "WITH s AS (INSERT INTO suppliers (code, endpoint, secrets) VALUES"
	        "   ('acme', 'https://127.0.0.1:' || $1 || '/suppliers/acme/fulfillments', ARRAY['" SUP_SECRET "']),"
	        "   ('bolt', 'https://127.0.0.1:' || $1 || '/suppliers/bolt/fulfillments', ARRAY['" OTHER_SECRET "'])"
	        "   RETURNING id, code)"
	        " INSERT INTO offers (supplier_id, sku, supplier_sku, cost, stock, lead_time_days)"
	        " SELECT id, 'SKU-' || code, 'X', 1, 100, 1 FROM s", 1, v) != 0 ||
	    receiver_start(&store_rx, cert, key) < 0)
		return -1;
	char rx_port[16];
	snprintf(rx_port, sizeof rx_port, "%d", store_rx.port);
	const char *rv[] = { rx_port };
	if (testdb_exec(db, "UPDATE stores SET callback_url = 'https://127.0.0.1:' || $1 || '/hooks'"
	                    " WHERE code = 'shop'", 1, rv) != 0)
		return -1;
	snprintf(conf, sizeof conf, "[dispatch]\nallow_private_endpoints = true\ntls_ca_file = %s\n", cert);
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

/* Posts an order with one line per sku (quantity 2); returns the order id (malloc'd). */
static char *order(const char *id, const char *sku1, const char *sku2)
{
	const struct shop_line lines[] = { { sku1, 2, NULL, NULL }, { sku2, 2, NULL, NULL } };
	json_t *j = shop_place(srv.port, "shop", SECRET, id, lines, sku2 ? 2 : 1);
	const char *s = json_string_value(json_object_get(j, "order_id"));
	char *oid = s ? strdup(s) : NULL;
	json_decref(j);
	return oid;
}

/* A request looked for by request_of, and its id once found. */
struct request_wait {
	const char *v[2];   /* order id, supplier */
	char *id;
};

static bool request_sent(void *arg)
{
	struct request_wait *w = arg;
	w->id = testdb_value(db, "SELECT r.id::text FROM fulfillment_requests r JOIN suppliers s"
	                         " ON s.id = r.supplier_id WHERE r.order_id = $1 AND s.code = $2"
	                         " AND r.status = 'sent'", 2, w->v);
	return w->id != NULL;
}

/* The request id of order_id's request to supplier, once it has been sent. */
static char *request_of(const char *order_id, const char *supplier)
{
	struct request_wait w = { { order_id, supplier }, NULL };
	return wait_until(request_sent, &w, 10000, 100) ? w.id : NULL;
}

/* Sends a callback as `supplier` signed with secret; webhook_id NULL = fresh. */
static int callback(const char *supplier, const char *secret, const char *webhook_id, const char *body,
                    char *code, size_t cap)
{
	char path[128];
	snprintf(path, sizeof path, "/v1/suppliers/%s/callbacks", supplier);
	struct https_resp r;
	int status = 0;
	if (code)
		code[0] = '\0';
	if (https_post_signed(srv.port, path, secret, webhook_id, (int64_t)time(NULL), body, &r) == 0) {
		status = r.status;
		json_t *j = json_loads(r.body, 0, NULL);
		const char *c = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
		if (!c)
			c = json_string_value(json_object_get(j, "status"));
		if (code && c)
			snprintf(code, cap, "%s", c);
		json_decref(j);
	}
	https_resp_free(&r);
	return status;
}

static char *event_body(const char *type, const char *request_id, const char *extra)
{
	char *b = malloc(1024);
	snprintf(b, 1024, "{\"type\":\"fulfillment.%s\",\"request_id\":\"%s\","
	                  "\"occurred_at\":\"2026-11-23T08:00:00Z\"%s%s}",
	         type, request_id, extra ? "," : "", extra ? extra : "");
	return b;
}

static long events_of(const char *request_id)
{
	const char *v[] = { request_id };
	return testdb_count(db, "SELECT count(*) FROM request_events WHERE request_id = $1::uuid", 1, v);
}

static char *order_status(const char *order_id)
{
	const char *v[] = { order_id };
	return testdb_value(db, "SELECT status FROM orders WHERE id = $1", 1, v);
}

#define TRACKING "\"tracking\":{\"carrier\":\"UPS\",\"number\":\"1Z999\",\"url\":\"https://t.example/1Z999\"}"

static void test_lifecycle_to_delivered(void)
{
	char *oid = order("CB-1", "SKU-acme", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(oid);
	char *rid = request_of(oid, "acme");
	CU_ASSERT_PTR_NOT_NULL_FATAL(rid);
	char code[64];
	char *accepted = event_body("accepted", rid, NULL);
	CU_ASSERT_EQUAL(callback("acme", SUP_SECRET, "evt_cb1_accepted", accepted, code, sizeof code), 200);
	CU_ASSERT_STRING_EQUAL(code, "accepted");
	/* A replay (same delivery id) and a repeat (same type) change nothing. */
	CU_ASSERT_EQUAL(callback("acme", SUP_SECRET, "evt_cb1_accepted", accepted, NULL, 0), 200);
	CU_ASSERT_EQUAL(callback("acme", SUP_SECRET, NULL, accepted, NULL, 0), 200);
	CU_ASSERT_EQUAL(events_of(rid), 1);

	/* Illegal: delivered before shipped. */
	char *delivered = event_body("delivered", rid, NULL);
	CU_ASSERT_EQUAL(callback("acme", SUP_SECRET, NULL, delivered, code, sizeof code), 409);
	CU_ASSERT_STRING_EQUAL(code, "invalid_transition");
	CU_ASSERT_EQUAL(events_of(rid), 1);

	/* shipped needs tracking. */
	char *untracked = event_body("shipped", rid, NULL);
	CU_ASSERT_EQUAL(callback("acme", SUP_SECRET, NULL, untracked, code, sizeof code), 422);
	char *shipped = event_body("shipped", rid, TRACKING);
	CU_ASSERT_EQUAL(callback("acme", SUP_SECRET, NULL, shipped, code, sizeof code), 200);
	char *st = order_status(oid);
	CU_ASSERT_STRING_EQUAL(st ? st : "", "shipped");
	free(st);
	const char *v[] = { rid, oid };
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM fulfillment_requests WHERE id = $1::uuid"
	                                 " AND status = 'shipped' AND carrier = 'UPS' AND tracking_number = '1Z999'",
	                             1, v), 1);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM outbox WHERE kind = 'order.shipped'"
	                                 " AND payload->'tracking'->>'number' = '1Z999'"
	                                 " AND payload->>'order_id' = $2 AND request_id IS NULL"
	                                 " AND $1 <> ''", 2, v), 1);

	CU_ASSERT_EQUAL(callback("acme", SUP_SECRET, NULL, delivered, code, sizeof code), 200);
	st = order_status(oid);
	CU_ASSERT_STRING_EQUAL(st ? st : "", "delivered");
	free(st);
	CU_ASSERT_EQUAL(events_of(rid), 3);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM outbox WHERE kind = 'order.delivered'"
	                                 " AND payload->>'order_id' = $2 AND $1 <> ''", 2, v), 1);
	/* The audit log cannot be rewritten. */
	CU_ASSERT_NOT_EQUAL(testdb_exec(db, "UPDATE request_events SET type = 'x' WHERE request_id = $1::uuid",
	                                1, v), 0);
	free(accepted); free(delivered); free(untracked); free(shipped); free(rid); free(oid);
}

/* What the store's endpoint got for one order, counted by store_heard_all. */
struct store_wait {
	const char *of_order;   /* "\"order_id\": \"ID\"" */
	size_t shipped, delivered;
};

/* True once the store has two order.shipped and one order.delivered. */
static bool store_heard_all(void *arg)
{
	struct store_wait *w = arg;
	w->shipped = receiver_count(&store_rx, w->of_order, "\"order.shipped\"");
	w->delivered = receiver_count(&store_rx, w->of_order, "\"order.delivered\"");
	return w->shipped >= 2 && w->delivered >= 1;
}

static void test_split_order_ships_in_parts(void)
{
	char *oid = order("CB-2", "SKU-acme", "SKU-bolt");
	CU_ASSERT_PTR_NOT_NULL_FATAL(oid);
	char *ra = request_of(oid, "acme"), *rb = request_of(oid, "bolt");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ra);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rb);
	const char *steps[] = { "accepted", "shipped" };
	for (int i = 0; i < 2; i++) {
		char *b = event_body(steps[i], ra, i ? TRACKING : NULL);
		CU_ASSERT_EQUAL(callback("acme", SUP_SECRET, NULL, b, NULL, 0), 200);
		free(b);
	}
	char *st = order_status(oid);
	CU_ASSERT_STRING_EQUAL(st ? st : "", "partially_shipped");
	free(st);
	for (int i = 0; i < 2; i++) {
		char *b = event_body(steps[i], rb, i ? TRACKING : NULL);
		CU_ASSERT_EQUAL(callback("bolt", OTHER_SECRET, NULL, b, NULL, 0), 200);
		free(b);
	}
	st = order_status(oid);
	CU_ASSERT_STRING_EQUAL(st ? st : "", "shipped");
	free(st);
	char *da = event_body("delivered", ra, NULL), *db_ = event_body("delivered", rb, NULL);
	CU_ASSERT_EQUAL(callback("acme", SUP_SECRET, NULL, da, NULL, 0), 200);
	CU_ASSERT_EQUAL(callback("bolt", OTHER_SECRET, NULL, db_, NULL, 0), 200);
	st = order_status(oid);
	CU_ASSERT_STRING_EQUAL(st ? st : "", "delivered");
	free(st);
	free(da);
	free(db_);

	/* The store's endpoint gets, signed with the store's secret: one
	 * order.shipped per parcel (with tracking) and one order.delivered. */
	char of_order[96];
	snprintf(of_order, sizeof of_order, "\"order_id\": \"%s\"", oid);
	struct store_wait heard = { of_order, 0, 0 };
	/* No assertion on the wait itself: the exact counts below are it. */
	(void)wait_until(store_heard_all, &heard, 10000, 100);
	CU_ASSERT_EQUAL(heard.shipped, 2);
	CU_ASSERT_EQUAL(heard.delivered, 1);
	char *hdr = NULL, *body = NULL;
	CU_ASSERT_FATAL(receiver_find(&store_rx, "\"order.delivered\"", &hdr, &body) >= 0);
	struct https_resp fake = { .headers = hdr };
	char id[128], ts[32], sig[256];
	const char *secrets[] = { SECRET };
	CU_ASSERT_EQUAL(sig_verify_standard(secrets, 1, https_header(&fake, "webhook-id", id, sizeof id),
	                                    https_header(&fake, "webhook-timestamp", ts, sizeof ts),
	                                    https_header(&fake, "webhook-signature", sig, sizeof sig),
	                                    body, strlen(body), (int64_t)time(NULL), SIG_TOLERANCE_S), SIG_OK);
	free(hdr);
	free(body);
	free(ra); free(rb); free(oid);
}

static void test_rejection_releases_stock(void)
{
	const char *sku[] = { "SKU-bolt" };
	long before = testdb_count(db, "SELECT stock FROM offers WHERE sku = $1", 1, sku);
	char *oid = order("CB-3", "SKU-bolt", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(oid);
	char *rid = request_of(oid, "bolt");
	CU_ASSERT_PTR_NOT_NULL_FATAL(rid);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT stock FROM offers WHERE sku = $1", 1, sku), before - 2);
	char *b = event_body("rejected", rid, "\"reason\":\"out_of_stock\"");
	CU_ASSERT_EQUAL(callback("bolt", OTHER_SECRET, NULL, b, NULL, 0), 200);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT stock FROM offers WHERE sku = $1", 1, sku), before);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM offers WHERE sku = $1 AND NOT available", 1, sku), 1);
	char *st = order_status(oid);
	CU_ASSERT_STRING_EQUAL(st ? st : "", "needs_attention");
	free(st);
	const char *v[] = { oid };
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM order_lines WHERE order_id = $1"
	                                 " AND status = 'unroutable' AND reserved = 0", 1, v), 1);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM outbox WHERE kind = 'order.needs_attention'"
	                                 " AND payload->>'order_id' = $1", 1, v), 1);
	testdb_exec(db, "UPDATE offers SET available = true WHERE sku = 'SKU-bolt'", 0, NULL);
	free(b); free(rid); free(oid);
}

static void test_refusals(void)
{
	char *oid = order("CB-4", "SKU-acme", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(oid);
	char *rid = request_of(oid, "acme");
	CU_ASSERT_PTR_NOT_NULL_FATAL(rid);
	char code[64];
	char *b = event_body("accepted", rid, NULL);
	/* Another supplier's request, even correctly signed by that other supplier. */
	CU_ASSERT_EQUAL(callback("bolt", OTHER_SECRET, NULL, b, code, sizeof code), 404);
	CU_ASSERT_EQUAL(callback("acme", OTHER_SECRET, NULL, b, code, sizeof code), 401);
	CU_ASSERT_STRING_EQUAL(code, "invalid_signature");
	CU_ASSERT_EQUAL(callback("nobody", SUP_SECRET, NULL, b, code, sizeof code), 404);
	CU_ASSERT_STRING_EQUAL(code, "unknown_supplier");
	char *unknown = event_body("accepted", "00000000-0000-4000-8000-000000000000", NULL);
	CU_ASSERT_EQUAL(callback("acme", SUP_SECRET, NULL, unknown, code, sizeof code), 404);
	char *garbage = event_body("accepted", "not-a-uuid", NULL);
	CU_ASSERT_EQUAL(callback("acme", SUP_SECRET, NULL, garbage, code, sizeof code), 422);
	char *badtype = event_body("teleported", rid, NULL);
	CU_ASSERT_EQUAL(callback("acme", SUP_SECRET, NULL, badtype, code, sizeof code), 422);
	CU_ASSERT_EQUAL(events_of(rid), 0);
	const char *v[] = { rid };
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM fulfillment_requests WHERE id = $1::uuid"
	                                 " AND status = 'sent'", 1, v), 1);
	free(b); free(unknown); free(garbage); free(badtype); free(rid); free(oid);
}

/* True once the cancellation of request id arg has reached the supplier. */
static bool cancel_delivered(void *arg)
{
	const char *v[] = { arg };
	return testdb_count(db, "SELECT count(*) FROM outbox WHERE request_id = $1::uuid"
	                        " AND kind = 'fulfillment.cancel_requested' AND state = 'delivered'",
	                    1, v) == 1;
}

/* The store cancels: the supplier is asked to cancel (same request id), the
 * stock comes back, and the supplier's confirmation cancels the request. */
static void test_cancellation_reaches_supplier(void)
{
	const char *sku[] = { "SKU-acme" };
	long before = testdb_count(db, "SELECT stock FROM offers WHERE sku = $1", 1, sku);
	char *oid = order("CB-5", "SKU-acme", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(oid);
	char *rid = request_of(oid, "acme");
	CU_ASSERT_PTR_NOT_NULL_FATAL(rid);
	const char *body = "{\"type\":\"order.cancelled\",\"order\":{\"id\":\"CB-5\"}}";
	struct https_resp r;
	CU_ASSERT_EQUAL_FATAL(https_post_signed(srv.port, "/v1/stores/shop/webhooks", SECRET, "msg_cb_cancel",
	                                        (int64_t)time(NULL), body, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	https_resp_free(&r);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT stock FROM offers WHERE sku = $1", 1, sku), before);
	const char *v[] = { rid };
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM outbox WHERE request_id = $1::uuid"
	                                 " AND kind = 'fulfillment.cancel_requested'"
	                                 " AND (payload->>'request_id')::uuid = $1::uuid", 1, v), 1);
	/* ...and is delivered to the supplier. */
	CU_ASSERT_TRUE(wait_until(cancel_delivered, rid, 10000, 100));
	char *confirm = event_body("cancelled", rid, NULL);
	CU_ASSERT_EQUAL(callback("acme", SUP_SECRET, NULL, confirm, NULL, 0), 200);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM fulfillment_requests WHERE id = $1::uuid"
	                                 " AND status = 'cancelled'", 1, v), 1);
	char *st = order_status(oid);
	CU_ASSERT_STRING_EQUAL(st ? st : "", "cancelled");
	free(st);
	/* Shipping after a cancellation is refused. */
	char *shipped = event_body("shipped", rid, TRACKING);
	CU_ASSERT_EQUAL(callback("acme", SUP_SECRET, NULL, shipped, NULL, 0), 409);
	free(shipped); free(confirm); free(rid); free(oid);
}

/* True once order id arg's line is routed to acme. */
static bool rerouted_to_acme(void *arg)
{
	const char *v[] = { arg };
	return testdb_count(db, "SELECT count(*) FROM order_lines l JOIN suppliers s ON s.id = l.supplier_id"
	                        " WHERE l.order_id = $1 AND s.code = 'acme' AND l.status = 'routed'", 1, v) == 1;
}

/* A supplier that never accepts within its accept_within (1 s here; its
 * endpoint is the simulator, which acknowledges and stays silent): the
 * request counts as rejected for timeout, with no human step, the supplier
 * is asked to cancel and the line goes to the next supplier. */
static void test_missed_deadline(void)
{
	CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
	        "WITH s AS (INSERT INTO suppliers (code, endpoint, secrets, accept_within)"
	        "   SELECT 'snail', endpoint, secrets, '1 second'"
	        "   FROM suppliers WHERE code = 'acme' RETURNING id)"
	        " INSERT INTO offers (supplier_id, sku, supplier_sku, cost, stock, lead_time_days)"
	        " SELECT id, 'SKU-snail', 'X', 1, 10, 1 FROM s"
	        " UNION ALL SELECT id, 'SKU-snail', 'Y', 5, 10, 1 FROM suppliers WHERE code = 'acme'",
	        0, NULL), 0);
	char *oid = order("CB-6", "SKU-snail", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(oid);
	const char *v[] = { oid };
	CU_ASSERT_TRUE(wait_until(rerouted_to_acme, oid, 10000, 100));
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM fulfillment_requests r JOIN suppliers s"
	                                 " ON s.id = r.supplier_id WHERE r.order_id = $1 AND s.code = 'snail'"
	                                 " AND r.status = 'rejected' AND r.reason = 'timeout'", 1, v), 1);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT o.stock FROM offers o JOIN suppliers s ON s.id = o.supplier_id"
	                                 " WHERE s.code = 'snail'", 0, NULL), 10);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM request_events e JOIN fulfillment_requests r"
	                                 " ON r.id = e.request_id WHERE r.order_id = $1 AND e.to_status = 'rejected'"
	                                 " AND e.payload->>'missed' = 'accept_within'", 1, v), 1);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM outbox m JOIN fulfillment_requests r ON r.id = m.request_id"
	                                 " WHERE r.order_id = $1 AND m.kind = 'fulfillment.cancel_requested'", 1, v), 1);
	char *st = order_status(oid);
	CU_ASSERT_STRING_EQUAL(st ? st : "", "routed");
	free(st);
	free(oid);
}

static bool sloth_request_sent(void *arg)
{
	const char *v[] = { arg };
	return testdb_count(db, "SELECT count(*) FROM fulfillment_requests r JOIN suppliers s ON s.id = r.supplier_id"
	                        " WHERE r.order_id = $1 AND s.code = 'sloth' AND r.status = 'sent'", 1, v) == 1;
}

/* A supplier's deadline shortened while its request is open applies to
 * that request: the sweep reads each request's own due time, which the
 * change of the supplier moves. */
static void test_deadline_shortened(void)
{
	CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
	        "WITH s AS (INSERT INTO suppliers (code, endpoint, secrets, accept_within)"
	        "   SELECT 'sloth', endpoint, secrets, '1 day'"
	        "   FROM suppliers WHERE code = 'acme' RETURNING id)"
	        " INSERT INTO offers (supplier_id, sku, supplier_sku, cost, stock, lead_time_days)"
	        " SELECT id, 'SKU-sloth', 'X', 1, 10, 1 FROM s"
	        " UNION ALL SELECT id, 'SKU-sloth', 'Y', 5, 10, 1 FROM suppliers WHERE code = 'acme'",
	        0, NULL), 0);
	char *oid = order("CB-6b", "SKU-sloth", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(oid);
	const char *v[] = { oid };
	CU_ASSERT_TRUE_FATAL(wait_until(sloth_request_sent, oid, 10000, 50));
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM fulfillment_requests r WHERE r.order_id = $1"
	                                 " AND r.due_at BETWEEN r.created_at + interval '23 hours'"
	                                 " AND r.created_at + interval '25 hours'", 1, v), 1);
	wait_ms(1500); /* a sweep or more: a day is not up */
	CU_ASSERT_TRUE(sloth_request_sent(oid));
	CU_ASSERT_EQUAL(testdb_exec(db, "UPDATE suppliers SET accept_within = '1 second' WHERE code = 'sloth'",
	                            0, NULL), 0);
	CU_ASSERT_TRUE(wait_until(rerouted_to_acme, oid, 10000, 100));
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM fulfillment_requests r JOIN suppliers s"
	                                 " ON s.id = r.supplier_id WHERE r.order_id = $1 AND s.code = 'sloth'"
	                                 " AND r.status = 'rejected' AND r.reason = 'timeout' AND r.due_at IS NULL",
	                                 1, v), 1);
	free(oid);
}

/* A rejection re-routes the lines to the next supplier in the same
 * transaction; when none is left the order needs attention. */
static void test_rejection_reroutes(void)
{
	CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
	        "INSERT INTO offers (supplier_id, sku, supplier_sku, cost, stock, lead_time_days)"
	        " SELECT id, 'SKU-multi', 'M', CASE code WHEN 'acme' THEN 1 ELSE 2 END, 10, 1"
	        " FROM suppliers WHERE code IN ('acme', 'bolt')", 0, NULL), 0);
	char *oid = order("CB-7", "SKU-multi", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(oid);
	char *ra = request_of(oid, "acme");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ra);
	char *b = event_body("rejected", ra, "\"reason\":\"out_of_stock\"");
	CU_ASSERT_EQUAL(callback("acme", SUP_SECRET, NULL, b, NULL, 0), 200);
	free(b);
	const char *v[] = { oid };
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM order_lines l JOIN suppliers s ON s.id = l.supplier_id"
	                                 " WHERE l.order_id = $1 AND s.code = 'bolt' AND l.status = 'routed'"
	                                 " AND l.reserved = 2 AND l.request_id IS NOT NULL", 1, v), 1);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM routing_decisions WHERE order_id = $1 AND attempt = 2",
	                             1, v), 1);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT stock FROM offers o JOIN suppliers s ON s.id = o.supplier_id"
	                                 " WHERE s.code = 'acme' AND o.sku = 'SKU-multi' AND NOT o.available", 0, NULL), 10);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT stock FROM offers o JOIN suppliers s ON s.id = o.supplier_id"
	                                 " WHERE s.code = 'bolt' AND o.sku = 'SKU-multi'", 0, NULL), 8);
	char *st = order_status(oid);
	CU_ASSERT_STRING_EQUAL(st ? st : "", "routed");
	free(st);
	/* The new request is forwarded; when bolt rejects too, nobody is left. */
	char *rb = request_of(oid, "bolt");
	CU_ASSERT_PTR_NOT_NULL_FATAL(rb);
	b = event_body("rejected", rb, "\"reason\":\"cannot_ship\"");
	CU_ASSERT_EQUAL(callback("bolt", OTHER_SECRET, NULL, b, NULL, 0), 200);
	free(b);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM order_lines WHERE order_id = $1"
	                                 " AND status = 'unroutable' AND reserved = 0 AND supplier_id IS NULL", 1, v), 1);
	st = order_status(oid);
	CU_ASSERT_STRING_EQUAL(st ? st : "", "needs_attention");
	free(st);
	testdb_exec(db, "UPDATE offers SET available = true", 0, NULL);
	free(ra); free(rb); free(oid);
}

/* A request shipped in two parcels: the first lists its line, the order is
 * partially shipped and the request stays accepted; the second ships the rest. */
static void test_partial_shipment(void)
{
	char *oid = order("CB-8", "SKU-acme", "SKU-acme");
	CU_ASSERT_PTR_NOT_NULL_FATAL(oid);
	char *rid = request_of(oid, "acme");
	CU_ASSERT_PTR_NOT_NULL_FATAL(rid);
	char *b = event_body("accepted", rid, NULL);
	CU_ASSERT_EQUAL(callback("acme", SUP_SECRET, NULL, b, NULL, 0), 200);
	free(b);
	char code[64];
	b = event_body("shipped", rid, TRACKING ",\"items\":[{\"line\":7}]");
	CU_ASSERT_EQUAL(callback("acme", SUP_SECRET, NULL, b, code, sizeof code), 422);
	free(b);
	b = event_body("shipped", rid, TRACKING ",\"items\":[{\"line\":2}]");
	CU_ASSERT_EQUAL(callback("acme", SUP_SECRET, NULL, b, code, sizeof code), 200);
	CU_ASSERT_STRING_EQUAL(code, "accepted");
	free(b);
	char *st = order_status(oid);
	CU_ASSERT_STRING_EQUAL(st ? st : "", "partially_shipped");
	free(st);
	const char *v[] = { oid };
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM order_lines WHERE order_id = $1 AND line_no = 2"
	                                 " AND status = 'shipped' AND tracking_number = '1Z999'", 1, v), 1);
	b = event_body("shipped", rid, "\"tracking\":{\"carrier\":\"DHL\",\"number\":\"JD01\"}");
	CU_ASSERT_EQUAL(callback("acme", SUP_SECRET, NULL, b, code, sizeof code), 200);
	CU_ASSERT_STRING_EQUAL(code, "shipped");
	free(b);
	st = order_status(oid);
	CU_ASSERT_STRING_EQUAL(st ? st : "", "shipped");
	free(st);
	/* Each parcel keeps its own tracking; the store hears of both. */
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM order_lines WHERE order_id = $1 AND"
	                                 " ((line_no = 1 AND tracking_number = 'JD01') OR"
	                                 "  (line_no = 2 AND tracking_number = '1Z999'))", 1, v), 2);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM outbox WHERE kind = 'order.shipped'"
	                                 " AND payload->>'order_id' = $1", 1, v), 2);
	free(rid); free(oid);
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
		{ "accepted, shipped, delivered; replays and repeats change nothing; 409 for illegal", test_lifecycle_to_delivered },
		{ "an order split over two suppliers: partially_shipped then shipped", test_split_order_ships_in_parts },
		{ "a rejection gives the stock back and the order needs attention", test_rejection_releases_stock },
		{ "wrong supplier, bad signature, unknown request or type are refused", test_refusals },
		{ "a cancellation reaches the supplier and frees the stock", test_cancellation_reaches_supplier },
		{ "a rejection re-routes to the next supplier, then needs attention", test_rejection_reroutes },
		{ "a request shipped in two parcels", test_partial_shipment },
		{ "a missed accept deadline counts as a rejection, with no human step", test_missed_deadline },
		{ "a deadline shortened while a request is open applies to it", test_deadline_shortened },
		{ "no order is stuck where stranded_orders does not show it", test_nothing_stranded_unseen },
		{ NULL, NULL },
	};
	return harness_main("callbacks", suite_init, suite_cleanup, tests);
}
