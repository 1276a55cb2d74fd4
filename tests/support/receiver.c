#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "support/receiver.h"

/* Reads one request (headers, then Content-Length bytes) and records it. */
static void receiver_serve(struct receiver *r, SSL *ssl)
{
	char buf[65536];
	size_t len = 0;
	char *end = NULL;
	while (!end && len < sizeof buf - 1) {
		int n = SSL_read(ssl, buf + len, (int)(sizeof buf - 1 - len));
		if (n <= 0)
			return;
		len += (size_t)n;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	if (!end)
		return;
	size_t hlen = (size_t)(end - buf) + 4, clen = 0;
	for (char *p = buf; p < end; p = strstr(p, "\r\n") + 2) {
		if (strncasecmp(p, "Content-Length:", 15) == 0)
			clen = (size_t)strtoul(p + 15, NULL, 10);
		if (!strstr(p, "\r\n"))
			break;
	}
	while (len < hlen + clen && len < sizeof buf - 1) {
		int n = SSL_read(ssl, buf + len, (int)(sizeof buf - 1 - len));
		if (n <= 0)
			return;
		len += (size_t)n;
	}
	buf[len] = '\0';
	pthread_mutex_lock(&r->lock);
	if (r->n < RECEIVER_MAX) {
		r->msgs[r->n].headers = strndup(buf, hlen);
		r->msgs[r->n].body = strndup(buf + hlen, clen);
		r->n++;
	}
	pthread_mutex_unlock(&r->lock);
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
	SSL_write(ssl, ok, (int)sizeof ok - 1);
}

int receiver_accept(int fd, const int *stop)
{
	while (!*stop) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		int c = accept(fd, NULL, NULL);
		if (c >= 0)
			return c;
	}
	return -1;
}

static void *receiver_main(void *arg)
{
	struct receiver *r = arg;
	int c;
	while ((c = receiver_accept(r->fd, &r->stop)) >= 0) {
		struct timeval tv = { 5, 0 };
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		SSL *ssl = SSL_new(r->ctx);
		SSL_set_fd(ssl, c);
		if (SSL_accept(ssl) == 1)
			receiver_serve(r, ssl);
		SSL_shutdown(ssl);
		SSL_free(ssl);
		close(c);
	}
	return NULL;
}

int receiver_start(struct receiver *r, const char *cert_file, const char *key_file)
{
	return receiver_start_on(r, "127.0.0.1", cert_file, key_file);
}

int receiver_listen(const char *addr, int backlog, int *port)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
	else
		return -1;
	socklen_t sl = ss.ss_family == AF_INET ? sizeof *sin : sizeof *sin6;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, backlog) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(ss.ss_family == AF_INET ? sin->sin_port : sin6->sin6_port);
	return fd;
}

int receiver_start_on(struct receiver *r, const char *addr, const char *cert_file, const char *key_file)
{
	memset(r, 0, sizeof *r);
	pthread_mutex_init(&r->lock, NULL);
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	r->ctx = ctx;
	if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1)
		return -1;
	r->fd = receiver_listen(addr, 16, &r->port);
	if (r->fd < 0)
		return -1;
	return pthread_create(&r->thread, NULL, receiver_main, r) == 0 ? 0 : -1;
}

void receiver_stop(struct receiver *r)
{
	r->stop = 1;
	if (r->thread)
		pthread_join(r->thread, NULL);
	if (r->fd > 0)
		close(r->fd);
	for (size_t i = 0; i < r->n; i++) {
		free(r->msgs[i].headers);
		free(r->msgs[i].body);
	}
	SSL_CTX_free(r->ctx);
	pthread_mutex_destroy(&r->lock);
}

int receiver_find(struct receiver *r, const char *needle, char **headers, char **body)
{
	int found = -1;
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->n && found < 0; i++)
		if (strstr(r->msgs[i].body, needle)) {
			*headers = strdup(r->msgs[i].headers);
			*body = strdup(r->msgs[i].body);
			found = (int)i;
		}
	pthread_mutex_unlock(&r->lock);
	return found;
}

size_t receiver_count(struct receiver *r, const char *a, const char *b)
{
	size_t n = 0;
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->n; i++) {
		const char *body = r->msgs[i].body;
		n += body && strstr(body, a) && (!b || strstr(body, b));
	}
	pthread_mutex_unlock(&r->lock);
	return n;
}
