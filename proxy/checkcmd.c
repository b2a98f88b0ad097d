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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "proxy/checkcmd.h"
#include "checks/checks.h"
#include "proxy/config.h"
#include "checks/dns.h"
#include "proxy/lib/bounds.h"
#include "proxy/lib/log.h"
#include "proxy/lib/netaddr.h"
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

static void rule_text(char *buf, size_t size, const char *file, int line)
{
	if (!file)
		snprintf(buf, size, "%s", "");
	else if (line > 0)
		snprintf(buf, size, "%s:%d", file, line);
	else
		snprintf(buf, size, "%s", file);
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

static void hit_cb(void *arg, enum rule_stage stage, const struct rule_verdict *h, const char *rcpt)
{
	struct report *r = arg;
	char rule[1100], act[32];

	rule_text(rule, sizeof rule, h->file, h->line);
	snprintf(act, sizeof act, "%s%s", h->monitor ? "would-" : "", rules_action_name(h->action));
	if (r->json) {
		out(r, "%s{\"action\":\"%s\",\"rule\":", r->nhits++ ? "," : "", act);
		out_js(r, rule);
		out(r, ",\"text\":");
		out_js(r, h->action == ACTION_TAG ? h->text : h->reason);
		out(r, "}");
		return;
	}
	out(r, "         %s: %s (%s)\n", act, h->action == ACTION_TAG ? h->text : h->reason, rule);
}

/* The end of a stage: its verdict. Returns 1 when it refused. */
static int stage_end(struct report *r, const struct verdict *v)
{
	char rule[1100];

	rule_text(rule, sizeof rule, v->rule_file, v->rule_line);
	if (r->json) {
		out(r, "],\"decision\":\"%s\",\"rule\":", v->code / 100 == 5 ? "reject" : v->code ? "tempfail"
		                                          : v->rule_file ? "accept" : "continue");
		out_js(r, rule);
		out(r, ",\"reason\":");
		out_js(r, v->reason);
		if (v->code) {
			char reply[700];

			snprintf(reply, sizeof reply, "%d %s %s", v->code, v->esc, v->text);
			out(r, ",\"reply\":");
			out_js(r, reply);
		}
		out(r, "}");
		return v->code != 0;
	}
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

/* Wait for an asynchronous stage (DNS) on the loop. */
static void wait_for(struct run *run)
{
	while (run->waiting)
		event_base_loop(run->base, EVLOOP_ONCE);
}

/* "user@example.com", "<user@example.com>" or "<>" as a path. */
static int parse_path(const char *addr, int is_rcpt, struct smtp_path *p)
{
	char arg[MOAT_PATH_MAX + 16];
	struct smtp_params ps;

	if (addr[0] == '<')
		snprintf(arg, sizeof arg, "%s:%s", is_rcpt ? "TO" : "FROM", addr);
	else
		snprintf(arg, sizeof arg, "%s:<%s>", is_rcpt ? "TO" : "FROM", addr);
	return smtp_parse_mail_rcpt(arg, is_rcpt, p, &ps) == PATH_OK ? 0 : -1;
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

struct membuf {
	const char *p;
	size_t len;
};

static long mem_reader(void *arg, size_t off, char *buf, size_t len)
{
	const struct membuf *m = arg;

	if (off >= m->len)
		return 0;
	if (len > m->len - off)
		len = m->len - off;
	memcpy(buf, m->p + off, len);
	return (long)len;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: moat check [-c config] --client IP [--helo NAME] --from ADDR --rcpt ADDR\n"
	           "                  [--rcpt ADDR ...] [--message FILE] [--json]\n"
	           "Runs moat's checks and rules for one transaction, DNS included, and says\n"
	           "which rule decides. Nothing is sent anywhere. Exit: 0 accepted, 1 rejected,\n"
	           "3 refused for now (4xx), 2 usage or configuration error.\n");
}

/* What the checks found at MAIL, in a few words. */
static void mail_found(const struct check_results *r, char *buf, size_t size)
{
	snprintf(buf, size, "sender-check %s, spf %s%s%s%s", r->sender_done ? sender_res_name(r->sender) : "(off)",
	         r->spf_done ? spf_res_name(r->spf.res) : "(off)", r->spf_done && r->spf.reason[0] ? " (" : "",
	         r->spf_done ? r->spf.reason : "", r->spf_done && r->spf.reason[0] ? ")" : "");
}

static void data_found(const struct check_results *r, size_t size, char *buf, size_t bsize)
{
	int i, n = snprintf(buf, bsize, "size %zu, dkim ", size);

	if (!r->dkim_done) {
		snprintf(buf + n, bsize - (size_t)n, "(off)");
		return;
	}
	n += snprintf(buf + n, bsize - (size_t)n, "%s", dkim_res_name(r->dkim.summary));
	for (i = 0; i < r->dkim.nsigs && n > 0 && (size_t)n < bsize; i++)
		n += snprintf(buf + n, bsize - (size_t)n, "%s%s=%s", i ? ", " : " (", r->dkim.sig[i].domain,
		              dkim_res_name(r->dkim.sig[i].res));
	if (r->dkim.nsigs && n > 0 && (size_t)n < bsize)
		snprintf(buf + n, bsize - (size_t)n, ")");
}

int check_main(int argc, char **argv, const char *default_config)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"client", required_argument, NULL, 'a'},
		{"helo", required_argument, NULL, 'h'},   {"from", required_argument, NULL, 'f'},
		{"rcpt", required_argument, NULL, 'r'},   {"message", required_argument, NULL, 'm'},
		{"json", no_argument, NULL, 'j'},         {"help", no_argument, NULL, 'H'},
		{NULL, 0, NULL, 0},
	};
	const char *conf = default_config, *client = NULL, *helo = "localhost", *from = NULL, *msgfile = NULL;
	const char *rcpts[CHECK_RCPTS_MAX];
	int nrcpt = 0, opt, i, refused = 0, naccepted = 0, rc;
	struct run run;
	struct config *cfg;
	struct check_options copt;
	struct dns *dns = NULL;
	struct dkim_verifier *dkim = NULL;
	struct checks *c = NULL;
	struct sockaddr_storage ss;
	struct smtp_path path;
	struct verdict v, worst;
	char err[1024], found[1024], what[MOAT_PATH_MAX + 64];

	memset(&run, 0, sizeof run);
	memset(&worst, 0, sizeof worst);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': conf = optarg; break;
		case 'a': client = optarg; break;
		case 'h': helo = optarg; break;
		case 'f': from = optarg; break;
		case 'r':
			if (nrcpt == CHECK_RCPTS_MAX) {
				fprintf(stderr, "moat check: at most %d --rcpt\n", CHECK_RCPTS_MAX);
				return 2;
			}
			rcpts[nrcpt++] = optarg;
			break;
		case 'm': msgfile = optarg; break;
		case 'j': run.rep.json = 1; break;
		case 'H': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || !client || !from || nrcpt == 0) {
		usage(stderr);
		return 2;
	}
	{
		struct cidr cl;

		if (cidr_parse(client, &cl) < 0 || strchr(client, '/')) {
			fprintf(stderr, "moat check: --client %s: not an IP address\n", client);
			return 2;
		}
		memset(&ss, 0, sizeof ss);
		if (cl.family == AF_INET) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

			sin->sin_family = AF_INET;
			memcpy(&sin->sin_addr, cl.addr, 4);
		} else {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

			sin6->sin6_family = AF_INET6;
			memcpy(&sin6->sin6_addr, cl.addr, 16);
		}
	}
	cfg = config_load(conf, err, sizeof err);
	if (!cfg) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	config_check_options(cfg, &copt);
	run.rep.buf = malloc(CHECK_OUT_MAX);
	run.base = event_base_new();
	if (run.base && run.rep.buf) {
		struct dns_options o = {
			.servers = cfg->dns_servers,
			.timeout_ms = cfg->dns_timeout,
			.tries = cfg->dns_tries,
			.cache_max = (size_t)cfg->dns_cache_size,
		};

		dns = dns_new(run.base, &o);
		dkim = dns ? dkim_verifier_new(dns) : NULL;
	}
	if (!dkim) {
		fprintf(stderr, "moat check: cannot start the resolver or the DKIM library\n");
		rc = 2;
		goto out;
	}
	dkim_verifier_set_wait(dkim, run.base, 0);
	{
		struct check_env env = {run.base, dns, dkim, hit_cb, &run.rep};

		c = checks_new(&copt, &env, (struct sockaddr *)&ss);
	}
	if (!c) {
		rc = 2;
		goto out;
	}
	run.rep.buf[0] = '\0';
	if (run.rep.json) {
		out(&run.rep, "{\"config\":");
		out_js(&run.rep, conf);
		out(&run.rep, ",\"rules\":");
		out_js(&run.rep, cfg->rules[0] ? cfg->rules : "(built-in default.rules)");
		out(&run.rep, ",\"mode\":\"%s\",\"stages\":[", cfg->monitor ? "monitor" : "enforce");
	} else {
		out(&run.rep, "config   %s, rules %s%s\n", conf, cfg->rules[0] ? cfg->rules : "(built-in default.rules)",
		    cfg->monitor ? ", mode = monitor (nothing is refused)" : "");
	}

	/* connect */
	run.waiting = 1;
	checks_connect(c, done_cb, &run);
	wait_for(&run);
	{
		enum rdns_res rr;
		const char *rname;
		int have = checks_rdns(c, &rr, &rname);

		snprintf(found, sizeof found, "%s%s%s", have ? "rdns " : "",
		         have ? (rr == RDNS_OK ? rname : rdns_res_name(rr)) : "",
		         relay_client_trusted(&copt, (struct sockaddr *)&ss) ? (have ? ", trusted" : "trusted") : "");
	}
	stage_begin(&run.rep, STAGE_CONNECT, client, found);
	if ((refused = stage_end(&run.rep, &run.v)))
		worst = run.v;

	/* helo */
	if (!refused) {
		checks_helo(c, helo, &v);
		stage_begin(&run.rep, STAGE_HELO, helo, "");
		if ((refused = stage_end(&run.rep, &v)))
			worst = v;
	}

	/* mail */
	if (!refused) {
		if (parse_path(from, 0, &path) < 0) {
			fprintf(stderr, "moat check: --from %s: not a valid address\n", from);
			rc = 2;
			goto out;
		}
		run.waiting = 1;
		checks_mail(c, &path, done_cb, &run);
		wait_for(&run);
		mail_found(checks_results(c), found, sizeof found);
		snprintf(what, sizeof what, "<%s>", path.null ? "" : path.mailbox);
		stage_begin(&run.rep, STAGE_MAIL, what, found);
		if ((refused = stage_end(&run.rep, &run.v)))
			worst = run.v;
	}

	/* rcpt: each on its own; one accepted is enough to go on */
	for (i = 0; i < nrcpt && !refused; i++) {
		if (parse_path(rcpts[i], 1, &path) < 0) {
			fprintf(stderr, "moat check: --rcpt %s: not a valid address\n", rcpts[i]);
			rc = 2;
			goto out;
		}
		checks_rcpt(c, &path, &v);
		snprintf(what, sizeof what, "<%s>", path.mailbox);
		{
			enum relay_result rr = relay_check(&copt, (struct sockaddr *)&ss, &path);

			snprintf(found, sizeof found, "relay %s%s",
			         rr == RELAY_OK ? "ok" : rr == RELAY_DENIED ? "denied" : "routing",
			         path.domain[0] && relay_domain_is_local(&copt, path.domain) ? ", local domain" : "");
		}
		stage_begin(&run.rep, STAGE_RCPT, what, found);
		if (stage_end(&run.rep, &v)) {
			if (!worst.code || (v.code / 100 == 5 && worst.code / 100 != 5))
				worst = v;
		} else {
			checks_rcpt_accepted(c);
			naccepted++;
		}
	}
	if (!refused && naccepted == 0)
		refused = 1;
	else if (naccepted)
		memset(&worst, 0, sizeof worst);

	/* data */
	if (!refused && msgfile) {
		struct membuf m;
		char *wire = wire_form(msgfile, &m.len);

		if (!wire) {
			fprintf(stderr, "moat check: --message %s: cannot read it (or over %u bytes)\n", msgfile,
			        CHECK_MESSAGE_MAX);
			rc = 2;
			goto out;
		}
		m.p = wire;
		run.waiting = 1;
		checks_data(c, mem_reader, &m, m.len, done_cb, &run);
		wait_for(&run);
		data_found(checks_results(c), m.len, found, sizeof found);
		stage_begin(&run.rep, STAGE_DATA, msgfile, found);
		if ((refused = stage_end(&run.rep, &run.v)))
			worst = run.v;
		if (!refused && checks_tags(c)[0] && !run.rep.json)
			out(&run.rep, "         header fields added:\n%s", checks_tags(c));
		free(wire);
	}

	rc = !worst.code ? 0 : worst.code / 100 == 5 ? 1 : 3;
	if (run.rep.json) {
		out(&run.rep, "\n],\"result\":\"%s\"", rc == 0 ? "accept" : rc == 1 ? "reject" : "tempfail");
		if (worst.code) {
			char reply[700], rule[1100];

			snprintf(reply, sizeof reply, "%d %s %s", worst.code, worst.esc, worst.text);
			rule_text(rule, sizeof rule, worst.rule_file, worst.rule_line);
			out(&run.rep, ",\"reply\":");
			out_js(&run.rep, reply);
			out(&run.rep, ",\"rule\":");
			out_js(&run.rep, rule);
		}
		if (rc == 0 && !msgfile)
			out(&run.rep, ",\"note\":\"no --message: the data stage was not checked\"");
		out(&run.rep, "}\n");
	} else {
		out(&run.rep, "result   %s%s\n", rc == 0 ? "ACCEPTED" : rc == 1 ? "REJECTED" : "TEMPFAILED",
		    rc == 0 && !msgfile ? " up to DATA (no --message: the data stage was not checked)" : "");
	}
	fputs(run.rep.buf, stdout);
out:
	checks_free(c);
	dkim_verifier_free(dkim);
	dns_free(dns);
	if (run.base)
		event_base_free(run.base);
	free(run.rep.buf);
	config_unref(cfg);
	return rc;
}
