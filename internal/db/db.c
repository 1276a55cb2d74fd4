#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "db/db.h"
#include "log/log.h"
#include "mem/mem.h"

/* State of the libpq connection itself; whether someone leases it is kept
 * apart in `leased`, so a lessee learns of a dead connection on its next
 * send rather than having its transaction silently moved to a new one. */
#define DB_CONN_STATES(X) \
	X(DOWN)       /* no connection; a reconnect timer may be armed */ \
	X(CONNECTING) /* PQconnectPoll in progress */ \
	X(SETUP)      /* statements being prepared / LISTEN */ \
	X(READY)      /* connected, nothing in flight */ \
	X(BUSY)       /* a lessee's batch is in flight */ \
	X(RESET)      /* ROLLBACK in flight after release */

enum db_conn_state {
#define X(s) DB_CONN_##s,
	DB_CONN_STATES(X)
#undef X
	DB_CONN_STATE_MAX
};

static const char *const conn_state_names[] = {
#define X(s) #s,
	DB_CONN_STATES(X)
#undef X
};

struct db_stmt {
	char *name;    /* prepared statement, or NULL */
	char *sql;     /* ad-hoc SQL, or NULL; with both set: prepare name as sql */
	int nparams;
	char **values; /* copies; NULL entries are SQL NULLs */
};

struct db_batch {
	struct db_stmt *stmts;
	PGresult **results;
	int n, cap;
	int cur;             /* statement whose results are being read */
	int failed;
	int conn_failed;
	char error[512];
	char sqlstate[6];
};

struct db_conn {
	struct db_pool *pool;
	int index;
	enum db_conn_state state;
	int leased;
	PGconn *pg;
	struct event *rev;       /* persistent read interest while connected */
	struct event *wev;       /* one-shot write interest (connect/flush) */
	struct event *timer;     /* reconnect backoff, connect or batch deadline */
	int failures;            /* consecutive failed connects, for backoff */
	struct db_batch *batch;  /* in flight: the lessee's or `own` */
	db_batch_cb cb;
	void *cb_arg;
	struct db_batch *own;    /* setup and rollback batches */
};

struct db_waiter {
	struct db_waiter *next;
	struct db_pool *pool;
	db_acquire_cb cb;
	void *arg;
	struct event *timer;
};

struct db_pool {
	struct event_base *base;
	struct db_pool_options opt;
	char *conninfo;
	struct db_conn *conns;
	struct db_waiter *wait_head, *wait_tail;
	struct event *kick;      /* hands idle connections to waiters, outside callers' stacks */
	int closing;
	/* The last failure logged for this pool's connections: while the
	 * database is away every connection retries, and one line per kind
	 * of failure is enough. Cleared when a connection comes back. */
	char last_error[512];
};

static void conn_connect(struct db_conn *c);
static void conn_fail(struct db_conn *c, const char *why);
static void pool_kick(struct db_pool *p);

static void conn_set_state(struct db_conn *c, enum db_conn_state s)
{
	assert(s < DB_CONN_STATE_MAX);
	if (c->state != s)
		log_debug("db connection state", "conn=%d from=%s to=%s", c->index,
		          conn_state_names[c->state], conn_state_names[s]);
	c->state = s;
}

static struct timeval ms_tv(int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	return tv;
}

/* ---- batches ---- */

struct db_batch *db_batch_new(void)
{
	return mem_calloc(1, sizeof(struct db_batch));
}

static void batch_clear_results(struct db_batch *b)
{
	for (int i = 0; i < b->n; i++) {
		PQclear(b->results[i]);
		b->results[i] = NULL;
	}
	b->cur = 0;
	b->failed = b->conn_failed = 0;
	b->error[0] = b->sqlstate[0] = '\0';
}

void db_batch_reset(struct db_batch *b)
{
	if (!b)
		return;
	batch_clear_results(b);
	for (int i = 0; i < b->n; i++) {
		struct db_stmt *s = &b->stmts[i];
		for (int j = 0; j < s->nparams; j++)
			free(s->values[j]);
		free(s->values);
		free(s->name);
		free(s->sql);
	}
	b->n = 0;
}

void db_batch_free(struct db_batch *b)
{
	if (!b)
		return;
	db_batch_reset(b);
	free(b->stmts);
	free(b->results);
	free(b);
}

int db_batch_add(struct db_batch *b, const char *name, const char *sql,
                 int nparams, const char *const *values)
{
	if (b->n == b->cap) {
		int cap = b->cap ? b->cap * 2 : 8;
		b->stmts = mem_realloc(b->stmts, (size_t)cap * sizeof *b->stmts);
		b->results = mem_realloc(b->results, (size_t)cap * sizeof *b->results);
		b->cap = cap;
	}
	struct db_stmt *s = &b->stmts[b->n];
	s->name = mem_strdup_or_null(name);
	s->sql = mem_strdup_or_null(sql);
	s->nparams = nparams;
	s->values = nparams ? mem_calloc((size_t)nparams, sizeof(char *)) : NULL;
	for (int i = 0; i < nparams; i++)
		s->values[i] = mem_strdup_or_null(values[i]);
	b->results[b->n] = NULL;
	return b->n++;
}

/* ---- array parameters ---- */

void db_columns_init(struct db_columns *c, int ncols)
{
	assert(ncols > 0 && ncols <= DB_COLUMNS_MAX);
	memset(c, 0, sizeof *c);
	c->ncols = ncols;
}

static void column_put(struct db_column_text *t, const char *s, size_t n)
{
	if (t->len + n + 2 > t->cap) {
		size_t cap = t->cap ? t->cap : 256;
		while (t->len + n + 2 > cap)
			cap *= 2;
		t->buf = mem_realloc(t->buf, cap);
		t->cap = cap;
	}
	memcpy(t->buf + t->len, s, n);
	t->len += n;
	t->buf[t->len] = '\0';
}

/* One element: NULL, or the value in double quotes with " and \ escaped. */
static void column_element(struct db_column_text *t, const char *v, int first)
{
	column_put(t, first ? "{" : ",", 1);
	if (!v) {
		column_put(t, "NULL", 4);
		return;
	}
	column_put(t, "\"", 1);
	for (const char *p = v;;) {
		size_t run = strcspn(p, "\"\\");
		column_put(t, p, run);
		p += run;
		if (!*p)
			break;
		column_put(t, "\\", 1);
		column_put(t, p, 1);
		p++;
	}
	column_put(t, "\"", 1);
}

void db_columns_add(struct db_columns *c, const char *const *values)
{
	for (int i = 0; i < c->ncols; i++) {
		c->col[i].len = c->nrows ? c->col[i].len - 1 : 0; /* reopen the closing brace */
		column_element(&c->col[i], values[i], c->nrows == 0);
		column_put(&c->col[i], "}", 1);
	}
	c->nrows++;
}

void db_columns_reset(struct db_columns *c)
{
	for (int i = 0; i < c->ncols; i++)
		c->col[i].len = 0;
	c->nrows = 0;
}

void db_columns_free(struct db_columns *c)
{
	for (int i = 0; i < c->ncols; i++)
		free(c->col[i].buf);
	memset(c, 0, sizeof *c);
}

int db_batch_add_columns(struct db_batch *b, const char *name, struct db_columns *c)
{
	const char *v[DB_COLUMNS_MAX];
	for (int i = 0; i < c->ncols; i++)
		v[i] = c->nrows ? c->col[i].buf : "{}";
	return db_batch_add(b, name, NULL, c->ncols, v);
}

int db_batch_ok(const struct db_batch *b) { return !b->failed; }
PGresult *db_batch_result(const struct db_batch *b, int i) { return i >= 0 && i < b->n ? b->results[i] : NULL; }
const char *db_batch_error(const struct db_batch *b) { return b->error; }
const char *db_batch_sqlstate(const struct db_batch *b) { return b->sqlstate; }
int db_batch_conn_failed(const struct db_batch *b) { return b->conn_failed; }

static void batch_set_error(struct db_batch *b, const char *msg, const char *sqlstate)
{
	if (b->failed)
		return;
	b->failed = 1;
	snprintf(b->error, sizeof b->error, "%s", msg ? msg : "unknown error");
	/* libpq messages end with a newline; logs want one line */
	size_t n = strlen(b->error);
	while (n && (b->error[n - 1] == '\n' || b->error[n - 1] == ' '))
		b->error[--n] = '\0';
	snprintf(b->sqlstate, sizeof b->sqlstate, "%s", sqlstate ? sqlstate : "");
}

/* ---- I/O ---- */

static void conn_arm_timer(struct db_conn *c, int ms)
{
	struct timeval tv = ms_tv(ms);
	evtimer_add(c->timer, &tv);
}

static void conn_flush(struct db_conn *c)
{
	int r = PQflush(c->pg);
	if (r < 0)
		conn_fail(c, PQerrorMessage(c->pg));
	else if (r > 0)
		event_add(c->wev, NULL);
}

/* Sends a batch's statements and the Sync; the results arrive on read. */
static int conn_send_batch(struct db_conn *c, struct db_batch *b)
{
	batch_clear_results(b);
	c->batch = b;
	for (int i = 0; i < b->n; i++) {
		struct db_stmt *s = &b->stmts[i];
		int ok;
		if (s->name && s->sql)
			ok = PQsendPrepare(c->pg, s->name, s->sql, 0, NULL);
		else if (s->name)
			ok = PQsendQueryPrepared(c->pg, s->name, s->nparams,
			                         (const char *const *)s->values, NULL, NULL, 0);
		else
			ok = PQsendQueryParams(c->pg, s->sql, s->nparams, NULL,
			                       (const char *const *)s->values, NULL, NULL, 0);
		if (!ok)
			return -1;
	}
	if (!PQpipelineSync(c->pg))
		return -1;
	conn_arm_timer(c, c->pool->opt.batch_timeout_ms);
	conn_flush(c);
	return 0;
}

static void conn_finish_batch(struct db_conn *c);

static void conn_drain_notifies(struct db_conn *c)
{
	PGnotify *n;
	while ((n = PQnotifies(c->pg)) != NULL) {
		if (c->pool->opt.on_notify)
			c->pool->opt.on_notify(n->relname, n->extra, c->pool->opt.notify_arg);
		PQfreemem(n);
	}
}

/* Reads what has arrived; finishes the batch at its Sync. Returns -1 when
 * the connection failed (and has been torn down). */
static int conn_read_results(struct db_conn *c)
{
	if (!PQconsumeInput(c->pg)) {
		conn_fail(c, PQerrorMessage(c->pg));
		return -1;
	}
	conn_drain_notifies(c);
	struct db_batch *b = c->batch;
	while (b && !PQisBusy(c->pg)) {
		PGresult *r = PQgetResult(c->pg);
		if (!r) {
			/* end of one statement's results */
			if (b->cur < b->n)
				b->cur++;
			continue;
		}
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			conn_finish_batch(c);
			return 0;
		}
		if (st == PGRES_FATAL_ERROR || st == PGRES_PIPELINE_ABORTED ||
		    st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR) {
			if (st != PGRES_PIPELINE_ABORTED || !b->failed)
				batch_set_error(b, PQresultErrorMessage(r),
				                PQresultErrorField(r, PG_DIAG_SQLSTATE));
		}
		if (b->cur < b->n && !b->results[b->cur])
			b->results[b->cur] = r;
		else
			PQclear(r);
	}
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		conn_fail(c, PQerrorMessage(c->pg));
		return -1;
	}
	return 0;
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct db_conn *c = arg;
	if (c->state == DB_CONN_CONNECTING)
		return;
	if (conn_read_results(c) < 0)
		return;
	if (c->pg && PQisnonblocking(c->pg))
		conn_flush(c);
}

static void on_connect_io(evutil_socket_t fd, short what, void *arg);

static void conn_poll_connect(struct db_conn *c)
{
	PostgresPollingStatusType st = PQconnectPoll(c->pg);
	switch (st) {
	case PGRES_POLLING_READING:
		event_del(c->wev);
		event_free(c->wev);
		c->wev = event_new(c->pool->base, PQsocket(c->pg), EV_READ, on_connect_io, c);
		event_add(c->wev, NULL);
		return;
	case PGRES_POLLING_WRITING:
		event_del(c->wev);
		event_free(c->wev);
		c->wev = event_new(c->pool->base, PQsocket(c->pg), EV_WRITE, on_connect_io, c);
		event_add(c->wev, NULL);
		return;
	case PGRES_POLLING_FAILED:
		conn_fail(c, PQerrorMessage(c->pg));
		return;
	case PGRES_POLLING_OK:
		break;
	default:
		return;
	}
	/* Connected: from here on, the socket is fixed. */
	evtimer_del(c->timer);
	event_free(c->wev);
	int fd = PQsocket(c->pg);
	c->rev = event_new(c->pool->base, fd, EV_READ | EV_PERSIST, on_read, c);
	c->wev = event_new(c->pool->base, fd, EV_WRITE, on_read, c);
	event_add(c->rev, NULL);
	if (PQsetnonblocking(c->pg, 1) != 0 || !PQenterPipelineMode(c->pg)) {
		conn_fail(c, PQerrorMessage(c->pg));
		return;
	}
	/* One flight: the session's settings, every prepare, the LISTEN, one Sync. */
	db_batch_reset(c->own);
	if (c->pool->opt.setup_sql)
		db_batch_add(c->own, NULL, c->pool->opt.setup_sql, 0, NULL);
	for (const struct db_stmt_def *d = c->pool->opt.stmts; d && d->name; d++)
		db_batch_add(c->own, d->name, d->sql, 0, NULL);
	for (const char *const *ch = c->pool->opt.listen_channels; ch && *ch; ch++) {
		char sql[128];
		snprintf(sql, sizeof sql, "LISTEN %s", *ch);
		db_batch_add(c->own, NULL, sql, 0, NULL);
	}
	conn_set_state(c, DB_CONN_SETUP);
	if (conn_send_batch(c, c->own) < 0)
		conn_fail(c, PQerrorMessage(c->pg));
}

static void on_connect_io(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_poll_connect(arg);
}

static void conn_finish_batch(struct db_conn *c)
{
	struct db_batch *b = c->batch;
	c->batch = NULL;
	evtimer_del(c->timer);
	switch (c->state) {
	case DB_CONN_SETUP:
		if (b->failed) {
			char qerr[600], why[sizeof c->pool->last_error];
			snprintf(why, sizeof why, "%s", b->error);
			if (strcmp(why, c->pool->last_error) != 0) {
				log_error("database setup failed", "conn=%d error=%s", c->index,
				          log_quote(qerr, sizeof qerr, why));
				/* conn_fail compares the same truncation: no second line */
				snprintf(c->pool->last_error, sizeof c->pool->last_error, "%s", why);
			}
			conn_fail(c, b->error);
			return;
		}
		if (c->pool->last_error[0]) {
			log_info("database connection restored", "conn=%d", c->index);
			c->pool->last_error[0] = '\0';
		}
		c->failures = 0;
		conn_set_state(c, DB_CONN_READY);
		pool_kick(c->pool);
		return;
	case DB_CONN_RESET:
		conn_set_state(c, DB_CONN_READY);
		pool_kick(c->pool);
		return;
	case DB_CONN_BUSY:
		conn_set_state(c, DB_CONN_READY);
		c->cb(c, b, c->cb_arg);
		return;
	default:
		assert(!"batch finished in unexpected state");
	}
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct db_conn *c = arg;
	switch (c->state) {
	case DB_CONN_DOWN:
		conn_connect(c);
		break;
	case DB_CONN_CONNECTING:
		conn_fail(c, "connect timed out");
		break;
	default:
		conn_fail(c, "query timed out");
		break;
	}
}

static void conn_close(struct db_conn *c)
{
	if (c->rev) {
		event_free(c->rev);
		c->rev = NULL;
	}
	if (c->wev) {
		event_free(c->wev);
		c->wev = NULL;
	}
	if (c->pg) {
		PQfinish(c->pg);
		c->pg = NULL;
	}
	evtimer_del(c->timer);
}

static void conn_schedule_reconnect(struct db_conn *c)
{
	if (c->pool->closing)
		return;
	/* 100 ms doubling to 2 s: prompt recovery without hammering a restarting server */
	int ms = 100;
	for (int i = 0; i < c->failures && ms < 2000; i++)
		ms *= 2;
	if (ms > 2000)
		ms = 2000;
	c->failures++;
	conn_arm_timer(c, ms);
}

static void conn_fail(struct db_conn *c, const char *reason)
{
	/* reason often points into the PGconn that conn_close() frees */
	char why[sizeof c->pool->last_error];
	snprintf(why, sizeof why, "%s", reason ? reason : "");
	enum db_conn_state was = c->state;
	struct db_batch *b = c->batch;
	c->batch = NULL;
	conn_close(c);
	conn_set_state(c, DB_CONN_DOWN);
	char qwhy[sizeof why + 64];
	if (strcmp(why, c->pool->last_error) != 0) {
		log_warn(was == DB_CONN_CONNECTING ? "database connection failed" : "database connection lost",
		         "conn=%d state=%s error=%s", c->index, conn_state_names[was],
		         log_quote(qwhy, sizeof qwhy, why));
		snprintf(c->pool->last_error, sizeof c->pool->last_error, "%s", why);
	}
	if (was == DB_CONN_BUSY && b) {
		batch_set_error(b, why, "08006");
		b->conn_failed = 1;
		c->cb(c, b, c->cb_arg);
		return; /* the lessee's release schedules the reconnect */
	}
	if (!c->leased)
		conn_schedule_reconnect(c);
	pool_kick(c->pool);
}

static void conn_connect(struct db_conn *c)
{
	c->pg = PQconnectStart(c->pool->conninfo);
	if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) {
		conn_fail(c, c->pg ? PQerrorMessage(c->pg) : "out of memory");
		return;
	}
	conn_set_state(c, DB_CONN_CONNECTING);
	c->wev = event_new(c->pool->base, PQsocket(c->pg), EV_WRITE, on_connect_io, c);
	event_add(c->wev, NULL);
	conn_arm_timer(c, 5000);
}

/* ---- pool ---- */

static void waiter_free(struct db_waiter *w)
{
	if (w->timer)
		event_free(w->timer);
	free(w);
}

/* Moves the pool's monitoring counts, when someone reads them. */
static void pool_count(const struct db_pool *p, int in_use, int waiting)
{
	if (!p->opt.stats)
		return;
	atomic_fetch_add_explicit(&p->opt.stats->in_use, in_use, memory_order_relaxed);
	atomic_fetch_add_explicit(&p->opt.stats->waiting, waiting, memory_order_relaxed);
}

static void waiter_remove(struct db_pool *p, struct db_waiter *w)
{
	struct db_waiter **pp = &p->wait_head, *prev = NULL;
	while (*pp && *pp != w) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (!*pp)
		return;
	*pp = w->next;
	if (p->wait_tail == w)
		p->wait_tail = prev;
	pool_count(p, 0, -1);
}

static void on_waiter_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct db_waiter *w = arg;
	waiter_remove(w->pool, w);
	db_acquire_cb cb = w->cb;
	void *cbarg = w->arg;
	waiter_free(w);
	cb(NULL, cbarg);
}

int db_pool_up(const struct db_pool *p)
{
	int n = 0;
	for (int i = 0; i < p->opt.size; i++) {
		enum db_conn_state s = p->conns[i].state;
		n += s == DB_CONN_READY || s == DB_CONN_BUSY || s == DB_CONN_RESET;
	}
	return n;
}

static int pool_any_alive(const struct db_pool *p)
{
	for (int i = 0; i < p->opt.size; i++)
		if (p->conns[i].state != DB_CONN_DOWN)
			return 1;
	return 0;
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct db_pool *p = arg;
	while (p->wait_head) {
		struct db_conn *free_conn = NULL;
		for (int i = 0; i < p->opt.size && !free_conn; i++)
			if (p->conns[i].state == DB_CONN_READY && !p->conns[i].leased)
				free_conn = &p->conns[i];
		/* Wait while some connection is up or still connecting; when every
		 * one is down, answer now rather than make callers wait out a restart. */
		if (!free_conn && pool_any_alive(p) && !p->closing)
			return;
		struct db_waiter *w = p->wait_head;
		waiter_remove(p, w);
		db_acquire_cb cb = w->cb;
		void *cbarg = w->arg;
		waiter_free(w);
		if (free_conn) {
			free_conn->leased = 1;
			pool_count(p, 1, 0);
		}
		cb(free_conn, cbarg);
	}
}

static void pool_kick(struct db_pool *p)
{
	if (p->wait_head)
		event_active(p->kick, EV_TIMEOUT, 0);
}

struct db_pool *db_pool_new(struct event_base *base, const struct db_pool_options *opt)
{
	struct db_pool *p = mem_calloc(1, sizeof *p);
	p->base = base;
	p->opt = *opt;
	if (p->opt.size < 1)
		p->opt.size = 1;
	if (p->opt.acquire_timeout_ms <= 0)
		p->opt.acquire_timeout_ms = 5000;
	if (p->opt.batch_timeout_ms <= 0)
		p->opt.batch_timeout_ms = 15000;
	p->conninfo = mem_strdup(opt->conninfo);
	p->conns = mem_calloc((size_t)p->opt.size, sizeof *p->conns);
	p->kick = event_new(base, -1, 0, on_kick, p);
	for (int i = 0; i < p->opt.size; i++) {
		struct db_conn *c = &p->conns[i];
		c->pool = p;
		c->index = i;
		c->timer = evtimer_new(base, on_timer, c);
		c->own = db_batch_new();
		conn_connect(c);
	}
	return p;
}

void db_pool_free(struct db_pool *p)
{
	if (!p)
		return;
	p->closing = 1;
	while (p->wait_head) {
		struct db_waiter *w = p->wait_head;
		waiter_remove(p, w);
		db_acquire_cb cb = w->cb;
		void *cbarg = w->arg;
		waiter_free(w);
		cb(NULL, cbarg);
	}
	for (int i = 0; p->conns && i < p->opt.size; i++) {
		struct db_conn *c = &p->conns[i];
		if (c->timer) {
			conn_close(c);
			event_free(c->timer);
		}
		db_batch_free(c->own);
	}
	if (p->kick)
		event_free(p->kick);
	if (p->opt.stats) /* connections still leased go with the pool */
		atomic_store(&p->opt.stats->in_use, 0);
	free(p->conns);
	free(p->conninfo);
	free(p);
}

void db_pool_acquire(struct db_pool *p, db_acquire_cb cb, void *arg)
{
	struct db_waiter *w = mem_calloc(1, sizeof *w);
	w->pool = p;
	w->cb = cb;
	w->arg = arg;
	w->timer = evtimer_new(p->base, on_waiter_timeout, w);
	struct timeval tv = ms_tv(p->opt.acquire_timeout_ms);
	evtimer_add(w->timer, &tv);
	if (p->wait_tail)
		p->wait_tail->next = w;
	else
		p->wait_head = w;
	p->wait_tail = w;
	pool_count(p, 0, 1);
	event_active(p->kick, EV_TIMEOUT, 0);
}

void db_conn_release(struct db_conn *c)
{
	assert(c->leased);
	c->leased = 0;
	pool_count(c->pool, -1, 0);
	if (c->state == DB_CONN_DOWN) {
		if (!evtimer_pending(c->timer, NULL))
			conn_schedule_reconnect(c);
		return;
	}
	assert(c->state == DB_CONN_READY);
	if (PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
		db_batch_reset(c->own);
		db_batch_add(c->own, NULL, "ROLLBACK", 0, NULL);
		conn_set_state(c, DB_CONN_RESET);
		if (conn_send_batch(c, c->own) < 0)
			conn_fail(c, PQerrorMessage(c->pg));
		return;
	}
	pool_kick(c->pool);
}

struct deferred_fail {
	struct db_conn *conn;
	struct db_batch *batch;
	db_batch_cb cb;
	void *arg;
};

static void on_deferred_fail(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct deferred_fail d = *(struct deferred_fail *)arg;
	free(arg);
	d.cb(d.conn, d.batch, d.arg);
}

void db_conn_send(struct db_conn *c, struct db_batch *b, db_batch_cb cb, void *arg)
{
	assert(c->leased && c->state != DB_CONN_BUSY);
	c->cb = cb;
	c->cb_arg = arg;
	if (c->state == DB_CONN_READY) {
		conn_set_state(c, DB_CONN_BUSY);
		if (conn_send_batch(c, b) == 0)
			return;
		conn_fail(c, PQerrorMessage(c->pg)); /* calls cb */
		return;
	}
	/* The connection died while leased: fail the batch, asynchronously so
	 * the caller never sees its callback from inside this call. */
	batch_clear_results(b);
	batch_set_error(b, "database connection lost", "08006");
	b->conn_failed = 1;
	struct deferred_fail *d = mem_alloc(sizeof *d);
	*d = (struct deferred_fail){ c, b, cb, arg };
	struct timeval zero = { 0, 0 };
	event_base_once(c->pool->base, -1, EV_TIMEOUT, on_deferred_fail, d, &zero);
}
