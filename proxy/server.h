/* server.h - the process-wide state one event loop serves */
#ifndef MOAT_SERVER_H
#define MOAT_SERVER_H

#include <pthread.h>
#include <sys/types.h>
#include <event2/event.h>
#include "proxy/config.h"

struct session;
struct conntable;
struct authfail;
struct store;
struct store_shm;
struct evconnlistener;
struct dns;
struct dkim_verifier;
struct spf_cache;
struct backend_pool;
struct refused;
struct http_conn;
struct backend;

struct server {
	struct event_base *base;
	struct config *cfg;           /* current config; sessions hold their own ref */
	const char *config_path;
	struct evconnlistener *listeners[16];
	enum listener_kind listener_kind[16]; /* each one's, from the config it started with */
	int nlisteners;
	int nsessions;                /* open client connections */
	struct conntable *conns;      /* open connections, in all and per address: shared by the workers */
	struct authfail *authfail;    /* failed AUTH per address: shared by the workers; NULL: not counted */
	struct store_shm *store_shm;  /* the in-memory store (store.h): shared by the workers */
	struct store *store;          /* this worker's store: greylisting, rate limits (Redis or store_shm) */
	struct session *sessions;     /* all open sessions */
	struct refused *refused;      /* refused connections lingering (refused.c), not sessions */
	int nrefused;
	int refused_full_logged;      /* the cap was reached and said so */
	int stopping;                 /* SIGTERM received */
	struct event *grace;          /* shutdown grace timer */
	struct event *accept_pause;   /* out of descriptors: re-enables the listeners */
	uint64_t next_session;        /* session id counter, from 0 in each worker process */
	uint64_t id_salt;             /* random (getrandom), drawn once before the workers fork */
	uint64_t incarnation;         /* this worker process among all those forked in this run */
	struct dns *dns;              /* shared resolver and cache of every check */
	struct dkim_verifier *dkim;
	struct spf_cache *spf_cache;  /* SPF results reused for seconds */
	struct backend_pool *backends; /* idle connections, the probe, the backend's caps */
	int nworkers;                 /* worker processes */
	int worker;                   /* this one's number, 0.. */
	pid_t supervisor;             /* workers = N: the supervisor's pid (workers.c) */
	/* SIGHUP: the new config is loaded by a thread (see main.c) */
	int reloading, reload_again;
	int reload_at_start;            /* workers = N: a SIGHUP came, a restarted worker loads the files */
	pthread_t reload_tid;
	struct config *reload_cfg;      /* its result, NULL on error (reload_err) */
	char reload_err[1024];
	char reload_warn[1024];         /* a warning of the load (a world-readable TLS key) */
	int reload_pipe[2];             /* the thread's "done" to the loop */
	/* metrics_listen (metrics_http.c, health.c) */
	int metrics_fd;                 /* the listening socket all workers share; -1: off */
	struct evconnlistener *metrics; /* this worker's listener on it */
	struct http_conn *http;         /* HTTP connections open */
	int nhttp;
	struct event *health_tick;      /* the heartbeat, each second */
	struct backend *health_probe;   /* the readiness probe in flight */
	/* config_watch: in the one process of workers = 1 (on its loop), else
	 * in the supervisor (workers.c) */
	struct cfgwatch *watch;
	struct event *watch_ev, *watch_timer;
	int watch_sigfd;                /* the supervisor's signals, beside the watch */
};

/* sessions.c: a session begins (linked first, so that it can always be
 * unlinked); a session ended: unaccount it, and finish a shutdown when the
 * last one goes. */
void server_session_add(struct server *srv, struct session *s);
void server_session_gone(struct server *srv, struct session *s);

/* server.c: serve the listening sockets fds (config.nlisten of them) until
 * SIGTERM and the drain are over; the exit status for the process. */
int server_run(struct server *srv, const int *fds);

#endif
