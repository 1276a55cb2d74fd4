/* Helpers the dropshipctl commands share (see ctl.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "catalog/catalog.h"
#include "ctl.h"
#include "order/order.h"
#include "sig/sig.h"

#define CTL_DURATION_MAX (365L * 86400)

/* A {"...",...} literal of CTL_MAX_SECRETS escaped secrets. */
#define CTL_SECRETS_TEXT (CTL_MAX_SECRETS * (2 * CTL_SECRET_MAX + 3) + 3)

/* One line on stderr; usage errors add the way to help. Returns code. */
__attribute__((format(printf, 2, 0)))
static int ctl_vreport(int code, const char *fmt, va_list ap)
{
	fputs(CTL_PROG ": ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs(code == CTL_USAGE ? "; see " CTL_PROG " --help\n" : "\n", stderr);
	return code;
}

int ctl_usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = ctl_vreport(CTL_USAGE, fmt, ap);
	va_end(ap);
	return rc;
}

int ctl_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = ctl_vreport(CTL_FAIL, fmt, ap);
	va_end(ap);
	return rc;
}

/* PostgreSQL's message, plus what to do when the schema is missing altogether. */
int ctl_pg_fail(PGconn *conn, const PGresult *res, const char *what)
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

int ctl_opt(int argc, char **argv, int *i, const char *name, const char **val)
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

int ctl_bad_arg(const char *cmd, const char *arg)
{
	if (strcmp(arg, "-c") == 0 || strcmp(arg, "--config") == 0 ||
	    strncmp(arg, "--config=", 9) == 0)
		return ctl_usage_error("%s: -c FILE goes before the command (" CTL_PROG
		                       " -c FILE %s ...)", cmd, cmd);
	if (arg[0] == '-' && arg[1] != '\0')
		return ctl_usage_error("%s: unknown option '%s'", cmd, arg);
	return ctl_usage_error("%s: unexpected argument '%s'", cmd, arg);
}

int ctl_connect(struct ctl *c, PGconn **out)
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
	/* Every time the commands print or put in JSON is in UTC. */
	int rc = ctl_exec_ok(conn, "SET TimeZone = 'UTC'", "cannot set the session's time zone");
	if (rc != CTL_OK) {
		PQfinish(conn);
		return rc;
	}
	*out = conn;
	return CTL_OK;
}

int ctl_exec_ok(PGconn *conn, const char *sql, const char *what)
{
	PGresult *res = PQexec(conn, sql);
	int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? CTL_OK : ctl_pg_fail(conn, res, what);
	PQclear(res);
	return rc;
}

int ctl_check_code(const char *cmd, const char *code)
{
	if (catalog_valid_code(code, strlen(code)))
		return CTL_OK;
	return ctl_usage_error("%s: CODE '%s' must be 1-64 characters: letters, digits, '_', "
	                       "'.', '-', starting with a letter or digit", cmd, code);
}

int ctl_parse_add(int argc, char **argv, const char *noun, const char *synopsis,
                  const struct ctl_optdef *opts, const char **code, struct ctl_secrets *secrets,
                  int *update)
{
	char cmd[32];
	snprintf(cmd, sizeof cmd, "%s add", noun);
	*code = NULL;
	*update = 0;
	secrets->n = 0;
	for (int i = 0; i < argc; i++) {
		const char *secret = NULL;
		if (strcmp(argv[i], "--update") == 0) {
			*update = 1;
			continue;
		}
		int m = ctl_opt(argc, argv, &i, "--secret", &secret);
		for (const struct ctl_optdef *o = opts; m == 0 && o->name; o++)
			m = ctl_opt(argc, argv, &i, o->name, o->val);
		if (m < 0)
			return CTL_USAGE;
		if (secret && secrets->n == CTL_MAX_SECRETS)
			return ctl_usage_error("--secret: at most %d secrets per %s", CTL_MAX_SECRETS, noun);
		if (secret)
			secrets->v[secrets->n++] = secret;
		else if (m == 0 && (*code || argv[i][0] == '-'))
			return ctl_bad_arg(cmd, argv[i]);
		else if (m == 0)
			*code = argv[i];
	}
	if (!*code)
		return ctl_usage_error("%s: missing CODE (%s)", cmd, synopsis);
	return ctl_check_code(cmd, *code);
}

int ctl_check_secret(const char *format, size_t idx, const char *s)
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
		return ctl_usage_error("--secret #%zu: must be whsec_ followed by the base64 of %d to "
		                       "%d bytes (make one with `" CTL_PROG " secret new`)", idx,
		                       CTL_NATIVE_KEY_MIN, CTL_NATIVE_KEY_MAX);
	return CTL_OK;
}

/* The secrets as a PostgreSQL array literal {"a","b"}, quoted for the
 * array parser: a value bound like any other. */
static void ctl_secrets_text(const struct ctl_secrets *s, char *buf, size_t cap)
{
	size_t w = 0;
	buf[w++] = '{';
	for (size_t i = 0; i < s->n; i++) {
		if (i)
			buf[w++] = ',';
		buf[w++] = '"';
		for (const char *p = s->v[i]; *p && w + 4 < cap; p++) {
			if (*p == '"' || *p == '\\')
				buf[w++] = '\\';
			buf[w++] = *p;
		}
		buf[w++] = '"';
	}
	buf[w++] = '}';
	buf[w] = '\0';
}

int ctl_check_url(const char *opt, const char *url)
{
	size_t n = strlen(url);
	if (strncmp(url, "https://", 8) != 0)
		return ctl_usage_error("%s must be an https:// URL (got '%s')", opt, url);
	if (n > CTL_URL_MAX)
		return ctl_usage_error("%s must be at most %d bytes (got %zu)", opt, CTL_URL_MAX, n);
	for (const unsigned char *p = (const unsigned char *)url; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return ctl_usage_error("%s must not contain spaces or control characters", opt);
	/* Authority: up to the path, query or fragment. */
	const char *host = url + 8;
	size_t alen = strcspn(host, "/?#");
	if (memchr(host, '@', alen))
		/* Not echoed: it holds a password. */
		return ctl_usage_error("%s must not hold a user name or password (URLs are shown by "
		                       "the list commands)", opt);
	size_t hlen = alen;
	const char *port = NULL;
	if (host[0] == '[') {
		const char *close = memchr(host, ']', alen);
		hlen = close ? (size_t)(close - host) + 1 : 0;
		if (close && hlen < alen)
			port = host[hlen] == ':' ? host + hlen + 1 : host + alen;
	} else {
		const char *colon = memchr(host, ':', alen);
		if (colon) {
			hlen = (size_t)(colon - host);
			port = colon + 1;
		}
	}
	if (hlen == 0 || (host[0] == '[' && hlen <= 2))
		return ctl_usage_error("%s has no host (got '%s')", opt, url);
	if (port) {
		size_t plen = (size_t)(host + alen - port);
		long v = 0;
		for (size_t i = 0; i < plen && v <= 65535; i++)
			v = port[i] >= '0' && port[i] <= '9' ? v * 10 + (port[i] - '0') : 65536;
		if (plen == 0 || plen > 5 || v < 1 || v > 65535)
			return ctl_usage_error("%s has a bad port (got '%s')", opt, url);
	}
	return CTL_OK;
}

int ctl_check_int(const char *opt, const char *v, long min, long max)
{
	char *end;
	long n = strtol(v, &end, 10);
	/* strtol would also take leading blanks and '+'. */
	int digit = (v[0] >= '0' && v[0] <= '9') || (v[0] == '-' && v[1] >= '0' && v[1] <= '9');
	if (!digit || *end != '\0' || n < min || n > max)
		return ctl_usage_error("%s must be a whole number from %ld to %ld (got '%s')", opt, min,
		                       max, v);
	return CTL_OK;
}

int ctl_check_decimal(const char *opt, const char *v, double max, int places)
{
	const char *p = v;
	int whole = 0, frac = 0;
	while (*p >= '0' && *p <= '9')
		p++, whole++;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			frac++;
	if (whole == 0 || whole > 12 || *p != '\0' || (p[-1] == '.') || frac > places || strtod(v, NULL) > max)
		return ctl_usage_error("%s must be a number from 0 to %.0f with at most %d decimals (got '%s')", opt,
		                       max, places, v);
	return CTL_OK;
}

/* Forms people type, that we check rather than leave to PostgreSQL's far
 * looser interval input. */
long ctl_duration(const char *s)
{
	long total = 0;
	if (!*s)
		return -1;
	while (*s) {
		long n = 0, unit;
		const char *digits = s;
		while (*s >= '0' && *s <= '9' && n <= CTL_DURATION_MAX)
			n = n * 10 + (*s++ - '0');
		if (s == digits)
			return -1;
		switch (*s++) {
		case 's': unit = 1; break;
		case 'm': unit = 60; break;
		case 'h': unit = 3600; break;
		case 'd': unit = 86400; break;
		default: return -1;  /* also digits beyond the range */
		}
		total += n * unit;
		if (total > CTL_DURATION_MAX)
			return -1;
	}
	return total > 0 ? total : -1;
}

int ctl_check_duration(const char *opt, const char *v, char *iv, size_t cap)
{
	long secs = ctl_duration(v);
	if (secs < 0)
		return ctl_usage_error("%s must be a duration such as 90m, 24h, 3d or 1d12h (units s, "
		                       "m, h, d), from 1s to 365d (got '%s')", opt, v);
	snprintf(iv, cap, "%ld seconds", secs);
	return CTL_OK;
}

int ctl_check_since(const char *opt, const char *v, struct ctl_since *out)
{
	long secs = ctl_duration(v);
	out->at = NULL;
	out->ago[0] = '\0';
	if (secs > 0)
		snprintf(out->ago, sizeof out->ago, "%ld seconds", secs);
	else if (order_valid_timestamp(v))
		out->at = v;
	else
		return ctl_usage_error("%s must be a duration back from now such as 90m, 24h or 3d, or an "
		                       "RFC 3339 time such as 2026-11-22T10:00:00Z (got '%s')", opt, v);
	return CTL_OK;
}

int ctl_check_exists(PGconn *conn, const char *cmd, const char *opt, const char *table,
                     const char *noun, const char *code)
{
	char sql[128];
	/* The table name comes from the program, never from input. */
	snprintf(sql, sizeof sql, "SELECT 1 FROM %s WHERE code = $1", table);
	PGresult *res = PQexecParams(conn, sql, 1, NULL, &code, NULL, NULL, 0);
	int rc = CTL_OK;
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = ctl_pg_fail(conn, res, cmd);
	else if (PQntuples(res) == 0)
		rc = ctl_fail("%s: %s: no %s '%s'", cmd, opt, noun, code);
	PQclear(res);
	return rc;
}

int ctl_parse_filters(int argc, char **argv, const char *cmd, const char *allowed,
                      struct ctl_filters *f)
{
	const struct {
		char letter;
		const char *name;
		const char **val;
	} opts[] = {
		{ 'p', "--supplier", &f->supplier },
		{ 's', "--store", &f->store },
		{ 'S', "--status", &f->status },
		{ 't', "--since", &f->since_arg },
		{ 'l', "--limit", &f->limit },
	};
	memset(f, 0, sizeof *f);
	f->limit = CTL_LIST_LIMIT;
	for (int i = 0; i < argc; i++) {
		int m = 0;
		if (strchr(allowed, 'f') && strcmp(argv[i], "--failed") == 0)
			m = f->failed = 1;
		else if (strchr(allowed, 'j') && strcmp(argv[i], "--json") == 0)
			m = f->json = 1;
		for (size_t k = 0; m == 0 && k < sizeof opts / sizeof opts[0]; k++)
			if (strchr(allowed, opts[k].letter))
				m = ctl_opt(argc, argv, &i, opts[k].name, opts[k].val);
		if (m < 0)
			return CTL_USAGE;
		if (m > 0)
			continue;
		if (!strchr(allowed, 'i') || f->id || argv[i][0] == '-')
			return ctl_bad_arg(cmd, argv[i]);
		f->id = argv[i];
	}
	int rc = CTL_OK;
	if (f->supplier)
		rc = ctl_check_code("--supplier", f->supplier);
	if (rc == CTL_OK && f->store)
		rc = ctl_check_code("--store", f->store);
	if (rc == CTL_OK && f->since_arg)
		rc = ctl_check_since("--since", f->since_arg, &f->since);
	if (rc == CTL_OK)
		rc = ctl_check_int("--limit", f->limit, 1, CTL_LIST_LIMIT_MAX);
	return rc;
}

int ctl_check_filters(PGconn *conn, const char *cmd, const struct ctl_filters *f)
{
	int rc = CTL_OK;
	if (f->supplier)
		rc = ctl_check_exists(conn, cmd, "--supplier", "suppliers", "supplier", f->supplier);
	if (rc == CTL_OK && f->store)
		rc = ctl_check_exists(conn, cmd, "--store", "stores", "store", f->store);
	return rc;
}

int ctl_list_filtered(struct ctl *c, const struct ctl_filters *f, const struct ctl_list *l)
{
	PGconn *conn;
	int rc = ctl_connect(c, &conn);
	if (rc != CTL_OK)
		return rc;
	PGresult *res = NULL;
	if ((rc = ctl_check_filters(conn, l->cmd, f)) != CTL_OK)
		goto cleanup;
	res = PQexecParams(conn, l->sql, l->nparams, NULL, l->params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = ctl_pg_fail(conn, res, l->cmd);
	else
		rc = ctl_print_list(res, f->json, l->cols, l->ncols, l->empty);
cleanup:
	PQclear(res);
	PQfinish(conn);
	return rc;
}

void ctl_upsert_set(struct ctl_upsert *u, const char *col, const char *val)
{
	if (val && u->n < (int)(sizeof u->cols / sizeof u->cols[0])) {
		u->cols[u->n] = col;
		u->vals[u->n++] = val;
	}
}

/* Writes code and the given columns: an existing row (locked by the
 * caller) keeps the rest. A new one may have been created by another run
 * meanwhile: with --update that row is updated, else nothing is written
 * and *created is -1. A new row always has every required column, so NOT
 * NULLs hold. */
static int ctl_upsert_write(PGconn *conn, const struct ctl_upsert *u, int exists, int *created)
{
	char names[256] = "code", places[64] = "$1", sets[512] = "updated_at = now()", what[32];
	const char *vals[9] = { u->code };
	for (int i = 0; i < u->n; i++) {
		size_t a = strlen(names), b = strlen(places), s = strlen(sets);
		const char *col = u->cols[i];
		vals[i + 1] = u->vals[i];
		snprintf(names + a, sizeof names - a, ", %s", col);
		snprintf(places + b, sizeof places - b, ", $%d", i + 2);
		if (exists)
			snprintf(sets + s, sizeof sets - s, ", %s = $%d", col, i + 2);
		else
			snprintf(sets + s, sizeof sets - s, ", %s = EXCLUDED.%s", col, col);
	}
	/* Table and column names come from the program, never from input. */
	char sql[1024];
	if (exists)
		snprintf(sql, sizeof sql, "UPDATE %s SET %s WHERE code = $1 RETURNING false", u->table,
		         sets);
	else if (u->update)
		snprintf(sql, sizeof sql, "INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (code) "
		         "DO UPDATE SET %s RETURNING (xmax = 0)", u->table, names, places, sets);
	else
		snprintf(sql, sizeof sql, "INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (code) "
		         "DO NOTHING RETURNING true", u->table, names, places);
	snprintf(what, sizeof what, "%s add", u->noun);
	PGresult *res = PQexecParams(conn, sql, u->n + 1, NULL, vals, NULL, NULL, 0);
	int rc = CTL_OK;
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) > 1 ||
	    (PQntuples(res) == 0 && (exists || u->update)))
		rc = ctl_pg_fail(conn, res, what);
	else
		*created = PQntuples(res) == 0 ? -1 : strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return rc;
}

int ctl_upsert_row(struct ctl *c, struct ctl_upsert *u)
{
	PGconn *conn = NULL;
	PGresult *res = NULL;
	int created = 0;
	char what[32], sql[256], secrets[CTL_SECRETS_TEXT];
	snprintf(what, sizeof what, "%s add", u->noun);
	ctl_secrets_text(u->secrets, secrets, sizeof secrets);
	if (u->secrets->n)
		ctl_upsert_set(u, "secrets", secrets);
	int rc = ctl_connect(c, &conn);
	if (rc != CTL_OK)
		goto cleanup;
	rc = ctl_exec_ok(conn, "BEGIN", what);
	if (rc != CTL_OK)
		goto cleanup;
	snprintf(sql, sizeof sql, "SELECT %s FROM %s WHERE code = $1 FOR UPDATE", u->stored_col,
	         u->table);
	res = PQexecParams(conn, sql, 1, NULL, &u->code, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = ctl_pg_fail(conn, res, what);
		goto cleanup;
	}
	int exists = PQntuples(res) == 1;
	if (exists && !u->update)
		goto refuse;
	rc = u->check(u->arg, exists ? PQgetvalue(res, 0, 0) : NULL);
	if (rc != CTL_OK)
		goto cleanup;
	rc = ctl_upsert_write(conn, u, exists, &created);
	if (rc == CTL_OK && created < 0)
		goto refuse;
	if (rc == CTL_OK)
		rc = ctl_exec_ok(conn, "COMMIT", what);
	if (rc == CTL_OK)
		printf("%s %s %s\n", u->noun, u->code, created ? "created" : "updated");
	goto cleanup;
refuse:
	/* Replacing a store's secrets by mistake locks its storefront out. */
	rc = ctl_fail("%s: %s '%s' already exists; add --update to change it (only the options given "
	              "change)", what, u->noun, u->code);
cleanup:
	/* A failed transaction is rolled back by PQfinish closing the session. */
	PQclear(res);
	PQfinish(conn);
	OPENSSL_cleanse(secrets, sizeof secrets);
	return rc;
}

int ctl_set_active(struct ctl *c, int argc, char **argv, const char *table, const char *noun,
                   int active)
{
	char cmd[32], sql[256];
	const char *verb = active ? "enabled" : "disabled";
	snprintf(cmd, sizeof cmd, "%s %s", noun, active ? "enable" : "disable");
	if (argc == 0)
		return ctl_usage_error("%s: missing CODE (%s CODE)", cmd, cmd);
	if (argc > 1 || argv[0][0] == '-')
		return ctl_bad_arg(cmd, argv[argc > 1 && argv[0][0] != '-' ? 1 : 0]);
	int rc = ctl_check_code(cmd, argv[0]);
	if (rc != CTL_OK)
		return rc;
	PGconn *conn;
	if ((rc = ctl_connect(c, &conn)) != CTL_OK)
		return rc;
	/* The row as it was, and updated_at moved only by a change. */
	snprintf(sql, sizeof sql, "UPDATE %s t SET active = $2::boolean, updated_at = CASE WHEN"
	         " o.active = $2::boolean THEN t.updated_at ELSE now() END FROM (SELECT id, active"
	         " FROM %s WHERE code = $1 FOR UPDATE) o WHERE t.id = o.id RETURNING o.active", table,
	         table);
	const char *params[] = { argv[0], active ? "true" : "false" };
	PGresult *res = PQexecParams(conn, sql, 2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = ctl_pg_fail(conn, res, cmd);
	else if (PQntuples(res) == 0)
		rc = ctl_fail("%s: no %s '%s'", cmd, noun, argv[0]);
	else if (strcmp(PQgetvalue(res, 0, 0), active ? "t" : "f") == 0)
		printf("%s %s was already %s\n", noun, argv[0], verb);
	else
		printf("%s %s %s\n", noun, argv[0], verb);
	PQclear(res);
	PQfinish(conn);
	return rc;
}

int ctl_list(struct ctl *c, int argc, char **argv, const char *cmd, const char *sql,
             const char *const *head, int ncols, const char *empty)
{
	if (argc > 0)
		return ctl_bad_arg(cmd, argv[0]);
	PGconn *conn;
	int rc = ctl_connect(c, &conn);
	if (rc != CTL_OK)
		return rc;
	PGresult *res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = ctl_pg_fail(conn, res, cmd);
		goto cleanup;
	}
	struct ctl_table t = { .ncols = ncols < CTL_TABLE_MAX_COLS ? ncols : CTL_TABLE_MAX_COLS, .head = head };
	if (ctl_table_add_result(&t, res) < 0)
		rc = ctl_fail("%s: out of memory", cmd);
	else
		ctl_table_print(&t, stdout, "");
	ctl_table_free(&t);
	if (PQntuples(res) == 0)
		printf("%s\n", empty);
cleanup:
	PQclear(res);
	PQfinish(conn);
	return rc;
}
