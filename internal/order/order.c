/* order: validation of native storefront webhook bodies (docs/api.md).
 * The first rule a body breaks is reported, in document order. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem/mem.h"
#include "order/order.h"

#define ORDER_MAX_TITLE 1024
#define ORDER_MAX_TEXT 256       /* address lines, names, phone */
#define ORDER_MAX_EMAIL 254      /* the longest address SMTP can carry */
#define PRICE_INT_DIGITS 16      /* order_lines.unit_price is numeric(20, 4) */
#define PRICE_FRAC_DIGITS 4
#define PRICE_MAX_INT 9999999999999999LL
#define REAL_SIG_DIGITS 15       /* DBL_DIG: what survives text -> double -> text */

/* ISO 3166-1 alpha-2, the 249 officially assigned codes. Sorted: bsearch. */
static const char countries[][3] = {
	"AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
	"BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
	"BT", "BV", "BW", "BY", "BZ",
	"CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW",
	"CX", "CY", "CZ",
	"DE", "DJ", "DK", "DM", "DO", "DZ",
	"EC", "EE", "EG", "EH", "ER", "ES", "ET",
	"FI", "FJ", "FK", "FM", "FO", "FR",
	"GA", "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT",
	"GU", "GW", "GY",
	"HK", "HM", "HN", "HR", "HT", "HU",
	"ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT",
	"JE", "JM", "JO", "JP",
	"KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ",
	"LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY",
	"MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS",
	"MT", "MU", "MV", "MW", "MX", "MY", "MZ",
	"NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ",
	"OM",
	"PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY",
	"QA",
	"RE", "RO", "RS", "RU", "RW",
	"SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
	"ST", "SV", "SX", "SY", "SZ",
	"TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW", "TZ",
	"UA", "UG", "UM", "US", "UY", "UZ",
	"VA", "VC", "VE", "VG", "VI", "VN", "VU",
	"WF", "WS",
	"YE", "YT",
	"ZA", "ZM", "ZW",
};

/* ISO 4217 list one (currencies, funds, metals, test and no-currency codes)
 * as of 2026-01-01: ZWG, XCG and XAD are in; HRK, ZWL, ANG, SLL, CUC and
 * BGN (euro since 2026) are historic. Sorted: bsearch. */
static const char currencies[][4] = {
	"AED", "AFN", "ALL", "AMD", "AOA", "ARS", "AUD", "AWG", "AZN",
	"BAM", "BBD", "BDT", "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP",
	"BYN", "BZD",
	"CAD", "CDF", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUP", "CVE",
	"CZK",
	"DJF", "DKK", "DOP", "DZD",
	"EGP", "ERN", "ETB", "EUR",
	"FJD", "FKP",
	"GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD",
	"HKD", "HNL", "HTG", "HUF",
	"IDR", "ILS", "INR", "IQD", "IRR", "ISK",
	"JMD", "JOD", "JPY",
	"KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT",
	"LAK", "LBP", "LKR", "LRD", "LSL", "LYD",
	"MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV",
	"MYR", "MZN",
	"NAD", "NGN", "NIO", "NOK", "NPR", "NZD",
	"OMR",
	"PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG",
	"QAR",
	"RON", "RSD", "RUB", "RWF",
	"SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC",
	"SYP", "SZL",
	"THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS",
	"UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS",
	"VED", "VES", "VND", "VUV",
	"WST",
	"XAD", "XAF", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XCD", "XCG", "XDR", "XOF", "XPD",
	"XPF", "XPT", "XSU", "XTS", "XUA", "XXX",
	"YER",
	"ZAR", "ZMW", "ZWG",
};

static int code_cmp(const void *key, const void *elem)
{
	return strcmp(key, elem);
}

int order_valid_country(const char *code)
{
	return code && bsearch(code, countries, sizeof countries / sizeof countries[0],
	                       sizeof countries[0], code_cmp) != NULL;
}

int order_valid_currency(const char *code)
{
	return code && bsearch(code, currencies, sizeof currencies / sizeof currencies[0],
	                       sizeof currencies[0], code_cmp) != NULL;
}

/* Fills err for the field prefix.key (or prefix alone when key is NULL). */
__attribute__((format(printf, 4, 5)))
static int fail(struct order_error *err, const char *prefix, const char *key, const char *fmt, ...)
{
	err->code = "invalid_field";
	if (key && *prefix)
		snprintf(err->field, sizeof err->field, "%s.%s", prefix, key);
	else
		snprintf(err->field, sizeof err->field, "%s", key ? key : prefix);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
	return -1;
}


/* Jansson quotes the offending input in its text; keep the message plain
 * ASCII so it is safe to log and to embed in a JSON reply. */
static int fail_json(struct order_error *err, const json_error_t *je)
{
	if (json_error_code(je) == json_error_out_of_memory)
		mem_oom();
	err->code = "invalid_json";
	err->field[0] = '\0';
	snprintf(err->message, sizeof err->message, "%s (line %d, column %d, byte %d)",
	         je->text, je->line, je->column, je->position);
	for (char *c = err->message; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			*c = '?';
	return -1;
}

/* A copy of text that lives as long as the order. Text is valid UTF-8
 * (it comes from the JSON or is ASCII built here), so a NULL is want of memory. */
static const char *keep(struct order *o, const char *text)
{
	if (!o->strings && !(o->strings = json_array()))
		mem_oom();
	json_t *s = json_string(text);
	if (!s || json_array_append_new(o->strings, s) < 0)
		mem_oom();
	return json_string_value(s);
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int absent(const json_t *v)
{
	/* Storefronts write null for fields they have no value for. */
	return !v || json_is_null(v);
}

/* Reads obj.key as a string of at most max bytes. A required one must be
 * present and non-empty; an absent optional one leaves *out NULL. */
static int get_text(json_t *obj, const char *prefix, const char *key, int required, size_t max,
                    const char **out, struct order_error *err)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (absent(v))
		return required ? fail(err, prefix, key, "is required") : 0;
	if (!json_is_string(v))
		return fail(err, prefix, key, "must be a string");
	size_t n = json_string_length(v);
	if (required && n == 0)
		return fail(err, prefix, key, "must not be empty");
	if (n > max)
		return fail(err, prefix, key, "must be at most %zu bytes", max);
	*out = json_string_value(v);
	return 0;
}

/* Reads a required letter code of exactly len letters, upper-cased (storefronts
 * differ in case; the codes themselves do not), and checks it with valid. */
static int get_code(struct order *o, json_t *obj, const char *prefix, const char *key, size_t len,
                    int (*valid)(const char *), const char *rule, const char **out,
                    struct order_error *err)
{
	const char *s;
	char up[4];
	if (get_text(obj, prefix, key, 1, SIZE_MAX, &s, err) < 0)
		return -1;
	if (!s || len >= sizeof up || strlen(s) != len)
		return fail(err, prefix, key, "%s", rule);
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		else if (c < 'A' || c > 'Z')
			return fail(err, prefix, key, "%s", rule);
		up[i] = c;
	}
	up[len] = '\0';
	if (!valid(up))
		return fail(err, prefix, key, "%s", rule);
	*out = memcmp(up, s, len) == 0 ? s : keep(o, up);
	return 0;
}

/* Writes the canonical form of the decimal text s ([0-9]+(.[0-9]+)?): no
 * leading zeros, trailing fractional zeros dropped, then padded to at least
 * two fractional digits ("12.5" -> "12.50"), so one price has one spelling.
 * Returns the count of significant digits, or -1 when s is not such a
 * decimal or does not fit numeric(20, 4). */
static int price_canon(const char *s, char out[32])
{
	const char *p = s;
	while (*p == '0' && is_digit(p[1]))
		p++;
	const char *int_start = p;
	while (is_digit(*p))
		p++;
	size_t int_len = (size_t)(p - int_start);
	if (int_len == 0 || int_len > PRICE_INT_DIGITS)
		return -1;
	const char *frac = "";
	size_t frac_len = 0;
	if (*p == '.') {
		frac = ++p;
		while (is_digit(*p))
			p++;
		frac_len = (size_t)(p - frac);
		if (frac_len == 0)
			return -1;
		while (frac_len > 0 && frac[frac_len - 1] == '0')
			frac_len--;
		if (frac_len > PRICE_FRAC_DIGITS)
			return -1;
	}
	if (*p != '\0')
		return -1;

	char digits[PRICE_INT_DIGITS + PRICE_FRAC_DIGITS + 1];
	snprintf(digits, sizeof digits, "%.*s%.*s", (int)int_len, int_start, (int)frac_len, frac);
	size_t first = strspn(digits, "0"), last = strlen(digits);
	while (last > first && digits[last - 1] == '0')
		last--;
	snprintf(out, 32, "%.*s.%.*s%s", (int)int_len, int_start, (int)frac_len, frac,
	         frac_len == 0 ? "00" : frac_len == 1 ? "0" : "");
	return (int)(last - first);
}

/* A price as canonical text in canon: a decimal string, or a JSON number.
 * With round, a real with more than 4 fractional digits (WooCommerce sends
 * line total / quantity) is rounded rather than refused. Returns 0, -1 when
 * v is no such price, -2 when v is a real with more digits than a double
 * keeps exactly. */
static int price_value(const json_t *v, int round, char canon[32])
{
	char buf[64];
	if (json_is_string(v))
		return price_canon(json_string_value(v), canon) < 0 ? -1 : 0;
	if (json_is_integer(v)) {
		json_int_t n = json_integer_value(v);
		if (n < 0 || n > PRICE_MAX_INT)
			return -1;
		snprintf(canon, 32, "%" JSON_INTEGER_FORMAT ".00", n);
		return 0;
	}
	if (!json_is_real(v))
		return -1;
	double d = json_real_value(v);
	if (!isfinite(d) || d < 0 || d >= 1e16)
		return -1;
	if (d == 0)
		d = 0; /* drops the sign of -0.0 */
	/* The sender's text is gone; accept the double only when it is exactly
	 * the nearest one to a decimal with 4 fractional digits. The process
	 * runs in the C locale, so '.' is the radix. */
	snprintf(buf, sizeof buf, "%.*f", PRICE_FRAC_DIGITS, d);
	int sig = price_canon(buf, canon);
	if (sig < 0 || (!round && strtod(buf, NULL) != d))
		return -1;
	return sig > REAL_SIG_DIGITS ? -2 : 0;
}

int order_price(const json_t *v, char canon[32])
{
	return price_value(v, 0, canon);
}

/* unit_price: a decimal string or a JSON number, kept as canonical text. */
static int get_price(struct order *o, json_t *item, const char *prefix, const char **out,
                     struct order_error *err)
{
	static const char rule[] =
		"must be a non-negative decimal with at most 16 integer and 4 fractional digits";
	json_t *v = json_object_get(item, "unit_price");
	char canon[32];
	*out = NULL;
	if (absent(v))
		return 0;
	int rc = price_value(v, 0, canon);
	if (rc == -2)
		return fail(err, prefix, "unit_price",
		            "has more digits than a JSON number keeps exactly; send it as a string");
	if (rc < 0)
		return fail(err, prefix, "unit_price", rule);
	*out = keep(o, canon);
	return 0;
}

/* An order id: a non-empty string, or an integer kept as its decimal text. */
static int get_id(struct order *o, json_t *obj, const char *prefix, struct order_error *err)
{
	json_t *v = json_object_get(obj, "id");
	if (json_is_integer(v)) {
		char buf[32];
		snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		o->external_id = keep(o, buf);
		return 0;
	}
	if (!absent(v) && !json_is_string(v))
		return fail(err, prefix, "id", "must be a string or an integer");
	return get_text(obj, prefix, "id", 1, ORDER_MAX_ID, &o->external_id, err);
}

static int num2(const char *s, int *out)
{
	if (!is_digit(s[0]) || !is_digit(s[1]))
		return 0;
	*out = (s[0] - '0') * 10 + (s[1] - '0');
	return 1;
}

static int days_in_month(int y, int m)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : days[m - 1];
}

/* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM). Also
 * within what PostgreSQL takes: no year 0, offsets up to 15:59, and at most
 * 9 fractional digits (nanoseconds; nobody sends more). */
static int valid_timestamp(const char *s, size_t n)
{
	int yh, yl, mo, d, h, mi, sec, oh = 0, om = 0;
	if (n < 20 || !num2(s, &yh) || !num2(s + 2, &yl) || s[4] != '-' || !num2(s + 5, &mo) ||
	    s[7] != '-' || !num2(s + 8, &d) || (s[10] != 'T' && s[10] != 't') || !num2(s + 11, &h) ||
	    s[13] != ':' || !num2(s + 14, &mi) || s[16] != ':' || !num2(s + 17, &sec))
		return 0;
	const char *p = s + 19, *end = s + n;
	if (*p == '.') {
		const char *frac = ++p;
		while (p < end && is_digit(*p))
			p++;
		if (p == frac || p - frac > 9)
			return 0;
	}
	if (p < end && (*p == 'Z' || *p == 'z')) {
		p++;
	} else if (end - p >= 6 && (*p == '+' || *p == '-')) {
		if (!num2(p + 1, &oh) || p[3] != ':' || !num2(p + 4, &om))
			return 0;
		p += 6;
	} else {
		return 0;
	}
	int y = yh * 100 + yl;
	return p == end && y >= 1 && mo >= 1 && mo <= 12 && d >= 1 && d <= days_in_month(y, mo) &&
	       h <= 23 && mi <= 59 && sec <= 60 && oh <= 15 && om <= 59;
}

int order_valid_timestamp(const char *s)
{
	return s && valid_timestamp(s, strlen(s));
}

static int valid_email(const char *s)
{
	const char *at = strchr(s, '@');
	return at && at != s && at[1] != '\0' && !strchr(at + 1, '@');
}

static int parse_customer(struct order *o, json_t *order, struct order_error *err)
{
	static const char prefix[] = "order.customer";
	json_t *c = json_object_get(order, "customer");
	if (absent(c))
		return 0;
	if (!json_is_object(c))
		return fail(err, prefix, NULL, "must be an object");
	if (get_text(c, prefix, "email", 0, ORDER_MAX_EMAIL, &o->email, err) < 0 ||
	    get_text(c, prefix, "name", 0, ORDER_MAX_TEXT, &o->customer_name, err) < 0)
		return -1;
	/* Guest checkouts send "" for no address: that is absent, not wrong. */
	if (o->email && !*o->email)
		o->email = NULL;
	else if (o->email && !valid_email(o->email))
		return fail(err, prefix, "email", "must be an email address such as ann@example.com");
	return 0;
}

static int parse_address(struct order *o, json_t *order, struct order_error *err)
{
	static const char prefix[] = "order.shipping_address";
	struct order_address *a = &o->ship;
	json_t *obj = json_object_get(order, "shipping_address");
	if (absent(obj))
		return fail(err, prefix, NULL, "is required");
	if (!json_is_object(obj))
		return fail(err, prefix, NULL, "must be an object");
	if (get_text(obj, prefix, "name", 0, ORDER_MAX_TEXT, &a->name, err) < 0 ||
	    get_text(obj, prefix, "line1", 1, ORDER_MAX_TEXT, &a->line1, err) < 0 ||
	    get_text(obj, prefix, "line2", 0, ORDER_MAX_TEXT, &a->line2, err) < 0 ||
	    get_text(obj, prefix, "city", 1, ORDER_MAX_TEXT, &a->city, err) < 0 ||
	    get_text(obj, prefix, "region", 0, ORDER_MAX_TEXT, &a->region, err) < 0 ||
	    get_text(obj, prefix, "postal_code", 0, ORDER_MAX_TEXT, &a->postal_code, err) < 0 ||
	    get_code(o, obj, prefix, "country", 2, order_valid_country,
	             "must be an ISO 3166-1 alpha-2 country code", &a->country, err) < 0 ||
	    get_text(obj, prefix, "phone", 0, ORDER_MAX_TEXT, &a->phone, err) < 0)
		return -1;
	o->has_ship = 1;
	return 0;
}

/* How one platform spells the fields of a line item. */
struct platform_item_keys {
	const char *title;              /* "title" (Shopify), "name" (WooCommerce) */
	const char *variant, *product;  /* ids tried in turn for variant_id */
	int has_requires_shipping;
};

/* Reads item i of an order's lines (native: k is NULL). */
typedef int (*item_reader)(struct order *o, json_t *obj, size_t i,
                           const struct platform_item_keys *k, struct order_item *it,
                           struct order_error *err);

static int get_quantity(json_t *obj, const char *prefix, int *out, struct order_error *err)
{
	json_t *q = json_object_get(obj, "quantity");
	if (absent(q))
		return fail(err, prefix, "quantity", "is required");
	/* Integers only: 2.0 or "2" means the sender's types are off. */
	if (!json_is_integer(q) || json_integer_value(q) < 1 ||
	    json_integer_value(q) > ORDER_MAX_QUANTITY)
		return fail(err, prefix, "quantity", "must be an integer between 1 and %d",
		            ORDER_MAX_QUANTITY);
	*out = (int)json_integer_value(q);
	return 0;
}

static int parse_item(struct order *o, json_t *obj, size_t i, const struct platform_item_keys *k,
                      struct order_item *it, struct order_error *err)
{
	(void)k; /* one spelling */
	char prefix[48];
	snprintf(prefix, sizeof prefix, "order.items[%zu]", i);
	if (!json_is_object(obj))
		return fail(err, prefix, NULL, "must be an object");
	if (get_text(obj, prefix, "sku", 1, ORDER_MAX_SKU, &it->sku, err) < 0)
		return -1;
	if (get_quantity(obj, prefix, &it->quantity, err) < 0)
		return -1;
	it->requires_shipping = 1;
	if (get_price(o, obj, prefix, &it->unit_price, err) < 0)
		return -1;
	return get_text(obj, prefix, "title", 0, ORDER_MAX_TITLE, &it->title, err);
}

/* The items array at obj.key (error paths under prefix), each read by read. */
static int get_items(struct order *o, json_t *obj, const char *prefix, const char *key,
                     item_reader read, const struct platform_item_keys *k, struct order_error *err)
{
	json_t *items = json_object_get(obj, key);
	if (absent(items))
		return fail(err, prefix, key, "is required");
	size_t n = json_array_size(items);
	if (!json_is_array(items) || n < 1 || n > ORDER_MAX_ITEMS)
		return fail(err, prefix, key, "must be an array of 1 to %d items", ORDER_MAX_ITEMS);
	o->items = mem_calloc(n, sizeof *o->items);
	o->nitems = n;
	for (size_t i = 0; i < n; i++)
		if (read(o, json_array_get(items, i), i, k, &o->items[i], err) < 0)
			return -1;
	return 0;
}

static int parse_created(struct order *o, json_t *order, struct order_error *err)
{
	if (get_code(o, order, "order", "currency", 3, order_valid_currency,
	             "must be an ISO 4217 currency code", &o->currency, err) < 0 ||
	    get_text(order, "order", "placed_at", 0, SIZE_MAX, &o->placed_at, err) < 0)
		return -1;
	if (o->placed_at && !valid_timestamp(o->placed_at, strlen(o->placed_at)))
		return fail(err, "order", "placed_at",
		            "must be an RFC 3339 timestamp such as 2026-11-22T10:00:00Z");
	if (parse_customer(o, order, err) < 0 || parse_address(o, order, err) < 0)
		return -1;
	return get_items(o, order, "order", "items", parse_item, NULL, err);
}

static int parse_root(struct order *o, struct order_error *err)
{
	static const char rule[] = "must be \"order.created\" or \"order.cancelled\"";
	json_t *type = json_object_get(o->root, "type");
	if (absent(type))
		return fail(err, "", "type", "is required");
	const char *t = json_string_value(type);
	if (t && strcmp(t, "order.created") == 0)
		o->event = ORDER_EVENT_CREATED;
	else if (t && strcmp(t, "order.cancelled") == 0)
		o->event = ORDER_EVENT_CANCELLED;
	else
		return fail(err, "", "type", rule);

	json_t *order = json_object_get(o->root, "order");
	if (absent(order))
		return fail(err, "", "order", "is required");
	if (!json_is_object(order))
		return fail(err, "", "order", "must be an object");
	if (get_id(o, order, "order", err) < 0)
		return -1;
	/* A cancellation names the order; whatever else it carries is not ours. */
	return o->event == ORDER_EVENT_CANCELLED ? 0 : parse_created(o, order, err);
}

/* ---- Shopify and WooCommerce ---- */

/* Parses body into o->root. Returns 0, or -1 with err filled. */
static int load_root(const char *body, size_t len, struct order *o, struct order_error *err)
{
	json_error_t je;
	memset(o, 0, sizeof *o);
	memset(err, 0, sizeof *err);
	/* Duplicate keys would let two readers of one body see two orders.
	 * DECODE_ANY: a scalar root is well-formed JSON, refused as 422 like an
	 * array root rather than as unparsable. */
	o->root = json_loadb(body ? body : "", body ? len : 0,
	                     JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!o->root)
		return fail_json(err, &je);
	if (!json_is_object(o->root)) {
		order_free(o);
		return fail(err, "", NULL, "the body must be a JSON object");
	}
	return 0;
}

/* Loads body and reads it with read; on error o is left empty. */
static int parse_body(const char *body, size_t len, const char *topic,
                      int (*read)(struct order *, const char *, struct order_error *),
                      struct order *o, struct order_error *err)
{
	if (load_root(body, len, o, err) < 0)
		return -1;
	if (read(o, topic, err) < 0) {
		order_free(o);
		return -1;
	}
	return 0;
}

/* An optional platform text: NULL when absent, empty, not a string or
 * longer than max (not needed to route or ship; the raw payload keeps it). */
static const char *opt_text(json_t *obj, const char *key, size_t max)
{
	json_t *v = json_object_get(obj, key);
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max)
		return NULL;
	return json_string_value(v);
}

/* "first last" from two optional parts; NULL when both are absent. */
static const char *join_name(struct order *o, const char *first, const char *last)
{
	char buf[2 * ORDER_MAX_TEXT + 2];
	if (!first || !last)
		return first ? first : last;
	snprintf(buf, sizeof buf, "%s %s", first, last);
	return keep(o, buf);
}

/* An id that may be an integer or a string, as text; NULL if neither. */
static const char *opt_id_text(struct order *o, json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	if (json_is_integer(v) && json_integer_value(v) > 0) {
		char buf[32];
		snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return keep(o, buf);
	}
	return opt_text(obj, key, ORDER_MAX_ID);
}

static int platform_item(struct order *o, json_t *obj, size_t i, const struct platform_item_keys *k,
                         struct order_item *it, struct order_error *err)
{
	char prefix[48], canon[32];
	snprintf(prefix, sizeof prefix, "line_items[%zu]", i);
	if (!json_is_object(obj))
		return fail(err, prefix, NULL, "must be an object");
	/* No SKU is kept as a line we cannot route; a SKU that is there must fit. */
	json_t *sku = json_object_get(obj, "sku");
	if (json_is_string(sku) && json_string_length(sku) > 0 &&
	    get_text(obj, prefix, "sku", 1, ORDER_MAX_SKU, &it->sku, err) < 0)
		return -1;
	if (get_quantity(obj, prefix, &it->quantity, err) < 0)
		return -1;
	json_t *price = json_object_get(obj, "price");
	if (!absent(price) && price_value(price, 1, canon) == 0)
		it->unit_price = keep(o, canon);
	it->title = opt_text(obj, k->title, ORDER_MAX_TITLE);
	it->variant_id = opt_id_text(o, obj, k->variant);
	if (!it->variant_id && k->product)
		it->variant_id = opt_id_text(o, obj, k->product);
	it->line_item_id = opt_id_text(o, obj, "id");
	json_t *rs = json_object_get(obj, "requires_shipping");
	it->requires_shipping = k->has_requires_shipping && json_is_boolean(rs) ? json_is_true(rs) : 1;
	return 0;
}


/* How one platform spells an address. */
struct platform_address_keys {
	const char *object;                      /* "shipping_address", "shipping" */
	const char *line1, *line2, *city, *region, *postal_code, *country;
	const char *name, *first_name, *last_name; /* name, else first + last */
};

/* An address is there when the object has a first line or a country:
 * WooCommerce sends every field as "" for orders without one. Once there,
 * what a parcel needs is required: first line, city, country. */
static int platform_address(struct order *o, const struct platform_address_keys *k,
                            struct order_error *err)
{
	struct order_address *a = &o->ship;
	const char *p = k->object;
	json_t *obj = json_object_get(o->root, p);
	if (absent(obj))
		return 0;
	if (!json_is_object(obj))
		return fail(err, p, NULL, "must be an object");
	if (!opt_text(obj, k->line1, SIZE_MAX) && !opt_text(obj, k->country, SIZE_MAX))
		return 0;
	if (get_text(obj, p, k->line1, 1, ORDER_MAX_TEXT, &a->line1, err) < 0 ||
	    get_text(obj, p, k->city, 1, ORDER_MAX_TEXT, &a->city, err) < 0 ||
	    get_code(o, obj, p, k->country, 2, order_valid_country,
	             "must be an ISO 3166-1 alpha-2 country code", &a->country, err) < 0)
		return -1;
	a->line2 = opt_text(obj, k->line2, ORDER_MAX_TEXT);
	a->region = opt_text(obj, k->region, ORDER_MAX_TEXT);
	a->postal_code = opt_text(obj, k->postal_code, ORDER_MAX_TEXT);
	a->phone = opt_text(obj, "phone", ORDER_MAX_TEXT);
	a->name = k->name ? opt_text(obj, k->name, ORDER_MAX_TEXT) : NULL;
	if (!a->name)
		a->name = join_name(o, opt_text(obj, k->first_name, ORDER_MAX_TEXT),
		                    opt_text(obj, k->last_name, ORDER_MAX_TEXT));
	o->has_ship = 1;
	return 0;
}

/* Sets the event and, for one to act on, reads what every platform order
 * has: id, name and (to create) currency. Returns 1 when nothing more is to
 * be read (ignored, cancelled), 0 to go on, -1 on error. */
static int platform_head(struct order *o, enum order_event event, const char *ignored,
                         const char *name_key, struct order_error *err)
{
	o->event = event;
	if (event == ORDER_EVENT_IGNORED) {
		o->ignored = ignored;
		return 1;
	}
	if (get_id(o, o->root, "", err) < 0)
		return -1;
	o->name = opt_text(o->root, name_key, ORDER_MAX_ID);
	if (event == ORDER_EVENT_CANCELLED)
		return 1;
	return get_code(o, o->root, "", "currency", 3, order_valid_currency,
	                "must be an ISO 4217 currency code", &o->currency, err);
}

/* The customer's name (from person's first and last name), the shipping
 * address and the lines. */
static int platform_rest(struct order *o, json_t *person, const struct platform_address_keys *addr,
                         const struct platform_item_keys *item, struct order_error *err)
{
	o->customer_name = join_name(o, opt_text(person, "first_name", ORDER_MAX_TEXT),
	                             opt_text(person, "last_name", ORDER_MAX_TEXT));
	if (platform_address(o, addr, err) < 0)
		return -1;
	return get_items(o, o->root, "", "line_items", platform_item, item, err);
}

static int shopify_order(struct order *o, const char *topic, struct order_error *err)
{
	static const struct platform_address_keys addr = {
		"shipping_address", "address1", "address2", "city", "province_code", "zip",
		"country_code", "name", "first_name", "last_name",
	};
	static const struct platform_item_keys item = { "title", "variant_id", "product_id", 1 };
	if (!topic || !*topic)
		return fail(err, "", "X-Shopify-Topic", "is required");
	enum order_event event = strcmp(topic, "orders/create") == 0      ? ORDER_EVENT_CREATED
	                         : strcmp(topic, "orders/cancelled") == 0 ? ORDER_EVENT_CANCELLED
	                                                                  : ORDER_EVENT_IGNORED;
	int rc = platform_head(o, event, "topic", "name", err);
	if (rc)
		return rc < 0 ? -1 : 0;
	const char *placed = opt_text(o->root, "created_at", 64);
	o->placed_at = placed && order_valid_timestamp(placed) ? placed : NULL;
	o->email = opt_text(o->root, "email", ORDER_MAX_EMAIL);
	if (!o->email)
		o->email = opt_text(o->root, "contact_email", ORDER_MAX_EMAIL);
	return platform_rest(o, json_object_get(o->root, "customer"), &addr, &item, err);
}

int order_parse_shopify(const char *body, size_t len, const char *topic, struct order *o,
                        struct order_error *err)
{
	return parse_body(body, len, topic, shopify_order, o, err);
}

/* WooCommerce statuses of a paid order, ready to ship. */
static int woo_paid(const char *status)
{
	return strcmp(status, "processing") == 0 || strcmp(status, "completed") == 0;
}

static int woo_order(struct order *o, const char *topic, struct order_error *err)
{
	static const struct platform_address_keys addr = {
		"shipping", "address_1", "address_2", "city", "state", "postcode",
		"country", NULL, "first_name", "last_name",
	};
	static const struct platform_item_keys item = { "name", "variation_id", "product_id", 0 };
	if (!topic || !*topic)
		return fail(err, "", "X-WC-Webhook-Topic", "is required");
	const char *status = NULL;
	int ours = strcmp(topic, "order.created") == 0 || strcmp(topic, "order.updated") == 0;
	if (ours && get_text(o->root, "", "status", 1, 64, &status, err) < 0)
		return -1;
	/* order.updated creates too: the update that marks an order paid is
	 * when it first becomes ours to route. */
	enum order_event event = !ours                             ? ORDER_EVENT_IGNORED
	                         : strcmp(status, "cancelled") == 0 ? ORDER_EVENT_CANCELLED
	                         : woo_paid(status)                 ? ORDER_EVENT_CREATED
	                                                            : ORDER_EVENT_IGNORED;
	int rc = platform_head(o, event, ours ? "not_paid" : "topic", "number", err);
	if (rc)
		return rc < 0 ? -1 : 0;
	/* date_created_gmt is UTC without an offset. */
	const char *gmt = opt_text(o->root, "date_created_gmt", 32);
	char stamp[40];
	if (gmt) {
		snprintf(stamp, sizeof stamp, "%sZ", gmt);
		if (order_valid_timestamp(stamp))
			o->placed_at = keep(o, stamp);
	}
	json_t *billing = json_object_get(o->root, "billing");
	o->email = opt_text(billing, "email", ORDER_MAX_EMAIL);
	return platform_rest(o, billing, &addr, &item, err);
}

int order_parse_woocommerce(const char *body, size_t len, const char *topic, struct order *o,
                            struct order_error *err)
{
	return parse_body(body, len, topic, woo_order, o, err);
}

int order_is_woocommerce_ping(const char *body, size_t len)
{
	static const char key[] = "webhook_id=";
	size_t k = sizeof key - 1;
	if (!body || len <= k || len > k + 20 || memcmp(body, key, k) != 0)
		return 0;
	for (size_t i = k; i < len; i++)
		if (!is_digit(body[i]))
			return 0;
	return 1;
}

static int native_order(struct order *o, const char *topic, struct order_error *err)
{
	(void)topic; /* the native body names its own event */
	return parse_root(o, err);
}

int order_parse_native(const char *body, size_t len, struct order *o, struct order_error *err)
{
	return parse_body(body, len, NULL, native_order, o, err);
}

void order_free(struct order *o)
{
	if (!o)
		return;
	free(o->items);
	json_decref(o->strings);
	json_decref(o->root);
	memset(o, 0, sizeof *o);
}
