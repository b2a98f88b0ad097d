/* metrics_http.h - metrics_listen: /metrics, /healthz and /readyz */
#ifndef MOAT_METRICS_HTTP_H
#define MOAT_METRICS_HTTP_H

#include "proxy/server.h"

/* With metrics_listen: the shared counters (metrics_init) and the
 * listening socket (srv->metrics_fd), before the workers fork and before
 * privileges are dropped; logs the address ("metrics_listening"). Without:
 * nothing (srv->metrics_fd = -1). 0, or -1 after logging why. */
int metrics_http_setup(struct server *srv);
/* A worker: answer requests on srv->metrics_fd from its loop. 0, or -1. */
int metrics_http_start(struct server *srv);
/* Stop answering; close the HTTP connections still open. */
void metrics_http_stop(struct server *srv);

#endif
