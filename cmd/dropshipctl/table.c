/* Aligned text tables and RFC 4180 CSV for the commands that print rows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

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
