/* offline.h - the checks and rules run outside the daemon, for one
 * transaction at a time: what "moat check" (checkcmd.c) and "moat replay"
 * (replay.c) share. The config as moat would load it, a loop of their own,
 * a resolver (the network, or a source of recorded answers), the DKIM
 * verifier and the public suffix list. */
#ifndef MOAT_OFFLINE_H
#define MOAT_OFFLINE_H

#include <stddef.h>
#include <sys/socket.h>

#include "checks/checks.h"
#include "checks/dns.h"
#include "proxy/config.h"

struct offline {
	struct config *cfg;
	struct check_options opt;
	struct event_base *base;
	struct dns *dns;
	struct dkim_verifier *dkim;
};

/* cmd names the command in errors ("moat check"); source NULL: DNS from
 * the network (dns_servers), else only from source (dns_new_offline).
 * 0, or -1 with the error on stderr (offline_end undoes what was made). */
int offline_start(struct offline *o, const char *conf, const char *cmd, dns_source_fn source, void *arg);
void offline_end(struct offline *o);

/* Run the loop until *waiting is 0 (an asynchronous stage's verdict). */
void offline_wait(struct offline *o, const int *waiting);

/* "user@example.com", "<user@example.com>" or "<>" as a path. 0 or -1. */
int offline_path(const char *addr, int is_rcpt, struct smtp_path *p);
/* An IP address as a socket address. 0 or -1. */
int offline_client(const char *ip, struct sockaddr_storage *ss);

/* A message in memory, read as the spool would be (msg_reader). */
struct offline_msg {
	const char *p;
	size_t len;
};
long offline_msg_reader(void *arg, size_t off, char *buf, size_t len);

#endif
