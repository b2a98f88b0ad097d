/* dnsfix.h - DNS test fixtures shared by the unit tests of the checks:
 * a DNS message builder (answers from a spec such as
 * "ptr mail.example.test; a 192.0.2.1") and a resolver whose only server is
 * a bound UDP socket that never answers, so that answers come from
 * dns_inject() and every query that goes out can be counted.
 * Include after <cmocka.h>; header-only (static inline: each test uses what
 * it needs). */
#ifndef MOAT_TEST_DNSFIX_H
#define MOAT_TEST_DNSFIX_H

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "checks/dns.h"

static inline uint64_t real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- a tiny DNS message builder ---- */

struct pkt {
	unsigned char b[4096];
	size_t n;
};

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

/* Header (QR, RD, RA, rcode) and one question. */
static inline void pkt_begin(struct pkt *p, unsigned id, unsigned rcode, const char *qname, unsigned qtype)
{
	p->n = 0;
	put16(p, id);
	put16(p, 0x8000 | 0x0100 | 0x0080 | (rcode & 0xf));
	put16(p, 1); /* qdcount */
	put16(p, 0); /* ancount */
	put16(p, 0); /* nscount */
	put16(p, 0); /* arcount */
	put_name(p, qname);
	put16(p, qtype);
	put16(p, ns_c_in);
}

/* One answer RR; owner NULL: the question name (a pointer to offset 12). */
static inline void add_answer(struct pkt *p, const char *owner, unsigned type, const void *rd, size_t rdlen)
{
	unsigned an = (unsigned)(p->b[6] << 8 | p->b[7]) + 1;

	if (owner)
		put_name(p, owner);
	else
		put16(p, 0xC00C);
	put16(p, type);
	put16(p, ns_c_in);
	put32(p, 300);
	put16(p, (unsigned)rdlen);
	put_bytes(p, rd, rdlen);
	p->b[6] = (unsigned char)(an >> 8);
	p->b[7] = (unsigned char)an;
}

static inline void add_name_rr(struct pkt *p, const char *owner, unsigned type, const char *target)
{
	struct pkt rd = { .n = 0 };

	put_name(&rd, target);
	add_answer(p, owner, type, rd.b, rd.n);
}

static inline void add_addr(struct pkt *p, const char *owner, int family, const char *ip)
{
	unsigned char a[16];

	assert_int_equal(inet_pton(family, ip, a), 1);
	add_answer(p, owner, family == AF_INET ? ns_t_a : ns_t_aaaa, a, family == AF_INET ? 4 : 16);
}

/* Answer records from a spec, each "TYPE VALUE [OWNER]" (OWNER defaults to
 * the question name): "ptr mail.example.test; a 192.0.2.1; aaaa 2001:db8::1;
 * cname other.example.test; a 192.0.2.1 other.example.test". */
static inline void add_spec(struct pkt *p, const char *spec)
{
	char buf[1024], *save = NULL, *item;

	snprintf(buf, sizeof buf, "%s", spec ? spec : "");
	for (item = strtok_r(buf, ";", &save); item; item = strtok_r(NULL, ";", &save)) {
		char type[16], a1[256], a2[256];
		int n = sscanf(item, " %15s %255s %255s", type, a1, a2);
		const char *owner = n == 3 ? a2 : NULL;

		if (n <= 0)
			continue;
		if (n < 2)
			fail_msg("bad answer spec item '%s'", item);
		if (strcmp(type, "ptr") == 0)
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

static inline void build_reply(struct pkt *p, unsigned id, unsigned rcode, const char *qname,
                        unsigned qtype, const char *spec)
{
	pkt_begin(p, id, rcode, qname, qtype);
	add_spec(p, spec);
}

/* ---- a resolver whose only server never answers ---- */

struct fx {
	struct event_base *base;
	struct event *ticker; /* wakes EVLOOP_ONCE so deadlines are checked */
	struct dns *dns;
	evutil_socket_t sink; /* bound, never read: the "unused" server */
	int sink_port;
};

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

static inline void tick(evutil_socket_t fd, short what, void *arg)
{
}

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

#endif
