/*
 * GET /v1/requests/{id}/explain: the whole story of one request in plain language, told from
 * its audit events, with the signed checkpoint that covers them.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/error.h"
#include "server/internal.h"

#define STORY_MAX_EVENTS 1000

struct story {
	so_server_t *srv;
	json_t *events; /* the events, as the audit API shows them */
	json_t *lines;  /* sentences */
	int64_t last_seq;
};

static void
say(struct story *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
say(struct story *st, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	json_array_append_new(st->lines, json_string(line));
}

/* "kubectl rollout restart deploy/api" or "tool github.create_pr" */
static void
describe_action(const json_t *action, so_buf_t *b)
{
	json_t *cmd = json_object_get(action, "command");
	if (json_is_array(cmd)) {
		so_buf_adds(b, "run `");
		so_json_join_argv(cmd, b);
		so_buf_adds(b, "`");
	} else if (json_is_string(json_object_get(action, "tool"))) {
		so_buf_printf(b, "call the tool %s", so_json_str(action, "tool", "?"));
	} else {
		so_buf_printf(b, "perform a %s action", so_json_str(action, "kind", "?"));
	}
	if (json_object_get(action, "environment"))
		so_buf_printf(b, " in %s", so_json_str(action, "environment", "?"));
	if (json_object_get(action, "resource"))
		so_buf_printf(b, " on %s", so_json_str(action, "resource", "?"));
}

static void
tell_submitted(struct story *st, const char *at, const json_t *req)
{
	const so_directory_t *dir = &st->srv->cfg->directory;
	const char *who = so_json_str(req, "requester", "?");
	const so_principal_t *p = so_directory_find(dir, who);
	so_buf_t b;
	so_buf_init(&b, 1 << 16);
	describe_action(json_object_get(req, "action"), &b);
	const char *obo = so_json_str(req, "on_behalf_of", NULL);
	say(st, "%s: %s (%s%s%s) asked to %s%s%s.", at, who, p ? so_kind_name(p->kind) : "unknown",
	    p && p->owner ? ", owned by " : "", p && p->owner ? p->owner : "", so_buf_cstr(&b),
	    obo ? ", on behalf of " : "", obo ? obo : "");
	so_buf_free(&b);
	const char *intent = so_json_str(req, "intent", NULL);
	say(st, "Why, in its words: %s", intent ? intent : "(it did not say)");
	json_t *decision = json_object_get(req, "decision");
	size_t i;
	json_t *rule;
	say(st, "Policy %s decided: %s.", so_json_str(decision, "policy_version", "?"),
	    so_json_str(decision, "outcome", "?"));
	json_array_foreach(json_object_get(decision, "rules"), i, rule)
	    say(st, "  rule %s (%s): %s%s%s", so_json_str(rule, "name", "?"),
	        so_json_str(rule, "decide", "?"),
	        so_json_str(rule, "reason", ""), json_object_get(rule, "why") ? " — " : "",
	        so_json_str(rule, "why", ""));
	json_t *q;
	json_array_foreach(json_object_get(decision, "requirements"), i, q) {
		const char *g = so_json_str(q, "group", NULL);
		say(st, "  it needs %" JSON_INTEGER_FORMAT " approval(s) from %s%s.",
		    json_integer_value(json_object_get(q, "count")), g ? "group " : "the named principals",
		    g ? g : "");
	}
	json_t *route = json_object_get(decision, "route");
	if (json_array_size(route)) {
		char *r = json_dumps(route, JSON_COMPACT);
		say(st, "  the review was to be delivered to %s.", r ? r : "?");
		free(r);
	}
}

static int
tell_event(void *ctx, const so_audit_row_t *row)
{
	struct story *st = ctx;
	char at[40];
	json_error_t jerr;
	so_clock_format(row->at, at, sizeof(at));
	json_t *data = json_loads(row->data, 0, &jerr);
	const char *actor = row->actor ? row->actor : "signoff";
	const char *t = row->type;

	if (json_array_size(st->events) >= STORY_MAX_EVENTS) {
		json_decref(data);
		return 1;
	}
	json_array_append_new(st->events,
	                      json_pack("{s:I, s:s, s:s, s:s, s:s}", "seq", (json_int_t)row->seq, "at",
	                                at, "type", t, "actor", actor, "hash", row->hash));
	st->last_seq = row->seq;
	if (!strcmp(t, "request.submitted"))
		tell_submitted(st, at, data);
	else if (!strcmp(t, "request.reviewed")) {
		const char *comment = so_json_str(data, "comment", "");
		say(st, "%s: %s %s through %s%s%s%s; the request was then %s.", at, actor,
		    !strcmp(so_json_str(data, "decision", ""), "approve") ? "approved" : "denied",
		    so_json_str(data, "channel", "?"), *comment ? " (\"" : "", comment,
		    *comment ? "\")" : "", so_json_str(data, "status", "?"));
	} else if (!strcmp(t, "request.escalated")) {
		char *groups = json_dumps(json_object_get(data, "groups"), JSON_COMPACT);
		say(st, "%s: nobody had decided in time, so the review was opened to more approvers: "
		        "group(s) %s.", at, groups ? groups : "?");
		free(groups);
	}
	else if (!strcmp(t, "request.claimed"))
		say(st, "%s: %s claimed the approval for the exact action with digest %.16s... and "
		        "started it.", at, actor, so_json_str(data, "digest", "?"));
	else if (!strcmp(t, "request.result"))
		say(st, "%s: it finished with exit code %" JSON_INTEGER_FORMAT " (%s).", at,
		    json_integer_value(json_object_get(data, "exit_code")),
		    so_json_str(data, "status", "?"));
	else if (!strcmp(t, "request.cancelled"))
		say(st, "%s: %s cancelled the request%s%s.", at, actor,
		    *so_json_str(data, "reason", "") ? ": " : "", so_json_str(data, "reason", ""));
	else if (!strcmp(t, "request.expired"))
		say(st, "%s: time ran out while it was %s, so it expired; nothing ran.", at,
		    so_json_str(data, "from", "?"));
	else if (!strcmp(t, "notify.delivered")) {
		const char *kind = so_json_str(data, "kind", "notice");
		say(st, "%s: the %s %s reached %s.", at, so_json_str(data, "channel", "?"),
		    !strcmp(kind, "post") ? "message" : kind, so_json_str(data, "target", "?"));
	} else if (!strcmp(t, "notify.failed"))
		say(st, "%s: the %s %s to %s could not be delivered (%s).", at,
		    so_json_str(data, "channel", "?"), so_json_str(data, "kind", "notice"),
		    so_json_str(data, "target", "?"), so_json_str(data, "error", "?"));
	else if (!strcmp(t, "review.refused"))
		say(st, "%s: a review by %s through %s was refused: %s.", at,
		    row->actor ? row->actor : so_json_str(data, "chat_user", "someone"),
		    so_json_str(data, "channel", "?"), so_json_str(data, "reason", "?"));
	else
		say(st, "%s: %s (%s).", at, t, actor);
	json_decref(data);
	return SO_OK;
}

void
h_explain(struct conn *c, struct MHD_Connection *mc)
{
	struct story st = {.srv = c->srv, .events = json_array(), .lines = json_array()};
	so_request_t *r = NULL;
	so_checkpoint_row_t cp;
	json_t *checkpoint = json_null();
	so_store_t *s = readers_take(&c->srv->readers);
	int rc = s->ops->request_get(s, c->id, &r);
	if (rc == SO_OK && !so_core_may_view(r, c->caller, c->srv->cfg->admin_group,
	                                     c->srv->cfg->auditor_group))
		rc = SO_ENOTFOUND;
	if (rc == SO_OK)
		rc = s->ops->audit_for_request(s, c->id, tell_event, &st);
	if (rc == 1)
		rc = SO_OK;
	if (rc == SO_OK && st.last_seq) {
		int crc = s->ops->checkpoint_get(s, st.last_seq, 1, &cp);
		if (crc == SO_OK) {
			char at[40];
			so_clock_format(cp.at, at, sizeof(at));
			say(&st, "These %zu events are covered by checkpoint %" PRId64 " (root %.16s...), "
			         "signed at %s with key %s.", json_array_size(st.events), cp.size, cp.root, at,
			    cp.key_id);
			checkpoint = json_pack("{s:I, s:s, s:s, s:s, s:s}", "size", (json_int_t)cp.size,
			                       "root", cp.root, "at", at, "key_id", cp.key_id, "signature",
			                       cp.signature);
		} else if (crc == SO_ENOTFOUND) {
			say(&st, "The last of these events is not yet under a signed checkpoint; one is "
			         "signed within audit.checkpoint_interval.");
		} else {
			rc = crc;
		}
	}
	readers_give(&c->srv->readers, s);
	if (rc) {
		reply_store_err(c, rc);
		json_decref(st.events);
		json_decref(st.lines);
		json_decref(checkpoint);
	} else {
		reply_json(c, 200, json_pack("{s:o, s:o, s:o, s:o}", "request",
		                             so_request_to_json(&c->srv->cfg->directory, r), "story",
		                             st.lines, "events", st.events, "checkpoint", checkpoint));
	}
	so_request_free(r);
}
