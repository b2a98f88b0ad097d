/* dmarc_org.h - organizational domains (RFC 7489 3.2) from the public
 * suffix list, and identifier alignment (RFC 7489 3.1) */
#ifndef MOAT_CHECKS_DMARC_ORG_H
#define MOAT_CHECKS_DMARC_ORG_H

#include <stddef.h>

/* Debian's publicsuffix package */
#define DMARC_PSL_DEFAULT "/usr/share/publicsuffix/public_suffix_list.dat"

/* Load the public suffix list (process-wide: once, before the workers
 * start; a later load replaces it and empties the workers' caches of
 * organizational domains). 0, or -1 (the file cannot be read: errno). */
int dmarc_psl_load(const char *path);
/* Has a list been loaded? */
int dmarc_psl_loaded(void);

/* The organizational domain of domain (A-labels, any case) into out (lower
 * case): the public suffix plus one label, the list's default rule "*" for
 * a suffix it does not know. 0, or -1 when there is none (domain is a
 * public suffix itself, or malformed). */
int dmarc_org_domain(const char *domain, char *out, size_t size);

/* Are the authenticated domain id and the author domain from aligned?
 * strict: the same name (case ignored); relaxed: the same organizational
 * domain. */
int dmarc_aligned(const char *id, const char *from, int strict);

#endif
