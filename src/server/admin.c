/* Tokens, the audit log, whoami and metrics. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "audit/audit.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/token.h"
#include "server/internal.h"

#define AUDIT_PAGE_DEFAULT 100
#define AUDIT_PAGE_MAX 1000

struct token_op {
	char principal[128];
	char hash[65];
};

static int
op_token(so_store_t *s, struct conn *c)
{
	const char *principal = json_string_value(json_object_get(c->in, "principal"));
	int64_t now = so_clock_now_ms();
	char token[SO_TOKEN_LEN + 1], hash[65];

	so_token_new(token, hash);

	int rc = s->ops->token_insert(s, hash, principal, now);
	if (rc == SO_OK)
		rc = so_audit_append(s, "token.issued", NULL, c->caller->id,
		                     json_pack("{s:s, s:s}", "principal", principal, "token_sha256", hash),
		                     now);
	if (rc == SO_OK)
		reply_json(c, 201, json_pack("{s:s, s:s, s:s}", "token", token, "principal", principal,
		                             "token_sha256", hash));
	sodium_memzero(token, sizeof(token));
	return rc;
}

void
h_tokens(struct conn *c, struct MHD_Connection *mc)
{
	if (!is_admin(c->srv, c->caller)) {
		reply_error(c, 403, "forbidden", "only members of '%s' may issue tokens",
		            c->srv->cfg->admin_group);
		return;
	}
	if (parse_body(c))
		return;
	const char *principal = json_string_value(json_object_get(c->in, "principal"));
	if (!principal || json_object_size(c->in) != 1) {
		reply_error(c, 400, "bad_request", "the body is {\"principal\": \"<id>\"}");
		return;
	}
	if (!so_directory_find(&c->srv->cfg->directory, principal)) {
		reply_error(c, 404, "not_found", "no principal '%s' in the configuration", principal);
		return;
	}
	run_op(c, mc, op_token);
}

void
h_audit(struct conn *c, struct MHD_Connection *mc)
{
	if (!is_auditor(c->srv, c->caller)) {
		reply_error(c, 403, "forbidden", "only auditors and admins may read the audit log");
		return;
	}
	const char *after_s = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "after");
	const char *limit_s = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "limit");
	long long after = 0, limit = AUDIT_PAGE_DEFAULT;
	char *end;
	if (after_s && (after = strtoll(after_s, &end, 10), *end || end == after_s || after < 0)) {
		reply_error(c, 400, "bad_request", "after must be a sequence number >= 0");
		return;
	}
	if (limit_s && (limit = strtoll(limit_s, &end, 10), *end || end == limit_s || limit < 1)) {
		reply_error(c, 400, "bad_request", "limit must be >= 1");
		return;
	}
	if (limit > AUDIT_PAGE_MAX)
		limit = AUDIT_PAGE_MAX;
	json_t *events = NULL;
	so_store_t *s = readers_take(&c->srv->readers);
	int rc = s->ops->audit_list(s, after, (size_t)limit, &events);
	readers_give(&c->srv->readers, s);
	if (rc) {
		reply_store_err(c, rc);
		return;
	}
	size_t n = json_array_size(events);
	json_t *next = n == (size_t)limit
	                   ? json_integer(json_integer_value(
	                         json_object_get(json_array_get(events, n - 1), "seq")))
	                   : json_null();
	reply_json(c, 200, json_pack("{s:o, s:o}", "events", events, "next", next));
}

void
h_whoami(struct conn *c, struct MHD_Connection *mc)
{
	const so_principal_t *p = c->caller;
	json_t *groups = json_array();
	for (char **g = p->groups; g && *g; g++)
		json_array_append_new(groups, json_string(*g));
	reply_json(c, 200, json_pack("{s:s, s:s, s:o, s:o, s:b, s:b}", "id", p->id, "kind",
	                             so_kind_name(p->kind), "groups", groups, "owner",
	                             p->owner ? json_string(p->owner) : json_null(), "admin",
	                             is_admin(c->srv, p), "auditor", is_auditor(c->srv, p)));
}

void
h_metrics(struct conn *c, struct MHD_Connection *mc)
{
	so_buf_t out;
	so_buf_init(&out, 1 << 20);
	metrics_render(c->srv, &out);
	free(c->resp);
	c->resp = so_buf_steal(&out);
	if (!c->resp)
		c->resp = strdup("");
	c->status = 200;
	c->content_type = "text/plain; version=0.0.4";
}
