#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "wire/wire.h"

#define WIRE_NAME(id, name) [id] = name,
static const char *const wire_state_names[WIRE_STATE_MAX] = { WIRE_STATES(WIRE_NAME) };
#undef WIRE_NAME

#define WIRE_BIT(s) (1u << (s))

/* Where each state may go; wire_set_state asserts it. */
static const unsigned wire_next[WIRE_STATE_MAX] = {
	[WIRE_STATE_HEAD] = WIRE_BIT(WIRE_STATE_BODY) | WIRE_BIT(WIRE_STATE_CHUNK_SIZE) | WIRE_BIT(WIRE_STATE_HEAD) |
	                    WIRE_BIT(WIRE_STATE_CLOSED) | WIRE_BIT(WIRE_STATE_FAILED),
	[WIRE_STATE_BODY] = WIRE_BIT(WIRE_STATE_HEAD) | WIRE_BIT(WIRE_STATE_CLOSED),
	[WIRE_STATE_CHUNK_SIZE] = WIRE_BIT(WIRE_STATE_CHUNK_DATA) | WIRE_BIT(WIRE_STATE_TRAILER) |
	                          WIRE_BIT(WIRE_STATE_FAILED),
	[WIRE_STATE_CHUNK_DATA] = WIRE_BIT(WIRE_STATE_CHUNK_END),
	[WIRE_STATE_CHUNK_END] = WIRE_BIT(WIRE_STATE_CHUNK_SIZE) | WIRE_BIT(WIRE_STATE_FAILED),
	[WIRE_STATE_TRAILER] = WIRE_BIT(WIRE_STATE_HEAD) | WIRE_BIT(WIRE_STATE_CLOSED) | WIRE_BIT(WIRE_STATE_FAILED),
};

#define WIRE_LENGTH_MAX ((uint64_t)INT64_MAX)

/* The only place the state changes. Entering a state that holds a block
 * of lines starts its count afresh; a new head forgets the last one's. */
static void wire_set_state(struct wire_stream *s, enum wire_state to)
{
	assert(s->state < WIRE_STATE_MAX && (wire_next[s->state] & WIRE_BIT(to)));
	s->state = to;
	s->pos = 0;
	s->line = 0;
	s->nlines = 0;
	if (to == WIRE_STATE_HEAD) {
		memset(&s->next, 0, sizeof s->next);
		s->nhost = s->ncl = s->nte = 0;
		s->keep_alive = 0;
		s->body = 0;
	}
}

static const char *wire_code(int status)
{
	switch (status) {
	case 413:
		return "payload_too_large";
	case 431:
		return "header_too_large";
	case 501:
		return "not_implemented";
	case 505:
		return "http_version_not_supported";
	default:
		return "bad_request";
	}
}

/* Fills err: the message is before, the name shown (bytes outside printable
 * ASCII as '?', cut to fit a field), then after; field is that name when
 * is_field. Returns -1. */
static int wire_fail_named(struct wire_error *err, int status, const char *before, const char *name, size_t nlen,
                           const char *after, int is_field)
{
	char shown[sizeof err->field];
	size_t n = 0;
	for (; n < nlen && n + 1 < sizeof shown; n++) {
		unsigned char c = (unsigned char)name[n];
		shown[n] = c >= 0x20 && c <= 0x7e ? (char)c : '?';
	}
	shown[n] = '\0';
	err->status = status;
	err->code = wire_code(status);
	snprintf(err->field, sizeof err->field, "%s", is_field ? shown : "");
	snprintf(err->message, sizeof err->message, "%s%s%s", before, shown, after);
	return -1;
}

/* A fault of the header (or trailer field) name: the message names it. */
static int wire_fail_at(struct wire_error *err, int status, const char *before, const char *name, size_t nlen,
                        const char *after)
{
	return wire_fail_named(err, status, before, name, nlen, after, 1);
}

static int wire_fail(struct wire_error *err, int status, const char *msg)
{
	return wire_fail_named(err, status, msg, "", 0, "", 0);
}

/* A size limit: "<what> larger than <limit> bytes". */
static int wire_fail_limit(struct wire_error *err, int status, const char *what, uint64_t limit)
{
	wire_fail(err, status, "");
	snprintf(err->message, sizeof err->message, "%s larger than %llu bytes", what, (unsigned long long)limit);
	return -1;
}

static int wire_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* The value of a hex digit, or -1. */
static int wire_hex(unsigned char c)
{
	if (wire_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* tchar of RFC 9110, 5.6.2. */
static int wire_tchar(unsigned char c)
{
	return wire_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Bytes of p[0, n) that are tchars, from the start. */
static size_t wire_token_len(const char *p, size_t n)
{
	size_t k = 0;
	while (k < n && wire_tchar((unsigned char)p[k]))
		k++;
	return k;
}

/* A control character: anything below SP but HTAB, and DEL. CR and LF
 * count: inside a line they are a lone CR or part of a line end that is not
 * CRLF. */
static int wire_ctl(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* p[0, n) equals lit, ASCII case ignored. */
static int wire_is(const char *p, size_t n, const char *lit)
{
	size_t i = 0;
	for (; i < n && lit[i]; i++) {
		unsigned char a = (unsigned char)p[i], b = (unsigned char)lit[i];
		if (a >= 'A' && a <= 'Z')
			a = (unsigned char)(a - 'A' + 'a');
		if (b >= 'A' && b <= 'Z')
			b = (unsigned char)(b - 'A' + 'a');
		if (a != b)
			return 0;
	}
	return i == n && lit[i] == '\0';
}

/* The request line: METHOD SP target SP HTTP/d.d, nothing else. Its shape
 * first, then the version (505), the method (501), then the target. */
static int wire_request_line(struct wire_stream *s, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (wire_ctl((unsigned char)p[i]))
			return wire_fail(&s->error, 400, "control character (or a lone CR) in the request line");
	size_t mlen = wire_token_len(p, n);
	if (mlen == 0 || mlen == n || p[mlen] != ' ')
		return wire_fail(&s->error, 400, "malformed request line: the method is not a token followed by SP");
	const char *t = p + mlen + 1, *end = p + n;
	const char *sp = memchr(t, ' ', (size_t)(end - t));
	if (!sp || sp == t)
		return wire_fail(&s->error, 400, "malformed request line: not METHOD SP target SP version");
	const char *v = sp + 1;
	if (end - v != 8 || memcmp(v, "HTTP/", 5) != 0 || !wire_digit((unsigned char)v[5]) || v[6] != '.' ||
	    !wire_digit((unsigned char)v[7]))
		return wire_fail(&s->error, 400, "malformed request line: the version is not HTTP/d.d");
	if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
		return wire_fail(&s->error, 505, "HTTP version not supported: only HTTP/1.0 and HTTP/1.1");
	const struct wire_method *m = s->lim.methods;
	while (m && m->name && !(strlen(m->name) == mlen && memcmp(m->name, p, mlen) == 0))
		m++;
	if (!m || !m->name)
		return wire_fail_named(&s->error, 501, "method ", p, mlen, " not implemented", 0);
	size_t tlen = (size_t)(sp - t);
	for (size_t i = 0; i < tlen; i++) {
		unsigned char c = (unsigned char)t[i];
		if (c < 0x21 || c > 0x7e)
			return wire_fail(&s->error, 400, "request target with a byte outside visible ASCII");
	}
	int star = tlen == 1 && t[0] == '*';
	if (t[0] != '/' && !star)
		return wire_fail(&s->error, 400, "request target neither origin-form (/path) nor *");
	if (star && strcmp(m->name, "OPTIONS") != 0)
		return wire_fail(&s->error, 400, "request target * with a method other than OPTIONS");
	s->next.method = m;
	s->next.target_off = (size_t)(t - p);
	s->next.target_len = tlen;
	s->next.version = v[7] == '0' ? 10 : 11;
	return 0;
}

/* The syntax of a header or trailer field line: token ":" value, the value
 * without control characters. Sets the name's length and the value. */
static int wire_field_syntax(struct wire_error *err, const char *p, size_t n, size_t *nlen, const char **val,
                             size_t *vlen)
{
	if (p[0] == ' ' || p[0] == '\t')
		return wire_fail(err, 400, "obs-fold: a header line starts with whitespace");
	const char *colon = memchr(p, ':', n);
	if (!colon)
		return wire_fail_at(err, 400, "header line without a colon: ", p, n, "");
	size_t k = (size_t)(colon - p);
	if (k == 0)
		return wire_fail(err, 400, "header line with an empty name");
	if (wire_token_len(p, k) != k)
		return wire_fail_at(err, 400, "whitespace or a non-token character in header name \"", p, k, "\"");
	for (size_t i = k + 1; i < n; i++)
		if (wire_ctl((unsigned char)p[i]))
			return wire_fail_at(err, 400, "control character (or a lone CR) in the value of ", p, k, "");
	*nlen = k;
	*val = colon + 1;
	*vlen = n - k - 1;
	return 0;
}

/* The value of a framing header: at most one SP after the colon, nothing
 * after the value. Proxies and servers trim other whitespace differently. */
static void wire_framing_value(const char **v, size_t *vlen)
{
	if (*vlen > 0 && **v == ' ') {
		(*v)++;
		(*vlen)--;
	}
}

static int wire_content_length(struct wire_stream *s, const char *v, size_t vlen)
{
	static const char cl[] = "Content-Length";
	if (++s->ncl > 1)
		return wire_fail_at(&s->error, 400, "duplicate ", cl, sizeof cl - 1, "");
	if (s->nte)
		return wire_fail_at(&s->error, 400, "", cl, sizeof cl - 1, " with Transfer-Encoding");
	wire_framing_value(&v, &vlen);
	uint64_t len = 0;
	size_t i = 0;
	for (; i < vlen && wire_digit((unsigned char)v[i]); i++) {
		unsigned d = (unsigned)(v[i] - '0');
		if (len > (WIRE_LENGTH_MAX - d) / 10)
			break;
		len = len * 10 + d;
	}
	if (vlen == 0 || i != vlen)
		return wire_fail_at(&s->error, 400, "", cl, sizeof cl - 1, " is not plain ASCII digits below 2^63");
	if (len > 0 && !s->next.method->body)
		return wire_fail_at(&s->error, 400, "", cl, sizeof cl - 1, " above 0 for a method without a body");
	if (len > s->lim.max_body)
		return wire_fail_limit(&s->error, 413, "Content-Length: body", s->lim.max_body);
	s->next.framing = WIRE_BODY_LENGTH;
	s->next.length = len;
	return 0;
}

static int wire_transfer_encoding(struct wire_stream *s, const char *v, size_t vlen)
{
	static const char te[] = "Transfer-Encoding";
	if (++s->nte > 1)
		return wire_fail_at(&s->error, 400, "duplicate ", te, sizeof te - 1, "");
	wire_framing_value(&v, &vlen);
	if (!wire_is(v, vlen, "chunked"))
		return wire_fail_at(&s->error, 400, "", te, sizeof te - 1, " other than exactly chunked");
	if (s->next.version == 10)
		return wire_fail_at(&s->error, 400, "", te, sizeof te - 1, " on HTTP/1.0");
	if (s->ncl)
		return wire_fail_at(&s->error, 400, "", te, sizeof te - 1, " with Content-Length");
	if (!s->next.method->body)
		return wire_fail_at(&s->error, 400, "", te, sizeof te - 1, " for a method without a body");
	s->next.framing = WIRE_BODY_CHUNKED;
	return 0;
}

/* Connection: a list of options; close and keep-alive count. */
static void wire_connection(struct wire_stream *s, const char *v, size_t vlen)
{
	const char *end = v + vlen;
	while (v < end) {
		const char *comma = memchr(v, ',', (size_t)(end - v));
		const char *e = comma ? comma : end;
		while (v < e && (*v == ' ' || *v == '\t'))
			v++;
		const char *b = e;
		while (b > v && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		if (wire_is(v, (size_t)(b - v), "close"))
			s->next.close = 1;
		else if (wire_is(v, (size_t)(b - v), "keep-alive"))
			s->keep_alive = 1;
		v = comma ? comma + 1 : end;
	}
}

static int wire_header_line(struct wire_stream *s, const char *p, size_t n)
{
	size_t k, vlen;
	const char *v;
	if (wire_field_syntax(&s->error, p, n, &k, &v, &vlen) < 0)
		return -1;
	if (wire_is(p, k, "Content-Length"))
		return wire_content_length(s, v, vlen);
	if (wire_is(p, k, "Transfer-Encoding"))
		return wire_transfer_encoding(s, v, vlen);
	if (wire_is(p, k, "Host") && ++s->nhost > 1)
		return wire_fail_at(&s->error, 400, "duplicate ", "Host", 4, "");
	if (wire_is(p, k, "Connection"))
		wire_connection(s, v, vlen);
	return 0;
}

/* A trailer field: a header line's syntax; no field that frames, routes or
 * ends the connection, since some servers add trailers to the request's headers. */
static int wire_trailer_line(struct wire_stream *s, const char *p, size_t n)
{
	size_t k, vlen;
	const char *v;
	if (wire_field_syntax(&s->error, p, n, &k, &v, &vlen) < 0)
		return -1;
	if (wire_is(p, k, "Content-Length") || wire_is(p, k, "Transfer-Encoding") || wire_is(p, k, "Host") ||
	    wire_is(p, k, "Connection"))
		return wire_fail_at(&s->error, 400, "", p, k, " not allowed in a trailer");
	return 0;
}

/* The empty line has come: what only the whole head can say. */
static int wire_end_head(struct wire_stream *s, size_t head_len)
{
	if (s->next.version == 11 && s->nhost == 0)
		return wire_fail_at(&s->error, 400, "missing ", "Host", 4, " (HTTP/1.1 needs exactly one)");
	if (s->next.version == 10 && !s->keep_alive)
		s->next.close = 1;
	s->next.head_len = head_len;
	return 0;
}

/* Reads the lines of a held block from s->pos: the head, or the trailer
 * section (trailer 1). Returns 1 and the block's length when its empty line
 * is in, 0 while it needs more bytes, -1 on a fault. Only the first
 * lim.max_head bytes are examined, so the faults found do not depend on how
 * many bytes came at once. */
static int wire_scan_block(struct wire_stream *s, const char *u, size_t n, int trailer, size_t *blen)
{
	size_t max = s->lim.max_head, stop = n < max ? n : max;
	while (s->pos < stop) {
		const char *lf = memchr(u + s->pos, '\n', stop - s->pos);
		if (!lf) {
			s->pos = stop;
			break;
		}
		size_t i = (size_t)(lf - u), start = s->line;
		s->pos = s->line = i + 1;
		if (i == start || u[i - 1] != '\r')
			return wire_fail(&s->error, 400, "bare LF: every line must end with CRLF");
		size_t len = i - 1 - start;
		if (len == 0 && (trailer || s->nlines > 0)) {
			*blen = i + 1;
			if (!trailer && wire_end_head(s, i + 1) < 0)
				return -1;
			return 1;
		}
		int r = trailer ? wire_trailer_line(s, u + start, len)
		        : s->nlines == 0 ? wire_request_line(s, u + start, len)
		                         : wire_header_line(s, u + start, len);
		s->nlines++;
		if (r < 0)
			return -1;
	}
	if (n > max)
		return wire_fail_limit(&s->error, 431, trailer ? "trailer section" : "head", max);
	return 0;
}

/* A chunk extension's value: a token or a quoted string. Returns its length
 * at p, or 0 if neither. */
static size_t wire_ext_value(const char *p, size_t n)
{
	if (n == 0 || p[0] != '"')
		return wire_token_len(p, n);
	for (size_t i = 1; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '"')
			return i + 1;
		if (c == '\\') {
			if (++i == n)
				return 0;
			c = (unsigned char)p[i];
		}
		if (wire_ctl(c))
			return 0;
	}
	return 0;
}

/* What follows a chunk size: *( ";" token [ "=" ( token / quoted-string ) ] ),
 * without whitespace. */
static int wire_chunk_ext(struct wire_error *err, const char *p, size_t n)
{
	size_t k = 0;
	while (k < n) {
		if (p[k] != ';')
			return wire_fail(err, 400, "chunk size followed by something other than ;extension or CRLF");
		size_t name = wire_token_len(p + k + 1, n - k - 1);
		if (name == 0)
			return wire_fail(err, 400, "chunk extension without a token name");
		k += 1 + name;
		if (k == n || p[k] != '=')
			continue;
		size_t value = wire_ext_value(p + k + 1, n - k - 1);
		if (value == 0)
			return wire_fail(err, 400, "chunk extension value neither a token nor a quoted string");
		k += 1 + value;
	}
	return 0;
}

/* A chunk-size line: 1*HEXDIG *( ";" token [ "=" ( token / quoted-string ) ] )
 * CRLF, without whitespace. Returns 1 with the line's length in *used, 0
 * while it needs more bytes, -1 on a fault. */
static int wire_chunk_line(struct wire_stream *s, const char *u, size_t n, size_t *used)
{
	size_t max = s->lim.max_head, stop = n < max ? n : max;
	const char *lf = s->pos < stop ? memchr(u + s->pos, '\n', stop - s->pos) : NULL;
	if (!lf) {
		if (s->pos < stop)
			s->pos = stop;
		if (n > max)
			return wire_fail_limit(&s->error, 400, "chunk-size line", max);
		return 0;
	}
	size_t i = (size_t)(lf - u);
	if (i == 0 || u[i - 1] != '\r')
		return wire_fail(&s->error, 400, "bare LF: every line must end with CRLF");
	size_t len = i - 1, k = 0;
	uint64_t size = 0;
	int d;
	for (; k < len && (d = wire_hex((unsigned char)u[k])) >= 0; k++) {
		if (size > (WIRE_LENGTH_MAX - (unsigned)d) / 16)
			return wire_fail(&s->error, 400, "chunk size of 2^63 or more");
		size = size * 16 + (unsigned)d;
	}
	if (k == 0)
		return wire_fail(&s->error, 400, "chunk size is not hexadecimal digits");
	if (wire_chunk_ext(&s->error, u + k, len - k) < 0)
		return -1;
	if (size > s->lim.max_body - s->body)
		return wire_fail_limit(&s->error, 413, "chunked body", s->lim.max_body);
	s->body += size;
	s->left = size;
	*used = i + 1;
	return 1;
}

/* The request's last byte is passed: on to the next head, or closed. */
static int wire_end_request(struct wire_stream *s)
{
	s->requests++;
	wire_set_state(s, s->head.close ? WIRE_STATE_CLOSED : WIRE_STATE_HEAD);
	return 2;
}

/* One step at u, the first byte not yet passed. Returns 2 when the request
 * ended (its last byte within *used), 1 when a unit was done and there may
 * be more to do, 0 when it needs more bytes (*used may still be above 0: body
 * bytes), -1 on a fault. */
static int wire_step(struct wire_stream *s, const char *u, size_t n, size_t *used)
{
	size_t len = 0;
	int r;
	switch (s->state) {
	case WIRE_STATE_HEAD:
		if ((r = wire_scan_block(s, u, n, 0, &len)) <= 0)
			return r;
		*used = len;
		s->head = s->next;
		s->has_head = 1;
		if (s->head.framing == WIRE_BODY_CHUNKED) {
			wire_set_state(s, WIRE_STATE_CHUNK_SIZE);
			return 1;
		}
		if (s->head.length == 0)
			return wire_end_request(s);
		s->left = s->head.length;
		wire_set_state(s, WIRE_STATE_BODY);
		return 1;
	case WIRE_STATE_BODY:
	case WIRE_STATE_CHUNK_DATA:
		*used = s->left < n ? (size_t)s->left : n;
		s->left -= *used;
		if (s->left > 0)
			return 0;
		if (s->state == WIRE_STATE_BODY)
			return wire_end_request(s);
		wire_set_state(s, WIRE_STATE_CHUNK_END);
		return 1;
	case WIRE_STATE_CHUNK_SIZE:
		if ((r = wire_chunk_line(s, u, n, used)) <= 0)
			return r;
		wire_set_state(s, s->left > 0 ? WIRE_STATE_CHUNK_DATA : WIRE_STATE_TRAILER);
		return 1;
	case WIRE_STATE_CHUNK_END:
		if ((n >= 1 && u[0] != '\r') || (n >= 2 && u[1] != '\n'))
			return wire_fail(&s->error, 400, "chunk data not followed by CRLF");
		if (n < 2)
			return 0;
		*used = 2;
		wire_set_state(s, WIRE_STATE_CHUNK_SIZE);
		return 1;
	case WIRE_STATE_TRAILER:
		if ((r = wire_scan_block(s, u, n, 1, &len)) <= 0)
			return r;
		*used = len;
		return wire_end_request(s);
	default:
		return 0;
	}
}

void wire_stream_init(struct wire_stream *s, const struct wire_limits *lim)
{
	memset(s, 0, sizeof *s);
	s->state = WIRE_STATE_HEAD;
	s->lim = *lim;
}

enum wire_verdict wire_stream_feed(struct wire_stream *s, const char *data, size_t len, size_t *pass,
                                   struct wire_error *err)
{
	size_t p = 0;
	int r = 1;
	if (!data) {
		data = "";
		len = 0;
	}
	while (r == 1 && s->state != WIRE_STATE_FAILED && s->state != WIRE_STATE_CLOSED) {
		size_t used = 0;
		r = wire_step(s, data + p, len - p, &used);
		p += used;
		if (r < 0)
			wire_set_state(s, WIRE_STATE_FAILED);
	}
	*pass = p;
	if (p > 0) {
		s->ended = r == 2;
		return WIRE_PASS;
	}
	if (s->state == WIRE_STATE_FAILED) {
		if (err)
			*err = s->error;
		return WIRE_REJECT;
	}
	return s->state == WIRE_STATE_CLOSED ? WIRE_CLOSED : WIRE_NEED_MORE;
}

const struct wire_head *wire_stream_head(const struct wire_stream *s)
{
	return s->has_head ? &s->head : NULL;
}

enum wire_state wire_stream_state(const struct wire_stream *s)
{
	return s->state;
}

int wire_stream_ended(const struct wire_stream *s)
{
	return s->ended;
}

const struct wire_error *wire_stream_error(const struct wire_stream *s)
{
	return s->state == WIRE_STATE_FAILED ? &s->error : NULL;
}

int wire_check_head(const char *head, size_t len, const struct wire_limits *lim, struct wire_head *out,
                    struct wire_error *err)
{
	struct wire_stream s;
	size_t head_len = 0;
	wire_stream_init(&s, lim);
	int r = wire_scan_block(&s, head, len, 0, &head_len);
	if (r == 0)
		r = wire_fail(&s.error, 400, "incomplete head: no empty line at its end");
	else if (r > 0 && head_len != len)
		r = wire_fail(&s.error, 400, "bytes after the empty line that ends the head");
	if (r < 0) {
		memset(out, 0, sizeof *out);
		if (err)
			*err = s.error;
		return -1;
	}
	*out = s.next;
	return 0;
}

const char *wire_state_name(enum wire_state s)
{
	return (unsigned)s < WIRE_STATE_MAX ? wire_state_names[s] : "?";
}
