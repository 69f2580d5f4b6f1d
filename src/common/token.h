/**
 * API tokens: "so_" followed by 64 lowercase hex characters (32 random bytes). Only their
 * SHA-256 (hex) is ever stored; compare hashes with sodium_memcmp.
 */
#ifndef SO_COMMON_TOKEN_H
#define SO_COMMON_TOKEN_H

#define SO_TOKEN_LEN 67 /* "so_" + 64 */

/** Whether `s` has the form of a token. */
int so_token_well_formed(const char *s);
/** The SHA-256 of a token (or of any other bearer secret: a console cookie, a sign-in link's
 * code), 64 lowercase hex characters + NUL: what the store keeps instead of the secret. */
void so_token_hash(const char *token, char hash[65]);
/** Mint a new random token and its hash. Wipe `token` (sodium_memzero) once shown. */
void so_token_new(char token[SO_TOKEN_LEN + 1], char hash[65]);

#endif
