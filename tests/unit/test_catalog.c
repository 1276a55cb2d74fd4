#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "support/harness.h"

#define ROW_PREFIX "acme,MUG-01,AC-MUG,"

/* The fields of a record joined with '|', for comparing in one assert. */
static void joined(const struct catalog_record *rec, char *out, size_t cap)
{
	size_t w = 0;
	out[0] = '\0';
	for (size_t i = 0; i < rec->nfields && i < CATALOG_COLUMNS; i++)
		w += (size_t)snprintf(out + w, cap - w, "%s%.*s", i ? "|" : "", (int)rec->f[i].len,
		                      rec->f[i].p);
}

/* Splits the one record of text, all of it at hand. */
static enum catalog_next split(const char *text, size_t len, struct catalog_record *rec,
                               size_t *used)
{
	return catalog_csv_next(text, len, 1, rec, used);
}

struct split_case {
	const char *in;
	const char *fields;        /* joined with '|' */
	size_t nfields;
	unsigned long lines;
	size_t used;               /* bytes of in the record takes */
	enum catalog_syntax syntax;
	size_t syntax_field;
};

static void test_split_records(void)
{
	static const struct split_case cases[] = {
		{ "a,b,c\nnext", "a|b|c", 3, 1, 6, CATALOG_SYNTAX_OK, 0 },
		{ "a,b,c\r\nnext", "a|b|c", 3, 1, 7, CATALOG_SYNTAX_OK, 0 },
		{ "a,b,c", "a|b|c", 3, 0, 5, CATALOG_SYNTAX_OK, 0 },
		{ "a,,\n", "a||", 3, 1, 4, CATALOG_SYNTAX_OK, 0 },
		{ "\"a,b\",\"c\"\"d\",\"\"\n", "a,b|c\"d|", 3, 1, 16, CATALOG_SYNTAX_OK, 0 },
		{ "\"two\r\nlines\",x\nnext", "two\r\nlines|x", 2, 2, 15, CATALOG_SYNTAX_OK, 0 },
		{ "\"a\n\nb\"\n", "a\n\nb", 1, 3, 7, CATALOG_SYNTAX_OK, 0 },
		{ "a\rb,c\n", "a\rb|c", 2, 1, 6, CATALOG_SYNTAX_OK, 0 },
		{ "\n", "", 1, 1, 1, CATALOG_SYNTAX_OK, 0 },
		{ "\"\"\n", "", 1, 1, 3, CATALOG_SYNTAX_OK, 0 },
		{ "x,\"a\"b,c\n", "x|ab|c", 3, 1, 9, CATALOG_SYNTAX_AFTER_QUOTE, 1 },
		{ "x,y,a\"b\n", "x|y|a\"b", 3, 1, 8, CATALOG_SYNTAX_STRAY_QUOTE, 2 },
		{ "x,\"open\nto the end", "x|open\nto the end", 2, 1, 18,
		  CATALOG_SYNTAX_UNTERMINATED, 1 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct split_case *c = &cases[i];
		struct catalog_record rec;
		size_t used = 0;
		char got[256];
		CU_ASSERT_EQUAL(split(c->in, strlen(c->in), &rec, &used), CATALOG_NEXT_RECORD);
		joined(&rec, got, sizeof got);
		CU_ASSERT_STRING_EQUAL(got, c->fields);
		CU_ASSERT_EQUAL(rec.nfields, c->nfields);
		CU_ASSERT_EQUAL(rec.lines, c->lines);
		CU_ASSERT_EQUAL(used, c->used);
		CU_ASSERT_EQUAL(rec.syntax, c->syntax);
		if (c->syntax != CATALOG_SYNTAX_OK)
			CU_ASSERT_EQUAL(rec.syntax_field, c->syntax_field);
		if (strcmp(got, c->fields) != 0 || used != c->used)
			printf("\ncase %zu: got '%s' used %zu\n", i, got, used);
	}
	struct catalog_record rec;
	size_t used = 99;
	CU_ASSERT_EQUAL(split("", 0, &rec, &used), CATALOG_NEXT_END);
	CU_ASSERT_EQUAL(catalog_csv_next("", 0, 0, &rec, &used), CATALOG_NEXT_MORE);
}

/* Splits text as it would arrive in pieces: every prefix that ends inside
 * a record must ask for more, and the records must be those of the whole. */
static void test_split_across_reads(void)
{
	const char *text = "h1,h2\r\n\"q\"\"\",\"x\r\ny\"\r\nlast,\"\"\"\"\r\n\"end\"";
	static const char *const want[] = { "h1|h2", "q\"|x\r\ny", "last|\"", "end" };
	static const unsigned long want_lines[] = { 1, 2, 1, 0 };
	size_t total = strlen(text);
	for (size_t step = 1; step <= total; step++) {
		size_t off = 0, avail = 0, n = 0;
		struct catalog_record rec;
		char got[64];
		for (;;) {
			size_t used = 0;
			int eof = off + avail >= total;
			enum catalog_next r = catalog_csv_next(text + off, avail, eof, &rec, &used);
			if (r == CATALOG_NEXT_END)
				break;
			if (r == CATALOG_NEXT_MORE) {
				avail = avail + step > total - off ? total - off : avail + step;
				continue;
			}
			CU_ASSERT_FATAL(n < 4);
			joined(&rec, got, sizeof got);
			CU_ASSERT_STRING_EQUAL(got, want[n]);
			CU_ASSERT_EQUAL(rec.lines, want_lines[n]);
			CU_ASSERT_EQUAL(rec.syntax, CATALOG_SYNTAX_OK);
			n++;
			off += used;
			avail -= used;
		}
		CU_ASSERT_EQUAL(n, 4);
	}
}

struct row_case {
	const char *in;            /* one record */
	const char *want;          /* COPY text for line 7, or the error */
};

static void check_row(const struct row_case *c, int good)
{
	struct catalog_record rec;
	struct catalog_row row;
	char err[CATALOG_ERR_MAX] = "", copy[CATALOG_COPY_MAX] = "";
	size_t used;
	CU_ASSERT_EQUAL_FATAL(split(c->in, strlen(c->in), &rec, &used), CATALOG_NEXT_RECORD);
	int rc = catalog_row_parse(&rec, &row, err, sizeof err);
	if (good) {
		CU_ASSERT_EQUAL(rc, 0);
		size_t n = rc == 0 ? catalog_row_copy(&row, 7, copy, sizeof copy) : 0;
		copy[n] = '\0';
		CU_ASSERT_STRING_EQUAL(copy, c->want);
	} else {
		CU_ASSERT_EQUAL(rc, -1);
		CU_ASSERT_STRING_EQUAL(err, c->want);
	}
	if (strcmp(good ? copy : err, c->want) != 0)
		printf("\nrow %s\n got  %s\n want %s\n", c->in, good ? copy : err, c->want);
}

static void test_good_rows(void)
{
	static const struct row_case cases[] = {
		{ ROW_PREFIX "12.50,1.5,10,3,US;ca\n",
		  "7\tacme\tMUG-01\tAC-MUG\t12.5\t1.5\t10\t3\t{CA,US}\n" },
		{ ROW_PREFIX "0,,0,0,*\r\n", "7\tacme\tMUG-01\tAC-MUG\t0\t0\t0\t0\t\\N\n" },
		{ ROW_PREFIX "7,0.0001,0,365, * ", "7\tacme\tMUG-01\tAC-MUG\t7\t0.0001\t0\t365\t\\N\n" },
		{ "\"ac.me_2\",\"a,b\",\"say \"\"hi\"\"\",9999999999999999.9999,0,2147483647,1,"
		  "\" us ; GB ;US\"",
		  "7\tac.me_2\ta,b\tsay \"hi\"\t9999999999999999.9999\t0\t2147483647\t1\t{GB,US}\n" },
		/* Zeros that change nothing do not count as digits. */
		{ "a,\"tab\there\",back\\slash,0012.50000,00.10,007,010,fr",
		  "7\ta\ttab\\there\tback\\\\slash\t12.5\t0.1\t7\t10\t{FR}\n" },
		{ "a,b,c,000,7.000,0,0,*", "7\ta\tb\tc\t0\t7\t0\t0\t\\N\n" },
		{ "a,\"two\r\nlines\",x,1,2,3,4,de", "7\ta\ttwo\\r\\nlines\tx\t1\t2\t3\t4\t{DE}\n" },
		{ "a,Tasse-\xC3\xA9,\xE2\x82\xAC-1,1,2,3,4,DE",
		  "7\ta\tTasse-\xC3\xA9\t\xE2\x82\xAC-1\t1\t2\t3\t4\t{DE}\n" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		check_row(&cases[i], 1);
}

static void test_bad_rows(void)
{
	static const struct row_case cases[] = {
		{ ROW_PREFIX "\"12,5\",1,1,3,US", "column cost: \"12,5\" is not a decimal number" },
		{ ROW_PREFIX "12,5,1,1,3,US", "expected 8 columns, found 9" },
		{ ROW_PREFIX "1,0,1,3", "expected 8 columns, found 7" },
		{ "acme", "expected 8 columns, found 1" },
		{ ROW_PREFIX "-1,0,1,3,US", "column cost: \"-1\" is negative" },
		{ ROW_PREFIX "1.23456,0,1,3,US", "column cost: \"1.23456\" has more than 4 decimal places" },
		{ ROW_PREFIX "12345678901234567,0,1,3,US",
		  "column cost: \"12345678901234567\" has more than 16 integer digits" },
		{ ROW_PREFIX ",0,1,3,US", "column cost: must not be empty" },
		{ ROW_PREFIX "5.,0,1,3,US", "column cost: \"5.\" is not a decimal number" },
		{ ROW_PREFIX ".5,0,1,3,US", "column cost: \".5\" is not a decimal number" },
		{ ROW_PREFIX "1e3,0,1,3,US", "column cost: \"1e3\" is not a decimal number" },
		{ ROW_PREFIX " 1,0,1,3,US", "column cost: \" 1\" is not a decimal number" },
		{ ROW_PREFIX "1,abc,1,3,US", "column shipping_cost: \"abc\" is not a decimal number" },
		{ ROW_PREFIX "1,-0.5,1,3,US", "column shipping_cost: \"-0.5\" is negative" },
		{ ROW_PREFIX "1,0,-3,3,US", "column stock: \"-3\" is negative" },
		{ ROW_PREFIX "1,0,1.5,3,US", "column stock: \"1.5\" is not a whole number" },
		{ ROW_PREFIX "1,0,,3,US", "column stock: must not be empty" },
		{ ROW_PREFIX "1,0,2147483648,3,US",
		  "column stock: \"2147483648\" is too large (at most 2147483647)" },
		{ ROW_PREFIX "1,0,1,366,US", "column lead_time_days: \"366\" is out of range (0 to 365)" },
		{ ROW_PREFIX "1,0,1,-1,US", "column lead_time_days: \"-1\" is out of range (0 to 365)" },
		{ ROW_PREFIX "1,0,1,3d,US", "column lead_time_days: \"3d\" is not a whole number" },
		{ ROW_PREFIX "1,0,1,3,XX",
		  "column ships_to: \"XX\" is not an ISO 3166-1 alpha-2 country code" },
		{ ROW_PREFIX "1,0,1,3,US;UK",
		  "column ships_to: \"UK\" is not an ISO 3166-1 alpha-2 country code" },
		{ ROW_PREFIX "1,0,1,3,\"US,CA\"",
		  "column ships_to: \"US,CA\" is not an ISO 3166-1 alpha-2 country code (codes are "
		  "separated by ';')" },
		{ ROW_PREFIX "1,0,1,3,US;;CA",
		  "column ships_to: \"US;;CA\" has an empty entry (codes are separated by ';')" },
		{ ROW_PREFIX "1,0,1,3,US;",
		  "column ships_to: \"US;\" has an empty entry (codes are separated by ';')" },
		{ ROW_PREFIX "1,0,1,3,", "column ships_to: must not be empty (* ships everywhere)" },
		{ ROW_PREFIX "1,0,1,3,*;US",
		  "column ships_to: \"*\" is not an ISO 3166-1 alpha-2 country code" },
		{ ",MUG,AC,1,0,1,3,US", "column supplier: must not be empty" },
		{ "bad code!,MUG,AC,1,0,1,3,US",
		  "column supplier: \"bad code!\" is not a supplier code (1-64 letters, digits, '_', "
		  "'.', '-')" },
		{ "_acme,MUG,AC,1,0,1,3,US",
		  "column supplier: \"_acme\" is not a supplier code (1-64 letters, digits, '_', '.', "
		  "'-')" },
		{ "acme,,AC,1,0,1,3,US", "column sku: must not be empty" },
		{ "acme,MUG,,1,0,1,3,US", "column supplier_sku: must not be empty" },
		{ "acme,\xFF\x41,AC,1,0,1,3,US", "column sku: \"\\xFFA\" is not valid UTF-8" },
		{ "acme,\xED\xA0\x80,AC,1,0,1,3,US", "column sku: \"\\xED\\xA0\\x80\" is not valid UTF-8" },
		{ "acme,\"MUG\"x,AC,1,0,1,3,US", "column sku: text after the closing quote" },
		{ "acme,MU\"G,AC,1,0,1,3,US",
		  "column sku: '\"' inside an unquoted field (quote the whole field and double the "
		  "quotes in it)" },
		{ ROW_PREFIX "1,0,1,3,\"US", "column ships_to: quoted field not closed before the end "
		                             "of the file" },
		{ ROW_PREFIX "1,0,1,3,US,x,\"y\"z", "column 10: text after the closing quote" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		check_row(&cases[i], 0);
}

/* Values longer than anything valid are cut in the record and in messages. */
static void test_long_values(void)
{
	enum { BIG = 20000 };
	char *text = malloc(BIG + 64), err[CATALOG_ERR_MAX];
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	struct catalog_record rec;
	struct catalog_row row;
	size_t used;

	int n = snprintf(text, BIG + 64, "acme,");
	memset(text + n, 'S', 129);
	snprintf(text + n + 129, 64, ",AC,1,0,1,3,US\n");
	CU_ASSERT_EQUAL(split(text, strlen(text), &rec, &used), CATALOG_NEXT_RECORD);
	CU_ASSERT_EQUAL(catalog_row_parse(&rec, &row, err, sizeof err), -1);
	CU_ASSERT_STRING_EQUAL(err, "column sku: \"SSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSS\"... "
	                            "is longer than 128 bytes (129)");

	/* A huge field: the record still ends where it should. */
	n = snprintf(text, BIG + 64, ROW_PREFIX);
	memset(text + n, '7', BIG);
	snprintf(text + n + BIG, 64, ",0,1,3,US\nnext");
	CU_ASSERT_EQUAL(split(text, strlen(text), &rec, &used), CATALOG_NEXT_RECORD);
	CU_ASSERT_EQUAL(used, strlen(text) - 4);
	CU_ASSERT_EQUAL(rec.f[3].size, BIG);
	CU_ASSERT(rec.f[3].len < BIG);
	CU_ASSERT_EQUAL(catalog_row_parse(&rec, &row, err, sizeof err), -1);
	CU_ASSERT_STRING_EQUAL(err, "column cost: \"7777777777777777777777777777777777777777\"... "
	                            "is not a decimal number");
	/* Zeros that change nothing are not sent on, however many. */
	n = snprintf(text, BIG + 64, ROW_PREFIX);
	memset(text + n, '0', 5000);
	snprintf(text + n + 5000, 64, "1.50,0,1,3,US\n");
	char copy[CATALOG_COPY_MAX];
	CU_ASSERT_EQUAL(split(text, strlen(text), &rec, &used), CATALOG_NEXT_RECORD);
	CU_ASSERT_EQUAL_FATAL(catalog_row_parse(&rec, &row, err, sizeof err), 0);
	size_t len = catalog_row_copy(&row, 2, copy, sizeof copy);
	copy[len] = '\0';
	CU_ASSERT_STRING_EQUAL(copy, "2\tacme\tMUG-01\tAC-MUG\t1.5\t0\t1\t3\t{US}\n");

	n = snprintf(text, BIG + 64, ROW_PREFIX "1,0,1,3,");
	for (int i = 0; i < 300; i++)
		n += snprintf(text + n, 8, "US;");
	text[n - 1] = '\0';
	CU_ASSERT_EQUAL(split(text, strlen(text), &rec, &used), CATALOG_NEXT_RECORD);
	CU_ASSERT_EQUAL(catalog_row_parse(&rec, &row, err, sizeof err), -1);
	CU_ASSERT(strstr(err, "column ships_to: \"US;US;") == err);
	CU_ASSERT(strstr(err, "\"... has too many country codes") != NULL);
	free(text);
}

static void test_nul_and_blank(void)
{
	static const char nul[] = "acme,M\0G,AC,1,0,1,3,US\n";
	struct catalog_record rec;
	struct catalog_row row;
	char err[CATALOG_ERR_MAX];
	size_t used;
	CU_ASSERT_EQUAL(split(nul, sizeof nul - 1, &rec, &used), CATALOG_NEXT_RECORD);
	CU_ASSERT_EQUAL(catalog_row_parse(&rec, &row, err, sizeof err), -1);
	CU_ASSERT_STRING_EQUAL(err, "column sku: \"M\\x00G\" contains a NUL byte");
	CU_ASSERT_EQUAL(split("\r\n", 2, &rec, &used), CATALOG_NEXT_RECORD);
	CU_ASSERT_EQUAL(catalog_row_parse(&rec, &row, err, sizeof err), 1);
}

/* Every country code there is, each listed twice: sorted and deduplicated. */
static void test_ships_to_many(void)
{
	char text[2048];
	int n = snprintf(text, sizeof text, ROW_PREFIX "1,0,1,3,\"");
	const char *codes = "US;GB;DE;FR;JP;CN;BR;IN;CA;AU";
	n += snprintf(text + n, sizeof text - (size_t)n, "%s;%s\"", codes, codes);
	struct catalog_record rec;
	struct catalog_row row;
	char err[CATALOG_ERR_MAX], copy[CATALOG_COPY_MAX];
	size_t used;
	CU_ASSERT_EQUAL(split(text, (size_t)n, &rec, &used), CATALOG_NEXT_RECORD);
	CU_ASSERT_EQUAL_FATAL(catalog_row_parse(&rec, &row, err, sizeof err), 0);
	CU_ASSERT_EQUAL(row.nships, 10);
	size_t len = catalog_row_copy(&row, 1, copy, sizeof copy);
	copy[len] = '\0';
	CU_ASSERT(strstr(copy, "\t{AU,BR,CA,CN,DE,FR,GB,IN,JP,US}\n") != NULL);
	/* A buffer too small is refused whole. */
	CU_ASSERT_EQUAL(catalog_row_copy(&row, 1, copy, 20), 0);
}

static void test_header(void)
{
	struct catalog_record rec;
	char err[CATALOG_ERR_MAX];
	size_t used;
	const char *good = "\xEF\xBB\xBF" CATALOG_HEADER "\r\n";
	size_t bom = catalog_bom_len(good, strlen(good));
	CU_ASSERT_EQUAL(bom, 3);
	CU_ASSERT_EQUAL(catalog_bom_len("sup", 3), 0);
	CU_ASSERT_EQUAL(split(good + bom, strlen(good) - bom, &rec, &used), CATALOG_NEXT_RECORD);
	CU_ASSERT_EQUAL(catalog_header_check(&rec, err, sizeof err), 0);
	const char *quoted = "\"supplier\",sku,supplier_sku,cost,shipping_cost,stock,lead_time_days,"
	                     "\"ships_to\"";
	CU_ASSERT_EQUAL(split(quoted, strlen(quoted), &rec, &used), CATALOG_NEXT_RECORD);
	CU_ASSERT_EQUAL(catalog_header_check(&rec, err, sizeof err), 0);

	static const struct row_case bad[] = {
		{ "supplier,sku,supplier_sku,cost,shipping,stock,lead_time_days,ships_to",
		  "expected header " CATALOG_HEADER "; column 5 is \"shipping\", not shipping_cost" },
		{ "Supplier,sku,supplier_sku,cost,shipping_cost,stock,lead_time_days,ships_to",
		  "expected header " CATALOG_HEADER "; column 1 is \"Supplier\", not supplier" },
		{ "supplier,sku,cost", "expected header " CATALOG_HEADER "; found 3 columns" },
		{ "acme,MUG-01,AC-MUG,1,0,1,3,US",
		  "expected header " CATALOG_HEADER "; column 1 is \"acme\", not supplier" },
		{ "\"supplier", "expected header " CATALOG_HEADER "; found a malformed line" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CU_ASSERT_EQUAL(split(bad[i].in, strlen(bad[i].in), &rec, &used), CATALOG_NEXT_RECORD);
		CU_ASSERT_EQUAL(catalog_header_check(&rec, err, sizeof err), -1);
		CU_ASSERT_STRING_EQUAL(err, bad[i].want);
	}
}

static void test_quote(void)
{
	struct { const char *in; const char *want; } cases[] = {
		{ "plain", "\"plain\"" },
		{ "", "\"\"" },
		{ "say \"hi\" \\ \t", "\"say \\\"hi\\\" \\\\ \\x09\"" },
		{ "0123456789012345678901234567890123456789", "\"0123456789012345678901234567890123456789\"" },
		{ "01234567890123456789012345678901234567890", "\"0123456789012345678901234567890123456789\"..." },
		/* 39 ASCII bytes, then a 2-byte character across the cut: kept out whole. */
		{ "012345678901234567890123456789012345678\xC3\xA9", "\"012345678901234567890123456789012345678\"..." },
		{ "caf\xC3\xA9", "\"caf\xC3\xA9\"" },
		{ "caf\xE9", "\"caf\\xE9\"" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char out[CATALOG_QUOTE_MAX];
		catalog_quote(cases[i].in, strlen(cases[i].in), out, sizeof out);
		CU_ASSERT_STRING_EQUAL(out, cases[i].want);
	}
	/* The worst case fits CATALOG_QUOTE_MAX. */
	char worst[64], out[CATALOG_QUOTE_MAX];
	memset(worst, 0x01, sizeof worst);
	catalog_quote(worst, sizeof worst, out, sizeof out);
	CU_ASSERT_EQUAL(strlen(out), 2 + 40 * 4 + 3);
}

static void test_valid_code(void)
{
	CU_ASSERT(catalog_valid_code("acme", 4));
	CU_ASSERT(catalog_valid_code("A1_b.c-d", 8));
	CU_ASSERT(catalog_valid_code("0", 1));
	CU_ASSERT(!catalog_valid_code("", 0));
	CU_ASSERT(!catalog_valid_code("-acme", 5));
	CU_ASSERT(!catalog_valid_code("ac me", 5));
	CU_ASSERT(!catalog_valid_code("acmé", 5));
	char code[66];
	memset(code, 'a', sizeof code);
	CU_ASSERT(catalog_valid_code(code, 64));
	CU_ASSERT(!catalog_valid_code(code, 65));
}

int main(void)
{
	static const struct harness_test tests[] = {
		{ "records: quotes, CRLF, line breaks in fields, syntax errors", test_split_records },
		{ "records split the same whatever the read size", test_split_across_reads },
		{ "good rows become COPY text", test_good_rows },
		{ "bad rows name column, value and reason", test_bad_rows },
		{ "long values are cut, records still end right", test_long_values },
		{ "NUL bytes refused, blank lines skipped", test_nul_and_blank },
		{ "ships_to sorted without repeats", test_ships_to_many },
		{ "header check, byte order mark", test_header },
		{ "values quoted for messages", test_quote },
		{ "supplier code rule", test_valid_code },
		{ NULL, NULL },
	};
	return harness_main("catalog", NULL, NULL, tests);
}
