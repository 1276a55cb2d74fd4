/* One worker of dropship-bench: an event loop, its share of keep-alive TLS
 * connections, one request in flight per connection.
 *
 * Closed loop (no --rate): each connection sends its next order as soon as
 * the answer to the last one is in; latency runs from the send.
 * Open loop (--rate): request k is due at t0 + k / rate whether or not a
 * connection is free; a free connection takes the oldest due request, and
 * its latency runs from when it was due, so a server that falls behind
 * shows it in the percentiles instead of slowing the generator down
 * (coordinated omission).
 * Idle (--idle): connections only complete the TLS handshake and are held.
 * Callbacks (--callbacks): each request is a supplier callback for the next
 * line of the file instead of an order; the run ends at the end of
 * --duration or, sooner, with the answer to the last line.
 *
 * A request counts when it starts (is due, in open loop) inside the window
 * [end of warm-up, end of run); after the end, answers in flight are
 * awaited for up to --timeout. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "bench.h"
#include "sig/sig.h"
#include "tls/tls.h"

/* Handshakes in flight per worker: 10000 idle connections opened at once
 * would overflow the server's listen backlog and time out. */
#define LOAD_MAX_HANDSHAKES 128
/* Status line or one header line; an answer with a longer one is refused. */
#define LOAD_LINE_MAX 8192
/* Tries per connection before idle mode gives it up. */
#define LOAD_IDLE_TRIES 3
#define LOAD_TICK_MS 50

#define CONN_STATES(X)                                                        \
	X(CONN_CLOSED, "closed")          /* no socket: waiting to (re)connect */ \
	X(CONN_CONNECTING, "connecting")  /* TCP connect and TLS handshake */     \
	X(CONN_IDLE, "idle")              /* connected, nothing in flight */      \
	X(CONN_STATUS, "status")          /* request sent, awaiting the status line */ \
	X(CONN_HEADERS, "headers")        /* reading the answer's headers */      \
	X(CONN_BODY, "body")              /* reading the answer's body */

#define CONN_ENUM(id, name) id,
enum conn_state { CONN_STATES(CONN_ENUM) CONN_STATE_MAX };
#undef CONN_ENUM

#define CONN_NAME(id, name) name,
static const char *const conn_state_names[] = { CONN_STATES(CONN_NAME) };
#undef CONN_NAME

#define ERR_NAME(id, name) name,
static const char *const bench_error_names[] = { BENCH_ERRORS(ERR_NAME) };
#undef ERR_NAME

enum load_phase {
	PHASE_CONNECT,  /* opening every connection */
	PHASE_RUN,      /* sending (warm-up included) */
	PHASE_DRAIN,    /* past the end: awaiting the answers in flight */
	PHASE_HOLD,     /* idle mode: every connection up, held until the end */
	PHASE_DONE,
};

struct bench_worker;

/* One keep-alive connection. */
struct conn {
	enum conn_state state;
	struct bench_worker *w;
	struct bufferevent *bev;  /* NULL while closed and freed */
	struct event *reopen;     /* frees the old bufferevent, then connects anew */
	int tries;                /* consecutive failed connects: the reopen backoff */
	int settled;              /* connect phase: counted as up or given up */
	uint64_t start_ns;        /* latency origin: due time (open loop) or send time */
	int counted;              /* the request in flight started inside the window */
	int status;               /* of the answer being read */
	int64_t body_left;        /* -1 until Content-Length is seen */
	int close_after;          /* the answer said Connection: close */
};

struct bench_worker {
	const struct bench_opts *o;
	const struct bench_target *t;
	struct bench_shared *sh;
	int id;
	struct event_base *base;
	struct conn *conns;
	int nconns;
	int next_open;            /* connect phase: next connection to open */
	int connecting;           /* handshakes in flight */
	int settled;              /* connect phase: connections up or given up */
	int in_flight;            /* requests awaiting an answer */
	int *idle;                /* open loop: stack of idle connection indexes */
	int nidle;
	enum load_phase phase;
	uint64_t t0, t_warm, t_end, t_drain;
	double interval_ns;       /* open loop: spacing of this worker's requests; 0 closed */
	uint64_t next_k;          /* open loop: next request to send */
	uint64_t sent;            /* open loop: requests sent inside the window */
	int exhausted;            /* callbacks mode: every line of the file was taken */
	uint64_t last_done_ns;    /* when the last counted answer came in */
	struct event *tick;
	struct event *sched;      /* open loop: fires when the next request is due */
	struct timeval timeout;   /* --timeout */
	uint64_t rng;
	uint64_t seq;
	char id_prefix[64];       /* makes order ids unique across runs and threads */
	char *body;
	size_t bodycap;
	char placed_at[32];
	time_t placed_s;
	struct bench_result res;
	int told[BENCH_ERR_MAX];  /* each kind of failure is printed once */
};

static void conn_open(struct conn *c);
static void conn_ready(struct conn *c);
static void worker_dispatch(struct bench_worker *w);
static void worker_settle(struct bench_worker *w, struct conn *c, int up);
static void worker_exhausted(struct bench_worker *w);

const char *bench_error_name(enum bench_error e)
{
	return e < BENCH_ERR_MAX ? bench_error_names[e] : "?";
}

static uint64_t load_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct timeval load_tv(uint64_t ns)
{
	struct timeval tv = { (time_t)(ns / 1000000000u), (suseconds_t)(ns % 1000000000u / 1000u) };
	return tv;
}

/* xorshift64*: SKU draws need speed and spread, not secrecy. */
static uint64_t load_rand(struct bench_worker *w)
{
	uint64_t x = w->rng;
	x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
	w->rng = x;
	return x * 2685821657736338717u;
}

/* Legal transitions, one bit per target state. */
static const unsigned conn_next[CONN_STATE_MAX] = {
	[CONN_CLOSED] = 1u << CONN_CONNECTING,
	[CONN_CONNECTING] = 1u << CONN_IDLE | 1u << CONN_CLOSED,
	[CONN_IDLE] = 1u << CONN_STATUS | 1u << CONN_CLOSED,
	[CONN_STATUS] = 1u << CONN_HEADERS | 1u << CONN_CLOSED,
	[CONN_HEADERS] = 1u << CONN_BODY | 1u << CONN_IDLE | 1u << CONN_CLOSED,
	[CONN_BODY] = 1u << CONN_IDLE | 1u << CONN_CLOSED,
};

static void conn_set_state(struct conn *c, enum conn_state to)
{
	if (!(conn_next[c->state] & 1u << to)) {
		fprintf(stderr, BENCH_NAME ": bug: connection %s -> %s\n", conn_state_names[c->state],
		        conn_state_names[to]);
		assert(0);
	}
	c->state = to;
}

static int worker_counts_errors(const struct bench_worker *w)
{
	return w->phase == PHASE_CONNECT || w->phase == PHASE_RUN || w->phase == PHASE_HOLD;
}

/* Removes c from the idle stack, if it is there. */
static void worker_unidle(struct bench_worker *w, struct conn *c)
{
	int i = (int)(c - w->conns);
	for (int k = 0; k < w->nidle; k++)
		if (w->idle[k] == i) {
			w->idle[k] = w->idle[--w->nidle];
			return;
		}
}

static void conn_on_reopen(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct conn *c = arg;
	struct bench_worker *w = c->w;
	if (c->bev) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	if (w->phase == PHASE_RUN || w->phase == PHASE_CONNECT)
		conn_open(c);
}

/* The connection is gone (err < 0: closed cleanly, nothing to count). Its
 * bufferevent is freed from a timer, never inside its own callback. */
static void conn_close(struct conn *c, int err)
{
	struct bench_worker *w = c->w;
	enum conn_state was = c->state;
	int in_flight = was == CONN_STATUS || was == CONN_HEADERS || was == CONN_BODY;
	if (err >= 0 && (c->counted || (!in_flight && worker_counts_errors(w))))
		w->res.errors[err]++;
	if (in_flight)
		w->in_flight--;
	c->counted = 0;
	if (was == CONN_IDLE)
		worker_unidle(w, c);
	if (c->bev)
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	conn_set_state(c, CONN_CLOSED);
	if (was == CONN_CONNECTING) {
		w->connecting--;
		c->tries++;
		if (w->o->idle > 0) {
			if (c->tries >= LOAD_IDLE_TRIES) {
				worker_settle(w, c, 0);
				return;
			}
		} else if (!c->settled) {
			worker_settle(w, c, 0);  /* the run starts even if the server is down */
		}
	}
	if (w->phase == PHASE_HOLD)
		w->res.dropped++;
	/* Backoff after failed connects: a refusing server is not hammered. */
	uint64_t delay_ms = c->tries ? 50u << (c->tries < 5 ? c->tries : 5) : 0;
	struct timeval tv = load_tv(delay_ms * 1000000u);
	evtimer_add(c->reopen, &tv);
}

/* Refreshes w->placed_at, the time put into bodies, once a second. */
static void load_stamp(struct bench_worker *w)
{
	time_t now = time(NULL);
	if (now != w->placed_s) {
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(w->placed_at, sizeof w->placed_at, "%Y-%m-%dT%H:%M:%SZ", &tm);
		w->placed_s = now;
	}
}

/* Builds a new order in w->body. Returns its length, or -1 if it did not fit. */
static int load_build_body(struct bench_worker *w, const char *order_id)
{
	const struct bench_opts *o = w->o;
	char *p = w->body;
	size_t cap = w->bodycap;
	int n = snprintf(p, cap,
	                 "{\"type\":\"order.created\",\"order\":{\"id\":\"%s\",\"currency\":\"USD\","
	                 "\"placed_at\":\"%s\",\"customer\":{\"email\":\"bench@example.com\","
	                 "\"name\":\"Bench Buyer\"},\"shipping_address\":{\"name\":\"Bench Buyer\","
	                 "\"line1\":\"1 Main St\",\"line2\":\"\",\"city\":\"Austin\",\"region\":\"TX\","
	                 "\"postal_code\":\"78701\",\"country\":\"%s\",\"phone\":\"+15125550100\"},"
	                 "\"items\":[",
	                 order_id, w->placed_at, o->country);
	for (int i = 0; i < o->lines && n >= 0 && (size_t)n < cap; i++) {
		long sku = (long)(load_rand(w) % (uint64_t)o->skus);
		int m = snprintf(p + n, cap - (size_t)n,
		                 "%s{\"sku\":\"%s%0*ld\",\"quantity\":1,\"unit_price\":\"9.99\","
		                 "\"title\":\"Bench item\"}",
		                 i ? "," : "", o->sku_prefix, o->sku_width, sku);
		n = m < 0 ? -1 : n + m;
	}
	if (n >= 0 && (size_t)n < cap) {
		int m = snprintf(p + n, cap - (size_t)n, "]}}");
		n = m < 0 ? -1 : n + m;
	}
	return n >= 0 && (size_t)n < cap ? n : -1;
}

/* The next request's path, webhook-id, signing secret and body (in
 * w->body). Returns the body's length, -1 if it did not fit, or -2 when
 * a callbacks run has sent every line of its file. */
static int load_next_request(struct bench_worker *w, char *path, size_t pathcap, char *msg_id,
                             size_t idcap, const char **secret)
{
	const struct bench_opts *o = w->o;
	load_stamp(w);
	if (!o->callbacks) {
		char order_id[96];
		snprintf(order_id, sizeof order_id, "%s-%" PRIu64, w->id_prefix, ++w->seq);
		snprintf(msg_id, idcap, "msg_%s", order_id);
		snprintf(path, pathcap, "%s", w->t->path);
		*secret = o->secret;
		return load_build_body(w, order_id);
	}
	size_t i = atomic_fetch_add(&w->sh->next_cb, 1);
	if (i >= w->t->ncbs)
		return -2;
	const struct bench_cb *cb = &w->t->cbs[i];
	/* One event per request and type: a second run of the same file is
	 * answered as a repeat (200, duplicate), as a supplier's retry would be. */
	snprintf(msg_id, idcap, "evt_%s_%s", cb->request_id, bench_cb_type_name(o->cb_type));
	snprintf(path, pathcap, "%s/v1/suppliers/%s/callbacks", w->t->base, cb->code);
	*secret = cb->secret;
	return bench_callback_body(o, cb, w->placed_at, w->body, w->bodycap);
}

/* Sends the next signed request on c; its latency runs from start_ns.
 * Returns 0, or -1 when a callbacks run has nothing left to send (c is
 * left as it was). */
static int conn_send(struct conn *c, uint64_t start_ns)
{
	struct bench_worker *w = c->w;
	char path[600], msg_id[160], sig[SIG_V1_MAX];
	const char *secret = NULL;
	int len = load_next_request(w, path, sizeof path, msg_id, sizeof msg_id, &secret);
	if (len == -2)
		return -1;
	int64_t ts = (int64_t)time(NULL);
	conn_set_state(c, CONN_STATUS);
	c->start_ns = start_ns;
	c->counted = start_ns >= w->t_warm && start_ns < w->t_end;
	c->status = 0;
	c->body_left = -1;
	c->close_after = 0;
	w->in_flight++;
	if (len < 0 || sig_sign_standard(secret, msg_id, ts, w->body, (size_t)len, sig, sizeof sig) < 0) {
		conn_close(c, BENCH_ERR_PROTOCOL);  /* cannot happen with checked options */
		return 0;
	}
	struct evbuffer *out = bufferevent_get_output(c->bev);
	evbuffer_add_printf(out,
	                    "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
	                    "Content-Length: %d\r\nwebhook-id: %s\r\nwebhook-timestamp: %" PRId64 "\r\n"
	                    "webhook-signature: %s\r\n\r\n",
	                    path, w->t->host_header, len, msg_id, ts, sig);
	evbuffer_add(out, w->body, (size_t)len);
	bufferevent_set_timeouts(c->bev, &w->timeout, &w->timeout);
	return 0;
}

/* The answer is complete: record it, then reuse or reopen the connection. */
static void conn_done(struct conn *c)
{
	struct bench_worker *w = c->w;
	if (c->counted) {
		uint64_t now = load_now_ns();
		w->res.status[c->status]++;
		hist_record(&w->res.latency, now > c->start_ns ? (now - c->start_ns) / 1000u : 0);
		w->last_done_ns = now;
	}
	c->counted = 0;
	w->in_flight--;
	conn_set_state(c, CONN_IDLE);
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	if (c->close_after) {
		conn_close(c, -1);
		return;
	}
	conn_ready(c);
}

/* One CRLF-terminated line from in: 1 read, 0 incomplete, -1 too long. */
static int load_read_line(struct evbuffer *in, char *line, size_t cap)
{
	size_t eol = 0;
	struct evbuffer_ptr at = evbuffer_search_eol(in, NULL, &eol, EVBUFFER_EOL_CRLF_STRICT);
	if (at.pos < 0)
		return evbuffer_get_length(in) >= cap ? -1 : 0;
	if ((size_t)at.pos >= cap)
		return -1;
	evbuffer_remove(in, line, (size_t)at.pos);
	line[at.pos] = '\0';
	evbuffer_drain(in, eol);
	return 1;
}

/* "HTTP/1.x NNN reason": the status, or -1. HTTP/1.0 closes after. */
static int load_parse_status(struct conn *c, const char *line)
{
	if (strncmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') || line[8] != ' ')
		return -1;
	int s = 0;
	for (int i = 9; i < 12; i++) {
		if (line[i] < '0' || line[i] > '9')
			return -1;
		s = s * 10 + (line[i] - '0');
	}
	if (s < 100 || s >= BENCH_STATUS_MAX || (line[12] != ' ' && line[12] != '\0'))
		return -1;
	c->status = s;
	c->close_after = line[7] == '0';
	return 0;
}

/* Takes what matters of one header line. Returns 0, or -1 for an answer
 * the generator does not read (chunked: dropshipd always sends a length). */
static int load_parse_header(struct conn *c, const char *line)
{
	const char *colon = strchr(line, ':');
	if (!colon)
		return -1;
	const char *v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	size_t name = (size_t)(colon - line);
	if (name == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
		char *end;
		errno = 0;
		long long n = strtoll(v, &end, 10);
		if (errno || end == v || n < 0)
			return -1;
		c->body_left = n;
	} else if (name == 10 && strncasecmp(line, "Connection", 10) == 0) {
		if (strcasestr(v, "close"))
			c->close_after = 1;
	} else if (name == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0) {
		return -1;
	}
	return 0;
}

/* Advances the answer parser by one step. Returns 1 to go on, 0 to wait
 * for more input, -1 on a protocol error. */
static int conn_parse_step(struct conn *c, struct evbuffer *in)
{
	char line[LOAD_LINE_MAX];
	int r;
	switch (c->state) {
	case CONN_STATUS:
		if ((r = load_read_line(in, line, sizeof line)) <= 0)
			return r;
		if (load_parse_status(c, line) < 0)
			return -1;
		conn_set_state(c, CONN_HEADERS);
		return 1;
	case CONN_HEADERS:
		if ((r = load_read_line(in, line, sizeof line)) <= 0)
			return r;
		if (line[0] != '\0')
			return load_parse_header(c, line) < 0 ? -1 : 1;
		if (c->body_left < 0 && c->status != 204 && c->status != 304)
			return -1;
		if (c->body_left <= 0) {
			conn_done(c);
			return 1;
		}
		conn_set_state(c, CONN_BODY);
		return 1;
	case CONN_BODY: {
		size_t have = evbuffer_get_length(in);
		if (have == 0)
			return 0;
		size_t take = have < (size_t)c->body_left ? have : (size_t)c->body_left;
		evbuffer_drain(in, take);
		c->body_left -= (int64_t)take;
		if (c->body_left == 0)
			conn_done(c);
		return 1;
	}
	case CONN_IDLE:
		/* Nothing was asked: bytes now are a broken peer. */
		return evbuffer_get_length(in) ? -1 : 0;
	case CONN_CLOSED:
	case CONN_CONNECTING:
	case CONN_STATE_MAX:
		break;
	}
	return 0;
}

static void conn_on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	int r;
	while ((r = conn_parse_step(c, in)) > 0 && evbuffer_get_length(in) > 0)
		;
	if (r < 0)
		conn_close(c, BENCH_ERR_PROTOCOL);
}

static void conn_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	struct bench_worker *w = c->w;
	if (what & BEV_EVENT_CONNECTED) {
		int one = 1;
		setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		w->connecting--;
		c->tries = 0;
		conn_set_state(c, CONN_IDLE);
		bufferevent_set_timeouts(bev, NULL, NULL);
		bufferevent_enable(bev, EV_READ);  /* also to see the server close it */
		/* Settling may start the run, which puts c to work itself. */
		if (!c->settled) {
			worker_settle(w, c, 1);
			return;
		}
		conn_ready(c);
		return;
	}
	/* libevent records SSL_get_error()'s code (e.g. SSL_ERROR_SYSCALL) when
	 * the socket failed, and OpenSSL's packed error when TLS itself did. */
	unsigned long ssl_err = bufferevent_get_openssl_error(bev);
	if (ERR_GET_LIB(ssl_err) == 0)
		ssl_err = 0;
	int sock_err = EVUTIL_SOCKET_ERROR();
	int err;
	if (what & BEV_EVENT_TIMEOUT)
		err = BENCH_ERR_TIMEOUT;
	else if (ssl_err)
		err = BENCH_ERR_TLS;
	else if (c->state == CONN_CONNECTING)
		err = BENCH_ERR_CONNECT;
	else if (c->state == CONN_IDLE && (what & BEV_EVENT_EOF))
		err = -1;  /* a keep-alive closed between requests: reopen, no harm */
	else
		err = BENCH_ERR_CLOSED;
	/* The first failure of each kind is told, so a wrong CA or port is plain. */
	if (err >= 0 && !w->told[err]) {
		char why[256] = "";
		if (ssl_err)
			ERR_error_string_n(ssl_err, why, sizeof why);
		else if (err == BENCH_ERR_CONNECT && sock_err)
			snprintf(why, sizeof why, "%s", evutil_socket_error_to_string(sock_err));
		else
			snprintf(why, sizeof why, "%s", err == BENCH_ERR_TIMEOUT ? "no answer in time"
			                                : "connection closed by the server");
		fprintf(stderr, BENCH_NAME ": %s error: %s\n", bench_error_name((enum bench_error)err), why);
		w->told[err] = 1;
	}
	conn_close(c, err);
}

static void conn_open(struct conn *c)
{
	struct bench_worker *w = c->w;
	conn_set_state(c, CONN_CONNECTING);
	w->connecting++;
	SSL *ssl = tls_client_ssl_new(w->t->ssl_ctx, w->t->host);
	c->bev = ssl ? bufferevent_openssl_socket_new(w->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
	                                             BEV_OPT_CLOSE_ON_FREE)
	             : NULL;
	if (!c->bev) {
		SSL_free(ssl);
		ERR_clear_error();
		conn_close(c, BENCH_ERR_TLS);
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	bufferevent_setcb(c->bev, conn_on_read, NULL, conn_on_event, c);
	bufferevent_set_timeouts(c->bev, &w->timeout, &w->timeout);
	if (bufferevent_socket_connect(c->bev, (const struct sockaddr *)&w->t->addr, (int)w->t->addrlen) < 0)
		conn_close(c, BENCH_ERR_CONNECT);
}

/* c is connected and free: give it work, or park it. */
static void conn_ready(struct conn *c)
{
	struct bench_worker *w = c->w;
	if (w->phase != PHASE_RUN)
		return;
	if (w->interval_ns <= 0) {
		uint64_t now = load_now_ns();
		if (now < w->t_end && conn_send(c, now) < 0)
			worker_exhausted(w);
		return;
	}
	w->idle[w->nidle++] = (int)(c - w->conns);
	worker_dispatch(w);
}

/* Open loop: hands every request that is due to an idle connection, then
 * arms the timer for the next one while a connection is free. */
static void worker_dispatch(struct bench_worker *w)
{
	uint64_t now = load_now_ns();
	while (w->nidle > 0) {
		uint64_t due = w->t0 + (uint64_t)((double)w->next_k * w->interval_ns);
		if (due >= w->t_end)
			return;
		if (due > now) {
			struct timeval tv = load_tv(due - now);
			evtimer_add(w->sched, &tv);
			return;
		}
		int i = w->idle[--w->nidle];
		if (conn_send(&w->conns[i], due) < 0) {
			w->idle[w->nidle++] = i;
			worker_exhausted(w);
			return;
		}
		w->next_k++;
		if (due >= w->t_warm)
			w->sent++;
	}
}

static void worker_on_sched(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	worker_dispatch(arg);
}

static void worker_open_more(struct bench_worker *w)
{
	while (w->connecting < LOAD_MAX_HANDSHAKES && w->next_open < w->nconns)
		conn_open(&w->conns[w->next_open++]);
}

static void worker_start_run(struct bench_worker *w)
{
	const struct bench_opts *o = w->o;
	w->t0 = load_now_ns();
	w->t_warm = w->t0 + (uint64_t)(o->warmup_s * 1e9);
	w->t_end = w->t_warm + (uint64_t)(o->duration_s * 1e9);
	w->phase = PHASE_RUN;
	for (int i = 0; i < w->nconns; i++)
		if (w->conns[i].state == CONN_IDLE)
			conn_ready(&w->conns[i]);
}

/* A connection of the connect phase is up, or given up. */
static void worker_settle(struct bench_worker *w, struct conn *c, int up)
{
	c->settled = 1;
	w->settled++;
	if (w->o->idle > 0) {
		if (up)
			w->res.established++;
		else
			w->res.failed++;
		atomic_fetch_add(&w->sh->settled, 1);
	}
	worker_open_more(w);
	if (w->o->idle == 0 && w->phase == PHASE_CONNECT && w->settled == w->nconns)
		worker_start_run(w);
}

/* Ends the worker's loop. Answers still missing at the drain deadline
 * never came: timeouts; after a stop signal they are not waited for and
 * not counted. */
static void worker_finish(struct bench_worker *w, uint64_t now, int stopped)
{
	for (int i = 0; i < w->nconns && !stopped; i++)
		if (w->conns[i].counted)
			w->res.errors[BENCH_ERR_TIMEOUT]++;
	if (w->phase == PHASE_DRAIN || w->phase == PHASE_RUN) {
		uint64_t end = w->t_end < now ? w->t_end : now;
		/* A run that sent its whole file ends with its last answer. */
		if (w->exhausted && w->last_done_ns > end)
			end = w->last_done_ns;
		w->res.window_s = end > w->t_warm ? (double)(end - w->t_warm) / 1e9 : 0;
	} else if (w->phase == PHASE_HOLD) {
		w->res.window_s = (double)(now - w->t0) / 1e9;
	}
	w->phase = PHASE_DONE;
	event_base_loopexit(w->base, NULL);
}

/* Past the end: in open loop, what was due in the window but never sent
 * (every connection busy) is reported, as it never got a latency. */
static void worker_end_run(struct bench_worker *w, uint64_t now)
{
	if (w->interval_ns > 0 && now >= w->t_end) {
		double window = (double)(w->t_end - w->t_warm);
		uint64_t due = (uint64_t)(window / w->interval_ns);
		w->res.unsent = due > w->sent ? due - w->sent : 0;
	}
	if (now < w->t_end)
		w->t_end = now;  /* stopped early: the window ends here */
	w->phase = PHASE_DRAIN;
	w->t_drain = now + (uint64_t)(w->o->timeout_s * 1e9);
	evtimer_del(w->sched);
}

/* A callbacks run has nothing left to send: it ends once the answers in
 * flight are in. */
static void worker_exhausted(struct bench_worker *w)
{
	w->exhausted = 1;
	if (w->phase == PHASE_RUN)
		worker_end_run(w, load_now_ns());
}

static void worker_on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct bench_worker *w = arg;
	uint64_t now = load_now_ns();
	int stop = atomic_load(&w->sh->stop);
	switch (w->phase) {
	case PHASE_CONNECT:
		if (stop) {
			worker_finish(w, now, 1);
			return;
		}
		/* Idle mode: the hold starts when every worker's connections are settled. */
		if (w->o->idle > 0 && atomic_load(&w->sh->settled) >= w->o->idle) {
			if (atomic_exchange(&w->sh->ready, 1) == 0) {
				fprintf(stderr, BENCH_NAME ": ready: %ld idle connections settled; holding for %g s\n",
				        (long)atomic_load(&w->sh->settled), w->o->duration_s);
				fflush(stderr);
			}
			w->phase = PHASE_HOLD;
			w->t0 = now;
			w->t_end = now + (uint64_t)(w->o->duration_s * 1e9);
		}
		return;
	case PHASE_RUN:
		if (stop || now >= w->t_end)
			worker_end_run(w, now);
		if (w->phase == PHASE_DRAIN && (stop || w->in_flight == 0))
			worker_finish(w, now, stop);
		return;
	case PHASE_DRAIN:
		if (stop || w->in_flight == 0 || now >= w->t_drain)
			worker_finish(w, now, stop);
		return;
	case PHASE_HOLD:
		if (stop || now >= w->t_end)
			worker_finish(w, now, 0);
		return;
	case PHASE_DONE:
		return;
	}
}

struct bench_worker *bench_worker_new(const struct bench_opts *o, const struct bench_target *t,
                                      struct bench_shared *sh, int id, char *err, size_t errlen)
{
	struct bench_worker *w = calloc(1, sizeof *w);
	if (!w)
		goto nomem;
	w->o = o, w->t = t, w->sh = sh, w->id = id;
	hist_init(&w->res.latency);
	int total = o->idle > 0 ? o->idle : o->connections;
	w->nconns = total / o->threads + (id < total % o->threads);
	w->conns = calloc((size_t)w->nconns + 1, sizeof *w->conns);
	w->idle = calloc((size_t)w->nconns + 1, sizeof *w->idle);
	/* The fixed part of an order is under 600 bytes; each line adds its SKU. */
	w->bodycap = 1024 + (size_t)o->lines * (96 + strlen(o->sku_prefix) + (size_t)o->sku_width);
	w->body = malloc(w->bodycap);
	if (!w->conns || !w->idle || !w->body)
		goto nomem;
	struct event_config *cfg = event_config_new();
	/* Open-loop send times need sub-millisecond timers (timerfd), not epoll's ms. */
	if (cfg)
		event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	w->base = cfg ? event_base_new_with_config(cfg) : NULL;
	event_config_free(cfg);
	if (!w->base)
		goto nomem;
	struct timeval tick = { 0, LOAD_TICK_MS * 1000 };
	w->tick = event_new(w->base, -1, EV_PERSIST, worker_on_tick, w);
	w->sched = evtimer_new(w->base, worker_on_sched, w);
	if (!w->tick || !w->sched || event_add(w->tick, &tick) < 0)
		goto nomem;
	for (int i = 0; i < w->nconns; i++) {
		w->conns[i].w = w;
		w->conns[i].state = CONN_CLOSED;
		w->conns[i].reopen = evtimer_new(w->base, conn_on_reopen, &w->conns[i]);
		if (!w->conns[i].reopen)
			goto nomem;
	}
	w->timeout = load_tv((uint64_t)(o->timeout_s * 1e9));
	if (o->rate > 0)
		w->interval_ns = 1e9 * o->threads / o->rate;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(w->id_prefix, sizeof w->id_prefix, "bench-%ld-%lld-%d", (long)getpid(),
	         (long long)now.tv_sec, id);
	w->rng = ((uint64_t)now.tv_nsec << 20) ^ (uint64_t)getpid() ^ ((uint64_t)(id + 1) << 48);
	if (!w->rng)
		w->rng = 1;
	w->phase = PHASE_CONNECT;
	return w;
nomem:
	snprintf(err, errlen, "out of memory setting up worker %d", id);
	bench_worker_free(w);
	return NULL;
}

void bench_worker_run(struct bench_worker *w)
{
	worker_open_more(w);
	if (w->nconns == 0 && w->o->idle == 0)
		worker_start_run(w);
	event_base_dispatch(w->base);
}

struct event_base *bench_worker_base(struct bench_worker *w)
{
	return w->base;
}

const struct bench_result *bench_worker_result(const struct bench_worker *w)
{
	return &w->res;
}

void bench_worker_free(struct bench_worker *w)
{
	if (!w)
		return;
	for (int i = 0; w->conns && i < w->nconns; i++) {
		if (w->conns[i].bev)
			bufferevent_free(w->conns[i].bev);
		if (w->conns[i].reopen)
			event_free(w->conns[i].reopen);
	}
	if (w->tick)
		event_free(w->tick);
	if (w->sched)
		event_free(w->sched);
	if (w->base)
		event_base_free(w->base);
	free(w->conns);
	free(w->idle);
	free(w->body);
	free(w);
}
