/**
 * Notifications: the durable outbox and the channels that deliver it (Slack, Microsoft
 * Teams, webhooks).
 *
 * Every notification is an outbox row written in the same store transaction as the state
 * change that caused it (so_notify_* below are called from inside writer jobs). A worker
 * thread delivers due rows with libcurl, retries with exponential backoff and jitter
 * (honouring Retry-After), records each delivery or final failure in the audit log, and
 * resumes after a restart. The API never waits on a chat service.
 *
 * Channels implement one small vtable (so_channel_ops_t); adding one touches a new file and
 * one row in the table in outbox.c. Their base URLs come from configuration so tests point
 * them at local fakes.
 *
 * Ownership: a so_notifier_t owns its configuration copy (secrets included, wiped on free)
 * and its worker thread; it borrows the writer and the principals directory.
 */
#ifndef SO_NOTIFY_NOTIFY_H
#define SO_NOTIFY_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/core.h"
#include "store/store.h"
#include "store/writer.h"

/** Slack settings (notify.slack). Secrets are read from files or the environment at load. */
typedef struct so_slack_config {
	int enabled;
	char *bot_token;      /**< xoxb-..., secret */
	char *signing_secret; /**< secret */
	char *api_url;        /**< default https://slack.com/api */
	char *channel;        /**< default route, or NULL */
	int dm_reviewers;     /**< also DM eligible reviewers that have a slack_user */
} so_slack_config_t;

/** Microsoft Teams settings (notify.teams). */
typedef struct so_teams_config {
	int enabled;
	char *app_id;
	char *app_password;          /**< secret */
	char *tenant;                /**< for the token endpoint; default botframework.com */
	char *token_url;             /**< OAuth2 client-credentials endpoint */
	char *openid_metadata_url;   /**< Bot Framework OpenID metadata (JWKS location) */
	char *service_url;           /**< connector base for proactive messages */
	char *conversation;          /**< default route, or NULL */
	char *webhook_url;           /**< Workflows incoming webhook (notification only), secret */
} so_teams_config_t;

typedef struct so_webhook_config {
	char *url;
	char *secret; /**< HMAC key, secret */
} so_webhook_config_t;

typedef struct so_notify_config {
	char *console_url; /**< base URL of the console, for links in messages, or NULL */
	so_slack_config_t slack;
	so_teams_config_t teams;
	so_webhook_config_t *webhooks;
	size_t nwebhooks;
	int64_t max_attempts;  /**< before a delivery is given up (and audited as failed) */
	int64_t max_delay;     /**< seconds, cap of the backoff */
} so_notify_config_t;

void so_notify_config_free(so_notify_config_t *c);

typedef struct so_notifier so_notifier_t;

/**
 * Queue what a state change of `r` means for people, inside the caller's open transaction on
 * `s`: `event` is the audit event type that the change wrote (request.submitted,
 * request.reviewed, request.expired, request.escalated, ...). Returns a store error, in which
 * case the caller rolls back (no notification, no change).
 */
int so_notify_request(so_notifier_t *n, so_store_t *s, const so_request_t *r, const char *event,
                      int64_t now);
/**
 * Queue a message only `user` sees, in `where` (a Slack ephemeral message): the reason a
 * click was refused, or a personal sign-in link.
 */
int so_notify_ephemeral(so_notifier_t *n, so_store_t *s, const char *channel, const char *where,
                      const char *user, const char *text, int64_t now);
/**
 * The same for a secret (a one-time sign-in link), Slack only: the text is sealed with a key
 * that exists only in this daemon's memory, so the outbox row never holds it in clear. After
 * a restart the message cannot be opened, and a short note is sent instead (the link died
 * with the daemon anyway). SO_EINVAL when `text` is over 2 KiB.
 */
int so_notify_ephemeral_sealed(so_notifier_t *n, so_store_t *s, const char *where,
                               const char *user, const char *text, int64_t now);
/**
 * Check a Slack request signature: "v0=" + hex HMAC-SHA256(secret, "v0:" ts ":" body),
 * compared in constant time, with the timestamp within 5 minutes of `now` (seconds).
 * Returns NULL when it holds, else a short reason.
 */
const char *so_slack_verify(const char *secret, const char *timestamp, const char *body,
                            size_t len, const char *signature, int64_t now);

/**
 * The Adaptive Card for a request as the API shows it (`request`): what Slack's message says,
 * with Approve / Deny (Action.Execute, verbs signoff_approve / signoff_deny, data
 * {request_id}) while it is pending when `buttons`, the outcome once decided, a console link
 * when console_url is set, and `note` (or NULL) on top, e.g. why a click was refused.
 * New reference.
 */
json_t *so_teams_card(const so_notify_config_t *cfg, const json_t *request, int buttons,
                      const char *note);

/** Queue Slack's deny-reason form for `trigger_id` (a click on "Deny with a reason…"). */
int so_notify_deny_form(so_notifier_t *n, so_store_t *s, const char *trigger_id,
                        const char *request_id, int64_t now);

/** Wake the worker (after a commit that queued rows). */
void so_notifier_kick(so_notifier_t *n);

/**
 * Start the worker thread: it reads due rows on its own connection to `store_url`. Private
 * messages are sealed in the outbox with a key made from `seal_secret` (32 bytes every node
 * sharing the store derives alike, from a secret the store does not hold).
 */
so_notifier_t *so_notifier_start(const so_notify_config_t *cfg, const so_directory_t *dir,
                                 const char *store_url, so_writer_t *writer,
                                 const unsigned char seal_secret[32], char *err, size_t errlen);
/** Stop the worker (rows not yet delivered stay in the outbox for the next start). */
void so_notifier_stop(so_notifier_t *n);
/** The configuration it runs with (for the inbound endpoints: secrets, app id). */
const so_notify_config_t *so_notifier_config(const so_notifier_t *n);

#endif
