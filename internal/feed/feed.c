#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/feed.h"
#include "log/log.h"
#include "mem/mem.h"
#include "metrics/metrics.h"
#include "order/order.h"
#include "sig/sig.h"
#include "stock/stock.h"

#define FEED_SKU_MAX 128             /* bytes, like offers.sku */
#define FEED_STOCK_MAX 2147483647L   /* offers.stock is an integer */
#define FEED_LEAD_TIME_MAX 365
#define FEED_COUNTRIES_MAX 249       /* ISO 3166-1 alpha-2 codes in use */
#define FEED_MAX_RESTARTS 3          /* the apply's transaction after a deadlock */

/* ---- the body (pure) ---- */

__attribute__((format(printf, 4, 5)))
static int feed_fail(struct feed_error *err, int status, const char *field, const char *fmt, ...)
{
	err->status = status;
	err->code = status == 413 ? "payload_too_large" : status == 400 ? "invalid_json" : "invalid_field";
	snprintf(err->field, sizeof err->field, "%s", field ? field : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
	return -1;
}

/* items[i].key into buf. */
static const char *feed_field(char *buf, size_t cap, size_t i, const char *key)
{
	snprintf(buf, cap, "items[%zu].%s", i, key);
	return buf;
}

static int feed_absent(const json_t *v)
{
	return !v || json_is_null(v);
}

static int feed_code_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* ships_to: "*", or an array of ISO 3166-1 alpha-2 codes in any case. */
static int feed_ships_to(json_t *v, size_t i, struct feed_item *it, struct feed_error *err)
{
	static const char rule[] = "must be \"*\" (everywhere) or an array of ISO 3166-1 alpha-2 country codes";
	char field[48];
	if (json_is_string(v) && strcmp(json_string_value(v), "*") == 0) {
		it->ships_to = mem_strdup("*");
		return 0;
	}
	if (!json_is_array(v))
		return feed_fail(err, 422, feed_field(field, sizeof field, i, "ships_to"), "%s", rule);
	size_t n = json_array_size(v);
	if (n == 0 || n > FEED_COUNTRIES_MAX)
		return feed_fail(err, 422, feed_field(field, sizeof field, i, "ships_to"),
		                 "must list 1 to %d country codes, or be \"*\"", FEED_COUNTRIES_MAX);
	char (*codes)[3] = mem_calloc(n, sizeof *codes);
	for (size_t k = 0; k < n; k++) {
		const char *s = json_string_value(json_array_get(v, k));
		char up[3] = { 0 };
		for (int c = 0; s && c < 2 && s[c]; c++)
			up[c] = s[c] >= 'a' && s[c] <= 'z' ? (char)(s[c] - 'a' + 'A') : s[c];
		if (!s || strlen(s) != 2 || !order_valid_country(up)) {
			free(codes);
			snprintf(field, sizeof field, "items[%zu].ships_to[%zu]", i, k);
			return feed_fail(err, 422, field, "must be an ISO 3166-1 alpha-2 country code");
		}
		memcpy(codes[k], up, 3);
	}
	qsort(codes, n, sizeof *codes, feed_code_cmp);
	it->ships_to = mem_alloc(3 * n);
	size_t w = 0;
	for (size_t k = 0; k < n; k++) {
		if (k > 0 && strcmp(codes[k], codes[k - 1]) == 0)
			continue;
		if (w)
			it->ships_to[w++] = ';';
		memcpy(it->ships_to + w, codes[k], 2);
		w += 2;
	}
	it->ships_to[w] = '\0';
	free(codes);
	return 0;
}

/* cost or shipping_cost: absent, or a decimal string or JSON number. */
static int feed_price(json_t *item, size_t i, const char *key, char out[FEED_PRICE_LEN], struct feed_error *err)
{
	json_t *v = json_object_get(item, key);
	char field[48];
	out[0] = '\0';
	if (feed_absent(v))
		return 0;
	int rc = order_price(v, out);
	if (rc == -2)
		return feed_fail(err, 422, feed_field(field, sizeof field, i, key),
		                 "has more digits than a JSON number keeps exactly; send it as a string");
	if (rc < 0)
		return feed_fail(err, 422, feed_field(field, sizeof field, i, key),
		                 "must be a non-negative decimal with at most 16 integer and 4 fractional digits");
	return 0;
}

/* A JSON integer in 0..max into *out. */
static int feed_integer(json_t *v, size_t i, const char *key, long max, long *out, struct feed_error *err)
{
	char field[48];
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return feed_fail(err, 422, feed_field(field, sizeof field, i, key), "must be a non-negative integer");
	if (json_integer_value(v) > max)
		return feed_fail(err, 422, feed_field(field, sizeof field, i, key), "must be at most %ld", max);
	*out = (long)json_integer_value(v);
	return 0;
}

static int feed_item_parse(json_t *item, size_t i, struct feed_item *it, struct feed_error *err)
{
	static const char *const keys[] = { "sku", "stock", "cost", "shipping_cost", "lead_time_days", "ships_to",
	                                    NULL };
	char field[48];
	if (!json_is_object(item)) {
		snprintf(field, sizeof field, "items[%zu]", i);
		return feed_fail(err, 422, field, "must be an object");
	}
	const char *key;
	json_t *v;
	json_object_foreach(item, key, v) {
		const char *const *k = keys;
		while (*k && strcmp(*k, key) != 0)
			k++;
		if (!*k)
			return feed_fail(err, 422, feed_field(field, sizeof field, i, key),
			                 "is not a field of an item (sku, stock, cost, shipping_cost, lead_time_days, "
			                 "ships_to)");
	}
	v = json_object_get(item, "sku");
	if (feed_absent(v))
		return feed_fail(err, 422, feed_field(field, sizeof field, i, "sku"), "is required");
	/* No NUL inside: jansson refuses \u0000 unless asked to take it. */
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > FEED_SKU_MAX)
		return feed_fail(err, 422, feed_field(field, sizeof field, i, "sku"),
		                 "must be a string of 1 to %d bytes", FEED_SKU_MAX);
	it->sku = json_string_value(v);
	v = json_object_get(item, "stock");
	if (feed_absent(v))
		return feed_fail(err, 422, feed_field(field, sizeof field, i, "stock"), "is required");
	if (feed_integer(v, i, "stock", FEED_STOCK_MAX, &it->stock, err) < 0 ||
	    feed_price(item, i, "cost", it->cost, err) < 0 ||
	    feed_price(item, i, "shipping_cost", it->shipping_cost, err) < 0)
		return -1;
	it->lead_time_days = -1;
	v = json_object_get(item, "lead_time_days");
	long lead;
	if (!feed_absent(v)) {
		if (feed_integer(v, i, "lead_time_days", FEED_LEAD_TIME_MAX, &lead, err) < 0)
			return -1;
		it->lead_time_days = (int)lead;
	}
	v = json_object_get(item, "ships_to");
	return feed_absent(v) ? 0 : feed_ships_to(v, i, it, err);
}

/* An item's position, sorted by SKU to find repeats. */
struct feed_pos {
	const char *sku;
	size_t i;
};

static int feed_pos_cmp(const void *a, const void *b)
{
	const struct feed_pos *x = a, *y = b;
	int c = strcmp(x->sku, y->sku);
	return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* A SKU twice: the earliest second occurrence is at fault. */
static int feed_repeats(const struct feed *f, struct feed_error *err)
{
	struct feed_pos *pos = mem_calloc(f->n, sizeof *pos);
	for (size_t i = 0; i < f->n; i++)
		pos[i] = (struct feed_pos){ f->items[i].sku, i };
	qsort(pos, f->n, sizeof *pos, feed_pos_cmp);
	size_t first = 0, again = f->n;
	for (size_t k = 1; k < f->n; k++)
		if (strcmp(pos[k].sku, pos[k - 1].sku) == 0 && pos[k].i < again) {
			/* The group's first position is the earliest occurrence. */
			size_t g = k - 1;
			while (g > 0 && strcmp(pos[g - 1].sku, pos[k].sku) == 0)
				g--;
			again = pos[k].i;
			first = pos[g].i;
		}
	free(pos);
	if (again == f->n)
		return 0;
	char field[48];
	return feed_fail(err, 422, feed_field(field, sizeof field, again, "sku"),
	                 "repeats items[%zu].sku: a feed lists each SKU once", first);
}

static int feed_as_of(json_t *root, struct feed *f, struct feed_error *err)
{
	json_t *v = json_object_get(root, "as_of");
	if (feed_absent(v))
		return feed_fail(err, 422, "as_of", "is required: the time the levels were taken (RFC 3339)");
	if (!json_is_string(v) || !order_valid_timestamp(json_string_value(v)))
		return feed_fail(err, 422, "as_of",
		                 "must be an RFC 3339 time such as 2026-11-22T10:00:00Z");
	f->as_of = json_string_value(v);
	return 0;
}

int feed_parse(const char *body, size_t len, struct feed *f, struct feed_error *err)
{
	memset(f, 0, sizeof *f);
	json_error_t je;
	/* DECODE_ANY: a scalar root is JSON, refused as 422 like an array root. */
	f->root = json_loadb(body ? body : "", body ? len : 0, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!f->root) {
		if (json_error_code(&je) == json_error_out_of_memory)
			mem_oom();
		feed_fail(err, 400, NULL, "%s (line %d, column %d, byte %d)", je.text, je.line, je.column, je.position);
		for (char *c = err->message; *c; c++)
			if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
				*c = '?';
		return -1;
	}
	if (!json_is_object(f->root)) {
		feed_free(f);
		return feed_fail(err, 422, NULL, "the body must be a JSON object");
	}
	const char *key;
	json_t *v;
	json_object_foreach(f->root, key, v)
		if (strcmp(key, "as_of") != 0 && strcmp(key, "items") != 0) {
			char field[48];
			snprintf(field, sizeof field, "%s", key);
			feed_free(f);
			return feed_fail(err, 422, field, "is not a field of a feed (as_of, items)");
		}
	json_t *items = json_object_get(f->root, "items");
	int rc = feed_as_of(f->root, f, err);
	if (rc == 0 && feed_absent(items))
		rc = feed_fail(err, 422, "items", "is required: an array of {sku, stock, ...}");
	else if (rc == 0 && !json_is_array(items))
		rc = feed_fail(err, 422, "items", "must be an array of {sku, stock, ...}");
	else if (rc == 0 && json_array_size(items) == 0)
		rc = feed_fail(err, 422, "items", "must list at least one item");
	else if (rc == 0 && json_array_size(items) > FEED_MAX_ITEMS)
		rc = feed_fail(err, 413, "items", "has %zu items; a feed has at most %d: send the rest in another feed",
		               json_array_size(items), FEED_MAX_ITEMS);
	if (rc == 0) {
		f->n = json_array_size(items);
		f->items = mem_calloc(f->n, sizeof *f->items);
		for (size_t i = 0; i < f->n && rc == 0; i++)
			rc = feed_item_parse(json_array_get(items, i), i, &f->items[i], err);
	}
	if (rc == 0)
		rc = feed_repeats(f, err);
	if (rc < 0)
		feed_free(f);
	return rc;
}

void feed_free(struct feed *f)
{
	for (size_t i = 0; f->items && i < f->n; i++)
		free(f->items[i].ships_to);
	free(f->items);
	json_decref(f->root);
	memset(f, 0, sizeof *f);
}

/* ---- the handler ---- */

const struct db_stmt_def feed_stmts[] = {
	{ "feed_supplier",
	  "SELECT id, array_to_string(secrets, E'\\n'), active FROM suppliers WHERE code = $1" },
	/* The supplier's offers of the feed's SKUs, by their position in the
	 * array ($2); a SKU without one returns no row. */
	{ "feed_offers",
	  "SELECT k.i, o.id FROM unnest($2::text[]) WITH ORDINALITY AS k(sku, i)"
	  " JOIN offers o ON o.supplier_id = $1::bigint AND o.sku = k.sku" },
	{ NULL, NULL },
};

enum feed_supplier_col { FEED_SUPPLIER_ID, FEED_SUPPLIER_SECRETS, FEED_SUPPLIER_ACTIVE };
enum feed_offer_col { FEED_OFFER_INDEX, FEED_OFFER_ID };
enum feed_check_col { FEED_CHECK_REFUSED, FEED_CHECK_AS_OF };

#define FEED_STATES(X)                                                                       \
	X(ACQUIRE, "acquire")     /* waiting for a pool connection */                            \
	X(SUPPLIER, "supplier")   /* the supplier's lookup in flight */                          \
	X(RESOLVE, "resolve")     /* the time's check and the SKUs' offers in flight */          \
	X(APPLY, "apply")         /* BEGIN, lock, apply, COMMIT in flight */                     \
	X(NOTIFY, "notify")       /* answered; NOTIFY dropship_stock in flight */

enum feed_state {
#define X(name, text) FEED_##name,
	FEED_STATES(X)
#undef X
	FEED_STATE_MAX
};

static const char *const feed_state_names[] = {
#define X(name, text) text,
	FEED_STATES(X)
#undef X
};

/* One feed being applied. Allocated by feed_handle, freed by feed_req_free;
 * every path replies exactly once, before NOTIFY when there is one. */
struct feed_req {
	enum feed_state state;
	struct http_ctx *ctx;            /* NULL once answered */
	struct http_env *env;
	struct db_conn *conn;
	struct db_batch *batch;
	char *body;
	size_t body_len;
	char request_id[40];             /* for log lines, also after the answer */
	char supplier_code[72];
	char supplier_id[24];
	char as_of[64];                  /* the time applied, as the database settled it */
	struct feed feed;
	char (*offer)[24];               /* per item: its offer id, "" when unknown */
	size_t known;
	int restarts;
	int i_apply;                     /* the apply's index in its flight */
};

/* The only place a feed changes state; asserts the change is legal. */
static void feed_set_state(struct feed_req *r, enum feed_state to)
{
	static const unsigned legal[FEED_STATE_MAX] = {
		[FEED_ACQUIRE] = 1u << FEED_SUPPLIER,
		[FEED_SUPPLIER] = 1u << FEED_RESOLVE,
		[FEED_RESOLVE] = 1u << FEED_APPLY,
		[FEED_APPLY] = 1u << FEED_APPLY | 1u << FEED_NOTIFY,
		[FEED_NOTIFY] = 0,
	};
	assert(legal[r->state] & (1u << to));
	log_debug("feed state", "request_id=%s from=%s to=%s", r->request_id, feed_state_names[r->state],
	          feed_state_names[to]);
	r->state = to;
}

static void feed_req_free(struct feed_req *r)
{
	if (r->conn)
		db_conn_release(r->conn);
	db_batch_free(r->batch);
	feed_free(&r->feed);
	free(r->offer);
	free(r->body);
	free(r);
}

static void feed_fail_reply(struct feed_req *r, int status, const char *code, const char *message,
                            const char *field)
{
	http_reply_error(r->ctx, status, code, message, field);
	feed_req_free(r);
}

/* A database failure: the connection itself → 503 (retryable), anything
 * else → 500 with the detail in the log only. */
static void feed_db_fail(struct feed_req *r, const char *step)
{
	char q[300];
	const struct db_batch *b = r->batch;
	log_warn("feed database error", "request_id=%s supplier=%s step=%s sqlstate=%s error=%s", r->request_id,
	         r->supplier_code, step, db_batch_sqlstate(b), log_quote(q, sizeof q, db_batch_error(b)));
	if (db_batch_conn_failed(b)) {
		metrics_inc(r->env->metrics, METRICS_DB_UNAVAILABLE);
		http_reply_unavailable(r->ctx, 1);
		feed_req_free(r);
		return;
	}
	feed_fail_reply(r, 500, "internal_error", "the feed could not be applied", NULL);
}

static void feed_on_notified(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct feed_req *r = arg;
	/* Committed and answered already: a lost NOTIFY leaves the work to the re-planners' poll. */
	if (!db_batch_ok(r->batch))
		log_warn("feed: NOTIFY dropship_stock failed", "request_id=%s supplier=%s", r->request_id,
		         r->supplier_code);
	feed_req_free(r);
}

/* The answer: counts, and the SKUs that are not the supplier's offers. */
static json_t *feed_answer(const struct feed_req *r, const struct stock_result *st)
{
	json_t *unknown = json_array();
	for (size_t i = 0; i < r->feed.n && json_array_size(unknown) < FEED_UNKNOWN_SHOWN; i++)
		if (!r->offer || !r->offer[i][0])
			json_array_append_new(unknown, json_string(r->feed.items[i].sku));
	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:o}", "as_of", r->as_of, "items", (json_int_t)r->feed.n,
	                 "applied", (json_int_t)st->applied, "unchanged", (json_int_t)st->unchanged,
	                 "stale", (json_int_t)st->stale, "unknown", (json_int_t)(r->feed.n - r->known),
	                 "unknown_skus", unknown);
}

/* Answers 200 after the COMMIT; then, when SKUs gained stock, wakes the
 * re-planning here and, by NOTIFY, everywhere else. */
static void feed_reply(struct feed_req *r, const struct stock_result *st)
{
	json_t *answer = feed_answer(r, st);
	http_reply_json(r->ctx, 200, answer);
	json_decref(answer);
	r->ctx = NULL;
	log_info("stock feed applied", "request_id=%s supplier=%s as_of=%s items=%zu applied=%lld unchanged=%lld "
	         "stale=%lld unknown=%zu skus=%lld", r->request_id, r->supplier_code, r->as_of, r->feed.n,
	         st->applied, st->unchanged, st->stale, r->feed.n - r->known, st->skus);
	if (st->skus <= 0) {
		feed_req_free(r);
		return;
	}
	if (r->env->stock_ready)
		r->env->stock_ready(r->env->stock_ready_arg);
	feed_set_state(r, FEED_NOTIFY);
	db_batch_reset(r->batch);
	db_batch_add(r->batch, NULL, stock_notify_sql, 0, NULL);
	db_conn_send(r->conn, r->batch, feed_on_notified, r);
}

static void feed_apply(struct feed_req *r);

static int feed_is_retryable(const struct db_batch *b)
{
	const char *st = db_batch_sqlstate(b);
	return strcmp(st, "40P01") == 0 || strcmp(st, "40001") == 0;
}

static void feed_on_applied(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct feed_req *r = arg;
	if (!db_batch_ok(r->batch)) {
		/* Offers are locked in id order, but SKUs waiting (sku_changes) are
		 * not: a deadlock with another writer is possible, and starts over. */
		if (!db_batch_conn_failed(r->batch) && feed_is_retryable(r->batch) &&
		    r->restarts++ < FEED_MAX_RESTARTS) {
			feed_apply(r);
			return;
		}
		feed_db_fail(r, "apply");
		return;
	}
	struct stock_result st;
	if (stock_decode(db_batch_result(r->batch, r->i_apply), &st) < 0) {
		log_error("feed: unexpected result of the stock levels", "request_id=%s", r->request_id);
		feed_fail_reply(r, 500, "internal_error", "the feed could not be applied", NULL);
		return;
	}
	if (st.refused != STOCK_OK) { /* the time grew too old since its check: nothing changed */
		feed_fail_reply(r, 422, "invalid_field", stock_refusal_text(st.refused), "as_of");
		return;
	}
	feed_reply(r, &st);
}

/* One transaction: the offers locked first (under READ COMMITTED the apply
 * then reads every reservation made on them), the levels applied, COMMIT. */
static void feed_apply(struct feed_req *r)
{
	feed_set_state(r, FEED_APPLY);
	struct db_columns c;
	db_columns_init(&c, 7);
	for (size_t i = 0; i < r->feed.n; i++) {
		const struct feed_item *it = &r->feed.items[i];
		if (!r->offer[i][0])
			continue;
		char stock[24], lead[16];
		snprintf(stock, sizeof stock, "%ld", it->stock);
		snprintf(lead, sizeof lead, "%d", it->lead_time_days);
		const char *v[7] = { r->offer[i], stock, NULL, it->cost[0] ? it->cost : NULL,
		                     it->shipping_cost[0] ? it->shipping_cost : NULL,
		                     it->lead_time_days >= 0 ? lead : NULL, it->ships_to };
		db_columns_add(&c, v);
	}
	db_batch_reset(r->batch);
	/* After a deadlock the connection still holds the failed transaction. */
	if (r->restarts)
		db_batch_add(r->batch, NULL, "ROLLBACK", 0, NULL);
	db_batch_add(r->batch, NULL, "BEGIN", 0, NULL);
	const char *lock[1] = { c.col[0].buf };
	db_batch_add(r->batch, "stock_lock", NULL, 1, lock);
	const char *apply[8] = { r->as_of, c.col[0].buf, c.col[1].buf, c.col[2].buf, c.col[3].buf, c.col[4].buf,
	                         c.col[5].buf, c.col[6].buf };
	r->i_apply = db_batch_add(r->batch, "stock_apply", NULL, 8, apply);
	db_batch_add(r->batch, NULL, "COMMIT", 0, NULL);
	db_columns_free(&c);
	db_conn_send(r->conn, r->batch, feed_on_applied, r);
}

static void feed_on_resolved(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct feed_req *r = arg;
	if (!db_batch_ok(r->batch)) {
		feed_db_fail(r, "resolve");
		return;
	}
	const PGresult *chk = db_batch_result(r->batch, 0), *offers = db_batch_result(r->batch, 1);
	if (PQntuples(chk) != 1 || PQnfields(offers) != 2) {
		feed_fail_reply(r, 500, "internal_error", "the feed could not be applied", NULL);
		return;
	}
	if (!PQgetisnull(chk, 0, FEED_CHECK_REFUSED)) {
		enum stock_refusal why = stock_refusal_of(PQgetvalue(chk, 0, FEED_CHECK_REFUSED));
		feed_fail_reply(r, 422, "invalid_field", stock_refusal_text(why), "as_of");
		return;
	}
	snprintf(r->as_of, sizeof r->as_of, "%s", PQgetvalue(chk, 0, FEED_CHECK_AS_OF));
	r->offer = mem_calloc(r->feed.n, sizeof *r->offer);
	for (int row = 0; row < PQntuples(offers); row++) {
		long i = strtol(PQgetvalue(offers, row, FEED_OFFER_INDEX), NULL, 10) - 1;
		if (i < 0 || (size_t)i >= r->feed.n || r->offer[i][0])
			continue;
		snprintf(r->offer[i], sizeof r->offer[i], "%s", PQgetvalue(offers, row, FEED_OFFER_ID));
		r->known++;
	}
	if (r->known == 0) { /* nothing of this supplier's: nothing to write */
		struct stock_result none = { 0 };
		feed_reply(r, &none);
		return;
	}
	feed_apply(r);
}

/* The levels' time checked by the database's clock, and the SKUs made offer ids. */
static void feed_resolve(struct feed_req *r)
{
	feed_set_state(r, FEED_RESOLVE);
	struct db_columns skus;
	db_columns_init(&skus, 1);
	for (size_t i = 0; i < r->feed.n; i++)
		db_columns_add(&skus, &r->feed.items[i].sku);
	db_batch_reset(r->batch);
	const char *chk[1] = { r->feed.as_of };
	db_batch_add(r->batch, "stock_check", NULL, 1, chk);
	const char *v[2] = { r->supplier_id, skus.col[0].buf };
	db_batch_add(r->batch, "feed_offers", NULL, 2, v);
	db_columns_free(&skus);
	db_conn_send(r->conn, r->batch, feed_on_resolved, r);
}

static void feed_on_supplier(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct feed_req *r = arg;
	if (!db_batch_ok(r->batch)) {
		feed_db_fail(r, "supplier");
		return;
	}
	PGresult *res = db_batch_result(r->batch, 0);
	if (PQntuples(res) == 0) {
		feed_fail_reply(r, 404, "unknown_supplier", "no supplier with this code", NULL);
		return;
	}
	snprintf(r->supplier_id, sizeof r->supplier_id, "%s", PQgetvalue(res, 0, FEED_SUPPLIER_ID));
	enum sig_result sr = http_verify_webhook(r->ctx, PQgetvalue(res, 0, FEED_SUPPLIER_SECRETS), r->body,
	                                         r->body_len, NULL);
	if (sr != SIG_OK) {
		http_reply_signature_error(r->ctx, sr, NULL);
		feed_req_free(r);
		return;
	}
	/* Levels are absolute: the first feed after `supplier enable` sets them right. */
	if (strcmp(PQgetvalue(res, 0, FEED_SUPPLIER_ACTIVE), "t") != 0) {
		feed_fail_reply(r, 403, "supplier_disabled",
		                "the supplier is disabled; its stock feeds are refused until it is enabled", NULL);
		return;
	}
	struct feed_error fe;
	if (feed_parse(r->body, r->body_len, &r->feed, &fe) < 0) {
		feed_fail_reply(r, fe.status, fe.code, fe.message, fe.field);
		return;
	}
	feed_resolve(r);
}

static void feed_on_acquire(struct db_conn *conn, void *arg)
{
	struct feed_req *r = arg;
	if (!conn) {
		metrics_inc(r->env->metrics, METRICS_DB_UNAVAILABLE);
		http_reply_unavailable(r->ctx, 1);
		feed_req_free(r);
		return;
	}
	r->conn = conn;
	feed_set_state(r, FEED_SUPPLIER);
	const char *v[1] = { r->supplier_code };
	db_batch_add(r->batch, "feed_supplier", NULL, 1, v);
	db_conn_send(conn, r->batch, feed_on_supplier, r);
}

void feed_handle(struct http_ctx *ctx, const char *supplier_code)
{
	snprintf(ctx->store, sizeof ctx->store, "%s", supplier_code);
	if (!http_is_json(ctx)) {
		http_reply_not_json(ctx);
		return;
	}
	struct feed_req *r = mem_calloc(1, sizeof *r);
	r->state = FEED_ACQUIRE;
	r->ctx = ctx;
	r->env = ctx->env;
	r->batch = db_batch_new();
	r->body = http_body(ctx, &r->body_len);
	snprintf(r->request_id, sizeof r->request_id, "%s", ctx->request_id);
	snprintf(r->supplier_code, sizeof r->supplier_code, "%s", supplier_code);
	db_pool_acquire(r->env->db, feed_on_acquire, r);
}
