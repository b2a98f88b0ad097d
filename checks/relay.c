/* relay.c - local-recipient-only relaying; no address trick may relay */
#include <string.h>
#include <strings.h>

#include "checks/checks.h"

int relay_domain_is_local(const struct check_options *o, const char *domain)
{
	size_t dl = strlen(domain);
	int i;

	for (i = 0; i < o->nlocal_domains; i++) {
		const char *d = o->local_domains[i];
		size_t l = strlen(d);

		if (d[0] == '.') {
			/* ".example.com" matches strict subdomains only */
			if (dl > l && strcasecmp(domain + dl - l, d) == 0)
				return 1;
		} else if (strcasecmp(domain, d) == 0) {
			return 1;
		}
	}
	return 0;
}

int relay_client_trusted(const struct check_options *o, const struct sockaddr *client)
{
	int i;

	for (i = 0; i < o->ntrusted_networks; i++)
		if (cidr_match(&o->trusted_networks[i], client))
			return 1;
	return 0;
}

int relay_client_forwarder(const struct check_options *o, const struct sockaddr *client)
{
	for (int i = 0; client && i < o->ntrusted_forwarders; i++)
		if (cidr_match(&o->trusted_forwarders[i], client))
			return 1;
	return 0;
}

enum relay_result relay_check(const struct check_options *o, const struct sockaddr *client,
                              const struct smtp_path *rcpt)
{
	/* Routing syntax is refused even for local domains and trusted clients:
	 * a backend that honours it could be made to relay (Postfix:
	 * allow_untrusted_routing = no). "<Postmaster>" has no domain and is ours. */
	if (rcpt->flags & (PATH_SOURCE_ROUTE | PATH_PERCENT | PATH_BANG | PATH_QUOTED_AT | PATH_LITERAL))
		return RELAY_BAD_ROUTING;
	if (rcpt->domain[0] == '\0')
		return RELAY_OK;
	if (relay_domain_is_local(o, rcpt->ascii_domain))
		return RELAY_OK;
	if (relay_client_trusted(o, client))
		return RELAY_OK;
	return RELAY_DENIED;
}
