/* svg.h - the report page's charts, drawn as inline SVG: they show without
 * scripts, fonts or anything fetched */
#ifndef MOAT_REPORT_SVG_H
#define MOAT_REPORT_SVG_H

#include <stdio.h>

#include "proxy/report/report.h"

#define SVG_WIDTH 960
/* the would-be refusals: a colour no reason series takes */
#define SVG_WOULD_COLOR "#9c755f"

/* The colour of series i of a stacked chart (the last one: "other"). */
const char *svg_color(size_t i, size_t nseries);

/* Refusals per hour stacked by reason (would = 0), or the would-be
 * refusals of monitor mode (would = 1); id: the svg element's id. */
void svg_hours(FILE *f, const struct report *r, const struct hour_series *s, int would, const char *id);

/* A top list as horizontal bars (a count's error, when it has one, in a
 * lighter shade at the bar's end). */
void svg_bars(FILE *f, const struct report *r, int list, const char *id);

#endif
