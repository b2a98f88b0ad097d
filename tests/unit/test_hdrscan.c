/* test_hdrscan.c - proxy/hdrscan.c: the header section scanned as the
 * message arrives. Every row is fed whole, byte by byte and in two pieces
 * at every cut: the fields reported (where they lie, in order) and the end
 * of the header must not depend on how the bytes came. A field is reported
 * only once its end is known: never a field whose last line is incomplete. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "checks/authres.h"
#include "proxy/lib/hdrscan.h"

#define NROWS(a) (sizeof(a) / sizeof((a)[0]))
#define MAXF 8

struct hf {
	size_t off, len;
};

struct got {
	struct hf f[64];
	int n;
	int bad_head; /* a head that is not the field's first bytes */
	const char *buf;
};

static void record(void *arg, const struct hdr_field *f)
{
	struct got *g = arg;
	size_t want_head = f->len < HDRSCAN_HEAD_MAX ? f->len : HDRSCAN_HEAD_MAX;

	if (f->head_len != want_head || f->truncated != (f->len > HDRSCAN_HEAD_MAX) ||
	    memcmp(f->head, g->buf + f->off, f->head_len) != 0)
		g->bad_head++;
	if (g->n < (int)NROWS(g->f))
		g->f[g->n] = (struct hf){ f->off, f->len };
	g->n++;
}

/* Feed buf with cuts at the given positions (ascending), then finish. */
static size_t scan(const char *buf, size_t len, const size_t *cuts, size_t nc, struct got *g)
{
	struct hdrscan h;
	size_t prev = 0;

	memset(g, 0, sizeof *g);
	g->buf = buf;
	hdrscan_init(&h, record, g);
	for (size_t k = 0; k <= nc; k++) {
		size_t end = k < nc ? cuts[k] : len;

		hdrscan_feed(&h, buf + prev, end - prev);
		prev = end;
	}
	hdrscan_finish(&h);
	return h.hdr_end;
}

static void same(const struct got *a, const struct got *b, size_t ea, size_t eb, const char *what,
                 const char *how)
{
	if (a->n != b->n || ea != eb || memcmp(a->f, b->f, sizeof a->f) != 0 || b->bad_head)
		fail_msg("%s: fed %s: %d fields end %zu (bad heads %d), fed whole: %d fields end %zu", what,
		         how, b->n, eb, b->bad_head, a->n, ea);
}

/* Whole, byte by byte, and every two-piece cut give the same. */
static void scan_all_ways(const char *buf, size_t len, struct got *g, size_t *end, const char *what)
{
	struct got o;
	size_t *cuts = malloc((len ? len : 1) * sizeof *cuts), e;

	assert_non_null(cuts);
	*end = scan(buf, len, NULL, 0, g);
	if (g->bad_head)
		fail_msg("%s: a head is not the start of its field", what);
	for (size_t i = 0; i + 1 < len; i++)
		cuts[i] = i + 1;
	e = scan(buf, len, cuts, len ? len - 1 : 0, &o);
	same(g, &o, *end, e, what, "byte by byte");
	for (size_t c = 1; c < len; c++) {
		e = scan(buf, len, &c, 1, &o);
		same(g, &o, *end, e, what, "in two pieces");
	}
	free(cuts);
}

static void test_fields(void **state)
{
	static const struct {
		const char *what, *buf;
		int want_n;
		size_t want_end; /* 0: no empty line seen */
		struct hf f[MAXF];
	} rows[] = {
		{ "two fields", "From: a\r\nTo: b\r\n\r\nbody\r\n", 2, 18, { { 0, 9 }, { 9, 7 } } },
		{ "folded", "Subject: a\r\n b\r\n\tc\r\nTo: x\r\n\r\n", 2, 29, { { 0, 20 }, { 20, 7 } } },
		{ "fold after the last field", "A: 1\r\nB: 2\r\n  more\r\n\r\nX: body\r\n", 2, 22,
		  { { 0, 6 }, { 6, 14 } } },
		{ "only the empty line", "\r\nbody\r\n", 0, 2, { { 0 } } },
		{ "empty", "", 0, 0, { { 0 } } },
		{ "no empty line: the message ends the last field", "A: 1\r\nB: 2\r\n", 2, 0,
		  { { 0, 6 }, { 6, 6 } } },
		{ "ends inside a line: that field is not reported", "A: 1\r\nB: 2", 1, 0, { { 0, 6 } } },
		{ "ends inside a fold: nor is that one", "A: 1\r\n  cont", 0, 0, { { 0 } } },
		{ "ends after the CR of the empty line", "A: 1\r\n\r", 1, 0, { { 0, 6 } } },
		{ "ends inside a name", "A: 1\r\nSubj", 1, 0, { { 0, 6 } } },
		{ "line without colon", "From a\r\nTo: b\r\n\r\n", 2, 17, { { 0, 8 }, { 8, 7 } } },
		{ "colon only in a fold", "Name\r\n x: y\r\n\r\n", 1, 15, { { 0, 13 } } },
		{ "space before colon", "Subject : x\r\n\r\n", 1, 15, { { 0, 13 } } },
		{ "empty name", ": x\r\n\r\n", 1, 7, { { 0, 5 } } },
		{ "leading fold", " x\r\nA: 1\r\n\r\n", 2, 12, { { 0, 4 }, { 4, 6 } } },
		{ "body lines are not fields", "A: 1\r\n\r\nB: 2\r\n\r\n", 1, 8, { { 0, 6 } } },
		{ "a dot-stuffed line is a line", "..A: 1\r\nB: 2\r\n\r\n", 2, 16, { { 0, 8 }, { 8, 6 } } },
		{ "CR inside a line", "A: 1\r2\r\n\r\n", 1, 10, { { 0, 8 } } },
		{ "bare LF ends lines too", "A: 1\nB: 2\n\nC: 3\n", 2, 11, { { 0, 5 }, { 5, 5 } } },
	};

	for (size_t i = 0; i < NROWS(rows); i++) {
		size_t len = strlen(rows[i].buf), end;
		char *b = malloc(len ? len : 1);
		struct got g;

		assert_non_null(b);
		memcpy(b, rows[i].buf, len); /* exact size: ASan sees a read past the end */
		scan_all_ways(b, len, &g, &end, rows[i].what);
		if (g.n != rows[i].want_n || end != rows[i].want_end)
			fail_msg("row %zu (%s): %d fields, end %zu; want %d, %zu", i, rows[i].what, g.n, end,
			         rows[i].want_n, rows[i].want_end);
		for (int k = 0; k < g.n; k++)
			if (g.f[k].off != rows[i].f[k].off || g.f[k].len != rows[i].f[k].len)
				fail_msg("row %zu (%s) field %d: {%zu,%zu} want {%zu,%zu}", i, rows[i].what, k,
				         g.f[k].off, g.f[k].len, rows[i].f[k].off, rows[i].f[k].len);
		free(b);
	}
}

/* Fields of any length are reported whole, with their real end: lengths
 * around the head's size and the old 64 KiB window. */
static void test_long_fields(void **state)
{
	static const size_t lens[] = { HDRSCAN_HEAD_MAX - 2, HDRSCAN_HEAD_MAX - 1, HDRSCAN_HEAD_MAX,
	                               HDRSCAN_HEAD_MAX + 1, 65534, 65535, 65536, 65537, 65538, 200000 };

	for (size_t i = 0; i < NROWS(lens); i++) {
		for (int folded = 0; folded < 2; folded++) {
			static const char first[] = "From: a\r\n";
			size_t len = sizeof first - 1 + lens[i] + 4, n = 0;
			char *b = malloc(len);
			struct got g;
			size_t end, cuts[3] = { 5, 65536, 100000 };

			assert_non_null(b);
			memcpy(b, first, sizeof first - 1);
			n = sizeof first - 1;
			/* "X: aaa...a\r\n" of lens[i] bytes, folded every 1000 bytes or not */
			memcpy(b + n, "X: ", 3);
			memset(b + n + 3, 'a', lens[i] - 5);
			for (size_t k = 1000; folded && k + 3 < lens[i] - 2; k += 1000)
				memcpy(b + n + k, "\r\n\t", 3);
			memcpy(b + n + lens[i] - 2, "\r\n\r\nB", 5);
			end = scan(b, len, cuts, lens[i] > 100000 ? 3 : 1, &g);
			if (g.n != 2 || g.bad_head || g.f[1].off != n || g.f[1].len != lens[i] || end != n + lens[i] + 2)
				fail_msg("field of %zu bytes (folded %d): %d fields, second {%zu,%zu}, end %zu",
				         lens[i], folded, g.n, g.f[1].off, g.f[1].len, end);
			free(b);
		}
	}
}

/* The scanner and authres_claims_head together, as message.c removes
 * forged fields: the ones that claim us, in the header only. */
struct claims {
	const char *buf;
	int got[16];
	int n;
};

static void claim(void *arg, const struct hdr_field *f)
{
	struct claims *c = arg;

	if (c->n < 16)
		c->got[c->n] = authres_claims_head(f->head, f->head_len, f->truncated, "mx.example");
	c->n++;
}

static void test_scan_and_claims(void **state)
{
	static const char msg[] =
		"Authentication-Results: mx.example; spf=pass\r\n"            /* 0: ours, forged */
		"Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"    /* 1 */
		"Authentication-Results: other.example; dkim=pass\r\n"        /* 2: kept */
		"authentication-results:\r\n"
		" (c) MX.EXAMPLE;\r\n"
		"\tdkim=pass header.d=x\r\n"                                   /* 3: ours, folded */
		"Authentication-Results: \"mx.example\"; none\r\n"            /* 4: ours, quoted */
		"Authentication-Results:\r\n"                                 /* 5: empty */
		"X-Authentication-Results: mx.example; none\r\n"              /* 6: other name */
		"Subject: Authentication-Results: mx.example\r\n"             /* 7 */
		"\r\n"
		"Authentication-Results: mx.example; spf=pass\r\n";           /* body */
	static const int want[] = { 1, 0, 0, 1, 1, 1, 0, 0 };
	struct claims c = { msg, { 0 }, 0 };
	struct hdrscan h;

	hdrscan_init(&h, claim, &c);
	hdrscan_feed(&h, msg, sizeof msg - 1);
	hdrscan_finish(&h);
	assert_int_equal(c.n, (int)NROWS(want));
	for (int i = 0; i < c.n; i++)
		if (c.got[i] != want[i])
			fail_msg("field %d: got %d want %d", i, c.got[i], want[i]);
	assert_true(h.hdr_end < sizeof msg - 1);
}

/* A field's value for the log: the field named, as written, unfolded,
 * cut between UTF-8 characters. */
static void test_value_rows(void **state)
{
	static const struct {
		const char *field; /* whole field, CRLF lines */
		const char *name;
		size_t size;       /* of out */
		int is;
		const char *value;
	} rows[] = {
		{ "Subject: hello\r\n", "Subject", 64, 1, "hello" },
		{ "subject:hello  \t\r\n", "Subject", 64, 1, "hello" },
		{ "SUBJECT \t: hello\r\n", "Subject", 64, 1, "hello" },
		{ "Subject:\r\n  folded\r\n\tvalue\r\n", "Subject", 64, 1, "folded\tvalue" },
		{ "Subject: a\r\n b\r\n", "Subject", 64, 1, "a b" },
		{ "Subject:\r\n", "Subject", 64, 1, "" },
		{ "Subject: =?UTF-8?B?0J/RgNC40LLQtdGC?=\r\n", "Subject", 64, 1, "=?UTF-8?B?0J/RgNC40LLQtdGC?=" },
		{ "Subject: \xd0\x9f\xd1\x80\xd0\xb8\r\n", "Subject", 64, 1, "\xd0\x9f\xd1\x80\xd0\xb8" },
		/* cut to fit: never inside a character */
		{ "Subject: abcdef\r\n", "Subject", 4, 1, "abc" },
		{ "Subject: ab\xd0\x9f\r\n", "Subject", 4, 1, "ab" },
		{ "Subject: a\xe2\x82\xac\r\n", "Subject", 4, 1, "a" },
		{ "Subject: a\xe2\x82\xac" "b\r\n", "Subject", 5, 1, "a\xe2\x82\xac" },
		{ "Subject: \xff\xfe\xfd\r\n", "Subject", 3, 1, "\xff\xfe" },
		{ "Subject: ab  cd\r\n", "Subject", 5, 1, "ab" },
		{ "Message-ID: <a.b@example.org>\r\n", "Message-ID", 64, 1, "<a.b@example.org>" },
		{ "Message-Id:\r\n <x@y>\r\n", "Message-ID", 64, 1, "<x@y>" },
		/* other fields */
		{ "Subjects: x\r\n", "Subject", 64, 0, "" },
		{ "Subjec: x\r\n", "Subject", 64, 0, "" },
		{ "X-Subject: x\r\n", "Subject", 64, 0, "" },
		{ "Subject x\r\n", "Subject", 64, 0, "" },
		{ "Subject", "Subject", 64, 0, "" },
	};
	for (size_t i = 0; i < NROWS(rows); i++) {
		struct hdr_field f = { 0, strlen(rows[i].field), rows[i].field, strlen(rows[i].field), 0 };
		char out[64] = "";
		int is = hdrscan_value(&f, rows[i].name, out, rows[i].size);

		if (is != rows[i].is || strcmp(out, rows[i].value) != 0)
			fail_msg("row %zu: got %d \"%s\"", i, is, out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_long_fields),
		cmocka_unit_test(test_scan_and_claims),
		cmocka_unit_test(test_value_rows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
