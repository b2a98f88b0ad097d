/* shmlock.c - a process-shared robust mutex (see shmlock.h) */
#include <errno.h>
#include <sys/mman.h>

#include "proxy/shmlock.h"

int shmlock_init(pthread_mutex_t *mu)
{
	pthread_mutexattr_t a;
	int e;

	if ((e = pthread_mutexattr_init(&a)) != 0)
		return e;
	if ((e = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED)) == 0 &&
	    (e = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST)) == 0)
		e = pthread_mutex_init(mu, &a);
	pthread_mutexattr_destroy(&a);
	return e;
}

int shmlock_lock(pthread_mutex_t *mu)
{
	int e = pthread_mutex_lock(mu);

	if (e == EOWNERDEAD) /* a worker died holding it: the table is whole (its file says why) */
		e = pthread_mutex_consistent(mu);
	return e;
}

void shmlock_unlock(pthread_mutex_t *mu)
{
	pthread_mutex_unlock(mu);
}

void *shmlock_map(size_t size)
{
	void *t = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int e;

	if (t == MAP_FAILED)
		return NULL;
	if ((e = shmlock_init((pthread_mutex_t *)t)) != 0) {
		munmap(t, size);
		errno = e;
		return NULL;
	}
	return t;
}

void shmlock_unmap(void *t, size_t size)
{
	if (!t)
		return;
	pthread_mutex_destroy((pthread_mutex_t *)t);
	munmap(t, size);
}
