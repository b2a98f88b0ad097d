/* test_report_topk.c - Space-Saving: exact while it has room, and within its
 * stated bound on a skewed stream with far more keys than counters; the
 * map of 64-bit keys it and the report use */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/report/idxmap.h"
#include "proxy/report/topk.h"

static void add(struct topk *t, const char *k)
{
	topk_add(t, k, strlen(k), 1);
}

static uint64_t count_of(const struct topk *t, const char *k, uint64_t *err)
{
	return topk_count(t, k, strlen(k), err);
}

static void test_exact_with_room(void **state)
{
	struct topk t;
	const struct topk_item *rows[10];
	uint64_t err;

	assert_int_equal(topk_init(&t, 8), 0);
	for (int i = 0; i < 5; i++)
		add(&t, "b");
	for (int i = 0; i < 7; i++)
		add(&t, "a");
	add(&t, "c");
	topk_add(&t, "d", 1, 5);
	topk_add(&t, "e", 1, 0); /* weight 0: nothing */
	assert_int_equal(t.total, 18);
	assert_int_equal(topk_bound(&t), 0);
	assert_false(t.replaced);
	assert_int_equal(topk_sorted(&t, rows, 10), 4);
	assert_string_equal(rows[0]->key, "a"); /* keys hold no NUL, the items are zeroed */
	assert_int_equal(rows[0]->count, 7);
	/* a tie goes to the smaller key */
	assert_int_equal(rows[1]->count, 5);
	assert_memory_equal(rows[1]->key, "b", 1);
	assert_memory_equal(rows[2]->key, "d", 1);
	assert_int_equal(rows[3]->count, 1);
	assert_int_equal(topk_sorted(&t, rows, 2), 2);
	assert_int_equal(count_of(&t, "a", &err), 7);
	assert_int_equal(err, 0);
	assert_int_equal(count_of(&t, "zz", &err), 0);
	topk_free(&t);
}

static void test_replacement(void **state)
{
	struct topk t;
	const struct topk_item *rows[4];
	uint64_t err;

	assert_int_equal(topk_init(&t, 2), 0);
	add(&t, "a");
	add(&t, "a");
	add(&t, "a");
	add(&t, "b");
	add(&t, "c"); /* replaces b (count 1): c counts 2 with an error of 1 */
	assert_true(t.replaced);
	assert_int_equal(count_of(&t, "b", &err), 0);
	assert_int_equal(count_of(&t, "c", &err), 2);
	assert_int_equal(err, 1);
	assert_int_equal(topk_bound(&t), 2);
	assert_int_equal(topk_sorted(&t, rows, 4), 2);
	assert_memory_equal(rows[0]->key, "a", 1);
	assert_int_equal(rows[0]->count, 3);
	assert_int_equal(rows[0]->error, 0);
	topk_free(&t);
}

/* A Zipf stream of 20,000 keys into 200 counters: every count is an upper
 * bound over by at most its error, every error at most total / cap, and
 * every key above total / cap is held; the top 10 are the true top 10. */
static void test_skewed_stream(void **state)
{
	enum { KEYS = 20000, CAP = 200, N = 400000 };
	static uint64_t truth[KEYS];
	static double cum[KEYS];
	const struct topk_item *rows[10];
	struct topk t;
	double s = 0;
	uint64_t seed = 88172645463325252ull;

	memset(truth, 0, sizeof truth);
	for (int k = 0; k < KEYS; k++)
		cum[k] = s += 1.0 / ((k + 1.0) * (k + 1.0) * 0.25 + (k + 1.0) * 0.75); /* ~ between 1/k and 1/k^2 */
	assert_int_equal(topk_init(&t, CAP), 0);
	for (int i = 0; i < N; i++) {
		double u;
		int lo = 0, hi = KEYS - 1;
		char key[16];

		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		u = (double)(seed >> 11) / 9007199254740992.0 * s;
		while (lo < hi) {
			int mid = (lo + hi) / 2;

			if (cum[mid] < u)
				lo = mid + 1;
			else
				hi = mid;
		}
		truth[lo]++;
		snprintf(key, sizeof key, "k%d", lo);
		add(&t, key);
	}
	assert_int_equal(t.total, N);
	assert_true(t.replaced);
	assert_true(topk_bound(&t) <= N / CAP);
	for (int k = 0; k < KEYS; k++) {
		char key[16];
		uint64_t err, c;

		snprintf(key, sizeof key, "k%d", k);
		c = count_of(&t, key, &err);
		if (truth[k] > N / CAP && c == 0)
			fail_msg("%s (%llu > %d) is not held", key, (unsigned long long)truth[k], N / CAP);
		if (c && (c < truth[k] || c - err > truth[k] || err > N / CAP))
			fail_msg("%s: count %llu error %llu, truth %llu", key, (unsigned long long)c,
			         (unsigned long long)err, (unsigned long long)truth[k]);
	}
	/* the keys are ranked by their true counts: k0 first */
	assert_int_equal(topk_sorted(&t, rows, 10), 10);
	for (int i = 0; i < 10; i++) {
		char key[16];

		snprintf(key, sizeof key, "k%d", i);
		if (rows[i]->len != strlen(key) || memcmp(rows[i]->key, key, rows[i]->len))
			fail_msg("rank %d is %.*s, want %s", i, (int)rows[i]->len, rows[i]->key, key);
	}
	topk_free(&t);
}

/* Adversarial order: every key new, the table churns; the heap and the
 * table stay consistent (each held key is found at its count). */
static void test_churn(void **state)
{
	struct topk t;
	uint64_t sum = 0;

	assert_int_equal(topk_init(&t, 64), 0);
	for (int i = 0; i < 100000; i++) {
		char key[16];

		snprintf(key, sizeof key, "%d", i % 3 == 0 ? i % 7 : i);
		add(&t, key);
	}
	for (size_t i = 0; i < t.n; i++) {
		uint64_t err;

		assert_int_equal(topk_count(&t, t.items[i].key, t.items[i].len, &err), t.items[i].count);
		assert_int_equal(err, t.items[i].error);
		sum += t.items[i].count;
		/* the heap: a parent never counts more than its children */
		if (i > 0)
			assert_true(t.items[t.heap[(i - 1) / 2]].count <= t.items[t.heap[i]].count);
	}
	assert_int_equal(sum, t.total); /* Space-Saving's counts add up to what was added */
	topk_free(&t);
}

static void test_long_key(void **state)
{
	char key[600];
	struct topk t;
	const struct topk_item *rows[2];
	uint64_t err;

	/* "é" (2 bytes) 300 times: cut to 255 bytes would split one; 254 is kept */
	for (int i = 0; i < 300; i++)
		memcpy(key + 2 * i, "\xc3\xa9", 2);
	assert_int_equal(topk_init(&t, 4), 0);
	topk_add(&t, key, 600, 1);
	topk_add(&t, key, 400, 1); /* the same once cut */
	assert_int_equal(topk_sorted(&t, rows, 2), 1);
	assert_int_equal(rows[0]->len, 254);
	assert_int_equal(rows[0]->count, 2);
	assert_int_equal(topk_count(&t, key, 500, &err), 2);
	topk_free(&t);
}

static void test_idxmap(void **state)
{
	struct idxmap m;

	assert_int_equal(idxmap_init(&m, 64), 0);
	assert_int_equal(idxmap_get(&m, 5), -1);
	for (uint64_t k = 0; k < 40; k++)
		assert_int_equal(idxmap_put(&m, k * 64, (uint32_t)k), 0); /* keys that share low bits */
	assert_int_equal(m.n, 40);
	assert_int_equal(idxmap_put(&m, 64, 99), 0); /* replaced */
	assert_int_equal(m.n, 40);
	assert_int_equal(idxmap_get(&m, 64), 99);
	for (uint64_t k = 0; k < 40; k += 2)
		idxmap_del(&m, k * 64);
	idxmap_del(&m, 12345); /* absent: nothing */
	assert_int_equal(m.n, 20);
	for (uint64_t k = 0; k < 40; k++)
		assert_int_equal(idxmap_get(&m, k * 64), k % 2 ? (k == 1 ? 99 : (long)k) : -1);
	/* full: the last slot stays empty, so a miss always ends */
	for (uint64_t k = 100; m.n + 1 < 63; k++)
		assert_int_equal(idxmap_put(&m, k, 1), 0);
	assert_int_equal(idxmap_put(&m, 999999, 1), -1);
	assert_int_equal(idxmap_get(&m, 999999), -1);
	idxmap_clear(&m);
	assert_int_equal(idxmap_get(&m, 64), -1);
	idxmap_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_with_room),
		cmocka_unit_test(test_replacement),
		cmocka_unit_test(test_skewed_stream),
		cmocka_unit_test(test_churn),
		cmocka_unit_test(test_long_key),
		cmocka_unit_test(test_idxmap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
