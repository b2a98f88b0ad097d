/* test_report_sessions.c - what the report counts from decision lines
 * (stats.c), and the lines of matching sessions in bounded memory
 * (sesslines.c) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/report/bounds.h"
#include "proxy/report/rtime.h"
#include "proxy/report/sesslines.h"
#include "proxy/report/stats.h"

/* ---- stats ---- */

static char scratch[8192];

/* A decision or rule line, given its fields as JSON members. */
static void decide(struct report_stats *s, int64_t ts, const char *members)
{
	char line[2048];
	struct logline l;

	snprintf(line, sizeof line, "{\"ts\":\"x\",%s}", members);
	if (logline_parse(&l, line, strlen(line), scratch) != 0)
		fail_msg("bad test line %s", line);
	stats_decision(s, &l, ts);
}

static uint64_t top_count(const struct report_stats *s, int list, const char *key)
{
	uint64_t err;

	return topk_count(&s->top[list], key, strlen(key), &err);
}

#define T0 1796601600000LL /* 2026-12-07T00:00:00Z */

static void test_totals(void **state)
{
	static struct report_stats s;

	assert_int_equal(stats_init(&s, 0), 0);
	decide(&s, T0 + 10, "\"event\":\"decision\",\"stage\":\"rcpt\",\"action\":\"reject\",\"reason\":\"r1\","
	                    "\"rule\":\"default.rules:22\",\"rule_id\":\"sender-nxdomain\",\"client_ip\":\"192.0.2.7\","
	                    "\"helo\":\"MX.Example\",\"mail_from\":\"a@Nx.Invalid\",\"rcpt\":\"b@example.test\"");
	decide(&s, T0 + 20, "\"event\":\"decision\",\"stage\":\"data\",\"action\":\"reject\",\"reason\":\"r2\","
	                    "\"rule\":\"\",\"rule_id\":\"\",\"client_ip\":\"192.0.2.9\",\"mail_from\":\"<>\","
	                    "\"rcpt\":\"b@example.test,c@EXAMPLE.test,d@other.example\"");
	decide(&s, T0 + RTIME_HOUR_MS, "\"event\":\"decision\",\"stage\":\"data\",\"action\":\"accept\"");
	decide(&s, T0 + RTIME_HOUR_MS, "\"event\":\"decision\",\"stage\":\"connect\",\"action\":\"would-reject\","
	                               "\"reason\":\"dynamic\",\"rule\":\"m.rules:4\",\"rule_id\":\"dyn\","
	                               "\"mail_from\":\"\"");
	decide(&s, T0 + 2 * RTIME_HOUR_MS, "\"event\":\"rule\",\"stage\":\"mail\",\"action\":\"tag\"");
	decide(&s, T0 + 3 * RTIME_HOUR_MS, "\"event\":\"decision\",\"stage\":\"mail\",\"action\":\"odd\"");
	assert_int_equal(s.decisions, 5);
	assert_int_equal(s.rule_lines, 1);
	assert_int_equal(s.rule_by_action[ACT_TAG], 1);
	assert_int_equal(s.by_action[ACT_REJECT], 2);
	assert_int_equal(s.by_action[ACT_ACCEPT], 1);
	assert_int_equal(s.by_action[ACT_WREJECT], 1);
	assert_int_equal(s.by_action[ACT_OTHER], 1);
	assert_int_equal(s.by_stage[ST_RCPT][ACT_REJECT], 1);
	assert_int_equal(s.by_stage[ST_DATA][ACT_REJECT], 1);
	assert_int_equal(s.by_stage[ST_CONNECT][ACT_WREJECT], 1);
	assert_int_equal(s.refusals, 2);
	assert_int_equal(s.would, 1);
	assert_int_equal(s.first_ts, T0 + 10);
	assert_int_equal(s.last_ts, T0 + 3 * RTIME_HOUR_MS);
	/* the top lists count the refusals only */
	assert_int_equal(s.focus, 2);
	assert_int_equal(top_count(&s, TOP_REASONS, "r1"), 1);
	assert_int_equal(top_count(&s, TOP_RULES, "sender-nxdomain\tdefault.rules:22"), 1);
	assert_int_equal(top_count(&s, TOP_RULES, "\t"), 1); /* moat itself */
	assert_int_equal(top_count(&s, TOP_NETS, "192.0.2.0/24"), 2);
	assert_int_equal(top_count(&s, TOP_CLIENTS, "192.0.2.9"), 1);
	assert_int_equal(top_count(&s, TOP_SENDERS, "nx.invalid"), 1); /* lower case */
	assert_int_equal(top_count(&s, TOP_SENDERS, "<>"), 1);
	/* a data line's recipients: each domain once */
	assert_int_equal(top_count(&s, TOP_RCPT_DOMAINS, "example.test"), 2);
	assert_int_equal(top_count(&s, TOP_RCPT_DOMAINS, "other.example"), 1);
	assert_int_equal(top_count(&s, TOP_HELOS, "mx.example"), 1);
	assert_int_equal(s.top[TOP_HELOS].total, 1); /* no HELO name: not counted */
	assert_int_equal(top_count(&s, TOP_W_RULES, "dyn\tm.rules:4"), 1);
	assert_int_equal(s.top[TOP_W_SENDERS].total, 0);
	stats_free(&s);
}

static void test_hours(void **state)
{
	static struct report_stats s;
	char members[256];

	assert_int_equal(stats_init(&s, 0), 0);
	/* hour 2: 20 distinct reasons (more than REPORT_HOUR_REASONS); hour 0: 3 of "a" */
	for (int i = 0; i < 20; i++) {
		snprintf(members, sizeof members, "\"event\":\"decision\",\"action\":\"tempfail\",\"reason\":\"r%d\"", i);
		decide(&s, T0 + 2 * RTIME_HOUR_MS + i, members);
	}
	for (int i = 0; i < 3; i++)
		decide(&s, T0 + i, "\"event\":\"decision\",\"action\":\"reject\",\"reason\":\"a\"");
	decide(&s, T0 + 5, "\"event\":\"decision\",\"action\":\"would-tempfail\",\"reason\":\"w\"");
	stats_sort_hours(&s);
	assert_int_equal(s.nhours, 2);
	assert_int_equal(s.hours[0].hour, T0 / RTIME_HOUR_MS);
	assert_int_equal(s.hours[0].refusals, 3);
	assert_int_equal(s.hours[0].would, 1);
	assert_int_equal(s.hours[0].decisions, 4);
	assert_int_equal(s.hours[0].nreasons, 1);
	assert_int_equal(s.hours[0].r[0].count, 3);
	assert_int_equal(s.hours[0].r[0].hash, stats_reason_hash(&s, "a", 1));
	assert_false(s.hours[0].replaced);
	assert_int_equal(s.hours[1].refusals, 20);
	assert_true(s.hours[1].replaced);
	{
		uint64_t sum = 0;

		for (uint32_t i = 0; i < s.hours[1].nreasons; i++)
			sum += s.hours[1].r[i].count;
		assert_int_equal(sum, 20); /* the split adds up to the exact total */
	}
	assert_int_equal(idxmap_get(&s.hour_map, (uint64_t)(T0 / RTIME_HOUR_MS + 2)), 1);
	stats_free(&s);
}

static void test_dns_and_focus(void **state)
{
	static struct report_stats s;

	assert_int_equal(stats_init(&s, 1), 0); /* --action given: every matching line in the top lists */
	decide(&s, T0, "\"event\":\"decision\",\"action\":\"tempfail\",\"mail_from\":\"a@Slow.Example\","
	               "\"sender_domain\":\"tempfail\",\"spf\":\"temperror\"");
	decide(&s, T0, "\"event\":\"decision\",\"action\":\"accept\",\"client_ip\":\"192.0.2.1\",\"rdns\":\"tempfail\","
	               "\"dkim\":\"a.example:pass,b.example:temperror\"");
	decide(&s, T0, "\"event\":\"decision\",\"action\":\"accept\",\"spf\":\"pass\",\"dkim\":\"none\"");
	decide(&s, T0, "\"event\":\"rule\",\"action\":\"log\",\"reason\":\"noted\"");
	assert_int_equal(s.dns, 2);
	assert_int_equal(s.dns_by_check[DNS_SPF], 1);
	assert_int_equal(s.dns_by_check[DNS_SENDER_DOMAIN], 1);
	assert_int_equal(s.dns_by_check[DNS_RDNS], 1);
	assert_int_equal(s.dns_by_check[DNS_DKIM], 1);
	assert_int_equal(s.dns_by_action[ACT_TEMPFAIL], 1);
	assert_int_equal(s.dns_by_action[ACT_ACCEPT], 1);
	assert_int_equal(top_count(&s, TOP_DNS_NAMES, "sender slow.example"), 1);
	assert_int_equal(top_count(&s, TOP_DNS_NAMES, "rdns 192.0.2.1"), 1);
	assert_int_equal(top_count(&s, TOP_DNS_NAMES, "dkim b.example"), 1);
	assert_int_equal(s.focus, 4);
	assert_int_equal(top_count(&s, TOP_REASONS, "noted"), 1);
	stats_free(&s);
}

/* ---- session lines ---- */

struct got {
	char text[1 << 16];
	size_t len;
	int blocks, more, continued, lost;
};

/* Each block as "[ID flags]" and its lines, while the text has room. */
static void collect(void *arg, const struct sl_block *b)
{
	struct got *g = arg;
	char head[128];
	int n = snprintf(head, sizeof head, "[%.*s%s%s%s]", (int)b->idn, b->id, b->continued ? " continued" : "",
	                 b->more ? " more" : "", b->lost ? " lost" : "");

	if (g->len + (size_t)n + b->len < sizeof g->text) {
		memcpy(g->text + g->len, head, (size_t)n);
		memcpy(g->text + g->len + n, b->lines, b->len);
		g->len += (size_t)n + b->len;
		g->text[g->len] = '\0';
	}
	g->blocks++;
	g->more += b->more;
	g->continued += b->continued;
	g->lost += b->lost;
}

static void add(struct sesslines *sl, const char *id, const char *line, int matched, int end)
{
	sesslines_add(sl, id, strlen(id), line, strlen(line), matched, end);
}

static void test_lines_of_a_match(void **state)
{
	static struct got g;
	struct sesslines *sl = sesslines_new(collect, &g);
	struct sl_counts c;

	memset(&g, 0, sizeof g);
	assert_non_null(sl);
	add(sl, "00000000000000aa", "a1", 0, 0);
	add(sl, "00000000000000bb", "b1", 0, 0);
	add(sl, "00000000000000aa", "a2", 0, 0);
	add(sl, "00000000000000bb", "b2", 0, 0);
	add(sl, "00000000000000aa", "a3 matches", 1, 0);
	add(sl, "", "no session, matches", 1, 0);    /* at once, alone */
	add(sl, "", "no session", 0, 0);             /* nothing */
	add(sl, "00000000000000bb", "b-end", 0, 1); /* b never matched: nothing */
	add(sl, "00000000000000aa", "a4", 0, 0);
	assert_string_equal(g.text, "[]no session, matches\n");
	add(sl, "00000000000000aa", "a-end", 0, 1);
	assert_string_equal(g.text, "[]no session, matches\n[00000000000000aa]a1\na2\na3 matches\na4\na-end\n");
	/* a session still open at the end comes out too; an id that is not
	 * moat's (not 16 hex digits) works the same */
	add(sl, "weird id", "w1", 0, 0);
	add(sl, "weird id", "w2", 1, 0);
	sesslines_finish(sl);
	assert_non_null(strstr(g.text, "[weird id]w1\nw2\n"));
	sesslines_counts(sl, &c);
	assert_int_equal(c.sessions, 2);
	assert_int_equal(c.lost, 0);
	assert_int_equal(c.early, 0);
	sesslines_free(sl);
}

static void test_window_is_bounded(void **state)
{
	static struct got g;
	struct sesslines *sl = sesslines_new(collect, &g);
	struct sl_counts c;
	char id[17];

	memset(&g, 0, sizeof g);
	add(sl, "00000000000000aa", "a-old", 0, 0);
	/* more lines than the window holds, of other sessions (an unmatched
	 * session's end is not kept: two lines each) */
	for (int i = 0; i < REPORT_RING_LINES + 10; i++) {
		snprintf(id, sizeof id, "%016x", i + 0x1000);
		add(sl, id, "x", 0, 0);
		if (i % 2)
			add(sl, id, "x-end", 0, 1);
	}
	add(sl, "00000000000000aa", "a-new", 1, 1);
	assert_string_equal(g.text, "[00000000000000aa lost]a-new\n");
	sesslines_counts(sl, &c);
	assert_int_equal(c.lost, 1);
	sesslines_free(sl);
}

static void test_window_bytes(void **state)
{
	static struct got g;
	struct sesslines *sl = sesslines_new(collect, &g);
	char *big = malloc(60000);

	memset(&g, 0, sizeof g);
	memset(big, 'x', 59999);
	big[59999] = '\0';
	add(sl, "00000000000000aa", "a-old", 0, 0);
	add(sl, "00000000000000bb", "b-old", 0, 0);
	/* 18 MB of another session's lines: the window's bytes wrap */
	for (int i = 0; i < 300; i++)
		add(sl, "00000000000000cc", big, 0, 0);
	add(sl, "00000000000000bb", "b-new", 0, 0);
	add(sl, "00000000000000aa", "a-new", 1, 1);
	add(sl, "00000000000000bb", "b-match", 1, 1);
	assert_string_equal(g.text, "[00000000000000aa lost]a-new\n[00000000000000bb lost]b-new\nb-match\n");
	free(big);
	sesslines_free(sl);
}

/* Held lines beyond REPORT_HELD_BYTES: the session comes out in parts,
 * nothing lost. */
static void test_held_bytes(void **state)
{
	static struct got g;
	struct sesslines *sl = sesslines_new(collect, &g);
	char *big = malloc(100001);
	struct sl_counts c;
	int lines = REPORT_HELD_BYTES / 100000 + 20;

	memset(&g, 0, sizeof g);
	memset(big, 'y', 100000);
	big[100000] = '\0';
	add(sl, "00000000000000aa", "first", 1, 0);
	for (int i = 0; i < lines; i++)
		add(sl, "00000000000000aa", big, 0, 0);
	add(sl, "00000000000000aa", "end", 0, 1);
	sesslines_counts(sl, &c);
	assert_int_equal(g.blocks, 2);
	assert_int_equal(g.more, 1);
	assert_int_equal(g.continued, 1);
	assert_int_equal(c.early, 1);
	free(big);
	sesslines_free(sl);
}

/* More matching sessions open at once than REPORT_HELD_SESSIONS: the oldest
 * is handed over early and forgotten. */
static void test_held_sessions(void **state)
{
	static struct got g;
	struct sesslines *sl = sesslines_new(collect, &g);
	struct sl_counts c;
	char id[17];

	memset(&g, 0, sizeof g);
	for (int i = 0; i <= REPORT_HELD_SESSIONS; i++) {
		snprintf(id, sizeof id, "%016x", i);
		add(sl, id, "m", 1, 0);
	}
	assert_int_equal(g.blocks, 1);
	assert_string_equal(g.text, "[0000000000000000 more]m\n");
	sesslines_counts(sl, &c);
	assert_int_equal(c.forgotten, 1);
	sesslines_finish(sl);
	assert_int_equal(g.blocks, REPORT_HELD_SESSIONS + 1);
	sesslines_free(sl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_totals),
		cmocka_unit_test(test_hours),
		cmocka_unit_test(test_dns_and_focus),
		cmocka_unit_test(test_lines_of_a_match),
		cmocka_unit_test(test_window_is_bounded),
		cmocka_unit_test(test_window_bytes),
		cmocka_unit_test(test_held_bytes),
		cmocka_unit_test(test_held_sessions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
