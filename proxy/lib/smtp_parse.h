/* smtp_parse.h - SMTP command lines, paths and parameters (RFC 5321 4.1); pure */
#ifndef MOAT_SMTP_PARSE_H
#define MOAT_SMTP_PARSE_H

#include <stddef.h>
#include "proxy/lib/bounds.h"

enum smtp_verb {
	V_UNKNOWN = 0,
	V_HELO, V_EHLO, V_MAIL, V_RCPT, V_DATA, V_RSET, V_NOOP, V_QUIT, V_VRFY, V_HELP,
	/* known but not implemented by moat: 502 */
	V_EXPN, V_STARTTLS, V_AUTH, V_BDAT, V_ETRN, V_TURN, V_ATRN, V_SEND, V_SOML, V_SAML,
	V_XCLIENT, V_XFORWARD,
};

/* A command line split into verb and argument. */
struct smtp_cmd {
	enum smtp_verb verb;
	char name[16];   /* the verb as sent, upper-cased, for logs ("" if too long) */
	const char *arg; /* rest of the line after one or more spaces; "" if none */
	/* arg's storage: the line is const, so trailing SP/HT are trimmed in this
	 * copy. arg points here: do not copy a struct smtp_cmd by value. */
	char argbuf[MOAT_CMD_LINE_MAX];
};

/* Split a command line (CRLF already removed, NUL-terminated).
 * Never fails: unknown verbs give V_UNKNOWN. A line with bytes < 0x20 other
 * than HT, or 0x7f, is reported via the return value -1 (syntax
 * error); so is a line longer than MOAT_CMD_LINE_MAX (arg is then "").
 * A NUL byte ends the string here: the line reader must refuse it. */
int smtp_cmd_parse(const char *line, struct smtp_cmd *out);

/* Flags a path parse sets: routing tricks the relay check refuses. */
#define PATH_SOURCE_ROUTE 0x01 /* "@a,@b:user@d" (RFC 5321 4.1.2 A-d-l) */
#define PATH_QUOTED       0x02 /* local part is a quoted-string */
#define PATH_PERCENT      0x04 /* '%' in the local part */
#define PATH_BANG         0x08 /* '!' in the local part */
#define PATH_LITERAL      0x10 /* domain is an address literal "[1.2.3.4]" */
#define PATH_QUOTED_AT    0x20 /* quoted local part holds an '@' */
#define PATH_UTF8         0x40 /* non-ASCII bytes (needs SMTPUTF8) */

struct smtp_path {
	int null;                          /* "<>" */
	int flags;                         /* PATH_* */
	char mailbox[MOAT_PATH_MAX + 1];   /* "local@domain" as sent (no route, no <>) */
	char local[MOAT_LOCALPART_MAX * 2 + 3]; /* local part as sent (quotes kept) */
	char domain[MOAT_DOMAIN_MAX + 1];  /* domain as sent, lower-cased; "" for null/postmaster */
	/* The domain as DNS, the relay check and the rules see it: A-labels,
	 * lower case (idna.h), whatever form the client wrote; an address
	 * literal as in domain. */
	char ascii_domain[MOAT_DOMAIN_MAX + 1];
};

#define SMTP_PARAMS_MAX 16
struct smtp_param {
	char key[32];      /* upper-cased */
	char value[512];   /* "" when the parameter has no "=value" */
	int has_value;
};
struct smtp_params {
	int n;
	struct smtp_param p[SMTP_PARAMS_MAX];
	size_t at;         /* where they start in the argument (after the path) */
};

enum path_err {
	PATH_OK = 0,
	PATH_ERR_SYNTAX,   /* "FROM:" / "TO:" missing, no <...>: 501 5.5.4 */
	PATH_ERR_ADDRESS,  /* the mailbox itself is malformed: 501 5.1.7 (MAIL) / 5.1.3 (RCPT) */
	PATH_ERR_TOOLONG,  /* over RFC 5321 size limits: 501 5.1.7 / 5.1.3 */
	PATH_ERR_PARAM,    /* malformed parameter list: 501 5.5.4 */
	PATH_ERR_IDNA,     /* a domain that is no IDNA2008 name (idna.h): 501 5.1.7 / 5.1.3 */
	PATH_ERR_NOMEM,    /* no memory to convert the domain: 451 4.3.0 */
};

/* How smtp_parse_mail_rcpt reads its argument. */
#define PARSE_RCPT   0x01 /* "TO:"; no null path (RCPT TO:<Postmaster> needs no domain) */
#define PARSE_STRICT 0x02 /* RFC 5321 only: the path in angle brackets */

/* Parse the argument of MAIL ("FROM:<a@b> SIZE=1") or RCPT ("TO:<a@b>").
 * Leniency, as Postfix with strict_rfc821_envelopes = no: blanks after the
 * colon, and unless PARSE_STRICT a mailbox without angle brackets, typed by
 * a person ("FROM: a@b", "TO:b@c SIZE=1"): the word up to the first blank
 * outside a quoted local part, read with the same grammar as inside <>, so
 * it is the same address the backend then gets in brackets. The null path
 * is only "<>". One trailing dot of a domain is dropped ("a@example.com."
 * is "a@example.com", as Postfix rewrites it): what the checks see is what
 * the backend gets. */
enum path_err smtp_parse_mail_rcpt(const char *arg, int how, struct smtp_path *path,
                                   struct smtp_params *params);

/* The address of a MAIL/RCPT argument as written, for the log line of its
 * refusal: after "FROM:"/"TO:" and blanks, the <path> (up to its '>', the
 * brackets dropped) or the word; the whole argument if the keyword is
 * missing. Cut to fit out (size > 0). Returns out. */
const char *smtp_path_text(const char *arg, int how, char *out, size_t size);

/* Find a parameter by (upper-case) key, or NULL. */
const struct smtp_param *smtp_param_get(const struct smtp_params *ps, const char *key);

/* Strict unsigned decimal: all digits, no sign, no overflow past max. 0 ok, -1 bad. */
int parse_ulong(const char *s, unsigned long max, unsigned long *out);

#endif
