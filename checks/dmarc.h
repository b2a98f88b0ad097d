/* dmarc.h - DMARC (RFC 7489): the policy record fetched through checks/dns.c
 * (never libopendmarc's own resolver: opendmarc_policy_query_dmarc is not
 * called), parsed by libopendmarc, evaluated against the SPF and DKIM
 * results once they are in (docs/design.md). */
#ifndef MOAT_DMARC_H
#define MOAT_DMARC_H

#include <stddef.h>
#include <stdint.h>

#include "checks/check.h"
#include "checks/dns.h"
#include "checks/outcomes.h"

typedef void (*dmarc_cb)(void *arg);
struct dmarc_check;

/* Look up the policy of o->from_domain: _dmarc.<domain>, and its
 * organizational domain's beside it (the fallback, RFC 7489 6.6.3). Fills
 * o (res NONE/TEMPERROR/PERMERROR, or have_record with the policy); cb runs
 * exactly once, always later from the loop, unless cancelled. NULL: no
 * memory (o says temperror; cb will never run). */
struct dmarc_check *dmarc_check_start(struct dns *d, struct dmarc_outcome *o, dmarc_cb cb, void *arg);
void dmarc_check_cancel(struct dmarc_check *c);

/* Start the lookups dmarc_check_start will make for domain, for the cache
 * (a From field seen while the body still arrives). The number started. */
int dmarc_prefetch(struct dns *d, const char *domain);

/* The DMARC records among a TXT reply's: 0, 1 (its text into out), 2 for
 * several; -1 for a record over MOAT_DMARC_RECORD_MAX or an unreadable
 * reply. Pure. */
int dmarc_record_pick(const unsigned char *abuf, int alen, char *out, size_t size);
/* Parse a record with libopendmarc into o (from_domain and org_fallback
 * set). 0, or -1: a permanent error (o->reason says why). */
int dmarc_record_parse(const char *record, struct dmarc_outcome *o);

/* The verdict of a message whose record was found: alignment of the SPF
 * and DKIM results (either may be NULL: not run), pass or fail, and the
 * policy after pct sampling, the draw being SipHash-2-4 under key of the
 * Message-ID value (msgid), modulo 100. Pure. */
struct spf_outcome;
struct dkim_outcome;
void dmarc_evaluate(struct dmarc_outcome *o, const struct spf_outcome *spf, const struct dkim_outcome *dkim,
                    const uint8_t key[16], const char *msgid);

/* The verdict of a From field with several author domains (RFC 7489
 * 6.6.1), each evaluated: a failure with the strictest policy among the
 * failing ones; else temperror, permerror, pass, none, in that order. o
 * becomes a copy of the deciding one. Pure. */
void dmarc_combine(const struct dmarc_outcome *each, int n, struct dmarc_outcome *o);

const char *dmarc_res_name(enum dmarc_res r);
const char *dmarc_pol_name(enum dmarc_pol p);

/* Its row in the registry (dmarc_row.c); checks_result gives a struct dmarc_outcome. */
extern const struct check_def check_dmarc;

#endif
