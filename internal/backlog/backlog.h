/* backlog: the gauges of /metrics that only the database knows — outbox
 * messages not yet delivered, by kind, with the age of the oldest, and the
 * number of stranded orders — read on a timer by one worker, off the
 * request path, into the process's struct metrics_backlog, which the
 * scrape reads. The outbox is read every BACKLOG_OUTBOX_MS through its
 * index of pending messages (the backlog, not the history); stranded
 * orders at start and every BACKLOG_STRANDED_MS (they cost more:
 * docs/operations.md).
 *
 * Not thread-safe: one per worker event loop; dropshipd runs one. */
#ifndef DROPSHIP_BACKLOG_H
#define DROPSHIP_BACKLOG_H
#include <event2/event.h>

#include "db/db.h"
#include "metrics/metrics.h"

#define BACKLOG_OUTBOX_MS 5000
#define BACKLOG_STRANDED_MS 300000

/* Statements the reads need on every pool connection. */
extern const struct db_stmt_def backlog_stmts[];

struct backlog;

/* Empties out (every outbox kind listed at 0) and starts reading: the first
 * read at once, then on the timer. out must outlive the backlog. */
struct backlog *backlog_new(struct event_base *base, struct db_pool *pool, struct metrics_backlog *out);
/* Stops the timer (a read in flight still lands). Accepts NULL. */
void backlog_stop(struct backlog *b);
/* Frees, after the pool (its waiters still call back here). Accepts NULL. */
void backlog_free(struct backlog *b);

#endif
