/* test_smtp_parse.c - command lines, MAIL/RCPT paths, ESMTP parameters */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/lib/smtp_parse.h"

/* Report the failing row: cmocka alone would only say which line. */
#define CHECK(cond, row) \
	do { \
		if (!(cond)) \
			fail_msg("row %zu \"%s\": %s", (size_t)(row), rows[row].in, #cond); \
	} while (0)

/* ---- smtp_cmd_parse ---- */

static const struct {
	const char *in;
	int ret;
	enum smtp_verb verb;
	const char *name;
	const char *arg;
} cmd_rows[] = {
	{ "MAIL FROM:<a@b>", 0, V_MAIL, "MAIL", "FROM:<a@b>" },
	{ "mail FROM:<a@b>", 0, V_MAIL, "MAIL", "FROM:<a@b>" },
	{ "MaIl \t FROM:<a@b> \t ", 0, V_MAIL, "MAIL", "FROM:<a@b>" },
	{ "RCPT\tTO:<a@b>", 0, V_RCPT, "RCPT", "TO:<a@b>" },
	{ "EHLO a\tb  c", 0, V_EHLO, "EHLO", "a\tb  c" },
	{ "QUIT", 0, V_QUIT, "QUIT", "" },
	{ "quit   ", 0, V_QUIT, "QUIT", "" },
	{ "DATA\t", 0, V_DATA, "DATA", "" },
	{ "HELO", 0, V_HELO, "HELO", "" },
	{ "starttls", 0, V_STARTTLS, "STARTTLS", "" },
	{ "XFORWARD NAME=x", 0, V_XFORWARD, "XFORWARD", "NAME=x" },
	{ "FOO bar", 0, V_UNKNOWN, "FOO", "bar" },
	{ "MAILFROM:<a@b>", 0, V_UNKNOWN, "MAILFROM:<A@B>", "" },
	{ "MAIL: FROM:<a@b>", 0, V_UNKNOWN, "MAIL:", "FROM:<a@b>" },
	{ "HELOX a", 0, V_UNKNOWN, "HELOX", "a" },
	{ "HEL a", 0, V_UNKNOWN, "HEL", "a" },
	{ "ABCDEFGHIJKLMNO x", 0, V_UNKNOWN, "ABCDEFGHIJKLMNO", "x" },
	{ "ABCDEFGHIJKLMNOP x", 0, V_UNKNOWN, "", "x" },
	{ "STARTTLS2", 0, V_UNKNOWN, "STARTTLS2", "" },
	{ "", 0, V_UNKNOWN, "", "" },
	{ "   ", 0, V_UNKNOWN, "", "" },
	{ " MAIL FROM:<a@b>", 0, V_UNKNOWN, "", "MAIL FROM:<a@b>" },
	/* UTF-8 is not a control byte */
	{ "EHLO \xc3\xa9xample", 0, V_EHLO, "EHLO", "\xc3\xa9xample" },
	{ "\xc3\xa9HLO x", 0, V_UNKNOWN, "\xc3\xa9HLO", "x" },
	/* control bytes: -1, the split is still done */
	{ "EHLO ex\x7f", -1, V_EHLO, "EHLO", "ex\x7f" },
	{ "EHLO ex\r", -1, V_EHLO, "EHLO", "ex\r" },
	{ "EHLO a\nb", -1, V_EHLO, "EHLO", "a\nb" },
	{ "NOOP\x1b[31m", -1, V_UNKNOWN, "NOOP\x1b[31M", "" },
	{ "\x01", -1, V_UNKNOWN, "\x01", "" },
	{ "RSET \x1f", -1, V_RSET, "RSET", "\x1f" },
};

static void test_cmd_rows(void **state)
{
#define rows cmd_rows
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct smtp_cmd c;
		int ret = smtp_cmd_parse(rows[i].in, &c);
		CHECK(ret == rows[i].ret, i);
		CHECK(c.verb == rows[i].verb, i);
		CHECK(strcmp(c.name, rows[i].name) == 0, i);
		CHECK(strcmp(c.arg, rows[i].arg) == 0, i);
	}
#undef rows
}

static void test_cmd_every_verb(void **state)
{
	static const struct {
		const char *name;
		enum smtp_verb verb;
	} v[] = {
		{ "HELO", V_HELO }, { "EHLO", V_EHLO }, { "MAIL", V_MAIL }, { "RCPT", V_RCPT },
		{ "DATA", V_DATA }, { "RSET", V_RSET }, { "NOOP", V_NOOP }, { "QUIT", V_QUIT },
		{ "VRFY", V_VRFY }, { "HELP", V_HELP }, { "EXPN", V_EXPN },
		{ "STARTTLS", V_STARTTLS }, { "AUTH", V_AUTH }, { "BDAT", V_BDAT },
		{ "ETRN", V_ETRN }, { "TURN", V_TURN }, { "ATRN", V_ATRN }, { "SEND", V_SEND },
		{ "SOML", V_SOML }, { "SAML", V_SAML }, { "XCLIENT", V_XCLIENT },
		{ "XFORWARD", V_XFORWARD },
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		char line[64], lower[16];
		struct smtp_cmd c;
		size_t n = strlen(v[i].name);

		for (size_t k = 0; k <= n; k++)
			lower[k] = (char)(v[i].name[k] >= 'A' && v[i].name[k] <= 'Z' ? v[i].name[k] + 32 : v[i].name[k]);
		snprintf(line, sizeof line, "%s  x y ", lower);
		assert_int_equal(smtp_cmd_parse(line, &c), 0);
		assert_int_equal(c.verb, v[i].verb);
		assert_string_equal(c.name, v[i].name);
		assert_string_equal(c.arg, "x y");
	}
}

static void test_cmd_long_line(void **state)
{
	static char line[MOAT_CMD_LINE_MAX + 16];
	struct smtp_cmd c;

	/* an argument that fills argbuf to the last byte fits */
	memcpy(line, "EHLO ", 5);
	memset(line + 5, 'a', MOAT_CMD_LINE_MAX - 1);
	line[5 + MOAT_CMD_LINE_MAX - 1] = '\0';
	assert_int_equal(smtp_cmd_parse(line, &c), 0);
	assert_int_equal(strlen(c.arg), MOAT_CMD_LINE_MAX - 1);
	/* one more byte does not: refused, never cut */
	line[5 + MOAT_CMD_LINE_MAX - 1] = 'a';
	line[5 + MOAT_CMD_LINE_MAX] = '\0';
	assert_int_equal(smtp_cmd_parse(line, &c), -1);
	assert_int_equal(c.verb, V_EHLO);
	assert_string_equal(c.arg, "");
	/* trailing blanks do not count */
	line[5 + MOAT_CMD_LINE_MAX - 1] = ' ';
	assert_int_equal(smtp_cmd_parse(line, &c), 0);
}

/* ---- smtp_parse_mail_rcpt ---- */

enum { MAIL = 0, RCPT = PARSE_RCPT, STRICT = PARSE_STRICT };
#define SR PATH_SOURCE_ROUTE
#define QU PATH_QUOTED
#define PC PATH_PERCENT
#define BG PATH_BANG
#define LI PATH_LITERAL
#define QA PATH_QUOTED_AT
#define U8 PATH_UTF8

static const struct {
	const char *in;
	int rcpt;
	enum path_err err;
	const char *mailbox, *local, *domain; /* checked when err == PATH_OK */
	int flags;
	int nparams;
	int null;
} path_rows[] = {
#define E(in, rcpt, err) { in, rcpt, err, NULL, NULL, NULL, 0, 0, 0 }
	/* plain, case, leniency */
	{ "FROM:<a@b>", MAIL, PATH_OK, "a@b", "a", "b", 0, 0, 0 },
	{ "from:<a@b>", MAIL, PATH_OK, "a@b", "a", "b", 0, 0, 0 },
	{ "From: <a@b>", MAIL, PATH_OK, "a@b", "a", "b", 0, 0, 0 },
	{ "FROM: \t <a@b>", MAIL, PATH_OK, "a@b", "a", "b", 0, 0, 0 },
	{ "FROM:<User.Name@Mail.Example.COM>", MAIL, PATH_OK, "User.Name@Mail.Example.COM",
	  "User.Name", "mail.example.com", 0, 0, 0 },
	{ "TO:<a@b>", RCPT, PATH_OK, "a@b", "a", "b", 0, 0, 0 },
	{ "to:<a@localhost>", RCPT, PATH_OK, "a@localhost", "a", "localhost", 0, 0, 0 },
	{ "TO:<a+tag@b-c.d1>", RCPT, PATH_OK, "a+tag@b-c.d1", "a+tag", "b-c.d1", 0, 0, 0 },
	{ "TO:<xn--a@xn--bcher-kva.de>", RCPT, PATH_OK, "xn--a@xn--bcher-kva.de", "xn--a",
	  "xn--bcher-kva.de", 0, 0, 0 },
	{ "TO:<{a}|~#$&'*/=?^_`-@b>", RCPT, PATH_OK, "{a}|~#$&'*/=?^_`-@b", "{a}|~#$&'*/=?^_`-", "b", 0, 0, 0 },
	{ "TO:<0@1.2.3.4>", RCPT, PATH_OK, "0@1.2.3.4", "0", "1.2.3.4", 0, 0, 0 },
	/* null path and Postmaster */
	{ "FROM:<>", MAIL, PATH_OK, "", "", "", 0, 0, 1 },
	{ "FROM: <> SIZE=100", MAIL, PATH_OK, "", "", "", 0, 1, 1 },
	E("TO:<>", RCPT, PATH_ERR_ADDRESS),
	{ "TO:<Postmaster>", RCPT, PATH_OK, "Postmaster", "Postmaster", "", 0, 0, 0 },
	{ "TO:<POSTMASTER> NOTIFY=NEVER", RCPT, PATH_OK, "POSTMASTER", "POSTMASTER", "", 0, 1, 0 },
	{ "TO:<postmaster@Example.ORG>", RCPT, PATH_OK, "postmaster@Example.ORG", "postmaster",
	  "example.org", 0, 0, 0 },
	E("FROM:<Postmaster>", MAIL, PATH_ERR_ADDRESS),
	E("TO:<postmaste>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<postmasters>", RCPT, PATH_ERR_ADDRESS),
	/* relay tricks: accepted, flagged */
	{ "TO:<user%other@local>", RCPT, PATH_OK, "user%other@local", "user%other", "local", PC, 0, 0 },
	{ "TO:<other!user@local>", RCPT, PATH_OK, "other!user@local", "other!user", "local", BG, 0, 0 },
	{ "TO:<a!b%c@local>", RCPT, PATH_OK, "a!b%c@local", "a!b%c", "local", BG | PC, 0, 0 },
	{ "TO:<\"user@other\"@local>", RCPT, PATH_OK, "\"user@other\"@local", "\"user@other\"",
	  "local", QU | QA, 0, 0 },
	{ "TO:<\"user\\@other\"@local>", RCPT, PATH_OK, "\"user\\@other\"@local",
	  "\"user\\@other\"", "local", QU | QA, 0, 0 },
	{ "TO:<\"user%other\"@local>", RCPT, PATH_OK, "\"user%other\"@local", "\"user%other\"",
	  "local", QU | PC, 0, 0 },
	{ "TO:<\"a!b\"@local>", RCPT, PATH_OK, "\"a!b\"@local", "\"a!b\"", "local", QU | BG, 0, 0 },
	{ "TO:<@local:user@other>", RCPT, PATH_OK, "user@other", "user", "other", SR, 0, 0 },
	{ "TO:<@a.example,@b.example:user@d.example>", RCPT, PATH_OK, "user@d.example", "user",
	  "d.example", SR, 0, 0 },
	{ "TO:<@local:user%other@local>", RCPT, PATH_OK, "user%other@local", "user%other",
	  "local", SR | PC, 0, 0 },
	{ "TO:<user@[192.0.2.1]>", RCPT, PATH_OK, "user@[192.0.2.1]", "user", "[192.0.2.1]", LI, 0, 0 },
	{ "TO:<user@[IPv6:2001:DB8::1]>", RCPT, PATH_OK, "user@[IPv6:2001:DB8::1]", "user",
	  "[ipv6:2001:db8::1]", LI, 0, 0 },
	{ "TO:<user@[ipv6:::ffff:192.0.2.1]>", RCPT, PATH_OK, "user@[ipv6:::ffff:192.0.2.1]",
	  "user", "[ipv6:::ffff:192.0.2.1]", LI, 0, 0 },
	/* the root's trailing dot: dropped, so checks and backend see one address */
	{ "TO:<user@local.>", RCPT, PATH_OK, "user@local", "user", "local", 0, 0, 0 },
	{ "TO:<alice@EXAMPLE.COM.>", RCPT, PATH_OK, "alice@EXAMPLE.COM", "alice", "example.com", 0, 0, 0 },
	{ "FROM:<a@b.c.> SIZE=1", MAIL, PATH_OK, "a@b.c", "a", "b.c", 0, 1, 0 },
	{ "TO:<user@local.>", RCPT | STRICT, PATH_OK, "user@local", "user", "local", 0, 0, 0 },
	{ "TO: user@local.", RCPT, PATH_OK, "user@local", "user", "local", 0, 0, 0 },
	{ "TO:<\"a.\"@b.>", RCPT, PATH_OK, "\"a.\"@b", "\"a.\"", "b", QU, 0, 0 },
	E("TO:<user@local..>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<user@.>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<user@.local.>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<user@[192.0.2.1].>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<@a.:u@d>", RCPT, PATH_ERR_ADDRESS),
	/* relay tricks that are malformed */
	E("TO:<a@b@c>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a@@b>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<user@other@local>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<@b>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<@a:>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<@:u@d>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<@a,b:u@d>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<@a,:u@d>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<@a.:u@d>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<@a:@b:u@d>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<@[192.0.2.1]:u@d>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a:u@d>", RCPT, PATH_ERR_ADDRESS),
	/* dot-string */
	{ "TO:<a.b.c@d>", RCPT, PATH_OK, "a.b.c@d", "a.b.c", "d", 0, 0, 0 },
	E("TO:<.a@b>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a.@b>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a..b@c>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<.@b>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<@>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a b@c>", RCPT, PATH_ERR_ADDRESS),
	E("TO:< a@b>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a@b >", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a(b)@c>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a,b@c>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a;b@c>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a\\b@c>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a[b@c>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a<b@c>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<<a@b>>", RCPT, PATH_ERR_SYNTAX),
	E("TO:<a>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a@>", RCPT, PATH_ERR_ADDRESS),
	/* quoted-string */
	{ "TO:<\"a b\"@c>", RCPT, PATH_OK, "\"a b\"@c", "\"a b\"", "c", QU, 0, 0 },
	{ "TO:<\"a>b\"@c>", RCPT, PATH_OK, "\"a>b\"@c", "\"a>b\"", "c", QU, 0, 0 },
	{ "TO:<\"a\\\"b\"@c>", RCPT, PATH_OK, "\"a\\\"b\"@c", "\"a\\\"b\"", "c", QU, 0, 0 },
	{ "TO:<\"a\\\\\"@c>", RCPT, PATH_OK, "\"a\\\\\"@c", "\"a\\\\\"", "c", QU, 0, 0 },
	{ "TO:<\"\"@c>", RCPT, PATH_OK, "\"\"@c", "\"\"", "c", QU, 0, 0 },
	{ "TO:<\"a.\"@c>", RCPT, PATH_OK, "\"a.\"@c", "\"a.\"", "c", QU, 0, 0 },
	E("TO:<\"a\"b@c>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a\"b\"@c>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<\"a\">", RCPT, PATH_ERR_ADDRESS),
	E("TO:<\"a\"@>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<\"a\\\"@c>", RCPT, PATH_ERR_SYNTAX), /* the quote never closes: nor does <> */
	E("TO:<\"a>", RCPT, PATH_ERR_SYNTAX),
	/* domains */
	{ "TO:<a@B--C.Example>", RCPT, PATH_OK, "a@B--C.Example", "a", "b--c.example", 0, 0, 0 },
	E("TO:<a@-b.com>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a@b-.com>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a@b.-com>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a@b_c.com>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a@.b>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a@b..c>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a@.>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a@b c>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a@b:25>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a@[192.0.2]>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a@[192.0.2.256]>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a@[192.0.2.01]>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a@[2001:db8::1]>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a@[IPv6:192.0.2.1]>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a@[IPv6:1::2::3]>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a@[x-tag:foo]>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a@[]>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a@[192.0.2.1>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a@[192.0.2.1].com>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a@x.[192.0.2.1]>", RCPT, PATH_ERR_ADDRESS),
	/* UTF-8 (RFC 6531): accepted where the grammar allows it, flagged */
	{ "TO:<jos\xc3\xa9@example.com>", RCPT, PATH_OK, "jos\xc3\xa9@example.com", "jos\xc3\xa9",
	  "example.com", U8, 0, 0 },
	{ "TO:<a@B\xc3\xbc" "cher.DE>", RCPT, PATH_OK, "a@B\xc3\xbc" "cher.DE", "a",
	  "b\xc3\xbc" "cher.de", U8, 0, 0 },
	{ "TO:<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a>", RCPT, PATH_OK,
	  "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a",
	  "\xe7\x94\xa8\xe6\x88\xb7", "\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a", U8, 0, 0 },
	{ "TO:<\"jo s\xc3\xa9\"@b>", RCPT, PATH_OK, "\"jo s\xc3\xa9\"@b", "\"jo s\xc3\xa9\"", "b",
	  QU | U8, 0, 0 },
	{ "TO:<\xf0\x9f\x98\x80@b>", RCPT, PATH_OK, "\xf0\x9f\x98\x80@b", "\xf0\x9f\x98\x80", "b", U8, 0, 0 },
	{ "TO:<@\xc3\xa9.x:a@b>", RCPT, PATH_OK, "a@b", "a", "b", SR | U8, 0, 0 },
	E("TO:<a\xff@b>", RCPT, PATH_ERR_ADDRESS),          /* never in UTF-8 */
	E("TO:<a\xc3@b>", RCPT, PATH_ERR_ADDRESS),          /* truncated sequence */
	E("TO:<\xc0\xaf@b>", RCPT, PATH_ERR_ADDRESS),       /* overlong '/' */
	E("TO:<\xe0\x80\xaf@b>", RCPT, PATH_ERR_ADDRESS),   /* overlong, 3 bytes */
	E("TO:<\xed\xa0\x80@b>", RCPT, PATH_ERR_ADDRESS),   /* surrogate */
	E("TO:<\xf4\x90\x80\x80@b>", RCPT, PATH_ERR_ADDRESS), /* past U+10FFFF */
	E("TO:<\x80@b>", RCPT, PATH_ERR_ADDRESS),           /* lone continuation */
	E("TO:<a@b\xc3>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<\"a\xc3\"@b>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<\"a\\\xc3\xa9\"@b>", RCPT, PATH_ERR_ADDRESS), /* quoted-pair is ASCII only */
	/* control bytes */
	E("TO:<a\x01@b>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a\x7f@b>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a@b\x7f>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a\t@b>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<\"a\x01\"@b>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<\"a\\\x01\"@b>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<\"a\tb\"@c>", RCPT, PATH_ERR_ADDRESS),
	E("TO:<a@b>\x01", RCPT, PATH_ERR_SYNTAX),
	/* without angle brackets, as people type it (Postfix, strict_rfc821_envelopes = no) */
	{ "FROM: alice@example.org", MAIL, PATH_OK, "alice@example.org", "alice", "example.org", 0, 0, 0 },
	{ "TO: bob@example.com", RCPT, PATH_OK, "bob@example.com", "bob", "example.com", 0, 0, 0 },
	{ "FROM:a@b", MAIL, PATH_OK, "a@b", "a", "b", 0, 0, 0 },
	{ "from: \t a@B", MAIL, PATH_OK, "a@B", "a", "b", 0, 0, 0 },
	{ "FROM: a@b SIZE=1", MAIL, PATH_OK, "a@b", "a", "b", 0, 1, 0 },
	{ "FROM: a@b\tSIZE=1  BODY=8BITMIME", MAIL, PATH_OK, "a@b", "a", "b", 0, 2, 0 },
	{ "FROM: <a@b> SIZE=1", MAIL, PATH_OK, "a@b", "a", "b", 0, 1, 0 },
	{ "TO: postmaster", RCPT, PATH_OK, "postmaster", "postmaster", "", 0, 0, 0 },
	{ "TO: \"a b\"@c NOTIFY=NEVER", RCPT, PATH_OK, "\"a b\"@c", "\"a b\"", "c", QU, 1, 0 },
	{ "TO: a%b@c", RCPT, PATH_OK, "a%b@c", "a%b", "c", PC, 0, 0 },
	{ "TO: @a:b@c", RCPT, PATH_OK, "b@c", "b", "c", SR, 0, 0 },
	{ "TO: jos\xc3\xa9@b", RCPT, PATH_OK, "jos\xc3\xa9@b", "jos\xc3\xa9", "b", U8, 0, 0 },
	E("FROM: a@b <c@d>", MAIL, PATH_ERR_PARAM),       /* "<c@d>" is no parameter */
	E("FROM: Alice <alice@example.org>", MAIL, PATH_ERR_ADDRESS), /* a phrase: no address */
	E("FROM: a@b<c@d>", MAIL, PATH_ERR_ADDRESS),
	E("FROM: a@b>", MAIL, PATH_ERR_ADDRESS),
	E("FROM: a", MAIL, PATH_ERR_ADDRESS),
	E("FROM: @", MAIL, PATH_ERR_ADDRESS),
	E("FROM: a@", MAIL, PATH_ERR_ADDRESS),
	E("FROM: a@@b", MAIL, PATH_ERR_ADDRESS),
	E("FROM: a@b SIZE=", MAIL, PATH_ERR_PARAM),
	E("FROM: \"a b@c", MAIL, PATH_ERR_ADDRESS),      /* the quote never closes */
	E("TO: a@b", MAIL, PATH_ERR_SYNTAX),
	E("FROM: a@b", RCPT, PATH_ERR_SYNTAX),
	/* the null path is only "<>" */
	{ "FROM: <>", MAIL, PATH_OK, "", "", "", 0, 0, 1 },
	{ "FROM:<>", MAIL | STRICT, PATH_OK, "", "", "", 0, 0, 1 },
	{ "FROM: <>", MAIL | STRICT, PATH_OK, "", "", "", 0, 0, 1 },
	E("FROM: <> <>", MAIL, PATH_ERR_PARAM),
	E("FROM: \"\"", MAIL, PATH_ERR_ADDRESS),
	E("TO: <>", RCPT, PATH_ERR_ADDRESS),
	/* strict_envelopes = yes: RFC 5321's <path> only */
	{ "FROM:<a@b>", MAIL | STRICT, PATH_OK, "a@b", "a", "b", 0, 0, 0 },
	{ "FROM: <a@b> SIZE=1", MAIL | STRICT, PATH_OK, "a@b", "a", "b", 0, 1, 0 },
	{ "TO: <Postmaster>", RCPT | STRICT, PATH_OK, "Postmaster", "Postmaster", "", 0, 0, 0 },
	E("FROM: alice@example.org", MAIL | STRICT, PATH_ERR_SYNTAX),
	E("FROM:a@b", MAIL | STRICT, PATH_ERR_SYNTAX),
	E("FROM: a@b SIZE=1", MAIL | STRICT, PATH_ERR_SYNTAX),
	E("TO: bob@example.com", RCPT | STRICT, PATH_ERR_SYNTAX),
	E("TO: postmaster", RCPT | STRICT, PATH_ERR_SYNTAX),
	/* syntax around the path */
	E("", MAIL, PATH_ERR_SYNTAX),
	E("FROM", MAIL, PATH_ERR_SYNTAX),
	E("FROM:", MAIL, PATH_ERR_SYNTAX),
	E("FROM: ", MAIL, PATH_ERR_SYNTAX),
	E("FROM: \t ", MAIL, PATH_ERR_SYNTAX),
	E("TO:", RCPT, PATH_ERR_SYNTAX),
	E("FROM:", MAIL | STRICT, PATH_ERR_SYNTAX),
	E("FROM :<a@b>", MAIL, PATH_ERR_SYNTAX),
	E("FROM<a@b>", MAIL, PATH_ERR_SYNTAX),
	E("FROMX:<a@b>", MAIL, PATH_ERR_SYNTAX),
	E("FROM:<a@b", MAIL, PATH_ERR_SYNTAX),
	E("FROM:<", MAIL, PATH_ERR_SYNTAX),
	E("FROM:<a@b>x", MAIL, PATH_ERR_SYNTAX),
	E("FROM:<a@b>SIZE=1", MAIL, PATH_ERR_SYNTAX),
	E("FROM:<a@b>>", MAIL, PATH_ERR_SYNTAX),
	E("FROM:<a@b><c@d>", MAIL, PATH_ERR_SYNTAX),
	E("FROM:<>x", MAIL, PATH_ERR_SYNTAX),
	E("TO:<a@b>", MAIL, PATH_ERR_SYNTAX),
	E("FROM:<a@b>", RCPT, PATH_ERR_SYNTAX),
	E("TO <a@b>", RCPT, PATH_ERR_SYNTAX),
	/* parameters */
	{ "FROM:<a@b> SIZE=9", MAIL, PATH_OK, "a@b", "a", "b", 0, 1, 0 },
	{ "FROM:<a@b>  SIZE=9 \t BODY=8BITMIME  SMTPUTF8 ", MAIL, PATH_OK, "a@b", "a", "b", 0, 3, 0 },
	{ "FROM:<a@b>\tSIZE=9", MAIL, PATH_OK, "a@b", "a", "b", 0, 1, 0 },
	{ "FROM:<a@b> AUTH=<>", MAIL, PATH_OK, "a@b", "a", "b", 0, 1, 0 },
	{ "FROM:<a@b> ENVID=a+2Bb X-Y-Z=1 9=9", MAIL, PATH_OK, "a@b", "a", "b", 0, 3, 0 },
	{ "FROM:<a@b> X=\xc3\xa9", MAIL, PATH_OK, "a@b", "a", "b", 0, 1, 0 },
	{ "TO:<a@b> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@b", RCPT, PATH_OK, "a@b", "a", "b", 0, 2, 0 },
	E("FROM:<a@b> SIZE=", MAIL, PATH_ERR_PARAM),
	E("FROM:<a@b> =1", MAIL, PATH_ERR_PARAM),
	E("FROM:<a@b> -X=1", MAIL, PATH_ERR_PARAM),
	E("FROM:<a@b> S_Z=1", MAIL, PATH_ERR_PARAM),
	E("FROM:<a@b> SIZE=1 SIZE=2", MAIL, PATH_ERR_PARAM),
	E("FROM:<a@b> SIZE=1 size=2", MAIL, PATH_ERR_PARAM),
	E("FROM:<a@b> SMTPUTF8 smtputf8", MAIL, PATH_ERR_PARAM),
	E("FROM:<a@b> K=a=b", MAIL, PATH_ERR_PARAM),
	E("FROM:<a@b> K=a\x01", MAIL, PATH_ERR_PARAM),
	E("FROM:<a@b> K=a\x7f", MAIL, PATH_ERR_PARAM),
	E("FROM:<a@b> K=\xff", MAIL, PATH_ERR_PARAM),
	E("FROM:<a@b> K=\xc3", MAIL, PATH_ERR_PARAM),
	E("FROM:<a@b> \xc3\xa9=1", MAIL, PATH_ERR_PARAM),
	E("FROM:<a@b> K\x01", MAIL, PATH_ERR_PARAM),
	E("TO:<a@b> <c@d>", RCPT, PATH_ERR_PARAM),
	/* a bad path wins over bad parameters */
	E("FROM:<a@@b> =", MAIL, PATH_ERR_ADDRESS),
#undef E
};

static void test_path_rows(void **state)
{
#define rows path_rows
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct smtp_path p;
		struct smtp_params ps;
		enum path_err err = smtp_parse_mail_rcpt(rows[i].in, rows[i].rcpt, &p, &ps);

		CHECK(err == rows[i].err, i);
		if (err != PATH_OK) {
			/* nothing half-parsed is left behind */
			CHECK(p.mailbox[0] == '\0' && p.domain[0] == '\0' && p.flags == 0, i);
			CHECK(ps.n == 0 && ps.at == 0 && p.null == 0, i);
			continue;
		}
		CHECK(strcmp(p.mailbox, rows[i].mailbox) == 0, i);
		CHECK(strcmp(p.local, rows[i].local) == 0, i);
		CHECK(strcmp(p.domain, rows[i].domain) == 0, i);
		CHECK(p.flags == rows[i].flags, i);
		CHECK(ps.n == rows[i].nparams, i);
		CHECK(p.null == rows[i].null, i);
	}
#undef rows
}

/* ---- the domain in A-labels (IDNA2008): what DNS and the relay check use ---- */

#define RU "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80" /* пример */

static const struct {
	const char *in;
	int rcpt;
	enum path_err err;
	const char *domain, *ascii_domain;
} idna_rows[] = {
	{ "FROM:<a@example.com>", MAIL, PATH_OK, "example.com", "example.com" },
	{ "FROM:<a@Example.COM>", MAIL, PATH_OK, "example.com", "example.com" },
	{ "FROM:<\xd0\xbe\xd1\x82@" RU ".test>", MAIL, PATH_OK, RU ".test", "xn--e1afmkfd.test" },
	{ "TO:<a@\xd0\x9f\xd0\xa0\xd0\x98\xd0\x9c\xd0\x95\xd0\xa0.Test>", RCPT, PATH_OK,
	  "\xd0\x9f\xd0\xa0\xd0\x98\xd0\x9c\xd0\x95\xd0\xa0.test", "xn--e1afmkfd.test" },
	{ "TO:<a@XN--E1AFMKFD.test>", RCPT, PATH_OK, "xn--e1afmkfd.test", "xn--e1afmkfd.test" },
	{ "FROM:<a@stra\xc3\x9f" "e.de>", MAIL, PATH_OK, "stra\xc3\x9f" "e.de", "xn--strae-oqa.de" },
	/* a recipient domain IDNA2003 (UTS #46 transitional) reads as another name */
	{ "TO:<a@stra\xc3\x9f" "e.de>", RCPT, PATH_ERR_IDNA, "", "" },
	{ "TO:<a@xn--strae-oqa.de>", RCPT, PATH_OK, "xn--strae-oqa.de", "xn--strae-oqa.de" },
	{ "TO:<a@[192.0.2.1]>", RCPT, PATH_OK, "[192.0.2.1]", "[192.0.2.1]" },
	{ "TO:<Postmaster>", RCPT, PATH_OK, "", "" },
	{ "FROM:<>", MAIL, PATH_OK, "", "" },
	/* IDNA2008 refuses them: a snowman, a broken A-label, mixed directions */
	{ "FROM:<a@\xe2\x98\x83.test>", MAIL, PATH_ERR_IDNA, "", "" },
	{ "TO:<a@xn--zz.test>", RCPT, PATH_ERR_IDNA, "", "" },
	{ "TO:<a@xn--n3h.test>", RCPT, PATH_ERR_IDNA, "", "" },
	{ "TO:<a@a\xd9\x85\xd8\xab\xd8\xa7\xd9\x84.test>", RCPT, PATH_ERR_IDNA, "", "" },
	/* a U-label of 66 octets as written is no syntax error: its A-label has 51 */
	{ "TO:<a@\xd0\xb0\xd0\xb1\xd0\xb2\xd0\xb3\xd0\xb4\xd0\xb5\xd0\xb6\xd0\xb7\xd0\xb8\xd0\xb9\xd0\xba"
	  "\xd0\xbb\xd0\xbc\xd0\xbd\xd0\xbe\xd0\xbf\xd1\x80\xd1\x81\xd1\x82\xd1\x83\xd1\x84\xd1\x85\xd1\x86"
	  "\xd1\x87\xd1\x88\xd1\x89\xd1\x8a\xd1\x8b\xd1\x8c\xd1\x8d\xd1\x8e\xd1\x8f\xd0\xb0.test>", RCPT, PATH_OK,
	  "\xd0\xb0\xd0\xb1\xd0\xb2\xd0\xb3\xd0\xb4\xd0\xb5\xd0\xb6\xd0\xb7\xd0\xb8\xd0\xb9\xd0\xba"
	  "\xd0\xbb\xd0\xbc\xd0\xbd\xd0\xbe\xd0\xbf\xd1\x80\xd1\x81\xd1\x82\xd1\x83\xd1\x84\xd1\x85\xd1\x86"
	  "\xd1\x87\xd1\x88\xd1\x89\xd1\x8a\xd1\x8b\xd1\x8c\xd1\x8d\xd1\x8e\xd1\x8f\xd0\xb0.test",
	  "xn--80aacefghijklmnopqrstuvwxyz0a1a2a3a4a5a6a7a.test" }, /* as Python encodes it */
};

static void test_path_idna(void **state)
{
	for (size_t i = 0; i < sizeof idna_rows / sizeof idna_rows[0]; i++) {
		struct smtp_path p;
		struct smtp_params ps;
		enum path_err err = smtp_parse_mail_rcpt(idna_rows[i].in, idna_rows[i].rcpt, &p, &ps);

		if (err != idna_rows[i].err || strcmp(p.domain, idna_rows[i].domain) != 0 ||
		    strcmp(p.ascii_domain, idna_rows[i].ascii_domain) != 0)
			fail_msg("row %zu %s: err %d domain \"%s\" ascii \"%s\"", i, idna_rows[i].in, err, p.domain,
			         p.ascii_domain);
	}
}

/* Where the parameters start (what the session passes on as sent), and the
 * address as written (for the log line of a refusal). */
static void test_path_where(void **state)
{
	static const struct {
		const char *in;
		int how;
		const char *rest; /* after the path; NULL: refused */
		const char *text;
	} r[] = {
		{ "FROM:<a@b> SIZE=1", MAIL, " SIZE=1", "a@b" },
		{ "FROM:<\"a>b\"@c> SIZE=1", MAIL, " SIZE=1", "\"a>b\"@c" }, /* not the first '>' */
		{ "FROM: a@b SIZE=1 BODY=7BIT", MAIL, " SIZE=1 BODY=7BIT", "a@b" },
		{ "FROM: \"a b\"@c\tSIZE=1", MAIL, "\tSIZE=1", "\"a b\"@c" },
		{ "FROM:<>", MAIL, "", "" },
		{ "to: bob@example.com NOTIFY=NEVER", RCPT, " NOTIFY=NEVER", "bob@example.com" },
		{ "FROM:<a@@b> SIZE=1", MAIL, NULL, "a@@b" },
		{ "TO:<alice@EXAMPLE.COM..>", RCPT, NULL, "alice@EXAMPLE.COM.." },
		{ "FROM: a b", MAIL, NULL, "a" },
		{ "FROM:<a@b", MAIL, NULL, "a@b" },
		{ "FROM:", MAIL, NULL, "" },
		{ "alice@example.org", MAIL, NULL, "alice@example.org" },
		{ "TO:<a@b>", MAIL, NULL, "TO:<a@b>" },
	};
	char out[MOAT_PATH_MAX + 1], small[4];

	for (size_t i = 0; i < sizeof r / sizeof r[0]; i++) {
		struct smtp_path p;
		struct smtp_params ps;
		enum path_err e = smtp_parse_mail_rcpt(r[i].in, r[i].how, &p, &ps);

		assert_int_equal(e == PATH_OK, r[i].rest != NULL);
		if (r[i].rest)
			assert_string_equal(r[i].in + ps.at, r[i].rest);
		assert_string_equal(smtp_path_text(r[i].in, r[i].how, out, sizeof out), r[i].text);
	}
	assert_string_equal(smtp_path_text("FROM:<abcdef>", MAIL, small, sizeof small), "abc");
}

/* ---- limits, built rather than spelled out ---- */

/* "TO:<" pre + n times c + post ">" + tail */
static enum path_err parse_built(const char *pre, char c, size_t n, const char *post,
                                 const char *tail, int rcpt, struct smtp_path *p,
                                 struct smtp_params *ps)
{
	static char buf[8192], fill[4096];

	assert_true(n < sizeof fill);
	memset(fill, c, n);
	fill[n] = '\0';
	assert_true((size_t)snprintf(buf, sizeof buf, "%s<%s%s%s>%s", rcpt ? "TO:" : "FROM:",
	                             pre, fill, post, tail) < sizeof buf);
	return smtp_parse_mail_rcpt(buf, rcpt, p, ps);
}

/* n octets of 63-octet labels joined by dots */
static void make_domain(char *d, size_t n)
{
	memset(d, 'b', n);
	for (size_t i = 63; i < n; i += 64)
		d[i] = '.';
	d[n] = '\0';
	assert_true(d[n - 1] != '.');
}

static void test_path_limits(void **state)
{
	struct smtp_path p;
	struct smtp_params ps;
	char quoted[200], dom[300];
	size_t n = 0;

	/* local part: 64 octets */
	assert_int_equal(parse_built("", 'a', 64, "@b", "", RCPT, &p, &ps), PATH_OK);
	assert_int_equal(strlen(p.local), 64);
	assert_int_equal(parse_built("", 'a', 65, "@b", "", RCPT, &p, &ps), PATH_ERR_TOOLONG);
	/* a malformed local part is reported before a long one */
	assert_int_equal(parse_built("", '.', 65, "@b", "", RCPT, &p, &ps), PATH_ERR_ADDRESS);
	/* quoted: the limit counts the octets once unquoted; 64 escaped fills local[] */
	quoted[n++] = '"';
	for (int i = 0; i < 64; i++)
		quoted[n++] = '\\', quoted[n++] = 'x';
	quoted[n++] = '"';
	quoted[n] = '\0';
	assert_int_equal(parse_built(quoted, 'a', 0, "@b", "", RCPT, &p, &ps), PATH_OK);
	assert_int_equal(strlen(p.local), 130);
	assert_int_equal(p.flags, PATH_QUOTED);
	quoted[n - 1] = 'y';
	assert_int_equal(parse_built(quoted, 'a', 0, "\"@b", "", RCPT, &p, &ps), PATH_ERR_TOOLONG);
	assert_int_equal(parse_built("\"", 'a', 64, "\"@b", "", RCPT, &p, &ps), PATH_OK);
	assert_int_equal(parse_built("\"", 'a', 65, "\"@b", "", RCPT, &p, &ps), PATH_ERR_TOOLONG);
	/* label: 63 octets */
	assert_int_equal(parse_built("a@", 'b', 63, ".c", "", RCPT, &p, &ps), PATH_OK);
	assert_int_equal(parse_built("a@", 'b', 64, ".c", "", RCPT, &p, &ps), PATH_ERR_ADDRESS);
	assert_int_equal(parse_built("a@c.", 'b', 64, "", "", RCPT, &p, &ps), PATH_ERR_ADDRESS);
	/* path: 256 octets with its <>, so 254 between them */
	make_domain(dom, 252);
	assert_int_equal(parse_built("a@", 'x', 0, dom, "", RCPT, &p, &ps), PATH_OK);
	assert_int_equal(strlen(p.mailbox), 254);
	assert_int_equal(strlen(p.domain), 252);
	assert_int_equal(parse_built("ab@", 'x', 0, dom, "", RCPT, &p, &ps), PATH_ERR_TOOLONG);
	/* the same limits without the brackets (counted as if they were there) */
	{
		char bare[600];

		snprintf(bare, sizeof bare, "TO: a@%s NOTIFY=NEVER", dom);
		assert_int_equal(smtp_parse_mail_rcpt(bare, RCPT, &p, &ps), PATH_OK);
		assert_int_equal(strlen(p.mailbox), 254);
		snprintf(bare, sizeof bare, "TO: ab@%s", dom);
		assert_int_equal(smtp_parse_mail_rcpt(bare, RCPT, &p, &ps), PATH_ERR_TOOLONG);
		/* a trailing dot counts in the path as sent, not in the domain */
		snprintf(bare, sizeof bare, "TO:<a@%s.>", dom);
		assert_int_equal(smtp_parse_mail_rcpt(bare, RCPT, &p, &ps), PATH_ERR_TOOLONG);
		dom[251] = '\0';
		snprintf(bare, sizeof bare, "TO:<a@%s.>", dom);
		assert_int_equal(smtp_parse_mail_rcpt(bare, RCPT, &p, &ps), PATH_OK);
		assert_int_equal(strlen(p.domain), 251);
	}
	/* the source route counts towards the path */
	assert_int_equal(parse_built("@", 'r', 60, ":a@b", "", RCPT, &p, &ps), PATH_OK);
	assert_int_equal(parse_built("@", 'r', 250, ":a@b", "", RCPT, &p, &ps), PATH_ERR_TOOLONG);
	/* a long run of junk is too long before it is malformed */
	assert_int_equal(parse_built("", '@', 3000, "", "", RCPT, &p, &ps), PATH_ERR_TOOLONG);
}

static void test_param_limits(void **state)
{
	struct smtp_path p;
	struct smtp_params ps;
	char tail[1024];
	size_t n = 0;

	/* 16 parameters, not 17 */
	for (int i = 0; i < SMTP_PARAMS_MAX; i++)
		n += (size_t)snprintf(tail + n, sizeof tail - n, " K%d=%d", i, i);
	assert_int_equal(parse_built("a@b", 'x', 0, "", tail, MAIL, &p, &ps), PATH_OK);
	assert_int_equal(ps.n, SMTP_PARAMS_MAX);
	assert_string_equal(ps.p[15].key, "K15");
	snprintf(tail + n, sizeof tail - n, " K99");
	assert_int_equal(parse_built("a@b", 'x', 0, "", tail, MAIL, &p, &ps), PATH_ERR_PARAM);
	/* key: 31 characters */
	memset(tail, 'K', 32);
	tail[0] = ' ';
	tail[32] = '\0';
	assert_int_equal(parse_built("a@b", 'x', 0, "", tail, MAIL, &p, &ps), PATH_OK);
	assert_int_equal(strlen(ps.p[0].key), 31);
	assert_false(ps.p[0].has_value);
	tail[32] = 'K';
	tail[33] = '\0';
	assert_int_equal(parse_built("a@b", 'x', 0, "", tail, MAIL, &p, &ps), PATH_ERR_PARAM);
	/* value: 511 characters */
	memcpy(tail, " V=", 3);
	memset(tail + 3, 'v', 511);
	tail[3 + 511] = '\0';
	assert_int_equal(parse_built("a@b", 'x', 0, "", tail, MAIL, &p, &ps), PATH_OK);
	assert_int_equal(strlen(ps.p[0].value), 511);
	tail[3 + 511] = 'v';
	tail[3 + 512] = '\0';
	assert_int_equal(parse_built("a@b", 'x', 0, "", tail, MAIL, &p, &ps), PATH_ERR_PARAM);
}

static void test_params_get(void **state)
{
	struct smtp_path p;
	struct smtp_params ps;
	const struct smtp_param *sp;

	assert_int_equal(smtp_parse_mail_rcpt("FROM:<a@b> size=1000 Body=8BITMIME SMTPUTF8",
	                                      0, &p, &ps), PATH_OK);
	assert_int_equal(ps.n, 3);
	sp = smtp_param_get(&ps, "SIZE");
	assert_non_null(sp);
	assert_string_equal(sp->key, "SIZE");
	assert_string_equal(sp->value, "1000");
	assert_true(sp->has_value);
	sp = smtp_param_get(&ps, "BODY");
	assert_non_null(sp);
	assert_string_equal(sp->value, "8BITMIME");
	sp = smtp_param_get(&ps, "smtputf8");
	assert_non_null(sp);
	assert_false(sp->has_value);
	assert_string_equal(sp->value, "");
	assert_null(smtp_param_get(&ps, "AUTH"));
	assert_null(smtp_param_get(&ps, "SIZ"));
	assert_null(smtp_param_get(&ps, "SIZEX"));
	assert_null(smtp_param_get(NULL, "SIZE"));
	/* params may be left out by a caller that has no use for them */
	assert_int_equal(smtp_parse_mail_rcpt("FROM:<a@b> SIZE=1", 0, &p, NULL), PATH_OK);
	assert_int_equal(smtp_parse_mail_rcpt("FROM:<a@b> SIZE=", 0, &p, NULL), PATH_ERR_PARAM);
	/* a failed parse empties a reused struct */
	assert_int_equal(smtp_parse_mail_rcpt("FROM:<a@b> SIZE=1 SIZE=1", 0, &p, &ps),
	                 PATH_ERR_PARAM);
	assert_int_equal(ps.n, 0);
	assert_null(smtp_param_get(&ps, "SIZE"));
}

/* ---- parse_ulong ---- */

/* ULONG_MAX, spelt out */
#define ULMAX (~0UL)

static void test_parse_ulong(void **state)
{
	static const struct {
		const char *in;
		unsigned long max;
		int ret;
		unsigned long val;
	} rows[] = {
		{ "0", 10, 0, 0 },
		{ "123", 1000, 0, 123 },
		{ "007", 10, 0, 7 },
		{ "10", 10, 0, 10 },
		{ "11", 10, -1, 0 },
		{ "100", 10, -1, 0 },
		{ "0", 0, 0, 0 },
		{ "1", 0, -1, 0 },
		{ "18446744073709551615", ULMAX, 0, ULMAX },
		{ "18446744073709551616", ULMAX, -1, 0 },
		{ "99999999999999999999999", ULMAX, -1, 0 },
		{ "4294967295", 4294967295UL, 0, 4294967295UL },
		{ "4294967296", 4294967295UL, -1, 0 },
		{ "", 10, -1, 0 },
		{ "-1", 10, -1, 0 },
		{ "+1", 10, -1, 0 },
		{ " 1", 10, -1, 0 },
		{ "1 ", 10, -1, 0 },
		{ "1a", 10, -1, 0 },
		{ "0x1", 10, -1, 0 },
		{ "1.0", 10, -1, 0 },
		{ "\xd9\xa1", 10, -1, 0 }, /* Arabic-Indic one */
	};
	unsigned long v;

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		v = 12345;
		CHECK(parse_ulong(rows[i].in, rows[i].max, &v) == rows[i].ret, i);
		CHECK(v == (rows[i].ret == 0 ? rows[i].val : 12345), i);
	}
	assert_int_equal(parse_ulong(NULL, 10, &v), -1);
	assert_int_equal(parse_ulong("5", 10, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cmd_rows),
		cmocka_unit_test(test_cmd_every_verb),
		cmocka_unit_test(test_cmd_long_line),
		cmocka_unit_test(test_path_rows),
		cmocka_unit_test(test_path_idna),
		cmocka_unit_test(test_path_where),
		cmocka_unit_test(test_path_limits),
		cmocka_unit_test(test_param_limits),
		cmocka_unit_test(test_params_get),
		cmocka_unit_test(test_parse_ulong),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
