/* conntable.h - open connections counted for the whole of moat, in total
 * and per client address, in memory the workers share: the table is made
 * before they fork, so max_connections and max_connections_per_ip hold
 * exactly whichever worker the kernel hands a connection to. One process
 * (workers = 1) uses the same table. */
#ifndef MOAT_CONNTABLE_H
#define MOAT_CONNTABLE_H

#include <sys/socket.h>

struct conntable;

/* conntable_take_addr's answers */
enum conn_take {
	CONN_FULL = -1, /* no room left for this address: refuse (see conntable.c) */
	CONN_OVER = 0,  /* limit connections from it are open already */
	CONN_TAKEN = 1, /* counted; give it back when the connection ends */
};

/* A table for workers 0 .. nworkers-1 (at most MOAT_WORKERS_MAX) in a
 * shared anonymous mapping, which processes forked later share. NULL on
 * failure (errno set). */
struct conntable *conntable_new(int nworkers);
void conntable_free(struct conntable *t);

/* Worker w admits a connection when fewer than limit are open in all:
 * 1 (counted), or 0. */
int conntable_take(struct conntable *t, int w, int limit);
void conntable_give(struct conntable *t, int w);

/* The same for sa's address (IPv4 and its v4-mapped IPv6 spelling are one
 * address; the port does not count). */
enum conn_take conntable_take_addr(struct conntable *t, int w, const struct sockaddr *sa, int limit);
void conntable_give_addr(struct conntable *t, int w, const struct sockaddr *sa);

/* Worker w is gone, and its connections with it (a crash, kill -9): give
 * back everything it counted. The supervisor calls it before a restart. */
void conntable_forget(struct conntable *t, int w);

/* Open connections in all, and from sa's address. */
int conntable_total(struct conntable *t);
int conntable_count(struct conntable *t, const struct sockaddr *sa);

/* Tests: hold the lock, as a worker that dies inside the table would. */
void conntable_lock(struct conntable *t);
void conntable_unlock(struct conntable *t);

#endif
