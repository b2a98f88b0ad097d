/* report.c - "moat report [FILE...|-]": the command line and the reading
 * loop; what is counted is in stats.c, the outputs in report_text.c,
 * report_json.c and report_html.c (see moat(8), REPORTING) */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/report/input.h"
#include "proxy/report/report.h"
#include "proxy/report/rtime.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: moat report [options] [FILE...|-]\n"
	        "  moat's JSON log (plain or gzip; several files read as one; none or -: standard input)\n"
	        "  --since TIME, --until TIME   2026-12-07, 2026-12-07T21:30, 2026-12-07T21:30:00Z, today,\n"
	        "                               yesterday (UTC); --until takes all of the unit it names\n"
	        "  --client ADDR|CIDR  --sender ADDR|@DOMAIN  --rcpt ADDR|@DOMAIN\n"
	        "  --action ACTION[,ACTION]  --rule ID|FILE:LINE  --session ID\n"
	        "                               only the decisions that match (each option may repeat);\n"
	        "                               the matching sessions' lines are printed, in order\n"
	        "  --summary                    with a filter: the summary only, not the sessions\n"
	        "  --json                       JSON: the summary, or with a filter the sessions' log lines\n"
	        "  --html FILE                  the summary as one HTML page with its charts\n"
	        "  --top N                      rows of each top list (default %d, at most %d)\n",
	        REPORT_TOP_SHOW, REPORT_TOP_SHOW_MAX);
}

enum { OPT_SINCE = 256, OPT_UNTIL, OPT_JSON, OPT_HTML, OPT_SUMMARY, OPT_TOP, OPT_FILTER };

static const struct option options[] = {
	{"since", required_argument, NULL, OPT_SINCE}, {"until", required_argument, NULL, OPT_UNTIL},
	{"json", no_argument, NULL, OPT_JSON}, {"html", required_argument, NULL, OPT_HTML},
	{"summary", no_argument, NULL, OPT_SUMMARY}, {"top", required_argument, NULL, OPT_TOP},
	{"client", required_argument, NULL, OPT_FILTER}, {"sender", required_argument, NULL, OPT_FILTER},
	{"rcpt", required_argument, NULL, OPT_FILTER}, {"action", required_argument, NULL, OPT_FILTER},
	{"rule", required_argument, NULL, OPT_FILTER}, {"session", required_argument, NULL, OPT_FILTER},
	{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
};

static int bad(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "moat report: ");
	fprintf(stderr, fmt, a, b);
	fprintf(stderr, "\n");
	return -1;
}

static int parse_options(struct report *r, int argc, char **argv)
{
	int64_t now = (int64_t)time(NULL) * 1000;
	char err[512];
	int opt, idx;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", options, &idx)) != -1) {
		switch (opt) {
		case OPT_SINCE:
		case OPT_UNTIL:
			if (rtime_bound(optarg, opt == OPT_UNTIL, now, opt == OPT_SINCE ? &r->since : &r->until) < 0)
				return bad("--%s %s: not a date or time (2026-12-07, 2026-12-07T21:30, "
				           "2026-12-07T21:30:00Z, today, yesterday)", options[idx].name, optarg);
			*(opt == OPT_SINCE ? &r->since_arg : &r->until_arg) = optarg;
			break;
		case OPT_JSON: r->json = 1; break;
		case OPT_HTML: r->html = optarg; break;
		case OPT_SUMMARY: r->summary_only = 1; break;
		case OPT_TOP: {
			char *end;
			long n = strtol(optarg, &end, 10);

			if (*end || end == optarg || n < 1 || n > REPORT_TOP_SHOW_MAX)
				return bad("--top %s: a number from 1 to %s", optarg, "100");
			r->top = (size_t)n;
			break;
		}
		case OPT_FILTER:
			if (filter_add(&r->filter, filter_kind_of(options[idx].name), optarg, err, sizeof err) < 0)
				return bad("%s%s", err, "");
			break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (r->since >= r->until)
		return bad("--since %s is not before --until %s", r->since_arg, r->until_arg);
	r->files = argv + optind;
	r->nfiles = (size_t)(argc - optind);
	return 0;
}

/* A line of syslog ("Dec  7 21:32:13 host moat[123]: {...}"): its JSON. */
static void strip_prefix(const char **p, size_t *n)
{
	const char *brace;

	if (*n == 0 || **p == '{' || !(brace = memchr(*p, '{', *n)) || brace - *p < 2 || brace[-1] != ' ' ||
	    brace[-2] != ':')
		return;
	*n -= (size_t)(brace - *p);
	*p = brace;
}

static void one_line(struct report *r, const char *line, size_t len, char *scratch)
{
	struct logline l;
	struct ll_str ev, sess;
	int64_t ts;
	int decision, matched = 0;

	r->st.lines++;
	strip_prefix(&line, &len);
	if (logline_parse(&l, line, len, scratch) < 0) {
		r->st.malformed++;
		return;
	}
	ev = l.f[LL_EVENT];
	if (!ev.p || !l.f[LL_TS].p || rtime_parse(l.f[LL_TS].p, l.f[LL_TS].n, &ts) < 0) {
		r->st.foreign++;
		return;
	}
	if (ts < r->since || ts >= r->until) {
		r->st.out_of_range++;
		return;
	}
	r->st.truncated += l.truncated != 0;
	decision = ll_is(ev, "decision") || ll_is(ev, "rule");
	if (decision) {
		matched = filter_match(&r->filter, &l);
		if (matched) {
			r->matched++;
			stats_decision(&r->st, &l, ts);
		}
	} else if (ll_is(ev, "session_end")) {
		if (!r->filter.any)
			stats_session_end(&r->st, &l);
	} else {
		r->st.other_events++;
	}
	sess = l.f[LL_SESSION];
	if (r->sl)
		sesslines_add(r->sl, sess.p ? sess.p : "", sess.p ? sess.n : 0, line, len, matched,
		              ll_is(ev, "session_end"));
}

struct block_out {
	FILE *f;
	int json;
};

static void emit_block(void *arg, const struct sl_block *b)
{
	struct block_out *o = arg;

	if (o->json)
		fwrite(b->lines, 1, b->len, o->f);
	else
		report_text_block(o->f, b);
}

static int read_all(struct report *r)
{
	struct rinput in;
	const char *line;
	size_t len;
	char *scratch = malloc(REPORT_LINE_MAX + REPORT_READ_CHUNK);
	int rc;

	if (!scratch || rinput_init(&in, r->files, r->nfiles) < 0) {
		free(scratch);
		return bad("%s%s", "out of memory", "");
	}
	while ((rc = rinput_line(&in, &line, &len)) != 0) {
		if (rc < 0) {
			fprintf(stderr, "moat report: %s\n", in.err);
			r->input_errors++;
			continue;
		}
		one_line(r, line, len, scratch);
	}
	r->st.bytes = in.bytes;
	r->st.malformed += in.toolong;
	r->st.lines += in.toolong;
	rinput_free(&in);
	free(scratch);
	return 0;
}

static int write_html(const struct report *r)
{
	FILE *f = strcmp(r->html, "-") == 0 ? stdout : fopen(r->html, "w");
	int failed;

	if (!f)
		return bad("%s: %s", r->html, strerror(errno));
	report_html(f, r);
	failed = ferror(f);
	if (f != stdout)
		failed |= fclose(f) != 0;
	if (failed)
		return bad("%s: %s", r->html, "cannot write the page");
	return 0;
}

int report_main(int argc, char **argv)
{
	static struct report r;
	struct block_out bo = {stdout, 0};
	int rc = 0;

	r.top = REPORT_TOP_SHOW;
	r.since = INT64_MIN;
	r.until = INT64_MAX;
	if (parse_options(&r, argc, argv) < 0)
		return 2;
	bo.json = r.json;
	if (stats_init(&r.st, r.filter.n[FILTER_ACTION] > 0) < 0 ||
	    (r.filter.any && !r.summary_only && !(r.sl = sesslines_new(emit_block, &bo)))) {
		fprintf(stderr, "moat report: out of memory\n");
		return 2;
	}
	if (read_all(&r) < 0)
		rc = 2;
	if (r.sl) {
		sesslines_finish(r.sl);
		sesslines_counts(r.sl, &r.slc);
	}
	stats_sort_hours(&r.st);
	if (!r.json && !r.html)
		report_text(stdout, &r);
	if (r.json && (!r.filter.any || r.summary_only))
		report_json(stdout, &r);
	if (r.html && write_html(&r) < 0)
		rc = 2;
	if (fflush(stdout) != 0 || ferror(stdout))
		rc = 2;
	sesslines_free(r.sl);
	stats_free(&r.st);
	if (rc == 0 && r.input_errors)
		rc = 2;
	if (rc == 0 && r.filter.any && r.matched == 0)
		rc = 1;
	return rc;
}
