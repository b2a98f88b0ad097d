/* cfgwatch.h - config_watch: the files a reload reads, watched with inotify
 *
 * What is watched is the directory of each file (the config, the rule files
 * with their includes and lists, local_recipients, the TLS pairs,
 * backend_tls_ca), not the file: an editor and kubelet replace files by
 * rename, and kubelet swaps a mounted ConfigMap by renaming a new `..data`
 * symlink over the old one, so the visible files (moat.conf ->
 * ..data/moat.conf) change without an event on their own names. A change
 * is a file of the set created, written and closed, or renamed into place,
 * `..data` renamed, or a watched directory itself gone; the changes are
 * settled (MOAT_CONFIG_WATCH_QUIET_MS) into one reload.
 *
 * The caller owns the waiting: the fd is non-blocking; after reading it,
 * cfgwatch_timeout says how long until the change is due. Nothing here
 * blocks nor logs. */
#ifndef MOAT_CFGWATCH_H
#define MOAT_CFGWATCH_H

#include <stddef.h>

struct cfgwatch;
struct config;

/* NULL: inotify_init1 failed (errno). */
struct cfgwatch *cfgwatch_new(void);
void cfgwatch_free(struct cfgwatch *w);
int cfgwatch_fd(const struct cfgwatch *w);

/* Watch the directories of config_path and of every file c names or read
 * (c's ruleset files); the directories no longer needed are dropped, the
 * ones kept lose no event. The number of directories watched; the first
 * that could not be, in err (watching goes on for the others). */
int cfgwatch_arm(struct cfgwatch *w, const struct config *c, const char *config_path, char *err,
                 size_t errsize);
/* The same with a list of paths (the unit test's way in). */
int cfgwatch_arm_paths(struct cfgwatch *w, const char *const *paths, size_t n, char *err, size_t errsize);

/* Read what is pending (now: a monotonic clock, ms). 1 if a change of the
 * set came in, 0 if not. */
int cfgwatch_read(struct cfgwatch *w, long long now_ms);
/* Milliseconds until the pending change is due (0: now); -1: none. */
long long cfgwatch_timeout(const struct cfgwatch *w, long long now_ms);
/* The change is being acted on: the first path it touched (for the log),
 * and nothing is pending any more. */
const char *cfgwatch_take(struct cfgwatch *w);

/* CLOCK_MONOTONIC in ms. */
long long cfgwatch_now_ms(void);

#endif
