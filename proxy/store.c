/* store.c - the store's calls and their answers (see store.h): which store
 * answers, and every answer delivered later, from the loop.
 *
 * A call makes a request. Without Redis, or while it is down, the
 * in-memory table (store_mem.c) answers at once and the request joins the
 * ready queue; one event made active delivers the whole queue in order on
 * the loop's next turn (the callback rule of docs/design.md: N answers
 * cost one turn). With Redis, the request goes to store_redis.c, which
 * hands it back here (store_answered) when Redis answered, or faulted,
 * or its deadline passed; it joins the ready queue the same way. A count
 * is also kept in the memory table when it goes to Redis: that count
 * answers if Redis faults (limits fall back to this process's counts,
 * which then include the calls made before the fault). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "proxy/store.h"
#include "proxy/store_mem.h"
#include "proxy/store_req.h"

struct store {
	struct event_base *base;
	struct store_shm *shm;
	struct store_redis *redis;   /* NULL: memory only */
	struct event *ready_ev;      /* active while the ready queue holds requests */
	struct store_list ready;      /* answered, not yet called back, in order */
	int delivering;              /* on_ready is calling back */
};

long long store_now(void)
{
	return (long long)time(NULL);
}

/* r is answered: it joins the ready queue (freed at once if cancelled). */
void store_answered(struct store_req *r)
{
	struct store *st = r->st;

	if (r->state == REQ_CANCELLED) {
		free(r);
		return;
	}
	r->state = REQ_READY;
	if (!st->ready.head && !st->delivering)
		event_active(st->ready_ev, EV_READ, 0);
	store_list_push(&st->ready, r);
}

/* The whole queue, in order, answers queued meanwhile included. Each is
 * unlinked before its callback, which may cancel the others or call again. */
static void on_ready(evutil_socket_t fd, short what, void *arg)
{
	struct store *st = arg;
	struct store_req *r;

	st->delivering = 1;
	while ((r = st->ready.head) != NULL) {
		store_list_unlink(&st->ready, r);
		if (r->kind == REQ_GREY)
			r->fn.grey(r->arg, r->grey, r->retry_in);
		else
			r->fn.count(r->arg, &r->count);
		free(r);
	}
	st->delivering = 0;
}

/* A request with room for the keys Redis may need again (EVAL after
 * NOSCRIPT); NULL if a key is too long for the store or without memory. */
static struct store_req *req_new(struct store *st, const char *k1, const char *k2)
{
	size_t n1 = strnlen(k1, STORE_KEY_MAX), n2 = k2 ? strnlen(k2, STORE_KEY_MAX) : 0;
	struct store_req *r;

	if (!st->redis) /* the table reads its keys during the call */
		n1 = n2 = 0;
	r = calloc(1, sizeof *r + n1 + 1 + n2 + 1);
	if (!r)
		return NULL;
	r->st = st;
	r->key = r->keys;
	r->key2 = r->keys + n1 + 1;
	memcpy(r->key, k1, n1);
	if (k2)
		memcpy(r->key2, k2, n2);
	return r;
}

struct store_req *store_greylist(struct store *st, const char *triplet, const char *client,
                                 const struct store_grey_params *p, store_grey_fn fn, void *arg)
{
	struct store_req *r = st ? req_new(st, triplet, client) : NULL;
	int too_long = strnlen(triplet, STORE_KEY_MAX) >= STORE_KEY_MAX || strnlen(client, STORE_KEY_MAX) >= STORE_KEY_MAX;

	if (!r)
		return NULL;
	r->kind = REQ_GREY;
	r->fn.grey = fn;
	r->arg = arg;
	r->grey_params = *p;
	if (too_long) {
		r->grey = STORE_GREY_SKIPPED;
	} else if (st->redis) {
		r->grey = STORE_GREY_SKIPPED; /* if Redis faults */
		if (store_redis_send(st->redis, r) == 0)
			return r;
	} else {
		r->grey = store_mem_greylist(st->shm, triplet, client, p, store_now(), &r->retry_in);
	}
	store_answered(r);
	return r;
}

struct store_req *store_count(struct store *st, const char *key, long long add, int window,
                              store_count_fn fn, void *arg)
{
	struct store_req *r = st ? req_new(st, key, NULL) : NULL;

	if (!r)
		return NULL;
	r->kind = REQ_COUNT;
	r->fn.count = fn;
	r->arg = arg;
	r->add = add;
	r->window = window;
	/* the answer without Redis, or if it faults */
	store_mem_count(st->shm, key, add, window, store_now(), &r->count);
	if (st->redis && strnlen(key, STORE_KEY_MAX) < STORE_KEY_MAX && store_redis_send(st->redis, r) == 0)
		return r;
	store_answered(r);
	return r;
}

void store_cancel(struct store_req *r)
{
	if (!r || r->state == REQ_CANCELLED)
		return;
	if (r->state == REQ_READY) {
		store_list_unlink(&r->st->ready, r);
		free(r);
	} else { /* with Redis: freed when it comes back (store_answered) */
		r->state = REQ_CANCELLED;
	}
}

struct store *store_new(struct event_base *base, struct store_shm *shm, const struct store_config *cfg)
{
	struct store *st = calloc(1, sizeof *st);

	if (!st)
		return NULL;
	st->base = base;
	st->shm = shm;
	st->ready_ev = event_new(base, -1, 0, on_ready, st);
	if (!st->ready_ev) {
		free(st);
		return NULL;
	}
	if (cfg && cfg->redis && !(st->redis = store_redis_new(base, cfg, st))) {
		store_free(st);
		return NULL;
	}
	return st;
}

void store_free(struct store *st)
{
	if (!st)
		return;
	if (st->redis)
		store_redis_free(st->redis); /* what Redis still holds comes back here, answered */
	while (st->ready.head) {
		struct store_req *r = st->ready.head;

		store_list_unlink(&st->ready, r);
		free(r);
	}
	event_free(st->ready_ev);
	free(st);
}

int store_redis_up(const struct store *st)
{
	return st && st->redis ? store_redis_state(st->redis) : -1;
}
