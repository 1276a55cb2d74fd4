/* dropshipctl catalog import: streams a CSV of offers through COPY into a
 * staging table, checks what needs the database (suppliers, repeats),
 * creates the new offers and applies the file's stock levels as of its
 * time to the others (internal/stock), all in one transaction: every row
 * or none. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "ctl.h"
#include "order/order.h"
#include "stock/stock.h"

#define CTL_IMPORT_READ (1 << 20)        /* read buffer; also the longest record taken */
#define CTL_IMPORT_COPY (256 << 10)      /* COPY data per PQputCopyData */
#define CTL_IMPORT_SHOWN 100             /* errors printed; the rest are counted */
#define CTL_IMPORT_EVERY 250000          /* rows per progress line off a terminal */
/* "catalog" in ASCII, read as a bigint: imports take turns. */
#define CTL_IMPORT_LOCK_KEY "27973175172951911"
/* A message of the parser, or one naming a supplier and a SKU. */
#define CTL_IMPORT_MSG_MAX (CATALOG_ERR_MAX + 2 * CATALOG_QUOTE_MAX)

struct ctl_import_error {
	long line;
	char msg[CTL_IMPORT_MSG_MAX];
};

/* The errors to print, in line order, and how many there were in all. */
struct ctl_import_errors {
	long total;
	size_t n;
	struct ctl_import_error e[CTL_IMPORT_SHOWN];
};

struct ctl_import {
	const char *name;              /* the file as named in messages */
	int fd;
	int dry_run;
	const char *as_of;             /* the levels' time as given or taken, NULL = now */
	const char *as_of_from;        /* where it came from, for messages */
	char mtime[STOCK_TIME_LEN];
	char as_of_db[64];             /* the time applied, as the database settled it */
	PGconn *conn;
	char *in;                      /* CTL_IMPORT_READ bytes */
	size_t start, len;             /* unread bytes are in[start..len) */
	int eof;
	char *out;                     /* CTL_IMPORT_COPY bytes of COPY data */
	size_t out_len;
	long line;                     /* line of the next record */
	long records;                  /* records after the header */
	long rows;                     /* valid rows sent to staging */
	unsigned long long bytes;      /* read so far */
	off_t size;                    /* of a regular file, else -1 */
	double started, shown_at;      /* monotonic seconds */
	int tty;                       /* stderr is a terminal: one line, redrawn */
	int progress;                  /* a progress line was printed */
	int redrawn;                   /* the cursor is still on the redrawn line */
	struct ctl_import_errors parse;  /* found while reading */
	struct ctl_import_errors db;     /* found by the checks in SQL */
	struct catalog_record rec;
	struct catalog_row row;
};

static double ctl_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void ctl_import_error(struct ctl_import_errors *errs, long line, const char *msg)
{
	errs->total++;
	if (errs->n < CTL_IMPORT_SHOWN) {
		errs->e[errs->n].line = line;
		snprintf(errs->e[errs->n].msg, sizeof errs->e[errs->n].msg, "%s", msg);
		errs->n++;
	}
}

/* Ends the redrawn progress line, so what follows starts a line of its own. */
static void ctl_import_end_line(struct ctl_import *im)
{
	if (im->redrawn)
		fputc('\n', stderr);
	im->redrawn = 0;
}

/* Every error as FILE:LINE: reason, both lists merged in line order, the
 * first CTL_IMPORT_SHOWN of them. Returns the exit code. */
static int ctl_import_report(struct ctl_import *im)
{
	ctl_import_end_line(im);
	const struct ctl_import_errors *a = &im->parse, *b = &im->db;
	size_t i = 0, j = 0, shown = 0;
	long total = a->total + b->total;
	while (shown < CTL_IMPORT_SHOWN && (i < a->n || j < b->n)) {
		const struct ctl_import_error *e =
			j >= b->n || (i < a->n && a->e[i].line <= b->e[j].line) ? &a->e[i++] : &b->e[j++];
		fprintf(stderr, "%s:%ld: %s\n", im->name, e->line, e->msg);
		shown++;
	}
	if (total > (long)shown)
		fprintf(stderr, "... and %ld more error%s\n", total - (long)shown,
		        total - (long)shown == 1 ? "" : "s");
	return ctl_fail("catalog import: %ld error%s in %s; nothing was imported", total,
	                total == 1 ? "" : "s", im->name);
}

/* Progress on stderr: on a terminal one line redrawn at most twice a
 * second; elsewhere (logs) one line per CTL_IMPORT_EVERY rows. */
static void ctl_import_progress(struct ctl_import *im)
{
	double now = ctl_now();
	if (im->tty && now - im->shown_at < 0.5)
		return;
	char pct[32] = "";
	if (im->size > 0)
		snprintf(pct, sizeof pct, ", %.0f%%", 100.0 * (double)im->bytes / (double)im->size);
	fprintf(stderr, "%s%s: %ld rows read (%.0f MB%s)...%s", im->tty ? "\r" : "", im->name,
	        im->records, (double)im->bytes / 1e6, pct, im->tty ? "" : "\n");
	im->shown_at = now;
	im->progress = 1;
	im->redrawn = im->tty;
}

/* After a progress line: what the import does next, so a long wait says why. */
static void ctl_import_phase(struct ctl_import *im, const char *what)
{
	if (!im->progress)
		return;
	ctl_import_end_line(im);
	fprintf(stderr, "%s: %ld rows read (%.0f MB) in %.1f s; %s\n", im->name, im->records,
	        (double)im->bytes / 1e6, ctl_now() - im->started, what);
}

static int ctl_import_flush(struct ctl_import *im)
{
	if (im->out_len && PQputCopyData(im->conn, im->out, (int)im->out_len) != 1)
		return ctl_pg_fail(im->conn, NULL, "catalog import: COPY");
	im->out_len = 0;
	return CTL_OK;
}

/* Reads more of the file behind the unread bytes. CTL_OK, or the exit code. */
static int ctl_import_read(struct ctl_import *im)
{
	if (im->start) {
		memmove(im->in, im->in + im->start, im->len - im->start);
		im->len -= im->start;
		im->start = 0;
	}
	if (im->len == CTL_IMPORT_READ) {
		char msg[128];
		snprintf(msg, sizeof msg, "a record longer than %d MiB: is a quoted field not closed?",
		         CTL_IMPORT_READ >> 20);
		ctl_import_error(&im->parse, im->line, msg);
		return ctl_import_report(im);
	}
	ssize_t n;
	do
		n = read(im->fd, im->in + im->len, CTL_IMPORT_READ - im->len);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		ctl_import_end_line(im);
		return ctl_fail("catalog import: cannot read %s: %s", im->name, strerror(errno));
	}
	im->len += (size_t)n;
	im->bytes += (unsigned long long)n;
	im->eof = n == 0;
	return CTL_OK;
}

/* The next record into im->rec, reading as needed. 1: a record, whose
 * first line is *line; 0: end of file; else the exit code, negated. */
static int ctl_import_next(struct ctl_import *im, long *line)
{
	for (;;) {
		size_t used = 0;
		switch (catalog_csv_next(im->in + im->start, im->len - im->start, im->eof, &im->rec,
		                         &used)) {
		case CATALOG_NEXT_RECORD:
			im->start += used;
			*line = im->line;
			im->line += (long)im->rec.lines;
			return 1;
		case CATALOG_NEXT_END:
			return 0;
		case CATALOG_NEXT_MORE:
			break;
		}
		int rc = ctl_import_read(im);
		if (rc != CTL_OK)
			return -rc;
	}
}

/* Checks the header, then sends every valid row to COPY and records the
 * errors of the others. CTL_OK (errors or not), or the exit code. */
static int ctl_import_stream(struct ctl_import *im)
{
	char err[CATALOG_ERR_MAX];
	long line;
	/* A byte order mark (spreadsheets write one) is not part of the header. */
	while (im->len < 3 && !im->eof) {
		int rc = ctl_import_read(im);
		if (rc != CTL_OK)
			return rc;
	}
	im->start = catalog_bom_len(im->in, im->len);
	int got = ctl_import_next(im, &line);
	if (got < 0)
		return -got;
	if (got == 0 || catalog_header_check(&im->rec, err, sizeof err) < 0) {
		if (got == 0)
			snprintf(err, sizeof err, "expected header " CATALOG_HEADER "; the file is empty");
		ctl_import_error(&im->parse, 1, err);
		return ctl_import_report(im);
	}
	while ((got = ctl_import_next(im, &line)) == 1) {
		im->records++;
		if (im->tty ? (im->records & 4095) == 0 : im->records % CTL_IMPORT_EVERY == 0)
			ctl_import_progress(im);
		int rc = catalog_row_parse(&im->rec, &im->row, err, sizeof err);
		if (rc > 0)
			continue;
		if (rc < 0) {
			ctl_import_error(&im->parse, line, err);
			continue;
		}
		/* Rows after an error are still sent: their own errors are reported too. */
		if (im->out_len + CATALOG_COPY_MAX > CTL_IMPORT_COPY && ctl_import_flush(im) != CTL_OK)
			return CTL_FAIL;
		size_t n = catalog_row_copy(&im->row, line, im->out + im->out_len,
		                            CTL_IMPORT_COPY - im->out_len);
		if (n == 0)
			/* CATALOG_COPY_MAX bounds a valid row: a bug, never a row to lose. */
			return ctl_fail("catalog import: %s:%ld: row too long for COPY", im->name, line);
		im->out_len += n;
		im->rows++;
	}
	if (got < 0)
		return -got;
	return ctl_import_flush(im);
}

/* Ends COPY and collects its result. */
static int ctl_import_copy_end(struct ctl_import *im)
{
	int rc = CTL_OK;
	if (PQputCopyEnd(im->conn, NULL) != 1)
		return ctl_pg_fail(im->conn, NULL, "catalog import: COPY");
	PGresult *res;
	while ((res = PQgetResult(im->conn)) != NULL) {
		if (rc == CTL_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
			rc = ctl_pg_fail(im->conn, res, "catalog import: COPY");
		PQclear(res);
	}
	return rc;
}

/* What a valid row cannot tell alone: whether its supplier exists, and
 * whether the file has its (supplier, sku) twice (the later line is at
 * fault). The first CTL_IMPORT_SHOWN by line, with the total. */
static const char ctl_import_checks_sql[] =
	"SELECT line, kind, supplier, sku, first, count(*) OVER () FROM ("
	" SELECT s.line, 'supplier' AS kind, s.supplier, s.sku, NULL::bigint AS first"
	"  FROM staging s LEFT JOIN suppliers p ON p.code = s.supplier WHERE p.id IS NULL"
	" UNION ALL"
	/* Grouping hashes; a window over (supplier, sku) would sort every row. */
	" SELECT s.line, 'duplicate', s.supplier, s.sku, d.first"
	"  FROM staging s JOIN (SELECT supplier, sku, min(line) AS first FROM staging"
	"                       GROUP BY supplier, sku HAVING count(*) > 1) d"
	"    ON d.supplier = s.supplier AND d.sku = s.sku"
	"  WHERE s.line <> d.first"
	") e ORDER BY line LIMIT $1";

static int ctl_import_checks(struct ctl_import *im)
{
	char limit[16];
	snprintf(limit, sizeof limit, "%d", CTL_IMPORT_SHOWN);
	const char *params[] = { limit };
	PGresult *res = PQexecParams(im->conn, ctl_import_checks_sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		int rc = ctl_pg_fail(im->conn, res, "catalog import: checks");
		PQclear(res);
		return rc;
	}
	for (int r = 0; r < PQntuples(res); r++) {
		char sup[CATALOG_QUOTE_MAX], sku[CATALOG_QUOTE_MAX], msg[CTL_IMPORT_MSG_MAX];
		catalog_quote(PQgetvalue(res, r, 2), (size_t)PQgetlength(res, r, 2), sup, sizeof sup);
		catalog_quote(PQgetvalue(res, r, 3), (size_t)PQgetlength(res, r, 3), sku, sizeof sku);
		if (strcmp(PQgetvalue(res, r, 1), "supplier") == 0)
			snprintf(msg, sizeof msg, "column supplier: %s is not a known supplier", sup);
		else
			snprintf(msg, sizeof msg, "column sku: %s of supplier %s is a duplicate of line %s",
			         sku, sup, PQgetvalue(res, r, 4));
		ctl_import_error(&im->db, strtol(PQgetvalue(res, r, 0), NULL, 10), msg);
	}
	/* Counted from the window, not from the rows shown. */
	if (PQntuples(res) > 0)
		im->db.total = strtol(PQgetvalue(res, 0, 5), NULL, 10);
	PQclear(res);
	return CTL_OK;
}

/* The rows of offers that exist, as the stock module's input. */
static const char ctl_import_levels_sql[] =
	"INSERT INTO stock_levels (offer_id, level, supplier_sku, cost, shipping_cost, lead_time_days,"
	" ships_to)"
	" SELECT o.id, s.stock, s.supplier_sku, s.cost, s.shipping_cost, s.lead_time_days,"
	"  coalesce(array_to_string(s.ships_to, ';'), '*')"
	" FROM staging s JOIN suppliers p ON p.code = s.supplier"
	" JOIN offers o ON o.supplier_id = p.id AND o.sku = s.sku";

/* New offers take the file's values as they are: nothing was reserved on
 * them yet. Their SKUs may have lines waiting for them. */
static const char ctl_import_create_sql[] =
	"WITH n AS (INSERT INTO offers (supplier_id, sku, supplier_sku, cost, shipping_cost, stock,"
	"  lead_time_days, ships_to, available, level_as_of, updated_at)"
	" SELECT p.id, s.sku, s.supplier_sku, s.cost, s.shipping_cost, s.stock, s.lead_time_days,"
	"  s.ships_to, true, $1::timestamptz, now()"
	"  FROM staging s JOIN suppliers p ON p.code = s.supplier"
	"  WHERE NOT EXISTS (SELECT 1 FROM offers o WHERE o.supplier_id = p.id AND o.sku = s.sku)"
	" ON CONFLICT (supplier_id, sku) DO NOTHING RETURNING sku, stock),"
	" k AS (INSERT INTO sku_changes (sku) SELECT DISTINCT sku FROM n WHERE stock > 0"
	" ON CONFLICT (sku) DO UPDATE SET changed_at = now() RETURNING 1)"
	" SELECT (SELECT count(*) FROM n), (SELECT count(*) FROM k)";

/* Runs sql (parameters: the levels' time, or none) and takes its one row. */
static PGresult *ctl_import_row(struct ctl_import *im, const char *sql, int with_time)
{
	const char *params[] = { im->as_of_db };
	PGresult *res = PQexecParams(im->conn, sql, with_time, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		return res;
	ctl_pg_fail(im->conn, res, "catalog import");
	PQclear(res);
	return NULL;
}

/* Creates the new offers, then applies the levels of the others. The
 * lock comes first: the apply must see every reservation made so far. */
static int ctl_import_write(struct ctl_import *im)
{
	static const char *const steps[] = { stock_levels_lock_sql, stock_levels_create_sql,
	                                     ctl_import_levels_sql, "ANALYZE stock_levels" };
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
		if (ctl_exec_ok(im->conn, steps[i], "catalog import") != CTL_OK)
			return CTL_FAIL;
	PGresult *res = ctl_import_row(im, ctl_import_create_sql, 1);
	if (!res)
		return CTL_FAIL;
	long created = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	long long skus = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	struct stock_result st;
	if (!(res = ctl_import_row(im, stock_levels_apply_sql, 1)))
		return CTL_FAIL;
	int bad = stock_decode(res, &st);
	PQclear(res);
	if (bad < 0)
		return ctl_fail("catalog import: unexpected result of the stock levels");
	if (st.refused != STOCK_OK)
		return ctl_fail("catalog import: %s %s %s", im->as_of_from, im->as_of,
		                stock_refusal_text(st.refused));
	int rc = ctl_exec_ok(im->conn, im->dry_run ? "ROLLBACK" : "COMMIT", "catalog import");
	/* After COMMIT: dropshipd plans the lines waiting for those SKUs. */
	if (rc == CTL_OK && !im->dry_run && skus + st.skus > 0)
		rc = ctl_exec_ok(im->conn, stock_notify_sql, "catalog import");
	if (rc != CTL_OK)
		return rc;
	printf("%s %ld offer%s (%ld created, %lld updated, %lld unchanged, %lld stale) in %.1f s%s\n",
	       im->dry_run ? "dry run: would import" : "imported", im->rows, im->rows == 1 ? "" : "s",
	       created, st.applied, st.unchanged, st.stale, ctl_now() - im->started,
	       im->dry_run ? "; nothing changed" : "");
	return CTL_OK;
}

/* The levels' time may be applied: else nothing is read. Keeps the time
 * as the database settled it, for every statement after. */
static int ctl_import_check_time(struct ctl_import *im)
{
	const char *params[] = { im->as_of };
	PGresult *res = PQexecParams(im->conn, stock_check_sql, 1, NULL, params, NULL, NULL, 0);
	int rc = CTL_OK;
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		rc = ctl_pg_fail(im->conn, res, "catalog import");
	} else if (!PQgetisnull(res, 0, 0)) {
		enum stock_refusal why = stock_refusal_of(PQgetvalue(res, 0, 0));
		rc = ctl_fail("catalog import: %s %s %s", im->as_of_from, im->as_of, stock_refusal_text(why));
	} else {
		snprintf(im->as_of_db, sizeof im->as_of_db, "%s", PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	return rc;
}

/* The transaction up to COPY: a turn of its own, and the staging table.
 * Numbers and arrays are typed there, so COPY converts them once. */
static int ctl_import_begin(struct ctl_import *im)
{
	static const char *const steps[] = {
		"BEGIN",
		/* Hashing a million (supplier, sku) for the repeat check fits in memory. */
		"SET LOCAL work_mem = '256MB'",
		/* Compiling these statements costs more than it saves: they write. */
		"SET LOCAL jit = off",
		"CREATE TEMP TABLE staging (line bigint, supplier text, sku text, supplier_sku text,"
		" cost numeric(20, 4), shipping_cost numeric(20, 4), stock integer,"
		" lead_time_days integer, ships_to char(2)[]) ON COMMIT DROP",
	};
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
		if (ctl_exec_ok(im->conn, steps[i], "catalog import") != CTL_OK)
			return CTL_FAIL;
	const char *key[] = { CTL_IMPORT_LOCK_KEY };
	PGresult *res = PQexecParams(im->conn, "SELECT pg_try_advisory_xact_lock($1::bigint)", 1,
	                             NULL, key, NULL, NULL, 0);
	int got = PQresultStatus(res) == PGRES_TUPLES_OK && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!got) {
		fprintf(stderr, CTL_PROG ": waiting for another catalog import to finish\n");
		res = PQexecParams(im->conn, "SELECT pg_advisory_xact_lock($1::bigint)", 1, NULL, key,
		                   NULL, NULL, 0);
		int rc = PQresultStatus(res) == PGRES_TUPLES_OK ? CTL_OK
		                                                : ctl_pg_fail(im->conn, res, "catalog import");
		PQclear(res);
		if (rc != CTL_OK)
			return rc;
	}
	if (ctl_import_check_time(im) != CTL_OK)
		return CTL_FAIL;
	res = PQexec(im->conn, "COPY staging FROM STDIN");
	int rc = PQresultStatus(res) == PGRES_COPY_IN ? CTL_OK
	                                              : ctl_pg_fail(im->conn, res, "catalog import");
	PQclear(res);
	return rc;
}

static int ctl_import_parse_args(int argc, char **argv, const char **file, int *dry_run,
                                 const char **as_of)
{
	*file = NULL;
	*dry_run = 0;
	*as_of = NULL;
	for (int i = 0; i < argc; i++) {
		int m = ctl_opt(argc, argv, &i, "--as-of", as_of);
		if (m < 0)
			return CTL_USAGE;
		if (m > 0)
			continue;
		if (strcmp(argv[i], "--dry-run") == 0)
			*dry_run = 1;
		else if (*file || (argv[i][0] == '-' && argv[i][1] != '\0'))
			return ctl_bad_arg("catalog import", argv[i]);
		else
			*file = argv[i];
	}
	if (!*file)
		return ctl_usage_error("catalog import: missing FILE (catalog import FILE.csv, or - for "
		                       "standard input)");
	if (*as_of && !order_valid_timestamp(*as_of))
		return ctl_usage_error("--as-of must be an RFC 3339 time such as 2026-11-22T10:00:00Z "
		                       "(got '%s')", *as_of);
	return CTL_OK;
}

int ctl_cmd_catalog_import(struct ctl *c, int argc, char **argv)
{
	const char *file, *as_of;
	int dry_run;
	int rc = ctl_import_parse_args(argc, argv, &file, &dry_run, &as_of);
	if (rc != CTL_OK)
		return rc;
	struct ctl_import *im = calloc(1, sizeof *im);
	if (!im)
		return ctl_fail("catalog import: out of memory");
	im->started = ctl_now();
	/* Quick imports show no progress at all. */
	im->shown_at = im->started;
	im->dry_run = dry_run;
	im->as_of = as_of;
	im->as_of_from = "--as-of";
	im->line = 1;
	im->size = -1;
	im->tty = isatty(STDERR_FILENO);
	im->in = malloc(CTL_IMPORT_READ);
	im->out = malloc(CTL_IMPORT_COPY);
	int stdin_file = strcmp(file, "-") == 0;
	im->name = stdin_file ? "stdin" : file;
	im->fd = stdin_file ? STDIN_FILENO : open(file, O_RDONLY | O_CLOEXEC);
	if (!im->in || !im->out) {
		rc = ctl_fail("catalog import: out of memory");
		goto cleanup;
	}
	if (im->fd < 0) {
		rc = ctl_fail("catalog import: cannot open %s: %s", file, strerror(errno));
		goto cleanup;
	}
	struct stat st;
	if (fstat(im->fd, &st) == 0 && S_ISREG(st.st_mode))
		im->size = st.st_size;
	/* The export's own time: when the supplier wrote the file. A pipe has
	 * none, so its levels are taken as of now. */
	if (!im->as_of && im->size >= 0 && !stdin_file &&
	    stock_format_time(st.st_mtim.tv_sec, st.st_mtim.tv_nsec, im->mtime, sizeof im->mtime) == 0) {
		im->as_of = im->mtime;
		im->as_of_from = "the file's modification time";
	} else if (!im->as_of) {
		im->as_of_from = "now";
	}
	rc = ctl_connect(c, &im->conn);
	if (rc != CTL_OK)
		goto cleanup;
	/* Text arrives as UTF-8 (the parser checks it); the server converts. */
	if (PQsetClientEncoding(im->conn, "UTF8") != 0) {
		rc = ctl_pg_fail(im->conn, NULL, "catalog import");
		goto cleanup;
	}
	rc = ctl_import_begin(im);
	if (rc == CTL_OK)
		rc = ctl_import_stream(im);
	if (rc == CTL_OK)
		rc = ctl_import_copy_end(im);
	if (rc != CTL_OK)
		goto cleanup;
	ctl_import_phase(im, "checking");
	rc = ctl_import_checks(im);
	if (rc == CTL_OK && im->parse.total + im->db.total > 0)
		rc = ctl_import_report(im);
	if (rc != CTL_OK)
		goto cleanup;
	ctl_import_phase(im, "writing offers");
	rc = ctl_import_write(im);
cleanup:
	/* Without COMMIT, closing the session rolls everything back. */
	PQfinish(im->conn);
	if (im->fd > STDIN_FILENO)
		close(im->fd);
	free(im->out);
	free(im->in);
	free(im);
	return rc;
}
