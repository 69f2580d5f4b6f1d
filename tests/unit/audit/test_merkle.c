/*
 * The RFC 6962 / RFC 9162 Merkle tree, signed checkpoints and the streaming verifier.
 *
 * Known values were computed while writing this test with Python's hashlib, independently of
 * signoff:
 *
 *   H = lambda b: hashlib.sha256(b).digest()
 *   leaf = lambda d: H(b"\0" + d);  node = lambda l, r: H(b"\1" + l + r)
 *   def mth(ls):                    # RFC 6962 section 2.1
 *       if not ls: return H(b"")
 *       if len(ls) == 1: return ls[0]
 *       k = 1
 *       while k * 2 < len(ls): k *= 2
 *       return node(mth(ls[:k]), mth(ls[k:]))
 *
 * over the leaves of the Certificate Transparency test vectors ("", 00, 10, 2021, 3031,
 * 40414243, 5051525354555657, 606162636465666768696a6b6c6d6e6f; the roots agree with CT's
 * published ones) and over leaf("leaf %d" % i). The checkpoint signature was made with the
 * RFC 8032 section 6 reference Ed25519 in Python (the same code as tests/e2e/test_audit_log.py)
 * from the seed bytes(range(32)).
 *
 * Beyond known values, the tree code is checked against a straightforward recursive
 * implementation of RFC 6962's MTH, PATH and SUBPROOF written here.
 */
#include "unit.h"

#include <sodium.h>

#include "audit/log.h"
#include "audit/merkle.h"
#include "common/buf.h"

#define MAXN 300
#define PROOF_N 70 /* every proof of every tree up to this size */
/*
 * Up to this size every bit of every proof and root is flipped in turn. Beyond it, three bits
 * of each hash (first, last, and one that moves with the case): the verifiers treat a hash as
 * 32 opaque bytes, so which bit of a hash changes cannot matter to them, and flipping them all
 * for every tree up to 70 leaves would take a minute.
 */
#define ALL_BITS_N 16

/* ---- helpers ---- */

static void
from_hex(const char *hex, unsigned char *out, size_t n)
{
	assert_int_equal(strlen(hex), 2 * n);
	assert_int_equal(sodium_hex2bin(out, n, hex, 2 * n, NULL, NULL, NULL), 0);
}

static void
assert_hash_hex(const so_hash_t h, const char *hex)
{
	char got[65];
	sodium_bin2hex(got, sizeof(got), h, SO_HASH_LEN);
	assert_string_equal(got, hex);
}

static void
flip(unsigned char *p, size_t bit)
{
	p[bit / 8] ^= (unsigned char)(1u << (bit % 8));
}

/* The next bit to flip in `nhashes` hashes, for a tree of n leaves; -1 when done. */
static long
next_bit(long bit, size_t nhashes, uint64_t n, uint64_t salt)
{
	if (nhashes == 0)
		return -1;
	if (n <= ALL_BITS_N)
		return bit + 1 < (long)(nhashes * 256) ? bit + 1 : -1;
	/* per hash: bit 0, a middle bit, bit 255 */
	long h = bit < 0 ? 0 : bit / 256, in = bit < 0 ? -1 : bit % 256;
	long mid = 1 + (long)((salt * 31 + (uint64_t)h * 17) % 254);
	if (in < 0)
		return h * 256;
	if (in == 0)
		return h * 256 + mid;
	if (in < 255)
		return h * 256 + 255;
	return h + 1 < (long)nhashes ? (h + 1) * 256 : -1;
}

#define FOR_BITS(bit, nhashes, n, salt)                                                    \
	for (long bit = next_bit(-1, (nhashes), (n), (salt)); bit >= 0;                        \
	     bit = next_bit(bit, (nhashes), (n), (salt)))

/* Whether to try `other` in place of `right` (of a tree of n leaves): every value for small
 * trees, the neighbours, the ends and a few more for larger ones. */
static int
worth_trying(uint64_t other, uint64_t right, uint64_t n)
{
	if (other == right)
		return 0;
	if (n <= ALL_BITS_N)
		return 1;
	return other + 2 >= right && other <= right + 2 ? 1
	       : other == 0 || other == 1 || other + 1 >= n ? 1
	       : other == (right ^ 1) || other == right / 2 || other == right * 2 ? 1
	       : (other * 2654435761u + right) % 11 == 0;
}

static so_hash_t *
gen_leaves(uint64_t n)
{
	so_hash_t *l = calloc(n ? n : 1, sizeof(so_hash_t));
	assert_non_null(l);
	for (uint64_t i = 0; i < n; i++) {
		char d[32];
		int len = snprintf(d, sizeof(d), "leaf %llu", (unsigned long long)i);
		so_merkle_leaf_hash(d, (size_t)len, l[i]);
	}
	return l;
}

/* RFC 6962 section 2.1, recursively, sharing nothing with src/audit/merkle.c but SHA-256. */
static uint64_t
ref_split(uint64_t n)
{
	uint64_t k = 1;
	while (k * 2 < n)
		k *= 2;
	return k;
}

static void
ref_node(const so_hash_t l, const so_hash_t r, so_hash_t out)
{
	unsigned char buf[65];
	buf[0] = 1;
	memcpy(buf + 1, l, 32);
	memcpy(buf + 33, r, 32);
	crypto_hash_sha256(out, buf, sizeof(buf));
}

static void
ref_mth(const so_hash_t *leaves, uint64_t n, so_hash_t out)
{
	if (n == 0) {
		crypto_hash_sha256(out, (const unsigned char *)"", 0);
		return;
	}
	if (n == 1) {
		memcpy(out, leaves[0], 32);
		return;
	}
	uint64_t k = ref_split(n);
	so_hash_t l, r;
	ref_mth(leaves, k, l);
	ref_mth(leaves + k, n - k, r);
	ref_node(l, r, out);
}

/* PATH(m, D[n]) */
static size_t
ref_path(const so_hash_t *leaves, uint64_t n, uint64_t m, so_hash_t *out)
{
	if (n <= 1)
		return 0;
	uint64_t k = ref_split(n);
	size_t len;
	if (m < k) {
		len = ref_path(leaves, k, m, out);
		ref_mth(leaves + k, n - k, out[len]);
	} else {
		len = ref_path(leaves + k, n - k, m - k, out);
		ref_mth(leaves, k, out[len]);
	}
	return len + 1;
}

/* SUBPROOF(m, D[n], b) */
static size_t
ref_subproof(const so_hash_t *leaves, uint64_t m, uint64_t n, int b, so_hash_t *out)
{
	if (m == n) {
		if (b)
			return 0;
		ref_mth(leaves, n, out[0]);
		return 1;
	}
	uint64_t k = ref_split(n);
	size_t len;
	if (m <= k) {
		len = ref_subproof(leaves, m, k, b, out);
		ref_mth(leaves + k, n - k, out[len]);
	} else {
		len = ref_subproof(leaves + k, m - k, n - k, 0, out);
		ref_mth(leaves, k, out[len]);
	}
	return len + 1;
}

/*
 * The root an inclusion proof leads to when read against the shape of a tree of n leaves,
 * recursively (PATH read backwards). 0 when the proof has the wrong length for that shape.
 */
static int
ref_root_from_path(const so_hash_t leaf, uint64_t i, uint64_t n, const so_hash_t *proof,
                   size_t len, so_hash_t out)
{
	if (n == 1) {
		if (len)
			return 0;
		memcpy(out, leaf, 32);
		return 1;
	}
	if (!len)
		return 0;
	uint64_t k = ref_split(n);
	so_hash_t sub;
	if (i < k) {
		if (!ref_root_from_path(leaf, i, k, proof, len - 1, sub))
			return 0;
		ref_node(sub, proof[len - 1], out);
	} else {
		if (!ref_root_from_path(leaf, i - k, n - k, proof, len - 1, sub))
			return 0;
		ref_node(proof[len - 1], sub, out);
	}
	return 1;
}

/* The leaves of the Certificate Transparency test vectors. */
static void
ct_leaves(so_hash_t out[8])
{
	static const char *data[8] = {"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
	                              "606162636465666768696a6b6c6d6e6f"};
	for (int i = 0; i < 8; i++) {
		unsigned char raw[16];
		size_t n = strlen(data[i]) / 2;
		if (n)
			from_hex(data[i], raw, n);
		so_merkle_leaf_hash(raw, n, out[i]);
	}
}

/* ---- hashing and roots ---- */

static void
test_empty_tree_is_sha256_of_nothing(void **state)
{
	so_hash_t h;
	so_merkle_root(NULL, 0, h);
	assert_hash_hex(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	so_merkle_frontier_t f;
	so_merkle_frontier_init(&f);
	so_merkle_frontier_root(&f, h);
	assert_hash_hex(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void
test_leaf_and_node_hashes_are_domain_separated(void **state)
{
	/* hashlib.sha256(b"\0").hexdigest(), and of b"\1" + 64 zero bytes */
	so_hash_t h, z = {0};
	so_merkle_leaf_hash("", 0, h);
	assert_hash_hex(h, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
	so_merkle_node_hash(z, z, h);
	char got[65];
	unsigned char buf[65] = {1};
	so_hash_t want;
	crypto_hash_sha256(want, buf, sizeof(buf));
	sodium_bin2hex(got, sizeof(got), want, 32);
	assert_hash_hex(h, got);
	/* a long leaf (past the stack buffer) is hashed the same way */
	unsigned char big[1000], both[1001];
	memset(big, 'x', sizeof(big));
	both[0] = 0;
	memcpy(both + 1, big, sizeof(big));
	so_merkle_leaf_hash(big, sizeof(big), h);
	crypto_hash_sha256(want, both, sizeof(both));
	assert_memory_equal(h, want, 32);
}

static void
test_roots_match_python_for_small_sizes(void **state)
{
	static const char *want[9] = {
	    NULL,
	    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
	};
	so_hash_t leaves[8], h;
	ct_leaves(leaves);
	for (int n = 1; n <= 8; n++) {
		so_merkle_root(leaves, (uint64_t)n, h);
		assert_hash_hex(h, want[n]);
	}
}

static void
test_roots_match_python_for_larger_sizes(void **state)
{
	static const struct {
		uint64_t n;
		const char *root;
	} want[] = {
	    {13, "cf9b4c2a44a7caa722d5d548ee64ff90a119b0c31acac3444dc583000a39d3ca"},
	    {64, "f261e23692d978fdac3fd949db5495940a437ae671b9a6dde9aa6118d003652f"},
	    {65, "a3829b45308adda5051c52c277756a3322ca8f75c41ac23b3b2a36b39cf8e96d"},
	    {255, "d71592a219d4067663eede247f9b54c3f9e0290682d55de09b495b07f1de41c9"},
	    {300, "e7afc82d38944fc7930545328091d45823288c1f734cbdac06396713ebd4b5d5"},
	};
	so_hash_t *leaves = gen_leaves(MAXN), h;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		so_merkle_root(leaves, want[i].n, h);
		assert_hash_hex(h, want[i].root);
	}
	free(leaves);
}

static void
test_frontier_root_equals_tree_root_for_every_size(void **state)
{
	so_hash_t *leaves = gen_leaves(MAXN);
	so_merkle_frontier_t f;
	so_merkle_frontier_init(&f);
	for (uint64_t n = 1; n <= MAXN; n++) {
		so_hash_t a, b, c;
		so_merkle_append(&f, leaves[n - 1]);
		assert_int_equal(f.size, n);
		so_merkle_frontier_root(&f, a);
		so_merkle_root(leaves, n, b);
		ref_mth(leaves, n, c);
		if (memcmp(a, c, 32) || memcmp(b, c, 32))
			fail_msg("size %llu: frontier, so_merkle_root and RFC 6962 MTH disagree",
			         (unsigned long long)n);
	}
	free(leaves);
}

/* ---- inclusion proofs ---- */

static void
test_inclusion_proofs_are_rfc6962_paths(void **state)
{
	so_hash_t *leaves = gen_leaves(PROOF_N);
	so_hash_t got[SO_MERKLE_MAX_PROOF], want[SO_MERKLE_MAX_PROOF];
	for (uint64_t n = 1; n <= PROOF_N; n++)
		for (uint64_t i = 0; i < n; i++) {
			int len = so_merkle_inclusion_proof(leaves, n, i, got);
			size_t wlen = ref_path(leaves, n, i, want);
			assert_int_equal(len, (int)wlen);
			if (len && memcmp(got, want, (size_t)len * 32))
				fail_msg("PATH(%llu, D[%llu]) differs from RFC 6962", (unsigned long long)i,
				         (unsigned long long)n);
		}
	assert_int_equal(so_merkle_inclusion_proof(leaves, 5, 5, got), -1);
	assert_int_equal(so_merkle_inclusion_proof(leaves, 0, 0, got), -1);
	free(leaves);
}

static void
test_every_inclusion_proof_verifies_and_every_bit_flip_fails(void **state)
{
	so_hash_t *leaves = gen_leaves(PROOF_N);
	so_hash_t proof[SO_MERKLE_MAX_PROOF], root, leaf, r2;
	for (uint64_t n = 1; n <= PROOF_N; n++) {
		so_merkle_root(leaves, n, root);
		for (uint64_t i = 0; i < n; i++) {
			int len = so_merkle_inclusion_proof(leaves, n, i, proof);
			assert_true(len >= 0);
			if (!so_merkle_verify_inclusion(leaves[i], i, n, proof, (size_t)len, root))
				fail_msg("proof of %llu in %llu does not verify", (unsigned long long)i,
				         (unsigned long long)n);
			FOR_BITS(bit, (size_t)len, n, i) {
				flip(proof[0], (size_t)bit);
				if (so_merkle_verify_inclusion(leaves[i], i, n, proof, (size_t)len, root))
					fail_msg("proof of %llu in %llu verified with bit %ld flipped",
					         (unsigned long long)i, (unsigned long long)n, bit);
				flip(proof[0], (size_t)bit);
			}
			memcpy(leaf, leaves[i], 32);
			memcpy(r2, root, 32);
			FOR_BITS(bit, 1, n, i) {
				flip(leaf, (size_t)bit);
				flip(r2, (size_t)bit);
				assert_false(so_merkle_verify_inclusion(leaf, i, n, proof, (size_t)len, root));
				assert_false(so_merkle_verify_inclusion(leaves[i], i, n, proof, (size_t)len, r2));
				flip(leaf, (size_t)bit);
				flip(r2, (size_t)bit);
			}
			/* one hash too few, one too many */
			if (len)
				assert_false(
				    so_merkle_verify_inclusion(leaves[i], i, n, proof, (size_t)len - 1, root));
			memcpy(proof[len], root, 32);
			assert_false(so_merkle_verify_inclusion(leaves[i], i, n, proof, (size_t)len + 1, root));
		}
	}
	free(leaves);
}

static void
test_inclusion_proof_for_another_index_fails(void **state)
{
	so_hash_t *leaves = gen_leaves(PROOF_N);
	so_hash_t proof[SO_MERKLE_MAX_PROOF], root;
	for (uint64_t n = 1; n <= PROOF_N; n++) {
		so_merkle_root(leaves, n, root);
		for (uint64_t i = 0; i < n; i++) {
			int len = so_merkle_inclusion_proof(leaves, n, i, proof);
			for (uint64_t j = 0; j < n + 3; j++) {
				if (!worth_trying(j, i, n))
					continue;
				/* the leaf at the wrong place, and another leaf in its place */
				if (so_merkle_verify_inclusion(leaves[i], j, n, proof, (size_t)len, root))
					fail_msg("leaf %llu proven at index %llu in %llu", (unsigned long long)i,
					         (unsigned long long)j, (unsigned long long)n);
				if (j < n &&
				    so_merkle_verify_inclusion(leaves[j], i, n, proof, (size_t)len, root))
					fail_msg("leaf %llu proven with the proof of %llu in %llu",
					         (unsigned long long)j, (unsigned long long)i, (unsigned long long)n);
			}
		}
	}
	free(leaves);
}

/*
 * A proof for size n never proves the leaf in a tree of another size m (against that tree's
 * root). Against the same root read with another size, the RFC 9162 algorithm may accept when
 * both sizes give the path the same shape (size 3 and 4 for index 0): the signed checkpoint
 * binds size and root together, so that is harmless, and the verifier must then agree exactly
 * with the recursive reference.
 */
static void
test_inclusion_proof_for_another_size_fails(void **state)
{
	so_hash_t *leaves = gen_leaves(PROOF_N + 3);
	so_hash_t proof[SO_MERKLE_MAX_PROOF], roots[PROOF_N + 4];
	for (uint64_t n = 0; n <= PROOF_N + 3; n++)
		so_merkle_root(leaves, n, roots[n]);
	for (uint64_t n = 1; n <= PROOF_N; n++)
		for (uint64_t i = 0; i < n; i++) {
			int len = so_merkle_inclusion_proof(leaves, n, i, proof);
			for (uint64_t m = 0; m <= PROOF_N + 3; m++) {
				if (!worth_trying(m, n, n))
					continue;
				if (so_merkle_verify_inclusion(leaves[i], i, m, proof, (size_t)len, roots[m]))
					fail_msg("proof of %llu in %llu verified in a tree of %llu",
					         (unsigned long long)i, (unsigned long long)n,
					         (unsigned long long)m);
				so_hash_t r;
				int ref = i < m &&
				          ref_root_from_path(leaves[i], i, m, proof, (size_t)len, r) &&
				          !memcmp(r, roots[n], 32);
				assert_int_equal(
				    so_merkle_verify_inclusion(leaves[i], i, m, proof, (size_t)len, roots[n]), ref);
			}
		}
	free(leaves);
}

/* ---- consistency proofs ---- */

static void
test_consistency_proofs_are_rfc6962_subproofs(void **state)
{
	so_hash_t *leaves = gen_leaves(PROOF_N);
	so_hash_t got[SO_MERKLE_MAX_PROOF], want[SO_MERKLE_MAX_PROOF];
	for (uint64_t n = 1; n <= PROOF_N; n++)
		for (uint64_t m = 1; m <= n; m++) {
			int len = so_merkle_consistency_proof(leaves, m, n, got);
			size_t wlen = ref_subproof(leaves, m, n, 1, want);
			assert_int_equal(len, (int)wlen);
			if (len && memcmp(got, want, (size_t)len * 32))
				fail_msg("PROOF(%llu, D[%llu]) differs from RFC 6962", (unsigned long long)m,
				         (unsigned long long)n);
		}
	assert_int_equal(so_merkle_consistency_proof(leaves, 0, 5, got), -1);
	assert_int_equal(so_merkle_consistency_proof(leaves, 6, 5, got), -1);
	free(leaves);
}

static void
test_every_consistency_proof_verifies_and_every_bit_flip_fails(void **state)
{
	so_hash_t *leaves = gen_leaves(PROOF_N + 1);
	so_hash_t proof[SO_MERKLE_MAX_PROOF], roots[PROOF_N + 2], a, b;
	for (uint64_t n = 0; n <= PROOF_N + 1; n++)
		so_merkle_root(leaves, n, roots[n]);
	for (uint64_t n = 1; n <= PROOF_N; n++)
		for (uint64_t m = 1; m <= n; m++) {
			int len = so_merkle_consistency_proof(leaves, m, n, proof);
			assert_true(len >= 0);
			if (!so_merkle_verify_consistency(m, n, roots[m], roots[n], proof, (size_t)len))
				fail_msg("consistency %llu -> %llu does not verify", (unsigned long long)m,
				         (unsigned long long)n);
			FOR_BITS(bit, (size_t)len, n, m) {
				flip(proof[0], (size_t)bit);
				if (so_merkle_verify_consistency(m, n, roots[m], roots[n], proof, (size_t)len))
					fail_msg("consistency %llu -> %llu verified with bit %ld flipped",
					         (unsigned long long)m, (unsigned long long)n, bit);
				flip(proof[0], (size_t)bit);
			}
			memcpy(a, roots[m], 32);
			memcpy(b, roots[n], 32);
			FOR_BITS(bit, 1, n, m) {
				flip(a, (size_t)bit);
				flip(b, (size_t)bit);
				if (so_merkle_verify_consistency(m, n, a, roots[n], proof, (size_t)len) ||
				    so_merkle_verify_consistency(m, n, roots[m], b, proof, (size_t)len))
					fail_msg("consistency %llu -> %llu verified with a root's bit %ld flipped",
					         (unsigned long long)m, (unsigned long long)n, bit);
				flip(a, (size_t)bit);
				flip(b, (size_t)bit);
			}
			/* truncated, extended, and read as another pair of sizes */
			if (len)
				assert_false(so_merkle_verify_consistency(m, n, roots[m], roots[n], proof,
				                                          (size_t)len - 1));
			memcpy(proof[len], roots[n], 32);
			assert_false(
			    so_merkle_verify_consistency(m, n, roots[m], roots[n], proof, (size_t)len + 1));
			assert_false(
			    so_merkle_verify_consistency(m, n + 1, roots[m], roots[n + 1], proof, (size_t)len));
			if (m > 1)
				assert_false(so_merkle_verify_consistency(m - 1, n, roots[m - 1], roots[n], proof,
				                                          (size_t)len));
			if (m < n)
				assert_false(so_merkle_verify_consistency(m + 1, n, roots[m + 1], roots[n], proof,
				                                          (size_t)len));
			/* a tree that does not extend the old one */
			if (m < n) {
				so_hash_t other[PROOF_N];
				memcpy(other, leaves, n * 32);
				flip(other[m - 1], 0);
				so_hash_t old;
				so_merkle_root(other, m, old);
				assert_false(so_merkle_verify_consistency(m, n, old, roots[n], proof, (size_t)len));
			}
		}
	assert_false(so_merkle_verify_consistency(0, 3, roots[0], roots[3], proof, 0));
	assert_false(so_merkle_verify_consistency(4, 3, roots[4], roots[3], proof, 0));
	free(leaves);
}

/* ---- checkpoints ---- */

/* The key from seed bytes(range(32)), and what Python's RFC 8032 code says about it. */
#define SEED_PK "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
#define SEED_KEY_ID "56475aa75463474c"
#define SEED_SIG7                                                                          \
	"9765be51801af0ec05bf0eeb82b215a480ba7b3b9600e848df209488d535fd4d"                     \
	"4a5f8424ecf58885de1f6f962359238b34492c5dfcff95f809312f6f6cbbc90d"

static void
seed_key(unsigned char pk[32], unsigned char sk[64])
{
	unsigned char seed[32];
	for (int i = 0; i < 32; i++)
		seed[i] = (unsigned char)i;
	assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
}

static void
ct_checkpoint(so_checkpoint_t *cp)
{
	so_hash_t leaves[8];
	ct_leaves(leaves);
	memset(cp, 0, sizeof(*cp));
	cp->size = 7;
	cp->at = 1764000000123; /* 2025-11-24T16:00:00.123Z */
	so_merkle_root(leaves, 7, cp->root);
}

static void
test_checkpoint_message_and_signature_match_python(void **state)
{
	unsigned char pk[32], sk[64], sig[64];
	char id[SO_KEY_ID_LEN + 1];
	so_checkpoint_t cp;
	so_buf_t b;
	seed_key(pk, sk);
	char pkhex[65];
	sodium_bin2hex(pkhex, sizeof(pkhex), pk, 32);
	assert_string_equal(pkhex, SEED_PK);
	so_audit_key_id(pk, id);
	assert_string_equal(id, SEED_KEY_ID);

	ct_checkpoint(&cp);
	assert_int_equal(so_checkpoint_sign(&cp, sk, pk), SO_OK);
	assert_string_equal(cp.key_id, SEED_KEY_ID);
	so_buf_init(&b, 4096);
	assert_int_equal(so_checkpoint_message(&cp, &b), SO_OK);
	assert_string_equal(so_buf_cstr(&b),
	                    "signoff-checkpoint/v1\n"
	                    "size 7\n"
	                    "root ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c\n"
	                    "time 2025-11-24T16:00:00.123Z\n"
	                    "key 56475aa75463474c\n");
	so_buf_free(&b);
	from_hex(SEED_SIG7, sig, 64);
	assert_memory_equal(cp.signature, sig, 64);
	assert_true(so_checkpoint_verify(&cp, pk));
}

static void
test_checkpoint_with_another_key_is_refused(void **state)
{
	unsigned char pk[32], sk[64], pk2[32], sk2[64];
	so_checkpoint_t cp;
	seed_key(pk, sk);
	crypto_sign_keypair(pk2, sk2);
	ct_checkpoint(&cp);
	assert_int_equal(so_checkpoint_sign(&cp, sk2, pk2), SO_OK);
	assert_true(so_checkpoint_verify(&cp, pk2));
	assert_false(so_checkpoint_verify(&cp, pk));
	/* claiming the trusted key's id does not help */
	so_audit_key_id(pk, cp.key_id);
	assert_false(so_checkpoint_verify(&cp, pk));
	assert_false(so_checkpoint_verify(&cp, pk2));
}

static void
test_checkpoint_with_any_field_changed_is_refused(void **state)
{
	unsigned char pk[32], sk[64];
	so_checkpoint_t cp, t;
	seed_key(pk, sk);
	ct_checkpoint(&cp);
	assert_int_equal(so_checkpoint_sign(&cp, sk, pk), SO_OK);
	assert_true(so_checkpoint_verify(&cp, pk));

	t = cp, t.size = 8;
	assert_false(so_checkpoint_verify(&t, pk));
	t = cp, t.size = 6;
	assert_false(so_checkpoint_verify(&t, pk));
	t = cp, t.at += 1;
	assert_false(so_checkpoint_verify(&t, pk));
	t = cp, t.at -= 1000;
	assert_false(so_checkpoint_verify(&t, pk));
	t = cp, t.key_id[3] = t.key_id[3] == '0' ? '1' : '0';
	assert_false(so_checkpoint_verify(&t, pk));
	for (size_t bit = 0; bit < 256; bit++) {
		t = cp;
		flip(t.root, bit);
		if (so_checkpoint_verify(&t, pk))
			fail_msg("checkpoint verified with root bit %zu flipped", bit);
	}
	for (size_t bit = 0; bit < 512; bit++) {
		t = cp;
		flip(t.signature, bit);
		if (so_checkpoint_verify(&t, pk))
			fail_msg("checkpoint verified with signature bit %zu flipped", bit);
	}
}

static void
test_checkpoint_line_parses_back(void **state)
{
	unsigned char pk[32], sk[64];
	so_checkpoint_t cp, back;
	so_buf_t b;
	seed_key(pk, sk);
	ct_checkpoint(&cp);
	assert_int_equal(so_checkpoint_sign(&cp, sk, pk), SO_OK);
	so_buf_init(&b, 4096);
	assert_int_equal(so_checkpoint_line(&cp, &b), SO_OK);
	assert_string_equal(so_buf_cstr(&b),
	                    "{\"checkpoint\":{\"at\":\"2025-11-24T16:00:00.123Z\",\"key_id\":\"" SEED_KEY_ID
	                    "\",\"root\":\"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"
	                    "\",\"signature\":\"" SEED_SIG7 "\",\"size\":7}}");
	const char *inner = so_buf_cstr(&b) + strlen("{\"checkpoint\":");
	assert_int_equal(so_checkpoint_parse(inner, strlen(inner) - 1, &back), SO_OK);
	assert_int_equal(back.size, cp.size);
	assert_int_equal(back.at, cp.at);
	assert_string_equal(back.key_id, cp.key_id);
	assert_memory_equal(back.root, cp.root, 32);
	assert_memory_equal(back.signature, cp.signature, 64);
	assert_true(so_checkpoint_verify(&back, pk));
	so_buf_free(&b);
	static const char *bad[] = {
	    "{}",
	    "{\"at\":\"2025-11-24T16:00:00.123Z\",\"key_id\":\"" SEED_KEY_ID "\",\"root\":\"00\","
	    "\"signature\":\"" SEED_SIG7 "\",\"size\":7}",
	    "{\"at\":\"2025-11-24T16:00:00.123Z\",\"key_id\":\"" SEED_KEY_ID "\",\"root\":\"ddb89be403809e3"
	    "25750d3d263cd78929c2942b7942a34b77e122c9594a74c8c\",\"signature\":\"" SEED_SIG7
	    "\",\"size\":0}",
	    "{\"at\":\"yesterday\",\"key_id\":\"" SEED_KEY_ID "\",\"root\":\"ddb89be403809e3"
	    "25750d3d263cd78929c2942b7942a34b77e122c9594a74c8c\",\"signature\":\"" SEED_SIG7
	    "\",\"size\":7}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(so_checkpoint_parse(bad[i], strlen(bad[i]), &back), SO_EINVAL);
}

/* ---- the verifier over a log built here ---- */

#define NEV 12
#define MAXLINES 64

static const char ZEROS[] = "0000000000000000000000000000000000000000000000000000000000000000";

static void
test_event_canonical_and_hash_match_python(void **state)
{
	/*
	 * ev = {"actor":"bob","at":"2025-11-24T16:00:00.123Z",
	 *       "data":{"comment":"ok \"quoted\"","decision":"approve"},
	 *       "request_id":"req_X","seq":3,"type":"request.reviewed"}
	 * hashlib.sha256(bytes(32) + json.dumps(ev, sort_keys=True, separators=(",", ":"),
	 *                ensure_ascii=False).encode()).hexdigest()
	 */
	so_buf_t b;
	so_buf_init(&b, 4096);
	assert_int_equal(so_audit_event_canonical(3, 1764000000123, "request.reviewed", "req_X", "bob",
	                                          "{\"comment\":\"ok \\\"quoted\\\"\",\"decision\":"
	                                          "\"approve\"}",
	                                          &b),
	                 SO_OK);
	assert_string_equal(so_buf_cstr(&b),
	                    "{\"actor\":\"bob\",\"at\":\"2025-11-24T16:00:00.123Z\",\"data\":{\"comment\":"
	                    "\"ok \\\"quoted\\\"\",\"decision\":\"approve\"},\"request_id\":\"req_X\","
	                    "\"seq\":3,\"type\":\"request.reviewed\"}");
	unsigned char in[4096] = {0};
	memcpy(in + 32, b.data, b.len);
	so_hash_t h;
	so_sha256(in, 32 + b.len, h);
	assert_hash_hex(h, "32f049410c15ea52b3776f2a99a6fed10c14ba3693a331442828e1f60cf4740e");
	so_buf_reset(&b);
	assert_int_equal(so_audit_event_canonical(1, 0, "daemon.started", NULL, NULL, "{}", &b), SO_OK);
	assert_string_equal(so_buf_cstr(&b), "{\"actor\":null,\"at\":\"1970-01-01T00:00:00.000Z\","
	                                     "\"data\":{},\"request_id\":null,\"seq\":1,\"type\":"
	                                     "\"daemon.started\"}");
	so_buf_free(&b);
}

struct event {
	int64_t seq;
	char data[64];
	char canon[512];
	char prev[65], hash[65];
};

struct log {
	struct event ev[NEV + 2];
	int nev;
	char *lines[MAXLINES];
	int nlines;
	unsigned char pk[32], sk[64], pk2[32], sk2[64];
};

/* The canonical form and chain hash of ev (seq and data set), following `prev`. */
static void
seal(struct event *ev, const char *prev)
{
	so_buf_t b;
	so_buf_init(&b, 4096);
	assert_int_equal(so_audit_event_canonical(ev->seq, 1764000000000 + ev->seq * 1000,
	                                          ev->seq % 2 ? "request.submitted" : "request.reviewed",
	                                          "req_1", ev->seq % 3 ? "bob" : NULL, ev->data, &b),
	                 SO_OK);
	assert_true(b.len < sizeof(ev->canon));
	memcpy(ev->canon, b.data, b.len + 1);
	memcpy(ev->prev, prev, 65);
	unsigned char buf[32 + 512];
	from_hex(prev, buf, 32);
	memcpy(buf + 32, b.data, b.len);
	so_hash_t h;
	so_sha256(buf, 32 + b.len, h);
	sodium_bin2hex(ev->hash, sizeof(ev->hash), h, 32);
	so_buf_free(&b);
}

static void
make_events(struct log *lg, int n)
{
	const char *prev = ZEROS;
	lg->nev = n;
	for (int i = 0; i < n; i++) {
		lg->ev[i].seq = i + 1;
		snprintf(lg->ev[i].data, sizeof(lg->ev[i].data), "{\"n\":%d,\"note\":\"event %d\"}", i + 1,
		         i + 1);
		seal(&lg->ev[i], prev);
		prev = lg->ev[i].hash;
	}
}

/* Re-seal events from index `from` on, as someone rewriting the chain would. */
static void
rechain(struct log *lg, int from)
{
	for (int i = from; i < lg->nev; i++)
		seal(&lg->ev[i], i ? lg->ev[i - 1].hash : ZEROS);
}

static char *
event_line(const struct event *ev)
{
	so_buf_t b;
	so_buf_init(&b, 4096);
	assert_int_equal(so_audit_event_line(ev->canon, strlen(ev->canon), ev->hash, ev->prev, &b),
	                 SO_OK);
	return so_buf_steal(&b);
}

/* A checkpoint over the first `size` events of `lg` (the leaves as given), signed with sk. */
static char *
checkpoint_line(const struct log *lg, uint64_t size, const unsigned char *sk,
                const unsigned char *pk)
{
	so_hash_t leaves[NEV + 2];
	so_checkpoint_t cp = {.size = size, .at = 1764000100000 + (int64_t)size};
	for (uint64_t i = 0; i < size; i++) {
		so_hash_t chain;
		from_hex(lg->ev[i].hash, chain, 32);
		so_merkle_leaf_hash(chain, 32, leaves[i]);
	}
	so_merkle_root(leaves, size, cp.root);
	assert_int_equal(so_checkpoint_sign(&cp, sk, pk), SO_OK);
	so_buf_t b;
	so_buf_init(&b, 4096);
	assert_int_equal(so_checkpoint_line(&cp, &b), SO_OK);
	return so_buf_steal(&b);
}

static void
add_line(struct log *lg, char *line)
{
	assert_true(lg->nlines < MAXLINES);
	lg->lines[lg->nlines++] = line;
}

/* The export of lg's events with a checkpoint after each size in `every` (0 = none). */
static void
export_lines(struct log *lg, int every)
{
	for (int i = 0; i < lg->nev; i++) {
		add_line(lg, event_line(&lg->ev[i]));
		if (every && (i + 1) % every == 0)
			add_line(lg, checkpoint_line(lg, (uint64_t)i + 1, lg->sk, lg->pk));
	}
}

static void
log_init(struct log *lg)
{
	memset(lg, 0, sizeof(*lg));
	seed_key(lg->pk, lg->sk);
	crypto_sign_keypair(lg->pk2, lg->sk2);
	make_events(lg, NEV);
}

static void
log_free(struct log *lg)
{
	for (int i = 0; i < lg->nlines; i++)
		free(lg->lines[i]);
	lg->nlines = 0;
}

/* Index of the line of event `seq` (or of the checkpoint of `size`, with cp = 1). */
static int
find_line(const struct log *lg, int64_t n, int cp)
{
	char key[64];
	if (cp)
		snprintf(key, sizeof(key), "\"size\":%lld}}", (long long)n);
	else
		snprintf(key, sizeof(key), ",\"seq\":%lld,\"type\"", (long long)n);
	for (int i = 0; i < lg->nlines; i++) {
		const char *s = strstr(lg->lines[i], key);
		if (s && (!cp || !strncmp(lg->lines[i], "{\"checkpoint\"", 13)))
			return i;
	}
	fail_msg("no line for %s %lld", cp ? "checkpoint" : "event", (long long)n);
	return -1;
}

static void
remove_line(struct log *lg, int at)
{
	free(lg->lines[at]);
	memmove(lg->lines + at, lg->lines + at + 1, (size_t)(lg->nlines - at - 1) * sizeof(char *));
	lg->nlines--;
}

static void
insert_line(struct log *lg, int at, char *line)
{
	assert_true(lg->nlines < MAXLINES);
	memmove(lg->lines + at + 1, lg->lines + at, (size_t)(lg->nlines - at) * sizeof(char *));
	lg->lines[at] = line;
	lg->nlines++;
}

static void
replace_line(struct log *lg, int at, char *line)
{
	free(lg->lines[at]);
	lg->lines[at] = line;
}

static so_audit_verify_result_t
run_verifier(const struct log *lg, int trust_both)
{
	unsigned char keys[2][32];
	memcpy(keys[0], lg->pk, 32);
	memcpy(keys[1], lg->pk2, 32);
	so_audit_verifier_t v;
	so_audit_verify_result_t r;
	so_audit_verifier_init(&v, (const unsigned char(*)[32])keys, trust_both ? 2 : 1);
	assert_int_equal(so_audit_verifier_line(&v, "{\"export\":{\"through\":12}}\n", 26), SO_OK);
	for (int i = 0; i < lg->nlines; i++)
		so_audit_verifier_line(&v, lg->lines[i], strlen(lg->lines[i]));
	so_audit_verifier_finish(&v, &r);
	so_audit_verifier_free(&v);
	return r;
}

static void
assert_fails_at(const struct log *lg, int64_t seq, const char *reason_part)
{
	so_audit_verify_result_t r = run_verifier(lg, 0);
	if (r.ok)
		fail_msg("a tampered log verified (expected a failure at %lld)", (long long)seq);
	if (r.first_bad_seq != seq)
		fail_msg("expected the failure at event %lld, got %lld: %s", (long long)seq,
		         (long long)r.first_bad_seq, r.reason);
	assert_contains(r.reason, reason_part);
}

static void
test_verifier_accepts_an_intact_log(void **state)
{
	struct log lg;
	log_init(&lg);
	export_lines(&lg, 4);
	so_audit_verify_result_t r = run_verifier(&lg, 0);
	if (!r.ok)
		fail_msg("intact log refused at %lld: %s", (long long)r.first_bad_seq, r.reason);
	assert_int_equal(r.events, NEV);
	assert_int_equal(r.checkpoints, 3);
	assert_int_equal(r.signed_size, NEV);
	assert_int_equal(r.unsigned_tail, 0);
	assert_int_equal(r.first_bad_seq, 0);
	log_free(&lg);

	/* checkpoints every 5: the last two events are not yet signed */
	export_lines(&lg, 5);
	r = run_verifier(&lg, 0);
	assert_true(r.ok);
	assert_int_equal(r.checkpoints, 2);
	assert_int_equal(r.signed_size, 10);
	assert_int_equal(r.unsigned_tail, 2);
	log_free(&lg);

	/* and with CRLF line ends and blank lines */
	export_lines(&lg, 4);
	so_audit_verifier_t v;
	so_audit_verifier_init(&v, (const unsigned char(*)[32])lg.pk, 1);
	for (int i = 0; i < lg.nlines; i++) {
		char buf[1024];
		int n = snprintf(buf, sizeof(buf), "%s\r\n", lg.lines[i]);
		assert_int_equal(so_audit_verifier_line(&v, buf, (size_t)n), SO_OK);
		assert_int_equal(so_audit_verifier_line(&v, "\n", 1), SO_OK);
	}
	so_audit_verifier_finish(&v, &r);
	so_audit_verifier_free(&v);
	assert_true(r.ok);
	assert_int_equal(r.checkpoints, 3);
	log_free(&lg);
}

static void
test_verifier_names_a_modified_event(void **state)
{
	struct log lg;
	log_init(&lg);
	/* one byte of event 6's data, hashes left alone */
	lg.ev[5].data[5] = '7';
	seal(&lg.ev[5], lg.ev[4].hash);
	memcpy(lg.ev[5].hash, lg.ev[6].prev, 65); /* keep the stored hash */
	export_lines(&lg, 4);
	assert_fails_at(&lg, 6, "modified");
	log_free(&lg);

	/* every event byte of every event, one at a time, in the export line itself */
	log_init(&lg);
	export_lines(&lg, 4);
	for (int64_t seq = 1; seq <= NEV; seq++) {
		int at = find_line(&lg, seq, 0);
		char *line = lg.lines[at];
		size_t evlen = strlen(lg.ev[seq - 1].canon);
		for (size_t k = 9; k < 9 + evlen; k++) {
			char saved = line[k];
			line[k] = saved == 'x' ? 'y' : 'x';
			so_audit_verify_result_t r = run_verifier(&lg, 0);
			if (r.ok)
				fail_msg("event %lld verified with byte %zu changed", (long long)seq, k);
			/* a changed seq may name the neighbour; every other byte names the event */
			if (r.first_bad_seq != seq && !strstr(r.reason, "sequence") &&
			    !strstr(r.reason, "expected event"))
				fail_msg("event %lld byte %zu: failure named %lld (%s)", (long long)seq, k,
				         (long long)r.first_bad_seq, r.reason);
			line[k] = saved;
		}
	}
	log_free(&lg);
}

static void
test_verifier_names_a_rewritten_chain_by_its_checkpoint(void **state)
{
	struct log lg;
	/* event 6 changed and every hash after it recomputed: the chain holds, the tree does not */
	log_init(&lg);
	lg.ev[5].data[5] = '7';
	rechain(&lg, 5);
	export_lines(&lg, 4);
	/* the original checkpoints over 4 (still true), 8 and 12 */
	struct log orig;
	log_init(&orig);
	replace_line(&lg, find_line(&lg, 8, 1), checkpoint_line(&orig, 8, orig.sk, orig.pk));
	replace_line(&lg, find_line(&lg, 12, 1), checkpoint_line(&orig, 12, orig.sk, orig.pk));
	assert_fails_at(&lg, 5, "differ from what checkpoint 8 signed");
	log_free(&lg);

	/* with a checkpoint after every event, the very event is named */
	log_init(&lg);
	lg.ev[5].data[5] = '7';
	rechain(&lg, 5);
	export_lines(&lg, 1);
	for (uint64_t size = 6; size <= NEV; size++)
		replace_line(&lg, find_line(&lg, (int64_t)size, 1),
		             checkpoint_line(&orig, size, orig.sk, orig.pk));
	assert_fails_at(&lg, 6, "differ from what checkpoint 6 signed");
	log_free(&lg);
}

static void
test_verifier_names_a_deleted_event(void **state)
{
	struct log lg;
	log_init(&lg);
	export_lines(&lg, 4);
	remove_line(&lg, find_line(&lg, 6, 0));
	assert_fails_at(&lg, 6, "expected event 6, found 7");
	log_free(&lg);

	export_lines(&lg, 4);
	remove_line(&lg, find_line(&lg, 1, 0));
	assert_fails_at(&lg, 1, "expected event 1, found 2");
	log_free(&lg);

	/* deleted, and the rest renumbered and re-chained: the checkpoint over it catches it */
	log_init(&lg);
	memmove(&lg.ev[5], &lg.ev[6], sizeof(lg.ev[0]) * (NEV - 6));
	lg.nev = NEV - 1;
	for (int i = 5; i < lg.nev; i++)
		lg.ev[i].seq = i + 1;
	rechain(&lg, 5);
	struct log orig;
	log_init(&orig);
	for (int i = 0; i < lg.nev; i++)
		add_line(&lg, event_line(&lg.ev[i]));
	for (uint64_t size = 4; size <= NEV; size += 4)
		insert_line(&lg, size <= (uint64_t)lg.nev ? find_line(&lg, (int64_t)size, 0) + 1 : lg.nlines,
		            checkpoint_line(&orig, size, orig.sk, orig.pk));
	assert_fails_at(&lg, 5, "differ from what checkpoint 8 signed");
	log_free(&lg);
}

static void
test_verifier_names_swapped_events(void **state)
{
	struct log lg;
	log_init(&lg);
	export_lines(&lg, 4);
	int a = find_line(&lg, 6, 0), b = find_line(&lg, 7, 0);
	char *t = lg.lines[a];
	lg.lines[a] = lg.lines[b];
	lg.lines[b] = t;
	assert_fails_at(&lg, 6, "expected event 6, found 7");
	log_free(&lg);

	/* swapped contents, seq and hashes rewritten to fit: the checkpoint over them catches it */
	log_init(&lg);
	struct log orig;
	log_init(&orig);
	char tmp[64];
	memcpy(tmp, lg.ev[5].data, sizeof(tmp));
	memcpy(lg.ev[5].data, lg.ev[6].data, sizeof(tmp));
	memcpy(lg.ev[6].data, tmp, sizeof(tmp));
	rechain(&lg, 5);
	export_lines(&lg, 4);
	replace_line(&lg, find_line(&lg, 8, 1), checkpoint_line(&orig, 8, orig.sk, orig.pk));
	replace_line(&lg, find_line(&lg, 12, 1), checkpoint_line(&orig, 12, orig.sk, orig.pk));
	assert_fails_at(&lg, 5, "differ from what checkpoint 8 signed");
	log_free(&lg);
}

static void
test_verifier_names_an_inserted_event(void **state)
{
	struct log lg;
	/* a forged event 6 chained onto event 5, before the real event 6: the real one no longer
	 * fits (the verifier cannot tell which of two events 6 is the forgery without a checkpoint
	 * between them, and names where the sequence broke) */
	log_init(&lg);
	export_lines(&lg, 4);
	struct event forged = {.seq = 6};
	strcpy(forged.data, "{\"n\":6,\"note\":\"forged\"}");
	seal(&forged, lg.ev[4].hash);
	insert_line(&lg, find_line(&lg, 6, 0), event_line(&forged));
	assert_fails_at(&lg, 7, "expected event 7, found 6");
	log_free(&lg);

	/* the same with a checkpoint after every event: the forgery itself is named */
	log_init(&lg);
	export_lines(&lg, 1);
	insert_line(&lg, find_line(&lg, 6, 0), event_line(&forged));
	insert_line(&lg, find_line(&lg, 6, 0) + 1, checkpoint_line(&lg, 6, lg.sk, lg.pk));
	assert_fails_at(&lg, 6, "differ from what checkpoint 6 signed");
	log_free(&lg);

	/* inserted, and the rest renumbered and re-chained */
	log_init(&lg);
	struct log orig;
	log_init(&orig);
	memmove(&lg.ev[6], &lg.ev[5], sizeof(lg.ev[0]) * (NEV - 5));
	lg.ev[5] = forged;
	lg.nev = NEV + 1;
	for (int i = 5; i < lg.nev; i++)
		lg.ev[i].seq = i + 1;
	rechain(&lg, 5);
	for (int i = 0; i < lg.nev; i++) {
		add_line(&lg, event_line(&lg.ev[i]));
		if ((i + 1) % 4 == 0)
			add_line(&lg, checkpoint_line(&orig, (uint64_t)i + 1, orig.sk, orig.pk));
	}
	assert_fails_at(&lg, 5, "differ from what checkpoint 8 signed");
	log_free(&lg);
}

static void
test_verifier_names_a_truncated_tail(void **state)
{
	struct log lg;
	/* events 10..12 gone, the checkpoint over 12 kept (where the export puts such a one) */
	log_init(&lg);
	export_lines(&lg, 4);
	for (int64_t seq = 10; seq <= NEV; seq++)
		remove_line(&lg, find_line(&lg, seq, 0));
	assert_fails_at(&lg, 10, "checkpoint of size 12 comes after event 9");
	log_free(&lg);

	/* a checkpoint claiming more events than the log ever had, at the end */
	export_lines(&lg, 4);
	so_audit_verifier_t v;
	so_audit_verify_result_t r;
	so_audit_verifier_init(&v, (const unsigned char(*)[32])lg.pk, 1);
	for (int i = 0; i < lg.nlines; i++)
		so_audit_verifier_line(&v, lg.lines[i], strlen(lg.lines[i]));
	so_checkpoint_t cp = {.size = 20, .at = 1764000100000};
	so_checkpoint_sign(&cp, lg.sk, lg.pk);
	so_audit_verifier_checkpoint(&v, &cp);
	so_audit_verifier_finish(&v, &r);
	so_audit_verifier_free(&v);
	assert_false(r.ok);
	assert_int_equal(r.first_bad_seq, 13);
	log_free(&lg);

	/* truncated with every checkpoint after it removed too: the export header still says
	 * how far the log went (a rewritten header too could not be told from a shorter log,
	 * which is why checkpoints are kept elsewhere as well) */
	export_lines(&lg, 4);
	while (lg.nlines > find_line(&lg, 8, 1) + 1)
		remove_line(&lg, lg.nlines - 1);
	r = run_verifier(&lg, 0);
	assert_false(r.ok);
	assert_int_equal(r.first_bad_seq, 9);
	assert_int_equal(r.events, 8);
	log_free(&lg);
}

static void
test_verifier_names_a_checkpoint_signed_by_another_key(void **state)
{
	struct log lg;
	log_init(&lg);
	export_lines(&lg, 4);
	replace_line(&lg, find_line(&lg, 8, 1), checkpoint_line(&lg, 8, lg.sk2, lg.pk2));
	assert_fails_at(&lg, 8, "not trusted");
	/* trusted once its key is (a key rotation) */
	assert_true(run_verifier(&lg, 1).ok);
	log_free(&lg);

	/* another key's signature under the trusted key's id */
	export_lines(&lg, 4);
	char *line = checkpoint_line(&lg, 8, lg.sk2, lg.pk2);
	char id[SO_KEY_ID_LEN + 1], id2[SO_KEY_ID_LEN + 1];
	so_audit_key_id(lg.pk, id);
	so_audit_key_id(lg.pk2, id2);
	char *at = strstr(line, id2);
	assert_non_null(at);
	memcpy(at, id, SO_KEY_ID_LEN);
	replace_line(&lg, find_line(&lg, 8, 1), line);
	assert_fails_at(&lg, 8, "bad signature");
	log_free(&lg);
}

static void
test_verifier_names_a_checkpoint_with_a_wrong_root_or_signature(void **state)
{
	struct log lg, other;
	log_init(&lg);
	log_init(&other);
	other.ev[6].data[5] = '9';
	rechain(&other, 6);
	/* signed by the right key over a different log */
	export_lines(&lg, 4);
	replace_line(&lg, find_line(&lg, 8, 1), checkpoint_line(&other, 8, lg.sk, lg.pk));
	assert_fails_at(&lg, 5, "differ from what checkpoint 8 signed");
	log_free(&lg);

	/* each bit of the signature and root in the line, and the time */
	export_lines(&lg, 4);
	int cp8 = find_line(&lg, 8, 1);
	char *line = lg.lines[cp8];
	char *sig = strstr(line, "\"signature\":\"") + 13, *root = strstr(line, "\"root\":\"") + 8;
	char *time = strstr(line, "\"at\":\"") + 6;
	for (int k = 0; k < 128; k++) {
		char saved = sig[k];
		sig[k] = saved == '0' ? '1' : '0';
		assert_fails_at(&lg, 8, "bad signature");
		sig[k] = saved;
	}
	for (int k = 0; k < 64; k++) {
		char saved = root[k];
		root[k] = saved == '0' ? '1' : '0';
		assert_fails_at(&lg, 8, "bad signature");
		root[k] = saved;
	}
	time[22] = time[22] == '0' ? '1' : '0'; /* a millisecond */
	assert_fails_at(&lg, 8, "bad signature");
	log_free(&lg);

	/* a checkpoint of the right log placed after the wrong event */
	export_lines(&lg, 4);
	int at8 = find_line(&lg, 8, 1);
	char *moved = lg.lines[at8];
	lg.lines[at8] = NULL;
	remove_line(&lg, at8);
	insert_line(&lg, find_line(&lg, 9, 0) + 1, moved);
	assert_fails_at(&lg, 9, "out of place");
	log_free(&lg);

	/* a line that is neither an event nor a checkpoint */
	export_lines(&lg, 4);
	insert_line(&lg, find_line(&lg, 3, 0) + 1, strdup("{\"note\":\"hello\"}"));
	assert_fails_at(&lg, 4, "neither");
	log_free(&lg);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_tree_is_sha256_of_nothing),
		cmocka_unit_test(test_leaf_and_node_hashes_are_domain_separated),
		cmocka_unit_test(test_roots_match_python_for_small_sizes),
		cmocka_unit_test(test_roots_match_python_for_larger_sizes),
		cmocka_unit_test(test_frontier_root_equals_tree_root_for_every_size),
		cmocka_unit_test(test_inclusion_proofs_are_rfc6962_paths),
		cmocka_unit_test(test_every_inclusion_proof_verifies_and_every_bit_flip_fails),
		cmocka_unit_test(test_inclusion_proof_for_another_index_fails),
		cmocka_unit_test(test_inclusion_proof_for_another_size_fails),
		cmocka_unit_test(test_consistency_proofs_are_rfc6962_subproofs),
		cmocka_unit_test(test_every_consistency_proof_verifies_and_every_bit_flip_fails),
		cmocka_unit_test(test_checkpoint_message_and_signature_match_python),
		cmocka_unit_test(test_checkpoint_with_another_key_is_refused),
		cmocka_unit_test(test_checkpoint_with_any_field_changed_is_refused),
		cmocka_unit_test(test_checkpoint_line_parses_back),
		cmocka_unit_test(test_event_canonical_and_hash_match_python),
		cmocka_unit_test(test_verifier_accepts_an_intact_log),
		cmocka_unit_test(test_verifier_names_a_modified_event),
		cmocka_unit_test(test_verifier_names_a_rewritten_chain_by_its_checkpoint),
		cmocka_unit_test(test_verifier_names_a_deleted_event),
		cmocka_unit_test(test_verifier_names_swapped_events),
		cmocka_unit_test(test_verifier_names_an_inserted_event),
		cmocka_unit_test(test_verifier_names_a_truncated_tail),
		cmocka_unit_test(test_verifier_names_a_checkpoint_signed_by_another_key),
		cmocka_unit_test(test_verifier_names_a_checkpoint_with_a_wrong_root_or_signature),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
