/* dkim_keys.c - DKIM keys for libopendkim without its blocking resolver:
 * the prescreen callback starts one lookup per key record through dns.c,
 * the key-lookup callback says "try again" until the answer is in, and the
 * library's DNS hooks serve the reply we fetched; the verifier (the
 * library's handle) and the cap on the wait for keys. */
#include <sys/types.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <opendkim/dkim.h>

#include "checks/dkim.h"
#include "checks/dkim_check.h"
#include "proxy/lib/idna.h"

/* Keys */

struct dkim_key *dkim_key_find(struct dkim_check *c, const char *name)
{
	int i;

	for (i = 0; i < c->nkeys; i++)
		if (strcmp(c->key[i].name, name) == 0)
			return &c->key[i];
	return NULL;
}

/* A key's name as DNS has it: lower case, no trailing dot, in A-labels (RFC
 * 8616 5: a signature of an SMTPUTF8 message may name d= and s= in U-labels;
 * the key is looked up under the A-labels). -1 if there is no such name. */
static int key_name_norm(const char *raw, char *out, size_t size)
{
	return idna_to_ascii(raw, strlen(raw), out, size) == IDNA_OK ? 0 : -1;
}

/* "<s>._domainkey.<d>", normalised; -1 if there is no such name. */
int dkim_key_name(DKIM_SIGINFO *sig, char *out, size_t size)
{
	const char *s = (const char *)dkim_sig_getselector(sig);
	const char *d = (const char *)dkim_sig_getdomain(sig);
	char raw[2 * DKIM_KEYNAME_MAX];
	int n;

	if (!s || !d || !*s || !*d)
		return -1;
	n = snprintf(raw, sizeof raw, "%s._domainkey.%s", s, d);
	if (n < 0 || (size_t)n >= sizeof raw)
		return -1;
	return key_name_norm(raw, out, size);
}

static void key_done(void *arg, const struct dns_result *r);

/* Record a key and start its lookup. */
static struct dkim_key *key_start(struct dkim_check *c, const char *name)
{
	struct dkim_key *k;

	if (c->nkeys >= DKIM_MAX_SIGS)
		return NULL;
	k = &c->key[c->nkeys++];
	memset(k, 0, sizeof *k);
	snprintf(k->name, sizeof k->name, "%s", name);
	k->c = c;
	if (c->timed_out) {
		k->done = k->timed_out = 1;
		k->st = DNS_TEMPFAIL;
		return k;
	}
	k->req = dns_lookup(c->dns, name, ns_t_txt, key_done, k);
	if (k->req == NULL) { /* no memory to ask: a DNS error */
		k->done = 1;
		k->st = DNS_TEMPFAIL;
		return k;
	}
	c->pending++;
	return k;
}

/* What a DNS_OK reply holds for libopendkim: DNS_OK if it has TXT records
 * and c-ares finds every length in it sound (the library's TXT loop trusts
 * the character-string lengths), DNS_NODATA if it has none (a CNAME to
 * nothing), else DNS_TEMPFAIL. */
static enum dns_status reply_check(const unsigned char *abuf, int alen)
{
	struct ares_txt_ext *txt = NULL;
	int rc;

	if (!abuf || alen < NS_HFIXEDSZ)
		return DNS_TEMPFAIL;
	rc = ares_parse_txt_reply_ext(abuf, alen, &txt);
	if (rc == ARES_SUCCESS) {
		ares_free_data(txt);
		return DNS_OK;
	}
	return rc == ARES_ENODATA ? DNS_NODATA : DNS_TEMPFAIL;
}


static void key_done(void *arg, const struct dns_result *r)
{
	struct dkim_key *k = arg;
	struct dkim_check *c = k->c;

	k->req = NULL;
	k->done = 1;
	k->st = r->status == DNS_OK ? reply_check(r->abuf, r->alen) : r->status;
	if (k->st == DNS_OK) {
		if ((k->abuf = malloc((size_t)r->alen)) == NULL) {
			k->st = DNS_TEMPFAIL;
		} else {
			memcpy(k->abuf, r->abuf, (size_t)r->alen);
			k->alen = r->alen;
		}
	}
	c->pending--;
	if (c->pending > 0 || !c->waiting)
		return;
	/* the last key a waiting check needed: go on */
	c->waiting = 0;
	dkim_advance(c);
	if (c->done)
		dkim_deliver(c);
}

void dkim_wait_expired(evutil_socket_t fd, short what, void *arg)
{
	struct dkim_check *c = arg;
	int i;

	c->timed_out = 1;
	for (i = 0; i < c->nkeys; i++) {
		struct dkim_key *k = &c->key[i];

		if (k->done)
			continue;
		dns_cancel(k->req);
		k->req = NULL;
		k->done = k->timed_out = 1;
		k->st = DNS_TEMPFAIL;
	}
	c->pending = 0;
	c->waiting = 0;
	dkim_advance(c);
	if (c->done)
		dkim_deliver(c);
}

/* libopendkim callbacks */

/* Before any key is needed: look every key up at once, and set aside the
 * signatures we do not verify. */
static DKIM_CBSTAT on_prescreen(DKIM *dkim, DKIM_SIGINFO **sigs, int nsigs)
{
	struct dkim_check *c = dkim_get_user_context(dkim);
	char name[DKIM_KEYNAME_MAX];
	int i;

	c->sigs = sigs;
	c->nsigs = nsigs < DKIM_MAX_SIGS ? nsigs : DKIM_MAX_SIGS;
	for (i = 0; i < nsigs; i++) {
		DKIM_SIGINFO *sig = sigs[i];
		dkim_alg_t alg;
		const char *q;

		if (i >= DKIM_MAX_SIGS) {
			dkim_sig_ignore(sig); /* not reached: we pass at most DKIM_MAX_SIGS */
			continue;
		}
		if (dkim_sig_geterror(sig) != DKIM_SIGERROR_UNKNOWN)
			continue; /* a syntax error already: no key needed */
		/* RFC 8301 section 3.1: rsa-sha1 signatures are not to be
		 * considered valid. */
		if (dkim_sig_getsignalg(sig, &alg) == DKIM_STAT_OK && alg == DKIM_SIGN_RSASHA1) {
			c->mark[i] = MARK_SHA1;
			dkim_sig_ignore(sig);
			continue;
		}
		/* We fetch keys by DNS whatever q= says (DKIM_OPTS_QUERYMETHOD):
		 * a signature that names no "dns/txt" method cannot be verified. */
		q = (const char *)dkim_sig_gettagvalue(sig, 0, (u_char *)"q");
		if (q && !strcasestr(q, "dns/txt")) {
			c->mark[i] = MARK_BAD_Q;
			dkim_sig_ignore(sig);
			continue;
		}
		if (dkim_key_name(sig, name, sizeof name) < 0) {
			c->mark[i] = MARK_BAD_NAME;
			dkim_sig_ignore(sig);
			continue;
		}
		if (!dkim_key_find(c, name))
			key_start(c, name);
	}
	return DKIM_CBSTAT_CONTINUE;
}

/* Per signature, inside dkim_eoh: is its key in yet? */
static DKIM_CBSTAT on_key_lookup(DKIM *dkim, DKIM_SIGINFO *sig, u_char *buf, size_t buflen)
{
	struct dkim_check *c = dkim_get_user_context(dkim);
	char name[DKIM_KEYNAME_MAX];
	struct dkim_key *k;

	if (dkim_key_name(sig, name, sizeof name) < 0)
		return DKIM_CBSTAT_NOTFOUND; /* not reached: the prescreen set it aside */
	k = dkim_key_find(c, name);
	if (!k)
		k = key_start(c, name); /* not reached: the prescreen started it */
	if (!k)
		return DKIM_CBSTAT_NOTFOUND;
	if (!k->done)
		return DKIM_CBSTAT_TRYAGAIN;
	return DKIM_CBSTAT_DEFAULT; /* the library asks q_start for the reply */
}

/* The library's DNS "query": hand it the recorded reply at once. */
static int q_start(void *srv, int type, unsigned char *query, unsigned char *buf, size_t buflen,
                   void **qh)
{
	struct dkim_verifier *l = srv;
	struct dkim_check *c = l->current;
	char name[DKIM_KEYNAME_MAX];
	struct dkim_key *k;

	if (!c || type != ns_t_txt || key_name_norm((const char *)query, name, sizeof name) < 0)
		return DKIM_DNS_ERROR;
	k = dkim_key_find(c, name);
	if (!k || !k->done)
		return DKIM_DNS_ERROR; /* never our blocking resolver: no answer, no key */
	switch (k->st) {
	case DNS_OK:
		if ((size_t)k->alen > buflen)
			return DKIM_DNS_ERROR;
		memcpy(buf, k->abuf, (size_t)k->alen);
		k->served = (size_t)k->alen;
		break;
	case DNS_NXDOMAIN:
	case DNS_NODATA: {
		/* A reply with the root as question name: the library checks the
		 * question's type and class, then the rcode and the answer count. */
		static const unsigned char neg[] = {
			0, 0, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, /* QR RD RA, QD=1 */
			0, 0, ns_t_txt, 0, ns_c_in,                /* . TXT IN */
		};

		if (sizeof neg > buflen)
			return DKIM_DNS_ERROR;
		memcpy(buf, neg, sizeof neg);
		if (k->st == DNS_NXDOMAIN)
			buf[3] |= ns_r_nxdomain;
		k->served = sizeof neg;
		break;
	}
	case DNS_TEMPFAIL:
	default:
		return DKIM_DNS_ERROR; /* -> DKIM_SIGERROR_KEYFAIL */
	}
	*qh = k;
	return DKIM_DNS_SUCCESS;
}

static int q_waitreply(void *srv, void *qh, struct timeval *tv, size_t *bytes, int *error,
                       int *dnssec)
{
	struct dkim_key *k = qh;

	*bytes = k->served;
	if (error)
		*error = 0;
	if (dnssec)
		*dnssec = DKIM_DNSSEC_UNKNOWN;
	return DKIM_DNS_SUCCESS;
}

static int q_cancel(void *srv, void *qh)
{
	return DKIM_DNS_SUCCESS;
}

static void q_close(void *srv)
{
}

/* Library */

struct dkim_verifier *dkim_verifier_new(struct dns *d)
{
	struct dkim_verifier *l = calloc(1, sizeof *l);
	unsigned int flags = DKIM_LIBFLAGS_BADSIGHANDLES;
	dkim_query_t qm = DKIM_QUERY_DNS;

	if (!l)
		return NULL;
	l->dns = d;
	l->lib = dkim_init(NULL, NULL);
	if (!l->lib) {
		free(l);
		return NULL;
	}
	/* BADSIGHANDLES: malformed signatures stay in the list (permerror)
	 * instead of vanishing. QUERYMETHOD: every key by DNS; left alone, a
	 * signature with an unknown q= makes dkim_get_key() hit assert(0)
	 * once a key lookup callback is set. */
	if (dkim_options(l->lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags) != DKIM_STAT_OK ||
	    dkim_options(l->lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYMETHOD, &qm, sizeof qm) != DKIM_STAT_OK) {
		dkim_close(l->lib);
		free(l);
		return NULL;
	}
	dkim_set_prescreen(l->lib, on_prescreen);
	dkim_set_key_lookup(l->lib, on_key_lookup);
	dkim_dns_set_query_service(l->lib, l);
	dkim_dns_set_query_start(l->lib, q_start);
	dkim_dns_set_query_waitreply(l->lib, q_waitreply);
	dkim_dns_set_query_cancel(l->lib, q_cancel);
	dkim_dns_set_close(l->lib, q_close);
	dkim_dns_set_init(l->lib, NULL);
	return l;
}

void dkim_verifier_free(struct dkim_verifier *l)
{
	if (!l)
		return;
	dkim_close(l->lib);
	free(l);
	dkim_keycache_free(); /* also links the key cache in (see dkim_keycache.c) */
}

void dkim_verifier_set_wait(struct dkim_verifier *l, struct event_base *base, int ms)
{
	l->base = base;
	l->wait_ms = ms > 0 ? ms : DKIM_KEY_WAIT_MS;
}

