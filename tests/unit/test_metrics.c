/* test_metrics.c - the shared counters: labels, the rule-id limit, the
 * histograms, health and readiness, the exposition */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "proxy/lib/metrics.h"

static int setup(void **state)
{
	struct metrics_names n = {
		.stages = {"connect", "helo", "mail", "rcpt", "data"}, .nstages = 5,
		.checks = {"spf"}, .nchecks = 1, .results = {{"pass", "fail"}},
		.listeners = {"smtp", "smtps", "submission"}, .nlisteners = 3,
	};

	return metrics_init(2, &n);
}

static int teardown(void **state)
{
	metrics_free();
	return 0;
}

static char *render(void)
{
	size_t len;
	char *s = metrics_render(1000, 30000, &len);

	assert_non_null(s);
	assert_int_equal(strlen(s), len);
	return s;
}

/* The value of the sample line that starts with prefix ("name{...} "); -1 if absent. */
static long long sample(const char *text, const char *prefix)
{
	const char *p = text;
	size_t n = strlen(prefix);

	while ((p = strstr(p, prefix))) {
		if (p == text || p[-1] == '\n')
			return atoll(p + n);
		p += n;
	}
	return -1;
}

static void test_decisions(void **state)
{
	char *s;

	metrics_decision(3, "reject", "relay-denied");
	metrics_decision(3, "reject", "relay-denied");
	metrics_decision(3, "would-reject", "relay-denied");
	metrics_decision(0, "accept", NULL);
	metrics_decision(4, "frobnicate", "");
	metrics_decision(9, "reject", "x"); /* no such stage: not counted */
	s = render();
	assert_int_equal(sample(s, "moat_decisions_total{stage=\"rcpt\",action=\"reject\",rule=\"relay-denied\"} "), 2);
	assert_int_equal(sample(s, "moat_decisions_total{stage=\"rcpt\",action=\"would-reject\",rule=\"relay-denied\"} "),
	                 1);
	assert_int_equal(sample(s, "moat_decisions_total{stage=\"connect\",action=\"accept\",rule=\"\"} "), 1);
	assert_int_equal(sample(s, "moat_decisions_total{stage=\"data\",action=\"other\",rule=\"\"} "), 1);
	assert_null(strstr(s, "rule=\"x\""));
	free(s);
}

/* Past MOAT_METRICS_RULES_MAX ids, every new one counts as "_other". */
static void test_rule_limit(void **state)
{
	char id[32], *s;

	for (int i = 0; i < MOAT_METRICS_RULES_MAX + 10; i++) {
		snprintf(id, sizeof id, "rule-%d", i);
		metrics_decision(2, "reject", id);
		metrics_decision(2, "reject", id);
	}
	s = render();
	assert_int_equal(sample(s, "moat_decisions_total{stage=\"mail\",action=\"reject\",rule=\"rule-0\"} "), 2);
	snprintf(id, sizeof id, "rule-%d", MOAT_METRICS_RULES_MAX + 5);
	assert_null(strstr(s, id));
	/* relay-denied of the test before holds one of the places */
	assert_int_equal(sample(s, "moat_decisions_total{stage=\"mail\",action=\"reject\",rule=\"_other\"} "), 2 * 11);
	free(s);
}

/* A child process (a worker) adds to the same counters. */
static void test_shared_with_children(void **state)
{
	char *s;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		for (int i = 0; i < 1000; i++)
			metrics_relayed(10);
		_exit(0);
	}
	for (int i = 0; i < 1000; i++)
		metrics_relayed(1);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	s = render();
	assert_int_equal(sample(s, "moat_messages_relayed_total "), 2000);
	assert_int_equal(sample(s, "moat_relayed_bytes_total "), 11000);
	free(s);
}

static void test_histogram_and_checks(void **state)
{
	char *s;

	metrics_dns_query(300000);      /* 0.3 ms */
	metrics_dns_query(2000000);     /* 2 ms */
	metrics_dns_query(400000000000ULL); /* 400 s */
	metrics_check(0, 1);
	metrics_check(0, 7);  /* not a word of spf: unknown */
	metrics_check(3, 0);  /* no such check */
	s = render();
	assert_int_equal(sample(s, "moat_dns_query_duration_seconds_bucket{le=\"0.0005\"} "), 1);
	assert_int_equal(sample(s, "moat_dns_query_duration_seconds_bucket{le=\"0.001\"} "), 1);
	assert_int_equal(sample(s, "moat_dns_query_duration_seconds_bucket{le=\"0.0025\"} "), 2);
	assert_int_equal(sample(s, "moat_dns_query_duration_seconds_bucket{le=\"300\"} "), 2);
	assert_int_equal(sample(s, "moat_dns_query_duration_seconds_bucket{le=\"+Inf\"} "), 3);
	assert_int_equal(sample(s, "moat_dns_query_duration_seconds_count "), 3);
	assert_non_null(strstr(s, "moat_dns_query_duration_seconds_sum 400.002300000\n"));
	assert_int_equal(sample(s, "moat_check_results_total{check=\"spf\",result=\"fail\"} "), 1);
	assert_int_equal(sample(s, "moat_check_results_total{check=\"spf\",result=\"unknown\"} "), 1);
	assert_int_equal(sample(s, "moat_check_results_total{check=\"spf\",result=\"pass\"} "), 0);
	assert_non_null(strstr(s, "# HELP moat_dns_query_duration_seconds "));
	assert_non_null(strstr(s, "# TYPE moat_dns_query_duration_seconds histogram\n"));
	free(s);
}

static void test_health_and_readiness(void **state)
{
	uint64_t t = 100000, window = 3000;

	assert_false(metrics_healthy(t)); /* no worker has beaten */
	metrics_heartbeat(0, t);
	metrics_heartbeat(1, t);
	assert_true(metrics_healthy(t + 1000));
	assert_false(metrics_ready(t, window)); /* not listening, the backend unheard */
	metrics_listening(0, 1);
	assert_false(metrics_ready(t, window));
	assert_int_equal(metrics_backend_answer(1, t), 1); /* a change */
	assert_int_equal(metrics_backend_answer(1, t), 0);
	assert_true(metrics_ready(t + 1000, window));
	assert_false(metrics_ready(t + window + 1, window)); /* heard too long ago */
	/* a probe is due once per interval, for one caller */
	assert_false(metrics_probe_due(t + 500, 1000));
	assert_true(metrics_probe_due(t + 1000, 1000));
	assert_false(metrics_probe_due(t + 1000, 1000));
	assert_int_equal(metrics_backend_answer(0, t + 1100), 1);
	assert_false(metrics_ready(t + 1200, window));
	metrics_backend_answer(1, t + 1300);
	assert_true(metrics_ready(t + 1400, window));
	/* a worker's loop stuck: not healthy; gone (being restarted): ignored */
	assert_false(metrics_healthy(t + MOAT_HEALTH_STALE * 1000 + 1));
	metrics_heartbeat(0, t + MOAT_HEALTH_STALE * 1000);
	assert_false(metrics_healthy(t + MOAT_HEALTH_STALE * 1000 + 1));
	metrics_worker_gone(1);
	assert_true(metrics_healthy(t + MOAT_HEALTH_STALE * 1000 + 1));
	metrics_listening(0, 0); /* SIGTERM */
	assert_false(metrics_ready(t + 1400, window));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decisions),
		cmocka_unit_test(test_rule_limit),
		cmocka_unit_test(test_shared_with_children),
		cmocka_unit_test(test_histogram_and_checks),
		cmocka_unit_test(test_health_and_readiness),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
