/* bench_slowloris: holds a wave of slow clients against dropshipd, for
 * measuring what such a wave costs real clients and memory (docs/bench.md,
 * Slow clients; .ci/slowloris.sh runs it). Not a test.
 *
 * Each connection completes its TLS handshake, sends the start of a
 * request head and then one more byte of it every --interval-ms, never
 * finishing: what a slowloris client does. A connection the server closes
 * (its request deadline, shedding at the cap, a refusal) is opened again at
 * once, so the wave stays at --connections for --duration seconds. The
 * connections come from --sources local addresses (127.0.0.2 and up: all
 * of 127/8 is loopback on Linux), so that a per-address limit does not cap
 * the wave by itself.
 *
 *   bench_slowloris --port P [--connections N] [--sources K] [--interval-ms MS]
 *                   [--duration S]
 *
 * Prints "ready" on stderr once N connections were up at the same time (or
 * each of the N once, when the server closes the first before the last are
 * up), a line every 5 s, and at the end one JSON line on stdout with the
 * counts. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#define NAME "bench_slowloris"
/* Handshakes in flight at once: more only queue in the server's backlog. */
#define MAX_CONNECTING 256

static const char head[] = "POST /v1/stores/slow/webhooks HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";

struct slow {
	struct bufferevent *bev;   /* NULL while closed */
	int up;                    /* the handshake completed */
	int ever;                  /* it has been up once */
	int source;                /* index of the local address */
	size_t sent;               /* bytes of the head sent */
};

static struct {
	int port, n, nsources, interval_ms;
	double duration_s;
	struct event_base *base;
	SSL_CTX *ctx;
	struct slow *conns;
	int connecting, up, peak;
	int deployed;              /* connections that have been up once */
	int ready;
	long opened, closed_by_server, failed, answered;
	long ticks, slots;
} g;

static void slow_open(struct slow *s);

static void slow_drop(struct slow *s, int by_server)
{
	if (s->up)
		g.up--;
	else
		g.connecting--;
	if (by_server && s->up)
		g.closed_by_server++;
	else if (!s->up)
		g.failed++;
	bufferevent_free(s->bev);
	s->bev = NULL;
	s->up = 0;
	s->sent = 0;
}

static void slow_on_read(struct bufferevent *bev, void *arg)
{
	(void)arg;
	/* Only a refusal (408 when the deadline passed) ever comes. */
	struct evbuffer *in = bufferevent_get_input(bev);
	g.answered++;
	evbuffer_drain(in, evbuffer_get_length(in));
}

static void slow_on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct slow *s = arg;
	if (what & BEV_EVENT_CONNECTED) {
		s->up = 1;
		g.connecting--;
		g.up++;
		if (g.up > g.peak)
			g.peak = g.up;
		bufferevent_write(s->bev, head, sizeof head - 1);
		s->sent = sizeof head - 1;
		if (!s->ever) {
			s->ever = 1;
			g.deployed++;
		}
		/* All up at once; or each up once, when the server's deadlines
		 * close the first before the last are opened. */
		if (!g.ready && (g.up >= g.n || g.deployed >= g.n)) {
			g.ready = 1;
			fprintf(stderr, NAME ": ready: %d slow connections up\n", g.up);
		}
		return;
	}
	slow_drop(s, 1);
}

static void slow_open(struct slow *s)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		g.failed++;
		return;
	}
	struct sockaddr_in from = { .sin_family = AF_INET };
	from.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)s->source);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)g.port) };
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&from, sizeof from) < 0) {
		close(fd);
		g.failed++;
		return;
	}
	SSL *ssl = SSL_new(g.ctx);
	SSL_set_tlsext_host_name(ssl, "localhost");
	s->bev = bufferevent_openssl_socket_new(g.base, fd, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (!s->bev) {
		SSL_free(ssl);
		close(fd);
		g.failed++;
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
	bufferevent_setcb(s->bev, slow_on_read, NULL, slow_on_event, s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	g.connecting++;
	g.opened++;
	if (bufferevent_socket_connect(s->bev, (struct sockaddr *)&to, sizeof to) < 0)
		slow_drop(s, 0);
}

/* Every 100 ms: one byte more on the slice of connections whose turn it
 * is, and closed ones opened again (at most MAX_CONNECTING at a time). */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what, (void)arg;
	int slots = g.interval_ms / 100 > 0 ? g.interval_ms / 100 : 1;
	int slot = (int)(g.ticks++ % slots);
	for (int i = 0; i < g.n; i++) {
		struct slow *s = &g.conns[i];
		if (!s->bev) {
			if (g.connecting < MAX_CONNECTING)
				slow_open(s);
		} else if (s->up && i % slots == slot) {
			bufferevent_write(s->bev, "a", 1);
			s->sent++;
		}
	}
}

static void on_report(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what, (void)arg;
	fprintf(stderr, NAME ": up=%d connecting=%d opened=%ld closed_by_server=%ld failed=%ld answered=%ld\n",
	        g.up, g.connecting, g.opened, g.closed_by_server, g.failed, g.answered);
}

static void on_end(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what, (void)arg;
	event_base_loopbreak(g.base);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: " NAME " --port P [--connections N] [--sources K] [--interval-ms MS] [--duration S]\n"
	           "Holds N slow TLS clients against dropshipd on 127.0.0.1:P: each sends the start of a\n"
	           "request head, then one byte every MS milliseconds, never ending it; a connection\n"
	           "the server closes is opened again. Clients come from 127.0.0.2 .. 127.0.0.(K+1).\n"
	           "  --port P          dropshipd's port (required)\n"
	           "  --connections N   slow connections held (default 5000)\n"
	           "  --sources K       local addresses they come from (default 25: 200 each for 5000)\n"
	           "  --interval-ms MS  one byte per connection this often (default 5000)\n"
	           "  --duration S      seconds to hold the wave (default 30)\n"
	           "Prints \"ready\" on stderr once N were up at once (or each once); at the end one JSON line\n"
	           "on stdout.\n"
	           "Exit codes: 0 the wave was up, 1 it never was, 2 usage error.\n");
}

static int parse_long(const char *flag, const char *arg, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(arg, &end, 10);
	if (errno || *end || end == arg || v < lo || v > hi) {
		fprintf(stderr, NAME ": %s: expected an integer in %ld..%ld, got '%s'\n", flag, lo, hi, arg);
		return -1;
	}
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },     { "connections", required_argument, NULL, 'n' },
		{ "sources", required_argument, NULL, 's' },  { "interval-ms", required_argument, NULL, 'i' },
		{ "duration", required_argument, NULL, 'd' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	long port = 0, n = 5000, sources = 25, interval = 5000, duration = 30;
	int opt;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int bad = 0;
		switch (opt) {
		case 'p': bad = parse_long("--port", optarg, 1, 65535, &port); break;
		case 'n': bad = parse_long("--connections", optarg, 1, 1000000, &n); break;
		case 's': bad = parse_long("--sources", optarg, 1, 250, &sources); break;
		case 'i': bad = parse_long("--interval-ms", optarg, 100, 600000, &interval); break;
		case 'd': bad = parse_long("--duration", optarg, 1, 86400, &duration); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (bad)
			return 2;
	}
	if (!port) {
		fprintf(stderr, NAME ": --port is required; see --help\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	g.port = (int)port;
	g.n = (int)n;
	g.nsources = (int)sources;
	g.interval_ms = (int)interval;
	g.duration_s = (double)duration;
	g.base = event_base_new();
	g.ctx = SSL_CTX_new(TLS_client_method());
	g.conns = calloc((size_t)g.n, sizeof *g.conns);
	if (!g.base || !g.ctx || !g.conns) {
		fprintf(stderr, NAME ": out of memory\n");
		return 1;
	}
	SSL_CTX_set_verify(g.ctx, SSL_VERIFY_NONE, NULL); /* a throwaway certificate; nothing secret is sent */
	for (int i = 0; i < g.n; i++)
		g.conns[i].source = i % g.nsources;
	struct timeval tick = { 0, 100000 }, report = { 5, 0 }, end = { (time_t)duration, 0 };
	struct event *t = event_new(g.base, -1, EV_PERSIST, on_tick, NULL);
	struct event *r = event_new(g.base, -1, EV_PERSIST, on_report, NULL);
	struct event *e = evtimer_new(g.base, on_end, NULL);
	event_add(t, &tick);
	event_add(r, &report);
	evtimer_add(e, &end);
	event_base_dispatch(g.base);
	on_report(-1, 0, NULL);
	printf("{\"connections\":%d,\"peak\":%d,\"opened\":%ld,\"closed_by_server\":%ld,\"failed\":%ld,"
	       "\"answered\":%ld,\"ready\":%s}\n", g.n, g.peak, g.opened, g.closed_by_server, g.failed, g.answered,
	       g.ready ? "true" : "false");
	for (int i = 0; i < g.n; i++)
		if (g.conns[i].bev)
			bufferevent_free(g.conns[i].bev);
	event_free(t);
	event_free(r);
	event_free(e);
	free(g.conns);
	SSL_CTX_free(g.ctx);
	event_base_free(g.base);
	return g.ready ? 0 : 1;
}
