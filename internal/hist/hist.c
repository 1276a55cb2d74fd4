#include <string.h>

#include "hist/hist.h"

/* Bucket of v: exact below HIST_EXACT; above, the top HIST_SUB_BITS + 1
 * bits of v pick one of HIST_SUB buckets in v's power of two. */
static unsigned hist_index(uint64_t v)
{
	if (v < HIST_EXACT)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - HIST_SUB_BITS;               /* >= 1 */
	unsigned top = (unsigned)(v >> shift);              /* HIST_SUB .. 2 * HIST_SUB - 1 */
	return HIST_EXACT + (shift - 1u) * HIST_SUB + (top - HIST_SUB);
}

/* Highest value that falls in bucket i. */
static uint64_t hist_bucket_high(unsigned i)
{
	if (i < HIST_EXACT)
		return i;
	unsigned k = i - HIST_EXACT;
	unsigned shift = k / HIST_SUB + 1u;
	uint64_t top = HIST_SUB + k % HIST_SUB;
	/* top << shift stays below 2^64; adding width - 1 reaches at most UINT64_MAX. */
	return (top << shift) + ((UINT64_C(1) << shift) - 1u);
}

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof *h);
	h->min = UINT64_MAX;
}

void hist_record(struct hist *h, uint64_t value)
{
	h->counts[hist_index(value)]++;
	h->total++;
	h->sum += (double)value;
	if (value < h->min)
		h->min = value;
	if (value > h->max)
		h->max = value;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		dst->counts[i] += src->counts[i];
	dst->total += src->total;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t hist_percentile(const struct hist *h, double p)
{
	if (h->total == 0)
		return 0;
	if (!(p > 0.0))  /* also NaN */
		return h->min;
	if (p >= 100.0)
		return h->max;
	/* The slack keeps 99.9% of 10000 at rank 9990: p / 100 is inexact. */
	double want = p / 100.0 * (double)h->total - 1e-7;
	uint64_t rank = want > 0 ? (uint64_t)want : 0;
	if ((double)rank < want)
		rank++;
	if (rank == 0)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			uint64_t v = hist_bucket_high(i);
			return v < h->min ? h->min : v > h->max ? h->max : v;
		}
	}
	return h->max;
}

double hist_mean(const struct hist *h)
{
	return h->total ? h->sum / (double)h->total : 0.0;
}
