/* netagg.c - client addresses: parsed, matched, grouped (see netagg.h) */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "proxy/report/netagg.h"

int naddr_parse(const char *s, size_t n, struct naddr *out)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	char buf[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof buf || memchr(s, '\0', n))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	memset(out, 0, sizeof *out);
	if (inet_pton(AF_INET, buf, out->a) == 1) {
		out->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, out->a) != 1)
		return -1;
	out->family = AF_INET6;
	if (memcmp(out->a, mapped, 12) == 0) {
		memmove(out->a, out->a + 12, 4);
		memset(out->a + 4, 0, 12);
		out->family = AF_INET;
	}
	return 0;
}

int naddr_in(const struct naddr *a, const struct cidr *c)
{
	int full = c->prefix / 8, bits = c->prefix % 8;

	if (a->family != c->family)
		return 0;
	if (memcmp(a->a, c->addr, (size_t)full) != 0)
		return 0;
	return bits == 0 || ((a->a[full] ^ c->addr[full]) & (0xff00 >> bits)) == 0;
}

void naddr_network(const struct naddr *a, char *out, size_t size)
{
	uint8_t net[16] = {0};
	char text[INET6_ADDRSTRLEN];
	int v4 = a->family == AF_INET;

	memcpy(net, a->a, v4 ? NETAGG_V4_PREFIX / 8 : NETAGG_V6_PREFIX / 8);
	if (!inet_ntop(a->family, net, text, sizeof text))
		text[0] = '\0';
	snprintf(out, size, "%s/%d", text, v4 ? NETAGG_V4_PREFIX : NETAGG_V6_PREFIX);
}
