/* rescore: keeps the supplier scorecard (supplier_scores) current. Every
 * refresh_ms it counts each supplier's requests created in the last
 * window_s seconds (one statement, reading fulfillment_requests through
 * its created_at index: the window, never the whole history), smooths the
 * rates toward the prior (internal/score) and writes one row per supplier.
 * Routing reads that table with its candidates; nothing here is on the
 * path of a request.
 *
 * dropshipd runs one in one worker. Several processes may each run one:
 * a count is skipped while every supplier's row is younger than the period
 * (counted by another process, or before a restart), and the rows written
 * are the same counts, in supplier order.
 *
 * Not thread-safe: one per event loop. */
#ifndef DROPSHIP_RESCORE_H
#define DROPSHIP_RESCORE_H
#include <event2/event.h>

#include "db/db.h"
#include "score/score.h"

struct rescore;

/* Prepared statements rescore needs on every pool connection. */
extern const struct db_stmt_def rescore_stmts[];

struct rescore_options {
	int window_s;                 /* requests created this recently are counted */
	int refresh_ms;               /* how often */
	struct score_prior prior;
};

/* Starts: a first count at once when the saved one is older than
 * refresh_ms, then one every refresh_ms. */
struct rescore *rescore_new(struct event_base *base, struct db_pool *pool, const struct rescore_options *opt);
/* Stops starting counts; one in flight finishes. */
void rescore_stop(struct rescore *r);
/* Frees (after the loop has ended and the pool is freed). Accepts NULL. */
void rescore_free(struct rescore *r);

#endif
