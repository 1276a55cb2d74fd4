/* End to end: dropshipd against hostile and broken clients over raw TLS.
 * Request smuggling attempts are refused with 400 and the connection is
 * closed before anything after them is read; every error is JSON with an
 * X-Request-Id, a log line and a count in /metrics; slow connections from
 * one address or from many cannot keep a real order out; SIGHUP swaps the
 * certificate and survives a broken file; a supplier presenting a bad
 * certificate is recorded with the reason. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <jansson.h>
#include <openssl/pem.h>

#include "support/certs.h"
#include "support/harness.h"
#include "support/https.h"
#include "support/receiver.h"
#include "support/shop.h"
#include "support/testdb.h"
#include "support/testsrv.h"
#include "support/wait.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SUP_SECRET "whsec_c2Vjb25kLXNlY3JldC1mb3ItdGVzdHMtMTIzNA=="

static char conninfo[512];
static PGconn *db;
static char certdir[] = "/tmp/dropship-hostile.XXXXXX";
/* Small limits and deadlines: 1 KiB heads and bodies, a request must
 * arrive within 1.5 s; outbound to loopback trusting the test CA. */
static struct testsrv srv;

/* ---- reading what the server sends ---- */

/* What came back on a connection: the first answer, and whatever followed. */
struct answer {
	int status;
	char code[64];          /* error.code of the JSON body, "" when none */
	char request_id[64];    /* X-Request-Id, "" when none */
	int json;               /* the body is JSON */
	int closed;             /* the server closed the connection */
	size_t rest;            /* bytes after the first answer: another answer, if any */
};

/* Reads until the server closes, or (once one answer is in) until idle_ms
 * pass with nothing more, or wait_ms pass in all. */
static void read_answer(struct https_conn *c, int wait_ms, int idle_ms, struct answer *a)
{
	memset(a, 0, sizeof *a);
	size_t len = 0, cap = 65536, whole = 0;
	char *buf = malloc(cap + 1);
	double deadline = wait_now_ms() + wait_ms;
	for (;;) {
		int ms = whole ? idle_ms : (int)(deadline - wait_now_ms());
		if (ms <= 0)
			break;
		struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
		setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		if (len == cap)
			buf = realloc(buf, (cap *= 2) + 1);
		int n = SSL_read(c->ssl, buf + len, (int)(cap - len));
		if (n <= 0) {
			int e = SSL_get_error(c->ssl, n);
			a->closed = !((e == SSL_ERROR_SYSCALL || e == SSL_ERROR_WANT_READ) &&
			              (errno == EAGAIN || errno == EWOULDBLOCK));
			break;
		}
		len += (size_t)n;
		buf[len] = '\0';
		const char *end = strstr(buf, "\r\n\r\n");
		const char *cl = end ? strcasestr(buf, "\r\nContent-Length: ") : NULL;
		if (!whole && cl && cl < end && len >= (size_t)(end + 4 - buf) + strtoul(cl + 18, NULL, 10))
			whole = (size_t)(end + 4 - buf) + strtoul(cl + 18, NULL, 10);
	}
	if (whole) {
		buf[len] = '\0';
		sscanf(buf, "HTTP/1.1 %d ", &a->status);
		const char *id = strcasestr(buf, "\r\nX-Request-Id: ");
		if (id && id < buf + whole)
			sscanf(id + 16, "%63[^\r]", a->request_id);
		const char *body = strstr(buf, "\r\n\r\n") + 4;
		json_t *j = json_loadb(body, whole - (size_t)(body - buf), 0, NULL);
		a->json = j != NULL;
		const char *code = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
		snprintf(a->code, sizeof a->code, "%s", code ? code : "");
		json_decref(j);
		a->rest = len - whole;
	}
	free(buf);
}

/* Sends raw bytes on a fresh connection and reads the answer. */
static int exchange(int port, const void *req, size_t len, int idle_ms, struct answer *a)
{
	struct https_conn c;
	if (https_connect(&c, port, 5000) < 0)
		return -1;
	https_write(&c, req, len); /* the server may close before it took everything */
	read_answer(&c, 10000, idle_ms, a);
	https_close(&c);
	return 0;
}

/* 1 when the server sent application data on c or closed it within ms
 * (peeked: the data stays to be read), 0 when it said nothing. Session
 * tickets after the handshake make the socket readable: they are not an
 * answer. */
static int peer_spoke(struct https_conn *c, int ms)
{
	if (!c->ssl)
		return 1;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 + (ms <= 0) };
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	char b;
	int n = SSL_peek(c->ssl, &b, 1);
	if (n > 0)
		return 1;
	int e = SSL_get_error(c->ssl, n);
	return !((e == SSL_ERROR_SYSCALL || e == SSL_ERROR_WANT_READ) && (errno == EAGAIN || errno == EWOULDBLOCK));
}

/* ---- the log and /metrics ---- */

/* Lines of s's log holding a and b (b may be NULL). */
static int log_lines(const struct testsrv *s, const char *a, const char *b)
{
	FILE *f = fopen(s->log, "r");
	if (!f)
		return 0;
	char line[8192];
	int n = 0;
	while (fgets(line, sizeof line, f))
		n += strstr(line, a) && (!b || strstr(line, b));
	fclose(f);
	return n;
}

/* A sample of the server's /metrics (its admin listener), or -1. */
static long metric(const struct testsrv *s, const char *name)
{
	struct https_resp r;
	long v = -1;
	if (https_once(s->admin_port, "GET", "/metrics", NULL, NULL, 0, &r) == 0 && r.status == 200) {
		size_t n = strlen(name);
		for (const char *p = r.body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
			if (strncmp(p, name, n) == 0 && p[n] == ' ')
				v = strtol(p + n + 1, NULL, 10);
	}
	https_resp_free(&r);
	return v;
}

struct metric_wait {
	const struct testsrv *s;
	const char *name;
	long at_least;
	long value;
};

static bool metric_reaches(void *arg)
{
	struct metric_wait *w = arg;
	w->value = metric(w->s, w->name);
	return w->value >= w->at_least;
}

/* Waits until the sample reaches at_least; returns its value then. */
static long metric_wait(const struct testsrv *s, const char *name, long at_least)
{
	struct metric_wait w = { s, name, at_least, -1 };
	wait_until(metric_reaches, &w, 10000, 50);
	return w.value;
}

#define M_4XX "dropship_http_requests_total{class=\"4xx\"}"
#define M_5XX "dropship_http_requests_total{class=\"5xx\"}"
#define M_SHED "dropship_connections_shed_total"
#define M_REFUSED "dropship_connections_refused_total"
#define M_CONNS "dropship_connections"

/* ---- suite ---- */

/* The supplier certificates of the outbound test: issued by the CA
 * dropshipd trusts, except the self-signed one. */
static const struct {
	const char *code, *san, *cause;
	long from, to;
	int self;
} bad_certs[] = {
	{ "selfsigned", CERTS_SAN_LOCAL, "certificate verify failed: self-signed certificate", -CERTS_DAY,
	  CERTS_DAY, 1 },
	{ "expired", CERTS_SAN_LOCAL, "certificate verify failed: certificate has expired", -2 * CERTS_DAY,
	  -CERTS_DAY, 0 },
	{ "othername", "DNS:other.example", "certificate verify failed: hostname mismatch", -CERTS_DAY, CERTS_DAY,
	  0 },
};
#define NBAD (sizeof bad_certs / sizeof bad_certs[0])
static struct receiver rx[NBAD];

static int make_certs(void)
{
	EVP_PKEY *ca_key = EVP_EC_gen("P-256");
	X509 *ca = ca_key ? certs_new(ca_key, "dropship hostile CA", NULL, -CERTS_DAY, CERTS_DAY, 1, NULL, NULL)
	                  : NULL;
	int rc = ca && certs_write(certdir, "ca", ca, ca_key) == 0 ? 0 : -1;
	for (size_t i = 0; rc == 0 && i < NBAD; i++) {
		EVP_PKEY *key = EVP_EC_gen("P-256");
		X509 *x = key ? certs_new(key, "localhost", bad_certs[i].san, bad_certs[i].from, bad_certs[i].to, 0,
		                          bad_certs[i].self ? NULL : ca, bad_certs[i].self ? NULL : ca_key)
		              : NULL;
		rc = x && certs_write(certdir, bad_certs[i].code, x, key) == 0 ? 0 : -1;
		X509_free(x);
		EVP_PKEY_free(key);
	}
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	return rc;
}

static int suite_init(void)
{
	if (testsrv_prepare_db("dropship_hostile", SECRET, conninfo, sizeof conninfo) < 0 ||
	    !(db = testdb_connect(conninfo)) || !mkdtemp(certdir) || make_certs() < 0)
		return -1;
	char conf[1024];
	snprintf(conf, sizeof conf,
	         "workers = 1\nmax_header_bytes = 1024\nmax_body_bytes = 1024\nread_timeout_ms = 3000\n"
	         "request_timeout_ms = 1500\n"
	         "[dispatch]\nallow_private_endpoints = true\ntls_ca_file = %s/ca.crt\ntimeout_ms = 2000\n"
	         "max_attempts = 2\nbackoff_base_ms = 20\nbackoff_max_ms = 100\n", certdir);
	return testsrv_start(&srv, conninfo, conf, 1);
}

static int suite_cleanup(void)
{
	int rc = srv.pid > 0 ? testsrv_stop(&srv, SIGTERM) : 0;
	if (db)
		PQfinish(db);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", certdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", certdir);
	return rc == 0 ? 0 : -1;
}

/* ---- smuggling ---- */

#define S(text) text, sizeof text - 1
#define HOST "Host: x\r\n"
#define NEXT "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"

/* Each is refused with 400 bad_request, the connection closes, and what
 * follows the first request is never answered. */
static const struct {
	const char *name, *raw;
	size_t len;
} smuggling[] = {
	{ "two Content-Lengths", S("POST /v1/stores/shop/webhooks HTTP/1.1\r\n" HOST "Content-Length: 5\r\n"
	                           "Content-Length: 100\r\n\r\nAAAAA" NEXT) },
	{ "two equal Content-Lengths", S("POST / HTTP/1.1\r\n" HOST "Content-Length: 5\r\nContent-Length: 5\r\n\r\n"
	                                 "AAAAA" NEXT) },
	{ "Transfer-Encoding: xchunked", S("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: xchunked\r\n\r\n"
	                                   "5\r\nAAAAA\r\n0\r\n\r\n" NEXT) },
	{ "space before the colon", S("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n" NEXT) },
	{ "Content-Length and Transfer-Encoding", S("POST / HTTP/1.1\r\n" HOST "Content-Length: 5\r\n"
	                                            "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" NEXT) },
	{ "Transfer-Encoding then Content-Length", S("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n"
	                                             "Content-Length: 5\r\n\r\n0\r\n\r\n" NEXT) },
	{ "Transfer-Encoding: chunked, identity", S("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked, identity"
	                                            "\r\n\r\n0\r\n\r\n" NEXT) },
	{ "Transfer-Encoding: gzip", S("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: gzip\r\n\r\n0\r\n\r\n" NEXT) },
	{ "two Transfer-Encodings", S("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n"
	                              "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" NEXT) },
	{ "Transfer-Encoding on HTTP/1.0", S("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" NEXT) },
	{ "Content-Length: +5", S("POST / HTTP/1.1\r\n" HOST "Content-Length: +5\r\n\r\nAAAAA" NEXT) },
	{ "Content-Length: -1", S("POST / HTTP/1.1\r\n" HOST "Content-Length: -1\r\n\r\n" NEXT) },
	{ "Content-Length with a NUL", S("POST / HTTP/1.1\r\n" HOST "Content-Length: 5\0 00\r\n\r\nAAAAA" NEXT) },
	{ "Content-Length: 5 5", S("POST / HTTP/1.1\r\n" HOST "Content-Length: 5 5\r\n\r\nAAAAA" NEXT) },
	{ "chunk size 0x5", S("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n0x5\r\nAAAAA\r\n0\r\n\r\n"
	                      NEXT) },
	{ "chunk size with a space", S("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n5 \r\nAAAAA\r\n"
	                               "0\r\n\r\n" NEXT) },
	{ "no CRLF after chunk data", S("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n5\r\nAAAAAXX"
	                                "0\r\n\r\n" NEXT) },
	{ "bare LF line ends", S("GET / HTTP/1.1\nHost: x\n\n" NEXT) },
	{ "bare LF after the request line", S("GET / HTTP/1.1\n" HOST "\r\n" NEXT) },
	{ "bare CR", S("GET / HTTP/1.1\r" HOST "\r\n" NEXT) },
	{ "HTTP/1.1 without Host", S("GET / HTTP/1.1\r\n\r\n" NEXT) },
	{ "two Hosts", S("GET / HTTP/1.1\r\n" HOST HOST "\r\n" NEXT) },
	{ "obs-fold", S("GET / HTTP/1.1\r\n" HOST "X-A: a\r\n b\r\n\r\n" NEXT) },
	{ "obs-fold of Content-Length", S("POST / HTTP/1.1\r\n" HOST "Content-Length:\r\n 5\r\n\r\nAAAAA" NEXT) },
	{ "space in a header name", S("GET / HTTP/1.1\r\n" HOST "X A: b\r\n\r\n" NEXT) },
	{ "tab in a header name", S("GET / HTTP/1.1\r\n" HOST "X\tA: b\r\n\r\n" NEXT) },
	{ "control character in a header name", S("GET / HTTP/1.1\r\n" HOST "X\001A: b\r\n\r\n" NEXT) },
	{ "space before the first header", S("GET / HTTP/1.1\r\n " HOST "\r\n" NEXT) },
	{ "line without a colon", S("GET / HTTP/1.1\r\n" HOST "Nothing\r\n\r\n" NEXT) },
	{ "NUL in the target", S("GET /a\0b HTTP/1.1\r\n" HOST "\r\n" NEXT) },
	{ "NUL in the method", S("G\0T / HTTP/1.1\r\n" HOST "\r\n" NEXT) },
	{ "NUL in a header name", S("GET / HTTP/1.1\r\n" HOST "X-\0A: b\r\n\r\n" NEXT) },
	{ "NUL in a header value", S("GET / HTTP/1.1\r\n" HOST "X-A: a\0b\r\n\r\n" NEXT) },
	{ "control character in a header value", S("GET / HTTP/1.1\r\n" HOST "X-A: a\033b\r\n\r\n" NEXT) },
	{ "GET declaring a body", S("GET / HTTP/1.1\r\n" HOST "Content-Length: 37\r\n\r\n" NEXT) },
	{ "absolute-form target", S("GET http://x/ HTTP/1.1\r\n" HOST "\r\n" NEXT) },
	{ "two spaces in the request line", S("GET  / HTTP/1.1\r\n" HOST "\r\n" NEXT) },
	{ "lower-case version", S("GET / http/1.1\r\n" HOST "\r\n" NEXT) },
};

static void test_smuggling(void)
{
	long before = metric(&srv, M_4XX);
	for (size_t i = 0; i < sizeof smuggling / sizeof smuggling[0]; i++) {
		struct answer a;
		HARNESS_CHECK(exchange(srv.port, smuggling[i].raw, smuggling[i].len, 5000, &a) == 0, "%s: connect",
		              smuggling[i].name);
		HARNESS_CHECK(a.status == 400 && strcmp(a.code, "bad_request") == 0, "%s: got %d %s", smuggling[i].name,
		              a.status, a.code);
		HARNESS_CHECK(a.closed, "%s: the connection stays open", smuggling[i].name);
		HARNESS_CHECK(a.rest == 0, "%s: %zu more bytes after the 400", smuggling[i].name, a.rest);
		HARNESS_CHECK(a.request_id[0] && log_lines(&srv, a.request_id, "status=400") == 1,
		              "%s: no log line for request id '%s'", smuggling[i].name, a.request_id);
	}
	/* What followed never reached a handler, and each refusal was counted. */
	CU_ASSERT_EQUAL(log_lines(&srv, "path=/smuggled", NULL), 0);
	long n = (long)(sizeof smuggling / sizeof smuggling[0]);
	CU_ASSERT_EQUAL(metric_wait(&srv, M_4XX, before + n), before + n);

	/* The same bytes as two requests of one valid stream are both answered:
	 * the refusals above are about framing, not about pipelining. */
	static const char two[] = "GET /healthz HTTP/1.1\r\n" HOST "\r\nGET /healthz HTTP/1.1\r\n" HOST
	                          "Connection: close\r\n\r\n";
	struct https_conn c;
	CU_ASSERT_EQUAL_FATAL(https_connect(&c, srv.port, 5000), 0);
	CU_ASSERT_EQUAL(https_write(&c, two, sizeof two - 1), 0);
	struct https_resp r1, r2;
	CU_ASSERT_EQUAL(https_read_response(&c, &r1), 0);
	CU_ASSERT_EQUAL(https_read_response(&c, &r2), 0);
	CU_ASSERT_EQUAL(r1.status, 200);
	CU_ASSERT_EQUAL(r2.status, 200);
	https_resp_free(&r1);
	https_resp_free(&r2);
	https_close(&c);
}

/* ---- errors ---- */

/* Each answer is the JSON error shape with an X-Request-Id, logged under
 * that id with its status, and counted in its class. */
static const struct {
	const char *name, *raw;
	size_t len;
	int status;
	const char *code;
	int closes;
} errors[] = {
	{ "invalid framing", S("GET / HTTP/1.1\r\n\r\n"), 400, "bad_request", 1 },
	{ "no such path", S("GET /nope HTTP/1.1\r\n" HOST "\r\n"), 404, "not_found", 0 },
	{ "wrong method", S("DELETE /healthz HTTP/1.1\r\n" HOST "\r\n"), 405, "method_not_allowed", 0 },
	{ "wrong method on webhooks", S("GET /v1/stores/shop/webhooks HTTP/1.1\r\n" HOST "\r\n"), 405,
	  "method_not_allowed", 0 },
	{ "head never ends", S("POST /v1/stores/shop/webhooks HTTP/1.1\r\n" HOST "Content-Type: application/json\r\n"),
	  408, "request_timeout", 1 },
	{ "body never ends", S("POST /v1/stores/shop/webhooks HTTP/1.1\r\n" HOST "Content-Type: application/json\r\n"
	                       "Content-Length: 10\r\n\r\n{\"a\""), 408, "request_timeout", 1 },
	{ "chunked body never ends", S("POST /v1/stores/shop/webhooks HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked"
	                               "\r\n\r\n2\r\n{}\r\n"), 408, "request_timeout", 1 },
	{ "declared body too large", S("POST /v1/stores/shop/webhooks HTTP/1.1\r\n" HOST "Content-Length: 2000\r\n\r\n"),
	  413, "payload_too_large", 1 },
	{ "chunked body too large", S("POST /v1/stores/shop/webhooks HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked"
	                              "\r\n\r\n800\r\n"), 413, "payload_too_large", 1 },
	{ "TRACE", S("TRACE / HTTP/1.1\r\n" HOST "\r\n"), 501, "not_implemented", 1 },
	{ "CONNECT", S("CONNECT x:443 HTTP/1.1\r\n" HOST "\r\n"), 501, "not_implemented", 1 },
	{ "unknown method", S("BREW /pot HTTP/1.1\r\n" HOST "\r\n"), 501, "not_implemented", 1 },
	{ "lower-case method", S("get / HTTP/1.1\r\n" HOST "\r\n"), 501, "not_implemented", 1 },
	{ "HTTP/2.0", S("GET / HTTP/2.0\r\n" HOST "\r\n"), 505, "http_version_not_supported", 1 },
	{ "HTTP/1.2", S("GET / HTTP/1.2\r\n" HOST "\r\n"), 505, "http_version_not_supported", 1 },
	{ "HTTP/0.9", S("GET / HTTP/0.9\r\n" HOST "\r\n"), 505, "http_version_not_supported", 1 },
};

static void check_error(const char *name, const struct answer *a, int status, const char *code, int closes)
{
	HARNESS_CHECK(a->status == status && strcmp(a->code, code) == 0 && a->json, "%s: got %d '%s', want %d %s",
	              name, a->status, a->code, status, code);
	HARNESS_CHECK(a->request_id[0], "%s: no X-Request-Id", name);
	char st[32];
	snprintf(st, sizeof st, "status=%d", status);
	char id[80];
	snprintf(id, sizeof id, "request_id=%s ", a->request_id);
	HARNESS_CHECK(log_lines(&srv, id, st) == 1, "%s: no log line with %s %s", name, id, st);
	if (closes)
		HARNESS_CHECK(a->closed && a->rest == 0, "%s: not closed after the answer", name);
}

static void test_errors(void)
{
	for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) {
		const char *m = errors[i].status >= 500 ? M_5XX : M_4XX;
		long before = metric(&srv, m);
		struct answer a;
		HARNESS_CHECK(exchange(srv.port, errors[i].raw, errors[i].len, errors[i].closes ? 5000 : 300, &a) == 0,
		              "%s: connect", errors[i].name);
		check_error(errors[i].name, &a, errors[i].status, errors[i].code, errors[i].closes);
		long after = metric_wait(&srv, m, before + 1);
		HARNESS_CHECK(after == before + 1, "%s: %s went from %ld to %ld", errors[i].name, m, before, after);
	}

	/* A head larger than max_header_bytes (1024 here): 431. */
	char big[1400];
	int n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\n" HOST "X-Big: %01200d\r\n\r\n", 0);
	long before = metric(&srv, M_4XX);
	struct answer a;
	CU_ASSERT_EQUAL_FATAL(exchange(srv.port, big, (size_t)n, 5000, &a), 0);
	check_error("large head", &a, 431, "header_too_large", 1);
	CU_ASSERT_EQUAL(metric_wait(&srv, M_4XX, before + 1), before + 1);

	/* Dribbling a byte every 100 ms keeps the idle deadline (3 s) away, not
	 * the request's (1.5 s): 408 all the same. */
	static const char slow[] = "POST /v1/stores/shop/webhooks HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	                           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	struct https_conn c;
	CU_ASSERT_EQUAL_FATAL(https_connect(&c, srv.port, 5000), 0);
	/* A byte every 100 ms until the server says something. */
	for (size_t i = 0; i < sizeof slow - 1 && !peer_spoke(&c, 100); i++)
		if (https_write(&c, slow + i, 1) < 0)
			break;
	read_answer(&c, 5000, 5000, &a);
	https_close(&c);
	check_error("dribbling", &a, 408, "request_timeout", 1);

	/* A client's own X-Request-Id is used in the answer and the log. */
	static const char own[] = "GET /nope HTTP/1.1\r\n" HOST "X-Request-Id: hostile-own-id.1\r\n\r\n";
	CU_ASSERT_EQUAL_FATAL(exchange(srv.port, own, sizeof own - 1, 300, &a), 0);
	CU_ASSERT_STRING_EQUAL(a.request_id, "hostile-own-id.1");
	CU_ASSERT_EQUAL(log_lines(&srv, "request_id=hostile-own-id.1 ", "status=404"), 1);

	/* An idle connection is closed at read_timeout_ms without an answer. */
	CU_ASSERT_EQUAL_FATAL(https_connect(&c, srv.port, 5000), 0);
	read_answer(&c, 10000, 10000, &a);
	https_close(&c);
	CU_ASSERT_TRUE(a.closed);
	CU_ASSERT_EQUAL(a.status, 0);
}

/* ---- slow waves ---- */

/* What a slowloris client sends and then holds: the start of a head. */
static const char slow_head[] = "POST /v1/stores/shop/webhooks HTTP/1.1\r\nHost: x\r\nX-Slow: a";

/* A real signed order, from 127.0.0.1 on a fresh connection: its status. */
static int real_order(const struct testsrv *s, const char *id)
{
	const struct shop_line line = { "MUG-01", 1, "12.50", "Mug" };
	char *body = shop_order_json(id, "US", &line, 1, false);
	struct https_resp r;
	int status = shop_post(s->port, "shop", SECRET, (int64_t)time(NULL), body, &r) == 0 ? r.status : 0;
	https_resp_free(&r);
	free(body);
	return status;
}

/* Opens a connection from source that sends the start of a head and holds
 * it. Returns 0, or -1 when it was refused (at accept: the handshake fails). */
static int slow_open(struct https_conn *c, const char *source, int port)
{
	if (https_connect_from(c, source, port, 5000) < 0)
		return -1;
	if (https_write(c, slow_head, sizeof slow_head - 1) < 0) {
		https_close(c);
		return -1;
	}
	return 0;
}

/* 1 when the server closed c (or sent something: nothing is due on a
 * connection holding half a head). */
static int slow_gone(struct https_conn *c)
{
	struct pollfd p = { c->fd, POLLIN, 0 };
	return c->ssl == NULL || SSL_pending(c->ssl) > 0 || (poll(&p, 1, 0) > 0 && peer_spoke(c, 1));
}

struct wave {
	struct https_conn *c;
	int n;
	int want;   /* at least this many gone */
};

static bool wave_gone(void *arg)
{
	struct wave *w = arg;
	int gone = 0;
	for (int i = 0; i < w->n; i++)
		gone += slow_gone(&w->c[i]);
	return gone >= w->want;
}

static int wave_count_gone(struct https_conn *c, int n)
{
	int gone = 0;
	for (int i = 0; i < n; i++)
		gone += slow_gone(&c[i]);
	return gone;
}

static void wave_close(struct https_conn *c, int n)
{
	for (int i = 0; i < n; i++)
		if (c[i].ssl)
			https_close(&c[i]);
}

#define PER_IP 16

/* max_connections_per_ip = 16: a wave of slow connections from 127.0.0.2
 * gets 16 and no more; an order from 127.0.0.1 is still taken; once the
 * wave leaves, 127.0.0.2 may connect again. */
static void test_per_address_limit(void)
{
	struct testsrv s;
	CU_ASSERT_EQUAL_FATAL(testsrv_start(&s, conninfo, "workers = 1\nmax_connections_per_ip = 16\n"
	                                    "read_timeout_ms = 30000\nrequest_timeout_ms = 30000\n", 1), 0);
	long refused = metric(&s, M_REFUSED);
	enum { N = 40 };
	struct https_conn c[N];
	int held = 0;
	for (int i = 0; i < N; i++)
		held += slow_open(&c[i], "127.0.0.2", s.port) == 0;
	CU_ASSERT_EQUAL(held, PER_IP);
	CU_ASSERT_EQUAL(metric_wait(&s, M_REFUSED, refused + N - PER_IP), refused + N - PER_IP);
	CU_ASSERT_EQUAL(real_order(&s, "HOSTILE-IP-1"), 202);
	/* The 16 are still held: the limit refuses newcomers, it does not shed. */
	CU_ASSERT_EQUAL(wave_count_gone(c, N), N - PER_IP);
	CU_ASSERT_TRUE(log_lines(&s, "connection limits", "refused=") >= 1);
	wave_close(c, N);

	/* Their slots come back (once the server has seen them close). */
	struct https_conn again;
	int ok = 0;
	for (int tries = 0; tries < 100 && !ok; tries++) {
		ok = https_connect_from(&again, "127.0.0.2", s.port, 5000) == 0;
		if (!ok)
			wait_ms(50);
	}
	CU_ASSERT_TRUE_FATAL(ok);
	struct https_resp r;
	CU_ASSERT_EQUAL(https_request(&again, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	https_resp_free(&r);
	https_close(&again);
	CU_ASSERT_EQUAL(testsrv_stop(&s, SIGTERM), 0);
}

/* max_connections = 64 on one worker: a wave of 80 slow connections from
 * five addresses (16 each, the per-address limit) fills it; the oldest are
 * shed to let newcomers in, and a real order still gets its 202. */
static void test_global_cap_sheds(void)
{
	struct testsrv s;
	CU_ASSERT_EQUAL_FATAL(testsrv_start(&s, conninfo, "workers = 1\nmax_connections = 64\n"
	                                    "max_connections_per_ip = 16\nread_timeout_ms = 30000\n"
	                                    "request_timeout_ms = 30000\n", 1), 0);
	long shed = metric(&s, M_SHED), refused = metric(&s, M_REFUSED);
	static const char *const sources[] = { "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7" };
	enum { N = 80 };
	struct https_conn c[N];
	int held = 0;
	for (int i = 0; i < N; i++)
		held += slow_open(&c[i], sources[i / PER_IP], s.port) == 0;
	CU_ASSERT_EQUAL(held, N); /* nobody is refused: the oldest make room */
	CU_ASSERT_EQUAL(real_order(&s, "HOSTILE-CAP-1"), 202);
	/* 16 shed for the wave, one more for the order. */
	CU_ASSERT_EQUAL(metric_wait(&s, M_SHED, shed + N - 64 + 1), shed + N - 64 + 1);
	CU_ASSERT_EQUAL(metric(&s, M_REFUSED), refused);
	struct wave w = { c, N, N - 64 + 1 };
	CU_ASSERT_TRUE(wait_until(wave_gone, &w, 10000, 50));
	CU_ASSERT_EQUAL(wave_count_gone(c, N), N - 64 + 1);
	/* The oldest went first. */
	for (int i = 0; i < N - 64 + 1; i++)
		HARNESS_CHECK(slow_gone(&c[i]), "connection %d of the wave was kept, a later one shed", i);
	CU_ASSERT_TRUE(log_lines(&s, "connection limits", "shed=") >= 1);
	wave_close(c, N);
	CU_ASSERT_EQUAL(testsrv_stop(&s, SIGTERM), 0);
}

/* ---- SIGHUP ---- */

static X509 *cert_file(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	return x;
}

/* The certificate a new handshake presents equals the one in path. */
static int serves(const struct testsrv *s, const char *path)
{
	struct https_conn c;
	if (https_connect(&c, s->port, 5000) < 0)
		return 0;
	X509 *peer = SSL_get1_peer_certificate(c.ssl), *want = cert_file(path);
	int same = peer && want && X509_cmp(peer, want) == 0;
	X509_free(peer);
	X509_free(want);
	https_close(&c);
	return same;
}

/* Rewrites the server's config file with tls_cert and tls_key (NULL:
 * unchanged), then extra appended. */
static int rewrite_conf(const struct testsrv *s, const char *cert, const char *key, const char *extra)
{
	char path[400], text[8192] = "", line[1200];
	snprintf(path, sizeof path, "%s/dropshipd.conf", s->dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = 0;
	while (fgets(line, sizeof line, f)) {
		if (cert && strncmp(line, "tls_cert =", 10) == 0)
			snprintf(line, sizeof line, "tls_cert = %s\n", cert);
		else if (key && strncmp(line, "tls_key =", 9) == 0)
			snprintf(line, sizeof line, "tls_key = %s\n", key);
		n += (size_t)snprintf(text + n, sizeof text - n, "%s", line);
	}
	fclose(f);
	if (extra)
		snprintf(text + n, sizeof text - n, "%s", extra);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

struct log_wait {
	const struct testsrv *s;
	const char *a, *b;
	int count;
};

static bool log_reaches(void *arg)
{
	struct log_wait *w = arg;
	return log_lines(w->s, w->a, w->b) >= w->count;
}

static int wait_log(const struct testsrv *s, const char *a, const char *b, int count)
{
	struct log_wait w = { s, a, b, count };
	return wait_until(log_reaches, &w, 10000, 50);
}

static void test_reload_certificate(void)
{
	struct testsrv s;
	CU_ASSERT_EQUAL_FATAL(testsrv_start(&s, conninfo, NULL, 1), 0);
	char old_crt[400], new_dir[400], new_crt[450], new_key[450];
	snprintf(old_crt, sizeof old_crt, "%s/server.crt", testsrv_tls_dir());
	snprintf(new_dir, sizeof new_dir, "%s/reload", certdir);
	snprintf(new_crt, sizeof new_crt, "%s/server.crt", new_dir);
	snprintf(new_key, sizeof new_key, "%s/server.key", new_dir);
	CU_ASSERT_EQUAL_FATAL(testsrv_make_cert(new_dir), 0);
	CU_ASSERT_TRUE(serves(&s, old_crt));
	CU_ASSERT_FALSE(serves(&s, new_crt));

	/* A connection opened before the reload. */
	struct https_conn before;
	struct https_resp r;
	CU_ASSERT_EQUAL_FATAL(https_connect(&before, s.port, 5000), 0);
	CU_ASSERT_EQUAL(https_request(&before, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	https_resp_free(&r);

	CU_ASSERT_EQUAL_FATAL(rewrite_conf(&s, new_crt, new_key, NULL), 0);
	CU_ASSERT_EQUAL(kill(s.pid, SIGHUP), 0);
	CU_ASSERT_TRUE(wait_log(&s, "msg=\"reloaded\"", NULL, 1));
	CU_ASSERT_EQUAL(log_lines(&s, "reload: changed", "key=server.tls_cert"), 1);
	CU_ASSERT_EQUAL(log_lines(&s, "reload: changed", "key=server.tls_key"), 1);
	CU_ASSERT_TRUE(serves(&s, new_crt));
	CU_ASSERT_FALSE(serves(&s, old_crt));
	CU_ASSERT_EQUAL(https_request(&before, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	https_resp_free(&r);

	/* A certificate that cannot be read, then a file that does not parse:
	 * each refused, the new certificate still served, the process up. */
	char missing[450];
	snprintf(missing, sizeof missing, "%s/missing.crt", certdir);
	CU_ASSERT_EQUAL_FATAL(rewrite_conf(&s, missing, NULL, NULL), 0);
	CU_ASSERT_EQUAL(kill(s.pid, SIGHUP), 0);
	CU_ASSERT_TRUE(wait_log(&s, "reload refused", NULL, 1));
	CU_ASSERT_EQUAL(kill(s.pid, 0), 0);
	CU_ASSERT_TRUE(serves(&s, new_crt));
	CU_ASSERT_EQUAL_FATAL(rewrite_conf(&s, new_crt, NULL, "no_such_key = 1\n"), 0);
	CU_ASSERT_EQUAL(kill(s.pid, SIGHUP), 0);
	CU_ASSERT_TRUE(wait_log(&s, "reload refused", NULL, 2));
	CU_ASSERT_TRUE(log_lines(&s, "reload: configuration error", "no_such_key") >= 1);
	CU_ASSERT_EQUAL(kill(s.pid, 0), 0);
	CU_ASSERT_TRUE(serves(&s, new_crt));
	CU_ASSERT_EQUAL(log_lines(&s, "msg=\"reloaded\"", NULL), 1);
	CU_ASSERT_EQUAL(https_request(&before, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	https_resp_free(&r);
	https_close(&before);
	CU_ASSERT_EQUAL(testsrv_stop(&s, SIGTERM), 0);
}

/* ---- outbound ---- */

struct attempt_wait {
	const char *code, *cause;
};

static bool attempt_recorded(void *arg)
{
	struct attempt_wait *w = arg;
	const char *v[] = { w->code, w->cause };
	return testdb_count(db, "SELECT count(*) FROM outbox_attempts a JOIN outbox o ON o.id = a.outbox_id"
	                        " JOIN suppliers s ON s.id = o.supplier_id"
	                        " WHERE s.code = $1 AND a.status IS NULL AND a.error LIKE '%' || $2 || '%'",
	                    2, v) >= 1;
}

/* Suppliers whose endpoint presents a self-signed, an expired and a wrongly
 * named certificate: each attempt is recorded with the reason. */
static void test_outbound_certificates(void)
{
	char crt[300], key[300], endpoint[200], sku[64], id[64];
	for (size_t i = 0; i < NBAD; i++) {
		snprintf(crt, sizeof crt, "%s/%s.crt", certdir, bad_certs[i].code);
		snprintf(key, sizeof key, "%s/%s.key", certdir, bad_certs[i].code);
		CU_ASSERT_EQUAL_FATAL(receiver_start_on(&rx[i], "127.0.0.1", crt, key), 0);
		snprintf(endpoint, sizeof endpoint, "https://localhost:%d/fulfillments", rx[i].port);
		snprintf(sku, sizeof sku, "SKU-%s", bad_certs[i].code);
		const char *v[] = { bad_certs[i].code, endpoint, sku };
		CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
		        "WITH s AS (INSERT INTO suppliers (code, endpoint, secrets) VALUES ($1, $2, ARRAY['" SUP_SECRET "'])"
		        "  RETURNING id)"
		        " INSERT INTO offers (supplier_id, sku, supplier_sku, cost, stock, lead_time_days)"
		        " SELECT id, $3, 'X-' || $3, 1, 1000, 1 FROM s", 3, v), 0);
		const struct shop_line line = { sku, 1, "12.50", "Mug" };
		snprintf(id, sizeof id, "HOSTILE-TLS-%zu", i);
		char *body = shop_order_json(id, "US", &line, 1, false);
		struct https_resp r;
		CU_ASSERT_EQUAL(shop_post(srv.port, "shop", SECRET, (int64_t)time(NULL), body, &r), 0);
		CU_ASSERT_EQUAL(r.status, 202);
		https_resp_free(&r);
		free(body);
	}
	for (size_t i = 0; i < NBAD; i++) {
		struct attempt_wait w = { bad_certs[i].code, bad_certs[i].cause };
		HARNESS_CHECK(wait_until(attempt_recorded, &w, 20000, 100), "%s: no attempt recorded with '%s'",
		              bad_certs[i].code, bad_certs[i].cause);
		/* Nothing reached the supplier: the handshake was refused. */
		HARNESS_CHECK(receiver_count(&rx[i], "", NULL) == 0, "%s: a request got through", bad_certs[i].code);
	}
	for (size_t i = 0; i < NBAD; i++)
		receiver_stop(&rx[i]);
}

int main(void)
{
	static const struct harness_test tests[] = {
		{ "request smuggling attempts: 400, closed, nothing after answered", test_smuggling },
		{ "errors are JSON with a request id, a log line and a count", test_errors },
		{ "per-address limit under a slow wave; a real order still taken", test_per_address_limit },
		{ "global cap under a slow wave sheds the oldest; a real order still taken", test_global_cap_sheds },
		{ "SIGHUP swaps the certificate; a broken file is refused", test_reload_certificate },
		{ "a supplier's bad certificate is recorded with its cause", test_outbound_certificates },
		{ NULL, NULL },
	};
	return harness_main("hostile", suite_init, suite_cleanup, tests);
}
