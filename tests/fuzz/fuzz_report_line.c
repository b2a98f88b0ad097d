/* fuzz_report_line.c - libFuzzer harness for the report's JSON line parser
 * (proxy/report/jsonline.c), which reads logs whose text clients chose.
 *
 *   make fuzz-build; build/fuzz/fuzz_report_line -max_total_time=60 WORKDIR (a copy of tests/fuzz/corpus/report_line)
 *
 * The input is split at "\n" like a log; each line is parsed from an
 * exact-size heap copy (ASan sees any read past it). Invariants (abort on
 * violation), for a line that parses:
 *  - every string field lies in the line or in the first len bytes of the
 *    scratch buffer, and in the line when the line holds no backslash;
 *  - every string field is well-formed UTF-8 (RFC 3629);
 *  - written back as JSON by the report's own escaper (put_json) and parsed
 *    again, every field comes back the same;
 *  - the line cut before its last '}' does not parse.
 * Lines that parse then go through the filters, the counts and the session
 * lines as in moat report (state kept across inputs, bounded by design).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/lib/text.h"
#include "proxy/report/filter.h"
#include "proxy/report/jsonline.h"
#include "proxy/report/outfmt.h"
#include "proxy/report/sesslines.h"
#include "proxy/report/stats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_utf8(struct ll_str s)
{
	for (size_t i = 0; i < s.n;) {
		size_t k = (unsigned char)s.p[i] < 0x80 ? 1 : text_utf8_len((const unsigned char *)s.p + i, s.n - i);

		if (k == 0)
			abort();
		i += k;
	}
}

static void check_fields(const struct logline *l, const char *line, size_t len, const char *scratch)
{
	int escapes = memchr(line, '\\', len) != NULL;

	for (int f = 0; f < LL_NSTR; f++) {
		struct ll_str s = l->f[f];
		int in_line, in_scratch;

		if (!s.p)
			continue;
		in_line = s.p >= line && s.p + s.n <= line + len;
		in_scratch = s.p >= scratch && s.p + s.n <= scratch + len;
		if (!in_line && !in_scratch)
			abort();
		if (!escapes && !in_line)
			abort();
		check_utf8(s);
	}
}

/* The fields written back by put_json and parsed again. */
static void round_trip(const struct logline *l, size_t len)
{
	size_t cap = 6 * len + 64 * LL_NSTR + 256, n = 0;
	char *buf = malloc(cap), *scratch2 = malloc(cap);
	FILE *f = buf ? fmemopen(buf, cap, "w") : NULL;
	struct logline back;
	int first = 1;

	if (!f || !scratch2)
		abort();
	fputc('{', f);
	for (int k = 0; k < LL_NSTR; k++) {
		if (!l->f[k].p)
			continue;
		fprintf(f, "%s\"%s\":", first ? "" : ",", logline_field_name((enum ll_field)k));
		put_json(f, l->f[k].p, l->f[k].n);
		first = 0;
	}
	if (l->code != -1)
		fprintf(f, "%s\"code\":%lld", first ? "" : ",", l->code);
	fputc('}', f);
	n = (size_t)ftell(f);
	fclose(f);
	if (logline_parse(&back, buf, n, scratch2) != 0)
		abort();
	for (int k = 0; k < LL_NSTR; k++) {
		if (!l->f[k].p != !back.f[k].p || back.f[k].n != l->f[k].n)
			abort();
		if (l->f[k].n && memcmp(back.f[k].p, l->f[k].p, l->f[k].n) != 0)
			abort();
	}
	if (back.code != l->code)
		abort();
	free(buf);
	free(scratch2);
}

static struct report_stats stats;
static struct report_filter filter;
static struct sesslines *sl;
static uint64_t emitted;

static void emit(void *arg, const struct sl_block *b)
{
	(void)arg;
	emitted += b->len;
}

static void setup(void)
{
	char err[256];

	if (sl)
		return;
	if (stats_init(&stats, 0) != 0 || !(sl = sesslines_new(emit, NULL)))
		abort();
	filter_add(&filter, FILTER_CLIENT, "192.0.2.0/24", err, sizeof err);
	filter_add(&filter, FILTER_CLIENT, "2001:db8::/32", err, sizeof err);
	filter_add(&filter, FILTER_SENDER, "@example.org", err, sizeof err);
	filter_add(&filter, FILTER_SENDER, "<>", err, sizeof err);
}

static void one(const char *line, size_t len)
{
	char *copy = malloc(len ? len : 1), *scratch = malloc(len ? len : 1);
	struct logline l;

	if (!copy || !scratch)
		abort();
	memcpy(copy, line, len);
	if (logline_parse(&l, copy, len, scratch) == 0) {
		const char *brace = memrchr(copy, '}', len);
		struct logline cut;

		check_fields(&l, copy, len, scratch);
		round_trip(&l, len);
		if (!brace || logline_parse(&cut, copy, (size_t)(brace - copy), scratch) == 0)
			abort();
		/* the cut parse used scratch: parse again for the pipeline */
		logline_parse(&l, copy, len, scratch);
		stats_decision(&stats, &l, (int64_t)(len % 100000) * 3600000);
		if (l.f[LL_SESSION].p)
			sesslines_add(sl, l.f[LL_SESSION].p, l.f[LL_SESSION].n, copy, len, filter_match(&filter, &l),
			              ll_is(l.f[LL_EVENT], "session_end"));
	}
	free(copy);
	free(scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;

	setup();
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);

		one(p, n);
		p += n + 1;
	}
	return 0;
}
