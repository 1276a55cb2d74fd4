#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "support/harness.h"

/* A configuration with every key of the original example and its comments. */
static const char documented_example[] =
	"[server]\n"
	"listen = 127.0.0.1:8443        ; host:port, TLS only\n"
	"reuse_port = false             ; true: several processes may share listen\n"
	"workers = 0                    ; 0 = one per CPU core\n"
	"tls_cert = var/tls/server.crt\n"
	"tls_key = var/tls/server.key\n"
	"max_body_bytes = 1048576\n"
	"read_timeout_ms = 10000        ; a client that sends nothing for this long is closed\n"
	"max_connections_per_ip = 256   ; open connections of one client address\n"
	"\n"
	"[database]\n"
	"url = postgresql:///dropship?host=/abs/path/var/pg&port=5432\n"
	"pool_size = 4                  ; connections per worker\n"
	"\n"
	"[dispatch]\n"
	"timeout_ms = 10000             ; per outbound request\n"
	"max_attempts = 12\n"
	"backoff_base_ms = 1000\n"
	"backoff_max_ms = 600000\n"
	"tls_ca_file =                  ; CA bundle for supplier/store endpoints; empty = system default\n"
	"allow_private_endpoints = false ; true only in dev/test (docs/dispatch.md)\n"
	"max_inflight = 64              ; messages in flight per worker\n"
	"poll_ms = 1000\n"
	"breaker_threshold = 5\n"
	"breaker_cooldown_ms = 30000\n"
	"\n"
	"[admin]\n"
	"listen = 127.0.0.1:8444        ; /metrics and /v1/admin; empty = on the main listener\n"
	"token =                        ; bearer token for /v1/admin/*; empty disables the admin API\n"
	"\n"
	"[platforms]\n"
	"shopify_api_version = 2026-10\n";

/* Name/value pairs standing in for the process environment. */
struct fake_env {
	const char *pairs[8][2];
};

static const char *fake_getenv(const char *name, void *arg)
{
	const struct fake_env *env = arg;
	for (size_t i = 0; i < 8 && env->pairs[i][0]; i++)
		if (strcmp(env->pairs[i][0], name) == 0)
			return env->pairs[i][1];
	return NULL;
}

static char err[512];

/* Parses text over the defaults; returns parse's result, message in err. */
static int parse(struct config *c, const char *text)
{
	config_defaults(c);
	err[0] = '\0';
	return config_parse_string(c, text, "test.conf", err, sizeof err);
}

/* Asserts that text fails to parse with exactly the message want. */
static void parse_fails(const char *text, const char *want)
{
	struct config c;
	CU_ASSERT_EQUAL(parse(&c, text), -1);
	CU_ASSERT_STRING_EQUAL(err, want);
	if (strcmp(err, want) != 0)
		fprintf(stderr, "\n    got  '%s'\n    want '%s'\n", err, want);
}

static void test_defaults(void)
{
	struct config c;
	config_defaults(&c);
	CU_ASSERT_STRING_EQUAL(c.server.listen, "127.0.0.1:8443");
	CU_ASSERT_EQUAL(c.server.workers, 0);
	CU_ASSERT_STRING_EQUAL(c.server.tls_cert, "var/tls/server.crt");
	CU_ASSERT_STRING_EQUAL(c.server.tls_key, "var/tls/server.key");
	CU_ASSERT_EQUAL(c.server.max_body_bytes, 1048576);
	CU_ASSERT_EQUAL(c.server.read_timeout_ms, 10000);
	CU_ASSERT_EQUAL(c.server.request_timeout_ms, 30000);
	CU_ASSERT_EQUAL(c.server.max_header_bytes, 16384);
	CU_ASSERT_EQUAL(c.server.max_connections, 10000);
	CU_ASSERT_STRING_EQUAL(c.server.log_level, "info");
	CU_ASSERT_STRING_EQUAL(c.database.url, "postgresql:///dropship");
	CU_ASSERT_EQUAL(c.database.pool_size, 4);
	CU_ASSERT_EQUAL(c.database.group_commit_us, 1000);
	CU_ASSERT_EQUAL(c.dispatch.timeout_ms, 10000);
	CU_ASSERT_EQUAL(c.dispatch.max_attempts, 12);
	CU_ASSERT_EQUAL(c.dispatch.backoff_base_ms, 1000);
	CU_ASSERT_EQUAL(c.dispatch.backoff_max_ms, 600000);
	CU_ASSERT_STRING_EQUAL(c.dispatch.tls_ca_file, "");
	CU_ASSERT_FALSE(c.dispatch.allow_private_endpoints);
	CU_ASSERT_STRING_EQUAL(c.admin.token, "");
	CU_ASSERT_FALSE(c.server.reuse_port);
	CU_ASSERT_EQUAL(c.server.max_connections_per_ip, 256);
	CU_ASSERT_EQUAL(c.dispatch.max_inflight, 64);
	CU_ASSERT_EQUAL(c.dispatch.poll_ms, 1000);
	CU_ASSERT_EQUAL(c.dispatch.breaker_threshold, 5);
	CU_ASSERT_EQUAL(c.dispatch.breaker_cooldown_ms, 30000);
	CU_ASSERT_STRING_EQUAL(c.admin.listen, "127.0.0.1:8444");
	CU_ASSERT_STRING_EQUAL(c.platforms.shopify_api_version, "2026-10");
	CU_ASSERT_EQUAL(c.score.window_s, 2592000);
	CU_ASSERT_EQUAL(c.score.refresh_ms, 300000);
	CU_ASSERT_EQUAL(c.score.prior_weight, 10);
	CU_ASSERT_EQUAL(c.score.prior_acceptance_pct, 90);
	CU_ASSERT_EQUAL(c.score.prior_on_time_pct, 90);
	CU_ASSERT_EQUAL(config_validate(&c, err, sizeof err), 0);
}

static void test_documented_example(void)
{
	struct config c;
	CU_ASSERT_EQUAL(parse(&c, documented_example), 0);
	CU_ASSERT_STRING_EQUAL(err, "");
	CU_ASSERT_STRING_EQUAL(c.server.listen, "127.0.0.1:8443");
	CU_ASSERT_EQUAL(c.server.workers, 0);
	CU_ASSERT_STRING_EQUAL(c.server.tls_cert, "var/tls/server.crt");
	CU_ASSERT_EQUAL(c.server.read_timeout_ms, 10000);
	CU_ASSERT_STRING_EQUAL(c.database.url,
	                       "postgresql:///dropship?host=/abs/path/var/pg&port=5432");
	CU_ASSERT_EQUAL(c.database.pool_size, 4);
	CU_ASSERT_EQUAL(c.dispatch.backoff_max_ms, 600000);
	CU_ASSERT_STRING_EQUAL(c.dispatch.tls_ca_file, "");
	CU_ASSERT_FALSE(c.dispatch.allow_private_endpoints);
	CU_ASSERT_STRING_EQUAL(c.admin.token, "");
	CU_ASSERT_STRING_EQUAL(c.admin.listen, "127.0.0.1:8444");
	CU_ASSERT_EQUAL(c.server.max_connections_per_ip, 256);
	CU_ASSERT_EQUAL(c.dispatch.max_inflight, 64);
	CU_ASSERT_STRING_EQUAL(c.platforms.shopify_api_version, "2026-10");
	CU_ASSERT_EQUAL(config_validate(&c, err, sizeof err), 0);
}

static void test_all_keys_set(void)
{
	struct config c;
	CU_ASSERT_EQUAL(parse(&c,
		"[server]\nlisten = [::1]:0\nworkers = 256\ntls_cert = /c\ntls_key = /k\n"
		"max_body_bytes = 1073741824\nread_timeout_ms = 1\nrequest_timeout_ms = 3600000\n"
		"max_header_bytes = 1024\nmax_connections = 1000000\nlog_level = error\n"
		"max_connections_per_ip = 1000000\nreuse_port = yes\n"
		"[database]\nurl = dbname=x\npool_size = 64\n"
		"[dispatch]\ntimeout_ms = 5\nmax_attempts = 1000\nbackoff_base_ms = 7\n"
		"backoff_max_ms = 7\ntls_ca_file = /ca.pem\nallow_private_endpoints = on\n"
		"max_inflight = 10000\npoll_ms = 60000\nbreaker_threshold = 1000\nbreaker_cooldown_ms = 3600000\n"
		"[admin]\ntoken = t0ken\nlisten = [::1]:0\n"
		"[platforms]\nshopify_api_version = 2027-01\n"
		"[score]\nwindow_s = 31536000\nrefresh_ms = 100\nprior_weight = 1000000\n"
		"prior_acceptance_pct = 0\nprior_on_time_pct = 100\n"), 0);
	CU_ASSERT_EQUAL(c.score.window_s, 31536000);
	CU_ASSERT_EQUAL(c.score.refresh_ms, 100);
	CU_ASSERT_EQUAL(c.score.prior_weight, 1000000);
	CU_ASSERT_EQUAL(c.score.prior_acceptance_pct, 0);
	CU_ASSERT_EQUAL(c.score.prior_on_time_pct, 100);
	CU_ASSERT_STRING_EQUAL(c.server.listen, "[::1]:0");
	CU_ASSERT_EQUAL(c.server.workers, 256);
	CU_ASSERT_STRING_EQUAL(c.server.tls_cert, "/c");
	CU_ASSERT_STRING_EQUAL(c.server.tls_key, "/k");
	CU_ASSERT_EQUAL(c.server.max_body_bytes, 1073741824L);
	CU_ASSERT_EQUAL(c.server.read_timeout_ms, 1);
	CU_ASSERT_EQUAL(c.server.request_timeout_ms, 3600000);
	CU_ASSERT_EQUAL(c.server.max_header_bytes, 1024);
	CU_ASSERT_EQUAL(c.server.max_connections, 1000000);
	CU_ASSERT_STRING_EQUAL(c.server.log_level, "error");
	CU_ASSERT_STRING_EQUAL(c.database.url, "dbname=x");
	CU_ASSERT_EQUAL(c.database.pool_size, 64);
	CU_ASSERT_EQUAL(c.dispatch.timeout_ms, 5);
	CU_ASSERT_EQUAL(c.dispatch.max_attempts, 1000);
	CU_ASSERT_EQUAL(c.dispatch.backoff_base_ms, 7);
	CU_ASSERT_EQUAL(c.dispatch.backoff_max_ms, 7);
	CU_ASSERT_STRING_EQUAL(c.dispatch.tls_ca_file, "/ca.pem");
	CU_ASSERT_TRUE(c.dispatch.allow_private_endpoints);
	CU_ASSERT_STRING_EQUAL(c.admin.token, "t0ken");
	CU_ASSERT_EQUAL(c.server.max_connections_per_ip, 1000000);
	CU_ASSERT_TRUE(c.server.reuse_port);
	CU_ASSERT_EQUAL(c.dispatch.max_inflight, 10000);
	CU_ASSERT_EQUAL(c.dispatch.poll_ms, 60000);
	CU_ASSERT_EQUAL(c.dispatch.breaker_threshold, 1000);
	CU_ASSERT_EQUAL(c.dispatch.breaker_cooldown_ms, 3600000);
	CU_ASSERT_STRING_EQUAL(c.admin.listen, "[::1]:0");
	CU_ASSERT_STRING_EQUAL(c.platforms.shopify_api_version, "2027-01");
	CU_ASSERT_EQUAL(config_validate(&c, err, sizeof err), 0);
}

static void test_inline_comments(void)
{
	struct config c;
	CU_ASSERT_EQUAL(parse(&c,
		"# hash comment line\n"
		"; semicolon comment line\n"
		"[server] ; the server\n"
		"workers = 4 ; four\n"
		"log_level = debug;not a comment without a space before it\n"
		"[admin]\n"
		"token = abc;def\n"
		"[dispatch]\n"
		"tls_ca_file =   ; empty value\n"), -1);
	/* "debug;not..." is one value, and not a known level. */
	CU_ASSERT_STRING_EQUAL(err, "test.conf:5: [server] log_level: too long (at most 15 bytes)");

	CU_ASSERT_EQUAL(parse(&c,
		"[server] ; the server\n"
		"workers = 4 ; four\n"
		"log_level = warn    ; quieter\n"
		"[admin]\n"
		"token = abc;def\n"
		"[dispatch]\n"
		"tls_ca_file =   ; empty value\n"), 0);
	CU_ASSERT_EQUAL(c.server.workers, 4);
	CU_ASSERT_STRING_EQUAL(c.server.log_level, "warn");
	CU_ASSERT_STRING_EQUAL(c.admin.token, "abc;def");
	CU_ASSERT_STRING_EQUAL(c.dispatch.tls_ca_file, "");
}

static void test_crlf_and_blank_lines(void)
{
	struct config c;
	CU_ASSERT_EQUAL(parse(&c, "\r\n[server]\r\nworkers = 3\r\n\r\n[database]\r\nurl = x\r\n"), 0);
	CU_ASSERT_EQUAL(c.server.workers, 3);
	CU_ASSERT_STRING_EQUAL(c.database.url, "x");
	CU_ASSERT_EQUAL(parse(&c, ""), 0);
	CU_ASSERT_EQUAL(parse(&c, "[server]\nworkers = 5"), 0); /* no final newline */
	CU_ASSERT_EQUAL(c.server.workers, 5);
}

static void test_unknown_section(void)
{
	parse_fails("[server]\nworkers = 1\n\n[serverx]\nfoo = 1\n",
	            "test.conf:4: [serverx]: unknown section");
	/* Reported even when nothing follows it. */
	parse_fails("[server]\nworkers = 1\n[Server]\n", "test.conf:3: [Server]: unknown section");
	parse_fails("workers = 1\n[server]\n", "test.conf:1: workers: key outside any section");
}

static void test_unknown_key(void)
{
	parse_fails("[server]\nlisten = 127.0.0.1:1\n; note\nlisen = 127.0.0.1:2\n",
	            "test.conf:4: [server] lisen: unknown key");
	/* A key of another section. */
	parse_fails("[database]\nurl = x\nworkers = 2\n", "test.conf:3: [database] workers: unknown key");
}

static void test_bad_int(void)
{
	static const char *const bad[] = { "four", "4x", "+4", "0x10", "4.0", "", " -", "4 4" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char text[128];
		snprintf(text, sizeof text, "[server]\nlisten = :1\nworkers = %s\n", bad[i]);
		parse_fails(text, "test.conf:3: [server] workers: not an integer");
	}
}

static void test_out_of_range(void)
{
	parse_fails("[server]\nworkers = 257\n", "test.conf:2: [server] workers: out of range (0..256)");
	parse_fails("[server]\nworkers = -1\n", "test.conf:2: [server] workers: out of range (0..256)");
	parse_fails("[server]\nworkers = 99999999999999999999999\n",
	            "test.conf:2: [server] workers: out of range (0..256)");
	parse_fails("[database]\ngroup_commit_us = 2001\n",
	            "test.conf:2: [database] group_commit_us: out of range (0..2000)");
	parse_fails("[database]\npool_size = 0\n",
	            "test.conf:2: [database] pool_size: out of range (1..64)");
	parse_fails("[server]\nmax_body_bytes = 1023\n",
	            "test.conf:2: [server] max_body_bytes: out of range (1024..1073741824)");
	parse_fails("[server]\nmax_header_bytes = 1048577\n",
	            "test.conf:2: [server] max_header_bytes: out of range (1024..1048576)");
	parse_fails("[dispatch]\nmax_attempts = 1001\n",
	            "test.conf:2: [dispatch] max_attempts: out of range (1..1000)");
	parse_fails("[dispatch]\ntimeout_ms = 0\n",
	            "test.conf:2: [dispatch] timeout_ms: out of range (1..3600000)");
	parse_fails("[server]\nmax_connections_per_ip = 0\n",
	            "test.conf:2: [server] max_connections_per_ip: out of range (1..1000000)");
	parse_fails("[server]\nmax_connections_per_ip = 1000001\n",
	            "test.conf:2: [server] max_connections_per_ip: out of range (1..1000000)");
	parse_fails("[dispatch]\nmax_inflight = 10001\n",
	            "test.conf:2: [dispatch] max_inflight: out of range (1..10000)");
	parse_fails("[dispatch]\nmax_inflight = 0\n",
	            "test.conf:2: [dispatch] max_inflight: out of range (1..10000)");
	parse_fails("[dispatch]\npoll_ms = 99\n", "test.conf:2: [dispatch] poll_ms: out of range (100..60000)");
	parse_fails("[score]\nwindow_s = 0\n", "test.conf:2: [score] window_s: out of range (1..31536000)");
	parse_fails("[score]\nrefresh_ms = 99\n", "test.conf:2: [score] refresh_ms: out of range (100..3600000)");
	parse_fails("[score]\nprior_weight = -1\n",
	            "test.conf:2: [score] prior_weight: out of range (0..1000000)");
	parse_fails("[score]\nprior_acceptance_pct = 101\n",
	            "test.conf:2: [score] prior_acceptance_pct: out of range (0..100)");
	parse_fails("[score]\nprior_on_time_pct = -1\n",
	            "test.conf:2: [score] prior_on_time_pct: out of range (0..100)");
	parse_fails("[dispatch]\npoll_ms = 60001\n", "test.conf:2: [dispatch] poll_ms: out of range (100..60000)");
	parse_fails("[dispatch]\nbreaker_threshold = 1001\n",
	            "test.conf:2: [dispatch] breaker_threshold: out of range (1..1000)");
	parse_fails("[dispatch]\nbreaker_cooldown_ms = 0\n",
	            "test.conf:2: [dispatch] breaker_cooldown_ms: out of range (1..3600000)");
}

static void test_admin_listen(void)
{
	struct config c;
	CU_ASSERT_EQUAL(parse(&c, "[admin]\nlisten =\n"), 0); /* no listener of its own */
	CU_ASSERT_STRING_EQUAL(c.admin.listen, "");
	CU_ASSERT_EQUAL(config_validate(&c, err, sizeof err), 0);
	CU_ASSERT_EQUAL(parse(&c, "[admin]\nlisten = [::1]:9000\n"), 0);
	CU_ASSERT_STRING_EQUAL(c.admin.listen, "[::1]:9000");
	parse_fails("[admin]\nlisten = localhost\n", "test.conf:2: [admin] listen: expected host:port");
	parse_fails("[admin]\nlisten = 127.0.0.1:70000\n",
	            "test.conf:2: [admin] listen: port must be a number from 0 to 65535");

	/* Not the main listener's address: with reuse_port the two would share it. */
	static const char *const clash[][2] = {
		{ "127.0.0.1:8443", "127.0.0.1:8443" }, { ":8443", "127.0.0.1:8443" },
		{ "0.0.0.0:8443", "10.0.0.1:8443" }, { "[::]:8443", "127.0.0.1:8443" },
		{ "127.0.0.1:8443", "0.0.0.0:8443" }, { "[::1]:8443", "[::1]:8443" },
	};
	static const char *const apart[][2] = {
		{ "127.0.0.1:8443", "127.0.0.1:8444" }, { "127.0.0.1:0", "127.0.0.1:0" },
		{ "127.0.0.1:8443", "127.0.0.2:8443" }, { "0.0.0.0:8443", "[::1]:8443" },
		{ "127.0.0.1:8443", "" },
	};
	for (size_t i = 0; i < sizeof clash / sizeof clash[0]; i++) {
		config_defaults(&c);
		snprintf(c.server.listen, sizeof c.server.listen, "%s", clash[i][0]);
		snprintf(c.admin.listen, sizeof c.admin.listen, "%s", clash[i][1]);
		CU_ASSERT_EQUAL(config_validate(&c, err, sizeof err), -1);
		CU_ASSERT_STRING_EQUAL(err, "[admin] listen: same address and port as [server] listen");
	}
	for (size_t i = 0; i < sizeof apart / sizeof apart[0]; i++) {
		config_defaults(&c);
		snprintf(c.server.listen, sizeof c.server.listen, "%s", apart[i][0]);
		snprintf(c.admin.listen, sizeof c.admin.listen, "%s", apart[i][1]);
		CU_ASSERT_EQUAL(config_validate(&c, err, sizeof err), 0);
	}
}

static void test_shopify_api_version(void)
{
	static const char *const good[] = { "2026-10", "2025-01", "2024-04", "2027-07" };
	static const char *const bad[] = {
		"2026-02", "2026-1", "26-10", "2026-10-01", "2026/10", "abcd-10", "2026-1a", "2026-100",
		"2026-", "-2026-10", "",
	};
	struct config c;
	char text[128];
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		snprintf(text, sizeof text, "[platforms]\nshopify_api_version = %s\n", good[i]);
		CU_ASSERT_EQUAL(parse(&c, text), 0);
		CU_ASSERT_STRING_EQUAL(c.platforms.shopify_api_version, good[i]);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(text, sizeof text, "[platforms]\nshopify_api_version = %s\n", bad[i]);
		parse_fails(text, "test.conf:2: [platforms] shopify_api_version: "
		                  "must be YYYY-MM with MM one of 01, 04, 07, 10");
	}
	struct fake_env env = { { { "DROPSHIP_PLATFORMS_SHOPIFY_API_VERSION", "2026-04" },
	                          { "DROPSHIP_SERVER_REUSE_PORT", "on" } } };
	config_defaults(&c);
	CU_ASSERT_EQUAL(config_apply_env(&c, fake_getenv, &env, err, sizeof err), 0);
	CU_ASSERT_STRING_EQUAL(c.platforms.shopify_api_version, "2026-04");
	CU_ASSERT_TRUE(c.server.reuse_port);
}

static void test_bool(void)
{
	static const char *const yes[] = { "true", "yes", "on", "1", "TRUE", "Yes" };
	static const char *const no[] = { "false", "no", "off", "0", "False" };
	struct config c;
	char text[128];
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		snprintf(text, sizeof text, "[dispatch]\nallow_private_endpoints = %s\n", yes[i]);
		CU_ASSERT_EQUAL(parse(&c, text), 0);
		CU_ASSERT_TRUE(c.dispatch.allow_private_endpoints);
	}
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
		snprintf(text, sizeof text, "[dispatch]\nallow_private_endpoints = %s\n", no[i]);
		c.dispatch.allow_private_endpoints = true;
		CU_ASSERT_EQUAL(config_parse_string(&c, text, "test.conf", err, sizeof err), 0);
		CU_ASSERT_FALSE(c.dispatch.allow_private_endpoints);
	}
	parse_fails("[dispatch]\nallow_private_endpoints = maybe\n",
	            "test.conf:2: [dispatch] allow_private_endpoints: "
	            "not a boolean (true/false, yes/no, on/off, 1/0)");
	parse_fails("[dispatch]\nallow_private_endpoints =\n",
	            "test.conf:2: [dispatch] allow_private_endpoints: "
	            "not a boolean (true/false, yes/no, on/off, 1/0)");
}

static void test_log_level(void)
{
	struct config c;
	CU_ASSERT_EQUAL(parse(&c, "[server]\nlog_level = debug\n"), 0);
	CU_ASSERT_STRING_EQUAL(c.server.log_level, "debug");
	parse_fails("[server]\nlog_level = verbose\n",
	            "test.conf:2: [server] log_level: must be one of debug|info|warn|error");
	parse_fails("[server]\nlog_level = inf\n",
	            "test.conf:2: [server] log_level: must be one of debug|info|warn|error");
	parse_fails("[server]\nlog_level =\n",
	            "test.conf:2: [server] log_level: must be one of debug|info|warn|error");
}

static void test_too_long(void)
{
	parse_fails("[server]\nlog_level = debugdebugdebugdebug\n",
	            "test.conf:2: [server] log_level: too long (at most 15 bytes)");

	/* Longer than inih's line buffer: rejected, not cut into two lines. */
	char text[600];
	int n = snprintf(text, sizeof text, "[server]\ntls_cert = ");
	memset(text + n, 'a', 300);
	snprintf(text + n + 300, sizeof text - (size_t)n - 300, "\nworkers = 1\n");
	struct config c;
	CU_ASSERT_EQUAL(parse(&c, text), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "test.conf:2: line too long (at most "));
	CU_ASSERT_STRING_EQUAL(c.server.tls_cert, "var/tls/server.crt");
}

static void test_syntax_error(void)
{
	parse_fails("[server]\nworkers = 1\nthis is not ini\n", "test.conf:3: syntax error");
	parse_fails("[server]\nworkers = 1\n[database\nurl = x\n", "test.conf:3: syntax error");
	/* The first problem wins, whichever kind it is. */
	parse_fails("[server]\nnot ini\nworkers = x\n", "test.conf:2: syntax error");
	parse_fails("[server]\nworkers = x\nnot ini\n", "test.conf:2: [server] workers: not an integer");
}

static void test_duplicate_and_continuation(void)
{
	parse_fails("[server]\nworkers = 1\nworkers = 2\n",
	            "test.conf:3: [server] workers: set more than once (or an indented line follows it)");
	/* inih would read the indented key as the rest of listen's value. */
	parse_fails("[server]\nlisten = 127.0.0.1:1\n  workers = 2\n",
	            "test.conf:3: [server] listen: set more than once (or an indented line follows it)");
}

static void test_failed_parse_changes_nothing(void)
{
	struct config c;
	CU_ASSERT_EQUAL(parse(&c, "[server]\nworkers = 7\nlisten = :9\nmax_connections = 0\n"), -1);
	CU_ASSERT_EQUAL(c.server.workers, 0);
	CU_ASSERT_STRING_EQUAL(c.server.listen, "127.0.0.1:8443");
}

static void test_parse_over_current_values(void)
{
	struct config c;
	CU_ASSERT_EQUAL(parse(&c, "[server]\nworkers = 7\n"), 0);
	CU_ASSERT_EQUAL(config_parse_string(&c, "[database]\npool_size = 2\n", "b.conf", err,
	                                    sizeof err), 0);
	CU_ASSERT_EQUAL(c.server.workers, 7);
	CU_ASSERT_EQUAL(c.database.pool_size, 2);
}

static void test_env_override(void)
{
	struct fake_env env = { {
		{ "DROPSHIP_DATABASE_URL", "postgresql:///other?host=/tmp" },
		{ "DROPSHIP_SERVER_WORKERS", "8" },
		{ "DROPSHIP_DISPATCH_ALLOW_PRIVATE_ENDPOINTS", "yes" },
		{ "DROPSHIP_ADMIN_TOKEN", "" },
		{ "DROPSHIP_WORKERS", "9" }, /* not a key: ignored */
	} };
	struct config c;
	CU_ASSERT_EQUAL(parse(&c, "[server]\nworkers = 2\n[admin]\ntoken = x\n"), 0);
	CU_ASSERT_EQUAL(config_apply_env(&c, fake_getenv, &env, err, sizeof err), 0);
	CU_ASSERT_STRING_EQUAL(c.database.url, "postgresql:///other?host=/tmp");
	CU_ASSERT_EQUAL(c.server.workers, 8);
	CU_ASSERT_TRUE(c.dispatch.allow_private_endpoints);
	CU_ASSERT_STRING_EQUAL(c.admin.token, "");
	CU_ASSERT_EQUAL(c.database.pool_size, 4);
}

static void test_env_bad_value(void)
{
	struct fake_env env = { {
		{ "DROPSHIP_SERVER_WORKERS", "8" },
		{ "DROPSHIP_DATABASE_POOL_SIZE", "lots" },
	} };
	struct config c;
	config_defaults(&c);
	CU_ASSERT_EQUAL(config_apply_env(&c, fake_getenv, &env, err, sizeof err), -1);
	CU_ASSERT_STRING_EQUAL(err, "environment DROPSHIP_DATABASE_POOL_SIZE: not an integer");
	CU_ASSERT_EQUAL(c.server.workers, 0); /* nothing applied */

	struct fake_env env2 = { { { "DROPSHIP_SERVER_LOG_LEVEL", "loud" } } };
	CU_ASSERT_EQUAL(config_apply_env(&c, fake_getenv, &env2, err, sizeof err), -1);
	CU_ASSERT_STRING_EQUAL(err, "environment DROPSHIP_SERVER_LOG_LEVEL: must be one of "
	                            "debug|info|warn|error");
}

static void test_secrets_stay_out_of_messages(void)
{
	char big[400];
	memset(big, 'S', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	struct fake_env env = { { { "DROPSHIP_ADMIN_TOKEN", big } } };
	struct config c;
	config_defaults(&c);
	CU_ASSERT_EQUAL(config_apply_env(&c, fake_getenv, &env, err, sizeof err), -1);
	CU_ASSERT_STRING_EQUAL(err, "environment DROPSHIP_ADMIN_TOKEN: too long (at most 255 bytes)");

	char url[1200];
	snprintf(url, sizeof url, "postgresql://u:hunter2@h/db?x=%01100d", 0);
	struct fake_env env2 = { { { "DROPSHIP_DATABASE_URL", url } } };
	CU_ASSERT_EQUAL(config_apply_env(&c, fake_getenv, &env2, err, sizeof err), -1);
	CU_ASSERT_STRING_EQUAL(err, "environment DROPSHIP_DATABASE_URL: too long (at most 1023 bytes)");

	parse_fails("[admin]\ntoken = hunter2\ntoken = hunter2\n",
	            "test.conf:3: [admin] token: set more than once (or an indented line follows it)");
}

static void test_env_string_too_long(void)
{
	char big[300];
	memset(big, '1', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	struct fake_env env = { { { "DROPSHIP_SERVER_LISTEN", big } } };
	struct config c;
	config_defaults(&c);
	CU_ASSERT_EQUAL(config_apply_env(&c, fake_getenv, &env, err, sizeof err), -1);
	CU_ASSERT_STRING_EQUAL(err, "environment DROPSHIP_SERVER_LISTEN: too long (at most 255 bytes)");
	CU_ASSERT_STRING_EQUAL(c.server.listen, "127.0.0.1:8443");
}

/* Validates defaults with listen replaced; returns the result. */
static int validate_listen(const char *listen)
{
	struct config c;
	config_defaults(&c);
	snprintf(c.server.listen, sizeof c.server.listen, "%s", listen);
	err[0] = '\0';
	return config_validate(&c, err, sizeof err);
}

static void test_validate_listen(void)
{
	static const char *const good[] = {
		"127.0.0.1:8443", "localhost:0", "[::1]:8443", "[::]:65535", ":8443", "0.0.0.0:1",
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		CU_ASSERT_EQUAL(validate_listen(good[i]), 0);

	CU_ASSERT_EQUAL(validate_listen("127.0.0.1"), -1);
	CU_ASSERT_STRING_EQUAL(err, "[server] listen: expected host:port");
	CU_ASSERT_EQUAL(validate_listen("[::1]"), -1);
	CU_ASSERT_STRING_EQUAL(err, "[server] listen: expected host:port");
	CU_ASSERT_EQUAL(validate_listen("::1:8443"), -1);
	CU_ASSERT_STRING_EQUAL(err, "[server] listen: IPv6 address must be written as [address]:port");
	CU_ASSERT_EQUAL(validate_listen("[]:8443"), -1);
	CU_ASSERT_STRING_EQUAL(err, "[server] listen: IPv6 address must be written as [address]:port");
	static const char *const bad_port[] = {
		"127.0.0.1:65536", "127.0.0.1:", "127.0.0.1:-1", "127.0.0.1:https", "127.0.0.1:000080",
		"[::1]:99999", "127.0.0.1: 80",
	};
	for (size_t i = 0; i < sizeof bad_port / sizeof bad_port[0]; i++) {
		CU_ASSERT_EQUAL(validate_listen(bad_port[i]), -1);
		CU_ASSERT_STRING_EQUAL(err, "[server] listen: port must be a number from 0 to 65535");
	}
}

static void test_validate_other(void)
{
	struct config c;
	config_defaults(&c);
	c.dispatch.backoff_base_ms = 600001;
	CU_ASSERT_EQUAL(config_validate(&c, err, sizeof err), -1);
	CU_ASSERT_STRING_EQUAL(err, "[dispatch] backoff_base_ms: must not exceed backoff_max_ms");
	c.dispatch.backoff_base_ms = c.dispatch.backoff_max_ms;
	CU_ASSERT_EQUAL(config_validate(&c, err, sizeof err), 0);

	config_defaults(&c);
	c.server.tls_cert[0] = '\0';
	CU_ASSERT_EQUAL(config_validate(&c, err, sizeof err), -1);
	CU_ASSERT_STRING_EQUAL(err, "[server] tls_cert: must not be empty");
	config_defaults(&c);
	c.server.tls_key[0] = '\0';
	CU_ASSERT_EQUAL(config_validate(&c, err, sizeof err), -1);
	CU_ASSERT_STRING_EQUAL(err, "[server] tls_key: must not be empty");
	config_defaults(&c);
	c.database.url[0] = '\0';
	CU_ASSERT_EQUAL(config_validate(&c, err, sizeof err), -1);
	CU_ASSERT_STRING_EQUAL(err, "[database] url: must not be empty");
}

/* Writes text to a fresh temporary file; path receives its name. */
static int write_temp(char *path, size_t cap, const char *text)
{
	snprintf(path, cap, "/tmp/dropship-test-config-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	size_t len = strlen(text);
	ssize_t w = write(fd, text, len);
	close(fd);
	return w == (ssize_t)len ? 0 : -1;
}

static void test_load(void)
{
	struct config c;
	char path[64];
	CU_ASSERT_EQUAL_FATAL(write_temp(path, sizeof path, documented_example), 0);
	setenv("DROPSHIP_SERVER_WORKERS", "3", 1);
	CU_ASSERT_EQUAL(config_load(&c, path, err, sizeof err), 0);
	CU_ASSERT_EQUAL(c.server.workers, 3);
	CU_ASSERT_EQUAL(c.dispatch.max_attempts, 12);
	CU_ASSERT_EQUAL(config_load(&c, NULL, err, sizeof err), 0);
	CU_ASSERT_EQUAL(c.server.workers, 3);
	setenv("DROPSHIP_SERVER_WORKERS", "300", 1);
	CU_ASSERT_EQUAL(config_load(&c, NULL, err, sizeof err), -1);
	CU_ASSERT_STRING_EQUAL(err, "environment DROPSHIP_SERVER_WORKERS: out of range (0..256)");
	unsetenv("DROPSHIP_SERVER_WORKERS");
	unlink(path);

	char want[160];
	CU_ASSERT_EQUAL_FATAL(write_temp(path, sizeof path, "[server]\nlisten = 127.0.0.1\n"), 0);
	CU_ASSERT_EQUAL(config_load(&c, path, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s:2: [server] listen: expected host:port", path);
	CU_ASSERT_STRING_EQUAL(err, want);
	unlink(path);

	CU_ASSERT_EQUAL_FATAL(write_temp(path, sizeof path, "[server]\n\nworker = 1\n"), 0);
	CU_ASSERT_EQUAL(config_load(&c, path, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s:3: [server] worker: unknown key", path);
	CU_ASSERT_STRING_EQUAL(err, want);
	unlink(path);

	CU_ASSERT_EQUAL(config_load(&c, path, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s: cannot read: No such file or directory", path);
	CU_ASSERT_STRING_EQUAL(err, want);

	CU_ASSERT_EQUAL(config_load(&c, "/tmp", err, sizeof err), -1);
	CU_ASSERT_STRING_EQUAL(err, "/tmp: cannot read: Is a directory");
}

/* Every error one call reported, in order. */
struct collected {
	int n;
	char msg[16][256];
	int line[16];
	char key[16][64];           /* "section.key", or "" when the error has no key */
};

static void collect(const struct config_error *e, void *arg)
{
	struct collected *col = arg;
	if (col->n >= 16)
		return;
	snprintf(col->msg[col->n], sizeof col->msg[0], "%s", e->msg);
	col->line[col->n] = e->line;
	if (e->section)
		snprintf(col->key[col->n], sizeof col->key[0], "%s.%s", e->section, e->key);
	else
		col->key[col->n][0] = '\0';
	col->n++;
}

/* Asserts that col holds exactly the messages of want (NULL-terminated), in order. */
static void collected_are(const struct collected *col, const char *const want[])
{
	int n = 0;
	for (; want[n]; n++) {
		const char *got = n < col->n ? col->msg[n] : "(none)";
		CU_ASSERT_STRING_EQUAL(got, want[n]);
		if (strcmp(got, want[n]) != 0)
			fprintf(stderr, "\n    error %d: got  '%s'\n             want '%s'\n", n, got, want[n]);
	}
	CU_ASSERT_EQUAL(col->n, n);
	for (int i = n; i < col->n; i++)
		fprintf(stderr, "\n    unexpected error: '%s'\n", col->msg[i]);
}

static void test_every_error_in_file(void)
{
	static const char text[] =
		"[server]\n"
		"workerz = 2\n"                         /* 2: unknown key */
		"max_body_bytes = 12\n"                 /* 3: out of range */
		"\n"
		"[database]\n"
		"pool_size = 4\n"
		"pool_size = 5\n"                       /* 7: set twice */
		"group_commit_us 500\n"                 /* 8: no '=' */
		"[dispatch]\n"
		"timeout_ms = 5000\n";
	struct config c;
	config_defaults(&c);
	struct collected col = { 0 };
	CU_ASSERT_EQUAL(config_parse_string_all(&c, text, "test.conf", collect, &col), 4);
	collected_are(&col, (const char *const[]){
		"test.conf:2: [server] workerz: unknown key",
		"test.conf:3: [server] max_body_bytes: out of range (1024..1073741824)",
		"test.conf:7: [database] pool_size: set more than once (or an indented line follows it)",
		"test.conf:8: syntax error",
		NULL,
	});
	CU_ASSERT_EQUAL(col.line[0], 2);
	CU_ASSERT_EQUAL(col.line[1], 3);
	CU_ASSERT_EQUAL(col.line[2], 7);
	CU_ASSERT_EQUAL(col.line[3], 8);
	/* The key at fault, when the error is about a known key. */
	CU_ASSERT_STRING_EQUAL(col.key[0], "");
	CU_ASSERT_STRING_EQUAL(col.key[1], "server.max_body_bytes");
	CU_ASSERT_STRING_EQUAL(col.key[2], "database.pool_size");
	CU_ASSERT_STRING_EQUAL(col.key[3], "");
	/* Nothing applied, not even the valid keys. */
	CU_ASSERT_EQUAL(c.dispatch.timeout_ms, 10000);

	/* The single-error function keeps the first. */
	CU_ASSERT_EQUAL(parse(&c, text), -1);
	CU_ASSERT_STRING_EQUAL(err, "test.conf:2: [server] workerz: unknown key");
}

/* Lines inih reads in ways worth pinning: each error is reported once, on
 * its own line, and the lines around it still count. */
static void test_every_syntax_error(void)
{
	static const char text[] =
		"\xEF\xBB\xBF[server]\n"                /* 1: a byte order mark is fine */
		"[server ; comment]\n"                  /* 2: the ';' starts a comment: no ']' */
		"workers ; = 2\n"                       /* 3: the same before '=' */
		"[serverx]\n"                           /* 4: unknown, reported once ... */
		"a = 1\n"
		"b = 2\n"                               /* ... not for each of its keys */
		"[admin] ; the admin API\n"
		"token: abc\n"                          /* ':' separates too */
		"  [database]\n"                        /* 9: indented: continues token */
		"[database\n"                           /* 10 */
		"url = x\n"                             /* 11: still in [admin] */
		"just words\n";                         /* 12 */
	struct config c;
	config_defaults(&c);
	struct collected col = { 0 };
	CU_ASSERT_EQUAL(config_parse_string_all(&c, text, "t", collect, &col), 7);
	collected_are(&col, (const char *const[]){
		"t:2: syntax error",
		"t:3: syntax error",
		"t:4: [serverx]: unknown section",
		"t:9: [admin] token: set more than once (or an indented line follows it)",
		"t:10: syntax error",
		"t:11: [admin] url: unknown key",
		"t:12: syntax error",
		NULL,
	});

	/* A long line is one error; the next line is read as usual. */
	char big[700];
	int n = snprintf(big, sizeof big, "[server]\ntls_cert = ");
	memset(big + n, 'a', 300);
	snprintf(big + n + 300, sizeof big - (size_t)n - 300, "\nworkers = x\n[nope]\n");
	memset(&col, 0, sizeof col);
	CU_ASSERT_EQUAL(config_parse_string_all(&c, big, "t", collect, &col), 3);
	collected_are(&col, (const char *const[]){
		"t:2: line too long (at most 198 characters)",
		"t:3: [server] workers: not an integer",
		"t:4: [nope]: unknown section",
		NULL,
	});
}

static void test_every_error_in_environment(void)
{
	struct fake_env env = { {
		{ "DROPSHIP_SERVER_LISTEN", "nowhere" },
		{ "DROPSHIP_SERVER_WORKERS", "8" },
		{ "DROPSHIP_DATABASE_URL", "" },
		{ "DROPSHIP_DISPATCH_MAX_ATTEMPTS", "0" },
	} };
	struct config c;
	config_defaults(&c);
	struct collected col = { 0 };
	CU_ASSERT_EQUAL(config_apply_env_all(&c, fake_getenv, &env, collect, &col), 3);
	collected_are(&col, (const char *const[]){
		"environment DROPSHIP_SERVER_LISTEN: expected host:port",
		"environment DROPSHIP_DATABASE_URL: must not be empty",
		"environment DROPSHIP_DISPATCH_MAX_ATTEMPTS: out of range (1..1000)",
		NULL,
	});
	CU_ASSERT_STRING_EQUAL(col.key[0], "server.listen");
	CU_ASSERT_EQUAL(col.line[0], 0);
	CU_ASSERT_EQUAL(c.server.workers, 0); /* nothing applied */
}

/* File errors in line order, then the environment's, then the checks between keys. */
static void test_load_reports_every_error(void)
{
	char path[64], want[4][160];
	CU_ASSERT_EQUAL_FATAL(write_temp(path, sizeof path,
		"[server]\nlisten = 127.0.0.1\nworkers = 1\n[dispatch]\nbackoff_base_ms = 700000\n"
		"max_attempts = many\n"), 0);
	setenv("DROPSHIP_DATABASE_POOL_SIZE", "65", 1);
	struct config c;
	struct collected col = { 0 };
	CU_ASSERT_EQUAL(config_load_all(&c, path, collect, &col), 4);
	snprintf(want[0], sizeof want[0], "%s:2: [server] listen: expected host:port", path);
	snprintf(want[1], sizeof want[1], "%s:6: [dispatch] max_attempts: not an integer", path);
	collected_are(&col, (const char *const[]){
		want[0], want[1],
		"environment DROPSHIP_DATABASE_POOL_SIZE: out of range (1..64)",
		"[dispatch] backoff_base_ms: must not exceed backoff_max_ms",
		NULL,
	});
	CU_ASSERT_STRING_EQUAL(col.key[3], "dispatch.backoff_base_ms");
	/* The valid values are there for a caller that checks further. */
	CU_ASSERT_EQUAL(c.server.workers, 1);
	CU_ASSERT_STRING_EQUAL(c.server.listen, "127.0.0.1:8443");
	unsetenv("DROPSHIP_DATABASE_POOL_SIZE");
	unlink(path);

	/* A check between keys is skipped when one of its keys was in error:
	 * backoff_max_ms was meant to be set, its default says nothing. */
	CU_ASSERT_EQUAL_FATAL(write_temp(path, sizeof path,
		"[dispatch]\nbackoff_base_ms = 700000\nbackoff_max_ms = 3600001\n"), 0);
	memset(&col, 0, sizeof col);
	CU_ASSERT_EQUAL(config_load_all(&c, path, collect, &col), 1);
	snprintf(want[2], sizeof want[2], "%s:3: [dispatch] backoff_max_ms: out of range (1..3600000)", path);
	collected_are(&col, (const char *const[]){ want[2], NULL });

	/* An unreadable file is the one error. */
	unlink(path);
	memset(&col, 0, sizeof col);
	CU_ASSERT_EQUAL(config_load_all(&c, path, collect, &col), -1);
	snprintf(want[3], sizeof want[3], "%s: cannot read: No such file or directory", path);
	collected_are(&col, (const char *const[]){ want[3], NULL });
}

static void test_validate_every_error(void)
{
	struct config c;
	config_defaults(&c);
	c.server.workers = 300;
	c.server.tls_key[0] = '\0';
	snprintf(c.server.log_level, sizeof c.server.log_level, "loud");
	c.dispatch.backoff_base_ms = 600001;
	struct collected col = { 0 };
	CU_ASSERT_EQUAL(config_validate_all(&c, collect, &col), 4);
	collected_are(&col, (const char *const[]){
		"[server] workers: out of range (0..256)",
		"[server] tls_key: must not be empty",
		"[server] log_level: must be one of debug|info|warn|error",
		"[dispatch] backoff_base_ms: must not exceed backoff_max_ms",
		NULL,
	});
}

static void test_listen_split(void)
{
	char host[64], port[8];
	CU_ASSERT_EQUAL(config_listen_split("127.0.0.1:8443", host, sizeof host, port, sizeof port), 0);
	CU_ASSERT_STRING_EQUAL(host, "127.0.0.1");
	CU_ASSERT_STRING_EQUAL(port, "8443");
	CU_ASSERT_EQUAL(config_listen_split("[::1]:0", host, sizeof host, port, sizeof port), 0);
	CU_ASSERT_STRING_EQUAL(host, "::1");
	CU_ASSERT_STRING_EQUAL(port, "0");
	CU_ASSERT_EQUAL(config_listen_split(":443", host, sizeof host, port, sizeof port), 0);
	CU_ASSERT_STRING_EQUAL(host, "");
	CU_ASSERT_STRING_EQUAL(port, "443");
	CU_ASSERT_EQUAL(config_listen_split("localhost", host, sizeof host, port, sizeof port), -1);
	CU_ASSERT_EQUAL(config_listen_split("localhost:99999", host, sizeof host, port, sizeof port), -1);
	CU_ASSERT_EQUAL(config_listen_split("example.com:1", host, 4, port, sizeof port), -1);
}

/* The keys config_diff reported, as "section.key:live|restart" joined by spaces. */
struct diffs {
	char text[512];
};

static void on_diff(const char *section, const char *key, bool live, void *arg)
{
	struct diffs *d = arg;
	size_t len = strlen(d->text);
	snprintf(d->text + len, sizeof d->text - len, "%s%s.%s:%s", len ? " " : "", section, key,
	         live ? "live" : "restart");
}

static void test_diff_each_key(void)
{
	/* Every key, a value other than its default, and whether it is live. */
	static const struct { const char *section, *key, *value; bool live; } keys[] = {
		{ "server", "listen", "127.0.0.1:9443", false },
		{ "server", "reuse_port", "true", false },
		{ "server", "workers", "3", false },
		{ "server", "tls_cert", "/c", true },
		{ "server", "tls_key", "/k", true },
		{ "server", "max_body_bytes", "2048", false },
		{ "server", "read_timeout_ms", "5", false },
		{ "server", "request_timeout_ms", "5", false },
		{ "server", "max_header_bytes", "2048", false },
		{ "server", "max_connections", "5", false },
		{ "server", "max_connections_per_ip", "5", false },
		{ "server", "log_level", "debug", true },
		{ "database", "url", "dbname=other", false },
		{ "database", "pool_size", "5", false },
		{ "database", "group_commit_us", "5", false },
		{ "dispatch", "timeout_ms", "5", true },
		{ "dispatch", "max_attempts", "5", true },
		{ "dispatch", "backoff_base_ms", "5", true },
		{ "dispatch", "backoff_max_ms", "5000", true },
		{ "dispatch", "tls_ca_file", "/ca.pem", true },
		{ "dispatch", "allow_private_endpoints", "on", true },
		{ "dispatch", "max_inflight", "5", true },
		{ "dispatch", "poll_ms", "500", true },
		{ "dispatch", "breaker_threshold", "9", true },
		{ "dispatch", "breaker_cooldown_ms", "5", true },
		{ "admin", "listen", "", false },
		{ "admin", "token", "s3cret", true },
		{ "platforms", "shopify_api_version", "2027-01", false },
		{ "score", "window_s", "60", false },
		{ "score", "refresh_ms", "500", false },
		{ "score", "prior_weight", "2", false },
		{ "score", "prior_acceptance_pct", "50", false },
		{ "score", "prior_on_time_pct", "50", false },
	};
	struct config base, c;
	config_defaults(&base);
	CU_ASSERT_EQUAL(config_diff(&base, &base, NULL, NULL), 0);
	/* Every key differs from bytes that are no value at all: a key missing
	 * from the table above fails here. */
	memset(&c, 0x55, sizeof c);
	CU_ASSERT_EQUAL(config_diff(&base, &c, NULL, NULL), (int)(sizeof keys / sizeof keys[0]));
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		char text[128], want[128];
		snprintf(text, sizeof text, "[%s]\n%s = %s\n", keys[i].section, keys[i].key, keys[i].value);
		CU_ASSERT_EQUAL_FATAL(parse(&c, text), 0);
		struct diffs d = { "" };
		CU_ASSERT_EQUAL(config_diff(&base, &c, on_diff, &d), 1);
		snprintf(want, sizeof want, "%s.%s:%s", keys[i].section, keys[i].key,
		         keys[i].live ? "live" : "restart");
		CU_ASSERT_STRING_EQUAL(d.text, want);
	}
}

static void test_diff_several_keys(void)
{
	struct config a, b;
	CU_ASSERT_EQUAL(parse(&a, "[admin]\ntoken = old\n[database]\nurl = postgresql://u:old@h/db\n"), 0);
	CU_ASSERT_EQUAL(parse(&b, "[server]\nworkers = 2\nlog_level = warn\n[database]\n"
	                          "url = postgresql://u:new@h/db\n[admin]\ntoken = new\n"), 0);
	struct diffs d = { "" };
	CU_ASSERT_EQUAL(config_diff(&a, &b, on_diff, &d), 4);
	/* In the order of the keys, not of the files; names only, never a value. */
	CU_ASSERT_STRING_EQUAL(d.text, "server.workers:restart server.log_level:live database.url:restart "
	                               "admin.token:live");

	/* What lies after a string's end is no difference. */
	config_defaults(&a);
	config_defaults(&b);
	memset(a.admin.token, 'x', sizeof a.admin.token);
	memset(b.admin.token, 'y', sizeof b.admin.token);
	a.admin.token[0] = b.admin.token[0] = '\0';
	CU_ASSERT_EQUAL(config_diff(&a, &b, on_diff, &d), 0);
}

static const struct harness_test tests[] = {
	{ "defaults", test_defaults },
	{ "documented example", test_documented_example },
	{ "every key set", test_all_keys_set },
	{ "inline comments", test_inline_comments },
	{ "CRLF, blank lines, no final newline", test_crlf_and_blank_lines },
	{ "unknown section", test_unknown_section },
	{ "unknown key", test_unknown_key },
	{ "bad integer", test_bad_int },
	{ "out of range", test_out_of_range },
	{ "admin listen", test_admin_listen },
	{ "shopify api version", test_shopify_api_version },
	{ "booleans", test_bool },
	{ "log level", test_log_level },
	{ "too long", test_too_long },
	{ "syntax error", test_syntax_error },
	{ "duplicate key and continuation line", test_duplicate_and_continuation },
	{ "failed parse changes nothing", test_failed_parse_changes_nothing },
	{ "parse over current values", test_parse_over_current_values },
	{ "environment override", test_env_override },
	{ "environment bad value", test_env_bad_value },
	{ "secrets stay out of messages", test_secrets_stay_out_of_messages },
	{ "environment string too long", test_env_string_too_long },
	{ "validate listen", test_validate_listen },
	{ "validate other", test_validate_other },
	{ "load", test_load },
	{ "every error of a file, in line order", test_every_error_in_file },
	{ "every syntax error", test_every_syntax_error },
	{ "every error of the environment", test_every_error_in_environment },
	{ "load: file, environment, then checks between keys", test_load_reports_every_error },
	{ "validate: every error", test_validate_every_error },
	{ "listen split", test_listen_split },
	{ "diff: each key, live or not", test_diff_each_key },
	{ "diff: several keys, no values", test_diff_several_keys },
	{ NULL, NULL },
};

int main(void)
{
	return harness_main("config", NULL, NULL, tests);
}
