/* test_rules_parse.c - the rule language: every fact and action, stages,
 * defaults, continuation, includes, lists, the shipped rule files and every
 * error message, FILE:LINE included */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include "checks/registry.h"
#include "rules/rules.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Where a fact of the checks' vocabulary is. */
static size_t vocab_index(const char *name)
{
	const struct rule_vocab *v = checks_vocab();

	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->facts[i].name, name) == 0)
			return i;
	fail_msg("no fact %s in the vocabulary", name);
	return 0;
}

static struct ruleset *load(const char *text)
{
	char err[1024] = "unset";
	struct ruleset *rs = ruleset_load_text(text, strlen(text), "t.rules", checks_vocab(), err, sizeof err);

	if (!rs)
		fail_msg("ruleset_load_text(\"%s\"): %s", text, err);
	assert_string_equal(err, "");
	return rs;
}

static void expect_error_len(const char *text, size_t len, const char *want)
{
	char err[1024] = "";
	struct ruleset *rs = ruleset_load_text(text, len, "t.rules", checks_vocab(), err, sizeof err);

	if (rs) {
		ruleset_unref(rs);
		fail_msg("accepted \"%s\", wanted %s", text, want);
	}
	if (strcmp(err, want) != 0)
		fail_msg("\"%s\"\n  got  %s\n  want %s", text, err, want);
}

static void expect_error(const char *text, const char *want)
{
	expect_error_len(text, strlen(text), want);
}

/* ---- every fact, action and option, one rule a row ---- */

static const struct {
	const char *text;
	enum rule_action action;
	int monitor;
	enum rule_stage stage;
	int code;
	const char *esc, *tpl, *what, *note;
} rule_rows[] = {
	/* facts, each at its stage */
	{ "accept client 10.0.0.0/8", ACTION_ACCEPT, 0, STAGE_CONNECT, 0, "", NULL, "client 10.0.0.0/8", NULL },
	{ "accept client 2001:db8::/32", ACTION_ACCEPT, 0, STAGE_CONNECT, 0, "", NULL, "client 2001:db8::/32", NULL },
	{ "accept client 192.0.2.1", ACTION_ACCEPT, 0, STAGE_CONNECT, 0, "", NULL, "client 192.0.2.1", NULL },
	{ "accept client trusted", ACTION_ACCEPT, 0, STAGE_CONNECT, 0, "", NULL, "client trusted", NULL },
	{ "log rdns mx.example.com", ACTION_LOG, 0, STAGE_CONNECT, 0, "", NULL, "rdns mx.example.com", NULL },
	{ "log rdns .example.com", ACTION_LOG, 0, STAGE_CONNECT, 0, "", NULL, "rdns .example.com", NULL },
	{ "log rdns none", ACTION_LOG, 0, STAGE_CONNECT, 0, "", NULL, "rdns none", NULL },
	{ "log tls", ACTION_LOG, 0, STAGE_MAIL, 0, "", NULL, "tls", NULL }, /* STARTTLS comes after connect */
	/* greylist: at RCPT, however early its facts; ratelimit: messages at MAIL, recipients at RCPT */
	{ "greylist rdns none", ACTION_GREYLIST, 0, STAGE_RCPT, 0, "", NULL, "rdns none", NULL },
	{ "greylist monitor dnsbl-score >= 1", ACTION_GREYLIST, 1, STAGE_RCPT, 0, "", NULL, "dnsbl-score >= 1", NULL },
	{ "greylist sender null note \"bounce\"", ACTION_GREYLIST, 0, STAGE_RCPT, 0, "", NULL, "sender null", "bounce" },
	{ "greylist rcpt-domain example.com", ACTION_GREYLIST, 0, STAGE_RCPT, 0, "", NULL, "rcpt-domain example.com", NULL },
	/* at the end of data, for every recipient */
	{ "greylist header Subject /x/", ACTION_GREYLIST, 0, STAGE_DATA, 0, "", NULL, "header Subject /x/", NULL },
	{ "greylist size > 1M and rdns none", ACTION_GREYLIST, 0, STAGE_DATA, 0, "", NULL, "size > 1M and rdns none", NULL },
	{ "ratelimit client 100/1h", ACTION_RATELIMIT, 0, STAGE_MAIL, 0, "", NULL, "client 100/1h", NULL },
	{ "ratelimit CLIENT 5/30s messages", ACTION_RATELIMIT, 0, STAGE_MAIL, 0, "", NULL, "CLIENT 5/30s messages", NULL },
	{ "ratelimit sender-domain 1000/1d recipients not client trusted", ACTION_RATELIMIT, 0, STAGE_RCPT, 0, "",
	  NULL, "sender-domain 1000/1d recipients not client trusted", NULL },
	{ "ratelimit monitor auth-user 50/h spf pass id u50", ACTION_RATELIMIT, 1, STAGE_MAIL, 0, "", NULL,
	  "auth-user 50/h spf pass", NULL },
	{ "ratelimit client 10/1m recipients rcpt-domain example.com", ACTION_RATELIMIT, 0, STAGE_RCPT, 0, "", NULL,
	  "client 10/1m recipients rcpt-domain example.com", NULL },
	{ "log greylisted passed", ACTION_LOG, 0, STAGE_DATA, 0, "", NULL, "greylisted passed", NULL },
	{ "tag greylisted skipped header \"X-Greylist: skipped\"", ACTION_TAG, 0, STAGE_DATA, 0, "",
	  "X-Greylist: skipped", "greylisted skipped", NULL },
	{ "log authenticated", ACTION_LOG, 0, STAGE_MAIL, 0, "", NULL, "authenticated", NULL }, /* AUTH after EHLO */
	{ "log auth-user alice", ACTION_LOG, 0, STAGE_MAIL, 0, "", NULL, "auth-user alice", NULL },
	{ "log auth-user Alice@Example.com", ACTION_LOG, 0, STAGE_MAIL, 0, "", NULL, "auth-user Alice@Example.com", NULL },
	{ "log auth-user @example.com", ACTION_LOG, 0, STAGE_MAIL, 0, "", NULL, "auth-user @example.com", NULL },
	{ "log auth-user /^a/", ACTION_LOG, 0, STAGE_MAIL, 0, "", NULL, "auth-user /^a/", NULL },
	{ "log listener submission", ACTION_LOG, 0, STAGE_CONNECT, 0, "", NULL, "listener submission", NULL },
	{ "log listener smtps", ACTION_LOG, 0, STAGE_CONNECT, 0, "", NULL, "listener smtps", NULL },
	{ "log helo localhost", ACTION_LOG, 0, STAGE_HELO, 0, "", NULL, "helo localhost", NULL },
	{ "log helo .example.com", ACTION_LOG, 0, STAGE_HELO, 0, "", NULL, "helo .example.com", NULL },
	{ "log helo /^[0-9.]+$/", ACTION_LOG, 0, STAGE_HELO, 0, "", NULL, "helo /^[0-9.]+$/", NULL },
	{ "log sender bob@example.com", ACTION_LOG, 0, STAGE_MAIL, 0, "", NULL, "sender bob@example.com", NULL },
	{ "log sender @example.com", ACTION_LOG, 0, STAGE_MAIL, 0, "", NULL, "sender @example.com", NULL },
	{ "log sender null", ACTION_LOG, 0, STAGE_MAIL, 0, "", NULL, "sender null", NULL },
	{ "log sender-domain example.com", ACTION_LOG, 0, STAGE_MAIL, 0, "", NULL, "sender-domain example.com", NULL },
	{ "log sender-domain .example.com", ACTION_LOG, 0, STAGE_MAIL, 0, "", NULL, "sender-domain .example.com", NULL },
	{ "log sender-check pass", ACTION_LOG, 0, STAGE_MAIL, 0, "", NULL, "sender-check pass", NULL },
	{ "log sender-check nullmx", ACTION_LOG, 0, STAGE_MAIL, 0, "", NULL, "sender-check nullmx", NULL },
	{ "log spf softfail", ACTION_LOG, 0, STAGE_MAIL, 0, "", NULL, "spf softfail", NULL },
	{ "log spf permerror", ACTION_LOG, 0, STAGE_MAIL, 0, "", NULL, "spf permerror", NULL },
	{ "log rcpt bob@example.com", ACTION_LOG, 0, STAGE_RCPT, 0, "", NULL, "rcpt bob@example.com", NULL },
	{ "log rcpt @example.com", ACTION_LOG, 0, STAGE_RCPT, 0, "", NULL, "rcpt @example.com", NULL },
	{ "log rcpt-domain local", ACTION_LOG, 0, STAGE_RCPT, 0, "", NULL, "rcpt-domain local", NULL },
	{ "log rcpt-domain example.com", ACTION_LOG, 0, STAGE_RCPT, 0, "", NULL, "rcpt-domain example.com", NULL },
	{ "log relay ok", ACTION_LOG, 0, STAGE_RCPT, 0, "", NULL, "relay ok", NULL },
	{ "log relay routing", ACTION_LOG, 0, STAGE_RCPT, 0, "", NULL, "relay routing", NULL },
	{ "log rcpt-known", ACTION_LOG, 0, STAGE_RCPT, 0, "", NULL, "rcpt-known", NULL },
	{ "log dkim pass", ACTION_LOG, 0, STAGE_DATA, 0, "", NULL, "dkim pass", NULL },
	{ "log dkim temperror", ACTION_LOG, 0, STAGE_DATA, 0, "", NULL, "dkim temperror", NULL },
	{ "log dkim-domain example.com", ACTION_LOG, 0, STAGE_DATA, 0, "", NULL, "dkim-domain example.com", NULL },
	{ "log dkim-signer .example.com", ACTION_LOG, 0, STAGE_DATA, 0, "", NULL, "dkim-signer .example.com", NULL },
	{ "log header Subject /viagra/", ACTION_LOG, 0, STAGE_DATA, 0, "", NULL, "header Subject /viagra/", NULL },
	{ "log size > 10M", ACTION_LOG, 0, STAGE_DATA, 0, "", NULL, "size > 10M", NULL },
	{ "log size <1024", ACTION_LOG, 0, STAGE_DATA, 0, "", NULL, "size <1024", NULL },
	/* the stage is the latest of the facts */
	{ "reject client 10.0.0.0/8 and spf fail", ACTION_REJECT, 0, STAGE_MAIL, 550, "5.7.1", "Message rejected",
	  "client 10.0.0.0/8 and spf fail", NULL },
	{ "reject dkim fail or tls", ACTION_REJECT, 0, STAGE_DATA, 550, "5.7.1", "Message rejected",
	  "dkim fail or tls", NULL },
	{ "reject not (helo x.test or rcpt-known)", ACTION_REJECT, 0, STAGE_RCPT, 550, "5.7.1",
	  "Message rejected", "not (helo x.test or rcpt-known)", NULL },
	/* actions, replies, defaults, options */
	{ "reject spf fail", ACTION_REJECT, 0, STAGE_MAIL, 550, "5.7.1", "Message rejected", "spf fail", NULL },
	{ "tempfail spf temperror", ACTION_TEMPFAIL, 0, STAGE_MAIL, 451, "4.7.1", "Try again later",
	  "spf temperror", NULL },
	{ "reject spf fail \"554 5.7.23 SPF: %{spf_reason}\"", ACTION_REJECT, 0, STAGE_MAIL, 554, "5.7.23",
	  "SPF: %{spf_reason}", "spf fail", NULL },
	{ "tempfail rdns none \"450 4.7.25 no name for [%{client}]\" note \"no rdns\"", ACTION_TEMPFAIL, 0,
	  STAGE_CONNECT, 450, "4.7.25", "no name for [%{client}]", "rdns none", "no rdns" },
	{ "reject monitor spf fail", ACTION_REJECT, 1, STAGE_MAIL, 550, "5.7.1", "Message rejected", "spf fail", NULL },
	{ "tag spf softfail header \"X-Moat-Suspect: spf-softfail\"", ACTION_TAG, 0, STAGE_MAIL, 0, "",
	  "X-Moat-Suspect: spf-softfail", "spf softfail", NULL },
	{ "tag monitor tls note \"n\" header \"X-TLS: %{client}\"", ACTION_TAG, 1, STAGE_MAIL, 0, "",
	  "X-TLS: %{client}", "tls", "n" },
	{ "accept monitor client trusted", ACTION_ACCEPT, 1, STAGE_CONNECT, 0, "", NULL, "client trusted", NULL },
	{ "log spf none note \"100% %%{x} %{sender}\"", ACTION_LOG, 0, STAGE_MAIL, 0, "", NULL, "spf none",
	  "100% %%{x} %{sender}" },
	/* keywords in any case; values keep their case in what, are folded for matching */
	{ "REJECT Monitor SPF Fail AND NOT Client Trusted", ACTION_REJECT, 1, STAGE_MAIL, 550, "5.7.1",
	  "Message rejected", "SPF Fail AND NOT Client Trusted", NULL },
	/* blanks collapsed, comments dropped */
	{ "reject\tspf   fail\t \"550 5.7.1 x\"   # comment", ACTION_REJECT, 0, STAGE_MAIL, 550, "5.7.1", "x",
	  "spf fail", NULL },
	{ "reject spf fail \"550 5.7.1 a # not a comment\"", ACTION_REJECT, 0, STAGE_MAIL, 550, "5.7.1",
	  "a # not a comment", "spf fail", NULL },
	{ "reject spf fail \"550 5.7.1 say \\\"hi\\\" \\\\o/\"", ACTION_REJECT, 0, STAGE_MAIL, 550, "5.7.1",
	  "say \"hi\" \\o/", "spf fail", NULL },
	{ "log helo /([0-9]{1,3}\\.){3}[0-9]{1,3}|(a{255}){255}|[]a]+|(a+)+/", ACTION_LOG, 0, STAGE_HELO, 0, "", NULL,
	  "helo /([0-9]{1,3}\\.){3}[0-9]{1,3}|(a{255}){255}|[]a]+|(a+)+/", NULL },
	{ "log helo /a\\/b\\.c/", ACTION_LOG, 0, STAGE_HELO, 0, "", NULL, "helo /a\\/b\\.c/", NULL },
	{ "log (tls)", ACTION_LOG, 0, STAGE_MAIL, 0, "", NULL, "(tls)", NULL },
	{ "log header X-Spam-Flag /yes/ and size > 1k", ACTION_LOG, 0, STAGE_DATA, 0, "", NULL,
	  "header X-Spam-Flag /yes/ and size > 1k", NULL },
};

static void test_rules(void **state)
{
	for (size_t i = 0; i < NELEM(rule_rows); i++) {
		struct ruleset *rs = load(rule_rows[i].text);
		struct rule_info ri;

		assert_int_equal(ruleset_count(rs), 1);
		assert_int_equal(ruleset_rule(rs, 0, &ri), 0);
		assert_int_equal(ruleset_rule(rs, 1, &ri) , -1);
		assert_int_equal(ruleset_rule(rs, 0, &ri), 0);
		if (ri.action != rule_rows[i].action || ri.monitor != rule_rows[i].monitor ||
		    ri.stage != rule_rows[i].stage || ri.code != rule_rows[i].code ||
		    strcmp(ri.esc, rule_rows[i].esc) != 0 ||
		    strcmp(ri.text ? ri.text : "(null)", rule_rows[i].tpl ? rule_rows[i].tpl : "(null)") != 0 ||
		    strcmp(ri.what, rule_rows[i].what) != 0 ||
		    strcmp(ri.note ? ri.note : "(null)", rule_rows[i].note ? rule_rows[i].note : "(null)") != 0)
			fail_msg("%s: got %s%s %s %d %s \"%s\" what \"%s\" note \"%s\"", rule_rows[i].text,
			         rules_action_name(ri.action), ri.monitor ? " monitor" : "", rules_stage_name(ri.stage),
			         ri.code, ri.esc, ri.text ? ri.text : "(null)", ri.what, ri.note ? ri.note : "(null)");
		assert_string_equal(ri.file, "t.rules");
		assert_int_equal(ri.line, 1);
		ruleset_unref(rs);
	}
}

/* id NAME: where it may stand, what it may be; the verdict carries it. */
static void test_ids(void **state)
{
	static const struct {
		const char *text, *id;
	} rows[] = {
		{ "reject spf fail id spf-fail", "spf-fail" },
		{ "reject spf fail \"550 5.7.23 x\" id A.b_c-9 note \"n\"", "A.b_c-9" },
		{ "tag tls id t1 header \"X-T: 1\"", "t1" },
		{ "accept client trusted ID trusted", "trusted" },
		{ "log tls id a1234567890123456789012345678901234567890123456789012345678901bc",
		  "a1234567890123456789012345678901234567890123456789012345678901bc" },
		{ "log tls", NULL },
	};
	for (size_t i = 0; i < NELEM(rows); i++) {
		struct ruleset *rs = load(rows[i].text);
		struct rule_info ri;

		assert_int_equal(ruleset_rule(rs, 0, &ri), 0);
		if (rows[i].id)
			assert_string_equal(ri.id, rows[i].id);
		else
			assert_null(ri.id);
		ruleset_unref(rs);
	}
}

/* ---- lines ---- */

static void test_lines(void **state)
{
	struct ruleset *rs = load("\xef\xbb\xbf# a comment line\n"
	                          "\n"
	                          "   \t\n"
	                          "reject spf fail \\\n"
	                          "       and not client trusted \\   \n"
	                          "       \"550 5.7.23 SPF\"\r\n"
	                          "log tls\n"
	                          "# reject a \\\n"
	                          "  commented-out continuation \\\n"
	                          "  stays commented\n"
	                          "log helo x.test");
	struct rule_info ri;
	char d[256];

	assert_int_equal(ruleset_count(rs), 3);
	ruleset_rule(rs, 0, &ri);
	assert_int_equal(ri.line, 4);
	assert_string_equal(ri.what, "spf fail and not client trusted");
	assert_string_equal(ri.text, "SPF");
	ruleset_rule(rs, 1, &ri);
	assert_int_equal(ri.line, 7);
	ruleset_rule(rs, 2, &ri);
	assert_int_equal(ri.line, 11);
	ruleset_describe(rs, d, sizeof d);
	assert_string_equal(d, "3 rules (connect 0, helo 1, mail 2, rcpt 0, data 0), 0 lists, 0 list entries");
	assert_int_equal(ruleset_uses(rs), 1u << FACT_CHECK | 1u << FACT_CLIENT | 1u << FACT_TLS | 1u << FACT_HELO);
	assert_true(ruleset_uses_value(rs, vocab_index("spf")));
	assert_false(ruleset_uses_value(rs, vocab_index("rdns")));
	assert_int_equal(ruleset_stage_count(rs, STAGE_HELO), 1);
	ruleset_unref(rs);

	/* a %{rdns} in a text needs the lookup as much as an rdns condition */
	rs = load("tag client 0.0.0.0/0 header \"X-Rdns: %{RDNS}\"\n");
	assert_int_equal(ruleset_uses(rs), 1u << FACT_CLIENT);
	assert_true(ruleset_uses_value(rs, vocab_index("rdns")));
	ruleset_unref(rs);
	rs = load("reject spf fail note \"%{rdns}\"\n");
	assert_true(ruleset_uses_value(rs, vocab_index("rdns")));
	ruleset_unref(rs);

	/* empty texts are empty rulesets */
	rs = load("");
	assert_int_equal(ruleset_count(rs), 0);
	ruleset_unref(rs);
	rs = load("# nothing\n\n");
	assert_int_equal(ruleset_count(rs), 0);
	ruleset_unref(rs);
}

/* ---- errors ---- */

static const struct { const char *text, *want; } error_rows[] = {
	/* words */
	{ "log tls\nreject spf fail \"550 5.7.1 x", "t.rules:2: unterminated string" },
	{ "reject helo /abc", "t.rules:1: unterminated /regex/" },
	{ "reject spf fail \"550 5.7.1 a\\nb\"", "t.rules:1: unknown escape \"\\n\" in a string (only \\\" and \\\\)" },
	{ "reject spf fail \"550 5.7.1 x\"note \"y\"", "t.rules:1: missing blank after a string" },
	{ "reject helo /x/y", "t.rules:1: missing blank after a /regex/" },
	{ "reject spf fail note\"x\"", "t.rules:1: missing blank before the string after \"note\"" },
	/* actions */
	{ "deny spf fail", "t.rules:1: unknown action \"deny\" (accept, reject, tempfail, tag, log, greylist or ratelimit)" },
	{ "\"reject\" spf fail", "t.rules:1: unknown action \"reject\" (accept, reject, tempfail, tag, log, greylist or ratelimit)" },
	{ "log monitor tls", "t.rules:1: monitor makes no difference to log" },
	{ "greylist rdns none \"451 4.7.1 wait\"", "t.rules:1: greylist replies with moat's own 451 4.7.1 (it says "
	  "when to try again): no reply text" },
	{ "greylist", "t.rules:1: missing a fact after \"greylist\"" },
	{ "ratelimit", "t.rules:1: ratelimit needs client, sender-domain or auth-user and N/WINDOW "
	  "(\"ratelimit client 100/1h\")" },
	{ "ratelimit rdns none", "t.rules:1: ratelimit needs client, sender-domain or auth-user and N/WINDOW "
	  "(\"ratelimit client 100/1h\")" },
	{ "ratelimit client", "t.rules:1: ratelimit client needs N/WINDOW (\"100/1h\": 100 per hour)" },
	{ "ratelimit client 100", "t.rules:1: ratelimit: \"100\" is not N/WINDOW (a count from 1 to 1000000000, "
	  "a window from 1s to 366d: 30s, 10m, 1h, 1d)" },
	{ "ratelimit client 0/1h", "t.rules:1: ratelimit: \"0/1h\" is not N/WINDOW (a count from 1 to 1000000000, "
	  "a window from 1s to 366d: 30s, 10m, 1h, 1d)" },
	{ "ratelimit client 100/1w", "t.rules:1: ratelimit: \"100/1w\" is not N/WINDOW (a count from 1 to "
	  "1000000000, a window from 1s to 366d: 30s, 10m, 1h, 1d)" },
	{ "ratelimit client 100/367d", "t.rules:1: ratelimit: \"100/367d\" is not N/WINDOW (a count from 1 to "
	  "1000000000, a window from 1s to 366d: 30s, 10m, 1h, 1d)" },
	{ "ratelimit client 1000000001/1h", "t.rules:1: ratelimit: \"1000000001/1h\" is not N/WINDOW (a count "
	  "from 1 to 1000000000, a window from 1s to 366d: 30s, 10m, 1h, 1d)" },
	{ "ratelimit client 100/1h rcpt-domain example.com", "t.rules:1: a limit of messages is decided at MAIL: "
	  "its condition cannot test what is known only later (recipient facts)" },
	{ "ratelimit client 100/1h recipients size > 1M", "t.rules:1: a limit of recipients is decided at RCPT: "
	  "its condition cannot test what is known only later (header and size facts)" },
	{ "ratelimit client 100/1h \"451 4.7.1 slow down\"", "t.rules:1: ratelimit replies with moat's own 451 "
	  "4.7.1 (it says when to try again): no reply text" },
	{ "ratelimit client 100/1h and tls", "t.rules:1: missing a fact after \"100/1h\"" },
	{ "ratelimit client 1/1s\nratelimit client 2/1s\nratelimit client 3/1s\nratelimit client 4/1s\n"
	  "ratelimit client 5/1s\nratelimit client 6/1s\nratelimit client 7/1s\nratelimit client 8/1s\n"
	  "ratelimit client 9/1s", "t.rules:9: too many limits of messages (max 8 ratelimit rules of a stage)" },
	{ "log greylisted yes", "t.rules:1: greylisted: \"yes\" is not none, first, early, passed, allowed or "
	  "skipped" },
	{ "log greylisted", "t.rules:1: greylisted needs none, first, early, passed, allowed or skipped" },
	/* conditions */
	{ "reject", "t.rules:1: missing a fact after \"reject\"" },
	{ "reject monitor", "t.rules:1: missing a fact after \"monitor\"" },
	{ "reject \"550 5.7.1 x\"", "t.rules:1: missing a fact after \"reject\"" },
	{ "reject spf fail and", "t.rules:1: missing a fact after \"and\"" },
	{ "reject spf fail or or tls", "t.rules:1: missing a fact after \"or\"" },
	{ "reject not", "t.rules:1: missing a fact after \"not\"" },
	{ "reject and tls", "t.rules:1: missing a fact after \"reject\"" },
	{ "reject ()", "t.rules:1: missing a fact after \"(\"" },
	{ "reject (spf fail", "t.rules:1: missing \")\"" },
	{ "reject (spf fail or (tls)", "t.rules:1: missing \")\"" },
	{ "reject spf fail)", "t.rules:1: unexpected \")\" (and, or, a \"reply\", header, note or id expected)" },
	{ "reject spf fail spf pass", "t.rules:1: unexpected \"spf\" (and, or, a \"reply\", header, note or id expected)" },
	{ "reject rcpt-known yes", "t.rules:1: unexpected \"yes\" (and, or, a \"reply\", header, note or id expected)" },
	{ "reject tls /x/", "t.rules:1: unexpected \"/x/\" (and, or, a \"reply\", header, note or id expected)" },
	{ "reject not not not not not not not not not not not not not not not not not tls",
	  "t.rules:1: condition nested too deep (max 16)" },
	{ "reject ((((((((((((((((((tls))))))))))))))))))", "t.rules:1: condition nested too deep (max 16)" },
	/* facts and their arguments */
	{ "reject spff fail", "t.rules:1: unknown fact \"spff\"" },
	{ "reject spf", "t.rules:1: spf needs pass, fail, softfail, neutral, none, temperror or permerror" },
	{ "reject spf and tls", "t.rules:1: spf needs pass, fail, softfail, neutral, none, temperror or permerror" },
	{ "reject spf failed", "t.rules:1: spf: \"failed\" is not pass, fail, softfail, neutral, none, temperror or permerror" },
	{ "reject client", "t.rules:1: client needs an address or network, list:PATH, trusted or forwarder" },
	{ "reject client 10.0.0.0/33", "t.rules:1: client: \"10.0.0.0/33\" is not an address or network, list:PATH, trusted or forwarder" },
	{ "reject client example.com", "t.rules:1: client: \"example.com\" is not an address or network, list:PATH, trusted or forwarder" },
	{ "reject client list:", "t.rules:1: client: \"list:\" is not an address or network, list:PATH, trusted or forwarder" },
	{ "reject rdns", "t.rules:1: rdns needs a host name, .domain, list:PATH or none" },
	{ "reject rdns bad!name", "t.rules:1: rdns: \"bad!name\" is not a host name, .domain, list:PATH or none" },
	{ "reject rdns 10.0.0.1", "t.rules:1: rdns: \"10.0.0.1\" is not a host name, .domain, list:PATH or none" },
	{ "reject rdns header \"x\"", "t.rules:1: rdns needs a host name, .domain, list:PATH or none" },
	{ "reject helo", "t.rules:1: helo needs a host name, .domain, /regex/ or list:PATH" },
	{ "reject helo //", "t.rules:1: empty /regex/" },
	{ "reject helo /(/", "t.rules:1: bad /regex/ \"(\": Unmatched ( or \\(" },
	{ "reject helo /a++/", "t.rules:1: /regex/ \"a++\": a repetition of a repetition" },
	{ "reject helo /a*?/", "t.rules:1: /regex/ \"a*?\": a repetition of a repetition" },
	{ "reject helo /[[:digit:]]{1,3}+/", "t.rules:1: /regex/ \"[[:digit:]]{1,3}+\": a repetition of a repetition" },
	{ "reject helo /(a)x\\1/", "t.rules:1: /regex/ \"(a)x\\1\": back-references are not allowed" },
	{ "reject helo /((a{99}){99}){99}/", "t.rules:1: /regex/ \"((a{99}){99}){99}\": repetitions add up to more than 100000 copies" },
	{ "reject helo /a{30000}b{30000}c{30000}d{30000}/", "t.rules:1: /regex/ \"a{30000}b{30000}c{30000}d{30000}\": repetitions add up to more than 100000 copies" },
	{ "reject helo /(((((((((((((((((a)))))))))))))))))/", "t.rules:1: /regex/ \"(((((((((((((((((a)))))))))))))))))\": groups nested too deep (max 16)" },
	{ "reject helo ..x", "t.rules:1: helo: \"..x\" is not a host name, .domain, /regex/ or list:PATH" },
	{ "reject sender", "t.rules:1: sender needs an address, @domain, list:PATH or null" },
	{ "reject sender bob@", "t.rules:1: sender: \"bob@\" is not an address, @domain, list:PATH or null" },
	{ "reject sender example.com", "t.rules:1: sender: \"example.com\" is not an address, @domain, list:PATH or null" },
	{ "reject sender /x/", "t.rules:1: sender: a /regex/ is not an address, @domain, list:PATH or null" },
	{ "reject sender-domain 1.2.3.4", "t.rules:1: sender-domain: \"1.2.3.4\" is not a domain, .domain or list:PATH" },
	{ "reject sender-domain -x.test", "t.rules:1: sender-domain: \"-x.test\" is not a domain, .domain or list:PATH" },
	{ "reject sender-check bogus", "t.rules:1: sender-check: \"bogus\" is not pass, none, nxdomain, norecords, nullmx or tempfail" },
	{ "reject rcpt foo", "t.rules:1: rcpt: \"foo\" is not an address, @domain or list:PATH" },
	{ "reject rcpt-domain @x.test", "t.rules:1: rcpt-domain: \"@x.test\" is not a domain, .domain, list:PATH or local" },
	{ "reject relay open", "t.rules:1: relay: \"open\" is not ok, denied or routing" },
	{ "reject listener mx", "t.rules:1: listener: \"mx\" is not smtp, smtps or submission" },
	{ "reject listener", "t.rules:1: listener needs smtp, smtps or submission" },
	{ "reject auth-user", "t.rules:1: auth-user needs a login name, @domain, /regex/ or list:PATH" },
	{ "reject auth-user @bad..domain", "t.rules:1: auth-user: \"@bad..domain\" is not a login name, @domain, /regex/ or list:PATH" },
	{ "reject auth-user list:", "t.rules:1: auth-user: \"list:\" is not a login name, @domain, /regex/ or list:PATH" },
	{ "reject authenticated \"550 5.7.1 %{auth_users}\"", "t.rules:1: reply: unknown variable \"%{auth_users}\"" },
	{ "reject dkim bad", "t.rules:1: dkim: \"bad\" is not pass, fail, none, neutral, temperror or permerror" },
	{ "reject dkim-domain /x/", "t.rules:1: dkim-domain: a /regex/ is not a domain, .domain or list:PATH" },
	{ "reject dkim-signer", "t.rules:1: dkim-signer needs a domain, .domain or list:PATH" },
	{ "reject header", "t.rules:1: header needs a field name and a /regex/" },
	{ "reject header Subject", "t.rules:1: header needs a field name and a /regex/" },
	{ "reject header Subject viagra", "t.rules:1: header needs a field name and a /regex/" },
	{ "reject header Sub:ject /x/", "t.rules:1: header: \"Sub:ject\" is not a field name" },
	{ "reject header Subject /a{1/", "t.rules:1: bad /regex/ \"a{1\": Unmatched \\{" },
	{ "reject size", "t.rules:1: size needs > or < and a number of bytes (K, M or G after it: KiB, MiB, GiB)" },
	{ "reject size 10", "t.rules:1: size needs > or < and a number of bytes (K, M or G after it: KiB, MiB, GiB)" },
	{ "reject size >", "t.rules:1: size needs > or < and a number of bytes (K, M or G after it: KiB, MiB, GiB)" },
	{ "reject size > ten", "t.rules:1: size: \"ten\" is not a number of bytes (K, M or G after it: KiB, MiB, GiB)" },
	{ "reject size >10T", "t.rules:1: size: \"10T\" is not a number of bytes (K, M or G after it: KiB, MiB, GiB)" },
	{ "reject size >-1", "t.rules:1: size: \"-1\" is not a number of bytes (K, M or G after it: KiB, MiB, GiB)" },
	{ "reject size >9999999999999999", "t.rules:1: size: \"9999999999999999\" is not a number of bytes (K, M or G after it: KiB, MiB, GiB)" },
	/* options */
	{ "reject spf fail \"550 5.7.1 a\" \"550 5.7.1 b\"", "t.rules:1: reply given twice" },
	{ "tag tls header \"X: a\" header \"Y: b\"", "t.rules:1: header given twice" },
	{ "log tls note \"a\" note \"b\"", "t.rules:1: note given twice" },
	{ "tag tls header", "t.rules:1: header needs a \"quoted text\"" },
	{ "tag tls header X", "t.rules:1: header needs a \"quoted text\"" },
	{ "log tls note", "t.rules:1: note needs a \"quoted text\"" },
	{ "accept tls \"550 5.7.1 x\"", "t.rules:1: a reply is only for reject and tempfail" },
	{ "log tls \"550 5.7.1 x\"", "t.rules:1: a reply is only for reject and tempfail" },
	{ "reject tls header \"X: y\"", "t.rules:1: header \"...\" is only for tag" },
	{ "tag tls", "t.rules:1: tag needs header \"Name: value\"" },
	{ "tag tls note \"x\"", "t.rules:1: tag needs header \"Name: value\"" },
	{ "tag tls header \"NoColon\"", "t.rules:1: header \"NoColon\" is not \"Name: value\"" },
	{ "tag tls header \"X:  \"", "t.rules:1: header \"X:  \" is not \"Name: value\"" },
	{ "tag tls header \": v\"", "t.rules:1: header \": v\" is not \"Name: value\"" },
	{ "tag tls header \"X Y: v\"", "t.rules:1: header \"X Y: v\" is not \"Name: value\"" },
	{ "tag tls header \"X: %{bad}\"", "t.rules:1: header: unknown variable \"%{bad}\"" },
	{ "log tls note \"%{bad}\"", "t.rules:1: note: unknown variable \"%{bad}\"" },
	{ "log tls note \"%{client\"", "t.rules:1: note: \"%{\" without \"}\"" },
	/* replies */
	{ "reject tls \"451 4.7.1 x\"", "t.rules:1: reject needs a 5xx reply code, not 451" },
	{ "tempfail tls \"550 5.7.1 x\"", "t.rules:1: tempfail needs a 4xx reply code, not 550" },
	{ "tempfail tls \"250 2.0.0 x\"", "t.rules:1: tempfail needs a 4xx reply code, not 250" },
	{ "reject tls \"550 4.7.1 x\"", "t.rules:1: enhanced status code 4.7.1 does not go with reply code 550" },
	{ "reject tls \"550 x\"", "t.rules:1: reply \"550 x\" does not start with a code and an enhanced status code (\"550 5.7.1 text\")" },
	{ "reject tls \"550 5.7.1\"", "t.rules:1: reply \"550 5.7.1\" does not start with a code and an enhanced status code (\"550 5.7.1 text\")" },
	{ "reject tls \"5500 5.7.1 x\"", "t.rules:1: reply \"5500 5.7.1 x\" does not start with a code and an enhanced status code (\"550 5.7.1 text\")" },
	{ "reject tls \"550 5.7.1000 x\"", "t.rules:1: reply \"550 5.7.1000 x\" does not start with a code and an enhanced status code (\"550 5.7.1 text\")" },
	{ "reject tls \"550 5..1 x\"", "t.rules:1: reply \"550 5..1 x\" does not start with a code and an enhanced status code (\"550 5.7.1 text\")" },
	{ "reject tls \"550  5.7.1 x\"", "t.rules:1: reply \"550  5.7.1 x\" does not start with a code and an enhanced status code (\"550 5.7.1 text\")" },
	{ "reject tls \"550 5.7.1 \"", "t.rules:1: reply has no text after \"550 5.7.1\"" },
	{ "reject tls \"550 5.7.1 %{nope}\"", "t.rules:1: reply: unknown variable \"%{nope}\"" },
	{ "reject tls \"550 5.7.1 %{client\"", "t.rules:1: reply: \"%{\" without \"}\"" },
	{ "reject tls \"550 5.7.1 a\tb\"", "t.rules:1: reply has a control character" },
	/* id NAME */
	{ "log tls id", "t.rules:1: id needs a NAME (letters, digits, '.', '_' and '-')" },
	{ "log tls id \"x\"", "t.rules:1: id needs a NAME (letters, digits, '.', '_' and '-')" },
	{ "log tls id a id b", "t.rules:1: id given twice" },
	{ "log tls id -x", "t.rules:1: id \"-x\": a letter or digit, then letters, digits, '.', '_' or '-'" },
	{ "log tls id a/b", "t.rules:1: id \"a/b\": a letter or digit, then letters, digits, '.', '_' or '-'" },
	{ "log tls id \xc3\xa9", "t.rules:1: id \"\xc3\xa9\": a letter or digit, then letters, digits, '.', '_' or '-'" },
	{ "log tls id a12345678901234567890123456789012345678901234567890123456789012345",
	  "t.rules:1: id \"a123456789012345678901234567890123456789012345678901234567890123...\" is longer "
	  "than 64 bytes" },
	{ "log tls id x\nlog spf pass\nlog spf fail id x",
	  "t.rules:3: id \"x\" is already the id of the rule at t.rules:1" },
	{ "log helo id", "t.rules:1: helo needs a host name, .domain, /regex/ or list:PATH" },
	/* include lines */
	{ "include", "t.rules:1: include needs a \"quoted path\" or builtin:default" },
	{ "include x.rules", "t.rules:1: include needs a \"quoted path\" or builtin:default" },
	{ "include \"\"", "t.rules:1: include needs a \"quoted path\" or builtin:default" },
	{ "include \"a\" b", "t.rules:1: unexpected \"b\" after the include path" },
	{ "log tls\n\ninclude \"/nonexistent/x.rules\"",
	  "t.rules:3: include \"/nonexistent/x.rules\": cannot open: No such file or directory" },
	{ "include \"/tmp\"", "t.rules:1: include \"/tmp\": cannot read: not a regular file" },
	{ "reject client list:/nonexistent/nets", "t.rules:1: list \"/nonexistent/nets\": cannot open: No such file or directory" },
	{ "reject client list:/dev/zero", "t.rules:1: list \"/dev/zero\": cannot read: not a regular file" },
	/* lines */
	{ "log tls\nreject spf fail \\", "t.rules:2: backslash at the end of the file continues nothing" },
	{ "log tls\nreject spf \\\n  failed", "t.rules:2: spf: \"failed\" is not pass, fail, softfail, neutral, none, temperror or permerror" },
	/* error text from the rule file is quoted back safely and cut */
	{ "reject spf fail\x01", "t.rules:1: spf: \"fail?\" is not pass, fail, softfail, neutral, none, temperror or permerror" },
	{ "reject spf aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	  "t.rules:1: spf: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\" is not pass, fail, softfail, neutral, none, temperror or permerror" },
};

static void test_errors(void **state)
{
	for (size_t i = 0; i < NELEM(error_rows); i++)
		expect_error(error_rows[i].text, error_rows[i].want);
}

/* Errors about sizes, bytes and counts, built rather than written out. */
static void test_limits(void **state)
{
	size_t big = 20 * RULES_LINE_MAX;
	char *text = malloc(big), *p;

	assert_non_null(text);
	expect_error_len("log tls\nlog \0tls\n", 17, "t.rules:2: NUL byte in line");

	/* a line of RULES_LINE_MAX bytes is fine, one more is not */
	snprintf(text, big, "log tls note \"");
	memset(text + 14, 'a', RULES_LINE_MAX - 15);
	strcpy(text + RULES_LINE_MAX - 1, "\"");
	assert_int_equal(strlen(text), RULES_LINE_MAX);
	ruleset_unref(load(text));
	strcpy(text + RULES_LINE_MAX - 1, "a\"");
	expect_error(text, "t.rules:1: line too long (max 4096 bytes)");

	/* continuation lines add up to RULES_LOGICAL_MAX */
	p = text;
	p += sprintf(p, "log tls\nlog tls note \"");
	for (int i = 0; i < 5; i++) {
		memset(p, 'a', 4000);
		p += 4000;
		p += sprintf(p, "\\\n");
	}
	sprintf(p, "\"\n");
	expect_error(text, "t.rules:2: rule too long (max 16384 bytes with its continuation lines)");

	/* a /regex/ of RULES_REGEX_MAX bytes */
	strcpy(text, "log helo /");
	memset(text + 10, 'a', RULES_REGEX_MAX);
	strcpy(text + 10 + RULES_REGEX_MAX, "/");
	ruleset_unref(load(text));
	strcpy(text + 10 + RULES_REGEX_MAX, "a/");
	expect_error(text, "t.rules:1: /regex/ longer than 1024 bytes");

	/* words */
	p = text;
	p += sprintf(p, "log tls");
	for (int i = 0; i < 511; i++)
		p += sprintf(p, " or tls");
	ruleset_unref(load(text)); /* 1024 words */
	sprintf(p, " or");
	expect_error(text, "t.rules:1: too many words in one rule (max 1024)");

	/* a reply line of 512 bytes with its CRLF */
	strcpy(text, "reject tls \"550 5.7.1 ");
	p = text + strlen(text);
	memset(p, 'x', 512 - 2 - 10);
	strcpy(p + 500, "\"");
	ruleset_unref(load(text));
	strcpy(p + 500, "x\"");
	expect_error(text, "t.rules:1: reply longer than an SMTP reply line (512 bytes)");

	/* a header field of 998 bytes */
	strcpy(text, "tag tls header \"X: ");
	p = text + strlen(text);
	memset(p, 'x', 995);
	strcpy(p + 995, "\"");
	ruleset_unref(load(text));
	strcpy(p + 995, "x\"");
	expect_error(text, "t.rules:1: header field longer than 998 bytes");
	free(text);

	/* RULES_MAX rules */
	size_t n = (RULES_MAX + 1) * 8 + 1;

	text = malloc(n);
	assert_non_null(text);
	for (size_t i = 0; i < RULES_MAX; i++)
		memcpy(text + i * 8, "log tls\n", 8);
	text[RULES_MAX * 8] = '\0';
	struct ruleset *rs = load(text);

	assert_int_equal(ruleset_count(rs), RULES_MAX);
	ruleset_unref(rs);
	strcpy(text + RULES_MAX * 8, "log tls\n");
	expect_error(text, "t.rules:100001: too many rules (max 100000)");
	free(text);
}

/* ---- files: includes, lists ---- */

static char dir[64];

static void put(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static int setup_dir(void **state)
{
	char cmd[128];

	snprintf(dir, sizeof dir, "/tmp/moat-test-rules-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(cmd, sizeof cmd, "%s/sub", dir);
	return mkdir(cmd, 0700);
}

static int teardown_dir(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct ruleset *load_file(const char *name, char *err, size_t errsize)
{
	char path[256];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	return ruleset_load(path, checks_vocab(), err, errsize);
}

static void expect_file_error(const char *name, const char *want_after_dir)
{
	char err[1024], want[1024];
	struct ruleset *rs = load_file(name, err, sizeof err);

	if (rs) {
		ruleset_unref(rs);
		fail_msg("%s loaded", name);
	}
	/* "{D}" in want stands for the directory */
	want[0] = '\0';
	for (const char *s = want_after_dir; *s; s++) {
		size_t n = strlen(want);

		if (strncmp(s, "{D}", 3) == 0) {
			snprintf(want + n, sizeof want - n, "%s", dir);
			s += 2;
		} else {
			snprintf(want + n, sizeof want - n, "%c", *s);
		}
	}
	if (strcmp(err, want) != 0)
		fail_msg("%s:\n  got  %s\n  want %s", name, err, want);
}

static void test_include(void **state)
{
	char err[1024], path[256];
	struct rule_info ri;
	struct ruleset *rs;

	put("main.rules", "log tls\ninclude \"sub/a.rules\"  # relative to main.rules\nlog helo x.test\n");
	put("sub/a.rules", "\n\nlog spf pass\ninclude \"b.rules\"\n");
	put("sub/b.rules", "log spf fail\n");
	rs = load_file("main.rules", err, sizeof err);
	if (!rs)
		fail_msg("%s", err);
	assert_int_equal(ruleset_count(rs), 4);
	static const struct { const char *file; int line; const char *what; } want[] = {
		{ "main.rules", 1, "tls" },
		{ "sub/a.rules", 3, "spf pass" },
		{ "sub/b.rules", 1, "spf fail" },
		{ "main.rules", 3, "helo x.test" },
	};
	for (size_t i = 0; i < NELEM(want); i++) {
		ruleset_rule(rs, i, &ri);
		snprintf(path, sizeof path, "%s/%s", dir, want[i].file);
		assert_string_equal(ri.file, path);
		assert_int_equal(ri.line, want[i].line);
		assert_string_equal(ri.what, want[i].what);
	}
	ruleset_unref(rs);

	/* an error in an included file names that file */
	put("sub/b.rules", "log spf pass\n\nlog spf bogus\n");
	expect_file_error("main.rules", "{D}/sub/b.rules:3: spf: \"bogus\" is not pass, fail, softfail, neutral, none, temperror or permerror");
	put("sub/b.rules", "include \"missing.rules\"\n");
	expect_file_error("main.rules", "{D}/sub/b.rules:1: include \"{D}/sub/missing.rules\": cannot open: No such file or directory");

	/* cycles, however spelt */
	put("sub/b.rules", "log tls\ninclude \"../sub/a.rules\"\n");
	expect_file_error("main.rules", "{D}/sub/b.rules:2: include cycle: \"{D}/sub/../sub/a.rules\" is already being read");
	put("self.rules", "include \"self.rules\"\n");
	expect_file_error("self.rules", "{D}/self.rules:1: include cycle: \"{D}/self.rules\" is already being read");
	put("sub/b.rules", "log tls\n");

	/* an id is unique in the whole ruleset: a second one names the first's FILE:LINE */
	put("sub/b.rules", "log tls  id tls-seen\n");
	put("ids.rules", "log spf pass id spf-pass\ninclude \"sub/b.rules\"\n\nlog helo x id tls-seen\n");
	expect_file_error("ids.rules",
	                  "{D}/ids.rules:4: id \"tls-seen\" is already the id of the rule at {D}/sub/b.rules:1");
	put("sub/b.rules", "log tls\n");

	/* the same file twice side by side is no cycle */
	put("twice.rules", "include \"sub/b.rules\"\ninclude \"sub/b.rules\"\n");
	rs = load_file("twice.rules", err, sizeof err);
	assert_non_null(rs);
	assert_int_equal(ruleset_count(rs), 2);
	ruleset_unref(rs);

	/* depth: the top file and 8 nested includes */
	for (int i = 0; i <= 9; i++) {
		char name[32], text[64];

		snprintf(name, sizeof name, "d%d.rules", i);
		snprintf(text, sizeof text, "log tls\ninclude \"d%d.rules\"\n", i + 1);
		put(name, i < 8 ? text : "log tls\n");
	}
	rs = load_file("d0.rules", err, sizeof err);
	if (!rs)
		fail_msg("%s", err);
	assert_int_equal(ruleset_count(rs), 9);
	ruleset_unref(rs);
	put("d8.rules", "log tls\ninclude \"d9.rules\"\n");
	expect_file_error("d0.rules", "{D}/d8.rules:2: includes nested too deep (max 8)");

	/* includes in all: 1001 of an empty file */
	FILE *f;

	snprintf(path, sizeof path, "%s/many.rules", dir);
	assert_non_null(f = fopen(path, "w"));
	for (int i = 0; i < 1001; i++)
		fputs("include \"sub/empty.rules\"\n", f);
	fclose(f);
	put("sub/empty.rules", "# nothing\n");
	expect_file_error("many.rules", "{D}/many.rules:1001: too many includes (max 1000)");

	/* include builtin:default: the compiled-in policy, named default.rules */
	{
		struct ruleset *def = ruleset_load_default(checks_vocab(), err, sizeof err);
		struct rule_info a;

		assert_non_null(def);
		/* twice: the same rules, ids included, twice (an id repeats only so) */
		put("ext.rules", "log tls\ninclude builtin:default\ninclude BUILTIN:Default\n");
		rs = load_file("ext.rules", err, sizeof err);
		if (!rs)
			fail_msg("%s", err);
		assert_int_equal(ruleset_count(rs), 1 + 2 * ruleset_count(def));
		for (size_t i = 0; i < 2 * ruleset_count(def); i++) {
			ruleset_rule(def, i % ruleset_count(def), &a);
			ruleset_rule(rs, i + 1, &ri);
			assert_string_equal(ri.file, "default.rules");
			assert_int_equal(ri.line, a.line);
			assert_string_equal(ri.what, a.what);
		}
		ruleset_unref(rs);
		ruleset_unref(def);
	}
	put("ext.rules", "log tls\ninclude builtin:strict\n");
	expect_file_error("ext.rules", "{D}/ext.rules:2: unknown built-in rules \"builtin:strict\" (there is builtin:default)");
	put("ext.rules", "include builtin:default x\n");
	expect_file_error("ext.rules", "{D}/ext.rules:1: unexpected \"x\" after the include name");
	put("ext.rules", "include default\n");
	expect_file_error("ext.rules", "{D}/ext.rules:1: include needs a \"quoted path\" or builtin:default");

	/* the top file */
	assert_null(ruleset_load("/nonexistent/moat.rules", checks_vocab(), err, sizeof err));
	assert_string_equal(err, "/nonexistent/moat.rules: cannot open: No such file or directory");
	assert_null(ruleset_load("/tmp", checks_vocab(), err, sizeof err));
	assert_string_equal(err, "/tmp: cannot read: not a regular file");
	assert_null(ruleset_load("/nonexistent", checks_vocab(), NULL, 0)); /* no room for a message is fine */
}

static void test_lists(void **state)
{
	char err[1024];
	struct ruleset *rs;

	put("sub/nets", "10.0.0.0/8\n192.0.2.0/24\n");
	put("sub/domains", "example.com\n.example.org\n");
	put("sub/addrs", "bob@example.com\n");
	put("sub/list.rules", "accept client list:nets\n"
	                      "reject client list:nets and spf fail\n"     /* the same list: read once */
	                      "reject rdns list:domains\n"
	                      "reject sender-domain list:domains\n"        /* same file, same kind: once */
	                      "reject sender list:addrs\n"
	                      "reject rcpt list:addrs\n"
	                      "reject sender list:domains\n");             /* same file, other kind: twice */
	put("sub/domains", "example.com\n.example.org\n");
	expect_file_error("sub/list.rules", "{D}/sub/domains:1: \"example.com\" is not an address (user@domain or @domain)");
	put("sub/domains", "example.com\n.example.org\n@example.net\n");
	put("sub/list.rules", "accept client list:nets\n"
	                      "reject client list:nets and spf fail\n"
	                      "reject rdns list:/nonexistent/domains\n");
	expect_file_error("sub/list.rules", "{D}/sub/list.rules:3: list \"/nonexistent/domains\": cannot open: No such file or directory");
	put("sub/list.rules", "accept client list:nets\n"
	                      "reject client list:nets and spf fail\n"
	                      "reject helo list:addrs\n");
	expect_file_error("sub/list.rules", "{D}/sub/addrs:1: \"bob@example.com\" is not a domain name or .domain");
	put("sub/list.rules", "accept client list:nets\n"
	                      "reject client list:nets and spf fail\n"
	                      "reject sender list:addrs\n"
	                      "reject rcpt list:addrs\n"
	                      "reject rdns list:names\n"
	                      "reject sender-domain list:./names\n");
	put("sub/names", "example.com\n.example.org\n");
	rs = load_file("sub/list.rules", err, sizeof err);
	if (!rs)
		fail_msg("%s", err);
	char d[256];

	ruleset_describe(rs, d, sizeof d);
	/* nets, addrs, names, ./names (spelt differently: read again) */
	assert_string_equal(d, "6 rules (connect 2, helo 0, mail 3, rcpt 1, data 0), 4 lists, 7 list entries");
	ruleset_unref(rs);
}

/* ---- the shipped rule files ---- */

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = malloc(1 << 20);
	size_t n;

	if (!f)
		fail_msg("%s: run the tests from the top of the tree", path);
	assert_non_null(buf);
	n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* greylist and ratelimit rules do not decide: the decision lists them for
 * the session, unless an accept above them holds or monitor mode is on. */
static void test_greylist_ratelimit_eval(void **state)
{
	static const char text[] =
		"accept client 10.0.0.0/8\n"
		"greylist rdns none note \"no rdns\" id grey\n"
		"greylist client 192.0.2.0/24\n"
		"ratelimit client 100/1h id c100\n"
		"ratelimit sender-domain 5/10m recipients\n"
		"ratelimit auth-user 7/2d\n";
	struct ruleset *rs = load(text);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0xc0000201) }; /* 192.0.2.1 */
	struct rule_rcpt rc = { "bob@example.com", "example.com", 1, RELAY_OK, 1, GREY_NONE };
	struct rule_facts f = { .client = (struct sockaddr *)&sin, .client_ip = "192.0.2.1",
	                        .sender = "a@example.org", .sender_domain = "example.org", .rcpt = &rc };
	struct rule_decision *d = calloc(1, sizeof *d);

	assert_non_null(d);
	assert_int_equal(rules_eval(rs, STAGE_MAIL, &f, 0, d), ACTION_NONE);
	assert_int_equal(d->greylist, 0);
	assert_int_equal(d->nlimits, 2);
	assert_int_equal(d->limits[0].key, LIMIT_CLIENT);
	assert_int_equal(d->limits[0].unit, LIMIT_MESSAGES);
	assert_int_equal(d->limits[0].max, 100);
	assert_int_equal(d->limits[0].window, 3600);
	assert_string_equal(d->limits[0].id, "c100");
	assert_int_equal(d->limits[0].line, 4);
	assert_int_equal(d->limits[1].key, LIMIT_AUTH_USER);
	assert_int_equal(d->limits[1].window, 2 * 86400);
	assert_int_equal(rules_eval(rs, STAGE_RCPT, &f, 0, d), ACTION_NONE);
	assert_int_equal(d->greylist, 1);
	assert_string_equal(d->grey.reason, "no rdns");
	assert_string_equal(d->grey.id, "grey");
	assert_int_equal(d->grey.line, 2);
	assert_int_equal(d->nlimits, 1);
	assert_int_equal(d->limits[0].key, LIMIT_SENDER_DOMAIN);
	assert_int_equal(d->limits[0].unit, LIMIT_RECIPIENTS);
	assert_int_equal(d->limits[0].max, 5);
	assert_int_equal(d->limits[0].window, 600);
	/* global monitor mode: "would greylist", nothing applied */
	assert_int_equal(rules_eval(rs, STAGE_RCPT, &f, 1, d), ACTION_NONE);
	assert_int_equal(d->greylist, 0);
	assert_int_equal(d->nlimits, 0);
	assert_int_equal(d->nhits, 3);
	assert_int_equal(d->hits[0].action, ACTION_GREYLIST);
	assert_int_equal(d->hits[0].monitor, 1);
	/* an accept above them holds */
	sin.sin_addr.s_addr = htonl(0x0a010101);
	f.client_ip = "10.1.1.1";
	assert_int_equal(rules_eval(rs, STAGE_RCPT, &f, 0, d), ACTION_ACCEPT);
	assert_int_equal(d->greylist, 0);
	assert_int_equal(d->nlimits, 0);
	free(d);
	ruleset_unref(rs);
}

static void test_shipped(void **state)
{
	char err[1024], *text = slurp("rules/default.rules");
	struct ruleset *def, *mon, *strict;
	struct rule_info a, b;

	/* the built-in policy is exactly rules/default.rules */
	assert_string_equal(rules_default_text, text);
	free(text);
	def = ruleset_load_default(checks_vocab(), err, sizeof err);
	if (!def)
		fail_msg("%s", err);
	ruleset_rule(def, 0, &a);
	assert_string_equal(a.file, "default.rules");

	/* monitor.rules: the same rules, every refusal in monitor mode */
	mon = ruleset_load("rules/monitor.rules", checks_vocab(), err, sizeof err);
	if (!mon)
		fail_msg("%s", err);
	assert_int_equal(ruleset_count(mon), ruleset_count(def));
	for (size_t i = 0; i < ruleset_count(def); i++) {
		ruleset_rule(def, i, &a);
		ruleset_rule(mon, i, &b);
		assert_int_equal(a.action, b.action);
		assert_int_equal(a.stage, b.stage);
		assert_int_equal(a.code, b.code);
		assert_string_equal(a.esc, b.esc);
		assert_string_equal(a.text ? a.text : "", b.text ? b.text : "");
		assert_string_equal(a.what, b.what);
		assert_string_equal(a.note ? a.note : "", b.note ? b.note : "");
		assert_non_null(a.id); /* every shipped rule has a stable name for the log */
		assert_string_equal(a.id, b.id);
		assert_int_equal(b.monitor, a.action == ACTION_REJECT || a.action == ACTION_TEMPFAIL);
	}

	/* strict.rules: the default (included by name), then more */
	strict = ruleset_load("rules/strict.rules", checks_vocab(), err, sizeof err);
	if (!strict)
		fail_msg("%s", err);
	assert_true(ruleset_count(strict) > ruleset_count(def));
	for (size_t i = 0; i < ruleset_count(def); i++) {
		ruleset_rule(def, i, &a);
		ruleset_rule(strict, i, &b);
		assert_string_equal(b.file, "default.rules");
		assert_string_equal(a.what, b.what);
		assert_int_equal(a.line, b.line);
	}
	ruleset_unref(strict);
	ruleset_unref(mon);

	/* references */
	assert_ptr_equal(ruleset_ref(def), def);
	ruleset_unref(def);
	ruleset_unref(def);
	ruleset_unref(NULL);
	assert_null(ruleset_ref(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_include),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_greylist_ratelimit_eval),
		cmocka_unit_test(test_shipped),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
