#include <assert.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <openssl/rand.h>

#include "httpd/httpd.h"
#include "log/log.h"
#include "mem/mem.h"
#include "metrics/metrics.h"
#include "wire/wire.h"

/* State of one connection; changed only through conn_set_state. */
#define HTTPD_CONN_STATES(X) \
	X(HANDSHAKE)  /* TLS handshake in progress */ \
	X(IDLE)       /* waiting for the first byte of a request */ \
	X(HEAD)       /* receiving a request head */ \
	X(BODY)       /* receiving a request body */ \
	X(HANDLER)    /* the request is with its handler */ \
	X(WRITING)    /* the answer is being sent */ \
	X(GONE)       /* the peer left while the handler ran: waiting for its answer to drop it */

enum httpd_conn_state {
#define X(s) HTTPD_##s,
	HTTPD_CONN_STATES(X)
#undef X
	HTTPD_CONN_STATE_MAX
};

static const char *const httpd_state_names[] = {
#define X(s) #s,
	HTTPD_CONN_STATES(X)
#undef X
};

/* Methods a request may use; those with a body flag may carry one. */
static const struct wire_method httpd_methods[] = {
	{ "GET", 0 }, { "HEAD", 0 }, { "POST", 1 }, { "PUT", 1 }, { "DELETE", 0 }, { "PATCH", 1 },
	{ "OPTIONS", 0 }, { NULL, 0 },
};

/* One connection. Allocated at accept, freed by conn_free (never from
 * inside a callback that still uses it afterwards). */
struct httpd_conn {
	struct httpd *h;
	enum httpd_conn_state state;
	struct bufferevent *bev;          /* NULL once the peer is gone */
	struct event *timer;              /* the state's deadline */
	struct sockaddr_storage peer;
	socklen_t peer_len;
	struct httpd_reader rd;           /* the bytes received, the request with its handler */
	long long since_ms;               /* entered the state (who waited longest is shed first) */
	long long request_ms;             /* the request's first byte */
	long long progress_ms;            /* the last byte of it */
	struct http_ctx *ctx;             /* the request with its handler */
	int close_after;                  /* close once the answer is sent */
	struct httpd_conn *prev, *next;
};

struct httpd {
	struct event_base *base;
	struct httpd_options opt;
	struct evconnlistener *listener;
	struct httpd_conn *conns;
	int nconns, peak;                  /* open now; most since the last trim */
	struct event *trim;                /* malloc_trim once a wave has closed */
	int draining;
	unsigned long next_id;
	unsigned int salt;
	long long shed_logged_ms;          /* rate of the "shed"/"refused" log lines */
	unsigned long shed, refused;       /* since the last such line */
};

static long long httpd_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void buf_append(struct httpd_buf *b, const char *data, size_t len)
{
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap < b->len + len)
			cap *= 2;
		b->data = mem_realloc(b->data, cap);
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

/* Drops the first n bytes. */
static void buf_consume(struct httpd_buf *b, size_t n)
{
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

/* Empties b and gives its memory back: an idle connection holds none. */
static void buf_release(struct httpd_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

/* ---- the request reader ---- */

void httpd_reader_init(struct httpd_reader *r, size_t max_head, uint64_t max_body)
{
	memset(r, 0, sizeof *r);
	struct wire_limits lim = { httpd_methods, max_head, max_body };
	wire_stream_init(&r->ws, &lim);
}

void httpd_reader_add(struct httpd_reader *r, const char *data, size_t len)
{
	if (len)
		buf_append(&r->held, data, len);
}

/* The bytes of a chunked body (validated by wire), decoded into out. */
static void reader_dechunk(const char *raw, size_t len, struct httpd_buf *out)
{
	size_t p = 0;
	while (p < len) {
		unsigned long long size = 0;
		while (p < len && raw[p] != ';' && raw[p] != '\r') {
			char ch = raw[p++];
			size = size * 16 + (unsigned)(ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10);
		}
		while (p < len && raw[p] != '\n') /* extensions, CRLF */
			p++;
		p++;
		if (size == 0 || p + size > len)
			return; /* the last chunk: trailers follow, they are not part of the body */
		buf_append(out, raw + p, (size_t)size);
		p += (size_t)size + 2;
	}
}

/* Splits the validated head (request line, header lines) into headers:
 * name and value NUL-terminated in place, the value without surrounding
 * blanks. Returns the number of headers. */
static size_t reader_headers(struct httpd_reader *r, size_t head_len)
{
	char *p = r->req.data, *end = p + head_len;
	size_t n = 0;
	for (char *q = p; q + 1 < end; q++)
		n += q[0] == '\r' && q[1] == '\n';
	free(r->headers);
	r->headers = mem_calloc(n, sizeof *r->headers);
	n = 0;
	char *line = strstr(p, "\r\n") + 2;   /* past the request line */
	while (line + 2 <= end && !(line[0] == '\r' && line[1] == '\n')) {
		char *eol = line;
		while (!(eol[0] == '\r' && eol[1] == '\n'))
			eol++;
		char *colon = memchr(line, ':', (size_t)(eol - line));
		char *v = colon + 1, *ve = eol;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		*colon = '\0';
		*ve = '\0';
		r->headers[n++] = (struct http_header){ line, v };
		line = eol + 2;
	}
	return n;
}

/* The request in r->req arrived whole: what a handler reads, into ctx. */
static void reader_build(struct httpd_reader *r, struct http_ctx *ctx)
{
	const struct wire_head *hd = wire_stream_head(&r->ws);
	/* NUL-terminate the head so it can be cut up in place (a byte of room is always there). */
	buf_append(&r->req, "", 1);
	r->req.len--;
	/* The path before the head is cut up: the target ends at a space. */
	size_t tlen = strcspn(r->req.data + hd->target_off, "? ");
	if (tlen > hd->target_len)
		tlen = hd->target_len;
	snprintf(ctx->path, sizeof ctx->path, "%.*s", (int)tlen, r->req.data + hd->target_off);
	ctx->nheaders = reader_headers(r, hd->head_len);
	ctx->headers = r->headers;
	ctx->method = hd->method->name;
	ctx->head = strcmp(ctx->method, "HEAD") == 0;
	ctx->close = hd->close;
	ctx->body = NULL;
	ctx->body_len = 0;
	if (hd->framing == WIRE_BODY_LENGTH) {
		ctx->body = r->req.data + hd->head_len;
		ctx->body_len = (size_t)hd->length;
	} else if (hd->framing == WIRE_BODY_CHUNKED) {
		reader_dechunk(r->req.data + hd->head_len, r->req.len - hd->head_len, &r->body);
		ctx->body = r->body.data;
		ctx->body_len = r->body.len;
	}
}

enum httpd_read httpd_reader_next(struct httpd_reader *r, struct http_ctx *ctx, struct wire_error *err)
{
	if (wire_stream_state(&r->ws) == WIRE_STATE_FAILED) {
		*err = *wire_stream_error(&r->ws);
		return HTTPD_READ_ERROR;
	}
	while (r->held.len > 0) {
		size_t pass = 0;
		enum wire_verdict v = wire_stream_feed(&r->ws, r->held.data, r->held.len, &pass, err);
		if (v == WIRE_REJECT)
			return HTTPD_READ_ERROR;
		if (v == WIRE_CLOSED) {
			buf_release(&r->held);
			return HTTPD_READ_CLOSED;
		}
		if (v == WIRE_NEED_MORE)
			break;
		buf_append(&r->req, r->held.data, pass);
		buf_consume(&r->held, pass);
		if (wire_stream_ended(&r->ws)) {
			reader_build(r, ctx);
			return HTTPD_READ_REQUEST;
		}
	}
	return wire_stream_state(&r->ws) == WIRE_STATE_CLOSED ? HTTPD_READ_CLOSED : HTTPD_READ_MORE;
}

enum httpd_phase httpd_reader_phase(const struct httpd_reader *r)
{
	if (r->held.len == 0 && r->req.len == 0)
		return HTTPD_PHASE_NONE;
	return wire_stream_state(&r->ws) == WIRE_STATE_HEAD ? HTTPD_PHASE_HEAD : HTTPD_PHASE_BODY;
}

void httpd_reader_done(struct httpd_reader *r)
{
	buf_release(&r->req);
	buf_release(&r->body);
	free(r->headers);
	r->headers = NULL;
	if (r->held.len == 0)
		buf_release(&r->held);
}

void httpd_reader_free(struct httpd_reader *r)
{
	httpd_reader_done(r);
	buf_release(&r->held);
}

/* ---- connections ---- */

static void conn_set_state(struct httpd_conn *c, enum httpd_conn_state s)
{
	assert(s < HTTPD_CONN_STATE_MAX);
	if (c->state != s)
		log_debug("connection state", "from=%s to=%s", httpd_state_names[c->state], httpd_state_names[s]);
	c->state = s;
	c->since_ms = httpd_now_ms();
}

/* Arms the connection's deadline for its state. */
static void conn_arm(struct httpd_conn *c)
{
	const struct httpd_options *o = &c->h->opt;
	long long now = httpd_now_ms(), at;
	switch (c->state) {
	case HTTPD_HEAD:
	case HTTPD_BODY: {
		long long whole = c->request_ms + o->request_timeout_ms;
		long long stalled = c->progress_ms + o->read_timeout_ms;
		at = whole < stalled ? whole : stalled;
		break;
	}
	case HTTPD_HANDLER:
	case HTTPD_GONE:
		evtimer_del(c->timer);
		return;
	default:
		at = now + o->read_timeout_ms;
		break;
	}
	long long ms = at > now ? at - now : 0;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
	evtimer_add(c->timer, &tv);
}

static void httpd_on_trim(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what, (void)arg;
	malloc_trim(0);
}

/* Gives memory back to the system after a wave of connections closed: each
 * time the open connections fall below a quarter of the most since the
 * last trim, as long as at least 64 closed meanwhile (so a wave going down
 * is trimmed at a quarter, a sixteenth... of its peak). A second later:
 * libevent frees a closed connection's TLS state and buffers after the
 * callback that closed it, and the rest of the wave closes meanwhile. */
static void httpd_trim(struct httpd *h)
{
	if (h->peak - h->nconns < 64 || h->nconns >= h->peak / 4)
		return;
	h->peak = h->nconns;
	if (!evtimer_pending(h->trim, NULL)) {
		struct timeval tv = { 1, 0 };
		evtimer_add(h->trim, &tv);
	}
}

static void conn_free(struct httpd_conn *c)
{
	struct httpd *h = c->h;
	if (c->prev)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	h->nconns--;
	atomic_fetch_sub(&h->opt.env->metrics->connections, 1);
	if (h->opt.release)
		h->opt.release(h->opt.admit_arg, (const struct sockaddr *)&c->peer, c->peer_len);
	if (c->bev)
		bufferevent_free(c->bev);
	event_free(c->timer);
	httpd_reader_free(&c->rd);
	free(c);
	httpd_trim(h);
	if (h->draining && h->nconns == 0 && h->opt.drained)
		h->opt.drained(h->opt.drained_arg);
}

/* "%08x%02x%06lx", or the client's X-Request-Id when it is a plain token. */
static void conn_request_id(struct httpd_conn *c, struct http_ctx *ctx)
{
	struct httpd *h = c->h;
	const char *given = http_header(ctx, "X-Request-Id");
	size_t n = given ? strlen(given) : 0;
	if (n > 0 && n < sizeof ctx->request_id &&
	    strspn(given, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n) {
		memcpy(ctx->request_id, given, n + 1);
		return;
	}
	snprintf(ctx->request_id, sizeof ctx->request_id, "%08x%02x%06lx", h->salt, h->opt.id_tag & 0xff,
	         h->next_id++ & 0xffffff);
}

static void conn_respond(void *arg, const char *answer, size_t len, int close);

/* A request context for c; the caller fills method, path and the request. */
static struct http_ctx *conn_ctx(struct httpd_conn *c)
{
	struct http_ctx *ctx = mem_calloc(1, sizeof *ctx);
	ctx->env = c->h->opt.env;
	ctx->respond = conn_respond;
	ctx->conn = c;
	clock_gettime(CLOCK_MONOTONIC, &ctx->start);
	c->ctx = ctx;
	conn_set_state(c, HTTPD_HANDLER);
	conn_arm(c);
	if (c->bev)
		bufferevent_disable(c->bev, EV_READ);
	return ctx;
}

/* Refuses what arrived (bad framing, too large, too slow): the answer is
 * an error like any other, and the connection closes after it. */
static void conn_refuse(struct httpd_conn *c, int status, const char *code, const char *message,
                        const char *field)
{
	struct http_ctx *ctx = conn_ctx(c);
	ctx->method = "-";
	snprintf(ctx->path, sizeof ctx->path, "-");
	ctx->close = 1;
	conn_request_id(c, ctx);
	http_reply_error(ctx, status, code, message, field && *field ? field : NULL);
}

/* A request arrived whole: it goes to its handler. */
static void conn_dispatch(struct httpd_conn *c, struct http_ctx *ctx)
{
	struct httpd *h = c->h;
	if (h->draining)
		ctx->close = 1;
	conn_request_id(c, ctx);
	h->opt.route(h->opt.route_arg, ctx);
}

/* Reads what has arrived: a request that arrived whole goes to its
 * handler, a refusal is answered; otherwise the deadline follows the
 * request's progress. */
static void conn_process(struct httpd_conn *c)
{
	if (c->state != HTTPD_IDLE && c->state != HTTPD_HEAD && c->state != HTTPD_BODY)
		return;
	struct http_ctx req = { 0 };
	struct wire_error err;
	enum httpd_read v = httpd_reader_next(&c->rd, &req, &err);
	if (v == HTTPD_READ_ERROR) {
		conn_refuse(c, err.status, err.code, err.message, err.field);
		return;
	}
	if (v == HTTPD_READ_REQUEST) {
		struct http_ctx *ctx = conn_ctx(c);
		ctx->method = req.method;
		ctx->head = req.head;
		ctx->close = req.close;
		memcpy(ctx->path, req.path, sizeof ctx->path);
		ctx->headers = req.headers;
		ctx->nheaders = req.nheaders;
		ctx->body = req.body;
		ctx->body_len = req.body_len;
		conn_dispatch(c, ctx);
		return;
	}
	enum httpd_phase ph = httpd_reader_phase(&c->rd);
	if (v == HTTPD_READ_MORE && ph != HTTPD_PHASE_NONE) {
		long long now = httpd_now_ms();
		if (c->state == HTTPD_IDLE) {
			conn_set_state(c, HTTPD_HEAD);
			c->request_ms = now;
		}
		c->progress_ms = now;
		if (ph == HTTPD_PHASE_BODY && c->state == HTTPD_HEAD)
			conn_set_state(c, HTTPD_BODY);
	}
	conn_arm(c);
}

static void conn_on_read(struct bufferevent *bev, void *arg)
{
	struct httpd_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_iovec v;
	while (evbuffer_peek(in, -1, NULL, &v, 1) > 0 && v.iov_len > 0) {
		httpd_reader_add(&c->rd, v.iov_base, v.iov_len);
		evbuffer_drain(in, v.iov_len);
	}
	if (c->state == HTTPD_HANDSHAKE) /* data before the handshake's event: it is done */
		conn_set_state(c, HTTPD_IDLE);
	conn_process(c);
}

/* The answer is out: close, or wait for the next request (which may be
 * there already: pipelined). */
static void conn_on_write(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct httpd_conn *c = arg;
	if (c->state != HTTPD_WRITING)
		return;
	if (c->close_after) {
		conn_free(c);
		return;
	}
	httpd_reader_done(&c->rd);
	conn_set_state(c, HTTPD_IDLE);
	bufferevent_enable(c->bev, EV_READ);
	conn_process(c);
	if (c->state == HTTPD_IDLE)
		conn_arm(c);
}

static void conn_respond(void *arg, const char *answer, size_t len, int close)
{
	struct httpd_conn *c = arg;
	c->ctx = NULL;
	if (c->state == HTTPD_GONE) { /* nobody to answer */
		conn_free(c);
		return;
	}
	c->close_after = close;
	conn_set_state(c, HTTPD_WRITING);
	conn_arm(c);
	bufferevent_write(c->bev, answer, len);
}

static void conn_on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct httpd_conn *c = arg;
	if (what & BEV_EVENT_CONNECTED) {
		if (c->state == HTTPD_HANDSHAKE) {
			conn_set_state(c, HTTPD_IDLE);
			conn_process(c);
		}
		if (c->state == HTTPD_IDLE)
			conn_arm(c);
		return;
	}
	/* EOF, an error, or a TLS failure: the peer is gone. */
	if (c->state == HTTPD_HANDLER) {
		bufferevent_free(c->bev);
		c->bev = NULL;
		conn_set_state(c, HTTPD_GONE);
		return;
	}
	conn_free(c);
}

static void conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct httpd_conn *c = arg;
	if (c->state == HTTPD_HEAD || c->state == HTTPD_BODY) {
		conn_refuse(c, 408, "request_timeout", "the request did not arrive in time", NULL);
		return;
	}
	conn_free(c); /* idle, a handshake or an answer that did not go out in time */
}

/* Logs sheddings and refusals at most once a second, with their counts. */
static void httpd_log_pressure(struct httpd *h)
{
	long long now = httpd_now_ms();
	if (now - h->shed_logged_ms < 1000)
		return;
	log_warn("connection limits", "open=%d cap=%d shed=%lu refused=%lu", h->nconns, h->opt.max_conns, h->shed,
	         h->refused);
	h->shed_logged_ms = now;
	h->shed = h->refused = 0;
}

/* At the cap: the connection that has waited longest with no request in
 * progress (handshake, idle, or still reading a head). NULL when none. */
static struct httpd_conn *httpd_victim(struct httpd *h)
{
	struct httpd_conn *v = NULL;
	for (struct httpd_conn *c = h->conns; c; c = c->next)
		if ((c->state == HTTPD_HANDSHAKE || c->state == HTTPD_IDLE || c->state == HTTPD_HEAD) &&
		    (!v || c->since_ms < v->since_ms))
			v = c;
	return v;
}

static void httpd_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                            void *arg)
{
	(void)l;
	struct httpd *h = arg;
	const struct httpd_options *o = &h->opt;
	if (h->draining) {
		close(fd);
		return;
	}
	if (o->admit && !o->admit(o->admit_arg, sa, (socklen_t)salen)) {
		metrics_inc(o->env->metrics, METRICS_CONN_REFUSED);
		h->refused++;
		httpd_log_pressure(h);
		close(fd);
		return;
	}
	if (h->nconns >= o->max_conns) {
		struct httpd_conn *v = httpd_victim(h);
		if (!v) {
			if (o->release)
				o->release(o->admit_arg, sa, (socklen_t)salen);
			metrics_inc(o->env->metrics, METRICS_CONN_REFUSED);
			h->refused++;
			httpd_log_pressure(h);
			close(fd);
			return;
		}
		metrics_inc(o->env->metrics, METRICS_CONN_SHED);
		h->shed++;
		httpd_log_pressure(h);
		conn_free(v);
	}
	SSL_CTX *ctx = o->tls_ctx(o->tls_arg);
	SSL *ssl = ctx ? SSL_new(ctx) : NULL;
	SSL_CTX_free(ctx);
	struct bufferevent *bev = ssl ? bufferevent_openssl_socket_new(h->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
	                                                              BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS)
	                              : NULL;
	if (!bev) {
		if (ssl)
			SSL_free(ssl);
		if (o->release)
			o->release(o->admit_arg, sa, (socklen_t)salen);
		close(fd);
		return;
	}
	/* A peer that vanishes without close_notify is normal for HTTP clients. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	struct httpd_conn *c = mem_calloc(1, sizeof *c);
	c->h = h;
	c->bev = bev;
	c->timer = evtimer_new(h->base, conn_on_timer, c);
	memcpy(&c->peer, sa, (size_t)salen < sizeof c->peer ? (size_t)salen : sizeof c->peer);
	c->peer_len = (socklen_t)salen;
	httpd_reader_init(&c->rd, o->max_head, o->max_body);
	c->next = h->conns;
	if (h->conns)
		h->conns->prev = c;
	h->conns = c;
	if (++h->nconns > h->peak)
		h->peak = h->nconns;
	atomic_fetch_add(&o->env->metrics->connections, 1);
	bufferevent_setcb(bev, conn_on_read, conn_on_write, conn_on_event, c);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	conn_set_state(c, HTTPD_HANDSHAKE);
	conn_arm(c);
}

struct httpd *httpd_new(struct event_base *base, const struct httpd_options *opt, char *err, size_t errlen)
{
	struct httpd *h = mem_calloc(1, sizeof *h);
	h->base = base;
	h->opt = *opt;
	RAND_bytes((unsigned char *)&h->salt, sizeof h->salt);
	h->trim = evtimer_new(base, httpd_on_trim, h);
	h->listener = evconnlistener_new(base, httpd_on_accept, h, LEV_OPT_CLOSE_ON_FREE, -1, opt->listen_fd);
	if (!h->listener || !h->trim) {
		snprintf(err, errlen, "cannot accept on the listening socket");
		if (h->listener)
			evconnlistener_free(h->listener);
		if (h->trim)
			event_free(h->trim);
		free(h);
		return NULL;
	}
	return h;
}

void httpd_drain(struct httpd *h)
{
	if (!h || h->draining)
		return;
	h->draining = 1;
	evconnlistener_free(h->listener); /* closes the listening socket */
	h->listener = NULL;
	for (struct httpd_conn *c = h->conns, *next; c; c = next) {
		next = c->next;
		if (c->state == HTTPD_HANDSHAKE || c->state == HTTPD_IDLE)
			conn_free(c);
	}
	if (h->nconns == 0 && h->opt.drained)
		h->opt.drained(h->opt.drained_arg);
}

int httpd_conns(const struct httpd *h)
{
	return h ? h->nconns : 0;
}

void httpd_free(struct httpd *h)
{
	if (!h)
		return;
	h->opt.drained = NULL;
	while (h->conns) {
		if (h->conns->ctx) /* a handler never answered: its context goes with the connection */
			h->conns->ctx->conn = NULL;
		conn_free(h->conns);
	}
	if (h->listener)
		evconnlistener_free(h->listener);
	event_free(h->trim);
	free(h);
}
