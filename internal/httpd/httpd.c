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

/* A growable byte buffer. */
struct httpd_buf {
	char *data;
	size_t len, cap;
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
	struct wire_stream ws;
	struct httpd_buf held;            /* bytes read, not yet passed by wire */
	struct httpd_buf req;             /* the request being received: head, then body as sent */
	struct httpd_buf body;            /* a chunked body, decoded */
	struct http_header *headers;      /* of the request with its handler; point into req */
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
	struct wire_limits limits;
	struct evconnlistener *listener;
	struct httpd_conn *conns;
	int nconns, peak;
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

/* Gives memory back to the system after a wave of connections closed. */
static void httpd_trim(struct httpd *h)
{
	if (h->peak >= 256 && h->nconns < h->peak / 4) {
		malloc_trim(0);
		h->peak = h->nconns;
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
	buf_release(&c->held);
	buf_release(&c->req);
	buf_release(&c->body);
	free(c->headers);
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

/* The bytes of a chunked body (validated by wire), decoded into out. */
static void conn_dechunk(const char *raw, size_t len, struct httpd_buf *out)
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
static size_t conn_headers(struct httpd_conn *c, size_t head_len)
{
	char *p = c->req.data, *end = p + head_len;
	size_t n = 0;
	for (char *q = p; q + 1 < end; q++)
		n += q[0] == '\r' && q[1] == '\n';
	free(c->headers);
	c->headers = mem_calloc(n, sizeof *c->headers);
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
		c->headers[n++] = (struct http_header){ line, v };
		line = eol + 2;
	}
	return n;
}

/* A request arrived whole: it goes to its handler. */
static void conn_dispatch(struct httpd_conn *c)
{
	struct httpd *h = c->h;
	const struct wire_head *hd = wire_stream_head(&c->ws);
	/* NUL-terminate the head so it can be cut up in place (a byte of room is always there). */
	buf_append(&c->req, "", 1);
	c->req.len--;
	size_t nheaders = conn_headers(c, hd->head_len);
	struct http_ctx *ctx = conn_ctx(c);
	ctx->method = hd->method->name;
	ctx->head = strcmp(ctx->method, "HEAD") == 0;
	ctx->close = hd->close || h->draining;
	size_t tlen = strcspn(c->req.data + hd->target_off, "? ");
	if (tlen > hd->target_len)
		tlen = hd->target_len;
	snprintf(ctx->path, sizeof ctx->path, "%.*s", (int)tlen, c->req.data + hd->target_off);
	ctx->headers = c->headers;
	ctx->nheaders = nheaders;
	if (hd->framing == WIRE_BODY_LENGTH) {
		ctx->body = c->req.data + hd->head_len;
		ctx->body_len = (size_t)hd->length;
	} else if (hd->framing == WIRE_BODY_CHUNKED) {
		conn_dechunk(c->req.data + hd->head_len, c->req.len - hd->head_len, &c->body);
		ctx->body = c->body.data;
		ctx->body_len = c->body.len;
	}
	conn_request_id(c, ctx);
	h->opt.route(h->opt.route_arg, ctx);
}

/* Feeds what has arrived through wire: heads once whole and checked,
 * bodies as they come; a request that arrived whole goes to its handler. */
static void conn_process(struct httpd_conn *c)
{
	while (c->state == HTTPD_IDLE || c->state == HTTPD_HEAD || c->state == HTTPD_BODY) {
		if (c->held.len == 0)
			break;
		size_t pass = 0;
		struct wire_error err;
		enum wire_verdict v = wire_stream_feed(&c->ws, c->held.data, c->held.len, &pass, &err);
		if (v == WIRE_REJECT) {
			conn_refuse(c, err.status, err.code, err.message, err.field);
			return;
		}
		if (v == WIRE_CLOSED) { /* the last request said close: nothing more is read */
			buf_release(&c->held);
			break;
		}
		if (c->state == HTTPD_IDLE) {
			conn_set_state(c, HTTPD_HEAD);
			c->request_ms = httpd_now_ms();
		}
		c->progress_ms = httpd_now_ms();
		if (v == WIRE_NEED_MORE)
			break;
		buf_append(&c->req, c->held.data, pass);
		buf_consume(&c->held, pass);
		if (wire_stream_ended(&c->ws)) {
			conn_dispatch(c);
			return;
		}
		if (wire_stream_state(&c->ws) != WIRE_STATE_HEAD && c->state == HTTPD_HEAD)
			conn_set_state(c, HTTPD_BODY);
	}
	conn_arm(c);
}

static void conn_on_read(struct bufferevent *bev, void *arg)
{
	struct httpd_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in);
	if (n == 0)
		return;
	if (c->held.len + n > c->held.cap) {
		size_t cap = c->held.cap ? c->held.cap : 4096;
		while (cap < c->held.len + n)
			cap *= 2;
		c->held.data = mem_realloc(c->held.data, cap);
		c->held.cap = cap;
	}
	evbuffer_remove(in, c->held.data + c->held.len, n);
	c->held.len += n;
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
	buf_release(&c->req);
	buf_release(&c->body);
	free(c->headers);
	c->headers = NULL;
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
	wire_stream_init(&c->ws, &h->limits);
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
	h->limits = (struct wire_limits){ httpd_methods, opt->max_head, opt->max_body };
	RAND_bytes((unsigned char *)&h->salt, sizeof h->salt);
	h->listener = evconnlistener_new(base, httpd_on_accept, h, LEV_OPT_CLOSE_ON_FREE, -1, opt->listen_fd);
	if (!h->listener) {
		snprintf(err, errlen, "cannot accept on the listening socket");
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
	free(h);
}
