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
#include "wire/wire.h"

struct httpd;

/* ---- the request reader: bytes in, whole requests out ----
 *
 * What a connection does with the bytes it receives, without socket, clock
 * or handler (so a fuzzer or a unit test drives exactly what a connection
 * runs): every byte is checked by wire before it is kept; a request that
 * arrived whole is cut into what a handler reads (method, path, headers
 * split in place, the body with a chunked one decoded). */

/* A growable byte buffer; the reader's. */
struct httpd_buf {
	char *data;
	size_t len, cap;
};

/* One connection's reader. The caller allocates it (e.g. inside its
 * connection), httpd_reader_init sets it up, httpd_reader_free gives its
 * memory back. The fields are the module's. */
struct httpd_reader {
	struct wire_stream ws;
	struct httpd_buf held;            /* bytes received, not yet passed by wire */
	struct httpd_buf req;             /* the request being received: head, then body as sent */
	struct httpd_buf body;            /* a chunked body, decoded */
	struct http_header *headers;      /* of the last whole request; point into req */
};

enum httpd_read {
	HTTPD_READ_MORE,     /* no whole request yet: add more bytes */
	HTTPD_READ_REQUEST,  /* a whole request: ctx is filled, valid until httpd_reader_done */
	HTTPD_READ_ERROR,    /* refused (err says why): answer err->status and close */
	HTTPD_READ_CLOSED,   /* the last request said close and has ended: the rest is dropped */
};

/* Where the request being received is. */
enum httpd_phase {
	HTTPD_PHASE_NONE,    /* no byte of a request yet */
	HTTPD_PHASE_HEAD,    /* receiving a head */
	HTTPD_PHASE_BODY,    /* receiving a body */
};

/* A fresh reader for requests of at most max_head bytes of head (request
 * line and headers) and max_body of body, of dropshipd's methods (GET,
 * HEAD, POST, PUT, DELETE, PATCH, OPTIONS; any other is 501). */
void httpd_reader_init(struct httpd_reader *r, size_t max_head, uint64_t max_body);
/* Keeps len bytes received (copied). */
void httpd_reader_add(struct httpd_reader *r, const char *data, size_t len);
/* Reads what was added. On HTTPD_READ_REQUEST fills ctx's method, path,
 * head, close, headers and body (pointing into the reader, valid until
 * httpd_reader_done); nothing else of ctx is touched. On HTTPD_READ_ERROR
 * fills err; every later call says the same. Call it again after
 * httpd_reader_done: the next request may be there already (pipelined). */
enum httpd_read httpd_reader_next(struct httpd_reader *r, struct http_ctx *ctx, struct wire_error *err);
/* Where the request in progress is. */
enum httpd_phase httpd_reader_phase(const struct httpd_reader *r);
/* The last whole request was answered: its memory goes (and the buffer of
 * received bytes too when it is empty: an idle connection holds none). */
void httpd_reader_done(struct httpd_reader *r);
/* Gives back all memory. The reader may be initialised again. */
void httpd_reader_free(struct httpd_reader *r);

/* ---- connections ---- */

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
