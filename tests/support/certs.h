/* certs: test certificates made with OpenSSL, for servers that present a
 * good, self-signed, expired or wrongly named certificate. */
#ifndef DROPSHIP_TEST_CERTS_H
#define DROPSHIP_TEST_CERTS_H
#include <openssl/evp.h>
#include <openssl/x509.h>

#define CERTS_DAY (24L * 3600)
/* The names a local test server answers to. */
#define CERTS_SAN_LOCAL "DNS:localhost,IP:127.0.0.1,IP:::1"

/* A certificate for key with common name cn, valid from..to seconds from
 * now, with the subjectAltName san (NULL: none), a CA when is_ca, issued by
 * ca with ca_key (both NULL: by itself). Caller frees; NULL on failure. */
X509 *certs_new(EVP_PKEY *key, const char *cn, const char *san, long from, long to, int is_ca, X509 *ca,
                EVP_PKEY *ca_key);

/* Writes dir/name.crt and dir/name.key. Returns 0 or -1. */
int certs_write(const char *dir, const char *name, X509 *x, EVP_PKEY *key);

#endif
