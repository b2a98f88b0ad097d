/* dkim_keycache.c - decoded DKIM public keys, kept for reuse.
 *
 * libopendkim decodes the key of every signature it verifies with OpenSSL's
 * d2i_PUBKEY_bio on a memory BIO holding the key's DER bytes. Under OpenSSL 3
 * that decode runs the provider decoder machinery and cost about a third of
 * moat's CPU per signed message (make bench). libopendkim has no hook for
 * it, so moat defines d2i_PUBKEY_bio itself: the library's call (through the
 * dynamic linker's PLT) lands here, as the executable's definition comes
 * first. A key already decoded is handed out again with one more reference;
 * keys are matched by their DER bytes, so a rotated key is simply new and
 * freshness stays with the DNS cache.
 *
 * What could silently go wrong, and why it does not:
 * - Linking changes (static linking, -Bsymbolic, a libopendkim that calls
 *   OpenSSL another way): then our definition is not what the library
 *   calls, and the cache is merely unused. dkim_keycache_active() says so,
 *   and moat logs it at start-up; test_dkim fails if libopendkim's calls no
 *   longer reach the cache.
 * - OpenSSL's own d2i_PUBKEY_bio cannot be found (a static binary has no
 *   "next" definition): a miss decodes with d2i_PUBKEY on the BIO's bytes,
 *   which is what d2i_PUBKEY_bio does, so nothing depends on finding it.
 * The cache is process-wide (OpenSSL's symbol is): 256 slots, direct-mapped,
 * keys up to 2 KiB of DER. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "checks/dkim.h"

#define KEYCACHE_SLOTS 256     /* distinct signing keys kept (power of two) */
#define KEYCACHE_DER_MAX 2048  /* larger than a 8192-bit RSA key's DER */

struct keyslot {
	uint64_t hash;
	size_t len;
	unsigned char der[KEYCACHE_DER_MAX];
	EVP_PKEY *key; /* one reference held by the cache */
};

static struct keyslot *slots; /* allocated on first use */
static unsigned long hits, misses;

typedef EVP_PKEY *(*d2i_pubkey_bio_fn)(BIO *, EVP_PKEY **);

/* OpenSSL's own, for the calls the cache does not take; NULL if none. */
static d2i_pubkey_bio_fn real_d2i(void)
{
	static d2i_pubkey_bio_fn fn;

	if (!fn)
		fn = (d2i_pubkey_bio_fn)dlvsym(RTLD_NEXT, "d2i_PUBKEY_bio", "OPENSSL_3.0.0");
	if (!fn)
		fn = (d2i_pubkey_bio_fn)dlsym(RTLD_NEXT, "d2i_PUBKEY_bio");
	return fn;
}

static uint64_t der_hash(const unsigned char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	while (n--)
		h = (h ^ *p++) * 1099511628211ULL;
	return h;
}

/* What d2i_PUBKEY_bio does for a memory BIO: decode its bytes. */
static EVP_PKEY *decode(const unsigned char *der, long len)
{
	const unsigned char *p = der;

	return d2i_PUBKEY(NULL, &p, len);
}

EVP_PKEY *d2i_PUBKEY_bio(BIO *bp, EVP_PKEY **a)
{
	d2i_pubkey_bio_fn real;
	struct keyslot *s;
	char *data = NULL;
	long len;
	uint64_t h;
	EVP_PKEY *k;

	/* Only the plain case libopendkim uses: a memory BIO, no reuse of *a. */
	if (a || BIO_method_type(bp) != BIO_TYPE_MEM || (len = BIO_get_mem_data(bp, &data)) <= 0 ||
	    len > KEYCACHE_DER_MAX || (!slots && !(slots = calloc(KEYCACHE_SLOTS, sizeof *slots)))) {
		if ((real = real_d2i()))
			return real(bp, a);
		if (a || BIO_method_type(bp) != BIO_TYPE_MEM || (len = BIO_get_mem_data(bp, &data)) <= 0)
			return NULL; /* no OpenSSL function to hand it to: not a case moat has */
		return decode((unsigned char *)data, len);
	}
	h = der_hash((unsigned char *)data, (size_t)len);
	s = &slots[h & (KEYCACHE_SLOTS - 1)];
	if (s->key && s->hash == h && s->len == (size_t)len && memcmp(s->der, data, (size_t)len) == 0 &&
	    EVP_PKEY_up_ref(s->key)) {
		hits++;
		return s->key;
	}
	misses++;
	k = decode((unsigned char *)data, len);
	if (k && EVP_PKEY_up_ref(k)) {
		EVP_PKEY_free(s->key); /* the slot's previous key: direct-mapped */
		s->key = k;
		s->hash = h;
		s->len = (size_t)len;
		memcpy(s->der, data, (size_t)len);
	}
	return k;
}

int dkim_keycache_active(void)
{
	return dlsym(RTLD_DEFAULT, "d2i_PUBKEY_bio") == (void *)d2i_PUBKEY_bio;
}

void dkim_keycache_stats(unsigned long *h, unsigned long *m)
{
	*h = hits;
	*m = misses;
}

void dkim_keycache_free(void)
{
	int i;

	if (!slots)
		return;
	for (i = 0; i < KEYCACHE_SLOTS; i++)
		EVP_PKEY_free(slots[i].key);
	free(slots);
	slots = NULL;
}
