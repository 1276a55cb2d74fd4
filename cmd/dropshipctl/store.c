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
	/* The store's platform API (docs/storefronts.md, Shipments): */
	const char *platform_url;      /* "" clears the connection, credentials too */
	const char *platform_token;    /* Shopify access token (a secret, never echoed) */
	const char *platform_key;      /* WooCommerce consumer key (likewise) */
	const char *platform_secret;   /* WooCommerce consumer secret (likewise) */
	const char *notify;            /* --notify-customer yes|no */
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

/* A platform credential: printable ASCII without spaces, at most
 * CTL_SECRET_MAX bytes, starting with prefix (NULL: any). Never echoed. */
static int ctl_check_credential(const char *opt, const char *v, const char *prefix)
{
	size_t n = strlen(v);
	if (n == 0 || n > CTL_SECRET_MAX)
		return ctl_usage_error("%s must be 1 to %d bytes (got %zu)", opt, CTL_SECRET_MAX, n);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p <= ' ' || *p >= 0x7f)
			return ctl_usage_error("%s must be printable ASCII without spaces", opt);
	if (prefix && strncmp(v, prefix, strlen(prefix)) != 0)
		return ctl_usage_error("%s must start with %s (WooCommerce > Settings > Advanced > REST API)",
		                       opt, prefix);
	return CTL_OK;
}

/* The platform options, without the database. */
static int ctl_store_validate_platform(const struct ctl_store_opts *o)
{
	if (o->platform_url && o->platform_url[0] &&
	    ctl_check_url("--platform-url", o->platform_url) != CTL_OK)
		return CTL_USAGE;
	if (o->platform_url && !o->platform_url[0] && (o->platform_token || o->platform_key || o->platform_secret))
		return ctl_usage_error("--platform-url \"\" removes the platform connection: give no credentials "
		                       "with it");
	if (o->platform_token && ctl_check_credential("--platform-token", o->platform_token, NULL) != CTL_OK)
		return CTL_USAGE;
	if (o->platform_key && ctl_check_credential("--platform-key", o->platform_key, "ck_") != CTL_OK)
		return CTL_USAGE;
	if (o->platform_secret && ctl_check_credential("--platform-secret", o->platform_secret, "cs_") != CTL_OK)
		return CTL_USAGE;
	if (o->notify && strcmp(o->notify, "yes") != 0 && strcmp(o->notify, "no") != 0)
		return ctl_usage_error("--notify-customer must be yes or no (got '%s')", o->notify);
	return CTL_OK;
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
	if (ctl_store_validate_platform(o) != CTL_OK)
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
		{ "--platform-url", &o->platform_url },
		{ "--platform-token", &o->platform_token },
		{ "--platform-key", &o->platform_key },
		{ "--platform-secret", &o->platform_secret },
		{ "--notify-customer", &o->notify },
		{ NULL, NULL },
	};
	int rc = ctl_parse_add(argc, argv, "store", "store add CODE --secret S ...", opts, &o->code,
	                       &o->secrets, &o->update);
	return rc == CTL_OK ? ctl_store_validate(o) : rc;
}

/* The platform options fit format: Shopify takes a token, WooCommerce a
 * key and secret, a native store none; a new connection (--platform-url)
 * comes with its credentials. */
static int ctl_store_check_platform(const struct ctl_store_opts *o, const char *format)
{
	int shopify = strcmp(format, "shopify") == 0, woo = strcmp(format, "woocommerce") == 0;
	int given = o->platform_url || o->platform_token || o->platform_key || o->platform_secret || o->notify;
	if (given && !shopify && !woo)
		return ctl_usage_error("--platform-*: store '%s' is %s; only shopify and woocommerce stores have a "
		                       "platform to tell of shipments", o->code, format);
	if (shopify && (o->platform_key || o->platform_secret))
		return ctl_usage_error("--platform-key/--platform-secret are for woocommerce stores; a shopify store "
		                       "takes --platform-token");
	if (woo && o->platform_token)
		return ctl_usage_error("--platform-token is for shopify stores; a woocommerce store takes "
		                       "--platform-key and --platform-secret");
	if (woo && o->notify)
		return ctl_usage_error("--notify-customer is for shopify stores (WooCommerce emails each customer "
		                       "note)");
	if (o->platform_url && o->platform_url[0] && shopify && !o->platform_token)
		return ctl_usage_error("--platform-url needs --platform-token (the Admin API access token)");
	if (o->platform_url && o->platform_url[0] && woo && (!o->platform_key || !o->platform_secret))
		return ctl_usage_error("--platform-url needs --platform-key and --platform-secret (a REST API key "
		                       "with Read/Write access)");
	return CTL_OK;
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
	return ctl_store_check_platform(o, format);
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
	if (o.platform_url && !o.platform_url[0]) {
		/* "" removes the connection and its credentials. */
		static const char *const cols[] = {
			"platform_url", "platform_token", "platform_key", "platform_secret",
		};
		for (size_t i = 0; i < 4; i++) {
			u.cols[u.n] = cols[i];
			u.vals[u.n++] = NULL;
		}
	} else {
		ctl_upsert_set(&u, "platform_url", o.platform_url);
		ctl_upsert_set(&u, "platform_token", o.platform_token);
		ctl_upsert_set(&u, "platform_key", o.platform_key);
		ctl_upsert_set(&u, "platform_secret", o.platform_secret);
	}
	ctl_upsert_set(&u, "platform_notify", o.notify ? (strcmp(o.notify, "yes") == 0 ? "true" : "false") : NULL);
	return ctl_upsert_row(c, &u);
}

int ctl_cmd_store_list(struct ctl *c, int argc, char **argv)
{
	static const char *const head[] = { "CODE", "FORMAT", "POLICY", "SPLIT%", "PENALTY", "MIN_ACCEPT%",
	                                    "MIN_ON_TIME%", "ACTIVE", "SECRETS", "CALLBACK_URL", "PLATFORM_URL",
	                                    "CREATED_AT" };
	return ctl_list(c, argc, argv, "store list",
	                "SELECT code, format, policy, split_tolerance_pct::text, penalty::text,"
	                " min_acceptance_rate::text, min_on_time_rate::text, active::text,"
	                " cardinality(secrets)::text, coalesce(callback_url, '-'), coalesce(platform_url, '-'),"
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
