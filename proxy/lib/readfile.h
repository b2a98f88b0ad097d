/* readfile.h - a whole configuration file into memory, bounded; a buffer
 * written whole */
#ifndef MOAT_READFILE_H
#define MOAT_READFILE_H

#include <stddef.h>
#include <sys/stat.h>

/* The whole regular file at path, at most max bytes, NUL-terminated
 * (*len: its length; *st: its identity when st is not NULL). NULL with the
 * reason in msg ("cannot open: ...", "cannot read: not a regular file" (a
 * FIFO would hang a reload, /dev/zero would fill memory), "too large (max N
 * bytes)", "out of memory"); callers put the path in front. */
char *file_read(const char *path, size_t max, size_t *len, struct stat *st, char *msg, size_t msz);

/* All n bytes of p to fd (retried after EINTR and short writes); 0, or -1
 * with errno set. */
int file_write_all(int fd, const char *p, size_t n);

#endif
