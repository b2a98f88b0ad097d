/* test_dnsbl_rules.c - the number facts of the DNS list checks in the rule
 * language: "dnsbl-score >= threshold" and friends, their errors, the
 * names fact "dnsbl", the templates; evaluated on results put through the
 * rows' values, as checks.c does. And the query names: IPv4 reversed,
 * IPv6 in nibbles, a mapped IPv4 as IPv4. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks/dnsbl.h"
#include "checks/registry.h"
#include "rules/rules.h"

static struct ruleset *load(const char *text)
{
	char err[1024] = "unset";
	struct ruleset *rs = ruleset_load_text(text, strlen(text), "t.rules", checks_vocab(), err, sizeof err);

	if (!rs)
		fail_msg("\"%s\": %s", text, err);
	return rs;
}

static void load_bad(const char *text, const char *want)
{
	char err[1024] = "";
	struct ruleset *rs = ruleset_load_text(text, strlen(text), "t.rules", checks_vocab(), err, sizeof err);

	if (rs) {
		ruleset_unref(rs);
		fail_msg("accepted \"%s\"", text);
	}
	if (strcmp(err, want) != 0)
		fail_msg("\"%s\"\n  got  %s\n  want %s", text, err, want);
}

/* A result of score, threshold and listed sites "a.example*3 b.example*-5". */
static void result(struct dnsbl_result *r, long score, long threshold, const char *sites)
{
	char buf[256], *save, *t;

	memset(r, 0, sizeof *r);
	r->score = score;
	r->threshold = threshold;
	snprintf(r->score_text, sizeof r->score_text, "%ld", score);
	snprintf(buf, sizeof buf, "%s", sites);
	for (t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		char *star = strchr(t, '*');

		*star = '\0';
		snprintf(r->listed[r->nlisted], sizeof r->listed[0], "%s", t);
		r->weight[r->nlisted++] = atoi(star + 1);
		snprintf(r->names + strlen(r->names), sizeof r->names - strlen(r->names), "%s%s",
		         r->nlisted > 1 ? ", " : "", t);
	}
	snprintf(r->reply, sizeof r->reply, "%s", r->names[0] ? r->names : "a DNS blocklist");
}

/* The connect decision of text on r: "reject 554 ..." or "none". */
static const char *decide(const char *text, const struct dnsbl_result *r, char *out, size_t size)
{
	static struct rule_value values[RULES_VOCAB_MAX];
	static const char *names[RULES_VOCAB_MAX][CHECK_NAMES_MAX];
	struct ruleset *rs = load(text);
	struct rule_decision *d = calloc(1, sizeof *d);
	struct rule_facts f = {0};
	size_t n;
	const struct check_def *const *rows = checks_registry(&n);

	memset(values, 0, sizeof values);
	for (size_t i = 0; i < n; i++)
		if (rows[i] == &check_dnsbl && r)
			rows[i]->values(r, &values[checks_first_fact(i)], &names[checks_first_fact(i)]);
	f.values = values;
	f.client_ip = "192.0.2.1";
	rules_eval(rs, STAGE_CONNECT, &f, 0, d);
	if (d->action == ACTION_REJECT)
		snprintf(out, size, "reject %d %s", d->decided.code, d->decided.text);
	else if (d->nhits)
		snprintf(out, size, "hit %s", d->hits[0].text);
	else
		snprintf(out, size, "none");
	free(d);
	ruleset_unref(rs);
	return out;
}

static void test_compare(void **st)
{
	struct dnsbl_result r;
	char out[1200];
	static const struct {
		const char *rule;
		long score, threshold;
		int refused;
	} rows[] = {
		{"reject dnsbl-score >= threshold", 3, 3, 1},
		{"reject dnsbl-score >= threshold", 2, 3, 0},
		{"reject dnsbl-score >=threshold", 5, 3, 1},
		{"reject dnsbl-score > threshold", 3, 3, 0},
		{"reject dnsbl-score > 2", 3, 1, 1},
		{"reject dnsbl-score >2", 2, 1, 0},
		{"reject dnsbl-score < 0", -2, 1, 1},
		{"reject dnsbl-score < -2", -2, 1, 0},
		{"reject dnsbl-score <= -2", -2, 1, 1},
		{"reject dnsbl-score = 0", 0, 1, 1},
		{"reject dnsbl-score =1", 0, 1, 0},
		{"reject not dnsbl-score >= threshold", 0, 1, 1},
		{"reject DNSBL-SCORE >= THRESHOLD", 1, 1, 1},
	};

	(void)st;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		result(&r, rows[i].score, rows[i].threshold, "");
		decide(rows[i].rule, &r, out, sizeof out);
		if ((strncmp(out, "reject", 6) == 0) != rows[i].refused)
			fail_msg("%s with score %ld, threshold %ld: %s", rows[i].rule, rows[i].score,
			         rows[i].threshold, out);
	}
	/* the check did not run (no dnsbl_sites, not on listen): nothing matches */
	assert_string_equal(decide("reject dnsbl-score < 100", NULL, out, sizeof out), "none");
	assert_string_equal(decide("reject dnsbl-score >= threshold", NULL, out, sizeof out), "none");
	assert_string_equal(decide("reject not dnsbl-score >= threshold \"550 5.7.1 x\"", NULL, out, sizeof out),
	                    "reject 550 x");
}

static void test_names_and_templates(void **st)
{
	struct dnsbl_result r;
	char out[1200];

	(void)st;
	result(&r, -2, 1, "zen.example*3 wl.example*-5");
	assert_string_equal(decide("reject dnsbl wl.example", &r, out, sizeof out), "reject 550 Message rejected");
	assert_string_equal(decide("reject dnsbl .example", &r, out, sizeof out), "reject 550 Message rejected");
	assert_string_equal(decide("reject dnsbl none", &r, out, sizeof out), "none");
	assert_string_equal(decide("reject dnsbl other.example", &r, out, sizeof out), "none");
	assert_string_equal(decide("tag dnsbl-score < 0 header \"X-S: %{dnsbl_score} %{dnsbl} %{dnsbl_reply}\"",
	                           &r, out, sizeof out),
	                    "hit X-S: -2 zen.example, wl.example zen.example, wl.example");
	result(&r, 0, 1, "");
	assert_string_equal(decide("reject dnsbl none", &r, out, sizeof out), "reject 550 Message rejected");
}

static void test_errors(void **st)
{
	(void)st;
	load_bad("reject dnsbl-score", "t.rules:1: dnsbl-score needs >, >=, <, <= or = and a number or threshold");
	load_bad("reject dnsbl-score 3", "t.rules:1: dnsbl-score needs >, >=, <, <= or = and a number or threshold");
	load_bad("reject dnsbl-score >= ", "t.rules:1: dnsbl-score needs >, >=, <, <= or = and a number or threshold");
	load_bad("reject dnsbl-score >= three", "t.rules:1: dnsbl-score: \"three\" is not a number or threshold");
	load_bad("reject dnsbl-score >= 1.5", "t.rules:1: dnsbl-score: \"1.5\" is not a number or threshold");
	load_bad("reject dnsbl-score >= 1234567890", "t.rules:1: dnsbl-score: \"1234567890\" is not a number or threshold");
	load_bad("reject dnsbl-score >= and", "t.rules:1: dnsbl-score needs >, >=, <, <= or = and a number or threshold");
	load_bad("reject dnsbl-reply x", "t.rules:1: dnsbl-reply is a text for templates (%{dnsbl-reply}), not a fact a rule tests");
	/* the stage of the facts */
	struct ruleset *rs = load("reject dnsbl-score >= threshold\nreject dbl-score >= threshold\n");
	char d[256];

	ruleset_describe(rs, d, sizeof d);
	assert_string_equal(d, "2 rules (connect 1, helo 0, mail 1, rcpt 0, data 0), 0 lists, 0 list entries");
	ruleset_unref(rs);
}

static void test_reversed(void **st)
{
	struct sockaddr_in a4 = {.sin_family = AF_INET};
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
	char out[80];

	(void)st;
	inet_pton(AF_INET, "192.0.2.1", &a4.sin_addr);
	assert_int_equal(dnsbl_reversed((struct sockaddr *)&a4, out, sizeof out), 0);
	assert_string_equal(out, "1.2.0.192");
	inet_pton(AF_INET6, "2001:db8::1:2", &a6.sin6_addr);
	assert_int_equal(dnsbl_reversed((struct sockaddr *)&a6, out, sizeof out), 0);
	assert_string_equal(out, "2.0.0.0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2");
	inet_pton(AF_INET6, "::ffff:198.51.100.7", &a6.sin6_addr);
	assert_int_equal(dnsbl_reversed((struct sockaddr *)&a6, out, sizeof out), 0);
	assert_string_equal(out, "7.100.51.198");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compare),
		cmocka_unit_test(test_names_and_templates),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_reversed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
