#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/harness.h"
#include "support/wire_replay.h"
#include "wire/wire.h"

#define CHECK HARNESS_CHECK
#define check_at(ok, line, ...) harness_check(!!(ok), __FILE__, line, __VA_ARGS__)

/* A literal and its length, NUL bytes included. */
#define T(s) s, sizeof(s) - 1

/* dropshipd's methods: evhttp reads a body for POST, PUT and PATCH only. */
static const struct wire_method methods[] = {
	{ "GET", 0 },    { "HEAD", 0 },  { "POST", 1 },    { "PUT", 1 },
	{ "DELETE", 0 }, { "PATCH", 1 }, { "OPTIONS", 0 }, { NULL, 0 },
};
static const struct wire_limits lim = { methods, 1024, 4096 };

#define GET "GET /orders HTTP/1.1\r\nHost: x\r\n"
#define POST "POST /orders HTTP/1.1\r\nHost: x\r\n"
#define CHUNKED POST "Transfer-Encoding: chunked\r\n\r\n"

/* A printable copy of a case for failure messages. */
static const char *shown(const char *s, size_t n)
{
	static char buf[200];
	size_t k = 0;
	for (size_t i = 0; i < n && k + 5 < sizeof buf; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r' || c == '\n')
			k += (size_t)snprintf(buf + k, sizeof buf - k, "%s", c == '\r' ? "\\r" : "\\n");
		else if (c < 0x20 || c > 0x7e)
			k += (size_t)snprintf(buf + k, sizeof buf - k, "\\%03o", c);
		else
			buf[k++] = (char)c;
	}
	buf[k] = '\0';
	return buf;
}

/* Runs in[0, n) through a stream all at once and one byte at a time, checks
 * that neither broke a promise and that both decided alike; r gets the
 * first. */
static void replay_both(const char *in, size_t n, const struct wire_limits *l, struct replay *r, unsigned line)
{
	static const size_t one = 1;
	struct replay bytewise;
	replay_run(l, in, n, NULL, 0, r);
	replay_run(l, in, n, &one, 1, &bytewise);
	check_at(!r->broken, line, "%s: whole: %s", shown(in, n), r->broken ? r->broken : "");
	check_at(!bytewise.broken, line, "%s: bytewise: %s", shown(in, n), bytewise.broken ? bytewise.broken : "");
	check_at(replay_same(r, &bytewise), line, "%s: whole and bytewise decide differently", shown(in, n));
}

/* in is refused with status and code, and the message says says. */
static void check_refusal(const struct replay *r, const char *in, size_t n, int status, const char *code,
                          const char *says, unsigned line)
{
	check_at(r->last == WIRE_REJECT && r->err.status == status && r->err.code && strcmp(r->err.code, code) == 0,
	         line, "%s: want %d %s, got verdict %d %d %s", shown(in, n), status, code, r->last, r->err.status,
	         r->err.code ? r->err.code : "-");
	check_at(strstr(r->err.message, says) != NULL, line, "%s: message \"%s\" does not say \"%s\"", shown(in, n),
	         r->err.message, says);
}

struct accepted {
	const char *text;
	size_t len;
	const char *method;
	int version;
	enum wire_framing framing;
	uint64_t length;
	int close;
	const char *target;
};

static const struct accepted accepted[] = {
	{ T(GET "\r\n"), "GET", 11, WIRE_BODY_NONE, 0, 0, "/orders" },
	{ T("GET / HTTP/1.0\r\n\r\n"), "GET", 10, WIRE_BODY_NONE, 0, 1, "/" },
	{ T("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), "GET", 10, WIRE_BODY_NONE, 0, 0, "/" },
	{ T("GET / HTTP/1.0\r\nConnection: Upgrade,  Keep-Alive \r\n\r\n"), "GET", 10, WIRE_BODY_NONE, 0, 0, "/" },
	{ T("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"), "GET", 10, WIRE_BODY_NONE, 0, 1, "/" },
	{ T(GET "Connection: close\r\n\r\n"), "GET", 11, WIRE_BODY_NONE, 0, 1, "/orders" },
	{ T(GET "Connection: x\r\nconnection: CLOSE\r\n\r\n"), "GET", 11, WIRE_BODY_NONE, 0, 1, "/orders" },
	{ T(GET "Connection: keep-alive\r\n\r\n"), "GET", 11, WIRE_BODY_NONE, 0, 0, "/orders" },
	{ T(POST "Content-Length: 5\r\n\r\n"), "POST", 11, WIRE_BODY_LENGTH, 5, 0, "/orders" },
	{ T(POST "content-length:5\r\n\r\n"), "POST", 11, WIRE_BODY_LENGTH, 5, 0, "/orders" },
	{ T(POST "Content-Length: 007\r\n\r\n"), "POST", 11, WIRE_BODY_LENGTH, 7, 0, "/orders" },
	{ T(POST "Content-Length: 4096\r\n\r\n"), "POST", 11, WIRE_BODY_LENGTH, 4096, 0, "/orders" },
	{ T(POST "Content-Length: 0\r\n\r\n"), "POST", 11, WIRE_BODY_LENGTH, 0, 0, "/orders" },
	{ T(GET "Content-Length: 0\r\n\r\n"), "GET", 11, WIRE_BODY_LENGTH, 0, 0, "/orders" },
	{ T("POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\n"), "POST", 10, WIRE_BODY_LENGTH, 2, 1, "/" },
	{ T(CHUNKED), "POST", 11, WIRE_BODY_CHUNKED, 0, 0, "/orders" },
	{ T(POST "transfer-encoding:CHUNKED\r\n\r\n"), "POST", 11, WIRE_BODY_CHUNKED, 0, 0, "/orders" },
	{ T("PUT /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n"), "PUT", 11, WIRE_BODY_CHUNKED, 0, 0,
	  "/a" },
	{ T("PATCH /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n"), "PATCH", 11, WIRE_BODY_LENGTH, 1, 0,
	  "/a" },
	{ T("DELETE /a/1 HTTP/1.1\r\nHost: x\r\n\r\n"), "DELETE", 11, WIRE_BODY_NONE, 0, 0, "/a/1" },
	{ T("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"), "HEAD", 11, WIRE_BODY_NONE, 0, 0, "/" },
	{ T("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"), "OPTIONS", 11, WIRE_BODY_NONE, 0, 0, "*" },
	{ T("GET /a?b=c&d=%20#f HTTP/1.1\r\nHost: x\r\n\r\n"), "GET", 11, WIRE_BODY_NONE, 0, 0, "/a?b=c&d=%20#f" },
	{ T("GET / HTTP/1.1\r\nHost:\r\nX-Empty:\r\nX-Tab:\ta\tb\t\r\nX-Obs: caf\303\251\r\n\r\n"), "GET", 11,
	  WIRE_BODY_NONE, 0, 0, "/" },
	{ T("GET / HTTP/1.1\r\nX-A: 1\r\nhOsT: example.com:443\r\nX-B: \"q\" ; = , \\\r\n\r\n"), "GET", 11,
	  WIRE_BODY_NONE, 0, 0, "/" },
};

static void test_accepted_heads(void)
{
	for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
		const struct accepted *c = &accepted[i];
		struct wire_head h;
		struct wire_error err = { 0 };
		struct replay r;
		int rc = wire_check_head(c->text, c->len, &lim, &h, &err);
		CHECK(rc == 0, "%s: refused: %s", shown(c->text, c->len), err.message);
		if (rc != 0)
			continue;
		CHECK(h.method && strcmp(h.method->name, c->method) == 0 && h.version == c->version &&
		      h.framing == c->framing && h.length == c->length && h.close == c->close && h.head_len == c->len,
		      "%s: head read wrong", shown(c->text, c->len));
		CHECK(h.target_len == strlen(c->target) && memcmp(c->text + h.target_off, c->target, h.target_len) == 0,
		      "%s: target", shown(c->text, c->len));
		replay_both(c->text, c->len, &lim, &r, __LINE__);
		CHECK(r.heads == 1 && replay_head_eq(&r.head[0], &h) && r.passed == c->len,
		      "%s: the stream passes another head", shown(c->text, c->len));
		int ends = c->framing == WIRE_BODY_NONE || (c->framing == WIRE_BODY_LENGTH && c->length == 0);
		enum wire_verdict last = ends && c->close ? WIRE_CLOSED : WIRE_NEED_MORE;
		CHECK(r.ends == (unsigned)ends && r.last == last, "%s: end %u, verdict %d",
		      shown(c->text, c->len), r.ends, r.last);
	}
}

/* Bytes and what becomes of them: status 0, accepted; else refused with
 * status and code, the message saying says. */
struct verdict_case {
	const char *text;
	size_t len;
	int status;
	const char *code;
	const char *says;
};

static const struct verdict_case refused[] = {
	/* Content-Length: one, plain digits, below 2^63 and the limit */
	{ T(POST "Content-Length: 5\r\nContent-Length: 5\r\n\r\n"), 400, "bad_request", "duplicate Content-Length" },
	{ T(POST "Content-Length: 5\r\nContent-Length: 100\r\n\r\n"), 400, "bad_request", "duplicate Content-Length" },
	{ T(POST "content-length: 0\r\nCONTENT-LENGTH: 0\r\n\r\n"), 400, "bad_request", "duplicate Content-Length" },
	{ T(POST "Content-Length: +5\r\n\r\n"), 400, "bad_request", "Content-Length is not plain ASCII digits" },
	{ T(POST "Content-Length: 5 \r\n\r\n"), 400, "bad_request", "Content-Length is not plain ASCII digits" },
	{ T(POST "Content-Length:  5\r\n\r\n"), 400, "bad_request", "Content-Length is not plain ASCII digits" },
	{ T(POST "Content-Length:\t5\r\n\r\n"), 400, "bad_request", "Content-Length is not plain ASCII digits" },
	{ T(POST "Content-Length: 5\0 00\r\n\r\n"), 400, "bad_request", "control character" },
	{ T(POST "Content-Length: 0x5\r\n\r\n"), 400, "bad_request", "Content-Length is not plain ASCII digits" },
	{ T(POST "Content-Length: -1\r\n\r\n"), 400, "bad_request", "Content-Length is not plain ASCII digits" },
	{ T(POST "Content-Length: 5, 5\r\n\r\n"), 400, "bad_request", "Content-Length is not plain ASCII digits" },
	{ T(POST "Content-Length: 5.0\r\n\r\n"), 400, "bad_request", "Content-Length is not plain ASCII digits" },
	{ T(POST "Content-Length: \r\n\r\n"), 400, "bad_request", "Content-Length is not plain ASCII digits" },
	{ T(POST "Content-Length:\r\n\r\n"), 400, "bad_request", "Content-Length is not plain ASCII digits" },
	{ T(POST "Content-Length: 9223372036854775808\r\n\r\n"), 400, "bad_request", "below 2^63" },
	{ T(POST "Content-Length: 123456789012345678901234567890\r\n\r\n"), 400, "bad_request", "below 2^63" },
	{ T(POST "Content-Length: 9223372036854775807\r\n\r\n"), 413, "payload_too_large", "larger than 4096" },
	{ T(POST "Content-Length: 4097\r\n\r\n"), 413, "payload_too_large", "larger than 4096 bytes" },
	{ T(POST "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), 400, "bad_request",
	  "Transfer-Encoding with Content-Length" },
	{ T(POST "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"), 400, "bad_request",
	  "Content-Length with Transfer-Encoding" },
	/* Transfer-Encoding: exactly chunked, once, HTTP/1.1 */
	{ T(POST "Transfer-Encoding: xchunked\r\n\r\n"), 400, "bad_request", "Transfer-Encoding other than" },
	{ T(POST "Transfer-Encoding: chunked, gzip\r\n\r\n"), 400, "bad_request", "Transfer-Encoding other than" },
	{ T(POST "Transfer-Encoding: gzip, chunked\r\n\r\n"), 400, "bad_request", "Transfer-Encoding other than" },
	{ T(POST "Transfer-Encoding: gzip\r\n\r\n"), 400, "bad_request", "Transfer-Encoding other than" },
	{ T(POST "Transfer-Encoding: identity\r\n\r\n"), 400, "bad_request", "Transfer-Encoding other than" },
	{ T(POST "Transfer-Encoding: chunked \r\n\r\n"), 400, "bad_request", "Transfer-Encoding other than" },
	{ T(POST "Transfer-Encoding:  chunked\r\n\r\n"), 400, "bad_request", "Transfer-Encoding other than" },
	{ T(POST "Transfer-Encoding: \"chunked\"\r\n\r\n"), 400, "bad_request", "Transfer-Encoding other than" },
	{ T(POST "Transfer-Encoding: \r\n\r\n"), 400, "bad_request", "Transfer-Encoding other than" },
	{ T(POST "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"), 400, "bad_request",
	  "duplicate Transfer-Encoding" },
	{ T(POST "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"), 400, "bad_request",
	  "Transfer-Encoding other than" },
	{ T("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400, "bad_request",
	  "Transfer-Encoding on HTTP/1.0" },
	/* header names, folding, colons, control characters, line ends */
	{ T(POST "Transfer-Encoding : chunked\r\n\r\n"), 400, "bad_request", "header name \"Transfer-Encoding \"" },
	{ T(POST "Content-Length : 5\r\n\r\n"), 400, "bad_request", "header name \"Content-Length \"" },
	{ T(GET "X A: 1\r\n\r\n"), 400, "bad_request", "header name \"X A\"" },
	{ T(GET "X(A): 1\r\n\r\n"), 400, "bad_request", "non-token character in header name" },
	{ T(GET "X-\0A: 1\r\n\r\n"), 400, "bad_request", "header name \"X-?A\"" },
	{ T(GET "X-\303\251: 1\r\n\r\n"), 400, "bad_request", "non-token character in header name" },
	{ T(GET ": x\r\n\r\n"), 400, "bad_request", "empty name" },
	{ T(GET "X-A 1\r\n\r\n"), 400, "bad_request", "without a colon: X-A 1" },
	{ T("GET / HTTP/1.1\r\n Host: x\r\n\r\n"), 400, "bad_request", "obs-fold" },
	{ T(GET "X-A: 1\r\n 2\r\n\r\n"), 400, "bad_request", "obs-fold" },
	{ T(GET "X-A: 1\r\n\t2\r\n\r\n"), 400, "bad_request", "obs-fold" },
	{ T(GET "X-A: a\0b\r\n\r\n"), 400, "bad_request", "control character (or a lone CR) in the value of X-A" },
	{ T(GET "X-A: a\001b\r\n\r\n"), 400, "bad_request", "control character" },
	{ T(GET "X-A: a\177b\r\n\r\n"), 400, "bad_request", "control character" },
	{ T(GET "X-A: a\rb\r\n\r\n"), 400, "bad_request", "lone CR" },
	{ T(GET "X-A: a\r\r\n\r\n"), 400, "bad_request", "lone CR" },
	{ T("GET / HTTP/1.1\nHost: x\n\n"), 400, "bad_request", "bare LF" },
	{ T("GET / HTTP/1.1\r\nHost: x\n\r\n"), 400, "bad_request", "bare LF" },
	{ T("GET / HTTP/1.1\r\nHost: x\r\n\n"), 400, "bad_request", "bare LF" },
	{ T("\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "bad_request", "bare LF" },
	/* the request line */
	{ T("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "bad_request", "malformed request line" },
	{ T("GET  / HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "bad_request", "malformed request line" },
	{ T("GET /  HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "bad_request", "malformed request line" },
	{ T("GET / HTTP/1.1 \r\nHost: x\r\n\r\n"), 400, "bad_request", "malformed request line" },
	{ T(" GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "bad_request", "malformed request line" },
	{ T("GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "bad_request", "malformed request line" },
	{ T("GET / HTTP/1.1\0\r\nHost: x\r\n\r\n"), 400, "bad_request", "control character" },
	{ T("GET /\r HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "bad_request", "lone CR" },
	{ T("G\"T / HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "bad_request", "malformed request line" },
	{ T("GET / \r\nHost: x\r\n\r\n"), 400, "bad_request", "malformed request line" },
	{ T("GET /\r\nHost: x\r\n\r\n"), 400, "bad_request", "malformed request line" },
	{ T("GET / http/1.1\r\nHost: x\r\n\r\n"), 400, "bad_request", "malformed request line" },
	{ T("GET / HTTP/1.1x\r\nHost: x\r\n\r\n"), 400, "bad_request", "malformed request line" },
	{ T("GET / HTTP/11\r\nHost: x\r\n\r\n"), 400, "bad_request", "malformed request line" },
	{ T("GET / HTTP/1.10\r\nHost: x\r\n\r\n"), 400, "bad_request", "malformed request line" },
	{ T("GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "bad_request", "origin-form" },
	{ T("GET x HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "bad_request", "origin-form" },
	{ T("GET /caf\303\251 HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "bad_request", "outside visible ASCII" },
	{ T("GET * HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "bad_request", "other than OPTIONS" },
	{ T("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505, "http_version_not_supported", "only HTTP/1.0 and HTTP/1.1" },
	{ T("GET / HTTP/1.2\r\nHost: x\r\n\r\n"), 505, "http_version_not_supported", "version" },
	{ T("GET / HTTP/0.9\r\nHost: x\r\n\r\n"), 505, "http_version_not_supported", "version" },
	/* Host */
	{ T("GET / HTTP/1.1\r\n\r\n"), 400, "bad_request", "missing Host" },
	{ T("GET / HTTP/1.1\r\nX-Host: x\r\n\r\n"), 400, "bad_request", "missing Host" },
	{ T(GET "Host: y\r\n\r\n"), 400, "bad_request", "duplicate Host" },
	{ T("GET / HTTP/1.0\r\nHost: x\r\nhost: x\r\n\r\n"), 400, "bad_request", "duplicate Host" },
	/* methods */
	{ T("TRACE / HTTP/1.1\r\nHost: x\r\n\r\n"), 501, "not_implemented", "method TRACE not implemented" },
	{ T("CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n"), 501, "not_implemented", "method CONNECT" },
	{ T("get / HTTP/1.1\r\nHost: x\r\n\r\n"), 501, "not_implemented", "method get" },
	{ T("PROPFIND / HTTP/1.1\r\nHost: x\r\n\r\n"), 501, "not_implemented", "method PROPFIND" },
	/* a body where evhttp reads none: it would run the body as a request */
	{ T(GET "Content-Length: 5\r\n\r\n"), 400, "bad_request", "Content-Length above 0 for a method without" },
	{ T(GET "Transfer-Encoding: chunked\r\n\r\n"), 400, "bad_request", "Transfer-Encoding for a method without" },
	{ T("HEAD / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n"), 400, "bad_request", "without a body" },
	{ T("DELETE / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n"), 400, "bad_request", "without a body" },
	{ T("OPTIONS * HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"), 400, "bad_request",
	  "without a body" },
};

static void test_refused_heads(void)
{
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		const struct verdict_case *c = &refused[i];
		struct wire_head h;
		struct wire_error err = { 0 };
		struct replay r;
		int rc = wire_check_head(c->text, c->len, &lim, &h, &err);
		CHECK(rc == -1 && err.status == c->status && err.code && strcmp(err.code, c->code) == 0,
		      "%s: want %d %s, got %d %d %s", shown(c->text, c->len), c->status, c->code, rc, err.status,
		      err.code ? err.code : "-");
		CHECK(strstr(err.message, c->says) != NULL, "%s: message \"%s\" does not say \"%s\"",
		      shown(c->text, c->len), err.message, c->says);
		CHECK(replay_error_ok(&err), "%s: unsound error", shown(c->text, c->len));
		CHECK(rc == -1 && h.method == NULL && h.head_len == 0, "%s: head not cleared", shown(c->text, c->len));
		replay_both(c->text, c->len, &lim, &r, __LINE__);
		check_refusal(&r, c->text, c->len, c->status, c->code, c->says, __LINE__);
		CHECK(r.passed == 0 && replay_error_eq(&r.err, &err), "%s: stream passed %zu bytes or said otherwise",
		      shown(c->text, c->len), r.passed);
	}
}

/* The header at fault is named apart from the message; none when no header is. */
static void test_error_field(void)
{
	static const struct {
		const char *text;
		size_t len;
		const char *field;
	} cases[] = {
		{ T(POST "Content-Length: 1\r\nContent-Length: 1\r\n\r\n"), "Content-Length" },
		{ T(POST "Transfer-Encoding: gzip\r\n\r\n"), "Transfer-Encoding" },
		{ T(POST "Transfer-Encoding : chunked\r\n\r\n"), "Transfer-Encoding " },
		{ T(GET "X-A: \001\r\n\r\n"), "X-A" },
		{ T("GET / HTTP/1.1\r\n\r\n"), "Host" },
		{ T("TRACE / HTTP/1.1\r\nHost: x\r\n\r\n"), "" },
		{ T("GET / HTTP/1.1\nHost: x\n\n"), "" },
		{ T(POST "Content-Length: 5000\r\n\r\n"), "" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct wire_head h;
		struct wire_error err = { 0 };
		CHECK(wire_check_head(cases[i].text, cases[i].len, &lim, &h, &err) == -1 &&
		      strcmp(err.field, cases[i].field) == 0, "%s: field \"%s\"", shown(cases[i].text, cases[i].len),
		      err.field);
	}
	/* A long name is cut, still terminated. */
	char head[400];
	int n = snprintf(head, sizeof head, GET "%0200d : 1\r\n\r\n", 0);
	struct wire_head h;
	struct wire_error err;
	CHECK(wire_check_head(head, (size_t)n, &lim, &h, &err) == -1 && strlen(err.field) == sizeof err.field - 1 &&
	      replay_error_ok(&err), "long name: field of %zu", strlen(err.field));
	/* err may be NULL. */
	CHECK(wire_check_head(T("GET / HTTP/1.1\r\n\r\n"), &lim, &h, NULL) == -1, "NULL err");
}

/* wire_check_head takes one head exactly; max_head counts every byte. */
static void test_head_bounds(void)
{
	struct wire_head h;
	struct wire_error err;
	CHECK(wire_check_head(T(GET), &lim, &h, &err) == -1 && strstr(err.message, "incomplete"), "no empty line");
	CHECK(wire_check_head(T(GET "\r\nX"), &lim, &h, &err) == -1 && strstr(err.message, "bytes after"),
	      "bytes after the head: %s", err.message);
	CHECK(wire_check_head(T(""), &lim, &h, &err) == -1 && err.status == 400, "empty");

	char big[1100];
	const char *start = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ";
	size_t fixed = strlen(start) + 4;
	memset(big, 'a', sizeof big);
	memcpy(big, start, strlen(start));
	memcpy(big + lim.max_head - 4, "\r\n\r\n", 4);
	CHECK(wire_check_head(big, lim.max_head, &lim, &h, &err) == 0 && h.head_len == lim.max_head,
	      "a head of exactly max_head: %s", err.message);
	struct replay r;
	replay_both(big, lim.max_head, &lim, &r, __LINE__);
	CHECK(r.heads == 1 && r.passed == lim.max_head, "stream: a head of exactly max_head");

	memset(big + fixed - 4, 'a', lim.max_head + 1 - fixed);
	memcpy(big + lim.max_head + 1 - 4, "\r\n\r\n", 4);
	CHECK(wire_check_head(big, lim.max_head + 1, &lim, &h, &err) == -1 && err.status == 431 &&
	      strcmp(err.code, "header_too_large") == 0 && strstr(err.message, "head larger than 1024 bytes"),
	      "max_head + 1: %d %s", err.status, err.message);
	replay_both(big, lim.max_head + 1, &lim, &r, __LINE__);
	check_refusal(&r, big, lim.max_head + 1, 431, "header_too_large", "larger than 1024", __LINE__);

	/* Refused only once a byte beyond max_head is there; a fault in the first max_head bytes comes first. */
	struct wire_stream s;
	size_t pass;
	wire_stream_init(&s, &lim);
	CHECK(wire_stream_feed(&s, big, lim.max_head, &pass, &err) == WIRE_NEED_MORE, "max_head bytes held");
	CHECK(wire_stream_feed(&s, big, lim.max_head + 1, &pass, &err) == WIRE_REJECT && err.status == 431, "431");
	memcpy(big + 100, "\n", 1);
	CHECK(wire_check_head(big, sizeof big, &lim, &h, &err) == -1 && err.status == 400, "bare LF first");
}

/* A chunked request's body after CHUNKED: accepted to its end, or refused. */
static const struct verdict_case chunked[] = {
	{ T("5\r\nhello\r\n0\r\n\r\n"), 0, NULL, NULL },
	{ T("0\r\n\r\n"), 0, NULL, NULL },
	{ T("000\r\n\r\n"), 0, NULL, NULL },
	{ T("0005\r\nhello\r\n00\r\n\r\n"), 0, NULL, NULL },
	{ T("A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n"), 0, NULL, NULL },
	{ T("1;a\r\nx\r\n0\r\n\r\n"), 0, NULL, NULL },
	{ T("1;a=b;c=\"d e\";f=\"\\\"\\\\\"\r\nx\r\n0;last=\"\"\r\n\r\n"), 0, NULL, NULL },
	{ T("1;n=\"caf\303\251\"\r\nx\r\n0\r\n\r\n"), 0, NULL, NULL },
	{ T("5\r\nhello\r\n0\r\nX-Checksum: abc\r\nx-b:\r\n\r\n"), 0, NULL, NULL },
	{ T("2\r\n\r\n\r\n0\r\n\r\n"), 0, NULL, NULL },
	{ T("1000\r\n"), -1, NULL, NULL },  /* the 4096-byte chunk is added by the test */
	/* chunk sizes */
	{ T("0x5\r\nhello\r\n0\r\n\r\n"), 400, "bad_request", "chunk size followed by something other than" },
	{ T("-1\r\nx\r\n0\r\n\r\n"), 400, "bad_request", "chunk size is not hexadecimal" },
	{ T("+5\r\nhello\r\n0\r\n\r\n"), 400, "bad_request", "chunk size is not hexadecimal" },
	{ T("5 \r\nhello\r\n0\r\n\r\n"), 400, "bad_request", "chunk size followed by" },
	{ T(" 5\r\nhello\r\n0\r\n\r\n"), 400, "bad_request", "chunk size is not hexadecimal" },
	{ T("\r\n5\r\nhello\r\n0\r\n\r\n"), 400, "bad_request", "chunk size is not hexadecimal" },
	{ T("g\r\n"), 400, "bad_request", "chunk size is not hexadecimal" },
	{ T("5\nhello\r\n0\r\n\r\n"), 400, "bad_request", "bare LF" },
	{ T("5\r\r\nhello\r\n0\r\n\r\n"), 400, "bad_request", "chunk size followed by" },
	{ T("ffffffffffffffffff\r\n"), 400, "bad_request", "2^63" },
	{ T("8000000000000000\r\n"), 400, "bad_request", "2^63" },
	{ T("7fffffffffffffff\r\n"), 413, "payload_too_large", "chunked body larger than 4096 bytes" },
	{ T("1001\r\n"), 413, "payload_too_large", "chunked body larger than 4096 bytes" },
	/* chunk extensions */
	{ T("5;\r\nhello\r\n0\r\n\r\n"), 400, "bad_request", "extension without a token name" },
	{ T("5; a\r\nhello\r\n0\r\n\r\n"), 400, "bad_request", "extension without a token name" },
	{ T("5 ;a\r\nhello\r\n0\r\n\r\n"), 400, "bad_request", "chunk size followed by" },
	{ T("5;a =b\r\nhello\r\n0\r\n\r\n"), 400, "bad_request", "chunk size followed by" },
	{ T("5;a=\r\nhello\r\n0\r\n\r\n"), 400, "bad_request", "neither a token nor a quoted string" },
	{ T("5;a= b\r\nhello\r\n0\r\n\r\n"), 400, "bad_request", "neither a token nor a quoted string" },
	{ T("5;a=\"b\r\nhello\r\n0\r\n\r\n"), 400, "bad_request", "neither a token nor a quoted string" },
	{ T("5;a=\"b\\\"\r\nhello\r\n0\r\n\r\n"), 400, "bad_request", "neither a token nor a quoted string" },
	{ T("5;a=\"\001\"\r\nhello\r\n0\r\n\r\n"), 400, "bad_request", "neither a token nor a quoted string" },
	{ T("5;a=\"b\"c\r\nhello\r\n0\r\n\r\n"), 400, "bad_request", "chunk size followed by" },
	{ T("5;a\0\r\nhello\r\n0\r\n\r\n"), 400, "bad_request", "chunk size followed by" },
	/* the CRLF after chunk data */
	{ T("5\r\nhelloX\r\n0\r\n\r\n"), 400, "bad_request", "chunk data not followed by CRLF" },
	{ T("5\r\nhello\n0\r\n\r\n"), 400, "bad_request", "chunk data not followed by CRLF" },
	{ T("5\r\nhello\rX0\r\n\r\n"), 400, "bad_request", "chunk data not followed by CRLF" },
	{ T("5\r\nhell\r\n0\r\n\r\n"), 400, "bad_request", "chunk data not followed by CRLF" },
	{ T("5\r\nhello\r\n\r\n0\r\n\r\n"), 400, "bad_request", "chunk size is not hexadecimal" },
	/* trailers */
	{ T("0\r\nX-A 1\r\n\r\n"), 400, "bad_request", "without a colon" },
	{ T("0\r\n X-A: 1\r\n\r\n"), 400, "bad_request", "obs-fold" },
	{ T("0\r\nX-A: 1\r\n 2\r\n\r\n"), 400, "bad_request", "obs-fold" },
	{ T("0\r\nX-A : 1\r\n\r\n"), 400, "bad_request", "header name \"X-A \"" },
	{ T("0\r\nX-A: \0\r\n\r\n"), 400, "bad_request", "control character" },
	{ T("0\r\nX-A: 1\n\r\n"), 400, "bad_request", "bare LF" },
	{ T("0\r\nX-A: 1\r\n\n"), 400, "bad_request", "bare LF" },
	{ T("0\r\n\n"), 400, "bad_request", "bare LF" },
	{ T("0\r\nContent-Length: 5\r\n\r\n"), 400, "bad_request", "Content-Length not allowed in a trailer" },
	{ T("0\r\ntransfer-encoding: chunked\r\n\r\n"), 400, "bad_request", "not allowed in a trailer" },
	{ T("0\r\nHost: y\r\n\r\n"), 400, "bad_request", "Host not allowed in a trailer" },
	{ T("0\r\nConnection: close\r\n\r\n"), 400, "bad_request", "Connection not allowed in a trailer" },
};

static void test_chunked_bodies(void)
{
	static char in[8192];
	const size_t head = sizeof CHUNKED - 1;
	for (size_t i = 0; i < sizeof chunked / sizeof chunked[0]; i++) {
		const struct verdict_case *c = &chunked[i];
		size_t n = head;
		memcpy(in, CHUNKED, head);
		memcpy(in + n, c->text, c->len);
		n += c->len;
		if (c->status < 0) { /* a chunk of exactly max_body */
			memset(in + n, 'x', 4096);
			memcpy(in + n + 4096, "\r\n0\r\n\r\n", 7);
			n += 4096 + 7;
		}
		struct replay r;
		replay_both(in, n, &lim, &r, __LINE__);
		if (c->status <= 0) {
			CHECK(r.last == WIRE_NEED_MORE && r.ends == 1 && r.passed == n, "%s: refused: %s",
			      shown(c->text, c->len), r.err.message);
			continue;
		}
		check_refusal(&r, c->text, c->len, c->status, c->code, c->says, __LINE__);
		CHECK(r.heads == 1 && r.ends == 0 && r.passed >= head && r.passed < n, "%s: passed %zu of %zu",
		      shown(c->text, c->len), r.passed, n);
	}
}

/* The body limit holds across chunks; held lines stay within max_head. */
static void test_chunked_limits(void)
{
	static char in[8192];
	size_t n = (size_t)snprintf(in, sizeof in, "%s", CHUNKED);
	size_t head = n;
	n += (size_t)snprintf(in + n, sizeof in - n, "800\r\n");
	memset(in + n, 'x', 0x800);
	n += 0x800;
	n += (size_t)snprintf(in + n, sizeof in - n, "\r\n800\r\n");
	memset(in + n, 'x', 0x800);
	n += 0x800;
	n += (size_t)snprintf(in + n, sizeof in - n, "\r\n1\r\n");
	struct replay r;
	replay_both(in, n, &lim, &r, __LINE__);
	check_refusal(&r, in, n, 413, "payload_too_large", "chunked body larger than 4096 bytes", __LINE__);
	CHECK(r.passed == n - 3, "two chunks of 2048 pass, the third is refused: %zu", r.passed);

	/* A chunk-size line, and a trailer section, of more than max_head bytes. */
	n = head;
	in[n++] = '1';
	in[n++] = ';';
	memset(in + n, 'e', lim.max_head);
	n += lim.max_head;
	replay_both(in, n, &lim, &r, __LINE__);
	check_refusal(&r, in, n, 400, "bad_request", "chunk-size line larger than 1024 bytes", __LINE__);
	CHECK(r.passed == head, "only the head passed");

	n = head + (size_t)snprintf(in + head, sizeof in - head, "0\r\nX-Pad: ");
	memset(in + n, 'p', lim.max_head);
	n += lim.max_head;
	replay_both(in, n, &lim, &r, __LINE__);
	check_refusal(&r, in, n, 431, "header_too_large", "trailer section larger than 1024 bytes", __LINE__);
	CHECK(r.passed == head + 3, "head and last chunk passed: %zu", r.passed);
}

/* in holds requests end to end: the stream ends each where it ends, none
 * needing the next's bytes, however the bytes are cut. */
static void check_pipeline(const char *in, size_t n, const size_t *ends, unsigned nends, enum wire_verdict last,
                           unsigned line)
{
	static const size_t cuts[][3] = { { 2, 0, 0 }, { 3, 0, 0 }, { 7, 1, 13 }, { 64, 0, 0 } };
	static const size_t ncuts[] = { 1, 1, 3, 1 };
	struct replay r, cut;
	replay_both(in, n, &lim, &r, line);
	check_at(r.ends == nends && r.heads == nends && r.last == last, line, "%u requests ended, verdict %d",
	         r.ends, r.last);
	for (unsigned i = 0; i < nends && i < r.ends; i++)
		check_at(r.end_at[i] == ends[i] && r.head_at[i] == (i ? ends[i - 1] : 0), line,
		         "request %u: %zu..%zu, want ..%zu", i, r.head_at[i], r.end_at[i], ends[i]);
	for (size_t i = 0; i < sizeof ncuts / sizeof ncuts[0]; i++) {
		replay_run(&lim, in, n, cuts[i], ncuts[i], &cut);
		check_at(!cut.broken && replay_same(&r, &cut), line, "pieces of %zu: %s", cuts[i][0],
		         cut.broken ? cut.broken : "decided differently");
	}
}

static void test_pipelining(void)
{
	static const char two[] = GET "\r\n" POST "Content-Length: 3\r\n\r\nabc";
	size_t first = sizeof GET "\r\n" - 1;
	size_t ends2[] = { first, sizeof two - 1 };
	check_pipeline(two, sizeof two - 1, ends2, 2, WIRE_NEED_MORE, __LINE__);

	static const char three[] = CHUNKED "3;x=y\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
	                            "PUT /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
	                            "GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	                            "GET /after-close HTTP/1.1\r\nHost: x\r\n\r\n";
	size_t a = sizeof CHUNKED "3;x=y\r\nabc\r\n0\r\nX-T: 1\r\n\r\n" - 1;
	size_t b = a + sizeof "PUT /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi" - 1;
	size_t c = b + sizeof "GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" - 1;
	size_t ends3[] = { a, b, c };
	check_pipeline(three, sizeof three - 1, ends3, 3, WIRE_CLOSED, __LINE__);

	/* A bad second request: the first is passed whole, nothing of the second. */
	static const char bad[] = POST "Content-Length: 2\r\n\r\nhi" "GET / HTTP/1.1\nHost: x\n\n";
	size_t ends1[] = { sizeof POST "Content-Length: 2\r\n\r\nhi" - 1 };
	check_pipeline(bad, sizeof bad - 1, ends1, 1, WIRE_REJECT, __LINE__);

	/* HTTP/1.0 closes after one request unless it asks for keep-alive. */
	static const char ten[] = "GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n";
	size_t ends10[] = { sizeof "GET /a HTTP/1.0\r\n\r\n" - 1 };
	check_pipeline(ten, sizeof ten - 1, ends10, 1, WIRE_CLOSED, __LINE__);
	static const char ka[] = "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n";
	size_t endska[] = { sizeof "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" - 1, sizeof ka - 1 };
	check_pipeline(ka, sizeof ka - 1, endska, 2, WIRE_CLOSED, __LINE__);

	/* Many small requests, including empty-bodied ones. */
	static char many[4096];
	size_t n = 0, endsm[REPLAY_KEPT];
	for (unsigned i = 0; i < REPLAY_KEPT; i++) {
		n += (size_t)snprintf(many + n, sizeof many - n, i % 2 ? POST "Content-Length: 0\r\n\r\n" : GET "\r\n");
		endsm[i] = n;
	}
	check_pipeline(many, n, endsm, REPLAY_KEPT, WIRE_NEED_MORE, __LINE__);
}

/* The stream's answers call by call, as a filter sees them. */
static void test_stream_calls(void)
{
	static const char in[] = POST "Content-Length: 4\r\n\r\nbody" GET "\r\n" "GET /x HTTP/1.1\r\nHost: y\r\n";
	const size_t post = sizeof POST "Content-Length: 4\r\n\r\n" - 1, get = sizeof GET "\r\n" - 1;
	struct wire_stream s;
	struct wire_error err;
	size_t pass = 99;
	wire_stream_init(&s, &lim);
	CHECK(wire_stream_head(&s) == NULL && wire_stream_state(&s) == WIRE_STATE_HEAD, "fresh");
	CHECK(wire_stream_feed(&s, NULL, 0, &pass, &err) == WIRE_NEED_MORE && pass == 0, "nothing yet");
	CHECK(wire_stream_feed(&s, in, post - 1, &pass, &err) == WIRE_NEED_MORE && pass == 0, "head not complete");
	CHECK(wire_stream_feed(&s, in, 10, &pass, &err) == WIRE_NEED_MORE && pass == 0, "a shorter prefix");
	CHECK(wire_stream_feed(&s, in, post + 1, &pass, &err) == WIRE_PASS && pass == post + 1 &&
	      !wire_stream_ended(&s), "head and one body byte: %zu", pass);
	const struct wire_head *h = wire_stream_head(&s);
	CHECK(h && strcmp(h->method->name, "POST") == 0 && h->framing == WIRE_BODY_LENGTH && h->length == 4 &&
	      !h->close && memcmp(in + h->target_off, "/orders", h->target_len) == 0, "the POST's head");
	CHECK(wire_stream_state(&s) == WIRE_STATE_BODY, "in the body: %s", wire_state_name(wire_stream_state(&s)));
	/* The rest of the body and the whole GET: the POST ends first. */
	const char *rest = in + post + 1;
	CHECK(wire_stream_feed(&s, rest, sizeof in - 1 - post - 1, &pass, &err) == WIRE_PASS && pass == 3 &&
	      wire_stream_ended(&s), "the POST ends: %zu", pass);
	rest += 3;
	CHECK(wire_stream_feed(&s, rest, sizeof in - 1 - post - 4, &pass, &err) == WIRE_PASS && pass == get &&
	      wire_stream_ended(&s) && strcmp(wire_stream_head(&s)->method->name, "GET") == 0, "the GET: %zu", pass);
	rest += get;
	size_t held = sizeof in - 1 - post - 4 - get;
	CHECK(wire_stream_feed(&s, rest, held, &pass, &err) == WIRE_NEED_MORE && pass == 0 &&
	      wire_stream_head(&s)->head_len == get, "the third head is held; the GET stays the head passed");
	CHECK(wire_stream_feed(&s, "GET /x HTTP/1.1\r\nHost: y\r\nX\n", held + 2, &pass, &err) == WIRE_REJECT &&
	      err.status == 400 && pass == 0 && wire_stream_state(&s) == WIRE_STATE_FAILED, "bare LF");
	CHECK(wire_stream_error(&s) && strstr(wire_stream_error(&s)->message, "bare LF"), "the error stays");
	CHECK(wire_stream_feed(&s, GET "\r\n", get, &pass, NULL) == WIRE_REJECT && pass == 0, "rejects for good");

	/* Valid bytes before a fault are passed first; the next call refuses. */
	static const char part[] = CHUNKED "2\r\nok\r\n2\r\nnoX";
	wire_stream_init(&s, &lim);
	CHECK(wire_stream_feed(&s, part, sizeof part - 1, &pass, &err) == WIRE_PASS && pass == sizeof part - 2,
	      "passes all but the X: %zu", pass);
	CHECK(wire_stream_feed(&s, "X", 1, &pass, &err) == WIRE_REJECT && strstr(err.message, "CRLF") && pass == 0,
	      "then refuses");

	/* After a request that said close, nothing more. */
	static const char closing[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n";
	wire_stream_init(&s, &lim);
	CHECK(wire_stream_feed(&s, closing, sizeof closing - 1, &pass, &err) == WIRE_PASS && wire_stream_ended(&s) &&
	      wire_stream_head(&s)->close, "the closing request");
	CHECK(wire_stream_feed(&s, closing + pass, sizeof closing - 1 - pass, &pass, &err) == WIRE_CLOSED &&
	      pass == 0 && wire_stream_state(&s) == WIRE_STATE_CLOSED && !wire_stream_error(&s), "then CLOSED");

	CHECK(strcmp(wire_state_name(WIRE_STATE_CHUNK_SIZE), "chunk_size") == 0 &&
	      strcmp(wire_state_name(WIRE_STATE_MAX), "?") == 0, "state names");
}

/* Smuggling attempts: each refused, and not one byte of the request hidden
 * in it passed on. */
static void test_smuggling(void)
{
	static const struct {
		const char *text;
		size_t len;
		const char *says;
	} cases[] = {
		{ T("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 100\r\n\r\n"
		    "AAAAAGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"), "duplicate Content-Length" },
		{ T("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: xchunked\r\n\r\n"
		    "5c\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n0\r\n\r\n"), "Transfer-Encoding other than" },
		{ T("POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n"
		    "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"), "Transfer-Encoding other than" },
		{ T("POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 38\r\n\r\n"
		    "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"), "header name \"Transfer-Encoding \"" },
		{ T("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding : chunked\r\n\r\n"
		    "5c\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n0\r\n\r\n"), "header name \"Transfer-Encoding \"" },
		{ T("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n"
		    "AAAAAGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"), "Content-Length is not plain ASCII digits" },
		{ T("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\0 00\r\n\r\n"
		    "AAAAAGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"), "control character" },
		{ T("POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
		    "0x5\r\nAAAAA\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"), "chunk size followed by" },
		{ T("POST /healthz HTTP/1.1\nHost: x\nContent-Length: 5\n\n"
		    "AAAAAGET /smuggled HTTP/1.1\nHost: x\n\n"), "bare LF" },
		{ T("GET /healthz HTTP/1.1\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"), "missing Host" },
		{ T("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 37\r\n\r\n"
		    "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"), "method without a body" },
		{ T("POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
		    "5\r\nAAAAAGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"), "chunk data not followed by CRLF" },
		{ T("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n Transfer-Encoding: chunked\r\n\r\n"
		    "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"), "obs-fold" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *in = cases[i].text, *smuggled = NULL;
		for (size_t k = 0; k + 9 <= cases[i].len && !smuggled; k++)
			if (memcmp(in + k, "/smuggled", 9) == 0)
				smuggled = in + k - 4;
		struct replay r;
		replay_both(in, cases[i].len, &lim, &r, __LINE__);
		check_refusal(&r, in, cases[i].len, 400, "bad_request", cases[i].says, __LINE__);
		CHECK(smuggled && r.passed <= (size_t)(smuggled - in) && r.ends == 0 && r.heads <= 1,
		      "%s: passed %zu bytes", shown(in, cases[i].len), r.passed);
	}
}

static const struct harness_test tests[] = {
	{ "accepted heads", test_accepted_heads },
	{ "refused heads", test_refused_heads },
	{ "the header at fault", test_error_field },
	{ "one head exactly, max_head", test_head_bounds },
	{ "chunked bodies", test_chunked_bodies },
	{ "body limit across chunks, held lines", test_chunked_limits },
	{ "pipelined requests, cut anywhere", test_pipelining },
	{ "the stream call by call", test_stream_calls },
	{ "smuggling attempts", test_smuggling },
	{ NULL, NULL },
};

int main(void)
{
	return harness_main("wire", NULL, NULL, tests);
}
