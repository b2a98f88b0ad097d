/* checkcmd.c - "moat check": one made-up transaction through the real
 * checks and rules (DNS included), to explain what moat would decide and
 * which rule decided. Nothing is sent anywhere: the backend is never asked
 * and recipients that pass are taken as accepted.
 *
 *   moat check -c moat.conf --client IP --helo NAME --from ADDR --rcpt ADDR
 *              [--rcpt ADDR...] [--message FILE] [--json]
 *
 * Exit status: 0 accepted, 1 rejected (5xx), 3 refused for now (4xx),
 * 2 usage or configuration error. */
#include <getopt.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "proxy/checkcmd.h"
#include "proxy/lib/bounds.h"
#include "proxy/lib/log.h"
#include "proxy/offline.h"
#include "rules/rules.h"

#define CHECK_RCPTS_MAX 100             /* --rcpt options */
#define CHECK_MESSAGE_MAX (64u << 20)   /* --message file */
#define CHECK_OUT_MAX (256 * 1024)      /* the report */

/* The report, built as text or as JSON. */
struct report {
	int json;
	char *buf;
	size_t len;
	int nstages;    /* JSON: stage objects written */
	int nhits;      /* JSON: hits in the current stage */
};

struct run {
	struct event_base *base;
	struct report rep;
	int waiting;
	struct verdict v;
};

static void out(struct report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(struct report *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (r->len >= CHECK_OUT_MAX - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(r->buf + r->len, CHECK_OUT_MAX - r->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		r->len += (size_t)n < CHECK_OUT_MAX - r->len ? (size_t)n : CHECK_OUT_MAX - r->len - 1;
}

/* A JSON string value (with its quotes). */
static void out_js(struct report *r, const char *s)
{
	char esc[2048];

	json_escape(esc, sizeof esc, s, sizeof esc / 6);
	out(r, "\"%s\"", esc);
}

/* The start of a stage: its name and what the checks found. */
static void stage_begin(struct report *r, enum rule_stage stage, const char *what, const char *found)
{
	if (r->json) {
		out(r, "%s\n  {\"stage\":\"%s\",\"input\":", r->nstages++ ? "," : "", rules_stage_name(stage));
		out_js(r, what);
		out(r, ",\"checks\":");
		out_js(r, found);
		out(r, ",\"hits\":[");
		r->nhits = 0;
		return;
	}
	out(r, "%-8s %s\n", rules_stage_name(stage), what);
	if (found[0])
		out(r, "         checks: %s\n", found);
}

/* "FILE:LINE", and " id NAME" when the rule has one. */
static void rule_named(char *buf, size_t size, const char *file, int line, const char *id)
{
	size_t n;

	rules_where(buf, size, file, line);
	n = strlen(buf);
	if (id && n < size)
		snprintf(buf + n, size - n, " id %s", id);
}

/* The same as JSON members: "rule":"FILE:LINE","rule_id":"NAME". */
static void out_rule_json(struct report *r, const char *file, int line, const char *id)
{
	char where[1100];

	rules_where(where, sizeof where, file, line);
	out(r, "\"rule\":");
	out_js(r, where);
	out(r, ",\"rule_id\":");
	out_js(r, id ? id : "");
}

static void hit_cb(void *arg, enum rule_stage stage, const struct rule_verdict *h, const char *rcpt)
{
	struct report *r = arg;
	char rule[1100], act[32];

	rule_named(rule, sizeof rule, h->file, h->line, h->id);
	snprintf(act, sizeof act, "%s%s", h->monitor ? "would-" : "", rules_action_name(h->action));
	if (r->json) {
		out(r, "%s{\"action\":\"%s\",", r->nhits++ ? "," : "", act);
		out_rule_json(r, h->file, h->line, h->id);
		out(r, ",\"text\":");
		out_js(r, h->action == ACTION_TAG ? h->text : h->reason);
		out(r, "}");
		return;
	}
	out(r, "         %s: %s (%s)\n", act, h->action == ACTION_TAG ? h->text : h->reason, rule);
}

/* What greylisting and the rate limits would ask the store (moat check
 * asks none: it says what the session would ask). */
static void stage_limits(struct report *r, const struct verdict *v)
{
	char rule[1100];

	if (v->code)
		return;
	if (v->greylist) {
		rule_named(rule, sizeof rule, v->grey.file, v->grey.line, v->grey.id);
		if (r->json) {
			out(r, ",\"greylist\":{");
			out_rule_json(r, v->grey.file, v->grey.line, v->grey.id);
			out(r, ",\"reason\":");
			out_js(r, v->grey.reason);
			out(r, "}");
		} else {
			out(r, "         greylist: rule %s (%s): 451 4.7.1 until the triplet passes\n", rule, v->grey.reason);
		}
	}
	if (r->json && v->nlimits)
		out(r, ",\"ratelimit\":[");
	for (int i = 0; i < v->nlimits; i++) {
		const struct rule_limit *l = &v->limits[i];

		rule_named(rule, sizeof rule, l->file, l->line, l->id);
		if (r->json) {
			out(r, "%s{\"key\":\"%s\",\"max\":%ld,\"window\":%d,\"unit\":\"%s\",", i ? "," : "",
			    rules_limit_key_name(l->key), l->max, l->window, rules_limit_unit_name(l->unit));
			out_rule_json(r, l->file, l->line, l->id);
			out(r, "}");
		} else {
			out(r, "         ratelimit: %ld %s per %d s per %s (rule %s)\n", l->max, rules_limit_unit_name(l->unit),
			    l->window, rules_limit_key_name(l->key), rule);
		}
	}
	if (r->json && v->nlimits)
		out(r, "]");
}

/* The end of a stage: its verdict. Returns 1 when it refused. */
static int stage_end(struct report *r, const struct verdict *v)
{
	char rule[1100];

	rule_named(rule, sizeof rule, v->rule_file, v->rule_line, v->rule_id);
	if (r->json) {
		out(r, "],\"decision\":\"%s\",", v->code / 100 == 5 ? "reject" : v->code ? "tempfail"
		                                   : v->rule_file ? "accept" : "continue");
		out_rule_json(r, v->rule_file, v->rule_line, v->rule_id);
		out(r, ",\"reason\":");
		out_js(r, v->reason);
		if (v->code) {
			char reply[700];

			snprintf(reply, sizeof reply, "%d %s %s", v->code, v->esc, v->text);
			out(r, ",\"reply\":");
			out_js(r, reply);
		}
		stage_limits(r, v);
		out(r, "}");
		return v->code != 0;
	}
	stage_limits(r, v);
	if (v->code)
		out(r, "         -> %s: %d %s %s\n            rule %s (%s)\n", v->code / 100 == 5 ? "REJECT" : "TEMPFAIL",
		    v->code, v->esc, v->text, rule, v->reason);
	else if (v->rule_file)
		out(r, "         -> accept: rule %s (%s)\n", rule, v->reason);
	else
		out(r, "         -> no rule decided: go on\n");
	return v->code != 0;
}

static void done_cb(void *arg, const struct verdict *v)
{
	struct run *run = arg;

	run->v = *v;
	run->waiting = 0;
}

/* The message in SMTP wire form: CRLF line ends, dot-stuffed, as the spool has it. */
static char *wire_form(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *raw, *w;
	size_t n, i, o = 0;
	int bol = 1;

	if (!f)
		return NULL;
	raw = malloc(CHECK_MESSAGE_MAX + 1);
	n = raw ? fread(raw, 1, CHECK_MESSAGE_MAX + 1, f) : 0;
	fclose(f);
	if (!raw || n > CHECK_MESSAGE_MAX || !(w = malloc(n * 2 + 3))) {
		free(raw);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		if (bol && raw[i] == '.')
			w[o++] = '.';
		bol = 0;
		if (raw[i] == '\n' || (raw[i] == '\r' && (i + 1 == n || raw[i + 1] != '\n'))) {
			w[o++] = '\r';
			w[o++] = '\n';
			bol = 1;
		} else if (raw[i] != '\r') {
			w[o++] = raw[i];
		}
	}
	if (!bol) {
		w[o++] = '\r';
		w[o++] = '\n';
	}
	free(raw);
	*len = o;
	return w;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: moat check [-c config] --client IP [--helo NAME] --from ADDR --rcpt ADDR\n"
	           "                  [--rcpt ADDR ...] [--message FILE] [--tls] [--listener KIND]\n"
	           "                  [--auth-user NAME] [--json]\n"
	           "Runs moat's checks and rules for one transaction, DNS included, and says\n"
	           "which rule decides. Nothing is sent anywhere. Exit: 0 accepted, 1 rejected,\n"
	           "3 refused for now (4xx), 2 usage or configuration error.\n");
}

/* The command line. */
struct args {
	const char *conf, *client, *helo, *from, *msgfile;
	const char *rcpts[CHECK_RCPTS_MAX];
	int nrcpt;
	int tls; /* --tls: as a client that used STARTTLS (the rules' tls) */
	enum listener_kind listener; /* --listener smtp|smtps|submission (the rules' listener) */
	const char *auth_user;       /* --auth-user: as a client the backend took AUTH from */
};

/* 0 to go on, else the exit status (1 + status: 0 for --help). */
static int parse_args(int argc, char **argv, const char *default_config, struct args *a, int *json)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"client", required_argument, NULL, 'a'},
		{"helo", required_argument, NULL, 'h'},   {"from", required_argument, NULL, 'f'},
		{"rcpt", required_argument, NULL, 'r'},   {"message", required_argument, NULL, 'm'},
		{"json", no_argument, NULL, 'j'},         {"help", no_argument, NULL, 'H'},
		{"tls", no_argument, NULL, 't'},          {"listener", required_argument, NULL, 'l'},
		{"auth-user", required_argument, NULL, 'u'}, {NULL, 0, NULL, 0},
	};
	int opt, k;

	*a = (struct args){.conf = default_config, .helo = "localhost"};
	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': a->conf = optarg; break;
		case 'a': a->client = optarg; break;
		case 'h': a->helo = optarg; break;
		case 'f': a->from = optarg; break;
		case 'r':
			if (a->nrcpt == CHECK_RCPTS_MAX) {
				fprintf(stderr, "moat check: at most %d --rcpt\n", CHECK_RCPTS_MAX);
				return 1 + 2;
			}
			a->rcpts[a->nrcpt++] = optarg;
			break;
		case 'm': a->msgfile = optarg; break;
		case 'j': *json = 1; break;
		case 't': a->tls = 1; break;
		case 'l':
			for (k = 0; k < LISTENER_KINDS && strcmp(optarg, rules_listener_name((enum listener_kind)k)); k++)
				;
			if (k == LISTENER_KINDS) {
				fprintf(stderr, "moat check: --listener %s: not smtp, smtps or submission\n", optarg);
				return 1 + 2;
			}
			a->listener = (enum listener_kind)k;
			break;
		case 'u': a->auth_user = optarg; break;
		case 'H': usage(stdout); return 1 + 0;
		default: usage(stderr); return 1 + 2;
		}
	}
	if (optind != argc || !a->client || !a->from || a->nrcpt == 0) {
		usage(stderr);
		return 1 + 2;
	}
	return 0;
}

/* Everything a check run needs: the config, the resolver, the checks. */
struct setup {
	struct offline o;
	struct config *cfg;    /* o's */
	struct check_options opt;
	struct checks *c;
	struct sockaddr_storage ss;
	struct verdict worst;  /* the refusal that stands, if any */
	int refused;
};

static int setup_start(struct setup *st, struct run *run, const struct args *a)
{
	if (offline_client(a->client, &st->ss) < 0) {
		fprintf(stderr, "moat check: --client %s: not an IP address\n", a->client);
		return -1;
	}
	if (offline_start(&st->o, a->conf, "moat check", NULL, NULL) < 0)
		return -1;
	st->cfg = st->o.cfg;
	st->opt = st->o.opt;
	run->base = st->o.base;
	if (!(run->rep.buf = malloc(CHECK_OUT_MAX)))
		return -1;
	{
		struct check_env env = {run->base, st->o.dns, st->o.dkim, NULL, hit_cb, &run->rep};

		st->c = checks_new(&st->opt, &env, (struct sockaddr *)&st->ss);
		if (st->c && a->tls)
			checks_tls(st->c);
		if (st->c)
			checks_listener(st->c, a->listener);
		if (st->c && a->auth_user && checks_auth(st->c, a->auth_user) < 0) {
			checks_free(st->c);
			st->c = NULL;
		}
	}
	run->rep.buf[0] = '\0';
	return st->c ? 0 : -1;
}

static void setup_end(struct setup *st, struct run *run)
{
	checks_free(st->c);
	offline_end(&st->o);
	free(run->rep.buf);
}

static void report_head(struct run *run, const struct setup *st, const char *conf)
{
	const char *rules = st->cfg->rules[0] ? st->cfg->rules : "(built-in default.rules)";

	if (run->rep.json) {
		out(&run->rep, "{\"config\":");
		out_js(&run->rep, conf);
		out(&run->rep, ",\"rules\":");
		out_js(&run->rep, rules);
		out(&run->rep, ",\"mode\":\"%s\",\"stages\":[", st->cfg->monitor ? "monitor" : "enforce");
	} else {
		out(&run->rep, "config   %s, rules %s%s\n", conf, rules,
		    st->cfg->monitor ? ", mode = monitor (nothing is refused)" : "");
	}
}

/* An asynchronous stage (connect, MAIL, DATA) and its report. */
static void run_async_stage(struct run *run, struct setup *st, enum rule_stage stage, const char *what,
                            const char *prefix)
{
	char found[1024], checks[900];

	offline_wait(&st->o, &run->waiting);
	checks_describe(st->c, stage, checks, sizeof checks);
	snprintf(found, sizeof found, "%s%s", prefix, checks);
	stage_begin(&run->rep, stage, what, found);
	if ((st->refused = stage_end(&run->rep, &run->v)))
		st->worst = run->v;
}

static void stage_connect(struct run *run, struct setup *st, const struct args *a)
{
	int trusted = relay_client_trusted(&st->opt, (struct sockaddr *)&st->ss);

	run->waiting = 1;
	checks_connect(st->c, done_cb, run);
	run_async_stage(run, st, STAGE_CONNECT, a->client, trusted ? "trusted, " : "");
}

static void stage_helo(struct run *run, struct setup *st, const struct args *a)
{
	struct verdict v;

	checks_helo(st->c, a->helo, &v);
	stage_begin(&run->rep, STAGE_HELO, a->helo, "");
	if ((st->refused = stage_end(&run->rep, &v)))
		st->worst = v;
}

static int stage_mail(struct run *run, struct setup *st, const struct args *a)
{
	struct smtp_path path;
	char what[MOAT_PATH_MAX + 64];

	if (offline_path(a->from, 0, &path) < 0) {
		fprintf(stderr, "moat check: --from %s: not a valid address\n", a->from);
		return -1;
	}
	run->waiting = 1;
	checks_mail(st->c, &path, done_cb, run);
	snprintf(what, sizeof what, "<%s>", path.null ? "" : path.mailbox);
	run_async_stage(run, st, STAGE_MAIL, what, "");
	return 0;
}

/* Each --rcpt on its own; one accepted is enough to go on. */
static int stage_rcpts(struct run *run, struct setup *st, const struct args *a)
{
	int naccepted = 0;

	for (int i = 0; i < a->nrcpt && !st->refused; i++) {
		struct smtp_path path;
		struct verdict v;
		char what[MOAT_PATH_MAX + 64], found[300];
		enum relay_result rr;

		if (offline_path(a->rcpts[i], 1, &path) < 0) {
			fprintf(stderr, "moat check: --rcpt %s: not a valid address\n", a->rcpts[i]);
			return -1;
		}
		checks_rcpt(st->c, &path, &v);
		snprintf(what, sizeof what, "<%s>", path.mailbox);
		rr = relay_check(&st->opt, (struct sockaddr *)&st->ss, &path);
		snprintf(found, sizeof found, "relay %s%s", rr == RELAY_OK ? "ok" : rr == RELAY_DENIED ? "denied" : "routing",
		         path.domain[0] && relay_domain_is_local(&st->opt, path.ascii_domain) ? ", local domain" : "");
		stage_begin(&run->rep, STAGE_RCPT, what, found);
		if (stage_end(&run->rep, &v)) {
			if (!st->worst.code || (v.code / 100 == 5 && st->worst.code / 100 != 5))
				st->worst = v;
		} else {
			checks_rcpt_accepted(st->c);
			naccepted++;
		}
	}
	if (!st->refused && naccepted == 0)
		st->refused = 1;
	else if (naccepted)
		memset(&st->worst, 0, sizeof st->worst);
	return 0;
}

static int stage_data(struct run *run, struct setup *st, const struct args *a)
{
	struct offline_msg m;
	char *wire = wire_form(a->msgfile, &m.len), size[64];

	if (!wire) {
		fprintf(stderr, "moat check: --message %s: cannot read it (or over %u bytes)\n", a->msgfile,
		        CHECK_MESSAGE_MAX);
		return -1;
	}
	m.p = wire;
	run->waiting = 1;
	checks_data(st->c, offline_msg_reader, &m, m.len, done_cb, run);
	snprintf(size, sizeof size, "size %zu, ", m.len);
	run_async_stage(run, st, STAGE_DATA, a->msgfile, size);
	if (!st->refused && checks_tags(st->c)[0] && !run->rep.json)
		out(&run->rep, "         header fields added:\n%s", checks_tags(st->c));
	free(wire);
	return 0;
}

/* The result line; the exit status. */
static int report_result(struct run *run, const struct setup *st, const struct args *a)
{
	const struct verdict *w = &st->worst;
	int rc = !w->code ? 0 : w->code / 100 == 5 ? 1 : 3;

	if (run->rep.json) {
		out(&run->rep, "\n],\"result\":\"%s\"", rc == 0 ? "accept" : rc == 1 ? "reject" : "tempfail");
		if (w->code) {
			char reply[700];

			snprintf(reply, sizeof reply, "%d %s %s", w->code, w->esc, w->text);
			out(&run->rep, ",\"reply\":");
			out_js(&run->rep, reply);
			out(&run->rep, ",");
			out_rule_json(&run->rep, w->rule_file, w->rule_line, w->rule_id);
		}
		if (rc == 0 && !a->msgfile)
			out(&run->rep, ",\"note\":\"no --message: the data stage was not checked\"");
		out(&run->rep, "}\n");
	} else {
		out(&run->rep, "result   %s%s\n", rc == 0 ? "ACCEPTED" : rc == 1 ? "REJECTED" : "TEMPFAILED",
		    rc == 0 && !a->msgfile ? " up to DATA (no --message: the data stage was not checked)" : "");
	}
	fputs(run->rep.buf, stdout);
	return rc;
}

int check_main(int argc, char **argv, const char *default_config)
{
	struct run run;
	struct setup st;
	struct args a;
	int rc;

	memset(&run, 0, sizeof run);
	memset(&st, 0, sizeof st);
	if ((rc = parse_args(argc, argv, default_config, &a, &run.rep.json)) != 0)
		return rc - 1;
	rc = 2;
	if (setup_start(&st, &run, &a) < 0)
		goto out;
	report_head(&run, &st, a.conf);
	stage_connect(&run, &st, &a);
	if (!st.refused)
		stage_helo(&run, &st, &a);
	if (!st.refused && stage_mail(&run, &st, &a) < 0)
		goto out;
	if (stage_rcpts(&run, &st, &a) < 0)
		goto out;
	if (!st.refused && a.msgfile && stage_data(&run, &st, &a) < 0)
		goto out;
	rc = report_result(&run, &st, &a);
out:
	setup_end(&st, &run);
	return rc;
}
