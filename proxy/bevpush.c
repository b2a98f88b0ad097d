/* bevpush.c - write a bufferevent's output now (see bevpush.h) */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "proxy/bevpush.h"

void bev_push(struct bufferevent *bev)
{
	struct evbuffer *out = bufferevent_get_output(bev);
	evutil_socket_t fd = bufferevent_getfd(bev);

	if (evbuffer_get_length(out) == 0)
		return;
	/* Not a TLS one: its socket takes records, which only the loop writes
	 * (one turn later, every reply queued by then in one go). */
	if (fd >= 0 && !(bufferevent_get_enabled(bev) & EV_WRITE) && !bufferevent_openssl_get_ssl(bev)) {
		/* A socket bufferevent keeps its output's front frozen outside
		 * its own write callback. */
		evbuffer_unfreeze(out, 1);
		while (evbuffer_get_length(out) > 0 && evbuffer_write(out, fd) > 0)
			;
		evbuffer_freeze(out, 1);
	}
	if (evbuffer_get_length(out) > 0)
		bufferevent_enable(bev, EV_WRITE); /* the rest, or the error, via the loop */
}

void bev_pushed(struct bufferevent *bev)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_disable(bev, EV_WRITE);
}

void sock_nodelay(evutil_socket_t fd)
{
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}
