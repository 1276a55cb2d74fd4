/* server: dropshipd's HTTPS front. One event_base per worker thread, each
 * with its own SO_REUSEPORT listener, evhttp, TLS bufferevents and database
 * pool. Enforces the connection cap and the per-request receive deadline,
 * routes requests to handlers and drains gracefully on stop. */
#ifndef DROPSHIP_SERVER_H
#define DROPSHIP_SERVER_H
#include <stdatomic.h>
#include <pthread.h>
#include <openssl/ssl.h>
#include <event2/event.h>
#include <event2/http.h>

#include "config/config.h"

struct server;
struct db_pool;
struct client;
struct dispatch;

/* Counters read by /metrics from any thread. */
struct server_metrics {
	atomic_ulong requests_2xx, requests_4xx, requests_5xx;
	atomic_ulong orders_created, orders_duplicate, orders_cancelled;
	atomic_ulong db_unavailable;
	atomic_long connections;
};

struct server_worker {
	struct server *srv;
	int index;
	pthread_t thread;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	int listen_fd;
	struct db_pool *db;
	struct client *client;     /* outbound HTTPS */
	struct dispatch *dispatch; /* outbox delivery */
	const struct config *cfg;
	SSL_CTX *ssl;
	int conns;                 /* open connections on this worker */
	int conn_cap;              /* this worker's share of max_connections */
	int listener_paused;
	int inflight;              /* requests handed to a handler, not yet answered */
	int draining;
	struct event *stop_ev;     /* activated from the main thread */
	unsigned long next_request; /* for request ids */
	unsigned int id_salt;
	struct server_metrics metrics;
};

/* Loads TLS, binds every worker's socket. NULL with a message in err. */
struct server *server_new(const struct config *cfg, char *err, size_t errlen);
/* The TCP port actually bound (useful with port 0). */
int server_port(const struct server *srv);
/* Starts the worker threads. Returns 0 or -1. */
int server_start(struct server *srv, char *err, size_t errlen);
/* Asks every worker to stop accepting, finish in-flight requests and exit. Thread-safe. */
void server_stop(struct server *srv);
/* Waits for the workers to exit. */
void server_wait(struct server *srv);
/* Frees everything (after server_wait). Accepts NULL. */
void server_free(struct server *srv);

/* Called by http_reply_*: the request is answered. */
void server_request_done(struct server_worker *w, int status);
/* Sums the metrics of every worker into Prometheus text (malloc'd). */
char *server_metrics_text(const struct server *srv);

#endif
