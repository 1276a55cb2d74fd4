/* log: one logfmt line per event on stderr. Thread-safe (one write(2) per line). */
#ifndef DROPSHIP_LOG_H
#define DROPSHIP_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Sets the lowest level written; parses "debug|info|warn|error", returns -1 if unknown. */
int log_set_level_name(const char *name);
void log_set_level(enum log_level level);

/* Writes `time=... level=... msg="..."` followed by the key/value pairs in
 * fmt (already logfmt, e.g. "store=%s status=%d"). Values that may contain
 * spaces or quotes must go through log_quote(). Never pass secrets. */
void log_write(enum log_level level, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Quotes s for logfmt into buf, truncating to cap: escapes " and \, turns
 * line breaks and tabs into one space (libpq's messages span lines) and
 * other control bytes into ?. Returns buf. */
const char *log_quote(char *buf, size_t cap, const char *s);

#define log_debug(msg, ...) log_write(LOG_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...)  log_write(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...)  log_write(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_write(LOG_ERROR, msg, __VA_ARGS__)

#endif
