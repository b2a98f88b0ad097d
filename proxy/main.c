/* main.c - moat: the command line, the configuration, one worker or a supervisor */
#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "proxy/authfail.h"
#include "proxy/checkcmd.h"
#include "proxy/replay.h"
#include "proxy/config.h"
#include "proxy/conntable.h"
#include "proxy/lib/bounds.h"
#include "proxy/lib/log.h"
#include "proxy/lib/metrics.h"
#include "proxy/lib/siphash.h"
#include "proxy/listener.h"
#include "proxy/metrics_http.h"
#include "proxy/preflight.h"
#include "proxy/privileges.h"
#include "proxy/report/report.h"
#include "proxy/server.h"
#include "proxy/store.h"
#include "proxy/tls.h"
#include "proxy/version.h"
#include "proxy/workers.h"
#include "rules/rules.h"

#ifndef DEFAULT_CONFIG /* make: $(sysconfdir)/moat/moat.conf, where make install puts it */
#define DEFAULT_CONFIG "/etc/moat/moat.conf"
#endif

static void usage(FILE *f)
{
	fprintf(f, "usage: moat [-t] [-c config]\n"
	           "       moat check [-c config] --client IP [--helo NAME] --from ADDR --rcpt ADDR\n"
	           "                  [--message FILE] [--tls] [--json]\n"
	           "       moat report [--since T] [--until T] [--client A] [--sender A] [--rcpt A]\n"
	           "                   [--action A] [--rule R] [--session ID] [--json|--html FILE] [FILE...|-]\n"
	           "       moat replay [-c config] [--expect FILE|recorded] [--json] DIR|FILE...\n"
	           "  -c FILE  configuration file (default " DEFAULT_CONFIG ")\n"
	           "  -t       check the configuration, the rules and their lists, and what a start\n"
	           "           needs (spool_dir, the log, those files, as the run user); ask the\n"
	           "           backends what they offer (XCLIENT, XFORWARD, STARTTLS, and with\n"
	           "           smtps_listen or submission_listen AUTH); and exit\n"
	           "  -V       print the version\n"
	           "  check    explain what moat decides for one transaction (see moat(8))\n"
	           "  report   read moat's log back: totals, top lists, refusals per hour, and the\n"
	           "           decisions of matching sessions (moat report --help; see moat(8))\n");
}

/* -t: what the backends offer, and what is amiss with them (warnings: moat
 * starts without a backend), each line as "FILE: ...". -1 when a backend's
 * name does not exist (an error). */
static int print_backend(const char *path, const struct config *c)
{
	char out[2 * MOAT_BACKENDS_MAX * 1536];
	int rc;

	signal(SIGPIPE, SIG_IGN);
	rc = preflight_backend(c, MOAT_CHECK_BACKEND_TIMEOUT, out, sizeof out);
	for (char *l = out, *nl; (nl = strchr(l, '\n')); l = nl + 1)
		printf("%s: %.*s\n", path, (int)(nl - l), l);
	return rc == -2 ? -1 : 0;
}

/* redis_password in a file others may read: a warning (moat runs). */
static void password_warning(const char *path, const struct config *c, char *out, size_t size)
{
	struct stat st;

	out[0] = '\0';
	if (c->redis_password[0] && stat(path, &st) == 0 && (st.st_mode & S_IROTH))
		snprintf(out, size, "%s: warning: redis_password is in a world-readable file (chmod o-r %s)", path, path);
}

static int run(struct server *srv)
{
	int fds[MOAT_WORKERS_MAX][MOAT_LISTEN_MAX];
	uint8_t salt[16];
	long ncpu;
	int rc;

	signal(SIGPIPE, SIG_IGN);
	/* a reload or a log rotation while starting must not kill moat (their
	 * default action): ignored until the loop, or the supervisor, takes them */
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	/* one salt for the run, before the workers fork: their session ids
	 * are then unique by construction (session.c: session_id) */
	siphash_random_key(salt);
	memcpy(&srv->id_salt, salt, sizeof srv->id_salt);
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	srv->nworkers = srv->cfg->workers ? srv->cfg->workers
	                                  : ncpu < 1 ? 1 : ncpu > MOAT_WORKERS_MAX ? MOAT_WORKERS_MAX : (int)ncpu;
	raise_fd_limit(srv->cfg);
	if (listeners_bind(srv->cfg, srv->nworkers, fds) < 0 || metrics_http_setup(srv) < 0 ||
	    drop_privileges(srv->cfg) < 0)
		return 1;
	/* before the workers fork: they count their connections in it together */
	srv->conns = conntable_new(srv->nworkers);
	srv->authfail = authfail_new();
	srv->store_shm = store_shm_new();
	if (!srv->conns || !srv->authfail || !srv->store_shm) {
		log_error("startup", "cannot make the tables the workers share: %s", strerror(errno));
		conntable_free(srv->conns);
		authfail_free(srv->authfail);
		store_shm_free(srv->store_shm);
		return 1;
	}
	rc = srv->nworkers == 1 ? server_run(srv, fds[0]) : workers_supervise(srv, fds);
	conntable_free(srv->conns);
	authfail_free(srv->authfail);
	store_shm_free(srv->store_shm);
	if (srv->metrics_fd >= 0)
		close(srv->metrics_fd);
	metrics_free();
	return rc;
}

int main(int argc, char **argv)
{
	static struct server srv;
	const char *path = DEFAULT_CONFIG;
	char err[1024], tls_warn[1024], keys_err[256] = "", pw_warn[2100];
	int opt, test_only = 0, rc;

	if (argc > 1 && strcmp(argv[1], "check") == 0)
		return check_main(argc - 1, argv + 1, DEFAULT_CONFIG);
	if (argc > 1 && strcmp(argv[1], "replay") == 0)
		return replay_main(argc - 1, argv + 1, DEFAULT_CONFIG);
	if (argc > 1 && strcmp(argv[1], "report") == 0)
		return report_main(argc - 1, argv + 1);
	while ((opt = getopt(argc, argv, "c:thV")) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 't': test_only = 1; break;
		case 'V': printf("moat %s\n", MOAT_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	srv.config_path = path;
	/* before the first TLS context and the workers' fork (tls.h) */
	tls_ticket_keys_init(keys_err, sizeof keys_err);
	srv.cfg = config_load(path, err, sizeof err);
	if (srv.cfg && tls_config_load(srv.cfg, err, sizeof err, tls_warn, sizeof tls_warn) < 0) {
		config_unref(srv.cfg);
		srv.cfg = NULL;
	}
	if (!srv.cfg) {
		if (test_only) {
			fprintf(stderr, "%s\n", err);
		} else {
			log_error("config", "%s", err);
		}
		return 1;
	}
	/* What a start needs, as the user it runs as (and before a log file is
	 * made: then it is that user's). */
	if (preflight_syslog(srv.cfg, err, sizeof err) < 0 ||
	    preflight_as_run_user(srv.cfg, path, !test_only, err, sizeof err) < 0) {
		if (test_only)
			fprintf(stderr, "%s: %s\n", path, err);
		else
			log_error("startup", "%s: %s", path, err);
		config_unref(srv.cfg);
		return 1;
	}
	password_warning(path, srv.cfg, pw_warn, sizeof pw_warn);
	if (test_only) {
		char desc[256];

		if (tls_warn[0])
			fprintf(stderr, "%s\n", tls_warn);
		if (pw_warn[0])
			fprintf(stderr, "%s\n", pw_warn);
		if (geteuid() != 0 && srv.cfg->user[0])
			printf("%s: (not root: files checked as uid %d, not as user %s)\n", path, (int)geteuid(),
			       srv.cfg->user);
		ruleset_describe(srv.cfg->ruleset, desc, sizeof desc);
		printf("%s: configuration OK\n%s: %s%s\n", path,
		       srv.cfg->rules[0] ? srv.cfg->rules : "built-in default.rules", desc,
		       srv.cfg->monitor ? " (mode = monitor: nothing is refused)" : "");
		rc = print_backend(path, srv.cfg) < 0 ? 1 : 0;
		config_unref(srv.cfg);
		return rc;
	}
	if (log_open(srv.cfg->log_target, srv.cfg->log_file) < 0) {
		log_error("log", "cannot open log %s: %s", srv.cfg->log_file, strerror(errno));
		config_unref(srv.cfg);
		return 1;
	}
	if (tls_warn[0])
		log_warn("tls", "%s", tls_warn);
	if (pw_warn[0])
		log_warn("config", "%s", pw_warn);
	if (keys_err[0])
		log_warn("tls", "%s: TLS sessions resume only on the worker and configuration that began them", keys_err);
	rc = run(&srv);
	log_close();
	return rc;
}
