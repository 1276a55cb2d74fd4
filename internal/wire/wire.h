/* wire: strict HTTP/1.x request framing, checked on the raw byte stream
 * before internal/httpd reads a request from it (RFC 9112). Lenient parsers
 * accept bare LF, obs-fold, "+5" as a length, the first of two
 * Content-Lengths, no CRLF after chunk data; where a server and a proxy in
 * front read a request's end differently, a request can hide inside
 * another. A request this module accepts has one reading only.
 *
 * Pure: no I/O, no clock, no allocation. It never copies the bytes it checks:
 * the caller holds them (a filter keeps what it has not passed on) and
 * presents them again until they can be passed. Every pointer it returns
 * points into storage the caller owns.
 *
 * What it refuses, and with what (status, code):
 * - 400 bad_request: the framing or syntax of the head is wrong (see
 *   wire_check_head), or of a chunked body (chunk-size = 1*HEXDIG, chunk
 *   extensions `;name[=value]` of tokens or quoted strings, no whitespace,
 *   CRLF after every size line and after every chunk's data, trailer fields
 *   like header fields).
 * - 413 payload_too_large: a Content-Length, or the chunk sizes so far,
 *   above max_body.
 * - 431 header_too_large: a head (or a trailer section) above max_head.
 * - 501 not_implemented: a method outside the caller's list.
 * - 505 http_version_not_supported: HTTP/x.y other than 1.0 and 1.1. */
#ifndef DROPSHIP_WIRE_H
#define DROPSHIP_WIRE_H
#include <stddef.h>
#include <stdint.h>

/* A method the server accepts. The server reads a body only for methods
 * with body 1: for the others it takes whatever follows the head as the next
 * request. So a request of a method with body 0 that declares a body (a
 * Content-Length above 0, or Transfer-Encoding) is refused: a proxy would
 * forward those bytes as its body, and the server would run them as a
 * request. */
struct wire_method {
	const char *name;   /* as it must be sent, case-sensitive ("GET") */
	int body;           /* 1: the server reads a body for it; 0: none may be declared */
};

/* The caller's limits, copied by wire_stream_init (methods is not copied). */
struct wire_limits {
	const struct wire_method *methods; /* allowed methods, ended by { NULL, 0 }; must outlive
	                                      every stream and head using it (wire_head.method) */
	size_t max_head;    /* largest head, request line to the final CRLF included; also the
	                       largest chunk-size line and trailer section */
	uint64_t max_body;  /* largest body: the Content-Length, or the sum of the chunk sizes */
};

enum wire_framing {
	WIRE_BODY_NONE,     /* neither Content-Length nor Transfer-Encoding: no body */
	WIRE_BODY_LENGTH,   /* Content-Length: length bytes (0 included) */
	WIRE_BODY_CHUNKED,  /* Transfer-Encoding: chunked */
};

/* An accepted request head. */
struct wire_head {
	const struct wire_method *method; /* the matching entry of limits.methods */
	size_t target_off;  /* the request target is head[target_off, target_off + target_len) */
	size_t target_len;
	int version;        /* 10 (HTTP/1.0) or 11 (HTTP/1.1) */
	enum wire_framing framing;
	uint64_t length;    /* WIRE_BODY_LENGTH: the body's length; else 0 */
	int close;          /* 1: the connection ends after this request (HTTP/1.0 without a
	                       keep-alive option, or a close option in Connection) */
	size_t head_len;    /* bytes of the head, the empty line's CRLF included */
};

/* Why bytes were refused. */
struct wire_error {
	int status;         /* 400, 413, 431, 501 or 505 */
	const char *code;   /* "bad_request", "payload_too_large", "header_too_large",
	                       "not_implemented", "http_version_not_supported"; static storage */
	char field[64];     /* the header at fault ("" when none): printable ASCII, cut to fit */
	char message[160];  /* what is wrong, naming that header: printable ASCII */
};

/* Checks one complete head: exactly the request line, the header lines and
 * the empty line, nothing more. Accepted: "METHOD SP target SP HTTP/1.x
 * CRLF", a method of lim->methods, an origin-form target ("/" then visible
 * ASCII 0x21-0x7E) or "*" (OPTIONS only); header lines "name:value CRLF"
 * with a token name, a value of visible ASCII, SP, HTAB and bytes 0x80-0xFF;
 * for HTTP/1.1 exactly one Host (at most one for HTTP/1.0); at most one
 * Content-Length, its value plain digits (below 2^63) after at most one SP;
 * at most one Transfer-Encoding, its value "chunked" (any case) after at most
 * one SP, never with Content-Length, never on HTTP/1.0. Refused besides:
 * obs-fold, a line without a colon, a bare LF or CR, NUL or another control
 * character (HTAB aside), a head over lim->max_head (431), a Content-Length
 * over lim->max_body (413). Lines are checked in order, the first fault is
 * the one reported (in the request line: its shape, the version, the method,
 * then the target). Returns 0 and fills out (out->target_off is an offset
 * into head), or -1 and fills err (if not NULL; out is then zeroed). */
int wire_check_head(const char *head, size_t len, const struct wire_limits *lim, struct wire_head *out,
                    struct wire_error *err);

/* X-macro: the enum and the name table come from one list. */
#define WIRE_STATES(X)                                                             \
	X(WIRE_STATE_HEAD, "head")             /* holding a head until it is complete */ \
	X(WIRE_STATE_BODY, "body")             /* counting down a Content-Length body */ \
	X(WIRE_STATE_CHUNK_SIZE, "chunk_size") /* holding a chunk-size line */           \
	X(WIRE_STATE_CHUNK_DATA, "chunk_data") /* counting down a chunk's data */        \
	X(WIRE_STATE_CHUNK_END, "chunk_end")   /* holding the CRLF after chunk data */   \
	X(WIRE_STATE_TRAILER, "trailer")       /* holding the trailer section */         \
	X(WIRE_STATE_CLOSED, "closed")         /* a request said close and has ended */  \
	X(WIRE_STATE_FAILED, "failed")         /* refused: error says why */

#define WIRE_ENUM(id, name) id,
enum wire_state {
	WIRE_STATES(WIRE_ENUM)
	WIRE_STATE_MAX
};
#undef WIRE_ENUM

enum wire_verdict {
	WIRE_NEED_MORE, /* nothing can be passed yet: keep every byte given, call again with more */
	WIRE_PASS,      /* pass on the first *pass bytes and drop them; call again while bytes remain */
	WIRE_REJECT,    /* refused (err says why): pass nothing more; answer err->status and close */
	WIRE_CLOSED,    /* the last request said close and has ended: pass nothing more, drop the rest */
};

/* One connection's progress; the caller allocates it (one per connection,
 * e.g. inside the filter's context), wire_stream_init sets it up, nothing
 * needs freeing. The fields are the module's: read them through the
 * functions below. */
struct wire_stream {
	enum wire_state state;
	struct wire_limits lim;
	struct wire_head head;       /* the head of the request being passed (or last passed) */
	struct wire_head next;       /* the head being read */
	size_t pos;                  /* bytes of the held head or line examined so far */
	size_t line;                 /* where the current line of a held head or trailer starts */
	unsigned nlines;             /* lines of the held head or trailer section so far */
	unsigned nhost, ncl, nte;    /* Host, Content-Length and Transfer-Encoding lines so far */
	int keep_alive;              /* a keep-alive option in Connection */
	uint64_t left;               /* bytes of body or chunk data still to come */
	uint64_t body;               /* chunk data of this request so far */
	uint64_t requests;           /* requests passed to their end */
	int has_head;                /* head is set */
	int ended;                   /* the last PASS ended its request */
	struct wire_error error;     /* WIRE_STATE_FAILED: why */
};

/* A fresh stream, expecting a request head, with a copy of *lim. */
void wire_stream_init(struct wire_stream *s, const struct wire_limits *lim);

/* Checks the bytes the caller holds and says how many can be passed on.
 * data: every byte received and not yet passed, oldest first (a prefix of
 * them will do: NEED_MORE then asks for more of them); nothing of it is
 * kept but counts, so the bytes held must come back on the next call.
 * Heads, chunk-size lines, the CRLF after chunk data and trailer sections
 * are passed only once complete and accepted; body and chunk data as they
 * come. One PASS never covers
 * bytes of two requests (call again for the next one), so a request ends,
 * and is passed, without any byte of the next. When the bytes held reach a
 * decision only partly (a valid part, then a fault), the valid part is passed
 * first and the next call rejects: the decisions do not depend on how the
 * bytes were cut. NEED_MORE is never returned while more than
 * max(lim.max_head, 1) bytes are held. After REJECT every call rejects with
 * the same error, after CLOSED every call says CLOSED; *pass is then 0. err
 * may be NULL (the error stays readable through wire_stream_error); so may
 * data when len is 0. */
enum wire_verdict wire_stream_feed(struct wire_stream *s, const char *data, size_t len, size_t *pass,
                                   struct wire_error *err);

/* The head of the request the last PASS belongs to (method, framing, close);
 * NULL before the first head is passed. Its target offset is relative to
 * the start of the PASS that carried the head. */
const struct wire_head *wire_stream_head(const struct wire_stream *s);

/* Where the stream is: WIRE_STATE_CLOSED after CLOSED, FAILED after REJECT. */
enum wire_state wire_stream_state(const struct wire_stream *s);

/* 1 if the last PASS ended its request, else 0. */
int wire_stream_ended(const struct wire_stream *s);

/* The refusal once feed has said REJECT, else NULL. */
const struct wire_error *wire_stream_error(const struct wire_stream *s);

/* Name of a state for logs ("head", "chunk_size"...); "?" if unknown. Static storage. */
const char *wire_state_name(enum wire_state s);

#endif
