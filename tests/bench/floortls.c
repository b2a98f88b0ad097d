/* floortls.c - the benchmark's floor with STARTTLS: the least a relay that
 * terminates TLS can do.
 *
 *   floortls LISTEN_PORT UPSTREAM_PORT CERT KEY [SUITES]   (127.0.0.1; prints "READY port")
 *
 * Greets, answers EHLO with PIPELINING and STARTTLS, answers STARTTLS with
 * 220 (dropping whatever the client pipelined after it, RFC 3207), makes the
 * TLS handshake (TLS 1.2 or 1.3, TLS 1.3 cipher suites SUITES, default
 * TLS_AES_128_GCM_SHA256; OpenSSL's defaults otherwise: session tickets on),
 * then copies bytes both ways between the TLS session and a plain connection
 * to the upstream made at accept, nothing parsed but the upstream's greeting,
 * which is dropped (the client already had ours). Before STARTTLS every other
 * command gets 530. One epoll loop (edge-triggered), TCP_NODELAY both ways.
 * The bench compares moat with STARTTLS with it, as it compares moat with
 * floor.c without TLS. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "floorlisten.h"

#define BUF 65536
#define LINE 1024                    /* a command before STARTTLS */
#define EVENTS 256
#define NAME "floortls.bench.test"

struct buf {
	char d[BUF];
	size_t len, off;             /* d[off..len) not yet written */
};

struct pair {
	int cfd, ufd;
	SSL *ssl;
	enum { P_PLAIN, P_HANDSHAKE, P_RELAY } state;
	char line[LINE];             /* P_PLAIN: the command read so far */
	size_t linelen;
	int greeting, col, last;     /* the upstream's 220 still being dropped */
	struct buf c2u, u2c;
	int dead;
	struct pair *next_dead;
};

static int ep;
static SSL_CTX *ctx;
static struct pair *graveyard;       /* freed after each batch of events */

static void close_pair(struct pair *p)
{
	if (p->dead)
		return;
	p->dead = 1;
	if (p->ssl) {
		SSL_shutdown(p->ssl);   /* one try at close_notify */
		SSL_free(p->ssl);
		ERR_clear_error();
	}
	close(p->cfd);
	close(p->ufd);
	p->next_dead = graveyard;
	graveyard = p;
}

/* A reply before TLS: small, into an empty socket buffer, so written whole. */
static int say(struct pair *p, const char *text)
{
	size_t n = strlen(text);

	return write(p->cfd, text, n) == (ssize_t)n ? 0 : -1;
}

/* One command before STARTTLS; rest is what the client sent after it. */
static int command(struct pair *p, const char *cmd, size_t rest)
{
	if (!strncasecmp(cmd, "EHLO ", 5))
		return say(p, "250-" NAME "\r\n250-PIPELINING\r\n250 STARTTLS\r\n");
	if (!strncasecmp(cmd, "HELO ", 5))
		return say(p, "250 " NAME "\r\n");
	if (!strcasecmp(cmd, "QUIT"))
		return say(p, "221 2.0.0 Bye\r\n"), -1;
	if (!strcasecmp(cmd, "NOOP") || !strcasecmp(cmd, "RSET"))
		return say(p, "250 2.0.0 OK\r\n");
	if (strcasecmp(cmd, "STARTTLS"))
		return say(p, "530 5.7.0 Must issue a STARTTLS command first\r\n");
	(void)rest;                  /* pipelined plaintext after STARTTLS: dropped */
	if (say(p, "220 2.0.0 Ready to start TLS\r\n") < 0 || !(p->ssl = SSL_new(ctx)) ||
	    !SSL_set_fd(p->ssl, p->cfd))
		return -1;
	SSL_set_accept_state(p->ssl);
	p->state = P_HANDSHAKE;
	return 0;
}

/* P_PLAIN: read commands until STARTTLS; 1 when the socket would block. */
static int plain(struct pair *p)
{
	char in[LINE];
	ssize_t r = read(p->cfd, in, sizeof in);
	ssize_t i;

	if (r < 0 && errno == EAGAIN)
		return 1;
	if (r <= 0)
		return -1;
	for (i = 0; i < r && p->state == P_PLAIN; i++) {
		if (in[i] != '\n') {
			if (p->linelen == LINE - 1)
				return -1;
			p->line[p->linelen++] = in[i];
			continue;
		}
		if (p->linelen && p->line[p->linelen - 1] == '\r')
			p->linelen--;
		p->line[p->linelen] = 0;
		p->linelen = 0;
		if (command(p, p->line, (size_t)(r - i - 1)) < 0)
			return -1;
	}
	return 0;
}

/* Drops the upstream's greeting (up to the end of its last line) from b. */
static void drop_greeting(struct pair *p, struct buf *b)
{
	size_t i;

	for (i = 0; i < b->len && p->greeting; i++) {
		if (p->col == 3)
			p->last = b->d[i] == ' ';
		if (b->d[i] == '\n') {
			p->greeting = !p->last;
			p->col = 0;
		} else {
			p->col++;
		}
	}
	b->off = i;
}

static ssize_t tls_io(struct pair *p, int writing, void *d, size_t n)
{
	int r = writing ? SSL_write(p->ssl, d, (int)n) : SSL_read(p->ssl, d, (int)n);

	if (r > 0)
		return r;
	r = SSL_get_error(p->ssl, r);
	return r == SSL_ERROR_WANT_READ || r == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

static ssize_t tcp_io(int fd, int writing, void *d, size_t n)
{
	ssize_t r = writing ? write(fd, d, n) : read(fd, d, n);

	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	return r > 0 ? r : -1;
}

/* P_RELAY: one step each way; > 0 when something moved, -1 at the end
 * (either side closed with nothing left for the other). */
static int relay(struct pair *p)
{
	ssize_t r;
	int moved = 0;

	if (p->c2u.off < p->c2u.len) {
		r = tcp_io(p->ufd, 1, p->c2u.d + p->c2u.off, p->c2u.len - p->c2u.off);
		p->c2u.off += r > 0 ? (size_t)r : 0;
	} else {
		r = tls_io(p, 0, p->c2u.d, BUF);
		p->c2u.off = 0;
		p->c2u.len = r > 0 ? (size_t)r : 0;
	}
	if (r < 0)
		return -1;
	moved |= r > 0;
	if (p->u2c.off < p->u2c.len) {
		r = tls_io(p, 1, p->u2c.d + p->u2c.off, p->u2c.len - p->u2c.off);
		p->u2c.off += r > 0 ? (size_t)r : 0;
	} else {
		r = tcp_io(p->ufd, 0, p->u2c.d, BUF);
		p->u2c.off = 0;
		p->u2c.len = r > 0 ? (size_t)r : 0;
		if (p->greeting)
			drop_greeting(p, &p->u2c);
	}
	if (r < 0)
		return -1;
	return moved | (r > 0);
}

static void drive(struct pair *p)
{
	for (;;) {
		int r = 0;

		switch (p->state) {
		case P_PLAIN:
			r = plain(p);
			break;
		case P_HANDSHAKE:
			r = SSL_do_handshake(p->ssl);
			if (r == 1) {
				p->state = P_RELAY;
				r = 0;
			} else {
				r = SSL_get_error(p->ssl, r);
				r = r == SSL_ERROR_WANT_READ || r == SSL_ERROR_WANT_WRITE ? 1 : -1;
			}
			break;
		case P_RELAY:
			r = relay(p);
			r = r < 0 ? -1 : r == 0 ? 1 : 0;
			break;
		}
		if (r < 0)
			close_pair(p);
		if (r != 0)
			return;
	}
}

static void accept_all(int lfd, const struct sockaddr_in *ua)
{
	int cfd, one = 1;

	while ((cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
		struct pair *p = calloc(1, sizeof *p);
		int ufd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

		setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (ufd >= 0)
			setsockopt(ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (!p || ufd < 0 || (connect(ufd, (const struct sockaddr *)ua, sizeof *ua) < 0 && errno != EINPROGRESS)) {
			close(cfd);
			if (ufd >= 0)
				close(ufd);
			free(p);
			continue;
		}
		p->cfd = cfd;
		p->ufd = ufd;
		p->greeting = 1;
		struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = p};

		epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev);
		epoll_ctl(ep, EPOLL_CTL_ADD, ufd, &ev);
		if (say(p, "220 " NAME " ESMTP\r\n") < 0)
			close_pair(p);
	}
}

static void tls_setup(const char *cert, const char *key, const char *suites)
{
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_set_ciphersuites(ctx, suites) ||
	    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		fprintf(stderr, "floortls: TLS set-up (%s, %s, %s): ", cert, key, suites);
		ERR_print_errors_fp(stderr);
		exit(1);
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

int main(int argc, char **argv)
{
	struct sockaddr_in ua;
	struct epoll_event evs[EVENTS];
	int lfd, i, n;

	if (argc != 5 && argc != 6) {
		fprintf(stderr, "usage: floortls LISTEN_PORT UPSTREAM_PORT CERT KEY [SUITES]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	tls_setup(argv[3], argv[4], argc == 6 ? argv[5] : "TLS_AES_128_GCM_SHA256");
	ep = epoll_create1(0);
	lfd = floor_listen("floortls", ep, argv[1], argv[2], &ua);
	for (;;) {
		n = epoll_wait(ep, evs, EVENTS, -1);
		for (i = 0; i < n; i++) {
			struct pair *p = evs[i].data.ptr;

			if (!p)
				accept_all(lfd, &ua);
			else if (!p->dead)
				drive(p);
		}
		while (graveyard) {
			struct pair *d = graveyard;

			graveyard = d->next_dead;
			free(d);
		}
	}
}
