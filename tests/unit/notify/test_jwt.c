/*
 * Bot Framework bearer tokens (src/notify/jwt.c): RS256 tokens signed here with a key made
 * here, verified through so_jwk_to_pkey from the key's JWK, and every refusal pinned.
 */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "unit.h"

#include "notify/jwt.h"

#define APP_ID "8a5c2b1e-0000-4000-8000-00000000b07"
#define KID "test-key-1"
#define NOW 1750000000
#define SERVICE "https://smba.trafficmanager.net/amer/"

static EVP_PKEY *signing_key; /* private, made once */
static EVP_PKEY *other_key;   /* private, not published */
static json_t *jwk;           /* the public half of signing_key */

/* ---- helpers: base64url, signing, a lookup over one key ---- */

static char *
b64url(const unsigned char *in, size_t len)
{
	char *out = malloc(4 * (len / 3 + 1) + 1);
	int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	for (char *p = out; *p; p++)
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	return out;
}

static char *
b64url_json(json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT);
	char *out = b64url((const unsigned char *)text, strlen(text));
	free(text);
	json_decref(v);
	return out;
}

/* header.payload.signature, signed by `key` (NULL: signature of 32 zero bytes). */
static char *
make_token(json_t *header, json_t *claims, EVP_PKEY *key)
{
	char *h = b64url_json(header), *p = b64url_json(claims);
	size_t len = strlen(h) + strlen(p) + 1;
	char *signing_input = malloc(len + 1);
	snprintf(signing_input, len + 1, "%s.%s", h, p);
	unsigned char sig[1024] = {0};
	size_t siglen = 32;
	if (key) {
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		siglen = sizeof(sig);
		assert_int_equal(EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, key, NULL), 1);
		assert_int_equal(EVP_DigestSign(md, sig, &siglen, (unsigned char *)signing_input, len),
		                 1);
		EVP_MD_CTX_free(md);
	}
	char *s = b64url(sig, siglen);
	size_t total = len + 1 + strlen(s) + 1;
	char *token = malloc(total);
	snprintf(token, total, "%s.%s", signing_input, s);
	free(h);
	free(p);
	free(s);
	free(signing_input);
	return token;
}

static json_t *
good_header(void)
{
	return json_pack("{s:s, s:s, s:s}", "alg", "RS256", "typ", "JWT", "kid", KID);
}

static json_t *
good_claims(void)
{
	return json_pack("{s:s, s:s, s:I, s:I, s:s}", "iss", SO_BOTFRAMEWORK_ISSUER, "aud", APP_ID,
	                 "nbf", (json_int_t)NOW - 60, "exp", (json_int_t)NOW + 3600, "serviceUrl",
	                 SERVICE);
}

static EVP_PKEY *
lookup(void *ctx, const char *kid)
{
	(void)ctx;
	return strcmp(kid, KID) ? NULL : so_jwk_to_pkey(jwk);
}

static const so_jwt_expect_t want = {
	.issuer = SO_BOTFRAMEWORK_ISSUER,
	.audience = APP_ID,
	.service_url = SERVICE,
	.now = NOW,
};

/* so_jwt_verify's answer for a token (NULL = accepted). */
static const char *
verdict(json_t *header, json_t *claims, EVP_PKEY *key)
{
	char *token = make_token(header, claims, key);
	const char *why = so_jwt_verify(token, lookup, NULL, &want, NULL);
	free(token);
	return why;
}

static json_t *
claims_with(const char *key, json_t *value)
{
	json_t *c = good_claims();
	if (value)
		json_object_set_new(c, key, value);
	else
		json_object_del(c, key);
	return c;
}

static json_t *
public_jwk(EVP_PKEY *key, const char *kid)
{
	BIGNUM *n = NULL, *e = NULL;
	assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n), 1);
	assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e), 1);
	unsigned char nb[1024], eb[16];
	int nl = BN_bn2bin(n, nb), el = BN_bn2bin(e, eb);
	char *ns = b64url(nb, (size_t)nl), *es = b64url(eb, (size_t)el);
	json_t *out = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "RSA", "use", "sig", "kid", kid,
	                        "n", ns, "e", es);
	free(ns);
	free(es);
	BN_free(n);
	BN_free(e);
	return out;
}

static int
setup(void **state)
{
	signing_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	other_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	jwk = signing_key ? public_jwk(signing_key, KID) : NULL;
	return signing_key && other_key && jwk ? 0 : -1;
}

static int
teardown(void **state)
{
	EVP_PKEY_free(signing_key);
	EVP_PKEY_free(other_key);
	json_decref(jwk);
	return 0;
}

/* ---- the tests ---- */

static void
test_a_good_token_is_accepted_with_its_claims(void **state)
{
	char *token = make_token(good_header(), good_claims(), signing_key);
	json_t *claims = NULL;
	const char *why = so_jwt_verify(token, lookup, NULL, &want, &claims);
	if (why)
		fail_msg("refused: %s", why);
	assert_string_equal(json_string_value(json_object_get(claims, "aud")), APP_ID);
	json_decref(claims);
	free(token);
}

static void
test_wrong_issuer_is_refused(void **state)
{
	assert_string_equal(verdict(good_header(), claims_with("iss", json_string(
	                                "https://sts.windows.net/evil/")), signing_key),
	                    "wrong issuer");
	assert_string_equal(verdict(good_header(), claims_with("iss", NULL), signing_key),
	                    "wrong issuer");
}

static void
test_wrong_audience_is_refused(void **state)
{
	assert_string_equal(verdict(good_header(), claims_with("aud", json_string("another-bot")),
	                            signing_key),
	                    "wrong audience");
	assert_string_equal(verdict(good_header(), claims_with("aud", NULL), signing_key),
	                    "wrong audience");
	/* an array that holds our app id is our audience */
	assert_null(verdict(good_header(), claims_with("aud", json_pack("[s, s]", "x", APP_ID)),
	                    signing_key));
}

static void
test_expired_is_refused_beyond_five_minutes_of_skew(void **state)
{
	assert_string_equal(verdict(good_header(),
	                            claims_with("exp", json_integer(NOW - SO_JWT_SKEW_S - 1)),
	                            signing_key),
	                    "expired");
	assert_null(verdict(good_header(), claims_with("exp", json_integer(NOW - 200)), signing_key));
	assert_string_equal(verdict(good_header(), claims_with("exp", NULL), signing_key),
	                    "no expiry");
}

static void
test_not_yet_valid_is_refused(void **state)
{
	assert_string_equal(verdict(good_header(),
	                            claims_with("nbf", json_integer(NOW + SO_JWT_SKEW_S + 10)),
	                            signing_key),
	                    "not yet valid");
	assert_null(verdict(good_header(), claims_with("nbf", json_integer(NOW + 100)), signing_key));
}

static void
test_unknown_key_id_is_refused(void **state)
{
	json_t *h = good_header();
	json_object_set_new(h, "kid", json_string("someone-elses-key"));
	assert_string_equal(verdict(h, good_claims(), signing_key), "unknown signing key");
	h = good_header();
	json_object_del(h, "kid");
	assert_string_equal(verdict(h, good_claims(), signing_key), "no key id");
}

static void
test_bad_signature_is_refused(void **state)
{
	/* signed by a key that is not the one the kid names */
	assert_string_equal(verdict(good_header(), good_claims(), other_key), "bad signature");
	/* the claims changed after signing */
	char *token = make_token(good_header(), good_claims(), signing_key);
	char *forged = make_token(good_header(), claims_with("aud", json_string("x")), signing_key);
	char *dot = strchr(token, '.'), *fdot = strchr(forged, '.');
	char *sig = strrchr(token, '.'), *fsig = strrchr(forged, '.');
	/* token's header, forged claims, token's signature */
	size_t len = (size_t)(dot - token) + (size_t)(fsig - fdot) + strlen(sig) + 1;
	char *mixed = malloc(len);
	snprintf(mixed, len, "%.*s%.*s%s", (int)(dot - token), token, (int)(fsig - fdot), fdot, sig);
	assert_string_equal(so_jwt_verify(mixed, lookup, NULL, &want, NULL), "bad signature");
	/* one flipped bit of the signature */
	sig[5] = sig[5] == 'A' ? 'B' : 'A';
	assert_string_equal(so_jwt_verify(token, lookup, NULL, &want, NULL), "bad signature");
	free(mixed);
	free(token);
	free(forged);
}

static void
test_alg_none_and_hmac_are_refused(void **state)
{
	json_t *h = good_header();
	json_object_set_new(h, "alg", json_string("none"));
	assert_string_equal(verdict(h, good_claims(), NULL), "algorithm is not RS256");
	h = good_header();
	json_object_set_new(h, "alg", json_string("HS256"));
	assert_string_equal(verdict(h, good_claims(), NULL), "algorithm is not RS256");
	h = good_header();
	json_object_del(h, "alg");
	assert_string_equal(verdict(h, good_claims(), signing_key), "algorithm is not RS256");
	/* "none" with an empty signature segment */
	char *hs = b64url_json(json_pack("{s:s}", "alg", "none"));
	char *ps = b64url_json(good_claims());
	char token[4096];
	snprintf(token, sizeof(token), "%s.%s.", hs, ps);
	assert_non_null(so_jwt_verify(token, lookup, NULL, &want, NULL));
	free(hs);
	free(ps);
}

static void
test_service_url_claim_must_match_the_activity(void **state)
{
	assert_string_equal(verdict(good_header(),
	                            claims_with("serviceUrl", json_string("https://evil.example/")),
	                            signing_key),
	                    "serviceUrl does not match the activity");
	/* absent claim: nothing to compare */
	assert_null(verdict(good_header(), claims_with("serviceUrl", NULL), signing_key));
}

static void
test_malformed_tokens_are_refused(void **state)
{
	static const char *const bad[] = {"", "abc", "a.b", "a.b.c.d", "!!.??.**", "e30.e30.", NULL};
	for (int i = 0; bad[i]; i++)
		if (!so_jwt_verify(bad[i], lookup, NULL, &want, NULL))
			fail_msg("accepted \"%s\"", bad[i]);
	assert_non_null(so_jwt_verify(NULL, lookup, NULL, &want, NULL));
}

static void
test_short_rsa_keys_and_other_key_types_are_not_keys(void **state)
{
	EVP_PKEY *weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	json_t *j = public_jwk(weak, "weak");
	assert_null(so_jwk_to_pkey(j));
	json_object_set_new(j, "kty", json_string("EC"));
	assert_null(so_jwk_to_pkey(j));
	json_decref(j);
	EVP_PKEY_free(weak);
	EVP_PKEY *k = so_jwk_to_pkey(jwk);
	assert_non_null(k);
	assert_int_equal(EVP_PKEY_get_bits(k), 2048);
	EVP_PKEY_free(k);
}

static void
test_base64url_decodes_without_padding(void **state)
{
	size_t n = 0;
	unsigned char *out = so_base64url_decode("_-8", 3, &n);
	assert_non_null(out);
	assert_int_equal(n, 2);
	assert_int_equal(out[0], 0xff);
	assert_int_equal(out[1], 0xef);
	free(out);
	out = so_base64url_decode("aGVsbG8", 7, &n);
	assert_int_equal(n, 5);
	assert_memory_equal(out, "hello", 5);
	free(out);
	assert_null(so_base64url_decode("a+b/", 4, &n));
	assert_null(so_base64url_decode("abcde", 5, &n));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_good_token_is_accepted_with_its_claims),
		cmocka_unit_test(test_wrong_issuer_is_refused),
		cmocka_unit_test(test_wrong_audience_is_refused),
		cmocka_unit_test(test_expired_is_refused_beyond_five_minutes_of_skew),
		cmocka_unit_test(test_not_yet_valid_is_refused),
		cmocka_unit_test(test_unknown_key_id_is_refused),
		cmocka_unit_test(test_bad_signature_is_refused),
		cmocka_unit_test(test_alg_none_and_hmac_are_refused),
		cmocka_unit_test(test_service_url_claim_must_match_the_activity),
		cmocka_unit_test(test_malformed_tokens_are_refused),
		cmocka_unit_test(test_short_rsa_keys_and_other_key_types_are_not_keys),
		cmocka_unit_test(test_base64url_decodes_without_padding),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
