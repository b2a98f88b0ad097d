/* dbl.c - domain lists (dbl_sites): the HELO name and the sender's domain
 * under each zone, at MAIL (Postfix's reject_rhsbl_helo and
 * reject_rhsbl_sender, weighted as dnsbl_sites). The engine is dnsbl.c's;
 * the score is the higher of the two names', so one listing of a name used
 * twice counts once. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "checks/checks.h"
#include "checks/dnsbl.h"
#include "proxy/lib/domain.h"

static const char *const threshold[] = {"threshold", NULL};
static const char *const none[] = {"none", NULL};
static const struct rule_vocab_fact facts[] = {
	{"dbl-score", STAGE_MAIL, RULE_NUMBER, threshold, NULL},
	{"dbl", STAGE_MAIL, RULE_NAMES, none, "a list's zone, .domain, list:PATH or none"},
	{"dbl-reply", STAGE_MAIL, RULE_TEXT, NULL, NULL},
	{"dbl-domains", STAGE_MAIL, RULE_TEXT, NULL, NULL},
};

static int wanted(const struct check_ctx *ctx, const struct ruleset *rs, size_t first)
{
	(void)rs, (void)first;
	return ctx->env->dns && ctx->opt->dbl_sites && ctx->opt->dbl_sites->n > 0 && ctx->from &&
	       ctx->listener == LISTENER_SMTP;
}

/* A name a domain list can be asked about: a host name with a dot, in
 * A-labels (no address literal, no bare word). */
static int askable(const char *name)
{
	return name && name[0] && domain_check(name, strlen(name), DOMAIN_LDH | DOMAIN_MULTI_LABEL |
	                                       DOMAIN_NOT_NUMERIC | DOMAIN_TRAILING_DOT) == 0;
}

static void *start(const struct check_ctx *ctx, void *result, check_done_fn done, void *arg)
{
	struct dnsbl_slot *s = result;
	char helo[MOAT_DOMAIN_MAX + 1];
	const char *names[2];
	int n = 0;
	size_t len;

	s->done = done;
	s->arg = arg;
	/* the HELO name as the lists know it: lower case, no trailing dot */
	snprintf(helo, sizeof helo, "%s", ctx->helo);
	len = strlen(helo);
	if (len > 1 && helo[len - 1] == '.')
		helo[--len] = '\0';
	for (size_t i = 0; i < len; i++)
		helo[i] = (char)(helo[i] >= 'A' && helo[i] <= 'Z' ? helo[i] + 32 : helo[i]);
	if (askable(helo))
		names[n++] = helo;
	if (!ctx->from->null && !(ctx->from->flags & PATH_LITERAL) && askable(ctx->from->ascii_domain) &&
	    (n == 0 || strcmp(helo, ctx->from->ascii_domain) != 0))
		names[n++] = ctx->from->ascii_domain;
	s->run = dnsbl_run_start(ctx, ctx->opt->dbl_sites, names, -n - 1, ctx->opt->dbl_threshold, &s->r, dnsbl_slot_done, s);
	return s->run ? s : NULL;
}

static void values(const void *result, struct rule_value *v, const char *(*names)[CHECK_NAMES_MAX])
{
	dnsbl_values(result, 4, v, names);
}

static void log_fields(const void *result, struct jline *j)
{
	dnsbl_log(result, "dbl", j);
}


const struct check_def check_dbl = {
	.name = "dbl",
	.stage = STAGE_MAIL,
	.result_size = sizeof(struct dnsbl_slot),
	.result_zero = offsetof(struct dnsbl_result, listed), /* the rest: start, dnsbl_run_start */
	.facts = facts,
	.nfacts = sizeof facts / sizeof facts[0],
	.wanted = wanted,
	.results = dnsbl_results,
	.result = dnsbl_result_word,
	.start = start,
	.cancel = dnsbl_cancel,
	.values = values,
	.log = log_fields,
	.describe = dnsbl_describe,
};
