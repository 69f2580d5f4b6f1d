#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "store/store.h"

/* postgres.c's ops (both spellings of its scheme); their place is store.h, next to sqlite's. */
extern const so_store_ops_t so_store_postgres_ops, so_store_postgres_alias_ops;

static const so_store_ops_t *const backends[] = {
	&so_store_sqlite_ops,
	&so_store_postgres_ops,
	&so_store_postgres_alias_ops,
	NULL,
};

int
so_store_open(const char *url, so_store_t **out, char *err, size_t errlen)
{
	const char *colon = strchr(url, ':');
	if (!colon) {
		snprintf(err, errlen, "store URL '%s' has no scheme (like sqlite:PATH)", url);
		return SO_ECONFIG;
	}
	size_t n = (size_t)(colon - url);
	for (size_t i = 0; backends[i]; i++) {
		if (strlen(backends[i]->scheme) == n && !strncmp(url, backends[i]->scheme, n))
			return backends[i]->open(colon + 1, out, err, errlen);
	}
	snprintf(err, errlen, "no store backend for '%.*s' (have: sqlite, postgresql)", (int)n, url);
	return SO_ECONFIG;
}

void
so_store_close(so_store_t *s)
{
	if (s)
		s->ops->close(s);
}

void
so_outbox_rows_free(so_outbox_row_t *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].target);
		free(rows[i].body);
	}
	free(rows);
}
