#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "breaker/breaker.h"
#include "support/harness.h"

#define THRESHOLD 3
#define COOLDOWN 1000
#define OPENED_AT 100 /* when start_state opens its breakers */

enum start { S_CLOSED, S_CLOSED_NEAR, S_OPEN, S_HALF_OPEN };
enum event { E_ALLOW, E_SUCCESS, E_FAILURE };

/* Brings a fresh breaker into one of the start states of the table. */
static void start_state(struct breaker *b, enum start s)
{
	breaker_init(b, THRESHOLD, COOLDOWN);
	if (s == S_CLOSED)
		return;
	for (int i = 0; i < THRESHOLD - 1; i++)
		breaker_record(b, 0, 0);
	if (s == S_CLOSED_NEAR)
		return;
	breaker_record(b, 0, OPENED_AT);
	if (s == S_OPEN)
		return;
	CU_ASSERT_TRUE(breaker_allow(b, OPENED_AT + COOLDOWN));
}

struct transition {
	enum start from;
	enum event ev;
	int64_t now;
	int allowed;  /* what breaker_allow said; 0 for the record events */
	enum breaker_state to;
	int failures;
	int64_t retry_at;
};

/* One assertion per table row, reported under the row's own text. */
static void check_case(int ok, const char *what, unsigned line)
{
	CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, line, what, __FILE__, "", CU_FALSE);
}

/* Every state x event, with the time boundaries that matter. */
static void test_transition_table(void)
{
	static const struct transition rows[] = {
		{ S_CLOSED, E_ALLOW, 0, 1, BREAKER_CLOSED, 0, INT64_MIN },
		{ S_CLOSED, E_SUCCESS, 5, 0, BREAKER_CLOSED, 0, INT64_MIN },
		{ S_CLOSED, E_FAILURE, 5, 0, BREAKER_CLOSED, 1, INT64_MIN },
		{ S_CLOSED_NEAR, E_ALLOW, 5, 1, BREAKER_CLOSED, 2, INT64_MIN },
		{ S_CLOSED_NEAR, E_SUCCESS, 5, 0, BREAKER_CLOSED, 0, INT64_MIN },
		{ S_CLOSED_NEAR, E_FAILURE, 50, 0, BREAKER_OPEN, 3, 50 + COOLDOWN },
		{ S_OPEN, E_ALLOW, OPENED_AT, 0, BREAKER_OPEN, 3, OPENED_AT + COOLDOWN },
		{ S_OPEN, E_ALLOW, OPENED_AT + COOLDOWN - 1, 0, BREAKER_OPEN, 3, OPENED_AT + COOLDOWN },
		{ S_OPEN, E_ALLOW, OPENED_AT + COOLDOWN, 1, BREAKER_HALF_OPEN, 3,
		  OPENED_AT + 2 * COOLDOWN },
		{ S_OPEN, E_ALLOW, 5000, 1, BREAKER_HALF_OPEN, 3, 5000 + COOLDOWN },
		/* A request sent before it opened reports late. */
		{ S_OPEN, E_SUCCESS, 500, 0, BREAKER_CLOSED, 0, INT64_MIN },
		{ S_OPEN, E_FAILURE, 500, 0, BREAKER_OPEN, 4, OPENED_AT + COOLDOWN },
		{ S_HALF_OPEN, E_ALLOW, OPENED_AT + COOLDOWN, 0, BREAKER_HALF_OPEN, 3,
		  OPENED_AT + 2 * COOLDOWN },
		{ S_HALF_OPEN, E_ALLOW, OPENED_AT + 2 * COOLDOWN - 1, 0, BREAKER_HALF_OPEN, 3,
		  OPENED_AT + 2 * COOLDOWN },
		/* The probe went a whole cool-down without an outcome: lost. */
		{ S_HALF_OPEN, E_ALLOW, OPENED_AT + 2 * COOLDOWN, 1, BREAKER_HALF_OPEN, 3,
		  OPENED_AT + 3 * COOLDOWN },
		{ S_HALF_OPEN, E_SUCCESS, 1200, 0, BREAKER_CLOSED, 0, INT64_MIN },
		{ S_HALF_OPEN, E_FAILURE, 1200, 0, BREAKER_OPEN, 4, 1200 + COOLDOWN },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		const struct transition *r = &rows[i];
		struct breaker b;
		start_state(&b, r->from);
		int allowed = 0;
		if (r->ev == E_ALLOW)
			allowed = breaker_allow(&b, r->now);
		else
			breaker_record(&b, r->ev == E_SUCCESS, r->now);
		int ok = allowed == r->allowed && b.state == r->to && b.failures == r->failures &&
		         b.probe_in_flight == (r->to == BREAKER_HALF_OPEN) &&
		         breaker_retry_at_ms(&b) == r->retry_at;
		char what[64];
		snprintf(what, sizeof what, "transition row %zu", i);
		check_case(ok, what, __LINE__);
	}
}

static void test_threshold_boundary(void)
{
	struct breaker b;
	breaker_init(&b, 5, COOLDOWN);
	for (int i = 0; i < 4; i++) {
		breaker_record(&b, 0, i);
		CU_ASSERT_EQUAL(b.state, BREAKER_CLOSED);
		CU_ASSERT_TRUE(breaker_allow(&b, i));
	}
	/* A success in between: the count is of consecutive failures. */
	breaker_record(&b, 1, 10);
	for (int i = 0; i < 4; i++)
		breaker_record(&b, 0, 20 + i);
	CU_ASSERT_EQUAL(b.state, BREAKER_CLOSED);
	CU_ASSERT_EQUAL(b.failures, 4);
	breaker_record(&b, 0, 30);
	CU_ASSERT_EQUAL(b.state, BREAKER_OPEN);
	CU_ASSERT_EQUAL(b.opened_at_ms, 30);
	CU_ASSERT_FALSE(breaker_allow(&b, 30));

	/* Threshold 1: the first failure opens it. */
	breaker_init(&b, 1, COOLDOWN);
	breaker_record(&b, 0, 7);
	CU_ASSERT_EQUAL(b.state, BREAKER_OPEN);
	CU_ASSERT_EQUAL(breaker_retry_at_ms(&b), 7 + COOLDOWN);
}

static void test_cooldown_boundary(void)
{
	struct breaker b;
	breaker_init(&b, 1, 30000);
	breaker_record(&b, 0, 1000000);
	CU_ASSERT_EQUAL(breaker_retry_at_ms(&b), 1030000);
	CU_ASSERT_FALSE(breaker_allow(&b, 1000000));
	CU_ASSERT_FALSE(breaker_allow(&b, 1029999));
	CU_ASSERT_EQUAL(b.state, BREAKER_OPEN);
	CU_ASSERT_TRUE(breaker_allow(&b, 1030000));
	CU_ASSERT_EQUAL(b.state, BREAKER_HALF_OPEN);

	/* A clock that went backwards does not shorten the pause. */
	breaker_init(&b, 1, 30000);
	breaker_record(&b, 0, 1000000);
	CU_ASSERT_FALSE(breaker_allow(&b, 0));
	CU_ASSERT_FALSE(breaker_allow(&b, INT64_MIN));

	/* Zero cool-down: the next request is the probe at once. */
	breaker_init(&b, 1, 0);
	breaker_record(&b, 0, 500);
	CU_ASSERT_EQUAL(b.state, BREAKER_OPEN);
	CU_ASSERT_TRUE(breaker_allow(&b, 500));
	CU_ASSERT_EQUAL(b.state, BREAKER_HALF_OPEN);
}

static void test_only_one_probe(void)
{
	struct breaker b;
	breaker_init(&b, THRESHOLD, COOLDOWN);
	for (int i = 0; i < THRESHOLD; i++)
		breaker_record(&b, 0, 0);
	int granted = 0;
	for (int64_t t = COOLDOWN; t < 2 * COOLDOWN; t += 7)
		for (int k = 0; k < 3; k++)
			granted += breaker_allow(&b, t);
	CU_ASSERT_EQUAL(granted, 1);

	/* The probe fails: a fresh cool-down from that moment, then one probe. */
	breaker_record(&b, 0, 1500);
	CU_ASSERT_EQUAL(b.state, BREAKER_OPEN);
	CU_ASSERT_FALSE(breaker_allow(&b, 2499));
	CU_ASSERT_TRUE(breaker_allow(&b, 2500));
	CU_ASSERT_FALSE(breaker_allow(&b, 2500));
	CU_ASSERT_FALSE(breaker_allow(&b, 2501));

	/* The probe succeeds: everything flows again. */
	breaker_record(&b, 1, 2600);
	CU_ASSERT_EQUAL(b.state, BREAKER_CLOSED);
	CU_ASSERT_EQUAL(b.failures, 0);
	for (int k = 0; k < 10; k++)
		CU_ASSERT_TRUE(breaker_allow(&b, 2600));
	CU_ASSERT_EQUAL(breaker_retry_at_ms(&b), INT64_MIN);
}

/* One breaker per supplier: tripping one leaves the others exactly as they were. */
static void test_independent_breakers(void)
{
	struct breaker sup[3], before[3];
	for (int i = 0; i < 3; i++)
		breaker_init(&sup[i], THRESHOLD, COOLDOWN);
	breaker_record(&sup[2], 0, 0); /* one failure, still closed */
	memcpy(before, sup, sizeof before);
	for (int i = 0; i < THRESHOLD; i++)
		breaker_record(&sup[1], 0, 10);
	CU_ASSERT_EQUAL(sup[1].state, BREAKER_OPEN);
	CU_ASSERT_FALSE(breaker_allow(&sup[1], 20));
	CU_ASSERT_TRUE(breaker_allow(&sup[0], 20));
	CU_ASSERT_TRUE(breaker_allow(&sup[2], 20));
	CU_ASSERT_EQUAL(memcmp(&sup[0], &before[0], sizeof sup[0]), 0);
	CU_ASSERT_EQUAL(memcmp(&sup[2], &before[2], sizeof sup[2]), 0);
	CU_ASSERT_EQUAL(sup[2].failures, 1);
}

static void test_init_and_limits(void)
{
	struct breaker b;
	memset(&b, 0xa5, sizeof b);
	breaker_init(&b, 0, -5);
	CU_ASSERT_EQUAL(b.state, BREAKER_CLOSED);
	CU_ASSERT_EQUAL(b.threshold, 1);
	CU_ASSERT_EQUAL(b.cooldown_ms, 0);
	CU_ASSERT_EQUAL(b.failures, 0);
	CU_ASSERT_EQUAL(b.probe_in_flight, 0);

	/* A cool-down reaching past the end of time saturates, never wraps. */
	breaker_init(&b, 1, INT64_MAX);
	breaker_record(&b, 0, 1000);
	CU_ASSERT_EQUAL(breaker_retry_at_ms(&b), INT64_MAX);
	CU_ASSERT_FALSE(breaker_allow(&b, INT64_MAX - 1));
	CU_ASSERT_TRUE(breaker_allow(&b, INT64_MAX));
	CU_ASSERT_EQUAL(breaker_retry_at_ms(&b), INT64_MAX);
	CU_ASSERT_FALSE(breaker_allow(&b, INT64_MAX - 1));
}

static void test_full_cycle(void)
{
	struct breaker b;
	breaker_init(&b, 2, 100);
	breaker_record(&b, 0, 0);
	breaker_record(&b, 0, 1);
	CU_ASSERT_EQUAL(b.state, BREAKER_OPEN);
	CU_ASSERT_TRUE(breaker_allow(&b, 101));
	CU_ASSERT_EQUAL(b.state, BREAKER_HALF_OPEN);
	breaker_record(&b, 0, 150);
	CU_ASSERT_EQUAL(b.state, BREAKER_OPEN);
	CU_ASSERT_EQUAL(breaker_retry_at_ms(&b), 250);
	CU_ASSERT_TRUE(breaker_allow(&b, 250));
	breaker_record(&b, 1, 260);
	CU_ASSERT_EQUAL(b.state, BREAKER_CLOSED);
	/* Closed again: it takes the full threshold to open once more. */
	breaker_record(&b, 0, 300);
	CU_ASSERT_EQUAL(b.state, BREAKER_CLOSED);
	breaker_record(&b, 0, 301);
	CU_ASSERT_EQUAL(b.state, BREAKER_OPEN);
}

static void test_state_names(void)
{
	CU_ASSERT_STRING_EQUAL(breaker_state_name(BREAKER_CLOSED), "closed");
	CU_ASSERT_STRING_EQUAL(breaker_state_name(BREAKER_OPEN), "open");
	CU_ASSERT_STRING_EQUAL(breaker_state_name(BREAKER_HALF_OPEN), "half_open");
	CU_ASSERT_STRING_EQUAL(breaker_state_name(BREAKER_STATE_MAX), "?");
	CU_ASSERT_STRING_EQUAL(breaker_state_name((enum breaker_state)-1), "?");
}

/* A reload changes threshold and cool-down without closing an open breaker. */
static void test_configure_keeps_state(void)
{
	struct breaker b;
	start_state(&b, S_OPEN);
	breaker_configure(&b, 10, 50);
	CU_ASSERT_EQUAL(b.state, BREAKER_OPEN);
	CU_ASSERT_EQUAL(b.threshold, 10);
	CU_ASSERT_FALSE(breaker_allow(&b, OPENED_AT + 49));
	CU_ASSERT_TRUE(breaker_allow(&b, OPENED_AT + 50)); /* the new, shorter cool-down */
	breaker_configure(&b, 0, -5);
	CU_ASSERT_EQUAL(b.threshold, 1);
	CU_ASSERT_EQUAL(b.cooldown_ms, 0);
}

static const struct harness_test tests[] = {
	{ "configure keeps the state, clamps", test_configure_keeps_state },
	{ "transition table: every state x event", test_transition_table },
	{ "threshold boundary", test_threshold_boundary },
	{ "cooldown boundary", test_cooldown_boundary },
	{ "only one probe at a time", test_only_one_probe },
	{ "breakers of different suppliers are independent", test_independent_breakers },
	{ "init clamps and time saturation", test_init_and_limits },
	{ "open, failed probe, successful probe", test_full_cycle },
	{ "state names", test_state_names },
	{ NULL, NULL },
};

int main(void)
{
	return harness_main("breaker", NULL, NULL, tests);
}
