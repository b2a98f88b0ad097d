/* dkim_bodyhash.c - a DKIM body hash, streamed (see dkim_bodyhash.h)
 *
 * Both canonicalizations withhold empty lines until a line with content
 * follows (trailing ones are dropped); relaxed also withholds a run of
 * white space until something other than a line end follows, and then
 * writes one SP. Canonical bytes are batched before they are hashed. Only
 * CRLF ends a line; moat's spool has no bare CR or LF, and a lone one is
 * kept as content. */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "checks/dkim_bodyhash.h"

#define BH_BATCH 4096 /* canonical bytes per digest update */
#define BH_DIGEST 32  /* SHA-256 */

struct dkim_bodyhash {
	EVP_MD_CTX *md;
	int relaxed;
	long long limit;              /* l=, or -1 */
	unsigned long long total;     /* canonical bytes, hashed or not */
	unsigned long long hashed;    /* at most limit */
	unsigned long long empty;     /* empty lines withheld */
	int cr;                       /* a CR whose LF may follow */
	int bol;                      /* simple: at the start of a line */
	char last;                    /* simple: the byte before p */
	int wsp;                      /* relaxed: white space withheld */
	int content;                  /* relaxed: the line has content */
	int finished;
	unsigned char digest[BH_DIGEST];
	size_t blen;
	char batch[BH_BATCH];
};

static void flush_batch(struct dkim_bodyhash *h)
{
	if (h->blen)
		EVP_DigestUpdate(h->md, h->batch, h->blen);
	h->blen = 0;
}

static void emit(struct dkim_bodyhash *h, const char *p, size_t n)
{
	h->total += n;
	if (h->limit >= 0 && h->hashed + n > (unsigned long long)h->limit)
		n = (size_t)((unsigned long long)h->limit - h->hashed);
	h->hashed += n;
	if (h->blen + n > sizeof h->batch)
		flush_batch(h);
	if (n >= sizeof h->batch) {
		EVP_DigestUpdate(h->md, p, n);
		return;
	}
	memcpy(h->batch + h->blen, p, n);
	h->blen += n;
}

/* A line with content follows the withheld empty lines: they count. */
static void flush_empty(struct dkim_bodyhash *h)
{
	for (; h->empty > 0; h->empty--)
		emit(h, "\r\n", 2);
}

struct dkim_bodyhash *dkim_bodyhash_new(int relaxed, long long limit)
{
	struct dkim_bodyhash *h = malloc(sizeof *h);

	if (!h)
		return NULL;
	memset(h, 0, offsetof(struct dkim_bodyhash, batch)); /* not the batch */
	h->relaxed = relaxed;
	h->limit = limit < 0 ? -1 : limit;
	h->bol = 1;
	h->md = EVP_MD_CTX_new();
	if (!h->md || EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) != 1) {
		dkim_bodyhash_free(h);
		return NULL;
	}
	return h;
}

/* RFC 6376 3.4.3: lines as they are, empty lines at the end dropped. */
static void feed_simple(struct dkim_bodyhash *h, const char *p, size_t n)
{
	while (n > 0) {
		if (h->bol) {
			if (h->cr) {
				h->cr = 0;
				if (*p == '\n') { /* an empty line */
					h->empty++;
					p++;
					n--;
					continue;
				}
				flush_empty(h); /* a lone CR: content */
				emit(h, "\r", 1);
				h->last = '\r';
				h->bol = 0;
				continue;
			}
			if (*p == '\r') {
				h->cr = 1;
				p++;
				n--;
				continue;
			}
			flush_empty(h);
			h->bol = 0;
		}
		/* inside a line: up to and including its LF, in one piece */
		const char *lf = memchr(p, '\n', n);
		size_t k = lf ? (size_t)(lf - p) + 1 : n;

		emit(h, p, k);
		if (lf && (k >= 2 ? p[k - 2] : h->last) == '\r')
			h->bol = 1;
		h->last = p[k - 1];
		p += k;
		n -= k;
	}
}

static void start_content(struct dkim_bodyhash *h)
{
	if (!h->content) {
		flush_empty(h);
		h->content = 1;
	}
	if (h->wsp) {
		emit(h, " ", 1);
		h->wsp = 0;
	}
}

/* RFC 6376 3.4.4: white space at line ends dropped, runs of it one SP,
 * empty lines at the end dropped. */
static void feed_relaxed(struct dkim_bodyhash *h, const char *p, size_t n)
{
	static const unsigned char special[256] = {[' '] = 1, ['\t'] = 1, ['\r'] = 1, ['\n'] = 1};

	while (n > 0) {
		if (!h->cr) {
			size_t k = 0;

			/* A single SP between two ordinary bytes is canonical
			 * already: the run goes on through it (one digest copy
			 * per line, not per word). */
			while (k < n) {
				if (!special[(unsigned char)p[k]])
					k++;
				else if (k > 0 && p[k] == ' ' && k + 1 < n && !special[(unsigned char)p[k + 1]])
					k += 2;
				else
					break;
			}
			if (k) {
				start_content(h);
				emit(h, p, k);
				p += k;
				n -= k;
				continue;
			}
		}
		if (h->cr) {
			h->cr = 0;
			if (*p == '\n') { /* end of line */
				h->wsp = 0;
				if (h->content)
					emit(h, "\r\n", 2);
				else
					h->empty++;
				h->content = 0;
				p++;
				n--;
				continue;
			}
			start_content(h); /* a lone CR: content */
			emit(h, "\r", 1);
			continue;
		}
		if (*p == ' ' || *p == '\t') {
			h->wsp = 1;
		} else if (*p == '\r') {
			h->cr = 1;
		} else { /* a lone LF: content */
			start_content(h);
			emit(h, "\n", 1);
		}
		p++;
		n--;
	}
}

void dkim_bodyhash_feed(struct dkim_bodyhash *h, const char *p, size_t n)
{
	if (h->finished)
		return;
	if (h->relaxed)
		feed_relaxed(h, p, n);
	else
		feed_simple(h, p, n);
}

/* base64 (RFC 6376: white space anywhere) into out; length, or -1. */
static int unbase64(const char *s, unsigned char *out, size_t size)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned long acc = 0;
	int bits = 0, pad = 0;
	size_t n = 0;

	for (; *s; s++) {
		const char *q;

		if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
			continue;
		if (*s == '=') {
			pad++;
			continue;
		}
		if (pad || !(q = strchr(alphabet, *s)))
			return -1;
		acc = (acc << 6) | (unsigned long)(q - alphabet);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == size)
				return -1;
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	return pad > 2 ? -1 : (int)n;
}

int dkim_bodyhash_check(struct dkim_bodyhash *h, const char *bh)
{
	unsigned char want[BH_DIGEST + 1];
	unsigned int dlen = 0;

	if (!h->finished) {
		if (h->cr) { /* the body ended in a lone CR */
			if (h->relaxed) {
				start_content(h);
			} else {
				h->bol = 0;
				flush_empty(h);
			}
			emit(h, "\r", 1);
		}
		if (h->relaxed ? h->content : !h->bol) /* a last line without CRLF gets one */
			emit(h, "\r\n", 2);
		if (!h->relaxed && h->total == 0) /* simple: an empty body is one CRLF */
			emit(h, "\r\n", 2);
		flush_batch(h);
		EVP_DigestFinal_ex(h->md, h->digest, &dlen);
		h->finished = 1;
	}
	if (h->limit >= 0 && h->total < (unsigned long long)h->limit)
		return -1;
	return unbase64(bh ? bh : "", want, sizeof want) == BH_DIGEST &&
	       memcmp(want, h->digest, BH_DIGEST) == 0;
}

const unsigned char *dkim_bodyhash_digest(const struct dkim_bodyhash *h)
{
	return h->digest;
}

void dkim_bodyhash_free(struct dkim_bodyhash *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->md);
	free(h);
}
