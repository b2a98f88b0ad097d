/* fuzz_session.c - libFuzzer: a whole client session with random bytes.
 *
 * The server side of a socketpair runs moat's session state machine on a
 * real event loop; the input is written as the client, then the client side
 * is closed and the loop runs until the session has ended. The checks are
 * off and the backend address refuses connections, so every path stays on
 * this machine and finishes quickly. Invariants: no crash, no sanitizer
 * report, no leak, and the session always ends.
 *
 * TLS is on (a P-256 pair made at start): EHLO offers STARTTLS, and the
 * input reaches the STARTTLS command and whatever is pipelined after it.
 * An input with the marker "\0TLS\0" goes on after the 220 to STARTTLS:
 * what follows the marker is, if it starts with 'H', sent under TLS after
 * a real handshake (the session starting over, every command under TLS),
 * else written raw (a fuzzed handshake for OpenSSL and moat's error path).
 *
 * The listener: an input that starts with byte 1 is a client of smtps_listen
 * (a real handshake first, then the rest under TLS), with byte 2 of
 * submission_listen (STARTTLS required, as above); else of listen. On those
 * two, AUTH goes to a small SMTP server of the fuzzer's own on loopback
 * (submission_backend), which answers EHLO with AUTH PLAIN LOGIN, AUTH with
 * 334s, the client's answers with 235, 535 or 454 by their length, and takes
 * mail: the AUTH exchange, its failure limit (3) and the authenticated
 * session's mail over the connection that authenticated are reached. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>

#include <event2/event.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "proxy/authfail.h"
#include "proxy/backend.h"
#include "proxy/config.h"
#include "checks/dkim.h"
#include "checks/dns.h"
#include "proxy/conntable.h"
#include "proxy/lib/log.h"
#include "checks/registry.h"
#include "rules/rules.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static struct server srv;

static const char conf[] =
	"listen = 127.0.0.1:0\n"
	"backend = 127.0.0.1:1\n" /* nothing listens: BE_DOWN paths */
	"hostname = mx.fuzz.example\n"
	"local_domains = example.test\n"
	"log = /dev/null\n"
	"check_sender_domain = no\ncheck_spf = no\ncheck_dkim = no\n"
	"max_message_size = 4096\nmax_recipients = 3\n"
	"smtps_listen = 127.0.0.1:0\nsubmission_listen = 127.0.0.1:0\n"
	"auth_fail_limit = 3\n";

static const char marker[] = "\0TLS\0"; /* sizeof - 1: 5 bytes */
static SSL_CTX *client_ctx;

/* A P-256 key and a self-signed certificate for it, in two temporary files. */
static void make_pair(char *crt, char *key)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	int fc = mkstemp(crt), fk = mkstemp(key);
	FILE *f;

	if (!k || !x || fc < 0 || fk < 0)
		abort();
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"mx.fuzz.example",
	                           -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	if (!X509_sign(x, k, EVP_sha256()))
		abort();
	f = fdopen(fc, "w");
	PEM_write_X509(f, x);
	fclose(f);
	f = fdopen(fk, "w");
	PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(k);
}

/* The default policy plus a rule of each kind that reaches other paths
 * (helo refusal, tags, logs, header splitting, size). */
static const char fuzz_rules[] =
	"reject helo /^bad/ \"550 5.7.1 bad helo\"\n"
	"tag rcpt-domain example.test header \"X-Fuzz: %{rcpt}\"\n"
	"log sender-domain .test\n"
	"reject header subject /spam/ \"550 5.7.1 spam\"\n"
	"reject monitor size > 3000\n";

/* ---- the fake submission_backend ---- */

enum fake_state { F_CMD, F_PLAIN, F_LOGIN_USER, F_LOGIN_PASS, F_DATA };

static void fake_verdict(struct bufferevent *bev, size_t len)
{
	static const char *const v[] = { "235 2.7.0 ok\r\n", "535 5.7.8 no\r\n", "454 4.7.0 later\r\n" };

	bufferevent_write(bev, v[len % 3], strlen(v[len % 3]));
}

static void fake_read(struct bufferevent *bev, void *arg)
{
	enum fake_state *st = arg;
	size_t n;
	char *line;

	while ((line = evbuffer_readln(bufferevent_get_input(bev), &n, EVBUFFER_EOL_CRLF))) {
		const char *r = "250 2.0.0 ok\r\n";

		if (*st == F_DATA) {
			if (strcmp(line, ".") == 0) {
				*st = F_CMD;
				r = "250 2.0.0 Ok: queued as F1\r\n";
			} else {
				r = "";
			}
		} else if (*st != F_CMD && strcmp(line, "*") == 0) {
			*st = F_CMD;
			r = "501 5.7.0 Authentication aborted\r\n";
		} else if (*st == F_PLAIN || *st == F_LOGIN_PASS) {
			*st = F_CMD;
			fake_verdict(bev, n);
			r = "";
		} else if (*st == F_LOGIN_USER) {
			*st = F_LOGIN_PASS;
			r = "334 UGFzc3dvcmQ6\r\n";
		} else if (strncasecmp(line, "EHLO", 4) == 0) {
			r = "250-fake\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n";
		} else if (strcasecmp(line, "AUTH PLAIN") == 0) {
			*st = F_PLAIN;
			r = "334 \r\n";
		} else if (strncasecmp(line, "AUTH PLAIN ", 11) == 0) {
			fake_verdict(bev, n);
			r = "";
		} else if (strncasecmp(line, "AUTH LOGIN", 10) == 0) {
			*st = line[10] ? F_LOGIN_PASS : F_LOGIN_USER;
			r = line[10] ? "334 UGFzc3dvcmQ6\r\n" : "334 VXNlcm5hbWU6\r\n";
		} else if (strcasecmp(line, "DATA") == 0) {
			*st = F_DATA;
			r = "354 go\r\n";
		} else if (strcasecmp(line, "QUIT") == 0) {
			r = "221 2.0.0 bye\r\n";
		}
		bufferevent_write(bev, r, strlen(r));
		free(line);
	}
}

static void fake_event(struct bufferevent *bev, short what, void *arg)
{
	free(arg);
	bufferevent_free(bev);
}

static void fake_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
	struct bufferevent *bev = bufferevent_socket_new(srv.base, fd, BEV_OPT_CLOSE_ON_FREE);
	enum fake_state *st = calloc(1, sizeof *st);

	if (!bev || !st) {
		free(st);
		if (bev)
			bufferevent_free(bev);
		else
			close(fd);
		return;
	}
	bufferevent_setcb(bev, fake_read, NULL, fake_event, st);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	bufferevent_write(bev, "220 fake ESMTP\r\n", 16);
}

/* The fake backend on a free loopback port: its port. */
static int fake_backend(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	socklen_t len = sizeof sin;
	struct evconnlistener *l = evconnlistener_new_bind(srv.base, fake_accept, NULL, LEV_OPT_CLOSE_ON_FREE |
	                                                   LEV_OPT_REUSEABLE, 16, (struct sockaddr *)&sin, sizeof sin);

	if (!l || getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&sin, &len) < 0)
		abort();
	return ntohs(sin.sin_port);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[512], warn[512], crt[] = "/tmp/moat-fuzz-crt.XXXXXX", key[] = "/tmp/moat-fuzz-key.XXXXXX";
	static char text_conf[sizeof conf + 512];
	struct dns_options o = { .servers = "127.0.0.1:9", .timeout_ms = 100, .tries = 1, .cache_max = 16 };

	signal(SIGPIPE, SIG_IGN); /* as moat: a write to a closed client is an error, not the end */
	srv.base = event_base_new();
	make_pair(crt, key);
	snprintf(text_conf, sizeof text_conf, "%stls_cert = %s\ntls_key = %s\nsubmission_backend = 127.0.0.1:%d\n", conf,
	         crt, key, fake_backend());
	srv.cfg = config_parse(text_conf, strlen(text_conf), "fuzz.conf", err, sizeof err);
	if (srv.cfg && tls_config_load(srv.cfg, err, sizeof err, warn, sizeof warn) < 0)
		srv.cfg = NULL;
	unlink(crt);
	unlink(key);
	client_ctx = SSL_CTX_new(TLS_client_method());
	if (!srv.cfg || !client_ctx) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	static char text[sizeof fuzz_rules + 8192];

	snprintf(text, sizeof text, "%s%s", fuzz_rules, rules_default_text);
	srv.cfg->ruleset = ruleset_load_text(text, strlen(text), "fuzz.rules", checks_vocab(), err, sizeof err);
	if (!srv.cfg->ruleset) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	log_open(srv.cfg->log_target, srv.cfg->log_file);
	srv.conns = conntable_new(1);
	srv.dns = dns_new(srv.base, &o);
	srv.backends = backend_pool_new(srv.base, srv.dns);
	srv.dkim = dkim_verifier_new(srv.dns);
	return 0;
}


/* One turn of the loop; the client takes what the session wrote (through
 * ssl once it has one). Returns 1 once "220 2.0.0" (the reply to STARTTLS)
 * went by. */
static int turn(int fd, SSL *ssl, char *tail, size_t *ntail)
{
	char sink[4096 + 16];
	ssize_t n;
	int seen = 0;

	event_base_loop(srv.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	while ((n = ssl ? SSL_read(ssl, sink, 4096) : recv(fd, sink + *ntail, 4096, MSG_DONTWAIT)) > 0) {
		if (ssl)
			continue;
		memcpy(sink, tail, *ntail);
		n += (ssize_t)*ntail;
		seen |= memmem(sink, (size_t)n, "220 2.0.0", 9) != NULL;
		*ntail = n < 8 ? (size_t)n : 8; /* a reply split between two reads */
		memcpy(tail, sink + n - (ssize_t)*ntail, *ntail);
	}
	return seen;
}

/* A real TLS client on fd: the handshake with the session, turn by turn. */
static SSL *handshake(int fd)
{
	SSL *ssl = SSL_new(client_ctx);

	if (!ssl || !SSL_set_fd(ssl, fd)) {
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_connect_state(ssl);
	for (int rounds = 0; srv.sessions && rounds < 200; rounds++) {
		int r = SSL_do_handshake(ssl), e = SSL_get_error(ssl, r);

		if (r == 1)
			return ssl;
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			break;
		event_base_loop(srv.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	}
	SSL_free(ssl);
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(40000) };
	enum listener_kind kind = size > 0 && data[0] == 1 ? LISTENER_SMTPS
	                          : size > 0 && data[0] == 2 ? LISTENER_SUBMISSION : LISTENER_SMTP;
	const uint8_t *mark;
	size_t first, ntail = 0, nrest;
	const uint8_t *rest;
	int sv[2], rounds, ready = 0;
	SSL *ssl = NULL;
	char tail[16];

	if (kind != LISTENER_SMTP) {
		data++;
		size--;
	}
	mark = memmem(data, size, marker, sizeof marker - 1);
	first = mark ? (size_t)(mark - data) : size;
	rest = mark ? mark + sizeof marker - 1 : NULL;
	nrest = mark ? size - first - (sizeof marker - 1) : 0;
	/* failed AUTH counted for this input alone */
	authfail_free(srv.authfail);
	srv.authfail = authfail_new();

	/* non-blocking, as accepted sockets are (OpenSSL reads a record in a loop) */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		return 0;
	peer.sin_addr.s_addr = htonl(0x7f000001);
	conntable_take(srv.conns, 0, 1 << 30); /* as the listener does */
	session_start(&srv, sv[0], (struct sockaddr *)&peer, sizeof peer, kind);
	/* The client: everything at once (up to the marker); replies are read and
	 * dropped. On smtps_listen, under TLS from the start. */
	if (kind == LISTENER_SMTPS) {
		if ((ssl = handshake(sv[1])) && first > 0)
			SSL_write(ssl, data, (int)(first < 60000 ? first : 60000));
	} else if (first > 0 && write(sv[1], data, first < 60000 ? first : 60000) < 0) {
		(void)0;
	}
	if (rest && !ssl) { /* on after the 220, if it comes */
		for (rounds = 0; srv.sessions && !ready && rounds < 200; rounds++)
			ready = turn(sv[1], NULL, tail, &ntail);
		if (ready && nrest > 0 && rest[0] == 'H' && (ssl = handshake(sv[1]))) {
			if (nrest > 1)
				SSL_write(ssl, rest + 1, (int)(nrest - 1 < 60000 ? nrest - 1 : 60000));
		} else if (ready && nrest > 0 && write(sv[1], rest, nrest < 60000 ? nrest : 60000) < 0) {
			(void)0;
		}
	}
	shutdown(sv[1], SHUT_WR);
	for (rounds = 0; srv.sessions && rounds < 2000; rounds++)
		turn(sv[1], ssl, tail, &ntail);
	SSL_free(ssl);
	close(sv[1]);
	/* A session still waiting (a connect to the backend in flight, a
	 * handshake that never came): end it. */
	while (srv.sessions)
		session_abort(srv.sessions);
	event_base_loop(srv.base, EVLOOP_NONBLOCK);
	return 0;
}
