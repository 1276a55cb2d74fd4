#include <string.h>

#include "lifecycle/lifecycle.h"

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
	[LIFECYCLE_PENDING] = A(EV_ACCEPTED) | A(EV_CANCELLED),
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
