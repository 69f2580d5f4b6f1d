/**
 * libsignoff: the C client of the signoff daemon (HTTP API v1, see docs/api.md).
 *
 * One so_client_t talks to one daemon with one token. It keeps one HTTP connection open
 * between calls and is not thread-safe: two threads must never use one client at the same
 * time (give each thread, or each goroutine, its own). The client sets CURLOPT_NOSIGNAL; a
 * program that may write to a closed connection should ignore SIGPIPE.
 *
 * Every call returns SO_CLIENT_OK (0) or a negative SO_CLIENT_E* code, and fills the caller's
 * so_client_error_t (when not NULL) with the HTTP status and the daemon's error code and
 * message. Answers are jansson values: on success `*out` (when `out` is not NULL) holds a new
 * reference that the caller releases with json_decref(); on failure `*out` is set to NULL.
 * Pass `out` as NULL to discard the answer.
 *
 * Strings and JSON values passed in are borrowed for the duration of the call only.
 *
 * The client fails closed: an answer it cannot read (not JSON, over SO_CLIENT_MAX_RESPONSE,
 * cut short) is an error, never a success.
 */
#ifndef SIGNOFF_CLIENT_H
#define SIGNOFF_CLIENT_H

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Largest answer body the client reads; a longer one fails with SO_CLIENT_ETOOLARGE. */
#define SO_CLIENT_MAX_RESPONSE (8u * 1024u * 1024u)

/** Longest long-poll the client asks for in one call (the daemon may clamp it lower). */
#define SO_CLIENT_MAX_WAIT 300

/** Longest daemon error code and message kept in so_client_error_t. */
#define SO_CLIENT_CODE_MAX 64
#define SO_CLIENT_MESSAGE_MAX 512

/**
 * Result codes. The small ones share their values with the daemon's internal codes
 * (src/common/error.h); the client-only ones start at -100.
 */
enum so_client_status {
	SO_CLIENT_OK = 0,
	SO_CLIENT_ENOMEM = -1,         /**< out of memory */
	SO_CLIENT_EINVAL = -2,         /**< bad argument (e.g. a malformed id or URL) */
	SO_CLIENT_EPROTO = -3,         /**< the answer is not the JSON the API promises */
	SO_CLIENT_ETOOLARGE = -6,      /**< the answer is over SO_CLIENT_MAX_RESPONSE */
	SO_CLIENT_EUNREACHABLE = -101, /**< no answer: refused, unresolvable, timed out, reset */
	SO_CLIENT_EHTTP = -102,        /**< the daemon answered with an error status; see the error */
	SO_CLIENT_EABORTED = -103,     /**< the tick callback asked to stop the call */
	SO_CLIENT_ESPENT = -104,       /**< the request was already claimed: a grant runs once */
};

/**
 * What went wrong in the last call. Plain fixed-size storage: nothing to free.
 * Filled on success too (`code` 0, `http_status` the answer's status, strings empty), so a
 * caller can tell 201 (created) from 200 (an idempotent replay).
 */
typedef struct so_client_error {
	int code;                                 /**< the call's return value */
	long http_status;                         /**< 0 when the daemon never answered */
	char error_code[SO_CLIENT_CODE_MAX];      /**< the body's error.code, e.g. "self_approval" */
	char message[SO_CLIENT_MESSAGE_MAX];      /**< error.message, or what the transport said */
} so_client_error_t;

typedef struct so_client so_client_t;

/** A review decision for so_client_review(). */
typedef enum so_client_decision {
	SO_CLIENT_APPROVE,
	SO_CLIENT_DENY,
} so_client_decision_t;

/** What to submit. Zero the struct, then fill what you need; everything is borrowed. */
typedef struct so_client_submit {
	const json_t *action;        /**< required: object with at least "kind" */
	const char *intent;          /**< why, in the agent's words; NULL to leave out */
	const json_t *context;       /**< object shown to reviewers; NULL to leave out */
	const char *on_behalf_of;    /**< human principal id; NULL to leave out */
	long ttl_seconds;            /**< 1..86400; 0 for the policy's default */
	const char *idempotency_key; /**< at most 200 bytes; NULL for none */
} so_client_submit_t;

/**
 * Called about once a second while a call waits on the network (libcurl's progress
 * callback). Return 0 to go on; non-zero aborts the call, which returns SO_CLIENT_EABORTED.
 * Use it to react to a signal flag or to refresh a status line during a long-poll.
 */
typedef int (*so_client_tick_fn)(void *arg);

/** A static English description of a SO_CLIENT_* code. */
const char *so_client_strerror(int code);

/** The library version, e.g. "0.1.0". Static storage. */
const char *so_client_version(void);

/**
 * Create a client for the daemon at `url` (http:// or https://, no query) that authenticates
 * with `token` (may be NULL for calls that need none, e.g. health checks). `timeout_ms` bounds
 * each call, not counting the time a long-poll is asked to wait; 0 picks 30 seconds.
 * The client copies `url` and `token`; the copy of the token is wiped on so_client_free().
 * On success `*out` is owned by the caller (so_client_free()). Returns SO_CLIENT_OK,
 * SO_CLIENT_EINVAL (bad URL or token) or SO_CLIENT_ENOMEM.
 */
int so_client_new(const char *url, const char *token, long timeout_ms, so_client_t **out);

/** Release the client and wipe its token. NULL is a no-op. */
void so_client_free(so_client_t *c);

/** The base URL the client talks to (no trailing slash). Owned by the client. */
const char *so_client_url(const so_client_t *c);

/** Install (or with NULL remove) the tick callback; `arg` is borrowed until removed. */
void so_client_set_tick(so_client_t *c, so_client_tick_fn fn, void *arg);

/**
 * Close the connection and every descriptor the client holds (libcurl keeps some that are
 * not close-on-exec). Call it before fork+exec so the child inherits none of them; the next
 * call opens what it needs. Returns SO_CLIENT_OK or SO_CLIENT_ENOMEM (the client then fails
 * every call with SO_CLIENT_ENOMEM until freed).
 */
int so_client_disconnect(so_client_t *c);

/**
 * The digest of an action as the daemon computes it: SHA-256 of its canonical JSON (sorted
 * keys, no whitespace, shortest number forms; docs/api.md), as 64 lowercase hex and a NUL.
 * Claim with this digest, computed from the action you will perform. Returns SO_CLIENT_OK,
 * or SO_CLIENT_EINVAL when `action` is not an object of UTF-8 text.
 */
int so_client_digest(const json_t *action, char digest[65]);

/** POST /v1/requests. `*out` is the new request (201) or the first one (200, idempotent replay). */
int so_client_submit(so_client_t *c, const so_client_submit_t *req, json_t **out,
                     so_client_error_t *err);

/**
 * GET /v1/requests/{id}. With `wait_seconds` > 0 (at most SO_CLIENT_MAX_WAIT) the daemon holds
 * the answer while the request is pending, up to that long; the answer may still be pending.
 */
int so_client_get(so_client_t *c, const char *id, int wait_seconds, json_t **out,
                  so_client_error_t *err);

/**
 * GET /v1/requests. `status` filters (NULL for all), `limit` 1..200 (0 for the default),
 * `cursor` continues a previous list (NULL to start). `*out` is {"requests": [...], "next"}.
 */
int so_client_list(so_client_t *c, const char *status, int limit, const char *cursor,
                   json_t **out, so_client_error_t *err);

/** POST /v1/requests/{id}/reviews. `comment` may be NULL. `*out` is the request after it. */
int so_client_review(so_client_t *c, const char *id, so_client_decision_t decision,
                     const char *comment, json_t **out, so_client_error_t *err);

/** POST /v1/requests/{id}/cancel (requester only, while pending). `*out` is the request. */
int so_client_cancel(so_client_t *c, const char *id, json_t **out, so_client_error_t *err);

/**
 * POST /v1/requests/{id}/claim with the action digest the caller computed itself (64 hex).
 * Succeeds once per approved request; `*out` is the request, now "claimed".
 */
int so_client_claim(so_client_t *c, const char *id, const char *digest, json_t **out,
                    so_client_error_t *err);

/** POST /v1/requests/{id}/result after running a claimed action. `detail` may be NULL. */
int so_client_result(so_client_t *c, const char *id, int exit_code, const char *detail,
                     json_t **out, so_client_error_t *err);

/** POST /v1/tokens (admins). `*out` is {"token", "principal", "token_sha256"}; shown once. */
int so_client_token_issue(so_client_t *c, const char *principal, json_t **out,
                          so_client_error_t *err);

/** GET /v1/whoami. `*out` is {"id", "kind", "groups", "owner"} of the token's principal. */
int so_client_whoami(so_client_t *c, json_t **out, so_client_error_t *err);

/**
 * GET or POST any `/v1/...` path that answers JSON (audit checkpoints, proofs, explain...).
 * `path` may carry a query string the caller has escaped. On success `*out` is a new reference
 * the caller owns.
 */
int so_client_get_json(so_client_t *c, const char *path, json_t **out, so_client_error_t *err);
int so_client_post_json(so_client_t *c, const char *path, const json_t *body, json_t **out,
                        so_client_error_t *err);

/** Receives a streamed answer piece by piece; return 0 to go on, non-zero to stop. */
typedef int (*so_client_stream_fn)(const char *data, size_t len, void *ctx);

/**
 * GET `path` and hand a 2xx body to `fn` as it arrives (no size limit: an audit export).
 * An error answer is read into `err` as usual. The call may take up to an hour.
 */
int so_client_get_stream(so_client_t *c, const char *path, so_client_stream_fn fn, void *ctx,
                         so_client_error_t *err);

/* ---- the gate: submit, wait, claim ---- */

/** Receives each version of a request while a call waits on it (for a progress line). */
typedef void (*so_client_update_fn)(const json_t *request, void *arg);

/**
 * so_client_submit(), then check that the daemon hashed the very action submitted: `digest`
 * receives the action's digest computed here (64 hex and a NUL), and the answer must carry
 * the same one. A mismatch cancels the request and fails with SO_CLIENT_EPROTO. Claim with
 * this `digest`, never with the one the daemon returned.
 */
int so_client_submit_checked(so_client_t *c, const so_client_submit_t *req, char digest[65],
                             json_t **out, so_client_error_t *err);

/**
 * Long-poll request `id` until it is no longer "pending", or until `timeout_seconds` have
 * passed (0: no limit of our own; the request's expiry ends the wait). `on_update` (may be
 * NULL) sees each version. On success `*out` is the latest version: still "pending" only when
 * the time ran out. The tick callback, if installed, can stop the wait (SO_CLIENT_EABORTED).
 * A daemon that goes away meanwhile (a node stopping behind a load balancer, a restart) or
 * answers 502/503/504 is asked again, with short pauses, for up to 10 s before the wait fails
 * with that error: reading is safe to repeat. Submitting and claiming are never repeated.
 */
int so_client_wait(so_client_t *c, const char *id, long timeout_seconds,
                   so_client_update_fn on_update, void *arg, json_t **out,
                   so_client_error_t *err);

/** How so_client_gate() ended, when it returned SO_CLIENT_OK. */
typedef enum so_client_verdict {
	SO_CLIENT_PROCEED = 1, /**< approved and claimed: perform the action exactly as submitted,
	                            once, then so_client_result() */
	SO_CLIENT_DENIED,      /**< denied by policy or by a reviewer */
	SO_CLIENT_EXPIRED,     /**< expired or cancelled undecided, or the grant expired unclaimed */
	SO_CLIENT_TIMED_OUT,   /**< still pending after timeout_seconds; the request was cancelled */
	SO_CLIENT_STOPPED,     /**< should_stop() ended the wait; the request was cancelled */
} so_client_verdict_t;

/** How long and how to wait in so_client_gate(). Zero it, then fill what you need. */
typedef struct so_client_gate_opts {
	long timeout_seconds;          /**< 0: wait as long as the request may stay pending */
	so_client_update_fn on_update; /**< sees each version of the request; may be NULL */
	so_client_tick_fn should_stop; /**< polled about once a second while waiting; non-zero
	                                    cancels the request (SO_CLIENT_STOPPED); may be NULL */
	void *arg;                     /**< passed to both */
} so_client_gate_opts_t;

/** Room for a request id and its NUL: the client accepts ids of [A-Za-z0-9_-]{1,64}. */
#define SO_CLIENT_ID_MAX 65

/** The outcome of so_client_gate(). Plain storage: nothing to free. */
typedef struct so_client_gate {
	so_client_verdict_t verdict;        /**< 0 when the call failed */
	char id[SO_CLIENT_ID_MAX];          /**< the request's id; "" if it was never created */
	char digest[65];                    /**< the action's digest, computed here */
	char reason[SO_CLIENT_MESSAGE_MAX]; /**< one line for people and models (see
	                                         so_client_describe); may hold reviewers' text */
} so_client_gate_t;

/**
 * The whole gate in one call: so_client_submit_checked(), wait for the decision (as
 * so_client_wait), and when approved claim the grant with our own digest. Returns
 * SO_CLIENT_OK with `gate->verdict` set, or an error code: then nothing was granted and
 * nothing may run (fail closed); `gate->id` says which request, if one was created.
 * Only SO_CLIENT_PROCEED allows the action. `*out` (when not NULL) is the latest version of
 * the request. While it waits the gate installs its own tick callback and removes it at the
 * end, replacing any installed before.
 */
int so_client_gate(so_client_t *c, const so_client_submit_t *req,
                   const so_client_gate_opts_t *opts, so_client_gate_t *gate, json_t **out,
                   so_client_error_t *err);

/**
 * One line saying where a request stands, in words: "approved by bob, carol", "allowed by
 * policy rule read-only", "denied by bob: not during the freeze", "denied by policy rule
 * no-prod-deletes: <its reason>", "expired", "pending". Reviewers' comments and rule reasons
 * are copied as they are: escape them for a terminal, as JSON does for a model.
 */
void so_client_describe(const json_t *request, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif
