/* dns.c - c-ares driven by the libevent loop, with the shared cache
 * (dns_cache.c) and coalescing of identical questions in flight.
 *
 * A question on the wire is a dns_query; each caller waiting on it is a
 * dns_req. A query leaves the in-flight table when it is answered or when its
 * deadline (timeout * tries) passes; c-ares cannot cancel a query, so an
 * abandoned one lives on until c-ares gives it back, and a late answer still
 * fills the cache.
 *
 * No callback runs inside dns_lookup, nor with c-ares on the stack: every
 * answer (from the wire, the cache, or an error known at once) puts its
 * waiters on the ready queue, and one event made active calls them back in
 * the order they became ready. */
#include <arpa/nameser.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ares.h>
#include <event2/event.h>

#include "checks/dns.h"
#include "proxy/lib/metrics.h"
#include "proxy/lib/text.h"
#include "checks/dns_cache.h"
#include "checks/dns_reply.h"
#include "proxy/lib/siphash.h"

#define INFLIGHT_BUCKETS 4096  /* power of two */

/* One result, shared by the requests it answers. */
struct dns_answer {
	int refs;                     /* -1: not counted (in its request's block, or static) */
	struct dns_result res;        /* name and abuf point into data */
	char data[];                  /* the name, NUL, then the reply */
};

enum req_state { REQ_WAITING, REQ_READY, REQ_RUNNING };

struct dns_req {
	struct dns *d;
	enum req_state state;
	struct dns_query *q;          /* REQ_WAITING: the query it waits on */
	struct dns_answer *ans;       /* REQ_READY: its answer; NULL for dns_defer */
	struct dns_req *prev, *next;  /* q->waiters or the ready queue, in order */
	dns_cb cb;
	void *arg;
	struct dns_tap *tap;          /* from a view: told of the answer first; NULL: none */
};

/* A view's tap, shared by its requests: it outlives the view while
 * requests hold it; fn is NULL once the view is gone. */
struct dns_tap {
	int refs;
	dns_tap_fn fn;
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
	uint64_t sent_ns;             /* clock_ns when it went: its latency (metrics) */
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
	struct event *ready_ev;       /* active while the ready queue holds requests */
	struct dns_req *ready, *ready_tail; /* answered, not yet called back, in order */
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
	int delivering;               /* on_ready is calling back: dns_free is forbidden */
	dns_clock_fn clock;
	void *clock_arg;
	struct dns_stats st;
	uint8_t key[16];              /* in-flight hash */
	struct dns *parent;           /* a view (dns_view_new): the resolver it asks */
	struct dns_tap *tap;          /* a view's tap */
	dns_source_fn source;         /* offline (dns_new_offline): where answers come from */
	void *source_arg;
};

static uint64_t monotonic_ms(void *arg)
{
	return clock_ms();
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

/* Only with no query in c-ares: ares_destroy would report the pending ones.
 * (No callback of ours runs with c-ares on the stack.) */
static void rebuild_channel(struct dns *d)
{
	ares_channel ch;

	if (d->nquery > 0 || channel_init(d, &ch) < 0)
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

static void list_append(struct dns_req **head, struct dns_req **tail, struct dns_req *r)
{
	r->prev = *tail;
	r->next = NULL;
	if (*tail)
		(*tail)->next = r;
	else
		*head = r;
	*tail = r;
}

static void list_unlink(struct dns_req **head, struct dns_req **tail, struct dns_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		*head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		*tail = r->prev;
	r->prev = r->next = NULL;
}

/* ---- answers and the ready queue ---- */

static size_t answer_size(const char *name, const unsigned char *abuf, int alen)
{
	return sizeof(struct dns_answer) + strlen(name) + 1 + (abuf && alen > 0 ? (size_t)alen : 0);
}

/* A copy of the result into a (answer_size bytes). */
static void answer_fill(struct dns_answer *a, const char *name, int type, enum dns_status st,
                        const unsigned char *abuf, int alen, uint32_t ttl)
{
	size_t nlen = strlen(name) + 1, blen = abuf && alen > 0 ? (size_t)alen : 0;

	a->refs = 0;
	memcpy(a->data, name, nlen);
	if (blen)
		memcpy(a->data + nlen, abuf, blen);
	a->res = (struct dns_result){ st, type, a->data, blen ? (unsigned char *)a->data + nlen : NULL,
	                              (int)blen, ttl };
}

/* A copy of the result, shared by the requests it answers; NULL without memory. */
static struct dns_answer *answer_new(const char *name, int type, enum dns_status st,
                                     const unsigned char *abuf, int alen, uint32_t ttl)
{
	struct dns_answer *a = malloc(answer_size(name, abuf, alen));

	if (a)
		answer_fill(a, name, type, st, abuf, alen, ttl);
	return a;
}

/* When not even a small answer can be allocated. */
static struct dns_answer no_memory = { -1, { DNS_TEMPFAIL, 0, "", NULL, 0, DNS_TEMPFAIL_TTL } };

static void tap_unref(struct dns_tap *t)
{
	if (t && --t->refs == 0)
		free(t);
}

static void answer_unref(struct dns_answer *a)
{
	if (a && a->refs > 0 && --a->refs == 0)
		free(a);
}

/* r joins the ready queue with a (NULL only for dns_defer). */
static void ready_push(struct dns_req *r, struct dns_answer *a)
{
	struct dns *d = r->d;

	if (a && a->refs >= 0)
		a->refs++;
	r->state = REQ_READY;
	r->ans = a;
	r->q = NULL;
	if (d->ready == NULL && !d->delivering)
		event_active(d->ready_ev, EV_READ, 0);
	list_append(&d->ready, &d->ready_tail, r);
}

/* r is answered at once; without memory for the answer, TEMPFAIL. */
static void answer_later(struct dns_req *r, const char *name, int type, enum dns_status st,
                         const unsigned char *abuf, int alen, uint32_t ttl)
{
	struct dns_answer *a = answer_new(name, type, st, abuf, alen, ttl);

	if (a == NULL && (abuf || st != DNS_TEMPFAIL))
		a = answer_new(name, type, DNS_TEMPFAIL, NULL, 0, DNS_TEMPFAIL_TTL);
	ready_push(r, a ? a : &no_memory);
}

/* The whole queue, in order, requests queued meanwhile included. Each is
 * unlinked before its callback, which may cancel the others or ask more. */
static void on_ready(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;
	struct dns_req *r;

	d->delivering = 1;
	while ((r = d->ready) != NULL) {
		list_unlink(&d->ready, &d->ready_tail, r);
		r->state = REQ_RUNNING;
		if (r->tap && r->tap->fn && r->ans)
			r->tap->fn(r->tap->arg, &r->ans->res);
		r->cb(r->arg, r->ans ? &r->ans->res : NULL);
		answer_unref(r->ans);
		tap_unref(r->tap);
		free(r);
	}
	d->delivering = 0;
}

/* ---- queries in flight and their waiters ---- */

static void waiter_add(struct dns_query *q, struct dns_req *r)
{
	r->state = REQ_WAITING;
	r->q = q;
	list_append(&q->waiters, &q->wtail, r);
}

/* The waiters of q, in the order they asked, get one shared copy of res. */
static void answer_waiters(struct dns_query *q, const struct dns_result *res)
{
	struct dns_answer *a;
	struct dns_req *r;

	if (q->waiters == NULL)
		return;
	a = answer_new(res->name, res->type, res->status, res->abuf, res->alen, res->ttl);
	if (a == NULL)
		a = answer_new(res->name, res->type, DNS_TEMPFAIL, NULL, 0, DNS_TEMPFAIL_TTL);
	while ((r = q->waiters) != NULL) {
		list_unlink(&q->waiters, &q->wtail, r);
		ready_push(r, a ? a : &no_memory);
	}
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
	metrics_dns_query(clock_ns() - q->sent_ns);
	inflight_unlink(q);
	cache_store(q->d, &res);
	answer_waiters(q, &res);
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
	if (!q->abandoned)
		metrics_dns_query(clock_ns() - q->sent_ns);
	inflight_unlink(q);
	/* a late failure must not overwrite what a newer query may have found */
	if (dns_cacheable(status) && !(q->abandoned && res.status == DNS_TEMPFAIL))
		cache_store(d, &res);
	answer_waiters(q, &res);
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

/* c-ares may answer at once (a bad name, no server to send to): the
 * waiters are then on the ready queue and q is freed here. */
static void query_send(struct dns_query *q)
{
	struct dns *d = q->d;

	q->in_send = 1;
	q->sent_ns = clock_ns();
	ares_query(d->ch, q->name, ns_c_in, q->type, on_answer, q);
	q->in_send = 0;
	if (!q->done) {
		d->st.queries++;
		evtimer_add(q->deadline, d->budget);
	} else {
		query_free(q);
	}
	update_timer(d);
}

/* ---- the interface ---- */

/* A hit is copied: the entry may be evicted or replaced before the answer
 * is delivered. The copy shares the request's block: one allocation per
 * hit, as when hits were delivered at once. NULL if not in the cache (or no
 * memory: ask the network instead). */
static struct dns_req *answer_from_cache(struct dns *d, const char *name, int type, dns_cb cb, void *arg)
{
	uint64_t now = d->clock(d->clock_arg);
	const struct dns_entry *e = d->cache ? dns_cache_get(d->cache, name, type, now) : NULL;
	struct dns_req *r;
	struct dns_answer *a;

	if (e == NULL || (r = malloc(sizeof *r + answer_size(name, e->abuf, e->alen))) == NULL)
		return NULL;
	memset(r, 0, sizeof *r);
	r->d = d;
	r->cb = cb;
	r->arg = arg;
	a = (struct dns_answer *)(r + 1);
	answer_fill(a, name, type, e->status, e->abuf, e->alen, (uint32_t)((e->expires - now + 999) / 1000));
	a->refs = -1;  /* freed with r */
	d->st.hits++;
	metrics_dns_cache(1);
	ready_push(r, a);
	return r;
}

static struct dns_req *req_new(struct dns *d, dns_cb cb, void *arg)
{
	struct dns_req *r = calloc(1, sizeof *r);

	if (r) {
		r->d = d;
		r->cb = cb;
		r->arg = arg;
	}
	return r;
}

/* Offline: the source answers, or TEMPFAIL for what it does not know. */
static void start_offline(struct dns *d, struct dns_req *r, const char *key, int type)
{
	struct dns_result res = {DNS_TEMPFAIL, type, key, NULL, 0, DNS_TEMPFAIL_TTL};

	if (d->source(d->source_arg, key, type, &res) < 0)
		res = (struct dns_result){DNS_TEMPFAIL, type, key, NULL, 0, DNS_TEMPFAIL_TTL};
	answer_later(r, key, type, res.status, res.abuf, res.alen, res.ttl);
}

static void start(struct dns *d, struct dns_req *r, const char *key, int type)
{
	struct dns_query *q;

	if (d->source) {
		start_offline(d, r, key, type);
		return;
	}
	if (d->edns_lost)
		rebuild_channel(d);
	if (d->nquery >= DNS_INFLIGHT_MAX || (q = query_new(d, key, type)) == NULL) {
		answer_later(r, key, type, DNS_TEMPFAIL, NULL, 0, DNS_TEMPFAIL_TTL);
		return;
	}
	waiter_add(q, r);
	query_send(q);
}

static struct dns_req *lookup(struct dns *d, const char *name, int type, int cached, dns_cb cb, void *arg)
{
	char key[DNS_NAME_MAX + 1];
	struct dns_query *q;
	struct dns_req *r;
	int ok = dns_normalise(name, key, sizeof key) == 0;

	if (d->parent) { /* a view: the parent's request, tapped */
		if ((r = lookup(d->parent, name, type, cached, cb, arg)) != NULL) {
			r->tap = d->tap;
			d->tap->refs++;
		}
		return r;
	}
	if (ok && cached && (r = answer_from_cache(d, key, type, cb, arg)) != NULL)
		return r;
	if (ok && d->cache)
		metrics_dns_cache(0);
	if ((r = req_new(d, cb, arg)) == NULL)
		return NULL;
	if (!ok) {
		answer_later(r, name ? name : "", type, DNS_NXDOMAIN, NULL, 0, DNS_NEG_TTL_DEFAULT);
	} else if ((q = *inflight_slot(d, key, type)) != NULL) {
		waiter_add(q, r);
		d->st.coalesced++;
	} else {
		start(d, r, key, type);
	}
	return r;
}

struct dns_req *dns_lookup(struct dns *d, const char *name, int type, dns_cb cb, void *arg)
{
	return lookup(d, name, type, 1, cb, arg);
}

struct dns_req *dns_refresh(struct dns *d, const char *name, int type, dns_cb cb, void *arg)
{
	return lookup(d, name, type, 0, cb, arg);
}

struct dns_req *dns_defer(struct dns *d, dns_cb cb, void *arg)
{
	struct dns_req *r = req_new(d->parent ? d->parent : d, cb, arg);

	if (r)
		ready_push(r, NULL);
	return r;
}

void dns_cancel(struct dns_req *r)
{
	if (r == NULL || r->state == REQ_RUNNING)
		return;  /* inside its own callback: on_ready frees it */
	if (r->state == REQ_WAITING)
		list_unlink(&r->q->waiters, &r->q->wtail, r);
	else
		list_unlink(&r->d->ready, &r->d->ready_tail, r);
	answer_unref(r->ans);
	tap_unref(r->tap);
	free(r);
}

struct dns *dns_view_new(struct dns *d, dns_tap_fn tap, void *arg)
{
	struct dns *v = calloc(1, sizeof *v);

	if (v && !(v->tap = malloc(sizeof *v->tap))) {
		free(v);
		return NULL;
	}
	if (v) {
		*v->tap = (struct dns_tap){1, tap, arg};
		v->parent = d->parent ? d->parent : d;
	}
	return v;
}

struct dns *dns_new_offline(struct event_base *base, dns_source_fn answer, void *arg)
{
	struct dns *d = calloc(1, sizeof *d);

	if (d == NULL)
		return NULL;
	d->base = base;
	d->clock = monotonic_ms;
	d->source = answer;
	d->source_arg = arg;
	d->inflight = calloc(INFLIGHT_BUCKETS, sizeof *d->inflight);
	d->ready_ev = event_new(base, -1, 0, on_ready, d);
	if (!d->inflight || !d->ready_ev) {
		dns_free(d);
		return NULL;
	}
	return d;
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
	siphash_random_key(d->key);
	d->have_lib = ares_library_init(ARES_LIB_INIT_ALL) == ARES_SUCCESS;
	d->inflight = calloc(INFLIGHT_BUCKETS, sizeof *d->inflight);
	d->timer = evtimer_new(base, on_timer, d);
	d->ready_ev = event_new(base, -1, 0, on_ready, d);
	d->budget = event_base_init_common_timeout(base, &tv);
	if (o->cache_max > 0)
		d->cache = dns_cache_new(o->cache_max, DNS_CACHE_BYTES_MAX);
	if (o->servers && *o->servers)
		d->servers = strdup(o->servers);
	if (!d->have_lib || !d->inflight || !d->timer || !d->ready_ev || !d->budget ||
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
	if (d->parent) { /* a view: its requests live on in the parent, untapped */
		d->tap->fn = NULL;
		tap_unref(d->tap);
		free(d);
		return;
	}
	/* from a callback, on_ready would go on with d freed: fail loudly */
	if (d->delivering)
		abort();
	d->freeing = 1;
	if (d->inflight)
		drop_waiters(d);
	while (d->ready)
		dns_cancel(d->ready);  /* answered, never to be called back */
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
	if (d->ready_ev)
		event_free(d->ready_ev);
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

	if (d->parent)
		d = d->parent;
	if (d->cache == NULL || dns_normalise(name, key, sizeof key) < 0)
		return -1;
	return dns_cache_put(d->cache, key, type, st, abuf, alen, ttl, d->clock(d->clock_arg));
}

void dns_get_stats(const struct dns *d, struct dns_stats *st)
{
	if (d->parent)
		d = d->parent;
	*st = d->st;
	st->entries = dns_cache_count(d->cache);
	st->evictions = dns_cache_evictions(d->cache);
}

void dns_set_clock_for_tests(struct dns *d, dns_clock_fn now_ms, void *arg)
{
	d->clock = now_ms ? now_ms : monotonic_ms;
	d->clock_arg = arg;
}
