/* End to end: Shopify and WooCommerce stores. The platforms' documented
 * order payloads (tests/fixtures) are signed the way each platform signs
 * them, posted to dropshipd, and followed into the database and out to the
 * supplier (a test receiver standing in for its endpoint). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <jansson.h>

#include "sig/sig.h"
#include "support/ctl.h"
#include "support/harness.h"
#include "support/https.h"
#include "support/receiver.h"
#include "support/stranded.h"
#include "support/testdb.h"
#include "support/testsrv.h"
#include "support/wait.h"

#define NATIVE_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SUP_SECRET "whsec_c2Vjb25kLXNlY3JldC1mb3ItdGVzdHMtMTIzNA=="
/* Platform secrets are used as raw bytes, as the platforms do. */
#define SHOPIFY_SECRET "shpss_0123456789abcdef0123456789abcdef"
#define WOO_SECRET "wc-webhook-secret-!@#-42"

static char conninfo[512];
static PGconn *db;
static struct testsrv srv;
static struct receiver supplier_rx;
static unsigned long seq;

enum platform { SHOPIFY, WOO };

static int suite_init(void)
{
	const char *tls = getenv("DROPSHIP_TEST_TLS_DIR");
	char cert[300], key[300], conf[600];
	snprintf(cert, sizeof cert, "%s/server.crt", tls ? tls : "/tmp");
	snprintf(key, sizeof key, "%s/server.key", tls ? tls : "/tmp");
	if (testsrv_prepare_db("dropship_storefronts", NATIVE_SECRET, conninfo, sizeof conninfo) < 0 ||
	    ctl_rc(conninfo, "store", "add", "shopi", "--secret", SHOPIFY_SECRET, "--format", "shopify",
	           NULL) != 0 ||
	    ctl_rc(conninfo, "store", "add", "woo", "--secret", WOO_SECRET, "--format", "woocommerce",
	           NULL) != 0 ||
	    !(db = testdb_connect(conninfo)) || receiver_start(&supplier_rx, cert, key) < 0)
		return -1;
	char port[16];
	snprintf(port, sizeof port, "%d", supplier_rx.port);
	const char *v[] = { port };
	/* The SKUs of the documentation examples. */
	if (testdb_exec(db,
	        "WITH s AS (INSERT INTO suppliers (code, endpoint, secrets) VALUES"
	        "   ('acme', 'https://127.0.0.1:' || $1 || '/fulfillments', ARRAY['" SUP_SECRET "'])"
	        "   RETURNING id)"
	        " INSERT INTO offers (supplier_id, sku, supplier_sku, cost, stock, lead_time_days, ships_to)"
	        " SELECT s.id, k, 'AC-' || k, 10, 100, 2, ARRAY['US'] FROM s,"
	        "   unnest(ARRAY['IPOD2008GREEN', 'IPOD2008RED', 'IPOD2008BLACK', 'Bar3']) AS k",
	        1, v) != 0)
		return -1;
	snprintf(conf, sizeof conf, "[dispatch]\nallow_private_endpoints = true\ntls_ca_file = %s\n", cert);
	return testsrv_start(&srv, conninfo, conf, 1);
}

static int suite_cleanup(void)
{
	int rc = srv.pid > 0 ? testsrv_stop(&srv, SIGTERM) : 0;
	receiver_stop(&supplier_rx);
	if (db)
		PQfinish(db);
	return rc == 0 ? 0 : -1;
}

/* The platform's documented order (tests/fixtures), as a JSON document. */
static json_t *fixture(enum platform pf)
{
	const char *root = getenv("DROPSHIP_TEST_ROOT");
	char path[512];
	snprintf(path, sizeof path, "%s/tests/fixtures/%s", root ? root : ".",
	         pf == SHOPIFY ? "shopify-order.json" : "woocommerce-order.json");
	json_t *doc = json_load_file(path, 0, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
	return doc;
}

struct reply {
	int status;
	json_t *body;   /* NULL when not JSON */
};

static const char *reply_str(const struct reply *r, const char *key)
{
	return json_string_value(json_object_get(r->body, key));
}

static const char *reply_error(const struct reply *r)
{
	return json_string_value(json_object_get(json_object_get(r->body, "error"), "code"));
}

/* Posts body to the platform store as the platform does: topic header,
 * delivery id, and the base64 HMAC of the body, signed with secret (NULL:
 * no signature header), then replaces the body by tamper when given. */
static struct reply post_as(enum platform pf, const char *topic, const char *body, const char *secret,
                            const char *tamper)
{
	char sig[SIG_V1_MAX] = "", hdrs[1024], sig_line[128] = "";
	int shopify = pf == SHOPIFY;
	if (secret) {
		CU_ASSERT_EQUAL_FATAL(sig_sign_hmac_b64(secret, body, strlen(body), sig, sizeof sig), 0);
		snprintf(sig_line, sizeof sig_line, "%s: %s\r\n",
		         shopify ? "X-Shopify-Hmac-Sha256" : "X-WC-Webhook-Signature", sig);
	}
	++seq;
	if (shopify)
		snprintf(hdrs, sizeof hdrs,
		         "Content-Type: application/json\r\n%sX-Shopify-Topic: %s\r\n"
		         "X-Shopify-Webhook-Id: b54557e4-bdd9-4b37-8a5f-bf7d70bc%04lu\r\n"
		         "X-Shopify-Event-Id: 98880550-7158-44d4-b7cd-2c97c8a%05lu\r\n"
		         "X-Shopify-Shop-Domain: example.myshopify.com\r\nX-Shopify-API-Version: 2025-10\r\n",
		         sig_line, topic, seq, seq);
	else
		snprintf(hdrs, sizeof hdrs,
		         "Content-Type: application/json\r\n%sX-WC-Webhook-Topic: %s\r\n"
		         "X-WC-Webhook-Delivery-ID: %lu\r\nX-WC-Webhook-ID: 12\r\n"
		         "X-WC-Webhook-Source: https://example.com/\r\nX-WC-Webhook-Resource: order\r\n",
		         sig_line, topic, 9000 + seq);
	const char *sent = tamper ? tamper : body;
	struct https_resp r;
	struct reply out = { 0, NULL };
	const char *path = shopify ? "/v1/stores/shopi/webhooks" : "/v1/stores/woo/webhooks";
	if (https_once(srv.port, "POST", path, hdrs, sent, strlen(sent), &r) == 0) {
		out.status = r.status;
		out.body = json_loads(r.body, 0, NULL);
	}
	https_resp_free(&r);
	return out;
}

/* Posts doc signed with the platform store's secret. */
static struct reply post_doc(enum platform pf, const char *topic, json_t *doc)
{
	char *body = json_dumps(doc, JSON_COMPACT);
	struct reply r = post_as(pf, topic, body, pf == SHOPIFY ? SHOPIFY_SECRET : WOO_SECRET, NULL);
	free(body);
	return r;
}

static void reply_free(struct reply *r)
{
	json_decref(r->body);
	r->body = NULL;
}

static long orders_of(const char *store, const char *external_id)
{
	const char *v[] = { store, external_id };
	return testdb_count(db, "SELECT count(*) FROM orders o JOIN stores s ON s.id = o.store_id"
	                        " WHERE s.code = $1 AND o.external_id = $2", 2, v);
}

static char *order_field(const char *store, const char *external_id, const char *column_sql)
{
	char sql[2048];
	snprintf(sql, sizeof sql, "SELECT %s FROM orders o JOIN stores s ON s.id = o.store_id"
	                          " WHERE s.code = $1 AND o.external_id = $2", column_sql);
	const char *v[] = { store, external_id };
	return testdb_value(db, sql, 2, v);
}

/* Checks the reply's line i: sku (NULL: JSON null), status and reason (NULL: null). */
static void check_line(const struct reply *r, size_t i, const char *sku, const char *status,
                       const char *reason)
{
	json_t *line = json_array_get(json_object_get(r->body, "lines"), i);
	CU_ASSERT_PTR_NOT_NULL_FATAL(line);
	json_t *s = json_object_get(line, "sku");
	CU_ASSERT(sku ? json_is_string(s) && strcmp(json_string_value(s), sku) == 0 : json_is_null(s));
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(line, "status")), status);
	json_t *why = json_object_get(line, "reason");
	CU_ASSERT(reason ? json_is_string(why) && strcmp(json_string_value(why), reason) == 0
	                 : json_is_null(why));
}

/* What supplier_got waits for: a message whose body holds both a and b. */
struct supplier_wait {
	const char *a, *b;
};

static bool supplier_has(void *arg)
{
	const struct supplier_wait *w = arg;
	return receiver_count(&supplier_rx, w->a, w->b) > 0;
}

/* The supplier received a message whose body holds both a and b (b may be
 * NULL); waits for the dispatcher. */
static int supplier_got(const char *a, const char *b)
{
	struct supplier_wait w = { a, b };
	return wait_until(supplier_has, &w, 10000, 100);
}

static void test_shopify_order_routed_and_forwarded(void)
{
	json_t *doc = fixture(SHOPIFY);
	struct reply r = post_doc(SHOPIFY, "orders/create", doc);
	CU_ASSERT_EQUAL_FATAL(r.status, 202);
	CU_ASSERT_STRING_EQUAL(reply_str(&r, "status"), "routed");
	CU_ASSERT(json_is_false(json_object_get(r.body, "duplicate")));
	check_line(&r, 0, "IPOD2008GREEN", "routed", NULL);
	check_line(&r, 1, "IPOD2008RED", "routed", NULL);
	check_line(&r, 2, "IPOD2008BLACK", "routed", NULL);
	reply_free(&r);

	/* Mapped and kept: the order's name, the delivery and event ids, the
	 * address, the variant ids, and the whole payload for audit. */
	char *got = order_field("shopi", "450789469",
	        "o.name || '|' || o.webhook_id || '|' || o.event_id || '|' || o.ship_name || '|'"
	        " || o.ship_line1 || '|' || o.ship_city || '|' || o.ship_region || '|' || o.ship_postal_code"
	        " || '|' || o.ship_country || '|' || o.customer_email || '|' || o.currency || '|'"
	        " || (o.raw->>'total_price') || '|' || (SELECT string_agg(l.variant_id, ',' ORDER BY l.line_no)"
	        "   FROM order_lines l WHERE l.store_id = o.store_id AND l.order_id = o.id)");
	CU_ASSERT_PTR_NOT_NULL_FATAL(got);
	CU_ASSERT(strncmp(got, "#1001|b54557e4-", 15) == 0);
	CU_ASSERT(strstr(got, "|98880550-") != NULL);
	CU_ASSERT(strstr(got, "|Bob Norman|Chestnut Street 92|Louisville|KY|40202|US|"
	                      "bob.norman@mail.example.com|USD|598.94|39072856,49148385,457924702") != NULL);
	free(got);
	/* One request to the supplier, carrying the order's three lines. */
	CU_ASSERT(supplier_got("\"450789469\"", "\"AC-IPOD2008BLACK\""));
	json_decref(doc);
}

static void expect_401(struct reply r, const char *code)
{
	CU_ASSERT_EQUAL(r.status, 401);
	CU_ASSERT_STRING_EQUAL(reply_error(&r) ? reply_error(&r) : "", code);
	reply_free(&r);
}

/* body refused: with the first byte of `change` altered after signing,
 * signed with another store's secret, and unsigned. */
static void expect_refused(enum platform pf, const char *topic, const char *body, const char *change,
                           const char *foreign_secret)
{
	const char *secret = pf == SHOPIFY ? SHOPIFY_SECRET : WOO_SECRET;
	char *tampered = strdup(body);
	char *at = strstr(tampered, change);
	CU_ASSERT_PTR_NOT_NULL_FATAL(at);
	at[at[0] == '"' ? 1 : 0] ^= 1;
	expect_401(post_as(pf, topic, body, secret, tampered), "invalid_signature");
	expect_401(post_as(pf, topic, body, foreign_secret, NULL), "invalid_signature");
	expect_401(post_as(pf, topic, body, NULL, NULL), "missing_signature");
	free(tampered);
}

static void test_shopify_signature(void)
{
	json_t *doc = fixture(SHOPIFY);
	json_object_set_new(doc, "id", json_integer(450789470));
	char *body = json_dumps(doc, JSON_COMPACT);
	/* A changed price after signing, another store's secret, no signature. */
	expect_refused(SHOPIFY, "orders/create", body, "\"199.00\"", WOO_SECRET);
	CU_ASSERT_EQUAL(orders_of("shopi", "450789470"), 0);
	struct reply r;
	/* The native store does not take a Shopify signature. */
	char sig[SIG_V1_MAX], hdrs[512];
	sig_sign_hmac_b64(NATIVE_SECRET, body, strlen(body), sig, sizeof sig);
	snprintf(hdrs, sizeof hdrs, "Content-Type: application/json\r\nX-Shopify-Hmac-Sha256: %s\r\n"
	                            "X-Shopify-Topic: orders/create\r\n", sig);
	struct https_resp resp;
	CU_ASSERT_EQUAL_FATAL(https_once(srv.port, "POST", "/v1/stores/shop/webhooks", hdrs, body,
	                                 strlen(body), &resp), 0);
	CU_ASSERT_EQUAL(resp.status, 401);
	https_resp_free(&resp);
	/* Signed right, it goes through. */
	r = post_as(SHOPIFY, "orders/create", body, SHOPIFY_SECRET, NULL);
	CU_ASSERT_EQUAL(r.status, 202);
	reply_free(&r);
	CU_ASSERT_EQUAL(orders_of("shopify", "450789470"), 0); /* store codes are exact */
	CU_ASSERT_EQUAL(orders_of("shopi", "450789470"), 1);
	free(body);
	json_decref(doc);
}

static void test_shopify_redelivery_is_duplicate(void)
{
	json_t *doc = fixture(SHOPIFY);
	json_object_set_new(doc, "id", json_integer(450789471));
	struct reply r = post_doc(SHOPIFY, "orders/create", doc);
	CU_ASSERT_EQUAL_FATAL(r.status, 202);
	const char *first = reply_str(&r, "order_id");
	char *oid = strdup(first ? first : "");
	reply_free(&r);
	/* Shopify redelivers with the same body and a new attempt. */
	r = post_doc(SHOPIFY, "orders/create", doc);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(json_is_true(json_object_get(r.body, "duplicate")));
	CU_ASSERT_STRING_EQUAL(reply_str(&r, "order_id"), oid);
	reply_free(&r);
	CU_ASSERT_EQUAL(orders_of("shopi", "450789471"), 1);
	const char *v[] = { oid };
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM fulfillment_requests WHERE order_id = $1", 1, v), 1);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM order_lines WHERE order_id = $1", 1, v), 3);
	free(oid);
	json_decref(doc);
}

static void test_shopify_lines_without_sku_or_address(void)
{
	/* A line without a SKU is kept, unroutable; the others are routed. */
	json_t *doc = fixture(SHOPIFY);
	json_t *items = json_object_get(doc, "line_items");
	json_object_set_new(doc, "id", json_integer(450789472));
	json_object_set_new(json_array_get(items, 1), "sku", json_null());
	struct reply r = post_doc(SHOPIFY, "orders/create", doc);
	CU_ASSERT_EQUAL_FATAL(r.status, 202);
	CU_ASSERT_STRING_EQUAL(reply_str(&r, "status"), "partially_routed");
	check_line(&r, 0, "IPOD2008GREEN", "routed", NULL);
	check_line(&r, 1, NULL, "unroutable", "no_sku");
	reply_free(&r);
	const char *v[] = { "450789472" };
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM routing_decisions d JOIN orders o"
	                                 " ON o.store_id = d.store_id AND o.id = d.order_id"
	                                 " WHERE o.external_id = $1 AND d.reason = 'no_sku'", 1, v), 1);

	/* No address, and lines that need shipping: nothing can go out. */
	json_object_set_new(doc, "id", json_integer(450789473));
	json_object_set_new(json_array_get(items, 1), "sku", json_string("IPOD2008RED"));
	json_object_set_new(doc, "shipping_address", json_null());
	r = post_doc(SHOPIFY, "orders/create", doc);
	CU_ASSERT_EQUAL_FATAL(r.status, 202);
	CU_ASSERT_STRING_EQUAL(reply_str(&r, "status"), "needs_attention");
	check_line(&r, 0, "IPOD2008GREEN", "unroutable", "no_address");
	check_line(&r, 2, "IPOD2008BLACK", "unroutable", "no_address");
	reply_free(&r);
	const char *v2[] = { "450789473" };
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM fulfillment_requests r JOIN orders o"
	                                 " ON o.store_id = r.store_id AND o.id = r.order_id"
	                                 " WHERE o.external_id = $1", 1, v2), 0);

	/* No address and nothing to ship: routed (ships_to does not apply). */
	json_object_set_new(doc, "id", json_integer(450789474));
	for (size_t i = 0; i < json_array_size(items); i++)
		json_object_set_new(json_array_get(items, i), "requires_shipping", json_false());
	r = post_doc(SHOPIFY, "orders/create", doc);
	CU_ASSERT_EQUAL_FATAL(r.status, 202);
	CU_ASSERT_STRING_EQUAL(reply_str(&r, "status"), "routed");
	reply_free(&r);
	char *rs = order_field("shopi", "450789474",
	                       "(SELECT bool_or(requires_shipping)::text FROM order_lines l"
	                       "  WHERE l.store_id = o.store_id AND l.order_id = o.id)");
	CU_ASSERT_STRING_EQUAL(rs ? rs : "", "false");
	free(rs);
	json_decref(doc);
}

static void test_shopify_bad_payloads_change_nothing(void)
{
	json_t *doc = fixture(SHOPIFY);
	json_object_set_new(doc, "id", json_integer(450789475));
	json_object_set_new(json_array_get(json_object_get(doc, "line_items"), 2), "quantity",
	                    json_string("1"));
	struct reply r = post_doc(SHOPIFY, "orders/create", doc);
	CU_ASSERT_EQUAL(r.status, 422);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_object_get(r.body, "error"), "field")),
	                       "line_items[2].quantity");
	reply_free(&r);
	CU_ASSERT_EQUAL(orders_of("shopi", "450789475"), 0);
	/* A topic dropship does not act on is acknowledged and ignored. */
	r = post_doc(SHOPIFY, "orders/updated", doc);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(json_is_true(json_object_get(r.body, "ignored")));
	CU_ASSERT_STRING_EQUAL(reply_str(&r, "reason"), "topic");
	reply_free(&r);
	CU_ASSERT_EQUAL(orders_of("shopi", "450789475"), 0);
	json_decref(doc);
}

/* Order external_id of store: every request either cancelled before it
 * was sent or asked to cancel, status cancelled, stock given back. */
static void check_cancelled(const char *store, const char *external_id)
{
	char *status = order_field(store, external_id, "o.status");
	CU_ASSERT_STRING_EQUAL(status ? status : "", "cancelled");
	free(status);
	const char *v[] = { store, external_id };
	CU_ASSERT_EQUAL(testdb_count(db,
	        "SELECT count(*) FROM fulfillment_requests r JOIN orders o"
	        "   ON o.store_id = r.store_id AND o.id = r.order_id JOIN stores s ON s.id = o.store_id"
	        " WHERE s.code = $1 AND o.external_id = $2 AND r.status <> 'cancelled'"
	        "   AND NOT EXISTS (SELECT 1 FROM outbox m WHERE m.request_id = r.id"
	        "                   AND m.kind = 'fulfillment.cancel_requested')", 2, v), 0);
	CU_ASSERT_EQUAL(testdb_count(db,
	        "SELECT count(*) FROM order_lines l JOIN orders o"
	        "   ON o.store_id = l.store_id AND o.id = l.order_id JOIN stores s ON s.id = o.store_id"
	        " WHERE s.code = $1 AND o.external_id = $2 AND (l.status <> 'cancelled' OR l.reserved <> 0)",
	        2, v), 0);
}

static void test_shopify_cancellation(void)
{
	json_t *doc = fixture(SHOPIFY);
	json_object_set_new(doc, "id", json_integer(450789476));
	long before = testdb_count(db, "SELECT stock FROM offers WHERE sku = 'IPOD2008RED'", 0, NULL);
	struct reply r = post_doc(SHOPIFY, "orders/create", doc);
	CU_ASSERT_EQUAL_FATAL(r.status, 202);
	reply_free(&r);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT stock FROM offers WHERE sku = 'IPOD2008RED'", 0, NULL),
	                before - 1);
	CU_ASSERT(supplier_got("\"450789476\"", "fulfillment.requested"));
	/* Shopify sends the whole order again, with cancelled_at set. */
	json_object_set_new(doc, "cancelled_at", json_string("2026-11-23T10:00:00-05:00"));
	json_object_set_new(doc, "cancel_reason", json_string("customer"));
	r = post_doc(SHOPIFY, "orders/cancelled", doc);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(reply_str(&r, "status"), "cancelled");
	reply_free(&r);
	check_cancelled("shopi", "450789476");
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT stock FROM offers WHERE sku = 'IPOD2008RED'", 0, NULL), before);
	/* The supplier, who had the request, is asked to cancel it. */
	CU_ASSERT(supplier_got("\"450789476\"", "fulfillment.cancel_requested"));
	/* A cancellation for an order dropship never saw: acknowledged. */
	json_object_set_new(doc, "id", json_integer(1));
	r = post_doc(SHOPIFY, "orders/cancelled", doc);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(reply_str(&r, "reason"), "unknown_order");
	reply_free(&r);
	CU_ASSERT_EQUAL(orders_of("shopi", "1"), 0);
	json_decref(doc);
}

static void test_woo_order_routed_and_forwarded(void)
{
	json_t *doc = fixture(WOO);
	struct reply r = post_doc(WOO, "order.created", doc);
	CU_ASSERT_EQUAL_FATAL(r.status, 202);
	/* The documentation's first product has no SKU. */
	CU_ASSERT_STRING_EQUAL(reply_str(&r, "status"), "partially_routed");
	check_line(&r, 0, NULL, "unroutable", "no_sku");
	check_line(&r, 1, "Bar3", "routed", NULL);
	reply_free(&r);
	char *got = order_field("woo", "727",
	        "o.name || '|' || o.webhook_id || '|' || o.ship_name || '|' || o.ship_line1 || '|'"
	        " || o.ship_region || '|' || o.ship_postal_code || '|' || o.ship_country || '|'"
	        " || o.customer_email || '|' || o.customer_name || '|' || o.placed_at AT TIME ZONE 'UTC'"
	        " || '|' || (SELECT string_agg(l.unit_price::text || ':' || l.title, ',' ORDER BY l.line_no)"
	        "   FROM order_lines l WHERE l.store_id = o.store_id AND l.order_id = o.id)");
	CU_ASSERT_PTR_NOT_NULL_FATAL(got);
	CU_ASSERT(strstr(got, "727|9") == got); /* the delivery id */
	CU_ASSERT(strstr(got, "|John Doe|969 Market|CA|94103|US|john.doe@example.com|John Doe|"
	                      "2017-03-22 19:28:02|3.0000:Woo Single #1,12.0000:Ship Your Idea") != NULL);
	free(got);
	CU_ASSERT(supplier_got("\"727\"", "\"AC-Bar3\""));

	/* WooCommerce sends order.updated for every change: a duplicate. */
	r = post_doc(WOO, "order.updated", doc);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(json_is_true(json_object_get(r.body, "duplicate")));
	reply_free(&r);
	CU_ASSERT_EQUAL(orders_of("woo", "727"), 1);
	json_decref(doc);
}

static void test_woo_signature_and_ping(void)
{
	json_t *doc = fixture(WOO);
	json_object_set_new(doc, "id", json_integer(728));
	char *body = json_dumps(doc, JSON_COMPACT);
	/* A changed address after signing, another store's secret, no signature. */
	expect_refused(WOO, "order.created", body, "969 Market", SHOPIFY_SECRET);
	CU_ASSERT_EQUAL(orders_of("woo", "728"), 0);

	/* The ping WooCommerce sends when the webhook is saved: unsigned form. */
	long all = testdb_count(db, "SELECT count(*) FROM orders", 0, NULL);
	static const char ping[] = "webhook_id=12";
	struct https_resp resp;
	CU_ASSERT_EQUAL_FATAL(https_once(srv.port, "POST", "/v1/stores/woo/webhooks",
	                                 "Content-Type: application/x-www-form-urlencoded\r\n", ping,
	                                 strlen(ping), &resp), 0);
	CU_ASSERT_EQUAL(resp.status, 200);
	CU_ASSERT(resp.body && strstr(resp.body, "\"ping\"") != NULL);
	https_resp_free(&resp);
	/* Only WooCommerce stores take it; others still want JSON. */
	CU_ASSERT_EQUAL_FATAL(https_once(srv.port, "POST", "/v1/stores/shopi/webhooks",
	                                 "Content-Type: application/x-www-form-urlencoded\r\n", ping,
	                                 strlen(ping), &resp), 0);
	CU_ASSERT_EQUAL(resp.status, 415);
	https_resp_free(&resp);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM orders", 0, NULL), all);
	free(body);
	json_decref(doc);
}

static void test_woo_paid_then_cancelled(void)
{
	/* Created awaiting payment: not routed yet. */
	json_t *doc = fixture(WOO);
	json_object_set_new(doc, "id", json_integer(729));
	json_object_set_new(doc, "status", json_string("pending"));
	struct reply r = post_doc(WOO, "order.created", doc);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(reply_str(&r, "reason"), "not_paid");
	reply_free(&r);
	CU_ASSERT_EQUAL(orders_of("woo", "729"), 0);
	/* Paid: the update routes it. */
	json_object_set_new(doc, "status", json_string("processing"));
	r = post_doc(WOO, "order.updated", doc);
	CU_ASSERT_EQUAL(r.status, 202);
	CU_ASSERT_STRING_EQUAL(reply_str(&r, "status"), "partially_routed");
	reply_free(&r);
	CU_ASSERT_EQUAL(orders_of("woo", "729"), 1);
	/* Cancelled in the shop: the unshipped request is cancelled. */
	json_object_set_new(doc, "status", json_string("cancelled"));
	r = post_doc(WOO, "order.updated", doc);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(reply_str(&r, "status"), "cancelled");
	reply_free(&r);
	check_cancelled("woo", "729");
	/* Once more (WooCommerce redelivers): same answer, nothing new. */
	long msgs = testdb_count(db, "SELECT count(*) FROM outbox", 0, NULL);
	r = post_doc(WOO, "order.updated", doc);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(reply_str(&r, "status"), "cancelled");
	reply_free(&r);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM outbox", 0, NULL), msgs);
	json_decref(doc);
}

/* Last: whatever the tests above left behind is either on its way or
 * listed by reporting.stranded_orders. */
static void test_nothing_stranded_unseen(void)
{
	stranded_check(db);
}

static const struct harness_test tests[] = {
	{ "shopify: documented order routed and forwarded", test_shopify_order_routed_and_forwarded },
	{ "shopify: tampered, foreign or missing signature is 401", test_shopify_signature },
	{ "shopify: redelivery is a duplicate", test_shopify_redelivery_is_duplicate },
	{ "shopify: no sku, no address", test_shopify_lines_without_sku_or_address },
	{ "shopify: bad payload and other topics change nothing", test_shopify_bad_payloads_change_nothing },
	{ "shopify: orders/cancelled cancels unshipped requests", test_shopify_cancellation },
	{ "woocommerce: documented order routed and forwarded", test_woo_order_routed_and_forwarded },
	{ "woocommerce: signature and the unsigned ping", test_woo_signature_and_ping },
	{ "woocommerce: routed once paid, then cancelled", test_woo_paid_then_cancelled },
	{ "no order is stuck where stranded_orders does not show it", test_nothing_stranded_unseen },
	{ NULL, NULL },
};

int main(void)
{
	return harness_main("storefronts", suite_init, suite_cleanup, tests);
}
