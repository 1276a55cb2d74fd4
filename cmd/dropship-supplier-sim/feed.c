/* Stock feeds: with --catalog and --feed-every, each supplier pushes its
 * stock levels to dropshipd's POST /v1/suppliers/CODE/inventory, signed
 * with its secret, every period (the first one period after start: the
 * catalog's levels are what dropshipd was given already). The levels
 * start as --catalog has them (the CSV `dropshipctl catalog import` takes),
 * fall with every fulfillment the supplier takes, and drift between feeds
 * (faults.c: trade elsewhere, restocking). A feed is never retried: the
 * next one is newer and absolute. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "catalog/catalog.h"
#include "log/log.h"
#include "stock/stock.h"

#include "sim.h"

#define SIM_FEED_FILE_MAX (256L << 20)   /* --catalog read whole: a demo's, not a million rows' */

/* One feed on the wire; in sim.feed_outs until its answer (or the end). */
struct sim_feed_out {
	struct sim *sim;
	size_t supplier;
	size_t items;
	char id[96];
	struct sim_feed_out *prev, *next;
};

static void out_unlink(struct sim *sim, struct sim_feed_out *out)
{
	if (out->prev)
		out->prev->next = out->next;
	else
		sim->feed_outs = out->next;
	if (out->next)
		out->next->prev = out->prev;
}

static int level_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sim_level *)a)->sku, ((const struct sim_level *)b)->sku);
}

static struct sim_level *level_find(struct sim_stock *st, const char *sku)
{
	struct sim_level key = { .sku = (char *)sku };
	return st->n ? bsearch(&key, st->levels, st->n, sizeof *st->levels, level_cmp) : NULL;
}

/* The supplier of this simulator a row names, or nsuppliers. */
static size_t row_supplier(const struct sim *sim, const struct catalog_row *row)
{
	for (size_t i = 0; i < sim->o->nsuppliers; i++)
		if (strlen(sim->o->suppliers[i].code) == row->supplier.len &&
		    memcmp(sim->o->suppliers[i].code, row->supplier.p, row->supplier.len) == 0)
			return i;
	return sim->o->nsuppliers;
}

static int level_add(struct sim_stock *st, const struct catalog_row *row)
{
	struct sim_level *a = realloc(st->levels, (st->n + 1) * sizeof *a);
	if (!a)
		return -1;
	st->levels = a;
	char *sku = malloc(row->sku.len + 1);
	if (!sku)
		return -1;
	memcpy(sku, row->sku.p, row->sku.len);
	sku[row->sku.len] = '\0';
	a[st->n++] = (struct sim_level){ sku, row->stock, row->stock };
	return 0;
}

/* Reads the whole file into *buf (malloc'd). */
static int read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "--catalog: cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	size_t cap = 1 << 16, n = 0;
	char *b = malloc(cap);
	while (b) {
		n += fread(b + n, 1, cap - n, f);
		if (n < cap || (long)cap >= SIM_FEED_FILE_MAX)
			break;
		char *grown = realloc(b, cap * 2);
		if (!grown) {
			free(b);
			b = NULL;
			break;
		}
		b = grown;
		cap *= 2;
	}
	int bad = ferror(f) || !b || n == cap;
	fclose(f);
	if (bad) {
		free(b);
		snprintf(err, errlen, "--catalog: cannot read %s (or it is over %ld MiB)", path,
		         SIM_FEED_FILE_MAX >> 20);
		return -1;
	}
	*buf = b;
	*len = n;
	return 0;
}

int sim_feed_load(struct sim *sim, char *err, size_t errlen)
{
	const struct sim_opts *o = sim->o;
	char *buf;
	size_t len, at, used;
	if (read_file(o->catalog, &buf, &len, err, errlen) < 0)
		return -1;
	struct catalog_record *rec = malloc(sizeof *rec);
	struct catalog_row *row = malloc(sizeof *row);
	sim->stock = calloc(o->nsuppliers, sizeof *sim->stock);
	int rc = -1;
	long line = 1;
	char why[CATALOG_ERR_MAX];
	if (!rec || !row || !sim->stock) {
		snprintf(err, errlen, "--catalog: out of memory");
		goto done;
	}
	at = catalog_bom_len(buf, len);
	if (catalog_csv_next(buf + at, len - at, 1, rec, &used) != CATALOG_NEXT_RECORD ||
	    catalog_header_check(rec, why, sizeof why) < 0) {
		snprintf(err, errlen, "%s:1: expected header " CATALOG_HEADER, o->catalog);
		goto done;
	}
	for (at += used, line += (long)rec->lines; catalog_csv_next(buf + at, len - at, 1, rec, &used) ==
	     CATALOG_NEXT_RECORD; at += used, line += (long)rec->lines) {
		int r = catalog_row_parse(rec, row, why, sizeof why);
		if (r > 0)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "%s:%ld: %s", o->catalog, line, why);
			goto done;
		}
		size_t si = row_supplier(sim, row);
		if (si < o->nsuppliers && level_add(&sim->stock[si], row) < 0) {
			snprintf(err, errlen, "--catalog: out of memory");
			goto done;
		}
	}
	for (size_t si = 0; si < o->nsuppliers; si++) {
		struct sim_stock *st = &sim->stock[si];
		qsort(st->levels, st->n, sizeof *st->levels, level_cmp);
		for (size_t k = 1; k < st->n; k++)
			if (strcmp(st->levels[k].sku, st->levels[k - 1].sku) == 0) {
				snprintf(err, errlen, "%s: supplier %s lists SKU %s twice", o->catalog,
				         o->suppliers[si].code, st->levels[k].sku);
				goto done;
			}
		if (st->n == 0)
			log_warn("no stock to feed", "supplier=%s catalog=%s", o->suppliers[si].code, o->catalog);
	}
	rc = 0;
done:
	free(row);
	free(rec);
	free(buf);
	return rc;
}

/* When the levels were read: now, as RFC 3339 in UTC. */
static void feed_now(char *buf, size_t cap)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (stock_format_time((int64_t)ts.tv_sec, ts.tv_nsec, buf, cap) < 0)
		snprintf(buf, cap, "1970-01-01T00:00:00Z"); /* a clock out of range: refused as too old */
}

static void feed_done(void *arg, int status, const char *answer, size_t len, const char *error)
{
	struct sim_feed_out *out = arg;
	struct sim *sim = out->sim;
	const char *code = sim->o->suppliers[out->supplier].code;
	sim->stock[out->supplier].inflight--;
	char qerr[300];
	if (status >= 200 && status < 300) {
		sim->stats.feeds_sent++;
		json_t *a = json_loadb(answer, len, 0, NULL);
		log_info("feed sent", "supplier=%s webhook_id=%s items=%zu status=%d applied=%" JSON_INTEGER_FORMAT
		         " unchanged=%" JSON_INTEGER_FORMAT " unknown=%" JSON_INTEGER_FORMAT, code, out->id,
		         out->items, status, json_integer_value(json_object_get(a, "applied")),
		         json_integer_value(json_object_get(a, "unchanged")),
		         json_integer_value(json_object_get(a, "unknown")));
		json_decref(a);
	} else {
		sim->stats.feeds_failed++;
		char body[200], qbody[240];
		snprintf(body, sizeof body, "%.*s", (int)(len < 160 ? len : 160), answer);
		log_warn("feed failed", "supplier=%s webhook_id=%s status=%d error=%s answer=%s", code, out->id,
		         status, log_quote(qerr, sizeof qerr, error), log_quote(qbody, sizeof qbody, body));
	}
	out_unlink(sim, out);
	free(out);
}

/* Sends items [from, to) of supplier si's levels as one feed. */
static void feed_send(struct sim *sim, size_t si, size_t from, size_t to, const char *as_of)
{
	struct sim_stock *st = &sim->stock[si];
	const struct sim_supplier *s = &sim->o->suppliers[si];
	json_t *items = json_array();
	for (size_t k = from; items && k < to; k++)
		json_array_append_new(items, json_pack("{s:s, s:I}", "sku", st->levels[k].sku, "stock",
		                                       (json_int_t)st->levels[k].level));
	json_t *doc = json_pack("{s:s, s:o*}", "as_of", as_of, "items", items);
	char *body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	struct sim_feed_out *out = calloc(1, sizeof *out);
	char path[200], err[64] = "out of memory";
	if (body && out) {
		*out = (struct sim_feed_out){ .sim = sim, .supplier = si, .items = to - from };
		snprintf(out->id, sizeof out->id, "feed_%s_%" PRId64 "_%lu", s->code, (int64_t)time(NULL), ++st->seq);
		snprintf(path, sizeof path, "/v1/suppliers/%s/inventory", s->code);
		if (sim_post(sim, s, path, out->id, body, strlen(body), feed_done, out, err, sizeof err) == 0) {
			st->inflight++;
			out->next = sim->feed_outs;
			if (sim->feed_outs)
				sim->feed_outs->prev = out;
			sim->feed_outs = out;
			free(body);
			return;
		}
	}
	sim->stats.feeds_failed++;
	log_warn("feed failed", "supplier=%s error=\"%s\"", s->code, err);
	free(out);
	free(body);
}

static void on_feed_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct sim *sim = arg;
	char as_of[STOCK_TIME_LEN];
	for (size_t si = 0; si < sim->o->nsuppliers; si++) {
		struct sim_stock *st = &sim->stock[si];
		if (st->n == 0)
			continue;
		if (st->inflight) { /* dropshipd is slower than the period: skip one */
			log_debug("feed skipped", "supplier=%s inflight=%d", sim->o->suppliers[si].code, st->inflight);
			continue;
		}
		/* The first feed says the levels as started, less what was sold since; each later one
		 * after a period's trade. */
		if (st->seq)
			sim_fault_drift(st->levels, st->n, &sim->feed_rng);
		feed_now(as_of, sizeof as_of);
		for (size_t from = 0; from < st->n; from += SIM_FEED_MAX_ITEMS)
			feed_send(sim, si, from, from + SIM_FEED_MAX_ITEMS < st->n ? from + SIM_FEED_MAX_ITEMS : st->n,
			          as_of);
	}
}

int sim_feed_start(struct sim *sim)
{
	/* A sequence of its own, so that a seed replays the same faults with or without feeds. */
	sim->feed_rng = sim_fault_rng_init(sim->o->seed ^ 0x5DEECE66DULL);
	sim->feed_timer = event_new(sim->base, -1, EV_PERSIST, on_feed_tick, sim);
	struct timeval tv = sim_ms_tv(sim->o->feed_every_ms);
	return sim->feed_timer && evtimer_add(sim->feed_timer, &tv) == 0 ? 0 : -1;
}

void sim_feed_sold(struct sim *sim, size_t si, json_t *items)
{
	if (!sim->stock)
		return;
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it) {
		struct sim_level *l = level_find(&sim->stock[si], json_string_value(json_object_get(it, "sku")));
		json_int_t q = json_integer_value(json_object_get(it, "quantity"));
		if (l)
			l->level = l->level > q ? l->level - (long)q : 0;
	}
}

void sim_feed_free(struct sim *sim)
{
	if (sim->feed_timer)
		event_free(sim->feed_timer);
	/* Feeds still on the wire: their connections are gone (sim_cb_free), their answers with them. */
	while (sim->feed_outs) {
		struct sim_feed_out *out = sim->feed_outs;
		out_unlink(sim, out);
		free(out);
	}
	for (size_t si = 0; sim->stock && si < sim->o->nsuppliers; si++) {
		for (size_t k = 0; k < sim->stock[si].n; k++)
			free(sim->stock[si].levels[k].sku);
		free(sim->stock[si].levels);
	}
	free(sim->stock);
	sim->stock = NULL;
}
