#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "admin/admin.h"
#include "callback/callback.h"
#include "client/client.h"
#include "db/db.h"
#include "dispatch/dispatch.h"
#include "http/http.h"
#include "intake/intake.h"
#include "log/log.h"
#include "mem/mem.h"
#include "metrics/metrics.h"
#include "plan/plan.h"
#include "replan/replan.h"
#include "server/server.h"
#include "tls/tls.h"

/* One worker thread: its loop, listener, pool, client, dispatcher, and
 * the environment its request handlers see (env). */
struct server_worker {
	struct server *srv;
	int index;
	pthread_t thread;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	int listen_fd;
	struct db_pool *db;
	struct client *client;     /* outbound HTTPS */
	struct dispatch *dispatch; /* outbox delivery */
	struct replan *replan;     /* waiting lines routed when stock comes */
	struct intake_queue *intake; /* group commit of storefront orders */
	struct callback_queue *callbacks; /* group commit of supplier callbacks */
	const struct config *cfg;
	SSL_CTX *ssl;
	int conns;                 /* open connections on this worker */
	int conn_cap;              /* this worker's share of max_connections */
	int listener_paused;
	int inflight;              /* requests handed to a handler, not yet answered */
	struct event *stop_ev;     /* activated from the main thread */
	unsigned long next_request; /* for request ids */
	unsigned int id_salt;
	struct metrics metrics;
	struct http_env env;       /* what handlers see of this worker */
};

struct server {
	const struct config *cfg;
	SSL_CTX *ssl;
	int nworkers;
	struct server_worker *workers;
	int port;
	struct db_stmt_def *stmts;  /* every module's prepared statements */
};

/* Per-connection state, hung on the connection's SSL object so it lives
 * exactly as long as the connection: OpenSSL calls conn_track_free when
 * evhttp frees the bufferevent and, with it, the SSL. */
struct conn_track {
	struct server_worker *w;
	struct bufferevent *bev;
	struct event *deadline;    /* total time allowed to receive one request */
};

static int track_index = -1;
static pthread_once_t track_once = PTHREAD_ONCE_INIT;

static void worker_listener_update(struct server_worker *w);
static char *server_metrics_text(const struct server *srv);

static void conn_track_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	struct conn_track *t = ptr;
	if (!t)
		return;
	t->w->conns--;
	atomic_fetch_sub(&t->w->metrics.connections, 1);
	worker_listener_update(t->w);
	if (t->deadline)
		event_free(t->deadline);
	free(t);
}

static void track_init(void)
{
	track_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_track_free);
}

static struct conn_track *track_of_request(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	if (!evcon)
		return NULL;
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	return ssl ? SSL_get_ex_data(ssl, track_index) : NULL;
}

/* A client that dribbles its request past the deadline is dropped the way
 * evhttp drops an idle one: through its own timeout path, which frees the
 * connection (and, through the SSL, this track). */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct conn_track *t = arg;
	bufferevent_event_cb eventcb = NULL;
	void *cbarg = NULL;
	bufferevent_getcb(t->bev, NULL, NULL, &eventcb, &cbarg);
	log_info("request deadline exceeded", "worker=%d", t->w->index);
	if (eventcb)
		eventcb(t->bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, cbarg);
}

static void track_arm(struct conn_track *t)
{
	struct timeval tv = { t->w->cfg->server.request_timeout_ms / 1000,
	                      (t->w->cfg->server.request_timeout_ms % 1000) * 1000 };
	evtimer_add(t->deadline, &tv);
}

static struct bufferevent *on_new_connection(struct event_base *base, void *arg)
{
	struct server_worker *w = arg;
	SSL *ssl = SSL_new(w->ssl);
	if (!ssl)
		return NULL;
	struct conn_track *t = mem_calloc(1, sizeof *t);
	struct bufferevent *bev = bufferevent_openssl_socket_new(
		base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!bev) {
		free(t);
		SSL_free(ssl);
		return NULL;
	}
	/* A peer that vanishes without close_notify is normal for HTTP clients. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	t->w = w;
	t->bev = bev;
	t->deadline = evtimer_new(base, on_deadline, t);
	SSL_set_ex_data(ssl, track_index, t);
	w->conns++;
	atomic_fetch_add(&w->metrics.connections, 1);
	worker_listener_update(w);
	if (t->deadline)
		track_arm(t);
	return bev;
}

/* Above the cap, stop accepting: new connections wait in the kernel backlog
 * instead of taking memory here. */
static void worker_listener_update(struct server_worker *w)
{
	if (!w->bound || w->env.draining)
		return;
	struct evconnlistener *l = evhttp_bound_socket_get_listener(w->bound);
	if (!w->listener_paused && w->conns >= w->conn_cap) {
		evconnlistener_disable(l);
		w->listener_paused = 1;
		log_warn("connection cap reached; pausing accept", "worker=%d connections=%d", w->index, w->conns);
	} else if (w->listener_paused && w->conns < w->conn_cap) {
		evconnlistener_enable(l);
		w->listener_paused = 0;
	}
}

static void on_response_sent(struct evhttp_request *req, void *arg)
{
	(void)req;
	/* The connection may now wait for its next request: restart its clock. */
	struct conn_track *t = arg;
	track_arm(t);
}

/* http calls this once per answer (struct http_env's request_done). */
static void worker_request_done(void *arg, int status)
{
	(void)status;
	struct server_worker *w = arg;
	w->inflight--;
	if (w->env.draining && w->inflight == 0) {
		/* Give the last replies a moment to flush before the loop ends. */
		struct timeval grace = { 0, 300000 };
		event_base_loopexit(w->base, &grace);
	}
}

static void make_request_id(struct server_worker *w, struct http_ctx *ctx)
{
	const char *given = http_header(ctx, "X-Request-Id");
	size_t n = given ? strlen(given) : 0;
	if (n > 0 && n < sizeof ctx->request_id && strspn(given,
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n) {
		memcpy(ctx->request_id, given, n + 1);
		return;
	}
	snprintf(ctx->request_id, sizeof ctx->request_id, "%08x%02x%06lx", w->id_salt,
	         (unsigned)w->index & 0xff, w->next_request++ & 0xffffff);
}

static const char *method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_TRACE: return "TRACE";
	case EVHTTP_REQ_CONNECT: return "CONNECT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	}
	return "OTHER";
}

static void reply_method_not_allowed(struct http_ctx *ctx, const char *allow)
{
	evhttp_add_header(evhttp_request_get_output_headers(ctx->req), "Allow", allow);
	http_reply_error(ctx, 405, "method_not_allowed", "method not allowed for this path", NULL);
}

/* Extracts {code} from /v1/<kind>/{code}/<tail>. Returns 1 on a match. */
static int match_code_path(const char *path, const char *kind, const char *tail, char *code, size_t cap)
{
	size_t kl = strlen(kind);
	if (strncmp(path, "/v1/", 4) != 0 || strncmp(path + 4, kind, kl) != 0 || path[4 + kl] != '/')
		return 0;
	const char *start = path + 4 + kl + 1;
	const char *slash = strchr(start, '/');
	if (!slash || slash == start || (size_t)(slash - start) >= cap || strcmp(slash + 1, tail) != 0)
		return 0;
	memcpy(code, start, (size_t)(slash - start));
	code[slash - start] = '\0';
	return 1;
}

static void route(struct server_worker *w, struct http_ctx *ctx)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(ctx->req);
	char code[72];

	if (strcmp(ctx->path, "/healthz") == 0) {
		if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
			reply_method_not_allowed(ctx, "GET, HEAD");
			return;
		}
		json_t *b = json_pack("{s:s}", "status", "ok");
		http_reply_json(ctx, 200, b);
		json_decref(b);
		return;
	}
	if (strcmp(ctx->path, "/readyz") == 0) {
		if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
			reply_method_not_allowed(ctx, "GET, HEAD");
			return;
		}
		int up = db_pool_up(w->db);
		json_t *b = json_pack("{s:s, s:i}", "status", up ? "ready" : "database unavailable",
		                      "db_connections_up", up);
		if (!up)
			evhttp_add_header(evhttp_request_get_output_headers(ctx->req), "Retry-After", "1");
		http_reply_json(ctx, up ? 200 : 503, b);
		json_decref(b);
		return;
	}
	if (strcmp(ctx->path, "/metrics") == 0) {
		if (m != EVHTTP_REQ_GET) {
			reply_method_not_allowed(ctx, "GET");
			return;
		}
		char *text = server_metrics_text(w->srv);
		http_reply_text(ctx, 200, "text/plain; version=0.0.4", text ? text : "", text ? strlen(text) : 0);
		free(text);
		return;
	}
	if (match_code_path(ctx->path, "stores", "webhooks", code, sizeof code)) {
		if (m != EVHTTP_REQ_POST) {
			reply_method_not_allowed(ctx, "POST");
			return;
		}
		snprintf(ctx->store, sizeof ctx->store, "%s", code);
		intake_handle(w->intake, ctx, code);
		return;
	}
	if (match_code_path(ctx->path, "suppliers", "callbacks", code, sizeof code)) {
		if (m != EVHTTP_REQ_POST) {
			reply_method_not_allowed(ctx, "POST");
			return;
		}
		callback_handle(w->callbacks, ctx, code);
		return;
	}
	if (strncmp(ctx->path, "/v1/admin/orders/", 17) == 0 && !strchr(ctx->path + 17, '/')) {
		if (m != EVHTTP_REQ_GET) {
			reply_method_not_allowed(ctx, "GET");
			return;
		}
		admin_handle_order(ctx, ctx->path + 17);
		return;
	}
	http_reply_error(ctx, 404, "not_found", "no such endpoint", NULL);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct server_worker *w = arg;
	struct conn_track *t = track_of_request(req);
	if (t) {
		evtimer_del(t->deadline);
		evhttp_request_set_on_complete_cb(req, on_response_sent, t);
	}
	struct http_ctx *ctx = mem_calloc(1, sizeof *ctx);
	ctx->req = req;
	ctx->env = &w->env;
	clock_gettime(CLOCK_MONOTONIC, &ctx->start);
	ctx->method = method_name(evhttp_request_get_command(req));
	w->inflight++;
	make_request_id(w, ctx);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	snprintf(ctx->path, sizeof ctx->path, "%s", path && *path ? path : "/");
	route(w, ctx);
}

/* ---- sockets ---- */

static int split_listen(const char *addr, char *host, size_t hcap, char *port, size_t pcap)
{
	const char *colon;
	if (addr[0] == '[') {
		const char *end = strchr(addr, ']');
		if (!end || end[1] != ':')
			return -1;
		snprintf(host, hcap, "%.*s", (int)(end - addr - 1), addr + 1);
		colon = end + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon)
			return -1;
		snprintf(host, hcap, "%.*s", (int)(colon - addr), addr);
	}
	snprintf(port, pcap, "%s", colon + 1);
	return 0;
}

static int bind_reuseport(const char *addr, int port_override, int *bound_port, char *err, size_t errlen)
{
	char host[256], port[16];
	if (split_listen(addr, host, sizeof host, port, sizeof port) < 0) {
		snprintf(err, errlen, "[server] listen: expected host:port, got '%s'", addr);
		return -1;
	}
	if (port_override >= 0)
		snprintf(port, sizeof port, "%d", port_override);
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	                          .ai_flags = AI_PASSIVE | AI_NUMERICSERV }, *ai = NULL;
	int rc = getaddrinfo(*host ? host : NULL, port, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "[server] listen: cannot resolve '%s': %s", addr, gai_strerror(rc));
		return -1;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	/* TCP_NODELAY is inherited by every accepted socket: an answer goes out
	 * as more than one TLS record, and with Nagle the last one would wait
	 * for the client's delayed ACK (40 ms a request). */
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
		snprintf(err, errlen, "[server] listen: cannot listen on %s: %s", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	*bound_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
	                                       : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

/* ---- workers ---- */

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct server_worker *w = arg;
	if (w->env.draining)
		return;
	w->env.draining = 1;
	dispatch_stop(w->dispatch);
	replan_stop(w->replan);
	if (w->bound) {
		evhttp_del_accept_socket(w->http, w->bound); /* closes the listening socket */
		w->bound = NULL;
	}
	log_info("worker draining", "worker=%d inflight=%d", w->index, w->inflight);
	/* In-flight requests finish (server_request_done ends the loop); a hard
	 * cap keeps a stuck request from holding shutdown forever. */
	struct timeval grace = { w->inflight ? 20 : 0, w->inflight ? 0 : 300000 };
	event_base_loopexit(w->base, &grace);
}

static void *worker_main(void *arg)
{
	struct server_worker *w = arg;
	event_base_dispatch(w->base);
	/* Idle keep-alive connections are closed here. */
	evhttp_free(w->http);
	w->http = NULL;
	/* The client's pending callbacks still reach the dispatcher and the pool. */
	client_free(w->client);
	w->client = NULL;
	/* Groups still waiting for a connection are answered by the pool's
	 * teardown and go through their queues: the queues go after it. */
	db_pool_free(w->db);
	w->db = NULL;
	intake_queue_free(w->intake);
	w->intake = NULL;
	callback_queue_free(w->callbacks);
	w->callbacks = NULL;
	dispatch_free(w->dispatch);
	w->dispatch = NULL;
	replan_free(w->replan);
	w->replan = NULL;
	log_info("worker stopped", "worker=%d", w->index);
	return NULL;
}

/* What other programs tell dropshipd: messages to send (dropshipctl outbox
 * retry), stock that grew (catalog import), orders to plan again now. */
static const char *const server_channels[] = { "dropship_outbox", "dropship_stock", "dropship_replan", NULL };

/* A handler of this worker committed messages to send. */
static void worker_outbox_ready(void *arg)
{
	struct server_worker *w = arg;
	dispatch_wake(w->dispatch);
}

/* NOTIFY dropship_outbox: another process (dropshipctl) queued messages. */
static void worker_on_notify(const char *channel, const char *payload, void *arg)
{
	(void)payload;
	struct server_worker *w = arg;
	if (strcmp(channel, "dropship_outbox") == 0)
		dispatch_wake(w->dispatch);
	else
		replan_wake(w->replan);
}

static int worker_init(struct server *srv, struct server_worker *w, int index, int fd, char *err, size_t errlen)
{
	w->srv = srv;
	w->index = index;
	w->cfg = srv->cfg;
	w->ssl = srv->ssl;
	w->listen_fd = fd;
	w->conn_cap = srv->cfg->server.max_connections / srv->nworkers;
	if (w->conn_cap < 1)
		w->conn_cap = 1;
	RAND_bytes((unsigned char *)&w->id_salt, sizeof w->id_salt);
	w->base = event_base_new();
	w->http = w->base ? evhttp_new(w->base) : NULL;
	w->stop_ev = w->base ? event_new(w->base, -1, 0, on_stop, w) : NULL;
	if (!w->http || !w->stop_ev) {
		snprintf(err, errlen, "cannot create event loop for worker %d", index);
		return -1;
	}
	evhttp_set_bevcb(w->http, on_new_connection, w);
	evhttp_set_gencb(w->http, on_request, w);
	evhttp_set_max_body_size(w->http, srv->cfg->server.max_body_bytes);
	evhttp_set_max_headers_size(w->http, srv->cfg->server.max_header_bytes);
	int read_ms = srv->cfg->server.read_timeout_ms;
	struct timeval rt = { read_ms / 1000, (read_ms % 1000) * 1000 };
	evhttp_set_timeout_tv(w->http, &rt);
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                           EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
	                           EVHTTP_REQ_OPTIONS);
	w->bound = evhttp_accept_socket_with_handle(w->http, fd);
	if (!w->bound) {
		snprintf(err, errlen, "cannot accept on socket for worker %d", index);
		return -1;
	}
	const struct config *cfg = srv->cfg;
	struct db_pool_options po = {
		.conninfo = cfg->database.url,
		.size = cfg->database.pool_size,
		.stmts = srv->stmts,
		.listen_channels = server_channels,
		/* Every statement dropshipd runs reads by index (tests/e2e/test_plans.c).
		 * Without enable_seqscan off, the foreign-key checks of inserts,
		 * planned once per connection while a fresh database's tables are a
		 * page or two, keep a sequential-scan plan on these long-lived
		 * connections as the tables grow (until autovacuum analyzes them).
		 * JIT is off: the cost that setting adds to a plan that must still
		 * scan a tiny table (suppliers) would otherwise start a compilation
		 * of a second or more for a statement of a millisecond. */
		.setup_sql = "SELECT set_config('enable_seqscan', 'off', false),"
		             " set_config('jit', 'off', false)",
		.on_notify = worker_on_notify,
		.notify_arg = w,
	};
	w->db = db_pool_new(w->base, &po);
	if (!w->db) {
		snprintf(err, errlen, "cannot create database pool for worker %d", index);
		return -1;
	}
	struct client_options co = {
		.ca_file = cfg->dispatch.tls_ca_file,
		.allow_private = cfg->dispatch.allow_private_endpoints,
		.timeout_ms = cfg->dispatch.timeout_ms,
		.max_response_bytes = 65536,
	};
	w->client = client_new(w->base, &co, err, errlen);
	if (!w->client)
		return -1;
	struct dispatch_options dopt = {
		.max_inflight = 64,
		.poll_ms = 1000,
		/* Longer than any attempt can take, so a live holder keeps its claim. */
		.lease_ms = cfg->dispatch.timeout_ms + 5000,
		.max_attempts = cfg->dispatch.max_attempts,
		.backoff_base_ms = cfg->dispatch.backoff_base_ms,
		.backoff_max_ms = cfg->dispatch.backoff_max_ms,
		.breaker_threshold = 5,
		.breaker_cooldown_ms = 30000,
		.sweep_ms = 1000,
	};
	w->env = (struct http_env){
		.base = w->base, .db = w->db, .client = w->client, .cfg = cfg, .metrics = &w->metrics,
		.outbox_ready = worker_outbox_ready, .outbox_ready_arg = w,
		.request_done = worker_request_done, .request_done_arg = w,
	};
	w->intake = intake_queue_new(&w->env);
	w->callbacks = callback_queue_new(&w->env);
	w->dispatch = dispatch_new(w->base, w->db, w->client, w->callbacks, &dopt);
	w->replan = replan_new(w->base, w->db, 5000, worker_outbox_ready, w);
	return 0;
}

/* Concatenates the statement tables of every module the server hosts. */
static struct db_stmt_def *collect_stmts(void)
{
	const struct db_stmt_def *tables[] = { intake_stmts, plan_stmts, dispatch_stmts, callback_stmts,
	                                       replan_stmts, admin_stmts };
	size_t n = 0;
	for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
		for (const struct db_stmt_def *d = tables[t]; d->name; d++)
			n++;
	struct db_stmt_def *all = mem_calloc(n + 1, sizeof *all);
	n = 0;
	for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
		for (const struct db_stmt_def *d = tables[t]; d->name; d++)
			all[n++] = *d;
	return all;
}

struct server *server_new(const struct config *cfg, char *err, size_t errlen)
{
	pthread_once(&track_once, track_init);
	if (evthread_use_pthreads() != 0) {
		snprintf(err, errlen, "libevent: no pthreads support");
		return NULL;
	}
	struct server *srv = mem_calloc(1, sizeof *srv);
	srv->cfg = cfg;
	srv->nworkers = cfg->server.workers > 0 ? cfg->server.workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (srv->nworkers < 1)
		srv->nworkers = 1;
	srv->workers = mem_calloc((size_t)srv->nworkers, sizeof *srv->workers);
	srv->stmts = collect_stmts();
	srv->ssl = tls_server_ctx_new(cfg->server.tls_cert, cfg->server.tls_key, err, errlen);
	if (!srv->ssl)
		goto fail;
	int port = -1;
	for (int i = 0; i < srv->nworkers; i++) {
		int bound;
		/* Port 0 means "any": the first socket picks, the others join it. */
		int fd = bind_reuseport(cfg->server.listen, port, &bound, err, errlen);
		if (fd < 0)
			goto fail;
		port = srv->port = bound;
		if (worker_init(srv, &srv->workers[i], i, fd, err, errlen) < 0)
			goto fail;
	}
	return srv;
fail:
	server_free(srv);
	return NULL;
}

int server_port(const struct server *srv) { return srv->port; }

int server_start(struct server *srv, char *err, size_t errlen)
{
	for (int i = 0; i < srv->nworkers; i++)
		if (pthread_create(&srv->workers[i].thread, NULL, worker_main, &srv->workers[i]) != 0) {
			snprintf(err, errlen, "cannot start worker thread %d", i);
			return -1;
		}
	return 0;
}

void server_stop(struct server *srv)
{
	for (int i = 0; i < srv->nworkers; i++)
		event_active(srv->workers[i].stop_ev, EV_READ, 0);
}

void server_wait(struct server *srv)
{
	for (int i = 0; i < srv->nworkers; i++)
		if (srv->workers[i].thread)
			pthread_join(srv->workers[i].thread, NULL);
}

void server_free(struct server *srv)
{
	if (!srv)
		return;
	for (int i = 0; srv->workers && i < srv->nworkers; i++) {
		struct server_worker *w = &srv->workers[i];
		if (w->http)
			evhttp_free(w->http);
		client_free(w->client);
		db_pool_free(w->db);
		intake_queue_free(w->intake);
		callback_queue_free(w->callbacks);
		dispatch_free(w->dispatch);
		replan_free(w->replan);
		if (w->stop_ev)
			event_free(w->stop_ev);
		if (w->base)
			event_base_free(w->base);
		else if (w->listen_fd > 0)
			close(w->listen_fd);
	}
	free(srv->workers);
	free(srv->stmts);
	SSL_CTX_free(srv->ssl);
	free(srv);
}

/* Sums the metrics of every worker into Prometheus text (malloc'd). */
static char *server_metrics_text(const struct server *srv)
{
	const struct metrics **ms = mem_calloc((size_t)srv->nworkers, sizeof *ms);
	long conns = 0;
	for (int i = 0; i < srv->nworkers; i++) {
		ms[i] = &srv->workers[i].metrics;
		conns += atomic_load(&ms[i]->connections);
	}
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f) {
		free(ms);
		return NULL;
	}
	fprintf(f,
	        "# HELP dropship_http_requests_total HTTP requests answered, by status class.\n"
	        "# TYPE dropship_http_requests_total counter\n"
	        "dropship_http_requests_total{class=\"2xx\"} %lu\n"
	        "dropship_http_requests_total{class=\"4xx\"} %lu\n"
	        "dropship_http_requests_total{class=\"5xx\"} %lu\n"
	        "# HELP dropship_orders_total Orders taken in, by outcome.\n"
	        "# TYPE dropship_orders_total counter\n"
	        "dropship_orders_total{outcome=\"created\"} %lu\n"
	        "dropship_orders_total{outcome=\"duplicate\"} %lu\n"
	        "dropship_orders_total{outcome=\"cancelled\"} %lu\n"
	        "# HELP dropship_db_unavailable_total Requests answered 503 because the database was down.\n"
	        "# TYPE dropship_db_unavailable_total counter\n"
	        "dropship_db_unavailable_total %lu\n"
	        "# HELP dropship_connections Open client connections.\n"
	        "# TYPE dropship_connections gauge\n"
	        "dropship_connections %ld\n"
	        "# HELP dropship_workers Worker threads.\n"
	        "# TYPE dropship_workers gauge\n"
	        "dropship_workers %d\n",
	        metrics_sum(ms, srv->nworkers, METRICS_REQUESTS_2XX),
	        metrics_sum(ms, srv->nworkers, METRICS_REQUESTS_4XX),
	        metrics_sum(ms, srv->nworkers, METRICS_REQUESTS_5XX),
	        metrics_sum(ms, srv->nworkers, METRICS_ORDERS_CREATED),
	        metrics_sum(ms, srv->nworkers, METRICS_ORDERS_DUPLICATE),
	        metrics_sum(ms, srv->nworkers, METRICS_ORDERS_CANCELLED),
	        metrics_sum(ms, srv->nworkers, METRICS_DB_UNAVAILABLE), conns, srv->nworkers);
	fclose(f);
	free(ms);
	return text;
}
