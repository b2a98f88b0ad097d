/* log.c - JSON lines to stderr, syslog or a file */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "proxy/lib/bounds.h"
#include "proxy/lib/log.h"
#include "proxy/lib/text.h"

static enum log_target target = LOG_TO_STDERR;
static int log_fd = 2;
static char log_path[1024];
static int log_worker = -1; /* this process's worker number; -1: not a worker */

/* The escape of one character of s (n bytes left) that is not printable
 * ASCII, into esc; its length. *k gets the input bytes it stands for. */
static size_t escape_one(const unsigned char *s, size_t n, char esc[8], size_t *k)
{
	static const char hex[] = "0123456789abcdef";
	unsigned v;

	*k = 1;
	if (s[0] == '"' || s[0] == '\\') {
		esc[0] = '\\', esc[1] = (char)s[0];
		return 2;
	}
	if (s[0] < 0x80) {
		v = s[0]; /* a C0 control or DEL */
	} else if ((*k = text_utf8_len(s, n < 4 ? n : 4)) == 0) {
		*k = 1;
		memcpy(esc, "\\ufffd", 6); /* not UTF-8: U+FFFD, byte by byte */
		return 6;
	} else if (s[0] == 0xc2 && s[1] < 0xa0) {
		v = s[1]; /* a C1 control, U+0080..U+009F */
	} else if (s[0] == 0xe2 && s[1] == 0x80 && (s[2] == 0xa8 || s[2] == 0xa9)) {
		v = s[2] == 0xa8 ? 0x2028 : 0x2029; /* line and paragraph separators */
	} else {
		memcpy(esc, s, *k); /* a character: as it is */
		return *k;
	}
	esc[0] = '\\', esc[1] = 'u';
	esc[2] = hex[v >> 12], esc[3] = hex[(v >> 8) & 15], esc[4] = hex[(v >> 4) & 15], esc[5] = hex[v & 15];
	return 6;
}

size_t json_escape(char *dst, size_t size, const char *src, size_t max)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t o = 0, i, k;

	if (size == 0)
		return 0;
	for (i = 0; s[i] != '\0'; i += k) {
		unsigned char c = s[i];
		char esc[8];
		size_t n;

		/* the common case, printable ASCII, without the escape buffer */
		k = 1;
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && i < max) {
			if (o + 1 >= size)
				break;
			dst[o++] = (char)c;
			continue;
		}
		n = i < max ? escape_one(s + i, strnlen(src + i, 4), esc, &k) : 0;
		if (i >= max || i + k > max) {
			/* a character is never cut: it is all before max, or not at all */
			if (o + 3 < size) {
				memcpy(dst + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (o + n >= size)
			break;
		memcpy(dst + o, esc, n);
		o += n;
	}
	dst[o] = '\0';
	return o;
}

static void jl_raw(struct jline *j, const char *s, size_t n)
{
	if (j->full || j->len + n + 32 >= sizeof j->buf) {
		j->full = 1;
		return;
	}
	memcpy(j->buf + j->len, s, n);
	j->len += n;
}

/* Field names are moat's own constants: no escaping. The formatting here
 * avoids snprintf, which a profile showed at 4 % of a message's cost. */
static void jl_key(struct jline *j, const char *key)
{
	size_t n = strlen(key);

	jl_raw(j, ",\"", 2);
	jl_raw(j, key, n);
	jl_raw(j, "\":", 2);
}

/* Digits of v, right-aligned in buf (which must hold 20 bytes); returns the start. */
static char *digits(char *end, unsigned long long v, int width)
{
	char *p = end;

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v || end - p < width);
	return p;
}

void jl_begin(struct jline *j, const char *level, const char *event)
{
	/* The date and time to the second change once a second: formatted then. */
	static __thread time_t cached_sec = -1;
	static __thread char cached[32]; /* {"ts":"YYYY-MM-DDTHH:MM:SS */
	static __thread size_t cached_len;
	struct timeval tv;
	char ms[8], *p;

	gettimeofday(&tv, NULL);
	if (tv.tv_sec != cached_sec) {
		struct tm tm;

		gmtime_r(&tv.tv_sec, &tm);
		cached_len = (size_t)snprintf(cached, sizeof cached, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d",
		                              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		                              tm.tm_min, tm.tm_sec);
		cached_sec = tv.tv_sec;
	}
	j->len = 0;
	j->full = 0;
	jl_raw(j, cached, cached_len);
	p = digits(ms + sizeof ms - 2, (unsigned long long)(tv.tv_usec / 1000), 3);
	*--p = '.';
	ms[sizeof ms - 2] = 'Z';
	ms[sizeof ms - 1] = '"';
	jl_raw(j, p, (size_t)(ms + sizeof ms - p));
	jl_str(j, "level", level);
	if (event)
		jl_str(j, "event", event);
	if (log_worker >= 0)
		jl_int(j, "worker", log_worker);
}

void log_set_worker(int worker)
{
	log_worker = worker;
}

int log_get_worker(void)
{
	return log_worker;
}

void jl_strn(struct jline *j, const char *key, const char *val, size_t max)
{
	char esc[sizeof j->buf]; /* a field never outgrows the line */

	jl_key(j, key);
	jl_raw(j, "\"", 1);
	jl_raw(j, esc, json_escape(esc, sizeof esc, val ? val : "", max));
	jl_raw(j, "\"", 1);
}

void jl_str(struct jline *j, const char *key, const char *val)
{
	jl_strn(j, key, val, MOAT_LOG_FIELD_MAX);
}

void jl_int(struct jline *j, const char *key, long long v)
{
	char num[24], *p = digits(num + sizeof num, v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v, 1);

	if (v < 0)
		*--p = '-';
	jl_key(j, key);
	jl_raw(j, p, (size_t)(num + sizeof num - p));
}

void jl_bool(struct jline *j, const char *key, int v)
{
	jl_key(j, key);
	jl_raw(j, v ? "true" : "false", v ? 4 : 5);
}

void jl_emit(struct jline *j)
{
	if (j->full) {
		/* jl_raw keeps 32 bytes spare for this tail. */
		j->full = 0;
		jl_raw(j, ",\"truncated\":true", 17);
	}
	jl_raw(j, "}\n", 2);
	if (target == LOG_TO_SYSLOG) {
		syslog(LOG_MAIL | LOG_INFO, "%.*s", (int)(j->len - 1), j->buf);
		return;
	}
	/* One write per line: lines from concurrent writers never interleave
	 * (O_APPEND). A failing log must not stop mail: errors are ignored. */
	if (write(log_fd, j->buf, j->len) < 0)
		return;
}

int log_open(enum log_target t, const char *path)
{
	int fd;

	if (t == LOG_TO_SYSLOG) {
		openlog("moat", LOG_PID | LOG_NDELAY, LOG_MAIL);
	} else if (t == LOG_TO_FILE) {
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd < 0)
			return -1;
		if (log_fd > 2)
			close(log_fd);
		log_fd = fd;
		snprintf(log_path, sizeof log_path, "%s", path);
	} else {
		if (log_fd > 2)
			close(log_fd);
		log_fd = 2;
	}
	target = t;
	return 0;
}

int log_reopen(void)
{
	int fd, e;

	if (target != LOG_TO_FILE)
		return 0;
	fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		e = errno;
		log_error("reopen", "cannot reopen the log file %s: %s; still writing to the old one", log_path,
		          strerror(e));
		errno = e;
		return -1;
	}
	close(log_fd);
	log_fd = fd;
	log_info("reopen", "log file %s reopened", log_path);
	return 0;
}

void log_close(void)
{
	if (target == LOG_TO_SYSLOG)
		closelog();
	if (log_fd > 2)
		close(log_fd);
	log_fd = 2;
	target = LOG_TO_STDERR;
}

static void log_v(const char *level, const char *event, const char *fmt, va_list ap)
{
	struct jline j;
	char msg[1024];

	vsnprintf(msg, sizeof msg, fmt, ap);
	jl_begin(&j, level, event);
	jl_strn(&j, "msg", msg, sizeof msg);
	jl_emit(&j);
}

#define LOG_FN(name, level)                                      \
	void name(const char *event, const char *fmt, ...)       \
	{                                                        \
		va_list ap;                                      \
		va_start(ap, fmt);                               \
		log_v(level, event, fmt, ap);                    \
		va_end(ap);                                      \
	}
LOG_FN(log_info, "info")
LOG_FN(log_warn, "warning")
LOG_FN(log_error, "error")
