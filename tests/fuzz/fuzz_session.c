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
 * else written raw (a fuzzed handshake for OpenSSL and moat's error path). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>

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
	"max_message_size = 4096\nmax_recipients = 3\n";

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

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[512], warn[512], crt[] = "/tmp/moat-fuzz-crt.XXXXXX", key[] = "/tmp/moat-fuzz-key.XXXXXX";
	static char text_conf[sizeof conf + 256];
	struct dns_options o = { .servers = "127.0.0.1:9", .timeout_ms = 100, .tries = 1, .cache_max = 16 };

	signal(SIGPIPE, SIG_IGN); /* as moat: a write to a closed client is an error, not the end */
	make_pair(crt, key);
	snprintf(text_conf, sizeof text_conf, "%stls_cert = %s\ntls_key = %s\n", conf, crt, key);
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
	srv.base = event_base_new();
	srv.conns = conntable_new(1);
	srv.backends = backend_pool_new(srv.base);
	srv.dns = dns_new(srv.base, &o);
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
	const uint8_t *mark = memmem(data, size, marker, sizeof marker - 1);
	size_t first = mark ? (size_t)(mark - data) : size, ntail = 0;
	const uint8_t *rest = mark ? mark + sizeof marker - 1 : NULL;
	size_t nrest = mark ? size - first - (sizeof marker - 1) : 0;
	int sv[2], rounds, ready = 0;
	SSL *ssl = NULL;
	char tail[16];

	/* non-blocking, as accepted sockets are (OpenSSL reads a record in a loop) */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		return 0;
	peer.sin_addr.s_addr = htonl(0x7f000001);
	conntable_take(srv.conns, 0, 1 << 30); /* as the listener does */
	session_start(&srv, sv[0], (struct sockaddr *)&peer, sizeof peer, LISTENER_SMTP);
	/* The client: everything at once (up to the marker); replies are read and dropped. */
	if (first > 0 && write(sv[1], data, first < 60000 ? first : 60000) < 0)
		(void)0;
	if (rest) { /* on after the 220, if it comes */
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
