/* log.h - every line moat logs is one JSON object */
#ifndef MOAT_LOG_H
#define MOAT_LOG_H

#include <stddef.h>

enum log_target { LOG_TO_STDERR, LOG_TO_SYSLOG, LOG_TO_FILE };

/* One JSON object being built. Fields are appended in order; a line that
 * would not fit is cut at a field boundary and marked "truncated":true. */
struct jline {
	char buf[4096];
	size_t len;
	int full;
};

/* Starts every line: ts, level, event, and worker in a worker process. */
void jl_begin(struct jline *j, const char *level, const char *event);
void jl_str(struct jline *j, const char *key, const char *val);  /* escaped, cut at MOAT_LOG_FIELD_MAX */
void jl_strn(struct jline *j, const char *key, const char *val, size_t max);
void jl_int(struct jline *j, const char *key, long long v);
void jl_bool(struct jline *j, const char *key, int v);
void jl_emit(struct jline *j);  /* closes the object and writes one line */

/* Escape untrusted text for a JSON string (RFC 8259), readable: well-formed
 * UTF-8 (RFC 3629) is written as it is; quotes and backslashes are escaped,
 * control characters (C0, DEL, C1) and U+2028/U+2029 as \uXXXX; a byte
 * that is not part of well-formed UTF-8 (an overlong form, a surrogate, a
 * truncated sequence, a stray continuation byte) becomes \ufffd, one per
 * byte, so the log is always valid UTF-8. Stops after max input bytes
 * (adding "...") or when dst is full, never inside a character or an
 * escape. Returns bytes written (dst is always NUL-terminated when size >
 * 0). Pure. */
size_t json_escape(char *dst, size_t size, const char *src, size_t max);

/* Open a target (stderr, syslog, or file: path). Returns 0 or -1 with errno. */
int log_open(enum log_target t, const char *path);
/* Reopen the log file by its name after rotation (SIGUSR1, SIGHUP) and say
 * so in it: 0, or -1 with errno (logged; the old file is kept). Nothing to
 * do for stderr and syslog. */
int log_reopen(void);
void log_close(void);
/* This process is worker number worker (0..): every line it writes from now
 * on says so ("worker"), whichever code writes it. -1: not a worker (the
 * supervisor, moat check). */
void log_set_worker(int worker);
int log_get_worker(void);

/* Convenience: {"level":…,"event":…,"msg":…} printf-style. */
void log_info(const char *event, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_warn(const char *event, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_error(const char *event, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
