/* callback: one supplier callback (or one missed deadline) applied to its
 * fulfillment request, in one transaction answered only after COMMIT.
 *
 * Flow, each step a pipeline flight from the worker's loop:
 *   ACQUIRE   lease a pool connection (none up → 503 + Retry-After)
 *   SUPPLIER  look the supplier up, verify its signature, parse the body
 *   LOCK      BEGIN; lock the request and read what the decision needs
 *             (callback_decode_locked fills struct callback_locked)
 *   decision  lifecycle_decide: pure, from the locked row and the callback
 *   APPLY     the event: request, audit row, lines, stock; then the order's
 *             status, store notifications, NOTIFY, COMMIT
 * A rejection re-routes its lines in the same transaction (plan):
 *   REROUTE   the event and the candidate offers, then reservation rounds
 *             (RESERVE), then the final flight as above.
 * Repeats and refusals roll back (ROLLBACK) before they are answered.
 * Every path replies exactly once; a deadline (no HTTP request) calls its
 * done() instead. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callback/callback.h"
#include "lifecycle/lifecycle.h"
#include "log/log.h"
#include "mem/mem.h"
#include "metrics/metrics.h"
#include "plan/plan.h"
#include "route/route.h"
#include "sig/sig.h"

/* callback_lock's columns; callback_decode_locked reads them. */
enum callback_lock_col {
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
	CALLBACK_LOCK_NCOLS
};

const struct db_stmt_def callback_stmts[] = {
	{ "callback_supplier",
	  "SELECT id, array_to_string(secrets, E'\\n') FROM suppliers WHERE code = $1" },
	/* The request, locked for the decision, with all the decision and a
	 * re-route need: whether this delivery was seen, the lines still open,
	 * where the order goes, the store's policy, who rejected it already. */
	{ "callback_lock",
	  "SELECT r.status, r.supplier_id, r.store_id, r.order_id,"
	  "   EXISTS (SELECT 1 FROM request_events e WHERE e.supplier_id = $2 AND e.webhook_id = $3),"
	  "   (SELECT coalesce(jsonb_agg(jsonb_build_object('line', l.line_no, 'sku', l.sku,"
	  "       'quantity', l.quantity) ORDER BY l.line_no), '[]') FROM order_lines l"
	  "     WHERE l.request_id = r.id AND l.status = 'routed'),"
	  "   o.ship_country, st.policy, st.split_tolerance_pct,"
	  "   (SELECT coalesce(jsonb_agg(DISTINCT x.supplier_id), '[]') FROM fulfillment_requests x"
	  "     WHERE x.store_id = r.store_id AND x.order_id = r.order_id AND x.status = 'rejected'),"
	  "   st.code, o.external_id, o.ship_name, o.ship_line1, o.ship_line2, o.ship_city, o.ship_region,"
	  "   o.ship_postal_code, o.ship_phone"
	  " FROM fulfillment_requests r JOIN orders o ON o.store_id = r.store_id AND o.id = r.order_id"
	  "   JOIN stores st ON st.id = r.store_id"
	  " WHERE r.id = $1::uuid FOR UPDATE OF r" },
	/* The event: request state and tracking, the audit row, the lines, and
	 * for a rejection or cancellation the reserved stock given back (offers
	 * locked in id order, as plan reserves them). Shipped lines stay shipped. */
	{ "callback_apply",
	  "WITH r AS (UPDATE fulfillment_requests SET status = $6, reason = coalesce($12, reason),"
	  "     carrier = coalesce($9, carrier), tracking_number = coalesce($10, tracking_number),"
	  "     tracking_url = coalesce($11, tracking_url), updated_at = now()"
	  "   WHERE id = $1::uuid RETURNING id),"
	  " e AS (INSERT INTO request_events (request_id, supplier_id, webhook_id, type, from_status,"
	  "     to_status, occurred_at, payload)"
	  "   VALUES ($1::uuid, $2, $3, $4, $5, $6, $7::timestamptz, $8::jsonb)),"
	  " l AS MATERIALIZED (SELECT store_id, order_id, line_no, offer_id, reserved, status FROM order_lines"
	  "   WHERE request_id = $1::uuid AND status IN ('routed', 'shipped') FOR UPDATE),"
	  /* a shipment covers the lines it lists ($13), or all not shipped yet */
	  " lu AS (UPDATE order_lines x SET"
	  "     status = CASE WHEN $4 = 'fulfillment.shipped'"
	  "         THEN CASE WHEN CASE WHEN $13::int[] IS NULL THEN x.status = 'routed' ELSE x.line_no = ANY ($13::int[]) END THEN 'shipped' ELSE x.status END"
	  "       WHEN $6 = 'delivered' THEN 'delivered' WHEN x.status = 'shipped' THEN x.status"
	  "       WHEN $6 = 'rejected' THEN 'unroutable' WHEN $6 = 'cancelled' THEN 'cancelled' ELSE x.status END,"
	  "     carrier = CASE WHEN $4 = 'fulfillment.shipped' AND (CASE WHEN $13::int[] IS NULL THEN x.status = 'routed' ELSE x.line_no = ANY ($13::int[]) END)"
	  "       THEN $9 ELSE x.carrier END,"
	  "     tracking_number = CASE WHEN $4 = 'fulfillment.shipped' AND (CASE WHEN $13::int[] IS NULL THEN x.status = 'routed' ELSE x.line_no = ANY ($13::int[]) END)"
	  "       THEN $10 ELSE x.tracking_number END,"
	  "     tracking_url = CASE WHEN $4 = 'fulfillment.shipped' AND (CASE WHEN $13::int[] IS NULL THEN x.status = 'routed' ELSE x.line_no = ANY ($13::int[]) END)"
	  "       THEN $11 ELSE x.tracking_url END,"
	  "     reason = CASE WHEN $6 = 'rejected' AND x.status = 'routed' THEN 'rejected' ELSE x.reason END,"
	  "     reserved = CASE WHEN $6 IN ('rejected', 'cancelled') AND x.status = 'routed' THEN 0 ELSE x.reserved END"
	  "   FROM l WHERE x.store_id = l.store_id AND x.order_id = l.order_id AND x.line_no = l.line_no),"
	  " give AS (SELECT offer_id, sum(reserved)::int AS qty FROM l"
	  "   WHERE $6 IN ('rejected', 'cancelled') AND l.status = 'routed' AND offer_id IS NOT NULL"
	  "   GROUP BY offer_id),"
	  " locked AS MATERIALIZED (SELECT f.id FROM offers f WHERE f.id IN (SELECT offer_id FROM give)"
	  "   ORDER BY f.id FOR UPDATE)"
	  " UPDATE offers f SET stock = f.stock + give.qty, updated_at = now(),"
	  "   available = CASE WHEN $12 IN ('out_of_stock', 'cannot_ship') THEN false ELSE f.available END"
	  " FROM give WHERE f.id = give.offer_id AND f.id IN (SELECT id FROM locked)" },
	/* The order's status, derived from its lines. */
	{ "callback_order_status",
	  "WITH s AS (SELECT CASE"
	  "     WHEN o.status = 'cancelled' THEN 'cancelled'"
	  "     WHEN bool_and(l.status IN ('delivered', 'cancelled')) AND bool_or(l.status = 'delivered')"
	  "       THEN 'delivered'"
	  "     WHEN bool_and(l.status IN ('shipped', 'delivered', 'cancelled'))"
	  "       AND bool_or(l.status IN ('shipped', 'delivered')) THEN 'shipped'"
	  "     WHEN bool_or(l.status IN ('shipped', 'delivered')) THEN 'partially_shipped'"
	  "     WHEN bool_or(l.status = 'unroutable') AND ($3::boolean OR NOT bool_or(l.status = 'routed'))"
	  "       THEN 'needs_attention'"
	  "     ELSE o.status END AS status"
	  "   FROM orders o JOIN order_lines l ON l.store_id = o.store_id AND l.order_id = o.id"
	  "   WHERE o.store_id = $1 AND o.id = $2 GROUP BY o.status)"
	  " UPDATE orders o SET status = s.status, updated_at = now() FROM s"
	  " WHERE o.store_id = $1 AND o.id = $2 RETURNING o.status" },
	/* Store notifications, when the store has a callback URL: each at most
	 * once (the idempotency key is unique). */
	{ "callback_notify_store",
	  "INSERT INTO outbox (kind, store_id, idempotency_key, payload)"
	  " SELECT k.kind, $1, k.key, jsonb_build_object('type', k.kind, 'store', st.code,"
	  "   'order_id', o.id::text, 'external_order_id', o.external_id, 'status', o.status,"
	  "   'request_id', r.id,"
	  "   'tracking', CASE WHEN k.kind = 'order.shipped' THEN jsonb_build_object('carrier', r.carrier,"
	  "     'number', r.tracking_number, 'url', r.tracking_url) END,"
	  "   'lines', (SELECT jsonb_agg(jsonb_build_object('line', l.line_no, 'sku', l.sku,"
	  "       'quantity', l.quantity, 'status', l.status, 'carrier', l.carrier,"
	  "       'tracking_number', l.tracking_number, 'tracking_url', l.tracking_url) ORDER BY l.line_no)"
	  "     FROM order_lines l WHERE l.store_id = $1 AND l.order_id = $2"
	  "       AND (k.kind <> 'order.shipped' OR l.request_id = r.id)),"
	  "   'created_at', now())"
	  " FROM orders o JOIN stores st ON st.id = o.store_id"
	  "   JOIN fulfillment_requests r ON r.id = $3::uuid,"
	  "   LATERAL (VALUES ('order.shipped', r.id::text || '.shipped.' || $5, $4 = 'shipped'),"
	  "     ('order.delivered', 'order-' || o.id || '.delivered', o.status = 'delivered'),"
	  "     ('order.needs_attention', 'order-' || o.id || '.needs_attention',"
	  "       o.status = 'needs_attention')) AS k(kind, key, due)"
	  " WHERE o.store_id = $1 AND o.id = $2 AND st.callback_url IS NOT NULL AND k.due"
	  " ON CONFLICT (idempotency_key) DO NOTHING RETURNING 1" },
	{ "callback_notify", "SELECT pg_notify('dropship_outbox', '')" },
	{ "callback_timeout_cancel",
	  "INSERT INTO outbox (kind, request_id, supplier_id, store_id, idempotency_key, payload)"
	  " SELECT 'fulfillment.cancel_requested', r.id, r.supplier_id, r.store_id, r.id::text || '.cancel',"
	  "   jsonb_build_object('type', 'fulfillment.cancel_requested', 'request_id', r.id,"
	  "     'order_id', r.order_id::text, 'reason', 'timeout', 'created_at', now())"
	  " FROM fulfillment_requests r WHERE r.id = $1::uuid ON CONFLICT (idempotency_key) DO NOTHING" },
	/* Re-routed lines take their new supplier and request (or stay unroutable). */
	{ "callback_reroute_update",
	  "UPDATE order_lines l SET status = u.st, reason = u.re, supplier_id = u.su, offer_id = u.f,"
	  "   reserved = u.rs, unit_cost = u.uc, request_id = u.rq"
	  " FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::text[], $5::text[], $6::bigint[],"
	  "   $7::bigint[], $8::int[], $9::numeric[], $10::uuid[]) AS u(s, o, n, st, re, su, f, rs, uc, rq)"
	  " WHERE l.store_id = u.s AND l.order_id = u.o AND l.line_no = u.n" },
	{ "callback_reroute_decisions",
	  "INSERT INTO routing_decisions (store_id, order_id, line_no, attempt, policy, supplier_id,"
	  "   offer_id, reason, candidates, search, consolidated)"
	  " SELECT u.s, u.o, u.n,"
	  "   (SELECT coalesce(max(d.attempt), 0) + 1 FROM routing_decisions d"
	  "     WHERE d.store_id = u.s AND d.order_id = u.o AND d.line_no = u.n),"
	  "   u.p, u.su, u.f, u.re, u.c::jsonb, u.se, u.co"
	  " FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::text[], $5::bigint[], $6::bigint[],"
	  "   $7::text[], $8::text[], $9::text[], $10::boolean[]) AS u(s, o, n, p, su, f, re, c, se, co)" },
	{ NULL, NULL },
};

enum callback_state {
	CALLBACK_ACQUIRE,   /* waiting for a pool connection */
	CALLBACK_SUPPLIER,  /* supplier lookup in flight */
	CALLBACK_LOCK,      /* BEGIN + request lock in flight */
	CALLBACK_REROUTE,   /* rejection applied; candidates being read */
	CALLBACK_RESERVE,   /* a stock reservation round for the re-routed lines */
	CALLBACK_APPLY,     /* the final flight + COMMIT in flight */
	CALLBACK_ROLLBACK,  /* ROLLBACK before a no-change answer */
};

/* The locked request, decoded from callback_lock's row. Strings and lines
 * point into the row's result and `lines_json` (both kept by struct callback). */
struct callback_locked {
	enum lifecycle_state state;
	const char *supplier_id, *store_id, *order_id;
	int seen;
	const char *country;              /* NULL: nothing to ship to */
	enum route_policy policy;
	int tolerance_pct;
	json_t *lines_json;               /* owns: [{"line","sku","quantity"}] */
	int *open_lines;                  /* owns: line numbers still routed */
	size_t nopen;
	long long *rejected;              /* owns: suppliers that rejected the order */
	size_t nrejected;
	struct plan_order order;          /* where a re-routed request ships */
};

/* One callback delivery or deadline. Allocated by callback_new, freed by
 * callback_free; every path replies (or calls done) exactly once. */
struct callback {
	enum callback_state state;
	struct http_ctx *ctx;             /* NULL for a deadline */
	struct db_pool *pool;
	struct db_conn *conn;
	struct db_batch *batch;           /* the flight in progress */
	struct db_batch *lock;            /* the LOCK flight, kept: `req` points into it */
	struct db_batch *cand;            /* the REROUTE flight, kept: the plan points into it */
	char *body;
	size_t body_len;
	char supplier_id[24];
	char webhook_id[256];
	struct lifecycle_callback cb;
	struct callback_locked req;
	struct lifecycle_decision decision;
	char log_id[40], log_supplier[72];  /* for log lines: request id / supplier */
	void (*done)(void *arg);          /* a deadline: called when over */
	void *done_arg;
	struct plan_pool offers;          /* re-routing: the candidate offers */
	struct plan plan;                 /* re-routing: the lines */
	int i_status;                     /* the order status statement in the final flight */
	int i_reserve;                    /* this round's reservation */
	int status;                       /* the answer once the transaction is over */
	json_t *answer;
};

static struct callback *callback_new(struct db_pool *pool)
{
	struct callback *c = mem_calloc(1, sizeof *c);
	c->pool = pool;
	c->batch = db_batch_new();
	c->state = CALLBACK_ACQUIRE;
	return c;
}

static void callback_locked_free(struct callback_locked *r)
{
	json_decref(r->lines_json);
	free(r->open_lines);
	free(r->rejected);
	memset(r, 0, sizeof *r);
}

static void callback_free(struct callback *c)
{
	void (*done)(void *) = c->done;
	void *done_arg = c->done_arg;
	if (c->conn)
		db_conn_release(c->conn);
	db_batch_free(c->batch);
	db_batch_free(c->lock);
	db_batch_free(c->cand);
	plan_free(&c->plan);
	plan_pool_free(&c->offers);
	callback_locked_free(&c->req);
	lifecycle_callback_free(&c->cb);
	json_decref(c->answer);
	free(c->body);
	free(c);
	if (done)
		done(done_arg);
}

static void callback_fail(struct callback *c, int status, const char *code, const char *message,
                          const char *field)
{
	if (c->ctx)
		http_reply_error(c->ctx, status, code, message, field);
	else
		log_warn("deadline not applied", "fulfillment=%s status=%d code=%s", c->cb.request_id, status, code);
	callback_free(c);
}

static void callback_db_fail(struct callback *c, const char *step)
{
	char q[300];
	log_warn("callback database error", "request_id=%s supplier=%s step=%s sqlstate=%s error=%s",
	         c->log_id, c->log_supplier, step, db_batch_sqlstate(c->batch),
	         log_quote(q, sizeof q, db_batch_error(c->batch)));
	if (c->ctx && db_batch_conn_failed(c->batch)) {
		metrics_inc(c->ctx->env->metrics, METRICS_DB_UNAVAILABLE);
		http_reply_unavailable(c->ctx, 1);
		callback_free(c);
		return;
	}
	callback_fail(c, 500, "internal_error", "the callback could not be applied", NULL);
}

/* Answers with c->status / c->answer; the connection goes back first. */
static void callback_answer(struct callback *c)
{
	db_conn_release(c->conn);
	c->conn = NULL;
	if (c->ctx)
		http_reply_json(c->ctx, c->status, c->answer);
	callback_free(c);
}

static void callback_send(struct callback *c, enum callback_state state, db_batch_cb cb)
{
	c->state = state;
	db_conn_send(c->conn, c->batch, cb, c);
}

static void callback_on_rollback(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	callback_answer(arg);
}

/* Ends the transaction without change, then answers status with body. */
static void callback_refuse(struct callback *c, int status, json_t *body)
{
	c->status = status;
	c->answer = body;
	db_batch_reset(c->batch);
	db_batch_add(c->batch, NULL, "ROLLBACK", 0, NULL);
	callback_send(c, CALLBACK_ROLLBACK, callback_on_rollback);
}

static json_t *callback_error_body(const char *code, const char *message, const char *field)
{
	return json_pack("{s:{s:s, s:s, s:s}}", "error", "code", code, "message", message, "field", field);
}

/* ---- decoding the locked request ---- */

/* Integers of a JSON array into a new array; *n gets the count. */
static long long *callback_json_ints(json_t *arr, size_t *n)
{
	*n = json_array_size(arr);
	long long *v = mem_calloc(*n, sizeof *v);
	for (size_t i = 0; i < *n; i++)
		v[i] = json_integer_value(json_array_get(arr, i));
	return v;
}

/* Column c of row 0, or NULL for SQL NULL. */
static const char *callback_text(const PGresult *res, int c)
{
	return PQgetisnull(res, 0, c) ? NULL : PQgetvalue(res, 0, c);
}

/* Fills r from callback_lock's row 0. Returns 0, or -1 when the row is not
 * what the statement returns. */
static int callback_decode_locked(const PGresult *res, struct callback_locked *r)
{
	memset(r, 0, sizeof *r);
	if (PQnfields(res) != CALLBACK_LOCK_NCOLS || PQntuples(res) != 1 ||
	    lifecycle_state_parse(PQgetvalue(res, 0, CALLBACK_LOCK_STATUS), &r->state) < 0)
		return -1;
	r->supplier_id = PQgetvalue(res, 0, CALLBACK_LOCK_SUPPLIER_ID);
	r->store_id = PQgetvalue(res, 0, CALLBACK_LOCK_STORE_ID);
	r->order_id = PQgetvalue(res, 0, CALLBACK_LOCK_ORDER_ID);
	r->seen = PQgetvalue(res, 0, CALLBACK_LOCK_SEEN)[0] == 't';
	r->country = callback_text(res, CALLBACK_LOCK_COUNTRY);
	if (route_policy_parse(PQgetvalue(res, 0, CALLBACK_LOCK_POLICY), &r->policy) < 0)
		r->policy = ROUTE_CHEAPEST;
	r->tolerance_pct = (int)strtol(PQgetvalue(res, 0, CALLBACK_LOCK_TOLERANCE), NULL, 10);
	r->lines_json = json_loads(PQgetvalue(res, 0, CALLBACK_LOCK_LINES), 0, NULL);
	json_t *rejected = json_loads(PQgetvalue(res, 0, CALLBACK_LOCK_REJECTED), 0, NULL);
	if (!json_is_array(r->lines_json) || !json_is_array(rejected)) {
		json_decref(rejected);
		callback_locked_free(r);
		return -1;
	}
	r->rejected = callback_json_ints(rejected, &r->nrejected);
	json_decref(rejected);
	r->order = (struct plan_order){
		r->store_id, PQgetvalue(res, 0, CALLBACK_LOCK_STORE_CODE), r->order_id,
		PQgetvalue(res, 0, CALLBACK_LOCK_EXTERNAL_ID), callback_text(res, CALLBACK_LOCK_SHIP_NAME),
		callback_text(res, CALLBACK_LOCK_SHIP_LINE1), callback_text(res, CALLBACK_LOCK_SHIP_LINE2),
		callback_text(res, CALLBACK_LOCK_SHIP_CITY), callback_text(res, CALLBACK_LOCK_SHIP_REGION),
		callback_text(res, CALLBACK_LOCK_SHIP_POSTAL_CODE), r->country,
		callback_text(res, CALLBACK_LOCK_SHIP_PHONE),
	};
	r->nopen = json_array_size(r->lines_json);
	r->open_lines = mem_calloc(r->nopen, sizeof *r->open_lines);
	for (size_t i = 0; i < r->nopen; i++)
		r->open_lines[i] = (int)json_integer_value(json_object_get(json_array_get(r->lines_json, i), "line"));
	return 0;
}

/* ---- the final flight ---- */

static void callback_on_applied(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct callback *c = arg;
	if (!db_batch_ok(c->batch)) {
		callback_db_fail(c, "apply");
		return;
	}
	PGresult *st = db_batch_result(c->batch, c->i_status);
	const char *order_status = PQntuples(st) ? PQgetvalue(st, 0, 0) : "";
	log_info("callback applied", "request_id=%s supplier=%s fulfillment=%s from=%s to=%s order_status=%s",
	         c->log_id, c->log_supplier, c->cb.request_id, lifecycle_state_name(c->req.state),
	         lifecycle_state_name(c->decision.to), *order_status ? order_status : "?");
	c->status = 200;
	c->answer = json_pack("{s:s, s:s, s:s, s:b}", "request_id", c->cb.request_id,
	                      "status", lifecycle_state_name(c->decision.to), "order_status", order_status,
	                      "duplicate", 0);
	callback_answer(c);
}

/* The event itself: request, audit row, lines, stock. */
static void callback_add_apply(struct callback *c, struct db_batch *b)
{
	char items[8 * 500 + 3] = "";
	if (c->cb.items) {
		size_t w = 0;
		for (size_t i = 0; i < c->cb.nitems; i++)
			w += (size_t)snprintf(items + w, sizeof items - w, "%s%d", i ? "," : "{", c->cb.items[i]);
		snprintf(items + w, sizeof items - w, "}");
	}
	const char *av[13] = { c->cb.request_id, c->supplier_id, c->webhook_id, lifecycle_event_name(c->cb.event),
	                       lifecycle_state_name(c->req.state), lifecycle_state_name(c->decision.to),
	                       c->cb.occurred_at, c->body, c->cb.carrier, c->cb.tracking_number,
	                       c->cb.tracking_url, c->cb.reason, c->cb.items ? items : NULL };
	db_batch_add(b, "callback_apply", NULL, 13, av);
}

/* The requests for the re-routed lines (first: the lines refer to them),
 * the lines and their decisions, and the requests' messages. */
static void callback_add_reroute(struct callback *c, struct db_batch *b)
{
	const struct callback_locked *r = &c->req;
	struct plan *p = &c->plan;
	struct plan_requests reqs;
	struct db_columns lines, decisions;
	plan_requests_init(&reqs);
	db_columns_init(&lines, 10);
	db_columns_init(&decisions, 10);
	plan_requests_add(&reqs, p, &r->order);
	for (size_t i = 0; i < p->nlines; i++) {
		struct plan_line_result lr;
		plan_line_result(p, i, &lr);
		char line_no[16], sid[24], oid[24], reserved[16];
		snprintf(line_no, sizeof line_no, "%d", p->lines[i].line_no);
		snprintf(sid, sizeof sid, "%lld", lr.supplier_id);
		snprintf(oid, sizeof oid, "%lld", lr.offer_id);
		snprintf(reserved, sizeof reserved, "%d", lr.reserved);
		int ok = lr.supplier_code != NULL;
		const char *lv[10] = { r->store_id, r->order_id, line_no, lr.status, lr.reason,
		                       ok ? sid : NULL, ok ? oid : NULL, reserved, ok ? lr.unit_cost : NULL,
		                       p->lines[i].request_id[0] ? p->lines[i].request_id : NULL };
		db_columns_add(&lines, lv);
		char *cands = plan_candidates_text(p, i);
		const char *dv[10] = { r->store_id, r->order_id, line_no, route_policy_name(p->policy),
		                       ok ? sid : NULL, ok ? oid : NULL, lr.reason, cands,
		                       p->search_exact ? "exact" : "greedy", p->consolidated ? "true" : "false" };
		db_columns_add(&decisions, dv);
		free(cands);
	}
	plan_requests_add_insert(&reqs, b);
	if (lines.nrows) {
		db_batch_add_columns(b, "callback_reroute_update", &lines);
		db_batch_add_columns(b, "callback_reroute_decisions", &decisions);
	}
	plan_requests_add_outbox(&reqs, b);
	plan_requests_free(&reqs);
	db_columns_free(&lines);
	db_columns_free(&decisions);
	log_info("lines re-routed", "request_id=%s fulfillment=%s lines=%zu routed=%zu", c->log_id,
	         c->cb.request_id, p->nlines, plan_routed(p));
}

/* The order's status, store notifications, NOTIFY, COMMIT: appended to the
 * batch (which already holds the event when nothing was re-routed). */
static void callback_commit(struct callback *c)
{
	struct db_batch *b = c->batch;
	int rerouted = c->decision.to == LIFECYCLE_REJECTED;
	if (rerouted)
		callback_add_reroute(c, b);
	/* needs_attention when a rejection leaves a line without a supplier */
	int stranded = rerouted && plan_routed(&c->plan) < c->plan.nlines;
	const char *sv[3] = { c->req.store_id, c->req.order_id, stranded ? "true" : "false" };
	/* every shipment, partial or not, is told to the store */
	const char *nv[5] = { c->req.store_id, c->req.order_id, c->cb.request_id,
	                      c->cb.event == LIFECYCLE_EV_SHIPPED ? "shipped" : lifecycle_state_name(c->decision.to),
	                      c->webhook_id };
	if (!c->ctx) {
		/* A missed deadline: the supplier may still act on it, so ask it to cancel. */
		const char *rv[1] = { c->cb.request_id };
		db_batch_add(b, "callback_timeout_cancel", NULL, 1, rv);
	}
	c->i_status = db_batch_add(b, "callback_order_status", NULL, 3, sv);
	db_batch_add(b, "callback_notify_store", NULL, 5, nv);
	db_batch_add(b, "callback_notify", NULL, 0, NULL);
	db_batch_add(b, NULL, "COMMIT", 0, NULL);
	callback_send(c, CALLBACK_APPLY, callback_on_applied);
}

/* ---- re-routing a rejection ---- */

static void callback_reserve(struct callback *c);

static void callback_on_reserved(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct callback *c = arg;
	if (!db_batch_ok(c->batch)) {
		callback_db_fail(c, "reserve");
		return;
	}
	struct plan *plans[1] = { &c->plan };
	if (plan_pool_take_reserve(&c->offers, plans, 1, db_batch_result(c->batch, c->i_reserve)) < 0) {
		callback_fail(c, 500, "internal_error", "routing failed", NULL);
		return;
	}
	callback_reserve(c);
}

/* A reservation round, or the final flight when nothing is left to reserve. */
static void callback_reserve(struct callback *c)
{
	db_batch_reset(c->batch);
	c->i_reserve = plan_pool_add_reserve(&c->offers, c->batch);
	if (c->i_reserve < 0) {
		callback_commit(c);
		return;
	}
	callback_send(c, CALLBACK_RESERVE, callback_on_reserved);
}

static void callback_on_candidates(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct callback *c = arg;
	if (!db_batch_ok(c->batch)) {
		callback_db_fail(c, "reroute");
		return;
	}
	/* Keep this flight: the plan's offers point into its results. */
	c->cand = c->batch;
	c->batch = db_batch_new();
	const struct callback_locked *r = &c->req;
	if (plan_pool_init(&c->offers, db_batch_result(c->cand, 1)) < 0) {
		callback_fail(c, 500, "internal_error", "routing failed", NULL);
		return;
	}
	plan_init(&c->plan, &c->offers, r->nopen, r->country, r->policy, r->tolerance_pct);
	for (size_t i = 0; i < r->nopen; i++) {
		json_t *line = json_array_get(r->lines_json, i);
		struct plan_line *l = &c->plan.lines[i];
		l->line_no = r->open_lines[i];
		l->sku = json_string_value(json_object_get(line, "sku"));
		l->quantity = (int)json_integer_value(json_object_get(line, "quantity"));
		if (!l->sku)
			plan_settle(&c->plan, i, ROUTE_NO_SKU);
	}
	if (plan_route(&c->plan) < 0) {
		callback_fail(c, 500, "internal_error", "routing failed", NULL);
		return;
	}
	callback_reserve(c);
}

/* The rejection and, in the same flight, the offers its lines may go to:
 * every offer of their SKUs except from suppliers that rejected the order
 * (this one included). */
static void callback_reroute(struct callback *c)
{
	const struct callback_locked *r = &c->req;
	const char **skus = mem_calloc(r->nopen, sizeof *skus);
	size_t n = 0;
	for (size_t i = 0; i < r->nopen; i++) {
		const char *sku = json_string_value(json_object_get(json_array_get(r->lines_json, i), "sku"));
		if (sku)
			skus[n++] = sku;
	}
	long long *exclude = mem_calloc(r->nrejected + 1, sizeof *exclude);
	memcpy(exclude, r->rejected, r->nrejected * sizeof *exclude);
	exclude[r->nrejected] = strtoll(r->supplier_id, NULL, 10);
	db_batch_reset(c->batch);
	callback_add_apply(c, c->batch);
	plan_add_candidates(c->batch, skus, n, exclude, r->nrejected + 1);
	free(skus);
	free(exclude);
	callback_send(c, CALLBACK_REROUTE, callback_on_candidates);
}

/* ---- the decision ---- */

static void callback_on_lock(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct callback *c = arg;
	if (!db_batch_ok(c->batch)) {
		callback_db_fail(c, "lock");
		return;
	}
	/* Keep the row: c->req points into it. */
	c->lock = c->batch;
	c->batch = db_batch_new();
	PGresult *res = db_batch_result(c->lock, 1);
	/* Another supplier's request is none of this one's business: same answer as unknown. */
	if (PQntuples(res) == 0 || strcmp(PQgetvalue(res, 0, CALLBACK_LOCK_SUPPLIER_ID), c->supplier_id) != 0) {
		callback_refuse(c, 404, callback_error_body("not_found", "no such request for this supplier",
		                                            "request_id"));
		return;
	}
	if (callback_decode_locked(res, &c->req) < 0) {
		callback_fail(c, 500, "internal_error", "the request could not be read", NULL);
		return;
	}
	struct lifecycle_request rq = { c->req.state, c->req.seen, c->req.open_lines, c->req.nopen };
	lifecycle_decide(&rq, &c->cb, &c->decision);
	char msg[160], field[48];
	switch (c->decision.result) {
	case LIFECYCLE_REPEAT:
		callback_refuse(c, 200, json_pack("{s:s, s:s, s:b}", "request_id", c->cb.request_id, "status",
		                                  lifecycle_state_name(c->req.state), "duplicate", 1));
		return;
	case LIFECYCLE_ILLEGAL:
		snprintf(msg, sizeof msg, "%s is not allowed for a request that is %s",
		         lifecycle_event_name(c->cb.event), lifecycle_state_name(c->req.state));
		callback_refuse(c, 409, callback_error_body("invalid_transition", msg, "type"));
		return;
	case LIFECYCLE_BAD_ITEM:
		snprintf(field, sizeof field, "items[%zu].line", c->decision.bad_item);
		callback_refuse(c, 422, callback_error_body("invalid_field", "is not an unshipped line of this request",
		                                            field));
		return;
	case LIFECYCLE_APPLY:
		break;
	}
	/* A rejection routes the lines again, in this transaction, among the suppliers left. */
	if (c->decision.to == LIFECYCLE_REJECTED) {
		callback_reroute(c);
		return;
	}
	callback_add_apply(c, c->batch);
	callback_commit(c);
}

/* BEGIN and lock the request: the decision is taken under the lock. */
static void callback_begin(struct callback *c)
{
	const char *lv[3] = { c->cb.request_id, c->supplier_id, c->webhook_id };
	db_batch_reset(c->batch);
	db_batch_add(c->batch, NULL, "BEGIN", 0, NULL);
	db_batch_add(c->batch, "callback_lock", NULL, 3, lv);
	callback_send(c, CALLBACK_LOCK, callback_on_lock);
}

/* ---- authentication ---- */

static void callback_on_supplier(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct callback *c = arg;
	if (!db_batch_ok(c->batch)) {
		callback_db_fail(c, "supplier");
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
		callback_free(c);
		return;
	}
	snprintf(c->webhook_id, sizeof c->webhook_id, "%s", http_header(c->ctx, "webhook-id"));
	struct order_error oe;
	if (lifecycle_parse_callback(c->body, c->body_len, &c->cb, &oe) < 0) {
		callback_fail(c, strcmp(oe.code, "invalid_json") == 0 ? 400 : 422, oe.code, oe.message, oe.field);
		return;
	}
	callback_begin(c);
}

static void callback_on_acquire(struct db_conn *conn, void *arg)
{
	struct callback *c = arg;
	if (!conn) {
		if (c->ctx) {
			metrics_inc(c->ctx->env->metrics, METRICS_DB_UNAVAILABLE);
			http_reply_unavailable(c->ctx, 1);
		}
		callback_free(c);
		return;
	}
	c->conn = conn;
	if (!c->ctx) {
		callback_begin(c); /* a deadline: nothing to authenticate */
		return;
	}
	const char *v[1] = { c->log_supplier };
	db_batch_add(c->batch, "callback_supplier", NULL, 1, v);
	callback_send(c, CALLBACK_SUPPLIER, callback_on_supplier);
}

void callback_handle(struct http_ctx *ctx, const char *supplier_code)
{
	snprintf(ctx->store, sizeof ctx->store, "%s", supplier_code);
	if (!http_is_json(ctx)) {
		http_reply_not_json(ctx);
		return;
	}
	struct callback *c = callback_new(ctx->env->db);
	c->ctx = ctx;
	c->body = http_body(ctx, &c->body_len);
	snprintf(c->log_id, sizeof c->log_id, "%s", ctx->request_id);
	snprintf(c->log_supplier, sizeof c->log_supplier, "%s", supplier_code);
	db_pool_acquire(c->pool, callback_on_acquire, c);
}

int callback_reject_overdue(struct db_pool *pool, const char *request_id, const char *supplier_id,
                            const char *missed, void (*done)(void *arg), void *done_arg)
{
	struct callback *c = callback_new(pool);
	json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "type", "fulfillment.rejected", "request_id",
	                         request_id, "reason", "timeout", "missed", missed);
	c->body = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	c->body_len = strlen(c->body);
	if (lifecycle_parse_callback(c->body, c->body_len, &c->cb, &(struct order_error){ 0 }) < 0) {
		callback_free(c);
		return -1;
	}
	c->done = done;
	c->done_arg = done_arg;
	snprintf(c->supplier_id, sizeof c->supplier_id, "%s", supplier_id);
	/* One deadline event per request: a second sweep finds it and changes nothing. */
	snprintf(c->webhook_id, sizeof c->webhook_id, "deadline:%s", c->cb.request_id);
	snprintf(c->log_id, sizeof c->log_id, "deadline");
	snprintf(c->log_supplier, sizeof c->log_supplier, "%s", supplier_id);
	db_pool_acquire(pool, callback_on_acquire, c);
	return 0;
}
