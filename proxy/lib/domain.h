/* domain.h - is this a domain name? One validator for every place that
 * asks, each saying which rules apply to it; pure */
#ifndef MOAT_DOMAIN_H
#define MOAT_DOMAIN_H

#include <stddef.h>

enum {
	/* Labels of letters, digits and '-', not starting or ending with '-'
	 * (RFC 1123); without it, any printable ASCII byte but '.' (RFC 7208
	 * 4.3 asks no more of a domain to look up). */
	DOMAIN_LDH = 1 << 0,
	DOMAIN_UNDERSCORE = 1 << 1,     /* '_' too (DNS owner names: _dmarc, DKIM selectors) */
	DOMAIN_UTF8 = 1 << 2,           /* UTF-8 in labels too (RFC 6531 U-labels in SMTPUTF8 paths) */
	DOMAIN_NOT_NUMERIC = 1 << 3,    /* the last label is not all digits: a name, not an IPv4 address */
	DOMAIN_MULTI_LABEL = 1 << 4,    /* at least two labels */
	DOMAIN_TRAILING_DOT = 1 << 5,   /* a trailing dot (the root) is allowed and ignored */
};

/* The n bytes at s against the rules in flags; labels are always 1..63
 * bytes, but for a label with UTF-8 (DOMAIN_UTF8), whose octets in DNS are
 * those of its A-label: idna.c converts and bounds it (MOAT_IDN_LABEL_MAX
 * here). Returns -1 if not a domain, else 0, or 1 when it holds UTF-8. */
int domain_check(const char *s, size_t n, unsigned flags);

#endif
