/**
 * Bot Framework bearer tokens: JWT (RS256) verification and the signing keys (JWKS).
 *
 * The pure part (so_jwt_verify, so_jwk_to_pkey) needs no network and no clock: keys come from
 * a lookup callback and the time is passed in, so unit tests sign their own tokens. The key
 * cache (so_jwks_t) fetches the OpenID metadata, follows its jwks_uri, keeps the RSA keys in
 * memory, and refreshes them when a token names a key id it does not know (at most once per
 * SO_JWKS_REFRESH_MIN_S); it is safe to use from many threads.
 *
 * Ownership: so_jwks_t owns its keys; a key handed out by a lookup is a new reference the
 * verifier frees. Claims returned by so_jwt_verify belong to the caller (json_decref).
 */
#ifndef SO_NOTIFY_JWT_H
#define SO_NOTIFY_JWT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#define SO_JWT_MAX 16384            /**< longest token accepted, bytes */
#define SO_JWT_SKEW_S 300           /**< clock skew allowed on exp and nbf, seconds */
#define SO_JWKS_REFRESH_MIN_S 10    /**< at most one refresh per this many seconds */
#define SO_JWKS_MAX_KEYS 64         /**< keys kept from one JWKS document */
#define SO_BOTFRAMEWORK_ISSUER "https://api.botframework.com"

/**
 * Find the public key for `kid`: a new reference (the caller frees it with EVP_PKEY_free),
 * or NULL when no key has that id.
 */
typedef EVP_PKEY *(*so_jwt_key_fn)(void *ctx, const char *kid);

/** What a token must say. */
typedef struct so_jwt_expect {
	const char *issuer;       /**< iss, exactly */
	const char *audience;     /**< aud (a string, or an array holding it) */
	const char *service_url;  /**< the activity's serviceUrl: the claim, when present, must
	                               equal it; NULL skips the check */
	int64_t now;              /**< seconds since the epoch */
} so_jwt_expect_t;

/**
 * Verify a compact JWS `token`: header alg RS256 (nothing else: no "none", no HMAC), a key
 * from `lookup` by the header's kid, the signature, then iss, aud, exp and nbf (with
 * SO_JWT_SKEW_S of skew; exp is required) and serviceUrl. Returns NULL when it holds (and the
 * claims in `*claims` when `claims` is not NULL), else a short reason for the log.
 */
const char *so_jwt_verify(const char *token, so_jwt_key_fn lookup, void *ctx,
                          const so_jwt_expect_t *want, json_t **claims);

/** An RSA public key from a JWK ({kty: "RSA", n, e} in base64url); NULL if it is not one. */
EVP_PKEY *so_jwk_to_pkey(const json_t *jwk);

/** Decode base64url (no padding needed) into a malloc'd buffer; NULL on bad input. */
unsigned char *so_base64url_decode(const char *in, size_t len, size_t *outlen);

typedef struct so_jwks so_jwks_t;

/** A key cache for the OpenID metadata at `metadata_url` (copied). Nothing is fetched yet. */
so_jwks_t *so_jwks_new(const char *metadata_url);
void so_jwks_free(so_jwks_t *k);
/** A so_jwt_key_fn over a so_jwks_t (pass the cache as ctx): fetches on first use and on an
 * unknown kid, rate-limited. */
EVP_PKEY *so_jwks_lookup(void *jwks, const char *kid);

#endif
