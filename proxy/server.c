/* server.c - one worker's life: start the checks and listeners, serve,
 * reload on SIGHUP (a thread loads, the loop applies), reopen the log on
 * SIGUSR1, drain on SIGTERM */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "checks/dkim.h"
#include "checks/dmarc_org.h"
#include "checks/dns.h"
#include "checks/spf_cache.h"
#include "proxy/backend.h"
#include "proxy/cfgwatch.h"
#include "proxy/config.h"
#include "proxy/health.h"
#include "proxy/lib/metrics.h"
#include "proxy/metrics_http.h"
#include "proxy/lib/log.h"
#include "proxy/listener.h"
#include "proxy/refused.h"
#include "proxy/sdnotify.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/store.h"
#include "proxy/tls.h"
#include "proxy/version.h"
#include "proxy/workers.h"
#include "rules/rules.h"

/* This loop serves with its current config (started, or a reload over):
 * the one worker tells the service manager itself; a worker of
 * workers = N tells the supervisor, which speaks for them all. */
static void server_ready(struct server *srv, int what)
{
	if (srv->nworkers == 1)
		sd_notify_ready();
	else if (getppid() == srv->supervisor)
		worker_report(srv->supervisor, what);
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
	if (srv->nworkers == 1)
		sd_notify_stopping();
	health_draining(srv); /* /readyz: 503 from now */
	listeners_drain(srv); /* the connections queued are served too */
	log_info("shutdown", "signal %d: no new connections, %d sessions finishing", (int)sig,
	         srv->nsessions);
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

/* config_watch: watch the directories of what c reads (again after each
 * reload: the rules may name other files now). */
static void watch_arm(struct server *srv, const struct config *c)
{
	char err[512];

	if (cfgwatch_arm(srv->watch, c, srv->config_path, err, sizeof err) < 0 || err[0])
		log_warn("config_watch", "cannot watch %s: a change there needs SIGHUP", err);
}

/* The loaded config is in (or the load failed): put it in service. Runs on
 * the loop. */
static void reload_apply(struct server *srv, struct config *c, const char *err)
{
	char desc[256];

	metrics_reload(c != NULL);
	if (!c) {
		log_error("reload", "%s; keeping the running configuration", err);
		return;
	}
	if (srv->reload_warn[0])
		log_warn("tls", "%s", srv->reload_warn);
	if (c->nlisten != srv->cfg->nlisten || memcmp(c->listen, srv->cfg->listen, sizeof c->listen) != 0 ||
	    memcmp(c->listen_kind, srv->cfg->listen_kind, sizeof c->listen_kind) != 0)
		log_warn("reload", "listen addresses changed: they take effect at restart");
	if (c->metrics_listen_len != srv->cfg->metrics_listen_len ||
	    memcmp(&c->metrics_listen, &srv->cfg->metrics_listen, c->metrics_listen_len) != 0)
		log_warn("reload", "metrics_listen changed: it takes effect at restart");
	if (c->config_watch != srv->cfg->config_watch)
		log_warn("reload", "config_watch changed: it takes effect at restart");
	if (strcmp(c->dns_servers, srv->cfg->dns_servers) != 0 || c->dns_timeout != srv->cfg->dns_timeout ||
	    c->dns_tries != srv->cfg->dns_tries || c->dns_cache_size != srv->cfg->dns_cache_size)
		log_warn("reload", "DNS settings changed: they take effect at restart");
	if (strcmp(c->redis, srv->cfg->redis) != 0 || strcmp(c->redis_password, srv->cfg->redis_password) != 0 ||
	    c->redis_db != srv->cfg->redis_db || c->redis_timeout != srv->cfg->redis_timeout)
		log_warn("reload", "redis settings changed: they take effect at restart");
	/* Sessions keep the config (and rules) they started with; new ones get this one. */
	config_unref(srv->cfg);
	srv->cfg = c;
	if (srv->watch)
		watch_arm(srv, c);
	backend_probe(srv->backends, srv->cfg);
	ruleset_describe(srv->cfg->ruleset, desc, sizeof desc);
	log_info("reload", "configuration reloaded from %s; rules %s: %s%s", srv->config_path,
	         srv->cfg->rules[0] ? srv->cfg->rules : "built-in default.rules", desc,
	         srv->cfg->monitor ? " (mode = monitor)" : "");
}

/* The config and everything it names: rules, lists, TLS pairs. */
static void reload_load(struct server *srv)
{
	srv->reload_cfg = config_load(srv->config_path, srv->reload_err, sizeof srv->reload_err);
	if (srv->reload_cfg && tls_config_load(srv->reload_cfg, srv->reload_err, sizeof srv->reload_err,
	                                       srv->reload_warn, sizeof srv->reload_warn) < 0) {
		config_unref(srv->reload_cfg);
		srv->reload_cfg = NULL;
	}
}

/* Reading the config, the rule file and lists of a million entries takes
 * a good part of a second: a thread does it, so sessions are not held up.
 * It touches nothing shared; the loop learns of the result through a pipe. */
static void *reload_thread(void *arg)
{
	struct server *srv = arg;
	char one = 1;

	reload_load(srv);
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
		reload_load(srv);
		reload_apply(srv, srv->reload_cfg, srv->reload_err);
		server_ready(srv, WORKER_RELOADED);
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
	else
		server_ready(srv, WORKER_RELOADED);
}

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;

	log_reopen(); /* whatever becomes of the reload */
	if (srv->nworkers == 1)
		sd_notify_reloading();
	if (srv->reloading) {
		srv->reload_again = 1;
		return;
	}
	reload_start(srv);
}

/* config_watch: the change has settled; the same reload as SIGHUP. */
static void watch_due(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	log_info("config_watch", "%s changed: reloading", cfgwatch_take(srv->watch));
	watch_arm(srv, srv->cfg); /* a directory gone (an old ..data target) is watched anew */
	on_sighup(SIGHUP, 0, srv);
}

static void watch_readable(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	long long now = cfgwatch_now_ms(), ms;

	if (cfgwatch_read(srv->watch, now) && (ms = cfgwatch_timeout(srv->watch, now)) >= 0) {
		struct timeval tv = {ms / 1000, ms % 1000 * 1000};

		evtimer_add(srv->watch_timer, &tv);
	}
}

/* workers = 1: the loop watches (reading inotify's events never blocks;
 * the reload itself is the thread's) */
static int watch_start(struct server *srv)
{
	srv->watch = cfgwatch_new();
	if (!srv->watch) {
		log_error("config_watch", "inotify: %s", strerror(errno));
		return -1;
	}
	srv->watch_ev = event_new(srv->base, cfgwatch_fd(srv->watch), EV_READ | EV_PERSIST, watch_readable, srv);
	srv->watch_timer = evtimer_new(srv->base, watch_due, srv);
	if (!srv->watch_ev || !srv->watch_timer || event_add(srv->watch_ev, NULL) < 0) {
		log_error("config_watch", "out of memory");
		return -1;
	}
	watch_arm(srv, srv->cfg);
	log_info("config_watch", "watching the files a reload reads: a change reloads");
	return 0;
}

static void watch_stop(struct server *srv)
{
	if (srv->watch_ev)
		event_free(srv->watch_ev);
	if (srv->watch_timer)
		event_free(srv->watch_timer);
	cfgwatch_free(srv->watch);
	srv->watch = NULL;
}

/* SIGUSR1, after the log file was rotated (as in Postfix and nginx):
 * only the log, nothing reloaded. */
static void on_sigusr1(evutil_socket_t sig, short what, void *arg)
{
	log_reopen();
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
	if (!dkim_keycache_active())
		log_warn("dkim", "the DKIM key cache is not in use (OpenSSL's d2i_PUBKEY_bio is not ours in this "
		         "binary: static or -Bsymbolic linking?); DKIM works, each key is decoded every time");
	srv->spf_cache = spf_cache_new(); /* without one, SPF is evaluated every time */
	/* read once: a reload keeps the list the worker started with */
	if (srv->cfg->check_dmarc && !dmarc_psl_loaded() && dmarc_psl_load(srv->cfg->public_suffix_list) < 0) {
		log_error("dmarc", "cannot read public_suffix_list %s: %s", srv->cfg->public_suffix_list,
		          strerror(errno));
		return -1;
	}
	return 0;
}

/* The worker's store (store.h): its connection to Redis, made at once
 * without blocking, or the in-memory table the workers share. */
static int start_store(struct server *srv)
{
	struct store_config sc = {0};

	config_store(srv->cfg, &sc);
	srv->store = store_new(srv->base, srv->store_shm, &sc);
	if (!srv->store) {
		log_error("startup", "cannot start the store: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* One worker: an event loop serving its own listening sockets. */
int server_run(struct server *srv, const int *fds)
{
	struct event *sigterm, *sigint, *sighup, *sigusr1, *reloaded;

	log_set_worker(srv->worker);
	srv->base = event_base_new();
	if (!srv->base) {
		log_error("startup", "out of memory");
		return 1;
	}
	if (start_checks(srv) < 0)
		return 1;
	/* the backends' names are looked up through the checks' resolver */
	if (!(srv->backends = backend_pool_new(srv->base, srv->dns))) {
		log_error("startup", "out of memory");
		return 1;
	}
	if (start_store(srv) < 0)
		return 1;
	if (listeners_start(srv, fds, srv->cfg->nlisten) < 0 || metrics_http_start(srv) < 0 || health_start(srv) < 0)
		return 1;
	sigterm = evsignal_new(srv->base, SIGTERM, on_sigterm, srv);
	sigint = evsignal_new(srv->base, SIGINT, on_sigterm, srv);
	sighup = evsignal_new(srv->base, SIGHUP, on_sighup, srv);
	sigusr1 = evsignal_new(srv->base, SIGUSR1, on_sigusr1, srv);
	if (pipe2(srv->reload_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		log_error("startup", "pipe: %s", strerror(errno));
		return 1;
	}
	reloaded = event_new(srv->base, srv->reload_pipe[0], EV_READ | EV_PERSIST, reload_done, srv);
	event_add(reloaded, NULL);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	evsignal_add(sighup, NULL);
	evsignal_add(sigusr1, NULL);
	{
		sigset_t none; /* a worker of workers = N starts with them blocked (workers.c) */

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
	}
	if (srv->nworkers == 1 && srv->cfg->config_watch && watch_start(srv) < 0)
		return 1;
	if (srv->reload_at_start) {
		/* restarted after a SIGHUP: the supervisor holds the start-up config,
		 * so this worker loads the files as they are now, as its siblings did */
		reload_load(srv);
		reload_apply(srv, srv->reload_cfg, srv->reload_err);
	} else {
		backend_probe(srv->backends, srv->cfg);
	}
	{
		char desc[256];

		ruleset_describe(srv->cfg->ruleset, desc, sizeof desc);
		log_info("ready", "moat %s ready (pid %d, worker %d of %d); rules %s: %s%s", MOAT_VERSION,
		         (int)getpid(), srv->worker, srv->nworkers,
		         srv->cfg->rules[0] ? srv->cfg->rules : "built-in default.rules", desc,
		         srv->cfg->monitor ? " (mode = monitor: nothing is refused)" : "");
	}
	server_ready(srv, WORKER_STARTED);
	event_base_dispatch(srv->base);
	{
		/* stopping already: a second SIGTERM during the clean-up must not
		 * kill the process by the default action once the events are freed */
		sigset_t stop;

		sigemptyset(&stop);
		sigaddset(&stop, SIGTERM);
		sigaddset(&stop, SIGINT);
		sigaddset(&stop, SIGHUP);
		sigaddset(&stop, SIGUSR1);
		sigprocmask(SIG_BLOCK, &stop, NULL);
	}
	metrics_http_stop(srv);
	health_stop(srv);
	while (srv->sessions)
		session_abort(srv->sessions);
	refused_close_all(srv);
	store_free(srv->store); /* after the sessions: each has cancelled its calls */
	backend_pool_free(srv->backends);
	dkim_verifier_free(srv->dkim);
	spf_cache_free(srv->spf_cache);
	dns_free(srv->dns);
	log_info("stopped", "moat %sstopped", srv->nworkers > 1 ? "worker " : "");
	event_free(sigterm);
	event_free(sigint);
	event_free(sighup);
	event_free(sigusr1);
	watch_stop(srv);
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
	config_unref(srv->cfg);
	event_base_free(srv->base);
	return 0;
}

