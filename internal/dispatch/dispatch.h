/* dispatch: delivers the outbox, at least once, from every dropshipd worker.
 *
 * Woken by its worker after a commit that wrote messages, by NOTIFY
 * dropship_outbox from other programs, and by a poll timer (how messages
 * another process wrote are found; a LISTEN can also die silently). Claims due
 * messages with FOR UPDATE SKIP LOCKED and a lease (token + expiry), so
 * several workers and several dropshipd processes on one database never send
 * one message concurrently; an expired lease (a crashed holder) is reclaimed;
 * every update is fenced by the lease token. Each message is signed with its
 * target's current secret (Standard Webhooks) and carries Idempotency-Key.
 * Outcomes follow internal/retry; a per-supplier circuit breaker pauses a
 * failing supplier without slowing the others. Platform messages
 * (platform.*) are sent to the store's Shopify or WooCommerce API by
 * internal/storepush, with a breaker per platform host. The same loop sweeps for
 * requests that missed their supplier's accept_within / ship_within.
 *
 * Not thread-safe: one dispatcher per worker event loop. */
#ifndef DROPSHIP_DISPATCH_H
#define DROPSHIP_DISPATCH_H
#include <stdint.h>
#include <event2/event.h>

#include "callback/callback.h"
#include "client/client.h"
#include "db/db.h"

struct dispatch;

struct dispatch_options {
	int max_inflight;            /* messages in flight per worker (default 64) */
	int poll_ms;                 /* safety-net poll interval (default 1000) */
	int lease_ms;                /* claim lease; must exceed the client timeout */
	int max_attempts;            /* then `failed` */
	long long backoff_base_ms, backoff_max_ms;
	int breaker_threshold;       /* consecutive failures that open a supplier's breaker */
	int64_t breaker_cooldown_ms; /* before one probe is let through */
	int sweep_ms;                /* deadline sweep interval (default 5000) */
	char shopify_api_version[16]; /* platform messages to Shopify stores ([platforms]) */
};

struct config;

/* The options the [dispatch] section asks for. */
void dispatch_options_from(const struct config *cfg, struct dispatch_options *opt);

/* Prepared statements the dispatcher needs on every pool connection. */
extern const struct db_stmt_def dispatch_stmts[];

struct metrics;

/* Starts polling at once. Requests past their deadline are rejected
 * through callbacks (the worker's callback queue). Outcomes, durations and
 * breaker states go to metrics (the worker's; it must outlive this). */
struct dispatch *dispatch_new(struct event_base *base, struct db_pool *pool, struct client *client,
                              struct callback_queue *callbacks, struct metrics *metrics,
                              const struct dispatch_options *opt);
/* Takes new options (a reload): later claims and outcomes follow them;
 * breakers keep their state under the new threshold and cool-down. */
void dispatch_set_options(struct dispatch *d, const struct dispatch_options *opt);
/* Something may be due now (messages were committed, or a NOTIFY arrived). */
void dispatch_wake(struct dispatch *d);
/* Stops claiming; messages in flight still record their outcome while the
 * loop runs (any that do not are retried after their lease expires).
 * idle(arg), when not NULL, is called once from the loop when nothing is
 * being claimed, sent or recorded any more (at once if nothing was). */
void dispatch_stop(struct dispatch *d, void (*idle)(void *arg), void *arg);
/* Messages being sent or recorded. */
int dispatch_inflight(const struct dispatch *d);
/* Frees. After the loop has ended, free the client first (its pending
 * callbacks still reach this dispatcher), then the pool, then this.
 * Accepts NULL. */
void dispatch_free(struct dispatch *d);

#endif
