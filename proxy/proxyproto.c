/* proxyproto.c - HAProxy PROXY protocol v1/v2 headers (haproxy
 * doc/proxy-protocol.txt); pure: the caller reads, this only looks at bytes.
 * Partial input is judged as far as it goes, so garbage is refused at once
 * instead of after the PROXY timeout. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "proxy/lib/bounds.h"
#include "proxy/proxyproto.h"

#define V1_MAX 107 /* spec 2.1: "PROXY UNKNOWN" + two IPv6, two ports, CRLF */
#define V2_HDR 16

static const unsigned char v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
};

static void set_addr(struct sockaddr_storage *ss, socklen_t *len, int af,
                     const unsigned char *addr, unsigned port)
{
	if (af == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		memcpy(&sin->sin_addr, addr, 4);
		*len = sizeof *sin;
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		memcpy(&sin6->sin6_addr, addr, 16);
		*len = sizeof *sin6;
	}
}

/* ---- v1: "PROXY TCP4 1.2.3.4 5.6.7.8 1234 25\r\n" ---- */

struct cur {
	const unsigned char *p;
	size_t len, pos;
};

/* Match literal text; running out of input only means "not yet". */
static enum pp_result lit(struct cur *c, const char *s)
{
	for (; *s; s++, c->pos++) {
		if (c->pos >= c->len)
			return PP_MORE;
		if (c->p[c->pos] != (unsigned char)*s)
			return PP_BAD;
	}
	return PP_OK;
}

/* The next field, up to ' ' or '\r' (left unread). *done is 0 when the
 * input ran out first: the field may still grow. */
static size_t field(struct cur *c, const unsigned char **f, int *done)
{
	size_t start = c->pos;

	while (c->pos < c->len && c->p[c->pos] != ' ' && c->p[c->pos] != '\r')
		c->pos++;
	*f = c->p + start;
	*done = c->pos < c->len;
	return c->pos - start;
}

/* A whole word, or while !done a prefix of it. */
static int word_ok(const unsigned char *f, size_t n, int done, const char *w)
{
	size_t wlen = strlen(w);

	return n <= wlen && memcmp(f, w, n) == 0 && (!done || n == wlen);
}

/* Dotted quad the way inet_pton takes it (no leading zeros, parts <= 255);
 * while !done a prefix of one. */
static int v4_ok(const unsigned char *s, size_t n, int done)
{
	unsigned part = 0, dots = 0, digits = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (digits == 0 || ++dots > 3)
				return 0;
			digits = part = 0;
		} else if (s[i] >= '0' && s[i] <= '9') {
			if (digits == 1 && part == 0)
				return 0;
			part = part * 10 + (unsigned)(s[i] - '0');
			if (++digits > 3 || part > 255)
				return 0;
		} else {
			return 0;
		}
	}
	return !done || (dots == 3 && digits > 0);
}

/* Only the characters are checked before the field is whole. */
static int v6_chars_ok(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\0' || !strchr("0123456789abcdefABCDEF:.", s[i]))
			return 0;
	return 1;
}

/* An address of the family TCP4/TCP6 named, then its separator. */
static enum pp_result v1_addr(struct cur *c, int af, unsigned char *addr)
{
	char buf[INET6_ADDRSTRLEN];
	const unsigned char *f;
	int done;
	size_t n = field(c, &f, &done);

	if (n >= sizeof buf)
		return PP_BAD;
	if (af == AF_INET ? !v4_ok(f, n, done) : !v6_chars_ok(f, n))
		return PP_BAD;
	if (!done)
		return PP_MORE;
	memcpy(buf, f, n);
	buf[n] = '\0';
	if (inet_pton(af, buf, addr) != 1)
		return PP_BAD;
	return lit(c, " ");
}

/* A port: decimal 0-65535, no leading zeros, then sep. */
static enum pp_result v1_port(struct cur *c, unsigned *port, const char *sep)
{
	const unsigned char *f;
	int done;
	size_t n = field(c, &f, &done);

	*port = 0;
	for (size_t i = 0; i < n; i++) {
		if (f[i] < '0' || f[i] > '9' || (i == 1 && f[0] == '0'))
			return PP_BAD;
		*port = *port * 10 + (unsigned)(f[i] - '0');
		if (*port > 65535)
			return PP_BAD;
	}
	if (!done)
		return PP_MORE;
	return n == 0 ? PP_BAD : lit(c, sep);
}

/* UNKNOWN: the rest of the line is to be ignored (spec 2.1). */
static enum pp_result v1_unknown(struct cur *c, struct pp_info *out)
{
	out->local = 1;
	if (c->p[c->pos] == '\r')
		return lit(c, "\r\n");
	for (; c->pos + 1 < c->len; c->pos++)
		if (c->p[c->pos] == '\r' && c->p[c->pos + 1] == '\n') {
			c->pos += 2;
			return PP_OK;
		}
	return PP_MORE;
}

static enum pp_result v1_fields(struct cur *c, struct pp_info *out)
{
	unsigned char sa[16], da[16];
	unsigned sp, dp;
	const unsigned char *f;
	int done, af;
	size_t n;
	enum pp_result r;

	if ((r = lit(c, "PROXY ")) != PP_OK)
		return r;
	n = field(c, &f, &done);
	if (word_ok(f, n, done, "UNKNOWN"))
		return done ? v1_unknown(c, out) : PP_MORE;
	if (word_ok(f, n, done, "TCP4"))
		af = AF_INET;
	else if (word_ok(f, n, done, "TCP6"))
		af = AF_INET6;
	else
		return PP_BAD;
	if (!done)
		return PP_MORE;
	if ((r = lit(c, " ")) != PP_OK || (r = v1_addr(c, af, sa)) != PP_OK ||
	    (r = v1_addr(c, af, da)) != PP_OK || (r = v1_port(c, &sp, " ")) != PP_OK ||
	    (r = v1_port(c, &dp, "\r\n")) != PP_OK)
		return r;
	set_addr(&out->src, &out->srclen, af, sa, sp);
	set_addr(&out->dst, &out->dstlen, af, da, dp);
	return PP_OK;
}

static enum pp_result v1_parse(const unsigned char *buf, size_t len, size_t *consumed,
                               struct pp_info *out)
{
	struct cur c = { buf, len < V1_MAX ? len : V1_MAX, 0 };
	enum pp_result r = v1_fields(&c, out);

	/* no CRLF within 107 bytes: not a header */
	if (r == PP_MORE && len >= V1_MAX)
		return PP_BAD;
	if (r == PP_OK)
		*consumed = c.pos;
	return r;
}

/* ---- v2: signature, ver_cmd, fam, len, addresses, TLVs ---- */

#define V2_LOCAL 0x20
#define V2_PROXY 0x21

static int v2_cmd_ok(unsigned char ver_cmd)
{
	return ver_cmd == V2_LOCAL || ver_cmd == V2_PROXY;
}

/* LOCAL discards the address block whatever its family (spec 2.2), but the
 * byte must still be a defined value. PROXY needs TCP/UDP over IPv4/IPv6:
 * UNSPEC would leave us with the proxy's own address, UNIX with none. */
static int v2_fam_ok(unsigned char ver_cmd, unsigned char fam)
{
	if (ver_cmd == V2_LOCAL)
		return (fam >> 4) <= 3 && (fam & 0xf) <= 2;
	return fam == 0x11 || fam == 0x12 || fam == 0x21 || fam == 0x22;
}

static size_t v2_addr_len(unsigned char fam)
{
	return (fam >> 4) == 1 ? 12 : 36;
}

static void v2_addrs(const unsigned char *a, unsigned char fam, struct pp_info *out)
{
	if ((fam >> 4) == 1) {
		set_addr(&out->src, &out->srclen, AF_INET, a, (unsigned)(a[8] << 8 | a[9]));
		set_addr(&out->dst, &out->dstlen, AF_INET, a + 4, (unsigned)(a[10] << 8 | a[11]));
	} else {
		set_addr(&out->src, &out->srclen, AF_INET6, a, (unsigned)(a[32] << 8 | a[33]));
		set_addr(&out->dst, &out->dstlen, AF_INET6, a + 16, (unsigned)(a[34] << 8 | a[35]));
	}
}

static enum pp_result v2_parse(const unsigned char *b, size_t len, size_t *consumed,
                               struct pp_info *out)
{
	size_t plen;

	if (memcmp(b, v2_sig, len < sizeof v2_sig ? len : sizeof v2_sig) != 0)
		return PP_BAD;
	if (len > 12 && !v2_cmd_ok(b[12]))
		return PP_BAD;
	if (len > 13 && !v2_fam_ok(b[12], b[13]))
		return PP_BAD;
	if (len < V2_HDR)
		return PP_MORE;
	plen = (size_t)b[14] << 8 | b[15];
	if (plen > MOAT_PROXY_HEADER_MAX - V2_HDR)
		return PP_BAD;
	if (b[12] == V2_PROXY && plen < v2_addr_len(b[13]))
		return PP_BAD;
	if (len < V2_HDR + plen)
		return PP_MORE;
	/* TLVs after the addresses are not needed: skipped with the rest */
	if (b[12] == V2_LOCAL)
		out->local = 1;
	else
		v2_addrs(b + V2_HDR, b[13], out);
	*consumed = V2_HDR + plen;
	return PP_OK;
}

enum pp_result proxy_parse(const unsigned char *buf, size_t len, size_t *consumed,
                           struct pp_info *out)
{
	*consumed = 0;
	memset(out, 0, sizeof *out);
	if (len == 0)
		return PP_MORE;
	if (buf[0] == 'P')
		return v1_parse(buf, len, consumed, out);
	if (buf[0] == v2_sig[0])
		return v2_parse(buf, len, consumed, out);
	return PP_BAD;
}

/* The shortest headers: v1 "PROXY UNKNOWN\r\n" (15 bytes), v2 16. */
#define V1_MIN 15

size_t proxy_need(const unsigned char *buf, size_t len)
{
	size_t plen;

	if (len < V1_MIN)
		return V1_MIN - len;
	if (buf[0] == v2_sig[0]) {
		if (len < V2_HDR)
			return V2_HDR - len;
		plen = (size_t)buf[14] << 8 | buf[15];
		return len < V2_HDR + plen ? V2_HDR + plen - len : 1;
	}
	/* v1: the line ends in CRLF, and only that says where */
	return buf[len - 1] == '\r' ? 1 : 2;
}
