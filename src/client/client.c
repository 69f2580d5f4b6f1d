/**
 * libsignoff: HTTP calls to signoffd over libcurl. See include/signoff/client.h for the
 * contract and docs/internals/client.md for the design.
 *
 * Owns: the client struct, its curl easy handle, its copies of the URL and the
 * Authorization header (wiped on free). Borrows: everything the caller passes in.
 */
#include "signoff/client.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>

#include <curl/curl.h>
#include <sodium.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/json.h"
#include "client/internal.h"

#ifndef SO_VERSION
#define SO_VERSION "0.0.0"
#endif

/** Default bound on one call when the caller passes 0. */
#define DEFAULT_TIMEOUT_MS 30000L
/** Bound on connecting, within the call's bound. */
#define CONNECT_TIMEOUT_MS 10000L
/** Longest id accepted in a path; ids are "req_" + 26 characters. */
#define MAX_ID_LEN 64
/** Longest token accepted ("so_" + 64 hex, with room for other schemes). */
#define MAX_TOKEN_LEN 512
/** Longest URL we build: base plus path plus query. */
#define MAX_URL_LEN 4096
/** Longest request body we send (the daemon's default max_body). */
#define MAX_REQUEST_BODY (1024u * 1024u)

/** Bounds on the daemon's answers: generous, but bounded (responses hold lists of requests). */
static const so_json_limits_t response_limits = {
	.max_depth = 64,
	.max_string = SO_CLIENT_MAX_RESPONSE,
	.max_items = 100000,
};

struct so_client {
	CURL *easy;          /* owned; reused so the connection stays open between calls */
	char *base_url;      /* owned; no trailing slash */
	char *auth_header;   /* owned; "Authorization: Bearer <token>", wiped on free; may be NULL */
	long timeout_ms;
	so_client_tick_fn tick;
	void *tick_arg;      /* borrowed */
	bool aborted;        /* the tick callback stopped the current call */
	bool too_large;      /* the answer went over SO_CLIENT_MAX_RESPONSE */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_status = CURLE_FAILED_INIT;

static void
global_init(void)
{
	global_status = curl_global_init(CURL_GLOBAL_DEFAULT);
}

const char *
so_client_version(void)
{
	return SO_VERSION;
}

const char *
so_client_strerror(int code)
{
	switch (code) {
	case SO_CLIENT_OK: return "ok";
	case SO_CLIENT_ENOMEM: return "out of memory";
	case SO_CLIENT_EINVAL: return "invalid argument";
	case SO_CLIENT_EPROTO: return "unexpected answer from the daemon";
	case SO_CLIENT_ETOOLARGE: return "answer from the daemon too large";
	case SO_CLIENT_EUNREACHABLE: return "daemon unreachable";
	case SO_CLIENT_EHTTP: return "the daemon refused the call";
	case SO_CLIENT_EABORTED: return "call interrupted";
	case SO_CLIENT_ESPENT: return "already claimed: a grant runs once";
	default: return "unknown error";
	}
}

void
so_client_error_set(so_client_error_t *err, int code, long http_status, const char *error_code,
          const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	err->code = code;
	err->http_status = http_status;
	snprintf(err->error_code, sizeof(err->error_code), "%s", error_code ? error_code : "");
	if (fmt == NULL) {
		err->message[0] = '\0';
		return;
	}
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

/** True when `s` holds only printable ASCII without spaces: safe in a header line. */
static bool
token_ok(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++, n++) {
		if (*s <= ' ' || *s > '~' || n >= MAX_TOKEN_LEN)
			return false;
	}
	return n > 0;
}

/** Ids go into paths unescaped, so they must be plain: letters, digits, '_' and '-'. */
static bool
id_ok(const char *id)
{
	size_t n = 0;

	if (id == NULL)
		return false;
	for (; id[n] != '\0'; n++) {
		unsigned char ch = (unsigned char)id[n];
		if (n >= MAX_ID_LEN || !(isalnum(ch) || ch == '_' || ch == '-'))
			return false;
	}
	return n > 0;
}

int
so_client_new(const char *url, const char *token, long timeout_ms, so_client_t **out)
{
	so_client_t *c = NULL;
	size_t len;
	int rc = SO_CLIENT_EINVAL;

	*out = NULL;
	if (url == NULL || timeout_ms < 0)
		goto out;
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		goto out;
	if (strpbrk(url, "?# \t\r\n") != NULL)
		goto out;
	if (token != NULL && !token_ok(token))
		goto out;

	rc = SO_CLIENT_ENOMEM;
	pthread_once(&global_once, global_init);
	if (global_status != CURLE_OK)
		goto out;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto out;
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
	c->base_url = strdup(url);
	if (c->base_url == NULL)
		goto out;
	len = strlen(c->base_url);
	while (len > 0 && c->base_url[len - 1] == '/')
		c->base_url[--len] = '\0';
	if (token != NULL) {
		size_t hlen = strlen("Authorization: Bearer ") + strlen(token) + 1;
		c->auth_header = malloc(hlen);
		if (c->auth_header == NULL)
			goto out;
		snprintf(c->auth_header, hlen, "Authorization: Bearer %s", token);
	}
	c->easy = curl_easy_init();
	if (c->easy == NULL)
		goto out;

	*out = c;
	c = NULL;
	rc = SO_CLIENT_OK;
out:
	so_client_free(c);
	return rc;
}

void
so_client_free(so_client_t *c)
{
	if (c == NULL)
		return;
	if (c->easy != NULL)
		curl_easy_cleanup(c->easy);
	if (c->auth_header != NULL) {
		sodium_memzero(c->auth_header, strlen(c->auth_header));
		free(c->auth_header);
	}
	free(c->base_url);
	free(c);
}

const char *
so_client_url(const so_client_t *c)
{
	return c->base_url;
}

void
so_client_set_tick(so_client_t *c, so_client_tick_fn fn, void *arg)
{
	c->tick = fn;
	c->tick_arg = fn != NULL ? arg : NULL;
}

int
so_client_disconnect(so_client_t *c)
{
	curl_easy_cleanup(c->easy);
	c->easy = curl_easy_init();
	return c->easy != NULL ? SO_CLIENT_OK : SO_CLIENT_ENOMEM;
}

/* libcurl callbacks */

struct sink {
	so_client_t *c;
	so_buf_t body;
	so_client_stream_fn stream; /* set: a 2xx body goes here instead of `body` */
	void *stream_ctx;
};

static size_t
on_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct sink *s = arg;
	size_t n = size * nmemb;

	if (s->stream != NULL) {
		long status = 0;
		curl_easy_getinfo(s->c->easy, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 200 && status <= 299)
			return s->stream(data, n, s->stream_ctx) == 0 ? n : 0;
	}
	if (so_buf_add(&s->body, data, n) != SO_OK) {
		s->c->too_large = true;
		return 0; /* curl stops with CURLE_WRITE_ERROR */
	}
	return n;
}

static int
on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
            curl_off_t ulnow)
{
	so_client_t *c = arg;

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	if (c->tick != NULL && c->tick(c->tick_arg) != 0) {
		c->aborted = true;
		return 1;
	}
	return 0;
}

/** Sockets to the daemon must not leak into commands the caller runs after a call. */
static int
on_sockopt(void *arg, curl_socket_t fd, curlsocktype purpose)
{
	int flags;

	(void)arg, (void)purpose;
	flags = fcntl(fd, F_GETFD);
	if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
		return CURL_SOCKOPT_ERROR;
	return CURL_SOCKOPT_OK;
}

/** Fill `err` from an error answer: {"error": {"code", "message"}}, or whatever came back. */
static void
error_from_body(so_client_error_t *err, long status, const so_buf_t *body)
{
	json_t *doc = NULL;
	const char *code = NULL, *message = NULL;
	char perr[128];

	if (body->len > 0 &&
	    so_json_parse(body->data, body->len, &response_limits, &doc, perr, sizeof(perr)) == SO_OK) {
		json_t *e = json_object_get(doc, "error");
		code = json_string_value(json_object_get(e, "code"));
		message = json_string_value(json_object_get(e, "message"));
	}
	if (code != NULL || message != NULL) {
		so_client_error_set(err, SO_CLIENT_EHTTP, status, code, "%s", message ? message : "");
	} else {
		/* Not our error shape (a proxy page, say): keep the first line, bounded. */
		int n = 0;
		if (body->len > 0) {
			const char *nl = memchr(body->data, '\n', body->len);
			size_t first = nl ? (size_t)(nl - body->data) : body->len;
			n = first > 200 ? 200 : (int)first;
		}
		so_client_error_set(err, SO_CLIENT_EHTTP, status, NULL, "%s%.*s",
		          n > 0 ? "unexpected answer: " : "no error body", n, n > 0 ? body->data : "");
	}
	json_decref(doc);
}

static bool
curl_unreachable(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
		return true;
	default:
		return false;
	}
}

/**
 * One HTTP exchange. `path` starts with '/'; `body` (may be NULL) is sent as JSON;
 * `wait_seconds` extends the call's time bound for a long-poll. On a 2xx answer `*out` (if
 * wanted) gets the parsed JSON.
 */
static int
call_full(so_client_t *c, const char *method, const char *path, const json_t *body,
          int wait_seconds, json_t **out, so_client_stream_fn stream, void *stream_ctx,
          so_client_error_t *err)
{
	struct sink sink = {.c = c, .stream = stream, .stream_ctx = stream_ctx};
	struct curl_slist *headers = NULL, *h;
	char url[MAX_URL_LEN];
	char curl_msg[CURL_ERROR_SIZE] = "";
	char perr[160];
	char *payload = NULL;
	json_t *doc = NULL;
	long status = 0;
	CURLcode cc;
	int n, rc = SO_CLIENT_ENOMEM;

	if (out != NULL)
		*out = NULL;
	so_buf_init(&sink.body, SO_CLIENT_MAX_RESPONSE);
	if (c->easy == NULL) {
		so_client_error_set(err, rc, 0, NULL, "out of memory");
		goto out;
	}
	c->aborted = false;
	c->too_large = false;
	so_client_error_set(err, SO_CLIENT_OK, 0, NULL, NULL);

	n = snprintf(url, sizeof(url), "%s%s", c->base_url, path);
	if (n < 0 || (size_t)n >= sizeof(url)) {
		rc = SO_CLIENT_EINVAL;
		so_client_error_set(err, rc, 0, NULL, "URL too long");
		goto out;
	}
	if (body != NULL) {
		payload = json_dumps(body, JSON_COMPACT);
		if (payload == NULL)
			goto out;
		if (strlen(payload) > MAX_REQUEST_BODY) {
			rc = SO_CLIENT_EINVAL;
			so_client_error_set(err, rc, 0, NULL, "request body over %u bytes", MAX_REQUEST_BODY);
			goto out;
		}
	}

	if ((h = curl_slist_append(headers, "Accept: application/json")) == NULL)
		goto out;
	headers = h;
	if ((h = curl_slist_append(headers, "Expect:")) == NULL)
		goto out;
	headers = h;
	if (payload != NULL) {
		if ((h = curl_slist_append(headers, "Content-Type: application/json")) == NULL)
			goto out;
		headers = h;
	}
	if (c->auth_header != NULL) {
		if ((h = curl_slist_append(headers, c->auth_header)) == NULL)
			goto out;
		headers = h;
	}

	curl_easy_reset(c->easy);
	curl_easy_setopt(c->easy, CURLOPT_URL, url);
	curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->easy, CURLOPT_USERAGENT, "signoff/" SO_VERSION);
	curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, curl_msg);
	curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS,
	                 c->timeout_ms < CONNECT_TIMEOUT_MS ? c->timeout_ms : CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, c->timeout_ms + 1000L * wait_seconds);
	curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(c->easy, CURLOPT_SOCKOPTFUNCTION, on_sockopt);
	curl_easy_setopt(c->easy, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c->easy, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c->easy, CURLOPT_XFERINFODATA, c);
	if (payload != NULL) {
		curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, payload);
		curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(payload));
	}
	curl_easy_setopt(c->easy, CURLOPT_CUSTOMREQUEST, method);

	cc = curl_easy_perform(c->easy);
	if (cc != CURLE_OK) {
		const char *detail = curl_msg[0] != '\0' ? curl_msg : curl_easy_strerror(cc);
		if (c->aborted) {
			rc = SO_CLIENT_EABORTED;
			so_client_error_set(err, rc, 0, NULL, "interrupted");
		} else if (c->too_large) {
			rc = SO_CLIENT_ETOOLARGE;
			so_client_error_set(err, rc, 0, NULL, "answer over %u bytes", SO_CLIENT_MAX_RESPONSE);
		} else if (curl_unreachable(cc)) {
			rc = SO_CLIENT_EUNREACHABLE;
			so_client_error_set(err, rc, 0, NULL, "%s", detail);
		} else if (cc == CURLE_OUT_OF_MEMORY) {
			rc = SO_CLIENT_ENOMEM;
			so_client_error_set(err, rc, 0, NULL, "%s", detail);
		} else {
			rc = SO_CLIENT_EPROTO;
			so_client_error_set(err, rc, 0, NULL, "%s", detail);
		}
		goto out;
	}
	curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);

	if (status < 200 || status > 299) {
		rc = SO_CLIENT_EHTTP;
		error_from_body(err, status, &sink.body);
		goto out;
	}
	if (stream != NULL) {
		so_client_error_set(err, SO_CLIENT_OK, status, NULL, NULL);
		rc = SO_CLIENT_OK;
		goto out;
	}
	if (so_json_parse(so_buf_cstr(&sink.body), sink.body.len, &response_limits, &doc, perr,
	                  sizeof(perr)) != SO_OK || !json_is_object(doc)) {
		rc = SO_CLIENT_EPROTO;
		so_client_error_set(err, rc, status, NULL, "answer is not a JSON object%s%s",
		          doc == NULL ? ": " : "", doc == NULL ? perr : "");
		goto out;
	}
	so_client_error_set(err, SO_CLIENT_OK, status, NULL, NULL);
	if (out != NULL) {
		*out = doc;
		doc = NULL;
	}
	rc = SO_CLIENT_OK;
out:
	if (rc == SO_CLIENT_ENOMEM && err != NULL && err->message[0] == '\0')
		so_client_error_set(err, rc, 0, NULL, "out of memory");
	json_decref(doc);
	curl_slist_free_all(headers);
	free(payload);
	so_buf_free(&sink.body);
	return rc;
}

static int
call(so_client_t *c, const char *method, const char *path, const json_t *body, int wait_seconds,
     json_t **out, so_client_error_t *err)
{
	return call_full(c, method, path, body, wait_seconds, out, NULL, NULL, err);
}

static int
path_ok(const char *path, json_t **out, so_client_error_t *err)
{
	if (out != NULL)
		*out = NULL;
	if (path == NULL || strncmp(path, "/v1/", 4) != 0 || strpbrk(path, " \r\n") != NULL) {
		so_client_error_set(err, SO_CLIENT_EINVAL, 0, NULL, "path must start with /v1/");
		return 0;
	}
	return 1;
}

int
so_client_get_json(so_client_t *c, const char *path, json_t **out, so_client_error_t *err)
{
	if (!path_ok(path, out, err))
		return SO_CLIENT_EINVAL;
	return call(c, "GET", path, NULL, 0, out, err);
}

int
so_client_post_json(so_client_t *c, const char *path, const json_t *body, json_t **out,
                    so_client_error_t *err)
{
	if (!path_ok(path, out, err))
		return SO_CLIENT_EINVAL;
	return call(c, "POST", path, body, 0, out, err);
}

int
so_client_get_stream(so_client_t *c, const char *path, so_client_stream_fn fn, void *ctx,
                     so_client_error_t *err)
{
	if (!path_ok(path, NULL, err) || fn == NULL)
		return SO_CLIENT_EINVAL;
	/* A long export may take a while: allow an hour beyond the usual bound. */
	return call_full(c, "GET", path, NULL, 3600, NULL, fn, ctx, err);
}

/** Build "/v1/requests/{id}{suffix}" into `path`, refusing ids that are not plain. */
static int
request_path(char *path, size_t size, const char *id, const char *suffix, so_client_error_t *err)
{
	int n;

	if (!id_ok(id)) {
		so_client_error_set(err, SO_CLIENT_EINVAL, 0, NULL, "malformed request id");
		return SO_CLIENT_EINVAL;
	}
	n = snprintf(path, size, "/v1/requests/%s%s", id, suffix);
	if (n < 0 || (size_t)n >= size) {
		so_client_error_set(err, SO_CLIENT_EINVAL, 0, NULL, "malformed request id");
		return SO_CLIENT_EINVAL;
	}
	return SO_CLIENT_OK;
}

static int
invalid(so_client_error_t *err, json_t **out, const char *what)
{
	if (out != NULL)
		*out = NULL;
	so_client_error_set(err, SO_CLIENT_EINVAL, 0, NULL, "%s", what);
	return SO_CLIENT_EINVAL;
}

/** Set `key` to a new string if `value` is not NULL. */
static int
put_string(json_t *obj, const char *key, const char *value)
{
	if (value == NULL)
		return 0;
	return json_object_set_new(obj, key, json_string(value));
}

int
so_client_submit(so_client_t *c, const so_client_submit_t *req, json_t **out,
                 so_client_error_t *err)
{
	json_t *body = NULL;
	int rc;

	if (req == NULL || !json_is_object(req->action))
		return invalid(err, out, "action must be a JSON object");
	if (req->context != NULL && !json_is_object(req->context))
		return invalid(err, out, "context must be a JSON object");
	if (req->ttl_seconds < 0 || req->ttl_seconds > 86400)
		return invalid(err, out, "ttl_seconds must be 1..86400");
	if (req->idempotency_key != NULL && strlen(req->idempotency_key) > 200)
		return invalid(err, out, "idempotency key over 200 bytes");

	rc = SO_CLIENT_EINVAL;
	body = json_object();
	if (body == NULL)
		goto fail;
	/* json_object_set (not _new) takes its own reference: the caller's values stay borrowed. */
	if (json_object_set(body, "action", (json_t *)req->action) != 0)
		goto fail;
	if (req->context != NULL && json_object_set(body, "context", (json_t *)req->context) != 0)
		goto fail;
	if (put_string(body, "intent", req->intent) != 0 ||
	    put_string(body, "on_behalf_of", req->on_behalf_of) != 0 ||
	    put_string(body, "idempotency_key", req->idempotency_key) != 0)
		goto fail;
	if (req->ttl_seconds > 0 &&
	    json_object_set_new(body, "ttl_seconds", json_integer(req->ttl_seconds)) != 0)
		goto fail;

	rc = call(c, "POST", "/v1/requests", body, 0, out, err);
	json_decref(body);
	return rc;
fail:
	json_decref(body);
	if (out != NULL)
		*out = NULL;
	so_client_error_set(err, rc, 0, NULL, "cannot encode the request (text must be UTF-8)");
	return rc;
}

int
so_client_get(so_client_t *c, const char *id, int wait_seconds, json_t **out,
              so_client_error_t *err)
{
	char path[160], suffix[32] = "";
	int rc;

	if (wait_seconds < 0 || wait_seconds > SO_CLIENT_MAX_WAIT)
		return invalid(err, out, "wait out of range");
	if (wait_seconds > 0)
		snprintf(suffix, sizeof(suffix), "?wait=%d", wait_seconds);
	rc = request_path(path, sizeof(path), id, suffix, err);
	if (rc != SO_CLIENT_OK) {
		if (out != NULL)
			*out = NULL;
		return rc;
	}
	return call(c, "GET", path, NULL, wait_seconds, out, err);
}

int
so_client_list(so_client_t *c, const char *status, int limit, const char *cursor,
               json_t **out, so_client_error_t *err)
{
	so_buf_t path;
	char *esc = NULL;
	char sep = '?';
	int rc = SO_CLIENT_ENOMEM;

	if (limit < 0 || limit > 200)
		return invalid(err, out, "limit must be 1..200");
	so_buf_init(&path, MAX_URL_LEN);
	if (so_buf_adds(&path, "/v1/requests") != SO_OK)
		goto out;
	if (status != NULL) {
		esc = curl_easy_escape(c->easy, status, 0);
		if (esc == NULL || so_buf_printf(&path, "%cstatus=%s", sep, esc) != SO_OK)
			goto out;
		curl_free(esc);
		esc = NULL;
		sep = '&';
	}
	if (limit > 0) {
		if (so_buf_printf(&path, "%climit=%d", sep, limit) != SO_OK)
			goto out;
		sep = '&';
	}
	if (cursor != NULL) {
		esc = curl_easy_escape(c->easy, cursor, 0);
		if (esc == NULL || so_buf_printf(&path, "%ccursor=%s", sep, esc) != SO_OK)
			goto out;
	}
	rc = call(c, "GET", so_buf_cstr(&path), NULL, 0, out, err);
out:
	if (rc == SO_CLIENT_ENOMEM) {
		if (out != NULL)
			*out = NULL;
		so_client_error_set(err, rc, 0, NULL, "out of memory or query too long");
	}
	curl_free(esc);
	so_buf_free(&path);
	return rc;
}

/** POST `body` (owned: released here) to /v1/requests/{id}{suffix}. */
static int
post_request(so_client_t *c, const char *id, const char *suffix, json_t *body, json_t **out,
             so_client_error_t *err)
{
	char path[160];
	int rc;

	if (out != NULL)
		*out = NULL;
	rc = request_path(path, sizeof(path), id, suffix, err);
	if (rc != SO_CLIENT_OK)
		goto out;
	if (body == NULL) {
		rc = SO_CLIENT_EINVAL;
		so_client_error_set(err, rc, 0, NULL, "cannot encode the request (text must be UTF-8)");
		goto out;
	}
	rc = call(c, "POST", path, body, 0, out, err);
out:
	json_decref(body);
	return rc;
}

int
so_client_review(so_client_t *c, const char *id, so_client_decision_t decision,
                 const char *comment, json_t **out, so_client_error_t *err)
{
	json_t *body;

	if (decision != SO_CLIENT_APPROVE && decision != SO_CLIENT_DENY)
		return invalid(err, out, "decision must be approve or deny");
	body = json_pack("{s:s}", "decision", decision == SO_CLIENT_APPROVE ? "approve" : "deny");
	if (body != NULL && comment != NULL && put_string(body, "comment", comment) != 0) {
		json_decref(body);
		body = NULL;
	}
	return post_request(c, id, "/reviews", body, out, err);
}

int
so_client_cancel(so_client_t *c, const char *id, json_t **out, so_client_error_t *err)
{
	return post_request(c, id, "/cancel", json_object(), out, err);
}

int
so_client_claim(so_client_t *c, const char *id, const char *digest, json_t **out,
                so_client_error_t *err)
{
	if (digest == NULL || strlen(digest) != 64 || strspn(digest, "0123456789abcdef") != 64)
		return invalid(err, out, "digest must be 64 lowercase hex characters");
	return post_request(c, id, "/claim", json_pack("{s:s}", "digest", digest), out, err);
}

int
so_client_result(so_client_t *c, const char *id, int exit_code, const char *detail,
                 json_t **out, so_client_error_t *err)
{
	json_t *body = json_pack("{s:i}", "exit_code", exit_code);

	if (body != NULL && put_string(body, "detail", detail) != 0) {
		json_decref(body);
		body = NULL;
	}
	return post_request(c, id, "/result", body, out, err);
}

int
so_client_token_issue(so_client_t *c, const char *principal, json_t **out,
                      so_client_error_t *err)
{
	json_t *body;
	int rc;

	if (principal == NULL || principal[0] == '\0')
		return invalid(err, out, "principal must not be empty");
	body = json_pack("{s:s}", "principal", principal);
	if (body == NULL)
		return invalid(err, out, "cannot encode the request (text must be UTF-8)");
	rc = call(c, "POST", "/v1/tokens", body, 0, out, err);
	json_decref(body);
	return rc;
}

int
so_client_whoami(so_client_t *c, json_t **out, so_client_error_t *err)
{
	return call(c, "GET", "/v1/whoami", NULL, 0, out, err);
}
