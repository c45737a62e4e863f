/*
 * totem-conformance: the four SHA-1 names evsverify.c (fixtures/evs) takes from corosync
 * 1.4's exec/crypto.h, over OpenSSL's libcrypto (link with -lcrypto). evsverify.c includes
 * "../exec/crypto.h": the harness passes -I DIR/x where DIR/exec/crypto.h is this file.
 */
#ifndef TOTEM_EVSVERIFY_CRYPTO_SHIM_H
#define TOTEM_EVSVERIFY_CRYPTO_SHIM_H

#include <openssl/evp.h>

/* One running digest. */
typedef struct {
	EVP_MD_CTX *ctx;
} hash_state;

/* 0 on success, -1 on failure, as corosync's functions answered. */
static inline int sha1_init (hash_state *md)
{
	md->ctx = EVP_MD_CTX_new ();
	if (md->ctx == NULL) {
		return -1;
	}
	return EVP_DigestInit_ex (md->ctx, EVP_sha1 (), NULL) == 1 ? 0 : -1;
}

static inline int sha1_process (hash_state *md, const unsigned char *buf, unsigned long len)
{
	return EVP_DigestUpdate (md->ctx, buf, len) == 1 ? 0 : -1;
}

/* Writes the 20-byte digest and releases the state. */
static inline int sha1_done (hash_state *md, unsigned char *hash)
{
	int ok = EVP_DigestFinal_ex (md->ctx, hash, NULL) == 1;
	EVP_MD_CTX_free (md->ctx);
	md->ctx = NULL;
	return ok ? 0 : -1;
}

#endif /* TOTEM_EVSVERIFY_CRYPTO_SHIM_H */
