/* health.c - a worker's heartbeat and the backend probe behind /readyz.
 *
 * Every second the loop writes the time into its slot of the shared
 * counters: /healthz fails when a running worker's beat is older than
 * MOAT_HEALTH_STALE seconds (its loop is stuck). /readyz wants the backend
 * to have answered within MOAT_READY_PROBES backend_probe_interval periods,
 * its last answer good: every backend connection reports (backend.c:
 * heard), so under traffic no probe is needed; when nothing has heard the
 * backend for backend_probe_interval, one worker (metrics_probe_due) opens
 * a connection as a session would (banner, EHLO, STARTTLS as backend_tls
 * says) and QUITs. A refused or failed connect makes it not ready at once. */
#include <event2/event.h>

#include "proxy/backend.h"
#include "proxy/health.h"
#include "proxy/lib/metrics.h"
#include "proxy/lib/text.h"

static void probe_done(void *arg, const struct smtp_reply *r)
{
	struct server *srv = arg;

	backend_free(srv->health_probe); /* its answer is recorded (backend.c) */
	srv->health_probe = NULL;
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	uint64_t now = clock_ms();

	metrics_heartbeat(srv->worker, now);
	if (srv->health_probe || srv->stopping ||
	    !metrics_probe_due(now, (uint64_t)srv->cfg->backend_probe_interval * 1000))
		return;
	srv->health_probe = backend_open(srv->backends, srv->cfg, probe_done, srv);
	if (srv->health_probe)
		backend_set_quiet(srv->health_probe);
}

int health_start(struct server *srv)
{
	struct timeval second = {1, 0};

	if (!metrics_on())
		return 0;
	srv->health_tick = event_new(srv->base, -1, EV_PERSIST, tick, srv);
	if (!srv->health_tick || event_add(srv->health_tick, &second) < 0)
		return -1;
	metrics_heartbeat(srv->worker, clock_ms());
	metrics_listening(srv->worker, 1);
	return 0;
}

void health_draining(struct server *srv)
{
	metrics_listening(srv->worker, 0);
}

void health_stop(struct server *srv)
{
	if (srv->health_tick)
		event_free(srv->health_tick);
	srv->health_tick = NULL;
	backend_free(srv->health_probe);
	srv->health_probe = NULL;
	metrics_listening(srv->worker, 0);
}
