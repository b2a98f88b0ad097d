/* load.c - rule files into a ruleset: lines (a trailing backslash joins
 * the next), includes, the files read; the ruleset's life and what moat -t
 * and the tests see of it. One rule's words are parse.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "proxy/lib/readfile.h"
#include "proxy/lib/text.h"
#include "rules/parser.h"
#include "rules/ruleset.h"

/* Physical lines into rules: a backslash at the end of a line (blanks after
 * it allowed) joins the next one. A rule's errors name its first line. */
static int parse_lines(struct parser *p, const char *text, size_t len)
{
	struct text_lines t;
	const char *start;
	size_t n, used = 0;
	int r, line = 0;

	text_lines_begin(&t, text, len);
	while ((r = text_lines_next(&t, &start, &n)) != 0) {
		int more;

		line = t.line;
		if (used == 0)
			p->line = line;
		if (r < 0) {
			p->line = line;
			return perr(p, "NUL byte in line");
		}
		if (n > RULES_LINE_MAX) {
			p->line = line;
			return perr(p, "line too long (max %d bytes)", RULES_LINE_MAX);
		}
		while (n > 0 && is_blank(start[n - 1]))
			n--;
		if ((more = n > 0 && start[n - 1] == '\\'))
			n--;
		if (used + n + 1 > RULES_LOGICAL_MAX)
			return perr(p, "rule too long (max %d bytes with its continuation lines)", RULES_LOGICAL_MAX);
		memcpy(p->text + used, start, n);
		used += n;
		p->text[used] = '\0';
		if (more) {
			p->text[used++] = ' ';
			p->text[used] = '\0';
			continue;
		}
		if (parse_logical(p) < 0)
			return -1;
		used = 0;
	}
	if (used > 0) {
		p->line = line;
		return perr(p, "backslash at the end of the file continues nothing");
	}
	return 0;
}

static const char *intern(struct parser *p, const char *name)
{
	struct ruleset *rs = p->rs;
	char **f = realloc(rs->files, (rs->nfiles + 1) * sizeof *f);

	if (!f)
		return NULL;
	rs->files = f;
	if (!(f[rs->nfiles] = strdup(name)))
		return NULL;
	return f[rs->nfiles++];
}

/* Parse text as the file name; st: the file's identity (NULL for text). */
static int parse_named(struct parser *p, const char *name, const char *text, size_t len,
                       const struct stat *st)
{
	const char *file = p->file, *dir = p->dir, *slash = strrchr(name, '/');
	char mydir[RULES_PATH_MAX];
	int line = p->line, r;

	snprintf(mydir, sizeof mydir, "%.*s", slash ? (int)(slash - name + 1) : 0, name);
	if (!(p->file = intern(p, name))) {
		p->file = file;
		return perr(p, "out of memory");
	}
	p->dir = mydir;
	if (st) {
		p->reading[p->nreading].dev = st->st_dev;
		p->reading[p->nreading++].ino = st->st_ino;
	}
	p->depth++;
	r = parse_lines(p, text, len);
	p->depth--;
	if (st)
		p->nreading--;
	if (r == 0) { /* on error, FILE:LINE of the error stays */
		p->file = file;
		p->line = line;
	}
	p->dir = dir;
	return r;
}

/* A rule file read from disk, for ruleset_file. */
static int remember(struct ruleset *rs, const char *path)
{
	char **d = realloc(rs->disk, (rs->ndisk + 1) * sizeof *d);

	if (!d)
		return -1;
	rs->disk = d;
	return (d[rs->ndisk] = strdup(path)) ? (int)rs->ndisk++ : -1;
}

/* An included file (p->file is the includer) or the top file (p->file NULL). */
int parser_file(struct parser *p, const char *path)
{
	char msg[MSG_MAX], shown[SHOW_MAX + 4];
	struct stat st;
	size_t len;
	char *text;
	int r;

	if (!(text = file_read(path, RULES_FILE_MAX, &len, &st, msg, sizeof msg))) {
		if (!p->file) {
			snprintf(p->err, p->errsize, "%s: %s", path, msg);
			return -1;
		}
		return perr(p, "include \"%s\": %s", show(path, shown), msg);
	}
	for (int i = 0; i < p->nreading; i++) {
		if (p->reading[i].dev == st.st_dev && p->reading[i].ino == st.st_ino) {
			free(text);
			return perr(p, "include cycle: \"%s\" is already being read", show(path, shown));
		}
	}
	if (remember(p->rs, path) < 0) {
		free(text);
		return perr(p, "out of memory");
	}
	r = parse_named(p, path, text, len, &st);
	free(text);
	return r;
}

/* The rule sets compiled in, for include builtin:NAME; each is named by its
 * source file in verdicts and the log. */
static const struct {
	const char *name, *file, *text;
} builtins[] = {
	{"default", "default.rules", rules_default_text},
};

int parser_builtin(struct parser *p, const char *name)
{
	char shown[SHOW_MAX + 4];
	const char *want = name + strlen(RULES_BUILTIN_PREFIX);

	for (size_t i = 0; i < NELEM(builtins); i++) {
		/* an identity no file has (device 0), for the cycle check */
		struct stat st = {.st_dev = 0, .st_ino = (ino_t)i + 1};

		if (strcasecmp(want, builtins[i].name) != 0)
			continue;
		for (int k = 0; k < p->nreading; k++)
			if (p->reading[k].dev == st.st_dev && p->reading[k].ino == st.st_ino)
				return perr(p, "include cycle: %s is already being read", show(name, shown));
		return parse_named(p, builtins[i].file, builtins[i].text, strlen(builtins[i].text), &st);
	}
	return perr(p, "unknown built-in rules \"%s\" (there is builtin:default)", show(name, shown));
}

/* ---- loading, life ---- */

static void ruleset_free(struct ruleset *rs)
{
	for (size_t i = 0; i < rs->nrules; i++)
		rule_free(&rs->rules[i]);
	free(rs->rules);
	for (size_t i = 0; i < rs->nlists; i++)
		list_free(rs->lists[i]);
	free(rs->lists);
	for (size_t i = 0; i < rs->nfiles; i++)
		free(rs->files[i]);
	free(rs->files);
	for (size_t i = 0; i < rs->ndisk; i++)
		free(rs->disk[i]);
	free(rs->disk);
	strset_free(rs->ids);
	free(rs);
}

/* A file (path) or a text (name) with a fresh parser: the ruleset, or NULL with err set. */
static struct ruleset *load(const char *path, const char *text, size_t len, const char *name,
                            const struct rule_vocab *vocab, char *err, size_t errsize)
{
	char dummy[1];
	struct parser *p = calloc(1, sizeof *p);
	struct ruleset *rs = calloc(1, sizeof *rs);
	int r;

	if (!err || !errsize) {
		err = dummy;
		errsize = sizeof dummy;
	}
	err[0] = '\0';
	if (!p || !rs) {
		free(p);
		free(rs);
		snprintf(err, errsize, "%s: out of memory", path ? path : name);
		return NULL;
	}
	*p = (struct parser){ .rs = rs, .err = err, .errsize = errsize, .dir = "" };
	rs->refs = 1;
	rs->vocab = vocab;
	if (vocab && vocab->n > RULES_VOCAB_MAX) {
		free(p);
		ruleset_free(rs);
		snprintf(err, errsize, "%s: the checks declare %zu facts, more than %d", path ? path : name,
		         vocab->n, RULES_VOCAB_MAX);
		return NULL;
	}
	r = path ? parser_file(p, path) : parse_named(p, name, text, len, NULL);
	free(p);
	if (r < 0) {
		ruleset_free(rs);
		return NULL;
	}
	return rs;
}

struct ruleset *ruleset_load(const char *path, const struct rule_vocab *vocab, char *err, size_t errsize)
{
	return load(path ? path : "", NULL, 0, NULL, vocab, err, errsize);
}

struct ruleset *ruleset_load_text(const char *text, size_t len, const char *name,
                                  const struct rule_vocab *vocab, char *err, size_t errsize)
{
	return load(NULL, text ? text : "", text ? len : 0, name ? name : "(rules)", vocab, err, errsize);
}

struct ruleset *ruleset_load_default(const struct rule_vocab *vocab, char *err, size_t errsize)
{
	return ruleset_load_text(rules_default_text, strlen(rules_default_text), "default.rules", vocab, err,
	                         errsize);
}

struct ruleset *ruleset_ref(struct ruleset *rs)
{
	if (rs)
		rs->refs++;
	return rs;
}

void ruleset_unref(struct ruleset *rs)
{
	if (rs && --rs->refs == 0)
		ruleset_free(rs);
}

/* ---- looking at a ruleset ---- */

unsigned ruleset_uses(const struct ruleset *rs)
{
	return rs->uses;
}

int ruleset_uses_value(const struct ruleset *rs, size_t i)
{
	return i < RULES_VOCAB_MAX && (rs->uses_values >> i) & 1;
}

size_t ruleset_stage_count(const struct ruleset *rs, enum rule_stage stage)
{
	size_t n = 0;

	for (size_t i = 0; i < rs->nrules; i++)
		n += rs->rules[i].stage == stage;
	return n;
}

size_t ruleset_count(const struct ruleset *rs)
{
	return rs->nrules;
}

int ruleset_rule(const struct ruleset *rs, size_t i, struct rule_info *out)
{
	const struct rule *r;

	if (i >= rs->nrules)
		return -1;
	r = &rs->rules[i];
	*out = (struct rule_info){
		.action = r->action, .monitor = r->monitor, .stage = r->stage, .code = r->code,
		.esc = r->esc, .text = r->text, .what = r->what, .note = r->note, .id = r->id,
		.file = r->file, .line = r->line,
	};
	return 0;
}

const char *ruleset_file(const struct ruleset *rs, size_t i)
{
	if (i < rs->ndisk)
		return rs->disk[i];
	i -= rs->ndisk;
	return i < rs->nlists ? list_name(rs->lists[i]) : NULL;
}

void ruleset_describe(const struct ruleset *rs, char *buf, size_t size)
{
	size_t entries = 0;

	for (size_t i = 0; i < rs->nlists; i++)
		entries += list_entries(rs->lists[i]);
	snprintf(buf, size, "%zu rules (connect %zu, helo %zu, mail %zu, rcpt %zu, data %zu), %zu lists, "
	                    "%zu list entries",
	         rs->nrules, ruleset_stage_count(rs, STAGE_CONNECT), ruleset_stage_count(rs, STAGE_HELO),
	         ruleset_stage_count(rs, STAGE_MAIL), ruleset_stage_count(rs, STAGE_RCPT),
	         ruleset_stage_count(rs, STAGE_DATA), rs->nlists, entries);
}
