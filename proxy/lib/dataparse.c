/* dataparse.c - DATA stream parser (see dataparse.h) */
#include <string.h>

#include "proxy/lib/dataparse.h"

enum {
	ST_BOL,    /* at the start of a line */
	ST_MID,    /* inside a line */
	ST_CR,     /* saw CR, not yet known whether LF follows */
	ST_DOT,    /* saw "." at the start of a line */
	ST_DOT_CR, /* saw "." CR at the start of a line */
};

void data_parser_init(struct data_parser *p)
{
	p->state = ST_BOL;
	p->soft = 0;
	p->bare_lf = 0;
	p->bare_cr = 0;
}

/* A line ended by a bare CR or LF: normalised, and the next line is "soft". */
static void bare_eol(struct data_parser *p, data_emit_fn emit, void *ctx)
{
	emit(ctx, "\r\n", 2);
	p->state = ST_BOL;
	p->soft = 1;
}

/* Where the next CR and LF are: memchr (vectorised in libc) instead of a
 * byte loop, which a profile showed at 8 instructions a byte. Each is
 * searched again only once passed, so a chunk of bare CRs or LFs is still
 * scanned once, not once per line. */
struct eol_cursor {
	size_t cr, lf; /* positions, len when none; valid while >= i */
	int init;
};

static size_t eol_scan(const char *in, size_t i, size_t len, struct eol_cursor *e)
{
	if (!e->init || e->cr < i) {
		const char *p = memchr(in + i, '\r', len - i);

		e->cr = p ? (size_t)(p - in) : len;
	}
	if (!e->init || e->lf < i) {
		const char *p = memchr(in + i, '\n', len - i);

		e->lf = p ? (size_t)(p - in) : len;
	}
	e->init = 1;
	return e->cr < e->lf ? e->cr : e->lf;
}

size_t data_feed(struct data_parser *p, const char *in, size_t len, data_emit_fn emit, void *ctx,
                 int *done)
{
	size_t i = 0;
	struct eol_cursor eol = {0, 0, 0};

	*done = 0;
	while (i < len) {
		char c = in[i];

		switch (p->state) {
		case ST_BOL:
			if (c == '.') {
				p->state = ST_DOT;
				i++;
				continue;
			}
			p->state = ST_MID;
			continue; /* the byte is handled as mid-line */
		case ST_MID: {
			size_t start = i;

			/* Fast path: ordinary CRLF lines go out as they came, in one
			 * span, up to a line that starts with a dot or a bare CR/LF. */
			for (;;) {
				i = eol_scan(in, i, len, &eol);
				if (i + 2 < len && in[i] == '\r' && in[i + 1] == '\n' && in[i + 2] != '.') {
					i += 2;
					p->soft = 0;
					continue;
				}
				break;
			}
			if (i > start)
				emit(ctx, in + start, i - start);
			if (i == len)
				return len;
			if (in[i] == '\r') {
				p->state = ST_CR;
			} else {
				p->bare_lf++;
				bare_eol(p, emit, ctx);
			}
			i++;
			continue;
		}
		case ST_CR:
			if (c == '\n') {
				emit(ctx, "\r\n", 2);
				p->state = ST_BOL;
				p->soft = 0;
				i++;
			} else {
				p->bare_cr++;
				bare_eol(p, emit, ctx); /* c is handled at BOL */
			}
			continue;
		case ST_DOT:
			if (c == '\r') {
				p->state = ST_DOT_CR;
				i++;
			} else if (c == '\n') {
				/* "." ended by a bare LF: data, stuffed. */
				p->bare_lf++;
				emit(ctx, "..", 2);
				bare_eol(p, emit, ctx);
				i++;
			} else {
				emit(ctx, ".", 1);
				p->state = ST_MID;
			}
			continue;
		case ST_DOT_CR:
			if (c == '\n' && !p->soft) {
				*done = 1;
				p->state = ST_BOL; /* counters stay for the log */
				p->soft = 0;
				return i + 1;
			}
			emit(ctx, "..", 2);
			if (c == '\n') {
				/* "." CRLF after a bare line end: data. */
				emit(ctx, "\r\n", 2);
				p->state = ST_BOL;
				p->soft = 0;
				i++;
			} else {
				p->bare_cr++;
				bare_eol(p, emit, ctx);
			}
			continue;
		}
	}
	return len;
}

void data_unstuff(const char *in, size_t len, int *at_bol, data_emit_fn emit, void *ctx)
{
	size_t i = 0;

	while (i < len) {
		size_t start;

		if (*at_bol && in[i] == '.')
			i++; /* the stuffing dot */
		start = i;
		/* One span to the first line that starts with a dot: most
		 * messages have none, so one emit covers the whole chunk. */
		for (;;) {
			const char *lf = memchr(in + i, '\n', len - i);

			i = lf ? (size_t)(lf - in) + 1 : len;
			if (!lf || i == len || in[i] == '.')
				break;
		}
		*at_bol = (i > start && in[i - 1] == '\n');
		if (i > start)
			emit(ctx, in + start, i - start);
	}
}
