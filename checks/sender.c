/* sender.c - sender-domain check: MX first, then A and AAAA in parallel */
#include <arpa/nameser.h>
#include <ares.h>
#include <stdlib.h>
#include <string.h>

#include "checks/sender.h"

struct sender_check {
	struct dns *dns;
	char domain[256];
	sender_cb cb;
	void *arg;
	struct dns_req *mx, *a, *aaaa; /* in flight; mx also the deferred result */
	int pending;                    /* address lookups outstanding */
	enum dns_status st_a, st_aaaa;
	enum sender_res result;         /* known at once: delivered through dns_defer */
};

const char *sender_res_name(enum sender_res r)
{
	static const char *names[] = {"pass", "none", "nxdomain", "norecords", "nullmx", "tempfail"};

	return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "unknown";
}

int sender_mx_classify(const unsigned char *abuf, int alen)
{
	struct ares_mx_reply *mx = NULL, *m;
	int usable = 0, null = 0;

	if (ares_parse_mx_reply(abuf, alen, &mx) != ARES_SUCCESS)
		return -1;
	for (m = mx; m; m = m->next) {
		/* RFC 7505: the null MX's exchange is the root: "" after parsing. */
		if (m->host[0] == '\0' || strcmp(m->host, ".") == 0)
			null = 1;
		else
			usable = 1;
	}
	ares_free_data(mx);
	if (usable)
		return 1;
	return null ? 0 : -1;
}

/* Report the result and free c. */
static void finish(struct sender_check *c, enum sender_res r)
{
	sender_cb cb = c->cb;
	void *arg = c->arg;

	sender_check_cancel(c);
	cb(arg, r);
}

static void addr_done(struct sender_check *c)
{
	if (--c->pending > 0)
		return;
	if (c->st_a == DNS_OK || c->st_aaaa == DNS_OK)
		finish(c, SD_PASS);
	else if (c->st_a == DNS_TEMPFAIL || c->st_aaaa == DNS_TEMPFAIL)
		finish(c, SD_TEMPFAIL);
	else if (c->st_a == DNS_NXDOMAIN && c->st_aaaa == DNS_NXDOMAIN)
		finish(c, SD_NXDOMAIN);
	else
		finish(c, SD_NORECORDS);
}

static void a_cb(void *arg, const struct dns_result *r)
{
	struct sender_check *c = arg;

	c->a = NULL;
	c->st_a = r->status;
	addr_done(c);
}

static void aaaa_cb(void *arg, const struct dns_result *r)
{
	struct sender_check *c = arg;

	c->aaaa = NULL;
	c->st_aaaa = r->status;
	addr_done(c);
}

static void mx_cb(void *arg, const struct dns_result *r)
{
	struct sender_check *c = arg;

	c->mx = NULL;
	switch (r->status) {
	case DNS_NXDOMAIN:
		finish(c, SD_NXDOMAIN);
		return;
	case DNS_TEMPFAIL:
		finish(c, SD_TEMPFAIL);
		return;
	case DNS_OK:
		switch (sender_mx_classify(r->abuf, r->alen)) {
		case 1:
			finish(c, SD_PASS);
			return;
		case 0:
			finish(c, SD_NULLMX);
			return;
		}
		break; /* an MX answer we cannot read: fall back to A/AAAA */
	case DNS_NODATA:
		break;
	}
	/* No MX: the domain itself is the implicit MX (RFC 5321 5.1). A
	 * lookup that cannot even start counts as a TEMPFAIL. */
	c->pending = 2;
	c->st_a = c->st_aaaa = DNS_TEMPFAIL;
	if (!(c->a = dns_lookup(c->dns, c->domain, ns_t_a, a_cb, c)))
		c->pending--;
	if (!(c->aaaa = dns_lookup(c->dns, c->domain, ns_t_aaaa, aaaa_cb, c)))
		c->pending--;
	if (c->pending == 0)
		finish(c, SD_TEMPFAIL);
}

/* The result known at once, on the loop's next turn. */
static void deferred_cb(void *arg, const struct dns_result *r)
{
	struct sender_check *c = arg;

	c->mx = NULL;
	finish(c, c->result);
}

struct sender_check *sender_check_start(struct dns *d, const char *domain, sender_cb cb, void *arg)
{
	struct sender_check *c = calloc(1, sizeof *c);

	if (!c)
		return NULL;
	c->dns = d;
	c->cb = cb;
	c->arg = arg;
	if (!domain || !*domain || domain[0] == '[') {
		c->result = SD_NONE;
		c->mx = dns_defer(d, deferred_cb, c);
	} else if (dns_normalise(domain, c->domain, sizeof c->domain) < 0) {
		c->result = SD_NXDOMAIN;
		c->mx = dns_defer(d, deferred_cb, c);
	} else {
		c->mx = dns_lookup(d, c->domain, ns_t_mx, mx_cb, c);
	}
	if (!c->mx) {
		free(c);
		return NULL;
	}
	return c;
}

void sender_check_cancel(struct sender_check *c)
{
	if (!c)
		return;
	if (c->mx)
		dns_cancel(c->mx);
	if (c->a)
		dns_cancel(c->a);
	if (c->aaaa)
		dns_cancel(c->aaaa);
	free(c);
}
