/*
 * The SQLite backend: WAL, synchronous=FULL (an acknowledged change survives kill -9 and
 * power loss), a busy timeout, prepared statements kept per connection, and versioned
 * migrations applied at open under an exclusive lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "store/store.h"

#define STR_(x) #x
#define STR(x) STR_(x)
#define SESSIONS_CAP STR(SO_SESSIONS_PER_PRINCIPAL)

#define BUSY_TIMEOUT_MS 10000

enum stmt_id {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_SAVEPOINT, ST_RELEASE, ST_ROLLBACK_TO,
	ST_REQ_INSERT, ST_REQ_UPDATE, ST_REQ_GET, ST_REV_INSERT, ST_REV_LIST, ST_REQ_IDEM,
	ST_REQ_DUE, ST_REQ_COUNTS, ST_AUDIT_HEAD, ST_AUDIT_INSERT, ST_AUDIT_LIST, ST_TOKEN_INSERT,
	ST_TOKEN_LOOKUP, ST_TOKEN_COUNT, ST_CP_INSERT, ST_CP_LATEST, ST_CP_LIST, ST_CP_GET_EXACT,
	ST_CP_GET_ABOVE, ST_AUDIT_FOR_REQUEST, ST_BASE_GET, ST_BASE_SET, ST_PRUNE_EVENTS,
	ST_PRUNE_CPS, ST_OB_INSERT, ST_OB_DUE, ST_OB_WAITING, ST_OB_SETTLE, ST_CM_INSERT, ST_CM_LIST,
	ST_BL_GET, ST_BL_PUT, ST_SS_PUT, ST_SS_PRUNE, ST_SS_GET, ST_SS_TAKE, ST_SS_DELETE,
	ST_SS_CAP, ST_SIG_PRUNE, ST_SIG_NOTE, ST__COUNT
};

static const char *const stmt_sql[ST__COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_SAVEPOINT] = "SAVEPOINT job",
	[ST_RELEASE] = "RELEASE job",
	[ST_ROLLBACK_TO] = "ROLLBACK TO job",
	[ST_REQ_INSERT] = "INSERT INTO requests(id, requester, on_behalf_of, owner, status, "
	                  "created_at, expires_at, grant_expires_at, idempotency_key, doc, escalate_at) "
	                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
	[ST_REQ_UPDATE] = "UPDATE requests SET status = ?2, expires_at = ?3, grant_expires_at = ?4, "
	                  "doc = ?5, escalate_at = ?6 WHERE id = ?1",
	[ST_REQ_GET] = "SELECT doc FROM requests WHERE id = ?1",
	[ST_REV_INSERT] = "INSERT INTO reviews(request_id, reviewer, decision, channel, comment, at) "
	                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_REV_LIST] = "SELECT reviewer, decision, channel, comment, at FROM reviews "
	                "WHERE request_id = ?1 ORDER BY at, rowid",
	[ST_REQ_IDEM] = "SELECT id FROM requests WHERE requester = ?1 AND idempotency_key = ?2",
	[ST_REQ_DUE] = "SELECT id FROM requests WHERE (status = 'pending' AND expires_at <= ?1) "
	               "OR (status = 'approved' AND grant_expires_at <= ?1) "
	               "OR (status = 'pending' AND escalate_at <= ?1) LIMIT ?2",
	[ST_REQ_COUNTS] = "SELECT status, count(*) FROM requests GROUP BY status",
	[ST_AUDIT_HEAD] = "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1",
	[ST_AUDIT_INSERT] = "INSERT INTO audit_events(seq, at, type, request_id, actor, data, "
	                    "prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[ST_AUDIT_LIST] = "SELECT seq, at, type, request_id, actor, data, prev_hash, hash "
	                  "FROM audit_events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
	[ST_TOKEN_INSERT] = "INSERT INTO tokens(token_sha256, principal, created_at) VALUES (?1, ?2, ?3)",
	[ST_TOKEN_LOOKUP] = "SELECT principal FROM tokens WHERE token_sha256 = ?1 AND revoked_at IS NULL",
	[ST_TOKEN_COUNT] = "SELECT count(*) FROM tokens",
	[ST_AUDIT_FOR_REQUEST] = "SELECT seq, at, type, request_id, actor, data, prev_hash, hash "
	                         "FROM audit_events WHERE request_id = ?1 ORDER BY seq",
	[ST_BASE_GET] = "SELECT seq, hash, frontier, public_key, at FROM audit_base WHERE id = 1",
	[ST_BASE_SET] = "INSERT OR REPLACE INTO audit_base(id, seq, hash, frontier, public_key, at) "
	                "VALUES (1, ?1, ?2, ?3, ?4, ?5)",
	[ST_PRUNE_EVENTS] = "DELETE FROM audit_events WHERE seq <= ?1",
	[ST_PRUNE_CPS] = "DELETE FROM checkpoints WHERE size < ?1",
	[ST_OB_INSERT] = "INSERT INTO outbox(request_id, channel, kind, target, body, next_at, "
	                 "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
	/* Due rows that no older pending row of the same request (and channel; per URL for
	 * webhooks) holds back, so rows stuck behind a retry never hide the others. */
	[ST_OB_DUE] = "SELECT id, request_id, channel, kind, target, body, attempts, next_at FROM "
	              "outbox o WHERE state = 'pending' AND next_at <= ?1 AND (request_id = '' OR "
	              "NOT EXISTS (SELECT 1 FROM outbox b WHERE b.state = 'pending' AND "
	              "b.request_id = o.request_id AND b.channel = o.channel AND b.id < o.id AND "
	              "(o.channel != 'webhook' OR b.target = o.target))) ORDER BY id LIMIT ?2",
	/* In order per request and channel; webhooks are independent of each other. */
	[ST_OB_WAITING] = "SELECT 1 FROM outbox WHERE state = 'pending' AND request_id = ?1 AND "
	                  "channel = ?2 AND id < ?3 AND (?2 != 'webhook' OR target = ?4) LIMIT 1",
	/* A private message (a refusal, a one-time sign-in link) is not kept once settled. */
	[ST_OB_SETTLE] = "UPDATE outbox SET state = coalesce(?2, state), attempts = ?3, next_at = ?4, "
	                 "last_error = ?5, done_at = CASE WHEN ?2 IS NULL THEN NULL ELSE ?6 END, "
	                 "body = CASE WHEN ?2 IS NOT NULL AND kind = 'ephemeral' THEN '{}' "
	                 "ELSE body END WHERE id = ?1",
	[ST_CM_INSERT] = "INSERT OR IGNORE INTO chat_messages(request_id, channel, target, ref, "
	                 "outbox_id) VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_CM_LIST] = "SELECT target, ref FROM chat_messages WHERE request_id = ?1 AND channel = ?2 "
	               "ORDER BY outbox_id",
	[ST_BL_GET] = "SELECT doc FROM baselines WHERE principal = ?1",
	[ST_BL_PUT] = "INSERT OR REPLACE INTO baselines(principal, doc, updated_at) VALUES (?1, ?2, ?3)",
	[ST_SS_PUT] = "INSERT INTO sessions(hash, kind, principal, expires_at, created_at) "
	              "VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_SS_PRUNE] = "DELETE FROM sessions WHERE expires_at <= ?1",
	[ST_SS_GET] = "SELECT principal, expires_at FROM sessions WHERE hash = ?1 AND "
	              "kind = 'session' AND expires_at > ?2",
	[ST_SS_TAKE] = "DELETE FROM sessions WHERE hash = ?1 AND kind = 'link' AND expires_at > ?2 "
	               "RETURNING principal",
	[ST_SS_DELETE] = "DELETE FROM sessions WHERE hash = ?1 AND kind = 'session'",
	/* the principal's newest SO_SESSIONS_PER_PRINCIPAL of a kind stay */
	[ST_SS_CAP] = "DELETE FROM sessions WHERE principal = ?1 AND kind = ?2 AND hash NOT IN "
	              "(SELECT hash FROM sessions WHERE principal = ?1 AND kind = ?2 "
	              "ORDER BY expires_at DESC, hash LIMIT " SESSIONS_CAP ")",
	[ST_SIG_PRUNE] = "DELETE FROM signatures_seen WHERE expires_at <= ?1",
	[ST_SIG_NOTE] = "INSERT OR IGNORE INTO signatures_seen(sig, expires_at) VALUES (?1, ?2)",
	[ST_CP_INSERT] = "INSERT INTO checkpoints(size, at, key_id, root, signature) "
	                 "VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_CP_LATEST] = "SELECT size, at, key_id, root, signature FROM checkpoints "
	                 "ORDER BY size DESC LIMIT 1",
	[ST_CP_LIST] = "SELECT size, at, key_id, root, signature FROM checkpoints WHERE size > ?1 "
	               "ORDER BY size LIMIT ?2",
	[ST_CP_GET_EXACT] = "SELECT size, at, key_id, root, signature FROM checkpoints WHERE size = ?1",
	[ST_CP_GET_ABOVE] = "SELECT size, at, key_id, root, signature FROM checkpoints WHERE size >= ?1 "
	                    "ORDER BY size LIMIT 1",
};

/* Each migration moves the schema from version i to i + 1. Never edit one that shipped. */
static const char *const migrations[] = {
	"CREATE TABLE requests ("
	"  id TEXT PRIMARY KEY,"
	"  requester TEXT NOT NULL,"
	"  on_behalf_of TEXT,"
	"  owner TEXT,"
	"  status TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  expires_at INTEGER NOT NULL,"
	"  grant_expires_at INTEGER,"
	"  idempotency_key TEXT,"
	"  doc TEXT NOT NULL);"
	"CREATE UNIQUE INDEX requests_idem ON requests(requester, idempotency_key)"
	"  WHERE idempotency_key IS NOT NULL;"
	"CREATE INDEX requests_created ON requests(created_at DESC, id DESC);"
	"CREATE INDEX requests_status ON requests(status, expires_at);"
	"CREATE TABLE reviews ("
	"  request_id TEXT NOT NULL REFERENCES requests(id),"
	"  reviewer TEXT NOT NULL,"
	"  decision TEXT NOT NULL CHECK (decision IN ('approve', 'deny')),"
	"  channel TEXT NOT NULL,"
	"  comment TEXT NOT NULL,"
	"  at INTEGER NOT NULL,"
	"  PRIMARY KEY (request_id, reviewer));"
	"CREATE TABLE audit_events ("
	"  seq INTEGER PRIMARY KEY,"
	"  at INTEGER NOT NULL,"
	"  type TEXT NOT NULL,"
	"  request_id TEXT,"
	"  actor TEXT,"
	"  data TEXT NOT NULL,"
	"  prev_hash TEXT NOT NULL,"
	"  hash TEXT NOT NULL);"
	"CREATE INDEX audit_request ON audit_events(request_id);"
	"CREATE TABLE tokens ("
	"  token_sha256 TEXT PRIMARY KEY,"
	"  principal TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  revoked_at INTEGER);",
	/* 2: escalations the sweeper must fire (the earliest one still to happen). */
	"ALTER TABLE requests ADD COLUMN escalate_at INTEGER;"
	"CREATE INDEX requests_escalate ON requests(escalate_at) WHERE escalate_at IS NOT NULL;",
	/* 3: signed checkpoints over the audit log's Merkle tree. */
	"CREATE TABLE checkpoints ("
	"  size INTEGER PRIMARY KEY,"
	"  at INTEGER NOT NULL,"
	"  key_id TEXT NOT NULL,"
	"  root TEXT NOT NULL,"
	"  signature TEXT NOT NULL);",
	/* 4: the sweeper looks for approvals whose grant ran out without scanning them all. */
	"CREATE INDEX requests_grant ON requests(status, grant_expires_at);",
	/* 5: where the online audit log starts after older events were archived. */
	"CREATE TABLE audit_base ("
	"  id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  seq INTEGER NOT NULL,"
	"  hash TEXT NOT NULL,"
	"  frontier TEXT NOT NULL,"
	"  public_key TEXT NOT NULL,"
	"  at INTEGER NOT NULL);",
	/* 6: the durable outbox of notifications and the chat messages they made. */
	"CREATE TABLE outbox ("
	"  id INTEGER PRIMARY KEY,"
	"  request_id TEXT NOT NULL,"
	"  channel TEXT NOT NULL,"
	"  kind TEXT NOT NULL,"
	"  target TEXT NOT NULL,"
	"  body TEXT NOT NULL,"
	"  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  next_at INTEGER NOT NULL,"
	"  last_error TEXT,"
	"  created_at INTEGER NOT NULL,"
	"  done_at INTEGER);"
	"CREATE INDEX outbox_due ON outbox(state, next_at);"
	"CREATE INDEX outbox_request ON outbox(request_id, channel, state);"
	"CREATE TABLE chat_messages ("
	"  request_id TEXT NOT NULL,"
	"  channel TEXT NOT NULL,"
	"  target TEXT NOT NULL,"
	"  ref TEXT NOT NULL,"
	"  outbox_id INTEGER NOT NULL UNIQUE,"
	"  PRIMARY KEY (channel, target, ref));"
	"CREATE INDEX chat_messages_request ON chat_messages(request_id, channel);",
	/* 7: what each principal's normal looks like (src/anomaly), one document each. */
	"CREATE TABLE baselines ("
	"  principal TEXT PRIMARY KEY,"
	"  doc TEXT NOT NULL,"
	"  updated_at INTEGER NOT NULL);",
	/* 8: console sessions and one-time sign-in links, by the SHA-256 of their secret. */
	"CREATE TABLE sessions ("
	"  hash TEXT PRIMARY KEY,"
	"  kind TEXT NOT NULL,"
	"  principal TEXT NOT NULL,"
	"  expires_at INTEGER NOT NULL,"
	"  created_at INTEGER NOT NULL);"
	"CREATE INDEX sessions_expiry ON sessions(expires_at);",
	/* 9: chat request signatures already used (replays are refused on every node). */
	"CREATE TABLE signatures_seen ("
	"  sig TEXT PRIMARY KEY,"
	"  expires_at INTEGER NOT NULL);"
	"CREATE INDEX signatures_seen_expiry ON signatures_seen(expires_at);",
};

typedef struct sqlite_store {
	so_store_t base;
	sqlite3 *db;
	sqlite3_stmt *stmt[ST__COUNT];
} sqlite_store_t;

static sqlite_store_t *
S(so_store_t *s)
{
	return (sqlite_store_t *)s;
}

static sqlite3_stmt *
prep(sqlite_store_t *s, enum stmt_id id)
{
	if (!s->stmt[id] &&
	    sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[id], NULL)
	        != SQLITE_OK) {
		so_error("sqlite: prepare failed: %s", sqlite3_errmsg(s->db));
		return NULL;
	}
	sqlite3_reset(s->stmt[id]);
	sqlite3_clear_bindings(s->stmt[id]);
	return s->stmt[id];
}

static int
step_done(sqlite_store_t *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		so_error("sqlite: %s", sqlite3_errmsg(s->db));
		return rc == SQLITE_CONSTRAINT ? SO_ECONFLICT : SO_ESTORE;
	}
	return SO_OK;
}

static int
exec_simple(so_store_t *st, enum stmt_id id)
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *p = prep(s, id);
	return p ? step_done(s, p) : SO_ESTORE;
}

static int sq_begin(so_store_t *s) { return exec_simple(s, ST_BEGIN); }
static int sq_commit(so_store_t *s) { return exec_simple(s, ST_COMMIT); }
static int sq_rollback(so_store_t *s) { return exec_simple(s, ST_ROLLBACK); }
static int sq_savepoint(so_store_t *s) { return exec_simple(s, ST_SAVEPOINT); }
static int sq_release(so_store_t *s) { return exec_simple(s, ST_RELEASE); }
static int sq_rollback_to(so_store_t *s)
{
	int rc = exec_simple(s, ST_ROLLBACK_TO);
	return rc ? rc : exec_simple(s, ST_RELEASE);
}

static void
bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static void
bind_time_or_null(sqlite3_stmt *st, int i, int64_t ms)
{
	if (ms)
		sqlite3_bind_int64(st, i, ms);
	else
		sqlite3_bind_null(st, i);
}

static int
insert_reviews(sqlite_store_t *s, const so_request_t *r, size_t first)
{
	for (size_t i = first; i < r->nreviews; i++) {
		const so_review_t *rv = &r->reviews[i];
		sqlite3_stmt *st = prep(s, ST_REV_INSERT);
		if (!st)
			return SO_ESTORE;
		sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, rv->reviewer, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, rv->verdict == SO_APPROVE ? "approve" : "deny", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, rv->channel, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, rv->comment, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, rv->at);
		int rc = step_done(s, st);
		if (rc)
			return rc;
	}
	return SO_OK;
}

static int
sq_request_insert(so_store_t *st, const so_request_t *r)
{
	sqlite_store_t *s = S(st);
	char *text = NULL;
	if (!r->doc_text) {
		json_t *doc = so_request_to_doc(r);
		text = doc ? so_json_canonical_str(doc) : NULL;
		json_decref(doc);
		if (!text)
			return SO_ENOMEM;
	}
	sqlite3_stmt *p = prep(s, ST_REQ_INSERT);
	int rc = SO_ESTORE;
	if (p) {
		sqlite3_bind_text(p, 1, r->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(p, 2, r->requester, -1, SQLITE_STATIC);
		bind_text_or_null(p, 3, r->on_behalf_of);
		bind_text_or_null(p, 4, r->owner);
		sqlite3_bind_text(p, 5, so_status_name(r->status), -1, SQLITE_STATIC);
		sqlite3_bind_int64(p, 6, r->created_at);
		sqlite3_bind_int64(p, 7, r->expires_at);
		sqlite3_bind_int64(p, 8, r->grant_expires_at);
		bind_text_or_null(p, 9, r->idempotency_key);
		sqlite3_bind_text(p, 10, text ? text : r->doc_text, -1, SQLITE_STATIC);
		bind_time_or_null(p, 11, so_core_next_escalation(r));
		rc = step_done(s, p);
	}
	free(text);
	return rc ? rc : insert_reviews(s, r, 0);
}

static int
sq_request_update(so_store_t *st, const so_request_t *r, size_t first_new_review)
{
	sqlite_store_t *s = S(st);
	json_t *doc = so_request_to_doc(r);
	char *text = doc ? so_json_canonical_str(doc) : NULL;
	json_decref(doc);
	if (!text)
		return SO_ENOMEM;
	sqlite3_stmt *p = prep(s, ST_REQ_UPDATE);
	int rc = SO_ESTORE;
	if (p) {
		sqlite3_bind_text(p, 1, r->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(p, 2, so_status_name(r->status), -1, SQLITE_STATIC);
		sqlite3_bind_int64(p, 3, r->expires_at);
		sqlite3_bind_int64(p, 4, r->grant_expires_at);
		sqlite3_bind_text(p, 5, text, -1, SQLITE_STATIC);
		bind_time_or_null(p, 6, so_core_next_escalation(r));
		rc = step_done(s, p);
		if (rc == SO_OK && sqlite3_changes(s->db) != 1)
			rc = SO_ENOTFOUND;
	}
	free(text);
	return rc ? rc : insert_reviews(s, r, first_new_review);
}

static int
load_reviews(sqlite_store_t *s, so_request_t *r)
{
	sqlite3_stmt *p = prep(s, ST_REV_LIST);
	if (!p)
		return SO_ESTORE;
	sqlite3_bind_text(p, 1, r->id, -1, SQLITE_STATIC);
	int rc, ret = SO_OK;
	while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
		const char *decision = (const char *)sqlite3_column_text(p, 1);
		ret = so_request_add_review(r, (const char *)sqlite3_column_text(p, 0),
		                            decision && !strcmp(decision, "approve") ? SO_APPROVE : SO_DENY,
		                            (const char *)sqlite3_column_text(p, 2),
		                            (const char *)sqlite3_column_text(p, 3),
		                            sqlite3_column_int64(p, 4));
		if (ret)
			break;
	}
	if (!ret && rc != SQLITE_DONE)
		ret = SO_ESTORE;
	sqlite3_reset(p);
	return ret;
}

static int
request_from_text(sqlite_store_t *s, const char *text, int len, so_request_t **out)
{
	json_error_t jerr;
	json_t *doc = json_loadb(text, (size_t)len, 0, &jerr);
	if (!doc) {
		so_error("sqlite: a stored request does not parse: %s", jerr.text);
		return SO_ESTORE;
	}
	int rc = so_request_from_doc(doc, out);
	json_decref(doc);
	if (rc) {
		so_error("sqlite: a stored request is malformed");
		return SO_ESTORE;
	}
	if ((rc = load_reviews(s, *out))) {
		so_request_free(*out);
		*out = NULL;
	}
	return rc;
}

static int
sq_request_get(so_store_t *st, const char *id, so_request_t **out)
{
	sqlite_store_t *s = S(st);
	*out = NULL;
	sqlite3_stmt *p = prep(s, ST_REQ_GET);
	if (!p)
		return SO_ESTORE;
	sqlite3_bind_text(p, 1, id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(p);
	int ret;
	if (rc == SQLITE_ROW) {
		/* Copy out before reset: the column text dies with the step. */
		int len = sqlite3_column_bytes(p, 0);
		char *text = malloc((size_t)len + 1);
		if (!text) {
			sqlite3_reset(p);
			return SO_ENOMEM;
		}
		memcpy(text, sqlite3_column_text(p, 0), (size_t)len);
		text[len] = '\0';
		sqlite3_reset(p);
		ret = request_from_text(s, text, len, out);
		free(text);
		return ret;
	}
	ret = rc == SQLITE_DONE ? SO_ENOTFOUND : SO_ESTORE;
	sqlite3_reset(p);
	return ret;
}

static int
sq_request_find_idem(so_store_t *st, const char *requester, const char *key,
                     char id[SO_ID_LEN + 1])
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *p = prep(s, ST_REQ_IDEM);
	if (!p)
		return SO_ESTORE;
	sqlite3_bind_text(p, 1, requester, -1, SQLITE_STATIC);
	sqlite3_bind_text(p, 2, key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(p), ret = SO_ENOTFOUND;
	if (rc == SQLITE_ROW) {
		snprintf(id, SO_ID_LEN + 1, "%s", (const char *)sqlite3_column_text(p, 0));
		ret = SO_OK;
	} else if (rc != SQLITE_DONE) {
		ret = SO_ESTORE;
	}
	sqlite3_reset(p);
	return ret;
}

static int
sq_request_list(so_store_t *st, const so_store_query_t *q, so_request_t ***out, size_t *n)
{
	sqlite_store_t *s = S(st);
	char sql[512];
	snprintf(sql, sizeof(sql),
	         "SELECT doc FROM requests WHERE 1 %s %s ORDER BY created_at DESC, id DESC LIMIT ?3",
	         q->has_status ? "AND status = ?1" : "",
	         q->before_created ? "AND (created_at < ?2 OR (created_at = ?2 AND id < ?4))" : "");
	sqlite3_stmt *p = NULL;
	*out = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(s->db, sql, -1, &p, NULL) != SQLITE_OK)
		return SO_ESTORE;
	if (q->has_status)
		sqlite3_bind_text(p, 1, so_status_name(q->status), -1, SQLITE_STATIC);
	sqlite3_bind_int64(p, 2, q->before_created);
	sqlite3_bind_int64(p, 3, (sqlite3_int64)q->limit);
	sqlite3_bind_text(p, 4, q->before_id ? q->before_id : "", -1, SQLITE_STATIC);
	so_request_t **items = calloc(q->limit ? q->limit : 1, sizeof(*items));
	int rc, ret = items ? SO_OK : SO_ENOMEM;
	size_t count = 0;
	while (!ret && (rc = sqlite3_step(p)) == SQLITE_ROW && count < q->limit) {
		json_error_t jerr;
		json_t *doc = json_loadb((const char *)sqlite3_column_text(p, 0),
		                         (size_t)sqlite3_column_bytes(p, 0), 0, &jerr);
		if (!doc || so_request_from_doc(doc, &items[count])) {
			ret = SO_ESTORE;
		} else {
			count++;
		}
		json_decref(doc);
	}
	sqlite3_finalize(p);
	for (size_t i = 0; !ret && i < count; i++)
		ret = load_reviews(s, items[i]);
	if (ret) {
		for (size_t i = 0; i < count; i++)
			so_request_free(items[i]);
		free(items);
		return ret;
	}
	*out = items;
	*n = count;
	return SO_OK;
}

static int
sq_request_due(so_store_t *st, int64_t now, size_t max, char (**ids)[SO_ID_LEN + 1], size_t *n)
{
	sqlite_store_t *s = S(st);
	*ids = NULL;
	*n = 0;
	sqlite3_stmt *p = prep(s, ST_REQ_DUE);
	if (!p)
		return SO_ESTORE;
	char(*list)[SO_ID_LEN + 1] = calloc(max ? max : 1, sizeof(*list));
	if (!list)
		return SO_ENOMEM;
	sqlite3_bind_int64(p, 1, now);
	sqlite3_bind_int64(p, 2, (sqlite3_int64)max);
	int rc;
	size_t count = 0;
	while ((rc = sqlite3_step(p)) == SQLITE_ROW && count < max)
		snprintf(list[count++], SO_ID_LEN + 1, "%s", (const char *)sqlite3_column_text(p, 0));
	sqlite3_reset(p);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		free(list);
		return SO_ESTORE;
	}
	*ids = list;
	*n = count;
	return SO_OK;
}

static int
sq_request_counts(so_store_t *st, int64_t counts[SO_ST__COUNT])
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *p = prep(s, ST_REQ_COUNTS);
	if (!p)
		return SO_ESTORE;
	memset(counts, 0, sizeof(int64_t) * SO_ST__COUNT);
	int rc;
	while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
		enum so_status status;
		if (so_status_parse((const char *)sqlite3_column_text(p, 0), &status) == SO_OK)
			counts[status] = sqlite3_column_int64(p, 1);
	}
	sqlite3_reset(p);
	return rc == SQLITE_DONE ? SO_OK : SO_ESTORE;
}

static int
sq_audit_base_get(so_store_t *st, so_audit_base_t *base)
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *p = prep(s, ST_BASE_GET);
	if (!p)
		return SO_ESTORE;
	int rc = sqlite3_step(p), ret = SO_OK;
	if (rc == SQLITE_ROW) {
		base->seq = sqlite3_column_int64(p, 0);
		snprintf(base->hash, sizeof(base->hash), "%s", (const char *)sqlite3_column_text(p, 1));
		snprintf(base->frontier, sizeof(base->frontier), "%s",
		         (const char *)sqlite3_column_text(p, 2));
		snprintf(base->public_key, sizeof(base->public_key), "%s",
		         (const char *)sqlite3_column_text(p, 3));
		base->at = sqlite3_column_int64(p, 4);
	} else {
		ret = rc == SQLITE_DONE ? SO_ENOTFOUND : SO_ESTORE;
	}
	sqlite3_reset(p);
	return ret;
}

static int
sq_audit_prune(so_store_t *st, const so_audit_base_t *base)
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *p = prep(s, ST_BASE_SET);
	if (!p)
		return SO_ESTORE;
	sqlite3_bind_int64(p, 1, base->seq);
	sqlite3_bind_text(p, 2, base->hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(p, 3, base->frontier, -1, SQLITE_STATIC);
	sqlite3_bind_text(p, 4, base->public_key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(p, 5, base->at);
	int rc = step_done(s, p);
	if (rc == SO_OK && (p = prep(s, ST_PRUNE_EVENTS))) {
		sqlite3_bind_int64(p, 1, base->seq);
		rc = step_done(s, p);
	}
	if (rc == SO_OK && (p = prep(s, ST_PRUNE_CPS))) {
		sqlite3_bind_int64(p, 1, base->seq);
		rc = step_done(s, p);
	}
	return p ? rc : SO_ESTORE;
}

static int
sq_audit_head(so_store_t *st, int64_t *seq, char hash[65])
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *p = prep(s, ST_AUDIT_HEAD);
	if (!p)
		return SO_ESTORE;
	int rc = sqlite3_step(p), ret = SO_OK;
	if (rc == SQLITE_ROW) {
		*seq = sqlite3_column_int64(p, 0);
		snprintf(hash, 65, "%s", (const char *)sqlite3_column_text(p, 1));
	} else if (rc == SQLITE_DONE) {
		/* No events: the log is empty, or everything was archived up to the base. */
		so_audit_base_t base;
		sqlite3_reset(p);
		ret = sq_audit_base_get(st, &base);
		if (ret == SO_OK) {
			*seq = base.seq;
			memcpy(hash, base.hash, 65);
		} else if (ret == SO_ENOTFOUND) {
			*seq = 0;
			memset(hash, '0', 64);
			hash[64] = '\0';
			ret = SO_OK;
		}
		return ret;
	} else {
		ret = SO_ESTORE;
	}
	sqlite3_reset(p);
	return ret;
}

static int
sq_audit_insert(so_store_t *st, const so_audit_row_t *row)
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *p = prep(s, ST_AUDIT_INSERT);
	if (!p)
		return SO_ESTORE;
	sqlite3_bind_int64(p, 1, row->seq);
	sqlite3_bind_int64(p, 2, row->at);
	sqlite3_bind_text(p, 3, row->type, -1, SQLITE_STATIC);
	bind_text_or_null(p, 4, row->request_id);
	bind_text_or_null(p, 5, row->actor);
	sqlite3_bind_text(p, 6, row->data, -1, SQLITE_STATIC);
	sqlite3_bind_text(p, 7, row->prev_hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(p, 8, row->hash, -1, SQLITE_STATIC);
	return step_done(s, p);
}

static int
sq_audit_list(so_store_t *st, int64_t after, size_t limit, json_t **events)
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *p = prep(s, ST_AUDIT_LIST);
	*events = NULL;
	if (!p)
		return SO_ESTORE;
	json_t *list = json_array();
	if (!list)
		return SO_ENOMEM;
	sqlite3_bind_int64(p, 1, after);
	sqlite3_bind_int64(p, 2, (sqlite3_int64)limit);
	int rc;
	while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
		json_error_t jerr;
		json_t *data = json_loadb((const char *)sqlite3_column_text(p, 5),
		                          (size_t)sqlite3_column_bytes(p, 5), JSON_DECODE_ANY, &jerr);
		const char *rid = (const char *)sqlite3_column_text(p, 3);
		const char *actor = (const char *)sqlite3_column_text(p, 4);
		char at[40];
		so_clock_format(sqlite3_column_int64(p, 1), at, sizeof(at));
		json_t *ev = json_pack("{s:I, s:s, s:s, s:o, s:o, s:o, s:s, s:s}", "seq",
		                       (json_int_t)sqlite3_column_int64(p, 0), "at", at, "type",
		                       (const char *)sqlite3_column_text(p, 2), "request_id",
		                       rid ? json_string(rid) : json_null(), "actor",
		                       actor ? json_string(actor) : json_null(), "data",
		                       data ? data : json_null(), "prev_hash",
		                       (const char *)sqlite3_column_text(p, 6), "hash",
		                       (const char *)sqlite3_column_text(p, 7));
		if (!ev || json_array_append_new(list, ev)) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_reset(p);
	if (rc != SQLITE_DONE) {
		json_decref(list);
		return SO_ESTORE;
	}
	*events = list;
	return SO_OK;
}

static int each_row(sqlite_store_t *s, sqlite3_stmt *p, so_audit_row_fn fn, void *ctx);

static int
sq_audit_each(so_store_t *st, int64_t after, size_t limit, so_audit_row_fn fn, void *ctx)
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *p = prep(s, ST_AUDIT_LIST);
	if (!p)
		return SO_ESTORE;
	sqlite3_bind_int64(p, 1, after);
	sqlite3_bind_int64(p, 2, (sqlite3_int64)limit);
	return each_row(s, p, fn, ctx);
}

static int
sq_audit_for_request(so_store_t *st, const char *request_id, so_audit_row_fn fn, void *ctx)
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *p = prep(s, ST_AUDIT_FOR_REQUEST);
	if (!p)
		return SO_ESTORE;
	sqlite3_bind_text(p, 1, request_id, -1, SQLITE_STATIC);
	return each_row(s, p, fn, ctx);
}

static int
each_row(sqlite_store_t *s, sqlite3_stmt *p, so_audit_row_fn fn, void *ctx)
{
	(void)s;
	int rc, ret = SO_OK;
	while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
		so_audit_row_t row = {
			.seq = sqlite3_column_int64(p, 0),
			.at = sqlite3_column_int64(p, 1),
			.type = (const char *)sqlite3_column_text(p, 2),
			.request_id = (const char *)sqlite3_column_text(p, 3),
			.actor = (const char *)sqlite3_column_text(p, 4),
			.data = (const char *)sqlite3_column_text(p, 5),
		};
		snprintf(row.prev_hash, sizeof(row.prev_hash), "%s", (const char *)sqlite3_column_text(p, 6));
		snprintf(row.hash, sizeof(row.hash), "%s", (const char *)sqlite3_column_text(p, 7));
		if ((ret = fn(ctx, &row)))
			break;
	}
	if (!ret && rc != SQLITE_DONE)
		ret = SO_ESTORE;
	sqlite3_reset(p);
	return ret;
}

static void
read_checkpoint(sqlite3_stmt *p, so_checkpoint_row_t *cp)
{
	cp->size = sqlite3_column_int64(p, 0);
	cp->at = sqlite3_column_int64(p, 1);
	snprintf(cp->key_id, sizeof(cp->key_id), "%s", (const char *)sqlite3_column_text(p, 2));
	snprintf(cp->root, sizeof(cp->root), "%s", (const char *)sqlite3_column_text(p, 3));
	snprintf(cp->signature, sizeof(cp->signature), "%s", (const char *)sqlite3_column_text(p, 4));
}

static int
sq_checkpoint_insert(so_store_t *st, const so_checkpoint_row_t *cp)
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *p = prep(s, ST_CP_INSERT);
	if (!p)
		return SO_ESTORE;
	sqlite3_bind_int64(p, 1, cp->size);
	sqlite3_bind_int64(p, 2, cp->at);
	sqlite3_bind_text(p, 3, cp->key_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(p, 4, cp->root, -1, SQLITE_STATIC);
	sqlite3_bind_text(p, 5, cp->signature, -1, SQLITE_STATIC);
	return step_done(s, p);
}

static int
checkpoint_one(sqlite_store_t *s, sqlite3_stmt *p, so_checkpoint_row_t *cp)
{
	int rc = sqlite3_step(p), ret = SO_OK;
	if (rc == SQLITE_ROW)
		read_checkpoint(p, cp);
	else
		ret = rc == SQLITE_DONE ? SO_ENOTFOUND : SO_ESTORE;
	sqlite3_reset(p);
	return ret;
}

static int
sq_checkpoint_latest(so_store_t *st, so_checkpoint_row_t *cp)
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *p = prep(s, ST_CP_LATEST);
	return p ? checkpoint_one(s, p, cp) : SO_ESTORE;
}

static int
sq_checkpoint_get(so_store_t *st, int64_t size, int at_least, so_checkpoint_row_t *cp)
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *p = prep(s, at_least ? ST_CP_GET_ABOVE : ST_CP_GET_EXACT);
	if (!p)
		return SO_ESTORE;
	sqlite3_bind_int64(p, 1, size);
	return checkpoint_one(s, p, cp);
}

static int
sq_checkpoint_list(so_store_t *st, int64_t after, size_t max, so_checkpoint_row_t **out,
                   size_t *n)
{
	sqlite_store_t *s = S(st);
	*out = NULL;
	*n = 0;
	sqlite3_stmt *p = prep(s, ST_CP_LIST);
	if (!p)
		return SO_ESTORE;
	so_checkpoint_row_t *list = NULL;
	size_t cap = 0, count = 0;
	sqlite3_bind_int64(p, 1, after);
	sqlite3_bind_int64(p, 2, (sqlite3_int64)max);
	int rc;
	while ((rc = sqlite3_step(p)) == SQLITE_ROW && count < max) {
		if (count == cap) {
			/* grow as rows come: `max` is a bound, not a size to allocate */
			cap = cap ? cap * 2 : 64;
			so_checkpoint_row_t *grown = realloc(list, cap * sizeof(*list));
			if (!grown) {
				rc = SQLITE_NOMEM;
				break;
			}
			list = grown;
		}
		read_checkpoint(p, &list[count++]);
	}
	sqlite3_reset(p);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		free(list);
		return rc == SQLITE_NOMEM ? SO_ENOMEM : SO_ESTORE;
	}
	*out = list;
	*n = count;
	return SO_OK;
}

static int
sq_outbox_insert(so_store_t *st, const so_outbox_row_t *row, int64_t now)
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *p = prep(s, ST_OB_INSERT);
	if (!p)
		return SO_ESTORE;
	sqlite3_bind_text(p, 1, row->request_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(p, 2, row->channel, -1, SQLITE_STATIC);
	sqlite3_bind_text(p, 3, row->kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(p, 4, row->target, -1, SQLITE_STATIC);
	sqlite3_bind_text(p, 5, row->body ? row->body : "{}", -1, SQLITE_STATIC);
	sqlite3_bind_int64(p, 6, row->next_at ? row->next_at : now);
	return step_done(s, p);
}

static char *
col_dup(sqlite3_stmt *p, int i)
{
	const char *t = (const char *)sqlite3_column_text(p, i);
	return strdup(t ? t : "");
}

static int
sq_outbox_due(so_store_t *st, int64_t now, size_t max, so_outbox_row_t **out, size_t *n)
{
	sqlite_store_t *s = S(st);
	*out = NULL;
	*n = 0;
	sqlite3_stmt *p = prep(s, ST_OB_DUE);
	if (!p)
		return SO_ESTORE;
	so_outbox_row_t *rows = calloc(max ? max : 1, sizeof(*rows));
	if (!rows)
		return SO_ENOMEM;
	sqlite3_bind_int64(p, 1, now);
	sqlite3_bind_int64(p, 2, (sqlite3_int64)max);
	int rc, ret = SO_OK;
	size_t count = 0;
	while ((rc = sqlite3_step(p)) == SQLITE_ROW && count < max) {
		so_outbox_row_t *r = &rows[count++];
		r->id = sqlite3_column_int64(p, 0);
		snprintf(r->request_id, sizeof(r->request_id), "%s", (const char *)sqlite3_column_text(p, 1));
		snprintf(r->channel, sizeof(r->channel), "%s", (const char *)sqlite3_column_text(p, 2));
		snprintf(r->kind, sizeof(r->kind), "%s", (const char *)sqlite3_column_text(p, 3));
		r->target = col_dup(p, 4);
		r->body = col_dup(p, 5);
		r->attempts = sqlite3_column_int64(p, 6);
		r->next_at = sqlite3_column_int64(p, 7);
		if (!r->target || !r->body)
			ret = SO_ENOMEM;
	}
	sqlite3_reset(p);
	if (!ret && rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = SO_ESTORE;
	if (ret) {
		so_outbox_rows_free(rows, count);
		return ret;
	}
	*out = rows;
	*n = count;
	return SO_OK;
}

static int
sq_outbox_waiting(so_store_t *st, const so_outbox_row_t *row, int *waiting)
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *p = prep(s, ST_OB_WAITING);
	if (!p)
		return SO_ESTORE;
	sqlite3_bind_text(p, 1, row->request_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(p, 2, row->channel, -1, SQLITE_STATIC);
	sqlite3_bind_int64(p, 3, row->id);
	sqlite3_bind_text(p, 4, row->target, -1, SQLITE_STATIC);
	int rc = sqlite3_step(p);
	*waiting = rc == SQLITE_ROW;
	sqlite3_reset(p);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? SO_OK : SO_ESTORE;
}

static int
sq_outbox_settle(so_store_t *st, int64_t id, const char *state, int64_t attempts,
                 int64_t next_at, const char *error, int64_t now)
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *p = prep(s, ST_OB_SETTLE);
	if (!p)
		return SO_ESTORE;
	sqlite3_bind_int64(p, 1, id);
	bind_text_or_null(p, 2, state);
	sqlite3_bind_int64(p, 3, attempts);
	sqlite3_bind_int64(p, 4, next_at);
	bind_text_or_null(p, 5, error);
	sqlite3_bind_int64(p, 6, now);
	return step_done(s, p);
}

static int
sq_chat_message_insert(so_store_t *st, const char *request_id, const char *channel,
                       const char *target, const char *ref, int64_t outbox_id)
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *p = prep(s, ST_CM_INSERT);
	if (!p)
		return SO_ESTORE;
	sqlite3_bind_text(p, 1, request_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(p, 2, channel, -1, SQLITE_STATIC);
	sqlite3_bind_text(p, 3, target, -1, SQLITE_STATIC);
	sqlite3_bind_text(p, 4, ref, -1, SQLITE_STATIC);
	sqlite3_bind_int64(p, 5, outbox_id);
	return step_done(s, p);
}

static int
sq_chat_messages(so_store_t *st, const char *request_id, const char *channel,
                 so_chat_message_fn fn, void *ctx)
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *p = prep(s, ST_CM_LIST);
	if (!p)
		return SO_ESTORE;
	sqlite3_bind_text(p, 1, request_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(p, 2, channel, -1, SQLITE_STATIC);
	int rc, ret = SO_OK;
	/* Copy out before calling back: the callback may use this connection. */
	char **targets = NULL, **refs = NULL;
	size_t n = 0;
	while ((rc = sqlite3_step(p)) == SQLITE_ROW && n < 1000) {
		char **t = realloc(targets, (n + 1) * sizeof(*t));
		char **r = t ? realloc(refs, (n + 1) * sizeof(*r)) : NULL;
		if (t)
			targets = t;
		if (r)
			refs = r;
		if (!t || !r) {
			ret = SO_ENOMEM;
			break;
		}
		targets[n] = col_dup(p, 0);
		refs[n] = col_dup(p, 1);
		n++;
	}
	sqlite3_reset(p);
	for (size_t i = 0; i < n; i++) {
		if (!ret && targets[i] && refs[i])
			ret = fn(ctx, targets[i], refs[i]);
		free(targets[i]);
		free(refs[i]);
	}
	free(targets);
	free(refs);
	return ret;
}

static int
sq_token_insert(so_store_t *st, const char *sha256_hex, const char *principal, int64_t now)
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *p = prep(s, ST_TOKEN_INSERT);
	if (!p)
		return SO_ESTORE;
	sqlite3_bind_text(p, 1, sha256_hex, -1, SQLITE_STATIC);
	sqlite3_bind_text(p, 2, principal, -1, SQLITE_STATIC);
	sqlite3_bind_int64(p, 3, now);
	return step_done(s, p);
}

static int
sq_token_lookup(so_store_t *st, const char *sha256_hex, char *principal, size_t len)
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *p = prep(s, ST_TOKEN_LOOKUP);
	if (!p)
		return SO_ESTORE;
	sqlite3_bind_text(p, 1, sha256_hex, -1, SQLITE_STATIC);
	int rc = sqlite3_step(p), ret = SO_ENOTFOUND;
	if (rc == SQLITE_ROW) {
		snprintf(principal, len, "%s", (const char *)sqlite3_column_text(p, 0));
		ret = SO_OK;
	} else if (rc != SQLITE_DONE) {
		ret = SO_ESTORE;
	}
	sqlite3_reset(p);
	return ret;
}

static int
sq_token_count(so_store_t *st, int64_t *n)
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *p = prep(s, ST_TOKEN_COUNT);
	if (!p)
		return SO_ESTORE;
	int rc = sqlite3_step(p);
	*n = rc == SQLITE_ROW ? sqlite3_column_int64(p, 0) : 0;
	sqlite3_reset(p);
	return rc == SQLITE_ROW ? SO_OK : SO_ESTORE;
}

static int
sq_baseline_get(so_store_t *st, const char *principal, char **doc)
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *p = prep(s, ST_BL_GET);
	int rc, ret = SO_ENOTFOUND;

	*doc = NULL;
	if (!p)
		return SO_ESTORE;
	sqlite3_bind_text(p, 1, principal, -1, SQLITE_STATIC);
	rc = sqlite3_step(p);
	if (rc == SQLITE_ROW) {
		*doc = strdup((const char *)sqlite3_column_text(p, 0));
		ret = *doc ? SO_OK : SO_ENOMEM;
	} else if (rc != SQLITE_DONE) {
		ret = SO_ESTORE;
	}
	sqlite3_reset(p);
	return ret;
}

static int
sq_session_put(so_store_t *st, const char *hash, const char *kind, const char *principal,
               int64_t expires_at, int64_t now)
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *prune = prep(s, ST_SS_PRUNE), *p = prep(s, ST_SS_PUT);
	if (!prune || !p)
		return SO_ESTORE;
	sqlite3_bind_int64(prune, 1, now);
	int rc = step_done(s, prune);
	if (rc)
		return rc;
	sqlite3_bind_text(p, 1, hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(p, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(p, 3, principal, -1, SQLITE_STATIC);
	sqlite3_bind_int64(p, 4, expires_at);
	sqlite3_bind_int64(p, 5, now);
	if ((rc = step_done(s, p)))
		return rc;
	sqlite3_stmt *cap = prep(s, ST_SS_CAP);
	if (!cap)
		return SO_ESTORE;
	sqlite3_bind_text(cap, 1, principal, -1, SQLITE_STATIC);
	sqlite3_bind_text(cap, 2, kind, -1, SQLITE_STATIC);
	return step_done(s, cap);
}

/* Run `p` (bound already) for at most one row: its first column as text into `out`. */
static int
one_text(sqlite_store_t *s, sqlite3_stmt *p, char *out, size_t len, int64_t *second)
{
	int rc = sqlite3_step(p), ret = SO_ENOTFOUND;
	if (rc == SQLITE_ROW) {
		snprintf(out, len, "%s", (const char *)sqlite3_column_text(p, 0));
		if (second)
			*second = sqlite3_column_int64(p, 1);
		ret = SO_OK;
		rc = sqlite3_step(p); /* a DELETE ... RETURNING is done only when stepped to the end */
	}
	if (rc != SQLITE_DONE) {
		so_error("sqlite: %s", sqlite3_errmsg(s->db));
		ret = SO_ESTORE;
	}
	sqlite3_reset(p);
	return ret;
}

static int
sq_session_get(so_store_t *st, const char *hash, int64_t now, char *principal, size_t len,
               int64_t *expires_at)
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *p = prep(s, ST_SS_GET);
	if (!p)
		return SO_ESTORE;
	sqlite3_bind_text(p, 1, hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(p, 2, now);
	return one_text(s, p, principal, len, expires_at);
}

static int
sq_session_take(so_store_t *st, const char *hash, int64_t now, char *principal, size_t len)
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *p = prep(s, ST_SS_TAKE);
	if (!p)
		return SO_ESTORE;
	sqlite3_bind_text(p, 1, hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(p, 2, now);
	return one_text(s, p, principal, len, NULL);
}

static int
sq_session_delete(so_store_t *st, const char *hash)
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *p = prep(s, ST_SS_DELETE);
	if (!p)
		return SO_ESTORE;
	sqlite3_bind_text(p, 1, hash, -1, SQLITE_STATIC);
	return step_done(s, p);
}

static int
sq_signature_seen(so_store_t *st, const char *sig, int64_t now, int64_t until, int *seen)
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *prune = prep(s, ST_SIG_PRUNE), *p = prep(s, ST_SIG_NOTE);
	*seen = 1; /* until known otherwise: a replay is refused */
	if (!prune || !p)
		return SO_ESTORE;
	sqlite3_bind_int64(prune, 1, now);
	int rc = step_done(s, prune);
	if (rc)
		return rc;
	sqlite3_bind_text(p, 1, sig, -1, SQLITE_STATIC);
	sqlite3_bind_int64(p, 2, until);
	if ((rc = step_done(s, p)) == SO_OK)
		*seen = sqlite3_changes(s->db) == 0;
	return rc;
}

static int
sq_baseline_put(so_store_t *st, const char *principal, const char *doc, int64_t now)
{
	sqlite_store_t *s = S(st);
	sqlite3_stmt *p = prep(s, ST_BL_PUT);
	if (!p)
		return SO_ESTORE;
	sqlite3_bind_text(p, 1, principal, -1, SQLITE_STATIC);
	sqlite3_bind_text(p, 2, doc, -1, SQLITE_STATIC);
	sqlite3_bind_int64(p, 3, now);
	return step_done(s, p);
}

static void
sq_close(so_store_t *st)
{
	sqlite_store_t *s = S(st);
	for (int i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	sqlite3_close(s->db);
	free(s);
}

static int
exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "%s", msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return SO_ESTORE;
	}
	return SO_OK;
}

static int
migrate(sqlite3 *db, char *err, size_t errlen)
{
	const int latest = (int)(sizeof(migrations) / sizeof(migrations[0]));
	int rc = exec_sql(db, "BEGIN EXCLUSIVE", err, errlen);
	if (rc)
		return rc;
	sqlite3_stmt *p = NULL;
	int version = 0;
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &p, NULL) == SQLITE_OK &&
	    sqlite3_step(p) == SQLITE_ROW)
		version = sqlite3_column_int(p, 0);
	sqlite3_finalize(p);
	if (version > latest) {
		snprintf(err, errlen, "database schema version %d is newer than this signoffd (%d)",
		         version, latest);
		exec_sql(db, "ROLLBACK", err + strlen(err), 0);
		return SO_ESTORE;
	}
	for (int v = version; v < latest; v++) {
		char pragma[64];
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v + 1);
		if ((rc = exec_sql(db, migrations[v], err, errlen)) ||
		    (rc = exec_sql(db, pragma, err, errlen))) {
			char ignore[8];
			exec_sql(db, "ROLLBACK", ignore, sizeof(ignore));
			return rc;
		}
		so_info("store: applied schema migration %d", v + 1);
	}
	return exec_sql(db, "COMMIT", err, errlen);
}

/*
 * "PATH" or "PATH?busy_timeout_ms=N": how long a write waits for a lock held by another
 * process before it fails (and the API answers 503, changing nothing).
 */
static int
parse_target(const char *target, char *path, size_t pathlen, int *busy_ms, char *err,
             size_t errlen)
{
	const char *q = strchr(target, '?');
	size_t n = q ? (size_t)(q - target) : strlen(target);
	if (!n || n >= pathlen) {
		snprintf(err, errlen, "sqlite store needs a file path (sqlite:PATH)");
		return SO_ECONFIG;
	}
	memcpy(path, target, n);
	path[n] = '\0';
	*busy_ms = BUSY_TIMEOUT_MS;
	if (q) {
		char *end;
		long v;
		if (strncmp(q + 1, "busy_timeout_ms=", 16) ||
		    (v = strtol(q + 17, &end, 10), *end || end == q + 17 || v < 0 || v > 600000)) {
			snprintf(err, errlen, "sqlite store: the only option is ?busy_timeout_ms=0..600000");
			return SO_ECONFIG;
		}
		*busy_ms = (int)v;
	}
	return SO_OK;
}

static int
sq_open(const char *target, so_store_t **out, char *err, size_t errlen)
{
	char path[4096];
	int busy_ms, rc;
	if ((rc = parse_target(target, path, sizeof(path), &busy_ms, err, errlen)))
		return rc;
	sqlite_store_t *s = calloc(1, sizeof(*s));
	if (!s)
		return SO_ENOMEM;
	s->base.ops = &so_store_sqlite_ops;
	if (sqlite3_open_v2(path, &s->db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                    NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		         s->db ? sqlite3_errmsg(s->db) : "out of memory");
		rc = SO_ESTORE;
		goto fail;
	}
	sqlite3_busy_timeout(s->db, busy_ms);
	if ((rc = exec_sql(s->db,
	                   "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
	                   "PRAGMA foreign_keys = ON;",
	                   err, errlen)) ||
	    (rc = migrate(s->db, err, errlen)))
		goto fail;
	*out = &s->base;
	return SO_OK;
fail:
	sq_close(&s->base);
	return rc;
}

const so_store_ops_t so_store_sqlite_ops = {
	.scheme = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.savepoint = sq_savepoint,
	.release = sq_release,
	.rollback_to = sq_rollback_to,
	.request_insert = sq_request_insert,
	.request_update = sq_request_update,
	.request_get = sq_request_get,
	.request_find_idem = sq_request_find_idem,
	.request_list = sq_request_list,
	.request_due = sq_request_due,
	.request_counts = sq_request_counts,
	.audit_head = sq_audit_head,
	.audit_insert = sq_audit_insert,
	.audit_list = sq_audit_list,
	.audit_each = sq_audit_each,
	.audit_for_request = sq_audit_for_request,
	.audit_base_get = sq_audit_base_get,
	.audit_prune = sq_audit_prune,
	.checkpoint_insert = sq_checkpoint_insert,
	.checkpoint_latest = sq_checkpoint_latest,
	.checkpoint_list = sq_checkpoint_list,
	.checkpoint_get = sq_checkpoint_get,
	.outbox_insert = sq_outbox_insert,
	.outbox_due = sq_outbox_due,
	.outbox_waiting = sq_outbox_waiting,
	.outbox_settle = sq_outbox_settle,
	.chat_message_insert = sq_chat_message_insert,
	.chat_messages = sq_chat_messages,
	.token_insert = sq_token_insert,
	.token_lookup = sq_token_lookup,
	.token_count = sq_token_count,
	.baseline_get = sq_baseline_get,
	.baseline_put = sq_baseline_put,
	.session_put = sq_session_put,
	.session_get = sq_session_get,
	.session_take = sq_session_take,
	.session_delete = sq_session_delete,
	.signature_seen = sq_signature_seen,
};
