/*
 * Long-poll waiters: suspended connections keyed by request id, with a min-heap of
 * deadlines served by one timer thread. No thread and no polling per waiter: a state
 * change wakes exactly the waiters of its request; the timer sleeps until the earliest
 * deadline.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "server/internal.h"

#define NBUCKETS 4096

struct waiters {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	pthread_t timer;
	struct waiter *bucket[NBUCKETS];
	struct waiter **heap;
	size_t nheap, cap;
	int stopped;
};

static size_t
bucket_of(const char *id)
{
	uint32_t h = 2166136261u;
	for (const char *p = id; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return h % NBUCKETS;
}

static void
heap_swap(struct waiters *ws, size_t a, size_t b)
{
	struct waiter *t = ws->heap[a];
	ws->heap[a] = ws->heap[b];
	ws->heap[b] = t;
	ws->heap[a]->heap_index = a;
	ws->heap[b]->heap_index = b;
}

static void
heap_up(struct waiters *ws, size_t i)
{
	while (i && ws->heap[(i - 1) / 2]->deadline > ws->heap[i]->deadline) {
		heap_swap(ws, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
heap_down(struct waiters *ws, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < ws->nheap && ws->heap[l]->deadline < ws->heap[m]->deadline)
			m = l;
		if (r < ws->nheap && ws->heap[r]->deadline < ws->heap[m]->deadline)
			m = r;
		if (m == i)
			return;
		heap_swap(ws, i, m);
		i = m;
	}
}

static void
heap_remove(struct waiters *ws, struct waiter *w)
{
	size_t i = w->heap_index;
	ws->nheap--;
	if (i != ws->nheap) {
		ws->heap[i] = ws->heap[ws->nheap];
		ws->heap[i]->heap_index = i;
		heap_down(ws, i);
		heap_up(ws, i);
	}
}

/* Take `w` out of every structure and resume its connection. Lock held. */
static void
release(struct waiters *ws, struct waiter *w)
{
	if (!w->registered)
		return;
	w->registered = 0;
	heap_remove(ws, w);
	if (w->prev)
		w->prev->next = w->next;
	else
		ws->bucket[bucket_of(w->id)] = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->next = w->prev = NULL;
	MHD_resume_connection(w->mc);
}

static void *
timer_main(void *arg)
{
	struct waiters *ws = arg;
	pthread_mutex_lock(&ws->lock);
	while (!ws->stopped) {
		int64_t now = so_clock_mono_ms();
		while (ws->nheap && ws->heap[0]->deadline <= now)
			release(ws, ws->heap[0]);
		if (!ws->nheap) {
			pthread_cond_wait(&ws->changed, &ws->lock);
			continue;
		}
		struct timespec ts;
		so_clock_mono_after(ws->heap[0]->deadline - now, &ts);
		pthread_cond_timedwait(&ws->changed, &ws->lock, &ts);
	}
	pthread_mutex_unlock(&ws->lock);
	return NULL;
}

struct waiters *
waiters_start(void)
{
	struct waiters *ws = calloc(1, sizeof(*ws));
	if (!ws)
		return NULL;
	pthread_mutex_init(&ws->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&ws->changed, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&ws->timer, NULL, timer_main, ws)) {
		free(ws);
		return NULL;
	}
	return ws;
}

void
waiters_add(struct waiters *ws, struct waiter *w)
{
	pthread_mutex_lock(&ws->lock);
	if (ws->stopped) {
		pthread_mutex_unlock(&ws->lock);
		MHD_resume_connection(w->mc);
		return;
	}
	if (ws->nheap == ws->cap) {
		size_t cap = ws->cap ? ws->cap * 2 : 256;
		struct waiter **h = realloc(ws->heap, cap * sizeof(*h));
		if (!h) {
			pthread_mutex_unlock(&ws->lock);
			MHD_resume_connection(w->mc); /* answer now rather than never */
			return;
		}
		ws->heap = h;
		ws->cap = cap;
	}
	w->registered = 1;
	w->heap_index = ws->nheap;
	ws->heap[ws->nheap++] = w;
	heap_up(ws, w->heap_index);
	size_t b = bucket_of(w->id);
	w->prev = NULL;
	w->next = ws->bucket[b];
	if (w->next)
		w->next->prev = w;
	ws->bucket[b] = w;
	if (ws->heap[0] == w)
		pthread_cond_signal(&ws->changed);
	pthread_mutex_unlock(&ws->lock);
}

void
waiters_wake(struct waiters *ws, const char *id)
{
	pthread_mutex_lock(&ws->lock);
	struct waiter *w = ws->bucket[bucket_of(id)];
	while (w) {
		struct waiter *next = w->next;
		if (!strcmp(w->id, id))
			release(ws, w);
		w = next;
	}
	pthread_mutex_unlock(&ws->lock);
}

void
waiters_cancel(struct waiters *ws, struct waiter *w)
{
	pthread_mutex_lock(&ws->lock);
	release(ws, w);
	pthread_mutex_unlock(&ws->lock);
}

size_t
waiters_count(struct waiters *ws)
{
	pthread_mutex_lock(&ws->lock);
	size_t n = ws->nheap;
	pthread_mutex_unlock(&ws->lock);
	return n;
}

size_t
waiters_ids(struct waiters *ws, char (*ids)[SO_ID_LEN + 1], size_t max)
{
	pthread_mutex_lock(&ws->lock);
	size_t n = ws->nheap < max ? ws->nheap : max;
	for (size_t i = 0; i < n; i++)
		memcpy(ids[i], ws->heap[i]->id, SO_ID_LEN + 1);
	pthread_mutex_unlock(&ws->lock);
	return n;
}

void
waiters_stop(struct waiters *ws)
{
	pthread_mutex_lock(&ws->lock);
	while (ws->nheap)
		release(ws, ws->heap[0]);
	ws->stopped = 1;
	pthread_cond_signal(&ws->changed);
	pthread_mutex_unlock(&ws->lock);
	pthread_join(ws->timer, NULL);
	/* The lock stays usable: a change committing during shutdown may still call wake. */
}

void
waiters_free(struct waiters *ws)
{
	free(ws->heap);
	pthread_mutex_destroy(&ws->lock);
	pthread_cond_destroy(&ws->changed);
	free(ws);
}
