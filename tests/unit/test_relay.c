/* test_relay.c - local-recipient-only relaying: no address trick may relay */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "checks/checks.h"
#include "proxy/config.h"
#include "proxy/lib/netaddr.h"
#include "proxy/lib/smtp_parse.h"

/* The checks' options of a config, as a session makes them. */
static const struct check_options *opts_of(const struct config *c, struct check_options *o)
{
	config_check_options(c, o);
	return o;
}
#define OPT(c) opts_of((c), &(struct check_options){0})

static const char *const local_domains[] = { "example.org", ".example.com", "mail.example.net" };
static const char *const trusted[] = { "10.0.0.0/8", "192.0.2.1", "2001:db8::/32" };

/* A default config with our local domains and trusted networks. The arrays
 * are heap-allocated the way config.c does, so config_unref frees them. */
static struct config *make_config(int with_domains, int with_networks)
{
	struct config *c = config_new_defaults();
	int nd = with_domains ? (int)(sizeof local_domains / sizeof local_domains[0]) : 0;
	int nn = with_networks ? (int)(sizeof trusted / sizeof trusted[0]) : 0;

	assert_non_null(c);
	/* the defaults: relay for nobody, to nowhere */
	assert_int_equal(c->nlocal_domains, 0);
	assert_int_equal(c->ntrusted_networks, 0);
	for (int i = 0; i < c->nlocal_domains; i++)
		free(c->local_domains[i]);
	free(c->local_domains);
	free(c->trusted_networks);
	c->local_domains = NULL;
	c->trusted_networks = NULL;
	c->nlocal_domains = c->ntrusted_networks = 0;
	if (nd) {
		c->local_domains = calloc((size_t)nd, sizeof *c->local_domains);
		assert_non_null(c->local_domains);
		for (int i = 0; i < nd; i++) {
			c->local_domains[i] = strdup(local_domains[i]);
			assert_non_null(c->local_domains[i]);
		}
		c->nlocal_domains = nd;
	}
	if (nn) {
		c->trusted_networks = calloc((size_t)nn, sizeof *c->trusted_networks);
		assert_non_null(c->trusted_networks);
		for (int i = 0; i < nn; i++)
			assert_int_equal(cidr_parse(trusted[i], &c->trusted_networks[i]), 0);
		c->ntrusted_networks = nn;
	}
	return c;
}

static int setup(void **state)
{
	*state = make_config(1, 1);
	return 0;
}

static int teardown(void **state)
{
	config_unref(*state);
	return 0;
}

/* "1.2.3.4" or "2001:db8::1" (also "::ffff:1.2.3.4") as a sockaddr. */
static const struct sockaddr *addr(const char *s, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (strchr(s, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(40000);
		if (inet_pton(AF_INET6, s, &s6->sin6_addr) != 1)
			fail_msg("bad test address %s", s);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(40000);
		if (inet_pton(AF_INET, s, &s4->sin_addr) != 1)
			fail_msg("bad test address %s", s);
	}
	return (const struct sockaddr *)ss;
}

/* ---- relay_domain_is_local ---- */

static const struct {
	const char *domain;
	int local;
} dom_rows[] = {
	{ "example.org", 1 },
	{ "EXAMPLE.ORG", 1 },
	{ "Example.Org", 1 },
	{ "sub.example.org", 0 },      /* no leading dot: that domain only */
	{ "xexample.org", 0 },
	{ "example.org.evil.net", 0 },
	{ "example.or", 0 },
	{ "xample.org", 0 },
	{ "org", 0 },
	{ "", 0 },
	{ "example.com", 0 },          /* ".example.com": strict subdomains only */
	{ "sub.example.com", 1 },
	{ "SUB.EXAMPLE.COM", 1 },
	{ "a.b.c.example.com", 1 },
	{ "badexample.com", 0 },
	{ "xexample.com", 0 },
	{ ".example.com", 0 },
	{ "example.com.evil.net", 0 },
	{ "sub.example.com.evil.net", 0 },
	{ "mail.example.net", 1 },
	{ "MAIL.example.NET", 1 },
	{ "example.net", 0 },
	{ "x.mail.example.net", 0 },
	{ "ail.example.net", 0 },
};

static void test_domain_is_local(void **state)
{
	const struct config *c = *state;

	for (size_t i = 0; i < sizeof dom_rows / sizeof dom_rows[0]; i++)
		if (!!relay_domain_is_local(OPT(c), dom_rows[i].domain) != dom_rows[i].local)
			fail_msg("row %zu \"%s\": want %d", i, dom_rows[i].domain, dom_rows[i].local);
}

static void test_no_local_domains(void **state)
{
	struct config *c = make_config(0, 1);

	for (size_t i = 0; i < sizeof dom_rows / sizeof dom_rows[0]; i++)
		assert_int_equal(relay_domain_is_local(OPT(c), dom_rows[i].domain), 0);
	config_unref(c);
}

/* ---- relay_client_trusted ---- */

static const struct {
	const char *ip;
	int trusted;
} cli_rows[] = {
	{ "10.0.0.0", 1 },
	{ "10.1.2.3", 1 },
	{ "10.255.255.255", 1 },
	{ "11.0.0.0", 0 },
	{ "9.255.255.255", 0 },
	{ "192.0.2.1", 1 },
	{ "192.0.2.2", 0 },
	{ "192.0.2.0", 0 },
	{ "127.0.0.1", 0 },
	{ "198.51.100.7", 0 },
	{ "::ffff:10.1.2.3", 1 },       /* v4-mapped counts as the v4 address */
	{ "::ffff:192.0.2.1", 1 },
	{ "::ffff:198.51.100.7", 0 },
	{ "::10.1.2.3", 0 },            /* v4-compatible is not v4 */
	{ "2001:db8::1", 1 },
	{ "2001:db8:ffff:ffff::1", 1 },
	{ "2001:db9::1", 0 },
	{ "2001:db7:ffff::1", 0 },
	{ "::1", 0 },
	{ "::", 0 },
	{ "fe80::1", 0 },
};

static void test_client_trusted(void **state)
{
	const struct config *c = *state;
	struct config *none = make_config(1, 0);

	for (size_t i = 0; i < sizeof cli_rows / sizeof cli_rows[0]; i++) {
		struct sockaddr_storage ss;

		if (!!relay_client_trusted(OPT(c), addr(cli_rows[i].ip, &ss)) != cli_rows[i].trusted)
			fail_msg("row %zu %s: want %d", i, cli_rows[i].ip, cli_rows[i].trusted);
		assert_int_equal(relay_client_trusted(OPT(none), addr(cli_rows[i].ip, &ss)), 0);
	}
	config_unref(none);
}

/* ---- relay_check on parsed RCPT paths ---- */

#define OK RELAY_OK
#define DENIED RELAY_DENIED
#define BADR RELAY_BAD_ROUTING

static const struct {
	const char *arg;            /* RCPT argument, parsed by smtp_parse_mail_rcpt */
	enum relay_result untrusted; /* from 198.51.100.7 */
	enum relay_result trusted;   /* from 10.1.2.3 */
} rcpt_rows[] = {
	{ "TO:<user@example.org>", OK, OK },
	{ "TO:<User@EXAMPLE.ORG>", OK, OK },
	{ "TO: <user@example.org>", OK, OK },
	{ "TO:<user@example.org> NOTIFY=NEVER", OK, OK },
	{ "TO:<first.last@example.org>", OK, OK },
	{ "TO:<user@sub.example.com>", OK, OK },
	{ "TO:<user@A.B.Example.COM>", OK, OK },
	{ "TO:<user@mail.example.net>", OK, OK },
	{ "TO:<\"john doe\"@example.org>", OK, OK },    /* quoted, no trick */
	{ "TO:<Postmaster>", OK, OK },
	{ "TO:<postmaster>", OK, OK },
	/* foreign domains: only trusted clients relay */
	{ "TO:<user@other.net>", DENIED, OK },
	{ "TO:<user@example.com>", DENIED, OK },
	{ "TO:<user@badexample.com>", DENIED, OK },
	{ "TO:<user@xexample.org>", DENIED, OK },
	{ "TO:<user@ample.org>", DENIED, OK },
	{ "TO:<user@example.org.evil.net>", DENIED, OK },
	{ "TO:<user@sub.example.org>", DENIED, OK },
	{ "TO:<user@example.net>", DENIED, OK },
	{ "TO:<postmaster@other.net>", DENIED, OK },
	{ "TO:<\"john doe\"@other.net>", DENIED, OK },
	/* routing tricks: refused for everyone, local domain or not */
	{ "TO:<user%other.net@example.org>", BADR, BADR },
	{ "TO:<user%other.net@other.net>", BADR, BADR },
	{ "TO:<user%example.org@sub.example.com>", BADR, BADR },
	{ "TO:<other.net!user@example.org>", BADR, BADR },
	{ "TO:<a!b!user@example.org>", BADR, BADR },
	{ "TO:<\"user@other.net\"@example.org>", BADR, BADR },
	{ "TO:<\"user\\@other.net\"@example.org>", BADR, BADR },
	{ "TO:<\"user%other.net\"@example.org>", BADR, BADR },
	{ "TO:<\"other.net!user\"@example.org>", BADR, BADR },
	{ "TO:<@example.org:user@other.net>", BADR, BADR },
	{ "TO:<@example.org:user@example.org>", BADR, BADR },
	{ "TO:<@a.example.com,@example.org:user@example.org>", BADR, BADR },
	{ "TO:<user@[1.2.3.4]>", BADR, BADR },
	{ "TO:<user@[10.1.2.3]>", BADR, BADR },
	{ "TO:<user@[IPv6:2001:db8::1]>", BADR, BADR },
	{ "TO:<user%example.org@[1.2.3.4]>", BADR, BADR },
};

static void test_rcpt_rows(void **state)
{
	const struct config *c = *state;
	struct sockaddr_storage s_out, s_in, s_in6, s_mapped;
	const struct sockaddr *outside = addr("198.51.100.7", &s_out);
	const struct sockaddr *inside = addr("10.1.2.3", &s_in);
	const struct sockaddr *inside6 = addr("2001:db8::25", &s_in6);
	const struct sockaddr *mapped = addr("::ffff:10.1.2.3", &s_mapped);

	for (size_t i = 0; i < sizeof rcpt_rows / sizeof rcpt_rows[0]; i++) {
		struct smtp_path path;
		struct smtp_params params;
		enum path_err e;
		enum relay_result r;

		memset(&path, 0, sizeof path);
		memset(&params, 0, sizeof params);
		e = smtp_parse_mail_rcpt(rcpt_rows[i].arg, 1, &path, &params);
		if (e != PATH_OK)
			fail_msg("row %zu \"%s\": does not parse (%d)", i, rcpt_rows[i].arg, e);
		if ((r = relay_check(OPT(c), outside, &path)) != rcpt_rows[i].untrusted)
			fail_msg("row %zu \"%s\" (flags 0x%x domain \"%s\") from outside: %d, want %d", i,
			         rcpt_rows[i].arg, path.flags, path.domain, r, rcpt_rows[i].untrusted);
		if ((r = relay_check(OPT(c), inside, &path)) != rcpt_rows[i].trusted)
			fail_msg("row %zu \"%s\" from a trusted v4 client: %d, want %d", i,
			         rcpt_rows[i].arg, r, rcpt_rows[i].trusted);
		if ((r = relay_check(OPT(c), inside6, &path)) != rcpt_rows[i].trusted)
			fail_msg("row %zu \"%s\" from a trusted v6 client: %d, want %d", i,
			         rcpt_rows[i].arg, r, rcpt_rows[i].trusted);
		if ((r = relay_check(OPT(c), mapped, &path)) != rcpt_rows[i].trusted)
			fail_msg("row %zu \"%s\" from a trusted v4-mapped client: %d, want %d", i,
			         rcpt_rows[i].arg, r, rcpt_rows[i].trusted);
	}
}

/* relay_check acts on the flags alone, whatever produced the path: each
 * routing flag is refused even for a local domain and a trusted client. */
static void test_flags_by_hand(void **state)
{
	static const struct {
		int flags;
		const char *domain;
		enum relay_result untrusted, trusted;
	} rows[] = {
		{ 0, "example.org", OK, OK },
		{ PATH_QUOTED, "example.org", OK, OK },
		{ PATH_UTF8, "example.org", OK, OK },
		{ PATH_QUOTED | PATH_UTF8, "sub.example.com", OK, OK },
		{ 0, "other.net", DENIED, OK },
		{ PATH_QUOTED, "other.net", DENIED, OK },
		{ 0, "", OK, OK },
		{ PATH_SOURCE_ROUTE, "example.org", BADR, BADR },
		{ PATH_PERCENT, "example.org", BADR, BADR },
		{ PATH_BANG, "example.org", BADR, BADR },
		{ PATH_LITERAL, "[1.2.3.4]", BADR, BADR },
		{ PATH_QUOTED | PATH_QUOTED_AT, "example.org", BADR, BADR },
		{ PATH_QUOTED_AT, "example.org", BADR, BADR },
		{ PATH_PERCENT, "other.net", BADR, BADR },
		{ PATH_BANG | PATH_UTF8, "", BADR, BADR },
		{ PATH_SOURCE_ROUTE, "", BADR, BADR },
	};
	const struct config *c = *state;
	struct sockaddr_storage s1, s2;
	const struct sockaddr *outside = addr("2001:db9::1", &s1);
	const struct sockaddr *inside = addr("192.0.2.1", &s2);

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct smtp_path p;

		memset(&p, 0, sizeof p);
		p.flags = rows[i].flags;
		snprintf(p.domain, sizeof p.domain, "%s", rows[i].domain);
		snprintf(p.ascii_domain, sizeof p.ascii_domain, "%s", rows[i].domain);
		snprintf(p.mailbox, sizeof p.mailbox, "user@%s", rows[i].domain);
		snprintf(p.local, sizeof p.local, "user");
		if (relay_check(OPT(c), outside, &p) != rows[i].untrusted)
			fail_msg("row %zu flags 0x%x \"%s\": from outside want %d", i, rows[i].flags,
			         rows[i].domain, rows[i].untrusted);
		if (relay_check(OPT(c), inside, &p) != rows[i].trusted)
			fail_msg("row %zu flags 0x%x \"%s\": trusted want %d", i, rows[i].flags,
			         rows[i].domain, rows[i].trusted);
	}
}

/* Internationalised local domains (IDNA2008): local_domains in U-labels or
 * A-labels, a recipient in either form, in any case, matches; a name that
 * only looks alike does not. ("straße.de" as a recipient does not parse:
 * test_smtp_parse, idna_unambiguous.) */
#define RU "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80"           /* пример */
#define RU_UP "\xd0\x9f\xd0\xa0\xd0\x98\xd0\x9c\xd0\x95\xd0\xa0"        /* ПРИМЕР */
#define RF "\xd1\x80\xd1\x84"                                               /* рф */

static void test_idn_local_domains(void **state)
{
	static const char *const confs[] = {
		"local_domains = " RU ".test, ." RF ", stra\xc3\x9f" "e.de",
		"local_domains = xn--e1afmkfd.test .xn--p1ai XN--STRAE-OQA.de",
	};
	static const struct {
		const char *arg;
		enum relay_result want;
	} rows[] = {
		{ "TO:<user@" RU ".test>", OK },
		{ "TO:<user@" RU_UP ".TEST>", OK },
		{ "TO:<user@xn--e1afmkfd.test>", OK },
		{ "TO:<\xd0\xbf\xd0\xbe\xd0\xbb\xd1\x83\xd1\x87\xd0\xb0\xd1\x82\xd0\xb5\xd0\xbb\xd1\x8c@XN--E1AFMKFD.test>", OK },
		{ "TO:<user@" RU "." RF ">", OK },            /* ".рф": its subdomains */
		{ "TO:<user@xn--e1afmkfd.xn--p1ai>", OK },
		{ "TO:<user@" RF ">", DENIED },
		{ "TO:<user@xn--p1ai>", DENIED },
		{ "TO:<user@xn--strae-oqa.de>", OK },
		{ "TO:<user@strasse.de>", DENIED },          /* IDNA2003's form is another domain */
		{ "TO:<user@\xd1\x80\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.test>", DENIED }, /* рример */
		{ "TO:<user@" RU ".test.evil.example>", DENIED },
	};
	struct sockaddr_storage ss;
	const struct sockaddr *outside = addr("198.51.100.7", &ss);

	for (size_t k = 0; k < sizeof confs / sizeof confs[0]; k++) {
		char err[256] = "";
		struct config *c = config_parse(confs[k], strlen(confs[k]), "moat.conf", err, sizeof err);

		if (!c)
			fail_msg("%s: %s", confs[k], err);
		for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
			struct smtp_path path;
			struct smtp_params params;
			enum relay_result r;

			assert_int_equal(smtp_parse_mail_rcpt(rows[i].arg, 1, &path, &params), PATH_OK);
			if ((r = relay_check(OPT(c), outside, &path)) != rows[i].want)
				fail_msg("config %zu row %zu \"%s\": %d, want %d", k, i, rows[i].arg, r, rows[i].want);
		}
		config_unref(c);
	}
}

/* With the defaults (no local domains, no trusted networks) only
 * <Postmaster> is accepted. */
static void test_defaults_relay_nothing(void **state)
{
	struct config *c = make_config(0, 0);
	struct sockaddr_storage ss;
	const struct sockaddr *cl = addr("10.1.2.3", &ss);

	for (size_t i = 0; i < sizeof rcpt_rows / sizeof rcpt_rows[0]; i++) {
		struct smtp_path path;
		struct smtp_params params;
		enum relay_result want;

		memset(&path, 0, sizeof path);
		assert_int_equal(smtp_parse_mail_rcpt(rcpt_rows[i].arg, 1, &path, &params), PATH_OK);
		want = rcpt_rows[i].untrusted == BADR ? BADR : path.domain[0] == '\0' ? OK : DENIED;
		if (relay_check(OPT(c), cl, &path) != want)
			fail_msg("row %zu \"%s\": want %d with the defaults", i, rcpt_rows[i].arg, want);
	}
	config_unref(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_domain_is_local, setup, teardown),
		cmocka_unit_test(test_no_local_domains),
		cmocka_unit_test_setup_teardown(test_client_trusted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rcpt_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flags_by_hand, setup, teardown),
		cmocka_unit_test(test_idn_local_domains),
		cmocka_unit_test(test_defaults_relay_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
