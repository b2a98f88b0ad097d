/* bevpush.h - write a bufferevent's output now, not one loop turn later
 *
 * libevent writes a socket bufferevent's output when the loop next reports
 * the socket writable: per reply an epoll_ctl to watch for writability, a
 * loop turn, the write, an epoll_ctl to stop watching. moat writes whole
 * replies and whole command groups, so it keeps EV_WRITE disabled and
 * writes at once; only what the kernel does not take waits for the write
 * event (and the bufferevent's write timeout), whose callback must then
 * call bev_pushed. */
#ifndef MOAT_BEVPUSH_H
#define MOAT_BEVPUSH_H

#include <event2/bufferevent.h>

/* Write out what bev's output holds (an OpenSSL bufferevent's: on the
 * loop's next turn). Errors are left to the write event, so the
 * bufferevent's event callback reports them, never this call. */
void bev_push(struct bufferevent *bev);
/* The same for an OpenSSL bufferevent, whose output libevent writes only on
 * the loop's next turn (an epoll_ctl pair and a loop turn per reply):
 * staged holds what is to go out, kept out of bev's output; it is
 * SSL_written at once while that output is empty, else appended to it.
 * What the socket does not take (WANT_WRITE: the same bytes must come
 * first on the retry, which libevent makes from its output), or an error,
 * goes to the output behind what it holds, for the write event. staged is
 * empty on return. */
void tls_push(struct bufferevent *bev, struct evbuffer *staged);
/* From the bufferevent's write callback: the output drained, back to
 * writing at once. */
void bev_pushed(struct bufferevent *bev);
/* TCP_NODELAY on a connected socket: moat batches its own writes, so
 * Nagle could only delay the second of two replies (40 ms of delayed ACK
 * when a pipelining client waits for both). Not a TCP socket: ignored. */
void sock_nodelay(evutil_socket_t fd);

#endif
