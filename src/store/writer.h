/**
 * Group commit: one writer thread owns the write connection and runs queued jobs in
 * batches, each job inside its own savepoint, all of a batch under one COMMIT (one fsync).
 * A job's effects are visible to others only after that COMMIT; its `done` callback runs
 * after it, with SO_OK only if the batch was committed. This is how many requests per fsync
 * are written without weakening durability.
 *
 * Ownership: the writer owns the store handle given to so_writer_start(). Jobs are owned by
 * their submitters and must stay alive until `done` has been called.
 */
#ifndef SO_STORE_WRITER_H
#define SO_STORE_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

typedef struct so_writer so_writer_t;

typedef struct so_job {
	/** Runs in the writer thread inside a savepoint. Non-SO_OK rolls back this job only. */
	int (*run)(so_store_t *s, void *arg);
	/** Runs in the writer thread after the batch ended; `rc` is the job's final result. */
	void (*done)(void *arg, int rc);
	void *arg;
	struct so_job *next; /**< queue link, the writer's */
	int rc;              /**< the writer's */
} so_job_t;

/** Called after each commit with its duration and batch size (for metrics). */
typedef void (*so_writer_observer_fn)(int64_t commit_usec, size_t batch);

/** Start the writer thread on `store` (taken over). NULL on failure. */
so_writer_t *so_writer_start(so_store_t *store, size_t max_batch, so_writer_observer_fn obs);
/** Queue a job; returns at once. SO_EBUSY once the writer is stopping. */
int so_writer_submit(so_writer_t *w, so_job_t *job);
/** Queue a job and wait until it has committed (or failed). Returns its result. */
int so_writer_run(so_writer_t *w, int (*run)(so_store_t *s, void *arg), void *arg);
/**
 * Hooks around each batch (NULL to remove them): `before_commit` runs in the batch's
 * transaction after its jobs, when they all could run; its failure fails the whole batch.
 * `batch_end` runs after the commit or rollback (`committed` says which), before any `done`.
 * Both run in the writer thread; set and clear them while nothing else uses `ctx`.
 */
void so_writer_set_hooks(so_writer_t *w, int (*before_commit)(so_store_t *s, void *ctx),
                         void (*batch_end)(void *ctx, int committed), void *ctx);
/** Finish every queued job, stop the thread and close the store. */
void so_writer_stop(so_writer_t *w);

#endif
