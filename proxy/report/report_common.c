/* report_common.c - what the report's outputs share: the top lists' rows
 * and names, the per-hour series, the notes on accuracy */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proxy/report/report.h"
#include "proxy/report/rtime.h"

size_t report_rows(const struct report *r, int list, const struct topk_item **rows, size_t max)
{
	return topk_sorted(&r->st.top[list], rows, max < r->top ? max : r->top);
}

const char *report_list_of(const struct report *r, int list)
{
	if (list >= TOP_W_REASONS && list <= TOP_W_SENDERS)
		return "would-be refusals";
	if (list == TOP_DNS_NAMES)
		return "temporary failures";
	return r->st.focus_all ? "matching lines" : "refusals";
}

const char *report_list_title(int list)
{
	static const char *const titles[TOP_COUNT] = {
		"Top reasons", "Top rules", "Top clients", "Top client networks, /24 and /48",
		"Top sender domains", "Top recipient domains", "Top HELO names", "Top would-be reasons",
		"Top would-be rules", "Top would-be sender domains", "Names whose lookup failed for now"};

	return titles[list];
}

void report_rule_parts(const struct topk_item *it, const char **id, size_t *idn, const char **where,
                       size_t *wn)
{
	const char *tab = memchr(it->key, '\t', it->len);

	*id = it->key;
	*idn = tab ? (size_t)(tab - it->key) : it->len;
	*where = tab ? tab + 1 : it->key + it->len;
	*wn = tab ? it->len - *idn - 1 : 0;
}

void report_hour_label(int64_t hour, char *out, size_t size)
{
	char ts[32];

	rtime_format(hour * RTIME_HOUR_MS, ts, sizeof ts);
	snprintf(out, size, "%.10s %.5s", ts, ts + 11);
}

/* Hours per bar: the first of these, then days, that keeps the bars
 * within max. */
static int group_for(int64_t span, size_t max)
{
	static const int steps[] = {1, 2, 3, 4, 6, 8, 12, 24};
	int64_t days;

	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
		if ((span + steps[i] - 1) / steps[i] <= (int64_t)max)
			return steps[i];
	days = (span + 24 * (int64_t)max - 1) / (24 * (int64_t)max);
	return (int)(days * 24);
}

void report_series(const struct report *r, struct hour_series *s, size_t max)
{
	const struct report_stats *st = &r->st;

	memset(s, 0, sizeof *s);
	s->exact = 1;
	s->nreasons = topk_sorted(&st->top[TOP_REASONS], s->reason, REPORT_CHART_REASONS);
	if (st->focus_all)
		s->nreasons = 0; /* the reasons of the matching lines are not those of the refusals */
	for (size_t i = 0; i < s->nreasons; i++)
		s->hash[i] = stats_reason_hash(st, s->reason[i]->key, s->reason[i]->len);
	if (st->nhours == 0)
		return;
	s->first = st->hours[0].hour;
	s->span = st->hours[st->nhours - 1].hour - s->first + 1;
	s->group = group_for(s->span, max);
	s->nbars = (size_t)((s->span + s->group - 1) / s->group);
	for (size_t i = 0; i < st->nhours; i++)
		s->exact &= !st->hours[i].replaced;
}

void report_bar(const struct report *r, const struct hour_series *s, size_t i, struct hour_bar *b)
{
	const struct report_stats *st = &r->st;

	memset(b, 0, sizeof *b);
	b->hour = s->first + (int64_t)i * s->group;
	for (int64_t h = b->hour; h < b->hour + s->group; h++) {
		long k = idxmap_get(&st->hour_map, (uint64_t)h);
		const struct hour *hr;
		uint64_t named = 0;

		if (k < 0)
			continue;
		hr = &st->hours[k];
		b->hours++;
		b->decisions += hr->decisions;
		b->refusals += hr->refusals;
		b->would += hr->would;
		for (size_t j = 0; j < s->nreasons; j++)
			for (uint32_t q = 0; q < hr->nreasons; q++)
				if (hr->r[q].hash == s->hash[j]) {
					b->counts[j] += hr->r[q].count;
					named += hr->r[q].count;
				}
		b->counts[s->nreasons] += hr->refusals - named;
	}
}

static int add_note(char notes[][REPORT_NOTE_MAX], size_t *n, size_t max, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int add_note(char notes[][REPORT_NOTE_MAX], size_t *n, size_t max, const char *fmt, ...)
{
	va_list ap;

	if (*n >= max)
		return -1;
	va_start(ap, fmt);
	vsnprintf(notes[(*n)++], REPORT_NOTE_MAX, fmt, ap);
	va_end(ap);
	return 0;
}

size_t report_notes(const struct report *r, char notes[][REPORT_NOTE_MAX], size_t max)
{
	const struct report_stats *st = &r->st;
	size_t n = 0;
	int approx = 0;

	for (int i = 0; i < TOP_COUNT; i++)
		approx |= st->top[i].replaced;
	add_note(notes, &n, max, "Totals are exact: every line was counted.");
	add_note(notes, &n, max,
	         "Top lists are kept in bounded memory (Space-Saving, %d counters per list): %s", REPORT_TOP_CAPACITY,
	         approx ? "a list marked approximate may count a key up to its error over the truth "
	                  "(at most 1/1024 of the list's items), never under; any key with more than "
	                  "that share is in it."
	                : "every list here had fewer distinct keys than that, so they are exact.");
	if (st->nhours && st->top[TOP_REASONS].n > 0) {
		struct hour_series s;

		report_series(r, &s, REPORT_CHART_BARS);
		if (!s.exact)
			add_note(notes, &n, max,
			         "Per hour, the refusals are exact; their split by reason is exact for up to %d "
			         "distinct reasons an hour, and approximate (Space-Saving) beyond.",
			         REPORT_HOUR_REASONS);
	}
	if (st->hours_dropped)
		add_note(notes, &n, max, "%llu refusals fell in hours beyond the first %d and are in the totals "
		         "only (narrow the period with --since and --until).",
		         (unsigned long long)st->hours_dropped, REPORT_HOURS_MAX);
	if (r->slc.lost)
		add_note(notes, &n, max, "%llu matching sessions had lines before their match that had left the "
		         "look-back window (%d lines): those are not shown.",
		         (unsigned long long)r->slc.lost, REPORT_RING_LINES);
	if (r->slc.early)
		add_note(notes, &n, max, "%llu sessions were printed in parts to bound memory (%d MB held).",
		         (unsigned long long)r->slc.early, REPORT_HELD_BYTES >> 20);
	if (st->truncated)
		add_note(notes, &n, max, "%llu lines were cut by moat (\"truncated\":true) and are counted as "
		         "they are.", (unsigned long long)st->truncated);
	return n;
}
