/* decision.c - the decision lines of the log (see decision.h) */
#include <stdio.h>
#include <string.h>

#include "proxy/decision.h"
#include "proxy/lib/bounds.h"
#include "proxy/lib/metrics.h"

const char *decision_action(int code)
{
	return code / 100 == 2 || code == 354 ? "accept" : code / 100 == 4 ? "tempfail" : "reject";
}

void decision_set_reply(struct decision *d, enum reply_id id)
{
	d->code = replies[id].code;
	d->esc = replies[id].esc;
}

void decision_esc_of(const char *text, char *out, size_t size)
{
	const char *p = text + strspn(text, "0123456789");
	size_t n;

	out[0] = '\0';
	if (p - text != 3 || (*p != ' ' && *p != '-'))
		return;
	p++;
	n = strspn(p, "0123456789.");
	/* class.subject.detail: "5.1.1", at most "5.123.123" */
	if (n < 5 || n >= size || n > 9 || p[1] != '.' || (p[n] != ' ' && p[n] != '\r' && p[n] != '\0'))
		return;
	memcpy(out, p, n);
	out[n] = '\0';
}

#define S(x) ((x) ? (x) : "")

void decision_log(const struct decision *d, void (*extra)(struct jline *j, void *arg), void *arg)
{
	struct jline j;
	char rule[1200];
	const char *action = d->action ? d->action : decision_action(d->code);

	metrics_decision((int)d->stage, action, d->rule_id);
	rules_where(rule, sizeof rule, d->rule_file, d->rule_line);
	jl_begin(&j, "info", d->event ? d->event : "decision");
	jl_str(&j, "session", S(d->session));
	jl_str(&j, "client_ip", S(d->client_ip));
	jl_str(&j, "helo", S(d->helo));
	jl_str(&j, "mail_from", S(d->mail_from));
	jl_strn(&j, "rcpt", S(d->rcpt), 1024);
	if (d->listener)
		jl_str(&j, "listener", d->listener);
	if (d->tls_version) {
		jl_str(&j, "tls_version", d->tls_version);
		jl_str(&j, "tls_cipher", S(d->tls_cipher));
	}
	if (d->auth_user)
		jl_strn(&j, "auth_user", d->auth_user, MOAT_AUTH_USER_MAX);
	jl_str(&j, "stage", rules_stage_name(d->stage));
	jl_str(&j, "action", action);
	jl_int(&j, "code", d->code);
	if (d->esc && d->esc[0])
		jl_str(&j, "esc", d->esc);
	jl_str(&j, "reason", S(d->reason));
	jl_str(&j, "rule", rule);
	jl_str(&j, "rule_id", S(d->rule_id));
	if (d->greylist && d->greylist[0])
		jl_str(&j, "greylist", d->greylist);
	if (extra)
		extra(&j, arg);
	jl_emit(&j);
}
