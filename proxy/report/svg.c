/* svg.c - the charts of the report page (see svg.h) */
#include <string.h>

#include "proxy/report/outfmt.h"
#include "proxy/report/rtime.h"
#include "proxy/report/svg.h"

/* Plot area of the per-hour charts. */
#define H_HEIGHT 300
#define H_LEFT 64
#define H_RIGHT 12
#define H_TOP 12
#define H_BOTTOM 44
/* Rows of the bar charts. */
#define B_ROW 24
#define B_LABEL 380     /* pixels for the key */
#define B_LABEL_MAX 56  /* bytes of it shown (all of it in the tooltip) */
#define B_BAR 440       /* pixels for the longest bar */

const char *svg_color(size_t i, size_t nseries)
{
	/* Tableau 10: told apart by most readers, printable */
	static const char *const palette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
	                                      "#edc948", "#b07aa1", "#ff9da7"};

	if (i + 1 == nseries)
		return "#bab0ac";
	return palette[i % (sizeof palette / sizeof palette[0])];
}

/* A round number at or above v: 1, 2 or 5 times a power of ten. */
static uint64_t nice(uint64_t v)
{
	uint64_t p = 1;

	while (p * 10 <= v)
		p *= 10;
	return v <= p ? p : v <= 2 * p ? 2 * p : v <= 5 * p ? 5 * p : 10 * p;
}

static void axes(FILE *f, uint64_t ymax, double pw, double ph)
{
	char num[32];

	for (int t = 0; t <= 4; t++) {
		double y = H_TOP + ph - ph * t / 4;

		fmt_count(ymax * (uint64_t)t / 4, num, sizeof num);
		fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
		        "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
		        H_LEFT, y, H_LEFT + pw, y, H_LEFT - 6, y + 4, num);
	}
}

/* The tooltip of one part of a bar. */
static void part_title(FILE *f, const struct hour_series *s, int64_t hour, const char *what, size_t wn,
                       uint64_t v)
{
	char label[32], num[32];

	report_hour_label(hour, label, sizeof label);
	fmt_count(v, num, sizeof num);
	fprintf(f, "<title>%s%s: ", label, s->group > 1 ? " +" : "");
	put_html(f, what, wn);
	fprintf(f, ": %s</title>", num);
}

static void x_labels(FILE *f, const struct hour_series *s, double bw, double ph)
{
	size_t every = (size_t)(110 / bw) + 1;
	char label[32];

	for (size_t i = 0; i < s->nbars; i += every) {
		report_hour_label(s->first + (int64_t)i * s->group, label, sizeof label);
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">%.5s %.5s</text>\n", H_LEFT + i * bw, H_TOP + ph + 18,
		        label + 5, label + 11);
	}
}

void svg_hours(FILE *f, const struct report *r, const struct hour_series *s, int would, const char *id)
{
	struct hour_bar b;
	uint64_t ymax = 1;
	double pw = SVG_WIDTH - H_LEFT - H_RIGHT, ph = H_HEIGHT - H_TOP - H_BOTTOM, bw;
	size_t nser = would ? 1 : s->nreasons + 1;

	for (size_t i = 0; i < s->nbars; i++) {
		report_bar(r, s, i, &b);
		ymax = (would ? b.would : b.refusals) > ymax ? (would ? b.would : b.refusals) : ymax;
	}
	ymax = nice(ymax);
	bw = pw / (double)(s->nbars ? s->nbars : 1);
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"%s\" width=\"%d\" height=\"%d\" "
	        "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"%s per %d hour%s\">\n", id, SVG_WIDTH, H_HEIGHT,
	        SVG_WIDTH, H_HEIGHT, would ? "would-be refusals" : "refusals", s->group, s->group > 1 ? "s" : "");
	axes(f, ymax, pw, ph);
	for (size_t i = 0; i < s->nbars; i++) {
		double y = H_TOP + ph, x = H_LEFT + (double)i * bw, width = bw > 3 ? bw - 1 : bw;
		uint64_t *counts = b.counts;
		int64_t h;

		report_bar(r, s, i, &b);
		h = b.hour;
		if (would)
			counts[0] = b.would;
		for (size_t j = 0; j < nser; j++) {
			double hh = ph * (double)counts[j] / (double)ymax;
			int other = !would && j == s->nreasons;

			if (!counts[j])
				continue;
			y -= hh;
			fprintf(f, "<rect class=\"bar\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\">",
			        x, y, width, hh, would ? SVG_WOULD_COLOR : svg_color(j, nser));
			if (would)
				part_title(f, s, h, "would-be refusals", 17, counts[0]);
			else if (other)
				part_title(f, s, h, "other reasons", 13, counts[j]);
			else
				part_title(f, s, h, s->reason[j]->key, s->reason[j]->len, counts[j]);
			fputs("</rect>\n", f);
		}
	}
	fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\"/>\n", H_LEFT, H_TOP + ph,
	        H_LEFT + pw, H_TOP + ph);
	x_labels(f, s, bw, ph);
	fputs("</svg>\n", f);
}

static void bar_label(FILE *f, int rules, const struct topk_item *it, int full)
{
	const char *id, *where;
	size_t idn, wn;

	if (!rules) {
		size_t n = it->len;

		if (!full && n > B_LABEL_MAX) {
			/* cut between characters */
			for (n = B_LABEL_MAX; n > 0 && ((unsigned char)it->key[n] & 0xc0) == 0x80; n--)
				;
		}
		put_html(f, it->key, n);
		fputs(n < it->len ? "..." : "", f);
		return;
	}
	report_rule_parts(it, &id, &idn, &where, &wn);
	put_html(f, id, idn);
	fputs(idn ? " " : "", f);
	put_html(f, wn ? where : "(moat, or the backend)", wn ? wn : 22);
}

void svg_bars(FILE *f, const struct report *r, int list, const char *id)
{
	const struct topk_item *rows[REPORT_TOP_SHOW_MAX];
	size_t n = report_rows(r, list, rows, REPORT_TOP_SHOW_MAX);
	int rules = list == TOP_RULES || list == TOP_W_RULES;
	uint64_t max = n ? rows[0]->count : 1, total = r->st.top[list].total;
	char num[32];

	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"%s\" width=\"%d\" height=\"%zu\" "
	        "viewBox=\"0 0 %d %zu\" role=\"img\">\n", id, SVG_WIDTH, n * B_ROW + 8, SVG_WIDTH, n * B_ROW + 8);
	for (size_t i = 0; i < n; i++) {
		const struct topk_item *it = rows[i];
		double y = 4 + (double)i * B_ROW, w = B_BAR * (double)it->count / (double)max;
		double sure = B_BAR * (double)(it->count - it->error) / (double)max;

		fmt_count(it->count, num, sizeof num);
		fputs("<g class=\"row\"><title>", f);
		bar_label(f, rules, it, 1);
		fprintf(f, ": %s%s</title>\n<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", num,
		        it->error ? " at most" : "", B_LABEL - 8, y + 16);
		bar_label(f, rules, it, 0);
		fprintf(f, "</text><rect class=\"bar\" x=\"%d\" y=\"%.1f\" width=\"%.2f\" height=\"%d\" fill=\"#4e79a7\"/>",
		        B_LABEL, y + 3, sure > 0.5 ? sure : 0.5, B_ROW - 6);
		if (it->error)
			fprintf(f, "<rect class=\"error\" x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%d\" fill=\"#a0cbe8\"/>",
			        B_LABEL + sure, y + 3, w - sure, B_ROW - 6);
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">%s (%.1f %%)", B_LABEL + w + 6, y + 16, num,
		        total ? 100.0 * (double)it->count / (double)total : 0.0);
		if (it->error) {
			fmt_count(it->count - it->error, num, sizeof num);
			fprintf(f, ", at least %s", num);
		}
		fputs("</text></g>\n", f);
	}
	fputs("</svg>\n", f);
}
