/* privileges.c - what a daemon started as root does before it serves:
 * enough descriptors, then a user of its own (and a chroot) */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "proxy/config.h"
#include "proxy/lib/bounds.h"
#include "proxy/lib/log.h"
#include "proxy/privileges.h"

/* Each session may hold two descriptors (client, backend), plus spill
 * files and the refused connections that linger: raise the soft limit to
 * what max_connections needs, up to the hard limit, and say so when even
 * that is short. */
void raise_fd_limit(const struct config *c)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)c->max_connections * 2 + MOAT_REFUSED_LINGER_MAX + MOAT_FD_RESERVE;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < want)
		log_warn("startup", "max_connections = %d needs about %llu file descriptors; the limit is %llu "
		         "(raise it: ulimit -n, LimitNOFILE=)", c->max_connections, (unsigned long long)want,
		         (unsigned long long)rl.rlim_cur);
}

/* Started as root: after binding, become cfg->user (and chroot), or stay
 * root only when run_as_root says so. 0, or -1 after logging why. */
int drop_privileges(const struct config *c)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return 0;
	if (!c->user[0]) {
		if (c->run_as_root) {
			log_warn("privileges", "running as root (run_as_root = yes)");
			return 0;
		}
		log_error("privileges", "refusing to run as root: set user = (e.g. moat) or run_as_root = yes");
		return -1;
	}
	pw = getpwnam(c->user); /* start-up only: NSS may block */
	if (!pw) {
		log_error("privileges", "user %s does not exist", c->user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		log_error("privileges", "user %s is root", c->user);
		return -1;
	}
	if (c->chroot[0] && (chdir(c->chroot) < 0 || chroot(c->chroot) < 0 || chdir("/") < 0)) {
		log_error("privileges", "chroot %s: %s", c->chroot, strerror(errno));
		return -1;
	}
	if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		log_error("privileges", "cannot become %s: %s", c->user, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) { /* must be impossible now */
		log_error("privileges", "could regain root after dropping to %s", c->user);
		return -1;
	}
	log_info("privileges", "running as %s (uid %d)%s%s", c->user, (int)pw->pw_uid,
	         c->chroot[0] ? ", chroot " : "", c->chroot);
	return 0;
}

