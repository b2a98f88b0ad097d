/* backend_addr.h - where a backend connection goes: the backends of a list
 * in order (failover: the first that answers), each name's addresses (its A
 * records, then its AAAA) through checks/dns.c, never the blocking resolver.
 *
 * A worker keeps each name's answer for its TTL, held between
 * MOAT_BACKEND_TTL_MIN and MOAT_BACKEND_TTL_MAX, and asks again when that
 * runs out while the name is in use (a name unused for a TTL is asked
 * again when next needed); the latest answer stands until the next one is
 * in. While DNS fails (SERVFAIL, timeout) the last good answer is kept;
 * a name that does not exist or has no address record has none, and is
 * asked again every MOAT_BACKEND_DNS_RETRY seconds while needed. Each
 * change is logged once: a name's addresses, a name with none, DNS failing,
 * an address that stops answering or answers again. */
#ifndef MOAT_BACKEND_ADDR_H
#define MOAT_BACKEND_ADDR_H

#include <event2/event.h>
#include <sys/socket.h>
#include "proxy/backend_target.h"

struct dns;
struct backend_names;
struct backend_dial;

/* The names of one worker, looked up through dns (on base's loop). */
struct backend_names *backend_names_new(struct event_base *base, struct dns *dns);
/* moat -t: nothing logged (the caller tells). */
void backend_names_quiet(struct backend_names *n);
void backend_names_free(struct backend_names *n);
/* Does t (a name, or an address) still lead to addr? An address target: its
 * address; a name: addr is in its latest answer, asked within its TTL. A
 * pooled connection serves only while it does. */
int backend_names_current(struct backend_names *n, const struct backend_target *t, const struct sockaddr *addr);

/* One connection's way through a list: every address of the first backend,
 * then of the next. */
typedef void (*backend_dial_cb)(void *arg, const struct sockaddr *addr, socklen_t len);
/* l is copied. NULL: no memory. */
struct backend_dial *backend_dial_new(struct backend_names *n, const struct backend_list *l);
/* The next address to try, to cb later (never inside this call), or NULL
 * when none is left. -1 when that cannot even start (no memory). */
int backend_dial_next(struct backend_dial *d, backend_dial_cb cb, void *arg);
/* The backend of the address handed out last. */
const struct backend_target *backend_dial_target(const struct backend_dial *d);
/* The address handed out last did not answer (why), or answered: logged
 * when it changes for that address. */
void backend_dial_failed(struct backend_dial *d, const char *why);
void backend_dial_answered(struct backend_dial *d);
/* Once no address is left: why, when no backend of the list had one (every
 * name without an address: "no address for backend mx.example.com:25
 * (NXDOMAIN: no such name)"); NULL when some address was tried.
 * *dns_failed: the last name had none because DNS failed (SERVFAIL, no
 * answer), not because DNS said it has none. */
const char *backend_dial_unresolved(const struct backend_dial *d, int *dns_failed);
/* No callback runs afterwards. NULL is ignored. */
void backend_dial_free(struct backend_dial *d);

#endif
