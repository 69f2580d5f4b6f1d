/**
 * Policy: what happens to a request, decided from rules tied to identity, intent and context.
 *
 * Every rule whose `when` holds counts: deny beats review beats allow; every requirement of
 * every matching review rule must be met (by distinct humans); no match means
 * `policy.default`. A `when` that is *unknown* because a field is absent counts as matching
 * for deny and review rules and as not matching for allow rules: missing information can
 * only make a decision stricter. The decision records a trace of every matching rule.
 *
 * Pure: no I/O, no clock (the caller passes `now`). A so_policy_t owns everything in it
 * (so_policy_free()); it is immutable once loaded and may be shared by threads.
 */
#ifndef SO_POLICY_POLICY_H
#define SO_POLICY_POLICY_H

#include "common/tz.h"
#include "core/core.h"
#include "policy/expr.h"

/** Who must approve: a literal group, a group named by a field (owner.team), or principals. */
typedef struct so_approver_spec {
	char *group;           /**< literal group, or NULL */
	so_expr_t *group_expr; /**< or a field path evaluated per request, or NULL */
	char **principals;     /**< or these principals (NULL-terminated), or NULL */
	int64_t count;
} so_approver_spec_t;

typedef struct so_rule {
	char *name;
	so_expr_t *when;
	int decide;                     /**< enum so_outcome */
	char *reason;                   /**< shown to humans */
	so_approver_spec_t *approvers;  /**< review: who must approve (default: policy.approvers) */
	size_t napprovers;
	int64_t owner_may_approve;      /**< -1: as policy.owner_may_approve */
	int64_t ttl;                    /**< seconds; 0: as policy.ttl */
	int64_t escalate_after;         /**< seconds; 0: no escalation */
	char *escalate_group;
	json_t *route;                  /**< where to deliver the review, or NULL */
	so_expr_t **require;            /**< field paths the request must carry */
	size_t nrequire;
	int line;                       /**< where the rule was defined, for messages */
} so_rule_t;

typedef struct so_policy {
	int def;                        /**< enum so_outcome used when no rule matches */
	so_approver_spec_t *approvers;  /**< who approves a review by default */
	size_t napprovers;
	int64_t ttl;                    /**< seconds a request may stay pending */
	int64_t grant_ttl;              /**< seconds an approval may wait for its claim */
	int64_t owner_may_approve;
	/**
	 * An allow whose anomaly score (percent) reaches this becomes a review by the default
	 * approvers, with the anomaly reasons as the why (anomaly.threshold); 0: never.
	 */
	int64_t anomaly_threshold_pct;
	so_tz_t tz;                     /**< the zone of time.hour and time.weekday */
	so_rule_t *rules;
	size_t nrules;
	char version[72];               /**< "sha256:<hex>" of the loaded text */
} so_policy_t;

/** Compute `p->version` from the policy's content (when no source text is at hand). */
int so_policy_seal(so_policy_t *p);

/**
 * Decide on `r` at `now`. On SO_OK fills `out` (clear it with so_decision_clear() or move it
 * into the request with so_core_apply_decision()). When the request lacks a field a matching
 * rule requires, returns SO_EINVAL with `refusal` filled (400 missing_field).
 */
int so_policy_decide(const so_policy_t *p, const so_directory_t *dir, const so_request_t *r,
                     int64_t now, so_decision_t *out, so_core_err_t *refusal);

/** The expression input for `r` at `now` (used by decide and by `policy test`). */
void so_policy_input(const so_policy_t *p, const so_directory_t *dir, const so_request_t *r,
                     int64_t now, so_expr_input_t *in);

void so_policy_free(so_policy_t *p);
void so_rule_free(so_rule_t *rule);
void so_approver_spec_free(so_approver_spec_t *a);

#endif
