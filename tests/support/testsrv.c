#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "support/ctl.h"
#include "support/https.h"
#include "support/proc.h"
#include "support/testdb.h"
#include "support/testsrv.h"

static const char *tls_dir(void)
{
	static char made[256];
	const char *d = getenv("DROPSHIP_TEST_TLS_DIR");
	if (d && *d)
		return d;
	if (!made[0]) {
		snprintf(made, sizeof made, "/tmp/dropship-test-tls.%d", (int)getpid());
		char script[512];
		snprintf(script, sizeof script, "%s/.ci/devcert.sh",
		         getenv("DROPSHIP_TEST_ROOT") ? getenv("DROPSHIP_TEST_ROOT") : ".");
		const char *argv[] = { "sh", script, made, NULL };
		if (proc_run(argv, NULL, NULL, NULL) != 0)
			fprintf(stderr, "testsrv: cannot create a certificate in %s\n", made);
	}
	return made;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void print_log_tail(const struct testsrv *s)
{
	char cmd[400];
	snprintf(cmd, sizeof cmd, "tail -n 30 '%s' >&2", s->log);
	if (system(cmd) != 0)
		fprintf(stderr, "testsrv: no log at %s\n", s->log);
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
	const char *tls = tls_dir();
	if (!server_extra)
		server_extra = "";
	/* Two workers unless the test asks otherwise: keys may not repeat. */
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
	char line[512];
	if (proc_wait_line(s->log, "msg=\"listening\"", 15000, line, sizeof line) < 0) {
		fprintf(stderr, "testsrv: dropshipd did not start\n");
		print_log_tail(s);
		testsrv_stop(s, SIGKILL);
		return -1;
	}
	const char *p = strstr(line, "port=");
	s->port = p ? (int)strtol(p + 5, NULL, 10) : 0;
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

int testsrv_wait_status(const struct testsrv *s, const char *path, int want_status, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 100) {
		struct https_resp r;
		if (https_once(s->port, "GET", path, NULL, NULL, 0, &r) == 0 && r.status == want_status) {
			https_resp_free(&r);
			return 1;
		}
		https_resp_free(&r);
		sleep_ms(100);
	}
	return 0;
}

pid_t testsrv_start_sim(const char *name, const char *const *suppliers, char *port, size_t cap)
{
	const char *tls = getenv("DROPSHIP_TEST_TLS_DIR");
	char cert[300], key[300], log[300];
	snprintf(cert, sizeof cert, "%s/server.crt", tls ? tls : "/tmp");
	snprintf(key, sizeof key, "%s/server.key", tls ? tls : "/tmp");
	snprintf(log, sizeof log, "/tmp/dropship-sim-%s-%d.log", name, (int)getpid());
	unlink(log);
	const char *argv[32] = { proc_build_path("dropship-supplier-sim"), "--listen", "127.0.0.1:0",
	                         "--tls-cert", cert, "--tls-key", key };
	size_t n = 7;
	for (size_t i = 0; suppliers[i] && n + 3 < sizeof argv / sizeof argv[0]; i++) {
		argv[n++] = "--supplier";
		argv[n++] = suppliers[i];
	}
	argv[n] = NULL;
	pid_t pid = proc_spawn(argv, NULL, log);
	char line[512];
	if (pid <= 0 || proc_wait_line(log, "msg=\"listening\"", 10000, line, sizeof line) < 0) {
		if (pid > 0)
			proc_stop(pid, SIGKILL, 1000);
		return -1;
	}
	const char *p = strstr(line, "port=");
	snprintf(port, cap, "%ld", p ? strtol(p + 5, NULL, 10) : 0L);
	return pid;
}

int testsrv_prepare_db(const char *dbname, const char *secret, char *conninfo, size_t cap)
{
	if (testdb_create(dbname, conninfo, cap) < 0 || ctl_rc(conninfo, "migrate", NULL) != 0 ||
	    ctl_rc(conninfo, "store", "add", "shop", "--secret", secret, NULL) != 0)
		return -1;
	return 0;
}
