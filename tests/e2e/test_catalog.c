/* End-to-end tests of `dropshipctl supplier add|list` and `catalog import`:
 * the real binary against fresh databases on the throwaway cluster. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "support/ctl.h"
#include "support/harness.h"
#include "support/proc.h"
#include "support/testdb.h"
#include "support/wait.h"

#define KEY1 "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define KEY2 "whsec_C2FVsBQIhrscChPVQKv8JMl0MtYqSWc1f5hmIcRu7MM="
#define HEADER "supplier,sku,supplier_sku,cost,shipping_cost,stock,lead_time_days,ships_to\n"

/* Every offer, one line each, in a stable order: what "unchanged" compares. */
#define OFFERS_SQL                                                                            \
	"SELECT coalesce(string_agg(concat_ws('|', s.code, o.sku, o.supplier_sku, o.cost,"        \
	" o.shipping_cost, o.stock, o.lead_time_days, coalesce(o.ships_to::text, '*'),"          \
	" o.available), E'\\n' ORDER BY s.code, o.sku), '') FROM offers o"                      \
	" JOIN suppliers s ON s.id = o.supplier_id"

static char tmpdir[64];

static int has(const char *s, const char *needle)
{
	return s && strstr(s, needle) != NULL;
}

/* Path of name in the temp folder (one of 4 buffers used in turn). */
static const char *tmp_path(const char *name)
{
	static char bufs[4][128];
	static int next;
	char *b = bufs[next++ % 4];
	snprintf(b, sizeof bufs[0], "%s/%s", tmpdir, name);
	return b;
}

static const char *write_csv(const char *name, const char *text)
{
	const char *path = tmp_path(name);
	FILE *f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
	return path;
}

/* A migrated database with suppliers sup1..sup3. */
static void catalog_db(const char *name, char *db, size_t cap)
{
	CU_ASSERT_EQUAL_FATAL(testdb_create(name, db, cap), 0);
	struct ctl_run r = ctl(db, "migrate", NULL);
	CU_ASSERT_EQUAL_FATAL(r.rc, 0);
	ctl_run_free(&r);
	const char *codes[] = { "sup1", "sup2", "sup3" };
	for (int i = 0; i < 3; i++) {
		r = ctl(db, "supplier", "add", codes[i], "--endpoint", "https://sup.example/orders",
		        "--secret", KEY1, NULL);
		CU_ASSERT_EQUAL_FATAL(r.rc, 0);
		ctl_run_free(&r);
	}
}

static char *value(const char *db, const char *sql)
{
	PGconn *conn = testdb_connect(db);
	char *v = testdb_value(conn, sql, 0, NULL);
	PQfinish(conn);
	return v ? v : strdup("(null)");
}

static void assert_value(const char *db, const char *sql, const char *want)
{
	char *v = value(db, sql);
	CU_ASSERT_STRING_EQUAL(v, want);
	if (strcmp(v, want) != 0)
		printf("\n%s\n got:\n%s\n want:\n%s\n", sql, v, want);
	free(v);
}

#define SUPPLIER_SQL                                                                          \
	"SELECT concat_ws(' ', endpoint, priority, active,"                                      \
	" extract(epoch FROM accept_within)::bigint, extract(epoch FROM ship_within)::bigint,"  \
	" secrets::text) FROM suppliers WHERE code = 'acme'"

static void test_supplier_add_and_update(void)
{
	char db[512];
	CU_ASSERT_EQUAL_FATAL(testdb_create("dropship_catalog_supplier", db, sizeof db), 0);
	struct ctl_run r = ctl(db, "migrate", NULL);
	ctl_run_free(&r);
	r = ctl(db, "supplier", "add", "acme", "--endpoint", "https://acme.example/orders",
	        "--secret", KEY1, "--secret", KEY2, NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "supplier acme created"));
	CU_ASSERT(!has(r.out, KEY1) && !has(r.err, KEY1));
	ctl_run_free(&r);
	/* Schema defaults: priority 100, active, 24 h to accept, 72 h to ship. */
	assert_value(db, SUPPLIER_SQL,
	             "https://acme.example/orders 100 t 86400 259200 {" KEY1 "," KEY2 "}");

	/* An existing code is refused without --update, and nothing changes. */
	r = ctl(db, "supplier", "add", "acme", "--priority", "7", NULL);
	CU_ASSERT_EQUAL(r.rc, 1);
	CU_ASSERT(has(r.err, "supplier add: supplier 'acme' already exists; add --update to change it"));
	ctl_run_free(&r);
	assert_value(db, SUPPLIER_SQL,
	             "https://acme.example/orders 100 t 86400 259200 {" KEY1 "," KEY2 "}");

	r = ctl(db, "supplier", "add", "acme", "--update", "--priority", "7", "--accept-within", "90m",
	        "--ship-within=1d12h", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "supplier acme updated"));
	ctl_run_free(&r);
	assert_value(db, SUPPLIER_SQL,
	             "https://acme.example/orders 7 t 5400 129600 {" KEY1 "," KEY2 "}");

	r = ctl(db, "supplier", "add", "acme", "--active", "false", "--secret", KEY2, "--endpoint",
	        "https://[2001:db8::1]:8443/v1?x=1", "--update", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	ctl_run_free(&r);
	assert_value(db, SUPPLIER_SQL,
	             "https://[2001:db8::1]:8443/v1?x=1 7 f 5400 129600 {" KEY2 "}");
	r = ctl(db, "supplier", "add", "acme", "--update", "--active=true", "--priority", "0", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	ctl_run_free(&r);
	assert_value(db, "SELECT priority || ' ' || active FROM suppliers", "0 true");
}

static void test_supplier_disable_enable(void)
{
	char db[512];
	catalog_db("dropship_catalog_supplier_active", db, sizeof db);
	const char *csv = write_csv("active.csv", HEADER "sup1,A,A1,1,0,3,1,*\n");
	struct ctl_run r = ctl(db, "catalog", "import", csv, NULL);
	ctl_run_free(&r);
	r = ctl(db, "supplier", "disable", "sup1", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_STRING_EQUAL(r.out ? r.out : "", "supplier sup1 disabled\n");
	ctl_run_free(&r);
	/* Out of routing; its offers stay in the catalog. */
	assert_value(db, "SELECT string_agg(code || '=' || active, ' ' ORDER BY code) FROM suppliers",
	             "sup1=false sup2=true sup3=true");
	assert_value(db, "SELECT count(*) FROM offers", "1");
	r = ctl(db, "supplier", "disable", "sup1", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "supplier sup1 was already disabled"));
	ctl_run_free(&r);
	r = ctl(db, "supplier", "list", NULL);
	CU_ASSERT(has(r.out, "\nsup1  https://sup.example/orders  100       false"));
	ctl_run_free(&r);
	r = ctl(db, "supplier", "enable", "sup1", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_STRING_EQUAL(r.out ? r.out : "", "supplier sup1 enabled\n");
	ctl_run_free(&r);
	assert_value(db, "SELECT active FROM suppliers WHERE code = 'sup1'", "t");
	r = ctl(db, "supplier", "enable", "acme", NULL);
	CU_ASSERT_EQUAL(r.rc, 1);
	CU_ASSERT(has(r.err, "supplier enable: no supplier 'acme'"));
	ctl_run_free(&r);
	CU_ASSERT_EQUAL(ctl_rc(db, "supplier", "disable", NULL), 2);
	CU_ASSERT_EQUAL(ctl_rc(db, "supplier", "disable", "sup1", "sup2", NULL), 2);
	CU_ASSERT_EQUAL(ctl_rc(db, "supplier", "enable", "-x", NULL), 2);
}

struct bad_case {
	const char *args[12];
	const char *names;             /* what the message must name */
};

static void test_supplier_add_rejects(void)
{
	static const struct bad_case cases[] = {
		{ { "supplier", "add", "bad code", "--endpoint", "https://a.example", "--secret", KEY1 },
		  "CODE 'bad code'" },
		{ { "supplier", "add", "x", "--endpoint", "http://a.example", "--secret", KEY1 },
		  "--endpoint must be an https:// URL" },
		{ { "supplier", "add", "x", "--endpoint", "https://", "--secret", KEY1 },
		  "--endpoint has no host" },
		{ { "supplier", "add", "x", "--endpoint", "https:///path", "--secret", KEY1 },
		  "--endpoint has no host" },
		{ { "supplier", "add", "x", "--endpoint", "https://a.example:0/", "--secret", KEY1 },
		  "--endpoint has a bad port" },
		{ { "supplier", "add", "x", "--endpoint", "https://a.example:x", "--secret", KEY1 },
		  "--endpoint has a bad port" },
		{ { "supplier", "add", "x", "--endpoint", "https://user:pw@a.example", "--secret",
		    KEY1 }, "--endpoint must not hold a user name or password" },
		{ { "supplier", "add", "x", "--endpoint", "https://a.example/a b", "--secret", KEY1 },
		  "--endpoint must not contain spaces" },
		{ { "supplier", "add", "x", "--endpoint", "https://a.example", "--secret",
		    "not-a-whsec-key" }, "--secret #1" },
		{ { "supplier", "add", "x", "--endpoint", "https://a.example", "--secret", KEY1,
		    "--secret", "whsec_c2hvcnQ=" }, "--secret #2" },
		{ { "supplier", "add", "x", "--endpoint", "https://a.example", "--secret", KEY1,
		    "--priority", "1000001" }, "--priority" },
		{ { "supplier", "add", "x", "--endpoint", "https://a.example", "--secret", KEY1,
		    "--priority", "-1" }, "--priority" },
		{ { "supplier", "add", "x", "--endpoint", "https://a.example", "--secret", KEY1,
		    "--priority", " 5" }, "--priority" },
		{ { "supplier", "add", "x", "--endpoint", "https://a.example", "--secret", KEY1,
		    "--active", "yes" }, "--active must be true or false" },
		{ { "supplier", "add", "x", "--endpoint", "https://a.example", "--secret", KEY1,
		    "--accept-within", "90" }, "--accept-within must be a duration" },
		{ { "supplier", "add", "x", "--endpoint", "https://a.example", "--secret", KEY1,
		    "--accept-within", "1.5h" }, "--accept-within" },
		{ { "supplier", "add", "x", "--endpoint", "https://a.example", "--secret", KEY1,
		    "--ship-within", "0h" }, "--ship-within" },
		{ { "supplier", "add", "x", "--endpoint", "https://a.example", "--secret", KEY1,
		    "--ship-within", "366d" }, "--ship-within" },
		{ { "supplier", "add", "x", "--endpoint", "https://a.example", "--secret", KEY1,
		    "--ship-within", "99999999999999999999d" }, "--ship-within" },
		{ { "supplier", "add", "x", "--secret", KEY1 }, "--endpoint is required" },
		{ { "supplier", "add", "x", "--endpoint", "https://a.example" }, "--secret is required" },
		{ { "supplier", "add", "x", "--endpoint" }, "--endpoint needs a value" },
		{ { "supplier", "add", "--endpoint", "https://a.example", "--secret", KEY1 },
		  "missing CODE" },
		{ { "supplier", "add", "x", "y" }, "'y'" },
		{ { "supplier", "add", "x", "--format", "native" }, "'--format'" },
	};
	char db[512];
	CU_ASSERT_EQUAL_FATAL(testdb_create("dropship_catalog_supplier_bad", db, sizeof db), 0);
	struct ctl_run r = ctl(db, "migrate", NULL);
	ctl_run_free(&r);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		r = ctl_argv(db, NULL, cases[i].args);
		CU_ASSERT_EQUAL(r.rc, 2);
		CU_ASSERT(has(r.err, cases[i].names));
		CU_ASSERT(has(r.err, "--help"));
		CU_ASSERT(!has(r.err, "not-a-whsec-key") && !has(r.err, ":pw@"));
		ctl_run_free(&r);
	}
	assert_value(db, "SELECT count(*) FROM suppliers", "0");
	/* An update needs neither endpoint nor secret; a bad value still stops it. */
	r = ctl(db, "supplier", "add", "x", "--endpoint", "https://a.example", "--secret", KEY1, NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	ctl_run_free(&r);
	r = ctl(db, "supplier", "add", "x", "--update", "--priority", "5", "--ship-within", "2w", NULL);
	CU_ASSERT_EQUAL(r.rc, 2);
	ctl_run_free(&r);
	assert_value(db, "SELECT priority FROM suppliers", "100");
}

static void test_supplier_list(void)
{
	char db[512];
	catalog_db("dropship_catalog_supplier_list", db, sizeof db);
	struct ctl_run r = ctl(db, "supplier", "add", "alpha", "--endpoint", "https://alpha.example/o",
	                   "--secret", KEY1, "--secret", KEY2, "--priority", "5", "--accept-within",
	                   "90m", "--ship-within", "36h", "--active", "false", NULL);
	ctl_run_free(&r);
	const char *csv = write_csv("list.csv", HEADER "alpha,A,A1,1,0,1,1,*\nalpha,B,B1,1,0,1,1,*\n");
	r = ctl(db, "catalog", "import", csv, NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	ctl_run_free(&r);
	r = ctl(db, "supplier", "list", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "CODE   ENDPOINT                    PRIORITY  ACTIVE  ACCEPT_WITHIN  "
	                     "SHIP_WITHIN  SECRETS  OFFERS  CREATED_AT\n"));
	CU_ASSERT(has(r.out, "\nalpha  https://alpha.example/o     5         false   1h30m          "
	                     "1d12h        2        2       "));
	CU_ASSERT(has(r.out, "\nsup1   https://sup.example/orders  100       true    1d             "
	                     "3d           1        0       "));
	CU_ASSERT(!has(r.out, "whsec_"));
	ctl_run_free(&r);
	r = ctl(db, "supplier", "list", "extra", NULL);
	CU_ASSERT_EQUAL(r.rc, 2);
	ctl_run_free(&r);
}

static void test_import_good_file(void)
{
	char db[512];
	catalog_db("dropship_catalog_good", db, sizeof db);
	/* A byte order mark, CRLF, quoted commas and quotes, a line break inside
	 * a field, a blank line, lower-case countries, empty shipping cost. */
	const char *csv = write_csv("good.csv",
		"\xEF\xBB\xBF" "supplier,sku,supplier_sku,cost,shipping_cost,stock,lead_time_days,"
		"ships_to\r\n"
		"sup1,MUG-01,AC-MUG,12.50,1.5,10,3,US;ca\r\n"
		"sup2,MUG-01,\"BE,\"\"MUG\"\"\",11.9999,,0,0,*\r\n"
		"\r\n"
		"sup1,\"Mug, large\",\"two\nlines\",0.5,0,2147483647,365,\" gb ; DE;GB\"\r\n"
		"sup3,TEE-\xC3\xA9,T\\1,0012.50000,3,7,14,FR\r\n");
	struct ctl_run r = ctl(db, "catalog", "import", csv, NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "imported 4 offers (4 created, 0 updated, 0 unchanged, 0 stale) in "));
	CU_ASSERT(!has(r.err, "rows read"));
	ctl_run_free(&r);
	assert_value(db, OFFERS_SQL,
	             "sup1|MUG-01|AC-MUG|12.5000|1.5000|10|3|{CA,US}|t\n"
	             "sup1|Mug, large|two\nlines|0.5000|0.0000|2147483647|365|{DE,GB}|t\n"
	             "sup2|MUG-01|BE,\"MUG\"|11.9999|0.0000|0|0|*|t\n"
	             "sup3|TEE-\xC3\xA9|T\\1|12.5000|3.0000|7|14|{FR}|t");
	/* Standard input works the same; nothing differs, so nothing is written. */
	const char *args[] = { "catalog", "import", "-", NULL };
	r = ctl_argv(db, csv, args);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "imported 4 offers (0 created, 0 updated, 4 unchanged, 0 stale)"));
	ctl_run_free(&r);
}

static void test_reimport_updates(void)
{
	char db[512];
	catalog_db("dropship_catalog_update", db, sizeof db);
	const char *first = write_csv("first.csv", HEADER
		"sup1,A,A1,10,1,5,2,US\n"
		"sup1,B,B1,20,2,6,3,*\n"
		"sup2,A,A2,9,1,7,4,US;CA\n");
	struct ctl_run r = ctl(db, "catalog", "import", first, NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	ctl_run_free(&r);
	PGconn *conn = testdb_connect(db);
	CU_ASSERT_PTR_NOT_NULL_FATAL(conn);
	/* What dropshipd does meanwhile: a reservation takes stock (and says so
	 * in offer_moves), a rejection marks an offer unavailable. The next
	 * file was written after both, so its values win again. */
	CU_ASSERT_EQUAL(testdb_exec(conn, "WITH o AS (UPDATE offers SET stock = stock - 2 WHERE sku = 'A'"
	                            " AND supplier_id = (SELECT id FROM suppliers WHERE code = 'sup2')"
	                            " RETURNING id) INSERT INTO offer_moves (offer_id, delta)"
	                            " SELECT id, -2 FROM o", 0, NULL), 0);
	CU_ASSERT_EQUAL(testdb_exec(conn, "UPDATE offers SET available = false WHERE sku = 'B'", 0,
	                            NULL), 0);
	char *stamp = testdb_value(conn, "SELECT updated_at::text FROM offers WHERE sku = 'A' AND"
	                           " supplier_sku = 'A1'", 0, NULL);
	char *ids = testdb_value(conn, "SELECT string_agg(id::text, ',' ORDER BY id) FROM offers", 0,
	                         NULL);
	const char *second = write_csv("second.csv", HEADER
		"sup1,A,A1,10,1,5,2,US\n"        /* as stored: unchanged */
		"sup1,B,B1,20,2,6,3,*\n"         /* only available changes back */
		"sup2,A,A2,9,1,7,4,CA;US\n"      /* stock back to 7 */
		"sup3,A,A3,8,0,50,5,*\n");       /* new */
	r = ctl(db, "catalog", "import", second, NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "imported 4 offers (1 created, 2 updated, 1 unchanged, 0 stale)"));
	ctl_run_free(&r);
	assert_value(db, OFFERS_SQL,
	             "sup1|A|A1|10.0000|1.0000|5|2|{US}|t\n"
	             "sup1|B|B1|20.0000|2.0000|6|3|*|t\n"
	             "sup2|A|A2|9.0000|1.0000|7|4|{CA,US}|t\n"
	             "sup3|A|A3|8.0000|0.0000|50|5|*|t");
	char *stamp2 = testdb_value(conn, "SELECT updated_at::text FROM offers WHERE sku = 'A' AND"
	                            " supplier_sku = 'A1'", 0, NULL);
	CU_ASSERT(stamp && stamp2 && strcmp(stamp, stamp2) == 0);
	/* Updated in place: the three offers keep their ids. */
	char *ids2 = testdb_value(conn, "SELECT string_agg(id::text, ',' ORDER BY id) FROM offers"
	                          " WHERE supplier_sku <> 'A3'", 0, NULL);
	CU_ASSERT(ids && ids2 && strcmp(ids, ids2) == 0);
	free(stamp);
	free(stamp2);
	free(ids);
	free(ids2);

	/* --dry-run counts, then changes nothing. */
	const char *third = write_csv("third.csv", HEADER "sup1,A,A1,10,1,99,2,US\n"
	                                                  "sup1,C,C1,1,0,1,1,*\n");
	r = ctl(db, "catalog", "import", "--dry-run", third, NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "dry run: would import 2 offers (1 created, 1 updated, 0 unchanged, 0 stale)"));
	CU_ASSERT(has(r.out, "nothing changed"));
	ctl_run_free(&r);
	CU_ASSERT_EQUAL(testdb_count(conn, "SELECT count(*) FROM offers", 0, NULL), 4);
	CU_ASSERT_EQUAL(testdb_count(conn, "SELECT stock FROM offers WHERE supplier_sku = 'A1'", 0,
	                             NULL), 5);
	PQfinish(conn);
}

static void test_import_bad_rows(void)
{
	char db[512];
	catalog_db("dropship_catalog_bad", db, sizeof db);
	const char *good = write_csv("base.csv", HEADER "sup1,MUG-01,AC-MUG,12.50,1.5,10,3,US\n"
	                                                "sup2,MUG-01,B-MUG,11,0,4,5,*\n");
	struct ctl_run r = ctl(db, "catalog", "import", good, NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	ctl_run_free(&r);
	char *before = value(db, OFFERS_SQL);

	const char *bad = write_csv("bad.csv", HEADER
		"sup1,MUG-01,AC-MUG,13,1.5,99,3,US\n"              /* 2: valid, an update */
		"nosuch,MUG-02,X,1,0,1,1,*\n"                        /* 3 */
		"sup1,MUG-03,X,\"12,5\",0,1,1,*\n"                   /* 4 */
		"sup2,\"multi\nline\",X,1,0,-3,1,*\n"                /* 5-6 */
		"sup2,MUG-05,X,1,0,3,1,US;XX\n"                      /* 7 */
		"sup3,NEW,X,1,0,3,1,*\n"                             /* 8: valid, new */
		"sup1,MUG-01,AC-MUG2,12.50,1.5,10,3,US\n"            /* 9: repeats line 2 */
		"sup1,MUG-06,X,1,0,3,1\n"                            /* 10 */
		"sup1,MUG-07,X,1,0,3,1,*,extra\n"                    /* 11 */
		"sup1,MUG-08,X,1.00001,0,3,1,*\n"                    /* 12 */
		"sup1,MUG-09,X,1,0,3,400,*\n"                        /* 13 */
		"sup1,MUG-10,X,1,0,3,1,*\n");                        /* 14: valid */
	r = ctl(db, "catalog", "import", bad, NULL);
	CU_ASSERT_EQUAL(r.rc, 1);
	/* Every message names the file; ISO C has no positional arguments. */
	static const char *const msgs[] = {
		":3: column supplier: \"nosuch\" is not a known supplier\n",
		":4: column cost: \"12,5\" is not a decimal number\n",
		":5: column stock: \"-3\" is negative\n",
		":7: column ships_to: \"XX\" is not an ISO 3166-1 alpha-2 country code\n",
		":9: column sku: \"MUG-01\" of supplier \"sup1\" is a duplicate of line 2\n",
		":10: expected 8 columns, found 7\n",
		":11: expected 8 columns, found 9\n",
		":12: column cost: \"1.00001\" has more than 4 decimal places\n",
		":13: column lead_time_days: \"400\" is out of range (0 to 365)\n",
	};
	char want[2048];
	size_t w = 0;
	for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++)
		w += (size_t)snprintf(want + w, sizeof want - w, "%s%s", bad, msgs[i]);
	snprintf(want + w, sizeof want - w, "dropshipctl: catalog import: 9 errors in %s; nothing was imported\n",
	         bad);
	CU_ASSERT_STRING_EQUAL(r.err ? r.err : "", want);
	CU_ASSERT(!has(r.out, "imported"));
	ctl_run_free(&r);
	char *after = value(db, OFFERS_SQL);
	CU_ASSERT_STRING_EQUAL(after, before);
	free(after);

	/* A bad header stops at line 1; so does an empty file. */
	const char *header = write_csv("header.csv", "supplier,sku,cost\nsup1,A,1\n");
	r = ctl(db, "catalog", "import", header, NULL);
	CU_ASSERT_EQUAL(r.rc, 1);
	CU_ASSERT(has(r.err, ":1: expected header supplier,sku,supplier_sku,cost,shipping_cost,stock,"
	                     "lead_time_days,ships_to; found 3 columns\n"));
	ctl_run_free(&r);
	const char *empty = write_csv("empty.csv", "");
	r = ctl(db, "catalog", "import", empty, NULL);
	CU_ASSERT_EQUAL(r.rc, 1);
	CU_ASSERT(has(r.err, "empty.csv:1: expected header"));
	ctl_run_free(&r);
	/* A quote left open swallows the rest: reported where it starts. */
	const char *open_quote = write_csv("open.csv", HEADER "sup1,A,A1,1,0,1,1,*\n"
	                                                      "sup1,\"B,B1,1,0,1,1,*\nsup1,C,C1,1,0,1,1,*\n");
	r = ctl(db, "catalog", "import", open_quote, NULL);
	CU_ASSERT_EQUAL(r.rc, 1);
	CU_ASSERT(has(r.err, "open.csv:3: column sku: quoted field not closed before the end of the "
	                     "file\n"));
	ctl_run_free(&r);
	after = value(db, OFFERS_SQL);
	CU_ASSERT_STRING_EQUAL(after, before);
	free(after);
	free(before);

	r = ctl(db, "catalog", "import", tmp_path("missing.csv"), NULL);
	CU_ASSERT_EQUAL(r.rc, 1);
	CU_ASSERT(has(r.err, "cannot open") && has(r.err, "missing.csv"));
	ctl_run_free(&r);
	r = ctl(db, "catalog", "import", NULL);
	CU_ASSERT_EQUAL(r.rc, 2);
	CU_ASSERT(has(r.err, "missing FILE"));
	ctl_run_free(&r);
	r = ctl(db, "catalog", "import", good, "--force", NULL);
	CU_ASSERT_EQUAL(r.rc, 2);
	CU_ASSERT(has(r.err, "'--force'"));
	ctl_run_free(&r);
}

/* Past 100 errors the list is cut, but the count is of all of them. */
static void test_import_many_errors(void)
{
	char db[512];
	catalog_db("dropship_catalog_many_errors", db, sizeof db);
	const char *path = tmp_path("many.csv");
	FILE *f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(HEADER, f);
	for (int i = 0; i < 150; i++)
		fprintf(f, "sup1,A%d,X,bad,0,1,1,*\nzzz,B%d,X,1,0,1,1,*\n", i, i);
	fclose(f);
	struct ctl_run r = ctl(db, "catalog", "import", path, NULL);
	CU_ASSERT_EQUAL(r.rc, 1);
	int lines = 0;
	for (const char *p = r.err; p && (p = strchr(p, '\n')) != NULL; p++)
		lines++;
	CU_ASSERT_EQUAL(lines, 102);
	CU_ASSERT(has(r.err, "many.csv:100: column cost: \"bad\" is not a decimal number\n"));
	CU_ASSERT(has(r.err, "many.csv:101: column supplier: \"zzz\" is not a known supplier\n"));
	CU_ASSERT(!has(r.err, "many.csv:102:"));
	CU_ASSERT(has(r.err, "\n... and 200 more errors\n"));
	CU_ASSERT(has(r.err, "300 errors in"));
	ctl_run_free(&r);
	assert_value(db, "SELECT count(*) FROM offers", "0");
}

/* tests/gen-catalog.sh output, large enough to cross COPY buffers. */
static void test_import_50k_rows(void)
{
	char db[512], script[512];
	catalog_db("dropship_catalog_50k", db, sizeof db);
	const char *root = getenv("DROPSHIP_TEST_ROOT");
	snprintf(script, sizeof script, "%s/tests/gen-catalog.sh", root ? root : ".");
	const char *path = tmp_path("50k.csv");
	const char *gen[] = { "sh", "-c", "sh \"$1\" 50000 3 > \"$2\"", "sh", script, path, NULL };
	CU_ASSERT_EQUAL_FATAL(proc_run(gen, NULL, NULL, NULL), 0);
	struct ctl_run r = ctl(db, "catalog", "import", path, NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "imported 50000 offers (50000 created, 0 updated, 0 unchanged, 0 stale)"));
	ctl_run_free(&r);
	assert_value(db, "SELECT count(*) || ' ' || count(DISTINCT sku) || ' ' ||"
	                 " count(*) FILTER (WHERE ships_to IS NULL) FROM offers", "50000 16667 9999");
	assert_value(db, "SELECT concat_ws('|', o.supplier_sku, o.cost, o.ships_to) FROM offers o"
	                 " JOIN suppliers s ON s.id = o.supplier_id"
	                 " WHERE s.code = 'sup1' AND o.sku = 'SKU-0016663'",
	             "S1-0016663|311.6400|{CA,MX,US}");
}

/* A time offset from now by an interval, on a whole second, as RFC 3339. */
static char *time_at(PGconn *conn, const char *offset)
{
	const char *p[] = { offset };
	char *t = testdb_value(conn, "SELECT to_char(date_trunc('second', now() + $1::interval)"
	                             " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')", 1, p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	return t;
}

/* Imports path as of as_of (NULL: the file's own time); it must print want. */
static void import_prints(const char *db, const char *path, const char *as_of, const char *want)
{
	struct ctl_run r = as_of ? ctl(db, "catalog", "import", path, "--as-of", as_of, NULL)
	                         : ctl(db, "catalog", "import", path, NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, want));
	if (!has(r.out, want))
		printf("\nwant: %s\n", want);
	ctl_run_free(&r);
}

#define STOCK_SQL "SELECT string_agg(sku || '=' || stock, ' ' ORDER BY sku) FROM offers"

/* A level is the supplier's stock at its time: what was reserved after it
 * still counts, what was reserved before it is in the level already. */
static void test_import_as_of(void)
{
	char db[512];
	catalog_db("dropship_catalog_as_of", db, sizeof db);
	PGconn *conn = testdb_connect(db);
	CU_ASSERT_PTR_NOT_NULL_FATAL(conn);
	char *t0 = time_at(conn, "-40 minutes"), *t = time_at(conn, "-30 minutes");
	char *older = time_at(conn, "-35 minutes"), *t5 = time_at(conn, "-25 minutes");
	import_prints(db, write_csv("t0.csv", HEADER "sup1,A,A1,1,0,10,1,*\nsup1,B,B1,1,0,5,1,*\n"), t0,
	              "imported 2 offers (2 created, 0 updated, 0 unchanged, 0 stale)");
	const char *p[] = { t0 };
	CU_ASSERT_EQUAL(testdb_count(conn, "SELECT count(*) FROM offers WHERE level_as_of = $1::timestamptz",
	                             1, p), 2);

	/* dropshipd reserves 2 of A a minute after T (the export cannot know)
	 * and 5 a minute before it (the export counted them already). */
	const char *pt[] = { t };
	CU_ASSERT_EQUAL(testdb_exec(conn, "WITH o AS (UPDATE offers SET stock = stock - 7 WHERE sku = 'A'"
	                                  " RETURNING id)"
	                                  " INSERT INTO offer_moves (offer_id, at, delta)"
	                                  " SELECT id, $1::timestamptz + interval '1 minute', -2 FROM o"
	                                  " UNION ALL SELECT id, $1::timestamptz - interval '1 minute', -5 FROM o",
	                            1, pt), 0);
	assert_value(db, STOCK_SQL, "A=3 B=5");
	/* The export at T: A's level 12 less the 2 reserved since. */
	const char *at_t = write_csv("t.csv", HEADER "sup1,A,A1,1,0,12,1,*\nsup1,B,B1,1,0,5,1,*\n");
	import_prints(db, at_t, t, "imported 2 offers (0 created, 1 updated, 1 unchanged, 0 stale)");
	assert_value(db, STOCK_SQL, "A=10 B=5");
	/* Applied again, it gives the same: nothing counts twice. */
	import_prints(db, at_t, t, "imported 2 offers (0 created, 0 updated, 2 unchanged, 0 stale)");
	assert_value(db, STOCK_SQL, "A=10 B=5");

	/* A level older than the last one applied is stale: nothing changes. */
	import_prints(db, write_csv("old.csv", HEADER "sup1,A,A1,9,0,50,1,*\nsup1,B,B1,1,0,50,1,*\n"),
	              older, "imported 2 offers (0 created, 0 updated, 0 unchanged, 2 stale)");
	assert_value(db, "SELECT string_agg(sku || '=' || stock || '@' || cost, ' ' ORDER BY sku) FROM offers",
	             "A=10@1.0000 B=5@1.0000");
	CU_ASSERT_EQUAL(testdb_count(conn, "SELECT count(*) FROM offers WHERE level_as_of = $1::timestamptz",
	                             1, pt), 2);

	/* Without --as-of, the file's modification time: after both moves. */
	const char *late = write_csv("late.csv", HEADER "sup1,A,A1,1,0,20,1,*\n");
	const char *pm[] = { t5 };
	char *epoch = testdb_value(conn, "SELECT extract(epoch FROM $1::timestamptz)::bigint", 1, pm);
	char stamp[32];
	snprintf(stamp, sizeof stamp, "@%s", epoch ? epoch : "0");
	const char *touch[] = { "touch", "-d", stamp, late, NULL };
	CU_ASSERT_EQUAL(proc_run(touch, NULL, NULL, NULL), 0);
	import_prints(db, late, NULL, "imported 1 offer (0 created, 1 updated, 0 unchanged, 0 stale)");
	assert_value(db, STOCK_SQL, "A=20 B=5");
	CU_ASSERT_EQUAL(testdb_count(conn, "SELECT count(*) FROM offers WHERE sku = 'A'"
	                                   " AND level_as_of = $1::timestamptz", 1, pm), 1);
	/* Standard input has no time of its own: now. */
	const char *args[] = { "catalog", "import", "-", NULL };
	struct ctl_run r = ctl_argv(db, write_csv("now.csv", HEADER "sup1,A,A1,1,0,30,1,*\n"), args);
	CU_ASSERT_EQUAL(r.rc, 0);
	ctl_run_free(&r);
	assert_value(db, STOCK_SQL, "A=30 B=5");
	CU_ASSERT_EQUAL(testdb_count(conn, "SELECT count(*) FROM offers WHERE sku = 'A'"
	                                   " AND level_as_of > now() - interval '1 minute'", 0, NULL), 1);

	/* Too old to know what was reserved since, too far ahead, not a time. */
	char *week = time_at(conn, "-8 days"), *ahead = time_at(conn, "1 day");
	r = ctl(db, "catalog", "import", at_t, "--as-of", week, NULL);
	CU_ASSERT_EQUAL(r.rc, 1);
	CU_ASSERT(has(r.err, "catalog import: --as-of ") && has(r.err, " is more than 7 days ago"));
	ctl_run_free(&r);
	r = ctl(db, "catalog", "import", at_t, "--as-of", ahead, NULL);
	CU_ASSERT_EQUAL(r.rc, 1);
	CU_ASSERT(has(r.err, "ahead of the database's clock"));
	ctl_run_free(&r);
	const char *old_file = write_csv("week.csv", HEADER "sup1,A,A1,1,0,99,1,*\n");
	const char *touch_old[] = { "sh", "-c", "touch -d \"$1\" \"$2\"", "sh", week, old_file, NULL };
	CU_ASSERT_EQUAL(proc_run(touch_old, NULL, NULL, NULL), 0);
	r = ctl(db, "catalog", "import", old_file, NULL);
	CU_ASSERT_EQUAL(r.rc, 1);
	CU_ASSERT(has(r.err, "the file's modification time") && has(r.err, "more than 7 days ago"));
	ctl_run_free(&r);
	r = ctl(db, "catalog", "import", at_t, "--as-of", "yesterday", NULL);
	CU_ASSERT_EQUAL(r.rc, 2);
	CU_ASSERT(has(r.err, "--as-of must be an RFC 3339 time"));
	ctl_run_free(&r);
	CU_ASSERT_EQUAL(ctl_rc(db, "catalog", "import", at_t, "--as-of", NULL), 2);
	assert_value(db, STOCK_SQL, "A=30 B=5");
	free(t0), free(t), free(older), free(t5), free(epoch), free(week), free(ahead);
	PQfinish(conn);
}

static bool notified(void *arg)
{
	PGconn *conn = arg;
	PQconsumeInput(conn);
	PGnotify *n = PQnotifies(conn);
	bool got = n && strcmp(n->relname, "dropship_stock") == 0;
	PQfreemem(n);
	return got;
}

/* The SKUs whose offers gained stock, or came back with stock, are those
 * whose waiting lines dropshipd plans again; it is told after COMMIT. */
static void test_import_marks_skus(void)
{
	char db[512];
	catalog_db("dropship_catalog_skus", db, sizeof db);
	PGconn *conn = testdb_connect(db);
	CU_ASSERT_PTR_NOT_NULL_FATAL(conn);
	char *t0 = time_at(conn, "-20 minutes"), *t1 = time_at(conn, "-10 minutes");
	import_prints(db, write_csv("base.csv", HEADER "sup1,A,A1,1,0,5,1,*\nsup1,B,B1,1,0,5,1,*\n"
	                                               "sup1,C,C1,1,0,5,1,*\nsup1,E,E1,1,0,0,1,*\n"
	                                               "sup2,A,A2,1,0,5,1,*\n"), t0,
	              "(5 created");
	/* A supplier's rejection marked C unavailable. */
	CU_ASSERT_EQUAL(testdb_exec(conn, "UPDATE offers SET available = false WHERE sku = 'C'", 0, NULL), 0);
	CU_ASSERT_EQUAL(testdb_exec(conn, "DELETE FROM sku_changes", 0, NULL), 0);
	CU_ASSERT_EQUAL(testdb_exec(conn, "LISTEN dropship_stock", 0, NULL), 0);

	const char *next = write_csv("next.csv", HEADER
		"sup1,A,A1,1,0,9,1,*\n"          /* gains */
		"sup1,B,B1,1,0,1,1,*\n"          /* loses */
		"sup1,C,C1,1,0,5,1,*\n"          /* available again, with stock */
		"sup1,E,E1,2,0,0,1,*\n"          /* dearer, still none */
		"sup2,A,A2,1,0,5,1,*\n"          /* as it was */
		"sup1,D,D1,1,0,3,1,*\n"          /* new, with stock */
		"sup1,F,F1,1,0,0,1,*\n");        /* new, without */
	/* A dry run tells nobody and keeps nothing. */
	struct ctl_run r = ctl(db, "catalog", "import", next, "--as-of", t1, "--dry-run", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "would import 7 offers (2 created, 4 updated, 1 unchanged, 0 stale)"));
	ctl_run_free(&r);
	assert_value(db, "SELECT count(*) FROM sku_changes", "0");
	CU_ASSERT(!wait_until(notified, conn, 300, 50));

	import_prints(db, next, t1, "imported 7 offers (2 created, 4 updated, 1 unchanged, 0 stale)");
	assert_value(db, "SELECT string_agg(sku, ' ' ORDER BY sku) FROM sku_changes", "A C D");
	CU_ASSERT(wait_until(notified, conn, 5000, 50));

	/* Nothing gained: nothing marked, nobody told. */
	CU_ASSERT_EQUAL(testdb_exec(conn, "DELETE FROM sku_changes", 0, NULL), 0);
	import_prints(db, next, t1, "(0 created, 0 updated, 7 unchanged, 0 stale)");
	assert_value(db, "SELECT count(*) FROM sku_changes", "0");
	CU_ASSERT(!wait_until(notified, conn, 300, 50));
	free(t0), free(t1);
	PQfinish(conn);
}

/* A second import waits for the first one's transaction, then runs. */
static void test_imports_take_turns(void)
{
	char db[512], url[600];
	catalog_db("dropship_catalog_turns", db, sizeof db);
	const char *csv = write_csv("turns.csv", HEADER "sup1,A,A1,1,0,1,1,*\n");
	const char *log = tmp_path("turns.log");
	PGconn *holder = testdb_connect(db);
	CU_ASSERT_PTR_NOT_NULL_FATAL(holder);
	/* What a running import holds: "catalog" in ASCII as a bigint. */
	CU_ASSERT_EQUAL_FATAL(testdb_exec(holder, "SELECT pg_advisory_lock(27973175172951911)", 0,
	                                  NULL), 0);
	snprintf(url, sizeof url, "DROPSHIP_DATABASE_URL=%s", db);
	const char *env[] = { url, NULL };
	const char *argv[] = { proc_build_path("dropshipctl"), "catalog", "import", csv, NULL };
	pid_t pid = proc_spawn(argv, env, log);
	CU_ASSERT_FATAL(pid > 0);
	CU_ASSERT_EQUAL(proc_wait_line(log, "waiting for another catalog import to finish", 20000,
	                               NULL, 0), 0);
	assert_value(db, "SELECT count(*) FROM offers", "0");
	CU_ASSERT_EQUAL(testdb_exec(holder, "SELECT pg_advisory_unlock(27973175172951911)", 0, NULL),
	                0);
	CU_ASSERT_EQUAL(proc_stop(pid, 0, 30000), 0);
	CU_ASSERT_EQUAL(proc_wait_line(log, "imported 1 offer (1 created", 5000, NULL, 0), 0);
	PQfinish(holder);
	assert_value(db, "SELECT count(*) FROM offers", "1");
}

static int suite_init(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/dropship-catalog.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int suite_cleanup(void)
{
	const char *argv[] = { "rm", "-rf", tmpdir, NULL };
	return proc_run(argv, NULL, NULL, NULL) == 0 ? 0 : -1;
}

int main(void)
{
	static const struct harness_test tests[] = {
		{ "supplier add creates, then updates only what is given", test_supplier_add_and_update },
		{ "supplier add rejects bad input and writes nothing", test_supplier_add_rejects },
		{ "supplier list shows durations and offers, not secrets", test_supplier_list },
		{ "supplier disable and enable", test_supplier_disable_enable },
		{ "a good file imports exactly its values", test_import_good_file },
		{ "re-import updates in place, sets stock, skips unchanged", test_reimport_updates },
		{ "bad rows are each reported by line and nothing changes", test_import_bad_rows },
		{ "errors past 100 are counted, not printed", test_import_many_errors },
		{ "50,000 generated rows import", test_import_50k_rows },
		{ "concurrent imports take turns", test_imports_take_turns },
		{ "levels apply as of their time, net of later reservations", test_import_as_of },
		{ "SKUs that gain stock are marked, and dropshipd told", test_import_marks_skus },
		{ NULL, NULL },
	};
	return harness_main("catalog", suite_init, suite_cleanup, tests);
}
