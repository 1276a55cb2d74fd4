/* hist: a fixed-size log-bucket histogram of unsigned 64-bit values (the
 * load generator records latencies in microseconds). Values below 128 are
 * kept exactly; above, each power of two is split into 64 buckets, so a
 * percentile read back is at most 1/64 (1.6%) above the true value. The
 * whole range of uint64_t fits in HIST_BUCKETS counters (about 30 KiB):
 * recording never allocates and never fails.
 * Pure: no I/O, no clock, no locking (one histogram per thread; merge after). */
#ifndef DROPSHIP_HIST_H
#define DROPSHIP_HIST_H
#include <stdint.h>

#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)               /* buckets per power of two */
#define HIST_EXACT (2u * HIST_SUB)                   /* values kept exactly: 0..127 */
/* One group of HIST_SUB buckets per shift 1..57 (values up to 2^64 - 1). */
#define HIST_BUCKETS (HIST_EXACT + (64u - HIST_SUB_BITS - 1u) * HIST_SUB)

struct hist {
	uint64_t counts[HIST_BUCKETS];
	uint64_t total;     /* values recorded */
	uint64_t min, max;  /* exact; min is UINT64_MAX while empty */
	double sum;         /* for the mean; a double never overflows */
};

/* Empties h. */
void hist_init(struct hist *h);

/* Records one value. */
void hist_record(struct hist *h, uint64_t value);

/* Adds every value of src to dst. */
void hist_merge(struct hist *dst, const struct hist *src);

/* The value at percentile p (0..100; outside is clamped): the highest value
 * of the bucket holding the ceil(p% of total)-th smallest value, clamped to
 * [min, max]. p = 0 gives min, p = 100 max; 0 when empty. */
uint64_t hist_percentile(const struct hist *h, double p);

/* Mean of the values recorded; 0 when empty. */
double hist_mean(const struct hist *h);

#endif
