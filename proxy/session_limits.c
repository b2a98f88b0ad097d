/* session_limits.c - greylisting and rate limits in a session: what the
 * greylist and ratelimit rules asked for, applied through the store
 * (store.h) before the session goes on.
 *
 * MAIL: each messages limit adds 1 to its count (add-then-check: exact
 * when replicas race, each addition being atomic in the store); a count
 * over the limit refuses the transaction (451 4.7.1, with delay_reject at
 * each RCPT) and every addition of that MAIL is given back, so a refused
 * attempt does not count. With delay_reject the MAIL's refusal is only
 * answered at the first RCPT: its counts are sent then, with that RCPT's
 * calls (one round trip a message, not two), and decided first. The message is held until it is delivered: a
 * transaction that ends without delivery gives it back too.
 * RCPT: greylisting (the triplet of this recipient) and each recipients
 * limit the same way, sent together (one round trip to Redis, not two);
 * a greylisted recipient gives its counts back, and a recipient the
 * backend refuses too.
 *
 * The store answers later, from the loop; the session is busy meanwhile
 * (other sessions go on), and a transaction that ends (RSET, the client
 * gone) cancels what it still waits for. The store fails open: greylisting
 * answers "skipped", counts fall back to this process's. A give-back is
 * sent without waiting for its answer (and lost if the window ended
 * meanwhile: the count expires with it). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/decision.h"
#include "proxy/greylist.h"
#include "proxy/lib/text.h"
#include "proxy/ratelimit.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/store.h"

/* an address as the rules see it: local part, '@', domain */
#define RULE_FORM_MAX (sizeof(((struct smtp_path *)0)->local) + sizeof(((struct smtp_path *)0)->ascii_domain) + 1)

struct held {
	char key[STORE_KEY_MAX];
	int window;
	long long reset_at;
};

struct call {
	struct txn_limits *tl;
	int mail;                      /* a messages count (MAIL), else a recipients count */
	struct store_req *req;
	struct rule_limit lim;
	struct held h;
	struct store_count got;
	int answered;
};

struct txn_limits {
	struct session *s;
	struct verdict v;              /* the stage's verdict, completed here */
	limits_done_fn done;
	int rcpt;                      /* RCPT's calls (maybe with the MAIL's), else MAIL's alone */
	int mail_later;                /* delay_reject: the MAIL's counts go with the first RCPT's */
	struct verdict mail_v;         /* the MAIL's verdict, for its limits, until then */
	struct store_req *grey;        /* greylisting in flight */
	int rgrey_asked;               /* RCPT: the triplet was asked about */
	enum rule_grey rgrey;          /* RCPT: its answer */
	long long rretry;              /* RCPT: seconds until its retry passes */
	/* greylisting at the end of data: each accepted recipient in turn */
	size_t gi;                     /* the recipient asked about */
	int grefused;                  /* one is not passed: the message gets 451 */
	long long gretry;              /* the longest wait of those */
	char net[64], sender[RULE_FORM_MAX];
	int ncalls, pending;
	int nmsgs, nrcpts;
	/* the arrays last: only their first ncalls, nmsgs, nrcpts are ever read,
	 * and are not zeroed (14 KiB a transaction: limits_of) */
	struct call calls[2 * RULES_LIMITS_MAX]; /* the MAIL's and a RCPT's */
	struct held msgs[RULES_LIMITS_MAX]; /* messages counted at MAIL, until delivered */
	struct held rcpts[RULES_LIMITS_MAX]; /* the RCPT's recipient, until the backend takes it */
};

/* A give-back: its answer is not waited for. */
static void given_back(void *arg, const struct store_count *c)
{
	(void)arg;
	(void)c;
}

static void give_back(struct session *s, struct held *h, int n)
{
	long long now = (long long)time(NULL);

	for (int i = 0; i < n; i++)
		if (now < h[i].reset_at) /* same window: the next one starts at zero anyway */
			store_count(s->srv->store, h[i].key, -1, h[i].window, given_back, NULL);
}

static struct txn_limits *limits_of(struct session *s)
{
	struct txn *tx = s->tx;

	if (!tx->limits && (tx->limits = malloc(sizeof *tx->limits))) {
		memset(tx->limits, 0, offsetof(struct txn_limits, calls));
		tx->limits->s = s;
	}
	return tx->limits;
}

/* The addresses as the rules see them: domain in A-labels, local part as sent. */
static void rule_form(const struct smtp_path *p, char *buf, size_t size)
{
	if (p->null)
		buf[0] = '\0';
	else if (p->domain[0] && !(p->flags & PATH_LITERAL))
		snprintf(buf, size, "%s@%s", p->local, p->ascii_domain);
	else
		text_copy(buf, size, p->mailbox);
}

/* ---- counting ---- */

/* The limit refused: tl->v becomes its 451. */
static void over_verdict(struct txn_limits *tl, const struct call *over)
{
	struct session *s = tl->s;
	const char *subject = ratelimit_subject(&over->lim, s->peer_ip, s->tx->from.ascii_domain, s->auth_user);
	char arg[400], per[48];
	struct verdict *v = &tl->v;

	ratelimit_text(&over->lim, subject ? subject : "", over->h.reset_at, (long long)time(NULL), arg, sizeof arg);
	v->code = replies[R_RATE_LIMITED].code;
	text_copy(v->esc, sizeof v->esc, replies[R_RATE_LIMITED].esc);
	reply_text(v->text, (int)sizeof v->text, R_RATE_LIMITED, s->cfg->hostname, arg);
	ratelimit_window_text(over->lim.window, per, sizeof per);
	/* counted by this moat alone while Redis is down (fail open) */
	snprintf(v->reason, sizeof v->reason, "rate limit: %ld %s %s per %s (%s)%s", over->lim.max,
	         rules_limit_unit_name(over->lim.unit), per, rules_limit_key_name(over->lim.key),
	         subject ? subject : "",
	         !over->got.shared && store_redis_up(s->srv->store) >= 0 ? ", counted by this moat alone" : "");
	v->rule_file = over->lim.file;
	v->rule_line = over->lim.line;
	v->rule_id = over->lim.id;
}

/* The first answered count of kind mail over its limit, or NULL. */
static const struct call *over_of(const struct txn_limits *tl, int mail)
{
	for (int i = 0; i < tl->ncalls; i++)
		if (tl->calls[i].mail == mail && tl->calls[i].answered && tl->calls[i].got.count > tl->calls[i].lim.max)
			return &tl->calls[i];
	return NULL;
}

/* Keep the answered counts of kind mail (refused: give them back). */
static void counts_keep(struct txn_limits *tl, int mail, int refused)
{
	struct held *keep = mail ? tl->msgs : tl->rcpts;
	int *nkeep = mail ? &tl->nmsgs : &tl->nrcpts;

	for (int i = 0; i < tl->ncalls; i++) {
		struct call *c = &tl->calls[i];

		if (!c->answered || c->mail != mail)
			continue;
		if (refused)
			give_back(tl->s, &c->h, 1); /* a refused attempt does not count */
		else if (*nkeep < RULES_LIMITS_MAX)
			keep[(*nkeep)++] = c->h;
	}
}

/* The MAIL's counts answered (alone, or with the first RCPT's calls): 1
 * when one is over its limit (the transaction refused, tl->v its 451 and
 * the MAIL's verdict from now on; every count given back). */
static int mail_counts_done(struct txn_limits *tl)
{
	const struct call *over = over_of(tl, 1);

	counts_keep(tl, 1, over != NULL);
	if (!over)
		return 0;
	counts_keep(tl, 0, 1);
	if (tl->rcpt)
		tl->v = tl->mail_v; /* the MAIL's verdict, as if counted at MAIL */
	over_verdict(tl, over);
	if (tl->rcpt)
		tl->s->tx->mail_v = tl->v; /* delay_reject: it answers each RCPT */
	return 1;
}

/* The RCPT's counts answered: refused when one is over its limit. */
static void rcpt_counts_done(struct txn_limits *tl)
{
	const struct call *over = over_of(tl, 0);

	tl->nrcpts = 0;
	counts_keep(tl, 0, over != NULL);
	if (over)
		over_verdict(tl, over);
}

static void rcpt_answered(struct txn_limits *tl);

static void counted(void *arg, const struct store_count *c)
{
	struct call *call = arg;
	struct txn_limits *tl = call->tl;

	call->req = NULL;
	call->answered = 1;
	call->got = *c;
	call->h.reset_at = c->reset_at;
	if (--tl->pending > 0)
		return;
	if (tl->rcpt) {
		rcpt_answered(tl);
		return;
	}
	mail_counts_done(tl);
	tl->ncalls = 0;
	tl->done(tl->s, &tl->v);
}

/* Add 1 for each of v's limits that applies (mail: messages limits,
 * else recipients), after the calls already in tl. */
static void counts_add(struct txn_limits *tl, const struct verdict *v, int mail)
{
	struct session *s = tl->s;
	int first = tl->ncalls;

	for (int i = 0; i < v->nlimits && i < RULES_LIMITS_MAX; i++) {
		const char *subject = ratelimit_subject(&v->limits[i], s->peer_ip, s->tx->from.ascii_domain,
		                                        s->auth_user);
		struct call *c = &tl->calls[tl->ncalls];
		int dup = 0;

		if (!subject)
			continue;
		memset(c, 0, sizeof *c);
		c->tl = tl;
		c->mail = mail;
		c->lim = v->limits[i];
		c->h.window = v->limits[i].window;
		ratelimit_key(&c->lim, subject, c->h.key);
		for (int k = first; k < tl->ncalls; k++)
			dup |= strcmp(tl->calls[k].h.key, c->h.key) == 0; /* two rules, one limit: counted once */
		if (!dup)
			tl->ncalls++;
	}
}

/* Send the calls counts_add made; 1: the answers will come, 0: none. */
static int counts_send(struct txn_limits *tl)
{
	struct session *s = tl->s;

	for (int i = 0; i < tl->ncalls; i++) {
		struct call *c = &tl->calls[i];

		tl->pending++; /* before the call: the answer never comes before it returns */
		if (!(c->req = store_count(s->srv->store, c->h.key, 1, c->h.window, counted, c)))
			tl->pending--; /* not even a request: not counted (fail open) */
	}
	return tl->pending > 0;
}

/* ---- greylisting ---- */

/* RCPT: the recipient greylisted (its counts already given back). */
static void rcpt_greylisted(struct txn_limits *tl)
{
	struct session *s = tl->s;
	enum rule_grey g = tl->rgrey;
	char secs[24], reason[160];
	struct decision d = {.stage = STAGE_RCPT, .reason = reason, .greylist = rules_grey_name(g),
	                     .rule_file = tl->v.grey.file, .rule_line = tl->v.grey.line, .rule_id = tl->v.grey.id};

	snprintf(secs, sizeof secs, "%lld", tl->rretry > 0 ? tl->rretry : 1);
	snprintf(reason, sizeof reason, "greylisted (%s): %s", g == GREY_FIRST ? "first time" : "too early",
	         tl->v.grey.reason);
	session_reply(s, R_GREYLISTED, secs);
	decision_set_reply(&d, R_GREYLISTED);
	session_log_line(s, &d, s->tx->rcpt_log);
	session_resume(s);
}

/* RCPT: once the triplet and every count have answered, the MAIL's
 * counts sent with them decide first (as if counted at MAIL), then
 * greylisting (a greylisted recipient does not count: its counts are given
 * back), then the recipients counts. */
static void rcpt_answered(struct txn_limits *tl)
{
	if (tl->grey || tl->pending)
		return;
	if (!mail_counts_done(tl) && !tl->v.code && tl->rgrey_asked &&
	    (tl->rgrey == GREY_FIRST || tl->rgrey == GREY_EARLY)) {
		counts_keep(tl, 0, 1);
		tl->ncalls = 0;
		rcpt_greylisted(tl);
		return;
	}
	if (!tl->v.code)
		rcpt_counts_done(tl);
	tl->ncalls = 0;
	tl->done(tl->s, &tl->v);
}

static void greylisted(void *arg, enum store_grey state, long long retry_in)
{
	struct txn_limits *tl = arg;

	tl->grey = NULL;
	tl->rgrey = greylist_state(state);
	tl->rretry = retry_in;
	checks_rcpt_greylisted(tl->s->chk, tl->rgrey);
	rcpt_answered(tl);
}

/* ---- greylisting at the end of data: every recipient ---- */

static void data_greylisted(void *arg, enum store_grey state, long long retry_in);

/* Ask about the next recipient's triplet: 1, or 0 when none is left. */
static int data_grey_next(struct txn_limits *tl)
{
	struct session *s = tl->s;
	char tkey[STORE_KEY_MAX], ckey[STORE_KEY_MAX];
	struct store_grey_params gp;
	const char *rcpt;

	greylist_params(s->cfg, &gp);
	for (; (rcpt = checks_rcpt_addr(s->chk, tl->gi)); tl->gi++) {
		greylist_keys(tl->net, tl->sender, rcpt, tkey, ckey);
		if ((tl->grey = store_greylist(s->srv->store, tkey, ckey, &gp, data_greylisted, tl)))
			return 1;
		checks_rcpt_greylisted_at(s->chk, tl->gi, GREY_SKIPPED); /* no request: fail open */
	}
	return 0;
}

static void data_greylisted(void *arg, enum store_grey state, long long retry_in)
{
	struct txn_limits *tl = arg;
	enum rule_grey g = greylist_state(state);
	struct verdict *v = &tl->v;
	char secs[24];

	tl->grey = NULL;
	checks_rcpt_greylisted_at(tl->s->chk, tl->gi, g);
	if (g == GREY_FIRST || g == GREY_EARLY) {
		tl->grefused = 1;
		if (retry_in > tl->gretry)
			tl->gretry = retry_in;
	}
	tl->gi++;
	if (data_grey_next(tl))
		return;
	if (tl->grefused) { /* every triplet was recorded: the retry passes for all */
		snprintf(secs, sizeof secs, "%lld", tl->gretry > 0 ? tl->gretry : 1);
		v->code = replies[R_GREYLISTED].code;
		text_copy(v->esc, sizeof v->esc, replies[R_GREYLISTED].esc);
		reply_text(v->text, (int)sizeof v->text, R_GREYLISTED, tl->s->cfg->hostname, secs);
		snprintf(v->reason, sizeof v->reason, "greylisted: %s", v->grey.reason);
		v->rule_file = v->grey.file;
		v->rule_line = v->grey.line;
		v->rule_id = v->grey.id;
	}
	tl->done(tl->s, v);
}

int session_limits_data(struct session *s, const struct verdict *v, limits_done_fn done)
{
	struct txn_limits *tl;

	if (v->code || !v->greylist)
		return 0;
	if (!s->srv->store || !(tl = limits_of(s)) || greylist_network(&s->peer.sa, tl->net, sizeof tl->net) < 0) {
		for (size_t i = 0; i < checks_nrcpts(s->chk); i++) /* fail open */
			checks_rcpt_greylisted_at(s->chk, i, GREY_SKIPPED);
		return 0;
	}
	rule_form(&s->tx->from, tl->sender, sizeof tl->sender);
	tl->v = *v;
	tl->done = done;
	tl->gi = 0;
	tl->grefused = 0;
	tl->gretry = 0;
	return data_grey_next(tl);
}

/* ---- the session's hooks ---- */

int session_limits_mail(struct session *s, const struct verdict *v, limits_done_fn done)
{
	struct txn_limits *tl;

	if (v->code || !v->nlimits || !s->srv->store || !(tl = limits_of(s)))
		return 0;
	tl->v = *v;
	tl->done = done;
	tl->rcpt = 0;
	tl->ncalls = tl->pending = 0;
	counts_add(tl, v, 1);
	return counts_send(tl);
}

void session_limits_mail_later(struct session *s, const struct verdict *v)
{
	struct txn_limits *tl;

	if (v->code || !v->nlimits || !s->srv->store || !(tl = limits_of(s)))
		return;
	tl->mail_v = *v;
	tl->mail_later = 1;
}

int session_limits_rcpt(struct session *s, const struct verdict *v, limits_done_fn done)
{
	char net[64], sender[RULE_FORM_MAX], rcpt[RULE_FORM_MAX];
	char tkey[STORE_KEY_MAX], ckey[STORE_KEY_MAX];
	struct store_grey_params gp;
	struct txn_limits *tl;

	int later = s->tx->limits && s->tx->limits->mail_later;

	if (s->tx->limits)
		s->tx->limits->nrcpts = 0; /* the last RCPT's are the backend's now */
	if (!later && (v->code || (!v->greylist && !v->nlimits)))
		return 0;
	if (!s->srv->store || !(tl = limits_of(s))) {
		if (v->greylist && !v->code) /* no store (or no memory): fail open */
			checks_rcpt_greylisted(s->chk, GREY_SKIPPED);
		return 0;
	}
	tl->v = *v;
	tl->done = done;
	tl->rcpt = 1;
	tl->rgrey_asked = 0;
	tl->ncalls = tl->pending = 0;
	if (later) { /* the MAIL's counts, in the same round trip */
		tl->mail_later = 0;
		counts_add(tl, &tl->mail_v, 1);
	}
	if (v->code) /* refused by the rules: only the MAIL's counts, which decide first */
		return counts_send(tl);
	if (v->greylist && greylist_network(&s->peer.sa, net, sizeof net) == 0) {
		rule_form(&s->tx->from, sender, sizeof sender);
		rule_form(&s->tx->rcpt_path, rcpt, sizeof rcpt);
		greylist_keys(net, sender, rcpt, tkey, ckey);
		greylist_params(s->cfg, &gp);
		tl->grey = store_greylist(s->srv->store, tkey, ckey, &gp, greylisted, tl);
		tl->rgrey_asked = tl->grey != NULL;
		if (!tl->grey)
			checks_rcpt_greylisted(s->chk, GREY_SKIPPED); /* not even a request: fail open */
	}
	/* the counts go with the triplet, answered in the same round trip */
	counts_add(tl, v, 0);
	return counts_send(tl) || tl->grey;
}

void session_limits_rcpt_refused(struct session *s)
{
	struct txn_limits *tl = s->tx ? s->tx->limits : NULL;

	if (tl) {
		give_back(s, tl->rcpts, tl->nrcpts);
		tl->nrcpts = 0;
	}
}

void session_limits_delivered(struct session *s)
{
	if (s->tx && s->tx->limits)
		s->tx->limits->nmsgs = 0; /* the message counts */
}

void session_limits_txn_end(struct session *s)
{
	struct txn_limits *tl = s->tx ? s->tx->limits : NULL;

	if (!tl)
		return;
	if (tl->grey)
		store_cancel(tl->grey);
	for (int i = 0; i < tl->ncalls; i++)
		if (tl->calls[i].req)
			store_cancel(tl->calls[i].req);
	give_back(s, tl->msgs, tl->nmsgs); /* not delivered */
	free(tl);
	s->tx->limits = NULL;
}
