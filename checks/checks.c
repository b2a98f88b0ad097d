/* checks.c - runs the checks of each stage, gathers the facts, lets the
 * ruleset decide, and hands the caller one verdict.
 *
 * MAIL starts the sender-domain check and SPF side by side; the rules run
 * when both are in. At the end of data, DKIM runs over the message. Every
 * result stays here for the log and for Authentication-Results. What is
 * refused and how is the ruleset's business (rules/default.rules when the
 * config names none), with one exception: relay protection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "checks/checks.h"
#include "proxy/lib/replies.h"
#include "proxy/lib/bounds.h"
#include "checks/recipients.h"
#include "rules/rules.h"
#include "checks/spf_cache.h"

struct stored_rcpt {
	char *addr;
	char *domain;
	int local, known;
	enum relay_result relay;
};

/* A transaction's part: allocated at MAIL, freed at its end, so an idle
 * connection costs only struct checks (10,000 idle ones must stay cheap). */
struct checks_txn {
	struct smtp_path from;
	struct smtp_path cur;         /* the recipient checks_rcpt last passed */
	struct rule_rcpt cur_r;
	struct stored_rcpt *rcpts;    /* accepted by the backend */
	size_t nrcpts, caprcpts;
	size_t size;
	struct rule_header *headers;  /* data stage, when a rule tests headers */
	size_t nheaders;
	char *header_buf;
	struct check_results res;
};

struct checks {
	struct check_options opt;
	const struct ruleset *rs;     /* opt.ruleset; NULL: no rules (only the relay floor) */
	struct check_env env;
	union sockaddr_ip client;
	char client_ip[INET6_ADDRSTRLEN];
	int trusted;
	char *helo;                   /* NULL before HELO */
	/* in flight */
	struct rdns_check *rd;
	struct sender_check *sc;
	struct spf_check *spf;
	struct dkim_check *dk;
	int sender_pending, spf_pending;
	verdict_cb done;              /* the caller's callback for the stage in flight */
	void *done_arg;
	struct event *later;          /* made active: the stage decides on the next turn */
	enum rule_stage later_stage;
	/* connection */
	int rdns_done;
	enum rdns_res rdns;
	char *rdns_name;              /* with RDNS_OK */
	struct checks_txn *t;         /* NULL outside MAIL .. end of the transaction */
	/* tag rules' header fields, CRLF lines: the connect stage's, the
	 * HELO's, then the transaction's; allocated at the first tag */
	char *tags;
	size_t tags_connect;          /* end of the connect stage's (a new HELO keeps these) */
	size_t tags_conn, tags_len;   /* end of the connection's (connect + HELO); end of all */
	int tags_dropped;
};

/* Bounded copy that may cut (texts from outside, e.g. an SPF explanation). */
static void cut_copy(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void go_on(struct verdict *v)
{
	memset(v, 0, sizeof *v);
}

/* Refuse with one of moat's own replies (the table's code, enhanced code
 * and text, arg for its %s). */
static void refuse(struct verdict *v, enum reply_id id, const char *arg, const char *reason,
                   const char *hostname)
{
	v->code = replies[id].code;
	cut_copy(v->esc, sizeof v->esc, replies[id].esc);
	reply_text(v->text, (int)sizeof v->text, id, hostname, arg);
	cut_copy(v->reason, sizeof v->reason, reason);
}

const struct check_results *checks_results(const struct checks *c)
{
	return c && c->t ? &c->t->res : NULL;
}

int checks_rdns(const struct checks *c, enum rdns_res *res, const char **name)
{
	if (!c || !c->rdns_done)
		return 0;
	*res = c->rdns;
	*name = c->rdns_name ? c->rdns_name : "";
	return 1;
}

const char *checks_tags(const struct checks *c)
{
	return c && c->tags ? c->tags : "";
}

static void on_later(evutil_socket_t fd, short what, void *arg);

struct checks *checks_new(const struct check_options *opt, const struct check_env *env,
                          const struct sockaddr *client)
{
	struct checks *c = calloc(1, sizeof *c);

	if (!c)
		return NULL;
	c->opt = *opt;
	c->rs = opt->ruleset;
	c->env = *env;
	if (client->sa_family != AF_INET && client->sa_family != AF_INET6) {
		free(c);
		return NULL;
	}
	memcpy(&c->client, client,
	       client->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	sockaddr_ntop(client, c->client_ip, sizeof c->client_ip);
	c->trusted = relay_client_trusted(opt, client);
	if (!(c->later = event_new(env->base, -1, 0, on_later, c))) {
		free(c);
		return NULL;
	}
	return c;
}

/* ---- facts and rules ------------------------------------------------------ */

static void facts_fill(const struct checks *c, struct rule_facts *f, enum rule_stage stage,
                       struct rule_rcpt *acc)
{
	const struct checks_txn *t = c->t;
	size_t i;

	memset(f, 0, sizeof *f);
	f->client = (const struct sockaddr *)&c->client;
	f->client_ip = c->client_ip;
	f->trusted = c->trusted;
	f->rdns = c->rdns_done ? (c->rdns_name ? c->rdns_name : "") : NULL;
	f->hostname = c->opt.hostname;
	f->helo = c->helo;
	if (stage < STAGE_MAIL || !t)
		return;
	f->sender = t->from.null ? "" : t->from.mailbox;
	f->sender_domain = t->from.null ? "" : t->from.domain;
	f->sender_checked = t->res.sender_done;
	f->sender_check = t->res.sender;
	f->spf = t->res.spf_done ? &t->res.spf : NULL;
	if (stage == STAGE_RCPT)
		f->rcpt = &t->cur_r;
	if (stage == STAGE_DATA) {
		for (i = 0; i < t->nrcpts; i++) {
			acc[i].addr = t->rcpts[i].addr;
			acc[i].domain = t->rcpts[i].domain;
			acc[i].local = t->rcpts[i].local;
			acc[i].relay = t->rcpts[i].relay;
			acc[i].known = t->rcpts[i].known;
		}
		f->rcpts = acc;
		f->nrcpts = t->nrcpts;
		f->dkim = t->res.dkim_done ? &t->res.dkim : NULL;
		f->headers = t->headers;
		f->nheaders = t->nheaders;
		f->size = t->size;
	}
}

/* Keep a tag hit's header field for the message (once). */
static void add_tag(struct checks *c, const char *field)
{
	size_t n = strlen(field);
	char *p;

	if (!c->tags && !(c->tags = calloc(1, CHECKS_TAGS_MAX))) {
		c->tags_dropped++;
		return;
	}
	for (p = c->tags; (p = strstr(p, field)); p += n)
		if ((p == c->tags || p[-1] == '\n') && p[n] == '\r')
			return; /* the same rule for another recipient */
	if (c->tags_len + n + 3 > CHECKS_TAGS_MAX) {
		c->tags_dropped++;
		return;
	}
	memcpy(c->tags + c->tags_len, field, n);
	memcpy(c->tags + c->tags_len + n, "\r\n", 3);
	c->tags_len += n + 2;
}

/* Evaluate a stage; report the hits; turn the decision into a verdict. */
static void decide(struct checks *c, enum rule_stage stage, struct verdict *v)
{
	struct rule_decision *d;
	struct rule_facts f;
	struct rule_rcpt *acc = NULL;
	const char *rcpt = stage == STAGE_RCPT && c->t ? c->t->cur.mailbox : NULL;
	int i;

	go_on(v);
	if (!c->rs || ruleset_stage_count(c->rs, stage) == 0)
		return;
	d = malloc(sizeof *d); /* 20 KiB: hits with their texts */
	if (stage == STAGE_DATA && c->t && c->t->nrcpts)
		acc = calloc(c->t->nrcpts, sizeof *acc);
	if (!d || (stage == STAGE_DATA && c->t && c->t->nrcpts && !acc)) {
		free(d);
		free(acc);
		refuse(v, R_LOCAL_ERROR, NULL, "out of memory", c->opt.hostname);
		return;
	}
	facts_fill(c, &f, stage, acc);
	rules_eval(c->rs, stage, &f, c->opt.monitor, d);
	for (i = 0; i < d->nhits; i++) {
		const struct rule_verdict *h = &d->hits[i];

		if (h->action == ACTION_TAG && !h->monitor)
			add_tag(c, h->text);
		if (c->env.hit)
			c->env.hit(c->env.hit_arg, stage, h, rcpt);
	}
	if (stage == STAGE_CONNECT)
		c->tags_connect = c->tags_len;
	if (stage <= STAGE_HELO)
		c->tags_conn = c->tags_len; /* connection tags: every message of the session */
	if (d->action != ACTION_NONE) {
		v->rule_file = d->decided.file;
		v->rule_line = d->decided.line;
		cut_copy(v->reason, sizeof v->reason, d->decided.reason);
	}
	if (d->action == ACTION_REJECT || d->action == ACTION_TEMPFAIL) {
		v->code = d->decided.code;
		cut_copy(v->esc, sizeof v->esc, d->decided.esc);
		cut_copy(v->text, sizeof v->text, d->decided.text);
	}
	free(acc);
	free(d);
}

/* ---- the verdict of a stage ------------------------------------------------ */

/* Decide the stage and tell the caller. */
static void stage_done(struct checks *c, enum rule_stage stage)
{
	struct verdict v;

	if (stage == STAGE_MAIL && !c->t)
		refuse(&v, R_LOCAL_ERROR, NULL, "out of memory", c->opt.hostname);
	else if (stage == STAGE_DATA && !c->t)
		go_on(&v); /* DATA without MAIL: not from a session */
	else
		decide(c, stage, &v);
	c->done(c->done_arg, &v);
}

/* Every check of the stage is in before its start call returned: the
 * verdict still comes later, on the loop's next turn (dns.h states the rule). */
static void decide_later(struct checks *c, enum rule_stage stage)
{
	c->later_stage = stage;
	event_active(c->later, EV_READ, 0);
}

static void on_later(evutil_socket_t fd, short what, void *arg)
{
	struct checks *c = arg;

	stage_done(c, c->later_stage);
}

/* ---- connect ---------------------------------------------------------------- */

static void connect_decide(struct checks *c)
{
	stage_done(c, STAGE_CONNECT);
}

static void rdns_set(struct checks *c, enum rdns_res res, const char *name)
{
	c->rdns = res;
	c->rdns_done = 1;
	if (res == RDNS_OK)
		c->rdns_name = strdup(name); /* NULL (no memory) reads as "" */
}

static void rdns_cb_(void *arg, enum rdns_res res, const char *name)
{
	struct checks *c = arg;

	c->rd = NULL;
	rdns_set(c, res, name);
	connect_decide(c);
}

void checks_connect(struct checks *c, verdict_cb done, void *arg)
{
	c->done = done;
	c->done_arg = arg;
	if (!c->rs || !(ruleset_uses(c->rs) & (1u << FACT_RDNS)) || !c->env.dns) {
		decide_later(c, STAGE_CONNECT);
		return;
	}
	c->rd = rdns_start(c->env.dns, (const struct sockaddr *)&c->client, rdns_cb_, c);
	if (!c->rd) { /* no memory to start it */
		rdns_set(c, RDNS_TEMPFAIL, "");
		decide_later(c, STAGE_CONNECT);
	}
}

/* ---- HELO ------------------------------------------------------------------ */

void checks_helo(struct checks *c, const char *helo, struct verdict *out)
{
	free(c->helo);
	c->helo = strndup(helo, MOAT_HELO_MAX);
	checks_txn_end(c); /* RFC 5321 4.1.4: HELO resets the transaction */
	/* and replaces the name: an earlier HELO's tags no longer hold */
	if (c->tags) {
		c->tags_len = c->tags_conn = c->tags_connect;
		c->tags[c->tags_len] = '\0';
	}
	decide(c, STAGE_HELO, out);
}

/* ---- MAIL: sender domain + SPF -------------------------------------------- */

static void mail_maybe_done(struct checks *c)
{
	if (!c->sender_pending && !c->spf_pending)
		stage_done(c, STAGE_MAIL);
}

static void sender_set(struct checks *c, enum sender_res res)
{
	c->t->res.sender = res;
	c->t->res.sender_done = 1;
	c->sender_pending = 0;
}

static void sender_cb_(void *arg, enum sender_res res)
{
	struct checks *c = arg;

	c->sc = NULL;
	sender_set(c, res);
	mail_maybe_done(c);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *sender_of(const struct checks *c)
{
	return c->t->from.null ? "" : c->t->from.mailbox;
}

static void spf_set(struct checks *c, const struct spf_outcome *o)
{
	c->t->res.spf = *o;
	c->t->res.spf_done = 1;
	c->spf_pending = 0;
}

static void spf_cb_(void *arg, const struct spf_outcome *o)
{
	struct checks *c = arg;

	spf_cache_put(c->client_ip, c->helo, sender_of(c), c->opt.hostname, o, now_ms());
	c->spf = NULL;
	spf_set(c, o);
	mail_maybe_done(c);
}

void checks_mail(struct checks *c, const struct smtp_path *from, verdict_cb done, void *arg)
{
	checks_txn_end(c);
	c->done = done;
	c->done_arg = arg;
	if (!(c->t = calloc(1, sizeof *c->t))) {
		decide_later(c, STAGE_MAIL); /* refused: out of memory */
		return;
	}
	c->t->from = *from;
	/* Both run side by side: the rules wait for both. A check that cannot
	 * start (no memory) counts as a temporary failure. */
	c->sender_pending = c->opt.check_sender_domain && c->env.dns;
	c->spf_pending = c->opt.check_spf && c->env.dns;
	if (c->spf_pending) { /* the same client, HELO and sender a moment ago */
		const struct spf_outcome *o = spf_cache_get(c->client_ip, c->helo, sender_of(c), c->opt.hostname,
		                                            now_ms());

		if (o)
			spf_set(c, o);
	}
	if (c->sender_pending &&
	    !(c->sc = sender_check_start(c->env.dns, from->null ? NULL : from->domain, sender_cb_, c)))
		sender_set(c, SD_TEMPFAIL);
	if (c->spf_pending &&
	    !(c->spf = spf_check_start(c->env.dns, (const struct sockaddr *)&c->client, c->helo ? c->helo : "",
	                               from->null ? "" : from->mailbox, c->opt.hostname, spf_cb_, c))) {
		struct spf_outcome o = {.res = SPF_RES_TEMPERROR};

		cut_copy(o.reason, sizeof o.reason, "out of memory");
		spf_set(c, &o);
	}
	if (!c->sender_pending && !c->spf_pending)
		decide_later(c, STAGE_MAIL);
}

/* ---- RCPT: relaying ---------------------------------------------------------- */

/* The floor under every ruleset, with the replies of rules/default.rules
 * (test_checks holds the two together). */
static void relay_floor(const struct checks *c, enum relay_result r, struct verdict *v)
{
	if (r == RELAY_BAD_ROUTING)
		refuse(v, R_RELAY_ROUTING, c->t->cur.mailbox, "routing syntax in recipient", c->opt.hostname);
	else
		refuse(v, R_RELAY_DENIED, c->t->cur.mailbox, "relay denied", c->opt.hostname);
	v->rule_file = "built-in relay protection";
	v->rule_line = 0;
}

void checks_rcpt(struct checks *c, const struct smtp_path *rcpt, struct verdict *out)
{
	struct rule_rcpt *r;

	if (!c->t && !(c->t = calloc(1, sizeof *c->t))) { /* RCPT without MAIL: not from a session */
		go_on(out);
		refuse(out, R_LOCAL_ERROR, NULL, "out of memory", c->opt.hostname);
		return;
	}
	r = &c->t->cur_r;
	c->t->cur = *rcpt;
	r->addr = c->t->cur.mailbox;
	r->domain = c->t->cur.domain;
	r->relay = relay_check(&c->opt, (const struct sockaddr *)&c->client, rcpt);
	r->local = rcpt->domain[0] && relay_domain_is_local(&c->opt, rcpt->domain);
	r->known = !c->opt.rcpt_table || !r->local ||
	           recipients_has(c->opt.rcpt_table, rcpt->local, rcpt->domain);
	decide(c, STAGE_RCPT, out);
	if (r->relay != RELAY_OK && out->code / 100 != 5)
		relay_floor(c, r->relay, out);
}

void checks_rcpt_accepted(struct checks *c)
{
	struct checks_txn *t = c->t;
	struct stored_rcpt *sr;

	if (!t)
		return;
	if (t->nrcpts == t->caprcpts) {
		size_t cap = t->caprcpts ? t->caprcpts * 2 : 8;
		struct stored_rcpt *n = realloc(t->rcpts, cap * sizeof *n);

		if (!n)
			return; /* the data rules then see fewer recipients */
		t->rcpts = n;
		t->caprcpts = cap;
	}
	sr = &t->rcpts[t->nrcpts];
	sr->addr = strdup(t->cur_r.addr);
	sr->domain = strdup(t->cur_r.domain);
	if (!sr->addr || !sr->domain) {
		free(sr->addr);
		free(sr->domain);
		return;
	}
	sr->local = t->cur_r.local;
	sr->known = t->cur_r.known;
	sr->relay = t->cur_r.relay;
	t->nrcpts++;
}

/* ---- DATA: DKIM ------------------------------------------------------------- */

/* The header section, split into fields for the header rules. */
static void read_headers(struct checks_txn *t, dkim_reader rd, void *rarg)
{
	long n;

	t->header_buf = malloc(MOAT_HEADER_SCAN_MAX + 1);
	t->headers = calloc(MOAT_HEADER_FIELDS_MAX, sizeof *t->headers);
	if (!t->header_buf || !t->headers)
		return;
	n = rd(rarg, 0, t->header_buf, MOAT_HEADER_SCAN_MAX);
	if (n > 0)
		t->nheaders = rules_split_headers(t->header_buf, (size_t)n, t->headers, MOAT_HEADER_FIELDS_MAX);
}

static void data_decide(struct checks *c)
{
	stage_done(c, STAGE_DATA);
}

static void dkim_set(struct checks *c, const struct dkim_outcome *o)
{
	c->t->res.dkim = *o;
	c->t->res.dkim_done = 1;
}

static void dkim_cb_(void *arg, const struct dkim_outcome *o)
{
	struct checks *c = arg;

	c->dk = NULL;
	dkim_set(c, o);
	data_decide(c);
}

void checks_data(struct checks *c, dkim_reader rd, void *rarg, size_t size, verdict_cb done, void *arg)
{
	c->done = done;
	c->done_arg = arg;
	if (!c->t) { /* DATA without MAIL: not from a session */
		decide_later(c, STAGE_DATA);
		return;
	}
	c->t->size = size;
	if (c->rs && (ruleset_uses(c->rs) & (1u << FACT_HEADER)) && ruleset_stage_count(c->rs, STAGE_DATA))
		read_headers(c->t, rd, rarg);
	if (!c->opt.check_dkim || !c->env.dkim) {
		decide_later(c, STAGE_DATA);
		return;
	}
	c->dk = dkim_check_start(c->env.dkim, rd, rarg, size, dkim_cb_, c);
	if (!c->dk) { /* it could not start */
		struct dkim_outcome o = {.summary = DKIM_RES_TEMPERROR};

		dkim_set(c, &o);
		decide_later(c, STAGE_DATA);
	}
}

/* ---- end ------------------------------------------------------------------- */

void checks_txn_end(struct checks *c)
{
	struct checks_txn *t;
	size_t i;

	if (!c)
		return;
	if (c->later_stage >= STAGE_MAIL)
		event_del(c->later); /* its verdict due on the next turn, too */
	sender_check_cancel(c->sc);
	spf_check_cancel(c->spf);
	dkim_check_cancel(c->dk);
	c->sc = NULL;
	c->spf = NULL;
	c->dk = NULL;
	c->sender_pending = c->spf_pending = 0;
	if ((t = c->t)) {
		for (i = 0; i < t->nrcpts; i++) {
			free(t->rcpts[i].addr);
			free(t->rcpts[i].domain);
		}
		free(t->rcpts);
		free(t->headers);
		free(t->header_buf);
		free(t);
		c->t = NULL;
	}
	if (c->tags) {
		c->tags_len = c->tags_conn;
		c->tags[c->tags_len] = '\0';
	}
}

void checks_free(struct checks *c)
{
	if (!c)
		return;
	checks_txn_end(c);
	rdns_cancel(c->rd);
	event_free(c->later);
	free(c->helo);
	free(c->rdns_name);
	free(c->tags);
	free(c);
}
