/* End to end: dropshipd over TLS against a real PostgreSQL, native order
 * intake. Each test states what a storefront would observe, then checks the
 * database to prove what changed (or that nothing did). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <jansson.h>

#include "support/ctl.h"
#include "support/harness.h"
#include "support/https.h"
#include "support/proc.h"
#include "support/shop.h"
#include "support/stranded.h"
#include "support/testdb.h"
#include "support/testsrv.h"
#include "support/wait.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SECRET2 "whsec_c2Vjb25kLXNlY3JldC1mb3ItdGVzdHMtMTIzNA=="
#define SECRET_UNKNOWN "whsec_dGhpcmQtc2VjcmV0LW5ldmVyLWNvbmZpZ3VyZWQhIQ=="

static char conninfo[512];
static PGconn *db;
static struct testsrv srv;

static int suite_init(void)
{
	if (testsrv_prepare_db("dropship_intake", SECRET, conninfo, sizeof conninfo) < 0)
		return -1;
	db = testdb_connect(conninfo);
	/* A store in the middle of a key rotation: both secrets are valid. */
	if (!db || ctl_rc(conninfo, "store", "add", "rot", "--secret", SECRET, "--secret", SECRET2, NULL) != 0)
		return -1;
	return testsrv_start(&srv, conninfo, NULL, 1);
}

static int suite_cleanup(void)
{
	int rc = srv.pid > 0 ? testsrv_stop(&srv, SIGTERM) : 0;
	if (db)
		PQfinish(db);
	return rc == 0 ? 0 : -1;
}

/* A detailed native order body with nitems lines SKU-1, SKU-2, ... of
 * quantity qty, each a mug at 12.50. */
static char *mug_order(const char *id, int nitems, int qty)
{
	char (*skus)[16] = calloc((size_t)nitems, sizeof *skus);
	struct shop_line *lines = calloc((size_t)nitems, sizeof *lines);
	char *text = NULL;
	if (skus && lines) {
		for (int i = 0; i < nitems; i++) {
			snprintf(skus[i], sizeof skus[i], "SKU-%d", i + 1);
			lines[i] = (struct shop_line){ skus[i], qty, "12.50", "Mug" };
		}
		text = shop_order_json(id, "US", lines, (size_t)nitems, true);
	}
	free(lines);
	free(skus);
	return text;
}

/* Posts body to store, signed now with SECRET. */
static int post_now(const char *store, const char *body, struct https_resp *r)
{
	return shop_post(srv.port, store, SECRET, (int64_t)time(NULL), body, r);
}

static long count_orders(void)
{
	return testdb_count(db, "SELECT count(*) FROM orders", 0, NULL);
}

/* The response's error code and field ("" when absent). */
static void error_of(const struct https_resp *r, char *code, size_t ccap, char *field, size_t fcap)
{
	json_t *j = json_loads(r->body ? r->body : "", 0, NULL);
	const char *c = "", *f = "";
	json_unpack(j, "{s:{s?s, s?s}}", "error", "code", &c, "field", &f);
	snprintf(code, ccap, "%s", c ? c : "");
	snprintf(field, fcap, "%s", f ? f : "");
	json_decref(j);
}

static void expect_error(const char *store, const char *secret, int64_t ts, const char *body,
                         int status, const char *code, const char *field)
{
	long before = count_orders();
	struct https_resp r;
	CU_ASSERT_EQUAL_FATAL(shop_post(srv.port, store, secret, ts, body, &r), 0);
	char c[64], f[160];
	error_of(&r, c, sizeof c, f, sizeof f);
	if (r.status != status || strcmp(c, code) != 0 || (field && strcmp(f, field) != 0))
		fprintf(stderr, "expected %d %s %s, got %d %s\n", status, code, field ? field : "",
		        r.status, r.body);
	CU_ASSERT_EQUAL(r.status, status);
	CU_ASSERT_STRING_EQUAL(c, code);
	if (field)
		CU_ASSERT_STRING_EQUAL(f, field);
	CU_ASSERT_EQUAL(count_orders(), before);
	https_resp_free(&r);
}

/* One request on a fresh connection; asserts its status. */
static void expect_status(const char *method, const char *path, const char *hdrs, const char *body,
                          int status)
{
	struct https_resp r;
	CU_ASSERT_EQUAL_FATAL(https_once(srv.port, method, path, hdrs, body, body ? strlen(body) : 0, &r), 0);
	CU_ASSERT_EQUAL(r.status, status);
	https_resp_free(&r);
}

static void test_health(void)
{
	struct https_resp r;
	expect_status("GET", "/healthz", NULL, NULL, 200);
	expect_status("GET", "/readyz", NULL, NULL, 200);
	/* Metrics live on the admin listener, not the public one. */
	CU_ASSERT_EQUAL_FATAL(https_once(srv.port, "GET", "/metrics", NULL, NULL, 0, &r), 0);
	CU_ASSERT_EQUAL(r.status, 404);
	https_resp_free(&r);
	CU_ASSERT_FATAL(srv.admin_port > 0);
	CU_ASSERT_EQUAL_FATAL(https_once(srv.admin_port, "GET", "/metrics", NULL, NULL, 0, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "dropship_http_requests_total"));
	https_resp_free(&r);
}

/* TLS 1.2 and 1.3 only; a returning client resumes its session. */
static void test_tls(void)
{
	struct https_conn c;
	CU_ASSERT_EQUAL(https_connect_resume(&c, srv.port, 5000, NULL, TLS1_1_VERSION), -1);
	for (int version = TLS1_2_VERSION; version <= TLS1_3_VERSION; version++) {
		CU_ASSERT_EQUAL_FATAL(https_connect_resume(&c, srv.port, 5000, NULL, version), 0);
		struct https_resp r;
		/* A request first: TLS 1.3 tickets arrive after the handshake. */
		CU_ASSERT_EQUAL(https_request(&c, "GET", "/healthz", NULL, NULL, 0, &r), 0);
		https_resp_free(&r);
		SSL_SESSION *sess = SSL_get1_session(c.ssl);
		CU_ASSERT_FALSE(SSL_session_reused(c.ssl));
		https_close(&c);
		CU_ASSERT_EQUAL_FATAL(https_connect_resume(&c, srv.port, 5000, sess, version), 0);
		CU_ASSERT_TRUE(SSL_session_reused(c.ssl));
		CU_ASSERT_EQUAL(SSL_version(c.ssl), version);
		https_close(&c);
		SSL_SESSION_free(sess);
	}
}

/* Writes text to a new temporary file; path (a mkstemp template) gets its name. */
static void write_conf(char *path, const char *text)
{
	int fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL((size_t)write(fd, text, strlen(text)), strlen(text));
	close(fd);
}

/* dropshipd's command line: help, version, -c required, config check with
 * file:line, and --check-config's checks beyond the file. */
static void test_command_line(void)
{
	const char *help[] = { proc_build_path("dropshipd"), "--help", NULL };
	char *out = NULL, *err = NULL;
	CU_ASSERT_EQUAL(proc_run(help, NULL, &out, NULL), 0);
	CU_ASSERT_TRUE(out && strstr(out, "--check-config"));
	free(out);
	const char *version[] = { proc_build_path("dropshipd"), "--version", NULL };
	CU_ASSERT_EQUAL(proc_run(version, NULL, &out, NULL), 0);
	CU_ASSERT_TRUE(out && strstr(out, "dropshipd "));
	free(out);

	/* Without -c nothing starts, --check-config included. */
	const char *bare[] = { proc_build_path("dropshipd"), NULL };
	CU_ASSERT_EQUAL(proc_run(bare, NULL, &out, &err), 2);
	CU_ASSERT_TRUE(err && strstr(err, "-c FILE is required") && strstr(err, "usage: dropshipd -c FILE"));
	CU_ASSERT_TRUE(out && !*out);
	free(out);
	free(err);
	const char *check_bare[] = { proc_build_path("dropshipd"), "--check-config", NULL };
	CU_ASSERT_EQUAL(proc_run(check_bare, NULL, NULL, NULL), 2);

	char path[] = "/tmp/dropship-badconf.XXXXXX";
	write_conf(path, "[server]\nlisten = 127.0.0.1:8443\n\n[database]\npool_size = many\n");
	const char *check[] = { proc_build_path("dropshipd"), "--check-config", "-c", path, NULL };
	CU_ASSERT_EQUAL(proc_run(check, NULL, NULL, &err), 1);
	CU_ASSERT_TRUE(err && strstr(err, ":5:") && strstr(err, "pool_size"));
	free(err);
	const char *start[] = { proc_build_path("dropshipd"), "-c", path, NULL };
	CU_ASSERT_EQUAL(proc_run(start, NULL, NULL, &err), 2);
	CU_ASSERT_TRUE(err && strstr(err, ":5:") && strstr(err, "pool_size"));
	free(err);
	const char *bad_flag[] = { proc_build_path("dropshipd"), "--frobnicate", NULL };
	CU_ASSERT_EQUAL(proc_run(bad_flag, NULL, NULL, NULL), 2);
	unlink(path);

	/* A file without one bad line, but certificate, key and CA file missing
	 * and a database URL libpq cannot parse: every one reported, the
	 * password of the URL in none. */
	char path2[] = "/tmp/dropship-badconf.XXXXXX";
	write_conf(path2, "[server]\nlisten = 127.0.0.1:0\n"
	                  "tls_cert = /nonexistent/dropship/server.crt\n"
	                  "tls_key = /nonexistent/dropship/server.key\n"
	                  "[database]\nurl = postgresql://app:hunter2@[::1/dropship\n"
	                  "[dispatch]\ntls_ca_file = /nonexistent/dropship/ca.pem\n"
	                  "[admin]\nlisten = 127.0.0.1:0\n");
	const char *check2[] = { proc_build_path("dropshipd"), "--check-config", "-c", path2, NULL };
	CU_ASSERT_EQUAL(proc_run(check2, NULL, &out, &err), 1);
	CU_ASSERT_TRUE(err && strstr(err, "[server] tls_cert: cannot read /nonexistent/dropship/server.crt: "
	                                  "No such file or directory\n"));
	CU_ASSERT_TRUE(err && strstr(err, "[server] tls_key: cannot read /nonexistent/dropship/server.key: "));
	CU_ASSERT_TRUE(err && strstr(err, "[dispatch] tls_ca_file: cannot read /nonexistent/dropship/ca.pem: "));
	CU_ASSERT_TRUE(err && strstr(err, "[database] url: end of string reached when looking for matching \"]\""));
	CU_ASSERT_TRUE(err && strstr(err, ": 4 errors\n"));
	CU_ASSERT_TRUE(err && !strstr(err, "hunter2"));
	CU_ASSERT_TRUE(out && !strstr(out, "configuration ok"));
	free(out);
	free(err);
	unlink(path2);

	/* The same with the test certificate and a URL that parses: valid. */
	char path3[] = "/tmp/dropship-goodconf.XXXXXX", text[1024];
	const char *tls = testsrv_tls_dir();
	snprintf(text, sizeof text, "[server]\nlisten = localhost:0\ntls_cert = %s/server.crt\n"
	                            "tls_key = %s/server.key\n[database]\nurl = postgresql://app:hunter2@[::1]/x\n"
	                            "[dispatch]\ntls_ca_file = %s/server.crt\n[admin]\nlisten = [::1]:0\n",
	         tls, tls, tls);
	write_conf(path3, text);
	const char *check3[] = { proc_build_path("dropshipd"), "--check-config", "-c", path3, NULL };
	CU_ASSERT_EQUAL(proc_run(check3, NULL, &out, &err), 0);
	char want[128];
	snprintf(want, sizeof want, "%s: configuration ok\n", path3);
	CU_ASSERT_STRING_EQUAL(out ? out : "", want);
	CU_ASSERT_STRING_EQUAL(err ? err : "", "");
	free(out);
	free(err);
	unlink(path3);
}

static void test_order_created_then_redelivered(void)
{
	char *body = mug_order("A-1", 2, 3);
	struct https_resp r;
	CU_ASSERT_EQUAL_FATAL(post_now("shop", body, &r), 0);
	CU_ASSERT_EQUAL(r.status, 202);
	json_t *j = json_loads(r.body, 0, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	const char *order_id = json_string_value(json_object_get(j, "order_id"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(order_id);
	CU_ASSERT_TRUE(json_is_false(json_object_get(j, "duplicate")));
	json_t *lines = json_object_get(j, "lines");
	CU_ASSERT_EQUAL(json_array_size(lines), 2);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(lines, 1), "sku")), "SKU-2");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_array_get(lines, 1), "line")), 2);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_array_get(lines, 0), "quantity")), 3);

	/* What was committed: the order, its lines, the raw payload, the address. */
	const char *p[] = { order_id };
	char *ext = testdb_value(db, "SELECT external_id || '|' || ship_country || '|' || currency"
	                             " || '|' || (raw->'order'->>'id') || '|' || ship_city FROM orders WHERE id = $1", 1, p);
	CU_ASSERT_STRING_EQUAL(ext ? ext : "", "A-1|US|USD|A-1|Austin");
	free(ext);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM order_lines WHERE order_id = $1 AND quantity = 3"
	                                 " AND unit_price = 12.50", 1, p), 2);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM orders WHERE id = $1 AND webhook_id LIKE 'msg_test_%'",
	                             1, p), 1);

	/* A redelivery: same order id, new delivery id and signature. */
	struct https_resp r2;
	CU_ASSERT_EQUAL_FATAL(post_now("shop", body, &r2), 0);
	CU_ASSERT_EQUAL(r2.status, 200);
	json_t *j2 = json_loads(r2.body, 0, NULL);
	CU_ASSERT_TRUE(json_is_true(json_object_get(j2, "duplicate")));
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j2, "order_id")), order_id);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(j2, "lines")), 2);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM orders WHERE external_id = 'A-1'", 0, NULL), 1);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM order_lines WHERE order_id = $1", 1, p), 2);
	json_decref(j);
	json_decref(j2);
	https_resp_free(&r);
	https_resp_free(&r2);
	free(body);
}

struct racer {
	pthread_barrier_t *start;
	const char *headers;
	const char *body;
	int status;
	char order_id[32];
};

static void *race_one(void *arg)
{
	struct racer *rc = arg;
	struct https_conn c;
	if (https_connect(&c, srv.port, 15000) < 0) {
		pthread_barrier_wait(rc->start);
		return NULL;
	}
	pthread_barrier_wait(rc->start);
	struct https_resp r;
	if (https_request(&c, "POST", "/v1/stores/shop/webhooks", rc->headers, rc->body,
	                  strlen(rc->body), &r) == 0) {
		rc->status = r.status;
		json_t *j = json_loads(r.body, 0, NULL);
		const char *id = json_string_value(json_object_get(j, "order_id"));
		snprintf(rc->order_id, sizeof rc->order_id, "%s", id ? id : "");
		json_decref(j);
	}
	https_resp_free(&r);
	https_close(&c);
	return NULL;
}

static void test_identical_deliveries_race(void)
{
	enum { N = 10 };
	char *body = mug_order("RACE-1", 1, 1);
	char hdrs[1024];
	https_webhook_headers(SECRET, "msg_race_1", (int64_t)time(NULL), body, hdrs, sizeof hdrs);
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, N);
	struct racer racers[N];
	pthread_t th[N];
	for (int i = 0; i < N; i++) {
		racers[i] = (struct racer){ .start = &start, .headers = hdrs, .body = body };
		pthread_create(&th[i], NULL, race_one, &racers[i]);
	}
	int created = 0, dup = 0;
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		created += racers[i].status == 202;
		dup += racers[i].status == 200;
		CU_ASSERT_STRING_EQUAL(racers[i].order_id, racers[0].order_id);
	}
	CU_ASSERT_EQUAL(created, 1);
	CU_ASSERT_EQUAL(dup, N - 1);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM orders WHERE external_id = 'RACE-1'", 0, NULL), 1);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM order_lines l JOIN orders o ON o.id = l.order_id"
	                                 " WHERE o.external_id = 'RACE-1'", 0, NULL), 1);
	pthread_barrier_destroy(&start);
	free(body);
}

/* A client of the group-commit test: sends its orders one after another
 * on one keep-alive connection, all clients at once. */
struct grouper {
	pthread_barrier_t *start;
	int first, count;
	int status[8];
};

static void *group_client(void *arg)
{
	struct grouper *g = arg;
	struct https_conn c;
	int ok = https_connect(&c, srv.port, 15000) == 0;
	pthread_barrier_wait(g->start);
	for (int k = 0; ok && k < g->count; k++) {
		char id[32], hdrs[1024], msg[64];
		int n = g->first + k;
		snprintf(id, sizeof id, n == 13 ? "GC-BOOM" : "GC-%02d", n);
		snprintf(msg, sizeof msg, "msg_gc_%d", n);
		char *body = mug_order(id, 2, 1);
		https_webhook_headers(SECRET, msg, (int64_t)time(NULL), body, hdrs, sizeof hdrs);
		struct https_resp r;
		if (https_request(&c, "POST", "/v1/stores/shop/webhooks", hdrs, body, strlen(body), &r) == 0)
			g->status[k] = r.status;
		https_resp_free(&r);
		free(body);
	}
	if (ok)
		https_close(&c);
	return NULL;
}

/* Concurrent orders share transactions (group commit), and an order that
 * fails inside PostgreSQL fails alone: the others of its group are stored. */
static void test_group_commit(void)
{
	enum { CLIENTS = 16, EACH = 5, N = CLIENTS * EACH };
	/* Only the database can refuse this order: a stand-in for a fault the
	 * parser cannot see. */
	CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
	        "CREATE FUNCTION gc_boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
	        "  IF NEW.external_id = 'GC-BOOM' THEN RAISE EXCEPTION 'refused by test trigger'; END IF;"
	        "  RETURN NEW; END $$", 0, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(testdb_exec(db, "CREATE TRIGGER gc_boom BEFORE INSERT ON orders"
	                                      " FOR EACH ROW EXECUTE FUNCTION gc_boom()", 0, NULL), 0);
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, CLIENTS);
	struct grouper gs[CLIENTS];
	pthread_t th[CLIENTS];
	for (int i = 0; i < CLIENTS; i++) {
		gs[i] = (struct grouper){ .start = &start, .first = i * EACH, .count = EACH };
		pthread_create(&th[i], NULL, group_client, &gs[i]);
	}
	int created = 0, boom = 0;
	for (int i = 0; i < CLIENTS; i++) {
		pthread_join(th[i], NULL);
		for (int k = 0; k < EACH; k++) {
			int n = gs[i].first + k;
			if (n == 13)
				boom = gs[i].status[k];
			else
				created += gs[i].status[k] == 202;
		}
	}
	pthread_barrier_destroy(&start);
	testdb_exec(db, "DROP TRIGGER gc_boom ON orders", 0, NULL);
	testdb_exec(db, "DROP FUNCTION gc_boom()", 0, NULL);
	CU_ASSERT_EQUAL(boom, 500);
	CU_ASSERT_EQUAL(created, N - 1);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM orders WHERE external_id LIKE 'GC-%'", 0, NULL),
	                N - 1);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM order_lines l JOIN orders o"
	                                 " ON o.store_id = l.store_id AND o.id = l.order_id"
	                                 " WHERE o.external_id LIKE 'GC-%'", 0, NULL), 2 * (N - 1));
	/* Fewer transactions than orders: some were committed together. */
	long txns = testdb_count(db, "SELECT count(DISTINCT xmin::text) FROM orders"
	                             " WHERE external_id LIKE 'GC-%'", 0, NULL);
	printf("\n    group commit: %d orders in %ld transactions\n", N - 1, txns);
	CU_ASSERT(txns > 0 && txns < N - 1);
}

static void test_signatures(void)
{
	char *body = mug_order("SIG-1", 1, 1);
	int64_t now = (int64_t)time(NULL);
	expect_error("shop", SECRET_UNKNOWN, now, body, 401, "invalid_signature", NULL);
	/* Well past the 300 s tolerance: a slow request must not bring a
	 * future timestamp back within it (the exact edge is unit-tested). */
	expect_error("shop", SECRET, (int64_t)time(NULL) - 330, body, 401, "stale_timestamp", NULL);
	expect_error("shop", SECRET, (int64_t)time(NULL) + 330, body, 401, "stale_timestamp", NULL);

	/* Tampered body: signed one thing, sent another. */
	char hdrs[1024];
	https_webhook_headers(SECRET, "msg_tamper", now, body, hdrs, sizeof hdrs);
	char *tampered = strdup(body);
	tampered[strlen(tampered) - 3] ^= 1;
	struct https_resp r;
	long before = count_orders();
	CU_ASSERT_EQUAL_FATAL(https_once(srv.port, "POST", "/v1/stores/shop/webhooks", hdrs, tampered,
	                                 strlen(tampered), &r), 0);
	CU_ASSERT_EQUAL(r.status, 401);
	https_resp_free(&r);

	/* No signature headers at all. */
	CU_ASSERT_EQUAL_FATAL(https_once(srv.port, "POST", "/v1/stores/shop/webhooks",
	                                 "Content-Type: application/json\r\n", body, strlen(body), &r), 0);
	char c[64], f[64];
	error_of(&r, c, sizeof c, f, sizeof f);
	CU_ASSERT_EQUAL(r.status, 401);
	CU_ASSERT_STRING_EQUAL(c, "missing_signature");
	https_resp_free(&r);
	CU_ASSERT_EQUAL(count_orders(), before);

	/* Key rotation: the store accepts either of its two secrets. */
	CU_ASSERT_EQUAL_FATAL(shop_post(srv.port, "rot", SECRET2, now, body, &r), 0);
	CU_ASSERT_EQUAL(r.status, 202);
	https_resp_free(&r);
	CU_ASSERT_EQUAL_FATAL(shop_post(srv.port, "rot", SECRET, now, body, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	https_resp_free(&r);
	free(tampered);
	free(body);
}

static void test_bad_requests(void)
{
	int64_t now = (int64_t)time(NULL);
	char *good = mug_order("BAD-1", 1, 1);
	expect_error("nosuchstore", SECRET, now, good, 404, "unknown_store", NULL);
	expect_error("shop", SECRET, now, "{\"type\": \"order.created\", \"order\": {", 400, "invalid_json", NULL);

	char *zero = mug_order("BAD-2", 1, 0);
	expect_error("shop", SECRET, now, zero, 422, "invalid_field", "order.items[0].quantity");
	char *big = mug_order("BAD-3", 1, 10001);
	expect_error("shop", SECRET, now, big, 422, "invalid_field", "order.items[0].quantity");
	char *many = mug_order("BAD-4", 501, 1);
	expect_error("shop", SECRET, now, many, 422, "invalid_field", "order.items");

	json_t *j = json_loads(good, 0, NULL);
	json_object_set_new(json_object_get(json_object_get(j, "order"), "shipping_address"), "country",
	                    json_string("XX"));
	char *badcountry = json_dumps(j, JSON_COMPACT);
	expect_error("shop", SECRET, now, badcountry, 422, "invalid_field", "order.shipping_address.country");
	json_object_set_new(json_object_get(j, "order"), "currency", json_string("ZZZ"));
	char *badcurrency = json_dumps(j, JSON_COMPACT);
	expect_error("shop", SECRET, now, badcurrency, 422, "invalid_field", NULL);
	json_object_set_new(json_object_get(j, "order"), "id", json_string(""));
	char *noid = json_dumps(j, JSON_COMPACT);
	expect_error("shop", SECRET, now, noid, 422, "invalid_field", "order.id");
	json_decref(j);

	/* A date the shape check lets through but the calendar does not. */
	j = json_loads(good, 0, NULL);
	json_object_set_new(json_object_get(j, "order"), "placed_at", json_string("2026-02-30T10:00:00Z"));
	char *baddate = json_dumps(j, JSON_COMPACT);
	expect_error("shop", SECRET, now, baddate, 422, "invalid_field", "order.placed_at");
	json_decref(j);

	/* Deep nesting must be refused, not crash the parser. */
	size_t depth = 200000;
	char *deep = malloc(depth + 1);
	memset(deep, '[', depth);
	deep[depth] = '\0';
	expect_error("shop", SECRET, now, deep, 400, "invalid_json", NULL);

	expect_status("POST", "/v1/stores/shop/webhooks", "Content-Type: text/plain\r\n", good, 415);
	expect_status("GET", "/v1/stores/shop/webhooks", NULL, NULL, 405);
	expect_status("GET", "/nope", NULL, NULL, 404);
	CU_ASSERT_EQUAL(testsrv_wait_status(&srv, "/healthz", 200, 1000), 1);
	free(good); free(zero); free(big); free(many); free(badcountry); free(badcurrency);
	free(noid); free(baddate); free(deep);
}

static void test_cancellation(void)
{
	char *body = mug_order("CXL-1", 2, 1);
	struct https_resp r;
	CU_ASSERT_EQUAL_FATAL(post_now("shop", body, &r), 0);
	CU_ASSERT_EQUAL(r.status, 202);
	https_resp_free(&r);
	const char *cancel = "{\"type\": \"order.cancelled\", \"order\": {\"id\": \"CXL-1\"}}";
	for (int i = 0; i < 2; i++) { /* a repeated cancellation changes nothing more */
		CU_ASSERT_EQUAL_FATAL(post_now("shop", cancel, &r), 0);
		CU_ASSERT_EQUAL(r.status, 200);
		json_t *j = json_loads(r.body, 0, NULL);
		CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "status")), "cancelled");
		json_decref(j);
		https_resp_free(&r);
	}
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM order_lines l JOIN orders o ON o.id = l.order_id"
	                                 " WHERE o.external_id = 'CXL-1' AND l.status = 'cancelled'"
	                                 " AND o.status = 'cancelled'", 0, NULL), 2);
	expect_error("shop", SECRET, (int64_t)time(NULL),
	             "{\"type\": \"order.cancelled\", \"order\": {\"id\": \"NEVER-SEEN\"}}", 404, "not_found", NULL);
	free(body);
}

static void test_limits(void)
{
	struct testsrv s;
	CU_ASSERT_EQUAL_FATAL(testsrv_start(&s, conninfo,
	        "workers = 1\nmax_body_bytes = 65536\nrequest_timeout_ms = 1500\nmax_connections = 2\n", 1), 0);

	/* A declared body over the limit is refused before it is read. */
	struct https_conn c;
	CU_ASSERT_EQUAL_FATAL(https_connect(&c, s.port, 10000), 0);
	const char *head = "POST /v1/stores/shop/webhooks HTTP/1.1\r\nHost: localhost\r\n"
	                   "Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n";
	CU_ASSERT_EQUAL(https_write(&c, head, strlen(head)), 0);
	struct https_resp r;
	CU_ASSERT_EQUAL(https_read_response(&c, &r), 0);
	CU_ASSERT_EQUAL(r.status, 413);
	https_resp_free(&r);
	https_close(&c);

	/* Oversized headers are refused. */
	size_t hl = 40000;
	char *hdr = malloc(hl + 32);
	memcpy(hdr, "X-Filler: ", 10);
	memset(hdr + 10, 'a', hl);
	memcpy(hdr + 10 + hl, "\r\n", 3);
	int rc = https_once(s.port, "GET", "/healthz", hdr, NULL, 0, &r);
	CU_ASSERT_TRUE(rc < 0 || r.status >= 400);
	https_resp_free(&r);
	free(hdr);

	/* A client dribbling its request is cut off at the request deadline
	 * (1.5 s here) although each byte comes well within the idle timeout. */
	CU_ASSERT_EQUAL_FATAL(https_connect(&c, s.port, 10000), 0);
	const char *slow = "POST /v1/stores/shop/webhooks HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	int closed = 0;
	for (size_t i = 0; i < strlen(slow) && !closed; i++) {
		if (https_write(&c, slow + i, 1) < 0)
			closed = 1;
		else
			closed = https_closed_by_peer(&c, 200);
	}
	CU_ASSERT_TRUE(closed);
	https_close(&c);

	/* Connection cap (2): a third connection is served; the oldest idle
	 * one makes room for it. */
	struct https_conn c1, c2, c3;
	CU_ASSERT_EQUAL_FATAL(https_connect(&c1, s.port, 5000), 0);
	wait_ms(50);
	CU_ASSERT_EQUAL_FATAL(https_connect(&c2, s.port, 5000), 0);
	CU_ASSERT_EQUAL_FATAL(https_connect(&c3, s.port, 5000), 0);
	CU_ASSERT_EQUAL(https_request(&c3, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	https_resp_free(&r);
	CU_ASSERT_TRUE(https_closed_by_peer(&c1, 2000));
	CU_ASSERT_EQUAL(https_request(&c2, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	https_resp_free(&r);
	https_close(&c1);
	https_close(&c2);
	https_close(&c3);
	CU_ASSERT_EQUAL(testsrv_stop(&s, SIGTERM), 0);
}

struct slow_post {
	int port;
	char *body;
	int status;
};

static void *slow_post_run(void *arg)
{
	struct slow_post *sp = arg;
	struct https_resp r;
	if (shop_post(sp->port, "shop", SECRET, (int64_t)time(NULL), sp->body, &r) == 0)
		sp->status = r.status;
	https_resp_free(&r);
	return NULL;
}

/* True while an INSERT INTO orders waits for a lock. */
static bool insert_waits_for_lock(void *arg)
{
	(void)arg;
	return testdb_count(db, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
	                        " AND query LIKE '%INSERT INTO orders%'", 0, NULL) > 0;
}

/* SIGTERM: the listener closes at once, the request in flight still gets
 * its 202 after COMMIT, then the process exits 0. */
static void test_graceful_stop(void)
{
	struct testsrv s;
	CU_ASSERT_EQUAL_FATAL(testsrv_start(&s, conninfo, "workers = 1\n", 1), 0);
	PGconn *locker = testdb_connect(conninfo);
	CU_ASSERT_EQUAL_FATAL(testdb_exec(locker, "BEGIN", 0, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(testdb_exec(locker, "LOCK TABLE orders IN SHARE MODE", 0, NULL), 0);

	struct slow_post sp = { .port = s.port, .body = mug_order("DRAIN-1", 1, 1) };
	pthread_t th;
	pthread_create(&th, NULL, slow_post_run, &sp);
	/* Wait until the insert is blocked on our lock: the request is in flight. */
	CU_ASSERT_TRUE_FATAL(wait_until(insert_waits_for_lock, NULL, 10000, 100));
	kill(s.pid, SIGTERM);
	wait_ms(300);
	struct https_conn c;
	CU_ASSERT_EQUAL(https_connect(&c, s.port, 1000), -1); /* no longer accepting */
	CU_ASSERT_EQUAL(kill(s.pid, 0), 0);                   /* but still finishing */
	CU_ASSERT_EQUAL(testdb_exec(locker, "COMMIT", 0, NULL), 0);
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(sp.status, 202);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM orders WHERE external_id = 'DRAIN-1'", 0, NULL), 1);
	CU_ASSERT_EQUAL(testsrv_stop(&s, SIGTERM), 0);
	PQfinish(locker);
	free(sp.body);
}

static int pg_ctl_cluster(const char *action)
{
	char script[512];
	snprintf(script, sizeof script, "%s/.ci/pg.sh", getenv("DROPSHIP_TEST_ROOT"));
	const char *argv[] = { "sh", script, action, getenv("DROPSHIP_TEST_PGDIR"), NULL };
	return proc_run(argv, NULL, NULL, NULL);
}

/* Posts order body arg to shop; true when it is accepted (202). */
static bool order_accepted(void *arg)
{
	struct https_resp r;
	bool ok = post_now("shop", arg, &r) == 0 && r.status == 202;
	https_resp_free(&r);
	return ok;
}

/* PostgreSQL goes away: order requests get 503 + Retry-After at once,
 * /readyz says so, and service resumes by itself when it is back. */
static void test_database_restart(void)
{
	PQfinish(db);
	db = NULL;
	CU_ASSERT_EQUAL_FATAL(pg_ctl_cluster("stop"), 0);
	char *body = mug_order("PGDOWN-1", 1, 1);
	int unavailable = 0;
	for (int i = 0; i < 3; i++) {
		struct https_resp r;
		CU_ASSERT_EQUAL_FATAL(post_now("shop", body, &r), 0);
		char ra[16];
		if (r.status == 503 && https_header(&r, "Retry-After", ra, sizeof ra))
			unavailable++;
		https_resp_free(&r);
	}
	CU_ASSERT_EQUAL(unavailable, 3);
	CU_ASSERT_TRUE(testsrv_wait_status(&srv, "/readyz", 503, 5000));
	CU_ASSERT_EQUAL_FATAL(pg_ctl_cluster("start"), 0);

	CU_ASSERT_TRUE(wait_until(order_accepted, body, 30000, 200));
	CU_ASSERT_TRUE(testsrv_wait_status(&srv, "/readyz", 200, 5000));
	db = testdb_connect(conninfo);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM orders WHERE external_id = 'PGDOWN-1'", 0, NULL), 1);
	free(body);
}

/* Last: whatever the tests above left behind is either on its way or
 * listed by reporting.stranded_orders. */
static void test_nothing_stranded_unseen(void)
{
	stranded_check(db);
}

int main(void)
{
	static const struct harness_test tests[] = {
		{ "health, readiness and metrics endpoints answer", test_health },
		{ "TLS 1.2 and 1.3 only, with session resumption", test_tls },
		{ "command line: help, version, config check", test_command_line },
		{ "an order is stored once; a redelivery is a duplicate", test_order_created_then_redelivered },
		{ "10 identical deliveries racing yield one order", test_identical_deliveries_race },
		{ "concurrent orders share commits; a failing one fails alone", test_group_commit },
		{ "bad, stale, missing signatures are refused; rotation works", test_signatures },
		{ "bad input is refused naming the field; nothing stored", test_bad_requests },
		{ "a cancellation marks the order and its lines", test_cancellation },
		{ "body, header, deadline and connection limits", test_limits },
		{ "SIGTERM finishes in-flight requests then exits 0", test_graceful_stop },
		{ "database restart: 503 while down, recovery after", test_database_restart },
		{ "no order is stuck where stranded_orders does not show it", test_nothing_stranded_unseen },
		{ NULL, NULL },
	};
	return harness_main("intake", suite_init, suite_cleanup, tests);
}
