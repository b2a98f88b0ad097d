/* test_rdns.c - checks/rdns.c, forward-confirmed reverse DNS: the PTR names
 * of the client's address, then the A (IPv4) or AAAA (IPv6) records of each
 * name; a name whose records hold the client's address is confirmed.
 *
 * Cached cases seed the DNS cache with dns_inject() (reply packets built by
 * dnsfix.h) and point the resolver at a loopback UDP socket that nobody
 * answers: each row then also proves that no query went out, so a lookup of
 * the wrong name or type fails the row, and that one loop turn delivers.
 * Asynchronous cases run a tiny DNS responder on loopback in the test's own
 * event loop. Nothing sleeps: the loop runs until the callback fired, with
 * a deadline. */
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
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "checks/dns.h"
#include "tests/unit/dnsfix.h"
#include "checks/rdns.h"

/* Table rows leave trailing fields out on purpose. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#define NROWS(a) (sizeof(a) / sizeof((a)[0]))

/* The reverse names of the clients used below. */
#define P4 "10.2.0.192.in-addr.arpa" /* 192.0.2.10 */
#define P6 "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa" /* 2001:db8::25 */

/* One answer to seed: DNS_OK with a reply built from spec (or "junk": bytes
 * no parser accepts); other statuses go in without a reply. */
struct rr {
	const char *name; /* NULL: end of list */
	int type;
	enum dns_status st;
	const char *spec;
};

static void inject(struct fx *f, const struct rr *in, size_t n)
{
	static const unsigned char junk[] = { 0x12, 0x34, 0x81, 0x80, 0x00 };

	for (size_t i = 0; i < n && in[i].name; i++) {
		struct pkt p;

		if (in[i].st == DNS_OK && in[i].spec && strcmp(in[i].spec, "junk") == 0) {
			assert_int_equal(dns_inject(f->dns, in[i].name, in[i].type, DNS_OK, junk,
			                            (int)sizeof junk, 300), 0);
		} else if (in[i].st == DNS_OK) {
			build_reply(&p, 0, ns_r_noerror, in[i].name, (unsigned)in[i].type, in[i].spec);
			assert_int_equal(dns_inject(f->dns, in[i].name, in[i].type, DNS_OK, p.b, (int)p.n,
			                            300), 0);
		} else {
			assert_int_equal(dns_inject(f->dns, in[i].name, in[i].type, in[i].st, NULL, 0, 300),
			                 0);
		}
	}
}

/* ---- the callback ---- */

static int in_start; /* set around rdns_start */

struct got {
	int calls;
	int during_start; /* calls made before rdns_start returned */
	enum rdns_res res;
	char name[DNS_NAME_MAX + 2];
	int name_null;
};

static void on_result(void *arg, enum rdns_res res, const char *name)
{
	struct got *g = arg;

	g->calls++;
	g->during_start += in_start;
	g->res = res;
	g->name_null = name == NULL;
	snprintf(g->name, sizeof g->name, "%s", name ? name : "");
}

static struct rdns_check *start(struct dns *d, const struct sockaddr *client, struct got *g)
{
	struct rdns_check *c;

	in_start = 1;
	c = rdns_start(d, client, on_result, g);
	in_start = 0;
	return c;
}

static int called(void *arg)
{
	return ((struct got *)arg)->calls > 0;
}

/* ---- pure: names ---- */

static void test_res_name(void **state)
{
	assert_string_equal(rdns_res_name(RDNS_OK), "ok");
	assert_string_equal(rdns_res_name(RDNS_NONE), "none");
	assert_string_equal(rdns_res_name(RDNS_TEMPFAIL), "tempfail");
}

static void test_ptr_name(void **state)
{
	static const struct {
		const char *ip, *want;
	} rows[] = {
		{ "192.0.2.10", P4 },
		{ "10.0.0.255", "255.0.0.10.in-addr.arpa" },
		{ "0.0.0.0", "0.0.0.0.in-addr.arpa" },
		{ "255.255.255.255", "255.255.255.255.in-addr.arpa" },
		{ "2001:db8::25", P6 },
		{ "2001:db8::1", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa" },
		/* hex digits in lower case, nibbles low first */
		{ "2001:DB8:ABCD:EF01::FE",
		  "e.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.f.e.d.c.b.a.8.b.d.0.1.0.0.2.ip6.arpa" },
		{ "::1", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa" },
		/* an IPv4 client over IPv6 is asked about as IPv4 */
		{ "::ffff:192.0.2.10", P4 },
		{ "::ffff:1.2.3.4", "4.3.2.1.in-addr.arpa" },
		/* IPv4-compatible (deprecated), not mapped: an IPv6 name */
		{ "::192.0.2.10", "a.0.2.0.0.0.0.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa" },
	};

	for (size_t i = 0; i < NROWS(rows); i++) {
		struct sockaddr_storage ss;
		char out[128];

		memset(out, 'x', sizeof out);
		if (rdns_ptr_name(addr(rows[i].ip, &ss), out, sizeof out) != 0)
			fail_msg("row %zu (%s): -1", i, rows[i].ip);
		if (strcmp(out, rows[i].want) != 0)
			fail_msg("row %zu (%s): got '%s' want '%s'", i, rows[i].ip, out, rows[i].want);
	}
}

/* Not an IP address, or no room: -1. */
static void test_ptr_name_refused(void **state)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct sockaddr_storage unspec = { .ss_family = AF_UNSPEC };
	struct sockaddr_storage ss;
	char out[128], tiny[16];

	snprintf(un.sun_path, sizeof un.sun_path, "/tmp/x");
	assert_int_equal(rdns_ptr_name((const struct sockaddr *)&un, out, sizeof out), -1);
	assert_int_equal(rdns_ptr_name((const struct sockaddr *)&unspec, out, sizeof out), -1);
	/* a buffer too small for the longest name is refused, not overrun */
	memset(tiny, 'x', sizeof tiny);
	assert_int_equal(rdns_ptr_name(addr("2001:db8::1", &ss), tiny, sizeof tiny), -1);
	assert_int_equal(rdns_ptr_name(addr("192.0.2.10", &ss), tiny, sizeof tiny), -1);
	for (size_t i = 0; i < sizeof tiny; i++)
		assert_int_equal(tiny[i], 'x');
	/* the longest name (73 bytes with its NUL) fits a buffer of 74 */
	assert_int_equal(rdns_ptr_name(addr("2001:db8::1", &ss), out, 74), 0);
	assert_int_equal(strlen(out), 72);
}

/* ---- every answer from the cache: one loop turn ---- */

static void test_cached(void **state)
{
	static const struct {
		const char *what, *client;
		struct rr inj[6];
		enum rdns_res want;
		const char *want_name;
	} rows[] = {
		/* the name as the callback gets it is normalised */
		{ "confirmed", "192.0.2.10",
		  { { P4, ns_t_ptr, DNS_OK, "ptr Mail.Example.TEST" },
		    { "mail.example.test", ns_t_a, DNS_OK, "a 192.0.2.10" } },
		  RDNS_OK, "mail.example.test" },
		{ "confirmed among other addresses", "192.0.2.10",
		  { { P4, ns_t_ptr, DNS_OK, "ptr mail.example.test" },
		    { "mail.example.test", ns_t_a, DNS_OK, "a 192.0.2.99; a 192.0.2.10; a 192.0.2.11" } },
		  RDNS_OK, "mail.example.test" },
		/* the forward answer reaches the address through a CNAME: the
		 * PTR name is the one confirmed, not the CNAME's target */
		{ "A through a CNAME", "192.0.2.10",
		  { { P4, ns_t_ptr, DNS_OK, "ptr mail.example.test" },
		    { "mail.example.test", ns_t_a, DNS_OK,
		      "cname host.example.net; a 192.0.2.10 host.example.net" } },
		  RDNS_OK, "mail.example.test" },
		/* RFC 2317 classless delegation: the PTR name is a CNAME */
		{ "PTR through a CNAME (RFC 2317)", "192.0.2.10",
		  { { P4, ns_t_ptr, DNS_OK,
		      "cname 10.0-25.2.0.192.in-addr.arpa; ptr host.example.test 10.0-25.2.0.192.in-addr.arpa" },
		    { "host.example.test", ns_t_a, DNS_OK, "a 192.0.2.10" } },
		  RDNS_OK, "host.example.test" },
		{ "A elsewhere", "192.0.2.10",
		  { { P4, ns_t_ptr, DNS_OK, "ptr mail.example.test" },
		    { "mail.example.test", ns_t_a, DNS_OK, "a 192.0.2.11" } },
		  RDNS_NONE, "" },
		{ "A NXDOMAIN", "192.0.2.10",
		  { { P4, ns_t_ptr, DNS_OK, "ptr mail.example.test" },
		    { "mail.example.test", ns_t_a, DNS_NXDOMAIN } },
		  RDNS_NONE, "" },
		{ "A NODATA", "192.0.2.10",
		  { { P4, ns_t_ptr, DNS_OK, "ptr mail.example.test" },
		    { "mail.example.test", ns_t_a, DNS_NODATA } },
		  RDNS_NONE, "" },
		{ "A unreadable", "192.0.2.10",
		  { { P4, ns_t_ptr, DNS_OK, "ptr mail.example.test" },
		    { "mail.example.test", ns_t_a, DNS_OK, "junk" } },
		  RDNS_NONE, "" },
		{ "no PTR (NXDOMAIN)", "192.0.2.10",
		  { { P4, ns_t_ptr, DNS_NXDOMAIN } }, RDNS_NONE, "" },
		{ "no PTR (NODATA)", "192.0.2.10",
		  { { P4, ns_t_ptr, DNS_NODATA } }, RDNS_NONE, "" },
		{ "PTR answer without PTR records", "192.0.2.10",
		  { { P4, ns_t_ptr, DNS_OK, "" } }, RDNS_NONE, "" },
		{ "PTR unreadable", "192.0.2.10",
		  { { P4, ns_t_ptr, DNS_OK, "junk" } }, RDNS_NONE, "" },
		{ "PTR TEMPFAIL", "192.0.2.10",
		  { { P4, ns_t_ptr, DNS_TEMPFAIL } }, RDNS_TEMPFAIL, "" },
		{ "two PTR names, the second confirms", "192.0.2.10",
		  { { P4, ns_t_ptr, DNS_OK, "ptr one.example.test; ptr two.example.test" },
		    { "one.example.test", ns_t_a, DNS_OK, "a 192.0.2.99" },
		    { "two.example.test", ns_t_a, DNS_OK, "a 192.0.2.10" } },
		  RDNS_OK, "two.example.test" },
		{ "two PTR names, the first confirms", "192.0.2.10",
		  { { P4, ns_t_ptr, DNS_OK, "ptr one.example.test; ptr two.example.test" },
		    { "one.example.test", ns_t_a, DNS_OK, "a 192.0.2.10" },
		    { "two.example.test", ns_t_a, DNS_NXDOMAIN } },
		  RDNS_OK, "one.example.test" },
		{ "two PTR names, none confirms", "192.0.2.10",
		  { { P4, ns_t_ptr, DNS_OK, "ptr one.example.test; ptr two.example.test" },
		    { "one.example.test", ns_t_a, DNS_OK, "a 192.0.2.99" },
		    { "two.example.test", ns_t_a, DNS_NODATA } },
		  RDNS_NONE, "" },
		/* a failed lookup might have confirmed: unknown, not "none" */
		{ "forward TEMPFAIL, the other name elsewhere", "192.0.2.10",
		  { { P4, ns_t_ptr, DNS_OK, "ptr one.example.test; ptr two.example.test" },
		    { "one.example.test", ns_t_a, DNS_TEMPFAIL },
		    { "two.example.test", ns_t_a, DNS_OK, "a 192.0.2.99" } },
		  RDNS_TEMPFAIL, "" },
		{ "forward TEMPFAIL, the other name confirms", "192.0.2.10",
		  { { P4, ns_t_ptr, DNS_OK, "ptr one.example.test; ptr two.example.test" },
		    { "one.example.test", ns_t_a, DNS_TEMPFAIL },
		    { "two.example.test", ns_t_a, DNS_OK, "a 192.0.2.10" } },
		  RDNS_OK, "two.example.test" },
		{ "forward TEMPFAIL, one name", "192.0.2.10",
		  { { P4, ns_t_ptr, DNS_OK, "ptr mail.example.test" },
		    { "mail.example.test", ns_t_a, DNS_TEMPFAIL } },
		  RDNS_TEMPFAIL, "" },
		/* IPv6: AAAA only (an A lookup would go to the network) */
		{ "IPv6 confirmed by AAAA", "2001:db8::25",
		  { { P6, ns_t_ptr, DNS_OK, "ptr v6.example.test" },
		    { "v6.example.test", ns_t_aaaa, DNS_OK, "aaaa 2001:db8::99; aaaa 2001:db8::25" } },
		  RDNS_OK, "v6.example.test" },
		{ "IPv6, AAAA elsewhere", "2001:db8::25",
		  { { P6, ns_t_ptr, DNS_OK, "ptr v6.example.test" },
		    { "v6.example.test", ns_t_aaaa, DNS_OK, "aaaa 2001:db8::26" } },
		  RDNS_NONE, "" },
		{ "IPv6, no PTR", "2001:db8::25",
		  { { P6, ns_t_ptr, DNS_NXDOMAIN } }, RDNS_NONE, "" },
		/* mapped IPv4: the in-addr.arpa name and A records */
		{ "v4-mapped client", "::ffff:192.0.2.10",
		  { { P4, ns_t_ptr, DNS_OK, "ptr mail.example.test" },
		    { "mail.example.test", ns_t_a, DNS_OK, "a 192.0.2.10" } },
		  RDNS_OK, "mail.example.test" },
	};

	for (size_t i = 0; i < NROWS(rows); i++) {
		struct fx f;
		struct got g = { 0 };
		struct sockaddr_storage ss;
		struct rdns_check *c;
		struct dns_stats st;

		fx_start(&f);
		inject(&f, rows[i].inj, NROWS(rows[i].inj));
		c = start(f.dns, addr(rows[i].client, &ss), &g);
		if (c == NULL || g.calls != 0)
			fail_msg("row %zu (%s): no handle, or %d calls inside rdns_start", i, rows[i].what,
			         g.calls);
		event_base_loop(f.base, EVLOOP_ONCE);
		if (g.calls != 1)
			fail_msg("row %zu (%s): %d callbacks after one turn", i, rows[i].what, g.calls);
		run_idle(&f);
		if (g.calls != 1 || g.during_start != 0)
			fail_msg("row %zu (%s): %d callbacks", i, rows[i].what, g.calls);
		if (g.res != rows[i].want || g.name_null || strcmp(g.name, rows[i].want_name) != 0)
			fail_msg("row %zu (%s): got %s '%s' want %s '%s'", i, rows[i].what,
			         rdns_res_name(g.res), g.name, rdns_res_name(rows[i].want), rows[i].want_name);
		st = stats(&f);
		if (st.queries != 0 || sink_count(&f) != 0)
			fail_msg("row %zu (%s): went to the network", i, rows[i].what);
		fx_stop(&f);
	}
}

/* More PTR names than RDNS_PTR_MAX: at most that many forward lookups. */
static void test_cached_many_ptr(void **state)
{
	struct fx f;
	struct got g = { 0 };
	struct sockaddr_storage ss;
	struct pkt p;
	char spec[1024] = "", name[64];
	int n = 0;

	fx_start(&f);
	for (int i = 0; i < RDNS_PTR_MAX + 5; i++)
		n += snprintf(spec + n, sizeof spec - (size_t)n, "ptr n%d.example.test;", i);
	build_reply(&p, 0, ns_r_noerror, P4, ns_t_ptr, spec);
	assert_int_equal(dns_inject(f.dns, P4, ns_t_ptr, DNS_OK, p.b, (int)p.n, 300), 0);
	for (int i = 0; i < RDNS_PTR_MAX + 5; i++) {
		snprintf(name, sizeof name, "n%d.example.test", i);
		build_reply(&p, 0, ns_r_noerror, name, ns_t_a, "a 192.0.2.99");
		assert_int_equal(dns_inject(f.dns, name, ns_t_a, DNS_OK, p.b, (int)p.n, 300), 0);
	}
	assert_non_null(start(f.dns, addr("192.0.2.10", &ss), &g));
	assert_int_equal(g.calls, 0);
	event_base_loop(f.base, EVLOOP_ONCE);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.res, RDNS_NONE);
	/* one PTR hit, then no more than RDNS_PTR_MAX A hits */
	assert_true(stats(&f).hits >= 2);
	assert_true(stats(&f).hits <= 1 + RDNS_PTR_MAX);
	assert_int_equal(stats(&f).queries, 0);
	fx_stop(&f);
}

/* PTR cached; the middle name's A cached and confirming, the others' not
 * (their queries go out): the answer comes in the first loop turn (the
 * confirming hit is delivered in the same turn as the PTR), and the lookups
 * still out are cancelled: their timeouts reach nobody. */
static void test_cached_cancels_pending(void **state)
{
	static const struct rr inj[] = {
		{ P4, ns_t_ptr, DNS_OK, "ptr one.example.test; ptr two.example.test; ptr three.example.test" },
		{ "two.example.test", ns_t_a, DNS_OK, "a 192.0.2.10" },
	};
	struct fx f;
	struct got g = { 0 };
	struct sockaddr_storage ss;
	struct want_entries w = { &f, 0 };

	fx_start(&f);
	inject(&f, inj, NROWS(inj));
	assert_non_null(start(f.dns, addr("192.0.2.10", &ss), &g));
	assert_int_equal(g.calls, 0);
	event_base_loop(f.base, EVLOOP_ONCE);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.during_start, 0);
	assert_int_equal(g.res, RDNS_OK);
	assert_string_equal(g.name, "two.example.test");
	assert_true(stats(&f).queries >= 1);
	/* each query's timeout is cached when it comes */
	w.n = 2 + stats(&f).queries;
	assert_int_equal(run_until(&f, has_entries, &w, 2500), 0);
	run_idle(&f);
	assert_int_equal(g.calls, 1);
	fx_stop(&f);
}

/* Not an IP address: "none" on the next turn, without a lookup. */
static void test_not_ip(void **state)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct fx f;
	struct got g = { 0 };

	fx_start(&f);
	snprintf(un.sun_path, sizeof un.sun_path, "/tmp/x");
	assert_non_null(start(f.dns, (const struct sockaddr *)&un, &g));
	assert_int_equal(g.calls, 0);
	event_base_loop(f.base, EVLOOP_ONCE);
	assert_int_equal(g.calls, 1);
	run_idle(&f);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.res, RDNS_NONE);
	assert_string_equal(g.name, "");
	assert_int_equal(stats(&f).queries, 0);
	assert_int_equal(stats(&f).hits, 0);
	fx_stop(&f);
	rdns_cancel(NULL);
}

/* ---- asynchronous: a DNS responder on loopback, in the same loop ---- */

static void test_async(void **state)
{
	static const struct {
		const char *what, *client;
		struct zrec zone[4];
		struct rr inj[3];
		enum rdns_res want;
		const char *want_name;
		int queries;    /* that reached the server */
		int timeout_ms; /* per query; 0: 300 */
	} rows[] = {
		{ "PTR and A from the network", "192.0.2.10",
		  { { P4, ns_t_ptr, ns_r_noerror, "ptr MX.Example.Test" },
		    { "mx.example.test", ns_t_a, ns_r_noerror, "a 192.0.2.10" } }, { { 0 } },
		  RDNS_OK, "mx.example.test", 2 },
		{ "A elsewhere", "192.0.2.10",
		  { { P4, ns_t_ptr, ns_r_noerror, "ptr mx.example.test" },
		    { "mx.example.test", ns_t_a, ns_r_noerror, "a 192.0.2.11" } }, { { 0 } },
		  RDNS_NONE, "", 2 },
		/* known inside ptr_cb's own lookups, which run from the loop */
		{ "PTR from the network, A cached", "192.0.2.10",
		  { { P4, ns_t_ptr, ns_r_noerror, "ptr mx.example.test" } },
		  { { "mx.example.test", ns_t_a, DNS_OK, "a 192.0.2.10" } },
		  RDNS_OK, "mx.example.test", 1 },
		{ "PTR from the network, A cached elsewhere", "192.0.2.10",
		  { { P4, ns_t_ptr, ns_r_noerror, "ptr mx.example.test" } },
		  { { "mx.example.test", ns_t_a, DNS_OK, "a 192.0.2.11" } },
		  RDNS_NONE, "", 1 },
		{ "PTR cached, A from the network", "192.0.2.10",
		  { { "mx.example.test", ns_t_a, ns_r_noerror, "a 192.0.2.10" } },
		  { { P4, ns_t_ptr, DNS_OK, "ptr mx.example.test" } },
		  RDNS_OK, "mx.example.test", 1 },
		{ "PTR NXDOMAIN", "192.0.2.10",
		  { { P4, ns_t_ptr, ns_r_nxdomain, NULL } }, { { 0 } }, RDNS_NONE, "", 1 },
		{ "PTR SERVFAIL", "192.0.2.10",
		  { { P4, ns_t_ptr, ns_r_servfail, NULL } }, { { 0 } }, RDNS_TEMPFAIL, "", 1 },
		{ "PTR times out", "192.0.2.10",
		  { { P4, ns_t_ptr, ns_r_noerror, "silent" } }, { { 0 } }, RDNS_TEMPFAIL, "", 1 },
		{ "A SERVFAIL", "192.0.2.10",
		  { { P4, ns_t_ptr, ns_r_noerror, "ptr mx.example.test" },
		    { "mx.example.test", ns_t_a, ns_r_servfail, NULL } }, { { 0 } },
		  RDNS_TEMPFAIL, "", 2 },
		{ "two names, the second confirms", "192.0.2.10",
		  { { P4, ns_t_ptr, ns_r_noerror, "ptr one.example.test; ptr two.example.test" },
		    { "one.example.test", ns_t_a, ns_r_noerror, "a 192.0.2.99" },
		    { "two.example.test", ns_t_a, ns_r_noerror, "a 192.0.2.10" } }, { { 0 } },
		  RDNS_OK, "two.example.test", 3 },
		/* a confirmation does not wait for the other name's lookup: its
		 * 5 s timeout is past the run's deadline */
		{ "two names, one silent, the other confirms", "192.0.2.10",
		  { { P4, ns_t_ptr, ns_r_noerror, "ptr one.example.test; ptr two.example.test" },
		    { "one.example.test", ns_t_a, ns_r_noerror, "silent" },
		    { "two.example.test", ns_t_a, ns_r_noerror, "a 192.0.2.10" } }, { { 0 } },
		  RDNS_OK, "two.example.test", 3, 5000 },
		/* the silent name's lookup is out when the cached one confirms
		 * inside ptr_cb: it is cancelled, nothing waits for it */
		{ "two names, one silent, the other cached and confirms", "192.0.2.10",
		  { { P4, ns_t_ptr, ns_r_noerror, "ptr one.example.test; ptr two.example.test" },
		    { "two.example.test", ns_t_a, ns_r_noerror, "silent" } },
		  { { "one.example.test", ns_t_a, DNS_OK, "a 192.0.2.10" } },
		  RDNS_OK, "one.example.test", 2, 5000 },
		{ "two names, one silent, the other elsewhere", "192.0.2.10",
		  { { P4, ns_t_ptr, ns_r_noerror, "ptr one.example.test; ptr two.example.test" },
		    { "one.example.test", ns_t_a, ns_r_noerror, "silent" },
		    { "two.example.test", ns_t_a, ns_r_noerror, "a 192.0.2.99" } }, { { 0 } },
		  RDNS_TEMPFAIL, "", 3 },
		{ "IPv6: PTR and AAAA from the network", "2001:db8::25",
		  { { P6, ns_t_ptr, ns_r_noerror, "ptr v6.example.test" },
		    { "v6.example.test", ns_t_aaaa, ns_r_noerror, "aaaa 2001:db8::25" } }, { { 0 } },
		  RDNS_OK, "v6.example.test", 2 },
		{ "v4-mapped from the network", "::ffff:192.0.2.10",
		  { { P4, ns_t_ptr, ns_r_noerror, "ptr mx.example.test" },
		    { "mx.example.test", ns_t_a, ns_r_noerror, "a 192.0.2.10" } }, { { 0 } },
		  RDNS_OK, "mx.example.test", 2 },
	};

	for (size_t i = 0; i < NROWS(rows); i++) {
		struct nfx n;
		struct got g = { 0 };
		struct sockaddr_storage ss;
		struct rdns_check *c;

		nfx_start(&n, rows[i].zone, rows[i].timeout_ms ? rows[i].timeout_ms : 300);
		inject(&n.f, rows[i].inj, NROWS(rows[i].inj));
		c = start(n.f.dns, addr(rows[i].client, &ss), &g);
		if (c == NULL)
			fail_msg("row %zu (%s): no handle", i, rows[i].what);
		assert_int_equal(g.calls, 0);
		if (run_until(&n.f, called, &g, 2500) < 0)
			fail_msg("row %zu (%s): no callback", i, rows[i].what);
		run_idle(&n.f);
		if (g.calls != 1 || g.during_start != 0)
			fail_msg("row %zu (%s): %d calls, %d inside rdns_start", i, rows[i].what, g.calls,
			         g.during_start);
		if (g.res != rows[i].want || strcmp(g.name, rows[i].want_name) != 0)
			fail_msg("row %zu (%s): got %s '%s' want %s '%s'", i, rows[i].what,
			         rdns_res_name(g.res), g.name, rdns_res_name(rows[i].want), rows[i].want_name);
		if (n.srv.queries != rows[i].queries)
			fail_msg("row %zu (%s): %d queries, want %d", i, rows[i].what, n.srv.queries,
			         rows[i].queries);
		nfx_stop(&n);
	}
}

/* Two checks of one client at once share the queries; both are told. Then
 * the answers are cached: a third check completes in one loop turn. */
static void test_async_two_checks(void **state)
{
	static const struct zrec zone[] = {
		{ P4, ns_t_ptr, ns_r_noerror, "ptr mx.example.test" },
		{ "mx.example.test", ns_t_a, ns_r_noerror, "a 192.0.2.10" },
		{ NULL },
	};
	struct nfx n;
	struct got g[3] = { { 0 } };
	struct sockaddr_storage ss;

	nfx_start(&n, zone, 300);
	assert_non_null(start(n.f.dns, addr("192.0.2.10", &ss), &g[0]));
	assert_non_null(start(n.f.dns, addr("::ffff:192.0.2.10", &ss), &g[1]));
	assert_int_equal(run_until(&n.f, called, &g[1], 2500), 0);
	assert_int_equal(run_until(&n.f, called, &g[0], 2500), 0);
	run_idle(&n.f);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(g[i].calls, 1);
		assert_int_equal(g[i].res, RDNS_OK);
		assert_string_equal(g[i].name, "mx.example.test");
	}
	assert_int_equal(n.srv.queries, 2);
	assert_non_null(start(n.f.dns, addr("192.0.2.10", &ss), &g[2]));
	assert_int_equal(g[2].calls, 0);
	event_base_loop(n.f.base, EVLOOP_ONCE);
	assert_int_equal(g[2].calls, 1);
	assert_int_equal(g[2].res, RDNS_OK);
	assert_string_equal(g[2].name, "mx.example.test");
	assert_int_equal(n.srv.queries, 2);
	nfx_stop(&n);
}

/* Cancelled at each stage: the callback never runs, the answers still
 * arrive (and fill the cache) and nothing touches the freed check (ASan). */
static void test_cancel(void **state)
{
	static const struct {
		const char *what;
		struct zrec zone[4];
		struct rr inj[2];
		unsigned long entries_before; /* wait for these before cancelling */
		unsigned long entries_after;  /* then wait for these */
	} rows[] = {
		{ "during PTR",
		  { { P4, ns_t_ptr, ns_r_noerror, "ptr mx.example.test" } }, { { 0 } }, 0, 1 },
		{ "during A, PTR cached",
		  { { "mx.example.test", ns_t_a, ns_r_noerror, "a 192.0.2.10" } },
		  { { P4, ns_t_ptr, DNS_OK, "ptr mx.example.test" } }, 0, 2 },
		/* PTR answered from the network, A then out (times out) */
		{ "after PTR, during A",
		  { { P4, ns_t_ptr, ns_r_noerror, "ptr mx.example.test" },
		    { "mx.example.test", ns_t_a, ns_r_noerror, "silent" } }, { { 0 } }, 1, 2 },
		/* one forward answer in (no match), the other still out */
		{ "between two A answers",
		  { { "one.example.test", ns_t_a, ns_r_noerror, "" },
		    { "two.example.test", ns_t_a, ns_r_noerror, "silent" } },
		  { { P4, ns_t_ptr, DNS_OK, "ptr one.example.test; ptr two.example.test" } }, 2, 3 },
	};

	for (size_t i = 0; i < NROWS(rows); i++) {
		struct nfx n;
		struct got g = { 0 };
		struct sockaddr_storage ss;
		struct rdns_check *c;
		struct want_entries w = { &n.f, rows[i].entries_before };

		nfx_start(&n, rows[i].zone, 200);
		inject(&n.f, rows[i].inj, NROWS(rows[i].inj));
		c = start(n.f.dns, addr("192.0.2.10", &ss), &g);
		assert_non_null(c);
		if (rows[i].inj[0].name) /* one turn: the cached PTR in, A out */
			event_base_loop(n.f.base, EVLOOP_ONCE);
		if (run_until(&n.f, has_entries, &w, 2500) < 0)
			fail_msg("row %zu (%s): answers before cancel never came", i, rows[i].what);
		if (g.calls != 0)
			fail_msg("row %zu (%s): called before cancel", i, rows[i].what);
		rdns_cancel(c);
		w.n = rows[i].entries_after;
		if (run_until(&n.f, has_entries, &w, 2500) < 0)
			fail_msg("row %zu (%s): answers after cancel never came", i, rows[i].what);
		run_idle(&n.f);
		if (g.calls != 0)
			fail_msg("row %zu (%s): callback after cancel", i, rows[i].what);
		nfx_stop(&n);
	}
}

/* Cancel, then free the resolver at once with the queries still out. */
static void test_cancel_then_free(void **state)
{
	static const struct zrec zone[] = {
		{ "one.example.test", ns_t_a, ns_r_noerror, "silent" },
		{ "two.example.test", ns_t_a, ns_r_noerror, "silent" },
		{ NULL },
	};
	static const struct rr inj[] = {
		{ P4, ns_t_ptr, DNS_OK, "ptr one.example.test; ptr two.example.test" },
	};
	struct nfx n;
	struct got g = { 0 };
	struct sockaddr_storage ss;
	struct rdns_check *c;

	nfx_start(&n, zone, 200);
	inject(&n.f, inj, NROWS(inj));
	c = start(n.f.dns, addr("192.0.2.10", &ss), &g);
	assert_non_null(c);
	rdns_cancel(c);
	nfx_stop(&n);
	assert_int_equal(g.calls, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_res_name),
		cmocka_unit_test(test_ptr_name),
		cmocka_unit_test(test_ptr_name_refused),
		cmocka_unit_test(test_cached),
		cmocka_unit_test(test_cached_many_ptr),
		cmocka_unit_test(test_cached_cancels_pending),
		cmocka_unit_test(test_not_ip),
		cmocka_unit_test(test_async),
		cmocka_unit_test(test_async_two_checks),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_cancel_then_free),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
