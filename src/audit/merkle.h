/**
 * The Merkle tree over the audit log, as in RFC 6962 / RFC 9162: leaf hash
 * SHA-256(0x00 || leaf), node hash SHA-256(0x01 || left || right), the empty tree's hash
 * SHA-256(""), and a tree of n > 1 leaves split at the largest power of two below n.
 *
 * signoff's leaves are the 32-byte chain hashes of the audit events (docs/audit-format.md).
 *
 * Pure: no I/O. Proof functions take the leaf hashes (already hashed with 0x00) as an array
 * the caller owns; proofs are written into caller-provided arrays of SO_MERKLE_MAX_PROOF.
 */
#ifndef SO_AUDIT_MERKLE_H
#define SO_AUDIT_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define SO_HASH_LEN 32
#define SO_MERKLE_MAX_PROOF 130 /* 2 * 64 levels, with room */

typedef unsigned char so_hash_t[SO_HASH_LEN];

/** SHA-256 (OpenSSL, for throughput on long logs). */
void so_sha256(const void *data, size_t len, so_hash_t out);
void so_merkle_leaf_hash(const void *leaf, size_t len, so_hash_t out);
void so_merkle_node_hash(const so_hash_t left, const so_hash_t right, so_hash_t out);

/**
 * The right edge of a tree: the roots of its perfect subtrees, one per set bit of `size`.
 * Appending a leaf is O(log n) and the root is O(log n): the log's tree is kept this way.
 */
typedef struct so_merkle_frontier {
	uint64_t size;
	so_hash_t level[64]; /**< level[i] is valid when bit i of size is set */
} so_merkle_frontier_t;

void so_merkle_frontier_init(so_merkle_frontier_t *f);
/** Append a leaf hash (SHA-256(0x00 || leaf)). */
void so_merkle_append(so_merkle_frontier_t *f, const so_hash_t leaf_hash);
/** The root of the tree so far. */
void so_merkle_frontier_root(const so_merkle_frontier_t *f, so_hash_t out);

/**
 * The frontier as text: the hex of each level present (lowest bit of size first), joined
 * by commas. `out` needs 64 * 65 + 1 bytes. Parsing checks the count against `size`.
 */
void so_merkle_frontier_text(const so_merkle_frontier_t *f, char *out);
int so_merkle_frontier_parse(uint64_t size, const char *text, so_merkle_frontier_t *f);

/** The root of leaves[0, n). */
void so_merkle_root(const so_hash_t *leaves, uint64_t n, so_hash_t out);

/**
 * Inclusion proof of leaf `index` in the tree of the first `size` leaves (RFC 9162 §2.1.3.1).
 * Returns the proof length, or -1 when index >= size.
 */
int so_merkle_inclusion_proof(const so_hash_t *leaves, uint64_t size, uint64_t index,
                              so_hash_t *proof);
/** Check an inclusion proof (RFC 9162 §2.1.3.2). Returns 1 when it holds. */
int so_merkle_verify_inclusion(const so_hash_t leaf_hash, uint64_t index, uint64_t size,
                               const so_hash_t *proof, size_t len, const so_hash_t root);

/**
 * Consistency proof between the trees of the first `old_size` and `size` leaves
 * (RFC 9162 §2.1.4.1). Returns the proof length, or -1 when not 0 < old_size <= size.
 */
int so_merkle_consistency_proof(const so_hash_t *leaves, uint64_t old_size, uint64_t size,
                                so_hash_t *proof);
/**
 * The same proofs once the leaves before base->size were archived: `online` holds the leaf
 * hashes from base->size on and `base` the frontier there. Proofs about archived leaves, or
 * from a size below the base, are -1 (they live with the archive).
 */
int so_merkle_inclusion_proof_from(const so_merkle_frontier_t *base, const so_hash_t *online,
                                   uint64_t size, uint64_t index, so_hash_t *proof);
int so_merkle_consistency_proof_from(const so_merkle_frontier_t *base, const so_hash_t *online,
                                     uint64_t old_size, uint64_t size, so_hash_t *proof);

/** Check a consistency proof (RFC 9162 §2.1.4.2). Returns 1 when it holds. */
int so_merkle_verify_consistency(uint64_t old_size, uint64_t size, const so_hash_t old_root,
                                 const so_hash_t root, const so_hash_t *proof, size_t len);

#endif
