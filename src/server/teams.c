/*
 * POST /v1/integrations/teams/messages: the bot's messaging endpoint. Every activity is
 * proven by its Bot Framework bearer token (RS256 with a key from the configured OpenID
 * metadata, issuer, audience = our app id, expiry, serviceUrl); the clicker of an Adaptive
 * Card button (an adaptiveCard/action invoke) becomes a principal only through a configured
 * teams_user; the review then goes through exactly the path the API uses. The invoke is
 * answered with the refreshed card: the outcome, or why the click was refused.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "notify/jwt.h"
#include "server/internal.h"

#define CARD_TYPE "application/vnd.microsoft.card.adaptive"
#define ERROR_TYPE "application/vnd.microsoft.error"

static so_jwks_t *
signing_keys(so_server_t *srv, const so_teams_config_t *cfg)
{
	/* made on first use; the server frees it */
	static pthread_mutex_t once = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&once);
	if (!srv->teams_keys)
		srv->teams_keys = so_jwks_new(cfg->openid_metadata_url);
	pthread_mutex_unlock(&once);
	return srv->teams_keys;
}

void
teams_free(so_server_t *srv)
{
	so_jwks_free(srv->teams_keys);
	srv->teams_keys = NULL;
}

/* A click by a Teams user no principal claims: audited, refused, explained on the card. */
static int
op_refuse_unmapped(so_store_t *s, struct conn *c)
{
	static const char reason[] = "your Microsoft Teams account is not mapped to a signoff "
	                             "reviewer (teams_user in the configuration)";
	int rc = so_audit_append(s, "review.refused", c->id, NULL,
	                         json_pack("{s:s, s:s, s:s, s:s}", "channel", "teams", "chat_user",
	                                   c->chat_user, "code", "unknown_chat_user", "reason",
	                                   reason),
	                         so_clock_now_ms());
	reply_error(c, 403, "unknown_chat_user", "%s", reason);
	return rc;
}

static void
reply_empty(struct conn *c)
{
	free(c->resp);
	c->resp = strdup("");
	c->status = 200;
	c->content_type = "text/plain";
}

/* The request c->id as the API shows it now, or NULL. */
static json_t *
load_request(struct conn *c)
{
	so_request_t *r = NULL;
	json_t *view = NULL;
	so_store_t *s = readers_take(&c->srv->readers);
	if (s->ops->request_get(s, c->id, &r) == SO_OK) {
		view = so_request_to_json(&c->srv->cfg->directory, r);
		so_request_free(r);
	}
	readers_give(&c->srv->readers, s);
	return view;
}

void
teams_invoke_reply(struct conn *c)
{
	const so_notify_config_t *cfg = so_notifier_config(c->srv->notifier);
	json_error_t jerr;
	json_t *answer = NULL, *req = NULL;
	json_t *said = c->resp ? json_loads(c->resp, 0, &jerr) : NULL;
	json_t *error = json_object_get(said, "error");
	char note[600] = "";
	if (c->status == 200 && json_is_string(json_object_get(said, "status"))) {
		req = json_incref(said);
	} else {
		const char *msg = json_string_value(json_object_get(error, "message"));
		snprintf(note, sizeof(note), "Not recorded: %s", msg ? msg : "the review failed");
		req = load_request(c);
	}
	if (req) {
		answer = json_pack("{s:i, s:s, s:o}", "statusCode", 200, "type", CARD_TYPE, "value",
		                   so_teams_card(cfg, req, 1, note[0] ? note : NULL));
	} else {
		const char *code = json_string_value(json_object_get(error, "code"));
		answer = json_pack("{s:i, s:s, s:{s:s, s:s}}", "statusCode",
		                   c->status >= 400 && c->status < 600 ? (int)c->status : 500, "type",
		                   ERROR_TYPE, "value", "code", code ? code : "internal", "message",
		                   note[0] ? note : "the review failed");
	}
	json_decref(req);
	json_decref(said);
	reply_json(c, 200, answer);
}

void
h_teams_messages(struct conn *c, struct MHD_Connection *mc)
{
	so_server_t *srv = c->srv;
	const so_notify_config_t *cfg = srv->notifier ? so_notifier_config(srv->notifier) : NULL;
	char perr[256];
	json_t *a = NULL;
	if (!cfg || !cfg->teams.enabled || !cfg->teams.app_id) {
		reply_error(c, 404, "not_found", "no Microsoft Teams bot is configured");
		return;
	}
	const char *header = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Authorization");
	if (!header || strncasecmp(header, "Bearer ", 7)) {
		reply_error(c, 401, "unauthorized", "a Bot Framework bearer token is required");
		return;
	}
	if (!c->body.len || so_json_parse(so_buf_cstr(&c->body), c->body.len, &srv->limits, &a,
	                                  perr, sizeof(perr)) ||
	    !json_is_object(a)) {
		json_decref(a);
		reply_error(c, 400, "bad_request", "not a Bot Framework activity");
		return;
	}
	const char *service_url = json_string_value(json_object_get(a, "serviceUrl"));
	so_jwt_expect_t want = {
		.issuer = SO_BOTFRAMEWORK_ISSUER,
		.audience = cfg->teams.app_id,
		.service_url = service_url ? service_url : "",
		.now = so_clock_now_ms() / 1000,
	};
	so_jwks_t *keys = signing_keys(srv, &cfg->teams);
	const char *why = keys ? so_jwt_verify(header + 7, so_jwks_lookup, keys, &want, NULL)
	                       : "out of memory";
	if (why) {
		so_warn("teams: refused an activity: %s", why);
		json_decref(a);
		reply_error(c, 401, "unauthorized", "Bot Framework token: %s", why);
		return;
	}
	const char *type = json_string_value(json_object_get(a, "type"));
	const char *name = json_string_value(json_object_get(a, "name"));
	if (!type || strcmp(type, "invoke") || !name || strcmp(name, "adaptiveCard/action")) {
		/* messages, conversation updates, installs: nothing to do */
		json_decref(a);
		reply_empty(c);
		return;
	}
	json_t *action = json_object_get(json_object_get(a, "value"), "action");
	const char *verb = json_string_value(json_object_get(action, "verb"));
	const char *request_id =
	    json_string_value(json_object_get(json_object_get(action, "data"), "request_id"));
	json_t *from = json_object_get(a, "from");
	const char *user = json_string_value(json_object_get(from, "aadObjectId"));
	const char *where =
	    json_string_value(json_object_get(json_object_get(a, "conversation"), "id"));
	if (!verb || !request_id || !*request_id || strlen(request_id) > SO_ID_LEN ||
	    (strcmp(verb, "signoff_approve") && strcmp(verb, "signoff_deny"))) {
		json_decref(a);
		reply_json(c, 200, json_pack("{s:i, s:s, s:{s:s, s:s}}", "statusCode", 400, "type",
		                             ERROR_TYPE, "value", "code", "BadRequest", "message",
		                             "not a signoff button"));
		return;
	}
	snprintf(c->id, sizeof(c->id), "%s", request_id);
	snprintf(c->chat_user, sizeof(c->chat_user), "%s", user ? user : "(no aadObjectId)");
	snprintf(c->chat_where, sizeof(c->chat_where), "%s", where ? where : "");
	c->channel = "teams";
	c->teams_invoke = 1;
	int approve = !strcmp(verb, "signoff_approve");
	/* The clicker is whoever the configuration says this Entra ID object is: nothing else. */
	const so_principal_t *who = NULL;
	for (size_t i = 0; user && i < srv->cfg->directory.n; i++) {
		const so_principal_t *q = &srv->cfg->directory.items[i];
		if (q->teams_user && !strcasecmp(q->teams_user, user))
			who = q;
	}
	json_decref(a);
	if (!who) {
		so_warn("teams: click by unmapped Teams user %s on %s", c->chat_user, c->id);
		c->caller = NULL;
		run_op(c, mc, op_refuse_unmapped);
		return;
	}
	c->caller = who;
	json_decref(c->in);
	c->in = json_pack("{s:s, s:s}", "decision", approve ? "approve" : "deny", "comment", "");
	review_request(c, mc);
}
