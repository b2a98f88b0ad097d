/* test_idna.c - proxy/lib/idna.c: domain names to the A-label form DNS and
 * every comparison use (IDNA2008, UTS #46 non-transitional). Inputs are
 * exact-size heap copies (no NUL), so ASan sees any read past n. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/lib/idna.h"

#define RU "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80"  /* пример */
#define RU_UP "\xd0\x9f\xd0\xa0\xd0\x98\xd0\x9c\xd0\x95\xd0\xa0" /* ПРИМЕР */
#define RU_A "xn--e1afmkfd"
#define RF "\xd1\x80\xd1\x84" /* рф */
#define RF_A "xn--p1ai"

static const struct {
	const char *in;
	int want;            /* IDNA_OK or IDNA_INVALID */
	const char *out;     /* when IDNA_OK */
	int needed;          /* idna_needed */
} rows[] = {
	/* ASCII: lower-cased, nothing else (the caller checks its syntax) */
	{ "example.com", IDNA_OK, "example.com", 0 },
	{ "Example.COM", IDNA_OK, "example.com", 0 },
	{ "example.com.", IDNA_OK, "example.com", 0 },          /* a trailing dot */
	{ "ab--cd.example", IDNA_OK, "ab--cd.example", 0 },     /* libidn2 alone refuses it */
	{ "_dmarc.example", IDNA_OK, "_dmarc.example", 0 },
	{ "sel._domainkey." RU ".test", IDNA_OK, "sel._domainkey." RU_A ".test", 1 },
	/* Russian: U-labels, the same in capitals, mixed with A-labels */
	{ RU ".test", IDNA_OK, RU_A ".test", 1 },
	{ RU_UP ".test", IDNA_OK, RU_A ".test", 1 },             /* UTS #46 maps case */
	{ "\xd0\x9f\xd1\x80\xd0\x98\xd0\xbc\xd0\x95\xd1\x80.TEST", IDNA_OK, RU_A ".test", 1 },
	{ RU "." RF, IDNA_OK, RU_A "." RF_A, 1 },
	{ RU "." RF ".", IDNA_OK, RU_A "." RF_A, 1 },
	{ RU_A "." RF, IDNA_OK, RU_A "." RF_A, 1 },
	{ RU_A ".test", IDNA_OK, RU_A ".test", 1 },              /* an A-label is checked too */
	{ "XN--E1AFMKFD.test", IDNA_OK, RU_A ".test", 1 },
	/* German: IDNA2008 keeps sharp s (IDNA2003 made it "strasse") */
	{ "stra\xc3\x9f" "e.de", IDNA_OK, "xn--strae-oqa.de", 1 },
	{ "xn--strae-oqa.de", IDNA_OK, "xn--strae-oqa.de", 1 },
	{ "strasse.de", IDNA_OK, "strasse.de", 0 },
	{ "b\xc3\xbc" "cher.example", IDNA_OK, "xn--bcher-kva.example", 1 },
	{ "B\xc3\x9c" "CHER.example", IDNA_OK, "xn--bcher-kva.example", 1 },
	/* NFC: e + combining acute is é */
	{ "e\xcc\x81.test", IDNA_OK, "xn--9ca.test", 1 },
	{ "\xc3\xa9.test", IDNA_OK, "xn--9ca.test", 1 },
	/* Arabic, right to left: passes the Bidi rule alone */
	{ "\xd9\x85\xd8\xab\xd8\xa7\xd9\x84.test", IDNA_OK, "xn--mgbh0fb.test", 1 },
	/* invalid code points: a symbol, a bare combining mark */
	{ "\xe2\x98\x83.test", IDNA_INVALID, NULL, 1 },          /* U+2603 snowman: DISALLOWED */
	{ "xn--n3h.test", IDNA_INVALID, NULL, 1 },               /* its A-label */
	{ "\xcc\x81" "a.test", IDNA_INVALID, NULL, 1 },           /* starts with a combining mark */
	/* Bidi rule (RFC 5893): Latin and Arabic in one label, a digit first */
	{ "a\xd9\x85\xd8\xab\xd8\xa7\xd9\x84.test", IDNA_INVALID, NULL, 1 },
	{ "1\xd9\x85\xd8\xab\xd8\xa7\xd9\x84.test", IDNA_INVALID, NULL, 1 },
	/* CONTEXTJ: a zero width non-joiner between Latin letters */
	{ "a\xe2\x80\x8c" "b.test", IDNA_INVALID, NULL, 1 },
	/* broken A-labels */
	{ "xn--.test", IDNA_INVALID, NULL, 1 },
	{ "xn--zz.test", IDNA_INVALID, NULL, 1 },                /* bad Punycode */
	{ "xn--a.test", IDNA_INVALID, NULL, 1 },                 /* decodes to a non-letter */
	{ "xn--e1afmkfd-.test", IDNA_INVALID, NULL, 1 },
	/* what UTS #46 maps to ASCII that no mail domain may hold */
	{ "a\xef\xbc\xbf" "b.test", IDNA_INVALID, NULL, 1 },      /* fullwidth low line: '_' */
	{ "a\xe3\x80\x82" "b.test", IDNA_INVALID, NULL, 1 },      /* ideographic full stop: '.' */
	/* UTF-8 that is not: overlong, surrogate, truncated */
	{ "\xc0\xaf.test", IDNA_INVALID, NULL, 1 },
	{ "\xed\xa0\x80.test", IDNA_INVALID, NULL, 1 },
	{ "\xd0.test", IDNA_INVALID, NULL, 1 },
	/* empty labels */
	{ "", IDNA_INVALID, NULL, 0 },
	{ ".", IDNA_INVALID, NULL, 0 },
	{ "a..b", IDNA_INVALID, NULL, 0 },
	{ ".a", IDNA_INVALID, NULL, 0 },
	{ RU "..test", IDNA_INVALID, NULL, 1 },
	{ "a.b..", IDNA_INVALID, NULL, 0 },
};

static void test_rows(void **state)
{
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		size_t n = strlen(rows[i].in);
		char *p = malloc(n ? n : 1);
		char out[256];
		int got;

		assert_non_null(p);
		memcpy(p, rows[i].in, n);
		memset(out, 'Z', sizeof out);
		got = idna_to_ascii(p, n, out, sizeof out);
		if (got != rows[i].want)
			fail_msg("row %zu \"%s\": got %d want %d (%s)", i, rows[i].in, got, rows[i].want, out);
		if (got == IDNA_OK && strcmp(out, rows[i].out) != 0)
			fail_msg("row %zu \"%s\": got \"%s\" want \"%s\"", i, rows[i].in, out, rows[i].out);
		if (got != IDNA_OK)
			assert_string_equal(out, "");
		if (idna_needed(p, n) != rows[i].needed)
			fail_msg("row %zu \"%s\": idna_needed %d", i, rows[i].in, !rows[i].needed);
		free(p);
	}
}

/* Label lengths count in the A-label: a U-label of 66 octets whose A-label
 * has 51 passes; one whose A-label would pass 63 does not. */
static void test_label_length(void **state)
{
	char in[400], out[256];
	size_t n = 0;

	/* 33 Cyrillic letters: 66 octets of UTF-8 */
	for (int i = 0; i < 33; i++) {
		in[n++] = (char)0xd0;
		in[n++] = (char)(0xb0 + i % 16);
	}
	memcpy(in + n, ".test", 5);
	assert_int_equal(idna_to_ascii(in, n + 5, out, sizeof out), IDNA_OK);
	assert_true(strlen(out) - 5 <= 63);
	assert_memory_equal(out, "xn--", 4);
	/* 60 of them: the A-label is over 63 */
	n = 0;
	for (int i = 0; i < 60; i++) {
		in[n++] = (char)0xd0;
		in[n++] = (char)(0xb0 + (i * 7) % 16);
	}
	memcpy(in + n, ".test", 5);
	assert_int_equal(idna_to_ascii(in, n + 5, out, sizeof out), IDNA_INVALID);
	/* ASCII labels: 63 pass, 64 do not */
	memset(in, 'a', 64);
	memcpy(in + 63, ".com", 4);
	assert_int_equal(idna_to_ascii(in, 67, out, sizeof out), IDNA_OK);
	memset(in, 'a', 64);
	memcpy(in + 64, ".com", 4);
	assert_int_equal(idna_to_ascii(in, 68, out, sizeof out), IDNA_INVALID);
	/* a label as written over MOAT_IDN_LABEL_MAX (255) octets, whatever it maps to */
	memset(in, 'a', 300);
	in[0] = (char)0xc3, in[1] = (char)0xa9;
	assert_int_equal(idna_to_ascii(in, 300, out, sizeof out), IDNA_INVALID);
}

/* The whole name: 253 octets in A-labels pass, 254 do not; and out's size. */
static void test_name_length(void **state)
{
	char in[300], out[300];
	size_t n = 0;

	/* "xn--e1afmkfd." is 13 octets: 19 of them and "example" make 254 */
	for (int i = 0; i < 19; i++) {
		memcpy(in + n, RU ".", sizeof RU);
		n += sizeof RU;
	}
	memcpy(in + n, "exampl", 6);
	assert_int_equal(idna_to_ascii(in, n + 6, out, sizeof out), IDNA_OK);
	assert_int_equal(strlen(out), 253);
	memcpy(in + n, "example", 7);
	assert_int_equal(idna_to_ascii(in, n + 7, out, sizeof out), IDNA_INVALID);
	/* out too small: refused, never overrun (ASan) */
	for (size_t size = 1; size <= 18; size++) {
		char *o = malloc(size);

		assert_non_null(o);
		assert_int_equal(idna_to_ascii(RU ".test", sizeof RU + 4, o, size), size < 18 ? IDNA_INVALID : IDNA_OK);
		assert_string_equal(o, size < 18 ? "" : RU_A ".test");
		free(o);
	}
	assert_int_equal(idna_to_ascii("a", 1, out, 0), IDNA_INVALID);
}

/* Transitional processing (IDNA2003, ICU's UTS #46 default before ICU 76)
 * reads the deviation characters as other names: such a recipient domain is
 * ambiguous. A-labels and ASCII never are. */
static void test_unambiguous(void **state)
{
	static const struct {
		const char *in;
		int want;
	} amb[] = {
		{ "example.com", 1 },
		{ RU ".test", 1 },
		{ RU_UP "." RF, 1 },
		{ "b\xc3\xbc" "cher.example", 1 },
		{ "stra\xc3\x9f" "e.de", 0 },                 /* ß: "strasse.de" there */
		{ "STRA\xe1\xba\x9e" "E.de", 0 },             /* capital sharp s, U+1E9E: "ss" or ß by table */
		{ "\xcf\x83\xce\xbf\xcf\x82.test", 0 },          /* final sigma */
		{ "a.stra\xc3\x9f" "e.de.", 0 },
		{ "xn--strae-oqa.de", 1 },                     /* the A-label goes on as it is */
		{ "\xe2\x98\x83.test", 1 },                     /* invalid: idna_to_ascii says so */
		{ "a\xe2\x80\x8d" "b.test", 0 },                 /* ZWJ */
		{ "", 1 },
	};

	for (size_t i = 0; i < sizeof amb / sizeof amb[0]; i++)
		if (idna_unambiguous(amb[i].in, strlen(amb[i].in)) != amb[i].want)
			fail_msg("row %zu \"%s\": want %d", i, amb[i].in, amb[i].want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_unambiguous),
		cmocka_unit_test(test_label_length),
		cmocka_unit_test(test_name_length),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
