/* authorship.c - List-Id/List-Post and the From domain's own signatures
 * (see authorship.h), and the row that makes them the facts "list-mail" and
 * "dkim-aligned". */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "checks/authorship.h"
#include "checks/checks.h"
#include "checks/dkim.h"
#include "checks/dmarc_org.h"
#include "checks/header.h"
#include "proxy/lib/log.h"

/* Does the line at p (n bytes to the end) start field name? */
static int field_is(const char *p, size_t n, const char *name)
{
	size_t k = strlen(name);

	/* the first letter first: most lines are not the field (names are letters) */
	if (n <= k || (p[0] | 0x20) != (name[0] | 0x20) || strncasecmp(p, name, k) != 0)
		return 0;
	for (p += k, n -= k; n && (*p == ' ' || *p == '\t'); p++, n--)
		;
	return n && *p == ':';
}

int authorship_list_mail(const char *hdr, size_t len)
{
	size_t i = 0;

	while (i < len) {
		if (field_is(hdr + i, len - i, "List-Id") || field_is(hdr + i, len - i, "List-Post"))
			return 1;
		const char *nl = memchr(hdr + i, '\n', len - i);
		if (!nl)
			break;
		i = (size_t)(nl - hdr) + 1;
	}
	return 0;
}

/* Is d= the author's own (relaxed alignment with one author domain)? With
 * no single usable From field (none, several: an added one hides the
 * signed one) whose it is cannot be told: every signature counts, as
 * before this fact existed. */
static int own(const struct dmarc_from *f, const char *d)
{
	if (f->status != DMARC_FROM_OK)
		return 1;
	for (int i = 0; i < f->ndomains; i++)
		if (dmarc_aligned(d, f->domain[i], 0))
			return 1;
	return 0;
}

const char *authorship_aligned(const struct dmarc_from *f, const struct dkim_outcome *o)
{
	const char *r = "none";

	for (int i = 0; o && i < o->nsigs && i < DKIM_MAX_SIGS; i++) {
		if (!own(f, o->sig[i].domain))
			continue;
		if (o->sig[i].res == DKIM_RES_PASS)
			return "pass";
		if (o->sig[i].res == DKIM_RES_FAIL)
			r = "fail";
	}
	return r;
}

static const char *const yesno[] = {"yes", "no", NULL};
static const char *const aligned_words[] = {"pass", "fail", "none", NULL};

static const struct rule_vocab_fact facts[] = {
	{"list-mail", STAGE_DATA, RULE_WORD, yesno, NULL},
	{"dkim-aligned", STAGE_DATA, RULE_WORD, aligned_words, NULL},
};

static int wanted(const struct check_ctx *ctx, const struct ruleset *rs, size_t first)
{
	/* the header is read only when a rule asks */
	return check_fact_used(rs, first, 0) || check_fact_used(rs, first, 1);
}

static const struct dmarc_from no_from = {.status = DMARC_FROM_NONE};

static void *start(const struct check_ctx *ctx, void *result, check_done_fn done, void *arg)
{
	struct authorship_outcome *a = result;
	const char *h = ctx->header && ctx->header->buf ? ctx->header->buf : "";
	size_t n = ctx->header ? ctx->header->len : 0;

	a->list_mail = authorship_list_mail(h, n);
	a->aligned = "none";
	/* without a header section (or memory): no From field, as an empty one reads */
	a->from = checks_author(ctx);
	if (!a->from)
		a->from = &no_from;
	return NULL; /* the header is all it reads; DKIM's result comes in settle */
}

static void settle(void *result, const struct checks *c)
{
	struct authorship_outcome *a = result;

	a->aligned = authorship_aligned(a->from, checks_result(c, &check_dkim));
}

static void values(const void *result, struct rule_value *v, const char *(*names)[CHECK_NAMES_MAX])
{
	const struct authorship_outcome *a = result;

	v[0].known = v[1].known = 1;
	v[0].word = check_word(yesno, a->list_mail ? "yes" : "no");
	v[1].word = check_word(aligned_words, a->aligned ? a->aligned : "none");
}

static void log_fields(const void *result, struct jline *j)
{
	const struct authorship_outcome *a = result;

	if (a && a->list_mail)
		jl_str(j, "list_mail", "yes");
	if (a && a->aligned && strcmp(a->aligned, "none") != 0)
		jl_str(j, "dkim_aligned", a->aligned);
}

static void describe(const void *result, char *buf, size_t size)
{
	const struct authorship_outcome *a = result;

	snprintf(buf, size, "list-mail %s, dkim-aligned %s", a->list_mail ? "yes (List-Id or List-Post)" : "no",
	         a->aligned ? a->aligned : "none");
}

const struct check_def check_authorship = {
	.name = "authorship",
	.stage = STAGE_DATA,
	.result_size = sizeof(struct authorship_outcome),
	.facts = facts,
	.nfacts = sizeof facts / sizeof facts[0],
	.wanted = wanted,
	.start = start,
	.values = values,
	.log = log_fields,
	.describe = describe,
	.wants_header = 1,
	.settle = settle,
};
