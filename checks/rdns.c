/* rdns.c - forward-confirmed reverse DNS: PTR, then A/AAAA of each name.
 *
 * All forward lookups start together; the first name whose addresses
 * include the client's wins. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <netdb.h>
#include <netinet/in.h>

#include "checks/checks.h"
#include "checks/rdns.h"
#include "proxy/lib/log.h"

struct rdns_check;

struct fwd {
	struct rdns_check *c;
	struct dns_req *req;
	char name[DNS_NAME_MAX + 1];
	int pending;
};

struct rdns_check {
	struct dns *dns;
	int family;                  /* AF_INET or AF_INET6 (a mapped v4 counts as v4) */
	unsigned char addr[16];
	struct dns_req *ptr;         /* also the deferred result of a bad address */
	struct fwd fwd[RDNS_PTR_MAX];
	int nfwd, npending, tempfail;
	rdns_cb cb;
	void *arg;
};

const char *rdns_res_name(enum rdns_res r)
{
	return r == RDNS_OK ? "ok" : r == RDNS_NONE ? "none" : "tempfail";
}

/* The address as a family and bytes; mapped IPv4 becomes IPv4. */
static int client_addr(const struct sockaddr *sa, int *family, unsigned char *addr)
{
	if (sa->sa_family == AF_INET) {
		*family = AF_INET;
		memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			*family = AF_INET;
			memcpy(addr, a6->s6_addr + 12, 4);
		} else {
			*family = AF_INET6;
			memcpy(addr, a6->s6_addr, 16);
		}
		return 0;
	}
	return -1;
}

int rdns_ptr_name(const struct sockaddr *sa, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char a[16];
	int family, i, n = 0;

	if (client_addr(sa, &family, a) < 0 || size < 74)
		return -1;
	if (family == AF_INET) {
		snprintf(out, size, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
		return 0;
	}
	for (i = 15; i >= 0; i--) {
		out[n++] = hex[a[i] & 15];
		out[n++] = '.';
		out[n++] = hex[a[i] >> 4];
		out[n++] = '.';
	}
	memcpy(out + n, "ip6.arpa", 9);
	return 0;
}

/* Report and free c; name is copied first (it may be one of c's). */
static void finish(struct rdns_check *c, enum rdns_res res, const char *name)
{
	char found[DNS_NAME_MAX + 1];
	rdns_cb cb = c->cb;
	void *arg = c->arg;

	snprintf(found, sizeof found, "%s", res == RDNS_OK ? name : "");
	rdns_cancel(c);
	cb(arg, res, found);
}

/* Does the answer hold the client's address? */
static int answer_has(const struct rdns_check *c, const struct dns_result *r)
{
	struct ares_addrttl a4[32];
	struct ares_addr6ttl a6[32];
	int i, n = 32;

	if (c->family == AF_INET) {
		if (ares_parse_a_reply(r->abuf, r->alen, NULL, a4, &n) != ARES_SUCCESS)
			return 0;
		for (i = 0; i < n; i++)
			if (memcmp(&a4[i].ipaddr, c->addr, 4) == 0)
				return 1;
	} else {
		if (ares_parse_aaaa_reply(r->abuf, r->alen, NULL, a6, &n) != ARES_SUCCESS)
			return 0;
		for (i = 0; i < n; i++)
			if (memcmp(&a6[i].ip6addr, c->addr, 16) == 0)
				return 1;
	}
	return 0;
}

static void fwd_cb(void *arg, const struct dns_result *r)
{
	struct fwd *f = arg;
	struct rdns_check *c = f->c;

	f->pending = 0;
	f->req = NULL;
	c->npending--;
	if (r->status == DNS_TEMPFAIL)
		c->tempfail = 1;
	if (r->status == DNS_OK && answer_has(c, r)) {
		finish(c, RDNS_OK, f->name);
		return;
	}
	if (c->npending == 0)
		finish(c, c->tempfail ? RDNS_TEMPFAIL : RDNS_NONE, "");
}

static void ptr_cb(void *arg, const struct dns_result *r)
{
	struct rdns_check *c = arg;
	struct hostent *he = NULL;
	int i;

	c->ptr = NULL;
	if (r->status != DNS_OK) {
		finish(c, r->status == DNS_TEMPFAIL ? RDNS_TEMPFAIL : RDNS_NONE, "");
		return;
	}
	if (ares_parse_ptr_reply(r->abuf, r->alen, c->addr, c->family == AF_INET ? 4 : 16, c->family,
	                         &he) != ARES_SUCCESS || !he) {
		finish(c, RDNS_NONE, "");
		return;
	}
	/* h_name is the first PTR name, h_aliases the others. */
	for (i = -1; c->nfwd < RDNS_PTR_MAX && (i < 0 || he->h_aliases[i]); i++) {
		const char *name = i < 0 ? he->h_name : he->h_aliases[i];

		/* c-ares 1.18 gives the last PTR name in h_name and all of them in
		 * h_aliases: each name once */
		if (name && dns_normalise(name, c->fwd[c->nfwd].name, sizeof c->fwd[c->nfwd].name) == 0) {
			int k;

			for (k = 0; k < c->nfwd && strcmp(c->fwd[k].name, c->fwd[c->nfwd].name); k++)
				;
			if (k == c->nfwd) {
				c->fwd[c->nfwd].c = c;
				c->nfwd++;
			}
		}
	}
	ares_free_hostent(he);
	/* a lookup that cannot even start counts as a TEMPFAIL */
	for (i = 0; i < c->nfwd; i++) {
		c->fwd[i].req = dns_lookup(c->dns, c->fwd[i].name, c->family == AF_INET ? ns_t_a : ns_t_aaaa,
		                           fwd_cb, &c->fwd[i]);
		c->fwd[i].pending = c->fwd[i].req != NULL;
		c->npending += c->fwd[i].pending;
		c->tempfail |= !c->fwd[i].pending;
	}
	if (c->npending == 0)
		finish(c, c->tempfail ? RDNS_TEMPFAIL : RDNS_NONE, "");
}

/* Not an IPv4 or IPv6 address: no name, on the loop's next turn. */
static void deferred_cb(void *arg, const struct dns_result *r)
{
	struct rdns_check *c = arg;

	c->ptr = NULL;
	finish(c, RDNS_NONE, "");
}

struct rdns_check *rdns_start(struct dns *d, const struct sockaddr *client, rdns_cb cb, void *arg)
{
	struct rdns_check *c = calloc(1, sizeof *c);
	char qname[80];

	if (!c)
		return NULL;
	c->dns = d;
	c->cb = cb;
	c->arg = arg;
	if (client_addr(client, &c->family, c->addr) < 0 || rdns_ptr_name(client, qname, sizeof qname) < 0)
		c->ptr = dns_defer(d, deferred_cb, c);
	else
		c->ptr = dns_lookup(d, qname, ns_t_ptr, ptr_cb, c);
	if (!c->ptr) {
		free(c);
		return NULL;
	}
	return c;
}

void rdns_cancel(struct rdns_check *c)
{
	int i;

	if (!c)
		return;
	dns_cancel(c->ptr);
	for (i = 0; i < c->nfwd; i++)
		if (c->fwd[i].pending)
			dns_cancel(c->fwd[i].req);
	free(c);
}

/* ---- the registry's row ------------------------------------------------------
 * Only when a rule tests rdns, or a template names %{rdns}: the lookup
 * costs a PTR and an A/AAAA query per connection. */

struct rdns_slot {
	struct rdns_result r;         /* first: what checks_result hands out */
	struct rdns_check *rc;        /* in flight */
	check_done_fn done;
	void *arg;
};

static const char *const none[] = {"none", NULL};
static const struct rule_vocab_fact facts[] = {
	{"rdns", STAGE_CONNECT, RULE_NAMES, none, "a host name, .domain, list:PATH or none"},
};

static int wanted(const struct check_ctx *ctx, const struct ruleset *rs, size_t first)
{
	return ctx->env->dns && (ctx->opt->want_rdns || check_fact_used(rs, first, 0));
}

static void row_cb(void *arg, enum rdns_res res, const char *name)
{
	struct rdns_slot *s = arg;

	s->rc = NULL;
	s->r.res = res;
	if (res == RDNS_OK)
		snprintf(s->r.name, sizeof s->r.name, "%s", name);
	s->done(s->arg);
}

static void *start(const struct check_ctx *ctx, void *result, check_done_fn done, void *arg)
{
	struct rdns_slot *s = result;

	s->done = done;
	s->arg = arg;
	s->rc = rdns_start(ctx->env->dns, ctx->client, row_cb, s);
	if (!s->rc) {
		s->r.res = RDNS_TEMPFAIL; /* no memory to start it */
		return NULL;
	}
	return s;
}

static void cancel(void *handle)
{
	struct rdns_slot *s = handle;

	rdns_cancel(s->rc);
	s->rc = NULL;
}

static void values(const void *result, struct rule_value *v, const char *(*names)[CHECK_NAMES_MAX])
{
	const struct rdns_result *r = result;

	v->known = 1;
	v->text = r->res == RDNS_OK ? r->name : "";
	v->names = names[0];
	v->nnames = 0;
	if (r->res == RDNS_OK && r->name[0])
		names[0][v->nnames++] = r->name;
}

/* ok, none, tempfail: enum rdns_res's order */
static const char *const results[] = {"ok", "none", "tempfail", NULL};

static int result_word(const void *result)
{
	return (int)((const struct rdns_result *)result)->res;
}

static void log_fields(const void *result, struct jline *j)
{
	const struct rdns_result *r = result;

	if (r)
		jl_str(j, "rdns", r->res == RDNS_OK ? r->name : rdns_res_name(r->res));
}

static void describe(const void *result, char *buf, size_t size)
{
	const struct rdns_result *r = result;

	snprintf(buf, size, "%s", r->res == RDNS_OK ? r->name : rdns_res_name(r->res));
}

const struct check_def check_rdns = {
	.name = "rdns",
	.stage = STAGE_CONNECT,
	.result_size = sizeof(struct rdns_slot),
	.facts = facts,
	.nfacts = sizeof facts / sizeof facts[0],
	.wanted = wanted,
	.results = results,
	.result = result_word,
	.start = start,
	.cancel = cancel,
	.values = values,
	.log = log_fields,
	.describe = describe,
};
