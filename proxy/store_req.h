/* store_req.h - inside the store module: a call's request, shared by
 * store.c (calls, the ready queue, answers) and store_redis.c (the Redis
 * connection). Nothing outside the module includes it. */
#ifndef MOAT_PROXY_STORE_REQ_H
#define MOAT_PROXY_STORE_REQ_H

#include "proxy/store.h"

struct store_redis;

enum store_req_kind { REQ_GREY, REQ_COUNT };
enum store_req_state {
	REQ_NEW,       /* being made */
	REQ_SENT,      /* store_redis.c holds it (and hiredis may) */
	REQ_READY,     /* answered: on the ready queue */
	REQ_CANCELLED, /* still held by store_redis.c; freed when handed back */
};

struct store_req {
	struct store *st;
	struct store_req *prev, *next; /* the ready queue, or store_redis.c's list */
	enum store_req_kind kind;
	enum store_req_state state;
	union {
		store_grey_fn grey;
		store_count_fn count;
	} fn;
	void *arg;
	/* the answer, filled in advance with the fault's answer */
	enum store_grey grey;
	long long retry_in;
	struct store_count count;
	/* the call, for Redis */
	struct store_grey_params grey_params;
	long long add;
	int window;
	long long deadline_ms;         /* store_redis.c: monotonic ms the answer is due by */
	int evalsha_failed;            /* NOSCRIPT seen: sent again as EVAL */
	char *key, *key2;              /* copies in keys[] (empty without Redis) */
	char keys[];
};

/* A list of requests in order (the ready queue, the calls Redis holds). */
struct store_list {
	struct store_req *head, *tail;
};

static inline void store_list_push(struct store_list *l, struct store_req *r)
{
	r->next = NULL;
	r->prev = l->tail;
	if (l->tail)
		l->tail->next = r;
	else
		l->head = r;
	l->tail = r;
}

static inline void store_list_unlink(struct store_list *l, struct store_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		l->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		l->tail = r->prev;
	r->prev = r->next = NULL;
}

/* store.c: r is answered (its answer fields hold it): delivered on a later
 * loop turn; a cancelled r is freed. */
void store_answered(struct store_req *r);
/* store.c: wall-clock seconds. */
long long store_now(void);

/* store_redis.c: a worker's connection to Redis. */
struct store_redis *store_redis_new(struct event_base *base, const struct store_config *cfg, struct store *st);
/* Every request it holds is handed back (store_answered) as a fault. */
void store_redis_free(struct store_redis *rd);
/* r goes to Redis: 0, and it will be handed back answered (by Redis, or as
 * a fault: down, slow, a bad reply); -1: not taken (not connected and not
 * connecting, the queue full): the caller answers r with its fault answer. */
int store_redis_send(struct store_redis *rd, struct store_req *r);
/* 1 up (answering), 0 down. */
int store_redis_state(const struct store_redis *rd);

#endif
