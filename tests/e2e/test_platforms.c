/* End to end: shipped parcels told to the storefront's platform
 * (docs/storefronts.md, Shipments). A Shopify and a WooCommerce store point
 * at build/dropship-platform-stub, an HTTPS stand-in that answers like the
 * platforms' documented APIs (from tests/fixtures/) and logs every call.
 * Orders come in as the platforms' webhooks, are split across two suppliers
 * (receivers that acknowledge), and the test plays the suppliers' shipped
 * callbacks; then it reads what reached the platform. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <jansson.h>

#include "sig/sig.h"
#include "support/ctl.h"
#include "support/harness.h"
#include "support/https.h"
#include "support/proc.h"
#include "support/receiver.h"
#include "support/testdb.h"
#include "support/testsrv.h"
#include "support/wait.h"

#define SHOP_SECRET "shopify-webhook-key"
#define WOO_SECRET "woo-webhook-secret"
#define ACME_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define BOLT_SECRET "whsec_c2Vjb25kLXNlY3JldC1mb3ItdGVzdHMtMTIzNA=="
#define TOKEN "shpat_0123456789abcdef0123456789abcdef"
#define WOO_KEY "ck_4d2f0e8b1c9a7d6e5f4a3b2c1d0e9f8a7b6c5d4e"
#define WOO_SEC "cs_9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d"
/* base64("ck_...:cs_...") */
#define WOO_BASIC "Basic Y2tfNGQyZjBlOGIxYzlhN2Q2ZTVmNGEzYjJjMWQwZTlmOGE3YjZjNWQ0ZTpjc185ZThkN2M2YjVhNGYzZTJkMWMwYjlh" \
                  "OGY3ZTZkNWM0YjNhMmYxZTBk"

static char conninfo[512];
static PGconn *db;
static struct testsrv srv;
static struct receiver suppliers;  /* acme's and bolt's endpoints: they acknowledge */
static unsigned long seq;

/* ---- the platform stub ---- */

struct stub {
	pid_t pid;
	int port;
	char dir[64], log[96];
};

/* Starts the stub with the test certificate and the credentials above, plus extra flags. */
static int stub_start(struct stub *s, const char *const *extra)
{
	memset(s, 0, sizeof *s);
	snprintf(s->dir, sizeof s->dir, "/tmp/dropship-stub.XXXXXX");
	if (!mkdtemp(s->dir))
		return -1;
	snprintf(s->log, sizeof s->log, "%s/stub.log", s->dir);
	const char *root = getenv("DROPSHIP_TEST_ROOT");
	char cert[300], key[300], fixtures[300], line[512];
	snprintf(cert, sizeof cert, "%s/server.crt", testsrv_tls_dir());
	snprintf(key, sizeof key, "%s/server.key", testsrv_tls_dir());
	snprintf(fixtures, sizeof fixtures, "%s/tests/fixtures", root ? root : ".");
	const char *argv[24] = { proc_build_path("dropship-platform-stub"), "--tls-cert", cert, "--tls-key", key,
	                         "--fixtures", fixtures, "--shopify-token", TOKEN, "--woo-key", WOO_KEY,
	                         "--woo-secret", WOO_SEC };
	size_t n = 13;
	for (size_t i = 0; extra && extra[i] && n < 23; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	s->pid = proc_spawn(argv, NULL, s->log);
	if (s->pid <= 0 || proc_wait_line(s->log, "msg=\"listening\"", 10000, line, sizeof line) < 0)
		return -1;
	const char *p = strstr(line, "port=");
	s->port = p ? (int)strtol(p + 5, NULL, 10) : 0;
	return s->port > 0 ? 0 : -1;
}

static void stub_stop(struct stub *s)
{
	if (s->pid > 0)
		proc_stop(s->pid, SIGTERM, 5000);
	s->pid = 0;
}

/* Every call the stub took (caller decrefs), or NULL. */
static json_t *stub_calls(const struct stub *s)
{
	struct https_resp r;
	json_t *j = NULL;
	if (https_once(s->port, "GET", "/_stub/requests", NULL, NULL, 0, &r) == 0 && r.status == 200)
		j = json_loads(r.body, 0, NULL);
	https_resp_free(&r);
	return j;
}

/* Gives the stub an order body as the platform's own. */
static int stub_order(const struct stub *s, const char *body)
{
	struct https_resp r;
	int ok = https_once(s->port, "POST", "/_stub/orders", "Content-Type: application/json\r\n", body,
	                    strlen(body), &r) == 0 && r.status == 201;
	https_resp_free(&r);
	return ok ? 0 : -1;
}

/* The calls whose method is method and whose path and body hold the
 * needles (NULL: any), each a new reference in out (at most cap). */
static size_t calls_matching(json_t *calls, const char *method, const char *path_has, const char *body_has,
                             json_t **out, size_t cap)
{
	size_t n = 0, i;
	json_t *c;
	json_array_foreach(calls, i, c) {
		const char *m = json_string_value(json_object_get(c, "method"));
		const char *p = json_string_value(json_object_get(c, "path"));
		const char *b = json_string_value(json_object_get(c, "body"));
		if (strcmp(m, method) != 0 || (path_has && !strstr(p, path_has)) || (body_has && !strstr(b, body_has)))
			continue;
		if (out && n < cap)
			out[n] = json_incref(c);
		n++;
	}
	return n;
}

static size_t count_calls(const struct stub *s, const char *method, const char *path_has, const char *body_has)
{
	json_t *calls = stub_calls(s);
	size_t n = calls_matching(calls, method, path_has, body_has, NULL, 0);
	json_decref(calls);
	return n;
}

/* ---- dropship's side ---- */

/* A platform's order webhook, signed as the platform signs it. Returns the HTTP status. */
static int post_platform(const char *store, int shopify, const char *secret, const char *body)
{
	char sig[SIG_V1_MAX], hdrs[1024];
	CU_ASSERT_EQUAL_FATAL(sig_sign_hmac_b64(secret, body, strlen(body), sig, sizeof sig), 0);
	++seq;
	if (shopify)
		snprintf(hdrs, sizeof hdrs, "Content-Type: application/json\r\nX-Shopify-Hmac-Sha256: %s\r\n"
		         "X-Shopify-Topic: orders/create\r\nX-Shopify-Webhook-Id: wh-%lu\r\n", sig, seq);
	else
		snprintf(hdrs, sizeof hdrs, "Content-Type: application/json\r\nX-WC-Webhook-Signature: %s\r\n"
		         "X-WC-Webhook-Topic: order.created\r\nX-WC-Webhook-Delivery-ID: %lu\r\n", sig, 9000 + seq);
	char path[128];
	snprintf(path, sizeof path, "/v1/stores/%s/webhooks", store);
	struct https_resp r;
	int status = https_once(srv.port, "POST", path, hdrs, body, strlen(body), &r) == 0 ? r.status : 0;
	if (status != 202)
		printf("\nwebhook to %s: %d %s\n", store, status, r.body ? r.body : "");
	https_resp_free(&r);
	return status;
}

/* A fixture's text, with its order id replaced by id (0: kept) and, when
 * sku1 is given, the first line's SKU by it. */
static char *fixture(const char *name, long long id, const char *sku1)
{
	char path[512];
	const char *root = getenv("DROPSHIP_TEST_ROOT");
	snprintf(path, sizeof path, "%s/tests/fixtures/%s", root ? root : ".", name);
	json_t *doc = json_load_file(path, 0, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
	if (id)
		json_object_set_new(doc, "id", json_integer(id));
	if (sku1)
		json_object_set_new(json_array_get(json_object_get(doc, "line_items"), 0), "sku", json_string(sku1));
	char *text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	return text;
}

struct count_wait {
	const char *sql;
	const char *const *params;
	int nparams;
	long want;
	long got;
};

static bool count_is(void *arg)
{
	struct count_wait *w = arg;
	w->got = testdb_count(db, w->sql, w->nparams, w->params);
	return w->got == w->want;
}

/* Waits (up to 30 s) until the query counts want rows. */
static int wait_count(const char *sql, int nparams, const char *const *params, long want)
{
	struct count_wait w = { sql, params, nparams, want, -1 };
	bool ok = wait_until(count_is, &w, 30000, 50);
	if (!ok)
		printf("\nwaited for %ld, got %ld: %s\n", want, w.got, sql);
	return ok ? 0 : -1;
}

/* The request of store's order ext at supplier, once it is sent (malloc'd). */
static char *sent_request(const char *store, const char *ext, const char *supplier)
{
	const char *v[] = { store, ext, supplier };
	static const char sql[] =
		"SELECT count(*) FROM fulfillment_requests r JOIN orders o ON o.store_id = r.store_id AND o.id = r.order_id"
		" JOIN stores st ON st.id = o.store_id JOIN suppliers s ON s.id = r.supplier_id"
		" WHERE st.code = $1 AND o.external_id = $2 AND s.code = $3 AND r.status = 'sent'";
	if (wait_count(sql, 3, v, 1) < 0)
		return NULL;
	return testdb_value(db,
	                    "SELECT r.id FROM fulfillment_requests r JOIN orders o ON o.store_id = r.store_id"
	                    " AND o.id = r.order_id JOIN stores st ON st.id = o.store_id"
	                    " JOIN suppliers s ON s.id = r.supplier_id WHERE st.code = $1 AND o.external_id = $2"
	                    " AND s.code = $3", 3, v);
}

/* The supplier accepts and ships its request in one parcel. */
static void ship(const char *store, const char *ext, const char *supplier, const char *secret, const char *carrier,
                 const char *number, const char *url)
{
	char *rid = sent_request(store, ext, supplier);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rid);
	char path[128], body[1024], url_json[300];
	snprintf(path, sizeof path, "/v1/suppliers/%s/callbacks", supplier);
	snprintf(url_json, sizeof url_json, url ? "\"%s\"" : "null", url);
	static const char *const types[] = { "fulfillment.accepted", "fulfillment.shipped" };
	for (int i = 0; i < 2; i++) {
		snprintf(body, sizeof body, "{\"type\":\"%s\",\"request_id\":\"%s\",\"occurred_at\":\"2026-11-23T08:00:00Z\","
		         "\"tracking\":{\"carrier\":\"%s\",\"number\":\"%s\",\"url\":%s}}", types[i], rid, carrier, number,
		         url_json);
		struct https_resp r;
		CU_ASSERT_EQUAL(https_post_signed(srv.port, path, secret, NULL, (int64_t)time(NULL), body, &r), 0);
		CU_ASSERT_EQUAL(r.status, 200);
		https_resp_free(&r);
	}
	free(rid);
}

/* Waits until store's platform messages of kind for order ext are all in state (n of them). */
static int wait_platform(const char *store, const char *ext, const char *kind, const char *state, long n)
{
	const char *v[] = { store, ext, kind, state };
	return wait_count("SELECT count(*) FROM outbox m JOIN stores st ON st.id = m.store_id"
	                  " JOIN fulfillment_requests r ON r.id = m.request_id"
	                  " JOIN orders o ON o.store_id = r.store_id AND o.id = r.order_id"
	                  " WHERE st.code = $1 AND o.external_id = $2 AND m.kind = $3 AND m.state = $4", 4, v, n);
}

/* A Shopify store connected to the stub at port. */
static int shopify_store(const char *code, int port)
{
	char url[64];
	snprintf(url, sizeof url, "https://127.0.0.1:%d", port);
	return ctl_rc(conninfo, "store", "add", code, "--format", "shopify", "--secret", SHOP_SECRET, "--platform-url",
	              url, "--platform-token", TOKEN, NULL);
}

/* A Shopify store code connected to a fresh stub (with flags), the fixture
 * order (id order_id; 0 keeps the fixture's) known to both. 0, or -1. */
static int shopify_case(struct stub *st, const char *const *flags, const char *code, long long order_id)
{
	if (stub_start(st, flags) < 0 || shopify_store(code, st->port) != 0)
		return -1;
	char *body = fixture("shopify-order.json", order_id, NULL);
	int rc = stub_order(st, body) == 0 && post_platform(code, 1, SHOP_SECRET, body) == 202 ? 0 : -1;
	free(body);
	return rc;
}

/* The fulfillment order line item ids of a fulfillmentCreate call, sorted, comma-separated. */
static void create_items(json_t *call, char *buf, size_t cap)
{
	json_t *doc = json_loads(json_string_value(json_object_get(call, "body")), 0, NULL);
	json_t *by = json_object_get(json_object_get(json_object_get(doc, "variables"), "fulfillment"),
	                             "lineItemsByFulfillmentOrder");
	json_t *items = json_object_get(json_array_get(by, 0), "fulfillmentOrderLineItems"), *it;
	size_t i, n = 0;
	buf[0] = '\0';
	json_array_foreach(items, i, it)
		n += (size_t)snprintf(buf + n, cap - n, "%s%s*%lld", i ? "," : "",
		                      json_string_value(json_object_get(it, "id")),
		                      (long long)json_integer_value(json_object_get(it, "quantity")));
	json_decref(doc);
}

/* Member key of the trackingInfo of a fulfillmentCreate call. */
static char *create_tracking(json_t *call, const char *key)
{
	json_t *doc = json_loads(json_string_value(json_object_get(call, "body")), 0, NULL);
	json_t *f = json_object_get(json_object_get(doc, "variables"), "fulfillment");
	json_t *v = json_object_get(json_object_get(f, "trackingInfo"), key);
	char *out = json_is_string(v) ? strdup(json_string_value(v)) : NULL;
	if (strcmp(key, "notifyCustomer") == 0)
		out = strdup(json_is_true(json_object_get(f, "notifyCustomer")) ? "true" : "false");
	json_decref(doc);
	return out;
}

/* The attempts of a store's platform.fulfillment messages, all together. */
static int platform_attempts(const char *store)
{
	const char *v[] = { store };
	return testdb_count(db, "SELECT sum(m.attempts) FROM outbox m JOIN stores s ON s.id = m.store_id"
	                        " WHERE s.code = $1 AND m.kind = 'platform.fulfillment'", 1, v);
}

/* The Shopify fulfillments a store's messages created, by the ids kept. */
static int fulfillments_created(const char *store)
{
	const char *v[] = { store };
	return testdb_count(db, "SELECT count(DISTINCT x.ref) FROM outbox_steps x JOIN outbox m ON m.id = x.outbox_id"
	                        " JOIN stores s ON s.id = m.store_id WHERE s.code = $1"
	                        " AND x.action = 'fulfillment_create' AND x.status = 200"
	                        " AND x.ref LIKE 'gid://shopify/Fulfillment/%'", 1, v);
}

/* A Shopify case (shopify_case) where acme ships its parcel by UPS with
 * tracking number: 0 once the platform message is delivered. */
static int acme_parcel_delivered(struct stub *st, const char *const *flags, const char *store, long long order_id,
                                 const char *number)
{
	char ext[24];
	snprintf(ext, sizeof ext, "%lld", order_id);
	if (shopify_case(st, flags, store, order_id) < 0)
		return -1;
	ship(store, ext, "acme", ACME_SECRET, "UPS", number, NULL);
	return wait_platform(store, ext, "platform.fulfillment", "delivered", 1);
}

/* ---- tests ---- */

#define FO_GREEN "gid://shopify/FulfillmentOrderLineItem/4661570491*1"
#define FO_RED "gid://shopify/FulfillmentOrderLineItem/5189950191*1"
#define FO_BLACK "gid://shopify/FulfillmentOrderLineItem/7030735041*1"

/* A Shopify order split across acme (green, red) and bolt (black): two
 * parcels, two fulfillments with their own line items and tracking, the
 * first GraphQL call throttled and tried again. */
static void test_shopify_split_order_two_fulfillments(void)
{
	struct stub st;
	const char *flags[] = { "--throttle", "1", NULL };
	CU_ASSERT_EQUAL_FATAL(shopify_case(&st, flags, "shopa", 0), 0);
	ship("shopa", "450789469", "acme", ACME_SECRET, "ups", "1Z999AA10123456784", NULL);
	ship("shopa", "450789469", "bolt", BOLT_SECRET, "Fed Ex", "449044304137821",
	     "https://www.fedex.com/fedextrack/?trknbr=449044304137821");
	CU_ASSERT_EQUAL_FATAL(wait_platform("shopa", "450789469", "platform.fulfillment", "delivered", 2), 0);

	json_t *calls = stub_calls(&st), *creates[4] = { NULL };
	size_t n = calls_matching(calls, "POST", "/admin/api/2026-10/graphql.json", "fulfillmentCreate", creates, 4);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(calls_matching(calls, "POST", "/graphql.json", "DropshipFulfillmentOrders", NULL, 0), 3);
	int seen_ups = 0, seen_fedex = 0;
	for (size_t i = 0; i < n && i < 4; i++) {
		char items[512];
		create_items(creates[i], items, sizeof items);
		char *company = create_tracking(creates[i], "company"), *number = create_tracking(creates[i], "number");
		char *url = create_tracking(creates[i], "url"), *notify = create_tracking(creates[i], "notifyCustomer");
		CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(creates[i], "token")), TOKEN);
		CU_ASSERT_STRING_EQUAL(notify, "true");
		if (company && strcmp(company, "UPS") == 0) { /* "ups" normalised, URL built */
			seen_ups++;
			CU_ASSERT_STRING_EQUAL(items, FO_GREEN "," FO_RED);
			CU_ASSERT_STRING_EQUAL(number, "1Z999AA10123456784");
			CU_ASSERT_STRING_EQUAL(url, "https://www.ups.com/track?tracknum=1Z999AA10123456784");
		} else if (company && strcmp(company, "FedEx") == 0) { /* "Fed Ex" normalised, URL as given */
			seen_fedex++;
			CU_ASSERT_STRING_EQUAL(items, FO_BLACK);
			CU_ASSERT_STRING_EQUAL(number, "449044304137821");
			CU_ASSERT_STRING_EQUAL(url, "https://www.fedex.com/fedextrack/?trknbr=449044304137821");
		}
		free(company), free(number), free(url), free(notify);
		json_decref(creates[i]);
	}
	CU_ASSERT_EQUAL(seen_ups, 1);
	CU_ASSERT_EQUAL(seen_fedex, 1);
	/* For the trail: what the platform was asked, in order. */
	printf("\n---- the platform stub's log (store shopa) ----\n");
	size_t k;
	json_t *c;
	json_array_foreach(calls, k, c) {
		const char *tok = json_string_value(json_object_get(c, "token"));
		json_t *status = json_object_get(c, "status");
		char st_text[24];
		snprintf(st_text, sizeof st_text, "%lld", (long long)json_integer_value(status));
		printf("%s %s -> %s%s\n  %.400s\n", json_string_value(json_object_get(c, "method")),
		       json_string_value(json_object_get(c, "path")), json_is_integer(status) ? st_text : "(no answer)",
		       tok ? (strcmp(tok, TOKEN) == 0 ? "  [X-Shopify-Access-Token: the store's]" : "  [wrong token]") : "",
		       json_string_value(json_object_get(c, "body")));
	}
	json_decref(calls);
	/* The throttled attempt was tried again: 3 attempts for 2 messages, the
	 * calls of each kept with the fulfillment ids Shopify gave. */
	const char *v[] = { "shopa" };
	CU_ASSERT_EQUAL(platform_attempts(v[0]), 3);
	CU_ASSERT_EQUAL(fulfillments_created("shopa"), 2);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM outbox_attempts a JOIN outbox m ON m.id = a.outbox_id"
	                                 " JOIN stores s ON s.id = m.store_id WHERE s.code = $1"
	                                 " AND a.error LIKE 'fulfillment_orders: throttled by Shopify%'", 1, v), 1);
	/* The generic notification is not needed for a platform store: none without a callback_url. */
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM outbox m JOIN stores s ON s.id = m.store_id"
	                                 " WHERE s.code = $1 AND m.kind = 'order.shipped'", 1, v), 0);
	stub_stop(&st);
}

/* The answer to a fulfillmentCreate is lost after Shopify applied it: the
 * retry looks first, finds the fulfillment and creates none. */
static void test_shopify_lost_answer_no_duplicate(void)
{
	struct stub st;
	const char *flags[] = { "--lose-creates", "1", NULL };
	CU_ASSERT_EQUAL_FATAL(acme_parcel_delivered(&st, flags, "shopb", 450789470, "1Z999AA10123456785"), 0);
	CU_ASSERT_EQUAL(count_calls(&st, "POST", "/graphql.json", "fulfillmentCreate"), 1);
	CU_ASSERT_EQUAL(count_calls(&st, "POST", "/graphql.json", "DropshipFulfillmentOrders"), 2);
	const char *v[] = { "shopb" };
	CU_ASSERT_EQUAL(platform_attempts(v[0]), 2);
	/* The second attempt found it by its tracking number and kept its id. */
	char *ref = testdb_value(db, "SELECT x.ref FROM outbox_steps x JOIN outbox m ON m.id = x.outbox_id"
	                             " JOIN stores s ON s.id = m.store_id WHERE s.code = $1 AND x.attempt = 2", 1, v);
	CU_ASSERT(ref && strncmp(ref, "gid://shopify/Fulfillment/", 26) == 0);
	free(ref);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM outbox_steps x JOIN outbox m ON m.id = x.outbox_id"
	                                 " JOIN stores s ON s.id = m.store_id WHERE s.code = $1 AND x.attempt = 1"
	                                 " AND x.action = 'fulfillment_create' AND x.status IS NULL"
	                                 " AND x.error IS NOT NULL", 1, v), 1);
	stub_stop(&st);
}

/* The merchant's Shopify has the order's lines at two locations: acme's
 * parcel (green at location 1, red at location 2) becomes two
 * fulfillments with the same tracking, one per location, in one attempt
 * (Shopify refuses a fulfillmentCreate across locations). */
static void test_shopify_parcel_at_two_locations(void)
{
	struct stub st;
	const char *flags[] = { "--locations", "2", NULL };
	CU_ASSERT_EQUAL_FATAL(acme_parcel_delivered(&st, flags, "shope", 450789472, "1Z999AA10123456786"), 0);
	json_t *calls = stub_calls(&st), *creates[4] = { NULL };
	size_t n = calls_matching(calls, "POST", "/graphql.json", "fulfillmentCreate", creates, 4);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(calls_matching(calls, "POST", "/graphql.json", "DropshipFulfillmentOrders", NULL, 0), 2);
	const char *want[] = { "gid://shopify/FulfillmentOrderLineItem/4661570491*1",
	                       "gid://shopify/FulfillmentOrderLineItem/5189950192*1" };
	for (size_t i = 0; i < n && i < 2; i++) {
		char items[512];
		create_items(creates[i], items, sizeof items);
		CU_ASSERT_STRING_EQUAL(items, want[i]);
		char *number = create_tracking(creates[i], "number");
		CU_ASSERT_STRING_EQUAL(number, "1Z999AA10123456786");
		free(number);
	}
	for (size_t i = 0; i < n && i < 4; i++)
		json_decref(creates[i]);
	json_decref(calls);
	const char *v[] = { "shope" };
	CU_ASSERT_EQUAL(platform_attempts(v[0]), 1);
	CU_ASSERT_EQUAL(fulfillments_created("shope"), 2);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM orders o JOIN stores s ON s.id = o.store_id"
	                                 " WHERE s.code = $1 AND o.status = 'needs_attention'", 1, v), 0);
	stub_stop(&st);
}

/* userErrors are final: the message fails at once and the order needs attention. */
static void test_shopify_user_errors_flag_the_order(void)
{
	struct stub st;
	const char *flags[] = { "--user-errors", NULL };
	CU_ASSERT_EQUAL_FATAL(shopify_case(&st, flags, "shopc", 450789471), 0);
	ship("shopc", "450789471", "bolt", BOLT_SECRET, "DHL", "1234567890", NULL);
	CU_ASSERT_EQUAL_FATAL(wait_platform("shopc", "450789471", "platform.fulfillment", "failed", 1), 0);
	const char *v[] = { "shopc" };
	CU_ASSERT_EQUAL(platform_attempts(v[0]), 1);
	char *err = testdb_value(db, "SELECT last_error FROM reporting.failed_deliveries WHERE store = $1", 1, v);
	CU_ASSERT(err && strstr(err, "userErrors") && strstr(err, "Invalid fulfillment order line item quantity"));
	free(err);
	char *status = testdb_value(db, "SELECT o.status FROM orders o JOIN stores s ON s.id = o.store_id"
	                                " WHERE s.code = $1", 1, v);
	CU_ASSERT_STRING_EQUAL(status ? status : "", "needs_attention");
	free(status);
	stub_stop(&st);
}

/* WooCommerce: a customer note per parcel and `completed` once, with the
 * store's key and secret as Basic credentials; a delivery tried again adds
 * nothing. */
static void test_woocommerce_notes_and_completed(void)
{
	struct stub st;
	CU_ASSERT_EQUAL_FATAL(stub_start(&st, NULL), 0);
	char url[64];
	snprintf(url, sizeof url, "https://127.0.0.1:%d", st.port);
	CU_ASSERT_EQUAL_FATAL(ctl_rc(conninfo, "store", "add", "woo", "--format", "woocommerce", "--secret", WOO_SECRET,
	                             "--platform-url", url, "--platform-key", WOO_KEY, "--platform-secret", WOO_SEC,
	                             NULL), 0);
	/* The example order's first line has no SKU: give it one acme sells. */
	char *body = fixture("woocommerce-order.json", 0, "WOO-A");
	CU_ASSERT_EQUAL(stub_order(&st, body), 0);
	CU_ASSERT_EQUAL_FATAL(post_platform("woo", 0, WOO_SECRET, body), 202);
	free(body);
	ship("woo", "727", "acme", ACME_SECRET, "USPS", "9400111899223100000001", NULL);
	CU_ASSERT_EQUAL_FATAL(wait_platform("woo", "727", "platform.fulfillment", "delivered", 1), 0);
	CU_ASSERT_EQUAL(count_calls(&st, "PUT", "/orders/727", NULL), 0); /* one line still to ship */
	ship("woo", "727", "bolt", BOLT_SECRET, "royal mail", "RM123456785GB", NULL);
	CU_ASSERT_EQUAL_FATAL(wait_platform("woo", "727", "platform.fulfillment", "delivered", 2), 0);
	CU_ASSERT_EQUAL_FATAL(wait_platform("woo", "727", "platform.completed", "delivered", 1), 0);

	json_t *calls = stub_calls(&st), *notes[4] = { NULL };
	size_t n = calls_matching(calls, "POST", "/wp-json/wc/v3/orders/727/notes", NULL, notes, 4);
	CU_ASSERT_EQUAL(n, 2);
	for (size_t i = 0; i < n && i < 4; i++) {
		json_t *doc = json_loads(json_string_value(json_object_get(notes[i], "body")), 0, NULL);
		const char *text = json_string_value(json_object_get(doc, "note"));
		CU_ASSERT(json_is_true(json_object_get(doc, "customer_note")));
		CU_ASSERT(text && ((strstr(text, "USPS") && strstr(text, "9400111899223100000001") &&
		                    strstr(text, "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400111899223100000001")) ||
		                   (strstr(text, "Royal Mail") && strstr(text, "RM123456785GB"))));
		json_decref(doc);
		json_decref(notes[i]);
	}
	CU_ASSERT_EQUAL(calls_matching(calls, "PUT", "/wp-json/wc/v3/orders/727", "\"status\":\"completed\"", NULL, 0), 1);
	/* Every call carried the store's key and secret as Basic credentials. */
	size_t i;
	json_t *c;
	json_array_foreach(calls, i, c) {
		if (strstr(json_string_value(json_object_get(c, "path")), "/wp-json/"))
			CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(c, "authorization")), WOO_BASIC);
	}
	json_decref(calls);

	/* Delivered again (an operator's retry, a lost answer): it looks, finds, adds nothing. */
	const char *v[] = { "woo" };
	CU_ASSERT_EQUAL(testdb_exec(db, "UPDATE outbox m SET state = 'pending', next_attempt_at = now() FROM stores s"
	                                " WHERE s.id = m.store_id AND s.code = $1 AND m.kind LIKE 'platform.%'", 1, v), 0);
	CU_ASSERT_EQUAL(wait_count("SELECT count(*) FROM outbox m JOIN stores s ON s.id = m.store_id WHERE s.code = $1"
	                           " AND m.kind LIKE 'platform.%' AND m.state = 'delivered' AND m.attempts = 2", 1, v, 3),
	                0);
	CU_ASSERT_EQUAL(count_calls(&st, "POST", "/wp-json/wc/v3/orders/727/notes", NULL), 2);
	CU_ASSERT_EQUAL(count_calls(&st, "PUT", "/wp-json/wc/v3/orders/727", NULL), 1);
	stub_stop(&st);
}

/* Platform credentials: checked per format, never shown, not readable by the reporting role. */
static void test_store_platform_options(void)
{
	CU_ASSERT_EQUAL(ctl_rc(conninfo, "store", "add", "bad1", "--format", "shopify", "--secret", "x",
	                       "--platform-url", "https://a.myshopify.com", NULL), 2);
	CU_ASSERT_EQUAL(ctl_rc(conninfo, "store", "add", "bad2", "--format", "shopify", "--secret", "x",
	                       "--platform-url", "https://a.myshopify.com", "--platform-key", WOO_KEY, NULL), 2);
	CU_ASSERT_EQUAL(ctl_rc(conninfo, "store", "add", "bad3", "--format", "woocommerce", "--secret", "x",
	                       "--platform-url", "https://shop.example", "--platform-key", "4d2f",
	                       "--platform-secret", WOO_SEC, NULL), 2);
	CU_ASSERT_EQUAL(ctl_rc(conninfo, "store", "add", "bad4", "--secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	                       "--platform-url", "https://shop.example", "--platform-token", TOKEN, NULL), 2);
	CU_ASSERT_EQUAL(ctl_rc(conninfo, "store", "add", "bad5", "--format", "shopify", "--secret", "x",
	                       "--platform-url", "http://a.myshopify.com", "--platform-token", TOKEN, NULL), 2);
	const char *v[] = { "bad%" };
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM stores WHERE code LIKE $1", 1, v), 0);
	struct ctl_run r = ctl(conninfo, "store", "add", "shopd", "--format", "shopify", "--secret", "x",
	                       "--platform-url", "https://d.myshopify.com", "--platform-token", TOKEN,
	                       "--notify-customer", "no", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(r.out && !strstr(r.out, TOKEN) && r.err && !strstr(r.err, TOKEN));
	ctl_run_free(&r);
	r = ctl(conninfo, "store", "list", NULL);
	CU_ASSERT(r.out && strstr(r.out, "https://d.myshopify.com") && !strstr(r.out, TOKEN));
	ctl_run_free(&r);
	const char *d[] = { "shopd" };
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM stores WHERE code = $1 AND NOT platform_notify", 1, d), 1);
	/* "" removes the connection, credentials and all. */
	CU_ASSERT_EQUAL(ctl_rc(conninfo, "store", "add", "shopd", "--update", "--platform-url", "", NULL), 0);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM stores WHERE code = $1 AND platform_url IS NULL"
	                                 " AND platform_token IS NULL", 1, d), 1);
	/* The reporting role reads no credentials. */
	PGresult *res = PQexec(db, "SET ROLE dropship_reporting");
	PQclear(res);
	res = PQexec(db, "SELECT platform_token, platform_secret FROM stores");
	CU_ASSERT_STRING_EQUAL(PQresultErrorField(res, PG_DIAG_SQLSTATE) ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
	                                                                 : "", "42501");
	PQclear(res);
	res = PQexec(db, "RESET ROLE");
	PQclear(res);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'reporting'"
	                                 " AND column_name LIKE 'platform_%'", 0, NULL), 0);
}

/* One order's whole trail, printed for the record: the webhook in, the
 * supplier, the callbacks, the platform calls. */
static void test_print_one_order_trail(void)
{
	struct ctl_run r = ctl(conninfo, "order", "show", "--store", "shopa", "--external", "450789469", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	printf("\n==== trail of Shopify order 450789469 (store shopa) ====\n%s", r.out ? r.out : "");
	/* order show lists each platform message's calls: the throttled look,
	 * then the look and the create that made each parcel's fulfillment. */
	const char *calls = r.out ? strstr(r.out, "platform.fulfillment: the platform's calls") : NULL;
	CU_ASSERT_PTR_NOT_NULL(calls);
	CU_ASSERT_PTR_NOT_NULL(calls ? strstr(calls, "throttled by Shopify") : NULL);
	CU_ASSERT_PTR_NOT_NULL(calls ? strstr(calls, "fulfillment_create") : NULL);
	CU_ASSERT_PTR_NOT_NULL(calls ? strstr(calls, "gid://shopify/Fulfillment/") : NULL);
	ctl_run_free(&r);
	r = ctl(conninfo, "outbox", "list", "--store", "shopa", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	printf("---- outbox list --store shopa ----\n%s", r.out ? r.out : "");
	ctl_run_free(&r);
	PGresult *res = PQexec(db, "SELECT x.outbox_id, m.kind, x.attempt, x.step, x.action, x.method, x.path,"
	                           " coalesce(x.status::text, '-'), coalesce(x.error, '-'), coalesce(x.ref, '-')"
	                           " FROM outbox_steps x JOIN outbox m ON m.id = x.outbox_id"
	                           " JOIN stores s ON s.id = m.store_id WHERE s.code = 'shopa'"
	                           " ORDER BY x.outbox_id, x.attempt, x.step");
	printf("---- outbox_steps (every platform call) ----\n");
	for (int i = 0; i < PQntuples(res); i++)
		printf("outbox %s %s attempt %s step %s %-18s %s %s -> %s %s ref=%s\n", PQgetvalue(res, i, 0),
		       PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3), PQgetvalue(res, i, 4),
		       PQgetvalue(res, i, 5), PQgetvalue(res, i, 6), PQgetvalue(res, i, 7), PQgetvalue(res, i, 8),
		       PQgetvalue(res, i, 9));
	CU_ASSERT(PQntuples(res) >= 5);
	PQclear(res);
}

static int suite_init(void)
{
	char cert[300], key[300], conf[600], port[16];
	snprintf(cert, sizeof cert, "%s/server.crt", testsrv_tls_dir());
	snprintf(key, sizeof key, "%s/server.key", testsrv_tls_dir());
	if (testdb_create("dropship_platforms", conninfo, sizeof conninfo) < 0 ||
	    ctl_rc(conninfo, "migrate", NULL) != 0 || !(db = testdb_connect(conninfo)) ||
	    receiver_start(&suppliers, cert, key) < 0)
		return -1;
	snprintf(port, sizeof port, "%d", suppliers.port);
	const char *v[] = { port };
	if (testdb_exec(db,
	        "WITH s AS (INSERT INTO suppliers (code, endpoint, secrets) VALUES"
	        "   ('acme', 'https://127.0.0.1:' || $1 || '/acme', ARRAY['" ACME_SECRET "']),"
	        "   ('bolt', 'https://127.0.0.1:' || $1 || '/bolt', ARRAY['" BOLT_SECRET "'])"
	        "   RETURNING id, code)"
	        " INSERT INTO offers (supplier_id, sku, supplier_sku, cost, stock, lead_time_days)"
	        " SELECT s.id, x.sku, 'S-' || x.sku, 1, 1000, 1 FROM s JOIN (VALUES ('acme', 'IPOD2008GREEN'),"
	        "   ('acme', 'IPOD2008RED'), ('bolt', 'IPOD2008BLACK'), ('acme', 'WOO-A'), ('bolt', 'Bar3'))"
	        "   AS x(code, sku) ON x.code = s.code", 1, v) != 0)
		return -1;
	snprintf(conf, sizeof conf, "[dispatch]\nallow_private_endpoints = true\ntls_ca_file = %s\n"
	         "timeout_ms = 3000\nbackoff_base_ms = 50\nbackoff_max_ms = 500\n", cert);
	return testsrv_start(&srv, conninfo, conf, 1);
}

static int suite_cleanup(void)
{
	int rc = srv.pid > 0 ? testsrv_stop(&srv, SIGTERM) : 0;
	receiver_stop(&suppliers);
	if (db)
		PQfinish(db);
	return rc == 0 ? 0 : -1;
}

int main(void)
{
	static const struct harness_test tests[] = {
		{ "shopify: a split order gets two fulfillments, the throttled one retried",
		  test_shopify_split_order_two_fulfillments },
		{ "shopify: a lost answer to fulfillmentCreate makes no duplicate", test_shopify_lost_answer_no_duplicate },
		{ "shopify: a parcel at two locations gets a fulfillment at each", test_shopify_parcel_at_two_locations },
		{ "shopify: userErrors fail the message and flag the order", test_shopify_user_errors_flag_the_order },
		{ "woocommerce: a customer note per parcel, completed once", test_woocommerce_notes_and_completed },
		{ "store add: platform options checked, credentials never shown", test_store_platform_options },
		{ "one order's trail", test_print_one_order_trail },
		{ NULL, NULL },
	};
	return harness_main("platforms", suite_init, suite_cleanup, tests);
}
