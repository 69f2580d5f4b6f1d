/**
 * The request model and its lifecycle: principals, requests, reviews, the canonical action
 * digest, the state machine and separation of duties.
 *
 * Pure: nothing here touches sockets, files or the clock. Time (`now`, milliseconds since the
 * epoch) and randomness are passed in by the caller, so every rule tests without mocks.
 *
 * Ownership: a so_request_t owns every pointer in it (so_request_free() releases all).
 * A so_directory_t owns its principals. Functions that take `const` pointers borrow them.
 */
#ifndef SO_CORE_CORE_H
#define SO_CORE_CORE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

enum so_kind { SO_KIND_AGENT, SO_KIND_HUMAN, SO_KIND_SERVICE };

typedef struct so_principal {
	char *id;
	enum so_kind kind;
	char *owner;        /**< for agents: the human responsible for it, or NULL */
	char *team;         /**< for identity-aware routing (`owner.team`), or NULL */
	char **groups;      /**< NULL-terminated */
	char *token_sha256; /**< 64 lowercase hex, or NULL */
	char *slack_user;   /**< chat identities, mapped only through configuration */
	char *teams_user;
	char *email;
} so_principal_t;

/** The configured principals. Lookups are linear: directories are small. */
typedef struct so_directory {
	so_principal_t *items;
	size_t n;
} so_directory_t;

const so_principal_t *so_directory_find(const so_directory_t *d, const char *id);
int so_principal_in_group(const so_principal_t *p, const char *group);
void so_directory_free(so_directory_t *d);
const char *so_kind_name(enum so_kind k);

enum so_status {
	SO_ST_PENDING,
	SO_ST_APPROVED,
	SO_ST_DENIED,
	SO_ST_EXPIRED,
	SO_ST_CANCELLED,
	SO_ST_CLAIMED,
	SO_ST_SUCCEEDED,
	SO_ST_FAILED,
	SO_ST__COUNT
};

const char *so_status_name(enum so_status s);
/** Returns SO_OK and sets `*s`, or SO_EINVAL for an unknown name. */
int so_status_parse(const char *name, enum so_status *s);
/** Terminal states never change again. */
int so_status_terminal(enum so_status s);

/** One review requirement: `count` distinct eligible humans must approve. */
typedef struct so_requirement {
	char *group;          /**< members of this group are eligible, or NULL */
	char **principals;    /**< or these principals (NULL-terminated), or NULL */
	int64_t count;
	char *escalate_group; /**< after escalate_at, members of this group are eligible too */
	int64_t escalate_at;  /**< ms; 0 = no escalation */
	int escalated;        /**< the escalation has happened (recorded by so_core_escalate) */
} so_requirement_t;

enum so_outcome { SO_OUT_ALLOW, SO_OUT_REVIEW, SO_OUT_DENY };
const char *so_outcome_name(enum so_outcome o);

/** What policy decided for a request (filled by src/policy, stored with the request). */
typedef struct so_decision {
	enum so_outcome outcome;
	char *policy_version;        /**< "sha256:<hex>" */
	json_t *rules;               /**< the trace: [{name, decide, reason, ...}], owned */
	json_t *route;               /**< where reviews are delivered: [{slack: ...}, ...], owned */
	so_requirement_t *reqs;      /**< for review */
	size_t nreqs;
	int owner_may_approve;
	int64_t ttl;                 /**< seconds a review may take */
	int64_t grant_ttl;           /**< seconds an approval may wait for its claim */
} so_decision_t;

void so_decision_clear(so_decision_t *d);

enum so_verdict { SO_APPROVE, SO_DENY };

typedef struct so_review {
	char *reviewer;
	enum so_verdict verdict;
	char *channel; /**< api, cli, slack, teams, console */
	char *comment;
	int64_t at;
} so_review_t;

#define SO_ID_LEN 30 /* "req_" + 26 */

typedef struct so_request {
	char id[SO_ID_LEN + 1];
	enum so_status status;
	char *requester;
	char *on_behalf_of;   /**< or NULL */
	char *owner;          /**< the requester's owner when submitted, or NULL */
	json_t *action;       /**< owned */
	char *intent;         /**< or NULL */
	json_t *context;      /**< owned, or NULL */
	char digest[65];
	so_decision_t decision;
	json_t *anomaly;      /**< owned: {score, reasons} */
	so_review_t *reviews;
	size_t nreviews;
	char *idempotency_key;
	int64_t created_at, expires_at, decided_at, grant_expires_at, claimed_at, finished_at;
	int has_result;
	int64_t exit_code;
	char *result_detail;
	char *doc_text; /**< the stored form as canonical JSON when already made, or NULL */
} so_request_t;

void so_request_free(so_request_t *r);

/** Why a change was refused: the HTTP status, the API error code and a sentence. */
typedef struct so_core_err {
	int http;
	const char *code;
	char message[256];
} so_core_err_t;

/** Limits on a submitted request that are not JSON-generic. */
#define SO_MAX_TTL_SECONDS 86400
#define SO_MAX_IDEMPOTENCY_KEY 200

/**
 * Make a request id from the time and 10 random bytes (ULID layout, Crockford base32).
 */
void so_core_make_id(int64_t now, const unsigned char rnd[10], char out[SO_ID_LEN + 1]);

/**
 * Validate a submission body and build the request in `*out` (status not yet decided).
 * `body` is borrowed; the request takes its own references. Fills digest, owner, times
 * except expiry (set by so_core_apply_decision()).
 */
int so_core_new_request(const so_directory_t *dir, const so_principal_t *requester,
                        const json_t *body, int64_t now, const unsigned char rnd[10],
                        so_request_t **out, so_core_err_t *err);

/**
 * Set status and times from the decision (moves `d` into the request). A `ttl_override` > 0
 * shortens the pending time below the policy's; it never lengthens it.
 */
void so_core_apply_decision(so_request_t *r, so_decision_t *d, int64_t ttl_override, int64_t now);

/** The ttl_seconds asked for in a submission body, or 0. */
int64_t so_core_requested_ttl(const json_t *body);

/**
 * Record a review by `reviewer`. Enforces: humans only, no self-approval (requester, the one it
 * is on behalf of, the requester's owner unless owner_may_approve), eligibility, one review per
 * human, pending and not expired. On SO_OK the review is appended and the status may move to
 * approved or denied.
 */
int so_core_review(const so_directory_t *dir, so_request_t *r, const so_principal_t *reviewer,
                   enum so_verdict verdict, const char *comment, const char *channel, int64_t now,
                   so_core_err_t *err);

/**
 * Whether `reviewer` could review `r` at `now`, without changing it: SO_OK, or the refusal
 * so_core_review() would give (self_approval, not_pending, not_eligible, ...) in `err`.
 */
int so_core_may_review(const so_request_t *r, const so_principal_t *reviewer, int64_t now,
                       so_core_err_t *err);

/** Whether the approvals recorded so far meet every requirement with distinct humans. */
int so_core_quorum_met(const so_directory_t *dir, const so_request_t *r);
/** Whether `p` may fill a seat of requirement `q` (escalation included once it happened). */
int so_core_eligible_for(const so_requirement_t *q, const so_principal_t *p);
/**
 * Escalate every requirement whose time has come (pending requests only). Returns the number
 * of requirements escalated now (0 when nothing changed).
 */
int so_core_escalate(so_request_t *r, int64_t now);
/** The earliest escalation still to happen, or 0. */
int64_t so_core_next_escalation(const so_request_t *r);
/** Whether `p` is eligible under at least one requirement (ignores self-approval rules). */
int so_core_eligible(const so_request_t *r, const so_principal_t *p);
/** Whether `p` is barred from reviewing `r` by separation of duties. */
int so_core_is_self(const so_request_t *r, const so_principal_t *p);

int so_core_cancel(so_request_t *r, const so_principal_t *caller, int64_t now, so_core_err_t *err);
int so_core_claim(so_request_t *r, const so_principal_t *caller, const char *digest, int64_t now,
                  so_core_err_t *err);
int so_core_result(so_request_t *r, const so_principal_t *caller, int64_t exit_code,
                   const char *detail, int64_t now, so_core_err_t *err);
/**
 * Expire a request whose time is up: pending past expires_at, or approved past
 * grant_expires_at. Returns 1 when it changed the request, else 0.
 */
int so_core_expire(so_request_t *r, int64_t now);

/**
 * Whether `p` may see `r`: requester, on_behalf_of, owner, a human eligible to review it,
 * or a member of `admin_group` / `auditor_group`.
 */
int so_core_may_view(const so_request_t *r, const so_principal_t *p, const char *admin_group,
                     const char *auditor_group);

/** The request as the API shows it (a new reference). NULL on ENOMEM. */
json_t *so_request_to_json(const so_directory_t *dir, const so_request_t *r);
/**
 * The stored form (everything but reviews, which the store keeps in rows). New reference.
 */
json_t *so_request_to_doc(const so_request_t *r);
/**
 * Make r->doc_text (the canonical stored form) so that storing and auditing the request
 * need no more JSON work. Valid until the request changes. SO_OK or SO_ENOMEM.
 */
int so_request_seal(so_request_t *r);
/** Rebuild from the stored form; reviews are added by the store. SO_OK or SO_EINVAL. */
int so_request_from_doc(const json_t *doc, so_request_t **out);
/** Review <-> JSON, shared by the API and the store. */
json_t *so_review_to_json(const so_review_t *rv);
int so_request_add_review(so_request_t *r, const char *reviewer, enum so_verdict v,
                          const char *channel, const char *comment, int64_t at);

#endif
