/* store_mem.h - the in-memory table behind store.h (see store_mem.c): the
 * store of one process's workers without Redis, and the counts of this
 * process while Redis is down. Synchronous, with the time given (store.c
 * reads the wall clock and delivers the answers later). */
#ifndef MOAT_PROXY_STORE_MEM_H
#define MOAT_PROXY_STORE_MEM_H

#include "proxy/store.h"

/* store.h's greylisting step at now (seconds); STORE_GREY_SKIPPED when the
 * table cannot answer (a key too long, no table, the lock failing).
 * *retry_in: for FIRST and EARLY, the seconds until a retry passes. */
enum store_grey store_mem_greylist(struct store_shm *shm, const char *triplet, const char *client,
                                   const struct store_grey_params *p, long long now, long long *retry_in);

/* store.h's counting step at now; shared is 0. A negative add gives counts
 * back: never below 0, and nothing in a window not counted. When the table cannot keep
 * the count (a key too long, no table, the lock failing), the count is add
 * alone, or 0 (as if the window had just begun): limits fail open. */
void store_mem_count(struct store_shm *shm, const char *key, long long add, int window, long long now,
                     struct store_count *out);

/* Tests: hold the lock, as a worker that dies inside the table would. */
void store_mem_lock(struct store_shm *shm);

#endif
