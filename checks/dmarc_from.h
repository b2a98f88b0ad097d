/* dmarc_from.h - what DMARC reads in a message's header section: the
 * RFC5322.From domain (RFC 7489 3.1, 6.6.1) and the Message-ID (pct
 * sampling); pure, untrusted input (fuzzed: tests/fuzz/fuzz_dmarc_from.c) */
#ifndef MOAT_CHECKS_DMARC_FROM_H
#define MOAT_CHECKS_DMARC_FROM_H

#include <stddef.h>

#include "proxy/lib/bounds.h"

enum dmarc_from_status {
	DMARC_FROM_OK,      /* domain[0 .. ndomains) hold the author domains */
	DMARC_FROM_NONE,    /* no From field */
	DMARC_FROM_SEVERAL, /* more than one From field */
	DMARC_FROM_DOMAINS, /* one From field naming addresses in over MOAT_DMARC_AUTHORS_MAX domains */
	DMARC_FROM_BAD,     /* no address, or no usable domain (a literal, bad syntax) */
};

struct dmarc_from {
	enum dmarc_from_status status;
	int ndomains;
	/* each once, in the field's order: A-labels, lower case, no trailing dot */
	char domain[MOAT_DMARC_AUTHORS_MAX][MOAT_DOMAIN_MAX + 1];
	char msgid[MOAT_LOG_MSGID_MAX + 1];  /* the first Message-ID, unfolded, trimmed ("" if none) */
};

/* Read the header section hdr[0..len) (CRLF lines, as checks/header.h keeps it). */
void dmarc_from_scan(const char *hdr, size_t len, struct dmarc_from *out);

/* The domains of a From field's value v[0..n) (unfolded or not): the
 * status as above (NONE and SEVERAL are never returned), the domains into
 * out, each once, their number into *nout. */
enum dmarc_from_status dmarc_from_value(const char *v, size_t n, char (*out)[MOAT_DOMAIN_MAX + 1], int *nout);

const char *dmarc_from_status_text(enum dmarc_from_status s);

#endif
