/* db: a per-worker pool of non-blocking libpq connections driven by one
 * libevent event_base. Statements are sent in batches, in pipeline mode:
 * every statement of a batch goes out in one flight, followed by one Sync.
 * The pool never blocks the loop, reconnects with backoff when PostgreSQL
 * goes away, and re-prepares its statements on every new connection.
 *
 * Not thread-safe: one pool per event_base, used only from that loop. */
#ifndef DROPSHIP_DB_H
#define DROPSHIP_DB_H
#include <stdatomic.h>
#include <stddef.h>
#include <libpq-fe.h>
#include <event2/event.h>

struct db_pool;
struct db_conn;
struct db_batch;

/* What a pool is doing, for monitoring: kept by the pool's loop, readable
 * from any thread. */
struct db_pool_stats {
	atomic_int in_use;               /* connections leased */
	atomic_int waiting;              /* acquires waiting for a connection */
};

/* A statement prepared on every connection of the pool. */
struct db_stmt_def {
	const char *name;
	const char *sql;
};

struct db_pool_options {
	const char *conninfo;            /* libpq URL or key=value string */
	int size;                        /* connections in the pool */
	const struct db_stmt_def *stmts; /* terminated by {NULL, NULL}; may be NULL */
	int acquire_timeout_ms;          /* max wait for a free connection (default 5000) */
	int batch_timeout_ms;            /* max time for a batch's results (default 15000) */
	const char *const *listen_channels; /* LISTEN to each on connect (NULL-terminated); NULL = none */
	const char *setup_sql;           /* run on every new connection first (e.g. SET); NULL = none */
	void (*on_notify)(const char *channel, const char *payload, void *arg);
	void *notify_arg;
	struct db_pool_stats *stats;     /* kept up to date when not NULL; must outlive the pool */
};

/* Called with a leased connection, or with NULL when none can be had
 * (database down, or the wait timed out). Never called re-entrantly from
 * inside db_pool_acquire(). */
typedef void (*db_acquire_cb)(struct db_conn *conn, void *arg);

/* Called once a batch's results are all in (or it failed). The batch
 * belongs to the caller; inspect it with db_batch_* and free or reuse it. */
typedef void (*db_batch_cb)(struct db_conn *conn, struct db_batch *batch, void *arg);

/* Creates the pool and starts connecting. Returns NULL on allocation failure. */
struct db_pool *db_pool_new(struct event_base *base, const struct db_pool_options *opt);

/* Closes every connection; waiters are called with NULL. Accepts NULL. */
void db_pool_free(struct db_pool *pool);

/* Number of connections that are up (idle or leased). */
int db_pool_up(const struct db_pool *pool);

/* Leases a connection to cb (asynchronously). The lessee must call
 * db_conn_release() exactly once. */
void db_pool_acquire(struct db_pool *pool, db_acquire_cb cb, void *arg);

/* Returns a leased connection to the pool. An open transaction is rolled
 * back first; a broken connection is reconnected. */
void db_conn_release(struct db_conn *conn);

/* Sends every statement of batch in one pipeline flight; cb runs when the
 * results are in. One batch at a time per connection. */
void db_conn_send(struct db_conn *conn, struct db_batch *batch, db_batch_cb cb, void *arg);

/* New empty batch; free with db_batch_free (accepts NULL). */
struct db_batch *db_batch_new(void);
void db_batch_free(struct db_batch *batch);
/* Drops statements and results so the batch can be filled again. */
void db_batch_reset(struct db_batch *batch);

/* Adds a statement: a prepared statement name (sql NULL) or ad-hoc SQL
 * (name NULL). Parameter values are copied (text format; NULL = SQL NULL).
 * Returns the statement's index in the batch. */
int db_batch_add(struct db_batch *batch, const char *name, const char *sql,
                 int nparams, const char *const *values);

/* Set-based statements take one array parameter per column and unnest
 * them: `INSERT ... SELECT * FROM unnest($1::bigint[], $2::text[], ...)`.
 * db_columns builds those parameters a row at a time, as PostgreSQL array
 * literals in text format (elements quoted and escaped; NULL as NULL). */
#define DB_COLUMNS_MAX 24

struct db_columns {
	int ncols;
	size_t nrows;
	struct db_column_text {
		char *buf;
		size_t len, cap;
	} col[DB_COLUMNS_MAX];
};

/* Empty columns, ncols of them (<= DB_COLUMNS_MAX). */
void db_columns_init(struct db_columns *c, int ncols);
/* Appends a row of ncols values (text; NULL = SQL NULL). */
void db_columns_add(struct db_columns *c, const char *const *values);
/* Drops the rows (keeps the buffers). */
void db_columns_reset(struct db_columns *c);
void db_columns_free(struct db_columns *c);
/* Adds prepared statement name with the columns as its parameters $1..$ncols
 * (the statement takes exactly those). Returns the statement's index. */
int db_batch_add_columns(struct db_batch *b, const char *name, struct db_columns *c);

/* True when every statement succeeded. */
int db_batch_ok(const struct db_batch *batch);
/* The result of statement i (NULL if none); owned by the batch. */
PGresult *db_batch_result(const struct db_batch *batch, int i);
/* First error message / SQLSTATE, or "" when none. */
const char *db_batch_error(const struct db_batch *batch);
const char *db_batch_sqlstate(const struct db_batch *batch);
/* True when the failure was the connection itself (retryable: answer 503). */
int db_batch_conn_failed(const struct db_batch *batch);

#endif
