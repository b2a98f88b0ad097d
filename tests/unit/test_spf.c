/* test_spf.c - SPF: the record syntax checker, the restartable libspf2 layer
 * (cached and network answers, cancel, limits), and the openspf.org
 * RFC 7208 suite (../shared/testdata/rfc7208-tests.yml, read through
 * tests/unit/spf_suite.py) run end to end through dns.c.
 *
 * Each suite case gets a fresh event loop and dns.c whose server is a DNS
 * responder in this process on 127.0.0.1 serving the scenario's zone. The
 * suite runs twice: with the zone also put in the cache with dns_inject
 * (cached answers arrive in the next loop turn, only unknown names go to
 * the responder),
 * and with the zone served only by the responder (every answer arrives
 * later from the loop).
 *
 * Environment: SPF_SUITE (another YAML file), SPF_SUITE_CASE (one case id),
 * SPF_SUITE_VERBOSE=1 (every case). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/event.h>

#include "checks/dns.h"
#include "checks/spf.h"
#include "checks/spf_syntax.h"

#define ZT_SPF 99
#define ZT_TIMEOUT (-1)

/* ---- DNS messages ---- */

struct msg {
	unsigned char b[8192];
	int n;
	int ancount;
};

static void put8(struct msg *m, unsigned v)
{
	if (m->n < (int)sizeof m->b)
		m->b[m->n++] = (unsigned char)v;
}

static void put16(struct msg *m, unsigned v)
{
	put8(m, v >> 8);
	put8(m, v & 0xff);
}

static void put32(struct msg *m, uint32_t v)
{
	put16(m, v >> 16);
	put16(m, v & 0xffff);
}

/* Labels split at dots, bytes as they are. -1 if a label is empty or too long. */
static int put_name(struct msg *m, const char *name)
{
	size_t len = strlen(name);
	const char *p = name;

	if (len && name[len - 1] == '.')
		len--;
	while (len > 0) {
		const char *dot = memchr(p, '.', len);
		size_t l = dot ? (size_t)(dot - p) : len;

		if (l == 0 || l > 63)
			return -1;
		put8(m, (unsigned)l);
		for (size_t i = 0; i < l; i++)
			put8(m, (unsigned char)p[i]);
		p += l + (dot ? 1 : 0);
		len -= l + (dot ? 1 : 0);
	}
	put8(m, 0);
	return 0;
}

static void msg_header(struct msg *m, unsigned id, int rcode)
{
	m->n = 0;
	m->ancount = 0;
	put16(m, id);
	put16(m, 0x8000 | 0x0400 | 0x0100 | 0x0080 | (unsigned)rcode); /* QR AA RD RA */
	put16(m, 1);
	put16(m, 0);
	put16(m, 0);
	put16(m, 0);
}

static void msg_set_rcode(struct msg *m, int rcode)
{
	m->b[3] = (unsigned char)((m->b[3] & 0xf0) | rcode);
}

static void msg_done(struct msg *m)
{
	m->b[6] = (unsigned char)(m->ancount >> 8);
	m->b[7] = (unsigned char)(m->ancount & 0xff);
}

/* ---- the zone of a scenario ---- */

struct zrr {
	char name[300];   /* lower case, no trailing dot */
	int type;         /* ns_t_*, ZT_SPF or ZT_TIMEOUT */
	int nf;
	char *f[8];       /* fields, unescaped */
	size_t flen[8];
};

struct zone {
	struct zrr *r;
	int n, size;
};

static void lower_name(char *dst, size_t size, const char *src, size_t len)
{
	size_t i;

	if (len && src[len - 1] == '.')
		len--;
	for (i = 0; i < len && i + 1 < size; i++)
		dst[i] = (src[i] >= 'A' && src[i] <= 'Z') ? (char)(src[i] + 32) : src[i];
	dst[i] = '\0';
}

static int put_rdata(struct msg *m, const struct zrr *r)
{
	int start, at;

	at = m->n;
	put16(m, 0); /* rdlength, set below */
	start = m->n;
	switch (r->type) {
	case ns_t_a: {
		struct in_addr a;

		if (r->nf < 1 || inet_pton(AF_INET, r->f[0], &a) != 1)
			return -1;
		for (int i = 0; i < 4; i++)
			put8(m, ((unsigned char *)&a)[i]);
		break;
	}
	case ns_t_aaaa: {
		struct in6_addr a;

		if (r->nf < 1 || inet_pton(AF_INET6, r->f[0], &a) != 1)
			return -1;
		for (int i = 0; i < 16; i++)
			put8(m, a.s6_addr[i]);
		break;
	}
	case ns_t_mx:
		if (r->nf < 2)
			return -1;
		put16(m, (unsigned)atoi(r->f[0]));
		if (put_name(m, r->f[1]) < 0)
			return -1;
		break;
	case ns_t_ptr:
	case ns_t_cname:
		if (r->nf < 1 || put_name(m, r->f[0]) < 0)
			return -1;
		break;
	case ns_t_txt:
	case ZT_SPF:
		for (int i = 0; i < r->nf; i++) {
			size_t off = 0;

			do { /* a character-string holds 255 bytes */
				size_t l = r->flen[i] - off > 255 ? 255 : r->flen[i] - off;

				put8(m, (unsigned)l);
				for (size_t k = 0; k < l; k++)
					put8(m, (unsigned char)r->f[i][off + k]);
				off += l;
			} while (off < r->flen[i]);
		}
		break;
	default:
		return -1;
	}
	m->b[at] = (unsigned char)((m->n - start) >> 8);
	m->b[at + 1] = (unsigned char)((m->n - start) & 0xff);
	return 0;
}

static void put_rr(struct msg *m, const char *owner, const struct zrr *r)
{
	int save = m->n;

	if (put_name(m, owner) < 0)
		goto undo;
	put16(m, (unsigned)r->type);
	put16(m, ns_c_in);
	put32(m, 3600);
	if (put_rdata(m, r) < 0)
		goto undo;
	m->ancount++;
	return;
undo:
	m->n = save;
}

/* The reply to (qname, qtype) the way the suite's drivers see the zone
 * (pyspf test/testspf.py DNSLookup): a TIMEOUT entry before any record of
 * the type means a timeout (SERVFAIL here); CNAMEs are followed. The
 * question is appended by the caller first. */
static enum dns_status zone_answer(const struct zone *z, const char *qname, int qtype, struct msg *m)
{
	char cur[300];

	snprintf(cur, sizeof cur, "%s", qname);
	for (int hop = 0; hop < 8; hop++) {
		const struct zrr *cname = NULL;
		int exists = 0, found = 0, timeout = 0;

		for (int i = 0; i < z->n; i++) {
			const struct zrr *r = &z->r[i];

			if (strcmp(r->name, cur) != 0)
				continue;
			exists = 1;
			if (r->type == ZT_TIMEOUT) {
				timeout = !found;
				break;
			}
			if (r->type == qtype) {
				put_rr(m, cur, r);
				found++;
			} else if (r->type == ns_t_cname) {
				cname = r;
			}
		}
		if (timeout) {
			m->ancount = 0;
			msg_set_rcode(m, 2);
			return DNS_TEMPFAIL;
		}
		if (found)
			return DNS_OK;
		if (cname && qtype != ns_t_cname) {
			put_rr(m, cur, cname);
			lower_name(cur, sizeof cur, cname->f[0], cname->flen[0]);
			continue;
		}
		if (!exists) {
			if (hop == 0 && strncmp(cur, "error.", 6) == 0) {
				msg_set_rcode(m, 2);
				return DNS_TEMPFAIL;
			}
			msg_set_rcode(m, 3);
			return DNS_NXDOMAIN;
		}
		return DNS_NODATA;
	}
	return DNS_NODATA;
}

static void zone_free(struct zone *z)
{
	for (int i = 0; i < z->n; i++)
		for (int k = 0; k < z->r[i].nf; k++)
			free(z->r[i].f[k]);
	free(z->r);
	memset(z, 0, sizeof *z);
}

/* ---- the suite file ---- */

struct tcase {
	char id[80];
	char host[64], helo[256], mailfrom[320];
	char results[80];
	int has_exp;
	char exp[512];
	int scenario;
};

struct scenario {
	char desc[128];
	struct zone zone;
};

struct suite {
	struct scenario *sc;
	int nsc;
	struct tcase *tc;
	int ntc;
};

/* Unescape one field in place; returns its length. */
static size_t unescape(char *s)
{
	char *w = s;

	for (char *p = s; *p; p++) {
		if (*p != '\\') {
			*w++ = *p;
			continue;
		}
		p++;
		switch (*p) {
		case 't': *w++ = '\t'; break;
		case 'n': *w++ = '\n'; break;
		case 'r': *w++ = '\r'; break;
		case 'x': {
			char hex[3] = {p[1], p[2], 0};

			*w++ = (char)strtol(hex, NULL, 16);
			p += 2;
			break;
		}
		default: *w++ = *p; break;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

static int split(char *line, char **f, size_t *fl, int max)
{
	int n = 0;
	char *p = line;

	for (;;) {
		char *tab = strchr(p, '\t');

		if (tab)
			*tab = '\0';
		if (n < max) {
			f[n] = p;
			fl[n] = unescape(p);
			n++;
		}
		if (!tab)
			break;
		p = tab + 1;
	}
	return n;
}

static int type_code(const char *t)
{
	static const struct { const char *name; int code; } types[] = {
		{"A", ns_t_a}, {"AAAA", ns_t_aaaa}, {"MX", ns_t_mx}, {"TXT", ns_t_txt},
		{"SPF", ZT_SPF}, {"PTR", ns_t_ptr}, {"CNAME", ns_t_cname}, {"TIMEOUT", ZT_TIMEOUT},
	};

	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if (strcmp(t, types[i].name) == 0)
			return types[i].code;
	return 0;
}

static void copy_field(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src);
}

static void suite_free(struct suite *s)
{
	for (int i = 0; i < s->nsc; i++)
		zone_free(&s->sc[i].zone);
	free(s->sc);
	free(s->tc);
	memset(s, 0, sizeof *s);
}

static int suite_load(struct suite *s, const char *yml)
{
	char cmd[1024], line[16384];
	FILE *f;
	int rc;

	memset(s, 0, sizeof *s);
	snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/unit/spf_suite.py '%s'", yml);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		char *fld[12];
		size_t fl[12];
		int n;

		line[strcspn(line, "\n")] = '\0';
		n = split(line, fld, fl, 12);
		if (n >= 3 && strcmp(fld[0], "S") == 0) {
			s->sc = realloc(s->sc, (size_t)(s->nsc + 1) * sizeof *s->sc);
			memset(&s->sc[s->nsc], 0, sizeof *s->sc);
			copy_field(s->sc[s->nsc].desc, sizeof s->sc[s->nsc].desc, fld[2]);
			s->nsc++;
		} else if (n >= 3 && strcmp(fld[0], "Z") == 0 && s->nsc > 0) {
			struct zone *z = &s->sc[s->nsc - 1].zone;
			struct zrr *r;

			if (z->n == z->size) {
				z->size = z->size ? z->size * 2 : 32;
				z->r = realloc(z->r, (size_t)z->size * sizeof *z->r);
			}
			r = &z->r[z->n++];
			memset(r, 0, sizeof *r);
			lower_name(r->name, sizeof r->name, fld[1], fl[1]);
			r->type = type_code(fld[2]);
			for (int i = 3; i < n && r->nf < 8; i++) {
				r->f[r->nf] = malloc(fl[i] + 1);
				memcpy(r->f[r->nf], fld[i], fl[i] + 1);
				r->flen[r->nf++] = fl[i];
			}
		} else if (n >= 8 && strcmp(fld[0], "T") == 0 && s->nsc > 0) {
			struct tcase *t;

			s->tc = realloc(s->tc, (size_t)(s->ntc + 1) * sizeof *s->tc);
			t = &s->tc[s->ntc++];
			memset(t, 0, sizeof *t);
			copy_field(t->id, sizeof t->id, fld[1]);
			copy_field(t->host, sizeof t->host, fld[2]);
			copy_field(t->helo, sizeof t->helo, fld[3]);
			copy_field(t->mailfrom, sizeof t->mailfrom, fld[4]);
			copy_field(t->results, sizeof t->results, fld[5]);
			t->has_exp = atoi(fld[6]);
			copy_field(t->exp, sizeof t->exp, fld[7]);
			t->scenario = s->nsc - 1;
		}
	}
	rc = pclose(f);
	return rc == 0 && s->ntc > 0 ? 0 : -1;
}

/* ---- a DNS responder on 127.0.0.1 for dns.c ---- */

struct responder {
	int fd;
	int port;
	struct event *ev;
	const struct zone *zone;
	unsigned long queries;
};

static void responder_cb(evutil_socket_t fd, short what, void *arg)
{
	struct responder *rs = arg;
	unsigned char q[1500];
	struct sockaddr_storage from;
	socklen_t fromlen = sizeof from;
	ssize_t n = recvfrom(fd, q, sizeof q, 0, (struct sockaddr *)&from, &fromlen);
	struct msg m;
	char qname[300];
	size_t qn = 0;
	int p = 12, qtype;

	if (n < 17)
		return;
	rs->queries++;
	while (p < n && q[p] != 0) { /* the question name, labels as they are */
		int l = q[p++];

		if (p + l > n)
			return;
		if (qn && qn < sizeof qname - 1)
			qname[qn++] = '.';
		for (int i = 0; i < l && qn < sizeof qname - 1; i++)
			qname[qn++] = (char)((q[p + i] >= 'A' && q[p + i] <= 'Z') ? q[p + i] + 32 : q[p + i]);
		p += l;
	}
	qname[qn] = '\0';
	p++;
	if (p + 4 > n)
		return;
	qtype = q[p] << 8 | q[p + 1];
	msg_header(&m, (unsigned)(q[0] << 8 | q[1]), 0);
	memcpy(m.b + 12, q + 12, (size_t)(p + 4 - 12)); /* the question as asked */
	m.n = p + 4;
	zone_answer(rs->zone, qname, qtype, &m);
	msg_done(&m);
	sendto(fd, m.b, (size_t)m.n, 0, (struct sockaddr *)&from, fromlen);
}

static int responder_start(struct responder *rs, struct event_base *base, const struct zone *z)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof sin;

	memset(rs, 0, sizeof *rs);
	rs->zone = z;
	rs->fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (rs->fd < 0)
		return -1;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(rs->fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
	    getsockname(rs->fd, (struct sockaddr *)&sin, &len) < 0) {
		close(rs->fd);
		return -1;
	}
	evutil_make_socket_nonblocking(rs->fd);
	rs->port = ntohs(sin.sin_port);
	rs->ev = event_new(base, rs->fd, EV_READ | EV_PERSIST, responder_cb, rs);
	event_add(rs->ev, NULL);
	return 0;
}

static void responder_stop(struct responder *rs)
{
	event_free(rs->ev);
	close(rs->fd);
}

/* Put every (name, type) of the zone in dns.c's cache. */
static void zone_inject(struct dns *d, const struct zone *z)
{
	static const int types[] = {ns_t_a, ns_t_aaaa, ns_t_mx, ns_t_txt, ns_t_ptr};

	for (int i = 0; i < z->n; i++) {
		int seen = 0;

		for (int k = 0; k < i; k++)
			if (strcmp(z->r[k].name, z->r[i].name) == 0)
				seen = 1;
		if (seen)
			continue;
		for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
			struct msg m;
			enum dns_status st;

			msg_header(&m, 1, 0);
			if (put_name(&m, z->r[i].name) < 0)
				break;
			put16(&m, (unsigned)types[t]);
			put16(&m, ns_c_in);
			st = zone_answer(z, z->r[i].name, types[t], &m);
			msg_done(&m);
			dns_inject(d, z->r[i].name, types[t], st, st == DNS_OK ? m.b : NULL,
			           st == DNS_OK ? m.n : 0, 3600);
		}
	}
}

/* ---- running checks ---- */

struct run {
	int called;
	int calls;
	int calls_at_return;      /* calls when spf_check_start returned: always 0 */
	int turns;                /* loop turns until the callback */
	struct spf_outcome o;
};

static void run_cb(void *arg, const struct spf_outcome *o)
{
	struct run *r = arg;

	r->called = 1;
	r->calls++;
	r->o = *o;
}

static int parse_addr(const char *s, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (strchr(s, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		return inet_pton(AF_INET6, s, &s6->sin6_addr) == 1 ? 0 : -1;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		return inet_pton(AF_INET, s, &s4->sin_addr) == 1 ? 0 : -1;
	}
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
}

struct env {
	struct event_base *base;
	struct responder rs;
	struct dns *dns;
	struct event *tick;
};

static void env_open(struct env *e, const struct zone *z, int inject)
{
	char servers[64];
	struct dns_options o = {0};
	struct timeval tv = {0, 50000};

	e->base = event_base_new();
	assert_non_null(e->base);
	assert_int_equal(responder_start(&e->rs, e->base, z), 0);
	snprintf(servers, sizeof servers, "127.0.0.1:%d", e->rs.port);
	o.servers = servers;
	o.timeout_ms = 1000;
	o.tries = 1;
	o.cache_max = 10000;
	e->dns = dns_new(e->base, &o);
	assert_non_null(e->dns);
	if (inject)
		zone_inject(e->dns, z);
	e->tick = event_new(e->base, -1, EV_PERSIST, tick, NULL);
	event_add(e->tick, &tv);
}

static void env_close(struct env *e)
{
	dns_free(e->dns);
	event_free(e->tick);
	responder_stop(&e->rs);
	event_base_free(e->base);
}

/* Run one check to its callback; returns the handle spf_check_start gave.
 * Fails if the callback ran before spf_check_start returned. */
static struct spf_check *env_check(struct env *e, const char *host, const char *helo,
                                   const char *mailfrom, struct run *r)
{
	struct sockaddr_storage ss;
	struct spf_check *h;
	struct timeval t0, t1;

	memset(r, 0, sizeof *r);
	assert_int_equal(parse_addr(host, &ss), 0);
	h = spf_check_start(e->dns, (struct sockaddr *)&ss, helo, mailfrom, "receiver.example.org",
	                    run_cb, r);
	r->calls_at_return = r->calls;
	assert_int_equal(r->calls_at_return, 0);
	gettimeofday(&t0, NULL);
	while (!r->called) {
		event_base_loop(e->base, EVLOOP_ONCE);
		r->turns++;
		gettimeofday(&t1, NULL);
		if (t1.tv_sec - t0.tv_sec > 30)
			break;
	}
	return h;
}

static int result_ok(const char *list, const char *res)
{
	char buf[80], *save = NULL;

	snprintf(buf, sizeof buf, "%s", list);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
		if (strcmp(t, res) == 0)
			return 1;
	return 0;
}

/* The suite compares explanations as pyspf produces them; %{i} of an IPv6
 * address has hex digits that RFC 7208 7.3 writes in lower case, pyspf
 * in upper case: DNS names, so the comparison ignores case. */
static int exp_ok(const struct tcase *t, const struct spf_outcome *o)
{
	if (!t->has_exp)
		return 1;
	if (strcmp(t->exp, "DEFAULT") == 0)
		return o->exp_default;
	return !o->exp_default && strcasecmp(t->exp, o->explanation) == 0;
}

static int run_suite(const char *yml, int inject, int verbose, const char *only)
{
	struct suite s;
	int passed = 0, total = 0, failed = 0, max_passes = 0, max_lookups = 0, sum_passes = 0;
	const char *max_case = "";

	if (suite_load(&s, yml) < 0) {
		fprintf(stderr, "cannot load the SPF suite %s (python3-yaml installed?)\n", yml);
		return -1;
	}
	printf("RFC 7208 suite, %s mode:\n", inject ? "inject" : "serve");
	for (int sc = 0; sc < s.nsc; sc++) {
		int sp = 0, st = 0;

		for (int i = 0; i < s.ntc; i++) {
			const struct tcase *t = &s.tc[i];
			struct env e;
			struct run r;
			int ok;

			if (t->scenario != sc || (only && strcmp(only, t->id) != 0))
				continue;
			env_open(&e, &s.sc[sc].zone, inject);
			env_check(&e, t->host, t->helo, t->mailfrom, &r);
			ok = r.called && r.calls == 1 && result_ok(t->results, spf_res_name(r.o.res)) &&
			     exp_ok(t, &r.o);
			st++;
			sp += ok;
			sum_passes += r.o.passes;
			if (r.o.passes > max_passes) {
				max_passes = r.o.passes;
				max_case = t->id;
			}
			if (r.o.lookups > max_lookups)
				max_lookups = r.o.lookups;
			if (!ok || verbose)
				printf("  %s %-28s want %-18s%s%-14s got %-9s %2dp [%s]%s%s%s\n",
				       ok ? "ok  " : "FAIL", t->id, t->results, t->has_exp ? " exp=" : "",
				       t->has_exp ? t->exp : "", r.called ? spf_res_name(r.o.res) : "(no callback)",
				       r.o.passes, r.o.reason,
				       r.o.res == SPF_RES_FAIL ? " exp=" : "",
				       r.o.res == SPF_RES_FAIL ? r.o.explanation : "",
				       r.o.res == SPF_RES_FAIL && r.o.exp_default ? " (default)" : "");
			env_close(&e);
		}
		if (st)
			printf("  scenario %2d %-40s %3d/%-3d\n", sc + 1, s.sc[sc].desc, sp, st);
		passed += sp;
		total += st;
	}
	failed = total - passed;
	printf("  libspf2 passes per check: mean %.1f, max %d (%s); DNS answers per check: max %d\n",
	       total ? (double)sum_passes / total : 0.0, max_passes, max_case, max_lookups);
	printf("RFC 7208 suite, %s mode: %d/%d passed\n", inject ? "inject" : "serve", passed, total);
	suite_free(&s);
	return failed;
}

static const char *suite_path(void)
{
	const char *p = getenv("SPF_SUITE");

	/* The suite lives in the shared test data beside the repository
	 * (CI lays shared/ next to the clone). */
	return p && *p ? p : "../shared/testdata/rfc7208-tests.yml";
}

static void test_rfc7208_suite_inject(void **state)
{
	assert_int_equal(run_suite(suite_path(), 1, getenv("SPF_SUITE_VERBOSE") != NULL,
	                           getenv("SPF_SUITE_CASE")), 0);
}

static void test_rfc7208_suite_serve(void **state)
{
	assert_int_equal(run_suite(suite_path(), 0, getenv("SPF_SUITE_VERBOSE") != NULL,
	                           getenv("SPF_SUITE_CASE")), 0);
}

/* ---- the syntax checker ---- */

static void test_syntax_records(void **state)
{
	static const struct {
		const char *rec, *canon; /* canon NULL: a syntax error */
	} rows[] = {
		{"v=spf1", "v=spf1"},
		{"v=spf1 -all", "v=spf1 -all"},
		{"V=SPF1 -ALL", "v=spf1 -ALL"},
		{"v=spf1  a   -all ", "v=spf1 a -all"},
		{"v=spf1 redirect=_spf.example.com", "v=spf1 redirect=_spf.example.com"},
		{"v=spf1 redirect=x.example.com ip4:192.0.2.1", "v=spf1 ip4:192.0.2.1 redirect=x.example.com"},
		{"v=spf1 redirect=x.example.com -all", "v=spf1 -all"},
		{"v=spf1 -all exp=e.example.com foo=bar", "v=spf1 -all exp=e.example.com"},
		{"v=spf1 a:example.com/24//64 mx/0 mx//128 a//0", "v=spf1 a:example.com/24//64 mx/0 mx//128 a//0"},
		{"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ip6:::ffff:1.2.3.4", "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ip6:::ffff:1.2.3.4"},
		{"v=spf1 exists:%{ir}.%{l1r-}.%{d2}.bl.example.com", "v=spf1 exists:%{ir}.%{l1r-}.%{d2}.bl.example.com"},
		{"v=spf1 a:%{d}", "v=spf1 a:%{d}"},
		{"v=spf1 include:example.com.", "v=spf1 include:example.com."},
		{"v=spf1 a:foo-bar.1-2", "v=spf1 a:foo-bar.1-2"},
		{"v=spf1 default=pass", "v=spf1"},
		{"v=spf1 a:macro%%percent%_%_space%-url-space.example.com", "v=spf1 a:macro%%percent%_%_space%-url-space.example.com"},
		{"v=spf1 exists:%{d129}.%{l00300r-}.%{i128}.x.com ?all exp=%{d99999999999}.com", "v=spf1 exists:%{d128}.%{l128r-}.%{i128}.x.com ?all exp=%{d128}.com"},
		{"v=spf1 a:x.%%{d999}.com", "v=spf1 a:x.%%{d999}.com"},
		{"v=spf1 ptr:", NULL},
		{"v=spf1 a:1.2.3.4", NULL},
		{"v=spf1 a:example", NULL},
		{"v=spf1 a:example.com/33", NULL},
		{"v=spf1 a/24/64", NULL},
		{"v=spf1 a//129", NULL},
		{"v=spf1 a:example.com/024", NULL},
		{"v=spf1 ip4:1.2.3", NULL},
		{"v=spf1 ip4:01.2.3.4", NULL},
		{"v=spf1 ip4:1.2.3.4/33", NULL},
		{"v=spf1 ip6:1.2.3.4", NULL},
		{"v=spf1 ip6:::1/129", NULL},
		{"v=spf1 -all:foo", NULL},
		{"v=spf1 foo", NULL},
		{"v=spf1 1up=foo", NULL},
		{"v=spf1 =all", NULL},
		{"v=spf1 -redirect=x.example.com", NULL},
		{"v=spf1 redirect=a.example.com redirect=b.example.com", NULL},
		{"v=spf1 exp=a.example.com exp=b.example.com", NULL},
		{"v=spf1 exp=", NULL},
		{"v=spf1 exp=-all", NULL},
		{"v=spf1 foo=%abc", NULL},
		{"v=spf1 exists:%{x}.example.com", NULL},
		{"v=spf1 exists:%{d0}.example.com", NULL},
		{"v=spf1 exists:%{c}.example.com", NULL},
		{"v=spf1 exists:%(ir).sbl.example.com", NULL},
		{"v=spf1 a:ctrl.example.com\rptr -all", NULL},
		{"v=spf1 a:\xef\xbb\xbfgarbage.example.net -all", NULL},
		{"v=spf1\t-all", NULL},
		{"v=spf10", NULL},
	};
	char out[512], err[160];

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		int rc = spf_syntax_check(rows[i].rec, strlen(rows[i].rec), NULL, out, sizeof out, err, sizeof err);

		if (rows[i].canon) {
			if (rc != 0)
				fail_msg("%s: %s", rows[i].rec, err);
			assert_string_equal(out, rows[i].canon);
		} else if (rc != -1) {
			fail_msg("accepted: %s", rows[i].rec);
		}
	}
	{
		/* CIDR lengths of 0, which libspf2 rejects, rewritten per client */
		static const struct spf_client v4 = {AF_INET, "192.0.2.1"}, v6 = {AF_INET6, "2001:db8::1"};
		static const char rec[] = "v=spf1 a/0 mx:example.com/0//64 ip4:10.0.0.0/0 ip6:::/0 a//0 a/24//0";

		assert_int_equal(spf_syntax_check(rec, strlen(rec), &v4, out, sizeof out, err, sizeof err), 0);
		assert_string_equal(out, "v=spf1 a:%{d}" SPF_ANY_MARKER " mx:example.com" SPF_ANY_MARKER "//64"
		                         " ip4:192.0.2.1 ip6::: a a/24");
		assert_int_equal(spf_syntax_check(rec, strlen(rec), &v6, out, sizeof out, err, sizeof err), 0);
		assert_string_equal(out, "v=spf1 a mx:example.com//64 ip4:10.0.0.0 ip6:2001:db8::1"
		                         " a:%{d}" SPF_ANY_MARKER " a:%{d}" SPF_ANY_MARKER "/24");
	}
	assert_true(spf_syntax_is_spf1("v=spf1", 6));
	assert_true(spf_syntax_is_spf1("v=spf1 -all", 11));
	assert_false(spf_syntax_is_spf1("v=spf10", 7));
	assert_false(spf_syntax_is_spf1("v=spf1\0 -all", 12));
	assert_false(spf_syntax_is_spf1("v=spf", 5));
}

static void test_syntax_exp_macros(void **state)
{
	static const struct spf_macro_vars v = {
		.s = "strong-bad@email.example.com", .l = "strong-bad", .o = "email.example.com",
		.d = "email.example.com", .i = "192.0.2.3", .p = "mx.example.org",
		.h = "mx.example.org", .c = "192.0.2.3", .r = "rcv.example.net", .t = "1000",
		.v = "in-addr",
	};
	static const struct { const char *in, *out; } rows[] = {
		/* RFC 7208 7.4 */
		{"%{s}", "strong-bad@email.example.com"},
		{"%{o}", "email.example.com"},
		{"%{d}", "email.example.com"},
		{"%{d4}", "email.example.com"},
		{"%{d3}", "email.example.com"},
		{"%{d2}", "example.com"},
		{"%{d1}", "com"},
		{"%{dr}", "com.example.email"},
		{"%{d2r}", "example.email"},
		{"%{l}", "strong-bad"},
		{"%{l-}", "strong.bad"},
		{"%{lr}", "strong-bad"},
		{"%{lr-}", "bad.strong"},
		{"%{l1r-}", "strong"},
		{"%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"},
		{"%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"},
		{"%{c} %{r} %{t} %{p}", "192.0.2.3 rcv.example.net 1000 mx.example.org"},
		{"%% %_ %-", "%   %20"},
		{"%{S}", "strong-bad%40email.example.com"},
		{"l=%{L}", "l=strong-bad"},
	};
	char out[256];

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		assert_int_equal(spf_macro_expand_exp(rows[i].in, strlen(rows[i].in), &v, out, sizeof out), 0);
		assert_string_equal(out, rows[i].out);
	}
	{
		struct spf_macro_vars u = v;

		u.l = "~jack&jill=up-a_b3.c";
		assert_int_equal(spf_macro_expand_exp("%{L}", 4, &u, out, sizeof out), 0);
		assert_string_equal(out, "~jack%26jill%3Dup-a_b3.c");
	}
	assert_int_equal(spf_macro_expand_exp("The %{x}-files.", 15, &v, out, sizeof out), -1);
	assert_int_equal(spf_macro_expand_exp("100%", 4, &v, out, sizeof out), -1);
	assert_int_equal(spf_macro_expand_exp("%{d}", 4, &v, out, 5), -1);
	assert_true(spf_syntax_exp_valid("a b  c", 6));
	assert_false(spf_syntax_exp_valid("a\tb", 3));
	assert_false(spf_syntax_exp_valid("\xef\xbb\xbf" "Explanation", 14));
	assert_true(spf_macro_uses_p("connect from %{p}", 17));
	assert_false(spf_macro_uses_p("100%%{p}", 8));
}

/* ---- the layer: delivery, cancel, identities ---- */

/* A small zone of our own, in the suite's line format. */
static void zone_add(struct zone *z, const char *name, const char *type, const char *f0, const char *f1)
{
	struct zrr *r;

	if (z->n == z->size) {
		z->size = z->size ? z->size * 2 : 16;
		z->r = realloc(z->r, (size_t)z->size * sizeof *z->r);
	}
	r = &z->r[z->n++];
	memset(r, 0, sizeof *r);
	lower_name(r->name, sizeof r->name, name, strlen(name));
	r->type = type_code(type);
	if (f0) {
		r->f[0] = strdup(f0);
		r->flen[0] = strlen(f0);
		r->nf = 1;
	}
	if (f1) {
		r->f[1] = strdup(f1);
		r->flen[1] = strlen(f1);
		r->nf = 2;
	}
}

static void own_zone(struct zone *z)
{
	memset(z, 0, sizeof *z);
	zone_add(z, "example.org", "TXT", "v=spf1 ip4:192.0.2.1 mx include:inc.example.org -all", NULL);
	zone_add(z, "example.org", "MX", "10", "mx.example.org");
	zone_add(z, "mx.example.org", "A", "192.0.2.25", NULL);
	zone_add(z, "inc.example.org", "TXT", "v=spf1 ip6:2001:db8::/32 a:host.example.org", NULL);
	zone_add(z, "host.example.org", "A", "127.0.0.1", NULL);
	zone_add(z, "helo.example.org", "TXT", "v=spf1 a -all", NULL);
	zone_add(z, "helo.example.org", "A", "192.0.2.7", NULL);
	zone_add(z, "loop.example.org", "TXT", "v=spf1 -all", NULL);
	zone_add(z, "bad.example.org", "TXT", "v=spf1 -all exp=exp.example.org", NULL);
	zone_add(z, "exp.example.org", "TXT", "line\r\nbreak %{l}", NULL);
	zone_add(z, "long.example.org", "TXT",
	         "v=spf1 a:a1.example.org a:a2.example.org a:a3.example.org a:a4.example.org "
	         "a:a5.example.org a:a6.example.org a:a7.example.org a:a8.example.org "
	         "a:a9.example.org a:a10.example.org a:a11.example.org -all", NULL);
	zone_add(z, "wide.example.org", "TXT",
	         "v=spf1 a:a1.example.org mx:mx1.example.org include:i1.example.org "
	         "exists:%{i}.a2.example.org include:i2.example.org ptr:example.org -all", NULL);
	zone_add(z, "mx1.example.org", "MX", "10", "a3.example.org");
	zone_add(z, "mx1.example.org", "MX", "20", "a4.example.org");
	zone_add(z, "i1.example.org", "TXT", "v=spf1 a:a5.example.org", NULL);
	zone_add(z, "i2.example.org", "TXT", "v=spf1 a:a6.example.org a:a7.example.org", NULL);
	/* the reasons: which term decided */
	zone_add(z, "r.example.org", "TXT", "v=spf1 ip4:192.0.2.5 redirect=target.example.org", NULL);
	zone_add(z, "target.example.org", "TXT", "v=spf1 ?ip4:192.0.2.6 ~all", NULL);
	zone_add(z, "norr.example.org", "TXT", "v=spf1 redirect=empty.example.org", NULL);
	zone_add(z, "empty.example.org", "TXT", "v=spf1 ip4:192.0.2.77", NULL);
	zone_add(z, "neutral.example.org", "TXT", "v=spf1 ip4:192.0.2.1", NULL);
	zone_add(z, "cidr.example.org", "TXT", "v=spf1 -ip4:192.0.2.0/24 exp=e.example.org +all", NULL);
	for (int i = 1; i <= 11; i++) {
		char n[64];

		snprintf(n, sizeof n, "a%d.example.org", i);
		zone_add(z, n, "A", "192.0.2.200", NULL);
	}
}

struct fixture {
	struct zone z;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	own_zone(&f->z);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	zone_free(&f->z);
	free(f);
	return 0;
}

static void test_cached_and_async(void **state)
{
	struct fixture *f = *state;
	struct env e;
	struct run r;

	/* everything cached: a handle, and the callback after one loop turn
	 * (every pass's answers are hits delivered in that turn) */
	env_open(&e, &f->z, 1);
	assert_non_null(env_check(&e, "192.0.2.25", "helo.example.org", "user@example.org", &r));
	assert_int_equal(r.turns, 1);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.o.res, SPF_RES_PASS);
	assert_string_equal(r.o.identity, "user@example.org");
	assert_string_equal(r.o.domain, "example.org");
	assert_int_equal(r.o.helo_identity, 0);
	/* again: still from the cache */
	assert_non_null(env_check(&e, "192.0.2.99", "helo.example.org", "user@example.org", &r));
	assert_int_equal(r.turns, 1);
	assert_int_equal(r.o.res, SPF_RES_FAIL);
	assert_int_equal(r.o.exp_default, 1);
	assert_string_equal(r.o.explanation, "example.org does not designate 192.0.2.99 as permitted sender");
	env_close(&e);

	/* nothing cached: a handle now, the callback later from the loop */
	env_open(&e, &f->z, 0);
	assert_non_null(env_check(&e, "192.0.2.25", "helo.example.org", "user@example.org", &r));
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.o.res, SPF_RES_PASS);
	env_close(&e);
}

/* Lookups go out in parallel: libspf2 carries on past names not known yet
 * (speculation), and the addresses of MX names come with the MX answer. */
static void test_rounds(void **state)
{
	struct fixture *f = *state;
	struct env e;
	struct run r;

	env_open(&e, &f->z, 0);
	assert_non_null(env_check(&e, "192.0.2.99", "h", "u@wide.example.org", &r));
	assert_int_equal(r.o.res, SPF_RES_FAIL);
	/* the record; a1, MX, i1, exists, i2, PTR (and the MX names with it);
	 * a5, a6, a7; then nothing new */
	assert_int_equal(r.o.passes, 4);
	assert_int_equal(r.o.lookups, 12);
	/* a match in the last term needs all of them */
	env_check(&e, "192.0.2.200", "h", "u@wide.example.org", &r);
	assert_int_equal(r.o.res, SPF_RES_PASS);
	env_close(&e);
}

static void test_cancel(void **state)
{
	struct fixture *f = *state;
	struct env e;
	struct run r = {0};
	struct sockaddr_storage ss;
	struct spf_check *h;

	env_open(&e, &f->z, 0);
	parse_addr("192.0.2.99", &ss);
	h = spf_check_start(e.dns, (struct sockaddr *)&ss, "helo.example.org", "user@example.org",
	                    "rcv", run_cb, &r);
	assert_non_null(h);
	spf_check_cancel(h);
	/* the answers still arrive and must go nowhere */
	for (int i = 0; i < 20; i++)
		event_base_loop(e.base, EVLOOP_ONCE);
	assert_int_equal(r.calls, 0);
	env_close(&e);
}

/* libspf2's internal errors (its handler must not return): the check is
 * temperror, the process lives, the pass's objects are freed (ASan's leak
 * check would see them); after SPF_LIBSPF2_ERRORS_MAX of them libspf2 is
 * left alone and SPF is temperror at once. */
static void test_libspf2_internal_error(void **state)
{
	struct fixture *f = *state;
	struct env e;
	struct run r;

	env_open(&e, &f->z, 1);
	spf_fail_passes_for_tests(1);
	assert_non_null(env_check(&e, "192.0.2.25", "helo.example.org", "user@example.org", &r));
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.o.res, SPF_RES_TEMPERROR);
	assert_string_equal(r.o.reason, "internal error in libspf2");
	/* the next check is whole again */
	env_check(&e, "192.0.2.25", "helo.example.org", "user@example.org", &r);
	assert_int_equal(r.o.res, SPF_RES_PASS);
	/* up to the bound (one above was the first), then libspf2 is left alone */
	for (int i = 1; i < SPF_LIBSPF2_ERRORS_MAX; i++) {
		spf_fail_passes_for_tests(1);
		env_check(&e, "192.0.2.25", "helo.example.org", "user@example.org", &r);
		assert_string_equal(r.o.reason, "internal error in libspf2");
	}
	spf_fail_passes_for_tests(0);
	env_check(&e, "192.0.2.25", "helo.example.org", "user@example.org", &r);
	assert_int_equal(r.o.res, SPF_RES_TEMPERROR);
	assert_string_equal(r.o.reason, "libspf2 off after repeated internal errors");
	assert_int_equal(r.o.passes, 0);
	env_close(&e);
}

static void test_identities(void **state)
{
	struct fixture *f = *state;
	struct env e;
	struct run r;

	env_open(&e, &f->z, 1);
	/* null sender: the HELO identity */
	env_check(&e, "192.0.2.7", "helo.example.org", "", &r);
	assert_int_equal(r.o.res, SPF_RES_PASS);
	assert_int_equal(r.o.helo_identity, 1);
	assert_string_equal(r.o.identity, "postmaster@helo.example.org");
	env_check(&e, "192.0.2.8", "helo.example.org", NULL, &r);
	assert_int_equal(r.o.res, SPF_RES_FAIL);
	/* no HELO, an address literal, a single label: none, no lookup, on
	 * the next loop turn */
	assert_non_null(env_check(&e, "192.0.2.7", "", "", &r));
	assert_int_equal(r.turns, 1);
	assert_int_equal(r.o.res, SPF_RES_NONE);
	assert_non_null(env_check(&e, "192.0.2.7", "[192.0.2.7]", "", &r));
	assert_int_equal(r.turns, 1);
	assert_int_equal(r.o.res, SPF_RES_NONE);
	assert_non_null(env_check(&e, "192.0.2.7", "localhost", "", &r));
	assert_int_equal(r.turns, 1);
	assert_int_equal(r.o.res, SPF_RES_NONE);
	assert_non_null(env_check(&e, "192.0.2.7", "h", "user@[192.0.2.7]", &r));
	assert_int_equal(r.turns, 1);
	assert_int_equal(r.o.res, SPF_RES_NONE);
	/* IPv4-mapped IPv6 is IPv4 */
	env_check(&e, "::ffff:192.0.2.1", "h", "user@example.org", &r);
	assert_int_equal(r.o.res, SPF_RES_PASS);
	/* a loopback client gets no free pass (libspf2 would give one) */
	env_check(&e, "127.0.0.1", "h", "user@loop.example.org", &r);
	assert_int_equal(r.o.res, SPF_RES_FAIL);
	/* an explanation with control characters is not used */
	env_check(&e, "192.0.2.9", "h", "x@bad.example.org", &r);
	assert_int_equal(r.o.res, SPF_RES_FAIL);
	assert_int_equal(r.o.exp_default, 1);
	/* non-ASCII bytes in the local part reach no macro */
	env_check(&e, "192.0.2.9", "h\x01\xff", "\xc3\xa9t\xc3\xa9@bad.example.org", &r);
	assert_int_equal(r.o.res, SPF_RES_FAIL);
	/* 11 DNS-querying terms */
	env_check(&e, "192.0.2.9", "h", "x@long.example.org", &r);
	assert_int_equal(r.o.res, SPF_RES_PERMERROR);
	env_close(&e);
}

/* A result's reason names the term of the checked domain's record that
 * decided it, as published. */
static void test_reasons(void **state)
{
	static const struct {
		const char *client, *helo, *sender;
		enum spf_res res;
		const char *reason;
	} rows[] = {
		{ "192.0.2.1", "h", "u@example.org", SPF_RES_PASS, "mechanism +ip4:192.0.2.1 matched" },
		{ "192.0.2.25", "h", "u@example.org", SPF_RES_PASS, "mechanism +mx matched" },
		{ "127.0.0.1", "h", "u@example.org", SPF_RES_PASS, "mechanism +include:inc.example.org matched" },
		{ "192.0.2.99", "h", "u@example.org", SPF_RES_FAIL, "mechanism -all matched" },
		{ "192.0.2.5", "h", "u@r.example.org", SPF_RES_PASS, "mechanism +ip4:192.0.2.5 matched" },
		{ "192.0.2.6", "h", "u@r.example.org", SPF_RES_NEUTRAL, "via redirect=target.example.org" },
		{ "192.0.2.99", "h", "u@r.example.org", SPF_RES_SOFTFAIL, "via redirect=target.example.org" },
		{ "192.0.2.99", "h", "u@norr.example.org", SPF_RES_NEUTRAL,
		  "redirect=empty.example.org, no mechanism matched there" },
		{ "192.0.2.99", "h", "u@neutral.example.org", SPF_RES_NEUTRAL, "no mechanism matched" },
		{ "192.0.2.9", "h", "u@cidr.example.org", SPF_RES_FAIL, "mechanism -ip4:192.0.2.0/24 matched" },
		{ "10.0.0.1", "h", "u@cidr.example.org", SPF_RES_PASS, "mechanism +all matched" },
		{ "192.0.2.200", "h", "u@wide.example.org", SPF_RES_PASS, "mechanism +a:a1.example.org matched" },
		{ "192.0.2.7", "helo.example.org", "", SPF_RES_PASS, "mechanism +a matched" },
	};
	struct fixture *f = *state;

	for (int inject = 0; inject <= 1; inject++) {
		struct env e;

		env_open(&e, &f->z, inject);
		for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
			struct run r;

			env_check(&e, rows[i].client, rows[i].helo, rows[i].sender, &r);
			if (r.o.res != rows[i].res || strcmp(r.o.reason, rows[i].reason) != 0)
				fail_msg("row %zu (%s from %s): %s \"%s\"", i, rows[i].sender, rows[i].client,
				         spf_res_name(r.o.res), r.o.reason);
		}
		env_close(&e);
	}
}

static void test_syntax_term(void **state)
{
	static const struct {
		const char *rec;
		int i, ret;
		const char *out;
	} rows[] = {
		{ "v=spf1 ip4:192.0.2.1 -all", 0, 1, "+ip4:192.0.2.1" },
		{ "v=spf1 ip4:192.0.2.1 -all", 1, 1, "-all" },
		{ "v=spf1 ip4:192.0.2.1 -all", 2, 0, "" },
		{ "v=spf1 mx redirect=x.example exp=e.example", 0, 1, "+mx" },
		{ "v=spf1 mx redirect=x.example exp=e.example", 1, 2, "redirect=x.example" },
		{ "v=spf1 redirect=x.example mx", 1, 2, "redirect=x.example" },
		{ "v=spf1 Redirect=R.example", 0, 2, "Redirect=R.example" },
		{ "v=spf1 redirect=x.example ~all", 0, 1, "~all" },
		{ "v=spf1 redirect=x.example ~all", 1, 0, "" },  /* ignored beside "all" */
		{ "v=spf1 foo=bar ~include:a=b.example", 0, 1, "~include:a=b.example" },
		{ "v=spf1  ?a:%{d}.x.example  ", 0, 1, "?a:%{d}.x.example" },
		{ "v=spf1 +ip6:2001:db8::/32", 0, 1, "+ip6:2001:db8::/32" },
		{ "v=spf1", 0, 0, "" },
		{ "spf1 -all", 0, 0, "" },
	};
	char out[64], small[6];

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		int r = spf_syntax_term(rows[i].rec, strlen(rows[i].rec), rows[i].i, out, sizeof out);

		if (r != rows[i].ret || strcmp(out, rows[i].out) != 0)
			fail_msg("row %zu: %d \"%s\"", i, r, out);
	}
	assert_int_equal(spf_syntax_term("v=spf1 include:_spf.example.net", 31, 0, small, sizeof small), 1);
	assert_string_equal(small, "+incl");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_syntax_records),
		cmocka_unit_test(test_syntax_exp_macros),
		cmocka_unit_test(test_syntax_term),
		cmocka_unit_test_setup_teardown(test_reasons, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cached_and_async, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_identities, setup, teardown),
		cmocka_unit_test(test_rfc7208_suite_inject),
		cmocka_unit_test(test_rfc7208_suite_serve),
		/* last: it leaves libspf2 off for this process */
		cmocka_unit_test_setup_teardown(test_libspf2_internal_error, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
