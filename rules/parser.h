/* parser.h - the rule parser's state, shared by parse.c (one rule) and
 * load.c (files, lines, includes); nothing outside rules/ includes this */
#ifndef MOAT_RULES_PARSER_H
#define MOAT_RULES_PARSER_H

#include <stddef.h>
#include <sys/stat.h>

#include "proxy/lib/text.h"
#include "rules/ruleset.h"

#define MSG_MAX 512      /* one message, before FILE:LINE */
#define SHOW_MAX TEXT_SHOW_MAX
#define TOKENS_MAX 1024  /* words in one rule */
#define RULES_PATH_MAX 4096 /* a resolved include or list path */
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

enum tok { T_WORD, T_STRING, T_REGEX, T_LPAREN, T_RPAREN, T_END };

struct token {
	enum tok type;
	const char *s;       /* its text: quotes and escapes removed */
	size_t start, end;   /* where it is in the rule as written */
};

struct parser {
	struct ruleset *rs;
	char *err;
	size_t errsize;
	const char *file;    /* the file being read, for messages and rule.file */
	const char *dir;     /* its directory with a '/', or "" */
	int line;            /* the line the rule being parsed starts on */
	int depth;           /* include nesting */
	int nincludes;
	struct { dev_t dev; ino_t ino; } reading[RULES_INCLUDE_DEPTH + 1]; /* for cycles */
	int nreading;
	/* the rule being parsed; reused, so an include must not look at it
	 * once it has read the included file */
	char text[RULES_LOGICAL_MAX + 1];
	char arena[2 * RULES_LOGICAL_MAX + TOKENS_MAX + 16];
	struct token tok[TOKENS_MAX + 1];
	int ntok, pos;
	int nest;
};

static inline int is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* "FILE:LINE: message" into the caller's err; returns -1. */
__attribute__((format(printf, 2, 3)))
int perr(struct parser *p, const char *fmt, ...);
/* Untrusted text for a message (text_show of a string). */
const char *show(const char *s, char out[SHOW_MAX + 4]);

/* parse.c: the rule (or include) in p->text. */
int parse_logical(struct parser *p);
void rule_free(struct rule *r);
/* limit.c: ratelimit's KEY N/WINDOW [UNIT] at p->pos; is t where a
 * ratelimit's condition may be left out (the end, a reply, note, id)? The
 * stage greylist and ratelimit rules are decided at, whatever their
 * condition's: a triplet is a recipient's (RCPT; at the end of data when
 * the condition tests header or size), a message is counted at MAIL, a
 * recipient at RCPT (0, or -1 with the error). */
int parse_limit(struct parser *p, struct rule *r);
int limit_ends_condition(const struct token *t);
int limit_stage(struct parser *p, struct rule *r);
/* load.c: an included file (p->file is the includer) or the top file. */
int parser_file(struct parser *p, const char *path);
/* load.c: "builtin:NAME", a rule set compiled into moat, included. */
#define RULES_BUILTIN_PREFIX "builtin:"
int parser_builtin(struct parser *p, const char *name);

#endif
