#include <stdlib.h>
#include <string.h>

#include "mem/mem.h"
#include "metrics/metrics.h"

#define METRICS_NAME(id, name) name,
static const char *const metrics_route_names[] = { METRICS_ROUTES(METRICS_NAME) };
static const char *const metrics_intake_names[] = { METRICS_INTAKE_OUTCOMES(METRICS_NAME) };
static const char *const metrics_callback_type_names[] = { METRICS_CALLBACK_TYPES(METRICS_NAME) };
static const char *const metrics_callback_outcome_names[] = { METRICS_CALLBACK_OUTCOMES(METRICS_NAME) };
static const char *const metrics_dispatch_names[] = { METRICS_DISPATCH_OUTCOMES(METRICS_NAME) };
#undef METRICS_NAME
static const char *const metrics_class_names[] = { "2xx", "4xx", "5xx" };
static const char *const metrics_group_names[] = { "orders", "callbacks" };

/* Bucket bounds of a histogram, inclusive (Prometheus' le), in the unit
 * values are observed in; shown divided by scale. */
struct metrics_layout {
	const unsigned long *bound;
	int n;                       /* bounds; bucket n is +Inf */
	double scale;
};

/* Durations in microseconds, shown in seconds: 1 ms to 10 s. */
static const unsigned long metrics_duration_bounds[] = {
	1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};
static const struct metrics_layout metrics_duration = {
	metrics_duration_bounds, sizeof metrics_duration_bounds / sizeof metrics_duration_bounds[0], 1e6,
};

/* Group sizes: at most 64 a group. */
static const unsigned long metrics_size_bounds[] = { 1, 2, 4, 8, 16, 32, 64 };
static const struct metrics_layout metrics_size = {
	metrics_size_bounds, sizeof metrics_size_bounds / sizeof metrics_size_bounds[0], 1,
};

_Static_assert(sizeof metrics_duration_bounds / sizeof metrics_duration_bounds[0] < METRICS_BUCKETS_MAX,
               "duration buckets and +Inf fit a histogram");

static void metrics_add(atomic_ulong *c, unsigned long n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static unsigned long metrics_get(const atomic_ulong *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static void metrics_observe(struct metrics_hist *h, const struct metrics_layout *l, long value)
{
	unsigned long v = value > 0 ? (unsigned long)value : 0;
	int i = 0;
	while (i < l->n && v > l->bound[i])
		i++;
	metrics_add(&h->bucket[i], 1);
	metrics_add(&h->sum, v);
}

void metrics_inc(struct metrics *m, enum metrics_counter c)
{
	metrics_add(&m->counter[c], 1);
}

static enum metrics_class metrics_class_of(int status)
{
	return status >= 500 ? METRICS_CLASS_5XX : status >= 400 ? METRICS_CLASS_4XX : METRICS_CLASS_2XX;
}

void metrics_count_status(struct metrics *m, int status)
{
	static const enum metrics_counter by_class[] = { METRICS_REQUESTS_2XX, METRICS_REQUESTS_4XX,
		                                         METRICS_REQUESTS_5XX };
	metrics_inc(m, by_class[metrics_class_of(status)]);
}

unsigned long metrics_sum(const struct metrics *const *ms, int n, enum metrics_counter c)
{
	unsigned long sum = 0;
	for (int i = 0; i < n; i++)
		sum += metrics_get(&ms[i]->counter[c]);
	return sum;
}

/* True when path is /v1/<kind>/<one segment>/<tail>. */
static int metrics_code_path(const char *path, const char *kind, const char *tail)
{
	size_t kl = strlen(kind);
	if (strncmp(path, "/v1/", 4) != 0 || strncmp(path + 4, kind, kl) != 0 || path[4 + kl] != '/')
		return 0;
	const char *code = path + 4 + kl + 1;
	const char *slash = strchr(code, '/');
	return slash && slash > code && strcmp(slash + 1, tail) == 0;
}

enum metrics_route metrics_route_of(const char *path)
{
	if (metrics_code_path(path, "stores", "webhooks"))
		return METRICS_ROUTE_WEBHOOKS;
	if (metrics_code_path(path, "suppliers", "callbacks"))
		return METRICS_ROUTE_CALLBACKS;
	if (metrics_code_path(path, "suppliers", "inventory"))
		return METRICS_ROUTE_INVENTORY;
	if (strcmp(path, "/healthz") == 0)
		return METRICS_ROUTE_HEALTHZ;
	if (strcmp(path, "/readyz") == 0)
		return METRICS_ROUTE_READYZ;
	if (strcmp(path, "/metrics") == 0)
		return METRICS_ROUTE_METRICS;
	if (strncmp(path, "/v1/admin/", 10) == 0)
		return METRICS_ROUTE_ADMIN;
	return METRICS_ROUTE_OTHER;
}

void metrics_observe_request(struct metrics *m, const char *path, int status, long duration_us)
{
	metrics_count_status(m, status);
	metrics_observe(&m->http[metrics_route_of(path)][metrics_class_of(status)], &metrics_duration, duration_us);
}

/* Copies a code into a slot's buffer, cut to fit. */
static void metrics_copy_code(char *dst, const char *src)
{
	size_t n = strnlen(src, METRICS_CODE_MAX - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Two codes alike, as a slot keeps them (cut to METRICS_CODE_MAX - 1). */
static int metrics_same_code(const char *slot, const char *code)
{
	return strncmp(slot, code, METRICS_CODE_MAX - 1) == 0;
}

void metrics_count_intake(struct metrics *m, const char *store, enum metrics_intake_outcome o)
{
	/* Only this worker writes its slots: a slot not used yet is free to take. */
	for (int i = 0; i < METRICS_STORES; i++) {
		struct metrics_store *s = &m->stores[i];
		if (!atomic_load_explicit(&s->used, memory_order_relaxed)) {
			metrics_copy_code(s->code, store);
			atomic_store_explicit(&s->used, 1, memory_order_release);
		}
		if (metrics_same_code(s->code, store)) {
			metrics_add(&s->orders[o], 1);
			return;
		}
	}
	metrics_add(&m->other_store[o], 1);
}

void metrics_count_callback(struct metrics *m, const char *type, enum metrics_callback_outcome o)
{
	if (strncmp(type, "fulfillment.", 12) == 0)
		type += 12;
	int t = 0;
	while (t < METRICS_CALLBACK_OTHER && strcmp(metrics_callback_type_names[t], type) != 0)
		t++;
	metrics_add(&m->callbacks[t][o], 1);
}

void metrics_observe_group(struct metrics *m, enum metrics_group g, long size)
{
	metrics_observe(&m->group[g], &metrics_size, size);
}

void metrics_observe_dispatch(struct metrics *m, enum metrics_dispatch_outcome o, long duration_us)
{
	metrics_add(&m->dispatch[o], 1);
	if (duration_us >= 0)
		metrics_observe(&m->dispatch_duration, &metrics_duration, duration_us);
}

void metrics_set_breaker(struct metrics *m, const char *supplier, int open)
{
	for (int i = 0; i < METRICS_SUPPLIERS; i++) {
		struct metrics_supplier *s = &m->suppliers[i];
		if (!atomic_load_explicit(&s->used, memory_order_relaxed)) {
			metrics_copy_code(s->code, supplier);
			atomic_store_explicit(&s->open, open, memory_order_relaxed);
			atomic_store_explicit(&s->used, 1, memory_order_release);
			return;
		}
		if (metrics_same_code(s->code, supplier)) {
			atomic_store_explicit(&s->open, open, memory_order_relaxed);
			return;
		}
	}
}

/* ---- the backlog gauges ---- */

/* The slot of kind, taken if new; NULL when the table is full. */
static struct metrics_kind *metrics_kind_slot(struct metrics_backlog *b, const char *kind)
{
	for (int i = 0; i < METRICS_KINDS; i++) {
		struct metrics_kind *k = &b->kinds[i];
		if (!atomic_load_explicit(&k->used, memory_order_relaxed)) {
			snprintf(k->name, sizeof k->name, "%s", kind);
			atomic_store_explicit(&k->used, 1, memory_order_release);
			return k;
		}
		if (strncmp(k->name, kind, sizeof k->name - 1) == 0)
			return k;
	}
	return NULL;
}

void metrics_backlog_init(struct metrics_backlog *b, const char *const *kinds)
{
	memset(b, 0, sizeof *b);
	atomic_store(&b->stranded_orders, -1);
	for (; kinds && *kinds; kinds++)
		metrics_kind_slot(b, *kinds);
}

void metrics_backlog_set_outbox(struct metrics_backlog *b, const char *const *kinds, const long *pending,
                                const long *oldest_ms, int n, long now_s)
{
	int seen[METRICS_KINDS] = { 0 };
	for (int i = 0; i < n; i++) {
		struct metrics_kind *k = metrics_kind_slot(b, kinds[i]);
		if (!k)
			continue;
		atomic_store_explicit(&k->pending, pending[i], memory_order_relaxed);
		atomic_store_explicit(&k->oldest_ms, oldest_ms[i], memory_order_relaxed);
		seen[k - b->kinds] = 1;
	}
	for (int i = 0; i < METRICS_KINDS; i++)
		if (!seen[i]) {
			atomic_store_explicit(&b->kinds[i].pending, 0, memory_order_relaxed);
			atomic_store_explicit(&b->kinds[i].oldest_ms, 0, memory_order_relaxed);
		}
	atomic_store_explicit(&b->updated_s, now_s, memory_order_relaxed);
}

/* ---- rendering ---- */

void metrics_write_label(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f), fputc(*s, f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void metrics_family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A histogram's buckets summed over workers. */
struct metrics_hist_total {
	unsigned long bucket[METRICS_BUCKETS_MAX];
	unsigned long sum;
};

static void metrics_hist_add(struct metrics_hist_total *t, const struct metrics_hist *h)
{
	for (int i = 0; i < METRICS_BUCKETS_MAX; i++)
		t->bucket[i] += metrics_get(&h->bucket[i]);
	t->sum += metrics_get(&h->sum);
}

/* One histogram's series; labels ("a=\"b\"", or "") go before le. The
 * count is the +Inf bucket, so the two always agree. */
static void metrics_hist_write(FILE *f, const char *name, const char *labels, const struct metrics_hist_total *t,
                               const struct metrics_layout *l)
{
	const char *comma = labels[0] ? "," : "";
	unsigned long cum = 0;
	for (int i = 0; i < l->n; i++) {
		cum += t->bucket[i];
		fprintf(f, "%s_bucket{%s%sle=\"%g\"} %lu\n", name, labels, comma, (double)l->bound[i] / l->scale, cum);
	}
	cum += t->bucket[l->n];
	fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %lu\n", name, labels, comma, cum);
	const char *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";
	if (l->scale == 1)
		fprintf(f, "%s_sum%s%s%s %lu\n", name, open, labels, close, t->sum);
	else
		fprintf(f, "%s_sum%s%s%s %.6f\n", name, open, labels, close, (double)t->sum / l->scale);
	fprintf(f, "%s_count%s%s%s %lu\n", name, open, labels, close, cum);
}

static void metrics_render_http(FILE *f, const struct metrics_process *p)
{
	static const char name[] = "dropship_http_request_duration_seconds";
	metrics_family(f, name, "histogram", "Time from a request's arrival to its answer, by route and status class.");
	for (int r = 0; r < METRICS_ROUTE_MAX; r++)
		for (int c = 0; c < METRICS_CLASS_MAX; c++) {
			struct metrics_hist_total t = { { 0 }, 0 };
			for (int w = 0; w < p->nworkers; w++)
				metrics_hist_add(&t, &p->workers[w]->http[r][c]);
			unsigned long n = 0;
			for (int i = 0; i < METRICS_BUCKETS_MAX; i++)
				n += t.bucket[i];
			if (n == 0) /* a series appears with its first request */
				continue;
			char labels[64];
			snprintf(labels, sizeof labels, "route=\"%s\",class=\"%s\"", metrics_route_names[r],
			         metrics_class_names[c]);
			metrics_hist_write(f, name, labels, &t, &metrics_duration);
		}
}

/* A store's counts, or a supplier's breaker, summed over workers. */
struct metrics_code_total {
	const char *code;
	unsigned long v[METRICS_INTAKE_MAX];
};

/* The row of code among the n of t, added when new. */
static struct metrics_code_total *metrics_code_row(struct metrics_code_total *t, size_t *n, const char *code)
{
	size_t k = 0;
	while (k < *n && strcmp(t[k].code, code) != 0)
		k++;
	if (k == *n)
		t[(*n)++].code = code;
	return &t[k];
}

static int metrics_by_code(const void *a, const void *b)
{
	return strcmp(((const struct metrics_code_total *)a)->code, ((const struct metrics_code_total *)b)->code);
}

static void metrics_render_stores(FILE *f, const struct metrics_process *p)
{
	size_t n = 0;
	struct metrics_code_total *t = mem_calloc((size_t)p->nworkers * METRICS_STORES + 1, sizeof *t);
	unsigned long other[METRICS_INTAKE_MAX] = { 0 };
	for (int w = 0; w < p->nworkers; w++) {
		const struct metrics *m = p->workers[w];
		for (int o = 0; o < METRICS_INTAKE_MAX; o++)
			other[o] += metrics_get(&m->other_store[o]);
		for (int i = 0; i < METRICS_STORES && atomic_load_explicit(&m->stores[i].used, memory_order_acquire);
		     i++) {
			struct metrics_code_total *row = metrics_code_row(t, &n, m->stores[i].code);
			for (int o = 0; o < METRICS_INTAKE_MAX; o++)
				row->v[o] += metrics_get(&m->stores[i].orders[o]);
		}
	}
	qsort(t, n, sizeof *t, metrics_by_code);
	metrics_family(f, "dropship_intake_orders_total", "counter",
	               "Storefront webhooks of known stores, by store code and outcome"
	               " (store=\"other\" past the first 64 codes a worker sees).");
	for (size_t k = 0; k <= n; k++) {
		unsigned long any = 0;
		const unsigned long *counts = k < n ? t[k].v : other;
		for (int o = 0; o < METRICS_INTAKE_MAX; o++)
			any |= counts[o];
		if (k == n && !any) /* "other" only once it has something */
			continue;
		for (int o = 0; o < METRICS_INTAKE_MAX; o++) {
			fputs("dropship_intake_orders_total{store=", f);
			metrics_write_label(f, k < n ? t[k].code : "other");
			fprintf(f, ",outcome=\"%s\"} %lu\n", metrics_intake_names[o], counts[o]);
		}
	}
	free(t);
}

static void metrics_render_breakers(FILE *f, const struct metrics_process *p)
{
	size_t n = 0;
	struct metrics_code_total *t = mem_calloc((size_t)p->nworkers * METRICS_SUPPLIERS + 1, sizeof *t);
	for (int w = 0; w < p->nworkers; w++) {
		const struct metrics_supplier *s = p->workers[w]->suppliers;
		for (int i = 0; i < METRICS_SUPPLIERS && atomic_load_explicit(&s[i].used, memory_order_acquire); i++)
			metrics_code_row(t, &n, s[i].code)->v[0] |= (unsigned long)atomic_load(&s[i].open);
	}
	qsort(t, n, sizeof *t, metrics_by_code);
	metrics_family(f, "dropship_breaker_open", "gauge",
	               "1 while a supplier's circuit breaker is open or half-open in any worker, else 0.");
	for (size_t k = 0; k < n; k++) {
		fputs("dropship_breaker_open{supplier=", f);
		metrics_write_label(f, t[k].code);
		fprintf(f, "} %lu\n", t[k].v[0]);
	}
	free(t);
}

/* One of the two outbox gauge families: a sample per kind, its pending
 * count (oldest 0) or the age of its oldest in seconds (oldest 1). */
static void metrics_render_kinds(FILE *f, const struct metrics_backlog *b, const char *name, const char *help,
                                 int oldest)
{
	metrics_family(f, name, "gauge", help);
	for (int i = 0; i < METRICS_KINDS; i++) {
		const struct metrics_kind *k = &b->kinds[i];
		if (!atomic_load_explicit(&k->used, memory_order_acquire))
			break;
		fprintf(f, "%s{kind=", name);
		metrics_write_label(f, k->name);
		if (oldest)
			fprintf(f, "} %.3f\n", (double)atomic_load(&k->oldest_ms) / 1000.0);
		else
			fprintf(f, "} %ld\n", atomic_load_explicit(&k->pending, memory_order_relaxed));
	}
}

static void metrics_render_backlog(FILE *f, const struct metrics_backlog *b)
{
	metrics_render_kinds(f, b, "dropship_outbox_pending",
	                     "Outbox messages not yet delivered nor given up, by kind (read from the database).", 0);
	metrics_render_kinds(f, b, "dropship_outbox_oldest_pending_seconds",
	                     "Age of the oldest pending outbox message, by kind; 0 when there is none.", 1);
	long stranded = atomic_load_explicit(&b->stranded_orders, memory_order_relaxed);
	metrics_family(f, "dropship_stranded_orders", "gauge",
	               "Orders with a line no supplier took, or a request whose delivery was given up"
	               " (reporting.stranded_orders); absent until first read.");
	if (stranded >= 0)
		fprintf(f, "dropship_stranded_orders %ld\n", stranded);
	metrics_family(f, "dropship_backlog_updated_timestamp_seconds", "gauge",
	               "When the outbox gauges were last read from the database (Unix time); 0 never.");
	fprintf(f, "dropship_backlog_updated_timestamp_seconds %ld\n",
	        atomic_load_explicit(&b->updated_s, memory_order_relaxed));
}

/* A counter family with one label over a fixed list of values. */
static void metrics_render_labelled(FILE *f, const char *name, const char *help, const char *label,
                                    const char *const *values, const unsigned long *counts, int n)
{
	metrics_family(f, name, "counter", help);
	for (int i = 0; i < n; i++)
		fprintf(f, "%s{%s=\"%s\"} %lu\n", name, label, values[i], counts[i]);
}

static void metrics_render_counters(FILE *f, const struct metrics_process *p)
{
	const struct metrics *const *ms = p->workers;
	int nw = p->nworkers;
	unsigned long v[METRICS_DISPATCH_MAX > 3 ? METRICS_DISPATCH_MAX : 3];
	static const char *const outcomes[] = { "created", "duplicate", "cancelled" };
	for (int i = 0; i < 3; i++)
		v[i] = metrics_sum(ms, nw, METRICS_REQUESTS_2XX + i);
	metrics_render_labelled(f, "dropship_http_requests_total", "HTTP requests answered, by status class.",
	                        "class", metrics_class_names, v, 3);
	for (int i = 0; i < 3; i++)
		v[i] = metrics_sum(ms, nw, METRICS_ORDERS_CREATED + i);
	metrics_render_labelled(f, "dropship_orders_total", "Orders taken in, by outcome.", "outcome", outcomes, v, 3);
	metrics_family(f, "dropship_db_unavailable_total", "counter",
	               "Requests answered 503 because the database was down.");
	fprintf(f, "dropship_db_unavailable_total %lu\n", metrics_sum(ms, nw, METRICS_DB_UNAVAILABLE));
	metrics_family(f, "dropship_connections_shed_total", "counter",
	               "Idle or slow connections closed at max_connections to let a new one in.");
	fprintf(f, "dropship_connections_shed_total %lu\n", metrics_sum(ms, nw, METRICS_CONN_SHED));
	metrics_family(f, "dropship_connections_refused_total", "counter",
	               "Connections refused: max_connections_per_ip, or max_connections with none to shed.");
	fprintf(f, "dropship_connections_refused_total %lu\n", metrics_sum(ms, nw, METRICS_CONN_REFUSED));
	for (int o = 0; o < METRICS_DISPATCH_MAX; o++) {
		v[o] = 0;
		for (int w = 0; w < nw; w++)
			v[o] += metrics_get(&ms[w]->dispatch[o]);
	}
	metrics_render_labelled(f, "dropship_dispatch_attempts_total",
	                        "Outbox messages claimed for sending, by outcome.", "outcome", metrics_dispatch_names,
	                        v, METRICS_DISPATCH_MAX);
}

static void metrics_render_callbacks(FILE *f, const struct metrics_process *p)
{
	metrics_family(f, "dropship_callbacks_total", "counter",
	               "Supplier callbacks (and dropshipd's own deadline and delivery-failure events) that reached"
	               " their request, by type and outcome.");
	for (int t = 0; t < METRICS_CALLBACK_TYPE_MAX; t++)
		for (int o = 0; o < METRICS_CALLBACK_OUTCOME_MAX; o++) {
			unsigned long n = 0;
			for (int w = 0; w < p->nworkers; w++)
				n += metrics_get(&p->workers[w]->callbacks[t][o]);
			fprintf(f, "dropship_callbacks_total{type=\"%s\",outcome=\"%s\"} %lu\n",
			        metrics_callback_type_names[t], metrics_callback_outcome_names[o], n);
		}
}

static void metrics_render_histograms(FILE *f, const struct metrics_process *p)
{
	metrics_family(f, "dropship_group_commit_size", "histogram",
	               "Requests per committed group transaction: orders at intake, callbacks.");
	for (int g = 0; g < METRICS_GROUP_MAX; g++) {
		struct metrics_hist_total t = { { 0 }, 0 };
		for (int w = 0; w < p->nworkers; w++)
			metrics_hist_add(&t, &p->workers[w]->group[g]);
		char labels[32];
		snprintf(labels, sizeof labels, "group=\"%s\"", metrics_group_names[g]);
		metrics_hist_write(f, "dropship_group_commit_size", labels, &t, &metrics_size);
	}
	struct metrics_hist_total t = { { 0 }, 0 };
	for (int w = 0; w < p->nworkers; w++)
		metrics_hist_add(&t, &p->workers[w]->dispatch_duration);
	metrics_family(f, "dropship_dispatch_duration_seconds", "histogram",
	               "Time of one outbound HTTPS attempt, connect to answer (or error).");
	metrics_hist_write(f, "dropship_dispatch_duration_seconds", "", &t, &metrics_duration);
}

void metrics_render(FILE *f, const struct metrics_process *p)
{
	metrics_family(f, "dropship_build_info", "gauge", "Always 1; the version of this dropshipd in a label.");
	fputs("dropship_build_info{version=", f);
	metrics_write_label(f, p->version ? p->version : "");
	fputs("} 1\n", f);
	metrics_family(f, "dropship_workers", "gauge", "Worker threads.");
	fprintf(f, "dropship_workers %d\n", p->nworkers);
	long conns = 0;
	for (int w = 0; w < p->nworkers; w++)
		conns += atomic_load_explicit(&p->workers[w]->connections, memory_order_relaxed);
	metrics_family(f, "dropship_connections", "gauge", "Open client connections.");
	fprintf(f, "dropship_connections %ld\n", conns);
	metrics_render_counters(f, p);
	metrics_render_http(f, p);
	metrics_render_stores(f, p);
	metrics_render_callbacks(f, p);
	metrics_render_histograms(f, p);
	metrics_render_breakers(f, p);
	if (p->backlog)
		metrics_render_backlog(f, p->backlog);
	metrics_family(f, "dropship_db_pool_size", "gauge", "Database connections of every worker's pool.");
	fprintf(f, "dropship_db_pool_size %ld\n", p->db_pool_size);
	metrics_family(f, "dropship_db_pool_in_use", "gauge", "Database connections leased now.");
	fprintf(f, "dropship_db_pool_in_use %ld\n", p->db_in_use);
	metrics_family(f, "dropship_db_pool_waiting", "gauge", "Requests for a database connection waiting for one.");
	fprintf(f, "dropship_db_pool_waiting %ld\n", p->db_waiting);
}
