/* dkim_bodyhash.h - a DKIM body hash (RFC 6376 3.4.3, 3.4.4, 3.7), streamed
 *
 * libopendkim canonicalises the body a byte at a time through function
 * calls (a profile: 43 instructions a byte, a third of a 5 KB message's
 * cost, nine tenths of a 1 MB one's). moat lets the library verify the
 * header signature and the key, and hashes the body itself: runs of
 * ordinary bytes go to SHA-256 whole. Pure apart from the digest; the body
 * may arrive in chunks of any size (the result does not depend on them). */
#ifndef MOAT_DKIM_BODYHASH_H
#define MOAT_DKIM_BODYHASH_H

#include <stddef.h>

struct dkim_bodyhash;

/* relaxed: body canonicalization "relaxed", else "simple". limit: l=, the
 * number of canonical bytes hashed, or -1 for the whole body. SHA-256
 * (RFC 8301: the only body hash a verifier needs). NULL without memory. */
struct dkim_bodyhash *dkim_bodyhash_new(int relaxed, long long limit);
/* Body bytes, unstuffed, after the header section's empty line. */
void dkim_bodyhash_feed(struct dkim_bodyhash *h, const char *p, size_t n);
/* End of body: 1 if the hash equals bh (base64, white space ignored),
 * 0 if not (or bh is not base64), -1 if the canonical body is shorter than
 * l= (the signature is invalid: RFC 6376 3.4.5). The body ends at the
 * first call; later ones compare other signatures' bh= with the same hash. */
int dkim_bodyhash_check(struct dkim_bodyhash *h, const char *bh);
/* The digest, after dkim_bodyhash_check (32 bytes). For tests. */
const unsigned char *dkim_bodyhash_digest(const struct dkim_bodyhash *h);
void dkim_bodyhash_free(struct dkim_bodyhash *h);

#endif
