/* test_store_mem.c - the in-memory store (store_mem.c, store.c without
 * Redis): greylisting's FIRST, EARLY, PASSED and ALLOWED, expiry by the
 * entries' times, the windows of counts, a full table, workers sharing the
 * table, a worker dying with the lock; and through store.h, answers that
 * come on a later loop turn, in order, and cancelled ones that never come. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "proxy/lib/bounds.h"
#include "proxy/store.h"
#include "proxy/store_mem.h"
#include "proxy/store_req.h"

#define DELAY 300
#define WINDOW 86400
#define PASS_TTL (36 * 86400)
#define AUTO 3
#define AUTO_TTL (7 * 86400)

static const struct store_grey_params params = { DELAY, WINDOW, PASS_TTL, AUTO, AUTO_TTL };

static enum store_grey grey(struct store_shm *t, const char *triplet, const char *client, long long now,
                            long long *retry_in)
{
	long long dummy;

	return store_mem_greylist(t, triplet, client, &params, now, retry_in ? retry_in : &dummy);
}

static void test_greylist_states(void **state)
{
	struct store_shm *t = store_shm_new();
	long long now = 1700000000, retry;

	assert_non_null(t);
	assert_int_equal(grey(t, "g:192.0.2|a@x|b@y", "ga:192.0.2", now, &retry), STORE_GREY_FIRST);
	assert_int_equal(retry, DELAY);
	assert_int_equal(grey(t, "g:192.0.2|a@x|b@y", "ga:192.0.2", now + 1, &retry), STORE_GREY_EARLY);
	assert_int_equal(retry, DELAY - 1);
	assert_int_equal(grey(t, "g:192.0.2|a@x|b@y", "ga:192.0.2", now + DELAY - 1, &retry), STORE_GREY_EARLY);
	assert_int_equal(retry, 1);
	/* the delay is over at first + delay exactly */
	assert_int_equal(grey(t, "g:192.0.2|a@x|b@y", "ga:192.0.2", now + DELAY, &retry), STORE_GREY_PASSED);
	assert_int_equal(retry, 0);
	/* passed before: passes again, and is not counted again for the client */
	assert_int_equal(grey(t, "g:192.0.2|a@x|b@y", "ga:192.0.2", now + DELAY + 5, NULL), STORE_GREY_PASSED);
	assert_int_equal(grey(t, "g:192.0.2|a@x|b@y", "ga:192.0.2", now + DELAY + 6, NULL), STORE_GREY_PASSED);
	/* another triplet of the network: greylisted on its own */
	assert_int_equal(grey(t, "g:192.0.2|c@x|b@y", "ga:192.0.2", now + 1000, NULL), STORE_GREY_FIRST);
	assert_int_equal(grey(t, "g:192.0.2|c@x|b@y", "ga:192.0.2", now + 1000 + DELAY, NULL), STORE_GREY_PASSED);
	/* a third pass reaches auto_allow (3): the network's new triplets are allowed */
	assert_int_equal(grey(t, "g:192.0.2|d@x|b@y", "ga:192.0.2", now + 2000, NULL), STORE_GREY_FIRST);
	assert_int_equal(grey(t, "g:192.0.2|e@x|b@y", "ga:192.0.2", now + 2001, NULL), STORE_GREY_FIRST);
	assert_int_equal(grey(t, "g:192.0.2|d@x|b@y", "ga:192.0.2", now + 2000 + DELAY, NULL), STORE_GREY_PASSED);
	assert_int_equal(grey(t, "g:192.0.2|f@x|b@y", "ga:192.0.2", now + 2400, NULL), STORE_GREY_ALLOWED);
	assert_int_equal(grey(t, "g:192.0.2|e@x|b@y", "ga:192.0.2", now + 2400, NULL), STORE_GREY_ALLOWED);
	/* another network is not */
	assert_int_equal(grey(t, "g:198.51.100|f@x|b@y", "ga:198.51.100", now + 2400, NULL), STORE_GREY_FIRST);
	/* auto_allow 0: never allowed */
	{
		struct store_grey_params p = params;
		long long r;

		p.auto_allow = 0;
		assert_int_equal(store_mem_greylist(t, "g:192.0.2|g@x|b@y", "ga:192.0.2", &p, now + 2400, &r),
		                 STORE_GREY_FIRST);
	}
	/* greylist keys and count keys of one spelling are apart */
	{
		struct store_count c;

		store_mem_count(t, "g:192.0.2|a@x|b@y", 1, 60, now, &c);
		assert_int_equal(c.count, 1);
	}
	store_shm_free(t);
}

static void test_greylist_expiry(void **state)
{
	struct store_shm *t = store_shm_new();
	long long now = 1700000000;

	assert_non_null(t);
	/* an entry that never passed lives retry_window: a retry after it starts again */
	assert_int_equal(grey(t, "g:a", "ga:n1", now, NULL), STORE_GREY_FIRST);
	assert_int_equal(grey(t, "g:a", "ga:n1", now + WINDOW, NULL), STORE_GREY_FIRST);
	assert_int_equal(grey(t, "g:a", "ga:n1", now + WINDOW + DELAY - 1, NULL), STORE_GREY_EARLY);
	assert_int_equal(grey(t, "g:a", "ga:n1", now + 2 * WINDOW - 1, NULL), STORE_GREY_PASSED);
	/* a passed triplet lives pass_ttl from its last pass (refreshed) */
	now += 2 * WINDOW - 1;
	assert_int_equal(grey(t, "g:a", "ga:n1", now + PASS_TTL - 1, NULL), STORE_GREY_PASSED);
	assert_int_equal(grey(t, "g:a", "ga:n1", now + 2 * PASS_TTL - 2, NULL), STORE_GREY_PASSED);
	assert_int_equal(grey(t, "g:a", "ga:n1", now + 3 * PASS_TTL - 2, NULL), STORE_GREY_FIRST);
	/* the network's passes live auto_allow_ttl from the last one */
	now = 1800000000;
	for (int i = 0; i < AUTO; i++) {
		char k[32];

		snprintf(k, sizeof k, "g:n2|%d", i);
		assert_int_equal(grey(t, k, "ga:n2", now + i, NULL), STORE_GREY_FIRST);
		assert_int_equal(grey(t, k, "ga:n2", now + i + DELAY, NULL), STORE_GREY_PASSED);
	}
	now += AUTO - 1 + DELAY; /* the last pass */
	assert_int_equal(grey(t, "g:n2|x", "ga:n2", now + AUTO_TTL - 1, NULL), STORE_GREY_ALLOWED);
	assert_int_equal(grey(t, "g:n2|x", "ga:n2", now + AUTO_TTL, NULL), STORE_GREY_FIRST);
	store_shm_free(t);
}

static void test_count_windows(void **state)
{
	struct store_shm *t = store_shm_new();
	struct store_count c;

	assert_non_null(t);
	/* windows aligned to the epoch: [60, 120) */
	store_mem_count(t, "rc:192.0.2.1", 1, 60, 60, &c);
	assert_int_equal(c.count, 1);
	assert_int_equal(c.reset_at, 120);
	assert_int_equal(c.shared, 0);
	store_mem_count(t, "rc:192.0.2.1", 2, 60, 119, &c);
	assert_int_equal(c.count, 3);
	assert_int_equal(c.reset_at, 120);
	store_mem_count(t, "rc:192.0.2.1", 0, 60, 119, &c); /* read only */
	assert_int_equal(c.count, 3);
	/* the next window starts from 0 */
	store_mem_count(t, "rc:192.0.2.1", 0, 60, 120, &c);
	assert_int_equal(c.count, 0);
	assert_int_equal(c.reset_at, 180);
	store_mem_count(t, "rc:192.0.2.1", 1, 60, 120, &c);
	assert_int_equal(c.count, 1);
	/* a key never counted reads 0, and reading does not make it */
	store_mem_count(t, "rc:other", 0, 3600, 7199, &c);
	assert_int_equal(c.count, 0);
	assert_int_equal(c.reset_at, 7200);
	/* keys are apart */
	store_mem_count(t, "rc:other", 5, 3600, 7199, &c);
	assert_int_equal(c.count, 5);
	store_mem_count(t, "rc:192.0.2.1", 0, 60, 121, &c);
	assert_int_equal(c.count, 1);
	/* counts given back: never below 0; nothing given back in a window not counted */
	store_mem_count(t, "rc:192.0.2.1", -1, 60, 121, &c);
	assert_int_equal(c.count, 0);
	store_mem_count(t, "rc:192.0.2.1", -1, 60, 121, &c);
	assert_int_equal(c.count, 0);
	store_mem_count(t, "rc:192.0.2.1", 2, 60, 121, &c);
	assert_int_equal(c.count, 2);
	store_mem_count(t, "rc:192.0.2.1", -1, 60, 121, &c);
	assert_int_equal(c.count, 1);
	store_mem_count(t, "rc:192.0.2.1", -1, 60, 180, &c); /* the next window */
	assert_int_equal(c.count, 0);
	store_mem_count(t, "rc:192.0.2.1", 0, 60, 180, &c);
	assert_int_equal(c.count, 0);
	store_mem_count(t, "rc:never", -3, 60, 180, &c);
	assert_int_equal(c.count, 0);
	/* a window skipped: counting starts again */
	store_mem_count(t, "rc:other", 1, 3600, 7200 + 3600 + 5, &c);
	assert_int_equal(c.count, 1);
	assert_int_equal(c.reset_at, 7200 + 7200);
	store_shm_free(t);
}

/* A key longer than STORE_KEY_MAX: greylisting skipped, the count is the
 * add alone; no table: the same. */
static void test_faults(void **state)
{
	struct store_shm *t = store_shm_new();
	char *big = malloc(STORE_KEY_MAX + 1);
	struct store_count c;

	assert_non_null(t);
	assert_non_null(big);
	memset(big, 'k', STORE_KEY_MAX);
	big[STORE_KEY_MAX] = '\0';
	assert_int_equal(grey(t, big, "ga:n", 100, NULL), STORE_GREY_SKIPPED);
	assert_int_equal(grey(t, "g:x", big, 100, NULL), STORE_GREY_SKIPPED);
	store_mem_count(t, big, 4, 60, 100, &c);
	assert_int_equal(c.count, 4);
	store_mem_count(t, big, 4, 60, 100, &c);
	assert_int_equal(c.count, 4);
	big[STORE_KEY_MAX - 1] = '\0'; /* the longest that fits */
	store_mem_count(t, big, 4, 60, 100, &c);
	store_mem_count(t, big, 4, 60, 100, &c);
	assert_int_equal(c.count, 8);
	assert_int_equal(grey(NULL, "g:x", "ga:n", 100, NULL), STORE_GREY_SKIPPED);
	store_mem_count(NULL, "k", 2, 60, 100, &c);
	assert_int_equal(c.count, 2);
	free(big);
	store_shm_free(t);
}

/* Twice as many keys as slots, each expiring later than the one before:
 * the table holds at most its slots, the newest keys stay and the oldest
 * made room. */
static void test_full(void **state)
{
	struct store_shm *t = store_shm_new();
	const int n = 2 * MOAT_STORE_MEM_SLOTS, some = 1000;
	int present = 0, newest = 0, oldest = 0;
	struct store_count c;
	char k[32];

	assert_non_null(t);
	for (int i = 0; i < n; i++) {
		snprintf(k, sizeof k, "rc:%d", i);
		store_mem_count(t, k, 1, 1000000 + i, 10, &c); /* expires at 1000000 + i */
		assert_int_equal(c.count, 1);
	}
	for (int i = 0; i < n; i++) {
		snprintf(k, sizeof k, "rc:%d", i);
		store_mem_count(t, k, 0, 1000000 + i, 10, &c);
		present += (int)c.count;
		newest += i >= n - some ? (int)c.count : 0;
		oldest += i < some ? (int)c.count : 0;
	}
	assert_true(present <= MOAT_STORE_MEM_SLOTS);
	assert_true(present > MOAT_STORE_MEM_SLOTS * 9 / 10);
	assert_int_equal(newest, some);
	assert_true(oldest < some / 10);
	/* the last in is there; a greylisting triplet still finds room */
	assert_int_equal(grey(t, "g:new", "ga:new", 10, NULL), STORE_GREY_FIRST);
	assert_int_equal(grey(t, "g:new", "ga:new", 11, NULL), STORE_GREY_EARLY);
	/* once their times have come, every slot is free again */
	for (int i = 0; i < some; i++) {
		snprintf(k, sizeof k, "rc:late%d", i);
		store_mem_count(t, k, 1, 60, 1000000 + n, &c);
		store_mem_count(t, k, 0, 60, 1000000 + n, &c);
		assert_int_equal(c.count, 1);
	}
	store_shm_free(t);
}

/* Workers share the table; one that dies holding the lock leaves it to
 * the others. */
static void test_processes(void **state)
{
	struct store_shm *t = store_shm_new();
	int status;
	pid_t pid;

	assert_non_null(t);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(grey(t, "g:p", "ga:p", 100, NULL) == STORE_GREY_FIRST ? 0 : 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(grey(t, "g:p", "ga:p", 101, NULL), STORE_GREY_EARLY);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		store_mem_lock(t);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(grey(t, "g:p", "ga:p", 100 + DELAY, NULL), STORE_GREY_PASSED);
	store_shm_free(t);
}

/* ---- through store.h: answers on a later loop turn ---- */

struct seen {
	int n;
	int order[8];
	enum store_grey grey[8];
	long long retry[8];
	struct store_count count[8];
	int returned; /* the call that asked has returned */
	int early;    /* a callback ran before it had */
};

struct ask {
	struct seen *seen;
	int id;
};

static void on_grey(void *arg, enum store_grey s, long long retry_in)
{
	struct ask *a = arg;

	a->seen->early |= !a->seen->returned;
	a->seen->order[a->seen->n] = a->id;
	a->seen->grey[a->seen->n] = s;
	a->seen->retry[a->seen->n++] = retry_in;
}

static void on_count(void *arg, const struct store_count *c)
{
	struct ask *a = arg;

	a->seen->early |= !a->seen->returned;
	a->seen->order[a->seen->n] = a->id;
	a->seen->count[a->seen->n++] = *c;
}

static void test_store_calls(void **state)
{
	struct event_base *base = event_base_new();
	struct store_shm *shm = store_shm_new();
	struct store_config cfg = { NULL, NULL, 0, 1000 };
	struct store *st = store_new(base, shm, &cfg);
	struct seen seen = {0};
	struct ask a[5] = { { &seen, 0 }, { &seen, 1 }, { &seen, 2 }, { &seen, 3 }, { &seen, 4 } };
	struct store_req *r;

	assert_non_null(base);
	assert_non_null(st);
	assert_int_equal(store_redis_up(st), -1);
	assert_non_null(store_greylist(st, "g:t", "ga:t", &params, on_grey, &a[0]));
	assert_non_null(store_count(st, "rc:t", 2, 3600, on_count, &a[1]));
	r = store_count(st, "rc:t", 5, 3600, on_count, &a[2]);
	assert_non_null(r);
	assert_non_null(store_greylist(st, "g:t", "ga:t", &params, on_grey, &a[3]));
	store_cancel(r); /* never called back, though counted */
	seen.returned = 1;
	assert_int_equal(seen.n, 0);
	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_int_equal(seen.early, 0);
	assert_int_equal(seen.n, 3);
	assert_int_equal(seen.order[0], 0);
	assert_int_equal(seen.grey[0], STORE_GREY_FIRST);
	assert_int_equal(seen.retry[0], DELAY);
	assert_int_equal(seen.order[1], 1);
	assert_int_equal(seen.count[1].count, 2);
	assert_int_equal(seen.count[1].shared, 0);
	assert_true(seen.count[1].reset_at > store_now() && seen.count[1].reset_at <= store_now() + 3600);
	assert_int_equal(seen.order[2], 3);
	assert_int_equal(seen.grey[2], STORE_GREY_EARLY);
	/* the cancelled call counted all the same */
	seen.returned = 0;
	assert_non_null(store_count(st, "rc:t", 0, 3600, on_count, &a[4]));
	seen.returned = 1;
	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_int_equal(seen.early, 0);
	assert_int_equal(seen.n, 4);
	assert_int_equal(seen.count[3].count, 7);
	/* answered but not delivered: store_free drops it */
	assert_non_null(store_count(st, "rc:t", 0, 3600, on_count, &a[4]));
	store_free(st);
	assert_int_equal(seen.n, 4);
	/* without a table: counts of the call alone */
	st = store_new(base, NULL, &cfg);
	assert_non_null(st);
	seen.returned = 0;
	assert_non_null(store_count(st, "rc:t", 3, 60, on_count, &a[1]));
	seen.returned = 1;
	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_int_equal(seen.n, 5);
	assert_int_equal(seen.count[4].count, 3);
	store_free(st);
	store_shm_free(shm);
	event_base_free(base);
}

/* From a callback: cancelling a call answered and queued behind it (it
 * never comes), and a new call (answered after the callback returned). */
struct reentry {
	struct store *st;
	struct store_req *victim;
	int calls, victim_called, inner_called, in_callback, inner_early;
};

static void on_victim(void *arg, const struct store_count *c)
{
	((struct reentry *)arg)->victim_called++;
}

static void on_inner(void *arg, const struct store_count *c)
{
	struct reentry *e = arg;

	e->inner_early |= e->in_callback;
	e->inner_called++;
}

static void on_first(void *arg, const struct store_count *c)
{
	struct reentry *e = arg;

	e->in_callback = 1;
	e->calls++;
	store_cancel(e->victim);
	assert_non_null(store_count(e->st, "rc:inner", 1, 60, on_inner, e));
	e->in_callback = 0;
}

static void test_callback_reentry(void **state)
{
	struct event_base *base = event_base_new();
	struct store_shm *shm = store_shm_new();
	struct store_config cfg = { NULL, NULL, 0, 1000 };
	struct reentry e = {0};

	assert_non_null(base);
	e.st = store_new(base, shm, &cfg);
	assert_non_null(e.st);
	assert_non_null(store_count(e.st, "rc:first", 1, 60, on_first, &e));
	assert_non_null(e.victim = store_count(e.st, "rc:victim", 1, 60, on_victim, &e));
	event_base_loop(base, EVLOOP_NONBLOCK);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(e.calls, 1);
	assert_int_equal(e.victim_called, 0);
	assert_int_equal(e.inner_called, 1);
	assert_int_equal(e.inner_early, 0);
	store_free(e.st);
	store_shm_free(shm);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greylist_states),
		cmocka_unit_test(test_greylist_expiry),
		cmocka_unit_test(test_count_windows),
		cmocka_unit_test(test_faults),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_processes),
		cmocka_unit_test(test_store_calls),
		cmocka_unit_test(test_callback_reentry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
