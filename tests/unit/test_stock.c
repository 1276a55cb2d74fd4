#include <string.h>

#include <libpq-fe.h>

#include "stock/stock.h"
#include "support/harness.h"

static void test_format_time(void)
{
	static const struct {
		long long sec;
		long nsec;
		const char *want;          /* NULL: refused */
	} cases[] = {
		{ 0, 0, "1970-01-01T00:00:00.000000Z" },
		{ 1795860001LL, 234567891L, "2026-11-28T10:00:01.234567Z" },
		{ 951782400LL, 999999999L, "2000-02-29T00:00:00.999999Z" },
		{ -62135596800LL, 0, "0001-01-01T00:00:00.000000Z" },
		{ 253402300799LL, 0, "9999-12-31T23:59:59.000000Z" },
		{ 253402300800LL, 0, NULL },           /* year 10000 */
		{ -62135596801LL, 0, NULL },           /* year 0 */
		{ 0, -1, NULL },
		{ 0, 1000000000L, NULL },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char buf[STOCK_TIME_LEN];
		int rc = stock_format_time(cases[i].sec, cases[i].nsec, buf, sizeof buf);
		if (cases[i].want) {
			CU_ASSERT_EQUAL(rc, 0);
			CU_ASSERT_STRING_EQUAL(rc == 0 ? buf : "", cases[i].want);
		} else {
			CU_ASSERT_EQUAL(rc, -1);
		}
	}
	char small[STOCK_TIME_LEN - 1];
	CU_ASSERT_EQUAL(stock_format_time(0, 0, small, sizeof small), -1);
}

static void test_refusal(void)
{
	CU_ASSERT_EQUAL(stock_refusal_of(NULL), STOCK_OK);
	CU_ASSERT_EQUAL(stock_refusal_of(""), STOCK_OK);
	CU_ASSERT_EQUAL(stock_refusal_of("too_old"), STOCK_TOO_OLD);
	CU_ASSERT_EQUAL(stock_refusal_of("future"), STOCK_FUTURE);
	CU_ASSERT_EQUAL(stock_refusal_of("later"), STOCK_REFUSAL_UNKNOWN);
	CU_ASSERT_PTR_NOT_NULL(strstr(stock_refusal_text(STOCK_TOO_OLD), "more than 7 days ago"));
	CU_ASSERT_PTR_NOT_NULL(strstr(stock_refusal_text(STOCK_FUTURE), "ahead"));
	CU_ASSERT_PTR_NOT_NULL(stock_refusal_text(STOCK_REFUSAL_UNKNOWN));
}

/* A result shaped like the apply's, built without a server. */
static PGresult *result(const char *const *names, int ncols, const char *const *vals)
{
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	PGresAttDesc attrs[8];
	memset(attrs, 0, sizeof attrs);
	for (int c = 0; c < ncols; c++) {
		attrs[c].name = (char *)names[c];
		attrs[c].typid = c == 0 ? 25 : 20;  /* text, then bigint */
		attrs[c].typlen = -1;
		attrs[c].atttypmod = -1;
	}
	PQsetResultAttrs(res, ncols, attrs);
	for (int c = 0; vals && c < ncols; c++)
		PQsetvalue(res, 0, c, (char *)vals[c], vals[c] ? (int)strlen(vals[c]) : -1);
	return res;
}

static const char *const names[] = { "refused", "applied", "stale", "unchanged", "skipped", "skus" };

static void test_decode(void)
{
	struct stock_result r;
	const char *vals[] = { NULL, "3", "1", "996", "0", "2" };
	PGresult *res = result(names, 6, vals);
	CU_ASSERT_EQUAL(stock_decode(res, &r), 0);
	CU_ASSERT_EQUAL(r.refused, STOCK_OK);
	CU_ASSERT_EQUAL(r.applied, 3);
	CU_ASSERT_EQUAL(r.stale, 1);
	CU_ASSERT_EQUAL(r.unchanged, 996);
	CU_ASSERT_EQUAL(r.skipped, 0);
	CU_ASSERT_EQUAL(r.skus, 2);
	PQclear(res);

	const char *old[] = { "too_old", "0", "0", "0", "0", "0" };
	res = result(names, 6, old);
	CU_ASSERT_EQUAL(stock_decode(res, &r), 0);
	CU_ASSERT_EQUAL(r.refused, STOCK_TOO_OLD);
	PQclear(res);

	/* Not the apply's result: no row, a column missing or misnamed, a bad count. */
	res = result(names, 6, NULL);
	CU_ASSERT_EQUAL(stock_decode(res, &r), -1);
	PQclear(res);
	res = result(names, 5, vals);
	CU_ASSERT_EQUAL(stock_decode(res, &r), -1);
	PQclear(res);
	const char *const swapped[] = { "refused", "stale", "applied", "unchanged", "skipped", "skus" };
	res = result(swapped, 6, vals);
	CU_ASSERT_EQUAL(stock_decode(res, &r), -1);
	PQclear(res);
	const char *bad[] = { NULL, "3", "-1", "996", "0", "2" };
	res = result(names, 6, bad);
	CU_ASSERT_EQUAL(stock_decode(res, &r), -1);
	PQclear(res);
	CU_ASSERT_EQUAL(stock_decode(NULL, &r), -1);
}

/* Both inputs run the same statement; the array one types its input. */
static void test_sql_shapes(void)
{
	CU_ASSERT_PTR_NOT_NULL(strstr(stock_apply_sql, "unnest($2::bigint[], $3::int[]"));
	CU_ASSERT_PTR_NOT_NULL(strstr(stock_levels_apply_sql, "FROM stock_levels"));
	const char *a = strstr(stock_apply_sql, " mv AS ("), *b = strstr(stock_levels_apply_sql, " mv AS (");
	CU_ASSERT_FATAL(a && b);
	CU_ASSERT_STRING_EQUAL(a, b);
	CU_ASSERT_PTR_NOT_NULL(strstr(stock_lock_sql, "ORDER BY id FOR UPDATE"));
	CU_ASSERT_PTR_NOT_NULL(strstr(stock_levels_lock_sql, "LOCK TABLE offers"));
	CU_ASSERT_STRING_EQUAL(stock_stmts[2].name, "stock_apply");
	CU_ASSERT_PTR_NULL(stock_stmts[3].name);
}

static const struct harness_test tests[] = {
	{ "times format as RFC 3339 UTC with microseconds", test_format_time },
	{ "refusals by name and text", test_refusal },
	{ "the apply's row decodes by column name", test_decode },
	{ "array and staging forms share one statement", test_sql_shapes },
	{ NULL, NULL },
};

int main(void)
{
	return harness_main("stock", NULL, NULL, tests);
}
