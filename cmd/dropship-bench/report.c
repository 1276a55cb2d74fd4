/* The result of a run: a short aligned table for people, or one JSON object. */
#include <stdio.h>

#include <jansson.h>

#include "bench.h"

static const double report_pcts[] = { 50, 90, 99, 99.9 };
static const char *const report_pct_names[] = { "p50", "p90", "p99", "p99.9" };
#define REPORT_NPCTS (sizeof report_pcts / sizeof report_pcts[0])

static double report_ms(uint64_t us)
{
	return (double)us / 1000.0;
}

static uint64_t report_ok(const struct bench_result *r)
{
	uint64_t ok = 0;
	for (int s = 200; s < 300; s++)
		ok += r->status[s];
	return ok;
}

static uint64_t report_errors(const struct bench_result *r)
{
	uint64_t n = 0;
	for (int e = 0; e < BENCH_ERR_MAX; e++)
		n += r->errors[e];
	return n;
}

/* What a 2xx answer counts as: an order, or a callback. */
static const char *report_rate_name(const struct bench_opts *o)
{
	return o->callbacks ? "callbacks_per_s" : "orders_per_s";
}

static json_t *report_json(const struct bench_opts *o, const struct bench_result *r)
{
	if (o->idle > 0)
		return json_pack("{s:s, s:i, s:I, s:I, s:I, s:f}", "mode", "idle", "connections", o->idle,
		                 "established", (json_int_t)r->established, "failed", (json_int_t)r->failed,
		                 "dropped", (json_int_t)r->dropped, "held_s", r->window_s);
	uint64_t ok = report_ok(r);
	json_t *status = json_object(), *errors = json_object(), *lat = json_object();
	for (int s = 0; s < BENCH_STATUS_MAX; s++)
		if (r->status[s]) {
			char key[16];
			snprintf(key, sizeof key, "%d", s);
			json_object_set_new(status, key, json_integer((json_int_t)r->status[s]));
		}
	for (int e = 0; e < BENCH_ERR_MAX; e++)
		json_object_set_new(errors, bench_error_name((enum bench_error)e),
		                    json_integer((json_int_t)r->errors[e]));
	for (size_t i = 0; i < REPORT_NPCTS; i++)
		json_object_set_new(lat, report_pct_names[i],
		                    json_real(report_ms(hist_percentile(&r->latency, report_pcts[i]))));
	json_object_set_new(lat, "max", json_real(report_ms(r->latency.max)));
	json_object_set_new(lat, "mean", json_real(hist_mean(&r->latency) / 1000.0));
	json_t *j = json_pack("{s:s, s:i, s:i, s:o, s:f, s:f, s:I, s:I, s:f, s:o, s:o, s:I, s:I, s:o}",
	                      "mode", o->rate > 0 ? "open" : "closed", "connections", o->connections,
	                      "threads", o->threads, "rate", o->rate > 0 ? json_real(o->rate) : json_null(),
	                      "duration_s", r->window_s, "warmup_s", o->warmup_s,
	                      "requests", (json_int_t)r->latency.total, "ok", (json_int_t)ok,
	                      report_rate_name(o), r->window_s > 0 ? (double)ok / r->window_s : 0.0,
	                      "status", status, "errors", errors,
	                      "errors_total", (json_int_t)report_errors(r), "unsent", (json_int_t)r->unsent,
	                      "latency_ms", lat);
	if (j && o->callbacks)
		json_object_set_new(j, "callbacks", json_string(bench_cb_type_name(o->cb_type)));
	else if (j)
		json_object_set_new(j, "lines", json_integer(o->lines));
	return j;
}

static void report_table(const struct bench_opts *o, const struct bench_result *r)
{
	if (o->idle > 0) {
		printf("%-14s %d TLS connections held %.1f s\n", "idle", o->idle, r->window_s);
		printf("%-14s %llu\n", "established", (unsigned long long)r->established);
		printf("%-14s %llu\n", "failed", (unsigned long long)r->failed);
		printf("%-14s %llu\n", "dropped", (unsigned long long)r->dropped);
		return;
	}
	char mode[64];
	if (o->rate > 0)
		snprintf(mode, sizeof mode, "open loop at %g/s", o->rate);
	else
		snprintf(mode, sizeof mode, "closed loop");
	uint64_t ok = report_ok(r);
	char what[48];
	if (o->callbacks)
		snprintf(what, sizeof what, "fulfillment.%s callbacks", bench_cb_type_name(o->cb_type));
	else
		snprintf(what, sizeof what, "%d lines/order", o->lines);
	printf("%-14s %s, %d connections, %d thread%s, %s\n", "mode", mode, o->connections,
	       o->threads, o->threads == 1 ? "" : "s", what);
	printf("%-14s %.1f s after %.1f s warm-up\n", "measured", r->window_s, o->warmup_s);
	printf("%-14s %.1f\n", o->callbacks ? "callbacks/s" : "orders/s",
	       r->window_s > 0 ? (double)ok / r->window_s : 0.0);
	printf("%-14s %llu", "answers", (unsigned long long)r->latency.total);
	for (int s = 0; s < BENCH_STATUS_MAX; s++)
		if (r->status[s])
			printf("   %d: %llu", s, (unsigned long long)r->status[s]);
	printf("\n%-14s %llu", "errors", (unsigned long long)report_errors(r));
	for (int e = 0; e < BENCH_ERR_MAX; e++)
		if (r->errors[e])
			printf("   %s: %llu", bench_error_name((enum bench_error)e), (unsigned long long)r->errors[e]);
	printf("\n");
	if (o->rate > 0)
		printf("%-14s %llu%s\n", "unsent", (unsigned long long)r->unsent,
		       r->unsent ? "   (due but every connection busy: the rate was not reached)" : "");
	printf("%-14s", "latency ms");
	for (size_t i = 0; i < REPORT_NPCTS; i++)
		printf(" %9s", report_pct_names[i]);
	printf(" %9s\n%-14s", "max", "");
	for (size_t i = 0; i < REPORT_NPCTS; i++)
		printf(" %9.2f", report_ms(hist_percentile(&r->latency, report_pcts[i])));
	printf(" %9.2f\n", report_ms(r->latency.max));
}

void bench_report(const struct bench_opts *o, const struct bench_result *r)
{
	if (!o->json) {
		report_table(o, r);
		return;
	}
	json_t *j = report_json(o, r);
	char *text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
	if (text)
		printf("%s\n", text);
	else
		fprintf(stderr, BENCH_NAME ": out of memory writing the report\n");
	free(text);
	json_decref(j);
}
