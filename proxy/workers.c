/* workers.c - workers = N: a supervisor process and N workers, each an
 * event loop on its own SO_REUSEPORT sockets */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proxy/cfgwatch.h"
#include "proxy/config.h"
#include "proxy/conntable.h"
#include "proxy/lib/bounds.h"
#include "proxy/lib/log.h"
#include "proxy/sdnotify.h"
#include "proxy/lib/metrics.h"
#include "proxy/server.h"
#include "proxy/workers.h"

static pid_t spawn(struct server *srv, int w, int fds[][MOAT_LISTEN_MAX])
{
	static uint64_t forked; /* worker processes started in this run */
	pid_t pid;

	fflush(NULL); /* nothing buffered is written twice by the child's exit */
	pid = fork();

	if (pid != 0) {
		forked += pid > 0;
		return pid;
	}
	/* its session ids in a range no other worker of this run uses, a
	 * restarted worker w included */
	srv->incarnation = forked;
	cfgwatch_free(srv->watch); /* the supervisor's (config_watch) */
	srv->watch = NULL;
	if (srv->watch_sigfd >= 0)
		close(srv->watch_sigfd);
	/* the worker: its own sockets only. Signals stay blocked (as the
	 * supervisor has them) until its loop handles them: a SIGTERM in
	 * between would otherwise kill it by the default action, and moat
	 * would exit 1 on a plain stop (server_run unblocks them). */
	for (int o = 0; o < srv->nworkers; o++)
		for (int i = 0; o != w && i < srv->cfg->nlisten; i++)
			close(fds[o][i]);
	srv->worker = w;
	/* exit, not _exit: LeakSanitizer checks a worker at its exit too */
	exit(server_run(srv, fds[w]));
}

/* Stopping (SIGTERM, SIGINT, a crash loop). The supervisor's copies of the
 * listening sockets are closed first: a worker's close after its drain
 * then really closes its socket, and a new moat on the port gets every new
 * connection (kept open, they would queue connections nobody accepts,
 * reset when the supervisor exits). */
static void stop_workers(const struct server *srv, const pid_t *pids, int fds[][MOAT_LISTEN_MAX], int sig)
{
	for (int w = 0; w < srv->nworkers; w++)
		for (int i = 0; i < srv->cfg->nlisten; i++)
			if (fds[w][i] >= 0) {
				close(fds[w][i]);
				fds[w][i] = -1;
			}
	for (int w = 0; w < srv->nworkers; w++)
		if (pids[w] > 0)
			kill(pids[w], sig);
}

/* The supervisor's state. */
struct sup {
	struct server *srv;
	int (*fds)[MOAT_LISTEN_MAX];
	pid_t pids[MOAT_WORKERS_MAX];      /* 0: not running */
	time_t started[MOAT_WORKERS_MAX];
	int fast[MOAT_WORKERS_MAX];        /* fast deaths in a row */
	unsigned char up[MOAT_WORKERS_MAX];      /* its loop serves (WORKER_STARTED came) */
	unsigned char pending[MOAT_WORKERS_MAX]; /* a reload it has not reported yet */
	int alive, stopping, rc;
	int told_ready;                    /* READY=1 sent for the start */
	int reloading;                     /* RELOADING=1 sent, READY=1 not yet */
};

void worker_report(pid_t supervisor, int what)
{
	union sigval v = {.sival_int = what};

	sigqueue(supervisor, SIGRTMIN, v);
}

static void stop_all(struct sup *s, int sig)
{
	if (!s->stopping)
		sd_notify_stopping();
	s->stopping = 1;
	stop_workers(s->srv, s->pids, s->fds, sig);
}

/* READY=1 once every worker serves, and after a reload once every worker
 * still running has reported it. */
static void check_ready(struct sup *s)
{
	int w, up = 0, pending = 0;

	if (s->stopping)
		return;
	for (w = 0; w < s->srv->nworkers; w++) {
		up += s->pids[w] > 0 && s->up[w];
		pending += s->pids[w] > 0 && s->pending[w];
	}
	if ((s->told_ready && !s->reloading) || pending > 0 || (!s->told_ready && up < s->srv->nworkers))
		return;
	s->told_ready = 1;
	s->reloading = 0;
	sd_notify_ready();
}

/* A worker's report (worker_report), told by the pid that sent it. */
static void on_report(struct sup *s, const siginfo_t *si)
{
	int w;

	for (w = 0; w < s->srv->nworkers && (s->pids[w] <= 0 || s->pids[w] != si->si_pid); w++)
		;
	if (w == s->srv->nworkers)
		return;
	if (si->si_value.sival_int == WORKER_STARTED)
		s->up[w] = 1;
	else
		s->pending[w] = 0;
	check_ready(s);
}

static void on_signal(struct sup *s, int sig)
{
	int w;

	if (sig == SIGTERM || sig == SIGINT) {
		stop_all(s, sig);
		return;
	}
	log_reopen();
	if (sig == SIGHUP && !s->stopping) {
		s->srv->reload_at_start = 1; /* a worker forked from now on (restart) */
		s->reloading = 1;
		sd_notify_reloading();
	}
	for (w = 0; w < s->srv->nworkers; w++)
		if (s->pids[w] > 0) {
			s->pending[w] |= sig == SIGHUP;
			kill(s->pids[w], sig);
		}
}

/* SIGCHLD: reap every worker that ended; restart it unless stopping or in
 * a crash loop. */
static void reap(struct sup *s)
{
	struct server *srv = s->srv;
	int status, w;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (w = 0; w < srv->nworkers && s->pids[w] != pid; w++)
			;
		if (w == srv->nworkers)
			continue;
		s->pids[w] = 0;
		s->up[w] = s->pending[w] = 0;
		s->alive--;
		/* its connections died with it: the limits must not keep them */
		conntable_forget(srv->conns, w);
		metrics_worker_gone(w);
		if (s->stopping) {
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				s->rc = 1;
			continue;
		}
		s->fast[w] = time(NULL) - s->started[w] < MOAT_WORKER_RESPAWN_MIN ? s->fast[w] + 1 : 0;
		log_error("workers", "worker %d (pid %d) %s %d%s", w, (int)pid,
		          WIFSIGNALED(status) ? "killed by signal" : "exited with status",
		          WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
		          s->fast[w] >= MOAT_WORKER_FAST_DEATHS ? "; it keeps dying at start: stopping" : "; restarting");
		if (s->fast[w] >= MOAT_WORKER_FAST_DEATHS) {
			s->rc = 1;
			stop_all(s, SIGTERM);
			continue;
		}
		s->started[w] = time(NULL);
		metrics_worker_restart();
		if ((s->pids[w] = spawn(srv, w, s->fds)) > 0)
			s->alive++;
		else
			s->pids[w] = 0;
	}
	check_ready(s); /* a reload the dead worker owed is not waited for */
}

/* config_watch: watch what the configuration at config_path reads (it is
 * loaded here only to learn its files; the workers load it for use), or,
 * when it does not load, what c reads. */
static void watch_arm(struct server *srv, const struct config *c)
{
	char err[1024];
	struct config *now = config_load(srv->config_path, err, sizeof err);

	if (cfgwatch_arm(srv->watch, now ? now : c, srv->config_path, err, sizeof err) < 0 || err[0])
		log_warn("config_watch", "cannot watch %s: a change there needs SIGHUP", err);
	config_unref(now);
}

static void watch_start(struct server *srv, const sigset_t *set)
{
	srv->watch = cfgwatch_new();
	srv->watch_sigfd = srv->watch ? signalfd(-1, set, SFD_CLOEXEC) : -1;
	if (srv->watch_sigfd < 0) {
		log_error("config_watch", "not watching: %s", strerror(errno));
		cfgwatch_free(srv->watch);
		srv->watch = NULL;
		return;
	}
	watch_arm(srv, srv->cfg);
	log_info("config_watch", "watching the files a reload reads: a change reloads");
}

/* The next signal of set, as sigwaitinfo (the sender's pid and value in
 * si). With config_watch, a settled change to the files a reload reads is
 * a SIGHUP: the same reload, the same log reopen. */
static int next_signal(struct server *srv, const sigset_t *set, siginfo_t *si)
{
	if (!srv->watch)
		return sigwaitinfo(set, si);
	for (;;) {
		struct pollfd p[2] = {{srv->watch_sigfd, POLLIN, 0}, {cfgwatch_fd(srv->watch), POLLIN, 0}};
		long long now = cfgwatch_now_ms(), ms = cfgwatch_timeout(srv->watch, now);
		struct signalfd_siginfo fi;

		if (ms != 0 && poll(p, 2, ms < 0 ? -1 : (int)ms) < 0 && errno != EINTR)
			return -1;
		if ((p[0].revents & POLLIN) && read(srv->watch_sigfd, &fi, sizeof fi) == (ssize_t)sizeof fi) {
			memset(si, 0, sizeof *si);
			si->si_signo = (int)fi.ssi_signo;
			si->si_pid = (pid_t)fi.ssi_pid;
			si->si_value.sival_int = fi.ssi_int;
			return si->si_signo;
		}
		now = cfgwatch_now_ms();
		if (p[1].revents & POLLIN)
			cfgwatch_read(srv->watch, now);
		if (cfgwatch_timeout(srv->watch, now) == 0) {
			log_info("config_watch", "%s changed: reloading", cfgwatch_take(srv->watch));
			watch_arm(srv, srv->cfg); /* before the workers read: a later change is seen */
			return SIGHUP;
		}
	}
}

/* Forwards SIGHUP, SIGUSR1, SIGTERM and SIGINT to the workers (and reopens
 * its own log on SIGHUP and SIGUSR1); restarts a worker
 * that dies, unless it keeps dying within MOAT_WORKER_RESPAWN_MIN seconds
 * of its start (MOAT_WORKER_FAST_DEATHS times in a row: a crash loop is a
 * bug to fix, so everything stops and the exit status says so); speaks to
 * the service manager for the workers (sdnotify.h); exits when the workers
 * have stopped. The supervisor has no event loop and serves nothing: only
 * signals. */
int workers_supervise(struct server *srv, int fds[][MOAT_LISTEN_MAX])
{
	static struct sup s;
	siginfo_t si;
	sigset_t set;
	int w, sig;

	s.srv = srv;
	s.fds = fds;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGRTMIN);
	sigprocmask(SIG_BLOCK, &set, NULL);
	/* blocked, they wait for sigwaitinfo; ignored (main.c), they would be lost */
	signal(SIGHUP, SIG_DFL);
	signal(SIGUSR1, SIG_DFL);
	srv->supervisor = getpid();
	srv->watch_sigfd = -1;
	if (srv->cfg->config_watch)
		watch_start(srv, &set);
	for (w = 0; w < srv->nworkers; w++) {
		s.pids[w] = spawn(srv, w, fds);
		s.started[w] = time(NULL);
		if (s.pids[w] < 0) {
			log_error("workers", "fork: %s", strerror(errno));
			s.pids[w] = 0;
			s.rc = 1;
			stop_all(&s, SIGTERM);
			break;
		}
		s.alive++;
	}
	if (!s.stopping)
		log_info("workers", "%d workers started (supervisor pid %d)", srv->nworkers, (int)getpid());
	while (s.alive > 0) {
		if ((sig = next_signal(srv, &set, &si)) < 0)
			continue;
		if (sig == SIGRTMIN)
			on_report(&s, &si);
		else if (sig == SIGCHLD)
			reap(&s);
		else
			on_signal(&s, sig);
	}
	log_info("stopped", "moat stopped");
	cfgwatch_free(srv->watch);
	if (srv->watch_sigfd >= 0)
		close(srv->watch_sigfd);
	config_unref(srv->cfg);
	return s.rc;
}
