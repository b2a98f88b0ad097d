/* spf_cache.h - SPF results reused for a few seconds.
 *
 * A sender that sends a burst (a mailing list, a busy MTA) is evaluated once
 * per SPF_CACHE_TTL_MS for the same client address, HELO name, sender and
 * receiver: the evaluation (libspf2 set-up, record parsing, up to 10 DNS
 * terms) was ~4 % of a message's CPU. Its DNS answers are cached at least as
 * long (DNS_TTL_MIN), so the reuse adds no staleness worth the name.
 * Temporary errors are not kept. Direct-mapped, bounded; one per worker
 * (struct check_env). Pure: the caller passes the time. */
#ifndef MOAT_SPF_CACHE_H
#define MOAT_SPF_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "checks/outcomes.h"

#define SPF_CACHE_TTL_MS 5000
#define SPF_CACHE_SLOTS 128
#define SPF_CACHE_KEY_MAX 1024 /* ip + helo + sender + receiver; longer ones are not kept */

struct spf_cache;

struct spf_cache *spf_cache_new(void);
void spf_cache_free(struct spf_cache *c);
/* The key of (ip, helo, sender, receiver) into k (SPF_CACHE_KEY_MAX bytes);
 * its length, 0 when it does not fit. */
size_t spf_cache_key(char *k, const char *ip, const char *helo, const char *sender, const char *receiver);
/* The outcome kept for this key and still fresh, or NULL. */
const struct spf_outcome *spf_cache_get(const struct spf_cache *c, const char *k, size_t n, uint64_t now_ms);
void spf_cache_put(struct spf_cache *c, const char *k, size_t n, const struct spf_outcome *o, uint64_t now_ms);

#endif
