/* drain.h - for tests and fuzzing: what an evbuffer really sends. Spool
 * files leave as sendfile segments (offsets into the file, never read into
 * memory), so the bytes are only known once written to a socket: drain
 * the buffer into a socketpair and read what came through. */
#ifndef MOAT_TEST_DRAIN_H
#define MOAT_TEST_DRAIN_H

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>

/* All of out, sent; NULL (and errno) on failure or if more came through
 * than was queued. */
static inline unsigned char *drain_evbuffer(struct evbuffer *out, size_t *len)
{
	int sv[2];
	size_t cap = evbuffer_get_length(out) + 1, n = 0;
	unsigned char *buf = malloc(cap);

	*len = 0;
	if (!buf || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0) {
		free(buf);
		return NULL;
	}
	while (evbuffer_get_length(out) > 0 && n < cap) {
		int w = evbuffer_write(out, sv[0]);
		ssize_t r;

		if (w < 0 && errno != EAGAIN && errno != EINTR)
			break;
		while (n < cap && (r = read(sv[1], buf + n, cap - n)) > 0)
			n += (size_t)r;
	}
	close(sv[0]);
	for (ssize_t r; n < cap && (r = read(sv[1], buf + n, cap - n)) > 0;)
		n += (size_t)r;
	close(sv[1]);
	if (evbuffer_get_length(out) > 0 || n >= cap) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

#endif
