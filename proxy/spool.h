/* spool.h - one message being received: memory first, a temporary file beyond */
#ifndef MOAT_SPOOL_H
#define MOAT_SPOOL_H

#include <stddef.h>

struct evbuffer;
struct spool;

/* New empty spool; dir is where a large message spills (unlinked file). */
struct spool *spool_new(const char *dir);
/* Append bytes. Returns 0, or -1 once a write to the spill file failed
 * (disk full, unwritable dir): the spool is then broken for good. */
int spool_write(struct spool *sp, const char *p, size_t n);
/* Spill beyond max bytes instead of MOAT_SPOOL_MEM_MAX (tests, fuzzing). */
void spool_set_mem_max(struct spool *sp, size_t max);
size_t spool_size(const struct spool *sp);
/* All written: what is still buffered goes to the file. 0, or -1 (failed for good). */
int spool_finish(struct spool *sp);
int spool_failed(const struct spool *sp);
int spool_on_disk(const struct spool *sp);
/* Copy up to len bytes from offset into buf (for checks that read the
 * message). Returns bytes copied, -1 on error. */
long spool_read(struct spool *sp, size_t off, char *buf, size_t len);
/* Move the contents to the end of out (memory: zero-copy; file: a file
 * segment sent with sendfile). The spool is empty afterwards. 0 or -1. */
int spool_move_to(struct spool *sp, struct evbuffer *out);
/* Like spool_move_to, leaving out the byte ranges skip[0..nskip) (sorted,
 * not overlapping): header fields moat removes. 0 or -1. */
struct spool_range {
	size_t off, len;
};
int spool_move_skipping(struct spool *sp, struct evbuffer *out, const struct spool_range *skip,
                        int nskip);
void spool_free(struct spool *sp);
/* Can a message spill into dir (as this process is now)? Makes and drops an
 * anonymous file there the way a message does. 0, or -1 with errno
 * (ENOTDIR for a dir that is not one). */
int spool_dir_usable(const char *dir);

#endif
