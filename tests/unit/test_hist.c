#include <stdint.h>
#include <stdlib.h>

#include "hist/hist.h"
#include "support/harness.h"

/* The precision hist.h promises: a percentile is at most 1/64 above. */
#define REL (1.0 / 64.0)

static struct hist *fresh(void)
{
	struct hist *h = malloc(sizeof *h);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	hist_init(h);
	return h;
}

/* v read back through a bucket: never below v, at most REL above. */
static int within(uint64_t got, uint64_t v)
{
	return got >= v && (double)(got - v) <= (double)v * REL;
}

static void test_empty(void)
{
	struct hist *h = fresh();
	CU_ASSERT_EQUAL(h->total, 0);
	CU_ASSERT_EQUAL(hist_percentile(h, 0), 0);
	CU_ASSERT_EQUAL(hist_percentile(h, 50), 0);
	CU_ASSERT_EQUAL(hist_percentile(h, 100), 0);
	CU_ASSERT_DOUBLE_EQUAL(hist_mean(h), 0.0, 1e-12);
	free(h);
}

/* Below 128 every value has a bucket of its own. */
static void test_small_values_exact(void)
{
	struct hist *h = fresh();
	for (uint64_t v = 0; v < 128; v++)
		hist_record(h, v);
	CU_ASSERT_EQUAL(h->total, 128);
	CU_ASSERT_EQUAL(hist_percentile(h, 0), 0);
	CU_ASSERT_EQUAL(hist_percentile(h, 50), 63);     /* the 64th of 128 */
	CU_ASSERT_EQUAL(hist_percentile(h, 50.1), 64);
	CU_ASSERT_EQUAL(hist_percentile(h, 100), 127);
	CU_ASSERT_DOUBLE_EQUAL(hist_mean(h), 63.5, 1e-9);
	free(h);
}

/* Every magnitude, bucket edges included: the median of {v, huge} is v's
 * bucket, read back within the promised precision. */
static void test_relative_precision(void)
{
	static const uint64_t edges[] = { 127, 128, 129, 255, 256, 257, 1000, 1023, 1024, 1025,
	                                  999999, 1000000, UINT64_C(1) << 40, (UINT64_C(1) << 40) - 1,
	                                  UINT64_MAX / 2, UINT64_MAX / 2 + 1 };
	int bad = 0;
	for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
		struct hist *h = fresh();
		hist_record(h, edges[i]);
		hist_record(h, UINT64_MAX);
		bad += !within(hist_percentile(h, 50), edges[i]);
		free(h);
	}
	/* A geometric sweep with an odd step lands everywhere inside buckets. */
	for (double x = 1.0; x < 1e18; x *= 1.0173) {
		struct hist *h = fresh();
		uint64_t v = (uint64_t)x;
		hist_record(h, v);
		hist_record(h, UINT64_MAX);
		bad += !within(hist_percentile(h, 50), v);
		free(h);
	}
	CU_ASSERT_EQUAL(bad, 0);
}

static void test_min_max_exact(void)
{
	struct hist *h = fresh();
	hist_record(h, 1001);
	hist_record(h, 5000003);
	hist_record(h, 77777);
	CU_ASSERT_EQUAL(h->min, 1001);
	CU_ASSERT_EQUAL(h->max, 5000003);
	CU_ASSERT_EQUAL(hist_percentile(h, 0), 1001);
	CU_ASSERT_EQUAL(hist_percentile(h, 100), 5000003);
	/* The top bucket's high end is clamped to the real maximum. */
	CU_ASSERT_EQUAL(hist_percentile(h, 99.9), 5000003);
	/* Out-of-range percentiles clamp. */
	CU_ASSERT_EQUAL(hist_percentile(h, -5), 1001);
	CU_ASSERT_EQUAL(hist_percentile(h, 250), 5000003);
	free(h);
}

static void test_extremes(void)
{
	struct hist *h = fresh();
	hist_record(h, 0);
	hist_record(h, UINT64_MAX);
	CU_ASSERT_EQUAL(hist_percentile(h, 50), 0);
	CU_ASSERT_EQUAL(hist_percentile(h, 51), UINT64_MAX);
	CU_ASSERT_EQUAL(h->max, UINT64_MAX);
	free(h);
}

/* 1..100000 once each: the percentiles land on the right values. */
static void test_uniform_percentiles(void)
{
	struct hist *h = fresh();
	for (uint64_t v = 1; v <= 100000; v++)
		hist_record(h, v);
	CU_ASSERT_TRUE(within(hist_percentile(h, 50), 50000));
	CU_ASSERT_TRUE(within(hist_percentile(h, 90), 90000));
	CU_ASSERT_TRUE(within(hist_percentile(h, 99), 99000));
	CU_ASSERT_TRUE(within(hist_percentile(h, 99.9), 99900));
	CU_ASSERT_EQUAL(hist_percentile(h, 100), 100000);
	CU_ASSERT_DOUBLE_EQUAL(hist_mean(h), 50000.5, 1e-6);
	free(h);
}

static void test_percentiles_monotone(void)
{
	struct hist *h = fresh();
	uint64_t x = 88172645463325252u;
	for (int i = 0; i < 50000; i++) { /* xorshift64: a long-tailed spread */
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		hist_record(h, (x % 1000) * (x % 1000) * (1 + (x >> 60)));
	}
	uint64_t last = 0;
	int bad = 0;
	for (double p = 0; p <= 100.0; p += 0.25) {
		uint64_t v = hist_percentile(h, p);
		bad += v < last;
		last = v;
	}
	CU_ASSERT_EQUAL(bad, 0);
	free(h);
}

/* Merging two halves equals recording everything into one. */
static void test_merge(void)
{
	struct hist *a = fresh(), *b = fresh(), *all = fresh(), *none = fresh();
	for (uint64_t v = 1; v < 200000; v += 7) {
		hist_record(v % 2 ? a : b, v * 3);
		hist_record(all, v * 3);
	}
	hist_merge(a, b);
	hist_merge(a, none); /* an empty one changes nothing, min included */
	CU_ASSERT_EQUAL(a->total, all->total);
	CU_ASSERT_EQUAL(a->min, all->min);
	CU_ASSERT_EQUAL(a->max, all->max);
	CU_ASSERT_DOUBLE_EQUAL(hist_mean(a), hist_mean(all), 1e-6);
	int bad = 0;
	for (double p = 0; p <= 100.0; p += 0.5)
		bad += hist_percentile(a, p) != hist_percentile(all, p);
	CU_ASSERT_EQUAL(bad, 0);
	free(a), free(b), free(all), free(none);
}

/* A handful of slow values among many fast ones: p99.9 sees them, p99 not. */
static void test_tail(void)
{
	struct hist *h = fresh();
	for (int i = 0; i < 9990; i++)
		hist_record(h, 1500);
	for (int i = 0; i < 10; i++)
		hist_record(h, 250000);
	CU_ASSERT_TRUE(within(hist_percentile(h, 50), 1500));
	CU_ASSERT_TRUE(within(hist_percentile(h, 99), 1500));
	CU_ASSERT_TRUE(within(hist_percentile(h, 99.9), 1500));   /* rank 9990: still fast */
	CU_ASSERT_EQUAL(hist_percentile(h, 99.95), 250000);
	CU_ASSERT_EQUAL(h->max, 250000);
	free(h);
}

static const struct harness_test tests[] = {
	{ "empty histogram", test_empty },
	{ "values below 128 are exact", test_small_values_exact },
	{ "relative precision at every magnitude", test_relative_precision },
	{ "min and max are exact, percentiles clamp", test_min_max_exact },
	{ "0 and UINT64_MAX", test_extremes },
	{ "uniform 1..100000", test_uniform_percentiles },
	{ "percentiles are monotone", test_percentiles_monotone },
	{ "merge equals recording into one", test_merge },
	{ "a small slow tail", test_tail },
	{ NULL, NULL },
};

int main(void)
{
	return harness_main("hist", NULL, NULL, tests);
}
