/* test_dataparse.c - the DATA stream: end of data, wire form, bare CR/LF, smuggling */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/lib/dataparse.h"

/* A byte string that may hold NUL: the length is taken from the literal. */
struct bytes {
	const char *p;
	size_t n;
};
#define B(lit) { lit, sizeof(lit) - 1 }

/* ---- output collector ---- */

struct out {
	char *p;
	size_t len, cap;
	size_t calls;
};

static void out_reset(struct out *o)
{
	if (o->p == NULL) {
		/* never NULL: memcmp(NULL, x, 0) is undefined */
		o->cap = 64;
		o->p = malloc(o->cap);
		assert_non_null(o->p);
	}
	o->p[0] = '\0';
	o->len = 0;
	o->calls = 0;
}

static void out_free(struct out *o)
{
	free(o->p);
	memset(o, 0, sizeof *o);
}

static void emit_cb(void *ctx, const char *p, size_t n)
{
	struct out *o = ctx;

	if (o->len + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 64;

		while (cap < o->len + n + 1)
			cap *= 2;
		o->p = realloc(o->p, cap);
		assert_non_null(o->p);
		o->cap = cap;
	}
	memcpy(o->p + o->len, p, n);
	o->len += n;
	o->p[o->len] = '\0';
	o->calls++;
}

/* Printable form of a byte string for failure messages. */
static const char *show(const char *p, size_t n)
{
	static char buf[4][512];
	static int which;
	char *b = buf[which++ & 3];
	size_t o = 0;

	for (size_t i = 0; i < n && o + 8 < sizeof buf[0]; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\r')
			o += (size_t)sprintf(b + o, "\\r");
		else if (c == '\n')
			o += (size_t)sprintf(b + o, "\\n");
		else if (c < 0x20 || c >= 0x7f || c == '\\')
			o += (size_t)sprintf(b + o, "\\x%02x", c);
		else
			b[o++] = (char)c;
	}
	if (o + 8 >= sizeof buf[0])
		o += (size_t)sprintf(b + o, "...");
	b[o] = '\0';
	return b;
}

/* ---- feeding helpers ---- */

struct result {
	struct out out;
	size_t consumed;
	int done;
	int fed_after_done; /* a chunk was fed after done: never, we stop */
	unsigned long bare_lf, bare_cr;
};

/* Feed in[0..len) cut at the sorted positions cuts[0..ncuts), stopping at
 * the end of data as a session does. Checks the per-call contract: a call
 * that does not find the end consumes its whole chunk. */
static void feed_cuts(const char *in, size_t len, const size_t *cuts, size_t ncuts,
                      struct result *r)
{
	struct data_parser p;
	size_t prev = 0;

	data_parser_init(&p);
	out_reset(&r->out);
	r->consumed = 0;
	r->done = 0;
	for (size_t k = 0; k <= ncuts && !r->done; k++) {
		size_t end = k < ncuts ? cuts[k] : len;
		size_t used;
		int done = -1;

		used = data_feed(&p, in + prev, end - prev, emit_cb, &r->out, &done);
		if (done != 0 && done != 1)
			fail_msg("done not set to 0/1 (%d) for %s", done, show(in, len));
		if (!done && used != end - prev)
			fail_msg("consumed %zu of a %zu-byte chunk without end of data: %s", used,
			         end - prev, show(in, len));
		if (used > end - prev)
			fail_msg("consumed more than given: %s", show(in, len));
		r->consumed += used;
		r->done = done;
		prev = end;
	}
	r->bare_lf = p.bare_lf;
	r->bare_cr = p.bare_cr;
}

static void feed_once(const char *in, size_t len, struct result *r)
{
	feed_cuts(in, len, NULL, 0, r);
}

static void assert_same(const struct result *a, const struct result *b, const char *in,
                        size_t len, const char *how)
{
	if (a->done != b->done || a->consumed != b->consumed || a->out.len != b->out.len ||
	    memcmp(a->out.p, b->out.p, a->out.len) != 0)
		fail_msg("%s differs from one-shot for \"%s\": done %d/%d consumed %zu/%zu out \"%s\" vs \"%s\"",
		         how, show(in, len), b->done, a->done, b->consumed, a->consumed,
		         show(b->out.p, b->out.len), show(a->out.p, a->out.len));
}

/* Every split of the input into 2 and (for short inputs) 3 chunks, and
 * byte-by-byte feeding, must give exactly what one call gives. */
static void check_all_splits(const char *in, size_t len, const struct result *once)
{
	struct result r = { 0 };
	size_t cuts[2];

	for (size_t i = 0; i <= len; i++) {
		cuts[0] = i;
		feed_cuts(in, len, cuts, 1, &r);
		assert_same(once, &r, in, len, "2-chunk split");
	}
	if (len <= 160) {
		for (size_t i = 0; i <= len; i++)
			for (size_t j = i; j <= len; j++) {
				cuts[0] = i;
				cuts[1] = j;
				feed_cuts(in, len, cuts, 2, &r);
				assert_same(once, &r, in, len, "3-chunk split");
			}
	}
	{
		size_t *bb = malloc((len + 1) * sizeof *bb);

		assert_non_null(bb);
		for (size_t i = 0; i < len; i++)
			bb[i] = i + 1;
		feed_cuts(in, len, bb, len ? len - 1 : 0, &r);
		assert_same(once, &r, in, len, "byte-by-byte");
		free(bb);
	}
	out_free(&r.out);
}

/* ---- independent reference model ----
 * Lines end with CRLF, a bare LF, or a bare CR (a CR not followed by LF).
 * A line "." ended by CRLF, whose previous line end (if any) was CRLF, ends
 * the data. Any other line comes out + CRLF; a "." line comes out "..".
 * An unterminated last line: a trailing CR is pending, a lone "." is pending,
 * anything else is emitted. */
struct model {
	struct out out;
	size_t consumed;
	int done;
	unsigned long bare_lf, bare_cr;
};

static void model_run(const char *in, size_t len, struct model *m)
{
	size_t i = 0;
	int soft = 0;

	out_reset(&m->out);
	m->done = 0;
	m->bare_lf = m->bare_cr = 0;
	while (i < len) {
		size_t s = i, e;
		int crlf = 0, bare = 0;

		while (i < len && in[i] != '\r' && in[i] != '\n')
			i++;
		e = i;
		if (i == len) {
			/* unterminated */
			if (!(e - s == 1 && in[s] == '.') && e > s)
				emit_cb(&m->out, in + s, e - s);
			break;
		}
		if (in[i] == '\n') {
			bare = 1;
			m->bare_lf++;
			i++;
		} else if (i + 1 < len && in[i + 1] == '\n') {
			crlf = 1;
			i += 2;
		} else if (i + 1 < len) {
			bare = 1;
			m->bare_cr++;
			i++;
		} else {
			/* a CR at the very end: pending */
			if (!(e - s == 1 && in[s] == '.') && e > s)
				emit_cb(&m->out, in + s, e - s);
			i = len;
			break;
		}
		if (e - s == 1 && in[s] == '.') {
			if (crlf && !soft) {
				m->done = 1;
				break;
			}
			emit_cb(&m->out, "..", 2);
		} else if (e > s) {
			emit_cb(&m->out, in + s, e - s);
		}
		emit_cb(&m->out, "\r\n", 2);
		soft = bare;
	}
	m->consumed = i;
}

/* The output may never hold a line that is exactly "." in wire form, and
 * every CR in it is followed by LF and every LF preceded by CR. */
static void check_output_invariants(const char *in, size_t len, const struct out *o)
{
	for (size_t k = 0; k < o->len; k++) {
		if (o->p[k] == '\r' && (k + 1 >= o->len || o->p[k + 1] != '\n'))
			fail_msg("bare CR in output at %zu for \"%s\": \"%s\"", k, show(in, len),
			         show(o->p, o->len));
		if (o->p[k] == '\n' && (k == 0 || o->p[k - 1] != '\r'))
			fail_msg("bare LF in output at %zu for \"%s\": \"%s\"", k, show(in, len),
			         show(o->p, o->len));
		if (o->p[k] == '.' && (k == 0 || o->p[k - 1] == '\n') && k + 2 < o->len &&
		    o->p[k + 1] == '\r' && o->p[k + 2] == '\n')
			fail_msg("a \".\" line in output for \"%s\": \"%s\"", show(in, len),
			         show(o->p, o->len));
	}
}

/* ---- well-formed messages come out byte for byte ---- */

static const struct bytes wf_bodies[] = {
	B(""),
	B("\r\n"),
	B("\r\n\r\n\r\n"),
	B("Subject: hi\r\n\r\nHello\r\n"),
	B("..\r\n"),             /* a stuffed lone dot */
	B("...\r\n"),
	B("..x\r\n.. \r\n"),
	B(".x\r\n"),             /* an unstuffed leading dot: kept as sent */
	B(". \r\n"),
	B(".\t\r\n"),
	B("a.\r\n.b\r\n"),
	B("From: a\r\n..\r\n..\r\nend\r\n"),
	B("\r\n..\r\n\r\n"),
	B("a\r\n.a.\r\n"),
	B("x. \r\n .\r\n"),
	B("\x00\x01\xff\x80\r\n"),
	B("a\tb\x7f\r\n"),
	B(".\x00\r\n"),
	B("\xc3\xa9t\xc3\xa9\r\n.\xc3\xa9\r\n"),
	B("line\r\n\r\n..\r\n...\r\n....\r\n"),
};

static const struct bytes wf_tails[] = {
	B(""),
	B("QUIT\r\n"),
	B(".\r\n"),                  /* the next message ends at once: not ours */
	B("\n"),
	B("\r\n.\r\n"),
	B("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"),
};

static void test_wellformed_identical(void **state)
{
	struct result once = { 0 };
	char in[512];

	for (size_t b = 0; b < sizeof wf_bodies / sizeof wf_bodies[0]; b++) {
		for (size_t t = 0; t < sizeof wf_tails / sizeof wf_tails[0]; t++) {
			const struct bytes *body = &wf_bodies[b], *tail = &wf_tails[t];
			size_t len = 0;

			memcpy(in, body->p, body->n), len += body->n;
			memcpy(in + len, ".\r\n", 3), len += 3;
			memcpy(in + len, tail->p, tail->n), len += tail->n;

			feed_once(in, len, &once);
			if (!once.done)
				fail_msg("body %zu tail %zu: end not found in \"%s\"", b, t, show(in, len));
			if (once.consumed != body->n + 3)
				fail_msg("body %zu tail %zu: consumed %zu, want %zu (\"%s\")", b, t,
				         once.consumed, body->n + 3, show(in, len));
			if (once.out.len != body->n || memcmp(once.out.p, body->p, body->n) != 0)
				fail_msg("body %zu: \"%s\" came out as \"%s\"", b, show(body->p, body->n),
				         show(once.out.p, once.out.len));
			check_all_splits(in, len, &once);
		}
	}
	out_free(&once.out);
}

/* Without the terminator: the whole input is consumed and comes out. */
static void test_wellformed_unterminated(void **state)
{
	struct result once = { 0 };

	for (size_t b = 0; b < sizeof wf_bodies / sizeof wf_bodies[0]; b++) {
		const struct bytes *body = &wf_bodies[b];

		feed_once(body->p, body->n, &once);
		assert_int_equal(once.done, 0);
		assert_int_equal(once.consumed, body->n);
		if (once.out.len != body->n || memcmp(once.out.p, body->p, body->n) != 0)
			fail_msg("body %zu: \"%s\" came out as \"%s\"", b, show(body->p, body->n),
			         show(once.out.p, once.out.len));
		check_all_splits(body->p, body->n, &once);
	}
	out_free(&once.out);
}

/* A long line and a large message, split at a sample of points. */
static void test_wellformed_large(void **state)
{
	size_t n = 0, cap = 300000;
	char *in = malloc(cap);
	struct result once = { 0 }, r = { 0 };

	assert_non_null(in);
	memset(in, 'x', 5000), n = 5000;
	memcpy(in + n, "\r\n", 2), n += 2;
	for (int i = 0; n + 100 < cap - 16; i++) {
		n += (size_t)snprintf(in + n, cap - n, "%sline %d with some text\r\n",
		                      i % 7 == 0 ? ".." : i % 11 == 0 ? "." : "", i);
	}
	size_t body = n;
	memcpy(in + n, ".\r\nQUIT\r\n", 9), n += 9;

	feed_once(in, n, &once);
	assert_int_equal(once.done, 1);
	assert_int_equal(once.consumed, body + 3);
	assert_int_equal(once.out.len, body);
	assert_memory_equal(once.out.p, in, body);
	for (size_t step = 1; step < n; step = step * 3 + 1) {
		size_t cuts[64], nc = 0;

		for (size_t c = step; c < n && nc < 64; c += step * 13 + 7)
			cuts[nc++] = c;
		feed_cuts(in, n, cuts, nc, &r);
		assert_same(&once, &r, in, 40, "sampled split");
	}
	out_free(&once.out);
	out_free(&r.out);
	free(in);
}

/* ---- bare CR / LF, smuggling, end detection: explicit expectations ---- */

#define ALL ((size_t)-1)
static const struct {
	struct bytes in;
	struct bytes out;
	size_t consumed; /* ALL: the whole input */
	int done;
	unsigned long bare_lf, bare_cr;
} rows[] = {
	/* end of data, pipelined bytes after it stay unread */
	{ B(".\r\n"), B(""), 3, 1, 0, 0 },
	{ B(".\r\nQUIT\r\n"), B(""), 3, 1, 0, 0 },
	{ B(".\r\n.\r\n"), B(""), 3, 1, 0, 0 },
	{ B("\r\n.\r\n"), B("\r\n"), 5, 1, 0, 0 },
	{ B("a\r\n.\r\nMAIL FROM:<x@y>\r\n"), B("a\r\n"), 6, 1, 0, 0 },
	{ B("a\r\n.\r\n\n.\n"), B("a\r\n"), 6, 1, 0, 0 },
	{ B(". \r\n.\r\n"), B(". \r\n"), 7, 1, 0, 0 },
	/* normalisation of bare line ends */
	{ B("a\nb\r\n.\r\n"), B("a\r\nb\r\n"), ALL, 1, 1, 0 },
	{ B("a\rb\r\n.\r\n"), B("a\r\nb\r\n"), ALL, 1, 0, 1 },
	{ B("a\n\nb\r\n"), B("a\r\n\r\nb\r\n"), ALL, 0, 2, 0 },
	{ B("a\r\rb\r\n"), B("a\r\n\r\nb\r\n"), ALL, 0, 0, 2 },
	{ B("\n"), B("\r\n"), ALL, 0, 1, 0 },
	{ B("\r"), B(""), ALL, 0, 0, 0 },            /* CR pending: LF may follow */
	{ B("\r\r"), B("\r\n"), ALL, 0, 0, 1 },
	{ B("a\r"), B("a"), ALL, 0, 0, 0 },
	{ B("a\r\r\n.\r\n"), B("a\r\n\r\n"), ALL, 1, 0, 1 }, /* real CRLF before "." */
	{ B("a\n\r\n.\r\n"), B("a\r\n\r\n"), ALL, 1, 1, 0 },
	{ B("..\n"), B("..\r\n"), ALL, 0, 1, 0 },
	{ B("a\n.b\r\n"), B("a\r\n.b\r\n"), ALL, 0, 1, 0 },
	{ B("a\r.b\r\n"), B("a\r\n.b\r\n"), ALL, 0, 0, 1 },
	/* smuggling: a "." line reached or ended by a bare LF/CR is data */
	{ B("\n.\n"), B("\r\n..\r\n"), ALL, 0, 2, 0 },
	{ B("\n.\r\n"), B("\r\n..\r\n"), ALL, 0, 1, 0 },
	{ B("\r\n.\n"), B("\r\n..\r\n"), ALL, 0, 1, 0 },
	{ B("\r.\rX"), B("\r\n..\r\nX"), ALL, 0, 0, 2 },
	{ B("\r.\r"), B("\r\n"), ALL, 0, 0, 1 },     /* the last CR is pending */
	{ B("\r\n.\rX"), B("\r\n..\r\nX"), ALL, 0, 0, 1 },
	{ B("\r\n.\r\r\n"), B("\r\n..\r\n\r\n"), ALL, 0, 0, 1 },
	{ B(".\r\r\n"), B("..\r\n\r\n"), ALL, 0, 0, 1 },
	{ B(".\r\r\n.\r\n"), B("..\r\n\r\n"), ALL, 1, 0, 1 },
	{ B(".\n"), B("..\r\n"), ALL, 0, 1, 0 },
	{ B(".\nMAIL FROM:<x@y>\r\n"), B("..\r\nMAIL FROM:<x@y>\r\n"), ALL, 0, 1, 0 },
	{ B(".\rX"), B("..\r\nX"), ALL, 0, 0, 1 },
	{ B(".\r.\r\n"), B("..\r\n..\r\n"), ALL, 0, 0, 1 },
	{ B("a\n.\nb\r\n.\r\n"), B("a\r\n..\r\nb\r\n"), ALL, 1, 2, 0 },
	{ B("a\n.\r\nb\r\n.\r\n"), B("a\r\n..\r\nb\r\n"), ALL, 1, 1, 0 },
	{ B("a\r\n.\nb\r\n.\r\n"), B("a\r\n..\r\nb\r\n"), ALL, 1, 1, 0 },
	{ B("a\r.\rb\r\n.\r\n"), B("a\r\n..\r\nb\r\n"), ALL, 1, 0, 2 },
	{ B("a\r\n.\rb\r\n.\r\n"), B("a\r\n..\r\nb\r\n"), ALL, 1, 0, 1 },
	{ B("a\r.\r\nb\r\n.\r\n"), B("a\r\n..\r\nb\r\n"), ALL, 1, 0, 1 },
	{ B("a\n.\rb\r\n.\r\n"), B("a\r\n..\r\nb\r\n"), ALL, 1, 1, 1 },
	{ B("a\r.\nb\r\n.\r\n"), B("a\r\n..\r\nb\r\n"), ALL, 1, 1, 1 },
	{ B("a\n.\n.\r\n"), B("a\r\n..\r\n..\r\n"), ALL, 0, 2, 0 },
	{ B("a\n\n.\r\n"), B("a\r\n\r\n..\r\n"), ALL, 0, 2, 0 },
	{ B("a\n.\r\n.\r\n"), B("a\r\n..\r\n"), ALL, 1, 1, 0 },
	{ B("a\r\n\n.\r\nMAIL FROM:<evil@x>\r\n"), B("a\r\n\r\n..\r\nMAIL FROM:<evil@x>\r\n"), ALL, 0, 1, 0 },
	{ B("a\r\n.\nMAIL FROM:<evil@x>\r\n"), B("a\r\n..\r\nMAIL FROM:<evil@x>\r\n"), ALL, 0, 1, 0 },
	{ B("a\r\n.\rMAIL FROM:<evil@x>\r\n"), B("a\r\n..\r\nMAIL FROM:<evil@x>\r\n"), ALL, 0, 0, 1 },
	{ B("a\r\r.\r\r\n"), B("a\r\n\r\n..\r\n\r\n"), ALL, 0, 0, 3 },
	/* partial: a "." at the start of a line is held until we know */
	{ B("a\r\n."), B("a\r\n"), ALL, 0, 0, 0 },
	{ B("a\r\n.\r"), B("a\r\n"), ALL, 0, 0, 0 },
	{ B("."), B(""), ALL, 0, 0, 0 },
	{ B(".x"), B(".x"), ALL, 0, 0, 0 },
	{ B("a\r\n.\x00\r\n"), B("a\r\n.\x00\r\n"), ALL, 0, 0, 0 },
	{ B(""), B(""), 0, 0, 0, 0 },
};

static void test_rows(void **state)
{
	struct result once = { 0 };
	struct model m = { 0 };

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		const char *in = rows[i].in.p;
		size_t len = rows[i].in.n;
		size_t want = rows[i].consumed == ALL ? len : rows[i].consumed;

		feed_once(in, len, &once);
		if (once.done != rows[i].done || once.consumed != want ||
		    once.out.len != rows[i].out.n || memcmp(once.out.p, rows[i].out.p, once.out.len) != 0)
			fail_msg("row %zu \"%s\": done %d consumed %zu out \"%s\"; want done %d consumed %zu out \"%s\"",
			         i, show(in, len), once.done, once.consumed, show(once.out.p, once.out.len),
			         rows[i].done, want, show(rows[i].out.p, rows[i].out.n));
		check_output_invariants(in, len, &once.out);
		check_all_splits(in, len, &once);
		/* the test's model agrees with the table (keeps the fuzz-style check honest) */
		model_run(in, len, &m);
		if (m.done != rows[i].done || m.consumed != want || m.out.len != rows[i].out.n ||
		    memcmp(m.out.p, rows[i].out.p, m.out.len) != 0 || m.bare_lf != rows[i].bare_lf ||
		    m.bare_cr != rows[i].bare_cr)
			fail_msg("model disagrees with row %zu", i);
	}
	out_free(&once.out);
	out_free(&m.out);
}

/* Counters, read while the message is still open (before the final LF of a
 * terminator). */
static void test_counters_before_end(void **state)
{
	struct result r = { 0 };

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		size_t len = rows[i].consumed == ALL ? rows[i].in.n : rows[i].consumed;

		if (rows[i].done)
			len--; /* stop on the terminator's LF */
		feed_once(rows[i].in.p, len, &r);
		assert_int_equal(r.done, 0);
		if (r.bare_lf != rows[i].bare_lf || r.bare_cr != rows[i].bare_cr)
			fail_msg("row %zu \"%s\": bare_lf %lu bare_cr %lu, want %lu %lu", i,
			         show(rows[i].in.p, rows[i].in.n), r.bare_lf, r.bare_cr,
			         rows[i].bare_lf, rows[i].bare_cr);
	}
	out_free(&r.out);
}

/* The counters are "for the log", and the session logs them after the end
 * of data was found (session.c log_txn at stage "data"): they must still hold
 * the message's counts once data_feed has reported done. */
static void test_counters_survive_end(void **state)
{
	struct result r = { 0 };
	char msg[1024] = "";
	int bad = 0;

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		if (!rows[i].done || (rows[i].bare_lf == 0 && rows[i].bare_cr == 0))
			continue;
		feed_once(rows[i].in.p, rows[i].in.n, &r);
		if (r.done != 1 || r.bare_lf != rows[i].bare_lf || r.bare_cr != rows[i].bare_cr) {
			if (!bad++)
				snprintf(msg, sizeof msg,
				         "row %zu \"%s\": after end of data bare_lf %lu bare_cr %lu, want %lu %lu",
				         i, show(rows[i].in.p, rows[i].in.n), r.bare_lf, r.bare_cr,
				         rows[i].bare_lf, rows[i].bare_cr);
		}
	}
	out_free(&r.out);
	if (bad)
		fail_msg("%d rows lose their counts at the end of data; first: %s", bad, msg);
}

static void test_empty_feed(void **state)
{
	struct data_parser p;
	struct out o = { 0 };
	int done = 7;

	data_parser_init(&p);
	assert_int_equal(data_feed(&p, "", 0, emit_cb, &o, &done), 0);
	assert_int_equal(done, 0);
	assert_int_equal(o.calls, 0);
	/* an empty chunk in the middle of a terminator changes nothing */
	assert_int_equal(data_feed(&p, "x\r\n.\r", 5, emit_cb, &o, &done), 5);
	assert_int_equal(data_feed(&p, "", 0, emit_cb, &o, &done), 0);
	assert_int_equal(done, 0);
	assert_int_equal(data_feed(&p, "\nQUIT\r\n", 7, emit_cb, &o, &done), 1);
	assert_int_equal(done, 1);
	assert_int_equal(o.len, 3);
	assert_memory_equal(o.p, "x\r\n", 3);
	out_free(&o);
}

/* ---- random inputs against the model and the invariants ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

static void test_random_vs_model(void **state)
{
	static const char alpha[] = { 'a', '.', '\r', '\n', '.', '\r', '\n', '\0' };
	struct result once = { 0 }, r = { 0 };
	struct model m = { 0 };
	char in[48];

	for (int iter = 0; iter < 200000; iter++) {
		size_t len = rnd() % sizeof in;
		size_t cuts[2];

		for (size_t k = 0; k < len; k++)
			in[k] = alpha[rnd() % sizeof alpha];
		feed_once(in, len, &once);
		model_run(in, len, &m);
		if (once.done != m.done || once.consumed != m.consumed || once.out.len != m.out.len ||
		    memcmp(once.out.p, m.out.p, m.out.len) != 0)
			fail_msg("\"%s\": parser done %d consumed %zu out \"%s\"; model done %d consumed %zu out \"%s\"",
			         show(in, len), once.done, once.consumed, show(once.out.p, once.out.len),
			         m.done, m.consumed, show(m.out.p, m.out.len));
		if (!once.done && (once.bare_lf != m.bare_lf || once.bare_cr != m.bare_cr))
			fail_msg("\"%s\": counters %lu/%lu, model %lu/%lu", show(in, len), once.bare_lf,
			         once.bare_cr, m.bare_lf, m.bare_cr);
		check_output_invariants(in, len, &once.out);
		if (once.done) {
			/* stops right after "." CRLF, preceded by CRLF or at the start */
			size_t c = once.consumed;

			assert_true(c >= 3 && memcmp(in + c - 3, ".\r\n", 3) == 0);
			assert_true(c == 3 || (c >= 5 && memcmp(in + c - 5, "\r\n", 2) == 0));
		}
		cuts[0] = len ? rnd() % (len + 1) : 0;
		cuts[1] = cuts[0] + (len - cuts[0] ? rnd() % (len - cuts[0] + 1) : 0);
		feed_cuts(in, len, cuts, 2, &r);
		assert_same(&once, &r, in, len, "random 3-chunk split");
	}
	out_free(&once.out);
	out_free(&r.out);
	out_free(&m.out);
}

/* ---- data_unstuff ---- */

static const struct {
	struct bytes in;
	int bol_in;
	struct bytes out;
	int bol_out;
} un_rows[] = {
	{ B(""), 1, B(""), 1 },
	{ B(""), 0, B(""), 0 },
	{ B("abc\r\n"), 1, B("abc\r\n"), 1 },
	{ B("abc"), 1, B("abc"), 0 },
	{ B("..\r\n"), 1, B(".\r\n"), 1 },
	{ B("..x\r\n...\r\n") , 1, B(".x\r\n..\r\n"), 1 },
	{ B(".x\r\n"), 0, B(".x\r\n"), 1 },
	{ B(".x\r\n"), 1, B("x\r\n"), 1 },
	{ B("a\r\n.b\r\n."), 1, B("a\r\nb\r\n"), 0 },
	{ B("."), 1, B(""), 0 },
	{ B("."), 0, B("."), 0 },
	{ B("\r\n\r\n"), 1, B("\r\n\r\n"), 1 },
	{ B("x.\r\n.\r\n"), 1, B("x.\r\n\r\n"), 1 },
	{ B("a.b\r\n..c.\r\n"), 1, B("a.b\r\n.c.\r\n"), 1 },
	{ B("\r\n..\r\nb\r\n"), 1, B("\r\n.\r\nb\r\n"), 1 },
	{ B("..\x00\r\n"), 1, B(".\x00\r\n"), 1 },
};

struct un_result {
	struct out out;
	int bol;
};

static void unstuff_cuts(const char *in, size_t len, int bol, const size_t *cuts, size_t nc,
                         struct un_result *r)
{
	size_t prev = 0;

	out_reset(&r->out);
	r->bol = bol;
	for (size_t k = 0; k <= nc; k++) {
		size_t end = k < nc ? cuts[k] : len;

		data_unstuff(in + prev, end - prev, &r->bol, emit_cb, &r->out);
		prev = end;
	}
}

static void test_unstuff_rows(void **state)
{
	struct un_result once = { 0 }, r = { 0 };

	for (size_t i = 0; i < sizeof un_rows / sizeof un_rows[0]; i++) {
		const char *in = un_rows[i].in.p;
		size_t len = un_rows[i].in.n;

		unstuff_cuts(in, len, un_rows[i].bol_in, NULL, 0, &once);
		if (once.out.len != un_rows[i].out.n ||
		    memcmp(once.out.p, un_rows[i].out.p, once.out.len) != 0 || once.bol != un_rows[i].bol_out)
			fail_msg("row %zu \"%s\" bol %d: out \"%s\" bol %d; want \"%s\" bol %d", i,
			         show(in, len), un_rows[i].bol_in, show(once.out.p, once.out.len), once.bol,
			         show(un_rows[i].out.p, un_rows[i].out.n), un_rows[i].bol_out);
		/* any chunking gives the same text and the same final state */
		for (size_t a = 0; a <= len; a++)
			for (size_t b = a; b <= len; b++) {
				size_t cuts[2] = { a, b };

				unstuff_cuts(in, len, un_rows[i].bol_in, cuts, 2, &r);
				if (r.out.len != once.out.len || memcmp(r.out.p, once.out.p, r.out.len) != 0 ||
				    r.bol != once.bol)
					fail_msg("row %zu split %zu/%zu: \"%s\" bol %d", i, a, b,
					         show(r.out.p, r.out.len), r.bol);
			}
	}
	out_free(&once.out);
	out_free(&r.out);
}

/* data_feed then data_unstuff gives the content: for well-formed input the
 * client's unstuffed text, and a smuggled "." line is content ".". */
static void test_feed_then_unstuff(void **state)
{
	static const struct {
		struct bytes in;
		struct bytes content;
	} rt[] = {
		{ B("..x\r\nb\r\n.\r\n"), B(".x\r\nb\r\n") },
		{ B("..\r\n.\r\n"), B(".\r\n") },
		{ B("a\r\n.\nb\r\n.\r\n"), B("a\r\n.\r\nb\r\n") },
		{ B("a\n.\r\nb\r\n.\r\n"), B("a\r\n.\r\nb\r\n") },
		{ B("a\r.\rb\r\n.\r\n"), B("a\r\n.\r\nb\r\n") },
		{ B(".\nMAIL FROM:<e@x>\r\n.\r\n"), B(".\r\nMAIL FROM:<e@x>\r\n") },
	};
	struct result f = { 0 };
	struct un_result u = { 0 };

	for (size_t i = 0; i < sizeof rt / sizeof rt[0]; i++) {
		feed_once(rt[i].in.p, rt[i].in.n, &f);
		assert_int_equal(f.done, 1);
		unstuff_cuts(f.out.p, f.out.len, 1, NULL, 0, &u);
		if (u.out.len != rt[i].content.n || memcmp(u.out.p, rt[i].content.p, u.out.len) != 0)
			fail_msg("rt %zu: content \"%s\"", i, show(u.out.p, u.out.len));
		assert_int_equal(u.bol, 1);
	}
	out_free(&f.out);
	out_free(&u.out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wellformed_identical),
		cmocka_unit_test(test_wellformed_unterminated),
		cmocka_unit_test(test_wellformed_large),
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_counters_before_end),
		cmocka_unit_test(test_counters_survive_end),
		cmocka_unit_test(test_empty_feed),
		cmocka_unit_test(test_random_vs_model),
		cmocka_unit_test(test_unstuff_rows),
		cmocka_unit_test(test_feed_then_unstuff),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
