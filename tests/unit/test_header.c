/* test_header.c - checks/header.c: a message's header section read once
 * from the spool (wire form): unstuffed, its end found by the one header
 * scanner, the body's start in wire bytes, bounded. Read in every piece
 * size a reader may give. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "checks/header.h"

struct mem {
	const char *p;
	size_t len, piece; /* the most one read gives */
};

static long mem_read(void *arg, size_t off, char *buf, size_t len)
{
	const struct mem *m = arg;

	if (off >= m->len)
		return 0;
	if (len > m->len - off)
		len = m->len - off;
	if (len > m->piece)
		len = m->piece;
	memcpy(buf, m->p + off, len);
	return (long)len;
}

static void test_sections(void **state)
{
	static const struct {
		const char *wire, *want;
		size_t wire_end;
		int complete;
	} rows[] = {
		{ "A: 1\r\nB: 2\r\n\r\nbody\r\n", "A: 1\r\nB: 2\r\n\r\n", 14, 1 },
		{ "A: 1\r\n folded\r\n\r\n..dotted body\r\n", "A: 1\r\n folded\r\n\r\n", 17, 1 },
		{ "..X: dotted field\r\nA: 1\r\n\r\n", ".X: dotted field\r\nA: 1\r\n\r\n", 27, 1 },
		{ "A: 1\r\nB: 2\r\n", "A: 1\r\nB: 2\r\n", 12, 0 },      /* no body */
		{ "\r\nbody\r\n", "\r\n", 2, 1 },                       /* no header */
		{ "", "", 0, 0 },
	};

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		for (size_t piece = 1; piece <= 20; piece += 3) {
			struct mem m = { rows[i].wire, strlen(rows[i].wire), piece };
			struct msg_header h;

			assert_int_equal(msg_header_read(mem_read, &m, m.len, 1024, &h), 0);
			if (h.len != strlen(rows[i].want) || memcmp(h.buf ? h.buf : "", rows[i].want, h.len) != 0 ||
			    h.wire_end != rows[i].wire_end || h.complete != rows[i].complete || h.truncated)
				fail_msg("row %zu, pieces of %zu: [%.*s] end %zu complete %d", i, piece, (int)h.len,
				         h.buf ? h.buf : "", h.wire_end, h.complete);
			msg_header_free(&h);
		}
	}
}

/* Longer than the max: the start is kept, the rest not read. */
static void test_bounded(void **state)
{
	char wire[3000];
	struct mem m = { wire, 0, 4096 };
	struct msg_header h;

	for (size_t n = 0; n + 10 < sizeof wire - 100; n += 10)
		memcpy(wire + n, "X: 123456\r\n", 10), m.len = n + 10;
	memcpy(wire + m.len, "\r\nbody\r\n", 8);
	m.len += 8;
	assert_int_equal(msg_header_read(mem_read, &m, m.len, 500, &h), 0);
	assert_true(h.truncated);
	assert_false(h.complete);
	assert_int_equal(h.len, 500);
	assert_memory_equal(h.buf, wire, 500);
	msg_header_free(&h);
}

static long broken_read(void *arg, size_t off, char *buf, size_t len)
{
	return -1;
}

static void test_read_error(void **state)
{
	struct msg_header h;

	assert_int_equal(msg_header_read(broken_read, NULL, 100, 1024, &h), -1);
	assert_null(h.buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sections),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_read_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
