/* The HTTPS endpoint: TLS on every accepted connection, routing, and
 * POST /suppliers/CODE/fulfillments: injected faults first, then the
 * Standard Webhooks signature, the Idempotency-Key and the body, then
 * dedupe by request id. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "sig/sig.h"

#include "sim.h"

#define SIM_IDLE_TIMEOUT_S 60         /* inbound keep-alive connections */

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

/* Items as docs/simulator.md has them: a non-empty array of {sku, quantity}.
 * NULL or the bad field. */
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

/* 1 after answering 409: another supplier has used the request id of f. */
static int answer_conflict(struct sim *sim, struct evhttp_request *req, const struct sim_ful *f,
                           size_t si, const char *id)
{
	if (!f || f->supplier == si)
		return 0;
	sim_answer_error(sim, req, 409, "request_id_conflict", "request_id already used for another supplier",
	                 "request_id", sim->o->suppliers[si].code, id);
	return 1;
}

/* f, or a new fulfillment for id when f is NULL; NULL after answering 503. */
static struct sim_ful *ful_or_add(struct sim *sim, struct evhttp_request *req, struct sim_ful *f,
                                  size_t si, const char *id)
{
	if (f)
		return f;
	f = sim_ful_add(sim, id, si);
	if (!f)
		sim_answer_error(sim, req, 503, "unavailable", "out of memory", NULL,
		                 sim->o->suppliers[si].code, id);
	return f;
}

static void take_requested(struct sim *sim, struct evhttp_request *req, size_t si, const char *id,
                           json_t *items)
{
	const char *code = sim->o->suppliers[si].code;
	struct sim_ful *f = sim_ful_find(sim, id);
	if (answer_conflict(sim, req, f, si, id))
		return;
	if (f && f->requested) {
		sim->stats.duplicates++;
		f->deliveries++;
		sim_answer(sim, req, 200, received_body(id), code, id);
		return;
	}
	if (!(f = ful_or_add(sim, req, f, si, id)))
		return;
	f->requested = 1;
	f->deliveries = 1;
	sim->stats.accepted++;
	f->reject = (unsigned)sim_fault_reject(sim->o, &sim->rng);
	if (!f->reject) /* out of its stock */
		sim_feed_sold(sim, si, items);
	/* A cancel that overtook its request already ended this one. */
	if (f->state == SIM_FUL_RECEIVED)
		sim_cb_play(f);
	sim_answer(sim, req, 202, received_body(id), code, id);
}

static void take_cancel(struct sim *sim, struct evhttp_request *req, size_t si, const char *id)
{
	const char *code = sim->o->suppliers[si].code;
	struct sim_ful *f = sim_ful_find(sim, id);
	if (answer_conflict(sim, req, f, si, id))
		return;
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
	if (!(f = ful_or_add(sim, req, f, si, id)))
		return;
	f->cancel_seen = 1;
	sim->stats.cancels++;
	if (f->state == SIM_FUL_RECEIVED || f->state == SIM_FUL_ACCEPTED)
		sim_cb_cancel(f);
	sim_answer(sim, req, 202, received_body(id), code, id);
}

/* Carries out the fault faults.c picks for this attempt: 1 when it has
 * answered (or never will), 0 when the request is to be processed. */
static int answer_fault(struct sim *sim, struct evhttp_request *req, const struct sim_supplier *s)
{
	const struct sim_opts *o = sim->o;
	switch (sim_fault_pick(o, &sim->rng)) {
	case SIM_FAULT_STATUS: {
		json_t *b = o->status >= 400 ? sim_error_body("injected", "status forced by --status", NULL)
		                             : json_pack("{s:b}", "received", 1);
		sim_answer(sim, req, o->status, b, s->code, NULL);
		return 1;
	}
	case SIM_FAULT_FAIL:
		sim->stats.failed_injected++;
		sim_answer_error(sim, req, 503, "unavailable", "failure injected by --fail-rate", NULL,
		                 s->code, NULL);
		return 1;
	case SIM_FAULT_HANG:
		sim->stats.hung++;
		sim_answer_never(sim, req, s->code);
		return 1;
	case SIM_FAULT_NONE:
		break;
	}
	return 0;
}

/* Checks dropshipd's Standard Webhooks signature with the supplier's
 * secret: 0, or -1 after answering 401. */
static int check_signature(struct sim *sim, struct evhttp_request *req, const struct sim_supplier *s,
                           const unsigned char *body, size_t len)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	const char *secrets[] = { s->secret };
	enum sig_result sr = sig_verify_standard(secrets, 1, evhttp_find_header(in, "webhook-id"),
	                                         evhttp_find_header(in, "webhook-timestamp"),
	                                         evhttp_find_header(in, "webhook-signature"),
	                                         body, len, (int64_t)time(NULL), SIG_TOLERANCE_S);
	if (sr == SIG_OK)
		return 0;
	if (sr == SIG_MISSING)
		sim_answer_error(sim, req, 401, "missing_signature",
		                 "webhook-id, webhook-timestamp and webhook-signature are required", NULL,
		                 s->code, NULL);
	else if (sr == SIG_STALE)
		sim_answer_error(sim, req, 401, "stale_timestamp",
		                 "webhook-timestamp is more than 300 s from now", NULL, s->code, NULL);
	else
		sim_answer_error(sim, req, 401, "invalid_signature", "no webhook-signature entry matches",
		                 NULL, s->code, NULL);
	return -1;
}

/* Checks the fields of a signed JSON object and hands it to take_requested
 * or take_cancel; else answers 400 or 422 naming the field. */
static void take_body(struct sim *sim, struct evhttp_request *req, size_t si, const char *key,
                      json_t *doc)
{
	const char *code = sim->o->suppliers[si].code;
	const char *type = json_string_value(json_object_get(doc, "type"));
	const char *id = json_string_value(json_object_get(doc, "request_id"));
	char field[48];
	const char *bad = NULL;
	int requested = type && strcmp(type, "fulfillment.requested") == 0;
	int cancel = type && strcmp(type, "fulfillment.cancel_requested") == 0;
	if (!requested && !cancel)
		sim_answer_error(sim, req, 422, "invalid_field",
		                 "type must be fulfillment.requested or fulfillment.cancel_requested", "type",
		                 code, NULL);
	else if (!id || !valid_request_id(id))
		sim_answer_error(sim, req, 422, "invalid_field",
		                 "request_id must be 1-128 printable characters without spaces", "request_id",
		                 code, NULL);
	else if (requested ? strcmp(key, id) != 0 : !cancel_key_matches(key, id))
		sim_answer_error(sim, req, 400, "invalid_idempotency_key",
		                 requested ? "Idempotency-Key must equal request_id"
		                           : "Idempotency-Key must be request_id followed by .cancel",
		                 NULL, code, id);
	else if (requested && (bad = check_items(json_object_get(doc, "items"), field, sizeof field)))
		sim_answer_error(sim, req, 422, "invalid_field",
		                 "items must be a non-empty array of {sku, quantity >= 1}", bad, code, id);
	else if (requested)
		take_requested(sim, req, si, id, json_object_get(doc, "items"));
	else
		take_cancel(sim, req, si, id);
}

/* POST /suppliers/CODE/fulfillments: faults first, then the checks in the
 * order docs/simulator.md lists them, then dedupe by request id. */
static void handle_fulfillment(struct sim *sim, struct evhttp_request *req, size_t si)
{
	const struct sim_supplier *s = &sim->o->suppliers[si];
	sim->stats.requests++;
	if (answer_fault(sim, req, s))
		return;
	struct evbuffer *buf = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(buf);
	const unsigned char *body = len ? evbuffer_pullup(buf, -1) : (const unsigned char *)"";
	if (check_signature(sim, req, s, body, len) < 0)
		return;
	const char *key = evhttp_find_header(evhttp_request_get_input_headers(req), "Idempotency-Key");
	if (!key || !*key) {
		sim_answer_error(sim, req, 400, "missing_idempotency_key",
		                 "the Idempotency-Key header is required", NULL, s->code, NULL);
		return;
	}
	json_error_t jerr;
	json_t *doc = json_loadb((const char *)body, len, 0, &jerr);
	if (!json_is_object(doc)) {
		json_decref(doc);
		sim_answer_error(sim, req, 400, "invalid_json", "the body is not a JSON object", NULL,
		                 s->code, NULL);
		return;
	}
	take_body(sim, req, si, key, doc);
	json_decref(doc);
}

/* ---- routing ---- */

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
		sim_stats_serve(sim, req);
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

/* ---- setup ---- */

int sim_server_start(struct sim *sim, const char *host, unsigned short port, char *err, size_t errlen)
{
	sim->http = evhttp_new(sim->base);
	if (!sim->http) {
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
		snprintf(err, errlen, "--listen: cannot listen on %s: %s", sim->o->listen,
		         strerror(errno));
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

void sim_server_stop(struct sim *sim)
{
	/* Closing the inbound connections settles every held answer (on_client_gone). */
	if (sim->http)
		evhttp_free(sim->http);
	sim_answer_free_held(sim);
}
