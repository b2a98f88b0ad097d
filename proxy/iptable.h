/* iptable.h - open connections per client address */
#ifndef MOAT_IPTABLE_H
#define MOAT_IPTABLE_H

#include <sys/socket.h>

struct iptable;

struct iptable *iptable_new(void);
/* Count one more connection from sa's address; returns the new count. */
int iptable_inc(struct iptable *t, const struct sockaddr *sa);
void iptable_dec(struct iptable *t, const struct sockaddr *sa);
void iptable_free(struct iptable *t);

#endif
