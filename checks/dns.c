/* dns.c - c-ares driven by the libevent loop, with the shared cache
 * (dns_cache.c) and coalescing of identical questions in flight.
 *
 * A question on the wire is a dns_query; each caller waiting on it is a
 * dns_req. A query leaves the in-flight table when it is answered or when its
 * deadline (timeout * tries) passes; c-ares cannot cancel a query, so an
 * abandoned one lives on until c-ares gives it back, and a late answer still
 * fills the cache. */
#include <arpa/nameser.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ares.h>
#include <event2/event.h>

#include "checks/dns.h"
#include "checks/dns_cache.h"
#include "checks/dns_reply.h"

#define INFLIGHT_BUCKETS 4096  /* power of two */

struct dns_req {
	struct dns_query *q;          /* NULL once its callback is running */
	struct dns_req *prev, *next;  /* q->waiters, in the order they asked */
	dns_cb cb;
	void *arg;
};

struct dns_query {
	struct dns *d;
	struct dns_query *hnext;      /* in-flight chain, while linked */
	struct dns_req *waiters, *wtail;
	struct event *deadline;       /* TEMPFAIL for the waiters at timeout * tries */
	int type;
	unsigned linked : 1;          /* in the table: new lookups join it */
	unsigned in_send : 1;         /* inside ares_query, which may answer at once */
	unsigned retried : 1;         /* asked again after a FORMERR */
	unsigned done : 1;            /* c-ares has given it back */
	unsigned abandoned : 1;       /* the deadline answered its waiters */
	char name[DNS_NAME_MAX + 1];
};

struct dns_sock {                     /* one socket c-ares asked us to watch */
	struct dns_sock *next;
	ares_socket_t fd;
	struct event *ev;             /* NULL if libevent could not make one */
};

struct dns {
	struct event_base *base;
	ares_channel ch;
	struct event *timer;          /* c-ares' next timeout */
	const struct timeval *budget; /* common timeout: timeout_ms * tries */
	struct dns_sock *socks;
	struct dns_cache *cache;      /* NULL with cache_max 0 */
	struct dns_query **inflight;  /* INFLIGHT_BUCKETS chains of linked queries */
	size_t nquery;                /* live queries, abandoned ones included */
	int timeout_ms, tries;
	char *servers;                /* for a rebuilt channel; NULL = resolv.conf */
	int have_lib, have_ch;        /* what dns_free must undo */
	int edns_lost;                /* c-ares cleared ARES_FLAG_EDNS: rebuild when idle */
	int freeing;                  /* ares_destroy is reporting EDESTRUCTION */
	int depth;                    /* callbacks running: dns_free is forbidden */
	dns_clock_fn clock;
	void *clock_arg;
	struct dns_stats st;
	uint8_t key[16];              /* in-flight hash */
};

static uint64_t monotonic_ms(void *arg)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- c-ares on the loop ---- */

/* ares_timeout rounds down to whole milliseconds: waking on time, c-ares
 * finds nothing due yet and says 0 again, a busy loop of up to 1 ms (seen
 * at 650 turns). One millisecond late costs nothing. */
static void update_timer(struct dns *d)
{
	struct timeval tv, ms = { 0, 1000 };

	if (ares_timeout(d->ch, NULL, &tv) != NULL) {
		evutil_timeradd(&tv, &ms, &tv);
		evtimer_add(d->timer, &tv);
	} else {
		evtimer_del(d->timer);
	}
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;

	ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	update_timer(d);
}

static void on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;

	ares_process_fd(d->ch, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
	                (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	update_timer(d);
}

static struct dns_sock **sock_find(struct dns *d, ares_socket_t fd)
{
	struct dns_sock **pp = &d->socks;

	while (*pp && (*pp)->fd != fd)
		pp = &(*pp)->next;
	return pp;
}

static void sock_unwatch(struct dns_sock *s)
{
	if (s->ev)
		event_free(s->ev);  /* safe from inside its own callback */
	s->ev = NULL;
}

/* c-ares says which directions it waits for on fd; (0,0) = closing. The
 * event is made anew with exactly those: EV_WRITE on an idle UDP socket is
 * always ready and would spin the loop. */
static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *d = data;
	struct dns_sock **pp = sock_find(d, fd), *s = *pp;
	short what = (short)((readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));

	if (s)
		sock_unwatch(s);
	if (what == 0) {
		if (s) {
			*pp = s->next;
			free(s);
		}
		return;
	}
	if (s == NULL) {
		if ((s = calloc(1, sizeof *s)) == NULL)
			return;  /* the deadline still ends its queries */
		s->fd = fd;
		s->next = d->socks;
		d->socks = s;
	}
	s->ev = event_new(d->base, fd, what | EV_PERSIST, on_socket, d);
	if (s->ev && event_add(s->ev, NULL) < 0)
		sock_unwatch(s);
}

static int channel_init(struct dns *d, ares_channel *ch)
{
	struct ares_options ao;
	int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS |
	           ARES_OPT_TRIES | ARES_OPT_EDNSPSZ;

	memset(&ao, 0, sizeof ao);
	ao.sock_state_cb = on_sock_state;
	ao.sock_state_cb_data = d;
	/* NOCHECKRESP: a SERVFAIL is reported as such, not retried into
	 * ECONNREFUSED. EDNS: 4096-bit DKIM keys fit in one UDP answer. */
	ao.flags = ARES_FLAG_NOCHECKRESP | ARES_FLAG_EDNS;
	ao.timeout = d->timeout_ms;
	ao.tries = d->tries;
	ao.ednspsz = DNS_EDNS_PSZ;
	if (ares_init_options(ch, &ao, mask) != ARES_SUCCESS)
		return -1;
	if (d->servers && ares_set_servers_ports_csv(*ch, d->servers) != ARES_SUCCESS) {
		ares_destroy(*ch);
		return -1;
	}
	return 0;
}

/* c-ares 1.18 answers a FORMERR to an EDNS query by clearing ARES_FLAG_EDNS
 * on the whole channel, for good: every large answer (DKIM keys) would then
 * cost a truncated UDP reply and a TCP retry. A reply without an OPT RR is
 * the hint; the flags tell. */
static void check_edns(struct dns *d, const unsigned char *abuf, int alen)
{
	struct dns_reply rp;
	struct ares_options ao;
	int mask;

	if (d->edns_lost || abuf == NULL)
		return;
	if (dns_reply_parse(abuf, alen, 0, &rp) == 0 && rp.has_opt)
		return;
	if (ares_save_options(d->ch, &ao, &mask) != ARES_SUCCESS)
		return;
	d->edns_lost = !(ao.flags & ARES_FLAG_EDNS);
	ares_destroy_options(&ao);
}

/* Only with no query in c-ares and no callback on the stack: ares_destroy
 * would report the pending ones, or pull the channel from under c-ares. */
static void rebuild_channel(struct dns *d)
{
	ares_channel ch;

	if (d->nquery > 0 || d->depth > 0 || channel_init(d, &ch) < 0)
		return;
	ares_destroy(d->ch);
	d->ch = ch;
	d->edns_lost = 0;
	d->st.edns_resets++;
	update_timer(d);
}

/* ---- queries in flight and their waiters ---- */

static struct dns_query **inflight_slot(struct dns *d, const char *name, int type)
{
	uint64_t h = dns_key_hash(d->key, name, type);
	struct dns_query **pp = &d->inflight[h & (INFLIGHT_BUCKETS - 1)];

	while (*pp && ((*pp)->type != type || strcmp((*pp)->name, name) != 0))
		pp = &(*pp)->hnext;
	return pp;
}

static void inflight_unlink(struct dns_query *q)
{
	struct dns_query **pp;

	if (!q->linked)
		return;
	pp = inflight_slot(q->d, q->name, q->type);
	*pp = q->hnext;
	q->linked = 0;
}

static struct dns_req *waiter_add(struct dns_query *q, dns_cb cb, void *arg)
{
	struct dns_req *r = calloc(1, sizeof *r);

	if (r == NULL)
		return NULL;
	r->q = q;
	r->cb = cb;
	r->arg = arg;
	r->prev = q->wtail;
	if (q->wtail)
		q->wtail->next = r;
	else
		q->waiters = r;
	q->wtail = r;
	return r;
}

static void waiter_unlink(struct dns_req *r)
{
	struct dns_query *q = r->q;

	if (r->prev)
		r->prev->next = r->next;
	else
		q->waiters = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		q->wtail = r->prev;
	r->q = NULL;
	r->prev = r->next = NULL;
}

/* Each waiter is unlinked before its callback, which may cancel the others. */
static void deliver(struct dns_query *q, const struct dns_result *res)
{
	struct dns *d = q->d;
	struct dns_req *r;

	d->depth++;
	while ((r = q->waiters) != NULL) {
		waiter_unlink(r);
		r->cb(r->arg, res);
		free(r);
	}
	d->depth--;
}

static void cache_store(struct dns *d, const struct dns_result *res)
{
	if (d->cache)
		dns_cache_put(d->cache, res->name, res->type, res->status, res->abuf, res->alen,
		              res->ttl, d->clock(d->clock_arg));
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;
	struct dns_result res = { DNS_TEMPFAIL, q->type, q->name, NULL, 0, DNS_TEMPFAIL_TTL };

	q->abandoned = 1;
	inflight_unlink(q);
	cache_store(q->d, &res);
	deliver(q, &res);
}

static void query_free(struct dns_query *q)
{
	event_free(q->deadline);
	q->d->nquery--;
	free(q);
}

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_query *q = arg;
	struct dns *d = q->d;
	struct dns_result res = { 0, q->type, q->name, abuf, alen, 0 };

	q->done = 1;
	if (d->freeing) {  /* EDESTRUCTION from dns_free: nobody is told */
		query_free(q);
		return;
	}
	check_edns(d, abuf, alen);
	/* c-ares retries without EDNS only the first query a FORMERR server
	 * refuses, then clears EDNS on the channel: the others in flight come
	 * back FORMERR. Ask once more, now without EDNS. */
	if (status == ARES_EFORMERR && !q->retried && !q->abandoned) {
		q->retried = 1;
		q->done = 0;
		ares_query(d->ch, q->name, ns_c_in, q->type, on_answer, q);
		return;
	}
	res.status = dns_classify(status, abuf, alen, q->type, &res.ttl);
	/* unlinked first, so a callback that asks again hits the cache */
	inflight_unlink(q);
	/* a late failure must not overwrite what a newer query may have found */
	if (dns_cacheable(status) && !(q->abandoned && res.status == DNS_TEMPFAIL))
		cache_store(d, &res);
	deliver(q, &res);
	if (!q->in_send)
		query_free(q);
}

static struct dns_query *query_new(struct dns *d, const char *name, int type)
{
	struct dns_query *q = calloc(1, sizeof *q);
	struct dns_query **pp;

	if (q == NULL)
		return NULL;
	q->deadline = evtimer_new(d->base, on_deadline, q);
	if (q->deadline == NULL) {
		free(q);
		return NULL;
	}
	q->d = d;
	q->type = type;
	memcpy(q->name, name, strlen(name) + 1);
	pp = inflight_slot(d, name, type);
	q->hnext = *pp;
	*pp = q;
	q->linked = 1;
	d->nquery++;
	return q;
}

/* 1 if the query is on its way, 0 if c-ares answered at once (a bad name,
 * no server to send to): its waiter has been called and q is gone. */
static int query_send(struct dns_query *q)
{
	struct dns *d = q->d;
	int pending;

	q->in_send = 1;
	d->depth++;
	ares_query(d->ch, q->name, ns_c_in, q->type, on_answer, q);
	d->depth--;
	q->in_send = 0;
	pending = !q->done;
	if (pending) {
		d->st.queries++;
		evtimer_add(q->deadline, d->budget);
	} else {
		query_free(q);
	}
	update_timer(d);
	return pending;
}

/* ---- the interface ---- */

static void answer_now(struct dns *d, const char *name, int type, enum dns_status st,
                       uint32_t ttl, dns_cb cb, void *arg)
{
	struct dns_result res = { st, type, name, NULL, 0, ttl };

	d->depth++;
	cb(arg, &res);
	d->depth--;
}

/* A hit is delivered from a copy: the callback may look up more names and
 * so evict or replace the entry it is reading. */
static int answer_from_cache(struct dns *d, const char *name, int type, dns_cb cb, void *arg)
{
	uint64_t now = d->clock(d->clock_arg);
	const struct dns_entry *e = d->cache ? dns_cache_get(d->cache, name, type, now) : NULL;
	struct dns_result res = { 0, type, name, NULL, 0, 0 };
	unsigned char *copy = NULL;

	if (e == NULL)
		return 0;
	if (e->abuf && (copy = malloc((size_t)e->alen)) == NULL)
		return 0;  /* ask the network instead */
	if (copy)
		memcpy(copy, e->abuf, (size_t)e->alen);
	res.status = e->status;
	res.abuf = copy;
	res.alen = copy ? e->alen : 0;
	res.ttl = (uint32_t)((e->expires - now + 999) / 1000);
	d->st.hits++;
	d->depth++;
	cb(arg, &res);
	d->depth--;
	free(copy);
	return 1;
}

static struct dns_req *join(struct dns *d, struct dns_query *q, dns_cb cb, void *arg)
{
	struct dns_req *r = waiter_add(q, cb, arg);

	if (r == NULL) {
		answer_now(d, q->name, q->type, DNS_TEMPFAIL, DNS_TEMPFAIL_TTL, cb, arg);
		return NULL;
	}
	d->st.coalesced++;
	return r;
}

static struct dns_req *start(struct dns *d, const char *key, int type, dns_cb cb, void *arg)
{
	struct dns_query *q = NULL;
	struct dns_req *r = NULL;

	if (d->edns_lost)
		rebuild_channel(d);
	if (d->nquery < DNS_INFLIGHT_MAX && (q = query_new(d, key, type)) != NULL &&
	    (r = waiter_add(q, cb, arg)) != NULL)
		return query_send(q) ? r : NULL;
	if (q) {
		inflight_unlink(q);
		query_free(q);
	}
	answer_now(d, key, type, DNS_TEMPFAIL, DNS_TEMPFAIL_TTL, cb, arg);
	return NULL;
}

struct dns_req *dns_lookup(struct dns *d, const char *name, int type, dns_cb cb, void *arg)
{
	char key[DNS_NAME_MAX + 1];
	struct dns_query *q;

	if (dns_normalise(name, key, sizeof key) < 0) {
		answer_now(d, name ? name : "", type, DNS_NXDOMAIN, DNS_NEG_TTL_DEFAULT, cb, arg);
		return NULL;
	}
	if (answer_from_cache(d, key, type, cb, arg))
		return NULL;
	if ((q = *inflight_slot(d, key, type)) != NULL)
		return join(d, q, cb, arg);
	return start(d, key, type, cb, arg);
}

void dns_cancel(struct dns_req *r)
{
	if (r == NULL || r->q == NULL)
		return;  /* NULL q: inside its own callback, deliver() frees it */
	waiter_unlink(r);
	free(r);
}

struct dns *dns_new(struct event_base *base, const struct dns_options *o)
{
	static const struct dns_options def = { NULL, DNS_TIMEOUT_MS_DEFAULT, DNS_TRIES_DEFAULT,
	                                        DNS_CACHE_MAX_DEFAULT };
	struct dns *d = calloc(1, sizeof *d);
	struct timeval tv;
	long long budget;

	if (d == NULL)
		return NULL;
	if (o == NULL)
		o = &def;
	d->base = base;
	d->clock = monotonic_ms;
	d->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : DNS_TIMEOUT_MS_DEFAULT;
	d->tries = o->tries > 0 ? o->tries : DNS_TRIES_DEFAULT;
	budget = (long long)d->timeout_ms * d->tries;
	tv.tv_sec = (time_t)(budget / 1000);
	tv.tv_usec = (suseconds_t)(budget % 1000 * 1000);
	dns_random_key(d->key);
	d->have_lib = ares_library_init(ARES_LIB_INIT_ALL) == ARES_SUCCESS;
	d->inflight = calloc(INFLIGHT_BUCKETS, sizeof *d->inflight);
	d->timer = evtimer_new(base, on_timer, d);
	d->budget = event_base_init_common_timeout(base, &tv);
	if (o->cache_max > 0)
		d->cache = dns_cache_new(o->cache_max, DNS_CACHE_BYTES_MAX);
	if (o->servers && *o->servers)
		d->servers = strdup(o->servers);
	if (!d->have_lib || !d->inflight || !d->timer || !d->budget ||
	    (o->cache_max > 0 && !d->cache) || (o->servers && *o->servers && !d->servers) ||
	    channel_init(d, &d->ch) < 0) {
		dns_free(d);
		return NULL;
	}
	d->have_ch = 1;
	return d;
}

static void drop_waiters(struct dns *d)
{
	for (size_t i = 0; i < INFLIGHT_BUCKETS; i++)
		for (struct dns_query *q = d->inflight[i]; q; q = q->hnext)
			while (q->waiters)
				dns_cancel(q->waiters);
}

void dns_free(struct dns *d)
{
	if (d == NULL)
		return;
	/* from a callback, c-ares may be on the stack: destroying its channel
	 * would be a use after free, so fail loudly */
	if (d->depth > 0)
		abort();
	d->freeing = 1;
	if (d->inflight)
		drop_waiters(d);
	if (d->have_ch)
		ares_destroy(d->ch);  /* frees every query through on_answer */
	while (d->socks) {
		struct dns_sock *s = d->socks;

		d->socks = s->next;
		sock_unwatch(s);
		free(s);
	}
	if (d->timer)
		event_free(d->timer);
	free(d->inflight);
	free(d->servers);
	dns_cache_free(d->cache);
	if (d->have_lib)
		ares_library_cleanup();
	free(d);
}

int dns_inject(struct dns *d, const char *name, int type, enum dns_status st,
               const unsigned char *abuf, int alen, uint32_t ttl)
{
	char key[DNS_NAME_MAX + 1];

	if (d->cache == NULL || dns_normalise(name, key, sizeof key) < 0)
		return -1;
	return dns_cache_put(d->cache, key, type, st, abuf, alen, ttl, d->clock(d->clock_arg));
}

void dns_get_stats(const struct dns *d, struct dns_stats *st)
{
	*st = d->st;
	st->entries = dns_cache_count(d->cache);
	st->evictions = dns_cache_evictions(d->cache);
}

void dns_set_clock_for_tests(struct dns *d, dns_clock_fn now_ms, void *arg)
{
	d->clock = now_ms ? now_ms : monotonic_ms;
	d->clock_arg = arg;
}
