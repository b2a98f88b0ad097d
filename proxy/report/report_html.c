/* report_html.c - the report as one HTML page: no script, no font, nothing
 * fetched; the charts are inline SVG (svg.c) */
#include <string.h>

#include "proxy/report/outfmt.h"
#include "proxy/report/report.h"
#include "proxy/report/rtime.h"
#include "proxy/report/svg.h"


static const char style[] =
	"body{font:14px/1.45 sans-serif;margin:24px auto;max-width:1000px;color:#222;background:#fff}\n"
	"h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid #ddd}\n"
	"table{border-collapse:collapse;margin:8px 0}td,th{padding:3px 10px;text-align:right;"
	"border-bottom:1px solid #eee}\n"
	"th{background:#f4f4f4}td.l,th.l{text-align:left}.meta,.note{color:#555}\n"
	"figure{margin:16px 0}figcaption{font-weight:600;margin-bottom:4px}\n"
	".legend span{display:inline-block;margin:2px 14px 2px 0}.sw{display:inline-block;width:11px;"
	"height:11px;margin-right:5px;vertical-align:-1px}\n"
	"svg text{font:12px sans-serif;fill:#222}\n";

static void count(FILE *f, uint64_t v)
{
	char num[32];

	fmt_count(v, num, sizeof num);
	fputs(num, f);
}

static void head(FILE *f, const struct report *r)
{
	const struct report_stats *st = &r->st;
	char t1[32] = "", t2[32] = "", size[32];

	if (st->first_ts <= st->last_ts) {
		rtime_format(st->first_ts, t1, sizeof t1);
		rtime_format(st->last_ts, t2, sizeof t2);
	}
	fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	        "<meta name=\"viewport\" content=\"width=device-width\">\n<title>moat report %s to %s</title>\n"
	        "<style>\n%s</style></head>\n<body>\n<h1>moat report</h1>\n<p class=\"meta\" id=\"meta\">",
	        t1, t2, style);
	if (t1[0])
		fprintf(f, "Decisions from %s to %s. ", t1, t2);
	fmt_bytes(st->bytes, size, sizeof size);
	count(f, st->lines);
	fprintf(f, " lines (%s) read; skipped: ", size);
	count(f, st->malformed);
	fputs(" malformed, ", f);
	count(f, st->foreign);
	fputs(" not moat's, ", f);
	count(f, st->out_of_range);
	fputs(" outside the period.", f);
	if (r->filter.any) {
		fputs(" Filter: ", f);
		count(f, r->matched);
		fputs(" matching decision and rule lines.", f);
	}
	fputs("</p>\n", f);
}

static void totals(FILE *f, const struct report *r)
{
	const struct report_stats *st = &r->st;
	int used[ACT_COUNT];

	fputs("<section id=\"totals\"><h2>Decisions</h2>\n<table id=\"by-stage\"><tr><th class=\"l\">stage</th>", f);
	for (int k = 0; k < ACT_COUNT; k++)
		if ((used[k] = st->by_action[k] > 0))
			fprintf(f, "<th>%s</th>", stats_action_names[k]);
	fputs("<th>total</th></tr>\n", f);
	for (int s = 0; s <= ST_COUNT; s++) {
		const uint64_t *row = s < ST_COUNT ? st->by_stage[s] : st->by_action;
		uint64_t sum = 0;

		for (int k = 0; k < ACT_COUNT; k++)
			sum += row[k];
		if (s < ST_COUNT && !sum)
			continue;
		fprintf(f, "<tr><td class=\"l\">%s</td>", s < ST_COUNT ? stats_stage_names[s] : "<b>total</b>");
		for (int k = 0; k < ACT_COUNT; k++)
			if (used[k])
				fputs("<td>", f), count(f, row[k]), fputs("</td>", f);
		fputs("<td>", f), count(f, sum), fputs("</td></tr>\n", f);
	}
	fputs("</table>\n<p id=\"refusals\">Refusals (reject, tempfail): <b>", f);
	count(f, st->refusals);
	fprintf(f, "</b> (%.1f %% of the decisions).", st->decisions ? 100.0 * st->refusals / st->decisions : 0.0);
	if (st->sessions) {
		fputs(" Sessions: ", f);
		count(f, st->sessions);
		fputs(", messages delivered: ", f);
		count(f, st->messages);
		fputc('.', f);
	}
	fputs(" All totals are exact.</p></section>\n", f);
}

static void legend(FILE *f, const struct hour_series *s)
{
	fputs("<div class=\"legend\">", f);
	for (size_t j = 0; j <= s->nreasons; j++) {
		fprintf(f, "<span><i class=\"sw\" style=\"background:%s\"></i>", svg_color(j, s->nreasons + 1));
		if (j < s->nreasons)
			put_html(f, s->reason[j]->key, s->reason[j]->len);
		else
			fputs("other reasons", f);
		fputs("</span>", f);
	}
	fputs("</div>\n", f);
}

static void hours(FILE *f, const struct report *r)
{
	struct hour_series s;

	report_series(r, &s, REPORT_CHART_BARS);
	fputs("<section id=\"hours\">", f);
	if (s.group > 1)
		fprintf(f, "<h2>Refusals per %d hours (UTC)</h2>\n", s.group);
	else
		fputs("<h2>Refusals per hour (UTC)</h2>\n", f);
	if (!s.nbars || !r->st.refusals) {
		fputs("<p>None.</p>", f);
	} else {
		fputs("<figure id=\"fig-hours\">", f);
		svg_hours(f, r, &s, 0, "chart-hours");
		legend(f, &s);
		fputs("</figure>\n", f);
	}
	if (r->st.would) {
		fputs("<figure id=\"fig-would-hours\"><figcaption>Would-be refusals of monitor mode</figcaption>", f);
		svg_hours(f, r, &s, 1, "chart-would-hours");
		fputs("</figure>\n", f);
	}
	fputs("</section>\n", f);
}

static void figure(FILE *f, const struct report *r, int list)
{
	const struct topk *t = &r->st.top[list];

	fprintf(f, "<figure id=\"fig-%s\" class=\"top\"><figcaption>", stats_top_names[list]);
	put_html(f, report_list_title(list), strlen(report_list_title(list)));
	fputs(" (", f);
	count(f, t->total);
	fprintf(f, " %s counted) ", report_list_of(r, list));
	if (t->replaced) {
		fputs("<span class=\"note\">(approximate: a count is at most ", f);
		count(f, topk_bound(t));
		fputs(" over; the light end of a bar is its error)</span>", f);
	} else {
		fputs("<span class=\"note\">(exact)</span>", f);
	}
	fputs("</figcaption>\n", f);
	if (t->n)
		svg_bars(f, r, list, stats_top_names[list]);
	else
		fputs("<p>None.</p>\n", f);
	fputs("</figure>\n", f);
}

static void monitor_dns(FILE *f, const struct report *r)
{
	const struct report_stats *st = &r->st;

	if (st->would) {
		fputs("<section id=\"monitor\"><h2>Monitor mode: would-be refusals</h2>\n<p>", f);
		count(f, st->would);
		fputs(" decisions would have refused (would-reject ", f);
		count(f, st->by_action[ACT_WREJECT]);
		fputs(", would-tempfail ", f);
		count(f, st->by_action[ACT_WTEMPFAIL]);
		fputs("); nothing was refused for them.</p>\n", f);
		for (int list = TOP_W_REASONS; list <= TOP_W_SENDERS; list++)
			figure(f, r, list);
		fputs("</section>\n", f);
	}
	if (st->dns) {
		fputs("<section id=\"dns\"><h2>DNS temporary failures</h2>\n<p>", f);
		count(f, st->dns);
		fputs(" decisions saw one (they are in the totals too):", f);
		for (int k = 0; k < DNS_COUNT; k++)
			fprintf(f, " %s ", stats_dns_names[k]), count(f, st->dns_by_check[k]), fputs(k + 1 < DNS_COUNT ? "," : ".", f);
		fputs("</p>\n", f);
		figure(f, r, TOP_DNS_NAMES);
		fputs("</section>\n", f);
	}
}

void report_html(FILE *f, const struct report *r)
{
	char notes[REPORT_NOTES_MAX][REPORT_NOTE_MAX];
	size_t n = report_notes(r, notes, REPORT_NOTES_MAX);

	head(f, r);
	totals(f, r);
	hours(f, r);
	fputs("<section id=\"top\"><h2>Top lists</h2>\n", f);
	for (int list = TOP_REASONS; list <= TOP_HELOS; list++)
		figure(f, r, list);
	fputs("</section>\n", f);
	monitor_dns(f, r);
	fputs("<section id=\"notes\"><h2>Notes</h2><ul>\n", f);
	for (size_t i = 0; i < n; i++) {
		fputs("<li>", f);
		put_html(f, notes[i], strlen(notes[i]));
		fputs("</li>\n", f);
	}
	fputs("</ul></section>\n</body></html>\n", f);
}
