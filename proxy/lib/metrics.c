/* metrics.c - the shared counters and their exposition (see metrics.h) */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "proxy/lib/metrics.h"

typedef _Atomic uint64_t counter;

/* The decision actions (decision.c's words, and rules' "would-" ones in
 * monitor mode); anything else counts as "other". */
static const char *const actions[] = {
	"accept", "reject", "tempfail", "tag", "log",
	"would-accept", "would-reject", "would-tempfail", "would-tag", "would-log", "other", NULL,
};
#define NACTIONS (sizeof actions / sizeof actions[0] - 1)

static const char *const refusals[MR_COUNT] = {
	"max_connections", "max_connections_per_ip", "auth_blocked", "pregreet", "rule",
};

/* Upper bounds (seconds) of the latency histograms' buckets, +Inf last. */
static const double buckets[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
};
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

struct histogram {
	counter bucket[NBUCKETS + 1]; /* not cumulative; the last: above every bound */
	counter sum_ns, count;
};

/* Rule ids: an open-addressing table written once per id. A slot is
 * claimed (EMPTY -> WRITING) by compare-and-swap, its id written, then
 * published (READY). A lookup that meets a slot still being written goes
 * past it, so the same id may, rarely, own two slots: the exposition adds
 * them up. A worker killed while writing leaves one slot unused. */
enum { SLOT_EMPTY, SLOT_WRITING, SLOT_READY };
#define RULE_SLOTS (2 * MOAT_METRICS_RULES_MAX)
#define ROW_NONE RULE_SLOTS       /* no rule id */
#define ROW_OTHER (RULE_SLOTS + 1) /* past MOAT_METRICS_RULES_MAX ids */

struct rule_slot {
	_Atomic uint32_t state;
	char id[MOAT_METRICS_ID_MAX + 1];
};

struct worker_slot {
	_Atomic uint64_t beat;   /* clock_ms of its loop's last turn; 0: not running */
	_Atomic int listening;
	_Atomic int sessions;
	_Atomic int redis;       /* 0: no Redis; 1 up; 2 down */
};

struct shared {
	_Atomic uint32_t nids;
	struct rule_slot rules[RULE_SLOTS];
	counter decisions[RULE_SLOTS + 2][METRICS_STAGES_MAX][NACTIONS];
	counter checks[MOAT_METRICS_CHECKS_MAX][MOAT_METRICS_RESULTS_MAX + 1]; /* last: unknown */
	counter accepted[METRICS_STAGES_MAX];
	counter refused[MR_COUNT];
	counter dnsbl_errors[MD_COUNT];
	counter redis_errors[MRE_COUNT], redis_calls, redis_to_up, redis_to_down;
	counter dns_hits, dns_misses, reloads_ok, reloads_failed, restarts, messages, bytes;
	struct histogram dns, backend;
	_Atomic uint64_t backend_ok, backend_fail, probe; /* clock_ms */
	_Atomic int backend_state; /* 0 unknown, 1 answering, 2 not */
	int nworkers;
	struct worker_slot workers[MOAT_WORKERS_MAX];
};

static struct shared *m;
static struct metrics_names names;

int metrics_init(int nworkers, const struct metrics_names *n)
{
	void *p = mmap(NULL, sizeof *m, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -1;
	m = p;
	m->nworkers = nworkers < 1 ? 1 : nworkers > MOAT_WORKERS_MAX ? MOAT_WORKERS_MAX : nworkers;
	names = *n;
	if (names.nstages > METRICS_STAGES_MAX)
		names.nstages = METRICS_STAGES_MAX;
	if (names.nchecks > MOAT_METRICS_CHECKS_MAX)
		names.nchecks = MOAT_METRICS_CHECKS_MAX;
	if (names.nlisteners > METRICS_STAGES_MAX)
		names.nlisteners = METRICS_STAGES_MAX;
	return 0;
}

void metrics_free(void)
{
	if (m)
		munmap(m, sizeof *m);
	m = NULL;
}

int metrics_on(void)
{
	return m != NULL;
}

static void add(counter *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

int metrics_word(const char *const *words, int max, const char *word)
{
	for (int i = 0; i < max && words[i]; i++)
		if (strcmp(words[i], word) == 0)
			return i;
	return -1;
}

/* FNV-1a: rule ids come from the postmaster's files, not from clients. */
static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

/* The row of a rule id: found, else claimed while ids are fewer than
 * MOAT_METRICS_RULES_MAX, else ROW_OTHER. */
static int rule_row(const char *id)
{
	size_t n = strlen(id);
	uint32_t h = hash(id);

	if (n > MOAT_METRICS_ID_MAX)
		return ROW_OTHER;
	for (uint32_t k = 0; k < RULE_SLOTS; k++) {
		uint32_t i = (h + k) % RULE_SLOTS, st = atomic_load_explicit(&m->rules[i].state, memory_order_acquire);

		if (st == SLOT_READY && strcmp(m->rules[i].id, id) == 0)
			return (int)i;
		if (st != SLOT_EMPTY)
			continue;
		if (atomic_fetch_add_explicit(&m->nids, 1, memory_order_relaxed) >= MOAT_METRICS_RULES_MAX) {
			atomic_fetch_sub_explicit(&m->nids, 1, memory_order_relaxed);
			return ROW_OTHER;
		}
		if (!atomic_compare_exchange_strong(&m->rules[i].state, &st, SLOT_WRITING)) {
			atomic_fetch_sub_explicit(&m->nids, 1, memory_order_relaxed);
			if (st == SLOT_READY && strcmp(m->rules[i].id, id) == 0)
				return (int)i;
			continue;
		}
		memcpy(m->rules[i].id, id, n + 1);
		atomic_store_explicit(&m->rules[i].state, SLOT_READY, memory_order_release);
		return (int)i;
	}
	return ROW_OTHER;
}

void metrics_decision(int stage, const char *action, const char *rule_id)
{
	int a, row;

	if (!m || stage < 0 || stage >= names.nstages)
		return;
	if ((a = metrics_word(actions, NACTIONS, action ? action : "")) < 0)
		a = NACTIONS - 1;
	row = rule_id && rule_id[0] ? rule_row(rule_id) : ROW_NONE;
	add(&m->decisions[row][stage][a], 1);
}

void metrics_check(int check, int result)
{
	if (!m || check < 0 || check >= names.nchecks)
		return;
	if (result < 0 || result >= MOAT_METRICS_RESULTS_MAX || !names.results[check][result])
		result = MOAT_METRICS_RESULTS_MAX;
	add(&m->checks[check][result], 1);
}

void metrics_accepted(int listener)
{
	if (m && listener >= 0 && listener < names.nlisteners)
		add(&m->accepted[listener], 1);
}

void metrics_refused(enum metrics_refusal why)
{
	if (m && (unsigned)why < MR_COUNT)
		add(&m->refused[why], 1);
}

void metrics_sessions(int worker, int open)
{
	if (m && worker >= 0 && worker < m->nworkers)
		atomic_store_explicit(&m->workers[worker].sessions, open, memory_order_relaxed);
}

static void observe(struct histogram *h, uint64_t ns)
{
	size_t i = 0;

	while (i < NBUCKETS && (double)ns > buckets[i] * 1e9)
		i++;
	add(&h->bucket[i], 1);
	add(&h->sum_ns, ns);
	add(&h->count, 1);
}

void metrics_dns_query(uint64_t ns)
{
	if (m)
		observe(&m->dns, ns);
}

void metrics_backend_reply(uint64_t ns)
{
	if (m)
		observe(&m->backend, ns);
}

void metrics_dns_cache(int hit)
{
	if (m)
		add(hit ? &m->dns_hits : &m->dns_misses, 1);
}

void metrics_reload(int ok)
{
	if (m)
		add(ok ? &m->reloads_ok : &m->reloads_failed, 1);
}

void metrics_worker_restart(void)
{
	if (m)
		add(&m->restarts, 1);
}

void metrics_dnsbl_error(enum metrics_dnsbl_error kind)
{
	if (m && kind < MD_COUNT)
		add(&m->dnsbl_errors[kind], 1);
}

void metrics_relayed(uint64_t bytes)
{
	if (m) {
		add(&m->messages, 1);
		add(&m->bytes, bytes);
	}
}

void metrics_redis_call(void)
{
	if (m)
		add(&m->redis_calls, 1);
}

void metrics_redis_error(enum metrics_redis_error why)
{
	if (m && (unsigned)why < MRE_COUNT)
		add(&m->redis_errors[why], 1);
}

void metrics_redis_state(int worker, int up)
{
	if (!m || worker < 0 || worker >= m->nworkers)
		return;
	if (atomic_exchange(&m->workers[worker].redis, up ? 1 : 2) != (up ? 1 : 2))
		add(up ? &m->redis_to_up : &m->redis_to_down, 1);
}

/* ---- health ---- */

void metrics_heartbeat(int worker, uint64_t now)
{
	if (m && worker >= 0 && worker < m->nworkers)
		atomic_store_explicit(&m->workers[worker].beat, now ? now : 1, memory_order_relaxed);
}

void metrics_listening(int worker, int on)
{
	if (m && worker >= 0 && worker < m->nworkers)
		atomic_store_explicit(&m->workers[worker].listening, on, memory_order_relaxed);
}

void metrics_worker_gone(int worker)
{
	if (!m || worker < 0 || worker >= m->nworkers)
		return;
	atomic_store(&m->workers[worker].beat, 0);
	atomic_store(&m->workers[worker].listening, 0);
	atomic_store(&m->workers[worker].sessions, 0);
	atomic_store(&m->workers[worker].redis, 0);
}

int metrics_backend_answer(int ok, uint64_t now)
{
	if (!m)
		return 0;
	atomic_store_explicit(ok ? &m->backend_ok : &m->backend_fail, now, memory_order_relaxed);
	return atomic_exchange(&m->backend_state, ok ? 1 : 2) != (ok ? 1 : 2);
}

int metrics_probe_due(uint64_t now, uint64_t interval)
{
	uint64_t ok, last;

	if (!m)
		return 0;
	ok = atomic_load_explicit(&m->backend_ok, memory_order_relaxed);
	last = atomic_load(&m->probe);
	if (now - ok < interval || now - last < interval)
		return 0;
	return atomic_compare_exchange_strong(&m->probe, &last, now);
}

int metrics_healthy(uint64_t now)
{
	int running = 0;

	if (!m)
		return 0;
	for (int w = 0; w < m->nworkers; w++) {
		uint64_t beat = atomic_load_explicit(&m->workers[w].beat, memory_order_relaxed);

		if (!beat)
			continue;
		if (now > beat && now - beat > MOAT_HEALTH_STALE * 1000ULL)
			return 0;
		running++;
	}
	return running > 0;
}

static int backend_up(uint64_t now, uint64_t window)
{
	uint64_t ok = atomic_load_explicit(&m->backend_ok, memory_order_relaxed);
	uint64_t fail = atomic_load_explicit(&m->backend_fail, memory_order_relaxed);

	return ok && ok >= fail && (now < ok || now - ok <= window);
}

int metrics_ready(uint64_t now, uint64_t window)
{
	int listening = 0;

	if (!m || !metrics_healthy(now))
		return 0;
	for (int w = 0; w < m->nworkers; w++)
		listening |= atomic_load_explicit(&m->workers[w].beat, memory_order_relaxed) &&
		             atomic_load_explicit(&m->workers[w].listening, memory_order_relaxed);
	return listening && backend_up(now, window);
}

/* ---- the exposition ---- */

static uint64_t get(counter *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static void head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void scalar(FILE *f, const char *name, const char *type, const char *help, uint64_t v)
{
	head(f, name, type, help);
	fprintf(f, "%s %llu\n", name, (unsigned long long)v);
}

/* The id of row r and the sum of its counts with any later row of the
 * same id; 0 when an earlier row has the id (already shown) or r is unused. */
static int rule_sum(int r, uint64_t sum[METRICS_STAGES_MAX][NACTIONS], const char **id)
{
	memset(sum, 0, sizeof(uint64_t) * METRICS_STAGES_MAX * NACTIONS);
	if (r == ROW_NONE || r == ROW_OTHER) {
		*id = r == ROW_NONE ? "" : "_other";
	} else {
		if (atomic_load_explicit(&m->rules[r].state, memory_order_acquire) != SLOT_READY)
			return 0;
		*id = m->rules[r].id;
		for (int k = 0; k < r; k++)
			if (atomic_load_explicit(&m->rules[k].state, memory_order_acquire) == SLOT_READY &&
			    strcmp(m->rules[k].id, *id) == 0)
				return 0;
	}
	for (int k = r; k < RULE_SLOTS + 2; k++) {
		if (k != r && (k >= RULE_SLOTS ||
		               atomic_load_explicit(&m->rules[k].state, memory_order_acquire) != SLOT_READY ||
		               strcmp(m->rules[k].id, *id) != 0))
			continue;
		for (int s = 0; s < names.nstages; s++)
			for (size_t a = 0; a < NACTIONS; a++)
				sum[s][a] += get(&m->decisions[k][s][a]);
		if (r >= RULE_SLOTS)
			break;
	}
	return 1;
}

static void render_decisions(FILE *f)
{
	uint64_t sum[METRICS_STAGES_MAX][NACTIONS];
	const char *id;

	head(f, "moat_decisions_total", "counter",
	     "Decision lines logged, by stage, action and rule id (\"\": none; \"_other\": ids past the limit).");
	for (int r = 0; r < RULE_SLOTS + 2; r++) {
		if (!rule_sum(r, sum, &id))
			continue;
		for (int s = 0; s < names.nstages; s++)
			for (size_t a = 0; a < NACTIONS; a++)
				if (sum[s][a])
					fprintf(f, "moat_decisions_total{stage=\"%s\",action=\"%s\",rule=\"%s\"} %llu\n",
					        names.stages[s], actions[a], id, (unsigned long long)sum[s][a]);
	}
}

static void render_checks(FILE *f)
{
	head(f, "moat_check_results_total", "counter", "Check results, by check and result.");
	for (int c = 0; c < names.nchecks; c++) {
		int r;

		for (r = 0; r < MOAT_METRICS_RESULTS_MAX && names.results[c][r]; r++)
			fprintf(f, "moat_check_results_total{check=\"%s\",result=\"%s\"} %llu\n", names.checks[c],
			        names.results[c][r], (unsigned long long)get(&m->checks[c][r]));
		fprintf(f, "moat_check_results_total{check=\"%s\",result=\"unknown\"} %llu\n", names.checks[c],
		        (unsigned long long)get(&m->checks[c][MOAT_METRICS_RESULTS_MAX]));
	}
}

static void render_histogram(FILE *f, const char *name, const char *help, struct histogram *h)
{
	uint64_t cum = 0;

	head(f, name, "histogram", help);
	for (size_t i = 0; i <= NBUCKETS; i++) {
		cum += get(&h->bucket[i]);
		if (i < NBUCKETS)
			fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name, buckets[i], (unsigned long long)cum);
		else
			fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
	}
	fprintf(f, "%s_sum %.9f\n%s_count %llu\n", name, (double)get(&h->sum_ns) / 1e9, name,
	        (unsigned long long)cum);
}

static void render_connections(FILE *f)
{
	int open = 0, running = 0;

	head(f, "moat_connections_accepted_total", "counter", "Client connections accepted, by listener.");
	for (int l = 0; l < names.nlisteners; l++)
		fprintf(f, "moat_connections_accepted_total{listener=\"%s\"} %llu\n", names.listeners[l],
		        (unsigned long long)get(&m->accepted[l]));
	head(f, "moat_connections_refused_total", "counter", "Client connections refused at connect, by reason.");
	for (int r = 0; r < MR_COUNT; r++)
		fprintf(f, "moat_connections_refused_total{reason=\"%s\"} %llu\n", refusals[r],
		        (unsigned long long)get(&m->refused[r]));
	for (int w = 0; w < m->nworkers; w++) {
		open += atomic_load_explicit(&m->workers[w].sessions, memory_order_relaxed);
		running += atomic_load_explicit(&m->workers[w].beat, memory_order_relaxed) != 0;
	}
	scalar(f, "moat_sessions_active", "gauge", "SMTP sessions open now, in every worker.", (uint64_t)open);
	scalar(f, "moat_workers", "gauge", "Worker processes running now.", (uint64_t)running);
}

/* Only when some worker uses Redis. */
static void render_redis(FILE *f)
{
	static const char *const reasons[MRE_COUNT] = {"down", "timeout", "connection", "error", "bad_reply", "queue_full"};
	int used = 0, down = 0;

	for (int w = 0; w < m->nworkers; w++) {
		int st = atomic_load_explicit(&m->workers[w].redis, memory_order_relaxed);

		used |= st != 0;
		down |= st == 2 && atomic_load_explicit(&m->workers[w].beat, memory_order_relaxed) != 0;
	}
	if (!used)
		return;
	scalar(f, "moat_redis_up", "gauge", "1 when every running worker's connection to Redis answers.",
	       (uint64_t)!down);
	scalar(f, "moat_redis_calls_total", "counter", "Store calls sent to Redis (one round trip each).",
	       get(&m->redis_calls));
	head(f, "moat_redis_errors_total", "counter",
	     "Store calls to Redis answered as faults (fail open), by reason.");
	for (int r = 0; r < MRE_COUNT; r++)
		fprintf(f, "moat_redis_errors_total{reason=\"%s\"} %llu\n", reasons[r],
		        (unsigned long long)get(&m->redis_errors[r]));
	head(f, "moat_redis_state_changes_total", "counter",
	     "Workers' connections to Redis becoming up (answering) or down, the first state included.");
	fprintf(f, "moat_redis_state_changes_total{to=\"up\"} %llu\n", (unsigned long long)get(&m->redis_to_up));
	fprintf(f, "moat_redis_state_changes_total{to=\"down\"} %llu\n",
	        (unsigned long long)get(&m->redis_to_down));
}

char *metrics_render(uint64_t now, uint64_t window, size_t *len)
{
	char *out = NULL;
	FILE *f;

	if (!m || !(f = open_memstream(&out, len)))
		return NULL;
	render_decisions(f);
	render_checks(f);
	render_connections(f);
	render_histogram(f, "moat_dns_query_duration_seconds", "DNS queries sent, by time to their answer or timeout.",
	                 &m->dns);
	scalar(f, "moat_dns_cache_hits_total", "counter", "DNS lookups answered from the cache.", get(&m->dns_hits));
	scalar(f, "moat_dns_cache_misses_total", "counter", "DNS lookups not in the cache.", get(&m->dns_misses));
	render_histogram(f, "moat_backend_reply_duration_seconds",
	                 "Backend replies (banner and each command), by time from the command to the reply.",
	                 &m->backend);
	scalar(f, "moat_backend_up", "gauge", "1 when the backend answered within the readiness window.",
	       (uint64_t)backend_up(now, window));
	head(f, "moat_config_reloads_total", "counter", "Configuration reloads (SIGHUP) of each worker, by result.");
	fprintf(f, "moat_config_reloads_total{result=\"success\"} %llu\n", (unsigned long long)get(&m->reloads_ok));
	fprintf(f, "moat_config_reloads_total{result=\"failure\"} %llu\n",
	        (unsigned long long)get(&m->reloads_failed));
	head(f, "moat_dnsbl_errors_total", "counter",
	     "DNS list queries (dnsbl_sites, dbl_sites) without a usable answer, by kind; never listings.");
	for (int k = 0; k < MD_COUNT; k++) {
		static const char *const kinds[MD_COUNT] = {"timeout", "tempfail", "error_code", "not_loopback"};

		fprintf(f, "moat_dnsbl_errors_total{kind=\"%s\"} %llu\n", kinds[k],
		        (unsigned long long)get(&m->dnsbl_errors[k]));
	}
	render_redis(f);
	scalar(f, "moat_worker_restarts_total", "counter", "Workers restarted after they died.", get(&m->restarts));
	scalar(f, "moat_messages_relayed_total", "counter", "Messages the backend accepted through moat.",
	       get(&m->messages));
	scalar(f, "moat_relayed_bytes_total", "counter", "Bytes of the messages the backend accepted (as received).",
	       get(&m->bytes));
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}
