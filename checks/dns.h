/* dns.h - non-blocking DNS for every check: c-ares on the libevent loop, with a
 * shared cache (TTL-honouring, negative answers per RFC 2308, bounded, LRU)
 * and coalescing of identical queries in flight. No blocking resolver call
 * exists anywhere in moat. */
#ifndef MOAT_DNS_H
#define MOAT_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>

enum dns_status {
	DNS_OK = 0,   /* answer records present */
	DNS_NODATA,   /* the name exists, no record of that type */
	DNS_NXDOMAIN, /* the name does not exist (also: a name c-ares finds malformed) */
	DNS_TEMPFAIL, /* SERVFAIL, timeout, refused, truncated beyond repair, out of memory */
};

struct dns_result {
	enum dns_status status;
	int type;                  /* ns_t_a, ns_t_mx, ... */
	const char *name;          /* normalised: lower case, no trailing dot */
	const unsigned char *abuf; /* the raw reply (may be NULL for TEMPFAIL) */
	int alen;
	uint32_t ttl;              /* seconds the answer stays cached */
};

/* Called exactly once per dns_lookup, unless cancelled. r and its buffers are
 * valid only during the call. */
typedef void (*dns_cb)(void *arg, const struct dns_result *r);

struct dns;
struct dns_req;

struct dns_options {
	const char *servers;  /* c-ares csv "127.0.0.1:53,[::1]:5353"; NULL/"" = /etc/resolv.conf */
	int timeout_ms;       /* per try; default 1500 */
	int tries;            /* default 2 */
	size_t cache_max;     /* entries; default 100000; 0 = no cache (tests) */
};

struct dns *dns_new(struct event_base *base, const struct dns_options *o);
/* Pending callbacks are not called (use dns_cancel first if needed). */
void dns_free(struct dns *d);

/* Look up (name, type). A cached answer is delivered before this returns and
 * the result is NULL; otherwise the result is a handle and cb runs later
 * from the loop. Names are normalised (case, trailing dot) before lookup. */
struct dns_req *dns_lookup(struct dns *d, const char *name, int type, dns_cb cb, void *arg);
/* The callback of a pending request will not run. */
void dns_cancel(struct dns_req *r);

/* Put an answer in the cache as if it came from the network (unit tests of
 * the checks; abuf may be NULL for NXDOMAIN/NODATA/TEMPFAIL). */
int dns_inject(struct dns *d, const char *name, int type, enum dns_status st,
               const unsigned char *abuf, int alen, uint32_t ttl);

/* Counters for logs, metrics and tests. */
struct dns_stats {
	unsigned long queries;   /* sent to a server */
	unsigned long hits;      /* answered from the cache */
	unsigned long coalesced; /* joined a query already in flight */
	unsigned long entries;   /* in the cache now */
	unsigned long evictions;
};
void dns_get_stats(const struct dns *d, struct dns_stats *st);

/* Normalise a name into out (lower case, no trailing dot). -1 if too long
 * or empty. Pure. */
int dns_normalise(const char *name, char *out, size_t size);

#endif
