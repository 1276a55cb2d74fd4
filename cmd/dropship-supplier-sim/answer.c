/* Answers to inbound requests: at once, held back by --slow-ms, or never
 * (--hang-rate), and the access-log line of each fulfillment answer. A
 * held answer lives in sim.held until it is sent or its client leaves. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "log/log.h"

#include "sim.h"

/* An answer held back by --slow-ms, or never given (--hang-rate). */
struct sim_held {
	struct sim *sim;
	struct evhttp_request *req;
	struct event *timer;           /* NULL: hung, answered never */
	struct event *watch;           /* hung: fires when the client hangs up */
	int status;
	char *body;
	struct sim_held *prev, *next;
};

static void send_answer(struct evhttp_request *req, int status, const char *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Type", "application/json");
	if (status == 503)
		evhttp_add_header(h, "Retry-After", "1");
	struct evbuffer *b = evbuffer_new();
	if (b && body)
		evbuffer_add(b, body, strlen(body));
	/* Also frees a request whose client has gone (it has no connection left). */
	evhttp_send_reply(req, status, NULL, b);
	if (b)
		evbuffer_free(b);
}

static void held_unlink_free(struct sim_held *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		p->sim->held = p->next;
	if (p->next)
		p->next->prev = p->prev;
	if (p->timer)
		event_free(p->timer);
	if (p->watch)
		event_free(p->watch);
	free(p->body);
	free(p);
}

static void on_held_due(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct sim_held *p = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(p->req);
	if (evcon)
		evhttp_connection_set_closecb(evcon, NULL, NULL);
	send_answer(p->req, p->status, p->body);
	held_unlink_free(p);
}

/* The client closed while its answer was held back. A request still on its
 * connection is freed by libevent with it; a detached one is ours to free. */
static void on_client_gone(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	struct sim_held *p = arg;
	log_debug("client gave up", "status=%d hung=%d", p->status, p->timer == NULL);
	if (!evhttp_request_get_connection(p->req))
		evhttp_request_free(p->req);
	held_unlink_free(p);
}

/* libevent does not read a connection whose request awaits its answer, so
 * it would not notice the client leave: without this a hung request would
 * hold its socket until the simulator stops. Freeing the connection runs
 * on_client_gone, which frees p. */
static void on_hung_client_closed(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct sim_held *p = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(p->req);
	if (evcon)
		evhttp_connection_free(evcon);
	else
		on_client_gone(NULL, p);
}

static void watch_hung(struct sim *sim, struct sim_held *p, struct evhttp_connection *evcon)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
	if (fd < 0 || !(event_base_get_features(sim->base) & EV_FEATURE_EARLY_CLOSE))
		return; /* held until the simulator stops */
	p->watch = event_new(sim->base, fd, EV_CLOSED | EV_PERSIST, on_hung_client_closed, p);
	if (p->watch && event_add(p->watch, NULL) < 0) {
		event_free(p->watch);
		p->watch = NULL;
	}
}

/* Holds req: answered after delay_ms, or never when delay_ms < 0. */
static void defer_answer(struct sim *sim, struct evhttp_request *req, int status, char *body, long delay_ms)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct sim_held *p = evcon ? calloc(1, sizeof *p) : NULL;
	if (p && delay_ms >= 0) {
		p->timer = evtimer_new(sim->base, on_held_due, p);
		struct timeval tv = sim_ms_tv(delay_ms);
		if (!p->timer || evtimer_add(p->timer, &tv) < 0) {
			if (p->timer)
				event_free(p->timer);
			free(p);
			p = NULL;
		}
	}
	if (!p) {
		/* No memory to wait with: answering at once beats leaking the request. */
		send_answer(req, delay_ms >= 0 ? status : 503, body);
		free(body);
		return;
	}
	p->sim = sim;
	p->req = req;
	p->status = status;
	p->body = body;
	p->next = sim->held;
	if (sim->held)
		sim->held->prev = p;
	sim->held = p;
	evhttp_connection_set_closecb(evcon, on_client_gone, p);
	if (!p->timer)
		watch_hung(sim, p, evcon);
}

void sim_answer_never(struct sim *sim, struct evhttp_request *req, const char *supplier)
{
	char qpath[300];
	log_info("request", "method=POST path=%s supplier=%s status=none hung=1",
	         log_quote(qpath, sizeof qpath, evhttp_request_get_uri(req)), supplier);
	defer_answer(sim, req, 0, NULL, -1);
}

void sim_answer_free_held(struct sim *sim)
{
	while (sim->held)
		held_unlink_free(sim->held);
}

void sim_answer(struct sim *sim, struct evhttp_request *req, int status, json_t *body,
                const char *supplier, const char *request_id)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	char qpath[300], qid[SIM_ID_MAX + 8];
	log_info("request", "method=POST path=%s supplier=%s request_id=%s status=%d delay_ms=%ld",
	         log_quote(qpath, sizeof qpath, evhttp_request_get_uri(req)), supplier,
	         log_quote(qid, sizeof qid, request_id ? request_id : "-"), status, sim->o->slow_ms);
	if (sim->o->slow_ms > 0) {
		defer_answer(sim, req, status, text, sim->o->slow_ms);
		return;
	}
	send_answer(req, status, text);
	free(text);
}

json_t *sim_error_body(const char *code, const char *message, const char *field)
{
	json_t *err = json_pack("{s:s, s:s}", "code", code, "message", message);
	if (err && field)
		json_object_set_new(err, "field", json_string(field));
	return json_pack("{s:o*}", "error", err);
}

void sim_answer_error(struct sim *sim, struct evhttp_request *req, int status, const char *code,
                      const char *message, const char *field, const char *supplier,
                      const char *request_id)
{
	sim_answer(sim, req, status, sim_error_body(code, message, field), supplier, request_id);
}

void sim_answer_plain(struct evhttp_request *req, int status, json_t *body)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	send_answer(req, status, text);
	free(text);
}

void sim_answer_not_allowed(struct evhttp_request *req, const char *allow)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
	sim_answer_plain(req, 405,
	                 sim_error_body("method_not_allowed", "method not allowed for this path", NULL));
}
