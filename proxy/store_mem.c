/* store_mem.c - the in-memory store the workers of one process share (see
 * store_mem.h, store.h).
 *
 * One shared mapping, made before the workers fork like the failed-AUTH
 * table's (authfail.c): a process-shared robust mutex and an
 * open-addressing table of MOAT_STORE_MEM_SLOTS slots (digest, expiry, a,
 * b). A key is known by a 128-bit digest of its kind and bytes (two
 * SipHash keys drawn at start: the keys come from the network, and a
 * client can aim them neither at one window of slots nor at another key),
 * and lives in the window of MOAT_STORE_MEM_PROBE slots from its digest.
 * Entries expire by their own times: a slot whose expiry has come is free;
 * nothing is removed or moved.
 *
 *   triplet         a: first seen; b: 1 once passed; expiry: first +
 *                   retry_window, then each pass + pass_ttl
 *   client network  b: passes; expiry: last pass + auto_allow_ttl
 *   count           a: the window's start; b: the count; expiry: the
 *                   window's end
 *
 * Full (every slot of a key's window live): the entry that expires first
 * makes room, so the shortest-lived go first (the counts of short windows,
 * then triplets that never passed, oldest first); a key whose entry was
 * pushed out starts again (a triplet is FIRST again, a count from 0).
 * 65,536 slots hold a day of a busy site's distinct triplets at 45 a
 * minute; the memory store is one process's, and many replicas use Redis.
 *
 * A worker can die holding the lock; the next locker carries on. A slot is
 * claimed by freeing it (expiry 0), writing it, and writing its expiry
 * last; every other change is one store of a whole field, so whenever a
 * writer stops the table is whole (the dying worker's last step may be
 * half done: a triplet passed with its old expiry, a pass not counted). */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "proxy/lib/bounds.h"
#include "proxy/lib/siphash.h"
#include "proxy/shmlock.h"
#include "proxy/store_mem.h"

#define SLOTS MOAT_STORE_MEM_SLOTS
#define PROBE MOAT_STORE_MEM_PROBE

_Static_assert((SLOTS & (SLOTS - 1)) == 0 && PROBE > 0 && PROBE <= SLOTS, "slots: a power of two, at least a window");

enum kind { K_TRIPLET = 1, K_CLIENT, K_COUNT };

struct slot {
	uint64_t d[2];   /* the key's digest */
	int64_t expires; /* wall-clock second it expires at; 0: free */
	int64_t a, b;
};

struct store_shm {
	pthread_mutex_t mu;
	uint8_t hkey[2][16];
	struct slot slot[SLOTS];
};

struct store_shm *store_shm_new(void)
{
	struct store_shm *t = shmlock_map(sizeof *t);

	if (t) { /* zeroed: every slot free */
		siphash_random_key(t->hkey[0]);
		siphash_random_key(t->hkey[1]);
	}
	return t;
}

void store_shm_free(struct store_shm *t)
{
	shmlock_unmap(t, sizeof *t);
}

/* -1: the key is too long (STORE_KEY_MAX, NUL included). */
static int digest(const struct store_shm *t, enum kind kind, const char *key, uint64_t d[2])
{
	uint8_t buf[1 + STORE_KEY_MAX];
	size_t n = strnlen(key, STORE_KEY_MAX);

	if (n >= STORE_KEY_MAX)
		return -1;
	buf[0] = (uint8_t)kind;
	memcpy(buf + 1, key, n);
	d[0] = siphash24(t->hkey[0], buf, n + 1);
	d[1] = siphash24(t->hkey[1], buf, n + 1);
	return 0;
}

static int live(const struct slot *s, long long now)
{
	return __atomic_load_n(&s->expires, __ATOMIC_ACQUIRE) > now;
}

/* The key's live slot, or NULL; *room: where it may go (the first free
 * slot of its window, else the live one that expires first). */
static struct slot *find(struct store_shm *t, const uint64_t d[2], long long now, struct slot **room)
{
	struct slot *soonest = NULL;

	*room = NULL;
	for (size_t i = 0; i < PROBE; i++) {
		struct slot *s = &t->slot[(d[0] + i) & (SLOTS - 1)];

		if (!live(s, now)) {
			if (!*room)
				*room = s;
		} else if (s->d[0] == d[0] && s->d[1] == d[1]) {
			return s;
		} else if (!soonest || s->expires < soonest->expires) {
			soonest = s;
		}
	}
	if (!*room)
		*room = soonest;
	return NULL;
}

static void claim(struct slot *s, const uint64_t d[2], long long expires, long long a, long long b)
{
	__atomic_store_n(&s->expires, 0, __ATOMIC_RELEASE); /* free while it changes hands */
	s->d[0] = d[0];
	s->d[1] = d[1];
	s->a = a;
	s->b = b;
	__atomic_store_n(&s->expires, expires, __ATOMIC_RELEASE);
}

static long long ttl(int seconds)
{
	return seconds < 1 ? 1 : seconds;
}

/* A pass of the client network (its count refreshed), unless its place is
 * the triplet's own (a full window). */
static void count_pass(struct store_shm *t, const uint64_t dc[2], const struct slot *triplet,
                       const struct store_grey_params *p, long long now)
{
	struct slot *room, *c = find(t, dc, now, &room);

	if (c) {
		c->b = c->b < INT_MAX ? c->b + 1 : c->b;
		c->expires = now + ttl(p->auto_allow_ttl);
	} else if (room && room != triplet) {
		claim(room, dc, now + ttl(p->auto_allow_ttl), 0, 1);
	}
}

enum store_grey store_mem_greylist(struct store_shm *t, const char *triplet, const char *client,
                                   const struct store_grey_params *p, long long now, long long *retry_in)
{
	uint64_t dt[2], dc[2];
	struct slot *s, *c, *room;
	long long delay = p->delay < 0 ? 0 : p->delay;
	enum store_grey r;

	*retry_in = 0;
	if (!t || digest(t, K_TRIPLET, triplet, dt) < 0 || digest(t, K_CLIENT, client, dc) < 0 ||
	    shmlock_lock(&t->mu) != 0)
		return STORE_GREY_SKIPPED;
	c = find(t, dc, now, &room);
	if (p->auto_allow > 0 && c && c->b >= p->auto_allow) {
		r = STORE_GREY_ALLOWED;
	} else if (!(s = find(t, dt, now, &room))) {
		if (room)
			claim(room, dt, now + ttl(p->retry_window), now, 0);
		r = STORE_GREY_FIRST;
		*retry_in = delay;
	} else if (s->b) {
		s->expires = now + ttl(p->pass_ttl);
		r = STORE_GREY_PASSED;
	} else if (now - s->a < delay) {
		r = STORE_GREY_EARLY;
		*retry_in = s->a + delay - now;
	} else {
		s->b = 1;
		s->expires = now + ttl(p->pass_ttl);
		count_pass(t, dc, s, p, now);
		r = STORE_GREY_PASSED;
	}
	shmlock_unlock(&t->mu);
	return r;
}

void store_mem_count(struct store_shm *t, const char *key, long long add, int window, long long now,
                     struct store_count *out)
{
	long long w = ttl(window), start = now - ((now % w) + w) % w;
	uint64_t d[2];
	struct slot *s, *room;

	out->count = add > 0 ? add : 0;
	out->reset_at = start + w;
	out->shared = 0;
	if (!t || digest(t, K_COUNT, key, d) < 0 || shmlock_lock(&t->mu) != 0)
		return;
	s = find(t, d, now, &room);
	if (s && s->a == start) {
		long long n;

		if (__builtin_add_overflow(s->b, add, &n))
			n = add > 0 ? LLONG_MAX : 0;
		if (add)
			s->b = n < 0 ? 0 : n; /* a count given back is never below 0 */
		out->count = s->b;
	} else if (add > 0 && (s || room)) { /* a new window (the key's last one, or none) */
		claim(s ? s : room, d, start + w, start, add);
	}
	shmlock_unlock(&t->mu);
}

void store_mem_lock(struct store_shm *t)
{
	shmlock_lock(&t->mu);
}
