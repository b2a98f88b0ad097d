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

#include "checks.h"
#include "limits.h"
#include "recipients.h"
#include "rules.h"

struct stored_rcpt {
	char *addr;
	char *domain;
	int local, known;
	enum relay_result relay;
};

struct checks {
	struct config *cfg;
	const struct ruleset *rs;     /* cfg->ruleset; NULL: no rules (only the relay floor) */
	struct check_env env;
	struct sockaddr_storage client;
	char client_ip[64];
	int trusted;
	char helo[MOAT_HELO_MAX + 1];
	int have_helo;
	/* in flight */
	struct rdns_check *rd;
	struct sender_check *sc;
	struct spf_check *spf;
	struct dkim_check *dk;
	int sender_pending, spf_pending;
	int starting;                 /* inside a *_start: its callback must not deliver */
	verdict_cb done;              /* the caller's callback for the stage in flight */
	void *done_arg;
	/* transaction */
	int in_txn;
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
	/* tag rules' header fields: the connection's, then the transaction's */
	char tags[CHECKS_TAGS_MAX];
	size_t tags_conn, tags_len;
	int tags_dropped;
};

static const char *stage_names[STAGE_COUNT] = {"connect", "helo", "mail", "rcpt", "data"};

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

static void refuse(struct verdict *v, int code, const char *esc, const char *reason, const char *text)
{
	v->code = code;
	cut_copy(v->esc, sizeof v->esc, esc);
	cut_copy(v->text, sizeof v->text, text);
	cut_copy(v->reason, sizeof v->reason, reason);
}

const struct check_results *checks_results(const struct checks *c)
{
	return c ? &c->res : NULL;
}

const char *checks_tags(const struct checks *c)
{
	return c ? c->tags : "";
}

struct checks *checks_new(struct config *cfg, const struct check_env *env, const struct sockaddr *client)
{
	struct checks *c = calloc(1, sizeof *c);

	if (!c)
		return NULL;
	c->cfg = cfg;
	c->rs = cfg->ruleset;
	c->env = *env;
	memcpy(&c->client, client,
	       client->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	sockaddr_ntop(client, c->client_ip, sizeof c->client_ip);
	c->trusted = relay_client_trusted(cfg, client);
	return c;
}

/* ---- facts and rules ------------------------------------------------------ */

static void facts_fill(const struct checks *c, struct rule_facts *f, enum rule_stage stage,
                       struct rule_rcpt *acc)
{
	size_t i;

	memset(f, 0, sizeof *f);
	f->client = (const struct sockaddr *)&c->client;
	f->client_ip = c->client_ip;
	f->trusted = c->trusted;
	f->rdns = c->res.rdns_done ? c->res.rdns_name : NULL;
	f->hostname = c->cfg->hostname;
	f->helo = c->have_helo ? c->helo : NULL;
	if (stage >= STAGE_MAIL && c->in_txn) {
		f->sender = c->from.null ? "" : c->from.mailbox;
		f->sender_domain = c->from.null ? "" : c->from.domain;
		f->sender_checked = c->res.sender_done;
		f->sender_check = c->res.sender;
		f->spf = c->res.spf_done ? &c->res.spf : NULL;
	}
	if (stage == STAGE_RCPT)
		f->rcpt = &c->cur_r;
	if (stage == STAGE_DATA) {
		for (i = 0; i < c->nrcpts; i++) {
			acc[i].addr = c->rcpts[i].addr;
			acc[i].domain = c->rcpts[i].domain;
			acc[i].local = c->rcpts[i].local;
			acc[i].relay = c->rcpts[i].relay;
			acc[i].known = c->rcpts[i].known;
		}
		f->rcpts = acc;
		f->nrcpts = c->nrcpts;
		f->dkim = c->res.dkim_done ? &c->res.dkim : NULL;
		f->headers = c->headers;
		f->nheaders = c->nheaders;
		f->size = c->size;
	}
}

/* Keep a tag hit's header field for the message (once). */
static void add_tag(struct checks *c, const char *field)
{
	size_t n = strlen(field);
	char *p;

	for (p = c->tags; (p = strstr(p, field)); p += n)
		if ((p == c->tags || p[-1] == '\n') && p[n] == '\r')
			return; /* the same rule for another recipient */
	if (c->tags_len + n + 3 > sizeof c->tags) {
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
	const char *rcpt = stage == STAGE_RCPT ? c->cur.mailbox : NULL;
	int i;

	go_on(v);
	if (!c->rs || ruleset_stage_count(c->rs, stage) == 0)
		return;
	d = malloc(sizeof *d); /* 20 KiB: hits with their texts */
	if (stage == STAGE_DATA && c->nrcpts)
		acc = calloc(c->nrcpts, sizeof *acc);
	if (!d || (stage == STAGE_DATA && c->nrcpts && !acc)) {
		free(d);
		free(acc);
		refuse(v, 451, "4.3.0", "out of memory", "Error: local error in processing, try again later");
		return;
	}
	facts_fill(c, &f, stage, acc);
	rules_eval(c->rs, stage, &f, c->cfg->monitor, d);
	for (i = 0; i < d->nhits; i++) {
		const struct rule_verdict *h = &d->hits[i];

		if (h->action == ACTION_TAG && !h->monitor)
			add_tag(c, h->text);
		if (c->env.hit)
			c->env.hit(c->env.hit_arg, stage_names[stage], h, rcpt);
	}
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

/* ---- connect ---------------------------------------------------------------- */

static void connect_decide(struct checks *c)
{
	struct verdict v;

	decide(c, STAGE_CONNECT, &v);
	c->done(c->done_arg, &v);
}

static void rdns_cb_(void *arg, enum rdns_res res, const char *name)
{
	struct checks *c = arg;

	c->rd = NULL;
	c->res.rdns = res;
	c->res.rdns_done = 1;
	cut_copy(c->res.rdns_name, sizeof c->res.rdns_name, name);
	if (!c->starting)
		connect_decide(c);
}

void checks_connect(struct checks *c, verdict_cb done, void *arg)
{
	struct rdns_check *rd;

	c->done = done;
	c->done_arg = arg;
	if (!c->rs || !(ruleset_uses(c->rs) & (1u << FACT_RDNS)) || !c->env.dns) {
		connect_decide(c);
		return;
	}
	c->starting = 1;
	rd = rdns_start(c->env.dns, (const struct sockaddr *)&c->client, rdns_cb_, c);
	c->starting = 0;
	if (c->res.rdns_done)
		connect_decide(c);
	else
		c->rd = rd;
}

/* ---- HELO ------------------------------------------------------------------ */

void checks_helo(struct checks *c, const char *helo, struct verdict *out)
{
	cut_copy(c->helo, sizeof c->helo, helo);
	c->have_helo = 1;
	checks_txn_end(c); /* RFC 5321 4.1.4: HELO resets the transaction */
	decide(c, STAGE_HELO, out);
}

/* ---- MAIL: sender domain + SPF -------------------------------------------- */

static void mail_maybe_done(struct checks *c)
{
	struct verdict v;

	if (c->sender_pending || c->spf_pending || c->starting)
		return;
	decide(c, STAGE_MAIL, &v);
	c->done(c->done_arg, &v);
}

static void sender_cb_(void *arg, enum sender_res res)
{
	struct checks *c = arg;

	c->sc = NULL;
	c->res.sender = res;
	c->res.sender_done = 1;
	c->sender_pending = 0;
	mail_maybe_done(c);
}

static void spf_cb_(void *arg, const struct spf_outcome *o)
{
	struct checks *c = arg;

	c->spf = NULL;
	c->res.spf = *o;
	c->res.spf_done = 1;
	c->spf_pending = 0;
	mail_maybe_done(c);
}

void checks_mail(struct checks *c, const struct smtp_path *from, verdict_cb done, void *arg)
{
	struct sender_check *sc = NULL;
	struct spf_check *spf = NULL;

	checks_txn_end(c);
	c->in_txn = 1;
	c->from = *from;
	c->done = done;
	c->done_arg = arg;
	/* Both start before either may deliver: the rules wait for both. */
	c->sender_pending = c->cfg->check_sender_domain && c->env.dns;
	c->spf_pending = c->cfg->check_spf && c->env.dns;
	c->starting = 1;
	if (c->sender_pending)
		sc = sender_check_start(c->env.dns, from->null ? NULL : from->domain, sender_cb_, c);
	if (c->spf_pending)
		spf = spf_check_start(c->env.dns, (const struct sockaddr *)&c->client, c->helo,
		                      from->null ? "" : from->mailbox, c->cfg->hostname, spf_cb_, c);
	c->starting = 0;
	if (c->sender_pending)
		c->sc = sc;
	if (c->spf_pending)
		c->spf = spf;
	mail_maybe_done(c);
}

/* ---- RCPT: relaying ---------------------------------------------------------- */

/* The floor under every ruleset: the texts of rules/default.rules. */
static void relay_floor(const struct checks *c, enum relay_result r, struct verdict *v)
{
	char text[MOAT_PATH_MAX + 128];

	if (r == RELAY_BAD_ROUTING) {
		snprintf(text, sizeof text, "<%s>: source routing and %%/! addressing are not allowed",
		         c->cur.mailbox);
		refuse(v, 553, "5.7.1", "routing syntax in recipient", text);
	} else {
		snprintf(text, sizeof text, "<%s>: Relay access denied", c->cur.mailbox);
		refuse(v, 554, "5.7.1", "relay denied", text);
	}
	v->rule_file = "built-in relay protection";
	v->rule_line = 0;
}

void checks_rcpt(struct checks *c, const struct smtp_path *rcpt, struct verdict *out)
{
	struct rule_rcpt *r = &c->cur_r;

	c->cur = *rcpt;
	r->addr = c->cur.mailbox;
	r->domain = c->cur.domain;
	r->relay = relay_check(c->cfg, (const struct sockaddr *)&c->client, rcpt);
	r->local = rcpt->domain[0] && relay_domain_is_local(c->cfg, rcpt->domain);
	r->known = !c->cfg->rcpt_table || !r->local ||
	           recipients_has(c->cfg->rcpt_table, rcpt->local, rcpt->domain);
	decide(c, STAGE_RCPT, out);
	if (r->relay != RELAY_OK && out->code / 100 != 5)
		relay_floor(c, r->relay, out);
}

void checks_rcpt_accepted(struct checks *c)
{
	struct stored_rcpt *sr;

	if (c->nrcpts == c->caprcpts) {
		size_t cap = c->caprcpts ? c->caprcpts * 2 : 8;
		struct stored_rcpt *n = realloc(c->rcpts, cap * sizeof *n);

		if (!n)
			return; /* the data rules then see fewer recipients */
		c->rcpts = n;
		c->caprcpts = cap;
	}
	sr = &c->rcpts[c->nrcpts];
	sr->addr = strdup(c->cur_r.addr);
	sr->domain = strdup(c->cur_r.domain);
	if (!sr->addr || !sr->domain) {
		free(sr->addr);
		free(sr->domain);
		return;
	}
	sr->local = c->cur_r.local;
	sr->known = c->cur_r.known;
	sr->relay = c->cur_r.relay;
	c->nrcpts++;
}

/* ---- DATA: DKIM ------------------------------------------------------------- */

/* The header section, split into fields for the header rules. */
static void read_headers(struct checks *c, dkim_reader rd, void *rarg)
{
	long n;

	c->header_buf = malloc(MOAT_HEADER_SCAN_MAX + 1);
	c->headers = calloc(MOAT_HEADER_FIELDS_MAX, sizeof *c->headers);
	if (!c->header_buf || !c->headers)
		return;
	n = rd(rarg, 0, c->header_buf, MOAT_HEADER_SCAN_MAX);
	if (n > 0)
		c->nheaders = rules_split_headers(c->header_buf, (size_t)n, c->headers, MOAT_HEADER_FIELDS_MAX);
}

static void data_decide(struct checks *c)
{
	struct verdict v;

	decide(c, STAGE_DATA, &v);
	c->done(c->done_arg, &v);
}

static void dkim_cb_(void *arg, const struct dkim_outcome *o)
{
	struct checks *c = arg;

	c->dk = NULL;
	c->res.dkim = *o;
	c->res.dkim_done = 1;
	if (!c->starting) /* else checks_data goes on once dkim_check_start returned */
		data_decide(c);
}

void checks_data(struct checks *c, dkim_reader rd, void *rarg, size_t size, verdict_cb done, void *arg)
{
	struct dkim_check *dk;

	c->done = done;
	c->done_arg = arg;
	c->size = size;
	if (c->rs && (ruleset_uses(c->rs) & (1u << FACT_HEADER)) && ruleset_stage_count(c->rs, STAGE_DATA))
		read_headers(c, rd, rarg);
	if (!c->cfg->check_dkim || !c->env.dkim) {
		data_decide(c);
		return;
	}
	c->starting = 1;
	dk = dkim_check_start(c->env.dkim, rd, rarg, size, dkim_cb_, c);
	c->starting = 0;
	if (c->res.dkim_done)
		data_decide(c);
	else
		c->dk = dk;
}

/* ---- end ------------------------------------------------------------------- */

void checks_txn_end(struct checks *c)
{
	size_t i;

	if (!c)
		return;
	sender_check_cancel(c->sc);
	spf_check_cancel(c->spf);
	dkim_check_cancel(c->dk);
	c->sc = NULL;
	c->spf = NULL;
	c->dk = NULL;
	c->sender_pending = c->spf_pending = 0;
	for (i = 0; i < c->nrcpts; i++) {
		free(c->rcpts[i].addr);
		free(c->rcpts[i].domain);
	}
	c->nrcpts = 0;
	free(c->headers);
	free(c->header_buf);
	c->headers = NULL;
	c->header_buf = NULL;
	c->nheaders = 0;
	c->size = 0;
	c->in_txn = 0;
	c->res.sender_done = c->res.spf_done = c->res.dkim_done = 0;
	c->tags_len = c->tags_conn;
	c->tags[c->tags_len] = '\0';
}

void checks_free(struct checks *c)
{
	if (!c)
		return;
	checks_txn_end(c);
	rdns_cancel(c->rd);
	free(c->rcpts);
	free(c);
}
