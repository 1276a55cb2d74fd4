#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "order/order.h"

#define CATALOG_INT_DIGITS 16            /* numeric(20, 4) of the offers table */
#define CATALOG_FRAC_DIGITS 4
#define CATALOG_STOCK_MAX 2147483647L   /* offers.stock is an integer */
#define CATALOG_QUOTE_BYTES 40          /* of a value quoted in a message */

enum catalog_col {
	COL_SUPPLIER, COL_SKU, COL_SUPPLIER_SKU, COL_COST, COL_SHIPPING_COST, COL_STOCK,
	COL_LEAD_TIME_DAYS, COL_SHIPS_TO,
};

static const char *const catalog_columns[CATALOG_COLUMNS] = {
	"supplier", "sku", "supplier_sku", "cost", "shipping_cost", "stock", "lead_time_days",
	"ships_to",
};

static int catalog_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Closes the field that started at buf offset start. */
static void catalog_end_field(struct catalog_record *rec, size_t start, size_t w, size_t size)
{
	if (rec->nfields < CATALOG_COLUMNS) {
		struct catalog_field *f = &rec->f[rec->nfields];
		f->p = rec->buf + start;
		f->len = w - start;
		f->size = size;
	}
	rec->nfields++;
}

static void catalog_syntax(struct catalog_record *rec, enum catalog_syntax what)
{
	if (rec->syntax == CATALOG_SYNTAX_OK) {
		rec->syntax = what;
		rec->syntax_field = rec->nfields;
	}
}

enum catalog_next catalog_csv_next(const char *data, size_t len, int eof,
                                   struct catalog_record *rec, size_t *used)
{
	if (len == 0)
		return eof ? CATALOG_NEXT_END : CATALOG_NEXT_MORE;
	rec->nfields = 0;
	rec->lines = 0;
	rec->syntax = CATALOG_SYNTAX_OK;
	rec->syntax_field = 0;
	size_t i = 0, w = 0;
	for (;;) {
		/* One field per turn. Bytes are kept only for the fields the row has,
		 * and only while buf has room; size counts them all. */
		size_t start = w, size = 0;
		int keep = rec->nfields < CATALOG_COLUMNS;
		int quoted = i < len && data[i] == '"', closed = 0;
		i += (size_t)quoted;
		for (;;) {
			if (i >= len) {
				if (!eof)
					return CATALOG_NEXT_MORE;
				if (quoted && !closed)
					catalog_syntax(rec, CATALOG_SYNTAX_UNTERMINATED);
				catalog_end_field(rec, start, w, size);
				*used = i;
				return CATALOG_NEXT_RECORD;
			}
			char ch = data[i];
			if (quoted && !closed) {
				if (ch == '"') {
					/* A quote at the end of the data may be the first of a pair. */
					if (i + 1 >= len && !eof)
						return CATALOG_NEXT_MORE;
					if (i + 1 < len && data[i + 1] == '"') {
						i++;
					} else {
						closed = 1;
						i++;
						continue;
					}
				}
				rec->lines += ch == '\n';
			} else if (ch == ',') {
				i++;
				break;
			} else if (ch == '\n' || ch == '\r') {
				if (ch == '\r' && i + 1 >= len && !eof)
					return CATALOG_NEXT_MORE;
				size_t eol = ch == '\n' ? 1 : i + 1 < len && data[i + 1] == '\n' ? 2 : 0;
				if (eol) {
					rec->lines++;
					catalog_end_field(rec, start, w, size);
					*used = i + eol;
					return CATALOG_NEXT_RECORD;
				}
				/* A lone CR is data, as RFC 4180 has only CRLF end lines. */
			} else if (closed) {
				catalog_syntax(rec, CATALOG_SYNTAX_AFTER_QUOTE);
			} else if (ch == '"') {
				catalog_syntax(rec, CATALOG_SYNTAX_STRAY_QUOTE);
			}
			if (keep && w < CATALOG_RECORD_MAX)
				rec->buf[w++] = ch;
			size++;
			i++;
		}
		catalog_end_field(rec, start, w, size);
	}
}

size_t catalog_bom_len(const char *data, size_t len)
{
	return len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
}

int catalog_valid_code(const char *s, size_t len)
{
	if (len < 1 || len > CATALOG_CODE_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		int alnum = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || catalog_is_digit(ch);
		if (!alnum && (i == 0 || (ch != '_' && ch != '.' && ch != '-')))
			return 0;
	}
	return 1;
}

/* Length of the valid UTF-8 sequence at s[0..len), or 0 (overlong forms,
 * surrogates and code points above U+10FFFF are invalid). */
static size_t catalog_utf8_char(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];
	size_t n;
	unsigned long cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2, cp = c & 0x1F;
	else if (c >= 0xE0 && c <= 0xEF)
		n = 3, cp = c & 0x0F;
	else if (c >= 0xF0 && c <= 0xF4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

static int catalog_utf8_ok(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0, n; i < len; i += n)
		if ((n = catalog_utf8_char(u + i, len - i)) == 0)
			return 0;
	return 1;
}

void catalog_quote(const char *s, size_t len, char *out, size_t cap)
{
	int utf8 = catalog_utf8_ok(s, len);
	size_t cut = len > CATALOG_QUOTE_BYTES ? CATALOG_QUOTE_BYTES : len;
	/* Never split a character of valid text. */
	while (utf8 && cut < len && cut > 0 && (s[cut] & 0xC0) == 0x80)
		cut--;
	size_t w = 0;
	if (cap == 0)
		return;
	out[w++] = '"';
	for (size_t i = 0; i < cut && w + 5 < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			out[w++] = '\\';
			out[w++] = (char)c;
		} else if (c < 0x20 || c == 0x7F || (c >= 0x80 && !utf8)) {
			w += (size_t)snprintf(out + w, cap - w, "\\x%02X", c);
		} else {
			out[w++] = (char)c;
		}
	}
	snprintf(out + w, cap - w, "\"%s", cut < len ? "..." : "");
}

__attribute__((format(printf, 4, 5)))
static int catalog_fail(char *err, size_t errlen, size_t col, const char *fmt, ...)
{
	char name[32];
	if (col < CATALOG_COLUMNS)
		snprintf(name, sizeof name, "%s", catalog_columns[col]);
	else
		snprintf(name, sizeof name, "%zu", col + 1);
	int n = snprintf(err, errlen, "column %s: ", name);
	if (n < 0 || (size_t)n >= errlen)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* Fails with the field's value quoted, then reason. */
static int catalog_fail_value(char *err, size_t errlen, size_t col, const struct catalog_field *f,
                              const char *reason)
{
	char q[CATALOG_QUOTE_MAX];
	catalog_quote(f->p, f->len, q, sizeof q);
	if (f->len < f->size && strlen(q) >= 3 && strcmp(q + strlen(q) - 3, "...") != 0)
		snprintf(q + strlen(q), sizeof q - strlen(q), "...");
	return catalog_fail(err, errlen, col, "%s %s", q, reason);
}

static int catalog_text(const struct catalog_field *f, size_t col, size_t max, char *err,
                        size_t errlen)
{
	char why[80];
	if (f->size == 0)
		return catalog_fail(err, errlen, col, "must not be empty");
	if (f->size > max) {
		snprintf(why, sizeof why, "is longer than %zu bytes (%zu)", max, f->size);
		return catalog_fail_value(err, errlen, col, f, why);
	}
	if (memchr(f->p, '\0', f->len))
		return catalog_fail_value(err, errlen, col, f, "contains a NUL byte");
	if (!catalog_utf8_ok(f->p, f->len))
		return catalog_fail_value(err, errlen, col, f, "is not valid UTF-8");
	return 0;
}

/* A non-negative decimal that fits numeric(20, 4): [0-9]+(.[0-9]+)?, with at
 * most 16 integer digits (leading zeros aside) and 4 fractional ones
 * (trailing zeros aside, since they change nothing). *out is its canonical
 * spelling, a part of f without those zeros: "0012.50" gives "12.5". */
static int catalog_decimal(const struct catalog_field *f, size_t col, struct catalog_field *out,
                           char *err, size_t errlen)
{
	const char *p = f->p, *end = f->p + f->len;
	if (f->size == 0)
		return catalog_fail(err, errlen, col, "must not be empty");
	int negative = p < end && *p == '-';
	p += negative;
	const char *int_start = p;
	while (p < end && catalog_is_digit(*p))
		p++;
	const char *int_end = p, *frac = p, *frac_end = p;
	if (p < end && *p == '.') {
		frac = ++p;
		while (p < end && catalog_is_digit(*p))
			p++;
		frac_end = p;
		if (frac == frac_end)
			p = frac - 1;   /* "5." is not a number */
	}
	if (int_start == int_end || p != end || f->len < f->size)
		return catalog_fail_value(err, errlen, col, f, "is not a decimal number");
	if (negative)
		return catalog_fail_value(err, errlen, col, f, "is negative");
	while (int_start + 1 < int_end && *int_start == '0')
		int_start++;
	while (frac_end > frac && frac_end[-1] == '0')
		frac_end--;
	if (int_end - int_start > CATALOG_INT_DIGITS)
		return catalog_fail_value(err, errlen, col, f, "has more than 16 integer digits");
	if (frac_end - frac > CATALOG_FRAC_DIGITS)
		return catalog_fail_value(err, errlen, col, f, "has more than 4 decimal places");
	out->p = int_start;
	out->len = out->size = (size_t)((frac_end > frac ? frac_end : int_end) - int_start);
	return 0;
}

/* A whole number in 0..max; negative ones get their own reason. */
static int catalog_integer(const struct catalog_field *f, size_t col, long max, const char *range,
                           long *out, char *err, size_t errlen)
{
	const char *p = f->p, *end = f->p + f->len;
	if (f->size == 0)
		return catalog_fail(err, errlen, col, "must not be empty");
	int negative = p < end && *p == '-';
	p += negative;
	if (p == end || f->len < f->size)
		return catalog_fail_value(err, errlen, col, f, "is not a whole number");
	long v = 0;
	int big = 0;
	for (; p < end; p++) {
		if (!catalog_is_digit(*p))
			return catalog_fail_value(err, errlen, col, f, "is not a whole number");
		if (!big && v > (max - (*p - '0')) / 10)
			big = 1;
		else if (!big)
			v = v * 10 + (*p - '0');
	}
	if (big || (negative && v != 0)) {
		char why[64];
		if (range)
			snprintf(why, sizeof why, "is out of range (%s)", range);
		else if (negative)
			snprintf(why, sizeof why, "is negative");
		else
			snprintf(why, sizeof why, "is too large (at most %ld)", max);
		return catalog_fail_value(err, errlen, col, f, why);
	}
	*out = v;
	return 0;
}

static int catalog_code_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 3);
}

/* "*" or ISO 3166-1 alpha-2 codes separated by ';', any case, spaces around
 * codes ignored. Stored upper case, sorted, without repeats. */
static int catalog_ships_to(const struct catalog_field *f, struct catalog_row *row, char *err,
                            size_t errlen)
{
	const char *p = f->p, *end = f->p + f->len;
	row->nships = 0;
	while (p < end && *p == ' ')
		p++;
	while (end > p && end[-1] == ' ')
		end--;
	if (p == end)
		return catalog_fail(err, errlen, COL_SHIPS_TO, "must not be empty (* ships everywhere)");
	if (end - p == 1 && *p == '*')
		return 0;
	if (f->len < f->size)
		return catalog_fail_value(err, errlen, COL_SHIPS_TO, f, "has too many country codes");
	while (p <= end) {
		const char *sep = memchr(p, ';', (size_t)(end - p));
		const char *e = sep ? sep : end, *s = p;
		while (s < e && *s == ' ')
			s++;
		while (e > s && e[-1] == ' ')
			e--;
		struct catalog_field code = { s, (size_t)(e - s), (size_t)(e - s) };
		char up[3] = { 0, 0, 0 };
		for (size_t i = 0; i < code.len && i < 2; i++)
			up[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 'a' + 'A' : s[i]);
		if (code.len == 0)
			return catalog_fail_value(err, errlen, COL_SHIPS_TO, f,
			                          "has an empty entry (codes are separated by ';')");
		if (code.len != 2 || !order_valid_country(up))
			return catalog_fail_value(err, errlen, COL_SHIPS_TO, &code,
			                          code.len > 2 ? "is not an ISO 3166-1 alpha-2 country code "
			                                         "(codes are separated by ';')"
			                                       : "is not an ISO 3166-1 alpha-2 country code");
		if (row->nships == CATALOG_COUNTRIES_MAX)
			return catalog_fail_value(err, errlen, COL_SHIPS_TO, f, "has too many country codes");
		memcpy(row->ships_to[row->nships++], up, 3);
		if (!sep)
			break;
		p = sep + 1;
	}
	qsort(row->ships_to, row->nships, sizeof row->ships_to[0], catalog_code_cmp);
	size_t n = 0;
	for (size_t i = 0; i < row->nships; i++)
		if (n == 0 || memcmp(row->ships_to[n - 1], row->ships_to[i], 3) != 0)
			memmove(row->ships_to[n++], row->ships_to[i], 3);
	row->nships = n;
	return 0;
}

static int catalog_syntax_error(const struct catalog_record *rec, char *err, size_t errlen)
{
	static const char *const why[] = {
		[CATALOG_SYNTAX_STRAY_QUOTE] = "'\"' inside an unquoted field (quote the whole field "
		                               "and double the quotes in it)",
		[CATALOG_SYNTAX_AFTER_QUOTE] = "text after the closing quote",
		[CATALOG_SYNTAX_UNTERMINATED] = "quoted field not closed before the end of the file",
	};
	return catalog_fail(err, errlen, rec->syntax_field, "%s", why[rec->syntax]);
}

int catalog_row_parse(const struct catalog_record *rec, struct catalog_row *row,
                      char *err, size_t errlen)
{
	if (rec->syntax != CATALOG_SYNTAX_OK)
		return catalog_syntax_error(rec, err, errlen);
	if (rec->nfields == 1 && rec->f[0].size == 0)
		return 1;
	if (rec->nfields != CATALOG_COLUMNS) {
		snprintf(err, errlen, "expected %d columns, found %zu", CATALOG_COLUMNS, rec->nfields);
		return -1;
	}
	const struct catalog_field *f = rec->f;
	if (f[COL_SUPPLIER].size == 0)
		return catalog_fail(err, errlen, COL_SUPPLIER, "must not be empty");
	if (f[COL_SUPPLIER].len < f[COL_SUPPLIER].size ||
	    !catalog_valid_code(f[COL_SUPPLIER].p, f[COL_SUPPLIER].len))
		return catalog_fail_value(err, errlen, COL_SUPPLIER, &f[COL_SUPPLIER],
		                          "is not a supplier code (1-64 letters, digits, '_', '.', '-')");
	long stock, lead;
	if (catalog_text(&f[COL_SKU], COL_SKU, CATALOG_SKU_MAX, err, errlen) < 0 ||
	    catalog_text(&f[COL_SUPPLIER_SKU], COL_SUPPLIER_SKU, CATALOG_SKU_MAX, err, errlen) < 0 ||
	    catalog_decimal(&f[COL_COST], COL_COST, &row->cost, err, errlen) < 0 ||
	    (f[COL_SHIPPING_COST].size > 0 &&
	     catalog_decimal(&f[COL_SHIPPING_COST], COL_SHIPPING_COST, &row->shipping_cost, err,
	                     errlen) < 0) ||
	    catalog_integer(&f[COL_STOCK], COL_STOCK, CATALOG_STOCK_MAX, NULL, &stock, err,
	                    errlen) < 0 ||
	    catalog_integer(&f[COL_LEAD_TIME_DAYS], COL_LEAD_TIME_DAYS, CATALOG_LEAD_TIME_MAX,
	                    "0 to 365", &lead, err, errlen) < 0 ||
	    catalog_ships_to(&f[COL_SHIPS_TO], row, err, errlen) < 0)
		return -1;
	if (f[COL_SHIPPING_COST].size == 0)
		row->shipping_cost = (struct catalog_field){ "0", 1, 1 };
	row->supplier = f[COL_SUPPLIER];
	row->sku = f[COL_SKU];
	row->supplier_sku = f[COL_SUPPLIER_SKU];
	row->stock = stock;
	row->lead_time_days = (int)lead;
	return 0;
}

int catalog_header_check(const struct catalog_record *rec, char *err, size_t errlen)
{
	char q[CATALOG_QUOTE_MAX];
	if (rec->syntax == CATALOG_SYNTAX_OK && rec->nfields == CATALOG_COLUMNS) {
		size_t i = 0;
		while (i < CATALOG_COLUMNS && rec->f[i].size == strlen(catalog_columns[i]) &&
		       memcmp(rec->f[i].p, catalog_columns[i], rec->f[i].size) == 0)
			i++;
		if (i == CATALOG_COLUMNS)
			return 0;
		catalog_quote(rec->f[i].p, rec->f[i].len, q, sizeof q);
		snprintf(err, errlen, "expected header " CATALOG_HEADER "; column %zu is %s, not %s",
		         i + 1, q, catalog_columns[i]);
	} else if (rec->syntax == CATALOG_SYNTAX_OK) {
		snprintf(err, errlen, "expected header " CATALOG_HEADER "; found %zu column%s",
		         rec->nfields, rec->nfields == 1 ? "" : "s");
	} else {
		snprintf(err, errlen, "expected header " CATALOG_HEADER "; found a malformed line");
	}
	return -1;
}

/* Bounded writer for COPY text: one overflow flag instead of a check per call. */
struct catalog_out {
	char *p;
	size_t w, cap;
	int full;
};

static void catalog_put(struct catalog_out *o, const char *s, size_t n)
{
	if (o->full || n > o->cap - o->w) {
		o->full = 1;
		return;
	}
	memcpy(o->p + o->w, s, n);
	o->w += n;
}

/* COPY text escapes: backslash, and the bytes that end a field or a row. */
static void catalog_put_text(struct catalog_out *o, const struct catalog_field *f)
{
	size_t run = 0;
	for (size_t i = 0; i < f->len; i++) {
		const char *esc;
		switch (f->p[i]) {
		case '\\': esc = "\\\\"; break;
		case '\t': esc = "\\t"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		default: continue;
		}
		catalog_put(o, f->p + run, i - run);
		catalog_put(o, esc, 2);
		run = i + 1;
	}
	catalog_put(o, f->p + run, f->len - run);
	catalog_put(o, "\t", 1);
}

size_t catalog_row_copy(const struct catalog_row *row, long line, char *out, size_t cap)
{
	struct catalog_out o = { out, 0, cap, 0 };
	char num[64];
	int n = snprintf(num, sizeof num, "%ld\t", line);
	catalog_put(&o, num, (size_t)n);
	catalog_put_text(&o, &row->supplier);
	catalog_put_text(&o, &row->sku);
	catalog_put_text(&o, &row->supplier_sku);
	catalog_put_text(&o, &row->cost);
	catalog_put_text(&o, &row->shipping_cost);
	n = snprintf(num, sizeof num, "%ld\t%d\t", row->stock, row->lead_time_days);
	catalog_put(&o, num, (size_t)n);
	if (row->nships == 0) {
		catalog_put(&o, "\\N", 2);
	} else {
		/* An array literal: codes are two letters, nothing to quote. */
		catalog_put(&o, "{", 1);
		for (size_t i = 0; i < row->nships; i++) {
			catalog_put(&o, row->ships_to[i], 2);
			catalog_put(&o, i + 1 < row->nships ? "," : "}", 1);
		}
	}
	catalog_put(&o, "\n", 1);
	return o.full ? 0 : o.w;
}
