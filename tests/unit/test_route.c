#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/route.h"
#include "support/harness.h"

#define TC_LINES 6
#define TC_OFFERS 24

/* An active supplier's available offer: priority 0, no shipping cost, ships
 * everywhere, a perfect record (accepts everything, ships everything on time). */
#define OF(id, sku, sup, cost, stock, lead) \
	{ id, sku, sup, 0, 1, 1, cost, 0, stock, lead, NULL, ROUTE_PPM, ROUTE_PPM }
/* Every field but the record: id, sku, supplier, priority, active,
 * available, unit cost, shipping cost, stock, lead time, ships_to. */
#define OX(id, sku, sup, prio, act, avail, cost, ship, stock, lead, to) \
	{ id, sku, sup, prio, act, avail, cost, ship, stock, lead, to, ROUTE_PPM, ROUTE_PPM }
/* A scored offer (stock 9): its supplier's acceptance and on-time rates in percent. */
#define PCT(p) ((int)((p) * 10000))
#define OB(id, sku, sup, cost, lead, acc, ontime) \
	{ id, sku, sup, 0, 1, 1, cost, 0, 9, lead, NULL, PCT(acc), PCT(ontime) }

/* One table case; zero fields are defaults: tolerance 0, totals unchecked. */
struct tcase {
	const char *name;
	enum route_policy policy;
	int tol;
	const char *country;                    /* NULL: "US" */
	struct route_line lines[TC_LINES];      /* ends at a NULL sku */
	struct route_offer offers[TC_OFFERS];   /* ends at a NULL sku */
	long long want[TC_LINES];               /* offer_id per line, 0 when unroutable */
	enum route_reason why[TC_LINES];        /* reason of unroutable lines */
	long long penalty;                      /* balanced's; the floors below apply to any policy */
	int min_accept, min_on_time;            /* ppm */
	long long total;                        /* 0: not checked */
	long long expected;                     /* total_expected; 0: not checked */
	long long base;                         /* best_split_cost; 0: not checked */
	int nsup;                               /* 0: not checked */
	int consolidated;
	int greedy;                             /* search_exact expected 0 */
};

/* splitmix64: fixed seeds make every run the same. */
static uint64_t rng_state;

static unsigned rnd(unsigned n)
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	z ^= z >> 31;
	return (unsigned)(z % n);
}

static void shuffle_offers(struct route_offer *o, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = rnd((unsigned)i);
		struct route_offer t = o[i - 1];
		o[i - 1] = o[j];
		o[j] = t;
	}
}

/* ---- an independent reading of route.h, for checks and the oracle ---- */

/* ships_to written from the header's words: NULL, or a ';' list of codes
 * or "*", compared ignoring case and surrounding spaces. */
static int t_ships(const char *list, const char *country)
{
	if (!list)
		return 1;
	const char *p = list;
	for (;;) {
		const char *end = strchr(p, ';');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		char tok[16];
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (p[i] != ' ' && p[i] != '\t' && k + 1 < sizeof tok)
				tok[k++] = (char)toupper((unsigned char)p[i]);
		tok[k] = '\0';
		char want[16];
		size_t c = 0;
		for (; country[c] && c + 1 < sizeof want; c++)
			want[c] = (char)toupper((unsigned char)country[c]);
		want[c] = '\0';
		if (strcmp(tok, "*") == 0 || (k > 0 && strcmp(tok, want) == 0))
			return 1;
		if (!end)
			return 0;
		p = end + 1;
	}
}

static int t_eligible(const struct route_request *req, size_t o, size_t line)
{
	const struct route_offer *of = &req->offers[o];
	const struct route_line *l = &req->lines[line];
	return strcmp(of->sku, l->sku) == 0 && of->supplier_active && of->available &&
	       t_ships(of->ships_to, req->country) && of->stock >= l->quantity;
}

static long long t_cost(const struct route_offer *o, int qty)
{
	return (o->unit_cost + o->shipping_cost) * qty;
}

/* Expected cost, as route.h words it: the chance of a rejection or a late
 * shipment, in ppm, times the penalty, on top of the landed cost. */
static long long t_expected(const struct route_offer *o, long long penalty, int qty)
{
	long long kept = ((long long)o->accept_ppm * o->on_time_ppm + 500000) / 1000000;
	long long risk = 1000000 - kept;
	return (o->unit_cost + o->shipping_cost + (risk * penalty + 500000) / 1000000) * qty;
}

static int t_above_floor(const struct route_request *req, const struct route_offer *o)
{
	return o->accept_ppm >= req->min_accept_ppm && o->on_time_ppm >= req->min_on_time_ppm;
}

static long long t_key(const struct route_request *req, const struct route_offer *o, int qty)
{
	switch (req->policy) {
	case ROUTE_FASTEST: return o->lead_time_days;
	case ROUTE_PRIORITY: return o->supplier_priority;
	case ROUTE_BALANCED: return t_expected(o, req->penalty, qty);
	case ROUTE_CHEAPEST: break;
	}
	return t_cost(o, qty);
}

/* < 0 when eligible offer a comes before eligible offer b for a line of
 * quantity qty. */
static int t_before(const struct route_request *req, const struct route_offer *a,
                    const struct route_offer *b, int qty)
{
	int fa = t_above_floor(req, a), fb = t_above_floor(req, b);
	if (fa != fb)
		return fa ? -1 : 1;
	long long ka = t_key(req, a, qty), kb = t_key(req, b, qty);
	if (ka != kb)
		return ka < kb ? -1 : 1;
	if (req->policy == ROUTE_BALANCED && a->lead_time_days != b->lead_time_days)
		return a->lead_time_days < b->lead_time_days ? -1 : 1;
	if (t_cost(a, qty) != t_cost(b, qty))
		return t_cost(a, qty) < t_cost(b, qty) ? -1 : 1;
	if (a->lead_time_days != b->lead_time_days)
		return a->lead_time_days < b->lead_time_days ? -1 : 1;
	int c = strcmp(a->supplier_code, b->supplier_code);
	if (c)
		return c;
	return (a->offer_id > b->offer_id) - (a->offer_id < b->offer_id);
}

static enum route_reason t_reason(const struct route_request *req, size_t line)
{
	int open = 0, ships = 0;
	for (size_t o = 0; o < req->noffers; o++) {
		const struct route_offer *of = &req->offers[o];
		if (strcmp(of->sku, req->lines[line].sku) != 0 || !of->supplier_active || !of->available)
			continue;
		open = 1;
		ships |= t_ships(of->ships_to, req->country);
	}
	return !open ? ROUTE_NO_OFFER : !ships ? ROUTE_NO_REGION : ROUTE_OUT_OF_STOCK;
}

static long long taken[ROUTE_MAX_OFFERS];

/* Checks what must hold of any plan: eligible offers, no stock
 * over-committed, consistent costs, totals and supplier count. */
static int plan_valid(const struct route_request *req, const struct route_plan *plan)
{
	long long total = 0, expected = 0;
	int nsup = 0;
	memset(taken, 0, sizeof taken);
	for (size_t i = 0; i < req->nlines; i++) {
		const struct route_choice *c = &plan->choices[i];
		if (c->offer < 0) {
			if (c->offer != -1 || c->reason == ROUTE_ROUTED || c->cost != 0 || c->expected != 0)
				return 0;
			continue;
		}
		if ((size_t)c->offer >= req->noffers || c->reason != ROUTE_ROUTED)
			return 0;
		const struct route_offer *o = &req->offers[c->offer];
		if (strcmp(o->sku, req->lines[i].sku) != 0 || !o->supplier_active || !o->available ||
		    !t_ships(o->ships_to, req->country) || c->cost != t_cost(o, req->lines[i].quantity) ||
		    c->expected != t_expected(o, req->penalty, req->lines[i].quantity))
			return 0;
		taken[c->offer] += req->lines[i].quantity;
		if (taken[c->offer] > o->stock)
			return 0;
		total += c->cost;
		expected += c->expected;
		size_t j = 0;
		while (j < i && (plan->choices[j].offer < 0 ||
		                 strcmp(req->offers[plan->choices[j].offer].supplier_code,
		                        o->supplier_code) != 0))
			j++;
		nsup += j == i;
	}
	return total == plan->total_cost && expected == plan->total_expected && nsup == plan->nsuppliers;
}

/* ---- table cases ---- */

static size_t count_lines(const struct tcase *tc)
{
	size_t n = 0;
	while (n < TC_LINES && tc->lines[n].sku)
		n++;
	return n;
}

static size_t count_offers(const struct tcase *tc)
{
	size_t n = 0;
	while (n < TC_OFFERS && tc->offers[n].sku)
		n++;
	return n;
}

static int expect(int ok, const char *name, const char *what)
{
	CU_ASSERT(ok);
	if (!ok)
		fprintf(stderr, "\n  case \"%s\": %s", name, what);
	return ok;
}

/* Runs one case with its offers in the given order and checks everything it states. */
static void run_case_with(const struct tcase *tc, const struct route_offer *offers, size_t no)
{
	struct route_request req = {
		.lines = tc->lines, .nlines = count_lines(tc), .offers = offers, .noffers = no,
		.country = tc->country ? tc->country : "US", .policy = tc->policy,
		.split_tolerance_pct = tc->tol, .penalty = tc->penalty, .min_accept_ppm = tc->min_accept,
		.min_on_time_ppm = tc->min_on_time,
	};
	struct route_choice ch[TC_LINES];
	struct route_plan plan = { .choices = ch };
	if (!expect(route_plan_order(&req, &plan) == 0, tc->name, "route_plan_order failed"))
		return;
	expect(plan_valid(&req, &plan), tc->name, "plan not valid");
	for (size_t i = 0; i < req.nlines; i++) {
		long long got = ch[i].offer >= 0 ? offers[ch[i].offer].offer_id : 0;
		char msg[128];
		snprintf(msg, sizeof msg, "line %zu: offer %lld (%s), want %lld (%s)", i, got,
		         route_reason_name(ch[i].reason), tc->want[i],
		         route_reason_name(tc->want[i] ? ROUTE_ROUTED : tc->why[i]));
		expect(got == tc->want[i] &&
		       ch[i].reason == (tc->want[i] ? ROUTE_ROUTED : tc->why[i]), tc->name, msg);
	}
	if (tc->total)
		expect(plan.total_cost == tc->total, tc->name, "total_cost");
	if (tc->base)
		expect(plan.best_split_cost == tc->base, tc->name, "best_split_cost");
	if (tc->expected)
		expect(plan.total_expected == tc->expected, tc->name, "total_expected");
	if (tc->nsup)
		expect(plan.nsuppliers == tc->nsup, tc->name, "nsuppliers");
	expect(plan.consolidated == tc->consolidated, tc->name, "consolidated");
	expect(plan.search_exact == !tc->greedy, tc->name, "search_exact");
}

/* Each case as written, reversed and shuffled: the result must not move. */
static void run_table(const struct tcase *cases, size_t n)
{
	rng_state = 42;
	for (size_t c = 0; c < n; c++) {
		const struct tcase *tc = &cases[c];
		struct route_offer o[TC_OFFERS];
		size_t no = count_offers(tc);
		memcpy(o, tc->offers, no * sizeof o[0]);
		run_case_with(tc, o, no);
		for (size_t i = 0; i < no; i++)
			o[i] = tc->offers[no - 1 - i];
		run_case_with(tc, o, no);
		for (int k = 0; k < 4; k++) {
			shuffle_offers(o, no);
			run_case_with(tc, o, no);
		}
	}
}

static const struct tcase policy_cases[] = {
	{ .name = "cheapest: unit plus shipping, times quantity", .policy = ROUTE_CHEAPEST,
	  .lines = { { "A", 2 } },
	  .offers = { OX(1, "A", "s1", 0, 1, 1, 100, 50, 9, 1, NULL),
	              OX(2, "A", "s2", 0, 1, 1, 120, 0, 9, 9, NULL) },
	  .want = { 2 }, .total = 240, .base = 240, .nsup = 1 },
	{ .name = "fastest: lead time before cost", .policy = ROUTE_FASTEST,
	  .lines = { { "A", 1 } },
	  .offers = { OF(1, "A", "s1", 100, 9, 5), OF(2, "A", "s2", 300, 9, 2) },
	  .want = { 2 }, .total = 300 },
	{ .name = "priority: supplier priority before cost and lead", .policy = ROUTE_PRIORITY,
	  .lines = { { "A", 1 } },
	  .offers = { OX(1, "A", "s1", 2, 1, 1, 100, 0, 9, 1, NULL),
	              OX(2, "A", "s2", 1, 1, 1, 300, 0, 9, 9, NULL) },
	  .want = { 2 }, .total = 300 },
	{ .name = "cheapest: each line its own best", .policy = ROUTE_CHEAPEST, .tol = 0,
	  .lines = { { "A", 1 }, { "B", 3 } },
	  .offers = { OF(1, "A", "s1", 100, 9, 1), OF(2, "A", "s2", 90, 9, 1),
	              OF(3, "B", "s1", 70, 9, 1), OF(4, "B", "s2", 80, 9, 1) },
	  .want = { 2, 3 }, .total = 300, .base = 300, .nsup = 2 },
};

static const struct tcase constraint_cases[] = {
	{ .name = "inactive supplier skipped", .lines = { { "A", 1 } },
	  .offers = { OX(1, "A", "s1", 0, 0, 1, 50, 0, 9, 1, NULL), OF(2, "A", "s2", 100, 9, 1) },
	  .want = { 2 } },
	{ .name = "unavailable offer skipped", .lines = { { "A", 1 } },
	  .offers = { OX(1, "A", "s1", 0, 1, 0, 50, 0, 9, 1, NULL), OF(2, "A", "s2", 100, 9, 1) },
	  .want = { 2 } },
	{ .name = "ships_to list naming the country", .lines = { { "A", 1 } },
	  .offers = { OX(1, "A", "s1", 0, 1, 1, 50, 0, 9, 1, "GB;US"), OF(2, "A", "s2", 100, 9, 1) },
	  .want = { 1 } },
	{ .name = "ships_to list without the country", .lines = { { "A", 1 } },
	  .offers = { OX(1, "A", "s1", 0, 1, 1, 50, 0, 9, 1, "GB;CA"), OF(2, "A", "s2", 100, 9, 1) },
	  .want = { 2 } },
	{ .name = "ships_to star", .lines = { { "A", 1 } },
	  .offers = { OX(1, "A", "s1", 0, 1, 1, 50, 0, 9, 1, "*"),
	              OX(2, "A", "s2", 0, 1, 1, 100, 0, 9, 1, "US") },
	  .want = { 1 } },
	{ .name = "ships_to NULL ships everywhere", .country = "JP", .lines = { { "A", 1 } },
	  .offers = { OF(1, "A", "s1", 50, 9, 1), OX(2, "A", "s2", 0, 1, 1, 10, 0, 9, 1, "US") },
	  .want = { 1 } },
	{ .name = "ships_to ignores case and spaces", .country = "us", .lines = { { "A", 1 } },
	  .offers = { OX(1, "A", "s1", 0, 1, 1, 50, 0, 9, 1, " gb ; Us "),
	              OF(2, "A", "s2", 100, 9, 1) },
	  .want = { 1 } },
	{ .name = "ships_to empty ships nowhere", .lines = { { "A", 1 } },
	  .offers = { OX(1, "A", "s1", 0, 1, 1, 50, 0, 9, 1, ""), OF(2, "A", "s2", 100, 9, 1) },
	  .want = { 2 } },
	{ .name = "ships_to matches whole codes only", .lines = { { "A", 1 } },
	  .offers = { OX(1, "A", "s1", 0, 1, 1, 50, 0, 9, 1, "USA;U;S"),
	              OF(2, "A", "s2", 100, 9, 1) },
	  .want = { 2 } },
	{ .name = "stock equal to quantity", .lines = { { "A", 3 } },
	  .offers = { OF(1, "A", "s1", 50, 3, 1), OF(2, "A", "s2", 100, 9, 1) },
	  .want = { 1 } },
	{ .name = "stock one short of quantity", .lines = { { "A", 3 } },
	  .offers = { OF(1, "A", "s1", 50, 2, 1), OF(2, "A", "s2", 100, 9, 1) },
	  .want = { 2 } },
	{ .name = "negative stock", .lines = { { "A", 1 } },
	  .offers = { OF(1, "A", "s1", 50, -4, 1) },
	  .want = { 0 }, .why = { ROUTE_OUT_OF_STOCK } },
	{ .name = "sku compared byte for byte", .lines = { { "a", 1 }, { "A ", 1 } },
	  .offers = { OF(1, "A", "s1", 50, 9, 1) },
	  .want = { 0, 0 }, .why = { ROUTE_NO_OFFER, ROUTE_NO_OFFER } },
};

static const struct tcase reason_cases[] = {
	{ .name = "no_offer: no offer for the sku", .lines = { { "B", 1 } },
	  .offers = { OF(1, "A", "s1", 50, 9, 1) },
	  .want = { 0 }, .why = { ROUTE_NO_OFFER } },
	{ .name = "no_offer: no offers at all", .lines = { { "B", 1 } },
	  .want = { 0 }, .why = { ROUTE_NO_OFFER } },
	{ .name = "no_offer: only inactive or unavailable", .lines = { { "A", 1 } },
	  .offers = { OX(1, "A", "s1", 0, 0, 1, 50, 0, 9, 1, NULL),
	              OX(2, "A", "s2", 0, 1, 0, 50, 0, 9, 1, NULL) },
	  .want = { 0 }, .why = { ROUTE_NO_OFFER } },
	{ .name = "no_region: none ships there", .lines = { { "A", 1 } },
	  .offers = { OX(1, "A", "s1", 0, 1, 1, 50, 0, 9, 1, "GB") },
	  .want = { 0 }, .why = { ROUTE_NO_REGION } },
	{ .name = "no_region before no_offer", .lines = { { "A", 1 } },
	  .offers = { OX(1, "A", "s1", 0, 0, 1, 50, 0, 9, 1, NULL),
	              OX(2, "A", "s2", 0, 1, 1, 50, 0, 9, 1, "GB;CA") },
	  .want = { 0 }, .why = { ROUTE_NO_REGION } },
	{ .name = "no_region ignores inactive offers that ship", .lines = { { "A", 1 } },
	  .offers = { OX(1, "A", "s1", 0, 1, 0, 50, 0, 9, 1, "US"),
	              OX(2, "A", "s2", 0, 1, 1, 50, 0, 9, 1, "GB") },
	  .want = { 0 }, .why = { ROUTE_NO_REGION } },
	{ .name = "out_of_stock", .lines = { { "A", 2 } },
	  .offers = { OF(1, "A", "s1", 50, 1, 1) },
	  .want = { 0 }, .why = { ROUTE_OUT_OF_STOCK } },
	{ .name = "out_of_stock before no_region", .lines = { { "A", 2 } },
	  .offers = { OF(1, "A", "s1", 50, 1, 1), OX(2, "A", "s2", 0, 1, 1, 50, 0, 9, 1, "GB") },
	  .want = { 0 }, .why = { ROUTE_OUT_OF_STOCK } },
	{ .name = "partly routed order", .lines = { { "A", 1 }, { "B", 1 }, { "C", 1 } },
	  .offers = { OF(1, "A", "s1", 50, 9, 1), OX(2, "C", "s1", 0, 1, 1, 50, 0, 9, 1, "GB") },
	  .want = { 1, 0, 0 }, .why = { 0, ROUTE_NO_OFFER, ROUTE_NO_REGION },
	  .total = 50, .nsup = 1 },
};

static const struct tcase tie_cases[] = {
	{ .name = "cheapest tie: lead time before code", .policy = ROUTE_CHEAPEST,
	  .lines = { { "A", 1 } },
	  .offers = { OF(1, "A", "a", 100, 9, 5), OX(2, "A", "b", 0, 1, 1, 60, 40, 9, 3, NULL) },
	  .want = { 2 } },
	{ .name = "cheapest tie: code before offer id", .policy = ROUTE_CHEAPEST,
	  .lines = { { "A", 1 } },
	  .offers = { OF(1, "A", "zeta", 100, 9, 3), OF(2, "A", "alpha", 100, 9, 3) },
	  .want = { 2 } },
	{ .name = "cheapest tie: offer id", .policy = ROUTE_CHEAPEST, .lines = { { "A", 1 } },
	  .offers = { OF(7, "A", "s1", 100, 9, 3), OF(4, "A", "s1", 100, 9, 3),
	              OF(5, "A", "s1", 100, 9, 3) },
	  .want = { 4 } },
	{ .name = "cheapest tie: priority plays no part", .policy = ROUTE_CHEAPEST,
	  .lines = { { "A", 1 } },
	  .offers = { OX(1, "A", "a", 9, 1, 1, 100, 0, 9, 3, NULL),
	              OX(2, "A", "b", 0, 1, 1, 100, 0, 9, 3, NULL) },
	  .want = { 1 } },
	{ .name = "fastest tie: cost before code", .policy = ROUTE_FASTEST,
	  .lines = { { "A", 1 } },
	  .offers = { OF(1, "A", "a", 200, 9, 2), OF(2, "A", "b", 150, 9, 2) },
	  .want = { 2 } },
	{ .name = "fastest tie: code before offer id", .policy = ROUTE_FASTEST,
	  .lines = { { "A", 1 } },
	  .offers = { OF(1, "A", "m", 150, 9, 2), OF(2, "A", "k", 150, 9, 2) },
	  .want = { 2 } },
	{ .name = "fastest tie: offer id", .policy = ROUTE_FASTEST, .lines = { { "A", 1 } },
	  .offers = { OF(9, "A", "k", 150, 9, 2), OF(3, "A", "k", 150, 9, 2) },
	  .want = { 3 } },
	{ .name = "priority tie: cost before lead time", .policy = ROUTE_PRIORITY,
	  .lines = { { "A", 1 } },
	  .offers = { OX(1, "A", "a", 1, 1, 1, 150, 0, 9, 9, NULL),
	              OX(2, "A", "b", 1, 1, 1, 200, 0, 9, 1, NULL) },
	  .want = { 1 } },
	{ .name = "priority tie: lead time before code", .policy = ROUTE_PRIORITY,
	  .lines = { { "A", 1 } },
	  .offers = { OX(1, "A", "a", 1, 1, 1, 150, 0, 9, 4, NULL),
	              OX(2, "A", "b", 1, 1, 1, 150, 0, 9, 2, NULL) },
	  .want = { 2 } },
	{ .name = "priority tie: code before offer id", .policy = ROUTE_PRIORITY,
	  .lines = { { "A", 1 } },
	  .offers = { OX(1, "A", "b", 1, 1, 1, 150, 0, 9, 2, NULL),
	              OX(2, "A", "a", 1, 1, 1, 150, 0, 9, 2, NULL) },
	  .want = { 2 } },
	{ .name = "priority tie: offer id", .policy = ROUTE_PRIORITY, .lines = { { "A", 1 } },
	  .offers = { OX(8, "A", "a", 1, 1, 1, 150, 0, 9, 2, NULL),
	              OX(6, "A", "a", 1, 1, 1, 150, 0, 9, 2, NULL) },
	  .want = { 6 } },
};

static const struct tcase stock_cases[] = {
	{ .name = "same-sku lines share stock", .tol = 10,
	  .lines = { { "A", 2 }, { "A", 3 } },
	  .offers = { OF(1, "A", "s1", 100, 4, 1), OF(2, "A", "s2", 200, 9, 1) },
	  .want = { 1, 2 }, .total = 800, .nsup = 2 },
	{ .name = "stock covering both lines exactly", .tol = 10,
	  .lines = { { "A", 2 }, { "A", 3 } },
	  .offers = { OF(1, "A", "s1", 100, 5, 1), OF(2, "A", "s2", 200, 9, 1) },
	  .want = { 1, 1 }, .total = 500, .nsup = 1 },
	{ .name = "later same-sku line out of stock",
	  .lines = { { "A", 2 }, { "A", 3 } },
	  .offers = { OF(1, "A", "s1", 100, 4, 1) },
	  .want = { 1, 0 }, .why = { 0, ROUTE_OUT_OF_STOCK }, .total = 200 },
	/* Pinned: line order decides, with no reshuffle to route more lines. */
	{ .name = "earlier line takes the stock first",
	  .lines = { { "A", 1 }, { "A", 3 } },
	  .offers = { OF(1, "A", "s2", 50, 3, 1), OF(2, "A", "s3", 100, 1, 1) },
	  .want = { 1, 0 }, .why = { 0, ROUTE_OUT_OF_STOCK } },
	{ .name = "three lines, one offer, stock for two",
	  .lines = { { "A", 2 }, { "B", 1 }, { "A", 2 }, { "A", 1 } },
	  .offers = { OF(1, "A", "s1", 100, 4, 1), OF(2, "B", "s1", 10, 1, 1) },
	  .want = { 1, 2, 1, 0 }, .why = { 0, 0, 0, ROUTE_OUT_OF_STOCK }, .total = 410 },
};

/* "hub" fills lines X and Y at 95 each, sx and sy one each at sxy; ten
 * more suppliers at 150, the last ("f9") with f9_stock: 12 candidate
 * suppliers when that is 0, else 13. */
#define HUB_OFFERS(sxy, f9_stock)                                                          \
	OF(1, "X", "hub", 95, 9, 1), OF(2, "Y", "hub", 95, 9, 1), OF(3, "X", "sx", sxy, 9, 1),  \
	OF(4, "Y", "sy", sxy, 9, 1), OF(10, "X", "f0", 150, 9, 1), OF(11, "X", "f1", 150, 9, 1), \
	OF(12, "X", "f2", 150, 9, 1), OF(13, "X", "f3", 150, 9, 1),                            \
	OF(14, "Y", "f4", 150, 9, 1), OF(15, "Y", "f5", 150, 9, 1),                            \
	OF(16, "Y", "f6", 150, 9, 1), OF(17, "Y", "f7", 150, 9, 1),                            \
	OF(18, "Y", "f8", 150, 9, 1), OF(19, "Y", "f9", 150, f9_stock, 1)

static const struct tcase split_cases[] = {
	{ .name = "consolidate within tolerance", .tol = 10,
	  .lines = { { "X", 1 }, { "Y", 1 } },
	  .offers = { OF(1, "X", "s1", 100, 9, 1), OF(2, "Y", "s1", 100, 9, 1),
	              OF(3, "X", "s2", 95, 9, 1), OF(4, "Y", "s3", 95, 9, 1) },
	  .want = { 1, 2 }, .total = 200, .base = 190, .nsup = 1, .consolidated = 1 },
	{ .name = "no consolidation outside tolerance", .tol = 10,
	  .lines = { { "X", 1 }, { "Y", 1 } },
	  .offers = { OF(1, "X", "s1", 120, 9, 1), OF(2, "Y", "s1", 120, 9, 1),
	              OF(3, "X", "s2", 95, 9, 1), OF(4, "Y", "s3", 95, 9, 1) },
	  .want = { 3, 4 }, .total = 190, .base = 190, .nsup = 2 },
	{ .name = "tolerance boundary is inclusive", .tol = 10,
	  .lines = { { "X", 1 }, { "Y", 1 } },
	  .offers = { OF(1, "X", "s1", 550, 9, 1), OF(2, "Y", "s1", 550, 9, 1),
	              OF(3, "X", "s2", 500, 9, 1), OF(4, "Y", "s3", 500, 9, 1) },
	  .want = { 1, 2 }, .total = 1100, .base = 1000, .nsup = 1, .consolidated = 1 },
	{ .name = "tolerance boundary plus one", .tol = 10,
	  .lines = { { "X", 1 }, { "Y", 1 } },
	  .offers = { OF(1, "X", "s1", 550, 9, 1), OF(2, "Y", "s1", 551, 9, 1),
	              OF(3, "X", "s2", 500, 9, 1), OF(4, "Y", "s3", 500, 9, 1) },
	  .want = { 3, 4 }, .total = 1000, .nsup = 2 },
	{ .name = "tolerance 0 consolidates at equal cost", .tol = 0,
	  .lines = { { "X", 1 }, { "Y", 1 } },
	  .offers = { OF(1, "X", "s1", 100, 9, 5), OF(2, "Y", "s1", 100, 9, 1),
	              OF(3, "X", "s2", 100, 9, 1) },
	  .want = { 1, 2 }, .total = 200, .base = 200, .nsup = 1, .consolidated = 1 },
	{ .name = "tolerance 0 refuses any extra cost", .tol = 0,
	  .lines = { { "X", 1 }, { "Y", 1 } },
	  .offers = { OF(1, "X", "s1", 101, 9, 1), OF(2, "Y", "s1", 100, 9, 1),
	              OF(3, "X", "s2", 100, 9, 1) },
	  .want = { 3, 2 }, .total = 200, .nsup = 2 },
	{ .name = "huge tolerance", .tol = 2147483647,
	  .lines = { { "X", 1 }, { "Y", 1 } },
	  .offers = { OF(1, "X", "s1", 1000000000LL, 9, 1), OF(2, "Y", "s1", 100, 9, 1),
	              OF(3, "X", "s2", 100, 9, 1) },
	  .want = { 1, 2 }, .nsup = 1, .consolidated = 1 },
	{ .name = "cheapest: best single supplier by cost", .tol = 10,
	  .lines = { { "X", 1 }, { "Y", 1 } },
	  .offers = { OF(1, "X", "s1", 100, 9, 1), OF(2, "Y", "s1", 95, 9, 1),
	              OF(3, "X", "s2", 100, 9, 1), OF(4, "Y", "s2", 97, 9, 1),
	              OF(5, "X", "s3", 90, 9, 1), OF(6, "Y", "s4", 90, 9, 1) },
	  .want = { 1, 2 }, .total = 195, .base = 180, .consolidated = 1 },
	{ .name = "equal sets: lower supplier code", .tol = 10,
	  .lines = { { "X", 1 }, { "Y", 1 } },
	  .offers = { OF(1, "X", "beta", 100, 9, 1), OF(2, "Y", "beta", 95, 9, 1),
	              OF(3, "X", "alpha", 95, 9, 1), OF(4, "Y", "alpha", 100, 9, 1),
	              OF(5, "X", "s3", 90, 9, 1), OF(6, "Y", "s4", 90, 9, 1) },
	  .want = { 3, 4 }, .total = 195, .consolidated = 1 },
	{ .name = "fastest: sets compete on summed lead time first", .policy = ROUTE_FASTEST,
	  .tol = 10, .lines = { { "X", 1 }, { "Y", 1 } },
	  .offers = { OF(1, "X", "s1", 100, 9, 2), OF(2, "Y", "s1", 100, 9, 2),
	              OF(3, "X", "s2", 105, 9, 1), OF(4, "Y", "s2", 105, 9, 2),
	              OF(5, "X", "s3", 100, 9, 1), OF(6, "Y", "s4", 100, 9, 1) },
	  .want = { 3, 4 }, .total = 210, .base = 200, .consolidated = 1 },
	{ .name = "priority: sets compete on summed priority first", .policy = ROUTE_PRIORITY,
	  .tol = 10, .lines = { { "X", 1 }, { "Y", 1 } },
	  .offers = { OX(1, "X", "s1", 2, 1, 1, 100, 0, 9, 1, NULL),
	              OX(2, "Y", "s1", 2, 1, 1, 100, 0, 9, 1, NULL),
	              OX(3, "X", "s2", 1, 1, 1, 105, 0, 9, 1, NULL),
	              OX(4, "Y", "s2", 1, 1, 1, 105, 0, 9, 1, NULL),
	              OX(5, "X", "s3", 0, 1, 1, 100, 0, 9, 1, NULL),
	              OX(6, "Y", "s4", 0, 1, 1, 100, 0, 9, 1, NULL) },
	  .want = { 3, 4 }, .total = 210, .consolidated = 1 },
	{ .name = "fastest: tolerance is on cost, not lead time", .policy = ROUTE_FASTEST,
	  .tol = 10, .lines = { { "X", 1 }, { "Y", 1 } },
	  .offers = { OF(1, "X", "s1", 100, 9, 30), OF(2, "Y", "s1", 100, 9, 30),
	              OF(3, "X", "s2", 100, 9, 1), OF(4, "Y", "s3", 100, 9, 1) },
	  .want = { 1, 2 }, .consolidated = 1 },
	{ .name = "two suppliers instead of three", .tol = 10,
	  .lines = { { "X", 1 }, { "Y", 1 }, { "Z", 1 } },
	  .offers = { OF(1, "X", "s1", 100, 9, 1), OF(2, "Y", "s2", 100, 9, 1),
	              OF(3, "Z", "s3", 100, 9, 1), OF(4, "Y", "s4", 102, 9, 1),
	              OF(5, "Z", "s4", 102, 9, 1) },
	  .want = { 1, 4, 5 }, .total = 304, .base = 300, .nsup = 2, .consolidated = 1 },
	{ .name = "consolidation respects shared stock", .tol = 20,
	  .lines = { { "A", 2 }, { "B", 1 }, { "A", 2 } },
	  .offers = { OF(1, "A", "s1", 100, 3, 1), OF(2, "B", "s1", 100, 9, 1),
	              OF(3, "A", "s2", 90, 9, 1), OF(4, "B", "s3", 90, 9, 1) },
	  .want = { 3, 4, 3 }, .total = 450, .nsup = 2 },
	{ .name = "consolidation with enough shared stock", .tol = 20,
	  .lines = { { "A", 2 }, { "B", 1 }, { "A", 2 } },
	  .offers = { OF(1, "A", "s1", 100, 4, 1), OF(2, "B", "s1", 100, 9, 1),
	              OF(3, "A", "s2", 90, 9, 1), OF(4, "B", "s3", 90, 9, 1) },
	  .want = { 1, 2, 1 }, .total = 500, .base = 450, .nsup = 1, .consolidated = 1 },
	{ .name = "unroutable line stays unroutable", .tol = 10,
	  .lines = { { "X", 1 }, { "Z", 1 }, { "Y", 1 } },
	  .offers = { OF(1, "X", "s1", 100, 9, 1), OF(2, "Y", "s1", 100, 9, 1),
	              OF(3, "X", "s2", 95, 9, 1), OF(4, "Y", "s3", 95, 9, 1),
	              OX(5, "Z", "s1", 0, 1, 1, 1, 0, 9, 1, "GB") },
	  .want = { 1, 0, 2 }, .why = { 0, ROUTE_NO_REGION, 0 }, .total = 200, .nsup = 1,
	  .consolidated = 1 },
	{ .name = "a fewer-supplier plan does not route more lines", .tol = 100,
	  .lines = { { "A", 1 }, { "A", 3 }, { "B", 1 } },
	  .offers = { OF(1, "A", "s2", 50, 3, 1), OF(2, "A", "s3", 100, 1, 1),
	              OF(3, "B", "s3", 50, 9, 1), OF(4, "B", "s2", 60, 9, 1) },
	  .want = { 1, 0, 4 }, .why = { 0, ROUTE_OUT_OF_STOCK, 0 }, .total = 110, .base = 100,
	  .nsup = 1, .consolidated = 1 },
	{ .name = "12 candidate suppliers: exact search", .tol = 10,
	  .lines = { { "X", 1 }, { "Y", 1 } }, .offers = { HUB_OFFERS(90, 0) },
	  .want = { 1, 2 }, .total = 190, .base = 180, .nsup = 1, .consolidated = 1 },
	{ .name = "13 candidate suppliers: greedy search", .tol = 10,
	  .lines = { { "X", 1 }, { "Y", 1 } }, .offers = { HUB_OFFERS(90, 9) },
	  .want = { 1, 2 }, .total = 190, .base = 180, .nsup = 1, .consolidated = 1,
	  .greedy = 1 },
	{ .name = "13 candidate suppliers, one in B: nothing to search", .tol = 10,
	  .lines = { { "X", 1 }, { "Y", 1 } }, .offers = { HUB_OFFERS(190, 9) },
	  .want = { 1, 2 }, .total = 190, .nsup = 1 },
	{ .name = "greedy: gives up outside tolerance", .tol = 5,
	  .lines = { { "X", 1 }, { "Y", 1 } }, .offers = { HUB_OFFERS(90, 9) },
	  .want = { 3, 4 }, .total = 180, .nsup = 2, .greedy = 1 },
	{ .name = "greedy: equal reach, lower cost first", .tol = 10,
	  .lines = { { "X", 1 }, { "Y", 1 }, { "Z", 1 } },
	  .offers = { OF(1, "X", "hub1", 100, 9, 1), OF(2, "Y", "hub1", 100, 9, 1),
	              OF(3, "X", "hub2", 95, 9, 1), OF(4, "Y", "hub2", 95, 9, 1),
	              OF(5, "X", "sx", 90, 9, 1), OF(6, "Y", "sy", 90, 9, 1),
	              OF(7, "Z", "sz", 90, 9, 1),
	              OF(10, "X", "f0", 150, 9, 1), OF(11, "X", "f1", 150, 9, 1),
	              OF(12, "X", "f2", 150, 9, 1), OF(13, "X", "f3", 150, 9, 1),
	              OF(14, "Y", "f4", 150, 9, 1), OF(15, "Y", "f5", 150, 9, 1),
	              OF(16, "Z", "f6", 150, 9, 1), OF(17, "Z", "f7", 150, 9, 1) },
	  .want = { 3, 4, 7 }, .total = 280, .base = 270, .nsup = 2, .consolidated = 1,
	  .greedy = 1 },
	{ .name = "one supplier for five lines: exact", .tol = 10,
	  .lines = { { "L1", 1 }, { "L2", 1 }, { "L3", 1 }, { "L4", 1 }, { "L5", 1 } },
	  .offers = { OF(1, "L1", "s1", 100, 9, 1), OF(2, "L2", "s2", 100, 9, 1),
	              OF(3, "L3", "s3", 100, 9, 1), OF(4, "L4", "s4", 100, 9, 1),
	              OF(5, "L5", "s5", 100, 9, 1), OF(6, "L2", "s1", 101, 9, 1),
	              OF(7, "L3", "s1", 101, 9, 1), OF(8, "L4", "s1", 101, 9, 1),
	              OF(9, "L5", "s1", 101, 9, 1) },
	  .want = { 1, 6, 7, 8, 9 }, .total = 504, .nsup = 1, .consolidated = 1 },
	{ .name = "five suppliers, no set of three: greedy to four", .tol = 10,
	  .lines = { { "L1", 1 }, { "L2", 1 }, { "L3", 1 }, { "L4", 1 }, { "L5", 1 } },
	  .offers = { OF(1, "L1", "s1", 100, 9, 1), OF(2, "L2", "s2", 100, 9, 1),
	              OF(3, "L3", "s3", 100, 9, 1), OF(4, "L4", "s4", 100, 9, 1),
	              OF(5, "L5", "s5", 100, 9, 1), OF(6, "L5", "s1", 101, 9, 1) },
	  .want = { 1, 2, 3, 4, 6 }, .total = 501, .base = 500, .nsup = 4, .consolidated = 1,
	  .greedy = 1 },
	{ .name = "five suppliers, a set of three", .tol = 10,
	  .lines = { { "L1", 1 }, { "L2", 1 }, { "L3", 1 }, { "L4", 1 }, { "L5", 1 } },
	  .offers = { OF(1, "L1", "s1", 100, 9, 1), OF(2, "L2", "s2", 100, 9, 1),
	              OF(3, "L3", "s3", 100, 9, 1), OF(4, "L4", "s4", 100, 9, 1),
	              OF(5, "L5", "s5", 100, 9, 1), OF(6, "L5", "s1", 101, 9, 1),
	              OF(7, "L4", "s2", 101, 9, 1) },
	  .want = { 1, 2, 3, 7, 6 }, .total = 502, .nsup = 3, .consolidated = 1 },
};

/* Two suppliers of one SKU, worked by hand (costs in 1/10000 units):
 *   cheap:  9.00 (900), accepts 60 %, ships 95 % on time: risk 1 - 0.57 = 43 %
 *   steady: 10.00 (1000), accepts 95 %, ships 95 % on time: risk 1 - 0.9025 = 9.75 %
 * Expected unit cost = cost + risk * penalty (rounded half up):
 *   penalty 500: cheap 900 + 215 = 1115, steady 1000 + 48.75 -> 1049: steady
 *   penalty 100: cheap 900 + 43 = 943, steady 1000 + 9.75 -> 1010: cheap
 *   penalty 300: cheap 900 + 129 = 1029, steady 1000 + 29.25 -> 1029: a tie */
#define CHEAP(lead) OB(1, "A", "cheap", 900, lead, 60, 95)
#define STEADY(lead) OB(2, "A", "steady", 1000, lead, 95, 95)

static const struct tcase balanced_cases[] = {
	{ .name = "balanced: a large penalty makes the unreliable supplier lose", .policy = ROUTE_BALANCED,
	  .penalty = 500, .lines = { { "A", 2 } }, .offers = { CHEAP(2), STEADY(2) },
	  .want = { 2 }, .total = 2000, .expected = 2098, .nsup = 1 },
	{ .name = "balanced: a small penalty lets the cheap one win", .policy = ROUTE_BALANCED,
	  .penalty = 100, .lines = { { "A", 2 } }, .offers = { CHEAP(2), STEADY(2) },
	  .want = { 1 }, .total = 1800, .expected = 1886 },
	{ .name = "balanced: no penalty is cheapest", .policy = ROUTE_BALANCED,
	  .lines = { { "A", 1 } }, .offers = { CHEAP(2), STEADY(2) },
	  .want = { 1 }, .total = 900, .expected = 900 },
	{ .name = "cheapest ignores the record", .policy = ROUTE_CHEAPEST, .penalty = 500,
	  .lines = { { "A", 1 } }, .offers = { CHEAP(2), STEADY(2) },
	  .want = { 1 }, .total = 900, .expected = 1115 },
	{ .name = "balanced tie: lead time first", .policy = ROUTE_BALANCED, .penalty = 300,
	  .lines = { { "A", 1 } }, .offers = { CHEAP(3), STEADY(2) },
	  .want = { 2 }, .expected = 1029 },
	{ .name = "balanced tie, same lead time: cost", .policy = ROUTE_BALANCED, .penalty = 300,
	  .lines = { { "A", 1 } }, .offers = { CHEAP(2), STEADY(2) },
	  .want = { 1 }, .expected = 1029 },
	{ .name = "balanced tie: code, then offer id", .policy = ROUTE_BALANCED, .penalty = 300,
	  .lines = { { "A", 1 } },
	  .offers = { OB(5, "A", "b", 900, 2, 60, 95), OB(4, "A", "a", 900, 2, 60, 95),
	              OB(3, "A", "a", 900, 2, 60, 95) },
	  .want = { 3 } },
	{ .name = "floor: below it loses under cheapest too", .policy = ROUTE_CHEAPEST,
	  .min_accept = PCT(70), .lines = { { "A", 1 } }, .offers = { CHEAP(2), STEADY(2) },
	  .want = { 2 } },
	{ .name = "floor: below it loses under balanced with no penalty", .policy = ROUTE_BALANCED,
	  .min_accept = PCT(70), .lines = { { "A", 1 } }, .offers = { CHEAP(2), STEADY(2) },
	  .want = { 2 } },
	{ .name = "floor: at it is above it", .policy = ROUTE_CHEAPEST,
	  .min_accept = PCT(60), .min_on_time = PCT(95), .lines = { { "A", 1 } },
	  .offers = { CHEAP(2), STEADY(2) }, .want = { 1 } },
	{ .name = "floor: used when nobody above it can ship the line", .policy = ROUTE_BALANCED,
	  .min_accept = PCT(70), .lines = { { "A", 2 } },
	  .offers = { CHEAP(2), { 2, "A", "steady", 0, 1, 1, 1000, 0, 1, 2, NULL, PCT(95), PCT(95) } },
	  .want = { 1 } },
	{ .name = "floor: both below it, the policy decides", .policy = ROUTE_CHEAPEST,
	  .min_on_time = PCT(96), .lines = { { "A", 1 } }, .offers = { CHEAP(2), STEADY(2) },
	  .want = { 1 } },
	{ .name = "floor: after stock, an earlier line leaves it the rest", .policy = ROUTE_CHEAPEST,
	  .min_accept = PCT(70), .lines = { { "A", 1 }, { "A", 1 } },
	  .offers = { CHEAP(2), { 2, "A", "steady", 0, 1, 1, 1000, 0, 1, 2, NULL, PCT(95), PCT(95) } },
	  .want = { 2, 1 }, .nsup = 2 },
	/* x by a, y by b, both perfect at 1.00; c ships both at 1.05 but
	 * accepts only 80 %: expected 1.05 + 0.2 * penalty. */
	{ .name = "cheapest: one supplier within tolerance", .policy = ROUTE_CHEAPEST, .tol = 10,
	  .lines = { { "X", 1 }, { "Y", 1 } },
	  .offers = { OF(1, "X", "a", 100, 9, 1), OF(2, "Y", "b", 100, 9, 1),
	              OB(3, "X", "c", 105, 1, 80, 100), OB(4, "Y", "c", 105, 1, 80, 100) },
	  .want = { 3, 4 }, .total = 210, .base = 200, .nsup = 1, .consolidated = 1 },
	{ .name = "balanced: the tolerance holds expected cost", .policy = ROUTE_BALANCED, .tol = 10,
	  .penalty = 40, .lines = { { "X", 1 }, { "Y", 1 } },
	  .offers = { OF(1, "X", "a", 100, 9, 1), OF(2, "Y", "b", 100, 9, 1),
	              OB(3, "X", "c", 105, 1, 80, 100), OB(4, "Y", "c", 105, 1, 80, 100) },
	  .want = { 1, 2 }, .total = 200, .expected = 200, .nsup = 2 },
	{ .name = "balanced: consolidated when the expected cost is within it", .policy = ROUTE_BALANCED,
	  .tol = 15, .penalty = 40, .lines = { { "X", 1 }, { "Y", 1 } },
	  .offers = { OF(1, "X", "a", 100, 9, 1), OF(2, "Y", "b", 100, 9, 1),
	              OB(3, "X", "c", 105, 1, 80, 100), OB(4, "Y", "c", 105, 1, 80, 100) },
	  .want = { 3, 4 }, .total = 210, .expected = 226, .base = 200, .nsup = 1, .consolidated = 1 },
	{ .name = "floor: no consolidation onto a supplier below it", .policy = ROUTE_CHEAPEST, .tol = 10,
	  .min_accept = PCT(90), .lines = { { "X", 1 }, { "Y", 1 } },
	  .offers = { OF(1, "X", "a", 100, 9, 1), OF(2, "Y", "b", 100, 9, 1),
	              OB(3, "X", "c", 95, 1, 80, 100), OB(4, "Y", "c", 95, 1, 80, 100) },
	  .want = { 1, 2 }, .total = 200, .base = 200, .nsup = 2 },
	{ .name = "floor: consolidation onto one above it", .policy = ROUTE_CHEAPEST, .tol = 10,
	  .min_accept = PCT(90), .lines = { { "X", 1 }, { "Y", 1 } },
	  .offers = { OF(1, "X", "a", 100, 9, 1), OF(2, "Y", "b", 100, 9, 1), OF(5, "Y", "a", 105, 9, 1),
	              OB(3, "X", "c", 95, 1, 80, 100), OB(4, "Y", "c", 95, 1, 80, 100) },
	  .want = { 1, 5 }, .total = 205, .base = 200, .nsup = 1, .consolidated = 1 },
	{ .name = "floor: lines only those below it ship are consolidated among them", .policy = ROUTE_CHEAPEST,
	  .tol = 10, .min_accept = PCT(90), .lines = { { "X", 1 }, { "Y", 1 } },
	  .offers = { OB(3, "X", "c", 95, 1, 80, 100), OB(7, "X", "d", 100, 1, 50, 100),
	              OB(4, "Y", "c", 100, 1, 80, 100), OB(6, "Y", "d", 90, 1, 50, 100) },
	  .want = { 7, 6 }, .total = 190, .base = 185, .nsup = 1, .consolidated = 1 },
};

#define RUN_TABLE(t) run_table(t, sizeof t / sizeof t[0])

static void test_policies(void)
{
	RUN_TABLE(policy_cases);
}

static void test_constraints(void)
{
	RUN_TABLE(constraint_cases);
}

static void test_reasons(void)
{
	RUN_TABLE(reason_cases);
}

static void test_tie_breaks(void)
{
	RUN_TABLE(tie_cases);
}

static void test_shared_stock(void)
{
	RUN_TABLE(stock_cases);
}

static void test_split_rule(void)
{
	RUN_TABLE(split_cases);
}

static void test_balanced(void)
{
	RUN_TABLE(balanced_cases);
}

static void test_expected_cost(void)
{
	static const struct {
		int acc, ontime;
		long long cost, ship, penalty;
		int risk;
		long long want;
	} cases[] = {
		{ ROUTE_PPM, ROUTE_PPM, 100, 50, 1000, 0, 150 },
		{ 0, ROUTE_PPM, 100, 0, 1000, ROUTE_PPM, 1100 },
		{ 500000, 500000, 100, 0, 1000, 750000, 850 },
		{ 333333, 333333, 0, 0, 1000000, 888889, 888889 },  /* 111110.9 rounds up */
		{ 500000, ROUTE_PPM, 0, 0, 1, 500000, 1 },           /* half a unit rounds up */
		{ 500001, ROUTE_PPM, 0, 0, 1, 499999, 0 },
		{ 900000, 900000, 10000, 0, 0, 190000, 10000 },      /* no penalty: the cost */
		{ 0, 0, ROUTE_MAX_COST, ROUTE_MAX_COST, ROUTE_MAX_COST, ROUTE_PPM, 3 * ROUTE_MAX_COST },
		{ -5, 2 * ROUTE_PPM, 100, 0, 100, ROUTE_PPM, 200 },   /* clamped: 0 and 1 */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct route_offer o = OB(1, "A", "s", 0, 1, 0, 0);
		o.accept_ppm = cases[i].acc;
		o.on_time_ppm = cases[i].ontime;
		o.unit_cost = cases[i].cost;
		o.shipping_cost = cases[i].ship;
		HARNESS_CHECK(route_risk_ppm(&o) == cases[i].risk, "case %zu: risk %d, want %d", i,
		              route_risk_ppm(&o), cases[i].risk);
		long long got = route_expected_unit_cost(&o, cases[i].penalty);
		HARNESS_CHECK(got == cases[i].want, "case %zu: expected %lld, want %lld", i, got, cases[i].want);
	}
	struct route_offer o = OB(1, "A", "s", 0, 1, 80, 90);
	CU_ASSERT_TRUE(route_above_floor(&o, PCT(80), PCT(90)));
	CU_ASSERT_TRUE(route_above_floor(&o, 0, 0));
	CU_ASSERT_FALSE(route_above_floor(&o, PCT(80) + 1, 0));
	CU_ASSERT_FALSE(route_above_floor(&o, 0, PCT(90) + 1));
}

static void test_names(void)
{
	enum route_policy p = ROUTE_PRIORITY;
	CU_ASSERT_EQUAL(route_policy_parse("cheapest", &p), 0);
	CU_ASSERT_EQUAL(p, ROUTE_CHEAPEST);
	CU_ASSERT_EQUAL(route_policy_parse("fastest", &p), 0);
	CU_ASSERT_EQUAL(p, ROUTE_FASTEST);
	CU_ASSERT_EQUAL(route_policy_parse("priority", &p), 0);
	CU_ASSERT_EQUAL(p, ROUTE_PRIORITY);
	CU_ASSERT_EQUAL(route_policy_parse("balanced", &p), 0);
	CU_ASSERT_EQUAL(p, ROUTE_BALANCED);
	p = ROUTE_PRIORITY;
	CU_ASSERT_EQUAL(route_policy_parse("Cheapest", &p), -1);
	CU_ASSERT_EQUAL(route_policy_parse("", &p), -1);
	CU_ASSERT_EQUAL(route_policy_parse("cheapest ", &p), -1);
	CU_ASSERT_EQUAL(route_policy_parse(NULL, &p), -1);
	CU_ASSERT_EQUAL(p, ROUTE_PRIORITY);
	CU_ASSERT_STRING_EQUAL(route_policy_name(ROUTE_CHEAPEST), "cheapest");
	CU_ASSERT_STRING_EQUAL(route_policy_name(ROUTE_FASTEST), "fastest");
	CU_ASSERT_STRING_EQUAL(route_policy_name(ROUTE_PRIORITY), "priority");
	CU_ASSERT_STRING_EQUAL(route_policy_name(ROUTE_BALANCED), "balanced");
	CU_ASSERT_STRING_EQUAL(route_reason_name(ROUTE_ROUTED), "routed");
	CU_ASSERT_STRING_EQUAL(route_reason_name(ROUTE_NO_OFFER), "no_offer");
	CU_ASSERT_STRING_EQUAL(route_reason_name(ROUTE_NO_REGION), "no_region");
	CU_ASSERT_STRING_EQUAL(route_reason_name(ROUTE_OUT_OF_STOCK), "out_of_stock");
}

static void test_offer_check(void)
{
	static const struct {
		struct route_offer offer;
		const char *country;
		int quantity;
		enum route_reason want;
	} cases[] = {
		{ OF(1, "A", "s1", 100, 3, 1), "US", 3, ROUTE_ROUTED },
		{ OF(1, "A", "s1", 100, 3, 1), "US", 4, ROUTE_OUT_OF_STOCK },
		{ OX(1, "A", "s1", 0, 0, 1, 100, 0, 9, 1, "GB"), "US", 99, ROUTE_NO_OFFER },
		{ OX(1, "A", "s1", 0, 1, 0, 100, 0, 9, 1, "GB"), "US", 99, ROUTE_NO_OFFER },
		{ OX(1, "A", "s1", 0, 1, 1, 100, 0, 0, 1, "GB"), "US", 1, ROUTE_NO_REGION },
		{ OX(1, "A", "s1", 0, 1, 1, 100, 0, 1, 1, "GB; us"), "US", 1, ROUTE_ROUTED },
		{ OX(1, "A", "s1", 0, 1, 1, 100, 0, 1, 1, "*"), "JP", 1, ROUTE_ROUTED },
		{ OX(1, "A", "s1", 0, 1, 1, 100, 0, 1, 1, ""), "JP", 1, ROUTE_NO_REGION },
		/* No country: nothing is shipped, so ships_to does not apply. */
		{ OX(1, "A", "s1", 0, 1, 1, 100, 0, 1, 1, "GB"), NULL, 1, ROUTE_ROUTED },
		{ OX(1, "A", "s1", 0, 1, 1, 100, 0, 0, 1, "GB"), NULL, 1, ROUTE_OUT_OF_STOCK },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		CU_ASSERT_EQUAL(route_offer_check(&cases[i].offer, cases[i].country, cases[i].quantity),
		                cases[i].want);
}

static void test_empty_order(void)
{
	struct route_request req = { .country = "US", .split_tolerance_pct = 10 };
	struct route_plan plan = { .nsuppliers = 7, .total_cost = 7, .consolidated = 7 };
	CU_ASSERT_EQUAL(route_plan_order(&req, &plan), 0);
	CU_ASSERT_EQUAL(plan.nsuppliers, 0);
	CU_ASSERT_EQUAL(plan.total_cost, 0);
	CU_ASSERT_EQUAL(plan.best_split_cost, 0);
	CU_ASSERT_EQUAL(plan.consolidated, 0);
	CU_ASSERT_EQUAL(plan.search_exact, 1);
}

/* Returns what route_plan_order says of req after one change made by edit;
 * checks that a refused request leaves the plan untouched. */
static int bad_input_rc(void (*edit)(struct route_request *, struct route_line *,
                                     struct route_offer *, struct route_plan *))
{
	struct route_line lines[2] = { { "A", 1 }, { "B", 2 } };
	struct route_offer offers[2] = { OF(1, "A", "s1", 100, 9, 1), OF(2, "B", "s2", 100, 9, 1) };
	struct route_choice ch[2] = { { 77, ROUTE_NO_REGION, 77, 77 }, { 77, ROUTE_NO_REGION, 77, 77 } };
	struct route_request req = { lines, 2, offers, 2, "US", ROUTE_CHEAPEST, 10, 0, 0, 0 };
	struct route_plan plan = { .choices = ch, .nsuppliers = 77, .total_cost = 77 };
	edit(&req, lines, offers, &plan);
	int rc = route_plan_order(&req, &plan);
	if (rc != 0)
		CU_ASSERT(ch[0].offer == 77 && ch[1].offer == 77 && plan.nsuppliers == 77 &&
		          plan.total_cost == 77);
	return rc;
}

#define EDIT(name, stmt)                                                                  \
	static void name(struct route_request *r, struct route_line *l, struct route_offer *o, \
	                 struct route_plan *p)                                                \
	{                                                                                      \
		(void)r, (void)l, (void)o, (void)p;                                                \
		stmt;                                                                              \
	}
EDIT(e_none, (void)0)
EDIT(e_too_many_lines, r->nlines = ROUTE_MAX_LINES + 1)
EDIT(e_too_many_offers, r->noffers = ROUTE_MAX_OFFERS + 1)
EDIT(e_quantity_zero, l[1].quantity = 0)
EDIT(e_quantity_negative, l[0].quantity = -3)
EDIT(e_quantity_too_big, l[0].quantity = ROUTE_MAX_QUANTITY + 1)
EDIT(e_line_sku_null, l[1].sku = NULL)
EDIT(e_offer_sku_null, o[1].sku = NULL)
EDIT(e_supplier_null, o[0].supplier_code = NULL)
EDIT(e_cost_negative, o[0].unit_cost = -1)
EDIT(e_cost_too_big, o[1].unit_cost = ROUTE_MAX_COST + 1)
EDIT(e_shipping_negative, o[1].shipping_cost = -1)
EDIT(e_shipping_too_big, o[0].shipping_cost = ROUTE_MAX_COST + 1)
EDIT(e_tolerance_negative, r->split_tolerance_pct = -1)
EDIT(e_policy_unknown, r->policy = (enum route_policy)7)
EDIT(e_country_null, r->country = NULL)
EDIT(e_lines_null, r->lines = NULL)
EDIT(e_offers_null, r->offers = NULL)
EDIT(e_choices_null, p->choices = NULL)
EDIT(e_max_quantity, l[0].quantity = ROUTE_MAX_QUANTITY)
EDIT(e_max_cost, o[0].unit_cost = o[0].shipping_cost = ROUTE_MAX_COST)
EDIT(e_no_offers, r->offers = NULL; r->noffers = 0)
EDIT(e_penalty_negative, r->penalty = -1)
EDIT(e_penalty_too_big, r->penalty = ROUTE_MAX_COST + 1)
EDIT(e_penalty_max, r->penalty = ROUTE_MAX_COST; r->policy = ROUTE_BALANCED)
EDIT(e_floor_negative, r->min_accept_ppm = -1)
EDIT(e_floor_too_big, r->min_on_time_ppm = ROUTE_PPM + 1)
EDIT(e_floor_max, r->min_accept_ppm = r->min_on_time_ppm = ROUTE_PPM)
EDIT(e_rate_negative, o[1].accept_ppm = -1)
EDIT(e_rate_too_big, o[0].on_time_ppm = ROUTE_PPM + 1)
EDIT(e_rates_zero, o[0].on_time_ppm = o[1].accept_ppm = 0)

static void test_bad_input(void)
{
	CU_ASSERT_EQUAL(bad_input_rc(e_none), 0);
	CU_ASSERT_EQUAL(bad_input_rc(e_max_quantity), 0);
	CU_ASSERT_EQUAL(bad_input_rc(e_max_cost), 0);
	CU_ASSERT_EQUAL(bad_input_rc(e_no_offers), 0);
	CU_ASSERT_EQUAL(bad_input_rc(e_penalty_max), 0);
	CU_ASSERT_EQUAL(bad_input_rc(e_floor_max), 0);
	CU_ASSERT_EQUAL(bad_input_rc(e_rates_zero), 0);
	CU_ASSERT_EQUAL(bad_input_rc(e_penalty_negative), -1);
	CU_ASSERT_EQUAL(bad_input_rc(e_penalty_too_big), -1);
	CU_ASSERT_EQUAL(bad_input_rc(e_floor_negative), -1);
	CU_ASSERT_EQUAL(bad_input_rc(e_floor_too_big), -1);
	CU_ASSERT_EQUAL(bad_input_rc(e_rate_negative), -1);
	CU_ASSERT_EQUAL(bad_input_rc(e_rate_too_big), -1);
	CU_ASSERT_EQUAL(bad_input_rc(e_too_many_lines), -1);
	CU_ASSERT_EQUAL(bad_input_rc(e_too_many_offers), -1);
	CU_ASSERT_EQUAL(bad_input_rc(e_quantity_zero), -1);
	CU_ASSERT_EQUAL(bad_input_rc(e_quantity_negative), -1);
	CU_ASSERT_EQUAL(bad_input_rc(e_quantity_too_big), -1);
	CU_ASSERT_EQUAL(bad_input_rc(e_line_sku_null), -1);
	CU_ASSERT_EQUAL(bad_input_rc(e_offer_sku_null), -1);
	CU_ASSERT_EQUAL(bad_input_rc(e_supplier_null), -1);
	CU_ASSERT_EQUAL(bad_input_rc(e_cost_negative), -1);
	CU_ASSERT_EQUAL(bad_input_rc(e_cost_too_big), -1);
	CU_ASSERT_EQUAL(bad_input_rc(e_shipping_negative), -1);
	CU_ASSERT_EQUAL(bad_input_rc(e_shipping_too_big), -1);
	CU_ASSERT_EQUAL(bad_input_rc(e_tolerance_negative), -1);
	CU_ASSERT_EQUAL(bad_input_rc(e_policy_unknown), -1);
	CU_ASSERT_EQUAL(bad_input_rc(e_country_null), 0); /* nothing to ship */
	CU_ASSERT_EQUAL(bad_input_rc(e_lines_null), -1);
	CU_ASSERT_EQUAL(bad_input_rc(e_offers_null), -1);
	CU_ASSERT_EQUAL(bad_input_rc(e_choices_null), -1);
	struct route_plan plan = { 0 };
	CU_ASSERT_EQUAL(route_plan_order(NULL, &plan), -1);
	struct route_request req = { .country = "US" };
	CU_ASSERT_EQUAL(route_plan_order(&req, NULL), -1);
}

/* The largest order at the largest costs: everything routes, nothing overflows. */
static void test_limits(void)
{
	static struct route_line lines[ROUTE_MAX_LINES];
	static struct route_offer offers[ROUTE_MAX_OFFERS];
	static struct route_choice ch[ROUTE_MAX_LINES];
	static char skus[ROUTE_MAX_LINES][16];
	static char codes[40][16];
	for (int s = 0; s < 40; s++)
		snprintf(codes[s], sizeof codes[s], "s%02d", s);
	size_t no = 0;
	for (int i = 0; i < ROUTE_MAX_LINES; i++) {
		snprintf(skus[i], sizeof skus[i], "K%03d", i);
		lines[i] = (struct route_line){ skus[i], ROUTE_MAX_QUANTITY };
		for (int k = 0; k < 8; k++, no++)
			offers[no] = (struct route_offer)OX(no + 1, skus[i], codes[(i + 7 * k) % 40], k, 1,
			                                    1, ROUTE_MAX_COST - k, ROUTE_MAX_COST - (i % 3),
			                                    ROUTE_MAX_QUANTITY, k, NULL);
	}
	offers[no++] = (struct route_offer)OF(999999, "none", "zz", 1, 1, 1);
	rng_state = 7;
	shuffle_offers(offers, no);
	for (int pol = ROUTE_CHEAPEST; pol <= ROUTE_BALANCED; pol++) {
		struct route_request req = { lines, ROUTE_MAX_LINES, offers, no, "US",
		                             (enum route_policy)pol, 2147483647, ROUTE_MAX_COST, 0, 0 };
		struct route_plan plan = { .choices = ch };
		CU_ASSERT_EQUAL_FATAL(route_plan_order(&req, &plan), 0);
		CU_ASSERT(plan_valid(&req, &plan));
		int routed = 0;
		for (int i = 0; i < ROUTE_MAX_LINES; i++)
			routed += ch[i].offer >= 0;
		CU_ASSERT_EQUAL(routed, ROUTE_MAX_LINES);
		CU_ASSERT(plan.total_cost > 0 && plan.total_cost >= plan.best_split_cost / 2);
		CU_ASSERT_EQUAL(plan.search_exact, 0);
		CU_ASSERT(plan.consolidated);
	}
}

/* ---- randomized comparison with a brute-force oracle ---- */

#define RN_LINES 4
#define RN_OFFERS 12            /* 4 skus, 0-3 offers each */
#define RN_SUPS 4

struct rorder {
	struct route_line lines[RN_LINES];
	struct route_offer offers[RN_OFFERS];
	struct route_request req;
};

struct oracle {
	long long id[RN_LINES];       /* offer_id, 0 unroutable */
	enum route_reason why[RN_LINES];
	long long total, base;
	int nsup, consolidated;
};

static const char *const sup_pool[] = { "acme", "bolt", "cargo", "delta", "echo", "fox" };
static const char *const sku_pool[] = { "A", "B", "C", "D" };
static const char *const ships_pool[] = { NULL, "*", "CA;GB;US", "US", "CA;US", "GB", "" };
static const char *const country_pool[] = { "US", "US", "GB", "CA" };
static const int tol_pool[] = { 0, 5, 10, 25, 100 };

/* Half the orders are "open": every offer active, available, shipping
 * and stocked, so that splits and consolidations are common; the others
 * exercise the constraints and reasons. */
static void random_order(struct rorder *r)
{
	const char *names[6];
	memcpy(names, sup_pool, sizeof names);
	for (unsigned i = 6; i > 1; i--) {
		unsigned j = rnd(i);
		const char *t = names[i - 1];
		names[i - 1] = names[j];
		names[j] = t;
	}
	int open = rnd(2) == 0;
	unsigned nsup = 1 + rnd(RN_SUPS), nsku = 1 + rnd(4), nl = 1 + rnd(RN_LINES);
	static const int acc_pool[] = { 500000, 800000, 950000, 1000000 };
	static const int ontime_pool[] = { 700000, 900000, 1000000 };
	int prio[RN_SUPS], active[RN_SUPS], acc[RN_SUPS], ontime[RN_SUPS];
	for (unsigned s = 0; s < nsup; s++) {
		prio[s] = (int)rnd(3);
		active[s] = open || rnd(100) < 95;
		acc[s] = acc_pool[rnd(4)];
		ontime[s] = ontime_pool[rnd(3)];
	}
	for (unsigned i = 0; i < nl; i++)
		r->lines[i] = (struct route_line){ sku_pool[rnd(nsku)], 1 + (int)rnd(3) };
	size_t no = 0;
	for (unsigned k = 0; k < nsku; k++)
		for (unsigned c = rnd(10) ? 1 + rnd(3) : 0; c > 0; c--, no++) {
			unsigned s = rnd(nsup);
			r->offers[no] = (struct route_offer)OX(0, sku_pool[k], names[s], prio[s], active[s],
			                                       open || rnd(100) < 90, rnd(4) * 100,
			                                       rnd(2) * 50, (int)rnd(9) + 2 * open,
			                                       1 + (int)rnd(3),
			                                       ships_pool[open ? rnd(3) : rnd(7)]);
			r->offers[no].accept_ppm = acc[s];
			r->offers[no].on_time_ppm = ontime[s];
		}
	/* Unique ids in an order unrelated to position or supplier. */
	long long ids[RN_OFFERS];
	for (size_t i = 0; i < no; i++)
		ids[i] = (long long)i + 1;
	for (size_t i = no; i > 1; i--) {
		size_t j = rnd((unsigned)i);
		long long t = ids[i - 1];
		ids[i - 1] = ids[j];
		ids[j] = t;
	}
	for (size_t i = 0; i < no; i++)
		r->offers[i].offer_id = ids[i] * 10;
	static const long long penalty_pool[] = { 0, 50, 200, 1000 };
	r->req = (struct route_request){ r->lines, nl, r->offers, no, country_pool[rnd(4)],
	                                 (enum route_policy)rnd(4), tol_pool[rnd(5)], penalty_pool[rnd(4)],
	                                 0, 0 };
	/* A health floor in a third of the orders, under any policy. */
	if (rnd(3) == 0) {
		r->req.min_accept_ppm = 800000;
		r->req.min_on_time_ppm = rnd(2) ? 900000 : 0;
	}
}

/* a[] before b[] when, at the first line where they differ, a's offer
 * comes first; no offer (-1) comes after any offer. */
static int o_assign_before(const struct route_request *req, const int *a, const int *b)
{
	for (size_t i = 0; i < req->nlines; i++) {
		if (a[i] == b[i])
			continue;
		if (a[i] < 0 || b[i] < 0)
			return b[i] < 0;
		return t_before(req, &req->offers[a[i]], &req->offers[b[i]], req->lines[i].quantity) < 0;
	}
	return 0;
}

/* Every assignment of options (or none) to lines; keeps the stock-respecting
 * one that comes first line by line. */
static void o_best_assignment(const struct route_request *req, int opts[][RN_OFFERS],
                              const int *nopts, int *best)
{
	size_t n = req->nlines;
	int idx[RN_LINES] = { 0 }, cur[RN_LINES];
	for (size_t i = 0; i < n; i++)
		best[i] = -1;
	for (;;) {
		for (size_t i = 0; i < n; i++)
			cur[i] = idx[i] < nopts[i] ? opts[i][idx[i]] : -1;
		int fits = 1;
		for (size_t o = 0; o < req->noffers && fits; o++) {
			long long sum = 0;
			for (size_t i = 0; i < n; i++)
				if (cur[i] == (int)o)
					sum += req->lines[i].quantity;
			fits = sum <= req->offers[o].stock;
		}
		if (fits && o_assign_before(req, cur, best))
			memcpy(best, cur, n * sizeof *cur);
		size_t i = 0;
		while (i < n && ++idx[i] > nopts[i])
			idx[i++] = 0;
		if (i == n)
			return;
	}
}

/* The policy's score of an assignment; *cost its cost and *held what the
 * tolerance holds (the expected cost under balanced, else the cost). */
static long long o_score(const struct route_request *req, const int *a, long long *cost, long long *held)
{
	long long score = 0;
	*cost = *held = 0;
	for (size_t i = 0; i < req->nlines; i++) {
		if (a[i] < 0)
			continue;
		const struct route_offer *o = &req->offers[a[i]];
		int q = req->lines[i].quantity;
		*cost += t_cost(o, q);
		*held += req->policy == ROUTE_BALANCED ? t_expected(o, req->penalty, q) : t_cost(o, q);
		score += req->policy == ROUTE_FASTEST ? o->lead_time_days
		       : req->policy == ROUTE_PRIORITY ? o->supplier_priority
		       : req->policy == ROUTE_BALANCED ? t_expected(o, req->penalty, q) : t_cost(o, q);
	}
	return score;
}

static int o_cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int o_distinct_codes(const struct route_request *req, const int *a)
{
	int n = 0;
	for (size_t i = 0; i < req->nlines; i++) {
		if (a[i] < 0)
			continue;
		size_t j = 0;
		while (j < i && (a[j] < 0 || strcmp(req->offers[a[j]].supplier_code,
		                                    req->offers[a[i]].supplier_code) != 0))
			j++;
		n += j == i;
	}
	return n;
}

static void o_solve(const struct route_request *req, struct oracle *out)
{
	size_t n = req->nlines;
	int opts[RN_LINES][RN_OFFERS], nopts[RN_LINES], base[RN_LINES], chosen[RN_LINES];
	const char *uni[RN_OFFERS];
	size_t nuni = 0;
	for (size_t i = 0; i < n; i++) {
		nopts[i] = 0;
		for (size_t o = 0; o < req->noffers; o++)
			if (t_eligible(req, o, i)) {
				opts[i][nopts[i]++] = (int)o;
				size_t u = 0;
				while (u < nuni && strcmp(uni[u], req->offers[o].supplier_code) != 0)
					u++;
				if (u == nuni)
					uni[nuni++] = req->offers[o].supplier_code;
			}
	}
	qsort(uni, nuni, sizeof uni[0], o_cmp_str);
	o_best_assignment(req, opts, nopts, base);
	memcpy(chosen, base, sizeof base);
	long long base_cost, base_held, best_cost = 0, best_score = 0;
	o_score(req, base, &base_cost, &base_held);
	int s = o_distinct_codes(req, base), found = 0;
	const char *best_codes[RN_SUPS];
	for (int k = 1; k < s && !found; k++) {
		for (unsigned set = 1; set < (1u << nuni); set++) {
			if (__builtin_popcount(set) != k)
				continue;
			const char *codes[RN_SUPS];
			int nc = 0;
			for (size_t u = 0; u < nuni; u++)
				if (set & (1u << u))
					codes[nc++] = uni[u];
			int sopts[RN_LINES][RN_OFFERS], snopts[RN_LINES], a[RN_LINES];
			for (size_t i = 0; i < n; i++) {
				snopts[i] = 0;
				/* a line B placed above the health floor stays above it */
				int floor = base[i] >= 0 && t_above_floor(req, &req->offers[base[i]]);
				for (int j = 0; base[i] >= 0 && j < nopts[i]; j++)
					for (int c = 0; c < nc; c++)
						if (strcmp(req->offers[opts[i][j]].supplier_code, codes[c]) == 0 &&
						    (!floor || t_above_floor(req, &req->offers[opts[i][j]])))
							sopts[i][snopts[i]++] = opts[i][j];
			}
			o_best_assignment(req, sopts, snopts, a);
			int filled = 1;
			for (size_t i = 0; i < n; i++)
				filled &= (base[i] < 0) == (a[i] < 0);
			long long cost, held, score = o_score(req, a, &cost, &held);
			if (!filled || held * 100 > base_held * (100 + req->split_tolerance_pct))
				continue;
			int better = !found || score < best_score ||
			             (score == best_score && cost < best_cost);
			if (found && score == best_score && cost == best_cost) {
				int c = 0;
				for (int j = 0; j < k && !c; j++)
					c = strcmp(codes[j], best_codes[j]);
				better = c < 0;
			}
			if (better) {
				found = 1;
				best_score = score;
				best_cost = cost;
				memcpy(best_codes, codes, sizeof codes);
				memcpy(chosen, a, sizeof a);
			}
		}
	}
	out->total = 0;
	for (size_t i = 0; i < n; i++) {
		out->id[i] = chosen[i] >= 0 ? req->offers[chosen[i]].offer_id : 0;
		out->why[i] = chosen[i] >= 0 ? ROUTE_ROUTED : t_reason(req, i);
		if (chosen[i] >= 0)
			out->total += t_cost(&req->offers[chosen[i]], req->lines[i].quantity);
	}
	out->base = base_cost;
	out->nsup = o_distinct_codes(req, chosen);
	out->consolidated = found;
}

static int r_compare(const struct route_request *req, const struct route_plan *plan,
                     const struct oracle *want)
{
	if (!plan_valid(req, plan) || plan->total_cost != want->total ||
	    plan->best_split_cost != want->base || plan->nsuppliers != want->nsup ||
	    plan->consolidated != want->consolidated || plan->search_exact != 1)
		return 0;
	for (size_t i = 0; i < req->nlines; i++) {
		const struct route_choice *c = &plan->choices[i];
		long long id = c->offer >= 0 ? req->offers[c->offer].offer_id : 0;
		if (id != want->id[i] || c->reason != want->why[i])
			return 0;
	}
	return 1;
}

static void r_dump(const struct rorder *r, const struct route_plan *plan, const struct oracle *w)
{
	const struct route_request *q = &r->req;
	fprintf(stderr, "\n  %s %s tol=%d penalty=%lld floors=%d/%d:", route_policy_name(q->policy),
	        q->country, q->split_tolerance_pct, q->penalty, q->min_accept_ppm, q->min_on_time_ppm);
	for (size_t i = 0; i < q->nlines; i++)
		fprintf(stderr, " %s x%d", q->lines[i].sku, q->lines[i].quantity);
	for (size_t o = 0; o < q->noffers; o++) {
		const struct route_offer *f = &q->offers[o];
		fprintf(stderr, "\n    id=%lld %s %s prio=%d act=%d avail=%d cost=%lld+%lld stock=%d "
		        "lead=%d to=%s acc=%d ontime=%d", f->offer_id, f->sku, f->supplier_code,
		        f->supplier_priority, f->supplier_active, f->available, f->unit_cost, f->shipping_cost,
		        f->stock, f->lead_time_days, f->ships_to ? f->ships_to : "(null)", f->accept_ppm,
		        f->on_time_ppm);
	}
	fprintf(stderr, "\n    got total=%lld base=%lld nsup=%d cons=%d exact=%d:", plan->total_cost,
	        plan->best_split_cost, plan->nsuppliers, plan->consolidated, plan->search_exact);
	for (size_t i = 0; i < q->nlines; i++)
		fprintf(stderr, " %lld/%s",
		        plan->choices[i].offer >= 0 ? q->offers[plan->choices[i].offer].offer_id : 0,
		        route_reason_name(plan->choices[i].reason));
	fprintf(stderr, "\n    want total=%lld base=%lld nsup=%d cons=%d:", w->total, w->base,
	        w->nsup, w->consolidated);
	for (size_t i = 0; i < q->nlines; i++)
		fprintf(stderr, " %lld/%s", w->id[i], route_reason_name(w->why[i]));
}

static void test_random_vs_oracle(void)
{
	enum { ORDERS = 20000 };
	int mismatches = 0, consolidated = 0, multi = 0, split = 0, why[4] = { 0 };
	int balanced_consolidated = 0, below_floor = 0;
	rng_state = 20240611;
	for (int n = 0; n < ORDERS; n++) {
		struct rorder r;
		random_order(&r);
		struct oracle want;
		o_solve(&r.req, &want);
		consolidated += want.consolidated;
		multi += want.consolidated && want.nsup > 1;
		split += want.nsup > 1;
		balanced_consolidated += want.consolidated && r.req.policy == ROUTE_BALANCED;
		for (size_t i = 0; i < r.req.nlines; i++) {
			why[want.why[i]]++;
			for (size_t o = 0; o < r.req.noffers && want.id[i]; o++)
				below_floor += r.offers[o].offer_id == want.id[i] && !t_above_floor(&r.req, &r.offers[o]);
		}
		for (int pass = 0; pass < 2; pass++) {
			struct route_choice ch[RN_LINES];
			struct route_plan plan = { .choices = ch };
			if (pass)
				shuffle_offers(r.offers, r.req.noffers);
			int ok = route_plan_order(&r.req, &plan) == 0 && r_compare(&r.req, &plan, &want);
			if (!ok && ++mismatches <= 3)
				r_dump(&r, &plan, &want);
		}
	}
	CU_ASSERT_EQUAL(mismatches, 0);
	/* The generator must keep reaching every rule, or the comparison proves little. */
	CU_ASSERT(consolidated > ORDERS / 50);
	CU_ASSERT(multi > ORDERS / 1000);
	CU_ASSERT(split > ORDERS / 20);
	CU_ASSERT(balanced_consolidated > ORDERS / 200);
	CU_ASSERT(below_floor > ORDERS / 100);
	for (int i = 0; i < 4; i++)
		CU_ASSERT(why[i] > ORDERS / 20);
}

/* Orders over 20 suppliers take the greedy path: the plan must still be
 * valid, keep B's routed lines, stay within tolerance and not depend on
 * the offers' order. */
static void test_random_greedy(void)
{
	enum { ORDERS = 1000, LINES = 8, PER_SKU = 8 };
	static const char *const codes[20] = { "g00", "g01", "g02", "g03", "g04", "g05", "g06",
	                                       "g07", "g08", "g09", "g10", "g11", "g12", "g13",
	                                       "g14", "g15", "g16", "g17", "g18", "g19" };
	static const char *const skus[LINES] = { "A", "B", "C", "D", "E", "F", "G", "H" };
	int greedy = 0, consolidated = 0;
	rng_state = 99;
	for (int n = 0; n < ORDERS; n++) {
		struct route_line lines[LINES];
		struct route_offer offers[LINES * PER_SKU];
		size_t nl = 2 + rnd(LINES - 1), no = 0;
		for (size_t i = 0; i < nl; i++)
			lines[i] = (struct route_line){ skus[rnd(LINES)], 1 + (int)rnd(3) };
		for (size_t k = 0; k < LINES; k++)
			for (unsigned c = 3 + rnd(PER_SKU - 2); c > 0; c--, no++)
				offers[no] = (struct route_offer)OX((long long)no + 1, skus[k], codes[rnd(20)],
				                                    (int)rnd(3), rnd(10) > 0, 1,
				                                    100 + rnd(20) * 5, 0, (int)rnd(8),
				                                    1 + (int)rnd(5), NULL);
		struct route_request req = { lines, nl, offers, no, "US", (enum route_policy)rnd(3),
		                             tol_pool[rnd(5)], 0, 0, 0 };
		struct route_choice ch[LINES], ch2[LINES];
		struct route_plan plan = { .choices = ch }, plan2 = { .choices = ch2 };
		CU_ASSERT_EQUAL_FATAL(route_plan_order(&req, &plan), 0);
		CU_ASSERT(plan_valid(&req, &plan));
		/* B by hand: line order, best eligible offer with stock left. */
		int bsel[LINES], bsup;
		long long bcost = 0;
		memset(taken, 0, sizeof taken);
		for (size_t i = 0; i < nl; i++) {
			bsel[i] = -1;
			for (size_t o = 0; o < no; o++)
				if (t_eligible(&req, o, i) && taken[o] + lines[i].quantity <= offers[o].stock &&
				    (bsel[i] < 0 || t_before(&req, &offers[o], &offers[bsel[i]], lines[i].quantity) < 0))
					bsel[i] = (int)o;
			if (bsel[i] >= 0) {
				taken[bsel[i]] += lines[i].quantity;
				bcost += t_cost(&offers[bsel[i]], lines[i].quantity);
			}
		}
		bsup = o_distinct_codes(&req, bsel);
		CU_ASSERT_EQUAL(plan.best_split_cost, bcost);
		for (size_t i = 0; i < nl; i++)
			CU_ASSERT_EQUAL(ch[i].offer >= 0, bsel[i] >= 0);
		if (plan.consolidated) {
			CU_ASSERT(plan.nsuppliers < bsup);
			CU_ASSERT(plan.total_cost * 100 <= bcost * (100 + req.split_tolerance_pct));
		} else {
			for (size_t i = 0; i < nl; i++)
				CU_ASSERT_EQUAL(ch[i].offer, bsel[i]);
		}
		greedy += !plan.search_exact;
		consolidated += plan.consolidated;
		shuffle_offers(offers, no);
		CU_ASSERT_EQUAL_FATAL(route_plan_order(&req, &plan2), 0);
		CU_ASSERT(plan2.total_cost == plan.total_cost && plan2.nsuppliers == plan.nsuppliers &&
		          plan2.search_exact == plan.search_exact);
		/* Offer ids are their original positions plus one. */
		for (size_t i = 0; i < nl; i++)
			CU_ASSERT_EQUAL(ch2[i].offer >= 0 ? offers[ch2[i].offer].offer_id - 1 : -1,
			                ch[i].offer);
	}
	CU_ASSERT(greedy > ORDERS / 4);
	CU_ASSERT(consolidated > ORDERS / 20);
}

static const struct harness_test tests[] = {
	{ "policies", test_policies },
	{ "constraints", test_constraints },
	{ "reasons", test_reasons },
	{ "tie_breaks", test_tie_breaks },
	{ "shared_stock", test_shared_stock },
	{ "split_rule", test_split_rule },
	{ "balanced", test_balanced },
	{ "expected_cost", test_expected_cost },
	{ "names", test_names },
	{ "offer_check", test_offer_check },
	{ "empty_order", test_empty_order },
	{ "bad_input", test_bad_input },
	{ "limits", test_limits },
	{ "random_vs_oracle", test_random_vs_oracle },
	{ "random_greedy", test_random_greedy },
	{ NULL, NULL },
};

int main(void)
{
	return harness_main("route", NULL, NULL, tests);
}
