/* dropship-supplier-sim: a supplier endpoint for demos, tests and
 * benchmarks. Serves POST /suppliers/CODE/fulfillments over TLS, checks
 * dropshipd's Standard Webhooks signature, dedupes by Idempotency-Key,
 * injects failures on request, and plays the supplier's side of each
 * fulfillment back to dropshipd as signed callbacks. One thread, one loop.
 *
 * This file reads the command line into struct sim_opts, builds the event
 * loop and tears it down; sim.h says which file does the rest. The pieces
 * it shares with dropshipd (TLS contexts, signatures, logging) come from
 * internal/. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "log/log.h"
#include "sig/sig.h"
#include "tls/tls.h"
#include "version/version.h"

#include "sim.h"

#define SIM_MS_MAX 86400000L          /* one day: any longer delay is a typo */

/* ---- command line ---- */

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: " SIM_NAME " --tls-cert FILE --tls-key FILE --supplier CODE=SECRET... [options]\n"
	        "\n"
	        "A supplier simulator for demos, tests and benchmarks. Serves\n"
	        "POST /suppliers/CODE/fulfillments over HTTPS for every --supplier, checks the\n"
	        "Standard Webhooks signature dropshipd makes with that supplier's secret (401\n"
	        "when it does not match), requires Idempotency-Key (= request_id, or\n"
	        "request_id.cancel for a cancellation), answers 202\n"
	        "{\"received\": true, \"request_id\": ...} and a repeat of the same key 200 with\n"
	        "the same body. With --callback-url it then plays the supplier: signed callbacks\n"
	        "fulfillment.accepted, .shipped (a UPS, USPS, FedEx or DHL Express parcel with\n"
	        "its tracking number and URL) and .delivered, or .rejected (--reject-reason), or\n"
	        ".cancelled after a fulfillment.cancel_requested.\n"
	        "GET /stats shows counters as JSON; GET /healthz answers 200.\n"
	        "\n"
	        "options:\n"
	        "      --listen HOST:PORT     address to serve on (default 127.0.0.1:9443; port 0\n"
	        "                             picks a free one, reported as port=N in the\n"
	        "                             msg=\"listening\" log line)\n"
	        "      --tls-cert FILE        server certificate chain, PEM (required)\n"
	        "      --tls-key FILE         its private key, PEM (required)\n"
	        "      --supplier CODE=SECRET serve this supplier; SECRET is whsec_<base64> and\n"
	        "                             signs both directions (repeatable, at least one)\n"
	        "      --fail-rate F          answer this fraction (0..1) of attempts 503 with\n"
	        "                             Retry-After: 1, before any processing (default 0)\n"
	        "      --hang-rate F          never answer this fraction (0..1) of attempts, until\n"
	        "                             the client gives up; nothing is processed (default 0)\n"
	        "      --reject-rate F        send fulfillment.rejected instead of accepted for this\n"
	        "                             fraction of new requests (default 0)\n"
	        "      --reject-reason R      the rejections' reason, 1-64 of a-z 0-9 _ (default\n"
	        "                             out_of_stock, which makes dropshipd mark the offer\n"
	        "                             unavailable; e.g. capacity does not)\n"
	        "      --slow-ms N            hold every fulfillment answer N ms (a timer: other\n"
	        "                             requests go on meanwhile; default 0)\n"
	        "      --status N             answer every fulfillment request with status N\n"
	        "                             (100..599) and do nothing else; overrides the rates\n"
	        "      --seed N               seed of the random choices; the same seed and the same\n"
	        "                             arrival order give the same run (default: from the clock,\n"
	        "                             logged at start)\n"
	        "      --callback-url URL     dropshipd's base URL, https://HOST[:PORT][/PATH];\n"
	        "                             callbacks go to URL/v1/suppliers/CODE/callbacks\n"
	        "                             (default: no callbacks)\n"
	        "      --ca-file FILE         CA bundle to verify dropshipd's certificate with\n"
	        "                             (default: the system's); the host name is always checked\n"
	        "      --accept-after-ms N    accepted (or rejected) N ms after receipt (default 200)\n"
	        "      --ship-after-ms N      shipped N ms after receipt (default 1000)\n"
	        "      --deliver-after-ms N   delivered N ms after receipt (default 2000)\n");
	fprintf(f,
	        "      --catalog FILE         a catalog CSV (dropshipctl catalog import's format): the\n"
	        "                             rows of this simulator's suppliers are their SKUs and\n"
	        "                             starting stock, for --feed-every\n"
	        "      --feed-every DURATION  push each supplier's stock levels to\n"
	        "                             URL/v1/suppliers/CODE/inventory (URL: --callback-url)\n"
	        "                             every DURATION (500ms, 30s, 5m, 1h), the first one\n"
	        "                             DURATION after start; levels fall with the\n"
	        "                             fulfillments taken and drift between feeds; needs\n"
	        "                             --catalog and --callback-url\n"
	        "      --log-level LEVEL      debug, info, warn or error (default info)\n"
	        "  -h, --help                 this help\n"
	        "  -V, --version              print the version\n"
	        "\n"
	        "A failed callback (network or TLS error, timeout, non-2xx other than 409) is\n"
	        "retried up to %d times, %d ms doubling to %d ms apart; a 409 is final.\n"
	        "signals: SIGTERM or SIGINT stop the simulator; it exits 0.\n"
	        "exit codes: 0 success, 1 runtime failure, 2 usage error.\n"
	        "\n"
	        "example:\n"
	        "  " SIM_NAME " --listen 127.0.0.1:9443 \\\n"
	        "      --tls-cert var/tls/server.crt --tls-key var/tls/server.key \\\n"
	        "      --supplier acme=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw \\\n"
	        "      --callback-url https://127.0.0.1:8443 --ca-file var/tls/server.crt \\\n"
	        "      --reject-rate 0.1 --fail-rate 0.05 --seed 42 \\\n"
	        "      --catalog config/demo-catalog.csv --feed-every 30s\n"
	        "  curl -sk https://127.0.0.1:9443/stats\n",
	        SIM_CB_RETRIES, SIM_CB_BACKOFF_MS, SIM_CB_BACKOFF_MAX_MS);
}

static int usage_error(const char *flag, const char *what, const char *value)
{
	fprintf(stderr, SIM_NAME ": %s: %s, got '%s'; see --help\n", flag, what, value);
	return -1;
}

static int parse_rate(const char *flag, const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < 0 || v > 1)
		return usage_error(flag, "expected a number from 0 to 1", s);
	*out = v;
	return 0;
}

static int parse_long(const char *flag, const char *s, long lo, long hi, const char *what, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return usage_error(flag, what, s);
	*out = v;
	return 0;
}

static int parse_supplier(const char *s, struct sim_opts *o)
{
	const char *eq = strchr(s, '=');
	size_t n = eq ? (size_t)(eq - s) : 0;
	if (!eq || n == 0 || n > SIM_CODE_MAX || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	        "abcdefghijklmnopqrstuvwxyz0123456789_-.") < n)
		return usage_error("--supplier", "expected CODE=SECRET with CODE of 1-64 letters, digits, _ - .", s);
	unsigned char key[SIG_KEY_MAX];
	if (strncmp(eq + 1, "whsec_", 6) != 0 || sig_secret_key(eq + 1, key, sizeof key) <= 0)
		return usage_error("--supplier", "the secret must be whsec_<base64>", "<secret not shown>");
	for (size_t i = 0; i < o->nsuppliers; i++)
		if (strlen(o->suppliers[i].code) == n && strncmp(o->suppliers[i].code, s, n) == 0)
			return usage_error("--supplier", "supplier given twice", o->suppliers[i].code);
	struct sim_supplier *a = realloc(o->suppliers, (o->nsuppliers + 1) * sizeof *a);
	if (!a)
		return usage_error("--supplier", "out of memory", "");
	o->suppliers = a;
	snprintf(a[o->nsuppliers].code, sizeof a->code, "%.*s", (int)n, s);
	a[o->nsuppliers].secret = eq + 1;
	o->nsuppliers++;
	return 0;
}

enum {
	OPT_LISTEN = 256, OPT_CERT, OPT_KEY, OPT_SUPPLIER, OPT_FAIL, OPT_SLOW, OPT_HANG, OPT_REJECT,
	OPT_STATUS, OPT_SEED, OPT_CB_URL, OPT_CA, OPT_ACCEPT, OPT_SHIP, OPT_DELIVER, OPT_LOG_LEVEL,
	OPT_CATALOG, OPT_FEED_EVERY, OPT_REJECT_REASON,
};

/* --feed-every: whole numbers each with a unit ms, s, m or h ("1m30s"),
 * 100 ms to a day. */
static int parse_every(const char *s, long *out)
{
	static const char what[] = "expected a duration such as 500ms, 30s, 5m or 1h (100ms to 24h)";
	long total = 0;
	const char *p = s;
	while (*p) {
		char *end;
		errno = 0;
		long v = strtol(p, &end, 10);
		long unit = strncmp(end, "ms", 2) == 0 ? 1 : *end == 's' ? 1000 : *end == 'm' ? 60000
		          : *end == 'h' ? 3600000 : 0;
		if (errno || end == p || *p == '-' || *p == '+' || unit == 0 || v > SIM_MS_MAX / unit)
			return usage_error("--feed-every", what, s);
		total += v * unit;
		p = end + (unit == 1 ? 2 : 1);
		if (total > SIM_MS_MAX)
			return usage_error("--feed-every", what, s);
	}
	if (p == s || total < 100)
		return usage_error("--feed-every", what, s);
	*out = total;
	return 0;
}

/* --reject-reason: what dropshipd stores as the rejection's reason. */
static int parse_reason(const char *s, struct sim_opts *o)
{
	size_t n = strlen(s);
	if (n == 0 || n > SIM_CODE_MAX || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") < n)
		return usage_error("--reject-reason", "expected 1-64 of a-z 0-9 _", s);
	o->reject_reason = s;
	return 0;
}

/* --seed: any 64-bit number, without a sign (strtoull would take one). */
static int parse_seed(const char *s, struct sim_opts *o)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-')
		return usage_error("--seed", "expected a whole number from 0 to 18446744073709551615", s);
	o->seed = (uint64_t)v;
	o->seed_given = 1;
	return 0;
}

/* Stores the value of one flag in o; -1 after a usage message when it is bad. */
static int parse_flag(int opt, const char *arg, struct sim_opts *o)
{
	static const char ms_range[] = "expected whole milliseconds from 0 to 86400000";
	long v;
	switch (opt) {
	case OPT_LISTEN: o->listen = arg; return 0;
	case OPT_CERT: o->tls_cert = arg; return 0;
	case OPT_KEY: o->tls_key = arg; return 0;
	case OPT_SUPPLIER: return parse_supplier(arg, o);
	case OPT_FAIL: return parse_rate("--fail-rate", arg, &o->fail_rate);
	case OPT_HANG: return parse_rate("--hang-rate", arg, &o->hang_rate);
	case OPT_REJECT: return parse_rate("--reject-rate", arg, &o->reject_rate);
	case OPT_REJECT_REASON: return parse_reason(arg, o);
	case OPT_SLOW: return parse_long("--slow-ms", arg, 0, SIM_MS_MAX, ms_range, &o->slow_ms);
	case OPT_ACCEPT: return parse_long("--accept-after-ms", arg, 0, SIM_MS_MAX, ms_range, &o->accept_ms);
	case OPT_SHIP: return parse_long("--ship-after-ms", arg, 0, SIM_MS_MAX, ms_range, &o->ship_ms);
	case OPT_DELIVER: return parse_long("--deliver-after-ms", arg, 0, SIM_MS_MAX, ms_range, &o->deliver_ms);
	case OPT_STATUS:
		if (parse_long("--status", arg, 100, 599, "expected an HTTP status from 100 to 599", &v) < 0)
			return -1;
		o->status = (int)v;
		return 0;
	case OPT_SEED: return parse_seed(arg, o);
	case OPT_CB_URL: o->callback_url = arg; return 0;
	case OPT_CA: o->ca_file = arg; return 0;
	case OPT_CATALOG: o->catalog = arg; return 0;
	case OPT_FEED_EVERY: return parse_every(arg, &o->feed_every_ms);
	case OPT_LOG_LEVEL:
		o->log_level = arg;
		if (log_set_level_name(arg) < 0)
			return usage_error("--log-level", "expected debug, info, warn or error", arg);
		return 0;
	default:
		return 0;
	}
}

/* Fills o from argv. Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, struct sim_opts *o)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "tls-cert", required_argument, NULL, OPT_CERT },
		{ "tls-key", required_argument, NULL, OPT_KEY },
		{ "supplier", required_argument, NULL, OPT_SUPPLIER },
		{ "fail-rate", required_argument, NULL, OPT_FAIL },
		{ "slow-ms", required_argument, NULL, OPT_SLOW },
		{ "hang-rate", required_argument, NULL, OPT_HANG },
		{ "reject-rate", required_argument, NULL, OPT_REJECT },
		{ "reject-reason", required_argument, NULL, OPT_REJECT_REASON },
		{ "status", required_argument, NULL, OPT_STATUS },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "callback-url", required_argument, NULL, OPT_CB_URL },
		{ "ca-file", required_argument, NULL, OPT_CA },
		{ "accept-after-ms", required_argument, NULL, OPT_ACCEPT },
		{ "ship-after-ms", required_argument, NULL, OPT_SHIP },
		{ "deliver-after-ms", required_argument, NULL, OPT_DELIVER },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "catalog", required_argument, NULL, OPT_CATALOG },
		{ "feed-every", required_argument, NULL, OPT_FEED_EVERY },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	memset(o, 0, sizeof *o);
	o->listen = "127.0.0.1:9443";
	o->reject_reason = "out_of_stock";
	o->accept_ms = 200;
	o->ship_ms = 1000;
	o->deliver_ms = 2000;
	o->log_level = "info";
	int opt;
	while ((opt = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return 0;
		}
		if (opt == 'V') {
			printf(SIM_NAME " %s\n", DROPSHIP_VERSION);
			return 0;
		}
		if (opt < OPT_LISTEN) {
			/* getopt has named the flag already. */
			fprintf(stderr, SIM_NAME ": see --help\n");
			return 2;
		}
		if (parse_flag(opt, optarg, o) < 0)
			return 2;
	}
	if (optind < argc) {
		fprintf(stderr, SIM_NAME ": unexpected argument '%s'; see --help\n", argv[optind]);
		return 2;
	}
	const char *missing = !o->tls_cert ? "--tls-cert" : !o->tls_key ? "--tls-key"
	                    : !o->nsuppliers ? "--supplier" : NULL;
	if (missing) {
		fprintf(stderr, SIM_NAME ": %s is required; see --help\n", missing);
		return 2;
	}
	missing = !o->feed_every_ms ? NULL : !o->catalog ? "--catalog" : !o->callback_url ? "--callback-url" : NULL;
	if (missing) {
		fprintf(stderr, SIM_NAME ": --feed-every needs %s (what to feed, and where); see --help\n", missing);
		return 2;
	}
	if (!o->seed_given) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		o->seed = sim_fault_seed_default(&ts, getpid());
	}
	return -1;
}

/* HOST:PORT, or [IPV6]:PORT, into a host for getaddrinfo and a port. */
static int split_listen(const char *addr, char *host, size_t hcap, unsigned short *port)
{
	const char *colon = strrchr(addr, ':');
	size_t hl = colon ? (size_t)(colon - addr) : 0;
	if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']') {
		addr++;
		hl -= 2;
	}
	if (hl == 0 || hl >= hcap)
		return -1;
	long p;
	char *end;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || p < 0 || p > 65535)
		return -1;
	memcpy(host, addr, hl);
	host[hl] = '\0';
	*port = (unsigned short)p;
	return 0;
}

/* Malformed addresses are usage errors (exit 2), caught before any setup:
 * --listen into host and port, --callback-url into sim's callback target. */
static int parse_addresses(const struct sim_opts *o, struct sim *sim, char *host, size_t hcap,
                           unsigned short *port)
{
	char err[1024];
	if (split_listen(o->listen, host, hcap, port) < 0)
		return usage_error("--listen", "expected HOST:PORT", o->listen);
	if (o->callback_url && sim_cb_parse_url(sim, o->callback_url, err, sizeof err) < 0) {
		fprintf(stderr, SIM_NAME ": %s; see --help\n", err);
		return -1;
	}
	return 0;
}

/* ---- the loop ---- */

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	struct sim *sim = arg;
	log_info("stopping", "signal=%d requests=%lu accepted=%lu callbacks_sent=%lu",
	         (int)sig, sim->stats.requests, sim->stats.accepted, sim->stats.callbacks_sent);
	event_base_loopbreak(sim->base);
}

/* Builds the loop: TLS contexts, event base, signals, callbacks, listener.
 * -1 with a message in err; sim_free undoes any part of it. */
static int sim_init(struct sim *sim, const struct sim_opts *o, const char *host, unsigned short port,
                    char *err, size_t errlen)
{
	sim->o = o;
	sim->rng = sim_fault_rng_init(o->seed);
	sim->server_ctx = tls_server_ctx_new(o->tls_cert, o->tls_key, err, errlen);
	if (!sim->server_ctx)
		return -1;
	if (o->callback_url && !(sim->client_ctx = tls_client_ctx_new(o->ca_file, err, errlen)))
		return -1;
	sim->base = event_base_new();
	sim->sigterm = sim->base ? evsignal_new(sim->base, SIGTERM, on_signal, sim) : NULL;
	sim->sigint = sim->base ? evsignal_new(sim->base, SIGINT, on_signal, sim) : NULL;
	if (!sim->base || sim_cb_init(sim) < 0 || !sim->sigterm || !sim->sigint ||
	    evsignal_add(sim->sigterm, NULL) < 0 || evsignal_add(sim->sigint, NULL) < 0) {
		snprintf(err, errlen, "cannot create the event loop");
		return -1;
	}
	if (o->feed_every_ms && sim_feed_load(sim, err, errlen) < 0)
		return -1;
	if (o->feed_every_ms && sim_feed_start(sim) < 0) {
		snprintf(err, errlen, "cannot start the stock feeds");
		return -1;
	}
	return sim_server_start(sim, host, port, err, errlen);
}

static void sim_free(struct sim *sim)
{
	sim_server_stop(sim);
	sim_cb_free(sim);
	sim_feed_free(sim);
	sim_ful_free_all(sim);
	if (sim->sigterm)
		event_free(sim->sigterm);
	if (sim->sigint)
		event_free(sim->sigint);
	/* A freed bufferevent with deferred callbacks queued is released by one
	 * of those callbacks: let them run, or it leaks (and its SSL with it). */
	for (int i = 0; sim->base && i < 100 &&
	     event_base_get_num_events(sim->base, EVENT_BASE_COUNT_ACTIVE) > 0; i++)
		event_base_loop(sim->base, EVLOOP_NONBLOCK);
	SSL_CTX_free(sim->client_ctx);
	SSL_CTX_free(sim->server_ctx);
	if (sim->base)
		event_base_free(sim->base);
}

int main(int argc, char **argv)
{
	struct sim_opts o;
	struct sim sim;
	char host[256], err[1024], qerr[1100], qurl[600];
	unsigned short port;
	memset(&sim, 0, sizeof sim);
	int rc = parse_args(argc, argv, &o);
	if (rc >= 0)
		goto cleanup;
	rc = 2;
	if (parse_addresses(&o, &sim, host, sizeof host, &port) < 0)
		goto cleanup;
	signal(SIGPIPE, SIG_IGN);
	rc = 1;
	if (sim_init(&sim, &o, host, port, err, sizeof err) < 0) {
		log_error("cannot start", "error=%s", log_quote(qerr, sizeof qerr, err));
		goto cleanup;
	}
	log_info("starting", "suppliers=%zu seed=%" PRIu64 " fail_rate=%g hang_rate=%g reject_rate=%g "
	         "slow_ms=%ld status=%d feed_every_ms=%ld callback_url=%s", o.nsuppliers, o.seed, o.fail_rate,
	         o.hang_rate, o.reject_rate, o.slow_ms, o.status, o.feed_every_ms,
	         log_quote(qurl, sizeof qurl, o.callback_url ? o.callback_url : ""));
	if (o.ca_file && !o.callback_url)
		log_warn("--ca-file has no effect without --callback-url", "%s", "");
	if (o.catalog && !o.feed_every_ms)
		log_warn("--catalog has no effect without --feed-every", "%s", "");
	log_info("listening", "port=%d version=%s", sim.port, DROPSHIP_VERSION);
	event_base_dispatch(sim.base);
	log_info("stopped", "requests=%lu accepted=%lu duplicates=%lu callbacks_sent=%lu callbacks_failed=%lu",
	         sim.stats.requests, sim.stats.accepted, sim.stats.duplicates, sim.stats.callbacks_sent,
	         sim.stats.callbacks_failed);
	rc = 0;
cleanup:
	sim_free(&sim);
	free(o.suppliers);
	return rc;
}
