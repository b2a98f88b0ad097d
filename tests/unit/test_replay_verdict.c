/* test_replay_verdict.c - a transaction's verdict line for moat replay
 * (proxy/replay_verdict.c): which stage decides, the line, what is
 * compared, the --expect file */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "checks/checks.h"
#include "proxy/replay_verdict.h"

static struct record_verdict judged(int code, const char *esc, const char *rule)
{
	struct record_verdict v = {1, code, "", "", ""};

	snprintf(v.esc, sizeof v.esc, "%s", esc);
	snprintf(v.rule, sizeof v.rule, "%s", rule);
	return v;
}

static char *line_of(const struct record *r)
{
	static char buf[REPLAY_LINE_MAX];

	replay_format(buf, sizeof buf, "t.rec", r, "");
	return buf;
}

static void test_which_stage_decides(void **state)
{
	struct record_rcpt rc[3];
	struct record r = {.rcpt = rc, .has_mail = 1};

	(void)state;
	memset(rc, 0, sizeof rc);
	r.stage[REC_CONNECT] = judged(554, "5.7.1", "dnsbl");
	assert_string_equal(line_of(&r), "t.rec reject 554 5.7.1 connect rule=dnsbl rcpts=0/0\n");
	r.stage[REC_CONNECT] = judged(0, "", "");
	r.stage[REC_HELO] = judged(0, "", "");
	r.stage[REC_MAIL] = judged(451, "4.4.3", "sender-tempfail");
	r.nrcpt = 1; /* with delay_reject the RCPT was answered by MAIL's verdict, not judged */
	assert_string_equal(line_of(&r), "t.rec tempfail 451 4.4.3 mail rule=sender-tempfail rcpts=0/1\n");
	r.stage[REC_MAIL] = judged(0, "", "");
	/* every recipient refused: a 5xx before a 4xx */
	r.nrcpt = 3;
	rc[0].v = judged(450, "4.2.0", "greylist");
	rc[1].v = judged(554, "5.7.1", "relay-denied");
	rc[2].v = judged(550, "5.1.1", "unknown-recipient");
	assert_string_equal(line_of(&r), "t.rec reject 554 5.7.1 rcpt rule=relay-denied rcpts=0/3\n");
	/* one accepted: the transaction goes on; no data stage: accept at rcpt */
	rc[2].v = judged(0, "", "vip");
	assert_string_equal(line_of(&r), "t.rec accept - - rcpt rule=vip rcpts=1/3\n");
	r.stage[REC_DATA] = judged(0, "", "");
	assert_string_equal(line_of(&r), "t.rec accept - - data rule=vip rcpts=1/3\n");
	r.stage[REC_DATA] = judged(550, "5.7.1", "big.rules:12");
	assert_string_equal(line_of(&r), "t.rec reject 550 5.7.1 data rule=big.rules:12 rcpts=1/3\n");
	/* a session refused at connect and nothing else: no MAIL */
	memset(&r, 0, sizeof r);
	r.stage[REC_CONNECT] = judged(0, "", "");
	assert_string_equal(line_of(&r), "t.rec accept - - connect rule=- rcpts=0/0\n");
}

static void test_same_and_notes(void **state)
{
	char buf[REPLAY_LINE_MAX], note[200];
	struct record r = {0};
	const char missing[2][RECORD_NAME_MAX + 16] = {"a.test/1", "b.test/16"};

	(void)state;
	replay_note(note, sizeof note, &r, 1, missing, 2);
	assert_string_equal(note, "data re-run; not recorded: a.test/1; b.test/16");
	replay_note(note, sizeof note, &r, 2, missing, 0);
	assert_string_equal(note, "data reused: no message recorded");
	replay_format(buf, sizeof buf, "x y.rec", &r, note);
	assert_string_equal(buf, "x%20y.rec accept - - connect rule=- rcpts=0/0 # data reused: no message recorded\n");
	assert_true(replay_same(buf, "x%20y.rec accept - - connect rule=- rcpts=0/0\n"));
	assert_true(replay_same(buf, "x%20y.rec accept - - connect rule=- rcpts=0/0"));
	assert_false(replay_same(buf, "x%20y.rec accept - - connect rule=- rcpts=0/1\n"));
	assert_false(replay_same(buf, "x%20y.rec accept - - connect rule=- rcpts=0/0 extra\n"));
}

static void test_rule_names(void **state)
{
	struct verdict v = {.code = 550, .esc = "5.7.1", .reason = "r", .rule_file = "/etc/moat/rules/site.rules",
	                    .rule_line = 7};
	struct record_verdict out;

	(void)state;
	replay_verdict_of(&out, &v);
	assert_string_equal(out.rule, "site.rules:7"); /* not where the file is */
	v.rule_id = "no-lottery";
	replay_verdict_of(&out, &v);
	assert_string_equal(out.rule, "no-lottery");
	v = (struct verdict){0};
	replay_verdict_of(&out, &v);
	assert_string_equal(out.rule, "");
	assert_string_equal(out.esc, "");
}

static void test_expect_file(void **state)
{
	char path[] = "/tmp/moat-expect-XXXXXX", buf[REPLAY_LINE_MAX];
	int fd = mkstemp(path);
	static const char text[] = "b.rec reject 550 5.7.1 data rule=x rcpts=1/1 # data re-run\n"
	                           "- a.rec accept - - data rule=- rcpts=1/1\n"
	                           "# a comment\n"
	                           "\n"
	                           "a.rec accept - - data rule=- rcpts=1/1\n"
	                           "c.rec accept - - mail rule=- rcpts=0/0";
	struct replay_expect *e;
	struct record r = {0};

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof text - 1), (int)(sizeof text - 1));
	close(fd);
	e = replay_expect_load(path);
	unlink(path);
	assert_non_null(e);
	assert_int_equal(replay_expected(path, e, "a.rec", &r, buf, sizeof buf), 1);
	assert_string_equal(buf, "a.rec accept - - data rule=- rcpts=1/1\n");
	assert_int_equal(replay_expected(path, e, "b.rec", &r, buf, sizeof buf), 1);
	assert_true(replay_same(buf, "b.rec reject 550 5.7.1 data rule=x rcpts=1/1\n"));
	assert_int_equal(replay_expected(path, e, "c.rec", &r, buf, sizeof buf), 1);
	assert_string_equal(buf, "c.rec accept - - mail rule=- rcpts=0/0\n");
	assert_int_equal(replay_expected(path, e, "d.rec", &r, buf, sizeof buf), 0);
	assert_int_equal(replay_expected(path, e, "a.re", &r, buf, sizeof buf), 0);
	/* "recorded": the record's own verdict */
	r.stage[REC_CONNECT] = judged(554, "5.7.1", "dnsbl");
	assert_int_equal(replay_expected("recorded", NULL, "d.rec", &r, buf, sizeof buf), 1);
	assert_string_equal(buf, "d.rec reject 554 5.7.1 connect rule=dnsbl rcpts=0/0\n");
	replay_expect_free(e);
	assert_null(replay_expect_load("/nonexistent/expected"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_which_stage_decides),
		cmocka_unit_test(test_same_and_notes),
		cmocka_unit_test(test_rule_names),
		cmocka_unit_test(test_expect_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
