/* testsrv: runs build/dropshipd as a child process for end-to-end tests. */
#ifndef DROPSHIP_TEST_TESTSRV_H
#define DROPSHIP_TEST_TESTSRV_H
#include <sys/types.h>

struct testsrv {
	pid_t pid;
	int port;
	char dir[256];     /* temp dir with the config and the log */
	char log[320];     /* dropshipd's stderr */
};

/* Writes a config (listen 127.0.0.1:0, the test certificate, database
 * conninfo, then server_extra lines appended to [server], e.g.
 * "workers = 1\nmax_body_bytes = 65536\n"), starts dropshipd and waits for
 * its "listening" line; with wait_ready also until /readyz answers 200.
 * The certificate comes from DROPSHIP_TEST_TLS_DIR, or is made on first use.
 * Returns 0, or -1 after printing the log's tail. */
int testsrv_start(struct testsrv *s, const char *conninfo, const char *server_extra, int wait_ready);

/* Sends sig, waits (SIGKILL after 30 s), removes the temp dir unless the
 * log shows an error. Returns the exit status (128+signal when killed). */
int testsrv_stop(struct testsrv *s, int sig);

/* True when the server's log contains needle. */
int testsrv_log_contains(const struct testsrv *s, const char *needle);

/* Polls GET path until it answers want_status or timeout_ms passes. Returns 1 on success. */
int testsrv_wait_status(const struct testsrv *s, const char *path, int want_status, int timeout_ms);

/* Starts build/dropship-supplier-sim on a free port with the test
 * certificate and one --supplier per entry of suppliers ("CODE=SECRET",
 * NULL-terminated), logging to /tmp/dropship-sim-NAME-PID.log; writes the
 * port into port. Returns the pid (stop it with proc_stop), or -1. */
pid_t testsrv_start_sim(const char *name, const char *const *suppliers, char *port, size_t cap);

/* A fresh database `dbname`, migrated, with store "shop" signed by secret.
 * Fills conninfo. Returns 0, or -1. */
int testsrv_prepare_db(const char *dbname, const char *secret, char *conninfo, size_t cap);

#endif
