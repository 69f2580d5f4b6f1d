/**
 * The HTTP API of signoffd (libmicrohttpd): routing, bearer authentication, the request
 * resources, long-poll waiters, the expiry sweeper, /healthz and /metrics.
 *
 * The server borrows the configuration, the writer and the audit signing key; they must
 * outlive it. The sweeper thread signs checkpoints over the audit log with the key; a key
 * rotation (POST /v1/admin/audit/rotate-key) replaces the key in place and its file.
 * State changes go through the writer (group commit) on suspended connections, so no HTTP
 * thread ever waits for an fsync; reads use a small pool of read connections.
 */
#ifndef SO_SERVER_SERVER_H
#define SO_SERVER_SERVER_H

#include <stdint.h>

#include "audit/audit.h"
#include "daemon/config.h"
#include "notify/notify.h"
#include "store/writer.h"

typedef struct so_server so_server_t;

/**
 * Loads the policy again (from the configuration file) into `out`; on failure returns an
 * error with a message in `err` and leaves `out` untouched.
 */
typedef int (*so_policy_loader_fn)(void *ctx, so_policy_t *out, char *err, size_t errlen);

/**
 * Start listening. `writer` must have been started on the same store URL. The server takes
 * over cfg->policy (leaving it empty) so that it can be replaced on reload; `loader` (may be
 * NULL) is how reloads get the new one. On failure returns an error and writes a message to
 * `err`.
 */
int so_server_start(so_config_t *cfg, so_writer_t *writer, so_audit_key_t *key,
                    so_notifier_t *notifier, so_policy_loader_fn loader, void *loader_ctx,
                    so_server_t **out, char *err, size_t errlen);

/**
 * Load the policy again and put it in force, audited as policy.reloaded with the old and new
 * versions. A policy that fails to load is refused and the old one stays. Requests already
 * pending keep the requirements they were created with. Thread-safe.
 */
int so_server_reload_policy(so_server_t *s, const char *actor, char *err, size_t errlen);
/** Whether the audit log was found damaged at start (then every state change gets 503). */
int so_server_audit_damaged(const so_server_t *s);
/** Stop using the notifier (before stopping it), e.g. when the audit log is damaged. */
void so_server_detach_notifier(so_server_t *s);
/** The bound port (useful with port 0). */
uint16_t so_server_port(const so_server_t *s);
/** Writer observer that feeds the commit-latency metrics (pass to so_writer_start()). */
void so_server_observe_commit(int64_t commit_usec, size_t batch);
/** Release every long-poll waiter, stop accepting, and free the server. */
void so_server_stop(so_server_t *s);

#endif
