/* catalog: the offer CSV of `dropshipctl catalog import` (docs/cli.md,
 * catalog import). Pure: splits RFC 4180 records off a buffer, validates one row into
 * typed values, and writes a valid row as a line of COPY text. No I/O and
 * no allocation; the caller reads the file and talks to PostgreSQL. */
#ifndef DROPSHIP_CATALOG_H
#define DROPSHIP_CATALOG_H
#include <stddef.h>

#define CATALOG_HEADER \
	"supplier,sku,supplier_sku,cost,shipping_cost,stock,lead_time_days,ships_to"
#define CATALOG_COLUMNS 8
#define CATALOG_CODE_MAX 64        /* supplier and store codes */
#define CATALOG_SKU_MAX 128        /* bytes, like offers.sku and order SKUs */
#define CATALOG_LEAD_TIME_MAX 365
#define CATALOG_COUNTRIES_MAX 249  /* ISO 3166-1 alpha-2 codes in use */
/* Decoded bytes of one record kept: far above a valid row, so a field cut
 * short is always too long for its column. */
#define CATALOG_RECORD_MAX 8192
/* Room for one row in COPY text, escapes and line number included. */
#define CATALOG_COPY_MAX 4096
/* A value quoted in a message: 40 bytes of it at most, escaped, plus "...". */
#define CATALOG_QUOTE_MAX 176
#define CATALOG_ERR_MAX 320

/* What kept a record from being well-formed CSV. */
enum catalog_syntax {
	CATALOG_SYNTAX_OK = 0,
	CATALOG_SYNTAX_STRAY_QUOTE,    /* '"' inside an unquoted field */
	CATALOG_SYNTAX_AFTER_QUOTE,    /* text between a closing quote and the next ',' */
	CATALOG_SYNTAX_UNTERMINATED,   /* the file ended inside a quoted field */
};

/* One field: bytes kept in the record, and its real decoded size. */
struct catalog_field {
	const char *p;                 /* points into the record's buf */
	size_t len;                    /* bytes at p (less than size when cut short) */
	size_t size;                   /* decoded size in the file */
};

/* One CSV record. Reused from record to record: no allocation. */
struct catalog_record {
	size_t nfields;                /* fields in the record, even beyond those kept */
	struct catalog_field f[CATALOG_COLUMNS]; /* the first CATALOG_COLUMNS fields */
	unsigned long lines;           /* line breaks consumed, the terminator included */
	enum catalog_syntax syntax;    /* first syntax error of the record */
	size_t syntax_field;           /* 0-based field of that error */
	char buf[CATALOG_RECORD_MAX];
};

enum catalog_next {
	CATALOG_NEXT_RECORD,           /* rec holds a record; *used bytes consumed */
	CATALOG_NEXT_MORE,             /* the record goes on past len: read more, call again */
	CATALOG_NEXT_END,              /* len == 0 at end of input */
};

/* Splits the record at the front of data[0..len) into rec. Records end with
 * LF or CRLF (the CR is dropped); quoted fields may hold ',', '"' doubled
 * and line breaks. At eof the last record needs no terminator, and a quoted
 * field still open ends it with CATALOG_SYNTAX_UNTERMINATED. Syntax errors
 * do not stop the split, so the next record starts where it should. */
enum catalog_next catalog_csv_next(const char *data, size_t len, int eof,
                                   struct catalog_record *rec, size_t *used);

/* Bytes of a UTF-8 byte order mark at the front of data (3 or 0). */
size_t catalog_bom_len(const char *data, size_t len);

/* Checks the header record against CATALOG_HEADER. Returns 0, or -1 with
 * "expected header ...; found ..." in err. */
int catalog_header_check(const struct catalog_record *rec, char *err, size_t errlen);

/* A validated row. Texts point into the record it came from. */
struct catalog_row {
	struct catalog_field supplier, sku, supplier_sku;
	struct catalog_field cost, shipping_cost;  /* canonical decimal text ("12.5", not
	                                            * "012.50"); shipping_cost "0" when empty */
	long stock;
	int lead_time_days;
	size_t nships;                 /* 0: ships everywhere ("*") */
	char ships_to[CATALOG_COUNTRIES_MAX][3]; /* upper case, sorted, no repeats */
};

/* Validates a record as a row. Returns 0 with row filled, 1 for a blank
 * line (to be skipped), or -1 with "column NAME: \"VALUE\" reason" (or a
 * column count) in err. */
int catalog_row_parse(const struct catalog_record *rec, struct catalog_row *row,
                      char *err, size_t errlen);

/* Writes row as one line of COPY text format (columns: line, supplier, sku,
 * supplier_sku, cost, shipping_cost, stock, lead_time_days, ships_to; "*"
 * as \N). Returns the bytes written, or 0 when cap is too small (never
 * with CATALOG_COPY_MAX). */
size_t catalog_row_copy(const struct catalog_row *row, long line, char *out, size_t cap);

/* True when s[0..len) is a supplier (or store) code: 1-64 letters, digits,
 * '_', '.', '-', starting with a letter or digit, as the tables' CHECK. */
int catalog_valid_code(const char *s, size_t len);

/* Writes s[0..len) into out for a message: in double quotes, cut after 40
 * bytes with "...", control bytes, quotes and invalid UTF-8 escaped. */
void catalog_quote(const char *s, size_t len, char *out, size_t cap);

#endif
