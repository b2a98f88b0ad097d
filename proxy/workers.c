/* workers.c - workers = N: a supervisor process and N workers, each an
 * event loop on its own SO_REUSEPORT sockets */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proxy/config.h"
#include "proxy/conntable.h"
#include "proxy/lib/bounds.h"
#include "proxy/lib/log.h"
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

/* Forwards SIGHUP, SIGUSR1, SIGTERM and SIGINT to the workers (and reopens
 * its own log on SIGHUP and SIGUSR1); restarts a worker
 * that dies, unless it keeps dying within MOAT_WORKER_RESPAWN_MIN seconds
 * of its start (MOAT_WORKER_FAST_DEATHS times in a row: a crash loop is a
 * bug to fix, so everything stops and the exit status says so); exits when
 * the workers have stopped. The supervisor has no event loop and serves
 * nothing: only signals. */
int workers_supervise(struct server *srv, int fds[][MOAT_LISTEN_MAX])
{
	pid_t pids[MOAT_WORKERS_MAX] = {0};
	time_t started[MOAT_WORKERS_MAX];
	int fast[MOAT_WORKERS_MAX] = {0};
	sigset_t set;
	int w, alive = 0, stopping = 0, rc = 0, sig;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	/* blocked, they wait for sigwait; ignored (main.c), they would be lost */
	signal(SIGHUP, SIG_DFL);
	signal(SIGUSR1, SIG_DFL);
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
		stop_workers(srv, pids, fds, SIGTERM);
	while (alive > 0) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP || sig == SIGUSR1 || sig == SIGTERM || sig == SIGINT) {
			if (sig == SIGHUP || sig == SIGUSR1) {
				log_reopen();
				for (w = 0; w < srv->nworkers; w++)
					if (pids[w] > 0)
						kill(pids[w], sig);
			} else {
				stopping = 1;
				stop_workers(srv, pids, fds, sig);
			}
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
			/* its connections died with it: the limits must not keep them */
			conntable_forget(srv->conns, w);
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
				stop_workers(srv, pids, fds, SIGTERM);
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

