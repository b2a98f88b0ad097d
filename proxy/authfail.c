/* authfail.c - failed AUTH per client address across workers (see authfail.h).
 *
 * One shared mapping, made like the connection table's (conntable.c): a
 * process-shared robust mutex and an open-addressing table of (address,
 * window start, count). An address's slot lies in a window of
 * MOAT_AUTHFAIL_PROBE slots from its hash (keyed: a client cannot aim its
 * addresses at one window). A slot whose count is 0, or whose window has
 * passed, is free: nothing is ever removed or moved.
 *
 * A worker can die holding the lock; the next locker carries on. A slot is
 * claimed by writing its count last, and every other change is one store,
 * so the table is whole whenever a writer stops (the dying worker's last
 * failure may be lost, or its window restarted).
 *
 * Full: a window whose slots all hold other addresses that are blocked
 * drops the new failure (blocked addresses are never pushed out: a client
 * with many addresses must not unblock one by failing with the others);
 * else the oldest unblocked slot makes room. */
#include <stdint.h>
#include <string.h>

#include "proxy/authfail.h"
#include "proxy/lib/bounds.h"
#include "proxy/lib/netaddr.h"
#include "proxy/lib/siphash.h"
#include "proxy/shmlock.h"

#define SLOTS MOAT_AUTHFAIL_SLOTS
#define PROBE MOAT_AUTHFAIL_PROBE

_Static_assert((SLOTS & (SLOTS - 1)) == 0 && PROBE <= SLOTS, "slots: a power of two, at least a window");

struct slot {
	uint8_t key[16];
	int64_t start;   /* the window's start, seconds */
	int32_t count;   /* failures in it; 0: free */
	int32_t pad;
};

struct authfail {
	pthread_mutex_t mu;
	uint8_t hkey[16];
	struct slot slot[SLOTS];
};

struct authfail *authfail_new(void)
{
	struct authfail *t = shmlock_map(sizeof *t);

	if (t) /* zeroed: every slot free */
		siphash_random_key(t->hkey);
	return t;
}

void authfail_free(struct authfail *t)
{
	shmlock_unmap(t, sizeof *t);
}

static int live(const struct slot *s, int window, long long now)
{
	return s->count > 0 && now - s->start < window && now >= s->start;
}

static int blocking(const struct slot *s, int limit, int window, long long now)
{
	return live(s, window, now) && s->count >= limit;
}

/* The address's slot in its window, or -1; *room: a slot it may take (free,
 * else the oldest one that blocks nobody), or -1. */
static int find(const struct authfail *t, const uint8_t key[16], int limit, int window, long long now, int *room)
{
	size_t h = (size_t)siphash24(t->hkey, key, 16);
	int oldest = -1;

	*room = -1;
	for (int i = 0; i < PROBE; i++) {
		int at = (int)((h + (size_t)i) & (SLOTS - 1));
		const struct slot *s = &t->slot[at];

		if (s->count > 0 && memcmp(s->key, key, 16) == 0)
			return at;
		if (!live(s, window, now)) {
			if (*room < 0)
				*room = at;
		} else if (!blocking(s, limit, window, now) && (oldest < 0 || s->start < t->slot[oldest].start)) {
			oldest = at;
		}
	}
	if (*room < 0)
		*room = oldest;
	return -1;
}

/* Lock and look sa up (find); -2: nothing counted (no table, no limit, no
 * lock), else the lock is held. */
static int lookup(struct authfail *t, const struct sockaddr *sa, int limit, int window, long long now,
                  uint8_t key[16], int *room)
{
	if (!t || limit <= 0)
		return -2;
	sockaddr_key16(sa, key);
	if (shmlock_lock(&t->mu) != 0)
		return -2;
	return find(t, key, limit, window, now, room);
}

int authfail_blocked(struct authfail *t, const struct sockaddr *sa, int limit, int window, long long now)
{
	uint8_t key[16];
	int room, at = lookup(t, sa, limit, window, now, key, &room), r;

	if (at == -2)
		return 0;
	r = at >= 0 && blocking(&t->slot[at], limit, window, now);
	shmlock_unlock(&t->mu);
	return r;
}

int authfail_add(struct authfail *t, const struct sockaddr *sa, int limit, int window, long long now)
{
	uint8_t key[16];
	int room, at = lookup(t, sa, limit, window, now, key, &room), r = 0;

	if (at == -2)
		return 0;
	if (at >= 0 && live(&t->slot[at], window, now)) {
		struct slot *s = &t->slot[at];

		if (s->count + 1 >= limit && s->count < limit)
			s->start = now; /* blocked for a whole window from now */
		__atomic_store_n(&s->count, s->count < limit ? s->count + 1 : s->count, __ATOMIC_RELEASE);
		r = s->count >= limit;
	} else if (at >= 0 || room >= 0) {
		struct slot *s = &t->slot[at >= 0 ? at : room];

		__atomic_store_n(&s->count, 0, __ATOMIC_RELEASE); /* free while it changes hands */
		memcpy(s->key, key, 16);
		s->start = now;
		__atomic_store_n(&s->count, 1, __ATOMIC_RELEASE);
		r = limit <= 1;
	}
	shmlock_unlock(&t->mu);
	return r;
}

void authfail_lock(struct authfail *t)
{
	shmlock_lock(&t->mu);
}
