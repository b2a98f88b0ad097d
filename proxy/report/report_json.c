/* report_json.c - the report's summary as one JSON object (moat(8),
 * REPORTING, lists its members) */
#include <string.h>

#include "proxy/report/outfmt.h"
#include "proxy/report/report.h"
#include "proxy/report/rtime.h"


static void str(FILE *f, const char *s)
{
	put_json(f, s, strlen(s));
}

static void u64(FILE *f, uint64_t v)
{
	fprintf(f, "%llu", (unsigned long long)v);
}

/* {"accept":N,...} of the actions with a count. */
static void by_action(FILE *f, const uint64_t *v)
{
	int first = 1;

	fputc('{', f);
	for (int k = 0; k < ACT_COUNT; k++)
		if (v[k]) {
			fprintf(f, "%s\"%s\":", first ? "" : ",", stats_action_names[k]);
			u64(f, v[k]);
			first = 0;
		}
	fputc('}', f);
}

static void input(FILE *f, const struct report *r)
{
	const struct report_stats *st = &r->st;
	char t[32];

	fprintf(f, "\"input\":{\"files\":[");
	for (size_t i = 0; i < r->nfiles; i++)
		fputs(i ? "," : "", f), str(f, r->files[i]);
	fprintf(f, "],\"lines\":%llu,\"bytes\":%llu,\"malformed\":%llu,\"foreign\":%llu,\"out_of_range\":%llu,"
	        "\"other_events\":%llu,\"truncated\":%llu,\"unreadable_files\":%llu},\n",
	        (unsigned long long)st->lines, (unsigned long long)st->bytes, (unsigned long long)st->malformed,
	        (unsigned long long)st->foreign, (unsigned long long)st->out_of_range,
	        (unsigned long long)st->other_events, (unsigned long long)st->truncated,
	        (unsigned long long)r->input_errors);
	fprintf(f, "\"period\":{\"since\":");
	if (r->since_arg)
		rtime_format(r->since, t, sizeof t), str(f, t);
	else
		fputs("null", f);
	fprintf(f, ",\"until\":");
	if (r->until_arg)
		rtime_format(r->until, t, sizeof t), str(f, t);
	else
		fputs("null", f);
	if (st->first_ts <= st->last_ts) {
		rtime_format(st->first_ts, t, sizeof t);
		fprintf(f, ",\"first\":\"%s\"", t);
		rtime_format(st->last_ts, t, sizeof t);
		fprintf(f, ",\"last\":\"%s\"", t);
	}
	fprintf(f, "},\n");
}

static void filters(FILE *f, const struct report *r)
{
	static const char *const names[FILTER_KINDS] = {"client", "sender", "rcpt", "action", "rule", "session"};
	int first = 1;

	if (!r->filter.any)
		return;
	fprintf(f, "\"filter\":{");
	for (int k = 0; k < FILTER_KINDS; k++) {
		if (!r->filter.n[k])
			continue;
		fprintf(f, "%s\"%s\":[", first ? "" : ",", names[k]);
		for (size_t i = 0; i < r->filter.n[k]; i++) {
			const struct filter_value *v = &r->filter.v[k][i];
			char buf[512];

			snprintf(buf, sizeof buf, "%s%.*s", v->domain ? "@" : "", (int)v->n, v->s);
			fputs(i ? "," : "", f);
			str(f, buf);
		}
		fputc(']', f);
		first = 0;
	}
	/* sessions are counted where their lines are kept (not with --summary) */
	fprintf(f, "},\"matched\":{\"lines\":%llu", (unsigned long long)r->matched);
	if (r->sl)
		fprintf(f, ",\"sessions\":%llu", (unsigned long long)r->slc.sessions);
	fputs("},\n", f);
}

static void totals(FILE *f, const struct report *r)
{
	const struct report_stats *st = &r->st;

	fprintf(f, "\"decisions\":{\"total\":%llu,\"by_action\":", (unsigned long long)st->decisions);
	by_action(f, st->by_action);
	fprintf(f, ",\"by_stage\":{");
	for (int s = 0, first = 1; s < ST_COUNT; s++) {
		uint64_t sum = 0;

		for (int k = 0; k < ACT_COUNT; k++)
			sum += st->by_stage[s][k];
		if (!sum)
			continue;
		fprintf(f, "%s\"%s\":", first ? "" : ",", stats_stage_names[s]);
		by_action(f, st->by_stage[s]);
		first = 0;
	}
	fprintf(f, "}},\n\"refusals\":%llu,\n\"rule_lines\":{\"total\":%llu,\"by_action\":",
	        (unsigned long long)st->refusals, (unsigned long long)st->rule_lines);
	by_action(f, st->rule_by_action);
	fprintf(f, "},\n");
	if (!r->filter.any)
		fprintf(f, "\"sessions\":{\"ended\":%llu,\"messages\":%llu,\"rejected\":%llu,\"errors\":%llu},\n",
		        (unsigned long long)st->sessions, (unsigned long long)st->messages,
		        (unsigned long long)st->session_rejected, (unsigned long long)st->session_errors);
}

static void top_list(FILE *f, const struct report *r, int list, const char *name)
{
	const struct topk *t = &r->st.top[list];
	const struct topk_item *rows[REPORT_TOP_SHOW_MAX];
	size_t n = report_rows(r, list, rows, REPORT_TOP_SHOW_MAX);
	int rules = list == TOP_RULES || list == TOP_W_RULES;

	fprintf(f, "\"%s\":{\"of\":\"%s\",\"counted\":%llu,\"exact\":%s,\"max_error\":%llu,\"items\":[", name,
	        report_list_of(r, list), (unsigned long long)t->total, t->replaced ? "false" : "true",
	        (unsigned long long)topk_bound(t));
	for (size_t i = 0; i < n; i++) {
		fputs(i ? "," : "", f);
		if (rules) {
			const char *id, *where;
			size_t idn, wn;

			report_rule_parts(rows[i], &id, &idn, &where, &wn);
			fputs("{\"rule_id\":", f);
			put_json(f, id, idn);
			fputs(",\"rule\":", f);
			put_json(f, where, wn);
		} else {
			fputs("{\"key\":", f);
			put_json(f, rows[i]->key, rows[i]->len);
		}
		fprintf(f, ",\"count\":%llu,\"error\":%llu}", (unsigned long long)rows[i]->count,
		        (unsigned long long)rows[i]->error);
	}
	fputs("]}", f);
}

static void tops(FILE *f, const struct report *r)
{
	fprintf(f, "\"top\":{\"method\":\"space-saving\",\"capacity\":%d,", REPORT_TOP_CAPACITY);
	for (int list = TOP_REASONS; list <= TOP_HELOS; list++) {
		top_list(f, r, list, stats_top_names[list]);
		fputs(list < TOP_HELOS ? ",\n" : "},\n", f);
	}
}

static void per_hour(FILE *f, const struct report *r)
{
	struct hour_series s;
	struct hour_bar b;
	char label[32];
	int first = 1;

	report_series(r, &s, REPORT_HOURS_MAX);
	fprintf(f, "\"per_hour\":{\"hours_per_entry\":%d,\"exact_split\":%s,\"reasons\":[", s.group ? s.group : 1,
	        s.exact ? "true" : "false");
	for (size_t j = 0; j < s.nreasons; j++)
		fputs(j ? "," : "", f), put_json(f, s.reason[j]->key, s.reason[j]->len);
	fputs("],\"hours\":[", f);
	for (size_t i = 0; i < s.nbars; i++) {
		report_bar(r, &s, i, &b);
		if (!b.hours)
			continue;
		rtime_format(b.hour * RTIME_HOUR_MS, label, sizeof label);
		fprintf(f, "%s\n {\"hour\":\"%.13s:00Z\",\"decisions\":%llu,\"refusals\":%llu,\"would\":%llu,"
		        "\"by_reason\":[", first ? "" : ",", label, (unsigned long long)b.decisions,
		        (unsigned long long)b.refusals, (unsigned long long)b.would);
		for (size_t j = 0; j < s.nreasons; j++)
			fprintf(f, "%s%llu", j ? "," : "", (unsigned long long)b.counts[j]);
		fprintf(f, "],\"other\":%llu}", (unsigned long long)b.counts[s.nreasons]);
		first = 0;
	}
	fputs("]},\n", f);
}

static void monitor_dns(FILE *f, const struct report *r)
{
	const struct report_stats *st = &r->st;

	fprintf(f, "\"monitor\":{\"would_refusals\":%llu,\"by_action\":", (unsigned long long)st->would);
	by_action(f, (uint64_t[ACT_COUNT]){[ACT_WREJECT] = st->by_action[ACT_WREJECT],
	                                   [ACT_WTEMPFAIL] = st->by_action[ACT_WTEMPFAIL]});
	fputs(",\n", f);
	top_list(f, r, TOP_W_REASONS, "reasons");
	fputs(",\n", f);
	top_list(f, r, TOP_W_RULES, "rules");
	fputs(",\n", f);
	top_list(f, r, TOP_W_SENDERS, "sender_domains");
	fprintf(f, "},\n\"dns_tempfail\":{\"decisions\":%llu,\"by_check\":{", (unsigned long long)st->dns);
	for (int k = 0; k < DNS_COUNT; k++)
		fprintf(f, "%s\"%s\":%llu", k ? "," : "", stats_dns_names[k], (unsigned long long)st->dns_by_check[k]);
	fputs("},\"by_action\":", f);
	by_action(f, st->dns_by_action);
	fputs(",\n", f);
	top_list(f, r, TOP_DNS_NAMES, "names");
	fputs("},\n", f);
}

void report_json(FILE *f, const struct report *r)
{
	char notes[REPORT_NOTES_MAX][REPORT_NOTE_MAX];
	size_t n = report_notes(r, notes, REPORT_NOTES_MAX);

	fputs("{", f);
	input(f, r);
	filters(f, r);
	totals(f, r);
	tops(f, r);
	per_hour(f, r);
	monitor_dns(f, r);
	fputs("\"notes\":[", f);
	for (size_t i = 0; i < n; i++)
		fputs(i ? "," : "", f), str(f, notes[i]);
	fputs("]}\n", f);
}
