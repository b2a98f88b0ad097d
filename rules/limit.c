/* limit.c - a ratelimit rule's limit: "KEY N/WINDOW [messages|recipients]".
 *
 *   ratelimit client 100/1h                    100 messages an hour per client address
 *   ratelimit sender-domain 1000/1d recipients 1000 recipients a day per sender domain
 *   ratelimit auth-user 50/10m                 50 messages per 10 minutes per login name
 *
 * rules_limit_parse is pure: the words of the rule in, the limit out; the
 * rest is its place in a rule (parse.c): the words, the condition that may
 * be left out, the stage of greylist and ratelimit rules. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proxy/lib/text.h"
#include "rules/parser.h"
#include "rules/ruleset.h"

static const char *const key_names[] = {
	[LIMIT_CLIENT] = "client", [LIMIT_SENDER_DOMAIN] = "sender-domain", [LIMIT_AUTH_USER] = "auth-user",
};
static const char *const unit_names[] = { [LIMIT_MESSAGES] = "messages", [LIMIT_RECIPIENTS] = "recipients" };

const char *rules_limit_key_name(enum rule_limit_key k)
{
	return (unsigned)k < sizeof key_names / sizeof key_names[0] ? key_names[k] : "?";
}

const char *rules_limit_unit_name(enum rule_limit_unit u)
{
	return (unsigned)u < sizeof unit_names / sizeof unit_names[0] ? unit_names[u] : "?";
}

long rules_window_parse(const char *s)
{
	size_t n = strspn(s, "0123456789");
	long v = 0, mul;

	if (n > 9 || s[n] == '\0' || s[n + 1] != '\0')
		return -1;
	switch (s[n] | 0x20) {
	case 's': mul = 1; break;
	case 'm': mul = 60; break;
	case 'h': mul = 3600; break;
	case 'd': mul = 86400; break;
	default: return -1;
	}
	if (n == 0)
		v = 1; /* "100/h" */
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	if (v < 1 || v > RULES_LIMIT_WINDOW_MAX / mul)
		return -1;
	return v * mul;
}

/* "100/1h" */
static int parse_rate(const char *s, struct rule_limit *out)
{
	size_t n = strspn(s, "0123456789");
	long v = 0, w;

	if (n == 0 || n > 10 || s[n] != '/')
		return -1;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	if (v < 1 || v > RULES_LIMIT_COUNT_MAX || (w = rules_window_parse(s + n + 1)) < 0)
		return -1;
	out->max = v;
	out->window = (int)w;
	return 0;
}

int rules_limit_parse(const char *const *words, size_t n, struct rule_limit *out, char *err, size_t errsize)
{
	char shown[TEXT_SHOW_MAX + 4];
	size_t k;

	memset(out, 0, sizeof *out);
	for (k = 0; k < sizeof key_names / sizeof key_names[0]; k++)
		if (n > 0 && strcasecmp(words[0], key_names[k]) == 0)
			break;
	if (n == 0 || k == sizeof key_names / sizeof key_names[0]) {
		snprintf(err, errsize, "ratelimit needs client, sender-domain or auth-user and N/WINDOW "
		                       "(\"ratelimit client 100/1h\")");
		return -1;
	}
	out->key = (enum rule_limit_key)k;
	if (n < 2) {
		snprintf(err, errsize, "ratelimit %s needs N/WINDOW (\"100/1h\": 100 per hour)", key_names[k]);
		return -1;
	}
	if (parse_rate(words[1], out) < 0) {
		snprintf(err, errsize, "ratelimit: \"%s\" is not N/WINDOW (a count from 1 to %ld, a window "
		         "from 1s to %dd: 30s, 10m, 1h, 1d)", text_show(words[1], strlen(words[1]), shown),
		         RULES_LIMIT_COUNT_MAX, RULES_LIMIT_WINDOW_MAX / 86400);
		return -1;
	}
	out->unit = LIMIT_MESSAGES;
	if (n > 2 && strcasecmp(words[2], "recipients") == 0)
		out->unit = LIMIT_RECIPIENTS;
	else if (!(n > 2 && strcasecmp(words[2], "messages") == 0))
		return 2;
	return 3;
}

/* ---- in a rule (parse.c) ---- */

int parse_limit(struct parser *p, struct rule *r)
{
	const char *w[4] = { NULL };
	char msg[MSG_MAX];
	size_t n = 0;
	int used;

	while (n < 3 && p->tok[p->pos + n].type == T_WORD) {
		w[n] = p->tok[p->pos + n].s;
		n++;
	}
	if ((used = rules_limit_parse(w, n, &r->limit, msg, sizeof msg)) < 0)
		return perr(p, "%s", msg);
	p->pos += used;
	return 0;
}

int limit_ends_condition(const struct token *t)
{
	return t->type == T_END || t->type == T_STRING ||
	       (t->type == T_WORD && (strcasecmp(t->s, "note") == 0 || strcasecmp(t->s, "id") == 0 ||
	                              strcasecmp(t->s, "header") == 0));
}

int limit_stage(struct parser *p, struct rule *r)
{
	enum rule_stage at = r->action == ACTION_GREYLIST ? STAGE_RCPT
	                     : r->limit.unit == LIMIT_RECIPIENTS ? STAGE_RCPT : STAGE_MAIL;
	size_t same = 0;

	if (r->action != ACTION_GREYLIST && r->action != ACTION_RATELIMIT)
		return 0;
	if (r->action == ACTION_GREYLIST) {
		if (r->stage < at) /* at DATA (header, size): every recipient, at the end of data */
			r->stage = at;
		return 0;
	}
	if (r->stage > at)
		return perr(p, "a limit of %s is decided at %s: its condition cannot test what is known only "
		               "later (%s facts)", rules_limit_unit_name(r->limit.unit),
		            at == STAGE_MAIL ? "MAIL" : "RCPT", r->stage == STAGE_DATA ? "header and size" : "recipient");
	r->stage = at;
	for (size_t i = 0; r->action == ACTION_RATELIMIT && i < p->rs->nrules; i++)
		same += p->rs->rules[i].action == ACTION_RATELIMIT && p->rs->rules[i].stage == at;
	if (same >= RULES_LIMITS_MAX)
		return perr(p, "too many limits of %s (max %d ratelimit rules of a stage)",
		            rules_limit_unit_name(r->limit.unit), RULES_LIMITS_MAX);
	return 0;
}
