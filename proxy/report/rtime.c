/* rtime.c - timestamps of the log and of --since/--until (see rtime.h) */
#include <stdio.h>
#include <string.h>

#include "proxy/report/rtime.h"

/* H. Hinnant's days_from_civil / civil_from_days: exact for any date. */
int64_t rtime_days(int y, int m, int d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153u * (unsigned)(m > 2 ? m - 3 : m + 9) + 2) / 5 + (unsigned)d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

void rtime_civil(int64_t z, int *y, int *m, int *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + (unsigned)era * 400) + (*m <= 2);
}

static int leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int mdays(int y, int m)
{
	static const unsigned char n[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return m == 2 && leap(y) ? 29 : n[m - 1];
}

/* What a text holds, and to which unit (PREC_DAY .. PREC_MS). */
enum { PREC_DAY, PREC_HOUR, PREC_MIN, PREC_SEC, PREC_MS };

struct when {
	int y, mo, d, h, mi, s, ms;
	int prec;
	int zone;       /* it names a zone */
	int offset_min; /* east of UTC */
};

/* n digits at *p (advanced) as a number, or -1. */
static int num(const char **p, const char *end, int n)
{
	int v = 0;

	if (end - *p < n)
		return -1;
	for (int i = 0; i < n; i++, (*p)++) {
		if (**p < '0' || **p > '9')
			return -1;
		v = v * 10 + (**p - '0');
	}
	return v;
}

static int zone(const char **p, const char *end, struct when *w)
{
	int sign, hh, mm;

	if (*p < end && (**p == 'Z' || **p == 'z')) {
		(*p)++;
		w->zone = 1;
		return 0;
	}
	if (*p >= end || (**p != '+' && **p != '-'))
		return 0;
	sign = **p == '-' ? -1 : 1;
	(*p)++;
	if ((hh = num(p, end, 2)) < 0 || *p >= end || *(*p)++ != ':' || (mm = num(p, end, 2)) < 0 || hh > 23 ||
	    mm > 59)
		return -1;
	w->zone = 1;
	w->offset_min = sign * (hh * 60 + mm);
	return 0;
}

/* The time part after the date (at the separator). */
static int clock_part(const char **p, const char *end, struct when *w)
{
	if (*p >= end || (**p != 'T' && **p != 't' && **p != ' '))
		return 0;
	(*p)++;
	if ((w->h = num(p, end, 2)) < 0 || w->h > 23)
		return -1;
	w->prec = PREC_HOUR;
	if (*p >= end || **p != ':')
		return 0;
	(*p)++;
	if ((w->mi = num(p, end, 2)) < 0 || w->mi > 59)
		return -1;
	w->prec = PREC_MIN;
	if (*p >= end || **p != ':')
		return 0;
	(*p)++;
	/* 60: a leap second (RFC 3339 5.6) */
	if ((w->s = num(p, end, 2)) < 0 || w->s > 60)
		return -1;
	w->prec = PREC_SEC;
	if (*p < end && (**p == '.' || **p == ',')) {
		int k = 0;

		for ((*p)++; *p < end && **p >= '0' && **p <= '9'; (*p)++, k++)
			if (k < 3)
				w->ms = w->ms * 10 + (**p - '0');
		if (k == 0)
			return -1;
		for (; k < 3; k++)
			w->ms *= 10;
		w->prec = PREC_MS;
	}
	return 0;
}

static int parse_when(const char *s, size_t n, struct when *w)
{
	const char *p = s, *end = s + n;

	memset(w, 0, sizeof *w);
	if ((w->y = num(&p, end, 4)) < 1970 || p >= end || *p++ != '-' || (w->mo = num(&p, end, 2)) < 1 ||
	    w->mo > 12 || p >= end || *p++ != '-' || (w->d = num(&p, end, 2)) < 1 || w->d > mdays(w->y, w->mo))
		return -1;
	if (clock_part(&p, end, w) < 0 || zone(&p, end, w) < 0)
		return -1;
	return p == end ? 0 : -1;
}

static int64_t when_ms(const struct when *w)
{
	int64_t sec = rtime_days(w->y, w->mo, w->d) * 86400 + w->h * 3600 + w->mi * 60 + w->s;

	return (sec - (int64_t)w->offset_min * 60) * 1000 + w->ms;
}

int rtime_parse(const char *s, size_t n, int64_t *ms)
{
	struct when w;

	if (parse_when(s, n, &w) < 0 || w.prec < PREC_SEC || !w.zone)
		return -1;
	*ms = when_ms(&w);
	return 0;
}

int rtime_bound(const char *arg, int end, int64_t now_ms, int64_t *ms)
{
	static const int64_t unit[] = {RTIME_DAY_MS, RTIME_HOUR_MS, 60000, 1000, 1};
	struct when w;

	if (strcmp(arg, "today") == 0 || strcmp(arg, "yesterday") == 0) {
		int64_t day = now_ms / RTIME_DAY_MS - (arg[0] == 'y');

		*ms = (day + end) * RTIME_DAY_MS;
		return 0;
	}
	if (parse_when(arg, strlen(arg), &w) < 0)
		return -1;
	*ms = when_ms(&w) + (end ? unit[w.prec] : 0);
	return 0;
}

void rtime_format(int64_t ms, char *out, size_t size)
{
	int64_t days = ms >= 0 ? ms / RTIME_DAY_MS : (ms - RTIME_DAY_MS + 1) / RTIME_DAY_MS;
	int64_t rest = ms - days * RTIME_DAY_MS;
	int y, m, d;

	rtime_civil(days, &y, &m, &d);
	snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d, (int)(rest / 3600000),
	         (int)(rest / 60000 % 60), (int)(rest / 1000 % 60), (int)(rest % 1000));
}
