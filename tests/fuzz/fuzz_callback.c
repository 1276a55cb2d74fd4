/* libFuzzer harness for supplier callback bodies: the whole input is the
 * body given to lifecycle_parse_callback. Not part of `make test`; `make
 * fuzz` builds it with ASan and UBSan and runs it from the seeds in
 * tests/fuzz/corpus/fuzz_callback/.
 * Besides memory errors it traps when a result breaks a promise of
 * lifecycle.h, order.h's struct order_error or docs/callbacks.md. A parsed
 * callback is then decided against every request state, seen or not, with
 * sets of unshipped lines derived from its items and from the input, and
 * lifecycle_check_items and lifecycle_decide are checked against a model
 * written out here from the documented table. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lifecycle/lifecycle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LINES 500

static void require(int ok)
{
	if (!ok)
		abort();
}

/* ---- the model ---- */

#define TO(state) LIFECYCLE_##state
#define NO (-1)   /* 409 */
#define SAME (-2) /* repeat */

/* docs/callbacks.md's table. Rows: state; columns: accepted, rejected,
 * shipped, delivered, cancelled; the state an applied event leads to. */
static const int model_table[LIFECYCLE_STATE_MAX][LIFECYCLE_EVENT_MAX] = {
	[TO(PENDING)] = { TO(ACCEPTED), NO, NO, NO, TO(CANCELLED) },
	[TO(SENT)] = { TO(ACCEPTED), TO(REJECTED), NO, NO, TO(CANCELLED) },
	[TO(ACCEPTED)] = { SAME, TO(REJECTED), TO(SHIPPED), NO, TO(CANCELLED) },
	[TO(REJECTED)] = { NO, SAME, NO, NO, NO },
	[TO(SHIPPED)] = { NO, NO, SAME, TO(DELIVERED), NO },
	[TO(DELIVERED)] = { NO, NO, NO, SAME, NO },
	[TO(CANCELLED)] = { NO, NO, NO, NO, SAME },
	[TO(FAILED)] = { NO, NO, NO, NO, NO },
};

static int model_has(const int *v, size_t n, int x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return 1;
	return 0;
}

/* lifecycle_check_items as documented: the first item that is not an open
 * line is bad; otherwise left counts the open lines no item names. */
static int model_check_items(const int *open, size_t nopen, const int *items, size_t nitems,
                             size_t *left, size_t *bad)
{
	for (size_t i = 0; i < nitems; i++)
		if (!model_has(open, nopen, items[i])) {
			*bad = i;
			return -1;
		}
	*left = 0;
	for (size_t k = 0; k < nopen; k++)
		*left += !model_has(items, nitems, open[k]);
	return 0;
}

static void check_items(const int *open, size_t nopen, const int *items, size_t nitems)
{
	size_t left = 12345, bad = 12345, mleft = 0, mbad = 0;
	int rc = lifecycle_check_items(open, nopen, items, nitems, &left, &bad);
	int mrc = model_check_items(open, nopen, items, nitems, &mleft, &mbad);
	require(rc == mrc);
	if (rc == 0)
		require(left == mleft && left <= nopen);
	else
		require(rc == -1 && bad == mbad && bad < nitems);
}

static void check_decide(const struct lifecycle_callback *cb, enum lifecycle_state state, int seen,
                         const int *open, size_t nopen)
{
	const struct lifecycle_request rq = { state, seen, open, nopen };
	struct lifecycle_decision d;
	memset(&d, 0xa5, sizeof d);
	lifecycle_decide(&rq, cb, &d);
	require((unsigned)d.to < LIFECYCLE_STATE_MAX);
	/* Nothing moves unless applied. */
	if (d.result != LIFECYCLE_APPLY)
		require(d.to == state);
	if (seen) {
		require(d.result == LIFECYCLE_REPEAT);
		return;
	}
	int want = model_table[state][cb->event];
	if (want == NO) {
		require(d.result == LIFECYCLE_ILLEGAL);
		return;
	}
	if (want == SAME) {
		require(d.result == LIFECYCLE_REPEAT);
		return;
	}
	if (!cb->items) {
		require(d.result == LIFECYCLE_APPLY && (int)d.to == want);
		return;
	}
	/* Only a shipment lists items, and only accepted ships. */
	require(cb->event == LIFECYCLE_EV_SHIPPED && state == LIFECYCLE_ACCEPTED);
	size_t left = 0, bad = 0;
	if (model_check_items(open, nopen, cb->items, cb->nitems, &left, &bad) < 0) {
		require(d.result == LIFECYCLE_BAD_ITEM && d.bad_item == bad && d.bad_item < cb->nitems);
		require(!model_has(open, nopen, cb->items[d.bad_item]));
		return;
	}
	require(d.result == LIFECYCLE_APPLY);
	require(d.to == (left ? LIFECYCLE_ACCEPTED : LIFECYCLE_SHIPPED));
}

/* ---- the parsed callback ---- */

static int is_printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

/* An optional member of obj as parsed: NULL when absent or null, else the
 * very string of the document, no longer than max. */
static void check_text(json_t *obj, const char *key, const char *got, size_t max)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v)) {
		require(!got);
		return;
	}
	require(got && got == json_string_value(v) && strlen(got) == json_string_length(v));
	require(strlen(got) <= max);
}

static void check_parsed(const struct lifecycle_callback *cb)
{
	json_t *root = cb->root;
	require(json_is_object(root));
	require((unsigned)cb->event < LIFECYCLE_EVENT_MAX);
	const char *type = json_string_value(json_object_get(root, "type"));
	require(type && strcmp(type, lifecycle_event_name(cb->event)) == 0);

	/* request_id: the body's UUID, lower-cased, in the struct's own buffer. */
	const char *rid = json_string_value(json_object_get(root, "request_id"));
	require(cb->request_id == cb->request_id_buf && strlen(cb->request_id) == 36 && rid &&
	        strlen(rid) == 36);
	for (size_t i = 0; i < 36; i++) {
		char c = cb->request_id[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			require(c == '-' && rid[i] == '-');
		} else {
			require((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
			char r = rid[i] >= 'A' && rid[i] <= 'F' ? (char)(rid[i] - 'A' + 'a') : rid[i];
			require(r == c);
		}
	}

	check_text(root, "occurred_at", cb->occurred_at, 64);
	require(!cb->occurred_at || order_valid_timestamp(cb->occurred_at));
	check_text(root, "reason", cb->reason, 256);

	if (cb->event == LIFECYCLE_EV_SHIPPED) {
		json_t *tracking = json_object_get(root, "tracking");
		require(json_is_object(tracking));
		check_text(tracking, "carrier", cb->carrier, 128);
		check_text(tracking, "number", cb->tracking_number, 128);
		check_text(tracking, "url", cb->tracking_url, 2048);
		require(cb->carrier && *cb->carrier && cb->tracking_number && *cb->tracking_number);
	} else {
		/* Tracking is ignored for other types, and so are items refused. */
		require(!cb->carrier && !cb->tracking_number && !cb->tracking_url);
		require(!cb->items && cb->nitems == 0);
	}

	json_t *items = json_object_get(root, "items");
	if (!cb->items) {
		require(cb->nitems == 0 && (!items || json_is_null(items)));
		return;
	}
	require(cb->nitems >= 1 && cb->nitems <= MAX_LINES && json_array_size(items) == cb->nitems);
	for (size_t i = 0; i < cb->nitems; i++) {
		require(cb->items[i] >= 1 && cb->items[i] <= MAX_LINES);
		json_t *line = json_object_get(json_array_get(items, i), "line");
		require(json_is_integer(line) && json_integer_value(line) == cb->items[i]);
	}
}

static void check_error(const struct lifecycle_callback *cb, const struct order_error *err)
{
	/* Nothing to free. */
	require(!cb->root && !cb->items);
	require(err->code && (strcmp(err->code, "invalid_json") == 0 || strcmp(err->code, "invalid_field") == 0));
	require(memchr(err->field, '\0', sizeof err->field) && memchr(err->message, '\0', sizeof err->message));
	require(err->message[0] && is_printable(err->message));
	if (strcmp(err->code, "invalid_json") == 0) {
		require(err->field[0] == '\0');
		return;
	}
	static const char *const fields[] = { "", "type", "request_id", "occurred_at", "reason", "tracking",
	                                      "tracking.carrier", "tracking.number", "tracking.url", "items" };
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
		if (strcmp(err->field, fields[i]) == 0)
			return;
	unsigned idx = 0;
	int end = 0;
	require(sscanf(err->field, "items[%u].line%n", &idx, &end) == 1 && err->field[end] == '\0' &&
	        idx < MAX_LINES);
}

/* ---- requests to decide against ---- */

/* Sets of unshipped lines: the parcel's own lines, with one more, with one
 * less, the first k lines (k from the input), none. */
static void decide_all(const struct lifecycle_callback *cb, const uint8_t *data, size_t size)
{
	static int open[MAX_LINES + 2];
	size_t n = 0;
	for (size_t i = 0; i < cb->nitems; i++)
		if (!model_has(open, n, cb->items[i]))
			open[n++] = cb->items[i];
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 16777619u;

	int extra = 1;
	while (model_has(open, n, extra))
		extra++;
	size_t k = 1 + h % 8;
	int first_k[8];
	for (size_t i = 0; i < k; i++)
		first_k[i] = (int)i + 1;
	struct {
		const int *v;
		size_t n;
	} sets[5] = { { open, n }, { open, n + 1 }, { open + (n > 0), n - (n > 0) }, { first_k, k }, { NULL, 0 } };
	open[n] = extra;

	for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++) {
		if (cb->items)
			check_items(sets[s].v, sets[s].n, cb->items, cb->nitems);
		for (int st = 0; st < LIFECYCLE_STATE_MAX; st++) {
			check_decide(cb, (enum lifecycle_state)st, 0, sets[s].v, sets[s].n);
			check_decide(cb, (enum lifecycle_state)st, 1, sets[s].v, sets[s].n);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lifecycle_callback cb;
	struct order_error err;
	memset(&err, 0, sizeof err);
	memset(&cb, 0x5a, sizeof cb);
	if (lifecycle_parse_callback((const char *)data, size, &cb, &err) < 0) {
		check_error(&cb, &err);
		return 0;
	}
	check_parsed(&cb);
	decide_all(&cb, data, size);
	lifecycle_callback_free(&cb);
	require(!cb.root && !cb.items && !cb.request_id);
	return 0;
}
