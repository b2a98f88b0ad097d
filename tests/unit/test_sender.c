/* test_sender.c - checks/sender.c, the sender-domain check (RFC 5321 5.1,
 * RFC 7505) over checks/dns.c.
 *
 * Cached cases seed the DNS cache with dns_inject() and point the resolver
 * at a loopback UDP socket that nobody answers: each row then also proves
 * that no query went out, and that one loop turn delivers the result.
 * Asynchronous cases run a tiny DNS responder on loopback in the test's own
 * event loop. Nothing sleeps: the loop runs
 * until the callback fired, with a deadline. */
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
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "proxy/lib/text.h"
#include "checks/dns.h"
#include "tests/unit/dnsfix.h"
#include "checks/sender.h"

/* Table rows leave trailing fields out on purpose. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#define NROWS(a) (sizeof(a) / sizeof((a)[0]))

/* What a test seeds: status NODATA/NXDOMAIN/TEMPFAIL go in with abuf NULL;
 * DNS_OK with the reply built from spec, or with raw bytes. */
struct inj {
	int type; /* 0: end of list */
	enum dns_status st;
	const char *spec;
	const unsigned char *raw;
	int rawlen;
};

static void inject(struct fx *f, const char *domain, const struct inj *in, size_t n)
{
	for (size_t i = 0; i < n && in[i].type; i++) {
		struct pkt p;

		if (in[i].raw) {
			assert_int_equal(dns_inject(f->dns, domain, in[i].type, in[i].st, in[i].raw,
			                            in[i].rawlen, 300), 0);
		} else if (in[i].st == DNS_OK) {
			build_reply(&p, 0, ns_r_noerror, domain, (unsigned)in[i].type, in[i].spec);
			assert_int_equal(dns_inject(f->dns, domain, in[i].type, DNS_OK, p.b, (int)p.n, 300),
			                 0);
		} else {
			assert_int_equal(dns_inject(f->dns, domain, in[i].type, in[i].st, NULL, 0, 300), 0);
		}
	}
}

struct got {
	int calls;
	enum sender_res res;
};

static void on_result(void *arg, enum sender_res r)
{
	struct got *g = arg;

	g->calls++;
	g->res = r;
}

static int called(void *arg)
{
	return ((struct got *)arg)->calls > 0;
}

/* ---- pure: names and MX classification ---- */

static void test_res_name(void **state)
{
	static const struct {
		enum sender_res r;
		const char *name;
	} rows[] = {
		{ SD_PASS, "pass" },
		{ SD_NONE, "none" },
		{ SD_NXDOMAIN, "nxdomain" },
		{ SD_NORECORDS, "norecords" },
		{ SD_NULLMX, "nullmx" },
		{ SD_TEMPFAIL, "tempfail" },
	};

	for (size_t i = 0; i < NROWS(rows); i++) {
		const char *n = sender_res_name(rows[i].r);

		assert_non_null(n);
		assert_string_equal(n, rows[i].name);
	}
}

static void test_mx_classify(void **state)
{
	static const struct {
		const char *what;
		unsigned rcode, qtype;
		const char *spec;
		int want;
	} rows[] = {
		{ "one MX", ns_r_noerror, ns_t_mx, "mx 10 mail.example.net", 1 },
		{ "two MX", ns_r_noerror, ns_t_mx, "mx 10 a.example.net; mx 20 b.example.net", 1 },
		{ "null MX", ns_r_noerror, ns_t_mx, "mx 0 .", 0 },
		{ "null MX twice", ns_r_noerror, ns_t_mx, "mx 0 .; mx 0 .", 0 },
		{ "null MX then MX", ns_r_noerror, ns_t_mx, "mx 0 .; mx 10 mail.example.net", 1 },
		{ "MX then null MX", ns_r_noerror, ns_t_mx, "mx 10 mail.example.net; mx 0 .", 1 },
		/* preference 0 alone does not make a null MX: the exchange does */
		{ "MX 0 host", ns_r_noerror, ns_t_mx, "mx 0 mail.example.net", 1 },
		{ "no answer", ns_r_noerror, ns_t_mx, "", -1 },
		{ "A records only", ns_r_noerror, ns_t_mx, "a 192.0.2.1", -1 },
	};
	struct pkt p;

	for (size_t i = 0; i < NROWS(rows); i++) {
		build_reply(&p, 1, rows[i].rcode, "example.com", rows[i].qtype, rows[i].spec);
		if (sender_mx_classify(p.b, (int)p.n) != rows[i].want)
			fail_msg("row %zu (%s): got %d want %d", i, rows[i].what,
			         sender_mx_classify(p.b, (int)p.n), rows[i].want);
	}
}

/* Cut, empty and damaged replies are unparsable, never a null MX. */
static void test_mx_classify_damaged(void **state)
{
	static const unsigned char junk[] = { 0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02 };
	struct pkt p;
	unsigned char *copy;

	assert_int_equal(sender_mx_classify(junk, (int)sizeof junk), -1);
	assert_int_equal(sender_mx_classify(junk, 0), -1);
	build_reply(&p, 1, ns_r_noerror, "example.com", ns_t_mx, "mx 10 mail.example.net");
	assert_int_equal(sender_mx_classify(p.b, (int)p.n), 1);
	/* every prefix that cuts the answer RR: -1 (read from an exact-size
	 * heap copy, so ASan sees any read past the end) */
	for (size_t cut = 0; cut < p.n; cut++) {
		copy = malloc(cut ? cut : 1);
		assert_non_null(copy);
		memcpy(copy, p.b, cut);
		if (sender_mx_classify(copy, (int)cut) != -1)
			fail_msg("prefix of %zu bytes: got %d", cut, sender_mx_classify(copy, (int)cut));
		free(copy);
	}
	/* ancount says 2, only one RR present */
	p.b[7] = 2;
	assert_int_equal(sender_mx_classify(p.b, (int)p.n), -1);
}

/* ---- every answer from the cache: one loop turn ---- */

/* A handle and no callback from sender_check_start; exactly one callback
 * after one loop turn, no query. */
static void check_cached(struct fx *f, const char *domain, enum sender_res want, const char *what)
{
	struct got g = { 0 };
	struct sender_check *c = sender_check_start(f->dns, domain, on_result, &g);

	if (c == NULL)
		fail_msg("%s: no handle", what);
	if (g.calls != 0)
		fail_msg("%s: called before sender_check_start returned", what);
	event_base_loop(f->base, EVLOOP_ONCE);
	if (g.calls != 1)
		fail_msg("%s: %d callbacks after one turn", what, g.calls);
	if (g.res != want)
		fail_msg("%s: got %s want %s", what, sender_res_name(g.res), sender_res_name(want));
	run_idle(f);
	assert_int_equal(g.calls, 1);
}

static void test_cached(void **state)
{
	static const unsigned char junk[] = { 0x12, 0x34, 0x81, 0x80, 0x00 };
	static const struct {
		const char *what, *domain;
		struct inj inj[3];
		enum sender_res want;
	} rows[] = {
		{ "MX", "example.com",
		  { { ns_t_mx, DNS_OK, "mx 10 mail.example.com" } }, SD_PASS },
		{ "two MX", "example.com",
		  { { ns_t_mx, DNS_OK, "mx 10 a.example.com; mx 20 b.example.com" } }, SD_PASS },
		{ "null MX", "example.com",
		  { { ns_t_mx, DNS_OK, "mx 0 ." } }, SD_NULLMX },
		/* RFC 7505 3: a null MX beside a real one is a misconfiguration;
		 * the real one wins */
		{ "null MX + MX", "example.com",
		  { { ns_t_mx, DNS_OK, "mx 0 .; mx 10 mail.example.com" } }, SD_PASS },
		{ "MX + null MX", "example.com",
		  { { ns_t_mx, DNS_OK, "mx 10 mail.example.com; mx 0 ." } }, SD_PASS },
		/* the null MX ends the check: A/AAAA not consulted (not injected:
		 * a lookup would go to the network) */
		{ "null MX ignores A", "example.com",
		  { { ns_t_mx, DNS_OK, "mx 0 ." } }, SD_NULLMX },
		{ "no MX, A", "example.com",
		  { { ns_t_mx, DNS_NODATA }, { ns_t_a, DNS_OK, "a 192.0.2.1" },
		    { ns_t_aaaa, DNS_NODATA } }, SD_PASS },
		{ "no MX, AAAA only", "example.com",
		  { { ns_t_mx, DNS_NODATA }, { ns_t_a, DNS_NODATA },
		    { ns_t_aaaa, DNS_OK, "aaaa 2001:db8::25" } }, SD_PASS },
		{ "no MX, A and AAAA", "example.com",
		  { { ns_t_mx, DNS_NODATA }, { ns_t_a, DNS_OK, "a 192.0.2.1" },
		    { ns_t_aaaa, DNS_OK, "aaaa 2001:db8::25" } }, SD_PASS },
		{ "NODATA everywhere", "example.com",
		  { { ns_t_mx, DNS_NODATA }, { ns_t_a, DNS_NODATA }, { ns_t_aaaa, DNS_NODATA } },
		  SD_NORECORDS },
		{ "NXDOMAIN at MX", "example.com",
		  { { ns_t_mx, DNS_NXDOMAIN } }, SD_NXDOMAIN },
		{ "TEMPFAIL at MX", "example.com",
		  { { ns_t_mx, DNS_TEMPFAIL } }, SD_TEMPFAIL },
		{ "no MX, TEMPFAIL A", "example.com",
		  { { ns_t_mx, DNS_NODATA }, { ns_t_a, DNS_TEMPFAIL }, { ns_t_aaaa, DNS_NODATA } },
		  SD_TEMPFAIL },
		{ "no MX, TEMPFAIL AAAA", "example.com",
		  { { ns_t_mx, DNS_NODATA }, { ns_t_a, DNS_NODATA }, { ns_t_aaaa, DNS_TEMPFAIL } },
		  SD_TEMPFAIL },
		/* an address is an address, whatever happened to the other family */
		{ "no MX, TEMPFAIL A, AAAA", "example.com",
		  { { ns_t_mx, DNS_NODATA }, { ns_t_a, DNS_TEMPFAIL },
		    { ns_t_aaaa, DNS_OK, "aaaa 2001:db8::25" } }, SD_PASS },
		{ "no MX, A, TEMPFAIL AAAA", "example.com",
		  { { ns_t_mx, DNS_NODATA }, { ns_t_a, DNS_OK, "a 192.0.2.1" },
		    { ns_t_aaaa, DNS_TEMPFAIL } }, SD_PASS },
		{ "no MX, NXDOMAIN A and AAAA", "example.com",
		  { { ns_t_mx, DNS_NODATA }, { ns_t_a, DNS_NXDOMAIN }, { ns_t_aaaa, DNS_NXDOMAIN } },
		  SD_NXDOMAIN },
		{ "no MX, NXDOMAIN A, NODATA AAAA", "example.com",
		  { { ns_t_mx, DNS_NODATA }, { ns_t_a, DNS_NXDOMAIN }, { ns_t_aaaa, DNS_NODATA } },
		  SD_NORECORDS },
		/* an MX answer we cannot read: the A/AAAA fallback decides */
		{ "unreadable MX, A", "example.com",
		  { { ns_t_mx, DNS_OK, NULL, junk, (int)sizeof junk }, { ns_t_a, DNS_OK, "a 192.0.2.1" },
		    { ns_t_aaaa, DNS_NODATA } }, SD_PASS },
		{ "unreadable MX, nothing", "example.com",
		  { { ns_t_mx, DNS_OK, NULL, junk, (int)sizeof junk }, { ns_t_a, DNS_NODATA },
		    { ns_t_aaaa, DNS_NODATA } }, SD_NORECORDS },
		/* the domain is normalised before the cache is asked */
		{ "case and trailing dot", "Example.COM.",
		  { { ns_t_mx, DNS_OK, "mx 10 mail.example.com" } }, SD_PASS },
		{ "subdomain", "Mail.Sub.Example.ORG",
		  { { ns_t_mx, DNS_NXDOMAIN } }, SD_NXDOMAIN },
	};

	for (size_t i = 0; i < NROWS(rows); i++) {
		struct fx f;
		char what[128];
		char key[DNS_NAME_MAX + 1];

		fx_start(&f);
		assert_int_equal(dns_normalise(rows[i].domain, key, sizeof key), 0);
		inject(&f, key, rows[i].inj, NROWS(rows[i].inj));
		snprintf(what, sizeof what, "row %zu (%s)", i, rows[i].what);
		check_cached(&f, rows[i].domain, rows[i].want, what);
		if (stats(&f).queries != 0 || sink_count(&f) != 0)
			fail_msg("%s: went to the network", what);
		fx_stop(&f);
	}
}

/* Not checked at all: no DNS lookup, not even from the cache. */
static void test_not_checked(void **state)
{
	static const struct {
		const char *domain;
		enum sender_res want;
	} rows[] = {
		{ NULL, SD_NONE },                      /* null sender */
		{ "", SD_NONE },                        /* null sender */
		{ "[1.2.3.4]", SD_NONE },               /* address literal */
		{ "[IPv6:2001:db8::1]", SD_NONE },
		{ ".", SD_NXDOMAIN },                   /* not a name */
	};
	struct fx f;

	fx_start(&f);
	/* a cached answer for the literal must not be used */
	assert_int_equal(dns_inject(f.dns, "[1.2.3.4]", ns_t_mx, DNS_NXDOMAIN, NULL, 0, 300), 0);
	for (size_t i = 0; i < NROWS(rows); i++) {
		char what[64];
		struct dns_stats st;

		snprintf(what, sizeof what, "row %zu (%s)", i, rows[i].domain ? rows[i].domain : "NULL");
		check_cached(&f, rows[i].domain, rows[i].want, what);
		dns_get_stats(f.dns, &st);
		assert_int_equal(st.hits, 0);
		assert_int_equal(st.queries, 0);
	}
	assert_int_equal(sink_count(&f), 0);
	fx_stop(&f);
}

/* Longer than a DNS name may be: answered on the next turn, nothing sent. */
static void test_name_too_long(void **state)
{
	struct fx f;
	char name[DNS_NAME_MAX + 10];

	fx_start(&f);
	memset(name, 'a', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	for (size_t i = 63; i < sizeof name - 1; i += 64)
		name[i] = '.';
	check_cached(&f, name, SD_NXDOMAIN, "254+ characters");
	assert_int_equal(stats(&f).queries, 0);
	assert_int_equal(sink_count(&f), 0);
	fx_stop(&f);
}

/* Each check reads the cache afresh: one cache, many checks, one turn. */
static void test_cached_repeat(void **state)
{
	struct fx f;
	struct got g[3] = { { 0 } };
	struct pkt p;

	fx_start(&f);
	build_reply(&p, 0, ns_r_noerror, "nullmx.example", ns_t_mx, "mx 0 .");
	assert_int_equal(dns_inject(f.dns, "nullmx.example", ns_t_mx, DNS_OK, p.b, (int)p.n, 300), 0);
	for (int i = 0; i < 3; i++) {
		assert_non_null(sender_check_start(f.dns, "nullmx.example", on_result, &g[i]));
		assert_int_equal(g[i].calls, 0);
	}
	event_base_loop(f.base, EVLOOP_ONCE);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(g[i].calls, 1);
		assert_int_equal(g[i].res, SD_NULLMX);
	}
	assert_int_equal(stats(&f).queries, 0);
	fx_stop(&f);
}

/* ---- asynchronous: a DNS responder on loopback, in the same loop ---- */

static void test_async(void **state)
{
	static const struct {
		const char *what, *domain;
		struct zrec zone[4];
		struct inj inj[3];
		enum sender_res want;
		int queries; /* that reached the server */
	} rows[] = {
		{ "MX", "a.test",
		  { { "a.test", ns_t_mx, ns_r_noerror, "mx 10 mx.a.test" } }, { { 0 } }, SD_PASS, 1 },
		{ "null MX", "a.test",
		  { { "a.test", ns_t_mx, ns_r_noerror, "mx 0 ." } }, { { 0 } }, SD_NULLMX, 1 },
		{ "null MX + MX", "a.test",
		  { { "a.test", ns_t_mx, ns_r_noerror, "mx 0 .; mx 5 mx.a.test" } }, { { 0 } },
		  SD_PASS, 1 },
		{ "NXDOMAIN", "a.test",
		  { { "a.test", ns_t_mx, ns_r_nxdomain, NULL } }, { { 0 } }, SD_NXDOMAIN, 1 },
		{ "SERVFAIL", "a.test",
		  { { "a.test", ns_t_mx, ns_r_servfail, NULL } }, { { 0 } }, SD_TEMPFAIL, 1 },
		{ "timeout", "a.test",
		  { { "a.test", ns_t_mx, ns_r_noerror, "silent" } }, { { 0 } }, SD_TEMPFAIL, 1 },
		{ "no MX, A", "a.test",
		  { { "a.test", ns_t_mx, ns_r_noerror, "" },
		    { "a.test", ns_t_a, ns_r_noerror, "a 192.0.2.7" },
		    { "a.test", ns_t_aaaa, ns_r_noerror, "" } }, { { 0 } }, SD_PASS, 3 },
		{ "no MX, AAAA only", "a.test",
		  { { "a.test", ns_t_mx, ns_r_noerror, "" },
		    { "a.test", ns_t_a, ns_r_noerror, "" },
		    { "a.test", ns_t_aaaa, ns_r_noerror, "aaaa 2001:db8::7" } }, { { 0 } }, SD_PASS, 3 },
		{ "NODATA everywhere", "a.test",
		  { { "a.test", ns_t_mx, ns_r_noerror, "" },
		    { "a.test", ns_t_a, ns_r_noerror, "" },
		    { "a.test", ns_t_aaaa, ns_r_noerror, "" } }, { { 0 } }, SD_NORECORDS, 3 },
		/* AAAA answers first, A only at its deadline: whichever comes
		 * last decides, the first one's handle is no longer ours */
		{ "no MX, AAAA, A times out", "a.test",
		  { { "a.test", ns_t_mx, ns_r_noerror, "" },
		    { "a.test", ns_t_a, ns_r_noerror, "silent" },
		    { "a.test", ns_t_aaaa, ns_r_noerror, "aaaa 2001:db8::7" } }, { { 0 } }, SD_PASS, 3 },
		{ "no MX, A, AAAA times out", "a.test",
		  { { "a.test", ns_t_mx, ns_r_noerror, "" },
		    { "a.test", ns_t_a, ns_r_noerror, "a 192.0.2.7" },
		    { "a.test", ns_t_aaaa, ns_r_noerror, "silent" } }, { { 0 } }, SD_PASS, 3 },
		{ "no MX, NODATA A, AAAA times out", "a.test",
		  { { "a.test", ns_t_mx, ns_r_noerror, "" },
		    { "a.test", ns_t_a, ns_r_noerror, "" },
		    { "a.test", ns_t_aaaa, ns_r_noerror, "silent" } }, { { 0 } }, SD_TEMPFAIL, 3 },
		{ "no MX, SERVFAIL A", "a.test",
		  { { "a.test", ns_t_mx, ns_r_noerror, "" },
		    { "a.test", ns_t_a, ns_r_servfail, NULL },
		    { "a.test", ns_t_aaaa, ns_r_noerror, "" } }, { { 0 } }, SD_TEMPFAIL, 3 },
		/* MX from the cache, A and AAAA from the network */
		{ "cached NODATA MX, A from network", "a.test",
		  { { "a.test", ns_t_a, ns_r_noerror, "a 192.0.2.7" },
		    { "a.test", ns_t_aaaa, ns_r_noerror, "" } },
		  { { ns_t_mx, DNS_NODATA } }, SD_PASS, 2 },
		/* MX from the cache, A cached, AAAA from the network */
		{ "cached MX and A, AAAA from network", "a.test",
		  { { "a.test", ns_t_aaaa, ns_r_noerror, "aaaa 2001:db8::7" } },
		  { { ns_t_mx, DNS_NODATA }, { ns_t_a, DNS_NODATA } }, SD_PASS, 1 },
		/* MX from the network, then A and AAAA both from the cache: the
		 * result is known inside mx_cb's own lookups */
		{ "MX from network, A/AAAA cached", "a.test",
		  { { "a.test", ns_t_mx, ns_r_noerror, "" } },
		  { { ns_t_a, DNS_TEMPFAIL }, { ns_t_aaaa, DNS_NODATA } }, SD_TEMPFAIL, 1 },
		{ "MX from network, A cached", "a.test",
		  { { "a.test", ns_t_mx, ns_r_noerror, "" },
		    { "a.test", ns_t_aaaa, ns_r_noerror, "" } },
		  { { ns_t_a, DNS_OK, "a 192.0.2.7" } }, SD_PASS, 2 },
	};

	for (size_t i = 0; i < NROWS(rows); i++) {
		struct nfx n;
		struct got g = { 0 };
		struct sender_check *c;

		nfx_start(&n, rows[i].zone, 300);
		inject(&n.f, rows[i].domain, rows[i].inj, NROWS(rows[i].inj));
		c = sender_check_start(n.f.dns, rows[i].domain, on_result, &g);
		if (c == NULL)
			fail_msg("row %zu (%s): no handle", i, rows[i].what);
		assert_int_equal(g.calls, 0);
		if (run_until(&n.f, called, &g, 5000) < 0)
			fail_msg("row %zu (%s): no callback", i, rows[i].what);
		run_idle(&n.f);
		if (g.calls != 1 || g.res != rows[i].want)
			fail_msg("row %zu (%s): %d calls, got %s want %s", i, rows[i].what, g.calls,
			         sender_res_name(g.res), sender_res_name(rows[i].want));
		if (n.srv.queries != rows[i].queries)
			fail_msg("row %zu (%s): %d queries, want %d", i, rows[i].what, n.srv.queries,
			         rows[i].queries);
		nfx_stop(&n);
	}
}

/* MX first; A and AAAA only after "no MX", and then in parallel. */
static void test_async_order(void **state)
{
	static const struct zrec zone[] = {
		{ "b.test", ns_t_mx, ns_r_noerror, "" },
		{ "b.test", ns_t_a, ns_r_noerror, "" },
		{ "b.test", ns_t_aaaa, ns_r_noerror, "aaaa 2001:db8::8" },
		{ NULL },
	};
	struct nfx n;
	struct got g = { 0 };
	char want[32];

	nfx_start(&n, zone, 300);
	assert_non_null(sender_check_start(n.f.dns, "B.Test.", on_result, &g));
	assert_int_equal(run_until(&n.f, called, &g, 5000), 0);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.res, SD_PASS);
	assert_int_equal(n.srv.queries, 3);
	snprintf(want, sizeof want, "b.test/%d", ns_t_mx);
	assert_string_equal(n.srv.asked[0], want);
	/* the answers are cached: the same check again takes one turn */
	memset(&g, 0, sizeof g);
	assert_non_null(sender_check_start(n.f.dns, "b.test", on_result, &g));
	assert_int_equal(g.calls, 0);
	event_base_loop(n.f.base, EVLOOP_ONCE);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.res, SD_PASS);
	assert_int_equal(n.srv.queries, 3);
	nfx_stop(&n);
}

/* Two checks of one domain at once share the queries; both are told. */
static void test_async_two_checks(void **state)
{
	static const struct zrec zone[] = {
		{ "c.test", ns_t_mx, ns_r_noerror, "mx 0 ." },
		{ NULL },
	};
	struct nfx n;
	struct got g[2] = { { 0 } };

	nfx_start(&n, zone, 300);
	assert_non_null(sender_check_start(n.f.dns, "c.test", on_result, &g[0]));
	assert_non_null(sender_check_start(n.f.dns, "c.test", on_result, &g[1]));
	assert_int_equal(run_until(&n.f, called, &g[1], 5000), 0);
	run_idle(&n.f);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(g[i].calls, 1);
		assert_int_equal(g[i].res, SD_NULLMX);
	}
	assert_int_equal(n.srv.queries, 1);
	nfx_stop(&n);
}

/* Cancelled at each stage: the callback never runs, the answers still
 * arrive (and fill the cache) and nothing touches the freed check. */
static void test_cancel(void **state)
{
	static const struct {
		const char *what;
		struct zrec zone[4];
		struct inj inj[2];
		unsigned long entries_before; /* wait for these before cancelling */
		unsigned long entries_after;  /* then wait for these */
	} rows[] = {
		{ "during MX",
		  { { "d.test", ns_t_mx, ns_r_noerror, "mx 10 mx.d.test" } }, { { 0 } }, 0, 1 },
		{ "during A and AAAA",
		  { { "d.test", ns_t_a, ns_r_noerror, "a 192.0.2.9" },
		    { "d.test", ns_t_aaaa, ns_r_noerror, "" } },
		  { { ns_t_mx, DNS_NODATA } }, 0, 3 },
		/* A answered, AAAA still out (times out): only AAAA is cancelled */
		{ "after A, during AAAA",
		  { { "d.test", ns_t_a, ns_r_noerror, "a 192.0.2.9" },
		    { "d.test", ns_t_aaaa, ns_r_noerror, "silent" } },
		  { { ns_t_mx, DNS_NODATA } }, 2, 3 },
		{ "after AAAA, during A",
		  { { "d.test", ns_t_a, ns_r_noerror, "silent" },
		    { "d.test", ns_t_aaaa, ns_r_noerror, "aaaa 2001:db8::9" } },
		  { { ns_t_mx, DNS_NODATA } }, 2, 3 },
		/* MX answered (NODATA) from the network, A/AAAA then out */
		{ "after MX, during A and AAAA",
		  { { "d.test", ns_t_mx, ns_r_noerror, "" },
		    { "d.test", ns_t_a, ns_r_noerror, "silent" },
		    { "d.test", ns_t_aaaa, ns_r_noerror, "silent" } },
		  { { 0 } }, 1, 3 },
	};

	for (size_t i = 0; i < NROWS(rows); i++) {
		struct nfx n;
		struct got g = { 0 };
		struct sender_check *c;
		struct want_entries w = { &n.f, rows[i].entries_before };

		nfx_start(&n, rows[i].zone, 200);
		inject(&n.f, "d.test", rows[i].inj, NROWS(rows[i].inj));
		c = sender_check_start(n.f.dns, "d.test", on_result, &g);
		assert_non_null(c);
		if (rows[i].inj[0].type) /* one turn: the cached MX in, A and AAAA out */
			event_base_loop(n.f.base, EVLOOP_ONCE);
		if (run_until(&n.f, has_entries, &w, 5000) < 0)
			fail_msg("row %zu (%s): answers before cancel never came", i, rows[i].what);
		if (g.calls != 0)
			fail_msg("row %zu (%s): called before cancel", i, rows[i].what);
		sender_check_cancel(c);
		w.n = rows[i].entries_after;
		if (run_until(&n.f, has_entries, &w, 5000) < 0)
			fail_msg("row %zu (%s): answers after cancel never came", i, rows[i].what);
		run_idle(&n.f);
		if (g.calls != 0)
			fail_msg("row %zu (%s): callback after cancel", i, rows[i].what);
		nfx_stop(&n);
	}
	sender_check_cancel(NULL);
}

/* Cancel, then free the resolver at once with the queries still out. */
static void test_cancel_then_free(void **state)
{
	static const struct zrec zone[] = {
		{ "e.test", ns_t_mx, ns_r_noerror, "silent" },
		{ NULL },
	};
	struct nfx n;
	struct got g = { 0 };
	struct sender_check *c;

	nfx_start(&n, zone, 200);
	c = sender_check_start(n.f.dns, "e.test", on_result, &g);
	assert_non_null(c);
	sender_check_cancel(c);
	nfx_stop(&n);
	assert_int_equal(g.calls, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_res_name),
		cmocka_unit_test(test_mx_classify),
		cmocka_unit_test(test_mx_classify_damaged),
		cmocka_unit_test(test_cached),
		cmocka_unit_test(test_not_checked),
		cmocka_unit_test(test_name_too_long),
		cmocka_unit_test(test_cached_repeat),
		cmocka_unit_test(test_async),
		cmocka_unit_test(test_async_order),
		cmocka_unit_test(test_async_two_checks),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_cancel_then_free),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
