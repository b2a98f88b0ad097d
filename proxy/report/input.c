/* input.c - files and standard input as one stream of lines (see input.h) */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/report/bounds.h"
#include "proxy/report/input.h"

static char *const stdin_path[] = {"-"};

int rinput_init(struct rinput *in, char *const *paths, size_t n)
{
	memset(in, 0, sizeof *in);
	in->paths = n ? paths : stdin_path;
	in->npaths = n ? n : 1;
	in->fd = -1;
	in->file_eof = 1;
	in->cap = REPORT_READ_CHUNK + REPORT_LINE_MAX;
	in->buf = malloc(in->cap);
	in->zbuf = malloc(REPORT_READ_CHUNK);
	if (!in->buf || !in->zbuf) {
		rinput_free(in);
		return -1;
	}
	return 0;
}

static void close_file(struct rinput *in)
{
	/* the thread first: it may be reading fd */
	gunzip_stop(in->gz);
	in->gz = NULL;
	if (in->fd > 0)
		close(in->fd);
	in->fd = -1;
}

void rinput_free(struct rinput *in)
{
	close_file(in);
	free(in->buf);
	free(in->zbuf);
	in->buf = NULL;
	in->zbuf = NULL;
}

static int fail(struct rinput *in, const char *what)
{
	if (in->file_lines)
		snprintf(in->err, sizeof in->err, "%s: %s, after line %llu", in->name, what,
		         (unsigned long long)in->file_lines);
	else
		snprintf(in->err, sizeof in->err, "%s: %s", in->name, what);
	in->file_eof = 1;
	/* a line cut by the failure is not a line */
	in->start = in->end;
	return -1;
}

static ssize_t read_some(int fd, void *buf, size_t n)
{
	ssize_t r;

	do
		r = read(fd, buf, n);
	while (r < 0 && errno == EINTR);
	return r;
}

/* The first bytes of a file tell gzip from plain text. */
static int open_next(struct rinput *in)
{
	ssize_t r;

	in->name = in->paths[in->next++];
	in->file_lines = 0;
	in->file_eof = 0;
	in->skipping = 0;
	in->start = in->end = 0;
	if (strcmp(in->name, "-") == 0) {
		in->fd = 0;
		in->name = "(standard input)";
	} else if ((in->fd = open(in->name, O_RDONLY | O_CLOEXEC)) < 0) {
		return fail(in, strerror(errno));
	}
	r = read_some(in->fd, in->zbuf, REPORT_READ_CHUNK);
	if (r < 0)
		return fail(in, strerror(errno));
	if (r >= 2 && in->zbuf[0] == 0x1f && in->zbuf[1] == 0x8b) {
		if (!(in->gz = gunzip_start(in->fd, in->zbuf, (size_t)r)))
			return fail(in, "cannot start inflating (out of memory?)");
	} else {
		memcpy(in->buf, in->zbuf, (size_t)r);
		in->end = (size_t)r;
		in->bytes += (uint64_t)r;
		in->file_eof = r == 0;
	}
	return 0;
}

static int fill(struct rinput *in)
{
	ssize_t n;

	if (in->start > 0) {
		memmove(in->buf, in->buf + in->start, in->end - in->start);
		in->end -= in->start;
		in->start = 0;
	}
	n = in->gz ? gunzip_read(in->gz, in->buf + in->end, in->cap - in->end)
	           : read_some(in->fd, in->buf + in->end, in->cap - in->end);
	if (n < 0)
		return fail(in, in->gz ? gunzip_error(in->gz) : strerror(errno));
	if (n == 0)
		in->file_eof = 1;
	in->end += (size_t)n;
	in->bytes += (uint64_t)n;
	return 0;
}

int rinput_line(struct rinput *in, const char **line, size_t *len)
{
	for (;;) {
		if (in->start < in->end) {
			char *p = in->buf + in->start, *nl = memchr(p, '\n', in->end - in->start);

			if (nl) {
				in->start = (size_t)(nl + 1 - in->buf);
				if (in->skipping || nl - p > REPORT_LINE_MAX) {
					in->toolong += !in->skipping;
					in->skipping = 0;
					continue;
				}
				*line = p;
				*len = (size_t)(nl - p);
				in->file_lines++;
				return 1;
			}
			if (in->end - in->start > REPORT_LINE_MAX) {
				in->toolong += !in->skipping;
				in->skipping = 1;
				in->start = in->end;
			}
		}
		if (in->file_eof) {
			if (in->start < in->end && !in->skipping) {
				/* the last line of a file, without its "\n" */
				*line = in->buf + in->start;
				*len = in->end - in->start;
				in->start = in->end;
				in->file_lines++;
				return 1;
			}
			close_file(in);
			if (in->next >= in->npaths)
				return 0;
			if (open_next(in) < 0)
				return -1;
			continue;
		}
		if (fill(in) < 0)
			return -1;
	}
}
