/*
 * POST /v1/integrations/slack/interactions: Slack's button clicks. The request is proven by
 * its signature (signing secret, timestamp within 5 minutes, never the same signature
 * twice); the clicker becomes a principal only through a configured slack_user; the review
 * then goes through exactly the path the API uses, so every invariant holds. Slack gets an
 * empty 200 at once; refusals are explained with an ephemeral message and audited.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "server/internal.h"

#define REPLAY_WINDOW_S 600

/*
 * Whether `sig` was used in the last 10 minutes (and remember it either way), in the store,
 * so a click accepted by one node is a replay on every other. SO_ESTORE when the store
 * cannot say.
 */
static int
seen_before(so_server_t *srv, const char *sig, int64_t now, int *seen)
{
	so_store_t *s = readers_take(&srv->readers);
	int rc = s->ops->signature_seen(s, sig, now * 1000, (now + REPLAY_WINDOW_S) * 1000, seen);
	readers_give(&srv->readers, s);
	return rc;
}

/* The value of `key` in an application/x-www-form-urlencoded body, decoded (malloc'd). */
static char *
form_value(const char *body, size_t len, const char *key)
{
	size_t klen = strlen(key);
	const char *p = body, *end = body + len;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		if ((size_t)(stop - p) > klen && !memcmp(p, key, klen) && p[klen] == '=') {
			const char *v = p + klen + 1;
			char *out = malloc((size_t)(stop - v) + 1), *o = out;
			if (!out)
				return NULL;
			for (; v < stop; v++) {
				if (*v == '+') {
					*o++ = ' ';
				} else if (*v == '%' && stop - v > 2 && so_hex_digit(v[1]) >= 0 && so_hex_digit(v[2]) >= 0) {
					*o++ = (char)(so_hex_digit(v[1]) * 16 + so_hex_digit(v[2]));
					v += 2;
				} else {
					*o++ = *v;
				}
			}
			*o = '\0';
			return out;
		}
		p = stop + 1;
	}
	return NULL;
}

/* A click by a Slack user no principal claims: audited, explained, refused. */
static int
op_refuse_unmapped(so_store_t *s, struct conn *c)
{
	static const char reason[] = "your Slack account is not mapped to a signoff reviewer "
	                             "(slack_user in the configuration)";
	int64_t now = so_clock_now_ms();
	int rc = so_audit_append(s, "review.refused", c->id, NULL,
	                         json_pack("{s:s, s:s, s:s, s:s}", "channel", "slack", "chat_user",
	                                   c->chat_user, "code", "unknown_chat_user", "reason",
	                                   reason),
	                         now);
	if (!rc)
		rc = so_notify_ephemeral(c->srv->notifier, s, "slack", c->chat_where, c->chat_user, reason,
		                       now);
	reply_error(c, 403, "unknown_chat_user", "%s", reason);
	return rc;
}

/*
 * "Open in the console": a one-time sign-in link for the clicker, sent to them alone. It is
 * audited first; the message goes out through the outbox like every other.
 */
static int
op_console_link(so_store_t *s, struct conn *c)
{
	const so_notify_config_t *cfg = so_notifier_config(c->srv->notifier);
	int64_t now = so_clock_now_ms();
	char token[65], text[1024];
	int rc;

	reply_json(c, 200, json_object());
	if ((rc = session_link_new(s, c->caller, token)))
		return rc;
	rc = so_audit_append(s, "session.link_issued", c->id, c->caller->id,
	                     json_pack("{s:s, s:I}", "channel", "slack", "ttl_seconds",
	                               (json_int_t)(SO_LINK_TTL_MS / 1000)),
	                     now);
	if (rc == SO_OK) {
		snprintf(text, sizeof(text), "<%s#/link/%s/%s|Open `%s` in the console>: this link "
		         "signs you in once, within %lld minutes, and only you can see it.",
		         cfg->console_url, token, c->id, c->id, SO_LINK_TTL_MS / 60000);
		rc = so_notify_ephemeral_sealed(c->srv->notifier, s, c->chat_where, c->chat_user, text,
		                                now);
	}
	sodium_memzero(token, sizeof(token));
	sodium_memzero(text, sizeof(text));
	return rc;
}

/* "Deny with a reason…": open the form; the deny itself comes with its submission. */
static int
op_open_deny_form(so_store_t *s, struct conn *c)
{
	reply_json(c, 200, json_object());
	return so_notify_deny_form(c->srv->notifier, s, c->chat_trigger, c->id, so_clock_now_ms());
}

void
h_slack_interactions(struct conn *c, struct MHD_Connection *mc)
{
	so_server_t *srv = c->srv;
	const so_notify_config_t *cfg = srv->notifier ? so_notifier_config(srv->notifier) : NULL;
	char perr[256];
	if (!cfg || !cfg->slack.enabled) {
		reply_error(c, 404, "not_found", "Slack is not configured");
		return;
	}
	const char *ts = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "X-Slack-Request-Timestamp");
	const char *sig = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "X-Slack-Signature");
	int64_t now = so_clock_now_ms() / 1000;
	const char *why = so_slack_verify(cfg->slack.signing_secret, ts, so_buf_cstr(&c->body),
	                                  c->body.len, sig, now);
	if (why) {
		so_warn("slack: refused an interaction: %s", why);
		reply_error(c, 401, "unauthorized", "Slack signature: %s", why);
		return;
	}
	int seen = 1;
	if (seen_before(srv, sig, now, &seen)) {
		reply_error(c, 503, "unavailable", "cannot check the Slack signature for replay now");
		return;
	}
	if (seen) {
		so_warn("slack: refused a replayed interaction");
		reply_error(c, 401, "unauthorized", "Slack signature: seen before (replay)");
		return;
	}
	/* From here on Slack gets an empty 200 whatever happens; people get ephemeral replies. */
	c->chat_reply_empty = 1;
	char *payload = form_value(so_buf_cstr(&c->body), c->body.len, "payload");
	json_t *p = NULL;
	if (payload)
		so_json_parse(payload, strlen(payload), &srv->limits, &p, perr, sizeof(perr));
	free(payload);
	json_t *action = json_array_get(json_object_get(p, "actions"), 0);
	const char *user = json_string_value(json_object_get(json_object_get(p, "user"), "id"));
	const char *action_id = json_string_value(json_object_get(action, "action_id"));
	const char *request_id = json_string_value(json_object_get(action, "value"));
	const char *comment = "";
	json_t *view = json_object_get(p, "view");
	const char *type = json_string_value(json_object_get(p, "type"));
	const char *callback = json_string_value(json_object_get(view, "callback_id"));
	if (type && !strcmp(type, "view_submission") && callback && !strcmp(callback, "signoff_deny")) {
		/* the deny-reason form was sent: a deny with that comment */
		action_id = "signoff_deny";
		request_id = json_string_value(json_object_get(view, "private_metadata"));
		comment = json_string_value(json_object_get(json_object_get(
		    json_object_get(json_object_get(json_object_get(view, "state"), "values"), "reason"),
		    "reason"), "value"));
		if (!comment)
			comment = "";
	}
	const char *where = json_string_value(json_object_get(json_object_get(p, "container"),
	                                                      "channel_id"));
	if (!where)
		where = json_string_value(json_object_get(json_object_get(p, "channel"), "id"));
	if (!p || !user || !action_id || !request_id || strlen(request_id) > SO_ID_LEN ||
	    strlen(comment) > 4096 ||
	    (strcmp(action_id, "signoff_approve") && strcmp(action_id, "signoff_deny") &&
	     strcmp(action_id, "signoff_deny_reason") && strcmp(action_id, "signoff_console"))) {
		json_decref(p);
		reply_error(c, 400, "bad_request", "not a signoff button click");
		return;
	}
	snprintf(c->chat_user, sizeof(c->chat_user), "%s", user);
	snprintf(c->chat_where, sizeof(c->chat_where), "%s", where ? where : user);
	snprintf(c->id, sizeof(c->id), "%s", request_id);
	c->channel = "slack";
	/* The clicker is whoever the configuration says this Slack user is: nothing else. */
	const so_principal_t *who = NULL;
	for (size_t i = 0; i < srv->cfg->directory.n; i++) {
		const so_principal_t *q = &srv->cfg->directory.items[i];
		if (q->slack_user && !strcmp(q->slack_user, user))
			who = q;
	}
	/* Everything read from the payload is copied or decided before it is released below. */
	int approve = !strcmp(action_id, "signoff_approve");
	int form = !strcmp(action_id, "signoff_deny_reason");
	int console = !strcmp(action_id, "signoff_console");
	const char *trigger = json_string_value(json_object_get(p, "trigger_id"));
	snprintf(c->chat_trigger, sizeof(c->chat_trigger), "%s", trigger ? trigger : "");
	char reason[4097];
	snprintf(reason, sizeof(reason), "%s", comment);
	json_decref(p);
	if (!who) {
		so_warn("slack: click by unmapped Slack user %s on %s", c->chat_user, c->id);
		c->caller = NULL;
		run_op(c, mc, op_refuse_unmapped);
		return;
	}
	c->caller = who;
	if (console) {
		if (!cfg->console_url || who->kind != SO_KIND_HUMAN) {
			reply_error(c, 400, "bad_request", "no console to open");
			return;
		}
		run_op(c, mc, op_console_link);
		return;
	}
	if (form) {
		if (!c->chat_trigger[0]) {
			reply_error(c, 400, "bad_request", "no trigger_id to open the form with");
			return;
		}
		run_op(c, mc, op_open_deny_form);
		return;
	}
	json_decref(c->in);
	c->in = json_pack("{s:s, s:s}", "decision", approve ? "approve" : "deny", "comment", reason);
	review_request(c, mc);
}
