/* workers.h - the supervisor of workers = N */
#ifndef MOAT_WORKERS_H
#define MOAT_WORKERS_H

#include "proxy/listener.h"

struct server;

/* Start srv->nworkers workers on their sockets (fds[w]) and supervise them
 * until they stop; the exit status for the process. */
int workers_supervise(struct server *srv, int fds[][MOAT_LISTEN_MAX]);

#endif
