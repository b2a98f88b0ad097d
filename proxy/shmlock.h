/* shmlock.h - a mutex for memory the workers share (the connection table,
 * the failed-AUTH table): process-shared and robust, so a worker killed
 * holding it (kill -9 in the middle of an accept) leaves it to the next
 * locker instead of every worker waiting for ever. The tables keep
 * themselves whole whatever store a dead worker did last (each says how). */
#ifndef MOAT_SHMLOCK_H
#define MOAT_SHMLOCK_H

#include <pthread.h>

#include <stddef.h>

/* A table of size bytes in a zeroed shared anonymous mapping (processes
 * forked later share it), whose first member is its mutex, made ready.
 * NULL on failure (errno set). */
void *shmlock_map(size_t size);
void shmlock_unmap(void *table, size_t size);
/* 0, or an errno value. */
int shmlock_init(pthread_mutex_t *mu);
/* 0 (held: a dead owner's lock is taken over), or an errno value. */
int shmlock_lock(pthread_mutex_t *mu);
void shmlock_unlock(pthread_mutex_t *mu);

#endif
