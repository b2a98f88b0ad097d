/* jsonline.h - one line of moat's JSON log, parsed for the report (pure)
 *
 * moat writes a flat object of strings, integers and booleans; the parser
 * takes any JSON object (RFC 8259: escapes, \uXXXX with surrogate pairs,
 * nested values skipped, UTF-8 checked) and picks out the fields the report
 * reads. A line that is not one JSON object of valid UTF-8 is refused. */
#ifndef MOAT_REPORT_JSONLINE_H
#define MOAT_REPORT_JSONLINE_H

#include <stddef.h>

/* A string value: its bytes (escapes undone; may hold a NUL from \u0000),
 * not NUL-terminated. p == NULL: the field is absent or not a string. */
struct ll_str {
	const char *p;
	size_t n;
};

enum ll_field {
	LL_TS, LL_LEVEL, LL_EVENT, LL_SESSION, LL_CLIENT_IP, LL_HELO, LL_MAIL_FROM, LL_RCPT, LL_STAGE,
	LL_ACTION, LL_ESC, LL_REASON, LL_RULE, LL_RULE_ID, LL_SPF, LL_SPF_REASON, LL_SENDER_DOMAIN,
	LL_RDNS, LL_DKIM, LL_QUEUE_ID, LL_SUBJECT, LL_MSG, LL_NSTR
};

struct logline {
	struct ll_str f[LL_NSTR];
	/* integers; -1: absent (or not an integer) */
	long long code, worker, messages, rejected, errors;
	int truncated;  /* "truncated":true */
};

/* The name of a field in the log ("client_ip"). */
const char *logline_field_name(enum ll_field f);

/* Parse len bytes (the line without its "\n"; a trailing "\r" and JSON
 * white space around the object are allowed) into l. scratch must hold
 * len bytes: strings with escapes are decoded there, the others point into
 * line. Returns 0, or -1 if the line is not a JSON object. */
int logline_parse(struct logline *l, const char *line, size_t len, char *scratch);

/* Does s equal the NUL-terminated word w? */
int ll_is(struct ll_str s, const char *w);

#endif
