/* receiver: a small HTTPS server for end-to-end tests that records every
 * POST it receives (headers and body) and answers 200, standing in for a store's
 * webhook endpoint. One thread, one connection at a time. */
#ifndef DROPSHIP_TEST_RECEIVER_H
#define DROPSHIP_TEST_RECEIVER_H
#include <pthread.h>
#include <stddef.h>

#define RECEIVER_MAX 256

struct receiver_msg {
	char *headers;   /* raw header block */
	char *body;
};

struct receiver {
	int fd;
	int port;
	int stop;
	pthread_t thread;
	pthread_mutex_t lock;
	struct receiver_msg msgs[RECEIVER_MAX];   /* read under lock */
	size_t n;
	void *ctx;       /* SSL_CTX */
};

/* Listens on 127.0.0.1 (free port) with the test certificate. Returns 0 or -1. */
int receiver_start(struct receiver *r, const char *cert_file, const char *key_file);
/* The same on another local address, IPv4 or IPv6 (e.g. "::1"), with any
 * certificate chain and key. Returns 0 or -1. */
int receiver_start_on(struct receiver *r, const char *addr, const char *cert_file, const char *key_file);
/* A TCP socket listening on addr (an IPv4 or IPv6 literal), on a free port
 * written to *port, with that backlog. Returns the socket or -1. */
int receiver_listen(const char *addr, int backlog, int *port);
/* The next connection on the listening socket fd, waiting in steps of
 * 100 ms until *stop is set; -1 once it is. */
int receiver_accept(int fd, const int *stop);
void receiver_stop(struct receiver *r);
/* The first message whose body contains needle (copies, caller frees both), or -1. */
int receiver_find(struct receiver *r, const char *needle, char **headers, char **body);
/* How many messages so far have a body holding both a and b (b may be NULL). */
size_t receiver_count(struct receiver *r, const char *a, const char *b);

#endif
