/* dns.h - non-blocking DNS for every check: c-ares on the libevent loop, with a
 * shared cache (TTL-honouring, negative answers per RFC 2308, bounded, LRU)
 * and coalescing of identical queries in flight. No blocking resolver call
 * exists anywhere in moat. */
#ifndef MOAT_DNS_H
#define MOAT_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>

/* Bounds and lifetimes. TTLs are seconds. */
#define DNS_NAME_MAX 253            /* RFC 1035: 255 octets on the wire = 253 in text */
#define DNS_TIMEOUT_MS_DEFAULT 1500 /* per try; c-ares' own default is 5000 */
#define DNS_TRIES_DEFAULT 2
#define DNS_CACHE_MAX_DEFAULT 100000
/* Replies can be 64 KiB over TCP: a byte budget keeps 100000 attacker-chosen
 * DKIM selectors from costing gigabytes. */
#define DNS_CACHE_BYTES_MAX (64UL * 1024 * 1024)
#define DNS_EDNS_PSZ 1232           /* DNS flag day 2020: no IP fragmentation */
/* Floor for every cached answer, TTL 0 included: otherwise each message of a
 * burst asks again for a zero-TTL record, and a check that restarts (SPF,
 * DKIM) may re-read an answer a whole lookup (timeout * tries) later. Five
 * seconds of staleness mean nothing to mail. */
#define DNS_TTL_MIN 5
#define DNS_TTL_MAX 86400           /* positive answers: one day */
#define DNS_NEG_TTL_DEFAULT 60      /* NXDOMAIN/NODATA without a SOA to go by */
#define DNS_NEG_TTL_MAX 10800       /* RFC 2308 section 5: one to three hours */
/* SERVFAIL, refused, timeout: a broken zone costs timeout * tries per
 * message otherwise; RFC 2308 section 7 allows up to five minutes. */
#define DNS_TEMPFAIL_TTL 5
/* Queries in flight (abandoned ones included) before lookups fail fast. */
#define DNS_INFLIGHT_MAX 10000

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

/* The rule for every callback in moat: a callback never runs before the call
 * that registered it returns. An answer known at once (a cache hit, an
 * immediate error) is delivered on the next loop turn: every answer that
 * became ready is delivered from one event made active, in the order they
 * became ready, so N cache hits cost one loop turn, not N.
 *
 * Called exactly once per dns_lookup or dns_defer that returned a handle,
 * unless cancelled; always later, from the loop. r and its buffers are valid
 * only during the call; r is NULL for dns_defer. The callback may call
 * dns_lookup, dns_defer and dns_cancel, never dns_free. */
typedef void (*dns_cb)(void *arg, const struct dns_result *r);

struct dns;
struct dns_req;

struct dns_options {
	const char *servers;  /* c-ares csv "127.0.0.1:53,[::1]:5353"; NULL/"" = /etc/resolv.conf */
	int timeout_ms;       /* per try; default 1500 */
	int tries;            /* default 2 */
	size_t cache_max;     /* entries; default 100000; 0 = no cache (tests) */
};

/* o NULL = every default; timeout_ms or tries <= 0 take the default; the
 * cache_max of a non-NULL o is taken as is. NULL on a bad server list. */
struct dns *dns_new(struct event_base *base, const struct dns_options *o);
/* Pending callbacks, answered ones waiting for their turn included, are not
 * called; nothing leaks. */
void dns_free(struct dns *d);

/* Look up (name, type); cb runs later from the loop, never inside this call.
 * Answers known at once come on the next loop turn: a cache hit, a
 * malformed name (NXDOMAIN), DNS_INFLIGHT_MAX reached (TEMPFAIL). Others
 * come at the latest timeout_ms * tries from now. Names are normalised
 * (case, trailing dot) before lookup.
 * Returns a handle for dns_cancel, or NULL when not even the request could
 * be allocated (no memory): then cb will never run, and the caller takes the
 * lookup as DNS_TEMPFAIL itself. */
struct dns_req *dns_lookup(struct dns *d, const char *name, int type, dns_cb cb, void *arg);
/* The same, asking the network even when the cache holds an answer (a
 * query in flight is joined); the answer replaces the cached one. For a
 * caller that keeps answers itself, by its own floor and ceiling (the
 * backend's name: proxy/backend_addr.c). */
struct dns_req *dns_refresh(struct dns *d, const char *name, int type, dns_cb cb, void *arg);
/* cb(arg, NULL) on the next loop turn, queued behind the answers already
 * ready: how a check whose result is known at once keeps the rule. The same
 * handle and NULL (no memory, cb will never run) as dns_lookup. */
struct dns_req *dns_defer(struct dns *d, dns_cb cb, void *arg);
/* The callback of a request will not run, answered and queued or not. NULL
 * is ignored, and so is a request inside its own callback; a handle whose
 * callback has returned must not be passed. */
void dns_cancel(struct dns_req *r);

/* Put an answer in the cache as if it came from the network (unit tests of
 * the checks; abuf may be NULL for NXDOMAIN/NODATA/TEMPFAIL). ttl is used
 * as is. 0, or -1 on a bad name, no cache (cache_max 0) or no memory. */
int dns_inject(struct dns *d, const char *name, int type, enum dns_status st,
               const unsigned char *abuf, int alen, uint32_t ttl);

/* A view of d that taps every answer its requests get (moat's record_dir:
 * the DNS answers one session's checks used). The view shares d's channel,
 * cache and queries; tap(arg, r) runs just before each answered request's
 * callback (not for dns_defer, nor for cancelled requests). dns_free(view)
 * stops the tap at once, and requests still out (a fire-and-forget
 * prefetch) are answered without it. NULL without memory. */
typedef void (*dns_tap_fn)(void *arg, const struct dns_result *r);
struct dns *dns_view_new(struct dns *d, dns_tap_fn tap, void *arg);

/* A resolver with no network at all (moat replay): every question is put
 * to answer(arg, name, type, out), which fills out (status, abuf, alen,
 * ttl; name and type are set) and returns 0, or -1 for "not known"
 * (answered TEMPFAIL). Answers come later, as from the network; nothing is
 * cached. */
typedef int (*dns_source_fn)(void *arg, const char *name, int type, struct dns_result *out);
struct dns *dns_new_offline(struct event_base *base, dns_source_fn answer, void *arg);

/* Counters for logs, metrics and tests. */
struct dns_stats {
	unsigned long queries;   /* handed to c-ares (its retries not counted) */
	unsigned long hits;      /* answered from the cache */
	unsigned long coalesced; /* joined a query already in flight */
	unsigned long entries;   /* in the cache now */
	unsigned long evictions;
	/* c-ares 1.18 turns EDNS off for good after one FORMERR; dns.c then
	 * rebuilds the channel (see check_edns): how often that happened */
	unsigned long edns_resets;
};
void dns_get_stats(const struct dns *d, struct dns_stats *st);

/* Normalise a name into out (lower case, no trailing dot). -1 if too long
 * or empty. Pure. */
int dns_normalise(const char *name, char *out, size_t size);

/* Tests only: the cache's clock, in milliseconds (default CLOCK_MONOTONIC).
 * Lets a test age the cache without sleeping. */
typedef uint64_t (*dns_clock_fn)(void *arg);
void dns_set_clock_for_tests(struct dns *d, dns_clock_fn now_ms, void *arg);

#endif
