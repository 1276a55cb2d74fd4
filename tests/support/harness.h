/* harness: shared main() for CUnit test executables. */
#ifndef DROPSHIP_TEST_HARNESS_H
#define DROPSHIP_TEST_HARNESS_H
#include <CUnit/CUnit.h>

/* One test case in a table passed to harness_main. */
struct harness_test {
	const char *name;
	CU_TestFunc fn;
};

/* Registers one suite with the given tests, runs all with the basic
 * interface, prints CUnit's summary and a line `RESULT passed=N failed=M`
 * that tests/run.sh sums. Returns the process exit code. */
int harness_main(const char *suite, CU_InitializeFunc init, CU_CleanupFunc cleanup,
                 const struct harness_test *tests);

#endif
