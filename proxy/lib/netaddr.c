/* netaddr.c - addresses, host:port and CIDR parsing (pure, no I/O, no DNS) */
#include "proxy/lib/netaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/* Longest numeric address text we accept (IPv6 with an embedded IPv4). */
#define ADDR_TEXT_MAX INET6_ADDRSTRLEN

static const uint8_t v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* Strict decimal: 1..maxdigits digits, no sign, no spaces, value <= max. */
static int parse_uint(const char *s, size_t n, int maxdigits, long max, long *out)
{
	long v = 0;

	if (n == 0 || n > (size_t)maxdigits)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* Copy s[0..n) into a NUL-terminated buffer; too long is a parse error. */
static int copy_text(const char *s, size_t n, char *buf, size_t size)
{
	if (n == 0 || n >= size)
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return 0;
}

static void clear_host_bits(uint8_t *addr, int nbytes, int prefix)
{
	for (int i = 0; i < nbytes; i++) {
		int keep = prefix - i * 8;
		if (keep <= 0)
			addr[i] = 0;
		else if (keep < 8)
			addr[i] &= (uint8_t)(0xff << (8 - keep));
	}
}

/* Do the first `prefix` bits of a and b agree? */
static int prefix_equal(const uint8_t *a, const uint8_t *b, int prefix)
{
	int whole = prefix / 8, rest = prefix % 8;

	if (memcmp(a, b, (size_t)whole) != 0)
		return 0;
	if (rest == 0)
		return 1;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

int cidr_parse(const char *s, struct cidr *out)
{
	char text[ADDR_TEXT_MAX];
	const char *slash;
	size_t alen;
	long prefix;
	int maxbits;

	if (s == NULL || out == NULL)
		return -1;
	slash = strchr(s, '/');
	alen = slash ? (size_t)(slash - s) : strlen(s);
	if (copy_text(s, alen, text, sizeof text) < 0)
		return -1;
	memset(out, 0, sizeof *out);
	if (inet_pton(AF_INET, text, out->addr) == 1) {
		out->family = AF_INET;
		maxbits = 32;
	} else if (inet_pton(AF_INET6, text, out->addr) == 1) {
		out->family = AF_INET6;
		maxbits = 128;
	} else {
		return -1;
	}
	prefix = maxbits;
	if (slash && parse_uint(slash + 1, strlen(slash + 1), 3, maxbits, &prefix) < 0)
		return -1;
	out->prefix = (int)prefix;
	/* "::ffff:10.0.0.0/104" is an IPv4 network: keep IPv4 as AF_INET, as promised. */
	if (out->family == AF_INET6 && out->prefix >= 96 &&
	    memcmp(out->addr, v4mapped_prefix, sizeof v4mapped_prefix) == 0) {
		memmove(out->addr, out->addr + 12, 4);
		memset(out->addr + 4, 0, 12);
		out->family = AF_INET;
		out->prefix -= 96;
	}
	clear_host_bits(out->addr, out->family == AF_INET ? 4 : 16, out->prefix);
	return 0;
}

/* The host part of a socket address; v4-mapped IPv6 comes back as AF_INET. */
static int sa_host(const struct sockaddr *sa, uint8_t addr[16])
{
	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return AF_INET;
	}
	if (sa->sa_family != AF_INET6)
		return -1;
	const uint8_t *a6 = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	if (memcmp(a6, v4mapped_prefix, sizeof v4mapped_prefix) == 0) {
		memcpy(addr, a6 + 12, 4);
		return AF_INET;
	}
	memcpy(addr, a6, 16);
	return AF_INET6;
}

int cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
	uint8_t addr[16];

	if (c == NULL || sa_host(sa, addr) != c->family)
		return 0;
	return prefix_equal(c->addr, addr, c->prefix);
}

static int fill_in4(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return -1;
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	*len = sizeof *sin;
	return 0;
}

static int fill_in6(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
		return -1;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons((uint16_t)port);
	*len = sizeof *sin6;
	return 0;
}

/* ":port" or nothing (then the default, if there is one). */
static int parse_port(const char *s, int default_port, int *port)
{
	long v;

	if (*s == '\0') {
		*port = default_port;
		return default_port > 0 ? 0 : -1;
	}
	if (*s != ':' || parse_uint(s + 1, strlen(s + 1), 5, 65535, &v) < 0)
		return -1;
	*port = (int)v;
	return 0;
}

/* Split s into host text and port. IPv6 needs brackets to carry a port;
 * bare IPv6 ("::1") is only taken when the port may be omitted. */
static int split_hostport(const char *s, int default_port, char *host, size_t hsize,
			  int *port, int *v6)
{
	const char *colon;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		*v6 = 1;
		if (end == NULL || copy_text(s + 1, (size_t)(end - s - 1), host, hsize) < 0)
			return -1;
		return parse_port(end + 1, default_port, port);
	}
	colon = strchr(s, ':');
	if (colon && strchr(colon + 1, ':')) {
		*v6 = 1;
		*port = default_port;
		return default_port > 0 ? copy_text(s, strlen(s), host, hsize) : -1;
	}
	*v6 = 0;
	if (copy_text(s, colon ? (size_t)(colon - s) : strlen(s), host, hsize) < 0)
		return -1;
	return parse_port(colon ? colon : "", default_port, port);
}

int hostport_parse(const char *s, int default_port, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[ADDR_TEXT_MAX];
	socklen_t dummy;
	int port, v6;

	if (s == NULL || ss == NULL || default_port > 65535)
		return -1;
	if (len == NULL)
		len = &dummy;
	if (split_hostport(s, default_port, host, sizeof host, &port, &v6) < 0)
		return -1;
	memset(ss, 0, sizeof *ss);
	if (v6)
		return fill_in6(host, port, ss, len);
	return fill_in4(host, port, ss, len);
}

void sockaddr_ntop(const struct sockaddr *sa, char *buf, size_t size)
{
	char text[ADDR_TEXT_MAX];
	uint8_t addr[16];
	int family = sa_host(sa, addr);

	if (buf == NULL || size == 0)
		return;
	if (family < 0 || inet_ntop(family, addr, text, sizeof text) == NULL)
		snprintf(text, sizeof text, "?");
	snprintf(buf, size, "%s", text);
}

int sockaddr_port(const struct sockaddr *sa)
{
	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

int sockaddr_same_host(const struct sockaddr *a, const struct sockaddr *b)
{
	uint8_t x[16], y[16];
	int fa = sa_host(a, x), fb = sa_host(b, y);

	if (fa < 0 || fa != fb)
		return 0;
	return memcmp(x, y, fa == AF_INET ? 4 : 16) == 0;
}

void sockaddr_key16(const struct sockaddr *sa, uint8_t key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	}
}
