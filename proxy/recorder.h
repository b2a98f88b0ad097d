/* recorder.h - record_dir: what one session's transactions were judged on,
 * one file per transaction (the format: proxy/lib/record.h), for "moat
 * replay".
 *
 * The session tells the recorder what the client said and each verdict
 * of the checks; the checks ask DNS through the recorder's view of the
 * worker's resolver, which keeps every answer they got. At the
 * transaction's end the record is written in one go (a temporary name,
 * then renamed), bounded (proxy/lib/bounds.h); a record that cannot be
 * written is dropped, counted and logged, and the session goes on. */
#ifndef MOAT_RECORDER_H
#define MOAT_RECORDER_H

#include <stddef.h>

#include "checks/check.h"
#include "proxy/lib/record.h"

struct dns;
struct verdict;

struct recorder;

/* NULL without memory (the session then goes unrecorded). dir and the
 * strings are copied; messages: keep the message (record_messages). */
struct recorder *recorder_new(const char *dir, int messages, struct dns *dns, const char *session_id,
                              const char *client_ip, const char *listener);
/* What the checks must resolve through. */
struct dns *recorder_dns(struct recorder *r);
void recorder_free(struct recorder *r);

/* A stage's verdict; the HELO name; the sender's mailbox; the message
 * (read now with rd, with record_messages, when at most
 * MOAT_RECORD_MESSAGE_MAX bytes). */
void recorder_verdict(struct recorder *r, enum record_stage stage, const struct verdict *v);
/* What the checks of stage found (c: the session's), for people. */
void recorder_checks(struct recorder *r, enum record_stage stage, const struct checks *c);
void recorder_helo(struct recorder *r, const char *helo);
void recorder_mail(struct recorder *r, const char *mailbox);
void recorder_message(struct recorder *r, msg_reader rd, void *rarg, size_t size);
/* A RCPT; v NULL: not judged (an earlier refusal answered it). */
void recorder_rcpt(struct recorder *r, const char *mailbox, const struct verdict *v);
/* The transaction is over (tls: the session is under TLS; auth_user NULL:
 * not authenticated): write its record, forget it. */
void recorder_end(struct recorder *r, int tls, const char *auth_user);

/* record_dir exists or is made now (create; mode 0750), as the user moat
 * runs as, and takes files; without create, a missing one can be made in
 * its parent. 0, or -1 with errno. */
int recorder_dir_ready(const char *dir, int create);

#endif
