/* offline.c - see offline.h */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "checks/dkim.h"
#include "checks/dmarc_org.h"
#include "proxy/lib/bounds.h"
#include "proxy/lib/netaddr.h"
#include "proxy/offline.h"

int offline_start(struct offline *o, const char *conf, const char *cmd, dns_source_fn source, void *arg)
{
	char err[1024];
	struct dns_options dopt;

	memset(o, 0, sizeof *o);
	if (!(o->cfg = config_load(conf, err, sizeof err))) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	config_check_options(o->cfg, &o->opt);
	o->base = event_base_new();
	dopt = (struct dns_options){
		.servers = o->cfg->dns_servers,
		.timeout_ms = o->cfg->dns_timeout,
		.tries = o->cfg->dns_tries,
		.cache_max = (size_t)o->cfg->dns_cache_size,
	};
	if (o->base)
		o->dns = source ? dns_new_offline(o->base, source, arg) : dns_new(o->base, &dopt);
	if (o->dns)
		o->dkim = dkim_verifier_new(o->dns);
	if (!o->dkim) {
		fprintf(stderr, "%s: cannot start the resolver or the DKIM library\n", cmd);
		return -1;
	}
	dkim_verifier_set_wait(o->dkim, o->base, 0);
	if (o->cfg->check_dmarc && !dmarc_psl_loaded() && dmarc_psl_load(o->cfg->public_suffix_list) < 0) {
		fprintf(stderr, "%s: cannot read public_suffix_list %s: %s\n", cmd, o->cfg->public_suffix_list,
		        strerror(errno));
		return -1;
	}
	return 0;
}

void offline_end(struct offline *o)
{
	dkim_verifier_free(o->dkim);
	dns_free(o->dns);
	if (o->base)
		event_base_free(o->base);
	config_unref(o->cfg);
	memset(o, 0, sizeof *o);
}

void offline_wait(struct offline *o, const int *waiting)
{
	while (*waiting)
		event_base_loop(o->base, EVLOOP_ONCE);
}

int offline_path(const char *addr, int is_rcpt, struct smtp_path *p)
{
	char arg[MOAT_PATH_MAX + 16];
	struct smtp_params ps;

	if (addr[0] == '<')
		snprintf(arg, sizeof arg, "%s:%s", is_rcpt ? "TO" : "FROM", addr);
	else
		snprintf(arg, sizeof arg, "%s:<%s>", is_rcpt ? "TO" : "FROM", addr);
	return smtp_parse_mail_rcpt(arg, is_rcpt, p, &ps) == PATH_OK ? 0 : -1;
}

int offline_client(const char *ip, struct sockaddr_storage *ss)
{
	struct cidr cl;

	if (cidr_parse(ip, &cl) < 0 || strchr(ip, '/'))
		return -1;
	memset(ss, 0, sizeof *ss);
	if (cl.family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, cl.addr, 4);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, cl.addr, 16);
	}
	return 0;
}

long offline_msg_reader(void *arg, size_t off, char *buf, size_t len)
{
	const struct offline_msg *m = arg;

	if (off >= m->len)
		return 0;
	if (len > m->len - off)
		len = m->len - off;
	memcpy(buf, m->p + off, len);
	return (long)len;
}
