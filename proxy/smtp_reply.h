/* smtp_reply.h - reading a server's (multi-line) reply; pure */
#ifndef MOAT_SMTP_REPLY_H
#define MOAT_SMTP_REPLY_H

#include <stddef.h>
#include "proxy/lib/bounds.h"

/* A whole reply as received, every line CRLF-ended, to pass on verbatim. */
struct smtp_reply {
	int code;                          /* 200..599 */
	size_t len;
	int nlines;
	char text[MOAT_BACKEND_REPLY_MAX]; /* NUL-terminated */
};

enum reply_step { REPLY_MORE, REPLY_DONE, REPLY_BAD };

void smtp_reply_init(struct smtp_reply *r);
/* Add one line (without CRLF). REPLY_BAD: not "ddd", "ddd-..." or "ddd ...",
 * a code that changes between lines, or a reply over the bounds. */
enum reply_step smtp_reply_add_line(struct smtp_reply *r, const char *line, size_t len);

/* XCLIENT and the attributes it lists (Postfix: "XCLIENT NAME ADDR PORT
 * PROTO HELO LOGIN ..."); an attribute it does not list is never sent. */
enum {
	XCLIENT_OFFERED = 1, XCLIENT_NAME = 2, XCLIENT_ADDR = 4, XCLIENT_PORT = 8,
	XCLIENT_PROTO = 16, XCLIENT_HELO = 32, XCLIENT_LOGIN = 64,
};

/* The extensions a server's EHLO reply offers that matter to moat. */
struct ehlo_caps {
	int pipelining, eightbit, smtputf8, dsn, xforward, enhanced, starttls;
	unsigned xclient;   /* 0, or XCLIENT_OFFERED and the attributes listed */
	int auth_plain, auth_login;  /* AUTH offers the mechanism (RFC 4954) */
	unsigned long size; /* 0 = not announced or no limit */
};
void ehlo_caps_parse(const struct smtp_reply *r, struct ehlo_caps *caps);

/* The first line of a reply's text, without CRLF, cut to fit out (for logs). */
void reply_first_line(const char *text, char *out, size_t size);

/* The queue id in a server's reply to the end of data, so that a log line
 * joins that server's log: Postfix "250 2.0.0 Ok: queued as 4ZXyz1Abc",
 * Exim "250 OK id=1tAbCd-000123-AB", Sendmail and OpenSMTPD "250 2.0.0
 * 4AB1cd Message accepted for delivery". Letters, digits and "._-", at
 * most MOAT_QUEUE_ID_MAX. 1 and the id in out, or 0 and "" (none, or too
 * long to be one). */
int reply_queue_id(const char *text, char *out, size_t size);

#endif
