/* Fault injection decisions: which attempts get the --status override, fail
 * (--fail-rate), hang (--hang-rate), and which new requests are rejected
 * (--reject-rate); and how stock levels drift between feeds. Pure: the random state and the clock come from the
 * caller, so one seed and one arrival order always give the same run.
 * Carrying them out is server.c's job (and answer.c's, which also holds
 * every answer back for --slow-ms). */
#include "sim.h"

/* xorshift64*: tiny, and the same seed gives the same run. */
static uint64_t rng_next(uint64_t *rng)
{
	uint64_t x = *rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* True with probability p. 0 and 1 draw nothing, so they never shift the sequence. */
static int roll(uint64_t *rng, double p)
{
	if (p <= 0)
		return 0;
	if (p >= 1)
		return 1;
	return (double)(rng_next(rng) >> 11) / 9007199254740992.0 < p;
}

uint64_t sim_fault_seed_default(const struct timespec *now, pid_t pid)
{
	return (uint64_t)now->tv_sec * 1000000007ULL ^ (uint64_t)now->tv_nsec ^ (uint64_t)pid << 32;
}

uint64_t sim_fault_rng_init(uint64_t seed)
{
	return seed ? seed : 0x9E3779B97F4A7C15ULL; /* xorshift must not start at 0 */
}

enum sim_fault sim_fault_pick(const struct sim_opts *o, uint64_t *rng)
{
	/* --status draws nothing: it overrides the rates. Fail draws before
	 * hang, always in that order, or a seed would replay differently. */
	if (o->status)
		return SIM_FAULT_STATUS;
	if (roll(rng, o->fail_rate))
		return SIM_FAULT_FAIL;
	if (roll(rng, o->hang_rate))
		return SIM_FAULT_HANG;
	return SIM_FAULT_NONE;
}

int sim_fault_reject(const struct sim_opts *o, uint64_t *rng)
{
	return roll(rng, o->reject_rate);
}

void sim_fault_drift(struct sim_level *levels, size_t n, uint64_t *rng)
{
	for (size_t i = 0; i < n; i++) {
		struct sim_level *l = &levels[i];
		uint64_t r = rng_next(rng) % 10;
		if (r == 0) {
			if (l->level < l->start)
				l->level = l->start;
		} else if (r <= 3 && l->level > 0) {
			long most = l->start / 10 > 1 ? l->start / 10 : 1;
			long sold = 1 + (long)(rng_next(rng) % (uint64_t)most);
			l->level = l->level > sold ? l->level - sold : 0;
		}
	}
}
