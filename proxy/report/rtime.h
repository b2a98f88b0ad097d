/* rtime.h - the log's timestamps and the report's --since/--until (pure)
 *
 * Times are milliseconds since 1970-01-01T00:00:00Z (UTC, no leap seconds,
 * the proleptic Gregorian calendar), years 1970..9999. */
#ifndef MOAT_REPORT_RTIME_H
#define MOAT_REPORT_RTIME_H

#include <stddef.h>
#include <stdint.h>

#define RTIME_HOUR_MS 3600000LL
#define RTIME_DAY_MS 86400000LL

/* An RFC 3339 timestamp as the log writes it ("2026-12-07T21:32:13.062Z"):
 * the fraction is optional (any number of digits; milliseconds kept), the
 * zone is Z or +HH:MM/-HH:MM, 't', 'z' and a space for 'T' are taken.
 * 0, or -1 if it is not one. */
int rtime_parse(const char *s, size_t n, int64_t *ms);

/* An argument of --since (end = 0) or --until (end = 1): a timestamp as
 * above, or one cut after the date, the hour or the minute
 * ("2026-12-07", "2026-12-07T21", "2026-12-07T21:30"; UTC unless it names
 * a zone), "today" or "yesterday" (UTC days of now_ms). --until takes all
 * of the unit it names: the result is the first millisecond after it
 * (--until 2026-12-07 gives 2026-12-08T00:00:00.000Z), to be compared as
 * ts < until; --since gives its first millisecond, ts >= since.
 * 0, or -1 if the argument is none of these. */
int rtime_bound(const char *arg, int end, int64_t now_ms, int64_t *ms);

/* "2026-12-07T21:32:13.062Z" (out: 25 bytes at least). */
void rtime_format(int64_t ms, char *out, size_t size);

/* Days since 1970-01-01 of a Gregorian date, and back. */
int64_t rtime_days(int y, int m, int d);
void rtime_civil(int64_t days, int *y, int *m, int *d);

#endif
