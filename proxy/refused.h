/* refused.h - a connection refused at connect lingers for the client's commands
 *
 * A client refused at connect (a connect rule, pregreet, too many
 * connections) may already have written its next commands. Closing at once
 * with them unread answers them with a TCP reset, and a client whose write
 * fails never reads the refusal. So, as RFC 5321 3.1 asks after a 554
 * greeting, the connection stays open: every command is answered
 * 503 5.5.1, QUIT 221, and EOF, MOAT_REFUSED_LINGER_SECS (or
 * command_timeout, if shorter), MOAT_REFUSED_INPUT_MAX bytes or
 * MOAT_REFUSED_CMDS_MAX commands end it. A lingering connection is no
 * session: it holds no checks, no backend and no slot of max_connections
 * or max_connections_per_ip; at most MOAT_REFUSED_LINGER_MAX linger per
 * worker, and past that a refusal closes at once. */
#ifndef MOAT_REFUSED_H
#define MOAT_REFUSED_H

#include <stddef.h>

struct server;
struct bufferevent;

/* Take over bev, whose output holds the refusal (its callbacks are
 * replaced; commands already in its input are answered). 0: taken; -1:
 * over the cap or out of memory, bev is still the caller's. */
int refused_linger(struct server *srv, struct bufferevent *bev, int timeout);
/* The same for an accepted socket without a session (the refusal at
 * accept): reply is written first; over the cap it is written best-effort
 * and fd closed at once. fd is always taken. */
void refused_linger_fd(struct server *srv, int fd, const char *reply, size_t len, int timeout);
/* Close every lingering connection (the worker's exit). */
void refused_close_all(struct server *srv);

#endif
