/* dropship-bench: a load generator for POST /v1/stores/{store}/webhooks
 * and, in callbacks mode, POST /v1/suppliers/{code}/callbacks.
 * main.c parses options and runs the workers; load.c is one worker (an
 * event loop with its own connections and histogram); callbacks.c reads
 * the callbacks file and writes their bodies; report.c prints the merged
 * result. */
#ifndef DROPSHIP_BENCH_H
#define DROPSHIP_BENCH_H
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "hist/hist.h"

#define BENCH_NAME "dropship-bench"
#define BENCH_SUPPLIERS_MAX 64
#define BENCH_CB_ID_MAX 64

/* The supplier event a callbacks run sends. */
enum bench_cb_type { BENCH_CB_ACCEPTED, BENCH_CB_SHIPPED, BENCH_CB_DELIVERED, BENCH_CB_TYPE_MAX };

/* --supplier CODE=SECRET: the secret that signs CODE's callbacks. */
struct bench_supplier_secret {
	char code[65];
	const char *secret;   /* points into argv */
};

/* Everything the command line says; read-only once the workers run. */
struct bench_opts {
	const char *url;
	const char *store;
	const char *secret;   /* the store's; in callbacks mode, every supplier's by default */
	const char *callbacks;            /* callbacks mode: the file of requests; NULL sends orders */
	enum bench_cb_type cb_type;
	int cb_type_set;
	struct bench_supplier_secret suppliers[BENCH_SUPPLIERS_MAX];
	int nsuppliers;
	const char *country;
	const char *sku_prefix;
	const char *cafile;
	int connections;
	int threads;
	int lines;          /* lines per order */
	long skus;          /* SKU names drawn from: prefix + 0..skus-1, zero-padded */
	int sku_width;
	int idle;           /* > 0: idle mode with this many connections */
	int insecure;
	int json;
	double duration_s;
	double warmup_s;
	double rate;        /* requests/s for all threads; 0 = closed loop */
	double timeout_s;   /* per request */
};

/* One line of the callbacks file. */
struct bench_cb {
	char request_id[BENCH_CB_ID_MAX + 1];
	char code[65];        /* the supplier's */
	const char *secret;   /* signs it: from the options */
};

/* Resolved once by main, shared read-only by every worker. */
struct bench_target {
	char host[256];
	char base[256];     /* the URL's path without a trailing slash */
	char path[512];     /* /v1/stores/CODE/webhooks, under the URL's path */
	struct bench_cb *cbs;   /* callbacks mode: the requests, each sent once */
	size_t ncbs;
	char host_header[300];
	struct sockaddr_storage addr;
	socklen_t addrlen;
	SSL_CTX *ssl_ctx;
};

#define BENCH_ERRORS(X)                                                         \
	X(BENCH_ERR_CONNECT, "connect")     /* TCP connect failed or reset before TLS */ \
	X(BENCH_ERR_TLS, "tls")             /* handshake or record layer failed */       \
	X(BENCH_ERR_TIMEOUT, "timeout")     /* no complete answer within --timeout */    \
	X(BENCH_ERR_CLOSED, "closed")       /* server closed with a request in flight */ \
	X(BENCH_ERR_PROTOCOL, "protocol")   /* an answer that is not HTTP/1.1 as expected */

#define BENCH_ERR_ENUM(id, name) id,
enum bench_error { BENCH_ERRORS(BENCH_ERR_ENUM) BENCH_ERR_MAX };
#undef BENCH_ERR_ENUM

/* Name of an error kind for the report ("connect", ...). */
const char *bench_error_name(enum bench_error e);

#define BENCH_STATUS_MAX 600

/* What one worker measured; merged by main after the run. */
struct bench_result {
	struct hist latency;                  /* microseconds, requests started in the window */
	uint64_t status[BENCH_STATUS_MAX];    /* answers by HTTP status */
	uint64_t errors[BENCH_ERR_MAX];
	uint64_t unsent;        /* open loop: scheduled in the window, never sent (all busy) */
	double window_s;        /* measured time (after warm-up) */
	/* idle mode */
	uint64_t established;   /* handshakes completed */
	uint64_t failed;        /* connections that could not be set up */
	uint64_t dropped;       /* closed by the server while held */
};

/* State shared by every worker: the stop flag and the idle-mode counters. */
struct bench_shared {
	atomic_int stop;          /* set on SIGINT/SIGTERM: end the run now */
	atomic_long settled;      /* idle mode: connections established or given up */
	atomic_int ready;         /* idle mode: every connection settled, hold started */
	atomic_size_t next_cb;    /* callbacks mode: next line of the file to send */
};

struct bench_worker;

/* One worker: index id of nthreads, its share of connections and rate. */
struct bench_worker *bench_worker_new(const struct bench_opts *o, const struct bench_target *t,
                                      struct bench_shared *sh, int id, char *err, size_t errlen);
/* Runs the worker's loop until its run ends. */
void bench_worker_run(struct bench_worker *w);
/* The worker's event_base, for main's signal events on worker 0. */
struct event_base *bench_worker_base(struct bench_worker *w);
/* The worker's result; owned by the worker. */
const struct bench_result *bench_worker_result(const struct bench_worker *w);
/* Frees the worker and its connections. Accepts NULL. */
void bench_worker_free(struct bench_worker *w);

/* Name of a callback type ("accepted", ...). */
const char *bench_cb_type_name(enum bench_cb_type t);
/* Parses a callback type name. Returns 0, or -1 for an unknown one. */
int bench_cb_type_parse(const char *s, enum bench_cb_type *out);
/* Reads o->callbacks into t->cbs ("request_id supplier_code" per line,
 * blank and # lines skipped), each with its signing secret. Returns 0, or
 * -1 with err filled. t->cbs is freed by the caller. */
int bench_callbacks_load(const struct bench_opts *o, struct bench_target *t, char *err, size_t errlen);
/* Writes the body of o->cb_type's callback for cb into body. Returns its
 * length, or -1 when it does not fit in cap. */
int bench_callback_body(const struct bench_opts *o, const struct bench_cb *cb, const char *occurred_at,
                        char *body, size_t cap);

/* Prints the merged result: an aligned table, or one JSON object with --json. */
void bench_report(const struct bench_opts *o, const struct bench_result *r);

#endif
