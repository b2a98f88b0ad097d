/* sdnotify.h - tell the service manager (systemd, Type=notify) how moat is:
 * READY=1, RELOADING=1, STOPPING=1 to $NOTIFY_SOCKET; libsystemd not needed */
#ifndef MOAT_SDNOTIFY_H
#define MOAT_SDNOTIFY_H

/* Only the process systemd started (the main PID: the supervisor of
 * workers = N, else the one worker) sends: the unit's NotifyAccess=main. */

/* The listeners are bound and every worker's loop is serving them. */
void sd_notify_ready(void);
/* A SIGHUP reload begins (with the MONOTONIC_USEC= systemd asks of it);
 * sd_notify_ready when it is over, applied or not. */
void sd_notify_reloading(void);
/* SIGTERM: draining, then exiting. */
void sd_notify_stopping(void);

/* One datagram of state lines to the socket $NOTIFY_SOCKET names (a path,
 * or an abstract name written with a leading '@'). Without the variable:
 * nothing, 0. 0 when sent, else -1 (errno). Never blocks. */
int sd_notify_send(const char *state);

#endif
