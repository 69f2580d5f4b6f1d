/* A fixed pool of read connections to the store, shared by the HTTP threads. */
#include <stdlib.h>

#include "common/error.h"
#include "server/internal.h"

int
readers_open(struct readers *r, const char *url, size_t n, char *err, size_t errlen)
{
	r->free_list = calloc(n, sizeof(*r->free_list));
	if (!r->free_list)
		return SO_ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->freed, NULL);
	for (size_t i = 0; i < n; i++) {
		int rc = so_store_open(url, &r->free_list[i], err, errlen);
		if (rc)
			return rc;
		r->nfree = r->total = i + 1;
	}
	return SO_OK;
}

so_store_t *
readers_take(struct readers *r)
{
	pthread_mutex_lock(&r->lock);
	while (!r->nfree)
		pthread_cond_wait(&r->freed, &r->lock);
	so_store_t *s = r->free_list[--r->nfree];
	pthread_mutex_unlock(&r->lock);
	return s;
}

void
readers_give(struct readers *r, so_store_t *s)
{
	pthread_mutex_lock(&r->lock);
	r->free_list[r->nfree++] = s;
	pthread_cond_signal(&r->freed);
	pthread_mutex_unlock(&r->lock);
}

void
readers_close(struct readers *r)
{
	if (!r->free_list)
		return;
	for (size_t i = 0; i < r->nfree; i++)
		so_store_close(r->free_list[i]);
	free(r->free_list);
	r->free_list = NULL;
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->freed);
}
