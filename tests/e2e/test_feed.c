/* End to end: stock feeds, POST /v1/suppliers/{code}/inventory, against a
 * real dropshipd and PostgreSQL, with the simulator standing in for the
 * suppliers' fulfillment endpoints (and, last, sending feeds itself).
 *
 *   acme    active     SKU-A 50 at 2.00, SKU-B 5, SKU-W 0 (a line waits for it)
 *   bolt    disabled   SKU-A 100 at 0.50: cheaper, never routed to
 *   spare   active     SKU-S 10
 *   feeder  added by the last test, fed by the simulator */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
#define ACME_SECRET "whsec_c2Vjb25kLXNlY3JldC1mb3ItdGVzdHMtMTIzNA=="
#define BOLT_SECRET "whsec_dGhpcmQtc2VjcmV0LWZvci10ZXN0cy0xMjM0NTY="

static char conninfo[512];
static PGconn *db;
static struct testsrv srv;
static struct testsrv sim;        /* acme's and bolt's fulfillment endpoints */
static struct testsrv feeder;     /* the last test's simulator, sending feeds */
static char cert[300];

static int suite_init(void)
{
	const char *tls = testsrv_tls_dir();
	char conf[800], port[16];
	snprintf(cert, sizeof cert, "%s/server.crt", tls);
	const char *sups[] = { "acme=" ACME_SECRET, "bolt=" BOLT_SECRET, "spare=" ACME_SECRET, NULL };
	if (testsrv_prepare_db("dropship_feed", SECRET, conninfo, sizeof conninfo) < 0 ||
	    !(db = testdb_connect(conninfo)) || testsrv_start_sim(&sim, sups, NULL, 10000) < 0)
		return -1;
	snprintf(port, sizeof port, "%d", sim.port);
	const char *v[] = { port };
	if (testdb_exec(db,
	        "WITH s AS (INSERT INTO suppliers (code, endpoint, secrets, active)"
	        " SELECT c, 'https://127.0.0.1:' || $1 || '/suppliers/' || c || '/fulfillments', ARRAY[k], a"
	        " FROM (VALUES ('acme', '" ACME_SECRET "', true), ('bolt', '" BOLT_SECRET "', false),"
	        "   ('spare', '" ACME_SECRET "', true)) x(c, k, a) RETURNING id, code)"
	        " INSERT INTO offers (supplier_id, sku, supplier_sku, cost, stock, lead_time_days)"
	        " SELECT s.id, o.sku, 'X-' || o.sku, o.cost, o.stock, 2 FROM s JOIN (VALUES"
	        "   ('acme', 'SKU-A', 2.00, 50), ('acme', 'SKU-B', 1.00, 5), ('acme', 'SKU-W', 1.00, 0),"
	        "   ('bolt', 'SKU-A', 0.50, 100), ('spare', 'SKU-S', 1.00, 10)) o(code, sku, cost, stock)"
	        "   ON o.code = s.code", 1, v) != 0)
		return -1;
	snprintf(conf, sizeof conf, "[dispatch]\nallow_private_endpoints = true\ntls_ca_file = %s\n", cert);
	return testsrv_start(&srv, conninfo, conf, 1);
}

static int suite_cleanup(void)
{
	int rc = srv.pid > 0 ? testsrv_stop(&srv, SIGTERM) : 0;
	testsrv_stop_sim(&sim, 5000);
	if (feeder.pid > 0)
		testsrv_stop_sim(&feeder, 5000);
	if (db)
		PQfinish(db);
	return rc == 0 ? 0 : -1;
}

/* ---- helpers ---- */

/* POSTs a feed for supplier code signed with secret (msg_id NULL: a fresh
 * one); the answer's body parsed into *doc (NULL when not JSON). */
static int feed(const char *code, const char *secret, const char *msg_id, const char *body, json_t **doc)
{
	char path[128];
	struct https_resp r;
	snprintf(path, sizeof path, "/v1/suppliers/%s/inventory", code);
	*doc = NULL;
	if (https_post_signed(srv.port, path, secret, msg_id, (int64_t)time(NULL), body, &r) != 0)
		return 0;
	int status = r.status;
	*doc = json_loads(r.body, 0, NULL);
	if (status != 200)
		printf("\n    feed answered %d: %s", status, r.body);
	https_resp_free(&r);
	return status;
}

static long num(const json_t *doc, const char *key)
{
	json_t *v = json_object_get(doc, key);
	return json_is_integer(v) ? (long)json_integer_value(v) : -1;
}

static const char *error_field(const json_t *doc, const char *key)
{
	const char *s = json_string_value(json_object_get(json_object_get(doc, "error"), key));
	return s ? s : "";
}

/* The database's clock now, and shifted by an interval, as RFC 3339 (static buffers, two in turn). */
static const char *db_time(const char *shift)
{
	static char buf[2][64];
	static int k;
	const char *v[1] = { shift };
	char *t = testdb_value(db, "SELECT to_json(now() + $1::interval) #>> '{}'", 1, v);
	k ^= 1;
	snprintf(buf[k], sizeof buf[k], "%s", t ? t : "");
	free(t);
	return buf[k];
}

/* A feed body of one item (malloc'd). */
static char *body1(const char *as_of, const char *sku, long stock)
{
	json_t *doc = json_pack("{s:s, s:[{s:s, s:i}]}", "as_of", as_of, "items", "sku", sku, "stock", (int)stock);
	char *s = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	return s;
}

static long stock(const char *supplier, const char *sku)
{
	const char *v[2] = { supplier, sku };
	return testdb_count(db, "SELECT o.stock FROM offers o JOIN suppliers s ON s.id = o.supplier_id"
	                        " WHERE s.code = $1 AND o.sku = $2", 2, v);
}

/* Posts a one-line order; returns its line's status ("routed"...) in a static buffer, or "". */
static const char *order(const char *id, const char *sku, int qty, char *order_id, size_t cap)
{
	static char line_status[32];
	const struct shop_line lines[] = { { sku, qty, NULL, NULL } };
	line_status[0] = '\0';
	json_t *j = shop_place(srv.port, "shop", SECRET, id, lines, 1);
	if (j) {
		snprintf(order_id, cap, "%s", json_string_value(json_object_get(j, "order_id")));
		const char *st = json_string_value(json_object_get(json_array_get(json_object_get(j, "lines"), 0),
		                                                   "status"));
		snprintf(line_status, sizeof line_status, "%s", st ? st : "");
		json_decref(j);
	}
	return line_status;
}

/* ---- tests ---- */

/* The supplier exports at T; an order reserves 2 after T; the feed of T
 * arrives later: stock is the level less those 2. */
static void test_level_net_of_later_reservations(void)
{
	char oid[32] = "";
	char t[64];
	snprintf(t, sizeof t, "%s", db_time("0"));
	/* bolt is cheaper but disabled: routing passes it over. */
	CU_ASSERT_STRING_EQUAL(order("F-1", "SKU-A", 2, oid, sizeof oid), "routed");
	const char *v[1] = { oid };
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM order_lines l JOIN suppliers s ON s.id = l.supplier_id"
	                                 " WHERE l.order_id = $1 AND s.code = 'acme' AND l.reserved = 2", 1, v), 1);
	CU_ASSERT_EQUAL(stock("acme", "SKU-A"), 48);
	CU_ASSERT_EQUAL(stock("bolt", "SKU-A"), 100);

	json_t *doc;
	char *b = body1(t, "SKU-A", 10);
	CU_ASSERT_EQUAL(feed("acme", ACME_SECRET, NULL, b, &doc), 200);
	CU_ASSERT_EQUAL(num(doc, "items"), 1);
	CU_ASSERT_EQUAL(num(doc, "applied"), 1);
	CU_ASSERT_EQUAL(num(doc, "unchanged"), 0);
	CU_ASSERT_EQUAL(num(doc, "stale"), 0);
	CU_ASSERT_EQUAL(num(doc, "unknown"), 0);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(doc, "unknown_skus")), 0);
	json_decref(doc);
	free(b);
	CU_ASSERT_EQUAL(stock("acme", "SKU-A"), 8);
	const char *tv[1] = { t };
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM offers WHERE sku = 'SKU-A'"
	                                 " AND level_as_of = $1::timestamptz", 1, tv), 1);

	/* A level taken after the order already counts it. */
	b = body1(db_time("0"), "SKU-A", 10);
	CU_ASSERT_EQUAL(feed("acme", ACME_SECRET, NULL, b, &doc), 200);
	CU_ASSERT_EQUAL(num(doc, "applied"), 1);
	json_decref(doc);
	free(b);
	CU_ASSERT_EQUAL(stock("acme", "SKU-A"), 10);

	/* A feed older than the offer's level changes nothing. */
	b = body1(t, "SKU-A", 99);
	CU_ASSERT_EQUAL(feed("acme", ACME_SECRET, NULL, b, &doc), 200);
	CU_ASSERT_EQUAL(num(doc, "stale"), 1);
	CU_ASSERT_EQUAL(num(doc, "applied"), 0);
	json_decref(doc);
	free(b);
	CU_ASSERT_EQUAL(stock("acme", "SKU-A"), 10);
}

/* The same delivery twice (same webhook-id): levels are absolute, the
 * second finds them applied. */
static void test_replay_is_harmless(void)
{
	json_t *doc;
	char *b = body1(db_time("0"), "SKU-B", 7);
	CU_ASSERT_EQUAL(feed("acme", ACME_SECRET, "feed_replay_1", b, &doc), 200);
	CU_ASSERT_EQUAL(num(doc, "applied"), 1);
	json_decref(doc);
	CU_ASSERT_EQUAL(feed("acme", ACME_SECRET, "feed_replay_1", b, &doc), 200);
	CU_ASSERT_EQUAL(num(doc, "applied"), 0);
	CU_ASSERT_EQUAL(num(doc, "unchanged"), 1);
	CU_ASSERT_EQUAL(num(doc, "stale"), 0);
	json_decref(doc);
	free(b);
	CU_ASSERT_EQUAL(stock("acme", "SKU-B"), 7);
}

static void test_unknown_skus_counted(void)
{
	char body[512];
	json_t *doc;
	/* SKU-S is spare's, not acme's. */
	snprintf(body, sizeof body, "{\"as_of\": \"%s\", \"items\": [{\"sku\": \"NOPE-1\", \"stock\": 3},"
	         " {\"sku\": \"SKU-B\", \"stock\": 6, \"cost\": \"1.25\", \"lead_time_days\": 4,"
	         "  \"ships_to\": [\"ca\", \"US\"]}, {\"sku\": \"SKU-S\", \"stock\": 1}]}", db_time("0"));
	CU_ASSERT_EQUAL(feed("acme", ACME_SECRET, NULL, body, &doc), 200);
	CU_ASSERT_EQUAL(num(doc, "items"), 3);
	CU_ASSERT_EQUAL(num(doc, "applied"), 1);
	CU_ASSERT_EQUAL(num(doc, "unknown"), 2);
	json_t *u = json_object_get(doc, "unknown_skus");
	CU_ASSERT_EQUAL(json_array_size(u), 2);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(u, 0)) ? json_string_value(json_array_get(u, 0)) : "",
	                       "NOPE-1");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(u, 1)) ? json_string_value(json_array_get(u, 1)) : "",
	                       "SKU-S");
	json_decref(doc);
	CU_ASSERT_EQUAL(stock("spare", "SKU-S"), 10);
	char *got = testdb_value(db, "SELECT concat_ws(' ', stock, cost, lead_time_days, ships_to::text) FROM offers"
	                             " WHERE sku = 'SKU-B'", 0, NULL);
	CU_ASSERT_STRING_EQUAL(got ? got : "", "6 1.2500 4 {CA,US}");
	free(got);
	/* None of them known: answered, nothing written. */
	char *b = body1(db_time("0"), "NOPE-2", 1);
	CU_ASSERT_EQUAL(feed("acme", ACME_SECRET, NULL, b, &doc), 200);
	CU_ASSERT_EQUAL(num(doc, "applied"), 0);
	CU_ASSERT_EQUAL(num(doc, "unknown"), 1);
	json_decref(doc);
	free(b);
}

/* Everything about the offers that a feed could change. */
static char *offers_now(void)
{
	return testdb_value(db, "SELECT string_agg(concat_ws(' ', id, stock, cost, level_as_of, updated_at, available),"
	                        " ', ' ORDER BY id) FROM offers", 0, NULL);
}

/* A body of n items SKU-1..SKU-n (malloc'd). */
static char *many(size_t n)
{
	size_t cap = 128 + n * 40, w = 0;
	char *b = malloc(cap);
	w += (size_t)snprintf(b + w, cap - w, "{\"as_of\": \"%s\", \"items\": [", db_time("0"));
	for (size_t i = 1; i <= n; i++)
		w += (size_t)snprintf(b + w, cap - w, "%s{\"sku\": \"SKU-%zu\", \"stock\": 1}", i > 1 ? "," : "", i);
	snprintf(b + w, cap - w, "]}");
	return b;
}

static void test_refused_change_nothing(void)
{
	char *before = offers_now();
	static const struct {
		const char *as_of_shift;   /* as_of: now shifted by this interval */
		const char *body;          /* with @T for as_of */
		int status;
		const char *code, *field, *message;
	} cases[] = {
		{ "0", "{\"as_of\": \"@T\", \"items\": [{\"sku\": \"SKU-A\", \"stock\": 1}, {\"sku\": \"SKU-B\", \"stock\": 2},"
		       " {\"sku\": \"SKU-W\", \"stock\": 3}, {\"sku\": \"SKU-X\", \"stock\": -1}]}",
		  422, "invalid_field", "items[3].stock", "must be a non-negative integer" },
		{ "0", "{\"as_of\": \"@T\", \"items\": [{\"sku\": \"SKU-A\", \"stock\": 1, \"cost\": \"cheap\"}]}",
		  422, "invalid_field", "items[0].cost", "decimal" },
		{ "0", "{\"as_of\": \"@T\", \"items\": [{\"sku\": \"SKU-A\", \"stock\": 1}, {\"sku\": \"SKU-A\", \"stock\": 2}]}",
		  422, "invalid_field", "items[1].sku", "repeats items[0].sku" },
		{ "-8 days", "{\"as_of\": \"@T\", \"items\": [{\"sku\": \"SKU-A\", \"stock\": 1}]}",
		  422, "invalid_field", "as_of", "more than 7 days ago" },
		{ "1 hour", "{\"as_of\": \"@T\", \"items\": [{\"sku\": \"SKU-A\", \"stock\": 1}]}",
		  422, "invalid_field", "as_of", "ahead of the database's clock" },
		{ NULL, "{\"as_of\": \"now\", \"items\": [{\"sku\": \"SKU-A\", \"stock\": 1}]}",
		  422, "invalid_field", "as_of", "RFC 3339" },
		{ NULL, "{\"items\": [{\"sku\": \"SKU-A\", \"stock\": 1}]", 400, "invalid_json", "", "" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char body[1024];
		json_t *doc;
		const char *at = strstr(cases[i].body, "@T");
		if (at)
			snprintf(body, sizeof body, "%.*s%s%s", (int)(at - cases[i].body), cases[i].body,
			         db_time(cases[i].as_of_shift), at + 2);
		else
			snprintf(body, sizeof body, "%s", cases[i].body);
		int status = feed("acme", ACME_SECRET, NULL, body, &doc);
		HARNESS_CHECK(status == cases[i].status, "case %zu: status %d", i, status);
		HARNESS_CHECK(strcmp(error_field(doc, "code"), cases[i].code) == 0, "case %zu: code", i);
		HARNESS_CHECK(strcmp(error_field(doc, "field"), cases[i].field) == 0, "case %zu: field %s", i,
		              error_field(doc, "field"));
		HARNESS_CHECK(strstr(error_field(doc, "message"), cases[i].message) != NULL, "case %zu: message %s", i,
		              error_field(doc, "message"));
		json_decref(doc);
	}
	/* More than 10000 items: 413, naming items. */
	json_t *doc;
	char *b = many(10001);
	CU_ASSERT_EQUAL(feed("acme", ACME_SECRET, NULL, b, &doc), 413);
	CU_ASSERT_STRING_EQUAL(error_field(doc, "code"), "payload_too_large");
	CU_ASSERT_STRING_EQUAL(error_field(doc, "field"), "items");
	json_decref(doc);
	free(b);
	b = body1(db_time("0"), "SKU-A", 1);
	/* Signed with another supplier's secret, or not at all. */
	CU_ASSERT_EQUAL(feed("acme", BOLT_SECRET, NULL, b, &doc), 401);
	CU_ASSERT_STRING_EQUAL(error_field(doc, "code"), "invalid_signature");
	json_decref(doc);
	struct https_resp r;
	CU_ASSERT_EQUAL_FATAL(https_once(srv.port, "POST", "/v1/suppliers/acme/inventory",
	                                 "Content-Type: application/json\r\n", b, strlen(b), &r), 0);
	CU_ASSERT_EQUAL(r.status, 401);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "missing_signature"));
	https_resp_free(&r);
	/* Not JSON by its type; a method it does not take. */
	CU_ASSERT_EQUAL_FATAL(https_once(srv.port, "POST", "/v1/suppliers/acme/inventory",
	                                 "Content-Type: text/plain\r\n", b, strlen(b), &r), 0);
	CU_ASSERT_EQUAL(r.status, 415);
	https_resp_free(&r);
	CU_ASSERT_EQUAL_FATAL(https_once(srv.port, "GET", "/v1/suppliers/acme/inventory", NULL, NULL, 0, &r), 0);
	CU_ASSERT_EQUAL(r.status, 405);
	char allow[32];
	CU_ASSERT_STRING_EQUAL(https_header(&r, "Allow", allow, sizeof allow) ? allow : "", "POST");
	https_resp_free(&r);
	/* Unknown, and disabled, suppliers. */
	CU_ASSERT_EQUAL(feed("nosuch", ACME_SECRET, NULL, b, &doc), 404);
	CU_ASSERT_STRING_EQUAL(error_field(doc, "code"), "unknown_supplier");
	json_decref(doc);
	CU_ASSERT_EQUAL(feed("bolt", BOLT_SECRET, NULL, b, &doc), 403);
	CU_ASSERT_STRING_EQUAL(error_field(doc, "code"), "supplier_disabled");
	json_decref(doc);
	free(b);
	char *after = offers_now();
	CU_ASSERT_STRING_EQUAL(after ? after : "", before ? before : "-");
	free(before);
	free(after);
}

struct line_wait {
	const char *order_id, *status;
};

static bool line_is(void *arg)
{
	struct line_wait *w = arg;
	const char *v[2] = { w->order_id, w->status };
	return testdb_count(db, "SELECT count(*) FROM order_lines WHERE order_id = $1 AND status = $2", 2, v) == 1;
}

/* A line waiting for stock is routed once a feed brings it. */
static void test_waiting_line_routed_by_a_feed(void)
{
	char oid[32] = "";
	CU_ASSERT_STRING_EQUAL(order("F-2", "SKU-W", 2, oid, sizeof oid), "unroutable");
	const char *v[1] = { oid };
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM order_lines WHERE order_id = $1"
	                                 " AND reason = 'out_of_stock'", 1, v), 1);
	json_t *doc;
	char *b = body1(db_time("0"), "SKU-W", 5);
	CU_ASSERT_EQUAL(feed("acme", ACME_SECRET, NULL, b, &doc), 200);
	CU_ASSERT_EQUAL(num(doc, "applied"), 1);
	json_decref(doc);
	free(b);
	struct line_wait routed = { oid, "routed" };
	CU_ASSERT(wait_until(line_is, &routed, 10000, 50));
	CU_ASSERT_EQUAL(stock("acme", "SKU-W"), 3);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM orders WHERE id = $1 AND status = 'routed'", 1, v), 1);
}

struct sim_wait {
	const struct testsrv *sim;
	const char *key;
	long at_least;
};

static bool sim_stat_reached(void *arg)
{
	struct sim_wait *w = arg;
	json_t *st = testsrv_sim_stats(w->sim->port);
	long n = testsrv_sim_stat(st, w->key);
	json_decref(st);
	return n >= w->at_least;
}

/* The simulator feeds its catalog: a line waiting for feeder's SKU is routed to it. */
static void test_simulator_feeds(void)
{
	char csv[300], ca[320], url[64];
	snprintf(csv, sizeof csv, "%s/feeder.csv", srv.dir);
	FILE *f = fopen(csv, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("supplier,sku,supplier_sku,cost,shipping_cost,stock,lead_time_days,ships_to\n"
	      "feeder,SKU-F1,F1,1.00,,7,1,*\nfeeder,SKU-F2,F2,1.00,,3,1,*\nfeeder,SKU-F9,F9,1.00,,4,1,*\n"
	      "acme,SKU-A,A,1.00,,500,1,*\n", f);
	fclose(f);
	snprintf(ca, sizeof ca, "%s", cert);
	snprintf(url, sizeof url, "https://127.0.0.1:%d", srv.port);
	const char *sups[] = { "feeder=" ACME_SECRET, NULL };
	const char *extra[] = { "--catalog", csv, "--feed-every", "300ms", "--callback-url", url, "--ca-file", ca,
	                        NULL };
	CU_ASSERT_FATAL(testsrv_start_sim(&feeder, sups, extra, 10000) == 0);
	/* Its feeds are refused while dropshipd does not know it. */
	struct sim_wait refused = { &feeder, "feeds_failed", 1 };
	CU_ASSERT(wait_until(sim_stat_reached, &refused, 10000, 100));
	/* A line waits for SKU-F1, which nobody offers yet... */
	char oid[32] = "";
	CU_ASSERT_STRING_EQUAL(order("F-3", "SKU-F1", 1, oid, sizeof oid), "unroutable");
	char port[16];
	snprintf(port, sizeof port, "%d", feeder.port);
	const char *v[1] = { port };
	CU_ASSERT_FATAL(testdb_exec(db,
	        "WITH s AS (INSERT INTO suppliers (code, endpoint, secrets) VALUES ('feeder',"
	        "   'https://127.0.0.1:' || $1 || '/suppliers/feeder/fulfillments', ARRAY['" ACME_SECRET "'])"
	        "   RETURNING id)"
	        " INSERT INTO offers (supplier_id, sku, supplier_sku, cost, stock, lead_time_days)"
	        " SELECT s.id, x.sku, 'F', 1, 0, 1 FROM s, (VALUES ('SKU-F1'), ('SKU-F2')) x(sku)", 1, v) == 0);
	/* ... then feeder offers it, without stock until its next feed, which routes the line. */
	struct line_wait routed = { oid, "routed" };
	CU_ASSERT(wait_until(line_is, &routed, 15000, 100));
	struct sim_wait sent = { &feeder, "feeds_sent", 2 };
	CU_ASSERT(wait_until(sim_stat_reached, &sent, 10000, 100));
	/* The request reached the simulator; SKU-F9 is no offer of feeder's, acme's row is not feeder's. */
	struct sim_wait taken = { &feeder, "accepted", 1 };
	CU_ASSERT(wait_until(sim_stat_reached, &taken, 10000, 100));
	CU_ASSERT(testsrv_log_contains(&feeder, "unknown=1"));
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM offers o JOIN suppliers s ON s.id = o.supplier_id"
	                                 " WHERE s.code = 'feeder' AND o.level_as_of IS NOT NULL"
	                                 " AND o.stock BETWEEN 0 AND 7", 0, NULL), 2);
	CU_ASSERT_EQUAL(stock("acme", "SKU-A"), 10);
	CU_ASSERT_EQUAL(testsrv_stop_sim(&feeder, 5000), 0);
}

static void test_nothing_stranded_unseen(void)
{
	stranded_check(db);
}

int main(void)
{
	static const struct harness_test tests[] = {
		{ "a level as of T is net of reservations after T; stale levels change nothing",
		  test_level_net_of_later_reservations },
		{ "the same feed twice is harmless", test_replay_is_harmless },
		{ "unknown SKUs are counted and listed", test_unknown_skus_counted },
		{ "bad bodies, signatures, suppliers are refused; nothing changes", test_refused_change_nothing },
		{ "a line waiting for stock is routed when a feed brings it", test_waiting_line_routed_by_a_feed },
		{ "the simulator feeds its catalog with --feed-every", test_simulator_feeds },
		{ "no order is stuck where stranded_orders does not show it", test_nothing_stranded_unseen },
		{ NULL, NULL },
	};
	return harness_main("feed", suite_init, suite_cleanup, tests);
}
