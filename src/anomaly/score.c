/*
 * Scoring: each signal that fires gives a strength s_i in (0, 1) and a reason naming its
 * evidence; the score is 1 - prod(1 - s_i). Nothing here allocates or changes the baseline.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "anomaly/internal.h"

/* Strengths. One signal at 0.5 or more reaches the default threshold on its own. */
#define S_VERB 0.6       /* a kind + verb it has not used */
#define S_ENV 0.6        /* an environment it has not acted in */
#define S_SHAPE_ENV 0.5  /* a known verb in a known environment, never together */
#define S_PREFIX 0.3     /* a resource prefix it has not touched: only with another signal */
#define S_HOURS 0.5      /* an hour of day, or a day of week, it does not act in */
#define S_HOURS_BOTH 0.6 /* both */
#define S_BURST_MIN 0.5  /* just over twice the reference; +0.2 per doubling, up to 0.9 */
#define S_BURST_STEP 0.2
#define S_BURST_MAX 0.9
#define S_VOLUME_MIN 0.5 /* just over 4x the largest; +0.1 per doubling, up to 0.95 */
#define S_VOLUME_STEP 0.1
#define S_VOLUME_MAX 0.95

/** Longest principal name quoted in a reason. */
#define PRINCIPAL_SHOWN 64
/** Below this weight, something was "never" seen rather than faded. */
#define NEVER_WEIGHT 0.01

const char *
so_anomaly_signal_name(int sig)
{
	static const char *const names[SO_ANOMALY_SIG__COUNT] = {
		[SO_ANOMALY_SIG_LEARNING] = "learning", [SO_ANOMALY_SIG_VERB] = "verb",
		[SO_ANOMALY_SIG_ENV] = "environment",   [SO_ANOMALY_SIG_SHAPE_ENV] = "verb_environment",
		[SO_ANOMALY_SIG_PREFIX] = "resource",   [SO_ANOMALY_SIG_HOURS] = "hours",
		[SO_ANOMALY_SIG_BURST] = "burst",       [SO_ANOMALY_SIG_VOLUME] = "volume",
	};
	return sig >= 0 && sig < SO_ANOMALY_SIG__COUNT ? names[sig] : "?";
}

/* What scoring one request needs at hand. */
struct judge {
	const so_baseline_t *b;
	const so_anomaly_params_t *p;
	const so_anomaly_features_t *f;
	int64_t now;
	double g; /* growth at now: stored weight / g = weight now */
	char who[PRINCIPAL_SHOWN];
	so_anomaly_result_t *out;
};

/* Start a reason for `sig` with strength `s`; the caller writes its words with text_add. */
static struct text
reason(struct judge *j, int sig, double s)
{
	struct text t = {0};
	so_anomaly_result_t *r = j->out;
	if (r->nreasons == SO_ANOMALY_MAX_REASONS)
		return t; /* cannot happen: there are fewer signals than reasons */
	r->signal[r->nreasons] = sig;
	r->strength[r->nreasons] = s;
	so_anomaly_text_init(&t, r->reasons[r->nreasons], SO_ANOMALY_REASON_LEN);
	r->nreasons++;
	return t;
}

static void
since(const struct judge *j, int64_t last, char *out, size_t cap)
{
	so_anomaly_fmt_duration(j->now - last, out, cap);
}

/* Up to three names of known slots, strongest first, as "staging, dev and sandbox". */
static void
list_known(struct text *t, const char *const *names, const double *weights, size_t n)
{
	size_t order[3];
	size_t k = 0;
	for (size_t pick = 0; pick < 3; pick++) {
		size_t best = n;
		for (size_t i = 0; i < n; i++) {
			int taken = 0;
			for (size_t q = 0; q < k; q++)
				taken |= order[q] == i;
			if (!taken && weights[i] >= SO_ANOMALY_KNOWN && (best == n || weights[i] > weights[best]))
				best = i;
		}
		if (best == n)
			break;
		order[k++] = best;
	}
	size_t more = 0;
	for (size_t i = 0; i < n; i++)
		more += weights[i] >= SO_ANOMALY_KNOWN;
	more -= k;
	for (size_t q = 0; q < k; q++) {
		const char *name = names[order[q]][0] ? names[order[q]] : "no named environment";
		so_anomaly_text_add(t, "%s%s", q == 0 ? "" : q + 1 == k && !more ? " and " : ", ", name);
	}
	if (more)
		so_anomaly_text_add(t, " and %zu more", more);
}

/* A signal past its threshold by `over` (> 1): `min`, plus `step` per doubling, at most `max`. */
static double
grown(double min, double step, double max, double over)
{
	double s = min + step * log2(over);
	return s > max ? max : s;
}

static double
verb_weight(const struct judge *j, int64_t *last, int *seen)
{
	double w = 0;
	*last = 0;
	*seen = 0;
	for (size_t i = 0; i < j->b->nshapes; i++) {
		const struct shape_slot *s = &j->b->shapes[i];
		if (s->verb_key != j->f->verb_key || strcmp(s->verb, j->f->verb) || strcmp(s->kind, j->f->kind))
			continue;
		w += s->wt.w;
		*seen = 1;
		if (s->wt.last > *last)
			*last = s->wt.last;
	}
	return w / j->g;
}

static const struct name_slot *
find_name(const struct name_slot *slots, size_t n, uint64_t key, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (slots[i].key == key && !strcmp(slots[i].name, name))
			return &slots[i];
	return NULL;
}

static void
judge_shape(struct judge *j)
{
	const so_anomaly_features_t *f = j->f;
	const so_baseline_t *b = j->b;
	char doing[SO_ANOMALY_VERB_LEN + SO_ANOMALY_KIND_LEN + 32], ago[32];
	int64_t last;
	int seen;
	double wv = verb_weight(j, &last, &seen);
	const struct name_slot *env = f->environment[0]
	                                  ? find_name(b->envs, b->nenvs, f->env_key, f->environment)
	                                  : NULL;
	double we = env ? env->wt.w / j->g : 0;

	so_anomaly_fmt_doing(f->kind, f->verb, doing, sizeof(doing));
	if (wv < SO_ANOMALY_KNOWN) {
		struct text t = reason(j, SO_ANOMALY_SIG_VERB, S_VERB);
		if (seen && wv >= NEVER_WEIGHT) {
			since(j, last, ago, sizeof(ago));
			so_anomaly_text_add(&t, "first time in %s that %s %s", ago, j->who, doing);
		} else {
			so_anomaly_text_add(&t, "first time %s %s", j->who, doing);
		}
		if (f->environment[0] && we >= SO_ANOMALY_KNOWN)
			so_anomaly_text_add(&t, " in %s", f->environment);
	}

	if (f->environment[0] && we < SO_ANOMALY_KNOWN) {
		struct text t = reason(j, SO_ANOMALY_SIG_ENV, S_ENV);
		if (env && we >= NEVER_WEIGHT) {
			since(j, env->wt.last, ago, sizeof(ago));
			so_anomaly_text_add(&t, "first time in %s that %s acted in %s", ago, j->who,
			                    f->environment);
		} else {
			so_anomaly_text_add(&t, "first time %s acted in %s", j->who, f->environment);
		}
		const char *names[SO_ANOMALY_ENVS];
		double weights[SO_ANOMALY_ENVS];
		for (size_t i = 0; i < b->nenvs; i++) {
			names[i] = b->envs[i].name;
			weights[i] = b->envs[i].wt.w / j->g;
		}
		size_t known = 0;
		for (size_t i = 0; i < b->nenvs; i++)
			known += weights[i] >= SO_ANOMALY_KNOWN;
		if (known) {
			so_anomaly_text_add(&t, "; before, only in ");
			list_known(&t, names, weights, b->nenvs);
		} else {
			so_anomaly_text_add(&t, "; before, it never named an environment");
		}
	}

	/* A known verb in a known environment, never together. */
	if (f->environment[0] && wv >= SO_ANOMALY_KNOWN && we >= SO_ANOMALY_KNOWN) {
		const char *names[SO_ANOMALY_SHAPES];
		double weights[SO_ANOMALY_SHAPES], here = 0;
		size_t n = 0;
		for (size_t i = 0; i < b->nshapes; i++) {
			const struct shape_slot *s = &b->shapes[i];
			if (s->verb_key != f->verb_key || strcmp(s->verb, f->verb) || strcmp(s->kind, f->kind))
				continue;
			if (s->key == f->shape_key && !strcmp(s->env, f->environment))
				here = s->wt.w / j->g;
			names[n] = s->env;
			weights[n++] = s->wt.w / j->g;
		}
		if (here < SO_ANOMALY_KNOWN) {
			struct text t = reason(j, SO_ANOMALY_SIG_SHAPE_ENV, S_SHAPE_ENV);
			so_anomaly_text_add(&t, "first time %s %s in %s; before, only in ", j->who, doing,
			                    f->environment);
			list_known(&t, names, weights, n);
		}
	}

	if (f->prefix[0]) {
		const struct name_slot *px = find_name(b->prefixes, b->nprefixes, f->prefix_key, f->prefix);
		double wp = px ? px->wt.w / j->g : 0;
		if (wp < SO_ANOMALY_KNOWN) {
			struct text t = reason(j, SO_ANOMALY_SIG_PREFIX, S_PREFIX);
			size_t len = strlen(f->prefix);
			int under = f->prefix[len - 1] == '/' || f->prefix[len - 1] == ':';
			if (px && wp >= NEVER_WEIGHT) {
				since(j, px->wt.last, ago, sizeof(ago));
				so_anomaly_text_add(&t, "first time in %s that %s touched ", ago, j->who);
			} else {
				so_anomaly_text_add(&t, "first time %s touched ", j->who);
			}
			so_anomaly_text_add(&t, under ? "a resource under `%s`" : "`%s`", f->prefix);
		}
	}
}

/* The per-hour-of-day and per-day masses (weights now), for the words. */
static void
usual_time(const struct judge *j, int day, char *hours, size_t hcap, char *days, size_t dcap)
{
	double hod[24] = {0}, dow[7] = {0};
	for (int d = 0; d < 7; d++) {
		for (int h = 0; h < 24; h++) {
			double w = j->b->hours[d * 24 + h] / j->g;
			if (day < 0 || d == day)
				hod[h] += w;
			dow[d] += w;
		}
	}
	if (day >= 0)
		for (int d = 0; d < 7; d++)
			dow[d] = SO_ANOMALY_KNOWN; /* one day's hours: say nothing of days */
	so_anomaly_fmt_usual_time(hod, dow, hours, hcap, days, dcap);
}

/*
 * Off-hours: the hour of day (within an hour either side) or the day of week was never
 * learned; or both were, but never together while independence would have predicted at
 * least HOUR_OF_WEEK_EXPECTED requests there. Weights are compared raw (forward-decayed),
 * against thresholds scaled by g, so nothing is divided.
 */
static void
judge_hours(struct judge *j)
{
	const double *w = j->b->hours;
	int how = so_anomaly_hour_of_week(j->now, j->p->tz_offset_minutes);
	int d = how / 24, h = how % 24;
	double at[3] = {0}, day = 0; /* hour of day h-1, h, h+1 over all days; day d */
	for (int k = 0; k < 7; k++)
		for (int q = 0; q < 3; q++)
			at[q] += w[k * 24 + (h + 23 + q) % 24];
	for (int q = 0; q < 24; q++)
		day += w[d * 24 + q];
	double near = at[1] + 0.5 * (at[0] + at[2]);
	double known = SO_ANOMALY_KNOWN * j->g;
	int hour_off = near < known, day_off = day < known, week_off = 0;
	if (!hour_off && !day_off) {
		double here = w[how] + 0.5 * (w[(how + 167) % 168] + w[(how + 1) % 168]);
		double total = j->b->learned_w;
		week_off = here < known && total > 0 &&
		           near * day / total >= HOUR_OF_WEEK_EXPECTED * j->g;
		if (!week_off)
			return;
	}

	char hours[96], days[64];
	int64_t local_min = j->now / MS_PER_MINUTE + j->p->tz_offset_minutes;
	int minute = (int)(((local_min % 60) + 60) % 60);
	const char *name = so_anomaly_weekday[d];
	struct text t = reason(j, SO_ANOMALY_SIG_HOURS, hour_off && day_off ? S_HOURS_BOTH : S_HOURS);
	so_anomaly_text_add(&t, "active at %02d:%02d %s; ", h, minute, name);
	if (week_off) {
		usual_time(j, d, hours, sizeof(hours), days, sizeof(days));
		so_anomaly_text_add(&t, "on %ss, never before outside %s", name, hours);
		return;
	}
	usual_time(j, -1, hours, sizeof(hours), days, sizeof(days));
	if (hour_off) {
		int never = near < NEVER_WEIGHT * j->g && (!day_off || day < NEVER_WEIGHT * j->g);
		so_anomaly_text_add(&t, never ? "never before outside %s%s%s"
		                              : "not at this hour lately (usually %s%s%s)",
		                    hours, hours[0] && days[0] ? " " : "", days);
	} else {
		so_anomaly_text_add(&t, "%s only %s", day < NEVER_WEIGHT * j->g ? "before," : "lately,",
		                    days);
	}
}

static void
judge_burst(struct judge *j)
{
	static const char *const in[NWINDOWS] = {"a minute", "10 minutes"};
	static const char *const busiest[NWINDOWS] = {"busiest minute", "busiest 10 minutes"};
	const so_baseline_t *b = j->b;
	double rate = b->active_hours_w > 0 ? b->submitted_w / b->active_hours_w : 0;
	double best_s = 0, best_k = 0, best_peak = 0;
	int best = -1, best_sat = 0;

	for (int w = 0; w < NWINDOWS; w++) {
		int64_t len = so_anomaly_window_ms[w];
		int sat = 0;
		double k = (double)so_anomaly_recent_count(b, j->now, len, &sat) + 1;
		const struct window_peak *wp = &b->windows[w];
		/* The busiest learned window as it weighs now, and as it was seen (for the words). */
		double peak = so_anomaly_peak_at(b, &wp->peak, j->now), seen = wp->peak.value;
		if (wp->pending > 0 && j->now - wp->pending_at >= len) {
			struct peak pend = {wp->pending, wp->pending_at};
			double v = so_anomaly_peak_at(b, &pend, j->now);
			if (v > peak) {
				peak = v;
				seen = wp->pending;
			}
		}
		double ref = peak;
		double usual = rate * (double)len / (double)MS_PER_HOUR * BURST_RATE_FACTOR;
		if (usual > ref)
			ref = usual;
		if (so_anomaly_window_floor[w] > ref)
			ref = so_anomaly_window_floor[w];
		if (k <= BURST_RATIO * ref)
			continue;
		double s = grown(S_BURST_MIN, S_BURST_STEP, S_BURST_MAX, k / (BURST_RATIO * ref));
		if (s > best_s) {
			best_s = s;
			best = w;
			best_k = k;
			best_peak = seen;
			best_sat = sat;
		}
	}
	if (best < 0)
		return;
	char k[32], usual[48], peak[32];
	so_anomaly_fmt_number(best_k, k, sizeof(k));
	so_anomaly_fmt_rate(rate, usual, sizeof(usual));
	so_anomaly_fmt_number(best_peak, peak, sizeof(peak));
	struct text t = reason(j, SO_ANOMALY_SIG_BURST, best_s);
	so_anomaly_text_add(&t, "%s%s requests in %s; usual is %s when active (%s before: %s)",
	                    best_sat ? "at least " : "", k, in[best], usual, busiest[best], peak);
}

/* "2,000,000 rows", "5,000,000,000 bytes (5.0 GB)", "a size of 12". */
static void
add_amount(struct text *t, int size, double v)
{
	char n[32];
	so_anomaly_fmt_number(v, n, sizeof(n));
	switch (size) {
	case SO_ANOMALY_SIZE_ROWS:
	case SO_ANOMALY_SIZE_ROW_COUNT: so_anomaly_text_add(t, "%s rows", n); break;
	case SO_ANOMALY_SIZE_RECORDS: so_anomaly_text_add(t, "%s records", n); break;
	case SO_ANOMALY_SIZE_FILES: so_anomaly_text_add(t, "%s files", n); break;
	case SO_ANOMALY_SIZE_COUNT: so_anomaly_text_add(t, "a count of %s", n); break;
	case SO_ANOMALY_SIZE_SIZE: so_anomaly_text_add(t, "a size of %s", n); break;
	case SO_ANOMALY_SIZE_BYTES:
		so_anomaly_text_add(t, "%s bytes", n);
		if (v >= 1e6) {
			static const char *const unit[] = {"MB", "GB", "TB", "PB"};
			int u = 0;
			double x = v / 1e6;
			while (x >= 1000 && u < 3)
				x /= 1000, u++;
			so_anomaly_text_add(t, " (%.1f %s)", x, unit[u]);
		}
		break;
	default: so_anomaly_text_add(t, "%s bytes of arguments", n); break;
	}
}

/* The shape slot of the request (kind, verb and environment), or NULL. */
static const struct shape_slot *
find_shape(const struct judge *j)
{
	for (size_t i = 0; i < j->b->nshapes; i++) {
		const struct shape_slot *s = &j->b->shapes[i];
		if (s->key == j->f->shape_key && !strcmp(s->verb, j->f->verb) &&
		    !strcmp(s->kind, j->f->kind) && !strcmp(s->env, j->f->environment))
			return s;
	}
	return NULL;
}

/*
 * Volume: a size far above its decayed largest: the shape's own once it has learned that
 * size SHAPE_SIZE_MIN_WEIGHT times, else the principal's. Never declared before: silent.
 */
static void
judge_volume(struct judge *j)
{
	const so_baseline_t *b = j->b;
	const struct shape_slot *shape = NULL;
	const struct size_stat *best_st = NULL;
	int best = -1, looked = 0, best_own = 0;
	double best_s = 0, best_ref = 0;

	for (int i = 0; i < SO_ANOMALY_NSIZES; i++) {
		double v = j->f->sizes[i];
		if (!(v >= 0))
			continue;
		if (!looked) {
			shape = find_shape(j);
			looked = 1;
		}
		const struct size_stat *st = NULL;
		int own = 0;
		for (size_t k = 0; shape && k < SHAPE_SIZES; k++) {
			const struct shape_size *ss = &shape->sizes[k];
			if (ss->used && ss->size == i && ss->st.n >= SHAPE_SIZE_MIN_WEIGHT * j->g) {
				st = &ss->st;
				own = 1;
			}
		}
		if (!st)
			st = &b->sizes[i];
		if (st->n <= 0 && st->peak.value <= 0)
			continue; /* never declared before: nothing to compare with */
		double ref = so_anomaly_peak_at(b, &st->peak, j->now);
		double floor = i == SO_ANOMALY_SIZE_ARG_BYTES ? ARG_BYTES_FLOOR : 1;
		double r = v / (ref > floor ? ref : floor);
		if (r <= VOLUME_RATIO)
			continue;
		double s = grown(S_VOLUME_MIN, S_VOLUME_STEP, S_VOLUME_MAX, r / VOLUME_RATIO);
		if (s > best_s) {
			best_s = s;
			best = i;
			best_ref = ref;
			best_st = st;
			best_own = own;
		}
	}
	if (best < 0)
		return;
	char shape_words[SO_ANOMALY_VERB_LEN + SO_ANOMALY_KIND_LEN + 16], n[32], ago[32];
	so_anomaly_fmt_shape(j->f->kind, j->f->verb, shape_words, sizeof(shape_words));
	struct text t = reason(j, SO_ANOMALY_SIG_VOLUME, best_s);
	int args = best == SO_ANOMALY_SIZE_ARG_BYTES;
	so_anomaly_text_add(&t, "%s %s ", shape_words, args ? "with" : "of");
	add_amount(&t, best, j->f->sizes[best]);
	so_anomaly_fmt_number(best_st->peak.value, n, sizeof(n));
	since(j, best_st->peak.at, ago, sizeof(ago));
	if (best_own)
		so_anomaly_text_add(&t, "; its largest before was %s (%s ago)", n, ago);
	else
		so_anomaly_text_add(&t, "; the largest %s %s before was %s (%s ago)", j->who,
		                    args ? "sent" : "declared", n, ago);
	if (best_ref < 0.75 * best_st->peak.value) {
		so_anomaly_fmt_number(best_ref, n, sizeof(n));
		so_anomaly_text_add(&t, ", which has faded to %s", n);
	}
}

static void
judge_learning(struct judge *j)
{
	const so_baseline_t *b = j->b;
	char over[32], period[32];
	/* Never 0, whatever the settings say: a new principal is never silently trusted. */
	double score = j->p->learning_score > 0 && j->p->learning_score <= 1 ? j->p->learning_score : 0.5;
	struct text t = reason(j, SO_ANOMALY_SIG_LEARNING, score);
	so_anomaly_text_add(&t, "%s is new to signoff (", j->who);
	if (!b || b->learned == 0) {
		so_anomaly_text_add(&t, "nothing learned yet");
	} else {
		since(j, b->first_learned, over, sizeof(over));
		so_anomaly_text_add(&t, "%u request%s learned over %s", b->learned,
		                    b->learned == 1 ? "" : "s", over);
	}
	so_anomaly_fmt_duration(j->p->learning_ms, period, sizeof(period));
	so_anomaly_text_add(&t, "); everything it does counts as unusual until it has %u learned "
	                        "requests over %s", j->p->learning_events, period);
	j->out->score = score;
}

/* Strongest first; equal strengths keep their order. */
static void
sort_reasons(so_anomaly_result_t *r)
{
	char tmp[SO_ANOMALY_REASON_LEN];
	for (size_t i = 1; i < r->nreasons; i++) {
		for (size_t k = i; k > 0 && r->strength[k] > r->strength[k - 1]; k--) {
			double s = r->strength[k];
			int sig = r->signal[k];
			memcpy(tmp, r->reasons[k], sizeof(tmp));
			r->strength[k] = r->strength[k - 1];
			r->signal[k] = r->signal[k - 1];
			memcpy(r->reasons[k], r->reasons[k - 1], sizeof(tmp));
			r->strength[k - 1] = s;
			r->signal[k - 1] = sig;
			memcpy(r->reasons[k - 1], tmp, sizeof(tmp));
		}
	}
}

void
so_anomaly_score(const so_baseline_t *b, const so_anomaly_params_t *p, const char *principal,
                 const so_anomaly_features_t *f, int64_t now_ms, so_anomaly_result_t *out)
{
	so_anomaly_params_t defaults;
	if (!p) {
		so_anomaly_params_default(&defaults);
		p = &defaults;
	}
	struct judge j = {.b = b, .p = p, .f = f, .now = so_anomaly_clamp_ms(now_ms), .out = out};
	out->score = 0;
	out->nreasons = 0;
	principal = principal && principal[0] ? principal : "this principal";
	so_anomaly_copy_name(j.who, sizeof(j.who), principal, strlen(principal));

	if (so_baseline_is_learning(b, p, j.now)) {
		judge_learning(&j);
		return;
	}
	j.g = so_anomaly_growth(b, j.now);
	judge_shape(&j);
	judge_hours(&j);
	judge_burst(&j);
	judge_volume(&j);

	double keep = 1;
	for (size_t i = 0; i < out->nreasons; i++)
		keep *= 1 - out->strength[i];
	out->score = round((1 - keep) * 1000) / 1000;
	sort_reasons(out);
}

json_t *
so_anomaly_result_to_json(const so_anomaly_result_t *r)
{
	json_t *reasons = json_array();
	json_t *o = reasons ? json_pack("{s:f, s:o}", "score", r->score, "reasons", reasons) : NULL;
	if (!o)
		return NULL;
	for (size_t i = 0; i < r->nreasons && i < SO_ANOMALY_MAX_REASONS; i++) {
		if (json_array_append_new(reasons, json_string(r->reasons[i]))) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}
