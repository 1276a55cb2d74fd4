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

/* A config file larger than this is a mistake (wrong path), not a config. */
#define CONFIG_FILE_MAX (1024 * 1024)

enum config_type {
	CONFIG_T_INT,
	CONFIG_T_LONG,
	CONFIG_T_STR,
	CONFIG_T_BOOL,
};

/* One settable key; file parsing and environment overrides both go through it. */
struct config_key {
	const char *section;
	const char *name;
	enum config_type type;
	size_t offset;              /* of the field in struct config */
	size_t size;                /* of the field; for strings the buffer size */
	long min, max;              /* inclusive range of numbers */
	const char *choices;        /* allowed string values "a|b|c"; NULL = any */
};

/* The _Generic makes a table entry fail to compile if the field's type and
 * the declared key type disagree. */
#define CONFIG_FIELD(f) (((struct config *)0)->f)
#define CONFIG_INT(s, k, f, lo, hi) \
	{ s, k, CONFIG_T_INT, _Generic(CONFIG_FIELD(f), int: offsetof(struct config, f)), \
	  sizeof CONFIG_FIELD(f), lo, hi, NULL }
#define CONFIG_LONG(s, k, f, lo, hi) \
	{ s, k, CONFIG_T_LONG, _Generic(CONFIG_FIELD(f), long: offsetof(struct config, f)), \
	  sizeof CONFIG_FIELD(f), lo, hi, NULL }
#define CONFIG_STR(s, k, f, ch) \
	{ s, k, CONFIG_T_STR, _Generic(CONFIG_FIELD(f), char *: offsetof(struct config, f)), \
	  sizeof CONFIG_FIELD(f), 0, 0, ch }
#define CONFIG_BOOL(s, k, f) \
	{ s, k, CONFIG_T_BOOL, _Generic(CONFIG_FIELD(f), bool: offsetof(struct config, f)), \
	  sizeof CONFIG_FIELD(f), 0, 0, NULL }

#define CONFIG_MS_MAX 3600000L

static const struct config_key config_keys[] = {
	CONFIG_STR("server", "listen", server.listen, NULL),
	CONFIG_INT("server", "workers", server.workers, 0, 256),
	CONFIG_STR("server", "tls_cert", server.tls_cert, NULL),
	CONFIG_STR("server", "tls_key", server.tls_key, NULL),
	CONFIG_LONG("server", "max_body_bytes", server.max_body_bytes, 1024, 1073741824L),
	CONFIG_INT("server", "read_timeout_ms", server.read_timeout_ms, 1, CONFIG_MS_MAX),
	CONFIG_INT("server", "request_timeout_ms", server.request_timeout_ms, 1, CONFIG_MS_MAX),
	CONFIG_LONG("server", "max_header_bytes", server.max_header_bytes, 1024, 1048576L),
	CONFIG_INT("server", "max_connections", server.max_connections, 1, 1000000L),
	CONFIG_STR("server", "log_level", server.log_level, "debug|info|warn|error"),
	CONFIG_STR("database", "url", database.url, NULL),
	CONFIG_INT("database", "pool_size", database.pool_size, 1, 64),
	CONFIG_INT("database", "group_commit_us", database.group_commit_us, 0, 2000),
	CONFIG_INT("dispatch", "timeout_ms", dispatch.timeout_ms, 1, CONFIG_MS_MAX),
	CONFIG_INT("dispatch", "max_attempts", dispatch.max_attempts, 1, 1000),
	CONFIG_INT("dispatch", "backoff_base_ms", dispatch.backoff_base_ms, 1, CONFIG_MS_MAX),
	CONFIG_INT("dispatch", "backoff_max_ms", dispatch.backoff_max_ms, 1, CONFIG_MS_MAX),
	CONFIG_STR("dispatch", "tls_ca_file", dispatch.tls_ca_file, NULL),
	CONFIG_BOOL("dispatch", "allow_private_endpoints", dispatch.allow_private_endpoints),
	CONFIG_STR("admin", "token", admin.token, NULL),
};

#define CONFIG_NKEYS (sizeof config_keys / sizeof config_keys[0])

/* State shared by the line reader and the key handler during one parse. */
struct config_parse {
	struct config *c;
	const char *pos;              /* next unread byte of the text */
	int lineno;                   /* lines handed to inih = inih's current line */
	int err_line;                 /* line of the first error found by us; 0 = none */
	char err[160];                /* "[section] key: reason" for err_line */
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
			.workers = 0,
			.tls_cert = "var/tls/server.crt",
			.tls_key = "var/tls/server.key",
			.max_body_bytes = 1048576,
			.read_timeout_ms = 10000,
			.request_timeout_ms = 30000,
			.max_header_bytes = 16384,
			.max_connections = 10000,
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
		},
		.admin = { .token = "" },
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

/* Stores value into the key's field. Reasons never quote the value, so a
 * token or a password inside the database url cannot leak into a log. */
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
		if (v < k->min || v > k->max) {
			config_err(why, whylen, "out of range (%ld..%ld)", k->min, k->max);
			return -1;
		}
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
	case CONFIG_T_STR: {
		size_t len = strlen(value);
		if (len >= k->size) {
			config_err(why, whylen, "too long (at most %zu bytes)", k->size - 1);
			return -1;
		}
		if (k->choices && !config_choice_ok(k->choices, value, len)) {
			config_err(why, whylen, "must be one of %s", k->choices);
			return -1;
		}
		memcpy(field, value, len + 1);
		return 0;
	}
	}
	config_err(why, whylen, "unsupported key type");
	return -1;
}

static void config_parse_fail(struct config_parse *p, const char *section, const char *name,
                              const char *reason)
{
	if (p->err_line)
		return;
	p->err_line = p->lineno;
	if (*section)
		config_err(p->err, sizeof p->err, "[%s] %s: %s", section, name, reason);
	else
		config_err(p->err, sizeof p->err, "%s: %s", name, reason);
}

static int config_handler(void *arg, const char *section, const char *name, const char *value)
{
	struct config_parse *p = arg;
	if (p->err_line)
		return 1; /* only the first error is reported */
	const struct config_key *k = config_find(section, name);
	if (!k) {
		config_parse_fail(p, section, name,
		                  !*section ? "key outside any section"
		                  : config_section_known(section, strlen(section)) ? "unknown key"
		                                                                    : "unknown section");
		return 0;
	}
	size_t idx = (size_t)(k - config_keys);
	if (p->seen[idx]) {
		/* inih reports an indented line as a continuation of the previous key. */
		config_parse_fail(p, section, name,
		                  "set more than once (or an indented line follows it)");
		return 0;
	}
	p->seen[idx] = true;
	char why[128];
	if (config_set(p->c, k, value, why, sizeof why) < 0) {
		config_parse_fail(p, section, name, why);
		return 0;
	}
	return 1;
}

/* inih only calls the handler for keys, so an unknown section without keys
 * would pass silently; header lines are checked here as they go by. */
static void config_check_section_line(struct config_parse *p, const char *line, size_t len)
{
	while (len && isspace((unsigned char)*line))
		line++, len--;
	if (!len || *line != '[')
		return;
	const char *end = memchr(line, ']', len);
	if (!end)
		return; /* inih reports it as a syntax error */
	size_t nlen = (size_t)(end - line - 1);
	if (!config_section_known(line + 1, nlen) && !p->err_line) {
		p->err_line = p->lineno;
		config_err(p->err, sizeof p->err, "[%.*s]: unknown section", (int)nlen, line + 1);
	}
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
	if (len > (size_t)num - 2) {
		if (!p->err_line) {
			p->err_line = p->lineno;
			config_err(p->err, sizeof p->err, "line too long (at most %d characters)",
			           num - 2);
		}
		buf[0] = '\0';
		return buf;
	}
	config_check_section_line(p, line, len);
	memcpy(buf, line, len);
	buf[len] = '\n';
	buf[len + 1] = '\0';
	return buf;
}

int config_parse_string(struct config *c, const char *text, const char *filename,
                        char *err, size_t errlen)
{
	struct config tmp = *c;
	struct config_parse p = { .c = &tmp, .pos = text };
	int line = ini_parse_stream(config_reader, &p, config_handler, &p);
	/* inih returns the first line it failed on, ours included; an earlier
	 * line than ours is a line it could not parse at all. */
	if (line > 0 && (!p.err_line || line < p.err_line)) {
		config_err(err, errlen, "%s:%d: syntax error", filename, line);
		return -1;
	}
	if (line < 0)
		mem_oom();
	if (p.err_line) {
		config_err(err, errlen, "%s:%d: %s", filename, p.err_line, p.err);
		return -1;
	}
	*c = tmp;
	return 0;
}

int config_apply_env(struct config *c, config_getenv_fn getenv_fn, void *arg,
                     char *err, size_t errlen)
{
	struct config tmp = *c;
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		const struct config_key *k = &config_keys[i];
		char name[64];
		int n = snprintf(name, sizeof name, "DROPSHIP_%s_%s", k->section, k->name);
		for (int j = 0; j < n && name[j]; j++)
			name[j] = (char)toupper((unsigned char)name[j]);
		const char *value = getenv_fn(name, arg);
		if (!value)
			continue;
		char why[128];
		if (config_set(&tmp, k, value, why, sizeof why) < 0) {
			config_err(err, errlen, "environment %s: %s", name, why);
			return -1;
		}
	}
	*c = tmp;
	return 0;
}

/* host:port or [v6]:port; an empty host binds every interface. */
static const char *config_check_listen(const char *listen)
{
	const char *colon;
	if (listen[0] == '[') {
		const char *end = strchr(listen, ']');
		if (!end || end == listen + 1)
			return "IPv6 address must be written as [address]:port";
		if (end[1] != ':')
			return "expected host:port";
		colon = end + 1;
	} else {
		colon = strchr(listen, ':');
		if (!colon)
			return "expected host:port";
		if (strchr(colon + 1, ':'))
			return "IPv6 address must be written as [address]:port";
	}
	const char *port = colon + 1;
	size_t plen = strlen(port);
	if (plen == 0 || plen > 5 || strspn(port, "0123456789") != plen || strtol(port, NULL, 10) > 65535)
		return "port must be a number from 0 to 65535";
	return NULL;
}

int config_validate(const struct config *c, char *err, size_t errlen)
{
	const char *why = config_check_listen(c->server.listen);
	if (why) {
		config_err(err, errlen, "[server] listen: %s", why);
		return -1;
	}
	if (!c->server.tls_cert[0]) {
		config_err(err, errlen, "[server] tls_cert: must not be empty");
		return -1;
	}
	if (!c->server.tls_key[0]) {
		config_err(err, errlen, "[server] tls_key: must not be empty");
		return -1;
	}
	if (!c->database.url[0]) {
		config_err(err, errlen, "[database] url: must not be empty");
		return -1;
	}
	if (c->dispatch.backoff_base_ms > c->dispatch.backoff_max_ms) {
		config_err(err, errlen, "[dispatch] backoff_base_ms: must not exceed backoff_max_ms");
		return -1;
	}
	return 0;
}

/* Reads the whole file as one NUL-terminated string; NULL with err set. */
static char *config_read_file(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		config_err(err, errlen, "%s: cannot read: %s", path, strerror(errno));
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
		config_err(err, errlen, "%s: cannot read: %s", path, why);
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

int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	config_defaults(c);
	if (path) {
		char *text = config_read_file(path, err, errlen);
		if (!text)
			return -1;
		int rc = config_parse_string(c, text, path, err, errlen);
		/* The text holds the admin token and maybe a database password. */
		explicit_bzero(text, strlen(text));
		free(text);
		if (rc < 0)
			return -1;
	}
	if (config_apply_env(c, config_process_getenv, NULL, err, errlen) < 0)
		return -1;
	return config_validate(c, err, errlen);
}
