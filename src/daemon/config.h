/**
 * signoffd's configuration: the typed key table (config.c) and the loaded values.
 * so_config_load() fills a so_config_t that owns all its memory (so_config_free()).
 */
#ifndef SO_DAEMON_CONFIG_H
#define SO_DAEMON_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "core/core.h"
#include "notify/notify.h"
#include "policy/policy.h"

typedef struct so_config {
	char *path;
	/* server */
	char *listen;
	int64_t threads, max_connections, max_body, max_json_depth, max_string, max_items, max_wait;
	char *tls_cert_file, *tls_key_file;
	char *trusted_proxies;            /* as written: "ADDR,ADDR,..." */
#define SO_MAX_PROXIES 16
	uint32_t trusted_proxy[SO_MAX_PROXIES]; /* ... parsed (IPv4, network order) */
	size_t ntrusted_proxies;
	/* store, audit */
	char *store_url;
	int64_t store_max_batch;
	char *signing_key_file;
	int64_t checkpoint_every, checkpoint_interval;
	int64_t retention;  /* seconds events stay online before they are archived */
	char *archive_dir;
	/* auth */
	char *admin_group, *auditor_group;
	/* log */
	char *log_level;
	/* anomaly (the threshold lives in policy: it is part of the decision) */
	int64_t anomaly_learning_period, anomaly_learning_requests, anomaly_learning_score_pct;
	int64_t anomaly_half_life;
	so_directory_t directory;
	so_policy_t policy;
	so_notify_config_t notify;
	struct so_config_loading *loading; /**< only while loading */
} so_config_t;

/** Load and check a configuration file. On failure `err` says "FILE:LINE: what". */
int so_config_load_file(const char *path, so_config_t *cfg, char *err, size_t errlen);
/**
 * The same for offline policy work (`signoff policy check/test`): everything is checked but
 * integration secrets are not read, and notifications stay off.
 */
int so_config_load_policy_file(const char *path, so_config_t *cfg, char *err, size_t errlen);
/** Load from YAML text (`name` is used in messages). */
int so_config_load_text(const char *text, const char *name, so_config_t *cfg, char *err,
                        size_t errlen);
void so_config_free(so_config_t *cfg);
/** Print every configuration key with type, default and help. */
void so_config_print_help(FILE *out);

#endif
