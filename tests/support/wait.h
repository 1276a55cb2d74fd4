/* wait: sleeping and polling with a deadline, for tests that wait on
 * another process, a thread or the database. */
#ifndef DROPSHIP_TEST_WAIT_H
#define DROPSHIP_TEST_WAIT_H
#include <stdbool.h>

/* Sleeps ms milliseconds (nothing when ms <= 0). */
void wait_ms(int ms);

/* Milliseconds on the monotonic clock, with fractions: for deadlines and
 * for measuring how long something took. */
double wait_now_ms(void);

/* Calls pred(arg) until it returns true, sleeping every_ms between calls,
 * and once more at the deadline timeout_ms from now (timeout_ms 0: a single
 * call). Returns whether pred held. The pace is the caller's: a poll that
 * must catch a moment (a kill between two deliveries) asks often, one that
 * queries a busy server asks less. A predicate that also collects a value
 * takes a struct as arg and leaves the value there. */
bool wait_until(bool (*pred)(void *arg), void *arg, int timeout_ms, int every_ms);

#endif
