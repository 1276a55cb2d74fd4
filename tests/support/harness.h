/* harness: shared main() for CUnit test executables. */
#ifndef DROPSHIP_TEST_HARNESS_H
#define DROPSHIP_TEST_HARNESS_H
#include <CUnit/CUnit.h>

/* One test case in a table passed to harness_main. */
struct harness_test {
	const char *name;
	CU_TestFunc fn;
};

/* A CUnit assertion whose failure text is formatted, so that a table row
 * can name itself; file and line are where it is checked. */
__attribute__((format(printf, 4, 5)))
void harness_check(int ok, const char *file, unsigned line, const char *fmt, ...);
#define HARNESS_CHECK(ok, ...) harness_check(!!(ok), __FILE__, __LINE__, __VA_ARGS__)

/* Registers one suite with the given tests, runs all with the basic
 * interface, prints CUnit's summary and a line `RESULT passed=N failed=M`
 * that tests/run.sh sums. Returns the process exit code. */
int harness_main(const char *suite, CU_InitializeFunc init, CU_CleanupFunc cleanup,
                 const struct harness_test *tests);

#endif
