/* listener.h - listening sockets and the total connection limit */
#ifndef MOAT_LISTENER_H
#define MOAT_LISTENER_H

#include "server.h"

/* Bind every configured address. 0, or -1 after logging why. */
int listeners_open(struct server *srv);
/* Stop accepting (shutdown). */
void listeners_close(struct server *srv);

#endif
