/* What the command files of dropshipctl share: exit codes, messages,
 * option matching, the connection, and the create-or-update of one row. */
#ifndef DROPSHIP_CTL_H
#define DROPSHIP_CTL_H
#include <stddef.h>
#include <stdio.h>
#include <libpq-fe.h>

#include "config/config.h"

#define CTL_PROG "dropshipctl"
#define CTL_MAX_SECRETS 8          /* stores.secrets and suppliers.secrets allow 1..8 */
#define CTL_SECRET_MAX 256         /* bytes, any format */
#define CTL_URL_MAX 2048
#define CTL_NATIVE_KEY_MIN 16      /* whsec_ keys, in decoded bytes */
#define CTL_NATIVE_KEY_MAX 64

/* Exit codes, as docs/cli.md lists them: 0 success, 1 runtime failure,
 * 2 usage or configuration error (nothing written to the database). */
enum { CTL_OK = 0, CTL_FAIL = 1, CTL_USAGE = 2 };

struct ctl {
	const char *config_path;       /* -c FILE, or NULL: defaults + environment */
	struct config cfg;
};

/* Repeated --secret values, as given. */
struct ctl_secrets {
	const char *v[CTL_MAX_SECRETS];
	size_t n;
};

/* Prints "dropshipctl: MESSAGE; see dropshipctl --help" and returns CTL_USAGE. */
__attribute__((format(printf, 1, 2)))
int ctl_usage_error(const char *fmt, ...);

/* Prints "dropshipctl: MESSAGE" and returns CTL_FAIL. */
__attribute__((format(printf, 1, 2)))
int ctl_fail(const char *fmt, ...);

/* Reports a failed statement (res may be NULL) as "WHAT: reason"; returns CTL_FAIL. */
int ctl_pg_fail(PGconn *conn, const PGresult *res, const char *what);

/* Matches argv[*i] as "--name VALUE" or "--name=VALUE": 1 (and *i moved
 * past it), 0 for another argument, -1 after a usage error. */
int ctl_opt(int argc, char **argv, int *i, const char *name, const char **val);

/* Usage error for an argument that no option of cmd matched. */
int ctl_bad_arg(const char *cmd, const char *arg);

/* Loads the configuration and connects: CTL_OK with *out set (PQfinish
 * it), or the exit code after printing why. */
int ctl_connect(struct ctl *c, PGconn **out);

/* Runs a statement without results: CTL_OK, or CTL_FAIL after printing why. */
int ctl_exec_ok(PGconn *conn, const char *sql, const char *what);

/* An option of an `add` command, and where its value goes. */
struct ctl_optdef {
	const char *name;              /* "--format" */
	const char **val;              /* set when given */
};

/* Parses the words of `NOUN add`: CODE, repeated --secret, and the
 * options of opts (ended by a NULL name); synopsis is shown when CODE is
 * missing. CTL_OK, or CTL_USAGE after printing why. */
int ctl_parse_add(int argc, char **argv, const char *noun, const char *synopsis,
                  const struct ctl_optdef *opts, const char **code, struct ctl_secrets *secrets);

/* Checks secret number idx (1-based) for a store format, "" when not yet
 * known; "native" is the whsec_ form suppliers use too. Never echoes it. */
int ctl_check_secret(const char *format, size_t idx, const char *secret);

/* Usage error naming opt unless url is https:// with a host, no user
 * information, no spaces or control bytes, at most CTL_URL_MAX bytes. */
int ctl_check_url(const char *opt, const char *url);

/* Usage error naming opt unless v is a whole number in min..max. */
int ctl_check_int(const char *opt, const char *v, long min, long max);

/* Creates or updates the row of table whose code is code. */
struct ctl_upsert {
	const char *table;             /* "stores", "suppliers" */
	const char *noun;              /* "store": messages and the line printed */
	const char *code;
	const struct ctl_secrets *secrets; /* written as the secrets column when any */
	const char *stored_col;        /* column of the locked row that check reads */
	/* Rules that need the stored row; stored is NULL for a new one. Returns
	 * CTL_OK, or the exit code after printing why. */
	int (*check)(const void *arg, const char *stored);
	const void *arg;
	const char *cols[8];           /* the other columns to write... */
	const char *vals[8];           /* ...as text bound to parameters; NULL = SQL NULL */
	int n;
};

/* Adds column col to the write when val was given (not NULL). */
void ctl_upsert_set(struct ctl_upsert *u, const char *col, const char *val);

/* Locks the row, runs check, writes only the given columns (an existing
 * row keeps the rest), commits and prints "NOUN CODE created|updated". */
int ctl_upsert_row(struct ctl *c, struct ctl_upsert *u);

/* The `NOUN list` commands: runs sql (no parameters) and prints its rows
 * aligned under head (ncols columns), or the line empty when
 * there are none. argc/argv are the words after the command: none. */
int ctl_list(struct ctl *c, int argc, char **argv, const char *cmd, const char *sql,
             const char *const *head, int ncols, const char *empty);

/* Rows of text printed as aligned columns. The caller sets ncols (at most
 * CTL_TABLE_MAX_COLS), head and right (NULL, or 1 per right-aligned column)
 * and frees the cells with ctl_table_free. */
#define CTL_TABLE_MAX_COLS 64
struct ctl_table {
	int ncols;
	const char *const *head;
	const int *right;
	char **cells;                  /* nrows * ncols copies */
	size_t nrows, cap;
};

/* Adds a row of ncols values (NULL prints empty). 0, or -1 out of memory. */
int ctl_table_add(struct ctl_table *t, const char *const *row);
/* Adds every row of res (its first ncols columns). 0, or -1 out of memory. */
int ctl_table_add_result(struct ctl_table *t, const PGresult *res);
/* Header line, then the rows, each line starting with indent. */
void ctl_table_print(const struct ctl_table *t, FILE *f, const char *indent);
void ctl_table_free(struct ctl_table *t);

/* The rows of res as RFC 4180 CSV (CRLF line ends, NULL as an empty field),
 * after a header line of column names when header is set. */
void ctl_csv_print(const PGresult *res, FILE *f, int header);

/* The commands; each gets the words after its name. */
int ctl_cmd_store_add(struct ctl *c, int argc, char **argv);
int ctl_cmd_store_list(struct ctl *c, int argc, char **argv);
int ctl_cmd_supplier_add(struct ctl *c, int argc, char **argv);
int ctl_cmd_supplier_list(struct ctl *c, int argc, char **argv);
int ctl_cmd_catalog_import(struct ctl *c, int argc, char **argv);
int ctl_cmd_report(struct ctl *c, int argc, char **argv);
int ctl_cmd_order_show(struct ctl *c, int argc, char **argv);

#endif
