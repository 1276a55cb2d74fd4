#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sig/sig.h"
#include "support/https.h"

static int https_connect_src(struct https_conn *c, const char *source, int port, int timeout_ms,
                             SSL_SESSION *resume, int max_version);

int https_connect(struct https_conn *c, int port, int timeout_ms)
{
	return https_connect_resume(c, port, timeout_ms, NULL, 0);
}

int https_connect_from(struct https_conn *c, const char *source, int port, int timeout_ms)
{
	return https_connect_src(c, source, port, timeout_ms, NULL, 0);
}

int https_connect_resume(struct https_conn *c, int port, int timeout_ms, SSL_SESSION *resume,
                         int max_version)
{
	return https_connect_src(c, NULL, port, timeout_ms, resume, max_version);
}

/* https_connect_resume from the local IPv4 address source (NULL: any). */
static int https_connect_src(struct https_conn *c, const char *source, int port, int timeout_ms,
                             SSL_SESSION *resume, int max_version)
{
	memset(c, 0, sizeof *c);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct sockaddr_in from = { .sin_family = AF_INET };
	if (source && (inet_pton(AF_INET, source, &from.sin_addr) != 1 ||
	               bind(c->fd, (struct sockaddr *)&from, sizeof from) < 0))
		goto fail;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		goto fail;
	c->ctx = SSL_CTX_new(TLS_client_method());
	if (!c->ctx)
		goto fail;
	c->ssl = SSL_new(c->ctx);
	if (!c->ssl)
		goto fail;
	SSL_set_fd(c->ssl, c->fd);
	if (resume)
		SSL_set_session(c->ssl, resume);
	if (max_version) {
		/* Older protocols need the security level lowered to be offered at all. */
		SSL_set_security_level(c->ssl, 0);
		SSL_set_min_proto_version(c->ssl, 0);
		SSL_set_max_proto_version(c->ssl, max_version);
	}
	SSL_set_tlsext_host_name(c->ssl, "localhost");
	if (SSL_connect(c->ssl) != 1)
		goto fail;
	return 0;
fail:
	https_close(c);
	return -1;
}

void https_close(struct https_conn *c)
{
	if (c->ssl) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	if (c->ctx)
		SSL_CTX_free(c->ctx);
	if (c->fd > 0)
		close(c->fd);
	memset(c, 0, sizeof *c);
	c->fd = -1;
}

int https_write(struct https_conn *c, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		int n = SSL_write(c->ssl, p, len > 1 << 20 ? 1 << 20 : (int)len);
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Appends up to cap bytes read from the connection; returns bytes read, 0 on EOF, -1 on error. */
static int read_some(struct https_conn *c, char **buf, size_t *len, size_t *cap)
{
	if (*cap - *len < 16384) {
		*cap = *cap * 2 + 16384;
		char *nb = realloc(*buf, *cap + 1);
		if (!nb)
			return -1;
		*buf = nb;
	}
	int n = SSL_read(c->ssl, *buf + *len, (int)(*cap - *len));
	if (n <= 0)
		return n == 0 ? 0 : -1;
	*len += (size_t)n;
	(*buf)[*len] = '\0';
	return n;
}

int https_read_response(struct https_conn *c, struct https_resp *r)
{
	memset(r, 0, sizeof *r);
	char *buf = NULL;
	size_t len = 0, cap = 0;
	char *hdr_end = NULL;
	while (!hdr_end) {
		int n = read_some(c, &buf, &len, &cap);
		if (n <= 0)
			goto fail;
		hdr_end = strstr(buf, "\r\n\r\n");
	}
	size_t hlen = (size_t)(hdr_end - buf) + 4;
	r->headers = strndup(buf, hlen);
	if (!r->headers || sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1)
		goto fail;
	char v[32];
	long clen = -1;
	if (https_header(r, "Content-Length", v, sizeof v))
		clen = strtol(v, NULL, 10);
	/* Without a length the body ends when the server closes. */
	while (clen < 0 || len - hlen < (size_t)clen) {
		int n = read_some(c, &buf, &len, &cap);
		if (n < 0 && clen >= 0)
			goto fail;
		if (n <= 0)
			break;
	}
	r->body_len = clen >= 0 ? (size_t)clen : len - hlen;
	r->body = strndup(buf + hlen, r->body_len);
	free(buf);
	return r->body ? 0 : -1;
fail:
	free(buf);
	https_resp_free(r);
	return -1;
}

int https_request(struct https_conn *c, const char *method, const char *path,
                  const char *extra_headers, const char *body, size_t body_len,
                  struct https_resp *r)
{
	char head[8192];
	int n = snprintf(head, sizeof head,
	                 "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %zu\r\n%s\r\n",
	                 method, path, body_len, extra_headers ? extra_headers : "");
	if (n < 0 || (size_t)n >= sizeof head)
		return -1;
	if (https_write(c, head, (size_t)n) < 0 || (body_len && https_write(c, body, body_len) < 0))
		return -1;
	return https_read_response(c, r);
}

int https_once(int port, const char *method, const char *path, const char *extra_headers,
               const char *body, size_t body_len, struct https_resp *r)
{
	struct https_conn c;
	memset(r, 0, sizeof *r);
	if (https_connect(&c, port, 15000) < 0)
		return -1;
	int rc = https_request(&c, method, path, extra_headers, body, body_len, r);
	https_close(&c);
	return rc;
}

int https_closed_by_peer(struct https_conn *c, int timeout_ms)
{
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	char b[4096];
	for (;;) {
		int n = SSL_read(c->ssl, b, sizeof b);
		if (n > 0)
			continue; /* e.g. an error response before the close */
		int e = SSL_get_error(c->ssl, n);
		if (e == SSL_ERROR_ZERO_RETURN)
			return 1;
		if (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0; /* timed out: still open */
		return 1;
	}
}

const char *https_header(const struct https_resp *r, const char *name, char *buf, size_t cap)
{
	if (!r->headers)
		return NULL;
	size_t nl = strlen(name);
	for (const char *p = strstr(r->headers, "\r\n"); p && p[2] != '\r'; p = strstr(p + 2, "\r\n")) {
		const char *line = p + 2;
		if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
			const char *v = line + nl + 1;
			while (*v == ' ')
				v++;
			size_t vl = strcspn(v, "\r");
			snprintf(buf, cap, "%.*s", (int)vl, v);
			return buf;
		}
	}
	return NULL;
}

void https_resp_free(struct https_resp *r)
{
	free(r->headers);
	free(r->body);
	memset(r, 0, sizeof *r);
}

void https_webhook_headers(const char *secret, const char *msg_id, int64_t ts,
                           const char *body, char *out, size_t cap)
{
	char sig[SIG_V1_MAX];
	if (sig_sign_standard(secret, msg_id, ts, body, strlen(body), sig, sizeof sig) < 0)
		snprintf(sig, sizeof sig, "v1,invalid-secret");
	snprintf(out, cap,
	         "Content-Type: application/json\r\nwebhook-id: %s\r\nwebhook-timestamp: %lld\r\n"
	         "webhook-signature: %s\r\n",
	         msg_id, (long long)ts, sig);
}

int https_post_signed(int port, const char *path, const char *secret, const char *msg_id, int64_t ts,
                      const char *body, struct https_resp *r)
{
	static atomic_ulong seq;
	char fresh[64], hdrs[1024];
	if (!msg_id) {
		snprintf(fresh, sizeof fresh, "msg_test_%d_%lu", (int)getpid(), atomic_fetch_add(&seq, 1) + 1);
		msg_id = fresh;
	}
	https_webhook_headers(secret, msg_id, ts, body, hdrs, sizeof hdrs);
	return https_once(port, "POST", path, hdrs, body, strlen(body), r);
}
