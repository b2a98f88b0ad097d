/* xclient.c - the XCLIENT and XFORWARD command lines (see xclient.h) */
#include <stdio.h>
#include <string.h>

#include "proxy/lib/bounds.h"
#include "proxy/smtp_reply.h"
#include "proxy/xclient.h"

#define UNAVAILABLE "[UNAVAILABLE]"

size_t xtext(const char *in, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t need = 0, o = 0;

	for (; *in; in++) {
		unsigned char c = (unsigned char)*in;
		int esc = c < 33 || c > 126 || c == '+' || c == '=';
		size_t w = esc ? 3 : 1;

		if (need == o && o + w < size) {
			if (esc) {
				out[o++] = '+';
				out[o++] = hex[c >> 4];
				out[o++] = hex[c & 15];
			} else {
				out[o++] = (char)c;
			}
		}
		need += w;
	}
	out[o] = '\0';
	return need;
}

/* " KEY=value" of one attribute, xtext-encoded; [UNAVAILABLE] when the
 * value is empty or would not fit in a command of its own. */
static void attr(char *out, size_t size, const char *key, const char *value)
{
	char enc[XCLIENT_LINE_MAX + 1];
	size_t room = XCLIENT_LINE_MAX - strlen("XCLIENT ") - strlen(key) - 1;

	if (!value || !*value || xtext(value, enc, sizeof enc) > room)
		snprintf(enc, sizeof enc, "%s", UNAVAILABLE);
	snprintf(out, size, " %s=%s", key, enc);
}

static int name_ok(const struct relay_client *cl)
{
	return cl->name_status == CLIENT_NAME_OK && cl->name && *cl->name;
}

int xclient_lines(const struct relay_client *cl, unsigned attrs,
                  char lines[XCLIENT_LINES_MAX][XCLIENT_LINE_MAX + 1])
{
	char a[6][XCLIENT_LINE_MAX + 16], v[64];
	int n = 0, nlines = 0;

	if (!(attrs & XCLIENT_ADDR))
		return 0;
	/* the address ("IPV6:" before an IPv6 one, never in brackets) */
	snprintf(v, sizeof v, "%s%s", strchr(cl->ip, ':') ? "IPV6:" : "", cl->ip);
	attr(a[n++], sizeof a[0], "ADDR", v);
	if (attrs & XCLIENT_PORT) {
		snprintf(v, sizeof v, "%d", cl->port);
		attr(a[n++], sizeof a[0], "PORT", v);
	}
	if ((attrs & XCLIENT_NAME) && name_ok(cl))
		attr(a[n++], sizeof a[0], "NAME", cl->name);
	else if (attrs & XCLIENT_NAME)
		snprintf(a[n++], sizeof a[0], " NAME=%s",
		         cl->name_status == CLIENT_NAME_NONE ? UNAVAILABLE : "[TEMPUNAVAIL]");
	if (attrs & XCLIENT_HELO)
		attr(a[n++], sizeof a[0], "HELO", cl->helo);
	if (attrs & XCLIENT_PROTO)
		attr(a[n++], sizeof a[0], "PROTO", cl->esmtp ? "ESMTP" : "SMTP");
	if ((attrs & XCLIENT_LOGIN) && cl->login && *cl->login)
		attr(a[n++], sizeof a[0], "LOGIN", cl->login);
	/* as many attributes per command as fit */
	for (int i = 0; i < n; i++) {
		size_t used = nlines ? strlen(lines[nlines - 1]) : 0, w = strlen(a[i]);

		if (!nlines || used + w > XCLIENT_LINE_MAX) {
			if (nlines == XCLIENT_LINES_MAX)
				return nlines; /* cannot happen: each fits alone, 6 fit in 3 */
			snprintf(lines[nlines++], XCLIENT_LINE_MAX + 1, "XCLIENT");
			used = strlen("XCLIENT");
		}
		memcpy(lines[nlines - 1] + used, a[i], w + 1);
	}
	return nlines;
}

int xclient_helo_ok(const char *helo)
{
	size_t n = strlen(helo);

	if (n == 0 || n > MOAT_HELO_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)helo[i] < 33 || (unsigned char)helo[i] > 126)
			return 0;
	return 1;
}

void xforward_line(const struct relay_client *cl, char *line, size_t size)
{
	char helo[MOAT_HELO_MAX * 3 + 1], name[MOAT_DOMAIN_MAX * 3 + 1];

	xtext(cl->helo, helo, sizeof helo);
	if (name_ok(cl))
		xtext(cl->name, name, sizeof name);
	else
		snprintf(name, sizeof name, "%s", UNAVAILABLE);
	snprintf(line, size, "XFORWARD NAME=%s ADDR=%s%s PORT=%d PROTO=%s HELO=%s SOURCE=REMOTE", name,
	         strchr(cl->ip, ':') ? "IPV6:" : "", cl->ip, cl->port, cl->esmtp ? "ESMTP" : "SMTP", helo);
}
