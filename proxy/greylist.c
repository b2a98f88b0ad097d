/* greylist.c - greylisting's pure parts (see greylist.h). Triplets of
 * (client network, sender, recipient), as postgrey and Postfix's postscreen
 * users know them: a /24 or /64 because big senders retry from another
 * address of the same pool. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proxy/config.h"
#include "proxy/greylist.h"
#include "proxy/lib/siphash.h"

int greylist_network(const struct sockaddr *sa, char *out, size_t size)
{
	uint8_t a[16];
	char txt[INET6_ADDRSTRLEN];

	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
		return -1;
	sockaddr_key16(sa, a); /* IPv4 as v4-mapped: one form for both spellings */
	if (memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
		a[15] = 0;
		inet_ntop(AF_INET, a + 12, txt, sizeof txt);
		snprintf(out, size, "%s/24", txt);
	} else {
		memset(a + 8, 0, 8);
		inet_ntop(AF_INET6, a, txt, sizeof txt);
		snprintf(out, size, "%s/64", txt);
	}
	return 0;
}

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

void greylist_keys(const char *net, const char *sender, const char *rcpt, char triplet[STORE_KEY_MAX],
                   char client[STORE_KEY_MAX])
{
	/* a fixed key: the hash must be the same in every replica; it only
	 * shortens a pair too long for the store */
	static const uint8_t k[16] = "moat-greylist-v1";
	int n = snprintf(triplet, STORE_KEY_MAX, "g:%s|%s|%s", net, *sender ? sender : "<>", rcpt);

	if (n < 0 || n >= STORE_KEY_MAX) {
		char pair[2 * STORE_KEY_MAX];
		int m = snprintf(pair, sizeof pair, "%s|%s", *sender ? sender : "<>", rcpt);

		lower(pair);
		snprintf(triplet, STORE_KEY_MAX, "g:%s|#%016llx", net,
		         (unsigned long long)siphash24(k, pair, m < 0 ? 0 : (size_t)m < sizeof pair ? (size_t)m : sizeof pair - 1));
	}
	lower(triplet);
	snprintf(client, STORE_KEY_MAX, "ga:%s", net);
}

void greylist_params(const struct config *cfg, struct store_grey_params *p)
{
	p->delay = cfg->greylist_delay;
	p->retry_window = cfg->greylist_retry_window;
	p->pass_ttl = cfg->greylist_pass_time;
	p->auto_allow = cfg->greylist_auto_allow;
	p->auto_allow_ttl = cfg->greylist_auto_allow_time;
}

enum rule_grey greylist_state(enum store_grey g)
{
	switch (g) {
	case STORE_GREY_FIRST: return GREY_FIRST;
	case STORE_GREY_EARLY: return GREY_EARLY;
	case STORE_GREY_PASSED: return GREY_PASSED;
	case STORE_GREY_ALLOWED: return GREY_ALLOWED;
	case STORE_GREY_SKIPPED: break;
	}
	return GREY_SKIPPED;
}
