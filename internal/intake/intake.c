/* intake: one storefront webhook delivery, from signature check to COMMIT.
 *
 * Flow (each step runs from the worker's event loop, never blocking it):
 *   ACQUIRE  lease a pool connection (none up → 503 + Retry-After)
 *   STORE    look the store up, verify the signature, parse the order
 *   WRITE    one pipeline flight: BEGIN; insert order + lines (ON CONFLICT
 *            DO NOTHING); COMMIT; read the order back; then answer 202
 *            (new) or 200 duplicate:true (someone else's insert won).
 * A failure anywhere replies once and changes nothing: the transaction
 * either commits whole or is rolled back by the pool on release. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "intake/intake.h"
#include "log/log.h"
#include "order/order.h"
#include "server/server.h"
#include "sig/sig.h"

/* Secrets per store (stores.secrets is capped at 8 by the schema). */
#define INTAKE_MAX_SECRETS 8

const struct db_stmt_def intake_stmts[] = {
	{ "intake_store",
	  "SELECT id, format, array_to_string(secrets, E'\\n') FROM stores WHERE code = $1" },
	/* The order and its lines in one statement; a redelivery (or a racing
	 * identical delivery) inserts nothing and returns no row. */
	{ "intake_create",
	  "WITH o AS ("
	  " INSERT INTO orders (store_id, external_id, currency, placed_at, customer_email,"
	  "   customer_name, ship_name, ship_line1, ship_line2, ship_city, ship_region,"
	  "   ship_postal_code, ship_country, ship_phone, raw, webhook_id)"
	  " VALUES ($1, $2, $3, $4::timestamptz, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
	  "   $15::jsonb, $16)"
	  " ON CONFLICT (store_id, external_id) DO NOTHING"
	  " RETURNING store_id, id), "
	  "l AS ("
	  " INSERT INTO order_lines (store_id, order_id, line_no, sku, quantity, unit_price, title)"
	  " SELECT o.store_id, o.id, i.n, i.e->>'sku', (i.e->>'quantity')::int,"
	  "   (i.e->>'unit_price')::numeric, i.e->>'title'"
	  " FROM o, jsonb_array_elements($17::jsonb) WITH ORDINALITY AS i(e, n)"
	  " RETURNING line_no) "
	  "SELECT o.id, (SELECT count(*) FROM l) FROM o" },
	{ "intake_cancel",
	  "WITH o AS ("
	  " UPDATE orders SET status = 'cancelled', updated_at = now()"
	  " WHERE store_id = $1 AND external_id = $2 AND status <> 'cancelled'"
	  " RETURNING store_id, id) "
	  "UPDATE order_lines l SET status = 'cancelled' FROM o"
	  " WHERE l.store_id = o.store_id AND l.order_id = o.id"
	  "   AND l.status NOT IN ('shipped', 'delivered')" },
	{ "intake_order",
	  "SELECT id, status FROM orders WHERE store_id = $1 AND external_id = $2" },
	{ "intake_lines",
	  "SELECT l.line_no, l.sku, l.quantity, l.status, l.reason"
	  " FROM orders o JOIN order_lines l ON l.store_id = o.store_id AND l.order_id = o.id"
	  " WHERE o.store_id = $1 AND o.external_id = $2 ORDER BY l.line_no" },
	{ NULL, NULL },
};

enum intake_state {
	INTAKE_ACQUIRE,
	INTAKE_STORE,
	INTAKE_WRITE,
};

/* One delivery. Allocated by intake_handle, freed by intake_finish, which
 * also replies (http_reply_* frees ctx). */
struct intake {
	enum intake_state state;
	struct http_ctx *ctx;
	struct db_conn *conn;
	struct db_batch *batch;
	char *body;
	size_t body_len;
	char store_code[72];
	char store_id[24];
	struct order order;
	/* Indexes of the WRITE batch's statements. */
	int i_write, i_order, i_lines;
};

static void intake_free(struct intake *in)
{
	if (in->conn)
		db_conn_release(in->conn);
	db_batch_free(in->batch);
	order_free(&in->order);
	free(in->body);
	free(in);
}

static void intake_fail(struct intake *in, int status, const char *code, const char *message,
                        const char *field)
{
	http_reply_error(in->ctx, status, code, message, field);
	intake_free(in);
}

/* A database failure: the connection itself → 503 (retryable), anything
 * else → 500 with the detail in the log only. */
static void intake_db_fail(struct intake *in, const char *step)
{
	struct server_worker *w = in->ctx->worker;
	char qerr[300];
	log_warn("intake database error", "request_id=%s store=%s step=%s sqlstate=%s error=%s",
	         in->ctx->request_id, in->store_code, step, db_batch_sqlstate(in->batch),
	         log_quote(qerr, sizeof qerr, db_batch_error(in->batch)));
	if (db_batch_conn_failed(in->batch)) {
		atomic_fetch_add(&w->metrics.db_unavailable, 1);
		http_reply_unavailable(in->ctx, 1);
	} else {
		http_reply_error(in->ctx, 500, "internal_error", "the order could not be stored", NULL);
	}
	intake_free(in);
}

static const char *intake_sig_code(enum sig_result r, const char **message)
{
	switch (r) {
	case SIG_MISSING:
		*message = "webhook-id, webhook-timestamp and webhook-signature headers are required";
		return "missing_signature";
	case SIG_STALE:
		*message = "webhook-timestamp is more than 300 seconds from now";
		return "stale_timestamp";
	default:
		*message = "no signature matches the store's secret";
		return "invalid_signature";
	}
}

/* Integers read back from PostgreSQL's text format (int4 columns). */
static int intake_int(const char *text)
{
	return (int)strtol(text, NULL, 10);
}

/* Builds the response from the order and lines read back after COMMIT. */
static json_t *intake_response(PGresult *order, PGresult *lines, int duplicate)
{
	json_t *arr = json_array();
	for (int r = 0; r < PQntuples(lines); r++) {
		json_t *reason = PQgetisnull(lines, r, 4) ? json_null() : json_string(PQgetvalue(lines, r, 4));
		json_array_append_new(arr, json_pack("{s:i, s:s, s:i, s:n, s:s, s:o}",
		        "line", intake_int(PQgetvalue(lines, r, 0)),
		        "sku", PQgetvalue(lines, r, 1),
		        "quantity", intake_int(PQgetvalue(lines, r, 2)),
		        "supplier",
		        "status", PQgetvalue(lines, r, 3),
		        "reason", reason));
	}
	/* Order ids are bigint: sent as strings so no client loses precision. */
	return json_pack("{s:s, s:s, s:b, s:o}", "order_id", PQgetvalue(order, 0, 0),
	                 "status", PQgetvalue(order, 0, 1), "duplicate", duplicate, "lines", arr);
}

static void intake_on_write(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct intake *in = arg;
	struct server_worker *w = in->ctx->worker;
	if (!db_batch_ok(in->batch)) {
		const char *state = db_batch_sqlstate(in->batch);
		/* The parser checks placed_at's shape; PostgreSQL still knows
		 * better about dates such as 2026-02-30. */
		if (strcmp(state, "22007") == 0 || strcmp(state, "22008") == 0)
			return intake_fail(in, 422, "invalid_field", "is not a valid RFC 3339 timestamp",
			                   "order.placed_at");
		return intake_db_fail(in, "write");
	}
	PGresult *order = db_batch_result(in->batch, in->i_order);
	PGresult *lines = db_batch_result(in->batch, in->i_lines);
	if (PQntuples(order) == 0) /* a cancellation for an order we never received */
		return intake_fail(in, 404, "not_found", "no order with this id for this store", "order.id");

	int status, duplicate = 0;
	if (in->order.event == ORDER_EVENT_CREATED) {
		duplicate = PQntuples(db_batch_result(in->batch, in->i_write)) == 0;
		status = duplicate ? 200 : 202;
		atomic_fetch_add(duplicate ? &w->metrics.orders_duplicate : &w->metrics.orders_created, 1);
	} else {
		status = 200;
		atomic_fetch_add(&w->metrics.orders_cancelled, 1);
	}
	json_t *body = intake_response(order, lines, duplicate);
	log_info(duplicate ? "order duplicate" : "order stored",
	         "request_id=%s store=%s order_id=%s event=%s",
	         in->ctx->request_id, in->store_code, PQgetvalue(order, 0, 0),
	         in->order.event == ORDER_EVENT_CREATED ? "created" : "cancelled");
	/* The connection goes back before the reply: nothing waits on the client. */
	db_conn_release(in->conn);
	in->conn = NULL;
	http_reply_json(in->ctx, status, body);
	json_decref(body);
	in->ctx = NULL;
	intake_free(in);
}

/* The lines as one JSON array parameter, unpacked by the insert itself:
 * one statement whatever the number of lines. */
static char *intake_items_json(const struct order *o)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < o->nitems; i++) {
		const struct order_item *it = &o->items[i];
		json_t *e = json_pack("{s:s, s:i}", "sku", it->sku, "quantity", it->quantity);
		if (it->unit_price)
			json_object_set_new(e, "unit_price", json_string(it->unit_price));
		if (it->title)
			json_object_set_new(e, "title", json_string(it->title));
		json_array_append_new(arr, e);
	}
	char *text = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	return text;
}

static void intake_write(struct intake *in)
{
	const struct order *o = &in->order;
	const char *key[2] = { in->store_id, o->external_id };
	db_batch_reset(in->batch);
	db_batch_add(in->batch, NULL, "BEGIN", 0, NULL);
	if (o->event == ORDER_EVENT_CREATED) {
		char *items = intake_items_json(o);
		if (!items)
			return intake_fail(in, 500, "internal_error", "out of memory", NULL);
		const char *webhook_id = http_header(in->ctx, "webhook-id");
		const char *v[17] = {
			in->store_id, o->external_id, o->currency, o->placed_at, o->email,
			o->customer_name, o->ship.name, o->ship.line1, o->ship.line2, o->ship.city,
			o->ship.region, o->ship.postal_code, o->ship.country, o->ship.phone,
			in->body, webhook_id, items,
		};
		in->i_write = db_batch_add(in->batch, "intake_create", NULL, 17, v);
		free(items);
	} else {
		in->i_write = db_batch_add(in->batch, "intake_cancel", NULL, 2, key);
	}
	db_batch_add(in->batch, NULL, "COMMIT", 0, NULL);
	/* Read back after COMMIT in the same flight: sees our row, or the
	 * committed row of the delivery that won the race. */
	in->i_order = db_batch_add(in->batch, "intake_order", NULL, 2, key);
	in->i_lines = db_batch_add(in->batch, "intake_lines", NULL, 2, key);
	in->state = INTAKE_WRITE;
	db_conn_send(in->conn, in->batch, intake_on_write, in);
}

/* Splits the newline-joined secrets in place. */
static size_t intake_split_secrets(char *joined, const char **out, size_t cap)
{
	size_t n = 0;
	for (char *s = joined; s && *s && n < cap;) {
		out[n++] = s;
		char *nl = strchr(s, '\n');
		if (!nl)
			break;
		*nl = '\0';
		s = nl + 1;
	}
	return n;
}

static void intake_on_store(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct intake *in = arg;
	if (!db_batch_ok(in->batch))
		return intake_db_fail(in, "store");
	PGresult *res = db_batch_result(in->batch, 0);
	if (PQntuples(res) == 0)
		return intake_fail(in, 404, "unknown_store", "no store with this code", NULL);
	snprintf(in->store_id, sizeof in->store_id, "%s", PQgetvalue(res, 0, 0));
	if (strcmp(PQgetvalue(res, 0, 1), "native") != 0)
		return intake_fail(in, 501, "not_implemented",
		                   "this store's webhook format is not supported yet", NULL);

	const char *secrets[INTAKE_MAX_SECRETS];
	size_t nsecrets = intake_split_secrets(PQgetvalue(res, 0, 2), secrets, INTAKE_MAX_SECRETS);
	enum sig_result sr = sig_verify_standard(secrets, nsecrets, http_header(in->ctx, "webhook-id"),
	                                         http_header(in->ctx, "webhook-timestamp"),
	                                         http_header(in->ctx, "webhook-signature"),
	                                         in->body, in->body_len, (int64_t)time(NULL),
	                                         SIG_TOLERANCE_S);
	if (sr != SIG_OK) {
		const char *message;
		const char *code = intake_sig_code(sr, &message);
		return intake_fail(in, 401, code, message, NULL);
	}

	struct order_error oe;
	if (order_parse_native(in->body, in->body_len, &in->order, &oe) < 0) {
		int status = strcmp(oe.code, "invalid_json") == 0    ? 400
		             : strcmp(oe.code, "invalid_field") == 0 ? 422
		                                                     : 500;
		return intake_fail(in, status, oe.code, oe.message, oe.field);
	}
	intake_write(in);
}

static void intake_on_acquire(struct db_conn *conn, void *arg)
{
	struct intake *in = arg;
	if (!conn) {
		atomic_fetch_add(&in->ctx->worker->metrics.db_unavailable, 1);
		http_reply_unavailable(in->ctx, 1);
		in->ctx = NULL;
		return intake_free(in);
	}
	in->conn = conn;
	in->state = INTAKE_STORE;
	const char *v[1] = { in->store_code };
	db_batch_add(in->batch, "intake_store", NULL, 1, v);
	db_conn_send(conn, in->batch, intake_on_store, in);
}

static int intake_is_json(const char *ctype)
{
	if (!ctype)
		return 0;
	size_t n = strlen("application/json");
	/* Parameters such as "; charset=utf-8" are fine. */
	return strncasecmp(ctype, "application/json", n) == 0 &&
	       (ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' ');
}

void intake_handle(struct http_ctx *ctx, const char *store_code)
{
	if (!intake_is_json(http_header(ctx, "Content-Type"))) {
		http_reply_error(ctx, 415, "unsupported_media_type", "Content-Type must be application/json", NULL);
		return;
	}
	struct intake *in = calloc(1, sizeof *in);
	if (in) {
		in->ctx = ctx;
		in->batch = db_batch_new();
		in->body = http_body(ctx, &in->body_len);
	}
	if (!in || !in->batch || !in->body) {
		if (in) {
			in->ctx = NULL;
			intake_free(in);
		}
		http_reply_error(ctx, 500, "internal_error", "out of memory", NULL);
		return;
	}
	snprintf(in->store_code, sizeof in->store_code, "%s", store_code);
	in->state = INTAKE_ACQUIRE;
	db_pool_acquire(ctx->worker->db, intake_on_acquire, in);
}
