/* parse.c - the rule language: lines, words, conditions, replies; includes
 * and lists; the ruleset's life.
 *
 * A rule file is read line by line (a trailing backslash joins the next
 * line), each rule is cut into words and parsed by recursive descent:
 *
 *   rule      = ACTION ["monitor"] condition [REPLY] ["header" STRING] ["note" STRING] ["id" NAME]
 *   condition = all ("or" all)*
 *   all       = term ("and" term)*
 *   term      = "not" term | "(" condition ")" | FACT [ARGUMENT]
 *
 * The facts are a declarative table (facts[]: name, stage, the arguments
 * it takes). Everything is checked here, at load, so that evaluation cannot
 * fail: regexes are compiled, lists read, reply codes matched against the
 * action, variables looked up. The first error stops the load. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "proxy/lib/bounds.h"
#include "proxy/lib/readfile.h"
#include "proxy/lib/text.h"
#include "rules/parser.h"
#include "rules/regex.h"
#include "rules/ruleset.h"

/* The built-in policy, rules_default_text, is rules/default.rules itself:
 * the Makefile compiles it in (build/gen/rules_default.c). */

/* ---- facts ---- */

enum {
	A_NONE = 0,
	A_KEYWORD = 1 << ARG_KEYWORD,
	A_NAME = 1 << ARG_NAME,
	A_SUFFIX = 1 << ARG_SUFFIX,
	A_ADDRESS = 1 << ARG_ADDRESS,
	A_ATDOMAIN = 1 << ARG_ATDOMAIN,
	A_CIDR = 1 << ARG_CIDR,
	A_LIST = 1 << ARG_LIST,
	A_REGEX = 1 << ARG_REGEX,
	A_LOGIN = 1 << ARG_LOGIN,
	A_SPECIAL = 1 << 30, /* header, size: their own syntax */
};

static const struct rules_kw kw_trusted[] = { { "trusted", 1 }, { "forwarder", 2 }, { NULL, 0 } };
static const struct rules_kw kw_none[] = { { "none", -1 }, { NULL, 0 } }; /* a names fact: no name */
static const struct rules_kw kw_null[] = { { "null", 1 }, { NULL, 0 } };
static const struct rules_kw kw_local[] = { { "local", 1 }, { NULL, 0 } };

struct fact_def {
	const char *name;
	enum rule_fact fact;
	enum rule_stage stage;
	unsigned args;              /* A_* accepted */
	const struct rules_kw *kw;  /* with A_KEYWORD */
	enum list_kind list;        /* with A_LIST */
	const char *usage;          /* what the argument may be; NULL: the keywords */
};

static const struct fact_def facts[] = {
	{ "client", FACT_CLIENT, STAGE_CONNECT, A_CIDR | A_LIST | A_KEYWORD, kw_trusted, LIST_NETWORKS,
	  "an address or network, list:PATH, trusted or forwarder" },
	{ "listener", FACT_LISTENER, STAGE_CONNECT, A_KEYWORD, rules_kw_listener, 0, NULL },
	{ "tls", FACT_TLS, STAGE_MAIL, A_NONE, NULL, 0, NULL }, /* final at MAIL: STARTTLS comes after connect */
	/* final at MAIL too: AUTH comes after EHLO */
	{ "authenticated", FACT_AUTH, STAGE_MAIL, A_NONE, NULL, 0, NULL },
	{ "auth-user", FACT_AUTH_USER, STAGE_MAIL, A_LOGIN | A_ATDOMAIN | A_LIST | A_REGEX, NULL, LIST_ADDRESSES,
	  "a login name, @domain, /regex/ or list:PATH" },
	{ "helo", FACT_HELO, STAGE_HELO, A_NAME | A_SUFFIX | A_REGEX | A_LIST, NULL, LIST_DOMAINS,
	  "a host name, .domain, /regex/ or list:PATH" },
	{ "sender", FACT_SENDER, STAGE_MAIL, A_ADDRESS | A_ATDOMAIN | A_LIST | A_KEYWORD, kw_null,
	  LIST_ADDRESSES, "an address, @domain, list:PATH or null" },
	{ "sender-domain", FACT_SENDER_DOMAIN, STAGE_MAIL, A_NAME | A_SUFFIX | A_LIST, NULL, LIST_DOMAINS,
	  "a domain, .domain or list:PATH" },
	{ "rcpt", FACT_RCPT, STAGE_RCPT, A_ADDRESS | A_ATDOMAIN | A_LIST, NULL, LIST_ADDRESSES,
	  "an address, @domain or list:PATH" },
	{ "rcpt-domain", FACT_RCPT_DOMAIN, STAGE_RCPT, A_NAME | A_SUFFIX | A_LIST | A_KEYWORD, kw_local,
	  LIST_DOMAINS, "a domain, .domain, list:PATH or local" },
	{ "relay", FACT_RELAY, STAGE_RCPT, A_KEYWORD, rules_kw_relay, 0, NULL },
	{ "rcpt-known", FACT_RCPT_KNOWN, STAGE_RCPT, A_NONE, NULL, 0, NULL },
	{ "header", FACT_HEADER, STAGE_DATA, A_SPECIAL, NULL, 0, "a field name and a /regex/" },
	{ "size", FACT_SIZE, STAGE_DATA, A_SPECIAL, NULL, 0,
	  "> or < and a number of bytes (K, M or G after it: KiB, MiB, GiB)" },
	/* a recipient's, known at data: greylisting answers after the rcpt rules */
	{ "greylisted", FACT_GREYLISTED, STAGE_DATA, A_KEYWORD, rules_kw_grey, 0, NULL },
};

static const char *const action_names[] = {
	[ACTION_ACCEPT] = "accept", [ACTION_REJECT] = "reject", [ACTION_TEMPFAIL] = "tempfail",
	[ACTION_TAG] = "tag", [ACTION_LOG] = "log", [ACTION_GREYLIST] = "greylist",
	[ACTION_RATELIMIT] = "ratelimit",
};

/* ---- the parser ---- */

int perr(struct parser *p, const char *fmt, ...)
{
	char what[MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (p->err && p->errsize)
		snprintf(p->err, p->errsize, "%s:%d: %s", p->file, p->line, what);
	return -1;
}

/* Untrusted text for a message (text_show of a string). */
const char *show(const char *s, char out[SHOW_MAX + 4])
{
	return text_show(s, strlen(s), out);
}

/* ---- words ---- */

/* A "string" or /regex/ starting at s[*i]; the text goes to *a. */
static int quoted(struct parser *p, const char *s, size_t *i, char **a)
{
	char q = s[(*i)++], shown[8];

	for (;;) {
		char ch = s[*i];

		if (ch == '\0')
			return perr(p, q == '"' ? "unterminated string" : "unterminated /regex/");
		if (ch == q) {
			(*i)++;
			break;
		}
		if (ch == '\\' && q == '"') {
			if (s[*i + 1] != '"' && s[*i + 1] != '\\') {
				snprintf(shown, sizeof shown, "\\%c", s[*i + 1] > ' ' && s[*i + 1] < 0x7f ? s[*i + 1] : '?');
				return perr(p, "unknown escape \"%s\" in a string (only \\\" and \\\\)", shown);
			}
			*(*a)++ = s[*i + 1];
			*i += 2;
		} else if (ch == '\\' && s[*i + 1] == '/') {
			*(*a)++ = '/'; /* "\/" is a slash inside a regex */
			*i += 2;
		} else if (ch == '\\' && s[*i + 1] != '\0') {
			*(*a)++ = ch;
			*(*a)++ = s[*i + 1];
			*i += 2;
		} else {
			*(*a)++ = ch;
			(*i)++;
		}
	}
	*(*a)++ = '\0';
	if (s[*i] != '\0' && !is_blank(s[*i]) && s[*i] != ')')
		return perr(p, "missing blank after %s", q == '"' ? "a string" : "a /regex/");
	return 0;
}

/* Cut p->text into p->tok; a '#' where a word would start ends the line. */
static int tokenize(struct parser *p)
{
	const char *s = p->text;
	char *a = p->arena, shown[SHOW_MAX + 4];
	size_t i = 0;

	p->ntok = 0;
	for (;;) {
		struct token *t;

		while (is_blank(s[i]))
			i++;
		if (s[i] == '\0' || s[i] == '#')
			break;
		if (p->ntok == TOKENS_MAX)
			return perr(p, "too many words in one rule (max %d)", TOKENS_MAX);
		t = &p->tok[p->ntok++];
		t->start = i;
		t->s = a;
		if (s[i] == '(' || s[i] == ')') {
			t->type = s[i] == '(' ? T_LPAREN : T_RPAREN;
			*a++ = s[i++];
			*a++ = '\0';
		} else if (s[i] == '"' || s[i] == '/') {
			t->type = s[i] == '"' ? T_STRING : T_REGEX;
			if (quoted(p, s, &i, &a) < 0)
				return -1;
		} else {
			t->type = T_WORD;
			while (s[i] && !is_blank(s[i]) && s[i] != '(' && s[i] != ')') {
				if (s[i] == '"') {
					*a = '\0';
					return perr(p, "missing blank before the string after \"%s\"", show(t->s, shown));
				}
				*a++ = s[i++];
			}
			*a++ = '\0';
		}
		t->end = i;
	}
	p->tok[p->ntok] = (struct token){ T_END, "", i, i };
	p->pos = 0;
	return 0;
}

static const struct token *peek(const struct parser *p)
{
	return &p->tok[p->pos];
}

static const struct token *next(struct parser *p)
{
	const struct token *t = &p->tok[p->pos];

	if (t->type != T_END)
		p->pos++;
	return t;
}

static int is_word(const struct token *t, const char *w)
{
	return t->type == T_WORD && strcasecmp(t->s, w) == 0;
}

/* Words that can never be a fact's argument. */
static int is_reserved(const struct token *t)
{
	return is_word(t, "and") || is_word(t, "or") || is_word(t, "not") || is_word(t, "header") ||
	       is_word(t, "note") || is_word(t, "id");
}

/* A word as written in the rule (quotes, slashes), for messages. */
static const char *as_written(const struct parser *p, const struct token *t, char out[SHOW_MAX + 4])
{
	char raw[SHOW_MAX + 2]; /* one byte more than shown, so that show() adds "..." */

	snprintf(raw, sizeof raw, "%.*s", (int)(t->end - t->start), p->text + t->start);
	return show(raw, out);
}

/* The previous word as written, for "missing ... after X". */
static const char *prev_text(const struct parser *p, char out[SHOW_MAX + 4])
{
	return show(p->pos > 0 ? p->tok[p->pos - 1].s : "", out);
}

/* ---- templates: reply texts, header fields, notes ---- */

/* Control bytes are refused; "%{name}" must be a known variable. */
static int check_template(struct parser *p, const char *what, const char *s)
{
	char shown[SHOW_MAX + 4];

	for (const char *t = s; *t; t++) {
		if ((unsigned char)*t < 0x20 || *t == 0x7f)
			return perr(p, "%s has a control character", what);
		if (t[0] == '%' && t[1] == '%') {
			t++;
		} else if (t[0] == '%' && t[1] == '{') {
			const char *end = strchr(t, '}');
			char name[SHOW_MAX + 1];
			int v;

			if (!end)
				return perr(p, "%s: \"%%{\" without \"}\"", what);
			if ((v = rules_var_lookup(p->rs->vocab, t + 2, (size_t)(end - t - 2))) < 0) {
				snprintf(name, sizeof name, "%.*s", (int)(end - t - 2), t + 2);
				return perr(p, "%s: unknown variable \"%%{%s}\"", what, show(name, shown));
			}
			/* a check's value in a template needs the check (%{rdns}
			 * the lookup) even when no condition tests it */
			if (v >= RULES_VARS)
				p->rs->uses_values |= (uint64_t)1 << (v - RULES_VARS);
			t = end;
		}
	}
	return 0;
}

static int digits(const char *s, int min, int max)
{
	int n = 0;

	while (s[n] >= '0' && s[n] <= '9')
		n++;
	return n >= min && n <= max ? n : 0;
}

/* "550 5.7.1 text": the code fits the action, the enhanced code fits the code. */
static int parse_reply(struct parser *p, struct rule *r, const char *s)
{
	char shown[SHOW_MAX + 4];
	const char *e = s + 4, *text;
	int n1, n2, want = r->action == ACTION_REJECT ? 5 : 4;

	if (digits(s, 3, 3) != 3 || s[3] != ' ' || !digits(e, 1, 1) || e[1] != '.' || !(n1 = digits(e + 2, 1, 3)) ||
	    e[2 + n1] != '.' || !(n2 = digits(e + 3 + n1, 1, 3)) || e[3 + n1 + n2] != ' ')
		return perr(p, "reply \"%s\" does not start with a code and an enhanced status code "
		               "(\"550 5.7.1 text\")", show(s, shown));
	r->code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	if (s[0] - '0' != want)
		return perr(p, "%s needs a %dxx reply code, not %d", action_names[r->action], want, r->code);
	if (e[0] != s[0])
		return perr(p, "enhanced status code %.*s does not go with reply code %d", 3 + n1 + n2, e,
		            r->code);
	snprintf(r->esc, sizeof r->esc, "%.*s", 3 + n1 + n2, e);
	text = e + 4 + n1 + n2;
	if (*text == '\0')
		return perr(p, "reply has no text after \"%d %s\"", r->code, r->esc);
	if (4 + strlen(r->esc) + 1 + strlen(text) + 2 > MOAT_REPLY_LINE_MAX)
		return perr(p, "reply longer than an SMTP reply line (%d bytes)", MOAT_REPLY_LINE_MAX);
	if (check_template(p, "reply", text) < 0)
		return -1;
	return (r->text = strdup(text)) ? 0 : perr(p, "out of memory");
}

static int field_name_char(char ch)
{
	return ch > ' ' && ch < 0x7f && ch != ':';
}

/* "Name: value" */
static int parse_header_field(struct parser *p, struct rule *r, const char *s)
{
	char shown[SHOW_MAX + 4];
	size_t n = 0;

	while (field_name_char(s[n]))
		n++;
	if (n == 0 || s[n] != ':' || s[n + 1 + strspn(s + n + 1, " \t")] == '\0')
		return perr(p, "header \"%s\" is not \"Name: value\"", show(s, shown));
	if (strlen(s) > 998)
		return perr(p, "header field longer than 998 bytes");
	if (check_template(p, "header", s) < 0)
		return -1;
	return (r->text = strdup(s)) ? 0 : perr(p, "out of memory");
}

/* ---- lists, paths ---- */

/* dir + path unless path is absolute. */
static int resolve(struct parser *p, const char *path, char out[RULES_PATH_MAX])
{
	char shown[SHOW_MAX + 4];
	int n = snprintf(out, RULES_PATH_MAX, "%s%s", path[0] == '/' ? "" : p->dir, path);

	if (n < 0 || n >= RULES_PATH_MAX)
		return perr(p, "path \"%s\" too long", show(path, shown));
	return 0;
}

/* A list named by several rules is read once. */
static const struct rule_list *get_list(struct parser *p, const char *path, enum list_kind kind)
{
	char full[RULES_PATH_MAX], msg[MSG_MAX];
	struct ruleset *rs = p->rs;
	struct rule_list *l, **ls;
	size_t n;

	if (resolve(p, path, full) < 0)
		return NULL;
	for (size_t i = 0; i < rs->nlists; i++)
		if (list_kind(rs->lists[i]) == kind && strcmp(list_name(rs->lists[i]), full) == 0)
			return rs->lists[i];
	if (!(l = list_load(full, kind, msg, sizeof msg))) {
		n = strlen(full);
		/* "PATH: cannot open: ..." belongs to this rule; "PATH:LINE: ..." stands alone */
		if (strncmp(msg, full, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
			perr(p, "list \"%s\": %s", full, msg + n + 2);
		else if (p->err && p->errsize)
			snprintf(p->err, p->errsize, "%s", msg);
		return NULL;
	}
	if (!(ls = realloc(rs->lists, (rs->nlists + 1) * sizeof *ls))) {
		list_free(l);
		perr(p, "out of memory");
		return NULL;
	}
	rs->lists = ls;
	rs->lists[rs->nlists++] = l;
	return l;
}

/* ---- conditions ---- */

static struct cond *new_cond(struct parser *p, enum cond_op op)
{
	struct cond *c = calloc(1, sizeof *c);

	if (!c)
		perr(p, "out of memory");
	else
		c->op = op;
	return c;
}

void rules_cond_free(struct cond *c)
{
	while (c) {
		struct cond *b = c->b;

		if (c->op == COND_NOT || c->op == COND_AND || c->op == COND_OR)
			rules_cond_free(c->a);
		if (c->has_re)
			regfree(&c->re);
		free(c->text);
		free(c);
		c = b; /* chains lean right: loop, do not recurse */
	}
}

static int set_text(struct parser *p, struct cond *c, const char *s)
{
	size_t n = strlen(s);

	if (!(c->text = malloc(n + 1)))
		return perr(p, "out of memory");
	for (size_t i = 0; i <= n; i++)
		c->text[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
	if (n > 1 && c->text[n - 1] == '.' && c->text[0] != '@' && strchr(c->text, '@') == NULL)
		c->text[n - 1] = '\0'; /* "mx.example.com." */
	return 0;
}

static int compile(struct parser *p, struct cond *c, const char *re)
{
	char shown[SHOW_MAX + 4], why[128];
	int e;

	if (*re == '\0')
		return perr(p, "empty /regex/");
	if (strlen(re) > RULES_REGEX_MAX)
		return perr(p, "/regex/ longer than %d bytes", RULES_REGEX_MAX);
	if (rules_regex_check(re, why, sizeof why) < 0)
		return perr(p, "/regex/ \"%s\": %s", show(re, shown), why);
	if ((e = regcomp(&c->re, re, REG_EXTENDED | REG_ICASE | REG_NOSUB)) != 0) {
		regerror(e, &c->re, why, sizeof why);
		return perr(p, "bad /regex/ \"%s\": %s", show(re, shown), why);
	}
	c->has_re = 1;
	c->arg = ARG_REGEX;
	return 0;
}

/* "pass, fail or none" from a keyword table. */
static const char *keywords(const struct rules_kw *kw, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int i = 0; kw[i].name; i++) {
		const char *sep = i == 0 ? "" : kw[i + 1].name ? ", " : " or ";
		int w = snprintf(buf + n, size - n, "%s%s", sep, kw[i].name);

		if (w < 0 || (size_t)w >= size - n)
			break;
		n += (size_t)w;
	}
	return buf;
}

static const char *usage(const struct fact_def *d, char *buf, size_t size)
{
	return d->usage ? d->usage : keywords(d->kw, buf, size);
}

/* size > 10M */
static int parse_size(struct parser *p, const struct fact_def *d, struct cond *c)
{
	char shown[SHOW_MAX + 4], use[128];
	const struct token *t = peek(p);
	const char *s = t->s;
	unsigned long long v = 0, mul = 1;

	if (t->type != T_WORD || (s[0] != '>' && s[0] != '<'))
		return perr(p, "size needs %s", usage(d, use, sizeof use));
	c->arg = s[0] == '>' ? ARG_SIZE_GT : ARG_SIZE_LT;
	next(p);
	if (s[1] == '\0') { /* "size > 10M" */
		t = peek(p);
		if (t->type != T_WORD || is_reserved(t))
			return perr(p, "size needs %s", usage(d, use, sizeof use));
		next(p);
		s = t->s;
	} else {
		s++;
	}
	size_t n = strspn(s, "0123456789");

	if (n > 0 && n <= 15 && (s[n] == '\0' || (s[n + 1] == '\0' && strchr("kKmMgG", s[n])))) {
		for (size_t i = 0; i < n; i++)
			v = v * 10 + (unsigned long long)(s[i] - '0');
		mul = s[n] == '\0' ? 1 : (s[n] | 0x20) == 'k' ? 1ULL << 10 : (s[n] | 0x20) == 'm' ? 1ULL << 20 : 1ULL << 30;
		if (v <= SIZE_MAX / mul) {
			c->size = (size_t)(v * mul);
			return 0;
		}
	}
	return perr(p, "size: \"%s\" is not a number of bytes (K, M or G after it: KiB, MiB, GiB)",
	            show(s, shown));
}

/* header Subject /regex/ */
static int parse_header_fact(struct parser *p, struct cond *c)
{
	char shown[SHOW_MAX + 4];
	const struct token *t = peek(p);
	size_t n;

	if (t->type != T_WORD || is_reserved(t))
		return perr(p, "header needs a field name and a /regex/");
	next(p);
	n = strlen(t->s);
	for (size_t i = 0; i < n; i++)
		if (!field_name_char(t->s[i]))
			return perr(p, "header: \"%s\" is not a field name", show(t->s, shown));
	if (set_text(p, c, t->s) < 0)
		return -1;
	if (peek(p)->type != T_REGEX)
		return perr(p, "header needs a field name and a /regex/");
	return compile(p, c, next(p)->s);
}

/* The argument of a fact: what the word looks like decides its kind. */
static int parse_arg(struct parser *p, const struct fact_def *d, struct cond *c)
{
	char shown[SHOW_MAX + 4], use[128];
	const struct token *t = peek(p);
	const char *s = t->s;

	if ((t->type != T_WORD && t->type != T_REGEX) || is_reserved(t))
		return perr(p, "%s needs %s", d->name, usage(d, use, sizeof use));
	next(p);
	if (t->type == T_REGEX) {
		if (d->args & A_REGEX)
			return compile(p, c, s);
	} else if ((d->args & A_KEYWORD) && d->kw) {
		for (const struct rules_kw *k = d->kw; k->name; k++) {
			if (strcasecmp(s, k->name) == 0) {
				c->arg = ARG_KEYWORD;
				c->value = k->value;
				return 0;
			}
		}
	}
	if (t->type == T_WORD && (d->args & A_LIST) && strncasecmp(s, "list:", 5) == 0 && s[5]) {
		c->arg = ARG_LIST;
		return (c->list = get_list(p, s + 5, d->list)) ? 0 : -1;
	}
	if (t->type == T_WORD && (d->args & A_CIDR) && cidr_parse(s, &c->cidr) == 0) {
		c->arg = ARG_CIDR;
		return 0;
	}
	if (t->type == T_WORD && (d->args & A_SUFFIX) && s[0] == '.' && list_name_ok(s + 1)) {
		c->arg = ARG_SUFFIX;
		return set_text(p, c, s);
	}
	if (t->type == T_WORD && (d->args & A_ATDOMAIN) && s[0] == '@' && list_name_ok(s + 1)) {
		c->arg = ARG_ATDOMAIN;
		return set_text(p, c, s);
	}
	if (t->type == T_WORD && (d->args & A_ADDRESS) && s[0] != '@' && list_address_ok(s)) {
		c->arg = ARG_ADDRESS;
		return set_text(p, c, s);
	}
	if (t->type == T_WORD && (d->args & A_LOGIN) && strncasecmp(s, "list:", 5) != 0 && s[0] != '@' &&
	    strlen(s) <= LIST_ENTRY_MAX) {
		c->arg = ARG_LOGIN; /* a word: printable, no blank; lower case, a trailing dot kept */
		if (!(c->text = strdup(s)))
			return perr(p, "out of memory");
		for (char *q = c->text; *q; q++)
			*q = (*q >= 'A' && *q <= 'Z') ? (char)(*q - 'A' + 'a') : *q;
		return 0;
	}
	if (t->type == T_WORD && (d->args & A_NAME) && s[0] != '.') {
		char name[256];
		size_t n = strlen(s);

		if (n < sizeof name) {
			memcpy(name, s, n + 1);
			if (n > 1 && name[n - 1] == '.')
				name[n - 1] = '\0';
			if (list_name_ok(name)) {
				c->arg = ARG_NAME;
				return set_text(p, c, s);
			}
		}
	}
	if (t->type == T_REGEX)
		return perr(p, "%s: a /regex/ is not %s", d->name, usage(d, use, sizeof use));
	return perr(p, "%s: \"%s\" is not %s", d->name, show(s, shown), usage(d, use, sizeof use));
}

/* A number fact: "dnsbl-score >= 3", ">=3", "< -2", ">= threshold" (a
 * number the check names: one of its words). */
static int parse_number(struct parser *p, const struct rule_vocab_fact *vf, struct cond *c)
{
	static const struct { const char *op; enum num_cmp cmp; } ops[] = {
		{ ">=", CMP_GE }, { "<=", CMP_LE }, { ">", CMP_GT }, { "<", CMP_LT }, { "=", CMP_EQ },
	};
	char shown[SHOW_MAX + 4];
	const struct token *t = peek(p);
	const char *s = t->s, *rest = NULL;
	size_t k, n;

	c->arg = ARG_NUMBER;
	c->value = -1;
	for (k = 0; t->type == T_WORD && k < NELEM(ops); k++)
		if (strncmp(s, ops[k].op, strlen(ops[k].op)) == 0) {
			c->cmp = ops[k].cmp;
			rest = s + strlen(ops[k].op);
			break;
		}
	if (!rest)
		goto bad;
	next(p);
	if (!*rest) {
		t = peek(p);
		if (t->type != T_WORD || is_reserved(t))
			goto bad;
		next(p);
		rest = t->s;
	}
	for (k = 0; vf->words && vf->words[k]; k++)
		if (strcasecmp(rest, vf->words[k]) == 0) {
			c->value = (int)k;
			return 0;
		}
	n = strspn(rest + (rest[0] == '-'), "0123456789");
	if (n > 0 && n <= 9 && rest[(rest[0] == '-') + n] == '\0') {
		c->num = strtol(rest, NULL, 10);
		return 0;
	}
	return perr(p, "%s: \"%s\" is not a number%s%s", vf->name, show(rest, shown),
	            vf->words && vf->words[0] ? " or " : "", vf->words && vf->words[0] ? vf->words[0] : "");
bad:
	return perr(p, "%s needs >, >=, <, <= or = and a number%s%s", vf->name,
	            vf->words && vf->words[0] ? " or " : "", vf->words && vf->words[0] ? vf->words[0] : "");
}

/* A fact of the checks' vocabulary ("spf fail", "dkim-signer example.com"),
 * parsed like the rules' own facts of the same shape. */
static struct cond *parse_value_fact(struct parser *p, const struct token *t)
{
	const struct rule_vocab *v = p->rs->vocab;
	struct rules_kw words[RULES_WORDS_MAX + 1];
	struct fact_def d = { .fact = FACT_CHECK };
	char shown[SHOW_MAX + 4];
	struct cond *c;
	size_t i, k;

	for (i = 0; v && i < v->n && strcasecmp(t->s, v->facts[i].name) != 0; i++)
		;
	if (!v || i == v->n) {
		perr(p, "unknown fact \"%s\"", show(t->s, shown));
		return NULL;
	}
	d.name = v->facts[i].name;
	d.stage = v->facts[i].stage;
	switch (v->facts[i].kind) {
	case RULE_WORD:
		for (k = 0; k < RULES_WORDS_MAX && v->facts[i].words[k]; k++)
			words[k] = (struct rules_kw){ v->facts[i].words[k], (int)k };
		words[k] = (struct rules_kw){ NULL, 0 };
		d.args = A_KEYWORD;
		d.kw = words;
		break;
	case RULE_NAMES:
		d.args = A_NAME | A_SUFFIX | A_LIST | (v->facts[i].words ? A_KEYWORD : 0);
		d.kw = v->facts[i].words ? kw_none : NULL;
		d.list = LIST_DOMAINS;
		d.usage = v->facts[i].usage;
		break;
	case RULE_TEXT:
		perr(p, "%s is a text for templates (%%{%s}), not a fact a rule tests", d.name, d.name);
		return NULL;
	case RULE_NUMBER:
		if (!(c = new_cond(p, COND_FACT)))
			return NULL;
		c->fact = FACT_CHECK;
		c->index = i;
		if (parse_number(p, &v->facts[i], c) < 0) {
			rules_cond_free(c);
			return NULL;
		}
		return c;
	}
	if (!(c = new_cond(p, COND_FACT)))
		return NULL;
	c->fact = FACT_CHECK;
	c->index = i;
	if (parse_arg(p, &d, c) < 0) {
		rules_cond_free(c);
		return NULL;
	}
	return c;
}

static struct cond *parse_fact(struct parser *p)
{
	const struct token *t = next(p);
	const struct fact_def *d = NULL;
	struct cond *c;
	int r = 0;

	for (size_t i = 0; i < NELEM(facts); i++)
		if (strcasecmp(t->s, facts[i].name) == 0)
			d = &facts[i];
	if (!d)
		return parse_value_fact(p, t);
	if (!(c = new_cond(p, COND_FACT)))
		return NULL;
	c->fact = d->fact;
	if (d->fact == FACT_HEADER)
		r = parse_header_fact(p, c);
	else if (d->fact == FACT_SIZE)
		r = parse_size(p, d, c);
	else if (d->args != A_NONE)
		r = parse_arg(p, d, c);
	if (r < 0) {
		rules_cond_free(c);
		return NULL;
	}
	return c;
}

static struct cond *parse_or(struct parser *p);

static struct cond *parse_term(struct parser *p)
{
	char shown[SHOW_MAX + 4];
	const struct token *t = peek(p);
	struct cond *c, *inner;

	if (is_word(t, "not") || t->type == T_LPAREN) {
		if (++p->nest > RULES_NEST_MAX) {
			perr(p, "condition nested too deep (max %d)", RULES_NEST_MAX);
			return NULL;
		}
		next(p);
		if (t->type == T_LPAREN) {
			if (!(c = parse_or(p)))
				return NULL;
			if (peek(p)->type != T_RPAREN) {
				rules_cond_free(c);
				perr(p, "missing \")\"");
				return NULL;
			}
			next(p);
		} else {
			if (!(inner = parse_term(p)))
				return NULL;
			if (!(c = new_cond(p, COND_NOT))) {
				rules_cond_free(inner);
				return NULL;
			}
			c->a = inner;
		}
		p->nest--;
		return c;
	}
	if (t->type == T_WORD && (!is_reserved(t) || is_word(t, "header")))
		return parse_fact(p); /* "header" after the condition is the tag's option */
	perr(p, "missing a fact after \"%s\"", prev_text(p, shown));
	return NULL;
}

/* term (op term)*, as a right-leaning chain */
static struct cond *parse_chain(struct parser *p, const char *word, enum cond_op op,
                                struct cond *(*sub)(struct parser *))
{
	struct cond *head = NULL, **tail = &head, *cur;

	if (!(cur = sub(p)))
		return NULL;
	while (is_word(peek(p), word)) {
		struct cond *n = new_cond(p, op);

		next(p);
		if (!n) {
			rules_cond_free(cur);
			rules_cond_free(head);
			return NULL;
		}
		n->a = cur;
		*tail = n;
		tail = &n->b;
		if (!(cur = sub(p))) {
			rules_cond_free(head);
			return NULL;
		}
	}
	*tail = cur;
	return head;
}

static struct cond *parse_and(struct parser *p)
{
	return parse_chain(p, "and", COND_AND, parse_term);
}

static struct cond *parse_or(struct parser *p)
{
	return parse_chain(p, "or", COND_OR, parse_and);
}

/* Stage, facts used, recipient facts used. */
static void walk(struct ruleset *rs, struct rule *r, const struct cond *c)
{
	for (; c; c = c->b) {
		if (c->op != COND_FACT) {
			walk(rs, r, c->a);
			continue;
		}
		enum rule_stage st = STAGE_CONNECT;

		if (c->fact == FACT_CHECK) {
			st = rs->vocab->facts[c->index].stage;
			rs->uses_values |= (uint64_t)1 << c->index;
		}
		for (size_t i = 0; i < NELEM(facts); i++)
			if (facts[i].fact == c->fact)
				st = facts[i].stage;
		if (st > r->stage)
			r->stage = st;
		r->uses_rcpt |= st == STAGE_RCPT || c->fact == FACT_GREYLISTED;
		rs->uses |= 1u << c->fact;
		return;
	}
}

/* ---- rules ---- */

void rule_free(struct rule *r)
{
	rules_cond_free(r->cond);
	free(r->text);
	free(r->note);
	free(r->what);
	free(r->id);
}

/* The condition as written, blanks collapsed. */
static char *condition_text(const char *s, size_t start, size_t end)
{
	char *out = malloc(end - start + 1);
	size_t n = 0;

	if (!out)
		return NULL;
	for (size_t i = start; i < end; i++)
		if (!is_blank(s[i]) || (n > 0 && out[n - 1] != ' '))
			out[n++] = is_blank(s[i]) ? ' ' : s[i];
	out[n] = '\0';
	return out;
}

/* What follows the condition: a reply, header "...", note "...", id NAME
 * in any order (opt: reply, header, note, id). */
static int parse_options(struct parser *p, const char *opt[4])
{
	char shown[SHOW_MAX + 4];

	for (;;) {
		const struct token *t = peek(p);
		const char **slot, *what;

		if (t->type == T_END)
			return 0;
		if (t->type == T_STRING) {
			slot = &opt[0];
			what = "reply";
		} else if (is_word(t, "header") || is_word(t, "note")) {
			what = is_word(t, "header") ? "header" : "note";
			slot = what[0] == 'h' ? &opt[1] : &opt[2];
			next(p);
			if (peek(p)->type != T_STRING)
				return perr(p, "%s needs a \"quoted text\"", what);
		} else if (is_word(t, "id")) {
			what = "id";
			slot = &opt[3];
			next(p);
			if (peek(p)->type != T_WORD)
				return perr(p, "id needs a NAME (letters, digits, '.', '_' and '-')");
		} else {
			return perr(p, "unexpected \"%s\" (and, or, a \"reply\", header, note or id expected)",
			            as_written(p, t, shown));
		}
		if (*slot)
			return perr(p, "%s given twice", what);
		*slot = next(p)->s;
	}
}

/* id NAME: a letter or digit, then letters, digits, '.', '_', '-'; at most
 * RULES_ID_MAX bytes; unique in the ruleset (its includes too). */
static int set_id(struct parser *p, struct rule *r, const char *id)
{
	struct ruleset *rs = p->rs;
	char shown[SHOW_MAX + 4];
	size_t n = strlen(id);
	int added;

	if (n > RULES_ID_MAX)
		return perr(p, "id \"%s\" is longer than %d bytes", show(id, shown), RULES_ID_MAX);
	if (n == 0 || strchr("._-", id[0]) ||
	    strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n)
		return perr(p, "id \"%s\": a letter or digit, then letters, digits, '.', '_' or '-'",
		            show(id, shown));
	if (!rs->ids && !(rs->ids = strset_new()))
		return perr(p, "out of memory");
	if ((added = strset_add(rs->ids, id, n)) < 0)
		return perr(p, "out of memory");
	if (added == 0) {
		const struct rule *same = NULL;

		for (size_t i = 0; i < rs->nrules && !same; i++)
			if (rs->rules[i].id && strcmp(rs->rules[i].id, id) == 0)
				same = &rs->rules[i];
		if (!same)
			return perr(p, "id \"%s\" given twice", id);
		/* One file included twice gives the same rule twice, id and all:
		 * the id still names one rule text, like any include read twice. */
		if (same->line != p->line || strcmp(same->file, p->file) != 0)
			return perr(p, "id \"%s\" is already the id of the rule at %s:%d", id,
			            same->file, same->line);
	}
	if (!(r->id = strdup(id)))
		return perr(p, "out of memory");
	return 0;
}

static int add_rule(struct parser *p, struct rule *r)
{
	struct ruleset *rs = p->rs;

	if (rs->nrules == RULES_MAX)
		return perr(p, "too many rules (max %d)", RULES_MAX);
	if (rs->nrules == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 32;
		struct rule *n = realloc(rs->rules, cap * sizeof *n);

		if (!n)
			return perr(p, "out of memory");
		rs->rules = n;
		rs->cap = cap;
	}
	rs->rules[rs->nrules++] = *r;
	return 0;
}

static int parse_rule(struct parser *p, enum rule_action action)
{
	struct rule r = { .action = action, .file = p->file, .line = p->line };
	const char *opt[4] = { NULL }, *reply, *header, *note;
	size_t start;

	next(p);
	if (is_word(peek(p), "monitor")) {
		next(p);
		if (action == ACTION_LOG)
			return perr(p, "monitor makes no difference to log");
		r.monitor = 1;
	}
	start = peek(p)->start;
	p->nest = 0;
	if (action == ACTION_RATELIMIT && parse_limit(p, &r) < 0)
		return -1;
	if ((action != ACTION_RATELIMIT || !limit_ends_condition(peek(p))) && !(r.cond = parse_or(p)))
		return -1;
	if (!(r.what = condition_text(p->text, start, p->tok[p->pos - 1].end))) {
		rule_free(&r);
		return perr(p, "out of memory");
	}
	walk(p->rs, &r, r.cond);
	if (parse_options(p, opt) < 0 || limit_stage(p, &r) < 0)
		goto fail;
	reply = opt[0], header = opt[1], note = opt[2];
	if (reply && (action == ACTION_GREYLIST || action == ACTION_RATELIMIT)) {
		perr(p, "%s replies with moat's own 451 4.7.1 (it says when to try again): no reply text",
		     action_names[action]);
		goto fail;
	}
	if (reply && action != ACTION_REJECT && action != ACTION_TEMPFAIL) {
		perr(p, "a reply is only for reject and tempfail");
		goto fail;
	}
	if (header && action != ACTION_TAG) {
		perr(p, "header \"...\" is only for tag");
		goto fail;
	}
	if (!header && action == ACTION_TAG) {
		perr(p, "tag needs header \"Name: value\"");
		goto fail;
	}
	if (reply && parse_reply(p, &r, reply) < 0)
		goto fail;
	if (!reply && (action == ACTION_REJECT || action == ACTION_TEMPFAIL) &&
	    parse_reply(p, &r, action == ACTION_REJECT ? "550 5.7.1 Message rejected"
	                                               : "451 4.7.1 Try again later") < 0)
		goto fail;
	if (header && parse_header_field(p, &r, header) < 0)
		goto fail;
	if (note && check_template(p, "note", note) < 0)
		goto fail;
	if (note && !(r.note = strdup(note))) {
		perr(p, "out of memory");
		goto fail;
	}
	if (opt[3] && set_id(p, &r, opt[3]) < 0)
		goto fail;
	if (add_rule(p, &r) < 0)
		goto fail;
	return 0;
fail:
	rule_free(&r);
	return -1;
}

/* include "path": relative to the including file; include builtin:NAME: a
 * rule set compiled in (a word, so no file can be taken for it) */
static int parse_include(struct parser *p)
{
	char shown[SHOW_MAX + 4], full[RULES_PATH_MAX];
	const struct token *t;
	int builtin;

	next(p);
	t = next(p);
	builtin = t->type == T_WORD && strncasecmp(t->s, RULES_BUILTIN_PREFIX, strlen(RULES_BUILTIN_PREFIX)) == 0;
	if (!builtin && (t->type != T_STRING || t->s[0] == '\0'))
		return perr(p, "include needs a \"quoted path\" or builtin:default");
	if (peek(p)->type != T_END)
		return perr(p, "unexpected \"%s\" after the include %s", show(peek(p)->s, shown),
		            builtin ? "name" : "path");
	if (!builtin && resolve(p, t->s, full) < 0)
		return -1;
	if (p->depth > RULES_INCLUDE_DEPTH) /* the top file is depth 1 */
		return perr(p, "includes nested too deep (max %d)", RULES_INCLUDE_DEPTH);
	if (++p->nincludes > RULES_INCLUDES_MAX)
		return perr(p, "too many includes (max %d)", RULES_INCLUDES_MAX);
	/* p->text and p->tok are reused from here on */
	return builtin ? parser_builtin(p, t->s) : parser_file(p, full);
}

int parse_logical(struct parser *p)
{
	char shown[SHOW_MAX + 4];
	const struct token *t;

	if (tokenize(p) < 0)
		return -1;
	t = peek(p);
	if (t->type == T_END)
		return 0;
	if (is_word(t, "include"))
		return parse_include(p);
	for (size_t a = ACTION_ACCEPT; a < NELEM(action_names); a++)
		if (is_word(t, action_names[a]))
			return parse_rule(p, (enum rule_action)a);
	return perr(p, "unknown action \"%s\" (accept, reject, tempfail, tag, log, greylist or ratelimit)",
	            show(t->s, shown));
}
