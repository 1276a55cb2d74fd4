#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "config/config.h"
#include "mem/mem.h"
#include "score/score.h"

/* A config file larger than this is a mistake (wrong path), not a config. */
#define CONFIG_FILE_MAX (1024 * 1024)

enum config_type {
	CONFIG_T_INT,
	CONFIG_T_LONG,
	CONFIG_T_STR,
	CONFIG_T_BOOL,
};

/* A rule of a string value beyond its length and choices: returns why the
 * value is refused, or NULL. */
typedef const char *(*config_check_fn)(const char *value);

/* One settable key; file parsing, environment overrides and validation all
 * go through it. */
struct config_key {
	const char *section;
	const char *name;
	enum config_type type;
	size_t offset;              /* of the field in struct config */
	size_t size;                /* of the field; for strings the buffer size */
	long min, max;              /* inclusive range of numbers */
	const char *choices;        /* allowed string values "a|b|c"; NULL = any */
	config_check_fn check;      /* further rule of a string; NULL = none */
	bool live;                  /* a running server can take a new value (SIGHUP) */
};

/* The _Generic makes a table entry fail to compile if the field's type and
 * the declared key type disagree. */
#define CONFIG_FIELD(f) (((struct config *)0)->f)
#define CONFIG_INT(s, k, f, lo, hi, live) \
	{ s, k, CONFIG_T_INT, _Generic(CONFIG_FIELD(f), int: offsetof(struct config, f)), \
	  sizeof CONFIG_FIELD(f), lo, hi, NULL, NULL, live }
#define CONFIG_LONG(s, k, f, lo, hi, live) \
	{ s, k, CONFIG_T_LONG, _Generic(CONFIG_FIELD(f), long: offsetof(struct config, f)), \
	  sizeof CONFIG_FIELD(f), lo, hi, NULL, NULL, live }
#define CONFIG_STR(s, k, f, ch, chk, live) \
	{ s, k, CONFIG_T_STR, _Generic(CONFIG_FIELD(f), char *: offsetof(struct config, f)), \
	  sizeof CONFIG_FIELD(f), 0, 0, ch, chk, live }
#define CONFIG_BOOL(s, k, f, live) \
	{ s, k, CONFIG_T_BOOL, _Generic(CONFIG_FIELD(f), bool: offsetof(struct config, f)), \
	  sizeof CONFIG_FIELD(f), 0, 0, NULL, NULL, live }

/* The last argument of each key: can a running server take a new value? */
#define CONFIG_LIVE true
#define CONFIG_RESTART false

#define CONFIG_MS_MAX 3600000L

static const char *config_check_listen(const char *listen);
static const char *config_check_listen_or_empty(const char *listen);
static const char *config_check_not_empty(const char *value);
static const char *config_check_api_version(const char *value);

static const struct config_key config_keys[] = {
	CONFIG_STR("server", "listen", server.listen, NULL, config_check_listen, CONFIG_RESTART),
	CONFIG_BOOL("server", "reuse_port", server.reuse_port, CONFIG_RESTART),
	CONFIG_INT("server", "workers", server.workers, 0, 256, CONFIG_RESTART),
	CONFIG_STR("server", "tls_cert", server.tls_cert, NULL, config_check_not_empty, CONFIG_LIVE),
	CONFIG_STR("server", "tls_key", server.tls_key, NULL, config_check_not_empty, CONFIG_LIVE),
	CONFIG_LONG("server", "max_body_bytes", server.max_body_bytes, 1024, 1073741824L, CONFIG_RESTART),
	CONFIG_INT("server", "read_timeout_ms", server.read_timeout_ms, 1, CONFIG_MS_MAX, CONFIG_RESTART),
	CONFIG_INT("server", "request_timeout_ms", server.request_timeout_ms, 1, CONFIG_MS_MAX, CONFIG_RESTART),
	CONFIG_LONG("server", "max_header_bytes", server.max_header_bytes, 1024, 1048576L, CONFIG_RESTART),
	CONFIG_INT("server", "max_connections", server.max_connections, 1, 1000000L, CONFIG_RESTART),
	CONFIG_INT("server", "max_connections_per_ip", server.max_connections_per_ip, 1, 1000000L, CONFIG_RESTART),
	CONFIG_STR("server", "log_level", server.log_level, "debug|info|warn|error", NULL, CONFIG_LIVE),
	CONFIG_STR("database", "url", database.url, NULL, config_check_not_empty, CONFIG_RESTART),
	CONFIG_INT("database", "pool_size", database.pool_size, 1, 64, CONFIG_RESTART),
	CONFIG_INT("database", "group_commit_us", database.group_commit_us, 0, 2000, CONFIG_RESTART),
	CONFIG_INT("dispatch", "timeout_ms", dispatch.timeout_ms, 1, CONFIG_MS_MAX, CONFIG_LIVE),
	CONFIG_INT("dispatch", "max_attempts", dispatch.max_attempts, 1, 1000, CONFIG_LIVE),
	CONFIG_INT("dispatch", "backoff_base_ms", dispatch.backoff_base_ms, 1, CONFIG_MS_MAX, CONFIG_LIVE),
	CONFIG_INT("dispatch", "backoff_max_ms", dispatch.backoff_max_ms, 1, CONFIG_MS_MAX, CONFIG_LIVE),
	CONFIG_STR("dispatch", "tls_ca_file", dispatch.tls_ca_file, NULL, NULL, CONFIG_LIVE),
	CONFIG_BOOL("dispatch", "allow_private_endpoints", dispatch.allow_private_endpoints, CONFIG_LIVE),
	CONFIG_INT("dispatch", "max_inflight", dispatch.max_inflight, 1, 10000, CONFIG_LIVE),
	CONFIG_INT("dispatch", "poll_ms", dispatch.poll_ms, 100, 60000, CONFIG_LIVE),
	CONFIG_INT("dispatch", "breaker_threshold", dispatch.breaker_threshold, 1, 1000, CONFIG_LIVE),
	CONFIG_INT("dispatch", "breaker_cooldown_ms", dispatch.breaker_cooldown_ms, 1, CONFIG_MS_MAX, CONFIG_LIVE),
	CONFIG_STR("admin", "listen", admin.listen, NULL, config_check_listen_or_empty, CONFIG_RESTART),
	CONFIG_STR("admin", "token", admin.token, NULL, NULL, CONFIG_LIVE),
	CONFIG_STR("platforms", "shopify_api_version", platforms.shopify_api_version, NULL,
	           config_check_api_version, CONFIG_RESTART),
	CONFIG_INT("score", "window_s", score.window_s, 1, 31536000L, CONFIG_RESTART),
	CONFIG_INT("score", "refresh_ms", score.refresh_ms, 100, CONFIG_MS_MAX, CONFIG_RESTART),
	CONFIG_INT("score", "prior_weight", score.prior_weight, 0, SCORE_MAX_WEIGHT, CONFIG_RESTART),
	CONFIG_INT("score", "prior_acceptance_pct", score.prior_acceptance_pct, 0, 100, CONFIG_RESTART),
	CONFIG_INT("score", "prior_on_time_pct", score.prior_on_time_pct, 0, 100, CONFIG_RESTART),
};

#define CONFIG_NKEYS (sizeof config_keys / sizeof config_keys[0])

/* Longest message: a path, a section and a key as written, a reason. */
#define CONFIG_MSG_MAX 4608

/* Where the errors of one call go, and which keys they were about. */
struct config_sink {
	config_error_fn fn;
	void *arg;
	int count;
	bool bad[CONFIG_NKEYS];       /* keys in error: checks between keys skip them */
};

/* State shared by the line reader and the key handler during one parse. */
struct config_parse {
	struct config *c;
	struct config_sink *sink;
	const char *filename;
	const char *pos;              /* next unread byte of the text */
	int lineno;                   /* lines handed to inih = inih's current line */
	bool key_above;               /* inih has a key to continue with an indented line */
	bool seen[CONFIG_NKEYS];      /* catches duplicates and continuation lines */
};

__attribute__((format(printf, 3, 4)))
static void config_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void config_defaults(struct config *c)
{
	*c = (struct config){
		.server = {
			.listen = "127.0.0.1:8443",
			.reuse_port = false,
			.workers = 0,
			.tls_cert = "var/tls/server.crt",
			.tls_key = "var/tls/server.key",
			.max_body_bytes = 1048576,
			.read_timeout_ms = 10000,
			.request_timeout_ms = 30000,
			.max_header_bytes = 16384,
			.max_connections = 10000,
			.max_connections_per_ip = 256,
			.log_level = "info",
		},
		.database = {
			.url = "postgresql:///dropship",
			.pool_size = 4,
			.group_commit_us = 1000,
		},
		.dispatch = {
			.timeout_ms = 10000,
			.max_attempts = 12,
			.backoff_base_ms = 1000,
			.backoff_max_ms = 600000,
			.tls_ca_file = "",
			.allow_private_endpoints = false,
			.max_inflight = 64,
			.poll_ms = 1000,
			.breaker_threshold = 5,
			.breaker_cooldown_ms = 30000,
		},
		.admin = {
			.listen = "127.0.0.1:8444",
			.token = "",
		},
		.platforms = { .shopify_api_version = "2026-10" },
		.score = {
			.window_s = 30 * 86400,
			.refresh_ms = 300000,
			.prior_weight = SCORE_DEFAULT_WEIGHT,
			.prior_acceptance_pct = SCORE_DEFAULT_ACCEPTANCE_PCT,
			.prior_on_time_pct = SCORE_DEFAULT_ON_TIME_PCT,
		},
	};
}

static const struct config_key *config_find(const char *section, const char *name)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++)
		if (strcmp(config_keys[i].section, section) == 0 &&
		    strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

static bool config_section_known(const char *section, size_t len)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++)
		if (strlen(config_keys[i].section) == len &&
		    memcmp(config_keys[i].section, section, len) == 0)
			return true;
	return false;
}

/* Decimal only; strtol alone would accept leading spaces, '+' and trailing junk. */
static int config_parse_long(const char *s, long *out)
{
	const char *digits = s[0] == '-' ? s + 1 : s;
	if (!isdigit((unsigned char)digits[0]))
		return -1;
	char *end;
	long v = strtol(s, &end, 10);
	if (*end)
		return -1;
	/* On overflow strtol clamps to LONG_MIN/LONG_MAX, which every range rejects. */
	*out = v;
	return 0;
}

static int config_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

static bool config_choice_ok(const char *choices, const char *value, size_t len)
{
	for (const char *p = choices;; p++) {
		size_t n = strcspn(p, "|");
		if (n == len && memcmp(p, value, n) == 0)
			return true;
		p += n;
		if (!*p)
			return false;
	}
}

/* A value against its key's own rule (range, length, choices, format).
 * n is the number of a numeric key, s the text of a string key. */
static int config_value_ok(const struct config_key *k, long n, const char *s, char *why, size_t whylen)
{
	switch (k->type) {
	case CONFIG_T_INT:
	case CONFIG_T_LONG:
		if (n < k->min || n > k->max) {
			config_err(why, whylen, "out of range (%ld..%ld)", k->min, k->max);
			return -1;
		}
		return 0;
	case CONFIG_T_BOOL:
		return 0;
	case CONFIG_T_STR: {
		size_t len = strnlen(s, k->size);
		if (len >= k->size) {
			config_err(why, whylen, "too long (at most %zu bytes)", k->size - 1);
			return -1;
		}
		if (k->choices && !config_choice_ok(k->choices, s, len)) {
			config_err(why, whylen, "must be one of %s", k->choices);
			return -1;
		}
		const char *reason = k->check ? k->check(s) : NULL;
		if (reason) {
			config_err(why, whylen, "%s", reason);
			return -1;
		}
		return 0;
	}
	}
	config_err(why, whylen, "unsupported key type");
	return -1;
}

/* Stores value into the key's field when it passes the key's rule. Reasons
 * never quote the value, so a token or a password inside the database url
 * cannot leak into a log. */
static int config_set(struct config *c, const struct config_key *k, const char *value,
                      char *why, size_t whylen)
{
	char *field = (char *)c + k->offset;
	switch (k->type) {
	case CONFIG_T_INT:
	case CONFIG_T_LONG: {
		long v;
		if (config_parse_long(value, &v) < 0) {
			config_err(why, whylen, "not an integer");
			return -1;
		}
		if (config_value_ok(k, v, NULL, why, whylen) < 0)
			return -1;
		if (k->type == CONFIG_T_INT)
			*(int *)(void *)field = (int)v;
		else
			*(long *)(void *)field = v;
		return 0;
	}
	case CONFIG_T_BOOL:
		if (config_parse_bool(value, (bool *)(void *)field) < 0) {
			config_err(why, whylen, "not a boolean (true/false, yes/no, on/off, 1/0)");
			return -1;
		}
		return 0;
	case CONFIG_T_STR:
		if (config_value_ok(k, 0, value, why, whylen) < 0)
			return -1;
		memcpy(field, value, strlen(value) + 1);
		return 0;
	}
	config_err(why, whylen, "unsupported key type");
	return -1;
}

/* Counts one error, marks its key and hands it to the sink's function. */
__attribute__((format(printf, 4, 5)))
static void config_report(struct config_sink *sink, int line, const struct config_key *k, const char *fmt, ...)
{
	char msg[CONFIG_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	sink->count++;
	if (k)
		sink->bad[k - config_keys] = true;
	struct config_error e = {
		.msg = msg, .line = line, .section = k ? k->section : NULL, .key = k ? k->name : NULL,
	};
	if (sink->fn)
		sink->fn(&e, sink->arg);
}

/* Reports an error of the current line as "FILE:LINE: what". */
__attribute__((format(printf, 3, 4)))
static void config_parse_err(struct config_parse *p, const struct config_key *k, const char *fmt, ...)
{
	char what[CONFIG_MSG_MAX - 256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	config_report(p->sink, p->lineno, k, "%s:%d: %s", p->filename, p->lineno, what);
}

/* Every call returns 1: inih would stop counting errors at its first, and
 * each error is reported here anyway. */
static int config_handler(void *arg, const char *section, const char *name, const char *value)
{
	struct config_parse *p = arg;
	const struct config_key *k = config_find(section, name);
	if (!k) {
		if (!*section)
			config_parse_err(p, NULL, "%s: key outside any section", name);
		else if (config_section_known(section, strlen(section)))
			config_parse_err(p, NULL, "[%s] %s: unknown key", section, name);
		/* else the section was reported at its header, once for all its keys */
		return 1;
	}
	size_t idx = (size_t)(k - config_keys);
	if (p->seen[idx]) {
		/* inih reports an indented line as a continuation of the previous key. */
		config_parse_err(p, k, "[%s] %s: set more than once (or an indented line follows it)",
		                 section, name);
		return 1;
	}
	p->seen[idx] = true;
	char why[160];
	if (config_set(p->c, k, value, why, sizeof why) < 0)
		config_parse_err(p, k, "[%s] %s: %s", section, name, why);
	return 1;
}

/* inih's search along a line: the first of chars, an inline comment (';'
 * after a blank) or the end. */
static const char *config_ini_find(const char *s, const char *chars)
{
	bool was_space = false;
	while (*s && !strchr(chars, *s) && !(was_space && *s == ';')) {
		was_space = isspace((unsigned char)*s);
		s++;
	}
	return s;
}

/* Reads line as inih will, in its order of tests, and reports what inih
 * would not: a section header of an unknown section (inih only calls the
 * handler for keys) and a syntax error (inih only returns the first).
 * Returns true when the line must be hidden from inih: a syntax error,
 * already reported. */
static bool config_scan_line(struct config_parse *p, const char *line)
{
	const char *s = line;
	if (p->lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3; /* a UTF-8 byte order mark */
	while (isspace((unsigned char)*s))
		s++;
	if (!*s || *s == ';' || *s == '#')
		return false; /* blank or comment */
	if (p->key_above && s > line)
		return false; /* the handler sees it as the key above, set again */
	if (*s == '[') {
		const char *end = config_ini_find(s + 1, "]");
		if (*end != ']') {
			config_parse_err(p, NULL, "syntax error");
			return true;
		}
		size_t len = (size_t)(end - s - 1);
		if (!config_section_known(s + 1, len))
			config_parse_err(p, NULL, "[%.*s]: unknown section", (int)len, s + 1);
		p->key_above = false;
		return false;
	}
	const char *sep = config_ini_find(s, "=:");
	if (*sep != '=' && *sep != ':') {
		config_parse_err(p, NULL, "syntax error");
		return true;
	}
	p->key_above = sep > s; /* inih continues only a key with a name */
	return false;
}

/* fgets-style reader over the text. Counting lines here gives the handler
 * its line number (Debian builds inih without INI_HANDLER_LINENO), and a
 * line longer than inih's buffer is rejected instead of being cut in two. */
static char *config_reader(char *buf, int num, void *arg)
{
	struct config_parse *p = arg;
	if (!*p->pos || num < 2)
		return NULL;
	const char *nl = strchr(p->pos, '\n');
	size_t len = nl ? (size_t)(nl - p->pos) : strlen(p->pos);
	const char *line = p->pos;
	p->pos = nl ? nl + 1 : line + len;
	p->lineno++;
	if (len && line[len - 1] == '\r')
		len--;
	buf[0] = '\0'; /* what inih gets for a line in error: a blank line */
	if (len > (size_t)num - 2) {
		config_parse_err(p, NULL, "line too long (at most %d characters)", num - 2);
		return buf;
	}
	memcpy(buf, line, len);
	buf[len] = '\n';
	buf[len + 1] = '\0';
	if (config_scan_line(p, buf))
		buf[0] = '\0';
	return buf;
}

/* Parses text into c, setting every valid key; errors go to sink. */
static void config_parse_into(struct config *c, const char *text, const char *filename,
                              struct config_sink *sink)
{
	struct config_parse p = { .c = c, .sink = sink, .filename = filename, .pos = text };
	int line = ini_parse_stream(config_reader, &p, config_handler, &p);
	if (line < 0)
		mem_oom();
	/* Lines in error are hidden from inih and the handler never fails, so
	 * this is a line inih refuses by a rule config_scan_line lacks. */
	if (line > 0)
		config_report(sink, line, NULL, "%s:%d: syntax error", filename, line);
}

/* Keeps the first message in err, for the single-error functions. */
struct config_first {
	char *err;
	size_t errlen;
	bool have;
};

static void config_keep_first(const struct config_error *e, void *arg)
{
	struct config_first *f = arg;
	if (f->have)
		return;
	f->have = true;
	config_err(f->err, f->errlen, "%s", e->msg);
}

int config_parse_string_all(struct config *c, const char *text, const char *filename,
                            config_error_fn fn, void *arg)
{
	struct config_sink sink = { .fn = fn, .arg = arg };
	struct config tmp = *c;
	config_parse_into(&tmp, text, filename, &sink);
	if (!sink.count)
		*c = tmp;
	return sink.count;
}

int config_parse_string(struct config *c, const char *text, const char *filename,
                        char *err, size_t errlen)
{
	struct config_first f = { err, errlen, false };
	return config_parse_string_all(c, text, filename, config_keep_first, &f) ? -1 : 0;
}

/* Applies every valid override to c; errors go to sink. */
static void config_env_into(struct config *c, config_getenv_fn getenv_fn, void *getenv_arg,
                            struct config_sink *sink)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		const struct config_key *k = &config_keys[i];
		char name[64];
		int n = snprintf(name, sizeof name, "DROPSHIP_%s_%s", k->section, k->name);
		for (int j = 0; j < n && name[j]; j++)
			name[j] = (char)toupper((unsigned char)name[j]);
		const char *value = getenv_fn(name, getenv_arg);
		if (!value)
			continue;
		char why[160];
		if (config_set(c, k, value, why, sizeof why) < 0)
			config_report(sink, 0, k, "environment %s: %s", name, why);
	}
}

int config_apply_env_all(struct config *c, config_getenv_fn getenv_fn, void *getenv_arg,
                         config_error_fn fn, void *arg)
{
	struct config_sink sink = { .fn = fn, .arg = arg };
	struct config tmp = *c;
	config_env_into(&tmp, getenv_fn, getenv_arg, &sink);
	if (!sink.count)
		*c = tmp;
	return sink.count;
}

int config_apply_env(struct config *c, config_getenv_fn getenv_fn, void *arg,
                     char *err, size_t errlen)
{
	struct config_first f = { err, errlen, false };
	return config_apply_env_all(c, getenv_fn, arg, config_keep_first, &f) ? -1 : 0;
}

/* Finds the listen value's host (without brackets) and port; NULL, or why
 * it is not host:port or [v6]:port. */
static const char *config_listen_parts(const char *listen, const char **host, size_t *hostlen,
                                       const char **port)
{
	const char *colon;
	if (listen[0] == '[') {
		const char *end = strchr(listen, ']');
		if (!end || end == listen + 1)
			return "IPv6 address must be written as [address]:port";
		if (end[1] != ':')
			return "expected host:port";
		*host = listen + 1;
		*hostlen = (size_t)(end - listen - 1);
		colon = end + 1;
	} else {
		colon = strchr(listen, ':');
		if (!colon)
			return "expected host:port";
		if (strchr(colon + 1, ':'))
			return "IPv6 address must be written as [address]:port";
		*host = listen;
		*hostlen = (size_t)(colon - listen);
	}
	*port = colon + 1;
	return NULL;
}

/* host:port or [v6]:port; an empty host binds every interface. */
static const char *config_check_listen(const char *listen)
{
	const char *host, *port;
	size_t hostlen;
	const char *why = config_listen_parts(listen, &host, &hostlen, &port);
	if (why)
		return why;
	size_t plen = strlen(port);
	if (plen == 0 || plen > 5 || strspn(port, "0123456789") != plen || strtol(port, NULL, 10) > 65535)
		return "port must be a number from 0 to 65535";
	return NULL;
}

int config_listen_split(const char *listen, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *h, *p;
	size_t hlen;
	if (config_check_listen(listen) || config_listen_parts(listen, &h, &hlen, &p))
		return -1;
	size_t plen = strlen(p);
	if (hlen >= hostlen || plen >= portlen)
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	memcpy(port, p, plen + 1);
	return 0;
}

static const char *config_check_listen_or_empty(const char *listen)
{
	return *listen ? config_check_listen(listen) : NULL;
}

static const char *config_check_not_empty(const char *value)
{
	return *value ? NULL : "must not be empty";
}

/* Shopify names its Admin API versions after the quarter they are
 * released in: YYYY-01, -04, -07, -10. */
static const char *config_check_api_version(const char *value)
{
	static const char *const months[] = { "01", "04", "07", "10" };
	if (strlen(value) == 7 && strspn(value, "0123456789") == 4 && value[4] == '-')
		for (size_t i = 0; i < sizeof months / sizeof months[0]; i++)
			if (strcmp(value + 5, months[i]) == 0)
				return NULL;
	return "must be YYYY-MM with MM one of 01, 04, 07, 10";
}

/* Whether two hosts of listen values can take the same address: the same
 * text, or a host binding every interface ("", "::"; "0.0.0.0" every
 * IPv4 one). */
static bool config_hosts_overlap(const char *a, const char *b)
{
	if (strcmp(a, b) == 0 || !*a || !*b || strcmp(a, "::") == 0 || strcmp(b, "::") == 0)
		return true;
	return (strcmp(a, "0.0.0.0") == 0 && !strchr(b, ':')) || (strcmp(b, "0.0.0.0") == 0 && !strchr(a, ':'));
}

/* Whether two listen values would bind the same address and port (port 0
 * picks a free port: never the same). */
static bool config_listen_overlap(const char *a, const char *b)
{
	char ha[256], pa[8], hb[256], pb[8];
	if (config_listen_split(a, ha, sizeof ha, pa, sizeof pa) < 0 ||
	    config_listen_split(b, hb, sizeof hb, pb, sizeof pb) < 0)
		return false;
	long port = strtol(pa, NULL, 10);
	return port != 0 && port == strtol(pb, NULL, 10) && config_hosts_overlap(ha, hb);
}

/* Whether the key was in error earlier in this load. */
static bool config_bad(const struct config_sink *sink, const char *section, const char *name)
{
	const struct config_key *k = config_find(section, name);
	return k && sink->bad[k - config_keys];
}

/* Every key's own rule, then the rules between keys; errors go to sink. */
static void config_check_into(const struct config *c, struct config_sink *sink)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		const struct config_key *k = &config_keys[i];
		if (sink->bad[i])
			continue; /* reported where it was set; the value kept is an earlier one */
		const char *field = (const char *)c + k->offset;
		long n = k->type == CONFIG_T_INT ? *(const int *)(const void *)field
		       : k->type == CONFIG_T_LONG ? *(const long *)(const void *)field : 0;
		char why[160];
		if (config_value_ok(k, n, field, why, sizeof why) < 0)
			config_report(sink, 0, k, "[%s] %s: %s", k->section, k->name, why);
	}
	if (!config_bad(sink, "dispatch", "backoff_base_ms") && !config_bad(sink, "dispatch", "backoff_max_ms") &&
	    c->dispatch.backoff_base_ms > c->dispatch.backoff_max_ms)
		config_report(sink, 0, config_find("dispatch", "backoff_base_ms"),
		              "[dispatch] backoff_base_ms: must not exceed backoff_max_ms");
	/* With reuse_port the kernel would share connections between the two. */
	if (!config_bad(sink, "admin", "listen") && !config_bad(sink, "server", "listen") &&
	    config_listen_overlap(c->admin.listen, c->server.listen))
		config_report(sink, 0, config_find("admin", "listen"),
		              "[admin] listen: same address and port as [server] listen");
}

int config_validate_all(const struct config *c, config_error_fn fn, void *arg)
{
	struct config_sink sink = { .fn = fn, .arg = arg };
	config_check_into(c, &sink);
	return sink.count;
}

int config_validate(const struct config *c, char *err, size_t errlen)
{
	struct config_first f = { err, errlen, false };
	return config_validate_all(c, config_keep_first, &f) ? -1 : 0;
}

int config_diff(const struct config *a, const struct config *b, config_diff_fn fn, void *arg)
{
	int n = 0;
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		const struct config_key *k = &config_keys[i];
		const char *fa = (const char *)a + k->offset, *fb = (const char *)b + k->offset;
		/* A string's bytes after its end may differ and mean nothing. */
		bool same = k->type == CONFIG_T_STR ? strncmp(fa, fb, k->size) == 0 : memcmp(fa, fb, k->size) == 0;
		if (same)
			continue;
		n++;
		if (fn)
			fn(k->section, k->name, k->live, arg);
	}
	return n;
}

/* Reads the whole file as one NUL-terminated string; NULL with the reason in why. */
static char *config_read_file(const char *path, char *why_buf, size_t whylen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		config_err(why_buf, whylen, "%s", strerror(errno));
		return NULL;
	}
	char *text = NULL;
	size_t len = 0, cap = 0;
	const char *why = NULL;
	for (;;) {
		if (cap - len < 2) {
			size_t bigger = cap ? cap * 2 : 4096;
			if (bigger > CONFIG_FILE_MAX) {
				why = "file too large";
				break;
			}
			text = mem_realloc(text, bigger);
			cap = bigger;
		}
		errno = 0;
		size_t got = fread(text + len, 1, cap - 1 - len, f);
		len += got;
		if (got == 0) {
			if (ferror(f))
				why = strerror(errno ? errno : EIO);
			break;
		}
	}
	fclose(f);
	if (text)
		text[len] = '\0';
	if (!why && strlen(text) != len)
		why = "contains a NUL byte";
	if (why) {
		config_err(why_buf, whylen, "%s", why);
		if (text)
			explicit_bzero(text, len);
		free(text);
		return NULL;
	}
	return text;
}

static const char *config_process_getenv(const char *name, void *arg)
{
	(void)arg;
	return getenv(name);
}

int config_load_all(struct config *c, const char *path, config_error_fn fn, void *arg)
{
	struct config_sink sink = { .fn = fn, .arg = arg };
	config_defaults(c);
	if (path) {
		char why[256];
		char *text = config_read_file(path, why, sizeof why);
		if (!text) {
			config_report(&sink, 0, NULL, "%s: cannot read: %s", path, why);
			return -1;
		}
		config_parse_into(c, text, path, &sink);
		/* The text holds the admin token and maybe a database password. */
		explicit_bzero(text, strlen(text));
		free(text);
	}
	config_env_into(c, config_process_getenv, NULL, &sink);
	config_check_into(c, &sink);
	return sink.count;
}

int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	struct config_first f = { err, errlen, false };
	return config_load_all(c, path, config_keep_first, &f) ? -1 : 0;
}
