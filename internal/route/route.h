/* route: the routing engine. Takes an order's lines, the destination
 * country, the store's policy and the candidate offers, and returns which
 * offer fills each line. Pure: no I/O, no clock, no allocation; scratch
 * lives in fixed arrays on the stack (about 140 KiB), sized by the limits
 * below. Nothing is kept between calls, so calls may run in parallel.
 *
 * Semantics (tests/unit/test_route.c holds a brute-force oracle of them):
 *
 * Eligible offer for a line: same sku (byte compare), supplier_active,
 * available, ships to the country, stock >= the line's quantity.
 *
 * Policy order of a line's offers: the policy key first (cheapest:
 * (unit_cost + shipping_cost) * quantity; fastest: lead_time_days;
 * priority: supplier_priority; balanced: the expected unit cost, then
 * lead_time_days; lower first), then cost, lead time, supplier_code
 * (strcmp), offer_id. Offers identical in all of these (duplicate offer
 * ids) fall back to their index.
 *
 * Expected unit cost (route_expected_unit_cost): unit_cost +
 * shipping_cost + risk * penalty / ROUTE_PPM, rounded half up, where risk
 * = ROUTE_PPM - accept_ppm * on_time_ppm / ROUTE_PPM (rounded half up) is
 * the chance, in parts per million, that the supplier rejects the request
 * or ships it late. A line's expected cost is that times its quantity.
 *
 * Health floor: an offer whose supplier's accept_ppm is below
 * min_accept_ppm or whose on_time_ppm is below min_on_time_ppm is below
 * the floor (under every policy; both floors 0 = none). Among a line's
 * eligible offers those above the floor come first, whatever the policy
 * says: one below it fills a line only when none above it can.
 *
 * Stock is shared within the order: lines take offers in line order, each
 * its first offer in policy order whose stock not yet taken by earlier
 * lines covers its quantity. An offer is never over-committed.
 *
 * Per-line plan B: that rule over all eligible offers (so those above the
 * floor first). A line it cannot
 * fill is unroutable, with reason no_offer (no offer of the sku is active
 * and available), else no_region (none of those ships to the country),
 * else out_of_stock (including stock taken by earlier lines of the order).
 *
 * Fewer splits: let S be the number of distinct suppliers (by code) in B.
 * For k = 1 .. S-1, each set T of k suppliers is tried: the lines B routed
 * take offers by the same rule restricted to T's offers and, for a line B
 * filled above the floor, to offers above the floor (lines B left
 * unroutable stay so, with B's reason). T is feasible when all of them are
 * filled and total cost * 100 <= B's total cost * (100 + tolerance); under
 * balanced both totals are expected costs. At the smallest k with a
 * feasible T, the best T wins by: lower score (cheapest: total cost;
 * fastest: sum of the lines' lead_time_days; priority: sum of the lines'
 * supplier_priority; balanced: total expected cost), then lower total
 * cost, then its supplier codes, sorted, compared in order by strcmp. That
 * plan replaces B (consolidated = 1). Only cost (expected cost under
 * balanced) is held to the tolerance: under fastest or priority a
 * consolidated plan may be slower or use less preferred suppliers than B.
 *
 * Search: when the candidate suppliers (those with an eligible offer for
 * some line) are at most ROUTE_EXACT_MAX_SUPPLIERS, every T with k <=
 * ROUTE_EXACT_MAX_K is tried. When they are more, or when that finds
 * nothing and S - 1 > ROUTE_EXACT_MAX_K, a greedy set is tried instead:
 * repeatedly add the supplier that can fill the most lines not yet
 * fillable (ties: lower sum of its best offers' costs, then supplier code)
 * until all lines B routed are fillable (by offers T may use), giving up
 * at S - 1 suppliers; the set is then checked as T above. search_exact
 * says which happened.
 *
 * Results do not depend on the order of the offers (given distinct
 * offer ids) beyond the indexes reported. */
#ifndef DROPSHIP_ROUTE_H
#define DROPSHIP_ROUTE_H
#include <stddef.h>

#define ROUTE_MAX_LINES 500
#define ROUTE_MAX_OFFERS 4096
#define ROUTE_MAX_QUANTITY 100000
#define ROUTE_MAX_COST 10000000000LL     /* per unit, 1,000,000.0000 currency units */
#define ROUTE_DEFAULT_SPLIT_TOLERANCE_PCT 10
#define ROUTE_EXACT_MAX_SUPPLIERS 12
#define ROUTE_EXACT_MAX_K 3
#define ROUTE_PPM 1000000                /* rates are parts per million: 1000000 = always */

enum route_policy {
	ROUTE_CHEAPEST,  /* "cheapest": lowest (unit + shipping) * quantity */
	ROUTE_FASTEST,   /* "fastest": lowest lead_time_days */
	ROUTE_PRIORITY,  /* "priority": lowest supplier_priority */
	ROUTE_BALANCED,  /* "balanced": lowest expected unit cost, then lead_time_days */
};

enum route_reason {
	ROUTE_ROUTED,        /* "routed" */
	ROUTE_NO_OFFER,      /* "no_offer": no active, available offer for the sku */
	ROUTE_NO_REGION,     /* "no_region": none of those ships to the country */
	ROUTE_OUT_OF_STOCK,  /* "out_of_stock": none of those has the stock left */
	/* Set by callers for lines the engine never sees: */
	ROUTE_NO_SKU,        /* "no_sku": the store sent the line without a SKU */
	ROUTE_NO_ADDRESS,    /* "no_address": nothing to ship to, and the line needs shipping */
};

struct route_offer {
	long long offer_id;          /* for tie-breaks and for the caller */
	const char *sku;
	const char *supplier_code;   /* identifies the supplier; tie-break */
	int supplier_priority;       /* lower = preferred */
	int supplier_active;         /* bool */
	int available;               /* bool */
	long long unit_cost;         /* 1/10000 currency unit (numeric(20,4)), 0..ROUTE_MAX_COST */
	long long shipping_cost;     /* per unit, same scale and range */
	int stock;
	int lead_time_days;
	const char *ships_to;        /* NULL or "*": everywhere; else "US;CA;GB"
	                              * (codes compared ignoring case and spaces) */
	int accept_ppm;              /* supplier's acceptance rate (scorecard), 0..ROUTE_PPM */
	int on_time_ppm;             /* its on-time ship rate of accepted requests, 0..ROUTE_PPM */
};

struct route_line {
	const char *sku;
	int quantity;                /* 1..ROUTE_MAX_QUANTITY */
};

struct route_request {
	const struct route_line *lines;
	size_t nlines;                      /* <= ROUTE_MAX_LINES */
	const struct route_offer *offers;   /* candidates for the order's skus, any order */
	size_t noffers;                     /* <= ROUTE_MAX_OFFERS */
	const char *country;                /* ISO 3166-1 alpha-2; NULL when nothing is
	                                     * shipped (no ships_to constraint) */
	enum route_policy policy;
	int split_tolerance_pct;            /* >= 0 */
	long long penalty;                  /* balanced: cost of a unit rejected or late, same
	                                     * scale as unit_cost, 0..ROUTE_MAX_COST */
	int min_accept_ppm;                 /* health floor, 0..ROUTE_PPM; 0 = none */
	int min_on_time_ppm;                /* likewise */
};

struct route_choice {
	int offer;                /* index into offers; -1 when unroutable */
	enum route_reason reason;
	long long cost;           /* (unit + shipping) * quantity; 0 when unroutable */
	long long expected;       /* expected unit cost * quantity; 0 when unroutable */
};

struct route_plan {
	struct route_choice *choices;  /* caller's array of nlines, filled in */
	int nsuppliers;                /* distinct suppliers used */
	long long total_cost;          /* of the routed lines */
	long long total_expected;      /* their expected cost */
	long long best_split_cost;     /* total cost of plan B, the tolerance's reference */
	int consolidated;              /* 1 when a fewer-supplier plan replaced B */
	int search_exact;              /* 1 when the plan has the fewest suppliers the rule
	                                * allows (exact search, or B has <= 1); 0 greedy */
};

/* Parses "cheapest", "fastest", "priority" or "balanced". Returns 0, or -1. */
int route_policy_parse(const char *s, enum route_policy *out);

/* Policy name as route_policy_parse takes it (static string). */
const char *route_policy_name(enum route_policy policy);

/* "routed", "no_offer", "no_region", "out_of_stock", "no_sku", "no_address"
 * (static string). */
const char *route_reason_name(enum route_reason reason);

/* Whether one offer, alone, could fill a line of quantity to country (its
 * sku is the caller's to match): ROUTE_ROUTED if so, else the first of
 * no_offer (supplier inactive or offer unavailable), no_region,
 * out_of_stock (stock < quantity) that applies. Stock taken by other
 * lines of an order is not known here. */
enum route_reason route_offer_check(const struct route_offer *offer, const char *country,
                                    int quantity);

/* The chance, in parts per million, that the offer's supplier rejects a
 * request or ships it late: ROUTE_PPM - accept_ppm * on_time_ppm / ROUTE_PPM.
 * Rates out of range are clamped to 0..ROUTE_PPM. */
int route_risk_ppm(const struct route_offer *offer);

/* Expected unit cost of an offer under a penalty (see above). Values out of
 * range are clamped to the limits route_plan_order checks. */
long long route_expected_unit_cost(const struct route_offer *offer, long long penalty);

/* 1 when the offer's supplier is at or above both floors, else 0. */
int route_above_floor(const struct route_offer *offer, int min_accept_ppm, int min_on_time_ppm);

/* Routes the order into plan->choices (caller-owned, nlines entries) and
 * the plan's totals. Returns 0, or -1 on bad input (a limit exceeded, NULL
 * where a value is needed, quantity, cost, penalty or a rate out of range,
 * unknown policy, negative tolerance); then the plan is left untouched. */
int route_plan_order(const struct route_request *req, struct route_plan *plan);

#endif
