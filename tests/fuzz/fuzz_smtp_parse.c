/* fuzz_smtp_parse.c - libFuzzer harness for smtp_parse.c.
 * The input is one command line (NUL-terminated copy, as the line reader
 * hands it over); every parser runs on it and the results are checked for
 * the invariants the session code relies on.
 *
 *   make fuzz-build; build/fuzz/fuzz_smtp_parse -max_total_time=60 WORKDIR (a copy of tests/fuzz/corpus/smtp_parse) */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/lib/smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the backend gets ("RCPT TO:<mailbox>", strict) parses to the same
 * address the checks saw, however the client wrote it (brackets or not, a
 * trailing dot, a source route, which moat drops). */
static void check_resent(const struct smtp_path *p, int how)
{
	static char line[MOAT_PATH_MAX + 16];
	static struct smtp_path q;
	const int route = PATH_SOURCE_ROUTE | PATH_UTF8; /* a route's U-label is gone too */

	if (p->null)
		return;
	snprintf(line, sizeof line, "%s:<%s>", (how & PARSE_RCPT) ? "TO" : "FROM", p->mailbox);
	if (smtp_parse_mail_rcpt(line, (how & PARSE_RCPT) | PARSE_STRICT, &q, NULL) != PATH_OK ||
	    strcmp(q.mailbox, p->mailbox) || strcmp(q.domain, p->domain) || strcmp(q.local, p->local) ||
	    strcmp(q.ascii_domain, p->ascii_domain) ||
	    (q.flags & ~route) != (p->flags & ~route) || (q.flags & ~p->flags))
		abort();
}

static void check_path(const char *arg, int how, enum path_err e, const struct smtp_path *p,
                       const struct smtp_params *ps)
{
	if (e != PATH_OK) {
		if (p->mailbox[0] || p->domain[0] || p->ascii_domain[0] || p->flags || p->null || ps->n || ps->at)
			abort();
		return;
	}
	if (strlen(p->mailbox) > MOAT_PATH_MAX - 2 || strlen(p->domain) > MOAT_DOMAIN_MAX ||
	    ps->n < 0 || ps->n > SMTP_PARAMS_MAX || ps->at > strlen(arg))
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
	check_resent(p, how);
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
	for (int how = 0; how <= (PARSE_RCPT | PARSE_STRICT); how++) {
		check_path(line, how, smtp_parse_mail_rcpt(line, how, &p, &ps), &p, &ps);
		check_path(c.arg, how, smtp_parse_mail_rcpt(c.arg, how, &p, &ps), &p, &ps);
	}
	if (parse_ulong(line, 1000000, &v) == 0 && v > 1000000)
		abort();
	free(line);
	return 0;
}
