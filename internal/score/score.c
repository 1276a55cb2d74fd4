#include "score/score.h"

static int score_clamp(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

struct score_prior score_prior_default(void)
{
	return score_prior_make(SCORE_DEFAULT_WEIGHT, SCORE_DEFAULT_ACCEPTANCE_PCT, SCORE_DEFAULT_ON_TIME_PCT);
}

struct score_prior score_prior_make(int weight, int acceptance_pct, int on_time_pct)
{
	return (struct score_prior){
		.weight = score_clamp(weight, 0, SCORE_MAX_WEIGHT),
		.acceptance_ppm = score_clamp(acceptance_pct, 0, 100) * (SCORE_PPM / 100),
		.on_time_ppm = score_clamp(on_time_pct, 0, 100) * (SCORE_PPM / 100),
	};
}

int score_smooth(long long successes, long long trials, int weight, int prior_ppm)
{
	weight = score_clamp(weight, 0, SCORE_MAX_WEIGHT);
	prior_ppm = score_clamp(prior_ppm, 0, SCORE_PPM);
	if (trials < 0)
		trials = 0;
	successes = successes < 0 ? 0 : successes > trials ? trials : successes;
	/* Counts beyond any window's reach would only lose the prior: cap them
	 * so the products below stay far inside 64 bits. */
	if (trials > 1000000000000LL) {
		successes = successes / (trials / 1000000000000LL);
		trials = 1000000000000LL;
	}
	if (trials == 0 && weight == 0)
		return prior_ppm;
	/* In ppm: (successes * PPM + weight * prior) / (trials + weight). */
	long long num = successes * SCORE_PPM + (long long)weight * prior_ppm;
	long long den = trials + weight;
	return (int)((num + den / 2) / den);
}

struct score_rates score_rates_of(const struct score_counts *c, const struct score_prior *prior)
{
	return (struct score_rates){
		.acceptance_ppm = score_smooth(c->accepted, c->answered, prior->weight, prior->acceptance_ppm),
		.on_time_ppm = score_smooth(c->on_time, c->judged, prior->weight, prior->on_time_ppm),
	};
}
