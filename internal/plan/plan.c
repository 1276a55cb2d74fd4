#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem/mem.h"
#include "plan/plan.h"

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
	PLAN_CAND_NCOLS
};

/* The stock statement's columns. */
enum plan_stock_col { PLAN_STOCK_OFFER_ID, PLAN_STOCK_STOCK, PLAN_STOCK_AVAILABLE, PLAN_STOCK_NCOLS };

const struct db_stmt_def plan_stmts[] = {
	/* Every offer of the given SKUs, except from excluded suppliers (those
	 * that already rejected the order being re-routed). Costs in 1/10000
	 * units, capped where the engine's arithmetic stops. */
	{ "plan_candidates",
	  "SELECT o.id, o.sku, s.code, s.priority, s.active, o.available,"
	  "   (LEAST(o.cost, 1000000) * 10000)::bigint, (LEAST(o.shipping_cost, 1000000) * 10000)::bigint,"
	  "   o.stock, o.lead_time_days, array_to_string(o.ships_to, ';'), s.id"
	  " FROM offers o JOIN suppliers s ON s.id = o.supplier_id"
	  " WHERE o.sku = ANY ($1::text[]) AND NOT (o.supplier_id = ANY ($2::bigint[]))"
	  " ORDER BY o.id LIMIT 4096" },
	/* Reserves stock by conditional update, never below zero. Rows are
	 * locked in id order first so concurrent orders cannot deadlock. */
	{ "plan_reserve",
	  "WITH req AS (SELECT unnest($1::bigint[]) AS id, unnest($2::int[]) AS qty),"
	  " locked AS MATERIALIZED (SELECT o.id FROM offers o WHERE o.id IN (SELECT id FROM req)"
	  "   ORDER BY o.id FOR UPDATE)"
	  " UPDATE offers o SET stock = o.stock - req.qty, updated_at = now() FROM req"
	  " WHERE o.id = req.id AND o.id IN (SELECT id FROM locked)"
	  "   AND o.available AND o.stock >= req.qty RETURNING o.id" },
	/* Stock as committed now (a new snapshot per statement), for re-planning. */
	{ "plan_stock",
	  "SELECT id, stock, available FROM offers WHERE id = ANY ($1::bigint[])" },
	/* One fulfillment request per supplier for the routed lines that have
	 * none yet, and its outbox message, in the same transaction: nothing is
	 * sent that was not committed, and nothing committed is forgotten. */
	{ "plan_requests_insert",
	  "WITH g AS (SELECT DISTINCT supplier_id FROM order_lines"
	  "   WHERE store_id = $1 AND order_id = $2 AND status = 'routed' AND request_id IS NULL),"
	  " r AS (INSERT INTO fulfillment_requests (store_id, order_id, supplier_id)"
	  "   SELECT $1, $2, supplier_id FROM g RETURNING id, supplier_id),"
	  " u AS (UPDATE order_lines l SET request_id = r.id FROM r"
	  "   WHERE l.store_id = $1 AND l.order_id = $2 AND l.supplier_id = r.supplier_id"
	  "     AND l.status = 'routed' AND l.request_id IS NULL),"
	  " m AS (INSERT INTO outbox (kind, request_id, supplier_id, store_id, idempotency_key, payload)"
	  "   SELECT 'fulfillment.requested', r.id, r.supplier_id, $1, r.id::text,"
	  "     jsonb_build_object('type', 'fulfillment.requested', 'request_id', r.id,"
	  "       'store', st.code, 'order_id', o.id::text, 'external_order_id', o.external_id,"
	  "       'ship_to', jsonb_build_object('name', o.ship_name, 'line1', o.ship_line1,"
	  "         'line2', o.ship_line2, 'city', o.ship_city, 'region', o.ship_region,"
	  "         'postal_code', o.ship_postal_code, 'country', o.ship_country, 'phone', o.ship_phone),"
	  "       'items', (SELECT jsonb_agg(jsonb_build_object('line', l.line_no, 'sku', l.sku,"
	  "                   'supplier_sku', f.supplier_sku, 'quantity', l.quantity) ORDER BY l.line_no)"
	  "                 FROM order_lines l JOIN offers f ON f.id = l.offer_id"
	  "                 WHERE l.store_id = $1 AND l.order_id = $2 AND l.supplier_id = r.supplier_id"
	  "                   AND l.status = 'routed' AND l.request_id IS NULL),"
	  "       'created_at', now())"
	  "   FROM r JOIN orders o ON o.store_id = $1 AND o.id = $2 JOIN stores st ON st.id = $1"
	  "   RETURNING 1)"
	  " SELECT count(*) FROM m" },
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

/* Text array literal {"a","b"} of n strings, quoted and escaped (malloc'd). */
static char *plan_text_array(const char *const *v, size_t n)
{
	size_t cap = 3;
	for (size_t i = 0; i < n; i++)
		cap += 2 * strlen(v[i]) + 3;
	char *out = mem_alloc(cap), *p = out;
	*p++ = '{';
	for (size_t i = 0; i < n; i++) {
		if (i)
			*p++ = ',';
		*p++ = '"';
		for (const char *c = v[i]; *c; c++) {
			if (*c == '"' || *c == '\\')
				*p++ = '\\';
			*p++ = *c;
		}
		*p++ = '"';
	}
	*p++ = '}';
	*p = '\0';
	return out;
}

int plan_add_candidates(struct db_batch *b, const char *const *skus, size_t n,
                        const long long *exclude, size_t nexclude)
{
	char *sku_text = plan_text_array(skus, n);
	char *ex_text = plan_int_array(exclude, exclude ? nexclude : 0);
	const char *v[2] = { sku_text, ex_text };
	int i = db_batch_add(b, "plan_candidates", NULL, 2, v);
	free(sku_text);
	free(ex_text);
	return i;
}

/* Row r of a candidates result into f and its supplier's id. */
static void plan_decode_offer(const PGresult *res, int r, struct route_offer *f, long long *supplier_id)
{
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
	*supplier_id = plan_ll(PQgetvalue(res, r, PLAN_CAND_SUPPLIER_ID));
}

int plan_init(struct plan *p, size_t nlines, const PGresult *candidates, const char *country,
              enum route_policy policy, int tolerance_pct)
{
	memset(p, 0, sizeof *p);
	if (PQnfields(candidates) != PLAN_CAND_NCOLS)
		return -1;
	int n = PQntuples(candidates);
	p->offers = mem_calloc((size_t)n, sizeof *p->offers);
	p->supplier_ids = mem_calloc((size_t)n, sizeof *p->supplier_ids);
	p->lines = mem_calloc(nlines, sizeof *p->lines);
	for (int r = 0; r < n; r++)
		plan_decode_offer(candidates, r, &p->offers[r], &p->supplier_ids[r]);
	p->noffers = (size_t)n;
	p->nlines = nlines;
	for (size_t i = 0; i < nlines; i++) {
		p->lines[i].offer = -1;
		p->lines[i].line_no = (int)i + 1;
	}
	p->country = country;
	p->policy = policy;
	p->tolerance_pct = tolerance_pct;
	return 0;
}

void plan_free(struct plan *p)
{
	free(p->offers);
	free(p->supplier_ids);
	free(p->lines);
	memset(p, 0, sizeof *p);
}

int plan_route(struct plan *p)
{
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
	}
	rc = 0;
cleanup:
	free(rl);
	free(map);
	free(ch);
	return rc;
}

int plan_reservations(const struct plan *p, char **ids_text, char **qty_text)
{
	size_t n = 0;
	long long *ids = mem_calloc(p->nlines, sizeof *ids);
	long long *qty = mem_calloc(p->nlines, sizeof *qty);
	for (size_t i = 0; i < p->nlines; i++) {
		const struct plan_line *l = &p->lines[i];
		if (l->done)
			continue;
		long long id = p->offers[l->offer].offer_id;
		size_t k = 0;
		while (k < n && ids[k] != id)
			k++;
		if (k == n)
			ids[n++] = id;
		qty[k] += l->quantity;
	}
	*ids_text = plan_int_array(ids, n);
	*qty_text = plan_int_array(qty, n);
	free(ids);
	free(qty);
	return (int)n;
}

int plan_add_reserve(const struct plan *p, struct db_batch *b)
{
	char *ids, *qty;
	int i = -1;
	if (plan_reservations(p, &ids, &qty) > 0) {
		const char *v[2] = { ids, qty };
		i = db_batch_add(b, "plan_reserve", NULL, 2, v);
		db_batch_add(b, "plan_stock", NULL, 1, v);
	}
	free(ids);
	free(qty);
	return i;
}

int plan_take_reserve(struct plan *p, const struct db_batch *b, int i)
{
	const PGresult *got = db_batch_result(b, i), *stock = db_batch_result(b, i + 1);
	if (!got || !stock || PQnfields(stock) != PLAN_STOCK_NCOLS)
		return -1;
	/* Fresh stock for the offers tried: ours already net of what we hold. */
	for (int r = 0; r < PQntuples(stock); r++)
		plan_set_stock(p, plan_ll(PQgetvalue(stock, r, PLAN_STOCK_OFFER_ID)),
		               (int)plan_ll(PQgetvalue(stock, r, PLAN_STOCK_STOCK)),
		               PQgetvalue(stock, r, PLAN_STOCK_AVAILABLE)[0] == 't');
	for (int r = 0; r < PQntuples(got); r++)
		plan_reserved(p, plan_ll(PQgetvalue(got, r, 0)));
	/* A concurrent order took stock we planned on: plan those lines again
	 * among what is left (plan_add_reserve picks them up). */
	if (!plan_next_round(p))
		return 0;
	return plan_route(p) < 0 ? -1 : 1;
}

int plan_add_requests(struct db_batch *b, const char *store_id, const char *order_id)
{
	const char *v[2] = { store_id, order_id };
	return db_batch_add(b, "plan_requests_insert", NULL, 2, v);
}

void plan_set_stock(struct plan *p, long long offer_id, int stock, int available)
{
	for (size_t k = 0; k < p->noffers; k++)
		if (p->offers[k].offer_id == offer_id) {
			p->offers[k].stock = stock;
			p->offers[k].available = available;
		}
}

void plan_settle(struct plan *p, size_t i, enum route_reason reason)
{
	p->lines[i].offer = -1;
	p->lines[i].reason = reason;
	p->lines[i].done = 1;
}

void plan_reserved(struct plan *p, long long offer_id)
{
	for (size_t i = 0; i < p->nlines; i++) {
		struct plan_line *l = &p->lines[i];
		if (!l->done && l->offer >= 0 && p->offers[l->offer].offer_id == offer_id)
			l->done = 1;
	}
}

int plan_next_round(struct plan *p)
{
	int pending = 0;
	for (size_t i = 0; i < p->nlines; i++)
		pending += !p->lines[i].done;
	if (!pending)
		return 0;
	if (++p->round < PLAN_MAX_ROUNDS)
		return 1;
	for (size_t i = 0; i < p->nlines; i++)
		if (!p->lines[i].done) {
			p->lines[i].offer = -1;
			p->lines[i].reason = ROUTE_OUT_OF_STOCK;
			p->lines[i].done = 1;
		}
	return 0;
}

/* 1/10000 units as decimal text. */
static json_t *plan_money(long long v)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%lld.%04lld", v / 10000, v % 10000);
	return json_string(buf);
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

json_t *plan_line_json(const struct plan *p, size_t i)
{
	const struct plan_line *l = &p->lines[i];
	json_t *line = json_pack("{s:i, s:s}", "line", l->line_no, "status", l->offer >= 0 ? "routed" : "unroutable");
	if (l->offer >= 0) {
		const struct route_offer *f = &p->offers[l->offer];
		json_object_set_new(line, "supplier_id", json_integer((json_int_t)p->supplier_ids[l->offer]));
		json_object_set_new(line, "offer_id", json_integer((json_int_t)f->offer_id));
		json_object_set_new(line, "reserved", json_integer(l->quantity));
		json_object_set_new(line, "unit_cost", plan_money(f->unit_cost + f->shipping_cost));
	} else {
		json_object_set_new(line, "reason", json_string(route_reason_name(l->reason)));
		json_object_set_new(line, "reserved", json_integer(0));
	}
	return line;
}

json_t *plan_decision_json(const struct plan *p, size_t i)
{
	const struct plan_line *l = &p->lines[i];
	json_t *arr = json_array();
	for (size_t k = 0; k < p->noffers; k++) {
		const struct route_offer *f = &p->offers[k];
		if (!l->sku || strcmp(f->sku, l->sku) != 0)
			continue;
		const char *why = plan_why_not(f, p->country, l->quantity);
		json_array_append_new(arr, json_pack("{s:I, s:s, s:o, s:i, s:i, s:i, s:b, s:o}",
		        "offer_id", (json_int_t)f->offer_id, "supplier", f->supplier_code,
		        "unit_cost", plan_money(f->unit_cost + f->shipping_cost),
		        "lead_time_days", f->lead_time_days, "priority", f->supplier_priority,
		        "stock", f->stock, "eligible", why == NULL,
		        "why_not", why ? json_string(why) : json_null()));
	}
	json_t *dec = json_pack("{s:i, s:o}", "line", l->line_no, "candidates", arr);
	if (l->offer >= 0) {
		json_object_set_new(dec, "supplier_id", json_integer((json_int_t)p->supplier_ids[l->offer]));
		json_object_set_new(dec, "offer_id", json_integer((json_int_t)p->offers[l->offer].offer_id));
	} else {
		json_object_set_new(dec, "reason", json_string(route_reason_name(l->reason)));
	}
	return dec;
}

size_t plan_routed(const struct plan *p)
{
	size_t n = 0;
	for (size_t i = 0; i < p->nlines; i++)
		n += p->lines[i].offer >= 0;
	return n;
}
