/* privileges.h - descriptors and the user moat runs as */
#ifndef MOAT_PRIVILEGES_H
#define MOAT_PRIVILEGES_H

struct config;

/* Raise the soft descriptor limit to what max_connections needs (up to the
 * hard limit; a warning when short). */
void raise_fd_limit(const struct config *c);
/* Started as root: become c->user (and chroot), or stay root only with
 * run_as_root. 0, or -1 after logging why. */
int drop_privileges(const struct config *c);

#endif
