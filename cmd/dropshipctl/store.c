/* dropshipctl store add / list / disable / enable. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

struct ctl_store_opts {
	const char *code;
	struct ctl_secrets secrets;
	const char *format;            /* NULL = keep (or default on create) */
	const char *policy;            /* likewise */
	const char *split;             /* split tolerance percent, as given */
	const char *penalty;           /* money, as given */
	const char *min_acceptance;    /* percent, as given */
	const char *min_on_time;
	const char *callback;          /* "" clears it */
	int update;                    /* --update */
};

static const char *const ctl_formats[] = { "native", "shopify", "woocommerce", NULL };
static const char *const ctl_policies[] = { "cheapest", "fastest", "priority", "balanced", NULL };

static int ctl_one_of(const char *v, const char *const *allowed)
{
	for (; *allowed; allowed++)
		if (strcmp(v, *allowed) == 0)
			return 1;
	return 0;
}

/* Everything that can be checked without the database. */
static int ctl_store_validate(const struct ctl_store_opts *o)
{
	if (o->format && !ctl_one_of(o->format, ctl_formats))
		return ctl_usage_error("--format must be native, shopify or woocommerce (got '%s')",
		                       o->format);
	if (o->policy && !ctl_one_of(o->policy, ctl_policies))
		return ctl_usage_error("--policy must be cheapest, fastest, priority or balanced (got '%s')",
		                       o->policy);
	if (o->split && ctl_check_int("--split-tolerance", o->split, 0, 1000) != CTL_OK)
		return CTL_USAGE;
	if (o->penalty && ctl_check_decimal("--penalty", o->penalty, 1000000, 4) != CTL_OK)
		return CTL_USAGE;
	if (o->min_acceptance && ctl_check_decimal("--min-acceptance-rate", o->min_acceptance, 100, 2) != CTL_OK)
		return CTL_USAGE;
	if (o->min_on_time && ctl_check_decimal("--min-on-time-rate", o->min_on_time, 100, 2) != CTL_OK)
		return CTL_USAGE;
	if (o->callback && o->callback[0] && ctl_check_url("--callback-url", o->callback) != CTL_OK)
		return CTL_USAGE;
	/* Without --format the rules depend on the stored format, checked later. */
	for (size_t i = 0; i < o->secrets.n; i++) {
		int rc = ctl_check_secret(o->format ? o->format : "", i + 1, o->secrets.v[i]);
		if (rc != CTL_OK)
			return rc;
	}
	return CTL_OK;
}

static int ctl_store_parse(int argc, char **argv, struct ctl_store_opts *o)
{
	memset(o, 0, sizeof *o);
	const struct ctl_optdef opts[] = {
		{ "--format", &o->format },
		{ "--policy", &o->policy },
		{ "--split-tolerance", &o->split },
		{ "--penalty", &o->penalty },
		{ "--min-acceptance-rate", &o->min_acceptance },
		{ "--min-on-time-rate", &o->min_on_time },
		{ "--callback-url", &o->callback },
		{ NULL, NULL },
	};
	int rc = ctl_parse_add(argc, argv, "store", "store add CODE --secret S ...", opts, &o->code,
	                       &o->secrets, &o->update);
	return rc == CTL_OK ? ctl_store_validate(o) : rc;
}

/* The format the store will have, from --format or the locked row's; with
 * the rules that need the stored row. */
static int ctl_store_check_stored(const void *arg, const char *stored)
{
	const struct ctl_store_opts *o = arg;
	const char *format = o->format ? o->format : stored ? stored : "native";
	if (!stored && o->secrets.n == 0)
		return ctl_usage_error("store add: --secret is required to create store '%s'", o->code);
	if (stored && o->format && strcmp(o->format, stored) != 0 && o->secrets.n == 0)
		return ctl_usage_error("--format: changing store '%s' from %s to %s needs new --secret "
		                       "values", o->code, stored, o->format);
	for (size_t i = 0; !o->format && i < o->secrets.n; i++) {
		int rc = ctl_check_secret(format, i + 1, o->secrets.v[i]);
		if (rc != CTL_OK)
			return rc;
	}
	return CTL_OK;
}

int ctl_cmd_store_add(struct ctl *c, int argc, char **argv)
{
	struct ctl_store_opts o;
	int rc = ctl_store_parse(argc, argv, &o);
	if (rc != CTL_OK)
		return rc;

	struct ctl_upsert u = { .table = "stores", .noun = "store", .code = o.code,
	                        .secrets = &o.secrets, .stored_col = "format",
	                        .check = ctl_store_check_stored, .arg = &o, .update = o.update };
	ctl_upsert_set(&u, "format", o.format);
	ctl_upsert_set(&u, "policy", o.policy);
	ctl_upsert_set(&u, "split_tolerance_pct", o.split);
	ctl_upsert_set(&u, "penalty", o.penalty);
	ctl_upsert_set(&u, "min_acceptance_rate", o.min_acceptance);
	ctl_upsert_set(&u, "min_on_time_rate", o.min_on_time);
	if (o.callback) {
		/* "" removes it. */
		u.cols[u.n] = "callback_url";
		u.vals[u.n++] = o.callback[0] ? o.callback : NULL;
	}
	return ctl_upsert_row(c, &u);
}

int ctl_cmd_store_list(struct ctl *c, int argc, char **argv)
{
	static const char *const head[] = { "CODE", "FORMAT", "POLICY", "SPLIT%", "PENALTY", "MIN_ACCEPT%",
	                                    "MIN_ON_TIME%", "ACTIVE", "SECRETS", "CALLBACK_URL", "CREATED_AT" };
	return ctl_list(c, argc, argv, "store list",
	                "SELECT code, format, policy, split_tolerance_pct::text, penalty::text,"
	                " min_acceptance_rate::text, min_on_time_rate::text, active::text,"
	                " cardinality(secrets)::text, coalesce(callback_url, '-'),"
	                " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
	                " FROM stores ORDER BY code",
	                head, sizeof head / sizeof head[0],
	                "(no stores; add one with `" CTL_PROG " store add CODE --secret S`)");
}

int ctl_cmd_store_disable(struct ctl *c, int argc, char **argv)
{
	return ctl_set_active(c, argc, argv, "stores", "store", 0);
}

int ctl_cmd_store_enable(struct ctl *c, int argc, char **argv)
{
	return ctl_set_active(c, argc, argv, "stores", "store", 1);
}
