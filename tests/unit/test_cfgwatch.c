/* test_cfgwatch.c - config_watch's watch: which events of a watched
 * directory are a change (the files of the set, kubelet's ..data, not their
 * neighbours), the settling of several steps into one change (quiet time,
 * the cap), a directory dropped when the set no longer names it, and a
 * watched directory that goes away */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proxy/cfgwatch.h"
#include "proxy/lib/bounds.h"

static char root[64];

static void path(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", root, name);
}

static void write_file(const char *name, const char *text)
{
	char p[256];
	FILE *f;

	path(p, sizeof p, name);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	snprintf(root, sizeof root, "/tmp/moat-cfgwatch-XXXXXX");
	assert_non_null(mkdtemp(root));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

static struct cfgwatch *armed(const char *const *names, size_t n)
{
	struct cfgwatch *w = cfgwatch_new();
	char paths[8][256], err[256];
	const char *p[8];

	assert_non_null(w);
	for (size_t i = 0; i < n; i++) {
		path(paths[i], sizeof paths[i], names[i]);
		p[i] = paths[i];
	}
	assert_true(cfgwatch_arm_paths(w, p, n, err, sizeof err) >= 1);
	assert_string_equal(err, "");
	return w;
}

/* A neighbour of the set is no change; a file of the set written, a file
 * renamed over one of the set, and ..data renamed are. */
static void test_what_is_a_change(void **state)
{
	static const char *const names[] = {"moat.conf", "moat.rules"};
	struct cfgwatch *w;
	char from[256], to[256];

	write_file("moat.conf", "a");
	write_file("moat.rules", "a");
	w = armed(names, 2);
	write_file("notes.txt", "x");
	assert_int_equal(cfgwatch_read(w, 1000), 0);
	assert_int_equal(cfgwatch_timeout(w, 1000), -1);

	write_file("moat.rules", "b"); /* IN_CLOSE_WRITE */
	assert_int_equal(cfgwatch_read(w, 1000), 1);
	path(to, sizeof to, "moat.rules");
	assert_string_equal(cfgwatch_take(w), to);
	assert_int_equal(cfgwatch_timeout(w, 1000), -1);

	write_file("moat.conf.tmp", "c"); /* a neighbour, then renamed into place */
	assert_int_equal(cfgwatch_read(w, 2000), 0);
	path(from, sizeof from, "moat.conf.tmp");
	path(to, sizeof to, "moat.conf");
	assert_int_equal(rename(from, to), 0);
	assert_int_equal(cfgwatch_read(w, 2000), 1);
	assert_string_equal(cfgwatch_take(w), to);

	/* kubelet: a new directory, ..data_tmp made, renamed over ..data */
	path(to, sizeof to, "..2026_12_07_10_00_00.1");
	assert_int_equal(mkdir(to, 0755), 0);
	path(from, sizeof from, "..data_tmp");
	assert_int_equal(symlink("..2026_12_07_10_00_00.1", from), 0);
	assert_int_equal(cfgwatch_read(w, 3000), 0);
	path(to, sizeof to, "..data");
	assert_int_equal(rename(from, to), 0);
	assert_int_equal(cfgwatch_read(w, 3000), 1);
	assert_string_equal(cfgwatch_take(w), to);
	cfgwatch_free(w);
}

/* Steps close together are one change, due QUIET ms after the last; a
 * stream of steps is due at the latest MAX ms after the first. */
static void test_settling(void **state)
{
	static const char *const names[] = {"moat.conf"};
	struct cfgwatch *w;
	char p[256];
	long long t = 10000;

	write_file("moat.conf", "a");
	w = armed(names, 1);
	write_file("moat.conf", "b");
	assert_int_equal(cfgwatch_read(w, t), 1);
	assert_int_equal(cfgwatch_timeout(w, t), MOAT_CONFIG_WATCH_QUIET_MS);
	write_file("moat.conf", "c");
	assert_int_equal(cfgwatch_read(w, t + 200), 1);
	assert_int_equal(cfgwatch_timeout(w, t + 200), MOAT_CONFIG_WATCH_QUIET_MS);
	assert_int_equal(cfgwatch_timeout(w, t + 200 + MOAT_CONFIG_WATCH_QUIET_MS), 0);
	/* still changing: capped */
	for (long long now = t + 400; now < t + MOAT_CONFIG_WATCH_MAX_MS; now += 200) {
		write_file("moat.conf", "d");
		assert_int_equal(cfgwatch_read(w, now), 1);
		assert_true(cfgwatch_timeout(w, now) > 0);
	}
	write_file("moat.conf", "e");
	assert_int_equal(cfgwatch_read(w, t + MOAT_CONFIG_WATCH_MAX_MS), 1);
	assert_int_equal(cfgwatch_timeout(w, t + MOAT_CONFIG_WATCH_MAX_MS), 0);
	path(p, sizeof p, "moat.conf");
	assert_string_equal(cfgwatch_take(w), p); /* the first path of the change */
	cfgwatch_free(w);
}

/* Re-armed without a directory: its events no longer count; a watched
 * directory removed is a change (an old ..data target a path went through). */
static void test_rearm_and_gone(void **state)
{
	static const char *const both[] = {"moat.conf", "sub/x.rules"};
	static const char *const one[] = {"moat.conf"};
	struct cfgwatch *w;
	char p[256], err[256], sub[256];
	const char *paths[1];

	path(sub, sizeof sub, "sub");
	assert_int_equal(mkdir(sub, 0755), 0);
	write_file("moat.conf", "a");
	write_file("sub/x.rules", "a");
	w = armed(both, 2);
	write_file("sub/x.rules", "b");
	assert_int_equal(cfgwatch_read(w, 100), 1);
	cfgwatch_take(w);

	path(p, sizeof p, one[0]);
	paths[0] = p;
	assert_int_equal(cfgwatch_arm_paths(w, paths, 1, err, sizeof err), 1);
	write_file("sub/x.rules", "c");
	assert_int_equal(cfgwatch_read(w, 200), 0);
	assert_int_equal(cfgwatch_timeout(w, 200), -1);

	w = (cfgwatch_free(w), armed(both, 2));
	path(p, sizeof p, "sub/x.rules");
	assert_int_equal(unlink(p), 0);
	assert_int_equal(rmdir(sub), 0);
	assert_int_equal(cfgwatch_read(w, 300), 1);
	assert_string_equal(cfgwatch_take(w), sub);
	/* armed again, the directory missing: said, the others still watched */
	assert_int_equal(cfgwatch_arm_paths(w, (const char *const[]){p}, 1, err, sizeof err), 0);
	assert_non_null(strstr(err, sub));
	cfgwatch_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_what_is_a_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_settling, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rearm_and_gone, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
