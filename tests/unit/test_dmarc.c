/* test_dmarc.c - DMARC's pure parts and its lookups: the author domain of a
 * From field (RFC 7489 6.6.1), organizational domains from the public
 * suffix list and alignment (3.1, 3.2; and the libopendmarc 1.4.2 errors
 * that made both moat's own), the DMARC record among a TXT answer's
 * (6.6.3), the tags through libopendmarc, the verdict with p/sp/pct, and
 * the check itself over a DNS cache seeded with dns_inject (no query may
 * go out) with the organizational-domain fallback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <opendmarc/dmarc.h>

#include "checks/dmarc.h"
#include "checks/dmarc_from.h"
#include "checks/dmarc_org.h"
#include "checks/dns.h"
#include "checks/outcomes.h"
#include "tests/unit/dnsfix.h"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#define NROWS(a) (sizeof(a) / sizeof((a)[0]))

static int setup(void **state)
{
	(void)state;
	return dmarc_psl_loaded() || dmarc_psl_load(DMARC_PSL_DEFAULT) == 0 ? 0 : -1;
}

/* ---- the From field ---- */

static void test_from_value(void **state)
{
	static const struct {
		const char *v;
		enum dmarc_from_status st;
		const char *domains; /* the author domains, space-separated */
	} rows[] = {
		{" a@example.com", DMARC_FROM_OK, "example.com"},
		{" Alice <alice@Example.COM.>", DMARC_FROM_OK, "example.com"},
		{" \"Bank, x@evil.test\" <a@bank.test>", DMARC_FROM_OK, "bank.test"},
		{" a@bank.test (x@evil.test)", DMARC_FROM_OK, "bank.test"},
		{" (c (nested @evil.test) ) a@bank.test", DMARC_FROM_OK, "bank.test"},
		{" \"a\\\"@evil.test\" <a@bank.test>", DMARC_FROM_OK, "bank.test"},
		{" <@relay.test,@r2.test:a@bank.test>", DMARC_FROM_OK, "bank.test"},
		{" team: a@bank.test, B@BANK.test;", DMARC_FROM_OK, "bank.test"},
		{" a@bank.test,\r\n b@bank.test", DMARC_FROM_OK, "bank.test"},
		{" a@bank.test, b@evil.test", DMARC_FROM_OK, "bank.test evil.test"},
		{" team: a@bank.test;, b@evil.test, c@bank.test", DMARC_FROM_OK, "bank.test evil.test"},
		{" a@a.test, b@b.test, c@c.test, d@d.test", DMARC_FROM_OK, "a.test b.test c.test d.test"},
		{" a@a.test, b@b.test, c@c.test, d@d.test, e@e.test", DMARC_FROM_DOMAINS, ""},
		{" undisclosed-recipients:;", DMARC_FROM_BAD, ""},
		{" someone", DMARC_FROM_BAD, ""},
		{" a@[192.0.2.1]", DMARC_FROM_BAD, ""},
		{" a@", DMARC_FROM_BAD, ""},
		{" <a@bank.test", DMARC_FROM_BAD, ""},
		{" a@bad_domain.test", DMARC_FROM_BAD, ""},
		{" a@192.0.2.1", DMARC_FROM_BAD, ""},
		{" a@b c.test", DMARC_FROM_BAD, ""},
		{" a@bank.test, garbage", DMARC_FROM_BAD, ""},
		{"", DMARC_FROM_BAD, ""},
		{" a@пример.испытание", DMARC_FROM_OK, "xn--e1afmkfd.xn--80akhbyknj4f"},
	};
	char out[MOAT_DMARC_AUTHORS_MAX][MOAT_DOMAIN_MAX + 1], all[1100];

	(void)state;
	for (size_t i = 0; i < NROWS(rows); i++) {
		int n = -1;
		enum dmarc_from_status st = dmarc_from_value(rows[i].v, strlen(rows[i].v), out, &n);
		size_t len = 0;

		all[0] = '\0';
		for (int k = 0; st == DMARC_FROM_OK && k < n; k++)
			len += (size_t)snprintf(all + len, sizeof all - len, "%s%s", k ? " " : "", out[k]);
		if (st != rows[i].st || strcmp(all, rows[i].domains) != 0)
			fail_msg("row %zu '%s': %d '%s'", i, rows[i].v, st, all);
	}
}

static void test_from_scan(void **state)
{
	static const struct {
		const char *hdr;
		enum dmarc_from_status st;
		const char *domain, *msgid;
	} rows[] = {
		{"From: a@bank.test\r\nMessage-ID: <1@x>\r\n\r\n", DMARC_FROM_OK, "bank.test", "<1@x>"},
		{"Subject: s\r\nfrom : a@bank.test\r\n\r\n", DMARC_FROM_OK, "bank.test", ""},
		{"From:\r\n a@bank.test\r\nMessage-Id:\r\n\t<2@x> \r\n\r\n", DMARC_FROM_OK, "bank.test", "<2@x>"},
		{"Subject: s\r\n\r\nFrom: a@bank.test\r\n", DMARC_FROM_NONE, "", ""},
		{"From: a@bank.test\r\nFrom: a@bank.test\r\n\r\n", DMARC_FROM_SEVERAL, "", ""},
		{"X-From: a@bank.test\r\nFromage: x\r\n\r\n", DMARC_FROM_NONE, "", ""},
		{"", DMARC_FROM_NONE, "", ""},
		{"From: a@bank.test", DMARC_FROM_OK, "bank.test", ""},
	};
	struct dmarc_from f;

	(void)state;
	for (size_t i = 0; i < NROWS(rows); i++) {
		dmarc_from_scan(rows[i].hdr, strlen(rows[i].hdr), &f);
		if (f.status != rows[i].st || (f.ndomains ? strcmp(f.domain[0], rows[i].domain) : rows[i].domain[0]) ||
		    f.ndomains > 1 || strcmp(f.msgid, rows[i].msgid) != 0)
			fail_msg("row %zu: %d '%s' '%s'", i, f.status, f.ndomains ? f.domain[0] : "", f.msgid);
	}
}

/* ---- organizational domains, alignment ---- */

/* The organizational-domain cache (per worker) follows a list loaded later. */
static void test_org_domain_reload(void **state)
{
	char path[] = "/tmp/moat-test-psl.XXXXXX", out[256];
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "uk\n", 3), 3);
	close(fd);
	assert_int_equal(dmarc_org_domain("mail.shop.example.co.uk", out, sizeof out), 0);
	assert_string_equal(out, "example.co.uk");
	assert_int_equal(dmarc_psl_load(path), 0);  /* a list without co.uk */
	assert_int_equal(dmarc_org_domain("mail.shop.example.co.uk", out, sizeof out), 0);
	assert_string_equal(out, "co.uk");
	assert_int_equal(dmarc_psl_load(DMARC_PSL_DEFAULT), 0);
	assert_int_equal(dmarc_org_domain("mail.shop.example.co.uk", out, sizeof out), 0);
	assert_string_equal(out, "example.co.uk");
	unlink(path);
}

static void test_org_domain(void **state)
{
	static const struct {
		const char *in, *org; /* org NULL: none */
	} rows[] = {
		{"example.com", "example.com"},
		{"a.b.EXAMPLE.com.", "example.com"},
		{"mail.shop.example.co.uk", "example.co.uk"}, /* the list, not the last two labels */
		{"x.y.github.io", "y.github.io"},             /* its private section */
		{"a.city.kawasaki.jp", "city.kawasaki.jp"},   /* an exception rule (!city.kawasaki.jp) */
		{"a.b.test", "b.test"},                       /* unknown suffix: the default rule "*" */
		{"bank.test", "bank.test"},
		{"t.co.uk", "t.co.uk"},
		{"x.t.co.uk", "t.co.uk"},
		{"co.uk", NULL},
		{"foo.bar.kawasaki.jp", "foo.bar.kawasaki.jp"}, /* *.kawasaki.jp: bar.kawasaki.jp is a suffix */
		{"bar.kawasaki.jp", NULL},
		{"xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd.xn--p1ai"}, /* .рф: a U-label rule of the list */
		{"a.b.xn--p1ai", "b.xn--p1ai"},
		{"com", NULL},
		{"test", NULL},
		{"", NULL},
		{"a..b.test", NULL},
	};
	char out[256];

	(void)state;
	/* twice: the second round answered by the worker's cache, the same */
	for (size_t i = 0; i < 2 * NROWS(rows); i++) {
		int r = dmarc_org_domain(rows[i % NROWS(rows)].in, out, sizeof out);

		if (rows[i % NROWS(rows)].org ? r != 0 || strcmp(out, rows[i % NROWS(rows)].org) != 0 : r == 0)
			fail_msg("row %zu '%s': %d '%s'", i, rows[i % NROWS(rows)].in, r, r == 0 ? out : "");
	}
}

static void test_alignment(void **state)
{
	static const struct {
		const char *id, *from;
		int relaxed, strict;
	} rows[] = {
		{"example.com", "example.com", 1, 1},
		{"EXAMPLE.com.", "example.com", 1, 1},
		{"mail.example.com", "example.com", 1, 0},
		{"example.com", "news.example.com", 1, 0},
		{"a.example.com", "b.example.com", 1, 0},
		{"example.net", "example.com", 0, 0},
		{"com", "example.com", 0, 0},                 /* a suffix is no organization */
		{"co.uk", "bank.co.uk", 0, 0},
		{"evil.co.uk", "bank.co.uk", 0, 0},
		{"x.bank.co.uk", "y.bank.co.uk", 1, 0},
		{"examplecom", "example.com", 0, 0},
		{"", "example.com", 0, 0},
	};

	(void)state;
	for (size_t i = 0; i < NROWS(rows); i++) {
		if (dmarc_aligned(rows[i].id, rows[i].from, 0) != rows[i].relaxed ||
		    dmarc_aligned(rows[i].id, rows[i].from, 1) != rows[i].strict)
			fail_msg("row %zu %s ~ %s", i, rows[i].id, rows[i].from);
	}
}

/* Why organizational domains and alignment are not libopendmarc's: 1.4.2,
 * given the same list, answers these against RFC 7489 3.1 and 3.2. If a
 * later libopendmarc gets them right, this test says so. */
int opendmarc_get_tld(u_char *domain, u_char *tld, size_t tld_len);

static void test_libopendmarc_errors(void **state)
{
	OPENDMARC_LIB_T lib;
	u_char tld[256] = "";
	char org[256];

	(void)state;
	memset(&lib, 0, sizeof lib);
	lib.tld_type = OPENDMARC_TLD_TYPE_MOZILLA;
	text_copy((char *)lib.tld_source_file, sizeof lib.tld_source_file, DMARC_PSL_DEFAULT);
	assert_int_equal(opendmarc_policy_library_init(&lib), 0);
	/* a one-letter label under co.uk: its organizational domain is "co.uk" */
	assert_int_equal(opendmarc_get_tld((u_char *)"t.co.uk", tld, sizeof tld), 0);
	assert_string_equal((char *)tld, "co.uk");
	assert_int_equal(dmarc_org_domain("t.co.uk", org, sizeof org), 0);
	assert_string_equal(org, "t.co.uk");
	/* case matters to it: no answer */
	tld[0] = '\0';
	assert_int_equal(opendmarc_get_tld((u_char *)"EXAMPLE.COM", tld, sizeof tld), 0);
	assert_string_equal((char *)tld, "");
	/* strict: a signer below the From domain is not the From domain */
	assert_int_equal(opendmarc_policy_check_alignment((u_char *)"example.com", (u_char *)"sub.example.com",
	                                                  DMARC_RECORD_A_STRICT), 0);
	assert_false(dmarc_aligned("sub.example.com", "example.com", 1));
	/* relaxed: a public suffix shares no organizational domain */
	assert_int_equal(opendmarc_policy_check_alignment((u_char *)"example.com", (u_char *)"com",
	                                                  DMARC_RECORD_A_RELAXED), 0);
	assert_false(dmarc_aligned("com", "example.com", 0));
	opendmarc_policy_library_shutdown(&lib);
}

/* ---- records ---- */

static int pick(const char *const *const *records, char *out, size_t size)
{
	struct pkt p;

	pkt_begin(&p, 1, F_QR | F_RD | F_RA, "_dmarc.bank.test", ns_t_txt);
	for (; *records; records++)
		add_txt(&p, 300, *records);
	return dmarc_record_pick(p.b, (int)p.n, out, size);
}

static void test_record_pick(void **state)
{
	static const char *const dmarc[] = {"v=DMARC1; p=reject", NULL};
	static const char *const split[] = {"v=DMARC1; ", "p=quarantine", NULL};
	static const char *const spf[] = {"v=spf1 -all", NULL};
	static const char *const other[] = {"v=DMARC1; p=none", NULL};
	static const char *const late[] = {"p=reject; v=DMARC1", NULL};
	static const char *const v10[] = {"v=DMARC10; p=reject", NULL};
	static const char *const lower[] = {"v=dmarc1; p=reject", NULL};
	static const char *const spaced[] = {"v = DMARC1;p=reject", NULL};
	static const char *const *const one[] = {spf, dmarc, NULL};
	static const char *const *const joined[] = {split, NULL};
	static const char *const *const two[] = {dmarc, other, NULL};
	static const char *const *const none[] = {spf, late, v10, lower, NULL};
	static const char *const *const ws[] = {spaced, NULL};
	static const char *const *const empty[] = {NULL};
	char out[MOAT_DMARC_RECORD_MAX + 1];
	char big[300];
	const char *longrec[12];
	const char *const *toolong[] = {longrec, NULL};

	(void)state;
	assert_int_equal(pick(one, out, sizeof out), 1);
	assert_string_equal(out, "v=DMARC1; p=reject");
	assert_int_equal(pick(joined, out, sizeof out), 1);
	assert_string_equal(out, "v=DMARC1; p=quarantine");
	assert_int_equal(pick(two, out, sizeof out), 2);
	assert_int_equal(pick(none, out, sizeof out), 0);
	assert_int_equal(pick(ws, out, sizeof out), 1);
	assert_int_equal(pick(empty, out, sizeof out), 0);
	/* a record over MOAT_DMARC_RECORD_MAX: unreadable */
	memset(big, 'x', 250);
	big[250] = '\0';
	longrec[0] = "v=DMARC1; p=reject; rua=";
	for (int i = 1; i < 11; i++)
		longrec[i] = big;
	longrec[11] = NULL;
	assert_int_equal(pick(toolong, out, sizeof out), -1);
	/* garbage */
	assert_int_equal(dmarc_record_pick((const unsigned char *)"\1\2", 2, out, sizeof out), -1);
}

static struct dmarc_outcome parsed(const char *rec, const char *from, int fallback, int *rc)
{
	struct dmarc_outcome o;

	memset(&o, 0, sizeof o);
	text_copy(o.from_domain, sizeof o.from_domain, from);
	text_copy(o.policy_domain, sizeof o.policy_domain, fallback ? "bank.co.uk" : from);
	o.org_fallback = fallback;
	*rc = dmarc_record_parse(rec, &o);
	return o;
}

static void test_record_parse(void **state)
{
	struct dmarc_outcome o;
	int rc;

	(void)state;
	o = parsed("v=DMARC1; p=reject", "bank.co.uk", 0, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(o.published, DMARC_POL_REJECT);
	assert_int_equal(o.pct, 100);
	assert_false(o.strict_spf || o.strict_dkim || o.used_sp);
	o = parsed("v=DMARC1; p=reject; sp=none; adkim=s; aspf=s; pct=20", "bank.co.uk", 0, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(o.published, DMARC_POL_REJECT); /* the From domain's own record: p */
	assert_true(o.strict_spf && o.strict_dkim);
	assert_int_equal(o.pct, 20);
	o = parsed("v=DMARC1; p=reject; sp=none", "sub.bank.co.uk", 1, &rc);
	assert_int_equal(o.published, DMARC_POL_NONE); /* through the organizational domain: sp */
	assert_true(o.used_sp);
	o = parsed("v=DMARC1; p=quarantine", "sub.bank.co.uk", 1, &rc);
	assert_int_equal(o.published, DMARC_POL_QUARANTINE); /* no sp: p */
	o = parsed("v=DMARC1; p=bogus", "bank.co.uk", 0, &rc);
	assert_int_equal(rc, -1);
	assert_int_equal(o.res, DMARC_RES_PERMERROR);
	assert_non_null(strstr(o.reason, "bad record at _dmarc.bank.co.uk"));
	o = parsed("v=DMARC1; rua=mailto:a@bank.co.uk", "bank.co.uk", 0, &rc);
	assert_int_equal(rc, -1);
	assert_int_equal(o.res, DMARC_RES_PERMERROR);
}

/* ---- the verdict ---- */

static const uint8_t key[16] = "moat-unit-key";

static struct dmarc_outcome verdict(const char *rec, const char *from, const char *spf_dom, enum spf_res spf,
                                    const char *dkim_d, enum dkim_res dkim, const char *msgid)
{
	struct spf_outcome so;
	struct dkim_outcome dk;
	int rc;
	struct dmarc_outcome o = parsed(rec, from, 0, &rc);

	memset(&so, 0, sizeof so);
	memset(&dk, 0, sizeof dk);
	so.res = spf;
	text_copy(so.domain, sizeof so.domain, spf_dom);
	if (dkim_d) {
		dk.nsigs = 1;
		dk.sig[0].res = dkim;
		text_copy(dk.sig[0].domain, sizeof dk.sig[0].domain, dkim_d);
	}
	assert_int_equal(rc, 0);
	dmarc_evaluate(&o, &so, &dk, key, msgid);
	return o;
}

static void test_evaluate(void **state)
{
	struct dmarc_outcome o;

	(void)state;
	o = verdict("v=DMARC1; p=reject", "bank.co.uk", "mail.bank.co.uk", SPF_RES_PASS, NULL, 0, "");
	assert_int_equal(o.res, DMARC_RES_PASS);
	assert_true(o.spf_aligned);
	o = verdict("v=DMARC1; p=reject; aspf=s", "bank.co.uk", "mail.bank.co.uk", SPF_RES_PASS, NULL, 0, "");
	assert_int_equal(o.res, DMARC_RES_FAIL);
	assert_int_equal(o.policy, DMARC_POL_REJECT);
	o = verdict("v=DMARC1; p=reject", "bank.co.uk", "bank.co.uk", SPF_RES_SOFTFAIL, "x.bank.co.uk",
	            DKIM_RES_PASS, "");
	assert_int_equal(o.res, DMARC_RES_PASS);
	assert_true(o.dkim_aligned && !o.spf_aligned);
	o = verdict("v=DMARC1; p=reject; adkim=s", "bank.co.uk", "evil.test", SPF_RES_PASS, "x.bank.co.uk",
	            DKIM_RES_PASS, "");
	assert_int_equal(o.res, DMARC_RES_FAIL);
	o = verdict("v=DMARC1; p=reject", "bank.co.uk", "evil.test", SPF_RES_PASS, "bank.co.uk", DKIM_RES_FAIL,
	            "");
	assert_int_equal(o.res, DMARC_RES_FAIL);
	/* pct=0: every failing message is left out of the sample, one step down */
	o = verdict("v=DMARC1; p=reject; pct=0", "bank.co.uk", "evil.test", SPF_RES_PASS, NULL, 0, "<a@b>");
	assert_int_equal(o.policy, DMARC_POL_QUARANTINE);
	assert_int_equal(o.published, DMARC_POL_REJECT);
	o = verdict("v=DMARC1; p=quarantine; pct=0", "bank.co.uk", "evil.test", SPF_RES_PASS, NULL, 0, "<a@b>");
	assert_int_equal(o.policy, DMARC_POL_NONE);
	o = verdict("v=DMARC1; p=none; pct=0", "bank.co.uk", "evil.test", SPF_RES_PASS, NULL, 0, "<a@b>");
	assert_int_equal(o.policy, DMARC_POL_NONE);
	/* pct=50: the draw decides, the same Message-ID the same way */
	{
		int in = 0, out = 0;
		char id[64];

		for (int i = 0; i < 200; i++) {
			snprintf(id, sizeof id, "<%d@bank.co.uk>", i);
			o = verdict("v=DMARC1; p=reject; pct=50", "bank.co.uk", "evil.test", SPF_RES_PASS, NULL, 0, id);
			assert_int_equal(o.policy, o.sample < 50 ? DMARC_POL_REJECT : DMARC_POL_QUARANTINE);
			assert_int_equal(verdict("v=DMARC1; p=reject; pct=50", "bank.co.uk", "evil.test", SPF_RES_PASS,
			                         NULL, 0, id).sample, o.sample);
			in += o.sample < 50;
			out += o.sample >= 50;
		}
		assert_true(in > 60 && out > 60);
	}
}

static void test_combine(void **state)
{
	struct dmarc_outcome each[4], o;

	(void)state;
	memset(each, 0, sizeof each);
	each[0].res = DMARC_RES_PASS;
	each[1].res = DMARC_RES_FAIL;
	each[1].policy = DMARC_POL_QUARANTINE;
	each[2].res = DMARC_RES_FAIL;
	each[2].policy = DMARC_POL_REJECT;
	text_copy(each[2].from_domain, sizeof each[2].from_domain, "bank.test");
	each[3].res = DMARC_RES_TEMPERROR;
	dmarc_combine(each, 4, &o); /* the strictest failing policy */
	assert_int_equal(o.res, DMARC_RES_FAIL);
	assert_int_equal(o.policy, DMARC_POL_REJECT);
	assert_string_equal(o.from_domain, "bank.test");
	dmarc_combine(each, 2, &o);
	assert_int_equal(o.policy, DMARC_POL_QUARANTINE);
	each[1].policy = DMARC_POL_NONE;
	dmarc_combine(each, 2, &o); /* a failure under p=none still is a failure */
	assert_int_equal(o.res, DMARC_RES_FAIL);
	each[1].res = DMARC_RES_NONE;
	dmarc_combine(each, 2, &o); /* a pass and a domain without a policy */
	assert_int_equal(o.res, DMARC_RES_PASS);
	each[1].res = DMARC_RES_TEMPERROR;
	dmarc_combine(each, 2, &o); /* a pass does not hide a lookup that failed */
	assert_int_equal(o.res, DMARC_RES_TEMPERROR);
}

/* ---- the check over a seeded cache ---- */

struct run {
	int done;
};

static void done_cb(void *arg)
{
	((struct run *)arg)->done++;
}

static int is_done(void *arg)
{
	return ((struct run *)arg)->done > 0;
}

static void inject_txt(struct fx *f, const char *name, const char *txt, enum dns_status st)
{
	struct pkt p;
	const char *strs[] = {txt, NULL};

	pkt_begin(&p, 1, F_QR | F_RD | F_RA, name, ns_t_txt);
	if (txt)
		add_txt(&p, 300, strs);
	assert_int_equal(dns_inject(f->dns, name, ns_t_txt, st, st == DNS_OK ? p.b : NULL,
	                            st == DNS_OK ? (int)p.n : 0, 300), 0);
}

static struct dmarc_outcome check(struct fx *f, const char *from)
{
	struct dmarc_outcome o;
	struct run r = {0};
	struct dmarc_check *c;

	memset(&o, 0, sizeof o);
	text_copy(o.from_domain, sizeof o.from_domain, from);
	c = dmarc_check_start(f->dns, &o, done_cb, &r);
	assert_non_null(c);
	assert_int_equal(r.done, 0); /* never before the call returns */
	assert_int_equal(run_until(f, is_done, &r, 2000), 0);
	run_idle(f);
	assert_int_equal(r.done, 1);
	return o;
}

static void test_check_cached(void **state)
{
	struct fx f;
	struct dmarc_outcome o;

	(void)state;
	fx_start(&f);
	inject_txt(&f, "_dmarc.bank.co.uk", "v=DMARC1; p=reject; sp=quarantine", DNS_OK);
	inject_txt(&f, "_dmarc.sub.bank.co.uk", NULL, DNS_NXDOMAIN);
	inject_txt(&f, "_dmarc.own.bank.co.uk", "v=DMARC1; p=none", DNS_OK);
	inject_txt(&f, "_dmarc.temp.co.uk", NULL, DNS_TEMPFAIL);
	inject_txt(&f, "_dmarc.x.temp.co.uk", NULL, DNS_NODATA);
	inject_txt(&f, "_dmarc.nothing.co.uk", NULL, DNS_NXDOMAIN);

	o = check(&f, "bank.co.uk");
	assert_true(o.have_record && !o.org_fallback);
	assert_int_equal(o.published, DMARC_POL_REJECT);
	o = check(&f, "sub.bank.co.uk"); /* none of its own: the organizational domain's, with sp */
	assert_true(o.have_record && o.org_fallback && o.used_sp);
	assert_string_equal(o.policy_domain, "bank.co.uk");
	assert_int_equal(o.published, DMARC_POL_QUARANTINE);
	o = check(&f, "own.bank.co.uk"); /* its own record wins */
	assert_true(o.have_record && !o.org_fallback);
	assert_int_equal(o.published, DMARC_POL_NONE);
	o = check(&f, "temp.co.uk");
	assert_int_equal(o.res, DMARC_RES_TEMPERROR);
	o = check(&f, "x.temp.co.uk"); /* the fallback failed for now */
	assert_int_equal(o.res, DMARC_RES_TEMPERROR);
	o = check(&f, "nothing.co.uk");
	assert_int_equal(o.res, DMARC_RES_NONE);
	assert_false(o.have_record);
	assert_int_equal(sink_count(&f), 0); /* every answer came from the cache */
	fx_stop(&f);
}

static void test_cancel(void **state)
{
	struct fx f;
	struct dmarc_outcome o;
	struct run r = {0};
	struct dmarc_check *c;

	(void)state;
	fx_start(&f);
	memset(&o, 0, sizeof o);
	text_copy(o.from_domain, sizeof o.from_domain, "a.silent.co.uk");
	c = dmarc_check_start(f.dns, &o, done_cb, &r);
	assert_non_null(c);
	dmarc_check_cancel(c);
	run_idle(&f);
	assert_int_equal(r.done, 0);
	fx_stop(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_from_value),
		cmocka_unit_test(test_from_scan),
		cmocka_unit_test(test_org_domain),
		cmocka_unit_test(test_org_domain_reload),
		cmocka_unit_test(test_alignment),
		cmocka_unit_test(test_libopendmarc_errors),
		cmocka_unit_test(test_record_pick),
		cmocka_unit_test(test_record_parse),
		cmocka_unit_test(test_evaluate),
		cmocka_unit_test(test_combine),
		cmocka_unit_test(test_check_cached),
		cmocka_unit_test(test_cancel),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
