/* fuzz_httpreq.c - libFuzzer harness for proxy/lib/httpreq.c.
 * The input is what an HTTP client sends to metrics_listen. Every prefix is
 * parsed too, as the bytes trickle in, and the answers must agree: before
 * the head's end MORE (or BAD for garbage, never DONE), from it on the
 * same head; a BAD prefix stays BAD.
 *
 *   make fuzz-build; build/fuzz/fuzz_httpreq -max_total_time=60 WORKDIR (a copy of tests/fuzz/corpus/httpreq) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/lib/httpreq.h"

#define MAX 512 /* smaller than moat's, so that TOO_BIG is reached */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_request req, pre;
	enum http_parse r, pr;
	char *copy;

	if (size > 2 * MAX)
		return 0;
	copy = malloc(size ? size : 1); /* exact size: ASan sees a read past the end */
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	r = http_parse_request(copy, size, MAX, &req);
	if (r == HTTP_DONE && (req.len == 0 || req.len > size || req.len > MAX || req.path[0] != '/' ||
	                       strlen(req.path) > HTTP_PATH_MAX || !req.method[0] || req.minor < 0 || req.minor > 9))
		abort();
	for (size_t n = 0; n < size; n++) {
		char *p = malloc(n ? n : 1);

		if (!p)
			break;
		memcpy(p, data, n);
		pr = http_parse_request(p, n, MAX, &pre);
		free(p);
		if (pr == HTTP_DONE && (r != HTTP_DONE || pre.len != req.len || strcmp(pre.path, req.path) != 0))
			abort();
		if (r == HTTP_DONE && n < req.len && pr != HTTP_MORE)
			abort();
		if (pr == HTTP_BAD && r != HTTP_BAD)
			abort();
	}
	free(copy);
	return 0;
}
