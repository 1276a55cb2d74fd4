#include <string.h>

#include "log/log.h"
#include "support/harness.h"

struct quote_case {
	const char *in;
	size_t cap;
	const char *out;
};

static void test_quote_table(void)
{
	static const struct quote_case cases[] = {
		{ "plain", 64, "\"plain\"" },
		{ "say \"hi\" \\ bye", 64, "\"say \\\"hi\\\" \\\\ bye\"" },
		/* libpq: "connection to server ... failed: ...\n\tIs the server running ...?\n" */
		{ "failed: refused\n\tIs the server running?\n", 64, "\"failed: refused Is the server running?\"" },
		{ "a\r\nb", 64, "\"a b\"" },
		{ "bell\a del\x7f", 64, "\"bell? del?\"" },
		{ "", 64, "\"\"" },
		{ NULL, 64, "\"\"" },
		{ "truncated", 7, "\"tru\"" },
		{ "x", 2, "" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char buf[64];
		const char *got = log_quote(buf, cases[i].cap, cases[i].in);
		HARNESS_CHECK(got == buf, "case %zu returns buf", i);
		HARNESS_CHECK(strcmp(got, cases[i].out) == 0, "case %zu: got %s, want %s", i, got, cases[i].out);
	}
}

static const struct harness_test tests[] = {
	{ "log_quote: escapes, line breaks, truncation", test_quote_table },
	{ NULL, NULL },
};

int main(void)
{
	return harness_main("log", NULL, NULL, tests);
}
