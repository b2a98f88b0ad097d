/* authres.h - Authentication-Results (RFC 8601): writing ours, spotting forged
 * ones that claim our authserv-id; pure */
#ifndef MOAT_AUTHRES_H
#define MOAT_AUTHRES_H

#include <stddef.h>
#include "dkim.h"
#include "spf.h"

/* Our header field, folded, CRLF-terminated. spf/dkim may be NULL (not
 * run). Returns the length, or -1 if it did not fit. */
int authres_format(char *buf, size_t size, const char *authserv_id, const struct spf_outcome *spf,
                   const struct dkim_outcome *dkim);

/* Does a header field ("Name: value" with folding, CRLFs included) named
 * Authentication-Results carry authserv_id (case-insensitive)? Also true
 * for an unparsable one (nobody may claim our name through bad syntax). */
int authres_claims(const char *field, size_t len, const char *authserv_id);

/* The header fields of a message's header section, in wire form. */
struct header_field {
	size_t off, len;  /* bytes of the whole field, CRLF of its last line included */
	size_t name_len;  /* the name before ':' */
};

/* Find the fields of the header section at the start of buf. Stops at the
 * empty line, at the end of buf, or after max fields. Returns the number
 * of fields found; *hdr_end is where the header section (empty line
 * included) ends, or len if buf does not reach its end. */
int header_scan(const char *buf, size_t len, struct header_field *f, int max, size_t *hdr_end);

#endif
