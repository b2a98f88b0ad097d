/* conntable.c - connections counted across workers (see conntable.h).
 *
 * One shared mapping: a process-shared robust mutex, the open connections
 * of each worker, and an open-addressing table of (address, worker) ->
 * count. Each worker counts in slots of its own, so the supervisor can give
 * back a dead worker's connections (conntable_forget) without knowing them.
 * An address's slots lie in a window of MOAT_CONN_TABLE_PROBE slots from
 * its hash (keyed: a client cannot aim its addresses at one window); its
 * count is the sum over the window. A slot is free when its count is 0, so
 * freeing is one store and nothing ever moves.
 *
 * A worker can die holding the lock (kill -9 in the middle of an accept).
 * The next locker gets EOWNERDEAD and carries on: every change is a single
 * store, or a slot claimed by writing its count last, so the table is
 * whole whenever a writer stops, and only the dead worker's own slots (which
 * the supervisor clears) may be off by its last step.
 *
 * Full: an address whose window has no free slot is refused (CONN_FULL, a
 * 421). Admitting it uncounted would let an address past its limit exactly
 * when moat is most loaded; a 421 is temporary and the client retries. A
 * window fills only when tens of thousands of (address, worker) pairs are
 * open at once, beyond the default max_connections of 1,000. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>

#include "proxy/conntable.h"
#include "proxy/lib/bounds.h"
#include "proxy/lib/netaddr.h"
#include "proxy/lib/siphash.h"
#include "proxy/shmlock.h"

#define SLOTS MOAT_CONN_TABLE_SLOTS
#define PROBE MOAT_CONN_TABLE_PROBE

_Static_assert((SLOTS & (SLOTS - 1)) == 0 && PROBE <= SLOTS, "slots: a power of two, at least a window");

struct slot {
	uint8_t key[16]; /* IPv4 as v4-mapped IPv6, so both spellings count once */
	int32_t worker;
	int32_t count;   /* 0: free */
};

struct conntable {
	pthread_mutex_t mu;        /* process-shared, robust */
	uint8_t hkey[16];          /* the window's hash key, random */
	int nworkers;
	int open[MOAT_WORKERS_MAX]; /* connections each worker holds */
	struct slot slot[SLOTS];
};

/* Stores another process may find half-done if this one dies: a count is
 * written last (release: the key and worker before it are whole). */
static void set_count(int32_t *p, int32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static void key_of(const struct sockaddr *sa, uint8_t key[16])
{
	sockaddr_key16(sa, key);
}

static int lock(struct conntable *t)
{
	return shmlock_lock(&t->mu); /* a dead worker's lock: the table is whole (above) */
}

static void unlock(struct conntable *t)
{
	shmlock_unlock(&t->mu);
}

struct conntable *conntable_new(int nworkers)
{
	struct conntable *t;

	if (nworkers < 1 || nworkers > MOAT_WORKERS_MAX) {
		errno = EINVAL;
		return NULL;
	}
	if (!(t = shmlock_map(sizeof *t)))
		return NULL;
	/* the mapping is zeroed: every slot free, every worker at 0 */
	t->nworkers = nworkers;
	siphash_random_key(t->hkey);
	return t;
}

void conntable_free(struct conntable *t)
{
	shmlock_unmap(t, sizeof *t);
}

static int total(const struct conntable *t)
{
	int n = 0;

	for (int w = 0; w < t->nworkers; w++)
		n += t->open[w];
	return n;
}

int conntable_take(struct conntable *t, int w, int limit)
{
	int ok;

	if (lock(t) != 0)
		return 0;
	ok = total(t) < limit;
	if (ok)
		t->open[w]++;
	unlock(t);
	return ok;
}

void conntable_give(struct conntable *t, int w)
{
	if (lock(t) != 0)
		return;
	if (t->open[w] > 0)
		t->open[w]--;
	unlock(t);
}

/* The window of key: the slot worker w counts it in (or -1), the first
 * free slot (or -1), and the address's count over every worker. */
struct window {
	int mine, free, sum;
};

static struct window scan(const struct conntable *t, const uint8_t key[16], int w)
{
	struct window r = {-1, -1, 0};
	size_t h = (size_t)siphash24(t->hkey, key, 16);

	for (int i = 0; i < PROBE; i++) {
		int at = (int)((h + (size_t)i) & (SLOTS - 1));
		const struct slot *s = &t->slot[at];

		if (s->count == 0) {
			if (r.free < 0)
				r.free = at;
		} else if (memcmp(s->key, key, 16) == 0) {
			r.sum += s->count;
			if (s->worker == w)
				r.mine = at;
		}
	}
	return r;
}

enum conn_take conntable_take_addr(struct conntable *t, int w, const struct sockaddr *sa, int limit)
{
	uint8_t key[16];
	enum conn_take r;
	struct window win;

	key_of(sa, key);
	if (lock(t) != 0)
		return CONN_FULL;
	win = scan(t, key, w);
	if (win.sum >= limit) {
		r = CONN_OVER;
	} else if (win.mine >= 0) {
		set_count(&t->slot[win.mine].count, t->slot[win.mine].count + 1);
		r = CONN_TAKEN;
	} else if (win.free >= 0) {
		struct slot *s = &t->slot[win.free];

		memcpy(s->key, key, 16);
		s->worker = w;
		set_count(&s->count, 1);
		r = CONN_TAKEN;
	} else {
		r = CONN_FULL;
	}
	unlock(t);
	return r;
}

void conntable_give_addr(struct conntable *t, int w, const struct sockaddr *sa)
{
	uint8_t key[16];
	struct window win;

	key_of(sa, key);
	if (lock(t) != 0)
		return;
	win = scan(t, key, w);
	if (win.mine >= 0)
		set_count(&t->slot[win.mine].count, t->slot[win.mine].count - 1);
	unlock(t);
}

void conntable_forget(struct conntable *t, int w)
{
	if (lock(t) != 0)
		return;
	for (int i = 0; i < SLOTS; i++)
		if (t->slot[i].worker == w && t->slot[i].count > 0)
			set_count(&t->slot[i].count, 0);
	t->open[w] = 0;
	unlock(t);
}

int conntable_total(struct conntable *t)
{
	int n;

	if (lock(t) != 0)
		return -1;
	n = total(t);
	unlock(t);
	return n;
}

int conntable_count(struct conntable *t, const struct sockaddr *sa)
{
	uint8_t key[16];
	int n;

	key_of(sa, key);
	if (lock(t) != 0)
		return -1;
	n = scan(t, key, -1).sum;
	unlock(t);
	return n;
}

void conntable_lock(struct conntable *t)
{
	lock(t);
}

void conntable_unlock(struct conntable *t)
{
	unlock(t);
}
