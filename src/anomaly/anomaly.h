/**
 * Per-principal baselines and explainable anomaly scores: what normal looks like for one
 * agent, learned from its own history, and how far a new request strays from it, in words.
 * docs/anomaly.md has the whole picture, the numbers and the measured figures.
 *
 * What a baseline learns:
 *   - shapes: the action's kind and verb ("kubectl delete", "github/create_pr") per
 *     environment; the environments; the resource prefixes it touches;
 *   - when: a 168-bin hour-of-week histogram (UTC, or shifted by `tz_offset_minutes`);
 *   - how much: decayed maxima of the declared sizes (rows, bytes, ...; see
 *     so_anomaly_size_name()) and of the arguments' length, per shape (two sizes each) and
 *     for the principal as a whole;
 *   - how often: the times of its last SO_ANOMALY_RECENT submissions, its usual rate, and
 *     its busiest learned minute and 10 minutes (decayed maxima).
 *
 * Learning follows outcomes: so_baseline_learn() is called for a request policy allowed (and
 * the daemon did not raise to review) or people approved; a denied request is never learned,
 * so it stays unusual. so_baseline_note_submitted() is called for every submission, denied or
 * not: rates describe how a principal asks, not what it was allowed.
 *
 * Decay ("forgetting"). Every count is a weight that halves every `half_life_days` (default
 * 30): an event learned t days ago weighs 2^(-t/30). A shape, environment, resource prefix or
 * hour is *known* while its weight is at least SO_ANOMALY_KNOWN (0.25): one learned use
 * stays known for two half-lives (60 days); n uses stay known about log2(4n) half-lives after
 * the last. Maxima decay the same way: a largest export of 1,000,000 rows weighs as 500,000
 * after one half-life unless renewed. Weights are kept forward-decayed against a reference
 * time (w * 2^((t - t0)/H)), so scoring reads them without decaying each one.
 *
 * Signals and strengths (score = 1 - prod(1 - s), rounded to 3 decimals):
 *   verb 0.6: a kind + verb not known ("first time deploy-bot ran `kubectl delete`");
 *   environment 0.6: an environment not known;
 *   verb_environment 0.5: a known verb in a known environment, never together;
 *   resource 0.3: a resource prefix not known (alone it stays below the default threshold);
 *   hours 0.5 (0.6 when hour and day are both new): the hour of day (within an hour either
 *     side) or the day of week not known; or both known but never together where, were hours
 *     and days independent, 3 or more requests would have been expected;
 *   burst 0.5..0.9: k1 or k10, the exact numbers of submissions in the last 60 s and 600 s
 *     (this one included; past SO_ANOMALY_RECENT they read "at least"), above twice their
 *     reference, max(busiest learned window, 3 * R * window, floor 3 or 6); +0.2 per
 *     doubling. R = S / A is the usual rate per active hour (S decayed submissions, A decayed
 *     distinct clock hours with one), so a sustained new rate becomes usual with the
 *     half-life: it stops being a burst once R reaches a sixth of it. A busiest learned
 *     window counts only once the window it was seen in is over, so a burst cannot raise
 *     the bar it is judged by;
 *   volume 0.5..0.95: a size above 4x its decayed largest (the shape's own once learned
 *     twice, else the principal's; arguments under 512 bytes never); +0.1 per doubling;
 *   learning: a principal in its learning period gets `learning_score` and that one reason.
 *
 * Bounds (a baseline is one fixed block, so_baseline_sizeof(), about 20 KiB):
 * SO_ANOMALY_SHAPES shape slots, SO_ANOMALY_ENVS environments, SO_ANOMALY_PREFIXES resource
 * prefixes, 168 hour bins, SO_ANOMALY_NSIZES sizes, SO_ANOMALY_RECENT submission times. When
 * a table is full, learning a new entry evicts the weakest one (least weight after decay:
 * used least, longest ago). Names are cut at a character boundary to their SO_ANOMALY_*_LEN;
 * control characters and backquotes in them become '?' and '\''. Reasons are at most
 * SO_ANOMALY_MAX_REASONS of SO_ANOMALY_REASON_LEN bytes, cut at a character boundary.
 *
 * Pure: no I/O, no clock (times are milliseconds since the epoch, UTC, passed in), no
 * globals, no locks: the caller serialises access to one baseline. Scoring does not allocate.
 * A so_baseline_t owns its memory (so_baseline_free()); everything passed in is borrowed.
 *
 * How the daemon uses it, per request of principal P created at `now`:
 *   1. so_anomaly_features(r->action, r->context, &f)
 *   2. so_anomaly_score(P's baseline or NULL, params, P, &f, now, &res), before policy;
 *      r->anomaly = so_anomaly_result_to_json(&res) (policy sees anomaly.score/.reasons)
 *   3. so_baseline_note_submitted(P's baseline, params, now), after scoring
 *   4. policy decides; an allow with res.score >= params.threshold becomes a review
 *   5. allowed (not raised), or later approved by people: so_baseline_learn(b, params, &f,
 *      r->created_at), with f recomputed from the stored action and context
 *   6. persist so_baseline_to_json() (store baseline_put) when it changed; a document that
 *      does not read back (SO_EINVAL) means starting afresh: the principal is new again,
 *      which errs on the side of review.
 * `params` may differ per call only in tz_offset_minutes (say, the policy zone's offset at
 * `now`, for daylight saving time); a changed half_life_days applies from the next change
 * on, keeping what was learned.
 */
#ifndef SO_ANOMALY_ANOMALY_H
#define SO_ANOMALY_ANOMALY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/buf.h"

#define SO_ANOMALY_MAX_REASONS 8    /**< reasons kept per result (the strongest first) */
#define SO_ANOMALY_REASON_LEN 256   /**< bytes per reason, NUL included; cut at a character */

#define SO_ANOMALY_KIND_LEN 32      /**< bytes per name, NUL included */
#define SO_ANOMALY_VERB_LEN 64
#define SO_ANOMALY_ENV_LEN 32
#define SO_ANOMALY_PREFIX_LEN 48

#define SO_ANOMALY_SHAPES 64        /**< kind + verb + environment combinations remembered */
#define SO_ANOMALY_ENVS 16          /**< environments remembered */
#define SO_ANOMALY_PREFIXES 32      /**< resource prefixes remembered */
#define SO_ANOMALY_RECENT 64        /**< submission times kept for the short windows */
#define SO_ANOMALY_HOURS 168        /**< hour-of-week bins; 0 = Sunday 00:00-00:59 */

/** The weight at which a shape, environment, prefix or hour counts as known. */
#define SO_ANOMALY_KNOWN 0.25

/**
 * The declared sizes a baseline follows, by name. Numbers (or strings holding a plain
 * decimal number) found under these names at the top level of the request's `context`,
 * `action.arguments` or `action.context`; when a name appears in several, the largest
 * counts. SO_ANOMALY_SIZE_ARG_BYTES is not declared: it is the byte length of the canonical
 * JSON of `action.command`, else of `action.arguments`.
 */
enum so_anomaly_size {
	SO_ANOMALY_SIZE_ROWS,      /**< "rows" */
	SO_ANOMALY_SIZE_ROW_COUNT, /**< "row_count" */
	SO_ANOMALY_SIZE_RECORDS,   /**< "records" */
	SO_ANOMALY_SIZE_COUNT,     /**< "count" */
	SO_ANOMALY_SIZE_BYTES,     /**< "bytes" */
	SO_ANOMALY_SIZE_SIZE,      /**< "size" */
	SO_ANOMALY_SIZE_FILES,     /**< "files" */
	SO_ANOMALY_SIZE_ARG_BYTES, /**< "argument_bytes" (computed) */
	SO_ANOMALY_NSIZES
};

/** The name of size `i` ("rows", ..., "argument_bytes"), or NULL when out of range. */
const char *so_anomaly_size_name(int i);

/** Settings, one copy per daemon (a config table drives them). */
typedef struct so_anomaly_params {
	/** A principal is new until its first learned request is this old ... */
	int64_t learning_ms;
	/** ... and it has at least this many learned requests (both must hold). */
	uint32_t learning_events;
	/** The score of every request of a new principal, in (0, 1]; out of it counts as 0.5. */
	double learning_score;
	/** Decay of every count: a habit unused for this long weighs half. */
	double half_life_days;
	/** Score at or above which the daemon raises an allow to a review (above 1: never). */
	double threshold;
	/** Minutes east of UTC for the hour of week and the words "03:10 Sunday". */
	int tz_offset_minutes;
} so_anomaly_params_t;

/**
 * The defaults, and why:
 *   learning_ms 7 days, learning_events 20: a week covers the weekly rhythm, 20 requests
 *     give every usual verb a chance to show;
 *   learning_score 0.5, threshold 0.5: a new principal scores at the threshold, so its
 *     allowed requests go to review until it has a baseline (set learning_score lower,
 *     e.g. 0.3, to only mark them, as the daemon's configuration does by default); one
 *     strong signal alone (a first-time verb or environment, off-hours, a burst, a volume
 *     far above its largest) also reaches it;
 *   half_life_days 30: a monthly habit stays known, a one-off is forgotten after 60 days;
 *   tz_offset_minutes 0: UTC.
 */
void so_anomaly_params_default(so_anomaly_params_t *p);

/**
 * Check the settings' bounds: learning_ms 0..365 days, learning_events <= 100000, scores and
 * threshold in [0, 1] with learning_score > 0, half_life_days 0.01..3650, tz_offset_minutes
 * -840..840. SO_OK, or SO_EINVAL with a sentence in `err`.
 */
int so_anomaly_params_check(const so_anomaly_params_t *p, char *err, size_t errlen);

/** One principal's baseline. Fixed size; owns no other memory. */
typedef struct so_baseline so_baseline_t;

/** An empty baseline (a new principal), or NULL on ENOMEM. Free with so_baseline_free(). */
so_baseline_t *so_baseline_new(void);
void so_baseline_free(so_baseline_t *b);
/** The bytes one baseline takes in memory (all of it: a baseline allocates nothing else). */
size_t so_baseline_sizeof(void);

/** The persisted form's version, in its "version" member. */
#define SO_BASELINE_VERSION 1

/**
 * The persisted form (a new reference; NULL on ENOMEM): {"version": 1, "as_of": ms, ...},
 * weights as of `as_of` (the latest time the baseline saw). Slots whose weight has decayed
 * below 1/1000 are left out.
 */
json_t *so_baseline_to_json(const so_baseline_t *b);

/**
 * Rebuild a baseline from its persisted form. Never trusts sizes: lists longer than their
 * table, unknown versions, names too long, numbers out of range or not finite, times after
 * `as_of`, and duplicate entries are refused. On SO_OK `*out` is a new baseline the caller
 * frees; on SO_EINVAL (or SO_ENOMEM) `*out` is NULL. Unknown members are ignored.
 */
int so_baseline_from_json(const json_t *doc, so_baseline_t **out);

/** What one request looks like to the baseline: extracted once from the action and context. */
typedef struct so_anomaly_features {
	char kind[SO_ANOMALY_KIND_LEN];          /**< action.kind, or "" */
	/**
	 * The verb: for a `command` (argv), the base name of command[0], plus " " and command[1]
	 * when that is a sub-command word (a lowercase letter, then only a-z, 0-9, '-' and '_',
	 * at most 24 bytes): "kubectl delete", "git push", "terraform apply", "psql" (from
	 * ["psql", "-c", ...]), "cat" (from ["cat", "/etc/passwd"]). For an action with a
	 * `tool`: "server/tool" when it names a `server` (mcp.tool), else the tool. Else "".
	 */
	char verb[SO_ANOMALY_VERB_LEN];
	char environment[SO_ANOMALY_ENV_LEN];    /**< action.environment, or "" */
	/**
	 * The resource prefix: action.resource (else action.path without its leading '/', else
	 * the host of action.url) up to and including its first '/' or ':' ("deploy/api" ->
	 * "deploy/", "s3://b/k" -> "s3:", "arn:aws:..." -> "arn:"); the whole value when it has
	 * neither. "" when there is none.
	 */
	char prefix[SO_ANOMALY_PREFIX_LEN];
	/** Declared sizes by enum so_anomaly_size; negative when absent. */
	double sizes[SO_ANOMALY_NSIZES];
	/** Hashes of the names above, for quick lookups (computed here, never read from input). */
	uint64_t verb_key, shape_key, env_key, prefix_key;
} so_anomaly_features_t;

/**
 * Extract the features of a request. `action` and `context` are borrowed and may be NULL or
 * of any shape (whatever is missing or of the wrong type is absent). Does not allocate.
 */
void so_anomaly_features(const json_t *action, const json_t *context, so_anomaly_features_t *out);

/** The signal a reason comes from (for tests, counters and the bench). */
enum so_anomaly_signal {
	SO_ANOMALY_SIG_LEARNING,   /**< the principal is new */
	SO_ANOMALY_SIG_VERB,       /**< a kind + verb it has not used (or not lately) */
	SO_ANOMALY_SIG_ENV,        /**< an environment it has not acted in */
	SO_ANOMALY_SIG_SHAPE_ENV,  /**< a known verb in a known environment, never together */
	SO_ANOMALY_SIG_PREFIX,     /**< a resource prefix it has not touched */
	SO_ANOMALY_SIG_HOURS,      /**< an hour of day or day of week it does not act in */
	SO_ANOMALY_SIG_BURST,      /**< more requests in a minute or 10 minutes than usual */
	SO_ANOMALY_SIG_VOLUME,     /**< a declared size or argument length far above its largest */
	SO_ANOMALY_SIG__COUNT
};

/** The short name of a signal ("learning", "verb", ... "volume"), or "?". */
const char *so_anomaly_signal_name(int sig);

typedef struct so_anomaly_result {
	/** 0..1, rounded to 3 decimals: 1 - prod(1 - s_i) over the signals' strengths s_i. */
	double score;
	size_t nreasons;
	/** Plain words, UTF-8, strongest first, each naming its evidence. */
	char reasons[SO_ANOMALY_MAX_REASONS][SO_ANOMALY_REASON_LEN];
	/** The signal each reason comes from, and its strength. */
	int signal[SO_ANOMALY_MAX_REASONS];
	double strength[SO_ANOMALY_MAX_REASONS];
} so_anomaly_result_t;

/**
 * Score a request before the policy runs, and before so_baseline_note_submitted() for it
 * (the burst counts include this request on that assumption). `b` may be NULL (no baseline
 * yet: the principal is new). `principal` names it in the reasons. A principal in its
 * learning period gets `p->learning_score` and one reason saying so; otherwise every signal
 * that fires adds its strength and its reason (docs/anomaly.md lists them). `p` NULL means
 * the defaults. Does not allocate; `b` is not changed.
 */
void so_anomaly_score(const so_baseline_t *b, const so_anomaly_params_t *p, const char *principal,
                      const so_anomaly_features_t *f, int64_t now_ms, so_anomaly_result_t *out);

/** The result as a request's `anomaly` member: {"score": n, "reasons": [...]}. NULL on ENOMEM. */
json_t *so_anomaly_result_to_json(const so_anomaly_result_t *r);

/** Count one submission at `now_ms` toward the rates. Call for every submission, after scoring. */
void so_baseline_note_submitted(so_baseline_t *b, const so_anomaly_params_t *p, int64_t now_ms);

/**
 * Learn a request as normal: it was allowed by policy (and not raised to review) or approved
 * by people. Denied requests are not learned. `at_ms` is when it was submitted (its
 * created_at): the hour of week and the burst windows are those of the submission.
 */
void so_baseline_learn(so_baseline_t *b, const so_anomaly_params_t *p,
                       const so_anomaly_features_t *f, int64_t at_ms);

/** Whether the principal is still in its learning period at `now_ms` (b may be NULL). */
int so_baseline_is_learning(const so_baseline_t *b, const so_anomaly_params_t *p, int64_t now_ms);

/**
 * The baseline in words, for `signoff anomaly show`, appended to `out`: how much was learned,
 * the known shapes (strongest first, with weight and last use), environments, resource
 * prefixes, usual hours and days, rates and sizes. `b` may be NULL. SO_OK, or the buffer's
 * error (SO_ENOMEM, SO_ETOOLARGE).
 */
int so_baseline_describe(const so_baseline_t *b, const so_anomaly_params_t *p,
                         const char *principal, int64_t now_ms, so_buf_t *out);

/** The hour of week (0..167, 0 = Sunday 00:00) of `ms` shifted by `tz_offset_minutes`. */
int so_anomaly_hour_of_week(int64_t ms, int tz_offset_minutes);

#endif
