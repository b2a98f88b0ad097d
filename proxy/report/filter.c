/* filter.c - the report's filters (see filter.h) */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proxy/lib/text.h"
#include "proxy/report/filter.h"
#include "proxy/report/netagg.h"

const char *const filter_actions[] = {"accept", "reject", "tempfail", "would-accept", "would-reject",
                                      "would-tempfail", "would-tag", "tag", "log", NULL};

static const char *const kind_names[FILTER_KINDS] = {"client", "sender", "rcpt", "action", "rule", "session"};

int filter_kind_of(const char *option)
{
	for (int k = 0; k < FILTER_KINDS; k++)
		if (strcmp(option, kind_names[k]) == 0)
			return k;
	return -1;
}

static int known_action(const char *s, size_t n)
{
	for (size_t i = 0; filter_actions[i]; i++)
		if (strlen(filter_actions[i]) == n && memcmp(filter_actions[i], s, n) == 0)
			return 1;
	return 0;
}

static int add_one(struct report_filter *f, enum filter_kind k, struct filter_value v, char *err, size_t size)
{
	if (f->n[k] >= REPORT_FILTER_MAX)
		return text_error(err, size, "more than %d --%s options", REPORT_FILTER_MAX, kind_names[k]);
	f->v[k][f->n[k]++] = v;
	f->any = 1;
	return 0;
}

/* --action reject,tempfail: each word a value (all checked first). */
static int add_actions(struct report_filter *f, const char *value, char *err, size_t size)
{
	char show[TEXT_SHOW_MAX + 4];

	for (int add = 0; add <= 1; add++) {
		const char *p = value;

		do {
			size_t n = strcspn(p, ",");
			struct filter_value v = {p, n, 0};

			if (!add && !known_action(p, n))
				return text_error(err, size, "--action %s: not an action (accept, reject, tempfail, "
				                  "would-reject, would-tempfail, would-accept, would-tag, tag, log)",
				                  text_show(p, n, show));
			if (add && add_one(f, FILTER_ACTION, v, err, size) < 0)
				return -1;
			p += n;
		} while (*p++ == ',');
	}
	return 0;
}

int filter_add(struct report_filter *f, enum filter_kind k, const char *value, char *err, size_t size)
{
	struct filter_value v = {value, strlen(value), 0};
	char show[TEXT_SHOW_MAX + 4];

	if (v.n == 0)
		return text_error(err, size, "--%s: empty", kind_names[k]);
	switch (k) {
	case FILTER_CLIENT:
		if (f->n[k] < REPORT_FILTER_MAX && cidr_parse(value, &f->client[f->n[k]]) < 0)
			return text_error(err, size, "--client %s: not an address or a network (192.0.2.7, "
			                  "192.0.2.0/24, 2001:db8::/48)", text_show(value, v.n, show));
		break;
	case FILTER_SENDER:
	case FILTER_RCPT:
		/* "@example.org" and "example.org" are domains; "<>" the null sender */
		if (value[0] == '@' || (!strchr(value, '@') && strcmp(value, "<>") != 0)) {
			v.domain = 1;
			v.s += value[0] == '@';
			v.n -= value[0] == '@';
			if (v.n == 0)
				return text_error(err, size, "--%s @: no domain", kind_names[k]);
		}
		break;
	case FILTER_ACTION:
		return add_actions(f, value, err, size);
	case FILTER_SESSION: {
		/* "ID.N" as in the Received field moat adds: the session is ID */
		const char *dot = strrchr(value, '.');

		if (dot && dot[1] && strspn(dot + 1, "0123456789") == strlen(dot + 1))
			v.n = (size_t)(dot - value);
		break;
	}
	default:
		break;
	}
	return add_one(f, k, v, err, size);
}

/* One address (len n) against a --sender/--rcpt value. */
static int addr_is(const struct filter_value *v, const char *a, size_t n)
{
	const char *at;

	while (n > 0 && a[n - 1] == ' ')
		n--;
	if (!v->domain)
		return n == v->n && strncasecmp(a, v->s, n) == 0;
	at = memrchr(a, '@', n);
	if (!at)
		return 0;
	n -= (size_t)(at + 1 - a);
	return n == v->n && strncasecmp(at + 1, v->s, n) == 0;
}

static int sender_match(const struct report_filter *f, struct ll_str s)
{
	for (size_t i = 0; i < f->n[FILTER_SENDER]; i++)
		if (s.p && addr_is(&f->v[FILTER_SENDER][i], s.p, s.n))
			return 1;
	return 0;
}

/* rcpt is one address, or at the data stage the accepted ones, comma-separated. */
static int rcpt_match(const struct report_filter *f, struct ll_str s)
{
	const char *p = s.p ? s.p : "", *end = p + s.n;

	while (p < end) {
		const char *c = memchr(p, ',', (size_t)(end - p));
		size_t n = (size_t)((c ? c : end) - p);

		for (size_t i = 0; i < f->n[FILTER_RCPT]; i++)
			if (addr_is(&f->v[FILTER_RCPT][i], p, n))
				return 1;
		p += n + 1;
	}
	return 0;
}

static int client_match(const struct report_filter *f, struct ll_str ip)
{
	struct naddr a;

	if (!ip.p || naddr_parse(ip.p, ip.n, &a) < 0)
		return 0;
	for (size_t i = 0; i < f->n[FILTER_CLIENT]; i++)
		if (naddr_in(&a, &f->client[i]))
			return 1;
	return 0;
}

static int same(const struct filter_value *v, struct ll_str s)
{
	return s.p && s.n == v->n && memcmp(s.p, v->s, s.n) == 0;
}

/* --rule: its id, its FILE:LINE, or the end of that after a '/'. */
static int rule_match(const struct report_filter *f, const struct logline *l)
{
	struct ll_str r = l->f[LL_RULE];

	for (size_t i = 0; i < f->n[FILTER_RULE]; i++) {
		const struct filter_value *v = &f->v[FILTER_RULE][i];

		if (same(v, l->f[LL_RULE_ID]) || same(v, r))
			return 1;
		if (r.p && r.n > v->n && r.p[r.n - v->n - 1] == '/' && memcmp(r.p + r.n - v->n, v->s, v->n) == 0)
			return 1;
	}
	return 0;
}

static int any_same(const struct report_filter *f, enum filter_kind k, struct ll_str s)
{
	for (size_t i = 0; i < f->n[k]; i++)
		if (same(&f->v[k][i], s))
			return 1;
	return 0;
}

int filter_match(const struct report_filter *f, const struct logline *l)
{
	if (!f->any)
		return 1;
	return (!f->n[FILTER_SESSION] || any_same(f, FILTER_SESSION, l->f[LL_SESSION])) &&
	       (!f->n[FILTER_ACTION] || any_same(f, FILTER_ACTION, l->f[LL_ACTION])) &&
	       (!f->n[FILTER_CLIENT] || client_match(f, l->f[LL_CLIENT_IP])) &&
	       (!f->n[FILTER_SENDER] || sender_match(f, l->f[LL_MAIL_FROM])) &&
	       (!f->n[FILTER_RCPT] || rcpt_match(f, l->f[LL_RCPT])) &&
	       (!f->n[FILTER_RULE] || rule_match(f, l));
}
