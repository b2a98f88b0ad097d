/* preflight.c - what a start needs, checked before moat serves (see preflight.h) */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/event.h>

#include "proxy/backend.h"
#include "proxy/config.h"
#include "proxy/lib/netaddr.h"
#include "proxy/preflight.h"
#include "proxy/spool.h"
#include "rules/rules.h"

#ifndef _PATH_LOG
#define _PATH_LOG "/dev/log"
#endif

/* Connect to the syslog socket the way syslog(3) does: datagram, else stream. */
static int syslog_reachable(void)
{
	static const int types[] = {SOCK_DGRAM, SOCK_STREAM};
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int e = 0;

	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", _PATH_LOG);
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0), r;

		if (fd < 0)
			return -1;
		r = connect(fd, (struct sockaddr *)&sun, sizeof sun);
		e = errno;
		close(fd);
		if (r == 0)
			return 0;
		if (e != EPROTOTYPE)
			break;
	}
	errno = e;
	return -1;
}

int preflight_syslog(const struct config *c, char *err, size_t errsize)
{
	if (c->log_target != LOG_TO_SYSLOG || syslog_reachable() == 0)
		return 0;
	snprintf(err, errsize, "log = syslog: no syslog daemon listens on %s (%s): start one, or set log = "
	         "stderr or a file", _PATH_LOG, strerror(errno));
	return -1;
}

/* The log file takes appends; a missing one can be made in its directory
 * (and is, with create). */
static int log_file_ok(const char *path, const char *who, int create, char *err, size_t errsize)
{
	char dir[sizeof ((struct config *)0)->log_file];
	const char *slash = strrchr(path, '/');
	int fd = open(path, O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT) {
		snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
		if (access(dir, W_OK | X_OK) < 0) {
			snprintf(err, errsize, "log %s: user %s cannot create it in %s: %s", path, who, dir,
			         strerror(errno));
			return -1;
		}
		if (!create)
			return 0;
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0640);
	}
	if (fd < 0) {
		snprintf(err, errsize, "log %s: not writable by user %s: %s", path, who, strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

/* A file a reload reads again, read by this user. */
static int readable(const char *what, const char *path, const char *who, char *err, size_t errsize)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	snprintf(err, errsize, "%s %s: not readable by user %s (a reload reads it as that user): %s", what, path, who,
	         strerror(errno));
	return -1;
}

int preflight_files(const struct config *c, const char *config_path, const char *who, int create_log,
                    char *err, size_t errsize)
{
	const char *f;

	if (spool_dir_usable(c->spool_dir) < 0) {
		snprintf(err, errsize, "spool_dir %s: user %s cannot write a file there: %s", c->spool_dir, who,
		         strerror(errno));
		return -1;
	}
	if (c->log_target == LOG_TO_FILE && log_file_ok(c->log_file, who, create_log, err, errsize) < 0)
		return -1;
	if (readable("config", config_path, who, err, errsize) < 0)
		return -1;
	if (c->local_recipients[0] && readable("local_recipients", c->local_recipients, who, err, errsize) < 0)
		return -1;
	for (int i = 0; i < c->ntls_cert && i < c->ntls_key; i++)
		if (readable("tls_cert", c->tls_cert[i], who, err, errsize) < 0 ||
		    readable("tls_key", c->tls_key[i], who, err, errsize) < 0)
			return -1;
	for (size_t i = 0; c->ruleset && (f = ruleset_file(c->ruleset, i)); i++)
		if (readable(i == 0 ? "rules" : "rule file or list", f, who, err, errsize) < 0)
			return -1;
	return 0;
}

/* ---- moat -t asks the backend ------------------------------------------- */

struct ask {
	const struct config *c;
	struct backend *b;
	char addr[INET6_ADDRSTRLEN + 8];
	char *out;
	size_t size;
	int code;  /* its last EHLO reply's code; 0: none */
};

/* What the backend answered, in words; then b goes, and the loop ends when
 * its last events are done (breaking out of the loop instead would leave
 * libevent's deferred callbacks, and the TLS bufferevent they hold, never
 * run nor freed). */
static void asked(void *arg, const struct smtp_reply *r)
{
	struct ask *a = arg;
	const char *w[BACKEND_WARN_MAX], *why = r ? NULL : backend_error(a->b);
	char desc[200];
	size_t n;

	a->code = r ? r->code : 0;
	if (backend_tls_error(a->b)) {
		snprintf(a->out, a->size, "warning: backend %s: backend_tls = required and %s: every RCPT would get "
		         "451 4.7.5\n", a->addr, backend_tls_error(a->b));
	} else if (a->code / 100 != 2) {
		snprintf(a->out, a->size, "warning: backend %s %s%s%s%s: moat starts without it, and says 451 4.4.1 "
		         "to every RCPT while it is down\n", a->addr, a->code ? "refused the session" : "not reachable",
		         why ? " (" : "", why ? why : "", why ? ")" : "");
	} else {
		backend_describe(a->b, desc, sizeof desc);
		n = (size_t)snprintf(a->out, a->size, "backend %s: %s\n", a->addr, desc);
		for (int i = 0, k = backend_warnings(a->b, a->c, w); i < k && n < a->size; i++)
			n += (size_t)snprintf(a->out + n, a->size - n, "warning: %s\n", w[i]);
	}
	backend_free(a->b);
	a->b = NULL;
}

/* "addr:port", "[v6]:port" */
static void addr_text(const struct config *c, char *out, size_t size)
{
	char ip[INET6_ADDRSTRLEN];
	const struct sockaddr *sa = (const struct sockaddr *)&c->backend;

	sockaddr_ntop(sa, ip, sizeof ip);
	snprintf(out, size, strchr(ip, ':') ? "[%s]:%d" : "%s:%d", ip, sockaddr_port(sa));
}

int preflight_backend(const struct config *c, int timeout, char *out, size_t size)
{
	struct event_base *base = event_base_new();
	struct backend_pool *p = base ? backend_pool_new(base) : NULL;
	struct ask a = {.c = c, .out = out, .size = size};

	addr_text(c, a.addr, sizeof a.addr);
	snprintf(out, size, "warning: backend %s not asked: out of memory\n", a.addr);
	if (p) {
		backend_pool_set_timeout(p, timeout);
		a.b = backend_open(p, c, asked, &a);
	}
	if (a.b)
		event_base_dispatch(base); /* until asked() and what it freed are done */
	backend_free(a.b);
	backend_pool_free(p);
	if (base)
		event_base_free(base);
	return a.code / 100 == 2 ? 0 : -1;
}
