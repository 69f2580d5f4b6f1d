/*
 * Token hashing as the daemon does it (src/server/auth.c, src/server/admin.c,
 * src/daemon/main.c): token_sha256 = lowercase hex of SHA-256 over the 67 bytes of
 * "so_" + 64 hex. A configured token_sha256 must be exactly that form.
 */
#include <sodium.h>

#include "unit.h"

#include "daemon/config.h"

#define TOKEN "so_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
/* Python: hashlib.sha256(TOKEN.encode()).hexdigest() */
#define TOKEN_SHA256 "00fd347dfef842129adfde76aa4c0d4ad6a00d41960171aeac0866bb70df6c13"

static void
test_token_sha256_matches_python_vector(void **state)
{
	assert_true(sodium_init() >= 0);
	unsigned char md[crypto_hash_sha256_BYTES];
	char hex[65];
	assert_int_equal(strlen(TOKEN), 67);
	crypto_hash_sha256(md, (const unsigned char *)TOKEN, strlen(TOKEN));
	sodium_bin2hex(hex, sizeof(hex), md, sizeof(md));
	assert_string_equal(hex, TOKEN_SHA256);
}

static void
test_config_accepts_the_hash_of_a_token(void **state)
{
	so_config_t cfg;
	char err[512] = "";
	int rc = so_config_load_text("principals:\n"
	                             "  - { id: alice, kind: human, groups: [sre], token_sha256: \""
	                             TOKEN_SHA256 "\" }\n"
	                             "policy: { approvers: { group: sre } }\n",
	                             "t.yaml", &cfg, err, sizeof(err));
	if (rc != SO_OK)
		fail_msg("%s", err);
	assert_string_equal(so_directory_find(&cfg.directory, "alice")->token_sha256, TOKEN_SHA256);
	so_config_free(&cfg);
}

static void
test_config_refuses_the_token_itself(void **state)
{
	/* Pasting the secret instead of its hash must not load (it would sit in clear). */
	so_config_t cfg;
	char err[512] = "";
	int rc = so_config_load_text("principals:\n"
	                             "  - { id: alice, kind: human, groups: [sre], token_sha256: \""
	                             TOKEN "\" }\n"
	                             "policy: { approvers: { group: sre } }\n",
	                             "t.yaml", &cfg, err, sizeof(err));
	if (rc == SO_OK) {
		so_config_free(&cfg);
		fail_msg("a raw token was accepted as token_sha256");
	}
	assert_contains(err, "token_sha256");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token_sha256_matches_python_vector),
		cmocka_unit_test(test_config_accepts_the_hash_of_a_token),
		cmocka_unit_test(test_config_refuses_the_token_itself),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
