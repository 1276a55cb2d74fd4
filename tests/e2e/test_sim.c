/* End to end: build/dropship-supplier-sim as dropshipd sees it. Requests
 * are signed the way dropshipd signs them; callbacks land on a small
 * blocking TLS receiver in a test thread, which checks their signatures
 * the way dropshipd would. No database needed. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "platform/platform.h"
#include "sig/sig.h"
#include "support/harness.h"
#include "support/https.h"
#include "support/proc.h"
#include "support/testsrv.h"
#include "support/wait.h"
#include "tls/tls.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SECRET_OTHER "whsec_dGhpcmQtc2VjcmV0LW5ldmVyLWNvbmZpZ3VyZWQhIQ=="
#define SUPPLIER_ARG "acme=" SECRET
#define FULFILL_PATH "/suppliers/acme/fulfillments"

static const char *const acme[] = { SUPPLIER_ARG, NULL };
static char tls_cert[400], tls_key[400];
static struct testsrv basic;     /* shared by the request-handling tests */
static unsigned long seq;

/* Starts the simulator on a free port with acme's secret plus extra flags
 * (NULL-terminated, may be NULL) and waits for its "listening" line. */
static int start_acme(struct testsrv *s, const char *const extra[])
{
	return testsrv_start_sim(s, acme, extra, 15000);
}

/* SIGTERM; returns the exit status (0 expected). */
static int stop_acme(struct testsrv *s)
{
	return testsrv_stop_sim(s, 10000);
}

static int log_has(const struct testsrv *s, const char *needle, int timeout_ms)
{
	return proc_wait_line(s->log, needle, timeout_ms, NULL, 0) == 0;
}

static void new_id(char *buf, size_t cap)
{
	snprintf(buf, cap, "req-%d-%lu", (int)getpid(), ++seq);
}

static char *fulfillment_body(const char *type, const char *id)
{
	json_t *b = json_pack("{s:s, s:s, s:s, s:s, s:[{s:i, s:s, s:s, s:i}]}", "type", type,
	                      "request_id", id, "store", "demo", "order_id", "o-1", "items",
	                      "line", 1, "sku", "MUG-01", "supplier_sku", "AC-MUG", "quantity", 2);
	char *s = json_dumps(b, JSON_COMPACT);
	json_decref(b);
	return s;
}

/* POSTs body signed with secret; key NULL leaves Idempotency-Key out. */
static int post_raw(int port, const char *secret, const char *key, const char *body, struct https_resp *r)
{
	char hdrs[1024], msg_id[64];
	snprintf(msg_id, sizeof msg_id, "msg_%lu", ++seq);
	https_webhook_headers(secret, msg_id, (int64_t)time(NULL), body, hdrs, sizeof hdrs);
	if (key) {
		size_t n = strlen(hdrs);
		snprintf(hdrs + n, sizeof hdrs - n, "Idempotency-Key: %s\r\n", key);
	}
	return https_once(port, "POST", FULFILL_PATH, hdrs, body, strlen(body), r);
}

/* Signed fulfillment message of type for id, with the Idempotency-Key
 * dropshipd uses (id; id.cancel for a cancellation). Returns the status. */
static int post_type(int port, const char *type, const char *id)
{
	char *body = fulfillment_body(type, id);
	char key[160];
	snprintf(key, sizeof key, "%s%s", id, strcmp(type, "fulfillment.cancel_requested") == 0 ? ".cancel" : "");
	struct https_resp r;
	int rc = post_raw(port, SECRET, key, body, &r);
	int status = rc == 0 ? r.status : 0;
	https_resp_free(&r);
	free(body);
	return status;
}

/* A string member of o, or "" (CUnit's string asserts cannot take NULL). */
static const char *jstr(const json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v ? v : "";
}

/* A stat polled by wait_stat, and its last value. */
struct stat_wait {
	int port;
	const char *key;
	long want, value;
};

static bool stat_reached(void *arg)
{
	struct stat_wait *w = arg;
	json_t *st = testsrv_sim_stats(w->port);
	w->value = testsrv_sim_stat(st, w->key);
	json_decref(st);
	return w->value >= w->want;
}

/* Polls /stats until key reaches want. Returns its last value. */
static long wait_stat(int port, const char *key, long want, int timeout_ms)
{
	struct stat_wait w = { port, key, want, -1 };
	(void)wait_until(stat_reached, &w, timeout_ms, 20);
	return w.value;
}

static long deliveries_of(const json_t *stats, const char *id)
{
	json_t *v = json_object_get(json_object_get(stats, "by_request"), id);
	return json_is_integer(v) ? (long)json_integer_value(v) : 0;
}

/* ---- the callback receiver: dropshipd's side, reduced to recording ---- */

struct recv_msg {
	char path[256];
	char id[256];
	char ts[32];
	char sig[256];
	char *body;
};

struct receiver {
	int fd;
	int port;
	SSL_CTX *ctx;
	pthread_t thread;
	atomic_int stop;
	int fail_first;              /* answer the first N requests 503 */
	pthread_mutex_t mu;
	int served;
	int n;
	struct recv_msg msgs[32];
};

/* Copies header name's value out of the header block (case-insensitive). */
static void header_value(const char *head, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	out[0] = '\0';
	for (const char *p = strstr(head, "\r\n"); p && p[2] != '\r' && p[2]; p = strstr(p + 2, "\r\n")) {
		const char *line = p + 2;
		if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
			const char *v = line + nl + 1;
			while (*v == ' ')
				v++;
			snprintf(out, cap, "%.*s", (int)strcspn(v, "\r"), v);
			return;
		}
	}
}

/* Reads one request and answers it. Returns 0 to keep the connection, -1 to close. */
static int receiver_serve_one(struct receiver *rv, SSL *ssl)
{
	char buf[65536];
	size_t len = 0;
	char *end = NULL;
	while (!end) {
		if (len >= sizeof buf - 1)
			return -1;
		int n = SSL_read(ssl, buf + len, (int)(sizeof buf - 1 - len));
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	*end = '\0';
	char clen[16];
	header_value(buf, "Content-Length", clen, sizeof clen);
	size_t hlen = (size_t)(end - buf) + 4, blen = (size_t)strtoul(clen, NULL, 10);
	if (hlen + blen >= sizeof buf)
		return -1;
	while (len < hlen + blen) {
		int n = SSL_read(ssl, buf + len, (int)(hlen + blen - len));
		if (n <= 0)
			return -1;
		len += (size_t)n;
	}
	pthread_mutex_lock(&rv->mu);
	int fail = rv->served++ < rv->fail_first;
	if (rv->n < (int)(sizeof rv->msgs / sizeof rv->msgs[0])) {
		struct recv_msg *m = &rv->msgs[rv->n++];
		sscanf(buf, "%*s %255s", m->path);
		header_value(buf, "webhook-id", m->id, sizeof m->id);
		header_value(buf, "webhook-timestamp", m->ts, sizeof m->ts);
		header_value(buf, "webhook-signature", m->sig, sizeof m->sig);
		m->body = strndup(buf + hlen, blen);
	}
	pthread_mutex_unlock(&rv->mu);
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
	static const char unavailable[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
	const char *reply = fail ? unavailable : ok;
	return SSL_write(ssl, reply, (int)strlen(reply)) > 0 ? 0 : -1;
}

/* One connection at a time; an idle keep-alive connection is closed after
 * 300 ms so the next one gets its turn. */
static void *receiver_main(void *arg)
{
	struct receiver *rv = arg;
	while (!atomic_load(&rv->stop)) {
		struct pollfd p = { rv->fd, POLLIN, 0 };
		if (poll(&p, 1, 50) <= 0)
			continue;
		int c = accept(rv->fd, NULL, NULL);
		if (c < 0)
			continue;
		struct timeval tv = { 0, 300000 };
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		SSL *ssl = SSL_new(rv->ctx);
		if (ssl && SSL_set_fd(ssl, c) == 1 && SSL_accept(ssl) == 1)
			while (!atomic_load(&rv->stop) && receiver_serve_one(rv, ssl) == 0)
				;
		if (ssl) {
			SSL_shutdown(ssl);
			SSL_free(ssl);
		}
		close(c);
	}
	return NULL;
}

static int receiver_start(struct receiver *rv, int fail_first)
{
	memset(rv, 0, sizeof *rv);
	pthread_mutex_init(&rv->mu, NULL);
	rv->fail_first = fail_first;
	char err[512];
	rv->ctx = tls_server_ctx_new(tls_cert, tls_key, err, sizeof err);
	if (!rv->ctx) {
		fprintf(stderr, "test_sim: receiver: %s\n", err);
		return -1;
	}
	rv->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof sa;
	if (rv->fd < 0 || bind(rv->fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(rv->fd, 16) < 0 ||
	    getsockname(rv->fd, (struct sockaddr *)&sa, &sl) < 0) {
		fprintf(stderr, "test_sim: receiver: %s\n", strerror(errno));
		return -1;
	}
	rv->port = ntohs(sa.sin_port);
	return pthread_create(&rv->thread, NULL, receiver_main, rv) == 0 ? 0 : -1;
}

static void receiver_stop(struct receiver *rv)
{
	atomic_store(&rv->stop, 1);
	if (rv->thread)
		pthread_join(rv->thread, NULL);
	if (rv->fd > 0)
		close(rv->fd);
	SSL_CTX_free(rv->ctx);
	for (int i = 0; i < rv->n; i++)
		free(rv->msgs[i].body);
	pthread_mutex_destroy(&rv->mu);
}

/* A receiver watched by receiver_wait, and how many messages it held last. */
struct msgs_wait {
	struct receiver *rv;
	int want, n;
};

static bool receiver_holds(void *arg)
{
	struct msgs_wait *w = arg;
	pthread_mutex_lock(&w->rv->mu);
	w->n = w->rv->n;
	pthread_mutex_unlock(&w->rv->mu);
	return w->n >= w->want;
}

/* Waits until the receiver holds at least want messages. Returns how many it has. */
static int receiver_wait(struct receiver *rv, int want, int timeout_ms)
{
	struct msgs_wait w = { rv, want, 0 };
	(void)wait_until(receiver_holds, &w, timeout_ms, 10);
	return w.n;
}

/* Checks message i: path, signature by acme's secret, type; returns its parsed body. */
static json_t *check_msg(struct receiver *rv, int i, const char *type, const char *id)
{
	pthread_mutex_lock(&rv->mu);
	struct recv_msg m = rv->msgs[i];
	pthread_mutex_unlock(&rv->mu);
	CU_ASSERT_STRING_EQUAL(m.path, "/v1/suppliers/acme/callbacks");
	const char *secrets[] = { SECRET };
	size_t blen = m.body ? strlen(m.body) : 0;
	CU_ASSERT_EQUAL(sig_verify_standard(secrets, 1, m.id, m.ts, m.sig, m.body, blen,
	                                    (int64_t)time(NULL), SIG_TOLERANCE_S), SIG_OK);
	char want_id[300];
	snprintf(want_id, sizeof want_id, "evt_%s_%s", id, strchr(type, '.') + 1);
	CU_ASSERT_STRING_EQUAL(m.id, want_id);
	json_t *b = m.body ? json_loads(m.body, 0, NULL) : NULL;
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_STRING_EQUAL(jstr(b, "type"), type);
	CU_ASSERT_STRING_EQUAL(jstr(b, "request_id"), id);
	CU_ASSERT_TRUE(json_is_string(json_object_get(b, "occurred_at")));
	return b;
}

/* Waits for the callbacks types (NULL-terminated) for id and checks them in order. */
static int expect_callbacks(struct receiver *rv, const char *id, const char *const types[])
{
	int want = 0;
	while (types[want])
		want++;
	int n = receiver_wait(rv, want, 5000);
	CU_ASSERT_EQUAL(n, want);
	for (int i = 0; i < n && i < want; i++)
		json_decref(check_msg(rv, i, types[i], id));
	return n == want;
}

/* Starts a receiver (answering the first fail_first requests 503) and a
 * simulator calling back to it with short delays plus extra flags. */
static int start_pair(struct receiver *rv, int fail_first, struct testsrv *s, const char *ship_ms,
                      const char *extra1, const char *extra2)
{
	if (receiver_start(rv, fail_first) < 0)
		return -1;
	char url[64];
	snprintf(url, sizeof url, "https://127.0.0.1:%d", rv->port);
	const char *extra[] = { "--callback-url", url, "--ca-file", tls_cert, "--accept-after-ms", "50",
	                        "--ship-after-ms", ship_ms, "--deliver-after-ms", "150", extra1, extra2, NULL };
	return start_acme(s, extra);
}

/* ---- suite ---- */

static int suite_init(void)
{
	const char *dir = testsrv_tls_dir();
	snprintf(tls_cert, sizeof tls_cert, "%s/server.crt", dir);
	snprintf(tls_key, sizeof tls_key, "%s/server.key", dir);
	const char *extra[] = { "--supplier", "beta=" SECRET_OTHER, NULL };
	return start_acme(&basic, extra);
}

static int suite_cleanup(void)
{
	return stop_acme(&basic) == 0 ? 0 : -1;
}

/* POSTs body (signed with secret, Idempotency-Key key) and expects status with error code. */
static void expect_error(const char *secret, const char *key, const char *body, int status,
                         const char *code)
{
	struct https_resp r;
	CU_ASSERT_EQUAL_FATAL(post_raw(basic.port, secret, key, body, &r), 0);
	CU_ASSERT_EQUAL(r.status, status);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, code));
	https_resp_free(&r);
}

static void test_valid_request_is_accepted(void)
{
	char id[64];
	new_id(id, sizeof id);
	char *body = fulfillment_body("fulfillment.requested", id);
	struct https_resp r;
	CU_ASSERT_EQUAL_FATAL(post_raw(basic.port, SECRET, id, body, &r), 0);
	CU_ASSERT_EQUAL(r.status, 202);
	json_t *j = json_loads(r.body, 0, NULL);
	CU_ASSERT_TRUE(json_is_true(json_object_get(j, "received")));
	CU_ASSERT_STRING_EQUAL(jstr(j, "request_id"), id);
	json_decref(j);
	https_resp_free(&r);
	free(body);
}

static void test_bad_signature_is_401(void)
{
	char id[64];
	new_id(id, sizeof id);
	char *body = fulfillment_body("fulfillment.requested", id);
	struct https_resp r;
	/* beta's secret is valid on this simulator, just not for acme. */
	expect_error(SECRET_OTHER, id, body, 401, "invalid_signature");
	char hdrs[128];
	snprintf(hdrs, sizeof hdrs, "Content-Type: application/json\r\nIdempotency-Key: %s\r\n", id);
	CU_ASSERT_EQUAL_FATAL(https_once(basic.port, "POST", FULFILL_PATH, hdrs, body, strlen(body), &r), 0);
	CU_ASSERT_EQUAL(r.status, 401);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "missing_signature"));
	https_resp_free(&r);
	free(body);
	json_t *st = testsrv_sim_stats(basic.port);
	CU_ASSERT_EQUAL(deliveries_of(st, id), 0);
	json_decref(st);
}

static void test_idempotency_key_required(void)
{
	char id[64];
	new_id(id, sizeof id);
	char *body = fulfillment_body("fulfillment.requested", id);
	expect_error(SECRET, NULL, body, 400, "missing_idempotency_key");
	expect_error(SECRET, "some-other-key", body, 400, "invalid_idempotency_key");
	free(body);
}

static void test_invalid_bodies_are_rejected(void)
{
	expect_error(SECRET, "k1", "{not json", 400, "invalid_json");
	expect_error(SECRET, "k2", "{\"type\":\"fulfillment.requested\",\"request_id\":\"k2\",\"items\":[]}",
	             422, "\"field\":\"items\"");
	expect_error(SECRET, "k3", "{\"type\":\"order.created\",\"request_id\":\"k3\"}", 422,
	             "\"field\":\"type\"");
	expect_error(SECRET, "k4", "{\"type\":\"fulfillment.requested\",\"request_id\":\"k4\","
	             "\"items\":[{\"sku\":\"A\",\"quantity\":0}]}", 422, "items[0].quantity");
}

static void test_repeat_is_a_counted_duplicate(void)
{
	char id[64];
	new_id(id, sizeof id);
	json_t *before = testsrv_sim_stats(basic.port);
	char *body = fulfillment_body("fulfillment.requested", id);
	struct https_resp r1, r2;
	CU_ASSERT_EQUAL_FATAL(post_raw(basic.port, SECRET, id, body, &r1), 0);
	CU_ASSERT_EQUAL_FATAL(post_raw(basic.port, SECRET, id, body, &r2), 0);
	CU_ASSERT_EQUAL(r1.status, 202);
	CU_ASSERT_EQUAL(r2.status, 200);
	CU_ASSERT_STRING_EQUAL(r1.body, r2.body);
	json_t *after = testsrv_sim_stats(basic.port);
	CU_ASSERT_EQUAL(testsrv_sim_stat(after, "duplicates"), testsrv_sim_stat(before, "duplicates") + 1);
	CU_ASSERT_EQUAL(testsrv_sim_stat(after, "accepted"), testsrv_sim_stat(before, "accepted") + 1);
	CU_ASSERT_EQUAL(testsrv_sim_stat(after, "requests"), testsrv_sim_stat(before, "requests") + 2);
	CU_ASSERT_EQUAL(deliveries_of(after, id), 2);
	CU_ASSERT_EQUAL(testsrv_sim_stat(after, "callbacks_sent"), 0);
	json_decref(before);
	json_decref(after);
	https_resp_free(&r1);
	https_resp_free(&r2);
	free(body);
}

static void test_unknown_supplier_and_paths(void)
{
	struct https_resp r;
	CU_ASSERT_EQUAL_FATAL(https_once(basic.port, "POST", "/suppliers/nobody/fulfillments", NULL, "{}", 2, &r), 0);
	CU_ASSERT_EQUAL(r.status, 404);
	https_resp_free(&r);
	CU_ASSERT_EQUAL_FATAL(https_once(basic.port, "GET", FULFILL_PATH, NULL, NULL, 0, &r), 0);
	CU_ASSERT_EQUAL(r.status, 405);
	https_resp_free(&r);
	CU_ASSERT_EQUAL_FATAL(https_once(basic.port, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	https_resp_free(&r);
	/* The second supplier has its own endpoint and secret. */
	char id[64];
	new_id(id, sizeof id);
	char *body = fulfillment_body("fulfillment.requested", id), hdrs[512], key[128];
	https_webhook_headers(SECRET_OTHER, "msg_beta", (int64_t)time(NULL), body, hdrs, sizeof hdrs);
	snprintf(key, sizeof key, "Idempotency-Key: %s\r\n", id);
	strncat(hdrs, key, sizeof hdrs - strlen(hdrs) - 1);
	CU_ASSERT_EQUAL_FATAL(https_once(basic.port, "POST", "/suppliers/beta/fulfillments", hdrs, body,
	                                 strlen(body), &r), 0);
	CU_ASSERT_EQUAL(r.status, 202);
	https_resp_free(&r);
	free(body);
}

static void test_status_override(void)
{
	struct testsrv s;
	const char *extra[] = { "--status", "500", NULL };
	CU_ASSERT_EQUAL_FATAL(start_acme(&s, extra), 0);
	char id[64];
	new_id(id, sizeof id);
	CU_ASSERT_EQUAL(post_type(s.port, "fulfillment.requested", id), 500);
	json_t *st = testsrv_sim_stats(s.port);
	CU_ASSERT_EQUAL(testsrv_sim_stat(st, "requests"), 1);
	CU_ASSERT_EQUAL(testsrv_sim_stat(st, "accepted"), 0);
	json_decref(st);
	CU_ASSERT_EQUAL(stop_acme(&s), 0);
}

static void test_fail_rate_one_answers_503(void)
{
	struct testsrv s;
	const char *extra[] = { "--fail-rate", "1", NULL };
	CU_ASSERT_EQUAL_FATAL(start_acme(&s, extra), 0);
	char id[64];
	new_id(id, sizeof id);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(post_type(s.port, "fulfillment.requested", id), 503);
	json_t *st = testsrv_sim_stats(s.port);
	CU_ASSERT_EQUAL(testsrv_sim_stat(st, "requests"), 3);
	CU_ASSERT_EQUAL(testsrv_sim_stat(st, "failed_injected"), 3);
	CU_ASSERT_EQUAL(testsrv_sim_stat(st, "accepted"), 0);
	CU_ASSERT_EQUAL(deliveries_of(st, id), 0);
	json_decref(st);
	CU_ASSERT_EQUAL(stop_acme(&s), 0);
}

/* Sends a signed fulfillment.requested on c without reading the answer. */
static int send_only(struct https_conn *c, const char *id)
{
	char hdrs[1024], head[2048];
	char *body = fulfillment_body("fulfillment.requested", id);
	https_webhook_headers(SECRET, "msg_raw", (int64_t)time(NULL), body, hdrs, sizeof hdrs);
	int n = snprintf(head, sizeof head, "POST " FULFILL_PATH " HTTP/1.1\r\nHost: localhost\r\n"
	                 "Content-Length: %zu\r\nIdempotency-Key: %s\r\n%s\r\n", strlen(body), id, hdrs);
	int rc = https_write(c, head, (size_t)n) == 0 && https_write(c, body, strlen(body)) == 0 ? 0 : -1;
	free(body);
	return rc;
}

/* A held answer must not hold the loop: /stats answers meanwhile. */
static void test_slow_answers_arrive(void)
{
	struct testsrv s;
	const char *extra[] = { "--slow-ms", "1000", NULL };
	CU_ASSERT_EQUAL_FATAL(start_acme(&s, extra), 0);
	char id[64];
	new_id(id, sizeof id);
	struct https_conn c;
	struct https_resp r;
	CU_ASSERT_EQUAL_FATAL(https_connect(&c, s.port, 5000), 0);
	CU_ASSERT_EQUAL(send_only(&c, id), 0);
	double t0 = wait_now_ms();
	json_t *st = testsrv_sim_stats(s.port);
	CU_ASSERT_PTR_NOT_NULL(st);
	/* Generous: a blocked loop would take the whole second. */
	CU_ASSERT_TRUE(wait_now_ms() - t0 < 800);
	json_decref(st);
	CU_ASSERT_EQUAL(https_read_response(&c, &r), 0);
	CU_ASSERT_EQUAL(r.status, 202);
	https_resp_free(&r);
	https_close(&c);
	CU_ASSERT_EQUAL(stop_acme(&s), 0);
}

/* A hung request is never answered. A client that gives up gets its
 * connection released; one still waiting at SIGTERM does not stop a clean exit. */
static void test_hang_rate_one_never_answers(void)
{
	struct testsrv s;
	const char *extra[] = { "--hang-rate", "1", "--log-level", "debug", NULL };
	CU_ASSERT_EQUAL_FATAL(start_acme(&s, extra), 0);
	char id[64];
	new_id(id, sizeof id);
	struct https_conn c, waiting;
	struct https_resp r;
	CU_ASSERT_EQUAL_FATAL(https_connect(&c, s.port, 400), 0);
	CU_ASSERT_EQUAL(send_only(&c, id), 0);
	CU_ASSERT_NOT_EQUAL(https_read_response(&c, &r), 0); /* timed out */
	https_resp_free(&r);
	https_close(&c);
	CU_ASSERT_TRUE(log_has(&s, "msg=\"client gave up\"", 5000));
	json_t *st = testsrv_sim_stats(s.port);
	CU_ASSERT_EQUAL(testsrv_sim_stat(st, "requests"), 1);
	CU_ASSERT_EQUAL(testsrv_sim_stat(st, "hung"), 1);
	CU_ASSERT_EQUAL(testsrv_sim_stat(st, "accepted"), 0);
	json_decref(st);
	CU_ASSERT_EQUAL_FATAL(https_connect(&waiting, s.port, 5000), 0);
	CU_ASSERT_EQUAL(send_only(&waiting, id), 0);
	CU_ASSERT_EQUAL(wait_stat(s.port, "hung", 2, 5000), 2);
	CU_ASSERT_EQUAL(stop_acme(&s), 0);
	https_close(&waiting);
}

/* SIGTERM before the simulator has read a request it was sent: a clean
 * exit 0 (the sanitizer build also checks nothing leaks). */
static void test_stop_with_request_in_flight(void)
{
	struct testsrv s;
	CU_ASSERT_EQUAL_FATAL(start_acme(&s, NULL), 0);
	char id[64];
	new_id(id, sizeof id);
	struct https_conn c;
	CU_ASSERT_EQUAL_FATAL(https_connect(&c, s.port, 5000), 0);
	CU_ASSERT_EQUAL(send_only(&c, id), 0);
	CU_ASSERT_EQUAL(stop_acme(&s), 0);
	https_close(&c);
}

/* The same seed and the same arrivals give the same injected failures. */
static void test_seed_reproduces_a_run(void)
{
	char runs[2][16];
	for (int k = 0; k < 2; k++) {
		struct testsrv s;
		const char *extra[] = { "--fail-rate", "0.5", "--seed", "7", NULL };
		CU_ASSERT_EQUAL_FATAL(start_acme(&s, extra), 0);
		for (int i = 0; i < 15; i++) {
			char id[32];
			snprintf(id, sizeof id, "seeded-%d", i);
			int st = post_type(s.port, "fulfillment.requested", id);
			runs[k][i] = st == 503 ? 'F' : st == 202 ? '.' : '?';
		}
		runs[k][15] = '\0';
		CU_ASSERT_EQUAL(stop_acme(&s), 0);
	}
	CU_ASSERT_STRING_EQUAL(runs[0], runs[1]);
	CU_ASSERT_PTR_NOT_NULL(strchr(runs[0], 'F'));
	CU_ASSERT_PTR_NOT_NULL(strchr(runs[0], '.'));
	CU_ASSERT_PTR_NULL(strchr(runs[0], '?'));
}

static void test_callbacks_accept_ship_deliver(void)
{
	struct receiver rv;
	struct testsrv s;
	CU_ASSERT_EQUAL_FATAL(start_pair(&rv, 0, &s, "100", NULL, NULL), 0);
	char id[64];
	new_id(id, sizeof id);
	CU_ASSERT_EQUAL(post_type(s.port, "fulfillment.requested", id), 202);
	/* A repeat schedules nothing more. */
	CU_ASSERT_EQUAL(post_type(s.port, "fulfillment.requested", id), 200);
	static const char *const seq_types[] = { "fulfillment.accepted", "fulfillment.shipped",
	                                         "fulfillment.delivered", NULL };
	if (expect_callbacks(&rv, id, seq_types)) {
		json_t *shipped = check_msg(&rv, 1, "fulfillment.shipped", id);
		json_t *tr = json_object_get(shipped, "tracking");
		const char *number = jstr(tr, "number"), *carrier = jstr(tr, "carrier");
		char url[256] = "";
		/* a real carrier, a number of its form, its tracking page */
		CU_ASSERT_TRUE(strcmp(carrier, "UPS") == 0 || strcmp(carrier, "USPS") == 0 ||
		               strcmp(carrier, "FedEx") == 0 || strcmp(carrier, "DHL Express") == 0);
		CU_ASSERT_TRUE(strcmp(carrier, "UPS") != 0 || (strlen(number) == 18 && strncmp(number, "1Z", 2) == 0));
		CU_ASSERT_TRUE(strcmp(carrier, "USPS") != 0 || (strlen(number) == 22 && strncmp(number, "94001", 5) == 0));
		CU_ASSERT_TRUE(strcmp(carrier, "FedEx") != 0 || strlen(number) == 12);
		CU_ASSERT_TRUE(strcmp(carrier, "DHL Express") != 0 || strlen(number) == 10);
		CU_ASSERT_TRUE(platform_tracking_url(carrier, number, url, sizeof url));
		CU_ASSERT_STRING_EQUAL(jstr(tr, "url"), url);
		json_decref(shipped);
	}
	wait_ms(300);
	CU_ASSERT_EQUAL(receiver_wait(&rv, 4, 0), 3); /* nothing more, despite the repeat */
	json_t *st = testsrv_sim_stats(s.port);
	CU_ASSERT_EQUAL(testsrv_sim_stat(st, "callbacks_sent"), 3);
	CU_ASSERT_EQUAL(testsrv_sim_stat(st, "callbacks_failed"), 0);
	CU_ASSERT_EQUAL(testsrv_sim_stat(st, "duplicates"), 1);
	json_decref(st);
	CU_ASSERT_EQUAL(stop_acme(&s), 0);
	receiver_stop(&rv);
}

/* A simulator rejecting everything (reason flag extra, or NULL) sends one
 * fulfillment.rejected with reason want, and nothing after it. */
static void check_rejection(const char *extra, const char *want)
{
	struct receiver rv;
	struct testsrv s;
	CU_ASSERT_EQUAL_FATAL(start_pair(&rv, 0, &s, "100", "--reject-rate=1", extra), 0);
	char id[64];
	new_id(id, sizeof id);
	CU_ASSERT_EQUAL(post_type(s.port, "fulfillment.requested", id), 202);
	static const char *const types[] = { "fulfillment.rejected", NULL };
	if (expect_callbacks(&rv, id, types)) {
		json_t *b = check_msg(&rv, 0, "fulfillment.rejected", id);
		CU_ASSERT_STRING_EQUAL(jstr(b, "reason"), want);
		json_decref(b);
	}
	wait_ms(300);
	CU_ASSERT_EQUAL(receiver_wait(&rv, 2, 0), 1);
	CU_ASSERT_EQUAL(stop_acme(&s), 0);
	receiver_stop(&rv);
}

static void test_callback_rejected_out_of_stock(void)
{
	check_rejection(NULL, "out_of_stock");
}

static void test_callback_rejected_with_reason(void)
{
	check_rejection("--reject-reason=capacity", "capacity");
}

static void test_failed_callback_is_retried(void)
{
	struct receiver rv;
	struct testsrv s;
	CU_ASSERT_EQUAL_FATAL(start_pair(&rv, 1, &s, "100", NULL, NULL), 0);
	char id[64];
	new_id(id, sizeof id);
	CU_ASSERT_EQUAL(post_type(s.port, "fulfillment.requested", id), 202);
	/* accepted twice (503, then 200), then shipped and delivered, in order. */
	static const char *const types[] = { "fulfillment.accepted", "fulfillment.accepted",
	                                     "fulfillment.shipped", "fulfillment.delivered", NULL };
	expect_callbacks(&rv, id, types);
	json_t *st = testsrv_sim_stats(s.port);
	CU_ASSERT_EQUAL(testsrv_sim_stat(st, "callbacks_retried"), 1);
	CU_ASSERT_EQUAL(testsrv_sim_stat(st, "callbacks_sent"), 3);
	json_decref(st);
	CU_ASSERT_TRUE(log_has(&s, "msg=\"callback failed\"", 0));
	CU_ASSERT_EQUAL(stop_acme(&s), 0);
	receiver_stop(&rv);
}

static void test_cancel_before_shipping(void)
{
	struct receiver rv;
	struct testsrv s;
	CU_ASSERT_EQUAL_FATAL(start_pair(&rv, 0, &s, "60000", NULL, NULL), 0);
	char id[64];
	new_id(id, sizeof id);
	CU_ASSERT_EQUAL(post_type(s.port, "fulfillment.requested", id), 202);
	CU_ASSERT_EQUAL(receiver_wait(&rv, 1, 5000), 1);
	CU_ASSERT_EQUAL(post_type(s.port, "fulfillment.cancel_requested", id), 202);
	CU_ASSERT_EQUAL(post_type(s.port, "fulfillment.cancel_requested", id), 200);
	static const char *const types[] = { "fulfillment.accepted", "fulfillment.cancelled", NULL };
	expect_callbacks(&rv, id, types);
	json_t *st = testsrv_sim_stats(s.port);
	CU_ASSERT_EQUAL(testsrv_sim_stat(st, "cancels"), 1);
	CU_ASSERT_EQUAL(deliveries_of(st, id), 1);
	json_decref(st);
	CU_ASSERT_EQUAL(stop_acme(&s), 0);
	receiver_stop(&rv);
}

/* A CA that did not sign the receiver's certificate: nothing gets through. */
static void test_callback_peer_is_verified(void)
{
	char other[64];
	snprintf(other, sizeof other, "/tmp/dropship-test-sim-ca.%d", (int)getpid());
	CU_ASSERT_EQUAL_FATAL(testsrv_make_cert(other), 0);
	char ca[128];
	snprintf(ca, sizeof ca, "%s/server.crt", other);
	struct receiver rv;
	struct testsrv s;
	CU_ASSERT_EQUAL_FATAL(receiver_start(&rv, 0), 0);
	char url[64];
	snprintf(url, sizeof url, "https://127.0.0.1:%d", rv.port);
	const char *extra[] = { "--callback-url", url, "--ca-file", ca, "--accept-after-ms", "0", NULL };
	CU_ASSERT_EQUAL_FATAL(start_acme(&s, extra), 0);
	char id[64];
	new_id(id, sizeof id);
	CU_ASSERT_EQUAL(post_type(s.port, "fulfillment.requested", id), 202);
	CU_ASSERT_TRUE(log_has(&s, "certificate verify failed", 5000));
	CU_ASSERT_EQUAL(receiver_wait(&rv, 1, 0), 0);
	CU_ASSERT_EQUAL(stop_acme(&s), 0);
	receiver_stop(&rv);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", other);
	CU_ASSERT_EQUAL(system(cmd), 0);
}

static int run_sim(const char *const args[], char **err)
{
	const char *argv[16] = { proc_build_path("dropship-supplier-sim") };
	for (size_t i = 0; args[i] && i < 14; i++)
		argv[i + 1] = args[i];
	return proc_run(argv, NULL, NULL, err);
}

static void test_usage_errors_name_the_flag(void)
{
	struct { const char *args[10]; const char *flag; } cases[] = {
		{ { "--tls-key", "k", "--supplier", SUPPLIER_ARG, NULL }, "--tls-cert" },
		{ { "--tls-cert", "c", "--tls-key", "k", NULL }, "--supplier" },
		{ { "--tls-cert", "c", "--tls-key", "k", "--supplier", SUPPLIER_ARG, "--fail-rate", "2" }, "--fail-rate" },
		{ { "--tls-cert", "c", "--tls-key", "k", "--supplier", "acme=nothex", NULL }, "--supplier" },
		{ { "--tls-cert", "c", "--tls-key", "k", "--supplier", SUPPLIER_ARG, "--status", "42" }, "--status" },
		{ { "--tls-cert", "c", "--tls-key", "k", "--supplier", SUPPLIER_ARG, "--callback-url", "http://x" }, "--callback-url" },
		{ { "--tls-cert", "c", "--tls-key", "k", "--supplier", SUPPLIER_ARG, "--slow-ms", "-1" }, "--slow-ms" },
		{ { "--tls-cert", "c", "--tls-key", "k", "--supplier", SUPPLIER_ARG, "--reject-reason", "Out Of" },
		  "--reject-reason" },
		{ { "--no-such-flag", NULL }, "--no-such-flag" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *err = NULL;
		CU_ASSERT_EQUAL(run_sim(cases[i].args, &err), 2);
		CU_ASSERT_TRUE(err && strstr(err, cases[i].flag));
		free(err);
	}
	const char *argv[] = { proc_build_path("dropship-supplier-sim"), "--help", NULL };
	char *out = NULL;
	CU_ASSERT_EQUAL(proc_run(argv, NULL, &out, NULL), 0);
	CU_ASSERT_TRUE(out && strstr(out, "example:"));
	CU_ASSERT_TRUE(out && strstr(out, "--deliver-after-ms"));
	free(out);
}

int main(void)
{
	static const struct harness_test tests[] = {
		{ "valid request is accepted (202)", test_valid_request_is_accepted },
		{ "bad or missing signature is 401", test_bad_signature_is_401 },
		{ "Idempotency-Key required and equal to request_id (400)", test_idempotency_key_required },
		{ "invalid bodies are 400/422", test_invalid_bodies_are_rejected },
		{ "repeat is 200 and counted as duplicate", test_repeat_is_a_counted_duplicate },
		{ "unknown supplier 404, wrong method 405, second supplier", test_unknown_supplier_and_paths },
		{ "--status 500 answers 500", test_status_override },
		{ "--fail-rate 1 answers 503", test_fail_rate_one_answers_503 },
		{ "--slow-ms answers arrive, loop not blocked", test_slow_answers_arrive },
		{ "--hang-rate 1 never answers", test_hang_rate_one_never_answers },
		{ "SIGTERM with a request in flight exits 0", test_stop_with_request_in_flight },
		{ "--seed reproduces a run", test_seed_reproduces_a_run },
		{ "callbacks: accepted, shipped, delivered, signed", test_callbacks_accept_ship_deliver },
		{ "callbacks: --reject-rate 1 rejects out_of_stock", test_callback_rejected_out_of_stock },
		{ "callbacks: --reject-reason names the rejections' reason", test_callback_rejected_with_reason },
		{ "callbacks: a failed one is retried in order", test_failed_callback_is_retried },
		{ "callbacks: cancel before shipping", test_cancel_before_shipping },
		{ "callbacks: dropshipd's certificate is verified", test_callback_peer_is_verified },
		{ "usage errors exit 2 naming the flag; --help", test_usage_errors_name_the_flag },
		{ NULL, NULL },
	};
	return harness_main("sim", suite_init, suite_cleanup, tests);
}
