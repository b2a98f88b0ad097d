/* replay_verdict.h - a transaction's verdict as "moat replay" prints and
 * compares it: one line,
 *
 *   ID RESULT CODE ESC STAGE rule=RULE rcpts=ACCEPTED/TRIED # NOTE
 *
 * ID the record's file name; RESULT accept, reject or tempfail; CODE and
 * ESC the reply ("-" for accept); STAGE where it was decided (connect,
 * helo, mail, rcpt, data: for accept, the last stage judged); RULE the
 * rule that decided (its id, else FILE:LINE with the file's name without
 * its directory, as records are replayed elsewhere; "-": none); the note (what
 * was re-run or reused, DNS questions the record did not answer) is not
 * compared. The transaction's verdict comes from its stages' as the
 * session gives them: the first refusal of connect, HELO or MAIL; else
 * every recipient refused (the first 5xx, else the first 4xx); else the
 * data stage's. Pure but for replay_expect_load. */
#ifndef MOAT_REPLAY_VERDICT_H
#define MOAT_REPLAY_VERDICT_H

#include <stddef.h>

#include "proxy/lib/record.h"

#define REPLAY_LINE_MAX 1024
#define REPLAY_JSON_MAX (REPLAY_LINE_MAX * 20) /* a verdict as JSON: its strings escaped */

struct verdict;
struct replay_expect;

/* A check's verdict as a record holds it (the rule: its id, else NAME:LINE). */
void replay_verdict_of(struct record_verdict *out, const struct verdict *v);
/* The line of the transaction whose stages r holds (note "": none). */
void replay_format(char *buf, size_t size, const char *id, const struct record *r, const char *note);
/* The same as one JSON object (--json): id, result, code (0 for accept),
 * esc, stage, rule, reason, rcpts_accepted, rcpts, note. */
void replay_format_json(char *buf, size_t size, const char *id, const struct record *r, const char *note);
/* The note: the data stage re-run (rerun 1) or its recorded verdict
 * reused (2: no message recorded), the questions left unanswered. */
void replay_note(char *buf, size_t size, const struct record *r, int rerun, const char (*missing)[RECORD_NAME_MAX + 16],
                 int nmissing);
/* Do two lines give the same verdict (the note aside)? */
int replay_same(const char *a, const char *b);

/* An --expect file (lines as replay_format writes them; others skipped):
 * NULL with the error on stderr. */
struct replay_expect *replay_expect_load(const char *path);
void replay_expect_free(struct replay_expect *e);
/* The verdict expected for id into buf: "recorded" (expect): the record's
 * own (r's stages as moat judged them then); else exp's line for id. 0
 * when none is expected (id not in the file). */
int replay_expected(const char *expect, const struct replay_expect *exp, const char *id, const struct record *r,
                    char *buf, size_t size);

#endif
