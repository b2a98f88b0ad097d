/* health.h - what /healthz and /readyz read: a worker's heartbeat, whether
 * it listens, and a probe of the backend when it has not answered lately */
#ifndef MOAT_HEALTH_H
#define MOAT_HEALTH_H

#include "proxy/server.h"

/* With metrics_listen: beat now and every second from the loop, listening
 * from now, and probe the backend (one worker per backend_probe_interval)
 * when nothing has heard it for that long. 0, or -1. */
int health_start(struct server *srv);
/* SIGTERM: not listening any more (/readyz says 503 while it drains). */
void health_draining(struct server *srv);
void health_stop(struct server *srv);

#endif
