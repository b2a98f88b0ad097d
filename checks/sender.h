/* sender.h - does the MAIL FROM domain exist and accept mail? (RFC 5321 5.1, RFC 7505) */
#ifndef MOAT_SENDER_H
#define MOAT_SENDER_H

#include "checks/check.h"
#include "checks/dns.h"
#include "checks/outcomes.h"

typedef void (*sender_cb)(void *arg, enum sender_res res);
struct sender_check;

/* Check domain ("" or NULL = null sender). cb runs exactly once, always
 * later from the loop (never before this returns; dns.h states the rule),
 * unless cancelled. NULL: no memory to start; cb will never run, and the
 * caller takes SD_TEMPFAIL itself. */
struct sender_check *sender_check_start(struct dns *d, const char *domain, sender_cb cb, void *arg);
/* cb will not run. NULL is ignored; not for a check whose cb has run. */
void sender_check_cancel(struct sender_check *c);
const char *sender_res_name(enum sender_res r);

/* Its row in the registry: fact "sender-check", log field "sender_domain";
 * checks_result gives an enum sender_res. */
extern const struct check_def check_sender;

/* Classify an MX reply: 1 = has a usable MX, 0 = null MX only, -1 = unparsable. Pure. */
int sender_mx_classify(const unsigned char *abuf, int alen);

#endif
