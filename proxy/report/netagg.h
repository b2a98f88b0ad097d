/* netagg.h - client addresses of the log: parsed, matched against --client,
 * and grouped into their /24 (IPv4) or /48 (IPv6) for the top lists (pure) */
#ifndef MOAT_REPORT_NETAGG_H
#define MOAT_REPORT_NETAGG_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/lib/netaddr.h"

#define NETAGG_V4_PREFIX 24
#define NETAGG_V6_PREFIX 48

struct naddr {
	int family;   /* AF_INET or AF_INET6 */
	uint8_t a[16];
};

/* The n bytes at s as an address ("192.0.2.7", "2001:db8::1"; an IPv4-mapped
 * IPv6 address is its IPv4 address). 0, or -1 if it is not one. */
int naddr_parse(const char *s, size_t n, struct naddr *out);

/* Is a inside c (cidr_parse's network; IPv4 networks hold IPv4 addresses)? */
int naddr_in(const struct naddr *a, const struct cidr *c);

/* a's network as text: "192.0.2.0/24", "2001:db8:1::/48". */
void naddr_network(const struct naddr *a, char *out, size_t size);

#endif
