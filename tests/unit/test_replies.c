/* test_replies.c - the reply table and reply_format (%h, %s, %%, CRLF, truncation) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/lib/replies.h"

#define GUARD 64
#define HOST "mx.example.org"

/* Whole replies (docs/SPEC-replies.txt), hostname HOST. */
static const struct {
	enum reply_id id;
	const char *arg;
	const char *out;
} rows[] = {
	{ R_BANNER, NULL, "220 " HOST " ESMTP moat\r\n" },
	{ R_HELO_OK, NULL, "250 " HOST "\r\n" },
	{ R_EHLO_OK, NULL, "250 " HOST "\r\n" },
	{ R_MAIL_OK, NULL, "250 2.1.0 OK\r\n" },
	{ R_PREGREET, NULL, "554 5.5.1 Error: SMTP protocol violation\r\n" },
	{ R_NUL, NULL, "550 5.6.0 Message contains NUL characters\r\n" },
	{ R_FORGED_AUTHRES, NULL, "550 5.7.1 Message has too many Authentication-Results fields claiming " HOST "\r\n" },
	{ R_DONE, NULL, "250 2.0.0 OK\r\n" },
	{ R_BYE, NULL, "221 2.0.0 Bye\r\n" },
	{ R_VRFY, NULL, "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n" },
	{ R_DATA_GO, NULL, "354 End data with <CR><LF>.<CR><LF>\r\n" },
	{ R_HELO_SYNTAX, NULL, "501 5.5.4 Syntax: HELO hostname\r\n" },
	{ R_EHLO_SYNTAX, NULL, "501 5.5.4 Syntax: EHLO hostname\r\n" },
	{ R_NEED_HELO, NULL, "503 5.5.1 Error: send HELO/EHLO first\r\n" },
	{ R_NESTED_MAIL, NULL, "503 5.5.1 Error: nested MAIL command\r\n" },
	{ R_NEED_MAIL, NULL, "503 5.5.1 Error: need MAIL command\r\n" },
	{ R_NEED_RCPT, NULL, "503 5.5.1 Error: need RCPT command\r\n" },
	{ R_NO_VALID_RCPT, NULL, "554 5.5.1 Error: no valid recipients\r\n" },
	{ R_MAIL_SYNTAX, NULL, "501 5.5.4 Syntax: MAIL FROM:<address>\r\n" },
	{ R_RCPT_SYNTAX, NULL, "501 5.5.4 Syntax: RCPT TO:<address>\r\n" },
	{ R_BAD_SENDER, NULL, "501 5.1.7 Bad sender address syntax\r\n" },
	{ R_BAD_RCPT, NULL, "501 5.1.3 Bad recipient address syntax\r\n" },
	{ R_PARAM, "FOO", "555 5.5.4 Unsupported parameter: FOO\r\n" },
	{ R_PARAM, "X=%h%s%%", "555 5.5.4 Unsupported parameter: X=%h%s%%\r\n" }, /* arg is not expanded */
	{ R_BAD_PARAM_VALUE, "SIZE=x", "501 5.5.4 Bad parameter value: SIZE=x\r\n" },
	{ R_NO_ARGS, "DATA", "501 5.5.4 Syntax: DATA takes no arguments\r\n" },
	{ R_NO_ARGS, "", "501 5.5.4 Syntax:  takes no arguments\r\n" },
	{ R_SIZE, NULL, "552 5.3.4 Message size exceeds fixed limit\r\n" },
	{ R_TOO_MANY_RCPT, NULL, "452 4.5.3 Error: too many recipients\r\n" },
	{ R_UNKNOWN_CMD, NULL, "500 5.5.2 Error: command not recognized\r\n" },
	{ R_NOT_IMPL, NULL, "502 5.5.1 Error: command not implemented\r\n" },
	{ R_LINE_TOO_LONG, NULL, "500 5.5.2 Error: line too long\r\n" },
	{ R_TOO_MANY_CONN, NULL, "421 4.7.0 " HOST " Error: too many connections\r\n" },
	{ R_TOO_MANY_CONN_IP, NULL, "421 4.7.0 " HOST " Error: too many connections from your address\r\n" },
	{ R_TIMEOUT, NULL, "421 4.4.2 " HOST " Error: timeout exceeded\r\n" },
	{ R_TOO_MANY_ERRORS, NULL, "421 4.7.0 " HOST " Error: too many errors\r\n" },
	{ R_BACKEND_DOWN, NULL, "451 4.4.1 Error: backend unavailable, try again later\r\n" },
	{ R_BACKEND_LOST, NULL, "451 4.4.2 Error: backend connection lost, try again later\r\n" },
	{ R_SHUTDOWN, NULL, "421 4.3.2 " HOST " Service shutting down\r\n" },
	{ R_HELP, NULL, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\r\n" },
	{ R_BAD_CHARS, NULL, "500 5.5.2 Error: bad characters in command\r\n" },
	{ R_SMTPUTF8_NEEDED, NULL, "553 5.6.7 Error: non-ASCII address needs SMTPUTF8\r\n" },
	{ R_LOCAL_ERROR, NULL, "451 4.3.0 Error: local error in processing, try again later\r\n" },
	/* STARTTLS (RFC 3207), as Postfix words them */
	{ R_STARTTLS_GO, NULL, "220 2.0.0 Ready to start TLS\r\n" },
	{ R_TLS_ACTIVE, NULL, "554 5.5.1 Error: TLS already active\r\n" },
	{ R_TXN_IN_PROGRESS, NULL, "503 5.5.1 Error: MAIL transaction in progress\r\n" },
	{ R_TLS_UNAVAILABLE, NULL, "454 4.7.0 TLS not available due to local problem\r\n" },
	{ R_NO_ARGS, "STARTTLS", "501 5.5.4 Syntax: STARTTLS takes no arguments\r\n" },
	{ R_NEED_STARTTLS, NULL, "530 5.7.0 Must issue a STARTTLS command first\r\n" },
	/* AUTH (RFC 4954) */
	{ R_AUTH_MECH, NULL, "504 5.5.4 Unrecognized authentication type\r\n" },
	{ R_AUTH_SYNTAX, NULL, "501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n" },
	{ R_AUTH_ALREADY, NULL, "503 5.5.1 Error: already authenticated\r\n" },
	{ R_AUTH_BAD_DATA, NULL, "501 5.5.2 Cannot decode response\r\n" },
	{ R_AUTH_TOO_LONG, NULL, "500 5.5.6 Authentication Exchange line is too long\r\n" },
	{ R_AUTH_TEMP, NULL, "454 4.7.0 Temporary authentication failure\r\n" },
	{ R_AUTH_ABORTED, NULL, "501 5.7.0 Authentication aborted\r\n" },
	{ R_AUTH_BLOCKED, NULL, "421 4.7.0 " HOST " Error: too many failed authentications from your address, try again later\r\n" },
	{ R_GREYLISTED, "300", "451 4.7.1 Greylisted, try again in 300 seconds\r\n" },
	{ R_RATE_LIMITED, "100 messages per hour for 192.0.2.1 reached, try again after 14:00:00 UTC",
	  "451 4.7.1 Rate limit of 100 messages per hour for 192.0.2.1 reached, try again after 14:00:00 UTC\r\n" },
	/* an arg is ignored where the text has no %s */
	{ R_DONE, "ignored", "250 2.0.0 OK\r\n" },
	{ R_SHUTDOWN, "%h", "421 4.3.2 " HOST " Service shutting down\r\n" },
};

static void test_rows(void **state)
{
	char buf[512];

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		int n;

		memset(buf, 'Z', sizeof buf);
		n = reply_format(buf, (int)sizeof buf, rows[i].id, HOST, rows[i].arg);
		if (n != (int)strlen(rows[i].out) || strcmp(buf, rows[i].out) != 0)
			fail_msg("row %zu (id %d): got %d \"%s\", want \"%s\"", i, rows[i].id, n, buf,
			         rows[i].out);
	}
}

/* The hostname is copied, never expanded itself. */
static void test_hostname_not_expanded(void **state)
{
	char buf[256];
	int n = reply_format(buf, (int)sizeof buf, R_TIMEOUT, "%s%h%%", "ARG");

	assert_string_equal(buf, "421 4.4.2 %s%h%% Error: timeout exceeded\r\n");
	assert_int_equal(n, (int)strlen(buf));
}

/* Every entry of the table: a sane code, a matching RFC 3463 class, no
 * CR/LF in the text, and nothing left unexpanded. */
static void test_every_entry(void **state)
{
	for (int id = 0; id < R_COUNT; id++) {
		const struct reply *r = &replies[id];
		char buf[1024], pre[32];
		int n;

		if (r->code < 200 || r->code > 599 || r->text == NULL || r->text[0] == '\0')
			fail_msg("id %d: code %d text %s", id, r->code, r->text ? r->text : "(null)");
		if (r->esc) {
			int a, b, c, used = 0;

			if (sscanf(r->esc, "%d.%d.%d%n", &a, &b, &c, &used) != 3 || r->esc[used] != '\0' ||
			    a != r->code / 100 || (a != 2 && a != 4 && a != 5))
				fail_msg("id %d: enhanced code \"%s\" does not fit %d", id, r->esc, r->code);
		}
		if (strpbrk(r->text, "\r\n"))
			fail_msg("id %d: CR/LF in the text", id);

		n = reply_format(buf, (int)sizeof buf, (enum reply_id)id, HOST, "ARG");
		assert_int_equal(n, (int)strlen(buf));
		if (r->esc)
			snprintf(pre, sizeof pre, "%d %s ", r->code, r->esc);
		else
			snprintf(pre, sizeof pre, "%d ", r->code);
		if (strncmp(buf, pre, strlen(pre)) != 0)
			fail_msg("id %d: \"%s\" does not start with \"%s\"", id, buf, pre);
		if (n < 2 || strcmp(buf + n - 2, "\r\n") != 0 || strpbrk(buf, "\r\n") != buf + n - 2)
			fail_msg("id %d: not one CRLF-ended line: \"%s\"", id, buf);
		if (strstr(buf, "%h") || strstr(buf, "%s"))
			fail_msg("id %d: unexpanded: \"%s\"", id, buf);
		if (strstr(r->text, "%h") && !strstr(buf, HOST))
			fail_msg("id %d: hostname missing: \"%s\"", id, buf);
		if (strstr(r->text, "%s") && !strstr(buf, "ARG"))
			fail_msg("id %d: arg missing: \"%s\"", id, buf);
	}
}

/* A line of a multi-line reply: "code-", the rest as the last line. */
static void test_format_line(void **state)
{
	char buf[256];

	assert_int_equal(reply_format_line(buf, sizeof buf, R_BANNER, HOST, NULL, 1),
	                 (int)strlen("220-" HOST " ESMTP moat\r\n"));
	assert_string_equal(buf, "220-" HOST " ESMTP moat\r\n");
	reply_format_line(buf, sizeof buf, R_MAIL_OK, HOST, NULL, 1);
	assert_string_equal(buf, "250-2.1.0 OK\r\n");
	reply_format_line(buf, sizeof buf, R_MAIL_OK, HOST, NULL, 0);
	assert_string_equal(buf, "250 2.1.0 OK\r\n");
}

/* The EHLO reply: the greeting line from the table, the extensions in
 * order, SMTPUTF8 and DSN only when the backend has them, the last line
 * "250 ". */
static void test_ehlo(void **state)
{
	static const struct {
		unsigned offers;
		const char *out;
	} ehlo[] = {
		{ 0, "250-" HOST "\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n"
		        "250 ENHANCEDSTATUSCODES\r\n" },
		{ EHLO_SMTPUTF8, "250-" HOST "\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n"
		        "250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n" },
		{ EHLO_SMTPUTF8 | EHLO_DSN, "250-" HOST "\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n"
		        "250-SMTPUTF8\r\n250-DSN\r\n250 ENHANCEDSTATUSCODES\r\n" },
		{ EHLO_DSN, "250-" HOST "\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n"
		        "250-DSN\r\n250 ENHANCEDSTATUSCODES\r\n" },
		/* STARTTLS where Postfix puts it, before the 8BITMIME group */
		{ EHLO_STARTTLS, "250-" HOST "\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n"
		        "250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n" },
		{ EHLO_STARTTLS | EHLO_SMTPUTF8 | EHLO_DSN, "250-" HOST "\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
		        "250-STARTTLS\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-DSN\r\n250 ENHANCEDSTATUSCODES\r\n" },
		/* AUTH after STARTTLS, as Postfix; under TLS only, so never both */
		{ EHLO_AUTH, "250-" HOST "\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-AUTH PLAIN LOGIN\r\n"
		        "250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n" },
	};
	char buf[512];

	for (size_t i = 0; i < sizeof ehlo / sizeof ehlo[0]; i++) {
		int n = reply_ehlo(buf, sizeof buf, HOST, 10240000, ehlo[i].offers);

		assert_int_equal(n, (int)strlen(ehlo[i].out));
		assert_string_equal(buf, ehlo[i].out);
	}
	assert_int_equal(reply_ehlo(buf, 40, HOST, 10240000, EHLO_SMTPUTF8 | EHLO_DSN), -1); /* does not fit */
}

/* A NULL arg never crashes, and the line stays well-formed. */
static void test_null_arg(void **state)
{
	static const enum reply_id ids[] = { R_PARAM, R_BAD_PARAM_VALUE, R_NO_ARGS };
	char buf[256];

	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
		int n = reply_format(buf, (int)sizeof buf, ids[i], HOST, NULL);

		assert_true(n >= 2 && n < (int)sizeof buf);
		assert_int_equal(n, (int)strlen(buf));
		assert_string_equal(buf + n - 2, "\r\n");
		assert_true(strpbrk(buf, "\r\n") == buf + n - 2);
	}
}

/* Format into a heap buffer of exactly size bytes (plus a guard zone) and
 * check the truncation contract: NUL-terminated within size, return value
 * is the length, never a byte past size; with room for it the line still
 * ends with CRLF and is a prefix of the full reply. */
static void check_size(enum reply_id id, const char *host, const char *arg, int size,
                       const char *full)
{
	char *buf = malloc((size_t)size + GUARD);
	size_t flen = strlen(full);
	int n, past = -1, ok;

	assert_non_null(buf);
	memset(buf, 0xa5, (size_t)size + GUARD);
	n = reply_format(buf, size, id, host, arg);
	for (int k = size; k < size + GUARD && past < 0; k++)
		if ((unsigned char)buf[k] != 0xa5)
			past = k;
	ok = past < 0 && n >= 0 && n < size && buf[n] == '\0' && strlen(buf) == (size_t)n;
	if (ok && (size_t)size > flen)
		ok = strcmp(buf, full) == 0;
	else if (ok && size >= 3)
		ok = n >= 2 && memcmp(buf + n - 2, "\r\n", 2) == 0 && memcmp(buf, full, (size_t)n - 2) == 0;
	free(buf);
	if (past >= 0)
		fail_msg("id %d size %d: wrote past the buffer at offset %d (returned %d)", id, size,
		         past, n);
	if (!ok)
		fail_msg("id %d size %d: returned %d: not a NUL-terminated, CRLF-ended prefix of \"%s\"",
		         id, size, n, full);
}

static const struct {
	enum reply_id id;
	const char *host, *arg;
} trunc_rows[] = {
	{ R_DONE, HOST, NULL },
	{ R_DATA_GO, HOST, NULL },
	{ R_SHUTDOWN, HOST, NULL },
	{ R_TOO_MANY_CONN_IP, "a-rather-long-host-name.subdomain.example.org", NULL },
	{ R_PARAM, HOST, "A-LONG-PARAMETER-VALUE=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" },
	{ R_NO_ARGS, HOST, "VRFY" },
};

/* Buffers at least as long as "code esc " + CRLF + NUL. */
static void test_truncation(void **state)
{
	for (size_t i = 0; i < sizeof trunc_rows / sizeof trunc_rows[0]; i++) {
		char full[1024];
		const struct reply *r = &replies[trunc_rows[i].id];
		int pre = r->esc ? 4 + (int)strlen(r->esc) + 1 : 4;

		reply_format(full, (int)sizeof full, trunc_rows[i].id, trunc_rows[i].host, trunc_rows[i].arg);
		for (int size = pre + 3; size <= (int)strlen(full) + 4; size++)
			check_size(trunc_rows[i].id, trunc_rows[i].host, trunc_rows[i].arg, size, full);
	}
}

/* "Truncated to size" holds for every size >= 1, also when the buffer is
 * shorter than the "code esc " prefix: never a write past size. */
static void test_truncation_tiny_buffers(void **state)
{
	for (size_t i = 0; i < sizeof trunc_rows / sizeof trunc_rows[0]; i++) {
		char full[1024];
		const struct reply *r = &replies[trunc_rows[i].id];
		int pre = r->esc ? 4 + (int)strlen(r->esc) + 1 : 4;

		reply_format(full, (int)sizeof full, trunc_rows[i].id, trunc_rows[i].host, trunc_rows[i].arg);
		for (int size = 1; size < pre + 3; size++)
			check_size(trunc_rows[i].id, trunc_rows[i].host, trunc_rows[i].arg, size, full);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_hostname_not_expanded),
		cmocka_unit_test(test_every_entry),
		cmocka_unit_test(test_format_line),
		cmocka_unit_test(test_ehlo),
		cmocka_unit_test(test_null_arg),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_truncation_tiny_buffers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
