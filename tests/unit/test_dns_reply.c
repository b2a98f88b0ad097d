/* test_dns_reply.c - the pure parts of the resolver: names (dns_normalise),
 * the cache key hash (SipHash test vectors), reply parsing and classification
 * (dns_reply.c, hostile packets included), and the cache (dns_cache.c: TTLs,
 * LRU, the byte budget). No sockets, no loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <ares.h>

#include "checks/dns.h"
#include "proxy/lib/siphash.h"
#include "checks/dns_cache.h"
#include "checks/dns_reply.h"

#define DNSFIX_PACKETS_ONLY
#include "tests/unit/dnsfix.h"

/* ---- pure: names, hashing, reply parsing, classification ---- */

static void test_normalise(void **state)
{
	static const struct {
		const char *in, *want;  /* want NULL: rejected */
	} rows[] = {
		{ "Example.COM", "example.com" },
		{ "example.com.", "example.com" },
		{ "MiXeD.Example.", "mixed.example" },
		{ "_dmarc.Example.org", "_dmarc.example.org" },
		{ "\xc3\x89T\xc3\xa9.test", "\xc3\x89t\xc3\xa9.test" },  /* only ASCII folds */
		{ "a..", "a." },  /* one dot only; c-ares rejects the rest */
		{ "", NULL },
		{ ".", NULL },
	};
	char out[DNS_NAME_MAX + 1], name[DNS_NAME_MAX + 3];

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		int rc = dns_normalise(rows[i].in, out, sizeof out);

		if (rows[i].want == NULL) {
			assert_int_equal(rc, -1);
		} else {
			assert_int_equal(rc, 0);
			assert_string_equal(out, rows[i].want);
		}
	}
	memset(name, 'a', DNS_NAME_MAX);
	name[DNS_NAME_MAX] = '.';
	name[DNS_NAME_MAX + 1] = '\0';
	assert_int_equal(dns_normalise(name, out, sizeof out), 0);   /* 253 + dot */
	name[DNS_NAME_MAX] = 'a';
	assert_int_equal(dns_normalise(name, out, sizeof out), -1);  /* 254 */
	assert_int_equal(dns_normalise("example.com", out, 11), -1); /* no room for NUL */
	assert_int_equal(dns_normalise(NULL, out, sizeof out), -1);
}

static void test_siphash_vectors(void **state)
{
	uint8_t key[16], msg[64];

	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	/* from the SipHash paper's reference vectors.h */
	assert_true(siphash24(key, msg, 0) == 0x726fdb47dd0e0e31ULL);
	assert_true(siphash24(key, msg, 15) == 0xa129ca6149be45e5ULL);
	assert_true(siphash24(key, msg, 8) == 0x93f5f5799a932462ULL);
	assert_true(dns_key_hash(key, "a.test", 1) != dns_key_hash(key, "a.test", 15));
}

static void test_parse_answer(void **state)
{
	struct pkt p;
	struct dns_reply rp;

	pkt_begin(&p, 1, F_QR | F_RA, "a.test", ns_t_a);
	add_a(&p, "192.0.2.1", 300);
	add_a(&p, "192.0.2.2", 120);
	assert_int_equal(dns_reply_parse(p.b, (int)p.n, ns_t_a, &rp), 0);
	assert_int_equal(rp.rcode, 0);
	assert_int_equal(rp.ancount, 2);
	assert_int_equal(rp.nmatch, 2);
	assert_int_equal(rp.an_ttl, 120);
	assert_false(rp.has_soa);
	assert_int_equal(dns_reply_parse(p.b, (int)p.n, ns_t_mx, &rp), 0);
	assert_int_equal(rp.nmatch, 0);
	/* every shorter prefix is malformed, never read past */
	for (size_t n = 0; n < p.n; n++) {
		unsigned char *cut = malloc(n ? n : 1);

		memcpy(cut, p.b, n);
		assert_int_equal(dns_reply_parse(cut, (int)n, ns_t_a, &rp), -1);
		free(cut);
	}
	assert_int_equal(dns_reply_parse(NULL, 0, ns_t_a, &rp), -1);
}

static void test_parse_soa(void **state)
{
	struct pkt p, r = { .n = 0 };
	struct dns_reply rp;

	pkt_begin(&p, 1, F_QR | ns_r_nxdomain, "nx.test", ns_t_a);
	add_soa(&p, 900, 30);
	assert_int_equal(dns_reply_parse(p.b, (int)p.n, ns_t_a, &rp), 0);
	assert_int_equal(rp.rcode, ns_r_nxdomain);
	assert_true(rp.has_soa);
	assert_int_equal(rp.soa_ttl, 30);       /* MINIMUM below the RR TTL */
	pkt_begin(&p, 1, F_QR, "nodata.test", ns_t_a);
	add_soa(&p, 20, 3600);
	assert_int_equal(dns_reply_parse(p.b, (int)p.n, ns_t_a, &rp), 0);
	assert_int_equal(rp.soa_ttl, 20);       /* RR TTL below MINIMUM */
	/* compressed MNAME and RNAME, as real servers send them */
	put16(&r, 0xC00C);
	put16(&r, 0xC00C);
	for (int i = 0; i < 4; i++)
		put32(&r, 7);
	put32(&r, 45);
	pkt_begin(&p, 1, F_QR | ns_r_nxdomain, "nx.test", ns_t_a);
	add_rr(&p, SEC_NS, NULL, ns_t_soa, 600, r.b, r.n);
	assert_int_equal(dns_reply_parse(p.b, (int)p.n, ns_t_a, &rp), 0);
	assert_int_equal(rp.soa_ttl, 45);
	/* an SOA rdata too short for its counters */
	pkt_begin(&p, 1, F_QR | ns_r_nxdomain, "nx.test", ns_t_a);
	add_rr(&p, SEC_NS, NULL, ns_t_soa, 600, r.b, r.n - 1);
	assert_int_equal(dns_reply_parse(p.b, (int)p.n, ns_t_a, &rp), -1);
}

static void test_parse_hostile(void **state)
{
	struct pkt p;
	struct dns_reply rp;

	/* RFC 2181 section 8: a TTL with the top bit set means zero */
	pkt_begin(&p, 1, F_QR, "a.test", ns_t_a);
	add_a(&p, "192.0.2.1", 0x80000001u);
	assert_int_equal(dns_reply_parse(p.b, (int)p.n, ns_t_a, &rp), 0);
	assert_int_equal(rp.an_ttl, 0);
	/* rdlength past the end */
	p.b[p.n - 5] = 0x10;
	assert_int_equal(dns_reply_parse(p.b, (int)p.n, ns_t_a, &rp), -1);
	/* 0x40 extended label type */
	pkt_begin(&p, 1, F_QR, "a.test", ns_t_a);
	p.b[12] = 0x41;
	assert_int_equal(dns_reply_parse(p.b, (int)p.n, ns_t_a, &rp), -1);
	/* ancount promises more than there is */
	pkt_begin(&p, 1, F_QR, "a.test", ns_t_a);
	p.b[SEC_AN + 1] = 3;
	assert_int_equal(dns_reply_parse(p.b, (int)p.n, ns_t_a, &rp), -1);
	/* negative length */
	assert_int_equal(dns_reply_parse(p.b, -5, ns_t_a, &rp), -1);
}

static void test_classify(void **state)
{
	struct pkt ok, nx, nod, cname, nosoa, ref, zero, far, soamax;
	struct pkt r = { .n = 0 };
	uint32_t ttl;

	pkt_begin(&ok, 1, F_QR, "a.test", ns_t_a);
	add_a(&ok, "192.0.2.1", 300);
	add_a(&ok, "192.0.2.2", 120);
	pkt_begin(&nx, 1, F_QR | ns_r_nxdomain, "nx.test", ns_t_a);
	add_soa(&nx, 900, 30);
	pkt_begin(&nod, 1, F_QR, "nodata.test", ns_t_a);
	add_soa(&nod, 20, 3600);
	pkt_begin(&cname, 1, F_QR, "cname.test", ns_t_a);
	put_name(&r, "gone.test");
	add_rr(&cname, SEC_AN, NULL, ns_t_cname, 50, r.b, r.n);
	add_soa(&cname, 100, 100);
	pkt_begin(&nosoa, 1, F_QR | ns_r_nxdomain, "nosoa.test", ns_t_a);
	pkt_begin(&ref, 1, F_QR, "referral.test", ns_t_a);
	add_rr(&ref, SEC_NS, NULL, ns_t_ns, 3600, r.b, r.n);
	pkt_begin(&zero, 1, F_QR, "zero.test", ns_t_a);
	add_a(&zero, "192.0.2.1", 0);
	pkt_begin(&far, 1, F_QR, "long.test", ns_t_a);
	add_a(&far, "192.0.2.1", 864000);
	pkt_begin(&soamax, 1, F_QR | ns_r_nxdomain, "nx.test", ns_t_a);
	add_soa(&soamax, 86400, 86400);

	static const struct {
		int ares;
		int pkt;                   /* index into pk below, -1: no reply */
		enum dns_status want;
		uint32_t ttl;
	} rows[] = {
		{ ARES_SUCCESS, 0, DNS_OK, 120 },                  /* lowest answer TTL */
		{ ARES_ENOTFOUND, 1, DNS_NXDOMAIN, 30 },           /* SOA MINIMUM */
		{ ARES_ENODATA, 2, DNS_NODATA, 20 },               /* SOA TTL */
		{ ARES_SUCCESS, 3, DNS_NODATA, 50 },               /* CNAME to nothing */
		{ ARES_ENOTFOUND, 4, DNS_NXDOMAIN, DNS_NEG_TTL_DEFAULT },
		{ ARES_ENODATA, 5, DNS_TEMPFAIL, DNS_TEMPFAIL_TTL }, /* a referral */
		{ ARES_SUCCESS, 6, DNS_OK, DNS_TTL_MIN },
		{ ARES_SUCCESS, 7, DNS_OK, DNS_TTL_MAX },
		{ ARES_ENOTFOUND, 8, DNS_NXDOMAIN, DNS_NEG_TTL_MAX },
		{ ARES_EBADNAME, -1, DNS_NXDOMAIN, DNS_NEG_TTL_DEFAULT },
		{ ARES_ENODATA, -1, DNS_NODATA, DNS_NEG_TTL_DEFAULT },
		{ ARES_ESERVFAIL, -1, DNS_TEMPFAIL, DNS_TEMPFAIL_TTL },
		{ ARES_ETIMEOUT, -1, DNS_TEMPFAIL, DNS_TEMPFAIL_TTL },
		{ ARES_ECONNREFUSED, -1, DNS_TEMPFAIL, DNS_TEMPFAIL_TTL },
		{ ARES_EREFUSED, -1, DNS_TEMPFAIL, DNS_TEMPFAIL_TTL },
		{ ARES_EFORMERR, -1, DNS_TEMPFAIL, DNS_TEMPFAIL_TTL },
		{ ARES_EBADRESP, -1, DNS_TEMPFAIL, DNS_TEMPFAIL_TTL },
		{ ARES_ENOMEM, -1, DNS_TEMPFAIL, DNS_TEMPFAIL_TTL },
		{ ARES_SUCCESS, -1, DNS_TEMPFAIL, DNS_TEMPFAIL_TTL }, /* success we cannot read */
	};
	const struct pkt *pk[] = { &ok, &nx, &nod, &cname, &nosoa, &ref, &zero, &far, &soamax };

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		const struct pkt *p = rows[i].pkt >= 0 ? pk[rows[i].pkt] : NULL;

		assert_int_equal(dns_classify(rows[i].ares, p ? p->b : NULL, p ? (int)p->n : 0,
		                              ns_t_a, &ttl), rows[i].want);
		assert_int_equal(ttl, rows[i].ttl);
	}
	assert_false(dns_cacheable(ARES_EDESTRUCTION));
	assert_false(dns_cacheable(ARES_ENOMEM));
	assert_true(dns_cacheable(ARES_ETIMEOUT));
	assert_true(dns_cacheable(ARES_SUCCESS));
}

/* ---- pure: the cache ---- */

static void test_cache_ttl(void **state)
{
	struct dns_cache *c = dns_cache_new(10, 1 << 20);
	const unsigned char raw[] = { 1, 2, 3 };
	const struct dns_entry *e;

	assert_int_equal(dns_cache_put(c, "a.test", ns_t_a, DNS_OK, raw, 3, 30, 1000), 0);
	assert_int_equal(dns_cache_put(c, "a.test", ns_t_mx, DNS_NODATA, NULL, 0, 60, 1000), 0);
	e = dns_cache_get(c, "a.test", ns_t_a, 30999);  /* last millisecond */
	assert_non_null(e);
	assert_int_equal(e->status, DNS_OK);
	assert_int_equal(e->alen, 3);
	assert_memory_equal(e->abuf, raw, 3);
	assert_null(dns_cache_get(c, "a.test", ns_t_a, 31000));  /* expired, and dropped */
	assert_int_equal(dns_cache_count(c), 1);
	e = dns_cache_get(c, "a.test", ns_t_mx, 31000);  /* the other type lives on */
	assert_non_null(e);
	assert_null(e->abuf);
	assert_null(dns_cache_get(c, "b.test", ns_t_a, 1000));
	/* a new answer replaces the old one */
	assert_int_equal(dns_cache_put(c, "a.test", ns_t_mx, DNS_OK, raw, 2, 5, 40000), 0);
	e = dns_cache_get(c, "a.test", ns_t_mx, 40000);
	assert_int_equal(e->status, DNS_OK);
	assert_int_equal(e->alen, 2);
	assert_int_equal(dns_cache_count(c), 1);
	assert_int_equal(dns_cache_evictions(c), 0);
	dns_cache_free(c);
}

static void test_cache_lru(void **state)
{
	struct dns_cache *c = dns_cache_new(3, 1 << 20);
	const char *names[] = { "a.test", "b.test", "c.test", "d.test", "e.test" };

	for (int i = 0; i < 3; i++)
		assert_int_equal(dns_cache_put(c, names[i], ns_t_a, DNS_OK, NULL, 0, 60, 0), 0);
	assert_non_null(dns_cache_get(c, "a.test", ns_t_a, 1));  /* a is now the freshest */
	assert_int_equal(dns_cache_put(c, "d.test", ns_t_a, DNS_OK, NULL, 0, 60, 2), 0);
	assert_null(dns_cache_get(c, "b.test", ns_t_a, 3));      /* b was the oldest */
	assert_non_null(dns_cache_get(c, "a.test", ns_t_a, 3));
	assert_non_null(dns_cache_get(c, "c.test", ns_t_a, 3));
	assert_non_null(dns_cache_get(c, "d.test", ns_t_a, 3));
	assert_int_equal(dns_cache_count(c), 3);
	assert_int_equal(dns_cache_evictions(c), 1);
	/* thousands of names through a 3-entry cache stay 3 entries */
	for (int i = 0; i < 5000; i++) {
		char n[32];

		snprintf(n, sizeof n, "n%d.test", i);
		assert_int_equal(dns_cache_put(c, n, ns_t_txt, DNS_OK, NULL, 0, 60, 4), 0);
	}
	assert_int_equal(dns_cache_count(c), 3);
	assert_int_equal(dns_cache_evictions(c), 5001);
	dns_cache_free(c);
	/* no room at all */
	c = dns_cache_new(0, 1 << 20);
	assert_int_equal(dns_cache_put(c, "a.test", ns_t_a, DNS_OK, NULL, 0, 60, 0), -1);
	assert_null(dns_cache_get(c, "a.test", ns_t_a, 0));
	dns_cache_free(c);
}

static void test_cache_bytes(void **state)
{
	static unsigned char big[14000];
	struct dns_cache *c = dns_cache_new(1000, 10000);

	/* a budget of 10000 bytes holds two 4000-byte replies, not three */
	assert_int_equal(dns_cache_put(c, "a.test", ns_t_txt, DNS_OK, big, 4000, 60, 0), 0);
	assert_int_equal(dns_cache_put(c, "b.test", ns_t_txt, DNS_OK, big, 4000, 60, 0), 0);
	assert_int_equal(dns_cache_put(c, "c.test", ns_t_txt, DNS_OK, big, 4000, 60, 0), 0);
	assert_int_equal(dns_cache_count(c), 2);
	assert_true(dns_cache_bytes(c) <= 10000);
	assert_null(dns_cache_get(c, "a.test", ns_t_txt, 1));
	/* larger than the whole budget: refused, nothing evicted for it */
	assert_int_equal(dns_cache_put(c, "d.test", ns_t_txt, DNS_OK, big, 4000 + 10000, 60, 0), -1);
	assert_int_equal(dns_cache_count(c), 2);
	dns_cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalise),
		cmocka_unit_test(test_siphash_vectors),
		cmocka_unit_test(test_parse_answer),
		cmocka_unit_test(test_parse_soa),
		cmocka_unit_test(test_parse_hostile),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_cache_ttl),
		cmocka_unit_test(test_cache_lru),
		cmocka_unit_test(test_cache_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
