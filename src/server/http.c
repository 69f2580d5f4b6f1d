/* libmicrohttpd glue: connection state, routing, answers, suspend/resume, start and stop. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <sodium.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "server/internal.h"

#define SWEEP_INTERVAL_MS 1000
#define IDLE_TIMEOUT_S 120
#define CONSOLE_CSP                                                                        \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "  \
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

void
reply_json(struct conn *c, unsigned status, json_t *body)
{
	free(c->resp);
	c->resp = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!c->resp) {
		c->resp = strdup("{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}");
		status = 500;
	}
	c->status = status;
	c->content_type = "application/json";
}

void
reply_error(struct conn *c, unsigned status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	reply_json(c, status, json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg));
}

void
reply_core_err(struct conn *c, const so_core_err_t *e)
{
	reply_error(c, (unsigned)e->http, e->code, "%s", e->message);
}

void
reply_store_err(struct conn *c, int rc)
{
	if (rc == SO_ENOTFOUND)
		reply_error(c, 404, "not_found", "no such request");
	else if (rc == SO_ENOMEM)
		reply_error(c, 500, "internal", "out of memory");
	else
		reply_error(c, 503, "unavailable", "the store could not record this; nothing changed");
}

static void
op_run_done(void *arg, int rc)
{
	struct conn *c = arg;
	if (rc != SO_OK) {
		/* Not committed: whatever the op prepared is void. */
		c->changed = 0;
		reply_store_err(c, rc == SO_ENOTFOUND ? SO_ESTORE : rc);
	}
	if (c->changed) {
		waiters_wake(c->srv->waiters, c->id);
		events_publish(c->srv->events, c->id,
		               c->transition >= 0 ? so_status_name((enum so_status)c->transition)
		                                  : NULL);
	}
	if (rc == SO_OK)
		so_notifier_kick(c->srv->notifier);
	if (rc == SO_OK && c->transition >= 0)
		atomic_fetch_add(&so_metrics.transitions[c->transition], 1);
	if (rc == SO_OK && c->decision_usec >= 0)
		hist_observe(&so_metrics.decision_latency, c->decision_usec);
	/* The state stays CONN_SUSPENDED: the resumed call answers, and the handler that
	 * queued the job, if it has not returned yet, still sees it suspended. Once resumed,
	 * the connection may finish and free `c` at any moment. */
	so_server_t *srv = c->srv;
	MHD_resume_connection(c->waiter.mc);
	atomic_fetch_sub(&srv->inflight, 1);
}

static int
op_nothing(so_store_t *s, void *arg)
{
	(void)s;
	(void)arg;
	return SO_OK;
}

static int
op_run(so_store_t *s, void *arg)
{
	struct conn *c = arg;
	int rc = c->op(s, c);
	if (rc == SO_OK && c->changed)
		rc = cluster_announce(c->srv, s, c->id, c->transition);
	return rc;
}

void
run_op(struct conn *c, struct MHD_Connection *mc, op_fn op)
{
	if (c->srv->audit_damaged) {
		/* No audit, no change: a damaged log cannot vouch for anything new. */
		reply_error(c, 503, "audit_damaged", "the audit log is damaged; state changes are "
		            "refused until it is restored (see the daemon log)");
		return;
	}
	c->op = op;
	c->transition = -1;
	c->decision_usec = -1;
	c->job.run = op_run;
	c->job.done = op_run_done;
	c->job.arg = c;
	c->waiter.mc = mc;
	c->state = CONN_SUSPENDED;
	atomic_fetch_add(&c->srv->inflight, 1);
	MHD_suspend_connection(mc);
	if (so_writer_submit(c->srv->writer, &c->job) != SO_OK) {
		reply_error(c, 503, "unavailable", "signoffd is shutting down");
		c->state = CONN_READY;
		MHD_resume_connection(mc);
		atomic_fetch_sub(&c->srv->inflight, 1);
	}
}

int
parse_body(struct conn *c)
{
	char msg[256];
	json_decref(c->in);
	c->in = NULL;
	if (!c->body.len) {
		reply_error(c, 400, "bad_request", "a JSON body is required");
		return -1;
	}
	int rc = so_json_parse(so_buf_cstr(&c->body), c->body.len, &c->srv->limits, &c->in, msg,
	                       sizeof(msg));
	if (rc == SO_OK && !json_is_object(c->in)) {
		reply_error(c, 400, "bad_request", "the body must be a JSON object");
		return -1;
	}
	if (rc == SO_ETOODEEP)
		reply_error(c, 400, "too_deep", "%s", msg);
	else if (rc == SO_ETOOLONG)
		reply_error(c, 400, "too_long", "%s", msg);
	else if (rc)
		reply_error(c, 400, "bad_request", "%s", msg);
	return rc ? -1 : 0;
}

/* Liveness that means it: the store answers a read. */
static void
health(struct conn *c)
{
	int64_t seq;
	char hash[65];
	so_store_t *s = readers_take(&c->srv->readers);
	int rc = s->ops->audit_head(s, &seq, hash);
	readers_give(&c->srv->readers, s);
	if (rc)
		reply_json(c, 503, json_pack("{s:s, s:s, s:s}", "status", "unavailable", "store",
		                             "not answering", "node", c->srv->node));
	else
		reply_json(c, 200, json_pack("{s:s, s:s}", "status", "ok", "node", c->srv->node));
}

/* ---- routing ---- */

typedef void (*handler_fn)(struct conn *c, struct MHD_Connection *mc);

struct route {
	const char *method;
	const char *path;   /* exact, or with one "*" segment for the request id */
	int auth;
	handler_fn fn;
};

static const struct route routes[] = {
	{"GET", "/healthz", 0, NULL},
	{"GET", "/metrics", 0, h_metrics},
	{"GET", "/v1/whoami", 1, h_whoami},
	{"POST", "/v1/requests", 1, h_submit},
	{"GET", "/v1/requests", 1, h_list_requests},
	{"GET", "/v1/requests/*", 1, h_get_request},
	{"POST", "/v1/requests/*/reviews", 1, h_review},
	{"POST", "/v1/requests/*/cancel", 1, h_cancel},
	{"POST", "/v1/requests/*/claim", 1, h_claim},
	{"POST", "/v1/requests/*/result", 1, h_result},
	{"POST", "/v1/tokens", 1, h_tokens},
	{"GET", "/v1/audit", 1, h_audit},
	{"GET", "/v1/audit/pubkey", 1, h_audit_pubkey},
	{"GET", "/v1/audit/checkpoint", 1, h_audit_checkpoint},
	{"GET", "/v1/audit/proof", 1, h_audit_proof},
	{"GET", "/v1/audit/export", 1, h_audit_export},
	{"GET", "/v1/audit/verify", 1, h_audit_verify},
	{"GET", "/v1/requests/*/explain", 1, h_explain},
	{"POST", "/v1/admin/audit/rotate-key", 1, h_audit_rotate_key},
	{"POST", "/v1/integrations/slack/interactions", 0, h_slack_interactions},
	{"POST", "/v1/integrations/teams/messages", 0, h_teams_messages},
	{"POST", "/v1/admin/policy/reload", 1, h_policy_reload},
	{"GET", "/v1/events", 1, h_events},
	{"GET", "/v1/anomaly/baseline", 1, h_anomaly_show},
	{"POST", "/v1/anomaly/score", 1, h_anomaly_score},
	{"POST", "/v1/session", 0, h_session_create},
	{"GET", "/v1/session", 1, h_session_get},
	{"DELETE", "/v1/session", 1, h_session_delete},
};

/* Match `url` against `pattern`; a "*" segment captures into id. */
static int
path_match(const char *pattern, const char *url, char id[SO_ID_LEN + 1])
{
	while (*pattern && *url) {
		if (*pattern == '*') {
			const char *end = strchr(url, '/');
			size_t n = end ? (size_t)(end - url) : strlen(url);
			if (!n || n > SO_ID_LEN)
				return 0;
			memcpy(id, url, n);
			id[n] = '\0';
			url += n;
			pattern++;
			continue;
		}
		if (*pattern != *url)
			return 0;
		pattern++;
		url++;
	}
	return !*pattern && !*url;
}

static void
dispatch(struct conn *c, struct MHD_Connection *mc, const char *method, const char *url)
{
	int path_known = 0;

	c->method = method;
	if ((!strcmp(method, "GET") || !strcmp(method, "HEAD")) && console_asset(c, url))
		return;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *r = &routes[i];
		if (!path_match(r->path, url, c->id))
			continue;
		path_known = 1;
		if (strcmp(r->method, method))
			continue;
		if (c->too_large) {
			reply_error(c, 413, "too_large", "the body is larger than %lld bytes",
			            (long long)c->srv->cfg->max_body);
			return;
		}
		if (!r->fn) {
			health(c);
			return;
		}
		if (r->auth && !(c->caller = auth_caller(c, mc)))
			return;
		r->fn(c, mc);
		return;
	}
	if (path_known)
		reply_error(c, 405, "method_not_allowed", "%s is not allowed on %s", method, url);
	else
		reply_error(c, 404, "not_found", "no such endpoint: %s", url);
}

static enum MHD_Result
send_reply(struct conn *c, struct MHD_Connection *mc)
{
	/* One answer per request: called again (a resumed connection the daemon is closing),
	 * there is nothing more to say. */
	if (c->replied)
		return MHD_NO;
	c->replied = 1;
	if (c->chat_reply_empty && c->status != 401 && c->status != 413) {
		/* Slack shows nothing for an empty 200; the answer goes out as an ephemeral message. */
		free(c->resp);
		c->resp = strdup("");
		c->status = 200;
		c->content_type = "text/plain";
	}
	if (c->teams_invoke && c->status != 401 && c->status != 413)
		teams_invoke_reply(c);
	if (!c->resp && !(c->resp = strdup("")))
		return MHD_NO;
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(strlen(c->resp), c->resp, MHD_RESPMEM_MUST_FREE);
	if (!resp)
		return MHD_NO;
	c->resp = NULL; /* the response owns it now */
	MHD_add_response_header(resp, "Content-Type",
	                        c->content_type ? c->content_type : "application/json");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	/* The console is served from here too: no script but our own files, no framing. */
	MHD_add_response_header(resp, "Content-Security-Policy", CONSOLE_CSP);
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	if (c->set_cookie[0])
		MHD_add_response_header(resp, "Set-Cookie", c->set_cookie);
	if (c->retry_after[0])
		MHD_add_response_header(resp, "Retry-After", c->retry_after);
	if (c->status == 401)
		MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"signoff\"");
	if (c->status >= 100 && c->status < 600)
		atomic_fetch_add(&so_metrics.http_by_class[c->status / 100], 1);
	enum MHD_Result ret = MHD_queue_response(mc, c->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	so_server_t *srv = cls;
	struct conn *c = *con_cls;

	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return MHD_NO;
		c->srv = srv;
		so_buf_init(&c->body, (size_t)srv->cfg->max_body);
		*con_cls = c;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!c->too_large && so_buf_add(&c->body, upload_data, *upload_data_size) != SO_OK) {
			c->too_large = 1;
			so_buf_free(&c->body);
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (c->state == CONN_SUSPENDED) {
		/* Resumed: a long-poll waiter whose request changed or whose time ran out. */
		if (c->waiting) {
			c->waiting = 0;
			finish_wait(c);
		}
		c->state = CONN_READY;
	}
	if (c->state == CONN_NEW) {
		dispatch(c, mc, method, url);
		if (c->state == CONN_SUSPENDED)
			return MHD_YES;
		c->state = CONN_READY;
		if (c->queued)
			return MHD_YES;
	}
	return send_reply(c, mc);
}

static void
on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
	struct conn *c = *con_cls;
	if (!c)
		return;
	if (c->parked)
		atomic_fetch_sub(&c->srv->parked, 1);
	so_buf_free(&c->body);
	free(c->resp);
	json_decref(c->in);
	so_request_free(c->req);
	free(c);
	*con_cls = NULL;
}

/*
 * Percent-decode a URL path or argument in place, except "%00": a NUL would cut the C string
 * MHD hands us, so "/console/app.js%00.css" would be served as app.js. Left encoded, such a
 * path matches nothing and is not found.
 */
static size_t
unescape(void *cls, struct MHD_Connection *mc, char *s)
{
	char *r = s, *w = s;

	(void)cls;
	(void)mc;
	while (*r) {
		int hi, lo;
		if (r[0] == '%' && (hi = so_hex_digit(r[1])) >= 0 && (lo = so_hex_digit(r[2])) >= 0 &&
		    (hi || lo)) {
			*w++ = (char)(hi * 16 + lo);
			r += 3;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

/* ---- sweeper: expires what is due, once a second ---- */

static void *
sweeper_main(void *arg)
{
	so_server_t *srv = arg;
	pthread_mutex_lock(&srv->sweep_lock);
	while (!srv->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += SWEEP_INTERVAL_MS / 1000;
		pthread_cond_timedwait(&srv->sweep_cond, &srv->sweep_lock, &ts);
		if (srv->stopping)
			break;
		pthread_mutex_unlock(&srv->sweep_lock);
		if (!srv->audit_damaged) {
			sweep_due(srv);
			anomaly_flush(srv);
			audit_checkpoint_maybe(srv, 0);
			audit_archive_maybe(srv);
		}
		pthread_mutex_lock(&srv->sweep_lock);
	}
	pthread_mutex_unlock(&srv->sweep_lock);
	return NULL;
}

/* ---- start and stop ---- */

static int
parse_listen(const char *listen, struct sockaddr_in *sa, char *err, size_t errlen)
{
	char host[256];
	const char *colon = strrchr(listen, ':');
	if (!colon || (size_t)(colon - listen) >= sizeof(host)) {
		snprintf(err, errlen, "server.listen '%s' must be host:port", listen);
		return SO_ECONFIG;
	}
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	char *end;
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	if (errno || *end || port < 0 || port > 65535) {
		snprintf(err, errlen, "server.listen '%s': bad port", listen);
		return SO_ECONFIG;
	}
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (!strcmp(host, "localhost"))
		snprintf(host, sizeof(host), "127.0.0.1");
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
		snprintf(err, errlen, "server.listen '%s': host must be an IPv4 address", listen);
		return SO_ECONFIG;
	}
	return SO_OK;
}

static char *
read_small_file(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	so_buf_t b;
	so_buf_init(&b, 1 << 20);
	int rc = so_buf_read_file(&b, f);
	fclose(f);
	if (rc != SO_OK || !b.len) {
		snprintf(err, errlen, "cannot read %s", path);
		so_buf_free(&b);
		return NULL;
	}
	return so_buf_steal(&b);
}

static void
raise_fd_limit(size_t want)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	setrlimit(RLIMIT_NOFILE, &rl);
}

int
so_server_start(so_config_t *cfg, so_writer_t *writer, so_audit_key_t *key,
                so_notifier_t *notifier, so_policy_loader_fn loader, void *loader_ctx,
                so_server_t **out, char *err, size_t errlen)
{
	struct sockaddr_in sa;
	int rc;
	so_server_t *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return SO_ENOMEM;
	srv->cfg = cfg;
	srv->writer = writer;
	srv->loader = loader;
	srv->loader_ctx = loader_ctx;
	srv->key = key;
	srv->notifier = notifier;
	pthread_mutex_init(&srv->policy_lock, NULL);
	pthread_mutex_init(&srv->reload_lock, NULL);
	pthread_mutex_init(&srv->audit_lock, NULL);
	if (!(srv->policy = calloc(1, sizeof(*srv->policy)))) {
		free(srv);
		return SO_ENOMEM;
	}
	srv->policy->policy = cfg->policy; /* moved: the server frees it */
	srv->policy->refs = 1;
	memset(&cfg->policy, 0, sizeof(cfg->policy));
	srv->limits.max_depth = (size_t)cfg->max_json_depth;
	srv->limits.max_string = (size_t)cfg->max_string;
	srv->limits.max_items = (size_t)cfg->max_items;
	pthread_mutex_init(&srv->sweep_lock, NULL);
	pthread_cond_init(&srv->sweep_cond, NULL);
	if ((rc = parse_listen(cfg->listen, &sa, err, errlen)))
		goto fail;
	if ((rc = readers_open(&srv->readers, cfg->store_url, (size_t)cfg->threads + 2, err, errlen)))
		goto fail;
	if ((rc = audit_tree_init(srv))) {
		snprintf(err, errlen, "cannot read the audit log to rebuild its tree: %s",
		         so_strerror(rc));
		goto fail;
	}
	if (!(srv->waiters = waiters_start()) || !(srv->events = events_start()) ||
	    !(srv->sessions = sessions_new()) || !(srv->baselines = baselines_new(cfg))) {
		rc = SO_ENOMEM;
		goto fail;
	}
	if ((rc = cluster_start(srv, &srv->cluster, err, errlen)))
		goto fail;
	if (srv->cluster) {
		anomaly_share(srv->baselines);
		so_writer_set_hooks(writer, anomaly_before_commit, anomaly_batch_end, srv->baselines);
		srv->cluster_hooks = 1;
	}
	raise_fd_limit((size_t)cfg->max_connections + 256);

	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (cfg->tls_cert_file) {
		if (!(srv->tls_cert = read_small_file(cfg->tls_cert_file, err, errlen)) ||
		    !(srv->tls_key = read_small_file(cfg->tls_key_file, err, errlen))) {
			rc = SO_EIO;
			goto fail;
		}
		flags |= MHD_USE_TLS;
	}
	struct MHD_OptionItem opts[] = {
		{MHD_OPTION_SOCK_ADDR, 0, &sa},
		{MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)cfg->threads, NULL},
		{MHD_OPTION_CONNECTION_LIMIT, (intptr_t)cfg->max_connections, NULL},
		{MHD_OPTION_CONNECTION_TIMEOUT, IDLE_TIMEOUT_S, NULL},
		{MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, srv},
		{MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)unescape, NULL},
		{MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL},
		{srv->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, srv->tls_cert},
		{MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key},
		{MHD_OPTION_END, 0, NULL},
	};
	srv->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_ARRAY, opts,
	                            MHD_OPTION_END);
	if (!srv->mhd) {
		snprintf(err, errlen, "cannot listen on %s (address in use, or not allowed)",
		         cfg->listen);
		rc = SO_EIO;
		goto fail;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = info ? info->port : ntohs(sa.sin_port);
	if (pthread_create(&srv->sweeper, NULL, sweeper_main, srv)) {
		rc = SO_ENOMEM;
		goto fail;
	}
	srv->sweeper_started = 1;
	*out = srv;
	return SO_OK;
fail:
	so_server_stop(srv);
	return rc;
}

uint16_t
so_server_port(const so_server_t *s)
{
	return s->port;
}

int
so_server_audit_damaged(const so_server_t *s)
{
	return s->audit_damaged;
}

void
so_server_detach_notifier(so_server_t *s)
{
	s->notifier = NULL;
}

void
so_server_stop(so_server_t *srv)
{
	if (!srv)
		return;
	pthread_mutex_lock(&srv->sweep_lock);
	srv->stopping = 1;
	pthread_cond_signal(&srv->sweep_cond);
	pthread_mutex_unlock(&srv->sweep_lock);
	if (srv->sweeper_started)
		pthread_join(srv->sweeper, NULL);
	cluster_stop(srv->cluster); /* nothing from other nodes wakes anything from here on */
	srv->cluster = NULL;
	if (srv->mhd)
		MHD_quiesce_daemon(srv->mhd);
	/* Suspended connections must be resumed before the daemon stops: release the
	 * long-polls and let them answer, and let changes already queued commit and
	 * answer (bounded: 30 s at most). */
	if (srv->waiters)
		waiters_stop(srv->waiters);
	if (srv->events)
		events_stop(srv->events);
	for (int i = 0; i < 3000 && (atomic_load(&srv->inflight) > 0 || atomic_load(&srv->parked) > 0 ||
	                             (srv->events && events_count(srv->events) > 0));
	     i++)
		usleep(10000);
	/* Keep what was learned, and sign what is unsigned, so a clean stop leaves the whole log
	 * under a checkpoint. */
	if (srv->sweeper_started && !srv->audit_damaged)
		anomaly_flush(srv);
	if (srv->sweeper_started)
		audit_checkpoint_maybe(srv, 1);
	if (srv->mhd)
		MHD_stop_daemon(srv->mhd);
	if (srv->waiters) {
		waiters_free(srv->waiters);
		srv->waiters = NULL;
	}
	events_free(srv->events);
	sessions_free(srv->sessions);
	if (srv->cluster_hooks) {
		/* a batch that began with the hooks ends before the empty job after it runs */
		so_writer_set_hooks(srv->writer, NULL, NULL, NULL);
		so_writer_run(srv->writer, op_nothing, NULL);
	}
	baselines_free(srv->baselines);
	readers_close(&srv->readers);
	pthread_mutex_destroy(&srv->sweep_lock);
	pthread_cond_destroy(&srv->sweep_cond);
	if (srv->policy)
		policy_release(srv->policy);
	teams_free(srv);
	pthread_mutex_destroy(&srv->policy_lock);
	pthread_mutex_destroy(&srv->reload_lock);
	pthread_mutex_destroy(&srv->audit_lock);
	free(srv->tls_cert);
	if (srv->tls_key) {
		sodium_memzero(srv->tls_key, strlen(srv->tls_key));
		free(srv->tls_key);
	}
	free(srv);
}
