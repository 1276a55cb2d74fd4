#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support/ctl.h"
#include "support/https.h"
#include "support/proc.h"
#include "support/testdb.h"
#include "support/testsrv.h"
#include "support/wait.h"

int testsrv_make_cert(const char *dir)
{
	char script[512];
	const char *root = getenv("DROPSHIP_TEST_ROOT");
	snprintf(script, sizeof script, "%s/.ci/devcert.sh", root && *root ? root : ".");
	const char *argv[] = { "sh", script, dir, NULL };
	return proc_run(argv, NULL, NULL, NULL);
}

const char *testsrv_tls_dir(void)
{
	static char made[256];
	const char *d = getenv("DROPSHIP_TEST_TLS_DIR");
	if (d && *d)
		return d;
	if (!made[0]) {
		snprintf(made, sizeof made, "/tmp/dropship-test-tls.%d", (int)getpid());
		if (testsrv_make_cert(made) != 0)
			fprintf(stderr, "testsrv: cannot create a certificate in %s\n", made);
	}
	return made;
}

static void print_log_tail(const struct testsrv *s)
{
	char cmd[400];
	snprintf(cmd, sizeof cmd, "tail -n 30 '%s' >&2", s->log);
	if (system(cmd) != 0)
		fprintf(stderr, "testsrv: no log at %s\n", s->log);
}

/* Waits for the "listening" line of s's log and takes the port from it
 * (0 when the line has none). Returns 0, or -1 when no such line came. */
static int read_port(struct testsrv *s, int timeout_ms)
{
	char line[512];
	if (proc_wait_line(s->log, "msg=\"listening\"", timeout_ms, line, sizeof line) < 0)
		return -1;
	const char *p = strstr(line, " port=");
	s->port = p ? (int)strtol(p + 6, NULL, 10) : 0;
	p = strstr(line, " admin_port=");
	s->admin_port = p ? (int)strtol(p + 12, NULL, 10) : 0;
	return 0;
}

int testsrv_start(struct testsrv *s, const char *conninfo, const char *server_extra, int wait_ready)
{
	memset(s, 0, sizeof *s);
	snprintf(s->dir, sizeof s->dir, "/tmp/dropship-testsrv.XXXXXX");
	if (!mkdtemp(s->dir))
		return -1;
	snprintf(s->log, sizeof s->log, "%s/dropshipd.log", s->dir);
	char conf[320];
	snprintf(conf, sizeof conf, "%s/dropshipd.conf", s->dir);
	FILE *f = fopen(conf, "w");
	if (!f)
		return -1;
	const char *tls = testsrv_tls_dir();
	if (!server_extra)
		server_extra = "";
	/* Two workers and an admin listener on a free port unless the test asks
	 * otherwise: keys and sections may not repeat. */
	if (!strstr(server_extra, "[admin]"))
		fprintf(f, "[admin]\nlisten = 127.0.0.1:0\n");
	fprintf(f, "[server]\nlisten = 127.0.0.1:0\n%stls_cert = %s/server.crt\n"
	           "tls_key = %s/server.key\n%s\n[database]\npool_size = 4\n",
	        strstr(server_extra, "workers") ? "" : "workers = 2\n", tls, tls, server_extra);
	fclose(f);

	char url[1100];
	snprintf(url, sizeof url, "DROPSHIP_DATABASE_URL=%s", conninfo);
	const char *env[] = { url, NULL };
	const char *argv[] = { proc_build_path("dropshipd"), "-c", conf, NULL };
	s->pid = proc_spawn(argv, env, s->log);
	if (s->pid <= 0)
		return -1;
	if (read_port(s, 15000) < 0) {
		fprintf(stderr, "testsrv: dropshipd did not start\n");
		print_log_tail(s);
		testsrv_stop(s, SIGKILL);
		return -1;
	}
	if (s->port <= 0 || (wait_ready && !testsrv_wait_status(s, "/readyz", 200, 15000))) {
		fprintf(stderr, "testsrv: dropshipd not ready\n");
		print_log_tail(s);
		testsrv_stop(s, SIGKILL);
		return -1;
	}
	return 0;
}

int testsrv_stop(struct testsrv *s, int sig)
{
	if (s->pid <= 0)
		return -1;
	int rc = proc_stop(s->pid, sig, 30000);
	s->pid = 0;
	return rc;
}

int testsrv_log_contains(const struct testsrv *s, const char *needle)
{
	FILE *f = fopen(s->log, "r");
	if (!f)
		return 0;
	char line[4096];
	int found = 0;
	while (!found && fgets(line, sizeof line, f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

/* A GET that testsrv_wait_status repeats. */
struct status_wait {
	int port;
	const char *path;
	int want;
};

static bool status_is(void *arg)
{
	const struct status_wait *w = arg;
	struct https_resp r;
	bool ok = https_once(w->port, "GET", w->path, NULL, NULL, 0, &r) == 0 && r.status == w->want;
	https_resp_free(&r);
	return ok;
}

int testsrv_wait_status(const struct testsrv *s, const char *path, int want_status, int timeout_ms)
{
	struct status_wait w = { s->port, path, want_status };
	return wait_until(status_is, &w, timeout_ms, 100);
}

int testsrv_start_sim(struct testsrv *s, const char *const *suppliers, const char *const *extra,
                      int timeout_ms)
{
	memset(s, 0, sizeof *s);
	snprintf(s->dir, sizeof s->dir, "/tmp/dropship-testsim.XXXXXX");
	if (!mkdtemp(s->dir))
		return -1;
	snprintf(s->log, sizeof s->log, "%s/sim.log", s->dir);
	const char *tls = testsrv_tls_dir();
	char cert[300], key[300];
	snprintf(cert, sizeof cert, "%s/server.crt", tls);
	snprintf(key, sizeof key, "%s/server.key", tls);
	const char *argv[48] = { proc_build_path("dropship-supplier-sim"), "--listen", "127.0.0.1:0",
	                         "--tls-cert", cert, "--tls-key", key };
	size_t n = 7, max = sizeof argv / sizeof argv[0] - 1;
	for (size_t i = 0; suppliers && suppliers[i] && n + 2 <= max; i++) {
		argv[n++] = "--supplier";
		argv[n++] = suppliers[i];
	}
	for (size_t i = 0; extra && extra[i] && n < max; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	s->pid = proc_spawn(argv, NULL, s->log);
	if (s->pid <= 0 || read_port(s, timeout_ms) < 0 || s->port <= 0) {
		fprintf(stderr, "testsrv: dropship-supplier-sim did not start\n");
		print_log_tail(s);
		if (s->pid > 0)
			proc_stop(s->pid, SIGKILL, 1000);
		s->pid = 0;
		return -1;
	}
	return 0;
}

int testsrv_stop_sim(struct testsrv *s, int timeout_ms)
{
	if (s->pid <= 0)
		return -1;
	int rc = proc_stop(s->pid, SIGTERM, timeout_ms);
	s->pid = 0;
	if (rc != 0) {
		fprintf(stderr, "testsrv: dropship-supplier-sim exited %d\n", rc);
		print_log_tail(s);
	} else {
		const char *rm[] = { "rm", "-rf", s->dir, NULL };
		if (proc_run(rm, NULL, NULL, NULL) != 0)
			fprintf(stderr, "testsrv: cannot remove %s\n", s->dir);
	}
	return rc;
}

json_t *testsrv_sim_stats(int port)
{
	struct https_resp r;
	json_t *j = NULL;
	if (https_once(port, "GET", "/stats", NULL, NULL, 0, &r) == 0 && r.status == 200)
		j = json_loads(r.body, 0, NULL);
	https_resp_free(&r);
	return j;
}

long testsrv_sim_stat(const json_t *stats, const char *key)
{
	json_t *v = json_object_get(stats, key);
	return json_is_integer(v) ? (long)json_integer_value(v) : -1;
}

int testsrv_prepare_db(const char *dbname, const char *secret, char *conninfo, size_t cap)
{
	if (testdb_create(dbname, conninfo, cap) < 0 || ctl_rc(conninfo, "migrate", NULL) != 0 ||
	    ctl_rc(conninfo, "store", "add", "shop", "--secret", secret, NULL) != 0)
		return -1;
	return 0;
}
