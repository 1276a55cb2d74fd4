#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "retry/retry.h"

#define RETRY_AFTER_MAX_MS ((long long)RETRY_AFTER_MAX_S * 1000)

/* A cursor over the trimmed field value; parsers only ever move forward. */
struct retry_cur {
	const char *p;
	const char *end;
};

static const char *const retry_wkday[7] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };
static const char *const retry_weekday[7] = { "Monday", "Tuesday", "Wednesday", "Thursday",
                                              "Friday", "Saturday", "Sunday" };
static const char *const retry_month[12] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

enum retry_outcome retry_classify(int http_status)
{
	if (http_status >= 200 && http_status <= 299)
		return RETRY_DELIVERED;
	if (http_status == 0 || http_status == 408 || http_status == 429 ||
	    (http_status >= 500 && http_status <= 599))
		return RETRY_AGAIN;
	return RETRY_FAILED;
}

long long retry_backoff_ms(int attempt, long long base_ms, long long max_ms, uint64_t random)
{
	if (base_ms < 0)
		base_ms = 0;
	if (max_ms < 0)
		max_ms = 0;
	int shift = attempt < 1 ? 0 : attempt - 1;
	long long cap;
	/* base * 2^shift > max exactly when base > max >> shift, so the
	 * product is only formed when it cannot overflow. */
	if (base_ms == 0)
		cap = 0;
	else if (shift >= 63 || base_ms > (max_ms >> shift))
		cap = max_ms;
	else
		cap = base_ms << shift;
	return (long long)(random % ((uint64_t)cap + 1));
}

static int retry_is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static char retry_lower(char ch)
{
	return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

/* Consumes lit (case-insensitively) if it is next. */
static int retry_lit(struct retry_cur *c, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(c->end - c->p) < n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (retry_lower(c->p[i]) != retry_lower(lit[i]))
			return 0;
	c->p += n;
	return 1;
}

/* Consumes one of names; returns its index, or -1. */
static int retry_name(struct retry_cur *c, const char *const *names, int count)
{
	for (int i = 0; i < count; i++)
		if (retry_lit(c, names[i]))
			return i;
	return -1;
}

/* Consumes exactly n digits into *out. */
static int retry_digits(struct retry_cur *c, int n, int *out)
{
	if (c->end - c->p < n)
		return 0;
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!retry_is_digit(c->p[i]))
			return 0;
		v = v * 10 + (c->p[i] - '0');
	}
	c->p += n;
	*out = v;
	return 1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil), so no timegm or TZ is involved. */
static int64_t retry_days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* The civil year holding the given day since 1970-01-01 (inverse of the above). */
static int64_t retry_year_of_days(int64_t z)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	return yoe + era * 400 + (mp >= 10);
}

static int retry_days_in_month(int64_t y, int m)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return days[m - 1] + (m == 2 && leap);
}

/* A broken-down GMT time as the three date forms give it. */
struct retry_tm {
	int64_t year;
	int mon; /* 1..12 */
	int day;
	int hour, min, sec;
};

/* Consumes "HH:MM:SS". */
static int retry_time(struct retry_cur *c, struct retry_tm *t)
{
	return retry_digits(c, 2, &t->hour) && retry_lit(c, ":") && retry_digits(c, 2, &t->min) &&
	       retry_lit(c, ":") && retry_digits(c, 2, &t->sec);
}

/* Consumes a month name, storing 1..12. */
static int retry_mon(struct retry_cur *c, struct retry_tm *t)
{
	t->mon = retry_name(c, retry_month, 12) + 1;
	return t->mon > 0;
}

/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT". */
static int retry_imf_fixdate(struct retry_cur c, struct retry_tm *t)
{
	int year;
	if (retry_name(&c, retry_wkday, 7) < 0 || !retry_lit(&c, ", ") ||
	    !retry_digits(&c, 2, &t->day) || !retry_lit(&c, " ") || !retry_mon(&c, t) ||
	    !retry_lit(&c, " ") || !retry_digits(&c, 4, &year) || !retry_lit(&c, " ") ||
	    !retry_time(&c, t) || !retry_lit(&c, " GMT"))
		return 0;
	t->year = year;
	return c.p == c.end;
}

/* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT". The two-digit year is taken as
 * the one nearest now (RFC 9110 5.6.7: never more than 50 years ahead). */
static int retry_rfc850(struct retry_cur c, int64_t now_unix, struct retry_tm *t)
{
	int yy;
	if (retry_name(&c, retry_weekday, 7) < 0 || !retry_lit(&c, ", ") ||
	    !retry_digits(&c, 2, &t->day) || !retry_lit(&c, "-") || !retry_mon(&c, t) ||
	    !retry_lit(&c, "-") || !retry_digits(&c, 2, &yy) || !retry_lit(&c, " ") ||
	    !retry_time(&c, t) || !retry_lit(&c, " GMT") || c.p != c.end)
		return 0;
	int64_t days = now_unix / 86400 - (now_unix % 86400 < 0);
	int64_t now_year = retry_year_of_days(days);
	int64_t year = now_year - (now_year % 100 + 100) % 100 + yy;
	if (year > now_year + 50)
		year -= 100;
	else if (year <= now_year - 50)
		year += 100;
	t->year = year;
	return 1;
}

/* asctime: "Sun Nov  6 08:49:37 1994" (day space-padded or two digits). */
static int retry_asctime(struct retry_cur c, struct retry_tm *t)
{
	int year;
	if (retry_name(&c, retry_wkday, 7) < 0 || !retry_lit(&c, " ") || !retry_mon(&c, t) ||
	    !retry_lit(&c, " "))
		return 0;
	if (!(retry_lit(&c, " ") ? retry_digits(&c, 1, &t->day) : retry_digits(&c, 2, &t->day)))
		return 0;
	if (!retry_lit(&c, " ") || !retry_time(&c, t) || !retry_lit(&c, " ") ||
	    !retry_digits(&c, 4, &year))
		return 0;
	t->year = year;
	return c.p == c.end;
}

/* Parses any of the three HTTP-date forms into seconds since the epoch. */
static int retry_http_date(struct retry_cur c, int64_t now_unix, int64_t *out)
{
	struct retry_tm t = { 0 };
	if (!retry_imf_fixdate(c, &t) && !retry_rfc850(c, now_unix, &t) && !retry_asctime(c, &t))
		return -1;
	/* The weekday is not checked against the date: it adds nothing the
	 * date lacks. Four-digit years only, which also keeps the arithmetic
	 * below far from overflow whatever now_unix an RFC 850 century used. */
	if (t.year < 0 || t.year > 9999 || t.day < 1 ||
	    t.day > retry_days_in_month(t.year, t.mon) || t.hour > 23 || t.min > 59 || t.sec > 60)
		return -1;
	*out = retry_days_from_civil(t.year, t.mon, t.day) * 86400 + t.hour * 3600 + t.min * 60 +
	       t.sec;
	return 0;
}

int retry_parse_retry_after(const char *value, int64_t now_unix, long long *delay_ms)
{
	if (!value)
		return -1;
	struct retry_cur c = { value, value + strlen(value) };
	while (c.p < c.end && (*c.p == ' ' || *c.p == '\t'))
		c.p++;
	while (c.end > c.p && (c.end[-1] == ' ' || c.end[-1] == '\t'))
		c.end--;
	if (c.p == c.end)
		return -1;
	if (retry_is_digit(*c.p)) {
		long long s = 0;
		for (const char *q = c.p; q < c.end; q++) {
			if (!retry_is_digit(*q))
				return -1;
			/* Saturates: a huge number is still a valid (capped) wait. */
			if (s <= RETRY_AFTER_MAX_S)
				s = s * 10 + (*q - '0');
		}
		*delay_ms = s > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_MS : s * 1000;
		return 0;
	}
	int64_t date;
	if (retry_http_date(c, now_unix, &date) < 0)
		return -1;
	/* date is within years 0..9999, so date - RETRY_AFTER_MAX_S cannot
	 * overflow, and date - now is formed only when it is below the cap. */
	if (now_unix >= date)
		*delay_ms = 0;
	else if (now_unix <= date - RETRY_AFTER_MAX_S)
		*delay_ms = RETRY_AFTER_MAX_MS;
	else
		*delay_ms = (long long)(date - now_unix) * 1000;
	return 0;
}

long long retry_next_delay_ms(int attempt, int http_status, const char *retry_after,
                              int64_t now_unix, long long base_ms, long long max_ms,
                              uint64_t random)
{
	if (retry_classify(http_status) != RETRY_AGAIN)
		return -1;
	long long delay = retry_backoff_ms(attempt, base_ms, max_ms, random);
	long long asked;
	if (retry_parse_retry_after(retry_after, now_unix, &asked) == 0 && asked > delay)
		delay = asked;
	return delay;
}

int retry_should_give_up(int attempts_made, int max_attempts)
{
	return attempts_made >= (max_attempts < 1 ? 1 : max_attempts);
}

int retry_lease_expired(int64_t lease_expires_ms, int64_t now_ms)
{
	return now_ms >= lease_expires_ms;
}

void retry_lease_token(const unsigned char random16[16], char out[RETRY_LEASE_TOKEN_LEN])
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < 16; i++) {
		out[2 * i] = hex[random16[i] >> 4];
		out[2 * i + 1] = hex[random16[i] & 0xf];
	}
	out[32] = '\0';
}
