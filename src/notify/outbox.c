/*
 * The durable outbox: rows queued inside state changes, a worker thread that delivers them,
 * retries with exponential backoff and jitter, and audits each delivery or final failure.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "audit/audit.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "notify/internal.h"

#define BATCH 32
#define IDLE_WAIT_MS 1000
#define BASE_DELAY_MS 500
/* With several nodes on one store, a row taken for delivery is not due again for this long,
 * so one node sends it: longer than a delivery takes (a post is one or two calls of 10 s at
 * most; an update, one call per message it edits, so one with many messages that all time
 * out can outlast it). A node that dies holding a row leaves it to the others after it. */
#define CLAIM_LEASE_MS (60 * 1000)

/* Channels, by the name stored in outbox rows. */
static const so_channel_ops_t *const channels[] = {
	&so_channel_slack,
	&so_channel_teams,
	&so_channel_webhook,
	NULL,
};

static const so_channel_ops_t *
channel_named(const char *name)
{
	for (int i = 0; channels[i]; i++)
		if (!strcmp(channels[i]->name, name))
			return channels[i];
	return NULL;
}

static void
free_secret(char **s)
{
	if (*s) {
		sodium_memzero(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

void
so_notify_config_free(so_notify_config_t *c)
{
	free(c->console_url);
	free_secret(&c->slack.bot_token);
	free_secret(&c->slack.signing_secret);
	free(c->slack.api_url);
	free(c->slack.channel);
	free(c->teams.app_id);
	free_secret(&c->teams.app_password);
	free(c->teams.tenant);
	free(c->teams.token_url);
	free(c->teams.openid_metadata_url);
	free(c->teams.service_url);
	free(c->teams.conversation);
	free_secret(&c->teams.webhook_url);
	for (size_t i = 0; i < c->nwebhooks; i++) {
		free(c->webhooks[i].url);
		free_secret(&c->webhooks[i].secret);
	}
	free(c->webhooks);
	memset(c, 0, sizeof(*c));
}

const so_notify_config_t *
so_notifier_config(const so_notifier_t *n)
{
	return n->cfg;
}

/* ---- queueing (inside the caller's transaction) ---- */

static int
queue(so_store_t *s, const char *request_id, const char *channel, const char *kind,
      const char *target, json_t *body, int64_t now)
{
	so_outbox_row_t row = {0};
	snprintf(row.request_id, sizeof(row.request_id), "%s", request_id ? request_id : "");
	snprintf(row.channel, sizeof(row.channel), "%s", channel);
	snprintf(row.kind, sizeof(row.kind), "%s", kind);
	row.target = (char *)target;
	row.body = body ? so_json_canonical_str(body) : NULL;
	json_decref(body);
	if (body && !row.body)
		return SO_ENOMEM;
	int rc = s->ops->outbox_insert(s, &row, now);
	free(row.body);
	return rc;
}

/* Slack DMs go to eligible humans with a slack_user, never to the requester's side. */
static int
queue_slack_dms(so_notifier_t *n, so_store_t *s, const so_request_t *r, int escalated_only,
                int64_t now)
{
	for (size_t i = 0; i < n->dir->n; i++) {
		const so_principal_t *p = &n->dir->items[i];
		if (p->kind != SO_KIND_HUMAN || !p->slack_user || so_core_is_self(r, p) ||
		    !so_core_eligible(r, p))
			continue;
		if (escalated_only) {
			/* only those the escalation added */
			int before = 0;
			for (size_t k = 0; k < r->decision.nreqs; k++) {
				const so_requirement_t *q = &r->decision.reqs[k];
				before |= (q->group && so_principal_in_group(p, q->group));
				if (q->principals)
					for (char **pp = q->principals; *pp; pp++)
						before |= !strcmp(*pp, p->id);
			}
			if (before)
				continue;
		}
		int rc = queue(s, r->id, "slack", "post", p->slack_user, NULL, now);
		if (rc)
			return rc;
	}
	return SO_OK;
}

/* Teams: cards to the rule's route or the default conversation (bot), and to the Workflows
 * webhook (notification only, once); later events refresh the bot's cards. */
static int
queue_teams(so_notifier_t *n, so_store_t *s, const so_request_t *r, int submitted, int64_t now)
{
	const so_teams_config_t *c = &n->cfg->teams;
	int rc = SO_OK;
	if (!submitted)
		return c->app_id ? queue(s, r->id, "teams", "update", "*", NULL, now) : SO_OK;
	if (c->app_id) {
		size_t i;
		json_t *route;
		int routed = 0;
		json_array_foreach(r->decision.route, i, route) {
			const char *conv = json_string_value(json_object_get(route, "teams"));
			if (conv && (rc = queue(s, r->id, "teams", "post", conv, NULL, now)))
				return rc;
			routed |= conv != NULL;
		}
		if (!routed && c->conversation &&
		    (rc = queue(s, r->id, "teams", "post", c->conversation, NULL, now)))
			return rc;
	}
	if (c->webhook_url)
		rc = queue(s, r->id, "teams", "card", "webhook", NULL, now);
	return rc;
}

int
so_notify_request(so_notifier_t *n, so_store_t *s, const so_request_t *r, const char *event,
                  int64_t now)
{
	int rc = SO_OK;
	if (!n)
		return SO_OK;
	const so_notify_config_t *cfg = n->cfg;
	int review = r->decision.outcome == SO_OUT_REVIEW;
	int submitted = !strcmp(event, "request.submitted");

	if (cfg->slack.enabled && review) {
		if (submitted) {
			/* The rule's route, or the default channel. */
			size_t i;
			json_t *route;
			int routed = 0;
			json_array_foreach(r->decision.route, i, route) {
				const char *ch = json_string_value(json_object_get(route, "slack"));
				if (ch && !(rc = queue(s, r->id, "slack", "post", ch, NULL, now)))
					routed = 1;
				if (rc)
					return rc;
			}
			if (!routed && cfg->slack.channel &&
			    (rc = queue(s, r->id, "slack", "post", cfg->slack.channel, NULL, now)))
				return rc;
			if (cfg->slack.dm_reviewers && (rc = queue_slack_dms(n, s, r, 0, now)))
				return rc;
		} else {
			if ((rc = queue(s, r->id, "slack", "update", "*", NULL, now)))
				return rc;
			if (!strcmp(event, "request.escalated") && cfg->slack.dm_reviewers &&
			    (rc = queue_slack_dms(n, s, r, 1, now)))
				return rc;
		}
	}
	if (cfg->teams.enabled && review && (rc = queue_teams(n, s, r, submitted, now)))
		return rc;
	for (size_t i = 0; i < cfg->nwebhooks; i++) {
		/* The target is the URL itself: a row stays bound to where it was meant to go even
		 * if the list is edited while it waits. */
		char at[40];
		so_clock_format(now, at, sizeof(at));
		json_t *body = json_pack("{s:s, s:s, s:o}", "type", event, "at", at, "request",
		                         so_request_to_json(n->dir, r));
		if ((rc = queue(s, r->id, "webhook", "event", cfg->webhooks[i].url, body, now)))
			return rc;
	}
	return SO_OK;
}

int
so_notify_ephemeral(so_notifier_t *n, so_store_t *s, const char *channel, const char *where,
                  const char *user, const char *text, int64_t now)
{
	if (!n || strcmp(channel, "slack") || !n->cfg->slack.enabled || !where || !user)
		return SO_OK;
	return queue(s, NULL, "slack", "ephemeral", where,
	             json_pack("{s:s, s:s}", "user", user, "text", text), now);
}

/** Most text a sealed message carries. */
#define SEALED_TEXT_MAX 2048

int
so_notify_ephemeral_sealed(so_notifier_t *n, so_store_t *s, const char *where, const char *user,
                           const char *text, int64_t now)
{
	unsigned char box[crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + SEALED_TEXT_MAX];
	char hex[2 * sizeof(box) + 1];
	size_t len = strlen(text);
	int rc;

	if (!n || !n->cfg->slack.enabled || !where || !user)
		return SO_OK;
	if (len > SEALED_TEXT_MAX)
		return SO_EINVAL;
	randombytes_buf(box, crypto_secretbox_NONCEBYTES);
	crypto_secretbox_easy(box + crypto_secretbox_NONCEBYTES, (const unsigned char *)text, len,
	                      box, n->seal_key);
	sodium_bin2hex(hex, sizeof(hex), box,
	               crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + len);
	rc = queue(s, NULL, "slack", "ephemeral", where,
	           json_pack("{s:s, s:s}", "user", user, "sealed", hex), now);
	sodium_memzero(box, sizeof(box));
	return rc;
}

int
so_notify_unseal(const so_notifier_t *n, const char *hex, char *out, size_t size)
{
	unsigned char box[crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + SEALED_TEXT_MAX];
	size_t len = 0, text_len;

	if (sodium_hex2bin(box, sizeof(box), hex, strlen(hex), NULL, &len, NULL) != 0 ||
	    len < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES)
		return SO_EINVAL;
	text_len = len - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
	if (text_len + 1 > size ||
	    crypto_secretbox_open_easy((unsigned char *)out, box + crypto_secretbox_NONCEBYTES,
	                               len - crypto_secretbox_NONCEBYTES, box, n->seal_key) != 0)
		return SO_EINVAL; /* sealed by an earlier run of the daemon: its key is gone */
	out[text_len] = '\0';
	return SO_OK;
}

int
so_notify_deny_form(so_notifier_t *n, so_store_t *s, const char *trigger_id,
                    const char *request_id, int64_t now)
{
	if (!n || !n->cfg->slack.enabled)
		return SO_OK;
	/* not tied to the request's queue: the form must open within Slack's 3 seconds */
	return queue(s, NULL, "slack", "modal", trigger_id,
	             json_pack("{s:s}", "request_id", request_id), now);
}

void
so_notifier_kick(so_notifier_t *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	n->kicks++;
	pthread_cond_broadcast(&n->kick);
	pthread_mutex_unlock(&n->lock);
}

/* ---- delivering ---- */

struct refs {
	so_message_ref_t *items;
	size_t n;
};

static int
collect_ref(void *ctx, const char *target, const char *ref)
{
	struct refs *r = ctx;
	so_message_ref_t *grown = realloc(r->items, (r->n + 1) * sizeof(*grown));
	if (!grown)
		return SO_ENOMEM;
	r->items = grown;
	r->items[r->n].target = strdup(target);
	r->items[r->n].ref = strdup(ref);
	r->n++;
	return SO_OK;
}

static void
free_refs(struct refs *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->items[i].target);
		free(r->items[i].ref);
	}
	free(r->items);
}

struct settle {
	const so_outbox_row_t *row;
	const so_delivery_t *d;
	const char *state;   /* done | failed | NULL (retry) */
	int64_t next_at;
	const so_message_ref_t *refs; /* for an update: the messages it reached */
	size_t nrefs;
};

static int
audit_delivery(so_store_t *s, const struct settle *st, const char *target, int64_t now)
{
	const so_outbox_row_t *row = st->row;
	json_t *data = json_pack("{s:s, s:s, s:s, s:I}", "channel", row->channel, "kind", row->kind,
	                         "target", target, "attempts", (json_int_t)(row->attempts + 1));
	if (row->request_id[0])
		json_object_set_new(data, "request_id", json_string(row->request_id));
	if (!st->d->ok)
		json_object_set_new(data, "error", json_string(st->d->error));
	return so_audit_append(s, st->d->ok ? "notify.delivered" : "notify.failed",
	                       row->request_id[0] ? row->request_id : NULL, NULL, data, now);
}

static int
op_settle(so_store_t *s, void *arg)
{
	struct settle *st = arg;
	const so_outbox_row_t *row = st->row;
	int64_t now = so_clock_now_ms();
	int rc = s->ops->outbox_settle(s, row->id, st->state, row->attempts + 1, st->next_at,
	                               st->d->ok ? NULL : st->d->error, now);
	if (!rc && st->d->ok && st->d->ref[0])
		rc = s->ops->chat_message_insert(s, row->request_id, row->channel, st->d->ref_target,
		                                 st->d->ref, row->id);
	if (!rc && st->state) {
		/* One record per message reached: an update names each message it changed. */
		if (st->d->ok && !strcmp(row->kind, "update") && st->nrefs) {
			for (size_t i = 0; i < st->nrefs && !rc; i++)
				rc = audit_delivery(s, st, st->refs[i].target, now);
		} else {
			rc = audit_delivery(s, st, row->target, now);
		}
	}
	return rc;
}

static int64_t
backoff_ms(const so_notify_config_t *cfg, int64_t attempts, int64_t retry_after)
{
	int64_t cap = cfg->max_delay * 1000;
	int64_t d = BASE_DELAY_MS;
	for (int64_t i = 0; i < attempts && d < cap; i++)
		d *= 2;
	if (d > cap)
		d = cap;
	/* jitter: between half and all of it */
	d = d / 2 + (int64_t)randombytes_uniform((uint32_t)(d / 2 + 1));
	if (retry_after * 1000 > d)
		d = retry_after * 1000;
	return d;
}

/* Deliver one row; 0 when it had to wait for an older one (nothing was tried). */
static int
deliver_one(struct so_notify_worker *w, const so_outbox_row_t *row)
{
	so_notifier_t *n = w->n;
	so_store_t *reader = w->reader;
	so_delivery_t d = {0};
	struct refs refs = {0};
	json_t *view = NULL;
	const so_channel_ops_t *ch = channel_named(row->channel);
	int waiting = 0;

	/* Messages about one request go out in order: an update waits for the post. */
	if (row->request_id[0] &&
	    (reader->ops->outbox_waiting(reader, row, &waiting) || waiting))
		return 0;
	/* Several nodes see the same due rows: the one whose claim lands sends it. */
	if (reader->ops->outbox_claim) {
		int64_t now = so_clock_now_ms();
		int claimed = 0;
		if (reader->ops->outbox_claim(reader, row->id, now, now + CLAIM_LEASE_MS, &claimed) ||
		    !claimed)
			return 0;
	}
	if (row->request_id[0]) {
		so_request_t *r = NULL;
		if (reader->ops->request_get(reader, row->request_id, &r) == SO_OK) {
			view = so_request_to_json(n->dir, r);
			so_request_free(r);
		}
		if (!strcmp(row->kind, "update"))
			reader->ops->chat_messages(reader, row->request_id, row->channel, collect_ref, &refs);
	}
	if (!ch) {
		snprintf(d.error, sizeof(d.error), "no channel named %s", row->channel);
	} else if (row->request_id[0] && !view) {
		snprintf(d.error, sizeof(d.error), "request %s is gone", row->request_id);
	} else {
		ch->deliver(n, row, view, refs.items, refs.n, &d);
	}
	struct settle st = {.row = row, .d = &d, .refs = refs.items, .nrefs = refs.n};
	int64_t now = so_clock_now_ms();
	if (d.ok) {
		st.state = "done";
	} else if (d.retry && row->attempts + 1 < n->cfg->max_attempts) {
		st.next_at = now + backoff_ms(n->cfg, row->attempts, d.retry_after);
		so_warn("notify: %s %s to %s failed (%s); trying again", row->channel, row->kind,
		        row->target, d.error);
	} else {
		st.state = "failed";
		so_error("notify: %s %s to %s failed for good: %s", row->channel, row->kind, row->target,
		         d.error);
	}
	if (so_writer_run(n->writer, op_settle, &st))
		so_error("notify: could not record the delivery of outbox row %lld",
		         (long long)row->id);
	json_decref(view);
	free_refs(&refs);
	return 1;
}

/* Which worker a row belongs to: by request, so one request's messages stay in order. */
static unsigned
partition(const so_outbox_row_t *row)
{
	const char *key = row->request_id[0] ? row->request_id : row->target;
	uint32_t h = 2166136261u;
	for (const char *p = key; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return h % SO_NOTIFY_WORKERS;
}

static void *
worker_main(void *arg)
{
	struct so_notify_worker *w = arg;
	so_notifier_t *n = w->n;
	int again = 1; /* deliver what a previous run left */
	pthread_mutex_lock(&n->lock);
	while (!n->stopping) {
		if (!again && w->seen == n->kicks) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += IDLE_WAIT_MS / 1000;
			pthread_cond_timedwait(&n->kick, &n->lock, &ts);
		}
		w->seen = n->kicks;
		again = 0;
		if (n->stopping)
			break;
		pthread_mutex_unlock(&n->lock);
		so_outbox_row_t *rows = NULL;
		size_t count = 0;
		if (w->reader->ops->outbox_due(w->reader, so_clock_now_ms(),
		                               BATCH * SO_NOTIFY_WORKERS, &rows, &count) == SO_OK) {
			size_t tried = 0;
			for (size_t i = 0; i < count && !n->stopping; i++)
				if (partition(&rows[i]) == w->index)
					tried += deliver_one(w, &rows[i]);
			so_outbox_rows_free(rows, count);
			/* more may be due; a batch that all waits must not spin */
			again = count == BATCH * SO_NOTIFY_WORKERS && tried;
		}
		pthread_mutex_lock(&n->lock);
	}
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

so_notifier_t *
so_notifier_start(const so_notify_config_t *cfg, const so_directory_t *dir,
                  const char *store_url, so_writer_t *writer,
                  const unsigned char seal_secret[32], char *err, size_t errlen)
{
	so_notifier_t *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->cfg = cfg;
	n->dir = dir;
	n->writer = writer;
	crypto_generichash(n->seal_key, sizeof(n->seal_key),
	                   (const unsigned char *)"signoff outbox seal", 19, seal_secret, 32);
	pthread_mutex_init(&n->lock, NULL);
	pthread_cond_init(&n->kick, NULL);
	for (unsigned i = 0; i < SO_NOTIFY_WORKERS; i++) {
		struct so_notify_worker *w = &n->workers[i];
		w->n = n;
		w->index = i;
		if (so_store_open(store_url, &w->reader, err, errlen) ||
		    pthread_create(&w->thread, NULL, worker_main, w)) {
			so_notifier_stop(n);
			return NULL;
		}
		w->started = 1;
	}
	return n;
}

void
so_notifier_stop(so_notifier_t *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	n->stopping = 1;
	pthread_cond_broadcast(&n->kick);
	pthread_mutex_unlock(&n->lock);
	for (unsigned i = 0; i < SO_NOTIFY_WORKERS; i++) {
		if (n->workers[i].started)
			pthread_join(n->workers[i].thread, NULL);
		so_store_close(n->workers[i].reader);
	}
	pthread_mutex_destroy(&n->lock);
	pthread_cond_destroy(&n->kick);
	sodium_memzero(n->seal_key, sizeof(n->seal_key));
	free(n);
}
