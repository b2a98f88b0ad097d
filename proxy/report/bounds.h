/* bounds.h - the limits of "moat report": what it keeps in memory, whatever
 * the size of the log it reads (proxy/lib/bounds.h holds the daemon's) */
#ifndef MOAT_REPORT_BOUNDS_H
#define MOAT_REPORT_BOUNDS_H

/* Bytes read from a file at a time. */
#define REPORT_READ_CHUNK (1024 * 1024)
/* A longer line is not moat's (its lines are at most 4 KiB): counted as
 * malformed and skipped to its end. */
#define REPORT_LINE_MAX (64 * 1024)
/* Nesting of arrays and objects in a line (moat writes none). */
#define REPORT_JSON_DEPTH 32

/* Counters of each top list (Space-Saving): a count is at most
 * items / REPORT_TOP_CAPACITY over the truth; a list with fewer distinct
 * keys than this is exact. */
#define REPORT_TOP_CAPACITY 1024
/* Bytes of a key kept (longer ones are cut at a character): moat cuts its
 * fields at 200 bytes. */
#define REPORT_KEY_MAX 256
/* Rows of each top list shown (--top N): default and most. */
#define REPORT_TOP_SHOW 10
#define REPORT_TOP_SHOW_MAX 100

/* Hours with a count (a leap year's); the refusals of further hours are in
 * the totals and not in the per-hour table (a note says so). */
#define REPORT_HOURS_MAX 8784
/* Reasons counted per hour (Space-Saving of their hashes: exact while an
 * hour has no more distinct reasons than this). */
#define REPORT_HOUR_REASONS 16
/* Reasons stacked in a chart (the top ones; the rest is "other"). */
#define REPORT_CHART_REASONS 7
/* Bars of a per-hour chart: hours are grouped by 2, 3, 4, 6, 12, 24 ...
 * beyond this. */
#define REPORT_CHART_BARS 744

/* Values of one filter option (--client A --client B ...). */
#define REPORT_FILTER_MAX 64

/* Session lines (with a filter): the last lines with a session id are kept
 * in a look-back window, so that the lines of a session before the one
 * that matched are shown too. */
#define REPORT_RING_LINES 65536
#define REPORT_RING_BYTES (16 * 1024 * 1024)
/* Matching sessions' lines are held until the session ends, to print them
 * together; beyond these, the oldest held session is printed early (its
 * later lines follow in another block). */
#define REPORT_HELD_SESSIONS 65536
#define REPORT_HELD_BYTES (64 * 1024 * 1024)

#endif
