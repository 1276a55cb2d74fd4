/* dropshipctl simulate: what-if replay of a routing policy over past
 * orders. Each order's lines are routed again by the engine (internal/route)
 * over the candidates their first routing decision recorded, under another
 * policy, tolerance, penalty or floor, and compared with what was decided
 * then. Read-only: one READ ONLY transaction, nothing written. Lines are
 * read through a server-side cursor a batch at a time (the next one asked
 * for while this one is replayed), so memory does not grow with history;
 * per store only its totals and the SKUs that move are kept. docs/cli.md
 * describes the command and its output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ctl.h"
#include "route/route.h"
#include "score/score.h"

#define SIM_FETCH "5000"           /* lines per FETCH */
#define SIM_PROGRESS_S 5           /* a progress line on stderr this often */
#define SIM_TOP_DEFAULT "10"
#define SIM_TOP_MAX 100

struct sim_opts {
	enum route_policy policy;
	const char *store;             /* NULL: every store */
	struct ctl_since since, until; /* .at NULL and .ago "" when not given */
	const char *tolerance;         /* NULL: each store's own */
	const char *penalty;           /* money; NULL: each store's own */
	const char *min_accept;        /* percent; NULL: each store's own */
	const char *min_on_time;
	int top;
	int csv, json;
};

/* One SKU's lines that change supplier, in a store. */
struct sim_sku {
	char *sku;                     /* owns */
	long long lines;
	long long cost_change;         /* after - before, 1/10000 units */
};

/* A side of the comparison: as decided then, or as replayed. */
struct sim_side {
	long long routed;              /* lines with a supplier */
	long long cost;                /* their landed cost, 1/10000 units */
	long long kept_ppm;            /* sum over them of acceptance * on-time rate, ppm */
	long long parcels;             /* distinct suppliers per order, summed */
};

struct sim_store {
	long long id;
	char code[72];
	char policy[16];               /* the store's policy now */
	int tolerance;
	long long penalty;             /* 1/10000 units */
	int min_accept_ppm, min_on_time_ppm;
	long long orders, lines, changed, skipped;
	struct sim_side before, after;
	struct sim_sku *skus;          /* open addressing, by sku; owns */
	size_t nskus, cap;
};

/* A supplier's rates as the scorecard has them now, for decisions made
 * before they recorded any. */
struct sim_rates {
	char *code;                    /* owns */
	int accept_ppm, on_time_ppm;
};

#define SIM_SKU_MAX 129             /* order_lines.sku: 1..128 bytes, and its NUL */

/* The order being gathered from the cursor's rows, which come ordered by
 * order and line. Its lines' skus are copies: an order may straddle two
 * fetches. */
struct sim_pending {
	long long store_id, order_id;  /* 0 when none */
	char country[3];               /* "" when the order ships nowhere */
	size_t n;                      /* lines gathered */
	int overflow;                  /* more lines than the engine takes */
	char (*skus)[SIM_SKU_MAX];     /* ROUTE_MAX_LINES */
	json_t **cands;                /* each line's candidates; owns */
};

/* The replay. Buffers are sized by the engine's limits, allocated once. */
struct sim {
	struct sim_opts o;
	struct sim_store *stores;      /* by id, ascending */
	size_t nstores;
	struct sim_rates *rates;
	size_t nrates;
	struct score_prior prior;      /* for suppliers the scorecard has no row of */
	struct route_line *lines;      /* ROUTE_MAX_LINES */
	long long *before;             /* per line: the offer decided then, 0 none */
	struct route_offer *offers;    /* ROUTE_MAX_OFFERS */
	struct route_choice *choices;
	struct sim_pending p;
	long long orders;
	time_t started, last_progress;
};

/* Decimal text with up to 4 places as 1/10000 units ("12.5" -> 125000);
 * also rates in percent as ppm ("63.3333" -> 633333). */
static long long sim_fixed4(const char *s)
{
	if (!s)
		return 0;
	long long whole = 0, frac = 0;
	int places = 0, neg = *s == '-';
	s += neg;
	while (*s >= '0' && *s <= '9' && whole < ROUTE_MAX_COST)
		whole = whole * 10 + (*s++ - '0');
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9' && places < 4; s++, places++)
			frac = frac * 10 + (*s - '0');
	for (; places < 4; places++)
		frac *= 10;
	long long v = whole * 10000 + frac;
	return neg ? -v : v;
}

/* 1/10000 units as decimal text with 4 places. */
static void sim_money(long long v, char *buf, size_t cap)
{
	const char *sign = v < 0 ? "-" : "";
	unsigned long long a = v < 0 ? (unsigned long long)-v : (unsigned long long)v;
	snprintf(buf, cap, "%s%llu.%04llu", sign, a / 10000, a % 10000);
}

/* A side's expected on-time rate: the mean over its routed lines of
 * acceptance times on-time rate, percent with 2 decimals. */
static void sim_on_time(const struct sim_side *s, char *buf, size_t cap)
{
	if (s->routed == 0)
		snprintf(buf, cap, "-");
	else
		snprintf(buf, cap, "%.2f", (double)s->kept_ppm / (double)s->routed / 10000.0);
}

static int sim_cmp_store(const void *a, const void *b)
{
	long long x = ((const struct sim_store *)a)->id, y = ((const struct sim_store *)b)->id;
	return (x > y) - (x < y);
}

static struct sim_store *sim_store_of(struct sim *s, long long id)
{
	struct sim_store key = { .id = id };
	return bsearch(&key, s->stores, s->nstores, sizeof key, sim_cmp_store);
}

static size_t sim_hash(const char *sku)
{
	size_t h = 5381;
	for (; *sku; sku++)
		h = h * 33 + (unsigned char)*sku;
	return h;
}

/* The entry of sku in st's table, added when new. */
static struct sim_sku *sim_sku_of(struct sim_store *st, const char *sku)
{
	if (2 * (st->nskus + 1) > st->cap) {
		size_t cap = st->cap ? 2 * st->cap : 256;
		struct sim_sku *v = calloc(cap, sizeof *v);
		if (!v)
			return NULL;
		for (size_t i = 0; i < st->cap; i++) {
			if (!st->skus[i].sku)
				continue;
			size_t j = sim_hash(st->skus[i].sku) & (cap - 1);
			while (v[j].sku)
				j = (j + 1) & (cap - 1);
			v[j] = st->skus[i];
		}
		free(st->skus);
		st->skus = v;
		st->cap = cap;
	}
	size_t j = sim_hash(sku) & (st->cap - 1);
	while (st->skus[j].sku && strcmp(st->skus[j].sku, sku) != 0)
		j = (j + 1) & (st->cap - 1);
	if (!st->skus[j].sku) {
		if (!(st->skus[j].sku = strdup(sku)))
			return NULL;
		st->nskus++;
	}
	return &st->skus[j];
}

static int sim_cmp_rates(const void *a, const void *b)
{
	return strcmp(((const struct sim_rates *)a)->code, ((const struct sim_rates *)b)->code);
}

/* The rates of a supplier the candidate recorded none for: the scorecard's
 * now (s->rates, by code), else the prior's. */
static void sim_rates_now(const struct sim *s, const char *code, struct route_offer *f)
{
	struct sim_rates key = { .code = (char *)code };
	const struct sim_rates *r = s->nrates ? bsearch(&key, s->rates, s->nrates, sizeof key, sim_cmp_rates)
	                                      : NULL;
	f->accept_ppm = r ? r->accept_ppm : s->prior.acceptance_ppm;
	f->on_time_ppm = r ? r->on_time_ppm : s->prior.on_time_ppm;
}

static int sim_clamp_ppm(long long v)
{
	return v < 0 ? 0 : v > ROUTE_PPM ? ROUTE_PPM : (int)v;
}

/* A recorded candidate of a line of sku as the engine's offer: its
 * landed cost as the unit cost, what made it ineligible then as the
 * same fact now (an inactive supplier, an unavailable offer, a region it
 * does not ship to; stock as it was). Returns 0, or -1 when it lacks a
 * supplier or an id. */
static int sim_offer(const struct sim *s, json_t *c, const char *sku, struct route_offer *f)
{
	const char *code = json_string_value(json_object_get(c, "supplier"));
	json_t *id = json_object_get(c, "offer_id");
	if (!code || !json_is_integer(id))
		return -1;
	const char *why = json_string_value(json_object_get(c, "why_not"));
	/* Ineligible for no reason given: unavailable then, so now too. */
	if (!why && json_is_false(json_object_get(c, "eligible")))
		why = "unavailable";
	long long cost = sim_fixed4(json_string_value(json_object_get(c, "unit_cost")));
	*f = (struct route_offer){
		.offer_id = json_integer_value(id), .sku = sku, .supplier_code = code,
		.supplier_priority = (int)json_integer_value(json_object_get(c, "priority")),
		.supplier_active = !why || strcmp(why, "supplier_inactive") != 0,
		.available = !why || strcmp(why, "unavailable") != 0,
		.unit_cost = cost < 0 ? 0 : cost > ROUTE_MAX_COST ? ROUTE_MAX_COST : cost,
		.stock = (int)json_integer_value(json_object_get(c, "stock")),
		.lead_time_days = (int)json_integer_value(json_object_get(c, "lead_time_days")),
		.ships_to = why && strcmp(why, "no_region") == 0 ? "" : NULL,
	};
	const char *acc = json_string_value(json_object_get(c, "acceptance_rate"));
	const char *ontime = json_string_value(json_object_get(c, "on_time_rate"));
	/* Percent with 4 decimals, so in 1/10000 units it is ppm. */
	if (acc && ontime) {
		f->accept_ppm = sim_clamp_ppm(sim_fixed4(acc));
		f->on_time_ppm = sim_clamp_ppm(sim_fixed4(ontime));
	} else {
		sim_rates_now(s, code, f);
	}
	return 0;
}

static long long sim_kept_ppm(const struct route_offer *f)
{
	return (long long)f->accept_ppm * f->on_time_ppm / ROUTE_PPM;
}

/* Distinct suppliers among the offers chosen (-1: none). */
static long long sim_parcels(const struct route_offer *offers, const int *chosen, size_t n)
{
	long long parcels = 0;
	for (size_t i = 0; i < n; i++) {
		if (chosen[i] < 0)
			continue;
		size_t j = 0;
		while (j < i && (chosen[j] < 0 || strcmp(offers[chosen[j]].supplier_code,
		                                         offers[chosen[i]].supplier_code) != 0))
			j++;
		parcels += j == i;
	}
	return parcels;
}

static void sim_side_add(struct sim_side *side, const struct route_offer *f, int qty)
{
	side->routed++;
	side->cost += f->unit_cost * qty;
	side->kept_ppm += sim_kept_ppm(f);
}

/* Index of the offer with id among the first n, or -1. */
static int sim_find(const struct route_offer *offers, size_t n, long long id)
{
	for (size_t k = 0; k < n; k++)
		if (offers[k].offer_id == id)
			return (int)k;
	return -1;
}

/* Replays the gathered order (s->p, with s->lines and s->before) for
 * store st. Returns 0, or -1 out of memory. */
static int sim_order(struct sim *s, struct sim_store *st)
{
	size_t nl = s->p.n, no = 0, i;
	const char *country = s->p.country[0] ? s->p.country : NULL;
	int before[ROUTE_MAX_LINES], after[ROUTE_MAX_LINES];
	if (s->p.overflow) {
		st->skipped++;
		return 0;
	}
	for (i = 0; i < nl; i++) {
		const char *sku = s->lines[i].sku;
		size_t k;
		json_t *c;
		json_array_foreach(s->p.cands[i], k, c) {
			json_t *id = json_object_get(c, "offer_id");
			if (!json_is_integer(id) || sim_find(s->offers, no, json_integer_value(id)) >= 0)
				continue;
			if (no == ROUTE_MAX_OFFERS) {
				st->skipped++;
				return 0;
			}
			if (sim_offer(s, c, sku, &s->offers[no]) == 0)
				no++;
		}
	}
	if (nl == 0)
		return 0;
	struct route_request req = {
		.lines = s->lines, .nlines = nl, .offers = s->offers, .noffers = no, .country = country,
		.policy = s->o.policy, .split_tolerance_pct = st->tolerance, .penalty = st->penalty,
		.min_accept_ppm = st->min_accept_ppm, .min_on_time_ppm = st->min_on_time_ppm,
	};
	struct route_plan plan = { .choices = s->choices };
	/* Quantities or costs out of the engine's range: not comparable. */
	if (route_plan_order(&req, &plan) < 0) {
		st->skipped++;
		return 0;
	}
	st->orders++;
	st->lines += (long long)nl;
	for (i = 0; i < nl; i++) {
		int q = s->lines[i].quantity;
		before[i] = s->before[i] ? sim_find(s->offers, no, s->before[i]) : -1;
		after[i] = s->choices[i].offer;
		const struct route_offer *b = before[i] >= 0 ? &s->offers[before[i]] : NULL;
		const struct route_offer *a = after[i] >= 0 ? &s->offers[after[i]] : NULL;
		if (b)
			sim_side_add(&st->before, b, q);
		if (a)
			sim_side_add(&st->after, a, q);
		if ((a == NULL) == (b == NULL) && (!a || strcmp(a->supplier_code, b->supplier_code) == 0))
			continue;
		st->changed++;
		struct sim_sku *e = sim_sku_of(st, s->lines[i].sku);
		if (!e)
			return -1;
		e->lines++;
		e->cost_change += (a ? a->unit_cost * q : 0) - (b ? b->unit_cost * q : 0);
	}
	st->before.parcels += sim_parcels(s->offers, before, nl);
	st->after.parcels += sim_parcels(s->offers, after, nl);
	return 0;
}

/* ---- reading ---- */

static int sim_parse(int argc, char **argv, struct sim_opts *o)
{
	const char *policy = NULL, *since = NULL, *until = NULL, *top = SIM_TOP_DEFAULT;
	memset(o, 0, sizeof *o);
	for (int i = 0; i < argc; i++) {
		int m = 0;
		if (strcmp(argv[i], "--csv") == 0)
			m = o->csv = 1;
		else if (strcmp(argv[i], "--json") == 0)
			m = o->json = 1;
		const struct { const char *name; const char **val; } opts[] = {
			{ "--policy", &policy }, { "--store", &o->store }, { "--since", &since }, { "--until", &until },
			{ "--split-tolerance", &o->tolerance }, { "--penalty", &o->penalty },
			{ "--min-acceptance-rate", &o->min_accept }, { "--min-on-time-rate", &o->min_on_time },
			{ "--top", &top },
		};
		for (size_t k = 0; m == 0 && k < sizeof opts / sizeof opts[0]; k++)
			m = ctl_opt(argc, argv, &i, opts[k].name, opts[k].val);
		if (m < 0)
			return CTL_USAGE;
		if (m == 0)
			return ctl_bad_arg("simulate", argv[i]);
	}
	if (!policy)
		return ctl_usage_error("simulate: missing --policy (cheapest, fastest, priority or balanced)");
	if (route_policy_parse(policy, &o->policy) < 0)
		return ctl_usage_error("--policy must be cheapest, fastest, priority or balanced (got '%s')", policy);
	if (o->csv && o->json)
		return ctl_usage_error("simulate: give --csv or --json, not both");
	if ((o->store && ctl_check_code("--store", o->store) != CTL_OK) ||
	    (since && ctl_check_since("--since", since, &o->since) != CTL_OK) ||
	    (until && ctl_check_since("--until", until, &o->until) != CTL_OK) ||
	    (o->tolerance && ctl_check_int("--split-tolerance", o->tolerance, 0, 1000) != CTL_OK) ||
	    (o->penalty && ctl_check_decimal("--penalty", o->penalty, 1000000, 4) != CTL_OK) ||
	    (o->min_accept && ctl_check_decimal("--min-acceptance-rate", o->min_accept, 100, 2) != CTL_OK) ||
	    (o->min_on_time && ctl_check_decimal("--min-on-time-rate", o->min_on_time, 100, 2) != CTL_OK) ||
	    ctl_check_int("--top", top, 0, SIM_TOP_MAX) != CTL_OK)
		return CTL_USAGE;
	o->top = (int)strtol(top, NULL, 10);
	return CTL_OK;
}

/* The stores compared, with their terms or the ones given instead. */
static int sim_load_stores(PGconn *conn, struct sim *s)
{
	const char *p[5] = { s->o.store, s->o.tolerance, s->o.penalty, s->o.min_accept, s->o.min_on_time };
	PGresult *res = PQexecParams(conn,
		"SELECT id, code, policy, coalesce($2::int, split_tolerance_pct),"
		" (coalesce($3::numeric, penalty) * 10000)::bigint,"
		" (coalesce($4::numeric, min_acceptance_rate) * 10000)::int,"
		" (coalesce($5::numeric, min_on_time_rate) * 10000)::int"
		" FROM stores WHERE $1::text IS NULL OR code = $1 ORDER BY id", 5, NULL, p, NULL, NULL, 0);
	int rc = CTL_OK;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = ctl_pg_fail(conn, res, "simulate");
	} else if (PQntuples(res) == 0 && s->o.store) {
		rc = ctl_fail("simulate: --store: no store '%s'", s->o.store);
	} else {
		s->nstores = (size_t)PQntuples(res);
		s->stores = calloc(s->nstores + 1, sizeof *s->stores);
		for (size_t i = 0; s->stores && i < s->nstores; i++) {
			struct sim_store *st = &s->stores[i];
			st->id = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
			snprintf(st->code, sizeof st->code, "%s", PQgetvalue(res, (int)i, 1));
			snprintf(st->policy, sizeof st->policy, "%s", PQgetvalue(res, (int)i, 2));
			st->tolerance = (int)strtol(PQgetvalue(res, (int)i, 3), NULL, 10);
			st->penalty = strtoll(PQgetvalue(res, (int)i, 4), NULL, 10);
			st->min_accept_ppm = (int)strtol(PQgetvalue(res, (int)i, 5), NULL, 10);
			st->min_on_time_ppm = (int)strtol(PQgetvalue(res, (int)i, 6), NULL, 10);
		}
		if (!s->stores)
			rc = ctl_fail("simulate: out of memory");
	}
	PQclear(res);
	return rc;
}

/* Today's scorecard, for candidates recorded before there was one. */
static int sim_load_rates(PGconn *conn, struct sim *s)
{
	PGresult *res = PQexec(conn, "SELECT s.code, sc.acceptance_ppm, sc.on_time_ppm"
	                             " FROM supplier_scores sc JOIN suppliers s ON s.id = sc.supplier_id"
	                             " ORDER BY s.code COLLATE \"C\"");
	int rc = CTL_OK;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = ctl_pg_fail(conn, res, "simulate");
	} else {
		s->nrates = (size_t)PQntuples(res);
		s->rates = calloc(s->nrates + 1, sizeof *s->rates);
		for (size_t i = 0; s->rates && i < s->nrates; i++) {
			s->rates[i].code = strdup(PQgetvalue(res, (int)i, 0));
			s->rates[i].accept_ppm = (int)strtol(PQgetvalue(res, (int)i, 1), NULL, 10);
			s->rates[i].on_time_ppm = (int)strtol(PQgetvalue(res, (int)i, 2), NULL, 10);
			if (!s->rates[i].code)
				s->nrates = i;
		}
		if (!s->rates)
			rc = ctl_fail("simulate: out of memory");
	}
	PQclear(res);
	return rc;
}

/* Each line of the stores' orders in the period with its first decision,
 * ordered by order and line so that an order's lines come together. */
static const char sim_cursor_sql[] =
	"DECLARE simulate_lines NO SCROLL CURSOR FOR"
	" SELECT l.store_id, l.order_id, o.ship_country, l.sku, l.quantity, d.offer_id, d.reason, d.candidates"
	" FROM orders o"
	" JOIN order_lines l ON l.store_id = o.store_id AND l.order_id = o.id"
	" JOIN routing_decisions d ON d.store_id = l.store_id AND d.order_id = l.order_id"
	"   AND d.line_no = l.line_no AND d.attempt = 1"
	" WHERE o.store_id = ANY ($1::bigint[])"
	"   AND ($2::timestamptz IS NULL OR o.created_at >= $2)"
	"   AND ($3::interval IS NULL OR o.created_at >= now() - $3)"
	"   AND ($4::timestamptz IS NULL OR o.created_at < $4)"
	"   AND ($5::interval IS NULL OR o.created_at < now() - $5)"
	" ORDER BY l.store_id, l.order_id, l.line_no";

/* The cursor's columns. */
enum sim_col { SIM_STORE_ID, SIM_ORDER_ID, SIM_COUNTRY, SIM_SKU, SIM_QUANTITY, SIM_OFFER_ID, SIM_REASON,
               SIM_CANDIDATES };

static void sim_progress(struct sim *s, int last)
{
	time_t now = time(NULL);
	if (!last && now - s->last_progress < SIM_PROGRESS_S)
		return;
	/* Only long runs report; a short one stays quiet. */
	if (last && s->last_progress == s->started)
		return;
	long long secs = now > s->started ? (long long)(now - s->started) : 1;
	fprintf(stderr, "simulate: %lld orders%s in %llds (%lld/s)\n", s->orders, last ? ", done," : "", secs,
	        s->orders / secs);
	s->last_progress = now;
}

/* Replays the order gathered so far, if any, and forgets it. */
static int sim_flush(struct sim *s)
{
	int rc = 0;
	if (s->p.order_id) {
		struct sim_store *st = sim_store_of(s, s->p.store_id);
		if (st)
			rc = sim_order(s, st);
		s->orders++;
	}
	for (size_t i = 0; i < s->p.n; i++)
		json_decref(s->p.cands[i]);
	s->p.n = 0;
	s->p.overflow = 0;
	s->p.order_id = 0;
	return rc;
}

/* Adds row r to the order it belongs to, replaying the one before first
 * when it is another. Returns 0, or -1 out of memory. */
static int sim_take(struct sim *s, const PGresult *res, int r)
{
	long long store = strtoll(PQgetvalue(res, r, SIM_STORE_ID), NULL, 10);
	long long order = strtoll(PQgetvalue(res, r, SIM_ORDER_ID), NULL, 10);
	if (order != s->p.order_id || store != s->p.store_id) {
		if (sim_flush(s) < 0)
			return -1;
		s->p.store_id = store;
		s->p.order_id = order;
		snprintf(s->p.country, sizeof s->p.country, "%s", PQgetvalue(res, r, SIM_COUNTRY));
	}
	const char *reason = PQgetvalue(res, r, SIM_REASON);
	/* Lines settled before routing never met the engine. */
	if (PQgetisnull(res, r, SIM_SKU) || strcmp(reason, "no_sku") == 0 || strcmp(reason, "no_address") == 0)
		return 0;
	if (s->p.n == ROUTE_MAX_LINES) {
		s->p.overflow = 1;
		return 0;
	}
	size_t i = s->p.n;
	json_t *cands = json_loads(PQgetvalue(res, r, SIM_CANDIDATES), 0, NULL);
	if (!json_is_array(cands)) {
		json_decref(cands);
		return 0;
	}
	snprintf(s->p.skus[i], SIM_SKU_MAX, "%s", PQgetvalue(res, r, SIM_SKU));
	s->lines[i] = (struct route_line){ s->p.skus[i], (int)strtol(PQgetvalue(res, r, SIM_QUANTITY), NULL, 10) };
	s->before[i] = strtoll(PQgetvalue(res, r, SIM_OFFER_ID), NULL, 10);
	s->p.cands[i] = cands;
	s->p.n++;
	return 0;
}

static PGresult *sim_fetched(PGconn *conn)
{
	PGresult *res = PQgetResult(conn), *extra;
	while ((extra = PQgetResult(conn)))
		PQclear(extra);
	return res;
}

/* Runs the cursor to its end through sim_take. The next batch is asked
 * for before this one is replayed, so the server reads while we route. */
static int sim_run(PGconn *conn, struct sim *s)
{
	size_t cap = 24 * (s->nstores + 1), n = 1;
	char *ids = malloc(cap);
	if (!ids)
		return ctl_fail("simulate: out of memory");
	ids[0] = '{';
	for (size_t i = 0; i < s->nstores; i++)
		n += (size_t)snprintf(ids + n, cap - n, "%s%lld", i ? "," : "", s->stores[i].id);
	snprintf(ids + n, cap - n, "}");
	const char *p[5] = { ids, s->o.since.at, s->o.since.ago[0] ? s->o.since.ago : NULL, s->o.until.at,
	                     s->o.until.ago[0] ? s->o.until.ago : NULL };
	PGresult *res = PQexecParams(conn, sim_cursor_sql, 5, NULL, p, NULL, NULL, 0);
	free(ids);
	int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? CTL_OK : ctl_pg_fail(conn, res, "simulate");
	PQclear(res);
	static const char fetch[] = "FETCH FORWARD " SIM_FETCH " FROM simulate_lines";
	s->started = s->last_progress = time(NULL);
	if (rc == CTL_OK && !PQsendQuery(conn, fetch))
		rc = ctl_pg_fail(conn, NULL, "simulate");
	while (rc == CTL_OK) {
		res = sim_fetched(conn);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			rc = ctl_pg_fail(conn, res, "simulate");
			PQclear(res);
			break;
		}
		int rows = PQntuples(res);
		if (rows > 0 && !PQsendQuery(conn, fetch))
			rc = ctl_pg_fail(conn, NULL, "simulate");
		for (int r = 0; rc == CTL_OK && r < rows; r++)
			if (sim_take(s, res, r) < 0)
				rc = ctl_fail("simulate: out of memory");
		PQclear(res);
		sim_progress(s, 0);
		if (rows == 0)
			break;
	}
	/* After a failure a fetch may still be on its way: drain it. */
	while ((res = PQgetResult(conn)))
		PQclear(res);
	if (rc == CTL_OK && sim_flush(s) < 0)
		rc = ctl_fail("simulate: out of memory");
	sim_progress(s, 1);
	return rc;
}

/* ---- output ---- */

static int sim_cmp_sku(const void *a, const void *b)
{
	const struct sim_sku *x = a, *y = b;
	if (x->lines != y->lines)
		return x->lines > y->lines ? -1 : 1;
	return strcmp(x->sku, y->sku);
}

/* The store's SKUs that move, most lines first, packed at the front. */
static size_t sim_top(struct sim_store *st, int top)
{
	size_t n = 0;
	for (size_t i = 0; i < st->cap; i++)
		if (st->skus[i].sku)
			st->skus[n++] = st->skus[i];
	for (size_t i = n; i < st->cap; i++)
		st->skus[i] = (struct sim_sku){ 0 };
	if (n > 1)
		qsort(st->skus, n, sizeof *st->skus, sim_cmp_sku);
	return n < (size_t)top ? n : (size_t)top;
}

/* Percent change from a to b, or "" when a is 0. */
static void sim_change(long long a, long long b, char *buf, size_t cap)
{
	if (a == 0)
		buf[0] = '\0';
	else
		snprintf(buf, cap, " (%+.2f %%)", 100.0 * (double)(b - a) / (double)a);
}

static void sim_print_store(const struct sim *s, struct sim_store *st)
{
	char cb[32], ca[32], pct[32], ob[16], oa[16], pen[32];
	sim_money(st->before.cost, cb, sizeof cb);
	sim_money(st->after.cost, ca, sizeof ca);
	sim_money(st->penalty, pen, sizeof pen);
	sim_change(st->before.cost, st->after.cost, pct, sizeof pct);
	sim_on_time(&st->before, ob, sizeof ob);
	sim_on_time(&st->after, oa, sizeof oa);
	printf("store %s (policy %s): as decided -> %s (split tolerance %d %%, penalty %s, floors: acceptance "
	       "%.2f %%, on time %.2f %%)\n", st->code, st->policy, route_policy_name(s->o.policy), st->tolerance,
	       pen, st->min_accept_ppm / 10000.0, st->min_on_time_ppm / 10000.0);
	printf("  %-26s %lld\n", "orders compared", st->orders);
	if (st->skipped)
		printf("  %-26s %lld (beyond the engine's limits)\n", "orders skipped", st->skipped);
	printf("  %-26s %lld (routed %lld -> %lld)\n", "lines compared", st->lines, st->before.routed,
	       st->after.routed);
	printf("  %-26s %lld", "lines changing supplier", st->changed);
	if (st->lines)
		printf(" (%.2f %%)", 100.0 * (double)st->changed / (double)st->lines);
	printf("\n  %-26s %s -> %s%s\n", "landed cost", cb, ca, pct);
	printf("  %-26s %s %% -> %s %%\n", "expected on-time rate", ob, oa);
	printf("  %-26s %lld -> %lld\n", "parcels", st->before.parcels, st->after.parcels);
	size_t n = sim_top(st, s->o.top);
	if (n == 0)
		return;
	printf("  top SKUs that move:\n");
	for (size_t i = 0; i < n; i++) {
		char change[32];
		sim_money(st->skus[i].cost_change, change, sizeof change);
		printf("    %-24s %6lld lines  cost %s%s\n", st->skus[i].sku, st->skus[i].lines,
		       st->skus[i].cost_change >= 0 ? "+" : "", change);
	}
}

/* A CSV field: quoted when it holds a comma, quote or line end. */
static void sim_csv_field(const char *v, int last)
{
	if (strpbrk(v, ",\"\r\n")) {
		putchar('"');
		for (; *v; v++) {
			if (*v == '"')
				putchar('"');
			putchar(*v);
		}
		putchar('"');
	} else {
		fputs(v, stdout);
	}
	fputs(last ? "\r\n" : ",", stdout);
}

/* The CSV columns: a store's figures, then its top SKUs as "SKU:lines;...". */
static const char *const sim_cols[] = {
	"store", "policy", "orders", "lines", "lines_changed", "routed_before", "routed_after",
	"landed_cost_before", "landed_cost_after", "on_time_rate_before", "on_time_rate_after",
	"parcels_before", "parcels_after", "top_skus",
};
#define SIM_NCOLS (sizeof sim_cols / sizeof sim_cols[0])
#define SIM_FIGURES (SIM_NCOLS - 1)
#define SIM_CELL 80

/* A store's figures as text, in sim_cols' order. */
static void sim_row(const struct sim *s, const struct sim_store *st, char cells[SIM_FIGURES][SIM_CELL])
{
	snprintf(cells[0], SIM_CELL, "%s", st->code);
	snprintf(cells[1], SIM_CELL, "%s", route_policy_name(s->o.policy));
	snprintf(cells[2], SIM_CELL, "%lld", st->orders);
	snprintf(cells[3], SIM_CELL, "%lld", st->lines);
	snprintf(cells[4], SIM_CELL, "%lld", st->changed);
	snprintf(cells[5], SIM_CELL, "%lld", st->before.routed);
	snprintf(cells[6], SIM_CELL, "%lld", st->after.routed);
	sim_money(st->before.cost, cells[7], SIM_CELL);
	sim_money(st->after.cost, cells[8], SIM_CELL);
	sim_on_time(&st->before, cells[9], SIM_CELL);
	sim_on_time(&st->after, cells[10], SIM_CELL);
	snprintf(cells[11], SIM_CELL, "%lld", st->before.parcels);
	snprintf(cells[12], SIM_CELL, "%lld", st->after.parcels);
}

static int sim_print_json(const struct sim *s)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < s->nstores; i++) {
		struct sim_store *st = &s->stores[i];
		char cells[SIM_FIGURES][SIM_CELL];
		sim_row(s, st, cells);
		json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:s, s:s, s:s?, s:s?, s:I, s:I}",
		                      "store", st->code, "policy", cells[1], "orders", (json_int_t)st->orders,
		                      "lines", (json_int_t)st->lines, "lines_changed", (json_int_t)st->changed,
		                      "routed_before", (json_int_t)st->before.routed,
		                      "routed_after", (json_int_t)st->after.routed, "landed_cost_before", cells[7],
		                      "landed_cost_after", cells[8],
		                      "on_time_rate_before", st->before.routed ? cells[9] : NULL,
		                      "on_time_rate_after", st->after.routed ? cells[10] : NULL,
		                      "parcels_before", (json_int_t)st->before.parcels,
		                      "parcels_after", (json_int_t)st->after.parcels);
		json_t *skus = json_array();
		size_t n = sim_top(st, s->o.top);
		for (size_t k = 0; k < n; k++) {
			char change[32];
			sim_money(st->skus[k].cost_change, change, sizeof change);
			json_array_append_new(skus, json_pack("{s:s, s:I, s:s}", "sku", st->skus[k].sku, "lines",
			                                      (json_int_t)st->skus[k].lines, "cost_change", change));
		}
		json_object_set_new(o, "top_skus", skus);
		json_object_set_new(o, "orders_skipped", json_integer(st->skipped));
		json_object_set_new(o, "store_policy", json_string(st->policy));
		json_array_append_new(arr, o);
	}
	int rc = json_dumpf(arr, stdout, JSON_INDENT(2)) == 0 ? CTL_OK : CTL_FAIL;
	putchar('\n');
	json_decref(arr);
	return rc;
}

static int sim_print(const struct sim *s)
{
	if (s->o.json)
		return sim_print_json(s);
	if (s->o.csv)
		for (size_t c = 0; c < SIM_NCOLS; c++)
			sim_csv_field(sim_cols[c], c + 1 == SIM_NCOLS);
	for (size_t i = 0; i < s->nstores; i++) {
		struct sim_store *st = &s->stores[i];
		if (!s->o.csv) {
			if (i)
				putchar('\n');
			sim_print_store(s, st);
			continue;
		}
		char cells[SIM_FIGURES][SIM_CELL], top[SIM_TOP_MAX * 140];
		sim_row(s, st, cells);
		size_t n = sim_top(st, s->o.top), used = 0;
		top[0] = '\0';
		for (size_t k = 0; k < n && used < sizeof top; k++)
			used += (size_t)snprintf(top + used, sizeof top - used, "%s%s:%lld", k ? ";" : "",
			                         st->skus[k].sku, st->skus[k].lines);
		for (size_t c = 0; c < SIM_FIGURES; c++)
			sim_csv_field(cells[c], 0);
		sim_csv_field(top, 1);
	}
	return CTL_OK;
}

static void sim_free(struct sim *s)
{
	for (size_t i = 0; s->stores && i < s->nstores; i++) {
		for (size_t k = 0; k < s->stores[i].cap; k++)
			free(s->stores[i].skus[k].sku);
		free(s->stores[i].skus);
	}
	for (size_t i = 0; s->rates && i < s->nrates; i++)
		free(s->rates[i].code);
	free(s->stores);
	free(s->rates);
	free(s->lines);
	free(s->before);
	free(s->offers);
	free(s->choices);
	for (size_t i = 0; s->p.cands && i < s->p.n; i++)
		json_decref(s->p.cands[i]);
	free(s->p.skus);
	free(s->p.cands);
}

int ctl_cmd_simulate(struct ctl *c, int argc, char **argv)
{
	struct sim s = { .prior = score_prior_default() };
	int rc = sim_parse(argc, argv, &s.o);
	if (rc != CTL_OK)
		return rc;
	PGconn *conn;
	if ((rc = ctl_connect(c, &conn)) != CTL_OK)
		return rc;
	s.prior = score_prior_make(c->cfg.score.prior_weight, c->cfg.score.prior_acceptance_pct,
	                           c->cfg.score.prior_on_time_pct);
	s.lines = calloc(ROUTE_MAX_LINES, sizeof *s.lines);
	s.before = calloc(ROUTE_MAX_LINES, sizeof *s.before);
	s.offers = calloc(ROUTE_MAX_OFFERS, sizeof *s.offers);
	s.choices = calloc(ROUTE_MAX_LINES, sizeof *s.choices);
	s.p.skus = calloc(ROUTE_MAX_LINES, sizeof *s.p.skus);
	s.p.cands = calloc(ROUTE_MAX_LINES, sizeof *s.p.cands);
	if (!s.lines || !s.before || !s.offers || !s.choices || !s.p.skus || !s.p.cands)
		rc = ctl_fail("simulate: out of memory");
	/* One snapshot, and nothing this command does can write. The cursor
	 * is read whole: plan it for that, not for its first rows. */
	if (rc == CTL_OK)
		rc = ctl_exec_ok(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "simulate");
	if (rc == CTL_OK)
		rc = ctl_exec_ok(conn, "SET LOCAL cursor_tuple_fraction = 1", "simulate");
	if (rc == CTL_OK)
		rc = sim_load_stores(conn, &s);
	if (rc == CTL_OK)
		rc = sim_load_rates(conn, &s);
	if (rc == CTL_OK)
		rc = sim_run(conn, &s);
	if (rc == CTL_OK)
		rc = ctl_exec_ok(conn, "COMMIT", "simulate");
	if (rc == CTL_OK)
		rc = sim_print(&s);
	if (rc == CTL_OK && fflush(stdout) != 0)
		rc = ctl_fail("simulate: cannot write the output");
	sim_free(&s);
	PQfinish(conn);
	return rc;
}
