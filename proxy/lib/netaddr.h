/* netaddr.h - addresses, host:port and CIDR parsing (pure, no I/O) */
#ifndef MOAT_NETADDR_H
#define MOAT_NETADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>

/* An IPv4 or IPv6 network; IPv4 is kept as AF_INET, 4 bytes in addr. */
/* An IPv4 or IPv6 socket address in 28 bytes (a sockaddr_storage is 128):
 * what each of 10,000 idle sessions keeps. */
union sockaddr_ip {
	struct sockaddr sa;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
};

struct cidr {
	int family;       /* AF_INET or AF_INET6 */
	uint8_t addr[16]; /* network address, host bits cleared */
	int prefix;       /* 0..32 or 0..128 */
};

/* Parse "1.2.3.4", "10.0.0.0/8", "::1", "2001:db8::/32". 0 ok, -1 bad. */
int cidr_parse(const char *s, struct cidr *out);
/* Does the address (AF_INET, AF_INET6, or v4-mapped v6) fall inside? */
int cidr_match(const struct cidr *c, const struct sockaddr *sa);

/* Parse "1.2.3.4:25", "[::1]:2525" (numeric addresses only) into a
 * sockaddr_storage. With default_port > 0 the port may be left out. 0 ok, -1 bad. */
int hostport_parse(const char *s, int default_port, struct sockaddr_storage *ss, socklen_t *len);

/* Address as text without port ("1.2.3.4", "2001:db8::1"); v4-mapped shown as v4. */
void sockaddr_ntop(const struct sockaddr *sa, char *buf, size_t size);
/* Port of a sockaddr, host order. */
int sockaddr_port(const struct sockaddr *sa);
/* Same address, ignoring port; v4-mapped v6 equals its v4. */
int sockaddr_same_host(const struct sockaddr *a, const struct sockaddr *b);
/* The address as 16 bytes, IPv4 as v4-mapped IPv6 (so both spellings are
 * one key); zero for any other family. */
void sockaddr_key16(const struct sockaddr *sa, uint8_t key[16]);


#endif
