/* test_report_jsonline.c - the report's JSON line parser: moat's lines,
 * every escape, UTF-8, numbers, nested values, and what it must refuse */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/report/jsonline.h"

static char scratch[8192];

static int parse(struct logline *l, const char *line)
{
	return logline_parse(l, line, strlen(line), scratch);
}

static void assert_field(const struct logline *l, enum ll_field f, const char *want, size_t n)
{
	if (!l->f[f].p)
		fail_msg("%s: absent, want \"%s\"", logline_field_name(f), want);
	if (l->f[f].n != n || memcmp(l->f[f].p, want, n) != 0)
		fail_msg("%s: \"%.*s\" (%zu bytes), want \"%s\" (%zu)", logline_field_name(f), (int)l->f[f].n,
		         l->f[f].p, l->f[f].n, want, n);
}

#define FIELD(l, f, s) assert_field(l, f, s, sizeof s - 1)

static const char decision[] =
	"{\"ts\":\"2026-12-07T21:32:13.062Z\",\"level\":\"info\",\"event\":\"decision\",\"worker\":3,"
	"\"session\":\"02bb96ef06bd41d3\",\"client_ip\":\"192.0.2.7\",\"helo\":\"good.example\","
	"\"mail_from\":\"x@nx.invalid\",\"rcpt\":\"bob@example.test\",\"stage\":\"rcpt\",\"action\":\"reject\","
	"\"code\":550,\"esc\":\"5.1.8\",\"reason\":\"sender domain does not exist\",\"rule\":\"default.rules:22\","
	"\"rule_id\":\"sender-nxdomain\",\"sender_domain\":\"nxdomain\",\"spf\":\"none\","
	"\"spf_reason\":\"no SPF record at nx.invalid\",\"dkim\":\"\"}";

static void test_moat_line(void **state)
{
	struct logline l;

	assert_int_equal(parse(&l, decision), 0);
	FIELD(&l, LL_TS, "2026-12-07T21:32:13.062Z");
	FIELD(&l, LL_EVENT, "decision");
	FIELD(&l, LL_SESSION, "02bb96ef06bd41d3");
	FIELD(&l, LL_CLIENT_IP, "192.0.2.7");
	FIELD(&l, LL_HELO, "good.example");
	FIELD(&l, LL_MAIL_FROM, "x@nx.invalid");
	FIELD(&l, LL_RCPT, "bob@example.test");
	FIELD(&l, LL_STAGE, "rcpt");
	FIELD(&l, LL_ACTION, "reject");
	FIELD(&l, LL_ESC, "5.1.8");
	FIELD(&l, LL_REASON, "sender domain does not exist");
	FIELD(&l, LL_RULE, "default.rules:22");
	FIELD(&l, LL_RULE_ID, "sender-nxdomain");
	FIELD(&l, LL_SENDER_DOMAIN, "nxdomain");
	FIELD(&l, LL_SPF, "none");
	FIELD(&l, LL_DKIM, "");
	assert_int_equal(l.code, 550);
	assert_int_equal(l.worker, 3);
	assert_int_equal(l.messages, -1);
	assert_int_equal(l.truncated, 0);
	assert_null(l.f[LL_RDNS].p);
	assert_null(l.f[LL_MSG].p);
	/* no escape: the values point into the line, nothing is copied */
	assert_true(l.f[LL_REASON].p > decision && l.f[LL_REASON].p < decision + sizeof decision);
}

static void test_session_end_and_truncated(void **state)
{
	struct logline l;

	assert_int_equal(parse(&l, "{\"ts\":\"2026-12-07T21:32:13.062Z\",\"level\":\"info\",\"event\":\"session_end\","
	                           "\"session\":\"a\",\"messages\":12,\"rejected\":0,\"errors\":3,\"truncated\":true}"),
	                 0);
	assert_int_equal(l.messages, 12);
	assert_int_equal(l.rejected, 0);
	assert_int_equal(l.errors, 3);
	assert_int_equal(l.truncated, 1);
	assert_int_equal(l.code, -1);
	assert_int_equal(parse(&l, "{\"truncated\":false}"), 0);
	assert_int_equal(l.truncated, 0);
}

static const struct {
	const char *json; /* a "reason" value, escaped */
	const char *want; /* its bytes */
	size_t n;
} escapes[] = {
	{"plain", "plain", 5},
	{"q\\\"uote", "q\"uote", 6},
	{"back\\\\slash", "back\\slash", 10},
	{"\\/\\b\\f\\n\\r\\t", "/\b\f\n\r\t", 6},
	{"\\u0041\\u00e9\\u20ac", "A\xc3\xa9\xe2\x82\xac", 6},
	{"\\u00E9", "\xc3\xa9", 2},
	{"\\ud83d\\ude00", "\xf0\x9f\x98\x80", 4},           /* a surrogate pair */
	{"\\ud83d", "\xef\xbf\xbd", 3},                        /* a lone high surrogate */
	{"\\ude00x", "\xef\xbf\xbdx", 4},                      /* a lone low surrogate */
	{"\\ud83d\\u0041", "\xef\xbf\xbd" "A", 4},            /* high, then not a low one */
	{"a\\u0000b", "a\0b", 3},
	{"\\ufffd\\u2028", "\xef\xbf\xbd\xe2\x80\xa8", 6},
	{"\xd0\xbe\xd1\x82\xd0\xbf", "\xd0\xbe\xd1\x82\xd0\xbf", 6}, /* UTF-8 as it is */
	{"\xf0\x9f\x98\x80\\n", "\xf0\x9f\x98\x80\n", 5},
	{"", "", 0},
	{"0123456789abcdef0123456789\\\"", "0123456789abcdef0123456789\"", 27}, /* past 8-byte blocks */
};

static void test_escapes(void **state)
{
	for (size_t i = 0; i < sizeof escapes / sizeof escapes[0]; i++) {
		char line[512];
		struct logline l;

		snprintf(line, sizeof line, "{\"event\":\"x\",\"reason\":\"%s\",\"rule\":\"r\"}", escapes[i].json);
		if (parse(&l, line) != 0)
			fail_msg("does not parse: %s", line);
		assert_field(&l, LL_REASON, escapes[i].want, escapes[i].n);
		FIELD(&l, LL_RULE, "r");
		FIELD(&l, LL_EVENT, "x");
	}
}

static void test_escaped_key(void **state)
{
	struct logline l;

	/* "\u0063ode" is "code"; "\u0072eason" is "reason" */
	assert_int_equal(parse(&l, "{\"\\u0063ode\":451,\"\\u0072eason\":\"why\"}"), 0);
	assert_int_equal(l.code, 451);
	FIELD(&l, LL_REASON, "why");
}

static void test_numbers_and_others(void **state)
{
	static const struct {
		const char *v;
		long long code;
	} nums[] = {
		{"0", 0}, {"-5", -5}, {"250", 250}, {"1.5", -1}, {"1e3", -1}, {"-0.0E+2", -1},
		{"123456789012345678", 123456789012345678LL}, {"1234567890123456789", -1},
		{"\"550\"", -1}, {"null", -1}, {"true", -1}, {"[550]", -1}, {"{\"a\":550}", -1},
	};
	struct logline l;

	for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
		char line[128];

		snprintf(line, sizeof line, "{\"code\":%s,\"reason\":\"r\"}", nums[i].v);
		if (parse(&l, line) != 0)
			fail_msg("does not parse: %s", line);
		if (l.code != nums[i].code)
			fail_msg("%s: code %lld, want %lld", line, l.code, nums[i].code);
		FIELD(&l, LL_REASON, "r");
	}
	/* a string field with another type of value is absent */
	assert_int_equal(parse(&l, "{\"reason\":12,\"rule\":null,\"helo\":[\"x\"]}"), 0);
	assert_null(l.f[LL_REASON].p);
	assert_null(l.f[LL_RULE].p);
	assert_null(l.f[LL_HELO].p);
}

static void test_shapes(void **state)
{
	static const char *const good[] = {
		"{}", " { } ", "{}\r", "\t{\"a\" : 1 ,\"b\":\"c\" }\r",
		"{\"a\":{\"b\":[1,2,{\"c\":[]}],\"d\":{}},\"reason\":\"after\"}",
		"{\"a\":[],\"b\":[true,false,null,-1.5e-3,\"s\\\"\"]}",
		"{\"reason\":\"first\",\"reason\":\"last\"}",
		"{\"unknown key with \\\"quotes\\\"\":\"v\"}",
	};
	struct logline l;

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		if (parse(&l, good[i]) != 0)
			fail_msg("refused: %s", good[i]);
	assert_int_equal(parse(&l, good[4]), 0);
	FIELD(&l, LL_REASON, "after");
	assert_int_equal(parse(&l, good[6]), 0);
	FIELD(&l, LL_REASON, "last");
}

static void test_refused(void **state)
{
	static const char *const bad[] = {
		"", " ", "[]", "\"s\"", "42", "null", "{", "}", "{\"a\":1", "{\"a\" 1}", "{\"a\":}",
		"{\"a\":1,}", "{,\"a\":1}", "{\"a\":1}}", "{\"a\":1} x", "{\"a\":1}{}", "{a:1}", "{'a':1}",
		"{\"a\":\"x}", "{\"a\":\"x\\\"}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\\u12g4\"}",
		"{\"a\":\"\\\"}", "{\"a\":tru}", "{\"a\":nul}", "{\"a\":01}", "{\"a\":-}", "{\"a\":1.}",
		"{\"a\":.5}", "{\"a\":1e}", "{\"a\":+1}", "{\"a\":[1,]}", "{\"a\":[1 2]}", "{\"a\":{1:2}}",
		"{\"a\":\"tab\there\"}", "{\"a\":\"nl\nhere\"}",
		"{\"a\":\"\x80\"}",                 /* a stray continuation byte */
		"{\"a\":\"\xc3\"}",                 /* a cut sequence */
		"{\"a\":\"\xc0\xaf\"}",             /* an overlong form */
		"{\"a\":\"\xed\xa0\x80\"}",         /* a surrogate in UTF-8 */
		"{\"a\":\"\xf4\x90\x80\x80\"}",     /* past U+10FFFF */
		"{\"a\":\"\xff\"}",
		"\xef\xbb\xbf{}",                   /* a byte order mark */
	};
	struct logline l;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (parse(&l, bad[i]) == 0)
			fail_msg("taken: %s", bad[i]);
	/* a NUL inside the line (not at the end of the C string) */
	assert_int_equal(logline_parse(&l, "{\"a\":\"x\0y\"}", 11, scratch), -1);
	assert_int_equal(logline_parse(&l, "{\"a\":1}\0", 8, scratch), -1);
}

static void test_depth(void **state)
{
	char line[512];
	struct logline l;
	int d;

	/* REPORT_JSON_DEPTH (32) nested arrays are taken, one more is not */
	for (d = 32; d <= 33; d++) {
		size_t n = 0;

		n += (size_t)snprintf(line + n, sizeof line - n, "{\"a\":");
		for (int i = 0; i < d; i++)
			line[n++] = '[';
		for (int i = 0; i < d; i++)
			line[n++] = ']';
		snprintf(line + n, sizeof line - n, "}");
		assert_int_equal(parse(&l, line), d == 32 ? 0 : -1);
	}
}

/* Every cut of a valid line is refused, and nothing is read past it. */
static void test_every_prefix(void **state)
{
	size_t n = strlen(decision);
	struct logline l;

	for (size_t k = 0; k < n; k++) {
		char *copy = malloc(k ? k : 1);

		memcpy(copy, decision, k);
		if (logline_parse(&l, copy, k, scratch) == 0)
			fail_msg("a cut at %zu parsed", k);
		free(copy);
	}
}

static void test_field_names(void **state)
{
	assert_string_equal(logline_field_name(LL_CLIENT_IP), "client_ip");
	assert_string_equal(logline_field_name(LL_RULE_ID), "rule_id");
	assert_string_equal(logline_field_name(LL_MSG), "msg");
	assert_true(ll_is((struct ll_str){"reject", 6}, "reject"));
	assert_false(ll_is((struct ll_str){"reject", 6}, "rejec"));
	assert_false(ll_is((struct ll_str){NULL, 0}, ""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_moat_line),
		cmocka_unit_test(test_session_end_and_truncated),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_escaped_key),
		cmocka_unit_test(test_numbers_and_others),
		cmocka_unit_test(test_shapes),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_every_prefix),
		cmocka_unit_test(test_field_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
