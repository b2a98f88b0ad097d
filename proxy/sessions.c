/* sessions.c - the open sessions of a worker: its list, the per-address
 * counts, the end of a shutdown when the last one goes */
#include <event2/event.h>

#include "proxy/iptable.h"
#include "proxy/server.h"
#include "proxy/session.h"

void server_session_add(struct server *srv, struct session *s)
{
	s->next = srv->sessions;
	if (srv->sessions)
		srv->sessions->prev = s;
	srv->sessions = s;
	srv->nsessions++;
}

void server_session_gone(struct server *srv, struct session *s)
{
	if (s->counted_ip)
		iptable_dec(srv->per_ip, (struct sockaddr *)&s->peer);
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	srv->nsessions--;
	if (srv->stopping && srv->nsessions == 0)
		event_base_loopexit(srv->base, NULL);
}

