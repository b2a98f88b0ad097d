/* gunzip.h - a gzip file inflated by a thread of its own, ahead of the
 * reader: on two cores the report reads a gzip log about as fast as a plain
 * one (inflating costs as much as parsing) */
#ifndef MOAT_REPORT_GUNZIP_H
#define MOAT_REPORT_GUNZIP_H

#include <stddef.h>
#include <sys/types.h>

struct gunzip;

/* Inflate fd (its first n bytes already read into first): members one after
 * another, as logrotate and cat leave them; what follows the last member
 * if it is not one is ignored, as gzip does. NULL: out of memory or no
 * thread. The caller keeps fd, and closes it after gunzip_stop. */
struct gunzip *gunzip_start(int fd, const unsigned char *first, size_t n);

/* Up to room bytes of the inflated stream into dst, waiting for them:
 * their number, 0 at the end, -1 on an error (gunzip_error says which). */
ssize_t gunzip_read(struct gunzip *g, char *dst, size_t room);
const char *gunzip_error(const struct gunzip *g);

/* Stop the thread (wherever it is) and free g. */
void gunzip_stop(struct gunzip *g);

#endif
