/* Internal to src/daemon: the `notify` section's custom keys, used by config.c's table. */
#ifndef SO_DAEMON_NOTIFY_CONFIG_H
#define SO_DAEMON_NOTIFY_CONFIG_H

#include <stddef.h>

#include "common/yaml.h"

int so_notify_cfg_slack(const so_yaml_node_t *n, void *target, char *err, size_t errlen);
int so_notify_cfg_teams(const so_yaml_node_t *n, void *target, char *err, size_t errlen);
int so_notify_cfg_webhooks(const so_yaml_node_t *n, void *target, char *err, size_t errlen);
/** Frees the whole notify section (secrets wiped); hangs on the webhooks row. */
void so_notify_cfg_free(void *target);

#endif
