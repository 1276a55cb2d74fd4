#include <stdint.h>
#include <string.h>

#include "sig/sig.h"
#include "support/harness.h"

/* Official Standard Webhooks test vector (standard-webhooks spec libraries). */
#define SW_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SW_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SW_TS 1614265330
#define SW_TS_S "1614265330"
#define SW_BODY "{\"test\": 2432232314}"
#define SW_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
/* Another whsec_ secret (24 random bytes) that never signs SW_BODY. */
#define OTHER_SECRET "whsec_c2lnLXRlc3Qtb3RoZXItc2VjcmV0LTI0Yg=="

/* Shopify-style vector, computed at dev time with
 * printf '%s' 'hello shop' | openssl dgst -sha256 -hmac 'shpss_test_secret' -binary | base64 */
#define SHOP_SECRET "shpss_test_secret"
#define SHOP_BODY "hello shop"
#define SHOP_HMAC "pJIQjmGUHLFDbBxJIj9rFJ1F0sj202pC2fjM5zhtY1k="

/* Raw-secret Standard Webhooks vector, computed at dev time with
 * printf 'id1.1700000000.body' | openssl dgst -sha256 -hmac 'plainsecret' -binary | base64 */
#define RAW_SIG "v1,+lstA5qGJVxOlQvywPqfDuX1WBjzPP61f3ZsD8rPTXE="

static const char *const sw_secrets[] = { SW_SECRET };

/* Verifies the official vector's body with the given header values. */
static enum sig_result sw_verify(const char *id, const char *ts, const char *sigh,
                                 const char *body, int64_t now)
{
	return sig_verify_standard(sw_secrets, 1, id, ts, sigh, body, strlen(body), now,
	                           SIG_TOLERANCE_S);
}

static void test_official_vector_sign(void)
{
	char out[SIG_V1_MAX];
	CU_ASSERT_EQUAL(sig_sign_standard(SW_SECRET, SW_ID, SW_TS, SW_BODY, strlen(SW_BODY),
	                                  out, sizeof out), 0);
	CU_ASSERT_STRING_EQUAL(out, SW_SIG);
}

static void test_official_vector_verify(void)
{
	CU_ASSERT_EQUAL(sw_verify(SW_ID, SW_TS_S, SW_SIG, SW_BODY, SW_TS), SIG_OK);
}

static void test_round_trip(void)
{
	const char *body = "{\"order\":1}";
	char out[SIG_V1_MAX];
	CU_ASSERT_EQUAL(sig_sign_standard(OTHER_SECRET, "msg_1", 1700000000, body, strlen(body),
	                                  out, sizeof out), 0);
	const char *secrets[] = { OTHER_SECRET };
	CU_ASSERT_EQUAL(sig_verify_standard(secrets, 1, "msg_1", "1700000000", out, body,
	                                    strlen(body), 1700000000, SIG_TOLERANCE_S), SIG_OK);
}

static void test_round_trip_empty_body(void)
{
	char out[SIG_V1_MAX];
	CU_ASSERT_EQUAL(sig_sign_standard(SW_SECRET, SW_ID, SW_TS, NULL, 0, out, sizeof out), 0);
	CU_ASSERT_EQUAL(sig_verify_standard(sw_secrets, 1, SW_ID, SW_TS_S, out, NULL, 0, SW_TS,
	                                    SIG_TOLERANCE_S), SIG_OK);
}

static void test_header_rotation_second_matches(void)
{
	const char *h = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= " SW_SIG;
	CU_ASSERT_EQUAL(sw_verify(SW_ID, SW_TS_S, h, SW_BODY, SW_TS), SIG_OK);
	/* Other versions are skipped, extra spaces tolerated. */
	h = "v1a,c29tZXRoaW5nIGVsc2U=   " SW_SIG " ";
	CU_ASSERT_EQUAL(sw_verify(SW_ID, SW_TS_S, h, SW_BODY, SW_TS), SIG_OK);
}

static void test_secret_rotation_second_matches(void)
{
	const char *secrets[] = { OTHER_SECRET, SW_SECRET };
	CU_ASSERT_EQUAL(sig_verify_standard(secrets, 2, SW_ID, SW_TS_S, SW_SIG, SW_BODY,
	                                    strlen(SW_BODY), SW_TS, SIG_TOLERANCE_S), SIG_OK);
	/* A malformed secret does not stop a good one from matching. */
	const char *with_bad[] = { "whsec_!!!!", SW_SECRET };
	CU_ASSERT_EQUAL(sig_verify_standard(with_bad, 2, SW_ID, SW_TS_S, SW_SIG, SW_BODY,
	                                    strlen(SW_BODY), SW_TS, SIG_TOLERANCE_S), SIG_OK);
	CU_ASSERT_EQUAL(sig_verify_standard(secrets, 1, SW_ID, SW_TS_S, SW_SIG, SW_BODY,
	                                    strlen(SW_BODY), SW_TS, SIG_TOLERANCE_S), SIG_INVALID);
	CU_ASSERT_EQUAL(sig_verify_standard(NULL, 0, SW_ID, SW_TS_S, SW_SIG, SW_BODY,
	                                    strlen(SW_BODY), SW_TS, SIG_TOLERANCE_S), SIG_INVALID);
}

static void test_wrong_body(void)
{
	CU_ASSERT_EQUAL(sw_verify(SW_ID, SW_TS_S, SW_SIG, "{\"test\": 2432232315}", SW_TS),
	                SIG_INVALID);
}

static void test_wrong_id(void)
{
	CU_ASSERT_EQUAL(sw_verify("msg_p5jXN8AQM9LWM0D4loKWxJel", SW_TS_S, SW_SIG, SW_BODY, SW_TS),
	                SIG_INVALID);
}

static void test_wrong_timestamp_in_mac(void)
{
	/* Still within tolerance, but the MAC covers the exact timestamp. */
	CU_ASSERT_EQUAL(sw_verify(SW_ID, "1614265331", SW_SIG, SW_BODY, SW_TS), SIG_INVALID);
}

static void test_tampered_signature(void)
{
	/* Differs only in the unused low bits of the last character: the same
	 * MAC bytes, but not the canonical encoding, so it must not pass. */
	CU_ASSERT_EQUAL(sw_verify(SW_ID, SW_TS_S, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF=",
	                          SW_BODY, SW_TS), SIG_INVALID);
	CU_ASSERT_EQUAL(sw_verify(SW_ID, SW_TS_S, "v1,h0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
	                          SW_BODY, SW_TS), SIG_INVALID);
	/* Truncated and extended entries. */
	CU_ASSERT_EQUAL(sw_verify(SW_ID, SW_TS_S, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",
	                          SW_BODY, SW_TS), SIG_INVALID);
	CU_ASSERT_EQUAL(sw_verify(SW_ID, SW_TS_S, SW_SIG "A", SW_BODY, SW_TS), SIG_INVALID);
}

static void test_missing_headers(void)
{
	CU_ASSERT_EQUAL(sw_verify(NULL, SW_TS_S, SW_SIG, SW_BODY, SW_TS), SIG_MISSING);
	CU_ASSERT_EQUAL(sw_verify("", SW_TS_S, SW_SIG, SW_BODY, SW_TS), SIG_MISSING);
	CU_ASSERT_EQUAL(sw_verify(SW_ID, NULL, SW_SIG, SW_BODY, SW_TS), SIG_MISSING);
	CU_ASSERT_EQUAL(sw_verify(SW_ID, "", SW_SIG, SW_BODY, SW_TS), SIG_MISSING);
	CU_ASSERT_EQUAL(sw_verify(SW_ID, SW_TS_S, NULL, SW_BODY, SW_TS), SIG_MISSING);
	CU_ASSERT_EQUAL(sw_verify(SW_ID, SW_TS_S, "", SW_BODY, SW_TS), SIG_MISSING);
	/* Missing wins over stale. */
	CU_ASSERT_EQUAL(sw_verify(SW_ID, SW_TS_S, NULL, SW_BODY, 0), SIG_MISSING);
}

static void test_stale(void)
{
	CU_ASSERT_EQUAL(sw_verify(SW_ID, SW_TS_S, SW_SIG, SW_BODY, SW_TS + SIG_TOLERANCE_S + 1),
	                SIG_STALE);
	CU_ASSERT_EQUAL(sw_verify(SW_ID, SW_TS_S, SW_SIG, SW_BODY, SW_TS - SIG_TOLERANCE_S - 1),
	                SIG_STALE);
	/* Stale is reported before the MAC is looked at. */
	CU_ASSERT_EQUAL(sw_verify(SW_ID, SW_TS_S, "v1,bogus", SW_BODY, SW_TS + 10000), SIG_STALE);
	/* Extreme clocks do not overflow the difference. */
	CU_ASSERT_EQUAL(sw_verify(SW_ID, "9223372036854775807", SW_SIG, SW_BODY, INT64_MIN),
	                SIG_STALE);
}

static void test_exactly_at_tolerance(void)
{
	CU_ASSERT_EQUAL(sw_verify(SW_ID, SW_TS_S, SW_SIG, SW_BODY, SW_TS + SIG_TOLERANCE_S), SIG_OK);
	CU_ASSERT_EQUAL(sw_verify(SW_ID, SW_TS_S, SW_SIG, SW_BODY, SW_TS - SIG_TOLERANCE_S), SIG_OK);
}

static void test_non_integer_timestamp(void)
{
	static const char *const bad[] = {
		"abc", "+1614265330", "-1614265330", " 1614265330", "1614265330 ",
		"1614265330.5", "0x6037A2F2", "1e9", "99999999999999999999999",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CU_ASSERT_EQUAL(sw_verify(SW_ID, bad[i], SW_SIG, SW_BODY, SW_TS), SIG_STALE);
}

static void test_malformed_signature_header(void)
{
	CU_ASSERT_EQUAL(sw_verify(SW_ID, SW_TS_S, "v1,not base64!", SW_BODY, SW_TS), SIG_INVALID);
	CU_ASSERT_EQUAL(sw_verify(SW_ID, SW_TS_S, "v1,", SW_BODY, SW_TS), SIG_INVALID);
	CU_ASSERT_EQUAL(sw_verify(SW_ID, SW_TS_S, "garbage", SW_BODY, SW_TS), SIG_INVALID);
	CU_ASSERT_EQUAL(sw_verify(SW_ID, SW_TS_S, "   ", SW_BODY, SW_TS), SIG_INVALID);
}

static void test_wrong_version_prefix(void)
{
	CU_ASSERT_EQUAL(sw_verify(SW_ID, SW_TS_S, "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
	                          SW_BODY, SW_TS), SIG_INVALID);
	CU_ASSERT_EQUAL(sw_verify(SW_ID, SW_TS_S, "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
	                          SW_BODY, SW_TS), SIG_INVALID);
}

static void test_entry_cap_and_long_header(void)
{
	char h[8192];
	size_t n = 0;
	/* 16 decoys, then the right one: beyond the examined entries. */
	for (int i = 0; i < 16; i++)
		n += (size_t)snprintf(h + n, sizeof h - n, "v1,x ");
	snprintf(h + n, sizeof h - n, "%s", SW_SIG);
	CU_ASSERT_EQUAL(sw_verify(SW_ID, SW_TS_S, h, SW_BODY, SW_TS), SIG_INVALID);

	/* The right one first, but the header is far longer than any real one. */
	n = (size_t)snprintf(h, sizeof h, "%s", SW_SIG);
	memset(h + n, ' ', sizeof h - n - 1);
	h[sizeof h - 1] = '\0';
	CU_ASSERT_EQUAL(sw_verify(SW_ID, SW_TS_S, h, SW_BODY, SW_TS), SIG_INVALID);
}

static void test_secret_without_prefix(void)
{
	unsigned char key[SIG_KEY_MAX];
	CU_ASSERT_EQUAL(sig_secret_key("plainsecret", key, sizeof key), 11);
	CU_ASSERT_EQUAL(memcmp(key, "plainsecret", 11), 0);

	char out[SIG_V1_MAX];
	CU_ASSERT_EQUAL(sig_sign_standard("plainsecret", "id1", 1700000000, "body", 4, out,
	                                  sizeof out), 0);
	CU_ASSERT_STRING_EQUAL(out, RAW_SIG);
	const char *secrets[] = { "plainsecret" };
	CU_ASSERT_EQUAL(sig_verify_standard(secrets, 1, "id1", "1700000000", RAW_SIG, "body", 4,
	                                    1700000000, SIG_TOLERANCE_S), SIG_OK);
}

static void test_secret_key_decoding(void)
{
	unsigned char key[SIG_KEY_MAX];
	CU_ASSERT_EQUAL(sig_secret_key(SW_SECRET, key, sizeof key), 24);
	CU_ASSERT_EQUAL(sig_secret_key("whsec_YQ==", key, sizeof key), 1);
	CU_ASSERT_EQUAL(key[0], 'a');
	CU_ASSERT_EQUAL(sig_secret_key("whsec_YWI=", key, sizeof key), 2);
	CU_ASSERT_EQUAL(memcmp(key, "ab", 2), 0);
	CU_ASSERT_EQUAL(sig_secret_key("whsec_YWJj", key, sizeof key), 3);
	CU_ASSERT_EQUAL(memcmp(key, "abc", 3), 0);
	/* Does not fit the caller's buffer. */
	CU_ASSERT_EQUAL(sig_secret_key("whsec_YWJj", key, 2), -1);
	CU_ASSERT_EQUAL(sig_secret_key("abc", key, 2), -1);
	CU_ASSERT_EQUAL(sig_secret_key("", key, sizeof key), -1);
	CU_ASSERT_EQUAL(sig_secret_key(NULL, key, sizeof key), -1);
}

static void test_bad_whsec_base64(void)
{
	static const char *const bad[] = {
		"whsec_", "whsec_YQ", "whsec_YQ=", "whsec_Y===", "whsec_YQ==YQ==",
		"whsec_YW Jj", "whsec_YW\nJj", "whsec_YWJj!", "whsec_=YWJ", "whsec_YW-_",
	};
	unsigned char key[SIG_KEY_MAX];
	char out[SIG_V1_MAX];
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CU_ASSERT_EQUAL(sig_secret_key(bad[i], key, sizeof key), -1);
		CU_ASSERT_EQUAL(sig_sign_standard(bad[i], SW_ID, SW_TS, SW_BODY, strlen(SW_BODY), out,
		                                  sizeof out), -1);
		const char *secrets[] = { bad[i] };
		CU_ASSERT_EQUAL(sig_verify_standard(secrets, 1, SW_ID, SW_TS_S, SW_SIG, SW_BODY,
		                                    strlen(SW_BODY), SW_TS, SIG_TOLERANCE_S),
		                SIG_INVALID);
	}
}

static void test_sign_small_buffer(void)
{
	char out[SIG_V1_MAX];
	CU_ASSERT_EQUAL(sig_sign_standard(SW_SECRET, SW_ID, SW_TS, SW_BODY, strlen(SW_BODY), out,
	                                  SIG_V1_MAX - 1), -1);
	CU_ASSERT_EQUAL(sig_sign_hmac_b64(SHOP_SECRET, SHOP_BODY, strlen(SHOP_BODY), out,
	                                  SIG_V1_MAX - 1), -1);
}

static void test_hmac_b64_vector(void)
{
	char out[SIG_V1_MAX];
	CU_ASSERT_EQUAL(sig_sign_hmac_b64(SHOP_SECRET, SHOP_BODY, strlen(SHOP_BODY), out,
	                                  sizeof out), 0);
	CU_ASSERT_STRING_EQUAL(out, SHOP_HMAC);
	const char *secrets[] = { SHOP_SECRET };
	CU_ASSERT_EQUAL(sig_verify_hmac_b64(secrets, 1, SHOP_HMAC, SHOP_BODY, strlen(SHOP_BODY)),
	                SIG_OK);
}

static void test_hmac_b64_rotation(void)
{
	const char *secrets[] = { "old_secret", SHOP_SECRET };
	CU_ASSERT_EQUAL(sig_verify_hmac_b64(secrets, 2, SHOP_HMAC, SHOP_BODY, strlen(SHOP_BODY)),
	                SIG_OK);
	CU_ASSERT_EQUAL(sig_verify_hmac_b64(secrets, 1, SHOP_HMAC, SHOP_BODY, strlen(SHOP_BODY)),
	                SIG_INVALID);
}

static void test_hmac_b64_rejects(void)
{
	const char *secrets[] = { SHOP_SECRET };
	CU_ASSERT_EQUAL(sig_verify_hmac_b64(secrets, 1, SHOP_HMAC, "hello shoP", 10), SIG_INVALID);
	CU_ASSERT_EQUAL(sig_verify_hmac_b64(secrets, 1, "pJIQjmGUHLFDbBxJIj9rFJ1F0sj202pC2fjM5zhtY1j=",
	                                    SHOP_BODY, strlen(SHOP_BODY)), SIG_INVALID);
	CU_ASSERT_EQUAL(sig_verify_hmac_b64(secrets, 1, SHOP_HMAC " ", SHOP_BODY,
	                                    strlen(SHOP_BODY)), SIG_INVALID);
	CU_ASSERT_EQUAL(sig_verify_hmac_b64(secrets, 1, "pJIQ", SHOP_BODY, strlen(SHOP_BODY)),
	                SIG_INVALID);
	CU_ASSERT_EQUAL(sig_verify_hmac_b64(secrets, 1, NULL, SHOP_BODY, strlen(SHOP_BODY)),
	                SIG_MISSING);
	CU_ASSERT_EQUAL(sig_verify_hmac_b64(secrets, 1, "", SHOP_BODY, strlen(SHOP_BODY)),
	                SIG_MISSING);
	/* An empty secret never verifies anything. */
	const char *empty[] = { "" };
	char out[SIG_V1_MAX];
	CU_ASSERT_EQUAL(sig_sign_hmac_b64("", SHOP_BODY, strlen(SHOP_BODY), out, sizeof out), -1);
	CU_ASSERT_EQUAL(sig_verify_hmac_b64(empty, 1, SHOP_HMAC, SHOP_BODY, strlen(SHOP_BODY)),
	                SIG_INVALID);
}

static const struct harness_test tests[] = {
	{ "official vector sign", test_official_vector_sign },
	{ "official vector verify", test_official_vector_verify },
	{ "sign/verify round trip", test_round_trip },
	{ "round trip with empty body", test_round_trip_empty_body },
	{ "several signatures, second matches", test_header_rotation_second_matches },
	{ "several secrets, second matches", test_secret_rotation_second_matches },
	{ "wrong body", test_wrong_body },
	{ "wrong id", test_wrong_id },
	{ "timestamp is covered by the MAC", test_wrong_timestamp_in_mac },
	{ "tampered signature", test_tampered_signature },
	{ "missing headers", test_missing_headers },
	{ "stale past and future", test_stale },
	{ "exactly at tolerance", test_exactly_at_tolerance },
	{ "non-integer timestamp", test_non_integer_timestamp },
	{ "malformed signature header", test_malformed_signature_header },
	{ "wrong version prefix", test_wrong_version_prefix },
	{ "entry cap and over-long header", test_entry_cap_and_long_header },
	{ "secret without whsec_ prefix", test_secret_without_prefix },
	{ "whsec_ secret decoding", test_secret_key_decoding },
	{ "bad whsec_ base64", test_bad_whsec_base64 },
	{ "sign into a too-small buffer", test_sign_small_buffer },
	{ "hmac_b64 known vector", test_hmac_b64_vector },
	{ "hmac_b64 secret rotation", test_hmac_b64_rotation },
	{ "hmac_b64 rejects", test_hmac_b64_rejects },
	{ NULL, NULL },
};

int main(void)
{
	return harness_main("sig", NULL, NULL, tests);
}
