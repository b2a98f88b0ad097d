/* main.c - moat: command line, start-up, signals, the event loop */
#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
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

#include "backend.h"
#include "checkcmd.h"
#include "config.h"
#include "dkim.h"
#include "dns.h"
#include "iptable.h"
#include "limits.h"
#include "listener.h"
#include "log.h"
#include "rules.h"
#include "server.h"
#include "session.h"

#define MOAT_VERSION "0.1.0"
#define DEFAULT_CONFIG "/etc/moat/moat.conf"

static void usage(FILE *f)
{
	fprintf(f, "usage: moat [-t] [-c config]\n"
	           "       moat check [-c config] --client IP [--helo NAME] --from ADDR --rcpt ADDR\n"
	           "                  [--message FILE] [--json]\n"
	           "  -c FILE  configuration file (default " DEFAULT_CONFIG ")\n"
	           "  -t       check the configuration, the rules and their lists, and exit\n"
	           "  -V       print the version\n"
	           "  check    explain what moat decides for one transaction (see moat(8))\n");
}

void server_session_gone(struct server *srv, struct session *s)
{
	if (s->counted_ip)
		iptable_dec(srv->per_ip, (struct sockaddr *)&s->peer);
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	srv->nsessions--;
	if (srv->stopping && srv->nsessions == 0)
		event_base_loopexit(srv->base, NULL);
}

static void grace_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	log_warn("shutdown", "grace period over, %d sessions cut", srv->nsessions);
	event_base_loopexit(srv->base, NULL);
}

static void on_sigterm(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;
	struct timeval tv = {srv->cfg->shutdown_grace, 0};
	struct session *s, *next;

	if (srv->stopping)
		return;
	srv->stopping = 1;
	log_info("shutdown", "signal %d: no new connections, %d sessions finishing", (int)sig,
	         srv->nsessions);
	listeners_close(srv);
	for (s = srv->sessions; s; s = next) {
		next = s->next;
		session_shutdown(s);
	}
	if (srv->nsessions == 0) {
		event_base_loopexit(srv->base, NULL);
		return;
	}
	srv->grace = evtimer_new(srv->base, grace_cb, srv);
	if (srv->grace)
		evtimer_add(srv->grace, &tv);
}

/* The loaded config is in (or the load failed): put it in service. Runs on
 * the loop. */
static void reload_apply(struct server *srv, struct config *c, const char *err)
{
	char desc[256];

	if (!c) {
		log_error("reload", "%s; keeping the running configuration", err);
		return;
	}
	if (c->nlisten != srv->cfg->nlisten ||
	    memcmp(c->listen, srv->cfg->listen, sizeof c->listen) != 0)
		log_warn("reload", "listen addresses changed: they take effect at restart");
	if (strcmp(c->dns_servers, srv->cfg->dns_servers) != 0 || c->dns_timeout != srv->cfg->dns_timeout ||
	    c->dns_tries != srv->cfg->dns_tries || c->dns_cache_size != srv->cfg->dns_cache_size)
		log_warn("reload", "DNS settings changed: they take effect at restart");
	/* Sessions keep the config (and rules) they started with; new ones get this one. */
	config_unref(srv->cfg);
	srv->cfg = c;
	log_reopen();
	backend_probe(srv->base, srv->cfg);
	ruleset_describe(srv->cfg->ruleset, desc, sizeof desc);
	log_info("reload", "configuration reloaded from %s; rules %s: %s%s", srv->config_path,
	         srv->cfg->rules[0] ? srv->cfg->rules : "built-in default.rules", desc,
	         srv->cfg->monitor ? " (mode = monitor)" : "");
}

/* Reading the config, the rule file and lists of a million entries takes
 * a good part of a second: a thread does it, so sessions are not held up.
 * It touches nothing shared; the loop learns of the result through a pipe. */
static void *reload_thread(void *arg)
{
	struct server *srv = arg;
	char one = 1;

	srv->reload_cfg = config_load(srv->config_path, srv->reload_err, sizeof srv->reload_err);
	while (write(srv->reload_pipe[1], &one, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

static void reload_start(struct server *srv)
{
	int e;

	srv->reload_again = 0;
	srv->reloading = 1;
	if ((e = pthread_create(&srv->reload_tid, NULL, reload_thread, srv)) != 0) {
		/* no thread: load on the loop */
		srv->reloading = 0;
		srv->reload_cfg = config_load(srv->config_path, srv->reload_err, sizeof srv->reload_err);
		reload_apply(srv, srv->reload_cfg, srv->reload_err);
	}
}

static void reload_done(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	char buf[16];

	while (read(fd, buf, sizeof buf) > 0)
		;
	if (!srv->reloading)
		return;
	pthread_join(srv->reload_tid, NULL);
	srv->reloading = 0;
	reload_apply(srv, srv->reload_cfg, srv->reload_err);
	if (srv->reload_again) /* a SIGHUP came during the load: the files may have changed since */
		reload_start(srv);
}

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;

	if (srv->reloading) {
		srv->reload_again = 1;
		return;
	}
	reload_start(srv);
}

/* The resolver and the DKIM library every session shares. */
static int start_checks(struct server *srv)
{
	struct dns_options o = {
		.servers = srv->cfg->dns_servers,
		.timeout_ms = srv->cfg->dns_timeout,
		.tries = srv->cfg->dns_tries,
		.cache_max = (size_t)srv->cfg->dns_cache_size,
	};

	srv->dns = dns_new(srv->base, &o);
	if (!srv->dns) {
		log_error("dns", "cannot start the resolver (dns_servers = %s)", srv->cfg->dns_servers);
		return -1;
	}
	srv->dkim = dkim_verifier_new(srv->dns);
	if (!srv->dkim) {
		log_error("dkim", "cannot start the DKIM library");
		return -1;
	}
	dkim_verifier_set_wait(srv->dkim, srv->base, 0);
	return 0;
}

/* Each session may hold two descriptors (client, backend), plus spill
 * files: raise the soft limit to what max_connections needs, up to the
 * hard limit, and say so when even that is short. */
static void raise_fd_limit(const struct config *c)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)c->max_connections * 2 + MOAT_FD_RESERVE;

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
static int drop_privileges(const struct config *c)
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

/* One worker: an event loop serving its own listening sockets. */
static int worker_run(struct server *srv, const int *fds)
{
	struct event *sigterm, *sigint, *sighup, *reloaded;

	srv->base = event_base_new();
	srv->per_ip = iptable_new();
	if (!srv->base || !srv->per_ip) {
		log_error("startup", "out of memory");
		return 1;
	}
	srv->id_salt = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)srv;
	if (start_checks(srv) < 0 || listeners_start(srv, fds, srv->cfg->nlisten) < 0)
		return 1;
	sigterm = evsignal_new(srv->base, SIGTERM, on_sigterm, srv);
	sigint = evsignal_new(srv->base, SIGINT, on_sigterm, srv);
	sighup = evsignal_new(srv->base, SIGHUP, on_sighup, srv);
	if (pipe2(srv->reload_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		log_error("startup", "pipe: %s", strerror(errno));
		return 1;
	}
	reloaded = event_new(srv->base, srv->reload_pipe[0], EV_READ | EV_PERSIST, reload_done, srv);
	event_add(reloaded, NULL);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	evsignal_add(sighup, NULL);
	backend_probe(srv->base, srv->cfg);
	{
		char desc[256];

		ruleset_describe(srv->cfg->ruleset, desc, sizeof desc);
		log_info("ready", "moat %s ready (pid %d, worker %d of %d); rules %s: %s%s", MOAT_VERSION,
		         (int)getpid(), srv->worker, srv->nworkers,
		         srv->cfg->rules[0] ? srv->cfg->rules : "built-in default.rules", desc,
		         srv->cfg->monitor ? " (mode = monitor: nothing is refused)" : "");
	}
	event_base_dispatch(srv->base);
	while (srv->sessions)
		session_abort(srv->sessions);
	backend_pool_free();
	backend_probe_cancel();
	dkim_verifier_free(srv->dkim);
	dns_free(srv->dns);
	log_info("stopped", "moat %sstopped", srv->nworkers > 1 ? "worker " : "");
	event_free(sigterm);
	event_free(sigint);
	event_free(sighup);
	if (srv->reloading) { /* a load in progress: wait for it, drop its result */
		pthread_join(srv->reload_tid, NULL);
		config_unref(srv->reload_cfg);
	}
	event_free(reloaded);
	close(srv->reload_pipe[0]);
	close(srv->reload_pipe[1]);
	if (srv->grace)
		event_free(srv->grace);
	listeners_close(srv);
	iptable_free(srv->per_ip);
	config_unref(srv->cfg);
	event_base_free(srv->base);
	return 0;
}

/* ---- workers = N: a supervisor process and N workers ---------------------- */

static pid_t spawn(struct server *srv, int w, int fds[][MOAT_LISTEN_MAX])
{
	sigset_t none;
	pid_t pid;

	fflush(NULL); /* nothing buffered is written twice by the child's exit */
	pid = fork();

	if (pid != 0)
		return pid;
	/* the worker: its own sockets only, signals as in a single process */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int o = 0; o < srv->nworkers; o++)
		for (int i = 0; o != w && i < srv->cfg->nlisten; i++)
			close(fds[o][i]);
	srv->worker = w;
	/* exit, not _exit: LeakSanitizer checks a worker at its exit too */
	exit(worker_run(srv, fds[w]));
}

/* Forwards SIGHUP, SIGTERM and SIGINT to the workers; restarts a worker
 * that dies, unless it keeps dying within MOAT_WORKER_RESPAWN_MIN seconds
 * of its start (MOAT_WORKER_FAST_DEATHS times in a row: a crash loop is a
 * bug to fix, so everything stops and the exit status says so); exits when
 * the workers have stopped. The supervisor has no event loop and serves
 * nothing: only signals. */
static int supervise(struct server *srv, int fds[][MOAT_LISTEN_MAX])
{
	pid_t pids[MOAT_WORKERS_MAX];
	time_t started[MOAT_WORKERS_MAX];
	int fast[MOAT_WORKERS_MAX] = {0};
	sigset_t set;
	int w, alive = 0, stopping = 0, rc = 0, sig;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	for (w = 0; w < srv->nworkers; w++) {
		pids[w] = spawn(srv, w, fds);
		started[w] = time(NULL);
		if (pids[w] < 0) {
			log_error("workers", "fork: %s", strerror(errno));
			stopping = 1;
			rc = 1;
			break;
		}
		alive++;
	}
	if (!stopping)
		log_info("workers", "%d workers started (supervisor pid %d)", srv->nworkers, (int)getpid());
	else
		for (int k = 0; k < w; k++)
			kill(pids[k], SIGTERM);
	while (alive > 0) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP || sig == SIGTERM || sig == SIGINT) {
			stopping |= sig != SIGHUP;
			for (w = 0; w < srv->nworkers; w++)
				if (pids[w] > 0)
					kill(pids[w], sig);
			continue;
		}
		for (;;) { /* SIGCHLD: reap every worker that ended */
			int status;
			pid_t pid = waitpid(-1, &status, WNOHANG);

			if (pid <= 0)
				break;
			for (w = 0; w < srv->nworkers && pids[w] != pid; w++)
				;
			if (w == srv->nworkers)
				continue;
			pids[w] = 0;
			alive--;
			if (stopping) {
				if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
					rc = 1;
				continue;
			}
			fast[w] = time(NULL) - started[w] < MOAT_WORKER_RESPAWN_MIN ? fast[w] + 1 : 0;
			log_error("workers", "worker %d (pid %d) %s %d%s", w, (int)pid,
			          WIFSIGNALED(status) ? "killed by signal" : "exited with status",
			          WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
			          fast[w] >= MOAT_WORKER_FAST_DEATHS ? "; it keeps dying at start: stopping" : "; restarting");
			if (fast[w] >= MOAT_WORKER_FAST_DEATHS) {
				rc = 1;
				stopping = 1;
				for (int k = 0; k < srv->nworkers; k++)
					if (pids[k] > 0)
						kill(pids[k], SIGTERM);
				continue;
			}
			started[w] = time(NULL);
			if ((pids[w] = spawn(srv, w, fds)) > 0)
				alive++;
			else
				pids[w] = 0;
		}
	}
	log_info("stopped", "moat stopped");
	config_unref(srv->cfg);
	return rc;
}

static int run(struct server *srv)
{
	int fds[MOAT_WORKERS_MAX][MOAT_LISTEN_MAX];
	long ncpu;

	signal(SIGPIPE, SIG_IGN);
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	srv->nworkers = srv->cfg->workers ? srv->cfg->workers
	                                  : ncpu < 1 ? 1 : ncpu > MOAT_WORKERS_MAX ? MOAT_WORKERS_MAX : (int)ncpu;
	raise_fd_limit(srv->cfg);
	if (listeners_bind(srv->cfg, srv->nworkers, fds) < 0 || drop_privileges(srv->cfg) < 0)
		return 1;
	if (srv->nworkers == 1)
		return worker_run(srv, fds[0]);
	return supervise(srv, fds);
}

int main(int argc, char **argv)
{
	static struct server srv;
	const char *path = DEFAULT_CONFIG;
	char err[1024];
	int opt, test_only = 0, rc;

	if (argc > 1 && strcmp(argv[1], "check") == 0)
		return check_main(argc - 1, argv + 1, DEFAULT_CONFIG);
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
	srv.cfg = config_load(path, err, sizeof err);
	if (!srv.cfg) {
		if (test_only) {
			fprintf(stderr, "%s\n", err);
		} else {
			log_error("config", "%s", err);
		}
		return 1;
	}
	if (test_only) {
		char desc[256];

		ruleset_describe(srv.cfg->ruleset, desc, sizeof desc);
		printf("%s: configuration OK\n%s: %s%s\n", path,
		       srv.cfg->rules[0] ? srv.cfg->rules : "built-in default.rules", desc,
		       srv.cfg->monitor ? " (mode = monitor: nothing is refused)" : "");
		config_unref(srv.cfg);
		return 0;
	}
	if (log_open(srv.cfg) < 0) {
		log_error("log", "cannot open log %s: %s", srv.cfg->log_file, strerror(errno));
		config_unref(srv.cfg);
		return 1;
	}
	rc = run(&srv);
	log_close();
	return rc;
}
