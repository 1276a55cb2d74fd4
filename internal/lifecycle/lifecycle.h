/* lifecycle: the state machine of a fulfillment request (docs/callbacks.md),
 * as a transition table, and the decision a supplier callback takes on a
 * request. Pure: no I/O.
 *
 *   pending → sent → accepted → shipped → delivered
 *   sent | accepted → rejected
 *   pending | sent | accepted → cancelled
 *   pending → failed (delivery gave up; dropshipd's own event, never a supplier's)
 *
 * One extension: `accepted` is taken from `pending` too, because a supplier
 * may call back before the dispatcher has recorded its own 2xx.
 * A supplier event for a request already in the state it leads to is a
 * repeat (200, no change); anything else not listed is illegal (409). */
#ifndef DROPSHIP_LIFECYCLE_H
#define DROPSHIP_LIFECYCLE_H
#include <stddef.h>
#include <jansson.h>

#include "order/order.h"

#define LIFECYCLE_STATES(X) \
	X(PENDING, "pending")     \
	X(SENT, "sent")           \
	X(ACCEPTED, "accepted")   \
	X(REJECTED, "rejected")   \
	X(SHIPPED, "shipped")     \
	X(DELIVERED, "delivered") \
	X(CANCELLED, "cancelled") \
	X(FAILED, "failed")

enum lifecycle_state {
#define X(id, name) LIFECYCLE_##id,
	LIFECYCLE_STATES(X)
#undef X
	LIFECYCLE_STATE_MAX
};

/* Events, "fulfillment.<name>": what suppliers call back with, and one
 * dropshipd records itself (failed: its message could not be delivered;
 * never accepted from a supplier). */
#define LIFECYCLE_EVENTS(X)          \
	X(EV_ACCEPTED, "accepted", ACCEPTED)   \
	X(EV_REJECTED, "rejected", REJECTED)   \
	X(EV_SHIPPED, "shipped", SHIPPED)      \
	X(EV_DELIVERED, "delivered", DELIVERED) \
	X(EV_CANCELLED, "cancelled", CANCELLED) \
	X(EV_FAILED, "failed", FAILED)

enum lifecycle_event {
#define X(id, name, to) LIFECYCLE_##id,
	LIFECYCLE_EVENTS(X)
#undef X
	LIFECYCLE_EVENT_MAX
};

enum lifecycle_result {
	LIFECYCLE_APPLY,    /* move to *to */
	LIFECYCLE_REPEAT,   /* already there: answer 200, change nothing */
	LIFECYCLE_ILLEGAL,  /* answer 409 invalid_transition, change nothing */
	LIFECYCLE_BAD_ITEM, /* a parcel lists a line that is not an unshipped line
	                     * of the request: answer 422, change nothing */
};

/* Decides what event ev does to a request in state from. */
enum lifecycle_result lifecycle_apply(enum lifecycle_state from, enum lifecycle_event ev,
                                      enum lifecycle_state *to);

/* Names as stored in the database; parse returns -1 for unknown text. */
const char *lifecycle_state_name(enum lifecycle_state s);
int lifecycle_state_parse(const char *name, enum lifecycle_state *out);
/* Parses "fulfillment.accepted" etc. (any event, dropshipd's own included). */
int lifecycle_event_parse(const char *type, enum lifecycle_event *out);
const char *lifecycle_event_name(enum lifecycle_event e);

/* A supplier callback body (docs/callbacks.md). Strings point into root. */
struct lifecycle_callback {
	enum lifecycle_event event;
	const char *request_id;      /* UUID text, lower-cased */
	const char *occurred_at;     /* RFC 3339 or NULL */
	const char *carrier;         /* shipped: required; NULL for other types */
	const char *tracking_number; /* shipped: required; NULL for other types */
	const char *tracking_url;    /* shipped: optional; NULL for other types */
	const char *reason;          /* optional, any type; for rejected e.g. out_of_stock,
	                              * cannot_ship or free text; NULL if absent */
	int *items;                  /* shipped: line numbers of a partial shipment; NULL = every line */
	size_t nitems;
	json_t *root;
	char request_id_buf[37];
};

/* A request as its callback finds it (read under the request's lock). */
struct lifecycle_request {
	enum lifecycle_state state;
	int seen;                    /* this delivery (webhook-id) was applied before */
	const int *open_lines;       /* its lines not yet shipped */
	size_t nopen;
};

/* What a callback does to a request. */
struct lifecycle_decision {
	enum lifecycle_result result;
	enum lifecycle_state to;     /* LIFECYCLE_APPLY: the new state */
	size_t bad_item;             /* LIFECYCLE_BAD_ITEM: index into the callback's items */
};

/* Decides a callback against the request: a delivery seen before is a
 * repeat; otherwise the transition table decides, and a shipment that lists
 * items must name unshipped lines of the request — when some are left
 * unshipped, the request stays accepted (more parcels to come). */
void lifecycle_decide(const struct lifecycle_request *rq, const struct lifecycle_callback *cb,
                      struct lifecycle_decision *d);

/* A parcel's items against a request's unshipped lines: 0 with *left = the
 * unshipped lines the parcel does not list, or -1 with *bad = the index of
 * the first item that is not an unshipped line. */
int lifecycle_check_items(const int *open_lines, size_t nopen, const int *items, size_t nitems,
                          size_t *left, size_t *bad);

/* Parses and validates; errors name the field (codes as in order.h).
 * Returns 0, or -1 with err filled (nothing to free then). */
int lifecycle_parse_callback(const char *body, size_t len, struct lifecycle_callback *cb,
                             struct order_error *err);
void lifecycle_callback_free(struct lifecycle_callback *cb);

/* An event dropshipd records itself on a request (a missed deadline is
 * EV_REJECTED for "timeout"; a message that could not be delivered is
 * EV_FAILED with its cause), as a callback with that reason. Returns 0, or
 * -1 when request_id is not a request id. */
int lifecycle_system_event(enum lifecycle_event ev, const char *request_id, const char *reason,
                           struct lifecycle_callback *cb);

#endif
