/* privileges.h - descriptors and the user moat runs as */
#ifndef MOAT_PRIVILEGES_H
#define MOAT_PRIVILEGES_H

struct config;

/* Raise the soft descriptor limit to what max_connections needs (up to the
 * hard limit; a warning when short). */
void raise_fd_limit(const struct config *c);
/* Started as root: become c->user (and chroot), or stay root only with
 * run_as_root. Started as another user: drop every capability (those of
 * systemd's AmbientCapabilities=, which were for binding). 0, or -1 after
 * logging why. */
int drop_privileges(const struct config *c);
/* preflight_files (preflight.h) as the user a start runs as: when root
 * with user set, a child process chroots and drops privileges as
 * drop_privileges does and looks; otherwise this process looks. Also
 * refuses what drop_privileges would (no user, an unknown one). 0, or -1
 * with err. */
int preflight_as_run_user(const struct config *c, const char *config_path, int create_log, char *err,
                          size_t errsize);

#endif
