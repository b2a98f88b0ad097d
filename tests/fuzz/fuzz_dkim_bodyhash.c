/* fuzz_dkim_bodyhash.c - libFuzzer: the streamed DKIM body canonicalizer.
 * Invariant: the digest (and the l= verdict) does not depend on how the
 * body is cut into pieces; both canonicalizations, with and without l=. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checks/dkim_bodyhash.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int digest(int relaxed, long long limit, const uint8_t *p, size_t n, size_t piece, unsigned char out[32])
{
	struct dkim_bodyhash *h = dkim_bodyhash_new(relaxed, limit);
	size_t off;
	int r;

	if (!h)
		abort();
	for (off = 0; off < n; off += piece)
		dkim_bodyhash_feed(h, (const char *)p + off, n - off < piece ? n - off : piece);
	r = dkim_bodyhash_check(h, "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=");
	memcpy(out, dkim_bodyhash_digest(h), 32);
	dkim_bodyhash_free(h);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char whole[32], cut[32];
	size_t piece;
	long long limit;
	int relaxed;

	if (size < 2)
		return 0;
	relaxed = data[0] & 1;
	piece = 1 + (data[0] >> 1) % 13;
	limit = data[1] < 200 ? -1 : (long long)(data[1] - 200) * 3;
	data += 2;
	size -= 2;
	if (digest(relaxed, limit, data, size, size ? size : 1, whole) !=
	    digest(relaxed, limit, data, size, piece, cut) || memcmp(whole, cut, 32) != 0)
		abort();
	return 0;
}
