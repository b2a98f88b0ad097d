/* fuzz_authres.c - libFuzzer: header scanning and forged Authentication-Results detection.
 * Invariants: fields found lie inside the input, in order, without overlap;
 * authres_claims answers 0 or 1; our own field, once formatted, is claimed. */
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "authres.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct header_field f[64];
	struct spf_outcome spf;
	struct dkim_outcome dk;
	char buf[8192], id[64];
	size_t end, prev = 0, idl;
	int n, i;

	n = header_scan((const char *)data, size, f, 64, &end);
	if (end > size)
		abort();
	for (i = 0; i < n; i++) {
		int c;

		if (f[i].off < prev || f[i].off + f[i].len > size || f[i].name_len > f[i].len)
			abort();
		prev = f[i].off + f[i].len;
		c = authres_claims((const char *)data + f[i].off, f[i].len, "mx.example");
		if (c != 0 && c != 1)
			abort();
	}
	/* Our own header with outside values from the input: it must parse as ours. */
	memset(&spf, 0, sizeof spf);
	memset(&dk, 0, sizeof dk);
	idl = size < sizeof spf.identity - 1 ? size : sizeof spf.identity - 1;
	memcpy(spf.identity, data, idl);
	spf.identity[strnlen(spf.identity, idl)] = '\0';
	spf.res = SPF_RES_PASS;
	dk.nsigs = 1;
	dk.sig[0].res = DKIM_RES_FAIL;
	memcpy(dk.sig[0].domain, spf.identity, strnlen(spf.identity, sizeof dk.sig[0].domain - 1));
	memcpy(dk.sig[0].reason, spf.identity, strnlen(spf.identity, sizeof dk.sig[0].reason - 1));
	snprintf(id, sizeof id, "mx.example");
	if (authres_format(buf, sizeof buf, id, &spf, &dk) > 0 &&
	    authres_claims(buf, strlen(buf), id) != 1)
		abort();
	return 0;
}
