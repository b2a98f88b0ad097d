/* record.h - the file record_dir holds for one transaction, written by
 * proxy/recorder.c and read back by "moat replay" (proxy/replay.c).
 *
 * Text, one item a line: a keyword, then values separated by one space.
 * A value is percent-encoded: every byte that is not printable ASCII, a
 * space or '%' is %XX; the empty value is "-", and a value "-" is "%2D".
 * The first line is "moat-record 1". An optional last line "message N"
 * is followed by exactly N bytes: the message in SMTP wire form (CRLF,
 * dot-stuffed), as the data-stage checks read it.
 *
 *   moat-record 1
 *   time 1765170000                 unix time of the transaction's end
 *   session 5f2c0d9e11aa0b42 1      the session id, the transaction's number
 *   client 192.0.2.7 smtp 0 -       address, listener, TLS (0/1), AUTH login
 *   helo mail.example.com
 *   stage connect 0 - - -           a stage's verdict: code (0: go on), enhanced
 *   stage helo 0 - - -              code, rule, reason; "stage data" is absent
 *   mail user@example.com           when the data stage was not reached
 *   stage mail 0 - - -
 *   rcpt a@example.net 0 - - -      each RCPT judged: mailbox and verdict
 *   rcpt b@example.net 550 5.1.1 - unknown%20user   (code "-": not judged)
 *   stage data 550 5.7.1 no-dkim dkim%20fail
 *   checks mail sender-check%20pass,%20spf%20pass%20(...)   what the checks
 *                                   of a stage found, in words (moat check's)
 *   dns 16 0 300 example.com 00ab...   type, status, TTL, name, the reply in hex ("-": none)
 *   dropped-answers 3               answers left out for the bound
 *   message 1234
 *   <1234 bytes>
 *
 * Records are read back from disk, so the parser takes them as untrusted:
 * every field is bounded, a bad line is an error naming the line. Pure. */
#ifndef MOAT_LIB_RECORD_H
#define MOAT_LIB_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/lib/bounds.h"

#define RECORD_MAGIC "moat-record 1"
#define RECORD_STAGES 4          /* connect, helo, mail, data: RCPT is per recipient */
#define RECORD_RULE_MAX 300      /* a rule: its id, or FILE:LINE */
#define RECORD_REASON_MAX 256
#define RECORD_NAME_MAX 253      /* a DNS name (DNS_NAME_MAX) */
#define RECORD_CHECKS_MAX 1000   /* what the checks of a stage found, in words */

enum record_stage { REC_CONNECT, REC_HELO, REC_MAIL, REC_DATA };

struct record_verdict {
	int judged;                      /* 0: the stage was not reached (or not judged) */
	int code;                        /* 0: go on; else 4xx/5xx */
	char esc[12];
	char rule[RECORD_RULE_MAX];      /* "": no rule decided */
	char reason[RECORD_REASON_MAX];
};

struct record_rcpt {
	char mailbox[MOAT_PATH_MAX + 1];
	struct record_verdict v;
};

struct record_answer {
	int type;                        /* ns_t_a, ... */
	int status;                      /* enum dns_status */
	uint32_t ttl;
	char name[RECORD_NAME_MAX + 1];
	const unsigned char *abuf;       /* into the record's memory; NULL: none */
	int alen;
};

struct record {
	long long time;
	char session[32];
	int ntx;
	char client[64];
	char listener[16];               /* "smtp", "smtps", "submission" */
	int tls;
	char auth_user[MOAT_PATH_MAX + 1]; /* "": not authenticated */
	char helo[MOAT_HELO_MAX + 1];    /* "": no HELO */
	int has_mail;
	char from[MOAT_PATH_MAX + 1];    /* the sender's mailbox; "" the null sender */
	struct record_verdict stage[RECORD_STAGES];
	char checks[RECORD_STAGES][RECORD_CHECKS_MAX]; /* "": not recorded */
	struct record_rcpt *rcpt;        /* nrcpt of them */
	int nrcpt;
	struct record_answer *ans;       /* nans of them */
	int nans;
	int dropped_answers;
	const unsigned char *message;    /* NULL: not recorded */
	size_t message_len;
	unsigned char *mem;              /* what the answers point into */
};

/* ---- writing ---- */

/* A record being written: lines appended to a buffer that grows as
 * needed, up to cap bytes. */
struct record_out {
	char *buf;
	size_t len, size;                /* used, allocated */
	size_t cap;                      /* the bound (may be raised between lines) */
	int full;                        /* a line did not fit: the record is unusable */
};

/* 0 or -1 without memory. */
int record_out_init(struct record_out *o, size_t cap);
void record_out_free(struct record_out *o);
/* Append n raw bytes (whole lines, or a message). */
void record_put(struct record_out *o, const void *p, size_t n);
/* One line: key, then n values, encoded. */
void record_line(struct record_out *o, const char *key, int n, const char *const *vals);
/* The stage line of v ("stage NAME ...") or, name NULL, its values after a
 * rcpt's mailbox. */
void record_verdict_line(struct record_out *o, const char *key, const char *name, const struct record_verdict *v);
/* A DNS answer; 0, or -1 when it would pass the bound (not written). */
int record_answer_line(struct record_out *o, const struct record_answer *a, size_t bound);
/* Encode src into dst (size bytes, NUL-terminated); -1 if it does not fit. */
int record_encode(char *dst, size_t size, const char *src);

/* ---- reading ---- */

/* Parse buf[0..len) into r (zeroed first; free with record_free). 0, or -1
 * with a message naming the line in err. */
int record_parse(const char *buf, size_t len, struct record *r, char *err, size_t errsize);
void record_free(struct record *r);
/* The stage index of a name ("connect", ...); -1 if none. */
int record_stage_index(const char *name);
const char *record_stage_name(enum record_stage s);

#endif
