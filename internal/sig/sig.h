/* sig: webhook signatures. Pure: no I/O, no clock (callers pass `now`).
 * All comparisons of MACs are constant-time (CRYPTO_memcmp). */
#ifndef DROPSHIP_SIG_H
#define DROPSHIP_SIG_H
#include <stddef.h>
#include <stdint.h>

enum sig_result {
	SIG_OK = 0,
	SIG_MISSING,   /* a required header is absent or empty */
	SIG_INVALID,   /* no entry matched, or malformed header/secret */
	SIG_STALE,     /* timestamp further than the tolerance from now */
};

#define SIG_TOLERANCE_S 300
#define SIG_KEY_MAX 256
/* Room for "v1," + base64 of a SHA-256 MAC + NUL. */
#define SIG_V1_MAX 64

/* Decodes a secret "whsec_<base64>" into key bytes. A secret without the
 * whsec_ prefix is used as raw bytes. Returns the key length, or -1. */
int sig_secret_key(const char *secret, unsigned char *key, size_t keycap);

/* Standard Webhooks: checks webhook-id / webhook-timestamp / webhook-signature
 * (space-separated "v1,<b64>" entries, any one matching passes) against each
 * of the nsecrets secrets. Order of checks: missing headers, then stale
 * timestamp (|now - ts| > tolerance_s, or not an integer), then MAC. */
enum sig_result sig_verify_standard(const char *const *secrets, size_t nsecrets,
                                    const char *msg_id, const char *timestamp,
                                    const char *signature_header,
                                    const void *body, size_t body_len,
                                    int64_t now, int64_t tolerance_s);

/* Standard Webhooks: writes "v1,<base64 HMAC-SHA256(key, id.ts.body)>" into
 * out (at least SIG_V1_MAX bytes). Returns 0, or -1 on a bad secret. */
int sig_sign_standard(const char *secret, const char *msg_id, int64_t timestamp,
                      const void *body, size_t body_len, char *out, size_t outcap);

/* Shopify / WooCommerce: header is base64(HMAC-SHA256(secret as raw bytes, body)).
 * Any one of the secrets matching passes. */
enum sig_result sig_verify_hmac_b64(const char *const *secrets, size_t nsecrets,
                                    const char *header, const void *body, size_t body_len);

/* base64(HMAC-SHA256(secret raw bytes, body)) into out (>= SIG_V1_MAX). Returns 0 or -1. */
int sig_sign_hmac_b64(const char *secret, const void *body, size_t body_len,
                      char *out, size_t outcap);

#endif
