/* fuzz_dkim.c - libFuzzer harness for the DKIM verifier (checks/dkim.c + libopendkim)
 *
 *   make fuzz-build; build/fuzz/fuzz_dkim -max_total_time=60 WORKDIR (a copy of tests/fuzz/corpus/dkim)
 *
 * Input: byte 0 is the largest read the reader gives (0: as much as asked),
 * the rest is a message in SMTP wire form, as the spool holds it. Keys for
 * d=example.org are in the DNS cache: s=rsa (RSA-1024) and s=ed (Ed25519)
 * sign the seeds; s=revoked, s=nx (NXDOMAIN), s=nodata, s=tf (TEMPFAIL),
 * s=multi (two records), s=bad (not a key) and s=split (the RSA key in
 * 7-byte strings) cover the key paths. Any other key name goes out to a
 * server that is never polled: such a check is cancelled after one loop
 * turn, which covers dkim_check_cancel. FUZZ_DKIM_VERBOSE=1 prints each
 * outcome.
 *
 * Checked (abort on violation): the callback never runs before start
 * returns, and exactly once in the next loop turn when no key is missing;
 * nsigs is within bounds; every string is terminated; the summary follows
 * the per-signature results.
 */
#include <arpa/nameser.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "checks/dkim.h"
#include "checks/dns.h"

static const char rsa_key[] =
	"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDm9Cx4cQq7XY4cBv6RM714G0+JP31U6Pvv"
	"IkXgS+T6EuVLuieH3NcSpZQqK9CpYJqFupx97egOTLB16c5oib4TvRTGXZyAra3uA+gwIUIO3+npbDkko+kKko3C"
	"eO9Qffnr16jCfr9KHWswlwXenBqQA3DugnfydfjelpCXuowxgQIDAQAB";
static const char ed_key[] = "v=DKIM1; k=ed25519; p=tCKyfh73MXVPBmSleeM+eINAGVkcn11UKTIU4TASuFI=";

static struct event_base *base;
static struct dns *dns;
static struct dkim_verifier *lib;
static int verbose;

static size_t put_txt(unsigned char *p, const char *name, const char *const *v, int n, size_t split)
{
	size_t o = 12;
	int i;

	memset(p, 0, 12);
	p[2] = 0x81, p[3] = 0x80, p[5] = 1, p[7] = (unsigned char)n;
	while (*name) {
		const char *dot = strchr(name, '.');
		size_t l = dot ? (size_t)(dot - name) : strlen(name);

		p[o++] = (unsigned char)l;
		memcpy(p + o, name, l);
		o += l;
		name += l + (dot ? 1 : 0);
	}
	p[o++] = 0, p[o++] = 0, p[o++] = ns_t_txt, p[o++] = 0, p[o++] = ns_c_in;
	for (i = 0; i < n; i++) {
		const char *s = v[i];
		size_t len = strlen(s), rd = 0, at;

		p[o++] = 0xc0, p[o++] = 12, p[o++] = 0, p[o++] = ns_t_txt, p[o++] = 0, p[o++] = ns_c_in;
		p[o++] = 0, p[o++] = 1, p[o++] = 0, p[o++] = 0;
		at = o;
		o += 2;
		while (len) {
			size_t k = len < split ? len : split;

			p[o++] = (unsigned char)k;
			memcpy(p + o, s, k);
			o += k, s += k, len -= k, rd += k + 1;
		}
		p[at] = (unsigned char)(rd >> 8), p[at + 1] = (unsigned char)rd;
	}
	return o;
}

static void inject(const char *sel, enum dns_status st, const char *const *v, int n, size_t split)
{
	unsigned char buf[2048];
	char name[128];
	size_t len = 0;

	snprintf(name, sizeof name, "%s._domainkey.example.org", sel);
	if (st == DNS_OK)
		len = put_txt(buf, name, v, n, split);
	if (dns_inject(dns, name, ns_t_txt, st, st == DNS_OK ? buf : NULL, (int)len, 86400) != 0)
		abort();
}

static void init(void)
{
	static const char *const rsa[] = {rsa_key}, *const ed[] = {ed_key};
	static const char *const revoked[] = {"v=DKIM1; k=rsa; p="};
	static const char *const multi[] = {rsa_key, ed_key};
	static const char *const bad[] = {"v=DKIM2; k=dsa; p=!!"};
	struct dns_options o = {.servers = "127.0.0.1:9", .timeout_ms = 1000, .tries = 1,
	                        .cache_max = 100};

	base = event_base_new();
	dns = dns_new(base, &o);
	lib = dkim_verifier_new(dns);
	if (!base || !dns || !lib)
		abort();
	inject("rsa", DNS_OK, rsa, 1, 255);
	inject("ed", DNS_OK, ed, 1, 255);
	inject("split", DNS_OK, rsa, 1, 7);
	inject("revoked", DNS_OK, revoked, 1, 255);
	inject("multi", DNS_OK, multi, 2, 255);
	inject("bad", DNS_OK, bad, 1, 255);
	inject("nx", DNS_NXDOMAIN, NULL, 0, 0);
	inject("nodata", DNS_NODATA, NULL, 0, 0);
	inject("tf", DNS_TEMPFAIL, NULL, 0, 0);
	verbose = getenv("FUZZ_DKIM_VERBOSE") != NULL;
}

struct input {
	const uint8_t *p;
	size_t len, step;
};

static long reader(void *rarg, size_t off, char *buf, size_t len)
{
	struct input *in = rarg;

	if (off > in->len)
		abort(); /* the verifier asked past msglen */
	if (len > in->len - off)
		len = in->len - off;
	if (in->step && len > in->step)
		len = in->step;
	memcpy(buf, in->p + off, len);
	return (long)len;
}

static void terminated(const char *s, size_t size)
{
	if (!memchr(s, '\0', size))
		abort();
}

static void on_done(void *arg, const struct dkim_outcome *o)
{
	static const int rank[] = {
		[DKIM_RES_NONE] = 0, [DKIM_RES_NEUTRAL] = 1, [DKIM_RES_PERMERROR] = 2,
		[DKIM_RES_TEMPERROR] = 3, [DKIM_RES_FAIL] = 4, [DKIM_RES_PASS] = 5,
	};
	int *calls = arg, i, any[6] = {0};
	enum dkim_res want = DKIM_RES_NONE;

	if (++*calls != 1 || (unsigned)o->summary > DKIM_RES_PERMERROR || o->nsigs < 0 ||
	    o->nsigs > DKIM_MAX_SIGS || o->nextra < 0)
		abort();
	for (i = 0; i < o->nsigs; i++) {
		const struct dkim_sig_result *s = &o->sig[i];

		if ((unsigned)s->res > DKIM_RES_PERMERROR)
			abort();
		terminated(s->domain, sizeof s->domain);
		terminated(s->selector, sizeof s->selector);
		terminated(s->b, sizeof s->b);
		terminated(s->algo, sizeof s->algo);
		terminated(s->reason, sizeof s->reason);
		any[s->res] = 1;
		if (verbose)
			printf("sig %d: %s (%s) d=%s s=%s a=%s b=%s\n", i, dkim_res_name(s->res), s->reason,
			       s->domain, s->selector, s->algo, s->b);
	}
	if (verbose)
		printf("summary %s nsigs %d extra %d\n", dkim_res_name(o->summary), o->nsigs, o->nextra);
	if (o->nextra > 0)
		any[DKIM_RES_PERMERROR] = 1;
	if (any[DKIM_RES_PASS])
		want = DKIM_RES_PASS;
	else if (any[DKIM_RES_FAIL])
		want = DKIM_RES_FAIL;
	else if (any[DKIM_RES_TEMPERROR])
		want = DKIM_RES_TEMPERROR;
	else if (any[DKIM_RES_PERMERROR])
		want = DKIM_RES_PERMERROR;
	else if (any[DKIM_RES_NEUTRAL])
		want = DKIM_RES_NEUTRAL;
	/* a pass or fail decides; errors about the whole message may outrank
	 * the rest */
	if (rank[o->summary] < rank[want] || ((want == DKIM_RES_PASS || want == DKIM_RES_FAIL) &&
	                                      o->summary != want))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in;
	struct dkim_check *c;
	int calls = 0;

	if (!lib)
		init();
	if (size < 1)
		return 0;
	in.step = data[0];
	in.p = data + 1;
	in.len = size - 1;
	c = dkim_check_start(lib, NULL, reader, &in, in.len, on_done, &calls);
	if (calls != 0)
		abort(); /* never before dkim_check_start returns */
	if (!c)
		return 0; /* no memory to start */
	event_base_loop(base, EVLOOP_NONBLOCK); /* the cached keys: one turn */
	if (calls == 0)
		dkim_check_cancel(c); /* a key nobody has: never polled */
	return 0;
}
