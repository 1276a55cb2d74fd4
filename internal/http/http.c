#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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

/* The reason phrase of the statuses dropshipd sends. */
static const char *http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	}
	return "Unknown";
}

void http_add_header(struct http_ctx *ctx, const char *name, const char *value)
{
	size_t nl = strlen(name) + 1, vl = strlen(value) + 1;
	if (ctx->nextra == HTTP_EXTRA_HEADERS || ctx->extra_used + nl + vl > sizeof ctx->extra_buf)
		return;
	char *n = ctx->extra_buf + ctx->extra_used;
	memcpy(n, name, nl);
	memcpy(n + nl, value, vl);
	ctx->extra[ctx->nextra++] = (struct http_header){ n, n + nl };
	ctx->extra_used += nl + vl;
}

static void finish(struct http_ctx *ctx, int status, const char *ctype, const char *body, size_t len)
{
	int close = ctx->close || ctx->env->draining;
	char *answer = NULL;
	size_t alen = 0;
	FILE *f = open_memstream(&answer, &alen);
	if (!f)
		mem_oom();
	fprintf(f, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nX-Request-Id: %s\r\n",
	        status, http_reason(status), ctype, len, ctx->request_id);
	for (size_t i = 0; i < ctx->nextra; i++)
		fprintf(f, "%s: %s\r\n", ctx->extra[i].name, ctx->extra[i].value);
	if (close)
		fputs("Connection: close\r\n", f);
	fputs("\r\n", f);
	if (len && !ctx->head)
		fwrite(body, 1, len, f);
	fclose(f);
	ctx->respond(ctx->conn, answer, alen, close);
	free(answer);

	char qpath[300];
	long us = elapsed_us(&ctx->start);
	log_info("request", "request_id=%s method=%s path=%s store=%s status=%d duration_us=%ld",
	         ctx->request_id, ctx->method, log_quote(qpath, sizeof qpath, ctx->path),
	         ctx->store[0] ? ctx->store : "-", status, us);
	metrics_observe_request(ctx->env->metrics, ctx->path, status, us);
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
	http_add_header(ctx, "Retry-After", v);
	http_reply_error(ctx, 503, "unavailable", "the database is unavailable; retry later", NULL);
}

void http_reply_text(struct http_ctx *ctx, int status, const char *content_type, const char *text, size_t len)
{
	finish(ctx, status, content_type, text, len);
}

const char *http_header(const struct http_ctx *ctx, const char *name)
{
	for (size_t i = 0; i < ctx->nheaders; i++)
		if (strcasecmp(ctx->headers[i].name, name) == 0)
			return ctx->headers[i].value;
	return NULL;
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
	char *buf = mem_alloc(ctx->body_len + 1);
	if (ctx->body_len)
		memcpy(buf, ctx->body, ctx->body_len);
	buf[ctx->body_len] = '\0';
	*len = ctx->body_len;
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
