/* The request state machine: every state × event pair against the table
 * written out independently here from contract section 5.2. */
#include <string.h>

#include <CUnit/CUnit.h>

#include "lifecycle/lifecycle.h"
#include "support/harness.h"

#define P LIFECYCLE_PENDING
#define S LIFECYCLE_SENT
#define A LIFECYCLE_ACCEPTED
#define R LIFECYCLE_REJECTED
#define H LIFECYCLE_SHIPPED
#define D LIFECYCLE_DELIVERED
#define C LIFECYCLE_CANCELLED
#define F LIFECYCLE_FAILED
#define APPLY(to) { LIFECYCLE_APPLY, to }
#define REPEAT { LIFECYCLE_REPEAT, -1 }
#define NO { LIFECYCLE_ILLEGAL, -1 }

struct expect {
	enum lifecycle_result result;
	int to;
};

/* Rows: from-state; columns: accepted, rejected, shipped, delivered, cancelled. */
static const struct expect table[LIFECYCLE_STATE_MAX][LIFECYCLE_EVENT_MAX] = {
	[P] = { APPLY(A), NO, NO, NO, APPLY(C) },
	[S] = { APPLY(A), APPLY(R), NO, NO, APPLY(C) },
	[A] = { REPEAT, APPLY(R), APPLY(H), NO, APPLY(C) },
	[R] = { NO, REPEAT, NO, NO, NO },
	[H] = { NO, NO, REPEAT, APPLY(D), NO },
	[D] = { NO, NO, NO, REPEAT, NO },
	[C] = { NO, NO, NO, NO, REPEAT },
	[F] = { NO, NO, NO, NO, NO },
};

static void test_every_pair(void)
{
	int checked = 0;
	for (int s = 0; s < LIFECYCLE_STATE_MAX; s++)
		for (int e = 0; e < LIFECYCLE_EVENT_MAX; e++) {
			enum lifecycle_state to = (enum lifecycle_state)-1;
			enum lifecycle_result r = lifecycle_apply((enum lifecycle_state)s, (enum lifecycle_event)e, &to);
			CU_ASSERT_EQUAL(r, table[s][e].result);
			/* on no move, `to` is left untouched */
			int want = table[s][e].result == LIFECYCLE_APPLY ? table[s][e].to : -1;
			CU_ASSERT_EQUAL((int)to, want);
			checked++;
		}
	CU_ASSERT_EQUAL(checked, 8 * 5);
}

static void test_names_round_trip(void)
{
	for (int s = 0; s < LIFECYCLE_STATE_MAX; s++) {
		enum lifecycle_state back;
		CU_ASSERT_EQUAL(lifecycle_state_parse(lifecycle_state_name((enum lifecycle_state)s), &back), 0);
		CU_ASSERT_EQUAL((int)back, s);
	}
	for (int e = 0; e < LIFECYCLE_EVENT_MAX; e++) {
		enum lifecycle_event back;
		CU_ASSERT_EQUAL(lifecycle_event_parse(lifecycle_event_name((enum lifecycle_event)e), &back), 0);
		CU_ASSERT_EQUAL((int)back, e);
	}
	enum lifecycle_event ev;
	CU_ASSERT_EQUAL(lifecycle_event_parse("fulfillment.shipped", &ev), 0);
	CU_ASSERT_EQUAL(ev, LIFECYCLE_EV_SHIPPED);
	CU_ASSERT_EQUAL(lifecycle_event_parse("shipped", &ev), -1);
	CU_ASSERT_EQUAL(lifecycle_event_parse("fulfillment.requested", &ev), -1);
	enum lifecycle_state st;
	CU_ASSERT_EQUAL(lifecycle_state_parse("lost", &st), -1);
	CU_ASSERT_STRING_EQUAL(lifecycle_state_name(LIFECYCLE_STATE_MAX), "?");
}

static void test_out_of_range(void)
{
	enum lifecycle_state to = LIFECYCLE_PENDING;
	CU_ASSERT_EQUAL(lifecycle_apply(LIFECYCLE_STATE_MAX, LIFECYCLE_EV_ACCEPTED, &to), LIFECYCLE_ILLEGAL);
	CU_ASSERT_EQUAL(lifecycle_apply(LIFECYCLE_SENT, LIFECYCLE_EVENT_MAX, &to), LIFECYCLE_ILLEGAL);
	CU_ASSERT_EQUAL(to, LIFECYCLE_PENDING);
}

int main(void)
{
	static const struct harness_test tests[] = {
		{ "every state x event pair matches the contract", test_every_pair },
		{ "state and event names round-trip", test_names_round_trip },
		{ "out-of-range input is illegal", test_out_of_range },
		{ NULL, NULL },
	};
	return harness_main("lifecycle", NULL, NULL, tests);
}
