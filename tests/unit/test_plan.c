/* plan: decoding the candidates statement's rows into a pool of offers;
 * orders planned in turn on one pool (stock shared); the reservation
 * rounds (a concurrent transaction takes stock; lines are planned again
 * among what is left; past PLAN_MAX_ROUNDS they are out_of_stock); the
 * requests and messages of routed lines. Results are built with libpq's
 * own PGresult constructors: no database. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/CUnit.h>
#include <libpq-fe.h>

#include "plan/plan.h"
#include "support/harness.h"

/* A text result with ncols columns and n rows of values (NULL = SQL NULL). */
static PGresult *text_result(int ncols, const char *const *values, int n)
{
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	PGresAttDesc att[20];
	memset(att, 0, sizeof att);
	for (int c = 0; c < ncols; c++) {
		att[c].name = (char *)"c";
		att[c].typlen = -1;
		att[c].atttypmod = -1;
	}
	CU_ASSERT_FATAL(res && PQsetResultAttrs(res, ncols, att));
	for (int r = 0; r < n; r++)
		for (int c = 0; c < ncols; c++) {
			const char *v = values[r * ncols + c];
			CU_ASSERT_FATAL(PQsetvalue(res, r, c, (char *)v, v ? (int)strlen(v) : -1));
		}
	return res;
}

#define CAND_COLS 16
/* id, sku, supplier, priority, active, available, cost, shipping, stock, lead, ships_to, supplier id,
 * supplier sku, the supplier's scorecard: acceptance, on time (ppm), answered (NULL: not counted) */
static const char *const cand_rows[] = {
	"11", "MUG", "acme", "10", "t", "t", "50000", "20000", "5", "3", NULL, "1", "AC-MUG", "600000", "950000", "20",
	"12", "MUG", "bolt", "20", "t", "t", "60000", "20000", "5", "2", "US;CA", "2", "BO-MUG", NULL, NULL, NULL,
	"13", "CAP", "acme", "10", "t", "f", "10000", "0", "9", "1", "DE", "1", "AC-CAP", "600000", "950000", "20",
	"14", "HAT", "bolt", "20", "t", "t", "10000", "0", "9", "1", NULL, "2", "BO-HAT", NULL, NULL, NULL,
};

/* A reservation result row: offer id, reserved, stock now, available. */
static PGresult *reserve_result(const char *const *rows, int n)
{
	return text_result(4, rows, n);
}

static void test_decode(void)
{
	PGresult *res = text_result(CAND_COLS, cand_rows, 3);
	struct plan_pool pool;
	CU_ASSERT_FATAL(plan_pool_init(&pool, res) == 0);
	CU_ASSERT_EQUAL(pool.n, 3);
	const struct route_offer *f = &pool.offers[1];
	CU_ASSERT_EQUAL(f->offer_id, 12);
	CU_ASSERT_STRING_EQUAL(f->sku, "MUG");
	CU_ASSERT_STRING_EQUAL(f->supplier_code, "bolt");
	CU_ASSERT_EQUAL(f->supplier_priority, 20);
	CU_ASSERT_EQUAL(f->supplier_active, 1);
	CU_ASSERT_EQUAL(f->available, 1);
	CU_ASSERT_EQUAL(f->unit_cost, 60000);
	CU_ASSERT_EQUAL(f->shipping_cost, 20000);
	CU_ASSERT_EQUAL(f->stock, 5);
	CU_ASSERT_EQUAL(f->lead_time_days, 2);
	CU_ASSERT_STRING_EQUAL(f->ships_to, "US;CA");
	CU_ASSERT_EQUAL(pool.supplier_ids[1], 2);
	CU_ASSERT_STRING_EQUAL(pool.supplier_skus[1], "BO-MUG");
	CU_ASSERT_PTR_NULL(pool.offers[0].ships_to); /* SQL NULL: ships everywhere */
	CU_ASSERT_EQUAL(pool.offers[2].available, 0);
	CU_ASSERT_EQUAL(pool.planned[0], 0);
	/* The scorecard: acme's as counted; bolt not counted yet, at the default prior. */
	CU_ASSERT_EQUAL(pool.offers[0].accept_ppm, 600000);
	CU_ASSERT_EQUAL(pool.offers[0].on_time_ppm, 950000);
	CU_ASSERT_EQUAL(pool.answered[0], 20);
	CU_ASSERT_EQUAL(f->accept_ppm, 900000);
	CU_ASSERT_EQUAL(f->on_time_ppm, 900000);
	CU_ASSERT_EQUAL(pool.answered[1], -1);
	plan_pool_free(&pool);
	PQclear(res);
}

static void test_terms(void)
{
	struct plan_terms t = plan_terms_parse("50000", "700000", "0");
	CU_ASSERT_EQUAL(t.penalty, 50000);
	CU_ASSERT_EQUAL(t.min_accept_ppm, 700000);
	CU_ASSERT_EQUAL(t.min_on_time_ppm, 0);
	t = plan_terms_parse(NULL, "2000000", "-5");
	CU_ASSERT_EQUAL(t.penalty, 0);
	CU_ASSERT_EQUAL(t.min_accept_ppm, ROUTE_PPM);
	CU_ASSERT_EQUAL(t.min_on_time_ppm, 0);
	t = plan_terms_parse("99999999999999", NULL, NULL);
	CU_ASSERT_EQUAL(t.penalty, ROUTE_MAX_COST);
}

/* MUG: acme 7.00 accepting 60 % and shipping 95 % on time (risk 43 %),
 * bolt 8.00 not counted yet (90 % and 90 %: risk 19 %). A penalty of 5.00
 * makes acme 7.00 + 2.15 = 9.15 against bolt's 8.00 + 0.95 = 8.95. */
static void test_balanced_terms(void)
{
	PGresult *res = text_result(CAND_COLS, cand_rows, 2);
	struct plan_pool pool;
	CU_ASSERT_FATAL(plan_pool_init(&pool, res) == 0);
	struct plan p;
	plan_init(&p, &pool, 1, "US", ROUTE_BALANCED, 10);
	p.terms = plan_terms_parse("50000", "0", "0");
	p.lines[0] = (struct plan_line){ .line_no = 1, .sku = "MUG", .quantity = 1 };
	CU_ASSERT_FATAL(plan_route(&p) == 0);
	CU_ASSERT_EQUAL(p.offers[p.lines[0].offer].offer_id, 12);
	char *text = plan_candidates_text(&p, 0);
	json_t *cands = json_loads(text, 0, NULL);
	json_t *acme = json_array_get(cands, 0), *bolt = json_array_get(cands, 1);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(acme, "expected_cost")), "9.1500");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(acme, "acceptance_rate")), "60.0000");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(acme, "on_time_rate")), "95.0000");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(acme, "answered")), 20);
	CU_ASSERT_TRUE(json_is_false(json_object_get(acme, "below_floor")));
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(bolt, "expected_cost")), "8.9500");
	CU_ASSERT_TRUE(json_is_null(json_object_get(bolt, "answered")));
	json_decref(cands);
	free(text);
	plan_free(&p);

	/* A smaller penalty: acme 7.00 + 0.43 beats bolt 8.00 + 0.19; a floor
	 * of 70 % acceptance puts acme last whatever the penalty. */
	plan_init(&p, &pool, 1, "US", ROUTE_BALANCED, 10);
	p.terms = plan_terms_parse("10000", "0", "0");
	p.lines[0] = (struct plan_line){ .line_no = 1, .sku = "MUG", .quantity = 1 };
	CU_ASSERT_FATAL(plan_route(&p) == 0);
	CU_ASSERT_EQUAL(p.offers[p.lines[0].offer].offer_id, 11);
	plan_free(&p);
	plan_init(&p, &pool, 1, "US", ROUTE_CHEAPEST, 10);
	p.terms = plan_terms_parse("0", "700000", "0");
	p.lines[0] = (struct plan_line){ .line_no = 1, .sku = "MUG", .quantity = 1 };
	CU_ASSERT_FATAL(plan_route(&p) == 0);
	CU_ASSERT_EQUAL(p.offers[p.lines[0].offer].offer_id, 12);
	text = plan_candidates_text(&p, 0);
	cands = json_loads(text, 0, NULL);
	CU_ASSERT_TRUE(json_is_true(json_object_get(json_array_get(cands, 0), "below_floor")));
	CU_ASSERT_TRUE(json_is_false(json_object_get(json_array_get(cands, 1), "below_floor")));
	json_decref(cands);
	free(text);
	plan_free(&p);
	plan_pool_free(&pool);
	PQclear(res);
}

static void test_decode_rejects_other_shapes(void)
{
	PGresult *res = text_result(CAND_COLS - 1, cand_rows, 0);
	struct plan_pool pool;
	CU_ASSERT_EQUAL(plan_pool_init(&pool, res), -1);
	PQclear(res);
	struct plan p;
	res = text_result(CAND_COLS, cand_rows, 2);
	CU_ASSERT_FATAL(plan_pool_init(&pool, res) == 0);
	plan_init(&p, &pool, 1, "US", ROUTE_CHEAPEST, 10);
	p.lines[0] = (struct plan_line){ .line_no = 1, .sku = "MUG", .quantity = 1 };
	CU_ASSERT_FATAL(plan_route(&p) == 0);
	PGresult *wrong = text_result(3, cand_rows, 0); /* not the reservation's columns */
	struct plan *plans[1] = { &p };
	CU_ASSERT_EQUAL(plan_pool_take_reserve(&pool, plans, 1, wrong), -1);
	PQclear(wrong);
	plan_free(&p);
	plan_pool_free(&pool);
	PQclear(res);
}

static void test_orders_share_the_pool(void)
{
	PGresult *res = text_result(CAND_COLS, cand_rows, 3);
	struct plan_pool pool;
	CU_ASSERT_FATAL(plan_pool_init(&pool, res) == 0);
	struct plan a, b;
	plan_init(&a, &pool, 3, "US", ROUTE_CHEAPEST, 10);
	a.lines[0] = (struct plan_line){ .line_no = 1, .sku = "MUG", .quantity = 3 };
	a.lines[1] = (struct plan_line){ .line_no = 2, .sku = "MUG", .quantity = 1 };
	a.lines[2] = (struct plan_line){ .line_no = 3, .sku = "CAP", .quantity = 1 };
	CU_ASSERT_FATAL(plan_route(&a) == 0);
	/* Both MUG lines on acme's cheaper offer; CAP's only offer is unavailable. */
	CU_ASSERT_EQUAL(a.offers[a.lines[0].offer].offer_id, 11);
	CU_ASSERT_EQUAL(a.offers[a.lines[1].offer].offer_id, 11);
	CU_ASSERT_EQUAL(a.lines[2].offer, -1);
	CU_ASSERT_EQUAL(a.lines[2].reason, ROUTE_NO_OFFER);
	CU_ASSERT_EQUAL(pool.planned[0], 4); /* lines sharing an offer add up */
	/* The next order sees acme's 5 less the 4 planned: its 2 go to bolt. */
	plan_init(&b, &pool, 1, "US", ROUTE_CHEAPEST, 10);
	b.lines[0] = (struct plan_line){ .line_no = 1, .sku = "MUG", .quantity = 2 };
	CU_ASSERT_FATAL(plan_route(&b) == 0);
	CU_ASSERT_EQUAL(b.offers[b.lines[0].offer].offer_id, 12);
	CU_ASSERT_EQUAL(b.offers[b.lines[0].offer].stock, 5);
	CU_ASSERT_EQUAL(pool.planned[1], 2);
	/* Both reservations took: every line is settled. */
	static const char *const took[] = { "11", "t", "1", "t", "12", "t", "3", "t" };
	PGresult *r = reserve_result(took, 2);
	struct plan *plans[2] = { &a, &b };
	CU_ASSERT_EQUAL(plan_pool_take_reserve(&pool, plans, 2, r), 0);
	CU_ASSERT_EQUAL(pool.offers[0].stock, 1);
	CU_ASSERT_EQUAL(pool.planned[0], 0);
	CU_ASSERT_EQUAL(plan_routed(&a), 2);
	CU_ASSERT_EQUAL(plan_routed(&b), 1);
	CU_ASSERT_TRUE(a.lines[0].done && a.lines[1].done && b.lines[0].done);
	PQclear(r);
	plan_free(&a);
	plan_free(&b);
	plan_pool_free(&pool);
	PQclear(res);
}

static void test_lost_stock_replans(void)
{
	PGresult *res = text_result(CAND_COLS, cand_rows, 2);
	struct plan_pool pool;
	CU_ASSERT_FATAL(plan_pool_init(&pool, res) == 0);
	struct plan p;
	plan_init(&p, &pool, 1, "US", ROUTE_CHEAPEST, 10);
	p.lines[0] = (struct plan_line){ .line_no = 1, .sku = "MUG", .quantity = 4 };
	CU_ASSERT_FATAL(plan_route(&p) == 0);
	CU_ASSERT_EQUAL(p.offers[p.lines[0].offer].offer_id, 11);
	/* A concurrent transaction took acme's stock: nothing reserved, 1 left.
	 * Round 2 moves the line to bolt. */
	static const char *const lost[] = { "11", "f", "1", "t" };
	PGresult *r = reserve_result(lost, 1);
	struct plan *plans[1] = { &p };
	CU_ASSERT_EQUAL(plan_pool_take_reserve(&pool, plans, 1, r), 1);
	PQclear(r);
	CU_ASSERT_EQUAL(p.round, 1);
	CU_ASSERT_EQUAL(p.offers[p.lines[0].offer].offer_id, 12);
	CU_ASSERT_EQUAL(pool.planned[0], 0);
	CU_ASSERT_EQUAL(pool.planned[1], 4);
	static const char *const took[] = { "12", "t", "1", "t" };
	r = reserve_result(took, 1);
	CU_ASSERT_EQUAL(plan_pool_take_reserve(&pool, plans, 1, r), 0);
	PQclear(r);
	CU_ASSERT_EQUAL(plan_routed(&p), 1);
	CU_ASSERT_EQUAL(p.search_exact, 1); /* the first round's search is what the decision records */
	plan_free(&p);
	plan_pool_free(&pool);
	PQclear(res);
}

static void test_gives_up_after_max_rounds(void)
{
	PGresult *res = text_result(CAND_COLS, cand_rows, 1);
	struct plan_pool pool;
	CU_ASSERT_FATAL(plan_pool_init(&pool, res) == 0);
	struct plan p;
	plan_init(&p, &pool, 1, "US", ROUTE_CHEAPEST, 10);
	p.lines[0] = (struct plan_line){ .line_no = 1, .sku = "MUG", .quantity = 1 };
	CU_ASSERT_FATAL(plan_route(&p) == 0);
	/* Every round the update finds the stock gone, yet the fresh read still
	 * shows some (other orders keep taking it and giving it back). */
	static const char *const lost[] = { "11", "f", "1", "t" };
	PGresult *r = reserve_result(lost, 1);
	struct plan *plans[1] = { &p };
	int rounds = 1, more;
	while ((more = plan_pool_take_reserve(&pool, plans, 1, r)) == 1) {
		CU_ASSERT_EQUAL(p.lines[0].offer, 0);
		CU_ASSERT_FATAL(++rounds < 100);
	}
	PQclear(r);
	CU_ASSERT_EQUAL(more, 0);
	CU_ASSERT_EQUAL(rounds, PLAN_MAX_ROUNDS);
	CU_ASSERT_EQUAL(p.lines[0].offer, -1);
	CU_ASSERT_EQUAL(p.lines[0].reason, ROUTE_OUT_OF_STOCK);
	CU_ASSERT_EQUAL(plan_routed(&p), 0);
	plan_free(&p);
	plan_pool_free(&pool);
	PQclear(res);
}

static void test_line_results_and_candidates(void)
{
	PGresult *res = text_result(CAND_COLS, cand_rows, 3);
	struct plan_pool pool;
	CU_ASSERT_FATAL(plan_pool_init(&pool, res) == 0);
	struct plan p;
	plan_init(&p, &pool, 2, "CA", ROUTE_CHEAPEST, 10);
	p.lines[0] = (struct plan_line){ .line_no = 1, .sku = "MUG", .quantity = 1 };
	plan_settle(&p, 1, ROUTE_NO_SKU);
	CU_ASSERT_FATAL(plan_route(&p) == 0);
	CU_ASSERT_EQUAL(p.lines[1].reason, ROUTE_NO_SKU);

	struct plan_line_result lr;
	plan_line_result(&p, 0, &lr);
	CU_ASSERT_STRING_EQUAL(lr.status, "routed");
	CU_ASSERT_PTR_NULL(lr.reason);
	CU_ASSERT_EQUAL(lr.offer_id, 11);
	CU_ASSERT_EQUAL(lr.supplier_id, 1);
	CU_ASSERT_STRING_EQUAL(lr.supplier_code, "acme");
	CU_ASSERT_EQUAL(lr.reserved, 1);
	CU_ASSERT_STRING_EQUAL(lr.unit_cost, "7.0000");
	plan_line_result(&p, 1, &lr);
	CU_ASSERT_STRING_EQUAL(lr.status, "unroutable");
	CU_ASSERT_STRING_EQUAL(lr.reason, "no_sku");
	CU_ASSERT_EQUAL(lr.reserved, 0);
	CU_ASSERT_PTR_NULL(lr.supplier_code);

	/* The decision lists every offer of the line's SKU with why it lost. */
	char *text = plan_candidates_text(&p, 0);
	json_t *cands = json_loads(text, 0, NULL);
	CU_ASSERT_EQUAL(json_array_size(cands), 2);
	json_t *bolt = json_array_get(cands, 1);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(bolt, "supplier")), "bolt");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(bolt, "unit_cost")), "8.0000");
	CU_ASSERT_TRUE(json_is_true(json_object_get(bolt, "eligible")));
	CU_ASSERT_TRUE(json_is_null(json_object_get(bolt, "why_not")));
	json_decref(cands);
	free(text);
	plan_free(&p);
	plan_pool_free(&pool);
	PQclear(res);
}

static void test_requests(void)
{
	PGresult *res = text_result(CAND_COLS, cand_rows, 4);
	struct plan_pool pool;
	CU_ASSERT_FATAL(plan_pool_init(&pool, res) == 0);
	struct plan p;
	plan_init(&p, &pool, 3, "US", ROUTE_CHEAPEST, 1000);
	p.lines[0] = (struct plan_line){ .line_no = 1, .sku = "MUG", .quantity = 1 };
	p.lines[1] = (struct plan_line){ .line_no = 2, .sku = "HAT", .quantity = 2 };
	p.lines[2] = (struct plan_line){ .line_no = 3, .sku = "MUG", .quantity = 1 };
	p.policy = ROUTE_FASTEST; /* MUG to bolt (2 days), HAT only at bolt */
	CU_ASSERT_FATAL(plan_route(&p) == 0);
	struct plan_writes r;
	plan_writes_init(&r);
	struct plan_order o = { "7", "demo", "42", "1001", "Ann", "1 Main St", NULL, "Austin", "TX", "78701",
	                        "US", NULL };
	plan_writes_add(&r, &p, &o, 0);
	CU_ASSERT_EQUAL(strlen(p.lines[0].request_id), 36);
	CU_ASSERT_STRING_EQUAL(p.lines[0].request_id, p.lines[1].request_id);
	CU_ASSERT_STRING_EQUAL(p.lines[0].request_id, p.lines[2].request_id);
	/* a version 7 UUID: the time in milliseconds first, so ids sort by creation */
	CU_ASSERT_EQUAL(p.lines[0].request_id[14], '7');
	CU_ASSERT_PTR_NOT_NULL(strchr("89ab", p.lines[0].request_id[19]));
	char hex[13];
	snprintf(hex, sizeof hex, "%.8s%.4s", p.lines[0].request_id, p.lines[0].request_id + 9);
	long long ms = strtoll(hex, NULL, 16);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	long long now_ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	CU_ASSERT(ms <= now_ms && ms > now_ms - 60000);
	CU_ASSERT_EQUAL(r.requests.nrows, 1); /* one supplier, one request */
	CU_ASSERT_EQUAL(r.outbox.nrows, 1);
	CU_ASSERT_EQUAL(r.decisions.nrows, 3); /* a decision per line */
	CU_ASSERT_EQUAL(r.lines.nrows, 0);     /* new lines: the caller inserts them */
	/* The message is the outbox's fourth column: {"<json with quotes escaped>"}. */
	CU_ASSERT_PTR_NOT_NULL(strstr(r.outbox.col[3].buf, "\\\"supplier_sku\\\":\\\"BO-HAT\\\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.outbox.col[3].buf, "\\\"external_order_id\\\":\\\"1001\\\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.outbox.col[3].buf, "\\\"line2\\\":null"));
	/* Lines with a request get none again; routed again, each line is updated. */
	plan_writes_add(&r, &p, &o, 1);
	CU_ASSERT_EQUAL(r.requests.nrows, 1);
	CU_ASSERT_EQUAL(r.lines.nrows, 3);
	plan_writes_free(&r);
	plan_free(&p);
	plan_pool_free(&pool);
	PQclear(res);
}

int main(void)
{
	static const struct harness_test tests[] = {
		{ "candidates rows decode into a pool", test_decode },
		{ "a store's terms decode, clamped", test_terms },
		{ "balanced and the floor on the pool's scorecard", test_balanced_terms },
		{ "results of other shapes are refused", test_decode_rejects_other_shapes },
		{ "orders in turn share the pool's stock", test_orders_share_the_pool },
		{ "stock lost to a concurrent transaction is planned again", test_lost_stock_replans },
		{ "lines still short after the last round are out_of_stock", test_gives_up_after_max_rounds },
		{ "line results and candidates", test_line_results_and_candidates },
		{ "one request per supplier, with its message", test_requests },
		{ NULL, NULL },
	};
	return harness_main("plan", NULL, NULL, tests);
}
