/* dns_reply.c - header, TTLs and negative-caching SOA of a raw DNS reply */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <ares.h>

#include "checks/dns_reply.h"

#define HDR_LEN 12
#define TYPE_NS 2
#define TYPE_SOA 6
#define TYPE_OPT 41
#define TYPE_ANY 255
#define CLASS_IN 1

struct rr {
	int type, class;
	uint32_t ttl;
	size_t rdata, rdlen;  /* offset and length of the rdata */
};

static unsigned get16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* RFC 2181 section 8: a TTL with the top bit set is read as zero. */
static uint32_t sane_ttl(uint32_t ttl)
{
	return ttl & 0x80000000u ? 0 : ttl;
}

/* Step over a name ending at or before end. Pointers are not followed:
 * skipping needs only to know where this copy of the name stops. */
static int skip_name(const unsigned char *buf, size_t end, size_t *off)
{
	size_t o = *off;

	while (o < end) {
		unsigned c = buf[o];

		if (c == 0) {
			*off = o + 1;
			return 0;
		}
		if ((c & 0xC0) == 0xC0) {
			if (o + 2 > end)
				return -1;
			*off = o + 2;
			return 0;
		}
		if (c & 0xC0)  /* 0x40 and 0x80 label types are obsolete */
			return -1;
		o += 1 + c;
	}
	return -1;
}

static int read_rr(const unsigned char *buf, size_t len, size_t *off, struct rr *rr)
{
	size_t o = *off;

	if (skip_name(buf, len, &o) < 0 || len - o < 10)
		return -1;
	rr->type = (int)get16(buf + o);
	rr->class = (int)get16(buf + o + 2);
	rr->ttl = sane_ttl(get32(buf + o + 4));
	rr->rdlen = get16(buf + o + 8);
	rr->rdata = o + 10;
	if (rr->rdlen > len - rr->rdata)
		return -1;
	*off = rr->rdata + rr->rdlen;
	return 0;
}

/* SOA rdata: MNAME RNAME SERIAL REFRESH RETRY EXPIRE MINIMUM. */
static int soa_minimum(const unsigned char *buf, const struct rr *rr, uint32_t *min)
{
	size_t o = rr->rdata, end = rr->rdata + rr->rdlen;

	if (skip_name(buf, end, &o) < 0 || skip_name(buf, end, &o) < 0 || end - o < 20)
		return -1;
	*min = sane_ttl(get32(buf + o + 16));
	return 0;
}

static int read_answers(const unsigned char *buf, size_t len, size_t *off, int qtype,
                        struct dns_reply *rp)
{
	struct rr rr;

	for (unsigned i = 0; i < rp->ancount; i++) {
		if (read_rr(buf, len, off, &rr) < 0)
			return -1;
		if (rr.class == CLASS_IN && (rr.type == qtype || qtype == TYPE_ANY))
			rp->nmatch++;
		if (rr.ttl < rp->an_ttl)
			rp->an_ttl = rr.ttl;
	}
	return 0;
}

static int read_authority(const unsigned char *buf, size_t len, size_t *off,
                          struct dns_reply *rp)
{
	struct rr rr;
	uint32_t min;

	for (unsigned i = 0; i < rp->nscount; i++) {
		if (read_rr(buf, len, off, &rr) < 0)
			return -1;
		if (rr.type == TYPE_NS)
			rp->ns_ns++;
		if (rr.type != TYPE_SOA || rp->has_soa)
			continue;
		if (soa_minimum(buf, &rr, &min) < 0)
			return -1;
		rp->has_soa = 1;
		rp->soa_ttl = rr.ttl < min ? rr.ttl : min;
	}
	return 0;
}

static void find_opt(const unsigned char *buf, size_t len, size_t off, unsigned arcount,
                     struct dns_reply *rp)
{
	struct rr rr;

	for (unsigned i = 0; i < arcount && read_rr(buf, len, &off, &rr) == 0; i++)
		if (rr.type == TYPE_OPT)
			rp->has_opt = 1;
}

int dns_reply_parse(const unsigned char *buf, int len, int qtype, struct dns_reply *rp)
{
	size_t n = len > 0 ? (size_t)len : 0, off = HDR_LEN;
	unsigned qdcount;

	memset(rp, 0, sizeof *rp);
	rp->an_ttl = UINT32_MAX;
	if (buf == NULL || n < HDR_LEN)
		return -1;
	rp->aa = (buf[2] >> 2) & 1;
	rp->tc = (buf[2] >> 1) & 1;
	rp->rcode = buf[3] & 0x0F;
	qdcount = get16(buf + 4);
	rp->ancount = get16(buf + 6);
	rp->nscount = get16(buf + 8);
	for (unsigned i = 0; i < qdcount; i++) {
		if (skip_name(buf, n, &off) < 0 || n - off < 4)
			return -1;
		off += 4;  /* QTYPE QCLASS */
	}
	if (read_answers(buf, n, &off, qtype, rp) < 0 || read_authority(buf, n, &off, rp) < 0)
		return -1;
	find_opt(buf, n, off, get16(buf + 10), rp);
	return 0;
}

static uint32_t clamp(uint32_t v, uint32_t lo, uint32_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* RFC 2308 section 5: the SOA says how long the absence may be believed; a
 * CNAME chain in front of it cannot be believed for longer than itself. */
static uint32_t negative_ttl(const struct dns_reply *rp, int parsed)
{
	uint32_t ttl = DNS_NEG_TTL_DEFAULT;

	if (parsed && rp->has_soa)
		ttl = rp->soa_ttl;
	if (parsed && rp->an_ttl < ttl)
		ttl = rp->an_ttl;
	return clamp(ttl, DNS_TTL_MIN, DNS_NEG_TTL_MAX);
}

enum dns_status dns_classify(int ares_status, const unsigned char *abuf, int alen,
                             int qtype, uint32_t *ttl)
{
	struct dns_reply rp;
	int parsed = dns_reply_parse(abuf, alen, qtype, &rp) == 0;

	switch (ares_status) {
	case ARES_SUCCESS:
		if (parsed && rp.nmatch > 0) {
			*ttl = clamp(rp.an_ttl, DNS_TTL_MIN, DNS_TTL_MAX);
			return DNS_OK;
		}
		if (!parsed)
			break;
		/* only a CNAME chain that leads nowhere: NODATA for this type */
		*ttl = negative_ttl(&rp, parsed);
		return DNS_NODATA;
	case ARES_ENODATA:
		/* RFC 2308 2.2.1: NS records and no SOA is a referral from a lame
		 * server, not an answer */
		if (parsed && !rp.has_soa && rp.ns_ns > 0 && !rp.aa)
			break;
		*ttl = negative_ttl(&rp, parsed);
		return DNS_NODATA;
	case ARES_ENOTFOUND:
	case ARES_EBADNAME:
		*ttl = negative_ttl(&rp, parsed);
		return DNS_NXDOMAIN;
	}
	*ttl = DNS_TEMPFAIL_TTL;
	return DNS_TEMPFAIL;
}

int dns_cacheable(int ares_status)
{
	switch (ares_status) {
	case ARES_ENOMEM:
	case ARES_EDESTRUCTION:
	case ARES_ECANCELLED:
		return 0;
	}
	return 1;
}
