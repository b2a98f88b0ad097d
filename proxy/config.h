/* config.h - moat.conf: a declarative table of keys, a pure parser, a loader */
#ifndef MOAT_CONFIG_H
#define MOAT_CONFIG_H

#include <stddef.h>
#include <sys/socket.h>
#include "checks/checks.h"
#include "checks/dnsbl_sites.h"
#include "proxy/lib/log.h"
#include "proxy/backend_target.h"
#include "proxy/lib/netaddr.h"

struct strset;
struct ruleset;
struct tls_server;
struct ssl_ctx_st;

#define CONFIG_TLS_PAIRS 2 /* tls_cert and tls_key: one or two files each */

/* backend_tls: STARTTLS towards the backend. */
enum backend_tls_mode { BACKEND_TLS_NO, BACKEND_TLS_OPPORTUNISTIC, BACKEND_TLS_REQUIRED };
/* xclient: tell the backend the real client with XCLIENT. */
enum xclient_mode { XCLIENT_MODE_AUTO, XCLIENT_MODE_YES, XCLIENT_MODE_NO };

/* A loaded configuration. Sessions hold a reference to the one they started
 * with, so a SIGHUP reload never changes a session's rules mid-flight. */
struct config {
	int refs;

	/* Every listening address: listen's, then smtps_listen's, then
	 * submission_listen's (addr:port, ...), at most 16 in all. */
	struct sockaddr_storage listen[16];
	socklen_t listen_len[16];
	enum listener_kind listen_kind[16];
	int nlisten;
	struct backend_list backend;        /* backend = addr:port or name:port, ... (failover order) */
	struct backend_list submission_backend; /* AUTH and authenticated mail; n 0: the backend */
	struct sockaddr_storage metrics_listen; /* /metrics, /healthz, /readyz over HTTP */
	socklen_t metrics_listen_len;       /* 0: off */
	int backend_probe_interval;         /* seconds: with metrics_listen, the backend is asked
	                                     * when it has not answered for this long (/readyz) */
	int auth_fail_limit;                /* failed AUTH per address per window; 0: no limit */
	int auth_fail_window;               /* seconds */
	/* greylisting (rule action greylist; greylist.h), seconds but auto_allow */
	int greylist_delay;                 /* a retry passes after this long (300) */
	int greylist_retry_window;          /* ... if it comes within this long of the first (1 day) */
	int greylist_pass_time;             /* a passed triplet is remembered this long (35 days) */
	int greylist_auto_allow;            /* passes of a client network that skip greylisting (5; 0 never) */
	int greylist_auto_allow_time;       /* for this long after its last pass (35 days) */
	char hostname[256];                 /* banner, EHLO to backend, Received, authserv-id */
	char **local_domains;               /* lower case; ".example.com" = subdomains */
	int nlocal_domains;
	struct cidr *trusted_networks;
	int ntrusted_networks;
	struct cidr *trusted_forwarders;    /* spared SPF fail by the default rules */
	int ntrusted_forwarders;
	char dns_servers[1024];             /* c-ares csv "ip:port,..."; "" = /etc/resolv.conf */
	int proxy_protocol;                 /* 1: every connection starts with a PROXY header */
	char rules[1024];                   /* rule file path; "" = built-in default */
	struct ruleset *ruleset;            /* loaded by config_load (rules or the default) */
	int config_watch;                   /* reload when a file a reload reads changes (cfgwatch.h);
	                                     * read at start */
	int monitor;                        /* mode = monitor: rejections only logged */
	int workers;                        /* worker processes; 0 = auto (one per CPU) */
	char local_recipients[1024];        /* file of valid addresses; "" = any user */
	struct strset *rcpt_table;          /* its contents, loaded by config_load */
	enum log_target log_target;
	char log_file[1024];                /* with LOG_TO_FILE */
	char spool_dir[1024];               /* where messages over MOAT_SPOOL_MEM_MAX spill */
	char record_dir[1024];              /* one record per transaction (recorder.h); "" = none */
	int record_messages;                /* records keep the message too; default no */
	size_t max_message_size;            /* bytes, default 10240000 */
	int max_recipients;                 /* default 100 */
	int max_connections;                /* default 1000 */
	int max_connections_per_ip;         /* default 20 */
	int command_timeout;                /* seconds, default 300 */
	int data_timeout;                   /* seconds, default 600 */
	int backend_timeout;                /* seconds for the backend's connect (at most 30), banner,
	                                     * EHLO and command replies; default 300 */
	int backend_data_timeout;           /* seconds for its end-of-data reply, default 600 */
	int backend_cache_time;             /* seconds an idle backend connection is kept for the
	                                     * next session; 0 = close it with its session */
	enum backend_tls_mode backend_tls;  /* default opportunistic: STARTTLS when offered */
	char backend_tls_ca[1024];          /* CA file or directory verifying the backend; "" none */
	char backend_tls_name[256];         /* the name its certificate must hold; "" = the backend's name,
	                                     * or its address when it is one */
	struct ssl_ctx_st *backend_ssl;     /* the TLS client context, made by config_load (backend_tls
	                                     * != no); NULL: no TLS to the backend */
	enum xclient_mode xclient;          /* default auto: XCLIENT when the backend offers it */
	int shutdown_grace;                 /* seconds SIGTERM waits, default MOAT_SHUTDOWN_GRACE */
	int dns_timeout;                    /* milliseconds per try, default 1500 */
	int dns_tries;                      /* default 2 */
	int dns_cache_size;                 /* entries, default 100000 */
	int delay_reject;                   /* sender verdicts answer the RCPTs, not MAIL */
	int strict_envelopes;               /* MAIL/RCPT paths only in <>, as RFC 5321 says */
	int check_sender_domain;            /* default yes */
	int check_spf;                      /* default yes */
	int check_dkim;                     /* default yes */
	int check_dmarc;                    /* default yes */
	/* DNS lists (postscreen's postscreen_dnsbl_sites syntax): the client's
	 * address at connect, the HELO and sender domains at MAIL */
	struct dnsbl_sites dnsbl_sites, dbl_sites;
	int dnsbl_threshold, dbl_threshold; /* a score at or above it is listed; default 1 */
	int dnsbl_timeout;                  /* ms: each list's deadline, default 1500 */
	int dnsbl_reply_sites;              /* the built-in reply names the listing sites */
	char public_suffix_list[1024];      /* DMARC's organizational domains; read at start */
	char dmarc_sample_key[64];          /* pct sampling's key (16 bytes used); "" = random */
	char user[64];                      /* started as root: drop to this user after binding */
	char chroot[1024];                  /* and chroot here (optional) */
	int run_as_root;                    /* allow staying root (no user) */
	/* the store (store.h): Redis shared by replicas, or memory; read at start */
	char redis[256];                    /* "HOST:PORT", "[v6]:PORT", "/socket"; "" = memory only */
	char redis_password[512];           /* AUTH; "" = none */
	int redis_db;                       /* SELECT, default 0 */
	int redis_timeout;                  /* ms per call, connect included; default 1000 */
	int greet_pause;                    /* ms between "220-" and "220 "; 0 = banner at once */
	/* tls_cert, tls_key: PEM files paired by position (an RSA and an ECDSA
	 * pair); none: no STARTTLS */
	char tls_cert[CONFIG_TLS_PAIRS][1024];
	char tls_key[CONFIG_TLS_PAIRS][1024];
	int ntls_cert, ntls_key;
	struct tls_server *tls;             /* their context, made by tls_config_load (tls.h);
	                                     * NULL: not loaded (moat check) or none */
};

/* Parse a whole config text. On error returns NULL and writes
 * "FILE:LINE: message" into err. fname is only used in messages. */
struct config *config_parse(const char *text, size_t len, const char *fname, char *err, size_t errsize);
/* Read and parse a file; same contract. */
struct config *config_load(const char *path, char *err, size_t errsize);
/* Where AUTH and authenticated sessions' mail go: submission_backend, or
 * the backend. */
const struct backend_list *config_submission_backend(const struct config *c);

/* Defaults only (used by tests and as the base of parsing). */
struct config *config_new_defaults(void);
struct config *config_ref(struct config *c);
/* The checks' part of c (pointers into c: valid while c is referenced). */
void config_check_options(const struct config *c, struct check_options *o);
void config_unref(struct config *c);
struct store_config;
/* The store's part of c (pointers into c). */
void config_store(const struct config *c, struct store_config *o);

#endif
