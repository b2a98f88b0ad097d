/* stats.c - the report's counts (see stats.h) */
#include <stdlib.h>
#include <string.h>

#include "proxy/lib/siphash.h"
#include "proxy/report/netagg.h"
#include "proxy/report/rtime.h"
#include "proxy/report/stats.h"

const char *const stats_action_names[ACT_COUNT] = {"accept", "reject", "tempfail", "would-accept",
	"would-reject", "would-tempfail", "would-tag", "tag", "log", "other"};
const char *const stats_stage_names[ST_COUNT] = {"connect", "helo", "mail", "rcpt", "data", "other"};
const char *const stats_top_names[TOP_COUNT] = {"reasons", "rules", "clients", "client_networks",
	"sender_domains", "rcpt_domains", "helos", "would_reasons", "would_rules", "would_sender_domains",
	"dns_names"};
const char *const stats_dns_names[DNS_COUNT] = {"spf", "sender_domain", "rdns", "dkim"};

/* Slots of the hour table: a power of two, over twice REPORT_HOURS_MAX. */
#define HOUR_SLOTS 32768

int stats_init(struct report_stats *s, int focus_all)
{
	memset(s, 0, sizeof *s);
	s->focus_all = focus_all;
	s->first_ts = INT64_MAX;
	s->last_ts = INT64_MIN;
	siphash_random_key(s->seed);
	s->hours = calloc(REPORT_HOURS_MAX, sizeof *s->hours);
	if (!s->hours || idxmap_init(&s->hour_map, HOUR_SLOTS) < 0)
		goto fail;
	for (int i = 0; i < TOP_COUNT; i++)
		if (topk_init(&s->top[i], REPORT_TOP_CAPACITY) < 0)
			goto fail;
	return 0;
fail:
	stats_free(s);
	return -1;
}

void stats_free(struct report_stats *s)
{
	for (int i = 0; i < TOP_COUNT; i++)
		topk_free(&s->top[i]);
	free(s->hours);
	idxmap_free(&s->hour_map);
	s->hours = NULL;
}

int stats_action(struct ll_str a)
{
	for (int i = 0; i < ACT_OTHER; i++)
		if (ll_is(a, stats_action_names[i]))
			return i;
	return ACT_OTHER;
}

int stats_stage(struct ll_str st)
{
	for (int i = 0; i < ST_OTHER; i++)
		if (ll_is(st, stats_stage_names[i]))
			return i;
	return ST_OTHER;
}

uint64_t stats_reason_hash(const struct report_stats *s, const char *reason, size_t n)
{
	return siphash24(s->seed, reason, n);
}

static struct hour *hour_of(struct report_stats *s, int64_t ts)
{
	int64_t h = ts / RTIME_HOUR_MS; /* ts >= 0: rtime takes years from 1970 */
	long i;

	if (s->nhours && s->hours[s->hour_last].hour == h)
		return &s->hours[s->hour_last];
	if ((i = idxmap_get(&s->hour_map, (uint64_t)h)) >= 0) {
		s->hour_last = (size_t)i;
		return &s->hours[i];
	}
	if (s->nhours >= REPORT_HOURS_MAX || idxmap_put(&s->hour_map, (uint64_t)h, (uint32_t)s->nhours) < 0)
		return NULL;
	s->hour_last = s->nhours++;
	s->hours[s->hour_last].hour = h;
	return &s->hours[s->hour_last];
}

/* A refusal's reason in its hour: Space-Saving on a few counters. */
static void hour_reason(struct report_stats *s, struct hour *hr, struct ll_str reason)
{
	uint64_t h = stats_reason_hash(s, reason.p ? reason.p : "", reason.p ? reason.n : 0);
	uint32_t min = 0;

	for (uint32_t i = 0; i < hr->nreasons; i++) {
		if (hr->r[i].hash == h) {
			hr->r[i].count++;
			return;
		}
		if (hr->r[i].count < hr->r[min].count)
			min = i;
	}
	if (hr->nreasons < REPORT_HOUR_REASONS) {
		hr->r[hr->nreasons].hash = h;
		hr->r[hr->nreasons++].count = 1;
		return;
	}
	hr->replaced = 1;
	hr->r[min].hash = h;
	hr->r[min].count++;
}

/* ASCII lower case of s into buf (REPORT_KEY_MAX bytes); its length. */
static size_t lower(const char *s, size_t n, char *buf)
{
	if (n > REPORT_KEY_MAX)
		n = REPORT_KEY_MAX;
	for (size_t i = 0; i < n; i++)
		buf[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) : s[i];
	return n;
}

/* The domain of an address, lower case; "<>" stays; "" for none. */
static size_t domain_of(const char *a, size_t n, char *buf)
{
	const char *at;

	if (n == 2 && memcmp(a, "<>", 2) == 0)
		return lower(a, n, buf);
	at = memrchr(a, '@', n);
	if (!at)
		return 0;
	return lower(at + 1, n - (size_t)(at + 1 - a), buf);
}

static void add_lower(struct topk *t, struct ll_str v)
{
	char buf[REPORT_KEY_MAX];

	if (v.p && v.n)
		topk_add(t, buf, lower(v.p, v.n, buf), 1);
}

static void add_domain(struct topk *t, struct ll_str a)
{
	char buf[REPORT_KEY_MAX];
	size_t n;

	if (a.p && (n = domain_of(a.p, a.n, buf)) > 0)
		topk_add(t, buf, n, 1);
}

/* Domains of one line's recipients remembered, to count each once (moat
 * cuts the list at 1 KiB: a few dozen addresses, rarely of many domains). */
#define RCPT_DOMAINS_SEEN 8

/* The recipients' domains, each once per line. */
static void add_rcpt_domains(struct topk *t, struct ll_str r)
{
	char seen[RCPT_DOMAINS_SEEN][REPORT_KEY_MAX];
	size_t seen_n[RCPT_DOMAINS_SEEN], nseen = 0;
	const char *p = r.p ? r.p : "", *end = p + r.n;

	while (p < end) {
		const char *c = memchr(p, ',', (size_t)(end - p));
		size_t len = (size_t)((c ? c : end) - p), n = 0, i;
		char buf[REPORT_KEY_MAX];

		if ((n = domain_of(p, len, buf)) > 0) {
			for (i = 0; i < nseen && (seen_n[i] != n || memcmp(seen[i], buf, n)); i++)
				;
			if (i == nseen) {
				topk_add(t, buf, n, 1);
				if (nseen < RCPT_DOMAINS_SEEN)
					memcpy(seen[nseen], buf, n), seen_n[nseen++] = n;
			}
		}
		p += len + 1;
	}
}

static void add_str(struct topk *t, struct ll_str v)
{
	if (v.p)
		topk_add(t, v.p, v.n, 1);
}

static void add_rule(struct topk *t, const struct logline *l)
{
	char key[REPORT_KEY_MAX * 2 + 1];
	struct ll_str id = l->f[LL_RULE_ID], r = l->f[LL_RULE];
	size_t a = id.p ? (id.n < REPORT_KEY_MAX ? id.n : REPORT_KEY_MAX) : 0;
	size_t b = r.p ? (r.n < REPORT_KEY_MAX ? r.n : REPORT_KEY_MAX) : 0;

	memcpy(key, id.p ? id.p : "", a);
	key[a] = '\t';
	memcpy(key + a + 1, r.p ? r.p : "", b);
	topk_add(t, key, a + 1 + b, 1);
}

static void add_network(struct report_stats *s, struct ll_str ip)
{
	struct naddr a;

	if (!ip.p || ip.n >= sizeof s->last_ip)
		return;
	if (strlen(s->last_ip) != ip.n || memcmp(s->last_ip, ip.p, ip.n) != 0) {
		s->last_net[0] = '\0';
		if (naddr_parse(ip.p, ip.n, &a) == 0)
			naddr_network(&a, s->last_net, sizeof s->last_net);
		memcpy(s->last_ip, ip.p, ip.n);
		s->last_ip[ip.n] = '\0';
	}
	if (s->last_net[0])
		topk_add(&s->top[TOP_NETS], s->last_net, strlen(s->last_net), 1);
}

static void focus_lists(struct report_stats *s, const struct logline *l)
{
	s->focus++;
	add_str(&s->top[TOP_REASONS], l->f[LL_REASON]);
	add_rule(&s->top[TOP_RULES], l);
	add_str(&s->top[TOP_CLIENTS], l->f[LL_CLIENT_IP]);
	add_network(s, l->f[LL_CLIENT_IP]);
	add_domain(&s->top[TOP_SENDERS], l->f[LL_MAIL_FROM]);
	add_rcpt_domains(&s->top[TOP_RCPT_DOMAINS], l->f[LL_RCPT]);
	add_lower(&s->top[TOP_HELOS], l->f[LL_HELO]);
}

/* A name whose lookup failed for now, with what looked it up. */
static void add_dns_name(struct report_stats *s, const char *what, const char *v, size_t n)
{
	char key[REPORT_KEY_MAX + 16];
	size_t w = strlen(what);

	if (n > REPORT_KEY_MAX)
		n = REPORT_KEY_MAX;
	memcpy(key, what, w);
	key[w] = ' ';
	lower(v, n, key + w + 1);
	topk_add(&s->top[TOP_DNS_NAMES], key, w + 1 + n, 1);
}

/* Decision lines that show a temporary DNS failure of a check. */
static void dns_tempfails(struct report_stats *s, const struct logline *l, int act)
{
	int spf = ll_is(l->f[LL_SPF], "temperror"), sd = ll_is(l->f[LL_SENDER_DOMAIN], "tempfail");
	int rdns = ll_is(l->f[LL_RDNS], "tempfail");
	struct ll_str dk = l->f[LL_DKIM];
	const char *t = dk.p ? memmem(dk.p, dk.n, ":temperror", 10) : NULL;
	char dom[REPORT_KEY_MAX];
	size_t n;

	if (!spf && !sd && !rdns && !t)
		return;
	s->dns++;
	s->dns_by_action[act]++;
	s->dns_by_check[DNS_SPF] += spf;
	s->dns_by_check[DNS_SENDER_DOMAIN] += sd;
	s->dns_by_check[DNS_RDNS] += rdns;
	s->dns_by_check[DNS_DKIM] += t != NULL;
	if ((spf || sd) && (n = domain_of(l->f[LL_MAIL_FROM].p ? l->f[LL_MAIL_FROM].p : "",
	                                  l->f[LL_MAIL_FROM].n, dom)) > 0)
		add_dns_name(s, "sender", dom, n);
	if (rdns && l->f[LL_CLIENT_IP].p)
		add_dns_name(s, "rdns", l->f[LL_CLIENT_IP].p, l->f[LL_CLIENT_IP].n);
	if (t) {
		/* the signing domain before ":temperror" */
		const char *d = t;

		while (d > dk.p && d[-1] != ',')
			d--;
		add_dns_name(s, "dkim", d, (size_t)(t - d));
	}
}

void stats_decision(struct report_stats *s, const struct logline *l, int64_t ts)
{
	int act = stats_action(l->f[LL_ACTION]);
	struct hour *hr;

	if (ts < s->first_ts)
		s->first_ts = ts;
	if (ts > s->last_ts)
		s->last_ts = ts;
	if (!ll_is(l->f[LL_EVENT], "decision")) {
		s->rule_lines++;
		s->rule_by_action[act]++;
		if (s->focus_all)
			focus_lists(s, l);
		return;
	}
	s->decisions++;
	s->by_action[act]++;
	s->by_stage[stats_stage(l->f[LL_STAGE])][act]++;
	hr = hour_of(s, ts);
	if (hr)
		hr->decisions++;
	if (act == ACT_REJECT || act == ACT_TEMPFAIL) {
		s->refusals++;
		if (hr) {
			hr->refusals++;
			hour_reason(s, hr, l->f[LL_REASON]);
		} else {
			s->hours_dropped++;
		}
	}
	if (act == ACT_WREJECT || act == ACT_WTEMPFAIL) {
		s->would++;
		if (hr)
			hr->would++;
		add_str(&s->top[TOP_W_REASONS], l->f[LL_REASON]);
		add_rule(&s->top[TOP_W_RULES], l);
		add_domain(&s->top[TOP_W_SENDERS], l->f[LL_MAIL_FROM]);
	}
	if (s->focus_all || act == ACT_REJECT || act == ACT_TEMPFAIL)
		focus_lists(s, l);
	dns_tempfails(s, l, act);
}

void stats_session_end(struct report_stats *s, const struct logline *l)
{
	s->sessions++;
	s->messages += l->messages > 0 ? (uint64_t)l->messages : 0;
	s->session_rejected += l->rejected > 0 ? (uint64_t)l->rejected : 0;
	s->session_errors += l->errors > 0 ? (uint64_t)l->errors : 0;
}

static int by_hour(const void *a, const void *b)
{
	const struct hour *x = a, *y = b;

	return x->hour < y->hour ? -1 : x->hour > y->hour;
}

void stats_sort_hours(struct report_stats *s)
{
	qsort(s->hours, s->nhours, sizeof *s->hours, by_hour);
	idxmap_clear(&s->hour_map);
	for (size_t i = 0; i < s->nhours; i++)
		idxmap_put(&s->hour_map, (uint64_t)s->hours[i].hour, (uint32_t)i);
	s->hour_last = 0;
}
