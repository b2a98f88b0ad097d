/* floorlisten.h - what floor.c and floortls.c share: the listener on
 * 127.0.0.1:LISTEN_PORT (0: any free port), registered in the epoll set ep
 * with a NULL pointer, "READY port" printed once it listens, and the
 * upstream's address 127.0.0.1:UPSTREAM_PORT. Exits on failure. */
#ifndef FLOORLISTEN_H
#define FLOORLISTEN_H

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>

static int floor_listen(const char *who, int ep, const char *lport, const char *uport, struct sockaddr_in *ua)
{
	struct sockaddr_in la = {.sin_family = AF_INET};
	struct epoll_event x = {.events = EPOLLIN, .data.ptr = NULL};
	socklen_t len = sizeof la;
	int lfd, one = 1;

	*ua = (struct sockaddr_in){.sin_family = AF_INET};
	la.sin_addr.s_addr = ua->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	la.sin_port = htons((unsigned short)atoi(lport));
	ua->sin_port = htons((unsigned short)atoi(uport));
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ep < 0 || bind(lfd, (struct sockaddr *)&la, sizeof la) < 0 || listen(lfd, 1024) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&la, &len) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &x) < 0) {
		fprintf(stderr, "%s: listen: ", who);
		perror(lport);
		exit(1);
	}
	printf("READY %d\n", ntohs(la.sin_port));
	fflush(stdout);
	return lfd;
}

#endif
