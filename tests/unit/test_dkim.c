/* test_dkim.c - DKIM verification against messages signed by dkimpy
 *
 * The messages and keys come from tests/unit/dkim_fixtures.py, run afresh
 * (new keys) into <this binary's directory>/dkim_fixtures before the tests:
 * the signer is dkimpy, not libopendkim. Keys reach the verifier as raw TXT
 * replies built here, either injected into the DNS cache (answers within
 * dns_lookup) or served by a small DNS responder on the test's event loop
 * (answers later, through c-ares).
 *
 * Environment: MOAT_SRCDIR (default ".") locates the script,
 * MOAT_DKIM_FIXTURES overrides the output directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include <opendkim/dkim.h>

#include "checks/dkim.h"
#include "checks/dns.h"

#define KEYS_MAX 16
#define TXT_MAX 8

static char fixdir[1024];
static struct event_base *base;

/* libopendkim's own resolver (dkim_res_init/dkim_res_query) would call
 * these; ours must never let it. */
static int resolver_calls;
struct __res_state;
int __res_ninit(struct __res_state *st);
int res_nquery(struct __res_state *st, const char *name, int class, int type, unsigned char *ans,
               int anslen);

int __res_ninit(struct __res_state *st)
{
	resolver_calls++;
	return 0;
}

int res_nquery(struct __res_state *st, const char *name, int class, int type, unsigned char *ans,
               int anslen)
{
	resolver_calls++;
	return -1;
}

/* Fixtures */

struct pubkey {
	char name[256]; /* "<s>._domainkey.example.org" */
	char txt[1024];
};
static struct pubkey keys[KEYS_MAX];
static int nkeys;

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	if (buf) {
		buf[n] = '\0';
		*len = (size_t)n;
	}
	return buf;
}

static char *load_msg(const char *name, size_t *len)
{
	char path[1200];
	char *m;

	snprintf(path, sizeof path, "%s/%s.msg", fixdir, name);
	m = slurp(path, len);
	if (!m)
		fail_msg("no fixture %s", path);
	return m;
}

static const char *key_txt(const char *selector)
{
	char name[256];
	int i;

	snprintf(name, sizeof name, "%s._domainkey.example.org", selector);
	for (i = 0; i < nkeys; i++)
		if (strcmp(keys[i].name, name) == 0)
			return keys[i].txt;
	fail_msg("no key %s", name);
	return NULL;
}

static int make_fixtures(const char *argv0)
{
	const char *src = getenv("MOAT_SRCDIR"), *over = getenv("MOAT_DKIM_FIXTURES");
	char cmd[4096], path[1200];
	const char *slash;
	FILE *f;

	if (over) {
		snprintf(fixdir, sizeof fixdir, "%s", over);
	} else {
		slash = strrchr(argv0, '/');
		snprintf(fixdir, sizeof fixdir, "%.*s/dkim_fixtures",
		         slash ? (int)(slash - argv0) : 1, slash ? argv0 : ".");
	}
	snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/unit/dkim_fixtures.py '%s'",
	         src ? src : ".", fixdir);
	if (system(cmd) != 0) {
		fprintf(stderr, "test_dkim: %s failed (python3-dkim and openssl needed)\n", cmd);
		return -1;
	}
	snprintf(path, sizeof path, "%s/keys.txt", fixdir);
	if (!(f = fopen(path, "r")))
		return -1;
	while (nkeys < KEYS_MAX &&
	       fscanf(f, "%255s %1023[^\n]", keys[nkeys].name, keys[nkeys].txt) == 2)
		nkeys++;
	fclose(f);
	return nkeys > 0 ? 0 : -1;
}

/* Raw DNS replies */

struct rr_txt {
	const char *v[TXT_MAX]; /* one TXT record each */
	int n;
	int split;              /* character-string size; 0: 255 */
};

static size_t put_name(unsigned char *p, const char *name)
{
	size_t o = 0;

	while (*name) {
		const char *dot = strchr(name, '.');
		size_t n = dot ? (size_t)(dot - name) : strlen(name);

		p[o++] = (unsigned char)n;
		memcpy(p + o, name, n);
		o += n;
		name += n + (dot ? 1 : 0);
	}
	p[o++] = 0;
	return o;
}

/* A reply to "name TXT": header with rcode, the question, then the records.
 * question: the raw question to echo (name, type, class), or NULL. */
static size_t build_reply(unsigned char *p, size_t size, uint16_t id, int rcode, const char *name,
                          const unsigned char *question, size_t qlen, const struct rr_txt *t)
{
	size_t o = 12;
	int i, an = t ? t->n : 0;

	memset(p, 0, 12);
	p[0] = (unsigned char)(id >> 8);
	p[1] = (unsigned char)id;
	p[2] = 0x81; /* QR, RD */
	p[3] = (unsigned char)(0x80 | rcode);
	p[5] = 1;
	p[7] = (unsigned char)an;
	if (question) {
		memcpy(p + o, question, qlen);
		o += qlen;
	} else {
		o += put_name(p + o, name);
		p[o++] = 0, p[o++] = ns_t_txt, p[o++] = 0, p[o++] = ns_c_in;
	}
	for (i = 0; i < an; i++) {
		const char *v = t->v[i];
		size_t len = strlen(v), split = t->split ? (size_t)t->split : 255, rd = 0, rdpos;

		p[o++] = 0xc0, p[o++] = 12; /* the question's name */
		p[o++] = 0, p[o++] = ns_t_txt, p[o++] = 0, p[o++] = ns_c_in;
		p[o++] = 0, p[o++] = 0, p[o++] = 0x0e, p[o++] = 0x10; /* TTL 3600 */
		rdpos = o;
		o += 2;
		while (len > 0) {
			size_t n = len < split ? len : split;

			p[o++] = (unsigned char)n;
			memcpy(p + o, v, n);
			o += n, v += n, len -= n, rd += n + 1;
		}
		p[rdpos] = (unsigned char)(rd >> 8);
		p[rdpos + 1] = (unsigned char)rd;
	}
	assert_true(o <= size);
	return o;
}

static void inject_txt(struct dns *d, const char *selector, const struct rr_txt *t)
{
	unsigned char buf[4096];
	char name[256];
	size_t n;

	snprintf(name, sizeof name, "%s._domainkey.example.org", selector);
	n = build_reply(buf, sizeof buf, 0, 0, name, NULL, 0, t);
	assert_int_equal(dns_inject(d, name, ns_t_txt, DNS_OK, buf, (int)n, 3600), 0);
}

static void inject_key(struct dns *d, const char *selector)
{
	struct rr_txt t = {.v = {key_txt(selector)}, .n = 1};

	inject_txt(d, selector, &t);
}

static void inject_status(struct dns *d, const char *selector, enum dns_status st)
{
	char name[256];

	snprintf(name, sizeof name, "%s._domainkey.example.org", selector);
	assert_int_equal(dns_inject(d, name, ns_t_txt, st, NULL, 0, 3600), 0);
}

/* A DNS responder on the test's loop */

enum zmode { Z_TXT, Z_NXDOMAIN, Z_SERVFAIL, Z_DROP };
struct zentry {
	char name[256];
	enum zmode mode;
	struct rr_txt t;
};
static struct zentry zone[KEYS_MAX];
static int nzone;
static int zqueries; /* queries received */
static int zsock = -1;
static uint16_t zport;
static struct event *zev;

static void zone_add(const char *selector, enum zmode mode, const char *txt)
{
	struct zentry *z = &zone[nzone++];

	memset(z, 0, sizeof *z);
	snprintf(z->name, sizeof z->name, "%s._domainkey.example.org", selector);
	z->mode = mode;
	if (txt) {
		z->t.v[0] = txt;
		z->t.n = 1;
	}
}

static void on_query(evutil_socket_t fd, short what, void *arg)
{
	unsigned char q[1500], r[4096];
	struct sockaddr_storage from;
	socklen_t flen = sizeof from;
	ssize_t n = recvfrom(fd, q, sizeof q, 0, (struct sockaddr *)&from, &flen);
	char name[256];
	size_t o = 12, nl = 0, rl;
	int i;

	if (n < 17)
		return;
	zqueries++;
	while (o < (size_t)n && q[o] != 0 && nl + q[o] + 1 < sizeof name) {
		size_t len = q[o++];

		if (nl)
			name[nl++] = '.';
		for (; len > 0 && o < (size_t)n; len--)
			name[nl++] = (char)tolower(q[o++]);
	}
	name[nl] = '\0';
	o += 1 + 4; /* root label, type, class */
	for (i = 0; i < nzone; i++)
		if (strcmp(zone[i].name, name) == 0)
			break;
	if (i == nzone) {
		rl = build_reply(r, sizeof r, (uint16_t)(q[0] << 8 | q[1]), ns_r_nxdomain, NULL, q + 12,
		                 o - 12, NULL);
	} else if (zone[i].mode == Z_DROP) {
		return;
	} else {
		int rcode = zone[i].mode == Z_NXDOMAIN ? ns_r_nxdomain :
		            zone[i].mode == Z_SERVFAIL ? ns_r_servfail : 0;

		rl = build_reply(r, sizeof r, (uint16_t)(q[0] << 8 | q[1]), rcode, NULL, q + 12, o - 12,
		                 zone[i].mode == Z_TXT ? &zone[i].t : NULL);
	}
	sendto(fd, r, rl, 0, (struct sockaddr *)&from, flen);
}

static void responder_start(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof sin;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	zsock = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(zsock >= 0);
	assert_int_equal(bind(zsock, (struct sockaddr *)&sin, sizeof sin), 0);
	assert_int_equal(getsockname(zsock, (struct sockaddr *)&sin, &len), 0);
	zport = ntohs(sin.sin_port);
	zev = event_new(base, zsock, EV_READ | EV_PERSIST, on_query, NULL);
	event_add(zev, NULL);
}

/* Running a check */

struct memmsg {
	const char *p;
	size_t len;
	size_t step;   /* largest read; 0: any */
	int fail;      /* reads that reach byte fail - 1 fail */
};

static long mem_read(void *rarg, size_t off, char *buf, size_t len)
{
	struct memmsg *m = rarg;

	if (off >= m->len)
		return 0;
	if (len > m->len - off)
		len = m->len - off;
	if (m->step && len > m->step)
		len = m->step;
	if (m->fail && off + len >= (size_t)m->fail)
		return -1;
	memcpy(buf, m->p + off, len);
	return (long)len;
}

struct result {
	int calls;
	struct dkim_outcome o;
};

static void on_done(void *arg, const struct dkim_outcome *o)
{
	struct result *r = arg;

	r->calls++;
	r->o = *o;
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(base);
}

/* Verify msg; *turns: the loop turns the result took (1: every key
 * cached). The callback never runs before dkim_check_start returns. */
static void run(struct dkim_verifier *l, struct memmsg *m, struct result *r, int *turns)
{
	struct dkim_check *c;
	struct event *deadline;
	struct timeval tv = {10, 0};

	memset(r, 0, sizeof *r);
	c = dkim_check_start(l, NULL, mem_read, m, m->len, on_done, r);
	assert_non_null(c);
	assert_int_equal(r->calls, 0);
	*turns = 0;
	deadline = evtimer_new(base, on_deadline, NULL);
	evtimer_add(deadline, &tv);
	while (r->calls == 0 && evtimer_pending(deadline, NULL)) {
		event_base_loop(base, EVLOOP_ONCE);
		++*turns;
	}
	event_free(deadline);
	assert_int_equal(r->calls, 1);
}

static void verify_msg(struct dkim_verifier *l, const char *name, size_t step, struct result *r,
                       int *turns)
{
	size_t len;
	char *msg = load_msg(name, &len);
	struct memmsg m = {msg, len, step, 0};

	run(l, &m, r, turns);
	free(msg);
}

/* b= of the n-th DKIM-Signature of a wire-form message, first 8 characters,
 * read without libopendkim. */
static void expected_b(const char *msg, int nth, char out[9])
{
	const char *p = msg, *end, *t;
	char field[8192];
	size_t n = 0;

	for (;;) {
		p = strstr(p, "DKIM-Signature:");
		assert_non_null(p);
		if ((p == msg || p[-1] == '\n') && nth-- == 0)
			break;
		p++;
	}
	/* unfold up to the next field */
	for (end = p; *end; end++) {
		if (end[0] == '\n' && end[1] != ' ' && end[1] != '\t')
			break;
		if (*end != '\r' && *end != '\n' && n + 1 < sizeof field)
			field[n++] = *end;
	}
	field[n] = '\0';
	for (t = field; (t = strstr(t, "b=")) != NULL; t++)
		if (t[-1] == ';' || t[-1] == ' ' || t[-1] == '\t')
			break;
	assert_non_null(t);
	t += 2;
	for (n = 0; *t && *t != ';' && n < 8; t++)
		if (!isspace((unsigned char)*t))
			out[n++] = *t;
	out[n] = '\0';
	assert_int_equal(n, 8);
}

/* Fixtures shared by the tests */

struct env {
	struct dns *cache;          /* answers injected: they come in one loop turn */
	struct dkim_verifier *lc;
	struct dns *net;            /* no cache: every key goes to the responder */
	struct dkim_verifier *ln;
};
static struct env E;

static int setup(void **state)
{
	char servers[64];
	struct dns_options cached = {.timeout_ms = 2000, .tries = 1, .cache_max = 1000};
	struct dns_options net = {.timeout_ms = 2000, .tries = 1, .cache_max = 0};

	base = event_base_new();
	responder_start();
	snprintf(servers, sizeof servers, "127.0.0.1:%u", zport);
	cached.servers = net.servers = servers;
	E.cache = dns_new(base, &cached);
	E.net = dns_new(base, &net);
	assert_non_null(E.cache);
	assert_non_null(E.net);
	E.lc = dkim_verifier_new(E.cache);
	E.ln = dkim_verifier_new(E.net);
	assert_non_null(E.lc);
	assert_non_null(E.ln);
	dkim_verifier_set_wait(E.ln, base, 500);
	return 0;
}

static int teardown(void **state)
{
	dkim_verifier_free(E.lc);
	dkim_verifier_free(E.ln);
	dns_free(E.cache);
	dns_free(E.net);
	event_free(zev);
	close(zsock);
	event_base_free(base);
	return 0;
}

static int reset(void **state)
{
	nzone = 0;
	zqueries = 0;
	return 0;
}

static void assert_one(const struct result *r, enum dkim_res res, const char *selector,
                       const char *algo, const char *reason)
{
	assert_int_equal(r->o.nsigs, 1);
	assert_string_equal(dkim_res_name(r->o.sig[0].res), dkim_res_name(res));
	assert_string_equal(r->o.sig[0].domain, "example.org");
	assert_string_equal(r->o.sig[0].selector, selector);
	if (algo)
		assert_string_equal(r->o.sig[0].algo, algo);
	if (reason)
		assert_string_equal(r->o.sig[0].reason, reason);
	assert_string_equal(dkim_res_name(r->o.summary), dkim_res_name(res));
}

/* Tests */

static void test_ed25519_feature(void **state)
{
	DKIM_LIB *lib = dkim_init(NULL, NULL);

	assert_non_null(lib);
	assert_true(dkim_libfeature(lib, DKIM_FEATURE_ED25519));
	dkim_close(lib);
}

/* Valid signatures pass, read in one go and byte by byte, from the cache. */
static void test_pass_matrix(void **state)
{
	static const struct {
		const char *msg, *selector, *algo;
	} cases[] = {
		{"rr_rsa", "rsa2048", "rsa-sha256"},
		{"ss_rsa", "rsa2048", "rsa-sha256"},
		{"rr_rsa_l", "rsa2048", "rsa-sha256"},
		{"ss_rsa_l", "rsa2048", "rsa-sha256"},
		{"rr_rsa_l_appended", "rsa2048", "rsa-sha256"}, /* l= covers what was signed */
		{"ed25519", "ed", "ed25519-sha256"},
		{"ed25519_ss", "ed", "ed25519-sha256"},
		{"dotstuff", "rsa2048", "rsa-sha256"},
	};
	size_t i, s;
	static const size_t steps[] = {0, 1, 7};

	inject_key(E.cache, "rsa2048");
	inject_key(E.cache, "ed");
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		for (s = 0; s < sizeof steps / sizeof steps[0]; s++) {
			struct result r;
			size_t len;
			char *msg = load_msg(cases[i].msg, &len);
			char b[9];
			int turns;

			verify_msg(E.lc, cases[i].msg, steps[s], &r, &turns);
			if (r.o.sig[0].res != DKIM_RES_PASS)
				fail_msg("%s step %zu: %s (%s)", cases[i].msg, steps[s],
				         dkim_res_name(r.o.sig[0].res), r.o.sig[0].reason);
			assert_int_equal(turns, 1); /* every key cached: one turn */
			assert_one(&r, DKIM_RES_PASS, cases[i].selector, cases[i].algo, "");
			expected_b(msg, 0, b);
			assert_string_equal(r.o.sig[0].b, b);
			assert_int_equal(r.o.nextra, 0);
			free(msg);
		}
	}
}

/* The dot-stuffed fixture really is stuffed, and the signer signed the
 * unstuffed lines: the pass above needed data_unstuff. */
static void test_dotstuff_fixture(void **state)
{
	size_t len;
	char *msg = load_msg("dotstuff", &len);

	assert_non_null(strstr(msg, "\r\n..\r\n"));
	assert_non_null(strstr(msg, "\r\n...two dots\r\n"));
	free(msg);
}

static void test_fail_matrix(void **state)
{
	static const struct {
		const char *msg, *selector, *reason;
	} cases[] = {
		{"body_tampered", "rsa2048", "body hash mismatch"},
		{"header_tampered", "rsa2048", "bad signature"},
		{"ed25519_tampered", "ed", "body hash mismatch"},
		{"rr_rsa_l_short", "rsa2048", "body shorter than l="},
	};
	size_t i;

	inject_key(E.cache, "rsa2048");
	inject_key(E.cache, "ed");
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct result r;
		int turns;

		verify_msg(E.lc, cases[i].msg, 0, &r, &turns);
		assert_one(&r, DKIM_RES_FAIL, cases[i].selector, NULL, cases[i].reason);
	}
}

/* RFC 6376 6.1.2 calls a missing or revoked key PERMFAIL: RFC 8601 "fail". */
/* RFC 8601 2.7.1: nothing verified, so permerror, not fail */
static void test_key_missing_or_revoked(void **state)
{
	struct rr_txt revoked = {.v = {"v=DKIM1; k=rsa; p="}, .n = 1};
	struct result r;
	int turns;

	inject_status(E.cache, "missing", DNS_NXDOMAIN);
	verify_msg(E.lc, "nokey", 0, &r, &turns);
	assert_one(&r, DKIM_RES_PERMERROR, "missing", NULL, "no key");

	inject_status(E.cache, "missing", DNS_NODATA);
	verify_msg(E.lc, "nokey", 0, &r, &turns);
	assert_one(&r, DKIM_RES_PERMERROR, "missing", NULL, "no key");

	/* a reply said OK that holds no TXT record (say, a CNAME to nothing) */
	inject_txt(E.cache, "missing", &(struct rr_txt){.n = 0});
	verify_msg(E.lc, "nokey", 0, &r, &turns);
	assert_one(&r, DKIM_RES_PERMERROR, "missing", NULL, "no key");

	inject_txt(E.cache, "revoked", &revoked);
	verify_msg(E.lc, "revoked", 0, &r, &turns);
	assert_one(&r, DKIM_RES_PERMERROR, "revoked", NULL, "key revoked");
}

static void test_key_tempfail(void **state)
{
	struct result r;
	int turns;

	inject_status(E.cache, "servfail", DNS_TEMPFAIL);
	verify_msg(E.lc, "servfail", 0, &r, &turns);
	assert_int_equal(turns, 1);
	assert_one(&r, DKIM_RES_TEMPERROR, "servfail", NULL, "key lookup failed");
}

/* Two TXT records under one selector: RFC 6376 3.6.2.2 leaves it undefined;
 * the zone must be fixed, a retry will not help. */
static void test_key_multiple_records(void **state)
{
	struct rr_txt two = {.v = {key_txt("rsa2048"), key_txt("rsa2048")}, .n = 2};
	struct result r;
	int turns;

	inject_txt(E.cache, "multi", &two);
	verify_msg(E.lc, "multi", 0, &r, &turns);
	assert_one(&r, DKIM_RES_PERMERROR, "multi", NULL, "more than one key record");
}

/* A key split in 60-byte character-strings is one record. */
static void test_key_split_strings(void **state)
{
	struct rr_txt t = {.v = {key_txt("rsa2048")}, .n = 1, .split = 60};
	struct result r;
	int turns;

	inject_txt(E.cache, "rsa2048", &t);
	verify_msg(E.lc, "rr_rsa", 0, &r, &turns);
	assert_one(&r, DKIM_RES_PASS, "rsa2048", NULL, "");
}

/* A character-string longer than its record is not handed to the library. */
static void test_key_corrupt_reply(void **state)
{
	struct rr_txt t = {.v = {"v=DKIM1; k=rsa; p=AAAA"}, .n = 1};
	unsigned char buf[512];
	size_t n = build_reply(buf, sizeof buf, 0, 0, "rsa2048._domainkey.example.org", NULL, 0, &t);
	struct result r;
	int turns;

	buf[n - strlen(t.v[0]) - 1] = 200; /* the string's length byte */
	assert_int_equal(dns_inject(E.cache, "rsa2048._domainkey.example.org", ns_t_txt, DNS_OK,
	                            buf, (int)n, 3600), 0);
	verify_msg(E.lc, "rr_rsa", 0, &r, &turns);
	assert_one(&r, DKIM_RES_TEMPERROR, "rsa2048", NULL, "key lookup failed");
}

/* A key record that is not one: permerror, not fail. */
static void test_key_malformed(void **state)
{
	struct rr_txt t = {.v = {"v=DKIM1; k=rsa; p=@@@not-base64@@@"}, .n = 1};
	struct result r;
	int turns;

	inject_txt(E.cache, "rsa2048", &t);
	verify_msg(E.lc, "rr_rsa", 0, &r, &turns);
	assert_int_equal(r.o.nsigs, 1);
	assert_int_equal(r.o.sig[0].res, DKIM_RES_PERMERROR);
}

/* t=y: a failing signature by a key in test mode is treated like none. */
static void test_key_testing_mode(void **state)
{
	char txt[1100];
	struct rr_txt t = {.v = {txt}, .n = 1};
	struct result r;
	int turns;

	snprintf(txt, sizeof txt, "%s; t=y", key_txt("rsa2048"));
	inject_txt(E.cache, "rsa2048", &t);
	verify_msg(E.lc, "header_tampered", 0, &r, &turns);
	assert_one(&r, DKIM_RES_NEUTRAL, "rsa2048", NULL, "bad signature, key in test mode (t=y)");
	verify_msg(E.lc, "rr_rsa", 0, &r, &turns);
	assert_one(&r, DKIM_RES_PASS, "rsa2048", NULL, "");
}

/* Signatures we cannot fetch a key for, by their own fault. */
static void test_unfetchable_keys(void **state)
{
	static const char q[] =
		"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=rsa2048; q=nope; h=from;"
		" bh=AAAA; b=AAAAAAAAAAAA\r\nFrom: a@example.org\r\n\r\nbody\r\n";
	char longsel[600];
	struct memmsg m = {q, strlen(q), 0, 0};
	struct result r;
	int turns;

	inject_key(E.cache, "rsa2048");
	run(E.lc, &m, &r, &turns);
	assert_one(&r, DKIM_RES_PERMERROR, "rsa2048", NULL, "no dns/txt query method");

	snprintf(longsel, sizeof longsel,
	         "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=%0250d; h=from; bh=AAAA;"
	         " b=AAAAAAAAAAAA\r\nFrom: a@example.org\r\n\r\nbody\r\n", 7);
	m = (struct memmsg){longsel, strlen(longsel), 0, 0};
	run(E.lc, &m, &r, &turns);
	assert_int_equal(r.o.nsigs, 1);
	assert_string_equal(r.o.sig[0].reason, "bad key name");
	assert_int_equal(r.o.summary, DKIM_RES_PERMERROR);
	assert_int_equal(zqueries, 0);
}

static void test_two_sigs_one_bad(void **state)
{
	struct result r;
	size_t len;
	char *msg = load_msg("two_sigs", &len);
	char b0[9], b1[9];
	int turns;

	inject_key(E.cache, "rsa2048");
	inject_key(E.cache, "wrongkey");
	verify_msg(E.lc, "two_sigs", 0, &r, &turns);
	assert_int_equal(r.o.nsigs, 2);
	/* header order: the outer (last added) signature first */
	assert_string_equal(r.o.sig[0].selector, "wrongkey");
	assert_int_equal(r.o.sig[0].res, DKIM_RES_FAIL);
	assert_string_equal(r.o.sig[0].reason, "bad signature");
	assert_string_equal(r.o.sig[1].selector, "rsa2048");
	assert_int_equal(r.o.sig[1].res, DKIM_RES_PASS);
	assert_int_equal(r.o.summary, DKIM_RES_PASS);
	expected_b(msg, 0, b0);
	expected_b(msg, 1, b1);
	assert_string_equal(r.o.sig[0].b, b0);
	assert_string_equal(r.o.sig[1].b, b1);
	free(msg);
}

static void test_unsigned(void **state)
{
	struct result r;
	int turns;

	verify_msg(E.lc, "unsigned", 0, &r, &turns);
	assert_int_equal(turns, 1);
	assert_int_equal(r.o.nsigs, 0);
	assert_int_equal(r.o.summary, DKIM_RES_NONE);
	assert_int_equal(zqueries, 0);
}

/* RFC 8301: rsa-sha1 is not accepted, even when it verifies. */
static void test_rsa_sha1_not_accepted(void **state)
{
	struct result r;
	int turns;

	inject_key(E.cache, "sha1");
	verify_msg(E.lc, "sha1", 0, &r, &turns);
	assert_one(&r, DKIM_RES_NEUTRAL, "sha1", "rsa-sha1", NULL);
}

static void test_malformed_signature(void **state)
{
	struct result r;
	int turns;

	inject_key(E.cache, "rsa2048");
	verify_msg(E.lc, "malformed", 0, &r, &turns);
	assert_one(&r, DKIM_RES_PERMERROR, "rsa2048", NULL, NULL);

	verify_msg(E.lc, "malformed_plus_good", 0, &r, &turns);
	assert_int_equal(r.o.nsigs, 2);
	assert_int_equal(r.o.sig[0].res, DKIM_RES_PERMERROR);
	assert_int_equal(r.o.sig[1].res, DKIM_RES_PASS);
	assert_int_equal(r.o.summary, DKIM_RES_PASS);
}

/* Ten signatures by one key: eight verified, one lookup, distinct header.b. */
static void test_many_signatures(void **state)
{
	struct result r;
	int turns, i, j;
	unsigned long h0, m0, h1, m1;

	zone_add("rsa2048", Z_TXT, key_txt("rsa2048"));
	/* libopendkim's key decoding reaches the cache in this binary */
	assert_true(dkim_keycache_active());
	dkim_keycache_stats(&h0, &m0);
	verify_msg(E.ln, "many_sigs", 0, &r, &turns);
	/* Eight signatures by one key: decoded at most once, reused after. */
	dkim_keycache_stats(&h1, &m1);
	assert_true(m1 - m0 <= 1);
	assert_true(h1 - h0 >= DKIM_MAX_SIGS - 1);
	assert_true(turns > 1); /* from the network */
	assert_int_equal(zqueries, 1);
	assert_int_equal(r.o.nsigs, DKIM_MAX_SIGS);
	assert_int_equal(r.o.nextra, 2);
	for (i = 0; i < r.o.nsigs; i++) {
		assert_int_equal(r.o.sig[i].res, DKIM_RES_PASS);
		assert_true(strlen(r.o.sig[i].b) >= 8);
		for (j = 0; j < i; j++)
			assert_string_not_equal(r.o.sig[i].b, r.o.sig[j].b);
	}
	assert_int_equal(r.o.summary, DKIM_RES_PASS);
}

/* Keys that arrive later, through c-ares and the loop. */
static void test_async_answers(void **state)
{
	struct result r;
	int turns;

	zone_add("rsa2048", Z_TXT, key_txt("rsa2048"));
	zone_add("ed", Z_TXT, key_txt("ed"));
	zone_add("wrongkey", Z_TXT, key_txt("wrongkey"));
	zone_add("missing", Z_NXDOMAIN, NULL);
	zone_add("servfail", Z_SERVFAIL, NULL);

	verify_msg(E.ln, "rr_rsa", 0, &r, &turns);
	assert_true(turns > 1); /* from the network */
	assert_one(&r, DKIM_RES_PASS, "rsa2048", "rsa-sha256", "");

	verify_msg(E.ln, "ed25519", 5, &r, &turns);
	assert_true(turns > 1); /* from the network */
	assert_one(&r, DKIM_RES_PASS, "ed", "ed25519-sha256", "");

	verify_msg(E.ln, "body_tampered", 0, &r, &turns);
	assert_one(&r, DKIM_RES_FAIL, "rsa2048", NULL, "body hash mismatch");

	verify_msg(E.ln, "two_sigs", 0, &r, &turns);
	assert_true(turns > 1); /* from the network */
	assert_int_equal(r.o.nsigs, 2);
	assert_int_equal(r.o.sig[0].res, DKIM_RES_FAIL);
	assert_int_equal(r.o.sig[1].res, DKIM_RES_PASS);

	verify_msg(E.ln, "nokey", 0, &r, &turns);
	assert_one(&r, DKIM_RES_PERMERROR, "missing", NULL, "no key");

	verify_msg(E.ln, "servfail", 0, &r, &turns);
	assert_one(&r, DKIM_RES_TEMPERROR, "servfail", NULL, "key lookup failed");
}

/* A server that never answers: our cap (500 ms) ends the wait before the
 * DNS layer's (2000 ms). */
static void test_wait_cap(void **state)
{
	struct result r;
	int turns;

	zone_add("rsa2048", Z_DROP, NULL);
	verify_msg(E.ln, "rr_rsa", 0, &r, &turns);
	assert_true(turns > 1); /* from the network */
	assert_one(&r, DKIM_RES_TEMPERROR, "rsa2048", NULL, "key lookup timed out");
}

/* Without a cap, the DNS layer's timeout gives the same temperror. */
static void test_dns_timeout(void **state)
{
	char servers[64];
	struct dns_options o = {.timeout_ms = 200, .tries = 1, .cache_max = 0};
	struct dns *d;
	struct dkim_verifier *l;
	struct result r;
	int turns;

	snprintf(servers, sizeof servers, "127.0.0.1:%u", zport);
	o.servers = servers;
	d = dns_new(base, &o);
	assert_non_null(d);
	l = dkim_verifier_new(d);
	assert_non_null(l);
	zone_add("rsa2048", Z_DROP, NULL);
	verify_msg(l, "rr_rsa", 0, &r, &turns);
	assert_true(turns > 1); /* from the network */
	assert_one(&r, DKIM_RES_TEMPERROR, "rsa2048", NULL, "key lookup failed");
	dkim_verifier_free(l);
	dns_free(d);
}

static int cancelled_calls;

static void on_cancelled(void *arg, const struct dkim_outcome *o)
{
	cancelled_calls++;
}

/* A cancelled check never calls back, and frees all it holds. */
static void test_cancel(void **state)
{
	size_t len;
	char *msg = load_msg("two_sigs", &len);
	struct memmsg m = {msg, len, 0, 0};
	struct dkim_check *c;
	struct timeval tv = {0, 300 * 1000};

	zone_add("rsa2048", Z_TXT, key_txt("rsa2048"));
	zone_add("wrongkey", Z_DROP, NULL);
	c = dkim_check_start(E.ln, NULL, mem_read, &m, len, on_cancelled, NULL);
	assert_non_null(c);
	event_base_loopexit(base, &tv); /* rsa2048 answered, wrongkey not */
	event_base_dispatch(base);
	assert_int_equal(cancelled_calls, 0);
	dkim_check_cancel(c);
	tv.tv_usec = 700 * 1000; /* past the wait cap */
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	assert_int_equal(cancelled_calls, 0);
	free(msg);
}

static void test_read_error(void **state)
{
	size_t len;
	char *msg = load_msg("rr_rsa", &len);
	struct memmsg m = {msg, len, 100, 50};
	struct result r;
	int turns;

	run(E.lc, &m, &r, &turns);
	assert_int_equal(turns, 1);
	assert_int_equal(r.o.summary, DKIM_RES_TEMPERROR);
	/* an error in the body, after the keys */
	inject_key(E.cache, "rsa2048");
	m.fail = (int)len - 10;
	run(E.lc, &m, &r, &turns);
	assert_int_equal(r.o.summary, DKIM_RES_TEMPERROR);
	free(msg);
}

/* A header section over DKIM_HEADER_MAX is not verified. */
static void test_header_too_large(void **state)
{
	size_t len, i, hlen;
	char *msg = load_msg("rr_rsa", &len);
	size_t pad = DKIM_HEADER_MAX + 1000;
	char *big = malloc(len + pad), *body;
	struct memmsg m;
	struct result r;
	int turns;

	inject_key(E.cache, "rsa2048");
	body = strstr(msg, "\r\n\r\n");
	assert_non_null(body);
	/* the signature and the other fields, many X- fields, then the rest */
	hlen = (size_t)(body - msg) + 2;
	memcpy(big, msg, hlen);
	for (i = hlen; i + 13 <= hlen + pad; i += 13)
		memcpy(big + i, "X-Pad: 1234\r\n", 13);
	memcpy(big + i, body + 2, len - hlen);
	m = (struct memmsg){big, i + len - hlen, 0, 0};
	run(E.lc, &m, &r, &turns);
	assert_int_equal(r.o.nsigs, 0);
	assert_int_equal(r.o.summary, DKIM_RES_PERMERROR);

	/* unsigned: nothing to say */
	memcpy(big, "X-Pad: 1234\r\n", 13);
	run(E.lc, &m, &r, &turns);
	assert_int_equal(r.o.summary, DKIM_RES_NONE);
	free(big);
	free(msg);
}

/* Odd shapes of message. */
static void test_odd_messages(void **state)
{
	static const char *const msgs[] = {
		"",
		"\r\n",
		"\r\nbody only\r\n",
		"From: a@example.org\r\n",                       /* no body */
		"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=x; h=from; bh=; b=\r\n\r\nx\r\n",
		" continuation first\r\nFrom: a@example.org\r\n\r\n",
		"no colon here\r\n\r\nbody\r\n",
		"DKIM-Signature:\r\n\r\n",
		"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=rsa2048; q=nope; h=from;"
		" bh=AAAA; b=AAAA\r\nFrom: a@example.org\r\n\r\n",
	};
	size_t i;

	for (i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
		struct memmsg m = {msgs[i], strlen(msgs[i]), 0, 0};
		struct result r;
		int turns;

		run(E.lc, &m, &r, &turns);
		assert_true(r.o.summary != DKIM_RES_PASS);
		if (strncmp(msgs[i], "DKIM-Signature", 14) != 0)
			assert_int_equal(r.o.summary, DKIM_RES_NONE);
		else
			assert_int_equal(r.o.nsigs, 1);
	}
}

/* Every check above got its keys from checks/dns.c... */
static void test_no_blocking_resolver(void **state)
{
	assert_int_equal(resolver_calls, 0);
}

/* ...while a plain DKIM_LIB does reach the interposed resolver: the test
 * above would see it. */
static void test_resolver_guard_works(void **state)
{
	DKIM_LIB *lib = dkim_init(NULL, NULL);
	DKIM_STAT st;
	DKIM *d;
	size_t len;
	char *msg = load_msg("rr_rsa", &len); /* no dot lines: wire form is content */

	assert_null(strstr(msg, "\r\n."));
	d = dkim_verify(lib, (const unsigned char *)"guard", NULL, &st);
	assert_non_null(d);
	dkim_chunk(d, (unsigned char *)msg, len);
	dkim_chunk(d, NULL, 0);
	dkim_eom(d, NULL);
	assert_true(resolver_calls > 0);
	dkim_free(d);
	dkim_close(lib);
	free(msg);
}

static void test_res_names(void **state)
{
	assert_string_equal(dkim_res_name(DKIM_RES_NONE), "none");
	assert_string_equal(dkim_res_name(DKIM_RES_PASS), "pass");
	assert_string_equal(dkim_res_name(DKIM_RES_FAIL), "fail");
	assert_string_equal(dkim_res_name(DKIM_RES_NEUTRAL), "neutral");
	assert_string_equal(dkim_res_name(DKIM_RES_TEMPERROR), "temperror");
	assert_string_equal(dkim_res_name(DKIM_RES_PERMERROR), "permerror");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ed25519_feature),
		cmocka_unit_test(test_res_names),
		cmocka_unit_test_setup(test_pass_matrix, reset),
		cmocka_unit_test(test_dotstuff_fixture),
		cmocka_unit_test_setup(test_fail_matrix, reset),
		cmocka_unit_test_setup(test_key_missing_or_revoked, reset),
		cmocka_unit_test_setup(test_key_tempfail, reset),
		cmocka_unit_test_setup(test_key_multiple_records, reset),
		cmocka_unit_test_setup(test_key_split_strings, reset),
		cmocka_unit_test_setup(test_key_corrupt_reply, reset),
		cmocka_unit_test_setup(test_key_malformed, reset),
		cmocka_unit_test_setup(test_key_testing_mode, reset),
		cmocka_unit_test_setup(test_unfetchable_keys, reset),
		cmocka_unit_test_setup(test_two_sigs_one_bad, reset),
		cmocka_unit_test_setup(test_unsigned, reset),
		cmocka_unit_test_setup(test_rsa_sha1_not_accepted, reset),
		cmocka_unit_test_setup(test_malformed_signature, reset),
		cmocka_unit_test_setup(test_many_signatures, reset),
		cmocka_unit_test_setup(test_async_answers, reset),
		cmocka_unit_test_setup(test_wait_cap, reset),
		cmocka_unit_test_setup(test_dns_timeout, reset),
		cmocka_unit_test_setup(test_cancel, reset),
		cmocka_unit_test_setup(test_read_error, reset),
		cmocka_unit_test_setup(test_header_too_large, reset),
		cmocka_unit_test_setup(test_odd_messages, reset),
		cmocka_unit_test(test_no_blocking_resolver),
		cmocka_unit_test(test_resolver_guard_works),
	};

	if (make_fixtures(argc > 0 ? argv[0] : "./test_dkim") < 0)
		return 1;
	return cmocka_run_group_tests(tests, setup, teardown);
}
