/* http: per-request context and replies for dropshipd handlers. Every reply
 * goes through here, so each request gets exactly one access-log line with
 * its request id, store, status and duration.
 *
 * Handlers see the server only through struct http_env: what a worker
 * offers them (its pool, outbound client, config, metrics, loop). They
 * never include server/server.h. */
#ifndef DROPSHIP_HTTP_H
#define DROPSHIP_HTTP_H
#include <stddef.h>
#include <time.h>
#include <jansson.h>

#include "sig/sig.h"

struct db_pool;
struct client;
struct config;
struct metrics;

/* A worker's resources, as its request handlers may use them. Owned by the
 * server, lives as long as the worker; used only from the worker's loop. */
struct http_env {
	struct event_base *base;
	struct db_pool *db;
	struct client *client;       /* outbound HTTPS */
	const struct config *cfg;
	struct metrics *metrics;
	int draining;                /* set by the server: answers say Connection: close */
	/* Messages were committed to the outbox: the worker's dispatcher looks
	 * at once. (No NOTIFY in the transaction: PostgreSQL serializes the
	 * commits of every notifying transaction, fsync included; other
	 * processes find the messages by their poll.) */
	void (*outbox_ready)(void *arg);
	void *outbox_ready_arg;
	/* Stock was committed for SKUs that lines may be waiting for
	 * (sku_changes): the worker's re-planning looks at once. Other
	 * processes are told by NOTIFY dropship_stock after the COMMIT. */
	void (*stock_ready)(void *arg);
	void *stock_ready_arg;
};

/* A header of a request or an answer. */
struct http_header {
	const char *name, *value;
};

/* Extra answer headers a handler may add (Allow, Retry-After, ...). */
#define HTTP_EXTRA_HEADERS 6

/* One in-flight request. Allocated by the connection (internal/httpd)
 * when a request has arrived whole, freed by http_reply_*; handlers own it
 * in between and must reply once. */
struct http_ctx {
	struct http_env *env;
	char request_id[40];
	char store[72];            /* store or supplier code, for the log */
	struct timespec start;
	const char *method;        /* "GET", ...; "-" when the request could not be read */
	char path[256];            /* the target without its query; "-" likewise */
	int head;                  /* a HEAD request: the answer carries no body */
	int close;                 /* the connection closes after the answer */
	/* the request, owned by the connection, valid until the reply */
	const struct http_header *headers;
	size_t nheaders;
	const char *body;
	size_t body_len;
	/* answer headers added with http_add_header */
	struct http_header extra[HTTP_EXTRA_HEADERS];
	char extra_buf[512];
	size_t nextra, extra_used;
	/* the connection's: sends the answer (status line, headers, body) */
	void (*respond)(void *conn, const char *answer, size_t len, int close);
	void *conn;
};

/* Adds a header to the answer (copied; ignored past HTTP_EXTRA_HEADERS or
 * 512 bytes in all). */
void http_add_header(struct http_ctx *ctx, const char *name, const char *value);

/* Sends body (may be NULL) with status and frees ctx. Takes a reference on nothing: body is not stolen. */
void http_reply_json(struct http_ctx *ctx, int status, json_t *body);

/* Sends {"error":{"code","message","field"?}}; field may be NULL or "". Frees ctx. */
void http_reply_error(struct http_ctx *ctx, int status, const char *code,
                      const char *message, const char *field);

/* 503 unavailable with Retry-After. Frees ctx. */
void http_reply_unavailable(struct http_ctx *ctx, int retry_after_s);

/* Sends a plain-text body (e.g. /metrics). Frees ctx. */
void http_reply_text(struct http_ctx *ctx, int status, const char *content_type, const char *text, size_t len);

/* The request header value, or NULL. */
const char *http_header(const struct http_ctx *ctx, const char *name);

/* True when the request's Content-Type is application/json (parameters
 * such as "; charset=utf-8" allowed). */
int http_is_json(const struct http_ctx *ctx);

/* 415 unsupported_media_type. Frees ctx. */
void http_reply_not_json(struct http_ctx *ctx);

/* Copies the request body into a NUL-terminated malloc'd buffer; *len gets its length. */
char *http_body(const struct http_ctx *ctx, size_t *len);

/* Checks the request's signature and body against newline-separated secrets
 * (split in place): the Standard Webhooks headers (webhook-id, -timestamp,
 * -signature) when hmac_header is NULL, else that header holding
 * base64(HMAC-SHA256(secret, body)) as Shopify and WooCommerce send it. */
enum sig_result http_verify_webhook(const struct http_ctx *ctx, char *secrets, const char *body, size_t len,
                                    const char *hmac_header);

/* 401 missing_signature / stale_timestamp / invalid_signature for r, naming
 * hmac_header when it was the one checked. Frees ctx. */
void http_reply_signature_error(struct http_ctx *ctx, enum sig_result r, const char *hmac_header);

/* Constant-time string equality for secrets (lengths may differ). */
int http_secret_equal(const char *a, const char *b);

#endif
