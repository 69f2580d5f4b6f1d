/**
 * What the files of libsignoff share and the public header does not promise.
 */
#ifndef SO_CLIENT_INTERNAL_H
#define SO_CLIENT_INTERNAL_H

#include "signoff/client.h"

/** Fill `err` (when not NULL): the code, the HTTP status, the daemon's code and a message. */
void so_client_error_set(so_client_error_t *err, int code, long http_status,
                         const char *error_code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

#endif
