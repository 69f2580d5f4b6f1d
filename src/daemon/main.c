/* signoffd: load the configuration, open the store, serve the API until SIGTERM/SIGINT. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "audit/audit.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/token.h"
#include "daemon/config.h"
#include "server/server.h"
#include "store/store.h"
#include "store/writer.h"

#define VERSION "0.1.0"

/* The embedded default: what `make run` starts with no -c. Tokens are minted on first start. */
static const char demo_config[] =
    "server: { listen: \"127.0.0.1:8700\" }\n"
    "store: { url: \"sqlite:var/signoff.db\" }\n"
    "audit: { signing_key_file: \"var/audit.key\" }\n"
    "auth: { admin_group: sre, auditor_group: dba }\n"
    "principals:\n"
    "  - { id: deploy-bot, kind: agent, owner: alice }\n"
    "  - { id: report-bot, kind: agent, owner: carol }\n"
    "  - { id: alice, kind: human, groups: [sre] }\n"
    "  - { id: bob, kind: human, groups: [sre] }\n"
    "  - { id: carol, kind: human, groups: [dba] }\n"
    "policy:\n"
    "  default: review\n"
    "  approvers: { group: sre, count: 1 }\n"
    "  ttl: 30m\n"
    "  grant_ttl: 10m\n"
    "  rules:\n"
    "    - name: reads-are-free\n"
    "      when: 'action.kind == \"shell\" && action.command[0] == \"kubectl\" &&\n"
    "             action.command[1] in [\"get\", \"describe\", \"logs\"]'\n"
    "      decide: allow\n"
    "      reason: read-only kubectl\n"
    "    - name: no-recursive-deletes\n"
    "      when: 'has(action.command) && action.command.exists(a, a == \"-rf\")'\n"
    "      decide: deny\n"
    "      reason: recursive deletes are never run by agents\n"
    "    - name: production\n"
    "      when: 'has(action.environment) && action.environment == \"production\"'\n"
    "      decide: review\n"
    "      reason: production changes need an SRE\n"
    "      require: [intent]\n";

static void
usage(FILE *out)
{
	fprintf(out,
	        "usage: signoffd [-c FILE] [-t]\n"
	        "\n"
	        "The signoff daemon: an approval gate for AI agents' privileged actions.\n"
	        "\n"
	        "  -c, --config FILE   configuration file (YAML); without it, the embedded demo\n"
	        "                      configuration runs on ./var and prints its tokens once\n"
	        "  -t, --test          check the configuration and exit (0 when valid)\n"
	        "      --help-config   list every configuration key with its default\n"
	        "  -h, --help          this help\n"
	        "  -V, --version       print the version\n"
	        "\n"
	        "Stops cleanly on SIGTERM or SIGINT; SIGHUP loads the policy again.\n"
	        "See signoffd(8).\n");
}

static struct {
	so_writer_t *writer;
	so_audit_key_t key;
} app;

struct started {
	const so_config_t *cfg;
	const char *policy_version; /* the server holds the policy itself by now */
};

static int
op_started(so_store_t *s, void *arg)
{
	const struct started *st = arg;
	return so_audit_append(s, "daemon.started", NULL, NULL,
	                       json_pack("{s:s, s:s, s:s, s:I}", "version", VERSION, "config",
	                                 st->cfg->path, "policy_version", st->policy_version,
	                                 "principals", (json_int_t)st->cfg->directory.n),
	                       so_clock_now_ms());
}

/* How the server loads the policy again: the whole file is read and checked, and only its
 * policy is taken (principals and other settings need a restart). */
static int
load_policy(void *ctx, so_policy_t *out, char *err, size_t errlen)
{
	const char *path = ctx;
	so_config_t fresh;
	int rc = so_config_load_file(path, &fresh, err, errlen);
	if (rc)
		return rc;
	*out = fresh.policy;
	memset(&fresh.policy, 0, sizeof(fresh.policy));
	so_config_free(&fresh);
	return SO_OK;
}

struct demo_tokens {
	so_config_t *cfg;
	char (*tokens)[SO_TOKEN_LEN + 1];
	int minted;
};

static int
op_demo_tokens(so_store_t *s, void *arg)
{
	struct demo_tokens *dt = arg;
	int64_t have = 0;
	int rc = s->ops->token_count(s, &have);
	if (rc || have)
		return rc;
	for (size_t i = 0; i < dt->cfg->directory.n; i++) {
		char hash[65];
		so_token_new(dt->tokens[i], hash);
		const char *id = dt->cfg->directory.items[i].id;
		if ((rc = s->ops->token_insert(s, hash, id, so_clock_now_ms())) ||
		    (rc = so_audit_append(s, "token.issued", NULL, NULL,
		                          json_pack("{s:s, s:s}", "principal", id, "token_sha256", hash),
		                          so_clock_now_ms())))
			return rc;
	}
	dt->minted = 1;
	return SO_OK;
}

static void
print_demo(so_config_t *cfg, struct demo_tokens *dt, uint16_t port)
{
	printf("\nsignoff demo: these tokens are shown once (they are stored only as hashes).\n\n");
	for (size_t i = 0; i < cfg->directory.n; i++) {
		const so_principal_t *p = &cfg->directory.items[i];
		printf("  %-11s %-6s %s\n", p->id, so_kind_name(p->kind), dt->tokens[i]);
	}
	printf("\nTry it (the agent deploy-bot asks, the human bob approves):\n\n");
	printf("  export SIGNOFF_URL=http://127.0.0.1:%u\n", port);
	printf("  SIGNOFF_TOKEN=%s build/src/cli/signoff run --env production "
	       "--why 'restart after config change' -- echo restarted &\n", dt->tokens[0]);
	printf("  SIGNOFF_TOKEN=%s build/src/cli/signoff list --pending\n", dt->tokens[3]);
	printf("  SIGNOFF_TOKEN=%s build/src/cli/signoff approve REQUEST_ID -m 'looks right'\n\n",
	       dt->tokens[3]);
	printf("Or review in the browser: open http://127.0.0.1:%u/ and sign in with bob's token.\n\n",
	       port);
	fflush(stdout);
}

/**
 * `url` for the log, with any password in it replaced: "postgresql://u:secret@h/db" becomes
 * "postgresql://u:***@h/db" (a password given as "?password=" goes the same way).
 */
static void
redact_url(const char *url, char *out, size_t size)
{
	const char *scheme = strstr(url, "://");
	const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
	const char *colon = scheme && at ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) : NULL;
	const char *param = strstr(url, "password=");

	if (colon)
		snprintf(out, size, "%.*s:***%s", (int)(colon - url), url, at);
	else
		snprintf(out, size, "%s", url);
	if (param && (param = strstr(out, "password=")) != NULL) {
		size_t keep = (size_t)(param - out) + strlen("password=");
		const char *rest = strchr(param, '&');
		char tail[256];
		snprintf(tail, sizeof(tail), "%s", rest ? rest : "");
		snprintf(out + keep, size - keep, "***%s", tail);
	}
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"test", no_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{"help-config", no_argument, NULL, 'H'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *config_path = NULL;
	int test_only = 0, opt, status = 1;
	char err[1024];
	so_config_t cfg;
	so_store_t *store = NULL;
	so_server_t *server = NULL;
	so_notifier_t *notifier = NULL;
	struct demo_tokens dt = {0};

	while ((opt = getopt_long(argc, argv, "c:thV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': config_path = optarg; break;
		case 't': test_only = 1; break;
		case 'h': usage(stdout); return 0;
		case 'H': so_config_print_help(stdout); return 0;
		case 'V': printf("signoffd %s\n", VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "signoffd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "signoffd: libsodium failed to initialise\n");
		return 1;
	}
	int rc = config_path ? so_config_load_file(config_path, &cfg, err, sizeof(err))
	                     : so_config_load_text(demo_config, "(embedded demo)", &cfg, err,
	                                           sizeof(err));
	if (rc) {
		fprintf(stderr, "signoffd: %s\n", err);
		return 1;
	}
	if (test_only) {
		printf("%s: configuration is valid (%zu principals, policy %s)\n", cfg.path,
		       cfg.directory.n, cfg.policy.version);
		so_config_free(&cfg);
		return 0;
	}
	enum so_log_level lvl = SO_LOG_INFO;
	so_log_parse_level(cfg.log_level, &lvl);
	so_log_set_level(lvl);
	if (!config_path && mkdir("var", 0700) && errno != EEXIST) {
		so_error("cannot create ./var: %s", strerror(errno));
		goto out;
	}

	/* Signals are taken synchronously by this thread; every other thread blocks them. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if ((rc = so_audit_key_load(cfg.signing_key_file, &app.key, err, sizeof(err)))) {
		so_error("audit key: %s", err);
		goto out;
	}
	if ((rc = so_store_open(cfg.store_url, &store, err, sizeof(err)))) {
		so_error("store %s: %s", cfg.store_url, err);
		goto out;
	}
	app.writer = so_writer_start(store, (size_t)cfg.store_max_batch, so_server_observe_commit);
	if (!app.writer) {
		so_store_close(store);
		so_error("cannot start the store writer");
		goto out;
	}
	char policy_version[sizeof(cfg.policy.version)];
	memcpy(policy_version, cfg.policy.version, sizeof(policy_version));
	if (cfg.notify.slack.enabled || cfg.notify.teams.enabled || cfg.notify.nwebhooks) {
		/* Every node holds the same signing key; the store never does. */
		unsigned char seal_secret[32];
		crypto_generichash(seal_secret, sizeof(seal_secret), app.key.sk, sizeof(app.key.sk),
		                   (const unsigned char *)"signoff seal secret", 19);
		notifier = so_notifier_start(&cfg.notify, &cfg.directory, cfg.store_url, app.writer,
		                             seal_secret, err, sizeof(err));
		sodium_memzero(seal_secret, sizeof(seal_secret));
		if (!notifier) {
			so_error("cannot start the notifier: %s", err);
			goto out;
		}
	}
	if ((rc = so_server_start(&cfg, app.writer, &app.key, notifier,
	                          config_path ? load_policy : NULL, (void *)config_path, &server, err,
	                          sizeof(err)))) {
		so_error("%s", err);
		goto out;
	}
	/* Nothing is appended to a log found damaged: the verifier must see it as it was left
	 * (not even a delivery record, so the notifier stops too). */
	if (so_server_audit_damaged(server) && notifier) {
		so_server_detach_notifier(server);
		so_notifier_stop(notifier);
		notifier = NULL;
	}
	if (!so_server_audit_damaged(server)) {
		struct started st = {&cfg, policy_version};
		if (so_writer_run(app.writer, op_started, &st)) {
			so_error("cannot write to the store (audit event daemon.started)");
			goto out;
		}
		if (!config_path) {
			dt.cfg = &cfg;
			dt.tokens = calloc(cfg.directory.n, sizeof(*dt.tokens));
			if (!dt.tokens || so_writer_run(app.writer, op_demo_tokens, &dt)) {
				so_error("cannot mint the demo tokens");
				goto out;
			}
		}
	}
	char host[256], store_shown[512];
	const char *colon = strrchr(cfg.listen, ':');
	redact_url(cfg.store_url, store_shown, sizeof(store_shown));
	snprintf(host, sizeof(host), "%.*s", colon ? (int)(colon - cfg.listen) : 0, cfg.listen);
	so_info("signoffd %s listening on %s://%s:%u (store %s, policy %s)", VERSION,
	        cfg.tls_cert_file ? "https" : "http", !strcmp(host, "localhost") ? "127.0.0.1" : host,
	        so_server_port(server), store_shown, policy_version);
	if (dt.minted)
		print_demo(&cfg, &dt, so_server_port(server));
	else if (!config_path)
		printf("signoff demo: tokens were printed on first start; remove ./var to start over.\n");
	fflush(stdout);

	for (;;) {
		int sig = 0;
		sigwait(&sigs, &sig);
		if (sig == SIGHUP) {
			if (so_server_reload_policy(server, NULL, err, sizeof(err)))
				so_error("SIGHUP: policy not reloaded: %s", err);
			continue;
		}
		so_info("signal %d: shutting down", sig);
		break;
	}
	status = 0;
out:
	so_server_stop(server);
	so_notifier_stop(notifier); /* undelivered rows stay in the outbox for the next start */
	so_writer_stop(app.writer);
	if (dt.tokens) {
		sodium_memzero(dt.tokens, cfg.directory.n * sizeof(*dt.tokens));
		free(dt.tokens);
	}
	so_config_free(&cfg);
	so_audit_key_wipe(&app.key);
	if (status == 0)
		so_info("stopped");
	return status;
}
