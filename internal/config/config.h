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
		int workers;                   /* 0 = one per CPU core */
		char tls_cert[CONFIG_STR_MAX];
		char tls_key[CONFIG_STR_MAX];
		long max_body_bytes;           /* default 1048576 */
		int read_timeout_ms;           /* idle read timeout, default 10000 */
		int request_timeout_ms;        /* total time to receive one request, default 30000 */
		long max_header_bytes;         /* default 16384 */
		int max_connections;           /* per process, default 10000 */
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
	} dispatch;
	struct {
		char token[256];               /* empty disables /v1/admin */
	} admin;
};

/* Looks up an environment variable; returns NULL when unset. */
typedef const char *(*config_getenv_fn)(const char *name, void *arg);

/* Fills every field with its default. */
void config_defaults(struct config *c);

/* Parses INI text (filename is used only in messages) over the current
 * values of c. Unknown sections/keys and bad values fail with
 * "FILE:LINE: [section] key: reason" in err. Returns 0 or -1. */
int config_parse_string(struct config *c, const char *text, const char *filename,
                        char *err, size_t errlen);

/* Applies DROPSHIP_<SECTION>_<KEY> overrides found through getenv_fn.
 * Bad values fail with "environment DROPSHIP_X_Y: reason". Returns 0 or -1. */
int config_apply_env(struct config *c, config_getenv_fn getenv_fn, void *arg,
                     char *err, size_t errlen);

/* Cross-field checks (e.g. listen has a port, tls files set). Returns 0 or -1. */
int config_validate(const struct config *c, char *err, size_t errlen);

/* defaults + file (path may be NULL: defaults only) + process environment + validate. */
int config_load(struct config *c, const char *path, char *err, size_t errlen);

#endif
