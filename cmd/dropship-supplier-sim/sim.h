/* dropship-supplier-sim: what its files share. What it does, flag by flag
 * and answer by answer, is in docs/simulator.md. The files:
 *   main.c       command line, event loop, signals, cleanup
 *   server.c     the HTTPS endpoint: routing, signature, body checks, dedupe
 *   faults.c     which attempts get --status, fail or hang, which requests
 *                are rejected; pure
 *   answer.c     answers to inbound requests: at once, after --slow-ms, or never
 *   ful.c        every request id seen, and the state of its fulfillment
 *   callbacks.c  the signed callbacks to dropshipd: timeline, retries, connections
 *   stats.c      GET /stats */
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
	int cb_inflight;
	struct sim_cb_conn *conns;
	struct sim_cb_conn *idle;
	int nidle;
	struct sim_stats stats;
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

/* ---- server.c ---- */

/* Listens on host:port with sim->server_ctx and sets sim->port to the port
 * bound; -1 with a message in err. */
int sim_server_start(struct sim *sim, const char *host, unsigned short port, char *err, size_t errlen);
/* Closes the listener and every inbound connection; settles held answers. */
void sim_server_stop(struct sim *sim);

/* ---- stats.c ---- */

/* Answers a request for /stats: the counters as JSON, or 405 but for GET. */
void sim_stats_serve(struct sim *sim, struct evhttp_request *req);

#endif
