/* test_authorship.c - checks/authorship.c: List-Id/List-Post in a header
 * section, and whose signatures are the author's. Header inputs are
 * exact-size heap copies (no NUL), so ASan sees any read past len. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "checks/authorship.h"
#include "checks/dmarc_org.h"

static int scan(const char *s)
{
	size_t n = strlen(s);
	char *h = malloc(n ? n : 1);
	int r;

	assert_non_null(h);
	memcpy(h, s, n);
	r = authorship_list_mail(h, n);
	free(h);
	return r;
}

static void test_list_mail(void **state)
{
	assert_true(scan("From: a@x.test\r\nList-Id: <dev.lists.test>\r\n\r\n"));
	assert_true(scan("list-id:<dev.lists.test>\r\n"));
	assert_true(scan("From: a@x.test\r\nLIST-POST \t: <mailto:dev@lists.test>\r\n"));
	assert_true(scan("List-Id:")); /* the end of the section, no CRLF */
	assert_false(scan(""));
	assert_false(scan("List-Id"));
	assert_false(scan("List-Id "));
	assert_false(scan("X-List-Id: no\r\nSubject: List-Id: no\r\n"));
	assert_false(scan("List-Ids: no\r\nList-Unsubscribe: <mailto:u@l.test>\r\n"));
	assert_false(scan("Subject: x\r\n List-Id: a continuation line\r\n"));
	assert_false(scan("From: a@x.test\r\n\r\n"));
}

static void sigs(struct dkim_outcome *o, const char *d0, enum dkim_res r0, const char *d1, enum dkim_res r1)
{
	memset(o, 0, sizeof *o);
	snprintf(o->sig[0].domain, sizeof o->sig[0].domain, "%s", d0);
	o->sig[0].res = r0;
	o->nsigs = 1;
	if (d1) {
		snprintf(o->sig[1].domain, sizeof o->sig[1].domain, "%s", d1);
		o->sig[1].res = r1;
		o->nsigs = 2;
	}
}

static void test_aligned(void **state)
{
	struct dmarc_from f = {.status = DMARC_FROM_OK, .ndomains = 1, .domain = {"news.x.test"}};
	struct dkim_outcome o;

	sigs(&o, "x.test", DKIM_RES_FAIL, NULL, 0); /* the organizational domain: relaxed */
	assert_string_equal(authorship_aligned(&f, &o), "fail");
	sigs(&o, "other.test", DKIM_RES_FAIL, NULL, 0);
	assert_string_equal(authorship_aligned(&f, &o), "none");
	sigs(&o, "x.test", DKIM_RES_FAIL, "mail.x.test", DKIM_RES_PASS);
	assert_string_equal(authorship_aligned(&f, &o), "pass");
	sigs(&o, "x.test", DKIM_RES_PERMERROR, "other.test", DKIM_RES_FAIL);
	assert_string_equal(authorship_aligned(&f, &o), "none");
	assert_string_equal(authorship_aligned(&f, NULL), "none");
	/* no single usable From: every signature is the author's */
	f.status = DMARC_FROM_SEVERAL;
	f.ndomains = 0;
	sigs(&o, "other.test", DKIM_RES_FAIL, NULL, 0);
	assert_string_equal(authorship_aligned(&f, &o), "fail");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_mail),
		cmocka_unit_test(test_aligned),
	};

	dmarc_psl_load(DMARC_PSL_DEFAULT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
