#include <time.h>

#include "support/wait.h"

void wait_ms(int ms)
{
	if (ms <= 0)
		return;
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

double wait_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

bool wait_until(bool (*pred)(void *arg), void *arg, int timeout_ms, int every_ms)
{
	double deadline = wait_now_ms() + timeout_ms;
	for (;;) {
		if (pred(arg))
			return true;
		double left = deadline - wait_now_ms();
		if (left <= 0)
			return false;
		/* The last nap ends at the deadline, for one more look. */
		wait_ms(left < every_ms ? (int)left + 1 : every_ms);
	}
}
