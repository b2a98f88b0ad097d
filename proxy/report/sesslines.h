/* sesslines.h - the lines of the sessions that a filter matched, in bounded
 * memory (pure: blocks go to a callback)
 *
 * Every line with a session id goes through here. Until a line of its
 * session matches, it waits in a look-back window of the last
 * REPORT_RING_LINES lines (REPORT_RING_BYTES bytes); when one matches, the
 * session's lines still in the window are taken out, and its lines from
 * then on are held, until its session_end line (or the end of the input)
 * hands the session to the callback as one block, its lines in order.
 * Held lines are bounded too (REPORT_HELD_SESSIONS, REPORT_HELD_BYTES):
 * beyond, the oldest held session is handed over early and its later
 * lines come in a further block. */
#ifndef MOAT_REPORT_SESSLINES_H
#define MOAT_REPORT_SESSLINES_H

#include <stddef.h>
#include <stdint.h>

struct sl_block {
	const char *id;    /* the session id ("" for a line without one) */
	size_t idn;
	const char *lines; /* the log lines, each ending in "\n", as read */
	size_t len;
	int continued;     /* lines of it came in an earlier block */
	int more;          /* handed over before its end: more may follow */
	int lost;          /* lines of it before the match had left the window */
};

typedef void (*sl_emit)(void *arg, const struct sl_block *b);

struct sesslines;

/* NULL out of memory. */
struct sesslines *sesslines_new(sl_emit emit, void *arg);
void sesslines_free(struct sesslines *sl);

/* One line (without its "\n") of session id (idn bytes; 0: none); matched:
 * it passed the filters; end: it is the session's session_end line. */
void sesslines_add(struct sesslines *sl, const char *id, size_t idn, const char *line, size_t len,
                   int matched, int end);

/* The end of the input: every held session is handed over. */
void sesslines_finish(struct sesslines *sl);

/* Counts for the report's notes. */
struct sl_counts {
	uint64_t sessions;  /* sessions matched */
	uint64_t early;     /* blocks handed over early (memory bounds) */
	uint64_t lost;      /* sessions with lines before their match that had left the window */
	uint64_t forgotten; /* held sessions dropped at REPORT_HELD_SESSIONS (their later lines unseen) */
};
void sesslines_counts(const struct sesslines *sl, struct sl_counts *c);

#endif
