/* httpd: dropshipd's HTTP/1.1 connections, one listener per worker: accept,
 * TLS (bufferevent_openssl), the request stream checked byte by byte by
 * internal/wire before anything reads it (no request smuggling), keep-alive
 * and pipelining one request at a time, the answers handlers send through
 * internal/http, and the limits that keep real clients served:
 *
 *  - read_timeout_ms: a connection that sends nothing for this long (idle,
 *    during its handshake or mid-request) is closed; mid-request with 408;
 *  - request_timeout_ms: the whole of one request must arrive within it
 *    (slow clients cannot hold a connection by dribbling), 408;
 *  - max_conns: at the cap, the connection that has waited longest without
 *    a request in progress (handshake, idle, or reading a head) is shed to
 *    let the new one in; only when none can be shed is the new one refused;
 *  - admit/release: the caller's per-address limit, asked at accept.
 *
 * Everything the peer gets, the errors found here included, goes through
 * http_reply_*: JSON error body, X-Request-Id, one log line, a count.
 *
 * Not thread-safe: one httpd per worker event loop. */
#ifndef DROPSHIP_HTTPD_H
#define DROPSHIP_HTTPD_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "http/http.h"

struct httpd;

struct httpd_options {
	int listen_fd;                 /* bound and listening; httpd closes it */
	struct http_env *env;          /* every request's ctx->env */
	/* The server TLS context for a new connection, with a reference the
	 * caller gives (httpd frees it): a reload swaps what this returns. */
	SSL_CTX *(*tls_ctx)(void *arg);
	void *tls_arg;
	size_t max_head;               /* request line and headers */
	uint64_t max_body;
	int read_timeout_ms;
	int request_timeout_ms;
	int max_conns;
	/* Per-address admission at accept: 0 refuses; release is called once
	 * for every admitted connection when it closes. May be NULL. */
	int (*admit)(void *arg, const struct sockaddr *peer, socklen_t len);
	void (*release)(void *arg, const struct sockaddr *peer, socklen_t len);
	void *admit_arg;
	/* A request that arrived whole: route it (the handler replies once). */
	void (*route)(void *arg, struct http_ctx *ctx);
	void *route_arg;
	/* After httpd_drain: the last connection has closed. May be NULL. */
	void (*drained)(void *arg);
	void *drained_arg;
	unsigned id_tag;               /* in every request id, e.g. the worker's index */
};

/* Starts accepting. NULL with a message in err. */
struct httpd *httpd_new(struct event_base *base, const struct httpd_options *opt, char *err, size_t errlen);
/* Stops accepting and closes the connections with nothing in progress;
 * requests in progress are answered with Connection: close. */
void httpd_drain(struct httpd *h);
/* Open connections. */
int httpd_conns(const struct httpd *h);
/* Closes every connection and frees. Accepts NULL. */
void httpd_free(struct httpd *h);

#endif
