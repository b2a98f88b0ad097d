/* floor.c - the benchmark's floor: a plain byte-copying TCP relay.
 *
 *   floor LISTEN_PORT UPSTREAM_PORT      (both on 127.0.0.1; prints "READY port")
 *
 * One epoll loop, one upstream connection per client, TCP_NODELAY both
 * ways, bytes copied as they come, nothing parsed. On a 2-core machine any
 * process between smtp-source and smtp-sink takes CPU from them; this is
 * the least any proxy can take, so moat is compared with it (make bench). */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "floorlisten.h"

#define BUF 65536
#define EVENTS 256

struct end {
	int fd;
	struct end *peer;
	char buf[BUF];   /* read from fd, not yet written to peer */
	size_t len, off;
	int eof, dead;
	struct end *next_dead;
};

static int ep;
static struct end *graveyard; /* freed after each batch of events */

static void watch(struct end *e, int op, unsigned ev)
{
	struct epoll_event x = {.events = ev, .data.ptr = e};

	epoll_ctl(ep, op, e->fd, &x);
}

static void close_pair(struct end *e)
{
	struct end *p = e->peer;

	if (e->dead)
		return;
	e->dead = p->dead = 1;
	close(e->fd);
	close(p->fd);
	e->next_dead = p;
	p->next_dead = graveyard;
	graveyard = e;
}

/* Move what e reads into its peer; returns -1 when the pair is done. With
 * a backlog the peer cannot take, e stops being read until it can. */
static int pump(struct end *e)
{
	struct end *p = e->peer;

	for (;;) {
		if (e->len > e->off) {
			ssize_t w = write(p->fd, e->buf + e->off, e->len - e->off);

			if (w < 0 && errno == EAGAIN) {
				watch(e, EPOLL_CTL_MOD, 0);
				watch(p, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT);
				return 0;
			}
			if (w < 0)
				return -1;
			e->off += (size_t)w;
			continue;
		}
		e->len = e->off = 0;
		if (e->eof)
			return p->eof ? -1 : 0;
		ssize_t r = read(e->fd, e->buf, BUF);

		if (r < 0 && errno == EAGAIN)
			return 0;
		if (r <= 0) {
			e->eof = 1;
			shutdown(p->fd, SHUT_WR);
			watch(e, EPOLL_CTL_MOD, 0);
			return p->eof ? -1 : 0;
		}
		e->len = (size_t)r;
	}
}

static int tcp_socket(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

int main(int argc, char **argv)
{
	struct sockaddr_in ua;
	struct epoll_event evs[EVENTS];
	int lfd, one = 1, i, n;

	if (argc != 3) {
		fprintf(stderr, "usage: floor LISTEN_PORT UPSTREAM_PORT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	ep = epoll_create1(0);
	lfd = floor_listen("floor", ep, argv[1], argv[2], &ua);
	for (;;) {
		n = epoll_wait(ep, evs, EVENTS, -1);
		for (i = 0; i < n; i++) {
			struct end *e = evs[i].data.ptr;

			if (e && e->dead)
				continue;
			if (!e) { /* new clients */
				int cfd;

				while ((cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					struct end *c = calloc(1, sizeof *c), *u = calloc(1, sizeof *u);
					int ufd = tcp_socket();

					setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
					if (!c || !u || ufd < 0 ||
					    (connect(ufd, (struct sockaddr *)&ua, sizeof ua) < 0 && errno != EINPROGRESS)) {
						close(cfd);
						if (ufd >= 0)
							close(ufd);
						free(c);
						free(u);
						continue;
					}
					c->fd = cfd;
					u->fd = ufd;
					c->peer = u;
					u->peer = c;
					watch(c, EPOLL_CTL_ADD, EPOLLIN);
					watch(u, EPOLL_CTL_ADD, EPOLLIN);
				}
				continue;
			}
			if (evs[i].events & EPOLLOUT) { /* the peer's backlog can move on */
				watch(e, EPOLL_CTL_MOD, e->eof ? 0 : EPOLLIN);
				if (!e->peer->eof)
					watch(e->peer, EPOLL_CTL_MOD, EPOLLIN);
				if (pump(e->peer) < 0) {
					close_pair(e);
					continue;
				}
			}
			if ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && pump(e) < 0)
				close_pair(e);
		}
		while (graveyard) {
			struct end *d = graveyard;

			graveyard = d->next_dead;
			free(d);
		}
	}
}
