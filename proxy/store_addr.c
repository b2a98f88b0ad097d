/* store_addr.c - the `redis` key's value (see store_addr.h) */
#include <stdio.h>
#include <string.h>

#include "proxy/lib/netaddr.h"
#include "proxy/store_addr.h"

int store_redis_addr_parse(const char *s, struct store_redis_addr *out, char *msg, size_t msz)
{
	struct sockaddr_storage ss;
	socklen_t len;

	memset(out, 0, sizeof *out);
	if (s[0] == '/') {
		if (strlen(s) >= sizeof out->host) {
			snprintf(msg, msz, "socket path is longer than %zu bytes", sizeof out->host - 1);
			return -1;
		}
		out->is_unix = 1;
		strcpy(out->host, s);
		return 0;
	}
	if (hostport_parse(s, STORE_REDIS_PORT, &ss, &len) < 0) {
		snprintf(msg, msz, "is not HOST:PORT with a numeric IPv4 address, [IPv6]:PORT or a socket path "
		         "(moat resolves no name for Redis: give its address)");
		return -1;
	}
	sockaddr_ntop((struct sockaddr *)&ss, out->host, sizeof out->host);
	out->port = sockaddr_port((struct sockaddr *)&ss);
	if (out->port == 0) {
		snprintf(msg, msz, "port 0 is not a port");
		return -1;
	}
	return 0;
}
