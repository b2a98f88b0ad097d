/* replay_verdict.c - see replay_verdict.h */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks/checks.h"
#include "proxy/lib/log.h"
#include "proxy/lib/readfile.h"
#include "proxy/lib/text.h"
#include "proxy/replay_verdict.h"
#include "rules/rules.h"

#define REPLAY_EXPECT_MAX (64u << 20) /* an --expect file */

void replay_verdict_of(struct record_verdict *out, const struct verdict *v)
{
	memset(out, 0, sizeof *out);
	out->judged = 1;
	out->code = v->code;
	text_copy(out->esc, sizeof out->esc, v->code ? v->esc : "");
	if (v->rule_id) {
		text_copy(out->rule, sizeof out->rule, v->rule_id);
	} else {
		/* the file's name, not its path: records are replayed elsewhere (CI) */
		const char *base = v->rule_file ? strrchr(v->rule_file, '/') : NULL;

		rules_where(out->rule, sizeof out->rule, base ? base + 1 : v->rule_file, v->rule_line);
	}
	text_copy(out->reason, sizeof out->reason, v->reason);
}

/* Which verdict decides the transaction, and at which stage. */
static const struct record_verdict *deciding(const struct record *r, const char **stage, int *accepted)
{
	const struct record_verdict *last = NULL, *refused = NULL, *ok = NULL;
	int i;

	*accepted = 0;
	*stage = "connect";
	for (i = REC_CONNECT; i <= REC_MAIL; i++) {
		if (!r->stage[i].judged)
			continue;
		last = &r->stage[i];
		*stage = record_stage_name((enum record_stage)i);
		if (last->code)
			return last;
	}
	for (i = 0; i < r->nrcpt; i++) {
		const struct record_verdict *v = &r->rcpt[i].v;

		if (!v->judged)
			continue;
		if (!v->code) {
			++*accepted;
			if (!ok || (!ok->rule[0] && v->rule[0]))
				ok = v;
		} else if (!refused || (v->code / 100 == 5 && refused->code / 100 != 5)) {
			refused = v;
		}
	}
	if (refused && !*accepted) {
		*stage = "rcpt";
		return refused;
	}
	if (ok) {
		*stage = "rcpt";
		last = ok;
	}
	if (r->stage[REC_DATA].judged) {
		*stage = "data";
		if (r->stage[REC_DATA].code || r->stage[REC_DATA].rule[0] || !last)
			return &r->stage[REC_DATA];
	}
	return last;
}

void replay_format_json(char *buf, size_t size, const char *id, const struct record *r, const char *note)
{
	static const struct record_verdict none = {0};
	const char *stage;
	int accepted;
	const struct record_verdict *v = deciding(r, &stage, &accepted);
	/* json_escape: up to 6 bytes for one (\uXXXX) */
	char eid[REPLAY_LINE_MAX * 6], rule[RECORD_RULE_MAX * 6], reason[RECORD_REASON_MAX * 6];
	char enote[REPLAY_LINE_MAX * 6];

	if (!v)
		v = &none;
	json_escape(eid, sizeof eid, id, REPLAY_LINE_MAX);
	json_escape(rule, sizeof rule, v->rule, RECORD_RULE_MAX);
	json_escape(reason, sizeof reason, v->reason, RECORD_REASON_MAX);
	json_escape(enote, sizeof enote, note, REPLAY_LINE_MAX);
	snprintf(buf, size,
	         "{\"id\":\"%s\",\"result\":\"%s\",\"code\":%d,\"esc\":\"%s\",\"stage\":\"%s\",\"rule\":\"%s\","
	         "\"reason\":\"%s\",\"rcpts_accepted\":%d,\"rcpts\":%d,\"note\":\"%s\"}\n",
	         eid, !v->code ? "accept" : v->code / 100 == 5 ? "reject" : "tempfail", v->code,
	         v->code ? v->esc : "", stage, rule, reason, accepted, r->nrcpt, enote);
}

void replay_format(char *buf, size_t size, const char *id, const struct record *r, const char *note)
{
	static const struct record_verdict none = {0};
	const char *stage;
	int accepted;
	const struct record_verdict *v = deciding(r, &stage, &accepted);
	char rule[RECORD_RULE_MAX * 3 + 4], eid[REPLAY_LINE_MAX / 2];
	char code[16];

	if (!v)
		v = &none;
	if (record_encode(rule, sizeof rule, v->rule) < 0)
		strcpy(rule, "?");
	if (record_encode(eid, sizeof eid, id) < 0)
		strcpy(eid, "?");
	snprintf(code, sizeof code, "%d", v->code);
	snprintf(buf, size, "%s %s %s %s %s rule=%s rcpts=%d/%d%s%s\n", eid,
	         !v->code ? "accept" : v->code / 100 == 5 ? "reject" : "tempfail", v->code ? code : "-",
	         v->code && v->esc[0] ? v->esc : "-", stage, rule, accepted, r->nrcpt, note[0] ? " # " : "", note);
}

void replay_note(char *buf, size_t size, const struct record *r, int rerun,
                 const char (*missing)[RECORD_NAME_MAX + 16], int nmissing)
{
	size_t n = 0;

	buf[0] = '\0';
#define ADD(...) (n < size ? (void)(n += (size_t)snprintf(buf + n, size - n, __VA_ARGS__)) : (void)0)
	if (rerun == 1)
		ADD("data re-run");
	else if (rerun == 2)
		ADD("data reused: no message recorded");
	for (int i = 0; i < nmissing; i++)
		ADD("%s%s%s", n ? "; " : "", i ? "" : "not recorded: ", missing[i]);
	if (r->dropped_answers)
		ADD("%s%d answers left out of the record", n ? "; " : "", r->dropped_answers);
#undef ADD
	if (n >= size && size > 4)
		strcpy(buf + size - 4, "...");
}

/* The verdict part of a line: up to " # " or its end (without "\n"). */
static size_t verdict_len(const char *s)
{
	const char *h = strstr(s, " # ");

	return h ? (size_t)(h - s) : strcspn(s, "\n");
}

int replay_same(const char *a, const char *b)
{
	size_t n = verdict_len(a);

	return n == verdict_len(b) && memcmp(a, b, n) == 0;
}

/* ---- --expect FILE ---- */

struct replay_expect {
	char *text;
	char **lines;   /* sorted by id */
	size_t n;
};

static int by_id(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	size_t nx = strcspn(x, " "), ny = strcspn(y, " ");
	int c = memcmp(x, y, nx < ny ? nx : ny);

	return c ? c : (nx > ny) - (nx < ny);
}

struct replay_expect *replay_expect_load(const char *path)
{
	struct replay_expect *e = calloc(1, sizeof *e);
	char msg[300];
	size_t len, cap = 0;

	if (!e || !(e->text = file_read(path, REPLAY_EXPECT_MAX, &len, NULL, msg, sizeof msg))) {
		fprintf(stderr, "moat replay: --expect %s: %s\n", path, e ? msg : "out of memory");
		replay_expect_free(e);
		return NULL;
	}
	for (char *p = e->text, *nl; *p; p = nl + 1) {
		if (!(nl = strchr(p, '\n')))
			nl = p + strlen(p) - 1; /* the last line, without its end */
		if (*p == '-' || *p == '+' || *p == '#' || *p == ' ' || *p == '\n' || !strchr(p, ' '))
			continue; /* a difference's lines, a comment, a blank line */
		if (e->n == cap) {
			char **l = realloc(e->lines, (cap = cap ? cap * 2 : 256) * sizeof *l);

			if (!l) {
				replay_expect_free(e);
				fprintf(stderr, "moat replay: --expect %s: out of memory\n", path);
				return NULL;
			}
			e->lines = l;
		}
		e->lines[e->n++] = p;
	}
	qsort(e->lines, e->n, sizeof *e->lines, by_id);
	return e;
}

void replay_expect_free(struct replay_expect *e)
{
	if (!e)
		return;
	free(e->text);
	free(e->lines);
	free(e);
}

int replay_expected(const char *expect, const struct replay_expect *exp, const char *id, const struct record *r,
                    char *buf, size_t size)
{
	char key[REPLAY_LINE_MAX / 2 + 2];
	const char *k = key, *const *hit;
	size_t n;

	if (strcmp(expect, "recorded") == 0) {
		replay_format(buf, size, id, r, "");
		return 1;
	}
	if (record_encode(key, sizeof key - 1, id) < 0)
		return 0;
	strcat(key, " ");
	if (!exp || !(hit = bsearch(&k, exp->lines, exp->n, sizeof *exp->lines, by_id)))
		return 0;
	n = strcspn(*hit, "\n");
	snprintf(buf, size, "%.*s\n", (int)n, *hit);
	return 1;
}
