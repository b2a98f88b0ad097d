/* smtp_reply.c - server reply parsing (RFC 5321 4.2) */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/smtp_reply.h"

void smtp_reply_init(struct smtp_reply *r)
{
	r->code = 0;
	r->len = 0;
	r->nlines = 0;
	r->text[0] = '\0';
}

enum reply_step smtp_reply_add_line(struct smtp_reply *r, const char *line, size_t len)
{
	int code;

	if (len < 3 || !isdigit((unsigned char)line[0]) || !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]))
		return REPLY_BAD;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return REPLY_BAD;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (code < 200 || code > 599 || (r->nlines > 0 && code != r->code))
		return REPLY_BAD;
	if (r->len + len + 3 > sizeof r->text || r->nlines >= MOAT_BACKEND_REPLY_LINES)
		return REPLY_BAD;
	if (memchr(line, '\0', len) || memchr(line, '\r', len))
		return REPLY_BAD;
	r->code = code;
	memcpy(r->text + r->len, line, len);
	r->len += len;
	memcpy(r->text + r->len, "\r\n", 3);
	r->len += 2;
	r->nlines++;
	return (len > 3 && line[3] == '-') ? REPLY_MORE : REPLY_DONE;
}

/* Does an EHLO line's keyword (after "250-"/"250 ") equal kw? */
static int ehlo_kw(const char *l, size_t n, const char *kw, const char **param)
{
	size_t k = strlen(kw);

	if (n < k || strncasecmp(l, kw, k) != 0 || (n > k && l[k] != ' '))
		return 0;
	if (param)
		*param = n > k ? l + k + 1 : NULL;
	return 1;
}

void ehlo_caps_parse(const struct smtp_reply *r, struct ehlo_caps *caps)
{
	const char *p = r->text, *end = r->text + r->len;
	int first = 1;

	memset(caps, 0, sizeof *caps);
	while (p < end) {
		const char *eol = memchr(p, '\r', (size_t)(end - p));
		const char *l = p + 4, *param;
		size_t n;

		if (!eol)
			break;
		n = eol > l ? (size_t)(eol - l) : 0;
		if (!first && n > 0) {
			if (ehlo_kw(l, n, "PIPELINING", NULL)) caps->pipelining = 1;
			else if (ehlo_kw(l, n, "8BITMIME", NULL)) caps->eightbit = 1;
			else if (ehlo_kw(l, n, "SMTPUTF8", NULL)) caps->smtputf8 = 1;
			else if (ehlo_kw(l, n, "DSN", NULL)) caps->dsn = 1;
			else if (ehlo_kw(l, n, "ENHANCEDSTATUSCODES", NULL)) caps->enhanced = 1;
			else if (ehlo_kw(l, n, "XFORWARD", NULL)) caps->xforward = 1;
			else if (ehlo_kw(l, n, "SIZE", &param))
				caps->size = param ? strtoul(param, NULL, 10) : 0;
		}
		first = 0;
		p = eol + 2;
	}
}

void reply_first_line(const char *text, char *out, size_t size)
{
	size_t n = strcspn(text, "\r\n");

	if (n >= size)
		n = size - 1;
	memcpy(out, text, n);
	out[n] = '\0';
}
