#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backlog/backlog.h"
#include "log/log.h"
#include "mem/mem.h"

/* backlog_outbox's columns. */
enum backlog_outbox_col { BACKLOG_OUTBOX_KIND, BACKLOG_OUTBOX_PENDING, BACKLOG_OUTBOX_OLDEST_MS };

const struct db_stmt_def backlog_stmts[] = {
	/* Every pending message, from the partial index that holds only those
	 * (outbox_due_id_idx): its cost follows the backlog, never the
	 * delivered history. */
	{ "backlog_outbox",
	  "SELECT kind, count(*), (extract(epoch FROM now() - min(created_at)) * 1000)::bigint"
	  " FROM outbox WHERE state = 'pending' GROUP BY kind" },
	/* How many rows reporting.stranded_orders has (sql/reporting.sql),
	 * without the joins that only add its columns: orders with an
	 * unroutable line, with a failed request still holding routed lines,
	 * or flagged needs_attention. Read from the partial indexes of
	 * unroutable lines and failed messages, and orders (status). */
	{ "backlog_stranded",
	  "SELECT count(*) FROM ("
	  "   SELECT l.store_id, l.order_id FROM order_lines l WHERE l.status = 'unroutable'"
	  "   UNION"
	  "   SELECT r.store_id, r.order_id FROM outbox x JOIN fulfillment_requests r ON r.id = x.request_id"
	  "    WHERE x.state = 'failed' AND x.kind = 'fulfillment.requested' AND r.status = 'failed'"
	  "      AND EXISTS (SELECT FROM order_lines l WHERE l.request_id = r.id AND l.status = 'routed')"
	  "   UNION"
	  "   SELECT o.store_id, o.id FROM orders o WHERE o.status = 'needs_attention') s" },
	{ NULL, NULL },
};

/* The kinds the schema allows (migrations/0003): shown at 0 from the start. */
static const char *const backlog_kinds[] = {
	"fulfillment.requested", "fulfillment.cancel_requested", "order.shipped", "order.delivered",
	"order.needs_attention", NULL,
};

struct backlog {
	struct db_pool *pool;
	struct metrics_backlog *out;
	struct event *timer;
	struct db_batch *batch;
	int busy;                     /* a read is waiting for a connection or in flight */
	int i_stranded;               /* backlog_stranded's place in the batch; -1 none */
	long long next_stranded_ms;
	char last_error[256];         /* logged once until a read succeeds */
};

static long long backlog_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Takes a successful read's rows. */
static void backlog_take(struct backlog *b)
{
	const PGresult *res = db_batch_result(b->batch, 0);
	int n = PQntuples(res);
	if (n > METRICS_KINDS)
		n = METRICS_KINDS;
	const char *kinds[METRICS_KINDS];
	long pending[METRICS_KINDS], oldest[METRICS_KINDS];
	for (int r = 0; r < n; r++) {
		kinds[r] = PQgetvalue(res, r, BACKLOG_OUTBOX_KIND);
		pending[r] = strtol(PQgetvalue(res, r, BACKLOG_OUTBOX_PENDING), NULL, 10);
		oldest[r] = strtol(PQgetvalue(res, r, BACKLOG_OUTBOX_OLDEST_MS), NULL, 10);
	}
	metrics_backlog_set_outbox(b->out, kinds, pending, oldest, n, (long)time(NULL));
	if (b->i_stranded >= 0)
		atomic_store(&b->out->stranded_orders,
		             strtol(PQgetvalue(db_batch_result(b->batch, b->i_stranded), 0, 0), NULL, 10));
}

static void backlog_on_read(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)batch;
	struct backlog *b = arg;
	db_conn_release(conn);
	b->busy = 0;
	if (!db_batch_ok(b->batch)) {
		/* The gauges keep their last values; the timestamp says how old. */
		if (strcmp(b->last_error, db_batch_error(b->batch)) != 0) {
			char q[300];
			snprintf(b->last_error, sizeof b->last_error, "%s", db_batch_error(b->batch));
			log_warn("backlog gauges not read", "error=%s", log_quote(q, sizeof q, b->last_error));
		}
		return;
	}
	b->last_error[0] = '\0';
	if (b->i_stranded >= 0)
		b->next_stranded_ms = backlog_now_ms() + BACKLOG_STRANDED_MS;
	backlog_take(b);
}

static void backlog_on_conn(struct db_conn *conn, void *arg)
{
	struct backlog *b = arg;
	if (!conn) { /* the database is away: the next tick tries again */
		b->busy = 0;
		return;
	}
	db_batch_reset(b->batch);
	db_batch_add(b->batch, "backlog_outbox", NULL, 0, NULL);
	b->i_stranded = backlog_now_ms() >= b->next_stranded_ms
	                ? db_batch_add(b->batch, "backlog_stranded", NULL, 0, NULL) : -1;
	db_conn_send(conn, b->batch, backlog_on_read, b);
}

static void backlog_on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct backlog *b = arg;
	if (b->busy)
		return;
	b->busy = 1;
	db_pool_acquire(b->pool, backlog_on_conn, b);
}

struct backlog *backlog_new(struct event_base *base, struct db_pool *pool, struct metrics_backlog *out)
{
	struct backlog *b = mem_calloc(1, sizeof *b);
	b->pool = pool;
	b->out = out;
	b->batch = db_batch_new();
	b->i_stranded = -1;
	metrics_backlog_init(out, backlog_kinds);
	b->timer = event_new(base, -1, EV_PERSIST, backlog_on_timer, b);
	struct timeval tv = { BACKLOG_OUTBOX_MS / 1000, (BACKLOG_OUTBOX_MS % 1000) * 1000 };
	evtimer_add(b->timer, &tv);
	event_active(b->timer, EV_TIMEOUT, 0);
	return b;
}

void backlog_stop(struct backlog *b)
{
	if (b)
		evtimer_del(b->timer);
}

void backlog_free(struct backlog *b)
{
	if (!b)
		return;
	event_free(b->timer);
	db_batch_free(b->batch);
	free(b);
}
