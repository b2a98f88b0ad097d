/* spf_dns.c - the DNS layer libspf2 resolves through, for one SPF check:
 * a table of (name, type) answers from checks/dns.c; a name not in it is a
 * miss, answered TRY_AGAIN (spf.c's passes then look the misses up in
 * parallel and run libspf2 again); the RFC 7208 4.6.4 limits counted here,
 * over the whole check. */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ares.h>

#include "checks/spf_check.h"
#include "checks/spf_syntax.h"
#include "proxy/lib/log.h"
#include "proxy/lib/text.h"

/* ---- the answer table ---- */

static struct answer *answer_find(struct spf_check *c, const char *name, int type)
{
	for (int i = 0; i < c->nans; i++)
		if (c->ans[i]->type == type && strcmp(c->ans[i]->name, name) == 0)
			return c->ans[i];
	return NULL;
}

static void answer_clear(struct answer *a)
{
	for (int i = 0; i < a->n; i++)
		free(a->rr[i]);
	free(a->rr);
	free(a->len);
	a->rr = NULL;
	a->len = NULL;
	a->n = 0;
}

void spf_answer_free(struct answer *a)
{
	if (a->req)
		dns_cancel(a->req);
	answer_clear(a);
	free(a);
}

/* A new entry for (name, type), NULL when the check has asked enough. */
static struct answer *answer_new(struct spf_check *c, const char *name, int type)
{
	struct answer *a;

	if (c->nans >= SPF_ANSWERS_MAX)
		return NULL;
	if (c->nans == c->ans_size) {
		int size = c->ans_size ? c->ans_size * 2 : 16;
		struct answer **n = realloc(c->ans, (size_t)size * sizeof *n);

		if (!n)
			return NULL;
		c->ans = n;
		c->ans_size = size;
	}
	a = calloc(1, sizeof *a);
	if (!a)
		return NULL;
	a->c = c;
	text_copy(a->name, sizeof a->name, name);
	a->type = type;
	a->state = ANS_WANTED;
	c->ans[c->nans++] = a;
	return a;
}

/* A name libspf2 asked for and we do not have: looked up after the pass. */
void spf_miss(struct spf_check *c, const char *name, int type)
{
	if (answer_find(c, name, type))
		return;
	if (answer_new(c, name, type))
		c->new_miss = 1;
	else if (c->limit == LIM_NONE)
		c->limit = LIM_ANSWERS;
}

/* One more record; text or not, it is stored NUL-terminated. */
static int rr_add(struct answer *a, const void *data, size_t len)
{
	char **rr = realloc(a->rr, (size_t)(a->n + 1) * sizeof *rr);
	size_t *ln;

	if (!rr)
		return -1;
	a->rr = rr;
	ln = realloc(a->len, (size_t)(a->n + 1) * sizeof *ln);
	if (!ln)
		return -1;
	a->len = ln;
	rr[a->n] = malloc(len + 1);
	if (!rr[a->n])
		return -1;
	memcpy(rr[a->n], data, len);
	rr[a->n][len] = '\0';
	ln[a->n++] = len;
	return 0;
}

/* Host names from MX and PTR answers: c-ares escapes what is not printable;
 * anything else is dropped. */
static int name_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

static int parse_hostent(struct answer *a, int rc, struct hostent *h, int ptr)
{
	int err = 0;

	if (rc != ARES_SUCCESS)
		return rc == ARES_ENODATA ? 0 : -1;
	if (ptr) {
		/* all the names are in h_aliases (h_name repeats the last one) */
		for (char **n = h->h_aliases; n && *n && !err; n++)
			if (name_ok(*n))
				err = rr_add(a, *n, strlen(*n));
	} else {
		for (char **p = h->h_addr_list; p && *p && !err; p++)
			err = rr_add(a, *p, (size_t)h->h_length);
	}
	ares_free_hostent(h);
	return err;
}

/* TXT: c-ares gives one node per string; a record is its strings joined
 * (RFC 7208 3.3). The joined text is never longer than the reply. */
static int parse_txt(struct answer *a, const unsigned char *abuf, int alen)
{
	struct ares_txt_ext *txt = NULL;
	char *buf = malloc((size_t)alen + 1);
	size_t n = 0;
	int have = 0, err = 0, rc;

	if (!buf)
		return -1;
	rc = ares_parse_txt_reply_ext(abuf, alen, &txt);
	if (rc != ARES_SUCCESS) {
		free(buf);
		return rc == ARES_ENODATA ? 0 : -1;
	}
	for (struct ares_txt_ext *t = txt; t && !err; t = t->next) {
		if (t->record_start && have) {
			err = rr_add(a, buf, n);
			n = 0;
		}
		have = 1;
		if (n + t->length > (size_t)alen) {
			err = -1;
			break;
		}
		memcpy(buf + n, t->txt, t->length);
		n += t->length;
	}
	if (have && !err)
		err = rr_add(a, buf, n);
	ares_free_data(txt);
	free(buf);
	return err;
}

/* The raw reply into records. -1: unreadable (taken as TEMPFAIL). */
static int answer_parse(struct answer *a, const unsigned char *abuf, int alen)
{
	struct hostent *h = NULL;
	unsigned char any_addr[4] = {0};
	struct ares_mx_reply *mx = NULL;
	int rc, err = 0;

	if (!abuf || alen <= 0)
		return -1;
	switch (a->type) {
	case ns_t_a:
		rc = ares_parse_a_reply(abuf, alen, &h, NULL, NULL);
		return parse_hostent(a, rc, h, 0);
	case ns_t_aaaa:
		rc = ares_parse_aaaa_reply(abuf, alen, &h, NULL, NULL);
		return parse_hostent(a, rc, h, 0);
	case ns_t_ptr:
		rc = ares_parse_ptr_reply(abuf, alen, any_addr, sizeof any_addr, AF_INET, &h);
		return parse_hostent(a, rc, h, 1);
	case ns_t_mx:
		rc = ares_parse_mx_reply(abuf, alen, &mx);
		if (rc != ARES_SUCCESS)
			return rc == ARES_ENODATA ? 0 : -1;
		for (struct ares_mx_reply *m = mx; m && !err; m = m->next)
			if (name_ok(m->host))
				err = rr_add(a, m->host, strlen(m->host));
		ares_free_data(mx);
		return err;
	case ns_t_txt:
		return parse_txt(a, abuf, alen);
	}
	return -1;
}

/* ---- lookups in flight ---- */

static void answer_cb(void *arg, const struct dns_result *r);

void spf_lookup_start(struct answer *a)
{
	struct spf_check *c = a->c;

	c->out.lookups++;
	a->req = dns_lookup(c->dns, a->name, a->type, answer_cb, a);
	if (a->req == NULL) { /* no memory to ask: a DNS error */
		a->state = ANS_DONE;
		a->st = DNS_TEMPFAIL;
		return;
	}
	a->state = ANS_PENDING;
	c->pending++;
}

/* libspf2 asks for the addresses of the first MX or PTR names next, one
 * at a time: ask for all of them now. */
static void prefetch(struct spf_check *c, const struct answer *a)
{
	int type = c->family == AF_INET ? ns_t_a : ns_t_aaaa;

	if ((a->type != ns_t_mx && a->type != ns_t_ptr) || a->st != DNS_OK)
		return;
	for (int i = 0; i < a->n && i < SPF_TARGETS_MAX; i++) {
		char norm[DNS_NAME_MAX + 1];
		struct answer *t;

		if (spf_name_norm(a->rr[i], norm, sizeof norm) < 0 || answer_find(c, norm, type))
			continue;
		t = answer_new(c, norm, type);
		if (!t)
			return;
		spf_lookup_start(t);
	}
}

static void answer_cb(void *arg, const struct dns_result *r)
{
	struct answer *a = arg;
	struct spf_check *c = a->c;

	a->req = NULL;
	a->state = ANS_DONE;
	a->st = r->status;
	if (a->st == DNS_OK && answer_parse(a, r->abuf, r->alen) < 0) {
		answer_clear(a);
		a->st = DNS_TEMPFAIL;
	}
	prefetch(c, a);
	c->pending--;
	if (c->pending == 0)
		spf_advance(c);
	if (c->done)
		spf_deliver(c);
}

/* ---- the DNS layer libspf2 calls ---- */

/* A term over the limit ends the evaluation: TRY_AGAIN unwinds libspf2 at
 * once, and spf_conclude() reports the permerror. */
static int count_term(struct spf_check *c)
{
	if (++c->terms <= SPF_TERMS_MAX)
		return 0;
	if (c->limit == LIM_NONE)
		c->limit = LIM_TERMS;
	return -1;
}

/* Is this lookup a term of its own (include, a, mx, ptr, exists)? After an
 * MX or PTR answer libspf2 asks, in order, for the addresses of its first
 * names: those are part of that term. The %{p} macro asks PTR with
 * should_cache 0 and is no term. Returns 1 for a term, 0 if not, -1 if the
 * term is over the limit; *any: answer an address query with the client's
 * address (an mx/0 target). */
static int classify(struct spf_check *c, const char *norm, ns_type type, int should_cache, int *any)
{
	if (c->tgt && c->tgt_i < c->tgt_n && (int)type == c->tgt_type) {
		char t[DNS_NAME_MAX + 1];

		if (spf_name_norm(c->tgt->rr[c->tgt_i], t, sizeof t) == 0 && strcmp(t, norm) == 0) {
			c->tgt_i++;
			*any = c->tgt_any;
			return 0;
		}
	}
	c->tgt = NULL;
	if (type == ns_t_mx || type == ns_t_a || type == ns_t_aaaa || (type == ns_t_ptr && should_cache))
		return count_term(c) < 0 ? -1 : 1;
	return 0;
}

static SPF_dns_rr_t *rr_new(SPF_dns_server_t *s, const char *name, ns_type type, int herrno)
{
	/* NULL from here makes libspf2 call SPF_error: see spf_log_error */
	return SPF_dns_rr_new_init(s, name, type, 0, herrno);
}

/* The records of a, as libspf2 wants them; n of them. */
static SPF_dns_rr_t *rr_fill(SPF_dns_server_t *s, const char *domain, ns_type type,
                             const struct answer *a, int n)
{
	SPF_dns_rr_t *rr = rr_new(s, domain, type, NETDB_SUCCESS);
	int text = type != ns_t_a && type != ns_t_aaaa;

	if (!rr)
		return NULL;
	for (int i = 0; i < n; i++) {
		if (SPF_dns_rr_buf_realloc(rr, i, a->len[i] + (size_t)text) != SPF_E_SUCCESS) {
			SPF_dns_rr_free(rr);
			return rr_new(s, domain, type, TRY_AGAIN);
		}
		memcpy(rr->rr[i], a->rr[i], a->len[i] + (size_t)text);
		rr->num_rr = i + 1;
	}
	return rr;
}

/* With a CIDR length of 0 any address of the name matches: the client's own
 * is as good as any. */
static SPF_dns_rr_t *rr_client(SPF_dns_server_t *s, const char *domain, ns_type type,
                               const struct spf_check *c)
{
	struct answer one = {0};
	char buf[sizeof c->ip6];
	char *rr[1] = {buf};
	size_t len[1] = {type == ns_t_a ? sizeof c->ip4 : sizeof c->ip6};

	memcpy(buf, type == ns_t_a ? (const void *)&c->ip4 : (const void *)&c->ip6, len[0]);
	one.rr = rr;
	one.len = len;
	return rr_fill(s, domain, type, &one, 1);
}

static SPF_dns_rr_t *layer_lookup(SPF_dns_server_t *s, const char *domain, ns_type type,
                                  int should_cache)
{
	struct spf_check *c = s->hook;
	char norm[DNS_NAME_MAX + 1];
	const struct answer *a;
	int term, n, herrno, any = 0;
	size_t dl = domain ? strlen(domain) : 0, ml = strlen(SPF_ANY_MARKER);

	if (c->limit != LIM_NONE)
		return rr_new(s, domain, type, TRY_AGAIN);
	if (type == ns_t_spf)   /* RFC 7208 3.1: type SPF is no more */
		return rr_new(s, domain, type, NO_DATA);
	if (dl > ml && strcasecmp(domain + dl - ml, SPF_ANY_MARKER) == 0) {
		any = 1;        /* a/0 or mx/0 (spf_syntax.h) */
		dl -= ml;
	}
	if (spf_name_norm_n(domain ? domain : "", dl, norm, sizeof norm) < 0)
		norm[0] = '\0';
	term = classify(c, norm, type, should_cache, &any);
	if (term < 0)
		return rr_new(s, domain, type, TRY_AGAIN);
	herrno = HOST_NOT_FOUND;
	if (norm[0] == '\0')
		goto negative;
	a = answer_find(c, norm, (int)type);
	if (!a || a->state != ANS_DONE) {
		/* Speculate: go on as if the name had no records, so that the
		 * rest of the record asks for its names in this same round.
		 * A pass with a miss is never the final one. */
		spf_miss(c, norm, (int)type);
		return rr_new(s, domain, type, c->limit == LIM_NONE ? NO_DATA : TRY_AGAIN);
	}
	switch (a->st) {
	case DNS_TEMPFAIL:
		spf_why(c, "DNS error looking up %s", norm);
		return rr_new(s, domain, type, TRY_AGAIN);
	case DNS_NXDOMAIN:
		goto negative;
	case DNS_NODATA:
		herrno = NO_DATA;
		goto negative;
	case DNS_OK:
		break;
	}
	herrno = NO_DATA;
	if (a->n == 0)
		goto negative;
	n = a->n;
	if (type == ns_t_mx || type == ns_t_ptr) {
		/* RFC 7208 4.6.4: 10 names at most; for ptr more is no error
		 * (libspf2 would make it permerror), for mx it is */
		if (type == ns_t_ptr && n > SPF_TARGETS_MAX)
			n = SPF_TARGETS_MAX;
		c->tgt = a;
		c->tgt_any = any;
		c->tgt_i = 0;
		c->tgt_n = a->n < SPF_TARGETS_MAX ? a->n : SPF_TARGETS_MAX;
		c->tgt_type = c->family == AF_INET ? ns_t_a : ns_t_aaaa;
	}
	if (any && (type == ns_t_a || type == ns_t_aaaa))
		return rr_client(s, domain, type, c);
	return rr_fill(s, domain, type, a, n);

negative:
	if (term && ++c->voids > SPF_VOIDS_MAX) {
		if (c->limit == LIM_NONE)
			c->limit = LIM_VOIDS;
		return rr_new(s, domain, type, TRY_AGAIN);
	}
	return rr_new(s, domain, type, herrno);
}

/* The record of cur_dom cannot be used: note why, as the result if it is
 * the checked domain's own. */
static SPF_errcode_t unusable(struct spf_check *c, SPF_response_t *resp, int top,
                              enum top_state st, SPF_errcode_t code)
{
	if (top)
		c->top_state = st;
	return SPF_response_add_error(resp, code, "%s", c->why);
}

/* The SPF record of req->cur_dom (RFC 7208 4.4, 4.5), checked and compiled.
 * Called for the checked domain and for each include and redirect. */
static SPF_errcode_t layer_get_spf(SPF_server_t *srv, SPF_request_t *req, SPF_response_t *resp,
                                   SPF_record_t **recp)
{
	struct spf_check *c = srv->resolver->hook;
	int top = c->top, found = 0, idx = 0;
	char norm[DNS_NAME_MAX + 1], err[160], *canon;
	const char *what = top ? "" : " (include or redirect)";
	struct spf_client cl = {c->family, c->ip_text};
	const struct answer *a;
	size_t size;
	int rc;

	*recp = NULL;
	c->top = 0;
	if ((!top && count_term(c) < 0) || c->limit != LIM_NONE)
		return SPF_response_add_error(resp, SPF_E_DNS_ERROR, "DNS lookup limit");
	if (!req->cur_dom || spf_name_norm(req->cur_dom, norm, sizeof norm) < 0) {
		spf_why(c, "malformed domain%s", what);
		return unusable(c, resp, top, TOP_NONE, SPF_E_NOT_SPF);
	}
	a = answer_find(c, norm, ns_t_txt);
	if (!a || a->state != ANS_DONE) {
		spf_miss(c, norm, ns_t_txt);
		if (top || c->limit != LIM_NONE)
			return SPF_response_add_error(resp, SPF_E_DNS_ERROR, "not known yet");
		/* speculate (see layer_lookup): an include not known yet
		 * matches nothing in this pass */
		return SPF_record_compile(srv, resp, recp, "v=spf1");
	}
	if (a->st == DNS_TEMPFAIL) {
		spf_why(c, "DNS error looking up the SPF record of %s", norm);
		return unusable(c, resp, top, TOP_TEMP, SPF_E_DNS_ERROR);
	}
	for (int i = 0; a->st == DNS_OK && i < a->n; i++)
		if (spf_syntax_is_spf1(a->rr[i], a->len[i])) {
			found++;
			idx = i;
		}
	if (found != 1) {
		spf_why(c, "%s SPF record at %s%s", found ? "more than one" : "no", norm, what);
		return found ? unusable(c, resp, top, TOP_PERM, SPF_E_MULTIPLE_RECORDS) :
		               unusable(c, resp, top, TOP_NONE, SPF_E_NOT_SPF);
	}
	size = 6 * a->len[idx] + 64;
	canon = malloc(size);
	if (!canon)
		return SPF_response_add_error(resp, SPF_E_DNS_ERROR, "out of memory");
	if (spf_syntax_check(a->rr[idx], a->len[idx], &cl, canon, size, err, sizeof err) < 0) {
		free(canon);
		spf_why(c, "%s at %s", err, norm);
		return unusable(c, resp, top, TOP_PERM, SPF_E_SYNTAX);
	}
	rc = SPF_record_compile(srv, resp, recp, canon);
	free(canon);
	if (rc != SPF_E_SUCCESS) {
		if (*recp)
			SPF_record_free(*recp);
		*recp = NULL;
		spf_why(c, "libspf2 cannot compile the record at %s", norm);
		return unusable(c, resp, top, TOP_PERM, SPF_E_SYNTAX);
	}
	return SPF_E_SUCCESS;
}

/* exp= (RFC 7208 6.2): the TXT record of the expanded domain, its macros
 * expanded here (libspf2 URL-encodes in lower case and reads only the first
 * string). Any trouble means the default explanation: an error return. */
static SPF_errcode_t layer_get_exp(SPF_server_t *srv, const char *domain, char **bufp,
                                   size_t *buflenp)
{
	struct spf_check *c = srv->resolver->hook;
	char norm[DNS_NAME_MAX + 1], tbuf[24], text[sizeof c->out.explanation];
	struct spf_macro_vars v;
	const struct answer *a;
	const SPF_request_t *req = c->req;
	size_t len;

	c->exp_state = EXP_DEFAULT;
	if (!domain || spf_name_norm(domain, norm, sizeof norm) < 0)
		return SPF_E_NOT_SPF;
	a = answer_find(c, norm, ns_t_txt);
	if (!a || a->state != ANS_DONE) {
		/* fetched only if this turns out to be the final explanation */
		c->exp_state = EXP_MISS;
		text_copy(c->exp_name, sizeof c->exp_name, norm);
		return SPF_E_DNS_ERROR;
	}
	if (a->st != DNS_OK || a->n != 1 || strlen(a->rr[0]) != a->len[0] ||
	    !spf_syntax_exp_valid(a->rr[0], a->len[0]))
		return SPF_E_NOT_SPF;
	snprintf(tbuf, sizeof tbuf, "%lld", (long long)time(NULL));
	v.s = req->env_from;
	v.l = req->env_from_lp;
	v.o = req->env_from_dp;
	v.d = req->cur_dom;
	v.i = c->ip_macro;
	v.p = spf_macro_uses_p(a->rr[0], a->len[0]) ? SPF_request_get_client_dom(c->req) : "unknown";
	v.h = c->helo[0] ? c->helo : "unknown";
	v.c = c->ip_text;
	v.r = c->receiver;
	v.t = tbuf;
	v.v = c->family == AF_INET ? "in-addr" : "ip6";
	if (!v.p || spf_macro_expand_exp(a->rr[0], a->len[0], &v, text, sizeof text) < 0)
		return SPF_E_NOT_SPF;
	/* the text goes into our SMTP reply: printable US-ASCII only */
	for (const char *p = text; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return SPF_E_NOT_SPF;
	len = strlen(text) + 1;
	if (*buflenp < len) {
		char *nb = realloc(*bufp, len);

		if (!nb)
			return SPF_E_NO_MEMORY;
		*bufp = nb;
		*buflenp = len;
	}
	memcpy(*bufp, text, len);
	c->exp_state = EXP_OK;
	return SPF_E_SUCCESS;
}

int spf_record_text(struct spf_check *c, const char *domain, const char **txt, size_t *len)
{
	char norm[DNS_NAME_MAX + 1];
	const struct answer *a;
	int found = 0;

	if (spf_name_norm(domain, norm, sizeof norm) < 0 || !(a = answer_find(c, norm, ns_t_txt)) ||
	    a->state != ANS_DONE || a->st != DNS_OK)
		return -1;
	for (int i = 0; i < a->n; i++)
		if (spf_syntax_is_spf1(a->rr[i], a->len[i])) {
			*txt = a->rr[i];
			*len = a->len[i];
			found++;
		}
	return found == 1 ? 0 : -1;
}

void spf_layer_init(struct spf_check *c)
{
	c->layer.lookup = layer_lookup;
	c->layer.get_spf = layer_get_spf;
	c->layer.get_exp = layer_get_exp;
	c->layer.name = "moat";
	c->layer.hook = c;
}
