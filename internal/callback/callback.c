/* callback: supplier callbacks (and missed deadlines) applied to their
 * fulfillment requests, answered only after COMMIT.
 *
 * A delivery first goes alone: ACQUIRE a connection, SUPPLIER lookup,
 * signature check, body parse. Then it waits in its worker's queue, and
 * the callbacks that arrive together share one transaction (a group), as
 * orders do at intake. A group's flights, each statement set-based:
 *   LOCK     BEGIN; lock every request of the group (in id order) and read
 *            what the decisions need (callback_decode_locked);
 *   decide   lifecycle_decide for each callback: pure;
 *   APPLY    the events (requests, audit rows, lines, stock given back),
 *            and, when some are rejections, every offer their lines may be
 *            routed to; then reservation rounds (RESERVE) for those lines;
 *   FINISH   re-routed lines with their requests and messages, the orders'
 *            statuses, store notifications, COMMIT.
 * Repeats and refusals change nothing and are answered after the COMMIT
 * like the rest. A callback for a request that another one of the group
 * already touches (or reusing its delivery id) waits for the next group.
 * Every path replies exactly once; a deadline (no HTTP request) calls its
 * done() instead. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callback/callback.h"
#include "config/config.h"
#include "lifecycle/lifecycle.h"
#include "log/log.h"
#include "mem/mem.h"
#include "metrics/metrics.h"
#include "plan/plan.h"
#include "route/route.h"
#include "sig/sig.h"

/* callback_lock's columns; callback_decode_locked reads them. */
enum callback_lock_col {
	CALLBACK_LOCK_INDEX,         /* 1-based position of the request in the statement's arrays */
	CALLBACK_LOCK_STATUS,
	CALLBACK_LOCK_SUPPLIER_ID,
	CALLBACK_LOCK_STORE_ID,
	CALLBACK_LOCK_ORDER_ID,
	CALLBACK_LOCK_SEEN,          /* this delivery was applied before */
	CALLBACK_LOCK_LINES,         /* jsonb: [{"line","sku","quantity"}] of lines still routed */
	CALLBACK_LOCK_COUNTRY,       /* the order's ship-to country; NULL none */
	CALLBACK_LOCK_POLICY,        /* the store's routing policy */
	CALLBACK_LOCK_TOLERANCE,     /* the store's split tolerance, percent */
	CALLBACK_LOCK_REJECTED,      /* jsonb: ids of suppliers that rejected this order */
	CALLBACK_LOCK_STORE_CODE,
	CALLBACK_LOCK_EXTERNAL_ID,
	CALLBACK_LOCK_SHIP_NAME,     /* ... through CALLBACK_LOCK_SHIP_PHONE: where the order ships */
	CALLBACK_LOCK_SHIP_LINE1,
	CALLBACK_LOCK_SHIP_LINE2,
	CALLBACK_LOCK_SHIP_CITY,
	CALLBACK_LOCK_SHIP_REGION,
	CALLBACK_LOCK_SHIP_POSTAL_CODE,
	CALLBACK_LOCK_SHIP_PHONE,
	CALLBACK_LOCK_PENALTY,       /* ... through CALLBACK_LOCK_MIN_ON_TIME: PLAN_TERMS_SQL */
	CALLBACK_LOCK_MIN_ACCEPT,
	CALLBACK_LOCK_MIN_ON_TIME,
	CALLBACK_LOCK_NCOLS
};

/* plan_order_status's result columns. */
enum callback_status_col { CALLBACK_STATUS_STORE_ID, CALLBACK_STATUS_ORDER_ID, CALLBACK_STATUS_STATUS };

const struct db_stmt_def callback_stmts[] = {
	{ "callback_supplier",
	  "SELECT id, array_to_string(secrets, E'\\n') FROM suppliers WHERE code = $1" },
	/* The group's requests, locked in id order for the decisions, with all
	 * a decision and a re-route need: whether the delivery was seen, the
	 * lines still open, where the order goes, the store's policy, who
	 * rejected the order already. Arrays: request id, supplier id,
	 * delivery id. */
	{ "callback_lock",
	  "SELECT k.i, r.status, r.supplier_id, r.store_id, r.order_id,"
	  "   EXISTS (SELECT 1 FROM request_events e WHERE e.supplier_id = k.s AND e.webhook_id = k.w),"
	  "   (SELECT coalesce(jsonb_agg(jsonb_build_object('line', l.line_no, 'sku', l.sku,"
	  "       'quantity', l.quantity) ORDER BY l.line_no), '[]') FROM order_lines l"
	  "     WHERE l.request_id = r.id AND l.status = 'routed'),"
	  "   o.ship_country, st.policy, st.split_tolerance_pct,"
	  "   (SELECT coalesce(jsonb_agg(DISTINCT x.supplier_id), '[]') FROM fulfillment_requests x"
	  "     WHERE x.store_id = r.store_id AND x.order_id = r.order_id AND x.status = 'rejected'),"
	  "   st.code, o.external_id, o.ship_name, o.ship_line1, o.ship_line2, o.ship_city, o.ship_region,"
	  "   o.ship_postal_code, o.ship_phone, " PLAN_TERMS_SQL("st")
	  " FROM unnest($1::uuid[], $2::bigint[], $3::text[]) WITH ORDINALITY AS k(id, s, w, i)"
	  "   JOIN fulfillment_requests r ON r.id = k.id"
	  "   JOIN orders o ON o.store_id = r.store_id AND o.id = r.order_id"
	  "   JOIN stores st ON st.id = r.store_id"
	  " ORDER BY r.id FOR UPDATE OF r" },
	/* The events, one row each (requests distinct): request state and
	 * tracking, the audit row, the lines, and for a rejection, failure or
	 * cancellation the reserved stock of the lines not shipped given back
	 * (offers locked in id order, as plan reserves them); a rejection for
	 * out_of_stock or cannot_ship makes the offer unavailable. A shipment
	 * covers the lines it lists, or all not shipped yet. */
	{ "callback_apply",
	  "WITH u AS (SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[],"
	  "     $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],"
	  "     $13::text[]) AS t(rid, sid, wid, typ, from_s, to_s, occurred, payload, carrier, num, url,"
	  "     reason, items)),"
	  " r AS (UPDATE fulfillment_requests f SET status = u.to_s, reason = coalesce(u.reason, f.reason),"
	  "     carrier = coalesce(u.carrier, f.carrier), tracking_number = coalesce(u.num, f.tracking_number),"
	  "     tracking_url = coalesce(u.url, f.tracking_url), updated_at = now()"
	  "   FROM u WHERE f.id = u.rid),"
	  " e AS (INSERT INTO request_events (request_id, supplier_id, webhook_id, type, from_status,"
	  "     to_status, occurred_at, payload)"
	  "   SELECT rid, sid, wid, typ, from_s, to_s, occurred::timestamptz, payload::jsonb FROM u),"
	  " l AS MATERIALIZED (SELECT x.store_id, x.order_id, x.line_no, x.offer_id, x.reserved,"
	  "     x.status AS was, u.typ, u.to_s, u.reason, u.carrier, u.num, u.url,"
	  "     CASE WHEN u.typ <> 'fulfillment.shipped' THEN false"
	  "       WHEN u.items IS NULL THEN x.status = 'routed'"
	  "       ELSE x.line_no = ANY (u.items::int[]) END AS ships"
	  "   FROM u JOIN order_lines x ON x.request_id = u.rid"
	  "   WHERE x.status IN ('routed', 'shipped') FOR UPDATE OF x),"
	  " lu AS (UPDATE order_lines x SET"
	  "     status = CASE WHEN l.ships THEN 'shipped' WHEN l.to_s = 'delivered' THEN 'delivered'"
	  "       WHEN l.was = 'shipped' THEN l.was WHEN l.to_s IN ('rejected', 'failed') THEN 'unroutable'"
	  "       WHEN l.to_s = 'cancelled' THEN 'cancelled' ELSE l.was END,"
	  "     carrier = CASE WHEN l.ships THEN l.carrier ELSE x.carrier END,"
	  "     tracking_number = CASE WHEN l.ships THEN l.num ELSE x.tracking_number END,"
	  "     tracking_url = CASE WHEN l.ships THEN l.url ELSE x.tracking_url END,"
	  "     reason = CASE WHEN l.was <> 'routed' THEN x.reason WHEN l.to_s = 'rejected' THEN 'rejected'"
	  "       WHEN l.to_s = 'failed' THEN 'delivery_failed' ELSE x.reason END,"
	  "     reserved = CASE WHEN l.to_s IN ('rejected', 'cancelled', 'failed') AND l.was = 'routed' THEN 0"
	  "       ELSE x.reserved END"
	  "   FROM l WHERE x.store_id = l.store_id AND x.order_id = l.order_id AND x.line_no = l.line_no),"
	  " give AS (SELECT offer_id, sum(reserved)::int AS qty,"
	  "     bool_or(to_s = 'rejected' AND reason IN ('out_of_stock', 'cannot_ship')) AS gone FROM l"
	  "   WHERE to_s IN ('rejected', 'cancelled', 'failed') AND was = 'routed' AND offer_id IS NOT NULL"
	  "   GROUP BY offer_id),"
	  " locked AS MATERIALIZED (SELECT f.id FROM offers f WHERE f.id IN (SELECT offer_id FROM give)"
	  "   ORDER BY f.id FOR UPDATE),"
	  " back AS (UPDATE offers f SET stock = f.stock + give.qty, updated_at = now(),"
	  "   available = f.available AND NOT give.gone"
	  " FROM give WHERE f.id = give.offer_id AND f.id IN (SELECT id FROM locked)"
	  " RETURNING f.id, f.sku, give.qty, f.available),"
	  /* the stock ledger; and lines waiting for these SKUs get a chance at the stock */
	  " mv AS (INSERT INTO offer_moves (offer_id, delta) SELECT id, qty FROM back)"
	  " INSERT INTO sku_changes (sku) SELECT DISTINCT sku FROM back WHERE available"
	  " ON CONFLICT (sku) DO UPDATE SET changed_at = now()" },
	/* Store notifications, when the store has a callback URL: each at most
	 * once (the idempotency key is unique). Arrays: store id, order id,
	 * request id, what happened (shipped, or the request's new state),
	 * delivery id. */
	{ "callback_notify_store",
	  "INSERT INTO outbox (kind, store_id, idempotency_key, payload)"
	  " SELECT k.kind, u.s, k.key, order_notice(k.kind, o.store_id, o.id, r.id)"
	  " FROM unnest($1::bigint[], $2::bigint[], $3::uuid[], $4::text[], $5::text[]) AS u(s, o, rid, what, wid)"
	  "   JOIN orders o ON o.store_id = u.s AND o.id = u.o JOIN stores st ON st.id = o.store_id"
	  "   JOIN fulfillment_requests r ON r.id = u.rid,"
	  "   LATERAL (VALUES ('order.shipped', r.id::text || '.shipped.' || u.wid, u.what = 'shipped'),"
	  "     ('order.delivered', 'order-' || o.id || '.delivered', o.status = 'delivered'),"
	  "     ('order.needs_attention', 'order-' || o.id || '.needs_attention',"
	  "       o.status = 'needs_attention')) AS k(kind, key, due)"
	  " WHERE st.callback_url IS NOT NULL AND k.due"
	  " ON CONFLICT (idempotency_key) DO NOTHING" },
	/* The store's platform is told of each parcel (docs/storefronts.md,
	 * Shipments): a platform.fulfillment per shipped callback, with the
	 * lines it shipped and their tracking; for a WooCommerce store whose
	 * order is now shipped, one platform.completed. Only for stores with a
	 * platform_url. Run after the orders' statuses. Arrays: store id, order
	 * id, request id, delivery id, the parcel's line numbers ('{1,2}'). */
	{ "callback_notify_platform",
	  "WITH p AS (SELECT u.*, o.external_id, o.status, st.code, st.format, st.platform_notify"
	  "   FROM unnest($1::bigint[], $2::bigint[], $3::uuid[], $4::text[], $5::text[]) AS u(s, o, rid, wid, lines)"
	  "   JOIN orders o ON o.store_id = u.s AND o.id = u.o JOIN stores st ON st.id = u.s"
	  "   WHERE st.platform_url IS NOT NULL AND st.format IN ('shopify', 'woocommerce')),"
	  " f AS (INSERT INTO outbox (kind, request_id, store_id, idempotency_key, payload)"
	  "   SELECT 'platform.fulfillment', p.rid, p.s, p.rid::text || '.platform.' || p.wid,"
	  "     jsonb_build_object('type', 'platform.fulfillment', 'platform', p.format, 'store', p.code,"
	  "       'order_id', p.o::text, 'external_order_id', p.external_id, 'request_id', p.rid,"
	  "       'tracking', (SELECT jsonb_build_object('carrier', l.carrier, 'number', l.tracking_number,"
	  "           'url', l.tracking_url) FROM order_lines l"
	  "         WHERE l.store_id = p.s AND l.order_id = p.o AND l.line_no = (p.lines::int[])[1]),"
	  "       'notify_customer', p.platform_notify,"
	  "       'lines', (SELECT jsonb_agg(jsonb_build_object('line', l.line_no, 'line_item_id', l.platform_line_id,"
	  "           'sku', l.sku, 'title', l.title, 'quantity', l.quantity) ORDER BY l.line_no) FROM order_lines l"
	  "         WHERE l.store_id = p.s AND l.order_id = p.o AND l.line_no = ANY (p.lines::int[])),"
	  "       'created_at', now())"
	  "   FROM p ON CONFLICT (idempotency_key) DO NOTHING)"
	  " INSERT INTO outbox (kind, request_id, store_id, idempotency_key, payload)"
	  " SELECT DISTINCT ON (p.o) 'platform.completed', p.rid, p.s, 'order-' || p.o || '.platform.completed',"
	  "   jsonb_build_object('type', 'platform.completed', 'platform', p.format, 'store', p.code,"
	  "     'order_id', p.o::text, 'external_order_id', p.external_id, 'request_id', p.rid, 'created_at', now())"
	  " FROM p WHERE p.format = 'woocommerce' AND p.status IN ('shipped', 'delivered')"
	  " ON CONFLICT (idempotency_key) DO NOTHING" },
	/* A missed deadline: the supplier is asked to cancel. Array: request ids. */
	{ "callback_timeout_cancel",
	  "INSERT INTO outbox (kind, request_id, supplier_id, store_id, idempotency_key, payload)"
	  " SELECT 'fulfillment.cancel_requested', r.id, r.supplier_id, r.store_id, r.id::text || '.cancel',"
	  "   jsonb_build_object('type', 'fulfillment.cancel_requested', 'request_id', r.id,"
	  "     'order_id', r.order_id::text, 'reason', 'timeout', 'created_at', now())"
	  " FROM unnest($1::uuid[]) AS u(rid) JOIN fulfillment_requests r ON r.id = u.rid"
	  " ON CONFLICT (idempotency_key) DO NOTHING" },
	/* The failures still to handle among the group's (array: request ids),
	 * locked: read after the requests are, so that `dropshipctl outbox
	 * retry`, which locks the request before it withdraws a failure, is
	 * either seen whole or not at all. */
	{ "callback_failures_held",
	  "SELECT request_id FROM request_failures WHERE request_id = ANY ($1::uuid[])"
	  " ORDER BY request_id FOR UPDATE" },
	/* Failures handled (applied, or found moot): off the dispatcher's queue. */
	{ "callback_failures_done",
	  "DELETE FROM request_failures WHERE request_id = ANY ($1::uuid[])" },
	{ NULL, NULL },
};

/* Whole-transaction restarts after a deadlock or a delivery recorded
 * concurrently by another transaction. */
#define CALLBACK_MAX_RESTARTS 3
#define CALLBACK_GROUP_MAX 64

enum callback_state {
	CALLBACK_ACQUIRE,   /* waiting for a pool connection (supplier lookup) */
	CALLBACK_SUPPLIER,  /* supplier lookup in flight */
	CALLBACK_QUEUED,    /* authenticated and parsed, waiting for its group */
	CALLBACK_GROUPED,   /* in a group's transaction */
};

/* The locked request, decoded from callback_lock's row. Strings point
 * into the group's lock result, which outlives it. */
struct callback_locked {
	enum lifecycle_state state;
	const char *supplier_id, *store_id, *order_id;
	int seen;
	const char *country;              /* NULL: nothing to ship to */
	enum route_policy policy;
	int tolerance_pct;
	struct plan_terms terms;          /* the store's penalty and health floors */
	json_t *lines_json;               /* owns: [{"line","sku","quantity"}] */
	int *open_lines;                  /* owns: line numbers still routed */
	size_t nopen;
	long long *exclude;               /* owns: suppliers that rejected the order, and this one */
	size_t nexclude;
	struct plan_order order;          /* where a re-routed request ships */
};

/* One callback delivery or deadline. Allocated by callback_new, freed by
 * callback_free; every path replies (or calls done) exactly once. */
struct callback {
	enum callback_state state;
	struct http_ctx *ctx;             /* NULL for a deadline */
	struct callback_queue *q;
	struct db_conn *conn;             /* supplier lookup only */
	struct db_batch *batch;           /* supplier lookup only */
	char *body;
	size_t body_len;
	char supplier_id[24];
	char webhook_id[256];
	struct lifecycle_callback cb;
	char log_id[40], log_supplier[72];  /* for log lines: request id / supplier */
	void (*done)(void *arg);          /* a deadline: called when over */
	void *done_arg;
	/* in its group */
	int locked;                       /* req was read */
	struct callback_locked req;
	struct lifecycle_decision decision;
	struct plan plan;                 /* a rejection's lines re-routed */
	int status;                       /* the answer, sent after the group's COMMIT */
	json_t *answer;
	struct callback *next;            /* in the queue */
};

enum callback_group_state {
	CALLBACK_GROUP_ACQUIRE,   /* waiting for a pool connection */
	CALLBACK_GROUP_LOCK,      /* BEGIN + lock in flight */
	CALLBACK_GROUP_APPLY,     /* the events (+ candidates) in flight */
	CALLBACK_GROUP_RESERVE,   /* a reservation round for re-routed lines */
	CALLBACK_GROUP_FINISH,    /* re-routes, statuses, notifications, COMMIT */
};

/* Owns its members until each is answered; freed by callback_group_free. */
struct callback_group {
	enum callback_group_state state;
	struct callback_queue *q;
	struct db_conn *conn;
	struct db_batch *batch;           /* the flight in progress */
	struct db_batch *lock;            /* the LOCK flight, kept: members' req point into it */
	struct db_batch *cand;            /* the APPLY flight, kept: the pool points into it */
	struct plan_pool offers;          /* candidates of the rejected lines */
	struct callback *m[CALLBACK_GROUP_MAX];
	size_t n;
	int restarts;
	int i_cand, i_reserve, i_status;  /* statements of the current flight; -1 none */
	int i_held;                       /* callback_failures_held in the LOCK flight; -1 none */
};

/* One per worker: callbacks waiting for a group, and groups running. */
struct callback_queue {
	struct http_env *env;
	struct callback *head, *tail;
	size_t len;
	int running;
	struct event *timer;              /* the window */
};

static struct callback *callback_new(struct callback_queue *q)
{
	struct callback *c = mem_calloc(1, sizeof *c);
	c->q = q;
	c->batch = db_batch_new();
	c->state = CALLBACK_ACQUIRE;
	return c;
}

static void callback_locked_free(struct callback_locked *r)
{
	json_decref(r->lines_json);
	free(r->open_lines);
	free(r->exclude);
	memset(r, 0, sizeof *r);
}

/* Forgets what a group found, so the callback can join another. */
static void callback_unlock(struct callback *c)
{
	callback_locked_free(&c->req);
	plan_free(&c->plan);
	json_decref(c->answer);
	c->answer = NULL;
	c->locked = 0;
	c->status = 0;
}

static void callback_free(struct callback *c)
{
	void (*done)(void *) = c->done;
	void *done_arg = c->done_arg;
	if (c->conn)
		db_conn_release(c->conn);
	db_batch_free(c->batch);
	callback_unlock(c);
	lifecycle_callback_free(&c->cb);
	free(c->body);
	free(c);
	if (done)
		done(done_arg);
}

/* Counts a callback that reached its group: its type is known by then. */
static void callback_count(const struct callback *c, enum metrics_callback_outcome o)
{
	if (c->state == CALLBACK_GROUPED)
		metrics_count_callback(c->q->env->metrics, lifecycle_event_name(c->cb.event), o);
}

static void callback_fail(struct callback *c, int status, const char *code, const char *message,
                          const char *field)
{
	callback_count(c, status >= 500 ? METRICS_CALLBACK_OUT_ERROR : METRICS_CALLBACK_OUT_REFUSED);
	if (c->ctx)
		http_reply_error(c->ctx, status, code, message, field);
	else
		log_warn("deadline not applied", "fulfillment=%s status=%d code=%s", c->cb.request_id, status, code);
	callback_free(c);
}

/* A database failure: the connection itself → 503 (retryable), anything
 * else → 500 with the detail in the log only. */
static void callback_db_fail(struct callback *c, const struct db_batch *b, const char *step)
{
	char q[300];
	log_warn("callback database error", "request_id=%s supplier=%s step=%s sqlstate=%s error=%s",
	         c->log_id, c->log_supplier, step, db_batch_sqlstate(b), log_quote(q, sizeof q, db_batch_error(b)));
	if (c->ctx && db_batch_conn_failed(b)) {
		callback_count(c, METRICS_CALLBACK_OUT_ERROR);
		metrics_inc(c->ctx->env->metrics, METRICS_DB_UNAVAILABLE);
		http_reply_unavailable(c->ctx, 1);
		callback_free(c);
		return;
	}
	callback_fail(c, 500, "internal_error", "the callback could not be applied", NULL);
}

/* Sends the answer the group decided (after its COMMIT). Frees c. */
static void callback_reply(struct callback *c)
{
	callback_count(c, c->status >= 500 ? METRICS_CALLBACK_OUT_ERROR
	                  : c->status >= 400 ? METRICS_CALLBACK_OUT_REFUSED
	                  : c->decision.result == LIFECYCLE_APPLY ? METRICS_CALLBACK_OUT_APPLIED
	                                                          : METRICS_CALLBACK_OUT_DUPLICATE);
	if (c->ctx)
		http_reply_json(c->ctx, c->status, c->answer);
	if (c->status == 200 && c->decision.result == LIFECYCLE_APPLY)
		log_info("callback applied", "request_id=%s supplier=%s fulfillment=%s from=%s to=%s order_status=%s",
		         c->log_id, c->log_supplier, c->cb.request_id, lifecycle_state_name(c->req.state),
		         lifecycle_state_name(c->decision.to),
		         json_string_value(json_object_get(c->answer, "order_status")));
	callback_free(c);
}

static void callback_refuse(struct callback *c, int status, const char *code, const char *message,
                            const char *field)
{
	c->status = status;
	c->answer = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", code, "message", message, "field", field);
}

/* ---- decoding the locked requests ---- */

/* Column c of row r, or NULL for SQL NULL. */
static const char *callback_text(const PGresult *res, int r, int c)
{
	return PQgetisnull(res, r, c) ? NULL : PQgetvalue(res, r, c);
}

/* Member key of open line k of a locked request. */
static json_t *callback_open_line(const struct callback_locked *req, size_t k, const char *key)
{
	return json_object_get(json_array_get(req->lines_json, k), key);
}

/* Fills req from row r of callback_lock's result. Returns 0, or -1 when
 * the row is not what the statement returns. */
static int callback_decode_locked(const PGresult *res, int r, struct callback_locked *req)
{
	memset(req, 0, sizeof *req);
	if (PQnfields(res) != CALLBACK_LOCK_NCOLS ||
	    lifecycle_state_parse(PQgetvalue(res, r, CALLBACK_LOCK_STATUS), &req->state) < 0)
		return -1;
	req->supplier_id = PQgetvalue(res, r, CALLBACK_LOCK_SUPPLIER_ID);
	req->store_id = PQgetvalue(res, r, CALLBACK_LOCK_STORE_ID);
	req->order_id = PQgetvalue(res, r, CALLBACK_LOCK_ORDER_ID);
	req->seen = PQgetvalue(res, r, CALLBACK_LOCK_SEEN)[0] == 't';
	req->country = callback_text(res, r, CALLBACK_LOCK_COUNTRY);
	if (route_policy_parse(PQgetvalue(res, r, CALLBACK_LOCK_POLICY), &req->policy) < 0)
		req->policy = ROUTE_CHEAPEST;
	req->tolerance_pct = (int)strtol(PQgetvalue(res, r, CALLBACK_LOCK_TOLERANCE), NULL, 10);
	req->terms = plan_terms_parse(PQgetvalue(res, r, CALLBACK_LOCK_PENALTY),
	                              PQgetvalue(res, r, CALLBACK_LOCK_MIN_ACCEPT),
	                              PQgetvalue(res, r, CALLBACK_LOCK_MIN_ON_TIME));
	req->lines_json = json_loads(PQgetvalue(res, r, CALLBACK_LOCK_LINES), 0, NULL);
	json_t *rejected = json_loads(PQgetvalue(res, r, CALLBACK_LOCK_REJECTED), 0, NULL);
	if (!json_is_array(req->lines_json) || !json_is_array(rejected)) {
		json_decref(rejected);
		callback_locked_free(req);
		return -1;
	}
	/* A re-route excludes who rejected the order before, and this supplier. */
	req->nexclude = json_array_size(rejected) + 1;
	req->exclude = mem_calloc(req->nexclude, sizeof *req->exclude);
	for (size_t i = 0; i + 1 < req->nexclude; i++)
		req->exclude[i] = json_integer_value(json_array_get(rejected, i));
	req->exclude[req->nexclude - 1] = strtoll(req->supplier_id, NULL, 10);
	json_decref(rejected);
	req->order = (struct plan_order){
		req->store_id, PQgetvalue(res, r, CALLBACK_LOCK_STORE_CODE), req->order_id,
		PQgetvalue(res, r, CALLBACK_LOCK_EXTERNAL_ID), callback_text(res, r, CALLBACK_LOCK_SHIP_NAME),
		callback_text(res, r, CALLBACK_LOCK_SHIP_LINE1), callback_text(res, r, CALLBACK_LOCK_SHIP_LINE2),
		callback_text(res, r, CALLBACK_LOCK_SHIP_CITY), callback_text(res, r, CALLBACK_LOCK_SHIP_REGION),
		callback_text(res, r, CALLBACK_LOCK_SHIP_POSTAL_CODE), req->country,
		callback_text(res, r, CALLBACK_LOCK_SHIP_PHONE),
	};
	req->nopen = json_array_size(req->lines_json);
	req->open_lines = mem_calloc(req->nopen, sizeof *req->open_lines);
	for (size_t i = 0; i < req->nopen; i++)
		req->open_lines[i] = (int)json_integer_value(callback_open_line(req, i, "line"));
	return 0;
}

/* ---- the queue ---- */

static void callback_queue_flush(struct callback_queue *q);

/* A callback waits for its group: at once when nothing else is running on
 * this worker or the group is full, else until the window closes. At the
 * head when it was put back by a group (it came first). */
static void callback_enqueue(struct callback *c, int at_head)
{
	struct callback_queue *q = c->q;
	c->state = CALLBACK_QUEUED;
	c->next = NULL;
	if (at_head && q->head) {
		c->next = q->head;
		q->head = c;
	} else {
		if (q->tail)
			q->tail->next = c;
		else
			q->head = c;
		q->tail = c;
	}
	q->len++;
	int window_us = q->env->cfg->database.group_commit_us;
	if (q->running == 0 || window_us == 0 || q->len >= CALLBACK_GROUP_MAX) {
		callback_queue_flush(q);
		return;
	}
	if (!evtimer_pending(q->timer, NULL)) {
		struct timeval tv = { 0, window_us };
		evtimer_add(q->timer, &tv);
	}
}

/* ---- groups ---- */

static void callback_group_begin(struct callback_group *g);
static void callback_group_start(struct callback_queue *q, struct callback *const *members, size_t n);

static void callback_group_free(struct callback_group *g)
{
	struct callback_queue *q = g->q;
	if (g->conn)
		db_conn_release(g->conn);
	db_batch_free(g->batch);
	db_batch_free(g->lock);
	db_batch_free(g->cand);
	plan_pool_free(&g->offers);
	free(g);
	q->running--;
	if (q->running == 0 && q->len > 0)
		callback_queue_flush(q);
}

static void callback_group_send(struct callback_group *g, enum callback_group_state state, db_batch_cb cb)
{
	g->state = state;
	db_conn_send(g->conn, g->batch, cb, g);
}

static int callback_is_retryable(const struct db_batch *b)
{
	const char *st = db_batch_sqlstate(b);
	return strcmp(st, "40P01") == 0 || strcmp(st, "40001") == 0 || strcmp(st, "23505") == 0;
}

/* The group's transaction failed: a lost connection fails every callback
 * (503), a deadlock or a delivery recorded meanwhile restarts the group,
 * anything else splits a group of several so that only the one at fault
 * fails. */
static void callback_group_fail(struct callback_group *g, const char *step)
{
	struct db_batch *b = g->batch;
	if (!db_batch_conn_failed(b) && callback_is_retryable(b) && g->restarts++ < CALLBACK_MAX_RESTARTS) {
		callback_group_begin(g);
		return;
	}
	if (!db_batch_conn_failed(b) && g->n > 1) {
		log_info("callback group split", "callbacks=%zu step=%s sqlstate=%s", g->n, step, db_batch_sqlstate(b));
		for (size_t i = 0; i < g->n; i++) {
			callback_unlock(g->m[i]);
			callback_group_start(g->q, &g->m[i], 1);
		}
		g->n = 0;
		callback_group_free(g);
		return;
	}
	for (size_t i = 0; i < g->n; i++)
		callback_db_fail(g->m[i], b, step);
	g->n = 0;
	callback_group_free(g);
}

/* Routing failed mid-group: nothing is committed. */
static void callback_group_abort(struct callback_group *g, const char *why)
{
	for (size_t i = 0; i < g->n; i++)
		callback_fail(g->m[i], 500, "internal_error", why, NULL);
	g->n = 0;
	callback_group_free(g);
}

/* A callback that changes its request (the decision is APPLY). */
static int callback_applies(const struct callback *c)
{
	return c->locked && c->decision.result == LIFECYCLE_APPLY;
}

/* A rejection, or a request that could not be delivered: both give the
 * stock back and route the lines to another supplier. */
static int callback_rejects(const struct callback *c)
{
	return callback_applies(c) &&
	       (c->decision.to == LIFECYCLE_REJECTED || c->decision.to == LIFECYCLE_FAILED);
}

static void callback_group_on_finish(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct callback_group *g = arg;
	if (!db_batch_ok(g->batch)) {
		callback_group_fail(g, "finish");
		return;
	}
	/* The connection goes back before the replies: nothing waits on clients. */
	db_conn_release(g->conn);
	g->conn = NULL;
	struct http_env *env = g->q->env;
	if (g->i_status >= 0 && env->outbox_ready) /* notifications, requests, cancellations */
		env->outbox_ready(env->outbox_ready_arg);
	const PGresult *st = g->i_status >= 0 ? db_batch_result(g->batch, g->i_status) : NULL;
	for (size_t i = 0; i < g->n; i++) {
		struct callback *c = g->m[i];
		if (!callback_applies(c))
			continue;
		const char *order_status = "";
		for (int r = 0; st && r < PQntuples(st); r++)
			if (strcmp(PQgetvalue(st, r, CALLBACK_STATUS_STORE_ID), c->req.store_id) == 0 &&
			    strcmp(PQgetvalue(st, r, CALLBACK_STATUS_ORDER_ID), c->req.order_id) == 0)
				order_status = PQgetvalue(st, r, CALLBACK_STATUS_STATUS);
		c->status = 200;
		c->answer = json_pack("{s:s, s:s, s:s, s:b}", "request_id", c->cb.request_id,
		                      "status", lifecycle_state_name(c->decision.to), "order_status", order_status,
		                      "duplicate", 0);
	}
	metrics_observe_group(env->metrics, METRICS_GROUP_CALLBACKS, (long)g->n);
	for (size_t i = 0; i < g->n; i++)
		callback_reply(g->m[i]);
	g->n = 0;
	callback_group_free(g);
}

/* The re-routed lines of rejection c: requests, line updates, decisions. */
static void callback_add_reroute(struct callback *c, struct plan_writes *w)
{
	plan_writes_add(w, &c->plan, &c->req.order, 1);
	log_info("lines re-routed", "request_id=%s fulfillment=%s lines=%zu routed=%zu", c->log_id,
	         c->cb.request_id, c->plan.nlines, plan_routed(&c->plan));
}

/* Adds the order of c to the status rows unless an earlier member has it;
 * a rejection that left a line without a supplier makes it stranded. */
static void callback_add_status_row(struct callback_group *g, size_t i, struct db_columns *status)
{
	struct callback *c = g->m[i];
	int stranded = 0;
	for (size_t j = 0; j < g->n; j++) {
		struct callback *o = g->m[j];
		if (!callback_applies(o) || strcmp(o->req.store_id, c->req.store_id) != 0 ||
		    strcmp(o->req.order_id, c->req.order_id) != 0)
			continue;
		if (j < i)
			return; /* counted with that one */
		stranded |= callback_rejects(o) && plan_routed(&o->plan) < o->plan.nlines;
	}
	const char *sv[3] = { c->req.store_id, c->req.order_id, stranded ? "true" : "false" };
	db_columns_add(status, sv);
}

/* A shipment's parcel for callback_notify_platform: the request, the
 * delivery, and the lines it shipped (those it lists, else every line the
 * request still had open). */
static void callback_add_parcel(const struct callback *c, struct db_columns *parcels)
{
	const int *lines = c->cb.items ? c->cb.items : c->req.open_lines;
	size_t n = c->cb.items ? c->cb.nitems : c->req.nopen, w = 0;
	char *text = mem_alloc(n * 12 + 3);
	text[w++] = '{';
	for (size_t k = 0; k < n; k++)
		w += (size_t)snprintf(text + w, 13, "%s%d", k ? "," : "", lines[k]);
	text[w++] = '}';
	text[w] = '\0';
	const char *v[5] = { c->req.store_id, c->req.order_id, c->cb.request_id, c->webhook_id, text };
	db_columns_add(parcels, v);
	free(text);
}

/* Re-routed lines, the orders' statuses, store notifications, missed
 * deadlines' cancellations, COMMIT. */
static void callback_group_finish(struct callback_group *g)
{
	struct plan_writes w;
	struct db_columns status, notify, cancels, failures, parcels;
	db_columns_init(&parcels, 5);
	plan_writes_init(&w);
	db_columns_init(&failures, 1);
	db_columns_init(&status, 3);
	db_columns_init(&notify, 5);
	db_columns_init(&cancels, 1);
	for (size_t i = 0; i < g->n; i++) {
		struct callback *c = g->m[i];
		if (c->cb.event == LIFECYCLE_EV_FAILED) /* applied or moot, it leaves the queue */
			db_columns_add(&failures, (const char *const[]){ c->cb.request_id });
		if (!callback_applies(c))
			continue;
		if (callback_rejects(c))
			callback_add_reroute(c, &w);
		callback_add_status_row(g, i, &status);
		/* every shipment, partial or not, is told to the store */
		const char *what = c->cb.event == LIFECYCLE_EV_SHIPPED ? "shipped"
		                                                       : lifecycle_state_name(c->decision.to);
		const char *nv[5] = { c->req.store_id, c->req.order_id, c->cb.request_id, what, c->webhook_id };
		db_columns_add(&notify, nv);
		if (c->cb.event == LIFECYCLE_EV_SHIPPED)
			callback_add_parcel(c, &parcels);
		if (!c->ctx && c->cb.event == LIFECYCLE_EV_REJECTED) /* a missed deadline: the supplier may still act */
			db_columns_add(&cancels, (const char *const[]){ c->cb.request_id });
	}
	db_batch_reset(g->batch);
	g->i_status = -1;
	plan_writes_add_requests(&w, g->batch);
	plan_writes_add_lines(&w, g->batch);
	plan_writes_add_rest(&w, g->batch);
	if (cancels.nrows)
		db_batch_add_columns(g->batch, "callback_timeout_cancel", &cancels);
	if (failures.nrows)
		db_batch_add_columns(g->batch, "callback_failures_done", &failures);
	if (status.nrows) {
		g->i_status = plan_add_order_status(g->batch, &status);
		db_batch_add_columns(g->batch, "callback_notify_store", &notify);
		if (parcels.nrows)
			db_batch_add_columns(g->batch, "callback_notify_platform", &parcels);
	}
	db_batch_add(g->batch, NULL, "COMMIT", 0, NULL);
	plan_writes_free(&w);
	db_columns_free(&status);
	db_columns_free(&notify);
	db_columns_free(&cancels);
	db_columns_free(&failures);
	db_columns_free(&parcels);
	callback_group_send(g, CALLBACK_GROUP_FINISH, callback_group_on_finish);
}

/* ---- re-routing rejections ---- */

static void callback_group_on_reserve(struct db_conn *conn, struct db_batch *batch, void *arg);

static size_t callback_group_plans(struct callback_group *g, struct plan **plans)
{
	size_t n = 0;
	for (size_t i = 0; i < g->n; i++)
		if (callback_rejects(g->m[i]))
			plans[n++] = &g->m[i]->plan;
	return n;
}

/* A reservation round for the re-routed lines, or the last flight. */
static void callback_group_reserve(struct callback_group *g)
{
	db_batch_reset(g->batch);
	g->i_reserve = plan_pool_add_reserve(&g->offers, g->batch);
	if (g->i_reserve < 0) {
		callback_group_finish(g);
		return;
	}
	callback_group_send(g, CALLBACK_GROUP_RESERVE, callback_group_on_reserve);
}

static void callback_group_on_reserve(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct callback_group *g = arg;
	if (!db_batch_ok(g->batch)) {
		callback_group_fail(g, "reserve");
		return;
	}
	struct plan *plans[CALLBACK_GROUP_MAX];
	size_t n = callback_group_plans(g, plans);
	if (plan_pool_take_reserve(&g->offers, plans, n, db_batch_result(g->batch, g->i_reserve)) < 0) {
		callback_group_abort(g, "routing failed");
		return;
	}
	callback_group_reserve(g);
}

/* Plans each rejection's open lines on the candidates read with the events. */
static int callback_group_plan(struct callback_group *g)
{
	plan_pool_free(&g->offers);
	if (plan_pool_init(&g->offers, db_batch_result(g->cand, g->i_cand)) < 0)
		return -1;
	for (size_t i = 0; i < g->n; i++) {
		struct callback *c = g->m[i];
		if (!callback_rejects(c))
			continue;
		const struct callback_locked *r = &c->req;
		plan_free(&c->plan);
		plan_init(&c->plan, &g->offers, r->nopen, r->country, r->policy, r->tolerance_pct);
		c->plan.terms = r->terms;
		c->plan.exclude = r->exclude;
		c->plan.nexclude = r->nexclude;
		for (size_t k = 0; k < r->nopen; k++) {
			struct plan_line *l = &c->plan.lines[k];
			l->line_no = r->open_lines[k];
			l->sku = json_string_value(callback_open_line(r, k, "sku"));
			l->quantity = (int)json_integer_value(callback_open_line(r, k, "quantity"));
			if (!l->sku)
				plan_settle(&c->plan, k, ROUTE_NO_SKU);
		}
		if (plan_route(&c->plan) < 0)
			return -1;
	}
	return 0;
}

static void callback_group_on_apply(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct callback_group *g = arg;
	if (!db_batch_ok(g->batch)) {
		callback_group_fail(g, "apply");
		return;
	}
	if (g->i_cand < 0) {
		callback_group_finish(g);
		return;
	}
	/* Keep this flight: the pool's offers point into its results. */
	struct db_batch *t = g->cand;
	g->cand = g->batch;
	g->batch = t ? t : db_batch_new();
	if (callback_group_plan(g) < 0) {
		callback_group_abort(g, "routing failed");
		return;
	}
	callback_group_reserve(g);
}

/* The events of every callback that applies, one statement; and, when
 * some are rejections, every offer of the SKUs of the lines they leave open
 * (the suppliers each order excludes are left out by its plan). */
static void callback_group_apply(struct callback_group *g)
{
	struct db_columns events;
	db_columns_init(&events, 13);
	size_t nskus = 0, cap = 0;
	const char **skus = NULL;
	for (size_t i = 0; i < g->n; i++) {
		struct callback *c = g->m[i];
		if (!callback_applies(c))
			continue;
		char items[8 * 500 + 3] = "";
		size_t w = 0;
		for (size_t k = 0; k < c->cb.nitems; k++)
			w += (size_t)snprintf(items + w, sizeof items - w, "%s%d", k ? "," : "{", c->cb.items[k]);
		if (c->cb.items)
			snprintf(items + w, sizeof items - w, "}");
		const char *ev[13] = { c->cb.request_id, c->supplier_id, c->webhook_id,
		                       lifecycle_event_name(c->cb.event), lifecycle_state_name(c->req.state),
		                       lifecycle_state_name(c->decision.to), c->cb.occurred_at, c->body,
		                       c->cb.carrier, c->cb.tracking_number, c->cb.tracking_url, c->cb.reason,
		                       c->cb.items ? items : NULL };
		db_columns_add(&events, ev);
		if (!callback_rejects(c))
			continue;
		for (size_t k = 0; k < c->req.nopen; k++) {
			const char *sku = json_string_value(callback_open_line(&c->req, k, "sku"));
			if (!sku)
				continue;
			if (nskus == cap) {
				cap = cap ? 2 * cap : 16;
				skus = mem_realloc(skus, cap * sizeof *skus);
			}
			skus[nskus++] = sku;
		}
	}
	db_batch_reset(g->batch);
	g->i_cand = -1;
	if (events.nrows)
		db_batch_add_columns(g->batch, "callback_apply", &events);
	if (nskus)
		g->i_cand = plan_add_candidates(g->batch, skus, nskus, NULL, 0);
	size_t changes = events.nrows;
	db_columns_free(&events);
	free(skus);
	if (!changes) { /* nothing changes: only refusals and repeats */
		callback_group_finish(g);
		return;
	}
	callback_group_send(g, CALLBACK_GROUP_APPLY, callback_group_on_apply);
}

/* ---- the decisions ---- */

/* Member i waits for the next group when an earlier member of this one
 * touches the same request or records the same delivery id. */
static int callback_collides(const struct callback_group *g, size_t i)
{
	const struct callback *c = g->m[i];
	for (size_t j = 0; j < i; j++) {
		const struct callback *o = g->m[j];
		if (strcmp(o->cb.request_id, c->cb.request_id) == 0 ||
		    (strcmp(o->supplier_id, c->supplier_id) == 0 && strcmp(o->webhook_id, c->webhook_id) == 0))
			return 1;
	}
	return 0;
}

/* Decides member c on its locked row (NULL: no such request). */
static void callback_decide(struct callback *c, const PGresult *res, int row)
{
	/* Another supplier's request is none of this one's business: same answer as unknown. */
	if (row < 0 || strcmp(PQgetvalue(res, row, CALLBACK_LOCK_SUPPLIER_ID), c->supplier_id) != 0) {
		callback_refuse(c, 404, "not_found", "no such request for this supplier", "request_id");
		return;
	}
	if (callback_decode_locked(res, row, &c->req) < 0) {
		callback_refuse(c, 500, "internal_error", "the request could not be read", "");
		return;
	}
	c->locked = 1;
	struct lifecycle_request rq = { c->req.state, c->req.seen, c->req.open_lines, c->req.nopen };
	lifecycle_decide(&rq, &c->cb, &c->decision);
	char msg[160], field[48];
	switch (c->decision.result) {
	case LIFECYCLE_REPEAT:
		c->status = 200;
		c->answer = json_pack("{s:s, s:s, s:b}", "request_id", c->cb.request_id, "status",
		                      lifecycle_state_name(c->req.state), "duplicate", 1);
		return;
	case LIFECYCLE_ILLEGAL:
		snprintf(msg, sizeof msg, "%s is not allowed for a request that is %s",
		         lifecycle_event_name(c->cb.event), lifecycle_state_name(c->req.state));
		callback_refuse(c, 409, "invalid_transition", msg, "type");
		return;
	case LIFECYCLE_BAD_ITEM:
		snprintf(field, sizeof field, "items[%zu].line", c->decision.bad_item);
		callback_refuse(c, 422, "invalid_field", "is not an unshipped line of this request", field);
		return;
	case LIFECYCLE_APPLY:
		return;
	}
}

/* A delivery failure that would apply but whose request_failures row is
 * gone: `outbox retry` re-queued its message, which goes to the same
 * supplier again, so its lines must stay where they are. (One handled by
 * another group meanwhile is a repeat, decided before.) */
static int callback_failure_withdrawn(const struct callback_group *g, const struct callback *c)
{
	if (c->ctx || c->cb.event != LIFECYCLE_EV_FAILED || g->i_held < 0)
		return 0;
	const PGresult *held = db_batch_result(g->lock, g->i_held);
	for (int r = 0; r < PQntuples(held); r++)
		if (strcmp(PQgetvalue(held, r, 0), c->cb.request_id) == 0)
			return 0;
	log_info("delivery failure withdrawn", "fulfillment=%s supplier=%s", c->cb.request_id, c->supplier_id);
	return 1;
}

static void callback_group_on_lock(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct callback_group *g = arg;
	if (!db_batch_ok(g->batch)) {
		callback_group_fail(g, "lock");
		return;
	}
	/* Keep the rows: the members' decoded requests point into them. */
	struct db_batch *t = g->lock;
	g->lock = g->batch;
	g->batch = t ? t : db_batch_new();
	const PGresult *res = db_batch_result(g->lock, g->restarts ? 2 : 1);
	if (PQnfields(res) != CALLBACK_LOCK_NCOLS) {
		callback_group_abort(g, "the requests could not be read");
		return;
	}
	/* Members that collide go to the next group; the rest are decided. */
	size_t kept = 0;
	struct callback *later[CALLBACK_GROUP_MAX];
	size_t nlater = 0;
	for (size_t i = 0; i < g->n; i++) {
		struct callback *c = g->m[i];
		callback_unlock(c);
		if (callback_collides(g, i)) {
			later[nlater++] = c;
			continue;
		}
		int row = -1;
		for (int r = 0; r < PQntuples(res) && row < 0; r++)
			if ((size_t)strtol(PQgetvalue(res, r, CALLBACK_LOCK_INDEX), NULL, 10) == i + 1)
				row = r;
		callback_decide(c, res, row);
		if (callback_applies(c) && callback_failure_withdrawn(g, c)) {
			callback_unlock(c);
			callback_refuse(c, 409, "failure_withdrawn", "the failure was withdrawn by outbox retry", "");
		}
		g->m[kept++] = c;
	}
	g->n = kept;
	for (size_t i = nlater; i-- > 0;)
		callback_enqueue(later[i], 1);
	callback_group_apply(g);
}

/* BEGIN and lock every request of the group: decisions are taken under
 * the locks. */
static void callback_group_begin(struct callback_group *g)
{
	struct db_columns keys;
	db_columns_init(&keys, 3);
	for (size_t i = 0; i < g->n; i++) {
		struct callback *c = g->m[i];
		const char *k[3] = { c->cb.request_id, c->supplier_id, c->webhook_id };
		db_columns_add(&keys, k);
	}
	db_batch_reset(g->batch);
	/* After a deadlock the connection still holds the failed transaction. */
	if (g->restarts)
		db_batch_add(g->batch, NULL, "ROLLBACK", 0, NULL);
	db_batch_add(g->batch, NULL, "BEGIN", 0, NULL);
	db_batch_add_columns(g->batch, "callback_lock", &keys);
	db_columns_free(&keys);
	struct db_columns failed;
	db_columns_init(&failed, 1);
	for (size_t i = 0; i < g->n; i++)
		if (g->m[i]->cb.event == LIFECYCLE_EV_FAILED)
			db_columns_add(&failed, (const char *const[]){ g->m[i]->cb.request_id });
	g->i_held = failed.nrows ? db_batch_add_columns(g->batch, "callback_failures_held", &failed) : -1;
	db_columns_free(&failed);
	callback_group_send(g, CALLBACK_GROUP_LOCK, callback_group_on_lock);
}

static void callback_group_on_acquire(struct db_conn *conn, void *arg)
{
	struct callback_group *g = arg;
	if (!conn) {
		for (size_t i = 0; i < g->n; i++) {
			struct callback *c = g->m[i];
			callback_count(c, METRICS_CALLBACK_OUT_ERROR);
			if (c->ctx) {
				metrics_inc(c->ctx->env->metrics, METRICS_DB_UNAVAILABLE);
				http_reply_unavailable(c->ctx, 1);
				c->ctx = NULL;
			}
			callback_free(c);
		}
		g->n = 0;
		callback_group_free(g);
		return;
	}
	g->conn = conn;
	callback_group_begin(g);
}

/* Starts a group of n callbacks (of queue q) on a connection of q's pool. */
static void callback_group_start(struct callback_queue *q, struct callback *const *members, size_t n)
{
	struct callback_group *g = mem_calloc(1, sizeof *g);
	q->running++;
	g->q = q;
	g->batch = db_batch_new();
	g->i_cand = g->i_reserve = g->i_status = g->i_held = -1;
	for (size_t i = 0; i < n; i++) {
		g->m[i] = members[i];
		g->m[i]->state = CALLBACK_GROUPED;
	}
	g->n = n;
	g->state = CALLBACK_GROUP_ACQUIRE;
	db_pool_acquire(q->env->db, callback_group_on_acquire, g);
}

/* Starts groups with every callback waiting (at most CALLBACK_GROUP_MAX each). */
static void callback_queue_flush(struct callback_queue *q)
{
	evtimer_del(q->timer);
	while (q->head) {
		struct callback *m[CALLBACK_GROUP_MAX];
		size_t n = 0;
		while (q->head && n < CALLBACK_GROUP_MAX) {
			m[n++] = q->head;
			q->head = q->head->next;
			q->len--;
		}
		if (!q->head)
			q->tail = NULL;
		callback_group_start(q, m, n);
	}
}

static void callback_on_window(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	callback_queue_flush(arg);
}

/* ---- authentication ---- */

static void callback_on_supplier(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct callback *c = arg;
	if (!db_batch_ok(c->batch)) {
		callback_db_fail(c, c->batch, "supplier");
		return;
	}
	PGresult *res = db_batch_result(c->batch, 0);
	if (PQntuples(res) == 0) {
		callback_fail(c, 404, "unknown_supplier", "no supplier with this code", NULL);
		return;
	}
	snprintf(c->supplier_id, sizeof c->supplier_id, "%s", PQgetvalue(res, 0, 0));
	enum sig_result sr = http_verify_webhook(c->ctx, PQgetvalue(res, 0, 1), c->body, c->body_len, NULL);
	if (sr != SIG_OK) {
		http_reply_signature_error(c->ctx, sr, NULL);
		c->ctx = NULL;
		callback_free(c);
		return;
	}
	snprintf(c->webhook_id, sizeof c->webhook_id, "%s", http_header(c->ctx, "webhook-id"));
	struct order_error oe;
	if (lifecycle_parse_callback(c->body, c->body_len, &c->cb, &oe) < 0) {
		callback_fail(c, strcmp(oe.code, "invalid_json") == 0 ? 400 : 422, oe.code, oe.message, oe.field);
		return;
	}
	/* The lookup's connection goes back: the callback's group leases its own. */
	db_conn_release(c->conn);
	c->conn = NULL;
	callback_enqueue(c, 0);
}

static void callback_on_acquire(struct db_conn *conn, void *arg)
{
	struct callback *c = arg;
	if (!conn) {
		metrics_inc(c->ctx->env->metrics, METRICS_DB_UNAVAILABLE);
		http_reply_unavailable(c->ctx, 1);
		c->ctx = NULL;
		callback_free(c);
		return;
	}
	c->conn = conn;
	c->state = CALLBACK_SUPPLIER;
	const char *v[1] = { c->log_supplier };
	db_batch_add(c->batch, "callback_supplier", NULL, 1, v);
	db_conn_send(conn, c->batch, callback_on_supplier, c);
}

struct callback_queue *callback_queue_new(struct http_env *env)
{
	struct callback_queue *q = mem_calloc(1, sizeof *q);
	q->env = env;
	q->timer = evtimer_new(env->base, callback_on_window, q);
	return q;
}

void callback_queue_free(struct callback_queue *q)
{
	if (!q)
		return;
	event_free(q->timer);
	free(q);
}

void callback_handle(struct callback_queue *q, struct http_ctx *ctx, const char *supplier_code)
{
	snprintf(ctx->store, sizeof ctx->store, "%s", supplier_code);
	if (!http_is_json(ctx)) {
		http_reply_not_json(ctx);
		return;
	}
	struct callback *c = callback_new(q);
	c->ctx = ctx;
	c->body = http_body(ctx, &c->body_len);
	snprintf(c->log_id, sizeof c->log_id, "%s", ctx->request_id);
	snprintf(c->log_supplier, sizeof c->log_supplier, "%s", supplier_code);
	db_pool_acquire(q->env->db, callback_on_acquire, c);
}

/* Queues an event dropshipd records itself (no HTTP request): the answer
 * goes to the log, done() runs when it is over. */
static int callback_system(struct callback_queue *q, enum lifecycle_event ev, const char *request_id,
                           const char *supplier_id, const char *supplier_code, const char *reason,
                           const char *missed, const char *delivery_kind, void (*done)(void *arg),
                           void *done_arg)
{
	struct callback *c = callback_new(q);
	if (lifecycle_system_event(ev, request_id, reason, &c->cb) < 0) {
		callback_free(c);
		return -1;
	}
	if (missed) /* which deadline, for the audit row */
		json_object_set_new(c->cb.root, "missed", json_string(missed));
	c->body = json_dumps(c->cb.root, JSON_COMPACT);
	c->body_len = strlen(c->body);
	c->done = done;
	c->done_arg = done_arg;
	snprintf(c->supplier_id, sizeof c->supplier_id, "%s", supplier_id);
	/* One such event per request: a second finds it recorded and changes nothing. */
	snprintf(c->webhook_id, sizeof c->webhook_id, "%s:%s", delivery_kind, c->cb.request_id);
	snprintf(c->log_id, sizeof c->log_id, "%s", delivery_kind);
	snprintf(c->log_supplier, sizeof c->log_supplier, "%s", supplier_code);
	callback_enqueue(c, 0);
	return 0;
}

int callback_reject_overdue(struct callback_queue *q, const char *request_id, const char *supplier_id,
                            const char *supplier_code, const char *missed, void (*done)(void *arg),
                            void *done_arg)
{
	return callback_system(q, LIFECYCLE_EV_REJECTED, request_id, supplier_id, supplier_code, "timeout", missed,
	                       "deadline", done, done_arg);
}

int callback_fail_delivery(struct callback_queue *q, const char *request_id, const char *supplier_id,
                           const char *supplier_code, const char *cause, void (*done)(void *arg),
                           void *done_arg)
{
	return callback_system(q, LIFECYCLE_EV_FAILED, request_id, supplier_id, supplier_code, cause, NULL,
	                       "failure", done, done_arg);
}
