/* dkim.h - DKIM (RFC 6376) verification with libopendkim; keys are fetched
 * through checks/dns.c before verification (docs/design.md). */
#ifndef MOAT_DKIM_H
#define MOAT_DKIM_H

#include <stddef.h>
#include "checks/check.h"
#include "proxy/lib/bounds.h"
#include "checks/dns.h"
#include "checks/outcomes.h"

/* Header section handed to libopendkim; a larger one is not verified
 * (Postfix header_size_limit is 102400). */
#define DKIM_HEADER_MAX MOAT_HEADER_READ_MAX
/* Longest wait for all the keys of one message, once the lookups are out. */
#define DKIM_KEY_WAIT_MS 10000

typedef void (*dkim_cb)(void *arg, const struct dkim_outcome *o);
struct dkim_check;
struct dkim_verifier; /* one per process/thread: wraps DKIM_LIB */

struct dkim_verifier *dkim_verifier_new(struct dns *d);
/* Checks of l still running must be cancelled first. */
void dkim_verifier_free(struct dkim_verifier *l);
/* Cap the wait for keys at ms (<= 0: DKIM_KEY_WAIT_MS) with a timer on base;
 * keys still missing then count as temperror. Without this call the wait is
 * only bounded by the DNS layer (timeout_ms * tries per lookup). */
void dkim_verifier_set_wait(struct dkim_verifier *l, struct event_base *base, int ms);

/* Verify a message given in SMTP wire form (CRLF lines, still dot-stuffed),
 * read through the reader callback (fills buf from offset off, returns bytes
 * read, 0 at the end, -1 on error); moat's spool provides it (spool_read).
 * header: its header section already read (checks/header.h, at least
 * DKIM_HEADER_MAX bytes of it; only needed during this call), or NULL to
 * read it here. cb runs exactly once, always later from the loop (never
 * before this returns; dns.h states the rule), unless cancelled. NULL: the
 * check could not start (no memory, or no handle from libopendkim); cb will
 * never run, and the caller takes temperror itself. */
typedef msg_reader dkim_reader;
struct msg_header;
struct dkim_check *dkim_check_start(struct dkim_verifier *l, const struct msg_header *header, dkim_reader rd,
                                    void *rarg, size_t msglen, dkim_cb cb, void *arg);
/* The same, its keys asked through dns (the session's resolver: a
 * recorder's view of the verifier's, record_dir) rather than the
 * verifier's. */
struct dkim_check *dkim_check_start_via(struct dkim_verifier *l, struct dns *dns, const struct msg_header *header,
                                        dkim_reader rd, void *rarg, size_t msglen, dkim_cb cb, void *arg);
/* The callback will not run. NULL is ignored; not for a check whose
 * callback has run. */
void dkim_check_cancel(struct dkim_check *c);
const char *dkim_res_name(enum dkim_res r);
/* Its row in the registry (dkim_row.c); checks_result gives a struct dkim_outcome. */
extern const struct check_def check_dkim;

/* Decoded public keys reused across messages (dkim_keycache.c, which says
 * how). Whether libopendkim's key decoding goes through the cache in this
 * process (start-up logs it): */
int dkim_keycache_active(void);
void dkim_keycache_stats(unsigned long *hits, unsigned long *misses);
void dkim_keycache_free(void);

#endif
