/* dns_reply.h - what moat reads in a raw DNS reply itself: the header, the
 * answer TTLs and the SOA of a negative answer (RFC 2308). Pure, no I/O, so
 * the fuzzer and the unit tests drive it with any bytes. */
#ifndef MOAT_DNS_REPLY_H
#define MOAT_DNS_REPLY_H

#include <stdint.h>

#include "checks/dns.h"

struct dns_reply {
	int rcode;
	int aa, tc;         /* header bits */
	unsigned ancount, nscount;
	unsigned nmatch;    /* answer RRs of class IN and the asked type */
	uint32_t an_ttl;    /* lowest TTL in the answer section; UINT32_MAX if empty */
	unsigned ns_ns;     /* NS records in the authority section */
	int has_soa;
	uint32_t soa_ttl;   /* min(SOA RR TTL, SOA MINIMUM) of the first SOA there */
	int has_opt;        /* an EDNS OPT RR in the additional section */
};

/* Walk header, question, answer and authority sections. 0, or -1 if the
 * packet is cut short or malformed there. The additional section is only
 * searched for an OPT RR: damage there does not fail the parse. */
int dns_reply_parse(const unsigned char *buf, int len, int qtype, struct dns_reply *rp);

/* moat's status and cache lifetime (seconds, floors and caps applied) for a
 * c-ares completion: ares_status as given to the ares_query callback. */
enum dns_status dns_classify(int ares_status, const unsigned char *abuf, int alen,
                             int qtype, uint32_t *ttl);

/* 0 for outcomes that say nothing about the name (out of memory, channel
 * destroyed): they must not be cached. */
int dns_cacheable(int ares_status);

#endif
