/* sdnotify.c - the sd_notify protocol, our own: one AF_UNIX datagram per
 * state change to $NOTIFY_SOCKET (systemd's sd_notify(3)) */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "proxy/lib/log.h"
#include "proxy/sdnotify.h"

int sd_notify_send(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = path ? strlen(path) : 0;
	socklen_t len;
	ssize_t sent;
	int fd, e;

	if (n == 0)
		return 0;
	/* a path, or '@' for the abstract namespace (a leading NUL, no terminator) */
	if ((path[0] != '/' && path[0] != '@') || n < 2 || n > sizeof sa.sun_path) {
		errno = EINVAL;
		return -1;
	}
	memcpy(sa.sun_path, path, n);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	/* a full queue at the manager must not stall the loop */
	sent = sendto(fd, state, strlen(state), MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
	e = errno;
	close(fd);
	errno = e;
	return sent < 0 ? -1 : 0;
}

/* Sent, or said why not (once: the next ones would fail the same way). */
static void notify(const char *state)
{
	static int warned;

	if (sd_notify_send(state) < 0 && !warned) {
		warned = 1;
		log_warn("notify", "cannot notify the service manager at %s: %s", getenv("NOTIFY_SOCKET"),
		         strerror(errno));
	}
}

void sd_notify_ready(void)
{
	notify("READY=1\nSTATUS=serving");
}

void sd_notify_reloading(void)
{
	struct timespec ts;
	char msg[96];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof msg, "RELOADING=1\nSTATUS=reloading the configuration\nMONOTONIC_USEC=%llu",
	         (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
	notify(msg);
}

void sd_notify_stopping(void)
{
	notify("STOPPING=1\nSTATUS=draining");
}
