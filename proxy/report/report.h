/* report.h - "moat report": moat's JSON log read back for people (see
 * moat(8), REPORTING). report_main is the command; the rest is what its
 * parts share. */
#ifndef MOAT_REPORT_REPORT_H
#define MOAT_REPORT_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "proxy/report/filter.h"
#include "proxy/report/sesslines.h"
#include "proxy/report/stats.h"

/* argv[0] is "report". Returns the exit status: 0; 1 when a filter was
 * given and no line matched; 2 for a usage error or an input that could
 * not be read (whole). */
int report_main(int argc, char **argv);

struct report {
	/* options */
	int json, summary_only;
	const char *html;          /* --html FILE ("-": standard output) */
	size_t top;                /* rows of each top list */
	int64_t since, until;      /* ts >= since, ts < until */
	const char *since_arg, *until_arg;
	struct report_filter filter;
	char *const *files;
	size_t nfiles;
	/* what was read */
	struct report_stats st;
	struct sesslines *sl;      /* with a filter, unless --summary */
	uint64_t matched;          /* decision and rule lines that passed the filters */
	uint64_t input_errors;
	struct sl_counts slc;
};

/* The outputs (report_text.c, report_json.c, report_html.c). */
void report_text(FILE *f, const struct report *r);
void report_text_block(FILE *f, const struct sl_block *b);
void report_json(FILE *f, const struct report *r);
void report_html(FILE *f, const struct report *r);

/* Shared by the outputs (report_common.c). */

/* A top list's rows, highest first: at most max (REPORT_TOP_SHOW_MAX). */
size_t report_rows(const struct report *r, int list, const struct topk_item **rows, size_t max);
/* What a top list counts ("refusals", "would-be refusals", ...). */
const char *report_list_of(const struct report *r, int list);
/* Its title ("Top reasons"). */
const char *report_list_title(int list);
/* A rule key "ID\tFILE:LINE" split. */
void report_rule_parts(const struct topk_item *it, const char **id, size_t *idn, const char **where,
                       size_t *wn);

/* The per-hour series: the top reasons of the refusals (at most
 * REPORT_CHART_REASONS) and, per group of hours, their counts. */
struct hour_series {
	size_t nreasons;
	const struct topk_item *reason[REPORT_CHART_REASONS];
	uint64_t hash[REPORT_CHART_REASONS];
	int64_t first, span;       /* hours */
	int group;                 /* hours per bar */
	size_t nbars;
	int exact;                 /* no hour had more distinct reasons than it counts */
};
/* Set up s for at most max bars. */
void report_series(const struct report *r, struct hour_series *s, size_t max);
/* One bar: its hours' sums. */
struct hour_bar {
	int64_t hour;              /* its first */
	int hours;                 /* hours of it with a line counted */
	uint64_t decisions, refusals, would;
	uint64_t counts[REPORT_CHART_REASONS + 1]; /* by series reason; [nreasons]: the rest */
};
void report_bar(const struct report *r, const struct hour_series *s, size_t i, struct hour_bar *b);
/* "2026-12-07 21:00" */
void report_hour_label(int64_t hour, char *out, size_t size);

/* The notes on what is exact and what is not, one per line (no "\n"). */
#define REPORT_NOTES_MAX 16
#define REPORT_NOTE_MAX 400
size_t report_notes(const struct report *r, char notes[][REPORT_NOTE_MAX], size_t max);

#endif
