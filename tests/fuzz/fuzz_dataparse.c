/* fuzz_dataparse.c - libFuzzer harness for the DATA stream parser
 *
 *   make fuzz-build; build/fuzz/fuzz_dataparse -max_total_time=60 WORKDIR (a copy of tests/fuzz/corpus/dataparse)
 *
 * Input: byte 0 chooses the split point, byte 1 a second one; the rest is
 * the client's DATA stream. Invariants checked (abort on violation):
 *  - the output never holds a line that is exactly "." (no "\r\n.\r\n", and
 *    it does not start with ".\r\n"): the backend cannot see an end of data;
 *  - every LF in the output is preceded by CR, every CR followed by LF;
 *  - feeding in 1, 2, 3 chunks or byte by byte gives the same output, the
 *    same consumed count and the same done flag;
 *  - a call that does not find the end consumes its whole chunk; the end is
 *    found exactly after the first CRLF "." CRLF of the input (or after a
 *    leading "." CRLF), never elsewhere;
 *  - input with no bare CR/LF comes out byte for byte (up to the end).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/lib/dataparse.h"

struct out {
	uint8_t *p;
	size_t len, cap;
};

static void emit_cb(void *ctx, const char *p, size_t n)
{
	struct out *o = ctx;

	if (n == 0)
		return;
	if (o->len + n > o->cap) {
		size_t cap = o->cap ? o->cap : 256;

		while (cap < o->len + n)
			cap *= 2;
		o->p = realloc(o->p, cap);
		if (!o->p)
			abort();
		o->cap = cap;
	}
	memcpy(o->p + o->len, p, n);
	o->len += n;
}

struct run {
	struct out out;
	size_t consumed;
	int done;
};

/* Feed with chunk boundaries at cuts[] (sorted), stopping at the end of data. */
static void run_cuts(const uint8_t *in, size_t len, const size_t *cuts, size_t nc, struct run *r)
{
	struct data_parser p;
	size_t prev = 0;

	data_parser_init(&p);
	r->out.len = 0;
	r->consumed = 0;
	r->done = 0;
	for (size_t k = 0; k <= nc && !r->done; k++) {
		size_t end = k < nc ? cuts[k] : len;
		int done = -1;
		size_t used = data_feed(&p, (const char *)in + prev, end - prev, emit_cb, &r->out, &done);

		if (done != 0 && done != 1)
			abort();
		if (used > end - prev || (!done && used != end - prev))
			abort();
		r->consumed += used;
		r->done = done;
		prev = end;
	}
}

static void same(const struct run *a, const struct run *b)
{
	if (a->done != b->done || a->consumed != b->consumed || a->out.len != b->out.len ||
	    (a->out.len && memcmp(a->out.p, b->out.p, a->out.len) != 0))
		abort();
}

static struct run one, two, three, bytes;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *in;
	size_t len, cut[2];

	if (size < 2)
		return 0;
	in = data + 2;
	len = size - 2;
	cut[0] = len ? (size_t)data[0] * (len + 1) / 256 : 0;
	cut[1] = cut[0] + (len - cut[0]) * (size_t)data[1] / 255;

	run_cuts(in, len, NULL, 0, &one);

	/* output invariants */
	const uint8_t *o = one.out.p;
	size_t n = one.out.len;

	for (size_t k = 0; k < n; k++) {
		if (o[k] == '\r' && (k + 1 >= n || o[k + 1] != '\n'))
			abort(); /* CR not followed by LF */
		if (o[k] == '\n' && (k == 0 || o[k - 1] != '\r'))
			abort(); /* LF not preceded by CR */
		if (o[k] == '.' && (k == 0 || o[k - 1] == '\n') && k + 2 < n && o[k + 1] == '\r' &&
		    o[k + 2] == '\n')
			abort(); /* a wire-form line that is exactly "." */
	}

	/* end of data: exactly after the first CRLF "." CRLF, or "." CRLF
	 * first. A CR followed by LF is always a real CRLF, so the first such
	 * sequence in the input is the end, and nothing else is. */
	{
		size_t want = 0; /* 0: no end in the input */

		if (len >= 3 && memcmp(in, ".\r\n", 3) == 0) {
			want = 3;
		} else {
			const uint8_t *e = len >= 5 ? memmem(in, len, "\r\n.\r\n", 5) : NULL;

			if (e)
				want = (size_t)(e - in) + 5;
		}
		if (want ? !one.done || one.consumed != want : one.done || one.consumed != len)
			abort();
	}

	/* no bare CR/LF in what was consumed: the output is those bytes */
	{
		size_t end = one.done ? one.consumed - 3 : one.consumed;
		int clean = 1;

		for (size_t k = 0; k < end && clean; k++) {
			if (in[k] == '\n' && (k == 0 || in[k - 1] != '\r'))
				clean = 0;
			if (in[k] == '\r' && k + 1 < len && in[k + 1] != '\n')
				clean = 0;
		}
		if (clean) {
			/* not done: a trailing CR, "." or "." CR may still be held back */
			if (one.done) {
				if (n != end || (n && memcmp(o, in, n) != 0))
					abort();
			} else if (n > end || (n && memcmp(o, in, n) != 0)) {
				abort();
			}
		}
	}

	/* chunked feeding equals one-shot feeding */
	run_cuts(in, len, cut, 1, &two);
	same(&one, &two);
	run_cuts(in, len, cut, 2, &three);
	same(&one, &three);
	if (len <= 4096) {
		size_t *bb = malloc((len + 1) * sizeof *bb);

		if (!bb)
			abort();
		for (size_t k = 0; k < len; k++)
			bb[k] = k + 1;
		run_cuts(in, len, bb, len ? len - 1 : 0, &bytes);
		same(&one, &bytes);
		free(bb);
	}
	return 0;
}
