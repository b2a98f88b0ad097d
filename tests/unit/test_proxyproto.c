/* test_proxyproto.c - PROXY protocol v1 and v2 headers */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/lib/bounds.h"
#include "proxy/proxyproto.h"

static enum pp_result parse(const void *buf, size_t len, size_t *consumed, struct pp_info *pi)
{
	return proxy_parse(buf, len, consumed, pi);
}

/* The sockaddr holds this numeric address and port. */
static void check_addr(const struct sockaddr_storage *ss, socklen_t len, const char *addr,
                       unsigned port)
{
	unsigned char want[16];

	if (strchr(addr, ':') != NULL) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		assert_int_equal(inet_pton(AF_INET6, addr, want), 1);
		assert_int_equal(len, sizeof *s6);
		assert_int_equal(s6->sin6_family, AF_INET6);
		assert_memory_equal(&s6->sin6_addr, want, 16);
		assert_int_equal(ntohs(s6->sin6_port), port);
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		assert_int_equal(inet_pton(AF_INET, addr, want), 1);
		assert_int_equal(len, sizeof *s4);
		assert_int_equal(s4->sin_family, AF_INET);
		assert_memory_equal(&s4->sin_addr, want, 4);
		assert_int_equal(ntohs(s4->sin_port), port);
	}
}

/* Read as implicit TLS does, proxy_need bytes at a time: the reads end
 * where the header ends, never a byte into what follows (the ClientHello). */
static void check_need(const unsigned char *buf, size_t len)
{
	size_t got = 0, n;

	while (got < len) {
		n = proxy_need(buf, got);
		if (n < 1 || got + n > len)
			fail_msg("after %zu bytes of a %zu-byte header, proxy_need says %zu", got, len, n);
		got += n;
	}
}

/* Every proper prefix of a valid header only asks for more. */
static void check_prefixes(const unsigned char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		struct pp_info pi;
		size_t used = 99;

		if (parse(buf, i, &used, &pi) != PP_MORE)
			fail_msg("prefix of %zu bytes (of %zu) not PP_MORE", i, len);
		assert_int_equal(used, 0);
	}
	check_need(buf, len);
}

/* ---- v1 ---- */

#define V1_UNKNOWN_MAX "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff " \
	"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"

static const struct {
	const char *hdr;
	const char *src, *dst; /* NULL: local */
	unsigned sport, dport;
} v1_good[] = {
	{ "PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\n", "192.0.2.1", "198.51.100.2", 56324, 25 },
	{ "PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", "0.0.0.0", "255.255.255.255", 0, 65535 },
	{ "PROXY TCP4 10.0.0.1 10.0.0.2 1 10\r\n", "10.0.0.1", "10.0.0.2", 1, 10 },
	{ "PROXY TCP6 2001:db8::1 2001:DB8::2 1 65535\r\n", "2001:db8::1", "2001:db8::2", 1, 65535 },
	{ "PROXY TCP6 ::ffff:192.0.2.1 :: 4242 25\r\n", "::ffff:192.0.2.1", "::", 4242, 25 },
	{ "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	  "65535 65535\r\n", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, 65535 },
	{ "PROXY UNKNOWN\r\n", NULL, NULL, 0, 0 },
	{ "PROXY UNKNOWN 192.0.2.1 whatever\r\n", NULL, NULL, 0, 0 },
	{ V1_UNKNOWN_MAX, NULL, NULL, 0, 0 },
};

static void test_v1_good(void **state)
{
	for (size_t i = 0; i < sizeof v1_good / sizeof v1_good[0]; i++) {
		unsigned char buf[256];
		size_t len = strlen(v1_good[i].hdr), used;
		struct pp_info pi;

		/* the client's first command may already be in the buffer */
		assert_true(len <= 107);
		snprintf((char *)buf, sizeof buf, "%sEHLO x\r\n", v1_good[i].hdr);
		assert_int_equal(parse(buf, len + 8, &used, &pi), PP_OK);
		assert_int_equal(used, len);
		assert_int_equal(parse(buf, len, &used, &pi), PP_OK);
		assert_int_equal(used, len);
		if (v1_good[i].src == NULL) {
			assert_int_equal(pi.local, 1);
			assert_int_equal(pi.srclen, 0);
			assert_int_equal(pi.dstlen, 0);
		} else {
			assert_int_equal(pi.local, 0);
			check_addr(&pi.src, pi.srclen, v1_good[i].src, v1_good[i].sport);
			check_addr(&pi.dst, pi.dstlen, v1_good[i].dst, v1_good[i].dport);
		}
		check_prefixes(buf, len);
	}
}

/* A byte changed anywhere in a TCP header is refused as soon as it is seen. */
static void test_v1_corrupt(void **state)
{
	static const unsigned char bad[] = { 'x', '\0', '\n', 0xff };

	for (size_t i = 0; i < sizeof v1_good / sizeof v1_good[0]; i++) {
		size_t len = strlen(v1_good[i].hdr), used;
		unsigned char buf[128];
		struct pp_info pi;

		if (v1_good[i].src == NULL) /* UNKNOWN ignores what follows */
			continue;
		for (size_t at = 0; at < len; at++)
			for (size_t b = 0; b < sizeof bad; b++) {
				memcpy(buf, v1_good[i].hdr, len);
				if (buf[at] == bad[b])
					continue;
				buf[at] = bad[b];
				if (parse(buf, at + 1, &used, &pi) != PP_BAD ||
				    parse(buf, len, &used, &pi) != PP_BAD)
					fail_msg("row %zu, byte %zu = 0x%02x not PP_BAD", i, at, bad[b]);
			}
	}
}

static void test_v1_bad(void **state)
{
	static const char *rows[] = {
		"PROXY  TCP4 192.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY TCP4  192.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY TCP4 192.0.2.1  198.51.100.2 1 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2  1 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1  2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 2 \r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 2 3\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2\r\n",
		"PROXY TCP4 192.0.2.1\r\n",
		"PROXY TCP4\r\n",
		"PROXY TCP4 \r\n",
		"PROXY \r\n",
		"PROXY\r\n",
		"proxy TCP4 192.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY tcp4 192.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY TCP5 192.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY TCP 192.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY TCP44 192.0.2.1 198.51.100.2 1 2\r\n",
		/* addresses: numeric, of the named family */
		"PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n",
		"PROXY TCP4 192.0.2.1 ::1 1 2\r\n",
		"PROXY TCP6 192.0.2.1 ::1 1 2\r\n",
		"PROXY TCP6 ::1 192.0.2.1 1 2\r\n",
		"PROXY TCP4 192.0.2.256 198.51.100.2 1 2\r\n",
		"PROXY TCP4 192.0.2.01 198.51.100.2 1 2\r\n",
		"PROXY TCP4 192.0.2 198.51.100.2 1 2\r\n",
		"PROXY TCP4 192.0.2.1. 198.51.100.2 1 2\r\n",
		"PROXY TCP4 .192.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY TCP4 192..0.2 198.51.100.2 1 2\r\n",
		"PROXY TCP4 192.0.2.1.5 198.51.100.2 1 2\r\n",
		"PROXY TCP4 localhost 198.51.100.2 1 2\r\n",
		"PROXY TCP6 1::2::3 ::1 1 2\r\n",
		"PROXY TCP6 12345::1 ::1 1 2\r\n",
		"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
		"PROXY TCP6 [::1] ::1 1 2\r\n",
		"PROXY TCP6 1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:1 ::1 1 2\r\n",
		/* ports: decimal 0-65535, no leading zeros */
		"PROXY TCP4 192.0.2.1 198.51.100.2 65536 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 99999\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 01 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 00\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 -1 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 +1 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 0x19 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 2x\r\n",
		/* UNKNOWN */
		"PROXY UNKNOWNX\r\n",
		"PROXY UNKNOWN\rX",
		"PROXY UNKNOWN\r\r\n",
		"PROXY UNKNOW\r\n",
		/* not a PROXY header at all: refused on the first byte that says so */
		"EHLO example.com\r\n",
		"GET / HTTP/1.1\r\n",
		"\x16\x03\x01\x02\x00",
		"Q",
		"PROX\r",
		"PROXYTCP4",
		"P\r\n",
		" PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\n",
	};

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct pp_info pi;
		size_t used = 99;

		if (parse(rows[i], strlen(rows[i]), &used, &pi) != PP_BAD)
			fail_msg("row %zu \"%s\" not PP_BAD", i, rows[i]);
		assert_int_equal(used, 0);
	}
}

/* Refused before the CRLF: no prefix of a good header starts this way. */
static void test_v1_early(void **state)
{
	static const char *rows[] = {
		"PROXY X",
		"PROXY TCP46",
		"PROXY UNKNOWNX",
		"PROXY TCP4 01",
		"PROXY TCP4 192.0.2.256",
		"PROXY TCP4 192..",
		"PROXY TCP4 .",
		"PROXY TCP4 192.0.2.1.",
		"PROXY TCP4 1921",
		"PROXY TCP4 192.0.2.1  ",
		"PROXY TCP6 ::g",
		"PROXY TCP6 2001:db8::1%",
		"PROXY TCP6 1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:1", /* 47 > any IPv6 */
		"PROXY TCP4 192.0.2.1 198.51.100.2 01",
		"PROXY TCP4 192.0.2.1 198.51.100.2 65536",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\r",
	};

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct pp_info pi;
		size_t used;

		if (parse(rows[i], strlen(rows[i]), &used, &pi) != PP_BAD)
			fail_msg("row %zu \"%s\" not PP_BAD", i, rows[i]);
	}
}

static void test_v1_more(void **state)
{
	static const char *rows[] = {
		"P",
		"PROXY",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 2",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r",
		"PROXY TCP4 192.0.2.",
		"PROXY TCP4 192.0.2.25",
		"PROXY TCP6 2001:db8::",
		"PROXY TCP4 192.0.2.1 198.51.100.2 6553",
		"PROXY UNKNOWN",
		"PROXY UNKNOWN\r",
		"PROXY UNKNOWN junk without an end yet",
	};

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct pp_info pi;
		size_t used;

		if (parse(rows[i], strlen(rows[i]), &used, &pi) != PP_MORE)
			fail_msg("row %zu \"%s\" not PP_MORE", i, rows[i]);
	}
}

/* 107 bytes with the CRLF is the most a v1 header may take. */
static void test_v1_length(void **state)
{
	char buf[256];
	struct pp_info pi;
	size_t used, n;

	assert_int_equal(strlen(V1_UNKNOWN_MAX), 107);
	/* one byte more */
	n = (size_t)snprintf(buf, sizeof buf, "PROXY UNKNOWN %092d\r\n", 0);
	assert_int_equal(n, 108);
	assert_int_equal(parse(buf, n, &used, &pi), PP_BAD);
	/* no CRLF by byte 107: refused, however much more comes */
	memset(buf, 'a', sizeof buf);
	memcpy(buf, "PROXY UNKNOWN ", 14);
	assert_int_equal(parse(buf, 106, &used, &pi), PP_MORE);
	assert_int_equal(parse(buf, 107, &used, &pi), PP_BAD);
	assert_int_equal(parse(buf, sizeof buf, &used, &pi), PP_BAD);
	/* the CRLF ends at byte 107 exactly */
	memcpy(buf + 105, "\r\n", 2);
	assert_int_equal(parse(buf, sizeof buf, &used, &pi), PP_OK);
	assert_int_equal(used, 107);
	/* CR as byte 107, LF beyond */
	memcpy(buf + 105, "a\r\n", 3);
	assert_int_equal(parse(buf, sizeof buf, &used, &pi), PP_BAD);
}

/* ---- v2 ---- */

struct v2buf {
	unsigned char b[1024];
	size_t len;
};

static const unsigned char sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
};
/* 192.0.2.1:56324 -> 198.51.100.2:25 */
static const unsigned char inet4[12] = {
	192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x00, 0x19,
};
/* [2001:db8::1]:1 -> [2001:db8::2]:65535 */
static const unsigned char inet6[36] = {
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
	0x00, 0x01, 0xff, 0xff,
};
static const unsigned char tlvs[] = {
	0x01, 0x00, 0x02, 'h', '2',          /* PP2_TYPE_ALPN */
	0x04, 0x00, 0x03, 0, 0, 0,           /* PP2_TYPE_NOOP */
	0x20, 0x00, 0x05, 0x07, 0, 0, 0, 0,  /* PP2_TYPE_SSL, no sub-TLVs */
};

static void v2_add(struct v2buf *v, const void *p, size_t n)
{
	assert_true(v->len + n <= sizeof v->b);
	memcpy(v->b + v->len, p, n);
	v->len += n;
	v->b[14] = (unsigned char)((v->len - 16) >> 8);
	v->b[15] = (unsigned char)(v->len - 16);
}

static void v2_start(struct v2buf *v, unsigned char ver_cmd, unsigned char fam)
{
	memcpy(v->b, sig, 12);
	v->b[12] = ver_cmd;
	v->b[13] = fam;
	v->b[14] = v->b[15] = 0;
	v->len = 16;
}

static void test_v2_good(void **state)
{
	static const struct {
		unsigned char ver_cmd, fam;
		const unsigned char *addr;
		size_t alen;
		int with_tlvs;
		const char *src, *dst; /* NULL: local */
	} rows[] = {
		{ 0x21, 0x11, inet4, 12, 0, "192.0.2.1", "198.51.100.2" },
		{ 0x21, 0x12, inet4, 12, 0, "192.0.2.1", "198.51.100.2" },
		{ 0x21, 0x11, inet4, 12, 1, "192.0.2.1", "198.51.100.2" },
		{ 0x21, 0x21, inet6, 36, 0, "2001:db8::1", "2001:db8::2" },
		{ 0x21, 0x22, inet6, 36, 1, "2001:db8::1", "2001:db8::2" },
		/* LOCAL: health checks; the block is discarded whatever it says */
		{ 0x20, 0x00, NULL, 0, 0, NULL, NULL },
		{ 0x20, 0x00, NULL, 0, 1, NULL, NULL },
		{ 0x20, 0x11, inet4, 12, 0, NULL, NULL },
		{ 0x20, 0x21, inet6, 36, 1, NULL, NULL },
		{ 0x20, 0x31, inet6, 36, 0, NULL, NULL },
	};

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct v2buf v;
		struct pp_info pi;
		size_t used, hlen;

		v2_start(&v, rows[i].ver_cmd, rows[i].fam);
		if (rows[i].addr)
			v2_add(&v, rows[i].addr, rows[i].alen);
		if (rows[i].with_tlvs)
			v2_add(&v, tlvs, sizeof tlvs);
		hlen = v.len;
		memcpy(v.b + v.len, "EHLO x\r\n", 8); /* not part of the header */
		if (parse(v.b, hlen + 8, &used, &pi) != PP_OK)
			fail_msg("row %zu not PP_OK", i);
		assert_int_equal(used, hlen);
		if (rows[i].src == NULL) {
			assert_int_equal(pi.local, 1);
			assert_int_equal(pi.srclen, 0);
		} else {
			unsigned sport = rows[i].alen == 12 ? 56324 : 1;
			unsigned dport = rows[i].alen == 12 ? 25 : 65535;
			assert_int_equal(pi.local, 0);
			check_addr(&pi.src, pi.srclen, rows[i].src, sport);
			check_addr(&pi.dst, pi.dstlen, rows[i].dst, dport);
		}
		check_prefixes(v.b, hlen);
	}
}

static void test_v2_max_length(void **state)
{
	static const unsigned char pad[MOAT_PROXY_HEADER_MAX] = { 0 };
	unsigned char noop[3] = { 0x04, 0, 0 };
	size_t room = MOAT_PROXY_HEADER_MAX - 16 - sizeof inet4 - sizeof noop;
	struct v2buf v;
	struct pp_info pi;
	size_t used;

	/* the largest header accepted: 16 + 520 */
	noop[1] = (unsigned char)(room >> 8);
	noop[2] = (unsigned char)room;
	v2_start(&v, 0x21, 0x11);
	v2_add(&v, inet4, sizeof inet4);
	v2_add(&v, noop, sizeof noop);
	v2_add(&v, pad, room);
	assert_int_equal(v.len, MOAT_PROXY_HEADER_MAX);
	assert_int_equal(parse(v.b, v.len, &used, &pi), PP_OK);
	assert_int_equal(used, MOAT_PROXY_HEADER_MAX);
	check_prefixes(v.b, v.len);
	/* one byte more is refused on the length field, before the bytes arrive */
	v2_add(&v, pad, 1);
	assert_int_equal(parse(v.b, 16, &used, &pi), PP_BAD);
	assert_int_equal(parse(v.b, v.len, &used, &pi), PP_BAD);
	v.b[14] = v.b[15] = 0xff;
	assert_int_equal(parse(v.b, 16, &used, &pi), PP_BAD);
	/* LOCAL too */
	v.b[12] = 0x20;
	assert_int_equal(parse(v.b, 16, &used, &pi), PP_BAD);
}

static void test_v2_bad(void **state)
{
	static const struct {
		unsigned char ver_cmd, fam;
		const unsigned char *addr;
		size_t alen;
		size_t seen; /* refused once this many bytes are in */
	} rows[] = {
		{ 0x21, 0x00, NULL, 0, 14 },         /* PROXY over UNSPEC */
		{ 0x21, 0x31, inet6, 36, 14 },       /* AF_UNIX stream */
		{ 0x21, 0x32, inet6, 36, 14 },       /* AF_UNIX dgram */
		{ 0x21, 0x10, inet4, 12, 14 },       /* INET, no transport */
		{ 0x21, 0x13, inet4, 12, 14 },
		{ 0x21, 0x41, inet4, 12, 14 },
		{ 0x21, 0x01, inet4, 12, 14 },
		{ 0x20, 0x41, NULL, 0, 14 },         /* LOCAL: undefined family byte */
		{ 0x20, 0x03, NULL, 0, 14 },
		{ 0x11, 0x11, inet4, 12, 13 },       /* version 1 */
		{ 0x31, 0x11, inet4, 12, 13 },       /* version 3 */
		{ 0x01, 0x11, inet4, 12, 13 },
		{ 0x22, 0x11, inet4, 12, 13 },       /* command 2 */
		{ 0x2f, 0x11, inet4, 12, 13 },
		{ 0x21, 0x11, inet4, 11, 16 },       /* addresses cut short */
		{ 0x21, 0x12, NULL, 0, 16 },
		{ 0x21, 0x21, inet6, 35, 16 },
		{ 0x21, 0x21, inet4, 12, 16 },       /* IPv4 block in an IPv6 header */
	};

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct v2buf v;
		struct pp_info pi;
		size_t used = 99;

		v2_start(&v, rows[i].ver_cmd, rows[i].fam);
		if (rows[i].addr)
			v2_add(&v, rows[i].addr, rows[i].alen);
		if (parse(v.b, v.len, &used, &pi) != PP_BAD ||
		    parse(v.b, rows[i].seen, &used, &pi) != PP_BAD)
			fail_msg("row %zu not PP_BAD", i);
		assert_int_equal(used, 0);
		if (rows[i].seen > 12 && parse(v.b, rows[i].seen - 1, &used, &pi) != PP_MORE)
			fail_msg("row %zu refused too early", i);
	}
}

/* Each signature byte is checked as it comes. */
static void test_v2_signature(void **state)
{
	struct v2buf v;
	struct pp_info pi;
	size_t used;

	v2_start(&v, 0x21, 0x11);
	v2_add(&v, inet4, sizeof inet4);
	for (size_t at = 0; at < 12; at++) {
		unsigned char keep = v.b[at];

		v.b[at] ^= 0x20;
		if (parse(v.b, at + 1, &used, &pi) != PP_BAD || parse(v.b, v.len, &used, &pi) != PP_BAD)
			fail_msg("signature byte %zu not checked", at);
		v.b[at] = keep;
	}
	assert_int_equal(parse(v.b, v.len, &used, &pi), PP_OK);
}

static void test_empty(void **state)
{
	struct pp_info pi;
	size_t used = 99;

	assert_int_equal(parse("", 0, &used, &pi), PP_MORE);
	assert_int_equal(used, 0);
	assert_int_equal(parse("\0", 1, &used, &pi), PP_BAD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_v1_good),
		cmocka_unit_test(test_v1_corrupt),
		cmocka_unit_test(test_v1_bad),
		cmocka_unit_test(test_v1_early),
		cmocka_unit_test(test_v1_more),
		cmocka_unit_test(test_v1_length),
		cmocka_unit_test(test_v2_good),
		cmocka_unit_test(test_v2_max_length),
		cmocka_unit_test(test_v2_bad),
		cmocka_unit_test(test_v2_signature),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
