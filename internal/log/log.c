#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log/log.h"

static enum log_level min_level = LOG_INFO;
static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_set_level(enum log_level level) { min_level = level; }

int log_set_level_name(const char *name)
{
	for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
		if (strcmp(name, level_names[i]) == 0) {
			min_level = (enum log_level)i;
			return 0;
		}
	return -1;
}

const char *log_quote(char *buf, size_t cap, const char *s)
{
	size_t o = 0;
	if (cap < 3) {
		if (cap) buf[0] = '\0';
		return buf;
	}
	buf[o++] = '"';
	for (; s && *s && o + 3 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c == '\n' || c == '\r' || c == '\t') {
			/* libpq's multi-line messages: one line, one space per break */
			if (buf[o - 1] != ' ' && s[1])
				buf[o++] = ' ';
		} else if (c < 0x20 || c == 0x7f) {
			buf[o++] = '?';
		} else {
			buf[o++] = (char)c;
		}
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

void log_write(enum log_level level, const char *msg, const char *fmt, ...)
{
	if (level < min_level)
		return;
	char line[2048], tbuf[40], qmsg[512];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(tbuf, sizeof tbuf, "%Y-%m-%dT%H:%M:%S", &tm);
	int n = snprintf(line, sizeof line, "time=%s.%03ldZ level=%s msg=%s", tbuf,
	                 ts.tv_nsec / 1000000, level_names[level], log_quote(qmsg, sizeof qmsg, msg));
	if (n < 0)
		return;
	if ((size_t)n < sizeof line - 2 && fmt && *fmt) {
		line[n++] = ' ';
		va_list ap;
		va_start(ap, fmt);
		int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
		va_end(ap);
		if (m > 0)
			n += m;
		else
			n--; /* nothing to add: drop the separator */
	}
	if ((size_t)n > sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	/* One write per line keeps lines from different threads whole. */
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
}
