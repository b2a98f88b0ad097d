/* test_record.c - the record format of record_dir (proxy/lib/record.c):
 * written, read back, and refused when wrong */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/lib/record.h"

/* A record as the recorder writes one, with a message. */
static size_t sample(char *buf, size_t size, const char *msg)
{
	static const unsigned char reply[] = {0x12, 0x34, 0x81, 0x80, 0, 1};
	struct record_out o;
	struct record_verdict ok = {1, 0, "", "", ""}, no = {1, 550, "5.7.1", "site-subject", "no lotteries"};
	struct record_verdict unjudged = {0};
	struct record_answer a = {16, 0, 300, "Example.org", reply, sizeof reply}, nx = {1, 2, 60, "x.test", NULL, 0};
	size_t n;

	assert_int_equal(record_out_init(&o, 4096), 0);
	record_line(&o, "moat-record", 1, (const char *[]){"1"});
	record_line(&o, "time", 1, (const char *[]){"1765170000"});
	record_line(&o, "session", 2, (const char *[]){"00ff", "2"});
	record_line(&o, "client", 4, (const char *[]){"2001:db8::1", "submission", "1", "joe user%"});
	record_line(&o, "helo", 1, (const char *[]){"-"});
	record_verdict_line(&o, "stage", "connect", &ok);
	record_line(&o, "mail", 1, (const char *[]){""});
	record_verdict_line(&o, "stage", "mail", &ok);
	record_verdict_line(&o, "rcpt", "a@example.test", &ok);
	record_verdict_line(&o, "rcpt", "b@example.test", &unjudged);
	record_verdict_line(&o, "stage", "data", &no);
	record_line(&o, "checks", 2, (const char *[]){"data", "dkim pass (example.org), dmarc pass"});
	assert_int_equal(record_answer_line(&o, &a, o.cap), 0);
	assert_int_equal(record_answer_line(&o, &nx, o.cap), 0);
	record_line(&o, "a-later-keyword", 1, (const char *[]){"skipped"});
	assert_false(o.full);
	n = (size_t)snprintf(buf, size, "%.*smessage %zu\n%s", (int)o.len, o.buf, strlen(msg), msg);
	record_out_free(&o);
	return n;
}

static void test_round_trip(void **state)
{
	char buf[8192], err[200];
	const char *msg = "Subject: x\r\n\r\nmessage 3\r\n";
	size_t n = sample(buf, sizeof buf, msg);
	struct record r;

	(void)state;
	assert_int_equal(record_parse(buf, n, &r, err, sizeof err), 0);
	assert_int_equal(r.time, 1765170000);
	assert_string_equal(r.session, "00ff");
	assert_int_equal(r.ntx, 2);
	assert_string_equal(r.client, "2001:db8::1");
	assert_string_equal(r.listener, "submission");
	assert_int_equal(r.tls, 1);
	assert_string_equal(r.auth_user, "joe user%");
	assert_string_equal(r.helo, "-"); /* a value "-" is not the empty one */
	assert_int_equal(r.has_mail, 1);
	assert_string_equal(r.from, ""); /* the null sender */
	assert_int_equal(r.stage[REC_CONNECT].judged, 1);
	assert_int_equal(r.stage[REC_HELO].judged, 0);
	assert_int_equal(r.nrcpt, 2);
	assert_string_equal(r.rcpt[0].mailbox, "a@example.test");
	assert_int_equal(r.rcpt[0].v.judged, 1);
	assert_int_equal(r.rcpt[1].v.judged, 0);
	assert_int_equal(r.stage[REC_DATA].code, 550);
	assert_string_equal(r.stage[REC_DATA].esc, "5.7.1");
	assert_string_equal(r.stage[REC_DATA].rule, "site-subject");
	assert_string_equal(r.stage[REC_DATA].reason, "no lotteries");
	assert_string_equal(r.checks[REC_DATA], "dkim pass (example.org), dmarc pass");
	assert_string_equal(r.checks[REC_MAIL], "");
	assert_int_equal(r.nans, 2);
	assert_string_equal(r.ans[0].name, "Example.org");
	assert_int_equal(r.ans[0].type, 16);
	assert_int_equal(r.ans[0].ttl, 300);
	assert_int_equal(r.ans[0].alen, 6);
	assert_int_equal(r.ans[0].abuf[2], 0x81);
	assert_null(r.ans[1].abuf);
	assert_int_equal(r.ans[1].status, 2);
	assert_int_equal(r.message_len, strlen(msg));
	assert_memory_equal(r.message, msg, strlen(msg)); /* "message" inside the message is its bytes */
	record_free(&r);
}

static void test_encode(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(record_encode(out, sizeof out, ""), 0);
	assert_string_equal(out, "-");
	assert_int_equal(record_encode(out, sizeof out, "-"), 0);
	assert_string_equal(out, "%2D");
	assert_int_equal(record_encode(out, sizeof out, "a b%\xc3\xa9\n"), 0);
	assert_string_equal(out, "a%20b%25%C3%A9%0A");
	assert_int_equal(record_encode(out, 4, "abcd"), -1);
}

/* Each bad record is refused with the line it is on. */
static void test_refused(void **state)
{
	static const struct {
		const char *text, *err;
	} bad[] = {
		{"", "line 1: not a moat record"},
		{"moat-record 2\nclient 1.2.3.4 smtp 0 -\n", "line 1: not a moat record"},
		{"moat-record 1\n", "no client line"},
		{"moat-record 1\nclient 1.2.3.4 smtp 0 -", "line 2: no line end"},
		{"moat-record 1\nclient 1.2.3.4 smtp 2 -\n", "line 2: bad client line"},
		{"moat-record 1\nclient 1.2.3.4 smtp 0 - \n", "line 2: bad value"},
		{"moat-record 1\nclient 1.2.3.4  smtp 0 -\n", "line 2: bad value"},
		{"moat-record 1\nhelo a%00b\n", "line 2: bad value"},
		{"moat-record 1\nhelo a%4\n", "line 2: bad value"},
		{"moat-record 1\nhelo a\tb\n", "line 2: bad value"},
		{"moat-record 1\nrcpt a@b 399 - - -\n", "line 2: bad reply code"},
		{"moat-record 1\nrcpt a@b 250x - - -\n", "line 2: bad reply code"},
		{"moat-record 1\nrcpt - 550 - - -\n", "line 2: bad recipient"},
		{"moat-record 1\nstage quit 0 - - -\n", "line 2: bad stage line"},
		{"moat-record 1\ndns 16 0 300 a.test 0a0\n", "line 2: bad DNS reply"},
		{"moat-record 1\ndns 16 4 300 a.test -\n", "line 2: bad dns line"},
		{"moat-record 1\ndns 0 0 300 a.test -\n", "line 2: bad dns line"},
		{"moat-record 1\ndns 16 0 300 a.test zz\n", "line 2: bad DNS reply"},
		{"moat-record 1\nclient 1.2.3.4 smtp 0 -\nmessage 5\nabc", "line 3: bad message length"},
		{"moat-record 1\nclient 1.2.3.4 smtp 0 -\nmessage 99999999\n", "line 3: bad message length"},
		{"moat-record 1\ntime -1\n", "line 2: bad time"},
		{"moat-record 1\nchecks rcpt x\n", "line 2: bad checks line"},
		{"moat-record 1\nchecks data\n", "line 2: bad checks line"},
	};
	char err[200];
	struct record r;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		if (record_parse(bad[i].text, strlen(bad[i].text), &r, err, sizeof err) != -1 ||
		    !strstr(err, bad[i].err))
			fail_msg("case %zu: %s -> \"%s\"", i, bad[i].text, err);
	}
}

/* The bounds: answers and the answer bound of a line. */
static void test_bounds(void **state)
{
	struct record_out o;
	struct record_answer a = {1, 1, 5, "a.test", NULL, 0};
	struct record r;
	char err[200];
	int n = 0;

	(void)state;
	assert_int_equal(record_out_init(&o, 64 * 1024), 0);
	record_line(&o, "moat-record", 1, (const char *[]){"1"});
	record_line(&o, "client", 4, (const char *[]){"1.2.3.4", "smtp", "0", ""});
	while (record_answer_line(&o, &a, 200) == 0)
		n++;
	assert_true(o.len <= 200 && n > 0); /* the bound is the buffer's length */
	for (int i = 0; i <= MOAT_RECORD_ANSWERS_MAX; i++)
		record_answer_line(&o, &a, o.cap);
	assert_int_equal(record_parse(o.buf, o.len, &r, err, sizeof err), -1);
	assert_non_null(strstr(err, "more than"));
	record_out_free(&o);
}

/* The buffer grows line by line up to cap; past it the record is full. */
static void test_growth(void **state)
{
	struct record_out o;
	char line[1000];

	(void)state;
	memset(line, 'x', sizeof line);
	assert_int_equal(record_out_init(&o, 20000), 0);
	for (int i = 0; i < 20; i++)
		record_put(&o, line, sizeof line);
	assert_false(o.full);
	assert_int_equal(o.len, 20000);
	assert_true(o.size >= o.len && o.size <= 20000);
	assert_int_equal(o.buf[19999], 'x');
	record_put(&o, "y", 1);
	assert_true(o.full);
	record_out_free(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_encode),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_growth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
