/* readfile.c - a whole configuration file into memory (see readfile.h) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/lib/readfile.h"

char *file_read(const char *path, size_t max, size_t *len, struct stat *st, char *msg, size_t msz)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 1 << 16, n = 0;
	struct stat own;
	char *buf = NULL;
	int e = 0;

	if (!st)
		st = &own;
	if (!f) {
		snprintf(msg, msz, "cannot open: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), st) < 0 || !S_ISREG(st->st_mode)) {
		e = errno;
		snprintf(msg, msz, "cannot read: %s", S_ISREG(st->st_mode) ? strerror(e) : "not a regular file");
		fclose(f);
		return NULL;
	}
	if (st->st_size > 0 && (size_t)st->st_size <= max)
		cap = (size_t)st->st_size + 1; /* one read, and one more to see the end */
	for (;;) {
		size_t got;

		if (!buf || n == cap) {
			char *b;

			if (buf)
				cap *= 2;
			if (cap > max + 1)
				cap = max + 1;
			if (!(b = realloc(buf, cap + 1))) {
				e = ENOMEM;
				break;
			}
			buf = b;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (n > max || got == 0)
			break;
	}
	if (!e && ferror(f))
		e = errno ? errno : EIO;
	fclose(f);
	if (e == ENOMEM)
		snprintf(msg, msz, "out of memory");
	else if (e)
		snprintf(msg, msz, "cannot read: %s", strerror(e));
	else if (n > max)
		snprintf(msg, msz, "too large (max %zu bytes)", max);
	else {
		buf[n] = '\0';
		*len = n;
		return buf;
	}
	free(buf);
	return NULL;
}

int file_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}
