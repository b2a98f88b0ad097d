/* input.h - the report's input: files (plain or gzip, told by their first
 * bytes, not their names) or standard input, read as one stream of lines */
#ifndef MOAT_REPORT_INPUT_H
#define MOAT_REPORT_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/report/gunzip.h"

struct rinput {
	char *const *paths;  /* "-": standard input */
	size_t npaths, next;
	const char *name;    /* the file being read */
	int fd, file_eof;
	struct gunzip *gz;   /* a gzip file's inflating thread */
	unsigned char *zbuf; /* the first bytes of a file */
	char *buf;           /* the stream's bytes, lines found in place */
	size_t cap, start, end;
	int skipping;        /* in a line over REPORT_LINE_MAX */
	uint64_t bytes;      /* bytes of log (after gunzip) */
	uint64_t toolong;    /* lines over REPORT_LINE_MAX, skipped */
	uint64_t file_lines;
	char err[512];
};

/* paths: n file names ("-": standard input); none: standard input.
 * 0, or -1 out of memory. */
int rinput_init(struct rinput *in, char *const *paths, size_t n);
void rinput_free(struct rinput *in);

/* The next line, without its "\n" (valid until the next call); a file's
 * last line needs none. 1: a line; 0: the end of the input; -1: a file
 * could not be read (whole): in->err says why, and the next call goes on
 * with the next file. */
int rinput_line(struct rinput *in, const char **line, size_t *len);

#endif
