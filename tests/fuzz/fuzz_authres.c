/* fuzz_authres.c - libFuzzer: header scanning and forged Authentication-Results detection.
 * Invariants: fields found lie inside the input, in order, without overlap,
 * each ending with an LF, the same whether the input comes whole or in two
 * pieces; authres_claims answers 0 or 1, and a truncated head of a field
 * our id is in claims it; our own field, once formatted, is claimed. */
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "checks/authres.h"
#include "proxy/lib/hdrscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
	const uint8_t *in;
	size_t size, prev;
	size_t off[64], len[64];
	int n;
};

static void field_cb(void *arg, const struct hdr_field *f)
{
	struct seen *s = arg;
	int c;

	if (f->off < s->prev || f->len == 0 || f->off + f->len > s->size || s->in[f->off + f->len - 1] != '\n' ||
	    f->head_len > f->len || memcmp(f->head, s->in + f->off, f->head_len) != 0)
		abort();
	s->prev = f->off + f->len;
	c = authres_claims((const char *)s->in + f->off, f->len, "mx.example");
	if (c != 0 && c != 1)
		abort();
	if (c && authres_claims_head(f->head, f->head_len, f->truncated, "mx.example") != 1)
		abort();
	if (s->n < 64) {
		s->off[s->n] = f->off;
		s->len[s->n] = f->len;
	}
	s->n++;
}

static void scan(const uint8_t *data, size_t size, size_t cut, struct seen *s)
{
	struct hdrscan h;

	memset(s, 0, sizeof *s);
	s->in = data;
	s->size = size;
	hdrscan_init(&h, field_cb, s);
	hdrscan_feed(&h, (const char *)data, cut);
	hdrscan_feed(&h, (const char *)data + cut, size - cut);
	hdrscan_finish(&h);
	if (h.hdr_end > size)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen a, b;
	struct spf_outcome spf;
	struct dkim_outcome dk;
	char buf[8192], id[64];
	size_t idl;

	scan(data, size, size, &a);
	scan(data, size, size ? (data[0] * 7919u) % size : 0, &b);
	if (a.n != b.n || memcmp(a.off, b.off, sizeof a.off) || memcmp(a.len, b.len, sizeof a.len))
		abort();
	/* Our own header with outside values from the input: it must parse as ours. */
	memset(&spf, 0, sizeof spf);
	memset(&dk, 0, sizeof dk);
	idl = size < sizeof spf.identity - 1 ? size : sizeof spf.identity - 1;
	memcpy(spf.identity, data, idl);
	spf.identity[strnlen(spf.identity, idl)] = '\0';
	spf.res = SPF_RES_PASS;
	dk.nsigs = 1;
	dk.sig[0].res = DKIM_RES_FAIL;
	memcpy(dk.sig[0].domain, spf.identity, strnlen(spf.identity, sizeof dk.sig[0].domain - 1));
	memcpy(dk.sig[0].reason, spf.identity, strnlen(spf.identity, sizeof dk.sig[0].reason - 1));
	snprintf(id, sizeof id, "mx.example");
	if (authres_format(buf, sizeof buf, id, size & 1, &spf, &dk) > 0 &&
	    authres_claims(buf, strlen(buf), id) != 1)
		abort();
	return 0;
}
