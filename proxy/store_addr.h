/* store_addr.h - the `redis` key's value (pure): "HOST:PORT" with HOST an
 * IPv4 address, "[IPv6]:PORT", or the absolute path of a Unix socket. A
 * name is refused: hiredis resolves a name with getaddrinfo, which would
 * block the loop, so moat is given the address itself. */
#ifndef MOAT_PROXY_STORE_ADDR_H
#define MOAT_PROXY_STORE_ADDR_H

#include <stddef.h>

#define STORE_REDIS_PORT 6379 /* when the value names none */

struct store_redis_addr {
	int is_unix;   /* 1: path is a socket path */
	char host[108]; /* the numeric address without brackets, or the socket path */
	int port;
};

/* 0, or -1 with a message ("... is not ...") in msg. */
int store_redis_addr_parse(const char *s, struct store_redis_addr *out, char *msg, size_t msz);

#endif
