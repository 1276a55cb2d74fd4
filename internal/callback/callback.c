#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "callback/callback.h"
#include "lifecycle/lifecycle.h"
#include "log/log.h"
#include "plan/plan.h"
#include "route/route.h"
#include "server/server.h"
#include "sig/sig.h"


const struct db_stmt_def callback_stmts[] = {
	{ "callback_supplier",
	  "SELECT id, array_to_string(secrets, E'\\n') FROM suppliers WHERE code = $1" },
	/* The request, locked for the decision; and whether this delivery was seen. */
	{ "callback_lock",
	  "SELECT r.status, r.supplier_id, r.store_id, r.order_id,"
	  "   EXISTS (SELECT 1 FROM request_events e WHERE e.supplier_id = $2 AND e.webhook_id = $3),"
	  "   (SELECT coalesce(string_agg(line_no::text, ',' ORDER BY line_no), '') FROM order_lines"
	  "     WHERE request_id = $1::uuid AND status = 'routed')"
	  " FROM fulfillment_requests r WHERE r.id = $1::uuid FOR UPDATE" },
	/* The event: request state and tracking, the audit row, the lines, and
	 * for a rejection or cancellation the reserved stock given back (offers
	 * locked in id order, as intake does). */
	{ "callback_apply",
	  "WITH r AS (UPDATE fulfillment_requests SET status = $6, reason = coalesce($12, reason),"
	  "     carrier = coalesce($9, carrier), tracking_number = coalesce($10, tracking_number),"
	  "     tracking_url = coalesce($11, tracking_url), updated_at = now()"
	  "   WHERE id = $1::uuid RETURNING id),"
	  " e AS (INSERT INTO request_events (request_id, supplier_id, webhook_id, type, from_status,"
	  "     to_status, occurred_at, payload)"
	  "   VALUES ($1::uuid, $2, $3, $4, $5, $6, $7::timestamptz, $8::jsonb)),"
	  " l AS MATERIALIZED (SELECT store_id, order_id, line_no, offer_id, reserved FROM order_lines"
	  "   WHERE request_id = $1::uuid AND status IN ('routed', 'shipped') FOR UPDATE),"
	  /* a shipment covers the lines it lists ($13), or all not shipped yet */
	  " lu AS (UPDATE order_lines x SET"
	  "     status = CASE WHEN $4 = 'fulfillment.shipped'"
	  "         THEN CASE WHEN CASE WHEN $13::int[] IS NULL THEN x.status = 'routed' ELSE x.line_no = ANY ($13::int[]) END THEN 'shipped' ELSE x.status END"
	  "       WHEN $6 = 'delivered' THEN 'delivered' WHEN $6 = 'rejected' THEN 'unroutable'"
	  "       WHEN $6 = 'cancelled' THEN 'cancelled' ELSE x.status END,"
	  "     carrier = CASE WHEN $4 = 'fulfillment.shipped' AND (CASE WHEN $13::int[] IS NULL THEN x.status = 'routed' ELSE x.line_no = ANY ($13::int[]) END)"
	  "       THEN $9 ELSE x.carrier END,"
	  "     tracking_number = CASE WHEN $4 = 'fulfillment.shipped' AND (CASE WHEN $13::int[] IS NULL THEN x.status = 'routed' ELSE x.line_no = ANY ($13::int[]) END)"
	  "       THEN $10 ELSE x.tracking_number END,"
	  "     tracking_url = CASE WHEN $4 = 'fulfillment.shipped' AND (CASE WHEN $13::int[] IS NULL THEN x.status = 'routed' ELSE x.line_no = ANY ($13::int[]) END)"
	  "       THEN $11 ELSE x.tracking_url END,"
	  "     reason = CASE WHEN $6 = 'rejected' THEN 'rejected' ELSE x.reason END,"
	  "     reserved = CASE WHEN $6 IN ('rejected', 'cancelled') THEN 0 ELSE x.reserved END"
	  "   FROM l WHERE x.store_id = l.store_id AND x.order_id = l.order_id AND x.line_no = l.line_no),"
	  " give AS (SELECT offer_id, sum(reserved)::int AS qty FROM l"
	  "   WHERE $6 IN ('rejected', 'cancelled') AND offer_id IS NOT NULL GROUP BY offer_id),"
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
	/* Re-routing after a rejection: the lines, where they go, and every
	 * offer of their SKUs except from suppliers that already rejected this
	 * order (same columns as intake's candidates; see plan.h). */
	{ "callback_reroute_lines",
	  "SELECT line_no, sku, quantity FROM order_lines WHERE request_id = $1::uuid ORDER BY line_no" },
	{ "callback_reroute_context",
	  "SELECT o.ship_country, st.policy, st.split_tolerance_pct FROM orders o"
	  " JOIN stores st ON st.id = o.store_id WHERE o.store_id = $1 AND o.id = $2" },
	{ "callback_reroute_candidates",
	  "SELECT o.id, o.sku, s.code, s.priority, s.active, o.available,"
	  "   (LEAST(o.cost, 1000000) * 10000)::bigint, (LEAST(o.shipping_cost, 1000000) * 10000)::bigint,"
	  "   o.stock, o.lead_time_days, array_to_string(o.ships_to, ';'), s.id"
	  " FROM offers o JOIN suppliers s ON s.id = o.supplier_id"
	  " WHERE o.sku IN (SELECT sku FROM order_lines WHERE request_id = $1::uuid)"
	  "   AND o.supplier_id NOT IN (SELECT supplier_id FROM fulfillment_requests"
	  "     WHERE store_id = $2 AND order_id = $3 AND status = 'rejected')"
	  " ORDER BY o.id LIMIT 4096" },
	{ "callback_reroute_update",
	  "UPDATE order_lines l SET status = e->>'status', reason = e->>'reason',"
	  "   supplier_id = (e->>'supplier_id')::bigint, offer_id = (e->>'offer_id')::bigint,"
	  "   reserved = (e->>'reserved')::int, unit_cost = (e->>'unit_cost')::numeric, request_id = NULL"
	  " FROM jsonb_array_elements($3::jsonb) AS e"
	  " WHERE l.store_id = $1 AND l.order_id = $2 AND l.line_no = (e->>'line')::int" },
	{ "callback_reroute_decisions",
	  "INSERT INTO routing_decisions (store_id, order_id, line_no, attempt, policy, supplier_id,"
	  "   offer_id, reason, candidates, search, consolidated)"
	  " SELECT $1, $2, (e->>'line')::int,"
	  "   (SELECT coalesce(max(d.attempt), 0) + 1 FROM routing_decisions d"
	  "     WHERE d.store_id = $1 AND d.order_id = $2 AND d.line_no = (e->>'line')::int),"
	  "   $4, (e->>'supplier_id')::bigint, (e->>'offer_id')::bigint, e->>'reason', e->'candidates',"
	  "   $5, $6::boolean"
	  " FROM jsonb_array_elements($3::jsonb) AS e" },
	{ NULL, NULL },
};

enum callback_state {
	CALLBACK_ACQUIRE,   /* waiting for a pool connection */
	CALLBACK_SUPPLIER,  /* supplier lookup in flight */
	CALLBACK_LOCK,      /* BEGIN + request lock in flight */
	CALLBACK_APPLY,     /* the event + COMMIT in flight */
	CALLBACK_REROUTE,   /* rejection applied; lines and candidates being read */
	CALLBACK_RESERVE,   /* a stock reservation round for the re-routed lines */
	CALLBACK_ROLLBACK,  /* ROLLBACK before a no-change answer */
};

/* One callback delivery. Allocated by callback_handle, freed by callback_free;
 * every path replies exactly once. */
struct callback {
	enum callback_state state;
	struct http_ctx *ctx;
	struct db_conn *conn;
	struct db_batch *batch;
	char *body;
	size_t body_len;
	char supplier_id[24];
	char webhook_id[256];
	struct lifecycle_callback cb;
	enum lifecycle_state from, to;
	char store_id[24], order_id[24];
	char log_id[40], log_supplier[72];  /* for log lines: request id / supplier */
	/* a deadline (no HTTP request): called when done instead of replying */
	void (*done)(void *arg);
	void *done_arg;
	struct db_pool *pool;
	/* re-routing: cand keeps the lines and candidates the plan points into */
	struct db_batch *cand;
	struct plan plan;
	int i_status;      /* order status statement in the final flight */
	/* the answer once the transaction is over */
	int status;
	json_t *answer;
};

static void callback_begin(struct callback *c);

static void callback_free(struct callback *c)
{
	void (*done)(void *) = c->done;
	void *done_arg = c->done_arg;
	if (c->conn)
		db_conn_release(c->conn);
	db_batch_free(c->batch);
	db_batch_free(c->cand);
	plan_free(&c->plan);
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
		atomic_fetch_add(&c->ctx->worker->metrics.db_unavailable, 1);
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

static void callback_on_rollback(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	callback_answer(arg);
}

/* Ends the transaction without change, then answers. */
static void callback_rollback_and_answer(struct callback *c)
{
	db_batch_reset(c->batch);
	db_batch_add(c->batch, NULL, "ROLLBACK", 0, NULL);
	c->state = CALLBACK_ROLLBACK;
	db_conn_send(c->conn, c->batch, callback_on_rollback, c);
}

static void callback_on_reroute_read(struct db_conn *conn, struct db_batch *batch, void *arg);
static void callback_commit(struct callback *c, const char *lines_json, const char *decisions_json);

static void callback_on_apply(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct callback *c = arg;
	if (!db_batch_ok(c->batch)) {
		callback_db_fail(c, "apply");
		return;
	}
	PGresult *st = db_batch_result(c->batch, c->i_status);
	log_info("callback applied", "request_id=%s supplier=%s fulfillment=%s from=%s to=%s order_status=%s",
	         c->log_id, c->log_supplier, c->cb.request_id, lifecycle_state_name(c->from),
	         lifecycle_state_name(c->to), PQntuples(st) ? PQgetvalue(st, 0, 0) : "?");
	c->status = 200;
	c->answer = json_pack("{s:s, s:s, s:s, s:b}", "request_id", c->cb.request_id,
	                      "status", lifecycle_state_name(c->to),
	                      "order_status", PQntuples(st) ? PQgetvalue(st, 0, 0) : "", "duplicate", 0);
	callback_answer(c);
}

/* The last flight: (re-routed lines), the order's status, store
 * notifications, NOTIFY, COMMIT. lines_json is NULL without re-routing. */
static void callback_commit(struct callback *c, const char *lines_json, const char *decisions_json)
{
	struct db_batch *b = c->batch;
	/* Without re-routing the apply statement is already in this batch. */
	if (c->state == CALLBACK_REROUTE || c->state == CALLBACK_RESERVE)
		db_batch_reset(b);
	const char *ids[2] = { c->store_id, c->order_id };
	if (lines_json) {
		const char *uv[3] = { c->store_id, c->order_id, lines_json };
		const char *dv[6] = { c->store_id, c->order_id, decisions_json, route_policy_name(c->plan.policy),
		                      c->plan.search_exact ? "exact" : "greedy",
		                      c->plan.consolidated ? "true" : "false" };
		db_batch_add(b, "callback_reroute_update", NULL, 3, uv);
		db_batch_add(b, "callback_reroute_decisions", NULL, 6, dv);
		db_batch_add(b, "intake_requests_insert", NULL, 2, ids);
	}
	/* needs_attention when a rejection leaves a line without a supplier */
	int stranded = c->to == LIFECYCLE_REJECTED && (!lines_json || plan_routed(&c->plan) < c->plan.nlines);
	const char *sv[3] = { c->store_id, c->order_id, stranded ? "true" : "false" };
	/* every shipment, partial or not, is told to the store */
	const char *nv[5] = { c->store_id, c->order_id, c->cb.request_id,
	                      c->cb.event == LIFECYCLE_EV_SHIPPED ? "shipped" : lifecycle_state_name(c->to),
	                      c->webhook_id };
	if (!c->ctx) {
		/* The supplier may still act on it: ask it to cancel. */
		const char *rv[1] = { c->cb.request_id };
		db_batch_add(b, "callback_timeout_cancel", NULL, 1, rv);
	}
	c->i_status = db_batch_add(b, "callback_order_status", NULL, 3, sv);
	db_batch_add(b, "callback_notify_store", NULL, 5, nv);
	db_batch_add(b, "callback_notify", NULL, 0, NULL);
	db_batch_add(b, NULL, "COMMIT", 0, NULL);
	c->state = CALLBACK_APPLY;
	db_conn_send(c->conn, b, callback_on_apply, c);
}

static void callback_reroute_finish(struct callback *c)
{
	json_t *lines = json_array(), *decisions = json_array();
	for (size_t i = 0; i < c->plan.nlines; i++) {
		json_array_append_new(lines, plan_line_json(&c->plan, i));
		json_array_append_new(decisions, plan_decision_json(&c->plan, i));
	}
	char *lt = json_dumps(lines, JSON_COMPACT), *dt = json_dumps(decisions, JSON_COMPACT);
	json_decref(lines);
	json_decref(decisions);
	if (!lt || !dt) {
		free(lt);
		free(dt);
		callback_fail(c, 500, "internal_error", "out of memory", NULL);
		return;
	}
	log_info("lines re-routed", "request_id=%s fulfillment=%s lines=%zu routed=%zu", c->log_id,
	         c->cb.request_id, c->plan.nlines, plan_routed(&c->plan));
	callback_commit(c, lt, dt);
	free(lt);
	free(dt);
}

static void callback_reserve(struct callback *c);

static void callback_on_reserve(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct callback *c = arg;
	if (!db_batch_ok(c->batch)) {
		callback_db_fail(c, "reserve");
		return;
	}
	PGresult *got = db_batch_result(c->batch, 0), *stock = db_batch_result(c->batch, 1);
	for (int r = 0; r < PQntuples(stock); r++)
		plan_set_stock(&c->plan, strtoll(PQgetvalue(stock, r, 0), NULL, 10),
		               (int)strtol(PQgetvalue(stock, r, 1), NULL, 10), PQgetvalue(stock, r, 2)[0] == 't');
	for (int r = 0; r < PQntuples(got); r++)
		plan_reserved(&c->plan, strtoll(PQgetvalue(got, r, 0), NULL, 10));
	if (!plan_next_round(&c->plan)) {
		callback_reroute_finish(c);
		return;
	}
	if (plan_route(&c->plan) < 0) {
		callback_fail(c, 500, "internal_error", "routing failed", NULL);
		return;
	}
	callback_reserve(c);
}

/* Reserves stock for the re-routed lines (intake's statements). */
static void callback_reserve(struct callback *c)
{
	char *ids, *qty;
	int n = plan_reservations(&c->plan, &ids, &qty);
	if (n < 0) {
		callback_fail(c, 500, "internal_error", "out of memory", NULL);
		return;
	}
	if (n > 0) {
		const char *v[2] = { ids, qty };
		db_batch_reset(c->batch);
		db_batch_add(c->batch, "intake_reserve", NULL, 2, v);
		db_batch_add(c->batch, "intake_stock", NULL, 1, v);
	}
	free(ids);
	free(qty);
	if (n == 0) {
		callback_reroute_finish(c);
		return;
	}
	c->state = CALLBACK_RESERVE;
	db_conn_send(c->conn, c->batch, callback_on_reserve, c);
}

static void callback_on_reroute_read(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct callback *c = arg;
	if (!db_batch_ok(c->batch)) {
		callback_db_fail(c, "reroute");
		return;
	}
	/* Keep this flight: the plan's strings point into its results. */
	c->cand = c->batch;
	c->batch = db_batch_new();
	if (!c->batch) {
		callback_fail(c, 500, "internal_error", "out of memory", NULL);
		return;
	}
	PGresult *lines = db_batch_result(c->cand, 1), *ctx = db_batch_result(c->cand, 2);
	PGresult *cand = db_batch_result(c->cand, 3);
	enum route_policy policy = ROUTE_CHEAPEST;
	if (PQntuples(ctx) == 0) {
		callback_fail(c, 500, "internal_error", "order not found", NULL);
		return;
	}
	route_policy_parse(PQgetvalue(ctx, 0, 1), &policy);
	if (plan_init(&c->plan, (size_t)PQntuples(lines), cand, PQgetvalue(ctx, 0, 0), policy,
	              (int)strtol(PQgetvalue(ctx, 0, 2), NULL, 10)) < 0) {
		callback_fail(c, 500, "internal_error", "out of memory", NULL);
		return;
	}
	for (int i = 0; i < PQntuples(lines); i++) {
		struct plan_line *l = &c->plan.lines[i];
		l->line_no = (int)strtol(PQgetvalue(lines, i, 0), NULL, 10);
		l->sku = PQgetvalue(lines, i, 1);
		l->quantity = (int)strtol(PQgetvalue(lines, i, 2), NULL, 10);
	}
	if (plan_route(&c->plan) < 0) {
		callback_fail(c, 500, "internal_error", "routing failed", NULL);
		return;
	}
	callback_reserve(c);
}

static void callback_on_lock(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct callback *c = arg;
	if (!db_batch_ok(c->batch)) {
		if (strcmp(db_batch_sqlstate(c->batch), "22P02") == 0) {
			callback_fail(c, 404, "not_found", "no such request", "request_id");
			return;
		}
		callback_db_fail(c, "lock");
		return;
	}
	PGresult *r = db_batch_result(c->batch, 1);
	/* Another supplier's request is none of this one's business: same answer as unknown. */
	if (PQntuples(r) == 0 || strcmp(PQgetvalue(r, 0, 1), c->supplier_id) != 0) {
		c->status = 404;
		c->answer = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", "not_found", "message",
		                      "no such request for this supplier", "field", "request_id");
		callback_rollback_and_answer(c);
		return;
	}
	if (lifecycle_state_parse(PQgetvalue(r, 0, 0), &c->from) < 0) {
		callback_fail(c, 500, "internal_error", "unknown request state", NULL);
		return;
	}
	int seen = PQgetvalue(r, 0, 4)[0] == 't';
	enum lifecycle_result res = seen ? LIFECYCLE_REPEAT : lifecycle_apply(c->from, c->cb.event, &c->to);
	if (res != LIFECYCLE_APPLY) {
		if (res == LIFECYCLE_REPEAT) {
			c->status = 200;
			c->answer = json_pack("{s:s, s:s, s:b}", "request_id", c->cb.request_id, "status",
			                      lifecycle_state_name(c->from), "duplicate", 1);
		} else {
			char msg[160];
			snprintf(msg, sizeof msg, "%s is not allowed for a request that is %s",
			         lifecycle_event_name(c->cb.event), lifecycle_state_name(c->from));
			c->status = 409;
			c->answer = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", "invalid_transition",
			                      "message", msg, "field", "type");
		}
		callback_rollback_and_answer(c);
		return;
	}

	/* A shipment listing items: each must be an unshipped line of this
	 * request; the request is shipped once none is left. */
	char items_text[4096] = "";
	if (c->cb.items) {
		const char *open_lines = PQgetvalue(r, 0, 5);
		size_t left = 0, w = 0;
		for (const char *p = open_lines; *p;) {
			int line = (int)strtol(p, NULL, 10);
			int listed = 0;
			for (size_t i = 0; i < c->cb.nitems; i++)
				listed |= c->cb.items[i] == line;
			left += !listed;
			p += strcspn(p, ",");
			p += *p == ',';
		}
		for (size_t i = 0; i < c->cb.nitems; i++) {
			char want[16];
			snprintf(want, sizeof want, "%d", c->cb.items[i]);
			int found = 0;
			for (const char *p = open_lines; *p && !found;) {
				size_t n = strcspn(p, ",");
				found = n == strlen(want) && strncmp(p, want, n) == 0;
				p += n;
				p += *p == ',';
			}
			if (!found) {
				char field[48];
				snprintf(field, sizeof field, "items[%zu].line", i);
				c->status = 422;
				c->answer = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", "invalid_field", "message",
				                      "is not an unshipped line of this request", "field", field);
				callback_rollback_and_answer(c);
				return;
			}
			w += (size_t)snprintf(items_text + w, sizeof items_text - w, "%s%s", i ? "," : "{", want);
			if (w >= sizeof items_text - 8)
				break;
		}
		snprintf(items_text + w, sizeof items_text - w, "}");
		if (left > 0)
			c->to = LIFECYCLE_ACCEPTED; /* more parcels to come */
	}
	snprintf(c->store_id, sizeof c->store_id, "%s", PQgetvalue(r, 0, 2));
	snprintf(c->order_id, sizeof c->order_id, "%s", PQgetvalue(r, 0, 3));
	const char *store_id = c->store_id, *order_id = c->order_id;
	const char *from = lifecycle_state_name(c->from), *to = lifecycle_state_name(c->to);
	const char *type = lifecycle_event_name(c->cb.event);
	const char *av[13] = { c->cb.request_id, c->supplier_id, c->webhook_id, type, from, to,
	                       c->cb.occurred_at, c->body, c->cb.carrier, c->cb.tracking_number,
	                       c->cb.tracking_url, c->cb.reason, c->cb.items ? items_text : NULL };
	/* The parameters are copied by db_batch_add, so the lock result may go. */
	struct db_batch *b = db_batch_new();
	if (!b) {
		callback_fail(c, 500, "internal_error", "out of memory", NULL);
		return;
	}
	db_batch_add(b, "callback_apply", NULL, 13, av);
	db_batch_free(c->batch);
	c->batch = b;
	if (c->to == LIFECYCLE_REJECTED) {
		/* Route the lines again, in this transaction, among the suppliers left. */
		const char *lv[1] = { c->cb.request_id };
		const char *ov[2] = { store_id, order_id };
		const char *cv[3] = { c->cb.request_id, store_id, order_id };
		db_batch_add(b, "callback_reroute_lines", NULL, 1, lv);
		db_batch_add(b, "callback_reroute_context", NULL, 2, ov);
		db_batch_add(b, "callback_reroute_candidates", NULL, 3, cv);
		c->state = CALLBACK_REROUTE;
		db_conn_send(c->conn, c->batch, callback_on_reroute_read, c);
		return;
	}
	callback_commit(c, NULL, NULL);
}

/* BEGIN and lock the request: the decision is taken under the lock. */
static void callback_begin(struct callback *c)
{
	const char *lv[3] = { c->cb.request_id, c->supplier_id, c->webhook_id };
	db_batch_reset(c->batch);
	db_batch_add(c->batch, NULL, "BEGIN", 0, NULL);
	db_batch_add(c->batch, "callback_lock", NULL, 3, lv);
	c->state = CALLBACK_LOCK;
	db_conn_send(c->conn, c->batch, callback_on_lock, c);
}

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
	const char *wid = http_header(c->ctx, "webhook-id");
	snprintf(c->webhook_id, sizeof c->webhook_id, "%s", wid);
	struct order_error oe;
	if (lifecycle_parse_callback(c->body, c->body_len, &c->cb, &oe) < 0) {
		callback_fail(c, strcmp(oe.code, "invalid_json") == 0 ? 400 : 422, oe.code, oe.message,
		              oe.field);
		return;
	}
	callback_begin(c);
}

static void callback_on_acquire(struct db_conn *conn, void *arg)
{
	struct callback *c = arg;
	if (!conn) {
		if (c->ctx) {
			atomic_fetch_add(&c->ctx->worker->metrics.db_unavailable, 1);
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
	const char *v[1] = { c->ctx->store };
	db_batch_add(c->batch, "callback_supplier", NULL, 1, v);
	c->state = CALLBACK_SUPPLIER;
	db_conn_send(conn, c->batch, callback_on_supplier, c);
}

void callback_handle(struct http_ctx *ctx, const char *supplier_code)
{
	const char *ctype = http_header(ctx, "Content-Type");
	if (!ctype || strncasecmp(ctype, "application/json", 16) != 0) {
		http_reply_error(ctx, 415, "unsupported_media_type", "Content-Type must be application/json", NULL);
		return;
	}
	struct callback *c = calloc(1, sizeof *c);
	if (c) {
		c->ctx = ctx;
		c->batch = db_batch_new();
		c->body = http_body(ctx, &c->body_len);
	}
	if (!c || !c->batch || !c->body) {
		if (c) {
			db_batch_free(c->batch);
			free(c->body);
			free(c);
		}
		http_reply_error(ctx, 500, "internal_error", "out of memory", NULL);
		return;
	}
	snprintf(ctx->store, sizeof ctx->store, "%s", supplier_code);
	snprintf(c->log_id, sizeof c->log_id, "%s", ctx->request_id);
	snprintf(c->log_supplier, sizeof c->log_supplier, "%s", supplier_code);
	c->pool = ctx->worker->db;
	c->state = CALLBACK_ACQUIRE;
	db_pool_acquire(c->pool, callback_on_acquire, c);
}

int callback_reject_overdue(struct db_pool *pool, const char *request_id, const char *supplier_id,
                            const char *missed, void (*done)(void *arg), void *done_arg)
{
	struct callback *c = calloc(1, sizeof *c);
	if (!c)
		return -1;
	c->batch = db_batch_new();
	json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "type", "fulfillment.rejected", "request_id",
	                         request_id, "reason", "timeout", "missed", missed);
	c->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!c->batch || !c->body || lifecycle_parse_callback(c->body, strlen(c->body), &c->cb,
	                                                      &(struct order_error){ 0 }) < 0) {
		db_batch_free(c->batch);
		free(c->body);
		free(c);
		return -1;
	}
	c->body_len = strlen(c->body);
	c->pool = pool;
	c->done = done;
	c->done_arg = done_arg;
	snprintf(c->supplier_id, sizeof c->supplier_id, "%s", supplier_id);
	/* One deadline event per request: a second sweep finds it and changes nothing. */
	snprintf(c->webhook_id, sizeof c->webhook_id, "deadline:%s", c->cb.request_id);
	snprintf(c->log_id, sizeof c->log_id, "deadline");
	snprintf(c->log_supplier, sizeof c->log_supplier, "%s", supplier_id);
	c->state = CALLBACK_ACQUIRE;
	db_pool_acquire(pool, callback_on_acquire, c);
	return 0;
}
