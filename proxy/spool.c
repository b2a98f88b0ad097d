/* spool.c - message storage; never more than MOAT_SPOOL_MEM_MAX in memory */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "proxy/lib/bounds.h"
#include "proxy/lib/log.h"
#include "proxy/lib/readfile.h"
#include "proxy/spool.h"

struct spool {
	struct evbuffer *mem; /* the message while small; then what is not yet written to fd */
	int fd;               /* spill file, -1 while in memory */
	size_t size;          /* bytes written so far */
	size_t mem_max;       /* spill beyond this */
	int failed;
	char dir[1024];
};

struct spool *spool_new(const char *dir)
{
	struct spool *sp = calloc(1, sizeof *sp);

	if (!sp)
		return NULL;
	sp->mem = evbuffer_new();
	if (!sp->mem) {
		free(sp);
		return NULL;
	}
	sp->fd = -1;
	sp->mem_max = MOAT_SPOOL_MEM_MAX;
	snprintf(sp->dir, sizeof sp->dir, "%s", dir && *dir ? dir : "/tmp");
	return sp;
}

/* An anonymous file in dir: O_TMPFILE where supported, else mkstemp+unlink. */
static int spill_open(const char *dir)
{
	char path[1100];
	int fd;

	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	snprintf(path, sizeof path, "%s/moat-spool.XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	return fd;
}

int spool_dir_usable(const char *dir)
{
	struct stat st;
	int fd;

	if (stat(dir, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	if ((fd = spill_open(dir)) < 0)
		return -1;
	close(fd);
	return 0;
}

/* Write what is in memory to the spill file. */
static int flush(struct spool *sp)
{
	if (sp->failed)
		return -1;
	while (evbuffer_get_length(sp->mem) > 0) {
		struct evbuffer_iovec v;

		if (evbuffer_peek(sp->mem, -1, NULL, &v, 1) < 1)
			break;
		if (file_write_all(sp->fd, v.iov_base, v.iov_len) < 0) {
			log_error("spool", "write to spool file failed: %s", strerror(errno));
			sp->failed = 1;
			return -1;
		}
		evbuffer_drain(sp->mem, v.iov_len);
	}
	return 0;
}

/* Move what is in memory to a new spill file. */
static int spill(struct spool *sp)
{
	sp->fd = spill_open(sp->dir);
	if (sp->fd < 0) {
		log_error("spool", "cannot create a spool file in %s: %s", sp->dir, strerror(errno));
		return -1;
	}
	return flush(sp);
}

int spool_write(struct spool *sp, const char *p, size_t n)
{
	if (sp->failed)
		return -1;
	if (sp->fd < 0 && sp->size + n > sp->mem_max && spill(sp) < 0)
		goto fail;
	/* On disk too, bytes gather in memory first: a message of bare line
	 * ends arrives two bytes at a time, which must not be a write(2) each. */
	if (evbuffer_add(sp->mem, p, n) < 0)
		goto fail;
	sp->size += n;
	if (sp->fd >= 0 && evbuffer_get_length(sp->mem) >= MOAT_SPOOL_WRITE_CHUNK && flush(sp) < 0)
		goto fail;
	return 0;
fail:
	sp->failed = 1;
	return -1;
}

void spool_set_mem_max(struct spool *sp, size_t max) { sp->mem_max = max; }
size_t spool_size(const struct spool *sp) { return sp->size; }
int spool_finish(struct spool *sp)
{
	return sp->fd >= 0 ? flush(sp) : sp->failed ? -1 : 0;
}

int spool_failed(const struct spool *sp) { return sp->failed; }
int spool_on_disk(const struct spool *sp) { return sp->fd >= 0; }

long spool_read(struct spool *sp, size_t off, char *buf, size_t len)
{
	if (off >= sp->size)
		return 0;
	if (len > sp->size - off)
		len = sp->size - off;
	if (sp->fd >= 0) {
		ssize_t r;

		if (flush(sp) < 0)
			return -1;
		r = pread(sp->fd, buf, len, (off_t)off);

		return r < 0 ? -1 : (long)r;
	} else {
		struct evbuffer_ptr pos;

		if (evbuffer_ptr_set(sp->mem, &pos, off, EVBUFFER_PTR_SET) < 0)
			return -1;
		return (long)evbuffer_copyout_from(sp->mem, &pos, buf, len);
	}
}

int spool_move_to(struct spool *sp, struct evbuffer *out)
{
	struct evbuffer_file_segment *seg;

	if (sp->fd < 0) {
		sp->size = 0;
		return evbuffer_add_buffer(out, sp->mem);
	}
	if (flush(sp) < 0)
		return -1;
	/* The segment owns the fd from here and closes it when sent. */
	seg = evbuffer_file_segment_new(sp->fd, 0, (ev_off_t)sp->size, EVBUF_FS_CLOSE_ON_FREE);
	if (!seg)
		return -1;
	sp->fd = -1;
	sp->size = 0;
	if (evbuffer_add_file_segment(out, seg, 0, -1) < 0) {
		evbuffer_file_segment_free(seg);
		return -1;
	}
	evbuffer_file_segment_free(seg); /* out holds its own reference */
	return 0;
}

/* Part of the spill file as a file segment of out. */
static int add_file_part(struct spool *sp, struct evbuffer *out, size_t off, size_t len)
{
	struct evbuffer_file_segment *seg;
	int fd;

	if (len == 0)
		return 0;
	fd = dup(sp->fd); /* each segment closes its own fd */
	if (fd < 0)
		return -1;
	seg = evbuffer_file_segment_new(fd, (ev_off_t)off, (ev_off_t)len, EVBUF_FS_CLOSE_ON_FREE);
	if (!seg) {
		close(fd);
		return -1;
	}
	if (evbuffer_add_file_segment(out, seg, 0, -1) < 0) {
		evbuffer_file_segment_free(seg);
		return -1;
	}
	evbuffer_file_segment_free(seg);
	return 0;
}

int spool_move_skipping(struct spool *sp, struct evbuffer *out, const struct spool_range *skip,
                        int nskip)
{
	size_t pos = 0;
	int i;

	if (nskip == 0)
		return spool_move_to(sp, out);
	if (sp->fd >= 0 && flush(sp) < 0)
		return -1;
	for (i = 0; i <= nskip; i++) {
		size_t keep_end = i < nskip ? skip[i].off : sp->size;

		if (keep_end < pos || keep_end > sp->size)
			return -1;
		if (sp->fd >= 0) {
			if (add_file_part(sp, out, pos, keep_end - pos) < 0)
				return -1;
		} else if (evbuffer_remove_buffer(sp->mem, out, keep_end - pos) < 0) {
			return -1;
		}
		if (i == nskip)
			break;
		if (sp->fd < 0)
			evbuffer_drain(sp->mem, skip[i].len);
		pos = skip[i].off + skip[i].len;
	}
	/* Emptied, as spool_move_to leaves it: the segments hold their own fds. */
	if (sp->fd >= 0)
		close(sp->fd);
	sp->fd = -1;
	sp->size = 0;
	return 0;
}

void spool_free(struct spool *sp)
{
	if (!sp)
		return;
	evbuffer_free(sp->mem);
	if (sp->fd >= 0)
		close(sp->fd);
	free(sp);
}
