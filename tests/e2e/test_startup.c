/* End to end: what dropshipd does at start before it serves anything — the
 * database's schema version, a database that is not there yet, a second
 * process on an address already served. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "support/harness.h"
#include "support/https.h"
#include "support/proc.h"
#include "support/testdb.h"
#include "support/testsrv.h"
#include "support/wait.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

/* A config file for dropshipd on listen with the test certificate and an
 * admin listener on a free port, then extra lines of [server]; path is a
 * mkstemp template the caller unlinks. */
static void conf_write(char *path, const char *listen, const char *extra)
{
	const char *tls = testsrv_tls_dir();
	char text[2048];
	snprintf(text, sizeof text,
	         "[admin]\nlisten = 127.0.0.1:0\n"
	         "[server]\nlisten = %s\nworkers = 1\ntls_cert = %s/server.crt\ntls_key = %s/server.key\n%s"
	         "[database]\npool_size = 2\n",
	         listen, tls, tls, extra ? extra : "");
	int fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL((size_t)write(fd, text, strlen(text)), strlen(text));
	close(fd);
}

/* Runs dropshipd -c path against conninfo to its end; returns the exit
 * status and what it logged (caller frees). */
static int run_to_exit(const char *path, const char *conninfo, char **log)
{
	char url[700];
	snprintf(url, sizeof url, "DROPSHIP_DATABASE_URL=%s", conninfo);
	const char *env[] = { url, NULL };
	const char *argv[] = { proc_build_path("dropshipd"), "-c", path, NULL };
	return proc_run(argv, env, NULL, log);
}

static int count_lines(const char *text, const char *needle)
{
	int n = 0;
	for (const char *p = text; p && (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* Not migrated, migrated to an older version, migrated by a newer binary:
 * each stops dropshipd with exit 1 before it listens, saying what to do. */
static void test_schema_version(void)
{
	char conninfo[512], path[] = "/tmp/dropship-startup.XXXXXX";
	conf_write(path, "127.0.0.1:0", NULL);
	CU_ASSERT_EQUAL_FATAL(testdb_create("dropship_startup_schema", conninfo, sizeof conninfo), 0);
	char *log = NULL;
	char hint[400];
	snprintf(hint, sizeof hint, "run `dropshipctl -c %s migrate`", path);

	CU_ASSERT_EQUAL(run_to_exit(path, conninfo, &log), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "the database has no dropship schema"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, hint));
	CU_ASSERT_PTR_NULL(strstr(log, "msg=\"listening\""));
	free(log);

	CU_ASSERT_EQUAL_FATAL(testsrv_prepare_db("dropship_startup_schema", SECRET, conninfo, sizeof conninfo), 0);
	PGconn *db = testdb_connect(conninfo);
	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	char *newest = testdb_value(db, "SELECT max(version) FROM schema_migrations", 0, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(newest);
	const char *v[] = { newest };
	CU_ASSERT_EQUAL(testdb_exec(db, "DELETE FROM schema_migrations WHERE version = $1", 1, v), 0);
	CU_ASSERT_EQUAL(run_to_exit(path, conninfo, &log), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "the database schema is older than this dropshipd"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, hint));
	free(log);

	CU_ASSERT_EQUAL(testdb_exec(db, "INSERT INTO schema_migrations (version, name, checksum)"
	                                " VALUES ($1, 'back', 'x'), ('9999', '9999_future.sql', 'x')", 1, v), 0);
	CU_ASSERT_EQUAL(run_to_exit(path, conninfo, &log), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "the database schema is newer than this dropshipd"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "schema=9999"));
	free(log);

	/* At the version it was built for it starts. */
	CU_ASSERT_EQUAL(testdb_exec(db, "DELETE FROM schema_migrations WHERE version = '9999'", 0, NULL), 0);
	struct testsrv s;
	CU_ASSERT_EQUAL_FATAL(testsrv_start(&s, conninfo, "workers = 1\n", 1), 0);
	CU_ASSERT_TRUE(testsrv_log_contains(&s, "schema="));
	CU_ASSERT_EQUAL(testsrv_stop(&s, SIGTERM), 0);
	free(newest);
	PQfinish(db);
	unlink(path);
}

/* A database that does not answer yet: dropshipd listens and says 503 on
 * /readyz, logs the failure once (not once per attempt or connection),
 * and is ready once the database is there and migrated. */
static void test_database_late(void)
{
	char conninfo[512];
	CU_ASSERT_EQUAL_FATAL(testdb_create("dropship_startup_late", conninfo, sizeof conninfo), 0);
	/* The same cluster, a database that is not there (dropped again). */
	char admin_info[600];
	const char *name = strstr(conninfo, "dbname=dropship_startup_late");
	CU_ASSERT_PTR_NOT_NULL_FATAL(name);
	snprintf(admin_info, sizeof admin_info, "%.*sdbname=postgres%s", (int)(name - conninfo), conninfo,
	         name + strlen("dbname=dropship_startup_late"));
	PGconn *admin = testdb_connect(admin_info);
	CU_ASSERT_PTR_NOT_NULL_FATAL(admin);
	CU_ASSERT_EQUAL_FATAL(testdb_exec(admin, "DROP DATABASE dropship_startup_late", 0, NULL), 0);

	struct testsrv s;
	CU_ASSERT_EQUAL_FATAL(testsrv_start(&s, conninfo, "workers = 2\n", 0), 0);
	CU_ASSERT_TRUE(testsrv_wait_status(&s, "/readyz", 503, 5000));
	wait_ms(3500); /* attempts at 0, 1 and 3 s */
	char *log = NULL;
	char cmd[400];
	snprintf(cmd, sizeof cmd, "cat '%s'", s.log);
	const char *argv[] = { "sh", "-c", cmd, NULL };
	CU_ASSERT_EQUAL(proc_run(argv, NULL, &log, NULL), 0);
	CU_ASSERT_EQUAL(count_lines(log, "msg=\"database unreachable: answering 503"), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "attempt=1 "));
	/* Each worker's pool says it once too, however many connections retry. */
	CU_ASSERT_EQUAL(count_lines(log, "msg=\"database connection failed\""), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "does not exist"));
	/* libpq's multi-line messages are one line of the log. */
	for (const char *p = log; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		CU_ASSERT_EQUAL(strncmp(p, "time=", 5), 0);
	free(log);

	char ready[600];
	CU_ASSERT_EQUAL_FATAL(testsrv_prepare_db("dropship_startup_late", SECRET, ready, sizeof ready), 0);
	CU_ASSERT_EQUAL(proc_wait_line(s.log, "msg=\"database reachable\"", 20000, NULL, 0), 0);
	CU_ASSERT_TRUE(testsrv_wait_status(&s, "/readyz", 200, 10000));
	CU_ASSERT_EQUAL(testsrv_stop(&s, SIGTERM), 0);
	PQfinish(admin);
}

/* One process per address: a second one exits 1 naming the address, unless
 * both ask for reuse_port (a handover). */
static void test_second_instance(void)
{
	char conninfo[512];
	CU_ASSERT_EQUAL_FATAL(testsrv_prepare_db("dropship_startup_two", SECRET, conninfo, sizeof conninfo), 0);
	struct testsrv a;
	CU_ASSERT_EQUAL_FATAL(testsrv_start(&a, conninfo, "workers = 1\n", 1), 0);
	char listen[64], path[] = "/tmp/dropship-startup.XXXXXX";
	snprintf(listen, sizeof listen, "127.0.0.1:%d", a.port);
	conf_write(path, listen, NULL);
	char *log = NULL;
	CU_ASSERT_EQUAL(run_to_exit(path, conninfo, &log), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, listen));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "in use"));
	free(log);
	unlink(path);
	CU_ASSERT_EQUAL(testsrv_stop(&a, SIGTERM), 0);

	/* reuse_port on both: the second starts beside the first. */
	CU_ASSERT_EQUAL_FATAL(testsrv_start(&a, conninfo, "workers = 1\nreuse_port = true\n", 1), 0);
	snprintf(listen, sizeof listen, "127.0.0.1:%d", a.port);
	char path2[] = "/tmp/dropship-startup.XXXXXX";
	conf_write(path2, listen, "reuse_port = true\n");
	char logpath[] = "/tmp/dropship-startup-log.XXXXXX";
	int fd = mkstemp(logpath);
	CU_ASSERT_FATAL(fd >= 0);
	close(fd);
	char url[700];
	snprintf(url, sizeof url, "DROPSHIP_DATABASE_URL=%s", conninfo);
	const char *env[] = { url, NULL };
	const char *argv[] = { proc_build_path("dropshipd"), "-c", path2, NULL };
	pid_t b = proc_spawn(argv, env, logpath);
	CU_ASSERT_FATAL(b > 0);
	CU_ASSERT_EQUAL(proc_wait_line(logpath, "msg=\"listening\"", 15000, NULL, 0), 0);
	int port = a.port;
	CU_ASSERT_EQUAL(testsrv_stop(&a, SIGTERM), 0);
	/* The address is still served, by the second. */
	struct https_resp r;
	CU_ASSERT_EQUAL(https_once(port, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	https_resp_free(&r);
	CU_ASSERT_EQUAL(proc_stop(b, SIGTERM, 30000), 0);
	unlink(path2);
	unlink(logpath);
}

static const struct harness_test tests[] = {
	{ "schema not migrated, older or newer: exit 1 with what to run", test_schema_version },
	{ "database not there yet: 503, one log line, ready when it comes", test_database_late },
	{ "a second process on the address exits 1 unless reuse_port", test_second_instance },
	{ NULL, NULL },
};

int main(void)
{
	return harness_main("startup", NULL, NULL, tests);
}
