#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "breaker/breaker.h"
#include "config/config.h"
#include "callback/callback.h"
#include "dispatch/dispatch.h"
#include "log/log.h"
#include "mem/mem.h"
#include "metrics/metrics.h"
#include "retry/retry.h"
#include "sig/sig.h"
#include "storepush/storepush.h"

/* Response text kept with an attempt, for operators. */
#define DISPATCH_RESPONSE_KEEP 1000
/* Suppliers whose breakers are tracked per worker. */
#define DISPATCH_MAX_BREAKERS 1024

const struct db_stmt_def dispatch_stmts[] = {
	{ "dispatch_claim",
	  "WITH c AS (SELECT id FROM outbox"
	  "   WHERE state = 'pending' AND next_attempt_at <= now()"
	  "     AND (lease_expires_at IS NULL OR lease_expires_at < now())"
	  "     AND NOT (coalesce(supplier_id, 0) = ANY ($3::bigint[]))"
	  "   ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED)"
	  " UPDATE outbox o SET lease_token = $2::uuid,"
	  "   lease_expires_at = now() + $4::int * interval '1 millisecond', attempts = o.attempts + 1"
	  " FROM c WHERE o.id = c.id"
	  " RETURNING o.id, o.kind, o.payload::text, o.idempotency_key, o.attempts,"
	  "   coalesce(o.supplier_id, 0),"
	  /* platform messages go to the store's platform, with its credentials (storepush) */
	  "   CASE WHEN o.kind LIKE 'platform.%' THEN (SELECT platform_url FROM stores s WHERE s.id = o.store_id)"
	  "     WHEN o.supplier_id IS NULL"
	  "     THEN (SELECT callback_url FROM stores s WHERE s.id = o.store_id)"
	  "     ELSE (SELECT endpoint FROM suppliers s WHERE s.id = o.supplier_id) END,"
	  "   CASE WHEN o.kind LIKE 'platform.%' THEN (SELECT CASE s.format WHEN 'shopify' THEN s.platform_token"
	  "       ELSE s.platform_key || ':' || s.platform_secret END FROM stores s WHERE s.id = o.store_id)"
	  "     WHEN o.supplier_id IS NULL"
	  "     THEN (SELECT secrets[1] FROM stores s WHERE s.id = o.store_id)"
	  "     ELSE (SELECT secrets[1] FROM suppliers s WHERE s.id = o.supplier_id) END,"
	  "   CASE WHEN o.kind LIKE 'platform.%'"
	  "     THEN 'platform:' || (SELECT code FROM stores s WHERE s.id = o.store_id)"
	  "     WHEN o.supplier_id IS NULL"
	  "     THEN 'store:' || (SELECT code FROM stores s WHERE s.id = o.store_id)"
	  "     ELSE 'supplier:' || (SELECT code FROM suppliers s WHERE s.id = o.supplier_id) END,"
	  "   o.request_id" },
	/* The outcomes of a flight of attempts, one row each. The message's
	 * state is fenced by its lease: a holder whose lease expired and was
	 * reclaimed changes nothing there. The attempt itself is recorded
	 * whatever the lease, once (its number came with the claim). Returns
	 * the messages whose state was written. */
	{ "dispatch_record",
	  "WITH u AS (SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::int[], $5::text[],"
	  "     $6::text[], $7::bigint[], $8::int[], $9::bigint[], $10::int[])"
	  "     AS t(id, token, state, status, error, response, started_ms, latency, delay, attempt)),"
	  " o AS (UPDATE outbox m SET state = u.state,"
	  "     delivered_at = CASE WHEN u.state = 'delivered' THEN now() END,"
	  "     next_attempt_at = CASE WHEN u.state = 'pending'"
	  "       THEN now() + u.delay * interval '1 millisecond' ELSE m.next_attempt_at END,"
	  "     last_status = u.status, last_error = u.error, last_response = u.response,"
	  "     lease_token = NULL, lease_expires_at = NULL"
	  "   FROM u WHERE m.id = u.id AND m.lease_token = u.token"
	  "   RETURNING m.id, m.request_id, m.kind, m.supplier_id, m.store_id, u.state,"
	  "     CASE WHEN u.status IS NOT NULL"
	  "       THEN 'HTTP ' || u.status || coalesce(': ' || left(u.response, 200), '')"
	  "       ELSE coalesce(u.error, 'not delivered') END AS cause),"
	  " a AS (INSERT INTO outbox_attempts (outbox_id, attempt, started_at, status, error, latency_ms)"
	  "   SELECT id, attempt, to_timestamp(started_ms / 1000.0), status, error, latency FROM u"
	  "   ON CONFLICT (outbox_id, attempt) DO NOTHING),"
	  " f AS (UPDATE fulfillment_requests r SET status = 'sent', updated_at = now()"
	  "   FROM o WHERE r.id = o.request_id AND o.kind = 'fulfillment.requested'"
	  "     AND r.status = 'pending' AND o.state = 'delivered'),"
	  /* a request that could not be delivered is re-routed (callback_fail_delivery) */
	  " x AS (INSERT INTO request_failures (request_id, supplier_id, cause)"
	  "   SELECT request_id, supplier_id, cause FROM o"
	  "   WHERE kind = 'fulfillment.requested' AND state = 'failed'"
	  "   ON CONFLICT (request_id) DO NOTHING),"
	  /* a cancellation the supplier never got: it may still ship, someone must look;
	   * likewise a shipment the store's platform was never told of */
	  " c AS (UPDATE orders d SET status = 'needs_attention', updated_at = now()"
	  "   FROM o JOIN fulfillment_requests r ON r.id = o.request_id"
	  "   WHERE o.kind IN ('fulfillment.cancel_requested', 'platform.fulfillment', 'platform.completed')"
	  "     AND o.state = 'failed'"
	  "     AND d.store_id = r.store_id AND d.id = r.order_id RETURNING d.store_id, d.id),"
	  " n AS (INSERT INTO outbox (kind, store_id, idempotency_key, payload)"
	  "   SELECT 'order.needs_attention', c.store_id, 'order-' || c.id || '.needs_attention',"
	  "     order_notice('order.needs_attention', c.store_id, c.id, NULL)"
	  "       || jsonb_build_object('status', 'needs_attention')"
	  "   FROM c JOIN stores st ON st.id = c.store_id WHERE st.callback_url IS NOT NULL"
	  "   ON CONFLICT (idempotency_key) DO NOTHING)"
	  " SELECT id FROM o" },
	/* Requests that could not be delivered and are not re-routed yet (the
	 * fast path after recording did not run, e.g. the process stopped). */
	{ "dispatch_failures",
	  "SELECT f.request_id, f.supplier_id, f.cause, (SELECT code FROM suppliers s WHERE s.id = f.supplier_id)"
	  " FROM request_failures f ORDER BY f.failed_at LIMIT 64" },
	/* Deadlines: requests sent but not accepted within their supplier's
	 * accept_within, or accepted but not shipped within ship_within (their
	 * due_at, kept by triggers: migrations/0012). Each is then rejected for
	 * timeout through the callback path (re-routing included); two sweepers
	 * finding the same one are harmless, since the second finds its deadline
	 * event already recorded. The index holds open requests only and is
	 * read from its start to now: the overdue ones and nothing else. */
	{ "dispatch_deadlines",
	  "SELECT r.id, r.supplier_id,"
	  "   CASE WHEN r.status = 'accepted' THEN 'ship_within' ELSE 'accept_within' END,"
	  "   (SELECT code FROM suppliers s WHERE s.id = r.supplier_id)"
	  " FROM fulfillment_requests r"
	  " WHERE r.due_at < now()"
	  " ORDER BY r.due_at LIMIT 64" },
	/* The HTTP calls of platform messages' attempts (storepush), whatever
	 * the lease, like the attempts. Arrays: outbox id, attempt, steps (a
	 * JSON array each). */
	{ "dispatch_steps",
	  "INSERT INTO outbox_steps (outbox_id, attempt, step, action, method, path, started_at, status, error,"
	  "   latency_ms, ref)"
	  " SELECT u.id, u.attempt, s.step, s.action, s.method, s.path, to_timestamp(s.started_ms / 1000.0),"
	  "   s.status, s.error, s.latency_ms, s.ref"
	  " FROM unnest($1::bigint[], $2::int[], $3::jsonb[]) AS u(id, attempt, steps),"
	  "   jsonb_to_recordset(u.steps) AS s(step int, action text, method text, path text, started_ms bigint,"
	  "     status int, error text, latency_ms int, ref text)"
	  " ON CONFLICT (outbox_id, attempt, step) DO NOTHING" },
	/* Gives claims back unsent (their supplier's breaker is open). */
	{ "dispatch_release",
	  "UPDATE outbox m SET attempts = m.attempts - 1, lease_token = NULL, lease_expires_at = NULL,"
	  "  next_attempt_at = now() + u.delay * interval '1 millisecond'"
	  " FROM unnest($1::bigint[], $2::uuid[], $3::bigint[]) AS u(id, token, delay)"
	  " WHERE m.id = u.id AND m.lease_token = u.token" },
	{ NULL, NULL },
};

struct dispatch_breaker {
	long long supplier_id;
	char code[72];                   /* the supplier's, for logs and metrics */
	struct breaker b;
};

struct dispatch {
	struct event_base *base;
	struct db_pool *pool;
	struct client *client;
	struct callback_queue *callbacks;
	struct metrics *metrics;
	struct dispatch_options opt;
	struct event *poll_timer;
	struct event *wake;
	int claiming;
	int stopping;
	void (*idle)(void *arg);    /* told once the stop has nothing left in flight */
	void *idle_arg;
	struct event *idle_ev;
	int freeing;
	int inflight;
	uint64_t rng;
	struct dispatch_breaker *breakers;
	size_t nbreakers;
	struct storepush *push;       /* platform messages (platform.*) */
	struct db_batch *claim;
	char claim_token[RETRY_LEASE_TOKEN_LEN];  /* lease of the claim in flight */
	struct dispatch_job *rec_head, *rec_tail;  /* outcomes waiting to be written */
	int recording;              /* a flight of outcomes is being written */
	struct event *rec_retry;    /* the database was away: write them again */
	int sweeping;               /* sweep query or overdue requests in progress */
	long long next_sweep_ms;
	struct db_batch *sweep;
};

enum dispatch_job_state {
	DISPATCH_JOB_SENDING,    /* HTTP request in flight */
	DISPATCH_JOB_RECORDING,  /* outcome being written */
};

/* One claimed message, from claim to recorded outcome; freed by dispatch_job_free. */
struct dispatch_job {
	struct dispatch *d;
	enum dispatch_job_state state;
	char id[24];
	char token[RETRY_LEASE_TOKEN_LEN];
	char kind[40];
	char target[80];                 /* supplier:CODE or store:CODE, for logs */
	const char *supplier_code;       /* CODE of target when it is a supplier */
	char request_id[40];             /* fulfillment.requested: its request; "" else */
	long long supplier_id;
	int attempts;
	long long started_ms;
	long long sent_us;               /* monotonic, for the duration metric */
	/* outcome */
	const char *next_state;   /* "delivered", "pending", "failed", or NULL to release */
	int status;
	char error[256];
	char *response;
	char *steps;              /* platform messages: the calls made (storepush), JSON; else NULL */
	long latency_ms;
	long long delay_ms;
	struct dispatch_job *next;  /* waiting to be recorded, or in the flight */
};

static long long dispatch_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* xorshift64*: jitter needs spread, not secrecy. */
static uint64_t dispatch_random(struct dispatch *d)
{
	d->rng ^= d->rng >> 12;
	d->rng ^= d->rng << 25;
	d->rng ^= d->rng >> 27;
	return d->rng * 2685821657736338717ULL;
}

static long long dispatch_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The breaker of job's supplier (made closed on first use), or NULL when
 * the table is full. */
static struct dispatch_breaker *dispatch_breaker(struct dispatch *d, const struct dispatch_job *job)
{
	for (size_t i = 0; i < d->nbreakers; i++)
		if (d->breakers[i].supplier_id == job->supplier_id)
			return &d->breakers[i];
	if (d->nbreakers == DISPATCH_MAX_BREAKERS)
		return NULL;
	struct dispatch_breaker *nb = mem_realloc(d->breakers, (d->nbreakers + 1) * sizeof *nb);
	d->breakers = nb;
	nb += d->nbreakers++;
	nb->supplier_id = job->supplier_id;
	snprintf(nb->code, sizeof nb->code, "%s", job->supplier_code);
	breaker_init(&nb->b, d->opt.breaker_threshold, d->opt.breaker_cooldown_ms);
	metrics_set_breaker(d->metrics, nb->code, 0);
	return nb;
}

/* A breaker that left state `was`: one log line, and the gauge. */
static void dispatch_breaker_moved(struct dispatch *d, const struct dispatch_breaker *db, enum breaker_state was)
{
	enum breaker_state now = db->b.state;
	if (now == was)
		return;
	static const char *const msg[BREAKER_STATE_MAX] = {
		[BREAKER_CLOSED] = "breaker closed", [BREAKER_OPEN] = "breaker opened",
		[BREAKER_HALF_OPEN] = "breaker half-open",
	};
	log_write(now == BREAKER_OPEN ? LOG_WARN : LOG_INFO, msg[now], "supplier=%s from=%s failures=%d",
	          db->code, breaker_state_name(was), db->b.failures);
	metrics_set_breaker(d->metrics, db->code, now != BREAKER_CLOSED);
}

/* After a stop: tells the worker once nothing is in flight any more. */
static void dispatch_check_idle(struct dispatch *d)
{
	if (d->stopping && d->idle && !d->freeing && !d->claiming && d->inflight == 0)
		event_active(d->idle_ev, EV_TIMEOUT, 0);
}

static void dispatch_on_idle(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct dispatch *d = arg;
	void (*idle)(void *) = d->idle;
	d->idle = NULL;
	if (idle)
		idle(d->idle_arg);
}

static void dispatch_job_free(struct dispatch_job *job)
{
	struct dispatch *d = job->d;
	d->inflight--;
	free(job->response);
	free(job->steps);
	free(job);
	dispatch_check_idle(d);
}

static void dispatch_kick(struct dispatch *d)
{
	if (!d->stopping && !d->freeing)
		event_active(d->wake, EV_TIMEOUT, 0);
}

/* ---- recording outcomes, a flight at a time ---- */

static void dispatch_flush(struct dispatch *d);

/* Puts a flight's jobs back at the head of the queue (in order). */
static void dispatch_requeue(struct dispatch *d, struct dispatch_job *flight)
{
	struct dispatch_job *last = flight;
	while (last->next)
		last = last->next;
	last->next = d->rec_head;
	if (!d->rec_head)
		d->rec_tail = last;
	d->rec_head = flight;
}

static void dispatch_free_jobs(struct dispatch_job *job)
{
	while (job) {
		struct dispatch_job *next = job->next;
		dispatch_job_free(job);
		job = next;
	}
}

/* The database was away: the outcomes stay queued (their jobs hold their
 * places in flight, so nothing new is claimed) and are written on its
 * return; their leases are fenced, their attempts recorded all the same. */
static void dispatch_retry_later(struct dispatch *d, struct dispatch_job *flight)
{
	dispatch_requeue(d, flight);
	d->recording = 0;
	struct timeval tv = { 1, 0 };
	evtimer_add(d->rec_retry, &tv);
}

struct dispatch_flight {
	struct dispatch *d;
	struct dispatch_job *jobs;
	struct db_batch *batch;
	int i_record;                 /* -1 when the flight has no outcome to record */
};

static void dispatch_on_failure_done(void *arg)
{
	(void)arg;
}

/* A request that could not be delivered is re-routed at once; should that
 * not happen (the process stops), the sweep finds it in request_failures. */
static void dispatch_fail_request(struct dispatch *d, const struct dispatch_job *j)
{
	char cause[300];
	if (j->status)
		snprintf(cause, sizeof cause, "HTTP %d%s%.200s", j->status, j->response ? ": " : "",
		         j->response ? j->response : "");
	else
		snprintf(cause, sizeof cause, "%s", j->error[0] ? j->error : "not delivered");
	char sid[24];
	snprintf(sid, sizeof sid, "%lld", j->supplier_id);
	callback_fail_delivery(d->callbacks, j->request_id, sid, j->supplier_code, cause, dispatch_on_failure_done,
	                       NULL);
}

static void dispatch_on_recorded(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)batch;
	struct dispatch_flight *f = arg;
	struct dispatch *d = f->d;
	db_conn_release(conn);
	if (!db_batch_ok(f->batch)) {
		char q[300];
		log_warn("dispatch record failed", "outcomes=%s error=%s", f->i_record >= 0 ? "yes" : "releases",
		         log_quote(q, sizeof q, db_batch_error(f->batch)));
		if (db_batch_conn_failed(f->batch) && !d->freeing) {
			dispatch_retry_later(d, f->jobs);
		} else {
			dispatch_free_jobs(f->jobs); /* their leases expire; they are tried again */
			d->recording = 0;
		}
	} else {
		const PGresult *res = f->i_record >= 0 ? db_batch_result(f->batch, f->i_record) : NULL;
		for (struct dispatch_job *j = f->jobs; j && res; j = j->next) {
			int written = 0;
			for (int r = 0; r < PQntuples(res) && !written; r++)
				written = strcmp(PQgetvalue(res, r, 0), j->id) == 0;
			if (j->next_state && !written)
				log_warn("dispatch lease lost", "outbox_id=%s", j->id);
			else if (j->next_state && strcmp(j->next_state, "failed") == 0 && j->request_id[0])
				dispatch_fail_request(d, j);
		}
		dispatch_free_jobs(f->jobs);
		d->recording = 0;
	}
	db_batch_free(f->batch);
	free(f);
	dispatch_flush(d);
	dispatch_kick(d); /* room for more */
}

static void dispatch_on_record_conn(struct db_conn *conn, void *arg)
{
	struct dispatch_flight *f = arg;
	struct dispatch *d = f->d;
	if (!conn) {
		log_warn("dispatch cannot record outcomes", "reason=\"database unavailable\"%s", "");
		if (d->freeing) {
			dispatch_free_jobs(f->jobs);
			d->recording = 0;
		} else {
			dispatch_retry_later(d, f->jobs);
		}
		free(f);
		return;
	}
	struct db_columns rec, rel, steps;
	db_columns_init(&rec, 10);
	db_columns_init(&rel, 3);
	db_columns_init(&steps, 3);
	for (struct dispatch_job *j = f->jobs; j; j = j->next) {
		char status[16], started[24], latency[24], delay[24], attempt[16];
		snprintf(status, sizeof status, "%d", j->status);
		snprintf(started, sizeof started, "%lld", j->started_ms);
		snprintf(latency, sizeof latency, "%ld", j->latency_ms);
		snprintf(delay, sizeof delay, "%lld", j->delay_ms);
		snprintf(attempt, sizeof attempt, "%d", j->attempts);
		if (j->next_state) {
			const char *v[10] = { j->id, j->token, j->next_state, j->status ? status : NULL,
			                      j->error[0] ? j->error : NULL, j->response, started, latency, delay,
			                      attempt };
			db_columns_add(&rec, v);
			if (j->steps)
				db_columns_add(&steps, (const char *const[]){ j->id, attempt, j->steps });
		} else {
			const char *v[3] = { j->id, j->token, delay };
			db_columns_add(&rel, v);
		}
	}
	f->batch = db_batch_new();
	f->i_record = rec.nrows ? db_batch_add_columns(f->batch, "dispatch_record", &rec) : -1;
	if (rel.nrows)
		db_batch_add_columns(f->batch, "dispatch_release", &rel);
	if (steps.nrows)
		db_batch_add_columns(f->batch, "dispatch_steps", &steps);
	db_columns_free(&rec);
	db_columns_free(&rel);
	db_columns_free(&steps);
	db_conn_send(conn, f->batch, dispatch_on_recorded, f);
}

/* Writes every outcome queued in one flight, unless one is being written:
 * outcomes that finish meanwhile wait for the next flight. */
static void dispatch_flush(struct dispatch *d)
{
	if (d->recording || !d->rec_head)
		return;
	if (d->freeing) {
		dispatch_free_jobs(d->rec_head);
		d->rec_head = d->rec_tail = NULL;
		return;
	}
	d->recording = 1;
	struct dispatch_flight *f = mem_calloc(1, sizeof *f);
	f->d = d;
	f->jobs = d->rec_head;
	d->rec_head = d->rec_tail = NULL;
	db_pool_acquire(d->pool, dispatch_on_record_conn, f);
}

static void dispatch_on_rec_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	dispatch_flush(arg);
}

static void dispatch_record(struct dispatch_job *job)
{
	struct dispatch *d = job->d;
	job->state = DISPATCH_JOB_RECORDING;
	job->next = NULL;
	if (d->rec_tail)
		d->rec_tail->next = job;
	else
		d->rec_head = job;
	d->rec_tail = job;
	dispatch_flush(d);
}

/* ---- sending ---- */

/* The outcome of an attempt (job->status, error, response and latency
 * set): tried again unless the attempts are used up, after the backoff or
 * Retry-After, and at least min_delay_ms; then recorded. */
static void dispatch_settle(struct dispatch_job *job, enum retry_outcome outcome, const char *retry_after,
                            long long min_delay_ms)
{
	struct dispatch *d = job->d;
	if (outcome == RETRY_AGAIN && retry_should_give_up(job->attempts, d->opt.max_attempts))
		outcome = RETRY_FAILED;
	if (outcome == RETRY_AGAIN)
		job->delay_ms = retry_next_delay_ms(job->attempts, job->status, retry_after,
		                                    (int64_t)(dispatch_now_ms() / 1000), d->opt.backoff_base_ms,
		                                    d->opt.backoff_max_ms, dispatch_random(d));
	if (outcome == RETRY_AGAIN && job->delay_ms < min_delay_ms)
		job->delay_ms = min_delay_ms;
	job->next_state = outcome == RETRY_DELIVERED ? "delivered" : outcome == RETRY_AGAIN ? "pending" : "failed";
	enum metrics_dispatch_outcome counted = outcome == RETRY_DELIVERED ? METRICS_DISPATCH_DELIVERED
	                                        : outcome == RETRY_AGAIN ? METRICS_DISPATCH_RETRY
	                                                                 : METRICS_DISPATCH_FAILED;
	metrics_observe_dispatch(d->metrics, counted, (long)(dispatch_mono_us() - job->sent_us));
	char qerr[300];
	log_info("dispatch attempt", "outbox_id=%s kind=%s target=%s attempt=%d status=%d outcome=%s"
	         " latency_ms=%ld delay_ms=%lld error=%s", job->id, job->kind, job->target, job->attempts,
	         job->status, job->next_state, job->latency_ms, job->delay_ms,
	         log_quote(qerr, sizeof qerr, job->error));
	dispatch_record(job);
}

static void dispatch_on_sent(const struct client_response *resp, void *arg)
{
	struct dispatch_job *job = arg;
	struct dispatch *d = job->d;
	job->status = resp->status;
	job->latency_ms = resp->latency_ms;
	if (resp->error)
		snprintf(job->error, sizeof job->error, "%s", resp->error);
	if (resp->body && *resp->body) {
		size_t n = strlen(resp->body);
		job->response = mem_strndup(resp->body, n > DISPATCH_RESPONSE_KEEP ? DISPATCH_RESPONSE_KEEP : n);
	}
	enum retry_outcome outcome = resp->status ? retry_classify(resp->status)
	                             : resp->retryable ? RETRY_AGAIN : RETRY_FAILED;
	/* The breaker counts what says the supplier is unwell: no answer, 5xx, 408, 429. */
	if (job->supplier_id) {
		struct dispatch_breaker *db = dispatch_breaker(d, job);
		int healthy = resp->status && (outcome != RETRY_AGAIN);
		if (db) {
			enum breaker_state was = db->b.state;
			breaker_record(&db->b, healthy, dispatch_now_ms());
			dispatch_breaker_moved(d, db, was);
		}
	}
	dispatch_settle(job, outcome, resp->retry_after, 0);
}

static void dispatch_fail_now(struct dispatch_job *job, const char *error)
{
	snprintf(job->error, sizeof job->error, "%s", error);
	job->next_state = "failed";
	metrics_observe_dispatch(job->d->metrics, METRICS_DISPATCH_FAILED, -1);
	log_warn("dispatch refused", "outbox_id=%s target=%s error=\"%s\"", job->id, job->target, error);
	dispatch_record(job);
}

/* ---- platform messages (platform.fulfillment, platform.completed) ---- */

/* A platform message's run is over: its outcome, like any attempt's, with
 * the calls it made kept for the record. */
static void dispatch_on_pushed(const struct storepush_result *r, void *arg)
{
	struct dispatch_job *job = arg;
	job->status = r->status;
	job->latency_ms = r->latency_ms;
	snprintf(job->error, sizeof job->error, "%s", r->error ? r->error : "");
	job->response = r->response ? mem_strdup(r->response) : NULL;
	job->steps = r->steps ? mem_strdup(r->steps) : NULL;
	if (r->outcome == STOREPUSH_HELD) { /* the host's breaker: given back, no attempt spent */
		job->next_state = NULL;
		job->delay_ms = r->min_delay_ms;
		dispatch_record(job);
		return;
	}
	if (r->note || r->ref)
		log_info("platform message", "outbox_id=%s ref=%s note=\"%s\"", job->id, r->ref ? r->ref : "-",
		         r->note ? r->note : "");
	dispatch_settle(job, r->outcome == STOREPUSH_DONE    ? RETRY_DELIVERED
	                     : r->outcome == STOREPUSH_RETRY ? RETRY_AGAIN
	                                                     : RETRY_FAILED,
	                r->retry_after, r->min_delay_ms);
}

static int dispatch_is_platform(const struct dispatch_job *job)
{
	return strncmp(job->kind, "platform.", 9) == 0;
}

static void dispatch_send(struct dispatch_job *job, const char *endpoint, const char *secret,
                          const char *idem, const char *payload)
{
	struct dispatch *d = job->d;
	if (!endpoint || !*endpoint) {
		dispatch_fail_now(job, "no endpoint configured for the target");
		return;
	}
	if (dispatch_is_platform(job)) {
		char label[48];
		snprintf(label, sizeof label, "outbox_id=%s", job->id);
		job->state = DISPATCH_JOB_SENDING;
		job->started_ms = dispatch_now_ms();
		job->sent_us = dispatch_mono_us();
		storepush_run(d->push, label, job->kind, payload, endpoint, secret, dispatch_on_pushed, job);
		return;
	}
	if (job->supplier_id) {
		struct dispatch_breaker *db = dispatch_breaker(d, job);
		enum breaker_state was = db ? db->b.state : BREAKER_CLOSED;
		int allowed = !db || breaker_allow(&db->b, dispatch_now_ms());
		if (db)
			dispatch_breaker_moved(d, db, was);
		if (!allowed) {
			/* Give it back for when the breaker lets a probe through. */
			job->next_state = NULL;
			long long wait = breaker_retry_at_ms(&db->b) - dispatch_now_ms();
			job->delay_ms = wait > 0 ? wait : 0;
			metrics_observe_dispatch(d->metrics, METRICS_DISPATCH_BREAKER_OPEN, -1);
			dispatch_record(job);
			return;
		}
	}
	char msg_id[48], ts[24], sig[SIG_V1_MAX];
	long long now_s = dispatch_now_ms() / 1000;
	snprintf(msg_id, sizeof msg_id, "msg_%s", job->id);
	snprintf(ts, sizeof ts, "%lld", now_s);
	if (!secret || sig_sign_standard(secret, msg_id, now_s, payload, strlen(payload), sig, sizeof sig) < 0) {
		dispatch_fail_now(job, "the target's secret cannot sign");
		return;
	}
	const char *headers[] = {
		"webhook-id", msg_id, "webhook-timestamp", ts, "webhook-signature", sig,
		"Idempotency-Key", idem, NULL,
	};
	job->state = DISPATCH_JOB_SENDING;
	job->started_ms = dispatch_now_ms();
	job->sent_us = dispatch_mono_us();
	client_post(d->client, endpoint, headers, payload, strlen(payload), dispatch_on_sent, job);
}

/* ---- claiming ---- */

static void dispatch_on_claimed(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)batch;
	struct dispatch *d = arg;
	d->claiming = 0;
	if (!db_batch_ok(d->claim)) {
		char q[300];
		log_warn("dispatch claim failed", "error=%s", log_quote(q, sizeof q, db_batch_error(d->claim)));
		db_conn_release(conn);
		dispatch_check_idle(d);
		return;
	}
	PGresult *res = db_batch_result(d->claim, 0);
	int n = PQntuples(res);
	for (int r = 0; r < n; r++) {
		struct dispatch_job *job = mem_calloc(1, sizeof *job);
		job->d = d;
		d->inflight++;
		snprintf(job->id, sizeof job->id, "%s", PQgetvalue(res, r, 0));
		snprintf(job->token, sizeof job->token, "%s", d->claim_token);
		snprintf(job->kind, sizeof job->kind, "%s", PQgetvalue(res, r, 1));
		job->attempts = (int)strtol(PQgetvalue(res, r, 4), NULL, 10);
		job->supplier_id = strtoll(PQgetvalue(res, r, 5), NULL, 10);
		snprintf(job->target, sizeof job->target, "%s", PQgetvalue(res, r, 8));
		job->supplier_code = strncmp(job->target, "supplier:", 9) == 0 ? job->target + 9 : "";
		if (strcmp(job->kind, "fulfillment.requested") == 0)
			snprintf(job->request_id, sizeof job->request_id, "%s", PQgetvalue(res, r, 9));
		dispatch_send(job, PQgetisnull(res, r, 6) ? NULL : PQgetvalue(res, r, 6),
		              PQgetisnull(res, r, 7) ? NULL : PQgetvalue(res, r, 7), PQgetvalue(res, r, 3),
		              PQgetvalue(res, r, 2));
	}
	db_conn_release(conn);
	/* A full claim suggests more is due. */
	if (n > 0)
		dispatch_kick(d);
	dispatch_check_idle(d);
}

static void dispatch_on_claim_conn(struct db_conn *conn, void *arg)
{
	struct dispatch *d = arg;
	if (!conn || d->stopping) {
		d->claiming = 0;
		if (conn)
			db_conn_release(conn);
		dispatch_check_idle(d);
		return; /* the poll timer tries again */
	}
	int room = d->opt.max_inflight - d->inflight;
	char limit[16], lease[16];
	snprintf(limit, sizeof limit, "%d", room > 0 ? room : 0);
	snprintf(lease, sizeof lease, "%d", d->opt.lease_ms);
	unsigned char rnd[16];
	RAND_bytes(rnd, sizeof rnd);
	retry_lease_token(rnd, d->claim_token);

	/* Suppliers whose breaker is open are left alone until it lets a probe through. */
	long long now = dispatch_now_ms();
	size_t cap = 3 + d->nbreakers * 21;
	char *excluded = mem_alloc(cap), *p = excluded;
	*p++ = '{';
	for (size_t i = 0; i < d->nbreakers; i++)
		if (breaker_retry_at_ms(&d->breakers[i].b) > now)
			p += snprintf(p, cap - (size_t)(p - excluded), "%s%lld", p - excluded > 1 ? "," : "",
			              d->breakers[i].supplier_id);
	*p++ = '}';
	*p = '\0';
	const char *v[4] = { limit, d->claim_token, excluded, lease };
	db_batch_reset(d->claim);
	db_batch_add(d->claim, "dispatch_claim", NULL, 4, v);
	free(excluded);
	db_conn_send(conn, d->claim, dispatch_on_claimed, d);
}

static void dispatch_on_overdue_done(void *arg)
{
	struct dispatch *d = arg;
	if (--d->sweeping == 0)
		dispatch_kick(d); /* cancellations, new requests, notifications to send */
}

static void dispatch_on_swept(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)batch;
	struct dispatch *d = arg;
	d->sweeping = 1; /* held while the overdue requests are handled */
	if (!db_batch_ok(d->sweep)) {
		char q[300];
		log_warn("deadline sweep failed", "error=%s", log_quote(q, sizeof q, db_batch_error(d->sweep)));
	} else {
		PGresult *res = db_batch_result(d->sweep, 0);
		for (int r = 0; r < PQntuples(res); r++) {
			/* request, supplier id, which deadline, supplier code */
			const char *id = PQgetvalue(res, r, 0), *sid = PQgetvalue(res, r, 1);
			const char *missed = PQgetvalue(res, r, 2), *code = PQgetvalue(res, r, 3);
			log_info("deadline missed", "fulfillment=%s supplier=%s missed=%s", id, code, missed);
			if (callback_reject_overdue(d->callbacks, id, sid, code, missed, dispatch_on_overdue_done,
			                            d) == 0)
				d->sweeping++;
		}
		res = db_batch_result(d->sweep, 1);
		for (int r = 0; r < PQntuples(res); r++) {
			/* request, supplier id, cause, supplier code */
			const char *id = PQgetvalue(res, r, 0), *sid = PQgetvalue(res, r, 1);
			const char *cause = PQgetvalue(res, r, 2), *code = PQgetvalue(res, r, 3);
			if (callback_fail_delivery(d->callbacks, id, sid, code, cause, dispatch_on_overdue_done,
			                           d) == 0)
				d->sweeping++;
		}
	}
	db_conn_release(conn);
	dispatch_on_overdue_done(d);
}

static void dispatch_on_sweep_conn(struct db_conn *conn, void *arg)
{
	struct dispatch *d = arg;
	if (!conn || d->stopping) {
		d->sweeping = 0;
		if (conn)
			db_conn_release(conn);
		return;
	}
	db_batch_reset(d->sweep);
	db_batch_add(d->sweep, "dispatch_deadlines", NULL, 0, NULL);
	db_batch_add(d->sweep, "dispatch_failures", NULL, 0, NULL);
	db_conn_send(conn, d->sweep, dispatch_on_swept, d);
}

/* The deadline sweep runs at most every sweep_ms per worker. */
static void dispatch_maybe_sweep(struct dispatch *d)
{
	long long now = dispatch_now_ms();
	if (d->sweeping || d->stopping || d->freeing || now < d->next_sweep_ms)
		return;
	d->sweeping = 1;
	d->next_sweep_ms = now + d->opt.sweep_ms;
	db_pool_acquire(d->pool, dispatch_on_sweep_conn, d);
}

static void dispatch_on_wake(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct dispatch *d = arg;
	dispatch_maybe_sweep(d);
	if (d->claiming || d->stopping || d->freeing || d->inflight >= d->opt.max_inflight)
		return;
	d->claiming = 1;
	db_pool_acquire(d->pool, dispatch_on_claim_conn, d);
}

void dispatch_wake(struct dispatch *d)
{
	if (d)
		dispatch_kick(d);
}

void dispatch_stop(struct dispatch *d, void (*idle)(void *arg), void *arg)
{
	if (!d)
		return;
	d->stopping = 1;
	d->idle = idle;
	d->idle_arg = arg;
	evtimer_del(d->poll_timer);
	dispatch_check_idle(d);
}

int dispatch_inflight(const struct dispatch *d)
{
	return d ? d->inflight : 0;
}

void dispatch_options_from(const struct config *cfg, struct dispatch_options *opt)
{
	*opt = (struct dispatch_options){
		.max_inflight = cfg->dispatch.max_inflight,
		.poll_ms = cfg->dispatch.poll_ms,
		/* Longer than any attempt can take, so a live holder keeps its claim. */
		.lease_ms = cfg->dispatch.timeout_ms + 5000,
		.max_attempts = cfg->dispatch.max_attempts,
		.backoff_base_ms = cfg->dispatch.backoff_base_ms,
		.backoff_max_ms = cfg->dispatch.backoff_max_ms,
		.breaker_threshold = cfg->dispatch.breaker_threshold,
		.breaker_cooldown_ms = cfg->dispatch.breaker_cooldown_ms,
		.sweep_ms = 1000,
	};
	snprintf(opt->shopify_api_version, sizeof opt->shopify_api_version, "%s",
	         cfg->platforms.shopify_api_version);
}

static void dispatch_take_options(struct dispatch *d, const struct dispatch_options *opt)
{
	d->opt = *opt;
	if (d->opt.max_inflight <= 0)
		d->opt.max_inflight = 64;
	if (d->opt.poll_ms <= 0)
		d->opt.poll_ms = 1000;
	if (d->opt.sweep_ms <= 0)
		d->opt.sweep_ms = 5000;
	/* lease_ms is the client's timeout + 5 s (dispatch_options_from) */
	struct storepush_options po = { d->opt.breaker_threshold, d->opt.breaker_cooldown_ms, "", d->opt.lease_ms,
	                                d->opt.lease_ms - 5000 };
	snprintf(po.shopify_api_version, sizeof po.shopify_api_version, "%s", d->opt.shopify_api_version);
	if (d->push)
		storepush_set_options(d->push, &po);
	else
		d->push = storepush_new(d->base, d->client, &po);
}

void dispatch_set_options(struct dispatch *d, const struct dispatch_options *opt)
{
	int old_poll = d->opt.poll_ms;
	dispatch_take_options(d, opt);
	for (size_t i = 0; i < d->nbreakers; i++) {
		breaker_configure(&d->breakers[i].b, d->opt.breaker_threshold, d->opt.breaker_cooldown_ms);
	}
	if (d->opt.poll_ms != old_poll) {
		struct timeval tv = { d->opt.poll_ms / 1000, (d->opt.poll_ms % 1000) * 1000 };
		evtimer_add(d->poll_timer, &tv);
	}
	dispatch_wake(d); /* more room in flight may be usable now */
}

struct dispatch *dispatch_new(struct event_base *base, struct db_pool *pool, struct client *client,
                              struct callback_queue *callbacks, struct metrics *metrics,
                              const struct dispatch_options *opt)
{
	struct dispatch *d = mem_calloc(1, sizeof *d);
	d->base = base;
	d->metrics = metrics;
	d->pool = pool;
	d->callbacks = callbacks;
	d->client = client;
	dispatch_take_options(d, opt); /* also makes the storepush, which needs base and client */
	RAND_bytes((unsigned char *)&d->rng, sizeof d->rng);
	d->rng |= 1; /* xorshift must not start at 0 */
	d->claim = db_batch_new();
	d->sweep = db_batch_new();
	d->wake = event_new(base, -1, 0, dispatch_on_wake, d);
	d->rec_retry = evtimer_new(base, dispatch_on_rec_retry, d);
	d->idle_ev = event_new(base, -1, 0, dispatch_on_idle, d);
	d->poll_timer = event_new(base, -1, EV_PERSIST, dispatch_on_wake, d);
	struct timeval tv = { d->opt.poll_ms / 1000, (d->opt.poll_ms % 1000) * 1000 };
	evtimer_add(d->poll_timer, &tv);
	return d;
}

void dispatch_free(struct dispatch *d)
{
	if (!d)
		return;
	d->freeing = 1;
	if (d->poll_timer)
		event_free(d->poll_timer);
	if (d->wake)
		event_free(d->wake);
	if (d->rec_retry)
		event_free(d->rec_retry);
	if (d->idle_ev)
		event_free(d->idle_ev);
	dispatch_free_jobs(d->rec_head);
	db_batch_free(d->claim);
	db_batch_free(d->sweep);
	free(d->breakers);
	storepush_free(d->push);
	free(d);
}
