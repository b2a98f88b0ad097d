/* b64enc.h - base64 (RFC 4648) the obvious way, for tests of what moat
 * decodes (test_sasl.c, fuzz_sasl.c); moat itself never encodes. */
#ifndef MOAT_TEST_B64ENC_H
#define MOAT_TEST_B64ENC_H

#include <stddef.h>

/* n bytes of in as base64 into out (4 * ((n + 2) / 3) + 1 bytes). */
static inline void b64enc(const void *in, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *s = in;
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);

		out[o++] = a[v >> 18];
		out[o++] = a[v >> 12 & 63];
		out[o++] = i + 1 < n ? a[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? a[v & 63] : '=';
	}
	out[o] = '\0';
}

#endif
