/* httpd's request reader: bytes in, the requests a handler gets out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "httpd/httpd.h"
#include "support/harness.h"

#define CHECK HARNESS_CHECK
#define T(s) s, sizeof(s) - 1
#define HOST "Host: x\r\n"

/* What a reader made of a byte stream, fed in pieces of `piece` bytes
 * (0: all at once). */
struct got {
	int n;                    /* requests */
	char method[4][16], path[4][256], body[4][64];
	size_t body_len[4];
	char header[4][64];       /* the value of X-A, "" when absent */
	int close[4];
	enum httpd_read last;
	int status;               /* the refusal's, 0 when none */
	char code[40];
};

static void read_all(const char *in, size_t len, size_t piece, struct got *g)
{
	memset(g, 0, sizeof *g);
	struct httpd_reader r;
	httpd_reader_init(&r, 256, 64);
	size_t at = 0;
	do {
		size_t k = piece && piece < len - at ? piece : len - at;
		httpd_reader_add(&r, in + at, k);
		at += k;
		for (;;) {
			struct http_ctx ctx = { 0 };
			struct wire_error err;
			g->last = httpd_reader_next(&r, &ctx, &err);
			if (g->last == HTTPD_READ_ERROR) {
				g->status = err.status;
				snprintf(g->code, sizeof g->code, "%s", err.code);
				goto out;
			}
			if (g->last != HTTPD_READ_REQUEST)
				break;
			if (g->n < 4) {
				snprintf(g->method[g->n], sizeof g->method[0], "%s", ctx.method);
				snprintf(g->path[g->n], sizeof g->path[0], "%s", ctx.path);
				snprintf(g->body[g->n], sizeof g->body[0], "%.*s", (int)ctx.body_len, ctx.body ? ctx.body : "");
				g->body_len[g->n] = ctx.body_len;
				const char *v = http_header(&ctx, "x-a");
				snprintf(g->header[g->n], sizeof g->header[0], "%s", v ? v : "");
				g->close[g->n] = ctx.close;
			}
			g->n++;
			httpd_reader_done(&r);
		}
	} while (at < len);
out:
	httpd_reader_free(&r);
}

static const struct {
	const char *name, *in;
	size_t len;
	int n;                    /* requests read */
	const char *method, *path, *body, *header; /* of the last one */
	int close;
	int status;               /* refused with, 0: not */
	const char *code;
} cases[] = {
	{ "GET with a query and a header", T("GET /healthz?x=1 HTTP/1.1\r\n" HOST "X-A:  padded value \t\r\n\r\n"), 1,
	  "GET", "/healthz", "", "padded value", 0, 0, NULL },
	{ "POST with a length", T("POST /v1/x HTTP/1.1\r\n" HOST "Content-Length: 5\r\n\r\nhello"), 1, "POST", "/v1/x",
	  "hello", "", 0, 0, NULL },
	{ "chunked with extensions and trailers", T("PUT /c HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
	                                            "5;a=\"b c\"\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n"),
	  1, "PUT", "/c", "hello world", "", 0, 0, NULL },
	{ "pipelined, the last says close", T("GET /a HTTP/1.1\r\n" HOST "\r\nPOST /b HTTP/1.1\r\n" HOST
	                                      "Content-Length: 2\r\nConnection: close\r\n\r\nhiGET /c HTTP/1.1\r\n"
	                                      HOST "\r\n"), 2, "POST", "/b", "hi", "", 1, 0, NULL },
	{ "HTTP/1.0 closes", T("GET /a HTTP/1.0\r\n\r\n"), 1, "GET", "/a", "", "", 1, 0, NULL },
	{ "OPTIONS *", T("OPTIONS * HTTP/1.1\r\n" HOST "\r\n"), 1, "OPTIONS", "*", "", "", 0, 0, NULL },
	{ "a valid request, then two lengths", T("GET /a HTTP/1.1\r\n" HOST "\r\nPOST / HTTP/1.1\r\n" HOST
	                                         "Content-Length: 1\r\nContent-Length: 2\r\n\r\nab"), 1, "GET", "/a",
	  "", "", 0, 400, "bad_request" },
	{ "TE and CL", T("POST / HTTP/1.1\r\n" HOST "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
	  0, NULL, NULL, NULL, NULL, 0, 400, "bad_request" },
	{ "bare LF", T("GET / HTTP/1.1\n" HOST "\r\n"), 0, NULL, NULL, NULL, NULL, 0, 400, "bad_request" },
	{ "NUL in a value", T("GET / HTTP/1.1\r\n" HOST "X-A: a\0b\r\n\r\n"), 0, NULL, NULL, NULL, NULL, 0, 400,
	  "bad_request" },
	{ "body over the limit", T("POST / HTTP/1.1\r\n" HOST "Content-Length: 65\r\n\r\n"), 0, NULL, NULL, NULL, NULL,
	  0, 413, "payload_too_large" },
	{ "chunks over the limit", T("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n41\r\n"), 0, NULL,
	  NULL, NULL, NULL, 0, 413, "payload_too_large" },
	{ "TRACE", T("TRACE / HTTP/1.1\r\n" HOST "\r\n"), 0, NULL, NULL, NULL, NULL, 0, 501, "not_implemented" },
	{ "HTTP/2.0", T("GET / HTTP/2.0\r\n" HOST "\r\n"), 0, NULL, NULL, NULL, NULL, 0, 505,
	  "http_version_not_supported" },
};

/* Each case read whole, a byte at a time and in pieces of 7: the same. */
static void test_cases(void)
{
	static const size_t pieces[] = { 0, 1, 7 };
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		for (size_t p = 0; p < sizeof pieces / sizeof pieces[0]; p++) {
			struct got g;
			read_all(cases[i].in, cases[i].len, pieces[p], &g);
			const char *name = cases[i].name;
			size_t pc = pieces[p];
			CHECK(g.n == cases[i].n, "%s (pieces %zu): %d requests, want %d", name, pc, g.n, cases[i].n);
			CHECK(g.status == cases[i].status, "%s (pieces %zu): status %d", name, pc, g.status);
			if (cases[i].code)
				CHECK(strcmp(g.code, cases[i].code) == 0, "%s (pieces %zu): code %s", name, pc, g.code);
			if (cases[i].method && g.n > 0) {
				int k = g.n - 1;
				CHECK(strcmp(g.method[k], cases[i].method) == 0 && strcmp(g.path[k], cases[i].path) == 0,
				      "%s (pieces %zu): %s %s", name, pc, g.method[k], g.path[k]);
				CHECK(strcmp(g.body[k], cases[i].body) == 0 && g.body_len[k] == strlen(cases[i].body),
				      "%s (pieces %zu): body '%s'", name, pc, g.body[k]);
				CHECK(strcmp(g.header[k], cases[i].header) == 0, "%s (pieces %zu): X-A '%s'", name, pc,
				      g.header[k]);
				CHECK(g.close[k] == cases[i].close, "%s (pieces %zu): close %d", name, pc, g.close[k]);
			}
		}
}

/* Where a request is, and that nothing after a closing request is read. */
static void test_phases(void)
{
	struct httpd_reader r;
	struct http_ctx ctx = { 0 };
	struct wire_error err;
	httpd_reader_init(&r, 256, 64);
	CU_ASSERT_EQUAL(httpd_reader_phase(&r), HTTPD_PHASE_NONE);
	httpd_reader_add(&r, T("POST /a HTTP/1.1\r\nHo"));
	CU_ASSERT_EQUAL(httpd_reader_next(&r, &ctx, &err), HTTPD_READ_MORE);
	CU_ASSERT_EQUAL(httpd_reader_phase(&r), HTTPD_PHASE_HEAD);
	httpd_reader_add(&r, T("st: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\nab"));
	CU_ASSERT_EQUAL(httpd_reader_next(&r, &ctx, &err), HTTPD_READ_MORE);
	CU_ASSERT_EQUAL(httpd_reader_phase(&r), HTTPD_PHASE_BODY);
	httpd_reader_add(&r, T("cdGET /smuggled HTTP/1.1\r\n" HOST "\r\n"));
	CU_ASSERT_EQUAL(httpd_reader_next(&r, &ctx, &err), HTTPD_READ_REQUEST);
	CU_ASSERT_EQUAL(ctx.body_len, 4);
	CU_ASSERT_TRUE(ctx.close);
	httpd_reader_done(&r);
	CU_ASSERT_EQUAL(httpd_reader_next(&r, &ctx, &err), HTTPD_READ_CLOSED);
	CU_ASSERT_EQUAL(httpd_reader_phase(&r), HTTPD_PHASE_NONE);
	httpd_reader_free(&r);

	/* Answered and nothing pending: the reader holds no memory. */
	httpd_reader_init(&r, 256, 64);
	httpd_reader_add(&r, T("GET / HTTP/1.1\r\n" HOST "\r\n"));
	CU_ASSERT_EQUAL(httpd_reader_next(&r, &ctx, &err), HTTPD_READ_REQUEST);
	httpd_reader_done(&r);
	CU_ASSERT_PTR_NULL(r.held.data);
	CU_ASSERT_PTR_NULL(r.req.data);
	CU_ASSERT_PTR_NULL(r.headers);
	CU_ASSERT_EQUAL(httpd_reader_next(&r, &ctx, &err), HTTPD_READ_MORE);
	httpd_reader_free(&r);
}

/* A refusal is for good: more bytes change nothing. */
static void test_refusal_sticks(void)
{
	struct httpd_reader r;
	struct http_ctx ctx = { 0 };
	struct wire_error err;
	httpd_reader_init(&r, 256, 64);
	httpd_reader_add(&r, T("GET / HTTP/1.1\r\n\r\n"));
	CU_ASSERT_EQUAL(httpd_reader_next(&r, &ctx, &err), HTTPD_READ_ERROR);
	CU_ASSERT_EQUAL(err.status, 400);
	CU_ASSERT_STRING_EQUAL(err.field, "Host");
	httpd_reader_add(&r, T("GET / HTTP/1.1\r\n" HOST "\r\n"));
	memset(&err, 0, sizeof err);
	CU_ASSERT_EQUAL(httpd_reader_next(&r, &ctx, &err), HTTPD_READ_ERROR);
	CU_ASSERT_EQUAL(err.status, 400);
	httpd_reader_free(&r);
}

int main(void)
{
	static const struct harness_test tests[] = {
		{ "requests and refusals, whole and in pieces", test_cases },
		{ "phases; nothing read after a closing request", test_phases },
		{ "a refusal is for good", test_refusal_sticks },
		{ NULL, NULL },
	};
	return harness_main("httpd", NULL, NULL, tests);
}
