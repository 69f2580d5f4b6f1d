/*
 * bench/anomaly/bench: how well and how fast src/anomaly tells unusual requests from usual
 * ones, on a generated month of traffic for 50 agents with injected anomalies.
 *
 *   bench [--seed N] [--agents N] [--passes N]
 *
 * Traffic (deterministic from the seed; UTC; the defaults are the issue's):
 *   - 4 weeks of warm-up history, then the measured month of 30 days;
 *   - agents of three kinds: office (weekday working hours that start between 07:00 and
 *     10:00 and last 7-10 hours, each day's start and end jittered by up to 45 minutes,
 *     overtime of up to 2 hours on 3% of days, some also on Saturday mornings), always-on
 *     (every hour, a quarter of the rate at night and half at weekends) and batch (two
 *     scheduled runs a day of 4-12 requests within 3 minutes, plus a few ad-hoc requests
 *     in office hours);
 *   - each agent uses 3-8 actions from one or two themes (Kubernetes, Terraform, git,
 *     data exports, operations) with Zipf-like frequencies, each in 1-2 of its 1-3
 *     environments, on resources under 1-3 prefixes; data actions declare rows or bytes
 *     (log-normal around the agent's own median, sigma 0.5);
 *   - 1-15 requests per active hour (Poisson), 10% of them followed by 1-4 more within
 *     30 seconds (a script's steps);
 *   - slow drift over the two months: rate +30%, declared sizes +50%, and for a third of
 *     the office agents the working day starts an hour later by the end; during the
 *     measured month 20% of agents take up a new action and 10% a new environment for good
 *     (legitimate new habits: their first use is flagged and approved).
 *
 * Injected anomalies (measured month, days 3-28, one of each kind per agent where it
 * applies): a new verb (an action from outside its themes: kubectl delete, terraform
 * destroy, ...), a new environment for a known action, off-hours (a known action at a time
 * with no usual activity within 2 hours on that day of the week; not for always-on agents),
 * a burst (15-60 requests of a known action within one minute), and volume (a declared
 * size 50-2000 times the agent's median, or for agents that declare none, 20-200 KB of
 * arguments).
 *
 * The daemon is simulated: each request is scored, counted (so_baseline_note_submitted),
 * and then: not flagged (score < threshold) -> allowed and learned; flagged and normal ->
 * approved by a reviewer and learned; flagged and injected -> denied, not learned. An
 * injected anomaly is caught when a request of it is flagged with a reason of its own kind
 * (for a burst: any of its requests). A false positive is a flagged normal request of a
 * principal past its learning period.
 *
 * Two runs: warm (baselines built over the warm-up, the main figures) and cold (empty
 * baselines at the start of the measured month: the learning period, then the rest).
 * Scoring cost: the warm run's final baselines score every request of the measured month
 * PASSES times (default 5); ns per call is the wall time of a pass over the calls
 * (clock_gettime(CLOCK_MONOTONIC)), median of the passes; then each call is timed alone
 * once for p50/p99 (which include the timer's own cost, printed too).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "anomaly/anomaly.h"
#include "common/error.h"

#define MIN INT64_C(60000)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
#define START INT64_C(1788739200000) /* Monday 2026-09-07 00:00 UTC */
#define WARM_DAYS 28
#define MEASURE_DAYS 30
#define ALL_DAYS (WARM_DAYS + MEASURE_DAYS)
#define MAX_VERBS 10

/* ---- randomness: splitmix64, reproducible, not for secrets ---- */

static uint64_t rng;

static uint64_t
next(void)
{
	uint64_t z = (rng += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static double
uniform(void)
{
	return (double)(next() >> 11) / 9007199254740992.0;
}

static int
below(int n)
{
	return (int)(next() % (uint64_t)n);
}

static double
between(double lo, double hi)
{
	return lo + (hi - lo) * uniform();
}

static double
log_between(double lo, double hi)
{
	return exp(between(log(lo), log(hi)));
}

static double
normal(void)
{
	double u = uniform(), v = uniform();
	return sqrt(-2 * log(u > 1e-300 ? u : 1e-300)) * cos(2 * M_PI * v);
}

static int
poisson(double lambda)
{
	double l = exp(-lambda), p = 1;
	int k = 0;
	do {
		k++;
		p *= uniform();
	} while (p > l);
	return k - 1;
}

/* ---- the action pool ---- */

enum theme { TH_K8S, TH_TF, TH_GIT, TH_DATA, TH_OPS, NTHEMES };

struct tmpl {
	int theme;    /* -1: dangerous, used only for injected new verbs */
	const char *kind;
	const char *a0, *a1; /* shell: argv[0], argv[1] (or NULL); mcp.tool: server, tool */
	const char *prefixes[3];
	int size;     /* SO_ANOMALY_SIZE_ROWS or _BYTES declared in context, or -1 */
};

static const struct tmpl pool[] = {
	{TH_K8S, "shell", "kubectl", "get", {"deploy/", "pod/", "svc/"}, -1},
	{TH_K8S, "shell", "kubectl", "rollout", {"deploy/"}, -1},
	{TH_K8S, "shell", "kubectl", "apply", {"deploy/", "configmap/"}, -1},
	{TH_K8S, "shell", "kubectl", "scale", {"deploy/"}, -1},
	{TH_K8S, "shell", "kubectl", "logs", {"pod/"}, -1},
	{TH_K8S, "shell", "helm", "upgrade", {"release:"}, -1},
	{TH_TF, "shell", "terraform", "plan", {"stack:"}, -1},
	{TH_TF, "shell", "terraform", "apply", {"stack:"}, -1},
	{TH_TF, "shell", "terraform", "output", {"stack:"}, -1},
	{TH_GIT, "shell", "git", "push", {"repo:"}, -1},
	{TH_GIT, "shell", "git", "tag", {"repo:"}, -1},
	{TH_GIT, "mcp.tool", "github", "create_pr", {"repo:"}, -1},
	{TH_GIT, "mcp.tool", "github", "merge_pr", {"repo:"}, -1},
	{TH_DATA, "mcp.tool", "snowflake", "export", {"table:"}, SO_ANOMALY_SIZE_ROWS},
	{TH_DATA, "mcp.tool", "snowflake", "query", {"table:", "view:"}, SO_ANOMALY_SIZE_ROWS},
	{TH_DATA, "shell", "aws", "s3", {"s3:"}, SO_ANOMALY_SIZE_BYTES},
	{TH_DATA, "shell", "pg_dump", NULL, {"db:"}, SO_ANOMALY_SIZE_BYTES},
	{TH_OPS, "mcp.tool", "pagerduty", "ack", {"incident:"}, -1},
	{TH_OPS, "mcp.tool", "jira", "create_issue", {"project:"}, -1},
	{TH_OPS, "shell", "vault", "read", {"secret/"}, -1},
	{TH_OPS, "mcp.tool", "slack", "post_message", {"channel:"}, -1},
	/* Never part of a routine: what an injected new verb uses. */
	{-1, "shell", "kubectl", "delete", {"deploy/", "secret/"}, -1},
	{-1, "shell", "terraform", "destroy", {"stack:"}, -1},
	{-1, "shell", "aws", "iam", {"arn:"}, -1},
	{-1, "mcp.tool", "github", "delete_repo", {"repo:"}, -1},
	{-1, "shell", "psql", NULL, {"db:"}, -1},
	{-1, "mcp.tool", "snowflake", "grant", {"table:"}, -1},
	{-1, "shell", "vault", "write", {"secret/"}, -1},
	{-1, "shell", "curl", NULL, {"url:"}, -1},
};
#define NPOOL (sizeof(pool) / sizeof(pool[0]))

static const char *const envs[] = {"dev", "staging", "production", "prod-eu", "sandbox", "qa"};
#define NENVS 6
static const char *const names[] = {"api", "web", "billing", "search", "auth", "ingest", "worker",
                                    "gateway", "orders", "users", "events", "ledger"};
#define NNAMES 12

/* ---- agents ---- */

enum agent_kind { OFFICE, ALWAYS_ON, BATCH };

struct verb {
	int tmpl;
	double weight;
	int envs[2], nenvs;
	double env_share; /* share of the first environment */
	int nprefixes;
	double size_median;
};

struct agent {
	char name[32];
	enum agent_kind kind;
	double rate;             /* requests per active hour */
	double start_h, len_h;   /* office: working day */
	int saturday;            /* office: also Saturday 10-14 */
	int late_shift;          /* office: the day starts an hour later by the end */
	int job_h[2];            /* batch: scheduled runs */
	int envs[3], nenvs;
	struct verb verbs[MAX_VERBS];
	int nverbs;
	int new_verb_day;        /* a new habit from this day (-1 never) */
	struct verb new_verb;
	int new_env_day;
	int new_env;
};

static int
has_tmpl(const struct agent *a, int t)
{
	for (int i = 0; i < a->nverbs; i++)
		if (a->verbs[i].tmpl == t)
			return 1;
	return a->new_verb_day >= 0 && a->new_verb.tmpl == t;
}

static int
has_env(const struct agent *a, int e)
{
	for (int i = 0; i < a->nenvs; i++)
		if (a->envs[i] == e)
			return 1;
	return a->new_env_day >= 0 && a->new_env == e;
}

static void
make_verb(struct agent *a, int t, struct verb *v)
{
	v->tmpl = t;
	v->nenvs = a->nenvs > 1 && uniform() < 0.5 ? 2 : 1;
	v->envs[0] = a->envs[below(a->nenvs)];
	v->envs[1] = a->envs[(v->envs[0] == a->envs[0] && a->nenvs > 1) ? 1 : 0];
	if (v->nenvs == 2 && v->envs[1] == v->envs[0])
		v->nenvs = 1;
	v->env_share = between(0.55, 0.9);
	int np = 0;
	while (np < 3 && pool[t].prefixes[np])
		np++;
	v->nprefixes = 1 + below(np);
	v->size_median = pool[t].size == SO_ANOMALY_SIZE_ROWS    ? log_between(1e3, 1e5)
	                 : pool[t].size == SO_ANOMALY_SIZE_BYTES ? log_between(1e6, 1e9)
	                                                         : 0;
}

static void
make_agent(struct agent *a, int i)
{
	static const char *const kinds[] = {"office", "always-on", "batch"};
	memset(a, 0, sizeof(*a));
	a->kind = i % 5 == 3 ? ALWAYS_ON : i % 5 == 4 ? BATCH : OFFICE;
	snprintf(a->name, sizeof(a->name), "%s-bot-%02d", kinds[a->kind], i);
	a->rate = log_between(1, 15);
	a->start_h = between(7, 10);
	a->len_h = between(7, 10);
	a->saturday = a->kind == OFFICE && uniform() < 0.15;
	a->late_shift = a->kind == OFFICE && uniform() < 0.33;
	a->job_h[0] = 1 + below(4);
	a->job_h[1] = 12 + below(10);
	a->nenvs = 1 + below(3);
	int order[3] = {0, 1, 2}; /* dev, staging, production */
	for (int k = 2; k > 0; k--) {
		int j = below(k + 1), t = order[k];
		order[k] = order[j];
		order[j] = t;
	}
	for (int k = 0; k < a->nenvs; k++)
		a->envs[k] = order[k];
	int themes[2] = {a->kind == BATCH ? TH_DATA : below(NTHEMES), below(NTHEMES)};
	int nthemes = uniform() < 0.5 ? 2 : 1;
	int want = 3 + below(6);
	for (int tries = 0; tries < 200 && a->nverbs < want; tries++) {
		int t = below((int)NPOOL);
		if (pool[t].theme < 0 || has_tmpl(a, t) ||
		    (pool[t].theme != themes[0] && (nthemes < 2 || pool[t].theme != themes[1])))
			continue;
		make_verb(a, t, &a->verbs[a->nverbs]);
		a->verbs[a->nverbs].weight = 1 / pow(a->nverbs + 1, 0.8);
		a->nverbs++;
	}
	a->new_verb_day = -1;
	a->new_env_day = -1;
	if (uniform() < 0.2) {
		for (int tries = 0; tries < 100; tries++) {
			int t = below((int)NPOOL);
			if (pool[t].theme < 0 || has_tmpl(a, t))
				continue;
			make_verb(a, t, &a->new_verb);
			a->new_verb.weight = a->verbs[a->nverbs / 2].weight;
			a->new_verb_day = WARM_DAYS + 2 + below(MEASURE_DAYS - 4);
			break;
		}
	}
	if (uniform() < 0.1) {
		int e = below(4);
		if (!has_env(a, e)) {
			a->new_env = e;
			a->new_env_day = WARM_DAYS + 2 + below(MEASURE_DAYS - 4);
		}
	}
}

/* The usual activity (without jitter) of `a` at `minute` of weekday `wd` (0 = Sunday) on `day`. */
static double
activity(const struct agent *a, int day, int wd, double minute)
{
	double h = minute / 60;
	double drift = (double)day / ALL_DAYS;
	switch (a->kind) {
	case OFFICE: {
		double start = a->start_h + (a->late_shift ? drift : 0);
		if (wd >= 1 && wd <= 5)
			return h >= start && h < start + a->len_h;
		return wd == 6 && a->saturday && h >= 10 && h < 14 ? 0.5 : 0;
	}
	case ALWAYS_ON: return (h < 6 ? 0.25 : 1) * (wd == 0 || wd == 6 ? 0.5 : 1);
	case BATCH:
		if ((int)h == a->job_h[0] || (int)h == a->job_h[1])
			return 1;
		return wd >= 1 && wd <= 5 && h >= 10 && h < 16 ? 0.3 : 0;
	}
	return 0;
}

/* ---- events ---- */

enum inject { NORMAL, INJ_VERB, INJ_ENV, INJ_HOURS, INJ_BURST, INJ_VOLUME, NINJECT };
static const char *const inject_names[NINJECT] = {"normal", "new verb", "new environment",
                                                  "off-hours", "burst", "volume"};
static const int inject_signal[NINJECT] = {-1, SO_ANOMALY_SIG_VERB, SO_ANOMALY_SIG_ENV,
                                           SO_ANOMALY_SIG_HOURS, SO_ANOMALY_SIG_BURST,
                                           SO_ANOMALY_SIG_VOLUME};

struct event {
	int64_t t;
	int tmpl, env, prefix, name;
	double size;      /* declared, or -1 */
	int big_args;     /* bytes of an extra argument, or 0 */
	int inject;
	int anomaly;      /* id of the injected anomaly, or -1 */
};

struct events {
	struct event *v;
	size_t n, cap;
};

static struct event *
push(struct events *e)
{
	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 4096;
		e->v = realloc(e->v, e->cap * sizeof(*e->v));
		if (!e->v) {
			fprintf(stderr, "out of memory\n");
			exit(1);
		}
	}
	struct event *ev = &e->v[e->n++];
	memset(ev, 0, sizeof(*ev));
	ev->size = -1;
	ev->anomaly = -1;
	return ev;
}

static const struct verb *
pick_verb(const struct agent *a, int day)
{
	double total = 0;
	for (int i = 0; i < a->nverbs; i++)
		total += a->verbs[i].weight;
	int with_new = a->new_verb_day >= 0 && day >= a->new_verb_day;
	if (with_new)
		total += a->new_verb.weight;
	double x = uniform() * total;
	for (int i = 0; i < a->nverbs; i++) {
		if ((x -= a->verbs[i].weight) < 0)
			return &a->verbs[i];
	}
	return with_new ? &a->new_verb : &a->verbs[a->nverbs - 1];
}

static void
fill(struct event *ev, const struct agent *a, const struct verb *v, int day, int64_t t)
{
	ev->t = t;
	ev->tmpl = v->tmpl;
	ev->env = v->nenvs == 2 && uniform() > v->env_share ? v->envs[1] : v->envs[0];
	if (a->new_env_day >= 0 && day >= a->new_env_day && uniform() < 0.3)
		ev->env = a->new_env;
	ev->prefix = below(v->nprefixes);
	ev->name = below(NNAMES);
	if (pool[v->tmpl].size >= 0)
		ev->size = round(v->size_median * (1 + 0.5 * day / ALL_DAYS) * exp(0.5 * normal()));
}

static void
generate(const struct agent *a, struct events *out)
{
	for (int day = 0; day < ALL_DAYS; day++) {
		int wd = (day + 1) % 7; /* START is a Monday */
		double rate = a->rate * (1 + 0.3 * day / ALL_DAYS);
		/* The day's own start and end, for office agents. */
		double jitter_start = between(-0.75, 0.75), jitter_end = between(-0.75, 0.75);
		if (uniform() < 0.03)
			jitter_end += between(0, 2);
		for (int h = 0; h < 24; h++) {
			double lambda;
			if (a->kind == OFFICE) {
				double start = a->start_h + (a->late_shift ? (double)day / ALL_DAYS : 0) + jitter_start;
				double end = a->start_h + (a->late_shift ? (double)day / ALL_DAYS : 0) + a->len_h + jitter_end;
				double overlap = fmin(h + 1, end) - fmax(h, start);
				lambda = wd >= 1 && wd <= 5 ? rate * fmax(0, overlap) : 0;
				if (wd == 6 && a->saturday && h >= 10 && h < 14)
					lambda = rate * 0.5;
			} else if (a->kind == BATCH && (h == a->job_h[0] || h == a->job_h[1])) {
				/* A scheduled run: 4-12 requests within 3 minutes, starting at :00-:05. */
				int64_t t0 = START + day * DAY + h * HOUR + below(5) * MIN;
				int n = 4 + below(9);
				const struct verb *v = pick_verb(a, day);
				for (int k = 0; k < n; k++) {
					if (uniform() < 0.4)
						v = pick_verb(a, day);
					fill(push(out), a, v, day, t0 + (int64_t)(uniform() * 180000));
				}
				continue;
			} else {
				lambda = rate * activity(a, day, wd, h * 60 + 30);
			}
			int n = poisson(lambda);
			for (int k = 0; k < n; k++) {
				int64_t t = START + day * DAY + h * HOUR + (int64_t)(uniform() * HOUR);
				const struct verb *v = pick_verb(a, day);
				fill(push(out), a, v, day, t);
				if (a->kind != BATCH && uniform() < 0.1) {
					int extra = 1 + below(4);
					for (int q = 0; q < extra; q++)
						fill(push(out), a, v, day, t + 2000 + (int64_t)(uniform() * 28000));
				}
			}
		}
	}
}

/* A normal event of the measured month (days 3-28) to hang an injection on, or NULL. */
static const struct event *
host_event(const struct events *e, int want_size)
{
	for (int tries = 0; tries < 5000; tries++) {
		const struct event *ev = &e->v[below((int)e->n)];
		int64_t day = (ev->t - START) / DAY;
		if (ev->inject || day < WARM_DAYS + 3 || day > WARM_DAYS + 28)
			continue;
		if (want_size && pool[ev->tmpl].size < 0)
			continue;
		return ev;
	}
	return NULL;
}

static int anomalies_made[NINJECT];

/* The verb of `a` made from template `t` (a routine one or its new habit). */
static const struct verb *
verb_of(const struct agent *a, int t)
{
	for (int i = 0; i < a->nverbs; i++)
		if (a->verbs[i].tmpl == t)
			return &a->verbs[i];
	return &a->new_verb;
}

static void
inject(const struct agent *a, struct events *e, int *next_id)
{
	const struct event *host;
	struct event copy;

	/* New verb: a dangerous action with the host's environment. */
	if ((host = host_event(e, 0))) {
		copy = *host;
		struct event *ev = push(e);
		*ev = copy;
		int t;
		do
			t = below((int)NPOOL);
		while (pool[t].theme >= 0 || has_tmpl(a, t));
		ev->tmpl = t;
		ev->prefix = 0;
		ev->size = -1;
		ev->t += 7000;
		ev->inject = INJ_VERB;
		ev->anomaly = (*next_id)++;
		anomalies_made[INJ_VERB]++;
	}
	/* New environment for a known action. */
	if ((host = host_event(e, 0))) {
		int env;
		for (env = 0; env < NENVS && has_env(a, env); env++)
			;
		copy = *host;
		struct event *ev = push(e);
		*ev = copy;
		ev->env = env;
		ev->t += 7000;
		ev->inject = INJ_ENV;
		ev->anomaly = (*next_id)++;
		anomalies_made[INJ_ENV]++;
	}
	/* Off-hours: a known action when nothing usual happens within 2 hours that weekday. */
	if (a->kind != ALWAYS_ON && (host = host_event(e, 0))) {
		for (int tries = 0; tries < 10000; tries++) {
			int day = WARM_DAYS + 3 + below(26);
			int wd = (day + 1) % 7;
			int minute = below(24 * 60);
			int busy = 0;
			for (int d = -120; d <= 120 && !busy; d += 10) {
				int m = minute + d, w = wd, dd = day;
				if (m < 0)
					m += 1440, w = (w + 6) % 7, dd--;
				if (m >= 1440)
					m -= 1440, w = (w + 1) % 7, dd++;
				/* Usual days and hours, with the office jitter and overtime allowed for. */
				for (int j = -75; j <= 75 && !busy; j += 15)
					busy |= activity(a, dd, w, m + j) > 0;
			}
			if (busy)
				continue;
			copy = *host;
			struct event *ev = push(e);
			*ev = copy;
			ev->t = START + day * DAY + minute * MIN + below(60) * 1000;
			ev->inject = INJ_HOURS;
			ev->anomaly = (*next_id)++;
			anomalies_made[INJ_HOURS]++;
			break;
		}
	}
	/* Burst: 15-60 requests of a known action within a minute. */
	if ((host = host_event(e, 0))) {
		copy = *host;
		int n = 15 + below(46), id = (*next_id)++;
		for (int k = 0; k < n; k++) {
			struct event *ev = push(e);
			*ev = copy;
			ev->t = copy.t + 3000 + (int64_t)k * 57000 / n;
			ev->name = below(NNAMES);
			ev->inject = INJ_BURST;
			ev->anomaly = id;
		}
		anomalies_made[INJ_BURST]++;
	}
	/* Volume: a declared size far above the usual, or very long arguments. */
	int sized = 0;
	for (int i = 0; i < a->nverbs; i++)
		sized |= pool[a->verbs[i].tmpl].size >= 0;
	if ((host = host_event(e, sized))) {
		copy = *host;
		struct event *ev = push(e);
		*ev = copy;
		ev->t += 7000;
		if (sized) {
			ev->size = round(verb_of(a, copy.tmpl)->size_median * log_between(50, 2000));
		} else {
			ev->big_args = (int)log_between(20000, 200000);
		}
		ev->inject = INJ_VOLUME;
		ev->anomaly = (*next_id)++;
		anomalies_made[INJ_VOLUME]++;
	}
}

static int
by_time(const void *x, const void *y)
{
	const struct event *a = x, *b = y;
	return a->t < b->t ? -1 : a->t > b->t;
}

/* The action and context of an event, as an agent would submit them. */
static void
to_features(const struct event *ev, so_anomaly_features_t *f)
{
	const struct tmpl *tp = &pool[ev->tmpl];
	char resource[96];
	const char *prefix = tp->prefixes[ev->prefix];
	if (!strcmp(prefix, "s3:"))
		snprintf(resource, sizeof(resource), "s3://%s-bucket/%d", names[ev->name], ev->name * 7);
	else
		snprintf(resource, sizeof(resource), "%s%s", prefix, names[ev->name]);
	json_t *action = json_pack("{s:s, s:s, s:s}", "kind", tp->kind, "environment", envs[ev->env],
	                           "resource", resource);
	json_t *context = json_pack("{s:s}", "ticket", "OPS-1234");
	if (!strcmp(tp->kind, "shell")) {
		json_t *argv = json_array();
		json_array_append_new(argv, json_string(tp->a0));
		if (tp->a1)
			json_array_append_new(argv, json_string(tp->a1));
		json_array_append_new(argv, json_string(resource));
		if (ev->name % 3 == 0)
			json_array_append_new(argv, json_string("--wait"));
		if (ev->big_args > 0) {
			char *blob = malloc((size_t)ev->big_args + 1);
			memset(blob, 'x', (size_t)ev->big_args);
			blob[ev->big_args] = '\0';
			json_array_append_new(argv, json_string(blob));
			free(blob);
		}
		json_object_set_new(action, "command", argv);
	} else {
		json_t *args = json_pack("{s:s, s:i}", "target", resource, "limit", ev->name * 10);
		if (ev->big_args > 0) {
			char *blob = malloc((size_t)ev->big_args + 1);
			memset(blob, 'x', (size_t)ev->big_args);
			blob[ev->big_args] = '\0';
			json_object_set_new(args, "body", json_string(blob));
			free(blob);
		}
		json_object_set_new(action, "server", json_string(tp->a0));
		json_object_set_new(action, "tool", json_string(tp->a1));
		json_object_set_new(action, "arguments", args);
	}
	if (ev->size >= 0)
		json_object_set_new(context, tp->size == SO_ANOMALY_SIZE_ROWS ? "rows" : "bytes",
		                    json_real(ev->size));
	so_anomaly_features(action, context, f);
	json_decref(action);
	json_decref(context);
}

/* ---- the simulated daemon ---- */

struct tally {
	long normal, learning, fp, fp_by[SO_ANOMALY_SIG__COUNT];
	long injected_requests, injected_in_learning;
	int caught[NINJECT], made[NINJECT], after_learning[NINJECT];
	long burst_requests, burst_flagged;
};

/* Per injected anomaly: caught yet, and seen past the learning period yet. */
struct seen {
	int *caught, *after_learning;
};

struct scored {
	int agent;
	int64_t t;
	so_anomaly_features_t f;
};

static int
has_signal(const so_anomaly_result_t *r, int sig)
{
	for (size_t i = 0; i < r->nreasons; i++)
		if (r->signal[i] == sig)
			return 1;
	return 0;
}

static char example_fp[4][SO_ANOMALY_REASON_LEN * 2];
static int nexample_fp;
static char example_caught[NINJECT][SO_ANOMALY_REASON_LEN * 2];

/* Run one agent's events through its baseline; only the measured month is tallied. */
static void
simulate(const struct agent *a, const struct events *e, so_baseline_t *b,
         const so_anomaly_params_t *p, int warm, struct tally *tl, struct seen *seen,
         struct scored *keep, size_t *nkeep)
{
	int64_t measured_from = START + WARM_DAYS * DAY;
	for (size_t i = 0; i < e->n; i++) {
		const struct event *ev = &e->v[i];
		if (!warm && ev->t < measured_from)
			continue;
		so_anomaly_features_t f;
		so_anomaly_result_t r;
		to_features(ev, &f);
		int learning = so_baseline_is_learning(b, p, ev->t);
		so_anomaly_score(b, p, a->name, &f, ev->t, &r);
		int flagged = r.score >= p->threshold;
		so_baseline_note_submitted(b, p, ev->t);
		int measured = ev->t >= measured_from;
		if (measured && keep) {
			keep[*nkeep].agent = 0; /* set by the caller */
			keep[*nkeep].t = ev->t;
			keep[*nkeep].f = f;
			(*nkeep)++;
		}
		if (ev->inject == NORMAL) {
			if (measured && learning) {
				tl->learning++;
			} else if (measured) {
				tl->normal++;
				if (flagged) {
					tl->fp++;
					tl->fp_by[r.signal[0]]++;
					if (warm && nexample_fp < 4 && (tl->fp % 7 == 1))
						snprintf(example_fp[nexample_fp++], sizeof(example_fp[0]), "%s: %s",
						         a->name, r.reasons[0]);
				}
			}
			so_baseline_learn(b, p, &f, ev->t); /* allowed, or approved by a reviewer */
			continue;
		}
		tl->injected_requests++;
		if (!learning && !seen->after_learning[ev->anomaly]) {
			seen->after_learning[ev->anomaly] = 1;
			tl->after_learning[ev->inject]++;
		}
		if (learning) {
			tl->injected_in_learning++;
		} else if (flagged && has_signal(&r, inject_signal[ev->inject])) {
			if (!seen->caught[ev->anomaly]) {
				seen->caught[ev->anomaly] = 1;
				tl->caught[ev->inject]++;
				if (!example_caught[ev->inject][0] && warm)
					snprintf(example_caught[ev->inject], sizeof(example_caught[0]), "%s: %s",
					         a->name, r.reasons[0]);
			}
		}
		if (ev->inject == INJ_BURST) {
			tl->burst_requests++;
			tl->burst_flagged += flagged;
		}
		if (!flagged)
			so_baseline_learn(b, p, &f, ev->t); /* missed: allowed, and learned */
	}
}

static double
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int
cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return a < b ? -1 : a > b;
}

static void
report(const char *title, const struct tally *tl, const so_anomaly_params_t *p)
{
	printf("\n%s\n", title);
	printf("  normal requests scored after learning: %ld; flagged (score >= %.2f): %ld = %.3f%%"
	       " (aim < 1%%)\n", tl->normal, p->threshold, tl->fp,
	       tl->normal ? 100.0 * (double)tl->fp / (double)tl->normal : 0);
	if (tl->fp) {
		printf("    by strongest reason:");
		for (int s = 0; s < SO_ANOMALY_SIG__COUNT; s++)
			if (tl->fp_by[s])
				printf(" %s %ld", so_anomaly_signal_name(s), tl->fp_by[s]);
		printf("\n");
	}
	if (tl->learning)
		printf("  normal requests in a learning period (scored %.2f \"new\", reviewed): %ld\n",
		       p->learning_score, tl->learning);
	int caught = 0, made = 0;
	printf("  injected anomalies caught (flagged with a reason of their kind), of those made "
	       "after the learning period:\n");
	for (int k = 1; k < NINJECT; k++) {
		printf("    %-16s %3d of %3d = %5.1f%%\n", inject_names[k], tl->caught[k],
		       tl->after_learning[k],
		       tl->after_learning[k] ? 100.0 * tl->caught[k] / tl->after_learning[k] : 0);
		caught += tl->caught[k];
		made += tl->after_learning[k];
	}
	printf("    %-16s %3d of %3d = %5.1f%% (aim > 95%%)\n", "overall", caught, made,
	       made ? 100.0 * caught / made : 0);
	if (tl->injected_in_learning)
		printf("  injected requests that fell in a learning period (scored \"new\" and reviewed; "
		       "left out above): %ld\n", tl->injected_in_learning);
	printf("  burst requests flagged: %ld of %ld (the first ones of a burst are within the usual)\n",
	       tl->burst_flagged, tl->burst_requests);
}

int
main(int argc, char **argv)
{
	uint64_t seed = 42;
	int nagents = 50, passes = 5;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--seed"))
			seed = strtoull(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--agents"))
			nagents = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--passes"))
			passes = atoi(argv[i + 1]);
	}
	if (nagents < 1 || nagents > 10000 || passes < 1 || passes > 100) {
		fprintf(stderr, "usage: bench [--seed N] [--agents 1..10000] [--passes 1..100]\n");
		return 2;
	}
	so_anomaly_params_t p;
	so_anomaly_params_default(&p);

	rng = seed;
	struct agent *agents = calloc((size_t)nagents, sizeof(*agents));
	struct events *ev = calloc((size_t)nagents, sizeof(*ev));
	int next_id = 0;
	size_t total = 0, measured = 0;
	int counts[3] = {0};
	for (int i = 0; i < nagents; i++) {
		make_agent(&agents[i], i);
		counts[agents[i].kind]++;
		generate(&agents[i], &ev[i]);
		inject(&agents[i], &ev[i], &next_id);
		qsort(ev[i].v, ev[i].n, sizeof(*ev[i].v), by_time);
		total += ev[i].n;
		for (size_t k = 0; k < ev[i].n; k++)
			measured += ev[i].v[k].t >= START + WARM_DAYS * DAY;
	}
	int new_habits = 0, new_envs = 0;
	for (int i = 0; i < nagents; i++) {
		new_habits += agents[i].new_verb_day >= 0;
		new_envs += agents[i].new_env_day >= 0;
	}

	printf("anomaly scoring benchmark (bench/anomaly): seed %" PRIu64 "\n", seed);
	printf("traffic:  %d agents (%d office, %d always-on, %d batch); %d warm-up days + %d measured"
	       " days from 2026-10-05; %zu requests, %zu in the measured month (%.0f per agent-day)\n",
	       nagents, counts[OFFICE], counts[ALWAYS_ON], counts[BATCH], WARM_DAYS, MEASURE_DAYS,
	       total, measured, (double)measured / nagents / MEASURE_DAYS);
	printf("          legitimate new habits in the measured month: %d agents take up a new action,"
	       " %d a new environment\n", new_habits, new_envs);
	printf("settings: defaults (learning 7 days and 20 requests, learning score %.2f, threshold %.2f,"
	       " half-life %.0f days, UTC)\n", p.learning_score, p.threshold, p.half_life_days);

	struct scored *keep = malloc(measured * sizeof(*keep));
	size_t nkeep = 0;
	so_baseline_t **base = calloc((size_t)nagents, sizeof(*base));
	struct seen seen = {calloc((size_t)next_id + 1, sizeof(int)),
	                    calloc((size_t)next_id + 1, sizeof(int))};
	struct tally warm = {0}, cold = {0};
	for (int k = 1; k < NINJECT; k++)
		warm.made[k] = cold.made[k] = anomalies_made[k];

	for (int i = 0; i < nagents; i++) {
		base[i] = so_baseline_new();
		size_t from = nkeep;
		simulate(&agents[i], &ev[i], base[i], &p, 1, &warm, &seen, keep, &nkeep);
		for (size_t k = from; k < nkeep; k++)
			keep[k].agent = i;
	}
	report("warm: baselines learned over the 4 warm-up weeks, then the measured month", &warm, &p);
	for (int i = 0; i < nexample_fp; i++)
		printf("    e.g. false positive: %s\n", example_fp[i]);
	for (int k = 1; k < NINJECT; k++)
		if (example_caught[k][0])
			printf("    e.g. %s: %s\n", inject_names[k], example_caught[k]);

	memset(seen.caught, 0, ((size_t)next_id + 1) * sizeof(int));
	memset(seen.after_learning, 0, ((size_t)next_id + 1) * sizeof(int));
	for (int i = 0; i < nagents; i++) {
		so_baseline_t *b = so_baseline_new();
		simulate(&agents[i], &ev[i], b, &p, 0, &cold, &seen, NULL, NULL);
		so_baseline_free(b);
	}
	report("cold: empty baselines at the start of the measured month", &cold, &p);

	/* Scoring cost: the final warm baselines, every measured request, `passes` times. */
	so_anomaly_result_t r;
	double *pass_ns = calloc((size_t)passes, sizeof(double));
	long flagged_in_timing = 0;
	for (int pass = 0; pass < passes; pass++) {
		double t0 = now_ns();
		for (size_t k = 0; k < nkeep; k++)
			so_anomaly_score(base[keep[k].agent], &p, agents[keep[k].agent].name, &keep[k].f,
			                 keep[k].t, &r);
		pass_ns[pass] = (now_ns() - t0) / (double)nkeep;
	}
	double *one = malloc(nkeep * sizeof(double));
	double timer = now_ns();
	for (int k = 0; k < 1000; k++)
		(void)now_ns();
	timer = (now_ns() - timer) / 1001;
	for (size_t k = 0; k < nkeep; k++) {
		double t0 = now_ns();
		so_anomaly_score(base[keep[k].agent], &p, agents[keep[k].agent].name, &keep[k].f,
		                 keep[k].t, &r);
		one[k] = now_ns() - t0;
		flagged_in_timing += r.nreasons > 0;
	}
	qsort(pass_ns, (size_t)passes, sizeof(double), cmp_double);
	qsort(one, nkeep, sizeof(double), cmp_double);
	printf("\nscoring cost (so_anomaly_score on the final warm baselines, %zu measured-month "
	       "requests x %d passes; %ld of them give reasons):\n", nkeep, passes, flagged_in_timing);
	printf("  %.0f ns per call (median pass; passes %.0f-%.0f ns) (aim < 5000 ns)\n",
	       pass_ns[passes / 2], pass_ns[0], pass_ns[passes - 1]);
	printf("  each call timed alone: p50 %.0f ns, p99 %.0f ns, max %.0f ns (a timer pair costs "
	       "%.0f ns)\n", one[nkeep / 2], one[(size_t)((double)nkeep * 0.99)], one[nkeep - 1], timer);
	double *bytes = calloc((size_t)nagents, sizeof(double));
	for (int i = 0; i < nagents; i++) {
		json_t *doc = so_baseline_to_json(base[i]);
		char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
		bytes[i] = text ? (double)strlen(text) : 0;
		free(text);
		json_decref(doc);
	}
	qsort(bytes, (size_t)nagents, sizeof(double), cmp_double);
	printf("memory:   a baseline is a fixed %zu bytes in memory (sizeof); persisted (compact JSON) "
	       "%.0f-%.0f bytes, median %.0f, at the end of the month\n", so_baseline_sizeof(), bytes[0],
	       bytes[nagents - 1], bytes[nagents / 2]);
	free(bytes);

	for (int i = 0; i < nagents; i++) {
		so_baseline_free(base[i]);
		free(ev[i].v);
	}
	free(base);
	free(ev);
	free(agents);
	free(keep);
	free(one);
	free(pass_ns);
	free(seen.caught);
	free(seen.after_learning);
	return 0;
}
