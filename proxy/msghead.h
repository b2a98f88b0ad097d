/* msghead.h - the header fields moat puts in front of a message it passes
 * on: its Authentication-Results, the tag rules' fields, its Received; pure */
#ifndef MOAT_MSGHEAD_H
#define MOAT_MSGHEAD_H

#include <stddef.h>

#include "checks/checks.h"
#include "proxy/lib/bounds.h"

/* Room for all of them: ours, every tag, a Received of the longest names. */
#define MSGHEAD_MAX (MOAT_AUTHRES_MAX + CHECKS_TAGS_MAX + 2 * MOAT_HELO_MAX + 640)

struct msghead {
	const char *authres;   /* our Authentication-Results field, CRLF-ended; NULL: none */
	const char *tags;      /* the tag rules' fields, CRLF-ended lines; "" if none */
	const char *helo;      /* the client's HELO name as sent ("" before) */
	const char *client_ip; /* text */
	int ipv6;              /* an IPv6 client ("IPv6:" literal) */
	const char *hostname;  /* ours */
	const char *proto;     /* "SMTP", "ESMTP", "UTF8SMTP": under TLS with an "S" added, after
	                        * AUTH an "A" (RFC 3848, RFC 6531 "with": ESMTPS, ESMTPSA, UTF8SMTPSA) */
	int authenticated;     /* the client authenticated (AUTH) */
	const char *tls_version; /* "TLSv1.3", in a comment after the protocol; NULL: no TLS */
	const char *tls_cipher;  /* "TLS_AES_256_GCM_SHA384" */
	const char *id;        /* the session id */
	int ntx;               /* the transaction's number in the session, from 1 */
	const char *date;      /* RFC 5322 date-time */
};

/* The fields, CRLF lines, into buf. The HELO name is untrusted: anything
 * but printable ASCII, and parentheses and backslashes (which would end or
 * escape the comment it sits in), become '?'. Returns the length, or -1 if
 * they do not fit (buf then holds nothing usable). */
int msghead_format(char *buf, size_t size, const struct msghead *h);

/* RFC 5322 date-time of t, local time zone. */
void msghead_date(char *buf, size_t size, long long t);

#endif
