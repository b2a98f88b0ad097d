/* dnsbl_sites.h - the dnsbl_sites and dbl_sites syntax of moat.conf, as
 * postscreen's postscreen_dnsbl_sites: "zone[=filter][*weight]" entries,
 * separated by commas or blanks. The filter is d.d.d.d, each d a number or
 * a [] pattern of ';'-separated numbers and number..number ranges
 * ("127.0.0.[2..11]", "127.0.[0..255].[4;10..11]"); without one, any
 * listing answer counts. The weight is an integer, 1 by default, negative
 * for an allowlist. Pure. */
#ifndef MOAT_CHECKS_DNSBL_SITES_H
#define MOAT_CHECKS_DNSBL_SITES_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/lib/bounds.h"

struct dnsbl_site {
	char zone[MOAT_DOMAIN_MAX + 1]; /* lower case, no trailing dot */
	int has_filter;
	uint8_t octet[4][32];           /* a bit per value of each octet */
	int weight;
};

struct dnsbl_sites {
	struct dnsbl_site site[MOAT_DNSBL_SITES_MAX];
	int n;
};

/* Parse text into *out (zeroed first). 0, or -1 with a message in err
 * naming the entry. */
int dnsbl_sites_parse(const char *text, struct dnsbl_sites *out, char *err, size_t errsize);

/* What an A answer of a DNS list means. Spamhaus answers 127.255.255.x to
 * queries it refuses (a public resolver, over the free limit); an answer
 * outside 127/8 is a wildcard or a hijacking resolver. Neither is a
 * listing. */
enum dnsbl_answer { DNSBL_LISTING, DNSBL_ERROR_CODE, DNSBL_NOT_LOOPBACK };
enum dnsbl_answer dnsbl_answer_kind(const unsigned char a[4]);

/* Does a listing answer a match the site's filter (no filter: yes)? */
int dnsbl_site_match(const struct dnsbl_site *s, const unsigned char a[4]);

#endif
