/* order: validation of native storefront webhook bodies (contract 5.1).
 * The first rule a body breaks is reported, in document order. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int fail_oom(struct order_error *err)
{
	err->code = "internal_error";
	err->field[0] = '\0';
	snprintf(err->message, sizeof err->message, "out of memory");
	return -1;
}

/* Jansson quotes the offending input in its text; keep the message plain
 * ASCII so it is safe to log and to embed in a JSON reply. */
static int fail_json(struct order_error *err, const json_error_t *je)
{
	if (json_error_code(je) == json_error_out_of_memory)
		return fail_oom(err);
	err->code = "invalid_json";
	err->field[0] = '\0';
	snprintf(err->message, sizeof err->message, "%s (line %d, column %d, byte %d)",
	         je->text, je->line, je->column, je->position);
	for (char *c = err->message; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			*c = '?';
	return -1;
}

/* Keeps a normalized copy alive in o->strings; NULL when out of memory. */
static const char *keep(struct order *o, const char *text)
{
	if (!o->strings && !(o->strings = json_array()))
		return NULL;
	json_t *s = json_string(text);
	if (!s || json_array_append_new(o->strings, s) < 0)
		return NULL;
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
	return *out ? 0 : fail_oom(err);
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

/* unit_price: a decimal string or a JSON number, kept as canonical text. */
static int get_price(struct order *o, json_t *item, const char *prefix, const char **out,
                     struct order_error *err)
{
	static const char rule[] =
		"must be a non-negative decimal with at most 16 integer and 4 fractional digits";
	json_t *v = json_object_get(item, "unit_price");
	char buf[64], canon[32];
	*out = NULL;
	if (absent(v))
		return 0;
	if (json_is_string(v)) {
		if (price_canon(json_string_value(v), canon) < 0)
			return fail(err, prefix, "unit_price", rule);
	} else if (json_is_integer(v)) {
		json_int_t n = json_integer_value(v);
		if (n < 0 || n > PRICE_MAX_INT)
			return fail(err, prefix, "unit_price", rule);
		snprintf(canon, sizeof canon, "%" JSON_INTEGER_FORMAT ".00", n);
	} else if (json_is_real(v)) {
		double d = json_real_value(v);
		if (!isfinite(d) || d < 0 || d >= 1e16)
			return fail(err, prefix, "unit_price", rule);
		if (d == 0)
			d = 0; /* drops the sign of -0.0 */
		/* The sender's text is gone; accept the double only when it is
		 * exactly the nearest one to a decimal with 4 fractional digits.
		 * The process runs in the C locale, so '.' is the radix. */
		snprintf(buf, sizeof buf, "%.*f", PRICE_FRAC_DIGITS, d);
		int sig = price_canon(buf, canon);
		if (sig < 0 || strtod(buf, NULL) != d)
			return fail(err, prefix, "unit_price", rule);
		if (sig > REAL_SIG_DIGITS)
			return fail(err, prefix, "unit_price",
			            "has more digits than a JSON number keeps exactly; send it as a string");
	} else {
		return fail(err, prefix, "unit_price", rule);
	}
	*out = keep(o, canon);
	return *out ? 0 : fail_oom(err);
}

/* order.id: a non-empty string, or an integer kept as its decimal text. */
static int get_id(struct order *o, json_t *order, struct order_error *err)
{
	json_t *v = json_object_get(order, "id");
	if (json_is_integer(v)) {
		char buf[32];
		snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		o->external_id = keep(o, buf);
		return o->external_id ? 0 : fail_oom(err);
	}
	if (!absent(v) && !json_is_string(v))
		return fail(err, "order", "id", "must be a string or an integer");
	return get_text(order, "order", "id", 1, ORDER_MAX_ID, &o->external_id, err);
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

static int parse_item(struct order *o, json_t *obj, size_t i, struct order_item *it,
                      struct order_error *err)
{
	char prefix[48];
	snprintf(prefix, sizeof prefix, "order.items[%zu]", i);
	if (!json_is_object(obj))
		return fail(err, prefix, NULL, "must be an object");
	if (get_text(obj, prefix, "sku", 1, ORDER_MAX_SKU, &it->sku, err) < 0)
		return -1;
	json_t *q = json_object_get(obj, "quantity");
	if (absent(q))
		return fail(err, prefix, "quantity", "is required");
	/* Integers only: 2.0 or "2" means the sender's types are off. */
	if (!json_is_integer(q) || json_integer_value(q) < 1 ||
	    json_integer_value(q) > ORDER_MAX_QUANTITY)
		return fail(err, prefix, "quantity", "must be an integer between 1 and %d",
		            ORDER_MAX_QUANTITY);
	it->quantity = (int)json_integer_value(q);
	if (get_price(o, obj, prefix, &it->unit_price, err) < 0)
		return -1;
	return get_text(obj, prefix, "title", 0, ORDER_MAX_TITLE, &it->title, err);
}

static int parse_items(struct order *o, json_t *order, struct order_error *err)
{
	json_t *items = json_object_get(order, "items");
	if (absent(items))
		return fail(err, "order", "items", "is required");
	size_t n = json_array_size(items);
	if (!json_is_array(items) || n < 1 || n > ORDER_MAX_ITEMS)
		return fail(err, "order", "items", "must be an array of 1 to %d items", ORDER_MAX_ITEMS);
	o->items = calloc(n, sizeof *o->items);
	if (!o->items)
		return fail_oom(err);
	o->nitems = n;
	for (size_t i = 0; i < n; i++)
		if (parse_item(o, json_array_get(items, i), i, &o->items[i], err) < 0)
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
	return parse_items(o, order, err);
}

static int parse_root(struct order *o, struct order_error *err)
{
	static const char rule[] = "must be \"order.created\" or \"order.cancelled\"";
	if (!json_is_object(o->root))
		return fail(err, "", NULL, "the body must be a JSON object");
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
	if (get_id(o, order, err) < 0)
		return -1;
	/* A cancellation names the order; whatever else it carries is not ours. */
	return o->event == ORDER_EVENT_CANCELLED ? 0 : parse_created(o, order, err);
}

int order_parse_native(const char *body, size_t len, struct order *o, struct order_error *err)
{
	json_error_t je;
	memset(o, 0, sizeof *o);
	memset(err, 0, sizeof *err);
	/* Duplicate keys would let two readers of one body see two orders.
	 * DECODE_ANY: a scalar root is well-formed JSON, refused below as 422
	 * like an array root rather than as unparsable. */
	o->root = json_loadb(body ? body : "", body ? len : 0,
	                     JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!o->root)
		return fail_json(err, &je);
	if (parse_root(o, err) < 0) {
		order_free(o);
		return -1;
	}
	return 0;
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
