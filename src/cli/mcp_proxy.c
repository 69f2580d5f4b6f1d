/**
 * `signoff mcp-proxy -- SERVER_CMD ARGS...`: a stdio MCP server that is really the real one
 * behind a gate. Messages are relayed both ways unchanged, line by line, except `tools/call`:
 * each becomes a signoff request and reaches the server only once approved and claimed.
 *
 * Threads: the main thread reads the client (our stdin) and forwards; one thread reads the
 * server's stdout and relays it; each gated call has a thread of its own that waits on the
 * gate with its own client, so a call waiting for a person never holds up the others.
 *
 * Owns: the server process and its pipes, the table of requests in flight to the server and
 * the list of gated calls, all under `lock`. Our stdout and the server's stdin each have a
 * lock of their own, so every message goes out whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/mcp.h"
#include "cli/cli.h"
#include "common/json.h"

/** Gated calls that may wait for approval at once; more are refused with a tool error. */
#define MAX_GATED 64
/** Requests in flight to the server at once; more are refused with a JSON-RPC error. */
#define MAX_INFLIGHT 10000
/** JSON-RPC error code for "the server is gone" (implementation-defined range). */
#define ERR_SERVER_GONE (-32000)
/** Bounds on shutting down: the server's exit after its stdin closes, the gated calls. */
#define SERVER_EXIT_SECONDS 5
#define JOBS_EXIT_SECONDS 15

/** Why a gated call stopped waiting. */
enum stop { STOP_NONE, STOP_CANCELLED, STOP_SHUTDOWN, STOP_SERVER_GONE };

struct proxy;

/** One gated tools/call, from the client's line to the server's answer. */
struct job {
	struct proxy *p;
	json_t *id;         /**< owned copy of the JSON-RPC id */
	char *line;         /**< owned: the client's message, forwarded as it came */
	size_t len;
	json_t *action;     /**< owned */
	json_t *context;    /**< owned */
	char *intent;       /**< owned */
	atomic_int stop;    /**< enum stop */
	bool forwarded;     /**< under lock: sent to the server */
	bool answered;      /**< under lock: the server answered */
	bool failed;        /**< under lock: the answer was an error or isError */
	struct job *next;
};

/** A request forwarded to the server and not yet answered. */
struct inflight {
	json_t *id;         /**< owned copy */
	struct job *job;    /**< the gated call it belongs to, or NULL */
	struct inflight *next;
};

struct proxy {
	struct cli *cli;
	const char *name;        /**< the server's name in actions */
	const char *environment; /**< may be NULL */
	const char *on_behalf_of;
	long timeout;            /**< seconds a call may wait; 0: until the request expires */
	pid_t server;
	int to_server;           /**< the server's stdin; -1 once closed */
	int from_server;         /**< the server's stdout */
	int wake[2];             /**< the reader tells the main loop the server's stdout ended */
	pthread_mutex_t out_lock;
	pthread_mutex_t in_lock;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct inflight *inflight;
	size_t n_inflight;
	struct job *jobs;
	size_t n_jobs;
	bool server_gone;        /**< under lock */
	bool client_gone;        /**< under lock: writing to our stdout failed */
	json_t *client_info;     /**< main thread only: from initialize, for the intent */
};

static volatile sig_atomic_t proxy_signal;

static void
on_signal(int signo)
{
	proxy_signal = signo;
}

static long
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec;
}

static void
log_line(const struct proxy *p, const char *what)
{
	fprintf(stderr, "signoff mcp-proxy (%s): ", p->name);
	cli_put_safe(stderr, what);
	fputc('\n', stderr);
}

/* ---- writing whole lines ---- */

static int
write_line(int fd, const char *line, size_t len)
{
	struct iovec iov[2] = {{(void *)line, len}, {"\n", 1}};
	int i = 0;

	while (i < 2) {
		ssize_t n = writev(fd, iov + i, 2 - i);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (i < 2 && (size_t)n >= iov[i].iov_len) {
			n -= (ssize_t)iov[i].iov_len;
			i++;
		}
		if (i < 2) {
			iov[i].iov_base = (char *)iov[i].iov_base + n;
			iov[i].iov_len -= (size_t)n;
		}
	}
	return 0;
}

/** Send one line to the client; a failure means it is gone. */
static void
to_client(struct proxy *p, const char *line, size_t len)
{
	int rc;

	pthread_mutex_lock(&p->out_lock);
	rc = write_line(STDOUT_FILENO, line, len);
	pthread_mutex_unlock(&p->out_lock);
	if (rc != 0) {
		pthread_mutex_lock(&p->lock);
		if (!p->client_gone) {
			p->client_gone = true;
			if (p->wake[1] >= 0 && write(p->wake[1], "c", 1) < 0) {
				/* the main loop also sees stdin end */
			}
		}
		pthread_mutex_unlock(&p->lock);
	}
}

/** Send a line we built (freed here); NULL (out of memory) sends nothing. */
static void
to_client_owned(struct proxy *p, char *line)
{
	if (line != NULL)
		to_client(p, line, strlen(line));
	free(line);
}

static int
to_server(struct proxy *p, const char *line, size_t len)
{
	int rc = -1;

	pthread_mutex_lock(&p->in_lock);
	if (p->to_server >= 0)
		rc = write_line(p->to_server, line, len);
	pthread_mutex_unlock(&p->in_lock);
	return rc;
}

/* ---- requests in flight (under lock) ---- */

static struct inflight **
inflight_find(struct proxy *p, const json_t *id)
{
	struct inflight **at;

	for (at = &p->inflight; *at != NULL; at = &(*at)->next) {
		if (json_equal((*at)->id, (json_t *)id))
			return at;
	}
	return NULL;
}

static struct job *
job_find(struct proxy *p, const json_t *id)
{
	struct job *j;

	for (j = p->jobs; j != NULL; j = j->next) {
		if (json_equal(j->id, (json_t *)id))
			return j;
	}
	return NULL;
}

/** Track a request sent to the server. Returns 0, or -1 if the id is in use or too many. */
static int
inflight_add(struct proxy *p, const json_t *id, struct job *job)
{
	struct inflight *e;

	if (p->n_inflight >= MAX_INFLIGHT || inflight_find(p, id) != NULL)
		return -1;
	e = calloc(1, sizeof(*e));
	if (e == NULL || (e->id = json_copy((json_t *)id)) == NULL) {
		free(e);
		return -1;
	}
	e->job = job;
	e->next = p->inflight;
	p->inflight = e;
	p->n_inflight++;
	return 0;
}

static void
inflight_remove(struct proxy *p, struct inflight **at)
{
	struct inflight *e = *at;

	*at = e->next;
	p->n_inflight--;
	json_decref(e->id);
	free(e);
}

/* ---- one gated call ---- */

static void
job_free(struct job *j)
{
	json_decref(j->id);
	json_decref(j->action);
	json_decref(j->context);
	free(j->intent);
	free(j->line);
	free(j);
}

/** Leave the list of gated calls; the last one out wakes a waiting shutdown. */
static void
job_done(struct job *j)
{
	struct proxy *p = j->p;
	struct job **at;

	pthread_mutex_lock(&p->lock);
	for (at = &p->jobs; *at != NULL; at = &(*at)->next) {
		if (*at == j) {
			*at = j->next;
			p->n_jobs--;
			break;
		}
	}
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
	job_free(j);
}

static int
job_should_stop(void *arg)
{
	struct job *j = arg;
	return atomic_load(&j->stop) != STOP_NONE;
}

/** Answer the client with a tool error that names the request; the model reads it. */
static void
refuse(struct job *j, const char *request_id, const char *reason)
{
	char text[SO_CLIENT_MESSAGE_MAX + 256];

	snprintf(text, sizeof(text), "signoff%s%s: %s; the tool was not called",
	         request_id[0] != '\0' ? " " : "", request_id, reason);
	text[so_utf8_prefix(text, strlen(text))] = '\0';
	to_client_owned(j->p, mcp_tool_error_line(j->id, text));
}

/** After the claim: send the call to the server, wait for its answer, report the result. */
static void
forward_and_report(struct job *j, so_client_t *client, const char *request_id)
{
	struct proxy *p = j->p;
	struct inflight **at;
	const char *detail = NULL;
	bool sent = false, failed = true, stopped;

	pthread_mutex_lock(&p->lock);
	stopped = atomic_load(&j->stop) != STOP_NONE;
	if (!stopped && !p->server_gone && inflight_add(p, j->id, j) == 0)
		sent = j->forwarded = true;
	pthread_mutex_unlock(&p->lock);
	if (stopped) {
		/* Cancelled (or the client left) between the approval and now: not called. */
		so_client_result(client, request_id, 1, "not delivered: cancelled before it was sent",
		                 NULL, NULL);
		return;
	}
	if (sent && to_server(p, j->line, j->len) != 0) {
		pthread_mutex_lock(&p->lock);
		if ((at = inflight_find(p, j->id)) != NULL)
			inflight_remove(p, at);
		j->forwarded = sent = false;
		pthread_mutex_unlock(&p->lock);
	}
	if (!sent) {
		to_client_owned(p, mcp_error_line(j->id, ERR_SERVER_GONE,
		                                  "the MCP server is gone; the tool was not called"));
		so_client_result(client, request_id, 1, "not delivered: the MCP server is gone", NULL,
		                 NULL);
		return;
	}

	pthread_mutex_lock(&p->lock);
	while (!j->answered && !p->server_gone)
		pthread_cond_wait(&p->changed, &p->lock);
	if (j->answered) {
		failed = j->failed;
		detail = failed ? "the tool answered with an error" : "the tool answered";
	}
	pthread_mutex_unlock(&p->lock);
	if (detail == NULL) /* the main thread answers the client when the server is gone */
		detail = "the MCP server exited before answering";
	so_client_result(client, request_id, failed ? 1 : 0, detail, NULL, NULL);
}

static void *
job_run(void *arg)
{
	struct job *j = arg;
	struct proxy *p = j->p;
	so_client_t *client = NULL;
	so_client_submit_t sub;
	so_client_gate_opts_t opts;
	so_client_gate_t gate = {0};
	so_client_error_t err;
	char reason[SO_CLIENT_MESSAGE_MAX + 128];
	int rc;

	rc = so_client_new(p->cli->url, p->cli->token, CLI_CALL_TIMEOUT_MS, &client);
	if (rc != SO_CLIENT_OK) {
		refuse(j, "", "cannot create a client for the daemon");
		goto out;
	}
	memset(&sub, 0, sizeof(sub));
	sub.action = j->action;
	sub.context = j->context;
	sub.intent = j->intent;
	sub.on_behalf_of = p->on_behalf_of;
	memset(&opts, 0, sizeof(opts));
	opts.timeout_seconds = p->timeout;
	opts.should_stop = job_should_stop;
	opts.arg = j;
	rc = so_client_gate(client, &sub, &opts, &gate, NULL, &err);
	if (rc != SO_CLIENT_OK) {
		if (rc == SO_CLIENT_EUNREACHABLE)
			snprintf(reason, sizeof(reason), "daemon unreachable at %.200s (%.200s); "
			         "blocked (fail closed)", p->cli->url, err.message);
		else
			snprintf(reason, sizeof(reason), "%.300s; blocked (fail closed)",
			         err.message[0] != '\0' ? err.message : so_client_strerror(rc));
		refuse(j, gate.id, reason);
		goto out;
	}
	switch (gate.verdict) {
	case SO_CLIENT_PROCEED:
		forward_and_report(j, client, gate.id);
		break;
	case SO_CLIENT_STOPPED:
		/* Cancelled by the client or the client left: no answer is due. */
		if (atomic_load(&j->stop) == STOP_SERVER_GONE)
			to_client_owned(p, mcp_error_line(j->id, ERR_SERVER_GONE,
			                                  "the MCP server exited; the tool was not called"));
		break;
	default: /* denied, expired, cancelled elsewhere, timed out */
		refuse(j, gate.id, gate.reason);
		break;
	}
out:
	so_client_free(client);
	job_done(j);
	return NULL;
}

/** The intent shown to reviewers: which client calls which tool where. */
static char *
call_intent(const struct proxy *p, const char *tool)
{
	const char *client = so_json_str(p->client_info, "name", "an MCP client");
	char text[600];

	snprintf(text, sizeof(text), "%.200s calls the tool %.200s of the MCP server %.150s",
	         client, tool, p->name);
	text[so_utf8_prefix(text, strlen(text))] = '\0';
	return strdup(text);
}

/** A tools/call from the client: check it, then gate it on a thread of its own. */
static void
start_job(struct proxy *p, const mcp_message_t *m, const char *line, size_t len)
{
	const json_t *params = json_object_get(m->msg, "params");
	const char *tool = so_json_str(params, "name", NULL);
	json_t *arguments = json_object_get(params, "arguments");
	struct job *j;
	pthread_attr_t attr;
	pthread_t thread;
	bool busy;

	if (tool == NULL || (arguments != NULL && !json_is_object(arguments))) {
		to_client_owned(p, mcp_error_line(m->id, -32602, "Invalid params: tools/call needs "
		                                  "a tool name and an arguments object"));
		return;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		goto nomem;
	j->p = p;
	j->id = json_copy(m->id);
	j->line = malloc(len);
	j->len = len;
	/* "o" takes the reference, even when json_pack fails */
	j->action = json_pack("{s:s,s:s,s:s,s:o}", "kind", "mcp.tool", "server", p->name, "tool",
	                      tool, "arguments",
	                      arguments != NULL ? json_incref(arguments) : json_object());
	j->context = json_pack("{s:s,s:s}", "agent", "mcp-proxy", "server", p->name);
	j->intent = call_intent(p, tool);
	if (j->id == NULL || j->line == NULL || j->action == NULL || j->context == NULL ||
	    j->intent == NULL)
		goto nomem;
	memcpy(j->line, line, len);
	if (p->environment != NULL &&
	    json_object_set_new(j->action, "environment", json_string(p->environment)) != 0)
		goto nomem;
	if (p->client_info != NULL)
		json_object_set(j->context, "client", p->client_info);

	pthread_mutex_lock(&p->lock);
	busy = p->n_jobs >= MAX_GATED || job_find(p, m->id) != NULL || inflight_find(p, m->id);
	if (!busy) {
		j->next = p->jobs;
		p->jobs = j;
		p->n_jobs++;
	}
	pthread_mutex_unlock(&p->lock);
	if (busy) {
		to_client_owned(p, mcp_error_line(m->id, -32600, "Invalid Request: the id is in use, "
		                                  "or too many calls wait for approval"));
		job_free(j);
		return;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&thread, &attr, job_run, j) != 0) {
		pthread_attr_destroy(&attr);
		refuse(j, "", "cannot start a thread for the call");
		job_done(j);
		return;
	}
	pthread_attr_destroy(&attr);
	return;
nomem:
	if (j != NULL)
		job_free(j);
	to_client_owned(p, mcp_error_line(m->id, -32603, "Internal error: out of memory"));
}

/* ---- the client's messages ---- */

/** notifications/cancelled: a call still waiting for approval is stopped here. */
static bool
cancel_waiting(struct proxy *p, const mcp_message_t *m)
{
	const json_t *target = json_object_get(json_object_get(m->msg, "params"), "requestId");
	struct job *j;
	bool caught = false;

	if (target == NULL)
		return false;
	pthread_mutex_lock(&p->lock);
	j = job_find(p, target);
	if (j != NULL && !j->forwarded) {
		atomic_store(&j->stop, STOP_CANCELLED);
		caught = true;
	}
	pthread_mutex_unlock(&p->lock);
	return caught;
}

/** A request the server is to answer: track it, then forward it. */
static void
forward_request(struct proxy *p, const mcp_message_t *m, const char *line, size_t len)
{
	int rc;

	if (strcmp(m->method, "initialize") == 0) {
		json_t *info = json_object_get(json_object_get(m->msg, "params"), "clientInfo");
		if (json_is_object(info)) {
			json_decref(p->client_info);
			p->client_info = json_deep_copy(info);
		}
	}
	pthread_mutex_lock(&p->lock);
	if (p->server_gone)
		rc = 1;
	else if (job_find(p, m->id) != NULL) /* a gated call with this id is still waiting */
		rc = -1;
	else
		rc = inflight_add(p, m->id, NULL);
	pthread_mutex_unlock(&p->lock);
	if (rc < 0) {
		to_client_owned(p, mcp_error_line(m->id, -32600, "Invalid Request: the id is in use, "
		                                  "or too many requests are in flight"));
		return;
	}
	if (rc > 0 || to_server(p, line, len) != 0) {
		struct inflight **at;
		pthread_mutex_lock(&p->lock);
		if ((at = inflight_find(p, m->id)) != NULL)
			inflight_remove(p, at);
		pthread_mutex_unlock(&p->lock);
		to_client_owned(p, mcp_error_line(m->id, ERR_SERVER_GONE, "the MCP server is gone"));
	}
}

static int
on_client_line(const char *line, size_t len, bool too_long, void *arg)
{
	struct proxy *p = arg;
	mcp_message_t m;

	if (too_long) {
		to_client_owned(p, mcp_error_line(NULL, -32600, "Invalid Request: a message over "
		                                  "16 MiB; it was not relayed"));
		return 0;
	}
	mcp_parse(line, len, &m);
	switch (m.kind) {
	case MCP_INVALID:
		to_client_owned(p, mcp_error_line(m.error_code == -32700 ? NULL : m.id, m.error_code,
		                                  m.error));
		break;
	case MCP_REQUEST:
		if (strcmp(m.method, "tools/call") == 0)
			start_job(p, &m, line, len);
		else
			forward_request(p, &m, line, len);
		break;
	case MCP_NOTIFICATION:
		if (strcmp(m.method, "tools/call") == 0) {
			/* A call without an id is not valid JSON-RPC, and must never pass ungated. */
			log_line(p, "dropped a tools/call sent as a notification (no id)");
			break;
		}
		if (strcmp(m.method, "notifications/cancelled") == 0 && cancel_waiting(p, &m))
			break; /* the server never saw that call */
		if (to_server(p, line, len) != 0)
			log_line(p, "the MCP server is gone; a notification was dropped");
		break;
	case MCP_RESPONSE: /* to a request the server made */
		if (to_server(p, line, len) != 0)
			log_line(p, "the MCP server is gone; a response was dropped");
		break;
	}
	mcp_message_free(&m);
	return 0;
}

/* ---- the server's messages ---- */

static int
on_server_line(const char *line, size_t len, bool too_long, void *arg)
{
	struct proxy *p = arg;
	struct inflight **at;
	mcp_message_t m;

	if (too_long) {
		log_line(p, "the MCP server sent a message over 16 MiB; it was dropped");
		return 0;
	}
	/* Parse before relaying: once the client has the answer it may reuse the id. */
	mcp_parse(line, len, &m);
	if (m.kind == MCP_RESPONSE) {
		pthread_mutex_lock(&p->lock);
		at = inflight_find(p, m.id);
		if (at != NULL) {
			struct job *j = (*at)->job;
			if (j != NULL) {
				json_t *result = json_object_get(m.msg, "result");
				j->answered = true;
				j->failed = json_object_get(m.msg, "error") != NULL ||
				            json_is_true(json_object_get(result, "isError"));
				pthread_cond_broadcast(&p->changed);
			}
			inflight_remove(p, at);
		}
		pthread_mutex_unlock(&p->lock);
	}
	mcp_message_free(&m);
	to_client(p, line, len);
	return 0;
}

static void *
server_reader(void *arg)
{
	struct proxy *p = arg;
	mcp_framer_t framer;
	char buf[65536];
	ssize_t n;

	mcp_framer_init(&framer, MCP_MAX_LINE);
	for (;;) {
		n = read(p->from_server, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		mcp_framer_feed(&framer, buf, (size_t)n, on_server_line, p);
	}
	if (mcp_framer_pending(&framer))
		log_line(p, "the MCP server's output ended in the middle of a message");
	mcp_framer_free(&framer);

	pthread_mutex_lock(&p->lock);
	p->server_gone = true;
	pthread_cond_broadcast(&p->changed);
	if (p->wake[1] >= 0 && write(p->wake[1], "s", 1) < 0) {
		/* the main loop polls with a timeout and checks server_gone too */
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* ---- the server process ---- */

/** Start the server with pipes on its stdin and stdout; its stderr is ours. */
static int
spawn_server(struct proxy *p, char **argv)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1}, status_pipe[2] = {-1, -1};
	int exec_errno = 0;
	ssize_t n;

	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 ||
	    pipe2(status_pipe, O_CLOEXEC) != 0) {
		cli_warn("mcp-proxy: pipe: %s", strerror(errno));
		goto fail;
	}
	fflush(stdout);
	fflush(stderr);
	p->server = fork();
	if (p->server < 0) {
		cli_warn("mcp-proxy: fork: %s", strerror(errno));
		goto fail;
	}
	if (p->server == 0) {
		signal(SIGPIPE, SIG_DFL);
		if (dup2(in[0], STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0)
			_exit(127);
		unsetenv("SIGNOFF_TOKEN"); /* the server has no business with the agent's token */
		execvp(argv[0], argv);
		exec_errno = errno;
		n = write(status_pipe[1], &exec_errno, sizeof(exec_errno));
		(void)n;
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	close(status_pipe[1]);
	do {
		n = read(status_pipe[0], &exec_errno, sizeof(exec_errno));
	} while (n < 0 && errno == EINTR);
	close(status_pipe[0]);
	if (n == (ssize_t)sizeof(exec_errno)) {
		cli_warn("mcp-proxy: cannot run %s: %s", argv[0], strerror(exec_errno));
		waitpid(p->server, NULL, 0);
		close(in[1]);
		close(out[0]);
		return -1;
	}
	p->to_server = in[1];
	p->from_server = out[0];
	return 0;
fail:
	for (n = 0; n < 2; n++) {
		if (in[n] >= 0)
			close(in[n]);
		if (out[n] >= 0)
			close(out[n]);
		if (status_pipe[n] >= 0)
			close(status_pipe[n]);
	}
	return -1;
}

/** Wait for the server to exit, bounded: then SIGTERM, then SIGKILL. Its wait status. */
static int
reap_server(struct proxy *p, long seconds)
{
	static const int signals[] = {0, SIGTERM, SIGKILL};
	int wstatus = 0;
	size_t i;

	for (i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
		long deadline = now_seconds() + seconds;
		if (signals[i] != 0)
			kill(p->server, signals[i]);
		while (now_seconds() <= deadline) {
			pid_t r = waitpid(p->server, &wstatus, WNOHANG);
			if (r == p->server || (r < 0 && errno != EINTR))
				return wstatus;
			usleep(20000);
		}
		seconds = 2;
	}
	waitpid(p->server, &wstatus, 0);
	return wstatus;
}

static void
close_server_stdin(struct proxy *p)
{
	pthread_mutex_lock(&p->in_lock);
	if (p->to_server >= 0)
		close(p->to_server);
	p->to_server = -1;
	pthread_mutex_unlock(&p->in_lock);
}

/* ---- shutting down ---- */

/** Stop every gated call still waiting and wait, bounded, until their threads are done. */
static void
stop_jobs(struct proxy *p, enum stop why)
{
	struct timespec until;
	struct job *j;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += JOBS_EXIT_SECONDS;
	pthread_mutex_lock(&p->lock);
	for (j = p->jobs; j != NULL; j = j->next) {
		int none = STOP_NONE;
		atomic_compare_exchange_strong(&j->stop, &none, (int)why);
	}
	while (p->n_jobs > 0) {
		if (pthread_cond_timedwait(&p->changed, &p->lock, &until) == ETIMEDOUT)
			break;
	}
	if (p->n_jobs > 0)
		log_line(p, "gave up waiting for gated calls to end");
	pthread_mutex_unlock(&p->lock);
}

/** The server is gone: every request it will never answer gets an error now. */
static void
answer_orphans(struct proxy *p)
{
	struct inflight *list, *e;

	pthread_mutex_lock(&p->lock);
	list = p->inflight;
	p->inflight = NULL;
	p->n_inflight = 0;
	pthread_mutex_unlock(&p->lock);
	while ((e = list) != NULL) {
		list = e->next;
		to_client_owned(p, mcp_error_line(e->id, ERR_SERVER_GONE,
		                                  "the MCP server exited before answering"));
		json_decref(e->id);
		free(e);
	}
}

static void
proxy_help(void)
{
	printf("usage: signoff mcp-proxy [OPTIONS] -- SERVER_CMD [ARGS...]\n\n"
	       "Run the MCP server SERVER_CMD behind the signoff gate. Give this command to an\n"
	       "MCP client in place of the server's own: messages pass both ways unchanged\n"
	       "(newline-delimited JSON-RPC on stdin and stdout), except tools/call. Each call\n"
	       "becomes a signoff request {kind: mcp.tool, server, tool, arguments}; it reaches\n"
	       "the server only once approved, and once. A denied, expired or failed call is\n"
	       "answered with a tool error (isError) that says why, so the model sees it.\n"
	       "See docs/integrations/mcp.md.\n\n"
	       "options:\n"
	       "  --name NAME        the server's name in requests (default: SERVER_CMD's basename)\n"
	       "  --env E            environment the server acts on (e.g. production)\n"
	       "  --on-behalf-of P   the human principal the agent works for\n"
	       "  --timeout SECONDS  stop waiting for a decision after this long and answer the\n"
	       "                     call with a tool error (default: until the request expires)\n");
	printf(CLI_COMMON_HELP);
}

/** The main loop: the client's lines until it leaves, the server goes, or a signal. */
static void
relay_client(struct proxy *p)
{
	struct pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {p->wake[0], POLLIN, 0}};
	mcp_framer_t framer;
	char buf[65536];
	ssize_t n;

	mcp_framer_init(&framer, MCP_MAX_LINE);
	while (proxy_signal == 0) {
		bool gone;

		pthread_mutex_lock(&p->lock);
		gone = p->server_gone || p->client_gone;
		pthread_mutex_unlock(&p->lock);
		if (gone)
			break;
		if (poll(fds, 2, 1000) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (fds[1].revents != 0)
			continue; /* the flags above say which */
		if (fds[0].revents == 0)
			continue;
		n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break; /* the client closed our stdin */
		mcp_framer_feed(&framer, buf, (size_t)n, on_client_line, p);
	}
	mcp_framer_free(&framer);
}

static int
parse_proxy_args(struct proxy *p, int argc, char **argv)
{
	enum { OPT_NAME = CLI_OPT_FIRST_VERB, OPT_ENV, OPT_TIMEOUT, OPT_ON_BEHALF_OF };
	static const struct option options[] = {
		CLI_COMMON_OPTIONS,
		{"name", required_argument, NULL, OPT_NAME},
		{"env", required_argument, NULL, OPT_ENV},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"on-behalf-of", required_argument, NULL, OPT_ON_BEHALF_OF},
		{NULL, 0, NULL, 0},
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "+:h", options, NULL)) != -1) {
		switch (opt) {
		case OPT_NAME:
			p->name = optarg;
			continue;
		case OPT_ENV:
			p->environment = optarg;
			continue;
		case OPT_ON_BEHALF_OF:
			p->on_behalf_of = optarg;
			continue;
		case OPT_TIMEOUT:
			if (!cli_parse_seconds(optarg, 1, 7L * 86400, &p->timeout))
				return cli_usage_error(p->cli, "--timeout must be a positive number of "
				                               "seconds");
			continue;
		}
		switch (cli_option(p->cli, opt, argv)) {
		case CLI_OPT_HANDLED:
			break;
		case CLI_OPT_HELP:
			proxy_help();
			return CLI_EXIT_OK;
		default:
			return CLI_EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return cli_usage_error(p->cli, "no server command: put it after '--'");
	if (p->name == NULL) {
		const char *slash = strrchr(argv[optind], '/');
		p->name = slash != NULL ? slash + 1 : argv[optind];
	}
	if (p->name[0] == '\0')
		return cli_usage_error(p->cli, "--name must not be empty");
	return -1;
}

int
cli_mcp_proxy(struct cli *cli, int argc, char **argv)
{
	/* Static: a gated call's thread that outlives a bounded shutdown still finds it. */
	static struct proxy p;
	pthread_t reader;
	int status, wstatus;
	bool server_gone;

	memset(&p, 0, sizeof(p));
	p.cli = cli;
	p.to_server = p.from_server = p.wake[0] = p.wake[1] = -1;
	status = parse_proxy_args(&p, argc, argv);
	if (status >= 0)
		return status;
	/* Check the URL and token now: better not to start than to fail every call. */
	status = cli_connect(cli, true);
	if (status != CLI_EXIT_OK)
		return status;

	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	if (pipe2(p.wake, O_CLOEXEC | O_NONBLOCK) != 0) {
		cli_warn("mcp-proxy: pipe: %s", strerror(errno));
		return CLI_EXIT_ERROR;
	}
	pthread_mutex_init(&p.out_lock, NULL);
	pthread_mutex_init(&p.in_lock, NULL);
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.changed, NULL);
	status = CLI_EXIT_ERROR;
	if (spawn_server(&p, argv + optind) != 0)
		goto out;
	if (pthread_create(&reader, NULL, server_reader, &p) != 0) {
		cli_warn("mcp-proxy: cannot start a thread");
		close_server_stdin(&p);
		reap_server(&p, 0);
		goto out;
	}

	relay_client(&p);

	pthread_mutex_lock(&p.lock);
	server_gone = p.server_gone;
	pthread_mutex_unlock(&p.lock);
	if (server_gone) {
		/* Calls still waiting for approval end with an error; answered ones are reported. */
		stop_jobs(&p, STOP_SERVER_GONE);
		answer_orphans(&p);
		close_server_stdin(&p);
		wstatus = reap_server(&p, SERVER_EXIT_SECONDS);
		if (WIFEXITED(wstatus))
			fprintf(stderr, "signoff mcp-proxy (%s): the MCP server exited with status %d\n",
			        p.name, WEXITSTATUS(wstatus));
		else if (WIFSIGNALED(wstatus))
			fprintf(stderr, "signoff mcp-proxy (%s): the MCP server was killed by signal %d\n",
			        p.name, WTERMSIG(wstatus));
		status = CLI_EXIT_ERROR;
	} else {
		/* The client left (or we were told to stop): nobody waits for answers. */
		stop_jobs(&p, STOP_SHUTDOWN);
		close_server_stdin(&p);
		reap_server(&p, SERVER_EXIT_SECONDS);
		status = proxy_signal != 0 ? CLI_EXIT_EXPIRED : CLI_EXIT_OK;
	}
	pthread_join(reader, NULL);
	answer_orphans(&p); /* frees what is left */
out:
	if (p.from_server >= 0)
		close(p.from_server);
	close_server_stdin(&p);
	/* A gated call that outlived the bounded shutdown must not write to a reused fd. */
	pthread_mutex_lock(&p.lock);
	close(p.wake[0]);
	close(p.wake[1]);
	p.wake[0] = p.wake[1] = -1;
	pthread_mutex_unlock(&p.lock);
	json_decref(p.client_info);
	return status;
}
