/* test_rules_eval.c - evaluation: the default policy against checks/checks.c's
 * verdicts, every fact, first match, stages, earlier accepts, recipients at
 * data, monitor mode, variables, hits; the header splitter */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/lib/netaddr.h"
#include "checks/authorship.h"
#include "checks/dkim.h"
#include "checks/rdns.h"
#include "checks/registry.h"
#include "checks/sender.h"
#include "checks/spf.h"
#include "proxy/lib/bounds.h"
#include "rules/rules.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define RCPTS_MAX 8

/* Facts in a form a table row can hold. */
struct fx {
	const char *ip;        /* client; NULL: unknown */
	int trusted, tls, auth;
	int forwarder;         /* in trusted_forwarders */
	int listener;          /* enum listener_kind */
	const char *auth_user;
	const char *rdns, *helo;
	const char *sender;    /* NULL: before MAIL; "": the null sender */
	int sc;                /* sender-check result + 1; 0: not checked */
	int spf;               /* SPF result + 1; 0: not checked */
	const char *rcpt;      /* the RCPT being decided */
	int nonlocal;          /* its domain is not local */
	int relay;             /* enum relay_result */
	int unknown;           /* the user is not in local_recipients */
	const char *rcpts;     /* data: accepted recipients, "a@x b@y" */
	const char *dkim;      /* "pass:a.test fail:b.test": one signature each, summary computed */
	const char *headers;   /* the header section */
	size_t size;
};

#define SC(x) ((x) + 1)
#define SPF(x) ((x) + 1)

struct built {
	struct sockaddr_storage ss;
	struct rdns_result rdns;
	enum sender_res sc;
	struct spf_outcome spf;
	struct dkim_outcome dkim;
	struct authorship_outcome auth;
	struct dmarc_from author; /* auth.from points here */
	struct rule_value values[RULES_VOCAB_MAX];
	const char *names[RULES_VOCAB_MAX][CHECK_NAMES_MAX];
	struct rule_rcpt rcpt, rcpts[RCPTS_MAX];
	char rcpt_text[RCPTS_MAX][128];
	char hdr[4096];
	struct rule_header headers[32];
	struct rule_facts f;
};

static const char *domain_of(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? at + 1 : "";
}

/* A check's result into the facts, as checks.c puts it: through its row. */
static void put_values(struct built *b, const struct check_def *def, const void *result)
{
	size_t n;
	const struct check_def *const *rows = checks_registry(&n);

	for (size_t i = 0; i < n; i++)
		if (rows[i] == def)
			def->values(result, &b->values[checks_first_fact(i)], &b->names[checks_first_fact(i)]);
}

static void build(const struct fx *x, struct built *b)
{
	struct rule_facts *f = &b->f;

	memset(b, 0, sizeof *b);
	f->hostname = "mx.moat.test";
	if (x->ip) {
		socklen_t len;

		if (hostport_parse(x->ip, 1, &b->ss, &len) < 0)
			fail_msg("bad address %s", x->ip);
		f->client = (struct sockaddr *)&b->ss;
		f->client_ip = x->ip;
	}
	f->trusted = x->trusted;
	f->forwarder = x->forwarder;
	f->tls = x->tls;
	f->authenticated = x->auth;
	f->auth_user = x->auth_user;
	f->listener = (enum listener_kind)x->listener;
	f->values = b->values;
	if (x->rdns) {
		b->rdns.res = x->rdns[0] ? RDNS_OK : RDNS_NONE;
		snprintf(b->rdns.name, sizeof b->rdns.name, "%s", x->rdns);
		put_values(b, &check_rdns, &b->rdns);
	}
	f->helo = x->helo;
	f->sender = x->sender;
	f->sender_domain = x->sender ? domain_of(x->sender) : NULL;
	if (x->sc) {
		b->sc = (enum sender_res)(x->sc - 1);
		put_values(b, &check_sender, &b->sc);
	}
	if (x->spf) {
		b->spf.res = (enum spf_res)(x->spf - 1);
		snprintf(b->spf.domain, sizeof b->spf.domain, "%s", f->sender_domain ? f->sender_domain : "");
		snprintf(b->spf.explanation, sizeof b->spf.explanation, "%s does not allow [%s]",
		         b->spf.domain, x->ip ? x->ip : "");
		snprintf(b->spf.reason, sizeof b->spf.reason, "mechanism -all matched");
		put_values(b, &check_spf, &b->spf);
	}
	if (x->rcpt) {
		b->rcpt = (struct rule_rcpt){ x->rcpt, domain_of(x->rcpt), !x->nonlocal,
		                              (enum relay_result)x->relay, !x->unknown, GREY_NONE };
		f->rcpt = &b->rcpt;
	}
	if (x->rcpts) {
		const char *s = x->rcpts;

		while (*s && f->nrcpts < RCPTS_MAX) {
			size_t n = strcspn(s, " ");
			char *t = b->rcpt_text[f->nrcpts];

			snprintf(t, sizeof b->rcpt_text[0], "%.*s", (int)n, s);
			b->rcpts[f->nrcpts++] = (struct rule_rcpt){ t, domain_of(t), 1, RELAY_OK, 1, GREY_NONE };
			s += n + strspn(s + n, " ");
		}
		f->rcpts = b->rcpts;
	}
	if (x->dkim) {
		/* summary as dkim.c ranks: pass > fail > temperror > permerror > neutral > none */
		static const int rank[] = { [DKIM_RES_NONE] = 0, [DKIM_RES_NEUTRAL] = 1, [DKIM_RES_PERMERROR] = 2,
		                            [DKIM_RES_TEMPERROR] = 3, [DKIM_RES_FAIL] = 4, [DKIM_RES_PASS] = 5 };
		static const char *const names[] = { [DKIM_RES_NONE] = "none", [DKIM_RES_PASS] = "pass",
		                                     [DKIM_RES_FAIL] = "fail", [DKIM_RES_NEUTRAL] = "neutral",
		                                     [DKIM_RES_TEMPERROR] = "temperror",
		                                     [DKIM_RES_PERMERROR] = "permerror" };
		char res[16], dom[64];
		const char *s = x->dkim;
		int used;

		b->dkim.summary = DKIM_RES_NONE;
		while (sscanf(s, " %15[^:]:%63s%n", res, dom, &used) == 2) {
			struct dkim_sig_result *sig = &b->dkim.sig[b->dkim.nsigs++];

			for (int r = 0; r < (int)NELEM(names); r++)
				if (strcmp(names[r], res) == 0)
					sig->res = (enum dkim_res)r;
			snprintf(sig->domain, sizeof sig->domain, "%s", dom);
			if (rank[sig->res] > rank[b->dkim.summary])
				b->dkim.summary = sig->res;
			s += used;
		}
		put_values(b, &check_dkim, &b->dkim);
	}
	if (x->dkim || x->headers) {
		/* the author: the header's From, else the envelope sender's domain */
		struct authorship_outcome *a = &b->auth;
		const char *h = x->headers ? x->headers : "";

		a->list_mail = authorship_list_mail(h, strlen(h));
		dmarc_from_scan(h, strlen(h), &b->author);
		if (b->author.status != DMARC_FROM_OK && f->sender_domain) {
			b->author.status = DMARC_FROM_OK;
			b->author.ndomains = 1;
			snprintf(b->author.domain[0], sizeof b->author.domain[0], "%s", f->sender_domain);
		}
		a->from = &b->author;
		a->aligned = authorship_aligned(a->from, x->dkim ? &b->dkim : NULL);
		put_values(b, &check_authorship, a);
	}
	if (x->headers) {
		size_t n = strlen(x->headers);

		memcpy(b->hdr, x->headers, n + 1);
		f->nheaders = rules_split_headers(b->hdr, n, b->headers, NELEM(b->headers));
		f->headers = b->headers;
	}
	f->size = x->size;
}

/* "code esc text" of a verdict */
static void reply_of(const struct rule_verdict *v, char *buf, size_t size)
{
	if (v->code)
		snprintf(buf, size, "%d %s %s", v->code, v->esc, v->text);
	else
		snprintf(buf, size, "%s", v->text);
}

/* "tag@4 X: y; reject monitor@2 550 5.7.1 x; log@3" */
static void hits_of(const struct rule_decision *d, char *buf, size_t size)
{
	char one[1200], reply[1100];
	size_t n = 0;

	buf[0] = '\0';
	for (int i = 0; i < d->nhits; i++) {
		const struct rule_verdict *v = &d->hits[i];

		reply_of(v, reply, sizeof reply);
		snprintf(one, sizeof one, "%s%s%s@%d%s%s", i ? "; " : "", rules_action_name(v->action),
		         v->monitor ? " monitor" : "", v->line, reply[0] ? " " : "", reply);
		n += (size_t)snprintf(buf + n, size - n, "%s", one);
		if (n >= size)
			break;
	}
}

struct row {
	const char *name;
	const char *rules;        /* NULL: the default policy */
	enum rule_stage stage;
	struct fx fx;
	int monitor;              /* global monitor mode */
	enum rule_action want;
	int line;                 /* of the deciding rule */
	const char *reply;        /* "code esc text" of a reject/tempfail; NULL: don't care */
	const char *hits;         /* NULL: none */
	int inherited;
};

static void run_rows(const struct row *rows, size_t n)
{
	char err[1024], got_reply[1200], got_hits[4096];
	struct ruleset *def = ruleset_load_default(checks_vocab(), err, sizeof err);
	struct built *b = malloc(sizeof *b);
	struct rule_decision *d = malloc(sizeof *d);

	assert_non_null(def);
	assert_non_null(b);
	assert_non_null(d);
	for (size_t i = 0; i < n; i++) {
		const struct row *r = &rows[i];
		struct ruleset *rs = r->rules ? ruleset_load_text(r->rules, strlen(r->rules), "t.rules", checks_vocab(), err, sizeof err)
		                              : ruleset_ref(def);
		enum rule_action got;

		if (!rs)
			fail_msg("%s: %s", r->name, err);
		build(&r->fx, b);
		got = rules_eval(rs, r->stage, &b->f, r->monitor, d);
		reply_of(&d->decided, got_reply, sizeof got_reply);
		hits_of(d, got_hits, sizeof got_hits);
		if (got != d->action || got != r->want || (got != ACTION_NONE && d->decided.line != r->line) ||
		    (r->reply && strcmp(got_reply, r->reply) != 0) ||
		    strcmp(got_hits, r->hits ? r->hits : "") != 0 || d->decided.inherited != r->inherited)
			fail_msg("%s:\n  got  %s@%d \"%s\" inherited %d hits \"%s\"\n  want %s@%d \"%s\" inherited %d hits \"%s\"",
			         r->name, rules_action_name(got), d->decided.line, got_reply, d->decided.inherited,
			         got_hits, rules_action_name(r->want), r->line, r->reply ? r->reply : "*",
			         r->inherited, r->hits ? r->hits : "");
		if (got != ACTION_NONE)
			assert_string_equal(d->decided.file, r->rules ? "t.rules" : "default.rules");
		ruleset_unref(rs);
	}
	ruleset_unref(def);
	free(b);
	free(d);
}

/* ---- the default policy: what checks/checks.c answers ---- */

#define OUTSIDER .ip = "203.0.113.5", .helo = "mail.sender.test"
#define TRUSTED .ip = "10.1.2.3", .trusted = 1, .helo = "relay.moat.test"
#define FROM(x) .sender = x

static const struct row default_rows[] = {
	{ "connect: an outsider goes on", NULL, STAGE_CONNECT, { OUTSIDER }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "connect: trusted is accepted", NULL, STAGE_CONNECT, { TRUSTED }, 0, ACTION_ACCEPT, 25, "", NULL, 0 },
	{ "helo: nothing to say", NULL, STAGE_HELO, { OUTSIDER }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	/* MAIL: one check at a time */
	{ "mail: all pass", NULL, STAGE_MAIL, { OUTSIDER, FROM("a@sender.test"), .sc = SC(SD_PASS), .spf = SPF(SPF_RES_PASS) },
	  0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "mail: nxdomain", NULL, STAGE_MAIL, { OUTSIDER, FROM("a@gone.test"), .sc = SC(SD_NXDOMAIN), .spf = SPF(SPF_RES_NONE) },
	  0, ACTION_REJECT, 30, "550 5.1.8 <a@gone.test>: Sender address rejected: Domain not found", NULL, 0 },
	{ "mail: norecords", NULL, STAGE_MAIL, { OUTSIDER, FROM("a@bare.test"), .sc = SC(SD_NORECORDS), .spf = SPF(SPF_RES_NONE) },
	  0, ACTION_REJECT, 33, "550 5.1.8 <a@bare.test>: Sender address rejected: Domain not found", NULL, 0 },
	{ "mail: null MX", NULL, STAGE_MAIL, { OUTSIDER, FROM("a@nomail.test"), .sc = SC(SD_NULLMX), .spf = SPF(SPF_RES_NONE) },
	  0, ACTION_REJECT, 36,
	  "550 5.7.27 <a@nomail.test>: Sender address rejected: Domain does not accept mail (null MX)", NULL, 0 },
	{ "mail: sender tempfail", NULL, STAGE_MAIL, { OUTSIDER, FROM("a@slow.test"), .sc = SC(SD_TEMPFAIL), .spf = SPF(SPF_RES_PASS) },
	  0, ACTION_TEMPFAIL, 44,
	  "451 4.4.3 <a@slow.test>: Sender address rejected: Domain lookup failed, try again later", NULL, 0 },
	{ "mail: spf fail", NULL, STAGE_MAIL, { OUTSIDER, FROM("a@strict.test"), .sc = SC(SD_PASS), .spf = SPF(SPF_RES_FAIL) },
	  0, ACTION_REJECT, 42, "550 5.7.23 SPF: strict.test does not allow [203.0.113.5]", NULL, 0 },
	{ "mail: spf temperror", NULL, STAGE_MAIL, { OUTSIDER, FROM("a@flaky.test"), .sc = SC(SD_PASS), .spf = SPF(SPF_RES_TEMPERROR) },
	  0, ACTION_TEMPFAIL, 47, "451 4.7.24 SPF: temporary DNS error evaluating flaky.test, try again later", NULL, 0 },
	{ "mail: softfail, neutral, permerror go on", NULL, STAGE_MAIL,
	  { OUTSIDER, FROM("a@x.test"), .sc = SC(SD_PASS), .spf = SPF(SPF_RES_SOFTFAIL) }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "mail: neutral", NULL, STAGE_MAIL, { OUTSIDER, FROM("a@x.test"), .sc = SC(SD_PASS), .spf = SPF(SPF_RES_NEUTRAL) },
	  0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "mail: permerror", NULL, STAGE_MAIL, { OUTSIDER, FROM("a@x.test"), .sc = SC(SD_PASS), .spf = SPF(SPF_RES_PERMERROR) },
	  0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "mail: null sender (not checked: none)", NULL, STAGE_MAIL, { OUTSIDER, FROM(""), .sc = SC(SD_NONE), .spf = SPF(SPF_RES_NONE) },
	  0, ACTION_NONE, 0, NULL, NULL, 0 },
	/* MAIL: both at once; checks.c: a 5xx beats a 4xx, the sender domain beats SPF */
	{ "mail: nxdomain beats spf fail", NULL, STAGE_MAIL, { OUTSIDER, FROM("a@gone.test"), .sc = SC(SD_NXDOMAIN), .spf = SPF(SPF_RES_FAIL) },
	  0, ACTION_REJECT, 30, NULL, NULL, 0 },
	{ "mail: null MX beats spf temperror", NULL, STAGE_MAIL, { OUTSIDER, FROM("a@n.test"), .sc = SC(SD_NULLMX), .spf = SPF(SPF_RES_TEMPERROR) },
	  0, ACTION_REJECT, 36, NULL, NULL, 0 },
	{ "mail: spf fail beats sender tempfail", NULL, STAGE_MAIL, { OUTSIDER, FROM("a@s.test"), .sc = SC(SD_TEMPFAIL), .spf = SPF(SPF_RES_FAIL) },
	  0, ACTION_REJECT, 42, NULL, NULL, 0 },
	{ "mail: sender tempfail beats spf temperror", NULL, STAGE_MAIL,
	  { OUTSIDER, FROM("a@s.test"), .sc = SC(SD_TEMPFAIL), .spf = SPF(SPF_RES_TEMPERROR) }, 0, ACTION_TEMPFAIL, 44, NULL, NULL, 0 },
	{ "mail: norecords beats spf temperror", NULL, STAGE_MAIL,
	  { OUTSIDER, FROM("a@s.test"), .sc = SC(SD_NORECORDS), .spf = SPF(SPF_RES_TEMPERROR) }, 0, ACTION_REJECT, 33, NULL, NULL, 0 },
	/* MAIL: checks switched off (check_sender_domain/check_spf = no) */
	{ "mail: nothing checked", NULL, STAGE_MAIL, { OUTSIDER, FROM("a@x.test") }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "mail: only spf checked", NULL, STAGE_MAIL, { OUTSIDER, FROM("a@x.test"), .spf = SPF(SPF_RES_FAIL) },
	  0, ACTION_REJECT, 42, NULL, NULL, 0 },
	/* MAIL: our own network is never refused */
	{ "mail: trusted nxdomain", NULL, STAGE_MAIL, { TRUSTED, FROM("a@gone.test"), .sc = SC(SD_NXDOMAIN), .spf = SPF(SPF_RES_FAIL) },
	  0, ACTION_ACCEPT, 25, "", NULL, 1 },
	{ "mail: trusted temperror", NULL, STAGE_MAIL, { TRUSTED, FROM("a@x.test"), .sc = SC(SD_TEMPFAIL), .spf = SPF(SPF_RES_TEMPERROR) },
	  0, ACTION_ACCEPT, 25, "", NULL, 1 },
	/* RCPT */
	{ "rcpt: local, known", NULL, STAGE_RCPT, { OUTSIDER, FROM("a@x.test"), .rcpt = "bob@moat.test", .relay = RELAY_OK },
	  0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "rcpt: routing", NULL, STAGE_RCPT, { OUTSIDER, FROM("a@x.test"), .rcpt = "bob%other.test@moat.test", .relay = RELAY_BAD_ROUTING },
	  0, ACTION_REJECT, 8, "553 5.7.1 <bob%other.test@moat.test>: source routing and %/! addressing are not allowed", NULL, 0 },
	{ "rcpt: relay denied", NULL, STAGE_RCPT, { OUTSIDER, FROM("a@x.test"), .rcpt = "x@else.test", .nonlocal = 1, .relay = RELAY_DENIED },
	  0, ACTION_REJECT, 11, "554 5.7.1 <x@else.test>: Relay access denied", NULL, 0 },
	{ "rcpt: unknown user", NULL, STAGE_RCPT, { OUTSIDER, FROM("a@x.test"), .rcpt = "nobody@moat.test", .relay = RELAY_OK, .unknown = 1 },
	  0, ACTION_REJECT, 12, "550 5.1.1 <nobody@moat.test>: Recipient address rejected: User unknown", NULL, 0 },
	{ "rcpt: unknown but not local (trusted relaying out)", NULL, STAGE_RCPT,
	  { TRUSTED, FROM("a@moat.test"), .rcpt = "x@else.test", .nonlocal = 1, .relay = RELAY_OK, .unknown = 1 },
	  0, ACTION_ACCEPT, 25, "", NULL, 1 },
	{ "rcpt: trusted is still refused routing", NULL, STAGE_RCPT,
	  { TRUSTED, FROM("a@moat.test"), .rcpt = "a!b@moat.test", .relay = RELAY_BAD_ROUTING }, 0, ACTION_REJECT, 8, NULL, NULL, 0 },
	{ "rcpt: trusted is still refused unknown users", NULL, STAGE_RCPT,
	  { TRUSTED, FROM("a@moat.test"), .rcpt = "nobody@moat.test", .relay = RELAY_OK, .unknown = 1 },
	  0, ACTION_REJECT, 12, NULL, NULL, 0 },
	/* DATA */
	{ "data: unsigned", NULL, STAGE_DATA, { OUTSIDER, FROM("a@x.test"), .rcpts = "bob@moat.test" },
	  0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "data: no signatures", NULL, STAGE_DATA, { OUTSIDER, FROM("a@x.test"), .dkim = "" }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "data: failing signature", NULL, STAGE_DATA, { OUTSIDER, FROM("a@x.test"), .dkim = "fail:x.test" },
	  0, ACTION_REJECT, 57, "550 5.7.20 No passing DKIM signature found", NULL, 0 },
	{ "data: failing and passing", NULL, STAGE_DATA, { OUTSIDER, FROM("a@x.test"), .dkim = "fail:x.test pass:list.test" },
	  0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "data: failing and permerror", NULL, STAGE_DATA, { OUTSIDER, FROM("a@x.test"), .dkim = "permerror:y.test fail:x.test" },
	  0, ACTION_REJECT, 57, NULL, NULL, 0 },
	{ "data: failing and temperror", NULL, STAGE_DATA, { OUTSIDER, FROM("a@x.test"), .dkim = "temperror:y.test fail:x.test" },
	  0, ACTION_REJECT, 57, NULL, NULL, 0 },
	{ "data: temperror only", NULL, STAGE_DATA, { OUTSIDER, FROM("a@x.test"), .dkim = "temperror:y.test" },
	  0, ACTION_NONE, 0, NULL, NULL, 0 },
	/* issue 16: a broken signature refuses only when it is the author's own,
	 * none passes, and no list sent it on */
	{ "data: another domain's signature failing", NULL, STAGE_DATA, { OUTSIDER, FROM("a@x.test"), .dkim = "fail:list.test" },
	  0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "data: the author's subdomain failing", NULL, STAGE_DATA, { OUTSIDER, FROM("a@x.test"), .dkim = "fail:mail.x.test" },
	  0, ACTION_REJECT, 57, NULL, NULL, 0 },
	{ "data: the author's failing, list mail", NULL, STAGE_DATA,
	  { OUTSIDER, FROM("a@x.test"), .dkim = "fail:x.test", .headers = "From: a@x.test\r\nList-Id: <l.list.test>\r\n" },
	  0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "data: the author's failing, List-Post", NULL, STAGE_DATA,
	  { OUTSIDER, FROM("b@list.test"), .dkim = "fail:x.test", .headers = "From: a@x.test\r\nlist-post : <mailto:l@list.test>\r\n" },
	  0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "data: the header's From decides whose", NULL, STAGE_DATA,
	  { OUTSIDER, FROM("b@list.test"), .dkim = "fail:x.test", .headers = "From: a@x.test\r\nX-List-Id: no\r\n" },
	  0, ACTION_REJECT, 57, NULL, NULL, 0 },
	{ "data: the author's key missing (permerror)", NULL, STAGE_DATA, { OUTSIDER, FROM("a@x.test"), .dkim = "permerror:x.test" },
	  0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "data: the author's failing, from a trusted forwarder", NULL, STAGE_DATA,
	  { OUTSIDER, .forwarder = 1, FROM("a@x.test"), .dkim = "fail:x.test" }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "mail: spf fail from a trusted forwarder", NULL, STAGE_MAIL,
	  { OUTSIDER, .forwarder = 1, FROM("a@strict.test"), .spf = SPF(SPF_RES_FAIL) }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "data: trusted failing", NULL, STAGE_DATA, { TRUSTED, FROM("a@x.test"), .dkim = "fail:x.test" },
	  0, ACTION_ACCEPT, 25, "", NULL, 1 },
	/* submission (smtps_listen, submission_listen): AUTH required; an
	 * authenticated client is never refused for its sender, SPF or DKIM,
	 * and relays (checks.c makes relay ok for it) */
	{ "mail: submission without AUTH", NULL, STAGE_MAIL, { OUTSIDER, .listener = LISTENER_SUBMISSION, FROM("a@x.test") },
	  0, ACTION_REJECT, 18, "530 5.7.0 Authentication required", NULL, 0 },
	{ "mail: smtps without AUTH", NULL, STAGE_MAIL, { OUTSIDER, .listener = LISTENER_SMTPS, .tls = 1, FROM("a@x.test") },
	  0, ACTION_REJECT, 18, "530 5.7.0 Authentication required", NULL, 0 },
	{ "mail: trusted on submission without AUTH", NULL, STAGE_MAIL,
	  { TRUSTED, .listener = LISTENER_SUBMISSION, FROM("a@x.test") }, 0, ACTION_REJECT, 18, NULL, NULL, 0 },
	{ "mail: port 25 without AUTH goes on", NULL, STAGE_MAIL, { OUTSIDER, FROM("a@x.test") },
	  0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "mail: authenticated spf fail", NULL, STAGE_MAIL,
	  { OUTSIDER, .listener = LISTENER_SUBMISSION, .tls = 1, .auth = 1, .auth_user = "alice", FROM("a@gone.test"),
	    .sc = SC(SD_NXDOMAIN), .spf = SPF(SPF_RES_FAIL) }, 0, ACTION_ACCEPT, 26, "", NULL, 0 },
	{ "rcpt: authenticated relays out", NULL, STAGE_RCPT,
	  { OUTSIDER, .listener = LISTENER_SMTPS, .tls = 1, .auth = 1, .auth_user = "alice", FROM("a@x.test"),
	    .rcpt = "x@else.test", .nonlocal = 1, .relay = RELAY_OK }, 0, ACTION_ACCEPT, 26, "", NULL, 1 },
	{ "rcpt: authenticated still refused routing", NULL, STAGE_RCPT,
	  { OUTSIDER, .listener = LISTENER_SMTPS, .auth = 1, .auth_user = "alice", FROM("a@x.test"),
	    .rcpt = "a!b@moat.test", .relay = RELAY_BAD_ROUTING }, 0, ACTION_REJECT, 8, NULL, NULL, 0 },
	{ "rcpt: authenticated still refused unknown users", NULL, STAGE_RCPT,
	  { OUTSIDER, .listener = LISTENER_SMTPS, .auth = 1, .auth_user = "alice", FROM("a@x.test"),
	    .rcpt = "nobody@moat.test", .relay = RELAY_OK, .unknown = 1 }, 0, ACTION_REJECT, 12, NULL, NULL, 0 },
	{ "data: authenticated failing dkim", NULL, STAGE_DATA,
	  { OUTSIDER, .listener = LISTENER_SUBMISSION, .auth = 1, .auth_user = "alice", FROM("a@x.test"), .dkim = "fail:x.test" },
	  0, ACTION_ACCEPT, 26, "", NULL, 1 },
	/* global monitor mode: the same verdicts, logged, not enforced */
	{ "monitor: nxdomain would reject", NULL, STAGE_MAIL, { OUTSIDER, FROM("a@gone.test"), .sc = SC(SD_NXDOMAIN), .spf = SPF(SPF_RES_FAIL) },
	  1, ACTION_NONE, 0, NULL,
	  "reject monitor@30 550 5.1.8 <a@gone.test>: Sender address rejected: Domain not found; "
	  "reject monitor@42 550 5.7.23 SPF: gone.test does not allow [203.0.113.5]", 0 },
	{ "monitor: trusted still accepted", NULL, STAGE_MAIL, { TRUSTED, FROM("a@gone.test"), .sc = SC(SD_NXDOMAIN) },
	  1, ACTION_ACCEPT, 25, NULL, NULL, 1 },
};

static void test_default_policy(void **state)
{
	run_rows(default_rows, NELEM(default_rows));
}

/* ---- the language ---- */

static const struct row language_rows[] = {
	/* first match decides; tag and log collected on the way */
	{ "first match", "log tls\nreject tls \"550 5.7.1 first\"\nreject tls \"550 5.7.1 second\"\n", STAGE_MAIL,
	  { .tls = 1 }, 0, ACTION_REJECT, 2, "550 5.7.1 first", "log@1", 0 },
	{ "default replies", "tempfail tls\n", STAGE_MAIL, { .tls = 1 }, 0, ACTION_TEMPFAIL, 1,
	  "451 4.7.1 Try again later", NULL, 0 },
	{ "default reject reply", "reject tls\n", STAGE_MAIL, { .tls = 1 }, 0, ACTION_REJECT, 1,
	  "550 5.7.1 Message rejected", NULL, 0 },
	{ "tag and log go on", "tag tls header \"X-TLS: yes\"\nlog tls\ntag tls header \"X-Again: %{client}\"\n",
	  STAGE_MAIL, { .ip = "192.0.2.7", .tls = 1 }, 0, ACTION_NONE, 0, NULL,
	  "tag@1 X-TLS: yes; log@2; tag@3 X-Again: 192.0.2.7", 0 },
	{ "nothing matches", "reject tls\n", STAGE_MAIL, { .tls = 0 }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	/* stages: a rule waits for its latest fact */
	{ "mail rule not at connect", "reject client 192.0.2.0/24 and spf fail\n", STAGE_CONNECT,
	  { .ip = "192.0.2.1", .spf = SPF(SPF_RES_FAIL) }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "mail rule at mail", "reject client 192.0.2.0/24 and spf fail\n", STAGE_MAIL,
	  { .ip = "192.0.2.1", .spf = SPF(SPF_RES_FAIL) }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "connect rule not again at mail", "reject client 192.0.2.0/24\n", STAGE_MAIL,
	  { .ip = "192.0.2.1" }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "connect tag not again at mail", "tag client 192.0.2.0/24 header \"X: y\"\n", STAGE_MAIL,
	  { .ip = "192.0.2.1" }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	/* an earlier accept holds where it stands */
	{ "accept at connect ends mail rules below", "accept client 10.0.0.0/8\nreject spf fail\n", STAGE_MAIL,
	  { .ip = "10.9.9.9", .spf = SPF(SPF_RES_FAIL) }, 0, ACTION_ACCEPT, 1, NULL, NULL, 1 },
	{ "rules above an accept still run", "reject spf fail\naccept client 10.0.0.0/8\n", STAGE_MAIL,
	  { .ip = "10.9.9.9", .spf = SPF(SPF_RES_FAIL) }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "a log above an accept still logs", "log spf fail\naccept client 10.0.0.0/8\ntag spf fail header \"X: y\"\n",
	  STAGE_MAIL, { .ip = "10.9.9.9", .spf = SPF(SPF_RES_FAIL) }, 0, ACTION_ACCEPT, 2, NULL, "log@1", 1 },
	{ "accept at mail ends data rules", "accept sender @partner.test\nreject dkim fail\n", STAGE_DATA,
	  { FROM("x@partner.test"), .dkim = "fail:partner.test" }, 0, ACTION_ACCEPT, 1, NULL, NULL, 1 },
	{ "an accept that does not hold", "accept sender @partner.test\nreject dkim fail\n", STAGE_DATA,
	  { FROM("x@other.test"), .dkim = "fail:other.test" }, 0, ACTION_REJECT, 2, NULL, NULL, 0 },
	{ "accept at rcpt: that recipient", "accept rcpt postmaster@moat.test\nreject spf fail and rcpt-domain local\n",
	  STAGE_RCPT, { .spf = SPF(SPF_RES_FAIL), .rcpt = "postmaster@moat.test" }, 0, ACTION_ACCEPT, 1, NULL, NULL, 0 },
	{ "accept at rcpt: another recipient", "accept rcpt postmaster@moat.test\nreject spf fail and rcpt-domain local\n",
	  STAGE_RCPT, { .spf = SPF(SPF_RES_FAIL), .rcpt = "bob@moat.test" }, 0, ACTION_REJECT, 2, NULL, NULL, 0 },
	{ "rcpt accept at data: all recipients", "accept rcpt @moat.test\nreject dkim fail\n", STAGE_DATA,
	  { .rcpts = "a@moat.test b@moat.test", .dkim = "fail:x.test" }, 0, ACTION_ACCEPT, 1, "", NULL, 1 },
	{ "rcpt accept at data: not all recipients", "accept rcpt @moat.test\nreject dkim fail\n", STAGE_DATA,
	  { .rcpts = "a@moat.test b@other.test", .dkim = "fail:x.test" }, 0, ACTION_REJECT, 2, NULL, NULL, 0 },
	{ "monitored accept holds nothing", "accept monitor client 10.0.0.0/8\nreject spf fail\n", STAGE_MAIL,
	  { .ip = "10.9.9.9", .spf = SPF(SPF_RES_FAIL) }, 0, ACTION_REJECT, 2, NULL, NULL, 0 },
	/* recipients at data: one is enough to refuse, tag or log */
	{ "data: refuse for one recipient", "reject dkim fail and not rcpt abuse@moat.test \"550 5.7.20 for %{rcpt}\"\n",
	  STAGE_DATA, { .rcpts = "abuse@moat.test bob@moat.test", .dkim = "fail:x.test" }, 0, ACTION_REJECT, 1,
	  "550 5.7.20 for bob@moat.test", NULL, 0 },
	{ "data: the exempt recipient alone", "reject dkim fail and not rcpt abuse@moat.test\n",
	  STAGE_DATA, { .rcpts = "abuse@moat.test", .dkim = "fail:x.test" }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "data: no recipients, recipient facts false", "reject dkim fail and not rcpt abuse@moat.test\n",
	  STAGE_DATA, { .dkim = "fail:x.test" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "data: accept with data facts needs all", "accept rcpt-domain moat.test and size < 100\nreject size > 0\n",
	  STAGE_DATA, { .rcpts = "a@moat.test b@x.test", .size = 10 }, 0, ACTION_REJECT, 2, NULL, NULL, 0 },
	{ "data: accept with data facts, all", "accept rcpt-domain moat.test and size < 100\nreject size > 0\n",
	  STAGE_DATA, { .rcpts = "a@moat.test b@moat.test", .size = 10 }, 0, ACTION_ACCEPT, 1, NULL, NULL, 0 },
	/* monitor */
	{ "monitor rule goes on", "reject monitor spf fail\ntempfail spf fail\n", STAGE_MAIL,
	  { .spf = SPF(SPF_RES_FAIL) }, 0, ACTION_TEMPFAIL, 2, "451 4.7.1 Try again later",
	  "reject monitor@1 550 5.7.1 Message rejected", 0 },
	{ "global monitor", "reject spf fail\ntempfail spf fail\naccept spf fail\nreject spf fail\n", STAGE_MAIL,
	  { .spf = SPF(SPF_RES_FAIL) }, 1, ACTION_ACCEPT, 3, NULL,
	  "reject monitor@1 550 5.7.1 Message rejected; tempfail monitor@2 451 4.7.1 Try again later", 0 },
	{ "monitored tag adds nothing", "tag monitor tls header \"X: y\"\n", STAGE_MAIL, { .tls = 1 }, 0,
	  ACTION_NONE, 0, NULL, "tag monitor@1 X: y", 0 },
	{ "monitored accept", "accept monitor tls\nreject tls\n", STAGE_MAIL, { .tls = 1 }, 0,
	  ACTION_REJECT, 2, NULL, "accept monitor@1", 0 },
	/* and, or, not, parentheses */
	{ "or binds looser: a or (b and c)", "reject tls or authenticated and spf fail\n", STAGE_MAIL,
	  { .tls = 1 }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "or binds looser: b without c", "reject tls or authenticated and spf fail\n", STAGE_MAIL,
	  { .auth = 1 }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "parentheses", "reject (tls or authenticated) and spf fail\n", STAGE_MAIL,
	  { .tls = 1 }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "parentheses hold", "reject (tls or authenticated) and spf fail\n", STAGE_MAIL,
	  { .auth = 1, .spf = SPF(SPF_RES_FAIL) }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "not of an unknown fact", "reject not spf pass\n", STAGE_MAIL, { 0 }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "not not", "reject not not tls\n", STAGE_MAIL, { .tls = 1 }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "long and chain", "reject tls and tls and tls and tls and authenticated\n", STAGE_MAIL,
	  { .tls = 1 }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "long or chain", "reject spf fail or spf pass or spf none or tls\n", STAGE_MAIL,
	  { .tls = 1 }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	/* variables and expansion */
	{ "variables", "tag tls and rcpt-known header \"X-All: %{client} %{helo} %{sender} %{sender_domain} %{rcpt} %{rcpt_domain} "
	  "%{spf} %{spf_reason} | %{spf_explanation} | %{spf_domain} %{dkim} %{hostname} 100% %%{client}\"\n",
	  STAGE_RCPT, { .ip = "192.0.2.1", .tls = 1, .helo = "h.test", FROM("s@from.test"), .spf = SPF(SPF_RES_SOFTFAIL),
	  .rcpt = "r@to.test" }, 0, ACTION_NONE, 0, NULL,
	  "tag@1 X-All: 192.0.2.1 h.test s@from.test from.test r@to.test to.test softfail mechanism -all matched | "
	  "from.test does not allow [192.0.2.1] | from.test  mx.moat.test 100% %{client}", 0 },
	{ "variables not known yet are empty", "tag tls header \"X: [%{helo}] [%{sender}] [%{rcpt}] [%{spf}] [%{dkim}]\"\n",
	  STAGE_MAIL, { .tls = 1 }, 0, ACTION_NONE, 0, NULL, "tag@1 X: [] [] [] [] []", 0 },
	{ "dkim variable", "reject dkim temperror \"550 5.7.1 dkim=%{dkim}\"\n", STAGE_DATA,
	  { .dkim = "temperror:a.test neutral:b.test" }, 0, ACTION_REJECT, 1, "550 5.7.1 dkim=temperror", NULL, 0 },
	{ "control bytes never reach a reply", "reject helo /evil/ \"550 5.7.1 no %{helo}\"\n", STAGE_HELO,
	  { .helo = "evil\r\nX-Injected: 1" }, 0, ACTION_REJECT, 1, "550 5.7.1 no evil??X-Injected: 1", NULL, 0 },
};

static void test_language(void **state)
{
	run_rows(language_rows, NELEM(language_rows));
}

/* ---- every fact ---- */

static const struct row fact_rows[] = {
	{ "client v4", "reject client 192.0.2.0/24\n", STAGE_CONNECT, { .ip = "192.0.2.200" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "client v4 outside", "reject client 192.0.2.0/24\n", STAGE_CONNECT, { .ip = "192.0.3.1" }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "client v4-mapped", "reject client 192.0.2.0/24\n", STAGE_CONNECT, { .ip = "::ffff:192.0.2.9" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "client v6", "reject client 2001:db8::/32\n", STAGE_CONNECT, { .ip = "2001:db8:1::5" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "client v6 host", "reject client 2001:db8::5\n", STAGE_CONNECT, { .ip = "2001:db8::6" }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "client unknown", "reject client 0.0.0.0/0\n", STAGE_CONNECT, { 0 }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "client trusted", "reject client trusted\n", STAGE_CONNECT, { .ip = "192.0.2.1", .trusted = 1 }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "rdns name", "reject rdns mail.Example.com\n", STAGE_CONNECT, { .rdns = "MAIL.example.COM." }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "rdns name other", "reject rdns mail.example.com\n", STAGE_CONNECT, { .rdns = "mx.example.com" }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "rdns suffix", "reject rdns .dynamic.test\n", STAGE_CONNECT, { .rdns = "1-2-3-4.pool.dynamic.test" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "rdns suffix: not the domain itself", "reject rdns .dynamic.test\n", STAGE_CONNECT, { .rdns = "dynamic.test" }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "rdns suffix: label boundary", "reject rdns .dynamic.test\n", STAGE_CONNECT, { .rdns = "xdynamic.test" }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "rdns none: NULL", "reject rdns none\n", STAGE_CONNECT, { 0 }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "rdns none: empty", "reject rdns none\n", STAGE_CONNECT, { .rdns = "" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "rdns none: has a name", "reject rdns none\n", STAGE_CONNECT, { .rdns = "a.test" }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "rdns name, none known", "reject rdns a.test\n", STAGE_CONNECT, { 0 }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "tls", "reject tls\n", STAGE_MAIL, { .tls = 1 }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "authenticated", "reject authenticated\n", STAGE_MAIL, { .auth = 1 }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "authenticated: a mail fact", "reject authenticated\n", STAGE_CONNECT, { .auth = 1 }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "not authenticated", "reject not authenticated\n", STAGE_MAIL, { .tls = 1 }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "auth-user", "reject auth-user Alice\n", STAGE_MAIL, { .auth = 1, .auth_user = "ALICE" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "auth-user other", "reject auth-user alice\n", STAGE_MAIL, { .auth = 1, .auth_user = "alice2" }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "auth-user an address", "reject auth-user alice@Example.com\n", STAGE_MAIL,
	  { .auth = 1, .auth_user = "alice@example.COM" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "auth-user a trailing dot is not dropped", "reject auth-user alice.\n", STAGE_MAIL,
	  { .auth = 1, .auth_user = "alice" }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "auth-user @domain", "reject auth-user @example.com\n", STAGE_MAIL,
	  { .auth = 1, .auth_user = "bob@Example.com" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "auth-user @domain: a name without one", "reject auth-user @example.com\n", STAGE_MAIL,
	  { .auth = 1, .auth_user = "bob" }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "auth-user regex", "reject auth-user /^adm/\n", STAGE_MAIL, { .auth = 1, .auth_user = "admin" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "auth-user not authenticated", "reject not auth-user alice\n", STAGE_MAIL, { 0 }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "auth-user binds a sender domain", "reject auth-user alice and not sender-domain example.com \"553 5.7.1 %{auth_user} may not send as <%{sender}>\"\n",
	  STAGE_MAIL, { .auth = 1, .auth_user = "alice", FROM("alice@else.test") }, 0, ACTION_REJECT, 1,
	  "553 5.7.1 alice may not send as <alice@else.test>", NULL, 0 },
	{ "auth-user binds: the right domain", "reject auth-user alice and not sender-domain example.com\n",
	  STAGE_MAIL, { .auth = 1, .auth_user = "alice", FROM("alice@example.com") }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "listener smtp", "reject listener smtp\n", STAGE_CONNECT, { 0 }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "listener submission", "reject listener submission\n", STAGE_CONNECT, { .listener = LISTENER_SUBMISSION },
	  0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "listener smtps, not submission", "reject listener submission\n", STAGE_CONNECT, { .listener = LISTENER_SMTPS },
	  0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "helo name", "reject helo localhost\n", STAGE_HELO, { .helo = "LocalHost" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "helo suffix", "reject helo .example.com\n", STAGE_HELO, { .helo = "mx.example.com" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "helo regex", "reject helo /^\\[?[0-9.]+\\]?$/\n", STAGE_HELO, { .helo = "[192.0.2.1]" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "helo regex no", "reject helo /^\\[?[0-9.]+\\]?$/\n", STAGE_HELO, { .helo = "mx.example.com" }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "helo regex ignores case", "reject helo /^MX\\./\n", STAGE_HELO, { .helo = "mx.example.com" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "helo before HELO", "reject not helo x.test\n", STAGE_HELO, { 0 }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "sender address", "reject sender Bob@Example.com\n", STAGE_MAIL, { FROM("bob@EXAMPLE.com") }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "sender address other", "reject sender bob@example.com\n", STAGE_MAIL, { FROM("bob@example.org") }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "sender @domain", "reject sender @example.com\n", STAGE_MAIL, { FROM("anyone@example.com") }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "sender @domain: not subdomains", "reject sender @example.com\n", STAGE_MAIL, { FROM("a@sub.example.com") }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "sender null", "reject sender null\n", STAGE_MAIL, { FROM("") }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "sender null: not before MAIL", "reject sender null\n", STAGE_MAIL, { 0 }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "sender null: a real sender", "reject sender null\n", STAGE_MAIL, { FROM("a@b.test") }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "sender address: null sender", "reject sender @b.test\n", STAGE_MAIL, { FROM("") }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "sender-domain", "reject sender-domain example.com\n", STAGE_MAIL, { FROM("a@Example.COM") }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "sender-domain suffix", "reject sender-domain .example.com\n", STAGE_MAIL, { FROM("a@x.example.com") }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "sender-domain null sender", "reject sender-domain .test\n", STAGE_MAIL, { FROM("") }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "sender-check none", "reject sender-check none\n", STAGE_MAIL, { FROM(""), .sc = SC(SD_NONE) }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "sender-check pass", "reject sender-check pass\n", STAGE_MAIL, { .sc = SC(SD_PASS) }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "sender-check not checked", "reject sender-check pass\n", STAGE_MAIL, { 0 }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "spf neutral", "reject spf neutral\n", STAGE_MAIL, { .spf = SPF(SPF_RES_NEUTRAL) }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "spf none", "reject spf none\n", STAGE_MAIL, { .spf = SPF(SPF_RES_NONE) }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "spf none: not checked", "reject spf none\n", STAGE_MAIL, { 0 }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "rcpt", "reject rcpt Bob@Moat.test\n", STAGE_RCPT, { .rcpt = "bob@moat.test" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "rcpt @domain", "reject rcpt @moat.test\n", STAGE_RCPT, { .rcpt = "x@moat.test" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "rcpt at mail: not known yet", "reject rcpt @moat.test\nreject not rcpt @moat.test\n", STAGE_RCPT,
	  { 0 }, 0, ACTION_REJECT, 2, NULL, NULL, 0 },
	{ "rcpt-domain local", "reject rcpt-domain local\n", STAGE_RCPT, { .rcpt = "x@moat.test" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "rcpt-domain not local", "reject rcpt-domain local\n", STAGE_RCPT, { .rcpt = "x@else.test", .nonlocal = 1 }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "rcpt-domain name", "reject rcpt-domain else.test\n", STAGE_RCPT, { .rcpt = "x@ELSE.test", .nonlocal = 1 }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "rcpt-domain postmaster has none", "reject rcpt-domain .test\n", STAGE_RCPT, { .rcpt = "Postmaster" }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "relay ok", "reject relay ok\n", STAGE_RCPT, { .rcpt = "x@moat.test", .relay = RELAY_OK }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "relay denied", "reject relay denied\n", STAGE_RCPT, { .rcpt = "x@moat.test", .relay = RELAY_OK }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "rcpt-known", "reject rcpt-known\n", STAGE_RCPT, { .rcpt = "x@moat.test" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "rcpt-known unknown", "reject rcpt-known\n", STAGE_RCPT, { .rcpt = "x@moat.test", .unknown = 1 }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "dkim pass", "reject dkim pass\n", STAGE_DATA, { .dkim = "fail:a.test pass:b.test" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "dkim none", "reject dkim none\n", STAGE_DATA, { .dkim = "" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "dkim none: not checked", "reject dkim none\n", STAGE_DATA, { 0 }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "dkim neutral", "reject dkim neutral\n", STAGE_DATA, { .dkim = "neutral:a.test" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "dkim permerror", "reject dkim permerror\n", STAGE_DATA, { .dkim = "permerror:a.test neutral:b.test" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "dkim-domain: passing", "reject dkim-domain partner.test\n", STAGE_DATA, { .dkim = "pass:Partner.Test" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "dkim-domain: failing is not enough", "reject dkim-domain partner.test\n", STAGE_DATA, { .dkim = "fail:partner.test" }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "dkim-domain: the second signature", "reject dkim-domain .partner.test\n", STAGE_DATA,
	  { .dkim = "pass:x.test pass:mail.partner.test" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "dkim-signer: any result", "reject dkim-signer lists.test\n", STAGE_DATA, { .dkim = "fail:lists.test" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "dkim-signer: other", "reject dkim-signer lists.test\n", STAGE_DATA, { .dkim = "fail:x.test" }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "header", "reject header subject /v[i1]agra/\n", STAGE_DATA,
	  { .headers = "From: a@b.test\r\nSubject: Cheap V1AGRA\r\n\r\nSubject: body, not header\r\n" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "header: any instance", "reject header X-Tag /^spam$/\n", STAGE_DATA,
	  { .headers = "X-Tag: ham\r\nx-tag: spam\r\n\r\n" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "header: folded", "reject header Subject /hello world/\n", STAGE_DATA,
	  { .headers = "Subject: hello\r\n world\r\n\r\n" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "header: body is not header", "reject header Subject /body/\n", STAGE_DATA,
	  { .headers = "From: a@b.test\r\nSubject: Cheap V1AGRA\r\n\r\nSubject: body, not header\r\n" }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "header: absent", "reject header Subject /./\n", STAGE_DATA, { .headers = "From: a\r\n\r\n" }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "size >", "reject size > 1k\n", STAGE_DATA, { .size = 1025 }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "size > equal", "reject size > 1k\n", STAGE_DATA, { .size = 1024 }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "size <", "reject size <2M\n", STAGE_DATA, { .size = 2097151 }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
	{ "size < equal", "reject size <2M\n", STAGE_DATA, { .size = 2097152 }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
	{ "size G", "reject size > 1G\n", STAGE_DATA, { .size = 1073741825 }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
};

static void test_facts(void **state)
{
	run_rows(fact_rows, NELEM(fact_rows));
}

/* ---- lists through rules ---- */

static void test_lists(void **state)
{
	char nets[] = "/tmp/moat-test-nets-XXXXXX", doms[] = "/tmp/moat-test-doms-XXXXXX",
	     addrs[] = "/tmp/moat-test-addrs-XXXXXX", text[512], err[512];
	int fd;

	assert_true((fd = mkstemp(nets)) >= 0);
	assert_int_equal(write(fd, "10.0.0.0/8\n2001:db8::/32\n", 25), 25);
	close(fd);
	assert_true((fd = mkstemp(doms)) >= 0);
	assert_int_equal(write(fd, "partner.test\n.lists.test\n", 25), 25);
	close(fd);
	assert_true((fd = mkstemp(addrs)) >= 0);
	assert_int_equal(write(fd, "bob@moat.test\n@vip.test\n", 24), 24);
	close(fd);
	snprintf(text, sizeof text,
	         "reject client list:%s \"554 5.7.1 Your network is blocked\"\n"
	         "reject rdns list:%s\n"
	         "reject helo list:%s\n"
	         "reject sender list:%s\n"
	         "reject sender-domain list:%s\n"
	         "reject dkim fail and not dkim-signer list:%s\n"
	         "reject rcpt list:%s\n"
	         "reject rcpt-domain list:%s\n"
	         "reject dkim-domain list:%s\n",
	         nets, doms, doms, addrs, doms, doms, addrs, doms, doms);
	struct ruleset *rs = ruleset_load_text(text, strlen(text), "t.rules", checks_vocab(), err, sizeof err);
	char d[256];

	if (!rs)
		fail_msg("%s", err);
	ruleset_describe(rs, d, sizeof d);
	assert_string_equal(d, "9 rules (connect 2, helo 1, mail 2, rcpt 2, data 2), 3 lists, 6 list entries");
	const struct row list_rows[] = {
		{ "client list", text, STAGE_CONNECT, { .ip = "10.2.3.4" }, 0, ACTION_REJECT, 1,
		  "554 5.7.1 Your network is blocked", NULL, 0 },
		{ "client list v6", text, STAGE_CONNECT, { .ip = "2001:db8::1" }, 0, ACTION_REJECT, 1, NULL, NULL, 0 },
		{ "client list no", text, STAGE_CONNECT, { .ip = "192.0.2.1" }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
		{ "rdns list", text, STAGE_CONNECT, { .ip = "192.0.2.1", .rdns = "a.lists.test" }, 0, ACTION_REJECT, 2, NULL, NULL, 0 },
		{ "helo list", text, STAGE_HELO, { .helo = "Partner.Test." }, 0, ACTION_REJECT, 3, NULL, NULL, 0 },
		{ "sender list", text, STAGE_MAIL, { FROM("x@VIP.test") }, 0, ACTION_REJECT, 4, NULL, NULL, 0 },
		{ "sender-domain list", text, STAGE_MAIL, { FROM("x@partner.test") }, 0, ACTION_REJECT, 5, NULL, NULL, 0 },
		{ "sender-domain list no", text, STAGE_MAIL, { FROM("x@sub.partner.test") }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
		{ "dkim-signer exempt", text, STAGE_DATA, { .dkim = "fail:x.lists.test" }, 0, ACTION_NONE, 0, NULL, NULL, 0 },
		{ "dkim-signer not exempt", text, STAGE_DATA, { .dkim = "fail:x.test" }, 0, ACTION_REJECT, 6, NULL, NULL, 0 },
		{ "rcpt list", text, STAGE_RCPT, { .rcpt = "bob@moat.test" }, 0, ACTION_REJECT, 7, NULL, NULL, 0 },
		{ "rcpt-domain list", text, STAGE_RCPT, { .rcpt = "x@m.lists.test" }, 0, ACTION_REJECT, 8, NULL, NULL, 0 },
		{ "dkim-domain list", text, STAGE_DATA, { .dkim = "pass:partner.test" }, 0, ACTION_REJECT, 9, NULL, NULL, 0 },
	};
	run_rows(list_rows, NELEM(list_rows));
	ruleset_unref(rs);
	unlink(nets);
	unlink(doms);
	unlink(addrs);
}

/* ---- hits, reasons, file names ---- */

static void test_hits(void **state)
{
	char text[2048] = "", err[512];
	struct rule_decision *d = malloc(sizeof *d);
	struct built *b = malloc(sizeof *b);
	struct ruleset *rs;

	assert_non_null(d);
	assert_non_null(b);
	for (int i = 0; i < RULES_HITS_MAX + 4; i++)
		strcat(text, "log tls\n");
	strcat(text, "reject tls and authenticated\n");
	strcat(text, "tempfail tls note \"%{helo}\"\n");
	rs = ruleset_load_text(text, strlen(text), "t.rules", checks_vocab(), err, sizeof err);
	assert_non_null(rs);
	build(&(struct fx){ .tls = 1 }, b);
	assert_int_equal(rules_eval(rs, STAGE_MAIL, &b->f, 0, d), ACTION_TEMPFAIL);
	assert_int_equal(d->nhits, RULES_HITS_MAX);
	assert_int_equal(d->hits_dropped, 4);
	assert_int_equal(d->hits[0].line, 1);
	assert_string_equal(d->hits[0].reason, "tls");     /* no note: the condition */
	assert_int_equal(d->decided.line, RULES_HITS_MAX + 6);
	assert_string_equal(d->decided.reason, "tls");     /* the note came out empty */
	assert_int_equal(d->decided.stage, STAGE_MAIL);
	b->f.helo = "h.test";
	rules_eval(rs, STAGE_MAIL, &b->f, 0, d);
	assert_string_equal(d->decided.reason, "h.test");
	ruleset_unref(rs);

	/* the default policy's notes are checks.c's log reasons */
	rs = ruleset_load_default(checks_vocab(), err, sizeof err);
	build(&(struct fx){ OUTSIDER, FROM("a@x.test"), .spf = SPF(SPF_RES_FAIL) }, b);
	rules_eval(rs, STAGE_MAIL, &b->f, 0, d);
	assert_string_equal(d->decided.reason, "mechanism -all matched");
	b->spf.reason[0] = '\0';
	rules_eval(rs, STAGE_MAIL, &b->f, 0, d);
	assert_string_equal(d->decided.reason, "spf fail and not client forwarder");
	build(&(struct fx){ OUTSIDER, .rcpt = "x@else.test", .relay = RELAY_DENIED }, b);
	rules_eval(rs, STAGE_RCPT, &b->f, 0, d);
	assert_string_equal(d->decided.reason, "relay denied");

	/* no ruleset, no facts: nothing to decide */
	assert_int_equal(rules_eval(NULL, STAGE_MAIL, &b->f, 0, d), ACTION_NONE);
	assert_int_equal(rules_eval(rs, STAGE_MAIL, NULL, 0, d), ACTION_NONE);
	ruleset_unref(rs);
	free(d);
	free(b);

	assert_string_equal(rules_stage_name(STAGE_RCPT), "rcpt");
	assert_string_equal(rules_action_name(ACTION_TEMPFAIL), "tempfail");
}

/* ---- the header splitter ---- */

static void test_split_headers(void **state)
{
	static const struct {
		const char *in;
		const char *want; /* "name=value|name=value" */
	} rows[] = {
		{ "Subject: hi\r\nFrom: a@b\r\n\r\nbody: x\r\n", "Subject=hi|From=a@b" },
		{ "Subject: hi\nFrom: a@b\n\nbody: x\n", "Subject=hi|From=a@b" },
		{ "Subject: one\r\n two\r\n\tthree\r\nX: y\r\n\r\n", "Subject=one two\tthree|X=y" },
		{ "Subject:\r\n folded only\r\n\r\n", "Subject=folded only" },
		{ "Subject :  spaced  \r\n\r\n", "Subject=spaced" },
		{ "Empty:\r\nX: y", "Empty=|X=y" },
		{ "X: no end of line", "X=no end of line" },
		{ " leading continuation\r\nX: y\r\n", "" },
		{ "not a field\r\nX: y\r\n", "" },
		{ "X: y\r\nnot a field\r\nZ: w\r\n", "X=y" },
		{ "", "" },
		{ "\r\nX: y\r\n", "" },
	};
	struct rule_header h[8];
	char buf[256], got[512];

	for (size_t i = 0; i < NELEM(rows); i++) {
		size_t len = strlen(rows[i].in), n;

		memcpy(buf, rows[i].in, len + 1);
		n = rules_split_headers(buf, len, h, NELEM(h));
		got[0] = '\0';
		for (size_t j = 0; j < n; j++) {
			size_t k = strlen(got);

			snprintf(got + k, sizeof got - k, "%s%s=%s", j ? "|" : "", h[j].name, h[j].value);
		}
		if (strcmp(got, rows[i].want) != 0)
			fail_msg("row %zu: got \"%s\", want \"%s\"", i, got, rows[i].want);
	}
	/* at most max fields */
	strcpy(buf, "A: 1\r\nB: 2\r\nC: 3\r\n\r\n");
	assert_int_equal(rules_split_headers(buf, strlen(buf), h, 2), 2);
	assert_string_equal(h[1].value, "2");
}

/* /metrics counts each registry row's results: a row past the bound would be
 * missing from it without a word. */
static void test_registry_fits_the_metrics(void **state)
{
	size_t n;

	(void)state;
	checks_registry(&n);
	assert_true(n <= MOAT_METRICS_CHECKS_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_policy),
		cmocka_unit_test(test_language),
		cmocka_unit_test(test_facts),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_hits),
		cmocka_unit_test(test_split_headers),
		cmocka_unit_test(test_registry_fits_the_metrics),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
