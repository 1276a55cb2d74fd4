/* server: dropshipd's HTTPS front. One event_base per worker thread, each
 * with its own SO_REUSEPORT listener, evhttp, TLS bufferevents and database
 * pool. Enforces the connection cap and the per-request receive deadline,
 * routes requests to handlers and drains gracefully on stop. */
#ifndef DROPSHIP_SERVER_H
#define DROPSHIP_SERVER_H
#include <stddef.h>

#include "config/config.h"

struct server;

/* Loads TLS, binds every worker's socket. NULL with a message in err. */
struct server *server_new(const struct config *cfg, char *err, size_t errlen);
/* The TCP port actually bound (useful with port 0). */
int server_port(const struct server *srv);
/* The admin listener's port, 0 when there is none. */
int server_admin_port(const struct server *srv);
/* SIGHUP: new TLS certificate and key for new connections, the live keys
 * ([dispatch], [admin], log level) to every worker; logs each key that
 * changed and whether it needs a restart. Thread-safe. Returns 0, or -1
 * with a message in err (nothing changed then). */
int server_reload(struct server *srv, const struct config *next, char *err, size_t errlen);
/* Starts the worker threads. Returns 0 or -1. */
int server_start(struct server *srv, char *err, size_t errlen);
/* Asks every worker to stop accepting, finish in-flight requests and exit. Thread-safe. */
void server_stop(struct server *srv);
/* Waits for the workers to exit. */
void server_wait(struct server *srv);
/* Frees everything (after server_wait). Accepts NULL. */
void server_free(struct server *srv);

#endif
