/* ruleset.h - the inside of a loaded ruleset, shared by parse.c (builds it)
 * and eval.c (reads it); nothing outside rules/ includes this. */
#ifndef MOAT_RULES_RULESET_H
#define MOAT_RULES_RULESET_H

#include <regex.h>
#include <stdint.h>

#include "rules/lists.h"
#include "proxy/lib/netaddr.h"
#include "proxy/lib/strset.h"
#include "rules/rules.h"

/* What a fact's argument was. */
enum arg_kind {
	ARG_NONE,     /* tls, authenticated, rcpt-known */
	ARG_KEYWORD,  /* spf fail, client trusted, rdns none, sender null, rcpt-domain local */
	ARG_NAME,     /* "mx.example.com": that name (lower case) */
	ARG_SUFFIX,   /* ".example.com": its subdomains */
	ARG_ADDRESS,  /* "user@example.com" */
	ARG_ATDOMAIN, /* "@example.com": any user there */
	ARG_CIDR,
	ARG_LIST,
	ARG_REGEX,    /* helo /re/; header Name /re/ */
	ARG_LOGIN,    /* auth-user alice, auth-user alice@example.com: that login name (lower case) */
	ARG_SIZE_GT,
	ARG_SIZE_LT,
	ARG_NUMBER,   /* a RULE_NUMBER fact: cmp against num, or the named number value (>= 0) */
};

enum num_cmp { CMP_LT, CMP_LE, CMP_EQ, CMP_GE, CMP_GT };

enum cond_op { COND_FACT, COND_NOT, COND_AND, COND_OR };

/* A condition tree. AND and OR chains lean right (a is a term, b the rest),
 * so evaluating and freeing them loops instead of recursing. */
struct cond {
	enum cond_op op;
	struct cond *a, *b;           /* NOT: a; AND, OR: a then b */
	enum rule_fact fact;          /* COND_FACT */
	enum arg_kind arg;
	int value;                    /* ARG_KEYWORD: the keyword's value (FACT_CHECK: the word's index) */
	size_t index;                 /* FACT_CHECK: the fact's place in the vocabulary */
	char *text;                   /* NAME, SUFFIX (with its dot), ADDRESS, ATDOMAIN
	                               * (with its @): lower case; header: field name */
	struct cidr cidr;
	const struct rule_list *list; /* owned by the ruleset */
	regex_t re;
	int has_re;
	size_t size;
	enum num_cmp cmp;             /* ARG_NUMBER */
	long num;
};

struct rule {
	enum rule_action action;
	int monitor;
	enum rule_stage stage;  /* the latest stage of its facts */
	int uses_rcpt;          /* tests recipient facts */
	struct cond *cond;
	int code;               /* reject/tempfail */
	char esc[12];
	char *text;             /* reject/tempfail: reply text template; tag: header template */
	char *note;             /* template, or NULL */
	char *what;             /* the condition as written */
	char *id;               /* "id NAME": stable across edits, unique in the ruleset; or NULL */
	const char *file;       /* one of ruleset.files */
	int line;
	struct rule_limit limit; /* ratelimit: its KEY N/WINDOW [UNIT] (file, line, id unset) */
};

struct ruleset {
	int refs;
	struct rule *rules;
	size_t nrules, cap;
	char **files;           /* names of the files read, for rule.file */
	size_t nfiles;
	char **disk;            /* the rule files read from disk (not the built-in ones) */
	size_t ndisk;
	struct rule_list **lists; /* shared by the rules that name the same file */
	size_t nlists;
	unsigned uses;          /* 1u << FACT_x */
	const struct rule_vocab *vocab; /* the checks' facts, as loaded */
	uint64_t uses_values;   /* 1 << i: some rule or template names vocabulary fact i */
	struct strset *ids;     /* the rules' ids, for duplicates; NULL while none */
};

/* Keywords of the facts that take a fixed set of words; NULL-terminated. */
struct rules_kw {
	const char *name;
	int value;
};
extern const struct rules_kw rules_kw_relay[];
extern const struct rules_kw rules_kw_listener[]; /* by enum listener_kind */
extern const struct rules_kw rules_kw_grey[];     /* greylisted's words, by enum rule_grey */

/* %{name} variables (eval.c): the session's own (0 .. RULES_VARS - 1), or
 * RULES_VARS + i for fact i of vocab; -1 for an unknown name. */
#define RULES_VARS 8
int rules_var_lookup(const struct rule_vocab *vocab, const char *name, size_t len);

void rules_cond_free(struct cond *c);

/* limit.c: a ratelimit rule's "KEY N/WINDOW [messages|recipients]" from
 * words[0..n) (NULL-terminated after n); the words it took (2 or 3), or -1
 * with a message in err. Pure. */
int rules_limit_parse(const char *const *words, size_t n, struct rule_limit *out, char *err, size_t errsize);

#endif
