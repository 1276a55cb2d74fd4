/* nodes: several dropshipd processes on one database behind HAProxy, for
 * end-to-end tests of the N-node deployment (docs/deploy.md). HAProxy runs
 * deploy/haproxy/haproxy.cfg with the test's ports put in; each node keeps
 * its port across restarts, so that HAProxy's server line still points at it. */
#ifndef DROPSHIP_TEST_NODES_H
#define DROPSHIP_TEST_NODES_H
#include <stddef.h>
#include <sys/types.h>

#include "support/testsrv.h"

#define NODES_MAX 8

/* A cluster: nodes 0..n-1 are HAProxy's servers node1..nodeN. */
struct nodes {
	int n;
	struct testsrv node[NODES_MAX];   /* the running process; pid 0 while down */
	int starts[NODES_MAX];            /* processes started per node, restarts included */
	char conf[NODES_MAX][320];        /* each node's configuration file */
	const char *conninfo;             /* borrowed: the one database of every node */
	pid_t haproxy_pid;
	int port;                         /* HAProxy's frontend: where clients connect */
	int stats_port;                   /* HAProxy's statistics page (plain HTTP) */
	char dir[256];                    /* temp dir: configurations and logs */
	char haproxy_cfg[320];
	char haproxy_log[320];
};

/* The haproxy program ("haproxy" in PATH or /usr/sbin/haproxy), or NULL when
 * it is not installed. */
const char *nodes_haproxy_bin(void);

/* Writes n node configurations (a fixed port on 127.0.0.1, reuse_port false,
 * an admin listener on a free port, the test certificate, then server_extra
 * as for testsrv_start) and HAProxy's, starts the nodes, waits for each
 * one's /readyz, then starts HAProxy and waits until a GET /readyz through
 * it answers 200. Returns 0, or -1 after printing why (call nodes_stop). */
int nodes_start(struct nodes *c, int n, const char *conninfo, const char *server_extra);

/* Starts node i again on its port (a new log, <dir>/nodeI.S.log for start
 * S) and waits for its /readyz. Returns 0 or -1. */
int nodes_start_node(struct nodes *c, int i);

/* Sends sig to node i and waits for it (SIGKILL after 30 s). Returns its
 * exit status (128+signal when a signal ended it), -1 when it was down. */
int nodes_stop_node(struct nodes *c, int i, int sig);

/* Stops HAProxy and every node still running. */
void nodes_stop(struct nodes *c);

/* HAProxy's view of node i from its statistics page: the server's status
 * ("UP", "DOWN", "UP 1/2"...) and last check's result ("L7OK", "L4CON"...).
 * Returns 0, or -1 when the page could not be read. */
int nodes_haproxy_state(const struct nodes *c, int i, char *status, size_t scap, char *check, size_t ccap);

/* How many lines of the file at path contain every string of needles
 * (NULL-terminated); -1 when it cannot be read. */
long nodes_log_count(const char *path, const char *const *needles);

#endif
