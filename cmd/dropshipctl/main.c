/* dropshipctl: the admin CLI. Talks to PostgreSQL directly with blocking
 * libpq: applies migrations, manages stores, makes webhook secrets. */
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "config/config.h"
#include "migrate/migrate.h"
#include "sig/sig.h"
#include "version/version.h"

#define CTL_PROG "dropshipctl"
#define CTL_MAX_SECRETS 8          /* stores.secrets allows 1..8 */
#define CTL_SECRET_MAX 256         /* bytes, any format */
#define CTL_URL_MAX 2048
#define CTL_NEW_KEY_BYTES 32       /* what `secret new` generates */
#define CTL_NATIVE_KEY_MIN 16
#define CTL_NATIVE_KEY_MAX 64

/* Exit codes of contract section 1. */
enum { CTL_OK = 0, CTL_FAIL = 1, CTL_USAGE = 2 };

struct ctl {
	const char *config_path;       /* -c FILE, or NULL: defaults + environment */
	struct config cfg;
};

struct ctl_store_opts {
	const char *code;
	const char *secrets[CTL_MAX_SECRETS];
	size_t nsecrets;
	const char *format;            /* NULL = keep (or default on create) */
	const char *policy;            /* likewise */
	const char *split;             /* split tolerance percent, as given */
	const char *callback;          /* "" clears it */
};

static void ctl_usage(FILE *f)
{
	fprintf(f,
	        "usage: " CTL_PROG " [-c FILE] COMMAND [ARGS...]\n"
	        "\n"
	        "Admin CLI for dropship. Talks to PostgreSQL directly, using [database] url\n"
	        "of the configuration (or DROPSHIP_DATABASE_URL, any libpq connection string).\n"
	        "\n"
	        "options:\n"
	        "  -c, --config FILE   configuration file (INI). Without it: defaults and\n"
	        "                      DROPSHIP_<SECTION>_<KEY> environment variables.\n"
	        "  -h, --help          this help\n"
	        "  -V, --version       print the version\n"
	        "\n"
	        "commands:\n"
	        "  migrate [--dir DIR] [--sql-dir DIR]\n"
	        "      Apply pending migrations (NNNN_name.sql) in order, each once and in its\n"
	        "      own transaction, under an advisory lock; then recreate the views of the\n"
	        "      sql/ directory next to DIR. Refuses to run when an applied file changed.\n"
	        "      DIR: --dir, else $DROPSHIP_MIGRATIONS_DIR, else <binary>/../migrations,\n"
	        "      else <binary>/../share/dropship/migrations, else ./migrations.\n"
	        "      --sql-dir: else $DROPSHIP_SQL_DIR, else DIR/../sql when it exists.\n"
	        "\n"
	        "  store add CODE [--secret S]... [--format native|shopify|woocommerce]\n"
	        "                 [--policy cheapest|fastest|priority] [--split-tolerance PCT]\n"
	        "                 [--callback-url URL]\n"
	        "      Create a store, or update one: only the options given change.\n"
	        "      --secret            webhook secret; repeat for several valid at once\n"
	        "                          (key rotation, at most %d). Required on create.\n"
	        "                          Native: whsec_<base64 of 16..64 bytes>; shopify and\n"
	        "                          woocommerce: the platform's secret (1..%d bytes).\n"
	        "                          Given on update, it replaces all stored secrets.\n"
	        "      --format            webhook format (default native)\n"
	        "      --policy            routing policy (default cheapest)\n"
	        "      --split-tolerance   cost tolerance in percent before an order is split\n"
	        "                          across suppliers, 0..1000 (default 10)\n"
	        "      --callback-url      https:// URL for order notifications; \"\" removes it\n"
	        "\n"
	        "  store list\n"
	        "      Print every store (secrets are counted, never shown).\n"
	        "\n"
	        "  secret new\n"
	        "      Print a fresh native secret: whsec_ + base64 of %d random bytes.\n"
	        "\n"
	        "exit codes: 0 success, 1 runtime failure (database, migration), 2 usage or\n"
	        "configuration error.\n"
	        "\n"
	        "examples:\n"
	        "  " CTL_PROG " -c config/dropshipd.conf migrate\n"
	        "  " CTL_PROG " -c config/dropshipd.conf store add demo --secret \"$(" CTL_PROG
	        " secret new)\"\n"
	        "  " CTL_PROG " store add demo --policy fastest --callback-url https://shop.example/hooks\n"
	        "  " CTL_PROG " store add shop2 --format shopify --secret SHOPIFY_SECRET\n"
	        "  " CTL_PROG " store list\n",
	        CTL_MAX_SECRETS, CTL_SECRET_MAX, CTL_NEW_KEY_BYTES);
}

/* One line on stderr; usage errors add the way to help. Returns code. */
__attribute__((format(printf, 2, 0)))
static int ctl_vreport(int code, const char *fmt, va_list ap)
{
	fputs(CTL_PROG ": ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs(code == CTL_USAGE ? "; see " CTL_PROG " --help\n" : "\n", stderr);
	return code;
}

/* Usage errors name the argument at fault. */
__attribute__((format(printf, 1, 2)))
static int ctl_usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = ctl_vreport(CTL_USAGE, fmt, ap);
	va_end(ap);
	return rc;
}

__attribute__((format(printf, 1, 2)))
static int ctl_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = ctl_vreport(CTL_FAIL, fmt, ap);
	va_end(ap);
	return rc;
}

/* A failed statement: PostgreSQL's message, plus what to do when the
 * schema is missing altogether. */
static int ctl_pg_fail(PGconn *conn, const PGresult *res, const char *what)
{
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	char buf[1024];
	snprintf(buf, sizeof buf, "%s", msg ? msg : PQerrorMessage(conn));
	buf[strcspn(buf, "\n")] = '\0';
	int undefined_table = state && strcmp(state, "42P01") == 0;
	return ctl_fail("%s: %s%s", what, buf,
	                undefined_table ? " (run `" CTL_PROG " migrate` first)" : "");
}

/* Matches argv[*i] as "--name VALUE" or "--name=VALUE". Returns 1 and
 * advances *i when it matched, 0 when argv[*i] is another argument, -1
 * (after printing a usage error) when the value is missing. */
static int ctl_opt(int argc, char **argv, int *i, const char *name, const char **val)
{
	const char *a = argv[*i];
	size_t n = strlen(name);
	if (strncmp(a, name, n) != 0)
		return 0;
	if (a[n] == '=') {
		*val = a + n + 1;
		return 1;
	}
	if (a[n] != '\0')
		return 0;
	if (*i + 1 >= argc) {
		ctl_usage_error("%s needs a value", name);
		return -1;
	}
	*val = argv[++*i];
	return 1;
}

/* An argument no command option matched. */
static int ctl_bad_arg(const char *cmd, const char *arg)
{
	if (strcmp(arg, "-c") == 0 || strcmp(arg, "--config") == 0 ||
	    strncmp(arg, "--config=", 9) == 0)
		return ctl_usage_error("%s: -c FILE goes before the command (" CTL_PROG
		                       " -c FILE %s ...)", cmd, cmd);
	if (arg[0] == '-')
		return ctl_usage_error("%s: unknown option '%s'", cmd, arg);
	return ctl_usage_error("%s: unexpected argument '%s'", cmd, arg);
}

/* Loads the configuration and connects. Returns CTL_OK with *out set, or
 * the exit code after printing why. */
static int ctl_connect(struct ctl *c, PGconn **out)
{
	char err[1024];
	*out = NULL;
	if (config_load(&c->cfg, c->config_path, err, sizeof err) < 0) {
		fprintf(stderr, CTL_PROG ": %s\n", err);
		return CTL_USAGE;
	}
	const char *keys[] = { "dbname", "fallback_application_name", NULL };
	const char *vals[] = { c->cfg.database.url, CTL_PROG, NULL };
	PGconn *conn = PQconnectdbParams(keys, vals, 1);
	if (!conn || PQstatus(conn) != CONNECTION_OK) {
		/* The URL itself is never printed: it may hold a password. */
		snprintf(err, sizeof err, "%s", conn ? PQerrorMessage(conn) : "out of memory");
		size_t n = strlen(err);
		while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
			err[--n] = '\0';
		PQfinish(conn);
		return ctl_fail("cannot connect to database (DROPSHIP_DATABASE_URL / [database] url): %s",
		                err);
	}
	*out = conn;
	return CTL_OK;
}

static int ctl_is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Folder holding this binary, or "" when /proc is not there. */
static void ctl_exe_dir(char *buf, size_t cap)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	buf[0] = '\0';
	if (n <= 0)
		return;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	snprintf(buf, cap, "%s", exe);
}

/* Canonical form of an existing folder, so messages name a plain path. */
static int ctl_pick_dir(const char *base, const char *rel, char *buf, size_t cap)
{
	char path[PATH_MAX], real[PATH_MAX];
	int n = snprintf(path, sizeof path, "%s/%s", base, rel);
	if (n < 0 || (size_t)n >= sizeof path || !ctl_is_dir(path) || !realpath(path, real))
		return 0;
	snprintf(buf, cap, "%s", real);
	return 1;
}

/* --dir, $DROPSHIP_MIGRATIONS_DIR, next to the binary (build tree, then
 * installed layout), else ./migrations. */
static void ctl_migrations_dir(const char *opt, char *buf, size_t cap)
{
	const char *env = getenv("DROPSHIP_MIGRATIONS_DIR");
	char exe[PATH_MAX];
	ctl_exe_dir(exe, sizeof exe);
	if (opt)
		snprintf(buf, cap, "%s", opt);
	else if (env && *env)
		snprintf(buf, cap, "%s", env);
	else if (!exe[0] || (!ctl_pick_dir(exe, "../migrations", buf, cap) &&
	                     !ctl_pick_dir(exe, "../share/dropship/migrations", buf, cap)))
		snprintf(buf, cap, "migrations");
}

/* --sql-dir, $DROPSHIP_SQL_DIR, else the sql/ folder beside the
 * migrations one. Returns 0 when there is none. */
static int ctl_sql_dir(const char *opt, const char *migrations, char *buf, size_t cap)
{
	const char *env = getenv("DROPSHIP_SQL_DIR");
	if (opt || (env && *env)) {
		snprintf(buf, cap, "%s", opt ? opt : env);
		return 1;
	}
	return ctl_pick_dir(migrations, "../sql", buf, cap);
}

static int ctl_cmd_migrate(struct ctl *c, int argc, char **argv)
{
	const char *dir = NULL, *sql = NULL;
	for (int i = 0; i < argc; i++) {
		int m = ctl_opt(argc, argv, &i, "--dir", &dir);
		if (m == 0)
			m = ctl_opt(argc, argv, &i, "--sql-dir", &sql);
		if (m < 0)
			return CTL_USAGE;
		if (m == 0)
			return ctl_bad_arg("migrate", argv[i]);
	}
	char mdir[PATH_MAX], sdir[PATH_MAX], err[8192];
	ctl_migrations_dir(dir, mdir, sizeof mdir);
	int has_sql = ctl_sql_dir(sql, mdir, sdir, sizeof sdir);

	PGconn *conn;
	int rc = ctl_connect(c, &conn);
	if (rc != CTL_OK)
		return rc;
	if (migrate_run(conn, mdir, has_sql ? sdir : NULL, stdout, err, sizeof err) < 0)
		rc = ctl_fail("migrate: %s", err);
	PQfinish(conn);
	return rc;
}

static int ctl_one_of(const char *v, const char *const *allowed)
{
	for (; *allowed; allowed++)
		if (strcmp(v, *allowed) == 0)
			return 1;
	return 0;
}

static const char *const ctl_formats[] = { "native", "shopify", "woocommerce", NULL };
static const char *const ctl_policies[] = { "cheapest", "fastest", "priority", NULL };

/* Same rule as the stores.code CHECK: ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ */
static int ctl_code_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		int alnum = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
		if (!alnum && (i == 0 || (ch != '_' && ch != '.' && ch != '-')))
			return 0;
	}
	return 1;
}

/* Checks secret number idx (1-based) for format; the secret itself is
 * never echoed. Returns CTL_OK or CTL_USAGE. */
static int ctl_check_secret(const char *format, size_t idx, const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > CTL_SECRET_MAX)
		return ctl_usage_error("--secret #%zu: must be 1 to %d bytes (got %zu)", idx,
		                       CTL_SECRET_MAX, n);
	if (strcmp(format, "native") != 0)
		return CTL_OK;
	unsigned char key[SIG_KEY_MAX];
	int len = strncmp(s, "whsec_", 6) == 0 ? sig_secret_key(s, key, sizeof key) : -1;
	OPENSSL_cleanse(key, sizeof key);
	if (len < CTL_NATIVE_KEY_MIN || len > CTL_NATIVE_KEY_MAX)
		return ctl_usage_error("--secret #%zu: a native store's secret must be whsec_ followed "
		                       "by the base64 of %d to %d bytes (make one with `" CTL_PROG
		                       " secret new`)", idx, CTL_NATIVE_KEY_MIN, CTL_NATIVE_KEY_MAX);
	return CTL_OK;
}

static int ctl_url_ok(const char *u)
{
	if (strncmp(u, "https://", 8) != 0 || strlen(u) <= 8 || strlen(u) > CTL_URL_MAX)
		return 0;
	for (const unsigned char *p = (const unsigned char *)u; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return 0;
	return 1;
}

/* Everything that can be checked without the database. */
static int ctl_store_validate(const struct ctl_store_opts *o)
{
	if (!ctl_code_ok(o->code))
		return ctl_usage_error("store add: CODE '%s' must be 1-64 characters: letters, digits, "
		                       "'_', '.', '-', starting with a letter or digit", o->code);
	if (o->format && !ctl_one_of(o->format, ctl_formats))
		return ctl_usage_error("--format must be native, shopify or woocommerce (got '%s')",
		                       o->format);
	if (o->policy && !ctl_one_of(o->policy, ctl_policies))
		return ctl_usage_error("--policy must be cheapest, fastest or priority (got '%s')",
		                       o->policy);
	if (o->split) {
		char *end;
		long v = strtol(o->split, &end, 10);
		if (end == o->split || *end != '\0' || v < 0 || v > 1000)
			return ctl_usage_error("--split-tolerance must be a whole percent from 0 to 1000 "
			                       "(got '%s')", o->split);
	}
	if (o->callback && o->callback[0] && !ctl_url_ok(o->callback))
		return ctl_usage_error("--callback-url must be an https:// URL without spaces, at most "
		                       "%d bytes (got '%s')", CTL_URL_MAX, o->callback);
	/* Without --format the rules depend on the stored format, checked later. */
	for (size_t i = 0; i < o->nsecrets; i++) {
		int rc = ctl_check_secret(o->format ? o->format : "", i + 1, o->secrets[i]);
		if (rc != CTL_OK)
			return rc;
	}
	return CTL_OK;
}

static int ctl_store_parse(int argc, char **argv, struct ctl_store_opts *o)
{
	memset(o, 0, sizeof *o);
	for (int i = 0; i < argc; i++) {
		const char *secret = NULL;
		int m = ctl_opt(argc, argv, &i, "--secret", &secret);
		if (m == 0)
			m = ctl_opt(argc, argv, &i, "--format", &o->format);
		if (m == 0)
			m = ctl_opt(argc, argv, &i, "--policy", &o->policy);
		if (m == 0)
			m = ctl_opt(argc, argv, &i, "--split-tolerance", &o->split);
		if (m == 0)
			m = ctl_opt(argc, argv, &i, "--callback-url", &o->callback);
		if (m < 0)
			return CTL_USAGE;
		if (secret) {
			if (o->nsecrets == CTL_MAX_SECRETS)
				return ctl_usage_error("--secret: at most %d secrets per store", CTL_MAX_SECRETS);
			o->secrets[o->nsecrets++] = secret;
		} else if (m == 0 && (o->code || argv[i][0] == '-')) {
			return ctl_bad_arg("store add", argv[i]);
		} else if (m == 0) {
			o->code = argv[i];
		}
	}
	if (!o->code)
		return ctl_usage_error("store add: missing CODE (store add CODE --secret S ...)");
	return ctl_store_validate(o);
}

/* PostgreSQL array literal {"a","b"}: a bound value, quoted for the array parser. */
static void ctl_text_array(const char *const *v, size_t n, char *buf, size_t cap)
{
	size_t w = 0;
	buf[w++] = '{';
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf[w++] = ',';
		buf[w++] = '"';
		for (const char *p = v[i]; *p && w + 4 < cap; p++) {
			if (*p == '"' || *p == '\\')
				buf[w++] = '\\';
			buf[w++] = *p;
		}
		buf[w++] = '"';
	}
	buf[w++] = '}';
	buf[w] = '\0';
}

/* The format the store will have, from --format or the row locked by
 * SELECT ... FOR UPDATE; with rules that need the stored row. */
static int ctl_store_check_stored(const struct ctl_store_opts *o, const char *stored)
{
	const char *format = o->format ? o->format : stored ? stored : "native";
	if (!stored && o->nsecrets == 0)
		return ctl_usage_error("store add: --secret is required to create store '%s'", o->code);
	if (stored && o->format && strcmp(o->format, stored) != 0 && o->nsecrets == 0)
		return ctl_usage_error("--format: changing store '%s' from %s to %s needs new --secret "
		                       "values", o->code, stored, o->format);
	for (size_t i = 0; !o->format && i < o->nsecrets; i++) {
		int rc = ctl_check_secret(format, i + 1, o->secrets[i]);
		if (rc != CTL_OK)
			return rc;
	}
	return CTL_OK;
}

/* Writes only the given columns: an existing store (locked by the caller)
 * keeps the rest. A new one is an upsert in case another run created it
 * meanwhile; it always has secrets, so the NOT NULL holds. */
static int ctl_store_write(PGconn *conn, const struct ctl_store_opts *o, const char *secrets,
                           int exists, int *created)
{
	const char *cols[6], *vals[6];
	int n = 0;
	cols[n] = "code", vals[n++] = o->code;
	if (o->nsecrets)
		cols[n] = "secrets", vals[n++] = secrets;
	if (o->format)
		cols[n] = "format", vals[n++] = o->format;
	if (o->policy)
		cols[n] = "policy", vals[n++] = o->policy;
	if (o->split)
		cols[n] = "split_tolerance_pct", vals[n++] = o->split;
	if (o->callback)
		cols[n] = "callback_url", vals[n++] = o->callback[0] ? o->callback : NULL;

	char names[256] = "", places[64] = "", sets[512] = "updated_at = now()";
	for (int i = 0; i < n; i++) {
		size_t a = strlen(names), b = strlen(places), s = strlen(sets);
		snprintf(names + a, sizeof names - a, "%s%s", i ? ", " : "", cols[i]);
		snprintf(places + b, sizeof places - b, "%s$%d", i ? ", " : "", i + 1);
		if (i && exists)
			snprintf(sets + s, sizeof sets - s, ", %s = $%d", cols[i], i + 1);
		else if (i)
			snprintf(sets + s, sizeof sets - s, ", %s = EXCLUDED.%s", cols[i], cols[i]);
	}
	char sql[1024];
	if (exists)
		snprintf(sql, sizeof sql, "UPDATE stores SET %s WHERE code = $1 RETURNING false", sets);
	else
		snprintf(sql, sizeof sql, "INSERT INTO stores (%s) VALUES (%s) ON CONFLICT (code) "
		         "DO UPDATE SET %s RETURNING (xmax = 0)", names, places, sets);
	PGresult *res = PQexecParams(conn, sql, n, NULL, vals, NULL, NULL, 0);
	int rc = CTL_OK;
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		rc = ctl_pg_fail(conn, res, "store add");
	else
		*created = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return rc;
}

static int ctl_exec_ok(PGconn *conn, const char *sql, const char *what)
{
	PGresult *res = PQexec(conn, sql);
	int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? CTL_OK : ctl_pg_fail(conn, res, what);
	PQclear(res);
	return rc;
}

static int ctl_cmd_store_add(struct ctl *c, int argc, char **argv)
{
	struct ctl_store_opts o;
	int rc = ctl_store_parse(argc, argv, &o);
	if (rc != CTL_OK)
		return rc;

	char secrets[CTL_MAX_SECRETS * (2 * CTL_SECRET_MAX + 3) + 3];
	ctl_text_array(o.secrets, o.nsecrets, secrets, sizeof secrets);
	PGconn *conn = NULL;
	PGresult *res = NULL;
	int created = 0;
	rc = ctl_connect(c, &conn);
	if (rc != CTL_OK)
		goto cleanup;
	rc = ctl_exec_ok(conn, "BEGIN", "store add");
	if (rc != CTL_OK)
		goto cleanup;
	const char *params[] = { o.code };
	res = PQexecParams(conn, "SELECT format FROM stores WHERE code = $1 FOR UPDATE", 1, NULL,
	                   params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = ctl_pg_fail(conn, res, "store add");
		goto cleanup;
	}
	int exists = PQntuples(res) == 1;
	rc = ctl_store_check_stored(&o, exists ? PQgetvalue(res, 0, 0) : NULL);
	if (rc != CTL_OK)
		goto cleanup;
	rc = ctl_store_write(conn, &o, secrets, exists, &created);
	if (rc == CTL_OK)
		rc = ctl_exec_ok(conn, "COMMIT", "store add");
	if (rc == CTL_OK)
		printf("store %s %s\n", o.code, created ? "created" : "updated");
cleanup:
	/* A failed transaction is rolled back by PQfinish closing the session. */
	PQclear(res);
	PQfinish(conn);
	OPENSSL_cleanse(secrets, sizeof secrets);
	return rc;
}

static int ctl_cmd_store_list(struct ctl *c, int argc, char **argv)
{
	if (argc > 0)
		return ctl_bad_arg("store list", argv[0]);
	PGconn *conn;
	int rc = ctl_connect(c, &conn);
	if (rc != CTL_OK)
		return rc;
	PGresult *res = PQexec(conn,
	                       "SELECT code, format, policy, split_tolerance_pct::text,"
	                       " cardinality(secrets)::text, coalesce(callback_url, '-'),"
	                       " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
	                       " FROM stores ORDER BY code");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = ctl_pg_fail(conn, res, "store list");
		goto cleanup;
	}
	static const char *const head[] = { "CODE", "FORMAT", "POLICY", "SPLIT%", "SECRETS",
	                                    "CALLBACK_URL", "CREATED_AT" };
	enum { ncols = sizeof head / sizeof head[0] };
	int width[ncols];
	for (int col = 0; col < ncols; col++) {
		width[col] = (int)strlen(head[col]);
		for (int row = 0; row < PQntuples(res); row++)
			if (PQgetlength(res, row, col) > width[col])
				width[col] = PQgetlength(res, row, col);
	}
	for (int row = -1; row < PQntuples(res); row++)
		for (int col = 0; col < ncols; col++) {
			const char *v = row < 0 ? head[col] : PQgetvalue(res, row, col);
			if (col + 1 < ncols)
				printf("%-*s  ", width[col], v);
			else
				printf("%s\n", v);
		}
	if (PQntuples(res) == 0)
		printf("(no stores; add one with `" CTL_PROG " store add CODE --secret S`)\n");
cleanup:
	PQclear(res);
	PQfinish(conn);
	return rc;
}

static int ctl_cmd_secret_new(struct ctl *c, int argc, char **argv)
{
	(void)c;
	if (argc > 0)
		return ctl_bad_arg("secret new", argv[0]);
	unsigned char key[CTL_NEW_KEY_BYTES];
	unsigned char b64[4 * ((CTL_NEW_KEY_BYTES + 2) / 3) + 1];
	if (RAND_bytes(key, sizeof key) != 1)
		return ctl_fail("secret new: no random bytes from OpenSSL");
	EVP_EncodeBlock(b64, key, sizeof key);
	printf("whsec_%s\n", (const char *)b64);
	OPENSSL_cleanse(key, sizeof key);
	OPENSSL_cleanse(b64, sizeof b64);
	return CTL_OK;
}

struct ctl_cmd {
	const char *group;             /* first word */
	const char *name;              /* second word, or NULL for one-word commands */
	int (*run)(struct ctl *c, int argc, char **argv); /* gets the words after the command */
};

static const struct ctl_cmd ctl_cmds[] = {
	{ "migrate", NULL, ctl_cmd_migrate },
	{ "store", "add", ctl_cmd_store_add },
	{ "store", "list", ctl_cmd_store_list },
	{ "secret", "new", ctl_cmd_secret_new },
	{ NULL, NULL, NULL },
};

static int ctl_dispatch(struct ctl *c, int argc, char **argv)
{
	const char *group = argv[0], *name = argc > 1 ? argv[1] : "";
	int known_group = 0;
	for (const struct ctl_cmd *cmd = ctl_cmds; cmd->group; cmd++) {
		if (strcmp(cmd->group, group) != 0)
			continue;
		known_group = 1;
		if (!cmd->name)
			return cmd->run(c, argc - 1, argv + 1);
		if (strcmp(cmd->name, name) == 0)
			return cmd->run(c, argc - 2, argv + 2);
	}
	if (!known_group)
		return ctl_usage_error("unknown command '%s'", group);
	char names[128] = "";
	for (const struct ctl_cmd *cmd = ctl_cmds; cmd->group; cmd++)
		if (strcmp(cmd->group, group) == 0) {
			size_t n = strlen(names);
			snprintf(names + n, sizeof names - n, "%s%s %s", n ? ", " : "", group, cmd->name);
		}
	if (!*name)
		return ctl_usage_error("%s: missing subcommand (%s)", group, names);
	return ctl_usage_error("%s: unknown subcommand '%s' (%s)", group, name, names);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl c = { .config_path = NULL };
	int opt;
	/* "+": options stop at the command, whose own options come after it. */
	while ((opt = getopt_long(argc, argv, "+c:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': c.config_path = optarg; break;
		case 'h': ctl_usage(stdout); return CTL_OK;
		case 'V': printf(CTL_PROG " %s\n", DROPSHIP_VERSION); return CTL_OK;
		default:
			fputs(CTL_PROG ": see " CTL_PROG " --help\n", stderr);
			return CTL_USAGE;
		}
	}
	if (optind >= argc)
		return ctl_usage_error("missing command (migrate, store add, store list, secret new)");
	return ctl_dispatch(&c, argc - optind, argv + optind);
}
