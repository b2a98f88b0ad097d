/* checks.h - the checks of a session and the rules that decide on them.
 *
 * One struct checks per client session. At each stage the session hands it
 * what the client said; it runs that stage's checks, gathers the facts,
 * evaluates the config's ruleset and returns one verdict: HELO and RCPT at
 * once, in *out; connect, MAIL and DATA through done, which runs exactly
 * once, always later from the loop (never before the call returns, even
 * when every answer was known at once: dns.h states the rule), unless
 * checks_free or the transaction's end comes first. A verdict with
 * code 0 means "go on". Checks never write to the client: the session sends
 * what the verdict says. Nothing here knows about sockets, so "moat check"
 * drives the same code without a session. */
#ifndef MOAT_CHECKS_H
#define MOAT_CHECKS_H

#include <stddef.h>
#include <sys/socket.h>
#include "proxy/lib/netaddr.h"
#include "checks/check.h"
#include "proxy/lib/smtp_parse.h"
#include "rules/rules.h"

#define CHECKS_TAGS_MAX 8192 /* bytes of header fields tag rules add to one message */

struct event_base;
struct jline;
struct spf_cache;
struct rule_verdict;
struct ruleset;
struct strset;
struct dnsbl_sites;

struct verdict {
	int code;              /* 0 = go on; else the SMTP reply code (4xx/5xx) */
	char esc[12];          /* enhanced status code, "5.7.1" */
	char text[512];        /* reply text after the codes */
	char reason[256];      /* short reason for the log ("relay denied") */
	const char *rule_file; /* the rule that decided (accept, reject, tempfail); NULL: none */
	int rule_line;
	const char *rule_id;   /* its "id NAME", or NULL */
	/* code 0: what the session applies before going on (not monitored) */
	int greylist;          /* a greylist rule matched (rcpt stage): ask the store */
	struct {
		const char *file;  /* that rule */
		int line;
		const char *id;
		char reason[128];  /* its note, or its condition */
	} grey;
	int nlimits;           /* ratelimit rules that matched at this stage */
	struct rule_limit limits[RULES_LIMITS_MAX];
};

typedef void (*verdict_cb)(void *arg, const struct verdict *v);

/* What the checks need from the process. */
struct check_env {
	struct event_base *base;  /* the loop every done runs from */
	struct dns *dns;
	struct dkim_verifier *dkim;
	struct spf_cache *spf_cache;  /* SPF results reused for seconds; NULL: none */
	/* every tag, log and monitor hit of a rule, for the log (may be NULL);
	 * rcpt is the recipient at the rcpt stage */
	void (*hit)(void *arg, enum rule_stage stage, const struct rule_verdict *h, const char *rcpt);
	void *hit_arg;
};

/* What the checks are configured with: moat.conf's keys of theirs. The
 * pointers belong to whoever made the options (the config), which must
 * outlive every checks made with them. */
struct check_options {
	const char *hostname;                /* ours: %{hostname}, SPF's receiver */
	char *const *local_domains;          /* lower case; ".example.com" = subdomains */
	int nlocal_domains;
	const struct cidr *trusted_networks; /* may relay anywhere */
	int ntrusted_networks;
	const struct cidr *trusted_forwarders; /* "client forwarder" */
	int ntrusted_forwarders;
	const struct strset *rcpt_table;     /* valid recipients; NULL = any */
	const struct ruleset *ruleset;       /* NULL: no rules (only the relay floor) */
	int monitor;                         /* rejections only logged */
	int check_sender_domain, check_spf, check_dkim, check_dmarc;
	const char *dmarc_sample_key;        /* pct sampling's key; NULL/"": random per process */
	/* DNS lists (checks/dnsbl.h): the client's address at connect, the
	 * HELO and sender domains at MAIL; NULL or none: not queried */
	const struct dnsbl_sites *dnsbl_sites, *dbl_sites;
	int dnsbl_threshold, dbl_threshold;  /* the rules' "dnsbl-score >= threshold" */
	int dnsbl_timeout;                   /* ms: each list's deadline */
	int dnsbl_reply_sites;               /* %{dnsbl_reply} names the sites */
	int want_rdns;                       /* look up the client's name even if no rule tests it
	                                      * (the backend takes it with XCLIENT) */
};

struct checks;

/* opt and env are copied (opt's pointers must stay valid, see above). */
struct checks *checks_new(const struct check_options *opt, const struct check_env *env,
                          const struct sockaddr *client);
/* Cancels whatever is in flight (no callback follows). NULL is ignored. */
void checks_free(struct checks *c);

/* At connect, MAIL and the end of data, every wanted check of the registry
 * for that stage runs (checks/registry.c), side by side; the stage's rules
 * decide when the last is in. done runs exactly once, always later from the
 * loop. */

/* Connect: the connect checks (the reverse DNS name when a rule tests it),
 * then the connect rules. */
void checks_connect(struct checks *c, verdict_cb done, void *arg);
/* HELO/EHLO: the helo rules. Synchronous. */
void checks_helo(struct checks *c, const char *helo, struct verdict *out);
/* The listener the client came through (the rules' listener; before
 * checks_connect). */
void checks_listener(struct checks *c, enum listener_kind k);
/* The backend took the client's AUTH (235) for user, the login name: the
 * rules' authenticated is true and auth-user is user; the relay floor lets
 * the session relay to any domain (as a trusted client). 0, or -1 (out of
 * memory: nothing changed). */
int checks_auth(struct checks *c, const char *user);
/* The connection is under TLS from now on (STARTTLS done, or an implicit
 * TLS listener): the rules' tls is true; the HELO name is forgotten
 * (RFC 3207 4.2: a new EHLO must come). */
void checks_tls(struct checks *c);
/* MAIL: a new transaction; the mail checks (sender domain, SPF), then the
 * mail rules. */
void checks_mail(struct checks *c, const struct smtp_path *from, verdict_cb done, void *arg);
/* RCPT: relaying and local recipients, then the rcpt rules. Synchronous.
 * Whatever the rules say, a recipient relay_check refuses is refused
 * (moat is never an open relay, not even in monitor mode). */
void checks_rcpt(struct checks *c, const struct smtp_path *rcpt, struct verdict *out);
/* What greylisting said of the recipient last passed by checks_rcpt (the
 * data rules' greylisted; GREY_NONE until said). */
void checks_rcpt_greylisted(struct checks *c, enum rule_grey g);
/* The accepted recipients (data stage): their number, the i-th as the
 * rules see it (local part as sent, domain in A-labels; NULL past the
 * last), and what greylisting at the end of data said of it. */
size_t checks_nrcpts(const struct checks *c);
const char *checks_rcpt_addr(const struct checks *c, size_t i);
void checks_rcpt_greylisted_at(struct checks *c, size_t i, enum rule_grey g);
/* The backend took the recipient last passed by checks_rcpt. */
void checks_rcpt_accepted(struct checks *c);
/* The accepted recipients' greylisting, comma-separated in their order
 * ("passed,allowed"), for the log; "" when no greylist rule applied. */
void checks_greylist_text(const struct checks *c, char *buf, size_t size);
/* End of data: the data checks (DKIM) over the message (SMTP wire form,
 * read through rd), then the data rules. size is the message's size as
 * received. */
void checks_data(struct checks *c, msg_reader rd, void *rarg, size_t size, verdict_cb done, void *arg);
/* A header field of the message as it arrives (before checks_data):
 * checks may start the lookups they will make (DMARC's policy records), at
 * most MOAT_EARLY_LOOKUPS_MAX per message. field[0..len): its first bytes,
 * all of it unless truncated. */
void checks_header_field(struct checks *c, const char *field, size_t len, int truncated);
/* The transaction is over (delivered, refused, RSET): forget its facts;
 * a MAIL or DATA verdict not delivered yet never will be. */
void checks_txn_end(struct checks *c);

/* What a check of the registry found (the type its header names: each
 * module's slot starts with it), or NULL when it has not run in this
 * connection or transaction. */
const void *checks_result(const struct checks *c, const struct check_def *def);
/* The From field's author domains and the Message-ID of ctx's header
 * section (dmarc_from_scan), read once per transaction for every row that
 * asks (DMARC, authorship); NULL without a header section or memory. */
struct dmarc_from;
const struct dmarc_from *checks_author(const struct check_ctx *ctx);
/* A transaction is open (MAIL .. its end). */
int checks_in_txn(const struct checks *c);
/* Every check's fields, for a decision line. */
void checks_log(const struct checks *c, struct jline *j);
/* The checks and their result words, for moat_check_results_total
 * (metrics.h): each row's results, else its first fact's words. */
struct metrics_names;
void checks_metrics_names(struct metrics_names *mn);
/* Our Authentication-Results field for the message, CRLF-ended, from every
 * check that has a method; its length, or -1 if it does not fit. utf8: the
 * message came with SMTPUTF8 (authres.h says what changes). */
int checks_authres(const struct checks *c, const char *authserv_id, int utf8, char *buf, size_t size);
/* What the checks of a stage found, in a few words ("sender-check pass,
 * spf pass (...)"), for moat check; a check that did not run says so. */
void checks_describe(const struct checks *c, enum rule_stage stage, char *buf, size_t size);
/* Header fields the tag rules asked for, each ending in CRLF ("" if none). */
const char *checks_tags(const struct checks *c);

/* Local-recipient-only relaying (checks/relay.c); pure. */
int relay_domain_is_local(const struct check_options *o, const char *domain);
int relay_client_trusted(const struct check_options *o, const struct sockaddr *client);
/* Is the client in trusted_forwarders? */
int relay_client_forwarder(const struct check_options *o, const struct sockaddr *client);
enum relay_result relay_check(const struct check_options *o, const struct sockaddr *client,
                              const struct smtp_path *rcpt);

#endif
