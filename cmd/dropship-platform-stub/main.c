/* dropship-platform-stub: the command line, the listener and HTTP/1.1 over
 * TLS, one connection at a time; stub.h says what it is for. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "log/log.h"
#include "mem/mem.h"
#include "stub.h"
#include "tls/tls.h"

#define STUB_MAX_REQUEST (1 << 20)

static volatile sig_atomic_t stub_stopping;

static void stub_on_signal(int sig)
{
	(void)sig;
	stub_stopping = 1;
}

static void stub_usage(FILE *f)
{
	fputs("usage: " STUB_NAME " --tls-cert FILE --tls-key FILE [options]\n"
	      "A stand-in for the Shopify Admin GraphQL API and the WooCommerce REST API, for\n"
	      "demos and tests: it answers the calls dropship makes for shipped parcels\n"
	      "(fulfillmentOrders, fulfillmentCreate; order notes, order status) from the\n"
	      "example responses in --fixtures, and keeps the orders it is given.\n"
	      "\n"
	      "  --listen HOST:PORT      address (default 127.0.0.1:0, a free port; the\n"
	      "                          \"listening\" log line says which)\n"
	      "  --tls-cert FILE, --tls-key FILE   the certificate it serves\n"
	      "  --fixtures DIR          the example responses (default tests/fixtures)\n"
	      "  --shopify-token T       the access token it accepts (default shpat_demo)\n"
	      "  --woo-key K, --woo-secret S  the REST API key it accepts\n"
	      "                          (default ck_demo / cs_demo)\n"
	      "  --order FILE            an order (a Shopify or WooCommerce order body) to\n"
	      "                          know from the start; repeatable\n"
	      "  --throttle N            the first N GraphQL calls answer THROTTLED\n"
	      "  --lose-creates N        the first N fulfillmentCreate calls are applied and\n"
	      "                          then not answered (the connection is closed)\n"
	      "  --user-errors           every fulfillmentCreate answers userErrors\n"
	      "  --locations N           Shopify: line i of an order is assigned to location\n"
	      "                          i mod N (one fulfillment order each); a\n"
	      "                          fulfillmentCreate across locations answers\n"
	      "                          userErrors, as Shopify's does (default 1, at most 9)\n"
	      "  -h, --help\n"
	      "\n"
	      "Besides the platforms' paths it answers POST /_stub/orders (an order body,\n"
	      "as --order) and GET /_stub/requests (every call taken, in order).\n", f);
}

static int stub_usage_error(const char *what, const char *value)
{
	fprintf(stderr, STUB_NAME ": %s: '%s'; see --help\n", what, value ? value : "");
	return 2;
}

static int stub_count(const char *opt, const char *v, int *out)
{
	char *end;
	long n = strtol(v, &end, 10);
	if (*v == '\0' || *end != '\0' || n < 0 || n > 1000000)
		return stub_usage_error(opt, v);
	*out = (int)n;
	return 0;
}

/* Options into o: 0, 1 after --help, 2 on a usage error. */
static int stub_parse(int argc, char **argv, struct stub_opts *o)
{
	*o = (struct stub_opts){ .listen = "127.0.0.1:0", .fixtures = "tests/fixtures",
	                         .shopify_token = "shpat_demo", .woo_key = "ck_demo", .woo_secret = "cs_demo",
	                         .locations = 1 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			stub_usage(stdout);
			return 1;
		}
		if (strcmp(a, "--user-errors") == 0) {
			o->user_errors = 1;
			continue;
		}
		if (!v)
			return stub_usage_error("missing value or unknown option", a);
		i++;
		if (strcmp(a, "--listen") == 0)
			o->listen = v;
		else if (strcmp(a, "--tls-cert") == 0)
			o->tls_cert = v;
		else if (strcmp(a, "--tls-key") == 0)
			o->tls_key = v;
		else if (strcmp(a, "--fixtures") == 0)
			o->fixtures = v;
		else if (strcmp(a, "--shopify-token") == 0)
			o->shopify_token = v;
		else if (strcmp(a, "--woo-key") == 0)
			o->woo_key = v;
		else if (strcmp(a, "--woo-secret") == 0)
			o->woo_secret = v;
		else if (strcmp(a, "--order") == 0 && o->norders < sizeof o->orders / sizeof o->orders[0])
			o->orders[o->norders++] = v;
		else if (strcmp(a, "--throttle") == 0 ? stub_count(a, v, &o->throttle)
		         : strcmp(a, "--lose-creates") == 0 ? stub_count(a, v, &o->lose_creates)
		         : strcmp(a, "--locations") == 0 ? stub_count(a, v, &o->locations)
		         : stub_usage_error("unknown option", a))
			return 2;
	}
	if (!o->tls_cert || !o->tls_key)
		return stub_usage_error("--tls-cert and --tls-key are required", "");
	if (o->locations < 1 || o->locations > 9)
		return stub_usage_error("--locations: 1 to 9", "");
	return 0;
}

/* A listening socket on HOST:PORT (IPv4 or IPv6 literal), its port in *port. */
static int stub_listen(const char *listen_on, int *port, char *err, size_t errlen)
{
	char host[128];
	const char *colon = strrchr(listen_on, ':');
	if (!colon || (size_t)(colon - listen_on) >= sizeof host) {
		snprintf(err, errlen, "--listen: expected HOST:PORT (got '%s')", listen_on);
		return -1;
	}
	snprintf(host, sizeof host, "%.*s", (int)(colon - listen_on), listen_on);
	if (host[0] == '[') {
		memmove(host, host + 1, strlen(host));
		host[strcspn(host, "]")] = '\0';
	}
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	int p = (int)strtol(colon + 1, NULL, 10);
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((unsigned short)p);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((unsigned short)p);
	} else {
		snprintf(err, errlen, "--listen: '%s' is not an IP address", host);
		return -1;
	}
	socklen_t sl = ss.ss_family == AF_INET ? sizeof *sin : sizeof *sin6;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		snprintf(err, errlen, "--listen: cannot listen on %s: %s", listen_on, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(ss.ss_family == AF_INET ? sin->sin_port : sin6->sin6_port);
	return fd;
}

/* The value of header name in the header block, copied into buf, or NULL. */
static const char *stub_header(const char *head, const char *name, char *buf, size_t cap)
{
	size_t n = strlen(name);
	for (const char *p = strstr(head, "\r\n"); p && p[2] != '\r'; p = strstr(p + 2, "\r\n")) {
		const char *line = p + 2;
		if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
			const char *v = line + n + 1;
			v += strspn(v, " \t");
			size_t len = strcspn(v, "\r\n");
			snprintf(buf, cap, "%.*s", (int)(len < cap ? len : cap - 1), v);
			return buf;
		}
	}
	return NULL;
}

static const char *stub_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 422: return "Unprocessable Entity";
	default: return "Status";
	}
}

/* Reads one request from ssl, answers it and returns; the connection closes after. */
static void stub_serve(struct stub *s, SSL *ssl)
{
	char *buf = mem_alloc(STUB_MAX_REQUEST + 1), *end = NULL;
	size_t len = 0, clen = 0, hlen;
	while (!end && len < STUB_MAX_REQUEST) {
		int n = SSL_read(ssl, buf + len, (int)(STUB_MAX_REQUEST - len));
		if (n <= 0)
			goto done;
		len += (size_t)n;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	if (!end)
		goto done;
	hlen = (size_t)(end - buf) + 4;
	end[2] = '\0'; /* the header block ends with its last line's CRLF */
	char cl[32], token[512], auth[512], method[16] = "", path[2048] = "";
	if (stub_header(buf, "Content-Length", cl, sizeof cl))
		clen = (size_t)strtoul(cl, NULL, 10);
	while (len < hlen + clen && len < STUB_MAX_REQUEST) {
		int n = SSL_read(ssl, buf + len, (int)(STUB_MAX_REQUEST - len));
		if (n <= 0)
			goto done;
		len += (size_t)n;
	}
	buf[hlen + clen < len ? hlen + clen : len] = '\0';
	if (sscanf(buf, "%15s %2047s", method, path) != 2)
		goto done;
	struct stub_request req = { method, path, stub_header(buf, "X-Shopify-Access-Token", token, sizeof token),
	                            stub_header(buf, "Authorization", auth, sizeof auth), buf + hlen };
	struct stub_answer a;
	stub_handle(s, &req, &a);
	char q[300];
	log_info("call", "method=%s path=%s status=%d lost=%s", method, log_quote(q, sizeof q, path), a.status,
	         a.lose ? "yes" : "no");
	if (!a.lose) {
		char *body = json_dumps(a.body, JSON_COMPACT | JSON_ENCODE_ANY);
		char head[256];
		int hn = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
		                  "Content-Length: %zu\r\nConnection: close\r\n%s%s%s\r\n", a.status,
		                  stub_reason(a.status), strlen(body), a.retry_after ? "Retry-After: " : "",
		                  a.retry_after ? a.retry_after : "", a.retry_after ? "\r\n" : "");
		SSL_write(ssl, head, hn);
		SSL_write(ssl, body, (int)strlen(body));
		free(body);
	}
	json_decref(a.body);
done:
	free(buf);
}

static int stub_load_orders(struct stub *s, const struct stub_opts *o)
{
	for (size_t i = 0; i < o->norders; i++) {
		json_error_t je;
		json_t *doc = json_load_file(o->orders[i], 0, &je);
		char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL, err[256] = "";
		int rc = text ? stub_add_order(s, text, err, sizeof err) : -1;
		json_decref(doc);
		free(text);
		if (rc < 0) {
			fprintf(stderr, STUB_NAME ": --order %s: %s\n", o->orders[i], doc ? err : je.text);
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	mem_use_for_libraries();
	struct stub_opts o;
	int rc = stub_parse(argc, argv, &o);
	if (rc)
		return rc == 1 ? 0 : 2;
	char err[512];
	SSL_CTX *ctx = tls_server_ctx_new(o.tls_cert, o.tls_key, err, sizeof err);
	struct stub *s = ctx ? stub_new(&o, err, sizeof err) : NULL;
	int port = 0, fd = s ? stub_listen(o.listen, &port, err, sizeof err) : -1;
	if (fd < 0 || stub_load_orders(s, &o) < 0) {
		if (fd < 0)
			fprintf(stderr, STUB_NAME ": %s\n", err);
		stub_free(s);
		SSL_CTX_free(ctx);
		return fd < 0 && !s ? 2 : 1;
	}
	struct sigaction sa = { .sa_handler = stub_on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	log_info("listening", "port=%d", port);
	while (!stub_stopping) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		if (poll(&pfd, 1, 200) <= 0)
			continue;
		int c = accept(fd, NULL, NULL);
		if (c < 0)
			continue;
		struct timeval tv = { 5, 0 };
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		SSL *ssl = SSL_new(ctx);
		SSL_set_fd(ssl, c);
		if (SSL_accept(ssl) == 1)
			stub_serve(s, ssl);
		SSL_shutdown(ssl);
		SSL_free(ssl);
		close(c);
	}
	log_info("stopping", "calls=%d", 0);
	close(fd);
	stub_free(s);
	SSL_CTX_free(ctx);
	return 0;
}
