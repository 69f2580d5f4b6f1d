#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/error.h"
#include "common/log.h"
#include "common/yaml.h"
#include "daemon/config.h"

static const char *const outcome_choices[] = {"allow", "review", "deny", NULL};

#define MAX_PRINCIPALS 10000
#define MAX_REQUIREMENTS 16

static int
is_hex64(const char *s)
{
	if (strlen(s) != 64)
		return 0;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

static int
valid_id(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 64)
		return 0;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '-' || *p == '_' || *p == '.' || *p == '@'))
			return 0;
	return 1;
}

static int
parse_principal(const so_yaml_node_t *n, so_principal_t *p, char *err, size_t errlen)
{
	int rc;
	if (n->kind != SO_YAML_MAP) {
		snprintf(err, errlen, "line %d: each principal must be a mapping", n->line);
		return SO_ECONFIG;
	}
	p->kind = SO_KIND_HUMAN;
	for (size_t i = 0; i < n->n; i++) {
		const char *k = n->keys[i];
		const so_yaml_node_t *v = n->items[i];
		char msg[256] = "";
		rc = SO_OK;
		if (!strcmp(k, "id")) {
			rc = so_cfg_scalar_string(v, &p->id, msg, sizeof(msg));
			if (!rc && !valid_id(p->id)) {
				snprintf(msg, sizeof(msg), "'%s' is not a valid id (letters, digits, - _ . @)", p->id);
				rc = SO_ECONFIG;
			}
		} else if (!strcmp(k, "kind")) {
			if (v->kind == SO_YAML_SCALAR && !strcmp(v->value, "agent"))
				p->kind = SO_KIND_AGENT;
			else if (v->kind == SO_YAML_SCALAR && !strcmp(v->value, "human"))
				p->kind = SO_KIND_HUMAN;
			else if (v->kind == SO_YAML_SCALAR && !strcmp(v->value, "service"))
				p->kind = SO_KIND_SERVICE;
			else {
				snprintf(msg, sizeof(msg), "kind must be agent, human or service");
				rc = SO_ECONFIG;
			}
		} else if (!strcmp(k, "owner")) {
			rc = so_cfg_scalar_string(v, &p->owner, msg, sizeof(msg));
		} else if (!strcmp(k, "team")) {
			rc = so_cfg_scalar_string(v, &p->team, msg, sizeof(msg));
		} else if (!strcmp(k, "groups")) {
			rc = so_cfg_string_list(v, &p->groups, NULL, msg, sizeof(msg));
		} else if (!strcmp(k, "token_sha256")) {
			rc = so_cfg_scalar_string(v, &p->token_sha256, msg, sizeof(msg));
			if (!rc && !is_hex64(p->token_sha256)) {
				snprintf(msg, sizeof(msg), "token_sha256 must be 64 lowercase hex characters");
				rc = SO_ECONFIG;
			}
		} else if (!strcmp(k, "slack_user")) {
			rc = so_cfg_scalar_string(v, &p->slack_user, msg, sizeof(msg));
		} else if (!strcmp(k, "teams_user")) {
			rc = so_cfg_scalar_string(v, &p->teams_user, msg, sizeof(msg));
		} else if (!strcmp(k, "email")) {
			rc = so_cfg_scalar_string(v, &p->email, msg, sizeof(msg));
		} else {
			snprintf(err, errlen, "line %d: unknown key 'principals[].%s'", n->key_lines[i], k);
			return SO_ECONFIG;
		}
		if (rc) {
			snprintf(err, errlen, "line %d: principals[].%s: %s", v->line, k, msg);
			return rc;
		}
	}
	if (!p->id) {
		snprintf(err, errlen, "line %d: a principal needs an id", n->line);
		return SO_ECONFIG;
	}
	if (!p->groups && !(p->groups = calloc(1, sizeof(char *))))
		return SO_ENOMEM;
	return SO_OK;
}

static int
parse_principals(const so_yaml_node_t *n, void *target, char *err, size_t errlen)
{
	so_config_t *cfg = target;
	if (n->kind != SO_YAML_SEQ) {
		snprintf(err, errlen, "expected a list of principals");
		return SO_ECONFIG;
	}
	if (n->n > MAX_PRINCIPALS) {
		snprintf(err, errlen, "more than %d principals", MAX_PRINCIPALS);
		return SO_ECONFIG;
	}
	so_directory_free(&cfg->directory);
	cfg->directory.items = calloc(n->n ? n->n : 1, sizeof(so_principal_t));
	if (!cfg->directory.items)
		return SO_ENOMEM;
	for (size_t i = 0; i < n->n; i++) {
		char msg[400];
		int rc = parse_principal(n->items[i], &cfg->directory.items[i], msg, sizeof(msg));
		cfg->directory.n = i + 1;
		if (rc) {
			/* Custom errors carry their own line; strip the caller's wrapping. */
			snprintf(err, errlen, "%s", msg);
			return rc;
		}
		const char *id = cfg->directory.items[i].id;
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(cfg->directory.items[j].id, id)) {
				snprintf(err, errlen, "line %d: principal '%s' is defined twice",
				         n->items[i]->line, id);
				return SO_ECONFIG;
			}
		}
	}
	/* Checks across principals, once all are known. */
	for (size_t i = 0; i < cfg->directory.n; i++) {
		const so_principal_t *p = &cfg->directory.items[i];
		if (p->owner) {
			const so_principal_t *o = so_directory_find(&cfg->directory, p->owner);
			if (!o || o->kind != SO_KIND_HUMAN) {
				snprintf(err, errlen, "line %d: principal '%s': owner '%s' is not a configured "
				         "human", n->items[i]->line, p->id, p->owner);
				return SO_ECONFIG;
			}
		}
		for (size_t j = 0; p->token_sha256 && j < i; j++) {
			const char *other = cfg->directory.items[j].token_sha256;
			if (other && !strcmp(other, p->token_sha256)) {
				snprintf(err, errlen, "line %d: principals '%s' and '%s' share a token",
				         n->items[i]->line, cfg->directory.items[j].id, p->id);
				return SO_ECONFIG;
			}
		}
	}
	return SO_OK;
}

static void
free_principals(void *target)
{
	so_directory_free(&((so_config_t *)target)->directory);
}

static int
parse_requirement(const so_yaml_node_t *n, so_requirement_t *q, char *err, size_t errlen)
{
	int rc;
	char msg[256];
	if (n->kind != SO_YAML_MAP) {
		snprintf(err, errlen, "line %d: an approver requirement is {group: G, count: N} "
		                      "or {principals: [...], count: N}", n->line);
		return SO_ECONFIG;
	}
	q->count = 1;
	for (size_t i = 0; i < n->n; i++) {
		const char *k = n->keys[i];
		const so_yaml_node_t *v = n->items[i];
		if (!strcmp(k, "group"))
			rc = so_cfg_scalar_string(v, &q->group, msg, sizeof(msg));
		else if (!strcmp(k, "principals"))
			rc = so_cfg_string_list(v, &q->principals, NULL, msg, sizeof(msg));
		else if (!strcmp(k, "count"))
			rc = so_cfg_scalar_int(v, 1, 100, &q->count, msg, sizeof(msg));
		else {
			snprintf(err, errlen, "line %d: unknown key 'approvers.%s'", n->key_lines[i], k);
			return SO_ECONFIG;
		}
		if (rc) {
			snprintf(err, errlen, "line %d: approvers.%s: %s", v->line, k, msg);
			return rc;
		}
	}
	if (!q->group == !q->principals) {
		snprintf(err, errlen, "line %d: an approver requirement names either a group or "
		                      "principals", n->line);
		return SO_ECONFIG;
	}
	return SO_OK;
}

static int
parse_approvers(const so_yaml_node_t *n, void *target, char *err, size_t errlen)
{
	so_config_t *cfg = target;
	so_policy_t *p = &cfg->policy;
	size_t k = n->kind == SO_YAML_SEQ ? n->n : 1;
	if (k > MAX_REQUIREMENTS) {
		snprintf(err, errlen, "more than %d approver requirements", MAX_REQUIREMENTS);
		return SO_ECONFIG;
	}
	so_policy_free(p);
	p->approvers = calloc(k ? k : 1, sizeof(*p->approvers));
	if (!p->approvers)
		return SO_ENOMEM;
	for (size_t i = 0; i < k; i++) {
		p->napprovers = i + 1;
		int rc = parse_requirement(n->kind == SO_YAML_SEQ ? n->items[i] : n, &p->approvers[i],
		                           err, errlen);
		if (rc)
			return rc;
	}
	return SO_OK;
}

static void
free_approvers(void *target)
{
	so_policy_free(&((so_config_t *)target)->policy);
}

#define OFF(f) offsetof(so_config_t, f)

static const so_cfg_key_t config_table[] = {
	{"server", "listen", SO_CFG_STRING, OFF(listen), "127.0.0.1:8700", 0, 0, NULL, NULL, NULL,
	 "address to listen on, host:port (port 0 picks a free one; the log says which)"},
	{"server", "threads", SO_CFG_INT, OFF(threads), "4", 1, 256, NULL, NULL, NULL,
	 "HTTP worker threads"},
	{"server", "max_connections", SO_CFG_INT, OFF(max_connections), "16384", 16, 1000000, NULL,
	 NULL, NULL, "most open connections (long-poll waiters included)"},
	{"server", "max_body", SO_CFG_INT, OFF(max_body), "1048576", 1024, 67108864, NULL, NULL, NULL,
	 "largest request body in bytes (413 too_large beyond)"},
	{"server", "max_json_depth", SO_CFG_INT, OFF(max_json_depth), "32", 2, 256, NULL, NULL, NULL,
	 "deepest JSON nesting accepted (400 too_deep beyond)"},
	{"server", "max_string", SO_CFG_INT, OFF(max_string), "65536", 64, 16777216, NULL, NULL, NULL,
	 "longest JSON string in bytes (400 too_long beyond)"},
	{"server", "max_items", SO_CFG_INT, OFF(max_items), "1000", 8, 1000000, NULL, NULL, NULL,
	 "most items in one JSON list or object (400 too_long beyond)"},
	{"server", "max_wait", SO_CFG_DURATION, OFF(max_wait), "300", 1, 3600, NULL, NULL, NULL,
	 "longest long-poll (?wait=N is clamped to it)"},
	{"server", "tls_cert_file", SO_CFG_STRING, OFF(tls_cert_file), NULL, 0, 0, NULL, NULL, NULL,
	 "PEM certificate; with tls_key_file, serve HTTPS"},
	{"server", "tls_key_file", SO_CFG_STRING, OFF(tls_key_file), NULL, 0, 0, NULL, NULL, NULL,
	 "PEM private key for tls_cert_file"},
	{"store", "url", SO_CFG_STRING, OFF(store_url), "sqlite:var/signoff.db", 0, 0, NULL, NULL,
	 NULL, "where state lives: sqlite:PATH"},
	{"store", "max_batch", SO_CFG_INT, OFF(store_max_batch), "512", 1, 100000, NULL, NULL, NULL,
	 "most changes committed together in one transaction (group commit)"},
	{"audit", "signing_key_file", SO_CFG_STRING, OFF(signing_key_file), "var/audit.key", 0, 0,
	 NULL, NULL, NULL, "Ed25519 key for signed checkpoints (created on first start)"},
	{"auth", "admin_group", SO_CFG_STRING, OFF(admin_group), "admins", 0, 0, NULL, NULL, NULL,
	 "members may issue tokens and see every request"},
	{"auth", "auditor_group", SO_CFG_STRING, OFF(auditor_group), "auditors", 0, 0, NULL, NULL,
	 NULL, "members may read the audit log and every request"},
	{"log", "level", SO_CFG_STRING, OFF(log_level), "info", 0, 0, NULL, NULL, NULL,
	 "lowest level logged: debug, info, warn, error"},
	{"principals", NULL, SO_CFG_CUSTOM, 0, NULL, 0, 0, NULL, parse_principals, free_principals,
	 "list of {id, kind: agent|human|service, owner, team, groups, token_sha256, slack_user, "
	 "teams_user, email}"},
	{"policy", "default", SO_CFG_ENUM, OFF(policy.def), "review", 0, 0, outcome_choices, NULL,
	 NULL, "decision when no rule matches: allow, review or deny"},
	{"policy", "approvers", SO_CFG_CUSTOM, 0, NULL, 0, 0, NULL, parse_approvers, free_approvers,
	 "who must approve a review: {group: G, count: N} or {principals: [...], count: N}, or a "
	 "list of them (each met by distinct humans)"},
	{"policy", "ttl", SO_CFG_DURATION, OFF(policy.ttl), "30m", 1, 86400, NULL, NULL, NULL,
	 "how long a request may wait for review before it expires"},
	{"policy", "grant_ttl", SO_CFG_DURATION, OFF(policy.grant_ttl), "10m", 1, 86400, NULL, NULL,
	 NULL, "how long an approval may wait for its claim before it expires"},
	{"policy", "owner_may_approve", SO_CFG_BOOL, OFF(policy.owner_may_approve), "false", 0, 0,
	 NULL, NULL, NULL, "let an agent's owner approve its requests (counts as one person)"},
	{NULL, NULL, 0, 0, NULL, 0, 0, NULL, NULL, NULL, NULL},
};

void
so_config_print_help(FILE *out)
{
	so_cfg_print_help(config_table, out);
}

/* Cross-key checks that the table cannot express. */
static int
check(so_config_t *cfg, const char *name, char *err, size_t errlen)
{
	enum so_log_level lvl;
	if (so_log_parse_level(cfg->log_level, &lvl)) {
		snprintf(err, errlen, "%s: log.level must be debug, info, warn or error", name);
		return SO_ECONFIG;
	}
	if (!!cfg->tls_cert_file != !!cfg->tls_key_file) {
		snprintf(err, errlen, "%s: server.tls_cert_file and server.tls_key_file go together", name);
		return SO_ECONFIG;
	}
	if (cfg->policy.def == SO_OUT_REVIEW && !cfg->policy.napprovers) {
		snprintf(err, errlen, "%s: policy.default is review but policy.approvers names nobody",
		         name);
		return SO_ECONFIG;
	}
	return so_policy_seal(&cfg->policy);
}

static int
load_root(so_yaml_node_t *root, const char *name, so_config_t *cfg, char *err, size_t errlen)
{
	int rc = so_cfg_load(config_table, root, cfg, name, err, errlen);
	so_yaml_free(root);
	if (rc == SO_OK)
		rc = check(cfg, name, err, errlen);
	if (rc == SO_OK && !(cfg->path = strdup(name)))
		rc = SO_ENOMEM;
	if (rc)
		so_config_free(cfg);
	return rc;
}

int
so_config_load_text(const char *text, const char *name, so_config_t *cfg, char *err,
                    size_t errlen)
{
	so_yaml_node_t *root = NULL;
	char msg[512];
	memset(cfg, 0, sizeof(*cfg));
	int rc = so_yaml_parse(text, strlen(text), &root, msg, sizeof(msg));
	if (rc) {
		snprintf(err, errlen, "%s: %s", name, msg);
		return rc;
	}
	return load_root(root, name, cfg, err, errlen);
}

int
so_config_load_file(const char *path, so_config_t *cfg, char *err, size_t errlen)
{
	so_yaml_node_t *root = NULL;
	char msg[512];
	memset(cfg, 0, sizeof(*cfg));
	int rc = so_yaml_load_file(path, &root, msg, sizeof(msg));
	if (rc) {
		/* "line N: what" from the parser becomes "FILE:N: what" */
		int line, used = 0;
		if (sscanf(msg, "line %d: %n", &line, &used) == 1 && used > 0)
			snprintf(err, errlen, "%s:%d: %s", path, line, msg + used);
		else
			snprintf(err, errlen, "%s: %s", path, msg);
		return rc;
	}
	return load_root(root, path, cfg, err, errlen);
}

void
so_config_free(so_config_t *cfg)
{
	so_cfg_free(config_table, cfg);
	free(cfg->path);
	cfg->path = NULL;
}
