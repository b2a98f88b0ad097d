/* fuzz_session.c - libFuzzer: a whole client session with random bytes.
 *
 * The server side of a socketpair runs moat's session state machine on a
 * real event loop; the input is written as the client, then the client side
 * is closed and the loop runs until the session has ended. The checks are
 * off and the backend address refuses connections, so every path stays on
 * this machine and finishes quickly. Invariants: no crash, no sanitizer
 * report, no leak, and the session always ends. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

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
	char err[512];
	struct dns_options o = { .servers = "127.0.0.1:9", .timeout_ms = 100, .tries = 1, .cache_max = 16 };

	srv.cfg = config_parse(conf, sizeof conf - 1, "fuzz.conf", err, sizeof err);
	if (!srv.cfg) {
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(40000) };
	int sv[2], rounds;
	char sink[4096];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 0;
	peer.sin_addr.s_addr = htonl(0x7f000001);
	conntable_take(srv.conns, 0, 1 << 30); /* as the listener does */
	session_start(&srv, sv[0], (struct sockaddr *)&peer, sizeof peer);
	/* The client: everything at once, then EOF; replies are read and dropped. */
	if (size > 0 && write(sv[1], data, size < 60000 ? size : 60000) < 0)
		(void)0;
	shutdown(sv[1], SHUT_WR);
	for (rounds = 0; srv.sessions && rounds < 2000; rounds++) {
		event_base_loop(srv.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		while (recv(sv[1], sink, sizeof sink, MSG_DONTWAIT) > 0)
			;
	}
	close(sv[1]);
	/* A session still waiting (a connect to the backend in flight): end it. */
	while (srv.sessions)
		session_abort(srv.sessions);
	event_base_loop(srv.base, EVLOOP_NONBLOCK);
	return 0;
}
