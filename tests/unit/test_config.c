/* test_config.c - moat.conf parser: every key, defaults, syntax, every error */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/config.h"
#include "proxy/store.h"
#include "proxy/lib/bounds.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static struct config *parse(const char *text)
{
	char err[512] = "unset";
	struct config *c = config_parse(text, strlen(text), "moat.conf", err, sizeof err);

	if (c == NULL)
		fail_msg("config_parse(\"%s\"): %s", text, err);
	assert_string_equal(err, "");
	assert_int_equal(c->refs, 1);
	return c;
}

static void expect_error_len(const char *text, size_t len, const char *want)
{
	char err[1024] = "";
	struct config *c = config_parse(text, len, "moat.conf", err, sizeof err);

	if (c != NULL) {
		config_unref(c);
		fail_msg("accepted \"%s\", wanted error %s", text, want);
	}
	assert_string_equal(err, want);
}

static void expect_error(const char *text, const char *want)
{
	expect_error_len(text, strlen(text), want);
}

/* "1.2.3.4:25" or "[::1]:25" */
static void render(const struct sockaddr_storage *ss, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN];
	int v6 = ss->ss_family == AF_INET6;

	sockaddr_ntop((const struct sockaddr *)ss, host, sizeof host);
	snprintf(buf, size, "%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "",
		 sockaddr_port((const struct sockaddr *)ss));
}

/* A list of strings joined by one space, for table comparisons. */
static void join(char *buf, size_t size, const char *item)
{
	size_t n = strlen(buf);

	snprintf(buf + n, size - n, "%s%s", n ? " " : "", item);
}

static void render_listen(const struct config *c, char *buf, size_t size)
{
	char one[80];

	buf[0] = '\0';
	for (int i = 0; i < c->nlisten; i++) {
		render(&c->listen[i], one, sizeof one);
		join(buf, size, one);
		assert_int_equal(c->listen_len[i], c->listen[i].ss_family == AF_INET
							   ? sizeof(struct sockaddr_in)
							   : sizeof(struct sockaddr_in6));
	}
}

static void render_backends(const struct backend_list *l, char *buf, size_t size)
{
	char one[300];

	buf[0] = '\0';
	for (int i = 0; i < l->n; i++) {
		backend_target_text(&l->t[i], one, sizeof one);
		join(buf, size, one);
	}
}

static void render_networks(const struct config *c, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN], one[80];

	buf[0] = '\0';
	for (int i = 0; i < c->ntrusted_networks; i++) {
		const struct cidr *n = &c->trusted_networks[i];
		assert_non_null(inet_ntop(n->family, n->addr, host, sizeof host));
		snprintf(one, sizeof one, "%s/%d", host, n->prefix);
		join(buf, size, one);
	}
}

static void render_domains(const struct config *c, char *buf, size_t size)
{
	buf[0] = '\0';
	for (int i = 0; i < c->nlocal_domains; i++)
		join(buf, size, c->local_domains[i]);
}

/* ---- defaults ---- */

static void check_defaults(const struct config *c)
{
	char buf[256], host[256];

	render_listen(c, buf, sizeof buf);
	assert_string_equal(buf, "127.0.0.1:2525");
	render_backends(&c->backend, buf, sizeof buf);
	assert_string_equal(buf, "127.0.0.1:25");
	assert_int_equal(c->backend.t[0].addrlen, sizeof(struct sockaddr_in));
	assert_string_equal(c->backend.t[0].name, "");
	if (gethostname(host, sizeof host) == 0 && strcmp(c->hostname, "localhost") != 0)
		assert_string_equal(c->hostname, host);
	assert_true(c->hostname[0] != '\0');
	assert_int_equal(c->nlocal_domains, 0);
	assert_null(c->local_domains);
	assert_int_equal(c->ntrusted_networks, 0);
	assert_null(c->trusted_networks);
	assert_string_equal(c->dns_servers, "");
	assert_int_equal(c->proxy_protocol, 0);
	assert_string_equal(c->rules, "");
	assert_int_equal(c->log_target, LOG_TO_STDERR);
	assert_string_equal(c->log_file, "");
	assert_string_equal(c->spool_dir, "/tmp");
	assert_int_equal(c->max_message_size, 10240000);
	assert_int_equal(c->max_recipients, 100);
	assert_int_equal(c->max_connections, 1000);
	assert_int_equal(c->max_connections_per_ip, 20);
	assert_int_equal(c->command_timeout, 300);
	assert_int_equal(c->data_timeout, 600);
	assert_int_equal(c->shutdown_grace, MOAT_SHUTDOWN_GRACE);
	assert_int_equal(c->backend_tls, BACKEND_TLS_OPPORTUNISTIC);
	assert_string_equal(c->backend_tls_ca, "");
	assert_string_equal(c->backend_tls_name, "");
	assert_null(c->backend_ssl); /* made by config_load */
	assert_int_equal(c->xclient, XCLIENT_MODE_AUTO);
}

static void test_defaults(void **state)
{
	static const char *const empty_texts[] = {
		"", "\n", "\n\n\n", "# only a comment\n", "   \t  \n", "\r\n", "\xef\xbb\xbf",
		"\xef\xbb\xbf# BOM then comment\n", "#listen = 1.2.3.4:1\n",
	};
	struct config *c = config_new_defaults();

	assert_non_null(c);
	assert_int_equal(c->refs, 1);
	check_defaults(c);
	config_unref(c);
	for (size_t i = 0; i < NELEM(empty_texts); i++) {
		c = parse(empty_texts[i]);
		check_defaults(c);
		config_unref(c);
	}
	c = config_parse(NULL, 0, "moat.conf", NULL, 0);
	assert_non_null(c);
	check_defaults(c);
	config_unref(c);
}

/* ---- numbers and yes/no ---- */

static const struct {
	const char *key;
	size_t off;
	int is_size; /* size_t field, else int */
	long long min, max, def;
} numbers[] = {
#define N(f, lo, hi, d) { #f, offsetof(struct config, f), sizeof(((struct config *)0)->f) == sizeof(size_t), lo, hi, d }
	N(max_message_size, 1024, 2147483648LL, 10240000),
	N(max_recipients, 1, 100000, 100),
	N(max_connections, 1, 1000000, 1000),
	N(max_connections_per_ip, 1, 1000000, 20),
	N(command_timeout, 1, 3600, 300),
	N(data_timeout, 1, 7200, 600),
	N(shutdown_grace, 0, 3600, MOAT_SHUTDOWN_GRACE),
#undef N
};

static long long field(const struct config *c, size_t i)
{
	const char *p = (const char *)c + numbers[i].off;

	return numbers[i].is_size ? (long long)*(const size_t *)(const void *)p
				  : *(const int *)(const void *)p;
}

static void expect_number(size_t i, const char *value, long long want)
{
	char text[128];
	struct config *c;

	snprintf(text, sizeof text, "%s = %s\n", numbers[i].key, value);
	c = parse(text);
	assert_int_equal(field(c, i), want);
	config_unref(c);
}

static void expect_not_number(size_t i, const char *value)
{
	char text[128], want[256];

	snprintf(text, sizeof text, "%s = %s\n", numbers[i].key, value);
	snprintf(want, sizeof want, "moat.conf:1: %s: \"%s\" is not a number between %lld and %lld",
		 numbers[i].key, value, numbers[i].min, numbers[i].max);
	expect_error(text, want);
}

static void test_numbers(void **state)
{
	static const char *const junk[] = {
		"abc", "-1", "+5", "0x10", "1e3", "10k", "5s", "1 2", "1,2", "1.5",
		"99999999999999999999999999", "18446744073709551617",
	};
	struct config *d = config_new_defaults();
	char v[32], text[128], want[256];

	for (size_t i = 0; i < NELEM(numbers); i++) {
		assert_int_equal(field(d, i), numbers[i].def);
		snprintf(v, sizeof v, "%lld", numbers[i].min);
		expect_number(i, v, numbers[i].min);
		snprintf(v, sizeof v, "%lld", numbers[i].max);
		expect_number(i, v, numbers[i].max);
		snprintf(v, sizeof v, "00%lld", numbers[i].max); /* decimal, not octal */
		expect_number(i, v, numbers[i].max);
		snprintf(v, sizeof v, "%lld", numbers[i].max + 1);
		expect_not_number(i, v);
		if (numbers[i].min > 0) {
			snprintf(v, sizeof v, "%lld", numbers[i].min - 1);
			expect_not_number(i, v);
		}
		for (size_t j = 0; j < NELEM(junk); j++)
			expect_not_number(i, junk[j]);
		snprintf(text, sizeof text, "%s =\n", numbers[i].key);
		snprintf(want, sizeof want, "moat.conf:1: %s: empty value", numbers[i].key);
		expect_error(text, want);
	}
	config_unref(d);
}

static void test_proxy_protocol(void **state)
{
	static const struct {
		const char *value;
		int want;
	} cases[] = {
		{ "yes", 1 }, { "no", 0 }, { "true", 1 }, { "false", 0 }, { "on", 1 }, { "off", 0 },
		{ "1", 1 }, { "0", 0 }, { "YES", 1 }, { "No", 0 }, { "True", 1 }, { "OFF", 0 },
	};
	static const char *const bad[] = { "maybe", "y", "n", "2", "yes no", "enabled", "-1" };
	char text[64], want[128];

	for (size_t i = 0; i < NELEM(cases); i++) {
		snprintf(text, sizeof text, "proxy_protocol = %s", cases[i].value);
		struct config *c = parse(text);
		assert_int_equal(c->proxy_protocol, cases[i].want);
		config_unref(c);
	}
	for (size_t i = 0; i < NELEM(bad); i++) {
		snprintf(text, sizeof text, "proxy_protocol = %s", bad[i]);
		snprintf(want, sizeof want, "moat.conf:1: proxy_protocol: \"%s\" is not yes or no", bad[i]);
		expect_error(text, want);
	}
	expect_error("proxy_protocol =", "moat.conf:1: proxy_protocol: empty value");
}

/* ---- addresses ---- */

static const struct {
	const char *text, *want;
} listens[] = {
	{ "listen = 127.0.0.1:2525", "127.0.0.1:2525" },
	{ "listen = [::1]:2525", "[::1]:2525" },
	{ "listen = 0.0.0.0:25, [::]:25", "0.0.0.0:25 [::]:25" },
	{ "listen = 1.2.3.4:1 5.6.7.8:2", "1.2.3.4:1 5.6.7.8:2" },
	{ "listen=1.2.3.4:1,5.6.7.8:2,,", "1.2.3.4:1 5.6.7.8:2" },
	{ "listen = 127.0.0.1:0 127.0.0.1:0", "127.0.0.1:0 127.0.0.1:0" }, /* two free ports */
	{ "listen = 127.0.0.1:25 [::ffff:127.0.0.1]:25", "127.0.0.1:25 [127.0.0.1]:25" },
	{ "listen = 1.0.0.1:1 1.0.0.2:1 1.0.0.3:1 1.0.0.4:1 1.0.0.5:1 1.0.0.6:1 1.0.0.7:1 1.0.0.8:1 "
	  "1.0.0.9:1 1.0.0.10:1 1.0.0.11:1 1.0.0.12:1 1.0.0.13:1 1.0.0.14:1 1.0.0.15:1 1.0.0.16:1",
	  "1.0.0.1:1 1.0.0.2:1 1.0.0.3:1 1.0.0.4:1 1.0.0.5:1 1.0.0.6:1 1.0.0.7:1 1.0.0.8:1 "
	  "1.0.0.9:1 1.0.0.10:1 1.0.0.11:1 1.0.0.12:1 1.0.0.13:1 1.0.0.14:1 1.0.0.15:1 1.0.0.16:1" },
};

static void test_listen(void **state)
{
	char buf[1024];

	for (size_t i = 0; i < NELEM(listens); i++) {
		struct config *c = parse(listens[i].text);
		render_listen(c, buf, sizeof buf);
		assert_string_equal(buf, listens[i].want);
		config_unref(c);
	}
}

static const struct {
	const char *value, *want;
} backends[] = {
	{ "127.0.0.1:2526", "127.0.0.1:2526" },
	{ "10.0.0.1", "10.0.0.1:25" },
	{ "[::1]:587", "[::1]:587" },
	{ "[::1]", "[::1]:25" },
	{ "::1", "[::1]:25" },
	{ "2001:db8::25", "[2001:db8::25]:25" },
	/* names: A-labels, lower case, no trailing dot; port 25 unless given */
	{ "mta.mail.svc.cluster.local:25", "mta.mail.svc.cluster.local:25" },
	{ "MX1.Example.COM.", "mx1.example.com:25" },
	{ "bücher.example:2525", "xn--bcher-kva.example:2525" },
	/* lists: failover order, commas or blanks */
	{ "mx1.example:25, mx2.example:25", "mx1.example:25 mx2.example:25" },
	{ "1.2.3.4:25 1.2.3.5:25", "1.2.3.4:25 1.2.3.5:25" },
	{ "mx.example.com,192.0.2.1:2525,[2001:db8::1]", "mx.example.com:25 192.0.2.1:2525 [2001:db8::1]:25" },
};

static void test_backend(void **state)
{
	char text[128], buf[128];

	for (size_t i = 0; i < NELEM(backends); i++) {
		snprintf(text, sizeof text, "backend = %s", backends[i].value);
		struct config *c = parse(text);
		render_backends(&c->backend, buf, sizeof buf);
		assert_string_equal(buf, backends[i].want);
		for (int k = 0; k < c->backend.n; k++)
			if (!c->backend.t[k].name[0])
				assert_int_equal(c->backend.t[k].addrlen, c->backend.t[k].addr.ss_family == AF_INET
									 ? sizeof(struct sockaddr_in)
									 : sizeof(struct sockaddr_in6));
		config_unref(c);
	}
}

static const struct {
	const char *value, *want;
} dns[] = {
	{ "127.0.0.1", "127.0.0.1:53" },
	{ "127.0.0.1:5353", "127.0.0.1:5353" },
	{ "127.0.0.1, [::1]:5353", "127.0.0.1:53,[::1]:5353" },
	{ "[::1] ::2 [2001:db8::1]:54", "[::1]:53,[::2]:53,[2001:db8::1]:54" },
	{ "[::ffff:9.9.9.9]", "9.9.9.9:53" },
	{ "1.1.1.1,,8.8.8.8,", "1.1.1.1:53,8.8.8.8:53" },
	{ "", "" },
};

static void test_dns_servers(void **state)
{
	char text[256];

	for (size_t i = 0; i < NELEM(dns); i++) {
		snprintf(text, sizeof text, "dns_servers = %s", dns[i].value);
		struct config *c = parse(text);
		assert_string_equal(c->dns_servers, dns[i].want);
		config_unref(c);
	}
}

static void test_trusted_networks(void **state)
{
	static const struct {
		const char *value, *want;
	} cases[] = {
		{ "", "" },
		{ "127.0.0.1", "127.0.0.1/32" },
		{ "10.0.0.0/8, 192.168.1.77/24", "10.0.0.0/8 192.168.1.0/24" },
		{ "::1 2001:db8::/32\t10.0.0.0/8", "::1/128 2001:db8::/32 10.0.0.0/8" },
		{ ",::/0,", "::/0" },
	};
	char text[256], buf[512];

	for (size_t i = 0; i < NELEM(cases); i++) {
		snprintf(text, sizeof text, "trusted_networks = %s", cases[i].value);
		struct config *c = parse(text);
		render_networks(c, buf, sizeof buf);
		assert_string_equal(buf, cases[i].want);
		config_unref(c);
	}
}

/* ---- names and paths ---- */

static void test_hostname(void **state)
{
	static const char *const good[] = {
		"mx.example.test", "localhost", "MX1.Example.COM", "a-b.c-d.e", "x1.y2.z3",
		"xn--bcher-kva.example", "123.example.com", "a.b.c.d.e.f.g.h.i.j.k",
	};
	char text[512];

	for (size_t i = 0; i < NELEM(good); i++) {
		snprintf(text, sizeof text, "hostname = %s", good[i]);
		struct config *c = parse(text);
		assert_string_equal(c->hostname, good[i]);
		config_unref(c);
	}
	/* 63-byte labels, 255 bytes in all: the longest name */
	char name[256];
	memset(name, 'a', 255);
	name[63] = name[127] = name[191] = '.';
	name[255] = '\0';
	snprintf(text, sizeof text, "hostname = %s", name);
	struct config *c = parse(text);
	assert_string_equal(c->hostname, name);
	config_unref(c);
}

static void test_local_domains(void **state)
{
	static const struct {
		const char *value, *want;
	} cases[] = {
		{ "", "" },
		{ "example.test", "example.test" },
		{ "Example.COM, .Sub.Example.org", "example.com .sub.example.org" },
		{ "a.com,b.com", "a.com b.com" },
		{ "a.com b.com", "a.com b.com" },
		{ "a.com ,\tb.com", "a.com b.com" },
		{ ",a.com,,b.com,", "a.com b.com" },
		{ "localhost", "localhost" },
		/* U-labels or A-labels: both kept in A-labels, the form the relay check compares */
		{ "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.test", "xn--e1afmkfd.test" },
		{ "\xd0\x9f\xd0\xa0\xd0\x98\xd0\x9c\xd0\x95\xd0\xa0.\xd1\x80\xd1\x84", "xn--e1afmkfd.xn--p1ai" },
		{ "XN--E1AFMKFD.test .\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.test",
		  "xn--e1afmkfd.test .xn--e1afmkfd.test" },
		{ "stra\xc3\x9f" "e.de", "xn--strae-oqa.de" },
	};
	char text[256], buf[512];

	for (size_t i = 0; i < NELEM(cases); i++) {
		snprintf(text, sizeof text, "local_domains = %s", cases[i].value);
		struct config *c = parse(text);
		render_domains(c, buf, sizeof buf);
		assert_string_equal(buf, cases[i].want);
		if (cases[i].value[0] == '\0')
			assert_null(c->local_domains);
		config_unref(c);
	}
}

static void test_paths_and_log(void **state)
{
	static const struct {
		const char *text;
		const char *rules, *spool, *log_file;
		enum log_target log;
	} cases[] = {
		{ "rules = /etc/moat/rules.conf", "/etc/moat/rules.conf", "/tmp", "", LOG_TO_STDERR },
		{ "rules = rules/default.rules", "rules/default.rules", "/tmp", "", LOG_TO_STDERR },
		{ "rules = /a dir/with spaces", "/a dir/with spaces", "/tmp", "", LOG_TO_STDERR },
		{ "rules =", "", "/tmp", "", LOG_TO_STDERR },
		{ "spool_dir = /var/spool/moat", "", "/var/spool/moat", "", LOG_TO_STDERR },
		{ "log = stderr", "", "/tmp", "", LOG_TO_STDERR },
		{ "log = syslog", "", "/tmp", "", LOG_TO_SYSLOG },
		{ "log = /var/log/moat.log", "", "/tmp", "/var/log/moat.log", LOG_TO_FILE },
		{ "log = ./moat.log", "", "/tmp", "./moat.log", LOG_TO_FILE },
	};

	for (size_t i = 0; i < NELEM(cases); i++) {
		struct config *c = parse(cases[i].text);
		assert_string_equal(c->rules, cases[i].rules);
		assert_string_equal(c->spool_dir, cases[i].spool);
		assert_string_equal(c->log_file, cases[i].log_file);
		assert_int_equal(c->log_target, cases[i].log);
		config_unref(c);
	}
	/* longest values that fit the 1024-byte fields */
	char text[1100];
	snprintf(text, sizeof text, "rules = /%01022d", 0);
	struct config *c = parse(text);
	assert_int_equal(strlen(c->rules), 1023);
	config_unref(c);
}

/* ---- syntax ---- */

static const struct {
	const char *text, *rules;
} syntax[] = {
	/* comments */
	{ "rules = a#b", "a#b" },
	{ "rules = a #b", "a" },
	{ "rules = a\t# b", "a" },
	{ "rules=#a", "#a" },
	{ "# rules = x\nrules = y", "y" },
	{ "  # indented comment\nrules = y", "y" },
	{ "rules = y # trailing comment", "y" },
	{ "rules = # nothing", "" },
	{ "rules = a##b", "a##b" },
	/* blanks, line ends */
	{ "rules=x", "x" },
	{ "  rules   =   x   ", "x" },
	{ "\trules\t=\tx\t", "x" },
	{ "rules = x\r\n", "x" },
	{ "\r\n\r\nrules = x\r\n\r\n", "x" },
	{ "rules = x", "x" },
	{ "\n\n\nrules = x\n\n", "x" },
	{ "\xef\xbb\xbfrules = x\n", "x" },
	{ "rules = a = b", "a = b" },
	{ "rules = x\nmax_recipients = 5\n", "x" },
};

static void test_syntax(void **state)
{
	for (size_t i = 0; i < NELEM(syntax); i++) {
		struct config *c = parse(syntax[i].text);
		assert_string_equal(c->rules, syntax[i].rules);
		config_unref(c);
	}
}

static void test_every_key(void **state)
{
	static const char text[] =
		"# every key\n"
		"listen = 127.0.0.1:2525, [::1]:2525\n"
		"backend = 127.0.0.1:2526\n"
		"hostname = mx.example.test\n"
		"local_domains = example.test .example.test\n"
		"trusted_networks = 127.0.0.0/8 ::1\n"
		"dns_servers = 127.0.0.1:5300\n"
		"proxy_protocol = yes\n"
		"rules = /etc/moat/rules\n"
		"log = syslog\n"
		"spool_dir = /var/spool/moat\n"
		"max_message_size = 20480000\n"
		"max_recipients = 50\n"
		"max_connections = 500\n"
		"max_connections_per_ip = 10\n"
		"command_timeout = 60\n"
		"data_timeout = 120\n"
		"shutdown_grace = 5\n";
	struct config *c = parse(text);
	char buf[256];

	render_listen(c, buf, sizeof buf);
	assert_string_equal(buf, "127.0.0.1:2525 [::1]:2525");
	render_backends(&c->backend, buf, sizeof buf);
	assert_string_equal(buf, "127.0.0.1:2526");
	assert_string_equal(c->hostname, "mx.example.test");
	render_domains(c, buf, sizeof buf);
	assert_string_equal(buf, "example.test .example.test");
	render_networks(c, buf, sizeof buf);
	assert_string_equal(buf, "127.0.0.0/8 ::1/128");
	assert_string_equal(c->dns_servers, "127.0.0.1:5300");
	assert_int_equal(c->proxy_protocol, 1);
	assert_string_equal(c->rules, "/etc/moat/rules");
	assert_int_equal(c->log_target, LOG_TO_SYSLOG);
	assert_string_equal(c->spool_dir, "/var/spool/moat");
	assert_int_equal(c->max_message_size, 20480000);
	assert_int_equal(c->max_recipients, 50);
	assert_int_equal(c->max_connections, 500);
	assert_int_equal(c->max_connections_per_ip, 10);
	assert_int_equal(c->command_timeout, 60);
	assert_int_equal(c->data_timeout, 120);
	assert_int_equal(c->shutdown_grace, 5);
	config_unref(c);
}

/* ---- errors ---- */

static const struct {
	const char *text, *err;
} errors[] = {
	/* line syntax */
	{ "\n\n\n\n\n\nmax_recipent = 5", "moat.conf:7: unknown key \"max_recipent\"" },
	{ "Listen = 1.2.3.4:1", "moat.conf:1: unknown key \"Listen\"" },
	{ "#\n#\n\nlisten 1.2.3.4:1", "moat.conf:4: missing \"=\" after key" },
	{ "garbage", "moat.conf:1: missing \"=\" after key" },
	{ "rules : x", "moat.conf:1: missing \"=\" after key" },
	{ "= x", "moat.conf:1: missing key before \"=\"" },
	{ "  =", "moat.conf:1: missing key before \"=\"" },
	{ "rules = a\nrules = b", "moat.conf:2: duplicate key \"rules\" (first on line 1)" },
	{ "rules =\n\nrules =", "moat.conf:3: duplicate key \"rules\" (first on line 1)" },
	{ "\r\nbogus = 1\r\n", "moat.conf:2: unknown key \"bogus\"" },
	{ "max_recipients = 5\nx\n", "moat.conf:2: missing \"=\" after key" },
	{ "a\x01 = 1", "moat.conf:1: unknown key \"a?\"" },
	/* empty values where one is needed */
	{ "listen =", "moat.conf:1: listen: empty value" },
	{ "listen = , ,", "moat.conf:1: listen: empty value" },
	{ "backend =", "moat.conf:1: backend: empty value" },
	{ "hostname =", "moat.conf:1: hostname: empty value" },
	{ "log =", "moat.conf:1: log: empty value" },
	{ "log = # comment", "moat.conf:1: log: empty value" },
	{ "spool_dir =", "moat.conf:1: spool_dir: empty value" },
	/* listen */
	{ "\n\n\n\n\n\n\n\nlisten = 1.2.3.4", "moat.conf:9: listen: \"1.2.3.4\" needs a port" },
	{ "listen = [::1]", "moat.conf:1: listen: \"[::1]\" needs a port" },
	{ "listen = ::1", "moat.conf:1: listen: \"::1\" needs a port" },
	{ "listen = 1.2.3.4:1 5.6.7.8", "moat.conf:1: listen: \"5.6.7.8\" needs a port" },
	{ "listen = localhost:25", "moat.conf:1: listen: \"localhost:25\" is not a numeric address:port" },
	{ "listen = 1.2.3.4:65536", "moat.conf:1: listen: \"1.2.3.4:65536\" is not a numeric address:port" },
	{ "listen = 1.2.3.4:", "moat.conf:1: listen: \"1.2.3.4:\" is not a numeric address:port" },
	{ "listen = 1.2.3.4:25;", "moat.conf:1: listen: \"1.2.3.4:25;\" is not a numeric address:port" },
	{ "listen = 1.2.3.4:25 1.2.3.4:25", "moat.conf:1: listen: \"1.2.3.4:25\" is listed twice" },
	{ "listen = [::1]:25,[0::1]:25", "moat.conf:1: listen: \"[0::1]:25\" is listed twice" },
	{ "listen = 1.0.0.1:1 1.0.0.2:1 1.0.0.3:1 1.0.0.4:1 1.0.0.5:1 1.0.0.6:1 1.0.0.7:1 1.0.0.8:1 "
	  "1.0.0.9:1 1.0.0.10:1 1.0.0.11:1 1.0.0.12:1 1.0.0.13:1 1.0.0.14:1 1.0.0.15:1 1.0.0.16:1 1.0.0.17:1",
	  "moat.conf:1: listen: more than 16 entries" },
	/* backend */
	{ "backend = mail", "moat.conf:1: backend: \"mail\" is a name of one label: write it in full (mta.example.com), moat does not apply resolv.conf's search list (for this host, 127.0.0.1)" },
	{ "backend = localhost:25", "moat.conf:1: backend: \"localhost:25\" is a name of one label: write it in full (mta.example.com), moat does not apply resolv.conf's search list (for this host, 127.0.0.1)" },
	{ "backend = mail.example.com:0", "moat.conf:1: backend: \"mail.example.com:0\" has no valid port (1 to 65535)" },
	{ "backend = mail.example.com:65536", "moat.conf:1: backend: \"mail.example.com:65536\" has no valid port (1 to 65535)" },
	{ "backend = 1.2.3.4:25:26", "moat.conf:1: backend: \"1.2.3.4:25:26\" is not a numeric address[:port]" },
	{ "backend = 1.2.3.4.5", "moat.conf:1: backend: \"1.2.3.4.5\" is not a numeric address[:port] (nor a name: its last label is a number)" },
	{ "backend = 1.2.3.4:0", "moat.conf:1: backend: \"1.2.3.4:0\" has port 0" },
	{ "backend = -bad.example.com", "moat.conf:1: backend: \"-bad.example.com\" is not a numeric address[:port] nor a host name[:port]" },
	{ "backend = mx.example.com:25, MX.example.com.", "moat.conf:1: backend: \"MX.example.com.\" is listed twice" },
	{ "backend = 1.2.3.4, 1.2.3.4:25", "moat.conf:1: backend: \"1.2.3.4:25\" is listed twice" },
	{ "backend = a.example,b.example,c.example,d.example,e.example,f.example,g.example,h.example,i.example", "moat.conf:1: backend: more than 8 backends" },
	{ "backend = [::1", "moat.conf:1: backend: \"[::1\" is not a numeric address[:port]" },
	{ "backend = 1.2.3.4:0", "moat.conf:1: backend: \"1.2.3.4:0\" has port 0" },
	{ "backend = [::1]:0", "moat.conf:1: backend: \"[::1]:0\" has port 0" },
	/* hostname */
	{ "hostname = -mx.example", "moat.conf:1: hostname: \"-mx.example\" is not a valid host name" },
	{ "hostname = mx-.example", "moat.conf:1: hostname: \"mx-.example\" is not a valid host name" },
	{ "hostname = mx..example", "moat.conf:1: hostname: \"mx..example\" is not a valid host name" },
	{ "hostname = .example", "moat.conf:1: hostname: \".example\" is not a valid host name" },
	{ "hostname = mx.example.", "moat.conf:1: hostname: \"mx.example.\" is not a valid host name" },
	{ "hostname = mx_1.example", "moat.conf:1: hostname: \"mx_1.example\" is not a valid host name" },
	{ "hostname = mx example", "moat.conf:1: hostname: \"mx example\" is not a valid host name" },
	{ "hostname = 1.2.3.4", "moat.conf:1: hostname: \"1.2.3.4\" is not a valid host name" },
	{ "hostname = [1.2.3.4]", "moat.conf:1: hostname: \"[1.2.3.4]\" is not a valid host name" },
	{ "hostname = a\x01z", "moat.conf:1: hostname: \"a?z\" is not a valid host name" },
	{ "hostname = b\xc3\xbc" "cher.example", "moat.conf:1: hostname: \"b\xc3\xbc" "cher.example\" is not a valid host name" },
	/* local_domains */
	{ "local_domains = example.com, exa_mple.com", "moat.conf:1: local_domains: \"exa_mple.com\" is not a domain name" },
	{ "local_domains = ..example.com", "moat.conf:1: local_domains: \"..example.com\" is not a domain name" },
	{ "local_domains = .", "moat.conf:1: local_domains: \".\" is not a domain name" },
	{ "local_domains = @example.com", "moat.conf:1: local_domains: \"@example.com\" is not a domain name" },
	{ "local_domains = EXA_MPLE.com", "moat.conf:1: local_domains: \"EXA_MPLE.com\" is not a domain name" },
	{ "local_domains = \xe2\x98\x83.test", "moat.conf:1: local_domains: \"\xe2\x98\x83.test\" is not a domain name" },
	{ "local_domains = xn--zz.test", "moat.conf:1: local_domains: \"xn--zz.test\" is not a domain name" },
	{ "local_domains = .xn--a.test", "moat.conf:1: local_domains: \".xn--a.test\" is not a domain name" },
	/* trusted_networks */
	{ "trusted_networks = 10.0.0.0/33", "moat.conf:1: trusted_networks: \"10.0.0.0/33\" is not an IP address or network" },
	{ "trusted_networks = 10.0.0.0/8 localhost", "moat.conf:1: trusted_networks: \"localhost\" is not an IP address or network" },
	{ "trusted_networks = 10/8", "moat.conf:1: trusted_networks: \"10/8\" is not an IP address or network" },
	{ "trusted_networks = ::1/129", "moat.conf:1: trusted_networks: \"::1/129\" is not an IP address or network" },
	/* dns_servers */
	{ "dns_servers = ns1.example.com", "moat.conf:1: dns_servers: \"ns1.example.com\" is not a numeric address[:port]" },
	{ "dns_servers = 1.1.1.1 1.1.1.1:99999", "moat.conf:1: dns_servers: \"1.1.1.1:99999\" is not a numeric address[:port]" },
	{ "dns_servers = 1.1.1.1:0", "moat.conf:1: dns_servers: \"1.1.1.1:0\" has port 0" },
	{ "dns_servers = 2001:db8::1:53:", "moat.conf:1: dns_servers: \"2001:db8::1:53:\" is not a numeric address[:port]" },
	/* log, spool_dir */
	{ "log = file", "moat.conf:1: log: \"file\" is not stderr, syslog or a path starting with / or ./" },
	{ "log = moat.log", "moat.conf:1: log: \"moat.log\" is not stderr, syslog or a path starting with / or ./" },
	{ "log = ../moat.log", "moat.conf:1: log: \"../moat.log\" is not stderr, syslog or a path starting with / or ./" },
	{ "log = STDERR", "moat.conf:1: log: \"STDERR\" is not stderr, syslog or a path starting with / or ./" },
	{ "spool_dir = tmp", "moat.conf:1: spool_dir: \"tmp\" is not an absolute path" },
	{ "spool_dir = ./spool", "moat.conf:1: spool_dir: \"./spool\" is not an absolute path" },
	/* number: the example from the spec */
	{ "\n\nmax_recipients = abc", "moat.conf:3: max_recipients: \"abc\" is not a number between 1 and 100000" },
	{ "max_message_size = 1023", "moat.conf:1: max_message_size: \"1023\" is not a number between 1024 and 2147483648" },
	{ "max_message_size = 2147483649", "moat.conf:1: max_message_size: \"2147483649\" is not a number between 1024 and 2147483648" },
	{ "command_timeout = 5m", "moat.conf:1: command_timeout: \"5m\" is not a number between 1 and 3600" },
	{ "data_timeout = 0", "moat.conf:1: data_timeout: \"0\" is not a number between 1 and 7200" },
	{ "shutdown_grace = 3601", "moat.conf:1: shutdown_grace: \"3601\" is not a number between 0 and 3600" },
	/* backend TLS, XCLIENT */
	{ "backend_tls = yes", "moat.conf:1: backend_tls: \"yes\" is not no, opportunistic or required" },
	{ "backend_tls = Required", "moat.conf:1: backend_tls: \"Required\" is not no, opportunistic or required" },
	{ "\nbackend_tls = required", "moat.conf:2: backend_tls = required needs backend_tls_ca (the CA that signed "
	  "the backend's certificate, or a directory of CAs such as /etc/ssl/certs)" },
	{ "backend_tls_ca = ca.pem", "moat.conf:1: backend_tls_ca: \"ca.pem\" is not an absolute path" },
	{ "backend_tls_name = mx_1.example", "moat.conf:1: backend_tls_name: \"mx_1.example\" is not a host name or an IP address" },
	{ "backend_tls_name = [192.0.2.1]", "moat.conf:1: backend_tls_name: \"[192.0.2.1]\" is not a host name or an IP address" },
	{ "xclient = on", "moat.conf:1: xclient: \"on\" is not auto, yes or no" },
	/* the first error wins; later lines are not looked at */
	{ "bogus = 1\nlisten = x", "moat.conf:1: unknown key \"bogus\"" },
};

static void test_errors(void **state)
{
	for (size_t i = 0; i < NELEM(errors); i++)
		expect_error(errors[i].text, errors[i].err);
}

/* Errors that need generated text: long lines, long values, NUL, big lists. */
static void test_errors_generated(void **state)
{
	size_t size = 3 * MOAT_CONF_LINE_MAX;
	char *text = malloc(size), want[512];
	struct config *c;
	int n;

	assert_non_null(text);
	/* A MOAT_CONF_LINE_MAX-byte line is fine (CR not counted), one more is not. */
	memset(text, '#', MOAT_CONF_LINE_MAX);
	memcpy(text + MOAT_CONF_LINE_MAX, "\r\n", 3);
	c = parse(text);
	config_unref(c);
	memcpy(text, "rules = x\n", 10);
	memset(text + 10, '#', MOAT_CONF_LINE_MAX + 1);
	text[10 + MOAT_CONF_LINE_MAX + 1] = '\0';
	snprintf(want, sizeof want, "moat.conf:2: line too long (max %d bytes)", MOAT_CONF_LINE_MAX);
	expect_error(text, want);

	/* NUL bytes: the text has a length, so a NUL is not an end */
	expect_error_len("rules = a\0b\n", 12, "moat.conf:1: NUL byte in line");
	expect_error_len("rules = a\n\n# \0\n", 15, "moat.conf:3: NUL byte in line");
	expect_error_len("rules = a\n\0", 11, "moat.conf:2: NUL byte in line");

	/* long values are cut at 64 bytes in messages */
	n = snprintf(text, size, "hostname = %0100d", 0);
	assert_true(n > 0);
	snprintf(want, sizeof want, "moat.conf:1: hostname: \"%064d...\" is not a valid host name", 0);
	expect_error(text, want);
	n = snprintf(text, size, "rules = /%01023d", 0);
	expect_error(text, "moat.conf:1: rules: path too long (max 1023 bytes)");
	n = snprintf(text, size, "spool_dir = /%01023d", 0);
	expect_error(text, "moat.conf:1: spool_dir: path too long (max 1023 bytes)");
	n = snprintf(text, size, "log = /%01023d", 0);
	expect_error(text, "moat.conf:1: log: path too long (max 1023 bytes)");
	n = snprintf(text, size, "local_domains = a%0255d", 0); /* 256 bytes */
	snprintf(want, sizeof want, "moat.conf:1: local_domains: \"a%063d...\" is not a domain name", 0);
	expect_error(text, want);
	n = snprintf(text, size, "hostname = %064d.example", 0); /* 64-byte label */
	snprintf(want, sizeof want, "moat.conf:1: hostname: \"%064d...\" is not a valid host name", 0);
	expect_error(text, want);

	/* list lengths: MOAT_CONF_LIST_MAX entries fit, one more does not */
	for (int extra = 0; extra <= 1; extra++) {
		n = snprintf(text, size, "local_domains =");
		for (int i = 0; i < MOAT_CONF_LIST_MAX + extra; i++)
			n += snprintf(text + n, size - (size_t)n, " a");
		if (extra == 0) {
			c = parse(text);
			assert_int_equal(c->nlocal_domains, MOAT_CONF_LIST_MAX);
			config_unref(c);
		} else {
			snprintf(want, sizeof want, "moat.conf:1: local_domains: more than %d entries", MOAT_CONF_LIST_MAX);
			expect_error(text, want);
		}
	}
	n = snprintf(text, size, "trusted_networks =");
	for (int i = 0; i < MOAT_CONF_LIST_MAX + 1; i++)
		n += snprintf(text + n, size - (size_t)n, " ::");
	snprintf(want, sizeof want, "moat.conf:1: trusted_networks: more than %d entries", MOAT_CONF_LIST_MAX);
	expect_error(text, want);

	/* dns_servers must fit the c-ares csv buffer */
	n = snprintf(text, size, "dns_servers =");
	for (int i = 0; i < 30; i++)
		n += snprintf(text + n, size - (size_t)n, " [1111:2222:3333:4444:5555:6666:7777:%d]:65535", 1000 + i);
	expect_error(text, "moat.conf:1: dns_servers: list too long (max 1023 bytes as ip:port,...)");
	free(text);
}

static void test_err_buffer(void **state)
{
	char err[16];
	struct config *c;

	/* no err buffer at all */
	assert_null(config_parse("bogus = 1", 9, "moat.conf", NULL, 0));
	assert_null(config_load("/nonexistent/moat.conf", NULL, 0));
	/* truncated, still terminated */
	memset(err, 'x', sizeof err);
	assert_null(config_parse("bogus = 1", 9, "moat.conf", err, sizeof err));
	assert_string_equal(err, "moat.conf:1: un");
	/* a NULL file name still gives a usable message */
	char big[128];
	assert_null(config_parse("bogus = 1", 9, NULL, big, sizeof big));
	assert_string_equal(big, "(config):1: unknown key \"bogus\"");
	/* success clears err */
	snprintf(big, sizeof big, "old");
	c = config_parse("rules = x", 9, "moat.conf", big, sizeof big);
	assert_non_null(c);
	assert_string_equal(big, "");
	config_unref(c);
	/* only len bytes are parsed */
	c = config_parse("rules = abcdef", 10, "moat.conf", big, sizeof big);
	assert_non_null(c);
	assert_string_equal(c->rules, "ab");
	config_unref(c);
}

static void test_refcount(void **state)
{
	struct config *c = config_new_defaults();

	assert_ptr_equal(config_ref(c), c);
	assert_int_equal(c->refs, 2);
	config_unref(c);
	assert_int_equal(c->refs, 1);
	config_unref(c); /* freed: LSan would report a leak otherwise */
	assert_null(config_ref(NULL));
	config_unref(NULL);

	/* a config with allocated lists frees them too */
	c = parse("local_domains = a.test b.test\ntrusted_networks = 10.0.0.0/8\n");
	config_ref(c);
	config_unref(c);
	config_unref(c);
}

/* ---- config_load ---- */

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void test_load(void **state)
{
	char dir[] = "/tmp/moat-test-config-XXXXXX", path[128], err[512], want[512];
	struct config *c;
	char *big;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/moat.conf", dir);

	snprintf(want, sizeof want, "%s: cannot open: %s", path, strerror(ENOENT));
	assert_null(config_load(path, err, sizeof err));
	assert_string_equal(err, want);

	write_file(path, "# test\nmax_recipients = 7\n", 26);
	c = config_load(path, err, sizeof err);
	assert_non_null(c);
	assert_int_equal(c->max_recipients, 7);
	config_unref(c);

	write_file(path, "# test\nmax_recipent = 7\n", 24);
	snprintf(want, sizeof want, "%s:2: unknown key \"max_recipent\"", path);
	assert_null(config_load(path, err, sizeof err));
	assert_string_equal(err, want);

	/* 1 MiB is the limit: exactly 1 MiB of blank lines loads, one byte more does not */
	big = malloc(1024 * 1024 + 1);
	assert_non_null(big);
	memset(big, '\n', 1024 * 1024 + 1);
	write_file(path, big, 1024 * 1024);
	c = config_load(path, err, sizeof err);
	assert_non_null(c);
	config_unref(c);
	write_file(path, big, 1024 * 1024 + 1);
	snprintf(want, sizeof want, "%s: too large (max 1048576 bytes)", path);
	assert_null(config_load(path, err, sizeof err));
	assert_string_equal(err, want);
	free(big);

	/* one reader for config, rule and list files: a directory (or a FIFO,
	 * which would hang a reload) is not a regular file */
	snprintf(want, sizeof want, "%s: cannot read: not a regular file", dir);
	assert_null(config_load(dir, err, sizeof err));
	assert_string_equal(err, want);

	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

/* The shipped example must load (run from the top of the tree). */
static void test_backend_tls_keys(void **state)
{
	struct config *c = parse("backend_tls = required\nbackend_tls_ca = /etc/ssl/certs\n"
	                         "backend_tls_name = mail.example.com\nxclient = yes\n");

	assert_int_equal(c->backend_tls, BACKEND_TLS_REQUIRED);
	assert_string_equal(c->backend_tls_ca, "/etc/ssl/certs");
	assert_string_equal(c->backend_tls_name, "mail.example.com");
	assert_int_equal(c->xclient, XCLIENT_MODE_YES);
	config_unref(c);
	c = parse("backend_tls = no\nbackend_tls_name = 2001:db8::25\nxclient = no\n");
	assert_int_equal(c->backend_tls, BACKEND_TLS_NO);
	assert_string_equal(c->backend_tls_name, "2001:db8::25");
	assert_int_equal(c->xclient, XCLIENT_MODE_NO);
	config_unref(c);
	c = parse("backend_tls_name = 192.0.2.25\n");
	assert_string_equal(c->backend_tls_name, "192.0.2.25");
	config_unref(c);
}

/* The backend's TLS context is made with the config (its CAs read then):
 * a CA path that cannot be read is the load's error, as -t reports it. */
static void test_load_backend_tls(void **state)
{
	char dir[] = "/tmp/moat-test-config-XXXXXX", path[128], text[512], err[512], want[512];
	struct config *c;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/moat.conf", dir);
	write_file(path, "backend_tls = no\n", 17);
	c = config_load(path, err, sizeof err);
	assert_non_null(c);
	assert_null(c->backend_ssl);
	config_unref(c);
	write_file(path, "", 0);
	c = config_load(path, err, sizeof err);
	assert_non_null(c);
	assert_non_null(c->backend_ssl); /* opportunistic: a context without CAs */
	config_unref(c);
	snprintf(text, sizeof text, "backend_tls_ca = %s/none.pem\n", dir);
	write_file(path, text, strlen(text));
	snprintf(want, sizeof want, "backend_tls_ca %s/none.pem: %s", dir, strerror(ENOENT));
	assert_null(config_load(path, err, sizeof err));
	assert_string_equal(err, want);
	snprintf(text, sizeof text, "backend_tls_ca = %s\n", path); /* a file with no certificate */
	write_file(path, text, strlen(text));
	snprintf(want, sizeof want, "backend_tls_ca %s: no certificate or crl found", path);
	assert_null(config_load(path, err, sizeof err));
	assert_string_equal(err, want);
	snprintf(text, sizeof text, "backend_tls = required\nbackend_tls_ca = %s\n", dir); /* a directory */
	write_file(path, text, strlen(text));
	c = config_load(path, err, sizeof err);
	if (!c)
		fail_msg("%s", err);
	assert_non_null(c->backend_ssl);
	config_unref(c);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

static void test_example_file(void **state)
{
	char err[512];
	struct config *c;

	if (access("docs/moat.conf.example", R_OK) != 0)
		skip();
	c = config_load("docs/moat.conf.example", err, sizeof err);
	if (c == NULL)
		fail_msg("%s", err);
	assert_string_equal(c->hostname, "mx.example.test");
	config_unref(c);
}

/* redis: a numeric address (IPv4, [IPv6]) with a port, or a socket path;
 * never a name; redis_password never shown; config_store's view. */
static void test_redis_keys(void **state)
{
	struct config *c = parse("");
	struct store_config sc;
	char big[700];

	config_store(c, &sc);
	assert_null(sc.redis);
	assert_null(sc.redis_password);
	assert_int_equal(sc.redis_db, 0);
	assert_int_equal(sc.redis_timeout, 1000);
	config_unref(c);
	c = parse("redis = 10.0.0.5:6380\nredis_password = a b#c\nredis_db = 3\nredis_timeout = 250\n");
	config_store(c, &sc);
	assert_string_equal(sc.redis, "10.0.0.5:6380");
	assert_string_equal(sc.redis_password, "a b#c");
	assert_int_equal(sc.redis_db, 3);
	assert_int_equal(sc.redis_timeout, 250);
	config_unref(c);
	config_unref(parse("redis = [::1]:6379\n"));
	config_unref(parse("redis = 127.0.0.1\n")); /* port 6379 */
	config_unref(parse("redis = /run/redis/redis-server.sock\n"));
	expect_error("redis = redis.example:6379\n",
	             "moat.conf:1: redis: \"redis.example:6379\" is not HOST:PORT with a numeric IPv4 address, "
	             "[IPv6]:PORT or a socket path (moat resolves no name for Redis: give its address)");
	expect_error("redis = 127.0.0.1:0\n", "moat.conf:1: redis: \"127.0.0.1:0\" port 0 is not a port");
	expect_error("redis = [::1\n",
	             "moat.conf:1: redis: \"[::1\" is not HOST:PORT with a numeric IPv4 address, "
	             "[IPv6]:PORT or a socket path (moat resolves no name for Redis: give its address)");
	memset(big, 'p', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	{
		char text[800];

		snprintf(text, sizeof text, "redis_password = %s\n", big);
		expect_error(text, "moat.conf:1: redis_password: longer than 511 bytes");
	}
	expect_error("redis_timeout = 5\n", "moat.conf:1: redis_timeout: \"5\" is not a number between 10 and 60000");
}

/* tls_cert and tls_key: one or two files each, split on commas only, paired
 * by position; the files themselves are tls.c's (e2e). */
static void test_tls_files(void **state)
{
	struct config *c = parse("");

	assert_int_equal(c->ntls_cert, 0);
	assert_int_equal(c->ntls_key, 0);
	assert_null(c->tls);
	config_unref(c);
	c = parse("tls_cert = /etc/moat/rsa.pem , /etc/moat/ec dsa.pem\ntls_key=/k/rsa.key,/k/ec.key\n");
	assert_int_equal(c->ntls_cert, 2);
	assert_int_equal(c->ntls_key, 2);
	assert_string_equal(c->tls_cert[0], "/etc/moat/rsa.pem");
	assert_string_equal(c->tls_cert[1], "/etc/moat/ec dsa.pem"); /* a blank inside a name stays */
	assert_string_equal(c->tls_key[0], "/k/rsa.key");
	assert_string_equal(c->tls_key[1], "/k/ec.key");
	config_unref(c);
	c = parse("tls_cert = cert.pem\ntls_key = key.pem\n");
	assert_int_equal(c->ntls_cert, 1);
	assert_string_equal(c->tls_cert[0], "cert.pem");
	config_unref(c);
	c = parse("tls_cert =\ntls_key =\n");
	assert_int_equal(c->ntls_cert, 0);
	config_unref(c);
	expect_error("tls_cert = a, b, c\ntls_key = a, b, c\n", "moat.conf:1: tls_cert: more than 2 files");
	expect_error("tls_cert = a,,b\n", "moat.conf:1: tls_cert: empty file name in the list");
	expect_error("tls_cert = a,\n", "moat.conf:1: tls_cert: empty file name in the list");
	expect_error("tls_cert = a, b\n\ntls_key = k\n",
	             "moat.conf:3: tls_cert names 2 files and tls_key 1: they go in pairs (the first key is "
	             "the first certificate's)");
	expect_error("tls_key = k\n", "moat.conf:1: tls_cert names 0 files and tls_key 1: they go in pairs (the first "
	             "key is the first certificate's)");
}

/* listen, smtps_listen, submission_listen: one list of addresses, listen's
 * first, each with its kind, at most 16 in all; the TLS listeners need
 * tls_cert and tls_key. submission_backend, auth_fail_limit and
 * auth_fail_window. */
static void render_kinds(const struct config *c, char *buf, size_t size)
{
	static const char *const names[] = { "smtp", "smtps", "submission" };
	char one[96], addr[80];

	buf[0] = '\0';
	for (int i = 0; i < c->nlisten; i++) {
		render(&c->listen[i], addr, sizeof addr);
		snprintf(one, sizeof one, "%s=%s", names[c->listen_kind[i]], addr);
		join(buf, size, one);
	}
}

static void test_listeners(void **state)
{
	static const char tls[] = "tls_cert = c.pem\ntls_key = k.pem\n";
	static const struct {
		const char *text, *want;
	} rows[] = {
		{ "", "smtp=127.0.0.1:2525" },
		{ "smtps_listen = 0.0.0.0:465\nlisten = 0.0.0.0:25\nsubmission_listen = [::]:587, 0.0.0.0:587\n",
		  "smtp=0.0.0.0:25 smtps=0.0.0.0:465 submission=[::]:587 submission=0.0.0.0:587" },
		{ "submission_listen = 127.0.0.1:587\nsmtps_listen = 127.0.0.1:465\n",
		  "smtp=127.0.0.1:2525 smtps=127.0.0.1:465 submission=127.0.0.1:587" },
		{ "smtps_listen =\nsubmission_listen = 127.0.0.1:0, 127.0.0.1:0\nlisten = 127.0.0.1:0\n",
		  "smtp=127.0.0.1:0 submission=127.0.0.1:0 submission=127.0.0.1:0" },
	};
	char text[512], buf[512];
	struct config *c;

	for (size_t i = 0; i < NELEM(rows); i++) {
		snprintf(text, sizeof text, "%s%s", tls, rows[i].text);
		c = parse(text);
		render_kinds(c, buf, sizeof buf);
		assert_string_equal(buf, rows[i].want);
		config_unref(c);
	}
	/* 16 in all, whatever the keys */
	snprintf(text, sizeof text, "%slisten = 127.0.0.1:1 127.0.0.1:2 127.0.0.1:3 127.0.0.1:4 127.0.0.1:5 "
	         "127.0.0.1:6 127.0.0.1:7 127.0.0.1:8\nsmtps_listen = 127.0.0.1:9 127.0.0.1:10 127.0.0.1:11 "
	         "127.0.0.1:12\nsubmission_listen = 127.0.0.1:13 127.0.0.1:14 127.0.0.1:15 127.0.0.1:16\n", tls);
	c = parse(text);
	assert_int_equal(c->nlisten, 16);
	config_unref(c);
	snprintf(text + strlen(text), sizeof text - strlen(text), "submission_listen = 127.0.0.1:17\n");
	expect_error(text, "moat.conf:6: duplicate key \"submission_listen\" (first on line 5)");
	snprintf(text, sizeof text, "%slisten = 127.0.0.1:1 127.0.0.1:2 127.0.0.1:3 127.0.0.1:4 127.0.0.1:5 "
	         "127.0.0.1:6 127.0.0.1:7 127.0.0.1:8\nsmtps_listen = 127.0.0.1:9 127.0.0.1:10 127.0.0.1:11 "
	         "127.0.0.1:12\nsubmission_listen = 127.0.0.1:13 127.0.0.1:14 127.0.0.1:15 127.0.0.1:16 127.0.0.1:17\n",
	         tls);
	expect_error(text, "moat.conf:5: submission_listen: more than 16 listening addresses in all (listen, "
	             "smtps_listen and submission_listen)");
	/* one address, one listener */
	expect_error("tls_cert = c\ntls_key = k\nlisten = 127.0.0.1:25\nsmtps_listen = 127.0.0.1:25\n",
	             "moat.conf:4: smtps_listen: \"127.0.0.1:25\" is in listen already");
	expect_error("tls_cert = c\ntls_key = k\nsubmission_listen = 127.0.0.1:587\nlisten = 127.0.0.1:587\n",
	             "moat.conf:4: listen: \"127.0.0.1:587\" is in submission_listen already");
	expect_error("tls_cert = c\ntls_key = k\nsmtps_listen = 127.0.0.1:465 127.0.0.1:465\n",
	             "moat.conf:3: smtps_listen: \"127.0.0.1:465\" is listed twice");
	expect_error("smtps_listen = 127.0.0.1:465\n", "moat.conf:1: smtps_listen needs tls_cert and tls_key (implicit TLS)");
	expect_error("listen = 127.0.0.1:25\n\nsubmission_listen = 127.0.0.1:587\n",
	             "moat.conf:3: submission_listen needs tls_cert and tls_key (STARTTLS is required there)");
	expect_error("tls_cert = c\ntls_key = k\nsmtps_listen = 127.0.0.1\n",
	             "moat.conf:3: smtps_listen: \"127.0.0.1\" needs a port");

	/* submission_backend: the backend unless set */
	c = parse("backend = 127.0.0.1:2526\n");
	render_backends(config_submission_backend(c), buf, sizeof buf);
	assert_string_equal(buf, "127.0.0.1:2526");
	assert_ptr_equal(config_submission_backend(c), &c->backend);
	assert_int_equal(c->auth_fail_limit, 5);
	assert_int_equal(c->auth_fail_window, 600);
	config_unref(c);
	c = parse("backend = 127.0.0.1:2526\nsubmission_backend = [::1]\nauth_fail_limit = 0\nauth_fail_window = 1\n");
	render_backends(config_submission_backend(c), buf, sizeof buf);
	assert_string_equal(buf, "[::1]:25");
	assert_int_equal(c->submission_backend.t[0].addrlen, sizeof(struct sockaddr_in6));
	assert_int_equal(c->auth_fail_limit, 0);
	assert_int_equal(c->auth_fail_window, 1);
	config_unref(c);
	expect_error("auth_fail_window = 0\n", "moat.conf:1: auth_fail_window: \"0\" is not a number between 1 and 86400");
	expect_error("submission_backend = x\n", "moat.conf:1: submission_backend: \"x\" is a name of one label: write it in full (mta.example.com), moat does not apply resolv.conf's search list (for this host, 127.0.0.1)");
	/* names and lists, in the same syntax as backend's */
	c = parse("backend = mta.mail.svc.cluster.local:25\nsubmission_backend = sub1.example.com:587, 192.0.2.7:587\n");
	render_backends(&c->backend, buf, sizeof buf);
	assert_string_equal(buf, "mta.mail.svc.cluster.local:25");
	render_backends(config_submission_backend(c), buf, sizeof buf);
	assert_string_equal(buf, "sub1.example.com:587 192.0.2.7:587");
	config_unref(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_proxy_protocol),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_backend),
		cmocka_unit_test(test_dns_servers),
		cmocka_unit_test(test_trusted_networks),
		cmocka_unit_test(test_hostname),
		cmocka_unit_test(test_local_domains),
		cmocka_unit_test(test_paths_and_log),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_errors_generated),
		cmocka_unit_test(test_err_buffer),
		cmocka_unit_test(test_refcount),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_backend_tls_keys),
		cmocka_unit_test(test_load_backend_tls),
		cmocka_unit_test(test_example_file),
		cmocka_unit_test(test_tls_files),
		cmocka_unit_test(test_listeners),
		cmocka_unit_test(test_redis_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
