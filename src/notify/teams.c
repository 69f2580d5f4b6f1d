/*
 * Microsoft Teams: Adaptive Cards with Approve / Deny (Action.Execute) sent as proactive
 * messages through the Bot Framework connector ("post"), refreshed in place after every
 * change ("update", PUT of the activity), and, for teams without a bot, the same card with a
 * console link posted to a Workflows incoming webhook ("card"). The bot's connector token
 * comes from the OAuth2 client-credentials grant and is cached until shortly before it
 * expires. The content is rendered from the request as it is at delivery.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/json.h"
#include "notify/internal.h"

#define TIMEOUT_MS 10000
#define EXCERPT_MAX 600
#define TOKEN_MAX 8192
#define TOKEN_MARGIN_S 300 /* renew this long before the token expires */
#define TOKEN_SCOPE "https://api.botframework.com/.default"
#define DEFAULT_SERVICE_URL "https://smba.trafficmanager.net/teams"
#define CARD_TYPE "application/vnd.microsoft.card.adaptive"

/* ---- the card ---- */

static json_t *
text_block(const char *text, const char *style)
{
	json_t *b = json_pack("{s:s, s:s, s:b}", "type", "TextBlock", "text", text, "wrap", 1);
	if (style && !strcmp(style, "title")) {
		json_object_set_new(b, "weight", json_string("Bolder"));
		json_object_set_new(b, "size", json_string("Medium"));
	} else if (style && !strcmp(style, "mono")) {
		json_object_set_new(b, "fontType", json_string("Monospace"));
	} else if (style && !strcmp(style, "subtle")) {
		json_object_set_new(b, "isSubtle", json_true());
		json_object_set_new(b, "size", json_string("Small"));
	} else if (style) {
		json_object_set_new(b, "color", json_string(style)); /* Good, Attention, Warning */
	}
	return b;
}

static void
fact(json_t *facts, const char *title, const char *value)
{
	if (value)
		json_array_append_new(facts, json_pack("{s:s, s:s}", "title", title, "value", value));
}

/* The action in one line: the command, or the tool and its arguments. */
static void
describe(const json_t *action, so_buf_t *b)
{
	json_t *cmd = json_object_get(action, "command");
	if (json_is_array(cmd)) {
		so_json_join_argv(cmd, b);
	} else if (json_object_get(action, "tool")) {
		char *args = json_dumps(json_object_get(action, "arguments"), JSON_COMPACT);
		so_buf_printf(b, "tool %s with %.300s", so_json_str(action, "tool", "?"),
		              args ? args : "{}");
		free(args);
	} else {
		so_buf_printf(b, "a %s action", so_json_str(action, "kind", "?"));
	}
}

static int
is_failure(const char *status)
{
	return !strcmp(status, "denied") || !strcmp(status, "expired") ||
	       !strcmp(status, "cancelled") || !strcmp(status, "failed");
}

json_t *
so_teams_card(const so_notify_config_t *cfg, const json_t *req, int buttons, const char *note)
{
	json_t *body = json_array(), *actions = json_array(), *facts = json_array();
	json_t *action = json_object_get(req, "action");
	json_t *decision = json_object_get(req, "decision");
	const char *status = so_json_str(req, "status", "pending");
	const char *id = so_json_str(req, "id", "");
	int pending = !strcmp(status, "pending");
	size_t i;
	json_t *v;
	so_buf_t b;
	so_buf_init(&b, 1 << 16);

	if (note)
		json_array_append_new(body, text_block(note, "Attention"));
	if (pending) {
		so_buf_adds(&b, "Approval needed");
	} else {
		so_buf_printf(&b, "%s %c%s", is_failure(status) ? "\xE2\x9D\x8C" : "\xE2\x9C\x85",
		              status[0] >= 'a' && status[0] <= 'z' ? status[0] - 'a' + 'A' : status[0],
		              status + 1);
	}
	json_array_append_new(body, text_block(so_buf_cstr(&b), "title"));
	so_buf_reset(&b);

	so_buf_printf(&b, "**%s**", so_json_str(req, "requester", "?"));
	if (json_is_string(json_object_get(req, "on_behalf_of")))
		so_buf_printf(&b, " (for %s)", so_json_str(req, "on_behalf_of", "?"));
	so_buf_adds(&b, " wants to run:");
	json_array_append_new(body, text_block(so_buf_cstr(&b), NULL));
	so_buf_reset(&b);
	describe(action, &b);
	json_array_append_new(body, text_block(so_buf_cstr(&b), "mono"));
	so_buf_reset(&b);

	fact(facts, "Environment", so_json_str(action, "environment", NULL));
	fact(facts, "Resource", so_json_str(action, "resource", NULL));
	fact(facts, "Why", so_json_str(req, "intent", "(no reason given)"));
	fact(facts, "Expires", so_json_str(req, "expires_at", "?"));
	json_array_append_new(body, json_pack("{s:s, s:o}", "type", "FactSet", "facts", facts));

	json_array_foreach(json_object_get(decision, "rules"), i, v)
	    so_buf_printf(&b, "%s**%s**: %s", i ? "\n\n" : "Rule ", so_json_str(v, "name", "?"),
	                  so_json_str(v, "reason", ""));
	json_array_foreach(json_object_get(decision, "requirements"), i, v)
	    so_buf_printf(&b, "%sNeeds %lld of %s (approved: %zu)", b.len ? "\n\n" : "",
	                  (long long)json_integer_value(json_object_get(v, "count")),
	                  so_json_str(v, "group", "the named people"),
	                  json_array_size(json_object_get(v, "approved_by")));
	json_array_foreach(json_object_get(json_object_get(req, "anomaly"), "reasons"), i, v)
	    so_buf_printf(&b, "%s\xE2\x9A\xA0 %s", b.len ? "\n\n" : "",
	                  json_is_string(v) ? json_string_value(v) : "?");
	if (b.len)
		json_array_append_new(body, text_block(so_buf_cstr(&b), NULL));
	so_buf_reset(&b);

	const char *key;
	json_object_foreach(json_object_get(req, "context"), key, v) {
		char *text = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT);
		const char *shown = text ? text : json_string_value(v);
		so_buf_printf(&b, "**%s**", key);
		json_array_append_new(body, text_block(so_buf_cstr(&b), NULL));
		so_buf_reset(&b);
		so_buf_printf(&b, "%.*s", EXCERPT_MAX, shown ? shown : "");
		json_array_append_new(body, text_block(so_buf_cstr(&b), "mono"));
		so_buf_reset(&b);
		free(text);
	}

	if (!pending) {
		so_buf_printf(&b, "**%s**", status);
		json_array_foreach(json_object_get(req, "reviews"), i, v)
		    so_buf_printf(&b, "%s %s %s via %s at %s", i ? ";" : " \xE2\x80\x94",
		                  so_json_str(v, "reviewer", "?"),
		                  !strcmp(so_json_str(v, "decision", ""), "approve") ? "approved"
		                                                                     : "denied",
		                  so_json_str(v, "channel", "?"), so_json_str(v, "at", "?"));
		if (!strcmp(status, "expired"))
			so_buf_adds(&b, " \xE2\x80\x94 nobody decided in time; nothing ran");
		json_array_append_new(body, text_block(so_buf_cstr(&b),
		                                       is_failure(status) ? "Attention" : "Good"));
		so_buf_reset(&b);
	}
	so_buf_printf(&b, "request %s", id);
	json_array_append_new(body, text_block(so_buf_cstr(&b), "subtle"));
	so_buf_reset(&b);

	if (pending && buttons) {
		json_array_append_new(actions, json_pack("{s:s, s:s, s:s, s:s, s:{s:s}}", "type",
		                                         "Action.Execute", "title", "Approve", "verb",
		                                         "signoff_approve", "style", "positive", "data",
		                                         "request_id", id));
		json_array_append_new(actions, json_pack("{s:s, s:s, s:s, s:s, s:{s:s}}", "type",
		                                         "Action.Execute", "title", "Deny", "verb",
		                                         "signoff_deny", "style", "destructive", "data",
		                                         "request_id", id));
	}
	if (cfg->console_url) {
		so_buf_printf(&b, "%s#/r/%s", cfg->console_url, id);
		json_array_append_new(actions, json_pack("{s:s, s:s, s:s}", "type", "Action.OpenUrl",
		                                         "title", "Open in the console", "url",
		                                         so_buf_cstr(&b)));
	}
	so_buf_free(&b);
	return json_pack("{s:s, s:s, s:s, s:o, s:o}", "type", "AdaptiveCard", "$schema",
	                 "http://adaptivecards.io/schemas/adaptive-card.json", "version", "1.4",
	                 "body", body, "actions", actions);
}

/* The message activity that carries `card` (stolen). */
static char *
message_with(json_t *card, const char *activity_id)
{
	json_t *m = json_pack("{s:s, s:[{s:s, s:o}]}", "type", "message", "attachments",
	                      "contentType", CARD_TYPE, "content", card);
	if (m && activity_id)
		json_object_set_new(m, "id", json_string(activity_id));
	char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;
	json_decref(m);
	return text;
}

/* ---- the bot's connector token (client credentials), cached ---- */

static struct {
	pthread_mutex_t lock;
	char token[TOKEN_MAX];
	char owner[512];       /* token_url + app_id it was issued for */
	int64_t renew_at;      /* monotonic ms */
} bot_token = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void
form_add(so_buf_t *b, const char *key, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	if (b->len)
		so_buf_add(b, "&", 1);
	so_buf_adds(b, key);
	so_buf_add(b, "=", 1);
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			so_buf_add(b, p, 1);
		} else {
			char enc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
			so_buf_add(b, enc, 3);
		}
	}
}

static void
forget_token(void)
{
	pthread_mutex_lock(&bot_token.lock);
	sodium_memzero(bot_token.token, sizeof(bot_token.token));
	bot_token.renew_at = 0;
	pthread_mutex_unlock(&bot_token.lock);
}

/* "Authorization: Bearer <token>" into `auth`, fetching a token when needed; 0 on success. */
static int
authorization(const so_teams_config_t *c, char *auth, size_t authlen, so_delivery_t *d)
{
	char owner[512];
	int rc = -1;
	snprintf(owner, sizeof(owner), "%s %s", c->token_url, c->app_id);
	pthread_mutex_lock(&bot_token.lock);
	int64_t now = so_clock_mono_ms();
	if (bot_token.token[0] && now < bot_token.renew_at && !strcmp(bot_token.owner, owner)) {
		snprintf(auth, authlen, "Authorization: Bearer %s", bot_token.token);
		rc = 0;
		goto out;
	}
	so_buf_t form, resp;
	long status = 0;
	so_buf_init(&form, 16384);
	form_add(&form, "grant_type", "client_credentials");
	form_add(&form, "client_id", c->app_id);
	form_add(&form, "client_secret", c->app_password ? c->app_password : "");
	form_add(&form, "scope", TOKEN_SCOPE);
	int hrc = so_http_post(c->token_url, "application/x-www-form-urlencoded", NULL,
	                       so_buf_cstr(&form), TIMEOUT_MS, &status, &resp, &d->retry_after,
	                       d->error, sizeof(d->error));
	sodium_memzero(form.data, form.len);
	so_buf_free(&form);
	if (hrc) {
		d->retry = 1;
		so_buf_free(&resp);
		goto out;
	}
	json_error_t jerr;
	json_t *a = json_loadb(so_buf_cstr(&resp), resp.len, 0, &jerr);
	if (resp.len)
		sodium_memzero(resp.data, resp.len);
	so_buf_free(&resp);
	const char *token = json_string_value(json_object_get(a, "access_token"));
	json_int_t ttl = json_integer_value(json_object_get(a, "expires_in"));
	if (status != 200 || !token || !*token || strlen(token) >= TOKEN_MAX) {
		snprintf(d->error, sizeof(d->error), "bot token: HTTP %ld, %s", status,
		         so_json_str(a, "error", token ? "token too long" : "no access_token"));
		d->retry = status == 429 || status >= 500 || status == 0 || status == 200;
		json_decref(a);
		goto out;
	}
	snprintf(bot_token.token, sizeof(bot_token.token), "%s", token);
	snprintf(bot_token.owner, sizeof(bot_token.owner), "%s", owner);
	if (ttl <= 0)
		ttl = 3600;
	ttl = ttl > 2 * TOKEN_MARGIN_S ? ttl - TOKEN_MARGIN_S : ttl / 2;
	bot_token.renew_at = now + (int64_t)ttl * 1000;
	json_decref(a);
	snprintf(auth, authlen, "Authorization: Bearer %s", bot_token.token);
	rc = 0;
out:
	pthread_mutex_unlock(&bot_token.lock);
	return rc;
}

/* ---- delivery ---- */

static char *
escape_segment(const char *s)
{
	so_buf_t b;
	so_buf_init(&b, 4096);
	form_add(&b, "x", s);
	char *out = strdup(so_buf_cstr(&b) + 2);
	so_buf_free(&b);
	return out;
}

/* One call to the connector; on success `*answer` holds the parsed reply (caller decrefs). */
static int
connector(so_notifier_t *n, const char *method, const char *conversation, const char *activity,
          const char *body, json_t **answer, so_delivery_t *d)
{
	const so_teams_config_t *c = &n->cfg->teams;
	const char *base = c->service_url ? c->service_url : DEFAULT_SERVICE_URL;
	size_t blen = strlen(base);
	char auth[TOKEN_MAX + 64];
	long status = 0;
	so_buf_t url, resp;
	int rc = -1;
	*answer = NULL;
	while (blen && base[blen - 1] == '/')
		blen--;
	if (authorization(c, auth, sizeof(auth), d))
		return -1;
	char *conv = escape_segment(conversation), *act = activity ? escape_segment(activity) : NULL;
	so_buf_init(&url, 8192);
	so_buf_printf(&url, "%.*s/v3/conversations/%s/activities", (int)blen, base,
	              conv ? conv : "");
	if (act)
		so_buf_printf(&url, "/%s", act);
	free(conv);
	free(act);
	const char *headers[] = {auth, NULL};
	int hrc = so_http_send(method, so_buf_cstr(&url), NULL, headers, body, TIMEOUT_MS, &status,
	                       &resp, &d->retry_after, d->error, sizeof(d->error));
	sodium_memzero(auth, sizeof(auth));
	so_buf_free(&url);
	if (hrc) {
		d->retry = 1;
		goto out;
	}
	if (status == 401 || status == 403) {
		forget_token(); /* perhaps revoked: get a new one next time */
		snprintf(d->error, sizeof(d->error), "connector %s: HTTP %ld", method, status);
		d->retry = 1;
		goto out;
	}
	if (status < 200 || status > 299) {
		snprintf(d->error, sizeof(d->error), "connector %s: HTTP %ld", method, status);
		d->retry = status == 429 || status >= 500;
		goto out;
	}
	json_error_t jerr;
	*answer = json_loadb(so_buf_cstr(&resp), resp.len, 0, &jerr);
	rc = 0;
out:
	so_buf_free(&resp);
	return rc;
}

static void
webhook_card(so_notifier_t *n, const json_t *req, so_delivery_t *d)
{
	long status = 0;
	so_buf_t resp;
	char *text = message_with(so_teams_card(n->cfg, req, 0, NULL), NULL);
	if (!text) {
		snprintf(d->error, sizeof(d->error), "out of memory");
		d->retry = 1;
		return;
	}
	int rc = so_http_post(n->cfg->teams.webhook_url, NULL, NULL, text, TIMEOUT_MS, &status, &resp,
	                      &d->retry_after, d->error, sizeof(d->error));
	free(text);
	so_buf_free(&resp);
	if (rc) {
		d->retry = 1;
	} else if (status >= 200 && status <= 299) {
		d->ok = 1;
	} else {
		/* never the URL in the error: it is the secret */
		snprintf(d->error, sizeof(d->error), "Workflows webhook: HTTP %ld", status);
		d->retry = status == 429 || status >= 500;
	}
}

static void
teams_deliver(so_notifier_t *n, const so_outbox_row_t *row, const json_t *req,
              const so_message_ref_t *refs, size_t nrefs, so_delivery_t *d)
{
	json_t *answer = NULL;
	if (!strcmp(row->kind, "card")) {
		webhook_card(n, req, d);
		return;
	}
	if (!n->cfg->teams.app_id) {
		snprintf(d->error, sizeof(d->error), "no bot configured (notify.teams.app_id)");
		return;
	}
	if (!strcmp(row->kind, "post")) {
		char *text = message_with(so_teams_card(n->cfg, req, 1, NULL), NULL);
		if (text && connector(n, "POST", row->target, NULL, text, &answer, d) == 0) {
			const char *id = so_json_str(answer, "id", NULL);
			if (id) {
				d->ok = 1;
				snprintf(d->ref, sizeof(d->ref), "%s", id);
				snprintf(d->ref_target, sizeof(d->ref_target), "%s", row->target);
			} else {
				snprintf(d->error, sizeof(d->error), "connector answered without an id");
				d->retry = 1;
			}
		}
		free(text);
	} else {
		/* refresh every card sent for this request */
		d->ok = 1;
		for (size_t i = 0; i < nrefs && d->ok; i++) {
			char *text = message_with(so_teams_card(n->cfg, req, 1, NULL), refs[i].ref);
			json_decref(answer);
			answer = NULL;
			if (!text || connector(n, "PUT", refs[i].target, refs[i].ref, text, &answer, d))
				d->ok = 0;
			free(text);
		}
	}
	json_decref(answer);
}

const so_channel_ops_t so_channel_teams = {
	.name = "teams",
	.deliver = teams_deliver,
};
