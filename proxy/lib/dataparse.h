/* dataparse.h - the DATA stream: end of data, dot-stuffing, bare CR/LF; pure */
#ifndef MOAT_DATAPARSE_H
#define MOAT_DATAPARSE_H

#include <stddef.h>

/* Incremental parser of a client's DATA bytes. Output is the message in
 * "wire form": still dot-stuffed, every line ended by CRLF. A well-formed
 * client's bytes come out unchanged, so the backend gets them byte for byte.
 *
 * Bare LF and bare CR are normalised to CRLF. The end of data is only
 * CRLF "." CRLF (or "." CRLF as the first line): a "." line reached or ended
 * through a bare LF/CR is data and comes out dot-stuffed (".."), so the
 * backend can never read it as the end of one message and the start of
 * another (SMTP smuggling). */
struct data_parser {
	int state;
	int soft;              /* the current line began after a bare CR/LF */
	unsigned long bare_lf; /* counts, for the log */
	unsigned long bare_cr;
};

typedef void (*data_emit_fn)(void *ctx, const char *p, size_t n);

void data_parser_init(struct data_parser *p);
/* Feed len bytes. Emits wire-form bytes through emit. Returns the number of
 * bytes consumed: len, or fewer when the end of data was found, in which case
 * *done is set and the rest of the input belongs to the next command. */
size_t data_feed(struct data_parser *p, const char *in, size_t len, data_emit_fn emit, void *ctx,
                 int *done);

/* Undo dot-stuffing of wire-form text (every line CRLF-ended): writes the
 * message content through emit. Pure helper for checks that read content. */
void data_unstuff(const char *in, size_t len, int *at_bol, data_emit_fn emit, void *ctx);

#endif
