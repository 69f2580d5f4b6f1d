/*
 * Slack: Block Kit messages with Approve / Deny buttons (chat.postMessage), updated in place
 * after every change (chat.update), and ephemeral explanations of refused clicks
 * (chat.postEphemeral). The content is rendered from the request as it is at delivery.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/json.h"
#include "notify/internal.h"

#define TIMEOUT_MS 10000
#define EXCERPT_MAX 600

static json_t *
mrkdwn(const char *text)
{
	return json_pack("{s:s, s:s}", "type", "mrkdwn", "text", text);
}

static json_t *
section(const char *text)
{
	return json_pack("{s:s, s:o}", "type", "section", "text", mrkdwn(text));
}

/* The action in one line: the command, or the tool and its arguments. */
static void
describe(const json_t *action, so_buf_t *b)
{
	json_t *cmd = json_object_get(action, "command");
	if (json_is_array(cmd)) {
		so_buf_adds(b, "`");
		so_json_join_argv(cmd, b);
		so_buf_adds(b, "`");
	} else if (json_object_get(action, "tool")) {
		char *args = json_dumps(json_object_get(action, "arguments"), JSON_COMPACT);
		so_buf_printf(b, "tool `%s` with `%.300s`", so_json_str(action, "tool", "?"),
		              args ? args : "{}");
		free(args);
	} else {
		so_buf_printf(b, "a `%s` action", so_json_str(action, "kind", "?"));
	}
}

static const char *
outcome_line(const json_t *req, so_buf_t *b)
{
	const char *status = so_json_str(req, "status", "?");
	size_t i;
	json_t *rv;
	if (!strcmp(status, "pending"))
		return NULL;
	const char *icon = !strcmp(status, "denied") || !strcmp(status, "expired") ||
	                           !strcmp(status, "cancelled") || !strcmp(status, "failed")
	                       ? ":x:"
	                       : ":white_check_mark:";
	so_buf_printf(b, "%s *%s*", icon, status);
	json_array_foreach(json_object_get(req, "reviews"), i, rv)
	    so_buf_printf(b, "%s %s %s via %s at %s", i ? ";" : " —",
	                  so_json_str(rv, "reviewer", "?"),
	                  !strcmp(so_json_str(rv, "decision", ""), "approve") ? "approved"
	                                                                      : "denied",
	                  so_json_str(rv, "channel", "?"), so_json_str(rv, "at", "?"));
	if (!strcmp(status, "expired"))
		so_buf_adds(b, " — nobody decided in time; nothing ran");
	return so_buf_cstr(b);
}

/* Blocks for a request, with buttons while it is pending. */
static json_t *
blocks_for(const so_notify_config_t *cfg, const json_t *req, char *fallback, size_t flen)
{
	json_t *blocks = json_array();
	json_t *action = json_object_get(req, "action");
	json_t *decision = json_object_get(req, "decision");
	so_buf_t b;
	so_buf_init(&b, 1 << 16);

	so_buf_printf(&b, "*%s*", so_json_str(req, "requester", "?"));
	if (json_is_string(json_object_get(req, "on_behalf_of")))
		so_buf_printf(&b, " (for %s)", so_json_str(req, "on_behalf_of", "?"));
	so_buf_adds(&b, " wants to run ");
	describe(action, &b);
	const char *status = so_json_str(req, "status", "pending");
	snprintf(fallback, flen, "%s%s: %s", !strcmp(status, "pending") ? "Approval needed" : "",
	         !strcmp(status, "pending") ? "" : status, so_buf_cstr(&b));
	json_array_append_new(blocks, section(so_buf_cstr(&b)));

	so_buf_reset(&b);
	json_t *fields = json_array();
	const char *env = so_json_str(action, "environment", NULL);
	const char *res = so_json_str(action, "resource", NULL);
	if (env) {
		so_buf_printf(&b, "*Environment*\n%s", env);
		json_array_append_new(fields, mrkdwn(so_buf_cstr(&b)));
		so_buf_reset(&b);
	}
	if (res) {
		so_buf_printf(&b, "*Resource*\n%s", res);
		json_array_append_new(fields, mrkdwn(so_buf_cstr(&b)));
		so_buf_reset(&b);
	}
	so_buf_printf(&b, "*Why*\n%s", so_json_str(req, "intent", "(no reason given)"));
	json_array_append_new(fields, mrkdwn(so_buf_cstr(&b)));
	so_buf_reset(&b);
	so_buf_printf(&b, "*Expires*\n%s", so_json_str(req, "expires_at", "?"));
	json_array_append_new(fields, mrkdwn(so_buf_cstr(&b)));
	so_buf_reset(&b);
	json_array_append_new(blocks, json_pack("{s:s, s:o}", "type", "section", "fields", fields));

	size_t i;
	json_t *rule, *q;
	json_array_foreach(json_object_get(decision, "rules"), i, rule)
	    so_buf_printf(&b, "%s*%s*: %s", i ? "\n" : "Rule ", so_json_str(rule, "name", "?"),
	                  so_json_str(rule, "reason", ""));
	json_array_foreach(json_object_get(decision, "requirements"), i, q) {
		size_t done = json_array_size(json_object_get(q, "approved_by"));
		json_t *esc = json_object_get(q, "escalation");
		so_buf_printf(&b, "\nNeeds %lld of %s (approved: %zu)",
		              (long long)json_integer_value(json_object_get(q, "count")),
		              so_json_str(q, "group", "the named people"), done);
		if (json_is_true(json_object_get(esc, "escalated")))
			so_buf_printf(&b, " — escalated: %s may approve too",
			              so_json_str(esc, "to_group", "?"));
	}
	json_t *reasons = json_object_get(json_object_get(req, "anomaly"), "reasons");
	json_t *why;
	json_array_foreach(reasons, i, why) so_buf_printf(&b, "\n:warning: %s", json_string_value(why));
	if (b.len)
		json_array_append_new(blocks, section(so_buf_cstr(&b)));
	so_buf_reset(&b);

	json_t *context = json_object_get(req, "context");
	const char *key;
	json_t *v;
	json_object_foreach(context, key, v) {
		char *text = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT);
		const char *shown = text ? text : json_string_value(v);
		if (!strcmp(key, "diff"))
			so_buf_printf(&b, "*diff*\n```%.*s```\n", EXCERPT_MAX, shown ? shown : "");
		else
			so_buf_printf(&b, "*%s*: %.*s\n", key, EXCERPT_MAX, shown ? shown : "");
		free(text);
	}
	if (b.len)
		json_array_append_new(blocks, section(so_buf_cstr(&b)));
	so_buf_reset(&b);

	const char *done = outcome_line(req, &b);
	if (done) {
		json_array_append_new(blocks, section(done));
	} else {
		const char *id = so_json_str(req, "id", "");
		json_t *actions = json_pack(
		    "{s:s, s:s, s:[{s:s, s:s, s:{s:s, s:s}, s:s, s:s}, "
		    "{s:s, s:s, s:{s:s, s:s}, s:s, s:s}, {s:s, s:s, s:{s:s, s:s}, s:s}]}",
		    "type", "actions", "block_id", "signoff", "elements", "type", "button", "action_id",
		    "signoff_approve", "text", "type", "plain_text", "text", "Approve", "style", "primary",
		    "value", id, "type", "button", "action_id", "signoff_deny", "text", "type",
		    "plain_text", "text", "Deny", "style", "danger", "value", id, "type", "button",
		    "action_id", "signoff_deny_reason", "text", "type", "plain_text", "text",
		    "Deny with a reason…", "value", id);
		/* A sign-in link is personal: the click asks for one, sent only to the clicker. */
		if (cfg->console_url && actions)
			json_array_append_new(json_object_get(actions, "elements"),
			                      json_pack("{s:s, s:s, s:{s:s, s:s}, s:s}", "type", "button",
			                                "action_id", "signoff_console", "text", "type",
			                                "plain_text", "text", "Open in the console",
			                                "value", id));
		json_array_append_new(blocks, actions);
	}
	so_buf_reset(&b);
	so_buf_printf(&b, "request `%s`", so_json_str(req, "id", "?"));
	if (cfg->console_url)
		so_buf_printf(&b, " · <%s#/r/%s|open in the console>", cfg->console_url,
		              so_json_str(req, "id", ""));
	json_array_append_new(blocks, json_pack("{s:s, s:[o]}", "type", "context", "elements",
	                                        mrkdwn(so_buf_cstr(&b))));
	so_buf_free(&b);
	return blocks;
}

/* Slack errors worth trying again. */
static int
transient(const char *error)
{
	static const char *const again[] = {"ratelimited", "internal_error", "service_unavailable",
	                                    "request_timeout", "fatal_error", NULL};
	for (int i = 0; again[i]; i++)
		if (!strcmp(error, again[i]))
			return 1;
	return 0;
}

/* One Web API call; on success `*answer` holds the parsed reply (caller decrefs). */
static int
call(so_notifier_t *n, const char *method, json_t *body, json_t **answer, so_delivery_t *d)
{
	const so_slack_config_t *c = &n->cfg->slack;
	char url[2048], auth[4200];
	long status = 0;
	so_buf_t resp;
	snprintf(url, sizeof(url), "%s/%s", c->api_url, method);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->bot_token);
	const char *headers[] = {auth, NULL};
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	*answer = NULL;
	if (!text) {
		snprintf(d->error, sizeof(d->error), "out of memory");
		d->retry = 1;
		return -1;
	}
	int rc = so_http_post(url, NULL, headers, text, TIMEOUT_MS, &status, &resp, &d->retry_after,
	                      d->error, sizeof(d->error));
	free(text);
	memset(auth, 0, sizeof(auth));
	if (rc) {
		d->retry = 1;
		so_buf_free(&resp);
		return -1;
	}
	if (status == 429 || status >= 500) {
		snprintf(d->error, sizeof(d->error), "%s: HTTP %ld", method, status);
		d->retry = 1;
		so_buf_free(&resp);
		return -1;
	}
	json_error_t jerr;
	json_t *a = json_loadb(so_buf_cstr(&resp), resp.len, 0, &jerr);
	so_buf_free(&resp);
	if (!json_is_true(json_object_get(a, "ok"))) {
		const char *e = so_json_str(a, "error", "unexpected answer");
		snprintf(d->error, sizeof(d->error), "%s: %s (HTTP %ld)", method, e, status);
		d->retry = !a || transient(e);
		json_decref(a);
		return -1;
	}
	*answer = a;
	return 0;
}

static void
slack_deliver(so_notifier_t *n, const so_outbox_row_t *row, const json_t *req,
              const so_message_ref_t *refs, size_t nrefs, so_delivery_t *d)
{
	char fallback[512];
	json_t *answer = NULL;
	if (!strcmp(row->kind, "modal")) {
		/* the deny-reason form, opened on the clicker's screen (trigger ids live 3 seconds) */
		json_error_t jerr;
		json_t *b = json_loads(row->body, 0, &jerr);
		const char *rid = so_json_str(b, "request_id", "");
		json_t *view = json_pack(
		    "{s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:s}, "
		    "s:[{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:b, s:i}}]}",
		    "type", "modal", "callback_id", "signoff_deny", "private_metadata", rid, "title", "type",
		    "plain_text", "text", "Deny request", "submit", "type", "plain_text", "text", "Deny",
		    "close", "type", "plain_text", "text", "Cancel", "blocks", "type", "input", "block_id",
		    "reason", "label", "type", "plain_text", "text", "Why?", "element", "type",
		    "plain_text_input", "action_id", "reason", "multiline", 1, "max_length", 2000);
		json_t *body = json_pack("{s:s, s:o}", "trigger_id", row->target, "view", view);
		json_decref(b);
		if (call(n, "views.open", body, &answer, d) == 0)
			d->ok = 1;
		json_decref(answer);
		return;
	}
	if (!strcmp(row->kind, "ephemeral")) {
		json_error_t jerr;
		json_t *b = json_loads(row->body, 0, &jerr);
		const char *sealed = so_json_str(b, "sealed", NULL);
		char opened[2048 + 1];
		const char *text = so_json_str(b, "text", "");
		if (sealed) {
			text = so_notify_unseal(n, sealed, opened, sizeof(opened)) == SO_OK
			           ? opened
			           : "That sign-in link was lost when signoff restarted. Click *Open in the "
			             "console* again for a new one.";
		}
		json_t *body = json_pack("{s:s, s:s, s:s}", "channel", row->target,
		                         "user", so_json_str(b, "user", ""), "text", text);
		sodium_memzero(opened, sizeof(opened));
		json_decref(b);
		if (call(n, "chat.postEphemeral", body, &answer, d) == 0)
			d->ok = 1;
		json_decref(answer);
		return;
	}
	json_t *blocks = blocks_for(n->cfg, req, fallback, sizeof(fallback));
	if (!strcmp(row->kind, "post")) {
		json_t *body = json_pack("{s:s, s:s, s:O}", "channel", row->target, "text", fallback,
		                         "blocks", blocks);
		if (call(n, "chat.postMessage", body, &answer, d) == 0) {
			d->ok = 1;
			snprintf(d->ref, sizeof(d->ref), "%s", so_json_str(answer, "ts", ""));
			snprintf(d->ref_target, sizeof(d->ref_target), "%s",
			         so_json_str(answer, "channel", row->target));
		}
	} else {
		/* update every message sent for this request */
		d->ok = 1;
		for (size_t i = 0; i < nrefs && d->ok; i++) {
			json_t *body = json_pack("{s:s, s:s, s:s, s:O}", "channel", refs[i].target, "ts",
			                         refs[i].ref, "text", fallback, "blocks", blocks);
			json_decref(answer);
			answer = NULL;
			if (call(n, "chat.update", body, &answer, d))
				d->ok = 0;
		}
	}
	json_decref(answer);
	json_decref(blocks);
}

const so_channel_ops_t so_channel_slack = {
	.name = "slack",
	.deliver = slack_deliver,
};

const char *
so_slack_verify(const char *secret, const char *timestamp, const char *body, size_t len,
                const char *signature, int64_t now)
{
	char *end;
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	char want[3 + 2 * sizeof(mac) + 1];
	crypto_auth_hmacsha256_state st;
	if (!secret || !timestamp || !signature)
		return "missing X-Slack-Request-Timestamp or X-Slack-Signature";
	long long ts = strtoll(timestamp, &end, 10);
	if (*end || end == timestamp)
		return "malformed timestamp";
	if (ts < now - 300 || ts > now + 300)
		return "timestamp more than 5 minutes away";
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)"v0:", 3);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)timestamp, strlen(timestamp));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)":", 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
	crypto_auth_hmacsha256_final(&st, mac);
	memcpy(want, "v0=", 3);
	sodium_bin2hex(want + 3, sizeof(want) - 3, mac, sizeof(mac));
	if (strlen(signature) != strlen(want) ||
	    sodium_memcmp(signature, want, strlen(want)) != 0)
		return "bad signature";
	return NULL;
}
