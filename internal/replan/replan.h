/* replan: lines waiting for stock are routed when it comes. A line left
 * unroutable for out_of_stock or no_offer waits; when an import, a stock
 * feed or stock given back makes its SKU's offers change (sku_changes), or
 * an operator asks for its order (replan_orders, `dropshipctl order
 * reroute`), its order is planned again in one transaction: same engine,
 * reservation rounds and decision trace as intake, oldest order first,
 * excluding the suppliers that rejected the order. A line that waited
 * longer than its store's hold_for stays unroutable with reason expired.
 * The same loop prunes the stock ledger (offer_moves) past a week.
 *
 * Woken by NOTIFY dropship_stock / dropship_replan and by its own poll.
 * Several workers and processes run it safely: work is claimed with
 * SKIP LOCKED and orders are locked in id order.
 *
 * Not thread-safe: one per worker event loop. */
#ifndef DROPSHIP_REPLAN_H
#define DROPSHIP_REPLAN_H
#include <event2/event.h>

#include "db/db.h"

struct replan;

/* Prepared statements replan needs on every pool connection. */
extern const struct db_stmt_def replan_stmts[];

/* Starts polling every poll_ms; after a transaction that queued messages it
 * calls outbox_ready(arg). */
struct replan *replan_new(struct event_base *base, struct db_pool *pool, int poll_ms,
                          void (*outbox_ready)(void *arg), void *arg);
/* Work may be waiting (a NOTIFY arrived). */
void replan_wake(struct replan *r);
/* Stops starting work; a transaction in flight finishes. */
void replan_stop(struct replan *r);
/* Frees (after the loop has ended and the pool is freed). Accepts NULL. */
void replan_free(struct replan *r);

#endif
