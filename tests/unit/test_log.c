/* test_log.c - json_escape: untrusted text into a JSON string, bounded */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/lib/log.h"

#define BIG 4096
#define GUARD 32

static const struct {
	const char *in;
	size_t max;
	size_t size;
	const char *out;
} rows[] = {
	/* plain text is copied */
	{ "", BIG, 64, "" },
	{ "abc", BIG, 64, "abc" },
	{ " !#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}~", BIG, 64, " !#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}~" },
	{ "/", BIG, 64, "/" },
	/* quotes and backslashes */
	{ "a\"b", BIG, 64, "a\\\"b" },
	{ "a\\b", BIG, 64, "a\\\\b" },
	{ "\\\"", BIG, 64, "\\\\\\\"" },
	{ "\"\"", BIG, 64, "\\\"\\\"" },
	/* control bytes as \u00XX, lower-case hex */
	{ "\n", BIG, 64, "\\u000a" },
	{ "\r\n", BIG, 64, "\\u000d\\u000a" },
	{ "\t", BIG, 64, "\\u0009" },
	{ "\x01", BIG, 64, "\\u0001" },
	{ "\x1b[31m", BIG, 64, "\\u001b[31m" },
	{ "\x1f", BIG, 64, "\\u001f" },
	{ "\x7f", BIG, 64, "\\u007f" },
	{ "a\x08z", BIG, 64, "a\\u0008z" },
	/* bytes >= 0x80 one by one, valid UTF-8 or not */
	{ "\x80", BIG, 64, "\\u0080" },
	{ "\xff", BIG, 64, "\\u00ff" },
	{ "\xc3\xa9t\xc3\xa9", BIG, 64, "\\u00c3\\u00a9t\\u00c3\\u00a9" },
	{ "\xed\xa0\x80", BIG, 64, "\\u00ed\\u00a0\\u0080" },
	{ "\xc0\xaf", BIG, 64, "\\u00c0\\u00af" },
	/* a NUL ends the input */
	{ "ab\0cd", BIG, 64, "ab" },
	/* max: input bytes; a cut adds "..." */
	{ "abcdef", 3, 64, "abc..." },
	{ "abc", 3, 64, "abc" },
	{ "abcd", 3, 64, "abc..." },
	{ "abc", 0, 64, "..." },
	{ "", 0, 64, "" },
	{ "\n\n\n\n", 2, 64, "\\u000a\\u000a..." },
	{ "\"\"\"", 1, 64, "\\\"..." },
	{ "\xc3\xa9", 1, 64, "\\u00c3..." },
	/* dst full: no escape is split, the result stays NUL-terminated */
	{ "abcdef", BIG, 4, "abc" },
	{ "abcdef", BIG, 1, "" },
	{ "abcdef", BIG, 2, "a" },
	{ "ab\n", BIG, 9, "ab\\u000a" },
	{ "ab\n", BIG, 8, "ab" },
	{ "ab\ncd", BIG, 8, "ab" },
	{ "ab\"", BIG, 5, "ab\\\"" },
	{ "ab\"", BIG, 4, "ab" },
	{ "ab\"cd", BIG, 4, "ab" },
	{ "\xff", BIG, 6, "" },
	{ "\xff", BIG, 7, "\\u00ff" },
	/* cut by max and by size: "..." only when it fits */
	{ "abcdef", 3, 7, "abc..." },
	{ "abcdef", 3, 6, "abc" },
	{ "abcdef", 3, 4, "abc" },
	{ "abcdef", 3, 3, "ab" },
};

/* dst is a heap buffer of exactly size bytes plus a guard zone. */
static void test_rows(void **state)
{
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		size_t size = rows[i].size;
		char *dst = malloc(size + GUARD);
		size_t n;

		assert_non_null(dst);
		memset(dst, 0xa5, size + GUARD);
		n = json_escape(dst, size, rows[i].in, rows[i].max);
		if (strcmp(dst, rows[i].out) != 0 || n != strlen(rows[i].out))
			fail_msg("row %zu: got \"%s\" (%zu), want \"%s\"", i, dst, n, rows[i].out);
		assert_true(n < size);
		for (size_t k = size; k < size + GUARD; k++)
			if ((unsigned char)dst[k] != 0xa5)
				fail_msg("row %zu: wrote past size at %zu", i, k);
		free(dst);
	}
}

/* size 0: nothing is written at all. */
static void test_size_zero(void **state)
{
	char dst[8];

	memset(dst, 'Z', sizeof dst);
	assert_int_equal(json_escape(dst, 0, "abc", BIG), 0);
	for (size_t k = 0; k < sizeof dst; k++)
		assert_int_equal(dst[k], 'Z');
}

/* Decode a json_escape result back to bytes; -1 if it is not a valid JSON
 * string body made of the escapes json_escape may use. */
static long decode(const char *s, size_t n, unsigned char *out)
{
	size_t i = 0, o = 0;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f || c == '"')
			return -1;
		if (c != '\\') {
			out[o++] = c;
			i++;
			continue;
		}
		if (i + 1 >= n)
			return -1;
		if (s[i + 1] == '"' || s[i + 1] == '\\') {
			out[o++] = (unsigned char)s[i + 1];
			i += 2;
			continue;
		}
		if (s[i + 1] != 'u' || i + 6 > n || s[i + 2] != '0' || s[i + 3] != '0')
			return -1;
		unsigned v = 0;
		for (int k = 4; k < 6; k++) {
			char h = s[i + (size_t)k];
			if (h >= '0' && h <= '9')
				v = v * 16 + (unsigned)(h - '0');
			else if (h >= 'a' && h <= 'f')
				v = v * 16 + (unsigned)(h - 'a' + 10);
			else
				return -1;
		}
		/* only what has to be escaped is escaped */
		if (v >= 0x20 && v < 0x7f)
			return -1;
		out[o++] = (unsigned char)v;
		i += 6;
	}
	return (long)o;
}

static uint64_t rs = 0x2545f4914f6cdd1dull;

static uint32_t rnd(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return (uint32_t)(rs >> 16);
}

/* Random bytes (no '.', so "..." can only be the cut marker), max and size:
 * the output is valid JSON string content that decodes to a prefix of the
 * input, never overflows, and "..." marks a cut by max after all max bytes. */
static void test_random_roundtrip(void **state)
{
	char src[64];
	unsigned char dec[512];

	for (int iter = 0; iter < 100000; iter++) {
		size_t len = rnd() % (sizeof src - 1);
		size_t max = rnd() % 80;
		size_t size = 1 + rnd() % 400;
		char *dst = malloc(size + GUARD);
		size_t n, plain;
		long d;
		int dots;

		assert_non_null(dst);
		for (size_t k = 0; k < len; k++) {
			do
				src[k] = (char)(1 + rnd() % 255);
			while (src[k] == '.');
		}
		src[len] = '\0';
		memset(dst, 0xa5, size + GUARD);
		n = json_escape(dst, size, src, max);
		assert_true(n < size);
		assert_int_equal(dst[n], '\0');
		assert_int_equal(strlen(dst), n);
		for (size_t k = size; k < size + GUARD; k++)
			assert_int_equal((unsigned char)dst[k], 0xa5);
		dots = n >= 3 && memcmp(dst + n - 3, "...", 3) == 0;
		plain = dots ? n - 3 : n;
		d = decode(dst, plain, dec);
		if (d < 0)
			fail_msg("not a valid JSON string body: \"%s\"", dst);
		assert_true((size_t)d <= len && (size_t)d <= max);
		assert_memory_equal(dec, src, (size_t)d);
		if (dots) {
			assert_true(len > max);
			assert_int_equal((size_t)d, max);
		}
		if (len <= max && size > 6 * len)
			assert_int_equal((size_t)d, len); /* room enough: all of it */
		if (len > max && size > 6 * max + 3)
			assert_true(dots);
		free(dst);
	}
}

/* A line's start and its numbers, as built before jl_emit. */
static void test_line_format(void **state)
{
	static const struct {
		long long v;
		const char *text;
	} nums[] = {
		{ 0, "0" }, { 7, "7" }, { 250, "250" }, { -1, "-1" }, { 1234567890123LL, "1234567890123" },
		{ -9223372036854775807LL - 1, "-9223372036854775808" }, { 9223372036854775807LL, "9223372036854775807" },
	};
	struct jline j;
	char want[64];
	size_t i;

	for (i = 0; i < sizeof nums / sizeof nums[0]; i++) {
		jl_begin(&j, "info", "x");
		jl_int(&j, "n", nums[i].v);
		j.buf[j.len] = '\0';
		snprintf(want, sizeof want, ",\"n\":%s", nums[i].text);
		assert_non_null(strstr(j.buf, want));
		assert_string_equal(j.buf + j.len - strlen(want), want);
	}
	/* {"ts":"YYYY-MM-DDTHH:MM:SS.mmmZ","level":"info","event":"x" */
	jl_begin(&j, "info", "x");
	j.buf[j.len] = '\0';
	assert_int_equal(strlen("{\"ts\":\"2026-11-26T21:05:35.281Z\""), strcspn(j.buf, ",") );
	for (i = 0; i < 24; i++) {
		char c = j.buf[7 + i];

		if (i == 4 || i == 7)
			assert_int_equal(c, '-');
		else if (i == 10)
			assert_int_equal(c, 'T');
		else if (i == 13 || i == 16)
			assert_int_equal(c, ':');
		else if (i == 19)
			assert_int_equal(c, '.');
		else if (i == 23)
			assert_int_equal(c, 'Z');
		else
			assert_true(c >= '0' && c <= '9');
	}
	assert_string_equal(j.buf + 31, "\",\"level\":\"info\",\"event\":\"x\"");
}

/* A worker's lines name it, whoever builds them; other processes' do not. */
static void test_worker_field(void **state)
{
	struct jline j;

	log_set_worker(3);
	jl_begin(&j, "info", "x");
	j.buf[j.len] = '\0';
	assert_string_equal(j.buf + 31, "\",\"level\":\"info\",\"event\":\"x\",\"worker\":3");
	log_set_worker(0);
	jl_begin(&j, "info", NULL);
	j.buf[j.len] = '\0';
	assert_string_equal(j.buf + 31, "\",\"level\":\"info\",\"worker\":0");
	log_set_worker(-1);
	jl_begin(&j, "info", "x");
	j.buf[j.len] = '\0';
	assert_null(strstr(j.buf, "worker"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_size_zero),
		cmocka_unit_test(test_random_roundtrip),
		cmocka_unit_test(test_line_format),
		cmocka_unit_test(test_worker_field),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
