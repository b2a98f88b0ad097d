/* backend_target.c - the backend lists of moat.conf (see backend_target.h) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/backend_target.h"
#include "proxy/lib/domain.h"
#include "proxy/lib/idna.h"
#include "proxy/lib/netaddr.h"

#define ITEM_MAX 300 /* an item as written, for its error message */

static int fail(char *msg, size_t msz, const char *item, size_t n, const char *why)
{
	snprintf(msg, msz, "\"%.*s\" %s", (int)(n < ITEM_MAX ? n : ITEM_MAX), item, why);
	return -1;
}

/* ":PORT" at the end of a name: 1..65535, else -1. */
static int port_of(const char *s, size_t n)
{
	long v = 0;

	if (n == 0 || n > 5)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v >= 1 && v <= 65535 ? (int)v : -1;
}

/* NAME[:PORT] into t. */
static int parse_name(const char *item, size_t n, struct backend_target *t, char *msg, size_t msz)
{
	const char *colon = memchr(item, ':', n);
	size_t hn = colon ? (size_t)(colon - item) : n;
	int flags = DOMAIN_LDH | DOMAIN_UTF8 | DOMAIN_TRAILING_DOT;

	t->port = colon ? port_of(colon + 1, n - hn - 1) : 25;
	if (colon && memchr(colon + 1, ':', n - hn - 1))
		return fail(msg, msz, item, n, "is not an address[:port] (an IPv6 address goes in brackets: "
		            "[2001:db8::1]:25) nor a name[:port]");
	if (t->port < 0)
		return fail(msg, msz, item, n, "has no valid port (1 to 65535)");
	if (hn > 0 && item[hn - 1] == '.')
		hn--; /* the root: mta.example.com. */
	if (domain_check(item, hn, flags) < 0)
		return fail(msg, msz, item, n, "is not a numeric address[:port] nor a host name[:port]");
	if (domain_check(item, hn, flags | DOMAIN_NOT_NUMERIC) < 0)
		return fail(msg, msz, item, n, "is not a numeric address[:port] (nor a name: its last label is a "
		            "number)");
	if (domain_check(item, hn, flags | DOMAIN_MULTI_LABEL) < 0)
		return fail(msg, msz, item, n, "is a name of one label: write it in full (mta.example.com), moat "
		            "does not apply resolv.conf's search list (for this host, 127.0.0.1)");
	if (idna_to_ascii(item, hn, t->name, sizeof t->name) != IDNA_OK)
		return fail(msg, msz, item, n, "is not a valid internationalised domain name");
	for (char *p = t->name; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return 0;
}

static int parse_item(const char *item, size_t n, struct backend_target *t, char *msg, size_t msz)
{
	char text[ITEM_MAX + 1];

	memset(t, 0, sizeof *t);
	if (n > ITEM_MAX)
		return fail(msg, msz, item, n, "is too long");
	memcpy(text, item, n);
	text[n] = '\0';
	if (hostport_parse(text, 25, &t->addr, &t->addrlen) == 0) {
		t->port = sockaddr_port((struct sockaddr *)&t->addr);
		return t->port ? 0 : fail(msg, msz, item, n, "has port 0");
	}
	if (text[0] == '[' || (strchr(text, ':') && strchr(text, ':') != strrchr(text, ':')))
		return fail(msg, msz, item, n, "is not a numeric address[:port]");
	return parse_name(text, n, t, msg, msz);
}

int backend_list_parse(const char *val, struct backend_list *l, char *msg, size_t msz)
{
	struct backend_list out = {0};

	for (const char *p = val;;) {
		size_t n;

		p += strspn(p, ", \t");
		if (*p == '\0')
			break;
		n = strcspn(p, ", \t");
		if (out.n == MOAT_BACKENDS_MAX) {
			snprintf(msg, msz, "more than %d backends", MOAT_BACKENDS_MAX);
			return -1;
		}
		if (parse_item(p, n, &out.t[out.n], msg, msz) < 0)
			return -1;
		for (int i = 0; i < out.n; i++)
			if (backend_target_equal(&out.t[i], &out.t[out.n]))
				return fail(msg, msz, p, n, "is listed twice");
		out.n++;
		p += n;
	}
	if (out.n == 0) {
		snprintf(msg, msz, "empty value");
		return -1;
	}
	*l = out;
	return 0;
}

int backend_target_equal(const struct backend_target *a, const struct backend_target *b)
{
	if (a->port != b->port || strcmp(a->name, b->name) != 0)
		return 0;
	return a->name[0] || (a->addrlen == b->addrlen && memcmp(&a->addr, &b->addr, a->addrlen) == 0);
}

int backend_list_equal(const struct backend_list *a, const struct backend_list *b)
{
	if (a->n != b->n)
		return 0;
	for (int i = 0; i < a->n; i++)
		if (!backend_target_equal(&a->t[i], &b->t[i]))
			return 0;
	return 1;
}

void backend_addr_text(const struct sockaddr *sa, char *out, size_t size)
{
	char ip[64];

	sockaddr_ntop(sa, ip, sizeof ip);
	snprintf(out, size, strchr(ip, ':') ? "[%s]:%d" : "%s:%d", ip, sockaddr_port(sa));
}

void backend_target_text(const struct backend_target *t, char *out, size_t size)
{
	if (t->name[0])
		snprintf(out, size, "%s:%d", t->name, t->port);
	else
		backend_addr_text((const struct sockaddr *)&t->addr, out, size);
}
