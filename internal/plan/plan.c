#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "mem/mem.h"
#include "plan/plan.h"
#include "score/score.h"

/* The candidates statement's columns, in order; plan_decode_offer reads them. */
enum plan_cand_col {
	PLAN_CAND_OFFER_ID,
	PLAN_CAND_SKU,
	PLAN_CAND_SUPPLIER_CODE,
	PLAN_CAND_SUPPLIER_PRIORITY,
	PLAN_CAND_SUPPLIER_ACTIVE,
	PLAN_CAND_AVAILABLE,
	PLAN_CAND_UNIT_COST,        /* bigint, 1/10000 units */
	PLAN_CAND_SHIPPING_COST,    /* bigint, 1/10000 units */
	PLAN_CAND_STOCK,
	PLAN_CAND_LEAD_TIME_DAYS,
	PLAN_CAND_SHIPS_TO,         /* ';'-joined country codes; NULL = everywhere */
	PLAN_CAND_SUPPLIER_ID,
	PLAN_CAND_SUPPLIER_SKU,
	PLAN_CAND_ACCEPTANCE,       /* int ppm, smoothed; NULL: not counted yet */
	PLAN_CAND_ON_TIME,          /* int ppm, smoothed */
	PLAN_CAND_ANSWERED,         /* requests the rates were counted on */
	PLAN_CAND_NCOLS
};

/* The reservation statement's columns: one row per offer tried. */
enum plan_reserve_col {
	PLAN_RESERVE_OFFER_ID,
	PLAN_RESERVE_RESERVED,      /* the units asked for were taken */
	PLAN_RESERVE_STOCK,         /* stock now (after our update when it took) */
	PLAN_RESERVE_AVAILABLE,
	PLAN_RESERVE_NCOLS
};

const struct db_stmt_def plan_stmts[] = {
	/* Every offer of the given SKUs, except from excluded suppliers (those
	 * that already rejected the order being re-routed), with the
	 * supplier's scorecard. Costs in 1/10000 units, capped where the
	 * engine's arithmetic stops. */
	{ "plan_candidates",
	  "SELECT o.id, o.sku, s.code, s.priority, s.active, o.available,"
	  "   (LEAST(o.cost, 1000000) * 10000)::bigint, (LEAST(o.shipping_cost, 1000000) * 10000)::bigint,"
	  "   o.stock, o.lead_time_days, array_to_string(o.ships_to, ';'), s.id, o.supplier_sku,"
	  "   sc.acceptance_ppm, sc.on_time_ppm, sc.answered"
	  " FROM offers o JOIN suppliers s ON s.id = o.supplier_id"
	  "   LEFT JOIN supplier_scores sc ON sc.supplier_id = o.supplier_id"
	  " WHERE o.sku = ANY ($1::text[]) AND NOT (o.supplier_id = ANY ($2::bigint[]))"
	  " ORDER BY o.id LIMIT 4096" },
	/* Reserves by conditional update, never below zero, and reads the stock
	 * of every offer tried (ids distinct). Rows are locked in id order
	 * first so that concurrent reservations cannot deadlock. */
	{ "plan_reserve",
	  "WITH req AS (SELECT * FROM unnest($1::bigint[], $2::int[]) AS t(id, qty)),"
	  " locked AS MATERIALIZED (SELECT o.id, o.stock, o.available FROM offers o"
	  "   WHERE o.id IN (SELECT id FROM req) ORDER BY o.id FOR UPDATE),"
	  " upd AS (UPDATE offers o SET stock = o.stock - req.qty, updated_at = now()"
	  "   FROM req JOIN locked l ON l.id = req.id"
	  "   WHERE o.id = req.id AND l.available AND l.stock >= req.qty RETURNING o.id, o.stock, req.qty),"
	  /* the stock ledger, so a level "as of" an earlier time is applied net of these */
	  " mv AS (INSERT INTO offer_moves (offer_id, delta) SELECT id, -qty FROM upd)"
	  " SELECT l.id, upd.id IS NOT NULL, coalesce(upd.stock, l.stock), l.available"
	  " FROM locked l LEFT JOIN upd ON upd.id = l.id" },
	{ "plan_requests_insert",
	  "INSERT INTO fulfillment_requests (id, store_id, order_id, supplier_id)"
	  " SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[])" },
	/* Each request's message, in the transaction that made the request:
	 * nothing is sent that was not committed, nothing committed is forgotten. */
	{ "plan_outbox_insert",
	  "INSERT INTO outbox (kind, request_id, supplier_id, store_id, idempotency_key, payload)"
	  " SELECT 'fulfillment.requested', r, s, t, r::text, p::jsonb"
	  " FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::text[]) AS u(r, s, t, p)" },
	/* Decisions of new lines (their first attempt). */
	{ "plan_decisions_first",
	  "INSERT INTO routing_decisions (store_id, order_id, line_no, policy, supplier_id,"
	  "   offer_id, reason, candidates, search, consolidated)"
	  " SELECT s, o, l, p, su, f, r, c::jsonb, se, co"
	  " FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::text[], $5::bigint[], $6::bigint[],"
	  "   $7::text[], $8::text[], $9::text[], $10::boolean[]) AS t(s, o, l, p, su, f, r, c, se, co)" },
	/* Decisions of lines routed again, each its line's next attempt. */
	{ "plan_decisions_next",
	  "INSERT INTO routing_decisions (store_id, order_id, line_no, attempt, policy, supplier_id,"
	  "   offer_id, reason, candidates, search, consolidated)"
	  " SELECT u.s, u.o, u.n,"
	  "   (SELECT coalesce(max(d.attempt), 0) + 1 FROM routing_decisions d"
	  "     WHERE d.store_id = u.s AND d.order_id = u.o AND d.line_no = u.n),"
	  "   u.p, u.su, u.f, u.re, u.c::jsonb, u.se, u.co"
	  " FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::text[], $5::bigint[], $6::bigint[],"
	  "   $7::text[], $8::text[], $9::text[], $10::boolean[]) AS u(s, o, n, p, su, f, re, c, se, co)" },
	/* Lines routed again take their new supplier and request (or stay unroutable). */
	{ "plan_lines_reroute",
	  "UPDATE order_lines l SET status = u.st, reason = u.re, supplier_id = u.su, offer_id = u.f,"
	  "   reserved = u.rs, unit_cost = u.uc, request_id = u.rq"
	  " FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::text[], $5::text[], $6::bigint[],"
	  "   $7::bigint[], $8::int[], $9::numeric[], $10::uuid[]) AS u(s, o, n, st, re, su, f, rs, uc, rq)"
	  " WHERE l.store_id = u.s AND l.order_id = u.o AND l.line_no = u.n" },
	/* The orders' statuses, derived from their lines; written only when
	 * they change. */
	{ "plan_order_status",
	  "WITH k AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::boolean[]) AS t(s, o, stranded)),"
	  " s AS (SELECT k.s, k.o, o.status AS was, CASE"
	  "     WHEN o.status = 'cancelled' THEN 'cancelled'"
	  "     WHEN bool_and(l.status IN ('delivered', 'cancelled')) AND bool_or(l.status = 'delivered')"
	  "       THEN 'delivered'"
	  "     WHEN bool_and(l.status IN ('shipped', 'delivered', 'cancelled'))"
	  "       AND bool_or(l.status IN ('shipped', 'delivered')) THEN 'shipped'"
	  "     WHEN bool_or(l.status IN ('shipped', 'delivered')) THEN 'partially_shipped'"
	  /* a line without a supplier keeps an order that needed attention so */
	  "     WHEN bool_or(l.status = 'unroutable') AND (k.stranded OR o.status = 'needs_attention'"
	  "       OR NOT bool_or(l.status = 'routed')) THEN 'needs_attention'"
	  "     WHEN bool_or(l.status = 'unroutable') THEN o.status"
	  /* every line has a supplier again (waiting lines routed) */
	  "     WHEN o.status IN ('needs_attention', 'partially_routed') THEN 'routed'"
	  "     ELSE o.status END AS status"
	  "   FROM k JOIN orders o ON o.store_id = k.s AND o.id = k.o"
	  "     JOIN order_lines l ON l.store_id = o.store_id AND l.order_id = o.id"
	  "   GROUP BY k.s, k.o, k.stranded, o.status),"
	  " w AS (UPDATE orders o SET status = s.status, updated_at = now() FROM s"
	  "   WHERE o.store_id = s.s AND o.id = s.o AND s.status <> s.was)"
	  " SELECT s, o, status FROM s" },
	{ NULL, NULL },
};

static long long plan_ll(const char *text)
{
	return strtoll(text, NULL, 10);
}

/* "{1,2,3}" from n integers (malloc'd). */
static char *plan_int_array(const long long *v, size_t n)
{
	size_t cap = n * 21 + 3;
	char *out = mem_alloc(cap), *w = out;
	*w++ = '{';
	for (size_t i = 0; i < n; i++)
		w += snprintf(w, cap - (size_t)(w - out), i ? ",%lld" : "%lld", v[i]);
	*w++ = '}';
	*w = '\0';
	return out;
}

/* 1/10000 units as decimal text. */
static void plan_money(long long v, char *buf, size_t cap)
{
	snprintf(buf, cap, "%lld.%04lld", v / 10000, v % 10000);
}

int plan_add_candidates(struct db_batch *b, const char *const *skus, size_t n,
                        const long long *exclude, size_t nexclude)
{
	struct db_columns sku;
	db_columns_init(&sku, 1);
	for (size_t i = 0; i < n; i++)
		db_columns_add(&sku, &skus[i]);
	char *ex_text = plan_int_array(exclude, exclude ? nexclude : 0);
	const char *v[2] = { sku.nrows ? sku.col[0].buf : "{}", ex_text };
	int i = db_batch_add(b, "plan_candidates", NULL, 2, v);
	db_columns_free(&sku);
	free(ex_text);
	return i;
}

/* ---- the pool ---- */

/* Row r of a candidates result into pool entry r. */
static void plan_decode_offer(const PGresult *res, int r, struct plan_pool *pool)
{
	struct route_offer *f = &pool->offers[r];
	f->offer_id = plan_ll(PQgetvalue(res, r, PLAN_CAND_OFFER_ID));
	f->sku = PQgetvalue(res, r, PLAN_CAND_SKU);
	f->supplier_code = PQgetvalue(res, r, PLAN_CAND_SUPPLIER_CODE);
	f->supplier_priority = (int)plan_ll(PQgetvalue(res, r, PLAN_CAND_SUPPLIER_PRIORITY));
	f->supplier_active = PQgetvalue(res, r, PLAN_CAND_SUPPLIER_ACTIVE)[0] == 't';
	f->available = PQgetvalue(res, r, PLAN_CAND_AVAILABLE)[0] == 't';
	f->unit_cost = plan_ll(PQgetvalue(res, r, PLAN_CAND_UNIT_COST));
	f->shipping_cost = plan_ll(PQgetvalue(res, r, PLAN_CAND_SHIPPING_COST));
	f->stock = (int)plan_ll(PQgetvalue(res, r, PLAN_CAND_STOCK));
	f->lead_time_days = (int)plan_ll(PQgetvalue(res, r, PLAN_CAND_LEAD_TIME_DAYS));
	f->ships_to = PQgetisnull(res, r, PLAN_CAND_SHIPS_TO) ? NULL : PQgetvalue(res, r, PLAN_CAND_SHIPS_TO);
	pool->supplier_ids[r] = plan_ll(PQgetvalue(res, r, PLAN_CAND_SUPPLIER_ID));
	pool->supplier_skus[r] = PQgetvalue(res, r, PLAN_CAND_SUPPLIER_SKU);
	/* A supplier dropshipd has not counted yet (added since the last
	 * refresh) stands at the default prior's means, as one without history. */
	if (PQgetisnull(res, r, PLAN_CAND_ACCEPTANCE)) {
		struct score_prior prior = score_prior_default();
		f->accept_ppm = prior.acceptance_ppm;
		f->on_time_ppm = prior.on_time_ppm;
		pool->answered[r] = -1;
	} else {
		f->accept_ppm = (int)plan_ll(PQgetvalue(res, r, PLAN_CAND_ACCEPTANCE));
		f->on_time_ppm = (int)plan_ll(PQgetvalue(res, r, PLAN_CAND_ON_TIME));
		pool->answered[r] = (int)plan_ll(PQgetvalue(res, r, PLAN_CAND_ANSWERED));
	}
}

int plan_pool_init(struct plan_pool *pool, const PGresult *candidates)
{
	memset(pool, 0, sizeof *pool);
	if (PQnfields(candidates) != PLAN_CAND_NCOLS)
		return -1;
	size_t n = (size_t)PQntuples(candidates);
	pool->offers = mem_calloc(n, sizeof *pool->offers);
	pool->supplier_ids = mem_calloc(n, sizeof *pool->supplier_ids);
	pool->supplier_skus = mem_calloc(n, sizeof *pool->supplier_skus);
	pool->answered = mem_calloc(n, sizeof *pool->answered);
	pool->planned = mem_calloc(n, sizeof *pool->planned);
	for (size_t r = 0; r < n; r++)
		plan_decode_offer(candidates, (int)r, pool);
	pool->n = n;
	return 0;
}

void plan_pool_free(struct plan_pool *pool)
{
	free(pool->offers);
	free(pool->supplier_ids);
	free(pool->supplier_skus);
	free(pool->answered);
	free(pool->planned);
	memset(pool, 0, sizeof *pool);
}

static long plan_pool_find(const struct plan_pool *pool, long long offer_id)
{
	for (size_t k = 0; k < pool->n; k++)
		if (pool->offers[k].offer_id == offer_id)
			return (long)k;
	return -1;
}

int plan_pool_add_reserve(struct plan_pool *pool, struct db_batch *b)
{
	struct db_columns c;
	db_columns_init(&c, 2);
	for (size_t k = 0; k < pool->n; k++) {
		if (pool->planned[k] <= 0)
			continue;
		char id[24], qty[16];
		snprintf(id, sizeof id, "%lld", pool->offers[k].offer_id);
		snprintf(qty, sizeof qty, "%d", pool->planned[k]);
		const char *row[2] = { id, qty };
		db_columns_add(&c, row);
	}
	int i = c.nrows ? db_batch_add_columns(b, "plan_reserve", &c) : -1;
	db_columns_free(&c);
	return i;
}

/* Marks done p's pending lines that were planned on pool offer k. */
static void plan_reserved(struct plan *p, size_t k)
{
	for (size_t i = 0; i < p->nlines; i++) {
		struct plan_line *l = &p->lines[i];
		if (!l->done && l->offer >= 0 && p->pool_index[l->offer] == k)
			l->done = 1;
	}
}

/* After a round: lines still pending are routed again (returns 1), or
 * given up as out_of_stock past PLAN_MAX_ROUNDS (returns 0). */
static int plan_next_round(struct plan *p)
{
	int pending = 0;
	for (size_t i = 0; i < p->nlines; i++)
		pending += !p->lines[i].done;
	if (!pending)
		return 0;
	if (++p->round < PLAN_MAX_ROUNDS)
		return 1;
	for (size_t i = 0; i < p->nlines; i++)
		if (!p->lines[i].done)
			plan_settle(p, i, ROUTE_OUT_OF_STOCK);
	return 0;
}

int plan_pool_take_reserve(struct plan_pool *pool, struct plan *const *plans, size_t n,
                           const PGresult *res)
{
	if (!res || PQnfields(res) != PLAN_RESERVE_NCOLS)
		return -1;
	for (int r = 0; r < PQntuples(res); r++) {
		long k = plan_pool_find(pool, plan_ll(PQgetvalue(res, r, PLAN_RESERVE_OFFER_ID)));
		if (k < 0)
			continue;
		/* Fresh stock: ours already net of what this transaction holds. */
		pool->offers[k].stock = (int)plan_ll(PQgetvalue(res, r, PLAN_RESERVE_STOCK));
		pool->offers[k].available = PQgetvalue(res, r, PLAN_RESERVE_AVAILABLE)[0] == 't';
		if (PQgetvalue(res, r, PLAN_RESERVE_RESERVED)[0] == 't')
			for (size_t j = 0; j < n; j++)
				plan_reserved(plans[j], (size_t)k);
	}
	memset(pool->planned, 0, pool->n * sizeof *pool->planned);
	/* A concurrent transaction took stock we planned on: those lines are
	 * routed again among what is left, in the same order as before. */
	int more = 0;
	for (size_t j = 0; j < n; j++) {
		if (!plan_next_round(plans[j]))
			continue;
		if (plan_route(plans[j]) < 0)
			return -1;
		more = 1;
	}
	for (size_t k = 0; k < pool->n && more; k++)
		if (pool->planned[k] > 0)
			return 1;
	return 0;
}

/* ---- one order's plan ---- */

static long long plan_clamp(const char *v, long long max)
{
	long long n = v ? plan_ll(v) : 0;
	return n < 0 ? 0 : n > max ? max : n;
}

struct plan_terms plan_terms_parse(const char *penalty, const char *min_accept, const char *min_on_time)
{
	return (struct plan_terms){
		.penalty = plan_clamp(penalty, ROUTE_MAX_COST),
		.min_accept_ppm = (int)plan_clamp(min_accept, ROUTE_PPM),
		.min_on_time_ppm = (int)plan_clamp(min_on_time, ROUTE_PPM),
	};
}

void plan_init(struct plan *p, struct plan_pool *pool, size_t nlines, const char *country,
               enum route_policy policy, int tolerance_pct)
{
	memset(p, 0, sizeof *p);
	p->pool = pool;
	p->lines = mem_calloc(nlines, sizeof *p->lines);
	p->nlines = nlines;
	for (size_t i = 0; i < nlines; i++) {
		p->lines[i].offer = -1;
		p->lines[i].line_no = (int)i + 1;
	}
	p->country = country;
	p->policy = policy;
	p->tolerance_pct = tolerance_pct;
}

void plan_free(struct plan *p)
{
	free(p->offers);
	free(p->pool_index);
	free(p->lines);
	memset(p, 0, sizeof *p);
}

void plan_settle(struct plan *p, size_t i, enum route_reason reason)
{
	p->lines[i].offer = -1;
	p->lines[i].reason = reason;
	p->lines[i].done = 1;
}

/* The pool's offers of the order's SKUs, except from excluded suppliers,
 * become the plan's. */
static void plan_take_offers(struct plan *p)
{
	const struct plan_pool *pool = p->pool;
	p->offers = mem_calloc(pool->n, sizeof *p->offers);
	p->pool_index = mem_calloc(pool->n, sizeof *p->pool_index);
	for (size_t k = 0; k < pool->n; k++) {
		int mine = 0;
		for (size_t i = 0; i < p->nlines && !mine; i++)
			mine = p->lines[i].sku && strcmp(p->lines[i].sku, pool->offers[k].sku) == 0;
		for (size_t e = 0; e < p->nexclude && mine; e++)
			mine = pool->supplier_ids[k] != p->exclude[e];
		if (mine) {
			p->pool_index[p->noffers] = k;
			p->offers[p->noffers++] = pool->offers[k];
		}
	}
}

int plan_route(struct plan *p)
{
	if (!p->routed_once) {
		plan_take_offers(p);
		p->routed_once = 1;
	}
	/* What the orders routed before this one in this round left. */
	for (size_t k = 0; k < p->noffers; k++) {
		size_t at = p->pool_index[k];
		p->offers[k].stock = p->pool->offers[at].stock - p->pool->planned[at];
		p->offers[k].available = p->pool->offers[at].available;
	}
	size_t n = 0;
	struct route_line *rl = mem_calloc(p->nlines, sizeof *rl);
	size_t *map = mem_calloc(p->nlines, sizeof *map);
	struct route_choice *ch = mem_calloc(p->nlines, sizeof *ch);
	int rc = -1;
	for (size_t i = 0; i < p->nlines; i++)
		if (!p->lines[i].done) {
			rl[n] = (struct route_line){ p->lines[i].sku, p->lines[i].quantity };
			map[n++] = i;
		}
	if (n == 0) { /* every line settled before routing (no_sku, no_address) */
		if (p->round == 0)
			p->search_exact = 1; /* no choice was made, so none was approximated */
		rc = 0;
		goto cleanup;
	}
	struct route_request req = {
		.lines = rl, .nlines = n, .offers = p->offers, .noffers = p->noffers,
		.country = p->country, .policy = p->policy, .split_tolerance_pct = p->tolerance_pct,
		.penalty = p->terms.penalty, .min_accept_ppm = p->terms.min_accept_ppm,
		.min_on_time_ppm = p->terms.min_on_time_ppm,
	};
	struct route_plan plan = { .choices = ch };
	if (route_plan_order(&req, &plan) < 0)
		goto cleanup;
	if (p->round == 0) {
		p->search_exact = plan.search_exact;
		p->consolidated = plan.consolidated;
	}
	for (size_t k = 0; k < n; k++) {
		struct plan_line *l = &p->lines[map[k]];
		l->offer = ch[k].offer;
		l->reason = ch[k].reason;
		l->done = ch[k].offer < 0; /* unroutable needs no reservation */
		if (l->offer >= 0)
			p->pool->planned[p->pool_index[l->offer]] += l->quantity;
	}
	rc = 0;
cleanup:
	free(rl);
	free(map);
	free(ch);
	return rc;
}

size_t plan_routed(const struct plan *p)
{
	size_t n = 0;
	for (size_t i = 0; i < p->nlines; i++)
		n += p->lines[i].offer >= 0;
	return n;
}

void plan_line_result(const struct plan *p, size_t i, struct plan_line_result *out)
{
	const struct plan_line *l = &p->lines[i];
	memset(out, 0, sizeof *out);
	if (l->offer < 0) {
		out->status = "unroutable";
		out->reason = route_reason_name(l->reason);
		return;
	}
	const struct route_offer *f = &p->offers[l->offer];
	out->status = "routed";
	out->supplier_id = p->pool->supplier_ids[p->pool_index[l->offer]];
	out->offer_id = f->offer_id;
	out->supplier_code = f->supplier_code;
	out->reserved = l->quantity;
	plan_money(f->unit_cost + f->shipping_cost, out->unit_cost, sizeof out->unit_cost);
}

static const char *plan_why_not(const struct route_offer *f, const char *country, int quantity)
{
	if (!f->supplier_active)
		return "supplier_inactive";
	if (!f->available)
		return "unavailable";
	enum route_reason r = route_offer_check(f, country, quantity);
	return r == ROUTE_ROUTED ? NULL : route_reason_name(r);
}

/* A rate in ppm as percent text with four decimals: exact, "63.3333". */
static void plan_rate(int ppm, char *buf, size_t cap)
{
	snprintf(buf, cap, "%d.%04d", ppm / 10000, ppm % 10000);
}

char *plan_candidates_text(const struct plan *p, size_t i)
{
	const struct plan_line *l = &p->lines[i];
	json_t *arr = json_array();
	for (size_t k = 0; k < p->noffers; k++) {
		const struct route_offer *f = &p->offers[k];
		if (!l->sku || strcmp(f->sku, l->sku) != 0)
			continue;
		const char *why = plan_why_not(f, p->country, l->quantity);
		char cost[32], expected[32], acc[16], ontime[16];
		plan_money(f->unit_cost + f->shipping_cost, cost, sizeof cost);
		plan_money(route_expected_unit_cost(f, p->terms.penalty), expected, sizeof expected);
		plan_rate(f->accept_ppm, acc, sizeof acc);
		plan_rate(f->on_time_ppm, ontime, sizeof ontime);
		int answered = p->pool->answered[p->pool_index[k]];
		json_t *c = json_pack("{s:I, s:s, s:s, s:i, s:i, s:i, s:b, s:o}",
		        "offer_id", (json_int_t)f->offer_id, "supplier", f->supplier_code, "unit_cost", cost,
		        "lead_time_days", f->lead_time_days, "priority", f->supplier_priority,
		        "stock", f->stock, "eligible", why == NULL,
		        "why_not", why ? json_string(why) : json_null());
		/* The scorecard the choice was made on, and what it made of it. */
		json_object_set_new(c, "acceptance_rate", json_string(acc));
		json_object_set_new(c, "on_time_rate", json_string(ontime));
		json_object_set_new(c, "answered", answered >= 0 ? json_integer(answered) : json_null());
		json_object_set_new(c, "expected_cost", json_string(expected));
		json_object_set_new(c, "below_floor", json_boolean(!route_above_floor(f, p->terms.min_accept_ppm,
		                                                                     p->terms.min_on_time_ppm)));
		json_array_append_new(arr, c);
	}
	char *text = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	return text;
}

/* ---- requests and their messages ---- */

void plan_writes_init(struct plan_writes *w)
{
	db_columns_init(&w->requests, 4);
	db_columns_init(&w->outbox, 4);
	db_columns_init(&w->decisions, 10);
	db_columns_init(&w->lines, 10);
}

void plan_writes_free(struct plan_writes *w)
{
	db_columns_free(&w->requests);
	db_columns_free(&w->outbox);
	db_columns_free(&w->decisions);
	db_columns_free(&w->lines);
}

/* A time-ordered (version 7, RFC 9562) UUID as text: the Unix time in
 * milliseconds, then 74 random bits. Request ids are the key of
 * fulfillment_requests and of order_lines(request_id): ids made in the same
 * minutes sit together at the end of those indexes, so the inserts and the
 * callbacks' lookups of recent requests touch a few hot pages instead of a
 * random leaf of an index that grows with the whole history. */
static void plan_uuid(char out[PLAN_UUID_LEN])
{
	unsigned char b[16];
	if (RAND_bytes(b, sizeof b) != 1)
		mem_oom(); /* no randomness left is as fatal as no memory */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	unsigned long long ms = (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000;
	for (int i = 0; i < 6; i++)
		b[i] = (unsigned char)(ms >> (40 - 8 * i));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x70);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, PLAN_UUID_LEN, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
	         b[14], b[15]);
}

/* The fulfillment.requested message of request_id (p's lines carrying it). */
static char *plan_request_payload(const struct plan *p, const char *request_id,
                                  const struct plan_order *o, const char *created_at)
{
	json_t *items = json_array();
	for (size_t i = 0; i < p->nlines; i++) {
		const struct plan_line *l = &p->lines[i];
		if (l->offer < 0 || strcmp(l->request_id, request_id) != 0)
			continue;
		size_t at = p->pool_index[l->offer];
		json_array_append_new(items, json_pack("{s:i, s:s, s:s, s:i}", "line", l->line_no, "sku", l->sku,
		                                       "supplier_sku", p->pool->supplier_skus[at],
		                                       "quantity", l->quantity));
	}
	json_t *ship = json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?}",
	                         "name", o->ship_name, "line1", o->ship_line1, "line2", o->ship_line2,
	                         "city", o->ship_city, "region", o->ship_region,
	                         "postal_code", o->ship_postal_code, "country", o->ship_country,
	                         "phone", o->ship_phone);
	json_t *msg = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s}", "type", "fulfillment.requested",
	                        "request_id", request_id, "store", o->store_code, "order_id", o->order_id,
	                        "external_order_id", o->external_id, "ship_to", ship, "items", items,
	                        "created_at", created_at);
	char *text = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	return text;
}

/* Now as RFC 3339 UTC with microseconds, as PostgreSQL writes timestamps. */
static void plan_now(char *buf, size_t cap)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, cap - n, ".%06ld+00:00", ts.tv_nsec / 1000);
}

/* One request per supplier for p's routed lines that have none yet. */
static void plan_writes_requests(struct plan_writes *w, struct plan *p, const struct plan_order *o)
{
	char created_at[48];
	plan_now(created_at, sizeof created_at);
	for (size_t i = 0; i < p->nlines; i++) {
		struct plan_line *l = &p->lines[i];
		if (l->offer < 0 || l->request_id[0])
			continue;
		long long sid = p->pool->supplier_ids[p->pool_index[l->offer]];
		char id[PLAN_UUID_LEN], sid_text[24];
		plan_uuid(id);
		/* This line and every later one of the same supplier share the request. */
		for (size_t j = i; j < p->nlines; j++) {
			struct plan_line *m = &p->lines[j];
			if (m->offer >= 0 && !m->request_id[0] && p->pool->supplier_ids[p->pool_index[m->offer]] == sid)
				memcpy(m->request_id, id, PLAN_UUID_LEN);
		}
		snprintf(sid_text, sizeof sid_text, "%lld", sid);
		const char *req[4] = { id, o->store_id, o->order_id, sid_text };
		db_columns_add(&w->requests, req);
		char *payload = plan_request_payload(p, id, o, created_at);
		const char *msg[4] = { id, sid_text, o->store_id, payload };
		db_columns_add(&w->outbox, msg);
		free(payload);
	}
}

void plan_writes_add(struct plan_writes *w, struct plan *p, const struct plan_order *o, int rerouted)
{
	plan_writes_requests(w, p, o);
	for (size_t i = 0; i < p->nlines; i++) {
		struct plan_line_result lr;
		plan_line_result(p, i, &lr);
		char line_no[16], sid[24], oid[24], reserved[16];
		snprintf(line_no, sizeof line_no, "%d", p->lines[i].line_no);
		snprintf(sid, sizeof sid, "%lld", lr.supplier_id);
		snprintf(oid, sizeof oid, "%lld", lr.offer_id);
		snprintf(reserved, sizeof reserved, "%d", lr.reserved);
		int ok = lr.supplier_code != NULL;
		if (rerouted) {
			const char *lv[10] = { o->store_id, o->order_id, line_no, lr.status, lr.reason,
			                       ok ? sid : NULL, ok ? oid : NULL, reserved, ok ? lr.unit_cost : NULL,
			                       p->lines[i].request_id[0] ? p->lines[i].request_id : NULL };
			db_columns_add(&w->lines, lv);
		}
		char *cands = plan_candidates_text(p, i);
		const char *dv[10] = { o->store_id, o->order_id, line_no, route_policy_name(p->policy),
		                       ok ? sid : NULL, ok ? oid : NULL, lr.reason, cands,
		                       p->search_exact ? "exact" : "greedy", p->consolidated ? "true" : "false" };
		db_columns_add(&w->decisions, dv);
		free(cands);
	}
}

void plan_writes_add_requests(struct plan_writes *w, struct db_batch *b)
{
	if (w->requests.nrows)
		db_batch_add_columns(b, "plan_requests_insert", &w->requests);
}

void plan_writes_add_lines(struct plan_writes *w, struct db_batch *b)
{
	if (w->lines.nrows)
		db_batch_add_columns(b, "plan_lines_reroute", &w->lines);
}

void plan_writes_add_rest(struct plan_writes *w, struct db_batch *b)
{
	if (w->decisions.nrows)
		db_batch_add_columns(b, w->lines.nrows ? "plan_decisions_next" : "plan_decisions_first",
		                     &w->decisions);
	if (w->outbox.nrows)
		db_batch_add_columns(b, "plan_outbox_insert", &w->outbox);
}

int plan_add_order_status(struct db_batch *b, struct db_columns *rows)
{
	return db_batch_add_columns(b, "plan_order_status", rows);
}
