/* listener.h - listening sockets and the total connection limit */
#ifndef MOAT_LISTENER_H
#define MOAT_LISTENER_H

#include "proxy/server.h"

#define MOAT_LISTEN_MAX 16 /* listen addresses (config.listen) */

/* A TCP socket bound to sa (non-blocking, close-on-exec, SO_REUSEADDR;
 * SO_REUSEPORT with reuseport; IPv6-only for IPv6), not listening yet; -1
 * (errno set). */
int bind_socket(const struct sockaddr *sa, socklen_t len, int reuseport);
/* Bind every configured address, nworkers sockets each (SO_REUSEPORT):
 * fds[w][i] is worker w's socket for address i, bound but not listening.
 * Logs each bound address once, and a warning when another process has the
 * port. 0, or -1 after logging why. */
int listeners_bind(const struct config *c, int nworkers, int fds[][MOAT_LISTEN_MAX]);
/* Listen and accept on this worker's sockets (the listeners own the fds
 * from now). */
int listeners_start(struct server *srv, const int *fds, int n);
/* Shutdown: start a session for every connection queued, then close. */
void listeners_drain(struct server *srv);
/* Stop accepting. */
void listeners_close(struct server *srv);

#endif
