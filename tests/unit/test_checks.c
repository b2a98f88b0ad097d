/* test_checks.c - checks/checks.c, the glue between a session and the
 * ruleset: it gathers each stage's facts, evaluates the config's rules and
 * turns the decision into one verdict (code, enhanced code, text, and the
 * rule file:line that decided), keeps the tag rules' header fields for the
 * right messages, reports every hit, and keeps the relay floor under any
 * ruleset.
 *
 * The configs come from config_parse() and the rules from
 * ruleset_load_text(). With check_env.dns and .dkim NULL the MAIL and DATA
 * checks are skipped: the verdicts that come through a callback come in one
 * loop turn, never before the call returns; the reverse DNS
 * cases use a resolver seeded with dns_inject() and pointed at a loopback
 * UDP socket nobody answers (no sleeps: the loop runs until the verdict,
 * with a deadline). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "checks/checks.h"
#include "checks/dkim.h"
#include "checks/rdns.h"
#include "checks/registry.h"
#include "checks/sender.h"
#include "checks/spf.h"
#include "proxy/config.h"
#include "checks/dns.h"
#include "tests/unit/dnsfix.h"
#include "rules/rules.h"
#include "proxy/lib/smtp_parse.h"

/* Table rows leave trailing fields out on purpose. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#define NROWS(a) (sizeof(a) / sizeof((a)[0]))

static const char base_conf[] =
	"local_domains = example.test\n"
	"trusted_networks = 10.0.0.0/8\n"
	"check_spf = no\n"
	"check_sender_domain = no\n"
	"check_dkim = no\n";

#define BUILTIN "built-in relay protection"

/* ---- fixtures: config, rules, hits, verdicts ---- */

/* The config above with a ruleset loaded from text (NULL: none at all). */
static struct config *make_cfg(const char *rules, const char *name, int monitor)
{
	char err[512] = "";
	struct config *cfg = config_parse(base_conf, strlen(base_conf), "moat.conf", err, sizeof err);

	if (!cfg)
		fail_msg("config_parse: %s", err);
	assert_null(cfg->ruleset);
	if (rules) {
		cfg->ruleset = ruleset_load_text(rules, strlen(rules), name ? name : "t.rules", checks_vocab(), err, sizeof err);
		if (!cfg->ruleset)
			fail_msg("ruleset_load_text: %s", err);
	}
	cfg->monitor = monitor;
	return cfg;
}

/* The line of text on which needle starts (1-based). */
static int line_of(const char *text, const char *needle)
{
	const char *p = strstr(text, needle);
	int line = 1;

	assert_non_null(p);
	for (const char *q = text; q < p; q++)
		line += *q == '\n';
	return line;
}

struct hitrec {
	char stage[16];
	enum rule_action action;
	int monitor, code, line;
	char text[RULES_TEXT_MAX];
	char reason[RULES_REASON_MAX];
	char rcpt[300];           /* "" when NULL */
};

struct hits {
	int n;
	struct hitrec h[32];
};

static void on_hit(void *arg, enum rule_stage stage, const struct rule_verdict *h, const char *rcpt)
{
	struct hits *hs = arg;
	struct hitrec *r;

	assert_true(stage < STAGE_COUNT);
	assert_true(hs->n < (int)NROWS(hs->h));
	r = &hs->h[hs->n++];
	snprintf(r->stage, sizeof r->stage, "%s", rules_stage_name(stage));
	r->action = h->action;
	r->monitor = h->monitor;
	r->code = h->code;
	r->line = h->line;
	snprintf(r->text, sizeof r->text, "%s", h->text);
	snprintf(r->reason, sizeof r->reason, "%s", h->reason);
	snprintf(r->rcpt, sizeof r->rcpt, "%s", rcpt ? rcpt : "");
}

static struct event_base *plain_loop; /* for checks without a resolver */
static struct event_base *loop;       /* the one the last new_checks used */

static struct checks *new_checks_on(struct event_base *base, struct config *cfg, struct dns *dns,
                                    const char *client, struct hits *hs)
{
	struct check_env env = { base, dns, NULL, NULL, on_hit, hs };
	struct sockaddr_storage ss;
	struct check_options opt;
	struct checks *c;

	config_check_options(cfg, &opt);
	c = checks_new(&opt, &env, addr(client, &ss));

	assert_non_null(c);
	loop = base;
	return c;
}

static struct checks *new_checks(struct config *cfg, struct dns *dns, const char *client, struct hits *hs)
{
	if (!plain_loop)
		plain_loop = event_base_new();
	assert_non_null(plain_loop);
	return new_checks_on(plain_loop, cfg, dns, client, hs);
}

struct vrec {
	int calls;
	struct verdict v; /* rule_file stays valid with the ruleset */
};

static void on_verdict(void *arg, const struct verdict *v)
{
	struct vrec *r = arg;

	r->calls++;
	r->v = *v;
}

/* A verdict through a callback: not before the call returned, then in
 * one loop turn (every check here answers at once). */
static void one_turn(struct vrec *r)
{
	assert_int_equal(r->calls, 0);
	event_base_loop(loop, EVLOOP_ONCE);
	assert_int_equal(r->calls, 1);
}

static struct verdict do_connect(struct checks *c)
{
	struct vrec r = { 0 };

	checks_connect(c, on_verdict, &r);
	one_turn(&r);
	return r.v;
}

static struct smtp_path path(const char *mailbox, int is_rcpt)
{
	char arg[600];
	struct smtp_path p;
	struct smtp_params ps;

	snprintf(arg, sizeof arg, "%s:<%s>", is_rcpt ? "TO" : "FROM", mailbox);
	if (smtp_parse_mail_rcpt(arg, is_rcpt, &p, &ps) != PATH_OK)
		fail_msg("smtp_parse_mail_rcpt(%s) failed", arg);
	return p;
}

/* What the reverse DNS check found, when it ran: 1 and *res, *name ("" unless RDNS_OK). */
static int checks_rdns(const struct checks *c, enum rdns_res *res, const char **name)
{
	const struct rdns_result *r = checks_result(c, &check_rdns);

	if (!r)
		return 0;
	*res = r->res;
	*name = r->res == RDNS_OK ? r->name : "";
	return 1;
}

static struct verdict do_mail(struct checks *c, const char *from)
{
	struct smtp_path p = path(from, 0);
	struct vrec r = { 0 };

	checks_mail(c, &p, on_verdict, &r);
	one_turn(&r);
	assert_true(checks_in_txn(c));
	return r.v;
}

/* RCPT, and the backend takes it when the checks let it through and accept. */
static struct verdict do_rcpt(struct checks *c, const char *to, int accept)
{
	struct smtp_path p = path(to, 1);
	struct verdict v;

	memset(&v, 0x5a, sizeof v); /* every field must be written */
	checks_rcpt(c, &p, &v);
	if (v.code == 0 && accept)
		checks_rcpt_accepted(c);
	return v;
}

/* A message in memory, read through the dkim_reader interface. */
struct mem {
	const char *p;
	size_t n;
	int reads;
};

static long mem_read(void *arg, size_t off, char *buf, size_t len)
{
	struct mem *m = arg;

	m->reads++;
	if (off >= m->n)
		return 0;
	if (len > m->n - off)
		len = m->n - off;
	memcpy(buf, m->p + off, len);
	return (long)len;
}

static void verdict_is(const char *what, const struct verdict *v, int code, const char *esc,
                       const char *text, const char *file, int line)
{
	if (v->code != code)
		fail_msg("%s: code %d, want %d (%s %s)", what, v->code, code, v->esc, v->text);
	if (code == 0)
		return;
	if (strcmp(v->esc, esc) != 0 || strcmp(v->text, text) != 0)
		fail_msg("%s: got \"%d %s %s\" want \"%d %s %s\"", what, v->code, v->esc, v->text, code,
		         esc, text);
	if (file && (!v->rule_file || strcmp(v->rule_file, file) != 0 || v->rule_line != line))
		fail_msg("%s: decided by %s:%d, want %s:%d", what, v->rule_file ? v->rule_file : "(null)",
		         v->rule_line, file, line);
}

/* ---- connect ---- */

static void test_connect(void **state)
{
	static const char rules[] =
		"# connect rules\n"
		"reject   client 192.0.2.0/24 \"554 5.7.1 blocked\"\n"
		"tempfail client 198.51.100.0/24\n"
		"reject   client 2001:db8:bad::/48 \"554 5.7.1 blocked %{client}\"\n";
	static const struct {
		const char *client;
		int code;
		const char *esc, *text, *reason;
		int line;
	} rows[] = {
		{ "192.0.2.7", 554, "5.7.1", "blocked", "client 192.0.2.0/24", 2 },
		/* an IPv4 client over IPv6 is matched as IPv4 */
		{ "::ffff:192.0.2.7", 554, "5.7.1", "blocked", "client 192.0.2.0/24", 2 },
		{ "198.51.100.9", 451, "4.7.1", "Try again later", "client 198.51.100.0/24", 3 },
		{ "2001:db8:bad::1", 554, "5.7.1", "blocked 2001:db8:bad::1", "client 2001:db8:bad::/48", 4 },
		{ "203.0.113.1", 0 },
		{ "2001:db8::1", 0 },
		{ "10.1.2.3", 0 },
	};
	struct config *cfg = make_cfg(rules, NULL, 0);

	for (size_t i = 0; i < NROWS(rows); i++) {
		struct hits hs = { 0 };
		struct checks *c = new_checks(cfg, NULL, rows[i].client, &hs);
		struct verdict v = do_connect(c);
		char what[64];
		enum rdns_res rr;
		const char *rn;

		snprintf(what, sizeof what, "row %zu (%s)", i, rows[i].client);
		verdict_is(what, &v, rows[i].code, rows[i].esc, rows[i].text, "t.rules", rows[i].line);
		if (rows[i].code) {
			assert_string_equal(v.reason, rows[i].reason);
		} else {
			assert_null(v.rule_file);
			assert_string_equal(v.esc, "");
			assert_string_equal(v.text, "");
		}
		assert_int_equal(hs.n, 0);
		/* no rule tests rdns (and there is no resolver): not looked up */
		assert_int_equal(checks_rdns(c, &rr, &rn), 0);
		assert_false(checks_in_txn(c));
		assert_string_equal(checks_tags(c), "");
		checks_free(c);
	}
	config_unref(cfg);
}

/* "client trusted" is the config's trusted_networks (a mapped IPv4 too). */
static void test_trusted_fact(void **state)
{
	static const struct {
		const char *client, *tags;
	} rows[] = {
		{ "10.1.2.3", "X-Trusted: 10.1.2.3\r\n" },
		{ "::ffff:10.1.2.3", "X-Trusted: 10.1.2.3\r\n" },
		{ "192.0.2.7", "" },
		{ "11.0.0.1", "" },
		{ "2001:db8::1", "" },
	};
	struct config *cfg = make_cfg("tag client trusted header \"X-Trusted: %{client}\"\n", NULL, 0);

	for (size_t i = 0; i < NROWS(rows); i++) {
		struct hits hs = { 0 };
		struct checks *c = new_checks(cfg, NULL, rows[i].client, &hs);

		assert_int_equal(do_connect(c).code, 0);
		if (strcmp(checks_tags(c), rows[i].tags) != 0)
			fail_msg("row %zu (%s): tags \"%s\"", i, rows[i].client, checks_tags(c));
		assert_int_equal(hs.n, rows[i].tags[0] != '\0');
		checks_free(c);
	}
	config_unref(cfg);
}

/* Without a ruleset every stage goes on; only the relay floor remains. */
static void test_no_ruleset(void **state)
{
	struct config *cfg = make_cfg(NULL, NULL, 0);
	struct hits hs = { 0 };
	struct checks *c = new_checks(cfg, NULL, "192.0.2.7", &hs);
	struct verdict v;
	struct vrec r = { 0 };
	struct mem m = { "Subject: x\r\n\r\nbody\r\n", 20 };

	v = do_connect(c);
	assert_int_equal(v.code, 0);
	checks_helo(c, "localhost", &v);
	assert_int_equal(v.code, 0);
	v = do_mail(c, "a@example.org");
	assert_int_equal(v.code, 0);
	v = do_rcpt(c, "bob@example.test", 1);
	assert_int_equal(v.code, 0);
	v = do_rcpt(c, "x@foreign.example", 0);
	verdict_is("foreign", &v, 554, "5.7.1", "<x@foreign.example>: Relay access denied", BUILTIN, 0);
	checks_data(c, mem_read, &m, m.n, on_verdict, &r);
	one_turn(&r);
	assert_int_equal(r.v.code, 0);
	assert_int_equal(m.reads, 0); /* no rule tests a header: not read */
	assert_int_equal(hs.n, 0);
	checks_free(c);
	config_unref(cfg);
}

/* ---- HELO ---- */

static void test_helo(void **state)
{
	static const char rules[] =
		"reject helo /^localhost$/ \"550 5.7.1 no localhost\"\n"
		"reject helo /\\.invalid$/ \"550 5.7.1 bad helo %{helo}\"\n";
	static const struct {
		const char *helo;
		int code;
		const char *text;
		int line;
	} rows[] = {
		{ "localhost", 550, "no localhost", 1 },
		{ "LocalHost", 550, "no localhost", 1 }, /* case does not matter */
		{ "localhost.example.org", 0 },
		{ "mail.example.org", 0 },
		{ "host.invalid", 550, "bad helo host.invalid", 2 },
		{ "host.invalid.example", 0 },
		{ "[192.0.2.1]", 0 },
	};
	struct config *cfg = make_cfg(rules, NULL, 0);

	for (size_t i = 0; i < NROWS(rows); i++) {
		struct hits hs = { 0 };
		struct checks *c = new_checks(cfg, NULL, "192.0.2.7", &hs);
		struct verdict v = do_connect(c);
		char what[64];

		assert_int_equal(v.code, 0);
		memset(&v, 0x5a, sizeof v);
		checks_helo(c, rows[i].helo, &v);
		snprintf(what, sizeof what, "row %zu (%s)", i, rows[i].helo);
		verdict_is(what, &v, rows[i].code, "5.7.1", rows[i].text, "t.rules", rows[i].line);
		if (!rows[i].code)
			assert_null(v.rule_file);
		checks_free(c);
	}
	config_unref(cfg);
}

/* HELO resets the transaction (RFC 5321 4.1.4) and replaces the name the
 * later rules see. */
static void test_helo_resets(void **state)
{
	static const char rules[] = "reject helo bad.example and sender @example.org \"550 5.7.1 no\"\n";
	struct config *cfg = make_cfg(rules, NULL, 0);
	struct hits hs = { 0 };
	struct checks *c = new_checks(cfg, NULL, "192.0.2.7", &hs);
	struct verdict v;

	checks_helo(c, "bad.example", &v);
	assert_int_equal(v.code, 0);
	v = do_mail(c, "a@example.org");
	verdict_is("bad helo", &v, 550, "5.7.1", "no", "t.rules", 1);
	v = do_rcpt(c, "bob@example.test", 1);
	checks_helo(c, "good.example", &v);
	assert_int_equal(v.code, 0);
	assert_false(checks_in_txn(c));
	v = do_mail(c, "a@example.org");
	assert_int_equal(v.code, 0);
	checks_free(c);
	config_unref(cfg);
}

/* ---- RCPT: relaying, with and without the rules that say so ---- */

enum rules_kind { R_DEFAULT, R_NO_RELAY_RULES, R_TEMPFAIL, R_OWN_5XX, R_NONE };

static void test_relay(void **state)
{
	static const char *const texts[] = {
		[R_DEFAULT] = NULL, /* rules_default_text */
		/* no relay rules at all, and an accept for everyone on top */
		[R_NO_RELAY_RULES] = "accept client 0.0.0.0/0\n"
		                     "reject rcpt-domain foreign.example \"550 5.7.1 unreachable\"\n",
		/* a relay rule that only tempfails */
		[R_TEMPFAIL] = "tempfail relay denied \"451 4.7.1 later\"\n",
		[R_OWN_5XX] = "\n"
		              "reject rcpt-domain foreign.example \"550 5.7.1 not here\"\n",
		[R_NONE] = NULL,
	};
	static const struct {
		enum rules_kind kind;
		int monitor;
		const char *client, *rcpt;
		int code;
		const char *esc, *text;
		const char *file; /* "default.rules": the line of `marker` in it */
		const char *marker;
		int line;
		const char *auth; /* the login name of an authenticated client */
	} rows[] = {
		/* the default rules decide, with their texts */
		{ R_DEFAULT, 0, "192.0.2.7", "x@foreign.example", 554, "5.7.1",
		  "<x@foreign.example>: Relay access denied", "default.rules", "reject  relay denied" },
		{ R_DEFAULT, 0, "192.0.2.7", "a%b@example.test", 553, "5.7.1",
		  "<a%b@example.test>: source routing and %/! addressing are not allowed", "default.rules",
		  "reject  relay routing" },
		{ R_DEFAULT, 0, "192.0.2.7", "bob@example.test", 0 },
		{ R_DEFAULT, 0, "192.0.2.7", "bob@EXAMPLE.Test", 0 },
		{ R_DEFAULT, 0, "192.0.2.7", "x@sub.example.test", 554, "5.7.1",
		  "<x@sub.example.test>: Relay access denied", "default.rules", "reject  relay denied" },
		{ R_DEFAULT, 0, "192.0.2.7", "Postmaster", 0 },
		{ R_DEFAULT, 0, "10.1.2.3", "x@foreign.example", 0 },
		/* routing tricks are refused even for trusted clients */
		{ R_DEFAULT, 0, "10.1.2.3", "a%b@example.test", 553, "5.7.1",
		  "<a%b@example.test>: source routing and %/! addressing are not allowed", "default.rules",
		  "reject  relay routing" },
		/* monitor mode holds the rules back, never the floor */
		{ R_DEFAULT, 1, "192.0.2.7", "x@foreign.example", 554, "5.7.1",
		  "<x@foreign.example>: Relay access denied", BUILTIN },
		{ R_DEFAULT, 1, "192.0.2.7", "a%b@example.test", 553, "5.7.1",
		  "<a%b@example.test>: source routing and %/! addressing are not allowed", BUILTIN },
		{ R_DEFAULT, 1, "192.0.2.7", "bob@example.test", 0 },
		{ R_DEFAULT, 1, "10.1.2.3", "x@foreign.example", 0 },
		/* no relay rules, "accept client 0.0.0.0/0" on top: the floor */
		{ R_NO_RELAY_RULES, 0, "192.0.2.7", "x@foreign.example", 554, "5.7.1",
		  "<x@foreign.example>: Relay access denied", BUILTIN },
		{ R_NO_RELAY_RULES, 0, "192.0.2.7", "a%b@example.test", 553, "5.7.1",
		  "<a%b@example.test>: source routing and %/! addressing are not allowed", BUILTIN },
		{ R_NO_RELAY_RULES, 0, "192.0.2.7", "a!b@example.test", 553, "5.7.1",
		  "<a!b@example.test>: source routing and %/! addressing are not allowed", BUILTIN },
		{ R_NO_RELAY_RULES, 0, "192.0.2.7", "bob@example.test", 0 },
		{ R_NO_RELAY_RULES, 0, "10.1.2.3", "x@foreign.example", 0 },
		{ R_NO_RELAY_RULES, 0, "10.1.2.3", "a%b@example.test", 553, "5.7.1",
		  "<a%b@example.test>: source routing and %/! addressing are not allowed", BUILTIN },
		{ R_NO_RELAY_RULES, 1, "192.0.2.7", "x@foreign.example", 554, "5.7.1",
		  "<x@foreign.example>: Relay access denied", BUILTIN },
		{ R_NO_RELAY_RULES, 1, "192.0.2.7", "a%b@example.test", 553, "5.7.1",
		  "<a%b@example.test>: source routing and %/! addressing are not allowed", BUILTIN },
		{ R_NO_RELAY_RULES, 1, "192.0.2.7", "bob@example.test", 0 },
		/* a 4xx does not let a relay attempt through: the floor's 5xx */
		{ R_TEMPFAIL, 0, "192.0.2.7", "x@foreign.example", 554, "5.7.1",
		  "<x@foreign.example>: Relay access denied", BUILTIN },
		{ R_TEMPFAIL, 0, "192.0.2.7", "bob@example.test", 0 },
		/* a rule's own 5xx stands */
		{ R_OWN_5XX, 0, "192.0.2.7", "x@foreign.example", 550, "5.7.1", "not here", "t.rules",
		  NULL, 2 },
		{ R_OWN_5XX, 0, "192.0.2.7", "x@other.example", 554, "5.7.1",
		  "<x@other.example>: Relay access denied", BUILTIN },
		{ R_OWN_5XX, 1, "192.0.2.7", "x@foreign.example", 554, "5.7.1",
		  "<x@foreign.example>: Relay access denied", BUILTIN },
		/* no ruleset at all */
		{ R_NONE, 0, "192.0.2.7", "x@foreign.example", 554, "5.7.1",
		  "<x@foreign.example>: Relay access denied", BUILTIN },
		{ R_NONE, 0, "192.0.2.7", "a%b@example.test", 553, "5.7.1",
		  "<a%b@example.test>: source routing and %/! addressing are not allowed", BUILTIN },
		{ R_NONE, 0, "192.0.2.7", "bob@example.test", 0 },
		{ R_NONE, 0, "10.1.2.3", "x@foreign.example", 0 },
		/* an authenticated client relays (RFC 6409), whatever the rules;
		 * routing tricks stay refused */
		{ R_DEFAULT, 0, "192.0.2.7", "x@foreign.example", 0, NULL, NULL, NULL, NULL, 0, "alice" },
		{ R_DEFAULT, 1, "192.0.2.7", "x@foreign.example", 0, NULL, NULL, NULL, NULL, 0, "alice" },
		{ R_NO_RELAY_RULES, 0, "192.0.2.7", "x@other.example", 0, NULL, NULL, NULL, NULL, 0, "alice" },
		{ R_TEMPFAIL, 0, "192.0.2.7", "x@foreign.example", 0, NULL, NULL, NULL, NULL, 0, "alice" },
		{ R_NONE, 0, "192.0.2.7", "x@foreign.example", 0, NULL, NULL, NULL, NULL, 0, "alice" },
		{ R_DEFAULT, 0, "192.0.2.7", "a%b@example.test", 553, "5.7.1",
		  "<a%b@example.test>: source routing and %/! addressing are not allowed", "default.rules",
		  "reject  relay routing", 0, "alice" },
		{ R_NONE, 0, "192.0.2.7", "a!b@example.test", 553, "5.7.1",
		  "<a!b@example.test>: source routing and %/! addressing are not allowed", BUILTIN, NULL, 0, "alice" },
	};

	for (size_t i = 0; i < NROWS(rows); i++) {
		enum rules_kind k = rows[i].kind;
		const char *text = k == R_DEFAULT ? rules_default_text : texts[k];
		struct config *cfg = make_cfg(text, k == R_DEFAULT ? "default.rules" : "t.rules", rows[i].monitor);
		struct hits hs = { 0 };
		struct checks *c = new_checks(cfg, NULL, rows[i].client, &hs);
		struct verdict v;
		char what[128];
		int line = rows[i].marker ? line_of(rules_default_text, rows[i].marker) : rows[i].line;

		snprintf(what, sizeof what, "row %zu (%s%s, %s%s -> %s)", i, text ? "rules" : "no rules",
		         rows[i].monitor ? ", monitor" : "", rows[i].client, rows[i].auth ? " authenticated" : "",
		         rows[i].rcpt);
		v = do_connect(c);
		assert_int_equal(v.code, 0);
		if (rows[i].auth)
			assert_int_equal(checks_auth(c, rows[i].auth), 0);
		v = do_mail(c, "a@example.org");
		assert_int_equal(v.code, 0);
		v = do_rcpt(c, rows[i].rcpt, 1);
		verdict_is(what, &v, rows[i].code, rows[i].esc, rows[i].text, rows[i].file, line);
		if (rows[i].code && strcmp(rows[i].file, BUILTIN) == 0) {
			assert_int_equal(v.rule_line, 0);
			assert_string_equal(v.reason, rows[i].code == 553 ? "routing syntax in recipient"
			                                                  : "relay denied");
		}
		/* a refused recipient is not stored: the next one is judged alone */
		v = do_rcpt(c, "carol@example.test", 1);
		if (v.code != 0)
			fail_msg("%s: then a local recipient got %d", what, v.code);
		checks_free(c);
		config_unref(cfg);
	}
}

/* In monitor mode the floor refuses a relay attempt; the relay rule's
 * "would reject" is not reported beside that refusal (one log line). */
static void test_relay_monitor_hit(void **state)
{
	struct config *cfg = make_cfg(rules_default_text, "default.rules", 1);
	struct hits hs = { 0 };
	struct checks *c = new_checks(cfg, NULL, "192.0.2.7", &hs);
	struct verdict v;

	do_connect(c);
	do_mail(c, "a@example.org");
	/* the floor refuses; the relay rule's would-reject is not reported beside it */
	v = do_rcpt(c, "x@foreign.example", 0);
	assert_int_equal(v.code, 554);
	assert_string_equal(v.rule_file, "built-in relay protection");
	assert_string_equal(v.reason, "relay denied");
	assert_int_equal(hs.n, 0);
	checks_free(c);
	config_unref(cfg);
}

/* ---- tags ---- */

static void test_tags(void **state)
{
	static const char rules[] =
		"tag client 192.0.2.0/24 header \"X-Conn: %{client}\"\n"
		"tag helo /\\.example$/ header \"X-Helo: %{helo}\"\n"
		"tag sender @example.org header \"X-Mail: %{sender}\"\n"
		"tag rcpt-domain local header \"X-Local: yes\"\n"
		"tag rcpt @example.test header \"X-Rcpt: %{rcpt}\"\n"
		/* one field the prefix of another: both kept */
		"tag rcpt bob@example.test header \"X-P: ab\"\n"
		"tag rcpt carol@example.test header \"X-P: a\"\n"
		"tag monitor client 192.0.2.0/24 header \"X-Mon: 1\"\n";
	struct config *cfg = make_cfg(rules, NULL, 0);
	struct hits hs = { 0 };
	struct checks *c = new_checks(cfg, NULL, "192.0.2.7", &hs);
	struct verdict v;

	v = do_connect(c);
	assert_int_equal(v.code, 0);
	assert_string_equal(checks_tags(c), "X-Conn: 192.0.2.7\r\n");
	/* the monitored tag is reported, not added */
	assert_int_equal(hs.n, 2);
	assert_string_equal(hs.h[0].stage, "connect");
	assert_int_equal(hs.h[0].action, ACTION_TAG);
	assert_int_equal(hs.h[0].monitor, 0);
	assert_string_equal(hs.h[0].text, "X-Conn: 192.0.2.7");
	assert_int_equal(hs.h[0].line, 1);
	assert_int_equal(hs.h[1].action, ACTION_TAG);
	assert_int_equal(hs.h[1].monitor, 1);
	assert_string_equal(hs.h[1].text, "X-Mon: 1");
	assert_int_equal(hs.h[1].line, 8);

	checks_helo(c, "mx.example", &v);
	assert_int_equal(v.code, 0);
	assert_string_equal(checks_tags(c), "X-Conn: 192.0.2.7\r\nX-Helo: mx.example\r\n");

	/* message 1 */
	v = do_mail(c, "a@example.org");
	assert_int_equal(v.code, 0);
	assert_string_equal(checks_tags(c), "X-Conn: 192.0.2.7\r\nX-Helo: mx.example\r\n"
	                                    "X-Mail: a@example.org\r\n");
	hs.n = 0;
	assert_int_equal(do_rcpt(c, "bob@example.test", 1).code, 0);
	assert_int_equal(do_rcpt(c, "carol@example.test", 1).code, 0);
	/* X-Local once, although it matched for both */
	assert_string_equal(checks_tags(c), "X-Conn: 192.0.2.7\r\nX-Helo: mx.example\r\n"
	                                    "X-Mail: a@example.org\r\n"
	                                    "X-Local: yes\r\nX-Rcpt: bob@example.test\r\nX-P: ab\r\n"
	                                    "X-Rcpt: carol@example.test\r\nX-P: a\r\n");
	/* every hit is reported, with its recipient */
	assert_int_equal(hs.n, 6);
	assert_string_equal(hs.h[0].stage, "rcpt");
	assert_string_equal(hs.h[0].text, "X-Local: yes");
	assert_string_equal(hs.h[0].rcpt, "bob@example.test");
	assert_string_equal(hs.h[3].text, "X-Local: yes");
	assert_string_equal(hs.h[3].rcpt, "carol@example.test");

	/* the transaction's tags go with it; the connection's stay */
	checks_txn_end(c);
	assert_false(checks_in_txn(c));
	assert_string_equal(checks_tags(c), "X-Conn: 192.0.2.7\r\nX-Helo: mx.example\r\n");

	/* message 2: no mail tag */
	v = do_mail(c, "b@example.net");
	assert_int_equal(v.code, 0);
	assert_int_equal(do_rcpt(c, "dave@example.test", 1).code, 0);
	assert_string_equal(checks_tags(c), "X-Conn: 192.0.2.7\r\nX-Helo: mx.example\r\n"
	                                    "X-Local: yes\r\nX-Rcpt: dave@example.test\r\n");
	/* a new MAIL ends the transaction before it (RSET-less) */
	v = do_mail(c, "c@example.net");
	assert_string_equal(checks_tags(c), "X-Conn: 192.0.2.7\r\nX-Helo: mx.example\r\n");
	checks_txn_end(c);
	checks_txn_end(c);
	assert_string_equal(checks_tags(c), "X-Conn: 192.0.2.7\r\nX-Helo: mx.example\r\n");
	checks_free(c);
	config_unref(cfg);
}

/* A second HELO replaces the first: a tag the old name earned does not
 * stay on the session's later messages; the connect tags do. */
static void test_tags_second_helo(void **state)
{
	static const char rules[] =
		"tag client 192.0.2.0/24 header \"X-Conn: yes\"\n"
		"tag helo /\\.example$/ header \"X-Helo: %{helo}\"\n";
	struct config *cfg = make_cfg(rules, NULL, 0);
	struct hits hs = { 0 };
	struct checks *c = new_checks(cfg, NULL, "192.0.2.7", &hs);
	struct verdict v;

	do_connect(c);
	checks_helo(c, "one.example", &v);
	assert_string_equal(checks_tags(c), "X-Conn: yes\r\nX-Helo: one.example\r\n");
	do_mail(c, "a@example.org");
	checks_helo(c, "two.example", &v);
	assert_string_equal(checks_tags(c), "X-Conn: yes\r\nX-Helo: two.example\r\n");
	checks_helo(c, "three.test", &v);
	assert_string_equal(checks_tags(c), "X-Conn: yes\r\n");
	do_mail(c, "a@example.org");
	checks_txn_end(c);
	assert_string_equal(checks_tags(c), "X-Conn: yes\r\n");
	checks_free(c);
	config_unref(cfg);
}

/* ---- monitor ---- */

static void test_monitor(void **state)
{
	static const struct {
		const char *what, *rules;
		int monitor;     /* global */
		int stage;       /* where the rule sits: 0 connect, 1 helo, 2 mail, 3 rcpt */
		enum rule_action action;
		int code;        /* of the hit */
		int hit_monitor;
		const char *tags;
	} rows[] = {
		{ "reject monitor", "reject monitor client 192.0.2.0/24 \"550 5.7.1 would\"\n", 0, 0,
		  ACTION_REJECT, 550, 1, "" },
		{ "global monitor, reject", "reject client 192.0.2.0/24 \"550 5.7.1 would\"\n", 1, 0,
		  ACTION_REJECT, 550, 1, "" },
		{ "global monitor, tempfail", "tempfail client 192.0.2.0/24\n", 1, 0,
		  ACTION_TEMPFAIL, 451, 1, "" },
		{ "global monitor, helo", "reject helo x.example\n", 1, 1, ACTION_REJECT, 550, 1, "" },
		{ "global monitor, mail", "reject sender @example.org\n", 1, 2, ACTION_REJECT, 550, 1, "" },
		{ "global monitor, rcpt", "reject rcpt bob@example.test\n", 1, 3, ACTION_REJECT, 550, 1, "" },
		{ "tempfail monitor, rcpt", "tempfail monitor rcpt bob@example.test\n", 0, 3,
		  ACTION_TEMPFAIL, 451, 1, "" },
		{ "tag monitor", "tag monitor client 192.0.2.0/24 header \"X-M: 1\"\n", 0, 0,
		  ACTION_TAG, 0, 1, "" },
		/* global monitor mode only holds back refusals: tags still tag */
		{ "global monitor, tag", "tag client 192.0.2.0/24 header \"X-M: 1\"\n", 1, 0,
		  ACTION_TAG, 0, 0, "X-M: 1\r\n" },
		{ "log", "log client 192.0.2.0/24 note \"seen\"\n", 0, 0, ACTION_LOG, 0, 0, "" },
	};
	static const char *const stages[] = { "connect", "helo", "mail", "rcpt" };

	for (size_t i = 0; i < NROWS(rows); i++) {
		struct config *cfg = make_cfg(rows[i].rules, NULL, rows[i].monitor);
		struct hits hs = { 0 };
		struct checks *c = new_checks(cfg, NULL, "192.0.2.7", &hs);
		struct verdict v[4];

		v[0] = do_connect(c);
		checks_helo(c, "x.example", &v[1]);
		v[2] = do_mail(c, "a@example.org");
		v[3] = do_rcpt(c, "bob@example.test", 1);
		for (int s = 0; s < 4; s++) {
			if (v[s].code != 0)
				fail_msg("row %zu (%s): %s verdict %d", i, rows[i].what, stages[s], v[s].code);
			if (v[s].rule_file)
				fail_msg("row %zu (%s): %s decided by %s", i, rows[i].what, stages[s],
				         v[s].rule_file);
		}
		if (hs.n != 1)
			fail_msg("row %zu (%s): %d hits", i, rows[i].what, hs.n);
		assert_string_equal(hs.h[0].stage, stages[rows[i].stage]);
		assert_int_equal(hs.h[0].action, rows[i].action);
		assert_int_equal(hs.h[0].monitor, rows[i].hit_monitor);
		assert_int_equal(hs.h[0].line, 1);
		if (rows[i].code)
			assert_int_equal(hs.h[0].code, rows[i].code);
		if (rows[i].action == ACTION_LOG)
			assert_string_equal(hs.h[0].reason, "seen");
		assert_string_equal(hs.h[0].rcpt, rows[i].stage == 3 ? "bob@example.test" : "");
		assert_string_equal(checks_tags(c), rows[i].tags);
		checks_free(c);
		config_unref(cfg);
	}
}

/* ---- DATA ---- */

static void test_data(void **state)
{
	static const char rules[] =
		"reject header subject /casino/ \"550 5.7.1 spam\"\n"
		"reject size > 100\n"
		"reject rcpt bob@example.test and header x-for /bob/ \"550 5.7.1 not for %{rcpt}\"\n"
		"tag rcpt carol@example.test and size > 0 header \"X-Carol: %{rcpt}\"\n";
	static const struct {
		const char *what, *msg;
		size_t size;           /* 0: the message's length */
		const char *rcpts[3];  /* "-" prefix: RCPT passed, the backend refused it */
		int code;
		const char *esc, *text;
		int line;
		const char *tags;
	} rows[] = {
		{ "subject", "Subject: win at casino\r\nFrom: a@example.org\r\n\r\nhi\r\n", 0,
		  { "alice@example.test" }, 550, "5.7.1", "spam", 1 },
		{ "subject, folded", "From: a@example.org\r\nSubject: win at\r\n casino\r\n\r\nhi\r\n", 0,
		  { "alice@example.test" }, 550, "5.7.1", "spam", 1 },
		{ "subject, any case", "SUBJECT: CASINO\r\n\r\nhi\r\n", 0,
		  { "alice@example.test" }, 550, "5.7.1", "spam", 1 },
		{ "casino in the body only", "Subject: hello\r\n\r\ncasino\r\n", 0,
		  { "alice@example.test" }, 0 },
		{ "casino in another field", "Subject: hello\r\nX-Casino: casino\r\n\r\nhi\r\n", 0,
		  { "alice@example.test" }, 0 },
		{ "size 101", "Subject: hello\r\n\r\nhi\r\n", 101,
		  { "alice@example.test" }, 550, "5.7.1", "Message rejected", 2 },
		{ "size 100", "Subject: hello\r\n\r\nhi\r\n", 100, { "alice@example.test" }, 0 },
		/* the data rule sees the accepted recipients */
		{ "for bob, bob accepted", "Subject: hello\r\nX-For: bob\r\n\r\nhi\r\n", 0,
		  { "alice@example.test", "bob@example.test" }, 550, "5.7.1", "not for bob@example.test", 3 },
		{ "for bob, bob alone", "Subject: hello\r\nX-For: bob\r\n\r\nhi\r\n", 0,
		  { "bob@example.test" }, 550, "5.7.1", "not for bob@example.test", 3 },
		{ "for bob, bob not a recipient", "Subject: hello\r\nX-For: bob\r\n\r\nhi\r\n", 0,
		  { "alice@example.test" }, 0 },
		{ "for bob, bob refused by the backend", "Subject: hello\r\nX-For: bob\r\n\r\nhi\r\n", 0,
		  { "alice@example.test", "-bob@example.test" }, 0 },
		{ "for bob, not for bob", "Subject: hello\r\nX-For: alice\r\n\r\nhi\r\n", 0,
		  { "alice@example.test", "bob@example.test" }, 0 },
		/* a data-stage tag for one of the recipients */
		{ "carol tagged", "Subject: hello\r\n\r\nhi\r\n", 0,
		  { "alice@example.test", "carol@example.test" }, 0, NULL, NULL, 0,
		  "X-Carol: carol@example.test\r\n" },
		{ "carol refused by the backend", "Subject: hello\r\n\r\nhi\r\n", 0,
		  { "alice@example.test", "-carol@example.test" }, 0, NULL, NULL, 0, "" },
	};
	struct config *cfg = make_cfg(rules, NULL, 0);

	for (size_t i = 0; i < NROWS(rows); i++) {
		struct hits hs = { 0 };
		struct checks *c = new_checks(cfg, NULL, "192.0.2.7", &hs);
		struct mem m = { rows[i].msg, strlen(rows[i].msg) };
		struct vrec r = { 0 };
		char what[128];

		snprintf(what, sizeof what, "row %zu (%s)", i, rows[i].what);
		assert_int_equal(do_connect(c).code, 0);
		assert_int_equal(do_mail(c, "a@example.org").code, 0);
		for (int k = 0; k < 3 && rows[i].rcpts[k]; k++) {
			const char *to = rows[i].rcpts[k];
			int refused = to[0] == '-';

			if (do_rcpt(c, to + refused, !refused).code != 0)
				fail_msg("%s: RCPT %s refused", what, to);
		}
		checks_data(c, mem_read, &m, rows[i].size ? rows[i].size : m.n, on_verdict, &r);
		one_turn(&r);
		if (r.calls != 1)
			fail_msg("%s: %d verdicts", what, r.calls);
		verdict_is(what, &r.v, rows[i].code, rows[i].esc, rows[i].text, "t.rules", rows[i].line);
		if (rows[i].code == 0)
			assert_null(r.v.rule_file);
		assert_true(m.reads >= 1); /* the header was read */
		assert_string_equal(checks_tags(c), rows[i].tags ? rows[i].tags : "");
		assert_true(checks_in_txn(c));
		assert_null(checks_result(c, &check_dkim)); /* check_dkim = no */
		assert_null(checks_result(c, &check_sender));
		assert_null(checks_result(c, &check_spf));
		checks_txn_end(c);
		assert_false(checks_in_txn(c));
		checks_free(c);
	}
	config_unref(cfg);
}

/* DATA without MAIL (not from a session): go on, once. */
static void test_data_without_mail(void **state)
{
	struct config *cfg = make_cfg("reject size > 1\n", NULL, 0);
	struct hits hs = { 0 };
	struct checks *c = new_checks(cfg, NULL, "192.0.2.7", &hs);
	struct mem m = { "Subject: x\r\n\r\n", 14 };
	struct vrec r = { 0 };

	checks_data(c, mem_read, &m, m.n, on_verdict, &r);
	one_turn(&r);
	assert_int_equal(r.v.code, 0);
	checks_free(c);
	config_unref(cfg);
}

/* ---- connect with reverse DNS ---- */

/* "TYPE VALUE" for build_reply */
static const char *spec(const char *type, const char *value, char *buf)
{
	snprintf(buf, 300, "%s %s", type, value);
	return buf;
}

static const char rdns_rules[] =
	"reject rdns none \"550 5.7.25 no reverse DNS for %{client}\"\n"
	"tag rdns .example.test header \"X-Rdns: %{rdns}\"\n";

/* Answers in the cache: not inside checks_connect, after one loop turn. */
static void test_connect_rdns_cached(void **state)
{
	static const struct {
		const char *client, *ptr, *a; /* ptr NULL: NXDOMAIN; a NULL: not injected */
		int code;
		enum rdns_res res;
		const char *name, *tags;
	} rows[] = {
		{ "192.0.2.10", "Mail.Example.Test", "192.0.2.10", 0, RDNS_OK, "mail.example.test",
		  "X-Rdns: mail.example.test\r\n" },
		{ "192.0.2.10", "mail.example.test", "192.0.2.11", 550, RDNS_NONE, "", "" },
		{ "192.0.2.10", NULL, NULL, 550, RDNS_NONE, "", "" },
	};

	for (size_t i = 0; i < NROWS(rows); i++) {
		struct fx f;
		struct config *cfg = make_cfg(rdns_rules, NULL, 0);
		struct hits hs = { 0 };
		struct checks *c;
		struct vrec r = { 0 };
		struct pkt p;
		char sp[300];
		enum rdns_res res;
		const char *name;

		fx_start(&f);
		if (rows[i].ptr) {
			build_reply(&p, 0, ns_r_noerror, "10.2.0.192.in-addr.arpa", ns_t_ptr, spec("ptr", rows[i].ptr, sp));
			assert_int_equal(dns_inject(f.dns, "10.2.0.192.in-addr.arpa", ns_t_ptr, DNS_OK, p.b,
			                            (int)p.n, 300), 0);
		} else {
			assert_int_equal(dns_inject(f.dns, "10.2.0.192.in-addr.arpa", ns_t_ptr, DNS_NXDOMAIN,
			                            NULL, 0, 300), 0);
		}
		if (rows[i].a) {
			build_reply(&p, 0, ns_r_noerror, "mail.example.test", ns_t_a, spec("a", rows[i].a, sp));
			assert_int_equal(dns_inject(f.dns, "mail.example.test", ns_t_a, DNS_OK, p.b, (int)p.n,
			                            300), 0);
		}
		c = new_checks_on(f.base, cfg, f.dns, rows[i].client, &hs);
		checks_connect(c, on_verdict, &r);
		if (r.calls != 0)
			fail_msg("row %zu: %d verdicts inside checks_connect", i, r.calls);
		event_base_loop(f.base, EVLOOP_ONCE);
		if (r.calls != 1)
			fail_msg("row %zu: %d verdicts after one loop turn", i, r.calls);
		if (rows[i].code)
			verdict_is("rdns", &r.v, 550, "5.7.25", "no reverse DNS for 192.0.2.10", "t.rules", 1);
		else
			assert_int_equal(r.v.code, 0);
		assert_int_equal(checks_rdns(c, &res, &name), 1);
		assert_int_equal(res, rows[i].res);
		assert_string_equal(name, rows[i].name);
		assert_string_equal(checks_tags(c), rows[i].tags);
		assert_int_equal(stats(&f).queries, 0);
		event_base_loop(f.base, EVLOOP_NONBLOCK);
		assert_int_equal(r.calls, 1);
		checks_free(c);
		config_unref(cfg);
		fx_stop(&f);
	}
}

/* No rule tests rdns: no lookup, even with a resolver. */
static void test_connect_rdns_unused(void **state)
{
	struct fx f;
	struct config *cfg = make_cfg("reject client 192.0.2.0/24\n", NULL, 0);
	struct hits hs = { 0 };
	struct checks *c;
	enum rdns_res res;
	const char *name;
	struct dns_stats st;

	fx_start(&f);
	c = new_checks_on(f.base, cfg, f.dns, "198.51.100.1", &hs);
	assert_int_equal(do_connect(c).code, 0);
	assert_int_equal(checks_rdns(c, &res, &name), 0);
	dns_get_stats(f.dns, &st);
	assert_int_equal(st.queries + st.hits, 0);
	checks_free(c);
	config_unref(cfg);
	fx_stop(&f);
}

static int verdict_in(void *arg)
{
	return ((struct vrec *)arg)->calls > 0;
}

/* Not cached: the verdict comes later, from the loop (the lookup times out:
 * "rdns none" holds for a failed lookup too). */
static void test_connect_rdns_async(void **state)
{
	struct fx f;
	struct config *cfg = make_cfg(rdns_rules, NULL, 0);
	struct hits hs = { 0 };
	struct checks *c;
	struct vrec r = { 0 };
	enum rdns_res res;
	const char *name;

	fx_start(&f);
	c = new_checks_on(f.base, cfg, f.dns, "192.0.2.10", &hs);
	checks_connect(c, on_verdict, &r);
	assert_int_equal(r.calls, 0);
	assert_int_equal(checks_rdns(c, &res, &name), 0);
	assert_int_equal(stats(&f).queries, 1);
	run_until(&f, verdict_in, &r, 3000);
	assert_int_equal(r.calls, 1);
	verdict_is("rdns timeout", &r.v, 550, "5.7.25", "no reverse DNS for 192.0.2.10", "t.rules", 1);
	assert_int_equal(checks_rdns(c, &res, &name), 1);
	assert_int_equal(res, RDNS_TEMPFAIL);
	assert_string_equal(name, "");
	run_idle(&f);
	assert_int_equal(r.calls, 1);
	checks_free(c);
	config_unref(cfg);
	fx_stop(&f);
}

/* The session ends with the lookup in flight: no verdict, nothing leaks. */
static void test_connect_rdns_free_pending(void **state)
{
	struct fx f;
	struct config *cfg = make_cfg(rdns_rules, NULL, 0);
	struct hits hs = { 0 };
	struct checks *c;
	struct vrec r = { 0 };
	struct want_entries w = { &f, 1 };

	fx_start(&f);
	c = new_checks_on(f.base, cfg, f.dns, "192.0.2.10", &hs);
	checks_connect(c, on_verdict, &r);
	assert_int_equal(r.calls, 0);
	checks_free(c);
	/* until the lookup's deadline has answered (and cached a TEMPFAIL):
	 * the answer comes to nobody */
	run_until(&f, has_entries, &w, 3000);
	assert_int_equal(stats(&f).entries, 1);
	run_idle(&f);
	assert_int_equal(r.calls, 0);
	config_unref(cfg);
	fx_stop(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect),
		cmocka_unit_test(test_trusted_fact),
		cmocka_unit_test(test_no_ruleset),
		cmocka_unit_test(test_helo),
		cmocka_unit_test(test_helo_resets),
		cmocka_unit_test(test_relay),
		cmocka_unit_test(test_relay_monitor_hit),
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_tags_second_helo),
		cmocka_unit_test(test_monitor),
		cmocka_unit_test(test_data),
		cmocka_unit_test(test_data_without_mail),
		cmocka_unit_test(test_connect_rdns_cached),
		cmocka_unit_test(test_connect_rdns_unused),
		cmocka_unit_test(test_connect_rdns_async),
		cmocka_unit_test(test_connect_rdns_free_pending),
	};

	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	if (plain_loop)
		event_base_free(plain_loop);
	return rc;
}
