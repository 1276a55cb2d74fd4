#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "client/client.h"
#include "mem/mem.h"
#include "netcheck/netcheck.h"
#include "tls/tls.h"

/* Idle connections kept per (host, port); more are closed after use. As
 * many as the dispatcher has deliveries in flight: suppliers often share a
 * host, and a connection closed here is a TLS handshake paid again later. */
#define CLIENT_IDLE_PER_KEY 64

enum client_conn_state {
	CLIENT_CONN_IDLE,   /* connected, reusable */
	CLIENT_CONN_BUSY,   /* a request in flight */
	CLIENT_CONN_DEAD,   /* closed or failed; freed from a deferred callback */
};

struct client_conn {
	struct client *c;
	struct evhttp_connection *evcon;
	char key[300];                 /* host|port */
	enum client_conn_state state;
	int nodelay;                   /* TCP_NODELAY set on its socket */
	struct tls_client_diag diag;   /* what its TLS layer saw go wrong (tls_client_watch) */
	struct client_conn *next;
};

enum client_call_state {
	CLIENT_CALL_RESOLVING,
	CLIENT_CALL_SENDING,
	CLIENT_CALL_DONE,
};

/* One client_request. Owned by the client from client_request until its
 * callback has run (client_finish frees it). */
struct client_call {
	struct client *c;
	enum client_call_state state;
	client_cb cb;
	void *arg;
	char host[256], port[8], path[1024], key[300];
	enum evhttp_cmd_type method;
	char **headers;
	char *body;                           /* NULL: the request has none */
	size_t len;
	struct client_conn *conn;
	struct evhttp_request *req;
	struct evdns_getaddrinfo_request *dns;
	struct event *deadline;
	struct timespec start;
	const char *error;
	int retryable;
	int has_http_error;                   /* evhttp reported http_error for the request */
	enum evhttp_request_error http_error;
	char errbuf[512];
	struct client_call *next;
};

struct client {
	struct event_base *base;
	struct evdns_base *dns;
	SSL_CTX *ctx;
	struct client_options opt;
	struct client_conn *conns;
	struct client_call *calls;
	int inflight;
};

static long client_elapsed_ms(const struct timespec *start)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1000L + (now.tv_nsec - start->tv_nsec) / 1000000L;
}

/* ---- connections ---- */

static void client_conn_unlink(struct client_conn *cc)
{
	for (struct client_conn **p = &cc->c->conns; *p; p = &(*p)->next)
		if (*p == cc) {
			*p = cc->next;
			return;
		}
}

/* Frees a connection. Its SSL stops reporting into cc first: libevent may
 * free the SSL later than this. */
static void client_conn_destroy(struct client_conn *cc)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(cc->evcon);
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	if (ssl)
		tls_client_watch(ssl, NULL);
	evhttp_connection_free(cc->evcon);
	free(cc);
}

static void client_conn_free_deferred(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	client_conn_destroy(arg);
}

/* Retires a connection: never reused again, freed outside libevent's own
 * callbacks (freeing a connection from inside them is not safe). */
static void client_conn_retire(struct client_conn *cc)
{
	if (cc->state == CLIENT_CONN_DEAD)
		return;
	cc->state = CLIENT_CONN_DEAD;
	client_conn_unlink(cc);
	struct timeval zero = { 0, 0 };
	if (event_base_once(cc->c->base, -1, EV_TIMEOUT, client_conn_free_deferred, cc, &zero) < 0)
		client_conn_destroy(cc);
}

static void client_on_close(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	struct client_conn *cc = arg;
	if (cc->state == CLIENT_CONN_IDLE)
		client_conn_retire(cc);
}

static struct client_conn *client_conn_idle(struct client *c, const char *key)
{
	for (struct client_conn *cc = c->conns; cc; cc = cc->next)
		if (cc->state == CLIENT_CONN_IDLE && strcmp(cc->key, key) == 0)
			return cc;
	return NULL;
}

static int client_conn_count(struct client *c, const char *key, enum client_conn_state state)
{
	int n = 0;
	for (struct client_conn *cc = c->conns; cc; cc = cc->next)
		n += cc->state == state && strcmp(cc->key, key) == 0;
	return n;
}

/* A connection to ip (numeric, of family), the host's checked address: the
 * numeric form is parsed again by libevent, never looked up. */
static struct client_conn *client_conn_new(struct client *c, const char *host, int family, const char *ip,
                                           int port, const char *key)
{
	struct client_conn *cc = mem_calloc(1, sizeof *cc);
	SSL *ssl = tls_client_ssl_new(c->ctx, host);
	struct bufferevent *bev = ssl ? bufferevent_openssl_socket_new(c->base, -1, ssl,
	        BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS) : NULL;
	if (!bev) {
		if (ssl)
			SSL_free(ssl);
		free(cc);
		return NULL;
	}
	tls_client_watch(ssl, &cc->diag);
	/* A clean TLS close is not required of servers that just drop the socket. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	cc->evcon = evhttp_connection_base_bufferevent_new(c->base, NULL, bev, ip, (unsigned short)port);
	if (!cc->evcon) {
		bufferevent_free(bev);
		free(cc);
		return NULL;
	}
	evhttp_connection_set_family(cc->evcon, family);
	cc->c = c;
	snprintf(cc->key, sizeof cc->key, "%s", key);
	/* A backstop only: the call's own deadline comes first and tells which
	 * step (connect, handshake, response) ran out of time. */
	int backstop_ms = c->opt.timeout_ms + 1000;
	struct timeval tv = { backstop_ms / 1000, (backstop_ms % 1000) * 1000 };
	evhttp_connection_set_timeout_tv(cc->evcon, &tv);
	evhttp_connection_set_max_body_size(cc->evcon, (ev_ssize_t)c->opt.max_response_bytes);
	evhttp_connection_set_retries(cc->evcon, 0);
	evhttp_connection_set_closecb(cc->evcon, client_on_close, cc);
	cc->state = CLIENT_CONN_IDLE;
	cc->next = c->conns;
	c->conns = cc;
	return cc;
}

/* ---- calls ---- */

static void client_call_free(struct client_call *call)
{
	for (struct client_call **p = &call->c->calls; *p; p = &(*p)->next)
		if (*p == call) {
			*p = call->next;
			break;
		}
	if (call->deadline)
		event_free(call->deadline);
	/* Headers may carry credentials (Authorization): not left in freed memory. */
	for (size_t i = 0; call->headers && call->headers[i]; i++) {
		OPENSSL_cleanse(call->headers[i], strlen(call->headers[i]));
		free(call->headers[i]);
	}
	free(call->headers);
	free(call->body);
	free(call);
}

/* Runs the caller's callback once and frees the call. */
static void client_finish(struct client_call *call, int status, const char *retry_after, const char *body)
{
	/* The error may live in the call, which is freed before the callback runs. */
	char error[sizeof call->errbuf];
	snprintf(error, sizeof error, "%s", call->error ? call->error : "no response");
	struct client_response resp = {
		.status = status,
		.error = status ? NULL : error,
		.retryable = status ? 0 : call->retryable,
		.retry_after = retry_after,
		.body = body ? body : "",
		.latency_ms = client_elapsed_ms(&call->start),
	};
	call->state = CLIENT_CALL_DONE;
	call->c->inflight--;
	client_cb cb = call->cb;
	void *arg = call->arg;
	client_call_free(call);
	cb(&resp, arg);
}

static void client_fail_deferred(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	client_finish(arg, 0, NULL, NULL);
}

/* Fails a call from the next loop iteration: callbacks never run inside client_post. */
static void client_fail_later(struct client_call *call, int retryable, const char *message)
{
	snprintf(call->errbuf, sizeof call->errbuf, "%s", message);
	call->error = call->errbuf;
	call->retryable = retryable;
	struct timeval zero = { 0, 0 };
	event_base_once(call->c->base, -1, EV_TIMEOUT, client_fail_deferred, call, &zero);
}

static const char *client_error_name(enum evhttp_request_error e)
{
	switch (e) {
	case EVREQ_HTTP_TIMEOUT: return "timeout";
	case EVREQ_HTTP_EOF: return "connection closed before the response";
	case EVREQ_HTTP_INVALID_HEADER: return "invalid response header";
	case EVREQ_HTTP_BUFFER_ERROR: return "connection or TLS error";
	case EVREQ_HTTP_REQUEST_CANCEL: return "cancelled";
	case EVREQ_HTTP_DATA_TOO_LONG: return "response too large";
	}
	return "request failed";
}

static void client_on_error(enum evhttp_request_error e, void *arg)
{
	struct client_call *call = arg;
	call->has_http_error = 1;
	call->http_error = e;
}

/* The step of a request that was under way on cc. */
static const char *client_step(const struct client_conn *cc)
{
	if (!cc || !cc->diag.connected)
		return "connect";
	return cc->diag.handshake_done ? "response" : "TLS handshake";
}

/* The oldest OpenSSL error cc's bufferevent kept, or 0. It hands them back
 * newest first, mixed with SSL_get_error codes, which name no library. */
static unsigned long client_conn_ssl_error(struct client_conn *cc)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(cc->evcon);
	unsigned long e, oldest = 0;
	while (bev && (e = bufferevent_get_openssl_error(bev)) != 0)
		if (ERR_GET_LIB(e) != 0)
			oldest = e;
	return oldest;
}

/* Why a request on cc got no response, into call->error: a response the
 * HTTP layer refused, else what the connection's TLS layer saw (certificate,
 * socket error, TLS alert), else the HTTP layer's view. */
static void client_explain(struct client_call *call, struct client_conn *cc)
{
	call->error = call->errbuf;
	call->retryable = 1;
	enum evhttp_request_error e = call->http_error;
	if (call->has_http_error && (e == EVREQ_HTTP_INVALID_HEADER || e == EVREQ_HTTP_DATA_TOO_LONG)) {
		snprintf(call->errbuf, sizeof call->errbuf, "%s", client_error_name(e));
		return;
	}
	if (cc && tls_client_failure(&cc->diag, client_conn_ssl_error(cc), call->errbuf, sizeof call->errbuf))
		return;
	if (call->has_http_error && e == EVREQ_HTTP_TIMEOUT)
		snprintf(call->errbuf, sizeof call->errbuf, "timeout: %s", client_step(cc));
	else if (call->has_http_error)
		snprintf(call->errbuf, sizeof call->errbuf, "%s", client_error_name(e));
	else
		snprintf(call->errbuf, sizeof call->errbuf, "%s",
		         !cc || cc->diag.connected ? "connection or TLS error" : "cannot connect");
}

static void client_on_done(struct evhttp_request *req, void *arg)
{
	struct client_call *call = arg;
	int status = req ? evhttp_request_get_response_code(req) : 0;
	struct client_conn *cc = call->conn;
	call->conn = NULL;
	call->req = NULL;
	evtimer_del(call->deadline);
	if (status <= 0 && !call->error)
		client_explain(call, cc);
	if (cc) {
		/* Reuse only a connection that answered and may stay open. */
		const char *connection = req ? evhttp_find_header(evhttp_request_get_input_headers(req),
		                                                   "Connection") : NULL;
		if (status <= 0 || (connection && strcasecmp(connection, "close") == 0) ||
		    client_conn_count(call->c, cc->key, CLIENT_CONN_IDLE) >= CLIENT_IDLE_PER_KEY)
			client_conn_retire(cc);
		else
			cc->state = CLIENT_CONN_IDLE;
	}
	if (status <= 0) {
		client_finish(call, 0, NULL, NULL);
		return;
	}
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	char *body = mem_alloc(n + 1);
	evbuffer_copyout(in, body, n);
	body[n] = '\0';
	const char *ra = evhttp_find_header(evhttp_request_get_input_headers(req), "Retry-After");
	char retry_after[64];
	if (ra)
		snprintf(retry_after, sizeof retry_after, "%s", ra);
	client_finish(call, status, ra ? retry_after : NULL, body);
	free(body);
}

/* The whole request took too long (a supplier dribbling its answer). */
static void client_on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct client_call *call = arg;
	if (call->state == CLIENT_CALL_RESOLVING) {
		/* The resolver calls back with EVUTIL_EAI_CANCEL. */
		snprintf(call->errbuf, sizeof call->errbuf, "cannot resolve %.200s: timeout", call->host);
		call->error = call->errbuf;
		call->retryable = 1;
		evdns_getaddrinfo_cancel(call->dns);
		return;
	}
	struct client_conn *cc = call->conn;
	call->conn = NULL;
	snprintf(call->errbuf, sizeof call->errbuf, "timeout: %s", client_step(cc));
	call->error = call->errbuf;
	call->retryable = 1;
	if (call->req)
		evhttp_cancel_request(call->req); /* frees req; its callback does not run */
	call->req = NULL;
	if (cc)
		client_conn_retire(cc);
	client_finish(call, 0, NULL, NULL);
}

static void client_send(struct client_call *call, struct client_conn *cc)
{
	call->state = CLIENT_CALL_SENDING;
	call->conn = cc;
	cc->state = CLIENT_CONN_BUSY;
	/* libevent allocates through mem (mem_use_for_libraries): never NULL. */
	struct evhttp_request *req = evhttp_request_new(client_on_done, call);
	evhttp_request_set_error_cb(req, client_on_error);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	char host[NETCHECK_HOST_MAX + NETCHECK_PORT_MAX + 4], len[24];
	netcheck_authority(call->host, call->port, host, sizeof host);
	snprintf(len, sizeof len, "%zu", call->len);
	evhttp_add_header(h, "Host", host);
	if (call->body) {
		evhttp_add_header(h, "Content-Type", "application/json");
		evhttp_add_header(h, "Content-Length", len);
	}
	evhttp_add_header(h, "User-Agent", "dropship");
	for (size_t i = 0; call->headers && call->headers[i] && call->headers[i + 1]; i += 2)
		evhttp_add_header(h, call->headers[i], call->headers[i + 1]);
	if (call->body)
		evbuffer_add(evhttp_request_get_output_buffer(req), call->body, call->len);
	call->req = req;
	errno = 0;
	if (evhttp_make_request(cc->evcon, req, call->method, call->path) < 0) {
		/* libevent freed the request */
		call->req = NULL;
		call->conn = NULL;
		client_conn_retire(cc);
		client_fail_later(call, 1, "cannot send the request");
		return;
	}
	/* The socket exists once the request is under way; a request body and
	 * its headers must not wait for the peer's delayed ACK. */
	int fd = bufferevent_getfd(evhttp_connection_get_bufferevent(cc->evcon));
	/* No socket: connect(2) failed at once (no route, say). libevent reports
	 * it from a later callback, with errno long gone. */
	if (fd < 0 && errno && !cc->diag.io_errno)
		cc->diag.io_errno = errno;
	if (!cc->nodelay && fd >= 0) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		cc->nodelay = 1;
	}
}

/* Connects to sa, the address that was checked: a name's lookup answer or
 * the IP literal of the URL. */
static void client_connect(struct client_call *call, const struct sockaddr *sa, int literal)
{
	char ip[INET6_ADDRSTRLEN] = "";
	if (sa->sa_family == AF_INET)
		evutil_inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, ip, sizeof ip);
	else if (sa->sa_family == AF_INET6)
		evutil_inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, ip, sizeof ip);
	if (netcheck_addr_private(sa) && !call->c->opt.allow_private) {
		evtimer_del(call->deadline);
		if (literal)
			snprintf(call->errbuf, sizeof call->errbuf, "%.120s is a private or loopback address; refused"
			         " (dispatch.allow_private_endpoints)", call->host);
		else
			snprintf(call->errbuf, sizeof call->errbuf, "%.120s resolves to a private or loopback address"
			         " (%s); refused (dispatch.allow_private_endpoints)", call->host, ip);
		call->error = call->errbuf;
		call->retryable = 0;
		client_finish(call, 0, NULL, NULL);
		return;
	}
	struct client_conn *cc = client_conn_new(call->c, call->host, sa->sa_family, ip,
	                                         (int)strtol(call->port, NULL, 10), call->key);
	if (!cc) {
		evtimer_del(call->deadline);
		call->error = "cannot create a TLS connection";
		call->retryable = 1;
		client_finish(call, 0, NULL, NULL);
		return;
	}
	client_send(call, cc);
}

static void client_on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
	struct client_call *call = arg;
	call->dns = NULL;
	if (result != 0 || !res) {
		if (!call->error) {
			snprintf(call->errbuf, sizeof call->errbuf, "cannot resolve %.200s: %s", call->host,
			         evutil_gai_strerror(result));
			call->error = call->errbuf;
			call->retryable = 1;
		}
		evtimer_del(call->deadline);
		if (res)
			evutil_freeaddrinfo(res);
		client_finish(call, 0, NULL, NULL);
		return;
	}
	client_connect(call, res->ai_addr, 0);
	evutil_freeaddrinfo(res);
}

static void client_resolve(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct client_call *call = arg;
	/* An IP literal is its own answer: the resolver would only filter it by
	 * the families it believes this host has (an IPv6 literal would fail). */
	struct sockaddr_storage lit;
	if (netcheck_literal(call->host, (int)strtol(call->port, NULL, 10), &lit) > 0) {
		client_connect(call, (const struct sockaddr *)&lit, 1);
		return;
	}
	struct evutil_addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	                                 .ai_protocol = IPPROTO_TCP, .ai_flags = EVUTIL_AI_ADDRCONFIG };
	/* Errors call back before this returns NULL, and the call may then be
	 * gone: touch it only when a lookup is pending. */
	struct evdns_getaddrinfo_request *pending =
	        evdns_getaddrinfo(call->c->dns, call->host, call->port, &hints, client_on_resolved, call);
	if (pending)
		call->dns = pending;
}

void client_post(struct client *c, const char *url, const char *const *headers,
                 const char *body, size_t len, client_cb cb, void *arg)
{
	client_request(c, "POST", url, headers, body, len, cb, arg);
}

void client_request(struct client *c, const char *method, const char *url, const char *const *headers,
                    const char *body, size_t len, client_cb cb, void *arg)
{
	struct client_call *call = mem_calloc(1, sizeof *call);
	call->method = strcmp(method, "GET") == 0 ? EVHTTP_REQ_GET
	               : strcmp(method, "PUT") == 0 ? EVHTTP_REQ_PUT : EVHTTP_REQ_POST;
	if (call->method == EVHTTP_REQ_GET)
		body = NULL;
	call->c = c;
	call->cb = cb;
	call->arg = arg;
	clock_gettime(CLOCK_MONOTONIC, &call->start);
	call->next = c->calls;
	c->calls = call;
	c->inflight++;
	size_t nh = 0;
	while (headers && headers[nh])
		nh++;
	call->headers = mem_calloc(nh + 1, sizeof *call->headers);
	call->deadline = evtimer_new(c->base, client_on_deadline, call);
	for (size_t i = 0; i < nh; i++)
		call->headers[i] = mem_strdup(headers[i]);
	if (body) {
		call->body = mem_alloc(len + 1);
		memcpy(call->body, body, len);
		call->len = len;
	}

	char err[256];
	if (netcheck_url(url, call->host, sizeof call->host, call->port, sizeof call->port, call->path,
	                 sizeof call->path, err, sizeof err) < 0) {
		client_fail_later(call, 0, err);
		return;
	}
	snprintf(call->key, sizeof call->key, "%s|%s", call->host, call->port);
	struct timeval tv = { c->opt.timeout_ms / 1000, (c->opt.timeout_ms % 1000) * 1000 };
	evtimer_add(call->deadline, &tv);

	struct client_conn *idle = client_conn_idle(c, call->key);
	if (idle) {
		client_send(call, idle);
		return;
	}
	call->state = CLIENT_CALL_RESOLVING;
	/* Resolve from the next loop iteration, so that no callback runs inside client_post. */
	struct timeval zero = { 0, 0 };
	event_base_once(c->base, -1, EV_TIMEOUT, client_resolve, call, &zero);
}

int client_inflight(const struct client *c)
{
	return c->inflight;
}

int client_set_options(struct client *c, const struct client_options *opt, char *err, size_t errlen)
{
	/* Each SSL holds its own reference: connections made with the old
	 * context keep it until they close. */
	SSL_CTX *ctx = tls_client_ctx_new(opt->ca_file, err, errlen);
	if (!ctx)
		return -1;
	SSL_CTX_free(c->ctx);
	c->ctx = ctx;
	c->opt = *opt;
	if (c->opt.timeout_ms <= 0)
		c->opt.timeout_ms = 10000;
	if (c->opt.max_response_bytes == 0)
		c->opt.max_response_bytes = 65536;
	return 0;
}

struct client *client_new(struct event_base *base, const struct client_options *opt,
                          char *err, size_t errlen)
{
	struct client *c = mem_calloc(1, sizeof *c);
	c->base = base;
	if (client_set_options(c, opt, err, errlen) < 0)
		goto fail;
	c->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (!c->dns) {
		/* No resolv.conf: still resolve names from /etc/hosts and numeric hosts. */
		c->dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
		if (c->dns)
			evdns_base_load_hosts(c->dns, NULL);
	}
	if (!c->dns) {
		snprintf(err, errlen, "cannot start the DNS resolver");
		goto fail;
	}
	return c;
fail:
	client_free(c);
	return NULL;
}

void client_free(struct client *c)
{
	if (!c)
		return;
	while (c->calls) {
		struct client_call *call = c->calls;
		if (call->req && call->conn)
			evhttp_cancel_request(call->req);
		if (call->dns)
			evdns_getaddrinfo_cancel(call->dns); /* calls back: finishes the call */
		if (c->calls == call) {
			call->error = "shutting down";
			call->retryable = 1;
			client_finish(call, 0, NULL, NULL);
		}
	}
	while (c->conns) {
		struct client_conn *cc = c->conns;
		c->conns = cc->next;
		client_conn_destroy(cc);
	}
	if (c->dns)
		evdns_base_free(c->dns, 0);
	SSL_CTX_free(c->ctx);
	free(c);
}
