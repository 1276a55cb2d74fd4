/* dropshipd: the order-routing server. Parses flags, loads the config and
 * runs the server until SIGTERM or SIGINT, then drains and exits 0. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "check.h"
#include "config/config.h"
#include "log/log.h"
#include "mem/mem.h"
#include "server/server.h"
#include "version/version.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: dropshipd -c FILE [--check-config]\n"
	        "\n"
	        "The dropship order-routing server: takes storefront order webhooks over\n"
	        "HTTPS, stores them in PostgreSQL and answers only after COMMIT.\n"
	        "\n"
	        "options:\n"
	        "  -c, --config FILE   configuration file, required (INI; see\n"
	        "                      config/dropshipd.conf and docs/config.md for every key).\n"
	        "                      Every key can be overridden by DROPSHIP_<SECTION>_<KEY>,\n"
	        "                      e.g. DROPSHIP_DATABASE_URL.\n"
	        "      --check-config  check the configuration without starting: every key, the\n"
	        "                      TLS certificate and key (and that they match), the CA\n"
	        "                      file, the database URL's syntax (no connection), the hosts\n"
	        "                      of both listen addresses (no bind). Prints every error and\n"
	        "                      exits 1, or prints \"FILE: configuration ok\" and exits 0.\n"
	        "  -h, --help          this help\n"
	        "  -V, --version       print the version\n"
	        "\n"
	        "signals: SIGTERM or SIGINT stop accepting connections, finish the requests in\n"
	        "flight and exit 0.\n"
	        "exit codes: 0 success, 1 runtime failure (cannot start: certificate, key,\n"
	        "address in use), 2 usage or configuration error.\n"
	        "\n"
	        "example:\n"
	        "  dropshipd -c config/dropshipd.conf\n");
}

/* Signals are caught on a loop of the main thread so the handler can do real work. */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	struct server *srv = arg;
	log_info("stopping", "signal=%d", (int)sig);
	server_stop(srv);
}

int main(int argc, char **argv)
{
	mem_use_for_libraries();
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	int check_only = 0, opt;
	while ((opt = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 'k': check_only = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("dropshipd %s\n", DROPSHIP_VERSION); return 0;
		default:
			fprintf(stderr, "dropshipd: see --help\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "dropshipd: unexpected argument '%s'; see --help\n", argv[optind]);
		return 2;
	}
	/* Defaults alone would run against whatever database and certificate
	 * happen to be at the default places: the file is not optional. */
	if (!path) {
		fprintf(stderr, "dropshipd: -c FILE is required\n");
		usage(stderr);
		return 2;
	}
	if (check_only)
		return check_config(path);

	static struct config cfg;
	char err[1024], qerr[1100];
	if (load_config(path, &cfg) < 0)
		return 2;
	log_set_level_name(cfg.server.log_level);
	signal(SIGPIPE, SIG_IGN);

	int rc = 1;
	struct event_base *base = NULL;
	struct event *sigterm = NULL, *sigint = NULL;
	struct server *srv = server_new(&cfg, err, sizeof err);
	if (!srv) {
		log_error("cannot start", "error=%s", log_quote(qerr, sizeof qerr, err));
		goto cleanup;
	}
	base = event_base_new();
	sigterm = base ? evsignal_new(base, SIGTERM, on_signal, srv) : NULL;
	sigint = base ? evsignal_new(base, SIGINT, on_signal, srv) : NULL;
	if (!sigterm || !sigint || evsignal_add(sigterm, NULL) < 0 || evsignal_add(sigint, NULL) < 0) {
		log_error("cannot install signal handlers", "%s", "");
		goto cleanup;
	}
	if (server_start(srv, err, sizeof err) < 0) {
		log_error("cannot start", "error=%s", log_quote(qerr, sizeof qerr, err));
		server_stop(srv);
		server_wait(srv);
		goto cleanup;
	}
	log_info("listening", "port=%d version=%s", server_port(srv), DROPSHIP_VERSION);
	/* One signal is enough: the loop ends after the first stop request. */
	event_base_loop(base, EVLOOP_ONCE);
	server_wait(srv);
	log_info("stopped", "%s", "");
	rc = 0;
cleanup:
	if (sigterm)
		event_free(sigterm);
	if (sigint)
		event_free(sigint);
	if (base)
		event_base_free(base);
	server_free(srv);
	return rc;
}
