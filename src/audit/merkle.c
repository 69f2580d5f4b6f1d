/* RFC 6962 / RFC 9162 Merkle trees: hashing, the frontier, and proofs with their checks. */
#include <stdlib.h>
#include <string.h>

/* The low-level SHA-256 calls are deprecated in OpenSSL 3 but much faster for many small
 * inputs than the one-shot SHA256(), which looks the algorithm up on every call. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include "audit/merkle.h"

void
so_sha256(const void *data, size_t len, so_hash_t out)
{
	SHA256_CTX c;
	SHA256_Init(&c);
	SHA256_Update(&c, data, len);
	SHA256_Final(out, &c);
}

void
so_merkle_leaf_hash(const void *leaf, size_t len, so_hash_t out)
{
	static const unsigned char prefix = 0x00;
	SHA256_CTX c;
	SHA256_Init(&c);
	SHA256_Update(&c, &prefix, 1);
	SHA256_Update(&c, leaf, len);
	SHA256_Final(out, &c);
}

void
so_merkle_node_hash(const so_hash_t left, const so_hash_t right, so_hash_t out)
{
	unsigned char buf[1 + 2 * SO_HASH_LEN];
	SHA256_CTX c;
	buf[0] = 0x01;
	memcpy(buf + 1, left, SO_HASH_LEN);
	memcpy(buf + 1 + SO_HASH_LEN, right, SO_HASH_LEN);
	SHA256_Init(&c);
	SHA256_Update(&c, buf, sizeof(buf));
	SHA256_Final(out, &c);
}

void
so_merkle_frontier_init(so_merkle_frontier_t *f)
{
	memset(f, 0, sizeof(*f));
}

void
so_merkle_append(so_merkle_frontier_t *f, const so_hash_t leaf_hash)
{
	so_hash_t carry;
	memcpy(carry, leaf_hash, SO_HASH_LEN);
	int i = 0;
	/* Like adding one to a binary counter: each full level merges into the next. */
	while (f->size & ((uint64_t)1 << i)) {
		so_merkle_node_hash(f->level[i], carry, carry);
		i++;
	}
	memcpy(f->level[i], carry, SO_HASH_LEN);
	f->size++;
}

void
so_merkle_frontier_root(const so_merkle_frontier_t *f, so_hash_t out)
{
	if (!f->size) {
		so_sha256("", 0, out);
		return;
	}
	int i = 0;
	while (!(f->size & ((uint64_t)1 << i)))
		i++;
	so_hash_t acc;
	memcpy(acc, f->level[i], SO_HASH_LEN);
	/* Larger (left) subtrees fold in from below. */
	for (i++; i < 64; i++)
		if (f->size & ((uint64_t)1 << i))
			so_merkle_node_hash(f->level[i], acc, acc);
	memcpy(out, acc, SO_HASH_LEN);
}

/* The largest power of two smaller than n (n > 1). */
static uint64_t
split_point(uint64_t n)
{
	uint64_t k = 1;
	while (k << 1 < n)
		k <<= 1;
	return k;
}

void
so_merkle_root(const so_hash_t *leaves, uint64_t n, so_hash_t out)
{
	if (n == 0) {
		so_sha256("", 0, out);
		return;
	}
	if (n == 1) {
		memcpy(out, leaves[0], SO_HASH_LEN);
		return;
	}
	/* Iterative: the frontier gives the same root without recursion. */
	so_merkle_frontier_t f;
	so_merkle_frontier_init(&f);
	for (uint64_t i = 0; i < n; i++)
		so_merkle_append(&f, leaves[i]);
	so_merkle_frontier_root(&f, out);
}

/*
 * A tree seen through its leaves [base->size, n) and, for an archived prefix, the frontier
 * at base->size: any subtree the proofs need is either made of online leaves, or one of the
 * frontier's perfect subtrees, or split into those at a power of two.
 */
struct view {
	const so_merkle_frontier_t *base; /* NULL: every leaf is online */
	const so_hash_t *online;          /* leaf base->size is online[0] */
};

static uint64_t
base_size(const struct view *v)
{
	return v->base ? v->base->size : 0;
}

/* MTH of leaves [lo, hi); -1 when it needs leaves that are archived away. */
static int
mth(const struct view *v, uint64_t lo, uint64_t hi, so_hash_t out)
{
	uint64_t b = base_size(v);
	if (lo >= b) {
		so_merkle_root(v->online + (lo - b), hi - lo, out);
		return 0;
	}
	if (hi <= b) {
		/* must be one of the frontier's subtrees */
		uint64_t start = 0;
		for (int i = 63; i >= 0; i--) {
			if (!(b & ((uint64_t)1 << i)))
				continue;
			uint64_t end = start + ((uint64_t)1 << i);
			if (start == lo && end == hi) {
				memcpy(out, v->base->level[i], SO_HASH_LEN);
				return 0;
			}
			start = end;
		}
		if (hi - lo < 2)
			return -1;
	}
	so_hash_t l, r;
	uint64_t k = split_point(hi - lo);
	if (mth(v, lo, lo + k, l) || mth(v, lo + k, hi, r))
		return -1;
	so_merkle_node_hash(l, r, out);
	return 0;
}

static int
path(const struct view *v, uint64_t lo, uint64_t hi, uint64_t m, so_hash_t *proof, int len)
{
	if (len < 0 || hi - lo <= 1)
		return len;
	uint64_t k = split_point(hi - lo);
	if (m < lo + k) {
		len = path(v, lo, lo + k, m, proof, len);
		if (len < 0 || mth(v, lo + k, hi, proof[len]))
			return -1;
	} else {
		len = path(v, lo + k, hi, m, proof, len);
		if (len < 0 || mth(v, lo, lo + k, proof[len]))
			return -1;
	}
	return len + 1;
}

int
so_merkle_inclusion_proof(const so_hash_t *leaves, uint64_t size, uint64_t index,
                          so_hash_t *proof)
{
	struct view v = {NULL, leaves};
	if (index >= size)
		return -1;
	return path(&v, 0, size, index, proof, 0);
}

int
so_merkle_inclusion_proof_from(const so_merkle_frontier_t *base, const so_hash_t *online,
                               uint64_t size, uint64_t index, so_hash_t *proof)
{
	struct view v = {base, online};
	if (index >= size || index < base_size(&v) || size < base_size(&v))
		return -1;
	return path(&v, 0, size, index, proof, 0);
}

int
so_merkle_verify_inclusion(const so_hash_t leaf_hash, uint64_t index, uint64_t size,
                           const so_hash_t *proof, size_t len, const so_hash_t root)
{
	if (index >= size)
		return 0;
	uint64_t fn = index, sn = size - 1;
	so_hash_t r;
	memcpy(r, leaf_hash, SO_HASH_LEN);
	for (size_t i = 0; i < len; i++) {
		if (sn == 0)
			return 0;
		if ((fn & 1) || fn == sn) {
			so_merkle_node_hash(proof[i], r, r);
			if (!(fn & 1))
				while (!(fn & 1) && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			so_merkle_node_hash(r, proof[i], r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && memcmp(r, root, SO_HASH_LEN) == 0;
}

static int
subproof(const struct view *v, uint64_t lo, uint64_t m, uint64_t hi, int complete,
         so_hash_t *proof, int len)
{
	if (len < 0)
		return len;
	if (lo + m == hi) {
		if (complete)
			return len;
		return mth(v, lo, hi, proof[len]) ? -1 : len + 1;
	}
	uint64_t n = hi - lo, k = split_point(n);
	if (m <= k) {
		len = subproof(v, lo, m, lo + k, complete, proof, len);
		if (len < 0 || mth(v, lo + k, hi, proof[len]))
			return -1;
	} else {
		len = subproof(v, lo + k, m - k, hi, 0, proof, len);
		if (len < 0 || mth(v, lo, lo + k, proof[len]))
			return -1;
	}
	return len + 1;
}

int
so_merkle_consistency_proof(const so_hash_t *leaves, uint64_t old_size, uint64_t size,
                            so_hash_t *proof)
{
	struct view v = {NULL, leaves};
	if (old_size == 0 || old_size > size)
		return -1;
	return subproof(&v, 0, old_size, size, 1, proof, 0);
}

int
so_merkle_consistency_proof_from(const so_merkle_frontier_t *base, const so_hash_t *online,
                                 uint64_t old_size, uint64_t size, so_hash_t *proof)
{
	struct view v = {base, online};
	if (old_size == 0 || old_size > size || old_size < base_size(&v))
		return -1;
	return subproof(&v, 0, old_size, size, 1, proof, 0);
}

int
so_merkle_verify_consistency(uint64_t old_size, uint64_t size, const so_hash_t old_root,
                             const so_hash_t root, const so_hash_t *proof, size_t len)
{
	if (old_size == 0 || old_size > size)
		return 0;
	if (old_size == size)
		return len == 0 && memcmp(old_root, root, SO_HASH_LEN) == 0;
	if (len == 0)
		return 0;
	/* When old_size is a power of two, the old root itself starts the path. */
	const so_hash_t *p = proof;
	size_t n = len;
	so_hash_t first;
	int prepend = (old_size & (old_size - 1)) == 0;
	if (prepend)
		memcpy(first, old_root, SO_HASH_LEN);
	else
		memcpy(first, p[0], SO_HASH_LEN);
	size_t i = prepend ? 0 : 1;
	uint64_t fn = old_size - 1, sn = size - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	so_hash_t fr, sr;
	memcpy(fr, first, SO_HASH_LEN);
	memcpy(sr, first, SO_HASH_LEN);
	for (; i < n; i++) {
		if (sn == 0)
			return 0;
		if ((fn & 1) || fn == sn) {
			so_merkle_node_hash(p[i], fr, fr);
			so_merkle_node_hash(p[i], sr, sr);
			if (!(fn & 1))
				while (!(fn & 1) && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			so_merkle_node_hash(sr, p[i], sr);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && memcmp(fr, old_root, SO_HASH_LEN) == 0 &&
	       memcmp(sr, root, SO_HASH_LEN) == 0;
}

static void
to_hex(const so_hash_t h, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < SO_HASH_LEN; i++) {
		out[2 * i] = digits[h[i] >> 4];
		out[2 * i + 1] = digits[h[i] & 15];
	}
}

void
so_merkle_frontier_text(const so_merkle_frontier_t *f, char *out)
{
	size_t n = 0;
	for (int i = 0; i < 64; i++) {
		if (!(f->size & ((uint64_t)1 << i)))
			continue;
		if (n)
			out[n++] = ',';
		to_hex(f->level[i], out + n);
		n += 64;
	}
	out[n] = '\0';
}

static int
from_hex(const char *s, so_hash_t out)
{
	for (int i = 0; i < SO_HASH_LEN; i++) {
		int v = 0;
		for (int k = 0; k < 2; k++) {
			char c = s[2 * i + k];
			int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
			if (d < 0)
				return -1;
			v = v * 16 + d;
		}
		out[i] = (unsigned char)v;
	}
	return 0;
}

int
so_merkle_frontier_parse(uint64_t size, const char *text, so_merkle_frontier_t *f)
{
	so_merkle_frontier_init(f);
	f->size = size;
	const char *p = text;
	for (int i = 0; i < 64; i++) {
		if (!(size & ((uint64_t)1 << i)))
			continue;
		if (strlen(p) < 64 || from_hex(p, f->level[i]))
			return -1;
		p += 64;
		if (*p == ',')
			p++;
	}
	return *p ? -1 : 0;
}
