/* gunzip.c - a gzip file inflated by a thread (see gunzip.h)
 *
 * A ring of GUNZIP_CHUNKS buffers: the thread fills them in turn, the reader
 * empties them in the same order; each side waits on a condition only when
 * the ring is full or empty. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "proxy/report/bounds.h"
#include "proxy/report/gunzip.h"

#define GUNZIP_CHUNKS 4

struct chunk {
	char *buf;
	size_t len, pos;
};

struct gunzip {
	int fd;
	z_stream zs;
	int in_member;
	unsigned char *in;                  /* compressed bytes */
	struct chunk c[GUNZIP_CHUNKS];
	size_t head, filled;                /* next to read; chunks ready */
	int done, failed, stop;             /* the thread's end: the stream's, an error's, ours */
	char err[128];
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static ssize_t read_some(int fd, void *buf, size_t n)
{
	ssize_t r;

	do
		r = read(fd, buf, n);
	while (r < 0 && errno == EINTR);
	return r;
}

/* Inflate into dst (room bytes): bytes written, 0 at the end, -1 (g->err). */
static ssize_t inflate_some(struct gunzip *g, char *dst, size_t room)
{
	z_stream *z = &g->zs;

	for (;;) {
		int rc;

		if (z->avail_in == 0) {
			ssize_t r = read_some(g->fd, g->in, REPORT_READ_CHUNK);

			if (r < 0) {
				snprintf(g->err, sizeof g->err, "%s", strerror(errno));
				return -1;
			}
			if (r == 0) {
				if (!g->in_member)
					return 0;
				snprintf(g->err, sizeof g->err, "unexpected end of gzip data (cut short?)");
				return -1;
			}
			z->next_in = g->in;
			z->avail_in = (uInt)r;
		}
		if (!g->in_member) {
			if (z->next_in[0] != 0x1f)
				return 0;
			inflateReset(z);
			g->in_member = 1;
		}
		z->next_out = (Bytef *)dst;
		z->avail_out = (uInt)room;
		rc = inflate(z, Z_NO_FLUSH);
		if (rc == Z_STREAM_END) {
			g->in_member = 0;
		} else if (rc != Z_OK && rc != Z_BUF_ERROR) {
			snprintf(g->err, sizeof g->err, "%s", z->msg ? z->msg : "corrupt gzip data");
			return -1;
		}
		if (room - z->avail_out > 0)
			return (ssize_t)(room - z->avail_out);
	}
}

/* Fill one chunk as far as it goes: 0, or -1 at the end of the stream (or
 * an error) after what it holds. */
static int fill_chunk(struct gunzip *g, struct chunk *c)
{
	c->len = c->pos = 0;
	while (c->len < REPORT_READ_CHUNK) {
		ssize_t n = inflate_some(g, c->buf + c->len, REPORT_READ_CHUNK - c->len);

		if (n <= 0) {
			if (n < 0)
				g->failed = 1;
			return -1;
		}
		c->len += (size_t)n;
	}
	return 0;
}

static void *run(void *arg)
{
	struct gunzip *g = arg;

	for (;;) {
		struct chunk *c;
		int end;

		pthread_mutex_lock(&g->lock);
		while (g->filled == GUNZIP_CHUNKS && !g->stop)
			pthread_cond_wait(&g->cond, &g->lock);
		if (g->stop) {
			pthread_mutex_unlock(&g->lock);
			return NULL;
		}
		c = &g->c[(g->head + g->filled) % GUNZIP_CHUNKS];
		pthread_mutex_unlock(&g->lock);
		/* the chunk past the filled ones is the thread's alone */
		end = fill_chunk(g, c) < 0;
		pthread_mutex_lock(&g->lock);
		g->filled++;
		g->done = end;
		pthread_cond_broadcast(&g->cond);
		pthread_mutex_unlock(&g->lock);
		if (end)
			return NULL;
	}
}

struct gunzip *gunzip_start(int fd, const unsigned char *first, size_t n)
{
	struct gunzip *g = calloc(1, sizeof *g);
	int ok = g != NULL;

	if (!g)
		return NULL;
	g->fd = fd;
	g->in = malloc(REPORT_READ_CHUNK);
	for (int i = 0; i < GUNZIP_CHUNKS; i++)
		ok &= (g->c[i].buf = malloc(REPORT_READ_CHUNK)) != NULL;
	/* 16 + MAX_WBITS: a gzip header and trailer */
	if (!ok || !g->in || n > REPORT_READ_CHUNK || inflateInit2(&g->zs, 16 + MAX_WBITS) != Z_OK) {
		for (int i = 0; i < GUNZIP_CHUNKS; i++)
			free(g->c[i].buf);
		free(g->in);
		free(g);
		return NULL;
	}
	memcpy(g->in, first, n);
	g->zs.next_in = g->in;
	g->zs.avail_in = (uInt)n;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	if (pthread_create(&g->thread, NULL, run, g) != 0) {
		g->stop = 1;
		gunzip_stop(g);
		return NULL;
	}
	return g;
}

ssize_t gunzip_read(struct gunzip *g, char *dst, size_t room)
{
	struct chunk *c;
	size_t n;

	pthread_mutex_lock(&g->lock);
	while (g->filled == 0 && !g->done)
		pthread_cond_wait(&g->cond, &g->lock);
	if (g->filled == 0) {
		pthread_mutex_unlock(&g->lock);
		return g->failed ? -1 : 0;
	}
	c = &g->c[g->head];
	pthread_mutex_unlock(&g->lock);
	/* the chunk at head is the reader's alone until it is given back */
	n = c->len - c->pos < room ? c->len - c->pos : room;
	memcpy(dst, c->buf + c->pos, n);
	c->pos += n;
	if (c->pos == c->len) {
		pthread_mutex_lock(&g->lock);
		g->head = (g->head + 1) % GUNZIP_CHUNKS;
		g->filled--;
		pthread_cond_broadcast(&g->cond);
		pthread_mutex_unlock(&g->lock);
		if (n == 0)
			return gunzip_read(g, dst, room);
	}
	return (ssize_t)n;
}

const char *gunzip_error(const struct gunzip *g)
{
	return g->err;
}

void gunzip_stop(struct gunzip *g)
{
	int started;

	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	started = !g->stop;
	g->stop = 1;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
	if (started)
		pthread_join(g->thread, NULL);
	inflateEnd(&g->zs);
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->cond);
	for (int i = 0; i < GUNZIP_CHUNKS; i++)
		free(g->c[i].buf);
	free(g->in);
	free(g);
}
