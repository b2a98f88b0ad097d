/* dnsbl.c - DNS lists, weighted (postscreen's postscreen_dnsbl_sites): the
 * engine both rows run, and the row of the client's address ("dnsbl").
 *
 * Each distinct zone is asked once per prefix, all side by side through
 * dns.c; one timer is every query's deadline (they start together), so a
 * list that does not answer costs dnsbl_timeout and no more, and the
 * session alone waits: the loop goes on serving the others. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/nameser.h>
#include <ares.h>
#include <event2/event.h>
#include <netinet/in.h>

#include "checks/checks.h"
#include "checks/dns.h"
#include "checks/dnsbl.h"
#include "proxy/lib/log.h"
#include "proxy/lib/metrics.h"
#include "proxy/lib/text.h"

#define DNSBL_QUERIES_MAX (2 * MOAT_DNSBL_SITES_MAX)
#define DNSBL_PREFIXES_MAX 2
#define DNSBL_ANSWERS_MAX 16 /* A records of one answer looked at */

struct query {
	struct dnsbl_run *run;
	struct dns_req *req;
	int prefix;
	const char *zone;          /* the sites' (the config outlives the run) */
	int pending;
};

struct dnsbl_run {
	struct dnsbl_result *r;
	const struct dnsbl_sites *sites;
	int nprefixes;
	long score[DNSBL_PREFIXES_MAX];
	int hit[DNSBL_PREFIXES_MAX];   /* a filter matched a name of this prefix */
	unsigned char site_hit[MOAT_DNSBL_SITES_MAX]; /* listed in the sites' order, whatever answered first */
	int nq, npending;
	struct event *deadline;
	int reply_sites;
	int domains;                   /* the prefixes are domains: name those listed */
	dnsbl_done_fn done;
	void *arg;
	/* zeroed up to here; these are written before they are read */
	char prefix[DNSBL_PREFIXES_MAX][MOAT_DOMAIN_MAX + 1]; /* [0, nprefixes) */
	struct query q[DNSBL_QUERIES_MAX];                    /* [0, nq) */
};

const char *const dnsbl_results[] = {"listed", "clean", "error", NULL};

/* n in decimal at out; its length (out has room for 20 digits and a sign). */
static size_t put_long(char *out, long n)
{
	char d[24];
	size_t k = 0, o = 0;
	unsigned long u = n < 0 ? 0UL - (unsigned long)n : (unsigned long)n;

	do
		d[k++] = (char)('0' + u % 10);
	while ((u /= 10));
	if (n < 0)
		out[o++] = '-';
	while (k)
		out[o++] = d[--k];
	return o;
}

/* "4.3.2.1" for the IPv4 address a; 0 (as snprintf, cut to size). */
static int quad(const unsigned char *a, char *out, size_t size)
{
	char buf[16];
	size_t n = 0;

	for (int i = 3; i >= 0; i--) {
		n += put_long(buf + n, a[i]);
		buf[n++] = i ? '.' : '\0';
	}
	text_copy(out, size, buf);
	return 0;
}

int dnsbl_reversed(const struct sockaddr *sa, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *a;
	size_t n = 0;

	if (sa->sa_family == AF_INET) {
		a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
		return quad(a, out, size);
	}
	if (sa->sa_family != AF_INET6 || size < 64)
		return -1;
	a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	if (IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)sa)->sin6_addr))
		return quad(a + 12, out, size);
	for (int i = 15; i >= 0; i--) {
		out[n++] = hex[a[i] & 15];
		out[n++] = '.';
		out[n++] = hex[a[i] >> 4];
		out[n++] = i ? '.' : '\0';
	}
	return 0;
}

/* Append "what" to a ", "-separated text (cut when full). */
static void text_add(char *buf, size_t size, const char *what)
{
	size_t n = strlen(buf);

	if (n + 1 >= size)
		return; /* full */
	if (n)
		n += text_copy(buf + n, size - n, ", ");
	text_copy(buf + n, size - n, what);
}

static void add_error(struct dnsbl_result *r, const char *zone, const char *why, enum metrics_dnsbl_error kind)
{
	char e[MOAT_DOMAIN_MAX + 64];

	metrics_dnsbl_error(kind);
	snprintf(e, sizeof e, "%s %s", zone, why);
	r->nerrors++;
	text_add(r->errors, sizeof r->errors, e);
}

static void add_listed(struct dnsbl_result *r, const struct dnsbl_site *s)
{
	for (int i = 0; i < r->nlisted; i++)
		if (strcmp(r->listed[i], s->zone) == 0) {
			r->weight[i] += s->weight;
			return;
		}
	if (r->nlisted == DNSBL_NAMES_MAX)
		return;
	text_copy(r->listed[r->nlisted], sizeof r->listed[0], s->zone);
	r->weight[r->nlisted++] = s->weight;
}

/* The A records of one zone's answer against every site of that zone. */
static void answer(struct query *q, const struct dns_result *res)
{
	struct dnsbl_run *run = q->run;
	struct ares_addrttl a[DNSBL_ANSWERS_MAX];
	int n = DNSBL_ANSWERS_MAX, bad = 0;
	unsigned char hit[MOAT_DNSBL_SITES_MAX] = {0};
	char why[64];

	if (res->status == DNS_NXDOMAIN || res->status == DNS_NODATA)
		return; /* not listed */
	if (res->status != DNS_OK || ares_parse_a_reply(res->abuf, res->alen, NULL, a, &n) != ARES_SUCCESS) {
		add_error(run->r, q->zone, "tempfail", MD_TEMPFAIL);
		return;
	}
	for (int k = 0; k < n; k++) {
		const unsigned char *ip = (const unsigned char *)&a[k].ipaddr;

		if (dnsbl_answer_kind(ip) != DNSBL_LISTING) {
			if (!bad++) { /* one error per zone and answer */
				snprintf(why, sizeof why, "%u.%u.%u.%u", ip[0], ip[1], ip[2], ip[3]);
				add_error(run->r, q->zone, why,
				          dnsbl_answer_kind(ip) == DNSBL_ERROR_CODE ? MD_ERROR_CODE : MD_NOT_LOOPBACK);
			}
			continue;
		}
		for (int i = 0; i < run->sites->n; i++)
			if (strcmp(run->sites->site[i].zone, q->zone) == 0 && dnsbl_site_match(&run->sites->site[i], ip))
				hit[i] = 1;
	}
	for (int i = 0; i < run->sites->n; i++)
		if (hit[i]) {
			run->score[q->prefix] += run->sites->site[i].weight;
			run->hit[q->prefix] = 1;
			run->site_hit[i] = 1;
		}
}

static void texts(struct dnsbl_result *r, int reply_sites)
{
	r->score_text[put_long(r->score_text, r->score)] = '\0';
	for (int i = 0; i < r->nlisted; i++) {
		text_add(r->names, sizeof r->names, r->listed[i]);
		if (r->weight[i] > 0 && reply_sites)
			text_add(r->reply, sizeof r->reply, r->listed[i]);
	}
	if (!r->reply[0])
		text_copy(r->reply, sizeof r->reply, "a DNS blocklist");
}

/* Every query is in (or the deadline passed): the score and the texts. */
static void finish(struct dnsbl_run *run, int report)
{
	struct dnsbl_result *r = run->r;
	dnsbl_done_fn done = run->done;
	void *arg = run->arg;

	for (int i = 0; i < run->sites->n; i++)
		if (run->site_hit[i])
			add_listed(r, &run->sites->site[i]);
	r->score = run->score[0];
	for (int i = 1; i < run->nprefixes; i++)
		if (run->score[i] > r->score)
			r->score = run->score[i];
	for (int i = 0; i < run->nprefixes && run->domains; i++)
		if (run->hit[i])
			text_add(r->domains, sizeof r->domains, run->prefix[i]);
	texts(r, run->reply_sites);
	dnsbl_run_cancel(run);
	if (report)
		done(arg);
}

static void query_cb(void *arg, const struct dns_result *res)
{
	struct query *q = arg;
	struct dnsbl_run *run = q->run;

	q->req = NULL;
	q->pending = 0;
	answer(q, res);
	if (--run->npending == 0)
		finish(run, 1);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dnsbl_run *run = arg;

	(void)fd, (void)what;
	for (int i = 0; i < run->nq; i++)
		if (run->q[i].pending) {
			dns_cancel(run->q[i].req);
			run->q[i].req = NULL;
			run->q[i].pending = 0;
			add_error(run->r, run->q[i].zone, "timeout", MD_TIMEOUT);
		}
	run->npending = 0;
	finish(run, 1);
}

/* The queries: each distinct zone under each prefix; a name too long for
 * DNS is not asked. */
static void plan(struct dnsbl_run *run)
{
	for (int p = 0; p < run->nprefixes; p++)
		for (int i = 0; i < run->sites->n; i++) {
			const char *zone = run->sites->site[i].zone;
			int k;

			for (k = 0; k < i && strcmp(run->sites->site[k].zone, zone); k++)
				;
			if (k < i || run->nq == DNSBL_QUERIES_MAX)
				continue; /* asked already */
			if (strlen(run->prefix[p]) + 1 + strlen(zone) > DNS_NAME_MAX)
				continue;
			run->q[run->nq++] = (struct query){run, NULL, p, zone, 0};
		}
}

/* An empty result: its counts zeroed, its texts "" (the rest is written
 * before it is read). */
static void result_init(struct dnsbl_result *r)
{
	memset(r, 0, offsetof(struct dnsbl_result, listed));
	r->errors[0] = r->names[0] = r->reply[0] = r->domains[0] = '\0';
}

struct dnsbl_run *dnsbl_run_start(const struct check_ctx *ctx, const struct dnsbl_sites *sites,
                                  const char *const *prefixes, int nprefixes, int threshold,
                                  struct dnsbl_result *r, dnsbl_done_fn done, void *arg)
{
	int domains = nprefixes < 0;
	struct dnsbl_run *run = malloc(sizeof *run);
	struct timeval tv = {ctx->opt->dnsbl_timeout / 1000, (ctx->opt->dnsbl_timeout % 1000) * 1000};

	result_init(r);
	r->threshold = threshold;
	if (run)
		memset(run, 0, offsetof(struct dnsbl_run, prefix));
	if (!run || !(run->deadline = evtimer_new(ctx->env->base, deadline_cb, run))) {
		free(run);
		add_error(r, "dnsbl", "no memory", MD_TEMPFAIL);
		texts(r, ctx->opt->dnsbl_reply_sites);
		return NULL;
	}
	run->r = r;
	run->sites = sites;
	run->done = done;
	run->arg = arg;
	run->reply_sites = ctx->opt->dnsbl_reply_sites;
	run->domains = domains;
	nprefixes = domains ? -nprefixes - 1 : nprefixes;
	for (int p = 0; p < nprefixes && p < DNSBL_PREFIXES_MAX; p++)
		text_copy(run->prefix[run->nprefixes++], sizeof run->prefix[0], prefixes[p]);
	plan(run);
	for (int i = 0; i < run->nq; i++) {
		struct query *q = &run->q[i];
		char qname[2 * MOAT_DOMAIN_MAX + 2];
		size_t n = text_copy(qname, sizeof qname, run->prefix[q->prefix]); /* plan: it fits */

		qname[n++] = '.';
		text_copy(qname + n, sizeof qname - n, q->zone);
		if ((q->req = dns_lookup(ctx->env->dns, qname, ns_t_a, query_cb, q))) {
			q->pending = 1;
			run->npending++;
		} else {
			add_error(r, q->zone, "no memory", MD_TEMPFAIL);
		}
	}
	if (run->npending == 0) {
		finish(run, 0);
		return NULL;
	}
	evtimer_add(run->deadline, &tv);
	return run;
}

void dnsbl_run_cancel(struct dnsbl_run *run)
{
	if (!run)
		return;
	for (int i = 0; i < run->nq; i++)
		if (run->q[i].pending)
			dns_cancel(run->q[i].req);
	if (run->deadline)
		event_free(run->deadline);
	free(run);
}

/* ---- what both rows say ------------------------------------------------------ */

/* facts: score (number), sites (names), reply (text), then one more text */
void dnsbl_values(const struct dnsbl_result *r, int nfacts, struct rule_value *v,
                  const char *(*names)[CHECK_NAMES_MAX])
{
	v[0] = (struct rule_value){.known = 1, .number = r->score, .named = &r->threshold, .text = r->score_text};
	v[1] = (struct rule_value){.known = 1, .names = names[1], .text = r->names};
	for (int i = 0; i < r->nlisted && i < CHECK_NAMES_MAX; i++)
		names[1][v[1].nnames++] = r->listed[i];
	v[2] = (struct rule_value){.known = 1, .text = r->reply};
	if (nfacts > 3)
		v[3] = (struct rule_value){.known = 1, .text = r->domains};
}

int dnsbl_result_word(const void *result)
{
	const struct dnsbl_result *r = result;

	return r->score >= r->threshold && r->nlisted ? 0 : r->nerrors ? 2 : 1;
}

/* "zen.example*3 wl.example*-5" */
static void listed_text(const struct dnsbl_result *r, char *buf, size_t size)
{
	size_t n = 0;
	char w[24];

	buf[0] = '\0';
	for (int i = 0; i < r->nlisted && n + 1 < size; i++) {
		if (i)
			n += text_copy(buf + n, size - n, " ");
		n += text_copy(buf + n, size - n, r->listed[i]);
		w[0] = '*';
		w[1 + put_long(w + 1, r->weight[i])] = '\0';
		n += text_copy(buf + n, size - n, w);
	}
}

/* prefix + suffix into key[32] ("dnsbl_score") */
static const char *key_of(char *key, const char *prefix, const char *suffix)
{
	size_t n = text_copy(key, 32, prefix);

	text_copy(key + n, 32 - n, suffix);
	return key;
}

void dnsbl_log(const struct dnsbl_result *r, const char *prefix, struct jline *j)
{
	char key[32], buf[DNSBL_TEXT_MAX];

	if (!r)
		return;
	jl_int(j, key_of(key, prefix, "_score"), r->score);
	if (r->nlisted) {
		listed_text(r, buf, sizeof buf);
		jl_str(j, prefix, buf);
	}
	if (r->domains[0]) {
		jl_str(j, key_of(key, prefix, "_domains"), r->domains);
	}
	if (r->nerrors) {
		jl_str(j, key_of(key, prefix, "_errors"), r->errors);
	}
}

void dnsbl_describe(const void *result, char *buf, size_t size)
{
	const struct dnsbl_result *r = result;
	char l[DNSBL_TEXT_MAX];

	listed_text(r, l, sizeof l);
	snprintf(buf, size, "score %ld, threshold %ld: %s%s%s%s%s%s", r->score, r->threshold,
	         r->nlisted ? l : "not listed", r->domains[0] ? " (" : "", r->domains, r->domains[0] ? ")" : "",
	         r->nerrors ? "; errors: " : "", r->errors);
}

/* ---- the row of the client's address ------------------------------------------ */

static const char *const threshold[] = {"threshold", NULL};
static const char *const none[] = {"none", NULL};
static const struct rule_vocab_fact facts[] = {
	{"dnsbl-score", STAGE_CONNECT, RULE_NUMBER, threshold, NULL},
	{"dnsbl", STAGE_CONNECT, RULE_NAMES, none, "a list's zone, .domain, list:PATH or none"},
	{"dnsbl-reply", STAGE_CONNECT, RULE_TEXT, NULL, NULL},
};

/* Only on listen (port 25), as postscreen: clients of smtps and submission
 * authenticate, and their addresses are not told to the lists. */
static int wanted(const struct check_ctx *ctx, const struct ruleset *rs, size_t first)
{
	(void)rs, (void)first;
	return ctx->env->dns && ctx->opt->dnsbl_sites && ctx->opt->dnsbl_sites->n > 0 &&
	       ctx->listener == LISTENER_SMTP;
}

void dnsbl_slot_done(void *arg)
{
	struct dnsbl_slot *s = arg;

	s->run = NULL;
	s->done(s->arg);
}

static void *start(const struct check_ctx *ctx, void *result, check_done_fn done, void *arg)
{
	struct dnsbl_slot *s = result;
	char rev[80];
	const char *prefix[1] = {rev};

	s->done = done;
	s->arg = arg;
	if (dnsbl_reversed(ctx->client, rev, sizeof rev) < 0)
		rev[0] = '\0';
	s->run = dnsbl_run_start(ctx, ctx->opt->dnsbl_sites, prefix, rev[0] ? 1 : 0, ctx->opt->dnsbl_threshold,
	                         &s->r, dnsbl_slot_done, s);
	return s->run ? s : NULL;
}

void dnsbl_cancel(void *handle)
{
	struct dnsbl_slot *s = handle;

	dnsbl_run_cancel(s->run);
	s->run = NULL;
}

static void values(const void *result, struct rule_value *v, const char *(*names)[CHECK_NAMES_MAX])
{
	dnsbl_values(result, 3, v, names);
}

static void log_fields(const void *result, struct jline *j)
{
	dnsbl_log(result, "dnsbl", j);
}


const struct check_def check_dnsbl = {
	.name = "dnsbl",
	.stage = STAGE_CONNECT,
	.result_size = sizeof(struct dnsbl_slot),
	.result_zero = offsetof(struct dnsbl_result, listed), /* the rest: start, dnsbl_run_start */
	.facts = facts,
	.nfacts = sizeof facts / sizeof facts[0],
	.wanted = wanted,
	.results = dnsbl_results,
	.result = dnsbl_result_word,
	.start = start,
	.cancel = dnsbl_cancel,
	.values = values,
	.log = log_fields,
	.describe = dnsbl_describe,
};
