/* test_xclient.c - XCLIENT and XFORWARD lines: xtext, the attributes the
 * backend lists, 512-byte commands */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/smtp_reply.h"
#include "proxy/xclient.h"

#define ALL (XCLIENT_OFFERED | XCLIENT_NAME | XCLIENT_ADDR | XCLIENT_PORT | XCLIENT_PROTO | XCLIENT_HELO | \
             XCLIENT_LOGIN)

static void test_xtext(void **state)
{
	static const struct {
		const char *in, *out;
	} rows[] = {
		{ "", "" },
		{ "mail.example.com", "mail.example.com" },
		{ "a+b=c", "a+2Bb+3Dc" },
		{ "sp ace", "sp+20ace" },
		{ "tab\t", "tab+09" },
		{ "\x7f\x80\xff", "+7F+80+FF" },
		{ "!~", "!~" },
		{ "[1.2.3.4]", "[1.2.3.4]" },
	};
	char out[64];

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		size_t n = xtext(rows[i].in, out, sizeof out);

		assert_string_equal(out, rows[i].out);
		assert_int_equal(n, strlen(rows[i].out));
	}
	/* cut: whole escapes only, and the length it needs */
	assert_int_equal(xtext("ab+", out, 4), 5);
	assert_string_equal(out, "ab");
	assert_int_equal(xtext("ab+", out, 6), 5);
	assert_string_equal(out, "ab+2B");
	assert_int_equal(xtext("x", out, 1), 1);
	assert_string_equal(out, "");
}

static struct relay_client client(void)
{
	return (struct relay_client){ .ip = "192.0.2.1", .port = 40000, .helo = "mail.example.org", .esmtp = 1,
	                              .name_status = CLIENT_NAME_OK, .name = "mail.example.org" };
}

static int lines_of(const struct relay_client *cl, unsigned attrs, char l[XCLIENT_LINES_MAX][XCLIENT_LINE_MAX + 1])
{
	int n = xclient_lines(cl, attrs, l);

	for (int i = 0; i < n; i++)
		assert_true(strlen(l[i]) <= XCLIENT_LINE_MAX);
	return n;
}

static void test_xclient_one_line(void **state)
{
	char l[XCLIENT_LINES_MAX][XCLIENT_LINE_MAX + 1];
	struct relay_client cl = client();

	assert_int_equal(lines_of(&cl, ALL, l), 1);
	assert_string_equal(l[0], "XCLIENT ADDR=192.0.2.1 PORT=40000 NAME=mail.example.org "
	                          "HELO=mail.example.org PROTO=ESMTP");
	/* IPv6, HELO, no rDNS name, SMTP, a login */
	cl.ip = "2001:db8::1";
	cl.esmtp = 0;
	cl.name_status = CLIENT_NAME_NONE;
	cl.helo = "odd helo+=";
	cl.login = "alice@example.org";
	assert_int_equal(lines_of(&cl, ALL, l), 1);
	assert_string_equal(l[0], "XCLIENT ADDR=IPV6:2001:db8::1 PORT=40000 NAME=[UNAVAILABLE] "
	                          "HELO=odd+20helo+2B+3D PROTO=SMTP LOGIN=alice@example.org");
	cl.name_status = CLIENT_NAME_TEMP;
	cl.helo = "";
	cl.login = NULL;
	assert_int_equal(lines_of(&cl, ALL, l), 1);
	assert_string_equal(l[0], "XCLIENT ADDR=IPV6:2001:db8::1 PORT=40000 NAME=[TEMPUNAVAIL] "
	                          "HELO=[UNAVAILABLE] PROTO=SMTP");
	/* a name said OK but empty is no name */
	cl.name_status = CLIENT_NAME_OK;
	cl.name = "";
	assert_int_equal(lines_of(&cl, ALL, l), 1);
	assert_non_null(strstr(l[0], " NAME=[TEMPUNAVAIL] "));
}

/* Only what the backend lists; nothing without ADDR. */
static void test_xclient_attrs(void **state)
{
	char l[XCLIENT_LINES_MAX][XCLIENT_LINE_MAX + 1];
	struct relay_client cl = client();

	cl.login = "alice";
	assert_int_equal(lines_of(&cl, XCLIENT_OFFERED | XCLIENT_ADDR, l), 1);
	assert_string_equal(l[0], "XCLIENT ADDR=192.0.2.1");
	assert_int_equal(lines_of(&cl, XCLIENT_OFFERED | XCLIENT_ADDR | XCLIENT_HELO | XCLIENT_NAME, l), 1);
	assert_string_equal(l[0], "XCLIENT ADDR=192.0.2.1 NAME=mail.example.org HELO=mail.example.org");
	assert_int_equal(xclient_lines(&cl, ALL & ~XCLIENT_ADDR, l), 0);
	assert_int_equal(xclient_lines(&cl, XCLIENT_OFFERED, l), 0);
	assert_int_equal(xclient_lines(&cl, 0, l), 0);
}

/* Long values: over several commands of at most 510 bytes, NAME ADDR
 * PORT first; a value too long for any command goes as [UNAVAILABLE]. */
static void test_xclient_long(void **state)
{
	char l[XCLIENT_LINES_MAX][XCLIENT_LINE_MAX + 1], name[254], helo[256], login[300];
	struct relay_client cl = client();
	int n;

	memset(name, 'n', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	memset(helo, '=', sizeof helo - 1); /* 255 bytes, 765 encoded */
	helo[sizeof helo - 1] = '\0';
	cl.name = name;
	cl.helo = helo;
	cl.ip = "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff";
	cl.port = 65535;
	n = lines_of(&cl, ALL, l);
	assert_int_equal(n, 1);
	assert_non_null(strstr(l[0], " HELO=[UNAVAILABLE]"));
	/* 160 bytes that encode to 480: a command of its own */
	helo[160] = '\0';
	n = lines_of(&cl, ALL, l);
	assert_int_equal(n, 2);
	assert_true(strncmp(l[0], "XCLIENT ADDR=IPV6:2001:db8:ffff:ffff:ffff:ffff:ffff:ffff PORT=65535 NAME=nnn", 76) == 0);
	assert_true(strncmp(l[1], "XCLIENT HELO=+3D+3D", 19) == 0);
	assert_non_null(strstr(l[1], " PROTO=ESMTP"));
	/* and a login as long: three commands */
	memset(login, '+', 160);
	login[160] = '\0';
	cl.login = login;
	n = lines_of(&cl, ALL, l);
	assert_int_equal(n, 3);
	assert_true(strncmp(l[2], "XCLIENT LOGIN=+2B+2B", 20) == 0);
	assert_int_equal(strlen(l[2]), strlen("XCLIENT LOGIN=") + 480);
}

static void test_helo_ok(void **state)
{
	char long_helo[257];

	assert_true(xclient_helo_ok("mail.example.org"));
	assert_true(xclient_helo_ok("[192.0.2.1]"));
	assert_true(xclient_helo_ok("odd+=name!"));
	assert_false(xclient_helo_ok(""));
	assert_false(xclient_helo_ok("two words"));
	assert_false(xclient_helo_ok("tab\there"));
	assert_false(xclient_helo_ok("caf\xc3\xa9.example"));
	assert_false(xclient_helo_ok("del\x7f"));
	memset(long_helo, 'a', 255);
	long_helo[255] = '\0';
	assert_true(xclient_helo_ok(long_helo));
	long_helo[255] = 'a';
	long_helo[256] = '\0';
	assert_false(xclient_helo_ok(long_helo));
}

static void test_xforward(void **state)
{
	char line[2048];
	struct relay_client cl = client();

	xforward_line(&cl, line, sizeof line);
	assert_string_equal(line, "XFORWARD NAME=mail.example.org ADDR=192.0.2.1 PORT=40000 PROTO=ESMTP "
	                          "HELO=mail.example.org SOURCE=REMOTE");
	cl.name_status = CLIENT_NAME_TEMP;
	cl.ip = "2001:db8::1";
	cl.helo = "a b";
	cl.esmtp = 0;
	xforward_line(&cl, line, sizeof line);
	assert_string_equal(line, "XFORWARD NAME=[UNAVAILABLE] ADDR=IPV6:2001:db8::1 PORT=40000 PROTO=SMTP "
	                          "HELO=a+20b SOURCE=REMOTE");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xtext),
		cmocka_unit_test(test_xclient_one_line),
		cmocka_unit_test(test_xclient_attrs),
		cmocka_unit_test(test_xclient_long),
		cmocka_unit_test(test_helo_ok),
		cmocka_unit_test(test_xforward),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
