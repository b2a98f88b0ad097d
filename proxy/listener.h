/* listener.h - listening sockets and the total connection limit */
#ifndef MOAT_LISTENER_H
#define MOAT_LISTENER_H

#include "proxy/server.h"

#define MOAT_LISTEN_MAX 16 /* listen addresses (config.listen) */

/* Bind every configured address, nworkers sockets each (SO_REUSEPORT when
 * more than one): fds[w][i] is worker w's socket for address i. Logs each
 * bound address once. 0, or -1 after logging why. */
int listeners_bind(const struct config *c, int nworkers, int fds[][MOAT_LISTEN_MAX]);
/* Accept on this worker's sockets (the listeners own the fds from now). */
int listeners_start(struct server *srv, const int *fds, int n);
/* Stop accepting (shutdown). */
void listeners_close(struct server *srv);

#endif
