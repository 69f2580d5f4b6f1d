/**
 * Policy: what happens to a request. In this version only the default decision exists
 * (`policy.default` with its approvers and time limits); the rules engine plugs in behind
 * so_policy_decide() without changing its callers.
 *
 * Pure: no I/O. A so_policy_t owns its strings and requirements (so_policy_free()).
 */
#ifndef SO_POLICY_POLICY_H
#define SO_POLICY_POLICY_H

#include "core/core.h"

typedef struct so_policy {
	int def;                     /**< enum so_outcome used when no rule matches */
	so_requirement_t *approvers; /**< who must approve a review */
	size_t napprovers;
	int64_t ttl;                 /**< seconds a request may stay pending */
	int64_t grant_ttl;           /**< seconds an approval may wait for its claim */
	int64_t owner_may_approve;
	char version[72];            /**< "sha256:<hex>" of the policy's canonical form */
} so_policy_t;

/** Compute `p->version` from the policy's content. */
int so_policy_seal(so_policy_t *p);

/**
 * Decide on `r`. Fills `out` (which the caller later clears with so_decision_clear() or
 * moves into the request with so_core_apply_decision()).
 */
int so_policy_decide(const so_policy_t *p, const so_request_t *r, so_decision_t *out);

void so_policy_free(so_policy_t *p);

#endif
