/* dmarc_org.c - organizational domains and alignment (see dmarc_org.h).
 *
 * The public suffix list is read here, by the list's own algorithm
 * (publicsuffix.org/list: the exception rule if one matches, else the
 * matching rule with the most labels, else "*"; the organizational domain
 * is the public suffix plus one label). libopendmarc 1.4.2 reads the list
 * too, but its opendmarc_get_tld gives "co.uk" for t.co.uk (a one-letter
 * label), matches case-sensitively and knows no default rule; and its
 * opendmarc_policy_check_alignment calls a From of example.com strictly
 * aligned with d=sub.example.com, and a signature by "com" relaxed-aligned
 * with any .com author (tests/unit/test_dmarc.c holds all three). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "checks/dmarc_org.h"
#include "checks/dns.h"
#include "proxy/lib/bounds.h"
#include "proxy/lib/idna.h"
#include "proxy/lib/readfile.h"
#include "proxy/lib/strset.h"
#include "proxy/lib/text.h"

/* The list's rules, by kind, in A-labels; process-wide, read once. */
static struct strset *rules, *wild, *exc;
static unsigned psl_generation; /* loads so far (before the workers start) */

/* One line of the list: its rule (the first word), unless a comment. */
static int add_rule(const char *line, size_t n)
{
	char a[DNS_NAME_MAX + 1];
	struct strset *set = rules;
	size_t w = 0;

	while (w < n && line[w] != ' ' && line[w] != '\t')
		w++;
	if (w == 0 || (w >= 2 && line[0] == '/' && line[1] == '/'))
		return 0;
	if (line[0] == '!') {
		set = exc;
		line++, w--;
	} else if (w > 2 && line[0] == '*' && line[1] == '.') {
		set = wild;
		line += 2, w -= 2;
	}
	if (w == 0 || idna_to_ascii(line, w, a, sizeof a) != IDNA_OK)
		return 0; /* not a name moat could be asked about */
	return strset_add(set, a, strlen(a)) < 0 ? -1 : 0;
}

int dmarc_psl_load(const char *path)
{
	char msg[128];
	size_t len;
	char *text = file_read(path, MOAT_PSL_MAX, &len, NULL, msg, sizeof msg);

	if (!text)
		return -1;
	psl_generation++; /* the workers' caches (dmarc_org_domain) are stale */
	strset_free(rules); /* a list loaded before (the tests load several) */
	strset_free(wild);
	strset_free(exc);
	rules = strset_new();
	wild = strset_new();
	exc = strset_new();
	for (char *p = text, *end = text + len; p < end && rules && wild && exc;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (n && p[n - 1] == '\r')
			n--;
		if (add_rule(p, n) < 0)
			break;
		p = nl ? nl + 1 : end;
	}
	free(text);
	if (!rules || !wild || !exc || strset_count(rules) == 0) {
		strset_free(rules);
		strset_free(wild);
		strset_free(exc);
		rules = wild = exc = NULL;
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

int dmarc_psl_loaded(void)
{
	return rules != NULL;
}

/* Where the public suffix of low starts. */
static const char *suffix(const char *low)
{
	const char *best = NULL, *p = low, *dot;

	for (; p; p = (dot = strchr(p, '.')) ? dot + 1 : NULL) {
		size_t n = strlen(p);

		if (exc && strset_has(exc, p, n))
			return strchr(p, '.') ? strchr(p, '.') + 1 : p + n; /* the exception's parent */
		if (!best && ((rules && strset_has(rules, p, n)) ||
		              (wild && (dot = strchr(p, '.')) && strset_has(wild, dot + 1, strlen(dot + 1)))))
			best = p; /* the longest match so far; an exception further right still wins */
	}
	if (best)
		return best;
	return strrchr(low, '.') ? strrchr(low, '.') + 1 : low; /* the default rule "*" */
}

/* The organizational domain of domain into out[DNS_NAME_MAX + 1]; 0 or -1. */
static int org_of(const char *domain, char *out)
{
	char low[DNS_NAME_MAX + 1];
	const char *ps, *org;

	if (dns_normalise(domain, low, sizeof low) < 0 || low[0] == '.' || strstr(low, ".."))
		return -1;
	ps = suffix(low);
	if (ps <= low + 1)
		return -1; /* the name is a public suffix itself */
	for (org = ps - 1; org > low && org[-1] != '.'; org--)
		;
	text_copy(out, DNS_NAME_MAX + 1, org);
	return 0;
}

/* A message asks for the same few names again and again (the From domain,
 * d=, the SPF domain: at the prefetch, the lookup and each alignment), so
 * each worker keeps its last answers, keyed by the name as given: a walk
 * of the list costs a normalisation and a hash per label. Bounded: a
 * handful of entries, the oldest replaced; a list loaded later (a new
 * generation) empties it. */
#define ORG_CACHE 8
static _Thread_local struct org_cached {
	unsigned gen;              /* psl_generation + 1 when filled; 0: empty */
	int rc;
	char name[DNS_NAME_MAX + 1];
	char org[DNS_NAME_MAX + 1];
} org_cache[ORG_CACHE];
static _Thread_local unsigned org_next;

int dmarc_org_domain(const char *domain, char *out, size_t size)
{
	size_t n = strlen(domain);
	struct org_cached *e;

	if (n > DNS_NAME_MAX) { /* not kept (a trailing dot makes 254 a name) */
		char org[DNS_NAME_MAX + 1];

		if (org_of(domain, org) < 0)
			return -1;
		text_copy(out, size, org);
		return 0;
	}
	for (int i = 0; i < ORG_CACHE; i++) {
		e = &org_cache[i];
		if (e->gen == psl_generation + 1 && memcmp(e->name, domain, n + 1) == 0)
			goto found;
	}
	e = &org_cache[org_next++ % ORG_CACHE];
	memcpy(e->name, domain, n + 1);
	e->rc = org_of(domain, e->org);
	e->gen = psl_generation + 1;
found:
	if (e->rc == 0)
		text_copy(out, size, e->org);
	return e->rc;
}

int dmarc_aligned(const char *id, const char *from, int strict)
{
	char a[DNS_NAME_MAX + 1], b[DNS_NAME_MAX + 1];

	if (!id[0] || !from[0])
		return 0;
	if (strict) {
		if (dns_normalise(id, a, sizeof a) < 0 || dns_normalise(from, b, sizeof b) < 0)
			return 0;
		return strcmp(a, b) == 0;
	}
	if (dmarc_org_domain(id, a, sizeof a) < 0 || dmarc_org_domain(from, b, sizeof b) < 0)
		return 0;
	return strcmp(a, b) == 0;
}
