/* spf.h - SPF (RFC 7208) with libspf2, evaluated without blocking: every DNS
 * answer comes from checks/dns.c; libspf2 is re-run over the growing set of
 * answers until a pass needs nothing new (see shared notes: async-dns.md). */
#ifndef MOAT_SPF_H
#define MOAT_SPF_H

#include <sys/socket.h>
#include "checks/dns.h"
#include "rules/facts.h"

typedef void (*spf_cb)(void *arg, const struct spf_outcome *o);
struct spf_check;

/* Evaluate SPF for client (the real client address, after PROXY), helo and
 * sender ("" or NULL = null sender: the HELO identity is checked).
 * receiver is our hostname (for %{r} and the explanation). cb runs exactly
 * once, always later from the loop (never before this returns; dns.h states
 * the rule), unless cancelled. NULL: no memory to start; cb will never run,
 * and the caller takes temperror itself. */
struct spf_check *spf_check_start(struct dns *d, const struct sockaddr *client, const char *helo,
                                  const char *sender, const char *receiver, spf_cb cb, void *arg);
/* cb will not run. Only for a check whose cb has not run yet. */
void spf_check_cancel(struct spf_check *c);
/* "pass", "fail", ... as RFC 8601 / RFC 7208 spell them. */
const char *spf_res_name(enum spf_res r);

#endif
