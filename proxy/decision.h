/* decision.h - one JSON line per decision: every such line moat writes is
 * built by decision_log (the session's, a refusal at accept, a rule hit) */
#ifndef MOAT_DECISION_H
#define MOAT_DECISION_H

#include "proxy/lib/log.h"
#include "proxy/lib/replies.h"
#include "rules/rules.h"

struct decision {
	const char *event;     /* "decision", or "rule" for a hit that did not decide */
	enum rule_stage stage;
	const char *action;    /* NULL: from code (accept, tempfail, reject) */
	int code;              /* 0: none (a hit, a client gone) */
	const char *esc;       /* its enhanced status code; NULL: none */
	const char *reason;
	const char *rule_file; /* the rule that decided; NULL: moat itself */
	int rule_line;
	const char *rule_id;   /* its "id NAME"; NULL: none */
	/* who and what: NULL is logged as "" */
	const char *session, *client_ip, *helo, *mail_from, *rcpt;
	/* the connection's TLS ("TLSv1.3", "TLS_AES_256_GCM_SHA384"); NULL:
	 * plaintext, and the fields are left out */
	const char *tls_version, *tls_cipher;
	/* the listener the client came through ("smtp", "smtps", "submission");
	 * NULL: left out */
	const char *listener;
	/* the login name of an authenticated session (AUTH); NULL: none */
	const char *auth_user;
	/* greylisting's answer for the recipient(s): "first", "early", "passed",
	 * "allowed", "skipped" (comma-separated at data, one per recipient); NULL:
	 * no greylist rule applied */
	const char *greylist;
};

/* Log d; extra (may be NULL) appends fields of its own (check results). */
void decision_log(const struct decision *d, void (*extra)(struct jline *j, void *arg), void *arg);

/* A decision on one of moat's own replies: code and enhanced code from the
 * reply table, the same entry the client hears. */
void decision_set_reply(struct decision *d, enum reply_id id);

/* "accept", "tempfail" or "reject" for a reply code. */
const char *decision_action(int code);

/* The enhanced status code at the start of a reply's text ("5.1.1" of
 * "550 5.1.1 ..."), copied into out; "" if it has none. */
void decision_esc_of(const char *reply_text, char *out, size_t size);

#endif
