/*
 * A principal's baseline: learning, counting submissions, decay, and the persisted form.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "anomaly/internal.h"
#include "common/error.h"

const int64_t so_anomaly_window_ms[NWINDOWS] = {MS_PER_MINUTE, 10 * MS_PER_MINUTE};
const double so_anomaly_window_floor[NWINDOWS] = {3, 6};

/** Bounds on the persisted form's numbers. */
#define MAX_WEIGHT 1e15
#define MAX_HALF_LIFE_DAYS 3650.0
#define MIN_HALF_LIFE_DAYS 0.01

void
so_anomaly_params_default(so_anomaly_params_t *p)
{
	p->learning_ms = 7 * MS_PER_DAY;
	p->learning_events = 20;
	p->learning_score = 0.5;
	p->half_life_days = 30;
	p->threshold = 0.5;
	p->tz_offset_minutes = 0;
}

int
so_anomaly_params_check(const so_anomaly_params_t *p, char *err, size_t errlen)
{
	const char *what = NULL;
	if (p->learning_ms < 0 || p->learning_ms > 365 * MS_PER_DAY)
		what = "the learning period must be between 0 and 365 days";
	else if (p->learning_events > 100000)
		what = "the learning period's request count must be at most 100000";
	else if (!(p->learning_score > 0 && p->learning_score <= 1))
		what = "the learning score must be above 0 and at most 1";
	else if (!(p->threshold >= 0 && p->threshold <= 1))
		what = "the threshold must be between 0 and 1";
	else if (!(p->half_life_days >= MIN_HALF_LIFE_DAYS && p->half_life_days <= MAX_HALF_LIFE_DAYS))
		what = "the half-life must be between 0.01 and 3650 days";
	else if (p->tz_offset_minutes < -840 || p->tz_offset_minutes > 840)
		what = "the time zone offset must be between -840 and 840 minutes";
	if (what && err && errlen)
		snprintf(err, errlen, "%s", what);
	return what ? SO_EINVAL : SO_OK;
}

so_baseline_t *
so_baseline_new(void)
{
	so_baseline_t *b = calloc(1, sizeof(*b));
	if (b)
		b->last_hour = -1;
	return b;
}

void
so_baseline_free(so_baseline_t *b)
{
	free(b);
}

size_t
so_baseline_sizeof(void)
{
	return sizeof(struct so_baseline);
}

int64_t
so_anomaly_clamp_ms(int64_t ms)
{
	return ms < 0 ? 0 : ms > SO_ANOMALY_MAX_MS ? SO_ANOMALY_MAX_MS : ms;
}

double
so_anomaly_growth(const so_baseline_t *b, int64_t t)
{
	if (b->half_life_ms <= 0)
		return 1;
	double e = (double)(t - b->t0) / b->half_life_ms;
	return exp2(e < -900 ? -900 : e > 900 ? 900 : e);
}

double
so_anomaly_weight_at(const so_baseline_t *b, double w, int64_t now)
{
	return w / so_anomaly_growth(b, now);
}

double
so_anomaly_peak_at(const so_baseline_t *b, const struct peak *pk, int64_t now)
{
	if (pk->value <= 0 || b->half_life_ms <= 0 || now <= pk->at)
		return pk->value;
	double e = (double)(now - pk->at) / b->half_life_ms;
	return pk->value * exp2(e > 900 ? -900 : -e);
}

size_t
so_anomaly_recent_count(const so_baseline_t *b, int64_t now, int64_t window, int *saturated)
{
	size_t n = 0;
	int64_t oldest = INT64_MAX;
	for (size_t i = 0; i < b->nrecent; i++) {
		int64_t t = b->recent[i];
		if (t > now - window && t <= now)
			n++;
		if (t < oldest)
			oldest = t;
	}
	if (saturated)
		*saturated = b->nrecent == SO_ANOMALY_RECENT && oldest > now - window;
	return n;
}

/* Every forward-decayed weight, for rebasing. */
static void
scale_weights(so_baseline_t *b, double f)
{
	for (size_t i = 0; i < b->nshapes; i++) {
		b->shapes[i].wt.w *= f;
		for (size_t k = 0; k < SHAPE_SIZES; k++)
			b->shapes[i].sizes[k].st.n *= f;
	}
	for (size_t i = 0; i < b->nenvs; i++)
		b->envs[i].wt.w *= f;
	for (size_t i = 0; i < b->nprefixes; i++)
		b->prefixes[i].wt.w *= f;
	for (size_t i = 0; i < SO_ANOMALY_HOURS; i++)
		b->hours[i] *= f;
	for (size_t i = 0; i < SO_ANOMALY_NSIZES; i++)
		b->sizes[i].n *= f;
	b->learned_w *= f;
	b->submitted_w *= f;
	b->active_hours_w *= f;
}

/* Make the weights read as of `t` with the reference at `t`. */
static void
rebase(so_baseline_t *b, int64_t t)
{
	scale_weights(b, 1 / so_anomaly_growth(b, t));
	b->t0 = t;
}

/*
 * Before a change at `t`: adopt the configured half-life (rebasing first when it changed,
 * so the weights so far keep the decay they were made with), and rebase when the reference
 * has grown old.
 */
static void
prepare(so_baseline_t *b, const so_anomaly_params_t *p, int64_t t)
{
	double days = p->half_life_days;
	if (!(days >= MIN_HALF_LIFE_DAYS))
		days = MIN_HALF_LIFE_DAYS;
	if (days > MAX_HALF_LIFE_DAYS)
		days = MAX_HALF_LIFE_DAYS;
	if (b->half_life_days <= 0) {
		if (b->t0 == 0)
			b->t0 = t;
	} else if (b->half_life_days != days && t > b->t0) {
		rebase(b, t);
	}
	b->half_life_days = days;
	b->half_life_ms = days * (double)MS_PER_DAY;
	if ((double)(t - b->t0) > REBASE_HALF_LIVES * b->half_life_ms)
		rebase(b, t);
}

static void
add_weight(struct weight *wt, double g, int64_t t)
{
	wt->w += g;
	if (t > wt->last)
		wt->last = t;
}

/* The slot to learn into: the matching one, a free one, or the weakest one evicted. */
static size_t
weakest(const struct weight *first, size_t stride, size_t n)
{
	size_t best = 0;
	for (size_t i = 1; i < n; i++) {
		const struct weight *a = (const struct weight *)((const char *)first + i * stride);
		const struct weight *w = (const struct weight *)((const char *)first + best * stride);
		if (a->w < w->w || (a->w == w->w && a->last < w->last))
			best = i;
	}
	return best;
}

static struct shape_slot *
learn_shape(so_baseline_t *b, const so_anomaly_features_t *f, double g, int64_t t)
{
	size_t i;
	for (i = 0; i < b->nshapes; i++) {
		const struct shape_slot *s = &b->shapes[i];
		if (s->key == f->shape_key && !strcmp(s->kind, f->kind) && !strcmp(s->verb, f->verb) &&
		    !strcmp(s->env, f->environment))
			break;
	}
	if (i == b->nshapes) {
		if (b->nshapes < SO_ANOMALY_SHAPES)
			b->nshapes++;
		else
			i = weakest(&b->shapes[0].wt, sizeof(b->shapes[0]), b->nshapes);
		struct shape_slot *s = &b->shapes[i];
		memset(s, 0, sizeof(*s));
		s->key = f->shape_key;
		s->verb_key = f->verb_key;
		s->env_key = f->env_key;
		memcpy(s->kind, f->kind, sizeof(s->kind));
		memcpy(s->verb, f->verb, sizeof(s->verb));
		memcpy(s->env, f->environment, sizeof(s->env));
	}
	add_weight(&b->shapes[i].wt, g, t);
	return &b->shapes[i];
}

static void
learn_name(struct name_slot *slots, size_t *n, size_t max, uint64_t key, const char *name,
           double g, int64_t t)
{
	size_t i;
	for (i = 0; i < *n; i++)
		if (slots[i].key == key && !strcmp(slots[i].name, name))
			break;
	if (i == *n) {
		if (*n < max)
			(*n)++;
		else
			i = weakest(&slots[0].wt, sizeof(slots[0]), *n);
		memset(&slots[i], 0, sizeof(slots[i]));
		slots[i].key = key;
		so_anomaly_copy_name(slots[i].name, sizeof(slots[i].name), name, strlen(name));
	}
	add_weight(&slots[i].wt, g, t);
}

/* Raise a decayed maximum to `v` seen at `t` when `v` is at least what it weighs then. */
static void
raise_peak(const so_baseline_t *b, struct peak *pk, double v, int64_t t)
{
	if (v >= so_anomaly_peak_at(b, pk, t)) {
		pk->value = v;
		pk->at = t;
	}
}

static void
learn_size(const so_baseline_t *b, struct size_stat *st, double v, double g, int64_t t)
{
	st->n += g;
	raise_peak(b, &st->peak, v, t);
}

/* A shape's record of size `size`: its own, a free one, or NULL when both are taken. */
static struct shape_size *
shape_size(struct shape_slot *s, int size)
{
	struct shape_size *free_one = NULL;
	for (size_t k = 0; k < SHAPE_SIZES; k++) {
		if (s->sizes[k].used && s->sizes[k].size == size)
			return &s->sizes[k];
		if (!s->sizes[k].used && !free_one)
			free_one = &s->sizes[k];
	}
	if (free_one) {
		free_one->used = 1;
		free_one->size = size;
	}
	return free_one;
}

static void
learn_window(so_baseline_t *b, struct window_peak *wp, int64_t window, int64_t t)
{
	double k = (double)so_anomaly_recent_count(b, t, window, NULL);
	if (k < 1)
		k = 1;
	if (wp->pending > 0 && t - wp->pending_at >= window) {
		raise_peak(b, &wp->peak, wp->pending, wp->pending_at);
		wp->pending = 0;
	}
	if (wp->pending <= 0) {
		wp->pending = k;
		wp->pending_at = t;
	} else if (k > wp->pending) {
		wp->pending = k;
	}
}

void
so_baseline_learn(so_baseline_t *b, const so_anomaly_params_t *p, const so_anomaly_features_t *f,
                  int64_t at_ms)
{
	int64_t t = so_anomaly_clamp_ms(at_ms);
	prepare(b, p, t);
	double g = so_anomaly_growth(b, t);

	if (b->learned < UINT32_MAX)
		b->learned++;
	if (b->first_learned == 0 || t < b->first_learned)
		b->first_learned = t;
	if (t > b->last_learned)
		b->last_learned = t;
	b->learned_w += g;

	struct shape_slot *shape = learn_shape(b, f, g, t);
	if (f->environment[0])
		learn_name(b->envs, &b->nenvs, SO_ANOMALY_ENVS, f->env_key, f->environment, g, t);
	if (f->prefix[0])
		learn_name(b->prefixes, &b->nprefixes, SO_ANOMALY_PREFIXES, f->prefix_key, f->prefix, g, t);
	b->hours[so_anomaly_hour_of_week(t, p->tz_offset_minutes)] += g;

	for (int i = 0; i < SO_ANOMALY_NSIZES; i++) {
		double v = f->sizes[i];
		if (!(v >= 0) || !isfinite(v))
			continue;
		learn_size(b, &b->sizes[i], v, g, t);
		struct shape_size *own = shape_size(shape, i);
		if (own)
			learn_size(b, &own->st, v, g, t);
	}
	for (int w = 0; w < NWINDOWS; w++)
		learn_window(b, &b->windows[w], so_anomaly_window_ms[w], t);
}

void
so_baseline_note_submitted(so_baseline_t *b, const so_anomaly_params_t *p, int64_t now_ms)
{
	int64_t t = so_anomaly_clamp_ms(now_ms);
	prepare(b, p, t);
	double g = so_anomaly_growth(b, t);

	if (b->submitted < UINT64_MAX)
		b->submitted++;
	if (t > b->last_submitted)
		b->last_submitted = t;
	b->submitted_w += g;
	if (t / MS_PER_HOUR != b->last_hour) {
		b->active_hours_w += g;
		b->last_hour = t / MS_PER_HOUR;
	}
	b->recent[b->recent_next] = t;
	b->recent_next = (b->recent_next + 1) % SO_ANOMALY_RECENT;
	if (b->nrecent < SO_ANOMALY_RECENT)
		b->nrecent++;
}

int
so_baseline_is_learning(const so_baseline_t *b, const so_anomaly_params_t *p, int64_t now_ms)
{
	if (!b || b->learned == 0)
		return 1;
	return b->learned < p->learning_events ||
	       so_anomaly_clamp_ms(now_ms) - b->first_learned < p->learning_ms;
}

/* ---- the persisted form ---- */

static int64_t
as_of(const so_baseline_t *b)
{
	int64_t t = b->t0;
	if (b->last_learned > t)
		t = b->last_learned;
	if (b->last_submitted > t)
		t = b->last_submitted;
	return t;
}

/* A weight as persisted: within the bound the reader accepts. */
static json_t *
weight_json(double w)
{
	return json_real(w > MAX_WEIGHT ? MAX_WEIGHT : w);
}

static int
put(json_t *o, const char *key, json_t *v)
{
	return v ? json_object_set_new(o, key, v) : -1;
}

static json_t *
peak_json(const struct peak *pk)
{
	return json_pack("{s:o, s:I}", "largest", weight_json(pk->value), "at", (json_int_t)pk->at);
}

static json_t *
size_json(const struct size_stat *st, double g)
{
	json_t *o = peak_json(&st->peak);
	if (o && put(o, "weight", weight_json(st->n / g))) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

json_t *
so_baseline_to_json(const so_baseline_t *b)
{
	int64_t t = as_of(b);
	double g = so_anomaly_growth(b, t);
	json_t *doc = json_object();
	json_t *shapes = json_array(), *envs = json_array(), *prefixes = json_array();
	json_t *hours = json_array(), *sizes = json_object(), *rate = json_object();
	json_t *recent = json_array();
	int bad = !doc || !shapes || !envs || !prefixes || !hours || !sizes || !rate || !recent;

	for (size_t i = 0; !bad && i < b->nshapes; i++) {
		const struct shape_slot *s = &b->shapes[i];
		if (s->wt.w / g < PRUNE_WEIGHT)
			continue;
		json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:I}", "kind", s->kind, "verb", s->verb,
		                      "environment", s->env, "weight", weight_json(s->wt.w / g), "last",
		                      (json_int_t)s->wt.last);
		json_t *own = json_object();
		bad |= !o || !own;
		for (size_t k = 0; !bad && k < SHAPE_SIZES; k++) {
			if (s->sizes[k].used)
				bad |= put(own, so_anomaly_size_name(s->sizes[k].size),
				           size_json(&s->sizes[k].st, g));
		}
		if (!bad && json_object_size(own))
			bad |= json_object_set(o, "sizes", own);
		json_decref(own);
		bad |= json_array_append_new(shapes, o);
	}
	struct {
		const struct name_slot *slots;
		size_t n;
		json_t *list;
	} names[] = {{b->envs, b->nenvs, envs}, {b->prefixes, b->nprefixes, prefixes}};
	for (size_t k = 0; k < 2; k++) {
		for (size_t i = 0; !bad && i < names[k].n; i++) {
			const struct name_slot *s = &names[k].slots[i];
			if (s->wt.w / g < PRUNE_WEIGHT)
				continue;
			bad |= json_array_append_new(names[k].list,
			                             json_pack("{s:s, s:o, s:I}", "name", s->name, "weight",
			                                       weight_json(s->wt.w / g), "last",
			                                       (json_int_t)s->wt.last));
		}
	}
	for (size_t i = 0; !bad && i < SO_ANOMALY_HOURS; i++)
		bad |= json_array_append_new(hours, weight_json(b->hours[i] / g));
	for (int i = 0; !bad && i < SO_ANOMALY_NSIZES; i++) {
		const struct size_stat *st = &b->sizes[i];
		if (st->n / g < PRUNE_WEIGHT && st->peak.value <= 0)
			continue;
		bad |= put(sizes, so_anomaly_size_name(i), size_json(st, g));
	}
	/* Oldest first, so the ring reads in order. */
	for (size_t i = 0; !bad && i < b->nrecent; i++) {
		size_t at = b->nrecent < SO_ANOMALY_RECENT ? i : (b->recent_next + i) % SO_ANOMALY_RECENT;
		bad |= json_array_append_new(recent, json_integer(b->recent[at]));
	}
	static const char *const window_names[NWINDOWS] = {"minute", "ten_minutes"};
	for (int w = 0; !bad && w < NWINDOWS; w++) {
		const struct window_peak *wp = &b->windows[w];
		json_t *o = peak_json(&wp->peak);
		bad |= !o || put(o, "pending", weight_json(wp->pending)) ||
		       put(o, "pending_at", json_integer(wp->pending_at)) ||
		       json_object_set(rate, window_names[w], o);
		json_decref(o);
	}
	if (!bad) {
		bad |= put(rate, "submitted_weight", weight_json(b->submitted_w / g)) ||
		       put(rate, "active_hours_weight", weight_json(b->active_hours_w / g)) ||
		       put(rate, "last_hour", json_integer(b->last_hour)) ||
		       json_object_set(rate, "recent", recent);
		bad |= put(doc, "version", json_integer(SO_BASELINE_VERSION)) ||
		       put(doc, "as_of", json_integer(t)) ||
		       put(doc, "half_life_days", json_real(b->half_life_days)) ||
		       put(doc, "learned", json_integer(b->learned)) ||
		       put(doc, "submitted", json_integer((json_int_t)(b->submitted > (uint64_t)INT64_MAX
		                                                            ? (uint64_t)INT64_MAX
		                                                            : b->submitted))) ||
		       put(doc, "first_learned", json_integer(b->first_learned)) ||
		       put(doc, "last_learned", json_integer(b->last_learned)) ||
		       put(doc, "last_submitted", json_integer(b->last_submitted)) ||
		       put(doc, "learned_weight", weight_json(b->learned_w / g)) ||
		       json_object_set(doc, "shapes", shapes) ||
		       json_object_set(doc, "environments", envs) ||
		       json_object_set(doc, "prefixes", prefixes) || json_object_set(doc, "hours", hours) ||
		       json_object_set(doc, "sizes", sizes) || json_object_set(doc, "rate", rate);
	}
	json_decref(shapes);
	json_decref(envs);
	json_decref(prefixes);
	json_decref(hours);
	json_decref(sizes);
	json_decref(rate);
	json_decref(recent);
	if (bad) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}

/* Readers for the persisted form: each returns 0 when the member is acceptable. */

static int
read_time(const json_t *o, const char *key, int64_t max, int64_t *out)
{
	const json_t *v = json_object_get(o, key);
	if (!v) {
		*out = 0;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
		return -1;
	*out = (int64_t)json_integer_value(v);
	return 0;
}

static int
read_number(const json_t *v, double *out)
{
	if (!json_is_number(v))
		return -1;
	double d = json_number_value(v);
	if (!(d >= 0 && d <= MAX_WEIGHT))
		return -1;
	*out = d;
	return 0;
}

static int
read_weight(const json_t *o, const char *key, double *out)
{
	const json_t *v = json_object_get(o, key);
	if (!v) {
		*out = 0;
		return 0;
	}
	return read_number(v, out);
}

/* A name exactly as features would have made it: within `cap`, no controls, no '`'. */
static int
read_name(const json_t *o, const char *key, char *dst, size_t cap, int may_be_empty)
{
	const json_t *v = json_object_get(o, key);
	if (!json_is_string(v) || json_string_length(v) >= cap)
		return -1;
	so_anomaly_copy_name(dst, cap, json_string_value(v), json_string_length(v));
	if (strlen(dst) != json_string_length(v) || memcmp(dst, json_string_value(v), strlen(dst)))
		return -1;
	return may_be_empty || dst[0] ? 0 : -1;
}

static int
read_peak(const json_t *o, int64_t as_of_ms, struct peak *pk)
{
	if (!json_is_object(o))
		return -1;
	return read_weight(o, "largest", &pk->value) || read_time(o, "at", as_of_ms, &pk->at);
}

static int
read_size(const json_t *o, int64_t t, struct size_stat *st)
{
	return read_peak(o, t, &st->peak) || read_weight(o, "weight", &st->n);
}

/* A shape's own sizes: at most SHAPE_SIZES, each a known size name. */
static int
read_shape_sizes(struct shape_slot *s, const json_t *sizes, int64_t t)
{
	const char *key;
	const json_t *o;
	size_t k = 0;
	if (!sizes)
		return 0;
	if (!json_is_object(sizes) || json_object_size(sizes) > SHAPE_SIZES)
		return -1;
	json_object_foreach((json_t *)sizes, key, o) {
		int size = -1;
		for (int i = 0; i < SO_ANOMALY_NSIZES; i++)
			if (!strcmp(key, so_anomaly_size_name(i)))
				size = i;
		if (size < 0 || read_size(o, t, &s->sizes[k].st))
			return -1;
		s->sizes[k].used = 1;
		s->sizes[k].size = size;
		k++;
	}
	return 0;
}

static int
read_shapes(so_baseline_t *b, const json_t *list, int64_t t)
{
	const json_t *item;
	size_t i;
	if (!list)
		return 0;
	if (!json_is_array(list) || json_array_size(list) > SO_ANOMALY_SHAPES)
		return -1;
	json_array_foreach(list, i, item) {
		struct shape_slot *s = &b->shapes[i];
		if (!json_is_object(item) || read_name(item, "kind", s->kind, sizeof(s->kind), 1) ||
		    read_name(item, "verb", s->verb, sizeof(s->verb), 1) ||
		    read_name(item, "environment", s->env, sizeof(s->env), 1) ||
		    read_weight(item, "weight", &s->wt.w) || read_time(item, "last", t, &s->wt.last))
			return -1;
		if (read_shape_sizes(s, json_object_get(item, "sizes"), t))
			return -1;
		const char *verb_parts[] = {s->kind, s->verb};
		const char *shape_parts[] = {s->kind, s->verb, s->env};
		const char *env_parts[] = {s->env};
		s->verb_key = so_anomaly_hash(verb_parts, 2);
		s->key = so_anomaly_hash(shape_parts, 3);
		s->env_key = so_anomaly_hash(env_parts, 1);
		for (size_t j = 0; j < i; j++)
			if (b->shapes[j].key == s->key && !strcmp(b->shapes[j].kind, s->kind) &&
			    !strcmp(b->shapes[j].verb, s->verb) && !strcmp(b->shapes[j].env, s->env))
				return -1;
		b->nshapes = i + 1;
	}
	return 0;
}

static int
read_names(struct name_slot *slots, size_t *n, size_t max, size_t cap, const json_t *list,
           int64_t t)
{
	const json_t *item;
	size_t i;
	if (!list)
		return 0;
	if (!json_is_array(list) || json_array_size(list) > max)
		return -1;
	json_array_foreach(list, i, item) {
		struct name_slot *s = &slots[i];
		if (!json_is_object(item) || read_name(item, "name", s->name, cap, 0) ||
		    read_weight(item, "weight", &s->wt.w) || read_time(item, "last", t, &s->wt.last))
			return -1;
		const char *parts[] = {s->name};
		s->key = so_anomaly_hash(parts, 1);
		for (size_t j = 0; j < i; j++)
			if (slots[j].key == s->key && !strcmp(slots[j].name, s->name))
				return -1;
		*n = i + 1;
	}
	return 0;
}

static int
read_rate(so_baseline_t *b, const json_t *rate, int64_t t)
{
	static const char *const window_names[NWINDOWS] = {"minute", "ten_minutes"};
	const json_t *item;
	size_t i;
	if (!rate)
		return 0;
	if (!json_is_object(rate) || read_weight(rate, "submitted_weight", &b->submitted_w) ||
	    read_weight(rate, "active_hours_weight", &b->active_hours_w))
		return -1;
	const json_t *lh = json_object_get(rate, "last_hour");
	if (lh && (!json_is_integer(lh) || json_integer_value(lh) < -1 ||
	           json_integer_value(lh) > t / MS_PER_HOUR))
		return -1;
	b->last_hour = lh ? (int64_t)json_integer_value(lh) : -1;
	const json_t *recent = json_object_get(rate, "recent");
	if (recent) {
		if (!json_is_array(recent) || json_array_size(recent) > SO_ANOMALY_RECENT)
			return -1;
		json_array_foreach(recent, i, item) {
			if (!json_is_integer(item) || json_integer_value(item) < 0 ||
			    json_integer_value(item) > t)
				return -1;
			b->recent[i] = (int64_t)json_integer_value(item);
		}
		b->nrecent = json_array_size(recent);
		b->recent_next = b->nrecent % SO_ANOMALY_RECENT;
	}
	for (int w = 0; w < NWINDOWS; w++) {
		const json_t *o = json_object_get(rate, window_names[w]);
		struct window_peak *wp = &b->windows[w];
		if (o && (read_peak(o, t, &wp->peak) || read_weight(o, "pending", &wp->pending) ||
		          read_time(o, "pending_at", t, &wp->pending_at)))
			return -1;
	}
	return 0;
}

static int
read_sizes(so_baseline_t *b, const json_t *sizes, int64_t t)
{
	if (!sizes)
		return 0;
	if (!json_is_object(sizes))
		return -1;
	for (int i = 0; i < SO_ANOMALY_NSIZES; i++) {
		const json_t *o = json_object_get(sizes, so_anomaly_size_name(i));
		if (o && read_size(o, t, &b->sizes[i]))
			return -1;
	}
	return 0;
}

int
so_baseline_from_json(const json_t *doc, so_baseline_t **out)
{
	so_baseline_t *b = NULL;
	int rc = SO_EINVAL;
	int64_t t = 0, learned = 0, submitted = 0;
	double half_life_days = 0;
	const json_t *hours, *item;
	size_t i;

	*out = NULL;
	if (!json_is_object(doc) || !json_is_integer(json_object_get(doc, "version")) ||
	    json_integer_value(json_object_get(doc, "version")) != SO_BASELINE_VERSION)
		goto out;
	if (!(b = so_baseline_new())) {
		rc = SO_ENOMEM;
		goto out;
	}
	if (read_time(doc, "as_of", SO_ANOMALY_MAX_MS, &t) ||
	    read_weight(doc, "half_life_days", &half_life_days) ||
	    (half_life_days != 0 &&
	     (half_life_days < MIN_HALF_LIFE_DAYS || half_life_days > MAX_HALF_LIFE_DAYS)) ||
	    read_time(doc, "learned", UINT32_MAX, &learned) ||
	    read_time(doc, "submitted", INT64_MAX, &submitted) ||
	    read_time(doc, "first_learned", t, &b->first_learned) ||
	    read_time(doc, "last_learned", t, &b->last_learned) ||
	    read_time(doc, "last_submitted", t, &b->last_submitted) ||
	    read_weight(doc, "learned_weight", &b->learned_w))
		goto out;
	b->t0 = t;
	b->half_life_days = half_life_days;
	b->half_life_ms = half_life_days * (double)MS_PER_DAY;
	b->learned = (uint32_t)learned;
	b->submitted = (uint64_t)submitted;
	if (read_shapes(b, json_object_get(doc, "shapes"), t) ||
	    read_names(b->envs, &b->nenvs, SO_ANOMALY_ENVS, SO_ANOMALY_ENV_LEN,
	               json_object_get(doc, "environments"), t) ||
	    read_names(b->prefixes, &b->nprefixes, SO_ANOMALY_PREFIXES, SO_ANOMALY_PREFIX_LEN,
	               json_object_get(doc, "prefixes"), t) ||
	    read_sizes(b, json_object_get(doc, "sizes"), t) ||
	    read_rate(b, json_object_get(doc, "rate"), t))
		goto out;
	hours = json_object_get(doc, "hours");
	if (hours) {
		if (!json_is_array(hours) || json_array_size(hours) != SO_ANOMALY_HOURS)
			goto out;
		json_array_foreach(hours, i, item) {
			if (read_number(item, &b->hours[i]))
				goto out;
		}
	}
	*out = b;
	b = NULL;
	rc = SO_OK;
out:
	so_baseline_free(b);
	return rc;
}
