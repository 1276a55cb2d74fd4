/* libFuzzer harness for dropshipd's request handling without sockets: a
 * connection's bytes through httpd's request reader (wire framing, header
 * splitting, dechunking, the http_ctx a handler gets), then what the
 * handlers do before they need the database: the signature check with a
 * known secret, the order or callback body parse of the endpoint the path
 * names, and the answer through http_reply_* (status line, headers, JSON
 * error body). Not part of `make test`; `make fuzz` builds it with ASan and
 * UBSan and runs it from the seeds in tests/fuzz/corpus/fuzz_httpd/.
 *
 * Input: byte 0 says how the rest is cut (low 3 bits: k, the number of piece
 * sizes that follow, each a byte + 1, cycled; k = 0: all at once) and which
 * limits apply (bits 3-4); then k bytes, then the connection's bytes. Seeds
 * start with 0x00: all at once, dropshipd's limits.
 *
 * Besides memory errors it traps when the whole and the cut runs read
 * different requests, when a request breaks what a handler relies on (a
 * method of the list, a path, one Host on HTTP/1.1, header names that are
 * tokens, values without CR, LF or NUL, a body within the limit), when a
 * refusal is not one of wire's statuses and codes, or when an answer is not
 * a well-formed HTTP/1.1 response with a JSON error body. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "http/http.h"
#include "httpd/httpd.h"
#include "lifecycle/lifecycle.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "order/order.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

static void require(int ok)
{
	if (!ok)
		abort();
}

/* dropshipd's limits, then small ones that fuzzing reaches. */
static const struct {
	size_t head;
	uint64_t body;
} limits[4] = { { 16384, 1048576 }, { 64, 16 }, { 256, 0 }, { 4096, 65536 } };

static struct metrics metrics;
static struct http_env env = { .metrics = &metrics };

/* ---- what the handlers do before the database ---- */

/* The answer http_reply_* sent, checked: a status line of the status, the
 * headers every answer carries, a body of Content-Length bytes. */
struct answer {
	int status;
	int head;     /* a HEAD request: the headers only */
	int close;
	int sent;
};

static void capture(void *conn, const char *text, size_t len, int close)
{
	struct answer *a = conn;
	require(!a->sent);
	a->sent = 1;
	a->close = close;
	int status = 0;
	require(len > 12 && sscanf(text, "HTTP/1.1 %3d ", &status) == 1 && status == a->status);
	const char *end = NULL;
	for (size_t i = 0; i + 3 < len; i++)
		if (memcmp(text + i, "\r\n\r\n", 4) == 0) {
			end = text + i + 4;
			break;
		}
	require(end != NULL);
	size_t hlen = (size_t)(end - text);
	char *head = strndup(text, hlen);
	require(head != NULL);
	const char *cl = strcasestr(head, "\r\nContent-Length: ");
	require(cl && strcasestr(head, "\r\nX-Request-Id: ") && strcasestr(head, "\r\nContent-Type: "));
	size_t body_len = (size_t)strtoull(cl + 18, NULL, 10);
	require(a->head ? len == hlen : body_len == len - hlen);
	require(!close || strcasestr(head, "\r\nConnection: close\r\n"));
	free(head);
	if (status >= 400 && !a->head) {
		json_error_t je;
		json_t *b = json_loadb(end, body_len, 0, &je);
		json_t *e = json_object_get(b, "error");
		require(json_is_string(json_object_get(e, "code")) && json_is_string(json_object_get(e, "message")));
		json_decref(b);
	}
}

/* A context for an answer to be captured into a. */
static void answer_to(struct http_ctx *ctx, struct answer *a, int status)
{
	memset(a, 0, sizeof *a);
	a->status = status;
	ctx->env = &env;
	ctx->respond = capture;
	ctx->conn = a;
	snprintf(ctx->request_id, sizeof ctx->request_id, "fuzz");
}

/* Replies like intake or callback would, as far as the body decides. */
static int handle_order(struct http_ctx *ctx, const char *body, size_t len)
{
	struct order o;
	struct order_error oe;
	const char *topic;
	int rc;
	char secrets[] = SECRET "\nwhsec_c2Vjb25kLXNlY3JldC1mb3ItdGVzdHMtMTIzNA==";
	if ((topic = http_header(ctx, "X-Shopify-Topic")) != NULL) {
		(void)http_verify_webhook(ctx, secrets, body, len, "X-Shopify-Hmac-Sha256");
		rc = order_parse_shopify(body, len, topic, &o, &oe);
	} else if ((topic = http_header(ctx, "X-WC-Webhook-Topic")) != NULL) {
		(void)order_is_woocommerce_ping(body, len);
		(void)http_verify_webhook(ctx, secrets, body, len, "X-WC-Webhook-Signature");
		rc = order_parse_woocommerce(body, len, topic, &o, &oe);
	} else {
		enum sig_result sr = http_verify_webhook(ctx, secrets, body, len, NULL);
		require(sr == SIG_OK || sr == SIG_MISSING || sr == SIG_STALE || sr == SIG_INVALID);
		rc = order_parse_native(body, len, &o, &oe);
	}
	if (rc == 0) {
		order_free(&o);
		return 202;
	}
	require(oe.code != NULL);
	return strcmp(oe.code, "invalid_json") == 0 ? 400 : 422;
}

static int handle_callback(struct http_ctx *ctx, const char *body, size_t len)
{
	char secrets[] = "whsec_c2Vjb25kLXNlY3JldC1mb3ItdGVzdHMtMTIzNA==";
	(void)http_verify_webhook(ctx, secrets, body, len, NULL);
	struct lifecycle_callback cb;
	struct order_error oe;
	if (lifecycle_parse_callback(body, len, &cb, &oe) == 0) {
		lifecycle_callback_free(&cb);
		return 200;
	}
	return strcmp(oe.code, "invalid_json") == 0 ? 400 : 422;
}

/* One request as a handler gets it: checked, handled, answered. */
static void handle(const struct http_ctx *req, uint64_t max_body)
{
	static const char *const methods[] = { "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS" };
	int known = 0;
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
		known |= req->method && strcmp(req->method, methods[i]) == 0;
	require(known);
	require(req->path[0] == '/' || strcmp(req->path, "*") == 0);
	require(!strchr(req->path, '?') && !strchr(req->path, ' '));
	size_t hosts = 0;
	for (size_t i = 0; i < req->nheaders; i++) {
		const char *n = req->headers[i].name, *v = req->headers[i].value;
		require(*n && strspn(n, "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		                        "abcdefghijklmnopqrstuvwxyz") == strlen(n));
		require(!strpbrk(v, "\r\n"));
		require(!*v || (v[0] != ' ' && v[0] != '\t' && v[strlen(v) - 1] != ' ' && v[strlen(v) - 1] != '\t'));
		hosts += strcasecmp(n, "Host") == 0;
		if (strcasecmp(n, "Transfer-Encoding") == 0)
			require(strcasecmp(v, "chunked") == 0 && !http_header(req, "Content-Length"));
	}
	require(hosts <= 1);
	require(req->body_len <= max_body && (req->body_len == 0 || req->body));

	struct http_ctx *ctx = calloc(1, sizeof *ctx);
	require(ctx != NULL);
	*ctx = *req;
	size_t len;
	char *body = http_body(ctx, &len);
	require(len == req->body_len && body[len] == '\0');
	int status = 404;
	if (strncmp(ctx->path, "/v1/stores/", 11) == 0)
		status = !http_is_json(ctx) ? 415 : handle_order(ctx, body, len);
	else if (strncmp(ctx->path, "/v1/suppliers/", 14) == 0)
		status = !http_is_json(ctx) ? 415 : handle_callback(ctx, body, len);
	free(body);
	struct answer a;
	answer_to(ctx, &a, status);
	a.head = ctx->head;
	if (status < 400) {
		json_t *b = json_pack("{s:s}", "status", "ok");
		http_reply_json(ctx, status, b);
		json_decref(b);
	} else {
		http_add_header(ctx, "Allow", "POST");
		http_reply_error(ctx, status, "not_found", "no such endpoint", ctx->path);
	}
	require(a.sent && a.close == req->close);
}

/* ---- the reader ---- */

/* What one run read: requests, a digest of each, how it ended. */
struct run {
	unsigned requests;
	uint64_t digest;
	enum httpd_read last;
	struct wire_error err;
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ULL;
	return h;
}

static uint64_t digest(uint64_t h, const struct http_ctx *r)
{
	h = fnv(h, r->method, strlen(r->method));
	h = fnv(h, r->path, strlen(r->path));
	for (size_t i = 0; i < r->nheaders; i++) {
		h = fnv(h, r->headers[i].name, strlen(r->headers[i].name) + 1);
		h = fnv(h, r->headers[i].value, strlen(r->headers[i].value) + 1);
	}
	h = fnv(h, &r->close, sizeof r->close);
	return fnv(h, r->body ? r->body : "", r->body_len);
}

/* Reads what was added until more is needed or the stream ends. */
static int drain(struct httpd_reader *rd, struct run *run, uint64_t max_body, int answer)
{
	for (;;) {
		struct http_ctx req = { 0 };
		struct wire_error err;
		enum httpd_read v = httpd_reader_next(rd, &req, &err);
		run->last = v;
		if (v == HTTPD_READ_REQUEST) {
			run->requests++;
			run->digest = digest(run->digest, &req);
			if (answer)
				handle(&req, max_body);
			httpd_reader_done(rd);
			continue;
		}
		if (v == HTTPD_READ_ERROR) {
			run->err = err;
			static const struct {
				int status;
				const char *code;
			} codes[] = { { 400, "bad_request" },     { 413, "payload_too_large" },
				      { 431, "header_too_large" }, { 501, "not_implemented" },
				      { 505, "http_version_not_supported" } };
			int ok = 0;
			for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
				ok |= err.status == codes[i].status && strcmp(err.code, codes[i].code) == 0;
			require(ok && memchr(err.message, '\0', sizeof err.message) && err.message[0]);
			/* Refused for good: the same error, whatever comes next. */
			struct wire_error again;
			httpd_reader_add(rd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
			require(httpd_reader_next(rd, &req, &again) == HTTPD_READ_ERROR && again.status == err.status);
			if (answer) {
				struct http_ctx *ctx = calloc(1, sizeof *ctx);
				require(ctx != NULL);
				struct answer a;
				answer_to(ctx, &a, err.status);
				ctx->method = "-";
				snprintf(ctx->path, sizeof ctx->path, "-");
				ctx->close = 1;
				http_reply_error(ctx, err.status, err.code, err.message, err.field);
				require(a.sent && a.close);
			}
			return 1;
		}
		return v == HTTPD_READ_CLOSED;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	if (!init) {
		log_set_level_name("error"); /* every answer logs a line at info */
		init = 1;
	}
	if (size == 0)
		return 0;
	size_t k = data[0] & 7, sizes[7];
	size_t max_head = limits[(data[0] >> 3) & 3].head;
	uint64_t max_body = limits[(data[0] >> 3) & 3].body;
	if (size < 1 + k)
		return 0;
	for (size_t i = 0; i < k; i++)
		sizes[i] = (size_t)data[1 + i] + 1;
	const char *in = (const char *)data + 1 + k;
	size_t n = size - 1 - k;

	/* All at once, answered. */
	struct httpd_reader rd;
	struct run whole = { 0 }, cut = { 0 };
	httpd_reader_init(&rd, max_head, max_body);
	httpd_reader_add(&rd, in, n);
	drain(&rd, &whole, max_body, 1);
	httpd_reader_free(&rd);

	/* In pieces (one byte at a time when k is 0): the same requests, the same end. */
	httpd_reader_init(&rd, max_head, max_body);
	size_t at = 0;
	for (size_t i = 0; at < n; i++) {
		size_t piece = k ? sizes[i % k] : 1;
		if (piece > n - at)
			piece = n - at;
		httpd_reader_add(&rd, in + at, piece);
		at += piece;
		if (drain(&rd, &cut, max_body, 0))
			break;
	}
	httpd_reader_free(&rd);
	require(cut.requests == whole.requests && cut.digest == whole.digest && cut.last == whole.last);
	if (whole.last == HTTPD_READ_ERROR)
		require(cut.err.status == whole.err.status && strcmp(cut.err.message, whole.err.message) == 0);
	return 0;
}
