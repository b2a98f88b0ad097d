/* dmarc_org.c - organizational domains and alignment (see dmarc_org.h).
 *
 * The list is read by libopendmarc (opendmarc_get_tld: the public suffix
 * plus one label). Alignment is moat's own: libopendmarc 1.4.2's
 * opendmarc_policy_check_alignment calls a From of example.com strictly
 * aligned with d=sub.example.com, and a signature by "com" relaxed-aligned
 * with any .com author (tests/unit/test_dmarc.c holds both). */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include <opendmarc/dmarc.h>

#include "checks/dmarc_org.h"
#include "checks/dns.h"
#include "proxy/lib/text.h"

/* exported by libopendmarc 1.4.2, not declared in its header */
int opendmarc_get_tld(u_char *domain, u_char *tld, size_t tld_len);

static int loaded;

int dmarc_psl_load(const char *path)
{
	OPENDMARC_LIB_T lib;

	if (!path || strlen(path) >= sizeof lib.tld_source_file) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memset(&lib, 0, sizeof lib);
	lib.tld_type = OPENDMARC_TLD_TYPE_MOZILLA;
	text_copy((char *)lib.tld_source_file, sizeof lib.tld_source_file, path);
	errno = 0;
	if (opendmarc_policy_library_init(&lib) != 0) {
		if (!errno)
			errno = EINVAL;
		return -1;
	}
	loaded = 1;
	return 0;
}

int dmarc_psl_loaded(void)
{
	return loaded;
}

int dmarc_org_domain(const char *domain, char *out, size_t size)
{
	char low[DNS_NAME_MAX + 1];
	u_char tld[DNS_NAME_MAX + 1] = "";
	const char *dot;

	if (dns_normalise(domain, low, sizeof low) < 0 || low[0] == '.' || strstr(low, ".."))
		return -1;
	if (loaded && opendmarc_get_tld((u_char *)low, tld, sizeof tld) == 0 && tld[0] &&
	    strchr((char *)tld, '.')) {
		text_copy(out, size, (char *)tld);
		return 0;
	}
	/* not under a rule of the list: the default rule "*" makes the last
	 * label the suffix */
	if (!(dot = strrchr(low, '.')))
		return -1;
	while (dot > low && dot[-1] != '.')
		dot--;
	if (tld[0] && strcmp((char *)tld, dot) != 0)
		return -1; /* the list knows the name and calls it a suffix */
	text_copy(out, size, dot);
	return 0;
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
