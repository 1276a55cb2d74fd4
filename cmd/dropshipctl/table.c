/* Aligned text tables, RFC 4180 CSV and JSON for the commands that print rows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl.h"

/* PostgreSQL type oids of the columns JSON shows as other than strings. */
enum {
	CTL_OID_BOOL = 16, CTL_OID_INT8 = 20, CTL_OID_INT2 = 21, CTL_OID_INT4 = 23,
	CTL_OID_JSON = 114, CTL_OID_JSONB = 3802,
};

/* Display width of UTF-8 text: code points, not bytes, so a non-ASCII SKU
 * does not push its row's columns out of line. */
static size_t ctl_width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		w += ((unsigned char)*s & 0xC0) != 0x80;
	return w;
}

static int ctl_table_grow(struct ctl_table *t)
{
	if (t->nrows < t->cap)
		return 0;
	size_t cap = t->cap ? 2 * t->cap : 16;
	char **cells = realloc(t->cells, cap * (size_t)t->ncols * sizeof *cells);
	if (!cells)
		return -1;
	t->cells = cells;
	t->cap = cap;
	return 0;
}

int ctl_table_add(struct ctl_table *t, const char *const *row)
{
	if (ctl_table_grow(t) < 0)
		return -1;
	char **dst = t->cells + t->nrows * (size_t)t->ncols;
	for (int c = 0; c < t->ncols; c++) {
		dst[c] = strdup(row[c] ? row[c] : "");
		if (!dst[c]) {
			while (c-- > 0)
				free(dst[c]);
			return -1;
		}
		/* A table cell is one line: control bytes (newlines in an error text) become spaces. */
		for (char *p = dst[c]; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = ' ';
	}
	t->nrows++;
	return 0;
}

int ctl_table_add_result(struct ctl_table *t, const PGresult *res)
{
	const char *row[CTL_TABLE_MAX_COLS];
	for (int r = 0; r < PQntuples(res); r++) {
		for (int c = 0; c < t->ncols; c++)
			row[c] = PQgetisnull(res, r, c) ? NULL : PQgetvalue(res, r, c);
		if (ctl_table_add(t, row) < 0)
			return -1;
	}
	return 0;
}

void ctl_table_print(const struct ctl_table *t, FILE *f, const char *indent)
{
	size_t width[CTL_TABLE_MAX_COLS];
	for (int c = 0; c < t->ncols; c++) {
		width[c] = ctl_width(t->head[c]);
		for (size_t r = 0; r < t->nrows; r++) {
			size_t w = ctl_width(t->cells[r * (size_t)t->ncols + c]);
			if (w > width[c])
				width[c] = w;
		}
	}
	for (size_t r = 0; r <= t->nrows; r++) {
		/* Blanks are written only before a cell that has text: no trailing blanks. */
		size_t pending = 0;
		fputs(indent, f);
		for (int c = 0; c < t->ncols; c++) {
			const char *v = r == 0 ? t->head[c] : t->cells[(r - 1) * (size_t)t->ncols + c];
			size_t pad = width[c] - ctl_width(v);
			int right = r > 0 && t->right && t->right[c];
			if (*v) {
				fprintf(f, "%*s%s", (int)(pending + (right ? pad : 0)), "", v);
				pending = right ? 0 : pad;
			} else {
				pending += pad;
			}
			if (c + 1 < t->ncols)
				pending += 2;
		}
		fputc('\n', f);
	}
}

/* RFC 4180: a field with a comma, quote, CR or LF is quoted and its quotes doubled. */
static void ctl_csv_field(FILE *f, const char *v)
{
	if (!v[strcspn(v, ",\"\r\n")]) {
		fputs(v, f);
		return;
	}
	fputc('"', f);
	for (; *v; v++) {
		if (*v == '"')
			fputc('"', f);
		fputc(*v, f);
	}
	fputc('"', f);
}

void ctl_csv_print(const PGresult *res, FILE *f, int header)
{
	int ncols = PQnfields(res);
	for (int r = header ? -1 : 0; r < PQntuples(res); r++) {
		for (int c = 0; c < ncols; c++) {
			if (c)
				fputc(',', f);
			/* NULL is an empty field, as PostgreSQL's own COPY ... CSV writes it. */
			ctl_csv_field(f, r < 0 ? PQfname(res, c) : PQgetvalue(res, r, c));
		}
		fputs("\r\n", f);
	}
}

void ctl_table_free(struct ctl_table *t)
{
	for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = t->cap = 0;
}

/* One column's value as JSON, by its type. */
static json_t *ctl_json_value(const PGresult *res, int r, int c)
{
	if (PQgetisnull(res, r, c))
		return json_null();
	const char *v = PQgetvalue(res, r, c);
	switch (PQftype(res, c)) {
	case CTL_OID_BOOL:
		return json_boolean(v[0] == 't');
	case CTL_OID_INT2:
	case CTL_OID_INT4:
	case CTL_OID_INT8:
		return json_integer(strtoll(v, NULL, 10));
	case CTL_OID_JSON:
	case CTL_OID_JSONB: {
		json_t *j = json_loads(v, JSON_DECODE_ANY, NULL);
		return j ? j : json_string(v);
	}
	default:
		return json_string(v);
	}
}

/* Row r of res as an object, a member per column not starting with '_'. */
static json_t *ctl_json_row(const PGresult *res, int r)
{
	json_t *o = json_object();
	for (int c = 0; c < PQnfields(res); c++)
		if (PQfname(res, c)[0] != '_')
			json_object_set_new(o, PQfname(res, c), ctl_json_value(res, r, c));
	return o;
}

static int ctl_json_dump(json_t *doc, FILE *f)
{
	int rc = json_dumpf(doc, f, JSON_INDENT(2)) == 0 && fputc('\n', f) != EOF ? 0 : -1;
	json_decref(doc);
	return rc;
}

int ctl_json_print(const PGresult *res, FILE *f)
{
	json_t *rows = json_array();
	for (int r = 0; r < PQntuples(res); r++)
		json_array_append_new(rows, ctl_json_row(res, r));
	return ctl_json_dump(rows, f);
}

int ctl_json_print_row(const PGresult *res, int r, FILE *f)
{
	return ctl_json_dump(ctl_json_row(res, r), f);
}

void ctl_age_text(long long secs, char *buf, size_t cap)
{
	if (secs < 0)
		secs = 0;
	if (secs < 60)
		snprintf(buf, cap, "%llds", secs);
	else if (secs < 3600)
		snprintf(buf, cap, "%lldm", secs / 60);
	else if (secs < 86400)
		snprintf(buf, cap, "%lldh%lldm", secs / 3600, secs % 3600 / 60);
	else
		snprintf(buf, cap, "%lldd%lldh", secs / 86400, secs % 86400 / 3600);
}

#define CTL_SHORT_MAX 48

/* The text a cell of format fmt shows for value v (NULL: SQL NULL). */
static const char *ctl_cell(const char *v, enum ctl_fmt fmt, char *buf, size_t cap)
{
	if (!v)
		return "";
	switch (fmt) {
	case CTL_FMT_TEXT:
		return v;
	case CTL_FMT_TIME:
		/* 2026-11-22T10:00:01.234567+00:00: the session is in UTC. */
		snprintf(buf, cap, "%.19sZ", v);
		return buf;
	case CTL_FMT_AGE:
		ctl_age_text(strtoll(v, NULL, 10), buf, cap);
		return buf;
	case CTL_FMT_DUE: {
		long long secs = strtoll(v, NULL, 10);
		char age[32];
		if (secs <= 0)
			return "due";
		ctl_age_text(secs, age, sizeof age);
		snprintf(buf, cap, "in %s", age);
		return buf;
	}
	case CTL_FMT_SHORT: {
		size_t n = CTL_SHORT_MAX - 3;
		if (strlen(v) <= CTL_SHORT_MAX)
			return v;
		/* Cut between characters, not inside one. */
		while (n > 0 && ((unsigned char)v[n] & 0xC0) == 0x80)
			n--;
		snprintf(buf, cap, "%.*s...", (int)n, v);
		return buf;
	}
	}
	return v;
}

int ctl_print_columns(const PGresult *res, const struct ctl_col *cols, int ncols, const char *indent)
{
	const char *head[CTL_TABLE_MAX_COLS], *row[CTL_TABLE_MAX_COLS];
	int right[CTL_TABLE_MAX_COLS], idx[CTL_TABLE_MAX_COLS];
	char bufs[CTL_TABLE_MAX_COLS][64];
	if (ncols > CTL_TABLE_MAX_COLS)
		ncols = CTL_TABLE_MAX_COLS;
	for (int c = 0; c < ncols; c++) {
		head[c] = cols[c].head;
		right[c] = cols[c].right;
		if ((idx[c] = PQfnumber(res, cols[c].name)) < 0)
			return ctl_fail("no column %s in the result", cols[c].name);
	}
	struct ctl_table t = { .ncols = ncols, .head = head, .right = right };
	int rc = CTL_OK;
	for (int r = 0; rc == CTL_OK && r < PQntuples(res); r++) {
		for (int c = 0; c < ncols; c++)
			row[c] = ctl_cell(PQgetisnull(res, r, idx[c]) ? NULL : PQgetvalue(res, r, idx[c]),
			                  cols[c].fmt, bufs[c], sizeof bufs[c]);
		if (ctl_table_add(&t, row) < 0)
			rc = ctl_fail("out of memory");
	}
	if (rc == CTL_OK)
		ctl_table_print(&t, stdout, indent);
	ctl_table_free(&t);
	return rc;
}

int ctl_print_list(const PGresult *res, int json, const struct ctl_col *cols, int ncols,
                   const char *empty)
{
	if (json)
		return ctl_json_print(res, stdout) == 0 ? CTL_OK : ctl_fail("cannot write the output");
	if (PQntuples(res) == 0) {
		puts(empty);
		return CTL_OK;
	}
	return ctl_print_columns(res, cols, ncols, "");
}
