#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "mem/mem.h"
#include "migrate/migrate.h"

/* "dropship" in ASCII, read as a bigint: the advisory lock every migrate
 * run takes, so two runs never interleave. */
#define MIGRATE_LOCK_KEY "7237970109966541168"
#define MIGRATE_VERSION_LEN 4

struct migrate_file {
	char *name;                      /* file name, e.g. "0001_stores_orders.sql" */
	char *text;                      /* whole file, NUL-terminated */
	size_t len;                      /* bytes in text */
	char sha[2 * 32 + 1];            /* SHA-256 of the bytes, lower-case hex */
};

struct migrate_list {
	struct migrate_file *v;
	size_t n, cap;
};

static const char migrate_create_sql[] =
	"CREATE TABLE IF NOT EXISTS schema_migrations ("
	" version text PRIMARY KEY,"
	" name text NOT NULL,"
	" checksum text NOT NULL,"
	" applied_at timestamptz NOT NULL DEFAULT now())";

/* NNNN_name.sql with a lower-case name: what the sort order relies on. */
static int migrate_name_ok(const char *name)
{
	size_t len = strlen(name);
	if (len < MIGRATE_VERSION_LEN + 1 + 1 + 4 || strcmp(name + len - 4, ".sql") != 0)
		return 0;
	for (size_t i = 0; i < MIGRATE_VERSION_LEN; i++)
		if (name[i] < '0' || name[i] > '9')
			return 0;
	if (name[MIGRATE_VERSION_LEN] != '_')
		return 0;
	for (size_t i = MIGRATE_VERSION_LEN + 1; i < len - 4; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return 0;
	}
	return 1;
}

static int migrate_is_sql(const char *name)
{
	size_t len = strlen(name);
	return name[0] != '.' && len > 4 && strcmp(name + len - 4, ".sql") == 0;
}

/* dir/name without a doubled slash. */
static void migrate_path(char *buf, size_t cap, const char *dir, const char *name)
{
	size_t dl = strlen(dir);
	snprintf(buf, cap, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", name);
}

static void migrate_sha256_hex(const void *data, size_t len, char hex[2 * 32 + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	hex[0] = '\0';
	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return;
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static int migrate_read_file(const char *path, struct migrate_file *f, char *err, size_t errlen)
{
	int rc = -1;
	size_t cap = 8192;
	char *buf = mem_alloc(cap);
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto cleanup;
	}
	size_t got;
	f->len = 0;
	while ((got = fread(buf + f->len, 1, cap - f->len - 1, fp)) > 0) {
		f->len += got;
		if (cap - f->len - 1 == 0) {
			buf = mem_realloc(buf, cap * 2);
			cap *= 2;
		}
	}
	if (ferror(fp)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto cleanup;
	}
	/* PQexec stops at a NUL: the tail would silently not run. */
	if (memchr(buf, '\0', f->len)) {
		snprintf(err, errlen, "%s: contains a NUL byte", path);
		goto cleanup;
	}
	buf[f->len] = '\0';
	migrate_sha256_hex(buf, f->len, f->sha);
	f->text = buf;
	buf = NULL;
	rc = 0;
cleanup:
	if (fp)
		fclose(fp);
	free(buf);
	return rc;
}

static int migrate_file_cmp(const void *a, const void *b)
{
	return strcmp(((const struct migrate_file *)a)->name, ((const struct migrate_file *)b)->name);
}

static void migrate_list_free(struct migrate_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].text);
	}
	free(l->v);
	memset(l, 0, sizeof *l);
}

/* Reads every *.sql file of dir, sorted by name. With strict, a .sql file
 * that is not named NNNN_name.sql is an error rather than silently skipped. */
static int migrate_list_dir(const char *dir, int strict, struct migrate_list *l,
                            char *err, size_t errlen)
{
	int rc = -1;
	DIR *d = opendir(dir);
	if (!d) {
		snprintf(err, errlen, "cannot open %s directory %s: %s",
		         strict ? "migrations" : "sql", dir, strerror(errno));
		return -1;
	}
	struct dirent *de;
	char path[4096];
	while ((de = readdir(d)) != NULL) {
		if (!migrate_is_sql(de->d_name))
			continue;
		migrate_path(path, sizeof path, dir, de->d_name);
		if (strict && !migrate_name_ok(de->d_name)) {
			snprintf(err, errlen, "%s: migration files must be named NNNN_name.sql "
			         "(4 digits, then lower-case letters, digits and _)", path);
			goto cleanup;
		}
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 16;
			l->v = mem_realloc(l->v, cap * sizeof *l->v);
			l->cap = cap;
		}
		struct migrate_file *f = &l->v[l->n];
		memset(f, 0, sizeof *f);
		f->name = mem_strdup(de->d_name);
		l->n++;
		if (migrate_read_file(path, f, err, errlen) < 0)
			goto cleanup;
	}
	if (l->n)
		qsort(l->v, l->n, sizeof *l->v, migrate_file_cmp);
	for (size_t i = 1; strict && i < l->n; i++) {
		if (strncmp(l->v[i - 1].name, l->v[i].name, MIGRATE_VERSION_LEN) == 0) {
			snprintf(err, errlen, "%s: %s and %s share version %.4s; renumber one",
			         dir, l->v[i - 1].name, l->v[i].name, l->v[i].name);
			goto cleanup;
		}
	}
	rc = 0;
cleanup:
	closedir(d);
	if (rc < 0)
		migrate_list_free(l);
	return rc;
}

/* PostgreSQL's primary message, or libpq's when the server sent none. */
static void migrate_pg_message(PGconn *conn, const PGresult *res, char *buf, size_t cap)
{
	const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	snprintf(buf, cap, "%s", m ? m : PQerrorMessage(conn));
	size_t n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
}

/* Runs one statement with bound parameters; fills err with what failed. */
static PGresult *migrate_exec(PGconn *conn, const char *sql, int nparams,
                              const char *const *params, char *err, size_t errlen)
{
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	char msg[1024];
	migrate_pg_message(conn, res, msg, sizeof msg);
	snprintf(err, errlen, "%s", msg);
	PQclear(res);
	return NULL;
}

static int migrate_run_sql(PGconn *conn, const char *sql, char *err, size_t errlen)
{
	PGresult *res = migrate_exec(conn, sql, 0, NULL, err, errlen);
	PQclear(res);
	return res ? 0 : -1;
}

/* Line (1-based) holding character pos (1-based, as PostgreSQL counts:
 * characters of the UTF-8 text, not bytes). */
static long migrate_line_of(const char *text, size_t len, long pos)
{
	long line = 1, ch = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char b = (unsigned char)text[i];
		if ((b & 0xC0) == 0x80)
			continue;
		if (++ch >= pos)
			break;
		if (b == '\n')
			line++;
	}
	return line;
}

/* "PATH: message (line N); detail" for a failed file. */
static void migrate_file_error(PGconn *conn, const PGresult *res, const char *path,
                               const struct migrate_file *f, char *err, size_t errlen)
{
	char msg[1024], where[48] = "";
	migrate_pg_message(conn, res, msg, sizeof msg);
	const char *pos = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
	if (pos) {
		char *end;
		long p = strtol(pos, &end, 10);
		if (*end == '\0' && p > 0)
			snprintf(where, sizeof where, " (line %ld)", migrate_line_of(f->text, f->len, p));
	}
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	snprintf(err, errlen, "%s: %s%s%s%s", path, msg, where, detail ? "; " : "",
	         detail ? detail : "");
}

/* Runs f's text, which may hold many statements, inside the open transaction. */
static int migrate_exec_file(PGconn *conn, const char *dir, const struct migrate_file *f,
                             char *err, size_t errlen)
{
	PGresult *res = PQexec(conn, f->text);
	ExecStatusType st = PQresultStatus(res);
	int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY;
	if (!ok) {
		char path[4096];
		migrate_path(path, sizeof path, dir, f->name);
		migrate_file_error(conn, res, path, f, err, errlen);
	}
	PQclear(res);
	return ok ? 0 : -1;
}

/* One migration, one transaction: the file and its schema_migrations row
 * commit together or not at all. */
static int migrate_apply_one(PGconn *conn, const char *dir, const struct migrate_file *f,
                             char *err, size_t errlen)
{
	char version[MIGRATE_VERSION_LEN + 1], name[256];
	snprintf(version, sizeof version, "%.4s", f->name);
	snprintf(name, sizeof name, "%.*s", (int)(strlen(f->name) - MIGRATE_VERSION_LEN - 1 - 4),
	         f->name + MIGRATE_VERSION_LEN + 1);
	const char *params[] = { version, name, f->sha };
	char msg[1024];
	if (migrate_run_sql(conn, "BEGIN", err, errlen) < 0)
		return -1;
	if (migrate_exec_file(conn, dir, f, err, errlen) < 0)
		goto rollback;
	PGresult *res = migrate_exec(conn, "INSERT INTO schema_migrations (version, name, checksum) "
	                                   "VALUES ($1, $2, $3)", 3, params, msg, sizeof msg);
	PQclear(res);
	if (!res || migrate_run_sql(conn, "COMMIT", msg, sizeof msg) < 0) {
		snprintf(err, errlen, "%s: recording it failed: %s", f->name, msg);
		goto rollback;
	}
	return 0;
rollback:
	migrate_run_sql(conn, "ROLLBACK", msg, sizeof msg);
	return -1;
}

/* View files: all of them in one transaction, so a view that depends on
 * another is never left half recreated. */
static int migrate_apply_views(PGconn *conn, const char *sql_dir, const struct migrate_list *views,
                               FILE *out, char *err, size_t errlen)
{
	char msg[1024];
	if (views->n == 0)
		return 0;
	if (migrate_run_sql(conn, "BEGIN", err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < views->n; i++)
		if (migrate_exec_file(conn, sql_dir, &views->v[i], err, errlen) < 0)
			goto rollback;
	if (migrate_run_sql(conn, "COMMIT", err, errlen) < 0)
		goto rollback;
	for (size_t i = 0; out && i < views->n; i++)
		fprintf(out, "refreshed %s\n", views->v[i].name);
	return 0;
rollback:
	migrate_run_sql(conn, "ROLLBACK", msg, sizeof msg);
	return -1;
}

static const struct migrate_file *migrate_find(const struct migrate_list *l, const char *version)
{
	for (size_t i = 0; i < l->n; i++)
		if (strncmp(l->v[i].name, version, MIGRATE_VERSION_LEN) == 0 &&
		    strlen(version) == MIGRATE_VERSION_LEN)
			return &l->v[i];
	return NULL;
}

/* Marks done[i] for every file already applied; fails when the database
 * and dir disagree, before anything is applied. */
static int migrate_check_applied(PGconn *conn, const char *dir, const struct migrate_list *files,
                                 unsigned char *done, char *err, size_t errlen)
{
	char msg[1024];
	PGresult *res = migrate_exec(conn, "SELECT version, checksum, name FROM schema_migrations "
	                                   "ORDER BY version", 0, NULL, msg, sizeof msg);
	if (!res) {
		snprintf(err, errlen, "reading schema_migrations: %s", msg);
		return -1;
	}
	int rc = -1;
	for (int row = 0; row < PQntuples(res); row++) {
		const char *version = PQgetvalue(res, row, 0);
		const char *sum = PQgetvalue(res, row, 1);
		const struct migrate_file *f = migrate_find(files, version);
		if (!f) {
			snprintf(err, errlen, "database has migration %s (%s) that is not in %s; "
			         "is this the right build?", version, PQgetvalue(res, row, 2), dir);
			goto cleanup;
		}
		if (strcmp(f->sha, sum) != 0) {
			char path[4096];
			migrate_path(path, sizeof path, dir, f->name);
			snprintf(err, errlen, "%s was changed after it was applied (checksum %s recorded, "
			         "%s on disk); add a new migration instead", path, sum, f->sha);
			goto cleanup;
		}
		done[f - files->v] = 1;
	}
	rc = 0;
cleanup:
	PQclear(res);
	return rc;
}

/* Blocks until no other migrate holds the lock, saying so when it waits. */
static int migrate_lock(PGconn *conn, FILE *out, char *err, size_t errlen)
{
	const char *key[] = { MIGRATE_LOCK_KEY };
	PGresult *res = migrate_exec(conn, "SELECT pg_try_advisory_lock($1::bigint)", 1, key,
	                             err, errlen);
	if (!res)
		return -1;
	int got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (got)
		return 0;
	if (out) {
		fprintf(out, "waiting for another migrate to finish\n");
		fflush(out);
	}
	res = migrate_exec(conn, "SELECT pg_advisory_lock($1::bigint)", 1, key, err, errlen);
	PQclear(res);
	return res ? 0 : -1;
}

int migrate_run(PGconn *conn, const char *dir, const char *sql_dir, FILE *out,
                char *err, size_t errlen)
{
	int result = -1, locked = 0, applied = 0;
	struct migrate_list files = { 0 }, views = { 0 };
	unsigned char *done = NULL;
	char msg[1024];

	if (migrate_list_dir(dir, 1, &files, err, errlen) < 0)
		goto cleanup;
	if (sql_dir && migrate_list_dir(sql_dir, 0, &views, err, errlen) < 0)
		goto cleanup;
	done = mem_calloc(files.n + 1, 1);
	/* "already exists, skipping" notices are noise; warnings still show. */
	if (migrate_run_sql(conn, "SET client_min_messages = warning", err, errlen) < 0)
		goto cleanup;
	if (migrate_lock(conn, out, err, errlen) < 0)
		goto cleanup;
	locked = 1;
	if (migrate_run_sql(conn, migrate_create_sql, msg, sizeof msg) < 0) {
		snprintf(err, errlen, "creating schema_migrations: %s", msg);
		goto cleanup;
	}
	if (migrate_check_applied(conn, dir, &files, done, err, errlen) < 0)
		goto cleanup;
	for (size_t i = 0; i < files.n; i++) {
		if (done[i])
			continue;
		if (migrate_apply_one(conn, dir, &files.v[i], err, errlen) < 0)
			goto cleanup;
		applied++;
		if (out) {
			fprintf(out, "applied %s\n", files.v[i].name);
			fflush(out);
		}
	}
	if (applied == 0 && out)
		fprintf(out, "up to date (%zu migration%s)\n", files.n, files.n == 1 ? "" : "s");
	if (sql_dir && migrate_apply_views(conn, sql_dir, &views, out, err, errlen) < 0)
		goto cleanup;
	result = applied;
cleanup:
	if (locked) {
		const char *key[] = { MIGRATE_LOCK_KEY };
		PQclear(migrate_exec(conn, "SELECT pg_advisory_unlock($1::bigint)", 1, key,
		                     msg, sizeof msg));
	}
	if (PQstatus(conn) == CONNECTION_OK)
		migrate_run_sql(conn, "RESET client_min_messages", msg, sizeof msg);
	free(done);
	migrate_list_free(&views);
	migrate_list_free(&files);
	return result;
}

int migrate_applied_version(PGconn *conn, char *out, size_t cap, char *err, size_t errlen)
{
	/* A missing table is an answer (nothing applied), not an error. */
	PGresult *res = PQexec(conn, "SELECT to_regclass('schema_migrations') IS NOT NULL");
	int rc = -1;
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		goto fail;
	int exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	res = NULL;
	out[0] = '\0';
	if (!exists)
		return 0;
	res = PQexec(conn, "SELECT coalesce(max(version), '') FROM schema_migrations");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		goto fail;
	snprintf(out, cap, "%s", PQgetvalue(res, 0, 0));
	rc = 0;
	goto done;
fail:
	snprintf(err, errlen, "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
done:
	PQclear(res);
	return rc;
}
