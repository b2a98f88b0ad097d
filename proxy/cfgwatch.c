/* cfgwatch.c - config_watch: the directories of the files a reload reads,
 * watched with inotify (see cfgwatch.h) */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proxy/cfgwatch.h"
#include "proxy/config.h"
#include "proxy/lib/bounds.h"
#include "rules/rules.h"

/* kubelet's AtomicWriter: the symlink to the current timestamped directory */
#define KUBELET_DATA "..data"
/* What a change is. IN_DELETE_SELF and IN_MOVE_SELF: a directory of the set
 * that was itself a path through an old `..data` target. */
#define WATCH_MASK (IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct wdir {
	int wd;
	char *path;
};

struct wfile {
	size_t dir;  /* index in dirs */
	char *name;  /* "": any name (backend_tls_ca as a directory) */
};

struct cfgwatch {
	int fd;
	struct wdir *dirs;
	size_t ndirs;
	struct wfile *files;
	size_t nfiles;
	long long first_ms, last_ms; /* a change pending since, last seen; 0: none */
	char what[PATH_MAX];         /* the first path it touched */
};

long long cfgwatch_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct cfgwatch *cfgwatch_new(void)
{
	struct cfgwatch *w = calloc(1, sizeof *w);

	if (!w)
		return NULL;
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0) {
		free(w);
		return NULL;
	}
	return w;
}

static void free_sets(struct wdir *dirs, size_t ndirs, struct wfile *files, size_t nfiles)
{
	for (size_t i = 0; i < ndirs; i++)
		free(dirs[i].path);
	for (size_t i = 0; i < nfiles; i++)
		free(files[i].name);
	free(dirs);
	free(files);
}

void cfgwatch_free(struct cfgwatch *w)
{
	if (!w)
		return;
	close(w->fd);
	free_sets(w->dirs, w->ndirs, w->files, w->nfiles);
	free(w);
}

int cfgwatch_fd(const struct cfgwatch *w)
{
	return w->fd;
}

/* The directory of path ("." for a bare name) and its last component. */
static void split_path(const char *path, char *dir, size_t dsize, const char **base)
{
	const char *slash = strrchr(path, '/');

	if (!slash) {
		snprintf(dir, dsize, ".");
		*base = path;
	} else {
		snprintf(dir, dsize, "%.*s", slash == path ? 1 : (int)(slash - path), path);
		*base = slash + 1;
	}
}

static size_t find_dir(const struct wdir *dirs, size_t n, const char *path)
{
	size_t i;

	for (i = 0; i < n && strcmp(dirs[i].path, path) != 0; i++)
		;
	return i;
}

/* path's directory and name into the new sets (dirs and files: n entries
 * each at most); a directory met the first time is watched. -1: no memory. */
static int add_path(struct cfgwatch *w, const char *path, struct wdir *dirs, size_t *ndirs, struct wfile *files,
                    size_t *nfiles, char *err, size_t errsize)
{
	char dir[PATH_MAX];
	const char *base;
	size_t d;

	split_path(path, dir, sizeof dir, &base);
	if ((d = find_dir(dirs, *ndirs, dir)) == *ndirs) {
		dirs[d].path = strdup(dir);
		if (!dirs[d].path)
			return -1;
		dirs[d].wd = inotify_add_watch(w->fd, dir, WATCH_MASK);
		if (dirs[d].wd < 0 && err[0] == '\0')
			snprintf(err, errsize, "%s: %s", dir, strerror(errno));
		(*ndirs)++;
	}
	files[*nfiles].dir = d;
	files[*nfiles].name = strdup(base);
	if (!files[*nfiles].name)
		return -1;
	(*nfiles)++;
	return 0;
}

int cfgwatch_arm_paths(struct cfgwatch *w, const char *const *paths, size_t n, char *err, size_t errsize)
{
	/* a directory path (backend_tls_ca) adds itself with any name: 2n at most */
	struct wdir *dirs = calloc(2 * n + 1, sizeof *dirs);
	struct wfile *files = calloc(2 * n + 1, sizeof *files);
	size_t ndirs = 0, nfiles = 0, i, j;
	int rc = 0, armed = 0;

	err[0] = '\0';
	if (!dirs || !files) {
		free(dirs);
		free(files);
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	for (i = 0; i < n && rc == 0; i++) {
		size_t len = strlen(paths[i]);

		if (len > 1 && paths[i][len - 1] == '/') { /* a directory: any file in it */
			char any[PATH_MAX];

			snprintf(any, sizeof any, "%.*s", (int)len, paths[i]);
			rc = add_path(w, any, dirs, &ndirs, files, &nfiles, err, errsize);
			if (rc == 0) {
				snprintf(any, sizeof any, "%.*s", (int)(len - 1), paths[i]);
				rc = add_path(w, any, dirs, &ndirs, files, &nfiles, err, errsize);
			}
		} else {
			rc = add_path(w, paths[i], dirs, &ndirs, files, &nfiles, err, errsize);
		}
	}
	/* the old directories not in the new set: no longer watched (the same
	 * directory gave the same wd back, its watch never stopped) */
	for (i = 0; i < w->ndirs; i++) {
		for (j = 0; j < ndirs && dirs[j].wd != w->dirs[i].wd; j++)
			;
		if (j == ndirs && w->dirs[i].wd >= 0)
			inotify_rm_watch(w->fd, w->dirs[i].wd);
	}
	free_sets(w->dirs, w->ndirs, w->files, w->nfiles);
	w->dirs = dirs;
	w->ndirs = ndirs;
	w->files = files;
	w->nfiles = nfiles;
	for (i = 0; i < ndirs; i++)
		armed += dirs[i].wd >= 0;
	if (rc < 0)
		snprintf(err, errsize, "out of memory");
	return rc < 0 ? -1 : armed;
}

/* A path named by c, or NULL when empty. */
static void push(const char **paths, size_t *n, const char *p)
{
	if (p && p[0])
		paths[(*n)++] = p;
}

int cfgwatch_arm(struct cfgwatch *w, const struct config *c, const char *config_path, char *err, size_t errsize)
{
	size_t nrules = 0, n = 0;
	const char **paths;
	char ca[sizeof c->backend_tls_ca + 1];
	int rc;

	while (c->ruleset && ruleset_file(c->ruleset, nrules))
		nrules++;
	paths = calloc(nrules + 4 + 2 * CONFIG_TLS_PAIRS, sizeof *paths);
	if (!paths) {
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	push(paths, &n, config_path);
	for (size_t i = 0; i < nrules; i++)
		push(paths, &n, ruleset_file(c->ruleset, i));
	push(paths, &n, c->local_recipients);
	for (int i = 0; i < c->ntls_cert; i++)
		push(paths, &n, c->tls_cert[i]);
	for (int i = 0; i < c->ntls_key; i++)
		push(paths, &n, c->tls_key[i]);
	if (c->backend_tls_ca[0]) { /* a CA file, or a directory of them (then "DIR/") */
		struct stat st;

		snprintf(ca, sizeof ca, stat(c->backend_tls_ca, &st) == 0 && S_ISDIR(st.st_mode) ? "%s/" : "%s",
		         c->backend_tls_ca);
		push(paths, &n, ca);
	}
	rc = cfgwatch_arm_paths(w, paths, n, err, errsize);
	free(paths);
	return rc;
}

/* One event: does it change the set? Its path into what. */
static int relevant(const struct cfgwatch *w, const struct inotify_event *ev, char *what, size_t size)
{
	for (size_t i = 0; i < w->ndirs; i++) {
		int hit;

		if (w->dirs[i].wd != ev->wd)
			continue;
		if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
			snprintf(what, size, "%s", w->dirs[i].path);
			return 1;
		}
		if (ev->len == 0)
			continue;
		hit = strcmp(ev->name, KUBELET_DATA) == 0;
		for (size_t f = 0; f < w->nfiles && !hit; f++)
			hit = w->files[f].dir == i && (w->files[f].name[0] == '\0' || strcmp(w->files[f].name, ev->name) == 0);
		if (hit) {
			snprintf(what, size, "%s/%s", w->dirs[i].path, ev->name);
			return 1;
		}
	}
	return 0;
}

int cfgwatch_read(struct cfgwatch *w, long long now_ms)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	char what[sizeof w->what];
	ssize_t got;
	int changed = 0;

	while ((got = read(w->fd, buf, sizeof buf)) > 0) {
		for (char *p = buf; p < buf + got;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			p += sizeof *ev + ev->len;
			if (ev->mask & IN_Q_OVERFLOW)
				snprintf(what, sizeof what, "(events lost: inotify queue overflow)");
			else if (!relevant(w, ev, what, sizeof what))
				continue;
			if (!w->first_ms) { /* the first path of a change is the one logged */
				w->first_ms = now_ms > 0 ? now_ms : 1;
				memcpy(w->what, what, sizeof what);
			}
			w->last_ms = now_ms;
			changed = 1;
		}
	}
	return changed;
}

long long cfgwatch_timeout(const struct cfgwatch *w, long long now_ms)
{
	long long due;

	if (!w->first_ms)
		return -1;
	due = w->last_ms + MOAT_CONFIG_WATCH_QUIET_MS;
	if (due > w->first_ms + MOAT_CONFIG_WATCH_MAX_MS)
		due = w->first_ms + MOAT_CONFIG_WATCH_MAX_MS;
	return due > now_ms ? due - now_ms : 0;
}

const char *cfgwatch_take(struct cfgwatch *w)
{
	w->first_ms = w->last_ms = 0;
	return w->what;
}
