/* msgref.h - for tests and fuzzing: what proxy/message.c must send, worked
 * out the slow, obvious way, and the property every byte stream to the
 * backend must have. */
#ifndef MOAT_TEST_MSGREF_H
#define MOAT_TEST_MSGREF_H

#include <stdlib.h>
#include <string.h>

#include "checks/authres.h"
#include "proxy/lib/hdrscan.h"

/* Whole CRLF lines, no NUL, no bare CR or LF, no line that is a lone "."
 * (and no "." line with NULs): with ".\r\n" appended, the stream holds
 * exactly one end of data, at its end, for any receiver. */
static inline int ref_wire_safe(const unsigned char *b, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t s = i;

		while (i < len && b[i] != '\n') {
			if (b[i] == '\0' || (b[i] == '\r' && (i + 1 >= len || b[i + 1] != '\n')))
				return 0;
			i++;
		}
		if (i >= len || i == s || b[i - 1] != '\r')
			return 0; /* no LF, or LF without CR */
		if (i - s == 2 && b[s] == '.')
			return 0; /* ".\r\n" */
		i++;
	}
	return 1;
}

/* Length of the line at b[i..len): through its LF, or to len. */
static inline size_t ref_line(const unsigned char *b, size_t i, size_t len)
{
	size_t e = i;

	while (e < len && b[e] != '\n')
		e++;
	return e < len ? e + 1 - i : len - i;
}

/* prefix (its lines dot-stuffed) + w (the message in wire form) without the
 * complete header fields that claim host. Returns a malloc'ed buffer. */
static inline unsigned char *ref_expected(const unsigned char *w, size_t wlen, const char *host,
                                          const char *prefix, size_t plen, size_t *olen)
{
	unsigned char *o = malloc(2 * plen + wlen + 1);
	size_t n = 0, i = 0;
	int in_header = 1;

	if (!o)
		return NULL;
	for (size_t p = 0; p < plen;) {
		size_t l = ref_line((const unsigned char *)prefix, p, plen);

		if (prefix[p] == '.')
			o[n++] = '.';
		memcpy(o + n, prefix + p, l);
		n += l;
		p += l;
	}
	while (i < wlen) {
		size_t l = ref_line(w, i, wlen), f = l;
		int complete = w[i + l - 1] == '\n';

		if (!in_header || (l <= 2 && w[i] == (l == 1 ? '\n' : '\r') && complete)) {
			in_header = 0; /* the empty line, and everything after it, stays */
			memcpy(o + n, w + i, wlen - i);
			n += wlen - i;
			break;
		}
		/* a field: this line and its continuation lines */
		while (complete && i + f < wlen && (w[i + f] == ' ' || w[i + f] == '\t')) {
			size_t c = ref_line(w, i + f, wlen);

			complete = w[i + f + c - 1] == '\n';
			f += c;
		}
		if (!(complete && authres_claims_head((const char *)w + i, f < HDRSCAN_HEAD_MAX ? f : HDRSCAN_HEAD_MAX,
		                                      f > HDRSCAN_HEAD_MAX, host))) {
			memcpy(o + n, w + i, f);
			n += f;
		}
		i += f;
	}
	*olen = n;
	return o;
}

#endif
