/* test_dns.c - dns.c: real c-ares traffic against a tiny DNS server on
 * loopback, in the same loop: answers and their TTLs (RFC 2308 negative ones),
 * failures, the cache in use, coalescing, cancel and the callback rule. The
 * pure parts (names, parsing, the cache alone) are in test_dns_reply.c.
 * Nothing sleeps: the loop runs until the callback fired, with a deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ares.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "proxy/lib/text.h"
#include "checks/dns.h"
#include "checks/dns_cache.h"
#include "checks/dns_reply.h"
#define DNSFIX_PACKETS_ONLY
#include "tests/unit/dnsfix.h"

/* ---- a tiny DNS server on loopback, UDP and TCP on one port ---- */

struct query {
	unsigned id, flags, qtype;
	char name[256];   /* as it came on the wire */
	int opt;          /* carried an EDNS OPT RR */
	unsigned opt_size;
	int tcp;
};

struct delayed {
	struct delayed *next;
	struct server *s;
	struct event *ev;
	struct sockaddr_storage to;
	socklen_t tolen;
	struct pkt p;
};

struct server {
	struct event_base *base;
	evutil_socket_t fd;
	struct event *ev;
	struct evconnlistener *lis;
	struct bufferevent *bevs[16];
	struct delayed *delayed;
	int port;
	int queries, udp, tcp, with_opt, without_opt, replies;
	unsigned opt_size;  /* of the last OPT seen */
	int late_seen;      /* late.test queries so far */
	char last_name[256];
};

static int parse_query(const unsigned char *b, size_t n, struct query *q)
{
	size_t o = 12, w = 0;

	memset(q, 0, sizeof *q);
	if (n < 12)
		return -1;
	q->id = (unsigned)(b[0] << 8 | b[1]);
	q->flags = (unsigned)(b[2] << 8 | b[3]);
	while (o < n && b[o] != 0) {
		size_t l = b[o];

		if (l > 63 || o + 1 + l > n || w + l + 2 > sizeof q->name)
			return -1;
		if (w)
			q->name[w++] = '.';
		memcpy(q->name + w, b + o + 1, l);
		w += l;
		o += 1 + l;
	}
	if (o + 5 > n)
		return -1;
	q->qtype = (unsigned)(b[o + 1] << 8 | b[o + 2]);
	o += 5;
	/* additional section: c-ares sends at most the OPT RR */
	if ((b[10] << 8 | b[11]) > 0 && o + 5 <= n && b[o] == 0 &&
	    (b[o + 1] << 8 | b[o + 2]) == ns_t_opt) {
		q->opt = 1;
		q->opt_size = (unsigned)(b[o + 3] << 8 | b[o + 4]);
	}
	return 0;
}

static unsigned reply_flags(const struct query *q, unsigned rcode)
{
	return F_QR | F_RA | (q->flags & F_RD) | rcode;
}

/* The zone. 1: reply now, 0: stay silent, 2: reply later. */
static int zone(struct server *s, const struct query *q, struct pkt *p)
{
	static const char *const spf[] = { "v=spf1 ip4:192.0.2.0/24 ", "-all", NULL };
	static const char *const hello[] = { "hello", NULL };
	const char *n = q->name;
	size_t nl = strlen(n);

	if (strcmp(n, "tcsilent.test") == 0) {
		/* truncated over UDP, never answered over TCP */
		pkt_begin(p, q->id, reply_flags(q, ns_r_noerror) | F_TC, n, q->qtype);
		return q->tcp ? 0 : 1;
	}
	if (nl >= 11 && strcmp(n + nl - 11, "silent.test") == 0)
		return 0;
	if (strcmp(n, "formerr.test") == 0 && q->opt) {
		/* a server that does not know EDNS (RFC 6891 section 7) */
		pkt_begin(p, q->id, reply_flags(q, ns_r_formerr), n, q->qtype);
		return 1;
	}
	pkt_begin(p, q->id, reply_flags(q, ns_r_noerror), n, q->qtype);
	if (strcmp(n, "a.test") == 0 && q->qtype == ns_t_a) {
		add_a(p, "192.0.2.1", 300);
		add_a(p, "192.0.2.2", 120);
	} else if (strcmp(n, "mx.test") == 0 && q->qtype == ns_t_mx) {
		struct pkt r = { .n = 0 };

		put16(&r, 10);
		put_name(&r, "mail.test");
		add_rr(p, SEC_AN, NULL, ns_t_mx, 600, r.b, r.n);
	} else if (strcmp(n, "txt.test") == 0) {
		add_txt(p, 60, spf);
		add_txt(p, 90, hello);
	} else if (strcmp(n, "big.test") == 0 || strcmp(n, "tc.test") == 0) {
		static char chunk[251];
		const char *const parts[] = { chunk, chunk, chunk, chunk, NULL };

		memset(chunk, 'k', 250);
		add_txt(p, 300, parts);
	} else if (strcmp(n, "nodata.test") == 0) {
		add_soa(p, 20, 3600);
	} else if (strcmp(n, "cname.test") == 0) {
		struct pkt r = { .n = 0 };

		put_name(&r, "gone.test");
		add_rr(p, SEC_AN, NULL, ns_t_cname, 50, r.b, r.n);
		add_soa(p, 100, 100);
	} else if (strcmp(n, "referral.test") == 0) {
		struct pkt r = { .n = 0 };

		put_name(&r, "ns.elsewhere");
		add_rr(p, SEC_NS, NULL, ns_t_ns, 3600, r.b, r.n);
	} else if (strcmp(n, "formerr.test") == 0) {
		add_a(p, "192.0.2.8", 300);
	} else if (strcmp(n, "zero.test") == 0) {
		add_a(p, "192.0.2.9", 0);
	} else if (strcmp(n, "long.test") == 0) {
		add_a(p, "192.0.2.9", 864000);
	} else if (strcmp(n, "servfail.test") == 0) {
		pkt_begin(p, q->id, reply_flags(q, ns_r_servfail), n, q->qtype);
	} else if (strcmp(n, "refused.test") == 0) {
		pkt_begin(p, q->id, reply_flags(q, ns_r_refused), n, q->qtype);
	} else if (strcmp(n, "late.test") == 0) {
		if (s->late_seen++ == 0)
			return 0;  /* the first try times out, the second is answered late */
		add_a(p, "192.0.2.7", 300);
		return 2;
	} else if (strcmp(n, "nosoa.test") == 0) {
		pkt_begin(p, q->id, reply_flags(q, ns_r_nxdomain), n, q->qtype);
	} else {
		pkt_begin(p, q->id, reply_flags(q, ns_r_nxdomain) | F_AA, n, q->qtype);
		add_soa(p, 900, 30);
	}
	return 1;
}

static void note_query(struct server *s, const struct query *q)
{
	s->queries++;
	if (q->tcp)
		s->tcp++;
	else
		s->udp++;
	if (q->opt) {
		s->with_opt++;
		s->opt_size = q->opt_size;
	} else {
		s->without_opt++;
	}
	snprintf(s->last_name, sizeof s->last_name, "%s", q->name);
}

/* Over UDP an answer that does not fit is cut to the question, with TC. */
static void truncate_udp(const struct query *q, struct pkt *p)
{
	size_t room = q->opt ? q->opt_size : 512;

	if (p->n <= room && strcmp(q->name, "tc.test") != 0)
		return;
	pkt_begin(p, q->id, reply_flags(q, ns_r_noerror) | F_TC, q->name, q->qtype);
}

/* RFC 6891 6.1.1: a responder that understands EDNS answers with an OPT RR. */
static void add_opt(const struct query *q, struct pkt *p)
{
	unsigned c = (unsigned)(p->b[SEC_AR] << 8 | p->b[SEC_AR + 1]) + 1;

	if (!q->opt || (p->b[3] & 0x0F) == ns_r_formerr)
		return;
	put8(p, 0);
	put16(p, ns_t_opt);
	put16(p, 1232);
	put32(p, 0);
	put16(p, 0);
	p->b[SEC_AR] = (unsigned char)(c >> 8);
	p->b[SEC_AR + 1] = (unsigned char)c;
}

static void send_delayed(evutil_socket_t fd, short what, void *arg)
{
	struct delayed *dl = arg;

	sendto(dl->s->fd, dl->p.b, dl->p.n, 0, (struct sockaddr *)&dl->to, dl->tolen);
	dl->s->replies++;
}

static void delay_reply(struct server *s, const struct pkt *p, const struct sockaddr_storage *to,
                        socklen_t tolen)
{
	struct delayed *dl = calloc(1, sizeof *dl);
	struct timeval tv = { 0, 300 * 1000 };

	assert_non_null(dl);
	dl->s = s;
	dl->p = *p;
	dl->to = *to;
	dl->tolen = tolen;
	dl->ev = evtimer_new(s->base, send_delayed, dl);
	evtimer_add(dl->ev, &tv);
	dl->next = s->delayed;
	s->delayed = dl;
}

static void server_udp(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	unsigned char buf[4096];
	struct sockaddr_storage from;
	socklen_t fl = sizeof from;
	ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
	struct query q;
	struct pkt p;
	int how;

	if (n <= 0 || parse_query(buf, (size_t)n, &q) < 0)
		return;
	note_query(s, &q);
	how = zone(s, &q, &p);
	if (how == 0)
		return;
	truncate_udp(&q, &p);
	add_opt(&q, &p);
	if (how == 2) {
		delay_reply(s, &p, &from, fl);
		return;
	}
	sendto(fd, p.b, p.n, 0, (struct sockaddr *)&from, fl);
	s->replies++;
}

static void server_tcp_read(struct bufferevent *bev, void *arg)
{
	struct server *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	unsigned char len2[2], buf[4096];
	struct query q;
	struct pkt p;

	while (evbuffer_copyout(in, len2, 2) == 2) {
		size_t l = (size_t)(len2[0] << 8 | len2[1]);

		if (evbuffer_get_length(in) < 2 + l)
			return;
		evbuffer_drain(in, 2);
		if (l > sizeof buf || evbuffer_remove(in, buf, l) != (int)l ||
		    parse_query(buf, l, &q) < 0)
			return;
		q.tcp = 1;
		note_query(s, &q);
		if (zone(s, &q, &p) == 0)
			continue;
		add_opt(&q, &p);
		len2[0] = (unsigned char)(p.n >> 8);
		len2[1] = (unsigned char)p.n;
		bufferevent_write(bev, len2, 2);
		bufferevent_write(bev, p.b, p.n);
		s->replies++;
	}
}

static void server_forget(struct server *s, struct bufferevent *bev)
{
	for (size_t i = 0; i < sizeof s->bevs / sizeof s->bevs[0]; i++)
		if (s->bevs[i] == bev)
			s->bevs[i] = NULL;
	bufferevent_free(bev);
}

static void server_tcp_event(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		server_forget(arg, bev);
}

static void server_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                          int salen, void *arg)
{
	struct server *s = arg;
	struct bufferevent *bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);

	for (size_t i = 0; i < sizeof s->bevs / sizeof s->bevs[0]; i++)
		if (s->bevs[i] == NULL) {
			s->bevs[i] = bev;
			bufferevent_setcb(bev, server_tcp_read, NULL, server_tcp_event, s);
			bufferevent_enable(bev, EV_READ);
			return;
		}
	bufferevent_free(bev);
}

static void server_start(struct server *s, struct event_base *base)
{
	memset(s, 0, sizeof *s);
	s->base = base;
	/* TCP must get the UDP port's number too: retry if it is taken */
	for (int i = 0; i < 20 && s->lis == NULL; i++) {
		struct sockaddr_in sa = { .sin_family = AF_INET };

		if (s->ev) {
			event_free(s->ev);
			close(s->fd);
		}
		s->fd = udp_socket(&s->port);
		assert_true(s->fd >= 0);
		evutil_make_socket_nonblocking(s->fd);
		s->ev = event_new(base, s->fd, EV_READ | EV_PERSIST, server_udp, s);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sa.sin_port = htons((uint16_t)s->port);
		s->lis = evconnlistener_new_bind(base, server_accept, s, LEV_OPT_CLOSE_ON_FREE, 16,
		                                 (struct sockaddr *)&sa, sizeof sa);
	}
	assert_non_null(s->lis);
	event_add(s->ev, NULL);
}

static void server_stop(struct server *s)
{
	for (size_t i = 0; i < sizeof s->bevs / sizeof s->bevs[0]; i++)
		if (s->bevs[i])
			bufferevent_free(s->bevs[i]);
	while (s->delayed) {
		struct delayed *dl = s->delayed;

		s->delayed = dl->next;
		event_free(dl->ev);
		free(dl);
	}
	evconnlistener_free(s->lis);
	event_free(s->ev);
	close(s->fd);
}

/* ---- the client side: a loop, the server, a dns, a fake cache clock ---- */

struct fx {
	struct event_base *base;
	struct event *ticker;  /* wakes EVLOOP_ONCE so deadlines are checked */
	struct server srv;
	struct dns *dns;
	uint64_t now;          /* the cache's clock, ms */
};

static uint64_t fake_clock(void *arg)
{
	return ((struct fx *)arg)->now;
}

static void fx_start_with(struct fx *f, const char *servers, int timeout_ms, int tries,
                          size_t cache_max)
{
	struct dns_options o = { servers, timeout_ms, tries, cache_max };
	struct timeval tv = { 0, 20 * 1000 };

	f->dns = dns_new(f->base, &o);
	assert_non_null(f->dns);
	f->now = 1000000;
	dns_set_clock_for_tests(f->dns, fake_clock, f);
	f->ticker = event_new(f->base, -1, EV_PERSIST, tick, NULL);
	event_add(f->ticker, &tv);
}

static void fx_start(struct fx *f, int timeout_ms, int tries, size_t cache_max)
{
	char servers[64];

	memset(f, 0, sizeof *f);
	f->base = event_base_new();
	assert_non_null(f->base);
	server_start(&f->srv, f->base);
	snprintf(servers, sizeof servers, "127.0.0.1:%d", f->srv.port);
	fx_start_with(f, servers, timeout_ms, tries, cache_max);
}

static void fx_stop(struct fx *f)
{
	dns_free(f->dns);
	server_stop(&f->srv);
	event_free(f->ticker);
	event_base_free(f->base);
}

struct got {
	int calls;
	enum dns_status status;
	int type;
	uint32_t ttl;
	char name[300];
	unsigned char abuf[8192];
	int alen;                 /* -1: abuf was NULL */
	uint64_t at;              /* real ms of the call */
	struct dns_req *cancel;   /* cancelled from inside the callback */
	struct fx *relookup;      /* ask again for the same name from inside */
	struct got *inner;
	struct dns_req *inner_req;
	int inner_calls_then;     /* inner->calls when the inner dns_lookup returned */
};

static void record(void *arg, const struct dns_result *r)
{
	struct got *g = arg;

	g->calls++;
	g->status = r->status;
	g->type = r->type;
	g->ttl = r->ttl;
	g->at = clock_ms();
	snprintf(g->name, sizeof g->name, "%s", r->name);
	g->alen = r->abuf ? r->alen : -1;
	if (r->abuf && r->alen > 0 && (size_t)r->alen <= sizeof g->abuf)
		memcpy(g->abuf, r->abuf, (size_t)r->alen);
	if (g->cancel)
		dns_cancel(g->cancel);
	if (g->relookup) {
		g->inner_req = dns_lookup(g->relookup->dns, r->name, r->type, record, g->inner);
		g->inner_calls_then = g->inner->calls;
	}
}

/* Run the loop until done(arg) or ms pass. Returns the loop turns taken, or
 * -1 at the deadline. */
static int run_until(struct fx *f, int (*done)(void *), void *arg, int ms)
{
	uint64_t end = clock_ms() + (uint64_t)ms;
	int turns = 0;

	while (!done(arg)) {
		if (clock_ms() >= end)
			return -1;
		event_base_loop(f->base, EVLOOP_ONCE);
		turns++;
	}
	return turns;
}

static int called(void *arg)
{
	return ((struct got *)arg)->calls > 0;
}

static int wait_call(struct fx *f, struct got *g)
{
	return run_until(f, called, g, 5000);
}

/* One turn of the loop (with an answer ready, it does not wait): what was
 * ready is delivered. */
static void turn(struct fx *f)
{
	event_base_loop(f->base, EVLOOP_ONCE);
}

/* Turns without waiting until nothing is active: nothing more may happen. */
static void idle(struct fx *f)
{
	event_base_loop(f->base, EVLOOP_NONBLOCK);
}

static struct dns_stats stats(struct fx *f)
{
	struct dns_stats st;

	dns_get_stats(f->dns, &st);
	return st;
}

/* ---- c-ares against the loopback server ---- */

static void test_net_a(void **state)
{
	struct fx f;
	struct got g = { 0 };
	struct ares_addrttl at[4];
	int nat = 4;

	fx_start(&f, 1000, 2, 100);
	assert_non_null(dns_lookup(f.dns, "a.test", ns_t_a, record, &g));
	assert_int_equal(g.calls, 0);
	assert_true(wait_call(&f, &g) >= 0);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.type, ns_t_a);
	assert_string_equal(g.name, "a.test");
	assert_int_equal(g.ttl, 120);
	assert_int_equal(ares_parse_a_reply(g.abuf, g.alen, NULL, at, &nat), ARES_SUCCESS);
	assert_int_equal(nat, 2);
	assert_int_equal(at[1].ttl, 120);
	/* EDNS with a 1232-byte UDP size */
	assert_int_equal(f.srv.queries, 1);
	assert_int_equal(f.srv.with_opt, 1);
	assert_int_equal(f.srv.opt_size, DNS_EDNS_PSZ);
	assert_int_equal(stats(&f).queries, 1);
	assert_int_equal(stats(&f).entries, 1);
	fx_stop(&f);
}

static void test_net_mx(void **state)
{
	struct fx f;
	struct got g = { 0 };
	struct ares_mx_reply *mx = NULL;

	fx_start(&f, 1000, 2, 100);
	dns_lookup(f.dns, "mx.test", ns_t_mx, record, &g);
	assert_true(wait_call(&f, &g) >= 0);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.ttl, 600);
	assert_int_equal(ares_parse_mx_reply(g.abuf, g.alen, &mx), ARES_SUCCESS);
	assert_int_equal(mx->priority, 10);
	assert_string_equal(mx->host, "mail.test");
	assert_null(mx->next);
	ares_free_data(mx);
	fx_stop(&f);
}

/* TXT: one node per string; a record is the strings up to the next record_start. */
static void test_net_txt_strings(void **state)
{
	struct fx f;
	struct got g = { 0 };
	struct ares_txt_ext *txt = NULL, *t;
	char rec[2][128] = { "", "" };
	size_t used[2] = { 0, 0 };
	int nrec = -1;

	fx_start(&f, 1000, 2, 100);
	dns_lookup(f.dns, "txt.test", ns_t_txt, record, &g);
	assert_true(wait_call(&f, &g) >= 0);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.ttl, 60);
	assert_int_equal(ares_parse_txt_reply_ext(g.abuf, g.alen, &txt), ARES_SUCCESS);
	for (t = txt; t; t = t->next) {
		if (t->record_start)
			nrec++;
		assert_true(nrec >= 0 && nrec < 2);
		assert_true(used[nrec] + t->length < sizeof rec[nrec]);
		memcpy(rec[nrec] + used[nrec], t->txt, t->length);
		used[nrec] += t->length;
	}
	ares_free_data(txt);
	assert_int_equal(nrec, 1);
	assert_string_equal(rec[0], "v=spf1 ip4:192.0.2.0/24 -all");
	assert_string_equal(rec[1], "hello");
	fx_stop(&f);
}

/* NXDOMAIN: cached for min(SOA TTL, MINIMUM) = 30 s, then asked again. */
static void test_net_nxdomain_soa(void **state)
{
	struct fx f;
	struct got g = { 0 }, h = { 0 }, k = { 0 };

	fx_start(&f, 1000, 2, 100);
	dns_lookup(f.dns, "nx.test", ns_t_a, record, &g);
	assert_true(wait_call(&f, &g) >= 0);
	assert_int_equal(g.status, DNS_NXDOMAIN);
	assert_int_equal(g.ttl, 30);
	assert_true(g.alen > 12);                 /* the raw reply is kept */
	assert_int_equal(g.abuf[3] & 0x0F, ns_r_nxdomain);
	f.now += 29000;
	assert_non_null(dns_lookup(f.dns, "nx.test", ns_t_a, record, &h));
	assert_int_equal(h.calls, 0);             /* never inside dns_lookup */
	turn(&f);
	assert_int_equal(h.calls, 1);             /* the next turn */
	assert_int_equal(h.status, DNS_NXDOMAIN);
	assert_int_equal(h.ttl, 1);               /* what is left of it */
	assert_int_equal(h.alen, g.alen);
	assert_memory_equal(h.abuf, g.abuf, (size_t)g.alen);
	assert_int_equal(f.srv.queries, 1);
	assert_int_equal(stats(&f).hits, 1);
	f.now += 1000;                            /* 30 s: gone */
	assert_non_null(dns_lookup(f.dns, "nx.test", ns_t_a, record, &k));
	assert_true(wait_call(&f, &k) >= 0);
	assert_int_equal(f.srv.queries, 2);
	fx_stop(&f);
}

static void test_net_negative_ttls(void **state)
{
	static const struct {
		const char *name;
		enum dns_status want;
		uint32_t ttl;
	} rows[] = {
		{ "nodata.test", DNS_NODATA, 20 },          /* SOA RR TTL below MINIMUM */
		{ "nosoa.test", DNS_NXDOMAIN, DNS_NEG_TTL_DEFAULT },
		{ "cname.test", DNS_NODATA, 50 },           /* CNAME to a name without A */
		{ "referral.test", DNS_TEMPFAIL, DNS_TEMPFAIL_TTL },
		{ "zero.test", DNS_OK, DNS_TTL_MIN },
		{ "long.test", DNS_OK, DNS_TTL_MAX },
	};
	struct fx f;

	fx_start(&f, 1000, 2, 100);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct got g = { 0 };

		dns_lookup(f.dns, rows[i].name, ns_t_a, record, &g);
		assert_true(wait_call(&f, &g) >= 0);
		assert_int_equal(g.calls, 1);
		assert_int_equal(g.status, rows[i].want);
		assert_int_equal(g.ttl, rows[i].ttl);
	}
	fx_stop(&f);
}

/* SERVFAIL is TEMPFAIL (thanks to ARES_FLAG_NOCHECKRESP, not retried),
 * the raw reply kept, cached DNS_TEMPFAIL_TTL. */
static void test_net_servfail(void **state)
{
	struct fx f;
	struct got g = { 0 }, h = { 0 }, k = { 0 };

	fx_start(&f, 1000, 2, 100);
	dns_lookup(f.dns, "servfail.test", ns_t_a, record, &g);
	assert_true(wait_call(&f, &g) >= 0);
	assert_int_equal(g.status, DNS_TEMPFAIL);
	assert_int_equal(g.ttl, DNS_TEMPFAIL_TTL);
	assert_true(g.alen > 0);
	assert_int_equal(g.abuf[3] & 0x0F, ns_r_servfail);
	assert_int_equal(f.srv.queries, 1);
	f.now += (DNS_TEMPFAIL_TTL - 1) * 1000;
	assert_non_null(dns_lookup(f.dns, "servfail.test", ns_t_a, record, &h));
	assert_int_equal(h.calls, 0);
	turn(&f);
	assert_int_equal(h.calls, 1);
	assert_int_equal(h.status, DNS_TEMPFAIL);
	f.now += 1000;
	assert_non_null(dns_lookup(f.dns, "servfail.test", ns_t_a, record, &k));
	assert_true(wait_call(&f, &k) >= 0);
	assert_int_equal(f.srv.queries, 2);
	assert_int_equal(f.srv.with_opt, 2);
	fx_stop(&f);
}

/* c-ares 1.18 retries a FORMERR without EDNS and clears ARES_FLAG_EDNS on
 * the whole channel; dns.c rebuilds the channel once idle, so large answers
 * keep coming over UDP. */
static void test_net_formerr_edns(void **state)
{
	struct fx f;
	struct got g = { 0 }, a = { 0 }, b = { 0 };

	fx_start(&f, 1000, 2, 100);
	dns_lookup(f.dns, "formerr.test", ns_t_a, record, &g);
	assert_true(wait_call(&f, &g) >= 0);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(f.srv.with_opt, 1);
	assert_int_equal(f.srv.without_opt, 1);
	assert_int_equal(stats(&f).edns_resets, 0);
	dns_lookup(f.dns, "a.test", ns_t_a, record, &a);
	assert_true(wait_call(&f, &a) >= 0);
	assert_int_equal(a.status, DNS_OK);
	assert_int_equal(stats(&f).edns_resets, 1);
	assert_int_equal(f.srv.with_opt, 2);       /* EDNS is back */
	dns_lookup(f.dns, "big.test", ns_t_txt, record, &b);
	assert_true(wait_call(&f, &b) >= 0);
	assert_int_equal(b.status, DNS_OK);
	assert_true(b.alen > 1000);
	assert_int_equal(f.srv.tcp, 0);
	assert_int_equal(f.srv.queries, 4);
	assert_int_equal(stats(&f).edns_resets, 1);
	fx_stop(&f);
}

static void test_net_refused(void **state)
{
	struct fx f;
	struct got g = { 0 };

	fx_start(&f, 1000, 2, 100);
	dns_lookup(f.dns, "refused.test", ns_t_a, record, &g);
	assert_true(wait_call(&f, &g) >= 0);
	assert_int_equal(g.status, DNS_TEMPFAIL);
	fx_stop(&f);
}

/* Silence: TEMPFAIL at timeout * tries, not at c-ares' doubled 1 + 2
 * timeouts, after one retry; and the loop does not spin meanwhile. */
static void test_net_timeout(void **state)
{
	struct fx f;
	struct got g = { 0 };
	uint64_t t0;
	int turns;

	fx_start(&f, 200, 2, 100);
	t0 = clock_ms();
	assert_non_null(dns_lookup(f.dns, "silent.test", ns_t_a, record, &g));
	turns = wait_call(&f, &g);
	assert_true(turns >= 0);
	assert_int_equal(g.status, DNS_TEMPFAIL);
	assert_int_equal(g.alen, -1);
	assert_true(g.at - t0 >= 390);
	assert_true(g.at - t0 < 590);
	assert_int_equal(f.srv.queries, 2);
	assert_true(turns < 60);  /* ticker every 20 ms: ~20 turns */
	fx_stop(&f);
}

/* An answer after the deadline still lands in the cache: c-ares gives the
 * second try 2 * timeout, beyond our timeout * tries. */
static void test_net_late_answer(void **state)
{
	struct fx f;
	struct got g = { 0 }, h = { 0 };

	fx_start(&f, 200, 2, 100);
	dns_lookup(f.dns, "late.test", ns_t_a, record, &g);
	assert_true(wait_call(&f, &g) >= 0);
	assert_int_equal(g.status, DNS_TEMPFAIL);
	assert_int_equal(f.srv.replies, 0);
	assert_non_null(dns_lookup(f.dns, "late.test", ns_t_a, record, &h));
	turn(&f);
	assert_int_equal(h.calls, 1);
	assert_int_equal(h.status, DNS_TEMPFAIL);  /* cached meanwhile */
	/* wait for the late reply to be sent, then for c-ares to read it */
	for (int i = 0; i < 500 && f.srv.replies == 0; i++)
		event_base_loop(f.base, EVLOOP_ONCE);
	assert_int_equal(f.srv.replies, 1);
	for (int i = 0; i < 500; i++) {
		memset(&h, 0, sizeof h);
		assert_non_null(dns_lookup(f.dns, "late.test", ns_t_a, record, &h));
		turn(&f);
		assert_int_equal(h.calls, 1);
		if (h.status == DNS_OK)
			break;
		event_base_loop(f.base, EVLOOP_ONCE);
	}
	assert_int_equal(h.status, DNS_OK);
	assert_int_equal(h.ttl, 300);
	assert_int_equal(f.srv.queries, 2);
	fx_stop(&f);
}

/* The second server answers when the first one is silent. */
static void test_net_failover(void **state)
{
	struct fx f;
	struct got g = { 0 };
	char servers[64];
	int dead_port;
	evutil_socket_t dead;
	uint64_t t0;

	memset(&f, 0, sizeof f);
	f.base = event_base_new();
	server_start(&f.srv, f.base);
	dead = udp_socket(&dead_port);
	assert_true(dead >= 0);
	snprintf(servers, sizeof servers, "127.0.0.1:%d,127.0.0.1:%d", dead_port, f.srv.port);
	fx_start_with(&f, servers, 200, 2, 100);
	t0 = clock_ms();
	dns_lookup(f.dns, "a.test", ns_t_a, record, &g);
	assert_true(wait_call(&f, &g) >= 0);
	assert_int_equal(g.status, DNS_OK);
	assert_true(g.at - t0 >= 190);
	assert_int_equal(f.srv.queries, 1);
	close(dead);
	fx_stop(&f);
}

/* TC over UDP: c-ares asks again over TCP (write events, then read). */
static void test_net_tcp_fallback(void **state)
{
	struct fx f;
	struct got g = { 0 }, b = { 0 };

	fx_start(&f, 1000, 2, 100);
	dns_lookup(f.dns, "big.test", ns_t_txt, record, &b);
	assert_true(wait_call(&f, &b) >= 0);
	assert_int_equal(b.status, DNS_OK);
	assert_true(b.alen > 1000);
	assert_int_equal(f.srv.tcp, 0);  /* 1232 bytes of EDNS were enough */
	dns_lookup(f.dns, "tc.test", ns_t_txt, record, &g);
	assert_true(wait_call(&f, &g) >= 0);
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(g.alen, b.alen - 1);  /* "tc" is one byte shorter than "big" */
	assert_int_equal(f.srv.udp, 2);
	assert_int_equal(f.srv.tcp, 1);
	fx_stop(&f);
}

/* ---- coalescing, cancel, re-entry ---- */

static void test_coalescing(void **state)
{
	struct fx f;
	struct got g[5] = { { 0 } };

	fx_start(&f, 1000, 2, 100);
	for (int i = 0; i < 5; i++)
		assert_non_null(dns_lookup(f.dns, "a.test", ns_t_a, record, &g[i]));
	assert_true(wait_call(&f, &g[4]) >= 0);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(g[i].calls, 1);
		assert_int_equal(g[i].status, DNS_OK);
	}
	/* a later turn of the loop calls nobody twice */
	event_base_loop(f.base, EVLOOP_NONBLOCK);
	for (int i = 0; i < 5; i++)
		assert_int_equal(g[i].calls, 1);
	assert_int_equal(f.srv.queries, 1);
	assert_int_equal(stats(&f).queries, 1);
	assert_int_equal(stats(&f).coalesced, 4);
	fx_stop(&f);
}

/* Coalescing does not depend on the cache. */
static void test_coalescing_without_cache(void **state)
{
	struct fx f;
	struct got g = { 0 }, h = { 0 }, k = { 0 };

	fx_start(&f, 1000, 2, 0);
	dns_lookup(f.dns, "a.test", ns_t_a, record, &g);
	dns_lookup(f.dns, "a.test", ns_t_a, record, &h);
	assert_true(wait_call(&f, &h) >= 0);
	assert_int_equal(f.srv.queries, 1);
	assert_non_null(dns_lookup(f.dns, "a.test", ns_t_a, record, &k));  /* not cached */
	assert_true(wait_call(&f, &k) >= 0);
	assert_int_equal(f.srv.queries, 2);
	assert_int_equal(stats(&f).entries, 0);
	assert_int_equal(dns_inject(f.dns, "a.test", ns_t_a, DNS_NXDOMAIN, NULL, 0, 60), -1);
	fx_stop(&f);
}

static int two_cached(void *arg)
{
	return stats(arg).entries >= 2;
}

static void test_cancel(void **state)
{
	struct fx f;
	struct got g[3] = { { 0 } }, m = { 0 };
	struct dns_req *r[3];

	fx_start(&f, 1000, 2, 100);
	for (int i = 0; i < 3; i++)
		r[i] = dns_lookup(f.dns, "a.test", ns_t_a, record, &g[i]);
	dns_cancel(r[1]);
	dns_cancel(NULL);
	assert_true(wait_call(&f, &g[2]) >= 0);
	assert_int_equal(g[0].calls, 1);
	assert_int_equal(g[1].calls, 0);
	assert_int_equal(g[2].calls, 1);
	/* everyone cancels: the query still completes and fills the cache */
	r[0] = dns_lookup(f.dns, "mx.test", ns_t_mx, record, &m);
	r[1] = dns_lookup(f.dns, "mx.test", ns_t_mx, record, &m);
	dns_cancel(r[0]);
	dns_cancel(r[1]);
	assert_true(run_until(&f, two_cached, &f, 5000) >= 0);
	assert_int_equal(m.calls, 0);
	assert_non_null(dns_lookup(f.dns, "mx.test", ns_t_mx, record, &m));
	turn(&f);
	assert_int_equal(m.calls, 1);
	assert_int_equal(f.srv.queries, 2);
	fx_stop(&f);
}

/* Inside a callback: cancel another waiter, and ask again (a cache hit,
 * delivered after the callback has returned, in the same turn). */
static void test_callback_reentry(void **state)
{
	struct fx f;
	struct got a = { 0 }, b = { 0 }, inner = { 0 };

	fx_start(&f, 1000, 2, 100);
	a.relookup = &f;
	a.inner = &inner;
	dns_lookup(f.dns, "a.test", ns_t_a, record, &a);
	a.cancel = dns_lookup(f.dns, "a.test", ns_t_a, record, &b);
	assert_true(wait_call(&f, &a) >= 0);
	assert_int_equal(b.calls, 0);
	assert_non_null(a.inner_req);
	assert_int_equal(a.inner_calls_then, 0);
	assert_int_equal(inner.calls, 1);
	assert_int_equal(inner.status, DNS_OK);
	assert_int_equal(f.srv.queries, 1);
	fx_stop(&f);
}

/* Callbacks in the order of the ready queue. */
struct order {
	int seen[16];
	int n;
};

struct tagged {
	struct order *o;
	int tag;
	int status;               /* -1: no result (dns_defer) */
	int had_result;
};

static void note(void *arg, const struct dns_result *r)
{
	struct tagged *t = arg;

	t->had_result = r != NULL;
	t->status = r ? (int)r->status : -1;
	if (t->o->n < 16)
		t->o->seen[t->o->n++] = t->tag;
}

/* N cache hits (and a dns_defer among them): nobody is called inside
 * dns_lookup; one loop turn delivers them all, in the order asked, each
 * counted as a hit; one cancelled before the turn is never called. */
static void test_hits_one_turn(void **state)
{
	struct fx f;
	struct order o = { { 0 }, 0 };
	struct tagged t[8];
	struct dns_req *r[8];
	char name[32];
	static const int want[] = { 0, 1, 2, 4, 5, 6, 7 };

	fx_start(&f, 1000, 2, 100);
	for (int i = 0; i < 8; i++) {
		t[i] = (struct tagged){ &o, i, 0, 0 };
		snprintf(name, sizeof name, "h%d.test", i);
		if (i != 5)
			assert_int_equal(dns_inject(f.dns, name, ns_t_a, i % 2 ? DNS_NXDOMAIN : DNS_NODATA,
			                            NULL, 0, 60), 0);
	}
	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof name, "h%d.test", i);
		r[i] = i == 5 ? dns_defer(f.dns, note, &t[i]) : dns_lookup(f.dns, name, ns_t_a, note, &t[i]);
		assert_non_null(r[i]);
	}
	dns_cancel(r[3]);
	assert_int_equal(o.n, 0);
	assert_int_equal(stats(&f).hits, 7);
	turn(&f);
	assert_int_equal(o.n, 7);
	assert_memory_equal(o.seen, want, sizeof want);
	for (int i = 0; i < 8; i++) {
		if (i == 3)
			continue;
		assert_int_equal(t[i].had_result, i != 5);
		if (i != 5)
			assert_int_equal(t[i].status, i % 2 ? DNS_NXDOMAIN : DNS_NODATA);
	}
	idle(&f);
	assert_int_equal(o.n, 7);
	assert_int_equal(f.srv.queries, 0);
	fx_stop(&f);
}

/* Answered but not yet called back when dns_free comes: nobody is called,
 * nothing leaks (LSan), the answer with a reply included. */
static void test_free_with_answers_queued(void **state)
{
	struct fx f;
	struct order o = { { 0 }, 0 };
	struct tagged t[3] = { { &o, 0, 0, 0 }, { &o, 1, 0, 0 }, { &o, 2, 0, 0 } };
	unsigned char reply[64] = { 0 };

	fx_start(&f, 1000, 2, 100);
	assert_int_equal(dns_inject(f.dns, "q.test", ns_t_a, DNS_OK, reply, (int)sizeof reply, 60), 0);
	assert_non_null(dns_lookup(f.dns, "q.test", ns_t_a, note, &t[0]));
	assert_non_null(dns_lookup(f.dns, "", ns_t_a, note, &t[1]));
	assert_non_null(dns_defer(f.dns, note, &t[2]));
	dns_free(f.dns);
	f.dns = NULL;
	idle(&f);
	assert_int_equal(o.n, 0);
	fx_stop(&f);
}

/* ---- a view with a tap (record_dir), and a resolver without network ---- */

struct tapped {
	int n;
	char names[4][64];
};

static void tap_note(void *arg, const struct dns_result *r)
{
	struct tapped *t = arg;

	if (t->n < 4)
		snprintf(t->names[t->n], sizeof t->names[0], "%s/%d", r->name, (int)r->status);
	t->n++;
}

/* The view's requests are the parent's (one query, one cache), the tap sees
 * each answer before its callback, cache hits included; the parent's own
 * requests and dns_defer are not tapped; a cancelled request is not. */
static void test_view_taps_its_answers(void **state)
{
	struct fx f;
	struct tapped t = {0};
	struct got a = {0}, b = {0}, c = {0}, d = {0};
	struct dns *v;
	struct order o = {{0}, 0};
	struct tagged later = {&o, 0, 0, 0};

	fx_start(&f, 1000, 2, 100);
	v = dns_view_new(f.dns, tap_note, &t);
	assert_non_null(v);
	assert_non_null(dns_lookup(v, "A.test.", ns_t_a, record, &a));
	assert_non_null(dns_lookup(f.dns, "a.test", ns_t_a, record, &b)); /* joins the same query */
	dns_cancel(dns_lookup(v, "mx.test", ns_t_mx, record, &d));
	assert_true(wait_call(&f, &a) >= 0);
	assert_true(wait_call(&f, &b) >= 0);
	assert_int_equal(t.n, 1);
	assert_string_equal(t.names[0], "a.test/0");
	assert_non_null(dns_lookup(v, "a.test", ns_t_a, record, &c)); /* a hit */
	assert_non_null(dns_defer(v, note, &later));
	assert_true(wait_call(&f, &c) >= 0);
	idle(&f);
	assert_int_equal(t.n, 2);
	assert_int_equal(o.n, 1);
	assert_int_equal(d.calls, 0);
	assert_int_equal(stats(&f).hits, 1);
	dns_free(v);
	fx_stop(&f);
}

/* The view freed with a request out (a DMARC prefetch is fire and forget):
 * the request is answered without the tap, nothing leaks (LSan). */
static void test_view_freed_with_requests_out(void **state)
{
	struct fx f;
	struct tapped t = {0};
	struct got a = {0};
	struct dns *v;

	fx_start(&f, 1000, 2, 100);
	v = dns_view_new(f.dns, tap_note, &t);
	assert_non_null(v);
	assert_non_null(dns_lookup(v, "a.test", ns_t_a, record, &a));
	dns_free(v);
	assert_true(wait_call(&f, &a) >= 0);
	assert_int_equal(a.status, DNS_OK);
	assert_int_equal(t.n, 0);
	fx_stop(&f);
}

struct source {
	int asked;
	unsigned char reply[16];
};

static int source_answer(void *arg, const char *name, int type, struct dns_result *out)
{
	struct source *s = arg;

	s->asked++;
	if (strcmp(name, "known.test") != 0 || type != ns_t_txt)
		return -1;
	out->status = DNS_OK;
	out->abuf = s->reply;
	out->alen = (int)sizeof s->reply;
	out->ttl = 300;
	return 0;
}

/* Offline: answers from the source only, later like any answer (never
 * inside dns_lookup); what it does not know is TEMPFAIL; no socket. */
static void test_offline_source(void **state)
{
	struct event_base *base = event_base_new();
	struct source src = {0, {1, 2, 3}};
	struct got a = {0}, b = {0};
	struct dns *d = dns_new_offline(base, source_answer, &src);
	struct fx f = {.base = base};

	assert_non_null(d);
	assert_non_null(dns_lookup(d, "Known.Test.", ns_t_txt, record, &a));
	assert_non_null(dns_lookup(d, "other.test", ns_t_a, record, &b));
	assert_int_equal(a.calls + b.calls, 0);
	turn(&f);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.status, DNS_OK);
	assert_int_equal(a.alen, 16);
	assert_int_equal(a.abuf[2], 3);
	assert_int_equal(a.ttl, 300);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.status, DNS_TEMPFAIL);
	assert_int_equal(src.asked, 2);
	assert_int_equal(stats(&(struct fx){.dns = d}).queries, 0);
	dns_free(d);
	event_base_free(base);
}

static void test_net_normalisation(void **state)
{
	struct fx f;
	struct got g = { 0 }, h = { 0 };

	fx_start(&f, 1000, 2, 100);
	dns_lookup(f.dns, "A.Test.", ns_t_a, record, &g);
	dns_lookup(f.dns, "a.TEST", ns_t_a, record, &h);
	assert_true(wait_call(&f, &h) >= 0);
	assert_int_equal(f.srv.queries, 1);
	assert_string_equal(f.srv.last_name, "a.test");
	assert_string_equal(g.name, "a.test");
	assert_int_equal(g.status, DNS_OK);
	assert_int_equal(stats(&f).coalesced, 1);
	fx_stop(&f);
}

/* Names c-ares or we refuse: NXDOMAIN, on the next turn. */
static void test_bad_names(void **state)
{
	struct fx f;
	struct got g = { 0 }, h = { 0 }, k = { 0 };
	char label[80], longname[300];

	fx_start(&f, 1000, 2, 100);
	memset(label, 'x', 64);
	memcpy(label + 64, ".test", 6);
	assert_non_null(dns_lookup(f.dns, label, ns_t_a, record, &g));  /* EBADNAME in ares_query */
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	assert_non_null(dns_lookup(f.dns, longname, ns_t_a, record, &h));
	assert_non_null(dns_lookup(f.dns, "", ns_t_a, record, &k));
	assert_int_equal(g.calls + h.calls + k.calls, 0);
	turn(&f);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.status, DNS_NXDOMAIN);
	assert_int_equal(h.calls, 1);
	assert_int_equal(h.status, DNS_NXDOMAIN);
	assert_string_equal(h.name, longname);
	assert_int_equal(k.calls, 1);
	assert_int_equal(k.status, DNS_NXDOMAIN);
	idle(&f);
	assert_int_equal(g.calls + h.calls + k.calls, 3);
	assert_int_equal(f.srv.queries, 0);
	assert_int_equal(stats(&f).queries, 0);
	fx_stop(&f);
}

static void test_inject(void **state)
{
	struct fx f;
	struct got g = { 0 };

	fx_start(&f, 1000, 2, 100);
	assert_int_equal(dns_inject(f.dns, "Foo.Example.", ns_t_txt, DNS_NXDOMAIN, NULL, 0, 100), 0);
	assert_int_equal(dns_inject(f.dns, "", ns_t_txt, DNS_NXDOMAIN, NULL, 0, 100), -1);
	assert_non_null(dns_lookup(f.dns, "foo.example", ns_t_txt, record, &g));
	assert_int_equal(g.calls, 0);
	turn(&f);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.status, DNS_NXDOMAIN);
	assert_int_equal(g.ttl, 100);
	assert_int_equal(g.alen, -1);
	assert_int_equal(f.srv.queries, 0);
	fx_stop(&f);
}

/* An LRU of 2 over the network: the third name evicts the first. */
static void test_net_lru(void **state)
{
	struct fx f;
	const char *names[] = { "a.test", "nx.test", "nodata.test" };
	struct got g = { 0 };

	fx_start(&f, 1000, 2, 2);
	for (int i = 0; i < 3; i++) {
		memset(&g, 0, sizeof g);
		dns_lookup(f.dns, names[i], ns_t_a, record, &g);
		assert_true(wait_call(&f, &g) >= 0);
	}
	assert_int_equal(stats(&f).entries, 2);
	assert_int_equal(stats(&f).evictions, 1);
	memset(&g, 0, sizeof g);
	assert_non_null(dns_lookup(f.dns, "a.test", ns_t_a, record, &g));
	assert_true(wait_call(&f, &g) >= 0);
	assert_int_equal(f.srv.queries, 4);
	fx_stop(&f);
}

static void fail_if_called(void *arg, const struct dns_result *r)
{
	fail_msg("callback after dns_free for %s", r->name);
}

/* dns_free with lookups pending calls nobody and frees everything (LSan). */
static void test_free_pending(void **state)
{
	struct fx f;

	fx_start(&f, 1000, 2, 100);
	dns_lookup(f.dns, "silent.test", ns_t_a, fail_if_called, NULL);
	dns_lookup(f.dns, "silent.test", ns_t_a, fail_if_called, NULL);
	dns_lookup(f.dns, "tcsilent.test", ns_t_txt, fail_if_called, NULL);
	/* let the server see them and c-ares open its TCP connection */
	for (int i = 0; i < 50 && f.srv.tcp == 0; i++)
		event_base_loop(f.base, EVLOOP_ONCE);
	fx_stop(&f);
}

/* Past DNS_INFLIGHT_MAX queries, lookups fail on the next turn instead of
 * queueing. */
static void test_inflight_limit(void **state)
{
	struct fx f;
	struct got g = { 0 }, h = { 0 };
	char n[64];

	fx_start(&f, 5000, 2, 100);
	for (int i = 0; i < DNS_INFLIGHT_MAX; i++) {
		snprintf(n, sizeof n, "q%d.silent.test", i);
		assert_non_null(dns_lookup(f.dns, n, ns_t_a, fail_if_called, NULL));
	}
	assert_non_null(dns_lookup(f.dns, "one-more.silent.test", ns_t_a, record, &g));
	assert_int_equal(g.calls, 0);
	turn(&f);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.status, DNS_TEMPFAIL);
	/* joining a query in flight is still fine */
	assert_non_null(dns_lookup(f.dns, "q7.silent.test", ns_t_a, record, &h));
	assert_int_equal(stats(&f).queries, DNS_INFLIGHT_MAX);
	fx_stop(&f);
}

static void test_defaults(void **state)
{
	struct event_base *base = event_base_new();
	struct dns_options bad = { "not-an-address:x", 0, 0, 10 };
	struct dns *d = dns_new(base, NULL);  /* resolv.conf, default limits */

	assert_non_null(d);
	dns_free(d);
	assert_null(dns_new(base, &bad));
	dns_free(NULL);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_net_a),
		cmocka_unit_test(test_net_mx),
		cmocka_unit_test(test_net_txt_strings),
		cmocka_unit_test(test_net_nxdomain_soa),
		cmocka_unit_test(test_net_negative_ttls),
		cmocka_unit_test(test_net_servfail),
		cmocka_unit_test(test_net_formerr_edns),
		cmocka_unit_test(test_net_refused),
		cmocka_unit_test(test_net_timeout),
		cmocka_unit_test(test_net_late_answer),
		cmocka_unit_test(test_net_failover),
		cmocka_unit_test(test_net_tcp_fallback),
		cmocka_unit_test(test_coalescing),
		cmocka_unit_test(test_coalescing_without_cache),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_callback_reentry),
		cmocka_unit_test(test_hits_one_turn),
		cmocka_unit_test(test_free_with_answers_queued),
		cmocka_unit_test(test_net_normalisation),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test(test_inject),
		cmocka_unit_test(test_net_lru),
		cmocka_unit_test(test_free_pending),
		cmocka_unit_test(test_view_taps_its_answers),
		cmocka_unit_test(test_view_freed_with_requests_out),
		cmocka_unit_test(test_offline_source),
		cmocka_unit_test(test_inflight_limit),
		cmocka_unit_test(test_defaults),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
