/* preflight.h - what a start needs, checked before moat serves and by moat -t
 *
 * A config can parse and still not run: a spool_dir the run user cannot
 * write (every message over 256 KiB would get 451), log = syslog with no
 * syslog daemon (nothing would be logged), files a reload reads that the
 * run user cannot read (every SIGHUP would fail). These checks say so with
 * the path and the user, before anything is served. */
#ifndef MOAT_PREFLIGHT_H
#define MOAT_PREFLIGHT_H

#include <stddef.h>

struct config;

/* log = syslog: a syslog daemon listens on /dev/log (syslog is opened
 * before privileges drop). 0, or -1 with the reason in err. */
int preflight_syslog(const struct config *c, char *err, size_t errsize);
/* As this process is now (the user moat runs as, who names it): spool_dir
 * takes a spill file; the log file can be written, or, when it does not
 * exist, created in its directory (create_log: create it now, so that it
 * belongs to this user); record_dir takes files (made now with create_log,
 * so that it belongs to this user); every file a reload reads (config_path, the rule
 * files and lists, local_recipients, tls_cert and tls_key) can be read.
 * 0, or -1 with err. */
int preflight_files(const struct config *c, const char *config_path, const char *who, int create_log,
                    char *err, size_t errsize);

/* moat -t: connect to each backend of backend and submission_backend (a
 * name: through a resolver of its own, c-ares on a loop of its own; each
 * address in turn), EHLO, STARTTLS as backend_tls says, up to timeout
 * seconds per step, and say in out, one line each ending in "\n", what each
 * offers ("backend ADDR: smtputf8=1 ... xclient=1 ...") and what is amiss
 * ("warning: ..."): unreachable, TLS required and failed, neither XCLIENT
 * nor XFORWARD, xclient = yes without XCLIENT; "error: ..." for a name
 * that does not exist or has no address record. With smtps_listen or
 * submission_listen, what submission_backend (else the backend) offers of
 * AUTH ("submission_backend ADDR: auth_plain=1 auth_login=1"), and a
 * warning when it offers no AUTH PLAIN or LOGIN or does not answer: every
 * such AUTH would get 454. 0; -1 when no backend
 * answered EHLO (a backend that is down does not stop a start: these are
 * warnings); -2 when a name does not exist (a mistake: moat -t fails). */
int preflight_backend(const struct config *c, int timeout, char *out, size_t size);

#endif
