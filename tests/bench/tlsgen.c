/* tlsgen.c - the benchmark's SMTP load generator, with or without TLS.
 *
 *   tlsgen [-d] [-s SESSIONS] [-m MESSAGES] [-S | -Z] [-R] [-P] [-c SUITES]
 *          [-w SECONDS] -F FILE -f FROM -t RCPT [-M HELO] HOST:PORT
 *
 * What Postfix's smtp-source does for the bench, plus TLS: SESSIONS
 * connections at a time send MESSAGES messages in all; with -d each session
 * sends messages until none are left, without -d every message has its own
 * session (connect, banner, EHLO, MAIL, RCPT, DATA, QUIT). FILE is sent with
 * CRLF line ends and dot-stuffed. MAIL, RCPT and DATA go in one write when
 * the server offers PIPELINING (-P: never).
 *
 *   -S   STARTTLS after the first EHLO, then EHLO again (RFC 3207)
 *   -Z   TLS from the first byte (implicit TLS, RFC 8314)
 *   -R   resume TLS sessions: each of the SESSIONS slots offers the last
 *        ticket its previous connection got (returning clients); without -R
 *        every connection makes a full handshake
 *   -c   TLS 1.3 cipher suites (default TLS_AES_128_GCM_SHA256); TLS 1.3 only
 *   -w   give up when nothing at all happens for SECONDS (default 30)
 *
 * One process, one epoll loop (edge-triggered), non-blocking sockets and
 * OpenSSL; no sleeps. Prints one line of counts on stdout:
 *   messages=N accepted=N failed=N connections=N handshakes=N resumed=N seconds=S msgs_per_s=R
 * and exits 0 only when every message got its 250; any unexpected reply,
 * refused connection or failed handshake is reported on stderr (the first
 * few), costs that session, stops new messages, and makes the exit status 1.
 * Certificates are not verified: the bench measures cost, not trust. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_SESSIONS 4096            /* concurrent connections */
#define MAX_MESSAGE (64u << 20)      /* bytes of FILE */
#define RX_MAX 8192                  /* a whole reply must fit */
#define CMD_MAX 2048                 /* the commands of one write */
#define ERRORS_SHOWN 10
#define EVENTS 256

enum cmd { C_BANNER, C_EHLO, C_STARTTLS, C_MAIL, C_RCPT, C_DATA, C_DOT, C_QUIT };
static const char *const cmd_name[] = {"banner", "EHLO", "STARTTLS", "MAIL", "RCPT", "DATA",
				       "end of data", "QUIT"};
static const int cmd_want[] = {220, 250, 220, 250, 250, 354, 250, 221};
enum tls_mode { TLS_NONE, TLS_STARTTLS, TLS_IMPLICIT };

struct slot {                        /* one of SESSIONS: runs its connections in turn */
	int id;
	SSL_SESSION *ticket;         /* -R: the last one this slot was given */
};

struct sess {
	struct slot *slot;
	int fd;
	SSL *ssl;                    /* NULL while plain */
	int connecting, handshaking, tls_up;
	int pipelining, starttls;    /* offered in the last EHLO reply */
	int has_msg;                 /* a message taken and not yet accepted */
	int dead;
	enum cmd expect[4];          /* commands awaiting their reply, in order */
	int nexpect;
	const char *tx;              /* not yet written: into cmd or the message */
	size_t txlen;
	char cmd[CMD_MAX];
	char rx[RX_MAX];
	size_t rxlen;
	struct sess *next_dead;
};

static struct {
	int sessions, many, pipelining, resume, wait_s;
	long messages;
	enum tls_mode tls;
	const char *suites, *from, *rcpt, *helo, *file;
	struct sockaddr_storage addr;
	socklen_t addrlen;
} opt = {.sessions = 1, .messages = 1, .pipelining = 1, .wait_s = 30,
	 .suites = "TLS_AES_128_GCM_SHA256", .helo = "tlsgen.bench.test"};

static struct {
	long taken, accepted, failed, connections, handshakes, resumed, errors;
	int live, stop;
} st;

static char *msg;                    /* FILE as sent: CRLF, dot-stuffed, ".\r\n" */
static size_t msglen;
static SSL_CTX *ctx;
static int ep;
static struct sess *graveyard;       /* freed after each batch of events */

static void usage(void)
{
	fprintf(stderr, "usage: tlsgen [-d] [-s SESSIONS] [-m MESSAGES] [-S | -Z] [-R] [-P] [-c SUITES]"
			" [-w SECONDS] -F FILE -f FROM -t RCPT [-M HELO] HOST:PORT\n");
	exit(2);
}

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("tlsgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ setup */

/* FILE with every line ended by CRLF, a leading dot doubled, then ".\r\n". */
static void load_message(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct stat sb;
	char *raw;
	size_t n, i, o = 0;

	if (!f || fstat(fileno(f), &sb) < 0)
		die("%s: %s", path, strerror(errno));
	if ((size_t)sb.st_size > MAX_MESSAGE)
		die("%s: larger than %u bytes", path, MAX_MESSAGE);
	n = (size_t)sb.st_size;
	raw = malloc(n + 1);
	msg = malloc(2 * n + 8);     /* at worst every byte a "\n" or a leading "." */
	if (!raw || !msg || fread(raw, 1, n, f) != n)
		die("%s: cannot read", path);
	fclose(f);
	for (i = 0; i < n; i++) {
		int bol = i == 0 || raw[i - 1] == '\n';

		if (bol && raw[i] == '.')
			msg[o++] = '.';
		if (raw[i] == '\n' && (i == 0 || raw[i - 1] != '\r'))
			msg[o++] = '\r';
		msg[o++] = raw[i];
	}
	if (n && raw[n - 1] != '\n')
		msg[o++] = '\r', msg[o++] = '\n';
	memcpy(msg + o, ".\r\n", 3);
	msglen = o + 3;
	free(raw);
}

static void parse_target(const char *s)
{
	char host[256];
	const char *colon = strrchr(s, ':');
	struct sockaddr_in *a4 = (struct sockaddr_in *)&opt.addr;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&opt.addr;
	long port;
	char *end;

	if (!colon || (size_t)(colon - s) >= sizeof host)
		die("bad target '%s' (want HOST:PORT, HOST an IP address)", s);
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 1 || port > 65535)
		die("bad port in '%s'", s);
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = 0;
	}
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((unsigned short)port);
		opt.addrlen = sizeof *a4;
	} else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((unsigned short)port);
		opt.addrlen = sizeof *a6;
	} else {
		die("bad address '%s' (an IP address: no DNS here)", host);
	}
}

static long num(const char *s, long lo, long hi, int flag)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == 0 || *end || v < lo || v > hi)
		die("-%c: want a number from %ld to %ld, not '%s'", flag, lo, hi, s);
	return v;
}

/* -R: keep the newest ticket the server gives a slot's connection. */
static int new_ticket(SSL *ssl, SSL_SESSION *sess)
{
	struct sess *s = SSL_get_app_data(ssl);

	if (!opt.resume || !s)
		return 0;
	SSL_SESSION_free(s->slot->ticket);
	s->slot->ticket = sess;
	return 1;                    /* the slot keeps the reference */
}

static void tls_setup(void)
{
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_ciphersuites(ctx, opt.suites))
		die("TLS set-up failed (cipher suites '%s'?)", opt.suites);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, new_ticket);
}

/* ------------------------------------------------------------------ sessions */

static void watch(struct sess *s)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = s};

	if (epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
}

static void bury(struct sess *s)
{
	if (s->dead)
		return;
	s->dead = 1;
	if (s->ssl) {
		SSL_shutdown(s->ssl);   /* one try at close_notify, never waited for */
		SSL_free(s->ssl);
		ERR_clear_error();
	}
	close(s->fd);
	st.live--;
	s->next_dead = graveyard;
	graveyard = s;
}

static int take_message(void)
{
	if (st.stop || st.taken >= opt.messages)
		return 0;
	st.taken++;
	return 1;
}

static void start_session(struct slot *slot);

/* The session went wrong: say why (the first few times), give up its
 * message, and send no new ones. Returns -1 for the caller to return. */
static int fail(struct sess *s, const char *fmt, ...)
{
	va_list ap;

	if (st.errors++ < ERRORS_SHOWN) {
		va_start(ap, fmt);
		fprintf(stderr, "tlsgen: session %d: ", s->slot->id);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		va_end(ap);
	}
	if (s->has_msg)
		st.failed++;
	st.stop = 1;
	bury(s);
	return -1;
}

static const char *tls_error(SSL *ssl, int r)
{
	static char buf[256];
	unsigned long e = ERR_get_error();

	if (e) {
		ERR_error_string_n(e, buf, sizeof buf);
		ERR_clear_error();
		return buf;
	}
	if (SSL_get_error(ssl, r) == SSL_ERROR_SYSCALL)
		return errno ? strerror(errno) : "connection closed";
	return "connection closed";
}

/* Writes and reads through TLS or not: > 0 bytes, 0 would block, -1 error. */
static ssize_t io(struct sess *s, int writing, void *buf, size_t n, const char **err)
{
	if (!s->tls_up) {
		ssize_t r = writing ? write(s->fd, buf, n) : read(s->fd, buf, n);

		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (r <= 0)
			*err = r == 0 ? "connection closed" : strerror(errno);
		return r > 0 ? r : -1;
	}
	int r = writing ? SSL_write(s->ssl, buf, (int)(n > INT_MAX ? INT_MAX : n))
			: SSL_read(s->ssl, buf, (int)n);

	if (r > 0)
		return r;
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return 0;
	default:
		*err = tls_error(s->ssl, r);
		return -1;
	}
}

/* Queue commands (printf-style, each with its \r\n) whose replies are cmds. */
static int send_cmds(struct sess *s, int n, const enum cmd *cmds, const char *fmt, ...)
{
	va_list ap;
	int len;

	if (s->txlen)
		return fail(s, "a reply came before the command was sent");
	va_start(ap, fmt);
	len = vsnprintf(s->cmd, sizeof s->cmd, fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof s->cmd)
		return fail(s, "commands longer than %d bytes", CMD_MAX);
	memcpy(s->expect + s->nexpect, cmds, (size_t)n * sizeof *cmds);
	s->nexpect += n;
	s->tx = s->cmd;
	s->txlen = (size_t)len;
	return 0;
}

static int send_ehlo(struct sess *s)
{
	static const enum cmd c[] = {C_EHLO};

	s->pipelining = s->starttls = 0;
	return send_cmds(s, 1, c, "EHLO %s\r\n", opt.helo);
}

static int send_quit(struct sess *s)
{
	static const enum cmd c[] = {C_QUIT};

	return send_cmds(s, 1, c, "QUIT\r\n");
}

static int send_txn(struct sess *s)
{
	static const enum cmd c[] = {C_MAIL, C_RCPT, C_DATA};

	if (s->pipelining)
		return send_cmds(s, 3, c, "MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n", opt.from, opt.rcpt);
	return send_cmds(s, 1, c, "MAIL FROM:<%s>\r\n", opt.from);
}

static int start_tls(struct sess *s)
{
	s->ssl = SSL_new(ctx);
	if (!s->ssl || !SSL_set_fd(s->ssl, s->fd))
		return fail(s, "SSL_new failed");
	SSL_set_app_data(s->ssl, s);
	if (opt.resume && s->slot->ticket)
		SSL_set_session(s->ssl, s->slot->ticket);
	SSL_set_connect_state(s->ssl);
	s->handshaking = 1;
	return 0;
}

/* The capabilities of an EHLO reply that change what we send. */
static void capabilities(struct sess *s, const char *p, size_t n)
{
	const char *end = p + n;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p)), *w = p + 4;
		size_t wl = 0;

		while (w + wl < eol && w[wl] != ' ' && w[wl] != '\r')
			wl++;
		if (wl == 10 && !strncasecmp(w, "PIPELINING", 10))
			s->pipelining = opt.pipelining;
		if (wl == 8 && !strncasecmp(w, "STARTTLS", 8))
			s->starttls = 1;
		p = eol + 1;
	}
}

/* A message is done: the next one on this connection (-d), or QUIT. */
static int next_or_quit(struct sess *s, int first)
{
	if (!s->has_msg && (first || opt.many))
		s->has_msg = take_message();
	return s->has_msg ? send_txn(s) : send_quit(s);
}

/* One whole reply (code, its text); -1 when the session is over. */
static int on_reply(struct sess *s, int code, const char *text, size_t len, size_t rest)
{
	enum cmd c;

	if (!s->nexpect)
		return fail(s, "unexpected reply: %.*s", (int)len - 2, text);
	c = s->expect[0];
	memmove(s->expect, s->expect + 1, (size_t)--s->nexpect * sizeof *s->expect);
	if (code != cmd_want[c] && !(c == C_RCPT && code == 251))
		return fail(s, "%s: %.*s", cmd_name[c], (int)len - 2, text);
	switch (c) {
	case C_BANNER:
		return send_ehlo(s);
	case C_EHLO:
		capabilities(s, text, len);
		if (opt.tls == TLS_STARTTLS && !s->tls_up)
			return s->starttls ? send_cmds(s, 1, (enum cmd[]){C_STARTTLS}, "STARTTLS\r\n")
					   : fail(s, "the server does not offer STARTTLS");
		return next_or_quit(s, 1);
	case C_STARTTLS:
		if (rest)
			return fail(s, "%zu bytes after the 220 to STARTTLS, before TLS", rest);
		return start_tls(s);
	case C_MAIL:
		return s->pipelining ? 0 : send_cmds(s, 1, (enum cmd[]){C_RCPT}, "RCPT TO:<%s>\r\n", opt.rcpt);
	case C_RCPT:
		return s->pipelining ? 0 : send_cmds(s, 1, (enum cmd[]){C_DATA}, "DATA\r\n");
	case C_DATA:
		s->tx = msg;
		s->txlen = msglen;
		s->expect[s->nexpect++] = C_DOT;
		return 0;
	case C_DOT:
		st.accepted++;
		s->has_msg = 0;
		return next_or_quit(s, 0);
	case C_QUIT:
		bury(s);
		if (!st.stop && st.taken < opt.messages)
			start_session(s->slot);
		return -1;
	}
	return 0;
}

/* Hand each complete reply in rx to on_reply; keep a partial one. */
static int replies(struct sess *s)
{
	size_t off = 0;

	for (;;) {
		const char *p = s->rx + off, *end = s->rx + s->rxlen, *line = p;
		int code = -1;

		while (line < end) {
			const char *eol = memchr(line, '\n', (size_t)(end - line));

			if (!eol)
				break;
			if (eol - line < 4 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
			    line[2] < '0' || line[2] > '9' || (line[3] != ' ' && line[3] != '-' && line[3] != '\r'))
				return fail(s, "not an SMTP reply: %.*s", (int)(eol - line), line);
			if (line[3] != '-')
				code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
			line = eol + 1;
			if (code >= 0)
				break;
		}
		if (code < 0)
			break;
		off = (size_t)(line - s->rx);
		if (on_reply(s, code, p, (size_t)(line - p), s->rxlen - off) < 0)
			return -1;
	}
	if (off == 0 && s->rxlen == sizeof s->rx)
		return fail(s, "a reply longer than %d bytes", RX_MAX);
	memmove(s->rx, s->rx + off, s->rxlen - off);
	s->rxlen -= off;
	return 0;
}

/* The TCP connection is up (or not): then TLS at once (-Z) or the banner. */
static int connected(struct sess *s, unsigned events)
{
	int err = 0;
	socklen_t len = sizeof err;

	if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
		return 1;
	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err)
		return fail(s, "connect: %s", strerror(err ? err : errno));
	s->connecting = 0;
	if (opt.tls == TLS_IMPLICIT)
		return start_tls(s);
	s->expect[s->nexpect++] = C_BANNER;
	return 0;
}

static int handshake(struct sess *s)
{
	int r = SSL_do_handshake(s->ssl);

	if (r != 1) {
		int e = SSL_get_error(s->ssl, r);

		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return 1;
		return fail(s, "TLS handshake: %s", tls_error(s->ssl, r));
	}
	s->handshaking = 0;
	s->tls_up = 1;
	st.handshakes++;
	if (SSL_session_reused(s->ssl))
		st.resumed++;
	if (opt.tls == TLS_IMPLICIT) {
		s->expect[s->nexpect++] = C_BANNER;
		return 0;
	}
	return send_ehlo(s);
}

/* Everything the session can do now, until the socket would block. */
static void drive(struct sess *s, unsigned events)
{
	const char *err = NULL;

	if (s->connecting && connected(s, events) != 0)
		return;
	for (;;) {
		int progress = 0;
		ssize_t r;

		if (s->handshaking) {
			if (handshake(s) != 0)
				return;
			continue;
		}
		if (s->txlen) {
			r = io(s, 1, (void *)s->tx, s->txlen, &err);
			if (r < 0) {
				fail(s, "write: %s", err);
				return;
			}
			s->tx += r;
			s->txlen -= (size_t)r;
			progress |= r > 0;
		}
		if (s->rxlen < sizeof s->rx) {
			r = io(s, 0, s->rx + s->rxlen, sizeof s->rx - s->rxlen, &err);
			if (r < 0) {
				fail(s, "%s while waiting for the reply to %s", err,
				     s->nexpect ? cmd_name[s->expect[0]] : "nothing");
				return;
			}
			s->rxlen += (size_t)r;
			if (r > 0 && replies(s) < 0)
				return;
			progress |= r > 0;
		}
		if (!progress)
			return;
	}
}

static void start_session(struct slot *slot)
{
	struct sess *s = calloc(1, sizeof *s);
	int one = 1;

	if (!s)
		die("out of memory");
	s->slot = slot;
	s->fd = socket(opt.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		die("socket: %s", strerror(errno));
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	st.connections++;
	st.live++;
	s->connecting = 1;
	if (!opt.many)
		s->has_msg = take_message();
	if (connect(s->fd, (struct sockaddr *)&opt.addr, opt.addrlen) < 0 && errno != EINPROGRESS) {
		fail(s, "connect: %s", strerror(errno));
		return;
	}
	watch(s);
}

/* ------------------------------------------------------------------ main */

static void parse_args(int argc, char **argv)
{
	int c;

	while ((c = getopt(argc, argv, "dSZRPs:m:c:w:F:f:t:M:")) != -1) {
		switch (c) {
		case 'd': opt.many = 1; break;
		case 'S': opt.tls = TLS_STARTTLS; break;
		case 'Z': opt.tls = TLS_IMPLICIT; break;
		case 'R': opt.resume = 1; break;
		case 'P': opt.pipelining = 0; break;
		case 's': opt.sessions = (int)num(optarg, 1, MAX_SESSIONS, c); break;
		case 'm': opt.messages = num(optarg, 1, 1000000000L, c); break;
		case 'w': opt.wait_s = (int)num(optarg, 1, 3600, c); break;
		case 'c': opt.suites = optarg; break;
		case 'F': opt.file = optarg; break;
		case 'f': opt.from = optarg; break;
		case 't': opt.rcpt = optarg; break;
		case 'M': opt.helo = optarg; break;
		default: usage();
		}
	}
	if (optind != argc - 1 || !opt.file || !opt.from || !opt.rcpt)
		usage();
	if (strpbrk(opt.from, "\r\n<>") || strpbrk(opt.rcpt, "\r\n<>") || strpbrk(opt.helo, "\r\n "))
		die("-f, -t and -M take an address or a name, without <>, spaces or line ends");
	parse_target(argv[optind]);
}

int main(int argc, char **argv)
{
	struct epoll_event evs[EVENTS];
	struct slot *slots;
	double t0;
	int i;

	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	load_message(opt.file);
	if (opt.tls != TLS_NONE)
		tls_setup();
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0 || !(slots = calloc((size_t)opt.sessions, sizeof *slots)))
		die("set-up: %s", strerror(errno));
	t0 = now();
	for (i = 0; i < opt.sessions && i < opt.messages; i++) {
		slots[i].id = i + 1;
		start_session(&slots[i]);
	}
	while (st.live > 0) {
		int n = epoll_wait(ep, evs, EVENTS, opt.wait_s * 1000);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "tlsgen: nothing happened for %d s with %d sessions open: giving up\n",
				opt.wait_s, st.live);
			st.failed += st.live;
			break;
		}
		for (i = 0; i < n; i++) {
			struct sess *s = evs[i].data.ptr;

			if (!s->dead)
				drive(s, evs[i].events);
		}
		while (graveyard) {
			struct sess *d = graveyard;

			graveyard = d->next_dead;
			free(d);
		}
	}
	double secs = now() - t0;

	printf("messages=%ld accepted=%ld failed=%ld connections=%ld handshakes=%ld resumed=%ld "
	       "seconds=%.3f msgs_per_s=%.1f\n", opt.messages, st.accepted, st.failed, st.connections,
	       st.handshakes, st.resumed, secs, secs > 0 ? (double)st.accepted / secs : 0.0);
	for (i = 0; i < opt.sessions; i++)
		SSL_SESSION_free(slots[i].ticket);
	SSL_CTX_free(ctx);
	free(slots);
	free(msg);
	return st.accepted == opt.messages && !st.errors ? 0 : 1;
}
