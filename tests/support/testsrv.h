/* testsrv: runs build/dropshipd and build/dropship-supplier-sim as child
 * processes for end-to-end tests. */
#ifndef DROPSHIP_TEST_TESTSRV_H
#define DROPSHIP_TEST_TESTSRV_H
#include <stddef.h>
#include <sys/types.h>
#include <jansson.h>

/* A server process: dropshipd (testsrv_start) or the simulator (testsrv_start_sim). */
struct testsrv {
	pid_t pid;
	int port;
	int admin_port;    /* dropshipd's [admin] listener, 0 when it has none */
	char dir[256];     /* temp dir with the log (and dropshipd's config) */
	char log[320];     /* the server's stdout and stderr */
};

/* Writes a config (listen 127.0.0.1:0, an admin listener on 127.0.0.1:0
 * unless server_extra has an [admin] section, the test certificate, database
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
 * certificate, one --supplier per entry of suppliers ("CODE=SECRET"), then
 * the flags of extra (both NULL-terminated; extra may be NULL), logging into
 * a temp dir, and waits up to timeout_ms for its "listening" line.
 * Returns 0, or -1 after printing the log's tail. */
int testsrv_start_sim(struct testsrv *s, const char *const *suppliers, const char *const *extra,
                      int timeout_ms);

/* SIGTERM, then waits up to timeout_ms (SIGKILL after). On a clean exit
 * removes the temp dir, else prints the log's tail. Returns the exit status
 * (128+signal when killed), or -1 when s is not running. */
int testsrv_stop_sim(struct testsrv *s, int timeout_ms);

/* The simulator's GET /stats, parsed (caller decrefs), or NULL. */
json_t *testsrv_sim_stats(int port);

/* An integer member of the stats, or -1 when it is missing or not an integer. */
long testsrv_sim_stat(const json_t *stats, const char *key);

/* The folder with the test certificate (server.crt, server.key):
 * DROPSHIP_TEST_TLS_DIR, or one made on first use. */
const char *testsrv_tls_dir(void);

/* Makes a fresh self-signed certificate in dir with .ci/devcert.sh.
 * Returns the script's exit status. */
int testsrv_make_cert(const char *dir);

/* A fresh database `dbname`, migrated, with store "shop" signed by secret.
 * Fills conninfo. Returns 0, or -1. */
int testsrv_prepare_db(const char *dbname, const char *secret, char *conninfo, size_t cap);

#endif
