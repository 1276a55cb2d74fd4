/* storepush: sends one platform message (platform.fulfillment,
 * platform.completed) to a store's Shopify or WooCommerce API over the
 * outbound client: the exchange of internal/platform, one HTTP call per
 * step, until it is done, to be tried again, or failed for good. The same
 * outbound rules as every message (https only, TLS verified, the
 * private-address rule) hold for each call, since each goes through the
 * client. A circuit breaker per platform host pauses a host that stops
 * answering (no answer, 5xx, 408, 429) without slowing the others.
 *
 * Not thread-safe: one per dispatcher (worker event loop). */
#ifndef DROPSHIP_STOREPUSH_H
#define DROPSHIP_STOREPUSH_H
#include <stdint.h>
#include <event2/event.h>

#include "client/client.h"

struct storepush;

struct storepush_options {
	int breaker_threshold;        /* consecutive failures that open a host's breaker */
	int64_t breaker_cooldown_ms;  /* before one probe is let through */
	char shopify_api_version[16]; /* YYYY-MM ([platforms] shopify_api_version) */
	int lease_ms;                 /* the message's claim: every call must end within it... */
	int call_timeout_ms;          /* ...and one call may take this long (the client's timeout) */
};

enum storepush_outcome {
	STOREPUSH_DONE,               /* nothing left to do on the platform: delivered */
	STOREPUSH_RETRY,              /* try the message again later (the exchange starts over); also
	                               * when the next call could outlast the claim, since another
	                               * process may then claim the message and call meanwhile */
	STOREPUSH_FAILED,             /* refused for good: someone must look at the order */
	STOREPUSH_HELD,               /* not sent: the host's breaker is open (no attempt spent) */
};

/* What one run came to. Every pointer is valid during the callback only. */
struct storepush_result {
	enum storepush_outcome outcome;
	int status;                   /* the last call's HTTP status; 0 when it had no answer (or none was made) */
	const char *error;            /* RETRY, FAILED: why, in words; NULL when done */
	const char *note;             /* DONE: what was found instead of created ("fulfilled before ..."), or NULL */
	const char *retry_after;      /* the last answer's Retry-After, or NULL */
	long long min_delay_ms;       /* RETRY: wait at least this (Shopify's throttle); HELD: until a probe may go */
	const char *response;         /* the last answer's body, at most 1000 bytes, or NULL */
	const char *ref;              /* the platform's id of what was found or created last, or NULL */
	long latency_ms;              /* all calls */
	const char *steps;            /* JSON array, a member per call: step, action, method, path, status,
	                               * error, latency_ms, ref, started_ms; NULL when no call was made */
};

/* Called exactly once per storepush_run, never from inside it. */
typedef void (*storepush_cb)(const struct storepush_result *r, void *arg);

struct storepush *storepush_new(struct event_base *base, struct client *client, const struct storepush_options *opt);
/* New options (a reload): breakers keep their state. */
void storepush_set_options(struct storepush *p, const struct storepush_options *opt);
/* After the loop has ended and the client is freed. Accepts NULL. */
void storepush_free(struct storepush *p);

/* Runs the message of kind with payload for the store whose platform is at
 * url with credential (Shopify: the access token; WooCommerce:
 * "key:secret"); label names it in log lines ("outbox_id=12"). The
 * credential is never logged. */
void storepush_run(struct storepush *p, const char *label, const char *kind, const char *payload,
                   const char *url, const char *credential, storepush_cb cb, void *arg);

#endif
