/* fuzz_sasl.c - libFuzzer harness for sasl.c: the AUTH argument, base64 and
 * the login name moat reads from a client's answer (untrusted, from the
 * network). Invariants: no crash or sanitizer report; a name read is
 * non-empty, at most MOAT_AUTH_USER_MAX bytes, without NUL or control
 * characters, and is in the decoded answer; base64 decodes to at most 3/4
 * of its length, and encoding back gives the input (canonical).
 *
 *   make fuzz-build; build/fuzz/fuzz_sasl -max_total_time=60 WORKDIR (a copy of tests/fuzz/corpus/sasl) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/lib/bounds.h"
#include "proxy/lib/sasl.h"
#include "tests/unit/b64enc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char line[MOAT_AUTH_LINE_MAX + 1], again[MOAT_AUTH_LINE_MAX + 8];
	static unsigned char out[MOAT_AUTH_LINE_MAX];
	char user[MOAT_AUTH_USER_MAX + 1];
	const char *initial;
	enum sasl_mech m;
	long n;

	if (size > MOAT_AUTH_LINE_MAX)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	/* the line as the line reader hands it over: up to a NUL it may hold */
	if (sasl_auth_args(line, &m, &initial) == 0 && initial &&
	    (initial < line || initial >= line + strlen(line) || strchr(initial, ' ')))
		abort();
	n = sasl_b64_decode((const char *)data, size, out, sizeof out);
	if (n > (long)(size / 4 * 3))
		abort();
	if (n > 0) {
		b64enc(out, (size_t)n, again);
		if (strlen(again) != size || memcmp(again, data, size) != 0)
			abort();
	}
	for (int k = SASL_PLAIN; k <= SASL_LOGIN; k++) {
		if (sasl_login_name((enum sasl_mech)k, (const char *)data, size, user, sizeof user) != 0)
			continue;
		size_t len = strlen(user);

		if (len == 0 || len > MOAT_AUTH_USER_MAX || n <= 0 || !memmem(out, (size_t)n, user, len))
			abort();
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)user[i] < 0x20 || user[i] == 0x7f)
				abort();
	}
	return 0;
}
