/* store.h - state every replica of moat shares (issue 17): greylisting
 * triplets and rate-limit counters, in Redis when `redis` is set, else in
 * memory the workers of one process share (a table made before they fork,
 * as authfail.c's). The session and the features (greylist.c,
 * ratelimit.c) know only this interface; which store answers is this
 * module's business.
 *
 * Every call answers later, from the loop (the callback rule of
 * docs/design.md): never before the call returns, exactly once unless
 * cancelled. A call returns NULL only when not even its request could be
 * allocated (or st is NULL): then no answer will come (as dns_lookup). A call's deadline is redis_timeout; a store that is down,
 * slow or restarting answers by the fault rules below, never with an
 * error the session has to turn into a 5xx.
 *
 * Faults (fail open): Redis unreachable, not answering within the deadline
 * or answering with an error -> greylisting answers STORE_GREY_SKIPPED (the
 * message is not greylisted), counting answers from the in-memory table of
 * this process (struct store_count.shared = 0). The change of state
 * (up -> down, down -> up) is logged once and counted in the metrics;
 * reconnection with backoff is the store's, not the caller's.
 *
 * Both operations are one atomic step in the store (a Lua script in Redis,
 * the table's lock in memory), so two replicas racing on one key stay
 * correct. Clock: seconds of wall-clock time; in Redis the server's TIME
 * (replicas with skewed clocks agree). */
#ifndef MOAT_PROXY_STORE_H
#define MOAT_PROXY_STORE_H

#include <stddef.h>

struct event_base;
struct store;
struct store_req;

#define STORE_KEY_MAX 512 /* bytes of a key, NUL included (longer: the call answers as a fault) */

/* ---- greylisting ---- */

enum store_grey {
	STORE_GREY_FIRST,   /* triplet never seen (now recorded): refuse 451 4.7.1 */
	STORE_GREY_EARLY,   /* seen, delay not passed yet: refuse 451 4.7.1 */
	STORE_GREY_PASSED,  /* retried after the delay, within the window (or passed before) */
	STORE_GREY_ALLOWED, /* the client network has passed auto_allow times: not greylisted */
	STORE_GREY_SKIPPED, /* the store is down: not greylisted (fail open) */
};

struct store_grey_params {
	int delay;          /* greylist_delay, seconds (default 300) */
	int retry_window;   /* greylist_retry_window, seconds (default 86400): a FIRST/EARLY
	                     * entry lives this long; a retry after it starts again (FIRST) */
	int pass_ttl;       /* a passed triplet is remembered this long (refreshed on each pass) */
	int auto_allow;     /* greylist_auto_allow (default 5; 0: never) */
	int auto_allow_ttl; /* the client network's pass count lives this long (refreshed) */
};

/* The answer: state, and for FIRST/EARLY the seconds until a retry passes. */
typedef void (*store_grey_fn)(void *arg, enum store_grey state, long long retry_in);

/* One atomic step for the triplet key and its client network key:
 *   client's passes >= auto_allow (auto_allow > 0) -> ALLOWED
 *   triplet absent (or expired)                   -> record first=now,
 *                                                    ttl retry_window; FIRST
 *   now - first < delay                            -> EARLY
 *   otherwise                                      -> mark passed, ttl pass_ttl;
 *                                                    client's passes += 1 (only on
 *                                                    the step that marks it passed),
 *                                                    ttl auto_allow_ttl; PASSED
 * Keys are made by the caller (greylist.c: "g:" network "|" sender "|"
 * recipient, "ga:" network). */
struct store_req *store_greylist(struct store *st, const char *triplet, const char *client,
                                 const struct store_grey_params *p, store_grey_fn fn, void *arg);

/* ---- counting (rate limits) ---- */

struct store_count {
	long long count;    /* the key's count in this window, add included */
	long long reset_at; /* wall-clock second the window ends */
	int shared;         /* 1: counted in Redis (every replica); 0: this process only */
};

typedef void (*store_count_fn)(void *arg, const struct store_count *c);

/* Fixed windows of `window` seconds aligned to the epoch (the window of
 * now is [now - now % window, + window)): add `add` (0: read only;
 * negative: counts given back, never below 0) to key's count in the
 * current window and answer the new count. The key expires with its
 * window. */
struct store_req *store_count(struct store *st, const char *key, long long add, int window,
                              store_count_fn fn, void *arg);

/* The answer will not come (the session is closing). */
void store_cancel(struct store_req *r);

/* ---- life ---- */

/* The in-memory table, made before the workers fork (NULL on failure,
 * errno set). */
struct store_shm *store_shm_new(void);
void store_shm_free(struct store_shm *shm);

struct store_config {
	const char *redis;          /* "host:port", "[v6]:port", "/path/to/socket" or NULL: memory only */
	const char *redis_password; /* NULL: no AUTH */
	int redis_db;               /* SELECT (0) */
	int redis_timeout;          /* milliseconds per call, connect included (default 1000) */
};

/* A worker's store: its own connection to Redis (made at once, without
 * blocking; reconnected with backoff), the process's shared table. */
struct store *store_new(struct event_base *base, struct store_shm *shm, const struct store_config *cfg);
/* Every call must have been answered or cancelled. */
void store_free(struct store *st);

/* For /metrics and health: 1 Redis in use and answering, 0 down, -1 not configured. */
int store_redis_up(const struct store *st);

#endif
