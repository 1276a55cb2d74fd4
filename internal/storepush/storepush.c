/* storepush: a platform message's exchange, one client call per step.
 *
 * A run: the exchange is read (platform_exchange_init), the host's
 * breaker asked, then each step's request is sent and its answer taken
 * (platform_exchange_take) until the platform module says done, retry or
 * failed. Every call becomes one member of the run's steps, which the
 * dispatcher records with the attempt. The run reports once, from a
 * client callback or from the next loop iteration, never from inside
 * storepush_run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "breaker/breaker.h"
#include "log/log.h"
#include "mem/mem.h"
#include "netcheck/netcheck.h"
#include "platform/platform.h"
#include "storepush/storepush.h"

/* Hosts whose breakers are kept; past that, hosts go without one. */
#define STOREPUSH_MAX_HOSTS 1024
/* Calls one run may make: a look and a create for each Shopify location of
 * the parcel (WooCommerce: two); more is a loop. */
#define STOREPUSH_MAX_STEPS (2 * PLATFORM_LOCATIONS_MAX)
/* Response text kept, for operators. */
#define STOREPUSH_RESPONSE_KEEP 1000

struct storepush_host {
	char key[NETCHECK_HOST_MAX + NETCHECK_PORT_MAX + 2]; /* host|port */
	struct breaker b;
};

struct storepush {
	struct event_base *base;
	struct client *client;
	struct storepush_options opt;
	struct storepush_host *hosts;
	size_t nhosts;
};

enum storepush_run_state {
	STOREPUSH_RUN_CALLING,   /* a step's request is in flight */
	STOREPUSH_RUN_REPORTING, /* the outcome is due from the next loop iteration */
};

/* One storepush_run, from the call to its callback; freed by storepush_report. */
struct storepush_run {
	struct storepush *p;
	enum storepush_run_state state;
	char label[64];
	struct platform_exchange x;
	int ready;                       /* x was initialised */
	struct platform_request req;     /* the step in flight */
	struct breaker *b;               /* the host's, or NULL */
	storepush_cb cb;
	void *arg;
	json_t *steps;
	long long started_mono_ms;       /* the run's start: the claim's lease runs from about then */
	long long step_started_ms;
	/* the outcome */
	struct storepush_result res;
	char error[600];
	char note[512];
	char retry_after[64];
	char *response;
};

static long long storepush_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long storepush_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The breaker of url's host, or NULL (a URL that does not parse, or too many hosts). */
static struct breaker *storepush_breaker(struct storepush *p, const char *url)
{
	char host[NETCHECK_HOST_MAX], port[NETCHECK_PORT_MAX], path[1024], err[256], key[sizeof p->hosts->key];
	if (!url || netcheck_url(url, host, sizeof host, port, sizeof port, path, sizeof path, err, sizeof err) < 0)
		return NULL;
	snprintf(key, sizeof key, "%s|%s", host, port);
	for (size_t i = 0; i < p->nhosts; i++)
		if (strcmp(p->hosts[i].key, key) == 0)
			return &p->hosts[i].b;
	if (p->nhosts == STOREPUSH_MAX_HOSTS)
		return NULL;
	p->hosts = mem_realloc(p->hosts, (p->nhosts + 1) * sizeof *p->hosts);
	struct storepush_host *h = &p->hosts[p->nhosts++];
	snprintf(h->key, sizeof h->key, "%s", key);
	breaker_init(&h->b, p->opt.breaker_threshold, p->opt.breaker_cooldown_ms);
	return &h->b;
}

/* Calls back and frees the run. */
static void storepush_report(struct storepush_run *r)
{
	char *steps = json_array_size(r->steps) ? json_dumps(r->steps, JSON_COMPACT) : NULL;
	r->res.steps = steps;
	r->res.error = r->res.outcome == STOREPUSH_DONE || !r->error[0] ? NULL : r->error;
	r->res.note = r->note[0] ? r->note : NULL;
	r->res.retry_after = r->retry_after[0] ? r->retry_after : NULL;
	r->res.response = r->response;
	r->res.ref = r->x.ref[0] ? r->x.ref : NULL;
	r->cb(&r->res, r->arg);
	free(steps);
	json_decref(r->steps);
	platform_request_free(&r->req);
	if (r->ready)
		platform_exchange_free(&r->x);
	free(r->response);
	free(r);
}

static void storepush_on_later(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	storepush_report(arg);
}

/* Reports from the next loop iteration: the caller of storepush_run is
 * never called back from inside it. */
static void storepush_report_later(struct storepush_run *r)
{
	r->state = STOREPUSH_RUN_REPORTING;
	struct timeval zero = { 0, 0 };
	if (event_base_once(r->p->base, -1, EV_TIMEOUT, storepush_on_later, r, &zero) < 0)
		storepush_report(r);
}

static void storepush_step(struct storepush_run *r);

/* Keeps call n of the run as a member of its steps. */
static void storepush_keep_step(struct storepush_run *r, enum platform_step step, const struct client_response *resp,
                                const struct platform_answer *a)
{
	/* the transport's error, else why an answer was not taken */
	const char *error = resp->error ? resp->error
	                    : a->verdict == PLATFORM_RETRY || a->verdict == PLATFORM_FAILED ? a->why : NULL;
	json_t *s = json_pack("{s:i, s:s, s:s, s:s, s:o, s:o, s:I, s:o, s:I}",
	                      "step", (int)json_array_size(r->steps) + 1, "action", platform_step_name(step),
	                      "method", r->req.method, "path", r->req.path,
	                      "status", resp->status ? json_integer(resp->status) : json_null(),
	                      "error", error ? json_string(error) : json_null(),
	                      "latency_ms", (json_int_t)resp->latency_ms,
	                      "ref", a->ref[0] ? json_string(a->ref) : json_null(),
	                      "started_ms", (json_int_t)r->step_started_ms);
	json_array_append_new(r->steps, s);
}

static void storepush_on_answer(const struct client_response *resp, void *arg)
{
	static const char *const verdicts[] = { "next", "done", "retry", "failed" };
	struct storepush_run *r = arg;
	r->res.status = resp->status;
	r->res.latency_ms += resp->latency_ms;
	free(r->response);
	r->response = NULL;
	if (resp->body && *resp->body)
		r->response = mem_strndup(resp->body, strlen(resp->body) > STOREPUSH_RESPONSE_KEEP
		                                      ? STOREPUSH_RESPONSE_KEEP : strlen(resp->body));
	snprintf(r->retry_after, sizeof r->retry_after, "%s", resp->retry_after ? resp->retry_after : "");
	int healthy = resp->status && resp->status != 408 && resp->status != 429 && resp->status < 500;
	if (r->b)
		breaker_record(r->b, healthy, storepush_mono_ms());
	enum platform_step step = r->x.step; /* taking the answer moves it on */
	struct platform_answer a = { 0 };
	if (!resp->status) {
		a.verdict = resp->retryable ? PLATFORM_RETRY : PLATFORM_FAILED;
		snprintf(a.why, sizeof a.why, "%s", resp->error ? resp->error : "no response");
	} else {
		platform_exchange_take(&r->x, resp->status, resp->body, &a);
	}
	const char *action = platform_step_name(step);
	storepush_keep_step(r, step, resp, &a);
	char q[300];
	log_info("platform call", "%s action=%s status=%d verdict=%s latency_ms=%ld why=%s", r->label, action,
	         resp->status, verdicts[a.verdict], resp->latency_ms, log_quote(q, sizeof q, a.why));
	platform_request_free(&r->req);
	switch (a.verdict) {
	case PLATFORM_NEXT:
		if (json_array_size(r->steps) >= STOREPUSH_MAX_STEPS) {
			r->res.outcome = STOREPUSH_FAILED;
			snprintf(r->error, sizeof r->error, "the exchange did not end in %d calls",
			         STOREPUSH_MAX_STEPS);
			break;
		}
		/* A call that could outlast the claim is not made: the message is
		 * tried again (from the look) by whoever claims it next. */
		long long elapsed = storepush_mono_ms() - r->started_mono_ms;
		if (elapsed + r->p->opt.call_timeout_ms + 1000 > r->p->opt.lease_ms) {
			r->res.outcome = STOREPUSH_RETRY;
			snprintf(r->error, sizeof r->error, "%s: no time left in the claim for the next call",
			         platform_step_name(r->x.step));
			break;
		}
		storepush_step(r);
		return;
	case PLATFORM_DONE:
		r->res.outcome = STOREPUSH_DONE;
		snprintf(r->note, sizeof r->note, "%s", a.why);
		break;
	case PLATFORM_RETRY:
		r->res.outcome = STOREPUSH_RETRY;
		r->res.min_delay_ms = a.min_delay_ms;
		snprintf(r->error, sizeof r->error, "%s: %s", action, a.why);
		break;
	case PLATFORM_FAILED:
		r->res.outcome = STOREPUSH_FAILED;
		snprintf(r->error, sizeof r->error, "%s: %s", action, a.why);
		break;
	}
	storepush_report(r);
}

/* Sends the request of the exchange's current step. */
static void storepush_step(struct storepush_run *r)
{
	r->state = STOREPUSH_RUN_CALLING;
	platform_exchange_request(&r->x, &r->req);
	r->step_started_ms = storepush_wall_ms();
	client_request(r->p->client, r->req.method, r->req.url, r->req.headers, r->req.body,
	               r->req.body ? strlen(r->req.body) : 0, storepush_on_answer, r);
}

void storepush_run(struct storepush *p, const char *label, const char *kind, const char *payload,
                   const char *url, const char *credential, storepush_cb cb, void *arg)
{
	struct storepush_run *r = mem_calloc(1, sizeof *r);
	r->p = p;
	r->cb = cb;
	r->arg = arg;
	r->steps = json_array();
	r->started_mono_ms = storepush_mono_ms();
	snprintf(r->label, sizeof r->label, "%s", label);
	if (platform_exchange_init(&r->x, kind, payload, url, credential, p->opt.shopify_api_version, r->error,
	                           sizeof r->error) < 0) {
		r->res.outcome = STOREPUSH_FAILED;
		storepush_report_later(r);
		return;
	}
	r->ready = 1;
	r->b = storepush_breaker(p, url);
	long long now = storepush_mono_ms();
	if (r->b && !breaker_allow(r->b, now)) {
		long long wait = breaker_retry_at_ms(r->b) - now;
		r->res.outcome = STOREPUSH_HELD;
		r->res.min_delay_ms = wait > 0 ? wait : 0;
		storepush_report_later(r);
		return;
	}
	storepush_step(r);
}

struct storepush *storepush_new(struct event_base *base, struct client *client, const struct storepush_options *opt)
{
	struct storepush *p = mem_calloc(1, sizeof *p);
	p->base = base;
	p->client = client;
	p->opt = *opt;
	return p;
}

void storepush_set_options(struct storepush *p, const struct storepush_options *opt)
{
	p->opt = *opt;
	for (size_t i = 0; i < p->nhosts; i++)
		breaker_configure(&p->hosts[i].b, opt->breaker_threshold, opt->breaker_cooldown_ms);
}

void storepush_free(struct storepush *p)
{
	if (!p)
		return;
	free(p->hosts);
	free(p);
}
