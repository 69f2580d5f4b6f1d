/*
 * bench/policy/bench.c: how fast so_policy_decide() decides.
 *
 *   bench CONFIG.yaml REQUESTS.jsonl OUTCOMES.txt [PASSES [WARMUP]]
 *
 * Loads CONFIG with so_config_load_text() (principals + policy, as signoffd does), builds
 * one so_request_t per line of REQUESTS (so_core_new_request() with a fixed clock and fixed
 * random bytes; each line is {"requester", "now_ms", "body"}), then decides the first WARMUP
 * requests (default: all) as a warm-up and every request PASSES times (default 3) for the
 * figures. Each call is timed on its
 * own with clock_gettime(CLOCK_MONOTONIC); its decision is freed after the clock stops.
 *
 * Prints one JSON object on stdout: decisions per second (requests decided / wall time of
 * the measured passes, freeing included), p50/p90/p99/max of the per-call times, the
 * outcome counts of the last pass, and the cost of an empty timer pair. Writes the outcome
 * of each request (allow, review, deny or refused), one a line, to OUTCOMES.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "core/core.h"
#include "daemon/config.h"
#include "policy/policy.h"

static double
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int
cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double
pct(const double *sorted, size_t n, double p)
{
	size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return sorted[i < n ? i : n - 1];
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = malloc((size_t)n + 1);
	if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
		free(s);
		s = NULL;
	}
	if (s)
		s[n] = 0;
	fclose(f);
	return s;
}

int
main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s CONFIG.yaml REQUESTS.jsonl OUTCOMES.txt [PASSES [WARMUP]]\n",
		        argv[0]);
		return 2;
	}
	int passes = argc > 4 ? atoi(argv[4]) : 3;
	if (passes < 1)
		passes = 1;
	long warmup = argc > 5 ? atol(argv[5]) : -1; /* requests in the warm-up pass; -1: all */

	/* The configuration, loaded as signoffd loads it. */
	char *text = slurp(argv[1]);
	if (!text) {
		perror(argv[1]);
		return 1;
	}
	so_config_t cfg;
	char err[1024];
	double t0 = now_ns();
	if (so_config_load_text(text, argv[1], &cfg, err, sizeof(err)) != SO_OK) {
		fprintf(stderr, "%s: %s\n", argv[1], err);
		return 1;
	}
	double load_ms = (now_ns() - t0) / 1e6;
	free(text);

	/* The requests, built as the API builds them (fixed clock and random bytes). */
	FILE *f = fopen(argv[2], "r");
	if (!f) {
		perror(argv[2]);
		return 1;
	}
	size_t cap = 16384, n = 0;
	so_request_t **reqs = malloc(cap * sizeof(*reqs));
	int64_t *nows = malloc(cap * sizeof(*nows));
	char *line = NULL;
	size_t linecap = 0;
	const int64_t fixed_now = 1772409600000; /* 2026-03-02T00:00:00Z */
	while (getline(&line, &linecap, f) > 0) {
		json_error_t jerr;
		json_t *o = json_loads(line, 0, &jerr);
		if (!o) {
			fprintf(stderr, "%s:%zu: %s\n", argv[2], n + 1, jerr.text);
			return 1;
		}
		const char *who = json_string_value(json_object_get(o, "requester"));
		const so_principal_t *p = who ? so_directory_find(&cfg.directory, who) : NULL;
		if (!p) {
			fprintf(stderr, "%s:%zu: unknown requester\n", argv[2], n + 1);
			return 1;
		}
		if (n == cap) {
			cap *= 2;
			reqs = realloc(reqs, cap * sizeof(*reqs));
			nows = realloc(nows, cap * sizeof(*nows));
		}
		unsigned char rnd[10];
		for (int k = 0; k < 10; k++)
			rnd[k] = (unsigned char)((n >> (8 * (k % 4))) + k);
		so_core_err_t cerr;
		if (so_core_new_request(&cfg.directory, p, json_object_get(o, "body"), fixed_now, rnd,
		                        &reqs[n], &cerr) != SO_OK) {
			fprintf(stderr, "%s:%zu: %s\n", argv[2], n + 1, cerr.message);
			return 1;
		}
		nows[n] = json_integer_value(json_object_get(o, "now_ms"));
		n++;
		json_decref(o);
	}
	free(line);
	fclose(f);
	if (!n) {
		fprintf(stderr, "%s: no requests\n", argv[2]);
		return 1;
	}

	/* The cost of the timer itself (an empty pair), for reading the small figures. */
	double *lat = malloc((size_t)passes * n * sizeof(*lat));
	for (size_t i = 0; i < n; i++) {
		double a = now_ns();
		lat[i] = now_ns() - a;
	}
	qsort(lat, n, sizeof(*lat), cmp_dbl);
	double timer_ns = pct(lat, n, 50);

	/* Warm-up, then the measured passes. */
	char *outcome = malloc(n);
	long counts[4] = {0};
	double wall = 0;
	size_t nlat = 0;
	for (int pass = 0; pass <= passes; pass++) {
		memset(counts, 0, sizeof(counts));
		double w0 = now_ns();
		size_t upto = pass || warmup < 0 || (size_t)warmup > n ? n : (size_t)warmup;
		for (size_t i = 0; i < upto; i++) {
			so_decision_t d;
			so_core_err_t refusal;
			double a = now_ns();
			int rc = so_policy_decide(&cfg.policy, &cfg.directory, reqs[i], nows[i], &d, &refusal);
			double b = now_ns();
			if (pass)
				lat[nlat++] = b - a;
			int o;
			if (rc == SO_OK) {
				o = (int)d.outcome;
				so_decision_clear(&d);
			} else if (rc == SO_EINVAL) {
				o = 3;
			} else {
				fprintf(stderr, "so_policy_decide: %d\n", rc);
				return 1;
			}
			outcome[i] = (char)o;
			counts[o]++;
		}
		if (pass)
			wall += now_ns() - w0;
	}
	qsort(lat, nlat, sizeof(*lat), cmp_dbl);
	double sum = 0;
	for (size_t i = 0; i < nlat; i++)
		sum += lat[i];

	static const char *const names[] = {"allow", "review", "deny", "refused"};
	FILE *out = fopen(argv[3], "w");
	if (!out) {
		perror(argv[3]);
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s\n", names[(int)outcome[i]]);
	fclose(out);

	printf("{\"engine\": \"signoff\", \"rules\": %zu, \"requests\": %zu, \"passes\": %d, "
	       "\"load_ms\": %.1f, \"decisions_per_s\": %.0f, \"mean_us\": %.3f, \"p50_us\": %.3f, "
	       "\"p90_us\": %.3f, \"p99_us\": %.3f, \"max_us\": %.3f, \"timer_ns\": %.0f, "
	       "\"counts\": {\"allow\": %ld, \"review\": %ld, \"deny\": %ld, \"refused\": %ld}}\n",
	       cfg.policy.nrules, n, passes, load_ms, (double)nlat / (wall / 1e9),
	       sum / (double)nlat / 1e3,
	       pct(lat, nlat, 50) / 1e3, pct(lat, nlat, 90) / 1e3, pct(lat, nlat, 99) / 1e3,
	       lat[nlat - 1] / 1e3, timer_ns, counts[0], counts[1], counts[2], counts[3]);

	for (size_t i = 0; i < n; i++)
		so_request_free(reqs[i]);
	free(reqs);
	free(nows);
	free(lat);
	free(outcome);
	so_config_free(&cfg);
	return 0;
}
