/* route: the routing engine; route.h states the rules it implements.
 *
 * Offers are sorted once by (sku, eligible first, policy order), so a line
 * sees its sku's offers as one run of slots, best first, and every plan
 * (per-line, per supplier set, greedy) is the same first-fit walk over
 * those runs with a different set of allowed suppliers. */
#include <string.h>
#include <strings.h>

#include "route/route.h"

/* One offer, in (sku, eligible first, policy) order. */
struct route_slot {
	int offer;  /* index into req->offers */
	int sup;    /* supplier id, in code order; -1 when it can fill no line */
	int left;   /* stock not taken by the plan being built */
};

/* Where a line's offers are, found once. */
struct route_ln {
	int lo;         /* first slot of the sku */
	int good_hi;    /* end of its eligible slots above the health floor */
	int ok_hi;      /* end of its active, available, shipping slots */
	int use_hi;     /* end of the slots a supplier set may fill it from */
	int hi;         /* end of the sku's slots */
	int qty;
	int todo;       /* greedy: no chosen supplier can fill it yet */
	unsigned mask;  /* exact search: suppliers with an offer able to fill it */
};

/* One candidate plan. */
struct route_try {
	int slot[ROUTE_MAX_LINES];  /* per line; -1 unrouted */
	long long cost;
	long long expected;         /* expected cost (balanced's measure) */
	long long score;            /* policy total the supplier sets compete on */
};

struct route_work {
	const struct route_request *req;
	int nsup;                                  /* candidate suppliers */
	int gen;                                   /* current stamp for mark[] */
	struct route_slot slot[ROUTE_MAX_OFFERS];
	struct route_ln line[ROUTE_MAX_LINES];
	unsigned char ok[ROUTE_MAX_OFFERS];        /* by offer: 0 not open (inactive, unavailable,
	                                            * not shipping there), 1 open but below the
	                                            * health floor, 2 open and above it */
	unsigned char allowed[ROUTE_MAX_OFFERS];   /* by supplier id */
	int mark[ROUTE_MAX_OFFERS];                /* by supplier id: last stamp seen */
	union {                                    /* the sorts are done before greedy runs */
		struct {
			int v[ROUTE_MAX_OFFERS];
			int tmp[ROUTE_MAX_OFFERS];
		} sort;
		struct {
			int count[ROUTE_MAX_OFFERS];
			long long cost[ROUTE_MAX_OFFERS];
		} greedy;
	} u;
	struct route_try tries[3];
	struct route_try *base, *best, *trial;
};

typedef int (*route_cmp_fn)(const struct route_work *w, int a, int b);

int route_policy_parse(const char *s, enum route_policy *out)
{
	static const enum route_policy all[] = { ROUTE_CHEAPEST, ROUTE_FASTEST, ROUTE_PRIORITY,
	                                         ROUTE_BALANCED };
	if (!s)
		return -1;
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		if (strcmp(s, route_policy_name(all[i])) == 0) {
			*out = all[i];
			return 0;
		}
	return -1;
}

const char *route_policy_name(enum route_policy policy)
{
	switch (policy) {
	case ROUTE_CHEAPEST: return "cheapest";
	case ROUTE_FASTEST: return "fastest";
	case ROUTE_PRIORITY: return "priority";
	case ROUTE_BALANCED: return "balanced";
	}
	return "unknown";
}

const char *route_reason_name(enum route_reason reason)
{
	switch (reason) {
	case ROUTE_ROUTED: return "routed";
	case ROUTE_NO_OFFER: return "no_offer";
	case ROUTE_NO_REGION: return "no_region";
	case ROUTE_OUT_OF_STOCK: return "out_of_stock";
	case ROUTE_NO_SKU: return "no_sku";
	case ROUTE_NO_ADDRESS: return "no_address";
	}
	return "unknown";
}

static int route_cmp_ll(long long a, long long b)
{
	return (a > b) - (a < b);
}

static int route_is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* Whether a ships_to list names the country; NULL or a "*" entry: everywhere.
 * No country (nothing to ship) is no constraint. */
static int route_ships_to(const char *list, const char *country)
{
	if (!list || !country)
		return 1;
	size_t clen = strlen(country);
	for (const char *p = list;; p++) {
		while (route_is_space(*p))
			p++;
		const char *s = p;
		while (*p && *p != ';')
			p++;
		const char *e = p;
		while (e > s && route_is_space(e[-1]))
			e--;
		size_t n = (size_t)(e - s);
		if (n == 1 && *s == '*')
			return 1;
		if (n > 0 && n == clen && strncasecmp(s, country, n) == 0)
			return 1;
		if (!*p)
			return 0;
	}
}

/* Active, available and ships to the country: all but stock. */
static int route_offer_open(const struct route_offer *o, const char *country)
{
	return o->supplier_active && o->available && route_ships_to(o->ships_to, country);
}

enum route_reason route_offer_check(const struct route_offer *offer, const char *country,
                                    int quantity)
{
	if (!offer->supplier_active || !offer->available)
		return ROUTE_NO_OFFER;
	if (!route_ships_to(offer->ships_to, country))
		return ROUTE_NO_REGION;
	return offer->stock < quantity ? ROUTE_OUT_OF_STOCK : ROUTE_ROUTED;
}

static int route_clamp_ppm(int v)
{
	return v < 0 ? 0 : v > ROUTE_PPM ? ROUTE_PPM : v;
}

static long long route_clamp_cost(long long v)
{
	return v < 0 ? 0 : v > ROUTE_MAX_COST ? ROUTE_MAX_COST : v;
}

int route_risk_ppm(const struct route_offer *offer)
{
	long long ok = (long long)route_clamp_ppm(offer->accept_ppm) * route_clamp_ppm(offer->on_time_ppm);
	return ROUTE_PPM - (int)((ok + ROUTE_PPM / 2) / ROUTE_PPM);
}

long long route_expected_unit_cost(const struct route_offer *offer, long long penalty)
{
	long long risk = route_clamp_ppm(route_risk_ppm(offer));
	return route_clamp_cost(offer->unit_cost) + route_clamp_cost(offer->shipping_cost) +
	       (risk * route_clamp_cost(penalty) + ROUTE_PPM / 2) / ROUTE_PPM;
}

int route_above_floor(const struct route_offer *offer, int min_accept_ppm, int min_on_time_ppm)
{
	return offer->accept_ppm >= min_accept_ppm && offer->on_time_ppm >= min_on_time_ppm;
}

/* Policy order of two offers of one sku: the line's quantity multiplies
 * both costs alike, so per-unit cost orders "cheapest" and "balanced"
 * exactly. */
static int route_cmp_policy(const struct route_request *req, const struct route_offer *a,
                            const struct route_offer *b)
{
	int c = 0;
	if (req->policy == ROUTE_FASTEST)
		c = route_cmp_ll(a->lead_time_days, b->lead_time_days);
	else if (req->policy == ROUTE_PRIORITY)
		c = route_cmp_ll(a->supplier_priority, b->supplier_priority);
	else if (req->policy == ROUTE_BALANCED) {
		c = route_cmp_ll(route_expected_unit_cost(a, req->penalty),
		                 route_expected_unit_cost(b, req->penalty));
		if (!c)
			c = route_cmp_ll(a->lead_time_days, b->lead_time_days);
	}
	if (!c)
		c = route_cmp_ll(a->unit_cost + a->shipping_cost, b->unit_cost + b->shipping_cost);
	if (!c)
		c = route_cmp_ll(a->lead_time_days, b->lead_time_days);
	if (!c)
		c = strcmp(a->supplier_code, b->supplier_code);
	if (!c)
		c = route_cmp_ll(a->offer_id, b->offer_id);
	return c;
}

/* Offers by sku, open ones above the floor first, then those below it,
 * then the rest; then policy order, then index. */
static int route_cmp_offer(const struct route_work *w, int a, int b)
{
	const struct route_offer *oa = &w->req->offers[a], *ob = &w->req->offers[b];
	int c = strcmp(oa->sku, ob->sku);
	if (!c)
		c = (int)w->ok[b] - (int)w->ok[a];
	if (!c)
		c = route_cmp_policy(w->req, oa, ob);
	return c ? c : route_cmp_ll(a, b);
}

/* Slots by supplier code. */
static int route_cmp_code(const struct route_work *w, int a, int b)
{
	return strcmp(w->req->offers[w->slot[a].offer].supplier_code,
	              w->req->offers[w->slot[b].offer].supplier_code);
}

/* Stable bottom-up merge sort of v[0..n) through tmp, so no allocation. */
static void route_sort(const struct route_work *w, int *v, int *tmp, int n, route_cmp_fn cmp)
{
	int *src = v, *dst = tmp;
	for (int width = 1; width < n; width *= 2) {
		for (int lo = 0; lo < n; lo += 2 * width) {
			int mid = lo + width < n ? lo + width : n;
			int hi = lo + 2 * width < n ? lo + 2 * width : n;
			int a = lo, b = mid, k = lo;
			while (a < mid && b < hi)
				dst[k++] = cmp(w, src[b], src[a]) < 0 ? src[b++] : src[a++];
			while (a < mid)
				dst[k++] = src[a++];
			while (b < hi)
				dst[k++] = src[b++];
		}
		int *t = src;
		src = dst;
		dst = t;
	}
	if (src != v)
		memcpy(v, src, (size_t)n * sizeof *v);
}

static int route_valid_policy(enum route_policy policy)
{
	switch (policy) {
	case ROUTE_CHEAPEST:
	case ROUTE_FASTEST:
	case ROUTE_PRIORITY:
	case ROUTE_BALANCED:
		return 1;
	}
	return 0;
}

static int route_ppm_ok(int v)
{
	return v >= 0 && v <= ROUTE_PPM;
}

static int route_check(const struct route_request *req, const struct route_plan *plan)
{
	if (!req || !plan || !route_valid_policy(req->policy) ||
	    req->split_tolerance_pct < 0 || req->nlines > ROUTE_MAX_LINES ||
	    req->penalty < 0 || req->penalty > ROUTE_MAX_COST || !route_ppm_ok(req->min_accept_ppm) ||
	    !route_ppm_ok(req->min_on_time_ppm) ||
	    req->noffers > ROUTE_MAX_OFFERS || (req->nlines && (!req->lines || !plan->choices)) ||
	    (req->noffers && !req->offers))
		return -1;
	for (size_t i = 0; i < req->nlines; i++) {
		const struct route_line *l = &req->lines[i];
		if (!l->sku || l->quantity < 1 || l->quantity > ROUTE_MAX_QUANTITY)
			return -1;
	}
	for (size_t i = 0; i < req->noffers; i++) {
		const struct route_offer *o = &req->offers[i];
		if (!o->sku || !o->supplier_code || o->unit_cost < 0 || o->unit_cost > ROUTE_MAX_COST ||
		    o->shipping_cost < 0 || o->shipping_cost > ROUTE_MAX_COST || !route_ppm_ok(o->accept_ppm) ||
		    !route_ppm_ok(o->on_time_ppm))
			return -1;
	}
	return 0;
}

static const struct route_offer *route_slot_offer(const struct route_work *w, int p)
{
	return &w->req->offers[w->slot[p].offer];
}

/* Cost of line i filled from slot p; limits keep a plan's sum in range. */
static long long route_line_cost(const struct route_work *w, int p, int i)
{
	const struct route_offer *o = route_slot_offer(w, p);
	return (o->unit_cost + o->shipping_cost) * w->line[i].qty;
}

/* Expected cost of line i filled from slot p: at most 3 * ROUTE_MAX_COST
 * a unit, so a plan's sum stays in range too. */
static long long route_line_expected(const struct route_work *w, int p, int i)
{
	return route_expected_unit_cost(route_slot_offer(w, p), w->req->penalty) * w->line[i].qty;
}

static long long route_line_score(const struct route_work *w, int p, int i)
{
	const struct route_offer *o = route_slot_offer(w, p);
	switch (w->req->policy) {
	case ROUTE_FASTEST: return o->lead_time_days;
	case ROUTE_PRIORITY: return o->supplier_priority;
	case ROUTE_BALANCED: return route_line_expected(w, p, i);
	case ROUTE_CHEAPEST: break;
	}
	return route_line_cost(w, p, i);
}

/* Whether slot p could fill line i on its own stock. */
static int route_can_fill(const struct route_work *w, int p, int i)
{
	return w->slot[p].sup >= 0 && w->slot[p].left >= w->line[i].qty;
}

/* Builds into t the plan where lines, in line order, take their first slot
 * whose supplier is allowed and whose stock left covers them. With base,
 * only the lines base routed are placed, each from the slots a supplier
 * set may use, and each must be, else returns 0. The stock taken is given
 * back before returning. */
static int route_fill(struct route_work *w, const struct route_try *base, struct route_try *t)
{
	int n = (int)w->req->nlines, ok = 1, i;
	t->cost = t->expected = t->score = 0;
	for (i = 0; i < n; i++) {
		const struct route_ln *ln = &w->line[i];
		t->slot[i] = -1;
		if (base && base->slot[i] < 0)
			continue;
		int p = ln->lo, hi = base ? ln->use_hi : ln->ok_hi;
		while (p < hi && !(route_can_fill(w, p, i) && w->allowed[w->slot[p].sup]))
			p++;
		if (p == hi) {
			if (!base)
				continue;
			ok = 0;
			break;
		}
		w->slot[p].left -= ln->qty;
		t->slot[i] = p;
		t->cost += route_line_cost(w, p, i);
		t->expected += route_line_expected(w, p, i);
		t->score += route_line_score(w, p, i);
	}
	for (int j = 0; j < i; j++)
		if (t->slot[j] >= 0)
			w->slot[t->slot[j]].left += w->line[j].qty;
	return ok;
}

static int route_count_suppliers(struct route_work *w, const struct route_try *t)
{
	int n = 0;
	w->gen++;
	for (size_t i = 0; i < w->req->nlines; i++) {
		if (t->slot[i] < 0)
			continue;
		int s = w->slot[t->slot[i]].sup;
		if (w->mark[s] != w->gen) {
			w->mark[s] = w->gen;
			n++;
		}
	}
	return n;
}

/* Whether t's cost (expected cost under balanced) is within the tolerance of B's. */
static int route_within_tolerance(const struct route_work *w, const struct route_try *t)
{
	/* 128 bits: any tolerance up to INT_MAX times any plan total fits. */
	__extension__ typedef __int128 wide;
	int bal = w->req->policy == ROUTE_BALANCED;
	wide cost = bal ? t->expected : t->cost, ref = bal ? w->base->expected : w->base->cost;
	return cost * 100 <= ref * (100 + (wide)w->req->split_tolerance_pct);
}

/* Keeps w->trial as w->best when it is feasible and beats it. Ties go to
 * the incumbent: sets are tried in sorted-code order, so that is the tie-break. */
static int route_offer_trial(struct route_work *w, int feasible, int have)
{
	if (!feasible || !route_within_tolerance(w, w->trial))
		return have;
	if (have) {
		int c = route_cmp_ll(w->trial->score, w->best->score);
		if (!c)
			c = route_cmp_ll(w->trial->cost, w->best->cost);
		if (c >= 0)
			return have;
	}
	struct route_try *t = w->best;
	w->best = w->trial;
	w->trial = t;
	return 1;
}

/* Advances c[0..k) to the next k-subset of 0..n-1 in lexicographic order. */
static int route_next_subset(int *c, int k, int n)
{
	int i = k - 1;
	while (i >= 0 && c[i] == n - k + i)
		i--;
	if (i < 0)
		return 0;
	c[i]++;
	for (int j = i + 1; j < k; j++)
		c[j] = c[j - 1] + 1;
	return 1;
}

/* Whether every line of B has an offer among the suppliers in set. */
static int route_covers(const struct route_work *w, unsigned set)
{
	for (size_t i = 0; i < w->req->nlines; i++)
		if (w->base->slot[i] >= 0 && !(w->line[i].mask & set))
			return 0;
	return 1;
}

/* Tries every set of k suppliers, k = 1 .. kmax; 1 with the winner in w->best. */
static int route_search_exact(struct route_work *w, int kmax)
{
	for (size_t i = 0; i < w->req->nlines; i++) {
		w->line[i].mask = 0;
		for (int p = w->line[i].lo; p < w->line[i].use_hi; p++)
			if (route_can_fill(w, p, (int)i))
				w->line[i].mask |= 1u << w->slot[p].sup;
	}
	for (int k = 1; k <= kmax && k <= w->nsup; k++) {
		int c[ROUTE_EXACT_MAX_K], have = 0;
		for (int j = 0; j < k; j++)
			c[j] = j;
		do {
			unsigned set = 0;
			for (int j = 0; j < k; j++)
				set |= 1u << c[j];
			if (!route_covers(w, set))
				continue;
			for (int j = 0; j < k; j++)
				w->allowed[c[j]] = 1;
			int feasible = route_fill(w, w->base, w->trial);
			for (int j = 0; j < k; j++)
				w->allowed[c[j]] = 0;
			have = route_offer_trial(w, feasible, have);
		} while (route_next_subset(c, k, w->nsup));
		if (have)
			return 1;
	}
	return 0;
}

/* Adds to the supplier set the one that can fill the most lines still to
 * do (ties: lower cost of its best offers, then code); -1 when none can. */
static int route_greedy_pick(struct route_work *w)
{
	int *count = w->u.greedy.count;
	long long *cost = w->u.greedy.cost;
	for (int s = 0; s < w->nsup; s++) {
		count[s] = 0;
		cost[s] = 0;
	}
	for (size_t i = 0; i < w->req->nlines; i++) {
		if (!w->line[i].todo)
			continue;
		w->gen++;
		for (int p = w->line[i].lo; p < w->line[i].use_hi; p++) {
			int s = w->slot[p].sup;
			/* The first slot of a supplier in the run is its best offer. */
			if (route_can_fill(w, p, (int)i) && w->mark[s] != w->gen) {
				w->mark[s] = w->gen;
				count[s]++;
				cost[s] += route_line_cost(w, p, (int)i);
			}
		}
	}
	int best = -1;
	for (int s = 0; s < w->nsup; s++)
		if (count[s] > 0 && (best < 0 || count[s] > count[best] ||
		                     (count[s] == count[best] && cost[s] < cost[best])))
			best = s;
	return best;
}

/* Builds a supplier set greedily, at most smax large; 1 with its plan in
 * w->best when it fills every line of B within tolerance. */
static int route_search_greedy(struct route_work *w, int smax)
{
	int todo = 0;
	for (size_t i = 0; i < w->req->nlines; i++) {
		w->line[i].todo = w->base->slot[i] >= 0;
		todo += w->line[i].todo;
	}
	memset(w->allowed, 0, (size_t)w->nsup);
	for (int picked = 0; todo > 0 && picked < smax; picked++) {
		int s = route_greedy_pick(w);
		if (s < 0)
			return 0;
		w->allowed[s] = 1;
		for (size_t i = 0; i < w->req->nlines; i++) {
			if (!w->line[i].todo)
				continue;
			for (int p = w->line[i].lo; p < w->line[i].use_hi; p++)
				if (w->slot[p].sup == s && route_can_fill(w, p, (int)i)) {
					w->line[i].todo = 0;
					todo--;
					break;
				}
		}
	}
	if (todo > 0)
		return 0;
	return route_offer_trial(w, route_fill(w, w->base, w->trial), 0);
}

/* Sorts the offers into slots and finds each line's run of them. */
static void route_index(struct route_work *w)
{
	const struct route_request *req = w->req;
	int m = (int)req->noffers;
	for (int o = 0; o < m; o++) {
		const struct route_offer *of = &req->offers[o];
		w->ok[o] = route_offer_open(of, req->country)
		           ? (unsigned char)(1 + route_above_floor(of, req->min_accept_ppm, req->min_on_time_ppm))
		           : 0;
		w->u.sort.v[o] = o;
	}
	route_sort(w, w->u.sort.v, w->u.sort.tmp, m, route_cmp_offer);
	for (int p = 0; p < m; p++) {
		w->slot[p].offer = w->u.sort.v[p];
		w->slot[p].sup = -1;
		w->slot[p].left = req->offers[w->u.sort.v[p]].stock;
	}
	for (size_t i = 0; i < req->nlines; i++) {
		struct route_ln *ln = &w->line[i];
		const char *sku = req->lines[i].sku;
		int lo = 0, hi = m;
		while (lo < hi) {
			int mid = lo + (hi - lo) / 2;
			if (strcmp(route_slot_offer(w, mid)->sku, sku) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		ln->lo = ln->good_hi = ln->ok_hi = ln->hi = lo;
		ln->qty = req->lines[i].quantity;
		while (ln->hi < m && strcmp(route_slot_offer(w, ln->hi)->sku, sku) == 0)
			ln->hi++;
		while (ln->good_hi < ln->hi && w->ok[w->slot[ln->good_hi].offer] == 2)
			ln->good_hi++;
		ln->ok_hi = ln->good_hi;
		while (ln->ok_hi < ln->hi && w->ok[w->slot[ln->ok_hi].offer])
			ln->ok_hi++;
		ln->use_hi = ln->ok_hi;
	}
}

/* Numbers the suppliers that can fill some line, in code order. */
static void route_number_suppliers(struct route_work *w)
{
	int n = 0;
	for (size_t i = 0; i < w->req->nlines; i++)
		for (int p = w->line[i].lo; p < w->line[i].ok_hi; p++)
			if (w->slot[p].sup < 0 && w->slot[p].left >= w->line[i].qty) {
				w->slot[p].sup = 0;
				w->u.sort.v[n++] = p;
			}
	route_sort(w, w->u.sort.v, w->u.sort.tmp, n, route_cmp_code);
	w->nsup = 0;
	for (int j = 0; j < n; j++) {
		if (j > 0 && route_cmp_code(w, w->u.sort.v[j - 1], w->u.sort.v[j]) != 0)
			w->nsup++;
		w->slot[w->u.sort.v[j]].sup = w->nsup;
	}
	if (n > 0)
		w->nsup++;
	for (int s = 0; s < w->nsup; s++) {
		w->allowed[s] = 1;
		w->mark[s] = 0;
	}
	w->gen = 0;
}

static enum route_reason route_reason_of(const struct route_work *w, int i)
{
	const struct route_ln *ln = &w->line[i];
	if (ln->ok_hi > ln->lo)
		return ROUTE_OUT_OF_STOCK;
	for (int p = ln->lo; p < ln->hi; p++) {
		const struct route_offer *o = route_slot_offer(w, p);
		if (o->supplier_active && o->available)
			return ROUTE_NO_REGION;
	}
	return ROUTE_NO_OFFER;
}

int route_plan_order(const struct route_request *req, struct route_plan *plan)
{
	if (route_check(req, plan) < 0)
		return -1;
	struct route_work w;
	w.req = req;
	w.base = &w.tries[0];
	w.best = &w.tries[1];
	w.trial = &w.tries[2];
	route_index(&w);
	route_number_suppliers(&w);
	route_fill(&w, NULL, w.base);
	/* A line B filled above the floor stays above it in any supplier set. */
	for (size_t i = 0; i < req->nlines; i++)
		if (w.base->slot[i] >= 0 && w.base->slot[i] < w.line[i].good_hi)
			w.line[i].use_hi = w.line[i].good_hi;

	const struct route_try *chosen = w.base;
	int nbase = route_count_suppliers(&w, w.base), exact = 1, found = 0;
	if (nbase > 1) {
		int kmax = nbase - 1 < ROUTE_EXACT_MAX_K ? nbase - 1 : ROUTE_EXACT_MAX_K;
		memset(w.allowed, 0, (size_t)w.nsup);
		if (w.nsup <= ROUTE_EXACT_MAX_SUPPLIERS)
			found = route_search_exact(&w, kmax);
		if (!found && (w.nsup > ROUTE_EXACT_MAX_SUPPLIERS || nbase - 1 > ROUTE_EXACT_MAX_K)) {
			exact = 0;
			found = route_search_greedy(&w, nbase - 1);
		}
		if (found)
			chosen = w.best;
	}
	for (size_t i = 0; i < req->nlines; i++) {
		struct route_choice *c = &plan->choices[i];
		int p = chosen->slot[i];
		c->offer = p >= 0 ? w.slot[p].offer : -1;
		c->reason = p >= 0 ? ROUTE_ROUTED : route_reason_of(&w, (int)i);
		c->cost = p >= 0 ? route_line_cost(&w, p, (int)i) : 0;
		c->expected = p >= 0 ? route_line_expected(&w, p, (int)i) : 0;
	}
	plan->nsuppliers = found ? route_count_suppliers(&w, chosen) : nbase;
	plan->total_cost = chosen->cost;
	plan->total_expected = chosen->expected;
	plan->best_split_cost = w.base->cost;
	plan->consolidated = found;
	plan->search_exact = exact;
	return 0;
}
