/* dropshipctl: the admin CLI. Talks to PostgreSQL directly with blocking
 * libpq: applies migrations, manages stores and suppliers, imports the
 * catalog, prints reports, orders and outbound messages, re-queues and
 * re-plans, replays routing policies over history, makes webhook secrets.
 * The commands live in store.c, supplier.c, import.c, report.c, order.c,
 * outbox.c and simulate.c; what they share in ctl.c and table.c.
 * docs/cli.md describes each one. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "catalog/catalog.h"
#include "ctl.h"
#include "mem/mem.h"
#include "migrate/migrate.h"
#include "version/version.h"

#define CTL_NEW_KEY_BYTES 32       /* what `secret new` generates */

/* The help, in parts: ISO C compilers need not take a string literal
 * over 4095 bytes. */
static void ctl_usage(FILE *f)
{
	fputs("usage: " CTL_PROG " [-c FILE] COMMAND [ARGS...]\n"
	      "\n"
	      "Admin CLI for dropship. Talks to PostgreSQL directly, using [database] url\n"
	      "of the configuration (or DROPSHIP_DATABASE_URL, any libpq connection string).\n"
	      "\n"
	      "options:\n"
	      "  -c, --config FILE   configuration file (INI). Without it: defaults and\n"
	      "                      DROPSHIP_<SECTION>_<KEY> environment variables.\n"
	      "  -h, --help          this help\n"
	      "  -V, --version       print the version\n"
	      "\n"
	      "commands:\n"
	      "  migrate [--dir DIR] [--sql-dir DIR]\n"
	      "      Apply pending migrations (NNNN_name.sql) in order, each once and in its\n"
	      "      own transaction, under an advisory lock; then recreate the views of the\n"
	      "      sql/ directory next to DIR. Refuses to run when an applied file changed.\n"
	      "      DIR: --dir, else $DROPSHIP_MIGRATIONS_DIR, else <binary>/../migrations,\n"
	      "      else <binary>/../share/dropship/migrations, else ./migrations.\n"
	      "      --sql-dir: else $DROPSHIP_SQL_DIR, else DIR/../sql when it exists.\n"
	      "\n", f);
	fprintf(f,
	        "  store add CODE [--update] [--secret S]...\n"
	        "                 [--format native|shopify|woocommerce]\n"
	        "                 [--policy cheapest|fastest|priority|balanced] [--split-tolerance PCT]\n"
	        "                 [--penalty MONEY] [--min-acceptance-rate PCT] [--min-on-time-rate PCT]\n"
	        "                 [--callback-url URL]\n"
	        "                 [--platform-url URL (--platform-token T | --platform-key K\n"
	        "                  --platform-secret S)] [--notify-customer yes|no]\n"
	        "      Create a store. An existing CODE is refused unless --update is given;\n"
	        "      then only the options given change.\n"
	        "      --secret            webhook secret; repeat for several valid at once\n"
	        "                          (key rotation, at most %d). Required on create.\n"
	        "                          Native: whsec_<base64 of 16..64 bytes>; shopify and\n"
	        "                          woocommerce: the platform's secret (1..%d bytes).\n"
	        "                          Given on update, it replaces all stored secrets.\n"
	        "      --format            webhook format (default native)\n"
	        "      --policy            routing policy (default cheapest)\n"
	        "      --split-tolerance   cost tolerance in percent before an order is split\n"
	        "                          across suppliers, 0..1000 (default 10)\n"
	        "      --penalty           balanced: what a unit rejected or shipped late costs\n"
	        "                          the store, 0..1000000 (default 5)\n"
	        "      --min-acceptance-rate, --min-on-time-rate\n"
	        "                          health floor, percent of the supplier scorecard's\n"
	        "                          rates (default 0: none): a supplier below either is\n"
	        "                          used only when no other can ship the line\n"
	        "      --callback-url      https:// URL for order notifications; \"\" removes it\n"
	        "      --platform-url      the shop's https:// address (https://SHOP.myshopify.com,\n"
	        "                          https://shop.example): each shipped parcel is told to\n"
	        "                          the platform (docs/storefronts.md); \"\" removes it\n"
	        "      --platform-token    shopify: the Admin API access token (a secret)\n"
	        "      --platform-key      woocommerce: REST API consumer key ck_...\n"
	        "      --platform-secret   woocommerce: its consumer secret cs_...\n"
	        "      --notify-customer   shopify: Shopify emails the customer of each\n"
	        "                          fulfillment (default yes)\n"
	        "\n"
	        "  store list\n"
	        "      Print every store (secrets are counted, never shown).\n"
	        "\n"
	        "  store disable CODE | store enable CODE\n"
	        "      A disabled store's new orders are refused; its orders stay as they are\n"
	        "      and its cancellations are still taken.\n"
	        "\n", CTL_MAX_SECRETS, CTL_SECRET_MAX);
	fprintf(f,
	        "  supplier add CODE [--update] [--endpoint URL] [--secret S]... [--priority N]\n"
	        "                    [--active true|false] [--accept-within DURATION]\n"
	        "                    [--ship-within DURATION]\n"
	        "      Create a supplier. An existing CODE is refused unless --update is given;\n"
	        "      then only the options given change.\n"
	        "      --endpoint          https:// URL that fulfillment requests are sent to.\n"
	        "                          Required on create.\n"
	        "      --secret            whsec_<base64 of 16..64 bytes>, signs requests and\n"
	        "                          callbacks; repeat for several valid at once (at most\n"
	        "                          %d, the first signs). Required on create; given on\n"
	        "                          update, it replaces all stored secrets.\n"
	        "      --priority          0..1000000, lower is preferred (default 100)\n"
	        "      --active            false: no new orders are routed to it (default true)\n"
	        "      --accept-within     how long the supplier has to accept a request\n"
	        "                          (default 24h)\n"
	        "      --ship-within       how long it has to ship (default 72h)\n"
	        "      DURATION: whole numbers with a unit s, m, h or d, e.g. 90m, 24h, 3d, 1d12h;\n"
	        "      1s to 365d.\n"
	        "\n"
	        "  supplier list\n"
	        "      Print every supplier with its offer count (secrets are counted, never\n"
	        "      shown).\n"
	        "\n"
	        "  supplier disable CODE | supplier enable CODE\n"
	        "      A disabled supplier gets no new orders and its stock feeds are refused;\n"
	        "      what it has keeps going.\n"
	        "\n"
	        "  supplier show CODE [--json]\n"
	        "      The supplier and its scorecard (reporting.supplier_scorecard): acceptance,\n"
	        "      rejections by reason, delivery failures, on-time rate, median hours to\n"
	        "      accept and to ship, over the window dropshipd last counted.\n"
	        "\n", CTL_MAX_SECRETS);
	fputs("  catalog import FILE.csv [--as-of TIME] [--dry-run]\n"
	      "      Create or update offers from a CSV file (\"-\": standard input) with the\n"
	      "      header\n"
	      "        " CATALOG_HEADER "\n"
	      "      ships_to is * (everywhere) or country codes separated by ';'. All rows\n"
	      "      or none: every bad row is reported as FILE:LINE: reason and nothing\n"
	      "      changes. A row's stock is the supplier's level at TIME: the offer's stock\n"
	      "      becomes that level plus what was reserved and given back since, and the\n"
	      "      offer is available again; offers not in the file are kept. An offer\n"
	      "      whose level is already newer than TIME is stale and left alone.\n"
	      "      --as-of TIME        RFC 3339, e.g. 2026-11-22T10:00:00Z; at most 7 days\n"
	      "                          ago (default: the file's modification time; for\n"
	      "                          standard input, now)\n"
	      "      --dry-run           check and count, then change nothing\n"
	      "\n"
	      "  report [NAME] [--csv]\n"
	      "      Without NAME: list the reports (the views of the reporting schema)\n"
	      "      with what each shows. With NAME: print that view as an aligned table,\n"
	      "      or with --csv as RFC 4180 CSV (header line, CRLF line ends, NULL as an\n"
	      "      empty field) for spreadsheets and scripts. Read-only.\n"
	      "\n", f);
	fputs("  order show ID | --store CODE --external ID  [--json]\n"
	      "      One order: its lines, routing decisions (every candidate offer and why\n"
	      "      it was passed over), fulfillment requests with the suppliers' callbacks\n"
	      "      and the deliveries of our messages. ID is dropship's order id (the\n"
	      "      order_id of the webhook's answer); --external is the store's own.\n"
	      "      --json: the document that GET /v1/admin/orders/ID returns.\n"
	      "\n"
	      "  order list [--store CODE] [--status S] [--since WHEN] [--limit N] [--json]\n"
	      "      Orders, newest first (default limit 50): id, store, external id, status,\n"
	      "      lines, created, updated. WHEN: a duration back from now (24h, 3d) or an\n"
	      "      RFC 3339 time.\n"
	      "\n"
	      "  order reroute ID | --store CODE --external ID\n"
	      "      Ask dropshipd to plan the order's open lines again now (replan_orders,\n"
	      "      NOTIFY dropship_replan), wait up to 10 s for it, and print the lines as\n"
	      "      they then are. Exit 1 when no dropshipd did it in time.\n"
	      "\n"
	      "  outbox list [--failed] [--supplier CODE] [--store CODE] [--since WHEN]\n"
	      "              [--limit N] [--json]\n"
	      "      Outbound messages, newest first (default limit 50): id, kind, target,\n"
	      "      request id, state, attempts, next attempt, last status or error, age.\n"
	      "\n"
	      "  outbox retry ID | --failed [--supplier CODE] [--store CODE]\n"
	      "      Put failed messages back in the queue with a fresh attempt budget. A\n"
	      "      fulfillment request whose lines were re-routed or given up is refused;\n"
	      "      one whose failure dropshipd has yet to handle is taken, the failure\n"
	      "      withdrawn, so its lines stay with that supplier.\n"
	      "      Exit 1 when the ID is unknown, not failed, or refused.\n"
	      "\n", f);
	fputs("  simulate --policy P [--store CODE] [--since WHEN] [--until WHEN]\n"
	      "           [--split-tolerance PCT] [--penalty MONEY] [--min-acceptance-rate PCT]\n"
	      "           [--min-on-time-rate PCT] [--top N] [--csv | --json]\n"
	      "      What if past orders had been routed under policy P: each order is routed\n"
	      "      again over the candidates its first decision recorded and compared, per\n"
	      "      store, with what was decided: orders and lines compared, lines changing\n"
	      "      supplier, landed cost, expected on-time rate and parcels before -> after,\n"
	      "      and the top N SKUs that move (default 10). Terms not given are each\n"
	      "      store's own. Orders created from --since (default: all) until --until\n"
	      "      (default: now). Read-only; progress on stderr on long runs.\n"
	      "\n", f);
	fprintf(f,
	        "  secret new\n"
	        "      Print a fresh native secret: whsec_ + base64 of %d random bytes.\n"
	        "\n"
	        "exit codes: 0 success, 1 runtime failure (database, migration, bad catalog\n"
	        "rows, an unknown or existing code or order, a refused retry), 2 usage or\n"
	        "configuration error.\n"
	        "\n"
	        "examples:\n"
	        "  " CTL_PROG " -c config/dropshipd.conf migrate\n"
	        "  " CTL_PROG " -c config/dropshipd.conf store add demo --secret \"$(" CTL_PROG
	        " secret new)\"\n"
	        "  " CTL_PROG " store add demo --update --policy fastest\n"
	        "  " CTL_PROG " store add shop2 --format shopify --secret SHOPIFY_SECRET\n"
	        "  " CTL_PROG " store add shop2 --update --platform-url https://shop2.myshopify.com \\\n"
	        "      --platform-token \"$SHOPIFY_TOKEN\"\n"
	        "  " CTL_PROG " store list\n"
	        "  " CTL_PROG " store disable shop2\n"
	        "  " CTL_PROG " supplier add acme --endpoint https://acme.example/orders --secret \"$("
	        CTL_PROG " secret new)\"\n"
	        "  " CTL_PROG " supplier add acme --update --priority 10 --ship-within 2d\n"
	        "  " CTL_PROG " catalog import offers.csv\n"
	        "  " CTL_PROG " catalog import - --as-of 2026-11-22T10:00:00Z < offers.csv\n"
	        "  " CTL_PROG " report\n"
	        "  " CTL_PROG " report stranded_orders\n"
	        "  " CTL_PROG " report daily_orders --csv > daily.csv\n"
	        "  " CTL_PROG " order show 42\n"
	        "  " CTL_PROG " order show --store demo --external 1001\n"
	        "  " CTL_PROG " order list --status needs_attention --since 24h\n"
	        "  " CTL_PROG " order reroute 42\n"
	        "  " CTL_PROG " outbox list --failed --supplier acme\n"
	        "  " CTL_PROG " outbox retry --failed --supplier acme\n"
	        "  " CTL_PROG " supplier show acme\n"
	        "  " CTL_PROG " store add demo --update --policy balanced --penalty 8 --min-acceptance-rate 80\n"
	        "  " CTL_PROG " simulate --policy balanced --store demo --since 30d --penalty 8\n",
	        CTL_NEW_KEY_BYTES);
}

static int ctl_is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Folder holding this binary, or "" when /proc is not there. */
static void ctl_exe_dir(char *buf, size_t cap)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	buf[0] = '\0';
	if (n <= 0)
		return;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	snprintf(buf, cap, "%s", exe);
}

/* Canonical form of an existing folder, so messages name a plain path. */
static int ctl_pick_dir(const char *base, const char *rel, char *buf, size_t cap)
{
	char path[PATH_MAX], real[PATH_MAX];
	int n = snprintf(path, sizeof path, "%s/%s", base, rel);
	if (n < 0 || (size_t)n >= sizeof path || !ctl_is_dir(path) || !realpath(path, real))
		return 0;
	snprintf(buf, cap, "%s", real);
	return 1;
}

/* --dir, $DROPSHIP_MIGRATIONS_DIR, next to the binary (build tree, then
 * installed layout), else ./migrations. */
static void ctl_migrations_dir(const char *opt, char *buf, size_t cap)
{
	const char *env = getenv("DROPSHIP_MIGRATIONS_DIR");
	char exe[PATH_MAX];
	ctl_exe_dir(exe, sizeof exe);
	if (opt)
		snprintf(buf, cap, "%s", opt);
	else if (env && *env)
		snprintf(buf, cap, "%s", env);
	else if (!exe[0] || (!ctl_pick_dir(exe, "../migrations", buf, cap) &&
	                     !ctl_pick_dir(exe, "../share/dropship/migrations", buf, cap)))
		snprintf(buf, cap, "migrations");
}

/* --sql-dir, $DROPSHIP_SQL_DIR, else the sql/ folder beside the
 * migrations one. Returns 0 when there is none. */
static int ctl_sql_dir(const char *opt, const char *migrations, char *buf, size_t cap)
{
	const char *env = getenv("DROPSHIP_SQL_DIR");
	if (opt || (env && *env)) {
		snprintf(buf, cap, "%s", opt ? opt : env);
		return 1;
	}
	return ctl_pick_dir(migrations, "../sql", buf, cap);
}

static int ctl_cmd_migrate(struct ctl *c, int argc, char **argv)
{
	const char *dir = NULL, *sql = NULL;
	for (int i = 0; i < argc; i++) {
		int m = ctl_opt(argc, argv, &i, "--dir", &dir);
		if (m == 0)
			m = ctl_opt(argc, argv, &i, "--sql-dir", &sql);
		if (m < 0)
			return CTL_USAGE;
		if (m == 0)
			return ctl_bad_arg("migrate", argv[i]);
	}
	char mdir[PATH_MAX], sdir[PATH_MAX], err[8192];
	ctl_migrations_dir(dir, mdir, sizeof mdir);
	int has_sql = ctl_sql_dir(sql, mdir, sdir, sizeof sdir);

	PGconn *conn;
	int rc = ctl_connect(c, &conn);
	if (rc != CTL_OK)
		return rc;
	if (migrate_run(conn, mdir, has_sql ? sdir : NULL, stdout, err, sizeof err) < 0)
		rc = ctl_fail("migrate: %s", err);
	PQfinish(conn);
	return rc;
}

static int ctl_cmd_secret_new(struct ctl *c, int argc, char **argv)
{
	(void)c;
	if (argc > 0)
		return ctl_bad_arg("secret new", argv[0]);
	unsigned char key[CTL_NEW_KEY_BYTES];
	unsigned char b64[4 * ((CTL_NEW_KEY_BYTES + 2) / 3) + 1];
	if (RAND_bytes(key, sizeof key) != 1)
		return ctl_fail("secret new: no random bytes from OpenSSL");
	EVP_EncodeBlock(b64, key, sizeof key);
	printf("whsec_%s\n", (const char *)b64);
	OPENSSL_cleanse(key, sizeof key);
	OPENSSL_cleanse(b64, sizeof b64);
	return CTL_OK;
}

struct ctl_cmd {
	const char *group;             /* first word */
	const char *name;              /* second word, or NULL for one-word commands */
	int (*run)(struct ctl *c, int argc, char **argv); /* gets the words after the command */
};

static const struct ctl_cmd ctl_cmds[] = {
	{ "migrate", NULL, ctl_cmd_migrate },
	{ "store", "add", ctl_cmd_store_add },
	{ "store", "list", ctl_cmd_store_list },
	{ "store", "disable", ctl_cmd_store_disable },
	{ "store", "enable", ctl_cmd_store_enable },
	{ "supplier", "add", ctl_cmd_supplier_add },
	{ "supplier", "list", ctl_cmd_supplier_list },
	{ "supplier", "disable", ctl_cmd_supplier_disable },
	{ "supplier", "enable", ctl_cmd_supplier_enable },
	{ "supplier", "show", ctl_cmd_supplier_show },
	{ "simulate", NULL, ctl_cmd_simulate },
	{ "catalog", "import", ctl_cmd_catalog_import },
	{ "secret", "new", ctl_cmd_secret_new },
	{ "report", NULL, ctl_cmd_report },
	{ "order", "show", ctl_cmd_order_show },
	{ "order", "list", ctl_cmd_order_list },
	{ "order", "reroute", ctl_cmd_order_reroute },
	{ "outbox", "list", ctl_cmd_outbox_list },
	{ "outbox", "retry", ctl_cmd_outbox_retry },
	{ NULL, NULL, NULL },
};

static int ctl_dispatch(struct ctl *c, int argc, char **argv)
{
	const char *group = argv[0], *name = argc > 1 ? argv[1] : "";
	int known_group = 0;
	for (const struct ctl_cmd *cmd = ctl_cmds; cmd->group; cmd++) {
		if (strcmp(cmd->group, group) != 0)
			continue;
		known_group = 1;
		if (!cmd->name)
			return cmd->run(c, argc - 1, argv + 1);
		if (strcmp(cmd->name, name) == 0)
			return cmd->run(c, argc - 2, argv + 2);
	}
	if (!known_group)
		return ctl_usage_error("unknown command '%s'", group);
	char names[128] = "";
	for (const struct ctl_cmd *cmd = ctl_cmds; cmd->group; cmd++)
		if (strcmp(cmd->group, group) == 0) {
			size_t n = strlen(names);
			snprintf(names + n, sizeof names - n, "%s%s %s", n ? ", " : "", group, cmd->name);
		}
	if (!*name)
		return ctl_usage_error("%s: missing subcommand (%s)", group, names);
	return ctl_usage_error("%s: unknown subcommand '%s' (%s)", group, name, names);
}

int main(int argc, char **argv)
{
	mem_use_for_libraries();
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl c = { .config_path = NULL };
	int opt;
	/* "+": options stop at the command, whose own options come after it. */
	while ((opt = getopt_long(argc, argv, "+c:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': c.config_path = optarg; break;
		case 'h': ctl_usage(stdout); return CTL_OK;
		case 'V': printf(CTL_PROG " %s\n", DROPSHIP_VERSION); return CTL_OK;
		default:
			fputs(CTL_PROG ": see " CTL_PROG " --help\n", stderr);
			return CTL_USAGE;
		}
	}
	if (optind >= argc)
		return ctl_usage_error("missing command (migrate, store, supplier, catalog import, report, "
		                       "order, outbox, simulate, secret new)");
	return ctl_dispatch(&c, argc - optind, argv + optind);
}
