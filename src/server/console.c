/*
 * The web console's server side: its embedded files, and sessions for the people using it.
 *
 * A reviewer signs in with their token (POST /v1/session) and gets a session cookie
 * (HttpOnly, SameSite=Strict, Secure under TLS) plus a CSRF token the page keeps in memory.
 * With the cookie, the API acts as that person; a change (any method but GET and HEAD) also
 * needs the X-CSRF-Token header. Sessions and one-time links are in the store, as the SHA-256
 * of their secret: every node sharing the store knows them, and a restart signs no one out.
 * Failed sign-ins are audited and limited per client address (per node).
 *
 * Owns: the failure counters, under one lock. Cookies are 32 random bytes in hex; the CSRF
 * token is a hash of the cookie (the cookie is its key), stored nowhere.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/token.h"
#include "server/assets.h"
#include "server/internal.h"

#define SESSION_TTL_MS (8LL * 3600 * 1000)
/* Failed sign-ins: at most FAIL_LIMIT per address within FAIL_WINDOW_MS. */
#define FAIL_LIMIT 5
#define FAIL_WINDOW_MS (60LL * 1000)
#define FAIL_SLOTS 1024

struct fail_slot {
	char addr[48];
	int64_t window_start;
	int count;
};

struct sessions {
	pthread_mutex_t lock;
	struct fail_slot fails[FAIL_SLOTS];
};

struct sessions *
sessions_new(void)
{
	struct sessions *ss = calloc(1, sizeof(*ss));

	if (!ss)
		return NULL;
	pthread_mutex_init(&ss->lock, NULL);
	return ss;
}

void
sessions_free(struct sessions *ss)
{
	if (!ss)
		return;
	pthread_mutex_destroy(&ss->lock);
	free(ss);
}

static void
random_hex(char out[65])
{
	unsigned char raw[32];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(out, 65, raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
}

/*
 * A session's CSRF token: a hash of its cookie (BLAKE2b keyed with the cookie over a fixed
 * label): one-way, so it reveals nothing of the cookie; no node stores it, every node can
 * check it, and only a holder of the cookie (our page, which was given it) can know it.
 */
static void
csrf_of(const char *cookie, char out[65])
{
	unsigned char mac[32];

	crypto_generichash(mac, sizeof(mac), (const unsigned char *)"signoff console csrf", 20,
	                   (const unsigned char *)cookie, strlen(cookie));
	sodium_bin2hex(out, 65, mac, sizeof(mac));
	sodium_memzero(mac, sizeof(mac));
}

/* ---- one-time links ---- */

int
session_link_new(so_store_t *s, const so_principal_t *who, char token[65])
{
	int64_t now = so_clock_now_ms();
	char hash[65];

	random_hex(token);
	so_token_hash(token, hash);
	int rc = s->ops->session_put(s, hash, "link", who->id, now + SO_LINK_TTL_MS, now);
	if (rc)
		sodium_memzero(token, 65);
	return rc;
}

/* ---- failed sign-ins ---- */

/* Keep the last X-Forwarded-For line: a proxy may add its own line after the client's. */
static enum MHD_Result
last_forwarded_for(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	if (value && !strcasecmp(key, "X-Forwarded-For"))
		*(const char **)cls = value;
	return MHD_YES;
}

/*
 * The caller's address: the peer's, or, when the peer is one of server.trusted_proxies, the
 * last address of the last X-Forwarded-For line (the one that proxy added; earlier ones the
 * client could have written itself). A header that does not end in an address leaves the
 * proxy's.
 */
static void
client_address(const so_server_t *srv, struct MHD_Connection *mc, char out[48])
{
	const union MHD_ConnectionInfo *info =
	    MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = info ? info->client_addr : NULL;
	int trusted = 0;

	snprintf(out, 48, "unknown");
	if (sa && sa->sa_family == AF_INET) {
		const struct in_addr *in = &((const struct sockaddr_in *)sa)->sin_addr;
		inet_ntop(AF_INET, in, out, 48);
		for (size_t i = 0; i < srv->cfg->ntrusted_proxies; i++)
			trusted |= srv->cfg->trusted_proxy[i] == in->s_addr;
	} else if (sa && sa->sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, 48);
	}
	const char *xff = NULL;
	if (trusted)
		MHD_get_connection_values(mc, MHD_HEADER_KIND, last_forwarded_for, &xff);
	if (!xff)
		return;
	const char *last = strrchr(xff, ',');
	last = last ? last + 1 : xff;
	while (*last == ' ' || *last == '\t')
		last++;
	char addr[48];
	size_t n = strcspn(last, " \t");
	struct in6_addr any;
	if (n == 0 || n >= sizeof(addr) || last[n + strspn(last + n, " \t")] != '\0')
		return;
	memcpy(addr, last, n);
	addr[n] = '\0';
	if (inet_pton(AF_INET, addr, &any) == 1 || inet_pton(AF_INET6, addr, &any) == 1)
		memcpy(out, addr, n + 1);
}

static struct fail_slot *
fail_slot(struct sessions *ss, const char *addr, int64_t now)
{
	struct fail_slot *oldest = &ss->fails[0];

	for (size_t i = 0; i < FAIL_SLOTS; i++) {
		struct fail_slot *f = &ss->fails[i];
		if (f->count > 0 && strcmp(f->addr, addr) == 0)
			return f;
		if (f->window_start < oldest->window_start)
			oldest = f;
	}
	/* A new address takes the slot idle longest; an attacker with many addresses only
	 * dilutes the counters, each address is still limited while its slot lives. */
	memset(oldest, 0, sizeof(*oldest));
	snprintf(oldest->addr, sizeof(oldest->addr), "%s", addr);
	oldest->window_start = now;
	return oldest;
}

/** Seconds until `addr` may try again, or 0 when it may now. */
static long
throttled(struct sessions *ss, const char *addr, int64_t now)
{
	long wait = 0;

	pthread_mutex_lock(&ss->lock);
	for (size_t i = 0; i < FAIL_SLOTS; i++) {
		struct fail_slot *f = &ss->fails[i];
		if (f->count >= FAIL_LIMIT && strcmp(f->addr, addr) == 0 &&
		    now - f->window_start < FAIL_WINDOW_MS)
			wait = (long)((f->window_start + FAIL_WINDOW_MS - now + 999) / 1000);
	}
	pthread_mutex_unlock(&ss->lock);
	return wait;
}

static void
count_failure(struct sessions *ss, const char *addr, int64_t now)
{
	struct fail_slot *f;

	pthread_mutex_lock(&ss->lock);
	f = fail_slot(ss, addr, now);
	if (now - f->window_start >= FAIL_WINDOW_MS) {
		f->window_start = now;
		f->count = 0;
	}
	f->count++;
	pthread_mutex_unlock(&ss->lock);
}

/* ---- sign-in, through the writer so that it is audited first ---- */

static json_t *
session_json(so_server_t *srv, const so_principal_t *p, const char *csrf, int64_t expires_at)
{
	json_t *groups = json_array();
	char when[32];

	for (char **g = p->groups; g && *g; g++)
		json_array_append_new(groups, json_string(*g));
	so_clock_format(expires_at, when, sizeof(when));
	return json_pack("{s:{s:s, s:s, s:o, s:o, s:b, s:b}, s:s, s:s}", "principal", "id", p->id,
	                 "kind", so_kind_name(p->kind), "groups", groups, "owner",
	                 p->owner ? json_string(p->owner) : json_null(), "admin", is_admin(srv, p),
	                 "auditor", is_auditor(srv, p), "csrf_token", csrf, "expires_at", when);
}

static int op_signin_failed(so_store_t *s, struct conn *c);

/* Count and audit a refused sign-in; the answer (`status`, `code`, `why`) goes to the caller. */
static int
signin_refused(so_store_t *s, struct conn *c, unsigned status, const char *code, const char *why)
{
	count_failure(c->srv->sessions, c->client_addr, so_clock_now_ms());
	c->refusal = code;
	reply_error(c, status, code, "%s", why);
	return op_signin_failed(s, c);
}

/*
 * In the writer: a link is used up here (of two tries at once, one gets it), then the session
 * is recorded with its audit event, all in one transaction.
 */
static int
op_signed_in(so_store_t *s, struct conn *c)
{
	int64_t now = so_clock_now_ms();
	char cookie[65], csrf[65], hash[65], who_id[128];
	int rc;

	if (!strcmp(c->signin_via, "link")) {
		so_token_hash(json_string_value(json_object_get(c->in, "link")), hash);
		rc = s->ops->session_take(s, hash, now, who_id, sizeof(who_id));
		if (rc && rc != SO_ENOTFOUND)
			return rc;
		c->caller = rc ? NULL : so_directory_find(&c->srv->cfg->directory, who_id);
		if (!c->caller)
			return signin_refused(s, c, 401, "unauthorized", "this sign-in link is unknown, "
			                      "used or expired; ask for a new one, or sign in with your "
			                      "token");
	}
	rc = so_audit_append(s, "session.signed_in", NULL, c->caller->id,
	                     json_pack("{s:s, s:s}", "address", c->client_addr, "via", c->signin_via),
	                     now);
	if (rc != SO_OK)
		return rc;
	random_hex(cookie);
	so_token_hash(cookie, hash);
	if ((rc = s->ops->session_put(s, hash, "session", c->caller->id, now + SESSION_TTL_MS,
	                              now))) {
		sodium_memzero(cookie, sizeof(cookie));
		return rc;
	}
	csrf_of(cookie, csrf);
	snprintf(c->set_cookie, sizeof(c->set_cookie),
	         SO_SESSION_COOKIE "=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Strict%s", cookie,
	         SESSION_TTL_MS / 1000, c->srv->tls_cert ? "; Secure" : "");
	sodium_memzero(cookie, sizeof(cookie));
	reply_json(c, 201, session_json(c->srv, c->caller, csrf, now + SESSION_TTL_MS));
	sodium_memzero(csrf, sizeof(csrf));
	return SO_OK;
}

static int
op_signin_failed(so_store_t *s, struct conn *c)
{
	int rc = so_audit_append(s, "session.signin_failed", NULL, "anonymous",
	                         json_pack("{s:s, s:s}", "address", c->client_addr, "reason",
	                                   c->refusal),
	                         so_clock_now_ms());
	/* The answer to the caller is the refusal prepared before; the event is what we add. */
	return rc;
}

/** Refuse a sign-in: count it, audit it, answer `status` with `code`. */
static void
refuse_signin(struct conn *c, struct MHD_Connection *mc, unsigned status, const char *code,
              const char *why)
{
	count_failure(c->srv->sessions, c->client_addr, so_clock_now_ms());
	c->refusal = code;
	reply_error(c, status, code, "%s", why);
	run_op(c, mc, op_signin_failed);
}

void
h_session_create(struct conn *c, struct MHD_Connection *mc)
{
	const so_principal_t *who = NULL;
	const char *token, *link;
	long wait;
	int rc;

	c->signin_via = "token";
	client_address(c->srv, mc, c->client_addr);
	wait = throttled(c->srv->sessions, c->client_addr, so_clock_now_ms());
	if (wait > 0) {
		snprintf(c->retry_after, sizeof(c->retry_after), "%ld", wait);
		reply_error(c, 429, "rate_limited", "too many failed sign-ins from %s; try again in "
		            "%ld s", c->client_addr, wait);
		return;
	}
	if (parse_body(c))
		return;
	token = json_string_value(json_object_get(c->in, "token"));
	link = json_string_value(json_object_get(c->in, "link"));
	if (!(token || link) || json_object_size(c->in) != 1) {
		reply_error(c, 400, "bad_request", "the body is {\"token\": \"so_...\"} or "
		            "{\"link\": \"...\"} (a sign-in link's code)");
		return;
	}
	if (link) {
		c->signin_via = "link"; /* op_signed_in uses it up, or refuses */
		run_op(c, mc, op_signed_in);
		return;
	}
	rc = principal_for_token(c->srv, token, &who);
	if (rc == SO_ESTORE) {
		reply_error(c, 503, "unavailable", "cannot check the token now");
		return;
	}
	if (rc != SO_OK) {
		refuse_signin(c, mc, 401, "unauthorized", "unknown or revoked token");
		return;
	}
	if (who->kind != SO_KIND_HUMAN) {
		refuse_signin(c, mc, 403, "not_human", "the console is for people; this token is "
		              "an agent's");
		return;
	}
	c->caller = who;
	run_op(c, mc, op_signed_in);
}

const so_principal_t *
session_caller(struct conn *c, struct MHD_Connection *mc, const char *cookie)
{
	char who_id[128];
	const so_principal_t *who = NULL;
	const char *sent;

	so_token_hash(cookie, c->session_hash);
	so_store_t *s = readers_take(&c->srv->readers);
	int rc = s->ops->session_get(s, c->session_hash, so_clock_now_ms(), who_id, sizeof(who_id),
	                             &c->session_expires);
	readers_give(&c->srv->readers, s);
	if (rc && rc != SO_ENOTFOUND) {
		reply_error(c, 503, "unavailable", "cannot check the session now");
		return NULL;
	}
	if (rc == SO_OK)
		who = so_directory_find(&c->srv->cfg->directory, who_id);
	if (!who) {
		reply_error(c, 401, "unauthorized", "the session has ended; sign in again");
		return NULL;
	}
	csrf_of(cookie, c->csrf);
	c->by_session = 1;
	if (c->method && (strcmp(c->method, "GET") == 0 || strcmp(c->method, "HEAD") == 0))
		return who;
	/* A change needs proof that our own page sent it: the token it was given at sign-in. */
	sent = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "X-CSRF-Token");
	if (!sent || strlen(sent) != 64 || sodium_memcmp(sent, c->csrf, 64) != 0) {
		reply_error(c, 403, "csrf", "a change from the console needs its X-CSRF-Token header");
		return NULL;
	}
	return who;
}

void
h_session_get(struct conn *c, struct MHD_Connection *mc)
{
	(void)mc;
	if (!c->by_session) {
		reply_error(c, 401, "unauthorized", "no console session (this call used a token)");
		return;
	}
	reply_json(c, 200, session_json(c->srv, c->caller, c->csrf, c->session_expires));
}

/* Sign-out writes no audit event, so it goes straight to the store: it works even while
 * state changes are refused (a damaged audit log), which is when ending sessions matters. */
void
h_session_delete(struct conn *c, struct MHD_Connection *mc)
{
	(void)mc;
	if (!c->by_session) {
		reply_error(c, 401, "unauthorized", "no console session to end");
		return;
	}
	so_store_t *s = readers_take(&c->srv->readers);
	int rc = s->ops->session_delete(s, c->session_hash);
	readers_give(&c->srv->readers, s);
	if (rc) {
		reply_store_err(c, rc);
		return;
	}
	snprintf(c->set_cookie, sizeof(c->set_cookie),
	         SO_SESSION_COOKIE "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict%s",
	         c->srv->tls_cert ? "; Secure" : "");
	free(c->resp);
	if (!(c->resp = strdup(""))) {
		reply_error(c, 500, "internal", "out of memory");
		return;
	}
	c->status = 204;
	c->content_type = "text/plain";
}

/* ---- the files ---- */

int
console_asset(struct conn *c, const char *url)
{
	for (size_t i = 0; i < so_assets_count; i++) {
		if (strcmp(so_assets[i].path, url) != 0)
			continue;
		free(c->resp);
		c->resp = malloc(so_assets[i].len + 1);
		if (!c->resp) {
			reply_error(c, 500, "internal", "out of memory");
			return 1;
		}
		memcpy(c->resp, so_assets[i].data, so_assets[i].len + 1);
		c->status = 200;
		c->content_type = so_assets[i].type;
		return 1;
	}
	return 0;
}
