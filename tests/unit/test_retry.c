#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "retry/retry.h"
#include "support/harness.h"

/* 1994-11-06T08:49:37Z, the RFC 9110 example date (date -u -d @784111777). */
#define RFC_DATE 784111777LL
/* 2024-01-01T00:00:00Z. */
#define Y2024 1704067200LL

static void test_classify(void)
{
	static const struct {
		int status;
		enum retry_outcome want;
	} cases[] = {
		{ 200, RETRY_DELIVERED }, { 201, RETRY_DELIVERED }, { 202, RETRY_DELIVERED },
		{ 204, RETRY_DELIVERED }, { 299, RETRY_DELIVERED },
		{ 0, RETRY_AGAIN },       { 408, RETRY_AGAIN },     { 429, RETRY_AGAIN },
		{ 500, RETRY_AGAIN },     { 502, RETRY_AGAIN },     { 503, RETRY_AGAIN },
		{ 504, RETRY_AGAIN },     { 599, RETRY_AGAIN },
		{ 400, RETRY_FAILED },    { 401, RETRY_FAILED },    { 403, RETRY_FAILED },
		{ 404, RETRY_FAILED },    { 409, RETRY_FAILED },    { 410, RETRY_FAILED },
		{ 422, RETRY_FAILED },    { 499, RETRY_FAILED },
		/* Redirects are not followed; 1xx has no final answer. */
		{ 100, RETRY_FAILED },    { 199, RETRY_FAILED },    { 301, RETRY_FAILED },
		{ 302, RETRY_FAILED },    { 307, RETRY_FAILED },    { 308, RETRY_FAILED },
		/* Not HTTP statuses at all. */
		{ -1, RETRY_FAILED },     { 99, RETRY_FAILED },     { 600, RETRY_FAILED },
		{ INT_MAX, RETRY_FAILED },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		CU_ASSERT_EQUAL(retry_classify(cases[i].status), cases[i].want);
}

/* random = cap gives the ceiling and cap + 1 wraps to 0, which pins both
 * the doubling schedule and the formula random % (cap + 1). */
static void test_backoff_schedule(void)
{
	static const struct {
		int attempt;
		long long cap; /* base 1000, max 600000: the documented defaults */
	} cases[] = {
		{ 1, 1000 },     { 2, 2000 },     { 3, 4000 },     { 4, 8000 },
		{ 5, 16000 },    { 6, 32000 },    { 7, 64000 },    { 8, 128000 },
		{ 9, 256000 },   { 10, 512000 },  { 11, 600000 },  { 12, 600000 },
		{ 0, 1000 },     { -5, 1000 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		long long cap = cases[i].cap;
		CU_ASSERT_EQUAL(retry_backoff_ms(cases[i].attempt, 1000, 600000, 0), 0);
		CU_ASSERT_EQUAL(retry_backoff_ms(cases[i].attempt, 1000, 600000, (uint64_t)cap), cap);
		CU_ASSERT_EQUAL(retry_backoff_ms(cases[i].attempt, 1000, 600000, (uint64_t)cap + 1), 0);
		CU_ASSERT_EQUAL(retry_backoff_ms(cases[i].attempt, 1000, 600000, 12345),
		                12345 % (cap + 1));
	}
}

static void test_backoff_full_jitter_range(void)
{
	/* Every value of [0, cap] is reachable and nothing outside it is. */
	int seen[4001] = { 0 };
	for (uint64_t r = 0; r < 2 * 4001; r++) {
		long long d = retry_backoff_ms(3, 1000, 600000, UINT64_MAX - r);
		CU_ASSERT(d >= 0 && d <= 4000);
		if (d >= 0 && d <= 4000)
			seen[d] = 1;
	}
	CU_ASSERT_EQUAL(retry_backoff_ms(3, 1000, 600000, UINT64_MAX), (long long)(UINT64_MAX % 4001));
	size_t reached = 0;
	for (size_t i = 0; i <= 4000; i++)
		reached += (size_t)seen[i];
	CU_ASSERT_EQUAL(reached, 4001);
}

static void test_backoff_overflow_safe(void)
{
	static const int attempts[] = { 62, 63, 64, 65, 100, 1000, INT_MAX };
	for (size_t i = 0; i < sizeof attempts / sizeof attempts[0]; i++) {
		CU_ASSERT_EQUAL(retry_backoff_ms(attempts[i], 1000, 600000, 600000), 600000);
		CU_ASSERT_EQUAL(retry_backoff_ms(attempts[i], 1000, 600000, 600001), 0);
		/* From attempt 64 on, 2^(attempt-1) exceeds any long long. */
		if (attempts[i] >= 64) {
			CU_ASSERT_EQUAL(retry_backoff_ms(attempts[i], 1, LLONG_MAX, (uint64_t)LLONG_MAX),
			                LLONG_MAX);
		}
		CU_ASSERT_EQUAL(retry_backoff_ms(attempts[i], LLONG_MAX, LLONG_MAX, UINT64_MAX),
		                (long long)(UINT64_MAX % ((uint64_t)LLONG_MAX + 1)));
	}
	/* 1 << 62 still fits: the cap follows the doubling exactly. */
	CU_ASSERT_EQUAL(retry_backoff_ms(63, 1, LLONG_MAX, (uint64_t)1 << 62), 1LL << 62);
	CU_ASSERT_EQUAL(retry_backoff_ms(63, 1, LLONG_MAX, ((uint64_t)1 << 62) + 1), 0);
}

static void test_backoff_odd_parameters(void)
{
	/* base above max: max wins from the first attempt. */
	CU_ASSERT_EQUAL(retry_backoff_ms(1, 5000, 3000, 3000), 3000);
	CU_ASSERT_EQUAL(retry_backoff_ms(1, 5000, 3000, 3001), 0);
	/* Zero or negative base/max: no wait at all. */
	CU_ASSERT_EQUAL(retry_backoff_ms(5, 0, 600000, UINT64_MAX), 0);
	CU_ASSERT_EQUAL(retry_backoff_ms(INT_MAX, 0, 600000, UINT64_MAX), 0);
	CU_ASSERT_EQUAL(retry_backoff_ms(5, -1000, 600000, UINT64_MAX), 0);
	CU_ASSERT_EQUAL(retry_backoff_ms(5, 1000, 0, UINT64_MAX), 0);
	CU_ASSERT_EQUAL(retry_backoff_ms(5, 1000, -1, UINT64_MAX), 0);
}

/* One assertion per table row, reported under the row's own text. */
static void check_case(int ok, const char *what, unsigned line)
{
	CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, line, what, __FILE__, "", CU_FALSE);
}

struct ra_case {
	const char *value;
	int64_t now;
	int rc;
	long long ms;
};

static void check_ra(const struct ra_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		long long ms = -7;
		int rc = retry_parse_retry_after(cases[i].value, cases[i].now, &ms);
		/* -7 = untouched: a failed parse leaves the output alone. */
		long long want = cases[i].rc == 0 ? cases[i].ms : -7;
		check_case(rc == cases[i].rc && ms == want,
		           cases[i].value ? cases[i].value : "(null)", __LINE__);
	}
}

static void test_retry_after_delta_seconds(void)
{
	static const struct ra_case cases[] = {
		{ "0", 0, 0, 0 },
		{ "1", 0, 0, 1000 },
		{ "120", 0, 0, 120000 },
		{ "007", 0, 0, 7000 },
		{ " 5", 0, 0, 5000 },
		{ "5 ", 0, 0, 5000 },
		{ "\t 30 \t", 0, 0, 30000 },
		{ "86400", 0, 0, 86400000 },
		{ "86401", 0, 0, 86400000 },
		{ "99999999999999999999999999999", 0, 0, 86400000 },
		{ "", 0, -1, 0 },
		{ "   ", 0, -1, 0 },
		{ "-1", 0, -1, 0 },
		{ "+5", 0, -1, 0 },
		{ "1.5", 0, -1, 0 },
		{ "5s", 0, -1, 0 },
		{ "5 5", 0, -1, 0 },
		{ "0x10", 0, -1, 0 },
		{ "1e3", 0, -1, 0 },
		{ "soon", 0, -1, 0 },
		{ "5\n", 0, -1, 0 },
		{ NULL, 0, -1, 0 },
	};
	check_ra(cases, sizeof cases / sizeof cases[0]);
}

static void test_retry_after_http_dates(void)
{
	static const struct ra_case cases[] = {
		/* The three RFC 9110 5.6.7 examples, all the same instant. */
		{ "Sun, 06 Nov 1994 08:49:37 GMT", RFC_DATE - 10, 0, 10000 },
		{ "Sunday, 06-Nov-94 08:49:37 GMT", RFC_DATE - 10, 0, 10000 },
		{ "Sun Nov  6 08:49:37 1994", RFC_DATE - 10, 0, 10000 },
		{ "Sun Nov 06 08:49:37 1994", RFC_DATE - 10, 0, 10000 },
		/* Exactly now, and in the past: no wait. */
		{ "Sun, 06 Nov 1994 08:49:37 GMT", RFC_DATE, 0, 0 },
		{ "Sun, 06 Nov 1994 08:49:37 GMT", RFC_DATE + 3600, 0, 0 },
		{ "Sun, 06 Nov 1994 08:49:37 GMT", Y2024, 0, 0 },
		/* A day and more ahead is cut to a day. */
		{ "Sun, 06 Nov 1994 08:49:37 GMT", RFC_DATE - 86400, 0, 86400000 },
		{ "Sun, 06 Nov 1994 08:49:37 GMT", RFC_DATE - 86401, 0, 86400000 },
		{ "Sun, 06 Nov 1994 08:49:37 GMT", 0, 0, 86400000 },
		{ "Fri, 31 Dec 9999 23:59:59 GMT", Y2024, 0, 86400000 },
		{ "Sun, 06 Nov 1994 08:49:37 GMT", INT64_MIN, 0, 86400000 },
		{ "Sun, 06 Nov 1994 08:49:37 GMT", INT64_MAX, 0, 0 },
		/* Month, year and leap-day arithmetic. */
		{ "Mon, 01 Jan 2024 00:00:30 GMT", Y2024, 0, 30000 },
		{ "Sun, 31 Dec 2023 23:59:59 GMT", Y2024 - 61, 0, 60000 },
		{ "Thu, 29 Feb 2024 00:00:00 GMT", Y2024 + 59 * 86400 - 1, 0, 1000 },
		{ "Wed, 01 Mar 2000 00:00:00 GMT", 951868800 - 5, 0, 5000 },
		{ "Tue, 29 Feb 2000 12:00:00 GMT", 951782400 + 43200 - 5, 0, 5000 },
		{ "Thu, 01 Jan 1970 00:00:10 GMT", 0, 0, 10000 },
		{ "Sat, 01 Jan 2000 00:00:00 GMT", 946684800 - 1, 0, 1000 },
		/* A leap second counts as the next second. */
		{ "Sat, 31 Dec 2016 23:59:60 GMT", 1483228800 - 1, 0, 1000 },
		/* Names in any case, spaces around, weekday not cross-checked. */
		{ "sun, 06 nov 1994 08:49:37 gmt", RFC_DATE - 1, 0, 1000 },
		{ "SUNDAY, 06-NOV-94 08:49:37 GMT", RFC_DATE - 1, 0, 1000 },
		{ "  Sun, 06 Nov 1994 08:49:37 GMT\t", RFC_DATE - 1, 0, 1000 },
		{ "Mon, 06 Nov 1994 08:49:37 GMT", RFC_DATE - 1, 0, 1000 },
		/* Malformed. */
		{ "Sun, 06 Nov 1994 08:49:37 UTC", RFC_DATE - 1, -1, 0 },
		{ "Sun, 06 Nov 1994 08:49:37", RFC_DATE - 1, -1, 0 },
		{ "Sun, 6 Nov 1994 08:49:37 GMT", RFC_DATE - 1, -1, 0 },
		{ "Sun,  06 Nov 1994 08:49:37 GMT", RFC_DATE - 1, -1, 0 },
		{ "Sun 06 Nov 1994 08:49:37 GMT", RFC_DATE - 1, -1, 0 },
		{ "Sun, 06 Nov 94 08:49:37 GMT", RFC_DATE - 1, -1, 0 },
		{ "Sun, 06 Nov 1994 8:49:37 GMT", RFC_DATE - 1, -1, 0 },
		{ "Sun, 06 Nov 1994 08:49:37 GMT x", RFC_DATE - 1, -1, 0 },
		{ "Sun, 06 Nov 1994 08:49:37 +0000", RFC_DATE - 1, -1, 0 },
		{ "Sun, 06 November 1994 08:49:37 GMT", RFC_DATE - 1, -1, 0 },
		{ "Xyz, 06 Nov 1994 08:49:37 GMT", RFC_DATE - 1, -1, 0 },
		{ "Sun, 06 Foo 1994 08:49:37 GMT", RFC_DATE - 1, -1, 0 },
		{ "Sun, 00 Nov 1994 08:49:37 GMT", RFC_DATE - 1, -1, 0 },
		{ "Sun, 31 Nov 1994 08:49:37 GMT", RFC_DATE - 1, -1, 0 },
		{ "Thu, 29 Feb 2023 00:00:00 GMT", Y2024, -1, 0 },
		{ "Thu, 29 Feb 1900 00:00:00 GMT", Y2024, -1, 0 },
		{ "Sun, 06 Nov 1994 24:00:00 GMT", RFC_DATE - 1, -1, 0 },
		{ "Sun, 06 Nov 1994 08:60:00 GMT", RFC_DATE - 1, -1, 0 },
		{ "Sun, 06 Nov 1994 08:49:61 GMT", RFC_DATE - 1, -1, 0 },
		{ "Sun, 06-Nov-94 08:49:37 GMT", RFC_DATE - 1, -1, 0 },
		{ "Sunday, 06 Nov 1994 08:49:37 GMT", RFC_DATE - 1, -1, 0 },
		{ "Sunday, 06-Nov-1994 08:49:37 GMT", RFC_DATE - 1, -1, 0 },
		{ "Sun Nov 6 08:49:37 1994", RFC_DATE - 1, -1, 0 },
		{ "Sun Nov  6 08:49:37 1994 GMT", RFC_DATE - 1, -1, 0 },
		{ "1994-11-06T08:49:37Z", RFC_DATE - 1, -1, 0 },
		{ "Sun, 06 Nov 1994 08:49:37 GMT\r\n", RFC_DATE - 1, -1, 0 },
	};
	check_ra(cases, sizeof cases / sizeof cases[0]);
}

/* RFC 850 years have two digits: the year nearest now is meant, never one
 * more than 50 years ahead. */
static void test_retry_after_rfc850_century(void)
{
	static const struct ra_case cases[] = {
		/* In 2024, "24" is 2024 and "94" is 1994 (past). */
		{ "Monday, 01-Jan-24 00:00:30 GMT", Y2024, 0, 30000 },
		{ "Sunday, 06-Nov-94 08:49:37 GMT", Y2024, 0, 0 },
		/* "74" would be 2074, exactly 50 years ahead: allowed, so cut to a day. */
		{ "Monday, 01-Jan-74 00:00:00 GMT", Y2024, 0, 86400000 },
		/* "75" would be 51 years ahead: it is 1975, in the past. */
		{ "Wednesday, 01-Jan-75 00:00:00 GMT", Y2024, 0, 0 },
		/* In 1994, "94" is 1994 and "00" is 2000 (ahead, cut). */
		{ "Sunday, 06-Nov-94 08:49:37 GMT", RFC_DATE - 2, 0, 2000 },
		{ "Saturday, 01-Jan-00 00:00:00 GMT", RFC_DATE, 0, 86400000 },
		/* Before 1970 now is still handled. */
		{ "Wednesday, 31-Dec-69 23:59:59 GMT", -2, 0, 1000 },
	};
	check_ra(cases, sizeof cases / sizeof cases[0]);
}

static void test_next_delay(void)
{
	/* Not retried: -1, whatever Retry-After says. */
	CU_ASSERT_EQUAL(retry_next_delay_ms(1, 200, "5", 0, 1000, 600000, 0), -1);
	CU_ASSERT_EQUAL(retry_next_delay_ms(1, 400, "5", 0, 1000, 600000, 0), -1);
	CU_ASSERT_EQUAL(retry_next_delay_ms(1, 301, NULL, 0, 1000, 600000, 0), -1);
	/* No or unparsable Retry-After: plain backoff. */
	CU_ASSERT_EQUAL(retry_next_delay_ms(3, 0, NULL, 0, 1000, 600000, 4000), 4000);
	CU_ASSERT_EQUAL(retry_next_delay_ms(3, 503, "later", 0, 1000, 600000, 4000), 4000);
	CU_ASSERT_EQUAL(retry_next_delay_ms(3, 503, "", 0, 1000, 600000, 17), 17);
	/* Retry-After is the minimum wait: the longer of the two wins. */
	CU_ASSERT_EQUAL(retry_next_delay_ms(1, 429, "30", 0, 1000, 600000, 999), 30000);
	CU_ASSERT_EQUAL(retry_next_delay_ms(10, 429, "30", 0, 1000, 600000, 400000), 400000);
	CU_ASSERT_EQUAL(retry_next_delay_ms(1, 503, "0", 0, 1000, 600000, 1000), 1000);
	CU_ASSERT_EQUAL(retry_next_delay_ms(1, 503, "Sun, 06 Nov 1994 08:49:37 GMT", RFC_DATE - 60,
	                                    1000, 600000, 0),
	                60000);
	CU_ASSERT_EQUAL(retry_next_delay_ms(1, 503, "Sun, 06 Nov 1994 08:49:37 GMT", RFC_DATE + 60,
	                                    1000, 600000, 500),
	                500);
	/* Honoured beyond max_ms (it bounds only our own schedule), up to a day. */
	CU_ASSERT_EQUAL(retry_next_delay_ms(1, 429, "3600", 0, 1000, 600000, 0), 3600000);
	CU_ASSERT_EQUAL(retry_next_delay_ms(1, 429, "999999", 0, 1000, 600000, 0), 86400000);
}

static void test_should_give_up(void)
{
	CU_ASSERT_FALSE(retry_should_give_up(0, 12));
	CU_ASSERT_FALSE(retry_should_give_up(1, 12));
	CU_ASSERT_FALSE(retry_should_give_up(11, 12));
	CU_ASSERT_TRUE(retry_should_give_up(12, 12));
	CU_ASSERT_TRUE(retry_should_give_up(13, 12));
	CU_ASSERT_FALSE(retry_should_give_up(0, 1));
	CU_ASSERT_TRUE(retry_should_give_up(1, 1));
	/* A nonsense maximum still lets the first attempt happen, and no more. */
	CU_ASSERT_FALSE(retry_should_give_up(0, 0));
	CU_ASSERT_TRUE(retry_should_give_up(1, 0));
	CU_ASSERT_TRUE(retry_should_give_up(1, -3));
	CU_ASSERT_TRUE(retry_should_give_up(INT_MAX, INT_MAX));
}

/* A whole delivery as the dispatcher runs it: 503 twice, then a 404. */
static void test_attempt_sequence(void)
{
	static const int statuses[] = { 503, 0, 404 };
	int attempts = 0;
	for (size_t i = 0; i < 3; i++) {
		attempts++;
		enum retry_outcome o = retry_classify(statuses[i]);
		if (i < 2) {
			CU_ASSERT_EQUAL(o, RETRY_AGAIN);
			CU_ASSERT_FALSE(retry_should_give_up(attempts, 12));
		} else {
			CU_ASSERT_EQUAL(o, RETRY_FAILED);
		}
	}
	/* Only retryable outcomes until max_attempts: failed after the 12th. */
	attempts = 0;
	while (!retry_should_give_up(attempts, 12)) {
		attempts++;
		CU_ASSERT_EQUAL(retry_classify(500), RETRY_AGAIN);
	}
	CU_ASSERT_EQUAL(attempts, 12);
}

static void test_lease_expired(void)
{
	CU_ASSERT_FALSE(retry_lease_expired(1000, 0));
	CU_ASSERT_FALSE(retry_lease_expired(1000, 999));
	CU_ASSERT_TRUE(retry_lease_expired(1000, 1000));
	CU_ASSERT_TRUE(retry_lease_expired(1000, 1001));
	CU_ASSERT_TRUE(retry_lease_expired(0, INT64_MAX));
	CU_ASSERT_FALSE(retry_lease_expired(INT64_MAX, INT64_MAX - 1));
	CU_ASSERT_TRUE(retry_lease_expired(INT64_MIN, INT64_MIN));
	CU_ASSERT_FALSE(retry_lease_expired(-5, -6));
}

static void test_lease_token(void)
{
	static const unsigned char zero[16] = { 0 };
	static const unsigned char mixed[16] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff,
	                                         0x10, 0x20, 0x0a, 0xa0, 0x5c, 0xc5, 0x99, 0x42 };
	char out[RETRY_LEASE_TOKEN_LEN];
	memset(out, 'X', sizeof out);
	retry_lease_token(zero, out);
	CU_ASSERT_STRING_EQUAL(out, "00000000000000000000000000000000");
	memset(out, 'X', sizeof out);
	retry_lease_token(mixed, out);
	CU_ASSERT_STRING_EQUAL(out, "00017f80abcdefff10200aa05cc59942");
	CU_ASSERT_EQUAL(strlen(out), 32);
}

/* Lease fencing as the header describes it, with the row simulated. */
static void test_lease_fencing(void)
{
	static const unsigned char r1[16] = { 1 }, r2[16] = { 2 };
	char row_token[RETRY_LEASE_TOKEN_LEN], a[RETRY_LEASE_TOKEN_LEN], b[RETRY_LEASE_TOKEN_LEN];
	int64_t row_expires = 0;
	/* Worker A claims at t=0 for 30 s. */
	retry_lease_token(r1, a);
	memcpy(row_token, a, sizeof row_token);
	row_expires = 30000;
	/* Worker B may not take it while A's lease runs, and may at expiry. */
	CU_ASSERT_FALSE(retry_lease_expired(row_expires, 29999));
	CU_ASSERT_TRUE(retry_lease_expired(row_expires, 30000));
	retry_lease_token(r2, b);
	memcpy(row_token, b, sizeof row_token);
	/* A's late UPDATE ... WHERE lease_token = A matches nothing; B's does. */
	CU_ASSERT_NOT_EQUAL(strcmp(row_token, a), 0);
	CU_ASSERT_EQUAL(strcmp(row_token, b), 0);
}

static const struct harness_test tests[] = {
	{ "classify statuses", test_classify },
	{ "backoff schedule doubles to the cap", test_backoff_schedule },
	{ "backoff full jitter covers [0, cap]", test_backoff_full_jitter_range },
	{ "backoff is overflow-safe for large attempts", test_backoff_overflow_safe },
	{ "backoff with odd parameters", test_backoff_odd_parameters },
	{ "Retry-After delta-seconds", test_retry_after_delta_seconds },
	{ "Retry-After HTTP-dates", test_retry_after_http_dates },
	{ "Retry-After RFC 850 century", test_retry_after_rfc850_century },
	{ "next delay: Retry-After is the minimum", test_next_delay },
	{ "give up at max_attempts", test_should_give_up },
	{ "attempt sequence", test_attempt_sequence },
	{ "lease expiry boundary", test_lease_expired },
	{ "lease token hex", test_lease_token },
	{ "lease fencing", test_lease_fencing },
	{ NULL, NULL },
};

int main(void)
{
	return harness_main("retry", NULL, NULL, tests);
}
