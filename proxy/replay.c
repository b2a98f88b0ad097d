/* replay.c - "moat replay": the transactions record_dir holds, judged again
 * offline by the current config and rules, with the DNS answers recorded
 * (no network: a question the record does not answer is a temporary
 * failure, and the verdict says "not recorded").
 *
 *   moat replay [-c moat.conf] [--expect FILE|recorded] [--json] DIR|FILE...
 *
 * One line per transaction (the verdict format, below); with --expect,
 * only the transactions whose verdict differs from the one expected.
 * Exit status: 0 no difference, 1 some, 2 usage or I/O errors (a record
 * that cannot be read is named on stderr). */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "proxy/lib/bounds.h"
#include "proxy/lib/log.h"
#include "proxy/lib/readfile.h"
#include "proxy/lib/record.h"
#include "proxy/offline.h"
#include "proxy/replay.h"
#include "proxy/replay_verdict.h"
#include "rules/rules.h"

#define REPLAY_MISSING_MAX 3          /* unanswered questions named in a verdict's note */

/* The run: the resolver's source is the record being replayed. */
struct replay {
	struct offline o;
	const struct record *rec;        /* the record being replayed */
	char missing[REPLAY_MISSING_MAX][RECORD_NAME_MAX + 16];
	int nmissing;
	int waiting;
	struct verdict v;
	const char *expect;              /* NULL, "recorded" or a file */
	int json;                        /* --json */
	struct replay_expect *exp;       /* a file's verdicts */
	int ndiff, nerr, ntx;
};

/* The resolver's answers: the record's, by name and type. */
static int source(void *arg, const char *name, int type, struct dns_result *out)
{
	struct replay *rp = arg;
	const struct record *r = rp->rec;

	for (int i = 0; r && i < r->nans; i++) {
		const struct record_answer *a = &r->ans[i];

		if (a->type == type && strcasecmp(a->name, name) == 0) {
			*out = (struct dns_result){(enum dns_status)a->status, type, name, a->abuf, a->alen, a->ttl};
			return 0;
		}
	}
	{
		char q[sizeof rp->missing[0]];

		snprintf(q, sizeof q, "%s/%d", name, type);
		for (int i = 0; i < rp->nmissing; i++)
			if (strcmp(rp->missing[i], q) == 0)
				return -1;
		if (rp->nmissing < REPLAY_MISSING_MAX)
			memcpy(rp->missing[rp->nmissing++], q, sizeof q);
	}
	return -1;
}

static void done_cb(void *arg, const struct verdict *v)
{
	struct replay *rp = arg;

	rp->v = *v;
	rp->waiting = 0;
}

/* An asynchronous stage's verdict, into out. */
static void stage_wait(struct replay *rp, struct record_verdict *out)
{
	offline_wait(&rp->o, &rp->waiting);
	replay_verdict_of(out, &rp->v);
}

/* The record's transaction through the checks: the stages' verdicts into
 * now (its stages and recipients), as the session would have judged it. */
static int judge(struct replay *rp, struct checks *c, const struct record *r, struct record *now, int *rerun)
{
	struct verdict v;
	struct smtp_path path;
	int naccepted = 0, smtps = strcmp(r->listener, "smtps") == 0;

	if (r->tls && smtps)
		checks_tls(c);
	rp->waiting = 1;
	checks_connect(c, done_cb, rp);
	stage_wait(rp, &now->stage[REC_CONNECT]);
	checks_describe(c, STAGE_CONNECT, now->checks[REC_CONNECT], sizeof now->checks[0]);
	if (r->tls && !smtps)
		checks_tls(c); /* STARTTLS: after the connect stage */
	if (now->stage[REC_CONNECT].code || !r->helo[0])
		return 0;
	checks_helo(c, r->helo, &v);
	replay_verdict_of(&now->stage[REC_HELO], &v);
	if (v.code || !r->has_mail)
		return 0;
	if (r->auth_user[0] && checks_auth(c, r->auth_user) < 0) /* AUTH: after EHLO */
		return -1;
	if (offline_path(r->from[0] ? r->from : "<>", 0, &path) < 0)
		return -1;
	rp->waiting = 1;
	checks_mail(c, &path, done_cb, rp);
	stage_wait(rp, &now->stage[REC_MAIL]);
	checks_describe(c, STAGE_MAIL, now->checks[REC_MAIL], sizeof now->checks[0]);
	if (now->stage[REC_MAIL].code)
		return 0;
	for (int i = 0; i < r->nrcpt; i++) {
		if (offline_path(r->rcpt[i].mailbox, 1, &path) < 0)
			return -1;
		checks_rcpt(c, &path, &v);
		replay_verdict_of(&now->rcpt[i].v, &v);
		if (!v.code) {
			checks_rcpt_accepted(c);
			naccepted++;
		}
	}
	if (!naccepted || !r->stage[REC_DATA].judged)
		return 0; /* the data stage was not reached */
	if (!r->message) {
		now->stage[REC_DATA] = r->stage[REC_DATA]; /* no message recorded: its verdict reused */
		*rerun = 2;
		return 0;
	}
	{
		struct offline_msg m = {(const char *)r->message, r->message_len};

		*rerun = 1;
		rp->waiting = 1;
		checks_data(c, offline_msg_reader, &m, m.len, done_cb, rp);
		stage_wait(rp, &now->stage[REC_DATA]);
		checks_describe(c, STAGE_DATA, now->checks[REC_DATA], sizeof now->checks[0]);
	}
	return 0;
}

/* A record's checks, with the session's context. NULL on error. */
static struct checks *checks_for(struct replay *rp, const struct record *r, struct sockaddr_storage *ss)
{
	struct check_env env = {rp->o.base, rp->o.dns, rp->o.dkim, NULL, NULL, NULL};
	struct checks *c;
	int k;

	if (offline_client(r->client, ss) < 0)
		return NULL;
	for (k = 0; k < LISTENER_KINDS && strcmp(r->listener, rules_listener_name((enum listener_kind)k)); k++)
		;
	if (k == LISTENER_KINDS || !(c = checks_new(&rp->o.opt, &env, (struct sockaddr *)ss)))
		return NULL;
	checks_listener(c, (enum listener_kind)k);
	return c;
}

/* Under a difference: what the checks found then and now, for the stages
 * where it differs (a changed config: another DNS list, a check turned on). */
static void print_checks_diff(const struct record *r, const struct record *now)
{
	for (int i = 0; i < RECORD_STAGES; i++)
		if (r->checks[i][0] && now->checks[i][0] && strcmp(r->checks[i], now->checks[i]) != 0)
			printf("  %s checks then: %s\n  %s checks now:  %s\n", record_stage_name((enum record_stage)i),
			       r->checks[i], record_stage_name((enum record_stage)i), now->checks[i]);
}

/* --json --expect: {"expected": the expected line, "now": the verdict}. */
static void print_diff_json(const char *was, const char *id, const struct record *now, const char *note)
{
	char line[REPLAY_LINE_MAX], esc[REPLAY_LINE_MAX * 6];
	char *obj = malloc(REPLAY_JSON_MAX);

	if (!obj)
		return;
	snprintf(line, sizeof line, "%.*s", (int)strcspn(was, "\n"), was);
	json_escape(esc, sizeof esc, line, sizeof line);
	replay_format_json(obj, REPLAY_JSON_MAX, id, now, note);
	printf("{\"expected\":\"%s\",\"now\":%.*s}\n", esc, (int)strcspn(obj, "\n"), obj);
	free(obj);
}

/* The verdict's line (or object), or with --expect the difference if any. */
static void report(struct replay *rp, const char *id, const struct record *r, const struct record *now,
                   const char *note)
{
	char line[REPLAY_LINE_MAX], was[REPLAY_LINE_MAX];

	replay_format(line, sizeof line, id, now, note);
	rp->ntx++;
	if (rp->expect) {
		if (!replay_expected(rp->expect, rp->exp, id, r, was, sizeof was) || replay_same(was, line))
			return;
		rp->ndiff++;
		if (rp->json) {
			print_diff_json(was, id, now, note);
		} else {
			printf("- %s+ %s", was, line);
			print_checks_diff(r, now);
		}
	} else if (rp->json) {
		char *obj = malloc(REPLAY_JSON_MAX);

		if (obj) {
			replay_format_json(obj, REPLAY_JSON_MAX, id, now, note);
			fputs(obj, stdout);
		}
		free(obj);
	} else {
		fputs(line, stdout);
	}
}

/* Replay one record (its name: the verdict's id); -1 on error. */
static int replay_one(struct replay *rp, const char *id, const struct record *r)
{
	struct record now = {0};
	struct sockaddr_storage ss;
	struct checks *c;
	char note[REPLAY_LINE_MAX];
	int rerun = 0, rc;

	rp->rec = r;
	rp->nmissing = 0;
	if (!(c = checks_for(rp, r, &ss)))
		return -1;
	now.rcpt = calloc((size_t)r->nrcpt + 1, sizeof *now.rcpt);
	now.nrcpt = r->nrcpt;
	now.has_mail = r->has_mail;
	rc = now.rcpt ? judge(rp, c, r, &now, &rerun) : -1;
	checks_free(c);
	rp->rec = NULL;
	if (rc == 0) {
		replay_note(note, sizeof note, r, rerun, rp->missing, rp->nmissing);
		report(rp, id, r, &now, note);
	}
	free(now.rcpt);
	return rc;
}

/* One record file. */
static void replay_file(struct replay *rp, const char *path)
{
	struct record r;
	char err[300], *buf;
	const char *base = strrchr(path, '/');
	size_t len;

	if (!(buf = file_read(path, MOAT_RECORD_FILE_MAX, &len, NULL, err, sizeof err))) {
		fprintf(stderr, "moat replay: %s: %s\n", path, err);
		rp->nerr++;
		return;
	}
	if (record_parse(buf, len, &r, err, sizeof err) < 0) {
		fprintf(stderr, "moat replay: %s: %s\n", path, err);
		rp->nerr++;
	} else {
		if (replay_one(rp, base ? base + 1 : path, &r) < 0) {
			fprintf(stderr, "moat replay: %s: cannot replay it (a bad address, or out of memory)\n", path);
			rp->nerr++;
		}
		record_free(&r);
	}
	free(buf);
}

static int is_record(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return d->d_name[0] != '.' && n > 4 && strcmp(d->d_name + n - 4, ".rec") == 0;
}

/* A directory: its records in name order (time, session, transaction). */
static void replay_path(struct replay *rp, const char *path)
{
	struct dirent **names;
	struct stat st;
	int n;

	if (stat(path, &st) == 0 && !S_ISDIR(st.st_mode)) {
		replay_file(rp, path);
		return;
	}
	if ((n = scandir(path, &names, is_record, alphasort)) < 0) {
		fprintf(stderr, "moat replay: %s: %s\n", path, strerror(errno));
		rp->nerr++;
		return;
	}
	for (int i = 0; i < n; i++) {
		char full[4096];

		snprintf(full, sizeof full, "%s/%s", path, names[i]->d_name);
		replay_file(rp, full);
		free(names[i]);
	}
	free(names);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: moat replay [-c config] [--expect FILE|recorded] [--json] DIR|FILE ...\n"
	           "Judges the transactions record_dir holds again, offline, by the config's\n"
	           "current rules and the DNS answers recorded; one verdict line each. With\n"
	           "--expect, only the verdicts that differ from FILE's (an earlier output) or\n"
	           "from those moat gave at the time (recorded). Exit: 0 no difference,\n"
	           "1 differences, 2 usage or I/O errors.\n");
}

int replay_main(int argc, char **argv, const char *default_config)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"expect", required_argument, NULL, 'e'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct replay rp = {0};
	const char *conf = default_config;
	int opt, rc;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': conf = optarg; break;
		case 'e': rp.expect = optarg; break;
		case 'j': rp.json = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind == argc) {
		usage(stderr);
		return 2;
	}
	if (rp.expect && strcmp(rp.expect, "recorded") != 0 && !(rp.exp = replay_expect_load(rp.expect)))
		return 2;
	if (offline_start(&rp.o, conf, "moat replay", source, &rp) < 0) {
		offline_end(&rp.o);
		replay_expect_free(rp.exp);
		return 2;
	}
	for (int i = optind; i < argc; i++)
		replay_path(&rp, argv[i]);
	offline_end(&rp.o);
	replay_expect_free(rp.exp);
	if (rp.expect)
		fprintf(stderr, "moat replay: %d transaction(s) replayed, %d differ%s\n", rp.ntx, rp.ndiff,
		        rp.nerr ? ", some records could not be read" : "");
	rc = rp.nerr ? 2 : rp.ndiff ? 1 : 0;
	return rc;
}
