#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "store/writer.h"

struct so_writer {
	so_store_t *store;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	so_job_t *head, *tail;
	size_t max_batch;
	int stopping;
	so_writer_observer_fn observer;
	/* batch hooks, under `lock` (read by the writer thread once per batch) */
	int (*before_commit)(so_store_t *s, void *ctx);
	void (*batch_end)(void *ctx, int committed);
	void *hook_ctx;
};

static int64_t
now_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
run_batch(so_writer_t *w, so_job_t *batch)
{
	so_store_t *s = w->store;
	size_t n = 0;
	int64_t start = now_usec();
	pthread_mutex_lock(&w->lock);
	int (*before_commit)(so_store_t *, void *) = w->before_commit;
	void (*batch_end)(void *, int) = w->batch_end;
	void *hook_ctx = w->hook_ctx;
	pthread_mutex_unlock(&w->lock);
	int rc = s->ops->begin(s);
	for (so_job_t *j = batch; j; j = j->next, n++) {
		if (rc) {
			j->rc = SO_ESTORE;
			continue;
		}
		if ((j->rc = s->ops->savepoint(s))) {
			j->rc = SO_ESTORE;
			continue;
		}
		j->rc = j->run(s, j->arg);
		int end = j->rc == SO_OK ? s->ops->release(s) : s->ops->rollback_to(s);
		if (end) {
			/* The transaction is in an unknown state: fail the whole batch. */
			rc = SO_ESTORE;
			j->rc = SO_ESTORE;
		}
	}
	if (rc == SO_OK && before_commit && (rc = before_commit(s, hook_ctx)) != SO_OK)
		so_error("store: the batch's closing step failed: %s", so_strerror(rc));
	if (rc == SO_OK)
		rc = s->ops->commit(s);
	if (rc != SO_OK) {
		so_error("store: batch of %zu changes failed; nothing in it was written", n);
		s->ops->rollback(s);
		for (so_job_t *j = batch; j; j = j->next)
			if (j->rc == SO_OK)
				j->rc = SO_ESTORE;
	}
	if (batch_end)
		batch_end(hook_ctx, rc == SO_OK);
	if (w->observer)
		w->observer(now_usec() - start, n);
	/* `done` may free the job, so read `next` first. */
	for (so_job_t *j = batch, *next; j; j = next) {
		next = j->next;
		j->done(j->arg, j->rc);
	}
}

static void *
writer_main(void *arg)
{
	so_writer_t *w = arg;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->head && !w->stopping)
			pthread_cond_wait(&w->wake, &w->lock);
		if (!w->head && w->stopping)
			break;
		/* Take up to max_batch jobs. */
		so_job_t *batch = w->head, *last = w->head;
		size_t n = 1;
		while (last->next && n < w->max_batch) {
			last = last->next;
			n++;
		}
		w->head = last->next;
		if (!w->head)
			w->tail = NULL;
		last->next = NULL;
		pthread_mutex_unlock(&w->lock);
		run_batch(w, batch);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

so_writer_t *
so_writer_start(so_store_t *store, size_t max_batch, so_writer_observer_fn obs)
{
	so_writer_t *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->store = store;
	w->max_batch = max_batch ? max_batch : 1;
	w->observer = obs;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	if (pthread_create(&w->thread, NULL, writer_main, w)) {
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->wake);
		free(w);
		return NULL;
	}
	return w;
}

int
so_writer_submit(so_writer_t *w, so_job_t *job)
{
	job->next = NULL;
	job->rc = SO_OK;
	pthread_mutex_lock(&w->lock);
	if (w->stopping) {
		pthread_mutex_unlock(&w->lock);
		return SO_EBUSY;
	}
	if (w->tail)
		w->tail->next = job;
	else
		w->head = job;
	w->tail = job;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	return SO_OK;
}

struct sync_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int finished;
	int rc;
};

static void
sync_done(void *arg, int rc)
{
	struct sync_wait *sw = arg;
	pthread_mutex_lock(&sw->lock);
	sw->finished = 1;
	sw->rc = rc;
	pthread_cond_signal(&sw->cond);
	pthread_mutex_unlock(&sw->lock);
}

struct sync_job {
	so_job_t job;
	int (*run)(so_store_t *s, void *arg);
	void *arg;
	struct sync_wait wait;
};

static int
sync_run(so_store_t *s, void *arg)
{
	struct sync_job *sj = arg;
	return sj->run(s, sj->arg);
}

static void
sync_job_done(void *arg, int rc)
{
	struct sync_job *sj = arg;
	sync_done(&sj->wait, rc);
}

int
so_writer_run(so_writer_t *w, int (*run)(so_store_t *s, void *arg), void *arg)
{
	struct sync_job sj = {.run = run, .arg = arg};
	sj.job.run = sync_run;
	sj.job.done = sync_job_done;
	sj.job.arg = &sj;
	pthread_mutex_init(&sj.wait.lock, NULL);
	pthread_cond_init(&sj.wait.cond, NULL);
	int rc = so_writer_submit(w, &sj.job);
	if (rc == SO_OK) {
		pthread_mutex_lock(&sj.wait.lock);
		while (!sj.wait.finished)
			pthread_cond_wait(&sj.wait.cond, &sj.wait.lock);
		pthread_mutex_unlock(&sj.wait.lock);
		rc = sj.wait.rc;
	}
	pthread_mutex_destroy(&sj.wait.lock);
	pthread_cond_destroy(&sj.wait.cond);
	return rc;
}

void
so_writer_set_hooks(so_writer_t *w, int (*before_commit)(so_store_t *s, void *ctx),
                    void (*batch_end)(void *ctx, int committed), void *ctx)
{
	pthread_mutex_lock(&w->lock);
	w->before_commit = before_commit;
	w->batch_end = batch_end;
	w->hook_ctx = ctx;
	pthread_mutex_unlock(&w->lock);
}

void
so_writer_stop(so_writer_t *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = 1;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	so_store_close(w->store);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->wake);
	free(w);
}
