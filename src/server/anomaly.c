/*
 * Anomaly scoring in the daemon: one baseline per configured principal (src/anomaly), loaded
 * from the store on first use. A submission is scored and counted in the HTTP thread before
 * the policy runs; what is allowed or approved is learned in the writer thread inside the
 * change's transaction. A changed baseline is saved with a later change at most once a
 * second per principal (BASELINE_SAVE_MS), and by anomaly_flush() (the sweeper, each second,
 * and at stop) otherwise, so the writer does not encode a baseline on every submission.
 * Hours are judged in the policy's time zone.
 *
 * On a store several nodes share, the writer reads a baseline again the first time a batch
 * uses it, counts and learns in it, and saves it at the batch's end, inside the batch's
 * transaction (writer hooks): no other node writes in between (the write lock), so every
 * node's requests count and nothing one node learned is overwritten by another's older copy,
 * at one read, encode and write per principal per batch.
 *
 * Owns: the baselines, indexed like the configuration's directory, under one lock. What is
 * learned but not yet saved when the daemon dies is at most the last second of it.
 */
#include <stdlib.h>
#include <string.h>

#include "anomaly/anomaly.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "server/internal.h"

#define BASELINE_SAVE_MS 1000
/* On a shared store, how old a cached baseline may be when a request is scored with it. */
#define SHARED_REFRESH_MS 1000

struct slot {
	so_baseline_t *b; /* NULL until loaded (or none stored: a new principal) */
	int loaded;
	int dirty;        /* changed since last saved */
	int64_t saved_at; /* wall-clock ms of the last save */
	uint64_t batch;   /* shared store: the writer batch it was last read in */
	int64_t loaded_at; /* monotonic ms it was read from the store */
};

struct baselines {
	pthread_mutex_t lock;
	so_anomaly_params_t params;
	const so_directory_t *dir;
	struct slot *slots; /* one per directory entry */
	int shared;         /* the store is shared with other nodes (batch hooks in use) */
	uint64_t batch;     /* shared store: the writer batch now running (from 1) */
};

struct baselines *
baselines_new(const so_config_t *cfg)
{
	struct baselines *bl = calloc(1, sizeof(*bl));

	if (!bl)
		return NULL;
	bl->slots = calloc(cfg->directory.n ? cfg->directory.n : 1, sizeof(*bl->slots));
	if (!bl->slots) {
		free(bl);
		return NULL;
	}
	bl->dir = &cfg->directory;
	so_anomaly_params_default(&bl->params);
	bl->params.learning_ms = cfg->anomaly_learning_period * 1000;
	bl->params.learning_events = (uint32_t)cfg->anomaly_learning_requests;
	bl->params.learning_score = (double)cfg->anomaly_learning_score_pct / 100.0;
	bl->params.half_life_days = (double)cfg->anomaly_half_life / 86400.0;
	bl->params.threshold = (double)cfg->policy.anomaly_threshold_pct / 100.0;
	pthread_mutex_init(&bl->lock, NULL);
	return bl;
}

void
baselines_free(struct baselines *bl)
{
	if (!bl)
		return;
	for (size_t i = 0; i < bl->dir->n; i++)
		so_baseline_free(bl->slots[i].b);
	free(bl->slots);
	pthread_mutex_destroy(&bl->lock);
	free(bl);
}

/**
 * The settings for a moment `ms`: hours of the week are the policy's (policy.timezone), with
 * the offset in force then, so "never before outside 08:00-19:00" means local working hours.
 */
static void
params_at(so_server_t *srv, int64_t ms, so_anomaly_params_t *out)
{
	struct policy_ref *pr = policy_acquire(srv);

	*out = srv->baselines->params;
	out->tz_offset_minutes = (int)(so_tz_offset(&pr->policy.tz, ms / 1000) / 60);
	policy_release(pr);
}

/**
 * The slot of principal `id` (under lock), loaded from `s` when first asked. NULL when `id` is
 * unknown, or when its baseline cannot be read now (`*rc` then says why): a store that fails
 * must not make a known agent look new, nor be overwritten with an empty baseline.
 */
static struct slot *
slot_of(struct baselines *bl, so_store_t *s, const char *id, int *rc)
{
	const so_principal_t *p = so_directory_find(bl->dir, id);
	struct slot *sl;
	char *doc = NULL;
	json_t *j;

	*rc = SO_OK;
	if (!p)
		return NULL;
	sl = &bl->slots[p - bl->dir->items];
	if (sl->loaded)
		return sl;
	*rc = s->ops->baseline_get(s, id, &doc);
	if (*rc == SO_OK) {
		j = json_loads(doc, 0, NULL);
		if (!j || so_baseline_from_json(j, &sl->b) != SO_OK)
			so_warn("anomaly: the stored baseline of %s is unreadable; it starts again", id);
		json_decref(j);
		free(doc);
	} else if (*rc != SO_ENOTFOUND) {
		return NULL;
	}
	*rc = SO_OK;
	sl->loaded_at = so_clock_mono_ms();
	/* Not stored yet (or unreadable): a new principal, scored as new until it has learned. */
	if (!sl->b)
		sl->b = so_baseline_new();
	if (!sl->b) {
		*rc = SO_ENOMEM;
		return NULL;
	}
	sl->loaded = 1;
	return sl;
}

/** Drop the cached baseline of `id` (under lock): the next use reads the stored one. */
static void
forget(struct baselines *bl, const char *id)
{
	const so_principal_t *p = so_directory_find(bl->dir, id);
	if (!p)
		return;
	struct slot *sl = &bl->slots[p - bl->dir->items];
	so_baseline_free(sl->b);
	memset(sl, 0, sizeof(*sl));
}

void
anomaly_score_request(so_server_t *srv, so_request_t *r, int64_t now)
{
	struct baselines *bl = srv->baselines;
	so_anomaly_params_t params;
	so_anomaly_features_t f;
	so_anomaly_result_t res;
	struct slot *sl;
	json_t *anomaly;
	so_store_t *s;
	int rc;

	so_anomaly_features(r->action, r->context, &f);
	params_at(srv, now, &params);
	s = readers_take(&srv->readers);
	pthread_mutex_lock(&bl->lock);
	sl = slot_of(bl, s, r->requester, &rc);
	if (sl && bl->shared && !sl->dirty &&
	    so_clock_mono_ms() - sl->loaded_at >= SHARED_REFRESH_MS) {
		/* What other nodes learned meanwhile; never while a batch here holds changes. */
		forget(bl, r->requester);
		sl = slot_of(bl, s, r->requester, &rc);
	}
	so_anomaly_score(sl ? sl->b : NULL, &params, r->requester, &f, now, &res);
	if (rc != SO_OK) {
		/* Its baseline cannot be read now: fail closed, an allow goes to people. */
		res.score = 1.0;
		res.nreasons = 1;
		snprintf(res.reasons[0], sizeof(res.reasons[0]), "the baseline of %.100s cannot be "
		         "read now (%s); treated as unusual", r->requester, so_strerror(rc));
	}
	/* Counted in the same breath, so two requests at once see each other in the rates. */
	if (sl && !bl->shared) {
		so_baseline_note_submitted(sl->b, &params, now);
		sl->dirty = 1;
	}
	pthread_mutex_unlock(&bl->lock);
	readers_give(&srv->readers, s);
	anomaly = so_anomaly_result_to_json(&res);
	if (anomaly) {
		json_decref(r->anomaly);
		r->anomaly = anomaly;
	}
}

/** Save the slot's baseline when it changed and the last save is old enough (under lock). */
static int
save(struct baselines *bl, so_store_t *s, struct slot *sl, const char *id, int64_t now, int force)
{
	json_t *doc;
	char *text;
	int rc;

	if (!sl->dirty || (!force && now - sl->saved_at < BASELINE_SAVE_MS))
		return SO_OK;
	doc = so_baseline_to_json(sl->b);
	text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (!text)
		return SO_ENOMEM;
	rc = s->ops->baseline_put(s, id, text, now);
	free(text);
	if (rc == SO_OK) {
		sl->dirty = 0;
		sl->saved_at = now;
	}
	return rc;
}

/**
 * In the writer: `learn` makes `r` part of its requester's normal; either way the baseline is
 * saved when it changed (counted submissions wait for the next save, at most a second).
 *
 * On a store other nodes share, the cached baseline may be behind theirs: it is read again
 * here, where no other node writes meanwhile, `r` is counted in it again when `submitted`
 * (the count made before the policy went with the old copy), and it is saved at once.
 */
static int
teach(so_server_t *srv, so_store_t *s, const so_request_t *r, int learn, int submitted)
{
	struct baselines *bl = srv->baselines;
	so_anomaly_params_t params;
	so_anomaly_features_t f;
	struct slot *sl;
	int64_t now = so_clock_now_ms();
	int rc = SO_OK;

	so_anomaly_features(r->action, r->context, &f);
	params_at(srv, r->created_at, &params);
	pthread_mutex_lock(&bl->lock);
	sl = slot_of(bl, s, r->requester, &rc);
	if (sl && bl->shared && sl->batch != bl->batch) {
		/* First use in this batch: read what other nodes saved (none writes until it ends). */
		forget(bl, r->requester);
		if ((sl = slot_of(bl, s, r->requester, &rc)))
			sl->batch = bl->batch;
	}
	if (sl && bl->shared && submitted) {
		/* counted here, not before the policy: a re-read would lose that count */
		so_baseline_note_submitted(sl->b, &params, r->created_at);
		sl->dirty = 1;
	}
	if (sl && learn) {
		so_baseline_learn(sl->b, &params, &f, r->created_at);
		sl->dirty = 1;
	}
	/* Shared: saved once at the batch's end (anomaly_before_commit). Else at most once a
	 * second, and anomaly_flush() saves what waits. */
	if (sl && !bl->shared)
		rc = save(bl, s, sl, r->requester, now, 0);
	pthread_mutex_unlock(&bl->lock);
	return rc;
}

/* Save every changed baseline now, or (`this_batch`) those the running batch read. */
static int
save_changed(struct baselines *bl, so_store_t *s, int this_batch)
{
	int64_t now = so_clock_now_ms();
	int rc = SO_OK;
	pthread_mutex_lock(&bl->lock);
	for (size_t i = 0; i < bl->dir->n && rc == SO_OK; i++)
		if (bl->slots[i].b && (!this_batch || bl->slots[i].batch == bl->batch))
			rc = save(bl, s, &bl->slots[i], bl->dir->items[i].id, now, 1);
	pthread_mutex_unlock(&bl->lock);
	return rc;
}

int
anomaly_before_commit(so_store_t *s, void *ctx)
{
	return save_changed(ctx, s, 1);
}

void
anomaly_batch_end(void *ctx, int committed)
{
	struct baselines *bl = ctx;
	(void)committed; /* either way the next batch reads every baseline it uses again */
	pthread_mutex_lock(&bl->lock);
	bl->batch++;
	pthread_mutex_unlock(&bl->lock);
}

void
anomaly_share(struct baselines *bl)
{
	pthread_mutex_lock(&bl->lock);
	bl->shared = 1;
	bl->batch = 1;
	pthread_mutex_unlock(&bl->lock);
}

static int
op_flush(so_store_t *s, void *arg)
{
	return save_changed(arg, s, 0);
}

void
anomaly_flush(so_server_t *srv)
{
	struct baselines *bl = srv->baselines;
	int dirty = 0;
	pthread_mutex_lock(&bl->lock);
	/* shared: each batch saved its own; what a failed batch left is read again, not saved */
	for (size_t i = 0; i < bl->dir->n && !dirty && !bl->shared; i++)
		dirty = bl->slots[i].dirty;
	pthread_mutex_unlock(&bl->lock);
	if (dirty && so_writer_run(srv->writer, op_flush, bl))
		so_warn("anomaly: could not save the learned baselines now; trying again");
}

int
anomaly_after_submit(so_server_t *srv, so_store_t *s, const so_request_t *r)
{
	/* Allowed by policy as it is (not raised to review): that is normal now. */
	return teach(srv, s, r, r->status == SO_ST_APPROVED, 1);
}

int
anomaly_after_approval(so_server_t *srv, so_store_t *s, const so_request_t *r)
{
	/* People approved it: unusual or not, it becomes part of normal. Denials teach nothing. */
	return teach(srv, s, r, 1, 0);
}

/* ---- the API: GET /v1/anomaly/baseline?principal=P, POST /v1/anomaly/score ---- */

/** Whether `caller` may look at `id`'s baseline: itself, its owner, admins and auditors. */
static int
may_see(struct conn *c, const so_principal_t *p)
{
	return !strcmp(c->caller->id, p->id) || (p->owner && !strcmp(c->caller->id, p->owner)) ||
	       is_admin(c->srv, c->caller) || is_auditor(c->srv, c->caller);
}

void
h_anomaly_show(struct conn *c, struct MHD_Connection *mc)
{
	struct baselines *bl = c->srv->baselines;
	const char *id = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "principal");
	const so_principal_t *p = id ? so_directory_find(&c->srv->cfg->directory, id) : c->caller;
	int64_t now = so_clock_now_ms();
	so_anomaly_params_t params;
	struct slot *sl;
	so_buf_t words;
	json_t *doc = NULL;
	int learning, rc;
	so_store_t *s;

	if (!p || !may_see(c, p)) {
		reply_error(c, 404, "not_found", "no principal '%.100s' you may look at", id ? id : "?");
		return;
	}
	so_buf_init(&words, 256 * 1024);
	params_at(c->srv, now, &params);
	s = readers_take(&c->srv->readers);
	pthread_mutex_lock(&bl->lock);
	sl = slot_of(bl, s, p->id, &rc);
	so_baseline_describe(sl ? sl->b : NULL, &params, p->id, now, &words);
	learning = so_baseline_is_learning(sl ? sl->b : NULL, &params, now);
	if (sl)
		doc = so_baseline_to_json(sl->b);
	pthread_mutex_unlock(&bl->lock);
	readers_give(&c->srv->readers, s);
	if (rc != SO_OK) {
		json_decref(doc);
		so_buf_free(&words);
		reply_store_err(c, SO_ESTORE);
		return;
	}
	reply_json(c, 200, json_pack("{s:s, s:b, s:s, s:o}", "principal", p->id, "learning", learning,
	                             "description", so_buf_cstr(&words), "baseline",
	                             doc ? doc : json_null()));
	so_buf_free(&words);
}

void
h_anomaly_score(struct conn *c, struct MHD_Connection *mc)
{
	struct baselines *bl = c->srv->baselines;
	const char *who;
	const so_principal_t *p;
	so_anomaly_params_t params;
	so_anomaly_features_t f;
	so_anomaly_result_t res;
	int64_t now = so_clock_now_ms();
	struct slot *sl;
	so_store_t *s;
	int rc;

	(void)mc;
	if (parse_body(c))
		return;
	if (!json_is_object(json_object_get(c->in, "action"))) {
		reply_error(c, 400, "bad_request", "the body is a request: {\"action\": {...}, "
		            "\"context\"?: {...}, \"requester\"?: \"...\"}");
		return;
	}
	who = json_string_value(json_object_get(c->in, "requester"));
	p = who ? so_directory_find(&c->srv->cfg->directory, who) : c->caller;
	if (!p || !may_see(c, p)) {
		reply_error(c, 404, "not_found", "no principal '%s' you may score for", who ? who : "?");
		return;
	}
	so_anomaly_features(json_object_get(c->in, "action"), json_object_get(c->in, "context"), &f);
	params_at(c->srv, now, &params);
	s = readers_take(&c->srv->readers);
	pthread_mutex_lock(&bl->lock);
	sl = slot_of(bl, s, p->id, &rc);
	so_anomaly_score(sl ? sl->b : NULL, &params, p->id, &f, now, &res);
	pthread_mutex_unlock(&bl->lock);
	readers_give(&c->srv->readers, s);
	if (rc != SO_OK) {
		reply_store_err(c, SO_ESTORE);
		return;
	}
	reply_json(c, 200, so_anomaly_result_to_json(&res));
}
