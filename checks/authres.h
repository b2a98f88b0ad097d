/* authres.h - Authentication-Results (RFC 8601): writing ours, spotting forged
 * ones that claim our authserv-id; pure */
#ifndef MOAT_AUTHRES_H
#define MOAT_AUTHRES_H

#include <stddef.h>
#include "checks/dkim.h"
#include "checks/dmarc.h"
#include "checks/spf.h"

/* Our header field, built method by method: begin, each check's result
 * (the registry's rows call authres_spf, authres_dkim), end. Folded,
 * CRLF-terminated; "; none" when no method was added. utf8: the message
 * came with SMTPUTF8, so its header may hold UTF-8 (RFC 6532): addresses
 * and domains are written as the client and the signer wrote them (RFC
 * 8616); without it, domains in A-labels, and only printable ASCII. */
struct authres {
	char *buf;
	size_t size;
	int n;     /* length so far; -1 once it did not fit */
	int any;   /* a method was added */
	int utf8;
};
void authres_begin(struct authres *a, char *buf, size_t size, const char *authserv_id, int utf8);
void authres_spf(struct authres *a, const struct spf_outcome *spf);
void authres_dkim(struct authres *a, const struct dkim_outcome *dkim);
/* "dmarc=RESULT (p=POLICY dis=DISPOSITION) header.from=DOMAIN" (RFC 7489
 * 11.2); the comment when a record was found. */
void authres_dmarc(struct authres *a, const struct dmarc_outcome *dmarc);
/* Returns the length, or -1 if it did not fit. */
int authres_end(struct authres *a);

/* All in one: spf/dkim may be NULL (not run). */
int authres_format(char *buf, size_t size, const char *authserv_id, int utf8, const struct spf_outcome *spf,
                   const struct dkim_outcome *dkim);

/* Does a header field ("Name: value" with folding, CRLFs included) named
 * Authentication-Results carry authserv_id (case-insensitive)? Also true
 * for an unparsable one (nobody may claim our name through bad syntax). */
int authres_claims(const char *field, size_t len, const char *authserv_id);

/* The same for the first len bytes of a longer field (truncated): what is
 * not in view may hold our id, so a field whose id is not fully seen counts
 * as claiming it. */
int authres_claims_head(const char *field, size_t len, int truncated, const char *authserv_id);

#endif
