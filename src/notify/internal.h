/* Internal to src/notify: the notifier, the channel vtable, and the HTTP helper. */
#ifndef SO_NOTIFY_INTERNAL_H
#define SO_NOTIFY_INTERNAL_H

#include <pthread.h>

#include <sodium.h>

#include "common/buf.h"
#include "notify/notify.h"

/** What one delivery attempt came to. */
typedef struct so_delivery {
	int ok;                 /**< delivered */
	int retry;              /**< failed for now; try again later */
	int64_t retry_after;    /**< seconds the service asked us to wait (429), or 0 */
	char error[256];
	char ref[128];          /**< a message reference to remember (Slack ts) */
	char ref_target[128];   /**< where that message is (Slack channel id) */
} so_delivery_t;

/** A message sent earlier for the same request (for updates). */
typedef struct so_message_ref {
	char *target;
	char *ref;
} so_message_ref_t;

typedef struct so_channel_ops {
	const char *name;
	/**
	 * Deliver `row`. `request` is the request as the API shows it now (NULL when the row is not
	 * about a request); `refs` are the messages already sent for it on this channel.
	 */
	void (*deliver)(so_notifier_t *n, const so_outbox_row_t *row, const json_t *request,
	                const so_message_ref_t *refs, size_t nrefs, so_delivery_t *out);
} so_channel_ops_t;

extern const so_channel_ops_t so_channel_slack;
extern const so_channel_ops_t so_channel_webhook;
extern const so_channel_ops_t so_channel_teams;

#define SO_NOTIFY_WORKERS 4

/* One delivery thread. Rows are split between workers by request (or target), so messages
 * about one request keep their order while slow chat services are called in parallel. */
struct so_notify_worker {
	struct so_notifier *n;
	unsigned index;
	so_store_t *reader;
	pthread_t thread;
	int started;
	uint64_t seen; /* the last kick it answered */
};

struct so_notifier {
	const so_notify_config_t *cfg; /* borrowed from the daemon's configuration */
	const so_directory_t *dir;
	so_writer_t *writer;
	struct so_notify_worker workers[SO_NOTIFY_WORKERS];
	pthread_mutex_t lock;
	pthread_cond_t kick;
	uint64_t kicks; /* bumped by so_notifier_kick */
	int stopping;
	/* Seals private messages in the outbox (so_notify_ephemeral_sealed): derived from a
	 * secret outside the store, so the store never holds what they say in clear, while every
	 * node that shares it can open what another sealed. */
	unsigned char seal_key[crypto_secretbox_KEYBYTES];
};

/** The text of a sealed private message, opened with the notifier's key into `out`. */
int so_notify_unseal(const so_notifier_t *n, const char *hex, char *out, size_t size);

/** POST `body` (JSON unless `content_type` says otherwise) and read the answer (bounded). */
int so_http_post(const char *url, const char *content_type, const char *const *headers,
                 const char *body, long timeout_ms, long *status, so_buf_t *answer,
                 int64_t *retry_after, char *err, size_t errlen);
/** The same with another method: "PUT" (with `body`) or "GET" (`body` NULL). */
int so_http_send(const char *method, const char *url, const char *content_type,
                 const char *const *headers, const char *body, long timeout_ms, long *status,
                 so_buf_t *answer, int64_t *retry_after, char *err, size_t errlen);

#endif
