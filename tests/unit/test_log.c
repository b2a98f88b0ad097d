/* test_log.c - json_escape: untrusted text into a JSON string, readable
 * UTF-8, bounded */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/lib/log.h"
#include "proxy/lib/text.h"

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
	/* well-formed UTF-8 as it is: 2, 3 and 4 bytes, the ends of each range */
	{ "\xc3\xa9t\xc3\xa9", BIG, 64, "\xc3\xa9t\xc3\xa9" },
	{ "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82", BIG, 64,
	  "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82" },                     /* Привет */
	{ "\xc2\xa0\xdf\xbf", BIG, 64, "\xc2\xa0\xdf\xbf" },                         /* U+00A0 U+07FF */
	{ "\xe0\xa0\x80\xef\xbf\xbf", BIG, 64, "\xe0\xa0\x80\xef\xbf\xbf" },       /* U+0800 U+FFFF */
	{ "\xed\x9f\xbf\xee\x80\x80", BIG, 64, "\xed\x9f\xbf\xee\x80\x80" },       /* U+D7FF U+E000 */
	{ "\xf0\x9f\x98\x80", BIG, 64, "\xf0\x9f\x98\x80" },                         /* U+1F600 */
	{ "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", BIG, 64, "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf" }, /* U+10000 U+10FFFF */
	{ "\xef\xbf\xbd", BIG, 64, "\xef\xbf\xbd" },                                 /* a real U+FFFD */
	{ "\xe2\x80\xae", BIG, 64, "\xe2\x80\xae" },                                 /* U+202E is no control */
	/* C1 controls and the line separators JavaScript reads as line ends */
	{ "\xc2\x80", BIG, 64, "\\u0080" },
	{ "\xc2\x85", BIG, 64, "\\u0085" },
	{ "\xc2\x9b[31m", BIG, 64, "\\u009b[31m" },
	{ "\xc2\x9f", BIG, 64, "\\u009f" },
	{ "\xe2\x80\xa8\xe2\x80\xa9", BIG, 64, "\\u2028\\u2029" },
	/* not UTF-8: \ufffd for each byte */
	{ "\x80", BIG, 64, "\\ufffd" },
	{ "\xbf", BIG, 64, "\\ufffd" },                          /* a stray continuation byte */
	{ "\xff", BIG, 64, "\\ufffd" },
	{ "\xfe\xfe", BIG, 64, "\\ufffd\\ufffd" },
	{ "\xc0\xaf", BIG, 64, "\\ufffd\\ufffd" },               /* overlong '/' */
	{ "\xc1\xbf", BIG, 64, "\\ufffd\\ufffd" },               /* overlong */
	{ "\xe0\x80\xaf", BIG, 64, "\\ufffd\\ufffd\\ufffd" },    /* overlong, 3 bytes */
	{ "\xf0\x80\x80\xaf", BIG, 64, "\\ufffd\\ufffd\\ufffd\\ufffd" }, /* overlong, 4 bytes */
	{ "\xed\xa0\x80", BIG, 64, "\\ufffd\\ufffd\\ufffd" },    /* surrogate U+D800 */
	{ "\xed\xbf\xbf", BIG, 64, "\\ufffd\\ufffd\\ufffd" },    /* surrogate U+DFFF */
	{ "\xf4\x90\x80\x80", BIG, 64, "\\ufffd\\ufffd\\ufffd\\ufffd" }, /* past U+10FFFF */
	{ "\xf5\x80\x80\x80", BIG, 64, "\\ufffd\\ufffd\\ufffd\\ufffd" },
	{ "\xc3", BIG, 64, "\\ufffd" },                          /* truncated at the end */
	{ "\xc3z", BIG, 64, "\\ufffdz" },                        /* truncated by ASCII */
	{ "\xe2\x82", BIG, 64, "\\ufffd\\ufffd" },
	{ "\xf0\x9f\x98", BIG, 64, "\\ufffd\\ufffd\\ufffd" },
	{ "\xf0\x9f\x98\xc3\xa9", BIG, 64, "\\ufffd\\ufffd\\ufffd\xc3\xa9" },
	{ "a\xc3\xa9\xa9" "b", BIG, 64, "a\xc3\xa9\\ufffd" "b" },
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
	{ "\xc3\xa9", 1, 64, "..." },                 /* a character is not cut */
	{ "\xc3\xa9", 2, 64, "\xc3\xa9" },
	{ "a\xf0\x9f\x98\x80", 4, 64, "a..." },
	{ "a\xf0\x9f\x98\x80", 5, 64, "a\xf0\x9f\x98\x80" },
	{ "\xff\xff", 1, 64, "\\ufffd..." },
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
	{ "\xff", BIG, 7, "\\ufffd" },
	{ "\xc3\xa9", BIG, 2, "" },
	{ "\xc3\xa9", BIG, 3, "\xc3\xa9" },
	{ "a\xf0\x9f\x98\x80", BIG, 5, "a" },
	{ "\xc2\x85", BIG, 6, "" },
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

static unsigned hex4(const char *s)
{
	unsigned v = 0;

	for (int k = 0; k < 4; k++) {
		char h = s[k];

		if (h >= '0' && h <= '9')
			v = v * 16 + (unsigned)(h - '0');
		else if (h >= 'a' && h <= 'f')
			v = v * 16 + (unsigned)(h - 'a' + 10);
		else
			return 0x110000; /* no escape json_escape writes */
	}
	return v;
}

/* Input bytes one unit at src stands for: a well-formed UTF-8 character,
 * else one byte. */
static size_t unit_len(const unsigned char *src, size_t len)
{
	size_t k = src[0] >= 0x80 ? text_utf8_len(src, len) : 1;

	return k ? k : 1;
}

/* Walk a json_escape result (n bytes, "..." removed) against its input
 * (len bytes): each piece of it must stand for the next input bytes (a
 * printable byte; a character as it is; \" and \\; \u00XX of a C0 or C1
 * control or DEL; \u2028, \u2029; \ufffd for one byte that starts no
 * well-formed UTF-8), and only what has to be escaped is. Returns the input
 * bytes covered, or -1. */
static long covered(const char *out, size_t n, const unsigned char *src, size_t len)
{
	const unsigned char *s = (const unsigned char *)out;
	size_t i = 0, o = 0, k;

	while (i < n) {
		unsigned v;

		if (s[i] < 0x20 || s[i] == 0x7f || s[i] == '"')
			return -1;
		if (s[i] >= 0x80) {
			k = text_utf8_len(s + i, n - i);
			if (k == 0 || o + k > len || memcmp(s + i, src + o, k) != 0)
				return -1;
			if ((s[i] == 0xc2 && s[i + 1] < 0xa0) ||
			    (s[i] == 0xe2 && s[i + 1] == 0x80 && (s[i + 2] == 0xa8 || s[i + 2] == 0xa9)))
				return -1; /* had to be escaped */
			i += k, o += k;
			continue;
		}
		if (s[i] != '\\') {
			if (o >= len || src[o] != s[i])
				return -1;
			i++, o++;
			continue;
		}
		if (i + 1 < n && (s[i + 1] == '"' || s[i + 1] == '\\')) {
			if (o >= len || src[o] != s[i + 1])
				return -1;
			i += 2, o++;
			continue;
		}
		if (i + 6 > n || s[i + 1] != 'u')
			return -1;
		v = hex4(out + i + 2);
		if (v == 0xfffd) {
			if (o >= len || src[o] < 0x80 || text_utf8_len(src + o, len - o) != 0)
				return -1;
			o++;
		} else if (v < 0x20 || v == 0x7f) {
			if (o >= len || src[o] != v)
				return -1;
			o++;
		} else if (v >= 0x80 && v < 0xa0) {
			if (o + 2 > len || src[o] != 0xc2 || src[o + 1] != v)
				return -1;
			o += 2;
		} else if (v == 0x2028 || v == 0x2029) {
			if (o + 3 > len || memcmp(src + o, v == 0x2028 ? "\xe2\x80\xa8" : "\xe2\x80\xa9", 3) != 0)
				return -1;
			o += 3;
		} else {
			return -1;
		}
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

/* Text made of characters (valid UTF-8 of each length, C1 controls, U+2028,
 * U+FFFD itself), pieces of them and random bytes; no '.' (so "..." can
 * only be the cut marker). Returns its length. */
static size_t random_text(char *src, size_t room)
{
	static const char *const pieces[] = {
		"a", "\"", "\\", "\n", "\x7f", "\xc3\xa9", "\xd0\x9f", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
		"\xc2\x85", "\xe2\x80\xa8", "\xef\xbf\xbd", "\xed\xa0\x80", "\xc0\xaf", "\xf4\x90\x80\x80",
	};
	size_t len = rnd() % room, o = 0;

	while (o < len) {
		if (rnd() % 3 == 0) {
			do
				src[o] = (char)(1 + rnd() % 255);
			while (src[o] == '.');
			o++;
			continue;
		}
		const char *p = pieces[rnd() % (sizeof pieces / sizeof pieces[0])];
		size_t n = strlen(p);

		if (rnd() % 4 == 0)
			n = 1 + rnd() % n; /* a truncated one */
		if (o + n > len)
			n = len - o;
		memcpy(src + o, p, n);
		o += n;
	}
	src[len] = '\0';
	return len;
}

/* Random text, max and size: the output is valid JSON string content in
 * well-formed UTF-8 that stands for a prefix of the input, never overflows,
 * never cuts a character, and "..." marks a cut by max. */
static void test_random_roundtrip(void **state)
{
	char src[64];

	for (int iter = 0; iter < 200000; iter++) {
		size_t len = random_text(src, sizeof src - 1);
		size_t max = rnd() % 80;
		size_t size = 1 + rnd() % 400;
		char *dst = malloc(size + GUARD);
		size_t n, plain;
		long d;
		int dots;

		assert_non_null(dst);
		memset(dst, 0xa5, size + GUARD);
		n = json_escape(dst, size, src, max);
		assert_true(n < size);
		assert_int_equal(dst[n], '\0');
		assert_int_equal(strlen(dst), n);
		for (size_t k = size; k < size + GUARD; k++)
			assert_int_equal((unsigned char)dst[k], 0xa5);
		dots = n >= 3 && memcmp(dst + n - 3, "...", 3) == 0;
		plain = dots ? n - 3 : n;
		d = covered(dst, plain, (const unsigned char *)src, len);
		if (d < 0)
			fail_msg("not what json_escape may write for its input: \"%s\"", dst);
		assert_true((size_t)d <= len && (size_t)d <= max);
		if (dots) /* cut where the next character would pass max */
			assert_true((size_t)d < len && (size_t)d + unit_len((const unsigned char *)src + d, len - (size_t)d) > max);
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
