/* intake: one storefront webhook delivery, from signature check to COMMIT.
 *
 * Flow (each step runs from the worker's event loop, never blocking it):
 *   ACQUIRE  lease a pool connection (none up → 503 + Retry-After)
 *   STORE    look the store up, verify the signature the way the store's
 *            format (native, Shopify, WooCommerce) signs, parse the order
 *   QUEUED   wait for a group (group commit, below); a cancellation runs
 *            instead in its own transaction on the lookup's connection
 *   GROUPED  the group's transaction: three pipeline flights for all its
 *            orders, each statement set-based (one per kind of row):
 *            BEGIN, the orders already stored, every candidate offer of
 *            the group's SKUs, ids for the new orders; reservation rounds
 *            (one statement each); then orders, requests, lines, decisions
 *            and outbox messages, COMMIT. Each order is answered
 *            from what the transaction wrote, 202 (new) or 200 with
 *            duplicate:true (stored before, or twice in the group).
 * A failure anywhere replies once and changes nothing: the transaction
 * either commits whole or is rolled back by the pool on release. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "intake/intake.h"
#include "log/log.h"
#include "mem/mem.h"
#include "metrics/metrics.h"
#include "order/order.h"
#include "plan/plan.h"
#include "route/route.h"
#include "sig/sig.h"

/* intake_existing's columns. */
enum intake_existing_col {
	INTAKE_EXISTING_INDEX,      /* 1-based position of the key in the statement's arrays */
	INTAKE_EXISTING_ORDER_ID,
	INTAKE_EXISTING_STATUS,
	INTAKE_EXISTING_LINES,      /* jsonb: the answer's lines */
	INTAKE_EXISTING_NCOLS
};

const struct db_stmt_def intake_stmts[] = {
	{ "intake_store",
	  "SELECT id, format, array_to_string(secrets, E'\\n'), policy, split_tolerance_pct, active, "
	  PLAN_TERMS_SQL("stores") " FROM stores WHERE code = $1" },
	/* Orders of these (store, external id) keys that are stored already,
	 * with the lines an answer shows. */
	{ "intake_existing",
	  "SELECT k.i, o.id, o.status,"
	  "   (SELECT coalesce(jsonb_agg(jsonb_build_object('line', l.line_no, 'sku', l.sku,"
	  "       'quantity', l.quantity, 'supplier', s.code, 'status', l.status, 'reason', l.reason)"
	  "       ORDER BY l.line_no), '[]')"
	  "     FROM order_lines l LEFT JOIN suppliers s ON s.id = l.supplier_id"
	  "     WHERE l.store_id = o.store_id AND l.order_id = o.id)"
	  " FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS k(store_id, external_id, i)"
	  " JOIN orders o ON o.store_id = k.store_id AND o.external_id = k.external_id" },
	{ "intake_order_ids",
	  "SELECT nextval('orders_id_seq') FROM generate_series(1, $1::int)" },
	/* New orders with the status routing gave them. An identical delivery
	 * racing in another transaction makes this fail (unique (store_id,
	 * external_id)) once that one commits: the group then starts over and
	 * finds the order stored. */
	{ "intake_orders_insert",
	  "INSERT INTO orders (store_id, id, external_id, status, currency, placed_at, customer_email,"
	  "   customer_name, ship_name, ship_line1, ship_line2, ship_city, ship_region, ship_postal_code,"
	  "   ship_country, ship_phone, raw, webhook_id, name, event_id)"
	  " OVERRIDING SYSTEM VALUE"
	  " SELECT s, i, e, st, c, p::timestamptz, em, cn, n, l1, l2, ci, re, pc, co, ph, r::jsonb, w, na, ev"
	  " FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],"
	  "   $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],"
	  "   $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[], $20::text[])"
	  "   AS t(s, i, e, st, c, p, em, cn, n, l1, l2, ci, re, pc, co, ph, r, w, na, ev)" },
	{ "intake_lines_insert",
	  "INSERT INTO order_lines (store_id, order_id, line_no, sku, quantity, unit_price, title,"
	  "   status, reason, supplier_id, offer_id, reserved, unit_cost, variant_id, requires_shipping,"
	  "   request_id, platform_line_id)"
	  " SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::text[], $5::int[],"
	  "   $6::numeric[], $7::text[], $8::text[], $9::text[], $10::bigint[], $11::bigint[], $12::int[],"
	  "   $13::numeric[], $14::text[], $15::boolean[], $16::uuid[], $17::text[])" },
	/* Cancels the order and its unshipped lines, and gives their reserved
	 * stock back (offers locked in id order, as when reserving). */
	{ "intake_cancel",
	  "WITH o AS ("
	  "  UPDATE orders x SET updated_at = now(),"
	  "    status = CASE WHEN EXISTS (SELECT 1 FROM order_lines s WHERE s.store_id = x.store_id"
	  "        AND s.order_id = x.id AND s.status IN ('shipped', 'delivered'))"
	  "      THEN 'partially_shipped' ELSE 'cancelled' END" /* shipped lines stay shipped */
	  "  WHERE store_id = $1 AND external_id = $2 AND status NOT IN ('cancelled', 'shipped', 'delivered')"
	  "  RETURNING store_id, id),"
	  " l AS MATERIALIZED (SELECT l.store_id, l.order_id, l.line_no, l.offer_id, l.reserved"
	  "  FROM order_lines l JOIN o ON l.store_id = o.store_id AND l.order_id = o.id"
	  "  WHERE l.status NOT IN ('shipped', 'delivered', 'cancelled') FOR UPDATE OF l),"
	  " u AS (UPDATE order_lines x SET status = 'cancelled', reserved = 0 FROM l"
	  "  WHERE x.store_id = l.store_id AND x.order_id = l.order_id AND x.line_no = l.line_no),"
	  " give AS (SELECT offer_id, sum(reserved)::int AS qty FROM l"
	  "  WHERE offer_id IS NOT NULL AND reserved > 0 GROUP BY offer_id),"
	  " locked AS MATERIALIZED (SELECT f.id FROM offers f WHERE f.id IN (SELECT offer_id FROM give)"
	  "  ORDER BY f.id FOR UPDATE),"
	  " back AS (UPDATE offers f SET stock = f.stock + give.qty, updated_at = now() FROM give"
	  " WHERE f.id = give.offer_id AND f.id IN (SELECT id FROM locked) RETURNING f.id, f.sku, give.qty),"
	  /* the stock ledger; and lines waiting for these SKUs get a chance at the stock */
	  " mv AS (INSERT INTO offer_moves (offer_id, delta) SELECT id, qty FROM back)"
	  " INSERT INTO sku_changes (sku) SELECT DISTINCT sku FROM back"
	  " ON CONFLICT (sku) DO UPDATE SET changed_at = now()" },
	/* Each request not yet shipped: never sent → cancelled here, its message
	 * withdrawn; sent or in flight → the supplier is asked to cancel. The
	 * message is found by its request: `state NOT IN (delivered, failed)`
	 * (i.e. pending) is written so that the claim index of every pending
	 * message can never be the plan. */
	{ "intake_cancel_requests",
	  "WITH o AS (SELECT id FROM orders WHERE store_id = $1 AND external_id = $2),"
	  " r AS MATERIALIZED (SELECT r.id, r.status, r.supplier_id FROM fulfillment_requests r"
	  "   JOIN o ON r.store_id = $1 AND r.order_id = o.id"
	  "   WHERE r.status IN ('pending', 'sent', 'accepted') FOR UPDATE OF r),"
	  " unsent AS (UPDATE outbox m SET state = 'failed', last_error = 'order cancelled before sending'"
	  "   FROM r WHERE m.request_id = r.id AND r.status = 'pending' AND m.kind = 'fulfillment.requested'"
	  "     AND m.state NOT IN ('delivered', 'failed') AND m.lease_token IS NULL RETURNING m.request_id),"
	  " done AS (UPDATE fulfillment_requests x SET status = 'cancelled', reason = 'order_cancelled',"
	  "   updated_at = now() FROM unsent WHERE x.id = unsent.request_id RETURNING x.id)"
	  " INSERT INTO outbox (kind, request_id, supplier_id, store_id, idempotency_key, payload)"
	  " SELECT 'fulfillment.cancel_requested', r.id, r.supplier_id, $1, r.id::text || '.cancel',"
	  "   jsonb_build_object('type', 'fulfillment.cancel_requested', 'request_id', r.id,"
	  "     'store', st.code, 'order_id', o.id::text, 'external_order_id', $2::text, 'created_at', now())"
	  " FROM r, o, stores st WHERE st.id = $1 AND r.id NOT IN (SELECT id FROM done)"
	  " ON CONFLICT (idempotency_key) DO NOTHING" },
	{ NULL, NULL },
};

/* Whole-transaction restarts after a deadlock, a serialization failure or
 * an identical delivery stored concurrently. */
#define INTAKE_MAX_RESTARTS 3

enum intake_format_id { INTAKE_NATIVE, INTAKE_SHOPIFY, INTAKE_WOOCOMMERCE };

/* How each store format (stores.format) arrives: its signature header (NULL:
 * Standard Webhooks), topic header, and the delivery and event ids recorded
 * with the order (orders.webhook_id, orders.event_id). */
struct intake_format {
	enum intake_format_id id;
	const char *name;
	const char *sig_header, *topic_header, *delivery_header, *event_header;
};

static const struct intake_format intake_formats[] = {
	{ INTAKE_NATIVE, "native", NULL, NULL, "webhook-id", NULL },
	{ INTAKE_SHOPIFY, "shopify", "X-Shopify-Hmac-Sha256", "X-Shopify-Topic", "X-Shopify-Webhook-Id",
	  "X-Shopify-Event-Id" },
	{ INTAKE_WOOCOMMERCE, "woocommerce", "X-WC-Webhook-Signature", "X-WC-Webhook-Topic",
	  "X-WC-Webhook-Delivery-ID", NULL },
};

enum intake_state {
	INTAKE_ACQUIRE,   /* waiting for a pool connection (store lookup) */
	INTAKE_STORE,     /* store lookup in flight */
	INTAKE_QUEUED,    /* verified and parsed, waiting for its group to start */
	INTAKE_GROUPED,   /* in a group's transaction */
	INTAKE_CANCEL,    /* cancellation + COMMIT + read-back in flight */
};

/* One delivery. Allocated by intake_handle and freed by intake_free;
 * every path replies exactly once (http_reply_* frees ctx). */
struct intake {
	enum intake_state state;
	struct http_ctx *ctx;
	struct db_conn *conn;     /* store lookup and cancellation only */
	struct db_batch *batch;   /* store lookup and cancellation only */
	char *body;
	size_t body_len;
	char store_code[72];
	char store_id[24];
	char order_id[24];
	const struct intake_format *format;
	enum route_policy policy;
	int split_tolerance_pct;
	struct plan_terms terms;      /* the store's penalty and health floors */
	struct order order;
	struct plan plan;             /* routing across reservation rounds, on the group's pool */
	int duplicate;                /* stored before: answered with `answer` */
	struct intake *dup_of;        /* the same order earlier in this group */
	json_t *answer;               /* the body to send after COMMIT */
	struct intake_queue *q;       /* its worker's queue */
	struct intake *next;          /* in the queue */
};

/* Group commit: orders verified on one worker within a short window share
 * one transaction on one connection, so N orders cost 3 flights, a dozen
 * statements and one COMMIT instead of that many per order. Each is
 * answered only after that COMMIT. A group that fails for something other
 * than the connection or a restartable conflict is split: its orders run
 * again one per transaction, so one bad order fails alone. */
#define INTAKE_GROUP_MAX 64

enum intake_group_state {
	GROUP_ACQUIRE,    /* waiting for a pool connection */
	GROUP_BEGIN,      /* BEGIN, stored orders, candidates, new ids in flight */
	GROUP_RESERVE,    /* a stock reservation round in flight */
	GROUP_FINISH,     /* the writes and COMMIT in flight */
};

/* Owns its members until each is answered; freed by intake_group_free. */
struct intake_group {
	enum intake_group_state state;
	struct intake_queue *q;
	struct db_conn *conn;
	struct db_batch *batch;       /* the flight in progress */
	struct db_batch *cand;        /* the BEGIN flight, kept: the pool points into it */
	struct plan_pool pool;        /* every candidate offer of the group */
	struct intake *m[INTAKE_GROUP_MAX];
	size_t n;
	int restarts;
	int i_reserve;                /* the reservation in the current flight */
	int wake;                     /* the transaction queued outbox messages */
};

/* One per worker: orders waiting for a group, and groups running. */
struct intake_queue {
	struct http_env *env;
	struct intake *head, *tail;
	size_t len;
	int running;                  /* groups between acquire and answer */
	struct event *timer;          /* the window */
};

static void intake_free(struct intake *in)
{
	if (in->conn)
		db_conn_release(in->conn);
	db_batch_free(in->batch);
	plan_free(&in->plan);
	order_free(&in->order);
	json_decref(in->answer);
	free(in->body);
	free(in);
}

/* Counts the webhook by its store, once the store is known (an unknown
 * code must not make a series). */
static void intake_count(struct intake *in, enum metrics_intake_outcome o)
{
	if (in->store_id[0])
		metrics_count_intake(in->ctx->env->metrics, in->store_code, o);
}

static void intake_fail(struct intake *in, int status, const char *code, const char *message,
                        const char *field)
{
	intake_count(in, status >= 500 ? METRICS_INTAKE_ERROR : METRICS_INTAKE_REJECTED);
	http_reply_error(in->ctx, status, code, message, field);
	intake_free(in);
}

/* A database failure: the connection itself → 503 (retryable), anything
 * else → 500 with the detail in the log only. */
static void intake_db_fail(struct intake *in, const struct db_batch *b, const char *step)
{
	char qerr[300];
	log_warn("intake database error", "request_id=%s store=%s step=%s sqlstate=%s error=%s",
	         in->ctx->request_id, in->store_code, step, db_batch_sqlstate(b),
	         log_quote(qerr, sizeof qerr, db_batch_error(b)));
	intake_count(in, METRICS_INTAKE_ERROR);
	if (db_batch_conn_failed(b)) {
		metrics_inc(in->ctx->env->metrics, METRICS_DB_UNAVAILABLE);
		http_reply_unavailable(in->ctx, 1);
	} else {
		http_reply_error(in->ctx, 500, "internal_error", "the order could not be stored", NULL);
	}
	intake_free(in);
}

/* Deadlock, serialization failure, or the unique key of an order another
 * transaction stored meanwhile: the whole group can start over. */
static int intake_is_retryable(const struct db_batch *b)
{
	const char *st = db_batch_sqlstate(b);
	return strcmp(st, "40P01") == 0 || strcmp(st, "40001") == 0 || strcmp(st, "23505") == 0;
}

/* 200 and no change: a platform event dropship does not act on (reason:
 * topic, not_paid, unknown_order, ping). */
static void intake_ignored(struct intake *in, const char *reason)
{
	log_info("webhook ignored", "request_id=%s store=%s reason=%s", in->ctx->request_id,
	         in->store_code, reason);
	intake_count(in, METRICS_INTAKE_IGNORED);
	if (in->conn) {
		db_conn_release(in->conn);
		in->conn = NULL;
	}
	json_t *body = json_pack("{s:b, s:s}", "ignored", 1, "reason", reason);
	http_reply_json(in->ctx, 200, body);
	json_decref(body);
	in->ctx = NULL;
	intake_free(in);
}

/* The answer of an order read by intake_existing (row r): order id and
 * status, and the lines as stored. */
static json_t *intake_existing_answer(const PGresult *res, int r)
{
	json_t *lines = json_loads(PQgetvalue(res, r, INTAKE_EXISTING_LINES), 0, NULL);
	/* Order ids are bigint: sent as strings so no client loses precision. */
	return json_pack("{s:s, s:s, s:b, s:o}", "order_id", PQgetvalue(res, r, INTAKE_EXISTING_ORDER_ID),
	                 "status", PQgetvalue(res, r, INTAKE_EXISTING_STATUS), "duplicate", 0,
	                 "lines", lines ? lines : json_array());
}

/* Sends in->answer after COMMIT: 202 for a new order, 200 for a duplicate
 * or a cancellation. Frees in. */
static void intake_reply(struct intake *in)
{
	int created = in->state == INTAKE_GROUPED && !in->duplicate;
	metrics_inc(in->ctx->env->metrics, created ? METRICS_ORDERS_CREATED
	                                   : in->duplicate ? METRICS_ORDERS_DUPLICATE : METRICS_ORDERS_CANCELLED);
	intake_count(in, created ? METRICS_INTAKE_CREATED
	                 : in->duplicate ? METRICS_INTAKE_DUPLICATE : METRICS_INTAKE_CANCELLED);
	json_object_set_new(in->answer, "duplicate", json_boolean(in->duplicate));
	log_info(created ? "order stored" : in->duplicate ? "order duplicate" : "order cancelled",
	         "request_id=%s store=%s order_id=%s status=%s", in->ctx->request_id, in->store_code,
	         json_string_value(json_object_get(in->answer, "order_id")),
	         json_string_value(json_object_get(in->answer, "status")));
	http_reply_json(in->ctx, created ? 202 : 200, in->answer);
	in->ctx = NULL;
	intake_free(in);
}

/* ---- one order's part of its group's flights ---- */

/* Plans a new order on the group's pool. Returns 0, or -1 when routing failed. */
static int intake_plan(struct intake *in, struct plan_pool *pool)
{
	const struct order *o = &in->order;
	plan_free(&in->plan);
	plan_init(&in->plan, pool, o->nitems, o->ship.country, in->policy, in->split_tolerance_pct);
	in->plan.terms = in->terms;
	/* Without an address, only an order that ships nothing can be routed. */
	int ships = 0;
	for (size_t i = 0; i < o->nitems; i++)
		ships |= o->items[i].requires_shipping;
	for (size_t i = 0; i < o->nitems; i++) {
		in->plan.lines[i].sku = o->items[i].sku;
		in->plan.lines[i].quantity = o->items[i].quantity;
		if (!o->items[i].sku)
			plan_settle(&in->plan, i, ROUTE_NO_SKU);
		else if (!o->has_ship && ships)
			plan_settle(&in->plan, i, ROUTE_NO_ADDRESS);
	}
	return plan_route(&in->plan);
}

/* The rows of the group's set-based inserts: plan's, and intake's own
 * orders and lines. */
struct intake_rows {
	struct db_columns orders, lines;
	struct plan_writes plan;
};

/* A new order's rows: the order, its requests, lines and decisions; and
 * its answer. Returns 1 when a line was routed (the dispatcher is to be
 * woken), 0 when none. */
static int intake_add_rows(struct intake *in, struct intake_rows *rows)
{
	const struct order *o = &in->order;
	const struct intake_format *f = in->format;
	struct plan *p = &in->plan;
	size_t routed = plan_routed(p);
	const char *status = routed == o->nitems ? "routed" : routed ? "partially_routed" : "needs_attention";
	struct plan_order po = {
		in->store_id, in->store_code, in->order_id, o->external_id,
		o->ship.name, o->ship.line1, o->ship.line2, o->ship.city, o->ship.region,
		o->ship.postal_code, o->ship.country, o->ship.phone,
	};
	plan_writes_add(&rows->plan, p, &po, 0);
	const char *ov[20] = {
		in->store_id, in->order_id, o->external_id, status, o->currency, o->placed_at, o->email,
		o->customer_name, o->ship.name, o->ship.line1, o->ship.line2, o->ship.city, o->ship.region,
		o->ship.postal_code, o->ship.country, o->ship.phone, in->body,
		http_header(in->ctx, f->delivery_header), o->name,
		f->event_header ? http_header(in->ctx, f->event_header) : NULL,
	};
	db_columns_add(&rows->orders, ov);
	json_t *answer_lines = json_array();
	for (size_t i = 0; i < o->nitems; i++) {
		const struct order_item *it = &o->items[i];
		struct plan_line_result lr;
		plan_line_result(p, i, &lr);
		char line_no[16], qty[16], sid[24], oid[24], reserved[16];
		snprintf(line_no, sizeof line_no, "%d", p->lines[i].line_no);
		snprintf(qty, sizeof qty, "%d", it->quantity);
		snprintf(sid, sizeof sid, "%lld", lr.supplier_id);
		snprintf(oid, sizeof oid, "%lld", lr.offer_id);
		snprintf(reserved, sizeof reserved, "%d", lr.reserved);
		int ok = lr.supplier_code != NULL;
		const char *lv[17] = {
			in->store_id, in->order_id, line_no, it->sku, qty, it->unit_price, it->title, lr.status,
			lr.reason, ok ? sid : NULL, ok ? oid : NULL, reserved, ok ? lr.unit_cost : NULL,
			it->variant_id, it->requires_shipping ? "true" : "false",
			p->lines[i].request_id[0] ? p->lines[i].request_id : NULL, it->line_item_id,
		};
		db_columns_add(&rows->lines, lv);
		json_array_append_new(answer_lines, json_pack("{s:i, s:s?, s:i, s:s?, s:s, s:s?}",
		        "line", p->lines[i].line_no, "sku", it->sku, "quantity", it->quantity,
		        "supplier", lr.supplier_code, "status", lr.status, "reason", lr.reason));
	}
	in->answer = json_pack("{s:s, s:s, s:o}", "order_id", in->order_id, "status", status,
	                       "lines", answer_lines);
	return routed > 0;
}

/* ---- groups ---- */

static void intake_group_begin(struct intake_group *g);
static void intake_queue_flush(struct intake_queue *q);

static void intake_group_free(struct intake_group *g)
{
	struct intake_queue *q = g->q;
	if (g->conn)
		db_conn_release(g->conn);
	db_batch_free(g->batch);
	db_batch_free(g->cand);
	plan_pool_free(&g->pool);
	free(g);
	q->running--;
	/* Nothing else running: orders waiting for the window need not wait. */
	if (q->running == 0 && q->len > 0)
		intake_queue_flush(q);
}

static void intake_group_send(struct intake_group *g, enum intake_group_state state, db_batch_cb cb)
{
	g->state = state;
	db_conn_send(g->conn, g->batch, cb, g);
}

static void intake_group_start(struct intake_queue *q, struct intake *const *members, size_t n);

/* The group's transaction failed. A lost connection fails every order
 * (503, retryable); a deadlock or a concurrent identical order restarts the
 * group; anything else in a group of several splits it so that only the
 * order at fault fails. */
static void intake_group_fail(struct intake_group *g, const char *step)
{
	struct db_batch *b = g->batch;
	if (!db_batch_conn_failed(b) && intake_is_retryable(b) && g->restarts++ < INTAKE_MAX_RESTARTS) {
		intake_group_begin(g);
		return;
	}
	if (!db_batch_conn_failed(b) && g->n > 1) {
		log_info("intake group split", "orders=%zu step=%s sqlstate=%s", g->n, step,
		         db_batch_sqlstate(b));
		for (size_t i = 0; i < g->n; i++)
			intake_group_start(g->q, &g->m[i], 1);
		g->n = 0;
		intake_group_free(g);
		return;
	}
	for (size_t i = 0; i < g->n; i++) {
		struct intake *in = g->m[i];
		const char *state = db_batch_sqlstate(b);
		/* The parser checks placed_at's shape; PostgreSQL still knows
		 * better about dates such as 2026-02-30. */
		if (g->n == 1 && (strcmp(state, "22007") == 0 || strcmp(state, "22008") == 0))
			intake_fail(in, 422, "invalid_field", "is not a valid RFC 3339 timestamp", "order.placed_at");
		else
			intake_db_fail(in, b, step);
	}
	g->n = 0;
	intake_group_free(g);
}

/* A routing failure mid-group: nothing is committed. */
static void intake_group_abort(struct intake_group *g)
{
	for (size_t i = 0; i < g->n; i++)
		intake_fail(g->m[i], 500, "internal_error", "the order could not be routed", NULL);
	g->n = 0;
	intake_group_free(g);
}

/* The group's orders still to be written, in order, as plans on its pool. */
static size_t intake_group_plans(struct intake_group *g, struct plan **plans)
{
	size_t n = 0;
	for (size_t i = 0; i < g->n; i++)
		if (!g->m[i]->duplicate && !g->m[i]->dup_of)
			plans[n++] = &g->m[i]->plan;
	return n;
}

static void intake_group_on_finish(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct intake_group *g = arg;
	if (!db_batch_ok(g->batch)) {
		intake_group_fail(g, "finish");
		return;
	}
	/* The connection goes back before the replies: nothing waits on clients. */
	db_conn_release(g->conn);
	g->conn = NULL;
	struct http_env *env = g->q->env;
	if (g->wake && env->outbox_ready)
		env->outbox_ready(env->outbox_ready_arg);
	for (size_t i = 0; i < g->n; i++) {
		struct intake *in = g->m[i];
		if (in->dup_of) { /* the same order earlier in the group: its answer, as a duplicate */
			in->answer = json_deep_copy(in->dup_of->answer);
			in->duplicate = 1;
		}
	}
	metrics_observe_group(env->metrics, METRICS_GROUP_ORDERS, (long)g->n);
	for (size_t i = 0; i < g->n; i++)
		intake_reply(g->m[i]);
	g->n = 0;
	intake_group_free(g);
}

/* Every new order's rows, set-based: orders, then requests (lines refer
 * to them), lines, decisions, messages; COMMIT. */
static void intake_group_finish(struct intake_group *g)
{
	struct intake_rows rows;
	db_columns_init(&rows.orders, 20);
	db_columns_init(&rows.lines, 17);
	plan_writes_init(&rows.plan);
	int wake = 0;
	for (size_t i = 0; i < g->n; i++)
		if (!g->m[i]->duplicate && !g->m[i]->dup_of)
			wake |= intake_add_rows(g->m[i], &rows);
	db_batch_reset(g->batch);
	if (rows.orders.nrows) {
		db_batch_add_columns(g->batch, "intake_orders_insert", &rows.orders);
		plan_writes_add_requests(&rows.plan, g->batch);
		db_batch_add_columns(g->batch, "intake_lines_insert", &rows.lines);
		plan_writes_add_rest(&rows.plan, g->batch);
	}
	g->wake = wake;
	db_batch_add(g->batch, NULL, "COMMIT", 0, NULL);
	db_columns_free(&rows.orders);
	db_columns_free(&rows.lines);
	plan_writes_free(&rows.plan);
	intake_group_send(g, GROUP_FINISH, intake_group_on_finish);
}

static void intake_group_on_reserve(struct db_conn *conn, struct db_batch *batch, void *arg);

/* A reservation round for everything planned, or the writes when none is left. */
static void intake_group_reserve(struct intake_group *g)
{
	db_batch_reset(g->batch);
	g->i_reserve = plan_pool_add_reserve(&g->pool, g->batch);
	if (g->i_reserve < 0) {
		intake_group_finish(g);
		return;
	}
	intake_group_send(g, GROUP_RESERVE, intake_group_on_reserve);
}

static void intake_group_on_reserve(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct intake_group *g = arg;
	if (!db_batch_ok(g->batch)) {
		intake_group_fail(g, "reserve");
		return;
	}
	struct plan *plans[INTAKE_GROUP_MAX];
	size_t n = intake_group_plans(g, plans);
	if (plan_pool_take_reserve(&g->pool, plans, n, db_batch_result(g->batch, g->i_reserve)) < 0) {
		intake_group_abort(g);
		return;
	}
	intake_group_reserve(g);
}

/* Same store and external id: the same order. */
static int intake_same_order(const struct intake *a, const struct intake *b)
{
	return strcmp(a->store_id, b->store_id) == 0 && strcmp(a->order.external_id, b->order.external_id) == 0;
}

static void intake_group_on_begin(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct intake_group *g = arg;
	if (!db_batch_ok(g->batch)) {
		intake_group_fail(g, "begin");
		return;
	}
	/* Keep this flight's results: the pool points into them. */
	struct db_batch *t = g->cand;
	g->cand = g->batch;
	g->batch = t ? t : db_batch_new();
	int base = g->restarts ? 2 : 1; /* after ROLLBACK and BEGIN */
	const PGresult *existing = db_batch_result(g->cand, base);
	const PGresult *ids = db_batch_result(g->cand, base + 2);
	plan_pool_free(&g->pool);
	if (PQnfields(existing) != INTAKE_EXISTING_NCOLS ||
	    plan_pool_init(&g->pool, db_batch_result(g->cand, base + 1)) < 0) {
		intake_group_abort(g);
		return;
	}
	for (size_t i = 0; i < g->n; i++) {
		struct intake *in = g->m[i];
		in->duplicate = 0;
		in->dup_of = NULL;
		json_decref(in->answer);
		in->answer = NULL;
	}
	for (int r = 0; r < PQntuples(existing); r++) {
		struct intake *in = g->m[strtol(PQgetvalue(existing, r, INTAKE_EXISTING_INDEX), NULL, 10) - 1];
		in->duplicate = 1;
		in->answer = intake_existing_answer(existing, r);
	}
	int next_id = 0;
	for (size_t i = 0; i < g->n; i++) {
		struct intake *in = g->m[i];
		for (size_t j = 0; j < i && !in->duplicate && !in->dup_of; j++)
			if (!g->m[j]->duplicate && !g->m[j]->dup_of && intake_same_order(in, g->m[j]))
				in->dup_of = g->m[j];
		if (in->duplicate || in->dup_of)
			continue;
		snprintf(in->order_id, sizeof in->order_id, "%s", PQgetvalue(ids, next_id++, 0));
		if (intake_plan(in, &g->pool) < 0) {
			intake_group_abort(g);
			return;
		}
	}
	intake_group_reserve(g);
}

/* BEGIN; which orders are stored already; every offer of the group's SKUs;
 * an id for each order that may be new. */
static void intake_group_begin(struct intake_group *g)
{
	struct db_columns keys, skus;
	db_columns_init(&keys, 2);
	db_columns_init(&skus, 1);
	for (size_t i = 0; i < g->n; i++) {
		const struct order *o = &g->m[i]->order;
		const char *k[2] = { g->m[i]->store_id, o->external_id };
		db_columns_add(&keys, k);
		for (size_t j = 0; j < o->nitems; j++)
			if (o->items[j].sku)
				db_columns_add(&skus, &o->items[j].sku);
	}
	char n[16];
	snprintf(n, sizeof n, "%zu", g->n);
	const char *nv[1] = { n };
	db_batch_reset(g->batch);
	/* After a deadlock the connection still holds the failed transaction. */
	if (g->restarts)
		db_batch_add(g->batch, NULL, "ROLLBACK", 0, NULL);
	db_batch_add(g->batch, NULL, "BEGIN", 0, NULL);
	db_batch_add_columns(g->batch, "intake_existing", &keys);
	const char *sku_text = skus.nrows ? skus.col[0].buf : "{}";
	const char *cv[2] = { sku_text, "{}" };
	db_batch_add(g->batch, "plan_candidates", NULL, 2, cv);
	db_batch_add(g->batch, "intake_order_ids", NULL, 1, nv);
	db_columns_free(&keys);
	db_columns_free(&skus);
	intake_group_send(g, GROUP_BEGIN, intake_group_on_begin);
}

static void intake_group_on_acquire(struct db_conn *conn, void *arg)
{
	struct intake_group *g = arg;
	if (!conn) {
		for (size_t i = 0; i < g->n; i++) {
			struct intake *in = g->m[i];
			metrics_inc(in->ctx->env->metrics, METRICS_DB_UNAVAILABLE);
			intake_count(in, METRICS_INTAKE_ERROR);
			http_reply_unavailable(in->ctx, 1);
			in->ctx = NULL;
			intake_free(in);
		}
		g->n = 0;
		intake_group_free(g);
		return;
	}
	g->conn = conn;
	intake_group_begin(g);
}

/* Starts a group of n orders (of queue q) on a connection of q's pool. */
static void intake_group_start(struct intake_queue *q, struct intake *const *members, size_t n)
{
	struct intake_group *g = mem_calloc(1, sizeof *g);
	q->running++;
	g->q = q;
	g->batch = db_batch_new();
	for (size_t i = 0; i < n; i++) {
		g->m[i] = members[i];
		g->m[i]->state = INTAKE_GROUPED;
	}
	g->n = n;
	g->state = GROUP_ACQUIRE;
	db_pool_acquire(q->env->db, intake_group_on_acquire, g);
}

/* Starts groups with every order waiting (at most INTAKE_GROUP_MAX each). */
static void intake_queue_flush(struct intake_queue *q)
{
	evtimer_del(q->timer);
	while (q->head) {
		struct intake *m[INTAKE_GROUP_MAX];
		size_t n = 0;
		while (q->head && n < INTAKE_GROUP_MAX) {
			m[n++] = q->head;
			q->head = q->head->next;
			q->len--;
		}
		if (!q->head)
			q->tail = NULL;
		intake_group_start(q, m, n);
	}
}

static void intake_on_window(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	intake_queue_flush(arg);
}

/* A verified, parsed order waits for its group: at once when nothing else
 * is running on this worker (no wait when idle) or the group is full,
 * else until the window closes. */
static void intake_enqueue(struct intake *in)
{
	struct intake_queue *q = in->q;
	in->state = INTAKE_QUEUED;
	in->next = NULL;
	if (q->tail)
		q->tail->next = in;
	else
		q->head = in;
	q->tail = in;
	q->len++;
	int window_us = q->env->cfg->database.group_commit_us;
	if (q->running == 0 || window_us == 0 || q->len >= INTAKE_GROUP_MAX) {
		intake_queue_flush(q);
		return;
	}
	if (!evtimer_pending(q->timer, NULL)) {
		struct timeval tv = { 0, window_us };
		evtimer_add(q->timer, &tv);
	}
}

/* ---- cancellation: its own transaction ---- */

static void intake_on_cancelled(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct intake *in = arg;
	if (!db_batch_ok(in->batch)) {
		intake_db_fail(in, in->batch, "cancel");
		return;
	}
	db_conn_release(in->conn);
	in->conn = NULL;
	if (in->ctx->env->outbox_ready) /* cancellations to send */
		in->ctx->env->outbox_ready(in->ctx->env->outbox_ready_arg);
	const PGresult *res = db_batch_result(in->batch, 4);
	if (PQntuples(res) == 0) { /* a cancellation for an order we never received */
		/* A platform retries a non-2xx for days, then drops the store's
		 * webhook: an order placed before the store was connected must
		 * not cost it that. */
		if (in->format->id != INTAKE_NATIVE) {
			intake_ignored(in, "unknown_order");
			return;
		}
		intake_fail(in, 404, "not_found", "no order with this id for this store", "order.id");
		return;
	}
	in->answer = intake_existing_answer(res, 0);
	intake_reply(in);
}

static void intake_cancel(struct intake *in)
{
	const char *key[2] = { in->store_id, in->order.external_id };
	struct db_columns keys;
	db_columns_init(&keys, 2);
	db_columns_add(&keys, key);
	db_batch_reset(in->batch);
	db_batch_add(in->batch, NULL, "BEGIN", 0, NULL);
	db_batch_add(in->batch, "intake_cancel", NULL, 2, key);
	db_batch_add(in->batch, "intake_cancel_requests", NULL, 2, key);
	db_batch_add(in->batch, NULL, "COMMIT", 0, NULL);
	/* Read back after COMMIT in the same flight (index 4). */
	db_batch_add_columns(in->batch, "intake_existing", &keys);
	db_columns_free(&keys);
	in->state = INTAKE_CANCEL;
	db_conn_send(in->conn, in->batch, intake_on_cancelled, in);
}

static const struct intake_format *intake_format_find(const char *name)
{
	for (size_t i = 0; i < sizeof intake_formats / sizeof intake_formats[0]; i++)
		if (strcmp(intake_formats[i].name, name) == 0)
			return &intake_formats[i];
	return NULL;
}

static int intake_parse(struct intake *in, struct order_error *oe)
{
	const struct intake_format *f = in->format;
	const char *topic = f->topic_header ? http_header(in->ctx, f->topic_header) : NULL;
	switch (f->id) {
	case INTAKE_SHOPIFY:
		return order_parse_shopify(in->body, in->body_len, topic, &in->order, oe);
	case INTAKE_WOOCOMMERCE:
		return order_parse_woocommerce(in->body, in->body_len, topic, &in->order, oe);
	case INTAKE_NATIVE:
		break;
	}
	return order_parse_native(in->body, in->body_len, &in->order, oe);
}

static void intake_on_store(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct intake *in = arg;
	if (!db_batch_ok(in->batch)) {
		intake_db_fail(in, in->batch, "store");
		return;
	}
	PGresult *res = db_batch_result(in->batch, 0);
	if (PQntuples(res) == 0) {
		intake_fail(in, 404, "unknown_store", "no store with this code", NULL);
		return;
	}
	snprintf(in->store_id, sizeof in->store_id, "%s", PQgetvalue(res, 0, 0));
	in->format = intake_format_find(PQgetvalue(res, 0, 1));
	if (!in->format) {
		intake_fail(in, 500, "internal_error", "the store's format is unknown", NULL);
		return;
	}
	/* WooCommerce checks a new webhook's URL with an unsigned form post. */
	if (in->format->id == INTAKE_WOOCOMMERCE && order_is_woocommerce_ping(in->body, in->body_len)) {
		intake_ignored(in, "ping");
		return;
	}
	if (!http_is_json(in->ctx)) {
		intake_count(in, METRICS_INTAKE_REJECTED);
		http_reply_not_json(in->ctx);
		intake_free(in);
		return;
	}

	enum sig_result sr = http_verify_webhook(in->ctx, PQgetvalue(res, 0, 2), in->body, in->body_len,
	                                         in->format->sig_header);
	if (sr != SIG_OK) {
		intake_count(in, METRICS_INTAKE_REJECTED);
		http_reply_signature_error(in->ctx, sr, in->format->sig_header);
		intake_free(in);
		return;
	}

	struct order_error oe;
	if (intake_parse(in, &oe) < 0) {
		intake_fail(in, strcmp(oe.code, "invalid_json") == 0 ? 400 : 422, oe.code, oe.message, oe.field);
		return;
	}
	if (in->order.event == ORDER_EVENT_IGNORED) {
		intake_ignored(in, in->order.ignored);
		return;
	}
	/* A disabled store's new orders are refused; a cancellation still
	 * stops what its orders already asked of suppliers. */
	if (strcmp(PQgetvalue(res, 0, 5), "t") != 0 && in->order.event != ORDER_EVENT_CANCELLED) {
		intake_fail(in, 403, "store_disabled", "the store is disabled; its orders are refused until it is "
		            "enabled", NULL);
		return;
	}
	if (in->order.event == ORDER_EVENT_CANCELLED) {
		intake_cancel(in);
		return;
	}
	if (route_policy_parse(PQgetvalue(res, 0, 3), &in->policy) < 0)
		in->policy = ROUTE_CHEAPEST;
	in->split_tolerance_pct = (int)strtol(PQgetvalue(res, 0, 4), NULL, 10);
	in->terms = plan_terms_parse(PQgetvalue(res, 0, 6), PQgetvalue(res, 0, 7), PQgetvalue(res, 0, 8));
	/* The lookup's connection goes back: the order's group leases its own. */
	db_conn_release(in->conn);
	in->conn = NULL;
	intake_enqueue(in);
}

static void intake_on_acquire(struct db_conn *conn, void *arg)
{
	struct intake *in = arg;
	if (!conn) {
		metrics_inc(in->ctx->env->metrics, METRICS_DB_UNAVAILABLE);
		http_reply_unavailable(in->ctx, 1);
		in->ctx = NULL;
		intake_free(in);
		return;
	}
	in->conn = conn;
	in->state = INTAKE_STORE;
	const char *v[1] = { in->store_code };
	db_batch_add(in->batch, "intake_store", NULL, 1, v);
	db_conn_send(conn, in->batch, intake_on_store, in);
}

struct intake_queue *intake_queue_new(struct http_env *env)
{
	struct intake_queue *q = mem_calloc(1, sizeof *q);
	q->env = env;
	q->timer = evtimer_new(env->base, intake_on_window, q);
	return q;
}

void intake_queue_free(struct intake_queue *q)
{
	if (!q)
		return;
	event_free(q->timer);
	free(q);
}

void intake_handle(struct intake_queue *q, struct http_ctx *ctx, const char *store_code)
{
	struct intake *in = mem_calloc(1, sizeof *in);
	in->ctx = ctx;
	in->q = q;
	in->batch = db_batch_new();
	in->body = http_body(ctx, &in->body_len);
	snprintf(in->store_code, sizeof in->store_code, "%s", store_code);
	in->state = INTAKE_ACQUIRE;
	db_pool_acquire(q->env->db, intake_on_acquire, in);
}
