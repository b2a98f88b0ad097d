/* test_smtp_reply.c - backend replies (multi-line, bounds) and EHLO capabilities */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/smtp_reply.h"

#define MORE REPLY_MORE
#define DONE REPLY_DONE
#define BAD REPLY_BAD
#define MAXL 8

/* ---- smtp_reply_add_line: sequences of lines ---- */

static const struct {
	const char *lines[MAXL]; /* NULL-terminated */
	enum reply_step steps[MAXL];
	int code;                /* after the last line */
	int nlines;
	const char *text;
} seq_rows[] = {
	{ { "250 OK" }, { DONE }, 250, 1, "250 OK\r\n" },
	{ { "250" }, { DONE }, 250, 1, "250\r\n" },
	{ { "250 " }, { DONE }, 250, 1, "250 \r\n" },
	{ { "200 x" }, { DONE }, 200, 1, "200 x\r\n" },
	{ { "599 x" }, { DONE }, 599, 1, "599 x\r\n" },
	{ { "354 End data with <CR><LF>.<CR><LF>" }, { DONE }, 354, 1,
	  "354 End data with <CR><LF>.<CR><LF>\r\n" },
	{ { "250-a", "250-b", "250 c" }, { MORE, MORE, DONE }, 250, 3, "250-a\r\n250-b\r\n250 c\r\n" },
	{ { "250-", "250 " }, { MORE, DONE }, 250, 2, "250-\r\n250 \r\n" },
	{ { "550-5.1.1 no", "550 5.1.1 such user" }, { MORE, DONE }, 550, 2,
	  "550-5.1.1 no\r\n550 5.1.1 such user\r\n" },
	{ { "250-a", "250" }, { MORE, DONE }, 250, 2, "250-a\r\n250\r\n" },
	/* the code may not change between lines: the bad line is not kept */
	{ { "250-a", "251 b" }, { MORE, BAD }, 250, 1, "250-a\r\n" },
	{ { "250-a", "550 b" }, { MORE, BAD }, 250, 1, "250-a\r\n" },
	{ { "250-a", "25" }, { MORE, BAD }, 250, 1, "250-a\r\n" },
	{ { "250-a", "garbage", "250 ok" }, { MORE, BAD, DONE }, 250, 2, "250-a\r\n250 ok\r\n" },
	/* malformed first lines */
	{ { "" }, { BAD }, 0, 0, "" },
	{ { "2" }, { BAD }, 0, 0, "" },
	{ { "25" }, { BAD }, 0, 0, "" },
	{ { "2500" }, { BAD }, 0, 0, "" },
	{ { "250x" }, { BAD }, 0, 0, "" },
	{ { "250\tOK" }, { BAD }, 0, 0, "" },
	{ { "250_OK" }, { BAD }, 0, 0, "" },
	{ { "25a OK" }, { BAD }, 0, 0, "" },
	{ { "a50 OK" }, { BAD }, 0, 0, "" },
	{ { " 250 OK" }, { BAD }, 0, 0, "" },
	{ { "-250 OK" }, { BAD }, 0, 0, "" },
	{ { "+25 OK" }, { BAD }, 0, 0, "" },
	{ { "199 x" }, { BAD }, 0, 0, "" },
	{ { "100 x" }, { BAD }, 0, 0, "" },
	{ { "099 x" }, { BAD }, 0, 0, "" },
	{ { "600 x" }, { BAD }, 0, 0, "" },
	{ { "999 x" }, { BAD }, 0, 0, "" },
	{ { "\xb2" "50 x" }, { BAD }, 0, 0, "" },
	/* a CR inside a line could forge a line for the client */
	{ { "250 a\rb" }, { BAD }, 0, 0, "" },
	{ { "250-a", "250 b\r" }, { MORE, BAD }, 250, 1, "250-a\r\n" },
};

static void test_sequences(void **state)
{
	for (size_t i = 0; i < sizeof seq_rows / sizeof seq_rows[0]; i++) {
		struct smtp_reply *r = malloc(sizeof *r);

		assert_non_null(r);
		memset(r, 0x5a, sizeof *r);
		smtp_reply_init(r);
		assert_int_equal(r->len, 0);
		assert_int_equal(r->nlines, 0);
		assert_string_equal(r->text, "");
		for (size_t k = 0; k < MAXL && seq_rows[i].lines[k]; k++) {
			const char *l = seq_rows[i].lines[k];
			enum reply_step st = smtp_reply_add_line(r, l, strlen(l));

			if (st != seq_rows[i].steps[k])
				fail_msg("row %zu line %zu \"%s\": step %d, want %d", i, k, l, st,
				         seq_rows[i].steps[k]);
		}
		if (seq_rows[i].nlines > 0 && r->code != seq_rows[i].code)
			fail_msg("row %zu: code %d, want %d", i, r->code, seq_rows[i].code);
		if (r->nlines != seq_rows[i].nlines || r->len != strlen(seq_rows[i].text) ||
		    strcmp(r->text, seq_rows[i].text) != 0)
			fail_msg("row %zu: nlines %d len %zu text \"%s\"", i, r->nlines, r->len, r->text);
		free(r);
	}
}

/* The length is taken from len, not from a NUL: a NUL inside is refused and
 * bytes past len are never read or copied. */
static void test_len_not_nul(void **state)
{
	struct smtp_reply r;

	smtp_reply_init(&r);
	assert_int_equal(smtp_reply_add_line(&r, "250 a\0b", 7), REPLY_BAD);
	assert_int_equal(r.len, 0);
	assert_int_equal(smtp_reply_add_line(&r, "250 OKjunk", 6), REPLY_DONE);
	assert_string_equal(r.text, "250 OK\r\n");
	assert_int_equal(r.len, 8);

	/* exactly len bytes, no terminating NUL in the source */
	char *exact = malloc(6);
	assert_non_null(exact);
	memcpy(exact, "221 by", 6);
	smtp_reply_init(&r);
	assert_int_equal(smtp_reply_add_line(&r, exact, 6), REPLY_DONE);
	assert_string_equal(r.text, "221 by\r\n");
	free(exact);

	/* "ddd-" with the dash as the last byte given */
	smtp_reply_init(&r);
	assert_int_equal(smtp_reply_add_line(&r, "250-xyz", 4), REPLY_MORE);
	assert_string_equal(r.text, "250-\r\n");
	/* 3 bytes given of a longer buffer: just the code */
	smtp_reply_init(&r);
	assert_int_equal(smtp_reply_add_line(&r, "250-xyz", 3), REPLY_DONE);
	assert_string_equal(r.text, "250\r\n");
}

/* At most MOAT_BACKEND_REPLY_LINES lines. */
static void test_line_bound(void **state)
{
	static const int counts[] = { 1, 2, MOAT_BACKEND_REPLY_LINES - 1, MOAT_BACKEND_REPLY_LINES,
	                              MOAT_BACKEND_REPLY_LINES + 1, MOAT_BACKEND_REPLY_LINES + 10 };

	for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
		struct smtp_reply r;
		int n = counts[c], ok = n <= MOAT_BACKEND_REPLY_LINES;
		enum reply_step st = REPLY_BAD;

		smtp_reply_init(&r);
		for (int i = 0; i < n; i++) {
			st = smtp_reply_add_line(&r, i == n - 1 ? "250 x" : "250-x", 5);
			if (i < MOAT_BACKEND_REPLY_LINES && i < n - 1 && st != REPLY_MORE)
				fail_msg("%d lines: line %d gave %d", n, i, st);
			if (i >= MOAT_BACKEND_REPLY_LINES && st != REPLY_BAD)
				fail_msg("%d lines: line %d over the bound gave %d", n, i, st);
		}
		assert_int_equal(st, ok ? REPLY_DONE : REPLY_BAD);
		assert_int_equal(r.nlines, ok ? n : MOAT_BACKEND_REPLY_LINES);
		assert_int_equal(r.len, (size_t)r.nlines * 7);
		assert_int_equal(strlen(r.text), r.len);
	}
}

/* All lines together, CRLFs and the NUL included, fit MOAT_BACKEND_REPLY_MAX. */
static void test_size_bound(void **state)
{
	static char line[MOAT_BACKEND_REPLY_MAX + 16];
	static const struct {
		size_t first;  /* length of a first "250-" line, 0 = none */
		size_t last;   /* length of the last "250 " line */
		enum reply_step want;
	} rows[] = {
		{ 0, MOAT_BACKEND_REPLY_MAX - 3, DONE },       /* len + CRLF + NUL == MAX */
		{ 0, MOAT_BACKEND_REPLY_MAX - 2, BAD },
		{ 0, MOAT_BACKEND_REPLY_MAX, BAD },
		{ 0, MOAT_BACKEND_REPLY_MAX + 10, BAD },
		{ 100, MOAT_BACKEND_REPLY_MAX - 3 - 102, DONE },
		{ 100, MOAT_BACKEND_REPLY_MAX - 3 - 101, BAD },
	};

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct smtp_reply *r = malloc(sizeof *r);
		size_t before;

		assert_non_null(r);
		smtp_reply_init(r);
		if (rows[i].first) {
			memset(line, 'a', rows[i].first);
			memcpy(line, "250-", 4);
			assert_int_equal(smtp_reply_add_line(r, line, rows[i].first), REPLY_MORE);
		}
		before = r->len;
		memset(line, 'b', rows[i].last);
		memcpy(line, "250 ", 4);
		if (smtp_reply_add_line(r, line, rows[i].last) != rows[i].want)
			fail_msg("row %zu: want %d", i, rows[i].want);
		if (rows[i].want == DONE) {
			assert_int_equal(r->len, before + rows[i].last + 2);
			assert_true(r->len < sizeof r->text);
			assert_int_equal(r->text[r->len], '\0');
			assert_memory_equal(r->text + r->len - 2, "\r\n", 2);
		} else {
			assert_int_equal(r->len, before); /* nothing half-copied */
		}
		free(r);
	}
}

/* ---- ehlo_caps_parse ---- */

/* Rows leave the trailing fields (AUTH's) out on purpose. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

struct caps_want {
	int pipelining, eightbit, smtputf8, dsn, xforward, enhanced;
	unsigned long size;
	int starttls;
	unsigned xclient;
	int auth_plain, auth_login;
};

static const struct {
	const char *lines[MAXL];
	struct caps_want want;
} caps_rows[] = {
	{ { "250-mx.example.com Hello", "250-PIPELINING", "250-SIZE 10240000", "250-8BITMIME",
	    "250-SMTPUTF8", "250-DSN", "250-ENHANCEDSTATUSCODES", "250 XFORWARD NAME ADDR PROTO HELO" },
	  { 1, 1, 1, 1, 1, 1, 10240000, 0, 0 } },
	{ { "250 mx.example.com" }, { 0 } },
	{ { "250" }, { 0 } },
	/* the first line is the greeting, never a capability */
	{ { "250-PIPELINING", "250 8BITMIME" }, { 0, 1, 0, 0, 0, 0, 0, 0, 0 } },
	{ { "250 SIZE 1000" }, { 0 } },
	/* keywords are case-insensitive */
	{ { "250-mx", "250-pipelining", "250-Size 52428800", "250 8bitmime" }, { 1, 1, 0, 0, 0, 0, 52428800, 0, 0 } },
	{ { "250-mx", "250-dsn", "250-SmtpUtf8", "250-enhancedStatusCodes", "250 xforward" },
	  { 0, 0, 1, 1, 1, 1, 0, 0, 0 } },
	/* whole keywords only */
	{ { "250-mx", "250-PIPELININGX", "250-XPIPELINING", "250-8BITMIMEX", "250-DSNX",
	    "250-SIZEX 5", "250-SMTPUTF", "250 XFORWARDED" },
	  { 0 } },
	{ { "250-mx", "250 8BITMIME=1" }, { 0 } },
	/* parameters after a space are allowed */
	{ { "250-mx", "250-PIPELINING extra", "250 DSN x" }, { 1, 0, 0, 1, 0, 0, 0, 0, 0 } },
	/* SIZE without a number, or with junk, means no announced limit */
	{ { "250-mx", "250 SIZE" }, { 0 } },
	{ { "250-mx", "250 SIZE abc" }, { 0 } },
	{ { "250-mx", "250 SIZE 0" }, { 0 } },
	{ { "250-mx", "250 SIZE 4096" }, { .size = 4096 } },
	/* other extensions are ignored; empty lines are harmless */
	{ { "250-mx", "250-", "250-AUTH PLAIN LOGIN", "250-CHUNKING", "250 ETRN" }, { .auth_plain = 1, .auth_login = 1 } },
	{ { "250-mx", "250-", "250-AUTH PLAIN LOGIN", "250-STARTTLS", "250-CHUNKING", "250 ETRN" },
	  { .starttls = 1, .auth_plain = 1, .auth_login = 1 } },
	{ { "250-mx", "250-starttls", "250 STARTTLSX" }, { .starttls = 1 } },
	/* XCLIENT and the attributes it lists (Postfix 3.7's list) */
	{ { "250-mx", "250 XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT" },
	  { .xclient = XCLIENT_OFFERED | XCLIENT_NAME | XCLIENT_ADDR | XCLIENT_PROTO | XCLIENT_HELO |
	               XCLIENT_PORT | XCLIENT_LOGIN } },
	{ { "250-mx", "250 xclient addr  name" }, { .xclient = XCLIENT_OFFERED | XCLIENT_ADDR | XCLIENT_NAME } },
	{ { "250-mx", "250 XCLIENT" }, { .xclient = XCLIENT_OFFERED } },
	{ { "250-mx", "250 XCLIENT ADDRX NAM HELO=" }, { .xclient = XCLIENT_OFFERED } },
	{ { "250-mx", "250 XCLIENTS ADDR" }, { 0 } },
	/* AUTH: the mechanisms moat passes on (RFC 4954), and the old "AUTH=" form */
	{ { "250-mx", "250-AUTH=LOGIN", "250 auth cram-md5 plain" }, { .auth_plain = 1, .auth_login = 1 } },
	{ { "250-mx", "250 AUTH CRAM-MD5 DIGEST-MD5 XOAUTH2" }, { 0 } },
	{ { "250-mx", "250 AUTH PLAINX LOGINS  LOGI" }, { 0 } },
	{ { "250-mx", "250 AUTH" }, { 0 } },
	{ { "250-mx", "250 AUTHX PLAIN" }, { 0 } },
	{ { "250-mx", "250-", "250 DSN" }, { .dsn = 1 } },
};

static void test_caps_rows(void **state)
{
	for (size_t i = 0; i < sizeof caps_rows / sizeof caps_rows[0]; i++) {
		struct smtp_reply r;
		struct ehlo_caps c;
		const struct caps_want *w = &caps_rows[i].want;
		enum reply_step st = REPLY_BAD;

		smtp_reply_init(&r);
		for (size_t k = 0; k < MAXL && caps_rows[i].lines[k]; k++) {
			st = smtp_reply_add_line(&r, caps_rows[i].lines[k], strlen(caps_rows[i].lines[k]));
			if (st == REPLY_BAD)
				break;
		}
		if (st != REPLY_DONE)
			fail_msg("row %zu: the reply did not parse (%d)", i, st);
		memset(&c, 0x77, sizeof c); /* parse starts from nothing */
		ehlo_caps_parse(&r, &c);
		if (c.pipelining != w->pipelining || c.eightbit != w->eightbit ||
		    c.smtputf8 != w->smtputf8 || c.dsn != w->dsn || c.xforward != w->xforward ||
		    c.enhanced != w->enhanced || c.size != w->size || c.starttls != w->starttls ||
		    c.xclient != w->xclient || c.auth_plain != w->auth_plain || c.auth_login != w->auth_login)
			fail_msg("row %zu (%s): got pipe %d 8bit %d utf8 %d dsn %d xfwd %d enh %d size %lu "
			         "starttls %d xclient %#x plain %d login %d", i, r.text, c.pipelining, c.eightbit, c.smtputf8,
			         c.dsn, c.xforward, c.enhanced, c.size, c.starttls, c.xclient, c.auth_plain, c.auth_login);
	}
}

/* An empty (initialised) reply has no capabilities. */
static void test_caps_empty(void **state)
{
	struct smtp_reply r;
	struct ehlo_caps c;

	smtp_reply_init(&r);
	memset(&c, 0xff, sizeof c);
	ehlo_caps_parse(&r, &c);
	assert_int_equal(c.pipelining | c.eightbit | c.smtputf8 | c.dsn | c.xforward | c.enhanced |
	                 c.starttls, 0);
	assert_int_equal(c.xclient, 0);
	assert_int_equal(c.size, 0);
}

/* A full-size reply: the last capability still counts. */
static void test_caps_full_reply(void **state)
{
	struct smtp_reply r;
	struct ehlo_caps c;
	char line[200];
	int i;

	smtp_reply_init(&r);
	assert_int_equal(smtp_reply_add_line(&r, "250-mx", 6), REPLY_MORE);
	for (i = 1; i < MOAT_BACKEND_REPLY_LINES - 1; i++) {
		memset(line, 'x', sizeof line);
		memcpy(line, "250-X-FILLER", 12);
		assert_int_equal(smtp_reply_add_line(&r, line, 100), REPLY_MORE);
	}
	assert_int_equal(smtp_reply_add_line(&r, "250 SIZE 777", 12), REPLY_DONE);
	ehlo_caps_parse(&r, &c);
	assert_int_equal(c.size, 777);
	assert_int_equal(c.pipelining, 0);
}

/* The queue id of an end-of-data reply, by server. */
static void test_queue_id_rows(void **state)
{
	static const struct {
		const char *text;
		const char *id; /* "" none */
	} rows[] = {
		/* Postfix: short (hex) and long queue ids */
		{ "250 2.0.0 Ok: queued as 3F1A2B4C5D\r\n", "3F1A2B4C5D" },
		{ "250 2.0.0 Ok: queued as 4ZXyz12wQbz9kLm\r\n", "4ZXyz12wQbz9kLm" },
		{ "250 Ok: queued as 4ZXyz12wQbz9kLm\r\n", "4ZXyz12wQbz9kLm" },
		{ "250 2.0.0 Ok: QUEUED AS ABC123\r\n", "ABC123" },
		{ "250 2.0.0 Ok: queued as ABC123.\r\n", "ABC123" },
		/* Exim */
		{ "250 OK id=1tAbCd-000123-AB\r\n", "1tAbCd-000123-AB" },
		{ "250 OK id=1tAbCd-000Lx2-0Q\r\n", "1tAbCd-000Lx2-0Q" },
		/* Sendmail, OpenSMTPD */
		{ "250 2.0.0 u3PFxx012345 Message accepted for delivery\r\n", "u3PFxx012345" },
		{ "250 2.0.0: 5d2f9a22 Message accepted for delivery\r\n", "5d2f9a22" },
		{ "250 2.0.0 Message accepted for delivery\r\n", "" },
		{ "250 Message accepted for delivery\r\n", "" },
		{ "250 2.0.0: Message accepted for delivery\r\n", "" },
		/* in a later line of a multi-line reply */
		{ "250-2.0.0 Ok\r\n250 2.0.0 queued as AB12\r\n", "AB12" },
		/* none */
		{ "250 2.0.0 Ok\r\n", "" },
		{ "250 OK\r\n", "" },
		{ "250 2.0.0 Ok: queued as \r\n", "" },
		{ "250 2.0.0 Ok: queued as\r\n", "" },
		{ "250 msgid=abc\r\n", "" },
		{ "250 OK id=\r\n", "" },
		{ "", "" },
		/* not an id: other characters stop it; too long is none */
		{ "250 queued as AB<script>\r\n", "AB" },
		{ "250 queued as \xc3\xa9t\xc3\xa9\r\n", "" },
		{ "250 queued as 12345678901234567890123456789012345678901234567890123456789012345\r\n", "" },
		{ "250 queued as 1234567890123456789012345678901234567890123456789012345678901234\r\n",
		  "1234567890123456789012345678901234567890123456789012345678901234" },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char id[MOAT_QUEUE_ID_MAX + 1] = "x";
		int r = reply_queue_id(rows[i].text, id, sizeof id);

		if (r != (rows[i].id[0] != '\0') || strcmp(id, rows[i].id) != 0)
			fail_msg("row %zu %s: got %d \"%s\", want \"%s\"", i, rows[i].text, r, id, rows[i].id);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sequences),
		cmocka_unit_test(test_len_not_nul),
		cmocka_unit_test(test_line_bound),
		cmocka_unit_test(test_size_bound),
		cmocka_unit_test(test_caps_rows),
		cmocka_unit_test(test_caps_empty),
		cmocka_unit_test(test_caps_full_reply),
		cmocka_unit_test(test_queue_id_rows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
