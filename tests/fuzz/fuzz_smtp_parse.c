/* fuzz_smtp_parse.c - libFuzzer harness for smtp_parse.c.
 * The input is one command line (NUL-terminated copy, as the line reader
 * hands it over); every parser runs on it and the results are checked for
 * the invariants the session code relies on.
 *
 *   make fuzz-build; build/fuzz/fuzz_smtp_parse -max_total_time=60 WORKDIR (a copy of tests/fuzz/corpus/smtp_parse) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/lib/smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_path(enum path_err e, const struct smtp_path *p, const struct smtp_params *ps)
{
	if (e != PATH_OK) {
		if (p->mailbox[0] || p->domain[0] || p->ascii_domain[0] || p->flags || p->null || ps->n)
			abort();
		return;
	}
	if (strlen(p->mailbox) > MOAT_PATH_MAX - 2 || strlen(p->domain) > MOAT_DOMAIN_MAX ||
	    ps->n < 0 || ps->n > SMTP_PARAMS_MAX)
		abort();
	/* a domain has its A-label form: ASCII, a DNS name's length, empty only with it */
	if (!p->domain[0] != !p->ascii_domain[0] || strlen(p->ascii_domain) > 253)
		abort();
	for (const char *a = p->ascii_domain; *a; a++)
		if ((unsigned char)*a >= 0x80 || (*a >= 'A' && *a <= 'Z'))
			abort();
	for (int i = 0; i < ps->n; i++)
		if (smtp_param_get(ps, ps->p[i].key) != &ps->p[i])
			abort(); /* keys are unique */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct smtp_cmd c;
	static struct smtp_path p;
	static struct smtp_params ps;
	unsigned long v;
	char *line;

	if (size > MOAT_CMD_LINE_MAX * 2)
		return 0;
	line = malloc(size + 1);
	if (line == NULL)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';

	smtp_cmd_parse(line, &c);
	if (strlen(c.arg) >= sizeof c.argbuf)
		abort();
	for (int rcpt = 0; rcpt <= 1; rcpt++) {
		check_path(smtp_parse_mail_rcpt(line, rcpt, &p, &ps), &p, &ps);
		check_path(smtp_parse_mail_rcpt(c.arg, rcpt, &p, &ps), &p, &ps);
	}
	if (parse_ulong(line, 1000000, &v) == 0 && v > 1000000)
		abort();
	free(line);
	return 0;
}
