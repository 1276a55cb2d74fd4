#include <ctype.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "lifecycle/lifecycle.h"
#include "mem/mem.h"

static const char *const lifecycle_state_names[] = {
#define X(id, name) name,
	LIFECYCLE_STATES(X)
#undef X
};

static const char *const lifecycle_event_names[] = {
#define X(id, name, to) "fulfillment." name,
	LIFECYCLE_EVENTS(X)
#undef X
};

static const enum lifecycle_state lifecycle_event_target[] = {
#define X(id, name, to) LIFECYCLE_##to,
	LIFECYCLE_EVENTS(X)
#undef X
};

/* from → allowed events. One row per state: the table is the specification. */
#define A(ev) (1u << LIFECYCLE_##ev)
static const unsigned lifecycle_allowed[LIFECYCLE_STATE_MAX] = {
	[LIFECYCLE_PENDING] = A(EV_ACCEPTED) | A(EV_CANCELLED) | A(EV_FAILED),
	[LIFECYCLE_SENT] = A(EV_ACCEPTED) | A(EV_REJECTED) | A(EV_CANCELLED),
	[LIFECYCLE_ACCEPTED] = A(EV_SHIPPED) | A(EV_REJECTED) | A(EV_CANCELLED),
	[LIFECYCLE_REJECTED] = 0,
	[LIFECYCLE_SHIPPED] = A(EV_DELIVERED),
	[LIFECYCLE_DELIVERED] = 0,
	[LIFECYCLE_CANCELLED] = 0,
	[LIFECYCLE_FAILED] = 0,
};
#undef A

enum lifecycle_result lifecycle_apply(enum lifecycle_state from, enum lifecycle_event ev,
                                      enum lifecycle_state *to)
{
	if ((unsigned)from >= LIFECYCLE_STATE_MAX || (unsigned)ev >= LIFECYCLE_EVENT_MAX)
		return LIFECYCLE_ILLEGAL;
	enum lifecycle_state target = lifecycle_event_target[ev];
	if (from == target)
		return LIFECYCLE_REPEAT;
	if (!(lifecycle_allowed[from] & (1u << ev)))
		return LIFECYCLE_ILLEGAL;
	*to = target;
	return LIFECYCLE_APPLY;
}

const char *lifecycle_state_name(enum lifecycle_state s)
{
	return (unsigned)s < LIFECYCLE_STATE_MAX ? lifecycle_state_names[s] : "?";
}

int lifecycle_state_parse(const char *name, enum lifecycle_state *out)
{
	for (int i = 0; i < LIFECYCLE_STATE_MAX; i++)
		if (strcmp(name, lifecycle_state_names[i]) == 0) {
			*out = (enum lifecycle_state)i;
			return 0;
		}
	return -1;
}

int lifecycle_event_parse(const char *type, enum lifecycle_event *out)
{
	for (int i = 0; i < LIFECYCLE_EVENT_MAX; i++)
		if (strcmp(type, lifecycle_event_names[i]) == 0) {
			*out = (enum lifecycle_event)i;
			return 0;
		}
	return -1;
}

const char *lifecycle_event_name(enum lifecycle_event e)
{
	return (unsigned)e < LIFECYCLE_EVENT_MAX ? lifecycle_event_names[e] : "?";
}

int lifecycle_check_items(const int *open_lines, size_t nopen, const int *items, size_t nitems,
                          size_t *left, size_t *bad)
{
	for (size_t i = 0; i < nitems; i++) {
		size_t k = 0;
		while (k < nopen && open_lines[k] != items[i])
			k++;
		if (k == nopen) {
			*bad = i;
			return -1;
		}
	}
	*left = 0;
	for (size_t k = 0; k < nopen; k++) {
		size_t i = 0;
		while (i < nitems && items[i] != open_lines[k])
			i++;
		*left += i == nitems;
	}
	return 0;
}

void lifecycle_decide(const struct lifecycle_request *rq, const struct lifecycle_callback *cb,
                      struct lifecycle_decision *d)
{
	memset(d, 0, sizeof *d);
	d->to = rq->state;
	if (rq->seen) {
		d->result = LIFECYCLE_REPEAT;
		return;
	}
	d->result = lifecycle_apply(rq->state, cb->event, &d->to);
	if (d->result != LIFECYCLE_APPLY || !cb->items)
		return;
	size_t left;
	if (lifecycle_check_items(rq->open_lines, rq->nopen, cb->items, cb->nitems, &left, &d->bad_item) < 0) {
		d->result = LIFECYCLE_BAD_ITEM;
		d->to = rq->state;
		return;
	}
	if (left > 0)
		d->to = LIFECYCLE_ACCEPTED; /* more parcels to come */
}

static int lifecycle_fail(struct order_error *err, const char *code, const char *field, const char *message)
{
	err->code = code;
	snprintf(err->field, sizeof err->field, "%s", field);
	snprintf(err->message, sizeof err->message, "%s", message);
	return -1;
}

/* 8-4-4-4-12 hex digits, copied lower-cased. */
static int lifecycle_uuid(const char *s, char out[37])
{
	static const int dash[] = { 8, 13, 18, 23 };
	if (strlen(s) != 36)
		return 0;
	for (int i = 0, d = 0; i < 36; i++) {
		if (d < 4 && i == dash[d]) {
			if (s[i] != '-')
				return 0;
			d++;
		} else if (!isxdigit((unsigned char)s[i])) {
			return 0;
		}
		out[i] = (char)tolower((unsigned char)s[i]);
	}
	out[36] = '\0';
	return 1;
}

/* An optional string member: absent or null gives NULL; other types fail. */
static int lifecycle_text(json_t *obj, const char *key, const char *field, size_t max, const char **out,
                          struct order_error *err)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return lifecycle_fail(err, "invalid_field", field, "must be a string");
	if (json_string_length(v) > max)
		return lifecycle_fail(err, "invalid_field", field, "is too long");
	*out = json_string_value(v);
	return 0;
}

/* A shipment's tracking and items (cb->items is malloc'd: the caller frees
 * it on failure). Tracking belongs to a shipment; other types ignore it
 * (docs/callbacks.md), so that a later event cannot overwrite the
 * request's tracking. */
static int lifecycle_parse_shipment(json_t *root, struct lifecycle_callback *cb, struct order_error *err)
{
	json_t *tracking = cb->event == LIFECYCLE_EV_SHIPPED ? json_object_get(root, "tracking") : NULL;
	if (tracking && !json_is_null(tracking) && !json_is_object(tracking)) {
		lifecycle_fail(err, "invalid_field", "tracking", "must be an object");
		return -1;
	}
	if (json_is_object(tracking) &&
	    (lifecycle_text(tracking, "carrier", "tracking.carrier", 128, &cb->carrier, err) < 0 ||
	     lifecycle_text(tracking, "number", "tracking.number", 128, &cb->tracking_number, err) < 0 ||
	     lifecycle_text(tracking, "url", "tracking.url", 2048, &cb->tracking_url, err) < 0))
		return -1;
	json_t *items = json_object_get(root, "items");
	if (items && !json_is_null(items)) {
		if (cb->event != LIFECYCLE_EV_SHIPPED || !json_is_array(items) || json_array_size(items) == 0 ||
		    json_array_size(items) > 500) {
			lifecycle_fail(err, "invalid_field", "items",
			               "must be a non-empty array of {\"line\": N}, with fulfillment.shipped only");
			return -1;
		}
		cb->nitems = json_array_size(items);
		cb->items = mem_calloc(cb->nitems, sizeof *cb->items);
		for (size_t i = 0; i < cb->nitems; i++) {
			json_t *line = json_object_get(json_array_get(items, i), "line");
			if (!json_is_integer(line) || json_integer_value(line) < 1 || json_integer_value(line) > 500) {
				char field[48];
				snprintf(field, sizeof field, "items[%zu].line", i);
				lifecycle_fail(err, "invalid_field", field, "must be an order line number");
				return -1;
			}
			cb->items[i] = (int)json_integer_value(line);
		}
	}
	if (cb->event == LIFECYCLE_EV_SHIPPED) {
		if (!cb->carrier || !*cb->carrier) {
			lifecycle_fail(err, "invalid_field", "tracking.carrier", "is required for fulfillment.shipped");
			return -1;
		}
		if (!cb->tracking_number || !*cb->tracking_number) {
			lifecycle_fail(err, "invalid_field", "tracking.number", "is required for fulfillment.shipped");
			return -1;
		}
	}
	return 0;
}

int lifecycle_parse_callback(const char *body, size_t len, struct lifecycle_callback *cb,
                             struct order_error *err)
{
	memset(cb, 0, sizeof *cb);
	json_error_t je;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		/* Jansson quotes the offending input in its text: keep the message
		 * printable ASCII (order.h's promise), so that it stays valid UTF-8
		 * in the JSON reply and safe in the log. */
		char m[200];
		snprintf(m, sizeof m, "%s (line %d, column %d)", je.text, je.line, je.column);
		for (char *c = m; *c; c++)
			if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
				*c = '?';
		return lifecycle_fail(err, "invalid_json", "", m);
	}
	const char *type, *rid;
	if (!json_is_object(root)) {
		lifecycle_fail(err, "invalid_field", "", "the body must be a JSON object");
		goto fail;
	}
	if (lifecycle_text(root, "type", "type", 64, &type, err) < 0)
		goto fail;
	if (!type || lifecycle_event_parse(type, &cb->event) < 0 || cb->event == LIFECYCLE_EV_FAILED) {
		lifecycle_fail(err, "invalid_field", "type", "must be fulfillment.accepted, .rejected, .shipped, "
		                                             ".delivered or .cancelled");
		goto fail;
	}
	if (lifecycle_text(root, "request_id", "request_id", 64, &rid, err) < 0)
		goto fail;
	if (!rid || !lifecycle_uuid(rid, cb->request_id_buf)) {
		lifecycle_fail(err, "invalid_field", "request_id", "must be the request's id (a UUID)");
		goto fail;
	}
	cb->request_id = cb->request_id_buf;
	if (lifecycle_text(root, "occurred_at", "occurred_at", 64, &cb->occurred_at, err) < 0)
		goto fail;
	if (cb->occurred_at && !order_valid_timestamp(cb->occurred_at)) {
		lifecycle_fail(err, "invalid_field", "occurred_at", "must be an RFC 3339 timestamp");
		goto fail;
	}
	if (lifecycle_text(root, "reason", "reason", 256, &cb->reason, err) < 0)
		goto fail;
	if (lifecycle_parse_shipment(root, cb, err) < 0)
		goto fail;
	cb->root = root;
	return 0;
fail:
	json_decref(root);
	free(cb->items);
	memset(cb, 0, sizeof *cb);
	return -1;
}

int lifecycle_system_event(enum lifecycle_event ev, const char *request_id, const char *reason,
                           struct lifecycle_callback *cb)
{
	memset(cb, 0, sizeof *cb);
	if ((unsigned)ev >= LIFECYCLE_EVENT_MAX || !request_id || !lifecycle_uuid(request_id, cb->request_id_buf))
		return -1;
	cb->event = ev;
	cb->request_id = cb->request_id_buf;
	cb->root = json_pack("{s:s, s:s, s:s?}", "type", lifecycle_event_names[ev], "request_id", cb->request_id,
	                     "reason", reason);
	cb->reason = json_string_value(json_object_get(cb->root, "reason"));
	return 0;
}

void lifecycle_callback_free(struct lifecycle_callback *cb)
{
	json_decref(cb->root);
	free(cb->items);
	memset(cb, 0, sizeof *cb);
}
