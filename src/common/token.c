#include <string.h>

#include <sodium.h>

#include "common/token.h"

int
so_token_well_formed(const char *s)
{
	if (strlen(s) != SO_TOKEN_LEN || strncmp(s, "so_", 3))
		return 0;
	for (const char *p = s + 3; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

void
so_token_hash(const char *token, char hash[65])
{
	unsigned char md[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(md, (const unsigned char *)token, strlen(token));
	sodium_bin2hex(hash, 65, md, sizeof(md));
	sodium_memzero(md, sizeof(md));
}

void
so_token_new(char token[SO_TOKEN_LEN + 1], char hash[65])
{
	unsigned char raw[32];
	randombytes_buf(raw, sizeof(raw));
	memcpy(token, "so_", 3);
	sodium_bin2hex(token + 3, SO_TOKEN_LEN - 3 + 1, raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
	so_token_hash(token, hash);
}
