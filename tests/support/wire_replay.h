/* wire_replay: drives a wire_stream the way dropshipd's filter does (it
 * holds what it has not passed on and presents it again with what comes
 * next), records the decisions, and checks the promises of wire/wire.h on
 * every call. Shared by tests/unit/test_wire.c and tests/fuzz/fuzz_wire.c,
 * hence header-only (the fuzz harness links only internal/). */
#ifndef DROPSHIP_TEST_WIRE_REPLAY_H
#define DROPSHIP_TEST_WIRE_REPLAY_H
#include <stdint.h>
#include <string.h>

#include "wire/wire.h"

#define REPLAY_KEPT 8

/* What a stream decided about one byte sequence. */
struct replay {
	size_t passed;                       /* bytes passed on in all */
	unsigned heads, ends;                /* heads accepted, requests ended */
	size_t head_at[REPLAY_KEPT];         /* where the first heads start */
	size_t end_at[REPLAY_KEPT];          /* where the first requests end (one past) */
	size_t at;                           /* where the last head starts */
	struct wire_head head[REPLAY_KEPT];  /* the first heads */
	uint64_t digest;                     /* FNV-1a of every head and end, for long runs */
	enum wire_verdict last;              /* once all bytes are in: NEED_MORE, REJECT or CLOSED */
	struct wire_error err;               /* REJECT: why */
	const char *broken;                  /* a promise the stream broke, or NULL */
};

static inline int replay_head_eq(const struct wire_head *a, const struct wire_head *b)
{
	return a->method == b->method && a->target_off == b->target_off && a->target_len == b->target_len &&
	       a->version == b->version && a->framing == b->framing && a->length == b->length &&
	       a->close == b->close && a->head_len == b->head_len;
}

static inline int replay_error_eq(const struct wire_error *a, const struct wire_error *b)
{
	return a->status == b->status && a->code == b->code && strcmp(a->field, b->field) == 0 &&
	       strcmp(a->message, b->message) == 0;
}

/* 1 if s is NUL-terminated within cap and printable ASCII. */
static inline int replay_printable(const char *s, size_t cap)
{
	if (!memchr(s, '\0', cap))
		return 0;
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return 0;
	return 1;
}

static inline int replay_error_ok(const struct wire_error *e)
{
	static const struct {
		int status;
		const char *code;
	} codes[] = {
		{ 400, "bad_request" },     { 413, "payload_too_large" }, { 431, "header_too_large" },
		{ 501, "not_implemented" }, { 505, "http_version_not_supported" },
	};
	int known = 0;
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
		known |= e->status == codes[i].status && e->code && strcmp(e->code, codes[i].code) == 0;
	return known && replay_printable(e->message, sizeof e->message) && e->message[0] &&
	       replay_printable(e->field, sizeof e->field);
}

/* What an accepted head promises about itself and the bytes it came from. */
static inline int replay_head_ok(const struct wire_head *h, const struct wire_limits *lim, const char *head)
{
	int in_list = 0;
	for (const struct wire_method *m = lim->methods; m->name; m++)
		in_list |= m == h->method;
	if (!in_list || (h->version != 10 && h->version != 11) || h->head_len > lim->max_head)
		return 0;
	if (h->target_len == 0 || h->target_off + h->target_len > h->head_len ||
	    memcmp(head, h->method->name, strlen(h->method->name)) != 0)
		return 0;
	const char *t = head + h->target_off;
	if (t[0] != '/' && !(h->target_len == 1 && t[0] == '*'))
		return 0;
	if (h->framing == WIRE_BODY_LENGTH)
		return h->length <= lim->max_body && (h->length == 0 || h->method->body);
	if (h->framing == WIRE_BODY_CHUNKED)
		return h->length == 0 && h->version == 11 && h->method->body;
	return h->framing == WIRE_BODY_NONE && h->length == 0;
}

static inline void replay_mix(struct replay *r, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		r->digest ^= (v >> (8 * i)) & 0xff;
		r->digest *= 0x100000001b3ULL;
	}
}

/* One PASS at in[start], of n bytes; before: the state before the call. */
static inline const char *replay_passed(struct replay *r, const struct wire_stream *s, const struct wire_limits *lim,
                                        const char *in, size_t start, size_t n, enum wire_state before)
{
	const struct wire_head *h = wire_stream_head(s);
	if (before == WIRE_STATE_HEAD) {
		struct wire_head alone;
		if (!h || h->head_len > n || !replay_head_ok(h, lim, in + start))
			return "PASS from a head without a sound head";
		if (wire_check_head(in + start, h->head_len, lim, &alone, NULL) != 0 || !replay_head_eq(&alone, h))
			return "an accepted head is not accepted alone, or differently";
		if (r->heads < REPLAY_KEPT) {
			r->head_at[r->heads] = start;
			r->head[r->heads] = *h;
		}
		r->heads++;
		r->at = start;
		uint64_t fields[] = { 1, start, h->target_off, h->target_len, (uint64_t)h->version,
		                      (uint64_t)h->framing, h->length, (uint64_t)h->close, h->head_len };
		for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
			replay_mix(r, fields[i]);
		replay_mix(r, (uint64_t)(h->method - lim->methods));
	}
	if (!wire_stream_ended(s))
		return NULL;
	size_t end = start + n;
	if (!h || r->ends + 1 != r->heads)
		return "a request ended without its head";
	if ((h->framing == WIRE_BODY_CHUNKED && end - r->at < h->head_len + 5) ||
	    (h->framing != WIRE_BODY_CHUNKED && end - r->at != h->head_len + h->length))
		return "a request ended elsewhere than its framing says";
	if (r->ends < REPLAY_KEPT)
		r->end_at[r->ends] = end;
	r->ends++;
	replay_mix(r, 2);
	replay_mix(r, end);
	return NULL;
}

/* One call of wire_stream_feed on what is held, in[start, end), with the
 * promises that hold for any call. */
static inline const char *replay_call(struct replay *r, struct wire_stream *s, const struct wire_limits *lim,
                                      const char *in, size_t *start, size_t end, enum wire_verdict *v)
{
	enum wire_state before = wire_stream_state(s);
	const struct wire_head *h = wire_stream_head(s);
	int closing = h && h->close && wire_stream_ended(s);
	struct wire_error err, was;
	const char *broken;
	memset(&was, 0, sizeof was);
	if (wire_stream_error(s))
		was = *wire_stream_error(s);
	size_t pass = (size_t)-1, held = end - *start;
	memset(&err, 0, sizeof err);
	*v = wire_stream_feed(s, in + *start, held, &pass, &err);
	if (*v != WIRE_PASS && pass != 0)
		return "bytes passed without PASS";
	switch (*v) {
	case WIRE_PASS:
		if (pass == 0 || pass > held || before == WIRE_STATE_FAILED || before == WIRE_STATE_CLOSED)
			return "PASS of no bytes, more bytes than held, or after the end";
		if ((broken = replay_passed(r, s, lim, in, *start, pass, before)))
			return broken;
		*start += pass;
		r->passed += pass;
		return NULL;
	case WIRE_NEED_MORE:
		if (held > (lim->max_head > 1 ? lim->max_head : 1) || before == WIRE_STATE_FAILED ||
		    before == WIRE_STATE_CLOSED)
			return "NEED_MORE while holding more than max_head bytes, or after the end";
		return NULL;
	case WIRE_REJECT:
		if (!replay_error_ok(&err) || !wire_stream_error(s) || !replay_error_eq(wire_stream_error(s), &err) ||
		    (before == WIRE_STATE_FAILED && !replay_error_eq(&was, &err)))
			return "REJECT with an unsound error, or another error than before";
		r->err = err;
		return NULL;
	case WIRE_CLOSED:
		if (before != WIRE_STATE_CLOSED || !closing)
			return "CLOSED but no request that said close has ended";
		return NULL;
	}
	return "a verdict outside the enum";
}

/* Feeds in[0, n) to a fresh stream in pieces of the sizes sizes[0, nsizes)
 * (cycled; nsizes 0: all at once), passing on what it allows and calling
 * again until it says anything but PASS, as a filter does. */
static inline void replay_run(const struct wire_limits *lim, const char *in, size_t n, const size_t *sizes,
                              size_t nsizes, struct replay *r)
{
	struct wire_stream s;
	size_t start = 0, end = 0, k = 0;
	enum wire_verdict v;
	memset(r, 0, sizeof *r);
	r->digest = 0xcbf29ce484222325ULL;
	wire_stream_init(&s, lim);
	for (;;) {
		do {
			r->broken = replay_call(r, &s, lim, in, &start, end, &v);
		} while (!r->broken && v == WIRE_PASS);
		if (r->broken || v != WIRE_NEED_MORE || end == n)
			break;
		size_t piece = nsizes ? sizes[k++ % nsizes] : n;
		end += piece < n - end ? piece : n - end;
	}
	r->last = v;
	if (!r->broken && v == WIRE_REJECT) {
		/* Refused for good: more bytes change nothing. */
		size_t pass = 1;
		struct wire_error again;
		if (wire_stream_feed(&s, in, n, &pass, &again) != WIRE_REJECT || pass != 0 ||
		    !replay_error_eq(&again, &r->err))
			r->broken = "a refused stream said something else later";
	}
}

/* 1 if a and b made the same decisions. */
static inline int replay_same(const struct replay *a, const struct replay *b)
{
	return a->passed == b->passed && a->heads == b->heads && a->ends == b->ends && a->digest == b->digest &&
	       a->last == b->last && (a->last != WIRE_REJECT || replay_error_eq(&a->err, &b->err));
}

#endif
