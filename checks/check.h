/* check.h - what a check module offers: its row in the registry.
 *
 * A check is a module and a row (struct check_def, defined in the module,
 * listed in checks/registry.c). The row says what the check is called, the
 * stage it runs at, whether it runs at all, how to start and cancel it, the
 * facts it fills for the rules (its vocabulary), and what it says in a
 * decision line, in "moat check" and in Authentication-Results. checks.c
 * runs every wanted check of a stage side by side and lets the rules decide
 * when the last is in; nothing else in moat names a check. */
#ifndef MOAT_CHECKS_CHECK_H
#define MOAT_CHECKS_CHECK_H

#include <stddef.h>
#include <sys/socket.h>

#include "proxy/lib/smtp_parse.h"
#include "rules/facts.h"

struct authres;
struct checks;
struct check_env;
struct check_options;
struct jline;
struct msg_header;
struct ruleset;

#define CHECK_NAMES_MAX 8 /* names one fact of a check may hold (DKIM: a domain a signature) */

/* A message read back from where it is kept (the spool): fills buf from
 * offset off; bytes read, 0 at the end, -1 on error. */
typedef long (*msg_reader)(void *rarg, size_t off, char *buf, size_t len);

/* What a check may look at when it starts (valid during start only: a
 * check keeps copies of what it needs later). */
struct check_ctx {
	const struct check_options *opt;
	const struct check_env *env;
	const struct sockaddr *client;
	const char *client_ip;
	const char *helo;                /* "" before HELO */
	enum listener_kind listener;     /* the listener the client came through */
	const struct smtp_path *from;    /* from the mail stage on */
	msg_reader rd;                   /* the data stage: the message in SMTP wire form */
	void *rarg;
	size_t size;
	const struct msg_header *header; /* its header section, read once (checks/header.h) */
	struct checks_txn *txn;          /* the transaction's (checks_author) */
};

typedef void (*check_done_fn)(void *arg);

struct check_def {
	const char *name;          /* in "moat check" */
	enum rule_stage stage;     /* connect, mail or data */
	size_t result_size;        /* its result (zeroed before start, up to result_zero) */
	size_t result_zero;        /* 0: all of it; else the bytes zeroed, the rest the row's to set */
	const struct rule_vocab_fact *facts; /* the facts it fills, in this order */
	size_t nfacts;
	/* Does it run? uses(i): does a rule test (or a template name) its i-th fact. */
	int (*wanted)(const struct check_ctx *ctx, const struct ruleset *rs, size_t first);
	/* Start. done(arg) runs exactly once, later from the loop, with result
	 * filled. NULL: finished at once (result filled: a cached answer, or
	 * temperror for want of memory), done will not run. */
	void *(*start)(const struct check_ctx *ctx, void *result, check_done_fn done, void *arg);
	/* done will not run. */
	void (*cancel)(void *handle);
	/* values, log, describe and authres get the result as the public type
	 * the module's header names (its slot starts with it), never the slot.
	 * Its facts' values (values[0 .. nfacts)); names: room for
	 * CHECK_NAMES_MAX names per fact. */
	void (*values)(const void *result, struct rule_value *values, const char *(*names)[CHECK_NAMES_MAX]);
	/* Its fields in a decision line (result NULL: it did not run). */
	void (*log)(const void *result, struct jline *j);
	/* A few words for "moat check" ("pass (mechanism ip4 matched)"). */
	void (*describe)(const void *result, char *buf, size_t size);
	/* Its method in Authentication-Results; NULL: none. */
	void (*authres)(const void *result, struct authres *a);
	/* It reads the header section (ctx->header): read it once for all. */
	int wants_header;
	/* Its result as one word of results (NULL-terminated), for
	 * moat_check_results_total; NULL: its first fact's word (a RULE_WORD
	 * fact). -1: unknown. */
	const char *const *results;
	int (*result)(const void *result);
	/* NULL, or: runs once every check of its stage is in, before the
	 * rules: a check that decides on others' results (DMARC on SPF and
	 * DKIM) reads them here (checks_result). */
	void (*settle)(void *result, const struct checks *c);
	/* NULL, or: a header field of the message as it arrives, before the
	 * end of data (field[0..len): its first bytes, whole when not
	 * truncated): a check may start lookups it will make, for the DNS
	 * cache. The number of lookups started. */
	int (*header_field)(const struct check_options *opt, const struct check_env *env, const char *field,
	                    size_t len, int truncated);
};

/* Does some rule of rs test, or a template name, fact first + i? */
int check_fact_used(const struct ruleset *rs, size_t first, size_t i);
/* The index of name among words (a RULE_WORD fact's value); -1 if absent. */
int check_word(const char *const *words, const char *name);

#endif
