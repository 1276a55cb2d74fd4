/* End-to-end tests of dropshipctl: the real binary against fresh databases
 * on the throwaway cluster. */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <openssl/evp.h>

#include "support/ctl.h"
#include "support/harness.h"
#include "support/proc.h"
#include "support/testdb.h"
#include "version/version.h"

/* Two valid native secrets (base64 of 24 and 32 bytes). */
#define KEY1 "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define KEY2 "whsec_C2FVsBQIhrscChPVQKv8JMl0MtYqSWc1f5hmIcRu7MM="

static int has(const char *s, const char *needle)
{
	return s && strstr(s, needle) != NULL;
}

static void sh(const char *script, const char *a1, const char *a2)
{
	const char *argv[] = { "sh", "-c", script, "sh", a1, a2, NULL };
	CU_ASSERT_EQUAL(proc_run(argv, NULL, NULL, NULL), 0);
}

static void write_file(const char *dir, const char *name, const char *mode, const char *text)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, mode);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char *buf = calloc(1, 65536);
	if (buf)
		buf[fread(buf, 1, 65535, f)] = '\0';
	fclose(f);
	return buf;
}

/* A temp folder holding migrations/ (a copy of the repository's) and,
 * with views, an empty sql/. */
static void tmp_tree(char *dir, size_t cap, int views)
{
	const char *root = getenv("DROPSHIP_TEST_ROOT");
	char path[512];
	snprintf(dir, cap, "/tmp/dropship-ctl.XXXXXX");
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/migrations", root ? root : ".");
	/* The runner's own tests need one known file, not the whole schema history. */
	sh("mkdir \"$2/migrations\" && cp \"$1\"/0001_*.sql \"$2/migrations/\"", path, dir);
	if (views)
		sh("mkdir \"$1/sql\" && touch \"$1/sql/.keep\"", dir, NULL);
}

static void rm_tree(const char *dir)
{
	sh("rm -rf \"$1\"", dir, NULL);
}

static void fresh_db(const char *name, char *conninfo, size_t cap)
{
	CU_ASSERT_EQUAL_FATAL(testdb_create(name, conninfo, cap), 0);
}

/* A fresh database and a temp copy of the migrations to play with. */
struct tree {
	char db[512];
	char dir[256];     /* temp folder, removed by rm_tree */
	char mig[300];     /* dir/migrations */
	char sql[300];     /* dir/sql (exists only with views) */
};

static void tree_setup(struct tree *t, const char *dbname, int views)
{
	fresh_db(dbname, t->db, sizeof t->db);
	tmp_tree(t->dir, sizeof t->dir, views);
	snprintf(t->mig, sizeof t->mig, "%s/migrations", t->dir);
	snprintf(t->sql, sizeof t->sql, "%s/sql", t->dir);
}

/* migrate --dir t->mig (plus extra, may be NULL) must fail with needle in its message. */
static void migrate_fails(const struct tree *t, const char *extra, const char *needle)
{
	struct ctl_run r = ctl(t->db, "migrate", "--dir", t->mig, extra, t->sql, (const char *)NULL);
	CU_ASSERT_EQUAL(r.rc, 1);
	CU_ASSERT(has(r.err, needle));
	ctl_run_free(&r);
}

static void migrated_db(const char *name, char *conninfo, size_t cap)
{
	fresh_db(name, conninfo, cap);
	CU_ASSERT_EQUAL_FATAL(ctl_rc(conninfo, "migrate", NULL), 0);
}

static long count(const char *db, const char *sql)
{
	PGconn *conn = testdb_connect(db);
	long n = testdb_count(conn, sql, 0, NULL);
	PQfinish(conn);
	return n;
}

static int table_exists(const char *db, const char *name)
{
	const char *p[] = { name };
	PGconn *conn = testdb_connect(db);
	long n = testdb_count(conn, "SELECT count(*) FROM pg_class WHERE relname = $1", 1, p);
	PQfinish(conn);
	return n == 1;
}

/* How many migrations the repository holds. */
static long repo_migrations(void)
{
	char pattern[512];
	const char *root = getenv("DROPSHIP_TEST_ROOT");
	snprintf(pattern, sizeof pattern, "%s/migrations/[0-9][0-9][0-9][0-9]_*.sql", root ? root : ".");
	glob_t g;
	long n = glob(pattern, 0, NULL, &g) == 0 ? (long)g.gl_pathc : 0;
	globfree(&g);
	return n;
}

static void test_migrate_applies_once(void)
{
	long nmig = repo_migrations();
	char uptodate[64];
	snprintf(uptodate, sizeof uptodate, "up to date (%ld migrations)", nmig);
	CU_ASSERT_FATAL(nmig >= 1);
	char db[512];
	fresh_db("dropship_ctl_migrate", db, sizeof db);
	struct ctl_run r = ctl(db, "migrate", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "applied 0001_stores_orders.sql"));
	/* Then the views of the repository's sql/, recreated on every run. */
	CU_ASSERT(has(r.out, "refreshed reporting.sql"));
	ctl_run_free(&r);
	CU_ASSERT(table_exists(db, "stores"));
	CU_ASSERT_EQUAL(count(db, "SELECT count(*) FROM schema_migrations"), nmig);
	CU_ASSERT_EQUAL(count(db, "SELECT count(*) FROM schema_migrations WHERE version = '0001'"
	                          " AND name = 'stores_orders' AND length(checksum) = 64"), 1);

	PGconn *conn = testdb_connect(db);
	char *before = testdb_value(conn, "SELECT string_agg(applied_at::text, ',' ORDER BY version)"
	                                  " FROM schema_migrations", 0, NULL);
	r = ctl(db, "migrate", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, nmig == 1 ? "up to date (1 migration)" : uptodate));
	CU_ASSERT(!has(r.out, "applied"));
	ctl_run_free(&r);
	char *after = testdb_value(conn, "SELECT string_agg(applied_at::text, ',' ORDER BY version)"
	                                 " FROM schema_migrations", 0, NULL);
	CU_ASSERT_EQUAL(testdb_count(conn, "SELECT count(*) FROM schema_migrations", 0, NULL), nmig);
	CU_ASSERT(before && after && strcmp(before, after) == 0);
	free(before);
	free(after);
	PQfinish(conn);
}

static void test_migrate_refuses_changed_file(void)
{
	struct tree t;
	tree_setup(&t, "dropship_ctl_changed", 0);
	CU_ASSERT_EQUAL(ctl_rc(t.db, "migrate", "--dir", t.mig, NULL), 0);

	write_file(t.mig, "0001_stores_orders.sql", "a", "-- an edit after the fact\n");
	write_file(t.mig, "0002_more.sql", "w", "CREATE TABLE more_stuff (id int);\n");
	migrate_fails(&t, NULL, "0001_stores_orders.sql was changed after it was applied "
	                        "(checksum ");
	migrate_fails(&t, NULL, "add a new migration instead");
	CU_ASSERT(!table_exists(t.db, "more_stuff"));
	CU_ASSERT_EQUAL(count(t.db, "SELECT count(*) FROM schema_migrations"), 1);

	/* A recorded migration whose file is gone: probably the wrong build. */
	sh("rm \"$1/0001_stores_orders.sql\"", t.mig, NULL);
	migrate_fails(&t, NULL, "database has migration 0001 (stores_orders) that is not in");
	CU_ASSERT(!table_exists(t.db, "more_stuff"));

	/* Misnamed files are refused rather than skipped. */
	sh("touch \"$1/1_Oops.sql\"", t.mig, NULL);
	migrate_fails(&t, NULL, "1_Oops.sql: migration files must be named NNNN_name.sql");
	rm_tree(t.dir);
}

static void test_migrate_failure_rolls_back(void)
{
	struct tree t;
	tree_setup(&t, "dropship_ctl_bad", 0);
	write_file(t.mig, "0002_bad.sql", "w", "CREATE TABLE good_one (id int);\n\n  SELEC 1;\n");
	struct ctl_run r = ctl(t.db, "migrate", "--dir", t.mig, NULL);
	CU_ASSERT_EQUAL(r.rc, 1);
	CU_ASSERT(has(r.out, "applied 0001_stores_orders.sql"));
	CU_ASSERT(has(r.err, "0002_bad.sql: syntax error at or near \"SELEC\" (line 3)"));
	ctl_run_free(&r);
	CU_ASSERT(!table_exists(t.db, "good_one"));
	CU_ASSERT_EQUAL(count(t.db, "SELECT count(*) FROM schema_migrations"), 1);

	/* An error while running (not parsing) is located too; the é line
	 * checks that positions count characters, not bytes. */
	write_file(t.mig, "0002_bad.sql", "w",
	           "-- ééééééééééééééééééééééééééééééééééééééé\n"
	           "CREATE TABLE good_one (id int);\nINSERT INTO\nno_such_table VALUES (1);\n");
	migrate_fails(&t, NULL, "0002_bad.sql: relation \"no_such_table\" does not exist (line 4)");
	CU_ASSERT(!table_exists(t.db, "good_one"));

	/* Never applied, so fixing it in place is fine. */
	write_file(t.mig, "0002_bad.sql", "w", "CREATE TABLE good_one (id int);\n");
	r = ctl(t.db, "migrate", "--dir", t.mig, NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "applied 0002_bad.sql"));
	ctl_run_free(&r);
	CU_ASSERT(table_exists(t.db, "good_one"));
	CU_ASSERT_EQUAL(count(t.db, "SELECT count(*) FROM schema_migrations"), 2);
	rm_tree(t.dir);
}

static void test_migrate_concurrent(void)
{
	enum { N = 4 };
	char db[512], dir[256], url[1100], logs[N][300];
	pid_t pids[N];
	fresh_db("dropship_ctl_concurrent", db, sizeof db);
	tmp_tree(dir, sizeof dir, 0);
	snprintf(url, sizeof url, "DROPSHIP_DATABASE_URL=%s", db);
	const char *env[] = { url, "DROPSHIP_MIGRATIONS_DIR=", "DROPSHIP_SQL_DIR=", NULL };
	const char *argv[] = { proc_build_path("dropshipctl"), "migrate", NULL };
	for (int i = 0; i < N; i++) {
		snprintf(logs[i], sizeof logs[i], "%s/migrate-%d.log", dir, i);
		pids[i] = proc_spawn(argv, env, logs[i]);
		CU_ASSERT(pids[i] > 0);
	}
	int applied = 0;
	for (int i = 0; i < N; i++) {
		CU_ASSERT_EQUAL(proc_stop(pids[i], 0, 60000), 0);
		char *log = read_file(logs[i]);
		printf("\nconcurrent migrate %d:\n%s", i, log ? log : "(no log)\n");
		applied += has(log, "applied 0001_stores_orders.sql");
		free(log);
	}
	CU_ASSERT_EQUAL(applied, 1);
	CU_ASSERT_EQUAL(count(db, "SELECT count(*) FROM schema_migrations"), repo_migrations());
	rm_tree(dir);
}

static void test_migrate_refreshes_views(void)
{
	struct tree t;
	tree_setup(&t, "dropship_ctl_views", 1);
	write_file(t.sql, "10_codes.sql", "w",
	           "CREATE OR REPLACE VIEW store_codes AS SELECT code FROM stores;\n");
	write_file(t.sql, "20_count.sql", "w",
	           "CREATE OR REPLACE VIEW store_count AS SELECT count(*) AS n FROM store_codes;\n");
	for (int run = 0; run < 2; run++) {
		struct ctl_run r = ctl(t.db, "migrate", "--dir", t.mig, NULL);
		CU_ASSERT_EQUAL(r.rc, 0);
		CU_ASSERT(has(r.out, run ? "up to date" : "applied 0001_stores_orders.sql"));
		CU_ASSERT(has(r.out, "refreshed 10_codes.sql\nrefreshed 20_count.sql\n"));
		ctl_run_free(&r);
	}
	CU_ASSERT(table_exists(t.db, "store_count"));

	/* A broken view file fails the run and changes no view. */
	write_file(t.sql, "10_codes.sql", "w",
	           "CREATE OR REPLACE VIEW store_codes AS SELECT code FROM stores;\n"
	           "CREATE VIEW also_new AS SELECT 1;\n");
	write_file(t.sql, "20_count.sql", "w", "CREATE OR REPLACE VIEW store_count AS SELEC 1;\n");
	migrate_fails(&t, "--sql-dir", "20_count.sql: syntax error");
	CU_ASSERT(!table_exists(t.db, "also_new"));
	rm_tree(t.dir);
}

static void test_store_add_and_update(void)
{
	char db[512];
	migrated_db("dropship_ctl_store", db, sizeof db);
	struct ctl_run r = ctl(db, "store", "add", "shop1", "--secret", KEY1, "--secret", KEY2, NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "store shop1 created"));
	CU_ASSERT(!has(r.out, KEY1) && !has(r.err, KEY1));
	ctl_run_free(&r);

	PGconn *conn = testdb_connect(db);
	const char *row = "SELECT format || ' ' || policy || ' ' || split_tolerance_pct || ' ' ||"
	                  " coalesce(callback_url, '-') FROM stores WHERE code = 'shop1'";
	const char *secrets = "SELECT secrets::text FROM stores WHERE code = 'shop1'";
	char *v = testdb_value(conn, row, 0, NULL);
	CU_ASSERT_STRING_EQUAL(v ? v : "", "native cheapest 10 -");
	free(v);
	char *before = testdb_value(conn, secrets, 0, NULL);
	CU_ASSERT_STRING_EQUAL(before ? before : "", "{" KEY1 "," KEY2 "}");

	r = ctl(db, "store", "add", "shop1", "--update", "--policy", "fastest", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "store shop1 updated"));
	ctl_run_free(&r);
	v = testdb_value(conn, row, 0, NULL);
	CU_ASSERT_STRING_EQUAL(v ? v : "", "native fastest 10 -");
	free(v);
	char *after = testdb_value(conn, secrets, 0, NULL);
	CU_ASSERT(before && after && strcmp(before, after) == 0);
	free(before);
	free(after);

	CU_ASSERT_EQUAL(ctl_rc(db, "store", "add", "shop1", "--split-tolerance", "25",
	                       "--callback-url", "https://shop1.example/hooks", "--update", NULL), 0);
	v = testdb_value(conn, row, 0, NULL);
	CU_ASSERT_STRING_EQUAL(v ? v : "", "native fastest 25 https://shop1.example/hooks");
	free(v);
	/* An empty URL removes it; new secrets replace the old set. */
	CU_ASSERT_EQUAL(ctl_rc(db, "store", "add", "shop1", "--update", "--callback-url=", "--secret", KEY2,
	                       NULL), 0);
	v = testdb_value(conn, row, 0, NULL);
	CU_ASSERT_STRING_EQUAL(v ? v : "", "native fastest 25 -");
	free(v);
	v = testdb_value(conn, secrets, 0, NULL);
	CU_ASSERT_STRING_EQUAL(v ? v : "", "{" KEY2 "}");
	free(v);

	/* Platform secrets are stored byte for byte, quotes and all. */
	r = ctl(db, "store", "add", "shop2", "--format", "shopify", "--secret", "sh\"pat\\1,{x}",
	        "--policy", "priority", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "store shop2 created"));
	ctl_run_free(&r);
	v = testdb_value(conn, "SELECT format || ' ' || secrets[1] FROM stores WHERE code = 'shop2'",
	                 0, NULL);
	CU_ASSERT_STRING_EQUAL(v ? v : "", "shopify sh\"pat\\1,{x}");
	free(v);
	/* A non-native store keeps taking its platform's secrets without --format. */
	CU_ASSERT_EQUAL(ctl_rc(db, "store", "add", "shop2", "--update", "--secret", "another-one", NULL), 0);
	/* --update of a code not there yet creates it, with what a creation needs. */
	r = ctl(db, "store", "add", "shop3", "--update", "--secret", KEY1, NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "store shop3 created"));
	ctl_run_free(&r);
	CU_ASSERT_EQUAL(ctl_rc(db, "store", "add", "shop4", "--update", NULL), 2);
	CU_ASSERT_EQUAL(testdb_count(conn, "SELECT count(*) FROM stores", 0, NULL), 3);
	PQfinish(conn);
}

/* Adding a code that is there would replace its secrets: the storefront
 * signing with the old one would then get 401. */
static void test_store_add_refuses_existing(void)
{
	char db[512];
	migrated_db("dropship_ctl_store_exists", db, sizeof db);
	CU_ASSERT_EQUAL_FATAL(ctl_rc(db, "store", "add", "shop1", "--secret", KEY1, "--policy", "fastest",
	                             NULL), 0);
	PGconn *conn = testdb_connect(db);
	const char *row = "SELECT secrets::text || ' ' || policy || ' ' || format FROM stores"
	                  " WHERE code = 'shop1'";
	char *before = testdb_value(conn, row, 0, NULL);
	CU_ASSERT_STRING_EQUAL(before ? before : "", "{" KEY1 "} fastest native");
	struct ctl_run r = ctl(db, "store", "add", "shop1", "--secret", KEY2, NULL);
	CU_ASSERT_EQUAL(r.rc, 1);
	CU_ASSERT(has(r.err, "store add: store 'shop1' already exists; add --update to change it"));
	CU_ASSERT(!has(r.out, "updated") && !has(r.err, KEY2));
	ctl_run_free(&r);
	char *after = testdb_value(conn, row, 0, NULL);
	CU_ASSERT(before && after && strcmp(before, after) == 0);
	free(after);
	/* Refused whatever is asked, even what would be a usage error on an update. */
	CU_ASSERT_EQUAL(ctl_rc(db, "store", "add", "shop1", "--callback-url", "https://a.example/h", NULL), 1);
	/* With --update only what is given changes: the policy stays. */
	r = ctl(db, "store", "add", "shop1", "--secret", KEY2, "--update", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "store shop1 updated"));
	ctl_run_free(&r);
	after = testdb_value(conn, row, 0, NULL);
	CU_ASSERT_STRING_EQUAL(after ? after : "", "{" KEY2 "} fastest native");
	free(after);
	free(before);
	/* --update takes no value. */
	CU_ASSERT_EQUAL(ctl_rc(db, "store", "add", "shop1", "--update=yes", NULL), 2);
	PQfinish(conn);
}

static void test_store_disable_enable(void)
{
	char db[512];
	migrated_db("dropship_ctl_store_active", db, sizeof db);
	CU_ASSERT_EQUAL_FATAL(ctl_rc(db, "store", "add", "shop1", "--secret", KEY1, NULL), 0);
	PGconn *conn = testdb_connect(db);
	const char *active = "SELECT active::text FROM stores WHERE code = 'shop1'";
	char *v = testdb_value(conn, active, 0, NULL);
	CU_ASSERT_STRING_EQUAL(v ? v : "", "true");
	free(v);

	struct ctl_run r = ctl(db, "store", "disable", "shop1", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_STRING_EQUAL(r.out ? r.out : "", "store shop1 disabled\n");
	ctl_run_free(&r);
	v = testdb_value(conn, active, 0, NULL);
	CU_ASSERT_STRING_EQUAL(v ? v : "", "false");
	free(v);
	r = ctl(db, "store", "disable", "shop1", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "store shop1 was already disabled"));
	ctl_run_free(&r);
	r = ctl(db, "store", "list", NULL);
	CU_ASSERT(has(r.out, "ACTIVE"));
	CU_ASSERT(has(r.out, "shop1  native  cheapest  10      5.0000   0.00         0.00          false   1"));
	ctl_run_free(&r);
	/* Updating a disabled store leaves it disabled. */
	CU_ASSERT_EQUAL(ctl_rc(db, "store", "add", "shop1", "--update", "--policy", "fastest", NULL), 0);
	v = testdb_value(conn, active, 0, NULL);
	CU_ASSERT_STRING_EQUAL(v ? v : "", "false");
	free(v);

	r = ctl(db, "store", "enable", "shop1", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_STRING_EQUAL(r.out ? r.out : "", "store shop1 enabled\n");
	ctl_run_free(&r);
	v = testdb_value(conn, active, 0, NULL);
	CU_ASSERT_STRING_EQUAL(v ? v : "", "true");
	free(v);

	r = ctl(db, "store", "disable", "nosuch", NULL);
	CU_ASSERT_EQUAL(r.rc, 1);
	CU_ASSERT(has(r.err, "store disable: no store 'nosuch'"));
	ctl_run_free(&r);
	r = ctl(db, "store", "enable", NULL);
	CU_ASSERT_EQUAL(r.rc, 2);
	CU_ASSERT(has(r.err, "store enable: missing CODE"));
	ctl_run_free(&r);
	r = ctl(db, "store", "disable", "bad code", NULL);
	CU_ASSERT_EQUAL(r.rc, 2);
	CU_ASSERT(has(r.err, "CODE 'bad code'"));
	ctl_run_free(&r);
	CU_ASSERT_EQUAL(ctl_rc(db, "store", "disable", "shop1", "extra", NULL), 2);
	CU_ASSERT_EQUAL(ctl_rc(db, "store", "disable", "--all", NULL), 2);
	v = testdb_value(conn, active, 0, NULL);
	CU_ASSERT_STRING_EQUAL(v ? v : "", "true");
	free(v);
	PQfinish(conn);
}

struct bad_case {
	const char *args[9];      /* NULL-terminated */
	const char *names;   /* what the message must name */
};

static void test_store_add_rejects(void)
{
	static const struct bad_case cases[] = {
		{ { "store", "add", "bad code!", "--secret", KEY1 }, "CODE" },
		{ { "store", "add", "x", "--secret", KEY1, "--format", "magento" }, "--format" },
		{ { "store", "add", "x", "--secret", "not-a-whsec-key" }, "--secret #1" },
		{ { "store", "add", "x", "--secret", KEY1, "--secret", "whsec_c2hvcnQ=" }, "--secret #2" },
		{ { "store", "add", "x", "--secret", "whsec_not base64!" }, "--secret #1" },
		{ { "store", "add", "x", "--format", "shopify", "--secret", "" }, "--secret #1" },
		{ { "store", "add", "x" }, "--secret is required" },
		{ { "store", "add", "x", "--secret" }, "--secret needs a value" },
		{ { "store", "add", "x", "--secret", KEY1, "--policy", "slowest" }, "--policy" },
		{ { "store", "add", "x", "--secret", KEY1, "--split-tolerance", "1001" }, "--split-tolerance" },
		{ { "store", "add", "x", "--secret", KEY1, "--split-tolerance", "5%" }, "--split-tolerance" },
		{ { "store", "add", "x", "--secret", KEY1, "--callback-url", "http://a.example" },
		  "--callback-url" },
		{ { "store", "add", "x", "--secret", KEY1, "--bogus" }, "--bogus" },
		{ { "store", "add", "x", "y", "--secret", KEY1 }, "'y'" },
		{ { "store", "add", "--secret", KEY1 }, "missing CODE" },
		{ { "store", "add", "x", "--secret", KEY1, "-c", "f.conf" }, "-c FILE goes before" },
	};
	char db[512];
	migrated_db("dropship_ctl_reject", db, sizeof db);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *const *a = cases[i].args;
		struct ctl_run r = ctl_argv(db, NULL, a);
		CU_ASSERT_EQUAL(r.rc, 2);
		CU_ASSERT(has(r.err, cases[i].names));
		CU_ASSERT(has(r.err, "--help"));
		CU_ASSERT(!has(r.err, "not-a-whsec-key"));
		ctl_run_free(&r);
	}
	/* Nine secrets: one more than a store may hold. */
	CU_ASSERT_EQUAL(ctl_rc(db, "store", "add", "x", "--secret", KEY1, "--secret", KEY1, "--secret",
	                       KEY1, NULL), 0);
	struct ctl_run r = ctl(db, "store", "add", "y", "--secret", KEY1, "--secret", KEY1, "--secret",
	                       KEY1, "--secret", KEY1, "--secret", KEY1, "--secret", KEY1, "--secret",
	                       KEY1, "--secret", KEY1, "--secret", KEY1, NULL);
	CU_ASSERT_EQUAL(r.rc, 2);
	CU_ASSERT(has(r.err, "at most 8"));
	ctl_run_free(&r);
	/* A native store cannot switch formats while keeping whsec_ secrets,
	 * nor take a platform secret. */
	CU_ASSERT_EQUAL(ctl_rc(db, "store", "add", "x", "--update", "--format", "shopify", NULL), 2);
	CU_ASSERT_EQUAL(ctl_rc(db, "store", "add", "x", "--update", "--secret", "plain", NULL), 2);
	CU_ASSERT_EQUAL(count(db, "SELECT count(*) FROM stores"), 1);
	CU_ASSERT_EQUAL(count(db, "SELECT count(*) FROM stores WHERE code = 'x' AND format = 'native'"
	                          " AND cardinality(secrets) = 3"), 1);
}

static void test_store_list(void)
{
	char db[512];
	migrated_db("dropship_ctl_list", db, sizeof db);
	struct ctl_run r = ctl(db, "store", "list", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "no stores"));
	ctl_run_free(&r);
	CU_ASSERT_EQUAL(ctl_rc(db, "store", "add", "alpha", "--secret", KEY1, "--secret", KEY2,
	                       "--callback-url", "https://alpha.example/cb", NULL), 0);
	CU_ASSERT_EQUAL(ctl_rc(db, "store", "add", "beta-2", "--format", "woocommerce", "--secret",
	                       "wc-secret-value", "--policy", "priority", NULL), 0);
	r = ctl(db, "store", "list", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "CODE"));
	CU_ASSERT(has(r.out, "SECRETS"));
	CU_ASSERT(has(r.out, "alpha   native       cheapest  10      5.0000   0.00         0.00          true    2        "
	                     "https://alpha.example/cb"));
	CU_ASSERT(has(r.out, "beta-2  woocommerce  priority  10      5.0000   0.00         0.00          true    1        -"));
	CU_ASSERT(!has(r.out, "whsec_") && !has(r.out, "wc-secret-value"));
	ctl_run_free(&r);
	CU_ASSERT_EQUAL(ctl_rc(db, "store", "list", "extra", NULL), 2);
}

static void test_secret_new(void)
{
	char *keys[2] = { NULL, NULL };
	for (int i = 0; i < 2; i++) {
		struct ctl_run r = ctl(NULL, "secret", "new", NULL);
		CU_ASSERT_EQUAL(r.rc, 0);
		keys[i] = r.out;
		r.out = NULL;
		ctl_run_free(&r);
	}
	const char *k = keys[0] ? keys[0] : "";
	CU_ASSERT_EQUAL(strncmp(k, "whsec_", 6), 0);
	CU_ASSERT_EQUAL(strlen(k), 6 + 44 + 1);
	CU_ASSERT(k[strlen(k) - 1] == '\n');
	unsigned char raw[64];
	/* 44 base64 characters with one '=' of padding: 33 - 1 = 32 bytes. */
	if (strlen(k) == 6 + 44 + 1) {
		CU_ASSERT_EQUAL(EVP_DecodeBlock(raw, (const unsigned char *)k + 6, 44), 33);
		CU_ASSERT(k[6 + 43] == '=' && k[6 + 42] != '=');
	}
	CU_ASSERT(keys[1] && strcmp(k, keys[1]) != 0);

	/* A fresh key is what a native store takes. */
	char db[512], key[64];
	migrated_db("dropship_ctl_secret", db, sizeof db);
	snprintf(key, sizeof key, "%.*s", (int)strcspn(k, "\n"), k);
	CU_ASSERT_EQUAL(ctl_rc(db, "store", "add", "fresh", "--secret", key, NULL), 0);
	free(keys[0]);
	free(keys[1]);
	CU_ASSERT_EQUAL(ctl_rc(NULL, "secret", "new", "extra", NULL), 2);
}

static void test_help_and_version(void)
{
	static const char *const words[] = {
		"migrate", "--dir", "--sql-dir", "store add", "--secret", "--format", "--policy",
		"--split-tolerance", "--callback-url", "store list", "secret new", "example",
		"exit codes", "DROPSHIP_DATABASE_URL", "--update", "store disable", "store enable",
		"supplier disable", "supplier enable", "catalog import", "--as-of", "order show",
		"--external", "order list", "order reroute", "outbox list", "outbox retry", "--failed",
		"--since", "--limit", "--json", "stranded_orders",
	};
	const char *flags[] = { "--help", "-h" };
	for (int f = 0; f < 2; f++) {
		struct ctl_run r = ctl(NULL, flags[f], NULL);
		CU_ASSERT_EQUAL(r.rc, 0);
		for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
			CU_ASSERT(has(r.out, words[i]));
		ctl_run_free(&r);
	}
	struct ctl_run r = ctl(NULL, "--version", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, DROPSHIP_VERSION));
	ctl_run_free(&r);
}

static void test_usage_errors(void)
{
	struct ctl_run r = ctl(NULL, "frobnicate", NULL);
	CU_ASSERT_EQUAL(r.rc, 2);
	CU_ASSERT(has(r.err, "unknown command 'frobnicate'"));
	CU_ASSERT(has(r.err, "--help"));
	ctl_run_free(&r);
	r = ctl(NULL, "store", "remove", "x", NULL);
	CU_ASSERT_EQUAL(r.rc, 2);
	CU_ASSERT(has(r.err, "'remove'"));
	ctl_run_free(&r);
	r = ctl(NULL, "migrate", "--bogus", NULL);
	CU_ASSERT_EQUAL(r.rc, 2);
	CU_ASSERT(has(r.err, "--bogus"));
	ctl_run_free(&r);
	CU_ASSERT_EQUAL(ctl_rc(NULL, NULL), 2);
	CU_ASSERT_EQUAL(ctl_rc(NULL, "store", NULL), 2);
	CU_ASSERT_EQUAL(ctl_rc(NULL, "--nope", "migrate", NULL), 2);
	CU_ASSERT_EQUAL(ctl_rc(NULL, "migrate", "--dir", NULL), 2);
}

static void test_runtime_errors(void)
{
	char db[512], bad[700], dir[256], conf[300];
	fresh_db("dropship_ctl_conn", db, sizeof db);
	/* Later keywords win: a database that does not exist, with a password
	 * that must not be echoed. */
	snprintf(bad, sizeof bad, "%s dbname=dropship_ctl_missing password=s3cr3t-pw", db);
	struct ctl_run r = ctl(bad, "store", "list", NULL);
	CU_ASSERT_EQUAL(r.rc, 1);
	CU_ASSERT(has(r.err, "cannot connect to database (DROPSHIP_DATABASE_URL / [database] url)"));
	CU_ASSERT(has(r.err, "dropship_ctl_missing"));
	CU_ASSERT(!has(r.err, "s3cr3t-pw"));
	ctl_run_free(&r);

	/* Not migrated yet: PostgreSQL's message, and what to do. */
	r = ctl(db, "store", "list", NULL);
	CU_ASSERT_EQUAL(r.rc, 1);
	CU_ASSERT(has(r.err, "relation \"stores\" does not exist"));
	CU_ASSERT(has(r.err, "migrate"));
	ctl_run_free(&r);

	/* A configuration error is a usage error, naming the file. */
	snprintf(dir, sizeof dir, "/tmp/dropship-ctl.XXXXXX");
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	write_file(dir, "bad.conf", "w", "[nowhere]\nkey = 1\n");
	snprintf(conf, sizeof conf, "%s/bad.conf", dir);
	r = ctl(db, "-c", conf, "migrate", NULL);
	CU_ASSERT_EQUAL(r.rc, 2);
	CU_ASSERT(has(r.err, "bad.conf"));
	ctl_run_free(&r);
	rm_tree(dir);

	r = ctl(db, "migrate", "--dir", "/nonexistent/migrations", NULL);
	CU_ASSERT_EQUAL(r.rc, 1);
	CU_ASSERT(has(r.err, "/nonexistent/migrations"));
	ctl_run_free(&r);
}

int main(void)
{
	static const struct harness_test tests[] = {
		{ "migrate applies each file once", test_migrate_applies_once },
		{ "migrate refuses a changed or missing applied file", test_migrate_refuses_changed_file },
		{ "a failing migration rolls back and names file and line", test_migrate_failure_rolls_back },
		{ "concurrent migrates apply once", test_migrate_concurrent },
		{ "migrate recreates the views of sql/", test_migrate_refreshes_views },
		{ "store add creates, then updates only what is given", test_store_add_and_update },
		{ "store add refuses an existing code without --update", test_store_add_refuses_existing },
		{ "store disable and enable", test_store_disable_enable },
		{ "store add rejects bad input and writes nothing", test_store_add_rejects },
		{ "store list shows stores, not secrets", test_store_list },
		{ "secret new makes a 32-byte whsec_ key", test_secret_new },
		{ "--help and --version", test_help_and_version },
		{ "usage errors exit 2", test_usage_errors },
		{ "runtime errors exit 1 without leaking the URL", test_runtime_errors },
		{ NULL, NULL },
	};
	return harness_main("ctl", NULL, NULL, tests);
}
