/* metrics: counters a worker's handlers add to and /metrics reads. Each
 * worker owns one struct metrics; any thread may read it (atomics). */
#ifndef DROPSHIP_METRICS_H
#define DROPSHIP_METRICS_H
#include <stdatomic.h>

#define METRICS_COUNTERS(X) \
	X(REQUESTS_2XX)     /* HTTP answers by status class */ \
	X(REQUESTS_4XX) \
	X(REQUESTS_5XX) \
	X(ORDERS_CREATED)   /* storefront webhooks by outcome */ \
	X(ORDERS_DUPLICATE) \
	X(ORDERS_CANCELLED) \
	X(DB_UNAVAILABLE)   /* requests answered 503: no database connection */ \
	X(CONN_SHED)        /* connections closed at the cap to let a new one in */ \
	X(CONN_REFUSED)     /* connections refused: per-address limit, or the cap with none to shed */

enum metrics_counter {
#define X(name) METRICS_##name,
	METRICS_COUNTERS(X)
#undef X
	METRICS_COUNTER_MAX
};

struct metrics {
	atomic_ulong counter[METRICS_COUNTER_MAX];
	atomic_long connections;     /* open client connections (a gauge) */
};

/* Adds 1 to counter c. */
void metrics_inc(struct metrics *m, enum metrics_counter c);
/* Counts one HTTP answer with this status in its class. */
void metrics_count_status(struct metrics *m, int status);
/* The sum of counter c over n workers' metrics. */
unsigned long metrics_sum(const struct metrics *const *ms, int n, enum metrics_counter c);

#endif
