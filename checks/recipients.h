/* recipients.h - the local_recipients table: which addresses exist */
#ifndef MOAT_RECIPIENTS_H
#define MOAT_RECIPIENTS_H

#include <stddef.h>

struct strset;

/* Load a file of addresses, one a line: "user@example.com", or "@example.com"
 * for a catch-all; '#' comments and blank lines are skipped; case-folded,
 * domains in A-labels (either form may be written).
 * NULL on error with "FILE:LINE: message" in err. */
struct strset *recipients_load(const char *path, char *err, size_t errsize);

/* Is local@domain a recipient (domain in A-labels: smtp_path.ascii_domain)?
 * Exact address, then the part before a '+' (user+tag@), then the domain's
 * catch-all. Case-insensitive (ASCII). */
int recipients_has(const struct strset *t, const char *local, const char *domain);

#endif
