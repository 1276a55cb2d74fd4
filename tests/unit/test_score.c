/* The scorecard's smoothing: tables of counts and priors, worked by hand. */
#include <stdio.h>

#include "score/score.h"
#include "support/harness.h"

static void test_smooth(void)
{
	static const struct {
		const char *name;
		long long k, n;
		int weight, prior, want;
	} cases[] = {
		{ "no history: the prior's mean", 0, 0, 10, 900000, 900000 },
		{ "2 of 2: better, not perfect (11/12)", 2, 2, 10, 900000, 916667 },
		{ "0 of 2: worse, not blacklisted (9/12)", 0, 2, 10, 900000, 750000 },
		{ "1 of 2 (10/12)", 1, 2, 10, 900000, 833333 },
		{ "50 of 100 (59/110)", 50, 100, 10, 900000, 536364 },
		{ "10000 of 10000 nears 1 (10009/10010)", 10000, 10000, 10, 900000, 999900 },
		{ "0 of 10000 nears 0 (9/10010)", 0, 10000, 10, 900000, 899 },
		{ "weight 0: the raw rate", 1, 4, 0, 900000, 250000 },
		{ "weight 0, no history: the prior's mean", 0, 0, 0, 700000, 700000 },
		{ "a prior of 0 %", 3, 3, 1, 0, 750000 },
		{ "a prior of 100 %", 0, 1, 1, 1000000, 500000 },
		{ "half up: 2/3 = 666666.7", 2, 3, 0, 0, 666667 },
		{ "half up: 1/8 = 125000 exactly", 1, 8, 0, 0, 125000 },
		{ "more successes than trials count as trials", 5, 2, 10, 900000, 916667 },
		{ "negative counts count as 0", -3, -1, 10, 900000, 900000 },
		{ "prior out of range is clamped", 0, 0, 10, 2000000, 1000000 },
		{ "weight out of range is clamped", 0, 1, -5, 900000, 0 },
		{ "huge counts stay in range", 4000000000000LL, 8000000000000LL, 10, 900000, 500000 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int got = score_smooth(cases[i].k, cases[i].n, cases[i].weight, cases[i].prior);
		HARNESS_CHECK(got == cases[i].want, "%s: got %d, want %d", cases[i].name, got, cases[i].want);
	}
}

static void test_rates(void)
{
	struct score_prior prior = score_prior_default();
	CU_ASSERT_EQUAL(prior.weight, 10);
	CU_ASSERT_EQUAL(prior.acceptance_ppm, 900000);
	CU_ASSERT_EQUAL(prior.on_time_ppm, 900000);
	/* 20 answered, 10 accepted; of those 8 judged, 6 on time. */
	struct score_counts c = { .answered = 20, .accepted = 10, .judged = 8, .on_time = 6 };
	struct score_rates r = score_rates_of(&c, &prior);
	CU_ASSERT_EQUAL(r.acceptance_ppm, 633333);   /* 19/30 */
	CU_ASSERT_EQUAL(r.on_time_ppm, 833333);      /* 15/18 */
	struct score_prior strict = score_prior_make(4, 50, 80);
	r = score_rates_of(&c, &strict);
	CU_ASSERT_EQUAL(r.acceptance_ppm, 500000);   /* 12/24 */
	CU_ASSERT_EQUAL(r.on_time_ppm, 766667);      /* 9.2/12 */
	struct score_counts none = { 0 };
	r = score_rates_of(&none, &strict);
	CU_ASSERT_EQUAL(r.acceptance_ppm, 500000);
	CU_ASSERT_EQUAL(r.on_time_ppm, 800000);
	struct score_prior clamped = score_prior_make(2000000, 150, -1);
	CU_ASSERT_EQUAL(clamped.weight, SCORE_MAX_WEIGHT);
	CU_ASSERT_EQUAL(clamped.acceptance_ppm, SCORE_PPM);
	CU_ASSERT_EQUAL(clamped.on_time_ppm, 0);
}

static const struct harness_test tests[] = {
	{ "smooth", test_smooth },
	{ "rates", test_rates },
	{ NULL, NULL },
};

int main(void)
{
	return harness_main("score", NULL, NULL, tests);
}
