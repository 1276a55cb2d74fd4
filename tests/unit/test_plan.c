/* plan: decoding the candidates statement's rows into offers, and the
 * reservation rounds (a concurrent order takes stock; lines are planned
 * again among what is left; past PLAN_MAX_ROUNDS they are out_of_stock).
 * Results are built with libpq's own PGresult constructors: no database. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <libpq-fe.h>

#include "plan/plan.h"
#include "support/harness.h"

/* One candidates row as text, in the statement's column order; ships_to
 * NULL is SQL NULL. */
struct cand_row {
	const char *offer_id, *sku, *supplier, *priority, *active, *available;
	const char *cost, *shipping, *stock, *lead, *ships_to, *supplier_id;
};

/* A result shaped like the candidates statement's, with ncols columns. */
static PGresult *cand_result(const struct cand_row *rows, int n, int ncols)
{
	static const char *const names[] = { "id", "sku", "code", "priority", "active", "available", "cost",
	                                     "shipping_cost", "stock", "lead_time_days", "ships_to",
	                                     "supplier_id" };
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	PGresAttDesc att[12];
	memset(att, 0, sizeof att);
	for (int c = 0; c < ncols; c++) {
		att[c].name = (char *)names[c];
		att[c].format = 0;
		att[c].typlen = -1;
		att[c].atttypmod = -1;
	}
	CU_ASSERT_FATAL(res && PQsetResultAttrs(res, ncols, att));
	for (int r = 0; r < n; r++) {
		const char *v[12] = { rows[r].offer_id, rows[r].sku, rows[r].supplier, rows[r].priority,
		                      rows[r].active, rows[r].available, rows[r].cost, rows[r].shipping,
		                      rows[r].stock, rows[r].lead, rows[r].ships_to, rows[r].supplier_id };
		for (int c = 0; c < ncols; c++)
			CU_ASSERT_FATAL(PQsetvalue(res, r, c, (char *)v[c], v[c] ? (int)strlen(v[c]) : -1));
	}
	return res;
}

static const struct cand_row two_suppliers[] = {
	/* id  sku    supplier prio  act  avail cost      shipping stock lead ships_to  sup */
	{ "11", "MUG", "acme", "10", "t", "t", "50000", "20000", "5", "3", NULL, "1" },
	{ "12", "MUG", "bolt", "20", "t", "t", "60000", "20000", "5", "2", "US;CA", "2" },
	{ "13", "CAP", "acme", "10", "t", "f", "10000", "0", "9", "1", "DE", "1" },
};

static void test_decode(void)
{
	PGresult *res = cand_result(two_suppliers, 3, 12);
	struct plan p;
	CU_ASSERT_FATAL(plan_init(&p, 2, res, "US", ROUTE_CHEAPEST, 10) == 0);
	CU_ASSERT_EQUAL(p.noffers, 3);
	CU_ASSERT_EQUAL(p.nlines, 2);
	const struct route_offer *f = &p.offers[1];
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
	CU_ASSERT_EQUAL(p.supplier_ids[1], 2);
	CU_ASSERT_PTR_NULL(p.offers[0].ships_to); /* SQL NULL: ships everywhere */
	CU_ASSERT_EQUAL(p.offers[2].available, 0);
	/* lines are numbered 1.. and unplanned */
	CU_ASSERT_EQUAL(p.lines[0].line_no, 1);
	CU_ASSERT_EQUAL(p.lines[1].line_no, 2);
	CU_ASSERT_EQUAL(p.lines[1].offer, -1);
	plan_free(&p);
	PQclear(res);
}

static void test_decode_rejects_other_shapes(void)
{
	PGresult *res = cand_result(two_suppliers, 3, 11);
	struct plan p;
	CU_ASSERT_EQUAL(plan_init(&p, 1, res, "US", ROUTE_CHEAPEST, 10), -1);
	PQclear(res);
}

static void test_route_and_reservations(void)
{
	PGresult *res = cand_result(two_suppliers, 3, 12);
	struct plan p;
	CU_ASSERT_FATAL(plan_init(&p, 3, res, "US", ROUTE_CHEAPEST, 10) == 0);
	p.lines[0] = (struct plan_line){ .line_no = 1, .sku = "MUG", .quantity = 2 };
	p.lines[1] = (struct plan_line){ .line_no = 2, .sku = "MUG", .quantity = 1 };
	p.lines[2] = (struct plan_line){ .line_no = 3, .sku = "CAP", .quantity = 1 };
	CU_ASSERT_FATAL(plan_route(&p) == 0);
	/* both MUG lines on acme's cheaper offer; CAP's only offer is unavailable */
	CU_ASSERT_EQUAL(p.lines[0].offer, 0);
	CU_ASSERT_EQUAL(p.lines[1].offer, 0);
	CU_ASSERT_EQUAL(p.lines[2].offer, -1);
	CU_ASSERT_EQUAL(p.lines[2].reason, ROUTE_NO_OFFER);
	CU_ASSERT_EQUAL(p.lines[2].done, 1);
	char *ids, *qty;
	CU_ASSERT_EQUAL(plan_reservations(&p, &ids, &qty), 1);
	CU_ASSERT_STRING_EQUAL(ids, "{11}"); /* lines sharing an offer add up */
	CU_ASSERT_STRING_EQUAL(qty, "{3}");
	free(ids);
	free(qty);
	/* The reservation succeeded: nothing is left for another round. */
	plan_reserved(&p, 11);
	CU_ASSERT_EQUAL(plan_next_round(&p), 0);
	CU_ASSERT_EQUAL(plan_routed(&p), 2);
	CU_ASSERT_EQUAL(plan_reservations(&p, &ids, &qty), 0);
	CU_ASSERT_STRING_EQUAL(ids, "{}");
	free(ids);
	free(qty);
	plan_free(&p);
	PQclear(res);
}

static void test_lost_stock_replans(void)
{
	PGresult *res = cand_result(two_suppliers, 2, 12);
	struct plan p;
	CU_ASSERT_FATAL(plan_init(&p, 1, res, "US", ROUTE_CHEAPEST, 10) == 0);
	p.lines[0] = (struct plan_line){ .line_no = 1, .sku = "MUG", .quantity = 4 };
	CU_ASSERT_FATAL(plan_route(&p) == 0);
	CU_ASSERT_EQUAL(p.offers[p.lines[0].offer].offer_id, 11);
	/* A concurrent order took acme's stock: the update reserved nothing and
	 * the fresh read says 1 left. The line goes to bolt in round 2. */
	plan_set_stock(&p, 11, 1, 1);
	CU_ASSERT_EQUAL(plan_next_round(&p), 1);
	CU_ASSERT_EQUAL(p.round, 1);
	CU_ASSERT_FATAL(plan_route(&p) == 0);
	CU_ASSERT_EQUAL(p.offers[p.lines[0].offer].offer_id, 12);
	char *ids, *qty;
	CU_ASSERT_EQUAL(plan_reservations(&p, &ids, &qty), 1);
	CU_ASSERT_STRING_EQUAL(ids, "{12}");
	CU_ASSERT_STRING_EQUAL(qty, "{4}");
	free(ids);
	free(qty);
	plan_reserved(&p, 12);
	CU_ASSERT_EQUAL(plan_next_round(&p), 0);
	CU_ASSERT_EQUAL(plan_routed(&p), 1);
	/* the first round's search is what the decision records */
	CU_ASSERT_EQUAL(p.search_exact, 1);
	plan_free(&p);
	PQclear(res);
}

static void test_gives_up_after_max_rounds(void)
{
	PGresult *res = cand_result(two_suppliers, 1, 12);
	struct plan p;
	CU_ASSERT_FATAL(plan_init(&p, 1, res, "US", ROUTE_CHEAPEST, 10) == 0);
	p.lines[0] = (struct plan_line){ .line_no = 1, .sku = "MUG", .quantity = 1 };
	int rounds = 0;
	/* Every round the update finds the stock gone, yet the fresh read
	 * still shows some (other orders keep taking and giving back). */
	for (;;) {
		CU_ASSERT_FATAL(plan_route(&p) == 0);
		CU_ASSERT_FATAL(p.lines[0].offer == 0);
		rounds++;
		plan_set_stock(&p, 11, 1, 1);
		if (!plan_next_round(&p))
			break;
		CU_ASSERT_FATAL(rounds < 100);
	}
	CU_ASSERT_EQUAL(rounds, PLAN_MAX_ROUNDS);
	CU_ASSERT_EQUAL(p.lines[0].offer, -1);
	CU_ASSERT_EQUAL(p.lines[0].reason, ROUTE_OUT_OF_STOCK);
	CU_ASSERT_EQUAL(plan_routed(&p), 0);
	plan_free(&p);
	PQclear(res);
}

static void test_settled_lines_and_json(void)
{
	PGresult *res = cand_result(two_suppliers, 3, 12);
	struct plan p;
	CU_ASSERT_FATAL(plan_init(&p, 2, res, "CA", ROUTE_CHEAPEST, 10) == 0);
	p.lines[0] = (struct plan_line){ .line_no = 1, .sku = "MUG", .quantity = 1 };
	plan_settle(&p, 1, ROUTE_NO_SKU);
	CU_ASSERT_FATAL(plan_route(&p) == 0);
	CU_ASSERT_EQUAL(p.lines[1].reason, ROUTE_NO_SKU);
	plan_reserved(&p, p.offers[p.lines[0].offer].offer_id);
	CU_ASSERT_EQUAL(plan_next_round(&p), 0);

	json_t *line = plan_line_json(&p, 0);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(line, "status")), "routed");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(line, "offer_id")), 11);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(line, "supplier_id")), 1);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(line, "reserved")), 1);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(line, "unit_cost")), "7.0000");
	json_decref(line);
	line = plan_line_json(&p, 1);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(line, "status")), "unroutable");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(line, "reason")), "no_sku");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(line, "reserved")), 0);
	json_decref(line);

	/* The decision lists every offer of the line's SKU with why it lost. */
	json_t *dec = plan_decision_json(&p, 0);
	json_t *cands = json_object_get(dec, "candidates");
	CU_ASSERT_EQUAL(json_array_size(cands), 2);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(dec, "offer_id")), 11);
	json_t *bolt = json_array_get(cands, 1);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(bolt, "supplier")), "bolt");
	CU_ASSERT_TRUE(json_is_true(json_object_get(bolt, "eligible")));
	CU_ASSERT_TRUE(json_is_null(json_object_get(bolt, "why_not")));
	json_decref(dec);
	plan_free(&p);
	PQclear(res);
}

int main(void)
{
	static const struct harness_test tests[] = {
		{ "candidates rows decode into offers", test_decode },
		{ "a result of another shape is refused", test_decode_rejects_other_shapes },
		{ "routing and what to reserve", test_route_and_reservations },
		{ "stock lost to a concurrent order is planned again", test_lost_stock_replans },
		{ "lines still short after the last round are out_of_stock", test_gives_up_after_max_rounds },
		{ "settled lines, line and decision JSON", test_settled_lines_and_json },
		{ NULL, NULL },
	};
	return harness_main("plan", NULL, NULL, tests);
}
