/* checks.c - runs the checks of each stage, gathers the facts, lets the
 * ruleset decide, and hands the caller one verdict.
 *
 * At connect, MAIL and the end of data, every wanted check of the registry
 * for the stage starts side by side (checks/registry.c); the rules run when
 * the last is in. Every result stays here, in a slot per check, for the
 * rules, the log and Authentication-Results. What is refused and how is
 * the ruleset's business (rules/default.rules when the config names none),
 * with one exception: relay protection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "checks/authres.h"
#include "checks/checks.h"
#include "checks/dmarc_from.h"
#include "checks/header.h"
#include "checks/recipients.h"
#include "checks/registry.h"
#include "proxy/lib/bounds.h"
#include "proxy/lib/log.h"
#include "proxy/lib/metrics.h"
#include "proxy/lib/replies.h"
#include "proxy/lib/text.h"
#include "rules/rules.h"

#define CHECKS_MAX 16 /* rows of the registry */
#define CHECK_OUTCOME_FACTS 8 /* facts of a row whose first word counts in the metrics */
/* "local@domain" with the domain in A-labels: a local part as sent (quoted,
 * 64 octets unquoted), '@', a name of 253 octets */
#define RULE_ADDR_MAX (MOAT_LOCALPART_MAX * 2 + 3 + 1 + MOAT_DOMAIN_MAX + 1)

struct stored_rcpt {
	char *addr;
	char *domain;
	int local, known;
	enum relay_result relay;
	enum rule_grey greylisted;
};

/* A transaction's part: allocated at MAIL, freed at its end, so an idle
 * connection costs only struct checks (10,000 idle ones must stay cheap). */
struct checks_txn {
	struct smtp_path from;
	struct smtp_path cur;         /* the recipient checks_rcpt last passed */
	char from_addr[RULE_ADDR_MAX]; /* the rules' forms of both (rule_address) */
	char cur_addr[RULE_ADDR_MAX];
	struct rule_rcpt cur_r;
	struct stored_rcpt *rcpts;    /* accepted by the backend */
	size_t nrcpts, caprcpts;
	size_t size;
	struct msg_header header;     /* data stage: read once, when a check or a rule reads it */
	struct rule_header *headers;  /* its fields, when a rule tests headers */
	size_t nheaders;
	char *header_buf;             /* the copy they point into */
	int early;                    /* lookups header fields started (checks_header_field) */
	struct dmarc_from *author;    /* the header's From and Message-ID, read once (checks_author) */
};

/* One check of the registry in this session. */
struct slot {
	struct checks *c;
	void *result;                 /* allocated when it starts; kept for the connection
	                               * (connect checks) or the transaction */
	void *handle;                 /* in flight */
	int done;                     /* result holds its answer */
};

struct checks {
	struct check_options opt;
	const struct ruleset *rs;     /* opt.ruleset; NULL: no rules (only the relay floor) */
	struct check_env env;
	union sockaddr_ip client;
	char client_ip[INET6_ADDRSTRLEN];
	int trusted;
	int forwarder;  /* in trusted_forwarders */
	char *helo;                   /* NULL before HELO */
	int tls;                      /* the connection is under TLS (the rules' tls) */
	enum listener_kind listener;  /* the rules' listener */
	char *auth_user;              /* after AUTH (the rules' authenticated, auth-user); NULL before */
	struct slot slot[CHECKS_MAX]; /* by registry row */
	int pending;                  /* checks of the stage in flight */
	enum rule_stage stage;        /* the stage they belong to */
	verdict_cb done;              /* the caller's callback for the stage in flight */
	void *done_arg;
	struct event *later;          /* made active: the stage decides on the next turn */
	struct checks_txn *t;         /* NULL outside MAIL .. end of the transaction */
	/* tag rules' header fields, CRLF lines: the connect stage's, the
	 * HELO's, then the transaction's; allocated at the first tag */
	char *tags;
	size_t tags_connect;          /* end of the connect stage's (a new HELO keeps these) */
	size_t tags_conn, tags_len;   /* end of the connection's (connect + HELO); end of all */
	int tags_dropped;
};

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
	text_copy(v->esc, sizeof v->esc, replies[id].esc);
	reply_text(v->text, (int)sizeof v->text, id, hostname, arg);
	text_copy(v->reason, sizeof v->reason, reason);
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
	c->forwarder = relay_client_forwarder(opt, client);
	for (int i = 0; i < CHECKS_MAX; i++)
		c->slot[i].c = c;
	if (!(c->later = event_new(env->base, -1, 0, on_later, c))) {
		free(c);
		return NULL;
	}
	return c;
}

/* ---- facts and rules ------------------------------------------------------ */

/* The checks' values, for the rules, in the vocabulary's order. */
struct values {
	struct rule_value v[RULES_VOCAB_MAX];
	const char *names[RULES_VOCAB_MAX][CHECK_NAMES_MAX];
};

static void values_fill(const struct checks *c, struct values *vs)
{
	size_t n, first;
	const struct check_def *const *rows = checks_registry(&n);

	memset(vs->v, 0, sizeof vs->v);
	for (size_t i = 0; i < n && i < CHECKS_MAX; i++) {
		first = checks_first_fact(i);
		if (c->slot[i].done && first + rows[i]->nfacts <= RULES_VOCAB_MAX)
			rows[i]->values(c->slot[i].result, &vs->v[first], &vs->names[first]);
	}
}

static void facts_fill(const struct checks *c, struct rule_facts *f, enum rule_stage stage,
                       struct rule_rcpt *acc, const struct values *vs)
{
	const struct checks_txn *t = c->t;
	size_t i;

	memset(f, 0, sizeof *f);
	f->client = (const struct sockaddr *)&c->client;
	f->client_ip = c->client_ip;
	f->trusted = c->trusted;
	f->forwarder = c->forwarder;
	f->tls = c->tls;
	f->listener = c->listener;
	f->authenticated = c->auth_user != NULL;
	f->auth_user = c->auth_user;
	f->hostname = c->opt.hostname;
	f->helo = c->helo;
	f->values = vs->v;
	if (stage < STAGE_MAIL || !t)
		return;
	f->sender = t->from.null ? "" : t->from_addr;
	f->sender_domain = t->from.null ? "" : t->from.ascii_domain;
	if (stage == STAGE_RCPT)
		f->rcpt = &t->cur_r;
	if (stage == STAGE_DATA) {
		for (i = 0; i < t->nrcpts; i++) {
			acc[i].addr = t->rcpts[i].addr;
			acc[i].domain = t->rcpts[i].domain;
			acc[i].local = t->rcpts[i].local;
			acc[i].relay = t->rcpts[i].relay;
			acc[i].known = t->rcpts[i].known;
			acc[i].greylisted = t->rcpts[i].greylisted;
		}
		f->rcpts = acc;
		f->nrcpts = t->nrcpts;
		f->headers = t->headers;
		f->nheaders = t->nheaders;
		f->size = t->size;
	}
}

/* An address as the rules see it: its domain in A-labels, whatever form the
 * client wrote, so "sender @xn--e1afmkfd.test" and list entries (LDH) match
 * "user@пример.test" too; the local part as sent. */
static void rule_address(char *buf, size_t size, const struct smtp_path *p)
{
	if (p->domain[0] && !(p->flags & PATH_LITERAL))
		snprintf(buf, size, "%s@%s", p->local, p->ascii_domain);
	else
		text_copy(buf, size, p->mailbox);
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

/* Evaluate a stage; report the hits; turn the decision into a verdict.
 * relay_refused: relay protection refuses this RCPT unless the rules do
 * (with a 5xx); then what monitored rules would have done is moot, and
 * the refusal alone is logged (once, not beside a "would-reject"). */
static void decide(struct checks *c, enum rule_stage stage, int relay_refused, struct verdict *v)
{
	struct rule_decision *d;
	struct rule_facts f;
	struct rule_rcpt *acc = NULL;
	struct values *vs;
	const char *rcpt = stage == STAGE_RCPT && c->t ? c->t->cur.mailbox : NULL;
	int i;

	go_on(v);
	if (!c->rs || ruleset_stage_count(c->rs, stage) == 0)
		return;
	d = malloc(sizeof *d); /* 20 KiB: hits with their texts */
	vs = malloc(sizeof *vs);
	if (stage == STAGE_DATA && c->t && c->t->nrcpts)
		acc = calloc(c->t->nrcpts, sizeof *acc);
	if (!d || !vs || (stage == STAGE_DATA && c->t && c->t->nrcpts && !acc)) {
		free(d);
		free(vs);
		free(acc);
		refuse(v, R_LOCAL_ERROR, NULL, "out of memory", c->opt.hostname);
		return;
	}
	values_fill(c, vs);
	facts_fill(c, &f, stage, acc, vs);
	rules_eval(c->rs, stage, &f, c->opt.monitor, d);
	if (d->action == ACTION_REJECT && d->decided.code / 100 == 5)
		relay_refused = 0; /* the rules refuse it themselves */
	for (i = 0; i < d->nhits; i++) {
		const struct rule_verdict *h = &d->hits[i];

		if (h->action == ACTION_TAG && !h->monitor)
			add_tag(c, h->text);
		if (c->env.hit && !(h->monitor && relay_refused))
			c->env.hit(c->env.hit_arg, stage, h, rcpt);
	}
	if (stage == STAGE_CONNECT)
		c->tags_connect = c->tags_len;
	if (stage <= STAGE_HELO)
		c->tags_conn = c->tags_len; /* connection tags: every message of the session */
	if (d->action != ACTION_NONE) {
		v->rule_file = d->decided.file;
		v->rule_line = d->decided.line;
		v->rule_id = d->decided.id;
		text_copy(v->reason, sizeof v->reason, d->decided.reason);
	}
	if (d->greylist) {
		v->greylist = 1;
		v->grey.file = d->grey.file;
		v->grey.line = d->grey.line;
		v->grey.id = d->grey.id;
		text_copy(v->grey.reason, sizeof v->grey.reason, d->grey.reason);
	}
	v->nlimits = d->nlimits;
	memcpy(v->limits, d->limits, (size_t)d->nlimits * sizeof *v->limits);
	if (d->action == ACTION_REJECT || d->action == ACTION_TEMPFAIL) {
		v->code = d->decided.code;
		text_copy(v->esc, sizeof v->esc, d->decided.esc);
		text_copy(v->text, sizeof v->text, d->decided.text);
	}
	free(acc);
	free(vs);
	free(d);
}

/* ---- the verdict of a stage ------------------------------------------------ */

static void count(const struct slot *sl, int settled);

/* Every check of the stage is in: those that decide on the others' results
 * do so now. */
static void settle(struct checks *c, enum rule_stage stage)
{
	size_t n;
	const struct check_def *const *rows = checks_registry(&n);

	for (size_t i = 0; i < n && i < CHECKS_MAX; i++)
		if (rows[i]->stage == stage && rows[i]->settle && c->slot[i].done) {
			rows[i]->settle(c->slot[i].result, c);
			count(&c->slot[i], 1);
		}
}

/* Decide the stage and tell the caller. */
static void stage_done(struct checks *c, enum rule_stage stage)
{
	struct verdict v;

	settle(c, stage);

	if (stage == STAGE_MAIL && !c->t)
		refuse(&v, R_LOCAL_ERROR, NULL, "out of memory", c->opt.hostname);
	else if (stage == STAGE_DATA && !c->t)
		go_on(&v); /* DATA without MAIL: not from a session */
	else
		decide(c, stage, 0, &v);
	c->done(c->done_arg, &v);
}

/* Every check of the stage is in before its start call returned: the
 * verdict still comes later, on the loop's next turn (dns.h states the rule). */
static void decide_later(struct checks *c, enum rule_stage stage)
{
	c->stage = stage;
	event_active(c->later, EV_READ, 0);
}

static void on_later(evutil_socket_t fd, short what, void *arg)
{
	struct checks *c = arg;

	stage_done(c, c->stage);
}

/* ---- running a stage's checks ------------------------------------------------ */

static void slot_reset(struct slot *sl, const struct check_def *def)
{
	if (sl->handle)
		def->cancel(sl->handle);
	free(sl->result);
	sl->result = NULL;
	sl->handle = NULL;
	sl->done = 0;
}

/* The word row i's result counts under (metrics.h), -1: unknown. */
static int outcome(const struct check_def *def, const void *result)
{
	struct rule_value v[CHECK_OUTCOME_FACTS];
	const char *names[CHECK_OUTCOME_FACTS][CHECK_NAMES_MAX];

	if (def->result)
		return def->result(result);
	if (def->nfacts < 1 || def->nfacts > CHECK_OUTCOME_FACTS || def->facts[0].kind != RULE_WORD)
		return -1;
	memset(v, 0, sizeof v);
	def->values(result, v, names);
	return v[0].known ? v[0].word : -1;
}

/* Count a check's result: when it is in, or for a row that settles on the
 * others' results, once settled. */
static void count(const struct slot *sl, int settled)
{
	size_t n;
	const struct check_def *const *rows = checks_registry(&n);
	size_t i = (size_t)(sl - sl->c->slot);

	if (metrics_on() && i < n && settled == (rows[i]->settle != NULL))
		metrics_check((int)i, outcome(rows[i], sl->result));
}

void checks_metrics_names(struct metrics_names *mn)
{
	size_t n;
	const struct check_def *const *rows = checks_registry(&n);

	mn->nchecks = 0;
	for (size_t i = 0; i < n && i < MOAT_METRICS_CHECKS_MAX; i++) {
		const char *const *w = rows[i]->results ? rows[i]->results
		                        : rows[i]->nfacts ? rows[i]->facts[0].words : NULL;

		mn->checks[i] = rows[i]->name;
		for (size_t k = 0; w && w[k] && k < MOAT_METRICS_RESULTS_MAX; k++)
			mn->results[i][k] = w[k];
		mn->nchecks++;
	}
}

static void slot_done(void *arg)
{
	struct slot *sl = arg;
	struct checks *c = sl->c;

	sl->handle = NULL;
	sl->done = 1;
	count(sl, 0);
	if (--c->pending == 0)
		stage_done(c, c->stage);
}

/* The header section's fields for the header rules (split in a copy). */
static void split_headers(struct checks_txn *t)
{
	t->header_buf = malloc(t->header.len + 1);
	t->headers = calloc(MOAT_HEADER_FIELDS_MAX, sizeof *t->headers);
	if (!t->header_buf || !t->headers)
		return;
	memcpy(t->header_buf, t->header.buf ? t->header.buf : "", t->header.len);
	t->nheaders = rules_split_headers(t->header_buf, t->header.len, t->headers, MOAT_HEADER_FIELDS_MAX);
}

/* The header section, read once when the header rules or a wanted check
 * read it. 0, or -1 (not read: a check reads it itself). */
static int read_header(struct checks *c, const struct check_def *const *rows, size_t n,
                       const struct check_ctx *ctx)
{
	int rules = c->rs && (ruleset_uses(c->rs) & (1u << FACT_HEADER)) && ruleset_stage_count(c->rs, STAGE_DATA);
	int wanted = rules;

	for (size_t i = 0; i < n && i < CHECKS_MAX && !wanted; i++)
		wanted = rows[i]->stage == STAGE_DATA && rows[i]->wants_header &&
		         rows[i]->wanted(ctx, c->rs, checks_first_fact(i));
	if (!wanted || msg_header_read(ctx->rd, ctx->rarg, ctx->size, MOAT_HEADER_READ_MAX, &c->t->header) < 0)
		return -1;
	if (rules)
		split_headers(c->t);
	return 0;
}

/* A row's result, zeroed as far as it asks (a large tail it fills itself
 * is left as malloc gives it: zeroing it cost more than the check). */
static void *result_new(const struct check_def *def)
{
	void *r;

	if (!def->result_zero || def->result_zero >= def->result_size)
		return calloc(1, def->result_size);
	if ((r = malloc(def->result_size)))
		memset(r, 0, def->result_zero);
	return r;
}

/* Start every wanted check of the stage; the verdict comes when the last
 * is in (on the next turn if none is in flight). */
static void run_stage(struct checks *c, enum rule_stage stage, msg_reader rd, void *rarg, size_t size)
{
	size_t n;
	const struct check_def *const *rows = checks_registry(&n);
	struct check_ctx ctx = {
		.opt = &c->opt,
		.env = &c->env,
		.client = (const struct sockaddr *)&c->client,
		.client_ip = c->client_ip,
		.helo = c->helo ? c->helo : "",
		.listener = c->listener,
		.from = c->t ? &c->t->from : NULL,
		.rd = rd,
		.rarg = rarg,
		.size = size,
	};

	c->stage = stage;
	ctx.txn = c->t;
	if (stage == STAGE_DATA && c->t) {
		free(c->t->author); /* read from this header section, when asked */
		c->t->author = NULL;
	}
	if (stage == STAGE_DATA && c->t && read_header(c, rows, n, &ctx) == 0)
		ctx.header = &c->t->header;
	c->pending = 1; /* held until every check has started */
	for (size_t i = 0; i < n && i < CHECKS_MAX; i++) {
		struct slot *sl = &c->slot[i];

		if (rows[i]->stage != stage || !rows[i]->wanted(&ctx, c->rs, checks_first_fact(i)))
			continue;
		slot_reset(sl, rows[i]);
		if (!(sl->result = result_new(rows[i])))
			continue; /* not run: its facts stay unknown */
		if ((sl->handle = rows[i]->start(&ctx, sl->result, slot_done, sl)))
			c->pending++;
		else
			sl->done = 1; /* answered at once */
		if (sl->done)
			count(sl, 0);
	}
	if (--c->pending == 0)
		decide_later(c, stage);
}

/* Forget the results of the checks of a stage and later (a new
 * transaction), cancelling any in flight. */
static void slots_forget(struct checks *c, enum rule_stage from)
{
	size_t n;
	const struct check_def *const *rows = checks_registry(&n);

	for (size_t i = 0; i < n && i < CHECKS_MAX; i++)
		if (rows[i]->stage >= from)
			slot_reset(&c->slot[i], rows[i]);
}

const struct dmarc_from *checks_author(const struct check_ctx *ctx)
{
	struct checks_txn *t = ctx->txn;

	if (!t || !ctx->header || ctx->header != &t->header)
		return NULL;
	if (!t->author) {
		if (!(t->author = malloc(sizeof *t->author)))
			return NULL;
		dmarc_from_scan(t->header.buf ? t->header.buf : "", t->header.len, t->author);
	}
	return t->author;
}

const void *checks_result(const struct checks *c, const struct check_def *def)
{
	size_t n;
	const struct check_def *const *rows = checks_registry(&n);

	for (size_t i = 0; c && i < n && i < CHECKS_MAX; i++)
		if (rows[i] == def)
			return c->slot[i].done ? c->slot[i].result : NULL;
	return NULL;
}

int checks_in_txn(const struct checks *c)
{
	return c && c->t;
}

void checks_log(const struct checks *c, struct jline *j)
{
	size_t n;
	const struct check_def *const *rows = checks_registry(&n);

	for (size_t i = 0; i < n && i < CHECKS_MAX; i++)
		rows[i]->log(c && c->slot[i].done ? c->slot[i].result : NULL, j);
}

int checks_authres(const struct checks *c, const char *authserv_id, int utf8, char *buf, size_t size)
{
	size_t n;
	const struct check_def *const *rows = checks_registry(&n);
	struct authres a;

	authres_begin(&a, buf, size, authserv_id, utf8);
	for (size_t i = 0; i < n && i < CHECKS_MAX; i++)
		if (rows[i]->authres && c && c->slot[i].done)
			rows[i]->authres(c->slot[i].result, &a);
	return authres_end(&a);
}

void checks_describe(const struct checks *c, enum rule_stage stage, char *buf, size_t size)
{
	size_t n, len = 0;
	const struct check_def *const *rows = checks_registry(&n);

	buf[0] = '\0';
	for (size_t i = 0; i < n && i < CHECKS_MAX && len < size; i++) {
		char what[512] = "(not run)";

		if (rows[i]->stage != stage)
			continue;
		if (c->slot[i].done)
			rows[i]->describe(c->slot[i].result, what, sizeof what);
		len += (size_t)snprintf(buf + len, size - len, "%s%s %s", len ? ", " : "", rows[i]->name, what);
	}
}

/* ---- connect ---------------------------------------------------------------- */

void checks_connect(struct checks *c, verdict_cb done, void *arg)
{
	c->done = done;
	c->done_arg = arg;
	run_stage(c, STAGE_CONNECT, NULL, NULL, 0);
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
	decide(c, STAGE_HELO, 0, out);
}

void checks_listener(struct checks *c, enum listener_kind k)
{
	c->listener = k;
}

int checks_auth(struct checks *c, const char *user)
{
	char *u = strdup(user);

	if (!u)
		return -1;
	free(c->auth_user);
	c->auth_user = u;
	return 0;
}

void checks_tls(struct checks *c)
{
	c->tls = 1;
	/* RFC 3207 4.2: what the client said before is forgotten; a new HELO
	 * comes (and replaces the HELO stage's tags, as any HELO does) */
	free(c->helo);
	c->helo = NULL;
	checks_txn_end(c);
}

/* ---- MAIL -------------------------------------------------------------------- */

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
	rule_address(c->t->from_addr, sizeof c->t->from_addr, from);
	run_stage(c, STAGE_MAIL, NULL, NULL, 0);
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
	v->rule_id = NULL;
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
	rule_address(c->t->cur_addr, sizeof c->t->cur_addr, rcpt);
	r->addr = c->t->cur_addr;
	r->domain = c->t->cur.ascii_domain;
	r->greylisted = GREY_NONE;
	r->relay = relay_check(&c->opt, (const struct sockaddr *)&c->client, rcpt);
	/* an authenticated client relays (RFC 6409), as a trusted one does;
	 * routing syntax stays refused */
	if (r->relay == RELAY_DENIED && c->auth_user)
		r->relay = RELAY_OK;
	r->local = rcpt->domain[0] && relay_domain_is_local(&c->opt, rcpt->ascii_domain);
	r->known = !c->opt.rcpt_table || !r->local ||
	           recipients_has(c->opt.rcpt_table, rcpt->local, rcpt->ascii_domain);
	decide(c, STAGE_RCPT, r->relay != RELAY_OK, out);
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
	sr->greylisted = t->cur_r.greylisted;
	t->nrcpts++;
}

void checks_rcpt_greylisted(struct checks *c, enum rule_grey g)
{
	if (c->t)
		c->t->cur_r.greylisted = g;
}

size_t checks_nrcpts(const struct checks *c)
{
	return c && c->t ? c->t->nrcpts : 0;
}

const char *checks_rcpt_addr(const struct checks *c, size_t i)
{
	return i < checks_nrcpts(c) ? c->t->rcpts[i].addr : NULL;
}

void checks_rcpt_greylisted_at(struct checks *c, size_t i, enum rule_grey g)
{
	if (i < checks_nrcpts(c))
		c->t->rcpts[i].greylisted = g;
}

void checks_greylist_text(const struct checks *c, char *buf, size_t size)
{
	size_t i, n = 0;
	int any = 0;

	buf[0] = '\0';
	for (i = 0; c && c->t && i < c->t->nrcpts; i++)
		any |= c->t->rcpts[i].greylisted != GREY_NONE;
	for (i = 0; any && i < c->t->nrcpts && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? "," : "", rules_grey_name(c->t->rcpts[i].greylisted));
	if (n >= size && size)
		buf[size - 1] = '\0';
}

/* ---- DATA -------------------------------------------------------------------- */

void checks_data(struct checks *c, msg_reader rd, void *rarg, size_t size, verdict_cb done, void *arg)
{
	c->done = done;
	c->done_arg = arg;
	if (!c->t) { /* DATA without MAIL: not from a session */
		decide_later(c, STAGE_DATA);
		return;
	}
	c->t->size = size;
	run_stage(c, STAGE_DATA, rd, rarg, size);
}

void checks_header_field(struct checks *c, const char *field, size_t len, int truncated)
{
	size_t n;
	const struct check_def *const *rows = checks_registry(&n);

	if (!c->t || c->t->early >= MOAT_EARLY_LOOKUPS_MAX)
		return;
	for (size_t i = 0; i < n && i < CHECKS_MAX; i++)
		if (rows[i]->header_field)
			c->t->early += rows[i]->header_field(&c->opt, &c->env, field, len, truncated);
}

/* ---- end ------------------------------------------------------------------- */

void checks_txn_end(struct checks *c)
{
	struct checks_txn *t;
	size_t i;

	if (!c)
		return;
	if (c->stage >= STAGE_MAIL)
		event_del(c->later); /* its verdict due on the next turn, too */
	slots_forget(c, STAGE_MAIL);
	if (c->stage >= STAGE_MAIL)
		c->pending = 0;
	if ((t = c->t)) {
		for (i = 0; i < t->nrcpts; i++) {
			free(t->rcpts[i].addr);
			free(t->rcpts[i].domain);
		}
		free(t->rcpts);
		free(t->headers);
		free(t->header_buf);
		free(t->author);
		msg_header_free(&t->header);
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
	slots_forget(c, STAGE_CONNECT);
	event_free(c->later);
	free(c->helo);
	free(c->auth_user);
	free(c->tags);
	free(c);
}
