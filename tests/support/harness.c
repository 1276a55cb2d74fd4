#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <CUnit/Basic.h>

#include "support/harness.h"

void harness_check(int ok, const char *file, unsigned line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, line, msg, file, "", CU_FALSE);
}

int harness_main(const char *suite, CU_InitializeFunc init, CU_CleanupFunc cleanup,
                 const struct harness_test *tests)
{
	/* A peer closing a connection must fail the write, not kill the suite. */
	signal(SIGPIPE, SIG_IGN);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	CU_pSuite s = CU_add_suite(suite, init, cleanup);
	if (!s)
		goto fail;
	for (const struct harness_test *t = tests; t->name; t++)
		if (!CU_add_test(s, t->name, t->fn))
			goto fail;
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned run = CU_get_number_of_tests_run();
	unsigned failed = CU_get_number_of_tests_failed();
	/* A suite whose init failed runs nothing: count its tests as failed. */
	unsigned suites_failed = CU_get_number_of_suites_failed();
	unsigned total = 0;
	for (const struct harness_test *t = tests; t->name; t++)
		total++;
	if (suites_failed && run < total)
		failed += total - run, run = total;
	printf("RESULT passed=%u failed=%u\n", run - failed, failed);
	CU_cleanup_registry();
	return failed ? 1 : 0;
fail:
	fprintf(stderr, "harness: %s\n", CU_get_error_msg());
	CU_cleanup_registry();
	return 1;
}
