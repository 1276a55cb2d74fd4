/* dropship-supplier-sim: a supplier endpoint for demos, tests and
 * benchmarks. Serves POST /suppliers/CODE/fulfillments over TLS, checks
 * dropshipd's Standard Webhooks signature, dedupes by Idempotency-Key,
 * injects failures on request, and plays the supplier's side of each
 * fulfillment back to dropshipd as signed callbacks. One thread, one loop.
 *
 * Everything lives in this one file, static: it is a test tool, and the
 * pieces it shares with dropshipd (TLS contexts, signatures, logging) come
 * from internal/. */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "log/log.h"
#include "sig/sig.h"
#include "tls/tls.h"
#include "version/version.h"

#include "sim.h"

#define SIM_MAX_BODY (1 << 20)
#define SIM_MS_MAX 86400000L          /* one day: any longer delay is a typo */
#define SIM_STATS_CAP 100000          /* by_request entries shown by /stats */
#define SIM_CB_RETRIES 10             /* retries after the first attempt */
#define SIM_CB_BACKOFF_MS 100         /* first retry delay, doubled each time */
#define SIM_CB_BACKOFF_MAX_MS 5000
#define SIM_CB_INFLIGHT_MAX 64        /* callbacks on the wire at once */
#define SIM_CB_IDLE_MAX 32            /* keep-alive connections kept for reuse */
#define SIM_CB_TIMEOUT_S 10
#define SIM_IDLE_TIMEOUT_S 60         /* inbound keep-alive connections */

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

/* An outbound connection to dropshipd for callbacks. */
struct sim_cb_conn {
	struct sim *sim;
	struct evhttp_connection *evcon;
	struct sim_ful *ful;           /* whose callback is on the wire; NULL when idle */
	int dead;                      /* closed or failed: never reused, freed by the reaper */
	int idle;                      /* in sim.idle */
	enum evhttp_request_error err; /* last error libevent reported */
	int err_set;
	struct sim_cb_conn *prev, *next; /* all connections */
	struct sim_cb_conn *idle_next;
};

static void kick(struct sim *sim);

/* ---- small helpers ---- */

static void iso_now(char *buf, size_t cap)
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- callbacks: outbox, timeline, connections ---- */

static char *cb_body(const struct sim_ful *f, enum cb_type type, size_t *len)
{
	char when[32];
	iso_now(when, sizeof when);
	json_t *tracking = json_null();
	if (type == CB_SHIPPED) {
		char number[32], url[80];
		/* Stable per request id, so repeated runs print the same numbers. */
		snprintf(number, sizeof number, "SIM%016" PRIX64, sim_id_hash(f->id));
		snprintf(url, sizeof url, "https://track.example/%s", number);
		json_decref(tracking);
		tracking = json_pack("{s:s, s:s, s:s}", "carrier", "SIMPOST", "number", number, "url", url);
	}
	json_t *reason = type == CB_REJECTED ? json_string("out_of_stock") : json_null();
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

static void step_stop(struct sim_ful *f)
{
	if (f->step) {
		event_free(f->step);
		f->step = NULL;
	}
}

static void on_retry_due(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct sim_ful *f = arg;
	ready_push(f->sim, f);
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
		long delay = SIM_CB_BACKOFF_MS;
		for (int i = 1; i < e->attempts && delay < SIM_CB_BACKOFF_MAX_MS; i++)
			delay *= 2;
		if (delay > SIM_CB_BACKOFF_MAX_MS)
			delay = SIM_CB_BACKOFF_MAX_MS;
		sim->stats.callbacks_retried++;
		log_warn("callback failed", "supplier=%s request_id=%s type=%s status=%d error=%s attempt=%d retry_in_ms=%ld",
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
	struct sim_ful *f = c->ful;
	int status = req ? evhttp_request_get_response_code(req) : 0;
	char err[256] = "";
	c->ful = NULL;
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
	if (f)
		cb_attempt_done(f, status, err);
	/* Freeing or reusing the connection waits until libevent has left it. */
	kick(sim);
}

static void cb_send(struct sim *sim, struct sim_ful *f)
{
	struct sim_cb_event *e = f->out_head;
	const struct sim_supplier *s = &sim->o->suppliers[f->supplier];
	struct sim_cb_conn *c = sim->idle;
	if (c)
		conn_idle_remove(sim, c);
	else
		c = conn_new(sim);
	e->attempts++;
	if (!c) {
		cb_attempt_done(f, 0, "cannot create a connection");
		return;
	}
	char id[SIM_ID_MAX + 32], ts[24], sigv[SIG_V1_MAX], path[700];
	const char *suffix = strchr(cb_type_names[e->type], '.') + 1;
	snprintf(id, sizeof id, "evt_%s_%s", f->id, suffix);
	int64_t now = (int64_t)time(NULL);
	snprintf(ts, sizeof ts, "%" PRId64, now);
	snprintf(path, sizeof path, "%s/v1/suppliers/%s/callbacks", sim->cb_path, s->code);
	struct evhttp_request *req = evhttp_request_new(on_cb_done, c);
	if (!req || sig_sign_standard(s->secret, id, now, e->body, e->len, sigv, sizeof sigv) < 0) {
		if (req)
			evhttp_request_free(req);
		c->dead = 1;
		kick(sim);
		cb_attempt_done(f, 0, "cannot build the request");
		return;
	}
	evhttp_request_set_error_cb(req, on_cb_error);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", sim->cb_host_header);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "User-Agent", SIM_NAME "/" DROPSHIP_VERSION);
	evhttp_add_header(h, "webhook-id", id);
	evhttp_add_header(h, "webhook-timestamp", ts);
	evhttp_add_header(h, "webhook-signature", sigv);
	evbuffer_add(evhttp_request_get_output_buffer(req), e->body, e->len);
	c->ful = f;
	c->err_set = 0;
	sim->cb_inflight++;
	char qid[SIM_ID_MAX + 8];
	log_debug("callback sending", "supplier=%s request_id=%s type=%s attempt=%d", s->code,
	          log_quote(qid, sizeof qid, f->id), cb_type_names[e->type], e->attempts);
	if (evhttp_make_request(c->evcon, req, EVHTTP_REQ_POST, path) < 0 && c->ful == f) {
		/* Refused before any callback ran: the attempt failed here. */
		c->ful = NULL;
		c->dead = 1;
		sim->cb_inflight--;
		kick(sim);
		cb_attempt_done(f, 0, "cannot start the request");
	}
}

/* Runs outside libevent's own callbacks: frees dead connections, then
 * starts queued callbacks up to the in-flight cap. */
static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct sim *sim = arg;
	for (struct sim_cb_conn *c = sim->conns, *next; c; c = next) {
		next = c->next;
		if (c->dead && !c->ful)
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

static void kick(struct sim *sim)
{
	event_active(sim->kick, EV_TIMEOUT, 0);
}

/* ---- fulfillment endpoint ---- */

/* A cancellation has its own key, "<request_id>.cancel", so a supplier that
 * deduplicates on the key alone does not drop it as a repeat of the request. */
static int cancel_key_matches(const char *key, const char *id)
{
	size_t n = strlen(id);
	return strncmp(key, id, n) == 0 && strcmp(key + n, ".cancel") == 0;
}

static int valid_request_id(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > SIM_ID_MAX)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

/* Items per contract section 7: a non-empty array of {sku, quantity}. NULL or the bad field. */
static const char *check_items(json_t *items, char *field, size_t cap)
{
	if (!json_is_array(items) || json_array_size(items) == 0)
		return "items";
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it) {
		json_t *sku = json_object_get(it, "sku"), *qty = json_object_get(it, "quantity");
		if (!json_is_string(sku) || json_string_length(sku) == 0) {
			snprintf(field, cap, "items[%zu].sku", i);
			return field;
		}
		if (!json_is_integer(qty) || json_integer_value(qty) < 1) {
			snprintf(field, cap, "items[%zu].quantity", i);
			return field;
		}
	}
	return NULL;
}

static json_t *received_body(const char *request_id)
{
	return json_pack("{s:b, s:s}", "received", 1, "request_id", request_id);
}

static void take_requested(struct sim *sim, struct evhttp_request *req, size_t si, const char *id)
{
	const char *code = sim->o->suppliers[si].code;
	struct sim_ful *f = sim_ful_find(sim, id);
	if (f && f->supplier != si) {
		sim_answer_error(sim, req, 409, "request_id_conflict",
		             "request_id already used for another supplier", "request_id", code, id);
		return;
	}
	if (f && f->requested) {
		sim->stats.duplicates++;
		f->deliveries++;
		sim_answer(sim, req, 200, received_body(id), code, id);
		return;
	}
	if (!f && !(f = sim_ful_add(sim, id, si))) {
		sim_answer_error(sim, req, 503, "unavailable", "out of memory", NULL, code, id);
		return;
	}
	f->requested = 1;
	f->deliveries = 1;
	sim->stats.accepted++;
	f->reject = (unsigned)sim_fault_reject(sim->o, &sim->rng);
	/* A cancel that overtook its request already ended this one. */
	if (f->state == SIM_FUL_RECEIVED && sim->o->callback_url)
		step_arm(f, sim->o->accept_ms);
	sim_answer(sim, req, 202, received_body(id), code, id);
}

static void take_cancel(struct sim *sim, struct evhttp_request *req, size_t si, const char *id)
{
	const char *code = sim->o->suppliers[si].code;
	struct sim_ful *f = sim_ful_find(sim, id);
	if (f && f->supplier != si) {
		sim_answer_error(sim, req, 409, "request_id_conflict",
		             "request_id already used for another supplier", "request_id", code, id);
		return;
	}
	if (f && f->cancel_seen) {
		sim->stats.duplicates++;
		sim_answer(sim, req, 200, received_body(id), code, id);
		return;
	}
	if (f && (f->state == SIM_FUL_SHIPPED || f->state == SIM_FUL_DELIVERED)) {
		sim_answer_error(sim, req, 409, "already_shipped",
		             "the fulfillment has shipped and can no longer be cancelled", NULL, code, id);
		return;
	}
	if (!f && !(f = sim_ful_add(sim, id, si))) {
		sim_answer_error(sim, req, 503, "unavailable", "out of memory", NULL, code, id);
		return;
	}
	f->cancel_seen = 1;
	sim->stats.cancels++;
	if (f->state == SIM_FUL_RECEIVED || f->state == SIM_FUL_ACCEPTED) {
		step_stop(f);
		sim_ful_set_state(f, SIM_FUL_CANCELLED);
		cb_queue(f, CB_CANCELLED);
	}
	sim_answer(sim, req, 202, received_body(id), code, id);
}

static void handle_fulfillment(struct sim *sim, struct evhttp_request *req, size_t si)
{
	const struct sim_opts *o = sim->o;
	const struct sim_supplier *s = &o->suppliers[si];
	sim->stats.requests++;

	switch (sim_fault_pick(o, &sim->rng)) {
	case SIM_FAULT_STATUS: {
		json_t *b = o->status >= 400 ? sim_error_body("injected", "status forced by --status", NULL)
		                             : json_pack("{s:b}", "received", 1);
		sim_answer(sim, req, o->status, b, s->code, NULL);
		return;
	}
	case SIM_FAULT_FAIL:
		sim->stats.failed_injected++;
		sim_answer_error(sim, req, 503, "unavailable", "failure injected by --fail-rate", NULL,
		             s->code, NULL);
		return;
	case SIM_FAULT_HANG:
		sim->stats.hung++;
		sim_answer_never(sim, req, s->code);
		return;
	case SIM_FAULT_NONE:
		break;
	}

	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evbuffer *buf = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(buf);
	const unsigned char *body = len ? evbuffer_pullup(buf, -1) : (const unsigned char *)"";
	const char *secrets[] = { s->secret };
	enum sig_result sr = sig_verify_standard(secrets, 1, evhttp_find_header(in, "webhook-id"),
	                                         evhttp_find_header(in, "webhook-timestamp"),
	                                         evhttp_find_header(in, "webhook-signature"),
	                                         body, len, (int64_t)time(NULL), SIG_TOLERANCE_S);
	if (sr == SIG_MISSING) {
		sim_answer_error(sim, req, 401, "missing_signature", "webhook-id, webhook-timestamp and webhook-signature are required", NULL, s->code, NULL);
		return;
	}
	if (sr == SIG_STALE) {
		sim_answer_error(sim, req, 401, "stale_timestamp", "webhook-timestamp is more than 300 s from now", NULL, s->code, NULL);
		return;
	}
	if (sr != SIG_OK) {
		sim_answer_error(sim, req, 401, "invalid_signature", "no webhook-signature entry matches", NULL, s->code, NULL);
		return;
	}

	const char *key = evhttp_find_header(in, "Idempotency-Key");
	if (!key || !*key) {
		sim_answer_error(sim, req, 400, "missing_idempotency_key", "the Idempotency-Key header is required", NULL, s->code, NULL);
		return;
	}

	json_error_t jerr;
	json_t *doc = json_loadb((const char *)body, len, 0, &jerr);
	if (!json_is_object(doc)) {
		json_decref(doc);
		sim_answer_error(sim, req, 400, "invalid_json", "the body is not a JSON object", NULL, s->code, NULL);
		return;
	}
	const char *type = json_string_value(json_object_get(doc, "type"));
	const char *id = json_string_value(json_object_get(doc, "request_id"));
	char field[48];
	const char *bad = NULL;
	int requested = type && strcmp(type, "fulfillment.requested") == 0;
	int cancel = type && strcmp(type, "fulfillment.cancel_requested") == 0;
	if (!requested && !cancel)
		sim_answer_error(sim, req, 422, "invalid_field",
		             "type must be fulfillment.requested or fulfillment.cancel_requested", "type", s->code, NULL);
	else if (!id || !valid_request_id(id))
		sim_answer_error(sim, req, 422, "invalid_field",
		             "request_id must be 1-128 printable characters without spaces", "request_id", s->code, NULL);
	else if (requested ? strcmp(key, id) != 0 : !cancel_key_matches(key, id))
		sim_answer_error(sim, req, 400, "invalid_idempotency_key",
		             requested ? "Idempotency-Key must equal request_id"
		                       : "Idempotency-Key must be request_id followed by .cancel", NULL, s->code, id);
	else if (requested && (bad = check_items(json_object_get(doc, "items"), field, sizeof field)))
		sim_answer_error(sim, req, 422, "invalid_field", "items must be a non-empty array of {sku, quantity >= 1}", bad, s->code, id);
	else if (requested)
		take_requested(sim, req, si, id);
	else
		take_cancel(sim, req, si, id);
	json_decref(doc);
}

/* ---- other endpoints and routing ---- */

static json_t *stats_json(const struct sim *sim)
{
	const struct sim_stats *st = &sim->stats;
	json_t *by = json_object();
	size_t shown = 0, total = 0;
	for (size_t i = 0; by && i < sim->nfuls; i++) {
		const struct sim_ful *f = sim->fuls[i];
		if (!f->deliveries)
			continue;
		total++;
		if (shown < SIM_STATS_CAP) {
			json_object_set_new(by, f->id, json_integer((json_int_t)f->deliveries));
			shown++;
		}
	}
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o*, s:b}",
	                 "requests", (json_int_t)st->requests, "accepted", (json_int_t)st->accepted,
	                 "duplicates", (json_int_t)st->duplicates,
	                 "failed_injected", (json_int_t)st->failed_injected, "hung", (json_int_t)st->hung,
	                 "cancels", (json_int_t)st->cancels, "callbacks_sent", (json_int_t)st->callbacks_sent,
	                 "callbacks_failed", (json_int_t)st->callbacks_failed,
	                 "callbacks_retried", (json_int_t)st->callbacks_retried, "by_request", by,
	                 "by_request_truncated", total > shown);
}

/* Matches /suppliers/CODE/fulfillments to a configured supplier; -1 when none. */
static long match_supplier(const struct sim *sim, const char *path, int *is_shape)
{
	static const char prefix[] = "/suppliers/", tail[] = "/fulfillments";
	*is_shape = 0;
	if (strncmp(path, prefix, sizeof prefix - 1) != 0)
		return -1;
	const char *code = path + sizeof prefix - 1;
	const char *slash = strchr(code, '/');
	if (!slash || strcmp(slash, tail) != 0)
		return -1;
	*is_shape = 1;
	size_t n = (size_t)(slash - code);
	for (size_t i = 0; i < sim->o->nsuppliers; i++)
		if (strlen(sim->o->suppliers[i].code) == n && strncmp(sim->o->suppliers[i].code, code, n) == 0)
			return (long)i;
	return -1;
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct sim *sim = arg;
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	if (!path || !*path)
		path = "/";
	if (strcmp(path, "/stats") == 0) {
		if (m != EVHTTP_REQ_GET) {
			sim_answer_not_allowed(req, "GET");
			return;
		}
		sim_answer_plain(req, 200, stats_json(sim));
		return;
	}
	if (strcmp(path, "/healthz") == 0) {
		if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
			sim_answer_not_allowed(req, "GET, HEAD");
			return;
		}
		sim_answer_plain(req, 200, json_pack("{s:s}", "status", "ok"));
		return;
	}
	int shape;
	long si = match_supplier(sim, path, &shape);
	if (si >= 0) {
		if (m != EVHTTP_REQ_POST) {
			sim_answer_not_allowed(req, "POST");
			return;
		}
		handle_fulfillment(sim, req, (size_t)si);
		return;
	}
	if (shape) {
		sim_answer_plain(req, 404, sim_error_body("unknown_supplier", "no such supplier", NULL));
		return;
	}
	sim_answer_plain(req, 404, sim_error_body("not_found", "no such endpoint", NULL));
}

static struct bufferevent *on_new_connection(struct event_base *base, void *arg)
{
	struct sim *sim = arg;
	SSL *ssl = SSL_new(sim->server_ctx);
	if (!ssl)
		return NULL;
	struct bufferevent *bev = bufferevent_openssl_socket_new(
		base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!bev) {
		SSL_free(ssl);
		return NULL;
	}
	/* A peer that vanishes without close_notify is normal for HTTP clients. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	struct sim *sim = arg;
	log_info("stopping", "signal=%d requests=%lu accepted=%lu callbacks_sent=%lu",
	         (int)sig, sim->stats.requests, sim->stats.accepted, sim->stats.callbacks_sent);
	event_base_loopbreak(sim->base);
}

/* ---- setup ---- */

/* HOST:PORT, or [IPV6]:PORT, into a host for getaddrinfo and a port. */
static int split_listen(const char *addr, char *host, size_t hcap, unsigned short *port)
{
	const char *colon = strrchr(addr, ':');
	size_t hl = colon ? (size_t)(colon - addr) : 0;
	if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']') {
		addr++;
		hl -= 2;
	}
	if (hl == 0 || hl >= hcap)
		return -1;
	long p;
	char *end;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || p < 0 || p > 65535)
		return -1;
	memcpy(host, addr, hl);
	host[hl] = '\0';
	*port = (unsigned short)p;
	return 0;
}

/* Splits --callback-url into what the connections need. */
static int parse_callback_url(struct sim *sim, const char *url, char *err, size_t errlen)
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

static int sim_init(struct sim *sim, const struct sim_opts *o, char *err, size_t errlen)
{
	sim->o = o;
	sim->rng = sim_fault_rng_init(o->seed);
	char host[256];
	unsigned short port;
	if (split_listen(o->listen, host, sizeof host, &port) < 0) {
		snprintf(err, errlen, "--listen: expected HOST:PORT, got '%s'", o->listen);
		return -1;
	}
	sim->server_ctx = tls_server_ctx_new(o->tls_cert, o->tls_key, err, errlen);
	if (!sim->server_ctx)
		return -1;
	if (o->callback_url && !(sim->client_ctx = tls_client_ctx_new(o->ca_file, err, errlen)))
		return -1;
	sim->base = event_base_new();
	sim->http = sim->base ? evhttp_new(sim->base) : NULL;
	sim->kick = sim->base ? event_new(sim->base, -1, 0, on_kick, sim) : NULL;
	sim->sigterm = sim->base ? evsignal_new(sim->base, SIGTERM, on_signal, sim) : NULL;
	sim->sigint = sim->base ? evsignal_new(sim->base, SIGINT, on_signal, sim) : NULL;
	if (!sim->http || !sim->kick || !sim->sigterm || !sim->sigint ||
	    evsignal_add(sim->sigterm, NULL) < 0 || evsignal_add(sim->sigint, NULL) < 0) {
		snprintf(err, errlen, "cannot create the event loop");
		return -1;
	}
	evhttp_set_bevcb(sim->http, on_new_connection, sim);
	evhttp_set_gencb(sim->http, on_request, sim);
	evhttp_set_max_body_size(sim->http, SIM_MAX_BODY);
	evhttp_set_timeout(sim->http, SIM_IDLE_TIMEOUT_S);
	evhttp_set_allowed_methods(sim->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                           EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH);
	struct evhttp_bound_socket *bound = evhttp_bind_socket_with_handle(sim->http, host, port);
	if (!bound) {
		snprintf(err, errlen, "--listen: cannot listen on %s: %s", o->listen, strerror(errno));
		return -1;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	int one = 1;
	/* Accepted sockets inherit it: answers must not wait for the caller's
	 * delayed ACK (40 ms each). */
	if (setsockopt(evhttp_bound_socket_get_fd(bound), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
	    getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sl) < 0) {
		snprintf(err, errlen, "--listen: %s", strerror(errno));
		return -1;
	}
	sim->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
	                                     : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

static void sim_free(struct sim *sim)
{
	/* Closing the inbound connections settles every held answer (on_client_gone). */
	if (sim->http)
		evhttp_free(sim->http);
	sim_answer_free_held(sim);
	while (sim->conns)
		conn_free(sim->conns);
	sim_ful_free_all(sim);
	if (sim->kick)
		event_free(sim->kick);
	if (sim->sigterm)
		event_free(sim->sigterm);
	if (sim->sigint)
		event_free(sim->sigint);
	/* A freed bufferevent with deferred callbacks queued is released by one
	 * of those callbacks: let them run, or it leaks (and its SSL with it). */
	for (int i = 0; sim->base && i < 100 &&
	     event_base_get_num_events(sim->base, EVENT_BASE_COUNT_ACTIVE) > 0; i++)
		event_base_loop(sim->base, EVLOOP_NONBLOCK);
	SSL_CTX_free(sim->client_ctx);
	SSL_CTX_free(sim->server_ctx);
	if (sim->base)
		event_base_free(sim->base);
}

/* ---- command line ---- */

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: " SIM_NAME " --tls-cert FILE --tls-key FILE --supplier CODE=SECRET... [options]\n"
	        "\n"
	        "A supplier simulator for demos, tests and benchmarks. Serves\n"
	        "POST /suppliers/CODE/fulfillments over HTTPS for every --supplier, checks the\n"
	        "Standard Webhooks signature dropshipd makes with that supplier's secret (401\n"
	        "when it does not match), requires Idempotency-Key (= request_id, or\n"
	        "request_id.cancel for a cancellation), answers 202\n"
	        "{\"received\": true, \"request_id\": ...} and a repeat of the same key 200 with\n"
	        "the same body. With --callback-url it then plays the supplier: signed callbacks\n"
	        "fulfillment.accepted, .shipped (carrier SIMPOST) and .delivered, or .rejected\n"
	        "(out_of_stock), or .cancelled after a fulfillment.cancel_requested.\n"
	        "GET /stats shows counters as JSON; GET /healthz answers 200.\n"
	        "\n"
	        "options:\n"
	        "      --listen HOST:PORT     address to serve on (default 127.0.0.1:9443; port 0\n"
	        "                             picks a free one, reported as port=N in the\n"
	        "                             msg=\"listening\" log line)\n"
	        "      --tls-cert FILE        server certificate chain, PEM (required)\n"
	        "      --tls-key FILE         its private key, PEM (required)\n"
	        "      --supplier CODE=SECRET serve this supplier; SECRET is whsec_<base64> and\n"
	        "                             signs both directions (repeatable, at least one)\n"
	        "      --fail-rate F          answer this fraction (0..1) of attempts 503 with\n"
	        "                             Retry-After: 1, before any processing (default 0)\n"
	        "      --hang-rate F          never answer this fraction (0..1) of attempts, until\n"
	        "                             the client gives up; nothing is processed (default 0)\n"
	        "      --reject-rate F        send fulfillment.rejected (out_of_stock) instead of\n"
	        "                             accepted for this fraction of new requests (default 0)\n"
	        "      --slow-ms N            hold every fulfillment answer N ms (a timer: other\n"
	        "                             requests go on meanwhile; default 0)\n"
	        "      --status N             answer every fulfillment request with status N\n"
	        "                             (100..599) and do nothing else; overrides the rates\n"
	        "      --seed N               seed of the random choices; the same seed and the same\n"
	        "                             arrival order give the same run (default: from the clock,\n"
	        "                             logged at start)\n"
	        "      --callback-url URL     dropshipd's base URL, https://HOST[:PORT][/PATH];\n"
	        "                             callbacks go to URL/v1/suppliers/CODE/callbacks\n"
	        "                             (default: no callbacks)\n"
	        "      --ca-file FILE         CA bundle to verify dropshipd's certificate with\n"
	        "                             (default: the system's); the host name is always checked\n"
	        "      --accept-after-ms N    accepted (or rejected) N ms after receipt (default 200)\n"
	        "      --ship-after-ms N      shipped N ms after receipt (default 1000)\n"
	        "      --deliver-after-ms N   delivered N ms after receipt (default 2000)\n"
	        "      --log-level LEVEL      debug, info, warn or error (default info)\n"
	        "  -h, --help                 this help\n"
	        "  -V, --version              print the version\n"
	        "\n"
	        "A failed callback (network or TLS error, timeout, non-2xx other than 409) is\n"
	        "retried up to %d times, %d ms doubling to %d ms apart; a 409 is final.\n"
	        "signals: SIGTERM or SIGINT stop the simulator; it exits 0.\n"
	        "exit codes: 0 success, 1 runtime failure, 2 usage error.\n"
	        "\n"
	        "example:\n"
	        "  " SIM_NAME " --listen 127.0.0.1:9443 \\\n"
	        "      --tls-cert var/tls/server.crt --tls-key var/tls/server.key \\\n"
	        "      --supplier acme=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw \\\n"
	        "      --callback-url https://127.0.0.1:8443 --ca-file var/tls/server.crt \\\n"
	        "      --reject-rate 0.1 --fail-rate 0.05 --seed 42\n"
	        "  curl -sk https://127.0.0.1:9443/stats\n",
	        SIM_CB_RETRIES, SIM_CB_BACKOFF_MS, SIM_CB_BACKOFF_MAX_MS);
}

static int usage_error(const char *flag, const char *what, const char *value)
{
	fprintf(stderr, SIM_NAME ": %s: %s, got '%s'; see --help\n", flag, what, value);
	return -1;
}

static int parse_rate(const char *flag, const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < 0 || v > 1)
		return usage_error(flag, "expected a number from 0 to 1", s);
	*out = v;
	return 0;
}

static int parse_long(const char *flag, const char *s, long lo, long hi, const char *what, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return usage_error(flag, what, s);
	*out = v;
	return 0;
}

static int parse_supplier(const char *s, struct sim_opts *o)
{
	const char *eq = strchr(s, '=');
	size_t n = eq ? (size_t)(eq - s) : 0;
	if (!eq || n == 0 || n > SIM_CODE_MAX || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	        "abcdefghijklmnopqrstuvwxyz0123456789_-.") < n)
		return usage_error("--supplier", "expected CODE=SECRET with CODE of 1-64 letters, digits, _ - .", s);
	unsigned char key[SIG_KEY_MAX];
	if (strncmp(eq + 1, "whsec_", 6) != 0 || sig_secret_key(eq + 1, key, sizeof key) <= 0)
		return usage_error("--supplier", "the secret must be whsec_<base64>", "<secret not shown>");
	for (size_t i = 0; i < o->nsuppliers; i++)
		if (strlen(o->suppliers[i].code) == n && strncmp(o->suppliers[i].code, s, n) == 0)
			return usage_error("--supplier", "supplier given twice", o->suppliers[i].code);
	struct sim_supplier *a = realloc(o->suppliers, (o->nsuppliers + 1) * sizeof *a);
	if (!a)
		return usage_error("--supplier", "out of memory", "");
	o->suppliers = a;
	snprintf(a[o->nsuppliers].code, sizeof a->code, "%.*s", (int)n, s);
	a[o->nsuppliers].secret = eq + 1;
	o->nsuppliers++;
	return 0;
}

enum {
	OPT_LISTEN = 256, OPT_CERT, OPT_KEY, OPT_SUPPLIER, OPT_FAIL, OPT_SLOW, OPT_HANG, OPT_REJECT,
	OPT_STATUS, OPT_SEED, OPT_CB_URL, OPT_CA, OPT_ACCEPT, OPT_SHIP, OPT_DELIVER, OPT_LOG_LEVEL,
};

/* Fills o from argv. Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, struct sim_opts *o)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "tls-cert", required_argument, NULL, OPT_CERT },
		{ "tls-key", required_argument, NULL, OPT_KEY },
		{ "supplier", required_argument, NULL, OPT_SUPPLIER },
		{ "fail-rate", required_argument, NULL, OPT_FAIL },
		{ "slow-ms", required_argument, NULL, OPT_SLOW },
		{ "hang-rate", required_argument, NULL, OPT_HANG },
		{ "reject-rate", required_argument, NULL, OPT_REJECT },
		{ "status", required_argument, NULL, OPT_STATUS },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "callback-url", required_argument, NULL, OPT_CB_URL },
		{ "ca-file", required_argument, NULL, OPT_CA },
		{ "accept-after-ms", required_argument, NULL, OPT_ACCEPT },
		{ "ship-after-ms", required_argument, NULL, OPT_SHIP },
		{ "deliver-after-ms", required_argument, NULL, OPT_DELIVER },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	static const char ms_range[] = "expected whole milliseconds from 0 to 86400000";
	memset(o, 0, sizeof *o);
	o->listen = "127.0.0.1:9443";
	o->accept_ms = 200;
	o->ship_ms = 1000;
	o->deliver_ms = 2000;
	o->log_level = "info";
	int opt, bad = 0;
	long v;
	while (!bad && (opt = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_LISTEN: o->listen = optarg; break;
		case OPT_CERT: o->tls_cert = optarg; break;
		case OPT_KEY: o->tls_key = optarg; break;
		case OPT_SUPPLIER: bad = parse_supplier(optarg, o) < 0; break;
		case OPT_FAIL: bad = parse_rate("--fail-rate", optarg, &o->fail_rate) < 0; break;
		case OPT_HANG: bad = parse_rate("--hang-rate", optarg, &o->hang_rate) < 0; break;
		case OPT_REJECT: bad = parse_rate("--reject-rate", optarg, &o->reject_rate) < 0; break;
		case OPT_SLOW: bad = parse_long("--slow-ms", optarg, 0, SIM_MS_MAX, ms_range, &o->slow_ms) < 0; break;
		case OPT_ACCEPT: bad = parse_long("--accept-after-ms", optarg, 0, SIM_MS_MAX, ms_range, &o->accept_ms) < 0; break;
		case OPT_SHIP: bad = parse_long("--ship-after-ms", optarg, 0, SIM_MS_MAX, ms_range, &o->ship_ms) < 0; break;
		case OPT_DELIVER: bad = parse_long("--deliver-after-ms", optarg, 0, SIM_MS_MAX, ms_range, &o->deliver_ms) < 0; break;
		case OPT_STATUS:
			bad = parse_long("--status", optarg, 100, 599, "expected an HTTP status from 100 to 599", &v) < 0;
			o->status = (int)v;
			break;
		case OPT_SEED: {
			char *end;
			errno = 0;
			unsigned long long s = strtoull(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-')
				bad = usage_error("--seed", "expected a whole number from 0 to 18446744073709551615", optarg) < 0;
			o->seed = (uint64_t)s;
			o->seed_given = 1;
			break;
		}
		case OPT_CB_URL: o->callback_url = optarg; break;
		case OPT_CA: o->ca_file = optarg; break;
		case OPT_LOG_LEVEL:
			o->log_level = optarg;
			if (log_set_level_name(optarg) < 0)
				bad = usage_error("--log-level", "expected debug, info, warn or error", optarg) < 0;
			break;
		case 'h': usage(stdout); return 0;
		case 'V': printf(SIM_NAME " %s\n", DROPSHIP_VERSION); return 0;
		default:
			/* getopt has named the flag already. */
			fprintf(stderr, SIM_NAME ": see --help\n");
			return 2;
		}
	}
	if (bad)
		return 2;
	if (optind < argc) {
		fprintf(stderr, SIM_NAME ": unexpected argument '%s'; see --help\n", argv[optind]);
		return 2;
	}
	const char *missing = !o->tls_cert ? "--tls-cert" : !o->tls_key ? "--tls-key"
	                    : !o->nsuppliers ? "--supplier" : NULL;
	if (missing) {
		fprintf(stderr, SIM_NAME ": %s is required; see --help\n", missing);
		return 2;
	}
	if (!o->seed_given) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		o->seed = sim_fault_seed_default(&ts, getpid());
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct sim_opts o;
	int rc = parse_args(argc, argv, &o);
	if (rc >= 0) {
		free(o.suppliers);
		return rc;
	}
	signal(SIGPIPE, SIG_IGN);
	rc = 1;
	struct sim sim;
	memset(&sim, 0, sizeof sim);
	char err[1024], qerr[1100], host[256];
	unsigned short port;
	/* Malformed addresses are usage errors (exit 2), caught before any setup. */
	int bad_usage = 1;
	if (split_listen(o.listen, host, sizeof host, &port) < 0)
		usage_error("--listen", "expected HOST:PORT", o.listen);
	else if (o.callback_url && parse_callback_url(&sim, o.callback_url, err, sizeof err) < 0)
		fprintf(stderr, SIM_NAME ": %s; see --help\n", err);
	else
		bad_usage = 0;
	if (bad_usage) {
		free(o.suppliers);
		return 2;
	}
	if (sim_init(&sim, &o, err, sizeof err) < 0) {
		log_error("cannot start", "error=%s", log_quote(qerr, sizeof qerr, err));
		goto cleanup;
	}
	char qurl[600];
	log_info("starting", "suppliers=%zu seed=%" PRIu64 " fail_rate=%g hang_rate=%g reject_rate=%g "
	         "slow_ms=%ld status=%d callback_url=%s", o.nsuppliers, o.seed, o.fail_rate,
	         o.hang_rate, o.reject_rate, o.slow_ms, o.status,
	         log_quote(qurl, sizeof qurl, o.callback_url ? o.callback_url : ""));
	if (o.ca_file && !o.callback_url)
		log_warn("--ca-file has no effect without --callback-url", "%s", "");
	log_info("listening", "port=%d version=%s", sim.port, DROPSHIP_VERSION);
	event_base_dispatch(sim.base);
	log_info("stopped", "requests=%lu accepted=%lu duplicates=%lu callbacks_sent=%lu callbacks_failed=%lu",
	         sim.stats.requests, sim.stats.accepted, sim.stats.duplicates, sim.stats.callbacks_sent,
	         sim.stats.callbacks_failed);
	rc = 0;
cleanup:
	sim_free(&sim);
	free(o.suppliers);
	return rc;
}
