/* replies.h - every reply moat itself sends, in one table; pure */
#ifndef MOAT_REPLIES_H
#define MOAT_REPLIES_H

enum reply_id {
	R_BANNER, R_HELO_OK, R_EHLO_OK, R_MAIL_OK, R_PREGREET,
	R_DONE, R_BYE, R_VRFY, R_HELP, R_DATA_GO,
	R_HELO_SYNTAX, R_EHLO_SYNTAX, R_NEED_HELO, R_NESTED_MAIL, R_NEED_MAIL, R_NEED_RCPT,
	R_NO_VALID_RCPT, R_MAIL_SYNTAX, R_RCPT_SYNTAX, R_BAD_SENDER, R_BAD_RCPT, R_PARAM,
	R_BAD_PARAM_VALUE, R_NO_ARGS, R_SIZE, R_TOO_MANY_RCPT, R_UNKNOWN_CMD, R_NOT_IMPL,
	R_LINE_TOO_LONG, R_BAD_CHARS, R_SMTPUTF8_NEEDED, R_TOO_MANY_CONN, R_TOO_MANY_CONN_IP,
	R_TIMEOUT, R_TOO_MANY_ERRORS, R_BACKEND_DOWN, R_BACKEND_LOST, R_SHUTDOWN, R_LOCAL_ERROR,
	R_NUL, R_FORGED_AUTHRES, R_RELAY_DENIED, R_RELAY_ROUTING, R_BAD_SENDER_IDN, R_BAD_RCPT_IDN,
	R_REFUSED_CMD, R_STARTTLS_GO, R_TLS_ACTIVE, R_TXN_IN_PROGRESS, R_TLS_UNAVAILABLE,
	R_BACKEND_TLS, R_BACKEND_XCLIENT, R_NEED_STARTTLS, R_AUTH_MECH, R_AUTH_SYNTAX, R_AUTH_ALREADY,
	R_AUTH_BAD_DATA, R_AUTH_TOO_LONG, R_AUTH_TEMP, R_AUTH_ABORTED, R_AUTH_BLOCKED, R_BACKEND_DNS,
	R_GREYLISTED, R_RATE_LIMITED,
	R_COUNT
};

struct reply {
	int code;
	const char *esc;  /* RFC 3463 enhanced status code; NULL where RFC 2034 has none (220, 250 to EHLO) */
	const char *text; /* "%h" stands for our hostname, "%s" for the argument */
};

extern const struct reply replies[R_COUNT];

/* Format "code esc text\r\n" (the text with %h expanded and, if arg is not
 * NULL, %s replaced by arg). Returns the length written (truncated to size). */
int reply_format(char *buf, int size, enum reply_id id, const char *hostname, const char *arg);
/* The text alone (after the codes, no CRLF), expanded; its length. */
int reply_text(char *buf, int size, enum reply_id id, const char *hostname, const char *arg);
/* The same as a line of a multi-line reply, "code-esc text\r\n", when more
 * lines follow. */
int reply_format_line(char *buf, int size, enum reply_id id, const char *hostname, const char *arg,
                      int more);

/* What an EHLO reply offers beyond what it always does. */
#define EHLO_SMTPUTF8 0x01 /* the backend has it too */
#define EHLO_DSN      0x02 /* the backend has it too */
#define EHLO_STARTTLS 0x04 /* TLS configured, not in use yet */
#define EHLO_AUTH     0x08 /* a listener of submission, under TLS: "AUTH PLAIN LOGIN" */

/* The whole EHLO reply: R_EHLO_OK, then the extensions moat offers (SIZE
 * with size_limit; the others of offers, EHLO_* flags). Returns the
 * length, or -1 if it did not fit. */
int reply_ehlo(char *buf, int size, const char *hostname, unsigned long size_limit, unsigned offers);

#endif
