/* sesslines.c - the lines of matching sessions (see sesslines.h) */
#include <stdlib.h>
#include <string.h>

#include "proxy/lib/siphash.h"
#include "proxy/report/bounds.h"
#include "proxy/report/idxmap.h"
#include "proxy/report/sesslines.h"

#define ID_MAX 64 /* bytes of a session id kept (moat's are 16) */

/* One line in the look-back window. */
struct entry {
	uint64_t seq;  /* its number among the lines put in the window */
	uint64_t pos;  /* where its bytes start, counted from the first byte ever written */
	uint64_t key;  /* its session */
	uint64_t prev; /* the seq + 1 of the session's line before it; 0: none */
	uint32_t len;
	int gap;       /* lines of its session before it had left the window */
};

struct held {
	uint64_t key;
	char id[ID_MAX];
	size_t idn;
	char *buf;
	size_t len, cap;
	uint32_t prev, next; /* in the order sessions were first held: index + 1 */
	int continued, lost;
};

struct sesslines {
	sl_emit emit;
	void *arg;
	char *ring;
	uint64_t pos;          /* bytes written to the ring, all told */
	struct entry *ent;     /* REPORT_RING_LINES, by seq */
	uint64_t seq;          /* lines written to the ring */
	struct idxmap last;    /* session -> the slot of its last line in the window */
	uint64_t *walk;        /* a session's lines found in the window */
	struct held *held;     /* REPORT_HELD_SESSIONS */
	uint32_t *free_held;
	size_t nfree, held_bytes;
	struct idxmap held_map;
	uint32_t head, tail;
	struct sl_counts c;
	uint8_t seed[16];
};

/* A power of two over twice the entries it maps (idxmap_put fails near full). */
#define LAST_SLOTS (4 * REPORT_RING_LINES)
#define HELD_SLOTS (2 * REPORT_HELD_SESSIONS)

struct sesslines *sesslines_new(sl_emit emit, void *arg)
{
	struct sesslines *sl = calloc(1, sizeof *sl);

	if (!sl)
		return NULL;
	sl->emit = emit;
	sl->arg = arg;
	sl->ring = malloc(REPORT_RING_BYTES);
	sl->ent = calloc(REPORT_RING_LINES, sizeof *sl->ent);
	sl->walk = malloc(REPORT_RING_LINES * sizeof *sl->walk);
	sl->held = calloc(REPORT_HELD_SESSIONS, sizeof *sl->held);
	sl->free_held = malloc(REPORT_HELD_SESSIONS * sizeof *sl->free_held);
	siphash_random_key(sl->seed);
	if (!sl->ring || !sl->ent || !sl->walk || !sl->held || !sl->free_held ||
	    idxmap_init(&sl->last, LAST_SLOTS) < 0 || idxmap_init(&sl->held_map, HELD_SLOTS) < 0) {
		sesslines_free(sl);
		return NULL;
	}
	for (size_t i = 0; i < REPORT_HELD_SESSIONS; i++)
		sl->free_held[sl->nfree++] = (uint32_t)(REPORT_HELD_SESSIONS - 1 - i);
	/* seq 0 would read as "no previous line" */
	sl->seq = 1;
	return sl;
}

void sesslines_free(struct sesslines *sl)
{
	if (!sl)
		return;
	if (sl->held)
		for (size_t i = 0; i < REPORT_HELD_SESSIONS; i++)
			free(sl->held[i].buf);
	free(sl->ring);
	free(sl->ent);
	free(sl->walk);
	free(sl->held);
	free(sl->free_held);
	idxmap_free(&sl->last);
	idxmap_free(&sl->held_map);
	free(sl);
}

/* moat's ids are 16 hex digits: their value; anything else, its hash. */
static uint64_t key_of(const struct sesslines *sl, const char *id, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n && n == 16; i++) {
		int c = (unsigned char)id[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

		if (d < 0)
			return siphash24(sl->seed, id, n);
		v = v << 4 | (uint64_t)d;
	}
	return n == 16 ? v : siphash24(sl->seed, id, n);
}

/* ---- the look-back window ---- */

static struct entry *entry_at(struct sesslines *sl, uint64_t seq)
{
	struct entry *e = &sl->ent[seq % REPORT_RING_LINES];

	/* still there: not overwritten, nor its bytes */
	if (e->seq != seq || e->pos + REPORT_RING_BYTES < sl->pos)
		return NULL;
	return e;
}

/* The map holds sessions whose lines left the window too: rebuilt from the
 * window when it fills up (at most once every REPORT_RING_LINES lines). */
static void rebuild_last(struct sesslines *sl)
{
	idxmap_clear(&sl->last);
	for (uint64_t s = sl->seq > REPORT_RING_LINES ? sl->seq - REPORT_RING_LINES : 1; s < sl->seq; s++)
		if (entry_at(sl, s))
			idxmap_put(&sl->last, sl->ent[s % REPORT_RING_LINES].key,
			           (uint32_t)(s % REPORT_RING_LINES));
}

static void window_add(struct sesslines *sl, uint64_t key, const char *line, size_t len)
{
	long slot = idxmap_get(&sl->last, key);
	struct entry *e, *prev = NULL;
	int gap = 0;

	if (slot >= 0) {
		struct entry *p = &sl->ent[slot];

		prev = p->key == key ? entry_at(sl, p->seq) : NULL;
		gap = prev ? prev->gap : 1;
	}
	if (sl->pos % REPORT_RING_BYTES + len > REPORT_RING_BYTES)
		sl->pos += REPORT_RING_BYTES - sl->pos % REPORT_RING_BYTES;
	memcpy(sl->ring + sl->pos % REPORT_RING_BYTES, line, len);
	e = &sl->ent[sl->seq % REPORT_RING_LINES];
	*e = (struct entry){.seq = sl->seq, .pos = sl->pos, .key = key, .len = (uint32_t)len, .gap = gap,
	                    .prev = prev ? prev->seq + 1 : 0};
	sl->pos += len;
	if (sl->last.n + 1 >= 2 * REPORT_RING_LINES)
		rebuild_last(sl);
	idxmap_put(&sl->last, key, (uint32_t)(sl->seq % REPORT_RING_LINES));
	sl->seq++;
}

/* ---- held sessions ---- */

static void unlink_held(struct sesslines *sl, uint32_t i)
{
	struct held *h = &sl->held[i];

	if (h->prev)
		sl->held[h->prev - 1].next = h->next;
	else
		sl->head = h->next;
	if (h->next)
		sl->held[h->next - 1].prev = h->prev;
	else
		sl->tail = h->prev;
	h->prev = h->next = 0;
}

static void link_tail(struct sesslines *sl, uint32_t i)
{
	sl->held[i].prev = sl->tail;
	sl->held[i].next = 0;
	if (sl->tail)
		sl->held[sl->tail - 1].next = i + 1;
	else
		sl->head = i + 1;
	sl->tail = i + 1;
}

/* Hand a held session's lines over. */
static void flush(struct sesslines *sl, struct held *h, int more)
{
	struct sl_block b = {h->id, h->idn, h->buf, h->len, h->continued, more, h->lost};

	if (h->len == 0 && h->continued)
		return;
	if (more)
		sl->c.early++;
	sl->emit(sl->arg, &b);
	sl->held_bytes -= h->len;
	h->len = 0;
	h->continued = 1;
	h->lost = 0;
}

static void release(struct sesslines *sl, uint32_t i)
{
	struct held *h = &sl->held[i];

	unlink_held(sl, i);
	idxmap_del(&sl->held_map, h->key);
	free(h->buf);
	memset(h, 0, sizeof *h);
	sl->free_held[sl->nfree++] = i;
}

static int append(struct sesslines *sl, struct held *h, const char *line, size_t len)
{
	if (h->len + len + 1 > h->cap) {
		size_t cap = h->cap ? h->cap : 1024;
		char *b;

		while (cap < h->len + len + 1)
			cap *= 2;
		if (!(b = realloc(h->buf, cap)))
			return -1;
		h->buf = b;
		h->cap = cap;
	}
	memcpy(h->buf + h->len, line, len);
	h->buf[h->len + len] = '\n';
	h->len += len + 1;
	sl->held_bytes += len + 1;
	return 0;
}

/* Over REPORT_HELD_BYTES: the oldest sessions with lines are handed over. */
static void bound_bytes(struct sesslines *sl)
{
	uint32_t i = sl->head;

	while (sl->held_bytes > REPORT_HELD_BYTES && i) {
		struct held *h = &sl->held[i - 1];

		i = h->next;
		if (h->len)
			flush(sl, h, 1);
	}
}

/* A session that just matched: held from now on, with its lines still in
 * the window first. */
static struct held *hold(struct sesslines *sl, uint64_t key, const char *id, size_t idn)
{
	long slot = idxmap_get(&sl->last, key);
	struct entry *e = NULL;
	struct held *h;
	size_t n = 0;
	uint32_t i;

	if (sl->nfree == 0) {
		/* REPORT_HELD_SESSIONS open at once: the oldest is handed over and
		 * forgotten (a log without session_end lines) */
		i = sl->head - 1;
		flush(sl, &sl->held[i], 1);
		release(sl, i);
		sl->c.forgotten++;
	}
	i = sl->free_held[--sl->nfree];
	h = &sl->held[i];
	h->key = key;
	h->idn = idn < ID_MAX ? idn : ID_MAX;
	memcpy(h->id, id, h->idn);
	idxmap_put(&sl->held_map, key, i);
	link_tail(sl, i);
	sl->c.sessions++;
	if (slot >= 0 && sl->ent[slot].key == key)
		e = entry_at(sl, sl->ent[slot].seq);
	/* a line of it went through the window, and is gone */
	h->lost = slot >= 0 && !e;
	for (; e; e = e->prev ? entry_at(sl, e->prev - 1) : NULL) {
		sl->walk[n++] = e->seq;
		if (e->prev && !entry_at(sl, e->prev - 1))
			h->lost = 1;
		if (!e->prev)
			h->lost |= e->gap;
	}
	while (n > 0) {
		struct entry *w = &sl->ent[sl->walk[--n] % REPORT_RING_LINES];

		append(sl, h, sl->ring + w->pos % REPORT_RING_BYTES, w->len);
	}
	sl->c.lost += (uint64_t)h->lost;
	if (slot >= 0)
		idxmap_del(&sl->last, key);
	return h;
}

void sesslines_add(struct sesslines *sl, const char *id, size_t idn, const char *line, size_t len,
                   int matched, int end)
{
	struct held *h = NULL;
	uint64_t key;
	long i;

	if (idn == 0) {
		if (matched) {
			struct sl_block b = {"", 0, NULL, 0, 0, 0, 0};
			char *buf = malloc(len + 1);

			if (!buf)
				return;
			memcpy(buf, line, len);
			buf[len] = '\n';
			b.lines = buf;
			b.len = len + 1;
			sl->emit(sl->arg, &b);
			free(buf);
		}
		return;
	}
	key = key_of(sl, id, idn);
	if ((i = idxmap_get(&sl->held_map, key)) >= 0)
		h = &sl->held[i];
	else if (matched)
		h = hold(sl, key, id, idn);
	if (!h) {
		if (end)
			idxmap_del(&sl->last, key);
		else if (len <= REPORT_RING_BYTES / 16)
			window_add(sl, key, line, len);
		return;
	}
	if (append(sl, h, line, len) < 0) {
		/* out of memory: what is held goes out now, and this line after it */
		flush(sl, h, 1);
		append(sl, h, line, len);
	}
	if (end) {
		flush(sl, h, 0);
		release(sl, (uint32_t)(h - sl->held));
	}
	bound_bytes(sl);
}

void sesslines_finish(struct sesslines *sl)
{
	while (sl->head) {
		uint32_t i = sl->head - 1;

		flush(sl, &sl->held[i], 0);
		release(sl, i);
	}
}

void sesslines_counts(const struct sesslines *sl, struct sl_counts *c)
{
	*c = sl->c;
}
