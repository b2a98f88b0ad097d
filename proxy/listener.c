/* listener.c - listening sockets (SO_REUSEPORT, so that a new moat can
 * start beside the old one); accept connections; refuse those over
 * max_connections; take every queued connection before closing */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>

#include <event2/listener.h>

#include "proxy/conntable.h"
#include "proxy/decision.h"
#include "proxy/lib/bounds.h"
#include "proxy/listener.h"
#include "proxy/lib/log.h"
#include "proxy/lib/metrics.h"
#include "proxy/lib/replies.h"
#include "proxy/refused.h"
#include "proxy/session.h"

/* Over the limit: a 421 without a session; the connection lingers for the
 * commands the client may already have sent (refused.c). */
static void refuse(struct server *srv, int fd, const struct sockaddr *sa, enum listener_kind kind)
{
	char buf[512], ip[64];
	struct decision d = {.stage = STAGE_CONNECT, .reason = "too many connections", .client_ip = ip,
	                     .listener = rules_listener_name(kind)};
	int n = reply_format(buf, sizeof buf, R_TOO_MANY_CONN, srv->cfg->hostname, NULL);

	refused_linger_fd(srv, fd, buf, (size_t)n, srv->cfg->command_timeout);
	sockaddr_ntop(sa, ip, sizeof ip);
	decision_set_reply(&d, R_TOO_MANY_CONN);
	decision_log(&d, NULL, NULL);
}

/* Over the limit on smtps_listen: closed at once. A reply would need the TLS
 * handshake first, the very cost the limit is there to spare. */
static void refuse_tls(struct server *srv, int fd, const struct sockaddr *sa)
{
	char ip[64];
	struct decision d = {.stage = STAGE_CONNECT, .reason = "too many connections (closed before the TLS handshake)",
	                     .client_ip = ip, .listener = rules_listener_name(LISTENER_SMTPS)};

	close(fd);
	sockaddr_ntop(sa, ip, sizeof ip);
	decision_set_reply(&d, R_TOO_MANY_CONN);
	decision_log(&d, NULL, NULL);
}

static void admit(struct server *srv, int i, int fd, const struct sockaddr *sa, socklen_t salen)
{
	metrics_accepted((int)srv->listener_kind[i]);
	/* counted across the workers; the session gives it back */
	if (!conntable_take(srv->conns, srv->worker, srv->cfg->max_connections)) {
		metrics_refused(MR_MAX_CONNECTIONS);
		if (srv->listener_kind[i] == LISTENER_SMTPS)
			refuse_tls(srv, fd, sa);
		else
			refuse(srv, fd, sa, srv->listener_kind[i]);
		return;
	}
	session_start(srv, fd, sa, salen, srv->listener_kind[i]);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
	struct server *srv = arg;
	int i = 0;

	while (i < srv->nlisteners - 1 && srv->listeners[i] != l)
		i++;
	admit(srv, i, fd, sa, (socklen_t)salen);
}

static void accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	int i;

	if (srv->stopping)
		return;
	for (i = 0; i < srv->nlisteners; i++)
		evconnlistener_enable(srv->listeners[i]);
}

/* Out of descriptors (EMFILE, ENFILE) or memory: the pending connection
 * stays in the backlog and the listener would fire again at once, so
 * accepting pauses briefly (logged once per pause) while sessions end. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct server *srv = arg;
	struct timeval tv = {0, MOAT_ACCEPT_PAUSE_MS * 1000};
	int e = errno, i;

	if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) {
		log_error("accept", "accept failed: %s", strerror(e));
		return;
	}
	if (!srv->accept_pause)
		srv->accept_pause = evtimer_new(srv->base, accept_resume, srv);
	if (!srv->accept_pause || evtimer_pending(srv->accept_pause, NULL))
		return;
	log_error("accept", "accept failed: %s; pausing %d ms (%d sessions open)", strerror(e),
	          MOAT_ACCEPT_PAUSE_MS, srv->nsessions);
	for (i = 0; i < srv->nlisteners; i++)
		evconnlistener_disable(srv->listeners[i]);
	evtimer_add(srv->accept_pause, &tv);
}

/* A socket bound to sa, not listening yet; IPv6 ones are IPv6-only so that
 * "0.0.0.0:25, [::]:25" can both be bound. Always SO_REUSEPORT: each worker
 * has its own socket on the address (the kernel spreads connections over
 * them), and a new moat can start on the port while the old one drains (a
 * restart without downtime, moat(8)). Returns the fd or -1. */
int bind_socket(const struct sockaddr *sa, socklen_t len, int reuseport)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
	    (sa->sa_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) ||
	    bind(fd, sa, len) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void log_listening(int fd, const struct config *c, enum listener_kind kind)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	struct jline j;
	char ip[64], addr[96];

	/* Log the bound address: with port 0 the kernel chose it. */
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return;
	sockaddr_ntop((struct sockaddr *)&ss, ip, sizeof ip);
	snprintf(addr, sizeof addr, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip,
	         sockaddr_port((struct sockaddr *)&ss));
	jl_begin(&j, "info", "listening");
	jl_str(&j, "addr", addr);
	jl_str(&j, "listener", rules_listener_name(kind));
	jl_bool(&j, "proxy_protocol", c->proxy_protocol);
	jl_emit(&j);
}

/* Something is bound to the address already (a socket without SO_REUSEPORT
 * cannot join it): another moat, being replaced or started by mistake. */
static void warn_if_shared(const struct sockaddr *sa, socklen_t len)
{
	int fd;

	if (sockaddr_port(sa) == 0)
		return;
	fd = bind_socket(sa, len, 0);
	if (fd >= 0) {
		close(fd);
		return;
	}
	if (errno == EADDRINUSE) {
		char ip[64];

		sockaddr_ntop(sa, ip, sizeof ip);
		log_warn("listen", "%s port %d is in use by another process: sharing it (SO_REUSEPORT), the kernel "
		         "spreads connections over both; right while a new moat replaces an old one, a mistake "
		         "otherwise", ip, sockaddr_port(sa));
	}
}

int listeners_bind(const struct config *c, int nworkers, int fds[][MOAT_LISTEN_MAX])
{
	int i, w;

	for (i = 0; i < c->nlisten; i++) {
		struct sockaddr_storage sa;
		socklen_t len = c->listen_len[i];
		char ip[64];

		memcpy(&sa, &c->listen[i], len);
		warn_if_shared((struct sockaddr *)&sa, len);
		for (w = 0; w < nworkers; w++) {
			fds[w][i] = bind_socket((struct sockaddr *)&sa, len, 1);
			if (fds[w][i] < 0) {
				sockaddr_ntop((const struct sockaddr *)&c->listen[i], ip, sizeof ip);
				log_error("listen", "cannot listen on %s port %d: %s", ip,
				          sockaddr_port((const struct sockaddr *)&c->listen[i]), strerror(errno));
				return -1;
			}
			/* Port 0: the other workers' sockets take the port the kernel chose. */
			if (w == 0 && getsockname(fds[0][i], (struct sockaddr *)&sa, &len) != 0)
				return -1;
		}
		log_listening(fds[0][i], c, c->listen_kind[i]);
	}
	return 0;
}

int listeners_start(struct server *srv, const int *fds, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		struct evconnlistener *l;

		/* Listening only now that the worker serves: a new moat joins the
		 * port's connections when it is ready, and one that fails to start
		 * before has taken none (they would be reset at its exit). Again
		 * for a restarted worker: harmless. */
		if (listen(fds[i], MOAT_LISTEN_BACKLOG) < 0) {
			log_error("listen", "listen: %s", strerror(errno));
			return -1;
		}
		l = evconnlistener_new(srv->base, accept_cb, srv, LEV_OPT_CLOSE_ON_FREE, -1, fds[i]);
		if (!l) {
			log_error("listen", "cannot accept on a listening socket: %s", strerror(errno));
			return -1;
		}
		evconnlistener_set_error_cb(l, accept_error_cb);
		srv->listener_kind[srv->nlisteners] = srv->cfg->listen_kind[i];
		srv->listeners[srv->nlisteners++] = l;
	}
	return 0;
}

/* SIGTERM: closing a listening socket resets the connections queued on it,
 * so take them all first (they are served like any other), then close.
 * What completes its handshake in between is reset, unless the kernel
 * moves it to another socket of the port (net.ipv4.tcp_migrate_req = 1,
 * moat(8)). */
void listeners_drain(struct server *srv)
{
	for (int i = 0; i < srv->nlisteners; i++) {
		int fd = evconnlistener_get_fd(srv->listeners[i]);

		for (;;) {
			struct sockaddr_storage ss;
			socklen_t len = sizeof ss;
			int c = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

			if (c < 0 && errno == EINTR)
				continue;
			if (c < 0)
				break;
			admit(srv, i, c, (struct sockaddr *)&ss, len);
		}
	}
	listeners_close(srv);
}

void listeners_close(struct server *srv)
{
	int i;

	for (i = 0; i < srv->nlisteners; i++)
		evconnlistener_free(srv->listeners[i]);
	srv->nlisteners = 0;
	if (srv->accept_pause) {
		event_free(srv->accept_pause);
		srv->accept_pause = NULL;
	}
}
