/* sessions.c - the open sessions of a worker: its list, their counts in
 * the shared connection table, the end of a shutdown when the last one goes */
#include <event2/event.h>

#include "proxy/conntable.h"
#include "proxy/lib/metrics.h"
#include "proxy/server.h"
#include "proxy/session.h"

void server_session_add(struct server *srv, struct session *s)
{
	s->next = srv->sessions;
	if (srv->sessions)
		srv->sessions->prev = s;
	srv->sessions = s;
	srv->nsessions++;
	metrics_sessions(srv->worker, srv->nsessions);
}

void server_session_gone(struct server *srv, struct session *s)
{
	if (s->counted_ip)
		conntable_give_addr(srv->conns, srv->worker, (struct sockaddr *)&s->peer);
	conntable_give(srv->conns, srv->worker); /* counted at accept (listener.c) */
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	srv->nsessions--;
	metrics_sessions(srv->worker, srv->nsessions);
	if (srv->stopping && srv->nsessions == 0)
		event_base_loopexit(srv->base, NULL);
}

