/* fuzz_dmarc_from.c - libFuzzer: DMARC's reading of a header section (the
 * author domain, the Message-ID) and of a TXT answer (the DMARC record).
 * Invariants: a status in range; author domains only with DMARC_FROM_OK,
 * then 1..MOAT_DMARC_AUTHORS_MAX of them, each non-empty, lower case LDH
 * with dots, no trailing dot, no two alike; strings NUL-terminated within
 * their buffers; the record picker answers -1..2 and a record it picks starts
 * "v"; the From value's answer the same again (the memo) as at first. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checks/dmarc.h"
#include "checks/dmarc_from.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_domain(const char *d)
{
	size_t n = strlen(d);

	if (n == 0 || n > MOAT_DOMAIN_MAX || d[n - 1] == '.')
		abort();
	for (size_t i = 0; i < n; i++)
		if (!((d[i] >= 'a' && d[i] <= 'z') || (d[i] >= '0' && d[i] <= '9') || d[i] == '-' || d[i] == '.'))
			abort();
}

static void check_domains(char (*d)[MOAT_DOMAIN_MAX + 1], int n)
{
	if (n < 1 || n > MOAT_DMARC_AUTHORS_MAX)
		abort();
	for (int i = 0; i < n; i++) {
		if (!memchr(d[i], 0, MOAT_DOMAIN_MAX + 1))
			abort();
		check_domain(d[i]);
		for (int k = 0; k < i; k++)
			if (strcmp(d[i], d[k]) == 0)
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dmarc_from f;
	char dom[MOAT_DMARC_AUTHORS_MAX][MOAT_DOMAIN_MAX + 1], rec[MOAT_DMARC_RECORD_MAX + 1];
	enum dmarc_from_status st;
	int n;

	memset(&f, 0x55, sizeof f);
	dmarc_from_scan((const char *)data, size, &f);
	if ((unsigned)f.status > DMARC_FROM_BAD || !memchr(f.msgid, 0, sizeof f.msgid))
		abort();
	if (f.status == DMARC_FROM_OK)
		check_domains(f.domain, f.ndomains);
	else if (f.ndomains)
		abort();

	n = -1;
	st = dmarc_from_value((const char *)data, size, dom, &n);
	if (st == DMARC_FROM_NONE || st == DMARC_FROM_SEVERAL || (unsigned)st > DMARC_FROM_BAD)
		abort();
	if (st == DMARC_FROM_OK)
		check_domains(dom, n);
	/* the worker's memo of the last value (dmarc_from_value): the same
	 * answer again, and after another value displaced it */
	for (int round = 0; round < 2; round++) {
		char again[MOAT_DMARC_AUTHORS_MAX][MOAT_DOMAIN_MAX + 1];
		int n2 = -1;

		if (dmarc_from_value((const char *)data, size, again, &n2) != st || n2 != n)
			abort();
		for (int i = 0; st == DMARC_FROM_OK && i < n; i++)
			if (strcmp(again[i], dom[i]) != 0)
				abort();
		dmarc_from_value("a@b.example", 11, again, &n2);
	}

	n = dmarc_record_pick(data, (int)(size > 65535 ? 65535 : size), rec, sizeof rec);
	if (n < -1 || n > 2 || (n == 1 && rec[0] != 'v'))
		abort();
	return 0;
}
