/* libFuzzer harness for webhook signatures. Not part of `make test`; `make
 * fuzz` builds it with ASan and UBSan and runs it from the seeds in
 * tests/fuzz/corpus/fuzz_sig/.
 *
 * Input: two option bytes, then NUL-separated fields
 *     secrets \0 webhook-id \0 webhook-timestamp \0 signature header \0 body
 * where secrets are newline-separated (at most 8, as internal/http splits a
 * store's or supplier's list); a field the input ends before is an absent
 * header (NULL), and the body is the rest, NULs included. The first option
 * byte picks the clock (a distance from the timestamp), the key buffer
 * given to sig_secret_key and (top bit) a header padded to around the
 * longest sig.c reads; the second which byte of a signature to flip (both,
 * how).
 *
 * Besides memory errors it traps when a result differs from a model of
 * sig.h written out here (its own base64 decoder and OpenSSL's one-shot
 * HMAC): the key of each secret, every result of sig_verify_standard and
 * sig_verify_hmac_b64 on the fuzzed headers, and signatures made by
 * sig_sign_standard / sig_sign_hmac_b64 for the input verifying, alone and
 * ahead of the fuzzed header, while one flipped byte of them does not. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sig/sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SECRETS 8
#define MAC_LEN 32
#define B64_LEN 44
/* What sig.c examines of a Standard Webhooks header (see its comments). */
#define HEADER_MAX 4096
#define ENTRIES_MAX 16

static void require(int ok)
{
	if (!ok)
		abort();
}

/* ---- the model ---- */

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Standard base64, padded to a multiple of 4, nothing else allowed. */
static int model_b64_decode(const char *s, unsigned char *out, size_t cap)
{
	size_t n = strlen(s);
	if (n == 0 || n % 4)
		return -1;
	size_t pad = s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
	size_t len = n / 4 * 3 - pad;
	if (len > cap)
		return -1;
	uint32_t acc = 0;
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		int v = i >= n - pad ? 0 : b64_value((unsigned char)s[i]);
		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		if (i % 4 == 3) {
			unsigned char b[3] = { (unsigned char)(acc >> 16), (unsigned char)(acc >> 8), (unsigned char)acc };
			for (int k = 0; k < 3 && w < len; k++)
				out[w++] = b[k];
			acc = 0;
		}
	}
	return (int)len;
}

/* sig_secret_key: whsec_<base64>, else the text's own bytes. */
static int model_key(const char *secret, unsigned char *key, size_t cap)
{
	if (!secret || !*secret)
		return -1;
	if (strncmp(secret, "whsec_", 6) == 0)
		return model_b64_decode(secret + 6, key, cap);
	size_t n = strlen(secret);
	if (n > cap)
		return -1;
	memcpy(key, secret, n);
	return (int)n;
}

static void model_mac_b64(const unsigned char *key, size_t keylen, const void *msg, size_t len,
                          char out[B64_LEN + 1])
{
	unsigned char mac[MAC_LEN];
	unsigned maclen = 0;
	static const unsigned char nothing[1];
	require(HMAC(EVP_sha256(), key, (int)keylen, len ? msg : nothing, len, mac, &maclen) != NULL &&
	        maclen == MAC_LEN);
	require(EVP_EncodeBlock((unsigned char *)out, mac, MAC_LEN) == B64_LEN);
}

/* The Standard Webhooks MAC of id.ts.body with the secret's key (ts as
 * its decimal value), or -1 when the secret gives no usable key. */
static int model_standard(const char *secret, const char *id, int64_t ts, const void *body,
                          size_t body_len, char out[B64_LEN + 1])
{
	unsigned char key[SIG_KEY_MAX];
	int keylen = model_key(secret, key, sizeof key);
	if (keylen <= 0)
		return -1;
	char tsbuf[24];
	int tl = snprintf(tsbuf, sizeof tsbuf, "%lld", (long long)ts);
	size_t il = strlen(id), n = il + 1 + (size_t)tl + 1 + body_len;
	unsigned char *msg = malloc(n);
	require(msg != NULL);
	memcpy(msg, id, il);
	msg[il] = '.';
	memcpy(msg + il + 1, tsbuf, (size_t)tl);
	msg[il + 1 + (size_t)tl] = '.';
	if (body_len)
		memcpy(msg + il + 2 + (size_t)tl, body, body_len);
	model_mac_b64(key, (size_t)keylen, msg, n, out);
	free(msg);
	return 0;
}

/* Digits only, no sign, fits int64. */
static int model_timestamp(const char *s, int64_t *out)
{
	if (!s || !*s)
		return -1;
	int64_t v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (INT64_MAX - (*s - '0')) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	return 0;
}

static int within(int64_t a, int64_t b, int64_t tol)
{
	return a >= b ? (uint64_t)a - (uint64_t)b <= (uint64_t)tol : (uint64_t)b - (uint64_t)a <= (uint64_t)tol;
}

static enum sig_result model_verify_standard(const char *const *secrets, size_t n, const char *id,
                                             const char *ts, const char *header, const void *body,
                                             size_t body_len, int64_t now)
{
	int64_t t;
	if (!id || !*id || !ts || !*ts || !header || !*header)
		return SIG_MISSING;
	if (model_timestamp(ts, &t) < 0 || !within(now, t, SIG_TOLERANCE_S))
		return SIG_STALE;
	if (strlen(header) > HEADER_MAX)
		return SIG_INVALID;
	for (size_t i = 0; i < n; i++) {
		char want[B64_LEN + 1];
		if (model_standard(secrets[i], id, t, body, body_len, want) < 0)
			continue;
		const char *p = header;
		for (int entries = 0; entries < ENTRIES_MAX; entries++) {
			p += strspn(p, " ");
			if (!*p)
				break;
			size_t len = strcspn(p, " ");
			if (len == 3 + B64_LEN && memcmp(p, "v1,", 3) == 0 && memcmp(p + 3, want, B64_LEN) == 0)
				return SIG_OK;
			p += len;
		}
	}
	return SIG_INVALID;
}

static enum sig_result model_verify_hmac(const char *const *secrets, size_t n, const char *header,
                                         const void *body, size_t body_len)
{
	if (!header || !*header)
		return SIG_MISSING;
	if (strlen(header) != B64_LEN)
		return SIG_INVALID;
	for (size_t i = 0; i < n; i++) {
		char want[B64_LEN + 1];
		if (!secrets[i] || !*secrets[i])
			continue;
		model_mac_b64((const unsigned char *)secrets[i], strlen(secrets[i]), body, body_len, want);
		if (memcmp(header, want, B64_LEN) == 0)
			return SIG_OK;
	}
	return SIG_INVALID;
}

/* ---- the checks ---- */

struct input {
	const char *secrets[MAX_SECRETS];
	size_t nsecrets;
	const char *id, *ts, *header;
	const unsigned char *body;
	size_t body_len;
	int64_t now;
	size_t keycap;
	unsigned flip;
	unsigned char flip_xor;
};

static void check_keys(const struct input *in)
{
	for (size_t i = 0; i < in->nsecrets; i++) {
		unsigned char key[SIG_KEY_MAX], want[SIG_KEY_MAX];
		memset(key, 0xee, sizeof key);
		int len = sig_secret_key(in->secrets[i], key, in->keycap);
		int mlen = model_key(in->secrets[i], want, in->keycap);
		require(len == mlen && len != 0);
		if (len > 0)
			require(memcmp(key, want, (size_t)len) == 0);
		/* Not a byte written past the key. */
		for (size_t k = len > 0 ? (size_t)len : 0; k < sizeof key; k++)
			require(key[k] == 0xee);
	}
}

static enum sig_result verify_standard(const struct input *in, const char *const *secrets, size_t n,
                                       const char *header, int64_t now)
{
	enum sig_result r = sig_verify_standard(secrets, n, in->id, in->ts, header, in->body, in->body_len,
	                                        now, SIG_TOLERANCE_S);
	require(r == model_verify_standard(secrets, n, in->id, in->ts, header, in->body, in->body_len, now));
	return r;
}

/* sig with its byte at pos changed by xor (never to NUL, never unchanged). */
static void flip_byte(char *sig, unsigned pos, unsigned char xor)
{
	if (!xor)
		xor = 1;
	if ((sig[pos] ^ xor) == 0)
		xor ^= 1;
	sig[pos] = (char)(sig[pos] ^ xor);
}

static void check_standard(const struct input *in)
{
	verify_standard(in, in->secrets, in->nsecrets, in->header, in->now);

	int64_t ts;
	if (!in->id || model_timestamp(in->ts, &ts) < 0)
		return;
	int first = 1;
	for (size_t i = 0; i < in->nsecrets; i++) {
		char sig[SIG_V1_MAX], want[B64_LEN + 1];
		int mrc = model_standard(in->secrets[i], in->id, ts, in->body, in->body_len, want);
		require(sig_sign_standard(in->secrets[i], in->id, ts, in->body, in->body_len, sig, SIG_V1_MAX - 1) == -1);
		int rc = sig_sign_standard(in->secrets[i], in->id, ts, in->body, in->body_len, sig, sizeof sig);
		require(rc == mrc);
		if (rc < 0)
			continue;
		require(strlen(sig) == 3 + B64_LEN && memcmp(sig, "v1,", 3) == 0 && memcmp(sig + 3, want, B64_LEN) == 0);
		if (!*in->id)
			continue;

		/* It verifies alone, at the timestamp and at the edges of the tolerance... */
		const char *one[] = { in->secrets[i] };
		require(verify_standard(in, one, 1, sig, ts) == SIG_OK);
		if (ts <= INT64_MAX - SIG_TOLERANCE_S)
			require(verify_standard(in, one, 1, sig, ts + SIG_TOLERANCE_S) == SIG_OK);
		require(verify_standard(in, one, 1, sig, ts - SIG_TOLERANCE_S) == SIG_OK);
		/* ...and with every secret, first in a header that goes on with the
		 * fuzzed one (for one secret: each costs every secret's MAC). */
		if (first) {
			char both[HEADER_MAX + 1];
			snprintf(both, sizeof both, "%s %s", sig, in->header ? in->header : "");
			require(verify_standard(in, in->secrets, in->nsecrets, both, ts) == SIG_OK);
			first = 0;
		}

		/* One flipped byte: no longer that signature. */
		flip_byte(sig, in->flip % (3 + B64_LEN), in->flip_xor);
		require(verify_standard(in, one, 1, sig, ts) == SIG_INVALID);
	}
}

static void check_hmac(const struct input *in)
{
	const char *header = in->header;
	enum sig_result r = sig_verify_hmac_b64(in->secrets, in->nsecrets, header, in->body, in->body_len);
	require(r == model_verify_hmac(in->secrets, in->nsecrets, header, in->body, in->body_len));
	/* The timestamp field as a header too: a short one often has the right length. */
	r = sig_verify_hmac_b64(in->secrets, in->nsecrets, in->ts, in->body, in->body_len);
	require(r == model_verify_hmac(in->secrets, in->nsecrets, in->ts, in->body, in->body_len));

	int first = 1;
	for (size_t i = 0; i < in->nsecrets; i++) {
		const char *s = in->secrets[i];
		char sig[SIG_V1_MAX];
		require(sig_sign_hmac_b64(s, in->body, in->body_len, sig, SIG_V1_MAX - 1) == -1);
		int rc = sig_sign_hmac_b64(s, in->body, in->body_len, sig, sizeof sig);
		require(rc == (s && *s ? 0 : -1));
		if (rc < 0)
			continue;
		char want[B64_LEN + 1];
		model_mac_b64((const unsigned char *)s, strlen(s), in->body, in->body_len, want);
		require(strcmp(sig, want) == 0);
		const char *one[] = { s };
		require(sig_verify_hmac_b64(one, 1, sig, in->body, in->body_len) == SIG_OK);
		if (first)
			require(sig_verify_hmac_b64(in->secrets, in->nsecrets, sig, in->body, in->body_len) == SIG_OK);
		first = 0;
		flip_byte(sig, in->flip % B64_LEN, in->flip_xor);
		require(sig_verify_hmac_b64(one, 1, sig, in->body, in->body_len) == SIG_INVALID);
	}
}

/* Splits data at the first NUL into a fresh string; *rest moves past it. */
static char *take_field(const uint8_t **rest, size_t *left, int *absent)
{
	if (*absent)
		return NULL;
	const uint8_t *nul = memchr(*rest, '\0', *left);
	size_t n = nul ? (size_t)(nul - *rest) : *left;
	char *s = malloc(n + 1);
	require(s != NULL);
	memcpy(s, *rest, n);
	s[n] = '\0';
	*rest += n + (nul != NULL);
	*left -= n + (nul != NULL);
	*absent = nul == NULL;
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Distances of the clock from the timestamp, seconds. */
	static const int64_t skew[8] = { 0, 1, -1, SIG_TOLERANCE_S, -SIG_TOLERANCE_S, SIG_TOLERANCE_S + 1,
	                                 -SIG_TOLERANCE_S - 1, 100000 };
	static const size_t keycaps[4] = { SIG_KEY_MAX, 0, 16, 32 };
	if (size < 2)
		return 0;
	struct input in;
	memset(&in, 0, sizeof in);
	unsigned opt = data[0];
	in.flip = data[1];
	in.flip_xor = (unsigned char)(opt ^ data[1]);
	in.keycap = keycaps[(opt >> 3) & 3];
	const uint8_t *rest = data + 2;
	size_t left = size - 2;
	int absent = 0;

	char *secrets = take_field(&rest, &left, &absent);
	char *fields[3];
	for (int f = 0; f < 3; f++)
		fields[f] = take_field(&rest, &left, &absent);
	in.id = fields[0];
	in.ts = fields[1];
	in.header = fields[2];
	/* Headers around the length sig.c stops at: the fuzzed one padded with
	 * spaces to HEADER_MAX - 1 .. HEADER_MAX + 2 bytes. */
	char *padded = NULL;
	if ((opt & 0x80) && in.header && strlen(in.header) < HEADER_MAX) {
		size_t n = strlen(in.header), want = HEADER_MAX - 1 + (in.flip & 3);
		padded = malloc(want + 1);
		require(padded != NULL);
		memcpy(padded, in.header, n);
		memset(padded + n, ' ', want - n);
		padded[want] = '\0';
		in.header = padded;
	}
	/* The body: a copy of exactly its bytes, so reading past it is seen. */
	unsigned char *body = NULL;
	if (!absent && left) {
		body = malloc(left);
		require(body != NULL);
		memcpy(body, rest, left);
		in.body = body;
		in.body_len = left;
	}
	for (char *s = secrets; s && in.nsecrets < MAX_SECRETS;) {
		in.secrets[in.nsecrets++] = s;
		char *nl = strchr(s, '\n');
		if (!nl)
			break;
		*nl = '\0';
		s = nl + 1;
	}

	int64_t ts;
	if (model_timestamp(in.ts, &ts) == 0) {
		int64_t d = skew[opt & 7];
		in.now = (d > 0 && ts > INT64_MAX - d) ? INT64_MIN : ts + d;
	} else {
		in.now = (opt & 7) == 7 ? INT64_MIN : 1700000000;
	}

	check_keys(&in);
	check_standard(&in);
	check_hmac(&in);

	free(secrets);
	for (int f = 0; f < 3; f++)
		free(fields[f]);
	free(body);
	free(padded);
	return 0;
}
