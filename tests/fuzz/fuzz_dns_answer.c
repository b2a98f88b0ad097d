/* fuzz_dns_answer.c - libFuzzer harness for dns_reply.c (header, TTLs, the
 * SOA of negative answers), the cache copy of a reply, and the c-ares 1.18
 * parsers the checks run on the raw replies dns.c hands them.
 * The input is a DNS reply as it would come off the wire. Whatever it holds,
 * nothing reads outside it and every TTL moat derives stays in its bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/nameser.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <ares.h>

#include "checks/dns.h"
#include "checks/dns_cache.h"
#include "checks/dns_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int types[] = { ns_t_a, ns_t_aaaa, ns_t_mx, ns_t_txt, ns_t_ptr, ns_t_any };
static const int statuses[] = { ARES_SUCCESS, ARES_ENODATA, ARES_ENOTFOUND, ARES_EBADNAME,
                                ARES_ESERVFAIL, ARES_ETIMEOUT };

static void check_ttl(enum dns_status st, uint32_t ttl)
{
	uint32_t hi = st == DNS_OK ? DNS_TTL_MAX : st == DNS_TEMPFAIL ? DNS_TEMPFAIL_TTL
	                                                              : DNS_NEG_TTL_MAX;

	if (ttl < DNS_TTL_MIN || ttl > hi)
		abort();
}

static void ours(const unsigned char *buf, int len)
{
	struct dns_reply rp;
	uint32_t ttl;

	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		/* RFC 2181: no TTL above 2^31 - 1 comes out */
		if (dns_reply_parse(buf, len, types[i], &rp) == 0 &&
		    (rp.nmatch > rp.ancount || rp.ns_ns > rp.nscount ||
		     (rp.an_ttl == UINT32_MAX) != (rp.ancount == 0) ||
		     (rp.ancount && rp.an_ttl > 0x7fffffffu) ||
		     (rp.has_soa && rp.soa_ttl > 0x7fffffffu)))
			abort();
		for (size_t j = 0; j < sizeof statuses / sizeof statuses[0]; j++)
			check_ttl(dns_classify(statuses[j], buf, len, types[i], &ttl), ttl);
	}
}

static void theirs(const unsigned char *buf, int len)
{
	struct hostent *host = NULL;
	struct ares_addrttl a[8];
	struct ares_addr6ttl a6[8];
	struct ares_mx_reply *mx = NULL;
	struct ares_txt_ext *txt = NULL;
	struct ares_soa_reply *soa = NULL;
	struct in_addr addr = { 0 };
	int na = 8, na6 = 8;
	size_t total = 0;

	if (ares_parse_a_reply(buf, len, &host, a, &na) == ARES_SUCCESS && (na < 0 || na > 8))
		abort();
	if (host)
		ares_free_hostent(host);
	host = NULL;
	if (ares_parse_aaaa_reply(buf, len, NULL, a6, &na6) == ARES_SUCCESS && (na6 < 0 || na6 > 8))
		abort();
	if (ares_parse_ptr_reply(buf, len, &addr, sizeof addr, AF_INET, &host) == ARES_SUCCESS && host)
		ares_free_hostent(host);
	if (ares_parse_mx_reply(buf, len, &mx) == ARES_SUCCESS)
		for (struct ares_mx_reply *m = mx; m; m = m->next)
			if (strlen(m->host) > 1024)  /* escaped, still bounded */
				abort();
	ares_free_data(mx);
	/* the checks join strings up to the next record_start: lengths must
	 * add up within the reply */
	if (ares_parse_txt_reply_ext(buf, len, &txt) == ARES_SUCCESS)
		for (struct ares_txt_ext *t = txt; t; t = t->next)
			if ((total += t->length) > (size_t)len)
				abort();
	ares_free_data(txt);
	if (ares_parse_soa_reply(buf, len, &soa) == ARES_SUCCESS)
		ares_free_data(soa);
}

/* The cache keeps an exact copy: what a hit delivers is what came in. */
static void cached(const unsigned char *buf, int len)
{
	struct dns_cache *c = dns_cache_new(4, 1 << 20);
	const struct dns_entry *e;

	if (c == NULL)
		return;
	if (dns_cache_put(c, "fuzz.test", ns_t_txt, DNS_OK, buf, len, 60, 0) == 0) {
		e = dns_cache_get(c, "fuzz.test", ns_t_txt, 1);
		if (e == NULL || e->alen != len ||
		    (e->alen && memcmp(e->abuf, buf, (size_t)len) != 0))
			abort();
	}
	dns_cache_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *buf;
	char name[DNS_NAME_MAX + 1];
	char *str;

	if (size > 65535)  /* the most DNS over TCP can carry */
		return 0;
	/* an exact-size heap copy so ASan sees any read past the end */
	buf = malloc(size ? size : 1);
	str = malloc(size + 1);
	if (buf == NULL || str == NULL) {
		free(buf);
		free(str);
		return 0;
	}
	memcpy(buf, data, size);
	ours(buf, (int)size);
	theirs(buf, (int)size);
	cached(buf, (int)size);
	memcpy(str, data, size);
	str[size] = '\0';
	if (dns_normalise(str, name, sizeof name) == 0 && strlen(name) > DNS_NAME_MAX)
		abort();
	free(str);
	free(buf);
	return 0;
}
