/* Bearer authentication: "so_" + 64 hex, hashed with SHA-256 and compared in constant time. */
#include <string.h>

#include <sodium.h>

#include "common/error.h"
#include "common/log.h"
#include "common/token.h"
#include "server/internal.h"

const so_principal_t *
auth_caller(struct conn *c, struct MHD_Connection *mc)
{
	const so_directory_t *dir = &c->srv->cfg->directory;
	const char *h = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Authorization");
	if (!h) {
		reply_error(c, 401, "unauthorized", "missing Authorization: Bearer <token>");
		return NULL;
	}
	if (strncasecmp(h, "Bearer ", 7) || !so_token_well_formed(h + 7)) {
		reply_error(c, 401, "unauthorized", "malformed bearer token");
		return NULL;
	}
	char hex[65];
	so_token_hash(h + 7, hex);

	/* Scan every configured hash without stopping early. */
	const so_principal_t *found = NULL;
	for (size_t i = 0; i < dir->n; i++) {
		const char *want = dir->items[i].token_sha256;
		if (want && sodium_memcmp(want, hex, 64) == 0)
			found = &dir->items[i];
	}
	if (!found) {
		char principal[128];
		so_store_t *s = readers_take(&c->srv->readers);
		int rc = s->ops->token_lookup(s, hex, principal, sizeof(principal));
		readers_give(&c->srv->readers, s);
		if (rc == SO_OK)
			found = so_directory_find(dir, principal);
		else if (rc != SO_ENOTFOUND) {
			reply_error(c, 503, "unavailable", "cannot check the token now");
			return NULL;
		}
	}
	if (!found) {
		reply_error(c, 401, "unauthorized", "unknown or revoked token");
		return NULL;
	}
	return found;
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
