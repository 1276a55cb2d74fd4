#include <stdio.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "support/certs.h"

static long certs_serial = 1;

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok = ext && X509_add_ext(x, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

X509 *certs_new(EVP_PKEY *key, const char *cn, const char *san, long from, long to, int is_ca, X509 *ca,
                EVP_PKEY *ca_key)
{
	X509 *x = X509_new();
	X509V3_CTX ctx;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), certs_serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), from);
	X509_gmtime_adj(X509_getm_notAfter(x), to);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)cn, -1,
	                           -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(ca ? ca : x));
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, ca ? ca : x, x, NULL, NULL, 0);
	if (add_ext(x, &ctx, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "CA:FALSE") < 0 ||
	    (is_ca && add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") < 0) ||
	    (san && add_ext(x, &ctx, NID_subject_alt_name, san) < 0) ||
	    X509_sign(x, ca_key ? ca_key : key, EVP_sha256()) == 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

int certs_write(const char *dir, const char *name, X509 *x, EVP_PKEY *key)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s.crt", dir, name);
	FILE *f = fopen(path, "w");
	int ok = f && PEM_write_X509(f, x) == 1;
	if (f && fclose(f) != 0)
		ok = 0;
	snprintf(path, sizeof path, "%s/%s.key", dir, name);
	f = ok ? fopen(path, "w") : NULL;
	ok = f && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
	if (f && fclose(f) != 0)
		ok = 0;
	return ok ? 0 : -1;
}
