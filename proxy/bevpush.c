/* bevpush.c - write a bufferevent's output now (see bevpush.h) */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

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

void tls_push(struct bufferevent *bev, struct evbuffer *staged)
{
	struct evbuffer *out = bufferevent_get_output(bev);
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	/* libevent retries a blocked SSL_write with up to this many bytes of
	 * its output's first chain: OpenSSL takes a retry of no fewer bytes
	 * than the call that blocked, from the same first byte (the buffer
	 * may move: libevent sets SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER). */
	ev_ssize_t most = bufferevent_get_max_to_write(bev);

	/* A read that must write first (SSL_want_write: libevent's
	 * read-blocked-on-write) has a record of its own pending: the loop
	 * finishes it before our bytes. */
	while (ssl && most > 0 && evbuffer_get_length(out) == 0 && !SSL_want_write(ssl) &&
	       evbuffer_get_length(staged) > 0) {
		size_t n = evbuffer_get_length(staged);
		unsigned char *p;
		int r;

		if (n > (size_t)most)
			n = (size_t)most;
		if (!(p = evbuffer_pullup(staged, (ev_ssize_t)n))) /* its first chain now holds the n bytes */
			break;
		ERR_clear_error();
		r = SSL_write(ssl, p, (int)n);
		if (r <= 0)
			break; /* the same n bytes, first in the output below: libevent's retry */
		evbuffer_drain(staged, (size_t)r);
	}
	if (evbuffer_get_length(staged) == 0)
		return;
	evbuffer_add_buffer(out, staged);
	bufferevent_enable(bev, EV_WRITE); /* the rest, or the error, via the loop */
}
