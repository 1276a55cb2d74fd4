#include "metrics/metrics.h"

void metrics_inc(struct metrics *m, enum metrics_counter c)
{
	atomic_fetch_add_explicit(&m->counter[c], 1, memory_order_relaxed);
}

void metrics_count_status(struct metrics *m, int status)
{
	metrics_inc(m, status >= 500 ? METRICS_REQUESTS_5XX : status >= 400 ? METRICS_REQUESTS_4XX
	                                                                    : METRICS_REQUESTS_2XX);
}

unsigned long metrics_sum(const struct metrics *const *ms, int n, enum metrics_counter c)
{
	unsigned long sum = 0;
	for (int i = 0; i < n; i++)
		sum += atomic_load_explicit(&ms[i]->counter[c], memory_order_relaxed);
	return sum;
}
