/* test_spf_cache.c - checks/spf_cache.c: SPF results reused for a few seconds */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "checks/spf_cache.h"

/* A fresh cache per test; get and put by the key's parts, as the SPF row does. */
static struct spf_cache *cache;

static void spf_cache_clear(void)
{
	spf_cache_free(cache);
	cache = spf_cache_new();
	assert_non_null(cache);
}

static const struct spf_outcome *get(const char *ip, const char *helo, const char *sender, const char *receiver,
                                     uint64_t now)
{
	char k[SPF_CACHE_KEY_MAX];
	size_t n = spf_cache_key(k, ip, helo, sender, receiver);

	return spf_cache_get(cache, k, n, now);
}

static void put(const char *ip, const char *helo, const char *sender, const char *receiver,
                const struct spf_outcome *o, uint64_t now)
{
	char k[SPF_CACHE_KEY_MAX];
	size_t n = spf_cache_key(k, ip, helo, sender, receiver);

	spf_cache_put(cache, k, n, o, now);
}

static struct spf_outcome outcome(enum spf_res r, const char *reason)
{
	struct spf_outcome o;

	memset(&o, 0, sizeof o);
	o.res = r;
	snprintf(o.reason, sizeof o.reason, "%s", reason);
	return o;
}

static void test_hit_and_expiry(void **state)
{
	struct spf_outcome fail = outcome(SPF_RES_FAIL, "mechanism -all matched");
	const struct spf_outcome *o;

	spf_cache_clear();
	assert_null(get("192.0.2.1", "mx.example", "a@example.org", "mx.test", 1000));
	put("192.0.2.1", "mx.example", "a@example.org", "mx.test", &fail, 1000);
	o = get("192.0.2.1", "mx.example", "a@example.org", "mx.test", 1000 + SPF_CACHE_TTL_MS - 1);
	assert_non_null(o);
	assert_int_equal(o->res, SPF_RES_FAIL);
	assert_string_equal(o->reason, "mechanism -all matched");
	/* expired */
	assert_null(get("192.0.2.1", "mx.example", "a@example.org", "mx.test", 1000 + SPF_CACHE_TTL_MS));
	spf_cache_clear();
}

static void test_key_parts(void **state)
{
	struct spf_outcome pass = outcome(SPF_RES_PASS, "");

	spf_cache_clear();
	put("192.0.2.1", "mx.example", "a@example.org", "mx.test", &pass, 0);
	/* every part of the key counts, and the parts cannot run into each other */
	assert_null(get("192.0.2.2", "mx.example", "a@example.org", "mx.test", 1));
	assert_null(get("192.0.2.1", "mx2.example", "a@example.org", "mx.test", 1));
	assert_null(get("192.0.2.1", "mx.example", "b@example.org", "mx.test", 1));
	assert_null(get("192.0.2.1", "mx.example", "a@example.org", "mx2.test", 1));
	assert_null(get("192.0.2.1", "mx.examplea@example.org", "", "mx.test", 1));
	assert_non_null(get("192.0.2.1", "mx.example", "a@example.org", "mx.test", 1));
	/* the null sender and a NULL HELO are keys like any other */
	put("192.0.2.1", NULL, "", "mx.test", &pass, 0);
	assert_non_null(get("192.0.2.1", "", "", "mx.test", 1));
	spf_cache_clear();
}

static void test_not_kept(void **state)
{
	struct spf_outcome temp = outcome(SPF_RES_TEMPERROR, "DNS error"), pass = outcome(SPF_RES_PASS, "");
	char longsender[1200];

	spf_cache_clear();
	/* a temporary error is worth asking again */
	put("192.0.2.1", "h", "a@example.org", "r", &temp, 0);
	assert_null(get("192.0.2.1", "h", "a@example.org", "r", 1));
	/* a key too long is not kept (and not cut: no false hit) */
	memset(longsender, 'a', sizeof longsender - 1);
	longsender[sizeof longsender - 1] = '\0';
	put("192.0.2.1", "h", longsender, "r", &pass, 0);
	assert_null(get("192.0.2.1", "h", longsender, "r", 1));
	/* a newer result replaces an older one */
	put("192.0.2.1", "h", "a@example.org", "r", &pass, 0);
	temp = outcome(SPF_RES_SOFTFAIL, "x");
	put("192.0.2.1", "h", "a@example.org", "r", &temp, 10);
	assert_int_equal(get("192.0.2.1", "h", "a@example.org", "r", 11)->res, SPF_RES_SOFTFAIL);
	spf_cache_clear();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_and_expiry),
		cmocka_unit_test(test_key_parts),
		cmocka_unit_test(test_not_kept),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	spf_cache_free(cache);
	return r;
}
