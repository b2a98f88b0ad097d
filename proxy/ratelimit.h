/* ratelimit.h - rate limits' pure parts: a limit's key in the store for a
 * session, and the words of its refusal. The session counts
 * (session_limits.c). */
#ifndef MOAT_RATELIMIT_H
#define MOAT_RATELIMIT_H

#include <stddef.h>

#include "proxy/store.h"
#include "rules/rules.h"

/* What a limit counts for this session: the client's address, the
 * sender's domain (A-labels), the login name; NULL when it does not
 * apply (the null sender has no domain; a client that did not
 * authenticate has no login name). */
const char *ratelimit_subject(const struct rule_limit *l, const char *client_ip, const char *sender_domain,
                              const char *auth_user);

/* The store's key: "r:UNIT:KEY:N/WINDOW:SUBJECT" (lower case; a subject
 * too long for a key is replaced by its hash). Two rules with the same
 * limit count in one key. */
void ratelimit_key(const struct rule_limit *l, const char *subject, char key[STORE_KEY_MAX]);

/* "per hour", "per 10 minutes", "per 2 days", "per 45 seconds". */
void ratelimit_window_text(int window, char *buf, size_t size);

/* "14:00:00 UTC" when the reset falls on now's UTC day, else
 * "2026-12-09 00:00:00 UTC". */
void ratelimit_reset_text(long long reset_at, long long now, char *buf, size_t size);

/* The refusal's argument (R_RATE_LIMITED): "100 messages per hour for
 * 192.0.2.1 reached, try again after 14:00:00 UTC". */
void ratelimit_text(const struct rule_limit *l, const char *subject, long long reset_at, long long now,
                    char *buf, size_t size);

#endif
