#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/ssl.h>

#include "admin/admin.h"
#include "backlog/backlog.h"
#include "callback/callback.h"
#include "client/client.h"
#include "config/config.h"
#include "db/db.h"
#include "dispatch/dispatch.h"
#include "feed/feed.h"
#include "http/http.h"
#include "httpd/httpd.h"
#include "intake/intake.h"
#include "log/log.h"
#include "mem/mem.h"
#include "metrics/metrics.h"
#include "plan/plan.h"
#include "replan/replan.h"
#include "rescore/rescore.h"
#include "server/server.h"
#include "stock/stock.h"
#include "tls/tls.h"
#include "version/version.h"

/* One worker thread: its loop, listener, pool, client, dispatcher, and
 * the environment its request handlers see (env). */
struct server_worker {
	struct server *srv;
	int index;
	pthread_t thread;
	struct event_base *base;
	struct httpd *httpd;       /* the public listener's connections */
	struct httpd *admin;       /* the admin listener's (worker 0 only), or NULL */
	struct db_pool *db;
	struct client *client;     /* outbound HTTPS */
	struct dispatch *dispatch; /* outbox delivery */
	struct replan *replan;     /* waiting lines routed when stock comes */
	struct rescore *rescore;   /* the supplier scorecard; worker 0 only, else NULL */
	struct intake_queue *intake; /* group commit of storefront orders */
	struct callback_queue *callbacks; /* group commit of supplier callbacks */
	struct backlog *backlog;   /* the database's gauges for /metrics (worker 0 only), or NULL */
	struct config cfg;         /* this worker's copy: live keys change on reload */
	int drained;               /* the listeners have no connection left */
	int dispatch_idle;         /* after a stop: nothing in flight outbound */
	struct event *stop_ev;     /* activated from the main thread */
	struct event *reload_ev;   /* likewise: take srv->live */
	struct metrics metrics;
	struct db_pool_stats pool_stats;
	struct http_env env;       /* what handlers see of this worker */
};

/* Connections per client address, across workers. */
#define SERVER_IP_BUCKETS 4096

struct server_ip {
	unsigned char addr[16];    /* IPv4 as IPv4-mapped IPv6 */
	int count;
	struct server_ip *next;
};

struct server {
	struct config cfg;         /* as started; the live keys as last reloaded */
	int nworkers;
	struct server_worker *workers;
	int port, admin_port;
	struct db_stmt_def *stmts;  /* every module's prepared statements */
	pthread_mutex_t lock;       /* guards ssl, live and ips */
	SSL_CTX *ssl;               /* new connections' TLS context */
	struct config live;         /* the live keys a reload hands to the workers */
	struct server_ip *ips[SERVER_IP_BUCKETS];
	struct metrics_backlog backlog; /* written by worker 0's backlog, read by /metrics */
};

static char *server_metrics_text(const struct server *srv);

/* ---- per-address limit ---- */

static void server_ip_key(const struct sockaddr *sa, unsigned char key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	} else if (sa->sa_family == AF_INET) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	}
}

static unsigned server_ip_hash(const unsigned char key[16])
{
	unsigned h = 2166136261u;
	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	return h % SERVER_IP_BUCKETS;
}

/* The link to sa's entry, or to the NULL that ends its bucket. Under srv->lock. */
static struct server_ip **server_ip_find(struct server *srv, const struct sockaddr *sa, unsigned char key[16])
{
	server_ip_key(sa, key);
	struct server_ip **pp = &srv->ips[server_ip_hash(key)];
	while (*pp && memcmp((*pp)->addr, key, 16) != 0)
		pp = &(*pp)->next;
	return pp;
}

/* httpd's admit: one more connection from this address, if under the limit. */
static int server_admit(void *arg, const struct sockaddr *sa, socklen_t len)
{
	(void)len;
	struct server *srv = arg;
	unsigned char key[16];
	int ok = 1;
	pthread_mutex_lock(&srv->lock);
	struct server_ip **pp = server_ip_find(srv, sa, key);
	if (!*pp) {
		*pp = mem_calloc(1, sizeof **pp);
		memcpy((*pp)->addr, key, 16);
	}
	if ((*pp)->count >= srv->cfg.server.max_connections_per_ip)
		ok = 0;
	else
		(*pp)->count++;
	/* An address refused with no connection open keeps no entry. */
	if ((*pp)->count == 0) {
		free(*pp);
		*pp = NULL;
	}
	pthread_mutex_unlock(&srv->lock);
	return ok;
}

static void server_release(void *arg, const struct sockaddr *sa, socklen_t len)
{
	(void)len;
	struct server *srv = arg;
	unsigned char key[16];
	pthread_mutex_lock(&srv->lock);
	struct server_ip **pp = server_ip_find(srv, sa, key);
	if (*pp && --(*pp)->count <= 0) {
		struct server_ip *dead = *pp;
		*pp = dead->next;
		free(dead);
	}
	pthread_mutex_unlock(&srv->lock);
}

/* httpd's TLS context: the current one, with a reference for the caller. */
static SSL_CTX *server_tls_ctx(void *arg)
{
	struct server *srv = arg;
	pthread_mutex_lock(&srv->lock);
	SSL_CTX *ctx = srv->ssl;
	SSL_CTX_up_ref(ctx);
	pthread_mutex_unlock(&srv->lock);
	return ctx;
}

/* ---- routing ---- */

static void reply_method_not_allowed(struct http_ctx *ctx, const char *allow)
{
	http_add_header(ctx, "Allow", allow);
	http_reply_error(ctx, 405, "method_not_allowed", "method not allowed for this path", NULL);
}

/* True when the request's method is one of the space-separated list. */
static int method_in(const struct http_ctx *ctx, const char *list)
{
	size_t n = strlen(ctx->method);
	for (const char *p = list; (p = strstr(p, ctx->method)) != NULL; p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
			return 1;
	return 0;
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

/* Answers the endpoints both listeners have (health, readiness, metrics,
 * the admin API). Returns 1 when it answered. */
static int route_common(struct server_worker *w, struct http_ctx *ctx, int admin_listener)
{
	if (strcmp(ctx->path, "/healthz") == 0) {
		if (!method_in(ctx, "GET HEAD")) {
			reply_method_not_allowed(ctx, "GET, HEAD");
			return 1;
		}
		json_t *b = json_pack("{s:s}", "status", "ok");
		http_reply_json(ctx, 200, b);
		json_decref(b);
		return 1;
	}
	if (strcmp(ctx->path, "/readyz") == 0) {
		if (!method_in(ctx, "GET HEAD")) {
			reply_method_not_allowed(ctx, "GET, HEAD");
			return 1;
		}
		int up = db_pool_up(w->db);
		json_t *b = json_pack("{s:s, s:i}", "status", up ? "ready" : "database unavailable",
		                      "db_connections_up", up);
		if (!up)
			http_add_header(ctx, "Retry-After", "1");
		http_reply_json(ctx, up ? 200 : 503, b);
		json_decref(b);
		return 1;
	}
	if (strcmp(ctx->path, "/metrics") == 0) {
		/* On the public listener only when there is no admin listener, and
		 * then behind the admin token like the rest of the admin API. */
		if (!admin_listener && w->cfg.admin.listen[0])
			return 0;
		if (!admin_listener && !admin_check(ctx))
			return 1;
		if (!method_in(ctx, "GET")) {
			reply_method_not_allowed(ctx, "GET");
			return 1;
		}
		char *text = server_metrics_text(w->srv);
		http_reply_text(ctx, 200, "text/plain; version=0.0.4", text ? text : "", text ? strlen(text) : 0);
		free(text);
		return 1;
	}
	if (strncmp(ctx->path, "/v1/admin/orders/", 17) == 0 && !strchr(ctx->path + 17, '/')) {
		if (!method_in(ctx, "GET")) {
			reply_method_not_allowed(ctx, "GET");
			return 1;
		}
		admin_handle_order(ctx, ctx->path + 17);
		return 1;
	}
	return 0;
}

static void route(void *arg, struct http_ctx *ctx)
{
	struct server_worker *w = arg;
	char code[72];
	if (route_common(w, ctx, 0))
		return;
	if (match_code_path(ctx->path, "stores", "webhooks", code, sizeof code)) {
		if (!method_in(ctx, "POST")) {
			reply_method_not_allowed(ctx, "POST");
			return;
		}
		snprintf(ctx->store, sizeof ctx->store, "%s", code);
		intake_handle(w->intake, ctx, code);
		return;
	}
	if (match_code_path(ctx->path, "suppliers", "callbacks", code, sizeof code)) {
		if (!method_in(ctx, "POST")) {
			reply_method_not_allowed(ctx, "POST");
			return;
		}
		callback_handle(w->callbacks, ctx, code);
		return;
	}
	if (match_code_path(ctx->path, "suppliers", "inventory", code, sizeof code)) {
		if (!method_in(ctx, "POST")) {
			reply_method_not_allowed(ctx, "POST");
			return;
		}
		feed_handle(ctx, code);
		return;
	}
	http_reply_error(ctx, 404, "not_found", "no such endpoint", NULL);
}

static void route_admin(void *arg, struct http_ctx *ctx)
{
	if (!route_common(arg, ctx, 1))
		http_reply_error(ctx, 404, "not_found", "no such endpoint", NULL);
}

/* ---- sockets ---- */

/* A listening socket on addr (host:port; port_override >= 0 replaces the
 * port). share: SO_REUSEPORT, so that every worker has its own socket on
 * the address. Returns the socket, or -1 with a message naming key. */
static int server_listen(const char *key, const char *addr, int port_override, int share, int *bound_port,
                         char *err, size_t errlen)
{
	char host[256], port[16];
	if (config_listen_split(addr, host, sizeof host, port, sizeof port) < 0) {
		snprintf(err, errlen, "%s: expected host:port, got '%s'", key, addr);
		return -1;
	}
	if (port_override >= 0)
		snprintf(port, sizeof port, "%d", port_override);
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	                          .ai_flags = AI_PASSIVE | AI_NUMERICSERV }, *ai = NULL;
	int rc = getaddrinfo(*host ? host : NULL, port, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "%s: cannot resolve '%s': %s", key, addr, gai_strerror(rc));
		return -1;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	/* TCP_NODELAY is inherited by every accepted socket: an answer goes out
	 * as more than one TLS record, and with Nagle the last one would wait
	 * for the client's delayed ACK (40 ms a request). */
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    (share && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
		int e = errno;
		if (e == EADDRINUSE)
			snprintf(err, errlen, "%s: %s is in use (another dropshipd? set [server] reuse_port = true"
			         " to share it on purpose)", key, addr);
		else
			snprintf(err, errlen, "%s: cannot listen on %s: %s", key, addr, strerror(e));
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

/* One process per address unless reuse_port: a probe without SO_REUSEPORT
 * fails while any socket (ours with it or not) is bound there. Returns the
 * port to bind (the probe's when port 0 asked for any), or -1. */
static int server_claim_address(const struct config *cfg, char *err, size_t errlen)
{
	int port;
	int fd = server_listen("[server] listen", cfg->server.listen, -1, 0, &port, err, errlen);
	if (fd < 0)
		return -1;
	close(fd);
	return port;
}

/* ---- workers ---- */

/* The listeners have no connection left: the loop may end (after a moment
 * for the last answers to flush). */
static void worker_drained(void *arg)
{
	struct server_worker *w = arg;
	/* Either listener may be the one that just emptied, or the dispatcher
	 * the last to finish: messages it is sending would otherwise go out
	 * again from another process after their lease. */
	if (w->drained || !w->env.draining || !w->dispatch_idle || httpd_conns(w->httpd) > 0 ||
	    httpd_conns(w->admin) > 0)
		return;
	w->drained = 1;
	struct timeval grace = { 0, 300000 };
	event_base_loopexit(w->base, &grace);
}

static void worker_dispatch_idle(void *arg)
{
	struct server_worker *w = arg;
	w->dispatch_idle = 1;
	worker_drained(w);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct server_worker *w = arg;
	if (w->env.draining)
		return;
	w->env.draining = 1;
	dispatch_stop(w->dispatch, worker_dispatch_idle, w);
	replan_stop(w->replan);
	backlog_stop(w->backlog);
	rescore_stop(w->rescore);
	log_info("worker draining", "worker=%d connections=%d", w->index, httpd_conns(w->httpd));
	/* A hard cap keeps a stuck request from holding shutdown forever. */
	struct timeval cap = { 20, 0 };
	event_base_loopexit(w->base, &cap);
	httpd_drain(w->admin);
	httpd_drain(w->httpd);
}

static struct client_options worker_client_options(const struct config *cfg)
{
	return (struct client_options){
		.ca_file = cfg->dispatch.tls_ca_file,
		.allow_private = cfg->dispatch.allow_private_endpoints,
		.timeout_ms = cfg->dispatch.timeout_ms,
		.max_response_bytes = 65536,
	};
}

/* Takes the live keys of the last reload (in this worker's thread). */
static void on_reload(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct server_worker *w = arg;
	pthread_mutex_lock(&w->srv->lock);
	w->cfg.dispatch = w->srv->live.dispatch;
	memcpy(w->cfg.admin.token, w->srv->live.admin.token, sizeof w->cfg.admin.token);
	snprintf(w->cfg.server.log_level, sizeof w->cfg.server.log_level, "%s", w->srv->live.server.log_level);
	pthread_mutex_unlock(&w->srv->lock);
	struct dispatch_options dopt;
	dispatch_options_from(&w->cfg, &dopt);
	dispatch_set_options(w->dispatch, &dopt);
	/* server_reload loaded the CA file already: this fails only if it
	 * changed again since, and then the old one stays. */
	struct client_options co = worker_client_options(&w->cfg);
	char err[256];
	if (client_set_options(w->client, &co, err, sizeof err) < 0)
		log_error("reload: worker keeps its outbound TLS settings", "worker=%d error=\"%s\"", w->index, err);
}

static void *worker_main(void *arg)
{
	struct server_worker *w = arg;
	event_base_dispatch(w->base);
	httpd_free(w->httpd);
	w->httpd = NULL;
	httpd_free(w->admin);
	w->admin = NULL;
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
	backlog_free(w->backlog);
	w->backlog = NULL;
	rescore_free(w->rescore);
	w->rescore = NULL;
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

/* A handler of this worker committed stock that lines may be waiting for. */
static void worker_stock_ready(void *arg)
{
	struct server_worker *w = arg;
	replan_wake(w->replan);
}

static void worker_on_notify(const char *channel, const char *payload, void *arg)
{
	(void)payload;
	struct server_worker *w = arg;
	if (strcmp(channel, "dropship_outbox") == 0)
		dispatch_wake(w->dispatch);
	else
		replan_wake(w->replan);
}

static struct httpd *worker_httpd(struct server_worker *w, int fd, int max_conns, void (*route_fn)(void *,
                                  struct http_ctx *), char *err, size_t errlen)
{
	const struct config *cfg = &w->cfg;
	struct httpd_options ho = {
		.listen_fd = fd,
		.env = &w->env,
		.tls_ctx = server_tls_ctx,
		.tls_arg = w->srv,
		.max_head = (size_t)cfg->server.max_header_bytes,
		.max_body = (uint64_t)cfg->server.max_body_bytes,
		.read_timeout_ms = cfg->server.read_timeout_ms,
		.request_timeout_ms = cfg->server.request_timeout_ms,
		.max_conns = max_conns,
		.admit = server_admit,
		.release = server_release,
		.admit_arg = w->srv,
		.route = route_fn,
		.route_arg = w,
		.drained = worker_drained,
		.drained_arg = w,
		.id_tag = (unsigned)w->index,
	};
	return httpd_new(w->base, &ho, err, errlen);
}

static int worker_init(struct server *srv, struct server_worker *w, int index, int fd, int admin_fd,
                       char *err, size_t errlen)
{
	w->srv = srv;
	w->index = index;
	w->cfg = srv->cfg;
	const struct config *cfg = &w->cfg;
	w->base = event_base_new();
	w->stop_ev = w->base ? event_new(w->base, -1, 0, on_stop, w) : NULL;
	w->reload_ev = w->base ? event_new(w->base, -1, 0, on_reload, w) : NULL;
	if (!w->stop_ev || !w->reload_ev) {
		snprintf(err, errlen, "cannot create event loop for worker %d", index);
		if (fd >= 0)
			close(fd);
		if (admin_fd >= 0)
			close(admin_fd);
		return -1;
	}
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
		 * of a second or more for a statement of a millisecond. No parallel
		 * workers: the periodic counts (scorecard, stranded orders) would
		 * otherwise take every core for a second from the requests. */
		.setup_sql = "SELECT set_config('enable_seqscan', 'off', false),"
		             " set_config('jit', 'off', false),"
		             " set_config('max_parallel_workers_per_gather', '0', false)",
		.on_notify = worker_on_notify,
		.notify_arg = w,
		.stats = &w->pool_stats,
	};
	w->db = db_pool_new(w->base, &po);
	struct client_options co = worker_client_options(cfg);
	w->client = client_new(w->base, &co, err, errlen);
	if (!w->client) {
		close(fd);
		if (admin_fd >= 0)
			close(admin_fd);
		return -1;
	}
	w->env = (struct http_env){
		.base = w->base, .db = w->db, .client = w->client, .cfg = &w->cfg, .metrics = &w->metrics,
		.outbox_ready = worker_outbox_ready, .outbox_ready_arg = w,
		.stock_ready = worker_stock_ready, .stock_ready_arg = w,
	};
	w->intake = intake_queue_new(&w->env);
	w->callbacks = callback_queue_new(&w->env);
	struct dispatch_options dopt;
	dispatch_options_from(cfg, &dopt);
	w->dispatch = dispatch_new(w->base, w->db, w->client, w->callbacks, &w->metrics, &dopt);
	if (index == 0) /* one reader of the database's gauges is enough */
		w->backlog = backlog_new(w->base, w->db, &srv->backlog);
	w->replan = replan_new(w->base, w->db, 5000, worker_outbox_ready, w);
	if (index == 0) {
		struct rescore_options ro = {
			.window_s = cfg->score.window_s, .refresh_ms = cfg->score.refresh_ms,
			.prior = score_prior_make(cfg->score.prior_weight, cfg->score.prior_acceptance_pct,
			                          cfg->score.prior_on_time_pct),
		};
		w->rescore = rescore_new(w->base, w->db, &ro);
	}
	int cap = cfg->server.max_connections / srv->nworkers;
	w->httpd = worker_httpd(w, fd, cap > 0 ? cap : 1, route, err, errlen);
	if (!w->httpd) {
		close(fd);
		if (admin_fd >= 0)
			close(admin_fd);
		return -1;
	}
	if (admin_fd >= 0 && !(w->admin = worker_httpd(w, admin_fd, 64, route_admin, err, errlen))) {
		close(admin_fd);
		return -1;
	}
	return 0;
}

/* Concatenates the statement tables of every module the server hosts. */
static struct db_stmt_def *collect_stmts(void)
{
	const struct db_stmt_def *tables[] = { intake_stmts, plan_stmts, dispatch_stmts, callback_stmts,
	                                       replan_stmts, admin_stmts, backlog_stmts, stock_stmts, feed_stmts,
	                                       rescore_stmts };
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
	if (evthread_use_pthreads() != 0) {
		snprintf(err, errlen, "libevent: no pthreads support");
		return NULL;
	}
	struct server *srv = mem_calloc(1, sizeof *srv);
	pthread_mutex_init(&srv->lock, NULL);
	srv->cfg = *cfg;
	srv->live = *cfg;
	srv->nworkers = cfg->server.workers > 0 ? cfg->server.workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (srv->nworkers < 1)
		srv->nworkers = 1;
	srv->workers = mem_calloc((size_t)srv->nworkers, sizeof *srv->workers);
	srv->stmts = collect_stmts();
	srv->ssl = tls_server_ctx_new(cfg->server.tls_cert, cfg->server.tls_key, err, errlen);
	if (!srv->ssl)
		goto fail;
	/* Port 0 means "any": the first socket picks, the others join it. */
	int port = -1;
	if (!cfg->server.reuse_port && (port = server_claim_address(cfg, err, errlen)) < 0)
		goto fail;
	int admin_fd = -1;
	if (cfg->admin.listen[0] &&
	    (admin_fd = server_listen("[admin] listen", cfg->admin.listen, -1, 0, &srv->admin_port, err, errlen)) < 0)
		goto fail;
	for (int i = 0; i < srv->nworkers; i++) {
		int bound;
		int fd = server_listen("[server] listen", cfg->server.listen, port, 1, &bound, err, errlen);
		if (fd < 0) {
			if (admin_fd >= 0)
				close(admin_fd);
			goto fail;
		}
		port = srv->port = bound;
		if (worker_init(srv, &srv->workers[i], i, fd, i == 0 ? admin_fd : -1, err, errlen) < 0) {
			if (i > 0 && admin_fd >= 0)
				close(admin_fd);
			goto fail;
		}
	}
	return srv;
fail:
	server_free(srv);
	return NULL;
}

int server_port(const struct server *srv) { return srv->port; }
int server_admin_port(const struct server *srv) { return srv->admin_port; }

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

/* config_diff's reporter: what a reload takes and what it cannot. */
static void server_log_change(const char *section, const char *key, bool live, void *arg)
{
	(void)arg;
	if (live)
		log_info("reload: changed", "key=%s.%s", section, key);
	else
		log_warn("reload: needs a restart", "key=%s.%s", section, key);
}

int server_reload(struct server *srv, const struct config *next, char *err, size_t errlen)
{
	/* Everything that can fail is tried first: a reload is all or nothing. */
	SSL_CTX *probe = tls_client_ctx_new(next->dispatch.tls_ca_file, err, errlen);
	if (!probe)
		return -1;
	SSL_CTX_free(probe);
	SSL_CTX *ssl = tls_server_ctx_new(next->server.tls_cert, next->server.tls_key, err, errlen);
	if (!ssl)
		return -1;
	pthread_mutex_lock(&srv->lock);
	SSL_CTX *old = srv->ssl;
	srv->ssl = ssl;
	config_diff(&srv->live, next, server_log_change, NULL);
	srv->live.dispatch = next->dispatch;
	memcpy(srv->live.admin.token, next->admin.token, sizeof srv->live.admin.token);
	memcpy(srv->live.server.tls_cert, next->server.tls_cert, sizeof srv->live.server.tls_cert);
	memcpy(srv->live.server.tls_key, next->server.tls_key, sizeof srv->live.server.tls_key);
	snprintf(srv->live.server.log_level, sizeof srv->live.server.log_level, "%s", next->server.log_level);
	pthread_mutex_unlock(&srv->lock);
	/* Connections made with the old context keep their own reference. */
	SSL_CTX_free(old);
	log_set_level_name(next->server.log_level);
	for (int i = 0; i < srv->nworkers; i++)
		event_active(srv->workers[i].reload_ev, EV_READ, 0);
	log_info("reloaded", "tls_cert=%s", next->server.tls_cert);
	return 0;
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
		httpd_free(w->httpd);
		httpd_free(w->admin);
		client_free(w->client);
		db_pool_free(w->db);
		intake_queue_free(w->intake);
		callback_queue_free(w->callbacks);
		dispatch_free(w->dispatch);
		replan_free(w->replan);
		backlog_free(w->backlog);
		rescore_free(w->rescore);
		if (w->stop_ev)
			event_free(w->stop_ev);
		if (w->reload_ev)
			event_free(w->reload_ev);
		if (w->base)
			event_base_free(w->base);
	}
	for (int b = 0; b < SERVER_IP_BUCKETS; b++)
		while (srv->ips[b]) {
			struct server_ip *e = srv->ips[b];
			srv->ips[b] = e->next;
			free(e);
		}
	free(srv->workers);
	free(srv->stmts);
	SSL_CTX_free(srv->ssl);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
}

/* Sums the metrics of every worker into Prometheus text (malloc'd). */
static char *server_metrics_text(const struct server *srv)
{
	const struct metrics **ms = mem_calloc((size_t)srv->nworkers, sizeof *ms);
	struct metrics_process p = { .workers = ms, .nworkers = srv->nworkers, .backlog = &srv->backlog,
	                             .version = DROPSHIP_VERSION,
	                             .db_pool_size = (long)srv->nworkers * srv->cfg.database.pool_size };
	for (int i = 0; i < srv->nworkers; i++) {
		ms[i] = &srv->workers[i].metrics;
		p.db_in_use += atomic_load(&srv->workers[i].pool_stats.in_use);
		p.db_waiting += atomic_load(&srv->workers[i].pool_stats.waiting);
	}
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (f) {
		metrics_render(f, &p);
		fclose(f);
	}
	free(ms);
	return text;
}
