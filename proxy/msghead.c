/* msghead.c - the header fields moat puts in front of a message (see msghead.h) */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "proxy/msghead.h"

/* Printable ASCII for a header comment: no parentheses, no backslash. */
static void comment_safe(const char *in, char *out, size_t size)
{
	size_t o = 0;

	for (; *in && o + 1 < size; in++)
		out[o++] = (*in > 0x20 && *in < 0x7f && !strchr("()\\", *in)) ? *in : '?';
	out[o] = '\0';
}

int msghead_format(char *buf, size_t size, const struct msghead *h)
{
	char helo[MOAT_HELO_MAX + 1], version[32], cipher[96], tls[160] = "";
	int n;

	comment_safe(h->helo, helo, sizeof helo);
	if (h->tls_version) { /* OpenSSL's names: safe already, but a comment is a comment */
		comment_safe(h->tls_version, version, sizeof version);
		comment_safe(h->tls_cipher ? h->tls_cipher : "", cipher, sizeof cipher);
		snprintf(tls, sizeof tls, " (%s cipher %s)", version, cipher);
	}
	n = snprintf(buf, size,
	             "%s%sReceived: from %s ([%s%s])\r\n\tby %s (moat) with %s%s%s%s id %s.%d;\r\n\t%s\r\n",
	             h->authres ? h->authres : "", h->tags, helo, h->ipv6 ? "IPv6:" : "", h->client_ip,
	             h->hostname, h->proto, h->tls_version ? "S" : "", h->authenticated ? "A" : "", tls, h->id, h->ntx,
	             h->date);
	return n < 0 || (size_t)n >= size ? -1 : n;
}

void msghead_date(char *buf, size_t size, long long t)
{
	time_t now = (time_t)t;
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(buf, size, "%a, %d %b %Y %H:%M:%S %z", &tm);
}
