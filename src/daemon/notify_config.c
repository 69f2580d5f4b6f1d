/* The `notify` section: Slack, Teams and webhooks. Secrets come from files or environment
 * variables named in the configuration, never from the file in clear. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/config.h"
#include "common/error.h"
#include "daemon/config.h"
#include "daemon/notify_config.h"
#include "daemon/policy_config.h"

#define MAX_SECRET 4096
#define MAX_WEBHOOKS 32

/* Read a secret from `file` or the environment variable `env` (exactly one of them). */
static int
load_secret(const char *what, const char *file, const char *env, char **out, char *err,
            size_t errlen)
{
	if (!!file == !!env) {
		snprintf(err, errlen, "%s: give exactly one of %s_file or %s_env", what, what, what);
		return SO_ECONFIG;
	}
	char buf[MAX_SECRET + 2];
	size_t n = 0;
	if (file) {
		FILE *f = fopen(file, "r");
		if (!f) {
			snprintf(err, errlen, "%s_file %s: %s", what, file, strerror(errno));
			return SO_ECONFIG;
		}
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	} else {
		const char *v = getenv(env);
		if (!v || !*v) {
			snprintf(err, errlen, "%s_env: the environment variable %s is not set", what, env);
			return SO_ECONFIG;
		}
		n = strlen(v);
		if (n < sizeof(buf))
			memcpy(buf, v, n);
	}
	if (n > MAX_SECRET) {
		sodium_memzero(buf, sizeof(buf));
		snprintf(err, errlen, "%s is longer than %d bytes", what, MAX_SECRET);
		return SO_ECONFIG;
	}
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	if (!n) {
		snprintf(err, errlen, "%s is empty", what);
		return SO_ECONFIG;
	}
	*out = strdup(buf);
	sodium_memzero(buf, sizeof(buf));
	return *out ? SO_OK : SO_ENOMEM;
}

struct keyval {
	const char *name;
	char **slot;
};

/* Parse a mapping of text values into `slots`; unknown keys are errors. */
static int
text_map(const so_yaml_node_t *n, const char *section, struct keyval *slots, int *flags,
         const char *flag_name, char *err, size_t errlen)
{
	if (n->kind != SO_YAML_MAP) {
		snprintf(err, errlen, "line %d: notify.%s must be a mapping", n->line, section);
		return SO_ECONFIG;
	}
	for (size_t i = 0; i < n->n; i++) {
		const char *k = n->keys[i];
		const so_yaml_node_t *v = n->items[i];
		char msg[256];
		int found = 0, rc = SO_OK;
		if (flag_name && !strcmp(k, flag_name)) {
			rc = so_cfg_scalar_bool(v, flags, msg, sizeof(msg));
			found = 1;
		}
		for (struct keyval *s = slots; !found && s->name; s++) {
			if (!strcmp(k, s->name)) {
				free(*s->slot);
				*s->slot = NULL;
				rc = so_cfg_scalar_string(v, s->slot, msg, sizeof(msg));
				found = 1;
			}
		}
		if (!found) {
			snprintf(err, errlen, "line %d: unknown key 'notify.%s.%s'", n->key_lines[i], section,
			         k);
			return SO_ECONFIG;
		}
		if (rc) {
			snprintf(err, errlen, "line %d: notify.%s.%s: %s", v->line, section, k, msg);
			return rc;
		}
	}
	return SO_OK;
}

int
so_notify_cfg_slack(const so_yaml_node_t *n, void *target, char *err, size_t errlen)
{
	so_slack_config_t *c = &((so_config_t *)target)->notify.slack;
	char *token_file = NULL, *token_env = NULL, *secret_file = NULL, *secret_env = NULL;
	char msg[512];
	struct keyval slots[] = {
		{"bot_token_file", &token_file}, {"bot_token_env", &token_env},
		{"signing_secret_file", &secret_file}, {"signing_secret_env", &secret_env},
		{"api_url", &c->api_url}, {"channel", &c->channel}, {NULL, NULL},
	};
	c->dm_reviewers = 0;
	int rc = text_map(n, "slack", slots, &c->dm_reviewers, "dm_reviewers", err, errlen);
	int offline = ((so_config_t *)target)->loading && ((so_config_t *)target)->loading->offline;
	if (!rc && offline) {
		/* `signoff policy check/test`: the policy needs no chat secrets */
		free(token_file);
		free(token_env);
		free(secret_file);
		free(secret_env);
		return SO_OK;
	}
	if (!rc && (rc = load_secret("bot_token", token_file, token_env, &c->bot_token, msg,
	                             sizeof(msg))) == SO_OK)
		rc = load_secret("signing_secret", secret_file, secret_env, &c->signing_secret, msg,
		                 sizeof(msg));
	if (rc && rc != SO_ENOMEM && !err[0])
		snprintf(err, errlen, "line %d: notify.slack: %s", n->line, msg);
	if (!rc && !c->api_url && !(c->api_url = strdup("https://slack.com/api")))
		rc = SO_ENOMEM;
	c->enabled = rc == SO_OK;
	free(token_file);
	free(token_env);
	free(secret_file);
	free(secret_env);
	return rc;
}

int
so_notify_cfg_teams(const so_yaml_node_t *n, void *target, char *err, size_t errlen)
{
	so_teams_config_t *c = &((so_config_t *)target)->notify.teams;
	char *pw_file = NULL, *pw_env = NULL, *hook_file = NULL, *hook_env = NULL;
	char msg[512] = "";
	struct keyval slots[] = {
		{"app_id", &c->app_id}, {"app_password_file", &pw_file}, {"app_password_env", &pw_env},
		{"tenant", &c->tenant}, {"token_url", &c->token_url},
		{"openid_metadata_url", &c->openid_metadata_url}, {"service_url", &c->service_url},
		{"conversation", &c->conversation}, {"webhook_url_file", &hook_file},
		{"webhook_url_env", &hook_env}, {NULL, NULL},
	};
	int rc = text_map(n, "teams", slots, NULL, NULL, err, errlen);
	if (!rc && ((so_config_t *)target)->loading && ((so_config_t *)target)->loading->offline) {
		free(pw_file);
		free(pw_env);
		free(hook_file);
		free(hook_env);
		return SO_OK;
	}
	if (!rc && c->app_id)
		rc = load_secret("app_password", pw_file, pw_env, &c->app_password, msg, sizeof(msg));
	if (!rc && (hook_file || hook_env))
		rc = load_secret("webhook_url", hook_file, hook_env, &c->webhook_url, msg, sizeof(msg));
	if (!rc && !c->app_id && !c->webhook_url) {
		snprintf(msg, sizeof(msg), "give app_id (a bot) or webhook_url_file/_env (cards only)");
		rc = SO_ECONFIG;
	}
	if (rc && rc != SO_ENOMEM && !err[0])
		snprintf(err, errlen, "line %d: notify.teams: %s", n->line, msg);
	if (!rc && !c->openid_metadata_url &&
	    !(c->openid_metadata_url =
	          strdup("https://login.botframework.com/v1/.well-known/openidconfiguration")))
		rc = SO_ENOMEM;
	if (!rc && !c->token_url &&
	    !(c->token_url =
	          strdup("https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token")))
		rc = SO_ENOMEM;
	c->enabled = rc == SO_OK;
	free(pw_file);
	free(pw_env);
	free(hook_file);
	free(hook_env);
	return rc;
}

int
so_notify_cfg_webhooks(const so_yaml_node_t *n, void *target, char *err, size_t errlen)
{
	so_notify_config_t *c = &((so_config_t *)target)->notify;
	if (n->kind != SO_YAML_SEQ || n->n > MAX_WEBHOOKS) {
		snprintf(err, errlen, "line %d: notify.webhooks is a list of at most %d "
		         "{url, secret_file|secret_env}", n->line, MAX_WEBHOOKS);
		return SO_ECONFIG;
	}
	c->webhooks = calloc(n->n ? n->n : 1, sizeof(*c->webhooks));
	if (!c->webhooks)
		return SO_ENOMEM;
	for (size_t i = 0; i < n->n; i++) {
		char *file = NULL, *env = NULL, msg[512] = "";
		struct keyval slots[] = {
			{"url", &c->webhooks[i].url}, {"secret_file", &file}, {"secret_env", &env},
			{NULL, NULL},
		};
		c->nwebhooks = i + 1;
		int rc = text_map(n->items[i], "webhooks[]", slots, NULL, NULL, err, errlen);
		if (!rc && ((so_config_t *)target)->loading && ((so_config_t *)target)->loading->offline) {
			free(file);
			free(env);
			continue;
		}
		if (!rc && !c->webhooks[i].url) {
			snprintf(msg, sizeof(msg), "a webhook needs a url");
			rc = SO_ECONFIG;
		}
		if (!rc)
			rc = load_secret("secret", file, env, &c->webhooks[i].secret, msg, sizeof(msg));
		if (rc && rc != SO_ENOMEM && !err[0])
			snprintf(err, errlen, "line %d: notify.webhooks[%zu]: %s", n->items[i]->line, i, msg);
		free(file);
		free(env);
		if (rc)
			return rc;
	}
	return SO_OK;
}

void
so_notify_cfg_free(void *target)
{
	so_notify_config_free(&((so_config_t *)target)->notify);
}
