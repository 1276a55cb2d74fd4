#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log/log.h"
#include "mem/mem.h"
#include "rescore/rescore.h"

/* rescore_count's columns: one row per supplier, in id order. */
enum rescore_col {
	RESCORE_SUPPLIER_ID,
	RESCORE_WINDOW_START,
	RESCORE_REQUESTS,
	RESCORE_ANSWERED,
	RESCORE_ACCEPTED,
	RESCORE_REJECTED,
	RESCORE_FAILED,
	RESCORE_BY_REASON,        /* jsonb {"reason": count} of the rejections */
	RESCORE_JUDGED,
	RESCORE_ON_TIME,
	RESCORE_HOURS_TO_ACCEPT,  /* median; NULL when nothing was accepted */
	RESCORE_HOURS_TO_SHIP,
	RESCORE_NCOLS
};

/* rescore_save's parameters, one array each. */
enum rescore_save_col {
	RESCORE_SAVE_PRIOR_WEIGHT = RESCORE_NCOLS,
	RESCORE_SAVE_ACCEPTANCE,
	RESCORE_SAVE_ON_TIME,
	RESCORE_SAVE_NCOLS
};

const struct db_stmt_def rescore_stmts[] = {
	/* Each supplier's requests created in the window ($1 seconds). A
	 * request is accepted once it was accepted or shipped; rejected when
	 * it was rejected at any step (a missed deadline is one, reason
	 * timeout); answered when accepted, rejected before that, or never
	 * delivered (failed). Its shipping is judged once it shipped, was
	 * rejected after accepting, or is past ship_within: on time when it
	 * shipped within ship_within of its creation. */
	{ "rescore_count",
	  "SELECT s.id, now() - make_interval(secs => $1::int), count(r.supplier_id),"
	  "   count(*) FILTER (WHERE r.accepted OR r.rejected OR r.failed),"
	  "   count(*) FILTER (WHERE r.accepted), count(*) FILTER (WHERE r.rejected),"
	  "   count(*) FILTER (WHERE r.failed AND NOT r.accepted),"
	  /* the rejections' reasons, counted from the few rejected rows */
	  "   coalesce((SELECT jsonb_object_agg(x.reason, x.n) FROM (SELECT u.reason, count(*) AS n"
	  "       FROM unnest(array_agg(coalesce(r.reason, 'unknown')) FILTER (WHERE r.rejected)) AS u(reason)"
	  "       GROUP BY u.reason) x), '{}'),"
	  "   count(*) FILTER (WHERE r.accepted AND (r.shipped_at IS NOT NULL OR r.rejected OR r.ship_by < now())),"
	  "   count(*) FILTER (WHERE r.accepted AND r.shipped_at <= r.ship_by),"
	  "   round((percentile_cont(0.5) WITHIN GROUP"
	  "     (ORDER BY extract(epoch FROM r.accepted_at - r.created_at)::float8) / 3600)::numeric, 2),"
	  "   round((percentile_cont(0.5) WITHIN GROUP"
	  "     (ORDER BY extract(epoch FROM r.shipped_at - r.created_at)::float8) / 3600)::numeric, 2)"
	  " FROM suppliers s LEFT JOIN (SELECT r.supplier_id, r.reason, r.created_at, r.accepted_at, r.shipped_at,"
	  "     r.status = 'failed' AS failed,"
	  "     (r.accepted_at IS NOT NULL OR r.shipped_at IS NOT NULL) AS accepted,"
	  "     (r.status = 'rejected' OR r.rejected_at IS NOT NULL) AS rejected,"
	  "     r.created_at + w.ship_within AS ship_by"
	  "   FROM fulfillment_requests r JOIN suppliers w ON w.id = r.supplier_id"
	  "   WHERE r.created_at >= now() - make_interval(secs => $1::int)) r ON r.supplier_id = s.id"
	  /* Only when due: no rows when every supplier was counted less than
	   * $2 ms ago (by this process before a restart, or by another node).
	   * The condition is on no row, so the window is not read at all then. */
	  " WHERE EXISTS (SELECT 1 FROM suppliers x LEFT JOIN supplier_scores y ON y.supplier_id = x.id"
	  "   WHERE y.refreshed_at IS NULL OR y.refreshed_at < now() - make_interval(secs => $2::float8 / 1000))"
	  " GROUP BY s.id ORDER BY s.id" },
	/* The rows, in supplier id order (concurrent writers lock alike). */
	{ "rescore_save",
	  "INSERT INTO supplier_scores (supplier_id, window_start, refreshed_at, requests, answered, accepted,"
	  "   rejected, failed, rejected_by_reason, judged, on_time, median_hours_to_accept, median_hours_to_ship,"
	  "   prior_weight, acceptance_ppm, on_time_ppm)"
	  " SELECT u.s, u.ws, now(), u.rq, u.an, u.ac, u.rj, u.fa, u.br::jsonb, u.ju, u.ot, u.ha, u.hs, u.pw, u.ap,"
	  "   u.op"
	  " FROM unnest($1::bigint[], $2::timestamptz[], $3::int[], $4::int[], $5::int[], $6::int[], $7::int[],"
	  "   $8::text[], $9::int[], $10::int[], $11::numeric[], $12::numeric[], $13::int[], $14::int[],"
	  "   $15::int[]) AS u(s, ws, rq, an, ac, rj, fa, br, ju, ot, ha, hs, pw, ap, op)"
	  " ORDER BY u.s"
	  " ON CONFLICT (supplier_id) DO UPDATE SET window_start = EXCLUDED.window_start,"
	  "   refreshed_at = EXCLUDED.refreshed_at, requests = EXCLUDED.requests, answered = EXCLUDED.answered,"
	  "   accepted = EXCLUDED.accepted, rejected = EXCLUDED.rejected, failed = EXCLUDED.failed,"
	  "   rejected_by_reason = EXCLUDED.rejected_by_reason, judged = EXCLUDED.judged,"
	  "   on_time = EXCLUDED.on_time, median_hours_to_accept = EXCLUDED.median_hours_to_accept,"
	  "   median_hours_to_ship = EXCLUDED.median_hours_to_ship, prior_weight = EXCLUDED.prior_weight,"
	  "   acceptance_ppm = EXCLUDED.acceptance_ppm, on_time_ppm = EXCLUDED.on_time_ppm" },
	{ NULL, NULL },
};

enum rescore_state {
	RESCORE_IDLE,      /* nothing in flight */
	RESCORE_ACQUIRE,   /* waiting for a pool connection */
	RESCORE_COUNT,     /* the count in flight */
	RESCORE_SAVE,      /* the rows in flight */
};

/* Allocated by rescore_new, freed by rescore_free. */
struct rescore {
	struct db_pool *pool;
	struct rescore_options opt;
	enum rescore_state state;
	int stopping;
	struct event *timer;
	struct event *kick;
	struct db_conn *conn;         /* held from ACQUIRE to the end of SAVE */
	struct db_batch *batch;
	long long started_ms;         /* of the count in flight */
};

static long long rescore_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void rescore_done(struct rescore *r)
{
	if (r->conn)
		db_conn_release(r->conn);
	r->conn = NULL;
	r->state = RESCORE_IDLE;
}

static void rescore_fail(struct rescore *r, const char *step)
{
	char q[300];
	log_warn("supplier scores not refreshed", "step=%s sqlstate=%s error=%s", step,
	         db_batch_sqlstate(r->batch), log_quote(q, sizeof q, db_batch_error(r->batch)));
	rescore_done(r);
}

static void rescore_on_saved(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct rescore *r = arg;
	if (!db_batch_ok(r->batch)) {
		rescore_fail(r, "save");
		return;
	}
	log_debug("supplier scores refreshed", "suppliers=%s ms=%lld", PQcmdTuples(db_batch_result(r->batch, 0)),
	          rescore_now_ms() - r->started_ms);
	rescore_done(r);
}

static long long rescore_ll(const PGresult *res, int row, int col)
{
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static const char *rescore_text(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* The counted rows with their smoothed rates, as rescore_save's columns. */
static void rescore_rows(const struct rescore *r, const PGresult *res, struct db_columns *c)
{
	char weight[16];
	snprintf(weight, sizeof weight, "%d", r->opt.prior.weight);
	for (int row = 0; row < PQntuples(res); row++) {
		struct score_counts counts = {
			.answered = rescore_ll(res, row, RESCORE_ANSWERED),
			.accepted = rescore_ll(res, row, RESCORE_ACCEPTED),
			.judged = rescore_ll(res, row, RESCORE_JUDGED),
			.on_time = rescore_ll(res, row, RESCORE_ON_TIME),
		};
		struct score_rates rates = score_rates_of(&counts, &r->opt.prior);
		char acc[16], ontime[16];
		snprintf(acc, sizeof acc, "%d", rates.acceptance_ppm);
		snprintf(ontime, sizeof ontime, "%d", rates.on_time_ppm);
		const char *v[RESCORE_SAVE_NCOLS];
		for (int col = 0; col < RESCORE_NCOLS; col++)
			v[col] = rescore_text(res, row, col);
		v[RESCORE_SAVE_PRIOR_WEIGHT] = weight;
		v[RESCORE_SAVE_ACCEPTANCE] = acc;
		v[RESCORE_SAVE_ON_TIME] = ontime;
		db_columns_add(c, v);
	}
}

static void rescore_on_counted(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn, (void)batch;
	struct rescore *r = arg;
	const PGresult *res = db_batch_result(r->batch, 0);
	if (!db_batch_ok(r->batch) || PQnfields(res) != RESCORE_NCOLS) {
		rescore_fail(r, "count");
		return;
	}
	if (PQntuples(res) == 0 || r->stopping) {
		rescore_done(r);
		return;
	}
	struct db_columns c;
	db_columns_init(&c, RESCORE_SAVE_NCOLS);
	rescore_rows(r, res, &c);
	/* The columns are copies: the count's result may go with the reset. */
	db_batch_reset(r->batch);
	db_batch_add_columns(r->batch, "rescore_save", &c);
	db_columns_free(&c);
	r->state = RESCORE_SAVE;
	db_conn_send(r->conn, r->batch, rescore_on_saved, r);
}

static void rescore_on_conn(struct db_conn *conn, void *arg)
{
	struct rescore *r = arg;
	r->conn = conn;
	if (!conn || r->stopping) {
		rescore_done(r);
		return;
	}
	char window[16], due[16];
	snprintf(window, sizeof window, "%d", r->opt.window_s);
	/* A little less than the period, so that a timer's tick never finds
	 * the last count a few milliseconds too recent. */
	snprintf(due, sizeof due, "%d", r->opt.refresh_ms - r->opt.refresh_ms / 10);
	const char *v[2] = { window, due };
	db_batch_reset(r->batch);
	db_batch_add(r->batch, "rescore_count", NULL, 2, v);
	r->state = RESCORE_COUNT;
	r->started_ms = rescore_now_ms();
	db_conn_send(conn, r->batch, rescore_on_counted, r);
}

static void rescore_on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct rescore *r = arg;
	/* A count still in flight when the next is due: that one is current enough. */
	if (r->stopping || r->state != RESCORE_IDLE)
		return;
	r->state = RESCORE_ACQUIRE;
	db_pool_acquire(r->pool, rescore_on_conn, r);
}

struct rescore *rescore_new(struct event_base *base, struct db_pool *pool, const struct rescore_options *opt)
{
	struct rescore *r = mem_calloc(1, sizeof *r);
	r->pool = pool;
	r->opt = *opt;
	r->batch = db_batch_new();
	r->kick = event_new(base, -1, 0, rescore_on_tick, r);
	r->timer = event_new(base, -1, EV_PERSIST, rescore_on_tick, r);
	if (!r->kick || !r->timer)
		mem_oom();
	struct timeval tv = { opt->refresh_ms / 1000, (opt->refresh_ms % 1000) * 1000 };
	evtimer_add(r->timer, &tv);
	event_active(r->kick, EV_TIMEOUT, 0);
	return r;
}

void rescore_stop(struct rescore *r)
{
	if (!r)
		return;
	r->stopping = 1;
	evtimer_del(r->timer);
}

void rescore_free(struct rescore *r)
{
	if (!r)
		return;
	event_free(r->timer);
	event_free(r->kick);
	db_batch_free(r->batch);
	free(r);
}
