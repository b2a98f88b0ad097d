/* fuzz_proxyproto.c - libFuzzer harness for proxyproto.c.
 * The input is the first bytes of a connection. Every prefix is parsed too,
 * as the session does while bytes trickle in, and the answers must agree:
 * a prefix of a good header is PP_MORE, a prefix of garbage never PP_OK.
 *
 *   make fuzz-build; build/fuzz/fuzz_proxyproto -max_total_time=60 WORKDIR (a copy of tests/fuzz/corpus/proxyproto) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy/lib/bounds.h"
#include "proxy/proxyproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pp_info pi;
	size_t used, plen;
	enum pp_result r, pr;
	uint8_t *copy;

	if (size > MOAT_PROXY_HEADER_MAX + 64)
		return 0;
	/* an exact-size heap copy so ASan sees any read past the end */
	copy = malloc(size ? size : 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	r = proxy_parse(copy, size, &used, &pi);
	if (r == PP_OK && (used == 0 || used > size || used > MOAT_PROXY_HEADER_MAX))
		abort();
	if (r != PP_OK && used != 0)
		abort();
	if (r == PP_OK && !pi.local &&
	    (pi.srclen == 0 || pi.srclen > sizeof pi.src || pi.dstlen != pi.srclen))
		abort();
	/* the header ends at the same place however much follows it */
	plen = r == PP_OK ? used : size;
	for (size_t n = 0; n < plen; n++) {
		uint8_t *pre = malloc(n ? n : 1);

		if (pre == NULL)
			break;
		memcpy(pre, data, n);
		pr = proxy_parse(pre, n, &used, &pi);
		free(pre);
		if (r != PP_BAD && pr != PP_MORE)
			abort();
		if (r == PP_BAD && pr == PP_OK)
			abort();
	}
	free(copy);
	return 0;
}
