/* preflight.c - what a start needs, checked before moat serves (see preflight.h) */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/event.h>

#include "checks/dns.h"
#include "proxy/backend.h"
#include "proxy/config.h"
#include "proxy/lib/netaddr.h"
#include "proxy/preflight.h"
#include "proxy/recorder.h"
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
	if (c->record_dir[0] && recorder_dir_ready(c->record_dir, create_log) < 0) {
		snprintf(err, errsize, "record_dir %s: user %s cannot write a file there: %s", c->record_dir, who,
		         strerror(errno));
		return -1;
	}
	if (c->log_target == LOG_TO_FILE && log_file_ok(c->log_file, who, create_log, err, errsize) < 0)
		return -1;
	if (readable("config", config_path, who, err, errsize) < 0)
		return -1;
	if (c->check_dmarc && readable("public_suffix_list", c->public_suffix_list, who, err, errsize) < 0)
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

/* ---- moat -t asks the backends ------------------------------------------
 * Before any worker's loop exists: a loop of its own, with a resolver of
 * its own (c-ares, dns_servers), so no name is looked up by a blocking
 * call here either. Every backend of each list is asked at once, each on
 * its own connection (a name: its addresses in turn). */

struct preflight;

struct ask {
	struct preflight *pf;
	const char *key;   /* "backend", "submission_backend" */
	struct backend_list one;
	struct backend *b;
	char where[BACKEND_NAME_MAX + 80];
	char line[1536];   /* what it said, for out */
	int code;          /* its last EHLO reply's code; 0: none */
	int error;         /* its name does not exist: moat -t fails */
	int auth;          /* AUTH is passed on to it: what it offers of PLAIN and LOGIN */
};

struct preflight {
	const struct config *c;
	struct event_base *base;
	struct dns *dns;
	struct backend_pool *pool;
	struct event *fin;
	struct ask ask[2 * MOAT_BACKENDS_MAX];
	int n, left;
};

/* The last answer is in: everything goes, so that the loop ends when the
 * last events are done (breaking out of the loop instead would leave
 * libevent's deferred callbacks, and the TLS bufferevent they hold, never
 * run nor freed; the resolver's sockets and the names' timers would keep
 * it running). */
static void fin_cb(evutil_socket_t fd, short what, void *arg)
{
	struct preflight *pf = arg;

	backend_pool_free(pf->pool);
	pf->pool = NULL;
	dns_free(pf->dns);
	pf->dns = NULL;
}

/* Append to a's line. */
static void say(struct ask *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct ask *a, const char *fmt, ...)
{
	size_t n = strlen(a->line);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->line + n, sizeof a->line - n, fmt, ap);
	va_end(ap);
}

/* session_auth.c answers an AUTH whose mechanism submission_backend does
 * not offer 454, as when it is down (c NULL: it did not answer). */
static void say_auth(struct ask *a, const struct ehlo_caps *c)
{
	static const char *const hint = "(Postfix: smtpd_sasl_auth_enable = yes; with smtpd_tls_auth_only = yes, "
	                                "backend_tls)";
	const char *shared = strcmp(a->key, "backend") == 0 ? " (the backend)" : "";

	if (!c) {
		say(a, "warning: submission_backend %s%s did not answer: every AUTH on smtps_listen and "
		    "submission_listen it would take gets 454 4.7.0 while it does not\n", a->where, shared);
	} else if (!c->auth_plain && !c->auth_login) {
		say(a, "warning: submission_backend %s%s offers no AUTH PLAIN nor LOGIN: every AUTH on smtps_listen and "
		    "submission_listen would get 454 4.7.0 %s\n", a->where, shared, hint);
	} else if (!c->auth_plain || !c->auth_login) {
		say(a, "warning: submission_backend %s%s offers no AUTH %s: AUTH %s on smtps_listen and "
		    "submission_listen would get 454 4.7.0 %s\n", a->where, shared, c->auth_plain ? "LOGIN" : "PLAIN",
		    c->auth_plain ? "LOGIN" : "PLAIN", hint);
	}
}

/* A backend that answered EHLO: what it offers (with AUTH, what
 * session_auth.c needs of it), and what is amiss. */
static void described(struct ask *a)
{
	const struct ehlo_caps *c = backend_caps(a->b);
	const char *w[BACKEND_WARN_MAX];
	char desc[200];

	backend_describe(a->b, desc, sizeof desc);
	if (a->auth && strcmp(a->key, "backend") != 0)
		say(a, "%s %s: auth_plain=%d auth_login=%d %s\n", a->key, a->where, c->auth_plain, c->auth_login, desc);
	else
		say(a, "%s %s: %s\n", a->key, a->where, desc);
	for (int i = 0, k = backend_warnings(a->b, a->pf->c, w); i < k; i++)
		say(a, "warning: %s\n", w[i]);
	if (a->auth && strcmp(a->key, "backend") == 0) /* the backend is submission_backend too */
		say(a, "submission_backend %s (the backend): auth_plain=%d auth_login=%d\n", a->where, c->auth_plain,
		    c->auth_login);
}

/* What a backend answered, in words; then b goes. */
static void asked(void *arg, const struct smtp_reply *r)
{
	struct ask *a = arg;
	const char *why = r ? NULL : backend_error(a->b);
	const char *all = a->pf->c->backend.n > 1 && strcmp(a->key, "backend") == 0 ? "no backend of the list answers"
	                                                                             : "it is down";
	int unresolved = backend_unresolved(a->b);

	a->code = r ? r->code : 0;
	if (r && r->code / 100 == 2)
		backend_where(a->b, a->where, sizeof a->where);
	if (unresolved) {
		const char *reason = why && strchr(why, '(') ? strchr(why, '(') : "(no address)";

		a->error = unresolved == 1;
		snprintf(a->line, sizeof a->line, "%s: %s %s has no address %s: %s\n", a->error ? "error" : "warning",
		         a->key, a->where, reason, a->error ? "no such name, or no A or AAAA record for it (moat "
		         "starts, and says 451 4.4.3 to every RCPT while no backend of the list has an address)"
		         : "DNS fails; moat starts, and says 451 4.4.3 to every RCPT until it has an answer");
	} else if (backend_tls_error(a->b)) {
		snprintf(a->line, sizeof a->line, "warning: %s %s: backend_tls = required and %s: every RCPT would get "
		         "451 4.7.5\n", a->key, a->where, backend_tls_error(a->b));
	} else if (a->code / 100 != 2) {
		snprintf(a->line, sizeof a->line, "warning: %s %s %s%s%s%s: moat starts without it, and says 451 4.4.1 "
		         "to every RCPT while %s\n", a->key, a->where, a->code ? "refused the session" : "not reachable",
		         why ? " (" : "", why ? why : "", why ? ")" : "", all);
	} else {
		a->line[0] = '\0'; /* was "not asked" */
		described(a);
	}
	if (a->auth)
		say_auth(a, a->code / 100 == 2 ? backend_caps(a->b) : NULL);
	backend_free(a->b);
	a->b = NULL;
	if (--a->pf->left == 0)
		event_active(a->pf->fin, 0, 0);
}

static void ask_list(struct preflight *pf, const char *key, const struct backend_list *l, int auth)
{
	for (int i = 0; i < l->n; i++) {
		struct ask *a = &pf->ask[pf->n++];

		a->pf = pf;
		a->key = key;
		a->auth = auth;
		a->one.n = 1;
		a->one.t[0] = l->t[i];
		backend_target_text(&l->t[i], a->where, sizeof a->where);
		snprintf(a->line, sizeof a->line, "warning: %s not asked: out of memory\n", key);
		if ((a->b = backend_open_list(pf->pool, pf->c, &a->one, asked, a)))
			pf->left++;
	}
}

static int ask_all(struct preflight *pf, int timeout)
{
	int auth = 0;
	struct dns_options o = {
		.servers = pf->c->dns_servers,
		.timeout_ms = pf->c->dns_timeout,
		.tries = pf->c->dns_tries,
		.cache_max = 0,
	};

	if (!(pf->base = event_base_new()) || !(pf->fin = event_new(pf->base, -1, 0, fin_cb, pf)) ||
	    !(pf->dns = dns_new(pf->base, &o)) || !(pf->pool = backend_pool_new(pf->base, pf->dns)))
		return -1;
	backend_pool_set_timeout(pf->pool, timeout);
	for (int i = 0; i < pf->c->nlisten; i++)
		auth |= pf->c->listen_kind[i] != LISTENER_SMTP; /* AUTH is passed on from there */
	/* without submission_backend, AUTH goes to the backend, asked once for both */
	ask_list(pf, "backend", &pf->c->backend, auth && !pf->c->submission_backend.n);
	if (pf->c->submission_backend.n)
		ask_list(pf, "submission_backend", &pf->c->submission_backend, auth);
	if (pf->left)
		event_base_dispatch(pf->base); /* until asked() and what it freed are done */
	return 0;
}

int preflight_backend(const struct config *c, int timeout, char *out, size_t size)
{
	struct preflight *pf = calloc(1, sizeof *pf);
	int answered = 0, error = 0;
	size_t k = 0;

	snprintf(out, size, "warning: backend not asked: out of memory\n");
	if (!pf)
		return -1;
	pf->c = c;
	if (ask_all(pf, timeout) == 0) {
		out[0] = '\0';
		for (int i = 0; i < pf->n && k < size; i++) {
			k += (size_t)snprintf(out + k, size - k, "%s", pf->ask[i].line);
			answered |= pf->ask[i].code / 100 == 2 && strcmp(pf->ask[i].key, "backend") == 0;
			error |= pf->ask[i].error;
		}
	}
	for (int i = 0; i < pf->n; i++)
		backend_free(pf->ask[i].b);
	backend_pool_free(pf->pool);
	dns_free(pf->dns);
	if (pf->fin)
		event_free(pf->fin);
	if (pf->base)
		event_base_free(pf->base);
	free(pf);
	return error ? -2 : answered ? 0 : -1;
}
