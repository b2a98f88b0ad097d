/* spf_row.c - SPF's row in the registry: facts "spf" (the result),
 * "spf-reason", "spf-explanation", "spf-domain" (texts for templates); log
 * fields "spf", "spf_reason"; Authentication-Results "spf=". A result for the
 * same client, HELO, sender and receiver seconds ago is reused (spf_cache.h). */
#include <stdio.h>
#include <string.h>

#include "checks/authres.h"
#include "checks/checks.h"
#include "checks/spf.h"
#include "checks/spf_cache.h"
#include "proxy/lib/log.h"
#include "proxy/lib/text.h"

struct spf_slot {
	struct spf_outcome o;        /* the result */
	struct spf_check *sc;        /* in flight */
	struct spf_cache *cache;     /* where a new result goes */
	size_t keylen;
	char key[SPF_CACHE_KEY_MAX];
	check_done_fn done;
	void *arg;
};

/* "spf WORD" in rule files, in the order error messages list them. */
static const char *const words[] = {"pass", "fail", "softfail", "neutral", "none", "temperror", "permerror", NULL};

static const struct rule_vocab_fact facts[] = {
	{"spf", STAGE_MAIL, RULE_WORD, words, NULL},
	{"spf-reason", STAGE_MAIL, RULE_TEXT, NULL, NULL},
	{"spf-explanation", STAGE_MAIL, RULE_TEXT, NULL, NULL},
	{"spf-domain", STAGE_MAIL, RULE_TEXT, NULL, NULL},
};

static int wanted(const struct check_ctx *ctx, const struct ruleset *rs, size_t first)
{
	return ctx->opt->check_spf && ctx->env->dns;
}

static void row_cb(void *arg, const struct spf_outcome *o)
{
	struct spf_slot *s = arg;

	s->sc = NULL;
	s->o = *o;
	spf_cache_put(s->cache, s->key, s->keylen, o, clock_ms());
	s->done(s->arg);
}

static void *start(const struct check_ctx *ctx, void *result, check_done_fn done, void *arg)
{
	struct spf_slot *s = result;
	const char *sender = ctx->from->null ? "" : ctx->from->mailbox;
	const struct spf_outcome *cached;

	s->done = done;
	s->arg = arg;
	s->cache = ctx->env->spf_cache;
	s->keylen = spf_cache_key(s->key, ctx->client_ip, ctx->helo, sender, ctx->opt->hostname);
	if ((cached = spf_cache_get(s->cache, s->key, s->keylen, clock_ms()))) {
		s->o = *cached; /* the same client, HELO and sender a moment ago */
		return NULL;
	}
	s->sc = spf_check_start(ctx->env->dns, ctx->client, ctx->helo, sender, ctx->opt->hostname, row_cb, s);
	if (!s->sc) {
		s->o.res = SPF_RES_TEMPERROR;
		text_copy(s->o.reason, sizeof s->o.reason, "out of memory");
		return NULL;
	}
	return s;
}

static void cancel(void *handle)
{
	struct spf_slot *s = handle;

	spf_check_cancel(s->sc);
	s->sc = NULL;
}

static void values(const void *result, struct rule_value *v, const char *(*names)[CHECK_NAMES_MAX])
{
	const struct spf_outcome *o = (const struct spf_outcome *)result;

	v[0].known = 1;
	v[0].word = check_word(words, spf_res_name(o->res));
	v[1].known = v[2].known = v[3].known = 1;
	v[1].text = o->reason;
	v[2].text = o->explanation;
	v[3].text = o->domain;
}

static void log_fields(const void *result, struct jline *j)
{
	const struct spf_outcome *o = result ? (const struct spf_outcome *)result : NULL;

	jl_str(j, "spf", o ? spf_res_name(o->res) : "");
	if (o && o->reason[0])
		jl_str(j, "spf_reason", o->reason);
}

static void describe(const void *result, char *buf, size_t size)
{
	const struct spf_outcome *o = (const struct spf_outcome *)result;

	snprintf(buf, size, "%s%s%s%s", spf_res_name(o->res), o->reason[0] ? " (" : "", o->reason,
	         o->reason[0] ? ")" : "");
}

static void authres(const void *result, struct authres *a)
{
	authres_spf(a, (const struct spf_outcome *)result);
}

const struct check_def check_spf = {
	.name = "spf",
	.stage = STAGE_MAIL,
	.result_size = sizeof(struct spf_slot),
	.facts = facts,
	.nfacts = sizeof facts / sizeof facts[0],
	.wanted = wanted,
	.start = start,
	.cancel = cancel,
	.values = values,
	.log = log_fields,
	.describe = describe,
	.authres = authres,
};
