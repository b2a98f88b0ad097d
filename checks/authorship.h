/* authorship.h - what a broken DKIM signature means for this message:
 * "dkim-aligned" (the best result of the signatures of the From domain's
 * own, relaxed alignment as DMARC's: pass, fail, none) and "list-mail"
 * (a List-Id, RFC 2919, or List-Post, RFC 2369, field: a list manager sent
 * it on, and lists change messages after signing: a footer, a subject
 * tag). The default policy refuses a failing signature only when it is
 * the author's own and the message is not list mail (RFC 6376 6.3). */
#ifndef MOAT_CHECKS_AUTHORSHIP_H
#define MOAT_CHECKS_AUTHORSHIP_H

#include <stddef.h>
#include "checks/check.h"
#include "checks/dmarc_from.h"
#include "checks/outcomes.h"

struct authorship_outcome {
	int list_mail;           /* List-Id or List-Post present */
	const char *aligned;     /* "pass", "fail" or "none" (settled) */
	const struct dmarc_from *from; /* the author domains (the transaction's: checks_author) */
};

/* Does the header section hdr[0..len) (CRLF lines) have a List-Id or
 * List-Post field? Pure. */
int authorship_list_mail(const char *hdr, size_t len);

/* "pass" when a signature aligned with one of f's author domains passed,
 * else "fail" when one failed, else "none". Without a single usable From
 * field (f->status not OK) every signature is the author's. */
const char *authorship_aligned(const struct dmarc_from *f, const struct dkim_outcome *o);

/* Its row in the registry (authorship.c), settled on DKIM's result;
 * checks_result gives a struct authorship_outcome. */
extern const struct check_def check_authorship;

#endif
