#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/config.h"
#include "common/error.h"
#include "common/log.h"
#include "common/yaml.h"
#include "daemon/config.h"
#include "daemon/notify_config.h"
#include "daemon/policy_config.h"

#define MAX_PRINCIPALS 10000

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
		for (size_t j = 0; j < i; j++) {
			const so_principal_t *o = &cfg->directory.items[j];
			const char *dup = p->slack_user && o->slack_user && !strcmp(p->slack_user, o->slack_user)
			                      ? "slack_user"
			                  : p->teams_user && o->teams_user && !strcmp(p->teams_user, o->teams_user)
			                      ? "teams_user"
			                      : NULL;
			if (dup) {
				snprintf(err, errlen, "line %d: principals '%s' and '%s' share a %s",
				         n->items[i]->line, o->id, p->id, dup);
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
	{"server", "trusted_proxies", SO_CFG_STRING, OFF(trusted_proxies), NULL, 0, 0, NULL, NULL,
	 NULL, "IPv4 addresses of reverse proxies, comma-separated: from them, the last address of "
	 "X-Forwarded-For is the client's (the console's sign-in limit counts per client)"},
	{"store", "url", SO_CFG_STRING, OFF(store_url), "sqlite:var/signoff.db", 0, 0, NULL, NULL,
	 NULL, "where state lives: sqlite:PATH (optionally ?busy_timeout_ms=N), or a PostgreSQL URL "
	 "postgresql://HOST/DB?sslmode=... (libpq options pass through; docs/internals/store.md)"},
	{"store", "max_batch", SO_CFG_INT, OFF(store_max_batch), "512", 1, 100000, NULL, NULL, NULL,
	 "most changes committed together in one transaction (group commit)"},
	{"audit", "signing_key_file", SO_CFG_STRING, OFF(signing_key_file), "var/audit.key", 0, 0,
	 NULL, NULL, NULL, "Ed25519 key for signed checkpoints (created on first start)"},
	{"audit", "checkpoint_every", SO_CFG_INT, OFF(checkpoint_every), "1000", 1, 10000000, NULL,
	 NULL, NULL, "sign a checkpoint once this many events are unsigned"},
	{"audit", "checkpoint_interval", SO_CFG_DURATION, OFF(checkpoint_interval), "60s", 1, 86400,
	 NULL, NULL, NULL, "or once this long has passed since the last checkpoint with events "
	 "unsigned (and at shutdown)"},
	{"audit", "retention", SO_CFG_DURATION, OFF(retention), "400d", 90 * 86400, 36500LL * 86400,
	 NULL, NULL, NULL, "events older than this (at least 90d) move to archive files that "
	 "verify on their own; what stays online still verifies"},
	{"audit", "archive_dir", SO_CFG_STRING, OFF(archive_dir), "var/audit-archive", 0, 0, NULL,
	 NULL, NULL, "where archived audit segments are written (JSONL exports with checkpoints)"},
	{"auth", "admin_group", SO_CFG_STRING, OFF(admin_group), "admins", 0, 0, NULL, NULL, NULL,
	 "members may issue tokens and see every request"},
	{"auth", "auditor_group", SO_CFG_STRING, OFF(auditor_group), "auditors", 0, 0, NULL, NULL,
	 NULL, "members may read the audit log and every request"},
	{"log", "level", SO_CFG_STRING, OFF(log_level), "info", 0, 0, NULL, NULL, NULL,
	 "lowest level logged: debug, info, warn, error"},
	{"principals", NULL, SO_CFG_CUSTOM, 0, NULL, 0, 0, NULL, parse_principals, free_principals,
	 "list of {id, kind: agent|human|service, owner, team, groups, token_sha256, slack_user, "
	 "teams_user, email}"},
	{"policy", "default", SO_CFG_CUSTOM, 0, "review", 0, 0, NULL, so_policy_cfg_default, NULL,
	 "decision when no rule matches: allow, review or deny"},
	{"policy", "approvers", SO_CFG_CUSTOM, 0, NULL, 0, 0, NULL, so_policy_cfg_approvers,
	 so_policy_cfg_free_approvers,
	 "who approves a review by default: {group: G, count: N} or {principals: [...], count: N}, "
	 "or a list of them (each met by distinct humans); group may name a field, like owner.team"},
	{"policy", "ttl", SO_CFG_DURATION, OFF(policy.ttl), "30m", 1, 86400, NULL, NULL, NULL,
	 "how long a request may wait for review before it expires"},
	{"policy", "grant_ttl", SO_CFG_DURATION, OFF(policy.grant_ttl), "10m", 1, 86400, NULL, NULL,
	 NULL, "how long an approval may wait for its claim before it expires"},
	{"policy", "owner_may_approve", SO_CFG_BOOL, OFF(policy.owner_may_approve), "false", 0, 0,
	 NULL, NULL, NULL, "let an agent's owner approve its requests (counts as one person)"},
	{"policy", "timezone", SO_CFG_CUSTOM, 0, "UTC", 0, 0, NULL, so_policy_cfg_timezone, NULL,
	 "zone of time.hour and time.weekday in rules: UTC, an offset like +02:00, or a name "
	 "like Europe/Berlin"},
	{"policy", "rules", SO_CFG_CUSTOM, 0, NULL, 0, 0, NULL, so_policy_cfg_rules,
	 so_policy_cfg_free_rules,
	 "list of {name, when, decide, reason, approvers, owner_may_approve, ttl, escalate, route, "
	 "require} (docs/policy.md)"},
	{"policy", "include", SO_CFG_CUSTOM, 0, NULL, 0, 0, NULL, so_policy_cfg_include, NULL,
	 "files (globs, relative to this file) that hold more rules: under a top-level rules: key"},
	{"anomaly", "threshold", SO_CFG_INT, OFF(policy.anomaly_threshold_pct), "50", 0, 100, NULL,
	 NULL, NULL, "an allow whose anomaly score reaches this percent goes to review by the "
	 "default approvers, with the reasons as its why; 0 never raises (docs/anomaly.md)"},
	{"anomaly", "learning_period", SO_CFG_DURATION, OFF(anomaly_learning_period), "7d", 0,
	 365LL * 86400, NULL, NULL, NULL, "a principal is new until its first learned request is "
	 "this old ..."},
	{"anomaly", "learning_requests", SO_CFG_INT, OFF(anomaly_learning_requests), "20", 0,
	 100000, NULL, NULL, NULL, "... and it has this many learned requests"},
	{"anomaly", "learning_score", SO_CFG_INT, OFF(anomaly_learning_score_pct), "30", 1, 100,
	 NULL, NULL, NULL, "the score (percent) of a new principal's requests: marked, never 0; "
	 "at or above threshold, they all go to review"},
	{"anomaly", "half_life", SO_CFG_DURATION, OFF(anomaly_half_life), "30d", 3600,
	 3650LL * 86400, NULL, NULL, NULL, "a learned habit unused for this long weighs half; "
	 "forgotten after two half-lives"},
	{"notify", "console_url", SO_CFG_STRING, OFF(notify.console_url), NULL, 0, 0, NULL, NULL,
	 NULL, "base URL of the web console, for links in chat messages"},
	{"notify", "max_attempts", SO_CFG_INT, OFF(notify.max_attempts), "10", 1, 1000, NULL, NULL,
	 NULL, "deliveries tried before one is given up (and audited as notify.failed)"},
	{"notify", "max_delay", SO_CFG_DURATION, OFF(notify.max_delay), "5m", 1, 86400, NULL, NULL,
	 NULL, "longest wait between two tries (exponential backoff with jitter up to this)"},
	{"notify", "slack", SO_CFG_CUSTOM, 0, NULL, 0, 0, NULL, so_notify_cfg_slack, NULL,
	 "{bot_token_file|bot_token_env, signing_secret_file|signing_secret_env, api_url, channel, "
	 "dm_reviewers} (docs/slack.md)"},
	{"notify", "teams", SO_CFG_CUSTOM, 0, NULL, 0, 0, NULL, so_notify_cfg_teams, NULL,
	 "{app_id, app_password_file|_env, service_url, conversation, openid_metadata_url, "
	 "token_url, webhook_url_file|_env} (docs/teams.md)"},
	{"notify", "webhooks", SO_CFG_CUSTOM, 0, NULL, 0, 0, NULL, so_notify_cfg_webhooks,
	 so_notify_cfg_free, "list of {url, secret_file|secret_env}: signed JSON of each event"},
	{NULL, NULL, 0, 0, NULL, 0, 0, NULL, NULL, NULL, NULL},
};

void
so_config_print_help(FILE *out)
{
	so_cfg_print_help(config_table, out);
}

/* server.trusted_proxies: "10.0.0.5, 10.0.0.6" into cfg->trusted_proxy. */
static int
parse_proxies(so_config_t *cfg, const char *name, char *err, size_t errlen)
{
	cfg->ntrusted_proxies = 0;
	for (const char *p = cfg->trusted_proxies; p;) {
		char addr[64];
		size_t len = strcspn(p, ",");
		const char *end = p + len;
		while (p < end && isspace((unsigned char)*p))
			p++;
		size_t n = (size_t)(end - p);
		while (n && isspace((unsigned char)p[n - 1]))
			n--;
		struct in_addr in;
		if (n == 0 || n >= sizeof(addr)) {
			snprintf(err, errlen, "%s: server.trusted_proxies: an empty or overlong entry", name);
			return -1;
		}
		memcpy(addr, p, n);
		addr[n] = '\0';
		if (inet_pton(AF_INET, addr, &in) != 1) {
			snprintf(err, errlen, "%s: server.trusted_proxies: '%s' is not an IPv4 address",
			         name, addr);
			return -1;
		}
		if (cfg->ntrusted_proxies == SO_MAX_PROXIES) {
			snprintf(err, errlen, "%s: server.trusted_proxies: at most %d addresses", name,
			         SO_MAX_PROXIES);
			return -1;
		}
		cfg->trusted_proxy[cfg->ntrusted_proxies++] = in.s_addr;
		p = *end ? end + 1 : NULL; /* after a last comma comes an empty entry: refused */
	}
	return 0;
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
	if (parse_proxies(cfg, name, err, errlen))
		return SO_ECONFIG;
	const struct so_config_loading *ld = cfg->loading;
	if (!cfg->policy.napprovers) {
		if (cfg->policy.def == SO_OUT_REVIEW) {
			int line = ld->default_line;
			if (line)
				snprintf(err, errlen, "%s:%d: policy.default is review but policy.approvers "
				         "names nobody", name, line);
			else
				snprintf(err, errlen, "%s: policy.default is review (the default) but "
				         "policy.approvers names nobody", name);
			return SO_ECONFIG;
		}
		for (size_t i = 0; i < cfg->policy.nrules; i++) {
			const so_rule_t *r = &cfg->policy.rules[i];
			if (r->decide == SO_OUT_REVIEW && !r->napprovers) {
				snprintf(err, errlen, "%s:%d: rule '%s' asks for review but names no approvers, "
				         "and policy.approvers is empty", name, r->line, r->name);
				return SO_ECONFIG;
			}
		}
	}
	/* The version is the hash of every loaded text (the file and its includes). */
	unsigned char md[32];
	char hex[65];
	crypto_hash_sha256(md, (const unsigned char *)so_buf_cstr(&cfg->loading->text),
	                   cfg->loading->text.len);
	sodium_bin2hex(hex, sizeof(hex), md, sizeof(md));
	snprintf(cfg->policy.version, sizeof(cfg->policy.version), "sha256:%s", hex);
	return SO_OK;
}

static int
load_text(const char *text, size_t len, const char *name, so_config_t *cfg, int offline,
          char *err, size_t errlen)
{
	struct so_config_loading ld = {.file = name, .offline = offline};
	so_yaml_node_t *root = NULL;
	char msg[512];
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	const char *slash = strrchr(name, '/');
	if (slash && (size_t)(slash - name) < sizeof(ld.dir))
		snprintf(ld.dir, sizeof(ld.dir), "%.*s", (int)(slash - name), name);
	so_buf_init(&ld.text, (size_t)SO_YAML_MAX_BYTES * 8);
	cfg->loading = &ld;
	if ((rc = so_buf_add(&ld.text, text, len)))
		goto out;
	if ((rc = so_yaml_parse(text, len, &root, msg, sizeof(msg)))) {
		/* "line N: what" from the parser becomes "FILE:N: what" */
		int line, used = 0;
		if (sscanf(msg, "line %d: %n", &line, &used) == 1 && used > 0)
			snprintf(err, errlen, "%s:%d: %s", name, line, msg + used);
		else
			snprintf(err, errlen, "%s: %s", name, msg);
		goto out;
	}
	if ((rc = so_cfg_load(config_table, root, cfg, name, err, errlen)) ||
	    (rc = check(cfg, name, err, errlen)))
		goto out;
	if (!(cfg->path = strdup(name)))
		rc = SO_ENOMEM;
out:
	so_yaml_free(root);
	so_buf_free(&ld.text);
	cfg->loading = NULL;
	if (rc)
		so_config_free(cfg);
	return rc;
}

int
so_config_load_text(const char *text, const char *name, so_config_t *cfg, char *err,
                    size_t errlen)
{
	return load_text(text, strlen(text), name, cfg, 0, err, errlen);
}

static int
load_file(const char *path, so_config_t *cfg, int offline, char *err, size_t errlen);

int
so_config_load_file(const char *path, so_config_t *cfg, char *err, size_t errlen)
{
	return load_file(path, cfg, 0, err, errlen);
}

int
so_config_load_policy_file(const char *path, so_config_t *cfg, char *err, size_t errlen)
{
	return load_file(path, cfg, 1, err, errlen);
}

static int
load_file(const char *path, so_config_t *cfg, int offline, char *err, size_t errlen)
{
	so_buf_t text;
	memset(cfg, 0, sizeof(*cfg));
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return SO_EIO;
	}
	so_buf_init(&text, SO_YAML_MAX_BYTES);
	int rc = so_buf_read_file(&text, f);
	fclose(f);
	if (rc == SO_ETOOLARGE)
		snprintf(err, errlen, "%s: file is larger than %u bytes", path, SO_YAML_MAX_BYTES);
	else if (rc)
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
	else
		rc = load_text(so_buf_cstr(&text), text.len, path, cfg, offline, err, errlen);
	so_buf_free(&text);
	return rc;
}

void
so_config_free(so_config_t *cfg)
{
	so_cfg_free(config_table, cfg);
	free(cfg->path);
	cfg->path = NULL;
}
