/* retry: when the outbound dispatcher tries a delivery again (docs/dispatch.md).
 * Pure: no I/O, no clock, no global PRNG; callers pass `now` and random bits.
 *
 * Lease fencing, as the dispatcher uses the lease helpers below:
 *  - A worker claims due rows with SELECT ... FOR UPDATE SKIP LOCKED and, in
 *    the same transaction, sets lease_token (retry_lease_token of fresh random
 *    bytes) and lease_expires_at = now + the request timeout plus a margin.
 *  - Every later UPDATE of that row (delivered, failed, next attempt time)
 *    carries WHERE lease_token = $token. A row whose lease has expired
 *    (retry_lease_expired) may be reclaimed by any worker with a new token;
 *    the stale holder's UPDATE then matches no row, so it is dropped instead
 *    of overwriting the newer attempt. Delivery stays at-least-once: the
 *    supplier dedupes on Idempotency-Key. */
#ifndef DROPSHIP_RETRY_H
#define DROPSHIP_RETRY_H
#include <stdint.h>

enum retry_outcome {
	RETRY_DELIVERED, /* 2xx */
	RETRY_AGAIN,     /* network error/timeout, 408, 429, 5xx */
	RETRY_FAILED,    /* any other status: failed at once, response kept */
};

/* Longest wait a Retry-After may ask for; a larger value is cut to this. */
#define RETRY_AFTER_MAX_S 86400
/* Hex lease token: 16 random bytes as 32 lower-case hex digits + NUL. */
#define RETRY_LEASE_TOKEN_LEN 33

/* Classifies one attempt by its HTTP status; 0 = network error or timeout.
 * 1xx and 3xx fail (redirects are not followed), as do statuses outside
 * 100..599. */
enum retry_outcome retry_classify(int http_status);

/* Full-jitter backoff before the next attempt; attempt 1 = after the first
 * failed attempt (values below 1 count as 1). Exactly:
 *   cap   = min(max_ms, base_ms * 2^(attempt-1))   (no overflow, any attempt)
 *   delay = random % (cap + 1)                     (uniform in [0, cap])
 * Negative base_ms or max_ms count as 0. The modulo bias is below
 * cap / 2^64, nothing next to the jitter itself. */
long long retry_backoff_ms(int attempt, long long base_ms, long long max_ms, uint64_t random);

/* Parses a Retry-After field value (RFC 9110 10.2.3): delta-seconds, or an
 * HTTP-date in IMF-fixdate, RFC 850 or asctime form (5.6.7), in GMT, with
 * names matched case-insensitively and surrounding spaces/tabs ignored.
 * Writes the wait in ms from now_unix: a date in the past gives 0; any wait
 * is cut to RETRY_AFTER_MAX_S. Returns 0, or -1 if unparsable (ignore it). */
int retry_parse_retry_after(const char *value, int64_t now_unix, long long *delay_ms);

/* Delay in ms before the next attempt after attempt number `attempt` ended
 * with http_status, or -1 if that status is not retried (delivered/failed).
 * A parsable retry_after (may be NULL) is honoured as the minimum wait:
 * delay = max(retry_after, backoff). It is not cut to max_ms, since max_ms
 * bounds our own schedule and retrying before the supplier asked would only
 * spend an attempt; RETRY_AFTER_MAX_S bounds it instead. */
long long retry_next_delay_ms(int attempt, int http_status, const char *retry_after,
                              int64_t now_unix, long long base_ms, long long max_ms,
                              uint64_t random);

/* 1 once attempts_made has reached max_attempts (the request becomes
 * failed, keeping the last status/error), else 0. max_attempts below 1
 * counts as 1: a request is always tried once. */
int retry_should_give_up(int attempts_made, int max_attempts);

/* 1 if a lease expiring at lease_expires_ms has expired at now_ms (at the
 * expiry instant itself it has), else 0. */
int retry_lease_expired(int64_t lease_expires_ms, int64_t now_ms);

/* Writes random16 as 32 lower-case hex digits and a NUL into out. */
void retry_lease_token(const unsigned char random16[16], char out[RETRY_LEASE_TOKEN_LEN]);

#endif
