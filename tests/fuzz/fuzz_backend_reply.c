/* fuzz_backend_reply.c - libFuzzer harness for what moat reads from and
 * writes to the backend: a server's reply lines (smtp_reply.c: multi-line
 * replies, EHLO capabilities with XCLIENT's attribute list, the queue id)
 * and the XCLIENT and XFORWARD lines made from a client's HELO and name
 * (xclient.c).
 *
 * Input: lines separated by LF. The lines go to smtp_reply_add_line as a
 * backend's reply; the first two also stand for the client's HELO and its
 * host name. Invariants: a capability of XCLIENT never without XCLIENT
 * itself; each XCLIENT command at most 510 bytes, "XCLIENT" then
 * " KEY=value" attributes of printable ASCII only (xtext), ADDR first;
 * the XFORWARD line printable ASCII.
 *
 *   make fuzz-build; build/fuzz/fuzz_backend_reply -max_total_time=60 WORKDIR (a copy of tests/fuzz/corpus/backend_reply) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/lib/bounds.h"
#include "proxy/smtp_reply.h"
#include "proxy/xclient.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 32 || (unsigned char)*s > 126)
			return 0;
	return 1;
}

static void check_xclient(const char *helo, const char *name, unsigned attrs)
{
	char lines[XCLIENT_LINES_MAX][XCLIENT_LINE_MAX + 1], xf[MOAT_CMD_LINE_MAX * 2];
	struct relay_client cl = { .ip = "2001:db8::1", .port = 65535, .helo = helo, .esmtp = 1,
	                           .name_status = CLIENT_NAME_OK, .name = name, .login = helo };
	int n = xclient_lines(&cl, attrs, lines);

	if (!(attrs & XCLIENT_ADDR) != (n == 0) || n < 0 || n > XCLIENT_LINES_MAX)
		abort();
	for (int i = 0; i < n; i++) {
		const char *p = lines[i] + 7;

		if (strlen(lines[i]) > XCLIENT_LINE_MAX || strncmp(lines[i], "XCLIENT ", 8) != 0 ||
		    !printable(lines[i]))
			abort();
		if (i == 0 && strncmp(lines[i], "XCLIENT ADDR=", 13) != 0)
			abort();
		while (*p) { /* " KEY=value" */
			const char *eq = strchr(p + 1, '='), *sp = strchr(p + 1, ' ');

			if (*p != ' ' || !eq || (sp && sp < eq) || eq == p + 1 || eq[1] == '\0' || eq[1] == ' ')
				abort();
			p = sp ? sp : p + strlen(p);
		}
	}
	xforward_line(&cl, xf, sizeof xf);
	if (!printable(xf) || strncmp(xf, "XFORWARD NAME=", 14) != 0)
		abort();
	(void)xclient_helo_ok(helo);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *line, *next, *first[2] = { "", "" };
	struct smtp_reply r;
	struct ehlo_caps caps;
	char qid[MOAT_QUEUE_ID_MAX + 1], head[64];
	int nfirst = 0;

	if (!text || size > 64 * 1024) {
		free(text);
		return 0;
	}
	memcpy(text, data, size);
	text[size] = '\0';
	smtp_reply_init(&r);
	for (line = text; line; line = next) {
		size_t n;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		n = strlen(line);
		if (nfirst < 2)
			first[nfirst++] = line;
		if (smtp_reply_add_line(&r, line, n) != REPLY_MORE)
			break;
	}
	if (r.len != strlen(r.text) || r.len >= sizeof r.text)
		abort();
	ehlo_caps_parse(&r, &caps);
	if ((caps.xclient & ~(unsigned)XCLIENT_OFFERED) && !(caps.xclient & XCLIENT_OFFERED))
		abort();
	if (reply_queue_id(r.text, qid, sizeof qid) && (!qid[0] || strlen(qid) > MOAT_QUEUE_ID_MAX))
		abort();
	reply_first_line(r.text, head, sizeof head);
	/* the client's HELO and name as they could be (HELO: one word, any bytes) */
	first[0][strcspn(first[0], " \t")] = '\0';
	if (strlen(first[0]) > MOAT_HELO_MAX)
		first[0][MOAT_HELO_MAX] = '\0';
	if (strlen(first[1]) > MOAT_DOMAIN_MAX)
		first[1][MOAT_DOMAIN_MAX] = '\0';
	check_xclient(first[0], first[1], caps.xclient | XCLIENT_ADDR);
	check_xclient(first[0], first[1], caps.xclient);
	free(text);
	return 0;
}
