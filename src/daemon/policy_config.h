/*
 * Internal to src/daemon: the `policy` section's custom keys (approvers, rules, include,
 * timezone), used by config.c's key table.
 */
#ifndef SO_DAEMON_POLICY_CONFIG_H
#define SO_DAEMON_POLICY_CONFIG_H

#include <stddef.h>

#include "common/buf.h"
#include "common/yaml.h"

/** State that lives only while a configuration is being loaded. */
struct so_config_loading {
	const char *file;   /**< the main file's name, for messages */
	char dir[4096];     /**< its directory, for relative includes */
	so_buf_t text;      /**< every loaded file's text, for the policy version */
	int default_line;   /**< where policy.default was set (0: not set) */
	int offline;        /**< checking the policy only: secrets are not read */
	int approvers_line;
};

int so_policy_cfg_default(const so_yaml_node_t *n, void *target, char *err, size_t errlen);
int so_policy_cfg_approvers(const so_yaml_node_t *n, void *target, char *err, size_t errlen);
void so_policy_cfg_free_approvers(void *target);
int so_policy_cfg_rules(const so_yaml_node_t *n, void *target, char *err, size_t errlen);
void so_policy_cfg_free_rules(void *target);
int so_policy_cfg_include(const so_yaml_node_t *n, void *target, char *err, size_t errlen);
int so_policy_cfg_timezone(const so_yaml_node_t *n, void *target, char *err, size_t errlen);

#endif
