#include <assert.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "breaker/breaker.h"

#define BREAKER_NAME(id, name) [id] = name,
static const char *const breaker_names[BREAKER_STATE_MAX] = { BREAKER_STATES(BREAKER_NAME) };
#undef BREAKER_NAME

/* t + d without overflow (d >= 0): a huge cool-down means "not before the
 * end of time", never a wrap into the past. */
static int64_t breaker_after(int64_t t, int64_t d)
{
	return t > INT64_MAX - d ? INT64_MAX : t + d;
}

/* The only place state changes, so an illegal transition cannot slip in. */
static void breaker_set_state(struct breaker *b, enum breaker_state to, int64_t now_ms)
{
	enum breaker_state from = b->state;
	assert((from == BREAKER_CLOSED && to == BREAKER_OPEN) ||
	       (from == BREAKER_OPEN && to == BREAKER_HALF_OPEN) ||
	       (from == BREAKER_OPEN && to == BREAKER_CLOSED) ||
	       (from == BREAKER_HALF_OPEN && to == BREAKER_OPEN) ||
	       (from == BREAKER_HALF_OPEN && to == BREAKER_CLOSED));
	(void)from;
	b->state = to;
	b->probe_in_flight = to == BREAKER_HALF_OPEN;
	if (to == BREAKER_OPEN)
		b->opened_at_ms = now_ms;
	if (to == BREAKER_HALF_OPEN)
		b->probe_at_ms = now_ms;
}

void breaker_init(struct breaker *b, int threshold, int64_t cooldown_ms)
{
	*b = (struct breaker){ .state = BREAKER_CLOSED };
	breaker_configure(b, threshold, cooldown_ms);
}

void breaker_configure(struct breaker *b, int threshold, int64_t cooldown_ms)
{
	b->threshold = threshold < 1 ? 1 : threshold;
	b->cooldown_ms = cooldown_ms < 0 ? 0 : cooldown_ms;
}

int breaker_allow(struct breaker *b, int64_t now_ms)
{
	switch (b->state) {
	case BREAKER_CLOSED:
		return 1;
	case BREAKER_OPEN:
		if (now_ms < breaker_retry_at_ms(b))
			return 0;
		breaker_set_state(b, BREAKER_HALF_OPEN, now_ms);
		return 1;
	case BREAKER_HALF_OPEN:
		if (b->probe_in_flight && now_ms < breaker_retry_at_ms(b))
			return 0;
		/* The probe is presumed lost; this request becomes the probe. */
		b->probe_in_flight = 1;
		b->probe_at_ms = now_ms;
		return 1;
	case BREAKER_STATE_MAX:
		break;
	}
	assert(0 && "breaker state outside the enum");
	return 0;
}

void breaker_record(struct breaker *b, int success, int64_t now_ms)
{
	if (success) {
		b->failures = 0;
		if (b->state != BREAKER_CLOSED)
			breaker_set_state(b, BREAKER_CLOSED, now_ms);
		return;
	}
	if (b->failures < INT_MAX)
		b->failures++;
	if (b->state == BREAKER_CLOSED && b->failures >= b->threshold)
		breaker_set_state(b, BREAKER_OPEN, now_ms);
	else if (b->state == BREAKER_HALF_OPEN)
		breaker_set_state(b, BREAKER_OPEN, now_ms);
}

int64_t breaker_retry_at_ms(const struct breaker *b)
{
	switch (b->state) {
	case BREAKER_OPEN:
		return breaker_after(b->opened_at_ms, b->cooldown_ms);
	case BREAKER_HALF_OPEN:
		return b->probe_in_flight ? breaker_after(b->probe_at_ms, b->cooldown_ms) : INT64_MIN;
	case BREAKER_CLOSED:
	case BREAKER_STATE_MAX:
		break;
	}
	return INT64_MIN;
}

const char *breaker_state_name(enum breaker_state s)
{
	return (unsigned)s < BREAKER_STATE_MAX ? breaker_names[s] : "?";
}
