/* rdns.h - the client's forward-confirmed reverse DNS name (FCrDNS):
 * PTR names of the address whose A/AAAA records lead back to it. Only
 * looked up when a rule tests "rdns", or the backend takes it (XCLIENT
 * NAME: check_options.want_rdns). */
#ifndef MOAT_RDNS_H
#define MOAT_RDNS_H

#include <sys/socket.h>
#include "checks/check.h"
#include "checks/dns.h"
#include "checks/outcomes.h"

#define RDNS_PTR_MAX 10 /* PTR names tried (RFC 7208 4.6.4 allows 10 for SPF's ptr) */

/* Called exactly once, always later from the loop (never before rdns_start
 * returns; dns.h states the rule), unless cancelled; name is "" unless
 * RDNS_OK, valid only during the call. */
typedef void (*rdns_cb)(void *arg, enum rdns_res res, const char *name);
struct rdns_check;

/* NULL: no memory to start; cb will never run, and the caller takes
 * RDNS_TEMPFAIL itself. */
struct rdns_check *rdns_start(struct dns *d, const struct sockaddr *client, rdns_cb cb, void *arg);
/* The callback will not run. NULL is ignored. */
void rdns_cancel(struct rdns_check *c);
const char *rdns_res_name(enum rdns_res r);
/* Its row in the registry: fact "rdns" (the confirmed name, or none), run
 * only when a rule tests it or want_rdns; checks_result gives a struct
 * rdns_result. */
extern const struct check_def check_rdns;
struct rdns_result {
	enum rdns_res res;
	char name[DNS_NAME_MAX + 1]; /* with RDNS_OK */
};
/* The PTR query name of an address ("4.3.2.1.in-addr.arpa"); -1 if not IPv4/IPv6. Pure. */
int rdns_ptr_name(const struct sockaddr *sa, char *out, size_t size);

#endif
