/* metrics: the Prometheus text of histograms, labels and sums over
 * workers, checked line by line, and the text's grammar checked whole. */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"
#include "support/harness.h"

/* Two workers' metrics, zeroed (as the server's calloc leaves them). */
static struct metrics *workers[2];
static struct metrics_backlog backlog;

static void reset(void)
{
	for (int i = 0; i < 2; i++) {
		free(workers[i]);
		workers[i] = calloc(1, sizeof *workers[i]);
		CU_ASSERT_PTR_NOT_NULL_FATAL(workers[i]);
	}
	static const char *const kinds[] = { "fulfillment.requested", "order.shipped", NULL };
	metrics_backlog_init(&backlog, kinds);
}

/* The text of n workers (malloc'd). */
static char *render(int n)
{
	const struct metrics *ms[2] = { workers[0], workers[1] };
	struct metrics_process p = { .workers = ms, .nworkers = n, .backlog = &backlog, .version = "1.2.3",
	                             .db_pool_size = 8, .db_in_use = 3, .db_waiting = 1 };
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	metrics_render(f, &p);
	fclose(f);
	return text;
}

/* True when text has this whole line. */
static int has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
	return 0;
}

#define CHECK_LINE(text, line) HARNESS_CHECK(has_line(text, line), "missing line: %s", line)
#define CHECK_NO_LINE(text, line) HARNESS_CHECK(!has_line(text, line), "unexpected line: %s", line)

static void test_routes(void)
{
	static const struct { const char *path, *route; } cases[] = {
		{ "/v1/stores/demo/webhooks", "webhooks" },
		{ "/v1/stores/a.b-c_1/webhooks", "webhooks" },
		{ "/v1/stores//webhooks", "other" },          /* no code */
		{ "/v1/stores/demo/webhooks/x", "other" },
		{ "/v1/stores/demo", "other" },
		{ "/v1/suppliers/acme/callbacks", "callbacks" },
		{ "/v1/suppliers/acme/inventory", "inventory" },
		{ "/v1/suppliers/acme/webhooks", "other" },
		{ "/healthz", "healthz" },
		{ "/healthz/", "other" },
		{ "/readyz", "readyz" },
		{ "/metrics", "metrics" },
		{ "/v1/admin/orders/12", "admin" },
		{ "/v1/admin", "other" },
		{ "-", "other" },                             /* a request that could not be read */
		{ "", "other" },
	};
	static const char *const names[] = { "webhooks", "callbacks", "inventory", "healthz", "readyz", "metrics",
		                             "admin", "other" };
	CU_ASSERT_EQUAL_FATAL(sizeof names / sizeof names[0], METRICS_ROUTE_MAX);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum metrics_route r = metrics_route_of(cases[i].path);
		HARNESS_CHECK(strcmp(names[r], cases[i].route) == 0, "%s: route %s, want %s", cases[i].path, names[r],
		              cases[i].route);
	}
}

/* Buckets are cumulative and inclusive (le), +Inf equals _count, the sum
 * is in seconds. */
static void test_histogram_text(void)
{
	reset();
	metrics_observe_dispatch(workers[0], METRICS_DISPATCH_DELIVERED, 500);      /* 0.0005 s */
	metrics_observe_dispatch(workers[0], METRICS_DISPATCH_DELIVERED, 1000);     /* on the 0.001 bound */
	metrics_observe_dispatch(workers[1], METRICS_DISPATCH_RETRY, 3000);
	metrics_observe_dispatch(workers[1], METRICS_DISPATCH_RETRY, 20000000);     /* past 10 s */
	metrics_observe_dispatch(workers[1], METRICS_DISPATCH_BREAKER_OPEN, -1);    /* nothing sent */
	char *t = render(2);
	static const char *const want[] = {
		("# HELP dropship_dispatch_duration_seconds Time of one outbound HTTPS attempt, connect to answer"
		 " (or error)."),
		"# TYPE dropship_dispatch_duration_seconds histogram",
		"dropship_dispatch_duration_seconds_bucket{le=\"0.001\"} 2",
		"dropship_dispatch_duration_seconds_bucket{le=\"0.0025\"} 2",
		"dropship_dispatch_duration_seconds_bucket{le=\"0.005\"} 3",
		"dropship_dispatch_duration_seconds_bucket{le=\"0.01\"} 3",
		"dropship_dispatch_duration_seconds_bucket{le=\"5\"} 3",
		"dropship_dispatch_duration_seconds_bucket{le=\"10\"} 3",
		"dropship_dispatch_duration_seconds_bucket{le=\"+Inf\"} 4",
		"dropship_dispatch_duration_seconds_sum 20.004500",
		"dropship_dispatch_duration_seconds_count 4",
		"dropship_dispatch_attempts_total{outcome=\"delivered\"} 2",
		"dropship_dispatch_attempts_total{outcome=\"retry\"} 2",
		"dropship_dispatch_attempts_total{outcome=\"failed\"} 0",
		"dropship_dispatch_attempts_total{outcome=\"breaker_open\"} 1",
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		CHECK_LINE(t, want[i]);
	/* The buckets come in order, after HELP and TYPE. */
	const char *help = strstr(t, "# HELP dropship_dispatch_duration_seconds ");
	const char *b1 = strstr(t, "dropship_dispatch_duration_seconds_bucket{le=\"0.001\"}");
	const char *inf = strstr(t, "dropship_dispatch_duration_seconds_bucket{le=\"+Inf\"}");
	const char *count = strstr(t, "dropship_dispatch_duration_seconds_count");
	CU_ASSERT_TRUE(help && b1 && inf && count && help < b1 && b1 < inf && inf < count);
	free(t);
}

/* A labelled histogram: its labels before le, and on _sum and _count. */
static void test_labelled_histogram(void)
{
	reset();
	metrics_observe_request(workers[0], "/v1/stores/demo/webhooks", 202, 1800);
	metrics_observe_request(workers[1], "/v1/stores/other/webhooks", 503, 40);
	metrics_observe_request(workers[1], "/nope", 404, 100);
	metrics_observe_group(workers[0], METRICS_GROUP_ORDERS, 1);
	metrics_observe_group(workers[1], METRICS_GROUP_ORDERS, 5);
	metrics_observe_group(workers[1], METRICS_GROUP_ORDERS, 64);
	char *t = render(2);
	CHECK_LINE(t, "dropship_http_request_duration_seconds_bucket{route=\"webhooks\",class=\"2xx\",le=\"0.001\"} 0");
	CHECK_LINE(t, "dropship_http_request_duration_seconds_bucket{route=\"webhooks\",class=\"2xx\",le=\"0.0025\"} 1");
	CHECK_LINE(t, "dropship_http_request_duration_seconds_sum{route=\"webhooks\",class=\"2xx\"} 0.001800");
	CHECK_LINE(t, "dropship_http_request_duration_seconds_count{route=\"webhooks\",class=\"2xx\"} 1");
	CHECK_LINE(t, "dropship_http_request_duration_seconds_count{route=\"webhooks\",class=\"5xx\"} 1");
	CHECK_LINE(t, "dropship_http_request_duration_seconds_count{route=\"other\",class=\"4xx\"} 1");
	/* series appear with their first request */
	CU_ASSERT_PTR_NULL(strstr(t, "route=\"callbacks\""));
	CHECK_LINE(t, "dropship_http_requests_total{class=\"2xx\"} 1");
	CHECK_LINE(t, "dropship_http_requests_total{class=\"4xx\"} 1");
	CHECK_LINE(t, "dropship_http_requests_total{class=\"5xx\"} 1");
	CHECK_LINE(t, "dropship_group_commit_size_bucket{group=\"orders\",le=\"1\"} 1");
	CHECK_LINE(t, "dropship_group_commit_size_bucket{group=\"orders\",le=\"4\"} 1");
	CHECK_LINE(t, "dropship_group_commit_size_bucket{group=\"orders\",le=\"8\"} 2");
	CHECK_LINE(t, "dropship_group_commit_size_bucket{group=\"orders\",le=\"64\"} 3");
	CHECK_LINE(t, "dropship_group_commit_size_bucket{group=\"orders\",le=\"+Inf\"} 3");
	CHECK_LINE(t, "dropship_group_commit_size_sum{group=\"orders\"} 70");
	CHECK_LINE(t, "dropship_group_commit_size_count{group=\"callbacks\"} 0");
	free(t);
}

/* Store codes: summed over workers, sorted, escaped; past the table's
 * size a worker counts under "other". */
static void test_store_labels(void)
{
	reset();
	metrics_count_intake(workers[1], "zeta", METRICS_INTAKE_CREATED);
	metrics_count_intake(workers[0], "alpha", METRICS_INTAKE_CREATED);
	metrics_count_intake(workers[1], "alpha", METRICS_INTAKE_CREATED);
	metrics_count_intake(workers[1], "alpha", METRICS_INTAKE_REJECTED);
	metrics_count_intake(workers[0], "q\"uo\\te\nx", METRICS_INTAKE_IGNORED);
	char *t = render(2);
	CHECK_LINE(t, "dropship_intake_orders_total{store=\"alpha\",outcome=\"created\"} 2");
	CHECK_LINE(t, "dropship_intake_orders_total{store=\"alpha\",outcome=\"rejected\"} 1");
	CHECK_LINE(t, "dropship_intake_orders_total{store=\"alpha\",outcome=\"error\"} 0");
	CHECK_LINE(t, "dropship_intake_orders_total{store=\"zeta\",outcome=\"created\"} 1");
	CHECK_LINE(t, "dropship_intake_orders_total{store=\"q\\\"uo\\\\te\\nx\",outcome=\"ignored\"} 1");
	CU_ASSERT_PTR_NULL(strstr(t, "{store=\"other\"")); /* nothing overflowed */
	const char *a = strstr(t, "store=\"alpha\""), *z = strstr(t, "store=\"zeta\"");
	CU_ASSERT_TRUE(a && z && a < z);
	free(t);

	reset();
	char code[16];
	for (int i = 0; i < METRICS_STORES + 3; i++) {
		snprintf(code, sizeof code, "s%03d", i);
		metrics_count_intake(workers[0], code, METRICS_INTAKE_CREATED);
	}
	metrics_count_intake(workers[0], "s000", METRICS_INTAKE_DUPLICATE); /* one it has stays its own */
	t = render(1);
	CHECK_LINE(t, "dropship_intake_orders_total{store=\"s000\",outcome=\"duplicate\"} 1");
	snprintf(code, sizeof code, "s%03d", METRICS_STORES - 1);
	char line[128];
	snprintf(line, sizeof line, "dropship_intake_orders_total{store=\"%s\",outcome=\"created\"} 1", code);
	CHECK_LINE(t, line);
	CHECK_LINE(t, "dropship_intake_orders_total{store=\"other\",outcome=\"created\"} 3");
	snprintf(code, sizeof code, "s%03d", METRICS_STORES);
	CU_ASSERT_PTR_NULL(strstr(t, code));
	free(t);
}

/* A breaker shows open when it is open in any worker. */
static void test_breakers(void)
{
	reset();
	metrics_set_breaker(workers[0], "acme", 0);
	metrics_set_breaker(workers[1], "acme", 1);
	metrics_set_breaker(workers[0], "bolt", 1);
	metrics_set_breaker(workers[0], "bolt", 0);
	char *t = render(2);
	CHECK_LINE(t, "# TYPE dropship_breaker_open gauge");
	CHECK_LINE(t, "dropship_breaker_open{supplier=\"acme\"} 1");
	CHECK_LINE(t, "dropship_breaker_open{supplier=\"bolt\"} 0");
	free(t);
}

static void test_callbacks(void)
{
	reset();
	metrics_count_callback(workers[0], "fulfillment.shipped", METRICS_CALLBACK_OUT_APPLIED);
	metrics_count_callback(workers[1], "shipped", METRICS_CALLBACK_OUT_APPLIED);
	metrics_count_callback(workers[1], "accepted", METRICS_CALLBACK_OUT_DUPLICATE);
	metrics_count_callback(workers[1], "fulfillment.teleported", METRICS_CALLBACK_OUT_REFUSED);
	char *t = render(2);
	CHECK_LINE(t, "dropship_callbacks_total{type=\"shipped\",outcome=\"applied\"} 2");
	CHECK_LINE(t, "dropship_callbacks_total{type=\"accepted\",outcome=\"duplicate\"} 1");
	CHECK_LINE(t, "dropship_callbacks_total{type=\"other\",outcome=\"refused\"} 1");
	CHECK_LINE(t, "dropship_callbacks_total{type=\"failed\",outcome=\"error\"} 0");
	free(t);
}

/* Kinds known from the start show 0; a read sets the kinds it found and
 * puts the others back to 0; stranded orders are absent until read. */
static void test_backlog(void)
{
	reset();
	char *t = render(1);
	CHECK_LINE(t, "dropship_outbox_pending{kind=\"fulfillment.requested\"} 0");
	CHECK_LINE(t, "dropship_outbox_oldest_pending_seconds{kind=\"order.shipped\"} 0.000");
	CHECK_LINE(t, "# TYPE dropship_stranded_orders gauge");
	CU_ASSERT_PTR_NULL(strstr(t, "\ndropship_stranded_orders "));
	CHECK_LINE(t, "dropship_backlog_updated_timestamp_seconds 0");
	free(t);

	const char *kinds[] = { "order.shipped", "order.delivered" };
	long pending[] = { 7, 2 }, oldest[] = { 61500, 10 };
	metrics_backlog_set_outbox(&backlog, kinds, pending, oldest, 2, 1700000000);
	atomic_store(&backlog.stranded_orders, 4);
	t = render(1);
	CHECK_LINE(t, "dropship_outbox_pending{kind=\"order.shipped\"} 7");
	CHECK_LINE(t, "dropship_outbox_pending{kind=\"order.delivered\"} 2");
	CHECK_LINE(t, "dropship_outbox_oldest_pending_seconds{kind=\"order.shipped\"} 61.500");
	CHECK_LINE(t, "dropship_outbox_pending{kind=\"fulfillment.requested\"} 0");
	CHECK_LINE(t, "dropship_stranded_orders 4");
	CHECK_LINE(t, "dropship_backlog_updated_timestamp_seconds 1700000000");
	free(t);

	metrics_backlog_set_outbox(&backlog, kinds, pending, oldest, 0, 1700000005);
	t = render(1);
	CHECK_LINE(t, "dropship_outbox_pending{kind=\"order.shipped\"} 0");
	CHECK_LINE(t, "dropship_outbox_oldest_pending_seconds{kind=\"order.shipped\"} 0.000");
	CHECK_LINE(t, "dropship_outbox_pending{kind=\"order.delivered\"} 0");
	free(t);
}

/* The whole text against the format's grammar: every family has HELP then
 * TYPE once, before its samples; every sample belongs to the family last
 * typed (histograms: _bucket, _sum, _count) and reads name{labels} value. */
static void test_grammar(void)
{
	reset();
	metrics_observe_request(workers[0], "/v1/suppliers/acme/callbacks", 200, 900);
	metrics_count_intake(workers[0], "shop", METRICS_INTAKE_CREATED);
	metrics_set_breaker(workers[0], "acme", 1);
	metrics_inc(workers[1], METRICS_CONN_SHED);
	char *t = render(2);
	regex_t sample;
	CU_ASSERT_FATAL(regcomp(&sample,
	                        "^([a-z_]+)(\\{([a-z_]+=\"([^\"\\\\]|\\\\.)*\",?)+\\})? (-?[0-9]+(\\.[0-9]+)?|\\+Inf)$",
	                        REG_EXTENDED) == 0);
	char family[128] = "", type[32] = "", helped[128] = "";
	static char typed[64][128]; /* families seen */
	int lines = 0, families = 0;
	char *save = NULL;
	for (char *line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save), lines++) {
		char name[128];
		if (sscanf(line, "# HELP %127s", name) == 1) {
			snprintf(helped, sizeof helped, "%s", name);
			continue;
		}
		if (sscanf(line, "# TYPE %127s %31s", family, type) == 2) {
			HARNESS_CHECK(strcmp(helped, family) == 0, "TYPE %s without HELP right before", family);
			for (int i = 0; i < families; i++)
				HARNESS_CHECK(strcmp(typed[i], family) != 0, "family %s typed twice", family);
			CU_ASSERT_FATAL(families < 64);
			snprintf(typed[families++], sizeof typed[0], "%s", family);
			continue;
		}
		regmatch_t m[2];
		HARNESS_CHECK(regexec(&sample, line, 2, m, 0) == 0, "not a sample line: %s", line);
		size_t n = (size_t)(m[1].rm_eo - m[1].rm_so);
		snprintf(name, sizeof name, "%.*s", (int)n, line);
		int ok = strcmp(name, family) == 0;
		if (strcmp(type, "histogram") == 0)
			for (const char *suffix = "_bucket\0_sum\0_count\0"; *suffix && !ok; suffix += strlen(suffix) + 1)
				ok = strncmp(name, family, strlen(family)) == 0 && strcmp(name + strlen(family), suffix) == 0;
		HARNESS_CHECK(ok, "sample %s outside its family (%s)", name, family);
	}
	CU_ASSERT_TRUE(families >= 20);
	CU_ASSERT_TRUE(lines > families * 2);
	regfree(&sample);
	free(t);
}

static void test_process_gauges(void)
{
	reset();
	atomic_store(&workers[0]->connections, 3);
	atomic_store(&workers[1]->connections, 2);
	metrics_inc(workers[0], METRICS_CONN_REFUSED);
	char *t = render(2);
	CHECK_LINE(t, "dropship_build_info{version=\"1.2.3\"} 1");
	CHECK_LINE(t, "dropship_workers 2");
	CHECK_LINE(t, "dropship_connections 5");
	CHECK_LINE(t, "dropship_connections_refused_total 1");
	CHECK_LINE(t, "dropship_connections_shed_total 0");
	CHECK_LINE(t, "dropship_db_pool_size 8");
	CHECK_LINE(t, "dropship_db_pool_in_use 3");
	CHECK_LINE(t, "dropship_db_pool_waiting 1");
	CHECK_NO_LINE(t, "dropship_connections 0");
	free(t);
}

static int cleanup(void)
{
	for (int i = 0; i < 2; i++)
		free(workers[i]);
	return 0;
}

static const struct harness_test tests[] = {
	{ "request paths map to a fixed set of routes", test_routes },
	{ "a histogram's text: cumulative inclusive buckets, +Inf, sum, count", test_histogram_text },
	{ "labelled histograms and request counts", test_labelled_histogram },
	{ "store codes: summed, sorted, escaped, bounded by other", test_store_labels },
	{ "breakers: open in any worker shows open", test_breakers },
	{ "callbacks by type and outcome", test_callbacks },
	{ "outbox and stranded gauges", test_backlog },
	{ "the text follows the exposition format", test_grammar },
	{ "build info, workers, connections, pool", test_process_gauges },
	{ NULL, NULL },
};

int main(void)
{
	return harness_main("metrics", NULL, cleanup, tests);
}
