/* config: the dropshipd/dropshipctl INI file (docs/config.md), with
 * DROPSHIP_<SECTION>_<KEY> environment overrides. Parsing is pure: text in,
 * struct out; only config_load() touches the file system and environment. */
#ifndef DROPSHIP_CONFIG_H
#define DROPSHIP_CONFIG_H
#include <stdbool.h>
#include <stddef.h>

#define CONFIG_STR_MAX 1024

struct config {
	struct {
		char listen[256];              /* host:port; port 0 = any free port */
		bool reuse_port;               /* several processes may share listen; default false */
		int workers;                   /* 0 = one per CPU core */
		char tls_cert[CONFIG_STR_MAX];
		char tls_key[CONFIG_STR_MAX];
		long max_body_bytes;           /* default 1048576 */
		int read_timeout_ms;           /* idle read timeout, default 10000 */
		int request_timeout_ms;        /* total time to receive one request, default 30000 */
		long max_header_bytes;         /* default 16384 */
		int max_connections;           /* per process, default 10000 */
		int max_connections_per_ip;    /* open connections of one client address, default 256 */
		char log_level[16];            /* debug|info|warn|error, default info */
	} server;
	struct {
		char url[CONFIG_STR_MAX];      /* libpq connection string or URI */
		int pool_size;                 /* connections per worker, default 4 */
		int group_commit_us;           /* window for orders to share a transaction,
		                                * 0..2000, default 1000; 0 = no grouping wait */
	} database;
	struct {
		int timeout_ms;                /* default 10000 */
		int max_attempts;              /* default 12 */
		int backoff_base_ms;           /* default 1000 */
		int backoff_max_ms;            /* default 600000 */
		char tls_ca_file[CONFIG_STR_MAX]; /* empty = system default */
		bool allow_private_endpoints;  /* default false */
		int max_inflight;              /* messages in flight per worker, default 64 */
		int poll_ms;                   /* safety-net poll of the outbox, default 1000 */
		int breaker_threshold;         /* consecutive failures that open a supplier's breaker, default 5 */
		int breaker_cooldown_ms;       /* open breaker's wait before a probe, default 30000 */
	} dispatch;
	struct {
		char listen[256];              /* host:port of /metrics and /v1/admin; empty = the main listener */
		char token[256];               /* empty disables /v1/admin */
	} admin;
	struct {
		char shopify_api_version[16];  /* YYYY-MM, default 2026-10 */
	} platforms;
	struct {
		int window_s;                  /* supplier scorecard window, default 2592000 (30 days) */
		int refresh_ms;                /* how often dropshipd recounts it, default 60000 */
		int prior_weight;              /* requests the prior counts as, default 10 */
		int prior_acceptance_pct;      /* prior's mean acceptance rate, default 90 */
		int prior_on_time_pct;         /* prior's mean on-time rate, default 90 */
	} score;
};

/* Looks up an environment variable; returns NULL when unset. */
typedef const char *(*config_getenv_fn)(const char *name, void *arg);

/* One error found in a configuration. Messages name where the problem is
 * and what is wrong, never the value (it may be a token or a password). */
struct config_error {
	const char *msg;        /* "FILE:LINE: [section] key: reason", "environment NAME: reason",
	                         * "[section] key: reason" (checks of the result) or
	                         * "FILE: cannot read: reason" */
	int line;               /* line of the file; 0 when the error is not about a line */
	const char *section;    /* the known key at fault ("server", "listen"), static strings; */
	const char *key;        /* both NULL for syntax errors, unknown sections and keys, unreadable files */
};

/* Receives one error; e and e->msg are valid only during the call. */
typedef void (*config_error_fn)(const struct config_error *e, void *arg);

/* Fills every field with its default. */
void config_defaults(struct config *c);

/* Parses INI text (filename is used only in messages) over the current
 * values of c. Reports every error of the text through fn, in line order:
 * syntax, line too long, unknown section or key, key outside a section,
 * bad value, key set twice. c changes only when there is none. Returns
 * the number of errors. */
int config_parse_string_all(struct config *c, const char *text, const char *filename,
                            config_error_fn fn, void *arg);

/* The same, keeping only the first error's message in err. Returns 0 or -1. */
int config_parse_string(struct config *c, const char *text, const char *filename,
                        char *err, size_t errlen);

/* Applies DROPSHIP_<SECTION>_<KEY> overrides found through getenv_fn, in
 * the order of the keys in docs/config.md. Reports every bad value as
 * "environment DROPSHIP_X_Y: reason"; c changes only when there is none.
 * Returns the number of errors. */
int config_apply_env_all(struct config *c, config_getenv_fn getenv_fn, void *getenv_arg,
                         config_error_fn fn, void *arg);

/* The same, keeping only the first error's message in err. Returns 0 or -1. */
int config_apply_env(struct config *c, config_getenv_fn getenv_fn, void *arg,
                     char *err, size_t errlen);

/* Checks a configuration built by any means: every value against its own
 * rule (range, format), then the rules between keys (e.g. backoff_base_ms
 * at most backoff_max_ms). Reports each failure as "[section] key: reason".
 * Returns the number of errors. */
int config_validate_all(const struct config *c, config_error_fn fn, void *arg);

/* The same, keeping only the first error's message in err. Returns 0 or -1. */
int config_validate(const struct config *c, char *err, size_t errlen);

/* Defaults, then the file (path may be NULL: defaults only), then the
 * process environment, then the checks between keys. Reports every error
 * through fn: the file's in line order, then the environment's, then the
 * checks' (a check between keys is skipped when one of its keys was in
 * error). Returns the number of errors (0: c is ready to use), or -1 when
 * the file cannot be read (reported as the one error). With errors, c
 * holds every value that was valid (the defaults elsewhere) so that a
 * caller can check further; it is not a configuration to run with. */
int config_load_all(struct config *c, const char *path, config_error_fn fn, void *arg);

/* The same, keeping only the first error's message in err. Returns 0 or -1. */
int config_load(struct config *c, const char *path, char *err, size_t errlen);

/* Receives one key whose value differs between two configurations: live
 * when a running server takes the new value (on SIGHUP), false when the
 * change needs a restart. section and key are static strings. */
typedef void (*config_diff_fn)(const char *section, const char *key, bool live, void *arg);

/* Calls fn for each key whose value differs between a and b, in the order
 * of docs/config.md, and returns how many differ. Live keys: every
 * [dispatch] key, [admin] token, [server] log_level. No value is passed:
 * admin.token and database.url are secrets and may only be named. */
int config_diff(const struct config *a, const struct config *b, config_diff_fn fn, void *arg);

/* Splits a listen value of the form config_validate accepts ("host:port",
 * "[v6]:port", ":port") into its host (brackets removed; empty = every
 * interface) and port. Returns 0, or -1 when it is not of that form or a
 * part does not fit. */
int config_listen_split(const char *listen, char *host, size_t hostlen, char *port, size_t portlen);

#endif
