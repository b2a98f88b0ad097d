/* dmarc.c - DMARC policy discovery and evaluation (see dmarc.h).
 *
 * Both records are asked for at once: _dmarc.<From domain> and, when the
 * organizational domain differs, _dmarc.<organizational domain> (RFC 7489
 * 6.6.3 asks for the second only when the first has none; asking early
 * saves a round trip, and the answer is cached for the next message). The
 * record found is handed to libopendmarc (opendmarc_policy_store_dmarc)
 * for its tags; alignment is dmarc_org.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>
#include <arpa/nameser.h>
#include <opendmarc/dmarc.h>

#include "checks/dkim.h"
#include "checks/dmarc.h"
#include "checks/dmarc_org.h"
#include "checks/spf.h"
#include "proxy/lib/bounds.h"
#include "proxy/lib/siphash.h"
#include "proxy/lib/text.h"

enum rec_state { REC_PENDING, REC_NONE, REC_ONE, REC_TEMP, REC_SEVERAL, REC_BAD };

struct query {
	struct dmarc_check *c;
	struct dns_req *req;
	enum rec_state st;
	char rec[MOAT_DMARC_RECORD_MAX + 1];
};

struct dmarc_check {
	struct dmarc_outcome *o;
	char org[DNS_NAME_MAX + 1];  /* "" when the From domain is its own */
	struct query q[2];           /* the From domain's, the organizational domain's */
	int pending;
	dmarc_cb cb;
	void *arg;
};

/* Does a TXT string start a DMARC record: "v" *WSP "=" *WSP "DMARC1", then
 * its end, a blank or ';' (RFC 7489 6.4)? */
static int is_dmarc(const unsigned char *t, size_t n)
{
	size_t i = 0;

	if (n == 0 || t[0] != 'v')
		return 0;
	for (i = 1; i < n && (t[i] == ' ' || t[i] == '\t'); i++)
		;
	if (i >= n || t[i++] != '=')
		return 0;
	while (i < n && (t[i] == ' ' || t[i] == '\t'))
		i++;
	if (n - i < 6 || memcmp(t + i, "DMARC1", 6) != 0)
		return 0;
	i += 6;
	return i == n || t[i] == ' ' || t[i] == '\t' || t[i] == ';';
}

/* A record ends: count it if it is DMARC's, keep the first. */
static void record_end(const char *buf, size_t n, int toolong, int *found, int *bad, char *out, size_t size)
{
	if (!n || !is_dmarc((const unsigned char *)buf, n) || (*found)++)
		return;
	if (toolong)
		*bad = 1;
	else
		text_copy(out, size, buf);
}

int dmarc_record_pick(const unsigned char *abuf, int alen, char *out, size_t size)
{
	struct ares_txt_ext *txt = NULL;
	int found = 0, bad = 0, toolong = 0;
	size_t n = 0;
	char buf[MOAT_DMARC_RECORD_MAX + 1];
	int rc = ares_parse_txt_reply_ext(abuf, alen, &txt);

	out[0] = '\0';
	if (rc == ARES_ENODATA)
		return 0;
	if (rc != ARES_SUCCESS)
		return -1;
	/* a record is one or more strings, joined (RFC 7489 6.6.3 as RFC 7208 3.3) */
	for (struct ares_txt_ext *t = txt; t; t = t->next) {
		if (t->record_start) {
			buf[n] = '\0';
			record_end(buf, n, toolong, &found, &bad, out, size);
			n = 0;
			toolong = 0;
		}
		if (n + t->length > MOAT_DMARC_RECORD_MAX) {
			toolong = 1; /* its start is kept: is it DMARC's? */
			continue;
		}
		memcpy(buf + n, t->txt, t->length);
		n += t->length;
	}
	buf[n] = '\0';
	record_end(buf, n, toolong, &found, &bad, out, size);
	ares_free_data(txt);
	if (found > 1)
		return 2;
	return bad ? -1 : found;
}

static enum dmarc_pol pol_of(int v)
{
	switch (v) {
	case DMARC_RECORD_P_NONE: return DMARC_POL_NONE;
	case DMARC_RECORD_P_QUARANTINE: return DMARC_POL_QUARANTINE;
	case DMARC_RECORD_P_REJECT: return DMARC_POL_REJECT;
	}
	return DMARC_POL_UNSET;
}

int dmarc_record_parse(const char *record, struct dmarc_outcome *o)
{
	DMARC_POLICY_T *p = opendmarc_policy_connect_init((u_char *)"0.0.0.0", 0);
	int st, pv = 0, sp = 0, pct = 100, adkim = 0, aspf = 0;

	if (!p) {
		o->res = DMARC_RES_TEMPERROR;
		text_copy(o->reason, sizeof o->reason, "out of memory");
		return -1;
	}
	st = opendmarc_policy_store_dmarc(p, (u_char *)record, (u_char *)o->from_domain,
	                                  o->org_fallback ? (u_char *)o->policy_domain : NULL);
	if (st != DMARC_PARSE_OKAY) {
		o->res = DMARC_RES_PERMERROR;
		snprintf(o->reason, sizeof o->reason, "bad record at _dmarc.%.64s: %s", o->policy_domain,
		         opendmarc_policy_status_to_str(st));
		opendmarc_policy_connect_shutdown(p);
		return -1;
	}
	opendmarc_policy_fetch_p(p, &pv);
	opendmarc_policy_fetch_sp(p, &sp);
	opendmarc_policy_fetch_pct(p, &pct);
	opendmarc_policy_fetch_adkim(p, &adkim);
	opendmarc_policy_fetch_aspf(p, &aspf);
	/* sp for a subdomain whose record is its organizational domain's */
	o->used_sp = opendmarc_get_policy_token_used(p) == DMARC_USED_POLICY_IS_SP;
	o->published = pol_of(o->used_sp ? sp : pv);
	o->pct = pct < 0 ? 100 : pct > 100 ? 100 : pct;
	o->strict_dkim = adkim == DMARC_RECORD_A_STRICT;
	o->strict_spf = aspf == DMARC_RECORD_A_STRICT;
	o->have_record = 1;
	opendmarc_policy_connect_shutdown(p);
	return 0;
}

/* ---- the verdict --------------------------------------------------------- */

void dmarc_evaluate(struct dmarc_outcome *o, const struct spf_outcome *spf, const struct dkim_outcome *dkim,
                    const uint8_t key[16], const char *msgid)
{
	if (!o->have_record)
		return;
	o->spf_aligned = spf && spf->res == SPF_RES_PASS && dmarc_aligned(spf->domain, o->from_domain, o->strict_spf);
	o->dkim_aligned = 0;
	for (int i = 0; dkim && i < dkim->nsigs && i < DKIM_MAX_SIGS && !o->dkim_aligned; i++)
		o->dkim_aligned = dkim->sig[i].res == DKIM_RES_PASS &&
		                  dmarc_aligned(dkim->sig[i].domain, o->from_domain, o->strict_dkim);
	o->policy = o->published;
	if (o->spf_aligned || o->dkim_aligned) {
		o->res = DMARC_RES_PASS;
		text_copy(o->reason, sizeof o->reason, o->dkim_aligned ? "aligned DKIM pass" : "aligned SPF pass");
		return;
	}
	o->res = DMARC_RES_FAIL;
	/* the draw matters to a failure only (pct applies there): hashed here */
	o->sample = (int)(siphash24(key, msgid, strlen(msgid)) % 100);
	/* RFC 7489 6.6.4: a message left out of the sample gets the next
	 * policy down */
	if (o->sample >= o->pct && o->policy > DMARC_POL_NONE)
		o->policy--;
	snprintf(o->reason, sizeof o->reason, "no aligned SPF or DKIM pass%s",
	         o->policy != o->published ? " (pct sampled out)" : "");
}

/* The rank of a result in a combined verdict: the higher decides. */
static int rank(const struct dmarc_outcome *o)
{
	switch (o->res) {
	case DMARC_RES_FAIL: return 10 + (int)o->policy;
	case DMARC_RES_TEMPERROR: return 4;
	case DMARC_RES_PERMERROR: return 3;
	case DMARC_RES_PASS: return 2;
	case DMARC_RES_NONE: return 1;
	}
	return 0;
}

void dmarc_combine(const struct dmarc_outcome *each, int n, struct dmarc_outcome *o)
{
	int best = 0;

	for (int i = 1; i < n; i++)
		if (rank(&each[i]) > rank(&each[best]))
			best = i;
	if (n > 0)
		*o = each[best];
}

/* ---- lookups --------------------------------------------------------------- */

static void finish(struct dmarc_check *c)
{
	struct dmarc_outcome *o = c->o;
	struct query *q = &c->q[0];

	if (q->st == REC_NONE && c->org[0]) {
		q = &c->q[1];
		o->org_fallback = 1;
		text_copy(o->policy_domain, sizeof o->policy_domain, c->org);
	}
	switch (q->st) {
	case REC_NONE:
	case REC_PENDING:
		o->res = DMARC_RES_NONE;
		text_copy(o->reason, sizeof o->reason, "no DMARC record");
		break;
	case REC_TEMP:
		o->res = DMARC_RES_TEMPERROR;
		snprintf(o->reason, sizeof o->reason, "lookup of _dmarc.%.64s failed", o->policy_domain);
		break;
	case REC_SEVERAL:
		o->res = DMARC_RES_PERMERROR;
		snprintf(o->reason, sizeof o->reason, "several DMARC records at _dmarc.%.64s", o->policy_domain);
		break;
	case REC_BAD:
		o->res = DMARC_RES_PERMERROR;
		snprintf(o->reason, sizeof o->reason, "unreadable DMARC record at _dmarc.%.64s", o->policy_domain);
		break;
	case REC_ONE:
		dmarc_record_parse(q->rec, o);
		break;
	}
}

static void on_answer(void *arg, const struct dns_result *r)
{
	struct query *q = arg;
	struct dmarc_check *c = q->c;
	int n;

	q->req = NULL;
	if (r->status == DNS_TEMPFAIL)
		q->st = REC_TEMP;
	else if (r->status != DNS_OK)
		q->st = REC_NONE;
	else if ((n = dmarc_record_pick(r->abuf, r->alen, q->rec, sizeof q->rec)) < 0)
		q->st = REC_BAD;
	else
		q->st = n == 0 ? REC_NONE : n == 1 ? REC_ONE : REC_SEVERAL;
	if (--c->pending)
		return;
	finish(c);
	{
		dmarc_cb cb = c->cb;
		void *a = c->arg;

		free(c);
		cb(a);
	}
}

static struct dns_req *ask(struct dns *d, const char *domain, dns_cb cb, void *arg)
{
	char name[DNS_NAME_MAX + 8];
	size_t n = strlen(domain);

	if (n > DNS_NAME_MAX)
		n = DNS_NAME_MAX; /* as snprintf cut it */
	memcpy(name, "_dmarc.", 7);
	memcpy(name + 7, domain, n);
	name[7 + n] = '\0';
	return dns_lookup(d, name, ns_t_txt, cb, arg);
}

struct dmarc_check *dmarc_check_start(struct dns *d, struct dmarc_outcome *o, dmarc_cb cb, void *arg)
{
	/* not zeroed: the two record buffers (4 KiB) are written before they
	 * are read (dmarc_record_pick); every other member is set below */
	struct dmarc_check *c = malloc(sizeof *c);

	text_copy(o->policy_domain, sizeof o->policy_domain, o->from_domain);
	if (!c) {
		o->res = DMARC_RES_TEMPERROR;
		text_copy(o->reason, sizeof o->reason, "out of memory");
		return NULL;
	}
	c->o = o;
	c->cb = cb;
	c->arg = arg;
	c->pending = 0;
	for (int i = 0; i < 2; i++) {
		c->q[i].req = NULL;
		c->q[i].st = REC_PENDING;
		c->q[i].rec[0] = '\0';
	}
	if (dmarc_org_domain(o->from_domain, c->org, sizeof c->org) < 0 || strcmp(c->org, o->from_domain) == 0)
		c->org[0] = '\0';
	for (int i = 0; i < 2; i++) {
		c->q[i].c = c;
		if (i == 1 && !c->org[0])
			break;
		if (!(c->q[i].req = ask(d, i ? c->org : o->from_domain, on_answer, &c->q[i]))) {
			dmarc_check_cancel(c);
			o->res = DMARC_RES_TEMPERROR;
			text_copy(o->reason, sizeof o->reason, "out of memory");
			return NULL;
		}
		c->pending++;
	}
	return c;
}

void dmarc_check_cancel(struct dmarc_check *c)
{
	if (!c)
		return;
	for (int i = 0; i < 2; i++)
		dns_cancel(c->q[i].req);
	free(c);
}

static void ignore(void *arg, const struct dns_result *r)
{
	(void)arg;
	(void)r;
}

int dmarc_prefetch(struct dns *d, const char *domain)
{
	char org[DNS_NAME_MAX + 1];
	int n = ask(d, domain, ignore, NULL) != NULL;

	if (dmarc_org_domain(domain, org, sizeof org) == 0 && strcmp(org, domain) != 0)
		n += ask(d, org, ignore, NULL) != NULL;
	return n;
}

const char *dmarc_res_name(enum dmarc_res r)
{
	static const char *const names[] = {"none", "pass", "fail", "temperror", "permerror"};

	return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "?";
}

const char *dmarc_pol_name(enum dmarc_pol p)
{
	static const char *const names[] = {"", "none", "quarantine", "reject"};

	return (unsigned)p < sizeof names / sizeof names[0] ? names[p] : "?";
}
