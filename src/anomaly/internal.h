/*
 * Inside src/anomaly: the baseline's layout and the helpers its files share.
 * features.c reads requests, baseline.c learns and persists, score.c judges, words.c says it.
 */
#ifndef SO_ANOMALY_INTERNAL_H
#define SO_ANOMALY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "anomaly/anomaly.h"

#define MS_PER_MINUTE INT64_C(60000)
#define MS_PER_HOUR INT64_C(3600000)
#define MS_PER_DAY INT64_C(86400000)

/** Times are kept within [0, SO_ANOMALY_MAX_MS] (year 287396) so differences cannot overflow. */
#define SO_ANOMALY_MAX_MS (INT64_C(1) << 53)

/** Weights below this are dropped from the persisted form. */
#define PRUNE_WEIGHT 0.001
/** Forward-decayed weights are rebased when the reference is this many half-lives old. */
#define REBASE_HALF_LIVES 32.0

/** The two short windows: a minute and ten minutes. */
enum { WIN_MINUTE, WIN_TEN_MINUTES, NWINDOWS };
extern const int64_t so_anomaly_window_ms[NWINDOWS];
/** The least reference count of each window: bursts smaller than twice this never flag. */
extern const double so_anomaly_window_floor[NWINDOWS];
/** A window is judged against this many times the usual rate over its length. */
#define BURST_RATE_FACTOR 3.0
/** A count above this many times its reference is a burst. */
#define BURST_RATIO 2.0
/** A size above this many times its decayed largest is a volume anomaly. */
#define VOLUME_RATIO 4.0
/** Argument lengths below this many bytes never flag (short commands vary a lot). */
#define ARG_BYTES_FLOOR 512.0
/**
 * An hour of a weekday with nothing learned is unusual, even when the hour and the day are
 * each familiar, once independence of the two would predict at least this many (decayed)
 * requests there (none seen where 3 were due happens by chance 5% of the time).
 */
#define HOUR_OF_WEEK_EXPECTED 3.0

/** A learned weight with the time it was last added to. `w` is forward-decayed. */
struct weight {
	double w;
	int64_t last;
};

/** A decayed maximum: `value` seen at `at`, weighing value * 2^(-(now - at)/H) at `now`. */
struct peak {
	double value;
	int64_t at;
};

/** A size's decayed largest and how often it was learned (forward-decayed weight). */
struct size_stat {
	struct peak peak;
	double n;
};

/** Sizes remembered per shape (in practice: the argument length and one declared size). */
#define SHAPE_SIZES 2
/** A shape's own sizes are used once learned this often; before, the principal's. */
#define SHAPE_SIZE_MIN_WEIGHT 2.0

struct shape_size {
	int used;
	int size; /* enum so_anomaly_size */
	struct size_stat st;
};

struct shape_slot {
	uint64_t key;       /* hash of kind, verb and environment */
	uint64_t verb_key;  /* hash of kind and verb */
	uint64_t env_key;
	struct weight wt;
	struct shape_size sizes[SHAPE_SIZES];
	char kind[SO_ANOMALY_KIND_LEN];
	char verb[SO_ANOMALY_VERB_LEN];
	char env[SO_ANOMALY_ENV_LEN];
};

struct name_slot {
	uint64_t key;
	struct weight wt;
	char name[SO_ANOMALY_PREFIX_LEN]; /* environments use the first SO_ANOMALY_ENV_LEN */
};

/**
 * A window's busiest learned count. `pending` is the largest count learned in the window
 * that started at `pending_at`; it joins `peak` only once that window is over.
 */
struct window_peak {
	struct peak peak;
	double pending;
	int64_t pending_at;
};

struct so_baseline {
	double half_life_days; /* what the weights decay with, as configured; 0 until the first change */
	double half_life_ms;   /* the same in ms (derived) */
	int64_t t0;          /* reference time of the forward-decayed weights */

	uint32_t learned;    /* requests learned, saturating */
	uint64_t submitted;  /* submissions noted, saturating */
	int64_t first_learned, last_learned, last_submitted; /* 0: never */
	double learned_w;

	size_t nshapes, nenvs, nprefixes;
	struct shape_slot shapes[SO_ANOMALY_SHAPES];
	struct name_slot envs[SO_ANOMALY_ENVS];
	struct name_slot prefixes[SO_ANOMALY_PREFIXES];
	double hours[SO_ANOMALY_HOURS];
	struct size_stat sizes[SO_ANOMALY_NSIZES];

	double submitted_w;    /* S: decayed submissions */
	double active_hours_w; /* A: decayed distinct clock hours with a submission */
	int64_t last_hour;     /* the clock hour (ms / 1 h) of the last submission, or -1 */
	int64_t recent[SO_ANOMALY_RECENT]; /* ring of submission times */
	size_t nrecent, recent_next;
	struct window_peak windows[NWINDOWS];
};

/* ---- baseline.c ---- */

/** 2^((t - t0)/H): the forward-decay factor at `t` (1 for a baseline with no half-life). */
double so_anomaly_growth(const so_baseline_t *b, int64_t t);
/** A stored (forward-decayed) weight as it weighs at `now`. */
double so_anomaly_weight_at(const so_baseline_t *b, double w, int64_t now);
/** A decayed maximum as it weighs at `now`. */
double so_anomaly_peak_at(const so_baseline_t *b, const struct peak *pk, int64_t now);
/** Submissions in (now - window, now]; `*saturated` set when the ring may have lost some. */
size_t so_anomaly_recent_count(const so_baseline_t *b, int64_t now, int64_t window,
                               int *saturated);
/** Keep a time within [0, SO_ANOMALY_MAX_MS]. */
int64_t so_anomaly_clamp_ms(int64_t ms);

/* ---- features.c ---- */

/** FNV-1a over `n` NUL-terminated parts, each followed by a 0 byte. */
uint64_t so_anomaly_hash(const char *const *parts, size_t n);
/** Copy `src` into `dst` (size `cap`), cut at a character boundary, controls -> '?', '`' -> '\''. */
void so_anomaly_copy_name(char *dst, size_t cap, const char *src, size_t len);

/* ---- words.c ---- */

/** Append to a fixed string, cutting at a character boundary when it fills up. */
struct text {
	char *s;
	size_t cap, len;
};
void so_anomaly_text_init(struct text *t, char *s, size_t cap);
void so_anomaly_text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** "2,000,000", "0.5", "12.3" (one decimal below 10 when not whole), "1.2e+18". */
void so_anomaly_fmt_number(double v, char *out, size_t cap);
/** "12 minutes", "5 hours", "3 days". */
void so_anomaly_fmt_duration(int64_t ms, char *out, size_t cap);
/** "4 an hour", "1 every 3 hours", "2 a minute" for a rate per hour. */
void so_anomaly_fmt_rate(double per_hour, char *out, size_t cap);
/** What a principal does with a verb: "ran `kubectl delete`", "called mcp.tool `gh/pr`". */
void so_anomaly_fmt_doing(const char *kind, const char *verb, char *out, size_t cap);
/** Its object form: "`kubectl delete`", "`gh/pr`", "a `file.write`" (no verb). */
void so_anomaly_fmt_shape(const char *kind, const char *verb, char *out, size_t cap);

/** The weekday names, 0 = Sunday. */
extern const char *const so_anomaly_weekday[7];

/**
 * The usual hours and days in words, from per-hour-of-day and per-day masses (current
 * weights): `hours` gets "08:00–19:00" (or "" when every hour is known), `days` gets
 * "on weekdays", "on weekends", "on Mon, Tue and Thu" (or "" when every day is known).
 */
void so_anomaly_fmt_usual_time(const double hod[24], const double dow[7], char *hours,
                               size_t hcap, char *days, size_t dcap);

#endif
