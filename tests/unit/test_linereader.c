/* test_linereader.c - proxy/lib/linereader.c: command lines out of an
 * input buffer, however the bytes arrive; an over-long line refused once
 * and skipped to its end without being stored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <event2/buffer.h>

#include "proxy/lib/linereader.h"

#define MAX 16

/* Feed input in pieces of step bytes; after each, read until LINE_MORE.
 * The events, as a string: "L<line>|" for a line, "T|" too long, "S|" skipped. */
static void run(const char *input, size_t ilen, size_t step, char *out, size_t osize)
{
	struct line_reader r = {MAX, 0};
	struct evbuffer *in = evbuffer_new();
	char line[MAX + 1];
	size_t pos = 0, len, o = 0;

	assert_non_null(in);
	out[0] = '\0';
	while (pos < ilen) {
		size_t n = ilen - pos < step ? ilen - pos : step;
		enum line_read k;

		evbuffer_add(in, input + pos, n);
		pos += n;
		while ((k = line_read(&r, in, line, &len)) != LINE_MORE) {
			if (k == LINE_OK) {
				assert_int_equal(strlen(line), len);
				o += (size_t)snprintf(out + o, osize - o, "L%s|", line);
			} else {
				o += (size_t)snprintf(out + o, osize - o, "%s", k == LINE_TOO_LONG ? "T|" : "S|");
			}
		}
		/* an over-long line is never held beyond the limit */
		assert_true(evbuffer_get_length(in) <= MAX);
	}
	evbuffer_free(in);
}

static void test_lines(void **state)
{
	static const struct {
		const char *in, *want;
		size_t whole;     /* pieces this large bring the long line whole: no skip */
		const char *want_whole;
	} rows[] = {
		{ "NOOP\r\nQUIT\r\n", "LNOOP|LQUIT|", 0, NULL },
		{ "HELO a\r\n", "LHELO a|", 0, NULL },
		{ "\r\n", "L|", 0, NULL },
		{ "NOOP\nQUIT\r\n", "LNOOP|LQUIT|", 0, NULL },           /* a bare LF ends a command line too, as in Postfix */
		{ "12345678901234\r\nNOOP\r\n", "L12345678901234|LNOOP|", 0, NULL }, /* 16 with CRLF: fits */
		{ "123456789012345\r\nNOOP\r\n", "T|LNOOP|", 0, NULL },  /* 17: refused once */
		/* 40 bytes: refused when the buffer passes the limit, skipped at its end */
		{ "12345678901234567890123456789012345678\r\nNOOP\r\n", "T|S|LNOOP|", 40, "T|LNOOP|" },
	};
	char out[256];

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		for (size_t step = 1; step <= strlen(rows[i].in); step++) {
			const char *want = rows[i].whole && step >= rows[i].whole ? rows[i].want_whole : rows[i].want;

			run(rows[i].in, strlen(rows[i].in), step, out, sizeof out);
			if (strcmp(out, want) != 0)
				fail_msg("row %zu, pieces of %zu: got \"%s\" want \"%s\"", i, step, out, want);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
