/* fuzz_json_escape.c - libFuzzer harness for json_escape (proxy/lib/log.c),
 * which writes every untrusted text into the log.
 *
 *   make fuzz-build; build/fuzz/fuzz_json_escape -max_total_time=60 WORKDIR (a copy of tests/fuzz/corpus/json_escape)
 *
 * Input: bytes 0 and 1 choose the output size and max; the rest (up to a
 * NUL) is the text. Invariants checked (abort on violation):
 *  - nothing is written at or past size, the result is NUL-terminated and
 *    its length is returned;
 *  - the result is well-formed UTF-8 (RFC 3629) holding no control
 *    character (C0, DEL, C1) nor U+2028/U+2029, and no '"' that is not
 *    escaped: it is a valid JSON string body;
 *  - a text of valid UTF-8 and printable characters with room enough comes
 *    out byte for byte, quotes and backslashes escaped.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/lib/log.h"
#include "proxy/lib/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define GUARD 16

static void check_body(const unsigned char *o, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t k = 1;

		if (o[i] < 0x20 || o[i] == 0x7f || o[i] == '"')
			abort();
		if (o[i] == '\\') {
			if (i + 1 >= n)
				abort();
			if (o[i + 1] == 'u')
				k = 6;
			else if (o[i + 1] == '"' || o[i + 1] == '\\')
				k = 2;
			else
				abort();
			if (i + k > n)
				abort();
		} else if (o[i] >= 0x80) {
			if ((k = text_utf8_len(o + i, n - i)) == 0)
				abort();
			if ((o[i] == 0xc2 && o[i + 1] < 0xa0) ||
			    (o[i] == 0xe2 && o[i + 1] == 0x80 && (o[i + 2] == 0xa8 || o[i + 2] == 0xa9)))
				abort();
		}
		i += k;
	}
}

/* Valid UTF-8 of printable characters, no '.' (so "..." is the cut marker). */
static int plain(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t k = s[i] >= 0x80 ? text_utf8_len(s + i, n - i) : 1;

		if (k == 0 || s[i] < 0x20 || s[i] == 0x7f || s[i] == '.' || (s[i] == 0xc2 && s[i + 1] < 0xa0) ||
		    (s[i] == 0xe2 && s[i + 1] == 0x80 && (s[i + 2] == 0xa8 || s[i + 2] == 0xa9)))
			return 0;
		i += k;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t outsize, max, len, n;
	char *src, *dst;

	if (size < 2)
		return 0;
	outsize = data[0] * 4u;
	max = data[1] == 255 ? (size_t)-1 : data[1] * 2u;
	data += 2, size -= 2;
	src = malloc(size + 1);
	dst = malloc(outsize + GUARD);
	if (!src || !dst)
		abort();
	memcpy(src, data, size);
	src[size] = '\0';
	len = strlen(src);
	memset(dst, 0xa5, outsize + GUARD);
	n = json_escape(dst, outsize, src, max);
	for (size_t g = outsize; g < outsize + GUARD; g++)
		if ((unsigned char)dst[g] != 0xa5)
			abort();
	if (outsize == 0) {
		if (n != 0)
			abort();
	} else {
		if (n >= outsize || dst[n] != '\0' || strlen(dst) != n)
			abort();
		check_body((const unsigned char *)dst, n);
		if (plain((const unsigned char *)src, len) && len <= max && outsize > 6 * len) {
			size_t o = 0;

			for (size_t i = 0; i < len; i++) {
				if (src[i] == '"' || src[i] == '\\')
					if (dst[o++] != '\\')
						abort();
				if (dst[o++] != src[i])
					abort();
			}
			if (o != n)
				abort();
		}
	}
	free(src);
	free(dst);
	return 0;
}
