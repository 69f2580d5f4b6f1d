/* Bearer authentication: "so_" + 64 hex, hashed with SHA-256 and compared in constant time. */
#include <string.h>

#include <sodium.h>

#include "common/error.h"
#include "common/log.h"
#include "common/token.h"
#include "server/internal.h"

int
principal_for_token(so_server_t *srv, const char *token, const so_principal_t **out)
{
	const so_directory_t *dir = &srv->cfg->directory;
	const so_principal_t *found = NULL;
	char hex[65];

	*out = NULL;
	if (!so_token_well_formed(token))
		return SO_ENOTFOUND;
	so_token_hash(token, hex);
	/* Scan every configured hash without stopping early. */
	for (size_t i = 0; i < dir->n; i++) {
		const char *want = dir->items[i].token_sha256;
		if (want && sodium_memcmp(want, hex, 64) == 0)
			found = &dir->items[i];
	}
	if (!found) {
		char principal[128];
		so_store_t *s = readers_take(&srv->readers);
		int rc = s->ops->token_lookup(s, hex, principal, sizeof(principal));
		readers_give(&srv->readers, s);
		if (rc == SO_OK)
			found = so_directory_find(dir, principal);
		else if (rc != SO_ENOTFOUND)
			return SO_ESTORE;
	}
	*out = found;
	return found ? SO_OK : SO_ENOTFOUND;
}

const so_principal_t *
auth_caller(struct conn *c, struct MHD_Connection *mc)
{
	const char *h = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Authorization");
	const so_principal_t *found;
	const char *cookie;

	if (!h) {
		cookie = MHD_lookup_connection_value(mc, MHD_COOKIE_KIND, SO_SESSION_COOKIE);
		if (cookie)
			return session_caller(c, mc, cookie);
		reply_error(c, 401, "unauthorized", "missing Authorization: Bearer <token>");
		return NULL;
	}
	if (strncasecmp(h, "Bearer ", 7) || !so_token_well_formed(h + 7)) {
		reply_error(c, 401, "unauthorized", "malformed bearer token");
		return NULL;
	}
	switch (principal_for_token(c->srv, h + 7, &found)) {
	case SO_OK:
		return found;
	case SO_ENOTFOUND:
		reply_error(c, 401, "unauthorized", "unknown or revoked token");
		return NULL;
	default:
		reply_error(c, 503, "unavailable", "cannot check the token now");
		return NULL;
	}
}

int
is_admin(const so_server_t *s, const so_principal_t *p)
{
	return so_principal_in_group(p, s->cfg->admin_group);
}

int
is_auditor(const so_server_t *s, const so_principal_t *p)
{
	return so_principal_in_group(p, s->cfg->auditor_group) || is_admin(s, p);
}
