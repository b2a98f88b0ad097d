/* spf.h - SPF (RFC 7208) with libspf2, evaluated without blocking: every DNS
 * answer comes from checks/dns.c; libspf2 is re-run over the growing set of
 * answers until a pass needs nothing new (docs/design.md). */
#ifndef MOAT_SPF_H
#define MOAT_SPF_H

#include <sys/socket.h>
#include "checks/check.h"
#include "checks/dns.h"
#include "checks/outcomes.h"

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

/* Internal errors of libspf2 a worker survives (each leaks what libspf2
 * had made in that call); then SPF is temperror until a restart. */
#define SPF_LIBSPF2_ERRORS_MAX 100
/* Tests: the next n passes hit a libspf2 internal error. */
void spf_fail_passes_for_tests(int n);
/* "pass", "fail", ... as RFC 8601 / RFC 7208 spell them. */
const char *spf_res_name(enum spf_res r);
/* Its row in the registry (spf_row.c); checks_result gives a struct spf_outcome. */
extern const struct check_def check_spf;

#endif
