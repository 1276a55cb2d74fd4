/* Callbacks: each fulfillment's timeline (accepted, shipped, delivered;
 * or rejected; or cancelled), played back to dropshipd as signed requests.
 * A fulfillment's callbacks wait in its outbox and go one at a time, in
 * order, retried with backoff; connections to dropshipd are pooled (stock
 * feeds use them too, through sim_post), and freed or reused only from
 * the kick event, outside libevent's callbacks. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "log/log.h"
#include "sig/sig.h"
#include "tls/tls.h"
#include "version/version.h"

#include "sim.h"

#define SIM_CB_INFLIGHT_MAX 64        /* callbacks on the wire at once */
#define SIM_CB_IDLE_MAX 32            /* keep-alive connections kept for reuse */
#define SIM_CB_TIMEOUT_S 10

/* Callback types, in the order a happy fulfillment sends them. */
enum cb_type { CB_ACCEPTED, CB_SHIPPED, CB_DELIVERED, CB_REJECTED, CB_CANCELLED };

static const char *const cb_type_names[] = {
	"fulfillment.accepted", "fulfillment.shipped", "fulfillment.delivered",
	"fulfillment.rejected", "fulfillment.cancelled",
};

/* One callback waiting in a fulfillment's outbox. */
struct sim_cb_event {
	struct sim_cb_event *next;
	enum cb_type type;
	int attempts;                  /* made so far */
	char *body;                    /* built once: every retry sends the same bytes */
	size_t len;
};

/* An outbound connection to dropshipd, for callbacks and feeds. */
struct sim_cb_conn {
	struct sim *sim;
	struct evhttp_connection *evcon;
	sim_post_done done;            /* the request on the wire ends here; NULL when idle */
	void *done_arg;
	int dead;                      /* closed or failed: never reused, freed by the reaper */
	int idle;                      /* in sim.idle */
	enum evhttp_request_error err; /* last error libevent reported */
	int err_set;
	struct sim_cb_conn *prev, *next; /* all connections */
	struct sim_cb_conn *idle_next;
};

/* Runs on_kick once libevent's current callback has returned. */
static void kick(struct sim *sim)
{
	event_active(sim->kick, EV_TIMEOUT, 0);
}

static void iso_now(char *buf, size_t cap)
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- outbox ---- */

static char *cb_body(const struct sim_ful *f, enum cb_type type, size_t *len)
{
	char when[32];
	iso_now(when, sizeof when);
	json_t *tracking = json_null();
	if (type == CB_SHIPPED) {
		/* Stable per request id, so repeated runs print the same numbers. */
		struct sim_tracking t;
		sim_tracking(f->id, &t);
		json_decref(tracking);
		tracking = json_pack("{s:s, s:s, s:s}", "carrier", t.carrier, "number", t.number, "url", t.url);
	}
	json_t *reason = type == CB_REJECTED ? json_string(f->sim->o->reject_reason) : json_null();
	json_t *b = json_pack("{s:s, s:s, s:s, s:o*, s:o*}", "type", cb_type_names[type],
	                      "request_id", f->id, "occurred_at", when, "tracking", tracking,
	                      "reason", reason);
	char *text = b ? json_dumps(b, JSON_COMPACT) : NULL;
	json_decref(b);
	*len = text ? strlen(text) : 0;
	return text;
}

static void ready_push(struct sim *sim, struct sim_ful *f)
{
	f->ready_next = NULL;
	if (sim->ready_tail)
		sim->ready_tail->ready_next = f;
	else
		sim->ready_head = f;
	sim->ready_tail = f;
	kick(sim);
}

/* Queues a callback behind the others of the same request: dropshipd must
 * see accepted before shipped, so one request has one callback in flight. */
static void cb_queue(struct sim_ful *f, enum cb_type type)
{
	struct sim *sim = f->sim;
	if (!sim->o->callback_url)
		return;
	char qid[SIM_ID_MAX + 8];
	struct sim_cb_event *e = calloc(1, sizeof *e);
	if (!e || !(e->body = cb_body(f, type, &e->len))) {
		free(e);
		sim->stats.callbacks_failed++;
		log_error("callback dropped", "request_id=%s type=%s error=\"out of memory\"",
		          log_quote(qid, sizeof qid, f->id), cb_type_names[type]);
		return;
	}
	e->type = type;
	if (f->out_tail)
		f->out_tail->next = e;
	else
		f->out_head = e;
	f->out_tail = e;
	if (!f->busy) {
		f->busy = 1;
		ready_push(sim, f);
	}
}

/* ---- timeline ---- */

static void step_arm(struct sim_ful *f, long delay_ms);

static void on_step(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct sim_ful *f = arg;
	const struct sim_opts *o = f->sim->o;
	switch (f->state) {
	case SIM_FUL_RECEIVED:
		if (f->reject) {
			sim_ful_set_state(f, SIM_FUL_REJECTED);
			cb_queue(f, CB_REJECTED);
			break;
		}
		sim_ful_set_state(f, SIM_FUL_ACCEPTED);
		cb_queue(f, CB_ACCEPTED);
		step_arm(f, o->ship_ms - o->accept_ms);
		return;
	case SIM_FUL_ACCEPTED:
		sim_ful_set_state(f, SIM_FUL_SHIPPED);
		cb_queue(f, CB_SHIPPED);
		step_arm(f, o->deliver_ms - o->ship_ms);
		return;
	case SIM_FUL_SHIPPED:
		sim_ful_set_state(f, SIM_FUL_DELIVERED);
		cb_queue(f, CB_DELIVERED);
		break;
	default:
		break;
	}
	/* The timeline is over: the timer is not pending, so it may go now. */
	event_free(f->step);
	f->step = NULL;
}

/* Schedules the next timeline step delay_ms from now (the delays on the
 * command line count from receipt, so steps subtract the previous one). */
static void step_arm(struct sim_ful *f, long delay_ms)
{
	struct timeval tv = sim_ms_tv(delay_ms > 0 ? delay_ms : 0);
	if (!f->step)
		f->step = evtimer_new(f->sim->base, on_step, f);
	if (!f->step || evtimer_add(f->step, &tv) < 0) {
		char qid[SIM_ID_MAX + 8];
		log_error("cannot schedule callback", "request_id=%s", log_quote(qid, sizeof qid, f->id));
	}
}

static void step_stop(struct sim_ful *f)
{
	if (f->step) {
		event_free(f->step);
		f->step = NULL;
	}
}

void sim_cb_play(struct sim_ful *f)
{
	const struct sim_opts *o = f->sim->o;
	if (o->callback_url)
		step_arm(f, o->accept_ms);
}

void sim_cb_cancel(struct sim_ful *f)
{
	step_stop(f);
	sim_ful_set_state(f, SIM_FUL_CANCELLED);
	cb_queue(f, CB_CANCELLED);
}

void sim_cb_forget(struct sim_ful *f)
{
	if (f->step)
		event_free(f->step);
	if (f->retry)
		event_free(f->retry);
	while (f->out_head) {
		struct sim_cb_event *e = f->out_head;
		f->out_head = e->next;
		free(e->body);
		free(e);
	}
}

/* ---- attempts, retries, connections ---- */

static void on_retry_due(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct sim_ful *f = arg;
	ready_push(f->sim, f);
}

/* The wait after attempt number attempts failed: 100 ms doubling up to 5 s,
 * without jitter so that a run can be reproduced. */
static long backoff_ms(int attempts)
{
	long delay = SIM_CB_BACKOFF_MS;
	for (int i = 1; i < attempts && delay < SIM_CB_BACKOFF_MAX_MS; i++)
		delay *= 2;
	return delay < SIM_CB_BACKOFF_MAX_MS ? delay : SIM_CB_BACKOFF_MAX_MS;
}

/* Ends the attempt on the outbox head: done (sent, conflict, given up) or
 * retried after a backoff. status 0 = no HTTP answer. */
static void cb_attempt_done(struct sim_ful *f, int status, const char *error)
{
	struct sim *sim = f->sim;
	struct sim_cb_event *e = f->out_head;
	const char *supplier = sim->o->suppliers[f->supplier].code;
	char qid[SIM_ID_MAX + 8], qerr[300];
	log_quote(qid, sizeof qid, f->id);
	log_quote(qerr, sizeof qerr, error ? error : "");
	if (status >= 200 && status < 300) {
		sim->stats.callbacks_sent++;
		log_info("callback sent", "supplier=%s request_id=%s type=%s status=%d attempt=%d",
		         supplier, qid, cb_type_names[e->type], status, e->attempts);
	} else if (status == 409) {
		/* dropshipd refuses the transition; sending it again cannot help. */
		sim->stats.callbacks_failed++;
		log_warn("callback refused", "supplier=%s request_id=%s type=%s status=409 attempt=%d",
		         supplier, qid, cb_type_names[e->type], e->attempts);
	} else if (e->attempts <= SIM_CB_RETRIES) {
		long delay = backoff_ms(e->attempts);
		sim->stats.callbacks_retried++;
		log_warn("callback failed",
		         "supplier=%s request_id=%s type=%s status=%d error=%s attempt=%d retry_in_ms=%ld",
		         supplier, qid, cb_type_names[e->type], status, qerr, e->attempts, delay);
		struct timeval tv = sim_ms_tv(delay);
		if (!f->retry)
			f->retry = evtimer_new(sim->base, on_retry_due, f);
		if (f->retry && evtimer_add(f->retry, &tv) == 0)
			return;
		ready_push(sim, f); /* no timer: retry at once rather than never */
		return;
	} else {
		sim->stats.callbacks_failed++;
		log_error("callback given up", "supplier=%s request_id=%s type=%s status=%d error=%s attempts=%d",
		          supplier, qid, cb_type_names[e->type], status, qerr, e->attempts);
	}
	f->out_head = e->next;
	if (!f->out_head)
		f->out_tail = NULL;
	free(e->body);
	free(e);
	if (f->out_head) {
		ready_push(sim, f);
	} else {
		f->busy = 0;
		if (f->retry) {
			event_free(f->retry);
			f->retry = NULL;
		}
	}
}

static void conn_idle_remove(struct sim *sim, struct sim_cb_conn *c)
{
	for (struct sim_cb_conn **pp = &sim->idle; *pp; pp = &(*pp)->idle_next)
		if (*pp == c) {
			*pp = c->idle_next;
			sim->nidle--;
			break;
		}
	c->idle = 0;
	c->idle_next = NULL;
}

/* libevent is inside the connection: mark it, the reaper frees it. */
static void on_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	struct sim_cb_conn *c = arg;
	c->dead = 1;
	if (c->idle)
		conn_idle_remove(c->sim, c);
	kick(c->sim);
}

static void conn_free(struct sim_cb_conn *c)
{
	struct sim *sim = c->sim;
	if (c->idle)
		conn_idle_remove(sim, c);
	if (c->prev)
		c->prev->next = c->next;
	else
		sim->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->evcon) {
		evhttp_connection_set_closecb(c->evcon, NULL, NULL);
		evhttp_connection_free(c->evcon); /* frees the bufferevent and its SSL */
	}
	free(c);
}

static struct sim_cb_conn *conn_new(struct sim *sim)
{
	struct sim_cb_conn *c = calloc(1, sizeof *c);
	SSL *ssl = c ? tls_client_ssl_new(sim->client_ctx, sim->cb_host) : NULL;
	struct bufferevent *bev = ssl ? bufferevent_openssl_socket_new(sim->base, -1, ssl,
		BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS) : NULL;
	if (!bev) {
		SSL_free(ssl);
		free(c);
		return NULL;
	}
	/* A server that closes an idle connection without close_notify is normal. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	c->evcon = evhttp_connection_base_bufferevent_new(sim->base, NULL, bev, sim->cb_host,
	                                                  (unsigned short)sim->cb_port);
	if (!c->evcon) {
		bufferevent_free(bev);
		free(c);
		return NULL;
	}
	evhttp_connection_set_timeout(c->evcon, SIM_CB_TIMEOUT_S);
	evhttp_connection_set_max_body_size(c->evcon, SIM_MAX_BODY);
	evhttp_connection_set_closecb(c->evcon, on_conn_closed, c);
	c->sim = sim;
	c->next = sim->conns;
	if (sim->conns)
		sim->conns->prev = c;
	sim->conns = c;
	return c;
}

/* What went wrong on a connection, in words: TLS verification first. */
static void conn_error_text(const struct sim_cb_conn *c, char *buf, size_t cap)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(c->evcon);
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	unsigned long e = 0, last;
	while (bev && (last = bufferevent_get_openssl_error(bev)) != 0)
		e = last;
	if (vr != X509_V_OK) {
		snprintf(buf, cap, "certificate verify failed: %s", X509_verify_cert_error_string(vr));
		return;
	}
	if (e) {
		ERR_error_string_n(e, buf, cap);
		return;
	}
	static const char *const names[] = { "timeout", "connection closed", "buffer error",
	                                     "request cancelled", "data too long" };
	if (c->err_set && (unsigned)c->err < sizeof names / sizeof names[0])
		snprintf(buf, cap, "%s", names[c->err]);
	else
		snprintf(buf, cap, "connection failed");
}

static void on_cb_error(enum evhttp_request_error err, void *arg)
{
	struct sim_cb_conn *c = arg;
	c->err = err;
	c->err_set = 1;
}

static void on_cb_done(struct evhttp_request *req, void *arg)
{
	struct sim_cb_conn *c = arg;
	struct sim *sim = c->sim;
	sim_post_done done = c->done;
	void *done_arg = c->done_arg;
	int status = req ? evhttp_request_get_response_code(req) : 0;
	char err[256] = "";
	c->done = NULL;
	c->done_arg = NULL;
	sim->cb_inflight--;
	if (status == 0) {
		conn_error_text(c, err, sizeof err);
		c->dead = 1;
	} else if (!c->dead && sim->nidle < SIM_CB_IDLE_MAX) {
		c->idle = 1;
		c->idle_next = sim->idle;
		sim->idle = c;
		sim->nidle++;
	} else {
		c->dead = 1;
	}
	if (status != 0 && (status < 200 || status >= 300))
		snprintf(err, sizeof err, "HTTP %d", status);
	struct evbuffer *in = req && status ? evhttp_request_get_input_buffer(req) : NULL;
	size_t len = in ? evbuffer_get_length(in) : 0;
	const char *answer = len ? (const char *)evbuffer_pullup(in, -1) : "";
	if (done)
		done(done_arg, status, answer, len, err);
	/* Freeing or reusing the connection waits until libevent has left it. */
	kick(sim);
}

int sim_post(struct sim *sim, const struct sim_supplier *s, const char *path, const char *id, const char *body,
             size_t len, sim_post_done done, void *arg, char *err, size_t errlen)
{
	struct sim_cb_conn *c = sim->idle;
	if (c)
		conn_idle_remove(sim, c);
	else
		c = conn_new(sim);
	if (!c) {
		snprintf(err, errlen, "cannot create a connection");
		return -1;
	}
	char ts[24], sigv[SIG_V1_MAX], full[800];
	int64_t now = (int64_t)time(NULL);
	snprintf(ts, sizeof ts, "%" PRId64, now);
	snprintf(full, sizeof full, "%s%s", sim->cb_path, path);
	struct evhttp_request *req = evhttp_request_new(on_cb_done, c);
	if (!req || sig_sign_standard(s->secret, id, now, body, len, sigv, sizeof sigv) < 0) {
		if (req)
			evhttp_request_free(req);
		c->dead = 1;
		kick(sim);
		snprintf(err, errlen, "cannot build the request");
		return -1;
	}
	evhttp_request_set_error_cb(req, on_cb_error);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", sim->cb_host_header);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "User-Agent", SIM_NAME "/" DROPSHIP_VERSION);
	evhttp_add_header(h, "webhook-id", id);
	evhttp_add_header(h, "webhook-timestamp", ts);
	evhttp_add_header(h, "webhook-signature", sigv);
	evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
	c->done = done;
	c->done_arg = arg;
	c->err_set = 0;
	sim->cb_inflight++;
	if (evhttp_make_request(c->evcon, req, EVHTTP_REQ_POST, full) < 0 && c->done == done &&
	    c->done_arg == arg) {
		/* Refused before any callback ran: nothing was sent. */
		c->done = NULL;
		c->done_arg = NULL;
		c->dead = 1;
		sim->cb_inflight--;
		kick(sim);
		snprintf(err, errlen, "cannot start the request");
		return -1;
	}
	return 0;
}

/* sim_post's end for the callback at the head of f's outbox. */
static void cb_post_done(void *arg, int status, const char *answer, size_t len, const char *error)
{
	(void)answer, (void)len;
	cb_attempt_done(arg, status, error);
}

static void cb_send(struct sim *sim, struct sim_ful *f)
{
	struct sim_cb_event *e = f->out_head;
	const struct sim_supplier *s = &sim->o->suppliers[f->supplier];
	char id[SIM_ID_MAX + 32], path[200], err[64];
	const char *suffix = strchr(cb_type_names[e->type], '.') + 1;
	snprintf(id, sizeof id, "evt_%s_%s", f->id, suffix);
	snprintf(path, sizeof path, "/v1/suppliers/%s/callbacks", s->code);
	e->attempts++;
	char qid[SIM_ID_MAX + 8];
	log_debug("callback sending", "supplier=%s request_id=%s type=%s attempt=%d", s->code,
	          log_quote(qid, sizeof qid, f->id), cb_type_names[e->type], e->attempts);
	if (sim_post(sim, s, path, id, e->body, e->len, cb_post_done, f, err, sizeof err) < 0)
		cb_attempt_done(f, 0, err);
}

/* Runs outside libevent's own callbacks: frees dead connections, then
 * starts queued callbacks up to the in-flight cap. */
static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct sim *sim = arg;
	for (struct sim_cb_conn *c = sim->conns, *next; c; c = next) {
		next = c->next;
		if (c->dead && !c->done)
			conn_free(c);
	}
	while (sim->cb_inflight < SIM_CB_INFLIGHT_MAX && sim->ready_head) {
		struct sim_ful *f = sim->ready_head;
		sim->ready_head = f->ready_next;
		if (!sim->ready_head)
			sim->ready_tail = NULL;
		f->ready_next = NULL;
		cb_send(sim, f);
	}
}

/* ---- setup ---- */

int sim_cb_init(struct sim *sim)
{
	sim->kick = event_new(sim->base, -1, 0, on_kick, sim);
	return sim->kick ? 0 : -1;
}

void sim_cb_free(struct sim *sim)
{
	while (sim->conns)
		conn_free(sim->conns);
	if (sim->kick)
		event_free(sim->kick);
}

int sim_cb_parse_url(struct sim *sim, const char *url, char *err, size_t errlen)
{
	struct evhttp_uri *u = evhttp_uri_parse(url);
	const char *scheme = u ? evhttp_uri_get_scheme(u) : NULL;
	const char *host = u ? evhttp_uri_get_host(u) : NULL;
	int rc = -1;
	if (!scheme || strcasecmp(scheme, "https") != 0 || !host || !*host) {
		snprintf(err, errlen, "--callback-url: expected https://HOST[:PORT][/PATH], got '%s'", url);
		goto done;
	}
	if (evhttp_uri_get_query(u) || evhttp_uri_get_fragment(u) || evhttp_uri_get_userinfo(u)) {
		snprintf(err, errlen, "--callback-url: no user, query or fragment allowed, got '%s'", url);
		goto done;
	}
	size_t hl = strlen(host);
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']')
		snprintf(sim->cb_host, sizeof sim->cb_host, "%.*s", (int)(hl - 2), host + 1);
	else
		snprintf(sim->cb_host, sizeof sim->cb_host, "%s", host);
	int port = evhttp_uri_get_port(u);
	sim->cb_port = port > 0 ? port : 443;
	if (strchr(sim->cb_host, ':'))
		snprintf(sim->cb_host_header, sizeof sim->cb_host_header, "[%s]:%d", sim->cb_host, sim->cb_port);
	else
		snprintf(sim->cb_host_header, sizeof sim->cb_host_header, "%s:%d", sim->cb_host, sim->cb_port);
	const char *path = evhttp_uri_get_path(u);
	size_t pl = path ? strlen(path) : 0;
	while (pl > 0 && path[pl - 1] == '/')
		pl--;
	if (pl >= sizeof sim->cb_path) {
		snprintf(err, errlen, "--callback-url: path too long");
		goto done;
	}
	snprintf(sim->cb_path, sizeof sim->cb_path, "%.*s", (int)pl, path ? path : "");
	rc = 0;
done:
	if (u)
		evhttp_uri_free(u);
	return rc;
}
