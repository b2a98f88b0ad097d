/* fuzz_rules.c - libFuzzer harness for the rule language (rules/parse.c, rules/eval.c)
 *
 *   make fuzz-build; build/fuzz/fuzz_rules -max_total_time=60 WORKDIR (a copy of tests/fuzz/corpus/rules)
 *
 * Input: a rule file. Inputs that could reach the file system (an "include"
 * with a quoted string anywhere, "list:") are skipped, so runs do not depend
 * on the machine; "include builtin:default" is kept. A ruleset
 * that loads is evaluated at every stage over two sets of facts (one that
 * makes most facts true, one with nothing known), with and without global
 * monitor mode.
 *
 * Checked (abort on violation): a load either succeeds with an empty error
 * or fails with "(rules):LINE: message"; every rule has a stage and an
 * action in range; a decision is accept/reject/tempfail with a rule of at
 * most that stage, a reject carries 5xx and a tempfail 4xx; nothing
 * decides a reject or tempfail in global monitor mode; hits are bounded;
 * expanded texts are terminated and hold no control byte. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/lib/netaddr.h"
#include "checks/dkim.h"
#include "checks/rdns.h"
#include "checks/registry.h"
#include "checks/sender.h"
#include "checks/spf.h"
#include "rules/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int clean(const char *s, size_t size)
{
	size_t n = strnlen(s, size);

	if (n == size)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

static void check_verdict(const struct rule_verdict *v, enum rule_stage stage)
{
	if (v->stage > stage || v->line < 1 || !v->file || !clean(v->text, sizeof v->text) ||
	    !clean(v->reason, sizeof v->reason) || !clean(v->esc, sizeof v->esc))
		abort();
	if (v->action == ACTION_REJECT && (v->code < 500 || v->code > 599 || v->esc[0] != '5'))
		abort();
	if (v->action == ACTION_TEMPFAIL && (v->code < 400 || v->code > 499 || v->esc[0] != '4'))
		abort();
}

static void check_decision(const struct rule_decision *d, enum rule_stage stage, int monitor)
{
	if (d->action != ACTION_NONE && d->action != ACTION_ACCEPT && d->action != ACTION_REJECT &&
	    d->action != ACTION_TEMPFAIL)
		abort();
	if (monitor && (d->action == ACTION_REJECT || d->action == ACTION_TEMPFAIL))
		abort();
	if (d->action != ACTION_NONE) {
		if (d->decided.action != d->action || d->decided.monitor)
			abort();
		check_verdict(&d->decided, stage);
	}
	if (d->nhits < 0 || d->nhits > RULES_HITS_MAX || d->hits_dropped < 0 ||
	    (d->hits_dropped && d->nhits != RULES_HITS_MAX))
		abort();
	for (int i = 0; i < d->nhits; i++)
		check_verdict(&d->hits[i], stage);
}

static void evaluate(const struct ruleset *rs)
{
	static struct rule_decision d;
	static struct spf_outcome spf = { .res = SPF_RES_FAIL, .domain = "from.test",
	                                  .explanation = "no\r\nway", .reason = "-all" };
	static struct dkim_outcome dkim = {
		.nsigs = 2, .summary = DKIM_RES_PASS,
		.sig = { { .res = DKIM_RES_FAIL, .domain = "from.test" }, { .res = DKIM_RES_PASS, .domain = "list.test" } },
	};
	static const struct rule_rcpt rcpts[] = {
		{ "bob@moat.test", "moat.test", 1, RELAY_OK, 1 },
		{ "x%y@else.test", "else.test", 0, RELAY_BAD_ROUTING, 0 },
	};
	static const struct rule_header headers[] = { { "Subject", "hello\tworld" }, { "X-Spam", "yes" } };
	static const struct rdns_result rdns = { RDNS_OK, "mx.from.test" };
	static const enum sender_res sc = SD_NXDOMAIN;
	static struct rule_value values[RULES_VOCAB_MAX];
	static const char *names[RULES_VOCAB_MAX][CHECK_NAMES_MAX];
	const struct check_def *const *rows;
	struct sockaddr_storage ss;
	socklen_t len;
	struct rule_facts all = { 0 }, none = { 0 };
	size_t n;

	/* every check's value, as checks.c fills them: through the rows */
	rows = checks_registry(&n);
	for (size_t i = 0; i < n; i++) {
		const void *r = rows[i] == &check_rdns ? (const void *)&rdns : rows[i] == &check_sender ? (const void *)&sc
		              : rows[i] == &check_spf ? (const void *)&spf : rows[i] == &check_dkim ? (const void *)&dkim
		              : NULL;

		if (r)
			rows[i]->values(r, &values[checks_first_fact(i)], &names[checks_first_fact(i)]);
	}
	hostport_parse("192.0.2.1", 1, &ss, &len);
	all = (struct rule_facts){
		.client = (struct sockaddr *)&ss, .client_ip = "192.0.2.1", .trusted = 1,
		.tls = 1, .authenticated = 1, .hostname = "mx.moat.test", .helo = "mx.from.test",
		.sender = "a@from.test", .sender_domain = "from.test", .rcpt = &rcpts[0], .rcpts = rcpts, .nrcpts = 2,
		.headers = headers, .nheaders = 2, .size = 12345, .values = values,
	};
	for (int s = STAGE_CONNECT; s <= STAGE_DATA; s++) {
		for (int monitor = 0; monitor <= 1; monitor++) {
			if (rules_eval(rs, (enum rule_stage)s, &all, monitor, &d) != d.action)
				abort();
			check_decision(&d, (enum rule_stage)s, monitor);
			rules_eval(rs, (enum rule_stage)s, &none, monitor, &d);
			check_decision(&d, (enum rule_stage)s, monitor);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024];
	struct ruleset *rs;
	char *text;

	if (size > 64 * 1024 || !(text = malloc(size + 1)))
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	/* an include reads a file only with a quoted path; builtin:NAME is compiled in */
	if ((strcasestr(text, "include") && strchr(text, '"')) || strcasestr(text, "list:")) {
		free(text);
		return 0;
	}
	rs = ruleset_load_text(text, size, "(rules)", checks_vocab(), err, sizeof err);
	if (!rs) {
		if (strncmp(err, "(rules):", 8) != 0 || !clean(err, sizeof err))
			abort();
	} else {
		struct rule_info ri;

		if (err[0] != '\0')
			abort();
		for (size_t i = 0; i < ruleset_count(rs); i++)
			if (ruleset_rule(rs, i, &ri) < 0 || ri.stage > STAGE_DATA || ri.action < ACTION_ACCEPT ||
			    ri.action > ACTION_LOG || !ri.what || ri.line < 1)
				abort();
		evaluate(rs);
		ruleset_unref(rs);
	}
	free(text);
	return 0;
}
