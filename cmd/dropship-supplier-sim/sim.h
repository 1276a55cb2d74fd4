/* dropship-supplier-sim: what its files share. What it does, flag by flag
 * and answer by answer, is in docs/simulator.md. The files:
 *   main.c       command line, event loop, signals, cleanup
 *   server.c     the HTTPS endpoint: routing, signature, body checks, dedupe
 *   faults.c     which attempts get --status, fail or hang, which requests
 *                are rejected; pure
 *   answer.c     answers to inbound requests: at once, after --slow-ms, or never
 *   ful.c        every request id seen, and the state of its fulfillment
 *   callbacks.c  the signed callbacks to dropshipd: timeline, retries, connections
 *   feed.c       --catalog and --feed-every: each supplier's stock levels, pushed
 *                to dropshipd's inventory endpoint
 *   stats.c      GET /stats
 *   track.c      the carrier, tracking number and URL of a parcel */
#ifndef DROPSHIP_SIM_H
#define DROPSHIP_SIM_H
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>

#include <jansson.h>
#include <openssl/ssl.h>

#define SIM_NAME "dropship-supplier-sim"
#define SIM_MAX_BODY (1 << 20)        /* inbound requests and callback answers */
#define SIM_ID_MAX 128
#define SIM_CODE_MAX 64
#define SIM_CB_RETRIES 10             /* retries after the first attempt */
#define SIM_CB_BACKOFF_MS 100         /* first retry delay, doubled each time */
#define SIM_CB_BACKOFF_MAX_MS 5000
#define SIM_FEED_MAX_ITEMS 10000      /* items in one feed, as dropshipd takes them */

struct sim_supplier {
	char code[SIM_CODE_MAX + 1];
	const char *secret;            /* whsec_..., points into argv */
};

/* Everything the command line says; read-only once the loop runs. */
struct sim_opts {
	const char *listen;
	const char *tls_cert, *tls_key;
	struct sim_supplier *suppliers;
	size_t nsuppliers;
	double fail_rate, hang_rate, reject_rate;
	const char *reject_reason;     /* the rejections' reason, default out_of_stock */
	long slow_ms;
	int status;                    /* 0: no override */
	uint64_t seed;
	int seed_given;
	const char *callback_url;
	const char *ca_file;
	long accept_ms, ship_ms, deliver_ms;
	const char *log_level;
	const char *catalog;           /* --catalog: the suppliers' SKUs and first levels */
	long feed_every_ms;            /* --feed-every; 0: no feeds */
};

/* ---- the simulator ---- */

#define SIM_FUL_STATES(X) \
	X(RECEIVED,  "received")   /* fulfillment.requested taken, nothing decided yet */ \
	X(ACCEPTED,  "accepted")   \
	X(SHIPPED,   "shipped")    \
	X(DELIVERED, "delivered")  \
	X(REJECTED,  "rejected")   /* chosen by --reject-rate, --reject-reason says why */ \
	X(CANCELLED, "cancelled")  /* dropshipd cancelled before shipping */

enum sim_ful_state {
#define X(name, text) SIM_FUL_##name,
	SIM_FUL_STATES(X)
#undef X
	SIM_FUL_STATE_MAX
};

struct event;
struct event_base;
struct evhttp;
struct evhttp_request;
struct sim;
struct sim_held;                   /* an answer held back */
struct sim_cb_conn;                /* a connection to dropshipd for callbacks */
struct sim_cb_event;               /* a callback waiting in an outbox */
struct sim_feed_out;               /* a stock feed on the wire (feed.c) */

/* A fulfillment, one per request id. */
struct sim_ful {
	struct sim *sim;
	char *id;                      /* request_id */
	size_t supplier;               /* index into opts.suppliers */
	enum sim_ful_state state;
	unsigned requested : 1;        /* a fulfillment.requested was taken */
	unsigned cancel_seen : 1;      /* a fulfillment.cancel_requested was taken */
	unsigned reject : 1;           /* will reject instead of accept */
	unsigned busy : 1;             /* outbox head is queued, on the wire or backing off */
	unsigned long deliveries;      /* fulfillment.requested deliveries, repeats included */
	/* callbacks.c's */
	struct event *step;            /* next timeline step; NULL when none is due */
	struct event *retry;           /* backoff before the next attempt */
	struct sim_cb_event *out_head, *out_tail;
	struct sim_ful *ready_next;    /* in sim.ready */
};

/* A SKU a supplier stocks (feed.c). */
struct sim_level {
	char *sku;                     /* owned */
	long start;                    /* the level in --catalog: restocked up to it */
	long level;                    /* what the next feed says */
};

/* One supplier's stock, pushed to dropshipd every --feed-every (feed.c). */
struct sim_stock {
	struct sim_level *levels;      /* owned, sorted by sku */
	size_t n;
	int inflight;                  /* feeds on the wire: a tick waits for them */
	unsigned long seq;             /* feeds sent, for their webhook-id */
};

/* Counters shown by /stats; each is bumped where its event happens. */
struct sim_stats {
	unsigned long requests;        /* attempts on fulfillment endpoints */
	unsigned long accepted;        /* unique request ids requested */
	unsigned long duplicates;
	unsigned long failed_injected;
	unsigned long hung;
	unsigned long cancels;
	unsigned long callbacks_sent;
	unsigned long callbacks_failed;
	unsigned long callbacks_retried;
	unsigned long feeds_sent;      /* stock feeds answered 2xx */
	unsigned long feeds_failed;    /* stock feeds refused or not answered (not retried) */
};

/* The context every callback gets: one per process, no globals. */
struct sim {
	const struct sim_opts *o;
	struct event_base *base;
	struct evhttp *http;           /* server.c's listener */
	SSL_CTX *server_ctx, *client_ctx;
	struct event *sigterm, *sigint;
	uint64_t rng;                  /* faults.c's random state, from --seed */
	int port;                      /* the port bound, for the "listening" line */
	/* request ids, in arrival order, with an open-addressing index (ful.c) */
	struct sim_ful **fuls;
	size_t nfuls, capfuls;
	uint32_t *table;               /* slot = index + 1, 0 = empty */
	size_t table_cap;
	struct sim_held *held;         /* answers held back, newest first (answer.c) */
	/* callbacks (callbacks.c) */
	struct event *kick;            /* frees and starts connections outside libevent's callbacks */
	char cb_host[256];             /* to connect to and verify (no brackets) */
	char cb_host_header[300];
	int cb_port;
	char cb_path[512];             /* base path without a trailing slash */
	struct sim_ful *ready_head, *ready_tail;
	int cb_inflight;               /* requests to dropshipd on the wire, feeds included */
	struct sim_cb_conn *conns;
	struct sim_cb_conn *idle;
	int nidle;
	struct sim_stats stats;
	/* stock feeds (feed.c) */
	struct sim_stock *stock;       /* one per supplier; NULL without --catalog */
	struct sim_feed_out *feed_outs; /* feeds on the wire */
	struct event *feed_timer;
	uint64_t feed_rng;             /* the drift's own random sequence */
};

/* ms milliseconds as a timeval, for evtimer_add. */
static inline struct timeval sim_ms_tv(long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	return tv;
}

/* ---- faults.c: pure, no I/O and no clock ---- */

/* What happens to an attempt on a fulfillment endpoint before it is read. */
enum sim_fault {
	SIM_FAULT_NONE,                /* processed normally */
	SIM_FAULT_STATUS,              /* answered with --status, nothing else done */
	SIM_FAULT_FAIL,                /* answered 503 (--fail-rate) */
	SIM_FAULT_HANG,                /* never answered (--hang-rate) */
};

/* The seed used when --seed is not given, from the clock and the process id. */
uint64_t sim_fault_seed_default(const struct timespec *now, pid_t pid);
/* The first state of the random sequence for a seed (any seed, 0 included). */
uint64_t sim_fault_rng_init(uint64_t seed);
/* Picks the fault for one attempt, drawing from *rng as the rates say. */
enum sim_fault sim_fault_pick(const struct sim_opts *o, uint64_t *rng);
/* 1 when a new request is to be rejected (out of stock) rather than accepted. */
int sim_fault_reject(const struct sim_opts *o, uint64_t *rng);
/* One period of a supplier's trade away from dropship: each level may be
 * restocked to its start (1 in 10), or sell some of it (3 in 10, up to a
 * tenth of its start, at least 1), never below 0. */
void sim_fault_drift(struct sim_level *levels, size_t n, uint64_t *rng);

/* ---- answer.c ---- */

/* Answers a fulfillment request (after --slow-ms) and writes its access-log
 * line. Takes body (NULL for none); supplier and request_id are for the log. */
void sim_answer(struct sim *sim, struct evhttp_request *req, int status, json_t *body,
                const char *supplier, const char *request_id);
/* sim_answer with {"error": {code, message[, field]}}. */
void sim_answer_error(struct sim *sim, struct evhttp_request *req, int status, const char *code,
                      const char *message, const char *field, const char *supplier,
                      const char *request_id);
/* Never answers req (--hang-rate): held until its client leaves or the simulator stops. */
void sim_answer_never(struct sim *sim, struct evhttp_request *req, const char *supplier);
/* Plain answers (stats, health, routing errors): never delayed. Takes body. */
void sim_answer_plain(struct evhttp_request *req, int status, json_t *body);
/* 405 with an Allow header listing the methods the path takes. */
void sim_answer_not_allowed(struct evhttp_request *req, const char *allow);
/* A new {"error": {code, message[, field]}} object; the caller owns it. */
json_t *sim_error_body(const char *code, const char *message, const char *field);
/* Frees the answers still held; after evhttp_free, which settles those on a connection. */
void sim_answer_free_held(struct sim *sim);

/* ---- ful.c ---- */

/* FNV-1a of a request id: the index's hash, and stable across runs. */
uint64_t sim_id_hash(const char *id);
/* The fulfillment of request id id; NULL when it has not been seen. */
struct sim_ful *sim_ful_find(struct sim *sim, const char *id);
/* A new fulfillment for id, in state received, owned by sim; NULL when out of memory. */
struct sim_ful *sim_ful_add(struct sim *sim, const char *id, size_t supplier);
/* The only place a fulfillment changes state; asserts the change is legal. */
void sim_ful_set_state(struct sim_ful *f, enum sim_ful_state to);
/* Frees every fulfillment and the index. */
void sim_ful_free_all(struct sim *sim);

/* ---- callbacks.c ---- */

/* Splits --callback-url into sim's callback target; -1 with a message in err. */
int sim_cb_parse_url(struct sim *sim, const char *url, char *err, size_t errlen);
/* Creates the kick event on sim->base; -1 when out of memory. */
int sim_cb_init(struct sim *sim);
/* Starts f's timeline: accepted (or rejected) after --accept-after-ms, then
 * shipped and delivered. Does nothing without --callback-url. */
void sim_cb_play(struct sim_ful *f);
/* Stops f's timeline, moves it to cancelled and sends fulfillment.cancelled. */
void sim_cb_cancel(struct sim_ful *f);
/* Releases what the callbacks hold for f: its timers and its outbox. */
void sim_cb_forget(struct sim_ful *f);
/* Frees the connections to dropshipd and the kick event. */
void sim_cb_free(struct sim *sim);

/* The end of one sim_post: status 0 and error when no answer came; the
 * answer's body (not NUL-terminated) otherwise. */
typedef void (*sim_post_done)(void *arg, int status, const char *answer, size_t len, const char *error);
/* POSTs body to dropshipd's path (under --callback-url's path) on a pooled
 * connection, signed with supplier s's secret under webhook-id id; done(arg,
 * ...) runs once when it is over. Call it from a timer or the kick, never
 * from a connection's own callback. Returns 0, or -1 when nothing was sent
 * (done is then not called), with why in err. */
int sim_post(struct sim *sim, const struct sim_supplier *s, const char *path, const char *id, const char *body,
             size_t len, sim_post_done done, void *arg, char *err, size_t errlen);

/* ---- feed.c ---- */

/* Reads --catalog: the rows of this simulator's suppliers become their
 * levels. Returns 0, or -1 with "FILE:LINE: reason" in err. */
int sim_feed_load(struct sim *sim, char *err, size_t errlen);
/* Starts the feeds: every --feed-every, the first one period after start. -1 when out of memory. */
int sim_feed_start(struct sim *sim);
/* Supplier si took a fulfillment.requested of items [{sku, quantity}]: its levels fall. */
void sim_feed_sold(struct sim *sim, size_t si, json_t *items);
/* Frees the levels and the timer. */
void sim_feed_free(struct sim *sim);

/* ---- server.c ---- */

/* Listens on host:port with sim->server_ctx and sets sim->port to the port
 * bound; -1 with a message in err. */
int sim_server_start(struct sim *sim, const char *host, unsigned short port, char *err, size_t errlen);
/* Closes the listener and every inbound connection; settles held answers. */
void sim_server_stop(struct sim *sim);

/* ---- stats.c ---- */

/* Answers a request for /stats: the counters as JSON, or 405 but for GET. */
void sim_stats_serve(struct sim *sim, struct evhttp_request *req);

/* ---- tracking (track.c) ---- */

struct sim_tracking {
	char carrier[16];              /* UPS, USPS, FedEx or DHL Express */
	char number[32];               /* in that carrier's own form, check digit included */
	char url[256];                 /* the carrier's tracking page for it */
};

/* The parcel of request_id: the same for the same id on every run. */
void sim_tracking(const char *request_id, struct sim_tracking *t);

#endif
