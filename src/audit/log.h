/**
 * The audit log as a verifiable object: event lines, signed checkpoints, and a streaming
 * verifier that recomputes the hash chain, the Merkle tree and every checkpoint signature.
 *
 * An export (and `GET /v1/audit/export`) is JSON lines:
 *   {"event":EVENT,"hash":"<64 hex>","prev_hash":"<64 hex>"}
 *       EVENT is the canonical JSON of {actor, at, data, request_id, seq, type} and
 *       hash = SHA-256(prev_hash bytes || EVENT): the chain (docs/audit-format.md)
 *   {"checkpoint":{"at":"...","key_id":"...","root":"<hex>","signature":"<hex>","size":N}}
 *       placed right after the event whose seq is N; root is the RFC 6962 Merkle root of
 *       the first N leaves, leaf i being the chain hash of event i + 1
 *   {"export":{...}} a header, ignored by the verifier
 *
 * Pure: no I/O. Ownership: a verifier owns its scratch memory (so_audit_verifier_free()).
 */
#ifndef SO_AUDIT_LOG_H
#define SO_AUDIT_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "audit/merkle.h"
#include "common/buf.h"

#define SO_KEY_ID_LEN 16 /* hex of the first 8 bytes of SHA-256(public key) */

typedef struct so_checkpoint {
	uint64_t size;
	so_hash_t root;
	int64_t at; /* ms */
	char key_id[SO_KEY_ID_LEN + 1];
	unsigned char signature[64];
} so_checkpoint_t;

/** The key id of an Ed25519 public key. */
void so_audit_key_id(const unsigned char pk[32], char out[SO_KEY_ID_LEN + 1]);

/** The exact bytes a checkpoint signs ("signoff-checkpoint/v1\n..."), into `b`. */
int so_checkpoint_message(const so_checkpoint_t *cp, so_buf_t *b);
/** Sign `cp` (fills key_id and signature) with the 64-byte libsodium secret key. */
int so_checkpoint_sign(so_checkpoint_t *cp, const unsigned char sk[64], const unsigned char pk[32]);
/** 1 when the signature holds for `pk`. */
int so_checkpoint_verify(const so_checkpoint_t *cp, const unsigned char pk[32]);

/** One export line for a checkpoint (no newline), into `b`. */
int so_checkpoint_line(const so_checkpoint_t *cp, so_buf_t *b);
/** Parse a checkpoint object ({"at","key_id","root","signature","size"}) given as text. */
int so_checkpoint_parse(const char *json, size_t len, so_checkpoint_t *cp);

/**
 * The canonical EVENT for a stored row; `data` is already canonical JSON. Appends to `b`.
 * `request_id` and `actor` may be NULL.
 */
int so_audit_event_canonical(int64_t seq, int64_t at, const char *type, const char *request_id,
                             const char *actor, const char *data, so_buf_t *b);

/** One export line for an event (no newline): {"event":EVENT,"hash":..,"prev_hash":..}. */
int so_audit_event_line(const char *event, size_t len, const char hash[65],
                        const char prev_hash[65], so_buf_t *b);

typedef struct so_audit_verify_result {
	int ok;
	int64_t events;          /**< events checked */
	int64_t checkpoints;     /**< checkpoints whose root and signature held */
	int64_t unsigned_tail;   /**< events after the last checkpoint */
	uint64_t signed_size;    /**< size of the last good checkpoint */
	int64_t first_bad_seq;   /**< where it went wrong (0 when ok) */
	int64_t base;            /**< the log started after this archived event (0: at 1) */
	char reason[256];
} so_audit_verify_result_t;

#define SO_AUDIT_MAX_KEYS 64

typedef struct so_audit_verifier {
	unsigned char keys[SO_AUDIT_MAX_KEYS][32]; /**< trusted public keys */
	size_t nkeys;
	unsigned char pending[SO_AUDIT_MAX_KEYS][32]; /**< announced by audit.key_rotated events */
	int64_t pending_seq[SO_AUDIT_MAX_KEYS];       /**< ... at these events */
	size_t npending;
	int64_t seq;                     /**< last event seen */
	char prev[65];                   /**< its hash */
	so_merkle_frontier_t tree;
	uint64_t last_checkpoint;        /**< size of the last checkpoint seen */
	int64_t base;                    /**< events up to here were archived (0: none) */
	int64_t through;                 /**< the export header's last event, or -1 */
	int lines;                       /**< lines seen */
	uint64_t max_checkpoint;         /**< largest size any checkpoint claimed */
	so_buf_t scratch;
	so_audit_verify_result_t result;
} so_audit_verifier_t;

/**
 * Start verifying from the beginning of the log, trusting `keys`. A key announced by an
 * audit.key_rotated event becomes trusted once a checkpoint signed by a trusted key covers
 * that event, so pinning the first key is enough to follow rotations.
 */
void so_audit_verifier_init(so_audit_verifier_t *v, const unsigned char (*keys)[32], size_t nkeys);
/**
 * Start after an archived prefix instead of at event 1: the last archived event's seq and
 * hash and the Merkle frontier there. The base is not trusted by itself: the next checkpoint
 * is signed over a root computed from it, so a false base fails there.
 */
int so_audit_verifier_start_at(so_audit_verifier_t *v, int64_t seq, const char *hash,
                               const char *frontier_text);

/** Feed one event: its canonical bytes and the hashes it carries. SO_OK or SO_EINVAL. */
int so_audit_verifier_event(so_audit_verifier_t *v, const char *event, size_t len,
                            const char *prev_hash, const char *hash);
/** Feed one checkpoint (in stream order, after the event at its size). */
int so_audit_verifier_checkpoint(so_audit_verifier_t *v, const so_checkpoint_t *cp);
/** Feed one export line (event, checkpoint or header). */
int so_audit_verifier_line(so_audit_verifier_t *v, const char *line, size_t len);
/** Finish: checks for truncation against the checkpoints seen; fills `out`. */
void so_audit_verifier_finish(so_audit_verifier_t *v, so_audit_verify_result_t *out);
void so_audit_verifier_free(so_audit_verifier_t *v);

#endif
