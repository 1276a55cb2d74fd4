/* internal/client against local HTTPS servers: what an attempt records when
 * a supplier's certificate is refused, nothing listens, the handshake or the
 * response never comes, and that the good cases (names, IPv4 and IPv6
 * literals) get through. Certificates are made here with OpenSSL. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "client/client.h"
#include "mem/mem.h"
#include "support/certs.h"
#include "support/harness.h"
#include "support/receiver.h"

#define TIMEOUT_MS 1500
#define DAY CERTS_DAY

/* ---- certificates ---- */

static char dir[] = "/tmp/dropship-outbound.XXXXXX";
static const char *path_of(const char *name, const char *ext, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/%s.%s", dir, name, ext);
	return buf;
}

#define SAN_LOCAL CERTS_SAN_LOCAL

/* The servers' certificates: name, subjectAltName, validity, issuer. */
static const struct {
	const char *name, *san;
	long from, to;
	int issuer;           /* 0 self, 1 the trusted CA, 2 a CA the client does not know */
} certs[] = {
	{ "good", SAN_LOCAL, -DAY, DAY, 1 },
	{ "self-signed", SAN_LOCAL, -DAY, DAY, 0 },
	{ "expired", SAN_LOCAL, -2 * DAY, -DAY, 1 },
	{ "other-name", "DNS:other.example", -DAY, DAY, 1 },
	{ "name-only", "DNS:localhost", -DAY, DAY, 1 },
	{ "unknown-ca", SAN_LOCAL, -DAY, DAY, 2 },
};
#define NCERTS (sizeof certs / sizeof certs[0])

static int make_certs(void)
{
	EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *other_key = EVP_EC_gen("P-256");
	X509 *ca = ca_key ? certs_new(ca_key, "dropship test CA", NULL, -DAY, DAY, 1, NULL, NULL) : NULL;
	X509 *other = other_key ? certs_new(other_key, "another CA", NULL, -DAY, DAY, 1, NULL, NULL) : NULL;
	int rc = ca && other && certs_write(dir, "ca", ca, ca_key) == 0 ? 0 : -1;
	for (size_t i = 0; rc == 0 && i < NCERTS; i++) {
		EVP_PKEY *key = EVP_EC_gen("P-256");
		X509 *issuer = certs[i].issuer == 1 ? ca : certs[i].issuer == 2 ? other : NULL;
		EVP_PKEY *issuer_key = certs[i].issuer == 1 ? ca_key : certs[i].issuer == 2 ? other_key : NULL;
		X509 *x = key ? certs_new(key, "localhost", certs[i].san, certs[i].from, certs[i].to, 0, issuer,
		                         issuer_key) : NULL;
		rc = x && certs_write(dir, certs[i].name, x, key) == 0 ? 0 : -1;
		X509_free(x);
		EVP_PKEY_free(key);
	}
	X509_free(ca);
	X509_free(other);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(other_key);
	return rc;
}

/* ---- servers ---- */

static struct receiver rx[NCERTS];
static struct receiver rx6;          /* "good" on ::1, when the machine has IPv6 loopback */
static int have_v6;

static int port_of(const char *name)
{
	for (size_t i = 0; i < NCERTS; i++)
		if (strcmp(certs[i].name, name) == 0)
			return rx[i].port;
	return 0;
}

/* A server that misbehaves: a plain-HTTP one, one that resets the
 * connection, and TLS ones (the "good" certificate) that read the request
 * and then close or say nothing. */
enum raw_mode { RAW_PLAIN_HTTP, RAW_RESET, RAW_TLS_CLOSE, RAW_TLS_SILENT };

struct raw {
	int fd, port, stop;
	enum raw_mode mode;
	SSL_CTX *ctx;
	pthread_t thread;
};

static struct raw plain, resetter, closer, silent;

/* Reads what comes on c within ms: > 0 bytes, 0 when nothing came, -1 at
 * the end of the stream or on an error. */
static int raw_read(int c, SSL *ssl, int ms)
{
	char buf[4096];
	struct pollfd p = { c, POLLIN, 0 };
	if (poll(&p, 1, ms) == 0)
		return 0;
	int n = ssl ? SSL_read(ssl, buf, sizeof buf) : (int)recv(c, buf, sizeof buf, 0);
	return n > 0 ? n : -1;
}

static void raw_serve(struct raw *r, int c)
{
	static const char resp[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
	if (r->mode == RAW_PLAIN_HTTP || r->mode == RAW_RESET) {
		if (raw_read(c, NULL, 2000) <= 0)
			return;
		if (r->mode == RAW_PLAIN_HTTP) {
			(void)!send(c, resp, sizeof resp - 1, MSG_NOSIGNAL);
		} else {
			struct linger lg = { 1, 0 }; /* the close sends a RST */
			setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		}
		return;
	}
	SSL *ssl = SSL_new(r->ctx);
	SSL_set_fd(ssl, c);
	struct timeval tv = { 2, 0 };
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (SSL_accept(ssl) == 1 && raw_read(c, ssl, 2000) > 0) {
		if (r->mode == RAW_TLS_CLOSE) /* once all is read: unread bytes would make the close a reset */
			while (raw_read(c, ssl, 200) > 0)
				;
		else /* until the client gives up */
			while (!r->stop && raw_read(c, ssl, 100) >= 0)
				;
	}
	SSL_free(ssl);
}

static void *raw_main(void *arg)
{
	struct raw *r = arg;
	int c;
	while ((c = receiver_accept(r->fd, &r->stop)) >= 0) {
		raw_serve(r, c);
		close(c);
	}
	return NULL;
}

static int raw_start(struct raw *r, enum raw_mode mode)
{
	char crt[300], key[300];
	memset(r, 0, sizeof *r);
	r->mode = mode;
	if (mode == RAW_TLS_CLOSE || mode == RAW_TLS_SILENT) {
		path_of("good", "crt", crt, sizeof crt);
		path_of("good", "key", key, sizeof key);
		r->ctx = SSL_CTX_new(TLS_server_method());
		if (!r->ctx || SSL_CTX_use_certificate_chain_file(r->ctx, crt) != 1 ||
		    SSL_CTX_use_PrivateKey_file(r->ctx, key, SSL_FILETYPE_PEM) != 1)
			return -1;
	}
	r->fd = receiver_listen("127.0.0.1", 16, &r->port);
	if (r->fd < 0)
		return -1;
	return pthread_create(&r->thread, NULL, raw_main, r) == 0 ? 0 : -1;
}

static void raw_stop(struct raw *r)
{
	r->stop = 1;
	if (r->thread)
		pthread_join(r->thread, NULL);
	if (r->fd > 0)
		close(r->fd);
	SSL_CTX_free(r->ctx);
}

/* A port on addr where nothing listens (bound, then closed). */
static int free_port(const char *addr)
{
	int port = 0, fd = receiver_listen(addr, 1, &port);
	if (fd < 0)
		return 0;
	close(fd);
	return port;
}

/* ---- the client ---- */

static struct event_base *base;
static struct client *cl;          /* allow_private: the servers are on loopback */
static struct client *strict;      /* the address rule on */

struct outcome {
	int calls;
	int status;
	int retryable;
	char error[512];
};

static void on_response(const struct client_response *resp, void *arg)
{
	struct outcome *o = arg;
	o->calls++;
	o->status = resp->status;
	o->retryable = resp->retryable;
	snprintf(o->error, sizeof o->error, "%s", resp->error ? resp->error : "");
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* POSTs body to url and runs the loop until the callback has run (which
 * must not happen inside client_post, and only once). */
static struct outcome post_with(struct client *c, const char *url, const char *body)
{
	struct outcome o = { 0 };
	client_post(c, url, NULL, body, strlen(body), on_response, &o);
	CU_ASSERT_EQUAL(o.calls, 0);
	double give_up = now_s() + TIMEOUT_MS / 1000.0 + 10;
	while (!o.calls && now_s() < give_up)
		event_base_loop(base, EVLOOP_ONCE);
	/* A second callback would come from a later iteration. */
	event_base_loop(base, EVLOOP_NONBLOCK);
	CU_ASSERT_EQUAL(o.calls, 1);
	printf("    %s -> %d %s\n", url, o.status, o.error);
	return o;
}

static struct outcome post(const char *url)
{
	return post_with(cl, url, "{}");
}

/* The request failed, retryably, with exactly this text. */
static void expect_error(const char *url, const char *error)
{
	struct outcome o = post(url);
	CU_ASSERT_EQUAL(o.status, 0);
	CU_ASSERT_EQUAL(o.retryable, 1);
	CU_ASSERT_STRING_EQUAL(o.error, error);
}

static int init(void)
{
	mem_use_for_libraries();
	char ca[300], crt[300], key[300], err[256];
	if (!mkdtemp(dir) || make_certs() < 0) {
		fprintf(stderr, "cannot make the test certificates in %s\n", dir);
		return -1;
	}
	for (size_t i = 0; i < NCERTS; i++)
		if (receiver_start(&rx[i], path_of(certs[i].name, "crt", crt, sizeof crt),
		                   path_of(certs[i].name, "key", key, sizeof key)) < 0)
			return -1;
	have_v6 = receiver_start_on(&rx6, "::1", path_of("good", "crt", crt, sizeof crt),
	                            path_of("good", "key", key, sizeof key)) == 0;
	if (!have_v6)
		printf("no IPv6 loopback (cannot listen on ::1): the IPv6 connections are not tried\n");
	if (raw_start(&plain, RAW_PLAIN_HTTP) < 0 || raw_start(&resetter, RAW_RESET) < 0 ||
	    raw_start(&closer, RAW_TLS_CLOSE) < 0 || raw_start(&silent, RAW_TLS_SILENT) < 0)
		return -1;
	base = event_base_new();
	struct client_options opt = {
		.ca_file = path_of("ca", "crt", ca, sizeof ca),
		.allow_private = 1,
		.timeout_ms = TIMEOUT_MS,
	};
	cl = base ? client_new(base, &opt, err, sizeof err) : NULL;
	opt.allow_private = 0;
	strict = cl ? client_new(base, &opt, err, sizeof err) : NULL;
	if (!strict) {
		fprintf(stderr, "client_new: %s\n", err);
		return -1;
	}
	return 0;
}

static int cleanup(void)
{
	client_free(cl);
	client_free(strict);
	if (base)
		event_base_free(base);
	for (size_t i = 0; i < NCERTS; i++)
		receiver_stop(&rx[i]);
	if (have_v6)
		receiver_stop(&rx6);
	raw_stop(&plain);
	raw_stop(&resetter);
	raw_stop(&closer);
	raw_stop(&silent);
	char path[300];
	for (size_t i = 0; i < NCERTS; i++) {
		unlink(path_of(certs[i].name, "crt", path, sizeof path));
		unlink(path_of(certs[i].name, "key", path, sizeof path));
	}
	unlink(path_of("ca", "crt", path, sizeof path));
	unlink(path_of("ca", "key", path, sizeof path));
	rmdir(dir);
	return 0;
}

/* ---- tests ---- */

/* The request reached r with its body and this Host header. */
static void expect_received(struct receiver *r, const char *marker, const char *host)
{
	char *headers = NULL, *body = NULL, want[128];
	CU_ASSERT_FATAL(receiver_find(r, marker, &headers, &body) >= 0);
	snprintf(want, sizeof want, "\r\nHost: %s\r\n", host);
	CU_ASSERT_PTR_NOT_NULL(strstr(headers, want));
	free(headers);
	free(body);
}

static void test_valid_certificates(void)
{
	char url[128], host[64];
	int port = port_of("good");
	snprintf(url, sizeof url, "https://localhost:%d/hook", port);
	struct outcome o = post_with(cl, url, "{\"n\":\"by-name\"}");
	CU_ASSERT_EQUAL(o.status, 200);
	CU_ASSERT_STRING_EQUAL(o.error, "");
	snprintf(host, sizeof host, "localhost:%d", port);
	expect_received(&rx[0], "by-name", host);

	snprintf(url, sizeof url, "https://127.0.0.1:%d/hook", port);
	o = post_with(cl, url, "{\"n\":\"by-ipv4\"}");
	CU_ASSERT_EQUAL(o.status, 200);
	snprintf(host, sizeof host, "127.0.0.1:%d", port);
	expect_received(&rx[0], "by-ipv4", host);
}

static void test_ipv6_literal(void)
{
	if (!have_v6) {
		printf("    skipped: no IPv6 loopback on this machine\n");
		return;
	}
	char url[128], host[64];
	snprintf(url, sizeof url, "https://[::1]:%d/hook?x=1", rx6.port);
	struct outcome o = post_with(cl, url, "{\"n\":\"by-ipv6\"}");
	CU_ASSERT_EQUAL(o.status, 200);
	CU_ASSERT_STRING_EQUAL(o.error, "");
	snprintf(host, sizeof host, "[::1]:%d", rx6.port);
	expect_received(&rx6, "by-ipv6", host);

	snprintf(url, sizeof url, "https://[::1]:%d/", free_port("::1"));
	expect_error(url, "connection refused");
}

static void test_refused_certificates(void)
{
	static const struct {
		const char *cert, *host, *error;
	} cases[] = {
		{ "self-signed", "localhost", "certificate verify failed: self-signed certificate" },
		{ "expired", "localhost", "certificate verify failed: certificate has expired" },
		{ "other-name", "localhost", "certificate verify failed: hostname mismatch" },
		{ "name-only", "127.0.0.1", "certificate verify failed: IP address mismatch" },
		{ "unknown-ca", "localhost", "certificate verify failed: unable to get local issuer certificate" },
		{ "self-signed", "127.0.0.1", "certificate verify failed: self-signed certificate" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char url[128];
		snprintf(url, sizeof url, "https://%s:%d/", cases[i].host, port_of(cases[i].cert));
		expect_error(url, cases[i].error);
	}
	/* Nothing was delivered past a refused certificate. */
	for (size_t i = 1; i < NCERTS; i++)
		CU_ASSERT_EQUAL(receiver_count(&rx[i], "{}", NULL), 0);
}

static void test_network_failures(void)
{
	char url[128];
	snprintf(url, sizeof url, "https://127.0.0.1:%d/", free_port("127.0.0.1"));
	expect_error(url, "connection refused");
	snprintf(url, sizeof url, "https://127.0.0.1:%d/", resetter.port);
	expect_error(url, "connection reset");

	/* A plain-HTTP port behind an https:// URL: OpenSSL's own reason. */
	snprintf(url, sizeof url, "https://127.0.0.1:%d/", plain.port);
	struct outcome o = post(url);
	char want[160];
	snprintf(want, sizeof want, "TLS handshake failed: %s",
	         ERR_reason_error_string(ERR_PACK(ERR_LIB_SSL, 0, SSL_R_WRONG_VERSION_NUMBER)));
	CU_ASSERT_STRING_EQUAL(o.error, want);
	CU_ASSERT_EQUAL(o.retryable, 1);

	/* connect(2) fails at once: no route to a multicast address. */
	expect_error("https://224.0.0.1:9/", "network is unreachable");
	/* The handshake went through; the server closed without answering. */
	snprintf(url, sizeof url, "https://localhost:%d/", closer.port);
	expect_error(url, "connection closed before the response");

	o = post("https://nothing-here.invalid/");
	CU_ASSERT_EQUAL(o.status, 0);
	CU_ASSERT_EQUAL(strncmp(o.error, "cannot resolve nothing-here.invalid: ", 37), 0);
}

static void test_timeouts(void)
{
	char url[128];
	/* Accepted by the kernel, never by a TLS server. */
	int port, fd = receiver_listen("127.0.0.1", 16, &port);
	CU_ASSERT_FATAL(fd >= 0);
	snprintf(url, sizeof url, "https://127.0.0.1:%d/", port);
	double t0 = now_s();
	expect_error(url, "timeout: TLS handshake");
	CU_ASSERT(now_s() - t0 >= TIMEOUT_MS / 1000.0 - 0.05);
	close(fd);

	/* The request went through and no answer came. */
	snprintf(url, sizeof url, "https://localhost:%d/", silent.port);
	expect_error(url, "timeout: response");

	/* A full accept queue drops the SYN: the connect itself never ends. */
	fd = receiver_listen("127.0.0.1", 0, &port);
	CU_ASSERT_FATAL(fd >= 0);
	int fillers[4], n = 0, dropped = 0;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	while (n < 4 && !dropped) {
		int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		fillers[n++] = c;
		if (connect(c, (struct sockaddr *)&sa, sizeof sa) == 0)
			continue;
		struct pollfd p = { c, POLLOUT, 0 };
		dropped = poll(&p, 1, 300) == 0;
	}
	if (dropped) {
		snprintf(url, sizeof url, "https://127.0.0.1:%d/", port);
		expect_error(url, "timeout: connect");
	} else {
		printf("    skipped the connect timeout: this kernel completes connections past the backlog\n");
	}
	while (n > 0)
		close(fillers[--n]);
	close(fd);
}

/* A literal is judged by the address rule as it is, without a lookup; a
 * name by what it resolves to. */
static void test_private_addresses(void)
{
	static const struct {
		const char *url, *error;
	} cases[] = {
		{ "https://[::1]:9443/path", "::1 is a private or loopback address; refused"
		                             " (dispatch.allow_private_endpoints)" },
		{ "https://[fd12:3456::1]/x", "fd12:3456::1 is a private or loopback address; refused"
		                              " (dispatch.allow_private_endpoints)" },
		{ "https://[fe80::1]/", "fe80::1 is a private or loopback address; refused"
		                        " (dispatch.allow_private_endpoints)" },
		{ "https://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1 is a private or loopback address; refused"
		                                 " (dispatch.allow_private_endpoints)" },
		{ "https://127.0.0.1:9443/", "127.0.0.1 is a private or loopback address; refused"
		                             " (dispatch.allow_private_endpoints)" },
		{ "https://localhost:9443/", "localhost resolves to a private or loopback address (127.0.0.1);"
		                             " refused (dispatch.allow_private_endpoints)" },
		{ "https://[fe80::1%25eth0]/", "bad IPv6 literal in brackets" },
		{ "https://::1/", "an IPv6 host must be in brackets: https://[::1]/" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct outcome o = post_with(strict, cases[i].url, "{}");
		CU_ASSERT_EQUAL(o.status, 0);
		CU_ASSERT_EQUAL(o.retryable, 0);
		CU_ASSERT_STRING_EQUAL(o.error, cases[i].error);
	}
	/* A public literal passes the rule and gets as far as the network. */
	struct outcome o = post_with(strict, "https://[2001:db8::1]:9/", "{}");
	CU_ASSERT_EQUAL(o.status, 0);
	CU_ASSERT_PTR_NULL(strstr(o.error, "resolve"));
	CU_ASSERT_PTR_NULL(strstr(o.error, "private"));
}

static const struct harness_test tests[] = {
	{ "valid certificate, by name and IPv4 literal", test_valid_certificates },
	{ "IPv6 literal", test_ipv6_literal },
	{ "refused certificates say why", test_refused_certificates },
	{ "refused, reset, not TLS, unresolvable", test_network_failures },
	{ "timeouts say which step", test_timeouts },
	{ "private addresses, IPv6 literals included", test_private_addresses },
	{ NULL, NULL },
};

int main(void)
{
	return harness_main("outbound", init, cleanup, tests);
}
