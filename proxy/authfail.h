/* authfail.h - failed AUTH attempts per client address, counted for the
 * whole of moat: in memory the workers share (made before they fork, as
 * the connection table), so auth_fail_limit holds whichever worker the
 * kernel hands a client's connections to. The session knows only this
 * interface: a count shared between several moats (issue 17: Redis) can
 * take its place.
 *
 * A fixed window per address: the first failure starts it, and failures
 * within auth_fail_window seconds of that start count together; the one
 * that reaches auth_fail_limit blocks the address for a whole window from
 * then on. An address's failures age out with its window. */
#ifndef MOAT_AUTHFAIL_H
#define MOAT_AUTHFAIL_H

#include <sys/socket.h>

struct authfail;

/* A table in a shared anonymous mapping, which processes forked later
 * share. NULL on failure (errno set). */
struct authfail *authfail_new(void);
void authfail_free(struct authfail *t);

/* sa's address (IPv4 and its v4-mapped IPv6 spelling are one) reached limit
 * failures in its window, which has not passed at now (seconds, any clock
 * every process shares: CLOCK_MONOTONIC). limit 0, or t NULL: never. */
int authfail_blocked(struct authfail *t, const struct sockaddr *sa, int limit, int window, long long now);
/* One more failure of sa's address at now; 1 if that blocks it, else 0.
 * Table full (every slot of the address's window blocking another
 * address): not counted. */
int authfail_add(struct authfail *t, const struct sockaddr *sa, int limit, int window, long long now);

/* Tests: hold the lock, as a worker that dies inside the table would. */
void authfail_lock(struct authfail *t);

#endif
