#include <stdlib.h>
#include <string.h>

#include "core/core.h"

const so_principal_t *
so_directory_find(const so_directory_t *d, const char *id)
{
	if (!id)
		return NULL;
	for (size_t i = 0; i < d->n; i++)
		if (strcmp(d->items[i].id, id) == 0)
			return &d->items[i];
	return NULL;
}

int
so_principal_in_group(const so_principal_t *p, const char *group)
{
	if (!group || !p->groups)
		return 0;
	for (char **g = p->groups; *g; g++)
		if (strcmp(*g, group) == 0)
			return 1;
	return 0;
}

void
so_directory_free(so_directory_t *d)
{
	for (size_t i = 0; i < d->n; i++) {
		so_principal_t *p = &d->items[i];
		free(p->id);
		free(p->owner);
		free(p->team);
		if (p->groups)
			for (char **g = p->groups; *g; g++)
				free(*g);
		free(p->groups);
		free(p->token_sha256);
		free(p->slack_user);
		free(p->teams_user);
		free(p->email);
	}
	free(d->items);
	d->items = NULL;
	d->n = 0;
}

const char *
so_kind_name(enum so_kind k)
{
	switch (k) {
	case SO_KIND_AGENT: return "agent";
	case SO_KIND_HUMAN: return "human";
	case SO_KIND_SERVICE: return "service";
	}
	return "?";
}
