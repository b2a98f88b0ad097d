/* bounds.h - every bound moat puts on outside input, in one place */
#ifndef MOAT_BOUNDS_H
#define MOAT_BOUNDS_H

/* SMTP command line, CRLF included. RFC 5321 4.5.3.1.4 asks for 512; Postfix
 * accepts 2048 (line_length_limit) so long SMTPUTF8/DSN parameters fit. */
#define MOAT_CMD_LINE_MAX 2048
/* A reply line moat writes, CRLF included (RFC 5321 4.5.3.1.5). */
#define MOAT_REPLY_LINE_MAX 512
/* Client bytes we hold unread before we stop reading from the socket. */
#define MOAT_CLIENT_INPUT_MAX (64 * 1024)
/* Replies we hold unsent (a client that pipelines and does not read):
 * past this, no more of its commands are read until they are taken. */
#define MOAT_CLIENT_OUTPUT_MAX (64 * 1024)
/* One backend reply, all lines: larger is a broken backend. */
#define MOAT_BACKEND_REPLY_MAX 8192
/* Lines of one multi-line backend reply. */
#define MOAT_BACKEND_REPLY_LINES 64
/* A message is kept in memory up to this size, then spills to a file. */
#define MOAT_SPOOL_MEM_MAX (256 * 1024)
/* Beyond it, bytes reach the file in writes of this size (not one per line). */
#define MOAT_SPOOL_WRITE_CHUNK (64 * 1024)
/* RFC 5321 4.5.3.1: local part 64, domain 255, path 256 octets. */
#define MOAT_LOCALPART_MAX 64
#define MOAT_DOMAIN_MAX 255
#define MOAT_PATH_MAX 256
/* Octets of one label of an internationalised domain name as written, before
 * IDNA maps it (what it maps away could otherwise pad a label without end). */
#define MOAT_IDN_LABEL_MAX 255
/* HELO/EHLO argument kept for logs and headers. */
#define MOAT_HELO_MAX 255
/* Bytes of untrusted text copied into one log field. */
#define MOAT_LOG_FIELD_MAX 200
/* A message's Subject and Message-ID in its decision lines, cut at a UTF-8
 * character to at most this many bytes (within MOAT_LOG_FIELD_MAX). */
#define MOAT_LOG_SUBJECT_MAX 200
#define MOAT_LOG_MSGID_MAX 200
/* A DMARC record (TXT strings joined): a longer one is a permanent error
 * (libopendmarc reads at most 8 KiB of it). */
#define MOAT_DMARC_RECORD_MAX 2048
/* The public suffix list file (Debian's is 230 KB). */
#define MOAT_PSL_MAX (16 * 1024 * 1024)
/* Author domains of one From field DMARC evaluates (RFC 7489 6.6.1: each,
 * the strictest failing policy applies); more are a permanent error. */
#define MOAT_DMARC_AUTHORS_MAX 4
/* Lookups a message's header fields may start before the end of data
 * (DMARC's _dmarc records, prefetched as the From field arrives). */
#define MOAT_EARLY_LOOKUPS_MAX 4
/* DNS lists (dnsbl_sites, dbl_sites): entries of one key (postscreen has
 * no limit; each distinct zone is one query per client), and the
 * weight of one entry (a score is their sum, far from int overflow). */
#define MOAT_DNSBL_SITES_MAX 32
#define MOAT_DNSBL_WEIGHT_MAX 1000
/* The backend's queue id, from its reply to the end of data. */
#define MOAT_QUEUE_ID_MAX 64
/* Protocol errors before a client is disconnected (Postfix: smtpd_hard_error_limit 20). */
#define MOAT_ERROR_LIMIT 20
#define MOAT_PROXY_HEADER_MAX 536  /* PROXY v2 header: 16 + 520 max for TLVs we accept */
#define MOAT_DATA_PROGRESS (64 * 1024) /* DATA bytes that earn another data_timeout */
#define MOAT_PROXY_TIMEOUT 10      /* seconds to send the PROXY header */
/* Backend timeouts (seconds): connect+banner, a command reply, the end-of-data reply (RFC 5321 4.5.3.2.6: 10 min). */
#define MOAT_BACKEND_POOL_MAX 32    /* idle backend connections kept per worker for the next sessions */
#define MOAT_BACKEND_POOL_IDLE 10   /* backend_cache_time default, seconds (Postfix: 2 s) */
#define MOAT_BACKEND_CONNECT_TIMEOUT 30
#define MOAT_BACKEND_CMD_TIMEOUT 300
#define MOAT_BACKEND_DATA_TIMEOUT 600
#define MOAT_CHECK_BACKEND_TIMEOUT 5 /* seconds moat -t waits for each step of the backend's answers */
/* backend and submission_backend: a list, each a numeric address or a DNS
 * name (A and AAAA through checks/dns.c), tried in order (failover). */
#define MOAT_BACKENDS_MAX 8         /* backends in one list */
#define MOAT_BACKEND_ADDRS_MAX 16   /* addresses of one backend name kept and tried */
#define MOAT_BACKEND_TTL_MIN 5      /* seconds: a backend name is asked again at most this often */
#define MOAT_BACKEND_TTL_MAX 300    /* and at least this often, whatever its TTL says */
#define MOAT_BACKEND_DNS_RETRY 5    /* seconds: asked again this soon when DNS fails or it has no address */
#define MOAT_BACKEND_NAMES_MAX 32   /* backend names a worker keeps answers for (a reload may bring new ones) */
#define MOAT_BACKEND_PEERS_MAX 64   /* backend addresses whose up or down a worker remembers, to log changes */
/* Pending connections the kernel queues per listener. */
#define MOAT_LISTEN_BACKLOG 4096
#define MOAT_WORKERS_MAX 64       /* workers = N */
/* The connection table the workers share (conntable.c): slots for
 * (client address, worker) pairs, 24 bytes each, and the window of slots
 * an address may use; an address finding its window full is refused. */
#define MOAT_CONN_TABLE_SLOTS 65536
#define MOAT_CONN_TABLE_PROBE 64
/* Session ids: each worker process numbers its sessions in a range of
 * 2^40 (a trillion); 2^24 worker starts in a run (restarts included). */
#define MOAT_ID_SEQ_BITS 40
#define MOAT_WORKER_RESPAWN_MIN 1 /* seconds: a worker dying sooner counts as a fast death */
#define MOAT_WORKER_FAST_DEATHS 5 /* fast deaths in a row that stop moat (a crash loop) */
#define MOAT_FD_RESERVE 256       /* descriptors beyond 2 per connection: listeners, DNS, log, spill files */
#define MOAT_ACCEPT_PAUSE_MS 100  /* out of descriptors: accepting pauses this long */
/* A connection refused at connect (a connect rule, pregreet, too many
 * connections) lingers for the commands the client sent (503, QUIT 221;
 * proxy/refused.h): at most this many seconds (command_timeout if shorter),
 * bytes and commands, and this many connections per worker (beyond, a
 * refusal closes at once). */
#define MOAT_REFUSED_LINGER_SECS 10
#define MOAT_REFUSED_INPUT_MAX 8192
#define MOAT_REFUSED_CMDS_MAX 20
#define MOAT_REFUSED_LINGER_MAX 256
/* config_watch (proxy/cfgwatch.h): a change reloads once nothing more has
 * changed for QUIET ms (an editor's or kubelet's several steps are one
 * change), at the latest MAX ms after the first step. */
#define MOAT_CONFIG_WATCH_QUIET_MS 300
#define MOAT_CONFIG_WATCH_MAX_MS 3000
/* Seconds SIGTERM waits for transactions in flight. */
#define MOAT_SHUTDOWN_GRACE 30
/* Seconds a session may wait for its next command once SIGTERM came: a
 * client that is talking goes on to the end of its transaction, one that
 * stays quiet this long outside a transaction gets 421. */
#define MOAT_DRAIN_IDLE 2
/* A header section read for the checks (header rules, DKIM); a larger one
 * is not verified by DKIM (Postfix: header_size_limit 102400). */
#define MOAT_HEADER_READ_MAX (100 * 1024)
/* Header fields the header rules look at. */
#define MOAT_HEADER_FIELDS_MAX 512
/* Forged Authentication-Results fields removed per message: all that the scan finds. */
#define MOAT_AUTHRES_DROP_MAX MOAT_HEADER_FIELDS_MAX
/* Our Authentication-Results field (several DKIM signatures). */
#define MOAT_AUTHRES_MAX 8192
/* A tls_cert or tls_key file: a certificate and its chain are a few KiB. */
#define MOAT_TLS_FILE_MAX (1024 * 1024)
/* AUTH (RFC 4954 4): a line of the client's base64 answers, CRLF included
 * (the AUTH command itself is a command line, MOAT_CMD_LINE_MAX); the login
 * name moat keeps for the log and the rules; the backend's 334 challenges
 * one exchange may take (PLAIN 1, LOGIN 2). */
#define MOAT_AUTH_LINE_MAX 12288
#define MOAT_AUTH_USER_MAX 255
#define MOAT_AUTH_ROUNDS_MAX 4
/* Failed AUTH per client address, counted across the workers (authfail.c):
 * slots (address, window start, count; 32 bytes each), and the window of
 * slots an address may use. */
#define MOAT_AUTHFAIL_SLOTS 16384
#define MOAT_AUTHFAIL_PROBE 32
/* The in-memory store the workers share (store_mem.c: greylisting triplets,
 * their client networks' passes and rate-limit counts without Redis, and
 * the counts while Redis is down): slots (a 128-bit digest of the key, an
 * expiry and two numbers; 40 bytes each, 2.5 MiB), and the window of slots
 * a key may use. */
#define MOAT_STORE_MEM_SLOTS 65536
#define MOAT_STORE_MEM_PROBE 32
/* A worker's connection to Redis (store_redis.c): calls outstanding on it
 * (pipelined; beyond, a call answers as a fault at once), and the wait
 * before a reconnection, from the first to the longest (doubling, with
 * jitter). */
#define MOAT_STORE_REDIS_PENDING_MAX 1024
#define MOAT_STORE_REDIS_BACKOFF_MIN_MS 100
#define MOAT_STORE_REDIS_BACKOFF_MAX_MS 10000
/* Config file line length. */
#define MOAT_CONF_LINE_MAX 4096
/* Entries in one list value of the config (listen, domains, networks). */
#define MOAT_CONF_LIST_MAX 1024

/* Metrics (metrics_listen, proxy/lib/metrics.h): the rule ids counted by
 * name in moat_decisions_total (beyond, one series rule="_other"), checks
 * and result words per check, and a rule id's bytes (RULES_ID_MAX). */
#define MOAT_METRICS_RULES_MAX 256
#define MOAT_METRICS_CHECKS_MAX 16 /* test_rules_eval.c: the registry fits */
#define MOAT_METRICS_RESULTS_MAX 12
#define MOAT_METRICS_ID_MAX 64
/* The HTTP side of metrics_listen (proxy/metrics_http.c): a request
 * (request line and header fields) at most this many bytes, within this
 * many seconds; at most this many HTTP clients per worker at once. */
#define MOAT_HTTP_REQUEST_MAX 4096
#define MOAT_HTTP_TIMEOUT 5
#define MOAT_HTTP_CONNS_MAX 32
/* /healthz: a worker whose loop has not beaten for this many seconds is
 * stuck (the loop beats every second). /readyz: the backend must have
 * answered within this many backend_probe_interval periods. */
#define MOAT_HEALTH_STALE 10
#define MOAT_READY_PROBES 3

/* record_dir (proxy/recorder.c, proxy/lib/record.h): one file per
 * transaction. A record without its message is at most RECORD_BYTES_MAX
 * bytes and RECORD_ANSWERS_MAX DNS answers (the answers past either are left
 * out, and the record says so); a transaction of more than
 * RECORD_RCPTS_MAX recipients is not recorded (counted, logged). With
 * record_messages, a message of at most RECORD_MESSAGE_MAX bytes is kept
 * (a larger one is left out, and replay reuses its data-stage verdict).
 * moat replay reads no record file over RECORD_BYTES_MAX +
 * RECORD_MESSAGE_MAX + 64 bytes. */
#define MOAT_RECORD_BYTES_MAX (256 * 1024)
#define MOAT_RECORD_ANSWERS_MAX 256
#define MOAT_RECORD_RCPTS_MAX 1000
#define MOAT_RECORD_MESSAGE_MAX (1024 * 1024)
#define MOAT_RECORD_FILE_MAX (MOAT_RECORD_BYTES_MAX + MOAT_RECORD_MESSAGE_MAX + 64)

#endif
