/* breaker: per-supplier circuit breaker for the outbound dispatcher.
 * Pure: no I/O, no clock (callers pass now_ms from a monotonic clock), no
 * locking (one breaker is owned by one thread, or guarded by its caller).
 * One struct breaker per supplier, so one supplier tripping leaves every
 * other supplier's dispatch alone.
 *
 * Use: before sending, breaker_allow(); after the outcome, breaker_record()
 * with success = (retry_classify() != RETRY_AGAIN): a 4xx rejection means
 * the supplier is up. When allow says no, reschedule at breaker_retry_at_ms. */
#ifndef DROPSHIP_BREAKER_H
#define DROPSHIP_BREAKER_H
#include <stdint.h>

/* X-macro: the enum and the name table come from one list. */
#define BREAKER_STATES(X)                                                \
	X(BREAKER_CLOSED, "closed")       /* requests flow; failures counted */ \
	X(BREAKER_OPEN, "open")           /* paused until the cool-down ends */ \
	X(BREAKER_HALF_OPEN, "half_open") /* one probe decides open or closed */

#define BREAKER_ENUM(id, name) id,
enum breaker_state {
	BREAKER_STATES(BREAKER_ENUM)
	BREAKER_STATE_MAX
};
#undef BREAKER_ENUM

struct breaker {
	enum breaker_state state;
	int failures;          /* consecutive failures since the last success */
	int64_t opened_at_ms;  /* when it last opened: the cool-down starts here */
	int probe_in_flight;   /* 1 while the half-open probe has no outcome yet */
	int64_t probe_at_ms;   /* when that probe was allowed */
	int threshold;         /* consecutive failures that open it (>= 1) */
	int64_t cooldown_ms;   /* pause before a probe; also how long a probe
	                          may go without an outcome before it counts as
	                          lost and another is allowed (>= 0) */
};

/* A closed breaker; threshold below 1 counts as 1, cooldown below 0 as 0. */
void breaker_init(struct breaker *b, int threshold, int64_t cooldown_ms);
/* New threshold and cool-down (a reload); the state is kept. */
void breaker_configure(struct breaker *b, int threshold, int64_t cooldown_ms);

/* 1 if a request may be sent now, else 0. Closed: always. Open: no until
 * cooldown_ms after opening (at exactly that instant, yes), then it turns
 * half-open and allows exactly one probe. Half-open: no while the probe is
 * in flight, unless it has gone cooldown_ms without an outcome (lost: a
 * new probe is allowed, so a dropped result cannot pause a supplier for
 * good). */
int breaker_allow(struct breaker *b, int64_t now_ms);

/* Records the outcome of a request that breaker_allow let through. A
 * success closes it from any state and clears the failures. A failure
 * counts; closed opens at threshold; a failed half-open probe re-opens
 * with a fresh cool-down; while open, failures of requests sent before it
 * opened count but do not extend the cool-down. */
void breaker_record(struct breaker *b, int success, int64_t now_ms);

/* When breaker_allow will next say yes: open, the end of the cool-down;
 * half-open, when the probe in flight counts as lost; closed, INT64_MIN
 * (any time). */
int64_t breaker_retry_at_ms(const struct breaker *b);

/* Name of a state for logs ("closed", "open", "half_open"); "?" if unknown.
 * Static storage. */
const char *breaker_state_name(enum breaker_state s);

#endif
