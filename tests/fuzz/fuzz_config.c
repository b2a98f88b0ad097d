/* fuzz_config.c - libFuzzer: moat.conf text through config_parse.
 * Invariant: a config is returned, or an error of the form "fuzz.conf:LINE: ..." / "fuzz.conf: ...". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024] = "";
	struct config *c = config_parse((const char *)data, size, "fuzz.conf", err, sizeof err);

	if (c) {
		config_unref(c);
	} else if (strncmp(err, "fuzz.conf:", 10) != 0) {
		abort(); /* every error names the file */
	}
	return 0;
}
