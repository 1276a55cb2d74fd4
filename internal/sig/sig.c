#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "sig/sig.h"

#define SIG_MAC_LEN 32
/* base64 of a SHA-256 MAC: 4 * ceil(32 / 3). */
#define SIG_MAC_B64_LEN 44
/* Bounds the work an attacker can cause with one header; 16 entries of
 * "v1a,<88 chars>" still fit, so real rotations are never cut short. */
#define SIG_HEADER_MAX 4096
#define SIG_ENTRIES_MAX 16
#define SIG_WHSEC_PREFIX "whsec_"

struct sig_part {
	const void *data;
	size_t len;
};

/* Strict standard base64 with padding: returns the decoded length, or -1.
 * EVP_DecodeBlock alone would accept stray whitespace and count padding as
 * zero bytes, so the alphabet and padding are checked first. */
static int sig_b64_decode(const char *in, size_t inlen, unsigned char *out, size_t outcap)
{
	if (inlen == 0 || inlen % 4 != 0 || inlen > (size_t)INT32_MAX)
		return -1;
	size_t pad = 0;
	for (size_t i = 0; i < inlen; i++) {
		unsigned char ch = (unsigned char)in[i];
		int alpha = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		            (ch >= '0' && ch <= '9') || ch == '+' || ch == '/';
		if (ch == '=' && i >= inlen - 2) {
			pad++;
		} else if (!alpha || pad) {
			return -1;
		}
	}
	size_t raw = inlen / 4 * 3;
	unsigned char tmp[SIG_KEY_MAX + 3];
	if (raw > sizeof tmp || raw - pad > outcap)
		return -1;
	if (EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)inlen) != (int)raw)
		return -1;
	memcpy(out, tmp, raw - pad);
	OPENSSL_cleanse(tmp, sizeof tmp);
	return (int)(raw - pad);
}

/* HMAC-SHA256 over the concatenation of parts. Returns 0 or -1. */
static int sig_hmac(const unsigned char *key, size_t keylen, const struct sig_part *parts,
                    size_t nparts, unsigned char mac[SIG_MAC_LEN])
{
	int rc = -1;
	EVP_MAC *alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = alg ? EVP_MAC_CTX_new(alg) : NULL;
	if (!ctx)
		goto out;
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_end(),
	};
	if (!EVP_MAC_init(ctx, key, keylen, params))
		goto out;
	for (size_t i = 0; i < nparts; i++)
		if (parts[i].len && !EVP_MAC_update(ctx, parts[i].data, parts[i].len))
			goto out;
	size_t maclen = 0;
	if (!EVP_MAC_final(ctx, mac, &maclen, SIG_MAC_LEN) || maclen != SIG_MAC_LEN)
		goto out;
	rc = 0;
out:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(alg);
	return rc;
}

/* base64(HMAC-SHA256(key, parts)) into b64 (SIG_MAC_B64_LEN + 1 bytes). */
static int sig_hmac_b64(const unsigned char *key, size_t keylen, const struct sig_part *parts,
                        size_t nparts, char b64[SIG_MAC_B64_LEN + 1])
{
	unsigned char mac[SIG_MAC_LEN];
	if (sig_hmac(key, keylen, parts, nparts, mac) < 0)
		return -1;
	EVP_EncodeBlock((unsigned char *)b64, mac, SIG_MAC_LEN);
	OPENSSL_cleanse(mac, sizeof mac);
	return 0;
}

int sig_secret_key(const char *secret, unsigned char *key, size_t keycap)
{
	if (!secret || !*secret)
		return -1;
	size_t plen = strlen(SIG_WHSEC_PREFIX);
	if (strncmp(secret, SIG_WHSEC_PREFIX, plen) == 0)
		return sig_b64_decode(secret + plen, strlen(secret + plen), key, keycap);
	size_t len = strlen(secret);
	if (len > keycap || len > INT32_MAX)
		return -1;
	memcpy(key, secret, len);
	return (int)len;
}

/* Standard Webhooks MAC (no "v1," prefix) of id.timestamp.body. The
 * timestamp is re-formatted from its value, as the reference libraries do. */
static int sig_standard_b64(const char *secret, const char *msg_id, int64_t timestamp,
                            const void *body, size_t body_len, char b64[SIG_MAC_B64_LEN + 1])
{
	unsigned char key[SIG_KEY_MAX];
	int keylen = sig_secret_key(secret, key, sizeof key);
	if (keylen <= 0)
		return -1;
	char ts[24];
	snprintf(ts, sizeof ts, "%" PRId64, timestamp);
	const struct sig_part parts[] = {
		{ msg_id, strlen(msg_id) }, { ".", 1 }, { ts, strlen(ts) }, { ".", 1 },
		{ body, body_len },
	};
	int rc = sig_hmac_b64(key, (size_t)keylen, parts, sizeof parts / sizeof parts[0], b64);
	OPENSSL_cleanse(key, sizeof key);
	return rc;
}

/* Plain decimal digits only; no sign, no spaces, no overflow. */
static int sig_parse_timestamp(const char *s, int64_t *out)
{
	int64_t v = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		int d = *s - '0';
		if (v > (INT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* |a - b| <= tol without signed overflow. */
static int sig_within(int64_t a, int64_t b, int64_t tol)
{
	uint64_t diff = a >= b ? (uint64_t)a - (uint64_t)b : (uint64_t)b - (uint64_t)a;
	return diff <= (uint64_t)(tol < 0 ? 0 : tol);
}

enum sig_result sig_verify_standard(const char *const *secrets, size_t nsecrets,
                                    const char *msg_id, const char *timestamp,
                                    const char *signature_header,
                                    const void *body, size_t body_len,
                                    int64_t now, int64_t tolerance_s)
{
	if (!msg_id || !*msg_id || !timestamp || !*timestamp || !signature_header ||
	    !*signature_header)
		return SIG_MISSING;
	int64_t ts;
	if (sig_parse_timestamp(timestamp, &ts) < 0 || !sig_within(now, ts, tolerance_s))
		return SIG_STALE;
	if (strnlen(signature_header, SIG_HEADER_MAX + 1) > SIG_HEADER_MAX)
		return SIG_INVALID;

	int matched = 0;
	for (size_t i = 0; i < nsecrets; i++) {
		char want[SIG_MAC_B64_LEN + 1];
		if (sig_standard_b64(secrets[i], msg_id, ts, body, body_len, want) < 0)
			continue; /* a malformed secret must not block rotation to a good one */
		/* Every entry is compared, so timing does not tell which one matched. */
		const char *p = signature_header;
		for (int n = 0; *p && n < SIG_ENTRIES_MAX;) {
			if (*p == ' ') {
				p++;
				continue;
			}
			size_t len = strcspn(p, " ");
			n++;
			if (len == 3 + SIG_MAC_B64_LEN && memcmp(p, "v1,", 3) == 0)
				matched |= CRYPTO_memcmp(p + 3, want, SIG_MAC_B64_LEN) == 0;
			p += len;
		}
	}
	return matched ? SIG_OK : SIG_INVALID;
}

int sig_sign_standard(const char *secret, const char *msg_id, int64_t timestamp,
                      const void *body, size_t body_len, char *out, size_t outcap)
{
	char b64[SIG_MAC_B64_LEN + 1];
	if (!msg_id || outcap < SIG_V1_MAX ||
	    sig_standard_b64(secret, msg_id, timestamp, body, body_len, b64) < 0)
		return -1;
	snprintf(out, outcap, "v1,%s", b64);
	return 0;
}

/* Shopify/WooCommerce MAC: the secret string itself is the key. */
static int sig_raw_b64(const char *secret, const void *body, size_t body_len,
                       char b64[SIG_MAC_B64_LEN + 1])
{
	if (!secret || !*secret)
		return -1;
	const struct sig_part part = { body, body_len };
	return sig_hmac_b64((const unsigned char *)secret, strlen(secret), &part, 1, b64);
}

enum sig_result sig_verify_hmac_b64(const char *const *secrets, size_t nsecrets,
                                    const char *header, const void *body, size_t body_len)
{
	if (!header || !*header)
		return SIG_MISSING;
	if (strnlen(header, SIG_MAC_B64_LEN + 1) != SIG_MAC_B64_LEN)
		return SIG_INVALID;
	int matched = 0;
	for (size_t i = 0; i < nsecrets; i++) {
		char want[SIG_MAC_B64_LEN + 1];
		if (sig_raw_b64(secrets[i], body, body_len, want) == 0)
			matched |= CRYPTO_memcmp(header, want, SIG_MAC_B64_LEN) == 0;
	}
	return matched ? SIG_OK : SIG_INVALID;
}

int sig_sign_hmac_b64(const char *secret, const void *body, size_t body_len,
                      char *out, size_t outcap)
{
	if (outcap < SIG_V1_MAX)
		return -1;
	char b64[SIG_MAC_B64_LEN + 1];
	if (sig_raw_b64(secret, body, body_len, b64) < 0)
		return -1;
	memcpy(out, b64, sizeof b64);
	return 0;
}
