/* spf_cache.h - SPF results reused for a few seconds.
 *
 * A sender that sends a burst (a mailing list, a busy MTA) is evaluated once
 * per SPF_CACHE_TTL_MS for the same client address, HELO name, sender and
 * receiver: the evaluation (libspf2 set-up, record parsing, up to 10 DNS
 * terms) was ~4 % of a message's CPU. Its DNS answers are cached at least as
 * long (DNS_TTL_MIN), so the reuse adds no staleness worth the name.
 * Temporary errors are not kept. Direct-mapped, bounded, one per process
 * (each worker has its own). Pure: the caller passes the time. */
#ifndef MOAT_SPF_CACHE_H
#define MOAT_SPF_CACHE_H

#include <stdint.h>
#include "checks/spf.h"

#define SPF_CACHE_TTL_MS 5000
#define SPF_CACHE_SLOTS 128

/* The outcome kept for this key and still fresh, or NULL. */
const struct spf_outcome *spf_cache_get(const char *ip, const char *helo, const char *sender,
                                        const char *receiver, uint64_t now_ms);
void spf_cache_put(const char *ip, const char *helo, const char *sender, const char *receiver,
                   const struct spf_outcome *o, uint64_t now_ms);
void spf_cache_clear(void);

#endif
