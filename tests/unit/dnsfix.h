/* dnsfix.h - DNS test fixtures shared by the unit tests of dns.c and of the
 * checks over it:
 * - a DNS message builder: a header, names, RRs in any section, and answers
 *   from a spec such as "ptr mail.example.test; a 192.0.2.1; mx 10 mx.test";
 * - loopback UDP sockets and client addresses;
 * - a resolver whose only server is a bound UDP socket that never answers, so
 *   that answers come from dns_inject() and every query that goes out can be
 *   counted (struct fx);
 * - a tiny authoritative server on a loopback UDP socket, in the test's own
 *   loop, that answers from a table and records the first questions
 *   (struct server), and a resolver pointed at it (struct nfx);
 * - running the loop until something happened, with a deadline.
 * Include after <cmocka.h>; header-only (static inline: each test uses what
 * it needs). Define DNSFIX_PACKETS_ONLY before including it to take only the
 * builder and the sockets (test_dns.c brings a resolver fixture and a server
 * of its own). */
#ifndef MOAT_TEST_DNSFIX_H
#define MOAT_TEST_DNSFIX_H

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "proxy/lib/text.h"
#include "checks/dns.h"

/* ---- a tiny DNS message builder ---- */

struct pkt {
	unsigned char b[8192];
	size_t n;
};

enum { SEC_AN = 6, SEC_NS = 8, SEC_AR = 10 }; /* header offsets of the counts */
#define F_QR 0x8000
#define F_AA 0x0400
#define F_TC 0x0200
#define F_RD 0x0100
#define F_RA 0x0080

static inline void put8(struct pkt *p, unsigned v)
{
	assert_true(p->n < sizeof p->b);
	p->b[p->n++] = (unsigned char)v;
}

static inline void put16(struct pkt *p, unsigned v)
{
	put8(p, (v >> 8) & 0xff);
	put8(p, v & 0xff);
}

static inline void put32(struct pkt *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p, v & 0xffff);
}

static inline void put_bytes(struct pkt *p, const void *d, size_t len)
{
	for (size_t i = 0; i < len; i++)
		put8(p, ((const unsigned char *)d)[i]);
}

/* "" and "." are the root: a single zero octet. A trailing dot is ignored. */
static inline void put_name(struct pkt *p, const char *name)
{
	while (*name && strcmp(name, ".") != 0) {
		const char *dot = strchr(name, '.');
		size_t l = dot ? (size_t)(dot - name) : strlen(name);

		put8(p, (unsigned)l);
		put_bytes(p, name, l);
		name += l + (dot != NULL);
	}
	put8(p, 0);
}

/* A header (id; flags: F_* and the rcode) and one question. */
static inline void pkt_begin(struct pkt *p, unsigned id, unsigned flags, const char *qname, unsigned qtype)
{
	p->n = 0;
	put16(p, id);
	put16(p, flags);
	put16(p, 1); /* qdcount */
	put16(p, 0); /* ancount */
	put16(p, 0); /* nscount */
	put16(p, 0); /* arcount */
	put_name(p, qname);
	put16(p, qtype);
	put16(p, ns_c_in);
}

/* One RR in section sect (SEC_AN, SEC_NS, SEC_AR: sections must come in
 * order); owner NULL: the question name (a pointer to offset 12). */
static inline void add_rr(struct pkt *p, int sect, const char *owner, unsigned type, uint32_t ttl,
                          const void *rd, size_t rdlen)
{
	unsigned c = (unsigned)(p->b[sect] << 8 | p->b[sect + 1]) + 1;

	if (owner)
		put_name(p, owner);
	else
		put16(p, 0xC00C);
	put16(p, type);
	put16(p, ns_c_in);
	put32(p, ttl);
	put16(p, (unsigned)rdlen);
	put_bytes(p, rd, rdlen);
	p->b[sect] = (unsigned char)(c >> 8);
	p->b[sect + 1] = (unsigned char)c;
}

/* One answer RR, TTL 300. */
static inline void add_answer(struct pkt *p, const char *owner, unsigned type, const void *rd, size_t rdlen)
{
	add_rr(p, SEC_AN, owner, type, 300, rd, rdlen);
}

static inline void add_name_rr(struct pkt *p, const char *owner, unsigned type, const char *target)
{
	struct pkt rd = { .n = 0 };

	put_name(&rd, target);
	add_answer(p, owner, type, rd.b, rd.n);
}

static inline void add_mx(struct pkt *p, const char *owner, unsigned pref, const char *exchange)
{
	struct pkt rd = { .n = 0 };

	put16(&rd, pref);
	put_name(&rd, exchange);
	add_answer(p, owner, ns_t_mx, rd.b, rd.n);
}

static inline void add_addr(struct pkt *p, const char *owner, int family, const char *ip)
{
	unsigned char a[16];

	assert_int_equal(inet_pton(family, ip, a), 1);
	add_answer(p, owner, family == AF_INET ? ns_t_a : ns_t_aaaa, a, family == AF_INET ? 4 : 16);
}

/* Answer records from a spec, each "TYPE VALUE [OWNER]" (OWNER defaults to
 * the question name): "ptr mail.example.test; a 192.0.2.1; aaaa 2001:db8::1;
 * cname other.example.test; a 192.0.2.1 other.example.test;
 * mx 10 mail.example.test; mx 0 ." ("mx 0 ." is the null MX; an MX is
 * "mx PREFERENCE EXCHANGE [OWNER]"). */
static inline void add_spec(struct pkt *p, const char *spec)
{
	char buf[1024], *save = NULL, *item;

	snprintf(buf, sizeof buf, "%s", spec ? spec : "");
	for (item = strtok_r(buf, ";", &save); item; item = strtok_r(NULL, ";", &save)) {
		char type[16], a1[256], a2[256], a3[256];
		int n = sscanf(item, " %15s %255s %255s %255s", type, a1, a2, a3);
		const char *owner = n == 3 ? a2 : NULL;

		if (n <= 0)
			continue;
		if (strcmp(type, "mx") == 0 && n >= 3)
			add_mx(p, n == 4 ? a3 : NULL, (unsigned)atoi(a1), a2);
		else if (n < 2 || n > 3)
			fail_msg("bad answer spec item '%s'", item);
		else if (strcmp(type, "ptr") == 0)
			add_name_rr(p, owner, ns_t_ptr, a1);
		else if (strcmp(type, "cname") == 0)
			add_name_rr(p, owner, ns_t_cname, a1);
		else if (strcmp(type, "a") == 0)
			add_addr(p, owner, AF_INET, a1);
		else if (strcmp(type, "aaaa") == 0)
			add_addr(p, owner, AF_INET6, a1);
		else
			fail_msg("bad answer spec item '%s'", item);
	}
}

/* A reply (QR, RD, RA, rcode) to one question, answers from a spec. */
static inline void build_reply(struct pkt *p, unsigned id, unsigned rcode, const char *qname,
                               unsigned qtype, const char *spec)
{
	pkt_begin(p, id, F_QR | F_RD | F_RA | (rcode & 0xf), qname, qtype);
	add_spec(p, spec);
}

/* ---- loopback sockets, client addresses ---- */

/* An A record, an SOA in the authority section, one TXT record. */
static inline void add_a(struct pkt *p, const char *ip, uint32_t ttl)
{
	struct in_addr a;

	inet_pton(AF_INET, ip, &a);
	add_rr(p, SEC_AN, NULL, ns_t_a, ttl, &a, 4);
}

static inline void add_soa(struct pkt *p, uint32_t ttl, uint32_t minimum)
{
	struct pkt r = { .n = 0 };

	put_name(&r, "ns.test");
	put_name(&r, "hostmaster.test");
	put32(&r, 2024010101);
	put32(&r, 3600);
	put32(&r, 600);
	put32(&r, 86400);
	put32(&r, minimum);
	add_rr(p, SEC_NS, NULL, ns_t_soa, ttl, r.b, r.n);
}

/* One TXT RR of the strings in a NULL-terminated list. */
static inline void add_txt(struct pkt *p, uint32_t ttl, const char *const *strs)
{
	struct pkt r = { .n = 0 };

	for (; *strs; strs++) {
		put8(&r, (unsigned)strlen(*strs));
		put_bytes(&r, *strs, strlen(*strs));
	}
	add_rr(p, SEC_AN, NULL, ns_t_txt, ttl, r.b, r.n);
}

/* A UDP socket on 127.0.0.1, port chosen by the kernel. */
static inline evutil_socket_t udp_socket(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof sa;
	evutil_socket_t fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* A persistent timer's callback: wakes EVLOOP_ONCE so deadlines are checked. */
static inline void tick(evutil_socket_t fd, short what, void *arg)
{
}

/* "192.0.2.1", "2001:db8::1" or "::ffff:192.0.2.1" as a sockaddr (port 40000). */
static inline const struct sockaddr *addr(const char *s, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (strchr(s, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(40000);
		assert_int_equal(inet_pton(AF_INET6, s, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(40000);
		assert_int_equal(inet_pton(AF_INET, s, &s4->sin_addr), 1);
	}
	return (const struct sockaddr *)ss;
}

#ifndef DNSFIX_PACKETS_ONLY

/* ---- a resolver whose only server never answers ---- */

struct fx {
	struct event_base *base;
	struct event *ticker; /* wakes EVLOOP_ONCE so deadlines are checked */
	struct dns *dns;
	evutil_socket_t sink; /* bound, never read: the "unused" server; -1: none */
	int sink_port;
};

static inline void fx_dns(struct fx *f, int port, int timeout_ms, int tries)
{
	char servers[64];
	struct dns_options o = { servers, timeout_ms, tries, 1000 };
	struct timeval tv = { 0, 20 * 1000 };

	snprintf(servers, sizeof servers, "127.0.0.1:%d", port);
	f->dns = dns_new(f->base, &o);
	assert_non_null(f->dns);
	f->ticker = event_new(f->base, -1, EV_PERSIST, tick, NULL);
	event_add(f->ticker, &tv);
}

static inline void fx_start(struct fx *f)
{
	memset(f, 0, sizeof *f);
	f->base = event_base_new();
	assert_non_null(f->base);
	f->sink = udp_socket(&f->sink_port);
	fx_dns(f, f->sink_port, 200, 1);
}

/* Datagrams that reached the silent server. */
static inline int sink_count(struct fx *f)
{
	unsigned char buf[1500];
	int n = 0;

	while (recv(f->sink, buf, sizeof buf, MSG_DONTWAIT) >= 0)
		n++;
	return n;
}

static inline void fx_stop(struct fx *f)
{
	dns_free(f->dns);
	event_free(f->ticker);
	if (f->sink >= 0)
		close(f->sink);
	event_base_free(f->base);
}

static inline struct dns_stats stats(struct fx *f)
{
	struct dns_stats st;

	dns_get_stats(f->dns, &st);
	return st;
}

/* ---- running the loop ---- */

/* Run the loop until done(arg) or ms pass: 0, or -1 at the deadline. */
static inline int run_until(struct fx *f, int (*done)(void *), void *arg, int ms)
{
	uint64_t end = clock_ms() + (uint64_t)ms;

	while (!done(arg)) {
		if (clock_ms() >= end)
			return -1;
		event_base_loop(f->base, EVLOOP_ONCE);
	}
	return 0;
}

/* A few more turns of the loop without waiting: nothing more may happen. */
static inline void run_idle(struct fx *f)
{
	for (int i = 0; i < 5; i++)
		event_base_loop(f->base, EVLOOP_NONBLOCK);
}

/* For run_until: the cache holds at least n entries. */
struct want_entries {
	struct fx *f;
	unsigned long n;
};

static inline int has_entries(void *arg)
{
	struct want_entries *w = arg;

	return stats(w->f).entries >= w->n;
}

/* ---- a tiny authoritative DNS server on loopback, in the same loop ---- */

struct zrec {
	const char *name; /* NULL: end */
	int type;
	unsigned rcode;
	const char *spec; /* answers; "silent": never reply */
};

struct server {
	evutil_socket_t fd;
	struct event *ev;
	int port;
	const struct zrec *zone;
	int queries, replies;
	char asked[8][300]; /* "name/type" of the first queries */
};

static inline int parse_question(const unsigned char *b, size_t n, unsigned *id, char *name,
                                 size_t size, unsigned *qtype)
{
	size_t o = 12, w = 0;

	if (n < 12)
		return -1;
	*id = (unsigned)(b[0] << 8 | b[1]);
	while (o < n && b[o] != 0) {
		size_t l = b[o];

		if (l > 63 || o + 1 + l > n || w + l + 2 > size)
			return -1;
		if (w)
			name[w++] = '.';
		memcpy(name + w, b + o + 1, l);
		w += l;
		o += 1 + l;
	}
	name[w] = '\0';
	if (o + 3 > n)
		return -1;
	*qtype = (unsigned)(b[o + 1] << 8 | b[o + 2]);
	return 0;
}

/* Answers a question from the zone (the name matched without regard to
 * case); one not in the zone is REFUSED. */
static inline void server_read(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	unsigned char buf[1500];
	struct sockaddr_storage from;
	socklen_t fl = sizeof from;
	ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
	char name[256];
	unsigned id, qtype;
	const struct zrec *z;
	struct pkt p;

	if (n <= 0 || parse_question(buf, (size_t)n, &id, name, sizeof name, &qtype) < 0)
		return;
	if (s->queries < (int)(sizeof s->asked / sizeof s->asked[0]))
		snprintf(s->asked[s->queries], sizeof s->asked[0], "%s/%u", name, qtype);
	s->queries++;
	for (z = s->zone; z && z->name; z++)
		if (strcasecmp(z->name, name) == 0 && (unsigned)z->type == qtype)
			break;
	if (z && z->name) {
		if (z->spec && strcmp(z->spec, "silent") == 0)
			return;
		build_reply(&p, id, z->rcode, name, qtype, z->spec);
	} else {
		build_reply(&p, id, ns_r_refused, name, qtype, NULL); /* not in the zone */
	}
	sendto(fd, p.b, p.n, 0, (struct sockaddr *)&from, fl);
	s->replies++;
}

static inline void server_start(struct server *s, struct event_base *base, const struct zrec *zone)
{
	memset(s, 0, sizeof *s);
	s->zone = zone;
	s->fd = udp_socket(&s->port);
	evutil_make_socket_nonblocking(s->fd);
	s->ev = event_new(base, s->fd, EV_READ | EV_PERSIST, server_read, s);
	assert_non_null(s->ev);
	event_add(s->ev, NULL);
}

static inline void server_stop(struct server *s)
{
	event_free(s->ev);
	close(s->fd);
}

/* A resolver whose only server is the one above. */
struct nfx {
	struct fx f;
	struct server srv;
};

static inline void nfx_start(struct nfx *n, const struct zrec *zone, int timeout_ms)
{
	memset(n, 0, sizeof *n);
	n->f.base = event_base_new();
	assert_non_null(n->f.base);
	n->f.sink = -1;
	server_start(&n->srv, n->f.base, zone);
	fx_dns(&n->f, n->srv.port, timeout_ms, 1);
}

static inline void nfx_stop(struct nfx *n)
{
	fx_stop(&n->f);
	server_stop(&n->srv);
}

#endif /* DNSFIX_PACKETS_ONLY */

#endif
