/**
 * The audit log's hash chain: every state change appends one event, in the same store
 * transaction as the change itself (no audit, no change).
 *
 * An event is {seq, at, type, request_id, actor, data}; its hash is
 * SHA-256(prev_hash_bytes || canonical_json(event)), hex. The first event's prev_hash is
 * 64 zeros. docs/audit-format.md has the details. Merkle tree and signed checkpoints build
 * on this chain (see the audit issue).
 */
#ifndef SO_AUDIT_AUDIT_H
#define SO_AUDIT_AUDIT_H

#include <stdint.h>

#include <jansson.h>

#include "store/store.h"

/**
 * Append an event inside the caller's open transaction on `s`. `data` is stolen (may be NULL
 * for {}). Returns SO_OK or a store error, in which case the caller must roll back.
 */
int so_audit_append(so_store_t *s, const char *type, const char *request_id,
                    const char *actor, json_t *data, int64_t now);

/** The same with `data` already in canonical JSON (borrowed). */
int so_audit_append_text(so_store_t *s, const char *type, const char *request_id,
                         const char *actor, const char *data_text, int64_t now);

/**
 * The hash of an event given its fields: `event` is the JSON object without prev_hash and
 * hash. Writes 64 hex chars + NUL to `out`.
 */
int so_audit_hash(const char prev_hash[65], const json_t *event, char out[65]);

/**
 * Check a list of events (as GET /v1/audit returns them) continues a chain ending at
 * (`*seq`, `prev`); updates both. Returns SO_OK, or SO_EINVAL with the first bad seq in `*bad`.
 */
int so_audit_verify_events(const json_t *events, int64_t *seq, char prev[65], int64_t *bad);

/** The Ed25519 key that signs checkpoints. */
typedef struct so_audit_key {
	unsigned char pk[32];
	unsigned char sk[64];
} so_audit_key_t;

/**
 * Load the signing key from `path`, creating it (mode 0600) when the file does not exist.
 * Refuses a key file that others may read. Wipe it with so_audit_key_wipe().
 */
int so_audit_key_load(const char *path, so_audit_key_t *key, char *err, size_t errlen);
void so_audit_key_wipe(so_audit_key_t *key);
/** Create a new key file at `path` (which must not exist), mode 0600. */
int so_audit_key_create(const char *path, so_audit_key_t *key, char *err, size_t errlen);
/** Put a key file in place (rename, then fsync the directory). */
int so_audit_key_install(const char *from, const char *to, char *err, size_t errlen);

#endif
