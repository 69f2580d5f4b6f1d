/**
 * The store: durable requests, reviews, audit events and tokens behind one small vtable
 * (OpenSMTPD's queue backends are the model). A backend is chosen by the URL's scheme:
 * "sqlite:PATH" today, "postgresql://..." later. Adding one touches a new file and one row
 * in the table in store.c.
 *
 * A so_store_t is one connection: use it from one thread at a time. Writes happen inside
 * begin/commit; the group-commit writer (writer.h) runs many callers' changes in one
 * transaction, each inside its own savepoint.
 *
 * Ownership: objects returned through `out` parameters belong to the caller.
 */
#ifndef SO_STORE_STORE_H
#define SO_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/core.h"

typedef struct so_store so_store_t;

/** One audit event as stored. Strings borrowed from the caller on insert. */
typedef struct so_audit_row {
	int64_t seq;
	int64_t at;
	const char *type;
	const char *request_id; /**< or NULL */
	const char *actor;      /**< or NULL */
	const char *data;       /**< canonical JSON */
	char prev_hash[65];
	char hash[65];
} so_audit_row_t;

/** A signed checkpoint as stored (hex text; src/audit/log.h has the meaning). */
typedef struct so_checkpoint_row {
	int64_t size;
	int64_t at;
	char key_id[17];
	char root[65];
	char signature[129];
} so_checkpoint_row_t;

/**
 * Where the online log starts once older events were archived: the last archived event
 * (seq, hash), the Merkle frontier at that size as text ("hex,hex,..." for the set bits of
 * seq, lowest first), and the public key that signed the checkpoint there.
 */
typedef struct so_audit_base {
	int64_t seq;
	char hash[65];
	char frontier[64 * 65 + 1];
	char public_key[65];
	int64_t at;
} so_audit_base_t;

/** One notification waiting in the outbox (src/notify). Strings owned by the row holder. */
typedef struct so_outbox_row {
	int64_t id;
	char request_id[SO_ID_LEN + 1]; /**< "" when not about a request */
	char channel[16];               /**< slack | teams | webhook */
	char kind[16];                  /**< post | update | ephemeral | event */
	char *target;                   /**< channel id, user, conversation, webhook index */
	char *body;                     /**< JSON with what the channel needs beyond the request */
	int64_t attempts;
	int64_t next_at;                /**< ms */
} so_outbox_row_t;

/** Called with each chat message sent for a request (channel, target, message reference). */
typedef int (*so_chat_message_fn)(void *ctx, const char *target, const char *ref);

/** Called for each audit row in order; a non-zero return stops the scan and is returned. */
typedef int (*so_audit_row_fn)(void *ctx, const so_audit_row_t *row);

/** Listing filter. */
typedef struct so_store_query {
	int has_status;
	enum so_status status;
	int64_t before_created; /**< cursor: only rows older than this (0 = none) */
	const char *before_id;  /**< tie-break for the cursor */
	size_t limit;
} so_store_query_t;

/** Most console sessions (and, apart, sign-in links) one principal has at once. */
#define SO_SESSIONS_PER_PRINCIPAL 20

/** The longest announcement payload (PostgreSQL's NOTIFY takes up to 7999 bytes). */
#define SO_ANNOUNCE_MAX 256

typedef struct so_store_ops {
	const char *scheme;
	int (*open)(const char *target, so_store_t **out, char *err, size_t errlen);
	void (*close)(so_store_t *s);
	int (*begin)(so_store_t *s);
	int (*commit)(so_store_t *s);
	int (*rollback)(so_store_t *s);
	int (*savepoint)(so_store_t *s);
	int (*release)(so_store_t *s);
	int (*rollback_to)(so_store_t *s);

	/** Insert a new request (with its doc) and its reviews. */
	int (*request_insert)(so_store_t *s, const so_request_t *r);
	/** Rewrite a request's doc and status; insert reviews with index >= `first_new_review`. */
	int (*request_update)(so_store_t *s, const so_request_t *r, size_t first_new_review);
	/** Load one request with its reviews; SO_ENOTFOUND when absent. */
	int (*request_get)(so_store_t *s, const char *id, so_request_t **out);
	/** The id of the request `requester` made with `key`, SO_ENOTFOUND when none. */
	int (*request_find_idem)(so_store_t *s, const char *requester, const char *key,
	                         char id[SO_ID_LEN + 1]);
	/** Newest first; `*out` is a malloc'd array of requests (free each, then the array). */
	int (*request_list)(so_store_t *s, const so_store_query_t *q, so_request_t ***out,
	                    size_t *n);
	/** Ids of requests whose time is up at `now` (pending or approved), at most `max`. */
	int (*request_due)(so_store_t *s, int64_t now, size_t max, char (**ids)[SO_ID_LEN + 1],
	                   size_t *n);
	/** Count requests by status into counts[SO_ST__COUNT]. */
	int (*request_counts)(so_store_t *s, int64_t counts[SO_ST__COUNT]);

	/** Last event's seq and hash (0 and 64 zeros for an empty log). */
	int (*audit_head)(so_store_t *s, int64_t *seq, char hash[65]);
	int (*audit_insert)(so_store_t *s, const so_audit_row_t *row);
	/** Events with seq > after, in order, at most `limit`, as a JSON array. */
	int (*audit_list)(so_store_t *s, int64_t after, size_t limit, json_t **events);

	/** Rows with seq > after, in order, at most `limit`, one call of `fn` each. */
	int (*audit_each)(so_store_t *s, int64_t after, size_t limit, so_audit_row_fn fn, void *ctx);
	/** The events of one request, in order. */
	int (*audit_for_request)(so_store_t *s, const char *request_id, so_audit_row_fn fn, void *ctx);
	/** The base of the online log; SO_ENOTFOUND when nothing was ever archived. */
	int (*audit_base_get)(so_store_t *s, so_audit_base_t *base);
	/** Record `base` and delete the events up to it and the checkpoints below it. */
	int (*audit_prune)(so_store_t *s, const so_audit_base_t *base);
	int (*checkpoint_insert)(so_store_t *s, const so_checkpoint_row_t *cp);
	/** The latest checkpoint; SO_ENOTFOUND when there is none. */
	int (*checkpoint_latest)(so_store_t *s, so_checkpoint_row_t *cp);
	/** Checkpoints with size > after, by size, at most `max`; `*out` malloc'd. */
	int (*checkpoint_list)(so_store_t *s, int64_t after, size_t max, so_checkpoint_row_t **out,
	                       size_t *n);
	/** The checkpoint of exactly `size`, or the first one at or above it with `at_least`. */
	int (*checkpoint_get)(so_store_t *s, int64_t size, int at_least, so_checkpoint_row_t *cp);

	/** Queue a notification (in the caller's transaction). */
	int (*outbox_insert)(so_store_t *s, const so_outbox_row_t *row, int64_t now);
	/** Pending rows due at `now`, oldest first, at most `max`; `*out` malloc'd, each row's
	 * strings too (so_outbox_rows_free). */
	int (*outbox_due)(so_store_t *s, int64_t now, size_t max, so_outbox_row_t **out, size_t *n);
	/** Whether an older row for the same request and channel is still pending. */
	int (*outbox_waiting)(so_store_t *s, const so_outbox_row_t *row, int *waiting);
	/**
	 * Mark a row done or failed (`state`), or due again at `next_at` (state NULL). A settled
	 * "ephemeral" row loses its body: private messages (sign-in links) are not kept.
	 */
	int (*outbox_settle)(so_store_t *s, int64_t id, const char *state, int64_t attempts,
	                     int64_t next_at, const char *error, int64_t now);
	/** Remember a chat message sent for a request (so updates can find it). */
	int (*chat_message_insert)(so_store_t *s, const char *request_id, const char *channel,
	                           const char *target, const char *ref, int64_t outbox_id);
	int (*chat_messages)(so_store_t *s, const char *request_id, const char *channel,
	                     so_chat_message_fn fn, void *ctx);

	int (*token_insert)(so_store_t *s, const char *sha256_hex, const char *principal, int64_t now);
	/** The principal of a live token; SO_ENOTFOUND when unknown or revoked. */
	int (*token_lookup)(so_store_t *s, const char *sha256_hex, char *principal, size_t len);
	int (*token_count)(so_store_t *s, int64_t *n);

	/**
	 * A principal's learned baseline (src/anomaly), as the JSON text it was put with: `*doc`
	 * is malloc'd, the caller frees it. SO_ENOTFOUND when none was put yet.
	 */
	int (*baseline_get)(so_store_t *s, const char *principal, char **doc);
	/** Replace a principal's baseline document. */
	int (*baseline_put)(so_store_t *s, const char *principal, const char *doc, int64_t now);

	/*
	 * Console sessions and one-time sign-in links, kept by the SHA-256 (hex) of their secret,
	 * never the secret: every node knows every session, and they outlive a restart.
	 */
	/** Keep a session or link (`kind` "session" or "link") for `principal` until
	 * `expires_at`; rows whose time is up are dropped on the way, and so are the principal's
	 * oldest of that kind past SO_SESSIONS_PER_PRINCIPAL. */
	int (*session_put)(so_store_t *s, const char *hash, const char *kind, const char *principal,
	                   int64_t expires_at, int64_t now);
	/** The principal (into `principal`, `len` bytes) and end of a live session at `now`;
	 * SO_ENOTFOUND when there is none. */
	int (*session_get)(so_store_t *s, const char *hash, int64_t now, char *principal, size_t len,
	                   int64_t *expires_at);
	/** Use a live link: it is deleted and its principal returned; SO_ENOTFOUND when unknown,
	 * used or expired. Of two at once, one gets it. */
	int (*session_take)(so_store_t *s, const char *hash, int64_t now, char *principal,
	                    size_t len);
	/** End a session (nothing when there is none). */
	int (*session_delete)(so_store_t *s, const char *hash);

	/**
	 * Remember a chat signature until `until`: `*seen` is 1 when it was already remembered
	 * (a replay), 0 when this is its first use. Of two at once, one is first. Signatures
	 * whose time is up are forgotten on the way. Runs on its own, outside any transaction.
	 */
	int (*signature_seen)(so_store_t *s, const char *sig, int64_t now, int64_t until, int *seen);

	/*
	 * For stores several nodes share (NULL in a backend only one process uses): each write
	 * transaction is serialized with every other node's (begin takes the lock), and nodes
	 * tell each other what changed.
	 */
	/** Send `payload` (at most SO_ANNOUNCE_MAX bytes) to every listening connection when the
	 * current transaction commits; nothing when it rolls back. */
	int (*announce)(so_store_t *s, const char *payload);
	/** Receive announcements on this connection (reconnecting first if it was lost). */
	int (*listen)(so_store_t *s);
	/**
	 * Wait at most `timeout_ms` for the next announcement: SO_OK with `payload` set (cut to
	 * `len`), SO_EBUSY when none came in time or `wake_fd` (if >= 0) became readable,
	 * SO_ESTORE when the connection was lost (what was sent meanwhile is lost too: call
	 * listen again, then look at what may have changed).
	 */
	int (*next_announcement)(so_store_t *s, int timeout_ms, int wake_fd, char *payload,
	                         size_t len);
	/**
	 * Take a due outbox row for delivery: it is not due again before `until` (a lease), so
	 * another node does not deliver it too. `*claimed` is 0 when it was no longer pending and
	 * due at `now` (another node took or settled it). Runs on its own, outside any transaction.
	 */
	int (*outbox_claim)(so_store_t *s, int64_t id, int64_t now, int64_t until, int *claimed);
} so_store_ops_t;

/** The backends (each in its own file). */
extern const so_store_ops_t so_store_sqlite_ops;

/** Every backend's handle starts with this. */
struct so_store {
	const so_store_ops_t *ops;
};

/**
 * Open a connection for `url` ("sqlite:var/signoff.db"). Creates the database and applies
 * the schema migrations when needed. On failure writes a message to `err`.
 */
int so_store_open(const char *url, so_store_t **out, char *err, size_t errlen);
void so_store_close(so_store_t *s);
/** Free rows returned by outbox_due. */
void so_outbox_rows_free(so_outbox_row_t *rows, size_t n);

#endif
