/* eval.c - evaluate a ruleset over a session's facts; pure: no I/O, no DNS.
 *
 * First match decides, within a stage; earlier-stage accepts still hold;
 * at data, recipient facts are tried per recipient (see rules.h). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "rules/ruleset.h"

const struct rules_kw rules_kw_relay[] = {
	{ "ok", RELAY_OK }, { "denied", RELAY_DENIED }, { "routing", RELAY_BAD_ROUTING }, { NULL, 0 },
};

const struct rules_kw rules_kw_listener[] = {
	{ "smtp", LISTENER_SMTP }, { "smtps", LISTENER_SMTPS }, { "submission", LISTENER_SUBMISSION }, { NULL, 0 },
};

const struct rules_kw rules_kw_grey[] = {
	{ "none", GREY_NONE }, { "first", GREY_FIRST }, { "early", GREY_EARLY }, { "passed", GREY_PASSED },
	{ "allowed", GREY_ALLOWED }, { "skipped", GREY_SKIPPED }, { NULL, 0 },
};

const char *rules_grey_name(enum rule_grey g)
{
	return (unsigned)g < GREY_STATES ? rules_kw_grey[g].name : "?";
}

/* ---- variables ---- */

enum var {
	VAR_CLIENT, VAR_HELO, VAR_SENDER, VAR_SENDER_DOMAIN, VAR_RCPT, VAR_RCPT_DOMAIN, VAR_HOSTNAME, VAR_AUTH_USER,
	VAR_COUNT
};

static const char *const var_names[VAR_COUNT] = {
	[VAR_CLIENT] = "client", [VAR_HELO] = "helo", [VAR_SENDER] = "sender",
	[VAR_SENDER_DOMAIN] = "sender_domain", [VAR_RCPT] = "rcpt", [VAR_RCPT_DOMAIN] = "rcpt_domain",
	[VAR_HOSTNAME] = "hostname", [VAR_AUTH_USER] = "auth_user",
};

_Static_assert(VAR_COUNT == RULES_VARS, "RULES_VARS in ruleset.h");

/* A vocabulary fact's name as a variable: '-' is '_'. */
static int vocab_name_is(const char *fact, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < len && fact[i]; i++) {
		char a = fact[i] == '-' ? '_' : fact[i], b = name[i];

		if ((a >= 'A' && a <= 'Z' ? a + 32 : a) != (b >= 'A' && b <= 'Z' ? b + 32 : b))
			return 0;
	}
	return i == len && fact[i] == '\0';
}

int rules_var_lookup(const struct rule_vocab *vocab, const char *name, size_t len)
{
	for (int i = 0; i < VAR_COUNT; i++)
		if (strlen(var_names[i]) == len && strncasecmp(var_names[i], name, len) == 0)
			return i;
	for (size_t i = 0; vocab && i < vocab->n; i++)
		if (vocab_name_is(vocab->facts[i].name, name, len))
			return VAR_COUNT + (int)i;
	return -1;
}

/* What %{NAME} gives for a vocabulary fact. */
static const char *value_text(const struct rule_vocab_fact *d, const struct rule_value *v)
{
	if (!v || !v->known)
		return NULL;
	return d->kind == RULE_WORD ? d->words[v->word] : v->text;
}

static const char *var_value(const struct ruleset *rs, int v, const struct rule_facts *f,
                             const struct rule_rcpt *rc)
{
	const char *s = NULL;

	switch (v) {
	case VAR_CLIENT: s = f->client_ip; break;
	case VAR_HELO: s = f->helo; break;
	case VAR_SENDER: s = f->sender; break;
	case VAR_SENDER_DOMAIN: s = f->sender_domain; break;
	case VAR_RCPT: s = rc ? rc->addr : NULL; break;
	case VAR_RCPT_DOMAIN: s = rc ? rc->domain : NULL; break;
	case VAR_HOSTNAME: s = f->hostname; break;
	case VAR_AUTH_USER: s = f->auth_user; break;
	default:
		if (v >= VAR_COUNT && rs->vocab && (size_t)(v - VAR_COUNT) < rs->vocab->n)
			s = value_text(&rs->vocab->facts[v - VAR_COUNT], f->values ? &f->values[v - VAR_COUNT] : NULL);
	}
	return s ? s : "";
}

/* Append s, control bytes as '?' (no CR/LF may reach a reply or a header). */
static void put(char *out, size_t size, size_t *n, const char *s, size_t len)
{
	for (size_t i = 0; i < len && *n + 1 < size; i++)
		out[(*n)++] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
}

/* Expand "%{name}" and "%%"; the parser checked the template. */
static void expand(const struct ruleset *rs, const char *tpl, const struct rule_facts *f,
                   const struct rule_rcpt *rc, char *out, size_t size)
{
	size_t n = 0;

	for (const char *t = tpl; *t;) {
		const char *end;
		int v;

		if (t[0] == '%' && t[1] == '%') {
			put(out, size, &n, "%", 1);
			t += 2;
		} else if (t[0] == '%' && t[1] == '{' && (end = strchr(t, '}')) &&
		           (v = rules_var_lookup(rs->vocab, t + 2, (size_t)(end - t - 2))) >= 0) {
			const char *s = var_value(rs, v, f, rc);

			put(out, size, &n, s, strlen(s));
			t = end + 1;
		} else {
			put(out, size, &n, t, 1);
			t++;
		}
	}
	out[n] = '\0';
}

/* ---- facts ---- */

/* Lower-case copy without a trailing dot; -1 if it does not fit. */
static int lower_copy(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n > 1 && src[n - 1] == '.')
		n--;
	if (n >= size)
		return -1;
	for (size_t i = 0; i < n; i++)
		dst[i] = (src[i] >= 'A' && src[i] <= 'Z') ? (char)(src[i] - 'A' + 'a') : src[i];
	dst[n] = '\0';
	return (int)n;
}

/* A host or domain name against NAME, .SUFFIX, list or /regex/. */
static int name_match(const struct cond *c, const char *name)
{
	char buf[LIST_ENTRY_MAX + 1];
	int n;
	size_t l;

	if (!name || !*name)
		return 0;
	if (c->arg == ARG_REGEX)
		return regexec(&c->re, name, 0, NULL, 0) == 0;
	if ((n = lower_copy(buf, sizeof buf, name)) < 0)
		return 0;
	switch (c->arg) {
	case ARG_NAME:
		return strcmp(buf, c->text) == 0;
	case ARG_SUFFIX: /* ".example.com" matches strict subdomains only */
		l = strlen(c->text);
		return (size_t)n > l && strcmp(buf + n - l, c->text) == 0;
	case ARG_LIST:
		return list_has_name(c->list, buf);
	default:
		return 0;
	}
}

/* An address against ADDRESS, @DOMAIN or a list. */
static int addr_match(const struct cond *c, const char *addr)
{
	char buf[LIST_ENTRY_MAX + 1];
	const char *at;

	if (!addr || !*addr || lower_copy(buf, sizeof buf, addr) < 0)
		return 0;
	switch (c->arg) {
	case ARG_ADDRESS:
		return strcmp(buf, c->text) == 0;
	case ARG_ATDOMAIN:
		return (at = strrchr(buf, '@')) != NULL && strcmp(at, c->text) == 0;
	case ARG_LIST:
		return list_has_address(c->list, buf);
	default:
		return 0;
	}
}

/* A login name against LOGIN, @DOMAIN, a list of addresses or a /regex/. */
static int login_match(const struct cond *c, const char *user)
{
	char buf[LIST_ENTRY_MAX + 1];
	size_t n;

	if (!user || !*user)
		return 0;
	if (c->arg == ARG_REGEX)
		return regexec(&c->re, user, 0, NULL, 0) == 0;
	if ((n = strlen(user)) > LIST_ENTRY_MAX)
		return 0;
	for (size_t i = 0; i <= n; i++) /* lower case, as the argument; a trailing dot stays */
		buf[i] = (user[i] >= 'A' && user[i] <= 'Z') ? (char)(user[i] - 'A' + 'a') : user[i];
	if (c->arg == ARG_LOGIN)
		return strcmp(buf, c->text) == 0;
	return addr_match(c, buf);
}

/* A fact of the vocabulary: its word, a name it found, or none found. */
static int value_true(const struct cond *c, const struct rule_facts *f)
{
	const struct rule_value *v = f->values ? &f->values[c->index] : NULL;

	if (c->arg == ARG_KEYWORD && c->value < 0) /* NAMES "none" */
		return !v || !v->known || v->nnames == 0;
	if (!v || !v->known)
		return 0;
	if (c->arg == ARG_KEYWORD)
		return v->word == c->value;
	if (c->arg == ARG_NUMBER) {
		long b = c->value >= 0 ? (v->named ? v->named[c->value] : 0) : c->num;

		switch (c->cmp) {
		case CMP_LT: return v->number < b;
		case CMP_LE: return v->number <= b;
		case CMP_EQ: return v->number == b;
		case CMP_GE: return v->number >= b;
		case CMP_GT: return v->number > b;
		}
		return 0;
	}
	for (size_t i = 0; i < v->nnames; i++)
		if (name_match(c, v->names[i]))
			return 1;
	return 0;
}

static int header_match(const struct cond *c, const struct rule_facts *f)
{
	for (size_t i = 0; i < f->nheaders; i++)
		if (f->headers[i].name && f->headers[i].value && strcasecmp(f->headers[i].name, c->text) == 0 &&
		    regexec(&c->re, f->headers[i].value, 0, NULL, 0) == 0)
			return 1;
	return 0;
}

static int fact_true(const struct cond *c, const struct rule_facts *f, const struct rule_rcpt *rc)
{
	switch (c->fact) {
	case FACT_CLIENT:
		if (c->arg == ARG_KEYWORD)
			return c->value == 2 ? f->forwarder : f->trusted;
		if (c->arg == ARG_CIDR)
			return f->client && cidr_match(&c->cidr, f->client);
		return f->client && list_has_ip(c->list, f->client);
	case FACT_TLS:
		return f->tls;
	case FACT_AUTH:
		return f->authenticated;
	case FACT_AUTH_USER:
		return f->authenticated && login_match(c, f->auth_user);
	case FACT_LISTENER:
		return (int)f->listener == c->value;
	case FACT_HELO:
		return name_match(c, f->helo);
	case FACT_SENDER:
		if (!f->sender)
			return 0;
		if (c->arg == ARG_KEYWORD)
			return f->sender[0] == '\0';
		return addr_match(c, f->sender);
	case FACT_SENDER_DOMAIN:
		return name_match(c, f->sender_domain);
	case FACT_RCPT:
		return rc && addr_match(c, rc->addr);
	case FACT_RCPT_DOMAIN:
		if (!rc)
			return 0;
		return c->arg == ARG_KEYWORD ? rc->local : name_match(c, rc->domain);
	case FACT_RELAY:
		return rc && (int)rc->relay == c->value;
	case FACT_RCPT_KNOWN:
		return rc && rc->known;
	case FACT_CHECK:
		return value_true(c, f);
	case FACT_HEADER:
		return header_match(c, f);
	case FACT_SIZE:
		return c->arg == ARG_SIZE_GT ? f->size > c->size : f->size < c->size;
	case FACT_GREYLISTED:
		return rc && (int)rc->greylisted == c->value;
	case FACT_COUNT:
		break;
	}
	return 0;
}

static int cond_true(const struct cond *c, const struct rule_facts *f, const struct rule_rcpt *rc)
{
	if (!c)
		return 1; /* a ratelimit without a condition */
	for (;;) {
		switch (c->op) {
		case COND_FACT:
			return fact_true(c, f, rc);
		case COND_NOT:
			return !cond_true(c->a, f, rc);
		case COND_AND:
			if (!cond_true(c->a, f, rc))
				return 0;
			c = c->b;
			break;
		case COND_OR:
			if (cond_true(c->a, f, rc))
				return 1;
			c = c->b;
			break;
		}
	}
}

/* Does r hold at this stage? At data a rule on recipient facts is tried for
 * each recipient: one is enough to refuse, tag or log (*which is set to it),
 * an accept needs them all. Without recipients, recipient facts are false. */
static int rule_holds(const struct rule *r, enum rule_stage stage, const struct rule_facts *f,
                      const struct rule_rcpt **which)
{
	*which = stage == STAGE_RCPT ? f->rcpt : NULL;
	if (stage != STAGE_DATA || !r->uses_rcpt || f->nrcpts == 0 || !f->rcpts)
		return cond_true(r->cond, f, *which);
	for (size_t i = 0; i < f->nrcpts; i++) {
		int m = cond_true(r->cond, f, &f->rcpts[i]);

		if (r->action == ACTION_ACCEPT && !m)
			return 0;
		if (r->action != ACTION_ACCEPT && m) {
			*which = &f->rcpts[i];
			return 1;
		}
	}
	return r->action == ACTION_ACCEPT;
}

static void fill(const struct ruleset *rs, struct rule_verdict *v, const struct rule *r,
                 const struct rule_facts *f, const struct rule_rcpt *rc, int monitor, int inherited)
{
	v->action = r->action;
	v->monitor = monitor;
	v->inherited = inherited;
	v->stage = r->stage;
	v->code = r->code;
	memcpy(v->esc, r->esc, sizeof v->esc);
	v->text[0] = '\0';
	if (r->text)
		expand(rs, r->text, f, rc, v->text, sizeof v->text);
	v->reason[0] = '\0';
	if (r->note)
		expand(rs, r->note, f, rc, v->reason, sizeof v->reason);
	if (v->reason[0] == '\0') { /* no note, or it came out empty */
		size_t n = 0;

		put(v->reason, sizeof v->reason, &n, r->what, strlen(r->what));
		v->reason[n] = '\0';
	}
	v->file = r->file;
	v->line = r->line;
	v->id = r->id;
}

static void hit(const struct ruleset *rs, struct rule_decision *out, const struct rule *r,
                const struct rule_facts *f, const struct rule_rcpt *rc, int monitor)
{
	if (out->nhits >= RULES_HITS_MAX) {
		out->hits_dropped++;
		return;
	}
	fill(rs, &out->hits[out->nhits++], r, f, rc, monitor, 0);
}

static void limit(struct rule_limit *l, const struct rule *r)
{
	*l = r->limit;
	l->file = r->file;
	l->line = r->line;
	l->id = r->id;
}

enum rule_action rules_eval(const struct ruleset *rs, enum rule_stage stage,
                            const struct rule_facts *f, int monitor, struct rule_decision *out)
{
	out->action = ACTION_NONE;
	out->nhits = 0;
	out->hits_dropped = 0;
	out->greylist = 0;
	out->nlimits = 0;
	memset(&out->decided, 0, sizeof out->decided);
	if (!rs || !f)
		return ACTION_NONE;
	for (size_t i = 0; i < rs->nrules; i++) {
		const struct rule *r = &rs->rules[i];
		const struct rule_rcpt *rc;

		if (r->stage > stage)
			continue;
		if (r->stage < stage) {
			/* An accept decided earlier still holds where it stands. */
			if (r->action == ACTION_ACCEPT && !r->monitor && rule_holds(r, stage, f, &rc)) {
				fill(rs, &out->decided, r, f, rc, 0, 1);
				return out->action = ACTION_ACCEPT;
			}
			continue;
		}
		if (!rule_holds(r, stage, f, &rc))
			continue;
		switch (r->action) {
		case ACTION_ACCEPT:
		case ACTION_REJECT:
		case ACTION_TEMPFAIL:
			/* Global monitor mode only holds back refusals. */
			if (r->monitor || (monitor && r->action != ACTION_ACCEPT)) {
				hit(rs, out, r, f, rc, 1);
				break;
			}
			fill(rs, &out->decided, r, f, rc, 0, 0);
			return out->action = r->action;
		case ACTION_TAG:
		case ACTION_LOG:
			hit(rs, out, r, f, rc, r->monitor);
			break;
		case ACTION_GREYLIST:
		case ACTION_RATELIMIT:
			/* refusals to be: global monitor mode holds them back too */
			if (r->monitor || monitor)
				hit(rs, out, r, f, rc, 1);
			else if (r->action == ACTION_GREYLIST && !out->greylist) {
				fill(rs, &out->grey, r, f, rc, 0, 0);
				out->greylist = 1;
			} else if (r->action == ACTION_RATELIMIT && out->nlimits < RULES_LIMITS_MAX)
				limit(&out->limits[out->nlimits++], r);
			break;
		case ACTION_NONE:
			break;
		}
	}
	return ACTION_NONE;
}

/* ---- header section ---- */

static int field_name_char(char ch)
{
	return ch > ' ' && ch < 0x7f && ch != ':';
}

/* End of the line starting at r: the LF (or len); *content: without a CR. */
static size_t line_end(const char *buf, size_t r, size_t len, size_t *content)
{
	const char *nl = memchr(buf + r, '\n', len - r);
	size_t e = nl ? (size_t)(nl - buf) : len;

	*content = e > r && buf[e - 1] == '\r' ? e - 1 : e;
	return e;
}

size_t rules_split_headers(char *buf, size_t len, struct rule_header *out, size_t max)
{
	size_t r = 0, w = 0, nf = 0;

	/* Fields are copied down to w as they are unfolded; w never passes r
	 * because every line gives up at least its LF. */
	while (r < len && nf < max) {
		size_t c, e = line_end(buf, r, len, &c), p = r, colon;

		while (p < c && field_name_char(buf[p]))
			p++;
		colon = p;
		while (colon < c && (buf[colon] == ' ' || buf[colon] == '\t'))
			colon++; /* obsolete "Subject :" */
		if (p == r || colon >= c || buf[colon] != ':')
			break; /* the empty line, or not a field: the header ends */
		out[nf].name = buf + w;
		memmove(buf + w, buf + r, p - r);
		w += p - r;
		buf[w++] = '\0';
		out[nf].value = buf + w;
		p = colon + 1;
		size_t vstart = w;

		for (;;) {
			for (; p < c; p++) {
				if (w == vstart && (buf[p] == ' ' || buf[p] == '\t'))
					continue; /* leading blanks */
				buf[w++] = buf[p];
			}
			r = e < len ? e + 1 : len;
			if (r >= len || (buf[r] != ' ' && buf[r] != '\t'))
				break;
			e = line_end(buf, r, len, &c); /* a continuation line: keep its blank */
			p = r;
		}
		while (w > vstart && (buf[w - 1] == ' ' || buf[w - 1] == '\t'))
			w--;
		buf[w++] = '\0';
		nf++;
	}
	return nf;
}

/* ---- names ---- */

const char *rules_stage_name(enum rule_stage s)
{
	static const char *const names[STAGE_COUNT] = { "connect", "helo", "mail", "rcpt", "data" };

	return (unsigned)s < STAGE_COUNT ? names[s] : "?";
}

const char *rules_listener_name(enum listener_kind k)
{
	return (unsigned)k < LISTENER_KINDS ? rules_kw_listener[k].name : "?";
}

void rules_where(char *buf, size_t size, const char *file, int line)
{
	if (!file)
		buf[0] = '\0';
	else if (line > 0)
		snprintf(buf, size, "%s:%d", file, line);
	else
		snprintf(buf, size, "%s", file);
}

const char *rules_action_name(enum rule_action a)
{
	static const char *const names[] = { "none", "accept", "reject", "tempfail", "tag", "log", "greylist",
		                                     "ratelimit" };

	return (unsigned)a < sizeof names / sizeof names[0] ? names[a] : "?";
}
