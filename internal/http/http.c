#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>

#include "http/http.h"
#include "log/log.h"
#include "mem/mem.h"
#include "metrics/metrics.h"

static long elapsed_us(const struct timespec *start)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1000000L + (now.tv_nsec - start->tv_nsec) / 1000L;
}

static void finish(struct http_ctx *ctx, int status, const char *ctype, const char *body, size_t len)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(ctx->req);
	evhttp_add_header(h, "Content-Type", ctype);
	evhttp_add_header(h, "X-Request-Id", ctx->request_id);
	if (ctx->env->draining)
		evhttp_add_header(h, "Connection", "close");
	struct evbuffer *out = evbuffer_new();
	if (len)
		evbuffer_add(out, body, len);
	/* evhttp picks the reason phrase for the status code. */
	evhttp_send_reply(ctx->req, status, NULL, out);
	evbuffer_free(out);

	char qpath[300];
	log_info("request", "request_id=%s method=%s path=%s store=%s status=%d duration_us=%ld",
	         ctx->request_id, ctx->method, log_quote(qpath, sizeof qpath, ctx->path),
	         ctx->store[0] ? ctx->store : "-", status, elapsed_us(&ctx->start));
	metrics_count_status(ctx->env->metrics, status);
	if (ctx->env->request_done)
		ctx->env->request_done(ctx->env->request_done_arg, status);
	free(ctx);
}

void http_reply_json(struct http_ctx *ctx, int status, json_t *body)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	finish(ctx, status, "application/json", text ? text : "", text ? strlen(text) : 0);
	free(text);
}

void http_reply_error(struct http_ctx *ctx, int status, const char *code,
                      const char *message, const char *field)
{
	json_t *err = json_pack("{s:s, s:s}", "code", code, "message", message);
	if (err && field && *field)
		json_object_set_new(err, "field", json_string(field));
	json_t *body = json_pack("{s:o}", "error", err);
	http_reply_json(ctx, status, body);
	json_decref(body);
}

void http_reply_unavailable(struct http_ctx *ctx, int retry_after_s)
{
	char v[16];
	snprintf(v, sizeof v, "%d", retry_after_s);
	evhttp_add_header(evhttp_request_get_output_headers(ctx->req), "Retry-After", v);
	http_reply_error(ctx, 503, "unavailable", "the database is unavailable; retry later", NULL);
}

void http_reply_text(struct http_ctx *ctx, int status, const char *content_type, const char *text, size_t len)
{
	finish(ctx, status, content_type, text, len);
}

const char *http_header(const struct http_ctx *ctx, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(ctx->req), name);
}

int http_is_json(const struct http_ctx *ctx)
{
	const char *ctype = http_header(ctx, "Content-Type");
	size_t n = strlen("application/json");
	return ctype && strncasecmp(ctype, "application/json", n) == 0 &&
	       (ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' ');
}

void http_reply_not_json(struct http_ctx *ctx)
{
	http_reply_error(ctx, 415, "unsupported_media_type", "Content-Type must be application/json", NULL);
}

char *http_body(const struct http_ctx *ctx, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(ctx->req);
	size_t n = evbuffer_get_length(in);
	char *buf = mem_alloc(n + 1);
	evbuffer_copyout(in, buf, n);
	buf[n] = '\0';
	*len = n;
	return buf;
}

int http_secret_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	/* Compare over the presented length so timing reveals nothing of the secret's bytes. */
	int diff = la != lb;
	const char *cmp = la == lb ? b : a;
	return !(CRYPTO_memcmp(a, cmp, la) | diff);
}

/* Secrets are kept joined by newlines (stores.secrets, suppliers.secrets). */
#define HTTP_MAX_SECRETS 8

enum sig_result http_verify_webhook(const struct http_ctx *ctx, char *secrets, const char *body, size_t len,
                                    const char *hmac_header)
{
	const char *list[HTTP_MAX_SECRETS];
	size_t n = 0;
	for (char *s = secrets; s && *s && n < HTTP_MAX_SECRETS;) {
		list[n++] = s;
		char *nl = strchr(s, '\n');
		if (!nl)
			break;
		*nl = '\0';
		s = nl + 1;
	}
	if (hmac_header)
		return sig_verify_hmac_b64(list, n, http_header(ctx, hmac_header), body, len);
	return sig_verify_standard(list, n, http_header(ctx, "webhook-id"), http_header(ctx, "webhook-timestamp"),
	                           http_header(ctx, "webhook-signature"), body, len, (int64_t)time(NULL),
	                           SIG_TOLERANCE_S);
}

void http_reply_signature_error(struct http_ctx *ctx, enum sig_result r, const char *hmac_header)
{
	char msg[128];
	switch (r) {
	case SIG_MISSING:
		if (hmac_header) {
			snprintf(msg, sizeof msg, "the %s header is required", hmac_header);
			http_reply_error(ctx, 401, "missing_signature", msg, NULL);
			return;
		}
		http_reply_error(ctx, 401, "missing_signature",
		                 "webhook-id, webhook-timestamp and webhook-signature headers are required", NULL);
		return;
	case SIG_STALE:
		http_reply_error(ctx, 401, "stale_timestamp",
		                 "webhook-timestamp is more than 300 seconds from now", NULL);
		return;
	default:
		http_reply_error(ctx, 401, "invalid_signature", "no signature matches the sender's secret", NULL);
		return;
	}
}
