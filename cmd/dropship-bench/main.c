/* dropship-bench: sends unique, signed native orders to dropshipd over
 * keep-alive TLS connections and reports throughput and latency; or sends
 * signed supplier callbacks for a list of fulfillment requests; or holds
 * idle TLS connections open so the server's memory can be measured. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <event2/event.h>
#include <event2/http.h>

#include "bench.h"
#include "sig/sig.h"
#include "tls/tls.h"
#include "version/version.h"

#define BENCH_CONN_MAX 200000
#define BENCH_THREADS_MAX 64

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: " BENCH_NAME " --url https://HOST:PORT --store CODE --secret whsec_... [options]\n"
	        "       " BENCH_NAME " --url https://HOST:PORT --callbacks FILE --type TYPE\n"
	        "                      (--secret whsec_... | --supplier CODE=whsec_...) [options]\n"
	        "       " BENCH_NAME " --url https://HOST:PORT --idle N [--duration S] [options]\n"
	        "\n"
	        "Load generator for dropshipd: N keep-alive TLS connections (HTTP/1.1, one\n"
	        "request in flight each) send unique native orders, signed with the store's\n"
	        "secret (Standard Webhooks), to POST /v1/stores/CODE/webhooks; or, with\n"
	        "--callbacks, supplier callbacks to POST /v1/suppliers/CODE/callbacks.\n"
	        "\n"
	        "target:\n"
	        "  --url URL           dropshipd's base URL, https://HOST[:PORT][/PATH] (required)\n"
	        "  --store CODE        store code (native format)\n"
	        "  --secret S          the store's secret, whsec_<base64>\n"
	        "  --cafile FILE       CA certificate(s) to verify the server with\n"
	        "                      (default: the system bundle)\n"
	        "  --insecure          do not verify the server's certificate\n"
	        "load:\n"
	        "  --connections N     keep-alive connections (default 64)\n"
	        "  --threads N         event-loop threads sharing the connections and rate (default 1)\n"
	        "  --duration S        measured seconds, after the warm-up (default 10)\n"
	        "  --warmup S          seconds sent but not measured first (default 2)\n"
	        "  --rate R            open loop: R requests/s in total, sent at fixed intervals\n"
	        "                      whatever the answers do; latency runs from when each\n"
	        "                      request was due. Without it: closed loop, as fast as the\n"
	        "                      server answers; latency runs from the send\n"
	        "  --timeout S         seconds to wait for an answer or a handshake (default 10)\n"
	        "orders:\n"
	        "  --lines N           lines per order, 1..500 (default 3)\n"
	        "  --skus N            SKUs drawn uniformly from N names (default 100000)\n"
	        "  --sku-prefix P      SKU names are P followed by a zero-padded number\n"
	        "                      0..N-1 (default SKU-, as tests/gen-catalog.sh writes them)\n"
	        "  --sku-width N       digits of that number (default 7)\n"
	        "  --country CC        shipping country, ISO 3166-1 alpha-2 (default US)\n"
	        "callbacks:\n"
	        "  --callbacks FILE    send one callback per line of FILE, \"REQUEST_ID SUPPLIER_CODE\"\n"
	        "                      (blank and # lines skipped; - reads stdin), each line once,\n"
	        "                      in order; the run ends when every line is answered or at\n"
	        "                      the end of --duration. webhook-id: evt_REQUEST_ID_TYPE\n"
	        "  --type TYPE         accepted, shipped (with tracking) or delivered\n"
	        "  --secret S          signs every supplier's callbacks, unless --supplier names it\n"
	        "  --supplier CODE=S   the secret of supplier CODE (repeatable)\n"
	        "memory:\n"
	        "  --idle N            open N TLS connections, complete the handshakes, print\n"
	        "                      \"ready\" on stderr once all are up, hold them idle for\n"
	        "                      --duration seconds, then report; nothing is sent\n"
	        "output:\n"
	        "  --json              one JSON object on stdout instead of the table\n"
	        "  -h, --help          this help\n"
	        "  -V, --version       print the version\n"
	        "\n"
	        "Order ids are bench-PID-TIME-THREAD-N: unique across runs. Answers by status,\n"
	        "errors (connect, tls, timeout, closed, protocol; a failed connection is opened\n"
	        "again) and latency percentiles (p50, p90, p99, p99.9, max) are reported.\n"
	        "exit codes: 0 some requests answered 2xx (idle: every connection up), 1 none\n"
	        "(or a runtime failure), 2 usage error.\n"
	        "\n"
	        "examples:\n"
	        "  " BENCH_NAME " --url https://127.0.0.1:8443 --cafile var/tls/server.crt \\\n"
	        "      --store demo --secret \"$(cat var/demo-secret)\" --connections 64 --duration 20\n"
	        "  " BENCH_NAME " ... --rate 1000 --duration 30          # latency at 1000 orders/s\n"
	        "  " BENCH_NAME " --url https://127.0.0.1:8443 --insecure --idle 10000 --duration 30\n"
	        "  psql -Atc \"SELECT r.id, s.code FROM fulfillment_requests r JOIN suppliers s\n"
	        "      ON s.id = r.supplier_id WHERE r.status = 'sent'\" >reqs.txt\n"
	        "  " BENCH_NAME " --url https://127.0.0.1:8443 --cafile var/tls/server.crt \\\n"
	        "      --callbacks reqs.txt --type accepted --supplier acme=whsec_... --duration 60\n");
}

static int usage_error(const char *flag, const char *expected, const char *got)
{
	fprintf(stderr, BENCH_NAME ": %s: %s, got '%s'; see --help\n", flag, expected, got);
	return -1;
}

static int parse_int(const char *flag, const char *arg, long min, long max, long *out)
{
	char *end, expected[96];
	errno = 0;
	long v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < min || v > max) {
		snprintf(expected, sizeof expected, "expected an integer from %ld to %ld", min, max);
		return usage_error(flag, expected, arg);
	}
	*out = v;
	return 0;
}

/* A finite number in [min, max]; min itself is allowed only when incl_min. */
static int parse_num(const char *flag, const char *arg, double min, double max, int incl_min, double *out)
{
	char *end, expected[96];
	errno = 0;
	double v = strtod(arg, &end);
	if (errno || end == arg || *end || !isfinite(v) || v < min || (v == min && !incl_min) || v > max) {
		snprintf(expected, sizeof expected, "expected a number %s %g and at most %g",
		         incl_min ? "of at least" : "above", min, max);
		return usage_error(flag, expected, arg);
	}
	*out = v;
	return 0;
}

/* Bytes of s all in [A-Za-z0-9_.-], length in [min, max]. */
static int plain_name(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);
	if (n < min || n > max)
		return 0;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

enum {
	OPT_URL = 256, OPT_STORE, OPT_SECRET, OPT_CONNS, OPT_THREADS, OPT_DURATION, OPT_WARMUP,
	OPT_RATE, OPT_TIMEOUT, OPT_LINES, OPT_SKUS, OPT_PREFIX, OPT_WIDTH, OPT_COUNTRY, OPT_IDLE,
	OPT_CAFILE, OPT_INSECURE, OPT_JSON, OPT_CALLBACKS, OPT_TYPE, OPT_SUPPLIER,
};

/* --supplier CODE=SECRET into o->suppliers. Returns 0, or -1 (told). */
static int parse_supplier(struct bench_opts *o, const char *arg)
{
	const char *eq = strchr(arg, '=');
	size_t n = eq ? (size_t)(eq - arg) : 0;
	char code[65];
	if (!eq || n == 0 || n >= sizeof code)
		return usage_error("--supplier", "expected CODE=whsec_...", "(not shown)");
	memcpy(code, arg, n);
	code[n] = '\0';
	if (!plain_name(code, 1, 64))
		return usage_error("--supplier", "expected a CODE of 1-64 of A-Z a-z 0-9 _ . -", code);
	unsigned char key[SIG_KEY_MAX];
	if (strncmp(eq + 1, "whsec_", 6) != 0 || sig_secret_key(eq + 1, key, sizeof key) <= 0)
		return usage_error("--supplier", "expected CODE=whsec_ followed by base64", code);
	if (o->nsuppliers == BENCH_SUPPLIERS_MAX) {
		fprintf(stderr, BENCH_NAME ": --supplier: at most %d suppliers\n", BENCH_SUPPLIERS_MAX);
		return -1;
	}
	struct bench_supplier_secret *s = &o->suppliers[o->nsuppliers++];
	memcpy(s->code, code, n + 1);
	s->secret = eq + 1;
	return 0;
}

/* Checks what only makes sense together. Returns 0, or -1 (told). */
static int check_opts(const struct bench_opts *o)
{
	const char *missing = !o->url ? "--url" : NULL;
	if (o->callbacks && !missing)
		missing = !o->cb_type_set ? "--type" : NULL;
	else if (o->idle == 0 && !missing)
		missing = !o->store ? "--store" : !o->secret ? "--secret" : NULL;
	if (missing) {
		fprintf(stderr, BENCH_NAME ": %s is required; see --help\n", missing);
		return -1;
	}
	int conns = o->idle > 0 ? o->idle : o->connections;
	if (o->threads > conns) {
		fprintf(stderr, BENCH_NAME ": --threads: %d threads for %d connections; use at most one "
		        "thread per connection\n", o->threads, conns);
		return -1;
	}
	const char *alone = o->callbacks && o->idle > 0 ? "--idle"
	                    : o->callbacks && o->store ? "--store"
	                    : !o->callbacks && o->cb_type_set ? "--type"
	                    : !o->callbacks && o->nsuppliers ? "--supplier" : NULL;
	if (alone) {
		fprintf(stderr, BENCH_NAME ": %s: %s; see --help\n", alone,
		        o->callbacks ? "not used with --callbacks" : "only used with --callbacks");
		return -1;
	}
	unsigned char key[SIG_KEY_MAX];
	if (o->idle > 0)
		return 0;
	if (o->callbacks) {
		if (o->secret && sig_secret_key(o->secret, key, sizeof key) <= 0)
			return usage_error("--secret", "expected whsec_ followed by base64", "(not shown)");
		return 0;
	}
	if (!plain_name(o->store, 1, 64))
		return usage_error("--store", "expected 1-64 of A-Z a-z 0-9 _ . -", o->store);
	if (sig_secret_key(o->secret, key, sizeof key) <= 0)
		return usage_error("--secret", "expected whsec_ followed by base64", "(not shown)");
	return 0;
}

/* Fills o from argv. Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, struct bench_opts *o)
{
	static const struct option longopts[] = {
		{ "url", required_argument, NULL, OPT_URL },
		{ "store", required_argument, NULL, OPT_STORE },
		{ "secret", required_argument, NULL, OPT_SECRET },
		{ "connections", required_argument, NULL, OPT_CONNS },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "duration", required_argument, NULL, OPT_DURATION },
		{ "warmup", required_argument, NULL, OPT_WARMUP },
		{ "rate", required_argument, NULL, OPT_RATE },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "lines", required_argument, NULL, OPT_LINES },
		{ "skus", required_argument, NULL, OPT_SKUS },
		{ "sku-prefix", required_argument, NULL, OPT_PREFIX },
		{ "sku-width", required_argument, NULL, OPT_WIDTH },
		{ "country", required_argument, NULL, OPT_COUNTRY },
		{ "idle", required_argument, NULL, OPT_IDLE },
		{ "cafile", required_argument, NULL, OPT_CAFILE },
		{ "insecure", no_argument, NULL, OPT_INSECURE },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "callbacks", required_argument, NULL, OPT_CALLBACKS },
		{ "type", required_argument, NULL, OPT_TYPE },
		{ "supplier", required_argument, NULL, OPT_SUPPLIER },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	memset(o, 0, sizeof *o);
	o->connections = 64;
	o->threads = 1;
	o->duration_s = 10;
	o->warmup_s = 2;
	o->timeout_s = 10;
	o->lines = 3;
	o->skus = 100000;
	o->sku_prefix = "SKU-";
	o->sku_width = 7;
	o->country = "US";
	int opt, bad = 0;
	long v = 0;
	while (!bad && (opt = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_URL: o->url = optarg; break;
		case OPT_STORE: o->store = optarg; break;
		case OPT_SECRET: o->secret = optarg; break;
		case OPT_CAFILE: o->cafile = optarg; break;
		case OPT_INSECURE: o->insecure = 1; break;
		case OPT_JSON: o->json = 1; break;
		case OPT_CALLBACKS: o->callbacks = optarg; break;
		case OPT_SUPPLIER: bad = parse_supplier(o, optarg) < 0; break;
		case OPT_TYPE:
			o->cb_type_set = 1;
			if (bench_cb_type_parse(optarg, &o->cb_type) < 0)
				bad = usage_error("--type", "expected accepted, shipped or delivered", optarg) < 0;
			break;
		case OPT_CONNS:
			bad = parse_int("--connections", optarg, 1, BENCH_CONN_MAX, &v) < 0;
			o->connections = (int)v;
			break;
		case OPT_THREADS:
			bad = parse_int("--threads", optarg, 1, BENCH_THREADS_MAX, &v) < 0;
			o->threads = (int)v;
			break;
		case OPT_IDLE:
			bad = parse_int("--idle", optarg, 1, BENCH_CONN_MAX, &v) < 0;
			o->idle = (int)v;
			break;
		case OPT_LINES:
			bad = parse_int("--lines", optarg, 1, 500, &v) < 0;
			o->lines = (int)v;
			break;
		case OPT_SKUS: bad = parse_int("--skus", optarg, 1, 1000000000L, &o->skus) < 0; break;
		case OPT_WIDTH:
			bad = parse_int("--sku-width", optarg, 0, 20, &v) < 0;
			o->sku_width = (int)v;
			break;
		case OPT_DURATION: bad = parse_num("--duration", optarg, 0, 86400, 0, &o->duration_s) < 0; break;
		case OPT_WARMUP: bad = parse_num("--warmup", optarg, 0, 3600, 1, &o->warmup_s) < 0; break;
		case OPT_RATE: bad = parse_num("--rate", optarg, 0, 10000000, 0, &o->rate) < 0; break;
		case OPT_TIMEOUT: bad = parse_num("--timeout", optarg, 0, 3600, 0, &o->timeout_s) < 0; break;
		case OPT_PREFIX:
			o->sku_prefix = optarg;
			if (!plain_name(optarg, 0, 64))
				bad = usage_error("--sku-prefix", "expected up to 64 of A-Z a-z 0-9 _ . -", optarg) < 0;
			break;
		case OPT_COUNTRY:
			o->country = optarg;
			if (strlen(optarg) != 2 || strspn(optarg, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 2)
				bad = usage_error("--country", "expected two capital letters (ISO 3166-1)", optarg) < 0;
			break;
		case 'h': usage(stdout); return 0;
		case 'V': printf(BENCH_NAME " %s\n", DROPSHIP_VERSION); return 0;
		default:
			/* getopt has named the flag already. */
			fprintf(stderr, BENCH_NAME ": see --help\n");
			return 2;
		}
	}
	if (bad)
		return 2;
	if (optind < argc) {
		fprintf(stderr, BENCH_NAME ": unexpected argument '%s'; see --help\n", argv[optind]);
		return 2;
	}
	return check_opts(o) < 0 ? 2 : -1;
}

/* Parses --url and resolves it once (blocking is fine before the run). */
static int resolve_target(const struct bench_opts *o, struct bench_target *t)
{
	int rc = -1;
	struct evhttp_uri *uri = evhttp_uri_parse(o->url);
	const char *scheme = uri ? evhttp_uri_get_scheme(uri) : NULL;
	const char *host = uri ? evhttp_uri_get_host(uri) : NULL;
	if (!scheme || strcmp(scheme, "https") != 0 || !host || !*host) {
		usage_error("--url", "expected https://HOST[:PORT][/PATH]", o->url);
		goto out;
	}
	int port = evhttp_uri_get_port(uri);
	if (port < 0)
		port = 443;
	const char *path = evhttp_uri_get_path(uri);
	size_t plen = path ? strlen(path) : 0;
	while (plen > 0 && path[plen - 1] == '/')
		plen--;
	snprintf(t->host, sizeof t->host, "%s", host);
	snprintf(t->base, sizeof t->base, "%.*s", (int)plen, plen ? path : "");
	snprintf(t->host_header, sizeof t->host_header, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
	snprintf(t->path, sizeof t->path, "%s/v1/stores/%s/webhooks", t->base, o->store ? o->store : "");
	char service[16];
	snprintf(service, sizeof service, "%d", port);
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	int gai = getaddrinfo(t->host, service, &hints, &ai);
	if (gai != 0 || !ai) {
		fprintf(stderr, BENCH_NAME ": --url: cannot resolve '%s': %s\n", t->host, gai_strerror(gai));
		goto out;
	}
	memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
	t->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	rc = 0;
out:
	if (uri)
		evhttp_uri_free(uri);
	return rc;
}

/* Every connection is a file descriptor: raise the soft limit as far as
 * the hard one allows, and say so when that is not enough. */
static void raise_fd_limit(const struct bench_opts *o)
{
	rlim_t need = (rlim_t)(o->idle > 0 ? o->idle : o->connections) + 64;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
		return;
	rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < need)
		fprintf(stderr, BENCH_NAME ": warning: open files limit %lu is below the %lu needed; "
		        "raise it (ulimit -n)\n", (unsigned long)rl.rlim_cur, (unsigned long)need);
}

static void *worker_thread(void *arg)
{
	bench_worker_run(arg);
	return NULL;
}

/* Worker 0 runs on the main thread, which alone takes the signals. */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig, (void)what;
	struct bench_shared *sh = arg;
	atomic_store(&sh->stop, 1);
}

static void merge(struct bench_result *into, const struct bench_result *r)
{
	hist_merge(&into->latency, &r->latency);
	for (int s = 0; s < BENCH_STATUS_MAX; s++)
		into->status[s] += r->status[s];
	for (int e = 0; e < BENCH_ERR_MAX; e++)
		into->errors[e] += r->errors[e];
	into->unsent += r->unsent;
	into->established += r->established;
	into->failed += r->failed;
	into->dropped += r->dropped;
	if (r->window_s > into->window_s)
		into->window_s = r->window_s;
}

int main(int argc, char **argv)
{
	static struct bench_opts o;
	int rc = parse_args(argc, argv, &o);
	if (rc >= 0)
		return rc;
	static struct bench_target t;
	if (resolve_target(&o, &t) < 0)
		return 2;
	char err[512];
	if (o.callbacks && bench_callbacks_load(&o, &t, err, sizeof err) < 0) {
		fprintf(stderr, BENCH_NAME ": %s\n", err);
		free(t.cbs);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit(&o);

	rc = 1;
	static struct bench_shared sh;
	static struct bench_result total;
	struct bench_worker *w[BENCH_THREADS_MAX] = { 0 };
	pthread_t tid[BENCH_THREADS_MAX];
	int started = 0;
	struct event *sigint = NULL, *sigterm = NULL;
	hist_init(&total.latency);
	t.ssl_ctx = tls_client_ctx_new(o.cafile, err, sizeof err);
	if (!t.ssl_ctx) {
		fprintf(stderr, BENCH_NAME ": --cafile: %s\n", err);
		goto cleanup;
	}
	if (o.insecure)
		SSL_CTX_set_verify(t.ssl_ctx, SSL_VERIFY_NONE, NULL);
	/* Idle connections then hold no 32 KiB record buffers. */
	SSL_CTX_set_mode(t.ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
	for (int i = 0; i < o.threads; i++)
		if (!(w[i] = bench_worker_new(&o, &t, &sh, i, err, sizeof err))) {
			fprintf(stderr, BENCH_NAME ": %s\n", err);
			goto cleanup;
		}
	struct event_base *base = bench_worker_base(w[0]);
	sigint = evsignal_new(base, SIGINT, on_signal, &sh);
	sigterm = evsignal_new(base, SIGTERM, on_signal, &sh);
	if (!sigint || !sigterm || evsignal_add(sigint, NULL) < 0 || evsignal_add(sigterm, NULL) < 0) {
		fprintf(stderr, BENCH_NAME ": cannot install signal handlers\n");
		goto cleanup;
	}
	/* The other threads start with the signals blocked, so they reach worker 0's loop. */
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	for (; started + 1 < o.threads; started++)
		if (pthread_create(&tid[started], NULL, worker_thread, w[started + 1]) != 0) {
			fprintf(stderr, BENCH_NAME ": cannot start thread %d\n", started + 1);
			atomic_store(&sh.stop, 1);
			break;
		}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	bench_worker_run(w[0]);
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	if (started + 1 < o.threads)
		goto cleanup;
	for (int i = 0; i < o.threads; i++)
		merge(&total, bench_worker_result(w[i]));
	bench_report(&o, &total);
	if (o.idle > 0) {
		rc = total.established == (uint64_t)o.idle ? 0 : 1;
	} else {
		uint64_t ok = 0;
		for (int s = 200; s < 300; s++)
			ok += total.status[s];
		rc = ok > 0 ? 0 : 1;
	}
cleanup:
	if (sigint)
		event_free(sigint);
	if (sigterm)
		event_free(sigterm);
	for (int i = 0; i < o.threads; i++)
		bench_worker_free(w[i]);
	SSL_CTX_free(t.ssl_ctx);
	free(t.cbs);
	return rc;
}
