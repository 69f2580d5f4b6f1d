/*
 * Internal to src/server: the server struct, per-connection state, and the pieces
 * (auth, readers, waiters, metrics, handlers) that the files share.
 */
#ifndef SO_SERVER_INTERNAL_H
#define SO_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <jansson.h>
#include <microhttpd.h>

#include "audit/audit.h"
#include "audit/log.h"
#include "audit/merkle.h"
#include "common/buf.h"
#include "common/json.h"
#include "core/core.h"
#include "server/server.h"
#include "store/store.h"
#include "store/writer.h"

/* ---- read connections ---- */

struct readers {
	pthread_mutex_t lock;
	pthread_cond_t freed;
	so_store_t **free_list;
	size_t nfree, total;
};

int readers_open(struct readers *r, const char *url, size_t n, char *err, size_t errlen);
so_store_t *readers_take(struct readers *r);
void readers_give(struct readers *r, so_store_t *s);
void readers_close(struct readers *r);

/* ---- long-poll waiters ---- */

struct waiter {
	char id[SO_ID_LEN + 1];
	int64_t deadline;        /* monotonic ms */
	size_t heap_index;
	struct waiter *next, *prev; /* bucket list */
	struct MHD_Connection *mc;
	int registered;
};

struct waiters;
struct waiters *waiters_start(void);
/** Register `w` (already suspended) for `id` until `deadline`. */
void waiters_add(struct waiters *ws, struct waiter *w);
/** Resume every waiter on `id`. */
void waiters_wake(struct waiters *ws, const char *id);
/** Unregister `w` and resume it if it was still waiting. */
void waiters_cancel(struct waiters *ws, struct waiter *w);
size_t waiters_count(struct waiters *ws);
/** Copy the ids long-polls wait on (at most `max`, one per waiter) into `ids`; returns how many. */
size_t waiters_ids(struct waiters *ws, char (*ids)[SO_ID_LEN + 1], size_t max);
/** Resume everyone and stop the timer thread; later adds resume at once. */
void waiters_stop(struct waiters *ws);
/** Free after waiters_stop() once nothing can call waiters_wake() any more. */
void waiters_free(struct waiters *ws);

/* ---- Server-Sent Events (events.c) ---- */

struct events;
struct events *events_start(void);
/** Tell every subscriber that request `id` changed (`status`: its new status, or NULL). */
void events_publish(struct events *ev, const char *id, const char *status);
size_t events_count(struct events *ev);
/** End every stream and stop the heartbeat; call before stopping the HTTP daemon. */
void events_stop(struct events *ev);
/** Free after the HTTP daemon has stopped (its streams' free callbacks use `ev`). */
void events_free(struct events *ev);

/* ---- several nodes on one shared store (cluster.c) ---- */

struct cluster;
/**
 * Name this node (srv->node) and, when the store is shared, listen for the other nodes'
 * changes. `*out` stays NULL for a store only this process uses.
 */
int cluster_start(so_server_t *srv, struct cluster **out, char *err, size_t errlen);
void cluster_stop(struct cluster *cl);
/** In a change's transaction: tell the other nodes that request `id` changed (`status`: its
 * new status, or -1). Nothing for a store only this process uses. */
int cluster_announce(so_server_t *srv, so_store_t *s, const char *id, int status);

/* ---- console sessions (console.c) ---- */

#define SO_SESSION_COOKIE "signoff_session"

struct conn;
struct sessions;
struct sessions *sessions_new(void);
void sessions_free(struct sessions *ss);
/**
 * Authenticate by the session cookie `cookie`: the principal, with c->by_session and c->csrf
 * set; NULL with an error reply (401, or 403 csrf for a change without the CSRF header).
 */
const so_principal_t *session_caller(struct conn *c, struct MHD_Connection *mc,
                                     const char *cookie);
/** Serve a console file for GET `url`, if it is one; returns 1 when it answered. */
int console_asset(struct conn *c, const char *url);
/**
 * In a change's transaction: a one-time sign-in link for `who` (a chat click asked for it):
 * `token` gets 64 hex. It works once, within SO_LINK_TTL_MS, on any node.
 */
int session_link_new(so_store_t *s, const so_principal_t *who, char token[65]);
#define SO_LINK_TTL_MS (5LL * 60 * 1000)
void h_session_create(struct conn *c, struct MHD_Connection *mc);
void h_session_get(struct conn *c, struct MHD_Connection *mc);
void h_session_delete(struct conn *c, struct MHD_Connection *mc);

/* ---- anomaly scoring (anomaly.c) ---- */

struct baselines;
struct baselines *baselines_new(const so_config_t *cfg);
void baselines_free(struct baselines *bl);
/** Before the policy (HTTP thread): set r->anomaly from the requester's baseline; count it. */
void anomaly_score_request(so_server_t *srv, so_request_t *r, int64_t now);
/** In the submit's transaction: learn it when policy allowed it as it is; save. */
int anomaly_after_submit(so_server_t *srv, so_store_t *s, const so_request_t *r);
/** In the review's transaction, when people approved `r`: learn it. */
int anomaly_after_approval(so_server_t *srv, so_store_t *s, const so_request_t *r);
/** The store is shared with other nodes: count and learn in the writer, batch by batch,
 * with these two as the writer's batch hooks. */
void anomaly_share(struct baselines *bl);
int anomaly_before_commit(so_store_t *s, void *ctx);
void anomaly_batch_end(void *ctx, int committed);
/** Save every baseline changed since its last save (sweeper thread; at stop). */
void anomaly_flush(so_server_t *srv);
void h_anomaly_show(struct conn *c, struct MHD_Connection *mc);
void h_anomaly_score(struct conn *c, struct MHD_Connection *mc);

/* ---- metrics ---- */

#define HIST_BUCKETS 12
struct histogram {
	_Atomic uint64_t bucket[HIST_BUCKETS + 1]; /* last = +Inf */
	_Atomic uint64_t count;
	_Atomic uint64_t sum_usec;
};
extern const double so_hist_bounds[HIST_BUCKETS]; /* seconds */
void hist_observe(struct histogram *h, int64_t usec);

struct metrics {
	struct histogram decision_latency;
	struct histogram commit_latency;
	_Atomic uint64_t commits, committed_changes;
	_Atomic uint64_t http_by_class[6]; /* 1xx..5xx */
	_Atomic uint64_t submitted;
	_Atomic uint64_t transitions[SO_ST__COUNT];
};
extern struct metrics so_metrics;
void metrics_render(so_server_t *srv, so_buf_t *out);

/* ---- the policy in force, replaced whole on reload ---- */

struct policy_ref {
	so_policy_t policy;
	_Atomic int refs;
};

/** The policy in force, held until policy_release(): one policy per decision, never a mix. */
struct policy_ref *policy_acquire(so_server_t *srv);
void policy_release(struct policy_ref *ref);

/* ---- the server ---- */

struct so_server {
	so_config_t *cfg;
	so_writer_t *writer;
	struct readers readers;
	struct waiters *waiters;
	struct events *events;
	struct sessions *sessions;
	struct baselines *baselines;
	struct cluster *cluster;     /* NULL unless the store is shared with other nodes */
	int cluster_hooks;           /* the writer's batch hooks are anomaly's (shared store) */
	char node[13];               /* this process's name among the nodes (random at start) */
	struct MHD_Daemon *mhd;
	uint16_t port;
	so_json_limits_t limits;
	char *tls_cert, *tls_key;
	pthread_t sweeper;
	pthread_mutex_t sweep_lock;
	pthread_cond_t sweep_cond;
	int stopping;
	int sweeper_started;
	_Atomic int inflight; /* changes queued in the writer with a suspended connection */
	_Atomic int parked;   /* long-poll requests not yet answered and completed */
	pthread_mutex_t policy_lock;
	struct policy_ref *policy;
	pthread_mutex_t reload_lock; /* one reload at a time */
	so_policy_loader_fn loader;
	void *loader_ctx;
	/* the audit tree and signing key, under audit_lock (checkpoints, key rotation) */
	pthread_mutex_t audit_lock;
	so_audit_key_t *key;
	so_merkle_frontier_t tree;   /* every committed event */
	uint64_t checkpointed;       /* size of the latest checkpoint */
	int64_t last_checkpoint_at;  /* monotonic ms */
	char rotated_to[SO_KEY_ID_LEN + 1]; /* key id named by the last audit.key_rotated */
	unsigned char first_pk[32];  /* the key before the first rotation ... */
	int has_first_pk;            /* ... when there was one */
	int64_t last_archive_check;  /* monotonic ms; sweeper thread only */
	int audit_damaged;           /* set at start: changes are refused (fail closed) */
	so_notifier_t *notifier;     /* borrowed; NULL when nothing is configured */
	struct so_jwks *teams_keys;    /* Bot Framework signing keys (teams.c), made on first use */
};


enum conn_state { CONN_NEW, CONN_SUSPENDED, CONN_READY };

struct conn;
/* A state change run by the writer: fills conn->status/resp, returns a store result. */
typedef int (*op_fn)(so_store_t *s, struct conn *c);
/* One verb applied to a loaded request (review, cancel, claim, result); names its event. */
typedef int (*apply_fn)(struct conn *c, so_request_t *r, int64_t now, so_core_err_t *e,
                        const char **event, json_t **data);

struct conn {
	so_server_t *srv;
	so_buf_t body;
	int too_large;
	enum conn_state state;
	int waiting; /* suspended as a long-poll waiter */
	int queued;  /* the handler queued its own response (a stream) */
	int replied; /* send_reply ran: the one answer is out (or failed) */
	int parked;  /* counted in srv->parked until the request completes */
	const char *method;      /* the HTTP method, for the CSRF rule */
	int by_session;          /* authenticated by the console's session cookie */
	char csrf[65];           /* that session's CSRF token */
	char session_hash[65];   /* that session's key in the store (its cookie's SHA-256) */
	int64_t session_expires; /* when that session ends (wall-clock ms) */
	char set_cookie[256];    /* a Set-Cookie header for the answer, or "" */
	char retry_after[24];    /* a Retry-After header for the answer, or "" */
	char client_addr[48];    /* the caller's address, for sign-in events */
	const char *refusal;     /* why a sign-in was refused, for its audit event */
	const char *signin_via;  /* "token" or "link" */
	const char *channel;     /* where a review came from: api (default), slack, teams */
	char chat_where[64];     /* for a refused chat click: the channel id ... */
	char chat_user[64];      /* ... and the chat user to answer privately */
	char chat_trigger[128];  /* Slack's trigger_id, to open a form */
	int chat_reply_empty;    /* answer 200 with an empty body whatever happened (Slack) */
	int teams_invoke;        /* answer the Teams invoke with the refreshed card (teams.c) */
	/* the answer, once known */
	unsigned status;
	char *resp; /* malloc'd JSON or text */
	const char *content_type;
	/* the call */
	const so_principal_t *caller;
	char id[SO_ID_LEN + 1];
	json_t *in;  /* parsed body, owned */
	op_fn op;
	apply_fn apply;
	so_request_t *req; /* for submit, owned */
	int changed; /* the op changed request `id`: wake its waiters */
	int transition; /* new status to count once committed, or -1 */
	int64_t decision_usec; /* submit-to-decision time to observe once committed, or -1 */
	so_job_t job;
	struct waiter waiter;
};

/* Answers: set c->status and c->resp. */
void reply_json(struct conn *c, unsigned status, json_t *body); /* steals body */
void reply_error(struct conn *c, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void reply_core_err(struct conn *c, const so_core_err_t *e);
void reply_store_err(struct conn *c, int rc);

/** Suspend `c` and run `op` in the writer; the answer is sent when it has committed. */
void run_op(struct conn *c, struct MHD_Connection *mc, op_fn op);

/**
 * Authenticate the bearer token (or, without one, the console's session cookie); NULL with
 * an error reply set when it fails.
 */
const so_principal_t *auth_caller(struct conn *c, struct MHD_Connection *mc);
/**
 * The principal whose token is `token` (any text): SO_OK with `*out` set, SO_ENOTFOUND, or
 * SO_ESTORE when the store cannot say. Compares every configured hash in constant time.
 */
int principal_for_token(so_server_t *srv, const char *token, const so_principal_t **out);
int is_admin(const so_server_t *s, const so_principal_t *p);
int is_auditor(const so_server_t *s, const so_principal_t *p);

/** Parse c->body into c->in with the server's limits; replies 400 and returns -1 on error. */
int parse_body(struct conn *c);

/* Handlers: each either replies (c->resp set) or suspends with run_op()/a waiter. */
void h_submit(struct conn *c, struct MHD_Connection *mc);
void h_get_request(struct conn *c, struct MHD_Connection *mc);
void h_list_requests(struct conn *c, struct MHD_Connection *mc);
void h_review(struct conn *c, struct MHD_Connection *mc);
void h_cancel(struct conn *c, struct MHD_Connection *mc);
void h_claim(struct conn *c, struct MHD_Connection *mc);
void h_result(struct conn *c, struct MHD_Connection *mc);
void h_tokens(struct conn *c, struct MHD_Connection *mc);
void h_audit(struct conn *c, struct MHD_Connection *mc);
void h_whoami(struct conn *c, struct MHD_Connection *mc);
void h_metrics(struct conn *c, struct MHD_Connection *mc);
void h_policy_reload(struct conn *c, struct MHD_Connection *mc);
void h_events(struct conn *c, struct MHD_Connection *mc);

/* The audit API (audit_api.c). */
void h_audit_pubkey(struct conn *c, struct MHD_Connection *mc);
void h_audit_checkpoint(struct conn *c, struct MHD_Connection *mc);
void h_audit_proof(struct conn *c, struct MHD_Connection *mc);
void h_audit_export(struct conn *c, struct MHD_Connection *mc);
void h_audit_verify(struct conn *c, struct MHD_Connection *mc);
void h_explain(struct conn *c, struct MHD_Connection *mc);
void h_audit_rotate_key(struct conn *c, struct MHD_Connection *mc);
void h_slack_interactions(struct conn *c, struct MHD_Connection *mc);
void h_teams_messages(struct conn *c, struct MHD_Connection *mc);
/** For c->teams_invoke: turn the answer (the request, or an error) into the invoke response
 * carrying the refreshed Adaptive Card, always HTTP 200. */
void teams_invoke_reply(struct conn *c);
/** Free what teams.c made for the server (at stop). */
void teams_free(so_server_t *srv);
/** Apply a review (decision "approve" or "deny" in c->in) to request c->id through the
 * writer, exactly as the API does; c->caller, c->channel say who and where. */
void review_request(struct conn *c, struct MHD_Connection *mc);
/** The public key in force, copied under the lock. */
void audit_public_key(so_server_t *srv, unsigned char pk[32]);
/** Build the tree from the stored events (at start). */
int audit_tree_init(so_server_t *srv);
/** Sign a checkpoint when enough events or time have gone by (or now, with `force`). */
void audit_checkpoint_maybe(so_server_t *srv, int force);
/** Archive events older than audit.retention (sweeper thread; checks once a minute). */
void audit_archive_maybe(so_server_t *srv);
/** Verify the whole stored log with the server's key. */
int audit_verify_store(so_server_t *srv, so_audit_verify_result_t *out);

/** Answer for a resumed long-poll: re-read request c->id and reply with it. */
void finish_wait(struct conn *c);

/** Expire what is due; called by the sweeper thread. */
void sweep_due(so_server_t *srv);

#endif
