/* libFuzzer harness for wire: a connection's bytes through wire_stream,
 * whole and cut into pieces, and through wire_check_head. Not part of
 * `make test`; `make fuzz` builds it with ASan and UBSan and runs it from
 * the seeds in tests/fuzz/corpus/fuzz_wire/.
 *
 * Input: byte 0 says how the rest is cut (low 3 bits: k, the number of
 * piece sizes that follow, each a byte + 1, cycled; k = 0: one byte at a
 * time) and which limits apply (bits 3-4); then k bytes, then the stream.
 * Seeds start with 0x00: one byte at a time, dropshipd's limits.
 *
 * Besides memory errors it traps when the whole and the cut runs decide
 * differently, when a call breaks a promise of wire.h (tests/support/
 * wire_replay.h checks them), when a request's end needs bytes after it,
 * or when wire_check_head and the stream disagree about a head. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "support/wire_replay.h"
#include "wire/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int ok)
{
	if (!ok)
		abort();
}

static const struct wire_method methods[] = {
	{ "GET", 0 },    { "HEAD", 0 },  { "POST", 1 },    { "PUT", 1 },
	{ "DELETE", 0 }, { "PATCH", 1 }, { "OPTIONS", 0 }, { NULL, 0 },
};

/* dropshipd's kind of limits, then small ones that fuzzing reaches. */
static const struct wire_limits limits[4] = {
	{ methods, 1024, 4096 },
	{ methods, 48, 16 },
	{ methods, 200, 0 },
	{ methods, 4096, UINT64_MAX },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t one = 1;
	if (size == 0)
		return 0;
	size_t k = data[0] & 7, sizes[7];
	const struct wire_limits *lim = &limits[(data[0] >> 3) & 3];
	if (size < 1 + k)
		return 0;
	for (size_t i = 0; i < k; i++)
		sizes[i] = (size_t)data[1 + i] + 1;
	const char *in = (const char *)data + 1 + k;
	size_t n = size - 1 - k;

	struct replay whole, cut;
	replay_run(lim, in, n, NULL, 0, &whole);
	require(!whole.broken);
	replay_run(lim, in, n, k ? sizes : &one, k ? k : 1, &cut);
	require(!cut.broken && replay_same(&whole, &cut));

	/* A request ends on its own last byte: its bytes alone end it too. */
	for (unsigned i = 0; i < whole.ends && i < REPLAY_KEPT; i++) {
		struct replay upto;
		replay_run(lim, in, whole.end_at[i], NULL, 0, &upto);
		require(!upto.broken && upto.ends == i + 1 && upto.passed == whole.end_at[i]);
	}

	/* wire_check_head on all the bytes: accepted only as the stream's first head. */
	struct wire_head h;
	struct wire_error err;
	if (wire_check_head(in, n, lim, &h, &err) == 0) {
		require(whole.heads >= 1 && whole.head_at[0] == 0 && replay_head_eq(&whole.head[0], &h));
		require(h.head_len == n && replay_head_ok(&h, lim, in));
	} else {
		require(replay_error_ok(&err) && h.method == NULL && h.head_len == 0);
		require(whole.heads == 0 || whole.head[0].head_len != n);
		if (whole.heads == 0 && whole.last == WIRE_REJECT)
			require(replay_error_eq(&whole.err, &err));
	}
	return 0;
}
