/* dmarc_row.c - DMARC's row in the registry: facts "dmarc" (the result),
 * "dmarc-policy" (what the domain asks for this message), "dmarc-domain"
 * and "dmarc-reason" (texts for templates); log fields "dmarc",
 * "dmarc_policy", "dmarc_domain"; Authentication-Results "dmarc=". It
 * looks the policy up while DKIM verifies, and decides when both SPF and
 * DKIM are in (settle). */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "checks/authres.h"
#include "checks/checks.h"
#include "checks/dkim.h"
#include "checks/dmarc.h"
#include "checks/dmarc_from.h"
#include "checks/header.h"
#include "checks/spf.h"
#include "proxy/lib/log.h"
#include "proxy/lib/siphash.h"
#include "proxy/lib/text.h"

struct dmarc_slot {
	struct dmarc_outcome o;    /* the result (of the deciding author domain) */
	int n, pending;
	check_done_fn done;
	void *arg;
	uint8_t key[16];           /* pct sampling's */
	/* zeroed up to here (result_zero); the rest is set by start for the
	 * n author domains of the From field (RFC 7489 6.6.1) it reads */
	char msgid[MOAT_LOG_MSGID_MAX + 1];
	struct dmarc_check *dc[MOAT_DMARC_AUTHORS_MAX]; /* in flight */
	struct dmarc_one {
		struct dmarc_slot *s;
		int i;
	} ctx[MOAT_DMARC_AUTHORS_MAX];
	struct dmarc_outcome each[MOAT_DMARC_AUTHORS_MAX];
};

/* "dmarc WORD", "dmarc-policy WORD" in rule files. */
static const char *const words[] = {"pass", "fail", "none", "temperror", "permerror", NULL};
static const char *const policies[] = {"none", "quarantine", "reject", NULL};

static const struct rule_vocab_fact facts[] = {
	{"dmarc", STAGE_DATA, RULE_WORD, words, NULL},
	{"dmarc-policy", STAGE_DATA, RULE_WORD, policies, NULL},
	{"dmarc-domain", STAGE_DATA, RULE_TEXT, NULL, NULL},
	{"dmarc-reason", STAGE_DATA, RULE_TEXT, NULL, NULL},
};

static int wanted(const struct check_ctx *ctx, const struct ruleset *rs, size_t first)
{
	return ctx->opt->check_dmarc && ctx->env->dns;
}

/* The key pct sampling draws with: dmarc_sample_key's bytes, or one drawn
 * at random for the process. */
static uint8_t random_key[16];
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void draw_key(void)
{
	siphash_random_key(random_key);
}

static void sample_key(const struct check_options *opt, uint8_t key[16])
{
	if (opt->dmarc_sample_key && opt->dmarc_sample_key[0]) {
		size_t n = strlen(opt->dmarc_sample_key);

		memset(key, 0, 16);
		memcpy(key, opt->dmarc_sample_key, n < 16 ? n : 16);
		return;
	}
	pthread_once(&key_once, draw_key);
	memcpy(key, random_key, 16);
}

/* One author domain's lookups are done (its outcome is in each[i]). */
static void row_cb(void *arg)
{
	struct dmarc_one *one = arg;
	struct dmarc_slot *s = one->s;

	s->dc[one->i] = NULL;
	if (--s->pending == 0)
		s->done(s->arg);
}

static void *start(const struct check_ctx *ctx, void *result, check_done_fn done, void *arg)
{
	struct dmarc_slot *s = result;
	const struct dmarc_from *f;

	s->done = done;
	s->arg = arg;
	sample_key(ctx->opt, s->key);
	if (!ctx->header) {
		s->o.res = DMARC_RES_TEMPERROR;
		text_copy(s->o.reason, sizeof s->o.reason, "header section not read");
		return NULL;
	}
	if (!(f = checks_author(ctx))) {
		s->o.res = DMARC_RES_TEMPERROR;
		text_copy(s->o.reason, sizeof s->o.reason, "out of memory");
		return NULL;
	}
	text_copy(s->msgid, sizeof s->msgid, f->msgid);
	if (f->status != DMARC_FROM_OK) { /* RFC 7489 6.6.1: no author domain to evaluate */
		s->o.res = DMARC_RES_PERMERROR;
		text_copy(s->o.reason, sizeof s->o.reason, dmarc_from_status_text(f->status));
		return NULL;
	}
	s->n = f->ndomains;
	s->pending = 1; /* held while they start */
	for (int i = 0; i < s->n; i++) {
		memset(&s->each[i], 0, sizeof s->each[i]);
		s->dc[i] = NULL;
		text_copy(s->each[i].from_domain, sizeof s->each[i].from_domain, f->domain[i]);
		s->ctx[i].s = s;
		s->ctx[i].i = i;
		if ((s->dc[i] = dmarc_check_start(ctx->env->dns, &s->each[i], row_cb, &s->ctx[i])))
			s->pending++;
	}
	if (--s->pending == 0) {
		dmarc_combine(s->each, s->n, &s->o); /* every one answered at once (no memory) */
		return NULL;
	}
	return s;
}

static void cancel(void *handle)
{
	struct dmarc_slot *s = handle;

	for (int i = 0; i < s->n; i++) {
		dmarc_check_cancel(s->dc[i]);
		s->dc[i] = NULL;
	}
}

static void settle(void *result, const struct checks *c)
{
	struct dmarc_slot *s = result;
	const struct spf_outcome *spf = checks_result(c, &check_spf);
	const struct dkim_outcome *dkim = checks_result(c, &check_dkim);

	if (s->n == 0)
		return; /* decided at start */
	for (int i = 0; i < s->n; i++)
		dmarc_evaluate(&s->each[i], spf, dkim, s->key, s->msgid);
	dmarc_combine(s->each, s->n, &s->o);
}

static int header_field(const struct check_options *opt, const struct check_env *env, const char *field,
                        size_t len, int truncated)
{
	char dom[MOAT_DMARC_AUTHORS_MAX][MOAT_DOMAIN_MAX + 1];
	int n = 0, started = 0;

	if (!opt->check_dmarc || !env->dns || truncated || len < 5 || (field[0] | 0x20) != 'f' ||
	    strncasecmp(field, "From", 4) != 0)
		return 0;
	for (field += 4, len -= 4; len && (*field == ' ' || *field == '\t'); field++, len--)
		;
	if (!len || *field != ':' || dmarc_from_value(field + 1, len - 1, dom, &n) != DMARC_FROM_OK)
		return 0;
	for (int i = 0; i < n; i++)
		started += dmarc_prefetch(env->dns, dom[i]);
	return started;
}

static void values(const void *result, struct rule_value *v, const char *(*names)[CHECK_NAMES_MAX])
{
	const struct dmarc_outcome *o = (const struct dmarc_outcome *)result;

	v[0].known = 1;
	v[0].word = check_word(words, dmarc_res_name(o->res));
	v[1].known = o->have_record;
	v[1].word = o->have_record ? check_word(policies, dmarc_pol_name(o->policy)) : -1;
	v[2].known = v[3].known = 1;
	v[2].text = o->from_domain;
	v[3].text = o->reason;
}

static void log_fields(const void *result, struct jline *j)
{
	const struct dmarc_outcome *o = result ? (const struct dmarc_outcome *)result : NULL;

	jl_str(j, "dmarc", o ? dmarc_res_name(o->res) : "");
	if (o && o->have_record)
		jl_str(j, "dmarc_policy", dmarc_pol_name(o->policy));
	if (o && o->from_domain[0])
		jl_str(j, "dmarc_domain", o->from_domain);
	if (o && o->reason[0] && o->res != DMARC_RES_PASS)
		jl_str(j, "dmarc_reason", o->reason);
}

static void describe(const void *result, char *buf, size_t size)
{
	const struct dmarc_outcome *o = (const struct dmarc_outcome *)result;

	if (o->have_record)
		snprintf(buf, size, "%s (%s, policy %s of _dmarc.%s%s, pct %d)", dmarc_res_name(o->res), o->reason,
		         dmarc_pol_name(o->policy), o->policy_domain, o->used_sp ? " sp" : "", o->pct);
	else
		snprintf(buf, size, "%s (%s%s%s)", dmarc_res_name(o->res), o->reason, o->from_domain[0] ? ", from " : "",
		         o->from_domain);
}

static void authres(const void *result, struct authres *a)
{
	authres_dmarc(a, (const struct dmarc_outcome *)result);
}

const struct check_def check_dmarc = {
	.name = "dmarc",
	.stage = STAGE_DATA,
	.result_size = sizeof(struct dmarc_slot),
	.result_zero = offsetof(struct dmarc_slot, msgid),
	.facts = facts,
	.nfacts = sizeof facts / sizeof facts[0],
	.wanted = wanted,
	.start = start,
	.cancel = cancel,
	.values = values,
	.log = log_fields,
	.describe = describe,
	.authres = authres,
	.wants_header = 1,
	.settle = settle,
	.header_field = header_field,
};
