/*
 * JWT (RS256) verification for Bot Framework bearer tokens, and the JWKS key cache.
 * OpenSSL 3 EVP only: keys are built from the JWK modulus and exponent with OSSL_PARAM_BLD.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "notify/internal.h"
#include "notify/jwt.h"

#define JWKS_TIMEOUT_MS 5000
#define KID_MAX 128
#define RSA_MIN_BITS 2048

/* ---- base64url ---- */

static int
b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

unsigned char *
so_base64url_decode(const char *in, size_t len, size_t *outlen)
{
	while (len && in[len - 1] == '=')
		len--;
	if (len % 4 == 1)
		return NULL;
	unsigned char *out = malloc(len / 4 * 3 + 3);
	size_t n = 0;
	uint32_t acc = 0;
	int bits = 0;
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		int v = b64url_value((unsigned char)in[i]);
		if (v < 0) {
			free(out);
			return NULL;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	*outlen = n;
	return out;
}

/* A base64url segment that holds a JSON object, parsed (caller decrefs), or NULL. */
static json_t *
segment_json(const char *in, size_t len)
{
	size_t n = 0;
	unsigned char *raw = so_base64url_decode(in, len, &n);
	json_error_t jerr;
	json_t *v = raw ? json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, &jerr) : NULL;
	free(raw);
	if (v && !json_is_object(v)) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

/* ---- keys ---- */

static BIGNUM *
jwk_bignum(const json_t *jwk, const char *name)
{
	const char *s = json_string_value(json_object_get(jwk, name));
	size_t n = 0;
	unsigned char *raw = s ? so_base64url_decode(s, strlen(s), &n) : NULL;
	BIGNUM *bn = raw && n ? BN_bin2bn(raw, (int)n, NULL) : NULL;
	free(raw);
	return bn;
}

EVP_PKEY *
so_jwk_to_pkey(const json_t *jwk)
{
	EVP_PKEY *key = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	BIGNUM *n = NULL, *e = NULL;
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	if (!kty || strcmp(kty, "RSA"))
		goto out;
	if (!(n = jwk_bignum(jwk, "n")) || !(e = jwk_bignum(jwk, "e")))
		goto out;
	if (!(bld = OSSL_PARAM_BLD_new()) || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
	    !(params = OSSL_PARAM_BLD_to_param(bld)))
		goto out;
	if (!(ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		key = NULL;
		goto out;
	}
	if (EVP_PKEY_get_bits(key) < RSA_MIN_BITS) {
		EVP_PKEY_free(key);
		key = NULL;
	}
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return key;
}

/* ---- tokens ---- */

static int
rs256_holds(EVP_PKEY *key, const char *signed_part, size_t signed_len, const unsigned char *sig,
            size_t siglen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md && EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, key, NULL) == 1 &&
	         EVP_DigestVerify(md, sig, siglen, (const unsigned char *)signed_part, signed_len) == 1;
	EVP_MD_CTX_free(md);
	return ok;
}

static int
audience_holds(const json_t *aud, const char *want)
{
	size_t i;
	json_t *v;
	if (json_is_string(aud))
		return !strcmp(json_string_value(aud), want);
	json_array_foreach(aud, i, v)
	    if (json_is_string(v) && !strcmp(json_string_value(v), want))
		return 1;
	return 0;
}

/* The claims checks, on verified claims. */
static const char *
claims_hold(const json_t *claims, const so_jwt_expect_t *want)
{
	const char *iss = json_string_value(json_object_get(claims, "iss"));
	json_t *exp = json_object_get(claims, "exp"), *nbf = json_object_get(claims, "nbf");
	json_t *service = json_object_get(claims, "serviceUrl");
	if (!iss || !want->issuer || strcmp(iss, want->issuer))
		return "wrong issuer";
	if (!want->audience || !audience_holds(json_object_get(claims, "aud"), want->audience))
		return "wrong audience";
	if (!json_is_number(exp))
		return "no expiry";
	if ((double)want->now > json_number_value(exp) + SO_JWT_SKEW_S)
		return "expired";
	if (nbf && !json_is_number(nbf))
		return "malformed nbf";
	if (nbf && (double)want->now + SO_JWT_SKEW_S < json_number_value(nbf))
		return "not yet valid";
	if (service && want->service_url &&
	    (!json_is_string(service) || strcmp(json_string_value(service), want->service_url)))
		return "serviceUrl does not match the activity";
	return NULL;
}

const char *
so_jwt_verify(const char *token, so_jwt_key_fn lookup, void *ctx, const so_jwt_expect_t *want,
              json_t **claims)
{
	const char *why = NULL;
	json_t *header = NULL, *payload = NULL;
	unsigned char *sig = NULL;
	EVP_PKEY *key = NULL;
	size_t siglen = 0;
	if (claims)
		*claims = NULL;
	size_t len = token ? strlen(token) : 0;
	if (!len || len > SO_JWT_MAX)
		return "no token, or too long";
	const char *dot1 = strchr(token, '.');
	const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	if (!dot1 || !dot2 || strchr(dot2 + 1, '.'))
		return "not a compact JWS";
	if (!(header = segment_json(token, (size_t)(dot1 - token)))) {
		why = "malformed header";
		goto out;
	}
	const char *alg = json_string_value(json_object_get(header, "alg"));
	const char *kid = json_string_value(json_object_get(header, "kid"));
	if (!alg || strcmp(alg, "RS256")) {
		why = "algorithm is not RS256";
		goto out;
	}
	if (json_object_get(header, "crit")) {
		why = "unsupported critical header";
		goto out;
	}
	if (!kid || !*kid || strlen(kid) >= KID_MAX) {
		why = "no key id";
		goto out;
	}
	if (!(sig = so_base64url_decode(dot2 + 1, strlen(dot2 + 1), &siglen)) || !siglen) {
		why = "malformed signature";
		goto out;
	}
	if (!(key = lookup(ctx, kid))) {
		why = "unknown signing key";
		goto out;
	}
	if (!rs256_holds(key, token, (size_t)(dot2 - token), sig, siglen)) {
		why = "bad signature";
		goto out;
	}
	if (!(payload = segment_json(dot1 + 1, (size_t)(dot2 - dot1 - 1)))) {
		why = "malformed claims";
		goto out;
	}
	if ((why = claims_hold(payload, want)))
		goto out;
	if (claims) {
		*claims = payload;
		payload = NULL;
	}
out:
	EVP_PKEY_free(key);
	free(sig);
	json_decref(header);
	json_decref(payload);
	return why;
}

/* ---- the key cache ---- */

struct jwks_key {
	char kid[KID_MAX];
	EVP_PKEY *key;
};

struct so_jwks {
	pthread_mutex_t lock;
	char *metadata_url;
	struct jwks_key keys[SO_JWKS_MAX_KEYS];
	size_t nkeys;
	int64_t fetched_at; /* monotonic ms of the last attempt, 0 = never */
};

so_jwks_t *
so_jwks_new(const char *metadata_url)
{
	so_jwks_t *k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	if (!(k->metadata_url = strdup(metadata_url))) {
		free(k);
		return NULL;
	}
	pthread_mutex_init(&k->lock, NULL);
	return k;
}

static void
drop_keys(so_jwks_t *k)
{
	for (size_t i = 0; i < k->nkeys; i++)
		EVP_PKEY_free(k->keys[i].key);
	k->nkeys = 0;
}

void
so_jwks_free(so_jwks_t *k)
{
	if (!k)
		return;
	drop_keys(k);
	pthread_mutex_destroy(&k->lock);
	free(k->metadata_url);
	free(k);
}

/* GET `url` and parse a JSON object (caller decrefs), or NULL with the reason logged. */
static json_t *
get_json(const char *url)
{
	long status = 0;
	int64_t retry_after = 0;
	char err[256] = "";
	so_buf_t body;
	json_t *v = NULL;
	int rc = so_http_send("GET", url, NULL, NULL, NULL, JWKS_TIMEOUT_MS, &status, &body,
	                      &retry_after, err, sizeof(err));
	if (rc) {
		so_warn("teams: cannot fetch %s: %s", url, err);
	} else if (status != 200) {
		so_warn("teams: fetching %s: HTTP %ld", url, status);
	} else {
		json_error_t jerr;
		v = json_loadb(so_buf_cstr(&body), body.len, 0, &jerr);
		if (!json_is_object(v)) {
			so_warn("teams: %s is not a JSON object", url);
			json_decref(v);
			v = NULL;
		}
	}
	so_buf_free(&body);
	return v;
}

/* Fetch metadata -> jwks_uri -> keys; replace the cache when that worked. Under k->lock. */
static void
refresh(so_jwks_t *k)
{
	json_t *meta = get_json(k->metadata_url), *jwks = NULL;
	const char *uri = json_string_value(json_object_get(meta, "jwks_uri"));
	size_t i;
	json_t *jwk;
	if (!uri) {
		if (meta)
			so_warn("teams: the OpenID metadata at %s has no jwks_uri", k->metadata_url);
		goto out;
	}
	if (!(jwks = get_json(uri)) || !json_is_array(json_object_get(jwks, "keys")))
		goto out;
	drop_keys(k);
	json_array_foreach(json_object_get(jwks, "keys"), i, jwk) {
		const char *kid = json_string_value(json_object_get(jwk, "kid"));
		if (k->nkeys >= SO_JWKS_MAX_KEYS || !kid || strlen(kid) >= KID_MAX)
			continue;
		EVP_PKEY *key = so_jwk_to_pkey(jwk);
		if (!key)
			continue;
		snprintf(k->keys[k->nkeys].kid, KID_MAX, "%s", kid);
		k->keys[k->nkeys++].key = key;
	}
	so_info("teams: loaded %zu signing keys from %s", k->nkeys, uri);
out:
	json_decref(meta);
	json_decref(jwks);
}

static EVP_PKEY *
find(so_jwks_t *k, const char *kid)
{
	for (size_t i = 0; i < k->nkeys; i++)
		if (!strcmp(k->keys[i].kid, kid))
			return EVP_PKEY_up_ref(k->keys[i].key) == 1 ? k->keys[i].key : NULL;
	return NULL;
}

EVP_PKEY *
so_jwks_lookup(void *jwks, const char *kid)
{
	so_jwks_t *k = jwks;
	pthread_mutex_lock(&k->lock);
	EVP_PKEY *key = find(k, kid);
	int64_t now = so_clock_mono_ms();
	if (!key && (!k->fetched_at || now - k->fetched_at >= SO_JWKS_REFRESH_MIN_S * 1000)) {
		k->fetched_at = now ? now : 1;
		refresh(k);
		key = find(k, kid);
	}
	pthread_mutex_unlock(&k->lock);
	return key;
}
