/* metrics: what /metrics reports, and its Prometheus text.
 *
 * Each worker owns one struct metrics and is its only writer; the scrape
 * reads every worker's from another thread and sums them. So every field
 * is an atomic (relaxed: each number stands alone), histograms are fixed
 * buckets of atomic counters, and the label tables (store and supplier
 * codes) are fixed arrays whose slots, once published, never change:
 * nothing here locks or allocates on the request path.
 *
 * The gauges read from the database (outbox backlog, stranded orders) are
 * process-wide: one struct metrics_backlog, written by the one worker that
 * polls (internal/backlog) and read by the scrape.
 *
 * Pure apart from metrics_render writing to the FILE it is given. */
#ifndef DROPSHIP_METRICS_H
#define DROPSHIP_METRICS_H
#include <stdatomic.h>
#include <stdio.h>

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

/* The routes of dropship_http_request_duration_seconds: a fixed set, so a
 * client cannot make new series by asking for new paths. */
#define METRICS_ROUTES(X) \
	X(WEBHOOKS, "webhooks")   /* POST /v1/stores/{code}/webhooks */ \
	X(CALLBACKS, "callbacks") /* POST /v1/suppliers/{code}/callbacks */ \
	X(INVENTORY, "inventory") /* POST /v1/suppliers/{code}/inventory */ \
	X(HEALTHZ, "healthz") \
	X(READYZ, "readyz") \
	X(METRICS, "metrics") \
	X(ADMIN, "admin")         /* /v1/admin/... */ \
	X(OTHER, "other")         /* anything else (404s, unreadable requests) */

enum metrics_route {
#define X(id, name) METRICS_ROUTE_##id,
	METRICS_ROUTES(X)
#undef X
	METRICS_ROUTE_MAX
};

enum metrics_class { METRICS_CLASS_2XX, METRICS_CLASS_4XX, METRICS_CLASS_5XX, METRICS_CLASS_MAX };

/* What became of a storefront webhook of a known store. */
#define METRICS_INTAKE_OUTCOMES(X) \
	X(CREATED, "created")     /* a new order stored (202) */ \
	X(DUPLICATE, "duplicate") /* an order stored before */ \
	X(CANCELLED, "cancelled") \
	X(IGNORED, "ignored")     /* a platform event dropship does not act on */ \
	X(REJECTED, "rejected")   /* 4xx: signature, media type, body */ \
	X(ERROR, "error")         /* 5xx, 503 included */

enum metrics_intake_outcome {
#define X(id, name) METRICS_INTAKE_##id,
	METRICS_INTAKE_OUTCOMES(X)
#undef X
	METRICS_INTAKE_MAX
};

/* Callback types ("fulfillment.<type>"; failed is dropshipd's own event)
 * and what became of them once authenticated and parsed. */
#define METRICS_CALLBACK_TYPES(X) \
	X(ACCEPTED, "accepted") \
	X(REJECTED, "rejected") \
	X(SHIPPED, "shipped") \
	X(DELIVERED, "delivered") \
	X(CANCELLED, "cancelled") \
	X(FAILED, "failed") \
	X(OTHER, "other")

enum metrics_callback_type {
#define X(id, name) METRICS_CALLBACK_##id,
	METRICS_CALLBACK_TYPES(X)
#undef X
	METRICS_CALLBACK_TYPE_MAX
};

#define METRICS_CALLBACK_OUTCOMES(X) \
	X(APPLIED, "applied")     /* the request moved (200) */ \
	X(DUPLICATE, "duplicate") /* a repeat: nothing changed (200) */ \
	X(REFUSED, "refused")     /* 404 unknown request, 409 invalid transition, 422 bad item */ \
	X(ERROR, "error")         /* 5xx, 503 included */

enum metrics_callback_outcome {
#define X(id, name) METRICS_CALLBACK_OUT_##id,
	METRICS_CALLBACK_OUTCOMES(X)
#undef X
	METRICS_CALLBACK_OUTCOME_MAX
};

/* What became of one claimed outbox message. */
#define METRICS_DISPATCH_OUTCOMES(X) \
	X(DELIVERED, "delivered")       /* a 2xx */ \
	X(RETRY, "retry")               /* no answer, 5xx, 408, 429: tried again later */ \
	X(FAILED, "failed")             /* a 4xx, attempts used up, or not sendable */ \
	X(BREAKER_OPEN, "breaker_open") /* given back unsent: the supplier's breaker is open */

enum metrics_dispatch_outcome {
#define X(id, name) METRICS_DISPATCH_##id,
	METRICS_DISPATCH_OUTCOMES(X)
#undef X
	METRICS_DISPATCH_MAX
};

/* The transactions shared by several requests (group commit). */
enum metrics_group { METRICS_GROUP_ORDERS, METRICS_GROUP_CALLBACKS, METRICS_GROUP_MAX };

/* A histogram: one counter per bucket (not cumulative: the scrape adds
 * them up), the last one past every bound (+Inf), and the sum of the
 * values observed, as integers (microseconds for durations). */
#define METRICS_BUCKETS_MAX 16
struct metrics_hist {
	atomic_ulong bucket[METRICS_BUCKETS_MAX];
	atomic_ulong sum;
};

/* Longest store or supplier code (the schema allows 64 characters). */
#define METRICS_CODE_MAX 65
/* Store codes each worker labels; orders of any other store count as "other". */
#define METRICS_STORES 64
/* Supplier codes each worker shows a breaker for; others are not shown. */
#define METRICS_SUPPLIERS 256

struct metrics_store {
	atomic_int used;                   /* set (release) once code is written */
	char code[METRICS_CODE_MAX];
	atomic_ulong orders[METRICS_INTAKE_MAX];
};

struct metrics_supplier {
	atomic_int used;                   /* set (release) once code is written */
	char code[METRICS_CODE_MAX];
	atomic_int open;                   /* 1 while its breaker is open or half-open */
};

struct metrics {
	atomic_ulong counter[METRICS_COUNTER_MAX];
	atomic_long connections;           /* open client connections (a gauge) */
	struct metrics_hist http[METRICS_ROUTE_MAX][METRICS_CLASS_MAX];
	struct metrics_store stores[METRICS_STORES];
	atomic_ulong other_store[METRICS_INTAKE_MAX];
	atomic_ulong callbacks[METRICS_CALLBACK_TYPE_MAX][METRICS_CALLBACK_OUTCOME_MAX];
	struct metrics_hist group[METRICS_GROUP_MAX];
	atomic_ulong dispatch[METRICS_DISPATCH_MAX];
	struct metrics_hist dispatch_duration;
	struct metrics_supplier suppliers[METRICS_SUPPLIERS];
};

/* Outbox kinds the backlog gauges keep (the schema has five). */
#define METRICS_KINDS 16

struct metrics_kind {
	atomic_int used;                   /* set (release) once name is written */
	char name[40];
	atomic_long pending;               /* messages not yet delivered nor failed */
	atomic_long oldest_ms;             /* age of the oldest of them; 0 when none */
};

/* The gauges read from the database, for the whole process. */
struct metrics_backlog {
	struct metrics_kind kinds[METRICS_KINDS];
	atomic_long stranded_orders;       /* -1 until first read */
	atomic_long updated_s;             /* Unix time of the last outbox read; 0 never */
};

/* Adds 1 to counter c. */
void metrics_inc(struct metrics *m, enum metrics_counter c);
/* Counts one HTTP answer with this status in its class. */
void metrics_count_status(struct metrics *m, int status);
/* The sum of counter c over n workers' metrics. */
unsigned long metrics_sum(const struct metrics *const *ms, int n, enum metrics_counter c);

/* The route a request path belongs to. */
enum metrics_route metrics_route_of(const char *path);
/* Counts one HTTP answer (class and duration, by the route of path). */
void metrics_observe_request(struct metrics *m, const char *path, int status, long duration_us);
/* Counts a storefront webhook of store (a code the database knows). */
void metrics_count_intake(struct metrics *m, const char *store, enum metrics_intake_outcome o);
/* Counts a callback of type ("accepted", ..., or "fulfillment.accepted"). */
void metrics_count_callback(struct metrics *m, const char *type, enum metrics_callback_outcome o);
/* Records the size of one committed group. */
void metrics_observe_group(struct metrics *m, enum metrics_group g, long size);
/* Counts one dispatch outcome; duration_us < 0 when nothing was sent. */
void metrics_observe_dispatch(struct metrics *m, enum metrics_dispatch_outcome o, long duration_us);
/* Shows supplier's breaker as open (1) or closed (0). */
void metrics_set_breaker(struct metrics *m, const char *supplier, int open);

/* Empties b: stranded_orders unknown, the kinds named (NULL-terminated)
 * listed with no backlog. */
void metrics_backlog_init(struct metrics_backlog *b, const char *const *kinds);
/* One outbox read: for each of n kinds its pending messages and the age of
 * the oldest; every kind known before and absent here goes to 0. */
void metrics_backlog_set_outbox(struct metrics_backlog *b, const char *const *kinds, const long *pending,
                                const long *oldest_ms, int n, long now_s);

/* What the whole process shows, for metrics_render. */
struct metrics_process {
	const struct metrics *const *workers;
	int nworkers;
	const struct metrics_backlog *backlog;   /* may be NULL: no database gauges */
	const char *version;
	long db_pool_size, db_in_use, db_waiting;
};

/* Writes every metric of p in the Prometheus text format (version 0.0.4). */
void metrics_render(FILE *f, const struct metrics_process *p);

/* Writes s as a label value: quoted, with \ " and newlines escaped. */
void metrics_write_label(FILE *f, const char *s);

#endif
