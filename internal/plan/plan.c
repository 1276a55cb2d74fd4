#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/plan.h"

static long long plan_ll(const char *text)
{
	return strtoll(text, NULL, 10);
}

int plan_init(struct plan *p, size_t nlines, PGresult *candidates, const char *country,
              enum route_policy policy, int tolerance_pct)
{
	memset(p, 0, sizeof *p);
	int n = PQntuples(candidates);
	p->offers = calloc((size_t)(n ? n : 1), sizeof *p->offers);
	p->supplier_ids = calloc((size_t)(n ? n : 1), sizeof *p->supplier_ids);
	p->lines = calloc(nlines ? nlines : 1, sizeof *p->lines);
	if (!p->offers || !p->supplier_ids || !p->lines) {
		plan_free(p);
		return -1;
	}
	for (int r = 0; r < n; r++) {
		struct route_offer *f = &p->offers[r];
		f->offer_id = plan_ll(PQgetvalue(candidates, r, 0));
		f->sku = PQgetvalue(candidates, r, 1);
		f->supplier_code = PQgetvalue(candidates, r, 2);
		f->supplier_priority = (int)plan_ll(PQgetvalue(candidates, r, 3));
		f->supplier_active = PQgetvalue(candidates, r, 4)[0] == 't';
		f->available = PQgetvalue(candidates, r, 5)[0] == 't';
		f->unit_cost = plan_ll(PQgetvalue(candidates, r, 6));
		f->shipping_cost = plan_ll(PQgetvalue(candidates, r, 7));
		f->stock = (int)plan_ll(PQgetvalue(candidates, r, 8));
		f->lead_time_days = (int)plan_ll(PQgetvalue(candidates, r, 9));
		f->ships_to = PQgetisnull(candidates, r, 10) ? NULL : PQgetvalue(candidates, r, 10);
		p->supplier_ids[r] = plan_ll(PQgetvalue(candidates, r, 11));
	}
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
	struct route_line *rl = calloc(p->nlines + 1, sizeof *rl);
	size_t *map = calloc(p->nlines + 1, sizeof *map);
	struct route_choice *ch = calloc(p->nlines + 1, sizeof *ch);
	int rc = -1;
	if (!rl || !map || !ch)
		goto cleanup;
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

/* "{1,2,3}" from n integers. */
static char *plan_int_array(const long long *v, size_t n)
{
	size_t cap = n * 21 + 3;
	char *out = malloc(cap), *w = out;
	if (!out)
		return NULL;
	*w++ = '{';
	for (size_t i = 0; i < n; i++)
		w += snprintf(w, cap - (size_t)(w - out), i ? ",%lld" : "%lld", v[i]);
	*w++ = '}';
	*w = '\0';
	return out;
}

int plan_reservations(const struct plan *p, char **ids_text, char **qty_text)
{
	size_t n = 0;
	long long *ids = calloc(p->nlines + 1, sizeof *ids);
	long long *qty = calloc(p->nlines + 1, sizeof *qty);
	int rc = -1;
	*ids_text = *qty_text = NULL;
	if (!ids || !qty)
		goto cleanup;
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
	if (!*ids_text || !*qty_text) {
		free(*ids_text);
		free(*qty_text);
		*ids_text = *qty_text = NULL;
		goto cleanup;
	}
	rc = (int)n;
cleanup:
	free(ids);
	free(qty);
	return rc;
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
