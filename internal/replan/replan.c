#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "log/log.h"
#include "mem/mem.h"
#include "plan/plan.h"
#include "replan/replan.h"
#include "route/route.h"

/* Orders planned again in one transaction at most; more waiting are left
 * for the next round (their SKUs are queued again). */
#define REPLAN_MAX_ORDERS 200
/* How often lines past their hold are expired and the ledger pruned. */
#define REPLAN_SWEEP_MS 5000

/* replan_claim's columns: one row per order to plan again. */
enum replan_col {
	REPLAN_STORE_ID,
	REPLAN_ORDER_ID,
	REPLAN_LINES,          /* jsonb [{"line","sku","quantity"}]: the lines to plan */
	REPLAN_COUNTRY,
	REPLAN_POLICY,
	REPLAN_TOLERANCE,
	REPLAN_EXCLUDE,        /* jsonb: suppliers that rejected the order or could not be reached */
	REPLAN_STORE_CODE,
	REPLAN_EXTERNAL_ID,
	REPLAN_SHIP_NAME,      /* ... through REPLAN_SHIP_PHONE */
	REPLAN_SHIP_LINE1,
	REPLAN_SHIP_LINE2,
	REPLAN_SHIP_CITY,
	REPLAN_SHIP_REGION,
	REPLAN_SHIP_POSTAL_CODE,
	REPLAN_SHIP_PHONE,
	REPLAN_CLAIMED_SKUS,   /* text[]: the SKUs this transaction took off sku_changes */
	REPLAN_PENALTY,        /* ... through REPLAN_MIN_ON_TIME: PLAN_TERMS_SQL */
	REPLAN_MIN_ACCEPT,
	REPLAN_MIN_ON_TIME,
	REPLAN_NCOLS
};

const struct db_stmt_def replan_stmts[] = {
	/* Takes SKUs whose stock changed and orders an operator asked for, and
	 * locks (in id order) the orders with lines to plan: for a SKU, its
	 * waiting lines' orders within their store's hold, oldest first; for an
	 * asked order, every line that has no supplier but could have one. */
	{ "replan_claim",
	  "WITH skus AS (DELETE FROM sku_changes s USING (SELECT sku FROM sku_changes ORDER BY changed_at"
	  "     LIMIT 32 FOR UPDATE SKIP LOCKED) c WHERE s.sku = c.sku RETURNING s.sku),"
	  " asked AS (DELETE FROM replan_orders r USING (SELECT store_id, order_id FROM replan_orders"
	  "     ORDER BY requested_at LIMIT 16 FOR UPDATE SKIP LOCKED) c"
	  "   WHERE r.store_id = c.store_id AND r.order_id = c.order_id RETURNING r.store_id, r.order_id),"
	  " waiting AS (SELECT l.store_id, l.order_id FROM order_lines l"
	  "   WHERE l.sku = ANY (ARRAY(SELECT sku FROM skus))"
	  "     AND l.status = 'unroutable' AND l.reason IN ('out_of_stock', 'no_offer')"
	  "   UNION SELECT store_id, order_id FROM asked),"
	  " pick AS MATERIALIZED (SELECT o.store_id, o.id, EXISTS (SELECT 1 FROM asked a"
	  "     WHERE a.store_id = o.store_id AND a.order_id = o.id) AS asked"
	  "   FROM waiting w JOIN orders o ON o.store_id = w.store_id AND o.id = w.order_id"
	  "     JOIN stores st ON st.id = o.store_id"
	  "   WHERE o.status <> 'cancelled' AND (o.created_at > now() - st.hold_for"
	  "     OR EXISTS (SELECT 1 FROM asked a WHERE a.store_id = o.store_id AND a.order_id = o.id))"
	  "   ORDER BY o.created_at LIMIT 200),"
	  " locked AS MATERIALIZED (SELECT o.store_id, o.id FROM orders o"
	  "   WHERE (o.store_id, o.id) IN (SELECT store_id, id FROM pick) ORDER BY o.id FOR UPDATE)"
	  " SELECT o.store_id, o.id,"
	  "   (SELECT coalesce(jsonb_agg(jsonb_build_object('line', l.line_no, 'sku', l.sku,"
	  "       'quantity', l.quantity) ORDER BY l.line_no), '[]') FROM order_lines l"
	  "     WHERE l.store_id = o.store_id AND l.order_id = o.id AND l.status = 'unroutable'"
	  "       AND l.sku IS NOT NULL AND (l.reason IN ('out_of_stock', 'no_offer')"
	  "         OR (p.asked AND l.reason NOT IN ('no_sku', 'no_address')))),"
	  "   o.ship_country, st.policy, st.split_tolerance_pct,"
	  "   (SELECT coalesce(jsonb_agg(DISTINCT x.supplier_id), '[]') FROM fulfillment_requests x"
	  "     WHERE x.store_id = o.store_id AND x.order_id = o.id AND x.status IN ('rejected', 'failed')),"
	  "   st.code, o.external_id, o.ship_name, o.ship_line1, o.ship_line2, o.ship_city, o.ship_region,"
	  "   o.ship_postal_code, o.ship_phone, (SELECT array_agg(sku) FROM skus), " PLAN_TERMS_SQL("st")
	  " FROM locked k JOIN pick p ON p.store_id = k.store_id AND p.id = k.id"
	  "   JOIN orders o ON o.store_id = k.store_id AND o.id = k.id JOIN stores st ON st.id = o.store_id"
	  " ORDER BY o.created_at" },
	/* SKUs taken but not all planned (the transaction held its maximum). */
	{ "replan_requeue",
	  "INSERT INTO sku_changes (sku) SELECT unnest($1::text[])"
	  " ON CONFLICT (sku) DO UPDATE SET changed_at = now()" },
	/* Lines that waited past their store's hold stop waiting. */
	{ "replan_expire",
	  "WITH x AS (SELECT l.store_id, l.order_id, l.line_no FROM order_lines l"
	  "   JOIN orders o ON o.store_id = l.store_id AND o.id = l.order_id JOIN stores st ON st.id = o.store_id"
	  "   WHERE l.status = 'unroutable' AND l.reason IN ('out_of_stock', 'no_offer')"
	  "     AND o.created_at < now() - st.hold_for LIMIT 1000)"
	  " UPDATE order_lines l SET reason = 'expired' FROM x"
	  " WHERE l.store_id = x.store_id AND l.order_id = x.order_id AND l.line_no = x.line_no" },
	/* The stock ledger keeps a week: feeds older than that are refused. */
	{ "replan_prune",
	  "DELETE FROM offer_moves WHERE ctid = ANY (ARRAY(SELECT ctid FROM offer_moves"
	  "   WHERE at < now() - interval '7 days' ORDER BY at LIMIT 10000))" },
	{ NULL, NULL },
};

enum replan_state {
	REPLAN_IDLE,       /* nothing in flight */
	REPLAN_ACQUIRE,    /* waiting for a pool connection */
	REPLAN_CLAIM,      /* BEGIN + claim in flight */
	REPLAN_OFFERS,     /* the candidates of the claimed lines in flight */
	REPLAN_RESERVE,    /* a reservation round in flight */
	REPLAN_FINISH,     /* the writes and COMMIT in flight */
	REPLAN_SWEEP,      /* expiry and pruning in flight */
};

/* One order planned again; strings point into the claim's result. */
struct replan_order {
	struct plan plan;
	struct plan_order where;
	json_t *lines;                /* owns */
	long long *exclude;           /* owns */
	size_t nexclude;
};

struct replan {
	struct event_base *base;
	struct db_pool *pool;
	void (*outbox_ready)(void *arg);
	void *outbox_arg;
	enum replan_state state;
	int stopping, again;
	struct event *timer;
	struct event *kick;
	long long next_sweep_ms;
	struct db_conn *conn;
	struct db_batch *batch;       /* the flight in progress */
	struct db_batch *claim;       /* the claim's flight, kept: orders point into it */
	struct db_batch *cand;        /* the candidates' flight, kept: the pool points into it */
	struct plan_pool offers;
	struct replan_order *orders;
	size_t norders;
	int i_reserve;
};

static long long replan_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void replan_clear(struct replan *r)
{
	for (size_t i = 0; i < r->norders; i++) {
		plan_free(&r->orders[i].plan);
		json_decref(r->orders[i].lines);
		free(r->orders[i].exclude);
	}
	free(r->orders);
	r->orders = NULL;
	r->norders = 0;
	plan_pool_free(&r->offers);
}

/* The transaction is over (committed or not): the connection goes back,
 * and another round starts at once when this one was full. */
static void replan_done(struct replan *r, int committed_messages)
{
	if (r->conn)
		db_conn_release(r->conn);
	r->conn = NULL;
	replan_clear(r);
	r->state = REPLAN_IDLE;
	if (committed_messages && r->outbox_ready)
		r->outbox_ready(r->outbox_arg);
	if (r->again && !r->stopping) {
		r->again = 0;
		event_active(r->kick, EV_TIMEOUT, 0);
	}
}

static void replan_fail(struct replan *r, const char *step)
{
	char q[300];
	log_warn("replan failed", "step=%s sqlstate=%s error=%s", step, db_batch_sqlstate(r->batch),
	         log_quote(q, sizeof q, db_batch_error(r->batch)));
	replan_done(r, 0);
}

static void replan_send(struct replan *r, enum replan_state state, db_batch_cb cb)
{
	r->state = state;
	db_conn_send(r->conn, r->batch, cb, r);
}

static const char *replan_text(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static void replan_on_finish(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct replan *r = arg;
	if (!db_batch_ok(r->batch)) {
		replan_fail(r, "finish");
		return;
	}
	size_t routed = 0, lines = 0;
	for (size_t i = 0; i < r->norders; i++) {
		routed += plan_routed(&r->orders[i].plan);
		lines += r->orders[i].plan.nlines;
	}
	/* The periodic sweep ends here too, mostly with nothing planned: said
	 * only at debug level then, or every worker would log it every 5 s. */
	if (r->norders > 0)
		log_info("waiting lines planned", "orders=%zu lines=%zu routed=%zu", r->norders, lines, routed);
	else
		log_debug("waiting lines planned", "orders=0 lines=0 routed=0");
	replan_done(r, routed > 0);
}

/* Writes the orders planned again, their statuses, the SKUs left for the
 * next round; COMMIT. */
static void replan_finish(struct replan *r)
{
	struct plan_writes w;
	struct db_columns status;
	plan_writes_init(&w);
	db_columns_init(&status, 3);
	for (size_t i = 0; i < r->norders; i++) {
		struct replan_order *o = &r->orders[i];
		plan_writes_add(&w, &o->plan, &o->where, 1);
		const char *sv[3] = { o->where.store_id, o->where.order_id, "false" };
		db_columns_add(&status, sv);
	}
	db_batch_reset(r->batch);
	plan_writes_add_requests(&w, r->batch);
	plan_writes_add_lines(&w, r->batch);
	plan_writes_add_rest(&w, r->batch);
	if (status.nrows)
		plan_add_order_status(r->batch, &status);
	const PGresult *claim = db_batch_result(r->claim, 1);
	if (r->norders >= REPLAN_MAX_ORDERS && !PQgetisnull(claim, 0, REPLAN_CLAIMED_SKUS)) {
		const char *v[1] = { PQgetvalue(claim, 0, REPLAN_CLAIMED_SKUS) };
		db_batch_add(r->batch, "replan_requeue", NULL, 1, v);
		r->again = 1;
	}
	db_batch_add(r->batch, NULL, "COMMIT", 0, NULL);
	plan_writes_free(&w);
	db_columns_free(&status);
	replan_send(r, REPLAN_FINISH, replan_on_finish);
}

static void replan_reserve(struct replan *r);

static void replan_on_reserve(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct replan *r = arg;
	if (!db_batch_ok(r->batch)) {
		replan_fail(r, "reserve");
		return;
	}
	struct plan **plans = mem_calloc(r->norders, sizeof *plans);
	for (size_t i = 0; i < r->norders; i++)
		plans[i] = &r->orders[i].plan;
	int rc = plan_pool_take_reserve(&r->offers, plans, r->norders, db_batch_result(r->batch, r->i_reserve));
	free(plans);
	if (rc < 0) {
		replan_fail(r, "route");
		return;
	}
	replan_reserve(r);
}

static void replan_reserve(struct replan *r)
{
	db_batch_reset(r->batch);
	r->i_reserve = plan_pool_add_reserve(&r->offers, r->batch);
	if (r->i_reserve < 0) {
		replan_finish(r);
		return;
	}
	replan_send(r, REPLAN_RESERVE, replan_on_reserve);
}

static void replan_on_offers(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct replan *r = arg;
	if (!db_batch_ok(r->batch)) {
		replan_fail(r, "offers");
		return;
	}
	struct db_batch *t = r->cand;
	r->cand = r->batch;
	r->batch = t ? t : db_batch_new();
	if (plan_pool_init(&r->offers, db_batch_result(r->cand, 0)) < 0) {
		replan_fail(r, "offers");
		return;
	}
	const PGresult *res = db_batch_result(r->claim, 1);
	for (size_t i = 0; i < r->norders; i++) {
		struct replan_order *o = &r->orders[i];
		enum route_policy policy = ROUTE_CHEAPEST;
		route_policy_parse(PQgetvalue(res, (int)i, REPLAN_POLICY), &policy);
		size_t n = json_array_size(o->lines);
		plan_init(&o->plan, &r->offers, n, replan_text(res, (int)i, REPLAN_COUNTRY), policy,
		          (int)strtol(PQgetvalue(res, (int)i, REPLAN_TOLERANCE), NULL, 10));
		o->plan.terms = plan_terms_parse(PQgetvalue(res, (int)i, REPLAN_PENALTY),
		                                 PQgetvalue(res, (int)i, REPLAN_MIN_ACCEPT),
		                                 PQgetvalue(res, (int)i, REPLAN_MIN_ON_TIME));
		o->plan.exclude = o->exclude;
		o->plan.nexclude = o->nexclude;
		for (size_t k = 0; k < n; k++) {
			json_t *line = json_array_get(o->lines, k);
			struct plan_line *l = &o->plan.lines[k];
			l->line_no = (int)json_integer_value(json_object_get(line, "line"));
			l->sku = json_string_value(json_object_get(line, "sku"));
			l->quantity = (int)json_integer_value(json_object_get(line, "quantity"));
		}
		if (plan_route(&o->plan) < 0) {
			replan_fail(r, "route");
			return;
		}
	}
	replan_reserve(r);
}

/* Reads claim row i into order o. Returns 0, or -1 when it is not a claim row. */
static int replan_decode(const PGresult *res, int i, struct replan_order *o)
{
	o->lines = json_loads(PQgetvalue(res, i, REPLAN_LINES), 0, NULL);
	json_t *ex = json_loads(PQgetvalue(res, i, REPLAN_EXCLUDE), 0, NULL);
	if (!json_is_array(o->lines) || !json_is_array(ex)) {
		json_decref(ex);
		return -1;
	}
	o->nexclude = json_array_size(ex);
	o->exclude = mem_calloc(o->nexclude, sizeof *o->exclude);
	for (size_t k = 0; k < o->nexclude; k++)
		o->exclude[k] = json_integer_value(json_array_get(ex, k));
	json_decref(ex);
	o->where = (struct plan_order){
		PQgetvalue(res, i, REPLAN_STORE_ID), PQgetvalue(res, i, REPLAN_STORE_CODE),
		PQgetvalue(res, i, REPLAN_ORDER_ID), PQgetvalue(res, i, REPLAN_EXTERNAL_ID),
		replan_text(res, i, REPLAN_SHIP_NAME), replan_text(res, i, REPLAN_SHIP_LINE1),
		replan_text(res, i, REPLAN_SHIP_LINE2), replan_text(res, i, REPLAN_SHIP_CITY),
		replan_text(res, i, REPLAN_SHIP_REGION), replan_text(res, i, REPLAN_SHIP_POSTAL_CODE),
		replan_text(res, i, REPLAN_COUNTRY), replan_text(res, i, REPLAN_SHIP_PHONE),
	};
	return 0;
}

static void replan_on_claim(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct replan *r = arg;
	if (!db_batch_ok(r->batch)) {
		replan_fail(r, "claim");
		return;
	}
	struct db_batch *t = r->claim;
	r->claim = r->batch;
	r->batch = t ? t : db_batch_new();
	const PGresult *res = db_batch_result(r->claim, 1);
	if (PQnfields(res) != REPLAN_NCOLS) {
		replan_fail(r, "claim");
		return;
	}
	/* Nothing to plan (or only SKUs nobody waits for): COMMIT takes them. */
	r->norders = (size_t)PQntuples(res);
	if (r->norders == 0) {
		db_batch_reset(r->batch);
		db_batch_add(r->batch, NULL, "COMMIT", 0, NULL);
		replan_send(r, REPLAN_FINISH, replan_on_finish);
		return;
	}
	r->orders = mem_calloc(r->norders, sizeof *r->orders);
	size_t nskus = 0, cap = 16;
	const char **skus = mem_calloc(cap, sizeof *skus);
	for (size_t i = 0; i < r->norders; i++) {
		if (replan_decode(res, (int)i, &r->orders[i]) < 0) {
			free(skus);
			replan_fail(r, "claim");
			return;
		}
		json_t *line;
		size_t k;
		json_array_foreach(r->orders[i].lines, k, line) {
			if (nskus == cap) {
				cap *= 2;
				skus = mem_realloc(skus, cap * sizeof *skus);
			}
			skus[nskus++] = json_string_value(json_object_get(line, "sku"));
		}
	}
	r->again = r->norders >= REPLAN_MAX_ORDERS;
	db_batch_reset(r->batch);
	plan_add_candidates(r->batch, skus, nskus, NULL, 0);
	free(skus);
	replan_send(r, REPLAN_OFFERS, replan_on_offers);
}

static void replan_on_swept(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct replan *r = arg;
	if (!db_batch_ok(r->batch)) {
		replan_fail(r, "sweep");
		return;
	}
	const char *expired = PQcmdTuples(db_batch_result(r->batch, 0));
	if (strcmp(expired, "0") != 0)
		log_info("waiting lines expired", "lines=%s", expired);
	replan_done(r, 0);
}

static void replan_on_conn(struct db_conn *conn, void *arg)
{
	struct replan *r = arg;
	if (!conn || r->stopping) {
		r->conn = conn;
		replan_done(r, 0);
		return;
	}
	r->conn = conn;
	db_batch_reset(r->batch);
	long long now = replan_now_ms();
	if (now >= r->next_sweep_ms) {
		r->next_sweep_ms = now + REPLAN_SWEEP_MS;
		db_batch_add(r->batch, "replan_expire", NULL, 0, NULL);
		db_batch_add(r->batch, "replan_prune", NULL, 0, NULL);
		r->again = 1; /* the claim comes next */
		replan_send(r, REPLAN_SWEEP, replan_on_swept);
		return;
	}
	db_batch_add(r->batch, NULL, "BEGIN", 0, NULL);
	db_batch_add(r->batch, "replan_claim", NULL, 0, NULL);
	replan_send(r, REPLAN_CLAIM, replan_on_claim);
}

static void replan_on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct replan *r = arg;
	if (r->stopping)
		return;
	if (r->state != REPLAN_IDLE) {
		r->again = 1;
		return;
	}
	r->state = REPLAN_ACQUIRE;
	db_pool_acquire(r->pool, replan_on_conn, r);
}

struct replan *replan_new(struct event_base *base, struct db_pool *pool, int poll_ms,
                          void (*outbox_ready)(void *arg), void *arg)
{
	struct replan *r = mem_calloc(1, sizeof *r);
	r->base = base;
	r->pool = pool;
	r->outbox_ready = outbox_ready;
	r->outbox_arg = arg;
	r->batch = db_batch_new();
	r->kick = event_new(base, -1, 0, replan_on_tick, r);
	r->timer = event_new(base, -1, EV_PERSIST, replan_on_tick, r);
	struct timeval tv = { poll_ms / 1000, (poll_ms % 1000) * 1000 };
	evtimer_add(r->timer, &tv);
	return r;
}

void replan_wake(struct replan *r)
{
	if (r && !r->stopping)
		event_active(r->kick, EV_TIMEOUT, 0);
}

void replan_stop(struct replan *r)
{
	if (!r)
		return;
	r->stopping = 1;
	evtimer_del(r->timer);
}

void replan_free(struct replan *r)
{
	if (!r)
		return;
	replan_clear(r);
	event_free(r->timer);
	event_free(r->kick);
	db_batch_free(r->batch);
	db_batch_free(r->claim);
	db_batch_free(r->cand);
	free(r);
}
