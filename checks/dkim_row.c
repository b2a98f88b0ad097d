/* dkim_row.c - DKIM's row in the registry: facts "dkim" (the summary),
 * "dkim-domain" (d= of the signatures that verified), "dkim-signer" (d= of
 * any signature); log field "dkim"; Authentication-Results "dkim=" per
 * signature. */
#include <stdio.h>

#include "checks/authres.h"
#include "checks/checks.h"
#include "checks/dkim.h"
#include "proxy/lib/log.h"

struct dkim_slot {
	struct dkim_outcome o;   /* the result */
	struct dkim_check *dc;   /* in flight */
	check_done_fn done;
	void *arg;
};

/* "dkim WORD" in rule files, in the order error messages list them. */
static const char *const words[] = {"pass", "fail", "none", "neutral", "temperror", "permerror", NULL};

static const struct rule_vocab_fact facts[] = {
	{"dkim", STAGE_DATA, RULE_WORD, words, NULL},
	{"dkim-domain", STAGE_DATA, RULE_NAMES, NULL, "a domain, .domain or list:PATH"},
	{"dkim-signer", STAGE_DATA, RULE_NAMES, NULL, "a domain, .domain or list:PATH"},
};

static int wanted(const struct check_ctx *ctx, const struct ruleset *rs, size_t first)
{
	return ctx->opt->check_dkim && ctx->env->dkim;
}

static void row_cb(void *arg, const struct dkim_outcome *o)
{
	struct dkim_slot *s = arg;

	s->dc = NULL;
	s->o = *o;
	s->done(s->arg);
}

static void *start(const struct check_ctx *ctx, void *result, check_done_fn done, void *arg)
{
	struct dkim_slot *s = result;

	s->done = done;
	s->arg = arg;
	s->dc = dkim_check_start_via(ctx->env->dkim, ctx->env->dns, ctx->header, ctx->rd, ctx->rarg, ctx->size, row_cb,
	                             s);
	if (!s->dc) {
		s->o.summary = DKIM_RES_TEMPERROR; /* it could not start */
		return NULL;
	}
	return s;
}

static void cancel(void *handle)
{
	struct dkim_slot *s = handle;

	dkim_check_cancel(s->dc);
	s->dc = NULL;
}

static void values(const void *result, struct rule_value *v, const char *(*names)[CHECK_NAMES_MAX])
{
	const struct dkim_outcome *o = (const struct dkim_outcome *)result;
	int n = o->nsigs < DKIM_MAX_SIGS ? o->nsigs : DKIM_MAX_SIGS;

	v[0].known = v[1].known = v[2].known = 1;
	v[0].word = check_word(words, dkim_res_name(o->summary));
	v[1].names = names[1];
	v[2].names = names[2];
	v[1].nnames = v[2].nnames = 0;
	/* Only a passing signature vouches for its domain (dkim-domain); any
	 * d= is a signer (dkim-signer: for exemptions from a rejection). */
	for (int i = 0; i < n && i < CHECK_NAMES_MAX; i++) {
		if (o->sig[i].res == DKIM_RES_PASS)
			names[1][v[1].nnames++] = o->sig[i].domain;
		names[2][v[2].nnames++] = o->sig[i].domain;
	}
	v[1].text = v[1].nnames ? v[1].names[0] : "";
	v[2].text = v[2].nnames ? v[2].names[0] : "";
}

static void log_fields(const void *result, struct jline *j)
{
	const struct dkim_outcome *o = result ? (const struct dkim_outcome *)result : NULL;
	char dk[256] = "";
	int n = 0;

	if (o && o->nsigs == 0)
		snprintf(dk, sizeof dk, "none");
	for (int i = 0; o && i < o->nsigs && i < DKIM_MAX_SIGS && n >= 0 && n < (int)sizeof dk; i++)
		n += snprintf(dk + n, sizeof dk - (size_t)n, "%s%s:%s", i ? "," : "", o->sig[i].domain,
		              dkim_res_name(o->sig[i].res));
	jl_str(j, "dkim", dk);
}

static void describe(const void *result, char *buf, size_t size)
{
	const struct dkim_outcome *o = (const struct dkim_outcome *)result;
	int n = snprintf(buf, size, "%s", dkim_res_name(o->summary));

	for (int i = 0; i < o->nsigs && i < DKIM_MAX_SIGS && n > 0 && (size_t)n < size; i++)
		n += snprintf(buf + n, size - (size_t)n, "%s%s=%s", i ? ", " : " (", o->sig[i].domain,
		              dkim_res_name(o->sig[i].res));
	if (o->nsigs && n > 0 && (size_t)n < size)
		snprintf(buf + n, size - (size_t)n, ")");
}

static void authres(const void *result, struct authres *a)
{
	authres_dkim(a, (const struct dkim_outcome *)result);
}

const struct check_def check_dkim = {
	.name = "dkim",
	.stage = STAGE_DATA,
	.result_size = sizeof(struct dkim_slot),
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
};
