/* test_authres.c - checks/authres.c: the Authentication-Results field moat
 * writes (RFC 8601) and spotting fields that claim our authserv-id. All pure: every row is a string in, a
 * string or a number out. Inputs are copied to heap buffers of their exact
 * length (no NUL), so ASan sees any read past len. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "checks/authres.h"
#include "checks/dkim.h"
#include "checks/spf.h"

/* Table rows leave trailing fields out on purpose. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#define NROWS(a) (sizeof(a) / sizeof((a)[0]))

/* An exact-size heap copy of s (no terminating NUL). */
static char *exact(const char *s, size_t len)
{
	char *p = malloc(len ? len : 1);

	assert_non_null(p);
	memcpy(p, s, len);
	return p;
}

/* ---- authres_format ---- */

struct sig {
	enum dkim_res res;
	const char *d, *s, *b, *reason;
};

/* A dkim_outcome of up to DKIM_MAX_SIGS signatures; nsigs may claim more. */
static void make_dkim(struct dkim_outcome *o, const struct sig *sigs, int n, int nsigs)
{
	memset(o, 0, sizeof *o);
	o->nsigs = nsigs;
	for (int i = 0; i < n && i < DKIM_MAX_SIGS; i++) {
		struct dkim_sig_result *r = &o->sig[i];

		r->res = sigs[i].res;
		snprintf(r->domain, sizeof r->domain, "%s", sigs[i].d ? sigs[i].d : "");
		snprintf(r->selector, sizeof r->selector, "%s", sigs[i].s ? sigs[i].s : "");
		snprintf(r->b, sizeof r->b, "%s", sigs[i].b ? sigs[i].b : "");
		snprintf(r->reason, sizeof r->reason, "%s", sigs[i].reason ? sigs[i].reason : "");
	}
}

static void make_spf(struct spf_outcome *o, enum spf_res res, int helo, const char *identity,
                     const char *domain)
{
	memset(o, 0, sizeof *o);
	o->res = res;
	o->helo_identity = helo;
	snprintf(o->identity, sizeof o->identity, "%s", identity ? identity : "");
	snprintf(o->domain, sizeof o->domain, "%s", domain ? domain : "");
}

/* The shape of a field per RFC 8601 / RFC 5322: after "Name:", count the
 * ';' outside quoted strings and comments. -1 if a quoted string or a
 * comment is left open, a byte is not printable ASCII, or a CR is not part
 * of a fold (CRLF + WSP) or of the final CRLF. */
static int top_level_semicolons(const char *f)
{
	const char *p = strchr(f, ':');
	int semis = 0, depth = 0, quoted = 0;

	if (!p)
		return -1;
	for (p++; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '\r') {
			if (p[1] != '\n')
				return -1;
			if (p[2] == '\0')
				break;
			if (p[2] != '\t' && p[2] != ' ')
				return -1;
			p++;
			continue;
		}
		if (c < 0x20 && c != '\t')
			return -1;
		if (c >= 0x7f)
			return -1;
		if (quoted) {
			if (c == '\\' && p[1])
				p++;
			else if (c == '"')
				quoted = 0;
		} else if (depth > 0) {
			if (c == '\\' && p[1])
				p++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
		} else if (c == '"') {
			quoted = 1;
		} else if (c == '(') {
			depth++;
		} else if (c == ')') {
			return -1;
		} else if (c == ';') {
			semis++;
		}
	}
	return quoted || depth ? -1 : semis;
}

#define AR "Authentication-Results: mx.example"

static void test_format(void **state)
{
	static const struct {
		const char *what;
		int spf_run;
		enum spf_res spf_res;
		int helo;
		const char *identity, *spf_domain;
		int dkim_run;
		struct sig sigs[DKIM_MAX_SIGS];
		int nsigs;
		const char *want;
	} rows[] = {
		{ "nothing run", 0, 0, 0, NULL, NULL, 0, { { 0 } }, 0, AR "; none\r\n" },
		{ "spf only", 1, SPF_RES_PASS, 0, "user@example.com", "example.com", 0, { { 0 } }, 0,
		  AR ";\r\n\tspf=pass smtp.mailfrom=user@example.com\r\n" },
		{ "spf helo identity", 1, SPF_RES_NEUTRAL, 1, "postmaster@helo.example",
		  "helo.example", 0, { { 0 } }, 0,
		  AR ";\r\n\tspf=neutral smtp.helo=helo.example\r\n" },
		{ "spf softfail", 1, SPF_RES_SOFTFAIL, 0, "a@b.example", "b.example", 0, { { 0 } }, 0,
		  AR ";\r\n\tspf=softfail smtp.mailfrom=a@b.example\r\n" },
		{ "spf temperror", 1, SPF_RES_TEMPERROR, 0, "a@b.example", "b.example", 0, { { 0 } }, 0,
		  AR ";\r\n\tspf=temperror smtp.mailfrom=a@b.example\r\n" },
		{ "spf permerror", 1, SPF_RES_PERMERROR, 0, "a@b.example", "b.example", 0, { { 0 } }, 0,
		  AR ";\r\n\tspf=permerror smtp.mailfrom=a@b.example\r\n" },
		{ "spf none", 1, SPF_RES_NONE, 0, "a@b.example", "b.example", 0, { { 0 } }, 0,
		  AR ";\r\n\tspf=none smtp.mailfrom=a@b.example\r\n" },
		{ "dkim none", 0, 0, 0, NULL, NULL, 1, { { 0 } }, 0, AR ";\r\n\tdkim=none\r\n" },
		{ "dkim only", 0, 0, 0, NULL, NULL, 1,
		  { { DKIM_RES_PASS, "example.com", "sel1", "AbCdEfGh" } }, 1,
		  AR ";\r\n\tdkim=pass header.d=example.com header.s=sel1 header.b=AbCdEfGh\r\n" },
		/* no reason comment on a pass, even if one is set */
		{ "dkim pass with reason", 0, 0, 0, NULL, NULL, 1,
		  { { DKIM_RES_PASS, "example.com", "sel1", "AbCdEfGh", "ignored" } }, 1,
		  AR ";\r\n\tdkim=pass header.d=example.com header.s=sel1 header.b=AbCdEfGh\r\n" },
		{ "dkim fail no reason", 0, 0, 0, NULL, NULL, 1,
		  { { DKIM_RES_FAIL, "example.com", "sel1", "AbCdEfGh", "" } }, 1,
		  AR ";\r\n\tdkim=fail header.d=example.com header.s=sel1 header.b=AbCdEfGh\r\n" },
		{ "both", 1, SPF_RES_FAIL, 0, "a@b.example", "b.example", 1, { { 0 } }, 0,
		  AR ";\r\n\tspf=fail smtp.mailfrom=a@b.example;\r\n\tdkim=none\r\n" },
		{ "both with a signature", 1, SPF_RES_PASS, 0, "a@b.example", "b.example", 1,
		  { { DKIM_RES_TEMPERROR, "b.example", "k", "12345678", "timeout" } }, 1,
		  AR ";\r\n\tspf=pass smtp.mailfrom=a@b.example;\r\n"
		     "\tdkim=temperror (timeout) header.d=b.example header.s=k header.b=12345678\r\n" },
		{ "several signatures", 0, 0, 0, NULL, NULL, 1,
		  { { DKIM_RES_PASS, "a.example", "s1", "AAAAAAAA" },
		    { DKIM_RES_FAIL, "b.example", "s2", "BBBBBBBB", "revoked" },
		    { DKIM_RES_PERMERROR, "c.example", "s3", "CCCCCCCC", "malformed" },
		    { DKIM_RES_NEUTRAL, "d.example", "s4", "DDDDDDDD", "" } }, 4,
		  AR ";\r\n\tdkim=pass header.d=a.example header.s=s1 header.b=AAAAAAAA;\r\n"
		     "\tdkim=fail (revoked) header.d=b.example header.s=s2 header.b=BBBBBBBB;\r\n"
		     "\tdkim=permerror (malformed) header.d=c.example header.s=s3 header.b=CCCCCCCC;\r\n"
		     "\tdkim=neutral header.d=d.example header.s=s4 header.b=DDDDDDDD\r\n" },
		/* more than DKIM_MAX_SIGS claimed: only the array is read */
		{ "nsigs beyond the array", 0, 0, 0, NULL, NULL, 1,
		  { { DKIM_RES_PASS, "1.example", "s", "b" }, { DKIM_RES_PASS, "2.example", "s", "b" },
		    { DKIM_RES_PASS, "3.example", "s", "b" }, { DKIM_RES_PASS, "4.example", "s", "b" },
		    { DKIM_RES_PASS, "5.example", "s", "b" }, { DKIM_RES_PASS, "6.example", "s", "b" },
		    { DKIM_RES_PASS, "7.example", "s", "b" }, { DKIM_RES_PASS, "8.example", "s", "b" } },
		  DKIM_MAX_SIGS + 3,
		  AR ";\r\n\tdkim=pass header.d=1.example header.s=s header.b=b;\r\n"
		     "\tdkim=pass header.d=2.example header.s=s header.b=b;\r\n"
		     "\tdkim=pass header.d=3.example header.s=s header.b=b;\r\n"
		     "\tdkim=pass header.d=4.example header.s=s header.b=b;\r\n"
		     "\tdkim=pass header.d=5.example header.s=s header.b=b;\r\n"
		     "\tdkim=pass header.d=6.example header.s=s header.b=b;\r\n"
		     "\tdkim=pass header.d=7.example header.s=s header.b=b;\r\n"
		     "\tdkim=pass header.d=8.example header.s=s header.b=b\r\n" },
		/* values needing quotes: tspecials go in a quoted-string */
		{ "header.b with / and =", 0, 0, 0, NULL, NULL, 1,
		  { { DKIM_RES_PASS, "example.com", "sel", "ab/c+d=e" } }, 1,
		  AR ";\r\n\tdkim=pass header.d=example.com header.s=sel header.b=\"ab/c+d=e\"\r\n" },
		{ "empty values", 0, 0, 0, NULL, NULL, 1, { { DKIM_RES_PERMERROR, "", "", "" } }, 1,
		  AR ";\r\n\tdkim=permerror header.d=\"\" header.s=\"\" header.b=\"\"\r\n" },
		{ "selector with : and ,", 0, 0, 0, NULL, NULL, 1,
		  { { DKIM_RES_FAIL, "example.com", "a:b,c", "x" } }, 1,
		  AR ";\r\n\tdkim=fail header.d=example.com header.s=\"a:b,c\" header.b=x\r\n" },
		{ "domain with ;", 0, 0, 0, NULL, NULL, 1,
		  { { DKIM_RES_PERMERROR, "evil;dkim=pass", "s", "x" } }, 1,
		  AR ";\r\n\tdkim=permerror header.d=\"evil;dkim=pass\" header.s=s header.b=x\r\n" },
		/* controls and 8-bit bytes are dropped; quote, backslash and space
		 * make it a quoted-string, with the quote and backslash escaped */
		{ "unprintable dropped", 0, 0, 0, NULL, NULL, 1,
		  { { DKIM_RES_FAIL, "ex\"am\\ple .com\r\n", "s\x01\xc3\xa9l", "x" } }, 1,
		  AR ";\r\n\tdkim=fail header.d=\"ex\\\"am\\\\ple .com\" header.s=sl header.b=x\r\n" },
		{ "mailfrom with a quoted space", 1, SPF_RES_PASS, 0, "\"john doe\"@example.com",
		  "example.com", 0, { { 0 } }, 0,
		  AR ";\r\n\tspf=pass smtp.mailfrom=\"\\\"john doe\\\"@example.com\"\r\n" },
		{ "helo needing quotes", 1, SPF_RES_NONE, 1, "postmaster@[1.2.3.4]", "[1.2.3.4]", 0,
		  { { 0 } }, 0, AR ";\r\n\tspf=none smtp.helo=\"[1.2.3.4]\"\r\n" },
	};

	for (size_t i = 0; i < NROWS(rows); i++) {
		struct spf_outcome spf;
		struct dkim_outcome dkim;
		char buf[4096];
		int n, k = 0;

		while (k < DKIM_MAX_SIGS && (rows[i].sigs[k].d || rows[i].sigs[k].res))
			k++;
		make_spf(&spf, rows[i].spf_res, rows[i].helo, rows[i].identity, rows[i].spf_domain);
		make_dkim(&dkim, rows[i].sigs, k, rows[i].nsigs);
		memset(buf, 'Z', sizeof buf);
		n = authres_format(buf, sizeof buf, "mx.example", 0, rows[i].spf_run ? &spf : NULL,
		                   rows[i].dkim_run ? &dkim : NULL);
		if (n < 0 || strcmp(buf, rows[i].want) != 0)
			fail_msg("row %zu (%s): got %d\n[%s]\nwant\n[%s]", i, rows[i].what, n,
			         n < 0 ? "" : buf, rows[i].want);
		assert_int_equal(n, (int)strlen(rows[i].want));
		assert_int_equal(buf[n + 1], 'Z');
		assert_true(top_level_semicolons(buf) >= 0);
	}
}

/* Internationalised mail (RFC 8616, RFC 6532): with SMTPUTF8 the field may
 * hold UTF-8, and addresses and domains are written as the client and the
 * signer wrote them; without it, domains in A-labels and ASCII only. */
#define SENDER_RU "\xd0\xbe\xd1\x82\xd0\xbf\xd1\x80\xd0\xb0\xd0\xb2\xd0\xb8\xd1\x82\xd0\xb5\xd0\xbb\xd1\x8c" /* отправитель */
#define DOMAIN_RU "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.test"                                   /* пример.test */

static void test_format_utf8(void **state)
{
	static const struct {
		const char *what;
		int utf8;
		const char *identity; /* spf smtp.mailfrom; NULL: not run */
		const char *d, *s;    /* one dkim signature; NULL: not run */
		const char *want;     /* after the authserv-id */
	} rows[] = {
		{ "UTF-8 address, SMTPUTF8", 1, SENDER_RU "@" DOMAIN_RU, NULL, NULL,
		  ";\r\n\tspf=pass smtp.mailfrom=" SENDER_RU "@" DOMAIN_RU "\r\n" },
		{ "ASCII local part, U-label domain, SMTPUTF8", 1, "ivan@" DOMAIN_RU, NULL, NULL,
		  ";\r\n\tspf=pass smtp.mailfrom=ivan@" DOMAIN_RU "\r\n" },
		{ "A-label domain, SMTPUTF8", 1, "ivan@xn--e1afmkfd.test", NULL, NULL,
		  ";\r\n\tspf=pass smtp.mailfrom=ivan@xn--e1afmkfd.test\r\n" },
		{ "quoted UTF-8 local part with a space", 1, "\"" SENDER_RU " x\"@" DOMAIN_RU, NULL, NULL,
		  ";\r\n\tspf=pass smtp.mailfrom=\"\\\"" SENDER_RU " x\\\"@" DOMAIN_RU "\"\r\n" },
		{ "invalid UTF-8 and C1 controls dropped", 1, "a\xff\xc3\xc2\x85" "b@" DOMAIN_RU, NULL, NULL,
		  ";\r\n\tspf=pass smtp.mailfrom=ab@" DOMAIN_RU "\r\n" },
		/* without SMTPUTF8 (not from a session: moat refuses a UTF-8 address then) */
		{ "U-label domain, no SMTPUTF8", 0, "ivan@" DOMAIN_RU, NULL, NULL,
		  ";\r\n\tspf=pass smtp.mailfrom=ivan@xn--e1afmkfd.test\r\n" },
		{ "UTF-8 local part, no SMTPUTF8: @domain", 0, SENDER_RU "@" DOMAIN_RU, NULL, NULL,
		  ";\r\n\tspf=pass smtp.mailfrom=@xn--e1afmkfd.test\r\n" },
		{ "invalid IDN, no SMTPUTF8: printable only", 0, "ivan@\xe2\x98\x83.test", NULL, NULL,
		  ";\r\n\tspf=pass smtp.mailfrom=ivan@.test\r\n" },
		/* DKIM d= and s= in U-labels (RFC 8616 5) */
		{ "U-label d=, SMTPUTF8", 1, NULL, DOMAIN_RU, "sel", ";\r\n\tdkim=pass header.d=" DOMAIN_RU
		  " header.s=sel header.b=bbbbbbbb\r\n" },
		{ "U-label d=, no SMTPUTF8", 0, NULL, DOMAIN_RU, "sel",
		  ";\r\n\tdkim=pass header.d=xn--e1afmkfd.test header.s=sel header.b=bbbbbbbb\r\n" },
		{ "U-label s=, no SMTPUTF8", 0, NULL, "example.com", "\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87",
		  ";\r\n\tdkim=pass header.d=example.com header.s=xn--j1ac0b1a header.b=bbbbbbbb\r\n" },
		{ "d= with ';' and UTF-8, SMTPUTF8", 1, NULL, DOMAIN_RU ";dkim=pass", "s",
		  ";\r\n\tdkim=pass header.d=\"" DOMAIN_RU ";dkim=pass\" header.s=s header.b=bbbbbbbb\r\n" },
	};

	for (size_t i = 0; i < NROWS(rows); i++) {
		struct spf_outcome spf;
		struct dkim_outcome dkim;
		struct sig sg = { DKIM_RES_PASS, rows[i].d, rows[i].s, "bbbbbbbb", "" };
		char buf[2048], want[1024];
		int n;

		make_spf(&spf, SPF_RES_PASS, 0, rows[i].identity, "xn--e1afmkfd.test");
		make_dkim(&dkim, &sg, 1, 1);
		n = authres_format(buf, sizeof buf, "mx.example", rows[i].utf8, rows[i].identity ? &spf : NULL,
		                   rows[i].d ? &dkim : NULL);
		snprintf(want, sizeof want, AR "%s", rows[i].want);
		if (n < 0 || strcmp(buf, want) != 0)
			fail_msg("row %zu (%s): got\n[%s]\nwant\n[%s]", i, rows[i].what, n < 0 ? "" : buf, want);
		if (!rows[i].utf8)
			assert_true(top_level_semicolons(buf) == 1); /* printable ASCII only */
	}
}

/* Values from the message or the envelope must not change the field's
 * structure: one resinfo per method, no comment or quoted-string left
 * open. The local part of MAIL FROM may be a quoted-string holding any of
 * ";()" (RFC 5321 4.1.2); DKIM d= and s= are whatever the signer wrote. */
static void test_format_injection(void **state)
{
	static const struct {
		const char *what;
		const char *identity; /* spf smtp.mailfrom; NULL: not run */
		const char *d, *s;    /* one dkim signature; NULL: not run */
		int semis;            /* top-level ';': one per resinfo */
	} rows[] = {
		{ "mailfrom ;", "\"a;dkim=pass\"@evil.example", NULL, NULL, 1 },
		{ "mailfrom (", "\"(x\"@evil.example", NULL, NULL, 1 },
		{ "mailfrom )", "\"x)\"@evil.example", NULL, NULL, 1 },
		{ "selector ; and @", NULL, "evil.example", "x;spf=pass@y", 1 },
		{ "domain ( and @", NULL, "a(b@c", "s", 1 },
		{ "domain ; no @", NULL, "x;dkim=pass", "s", 1 },
		{ "selector ( no @", NULL, "evil.example", "(x", 1 },
		{ "both, clean", "a@b.example", "b.example", "s", 2 },
	};

	int bad = 0;

	for (size_t i = 0; i < NROWS(rows); i++) {
		struct spf_outcome spf;
		struct dkim_outcome dkim;
		struct sig sg = { DKIM_RES_FAIL, rows[i].d, rows[i].s, "bbbbbbbb", "" };
		char buf[2048];
		int n, semis;

		make_spf(&spf, SPF_RES_FAIL, 0, rows[i].identity, "evil.example");
		make_dkim(&dkim, &sg, 1, 1);
		n = authres_format(buf, sizeof buf, "mx.example", 0, rows[i].identity ? &spf : NULL,
		                   rows[i].d ? &dkim : NULL);
		assert_true(n > 0);
		semis = top_level_semicolons(buf);
		if (semis != rows[i].semis) {
			print_error("row %zu (%s): %d top-level ';' (-1: malformed), want %d in\n%s", i,
			            rows[i].what, semis, rows[i].semis, buf);
			bad++;
		}
	}
	if (bad)
		fail_msg("%d of %zu rows", bad, NROWS(rows));
}

/* The reason is a comment for humans: its words stay apart. */
static void test_format_reason_comment(void **state)
{
	static const struct {
		const char *reason, *want;
	} rows[] = {
		{ "revoked", " (revoked) " },
		{ "key revoked", " (key revoked) " },
		{ "body hash mismatch", " (body hash mismatch) " },
		/* parentheses inside could end or unbalance the comment: blanked */
		{ "i= outside d= (key t=s)", " (i= outside d=  key t=s ) " },
	};

	int bad = 0;

	for (size_t i = 0; i < NROWS(rows); i++) {
		struct dkim_outcome dkim;
		struct sig sg = { DKIM_RES_FAIL, "example.com", "s", "bbbbbbbb", rows[i].reason };
		char buf[1024];

		make_dkim(&dkim, &sg, 1, 1);
		assert_true(authres_format(buf, sizeof buf, "mx.example", 0, NULL, &dkim) > 0);
		assert_true(top_level_semicolons(buf) == 1);
		if (!strstr(buf, rows[i].want)) {
			print_error("row %zu: '%s' not in\n%s", i, rows[i].want, buf);
			bad++;
		}
	}
	if (bad)
		fail_msg("%d of %zu rows", bad, NROWS(rows));
}

/* Every size from 0 to the full length + 1: -1 unless it all fits with its
 * NUL, and never a byte written at or past size. */
static void test_format_overflow(void **state)
{
	struct spf_outcome spf;
	struct dkim_outcome dkim;
	const struct sig sigs[] = {
		{ DKIM_RES_PASS, "a.example", "s1", "AAAAAAAA" },
		{ DKIM_RES_FAIL, "b.example", "s2", "BB/BBBBB", "revoked" },
		{ DKIM_RES_PERMERROR, "", "s3", "CCCCCCCC", "malformed" },
	};
	const struct {
		int spf, dkim, nsigs;
	} cases[] = { { 0, 0, 0 }, { 1, 0, 0 }, { 0, 1, 0 }, { 1, 1, 3 } };
	char full[4096];

	make_spf(&spf, SPF_RES_SOFTFAIL, 0, "someone@example.org", "example.org");
	for (size_t c = 0; c < NROWS(cases); c++) {
		int len;

		make_dkim(&dkim, sigs, cases[c].nsigs, cases[c].nsigs);
		len = authres_format(full, sizeof full, "mx.example", 0, cases[c].spf ? &spf : NULL,
		                     cases[c].dkim ? &dkim : NULL);
		assert_true(len > 0);
		assert_int_equal((size_t)len, strlen(full));
		for (size_t size = 0; size <= (size_t)len + 1; size++) {
			/* exact heap allocation plus a guard region checked by hand */
			char *mem = malloc(size + 16);
			int n;

			assert_non_null(mem);
			memset(mem, 0x5a, size + 16);
			n = authres_format(mem, size, "mx.example", 0, cases[c].spf ? &spf : NULL,
			                   cases[c].dkim ? &dkim : NULL);
			if (size <= (size_t)len) {
				if (n != -1)
					fail_msg("case %zu size %zu of %d: returned %d", c, size, len, n);
			} else {
				assert_int_equal(n, len);
				assert_memory_equal(mem, full, (size_t)len + 1);
			}
			for (size_t g = size; g < size + 16; g++)
				if ((unsigned char)mem[g] != 0x5a)
					fail_msg("case %zu size %zu: byte %zu written", c, size, g);
			free(mem);
		}
	}
}

/* ---- authres_claims ---- */

static void test_claims(void **state)
{
	static const struct {
		const char *field;
		int want;
	} rows[] = {
		{ "Authentication-Results: mx.example; spf=pass smtp.mailfrom=a@b\r\n", 1 },
		{ "Authentication-Results: mx.example\r\n", 1 },
		{ "Authentication-Results: mx.example", 1 },          /* no CRLF */
		{ "Authentication-Results: MX.Example; spf=pass\r\n", 1 },
		{ "authentication-results: mx.example; none\r\n", 1 },
		{ "AUTHENTICATION-RESULTS:mx.example;none\r\n", 1 },
		{ "Authentication-Results : mx.example; none\r\n", 1 }, /* obs: WSP before ':' */
		{ "Authentication-Results:\tmx.example; none\r\n", 1 },
		{ "Authentication-Results: mx.example 1; none\r\n", 1 }, /* with a version */
		{ "Authentication-Results: mx.example;spf=pass\r\n", 1 },
		{ "Authentication-Results: mx.example(c); none\r\n", 1 },
		/* comments before the id */
		{ "Authentication-Results: (c) mx.example; spf=pass\r\n", 1 },
		{ "Authentication-Results: (a (nested) comment) mx.example; none\r\n", 1 },
		{ "Authentication-Results: (escaped \\) paren) mx.example; none\r\n", 1 },
		{ "Authentication-Results:(c)mx.example; none\r\n", 1 },
		/* folded */
		{ "Authentication-Results:\r\n mx.example;\r\n\tspf=pass\r\n", 1 },
		{ "Authentication-Results: (folded\r\n comment)\r\n\tmx.example; none\r\n", 1 },
		{ "Authentication-Results:\r\n\t\r\n mx.example; none\r\n", 1 },
		/* quoted-string id */
		{ "Authentication-Results: \"mx.example\"; spf=pass\r\n", 1 },
		{ "Authentication-Results: \"MX.EXAMPLE\"; spf=pass\r\n", 1 },
		{ "Authentication-Results: \"mx\\.example\"; none\r\n", 1 },
		{ "Authentication-Results: (c) \"mx.example\"; none\r\n", 1 },
		{ "Authentication-Results: \"other.example\"; none\r\n", 0 },
		/* other ids */
		{ "Authentication-Results: other.example; spf=pass\r\n", 0 },
		{ "Authentication-Results: mx.example.evil; spf=pass\r\n", 0 },
		{ "Authentication-Results: evil-mx.example; spf=pass\r\n", 0 },
		{ "Authentication-Results: mx.exampl; spf=pass\r\n", 0 },
		{ "Authentication-Results: (mx.example) other.example; none\r\n", 0 },
		{ "Authentication-Results: other.example; spf=pass smtp.mailfrom=mx.example\r\n", 0 },
		/* empty or garbage: nobody may claim our name by bad syntax */
		{ "Authentication-Results:\r\n", 1 },
		{ "Authentication-Results:", 1 },
		{ "Authentication-Results: \r\n", 1 },
		{ "Authentication-Results:\r\n \r\n", 1 },
		{ "Authentication-Results: ; spf=pass\r\n", 1 },
		{ "Authentication-Results: (only a comment)\r\n", 1 },
		{ "Authentication-Results: (unclosed comment mx.example; spf=pass\r\n", 1 },
		{ "Authentication-Results: \"\"; spf=pass\r\n", 1 },
		/* not an Authentication-Results field */
		{ "Received: from mx.example by mx.example\r\n", 0 },
		{ "X-Authentication-Results: mx.example; none\r\n", 0 },
		{ "ARC-Authentication-Results: i=1; mx.example; none\r\n", 0 },
		{ "Authentication-Results-Original: mx.example; none\r\n", 0 },
		{ "Authentication-Result: mx.example; none\r\n", 0 },
		{ "Authentication_Results: mx.example; none\r\n", 0 },
		{ "Authentication-Results mx.example; none\r\n", 0 },
		{ "Authentication-Results", 0 },
		{ "Authentication", 0 },
		{ "", 0 },
	};

	for (size_t i = 0; i < NROWS(rows); i++) {
		size_t len = strlen(rows[i].field);
		char *f = exact(rows[i].field, len);
		int got = authres_claims(f, len, "mx.example");

		if (got != rows[i].want)
			fail_msg("row %zu: got %d want %d for [%s]", i, got, rows[i].want, rows[i].field);
		free(f);
	}
}

/* An authserv-id must be a token or a quoted-string (RFC 8601 2.5): a value
 * that is neither is bad syntax, and authres.h says such a field counts as
 * ours ("nobody may claim our name through bad syntax"). */
static void test_claims_unparsable_id(void **state)
{
	static const char *const rows[] = {
		"Authentication-Results: ) mx.example; spf=pass\r\n",
		"Authentication-Results: )mx.example; spf=pass\r\n",
		"Authentication-Results: mx.example); spf=pass\r\n",
		"Authentication-Results: <mx.example>; spf=pass\r\n",
		"Authentication-Results: mx.example,; spf=pass\r\n",
	};
	int bad = 0;

	for (size_t i = 0; i < NROWS(rows); i++) {
		size_t len = strlen(rows[i]);
		char *f = exact(rows[i], len);
		int got = authres_claims(f, len, "mx.example");

		if (got != 1) {
			print_error("row %zu: got %d want 1 for [%s]\n", i, got, rows[i]);
			bad++;
		}
		free(f);
	}
	if (bad)
		fail_msg("%d of %zu rows", bad, NROWS(rows));
}

/* Only len bytes count, whatever follows them in memory. */
static void test_claims_len(void **state)
{
	static const struct {
		const char *text;
		size_t len;
		const char *id;
		int want;
	} rows[] = {
		/* the id is cut to "mx.example" */
		{ "Authentication-Results: mx.example.evil; none\r\n", 34, "mx.example", 1 },
		/* cut to "mx.exa" */
		{ "Authentication-Results: mx.example; none\r\n", 30, "mx.example", 0 },
		/* cut right after the colon: an empty value */
		{ "Authentication-Results: mx.example; none\r\n", 23, "mx.example", 1 },
		/* cut before the colon */
		{ "Authentication-Results: mx.example; none\r\n", 22, "mx.example", 0 },
		/* an unterminated quoted-string at the cut */
		{ "Authentication-Results: \"mx.example\"; none\r\n", 35, "mx.example", 1 },
		/* cut inside the quoted id: unterminated, so unparsable: claimed */
		{ "Authentication-Results: \"mx.ex\"; none\r\n", 30, "mx.example", 1 },
		/* an escaped character in the quoted-string */
		{ "Authentication-Results: \"m\\x\"; none\r\n", 30, "mx", 1 },
		/* a backslash as the last byte: only that nothing past len is read */
		{ "Authentication-Results: \"mx\\", 28, "mx", -1 },
		/* other authserv-ids */
		{ "Authentication-Results: MAIL.Example.ORG; none\r\n", 48, "mail.example.org", 1 },
		{ "Authentication-Results: mail.example.org; none\r\n", 48, "mx.example", 0 },
	};

	for (size_t i = 0; i < NROWS(rows); i++) {
		char *f = exact(rows[i].text, rows[i].len);
		int got = authres_claims(f, rows[i].len, rows[i].id);

		if (rows[i].want >= 0 ? got != rows[i].want : got != 0 && got != 1)
			fail_msg("row %zu: got %d want %d", i, got, rows[i].want);
		free(f);
	}
}

/* A field cut short (the scanner keeps its first bytes only): an id out of
 * view may be ours, so it counts as claimed; a field plainly someone
 * else's stays. */
static void test_claims_truncated(void **state)
{
	static const struct {
		const char *f;
		int truncated, want;
	} rows[] = {
		{ "Authentication-Results: other.example; spf=pass", 1, 0 },
		{ "Authentication-Results: mx.example; spf=pass", 1, 1 },
		{ "Authentication-Results: (a long comment", 1, 1 },
		{ "Authentication-Results: (a long comment", 0, 1 },
		{ "Authentication-Results: mx.exa", 1, 1 },
		{ "Authentication-Results: mx.exa", 0, 0 },
		{ "Authentication-Results: other.example (comment", 1, 1 },
		{ "Authentication-Results", 1, 1 },
		{ "Authentication-Results", 0, 0 },
		{ "Authentication-Results    ", 1, 1 },
		{ "Authentication-Resu", 1, 0 },
		{ "Received: from mx.example", 1, 0 },
		{ "Authentication-Results: \"mx.ex", 1, 1 },
	};

	for (size_t i = 0; i < NROWS(rows); i++) {
		size_t len = strlen(rows[i].f);
		char *f = exact(rows[i].f, len);
		int got = authres_claims_head(f, len, rows[i].truncated, "mx.example");

		if (got != rows[i].want)
			fail_msg("row %zu [%s] truncated %d: got %d want %d", i, rows[i].f, rows[i].truncated,
			         got, rows[i].want);
		free(f);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_injection),
		cmocka_unit_test(test_format_utf8),
		cmocka_unit_test(test_format_reason_comment),
		cmocka_unit_test(test_format_overflow),
		cmocka_unit_test(test_claims),
		cmocka_unit_test(test_claims_unparsable_id),
		cmocka_unit_test(test_claims_len),
		cmocka_unit_test(test_claims_truncated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
