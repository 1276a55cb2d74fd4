/* score: a supplier's scorecard rates from its counts over a window, with
 * small samples smoothed toward a prior. Pure: no I/O, no clock.
 *
 * Each rate is the mean of a Beta(weight * mean, weight * (1 - mean))
 * prior updated with the counts: (successes + weight * mean) / (trials +
 * weight). A supplier without history sits at the prior's mean; one with
 * 2 orders moves a little (weight 10: 2 of 2 accepted from 90 % gives
 * 91.7 %, 0 of 2 gives 75 %); hundreds of orders speak for themselves.
 * Rates are in parts per million, as the routing engine takes them. */
#ifndef DROPSHIP_SCORE_H
#define DROPSHIP_SCORE_H

#define SCORE_PPM 1000000
#define SCORE_MAX_WEIGHT 1000000
/* The prior when nothing else is configured ([score] in docs/config.md). */
#define SCORE_DEFAULT_WEIGHT 10
#define SCORE_DEFAULT_ACCEPTANCE_PCT 90
#define SCORE_DEFAULT_ON_TIME_PCT 90

struct score_prior {
	int weight;                 /* requests the prior counts as, 0..SCORE_MAX_WEIGHT */
	int acceptance_ppm;         /* its mean acceptance rate, 0..SCORE_PPM */
	int on_time_ppm;            /* its mean on-time rate, 0..SCORE_PPM */
};

/* One supplier's requests created in the window. */
struct score_counts {
	long long answered;         /* accepted, rejected before accepting, or never delivered */
	long long accepted;
	long long judged;           /* accepted, and shipped, rejected after accepting or
	                             * past its ship deadline */
	long long on_time;          /* of those, shipped by the deadline */
};

struct score_rates {
	int acceptance_ppm;         /* accepted of answered, smoothed */
	int on_time_ppm;            /* on_time of judged, smoothed */
};

/* The prior of SCORE_DEFAULT_*. */
struct score_prior score_prior_default(void);

/* The prior from a weight and percentages; values out of range are
 * clamped to their ranges. */
struct score_prior score_prior_make(int weight, int acceptance_pct, int on_time_pct);

/* (successes + weight * prior_ppm / SCORE_PPM) / (trials + weight), in
 * ppm, rounded half up. Counts below 0 count as 0 and successes above
 * trials as trials; with no trials and no weight, the prior's mean. */
int score_smooth(long long successes, long long trials, int weight, int prior_ppm);

/* Both rates of counts under prior. */
struct score_rates score_rates_of(const struct score_counts *c, const struct score_prior *prior);

#endif
