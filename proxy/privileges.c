/* privileges.c - what a daemon started as root does before it serves:
 * enough descriptors, then a user of its own (and a chroot) */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proxy/config.h"
#include "proxy/lib/bounds.h"
#include "proxy/lib/log.h"
#include "proxy/preflight.h"
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

/* chroot (if set) and become pw: its uid and gid, no supplementary groups;
 * root must be gone for good. 0, or -1 with err. */
static int become(const struct config *c, const struct passwd *pw, char *err, size_t errsize)
{
	if (pw->pw_uid == 0) {
		snprintf(err, errsize, "user %s is root", c->user);
		return -1;
	}
	if (c->chroot[0] && (chdir(c->chroot) < 0 || chroot(c->chroot) < 0 || chdir("/") < 0)) {
		snprintf(err, errsize, "chroot %s: %s", c->chroot, strerror(errno));
		return -1;
	}
	if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		snprintf(err, errsize, "cannot become %s: %s", c->user, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) { /* must be impossible now */
		snprintf(err, errsize, "could regain root after dropping to %s", c->user);
		return -1;
	}
	return 0;
}

/* Not started as root, yet with capabilities: those a service manager
 * gave (systemd's AmbientCapabilities=CAP_NET_BIND_SERVICE, so that port 25
 * binds). They were for binding, done now; a reload binds nothing (new
 * listen addresses wait for a restart): all are dropped, ambient,
 * inheritable, permitted and effective. 0 (also when none were held), or
 * -1 after logging why. */
static int drop_capabilities(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
	unsigned long long had;

	memset(d, 0, sizeof d);
	if (syscall(SYS_capget, &h, d) < 0)
		return 0; /* no capabilities in this kernel: nothing to drop */
	had = (unsigned long long)(d[0].permitted | d[0].inheritable) |
	      (unsigned long long)(d[1].permitted | d[1].inheritable) << 32;
	if (!had) /* the ambient set is within both */
		return 0;
	/* ambient ones first (EINVAL before Linux 4.3, which has none) */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
		log_error("privileges", "cannot clear the ambient capabilities: %s", strerror(errno));
		return -1;
	}
	memset(d, 0, sizeof d);
	if (syscall(SYS_capset, &h, d) < 0) {
		log_error("privileges", "cannot drop the capabilities (0x%llx): %s", had, strerror(errno));
		return -1;
	}
	log_info("privileges", "running as uid %d; capabilities 0x%llx dropped after binding", (int)geteuid(), had);
	return 0;
}

/* Started as root: after binding, become cfg->user (and chroot), or stay
 * root only when run_as_root says so. Started as another user (systemd's
 * User=): drop the capabilities it gave. 0, or -1 after logging why. */
int drop_privileges(const struct config *c)
{
	struct passwd *pw;
	char err[2048];

	if (geteuid() != 0) {
		if (c->chroot[0])
			log_warn("privileges", "not started as root: chroot = %s is not applied (a service manager "
			         "can: systemd's RootDirectory=)", c->chroot);
		return drop_capabilities();
	}
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
	if (become(c, pw, err, sizeof err) < 0) {
		log_error("privileges", "%s", err);
		return -1;
	}
	log_info("privileges", "running as %s (uid %d)%s%s", c->user, (int)pw->pw_uid,
	         c->chroot[0] ? ", chroot " : "", c->chroot);
	return 0;
}

/* preflight_files as this process, named by its user. */
static int preflight_here(const struct config *c, const char *config_path, int create_log, char *err,
                          size_t errsize)
{
	struct passwd *pw = getpwuid(geteuid());
	char who[64];

	if (pw)
		snprintf(who, sizeof who, "%s", pw->pw_name);
	else
		snprintf(who, sizeof who, "uid %d", (int)geteuid());
	return preflight_files(c, config_path, who, create_log, err, errsize);
}

int preflight_as_run_user(const struct config *c, const char *config_path, int create_log, char *err,
                          size_t errsize)
{
	char msg[2048] = "";
	struct passwd *pw;
	int fds[2], status;
	ssize_t n;
	pid_t pid;

	if (geteuid() != 0 || (!c->user[0] && c->run_as_root))
		return preflight_here(c, config_path, create_log, err, errsize);
	if (!c->user[0]) {
		snprintf(err, errsize, "refusing to run as root: set user = (e.g. moat) or run_as_root = yes");
		return -1;
	}
	if (!(pw = getpwnam(c->user))) {
		snprintf(err, errsize, "user %s does not exist", c->user);
		return -1;
	}
	/* A child drops privileges as a start does, and looks. */
	if (pipe2(fds, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
		snprintf(err, errsize, "cannot check files as user %s: %s", c->user, strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int r = become(c, pw, msg, sizeof msg) < 0 ||
		        preflight_files(c, config_path, c->user, create_log, msg, sizeof msg) < 0;

		if (r && write(fds[1], msg, strlen(msg)) < 0)
			r = 2;
		_exit(r);
	}
	close(fds[1]);
	while ((n = read(fds[0], msg, sizeof msg - 1)) < 0 && errno == EINTR)
		;
	close(fds[0]);
	msg[n > 0 ? n : 0] = '\0';
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	snprintf(err, errsize, "%s", msg[0] ? msg : "the check as the run user failed");
	return -1;
}
