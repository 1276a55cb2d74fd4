/* Callbacks mode of dropship-bench: the file of fulfillment requests to
 * call back on, and the body of each supplier callback
 * (POST /v1/suppliers/{code}/callbacks, docs/callbacks.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define CB_LINE_MAX 512

static const char *const cb_type_names[] = {
	[BENCH_CB_ACCEPTED] = "accepted",
	[BENCH_CB_SHIPPED] = "shipped",
	[BENCH_CB_DELIVERED] = "delivered",
};

const char *bench_cb_type_name(enum bench_cb_type t)
{
	return t < BENCH_CB_TYPE_MAX ? cb_type_names[t] : "?";
}

int bench_cb_type_parse(const char *s, enum bench_cb_type *out)
{
	for (int t = 0; t < BENCH_CB_TYPE_MAX; t++)
		if (strcmp(s, cb_type_names[t]) == 0) {
			*out = (enum bench_cb_type)t;
			return 0;
		}
	return -1;
}

/* The secret that signs CODE's callbacks: its --supplier entry, else --secret. */
static const char *cb_secret_for(const struct bench_opts *o, const char *code)
{
	for (int i = 0; i < o->nsuppliers; i++)
		if (strcmp(o->suppliers[i].code, code) == 0)
			return o->suppliers[i].secret;
	return o->secret;
}

/* Bytes of s all in set, length in [min, max]. */
static int cb_token_ok(const char *s, size_t min, size_t max, const char *set)
{
	size_t n = strlen(s);
	return n >= min && n <= max && strspn(s, set) == n;
}

#define CB_NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"

/* Reads "request_id supplier_code" from one line into cb. Returns 1 for a
 * request, 0 for a blank or # line, -1 (err filled) for a bad line. */
static int cb_parse_line(const struct bench_opts *o, char *line, struct bench_cb *cb,
                         char *err, size_t errlen)
{
	const char *ws = " \t\r\n";
	char *p = line + strspn(line, ws);
	if (*p == '\0' || *p == '#')
		return 0;
	char *id = p;
	p += strcspn(p, ws);
	char *code = p + strspn(p, ws);
	*p = '\0';
	p = code + strcspn(code, ws);
	char *rest = p + strspn(p, ws);
	*p = '\0';
	if (*code == '\0' || *rest != '\0') {
		snprintf(err, errlen, "expected two fields, request_id and supplier_code");
		return -1;
	}
	if (!cb_token_ok(id, 1, BENCH_CB_ID_MAX, "0123456789abcdefABCDEF-")) {
		snprintf(err, errlen, "request_id: expected up to %d hex digits and -", BENCH_CB_ID_MAX);
		return -1;
	}
	if (!cb_token_ok(code, 1, 64, CB_NAME_CHARS)) {
		snprintf(err, errlen, "supplier_code: expected 1-64 of A-Z a-z 0-9 _ . -");
		return -1;
	}
	const char *secret = cb_secret_for(o, code);
	if (!secret) {
		snprintf(err, errlen, "no secret for supplier %s (--secret, or --supplier CODE=SECRET)", code);
		return -1;
	}
	snprintf(cb->request_id, sizeof cb->request_id, "%s", id);
	snprintf(cb->code, sizeof cb->code, "%s", code);
	cb->secret = secret;
	return 1;
}

int bench_callbacks_load(const struct bench_opts *o, struct bench_target *t, char *err, size_t errlen)
{
	FILE *f = strcmp(o->callbacks, "-") == 0 ? stdin : fopen(o->callbacks, "r");
	if (!f) {
		snprintf(err, errlen, "--callbacks: cannot open %s", o->callbacks);
		return -1;
	}
	int rc = -1;
	char line[CB_LINE_MAX], why[160];
	size_t cap = 0;
	long lineno = 0;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "--callbacks: %s:%ld: line longer than %d bytes", o->callbacks,
			         lineno, CB_LINE_MAX - 2);
			goto out;
		}
		if (t->ncbs == cap) {
			size_t ncap = cap ? cap * 2 : 1024;
			struct bench_cb *more = realloc(t->cbs, ncap * sizeof *more);
			if (!more) {
				snprintf(err, errlen, "--callbacks: out of memory at line %ld", lineno);
				goto out;
			}
			t->cbs = more, cap = ncap;
		}
		int r = cb_parse_line(o, line, &t->cbs[t->ncbs], why, sizeof why);
		if (r < 0) {
			snprintf(err, errlen, "--callbacks: %s:%ld: %s", o->callbacks, lineno, why);
			goto out;
		}
		t->ncbs += (size_t)r;
	}
	if (ferror(f))
		snprintf(err, errlen, "--callbacks: cannot read %s", o->callbacks);
	else if (t->ncbs == 0)
		snprintf(err, errlen, "--callbacks: %s holds no request", o->callbacks);
	else
		rc = 0;
out:
	if (f != stdin)
		fclose(f);
	return rc;
}

int bench_callback_body(const struct bench_opts *o, const struct bench_cb *cb, const char *occurred_at,
                        char *body, size_t cap)
{
	const char *type = bench_cb_type_name(o->cb_type);
	int n;
	if (o->cb_type == BENCH_CB_SHIPPED) {
		/* A tracking number of the request's own digits: stable across runs. */
		char number[24];
		size_t k = 0;
		for (const char *p = cb->request_id; *p && k < 16; p++)
			if (*p != '-')
				number[k++] = *p;
		number[k] = '\0';
		n = snprintf(body, cap,
		             "{\"type\":\"fulfillment.shipped\",\"request_id\":\"%s\",\"occurred_at\":\"%s\","
		             "\"tracking\":{\"carrier\":\"BENCHPOST\",\"number\":\"BP%s\","
		             "\"url\":\"https://track.example/BP%s\"}}",
		             cb->request_id, occurred_at, number, number);
	} else {
		n = snprintf(body, cap, "{\"type\":\"fulfillment.%s\",\"request_id\":\"%s\",\"occurred_at\":\"%s\"}",
		             type, cb->request_id, occurred_at);
	}
	return n >= 0 && (size_t)n < cap ? n : -1;
}
