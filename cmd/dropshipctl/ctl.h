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

/* Parses the words of `NOUN add`: CODE, repeated --secret, --update (sets
 * *update), and the options of opts (ended by a NULL name); synopsis is
 * shown when CODE is missing. CTL_OK, or CTL_USAGE after printing why. */
int ctl_parse_add(int argc, char **argv, const char *noun, const char *synopsis,
                  const struct ctl_optdef *opts, const char **code, struct ctl_secrets *secrets,
                  int *update);

/* Usage error naming cmd's CODE unless it follows the code rule of stores
 * and suppliers. */
int ctl_check_code(const char *cmd, const char *code);

/* Checks secret number idx (1-based) for a store format, "" when not yet
 * known; "native" is the whsec_ form suppliers use too. Never echoes it. */
int ctl_check_secret(const char *format, size_t idx, const char *secret);

/* Usage error naming opt unless url is https:// with a host, no user
 * information, no spaces or control bytes, at most CTL_URL_MAX bytes. */
int ctl_check_url(const char *opt, const char *url);

/* Usage error naming opt unless v is a whole number in min..max. */
int ctl_check_int(const char *opt, const char *v, long min, long max);

/* Usage error naming opt unless v is a plain decimal number (digits, then
 * at most places decimals after a '.') from 0 to max. */
int ctl_check_decimal(const char *opt, const char *v, double max, int places);

/* Seconds of a duration written as whole numbers with units s, m, h, d
 * ("90m", "24h", "1d12h"), or -1 when s is not one within 1 s .. 365 d. */
long ctl_duration(const char *s);

/* Usage error naming opt unless v is such a duration; else its interval
 * input ("5400 seconds") in iv. */
int ctl_check_duration(const char *opt, const char *v, char *iv, size_t cap);

/* --since: a duration back from now, or an RFC 3339 time. */
struct ctl_since {
	const char *at;                /* the time as given, or NULL */
	char ago[32];                  /* interval input, or "" */
};

/* Usage error naming opt unless v is a duration or an RFC 3339 time. */
int ctl_check_since(const char *opt, const char *v, struct ctl_since *out);

/* CTL_OK when table has a row whose code is code; else prints
 * "CMD: OPT: no NOUN 'CODE'" and returns CTL_FAIL. */
int ctl_check_exists(PGconn *conn, const char *cmd, const char *opt, const char *table,
                     const char *noun, const char *code);

#define CTL_LIST_LIMIT "50"        /* rows a list prints unless --limit */
#define CTL_LIST_LIMIT_MAX 10000

/* What the list and retry commands take. */
struct ctl_filters {
	const char *id;                /* the one bare argument, when taken */
	const char *supplier, *store, *status;
	const char *since_arg;         /* --since as given */
	struct ctl_since since;
	const char *limit;             /* CTL_LIST_LIMIT unless --limit */
	int failed, json;
};

/* Parses the words of cmd, taking only the options that allowed names
 * (one letter each: f --failed, j --json, p --supplier, s --store,
 * S --status, t --since, l --limit, i a bare ID), and checks their forms.
 * CTL_OK, or CTL_USAGE after printing why. */
int ctl_parse_filters(int argc, char **argv, const char *cmd, const char *allowed,
                      struct ctl_filters *f);

/* The --supplier and --store codes given exist (an unknown one would
 * silently match nothing): CTL_OK, or CTL_FAIL after printing which. */
int ctl_check_filters(PGconn *conn, const char *cmd, const struct ctl_filters *f);

/* A list command's run after its filters are parsed: connects, checks the
 * filters (ctl_check_filters), runs sql with params and prints the rows
 * (ctl_print_list; empty when there are none). CTL_OK or why not. */
struct ctl_list {
	const char *cmd;
	const char *sql;
	int nparams;
	const char *const *params;
	const struct ctl_col *cols;
	int ncols;
	const char *empty;
};
int ctl_list_filtered(struct ctl *c, const struct ctl_filters *f, const struct ctl_list *l);

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
	int update;                    /* --update: an existing row may change */
	const char *cols[16];          /* the other columns to write... */
	const char *vals[16];          /* ...as text bound to parameters; NULL = SQL NULL */
	int n;
};

/* Adds column col to the write when val was given (not NULL). */
void ctl_upsert_set(struct ctl_upsert *u, const char *col, const char *val);

/* Locks the row, runs check, writes only the given columns (an existing
 * row keeps the rest), commits and prints "NOUN CODE created|updated". An
 * existing row without u->update is refused (CTL_FAIL): `add` does not
 * silently replace what is there. */
int ctl_upsert_row(struct ctl *c, struct ctl_upsert *u);

/* `NOUN disable|enable CODE` (argc/argv: the words after the command):
 * sets table.active, prints "NOUN CODE disabled|enabled" (or that it
 * already was). An unknown CODE is CTL_FAIL. */
int ctl_set_active(struct ctl *c, int argc, char **argv, const char *table, const char *noun,
                   int active);

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

/* The rows of res as a JSON array of objects, a member per column by name:
 * integers and booleans as such, json as JSON, NULL as null, the rest as
 * strings. Columns whose name starts with '_' are for tables only and left
 * out. Returns 0, or -1 when the output could not be written. */
int ctl_json_print(const PGresult *res, FILE *f);
/* Row r of res as one such object. */
int ctl_json_print_row(const PGresult *res, int r, FILE *f);

/* How a cell of ctl_print_columns shows its column's text. */
enum ctl_fmt {
	CTL_FMT_TEXT,                  /* as it is */
	CTL_FMT_TIME,                  /* an ISO time in UTC, to the second: 2026-11-22T10:00:01Z */
	CTL_FMT_AGE,                   /* seconds as 45s, 12m, 3h12m, 2d3h */
	CTL_FMT_DUE,                   /* seconds until then: "in 3m", "due"; NULL empty */
	CTL_FMT_SHORT,                 /* at most 48 characters, then "..." */
};

/* A column of ctl_print_columns: its header, the result column it shows. */
struct ctl_col {
	const char *head;
	const char *name;
	enum ctl_fmt fmt;
	int right;                     /* right-aligned (numbers) */
};

/* Prints the rows of res as an aligned table of ncols columns cols to
 * stdout. Returns CTL_OK, or CTL_FAIL after printing why. */
int ctl_print_columns(const PGresult *res, const struct ctl_col *cols, int ncols, const char *indent);

/* A list's rows: JSON with json, else a table of cols, or the line empty
 * when there are none. CTL_OK, or CTL_FAIL after printing why. */
int ctl_print_list(const PGresult *res, int json, const struct ctl_col *cols, int ncols,
                   const char *empty);

/* An age or a wait in seconds, as CTL_FMT_AGE shows it. */
void ctl_age_text(long long secs, char *buf, size_t cap);

/* The commands; each gets the words after its name. */
int ctl_cmd_store_add(struct ctl *c, int argc, char **argv);
int ctl_cmd_store_list(struct ctl *c, int argc, char **argv);
int ctl_cmd_store_disable(struct ctl *c, int argc, char **argv);
int ctl_cmd_store_enable(struct ctl *c, int argc, char **argv);
int ctl_cmd_supplier_add(struct ctl *c, int argc, char **argv);
int ctl_cmd_supplier_list(struct ctl *c, int argc, char **argv);
int ctl_cmd_supplier_disable(struct ctl *c, int argc, char **argv);
int ctl_cmd_supplier_enable(struct ctl *c, int argc, char **argv);
int ctl_cmd_supplier_show(struct ctl *c, int argc, char **argv);
int ctl_cmd_simulate(struct ctl *c, int argc, char **argv);
int ctl_cmd_catalog_import(struct ctl *c, int argc, char **argv);
int ctl_cmd_report(struct ctl *c, int argc, char **argv);
int ctl_cmd_order_show(struct ctl *c, int argc, char **argv);
int ctl_cmd_order_list(struct ctl *c, int argc, char **argv);
int ctl_cmd_order_reroute(struct ctl *c, int argc, char **argv);
int ctl_cmd_outbox_list(struct ctl *c, int argc, char **argv);
int ctl_cmd_outbox_retry(struct ctl *c, int argc, char **argv);

#endif
