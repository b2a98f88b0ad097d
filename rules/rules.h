/* rules.h - moat's rule language: load a rule file, evaluate it over a session's facts.
 *
 *   accept    client 10.0.0.0/8                      # our own network relays
 *   reject    spf fail  "550 5.7.23 SPF: %{spf_explanation}"
 *   tag       spf softfail  header "X-Moat-Suspect: spf-softfail"
 *
 * One rule a line: ACTION [monitor] CONDITION [REPLY] [header "F: v"] [note "text"] [id NAME].
 * docs/moat.rules.5 is the reference. Loading reads the rule file, its
 * includes and its lists; evaluation is pure: no I/O, no DNS, no clock. The
 * session gathers the facts (struct rule_facts), calls rules_eval at each
 * stage and sends what the decision says.
 *
 * Stages. A rule belongs to the latest stage of the facts it tests (a rule
 * testing client and spf is a mail rule). rules_eval(stage) runs the rules of
 * that stage, top to bottom; the first accept, reject or tempfail decides;
 * tag and log rules that match on the way are collected and evaluation goes
 * on; so are greylist and ratelimit rules (rule_decision.greylist, .limits:
 * the session applies them through the store unless the stage refuses).
 * A greylist rule belongs to the rcpt stage (a triplet is a recipient's;
 * the data stage when it tests header or size: then every recipient), a
 * ratelimit rule to the mail stage (messages) or the rcpt stage
 * (recipients), whatever its facts. An accept decided at an earlier stage still holds: when evaluation
 * reaches an earlier-stage accept rule whose condition holds, it stops there
 * with ACTION_ACCEPT, so "accept client 10.0.0.0/8" on top of the file skips
 * every later rule of the session, while rules above it still apply (like
 * Postfix's permit). At data, a rule that tests recipient facts is tried for
 * each recipient: a reject/tempfail/tag/log matches when it matches for one
 * of them, an accept only when it matches for all of them, so adding a
 * recipient never gets a message past a rule.
 *
 * Monitor. A reject or tempfail in monitor mode (the rule's "monitor"
 * keyword, or rules_eval's monitor argument for every rule) does not decide:
 * it is reported among the hits as a "would reject" and evaluation goes on as
 * if it had not matched. A monitored accept or tag is reported the same way
 * and has no effect.
 *
 * Use. Load once per config (ruleset_load, or ruleset_load_default when
 * moat.conf names no file); each session takes a reference. At connect,
 * HELO, MAIL, each RCPT and the end of data: fill rule_facts with everything
 * known so far, call rules_eval; REJECT/TEMPFAIL: send "code esc text" and
 * log decided.reason with decided.file:line; ACCEPT/NONE: go on. Log every
 * hit (monitor: "would <action>"); keep the tag hits' header fields and
 * add them to the message. */
#ifndef MOAT_RULES_H
#define MOAT_RULES_H

#include <stddef.h>
#include <sys/socket.h>

#include "rules/facts.h"

#define RULES_FILE_MAX (4 * 1024 * 1024)    /* a rule file, bytes */
#define RULES_LINE_MAX 4096                 /* a physical line, bytes */
#define RULES_LOGICAL_MAX 16384             /* a rule with its continuation lines */
#define RULES_INCLUDE_DEPTH 8               /* include nesting */
#define RULES_INCLUDES_MAX 1000             /* include lines followed in one load */
#define RULES_MAX 100000                    /* rules in one ruleset */
#define RULES_NEST_MAX 16                   /* parentheses and "not" nesting; regex groups */
#define RULES_REGEX_MAX 1024                /* a /regex/, bytes */
#define RULES_REGEX_COPIES 100000           /* copies of atoms regcomp would make for repetitions */
#define RULES_HITS_MAX 16                   /* tag/log/monitor hits kept per evaluation */
#define RULES_TEXT_MAX 1000                 /* an expanded reply text or header field (RFC 5322: 998) */
#define RULES_REASON_MAX 256                /* an expanded note, or the condition as written */
#define RULES_WORDS_MAX 32                  /* words of one fact of the vocabulary */
#define RULES_ID_MAX 64                     /* a rule's "id NAME", bytes */

enum rule_action {
	ACTION_NONE,     /* decision only: no rule decided, go on */
	ACTION_ACCEPT,   /* skip the remaining rules (see the stage rule above) */
	ACTION_REJECT,   /* 5xx */
	ACTION_TEMPFAIL, /* 4xx */
	ACTION_TAG,      /* add a header field to the message, go on */
	ACTION_LOG,      /* note it in the log, go on */
	ACTION_GREYLIST, /* greylist the recipient (its triplet), go on: rule_decision.greylist */
	ACTION_RATELIMIT, /* count against a limit, go on: rule_decision.limits */
};

/* ratelimit KEY N/WINDOW [messages|recipients]: what is counted, per what.
 * Fixed windows of `window` seconds aligned to the epoch (store.h). A
 * messages limit is decided at MAIL, a recipients limit at each RCPT. */
enum rule_limit_key { LIMIT_CLIENT, LIMIT_SENDER_DOMAIN, LIMIT_AUTH_USER };
enum rule_limit_unit { LIMIT_MESSAGES, LIMIT_RECIPIENTS };

#define RULES_LIMITS_MAX 8                  /* ratelimit rules of one stage */
#define RULES_LIMIT_COUNT_MAX 1000000000L   /* N of N/WINDOW */
#define RULES_LIMIT_WINDOW_MAX (366 * 86400) /* WINDOW, seconds */

struct rule_limit {
	enum rule_limit_key key;
	enum rule_limit_unit unit;
	long max;                 /* at most this many per window */
	int window;               /* seconds */
	const char *file;         /* the rule (valid while the ruleset is) */
	int line;
	const char *id;
};

/* The rules' own facts (those of the SMTP session), for ruleset_uses(): a
 * session can skip gathering what no rule tests (splitting the header).
 * FACT_CHECK is any fact of the vocabulary (ruleset_uses_value()). */
enum rule_fact {
	FACT_CLIENT, FACT_LISTENER, FACT_TLS, FACT_AUTH, FACT_AUTH_USER,
	FACT_HELO,
	FACT_SENDER, FACT_SENDER_DOMAIN,
	FACT_RCPT, FACT_RCPT_DOMAIN, FACT_RELAY, FACT_RCPT_KNOWN,
	FACT_HEADER, FACT_SIZE,
	FACT_GREYLISTED,
	FACT_CHECK,
	FACT_COUNT
};

/* One recipient. */
struct rule_rcpt {
	const char *addr;          /* "local@domain", the local part as sent, the domain in
	                            * A-labels (smtp_path.ascii_domain) */
	const char *domain;        /* in A-labels; "" for <postmaster> */
	int local;                 /* relay_domain_is_local() */
	enum relay_result relay;   /* relay_check() */
	int known;                 /* 1: local_recipients has the user, or there is no table */
	enum rule_grey greylisted; /* what greylisting said of it at RCPT (data stage) */
};

/* One header field: name without the colon, value unfolded (CRLF removed),
 * leading blanks skipped. rules_split_headers() makes them. */
struct rule_header {
	const char *name;
	const char *value;
};

/* Everything the rules may test. The session fills what it knows so far and
 * keeps the facts of earlier stages for later ones (earlier-stage accepts are
 * re-checked). NULL or 0 is "not known": every test of it is false (so "not"
 * of it is true). Strings are NUL-terminated; case does not matter. */
struct rule_facts {
	/* connect */
	const struct sockaddr *client;  /* the real client (after PROXY) */
	const char *client_ip;          /* its text, for %{client} */
	int trusted;                    /* client in trusted_networks */
	int forwarder;                  /* client in trusted_forwarders */
	int tls;                        /* TLS in use */
	enum listener_kind listener;    /* the listener the client came through */
	int authenticated;              /* SMTP AUTH succeeded (the backend said 235) */
	const char *auth_user;          /* the login name it took; NULL: not authenticated */
	const char *hostname;           /* ours, for %{hostname} */
	/* helo */
	const char *helo;               /* HELO/EHLO argument; NULL before */
	/* mail */
	const char *sender;             /* MAIL FROM mailbox (domain in A-labels, as rcpt's addr);
	                                 * "" = null sender; NULL before MAIL */
	const char *sender_domain;      /* A-labels, lower case; "" for the null sender */
	/* rcpt */
	const struct rule_rcpt *rcpt;   /* the RCPT being decided (rcpt stage) */
	const struct rule_rcpt *rcpts;  /* the accepted recipients (data stage) */
	size_t nrcpts;
	/* data */
	const struct rule_header *headers;
	size_t nheaders;
	size_t size;                    /* message bytes as received */
	/* what the checks found: one per fact of the ruleset's vocabulary, in
	 * its order (NULL: nothing known yet) */
	const struct rule_value *values;
};

/* What one rule that matched asks for. Texts are expanded (%{...}) with
 * control bytes shown as '?'. */
struct rule_verdict {
	enum rule_action action;
	int monitor;                     /* 1: not enforced, "would reject" etc. */
	int inherited;                   /* 1: an accept of an earlier stage that still holds */
	enum rule_stage stage;           /* the rule's stage */
	int code;                        /* reject/tempfail: 4xx/5xx */
	char esc[12];                    /* reject/tempfail: "5.7.1" */
	char text[RULES_TEXT_MAX];       /* reject/tempfail: reply text after the codes;
	                                  * tag: the header field "Name: value" */
	char reason[RULES_REASON_MAX];   /* the note, else the condition as written */
	const char *file;                /* where the rule is: valid while the ruleset is */
	int line;
	const char *id;                  /* its "id NAME" (same lifetime), or NULL */
};

struct rule_decision {
	enum rule_action action;         /* NONE, ACCEPT, REJECT or TEMPFAIL */
	struct rule_verdict decided;     /* with action != NONE */
	int nhits;                       /* tag, log and monitor hits before the decision, in order */
	int hits_dropped;                /* hits past RULES_HITS_MAX, not kept */
	struct rule_verdict hits[RULES_HITS_MAX];
	/* not monitored greylist and ratelimit rules that matched on the way
	 * (the caller applies them unless the decision refuses) */
	int greylist;                    /* 1: greylist; grey is the first such rule */
	struct rule_verdict grey;
	int nlimits;                     /* ratelimit rules, in order */
	struct rule_limit limits[RULES_LIMITS_MAX];
};

struct ruleset;

/* Load a rule file with its includes and lists, in the words of vocab (the
 * checks' facts; it must outlive the ruleset). NULL on error, with
 * "FILE:LINE: message" in err (a list's own errors: "LISTFILE:LINE: message";
 * a file that cannot be read: "FILE: cannot open: reason"). */
struct ruleset *ruleset_load(const char *path, const struct rule_vocab *vocab, char *err, size_t errsize);
/* The same from memory; name is used in messages and verdicts, and relative
 * include and list paths are taken from its directory (the current one if
 * name has no '/'). */
struct ruleset *ruleset_load_text(const char *text, size_t len, const char *name,
                                  const struct rule_vocab *vocab, char *err, size_t errsize);
/* The built-in policy: rules/default.rules, compiled in. */
struct ruleset *ruleset_load_default(const struct rule_vocab *vocab, char *err, size_t errsize);
extern const char rules_default_text[];

/* Sessions hold a reference to the ruleset they started with; a reload makes
 * a new one and drops the server's reference. Single-threaded, like config. */
struct ruleset *ruleset_ref(struct ruleset *rs);
void ruleset_unref(struct ruleset *rs);

/* Decide for one stage; out is always filled. Returns out->action.
 * monitor: global monitor mode, no reject or tempfail is enforced. */
enum rule_action rules_eval(const struct ruleset *rs, enum rule_stage stage,
                            const struct rule_facts *f, int monitor, struct rule_decision *out);

/* Bit (1u << FACT_x) for each fact some rule tests. */
unsigned ruleset_uses(const struct ruleset *rs);
/* Does some rule test, or some template name, the vocabulary's fact i? */
int ruleset_uses_value(const struct ruleset *rs, size_t i);
/* Rules of a stage (a session may skip gathering a stage's facts when 0). */
size_t ruleset_stage_count(const struct ruleset *rs, enum rule_stage stage);

/* What moat -t and the tests see of a loaded rule. */
struct rule_info {
	enum rule_action action;
	int monitor;
	enum rule_stage stage;
	int code;            /* reject/tempfail reply, defaults applied */
	const char *esc;
	const char *text;    /* the reply or header template, before expansion */
	const char *what;    /* the condition as written (blanks collapsed) */
	const char *note;    /* NULL without one */
	const char *id;      /* "id NAME", or NULL */
	const char *file;
	int line;
};
size_t ruleset_count(const struct ruleset *rs);
int ruleset_rule(const struct ruleset *rs, size_t i, struct rule_info *out); /* -1: no such rule */
/* The files the load read (rule files, then lists), i from 0; NULL past
 * the last: what a reload reads again. The built-in policy is none. */
const char *ruleset_file(const struct ruleset *rs, size_t i);
/* "12 rules (connect 1, helo 0, mail 6, rcpt 3, data 2), 2 lists, 1000004 list entries" */
void ruleset_describe(const struct ruleset *rs, char *buf, size_t size);

/* Split a message's header section (CRLF or LF lines, dot-stuffing undone;
 * it ends at the first empty line or at len) in place into fields for
 * rule_facts.headers: continuation lines are joined (the line break
 * removed), names and values NUL-terminated. A line that is neither
 * "name:" nor a continuation ends the header. Returns the number of fields
 * written, at most max. buf needs len + 1 bytes. Pure. */
size_t rules_split_headers(char *buf, size_t len, struct rule_header *out, size_t max);

const char *rules_stage_name(enum rule_stage s);
/* "smtp", "smtps", "submission": the listener's name in rules and the log. */
const char *rules_listener_name(enum listener_kind k);
/* Where a rule is, "FILE:LINE" ("FILE" without a line, "" for none). */
void rules_where(char *buf, size_t size, const char *file, int line);
const char *rules_action_name(enum rule_action a);
/* "client", "sender-domain", "auth-user"; "messages", "recipients". */
const char *rules_limit_key_name(enum rule_limit_key k);
const char *rules_limit_unit_name(enum rule_limit_unit u);
/* A ratelimit's window: "30s", "10m", "1h", "7d", "h" (1h): seconds (1 ..
 * RULES_LIMIT_WINDOW_MAX), or -1. Pure. */
long rules_window_parse(const char *s);
/* "first", "early", "passed", "allowed", "skipped"; "none" for GREY_NONE. */
const char *rules_grey_name(enum rule_grey g);

#endif
