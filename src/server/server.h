/**
 * The HTTP API of signoffd (libmicrohttpd): routing, bearer authentication, the request
 * resources, long-poll waiters, the expiry sweeper, /healthz and /metrics.
 *
 * The server borrows the configuration and the writer; both must outlive it.
 * State changes go through the writer (group commit) on suspended connections, so no HTTP
 * thread ever waits for an fsync; reads use a small pool of read connections.
 */
#ifndef SO_SERVER_SERVER_H
#define SO_SERVER_SERVER_H

#include <stdint.h>

#include "daemon/config.h"
#include "store/writer.h"

typedef struct so_server so_server_t;

/**
 * Start listening. `writer` must have been started on the same store URL. On failure returns
 * an error and writes a message to `err`.
 */
int so_server_start(so_config_t *cfg, so_writer_t *writer, so_server_t **out, char *err,
                    size_t errlen);
/** The bound port (useful with port 0). */
uint16_t so_server_port(const so_server_t *s);
/** Writer observer that feeds the commit-latency metrics (pass to so_writer_start()). */
void so_server_observe_commit(int64_t commit_usec, size_t batch);
/** Release every long-poll waiter, stop accepting, and free the server. */
void so_server_stop(so_server_t *s);

#endif
