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
#include "startup.h"
#include "version/version.h"

/* What the main thread's loop (signals and the database check) works on. */
struct main_state {
	const char *path;
	struct event_base *base;
	struct server *srv;
	struct startup_check db;
	struct event *db_timer;  /* the next database check, while it is unreachable */
	int rc;                  /* exit code */
};

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
	        "flight and exit 0. SIGHUP reloads the file: the TLS certificate and key (new\n"
	        "connections use them), [dispatch], [admin] token and log_level; keys that need\n"
	        "a restart are logged; a file with errors is refused and the running one kept.\n"
	        "\n"
	        "start-up: the database must be at this binary's schema (%s); if it is not\n"
	        "migrated, dropshipd exits 1 saying to run `dropshipctl -c FILE migrate`. An\n"
	        "unreachable database is retried (1 s to 30 s apart) while requests get 503.\n"
	        "\n"
	        "exit codes: 0 success, 1 runtime failure (cannot start: certificate, key,\n"
	        "address in use, database schema), 2 usage or configuration error.\n"
	        "\n"
	        "example:\n"
	        "  dropshipd -c config/dropshipd.conf\n",
	        startup_schema_version());
}

/* Signals are caught on a loop of the main thread so the handler can do real work. */
static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	struct main_state *m = arg;
	log_info("stopping", "signal=%d", (int)sig);
	server_stop(m->srv);
	event_base_loopbreak(m->base);
}

static void on_reload_error(const struct config_error *e, void *arg)
{
	(void)arg;
	char q[600];
	log_error("reload: configuration error", "error=%s", log_quote(q, sizeof q, e->msg));
}

/* SIGHUP: the whole file again, taken only if all of it is valid. */
static void on_reload_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig, (void)what;
	struct main_state *m = arg;
	static struct config next; /* large; only this thread reloads */
	log_info("reloading", "config=%s", m->path);
	int n = config_load_all(&next, m->path, on_reload_error, NULL);
	if (n > 0) {
		log_error("reload refused: the running configuration is kept", "errors=%d", n);
		return;
	}
	char err[512], q[600];
	if (server_reload(m->srv, &next, err, sizeof err) < 0)
		log_error("reload refused: the running configuration is kept", "error=%s",
		          log_quote(q, sizeof q, err));
}

/* The database was unreachable at start: try again, and stop if it turns
 * out not to be migrated. */
static void on_db_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct main_state *m = arg;
	switch (startup_check_db(&m->db)) {
	case STARTUP_DB_READY:
		return;
	case STARTUP_DB_UNREACHABLE: {
		struct timeval tv = { m->db.delay_ms / 1000, (m->db.delay_ms % 1000) * 1000 };
		evtimer_add(m->db_timer, &tv);
		return;
	}
	case STARTUP_DB_WRONG_SCHEMA:
		m->rc = 1;
		server_stop(m->srv);
		event_base_loopbreak(m->base);
		return;
	}
}

static int run(const char *path);

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
	return run(path);
}

/* Loads path and serves until a stop signal. Returns the exit code. */
static int run(const char *path)
{
	static struct config cfg;
	char err[1024], qerr[1100];
	if (load_config(path, &cfg) < 0)
		return 2;
	log_set_level_name(cfg.server.log_level);
	signal(SIGPIPE, SIG_IGN);

	struct main_state m = { .path = path, .rc = 1 };
	struct event *sigterm = NULL, *sigint = NULL, *sighup = NULL;
	/* Binds the listeners: a second instance on the address stops here. */
	m.srv = server_new(&cfg, err, sizeof err);
	if (!m.srv) {
		log_error("cannot start", "error=%s", log_quote(qerr, sizeof qerr, err));
		goto cleanup;
	}
	m.db = (struct startup_check){ .url = cfg.database.url, .config_path = path };
	enum startup_db db = startup_check_db(&m.db);
	if (db == STARTUP_DB_WRONG_SCHEMA)
		goto cleanup;
	m.base = event_base_new();
	if (!m.base)
		goto cleanup;
	sigterm = evsignal_new(m.base, SIGTERM, on_stop_signal, &m);
	sigint = evsignal_new(m.base, SIGINT, on_stop_signal, &m);
	sighup = evsignal_new(m.base, SIGHUP, on_reload_signal, &m);
	m.db_timer = evtimer_new(m.base, on_db_timer, &m);
	if (!sigterm || !sigint || !sighup || !m.db_timer || evsignal_add(sigterm, NULL) < 0 ||
	    evsignal_add(sigint, NULL) < 0 || evsignal_add(sighup, NULL) < 0) {
		log_error("cannot install signal handlers", "%s", "");
		goto cleanup;
	}
	if (server_start(m.srv, err, sizeof err) < 0) {
		log_error("cannot start", "error=%s", log_quote(qerr, sizeof qerr, err));
		server_stop(m.srv);
		server_wait(m.srv);
		goto cleanup;
	}
	if (server_admin_port(m.srv) > 0)
		log_info("listening", "port=%d admin_port=%d version=%s schema=%s", server_port(m.srv),
		         server_admin_port(m.srv), DROPSHIP_VERSION, startup_schema_version());
	else
		log_info("listening", "port=%d version=%s schema=%s", server_port(m.srv), DROPSHIP_VERSION,
		         startup_schema_version());
	if (db == STARTUP_DB_UNREACHABLE) {
		struct timeval tv = { m.db.delay_ms / 1000, (m.db.delay_ms % 1000) * 1000 };
		evtimer_add(m.db_timer, &tv);
	}
	m.rc = 0;
	/* Until a stop signal, or a database found not to be migrated. */
	event_base_dispatch(m.base);
	server_wait(m.srv);
	log_info("stopped", "%s", "");
cleanup:
	if (m.db_timer)
		event_free(m.db_timer);
	if (sigterm)
		event_free(sigterm);
	if (sigint)
		event_free(sigint);
	if (sighup)
		event_free(sighup);
	if (m.base)
		event_base_free(m.base);
	server_free(m.srv);
	return m.rc;
}
