/* backend_addr.c - the backends' names and addresses (see backend_addr.h) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <netinet/in.h>

#include "checks/dns.h"
#include "proxy/backend_addr.h"
#include "proxy/lib/log.h"
#include "proxy/lib/netaddr.h"

enum name_state { N_NEW, N_OK, N_STALE, N_NONE };

struct name_entry {
	char name[BACKEND_NAME_MAX + 1];       /* "": a free slot */
	struct sockaddr_storage addrs[MOAT_BACKEND_ADDRS_MAX]; /* port 0 */
	int naddr;
	enum name_state state;
	char why[64];                          /* with N_NONE, N_STALE: what DNS said */
	int failing;                           /* N_NONE because DNS fails, not because DNS said none */
	uint64_t expires;                      /* ms: ask again from then */
	uint64_t last_used;                    /* ms */
	int used;                              /* asked for since the last answer */
	/* the lookup in flight: A and AAAA */
	struct dns_req *q[2];
	int pending;                           /* answers still to come; 0: none in flight */
	struct sockaddr_storage got[2][MOAT_BACKEND_ADDRS_MAX];
	int ngot[2];
	enum dns_status st[2];
	uint32_t ttl[2];
	struct event *timer;
	struct backend_names *owner;
	struct backend_dial *waiters;
};

struct peer {
	struct sockaddr_storage addr;          /* with its port; family 0: free */
	int down;
	uint64_t seen;
};

struct backend_names {
	struct event_base *base;
	struct dns *dns;
	int quiet;
	struct name_entry names[MOAT_BACKEND_NAMES_MAX];
	struct peer peers[MOAT_BACKEND_PEERS_MAX];
};

struct backend_dial {
	struct backend_names *n;
	struct backend_list list;
	int ti;                                /* the next backend of list */
	int cur;                               /* the backend of the address handed out last; -1 */
	struct sockaddr_storage addrs[MOAT_BACKEND_ADDRS_MAX]; /* the current backend's, with its port */
	int naddr, ai;
	int tried;                             /* addresses handed out */
	char unresolved[400];
	int unresolved_failing;                /* DNS failed (rather than said "none") */
	struct name_entry *waiting;            /* on this name's answer */
	struct backend_dial *wnext;
	struct event *later;
	struct sockaddr_storage last;          /* the address handed out last */
	int out;                               /* the next callback hands it out; 0: none left */
	backend_dial_cb cb;
	void *arg;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static socklen_t sa_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static void set_port(struct sockaddr_storage *ss, int port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
}

/* "192.0.2.1, 2001:db8::1" */
static void addrs_text(const struct name_entry *e, char *out, size_t size)
{
	size_t k = 0;

	out[0] = '\0';
	for (int i = 0; i < e->naddr && k < size; i++) {
		char ip[64];

		sockaddr_ntop((const struct sockaddr *)&e->addrs[i], ip, sizeof ip);
		k += (size_t)snprintf(out + k, size - k, "%s%s", i ? ", " : "", ip);
	}
}

/* ---- a name's lookup ---------------------------------------------------- */

static void deliver(struct name_entry *e);
static void lookup_start(struct name_entry *e);

/* The addresses of an A or AAAA answer. */
static int parse(const struct dns_result *r, struct sockaddr_storage *out)
{
	struct ares_addrttl a4[MOAT_BACKEND_ADDRS_MAX];
	struct ares_addr6ttl a6[MOAT_BACKEND_ADDRS_MAX];
	int n = MOAT_BACKEND_ADDRS_MAX;

	if (r->status != DNS_OK || !r->abuf)
		return 0;
	if (r->type == ns_t_a) {
		if (ares_parse_a_reply(r->abuf, r->alen, NULL, a4, &n) != ARES_SUCCESS)
			return 0;
		for (int i = 0; i < n; i++) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&out[i];

			memset(&out[i], 0, sizeof out[i]);
			sin->sin_family = AF_INET;
			sin->sin_addr = a4[i].ipaddr;
		}
	} else {
		if (ares_parse_aaaa_reply(r->abuf, r->alen, NULL, a6, &n) != ARES_SUCCESS)
			return 0;
		for (int i = 0; i < n; i++) {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out[i];

			memset(&out[i], 0, sizeof out[i]);
			sin6->sin6_family = AF_INET6;
			memcpy(&sin6->sin6_addr, &a6[i].ip6addr, 16);
		}
	}
	return n;
}

static uint64_t clamp_ttl(uint32_t ttl)
{
	return ttl < MOAT_BACKEND_TTL_MIN ? MOAT_BACKEND_TTL_MIN : ttl > MOAT_BACKEND_TTL_MAX ? MOAT_BACKEND_TTL_MAX : ttl;
}

/* Both answers are in: the name's new addresses, or none, or the last ones kept. */
static void answered(struct name_entry *e)
{
	struct sockaddr_storage all[MOAT_BACKEND_ADDRS_MAX];
	int n = 0, tempfail = e->st[0] == DNS_TEMPFAIL || e->st[1] == DNS_TEMPFAIL, quiet = e->owner->quiet;
	uint64_t ttl = MOAT_BACKEND_TTL_MAX, now = now_ms();
	char was[400], text[400];
	struct timeval tv;

	addrs_text(e, was, sizeof was);
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < e->ngot[k] && n < MOAT_BACKEND_ADDRS_MAX; i++) {
			all[n++] = e->got[k][i];
			if (clamp_ttl(e->ttl[k]) < ttl)
				ttl = clamp_ttl(e->ttl[k]);
		}
	if (n > 0) {
		int changed = n != e->naddr || memcmp(all, e->addrs, (size_t)n * sizeof all[0]) != 0;

		memcpy(e->addrs, all, (size_t)n * sizeof all[0]);
		e->naddr = n;
		addrs_text(e, text, sizeof text);
		if (!quiet && (changed || e->state != N_OK))
			log_info("backend_dns", "backend %s has the address%s %s%s%s%s", e->name, n > 1 ? "es" : "", text,
			         e->state == N_NEW ? "" : " (was: ", e->state == N_NEW ? "" : was[0] ? was : "none",
			         e->state == N_NEW ? "" : ")");
		e->state = N_OK;
		e->expires = now + ttl * 1000;
	} else {
		const char *why = tempfail ? "DNS fails: SERVFAIL or no answer"
		                  : e->st[0] == DNS_NXDOMAIN || e->st[1] == DNS_NXDOMAIN ? "NXDOMAIN: no such name"
		                                                                           : "no A or AAAA record";
		enum name_state to = tempfail && e->naddr ? N_STALE : N_NONE;

		if (to == N_NONE)
			e->naddr = 0;
		if (!quiet && (to != e->state || strcmp(why, e->why) != 0)) {
			if (to == N_STALE)
				log_warn("backend_dns", "backend %s: %s; keeping its last addresses (%s) until DNS answers",
				         e->name, why, was);
			else
				log_warn("backend_dns", "backend %s has no address (%s): mail for it gets 451 4.4.3 while no "
				         "backend of the list has one", e->name, why);
		}
		snprintf(e->why, sizeof e->why, "%s", why);
		e->failing = tempfail;
		e->state = to;
		e->expires = now + MOAT_BACKEND_DNS_RETRY * 1000;
	}
	e->used = 0;
	tv.tv_sec = (time_t)((e->expires - now) / 1000);
	tv.tv_usec = (suseconds_t)((e->expires - now) % 1000 * 1000);
	evtimer_add(e->timer, &tv);
	deliver(e);
}

static void answer_cb(void *arg, const struct dns_result *r, int k)
{
	struct name_entry *e = arg;

	e->q[k] = NULL;
	e->st[k] = r ? r->status : DNS_TEMPFAIL;
	e->ttl[k] = r ? r->ttl : 0;
	e->ngot[k] = r ? parse(r, e->got[k]) : 0;
	if (--e->pending == 0)
		answered(e);
}

static void a_cb(void *arg, const struct dns_result *r)
{
	answer_cb(arg, r, 0);
}

static void aaaa_cb(void *arg, const struct dns_result *r)
{
	answer_cb(arg, r, 1);
}

static void lookup_start(struct name_entry *e)
{
	struct dns *dns = e->owner->dns;

	e->pending = 2;
	e->q[0] = dns ? dns_refresh(dns, e->name, ns_t_a, a_cb, e) : NULL;
	e->q[1] = dns ? dns_refresh(dns, e->name, ns_t_aaaa, aaaa_cb, e) : NULL;
	/* no memory for a request: that lookup failed, and said so later */
	for (int k = 0; k < 2; k++)
		if (!e->q[k]) {
			e->st[k] = DNS_TEMPFAIL;
			e->ngot[k] = 0;
			e->pending--;
		}
	if (e->pending == 0) {
		struct timeval tv = {MOAT_BACKEND_DNS_RETRY, 0};

		e->used = 1;
		evtimer_add(e->timer, &tv); /* answered() would call back inside the caller's call */
	}
}

/* The TTL ran out: asked again if the name was in use since. */
static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct name_entry *e = arg;

	if (e->pending == 0 && (e->used || e->waiters))
		lookup_start(e);
}

static void entry_clear(struct name_entry *e)
{
	for (int k = 0; k < 2; k++)
		dns_cancel(e->q[k]);
	if (e->timer)
		event_free(e->timer);
	memset(e, 0, sizeof *e);
}

/* The entry of name, made (in the least recently used free or idle slot)
 * when there is none; NULL when every slot has a dial waiting. */
static struct name_entry *entry_of(struct backend_names *n, const char *name)
{
	struct name_entry *free_slot = NULL;

	for (int i = 0; i < MOAT_BACKEND_NAMES_MAX; i++) {
		struct name_entry *e = &n->names[i];

		if (e->name[0] && strcmp(e->name, name) == 0)
			return e;
		if (!e->waiters && (!free_slot || !e->name[0] || (free_slot->name[0] && e->last_used < free_slot->last_used)))
			free_slot = e;
	}
	if (!free_slot)
		return NULL;
	entry_clear(free_slot);
	free_slot->owner = n;
	snprintf(free_slot->name, sizeof free_slot->name, "%s", name);
	free_slot->timer = evtimer_new(n->base, timer_cb, free_slot);
	if (!free_slot->timer) {
		free_slot->name[0] = '\0';
		return NULL;
	}
	return free_slot;
}

/* ---- the names of a worker --------------------------------------------- */

struct backend_names *backend_names_new(struct event_base *base, struct dns *dns)
{
	struct backend_names *n = calloc(1, sizeof *n);

	if (n) {
		n->base = base;
		n->dns = dns;
	}
	return n;
}

void backend_names_quiet(struct backend_names *n)
{
	n->quiet = 1;
}

void backend_names_free(struct backend_names *n)
{
	if (!n)
		return;
	for (int i = 0; i < MOAT_BACKEND_NAMES_MAX; i++)
		entry_clear(&n->names[i]);
	free(n);
}

int backend_names_current(struct backend_names *n, const struct backend_target *t, const struct sockaddr *addr)
{
	uint64_t now = now_ms();

	if (!t->name[0])
		return t->addrlen > 0 && sockaddr_same_host((const struct sockaddr *)&t->addr, addr) &&
		       sockaddr_port(addr) == t->port;
	for (int i = 0; n && i < MOAT_BACKEND_NAMES_MAX; i++) {
		struct name_entry *e = &n->names[i];

		if (!e->name[0] || strcmp(e->name, t->name) != 0)
			continue;
		if (e->naddr == 0 || sockaddr_port(addr) != t->port || (now >= e->expires && e->pending == 0))
			return 0;
		e->used = 1;
		e->last_used = now;
		for (int k = 0; k < e->naddr; k++)
			if (sockaddr_same_host((const struct sockaddr *)&e->addrs[k], addr))
				return 1;
		return 0;
	}
	return 0;
}

/* ---- one connection's way through a list -------------------------------- */

static void dial_fire(evutil_socket_t fd, short what, void *arg)
{
	struct backend_dial *d = arg;
	backend_dial_cb cb = d->cb;

	d->cb = NULL;
	if (cb)
		cb(d->arg, d->out ? (const struct sockaddr *)&d->last : NULL, d->out ? sa_len(&d->last) : 0);
}

/* The current backend's addresses from its name's answer. */
static void take(struct backend_dial *d, const struct name_entry *e, const struct backend_target *t)
{
	d->naddr = e->naddr;
	d->ai = 0;
	for (int i = 0; i < e->naddr; i++) {
		d->addrs[i] = e->addrs[i];
		set_port(&d->addrs[i], t->port);
	}
	if (e->naddr == 0) {
		snprintf(d->unresolved, sizeof d->unresolved, "no address for backend %s:%d (%s)", t->name, t->port,
		         e->why);
		d->unresolved_failing = e->failing;
	}
}

/* On to the next address, or the next backend's (waiting for its name's
 * answer when there is none yet); the callback comes later. */
static void dial_step(struct backend_dial *d)
{
	for (;;) {
		const struct backend_target *t;
		struct name_entry *e;
		uint64_t now;

		if (d->ai < d->naddr) {
			d->last = d->addrs[d->ai++];
			d->out = 1;
			d->tried++;
			event_active(d->later, 0, 0);
			return;
		}
		if (d->ti == d->list.n) {
			d->out = 0;
			event_active(d->later, 0, 0);
			return;
		}
		d->cur = d->ti;
		t = &d->list.t[d->ti++];
		d->naddr = d->ai = 0;
		if (!t->name[0]) {
			d->addrs[0] = t->addr;
			d->naddr = 1;
			continue;
		}
		if (!(e = entry_of(d->n, t->name))) {
			snprintf(d->unresolved, sizeof d->unresolved, "no address for backend %s:%d (too many names)",
			         t->name, t->port);
			d->unresolved_failing = 1;
			continue;
		}
		now = now_ms();
		e->used = 1;
		e->last_used = now;
		/* an answer to go by: the latest, unless it said "none" and the
		 * next is on its way, or its time ran out */
		if (e->state != N_NEW && (e->pending ? e->state != N_NONE : now < e->expires)) {
			take(d, e, t);
			continue;
		}
		d->waiting = e;
		d->wnext = e->waiters;
		e->waiters = d;
		if (e->pending == 0 && !evtimer_pending(e->timer, NULL))
			lookup_start(e);
		return;
	}
}

/* The name's answer is in: on with each dial that waited for it. */
static void deliver(struct name_entry *e)
{
	while (e->waiters) {
		struct backend_dial *d = e->waiters;

		e->waiters = d->wnext;
		d->waiting = NULL;
		d->wnext = NULL;
		take(d, e, &d->list.t[d->cur]);
		dial_step(d);
	}
}

struct backend_dial *backend_dial_new(struct backend_names *n, const struct backend_list *l)
{
	struct backend_dial *d = calloc(1, sizeof *d);

	if (!d)
		return NULL;
	d->n = n;
	d->list = *l;
	d->cur = -1;
	d->later = event_new(n->base, -1, 0, dial_fire, d);
	if (!d->later) {
		free(d);
		return NULL;
	}
	return d;
}

int backend_dial_next(struct backend_dial *d, backend_dial_cb cb, void *arg)
{
	d->cb = cb;
	d->arg = arg;
	dial_step(d);
	return 0;
}

const struct backend_target *backend_dial_target(const struct backend_dial *d)
{
	return d->cur >= 0 ? &d->list.t[d->cur] : &d->list.t[0];
}

const char *backend_dial_unresolved(const struct backend_dial *d, int *dns_failed)
{
	*dns_failed = d->unresolved_failing;
	return d->tried == 0 && d->unresolved[0] ? d->unresolved : NULL;
}

/* The address handed out last in the table of addresses seen. */
static struct peer *peer_of(struct backend_dial *d)
{
	struct peer *p = NULL, *oldest = &d->n->peers[0];
	socklen_t len = sa_len(&d->last);

	for (int i = 0; i < MOAT_BACKEND_PEERS_MAX; i++) {
		struct peer *q = &d->n->peers[i];

		if (q->addr.ss_family && memcmp(&q->addr, &d->last, len) == 0) {
			p = q;
			break;
		}
		if (!q->addr.ss_family || (oldest->addr.ss_family && q->seen < oldest->seen))
			oldest = q;
	}
	if (!p) {
		p = oldest;
		memset(p, 0, sizeof *p);
		memcpy(&p->addr, &d->last, len);
	}
	p->seen = now_ms();
	return p;
}

/* "mx.example.com:25 at 192.0.2.1:25", "192.0.2.1:25" */
static void where(const struct backend_dial *d, char *out, size_t size)
{
	const struct backend_target *t = backend_dial_target(d);
	char addr[80];

	backend_addr_text((const struct sockaddr *)&d->last, addr, sizeof addr);
	if (t->name[0])
		snprintf(out, size, "%s:%d at %s", t->name, t->port, addr);
	else
		snprintf(out, size, "%s", addr);
}

void backend_dial_failed(struct backend_dial *d, const char *why)
{
	struct peer *p = d->tried ? peer_of(d) : NULL;
	char w[400];

	if (!p || p->down)
		return;
	p->down = 1;
	where(d, w, sizeof w);
	if (!d->n->quiet)
		log_warn("backend", "backend %s does not answer (%s)%s", w, why,
		         d->ai < d->naddr || d->ti < d->list.n ? ": trying the next" : "");
}

void backend_dial_answered(struct backend_dial *d)
{
	struct peer *p = d->tried ? peer_of(d) : NULL;
	char w[400];

	if (!p || !p->down)
		return;
	p->down = 0;
	where(d, w, sizeof w);
	if (!d->n->quiet)
		log_info("backend", "backend %s answers again", w);
}

void backend_dial_free(struct backend_dial *d)
{
	if (!d)
		return;
	if (d->waiting) {
		struct backend_dial **pp = &d->waiting->waiters;

		while (*pp && *pp != d)
			pp = &(*pp)->wnext;
		if (*pp)
			*pp = d->wnext;
	}
	event_free(d->later);
	free(d);
}
