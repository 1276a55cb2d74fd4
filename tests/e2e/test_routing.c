/* End to end: routing at intake. Orders go through the real HTTPS API; the
 * database shows what was reserved and decided. Suppliers and offers are
 * written with SQL here (the catalog import has its own suite). */
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
#include "support/testdb.h"
#include "support/testsrv.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

static char conninfo[512];
static PGconn *db;
static struct testsrv srv;

static int suite_init(void)
{
	if (testsrv_prepare_db("dropship_routing", SECRET, conninfo, sizeof conninfo) < 0)
		return -1;
	db = testdb_connect(conninfo);
	if (!db)
		return -1;
	if (testdb_exec(db,
	        "INSERT INTO suppliers (code, endpoint, secrets, priority) VALUES"
	        " ('acme', 'https://acme.example/f', ARRAY['" SECRET "'], 2),"
	        " ('bolt', 'https://bolt.example/f', ARRAY['" SECRET "'], 1),"
	        " ('cask', 'https://cask.example/f', ARRAY['" SECRET "'], 3)", 0, NULL) != 0)
		return -1;
	return testsrv_start(&srv, conninfo, NULL, 1);
}

static int suite_cleanup(void)
{
	int rc = srv.pid > 0 ? testsrv_stop(&srv, SIGTERM) : 0;
	if (db)
		PQfinish(db);
	return rc == 0 ? 0 : -1;
}

/* Adds an offer: supplier code, sku, cost, shipping, stock, lead days, ships_to (NULL = all). */
static void offer(const char *supplier, const char *sku, const char *cost, const char *ship, int stock,
                  int lead, const char *ships_to)
{
	char st[16], ld[16];
	snprintf(st, sizeof st, "%d", stock);
	snprintf(ld, sizeof ld, "%d", lead);
	const char *p[] = { supplier, sku, cost, ship, st, ld, ships_to };
	CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
	        "INSERT INTO offers (supplier_id, sku, supplier_sku, cost, shipping_cost, stock,"
	        " lead_time_days, ships_to) SELECT id, $2, 'S-' || $2, $3, $4, $5, $6, $7::char(2)[]"
	        " FROM suppliers WHERE code = $1", 7, p), 0);
}

static long stock_of(const char *supplier, const char *sku)
{
	const char *p[] = { supplier, sku };
	return testdb_count(db, "SELECT o.stock FROM offers o JOIN suppliers s ON s.id = o.supplier_id"
	                        " WHERE s.code = $1 AND o.sku = $2", 2, p);
}

/* Posts a signed order; returns the parsed response (caller decrefs) and its status. */
static json_t *post_json(const char *body, int *status)
{
	struct https_resp r;
	*status = 0;
	json_t *j = NULL;
	if (shop_post(srv.port, "shop", SECRET, (int64_t)time(NULL), body, &r) == 0) {
		*status = r.status;
		j = json_loads(r.body, 0, NULL);
		if (r.status >= 400)
			fprintf(stderr, "order answer %d: %s\n", r.status, r.body);
	}
	https_resp_free(&r);
	return j;
}

/* A string member, or "" when absent (a failed request must fail the test, not crash it). */
static const char *str_of(json_t *obj, const char *key)
{
	const char *v = json_string_value(json_object_get(obj, key));
	return v ? v : "";
}

static const char *line_field(json_t *resp, int i, const char *key)
{
	json_t *v = json_object_get(json_array_get(json_object_get(resp, "lines"), (size_t)i), key);
	return json_is_string(v) ? json_string_value(v) : json_is_null(v) ? "null" : "?";
}

static void test_cheapest_routes_and_reserves(void)
{
	offer("acme", "MUG", "10.00", "1.00", 50, 5, NULL);
	offer("bolt", "MUG", "8.00", "2.50", 50, 2, NULL);
	offer("cask", "MUG", "7.00", "1.00", 0, 1, NULL);   /* cheapest, but no stock */
	const struct shop_line lines[] = { { "MUG", 3, NULL, NULL } };
	char *body = shop_order_json("R-1", "US", lines, 1, false);
	int status;
	json_t *r = post_json(body, &status);
	CU_ASSERT_EQUAL(status, 202);
	CU_ASSERT_STRING_EQUAL(str_of(r, "status"), "routed");
	CU_ASSERT_STRING_EQUAL(line_field(r, 0, "supplier"), "bolt");
	CU_ASSERT_STRING_EQUAL(line_field(r, 0, "status"), "routed");
	CU_ASSERT_STRING_EQUAL(line_field(r, 0, "reason"), "null");
	CU_ASSERT_EQUAL(stock_of("bolt", "MUG"), 47);
	CU_ASSERT_EQUAL(stock_of("acme", "MUG"), 50);
	const char *p[] = { str_of(r, "order_id") };
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM order_lines l JOIN suppliers s ON s.id = l.supplier_id"
	                                 " WHERE l.order_id = $1 AND s.code = 'bolt' AND l.reserved = 3"
	                                 " AND l.unit_cost = 10.50 AND l.status = 'routed'", 1, p), 1);
	/* The decision keeps every candidate and why the others lost. */
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT jsonb_array_length(candidates) FROM routing_decisions"
	                                 " WHERE order_id = $1 AND policy = 'cheapest' AND search = 'exact'", 1, p), 3);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM routing_decisions d,"
	                                 " jsonb_array_elements(d.candidates) c WHERE d.order_id = $1"
	                                 " AND c->>'supplier' = 'cask' AND c->>'why_not' = 'out_of_stock'", 1, p), 1);

	/* A redelivery reserves nothing more. */
	json_t *r2 = post_json(body, &status);
	CU_ASSERT_EQUAL(status, 200);
	CU_ASSERT_TRUE(json_is_true(json_object_get(r2, "duplicate")));
	CU_ASSERT_STRING_EQUAL(line_field(r2, 0, "supplier"), "bolt");
	CU_ASSERT_EQUAL(stock_of("bolt", "MUG"), 47);
	json_decref(r);
	json_decref(r2);
	free(body);
}

static void test_unroutable_reasons(void)
{
	offer("acme", "HAT", "5.00", "0", 10, 3, "{CA,GB}");
	offer("acme", "CAP", "5.00", "0", 1, 3, NULL);
	const struct shop_line lines[] = { { "MUG", 1, NULL, NULL }, { "NOPE", 1, NULL, NULL },
	                                   { "HAT", 1, NULL, NULL }, { "CAP", 2, NULL, NULL } };
	char *body = shop_order_json("R-2", "US", lines, 4, false);
	int status;
	json_t *r = post_json(body, &status);
	CU_ASSERT_EQUAL(status, 202);
	CU_ASSERT_STRING_EQUAL(str_of(r, "status"), "partially_routed");
	CU_ASSERT_STRING_EQUAL(line_field(r, 0, "status"), "routed");
	CU_ASSERT_STRING_EQUAL(line_field(r, 1, "reason"), "no_offer");
	CU_ASSERT_STRING_EQUAL(line_field(r, 2, "reason"), "no_region");
	CU_ASSERT_STRING_EQUAL(line_field(r, 3, "reason"), "out_of_stock");
	CU_ASSERT_STRING_EQUAL(line_field(r, 3, "supplier"), "null");
	CU_ASSERT_EQUAL(stock_of("acme", "CAP"), 1);
	json_decref(r);
	free(body);

	const struct shop_line nope[] = { { "NOPE", 1, NULL, NULL } };
	body = shop_order_json("R-3", "US", nope, 1, false);
	r = post_json(body, &status);
	CU_ASSERT_EQUAL(status, 202);
	CU_ASSERT_STRING_EQUAL(str_of(r, "status"), "needs_attention");
	json_decref(r);
	free(body);
}

struct racer {
	pthread_barrier_t *start;
	char *body;
	int status;
	char line_status[16], reason[16];
};

static void *race_one(void *arg)
{
	struct racer *rc = arg;
	pthread_barrier_wait(rc->start);
	json_t *r = post_json(rc->body, &rc->status);
	snprintf(rc->line_status, sizeof rc->line_status, "%s", line_field(r, 0, "status"));
	snprintf(rc->reason, sizeof rc->reason, "%s", line_field(r, 0, "reason"));
	json_decref(r);
	return NULL;
}

/* n concurrent one-line orders for sku; counts routed / out_of_stock answers. */
static void race(const char *prefix, const char *sku, int n, int *routed, int *oos)
{
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, (unsigned)n);
	struct racer *rs = calloc((size_t)n, sizeof *rs);
	pthread_t *th = calloc((size_t)n, sizeof *th);
	const struct shop_line line[] = { { sku, 1, NULL, NULL } };
	for (int i = 0; i < n; i++) {
		char id[32];
		snprintf(id, sizeof id, "%s-%d", prefix, i);
		rs[i] = (struct racer){ .start = &start, .body = shop_order_json(id, "US", line, 1, false) };
		pthread_create(&th[i], NULL, race_one, &rs[i]);
	}
	*routed = *oos = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(rs[i].status, 202);
		*routed += strcmp(rs[i].line_status, "routed") == 0;
		*oos += strcmp(rs[i].reason, "out_of_stock") == 0;
		free(rs[i].body);
	}
	pthread_barrier_destroy(&start);
	free(rs);
	free(th);
}

/* The acceptance test: 40 concurrent orders for 5 units. */
static void test_no_oversell(void)
{
	offer("acme", "HOT", "3.00", "0", 5, 2, NULL);
	int routed, oos;
	race("HOT", "HOT", 40, &routed, &oos);
	CU_ASSERT_EQUAL(routed, 5);
	CU_ASSERT_EQUAL(oos, 35);
	CU_ASSERT_EQUAL(stock_of("acme", "HOT"), 0);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM order_lines WHERE sku = 'HOT' AND status = 'routed'",
	                             0, NULL), 5);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT coalesce(sum(reserved), 0) FROM order_lines WHERE sku = 'HOT'",
	                             0, NULL), 5);
}

/* When the cheaper offer runs out under contention, lines fall back to the
 * next one instead of becoming unroutable. */
static void test_fallback_under_contention(void)
{
	offer("acme", "DUO", "2.00", "0", 3, 2, NULL);
	offer("bolt", "DUO", "4.00", "0", 3, 2, NULL);
	int routed, oos;
	race("DUO", "DUO", 10, &routed, &oos);
	CU_ASSERT_EQUAL(routed, 6);
	CU_ASSERT_EQUAL(oos, 4);
	CU_ASSERT_EQUAL(stock_of("acme", "DUO"), 0);
	CU_ASSERT_EQUAL(stock_of("bolt", "DUO"), 0);
}

static void test_policies(void)
{
	offer("acme", "PEN", "1.00", "0", 10, 9, NULL);
	offer("bolt", "PEN", "3.00", "0", 10, 5, NULL);
	offer("cask", "PEN", "2.00", "0", 10, 1, NULL);
	const struct shop_line line[] = { { "PEN", 1, NULL, NULL } };
	const char *want[][2] = { { "fastest", "cask" }, { "priority", "bolt" }, { "cheapest", "acme" } };
	for (int i = 0; i < 3; i++) {
		const char *p[] = { want[i][0] };
		CU_ASSERT_EQUAL(testdb_exec(db, "UPDATE stores SET policy = $1 WHERE code = 'shop'", 1, p), 0);
		char id[32];
		snprintf(id, sizeof id, "POL-%d", i);
		char *body = shop_order_json(id, "US", line, 1, false);
		int status;
		json_t *r = post_json(body, &status);
		CU_ASSERT_EQUAL(status, 202);
		CU_ASSERT_STRING_EQUAL(line_field(r, 0, "supplier"), want[i][1]);
		json_decref(r);
		free(body);
	}
}

static void test_cancel_releases_stock(void)
{
	offer("cask", "BAG", "9.00", "0", 10, 2, NULL);
	const struct shop_line lines[] = { { "BAG", 2, NULL, NULL }, { "BAG", 3, NULL, NULL } };
	char *body = shop_order_json("CX-1", "US", lines, 2, false);
	int status;
	json_t *r = post_json(body, &status);
	CU_ASSERT_EQUAL(status, 202);
	CU_ASSERT_EQUAL(stock_of("cask", "BAG"), 5);
	json_decref(r);
	r = post_json("{\"type\": \"order.cancelled\", \"order\": {\"id\": \"CX-1\"}}", &status);
	CU_ASSERT_EQUAL(status, 200);
	CU_ASSERT_STRING_EQUAL(str_of(r, "status"), "cancelled");
	CU_ASSERT_EQUAL(stock_of("cask", "BAG"), 10);
	json_decref(r);
	/* Cancelling again gives nothing back twice. */
	r = post_json("{\"type\": \"order.cancelled\", \"order\": {\"id\": \"CX-1\"}}", &status);
	CU_ASSERT_EQUAL(status, 200);
	CU_ASSERT_EQUAL(stock_of("cask", "BAG"), 10);
	json_decref(r);
	free(body);
}

int main(void)
{
	static const struct harness_test tests[] = {
		{ "cheapest offer with stock is chosen and reserved; redelivery reserves nothing", test_cheapest_routes_and_reserves },
		{ "unroutable lines carry no_offer, no_region, out_of_stock", test_unroutable_reasons },
		{ "40 concurrent orders for 5 units: 5 routed, 35 out_of_stock", test_no_oversell },
		{ "lines fall back to the next offer when stock is taken concurrently", test_fallback_under_contention },
		{ "fastest and priority policies", test_policies },
		{ "cancellation gives reserved stock back once", test_cancel_releases_stock },
		{ NULL, NULL },
	};
	return harness_main("routing", suite_init, suite_cleanup, tests);
}
