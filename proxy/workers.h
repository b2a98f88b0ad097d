/* workers.h - the supervisor of workers = N */
#ifndef MOAT_WORKERS_H
#define MOAT_WORKERS_H

#include "proxy/listener.h"

#include <sys/types.h>

struct server;

/* What a worker reports to the supervisor (worker_report): its loop serves,
 * having started, or having applied (or refused) a reload. */
enum { WORKER_STARTED = 1, WORKER_RELOADED = 2 };

/* A worker's report to the supervisor's pid: a queued real-time signal
 * (one per report, none lost), which the supervisor waits for with the
 * others. The supervisor tells the service manager READY=1 when every
 * worker has started, and again when every worker has reloaded. */
void worker_report(pid_t supervisor, int what);

/* Start srv->nworkers workers on their sockets (fds[w]) and supervise them
 * until they stop; the exit status for the process. */
int workers_supervise(struct server *srv, int fds[][MOAT_LISTEN_MAX]);

#endif
