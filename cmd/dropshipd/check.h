/* Loading the configuration for dropshipd, and --check-config. Errors go
 * to stderr, one a line, as "dropshipd: MESSAGE". */
#ifndef DROPSHIPD_CHECK_H
#define DROPSHIPD_CHECK_H

#include "config/config.h"

/* Loads path (defaults, file, environment, checks between keys) into cfg,
 * printing every error. Returns 0, or -1 when there was any. */
int load_config(const char *path, struct config *cfg);

/* --check-config: loads path like load_config, then checks what a start
 * would need without starting: the TLS certificate and key load and
 * match, [dispatch] tls_ca_file loads when set, [database] url parses
 * (no connection), the hosts of [server] listen and [admin] listen are
 * numeric or resolve (no bind). Prints every error, or "PATH:
 * configuration ok" on stdout. Returns the exit code: 0 valid, 1 not. */
int check_config(const char *path);

#endif
