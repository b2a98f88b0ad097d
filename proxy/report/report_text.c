/* report_text.c - the report as text tables, and a matching session's
 * lines in a compact form */
#include <string.h>

#include "proxy/report/outfmt.h"
#include "proxy/report/report.h"
#include "proxy/report/rtime.h"

#define LABEL_MAX 72 /* bytes of a key shown in a row */
#define REPORT_TEXT_ROWS 168 /* rows of the per-hour table: a week of hours, else groups of hours */

static const char *count(uint64_t v, char *buf)
{
	fmt_count(v, buf, 32);
	return buf;
}

static void pct(FILE *f, uint64_t part, uint64_t whole)
{
	fprintf(f, "%5.1f %%", whole ? 100.0 * (double)part / (double)whole : 0.0);
}

static void header(FILE *f, const struct report *r)
{
	const struct report_stats *st = &r->st;
	char a[32], b[32], c[32], d[32], e[32], size[32], t1[32], t2[32];

	fmt_bytes(st->bytes, size, sizeof size);
	fprintf(f, "moat report: %s lines (%s) from %s%s\n", count(st->lines, a), size,
	        r->nfiles ? count(r->nfiles, b) : "standard input", r->nfiles ? (r->nfiles == 1 ? " file" : " files") : "");
	if (st->first_ts <= st->last_ts) {
		rtime_format(st->first_ts, t1, sizeof t1);
		rtime_format(st->last_ts, t2, sizeof t2);
		fprintf(f, "  decisions from %s to %s\n", t1, t2);
	}
	if (r->since_arg || r->until_arg)
		fprintf(f, "  period: %s%s%s%s\n", r->since_arg ? "since " : "", r->since_arg ? r->since_arg : "",
		        r->until_arg ? (r->since_arg ? ", until " : "until ") : "", r->until_arg ? r->until_arg : "");
	fprintf(f, "  skipped: %s malformed, %s JSON but not moat's, %s outside the period; %s other events\n",
	        count(st->malformed, a), count(st->foreign, b), count(st->out_of_range, c),
	        count(st->other_events, d));
	if (r->filter.any) {
		fprintf(f, "  filter: lines matched (decision and rule lines): %s", count(r->matched, e));
		if (r->sl)
			fprintf(f, ", in sessions: %s", count(r->slc.sessions, a));
		fputc('\n', f);
	}
}

static void totals(FILE *f, const struct report *r)
{
	const struct report_stats *st = &r->st;
	char a[32], b[32];
	int used[ACT_COUNT], nused = 0;

	fprintf(f, "\nDecisions: %s (exact)\n", count(st->decisions, a));
	for (int k = 0; k < ACT_COUNT; k++)
		if ((used[k] = st->by_action[k] > 0))
			nused++;
	if (nused) {
		fprintf(f, "  %-8s", "stage");
		for (int k = 0; k < ACT_COUNT; k++)
			if (used[k])
				fprintf(f, " %14s", stats_action_names[k]);
		fprintf(f, " %14s\n", "total");
		for (int s = 0; s <= ST_COUNT; s++) {
			const uint64_t *row = s < ST_COUNT ? st->by_stage[s] : st->by_action;
			uint64_t sum = 0;

			for (int k = 0; k < ACT_COUNT; k++)
				sum += row[k];
			if (s < ST_COUNT && sum == 0)
				continue;
			fprintf(f, "  %-8s", s < ST_COUNT ? stats_stage_names[s] : "total");
			for (int k = 0; k < ACT_COUNT; k++)
				if (used[k])
					fprintf(f, " %14s", count(row[k], a));
			fprintf(f, " %14s\n", count(sum, b));
		}
	}
	if (st->rule_lines) {
		fprintf(f, "Rule lines (tag and log rules that matched): %s (", count(st->rule_lines, a));
		for (int k = 0, n = 0; k < ACT_COUNT; k++)
			if (st->rule_by_action[k])
				fprintf(f, "%s%s %s", n++ ? ", " : "", stats_action_names[k], count(st->rule_by_action[k], b));
		fputc(')', f);
		fputc('\n', f);
	}
	if (st->sessions)
		fprintf(f, "Sessions: %s ended, %s messages delivered\n", count(st->sessions, a),
		        count(st->messages, b));
	fprintf(f, "Refusals (reject, tempfail): %s, %.1f %% of the decisions\n", count(st->refusals, a),
	        st->decisions ? 100.0 * (double)st->refusals / (double)st->decisions : 0.0);
}

static void top_list(FILE *f, const struct report *r, int list)
{
	const struct topk *t = &r->st.top[list];
	const struct topk_item *rows[REPORT_TOP_SHOW_MAX];
	size_t n = report_rows(r, list, rows, REPORT_TOP_SHOW_MAX);
	char a[32], b[32];

	fprintf(f, "\n%s (%s %s counted; ", report_list_title(list), count(t->total, a), report_list_of(r, list));
	if (t->replaced)
		fprintf(f, "approximate: a count is at most %s over)\n", count(topk_bound(t), b));
	else
		fprintf(f, "exact)\n");
	if (n == 0)
		fprintf(f, "  (none)\n");
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "  %12s ", count(rows[i]->count, a));
		pct(f, rows[i]->count, t->total);
		fputs("  ", f);
		if (list == TOP_RULES || list == TOP_W_RULES) {
			const char *id, *where;
			size_t idn, wn;

			report_rule_parts(rows[i], &id, &idn, &where, &wn);
			if (idn)
				put_text(f, id, idn, LABEL_MAX), fputs("  ", f);
			if (wn)
				put_text(f, where, wn, LABEL_MAX);
			else
				fputs("(moat itself, or the backend's reply)", f);
		} else {
			put_text(f, rows[i]->key, rows[i]->len, LABEL_MAX);
		}
		fputc('\n', f);
	}
}

static void per_hour(FILE *f, const struct report *r)
{
	struct hour_series s;
	struct hour_bar b;
	uint64_t max = 1;
	char label[32], a[32], c[32];

	report_series(r, &s, REPORT_TEXT_ROWS);
	if (!s.nbars || (!r->st.refusals && !r->st.would))
		return;
	for (size_t i = 0; i < s.nbars; i++) {
		report_bar(r, &s, i, &b);
		max = b.refusals > max ? b.refusals : max;
	}
	if (s.group > 1)
		fprintf(f, "\nRefusals per %d hours (UTC; rows without any left out)\n", s.group);
	else
		fprintf(f, "\nRefusals per hour (UTC; hours without any left out)\n");
	fprintf(f, "  %-16s %12s %12s\n", "from", "refusals", "would-be");
	for (size_t i = 0; i < s.nbars; i++) {
		report_bar(r, &s, i, &b);
		if (!b.refusals && !b.would)
			continue;
		report_hour_label(b.hour, label, sizeof label);
		fprintf(f, "  %-16s %12s %12s  %.*s\n", label, count(b.refusals, a), count(b.would, c),
		        (int)(40 * b.refusals / max), "########################################");
	}
}

static void monitor(FILE *f, const struct report *r)
{
	const struct report_stats *st = &r->st;
	char a[32], b[32], c[32];

	if (!st->would)
		return;
	fprintf(f, "\nMonitor mode: %s would-be refusals (logged, not refused): would-reject %s, would-tempfail %s\n",
	        count(st->would, a), count(st->by_action[ACT_WREJECT], b), count(st->by_action[ACT_WTEMPFAIL], c));
	top_list(f, r, TOP_W_REASONS);
	top_list(f, r, TOP_W_RULES);
	top_list(f, r, TOP_W_SENDERS);
}

static void dns(FILE *f, const struct report *r)
{
	const struct report_stats *st = &r->st;
	char a[32];

	if (!st->dns)
		return;
	fprintf(f, "\nDNS temporary failures: %s decisions saw one (they are in the totals above too)\n  by check:",
	        count(st->dns, a));
	for (int k = 0; k < DNS_COUNT; k++)
		fprintf(f, "%s %s %s", k ? "," : "", stats_dns_names[k], count(st->dns_by_check[k], a));
	fprintf(f, "\n  by action:");
	for (int k = 0, n = 0; k < ACT_COUNT; k++)
		if (st->dns_by_action[k])
			fprintf(f, "%s %s %s", n++ ? "," : "", stats_action_names[k], count(st->dns_by_action[k], a));
	fputc('\n', f);
	top_list(f, r, TOP_DNS_NAMES);
}

void report_text(FILE *f, const struct report *r)
{
	char notes[REPORT_NOTES_MAX][REPORT_NOTE_MAX];
	size_t n;

	header(f, r);
	totals(f, r);
	for (int list = TOP_REASONS; list <= TOP_HELOS; list++)
		top_list(f, r, list);
	per_hour(f, r);
	monitor(f, r);
	dns(f, r);
	n = report_notes(r, notes, REPORT_NOTES_MAX);
	fprintf(f, "\nNotes\n");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "  %s\n", notes[i]);
}

/* ---- a session's lines ---- */

static void field(FILE *f, const char *label, struct ll_str v, size_t max)
{
	if (!v.p || !v.n)
		return;
	fputs(label, f);
	put_text(f, v.p, v.n, max);
}

static void decision_line(FILE *f, const struct logline *l)
{
	fprintf(f, " %-5.*s %-14.*s", (int)l->f[LL_STAGE].n, l->f[LL_STAGE].p ? l->f[LL_STAGE].p : "",
	        (int)l->f[LL_ACTION].n, l->f[LL_ACTION].p ? l->f[LL_ACTION].p : "");
	if (l->code > 0)
		fprintf(f, " %lld", l->code);
	field(f, " ", l->f[LL_ESC], 16);
	field(f, "  from ", l->f[LL_MAIL_FROM], 200);
	field(f, "  to ", l->f[LL_RCPT], 300);
	field(f, ": ", l->f[LL_REASON], 300);
	if ((l->f[LL_RULE_ID].p && l->f[LL_RULE_ID].n) || (l->f[LL_RULE].p && l->f[LL_RULE].n)) {
		fputs("  [rule", f);
		field(f, " ", l->f[LL_RULE_ID], 100);
		field(f, " ", l->f[LL_RULE], 300);
		fputc(']', f);
	}
	field(f, "  spf ", l->f[LL_SPF], 20);
	field(f, "  sender_domain ", l->f[LL_SENDER_DOMAIN], 20);
	field(f, "  rdns ", l->f[LL_RDNS], 100);
	field(f, "  dkim ", l->f[LL_DKIM], 200);
	field(f, "  queue_id ", l->f[LL_QUEUE_ID], 64);
}

static void block_line(FILE *f, const char *line, size_t len, char *scratch)
{
	struct logline l;

	if (logline_parse(&l, line, len, scratch) < 0) {
		fputs("  ", f);
		put_text(f, line, len, 400);
		fputc('\n', f);
		return;
	}
	fputs("  ", f);
	field(f, "", l.f[LL_TS], 32);
	if (ll_is(l.f[LL_EVENT], "decision") || ll_is(l.f[LL_EVENT], "rule"))
		decision_line(f, &l);
	else if (ll_is(l.f[LL_EVENT], "session_end"))
		fprintf(f, " end   %lld delivered, %lld rejected, %lld errors", l.messages, l.rejected, l.errors);
	else
		field(f, " ", l.f[LL_EVENT], 32), field(f, ": ", l.f[LL_MSG], 400);
	fputc('\n', f);
}

/* The client and the HELO name of a session: from its first line that has
 * them (a line at connect has no HELO name yet). */
/* Copy a field that is set and not yet kept (the scratch it may point into
 * is reused by the next line). */
static void keep(struct ll_str v, char *buf, size_t size, struct ll_str *kept)
{
	if (kept->n || !v.p || !v.n)
		return;
	kept->n = v.n < size ? v.n : size;
	memcpy(buf, v.p, kept->n);
	kept->p = buf;
}

/* The client and the HELO name of a session: from its first line that has
 * them (a line at connect has no HELO name yet). */
static void block_header(FILE *f, const struct sl_block *b, char *scratch)
{
	char ipbuf[64], helobuf[256];
	struct ll_str ip = {NULL, 0}, helo = {NULL, 0};
	const char *p = b->lines, *end = b->lines + b->len;
	struct logline l;

	if (b->idn) {
		fputs("session ", f);
		put_text(f, b->id, b->idn, 64);
	} else {
		fputs("no session (refused when accepted)", f);
	}
	while (p < end && (!ip.n || !helo.n)) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (logline_parse(&l, p, (size_t)(nl - p), scratch) == 0) {
			keep(l.f[LL_CLIENT_IP], ipbuf, sizeof ipbuf, &ip);
			keep(l.f[LL_HELO], helobuf, sizeof helobuf, &helo);
		}
		p = nl + 1;
	}
	field(f, "  client ", ip, 64);
	field(f, "  helo ", helo, 100);
	fprintf(f, "%s%s\n", b->continued ? "  (continued)" : "",
	        b->lost ? "  (its first lines had left the look-back window)" : "");
}

void report_text_block(FILE *f, const struct sl_block *b)
{
	static char scratch[REPORT_LINE_MAX + REPORT_READ_CHUNK];
	const char *p = b->lines, *end = b->lines + b->len;

	block_header(f, b, scratch);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		block_line(f, p, (size_t)(nl - p), scratch);
		p = nl + 1;
	}
	if (b->more)
		fprintf(f, "  (more lines of this session follow later)\n");
	fputc('\n', f);
}
