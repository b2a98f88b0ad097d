/* sender.c - sender-domain check: MX first, then A and AAAA in parallel */
#include <arpa/nameser.h>
#include <ares.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks/checks.h"
#include "checks/sender.h"
#include "proxy/lib/log.h"

struct sender_check {
	struct dns *dns;
	char domain[256];
	sender_cb cb;
	void *arg;
	struct dns_req *mx, *a, *aaaa; /* in flight; mx also the deferred result */
	int pending;                    /* address lookups outstanding */
	enum dns_status st_a, st_aaaa;
	enum sender_res result;         /* known at once: delivered through dns_defer */
};

/* In enum sender_res's order: the rules' words too ("sender-check nxdomain"). */
static const char *const res_names[] = {"pass", "none", "nxdomain", "norecords", "nullmx", "tempfail", NULL};

const char *sender_res_name(enum sender_res r)
{
	return (unsigned)r < sizeof res_names / sizeof res_names[0] - 1 ? res_names[r] : "unknown";
}

int sender_mx_classify(const unsigned char *abuf, int alen)
{
	struct ares_mx_reply *mx = NULL, *m;
	int usable = 0, null = 0;

	if (ares_parse_mx_reply(abuf, alen, &mx) != ARES_SUCCESS)
		return -1;
	for (m = mx; m; m = m->next) {
		/* RFC 7505: the null MX's exchange is the root: "" after parsing. */
		if (m->host[0] == '\0' || strcmp(m->host, ".") == 0)
			null = 1;
		else
			usable = 1;
	}
	ares_free_data(mx);
	if (usable)
		return 1;
	return null ? 0 : -1;
}

/* Report the result and free c. */
static void finish(struct sender_check *c, enum sender_res r)
{
	sender_cb cb = c->cb;
	void *arg = c->arg;

	sender_check_cancel(c);
	cb(arg, r);
}

static void addr_done(struct sender_check *c)
{
	if (--c->pending > 0)
		return;
	if (c->st_a == DNS_OK || c->st_aaaa == DNS_OK)
		finish(c, SD_PASS);
	else if (c->st_a == DNS_TEMPFAIL || c->st_aaaa == DNS_TEMPFAIL)
		finish(c, SD_TEMPFAIL);
	else if (c->st_a == DNS_NXDOMAIN && c->st_aaaa == DNS_NXDOMAIN)
		finish(c, SD_NXDOMAIN);
	else
		finish(c, SD_NORECORDS);
}

static void a_cb(void *arg, const struct dns_result *r)
{
	struct sender_check *c = arg;

	c->a = NULL;
	c->st_a = r->status;
	addr_done(c);
}

static void aaaa_cb(void *arg, const struct dns_result *r)
{
	struct sender_check *c = arg;

	c->aaaa = NULL;
	c->st_aaaa = r->status;
	addr_done(c);
}

static void mx_cb(void *arg, const struct dns_result *r)
{
	struct sender_check *c = arg;

	c->mx = NULL;
	switch (r->status) {
	case DNS_NXDOMAIN:
		finish(c, SD_NXDOMAIN);
		return;
	case DNS_TEMPFAIL:
		finish(c, SD_TEMPFAIL);
		return;
	case DNS_OK:
		switch (sender_mx_classify(r->abuf, r->alen)) {
		case 1:
			finish(c, SD_PASS);
			return;
		case 0:
			finish(c, SD_NULLMX);
			return;
		}
		break; /* an MX answer we cannot read: fall back to A/AAAA */
	case DNS_NODATA:
		break;
	}
	/* No MX: the domain itself is the implicit MX (RFC 5321 5.1). A
	 * lookup that cannot even start counts as a TEMPFAIL. */
	c->pending = 2;
	c->st_a = c->st_aaaa = DNS_TEMPFAIL;
	if (!(c->a = dns_lookup(c->dns, c->domain, ns_t_a, a_cb, c)))
		c->pending--;
	if (!(c->aaaa = dns_lookup(c->dns, c->domain, ns_t_aaaa, aaaa_cb, c)))
		c->pending--;
	if (c->pending == 0)
		finish(c, SD_TEMPFAIL);
}

/* The result known at once, on the loop's next turn. */
static void deferred_cb(void *arg, const struct dns_result *r)
{
	struct sender_check *c = arg;

	c->mx = NULL;
	finish(c, c->result);
}

struct sender_check *sender_check_start(struct dns *d, const char *domain, sender_cb cb, void *arg)
{
	struct sender_check *c = calloc(1, sizeof *c);

	if (!c)
		return NULL;
	c->dns = d;
	c->cb = cb;
	c->arg = arg;
	if (!domain || !*domain || domain[0] == '[') {
		c->result = SD_NONE;
		c->mx = dns_defer(d, deferred_cb, c);
	} else if (dns_normalise(domain, c->domain, sizeof c->domain) < 0) {
		c->result = SD_NXDOMAIN;
		c->mx = dns_defer(d, deferred_cb, c);
	} else {
		c->mx = dns_lookup(d, c->domain, ns_t_mx, mx_cb, c);
	}
	if (!c->mx) {
		free(c);
		return NULL;
	}
	return c;
}

void sender_check_cancel(struct sender_check *c)
{
	if (!c)
		return;
	if (c->mx)
		dns_cancel(c->mx);
	if (c->a)
		dns_cancel(c->a);
	if (c->aaaa)
		dns_cancel(c->aaaa);
	free(c);
}

/* ---- the registry's row ------------------------------------------------------ */

struct sender_slot {
	enum sender_res res;      /* the result */
	struct sender_check *sc;  /* in flight */
	check_done_fn done;
	void *arg;
};

static const struct rule_vocab_fact facts[] = {
	{"sender-check", STAGE_MAIL, RULE_WORD, res_names, NULL},
};

static int wanted(const struct check_ctx *ctx, const struct ruleset *rs, size_t first)
{
	return ctx->opt->check_sender_domain && ctx->env->dns;
}

static void row_cb(void *arg, enum sender_res res)
{
	struct sender_slot *s = arg;

	s->sc = NULL;
	s->res = res;
	s->done(s->arg);
}

static void *start(const struct check_ctx *ctx, void *result, check_done_fn done, void *arg)
{
	struct sender_slot *s = result;

	s->done = done;
	s->arg = arg;
	s->sc = sender_check_start(ctx->env->dns, ctx->from->null ? NULL : ctx->from->ascii_domain, row_cb, s);
	if (!s->sc) {
		s->res = SD_TEMPFAIL; /* no memory to start it */
		return NULL;
	}
	return s;
}

static void cancel(void *handle)
{
	struct sender_slot *s = handle;

	sender_check_cancel(s->sc);
	s->sc = NULL;
}

static void values(const void *result, struct rule_value *v, const char *(*names)[CHECK_NAMES_MAX])
{
	v->known = 1;
	v->word = (int)*(const enum sender_res *)result;
}

static void log_fields(const void *result, struct jline *j)
{
	jl_str(j, "sender_domain", result ? sender_res_name(*(const enum sender_res *)result) : "");
}

static void describe(const void *result, char *buf, size_t size)
{
	snprintf(buf, size, "%s", sender_res_name(*(const enum sender_res *)result));
}

const struct check_def check_sender = {
	.name = "sender-check",
	.stage = STAGE_MAIL,
	.result_size = sizeof(struct sender_slot),
	.facts = facts,
	.nfacts = sizeof facts / sizeof facts[0],
	.wanted = wanted,
	.start = start,
	.cancel = cancel,
	.values = values,
	.log = log_fields,
	.describe = describe,
};
