/* config.c - moat.conf: a declarative table of keys, a pure parser, a loader
 *
 * Every key is one row of keys[] (name, setter, bounds, default, field), in
 * the style of Postfix parameters / Redis static_configs. Defaults are given
 * as config text and go through the same setters as the file, so a default
 * can never bypass validation. */
#include "checks/dmarc_org.h"
#include "checks/registry.h"
#include "proxy/backend_tls.h"
#include "proxy/config.h"
#include "checks/recipients.h"
#include "rules/rules.h"
#include "proxy/lib/strset.h"
#include "proxy/lib/bounds.h"
#include "proxy/lib/domain.h"
#include "proxy/lib/idna.h"
#include "proxy/lib/readfile.h"
#include "proxy/lib/text.h"
#include "proxy/store.h"
#include "proxy/store_addr.h"
#include "proxy/tls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define CONF_FILE_MAX (1024 * 1024) /* config_load refuses bigger files */
#define MSG_MAX 512                 /* one setter message, before FILE:LINE */
#define SHOW_MAX TEXT_SHOW_MAX
#define XSTR(x) STR(x)
#define STR(x) #x
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define LISTEN_MAX ((long long)NELEM(((struct config *)0)->listen))

enum {
	F_EMPTY_OK = 1, /* "key =" is a valid (empty) value */
	F_ABSOLUTE = 2, /* path must start with '/' */
};

struct key;
/* Validate val and store it into c; on error write a message (without the
 * "FILE:LINE: key: " prefix) into msg. val may be modified (list splitting). */
typedef int (*setter_fn)(const struct key *k, struct config *c, char *val, char *msg, size_t msz);

struct key {
	const char *name;
	setter_fn set;
	long long min, max; /* numbers: value bounds; lists: entry count bounds */
	const char *def;    /* default as config text; NULL: computed (hostname) */
	size_t off;         /* field for the generic setters */
	size_t size;        /* string field size */
	int flags;
};

static int set_int(const struct key *, struct config *, char *, char *, size_t);
static int set_size(const struct key *, struct config *, char *, char *, size_t);
static int set_bool(const struct key *, struct config *, char *, char *, size_t);
static int set_path(const struct key *, struct config *, char *, char *, size_t);
static int set_listen(const struct key *, struct config *, char *, char *, size_t);
static int set_backend(const struct key *, struct config *, char *, char *, size_t);
static int set_submission_backend(const struct key *, struct config *, char *, char *, size_t);
static int set_metrics_listen(const struct key *, struct config *, char *, char *, size_t);
static int set_hostname(const struct key *, struct config *, char *, char *, size_t);
static int set_domains(const struct key *, struct config *, char *, char *, size_t);
static int set_networks(const struct key *, struct config *, char *, char *, size_t);
static int set_forwarders(const struct key *, struct config *, char *, char *, size_t);
static int set_dns(const struct key *, struct config *, char *, char *, size_t);
static int set_log(const struct key *, struct config *, char *, char *, size_t);
static int set_user(const struct key *, struct config *, char *, char *, size_t);
static int set_mode(const struct key *, struct config *, char *, char *, size_t);
static int set_workers(const struct key *, struct config *, char *, char *, size_t);
static int set_tls_files(const struct key *, struct config *, char *, char *, size_t);
static int set_choice(const struct key *, struct config *, char *, char *, size_t);
static int set_tls_name(const struct key *, struct config *, char *, char *, size_t);
static int set_dnsbl_sites(const struct key *, struct config *, char *, char *, size_t);
static int set_redis(const struct key *, struct config *, char *, char *, size_t);
static int set_secret(const struct key *, struct config *, char *, char *, size_t);

#define OFF(f) offsetof(struct config, f)
#define SZ(f) sizeof(((struct config *)0)->f)
#define INT(f, lo, hi, d) { #f, set_int, lo, hi, XSTR(d), OFF(f), SZ(f), 0 }
#define PATH(f, d, fl) { #f, set_path, 0, 0, d, OFF(f), SZ(f), fl }

static const struct key keys[] = {
	/* off: the listener kind */
	{ "listen", set_listen, 1, LISTEN_MAX, "127.0.0.1:2525", LISTENER_SMTP, 0, 0 },
	{ "smtps_listen", set_listen, 0, LISTEN_MAX, "", LISTENER_SMTPS, 0, F_EMPTY_OK },
	{ "submission_listen", set_listen, 0, LISTEN_MAX, "", LISTENER_SUBMISSION, 0, F_EMPTY_OK },
	{ "backend", set_backend, 0, 0, "127.0.0.1:25", 0, 0, 0 },
	{ "submission_backend", set_submission_backend, 0, 0, "", 0, 0, F_EMPTY_OK },
	{ "metrics_listen", set_metrics_listen, 0, 0, "", 0, 0, F_EMPTY_OK },
	INT(backend_probe_interval, 1, 3600, 10),
	{ "hostname", set_hostname, 0, 0, NULL, 0, 0, 0 },
	{ "local_domains", set_domains, 0, MOAT_CONF_LIST_MAX, "", 0, 0, F_EMPTY_OK },
	{ "trusted_networks", set_networks, 0, MOAT_CONF_LIST_MAX, "", 0, 0, F_EMPTY_OK },
	{ "trusted_forwarders", set_forwarders, 0, MOAT_CONF_LIST_MAX, "", 0, 0, F_EMPTY_OK },
	{ "dns_servers", set_dns, 0, MOAT_CONF_LIST_MAX, "", 0, 0, F_EMPTY_OK },
	{ "proxy_protocol", set_bool, 0, 1, "no", OFF(proxy_protocol), 0, 0 },
	PATH(rules, "", F_EMPTY_OK),
	{ "config_watch", set_bool, 0, 1, "no", OFF(config_watch), 0, 0 },
	{ "mode", set_mode, 0, 0, "enforce", 0, 0, 0 },
	{ "workers", set_workers, 1, MOAT_WORKERS_MAX, "auto", OFF(workers), SZ(workers), 0 },
	PATH(local_recipients, "", F_EMPTY_OK),
	{ "log", set_log, 0, 0, "stderr", 0, 0, 0 },
	PATH(spool_dir, "/tmp", F_ABSOLUTE),
	PATH(record_dir, "", F_EMPTY_OK | F_ABSOLUTE),
	{ "record_messages", set_bool, 0, 1, "no", OFF(record_messages), 0, 0 },
	{ "max_message_size", set_size, 1024, 2147483648LL, "10240000", OFF(max_message_size), 0, 0 },
	INT(max_recipients, 1, 100000, 100),
	INT(max_connections, 1, 1000000, 1000),
	INT(max_connections_per_ip, 1, 1000000, 20),
	INT(command_timeout, 1, 3600, 300),
	INT(data_timeout, 1, 7200, 600),
	INT(shutdown_grace, 0, 3600, MOAT_SHUTDOWN_GRACE),
	INT(backend_timeout, 1, 3600, MOAT_BACKEND_CMD_TIMEOUT),
	INT(backend_data_timeout, 1, 7200, MOAT_BACKEND_DATA_TIMEOUT),
	INT(backend_cache_time, 0, 300, MOAT_BACKEND_POOL_IDLE),
	{ "backend_tls", set_choice, 0, 0, "opportunistic", OFF(backend_tls), SZ(backend_tls), 0 },
	PATH(backend_tls_ca, "", F_EMPTY_OK | F_ABSOLUTE),
	{ "backend_tls_name", set_tls_name, 0, 0, "", 0, 0, F_EMPTY_OK },
	{ "xclient", set_choice, 0, 0, "auto", OFF(xclient), SZ(xclient), 0 },
	INT(dns_timeout, 100, 30000, 1500),
	INT(dns_tries, 1, 10, 2),
	INT(dns_cache_size, 0, 10000000, 100000),
	{ "delay_reject", set_bool, 0, 1, "yes", OFF(delay_reject), 0, 0 },
	{ "strict_envelopes", set_bool, 0, 1, "no", OFF(strict_envelopes), 0, 0 },
	{ "check_sender_domain", set_bool, 0, 1, "yes", OFF(check_sender_domain), 0, 0 },
	{ "check_spf", set_bool, 0, 1, "yes", OFF(check_spf), 0, 0 },
	{ "check_dkim", set_bool, 0, 1, "yes", OFF(check_dkim), 0, 0 },
	{ "check_dmarc", set_bool, 0, 1, "yes", OFF(check_dmarc), 0, 0 },
	PATH(public_suffix_list, DMARC_PSL_DEFAULT, F_ABSOLUTE),
	PATH(dmarc_sample_key, "", F_EMPTY_OK),
	{ "dnsbl_sites", set_dnsbl_sites, 0, 0, "", OFF(dnsbl_sites), 0, F_EMPTY_OK },
	{ "dbl_sites", set_dnsbl_sites, 0, 0, "", OFF(dbl_sites), 0, F_EMPTY_OK },
	INT(dnsbl_threshold, 1, 100000, 1),
	INT(dbl_threshold, 1, 100000, 1),
	INT(dnsbl_timeout, 100, 30000, 1500),
	{ "dnsbl_reply_sites", set_bool, 0, 1, "yes", OFF(dnsbl_reply_sites), 0, 0 },
	{ "redis", set_redis, 0, 0, "", 0, 0, F_EMPTY_OK },
	{ "redis_password", set_secret, 0, 0, "", OFF(redis_password), SZ(redis_password), F_EMPTY_OK },
	INT(redis_db, 0, 65535, 0),
	INT(redis_timeout, 10, 60000, 1000),
	{ "user", set_user, 0, 0, "", OFF(user), SZ(user), F_EMPTY_OK },
	PATH(chroot, "", F_EMPTY_OK | F_ABSOLUTE),
	{ "run_as_root", set_bool, 0, 1, "no", OFF(run_as_root), 0, 0 },
	INT(greet_pause, 0, 30000, 0),
	INT(auth_fail_limit, 0, 100000, 5),
	INT(auth_fail_window, 1, 86400, 600),
	INT(greylist_delay, 1, 86400, 300),
	INT(greylist_retry_window, 1, 2592000, 86400),
	INT(greylist_pass_time, 1, 31536000, 3024000),
	INT(greylist_auto_allow, 0, 1000000, 5),
	INT(greylist_auto_allow_time, 1, 31536000, 3024000),
	{ "tls_cert", set_tls_files, 1, CONFIG_TLS_PAIRS, "", OFF(tls_cert), SZ(tls_cert[0]), F_EMPTY_OK },
	{ "tls_key", set_tls_files, 1, CONFIG_TLS_PAIRS, "", OFF(tls_key), SZ(tls_key[0]), F_EMPTY_OK },
};
#define NKEYS NELEM(keys)

/* ---- messages ---- */

/* Untrusted text for a message (text_show of a string). */
static void show(const char *s, char out[SHOW_MAX + 4])
{
	text_show(s, strlen(s), out);
}

/* "\"<value>\" <what>" */
__attribute__((format(printf, 4, 5)))
static int bad(char *msg, size_t msz, const char *val, const char *fmt, ...)
{
	char shown[SHOW_MAX + 4], what[MSG_MAX];
	va_list ap;

	show(val, shown);
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return text_error(msg, msz, "\"%s\" %s", shown, what);
}

/* ---- value syntax ---- */

static int is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* Plain decimal only: no sign, no suffix, no base prefix ("010" is ten). */
static int parse_number(const char *s, long long min, long long max, long long *out)
{
	long long v = 0;

	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (max - (*s - '0')) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	if (v < min || v > max) /* the loop only stops overflow */
		return -1;
	*out = v;
	return 0;
}

/* An RFC 1123 host name (not an address). */
static int domain_ok(const char *s)
{
	size_t n = strlen(s);

	return n <= MOAT_DOMAIN_MAX && domain_check(s, n, DOMAIN_LDH | DOMAIN_NOT_NUMERIC) >= 0;
}

/* Split a list on commas and/or blanks, in place; empty entries are skipped. */
static int split_list(const struct key *k, char *val, char **items, char *msg, size_t msz)
{
	int n = 0;

	for (char *p = val;;) {
		p += strspn(p, ", \t");
		if (*p == '\0')
			break;
		if (n >= k->max)
			return text_error(msg, msz, "more than %lld entries", k->max);
		items[n++] = p;
		p += strcspn(p, ", \t");
		if (*p)
			*p++ = '\0';
	}
	if (n < k->min)
		return text_error(msg, msz, "empty value");
	return n;
}

/* A numeric address with a port; default_port 0 means the port is required.
 * "needs a port" is told apart from junk by retrying with a stand-in port. */
static int parse_addr(const char *s, int default_port, struct sockaddr_storage *ss,
		      socklen_t *len, char *msg, size_t msz)
{
	if (hostport_parse(s, default_port, ss, len) == 0) {
		if (default_port > 0 && sockaddr_port((struct sockaddr *)ss) == 0)
			return bad(msg, msz, s, "has port 0");
		return 0;
	}
	if (default_port == 0 && hostport_parse(s, 1, ss, len) == 0)
		return bad(msg, msz, s, "needs a port");
	if (default_port == 0)
		return bad(msg, msz, s, "is not a numeric address:port");
	return bad(msg, msz, s, "is not a numeric address[:port]");
}

/* ---- setters ---- */

static int set_int(const struct key *k, struct config *c, char *val, char *msg, size_t msz)
{
	long long v;

	if (parse_number(val, k->min, k->max, &v) < 0)
		return bad(msg, msz, val, "is not a number between %lld and %lld", k->min, k->max);
	*(int *)(void *)((char *)c + k->off) = (int)v;
	return 0;
}

static int set_size(const struct key *k, struct config *c, char *val, char *msg, size_t msz)
{
	long long v;

	if (parse_number(val, k->min, k->max, &v) < 0)
		return bad(msg, msz, val, "is not a number between %lld and %lld", k->min, k->max);
	*(size_t *)(void *)((char *)c + k->off) = (size_t)v;
	return 0;
}

static int set_bool(const struct key *k, struct config *c, char *val, char *msg, size_t msz)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	int *field = (int *)(void *)((char *)c + k->off);

	for (size_t i = 0; i < NELEM(yes); i++) {
		if (strcasecmp(val, yes[i]) == 0 || strcasecmp(val, no[i]) == 0) {
			*field = strcasecmp(val, yes[i]) == 0;
			return 0;
		}
	}
	return bad(msg, msz, val, "is not yes or no");
}

static int copy_path(const char *val, char *dst, size_t size, char *msg, size_t msz)
{
	size_t n = strlen(val);

	if (n >= size)
		return text_error(msg, msz, "path too long (max %zu bytes)", size - 1);
	memcpy(dst, val, n + 1);
	return 0;
}

static int set_path(const struct key *k, struct config *c, char *val, char *msg, size_t msz)
{
	if ((k->flags & F_ABSOLUTE) && val[0] != '/' && !(val[0] == '\0' && (k->flags & F_EMPTY_OK)))
		return bad(msg, msz, val, "is not an absolute path");
	return copy_path(val, (char *)c + k->off, k->size, msg, msz);
}

/* dnsbl_sites, dbl_sites: "zone[=filter][*weight], ..." (checks/dnsbl_sites.h) */
static int set_dnsbl_sites(const struct key *k, struct config *c, char *val, char *msg, size_t msz)
{
	struct dnsbl_sites *ds = (struct dnsbl_sites *)(void *)((char *)c + k->off);

	return dnsbl_sites_parse(val, ds, msg, msz) < 0 ? -1 : 0;
}

/* redis: an address or a socket path, never a name (store_addr.h) */
static int set_redis(const struct key *k, struct config *c, char *val, char *msg, size_t msz)
{
	struct store_redis_addr a;
	char why[MSG_MAX];

	if (*val && store_redis_addr_parse(val, &a, why, sizeof why) < 0)
		return bad(msg, msz, val, "%s", why);
	return copy_path(val, c->redis, sizeof c->redis, msg, msz);
}

/* A password: never shown in a message. */
static int set_secret(const struct key *k, struct config *c, char *val, char *msg, size_t msz)
{
	size_t n = strlen(val);

	if (n >= k->size)
		return text_error(msg, msz, "longer than %zu bytes", k->size - 1);
	memcpy((char *)c + k->off, val, n + 1);
	return 0;
}

/* A user name: looked up only at start-up (NSS may block), here its spelling. */
static int set_user(const struct key *k, struct config *c, char *val, char *msg, size_t msz)
{
	size_t i, n = strlen(val);

	for (i = 0; i < n; i++)
		if (!(isalnum((unsigned char)val[i]) || strchr("._-", val[i])) || (i == 0 && val[i] == '-'))
			return bad(msg, msz, val, "is not a user name");
	if (n >= sizeof c->user)
		return bad(msg, msz, val, "is too long for a user name");
	memcpy(c->user, val, n + 1);
	return 0;
}

static int set_log(const struct key *k, struct config *c, char *val, char *msg, size_t msz)
{
	if (strcmp(val, "stderr") == 0 || strcmp(val, "syslog") == 0) {
		c->log_target = val[1] == 't' ? LOG_TO_STDERR : LOG_TO_SYSLOG;
		c->log_file[0] = '\0';
		return 0;
	}
	if (val[0] != '/' && strncmp(val, "./", 2) != 0)
		return bad(msg, msz, val, "is not stderr, syslog or a path starting with / or ./");
	if (copy_path(val, c->log_file, sizeof c->log_file, msg, msz) < 0)
		return -1;
	c->log_target = LOG_TO_FILE;
	return 0;
}

/* The key of a listener kind. */
static const char *listen_key(enum listener_kind kind)
{
	return kind == LISTENER_SMTPS ? "smtps_listen" : kind == LISTENER_SUBMISSION ? "submission_listen" : "listen";
}

/* listen, smtps_listen, submission_listen (k->off: the kind): this kind's
 * addresses replace its old ones in c->listen, which keeps the kinds in
 * order (listen's first) and holds LISTEN_MAX in all. */
static int set_listen(const struct key *k, struct config *c, char *val, char *msg, size_t msz)
{
	enum listener_kind kind = (enum listener_kind)k->off;
	char *items[LISTEN_MAX];
	struct sockaddr_storage ss[LISTEN_MAX];
	socklen_t len[LISTEN_MAX];
	enum listener_kind kinds[LISTEN_MAX];
	const char *written[LISTEN_MAX]; /* the new ones as written; NULL: an old one */
	int n = split_list(k, val, items, msg, msz), total = 0, i, j;

	if (n < 0)
		return -1;
	for (i = 0; i <= c->nlisten; i++) {
		/* the new ones go where this kind's were (before a later kind's) */
		if ((i == c->nlisten || c->listen_kind[i] > kind) && (i == 0 || c->listen_kind[i - 1] <= kind)) {
			for (j = 0; j < n; j++, total++) {
				if (total == LISTEN_MAX)
					return text_error(msg, msz, "more than %lld listening addresses in all (listen, "
					                  "smtps_listen and submission_listen)", LISTEN_MAX);
				if (parse_addr(items[j], 0, &ss[total], &len[total], msg, msz) < 0)
					return -1;
				kinds[total] = kind;
				written[total] = items[j];
			}
		}
		if (i < c->nlisten && c->listen_kind[i] != kind) {
			if (total == LISTEN_MAX)
				return text_error(msg, msz, "more than %lld listening addresses in all (listen, smtps_listen "
				                  "and submission_listen)", LISTEN_MAX);
			ss[total] = c->listen[i];
			len[total] = c->listen_len[i];
			written[total] = NULL;
			kinds[total++] = c->listen_kind[i];
		}
	}
	/* Port 0 twice is fine: each gets its own free port. */
	for (i = 0; i < total; i++)
		for (j = 0; j < i && sockaddr_port((struct sockaddr *)&ss[i]) != 0; j++)
			if (memcmp(&ss[i], &ss[j], sizeof ss[i]) == 0) {
				const char *shown = written[i] ? written[i] : written[j];

				if (kinds[i] == kinds[j])
					return bad(msg, msz, shown, "is listed twice");
				return bad(msg, msz, shown, "is in %s already", listen_key(written[i] ? kinds[j] : kinds[i]));
			}
	memcpy(c->listen, ss, (size_t)total * sizeof ss[0]);
	memcpy(c->listen_len, len, (size_t)total * sizeof len[0]);
	memcpy(c->listen_kind, kinds, (size_t)total * sizeof kinds[0]);
	c->nlisten = total;
	return 0;
}

static int set_backend(const struct key *k, struct config *c, char *val, char *msg, size_t msz)
{
	return backend_list_parse(val, &c->backend, msg, msz);
}

/* Empty: the backend. */
static int set_submission_backend(const struct key *k, struct config *c, char *val, char *msg, size_t msz)
{
	c->submission_backend.n = 0;
	return *val ? backend_list_parse(val, &c->submission_backend, msg, msz) : 0;
}

/* Empty: off. */
static int set_metrics_listen(const struct key *k, struct config *c, char *val, char *msg, size_t msz)
{
	c->metrics_listen_len = 0;
	return *val ? parse_addr(val, 0, &c->metrics_listen, &c->metrics_listen_len, msg, msz) : 0;
}

const struct backend_list *config_submission_backend(const struct config *c)
{
	return c->submission_backend.n ? &c->submission_backend : &c->backend;
}

static int set_hostname(const struct key *k, struct config *c, char *val, char *msg, size_t msz)
{
	if (!domain_ok(val))
		return bad(msg, msz, val, "is not a valid host name");
	snprintf(c->hostname, sizeof c->hostname, "%s", val);
	return 0;
}

static void free_domains(char **d, int n)
{
	for (int i = 0; i < n; i++)
		free(d[i]);
	free(d);
}

/* An entry in the form the relay check compares (smtp_path.ascii_domain):
 * lower case, A-labels, whether written with U-labels or A-labels;
 * ".example.com" (subdomains) keeps its dot. */
static int domain_entry(const char *s, char *out, size_t size)
{
	size_t dot = s[0] == '.';

	out[0] = '.';
	return idna_to_ascii(s + dot, strlen(s + dot), out + dot, size - dot) == IDNA_OK && domain_ok(out + dot);
}

static int set_domains(const struct key *k, struct config *c, char *val, char *msg, size_t msz)
{
	char *items[MOAT_CONF_LIST_MAX], name[MOAT_DOMAIN_MAX + 2];
	char **d = NULL;
	int n = split_list(k, val, items, msg, msz);

	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++)
		if (!domain_entry(items[i], name, sizeof name))
			return bad(msg, msz, items[i], "is not a domain name");
	if (n > 0 && (d = calloc((size_t)n, sizeof *d)) == NULL)
		return text_error(msg, msz, "out of memory");
	for (int i = 0; i < n; i++) {
		domain_entry(items[i], name, sizeof name);
		if ((d[i] = strdup(name)) == NULL) {
			free_domains(d, i);
			return text_error(msg, msz, "out of memory");
		}
	}
	free_domains(c->local_domains, c->nlocal_domains);
	c->local_domains = d;
	c->nlocal_domains = n;
	return 0;
}

/* A list of addresses and networks into *out, *nout (replacing them). */
static int parse_networks(const struct key *k, char *val, struct cidr **out, int *nout, char *msg, size_t msz)
{
	char *items[MOAT_CONF_LIST_MAX];
	struct cidr *nets = NULL;
	int n = split_list(k, val, items, msg, msz);

	if (n < 0)
		return -1;
	if (n > 0 && (nets = calloc((size_t)n, sizeof *nets)) == NULL)
		return text_error(msg, msz, "out of memory");
	for (int i = 0; i < n; i++) {
		if (cidr_parse(items[i], &nets[i]) < 0) {
			free(nets);
			return bad(msg, msz, items[i], "is not an IP address or network");
		}
	}
	free(*out);
	*out = nets;
	*nout = n;
	return 0;
}

static int set_networks(const struct key *k, struct config *c, char *val, char *msg, size_t msz)
{
	return parse_networks(k, val, &c->trusted_networks, &c->ntrusted_networks, msg, msz);
}

static int set_forwarders(const struct key *k, struct config *c, char *val, char *msg, size_t msz)
{
	return parse_networks(k, val, &c->trusted_forwarders, &c->ntrusted_forwarders, msg, msz);
}

/* Stored as the c-ares servers csv: "1.2.3.4:53,[::1]:5353". */
static int set_dns(const struct key *k, struct config *c, char *val, char *msg, size_t msz)
{
	char *items[MOAT_CONF_LIST_MAX];
	char csv[sizeof c->dns_servers], host[INET6_ADDRSTRLEN];
	struct sockaddr_storage ss;
	socklen_t len;
	size_t used = 0;
	int n = split_list(k, val, items, msg, msz);

	if (n < 0)
		return -1;
	csv[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (parse_addr(items[i], 53, &ss, &len, msg, msz) < 0)
			return -1;
		sockaddr_ntop((struct sockaddr *)&ss, host, sizeof host);
		int v6 = strchr(host, ':') != NULL; /* v4-mapped comes back as plain v4 */
		int w = snprintf(csv + used, sizeof csv - used, "%s%s%s%s:%d", i ? "," : "",
				 v6 ? "[" : "", host, v6 ? "]" : "", sockaddr_port((struct sockaddr *)&ss));
		if (w < 0 || (size_t)w >= sizeof csv - used)
			return text_error(msg, msz, "list too long (max %zu bytes as ip:port,...)", sizeof csv - 1);
		used += (size_t)w;
	}
	memcpy(c->dns_servers, csv, used + 1);
	return 0;
}

/* enforce: the rules' rejections are sent; monitor: only logged ("would reject"). */
static int set_mode(const struct key *k, struct config *c, char *val, char *msg, size_t msz)
{
	if (strcmp(val, "enforce") == 0)
		c->monitor = 0;
	else if (strcmp(val, "monitor") == 0)
		c->monitor = 1;
	else
		return bad(msg, msz, val, "is not enforce or monitor");
	return 0;
}

/* auto (0: one per online CPU, decided at start) or a count. */
static int set_workers(const struct key *k, struct config *c, char *val, char *msg, size_t msz)
{
	if (strcmp(val, "auto") == 0) {
		c->workers = 0;
		return 0;
	}
	return set_int(k, c, val, msg, msz);
}

/* One or two paths, comma-separated (blanks around a comma are not part of
 * a path); paired with the other key's by position. */
static int set_tls_files(const struct key *k, struct config *c, char *val, char *msg, size_t msz)
{
	char *files = (char *)c + k->off; /* CONFIG_TLS_PAIRS rows of k->size bytes */
	int *n = k->off == OFF(tls_cert) ? &c->ntls_cert : &c->ntls_key;
	int count = 0;

	*n = 0;
	if (*val == '\0')
		return 0;
	for (char *p = val, *comma;; p = comma + 1) {
		char *end;

		if ((comma = strchr(p, ',')))
			*comma = '\0';
		while (is_blank(*p))
			p++;
		end = p + strlen(p);
		while (end > p && is_blank(end[-1]))
			*--end = '\0';
		if (*p == '\0')
			return text_error(msg, msz, "empty file name in the list");
		if (count == k->max)
			return text_error(msg, msz, "more than %lld files", k->max);
		if (copy_path(p, files + (size_t)count * k->size, k->size, msg, msz) < 0)
			return -1;
		count++;
		if (!comma)
			break;
	}
	*n = count;
	return 0;
}

/* A key with a few words for values: the word's index into its field
 * (an enum in the words' order). */
static const struct {
	const char *key;
	const char *words[4];
	const char *expect;
} choices[] = {
	{ "backend_tls", { "no", "opportunistic", "required" }, "no, opportunistic or required" },
	{ "xclient", { "auto", "yes", "no" }, "auto, yes or no" },
};

static int set_choice(const struct key *k, struct config *c, char *val, char *msg, size_t msz)
{
	for (size_t i = 0; i < NELEM(choices); i++) {
		if (strcmp(choices[i].key, k->name) != 0)
			continue;
		for (int w = 0; w < 4 && choices[i].words[w]; w++)
			if (strcmp(val, choices[i].words[w]) == 0) {
				*(int *)(void *)((char *)c + k->off) = w;
				return 0;
			}
		return bad(msg, msz, val, "is not %s", choices[i].expect);
	}
	return text_error(msg, msz, "no words for this key"); /* a key table without its row */
}

/* A host name, or an address (checked against the certificate's). */
static int set_tls_name(const struct key *k, struct config *c, char *val, char *msg, size_t msz)
{
	unsigned char a[16];

	if (val[0] && !domain_ok(val) && inet_pton(AF_INET, val, a) != 1 && inet_pton(AF_INET6, val, a) != 1)
		return bad(msg, msz, val, "is not a host name or an IP address");
	snprintf(c->backend_tls_name, sizeof c->backend_tls_name, "%s", val);
	return 0;
}

/* ---- defaults, refcount ---- */

/* gethostname() if it is a usable name, else "localhost". */
static void default_hostname(char *buf, size_t size)
{
	if (gethostname(buf, size) != 0)
		buf[0] = '\0';
	buf[size - 1] = '\0';
	if (!domain_ok(buf))
		snprintf(buf, size, "localhost");
}

static void config_free(struct config *c)
{
	free_domains(c->local_domains, c->nlocal_domains);
	free(c->trusted_networks);
	free(c->trusted_forwarders);
	strset_free(c->rcpt_table);
	ruleset_unref(c->ruleset);
	tls_server_free(c->tls);
	backend_tls_ctx_free(c->backend_ssl);
	free(c);
}

struct config *config_new_defaults(void)
{
	char val[MOAT_CONF_LINE_MAX + 1], msg[MSG_MAX];
	struct config *c = calloc(1, sizeof *c);

	if (c == NULL)
		return NULL;
	c->refs = 1;
	for (size_t i = 0; i < NKEYS; i++) {
		if (keys[i].def)
			snprintf(val, sizeof val, "%s", keys[i].def);
		else
			default_hostname(val, sizeof val);
		if (keys[i].set(&keys[i], c, val, msg, sizeof msg) < 0) {
			config_free(c); /* only out of memory: defaults are valid */
			return NULL;
		}
	}
	return c;
}

void config_check_options(const struct config *c, struct check_options *o)
{
	o->hostname = c->hostname;
	o->local_domains = c->local_domains;
	o->nlocal_domains = c->nlocal_domains;
	o->trusted_networks = c->trusted_networks;
	o->ntrusted_networks = c->ntrusted_networks;
	o->trusted_forwarders = c->trusted_forwarders;
	o->ntrusted_forwarders = c->ntrusted_forwarders;
	o->rcpt_table = c->rcpt_table;
	o->ruleset = c->ruleset;
	o->monitor = c->monitor;
	o->check_sender_domain = c->check_sender_domain;
	o->check_spf = c->check_spf;
	o->check_dkim = c->check_dkim;
	o->check_dmarc = c->check_dmarc;
	o->dmarc_sample_key = c->dmarc_sample_key;
	o->dnsbl_sites = &c->dnsbl_sites;
	o->dbl_sites = &c->dbl_sites;
	o->dnsbl_threshold = c->dnsbl_threshold;
	o->dbl_threshold = c->dbl_threshold;
	o->dnsbl_timeout = c->dnsbl_timeout;
	o->dnsbl_reply_sites = c->dnsbl_reply_sites;
	o->want_rdns = 0; /* the session's to say (XCLIENT) */
}

void config_store(const struct config *c, struct store_config *o)
{
	o->redis = c->redis[0] ? c->redis : NULL;
	o->redis_password = c->redis_password[0] ? c->redis_password : NULL;
	o->redis_db = c->redis_db;
	o->redis_timeout = c->redis_timeout;
}

struct config *config_ref(struct config *c)
{
	if (c)
		c->refs++;
	return c;
}

void config_unref(struct config *c)
{
	if (c && --c->refs == 0)
		config_free(c);
}

/* ---- parser ---- */

struct parser {
	const char *fname;
	int line;
	int seen[NKEYS]; /* line each key was set on; 0: not yet */
	struct config *c;
	char *err;
	size_t errsize;
};

__attribute__((format(printf, 2, 3)))
static int perr(struct parser *p, const char *fmt, ...)
{
	char what[MSG_MAX + 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (p->err && p->errsize)
		snprintf(p->err, p->errsize, "%s:%d: %s", p->fname, p->line, what);
	return -1;
}

/* '#' starts a comment at the start of a line or after a blank: "a#b" stays. */
static void strip_comment(char *s)
{
	for (char *p = s; *p; p++) {
		if (*p == '#' && (p == s || is_blank(p[-1]))) {
			*p = '\0';
			return;
		}
	}
}

static char *trim(char *s)
{
	size_t n;

	while (is_blank(*s))
		s++;
	n = strlen(s);
	while (n > 0 && is_blank(s[n - 1]))
		s[--n] = '\0';
	return s;
}

static const struct key *find_key(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static int set_key(struct parser *p, const struct key *k, char *val)
{
	char msg[MSG_MAX];
	int *seen = &p->seen[k - keys];

	if (*seen)
		return perr(p, "duplicate key \"%s\" (first on line %d)", k->name, *seen);
	*seen = p->line;
	if (*val == '\0' && !(k->flags & F_EMPTY_OK))
		return perr(p, "%s: empty value", k->name);
	if (k->set(k, p->c, val, msg, sizeof msg) < 0)
		return perr(p, "%s: %s", k->name, msg);
	return 0;
}

static int parse_line(struct parser *p, char *line)
{
	char shown[SHOW_MAX + 4];
	const struct key *k;
	char *s, *eq;
	size_t klen;

	strip_comment(line);
	s = trim(line);
	if (*s == '\0')
		return 0;
	klen = strcspn(s, " \t=");
	eq = s + klen + strspn(s + klen, " \t");
	if (klen == 0)
		return perr(p, "missing key before \"=\"");
	if (*eq != '=')
		return perr(p, "missing \"=\" after key");
	s[klen] = '\0';
	if ((k = find_key(s)) == NULL) {
		show(s, shown);
		return perr(p, "unknown key \"%s\"", shown);
	}
	return set_key(p, k, trim(eq + 1));
}

static int parse_text(struct parser *p, const char *text, size_t len)
{
	char line[MOAT_CONF_LINE_MAX + 1];
	struct text_lines t;
	const char *start;
	size_t n;
	int r;

	text_lines_begin(&t, text, len);
	while ((r = text_lines_next(&t, &start, &n)) != 0) {
		p->line = t.line;
		if (r < 0)
			return perr(p, "NUL byte in line");
		if (n > MOAT_CONF_LINE_MAX)
			return perr(p, "line too long (max %d bytes)", MOAT_CONF_LINE_MAX);
		memcpy(line, start, n);
		line[n] = '\0';
		if (parse_line(p, line) < 0)
			return -1;
	}
	return 0;
}

/* Keys that only make sense together, once every line is read. */
static int check_keys(struct parser *p)
{
	const struct key *cert = find_key("tls_cert"), *key = find_key("tls_key"), *btls = find_key("backend_tls");

	if (p->c->backend_tls == BACKEND_TLS_REQUIRED && !p->c->backend_tls_ca[0]) {
		p->line = p->seen[btls - keys];
		return perr(p, "backend_tls = required needs backend_tls_ca (the CA that signed the backend's "
		               "certificate, or a directory of CAs such as /etc/ssl/certs)");
	}
	if (p->c->ntls_cert != p->c->ntls_key) {
		p->line = p->seen[cert - keys] > p->seen[key - keys] ? p->seen[cert - keys] : p->seen[key - keys];
		return perr(p, "tls_cert names %d file%s and tls_key %d: they go in pairs (the first key is the "
		            "first certificate's)", p->c->ntls_cert, p->c->ntls_cert == 1 ? "" : "s", p->c->ntls_key);
	}
	if (p->c->greylist_retry_window <= p->c->greylist_delay) {
		const struct key *rw = find_key("greylist_retry_window"), *gd = find_key("greylist_delay");

		p->line = p->seen[rw - keys] > p->seen[gd - keys] ? p->seen[rw - keys] : p->seen[gd - keys];
		return perr(p, "greylist_retry_window (%d s) must be longer than greylist_delay (%d s): a retry "
		            "after the delay must still find its first attempt", p->c->greylist_retry_window,
		            p->c->greylist_delay);
	}
	/* Implicit TLS needs a certificate, and submission requires STARTTLS. */
	for (int i = 0; i < p->c->nlisten && p->c->ntls_cert == 0; i++) {
		if (p->c->listen_kind[i] != LISTENER_SMTP) {
			const char *name = listen_key(p->c->listen_kind[i]);

			p->line = p->seen[find_key(name) - keys];
			return perr(p, "%s needs tls_cert and tls_key (%s)", name,
			            p->c->listen_kind[i] == LISTENER_SMTPS ? "implicit TLS" : "STARTTLS is required there");
		}
	}
	return 0;
}

struct config *config_parse(const char *text, size_t len, const char *fname, char *err, size_t errsize)
{
	struct parser p = { .fname = fname ? fname : "(config)", .err = err, .errsize = errsize };

	if (err && errsize)
		err[0] = '\0';
	if ((p.c = config_new_defaults()) == NULL) {
		perr(&p, "out of memory");
		return NULL;
	}
	if (parse_text(&p, text ? text : "", text ? len : 0) < 0 || check_keys(&p) < 0) {
		config_unref(p.c);
		return NULL;
	}
	return p.c;
}

struct config *config_load(const char *path, char *err, size_t errsize)
{
	char dummy[1], msg[256];
	struct config *c;
	size_t len;
	char *buf;

	if (err == NULL || errsize == 0) {
		err = dummy;
		errsize = sizeof dummy;
	}
	if ((buf = file_read(path, CONF_FILE_MAX, &len, NULL, msg, sizeof msg)) == NULL) {
		snprintf(err, errsize, "%s: %s", path, msg);
		return NULL;
	}
	c = config_parse(buf, len, path, err, errsize);
	free(buf);
	/* Files the config names are read with it: -t checks them, and a
	 * reload swaps them together with the rest. */
	if (c && c->local_recipients[0] &&
	    !(c->rcpt_table = recipients_load(c->local_recipients, err, errsize))) {
		config_unref(c);
		return NULL;
	}
	/* The rule file and its lists likewise: a broken one keeps a reload
	 * from replacing the running config. */
	if (c && !(c->ruleset = c->rules[0] ? ruleset_load(c->rules, checks_vocab(), err, errsize)
	                                    : ruleset_load_default(checks_vocab(), err, errsize))) {
		config_unref(c);
		return NULL;
	}
	/* The backend's TLS context with its CAs, read here likewise. */
	if (c && c->backend_tls != BACKEND_TLS_NO &&
	    !(c->backend_ssl = backend_tls_ctx_new(c->backend_tls_ca, err, errsize))) {
		config_unref(c);
		return NULL;
	}
	return c;
}
