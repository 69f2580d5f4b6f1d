/*
 * The PostgreSQL backend (libpq), chosen by "postgresql://..." (or "postgres://..."). The URL
 * goes to libpq as a connection URI as it is, so every libpq parameter (sslmode, sslrootcert,
 * sslcert, sslkey, passfile, target_session_attrs, ...) passes through; ours are only
 * defaults the URL may override (timeouts, keepalives), plus client_encoding=UTF8, which it
 * may not. Statements are prepared once per connection and run with bound parameters only.
 * The same versioned migrations as sqlite.c, applied at open inside one transaction that
 * holds a fixed advisory lock, so nodes starting together apply each one once.
 *
 * A lost connection fails the call with SO_ESTORE (nothing is retried behind the caller's
 * back); the next call tries PQreset once. A transaction the connection died in stays failed
 * until the caller ends it: no statement after it ever runs on its own.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "store/store.h"

#define STR_(x) #x
#define STR(x) STR_(x)
#define SESSIONS_CAP STR(SO_SESSIONS_PER_PRINCIPAL)

/* The key of pg_advisory_xact_lock() that migrations run under: "signoff" in ASCII. */
#define MIGRATION_LOCK_KEY "32496487014361958"
/*
 * The key every write transaction locks first (pg_advisory_xact_lock), so the state changes
 * of all nodes sharing the database are serialized: the audit chain gets one head, and each
 * load-decide-write step sees the last one's result. "signoffW" in ASCII.
 */
#define WRITE_LOCK_KEY "7165064183136218967"
/* The LISTEN/NOTIFY channel nodes tell each other about changes on. */
#define ANNOUNCE_CHANNEL "signoff_changes"
/* How long a node waits at open for another node's migrations before it gives up. */
#define MIGRATION_LOCK_WAIT "120s"
/* Most parameters of any statement below. */
#define MAX_PARAMS 12
/* Most chat messages remembered per request and channel (as in sqlite.c). */
#define MAX_CHAT_MESSAGES "1000"

/*
 * Connection defaults, overridden by the same keys in the URL. lock_timeout plays the part
 * of SQLite's busy timeout; statement_timeout bounds any one statement; keepalives and
 * tcp_user_timeout notice a server that vanished without closing the connection.
 */
static const char *const default_keys[] = {
	"connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
	"keepalives_count", "tcp_user_timeout", "application_name", "options",
};
static const char *const default_values[] = {
	"10", "1", "30", "10", "3", "30000", "signoffd",
	"-c lock_timeout=10000 -c statement_timeout=30000",
};
#define NDEFAULTS (sizeof(default_keys) / sizeof(default_keys[0]))

extern const so_store_ops_t so_store_postgres_ops, so_store_postgres_alias_ops;

enum stmt_id {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_SAVEPOINT, ST_RELEASE, ST_ROLLBACK_TO,
	ST_REQ_INSERT, ST_REQ_UPDATE, ST_REQ_GET, ST_REV_INSERT, ST_REV_LIST, ST_REQ_IDEM,
	ST_REQ_LIST, ST_REQ_LIST_STATUS, ST_REQ_LIST_BEFORE, ST_REQ_LIST_STATUS_BEFORE,
	ST_REQ_DUE, ST_REQ_COUNTS, ST_AUDIT_HEAD, ST_AUDIT_INSERT, ST_AUDIT_LIST, ST_TOKEN_INSERT,
	ST_TOKEN_LOOKUP, ST_TOKEN_COUNT, ST_CP_INSERT, ST_CP_LATEST, ST_CP_LIST, ST_CP_GET_EXACT,
	ST_CP_GET_ABOVE, ST_AUDIT_FOR_REQUEST, ST_BASE_GET, ST_BASE_SET, ST_PRUNE_EVENTS,
	ST_PRUNE_CPS, ST_OB_INSERT, ST_OB_DUE, ST_OB_WAITING, ST_OB_SETTLE, ST_CM_INSERT, ST_CM_LIST,
	ST_BL_GET, ST_BL_PUT, ST_SS_PUT, ST_SS_PRUNE, ST_SS_GET, ST_SS_TAKE, ST_SS_DELETE,
	ST_SS_CAP, ST_SIG_PRUNE, ST_SIG_NOTE, ST_WRITE_LOCK, ST_OB_CLAIM, ST_ANNOUNCE, ST_LISTEN,
	ST__COUNT
};

#define REQ_LIST_SQL(where, limit)                                                         \
	"SELECT doc FROM requests " where " ORDER BY created_at DESC, id DESC LIMIT " limit

static const char *const stmt_sql[ST__COUNT] = {
	/* The write lock is what makes each write see the last one: that needs a snapshot per
	 * statement, whatever default_transaction_isolation the database or role sets. */
	[ST_BEGIN] = "BEGIN ISOLATION LEVEL READ COMMITTED",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_SAVEPOINT] = "SAVEPOINT job",
	[ST_RELEASE] = "RELEASE SAVEPOINT job",
	[ST_ROLLBACK_TO] = "ROLLBACK TO SAVEPOINT job",
	[ST_REQ_INSERT] = "INSERT INTO requests(id, requester, on_behalf_of, owner, status, "
	                  "created_at, expires_at, grant_expires_at, idempotency_key, doc, escalate_at) "
	                  "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
	[ST_REQ_UPDATE] = "UPDATE requests SET status = $2, expires_at = $3, grant_expires_at = $4, "
	                  "doc = $5, escalate_at = $6 WHERE id = $1",
	[ST_REQ_GET] = "SELECT doc FROM requests WHERE id = $1",
	[ST_REV_INSERT] = "INSERT INTO reviews(request_id, reviewer, decision, channel, comment, at) "
	                  "VALUES ($1, $2, $3, $4, $5, $6)",
	[ST_REV_LIST] = "SELECT reviewer, decision, channel, comment, at FROM reviews "
	                "WHERE request_id = $1 ORDER BY at, ord",
	[ST_REQ_IDEM] = "SELECT id FROM requests WHERE requester = $1 AND idempotency_key = $2",
	/* One statement per shape of the filter, so each gets its own plan. */
	[ST_REQ_LIST] = REQ_LIST_SQL("", "$1"),
	[ST_REQ_LIST_STATUS] = REQ_LIST_SQL("WHERE status = $1", "$2"),
	[ST_REQ_LIST_BEFORE] = REQ_LIST_SQL("WHERE (created_at, id) < ($1, $2)", "$3"),
	[ST_REQ_LIST_STATUS_BEFORE] =
	    REQ_LIST_SQL("WHERE status = $1 AND (created_at, id) < ($2, $3)", "$4"),
	[ST_REQ_DUE] = "SELECT id FROM requests WHERE (status = 'pending' AND expires_at <= $1) "
	               "OR (status = 'approved' AND grant_expires_at <= $1) "
	               "OR (status = 'pending' AND escalate_at <= $1) LIMIT $2",
	[ST_REQ_COUNTS] = "SELECT status, count(*) FROM requests GROUP BY status",
	[ST_AUDIT_HEAD] = "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1",
	[ST_AUDIT_INSERT] = "INSERT INTO audit_events(seq, at, type, request_id, actor, data, "
	                    "prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
	[ST_AUDIT_LIST] = "SELECT seq, at, type, request_id, actor, data, prev_hash, hash "
	                  "FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2",
	[ST_TOKEN_INSERT] = "INSERT INTO tokens(token_sha256, principal, created_at) VALUES ($1, $2, $3)",
	[ST_TOKEN_LOOKUP] = "SELECT principal FROM tokens WHERE token_sha256 = $1 AND revoked_at IS NULL",
	[ST_TOKEN_COUNT] = "SELECT count(*) FROM tokens",
	[ST_AUDIT_FOR_REQUEST] = "SELECT seq, at, type, request_id, actor, data, prev_hash, hash "
	                         "FROM audit_events WHERE request_id = $1 ORDER BY seq",
	[ST_BASE_GET] = "SELECT seq, hash, frontier, public_key, at FROM audit_base WHERE id = 1",
	[ST_BASE_SET] = "INSERT INTO audit_base(id, seq, hash, frontier, public_key, at) "
	                "VALUES (1, $1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET "
	                "seq = excluded.seq, hash = excluded.hash, frontier = excluded.frontier, "
	                "public_key = excluded.public_key, at = excluded.at",
	[ST_PRUNE_EVENTS] = "DELETE FROM audit_events WHERE seq <= $1",
	[ST_PRUNE_CPS] = "DELETE FROM checkpoints WHERE size < $1",
	[ST_OB_INSERT] = "INSERT INTO outbox(request_id, channel, kind, target, body, next_at, "
	                 "created_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
	/* As in sqlite.c: due rows that no older pending row of the same request (and channel;
	 * per URL for webhooks) holds back. */
	[ST_OB_DUE] = "SELECT id, request_id, channel, kind, target, body, attempts, next_at FROM "
	              "outbox o WHERE state = 'pending' AND next_at <= $1 AND (request_id = '' OR "
	              "NOT EXISTS (SELECT 1 FROM outbox b WHERE b.state = 'pending' AND "
	              "b.request_id = o.request_id AND b.channel = o.channel AND b.id < o.id AND "
	              "(o.channel <> 'webhook' OR b.target = o.target))) ORDER BY id LIMIT $2",
	[ST_OB_WAITING] = "SELECT 1 FROM outbox WHERE state = 'pending' AND request_id = $1 AND "
	                  "channel = $2::text AND id < $3 AND ($2::text <> 'webhook' OR target = $4) "
	                  "LIMIT 1",
	/* A private message (a refusal, a one-time sign-in link) is not kept once settled. */
	[ST_OB_SETTLE] = "UPDATE outbox SET state = coalesce($2::text, state), attempts = $3, "
	                 "next_at = $4, last_error = $5, "
	                 "done_at = CASE WHEN $2::text IS NULL THEN NULL ELSE $6::bigint END, "
	                 "body = CASE WHEN $2::text IS NOT NULL AND kind = 'ephemeral' THEN '{}' "
	                 "ELSE body END WHERE id = $1",
	[ST_SS_PUT] = "INSERT INTO sessions(hash, kind, principal, expires_at, created_at) "
	              "VALUES ($1, $2, $3, $4, $5)",
	[ST_SS_PRUNE] = "DELETE FROM sessions WHERE expires_at <= $1",
	[ST_SS_GET] = "SELECT principal, expires_at FROM sessions WHERE hash = $1 AND "
	              "kind = 'session' AND expires_at > $2",
	[ST_SS_TAKE] = "DELETE FROM sessions WHERE hash = $1 AND kind = 'link' AND expires_at > $2 "
	               "RETURNING principal",
	[ST_SS_DELETE] = "DELETE FROM sessions WHERE hash = $1 AND kind = 'session'",
	/* the principal's newest SO_SESSIONS_PER_PRINCIPAL of a kind stay */
	[ST_SS_CAP] = "DELETE FROM sessions WHERE principal = $1 AND kind = $2 AND hash NOT IN "
	              "(SELECT hash FROM sessions WHERE principal = $1 AND kind = $2 "
	              "ORDER BY expires_at DESC, hash LIMIT " SESSIONS_CAP ")",
	[ST_SIG_PRUNE] = "DELETE FROM signatures_seen WHERE expires_at <= $1",
	[ST_SIG_NOTE] = "INSERT INTO signatures_seen(sig, expires_at) VALUES ($1, $2) "
	                "ON CONFLICT DO NOTHING",
	[ST_OB_CLAIM] = "UPDATE outbox SET next_at = $3 WHERE id = $1 AND state = 'pending' AND "
	                "next_at <= $2",
	[ST_WRITE_LOCK] = "SELECT pg_advisory_xact_lock(" WRITE_LOCK_KEY ")",
	[ST_ANNOUNCE] = "SELECT pg_notify('" ANNOUNCE_CHANNEL "', $1)",
	[ST_LISTEN] = "LISTEN " ANNOUNCE_CHANNEL,
	[ST_CM_INSERT] = "INSERT INTO chat_messages(request_id, channel, target, ref, outbox_id) "
	                 "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
	[ST_CM_LIST] = "SELECT target, ref FROM chat_messages WHERE request_id = $1 AND channel = $2 "
	               "ORDER BY outbox_id LIMIT " MAX_CHAT_MESSAGES,
	[ST_BL_GET] = "SELECT doc FROM baselines WHERE principal = $1",
	[ST_BL_PUT] = "INSERT INTO baselines(principal, doc, updated_at) VALUES ($1, $2, $3) "
	              "ON CONFLICT (principal) DO UPDATE SET doc = excluded.doc, "
	              "updated_at = excluded.updated_at",
	[ST_CP_INSERT] = "INSERT INTO checkpoints(size, at, key_id, root, signature) "
	                 "VALUES ($1, $2, $3, $4, $5)",
	[ST_CP_LATEST] = "SELECT size, at, key_id, root, signature FROM checkpoints "
	                 "ORDER BY size DESC LIMIT 1",
	[ST_CP_LIST] = "SELECT size, at, key_id, root, signature FROM checkpoints WHERE size > $1 "
	               "ORDER BY size LIMIT $2",
	[ST_CP_GET_EXACT] = "SELECT size, at, key_id, root, signature FROM checkpoints WHERE size = $1",
	[ST_CP_GET_ABOVE] = "SELECT size, at, key_id, root, signature FROM checkpoints WHERE size >= $1 "
	                    "ORDER BY size LIMIT 1",
};

/*
 * Each migration moves the schema from version i to i + 1, exactly as sqlite.c's do, with the
 * same tables and column names. Times are BIGINT milliseconds; JSON stays TEXT (the audit
 * hashes are over its exact bytes); request ids compare bytewise (COLLATE "C") so listing
 * order and cursors match SQLite's whatever the database's locale. reviews.ord stands for
 * SQLite's rowid (insertion order among reviews made in the same millisecond). Never edit
 * one that shipped.
 */
static const char *const migrations[] = {
	"CREATE TABLE requests ("
	"  id TEXT COLLATE \"C\" PRIMARY KEY,"
	"  requester TEXT NOT NULL,"
	"  on_behalf_of TEXT,"
	"  owner TEXT,"
	"  status TEXT NOT NULL,"
	"  created_at BIGINT NOT NULL,"
	"  expires_at BIGINT NOT NULL,"
	"  grant_expires_at BIGINT,"
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
	"  at BIGINT NOT NULL,"
	"  ord BIGINT GENERATED ALWAYS AS IDENTITY,"
	"  PRIMARY KEY (request_id, reviewer));"
	"CREATE TABLE audit_events ("
	"  seq BIGINT PRIMARY KEY,"
	"  at BIGINT NOT NULL,"
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
	"  created_at BIGINT NOT NULL,"
	"  revoked_at BIGINT);",
	/* 2: escalations the sweeper must fire (the earliest one still to happen). */
	"ALTER TABLE requests ADD COLUMN escalate_at BIGINT;"
	"CREATE INDEX requests_escalate ON requests(escalate_at) WHERE escalate_at IS NOT NULL;",
	/* 3: signed checkpoints over the audit log's Merkle tree. */
	"CREATE TABLE checkpoints ("
	"  size BIGINT PRIMARY KEY,"
	"  at BIGINT NOT NULL,"
	"  key_id TEXT NOT NULL,"
	"  root TEXT NOT NULL,"
	"  signature TEXT NOT NULL);",
	/* 4: the sweeper looks for approvals whose grant ran out without scanning them all. */
	"CREATE INDEX requests_grant ON requests(status, grant_expires_at);",
	/* 5: where the online audit log starts after older events were archived. */
	"CREATE TABLE audit_base ("
	"  id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  seq BIGINT NOT NULL,"
	"  hash TEXT NOT NULL,"
	"  frontier TEXT NOT NULL,"
	"  public_key TEXT NOT NULL,"
	"  at BIGINT NOT NULL);",
	/* 6: the durable outbox of notifications and the chat messages they made. */
	"CREATE TABLE outbox ("
	"  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	"  request_id TEXT NOT NULL,"
	"  channel TEXT NOT NULL,"
	"  kind TEXT NOT NULL,"
	"  target TEXT NOT NULL,"
	"  body TEXT NOT NULL,"
	"  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),"
	"  attempts BIGINT NOT NULL DEFAULT 0,"
	"  next_at BIGINT NOT NULL,"
	"  last_error TEXT,"
	"  created_at BIGINT NOT NULL,"
	"  done_at BIGINT);"
	"CREATE INDEX outbox_due ON outbox(state, next_at);"
	"CREATE INDEX outbox_request ON outbox(request_id, channel, state);"
	"CREATE TABLE chat_messages ("
	"  request_id TEXT NOT NULL,"
	"  channel TEXT NOT NULL,"
	"  target TEXT NOT NULL,"
	"  ref TEXT NOT NULL,"
	"  outbox_id BIGINT NOT NULL UNIQUE,"
	"  PRIMARY KEY (channel, target, ref));"
	"CREATE INDEX chat_messages_request ON chat_messages(request_id, channel);",
	/* 7: what each principal's normal looks like (src/anomaly), one document each. */
	"CREATE TABLE baselines ("
	"  principal TEXT PRIMARY KEY,"
	"  doc TEXT NOT NULL,"
	"  updated_at BIGINT NOT NULL);",
	/* 8: console sessions and one-time sign-in links, by the SHA-256 of their secret. */
	"CREATE TABLE sessions ("
	"  hash TEXT PRIMARY KEY,"
	"  kind TEXT NOT NULL,"
	"  principal TEXT NOT NULL,"
	"  expires_at BIGINT NOT NULL,"
	"  created_at BIGINT NOT NULL);"
	"CREATE INDEX sessions_expiry ON sessions(expires_at);",
	/* 9: chat request signatures already used (replays are refused on every node). */
	"CREATE TABLE signatures_seen ("
	"  sig TEXT PRIMARY KEY,"
	"  expires_at BIGINT NOT NULL);"
	"CREATE INDEX signatures_seen_expiry ON signatures_seen(expires_at);",
};

typedef struct pg_store {
	so_store_t base;
	PGconn *conn;
	unsigned char prepared[ST__COUNT]; /* on this connection; PQreset forgets them all */
	int in_tx;   /* between a BEGIN that worked and its COMMIT or ROLLBACK */
	int tx_lost; /* the connection died inside that transaction */
	int listening;   /* LISTEN is in force on this connection */
	int listen_lost; /* a reset dropped it: announcements were lost, and no longer come */
} pg_store_t;

static pg_store_t *
S(so_store_t *s)
{
	return (pg_store_t *)s;
}

/* ---- parameters: always bound, numbers as their decimal text ---- */

struct params {
	int n;
	const char *v[MAX_PARAMS];
	char num[MAX_PARAMS][24];
};

static void
p_text(struct params *p, const char *v)
{
	p->v[p->n++] = v;
}

static void
p_i64(struct params *p, int64_t v)
{
	snprintf(p->num[p->n], sizeof(p->num[p->n]), "%" PRId64, v);
	p->v[p->n] = p->num[p->n];
	p->n++;
}

/* A row limit; past what a bigint holds means no limit at all. */
static void
p_limit(struct params *p, size_t max)
{
	p_i64(p, max > INT64_MAX ? INT64_MAX : (int64_t)max);
}

/* 0 means "no time" and is stored as NULL (as sqlite.c's bind_time_or_null). */
static void
p_time_or_null(struct params *p, int64_t ms)
{
	if (ms)
		p_i64(p, ms);
	else
		p_text(p, NULL);
}

/* ---- columns ---- */

static int64_t
col_i64(const PGresult *res, int row, int col)
{
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* The column's text, or NULL for SQL NULL. Lives as long as `res`. */
static const char *
col_text(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static char *
col_dup(const PGresult *res, int row, int col)
{
	return strdup(PQgetvalue(res, row, col));
}

/* ---- running statements ---- */

/* Server notices (NOTICE, WARNING) go to the log, not to libpq's default of stderr. */
static void
on_notice(void *arg, const PGresult *res)
{
	(void)arg;
	const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	if (severity && !strcmp(severity, "WARNING"))
		so_warn("postgres: %s", msg ? msg : "(warning)");
	else
		so_debug("postgres: %s", msg ? msg : "(notice)");
}

/*
 * Before each call: a connection that died is reset once (and its prepared statements are
 * made again as they are used). A transaction it died in stays failed until COMMIT or
 * ROLLBACK: running the rest of it on a new connection would commit its parts one by one.
 */
static int
ready(pg_store_t *s)
{
	if (s->tx_lost)
		return SO_ESTORE;
	/* An idle connection the server ended (a restart, a failover) has said so on its socket:
	 * read that now, so it is reset before use rather than failing its next call. */
	struct pollfd pfd = {.fd = PQsocket(s->conn), .events = POLLIN};
	for (int i = 0; i < 4 && !s->in_tx && PQstatus(s->conn) == CONNECTION_OK &&
	                poll(&pfd, 1, 0) > 0;
	     i++)
		if (!PQconsumeInput(s->conn))
			break; /* the end of the connection: the status says so now */
	if (PQstatus(s->conn) == CONNECTION_OK)
		return SO_OK;
	if (s->in_tx) {
		s->tx_lost = 1;
		return SO_ESTORE;
	}
	so_warn("postgres: the connection was lost; reconnecting");
	PQreset(s->conn);
	memset(s->prepared, 0, sizeof(s->prepared));
	/* LISTEN does not carry over: next_announcement must say so until listen is called */
	if (s->listening)
		s->listen_lost = 1;
	s->listening = 0;
	if (PQstatus(s->conn) != CONNECTION_OK) {
		const char *msg = PQerrorMessage(s->conn);
		so_error("postgres: reconnecting failed: %.*s", (int)strcspn(msg, "\n"), msg);
		return SO_ESTORE;
	}
	so_info("postgres: reconnected");
	return SO_OK;
}

/*
 * A failed result: SO_ECONFLICT for an integrity constraint (SQLSTATE class 23, as SQLite's
 * SQLITE_CONSTRAINT), SO_ESTORE for everything else, a lost connection included. The log
 * gets the primary message only: the DETAIL line would quote the values (token hashes too).
 */
static int
failure(pg_store_t *s, const PGresult *res, const char *sql)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	if (!msg) {
		msg = PQerrorMessage(s->conn);
		/* libpq's own messages may run over lines */
		so_error("postgres: %.60s: %.*s", sql, (int)strcspn(msg, "\n"), msg);
	} else {
		so_error("postgres: %.60s: %s (%s)", sql, msg, state ? state : "?");
	}
	if (PQstatus(s->conn) != CONNECTION_OK) {
		if (s->in_tx)
			s->tx_lost = 1;
		return SO_ESTORE;
	}
	return state && !strncmp(state, "23", 2) ? SO_ECONFLICT : SO_ESTORE;
}

static int
prepare(pg_store_t *s, enum stmt_id id, const char *name)
{
	if (s->prepared[id])
		return SO_OK;
	PGresult *res = PQprepare(s->conn, name, stmt_sql[id], 0, NULL);
	int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? SO_OK : failure(s, res, stmt_sql[id]);
	PQclear(res);
	if (rc == SO_OK)
		s->prepared[id] = 1;
	return rc;
}

/* Run statement `id`; on SO_OK `*out` holds its result (the caller PQclear()s it). */
static int
query(pg_store_t *s, enum stmt_id id, const struct params *p, PGresult **out)
{
	char name[16];
	int rc;
	*out = NULL;
	snprintf(name, sizeof(name), "so_%d", (int)id);
	if ((rc = ready(s)) || (rc = prepare(s, id, name)))
		return rc;
	PGresult *res = PQexecPrepared(s->conn, name, p ? p->n : 0, p ? p->v : NULL, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		*out = res;
		return SO_OK;
	}
	rc = failure(s, res, stmt_sql[id]);
	PQclear(res);
	return rc;
}

/* Run a statement that returns no rows; `changed` (if not NULL) gets the rows it touched. */
static int
command(pg_store_t *s, enum stmt_id id, const struct params *p, long *changed)
{
	PGresult *res;
	int rc = query(s, id, p, &res);
	if (rc == SO_OK && changed)
		*changed = strtol(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return rc;
}

/* ---- transactions ---- */

static void
end_tx(pg_store_t *s)
{
	s->in_tx = 0;
	s->tx_lost = 0;
}

static int pgs_rollback(so_store_t *st);

static int
pgs_begin(so_store_t *st)
{
	pg_store_t *s = S(st);
	int rc = command(s, ST_BEGIN, NULL, NULL);
	if (rc)
		return rc;
	s->in_tx = 1;
	/* Wait for any other node's write to end (at most lock_timeout, then fail). */
	PGresult *res = NULL;
	if ((rc = query(s, ST_WRITE_LOCK, NULL, &res))) {
		pgs_rollback(st);
		return rc;
	}
	PQclear(res);
	return SO_OK;
}

static int
pgs_commit(so_store_t *st)
{
	pg_store_t *s = S(st);
	PGresult *res = NULL;
	int rc = query(s, ST_COMMIT, NULL, &res);
	/* COMMIT of a transaction a statement failed in rolls it back and says so: fail. */
	if (rc == SO_OK && strcmp(PQcmdStatus(res), "COMMIT")) {
		so_error("postgres: COMMIT rolled back a failed transaction");
		rc = SO_ESTORE;
	}
	PQclear(res);
	end_tx(s);
	return rc;
}

static int
pgs_rollback(so_store_t *st)
{
	pg_store_t *s = S(st);
	int rc = SO_OK;
	/* A transaction whose connection died was rolled back by the server already; one whose
	 * BEGIN failed never started. */
	if (s->in_tx && !s->tx_lost)
		rc = command(s, ST_ROLLBACK, NULL, NULL);
	end_tx(s);
	return rc;
}

static int pgs_savepoint(so_store_t *s) { return command(S(s), ST_SAVEPOINT, NULL, NULL); }
static int pgs_release(so_store_t *s) { return command(S(s), ST_RELEASE, NULL, NULL); }
static int pgs_rollback_to(so_store_t *s)
{
	int rc = command(S(s), ST_ROLLBACK_TO, NULL, NULL);
	return rc ? rc : command(S(s), ST_RELEASE, NULL, NULL);
}

/* ---- requests ---- */

static int
insert_reviews(pg_store_t *s, const so_request_t *r, size_t first)
{
	for (size_t i = first; i < r->nreviews; i++) {
		const so_review_t *rv = &r->reviews[i];
		struct params p = {0};
		p_text(&p, r->id);
		p_text(&p, rv->reviewer);
		p_text(&p, rv->verdict == SO_APPROVE ? "approve" : "deny");
		p_text(&p, rv->channel);
		p_text(&p, rv->comment);
		p_i64(&p, rv->at);
		int rc = command(s, ST_REV_INSERT, &p, NULL);
		if (rc)
			return rc;
	}
	return SO_OK;
}

static int
pgs_request_insert(so_store_t *st, const so_request_t *r)
{
	pg_store_t *s = S(st);
	char *text = NULL;
	if (!r->doc_text) {
		json_t *doc = so_request_to_doc(r);
		text = doc ? so_json_canonical_str(doc) : NULL;
		json_decref(doc);
		if (!text)
			return SO_ENOMEM;
	}
	struct params p = {0};
	p_text(&p, r->id);
	p_text(&p, r->requester);
	p_text(&p, r->on_behalf_of);
	p_text(&p, r->owner);
	p_text(&p, so_status_name(r->status));
	p_i64(&p, r->created_at);
	p_i64(&p, r->expires_at);
	p_i64(&p, r->grant_expires_at);
	p_text(&p, r->idempotency_key);
	p_text(&p, text ? text : r->doc_text);
	p_time_or_null(&p, so_core_next_escalation(r));
	int rc = command(s, ST_REQ_INSERT, &p, NULL);
	free(text);
	return rc ? rc : insert_reviews(s, r, 0);
}

static int
pgs_request_update(so_store_t *st, const so_request_t *r, size_t first_new_review)
{
	pg_store_t *s = S(st);
	json_t *doc = so_request_to_doc(r);
	char *text = doc ? so_json_canonical_str(doc) : NULL;
	json_decref(doc);
	if (!text)
		return SO_ENOMEM;
	struct params p = {0};
	long changed = 0;
	p_text(&p, r->id);
	p_text(&p, so_status_name(r->status));
	p_i64(&p, r->expires_at);
	p_i64(&p, r->grant_expires_at);
	p_text(&p, text);
	p_time_or_null(&p, so_core_next_escalation(r));
	int rc = command(s, ST_REQ_UPDATE, &p, &changed);
	if (rc == SO_OK && changed != 1)
		rc = SO_ENOTFOUND;
	free(text);
	return rc ? rc : insert_reviews(s, r, first_new_review);
}

static int
load_reviews(pg_store_t *s, so_request_t *r)
{
	struct params p = {0};
	PGresult *res;
	p_text(&p, r->id);
	int rc = query(s, ST_REV_LIST, &p, &res);
	for (int i = 0; rc == SO_OK && i < PQntuples(res); i++)
		rc = so_request_add_review(r, PQgetvalue(res, i, 0),
		                           !strcmp(PQgetvalue(res, i, 1), "approve") ? SO_APPROVE : SO_DENY,
		                           PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
		                           col_i64(res, i, 4));
	PQclear(res);
	return rc;
}

/* A request from its stored document (without reviews). */
static int
request_from_doc_text(const char *text, so_request_t **out)
{
	json_error_t jerr;
	json_t *doc = json_loads(text, 0, &jerr);
	if (!doc) {
		so_error("postgres: a stored request does not parse: %s", jerr.text);
		return SO_ESTORE;
	}
	int rc = so_request_from_doc(doc, out);
	json_decref(doc);
	if (rc) {
		so_error("postgres: a stored request is malformed");
		return SO_ESTORE;
	}
	return SO_OK;
}

static int
pgs_request_get(so_store_t *st, const char *id, so_request_t **out)
{
	pg_store_t *s = S(st);
	struct params p = {0};
	PGresult *res;
	*out = NULL;
	p_text(&p, id);
	int rc = query(s, ST_REQ_GET, &p, &res);
	if (rc == SO_OK)
		rc = PQntuples(res) ? request_from_doc_text(PQgetvalue(res, 0, 0), out) : SO_ENOTFOUND;
	PQclear(res);
	if (rc == SO_OK && (rc = load_reviews(s, *out))) {
		so_request_free(*out);
		*out = NULL;
	}
	return rc;
}

static int
pgs_request_find_idem(so_store_t *st, const char *requester, const char *key,
                      char id[SO_ID_LEN + 1])
{
	pg_store_t *s = S(st);
	struct params p = {0};
	PGresult *res;
	p_text(&p, requester);
	p_text(&p, key);
	int rc = query(s, ST_REQ_IDEM, &p, &res);
	if (rc == SO_OK) {
		if (PQntuples(res))
			snprintf(id, SO_ID_LEN + 1, "%s", PQgetvalue(res, 0, 0));
		else
			rc = SO_ENOTFOUND;
	}
	PQclear(res);
	return rc;
}

static int
pgs_request_list(so_store_t *st, const so_store_query_t *q, so_request_t ***out, size_t *n)
{
	pg_store_t *s = S(st);
	struct params p = {0};
	PGresult *res;
	enum stmt_id id = ST_REQ_LIST;
	*out = NULL;
	*n = 0;
	if (q->has_status) {
		id = ST_REQ_LIST_STATUS;
		p_text(&p, so_status_name(q->status));
	}
	if (q->before_created) {
		id = q->has_status ? ST_REQ_LIST_STATUS_BEFORE : ST_REQ_LIST_BEFORE;
		p_i64(&p, q->before_created);
		p_text(&p, q->before_id ? q->before_id : "");
	}
	p_limit(&p, q->limit);
	int rc = query(s, id, &p, &res);
	if (rc)
		return rc;
	size_t rows = (size_t)PQntuples(res), count = 0;
	so_request_t **items = calloc(rows ? rows : 1, sizeof(*items));
	rc = items ? SO_OK : SO_ENOMEM;
	while (rc == SO_OK && count < rows && count < q->limit) {
		rc = request_from_doc_text(PQgetvalue(res, (int)count, 0), &items[count]);
		if (rc == SO_OK)
			count++;
	}
	PQclear(res);
	for (size_t i = 0; rc == SO_OK && i < count; i++)
		rc = load_reviews(s, items[i]);
	if (rc) {
		for (size_t i = 0; items && i < count; i++)
			so_request_free(items[i]);
		free(items);
		return rc;
	}
	*out = items;
	*n = count;
	return SO_OK;
}

static int
pgs_request_due(so_store_t *st, int64_t now, size_t max, char (**ids)[SO_ID_LEN + 1], size_t *n)
{
	pg_store_t *s = S(st);
	struct params p = {0};
	PGresult *res;
	*ids = NULL;
	*n = 0;
	p_i64(&p, now);
	p_limit(&p, max);
	int rc = query(s, ST_REQ_DUE, &p, &res);
	if (rc)
		return rc;
	size_t count = (size_t)PQntuples(res);
	char(*list)[SO_ID_LEN + 1] = calloc(max ? max : 1, sizeof(*list));
	if (!list) {
		PQclear(res);
		return SO_ENOMEM;
	}
	if (count > max)
		count = max;
	for (size_t i = 0; i < count; i++)
		snprintf(list[i], SO_ID_LEN + 1, "%s", PQgetvalue(res, (int)i, 0));
	PQclear(res);
	*ids = list;
	*n = count;
	return SO_OK;
}

static int
pgs_request_counts(so_store_t *st, int64_t counts[SO_ST__COUNT])
{
	PGresult *res;
	int rc = query(S(st), ST_REQ_COUNTS, NULL, &res);
	if (rc)
		return rc;
	memset(counts, 0, sizeof(int64_t) * SO_ST__COUNT);
	for (int i = 0; i < PQntuples(res); i++) {
		enum so_status status;
		if (so_status_parse(PQgetvalue(res, i, 0), &status) == SO_OK)
			counts[status] = col_i64(res, i, 1);
	}
	PQclear(res);
	return SO_OK;
}

/* ---- audit ---- */

static int
pgs_audit_base_get(so_store_t *st, so_audit_base_t *base)
{
	PGresult *res;
	int rc = query(S(st), ST_BASE_GET, NULL, &res);
	if (rc)
		return rc;
	if (PQntuples(res)) {
		base->seq = col_i64(res, 0, 0);
		snprintf(base->hash, sizeof(base->hash), "%s", PQgetvalue(res, 0, 1));
		snprintf(base->frontier, sizeof(base->frontier), "%s", PQgetvalue(res, 0, 2));
		snprintf(base->public_key, sizeof(base->public_key), "%s", PQgetvalue(res, 0, 3));
		base->at = col_i64(res, 0, 4);
	} else {
		rc = SO_ENOTFOUND;
	}
	PQclear(res);
	return rc;
}

static int
pgs_audit_prune(so_store_t *st, const so_audit_base_t *base)
{
	pg_store_t *s = S(st);
	struct params set = {0}, upto = {0};
	p_i64(&set, base->seq);
	p_text(&set, base->hash);
	p_text(&set, base->frontier);
	p_text(&set, base->public_key);
	p_i64(&set, base->at);
	p_i64(&upto, base->seq);
	int rc = command(s, ST_BASE_SET, &set, NULL);
	if (rc == SO_OK)
		rc = command(s, ST_PRUNE_EVENTS, &upto, NULL);
	if (rc == SO_OK)
		rc = command(s, ST_PRUNE_CPS, &upto, NULL);
	return rc;
}

static int
pgs_audit_head(so_store_t *st, int64_t *seq, char hash[65])
{
	PGresult *res;
	int rc = query(S(st), ST_AUDIT_HEAD, NULL, &res);
	if (rc)
		return rc;
	if (PQntuples(res)) {
		*seq = col_i64(res, 0, 0);
		snprintf(hash, 65, "%s", PQgetvalue(res, 0, 1));
		PQclear(res);
		return SO_OK;
	}
	PQclear(res);
	/* No events: the log is empty, or everything was archived up to the base. */
	so_audit_base_t base;
	rc = pgs_audit_base_get(st, &base);
	if (rc == SO_OK) {
		*seq = base.seq;
		memcpy(hash, base.hash, 65);
	} else if (rc == SO_ENOTFOUND) {
		*seq = 0;
		memset(hash, '0', 64);
		hash[64] = '\0';
		rc = SO_OK;
	}
	return rc;
}

static int
pgs_audit_insert(so_store_t *st, const so_audit_row_t *row)
{
	struct params p = {0};
	p_i64(&p, row->seq);
	p_i64(&p, row->at);
	p_text(&p, row->type);
	p_text(&p, row->request_id);
	p_text(&p, row->actor);
	p_text(&p, row->data);
	p_text(&p, row->prev_hash);
	p_text(&p, row->hash);
	return command(S(st), ST_AUDIT_INSERT, &p, NULL);
}

static int
pgs_audit_list(so_store_t *st, int64_t after, size_t limit, json_t **events)
{
	struct params p = {0};
	PGresult *res;
	*events = NULL;
	p_i64(&p, after);
	p_limit(&p, limit);
	int rc = query(S(st), ST_AUDIT_LIST, &p, &res);
	if (rc)
		return rc;
	json_t *list = json_array();
	rc = list ? SO_OK : SO_ENOMEM;
	for (int i = 0; rc == SO_OK && i < PQntuples(res); i++) {
		json_t *data = json_loads(PQgetvalue(res, i, 5), JSON_DECODE_ANY, NULL);
		const char *rid = col_text(res, i, 3);
		const char *actor = col_text(res, i, 4);
		char at[40];
		so_clock_format(col_i64(res, i, 1), at, sizeof(at));
		json_t *ev = json_pack("{s:I, s:s, s:s, s:o, s:o, s:o, s:s, s:s}", "seq",
		                       (json_int_t)col_i64(res, i, 0), "at", at, "type",
		                       PQgetvalue(res, i, 2), "request_id",
		                       rid ? json_string(rid) : json_null(), "actor",
		                       actor ? json_string(actor) : json_null(), "data",
		                       data ? data : json_null(), "prev_hash", PQgetvalue(res, i, 6),
		                       "hash", PQgetvalue(res, i, 7));
		if (!ev || json_array_append_new(list, ev))
			rc = SO_ENOMEM;
	}
	PQclear(res);
	if (rc) {
		json_decref(list);
		return SO_ESTORE;
	}
	*events = list;
	return SO_OK;
}

/* Call `fn` for each row of an audit query (the row's strings point into `res`), then free
 * `res`. */
static int
each_row(PGresult *res, so_audit_row_fn fn, void *ctx)
{
	int rc = SO_OK;
	for (int i = 0; rc == SO_OK && i < PQntuples(res); i++) {
		so_audit_row_t row = {
			.seq = col_i64(res, i, 0),
			.at = col_i64(res, i, 1),
			.type = PQgetvalue(res, i, 2),
			.request_id = col_text(res, i, 3),
			.actor = col_text(res, i, 4),
			.data = PQgetvalue(res, i, 5),
		};
		snprintf(row.prev_hash, sizeof(row.prev_hash), "%s", PQgetvalue(res, i, 6));
		snprintf(row.hash, sizeof(row.hash), "%s", PQgetvalue(res, i, 7));
		rc = fn(ctx, &row);
	}
	PQclear(res);
	return rc;
}

static int
pgs_audit_each(so_store_t *st, int64_t after, size_t limit, so_audit_row_fn fn, void *ctx)
{
	struct params p = {0};
	PGresult *res;
	p_i64(&p, after);
	p_limit(&p, limit);
	int rc = query(S(st), ST_AUDIT_LIST, &p, &res);
	return rc ? rc : each_row(res, fn, ctx);
}

static int
pgs_audit_for_request(so_store_t *st, const char *request_id, so_audit_row_fn fn, void *ctx)
{
	struct params p = {0};
	PGresult *res;
	p_text(&p, request_id);
	int rc = query(S(st), ST_AUDIT_FOR_REQUEST, &p, &res);
	return rc ? rc : each_row(res, fn, ctx);
}

/* ---- checkpoints ---- */

static void
read_checkpoint(const PGresult *res, int row, so_checkpoint_row_t *cp)
{
	cp->size = col_i64(res, row, 0);
	cp->at = col_i64(res, row, 1);
	snprintf(cp->key_id, sizeof(cp->key_id), "%s", PQgetvalue(res, row, 2));
	snprintf(cp->root, sizeof(cp->root), "%s", PQgetvalue(res, row, 3));
	snprintf(cp->signature, sizeof(cp->signature), "%s", PQgetvalue(res, row, 4));
}

static int
pgs_checkpoint_insert(so_store_t *st, const so_checkpoint_row_t *cp)
{
	struct params p = {0};
	p_i64(&p, cp->size);
	p_i64(&p, cp->at);
	p_text(&p, cp->key_id);
	p_text(&p, cp->root);
	p_text(&p, cp->signature);
	return command(S(st), ST_CP_INSERT, &p, NULL);
}

static int
checkpoint_one(pg_store_t *s, enum stmt_id id, const struct params *p, so_checkpoint_row_t *cp)
{
	PGresult *res;
	int rc = query(s, id, p, &res);
	if (rc)
		return rc;
	if (PQntuples(res))
		read_checkpoint(res, 0, cp);
	else
		rc = SO_ENOTFOUND;
	PQclear(res);
	return rc;
}

static int
pgs_checkpoint_latest(so_store_t *st, so_checkpoint_row_t *cp)
{
	return checkpoint_one(S(st), ST_CP_LATEST, NULL, cp);
}

static int
pgs_checkpoint_get(so_store_t *st, int64_t size, int at_least, so_checkpoint_row_t *cp)
{
	struct params p = {0};
	p_i64(&p, size);
	return checkpoint_one(S(st), at_least ? ST_CP_GET_ABOVE : ST_CP_GET_EXACT, &p, cp);
}

static int
pgs_checkpoint_list(so_store_t *st, int64_t after, size_t max, so_checkpoint_row_t **out,
                    size_t *n)
{
	struct params p = {0};
	PGresult *res;
	*out = NULL;
	*n = 0;
	p_i64(&p, after);
	p_limit(&p, max);
	int rc = query(S(st), ST_CP_LIST, &p, &res);
	if (rc)
		return rc;
	/* The result holds the rows already: allocate what came, never `max`. */
	size_t count = (size_t)PQntuples(res);
	so_checkpoint_row_t *list = calloc(count ? count : 1, sizeof(*list));
	if (!list) {
		PQclear(res);
		return SO_ENOMEM;
	}
	for (size_t i = 0; i < count; i++)
		read_checkpoint(res, (int)i, &list[i]);
	PQclear(res);
	*out = list;
	*n = count;
	return SO_OK;
}

/* ---- the outbox and chat messages ---- */

static int
pgs_outbox_insert(so_store_t *st, const so_outbox_row_t *row, int64_t now)
{
	struct params p = {0};
	p_text(&p, row->request_id);
	p_text(&p, row->channel);
	p_text(&p, row->kind);
	p_text(&p, row->target);
	p_text(&p, row->body ? row->body : "{}");
	p_i64(&p, row->next_at ? row->next_at : now);
	return command(S(st), ST_OB_INSERT, &p, NULL);
}

static int
pgs_outbox_due(so_store_t *st, int64_t now, size_t max, so_outbox_row_t **out, size_t *n)
{
	struct params p = {0};
	PGresult *res;
	*out = NULL;
	*n = 0;
	p_i64(&p, now);
	p_limit(&p, max);
	int rc = query(S(st), ST_OB_DUE, &p, &res);
	if (rc)
		return rc;
	size_t rows = (size_t)PQntuples(res), count = 0;
	so_outbox_row_t *list = calloc(rows ? rows : 1, sizeof(*list));
	rc = list ? SO_OK : SO_ENOMEM;
	for (; rc == SO_OK && count < rows && count < max; count++) {
		so_outbox_row_t *r = &list[count];
		int i = (int)count;
		r->id = col_i64(res, i, 0);
		snprintf(r->request_id, sizeof(r->request_id), "%s", PQgetvalue(res, i, 1));
		snprintf(r->channel, sizeof(r->channel), "%s", PQgetvalue(res, i, 2));
		snprintf(r->kind, sizeof(r->kind), "%s", PQgetvalue(res, i, 3));
		r->target = col_dup(res, i, 4);
		r->body = col_dup(res, i, 5);
		r->attempts = col_i64(res, i, 6);
		r->next_at = col_i64(res, i, 7);
		if (!r->target || !r->body)
			rc = SO_ENOMEM;
	}
	PQclear(res);
	if (rc) {
		if (list)
			so_outbox_rows_free(list, count);
		return rc;
	}
	*out = list;
	*n = count;
	return SO_OK;
}

static int
pgs_outbox_waiting(so_store_t *st, const so_outbox_row_t *row, int *waiting)
{
	struct params p = {0};
	PGresult *res;
	p_text(&p, row->request_id);
	p_text(&p, row->channel);
	p_i64(&p, row->id);
	p_text(&p, row->target);
	int rc = query(S(st), ST_OB_WAITING, &p, &res);
	*waiting = rc == SO_OK && PQntuples(res) > 0;
	PQclear(res);
	return rc;
}

static int
pgs_outbox_settle(so_store_t *st, int64_t id, const char *state, int64_t attempts,
                  int64_t next_at, const char *error, int64_t now)
{
	struct params p = {0};
	p_i64(&p, id);
	p_text(&p, state);
	p_i64(&p, attempts);
	p_i64(&p, next_at);
	p_text(&p, error);
	p_i64(&p, now);
	return command(S(st), ST_OB_SETTLE, &p, NULL);
}

static int
pgs_outbox_claim(so_store_t *st, int64_t id, int64_t now, int64_t until, int *claimed)
{
	struct params p = {0};
	long changed = 0;
	p_i64(&p, id);
	p_i64(&p, now);
	p_i64(&p, until);
	int rc = command(S(st), ST_OB_CLAIM, &p, &changed);
	*claimed = rc == SO_OK && changed == 1;
	return rc;
}

static int
pgs_chat_message_insert(so_store_t *st, const char *request_id, const char *channel,
                        const char *target, const char *ref, int64_t outbox_id)
{
	struct params p = {0};
	p_text(&p, request_id);
	p_text(&p, channel);
	p_text(&p, target);
	p_text(&p, ref);
	p_i64(&p, outbox_id);
	return command(S(st), ST_CM_INSERT, &p, NULL);
}

static int
pgs_chat_messages(so_store_t *st, const char *request_id, const char *channel,
                  so_chat_message_fn fn, void *ctx)
{
	struct params p = {0};
	PGresult *res;
	p_text(&p, request_id);
	p_text(&p, channel);
	int rc = query(S(st), ST_CM_LIST, &p, &res);
	/* The result is a copy: the callback may use this connection meanwhile. */
	for (int i = 0; rc == SO_OK && i < PQntuples(res); i++)
		rc = fn(ctx, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
	PQclear(res);
	return rc;
}

/* ---- tokens and baselines ---- */

static int
pgs_token_insert(so_store_t *st, const char *sha256_hex, const char *principal, int64_t now)
{
	struct params p = {0};
	p_text(&p, sha256_hex);
	p_text(&p, principal);
	p_i64(&p, now);
	return command(S(st), ST_TOKEN_INSERT, &p, NULL);
}

static int
pgs_token_lookup(so_store_t *st, const char *sha256_hex, char *principal, size_t len)
{
	struct params p = {0};
	PGresult *res;
	p_text(&p, sha256_hex);
	int rc = query(S(st), ST_TOKEN_LOOKUP, &p, &res);
	if (rc == SO_OK) {
		if (PQntuples(res))
			snprintf(principal, len, "%s", PQgetvalue(res, 0, 0));
		else
			rc = SO_ENOTFOUND;
	}
	PQclear(res);
	return rc;
}

static int
pgs_token_count(so_store_t *st, int64_t *n)
{
	PGresult *res;
	int rc = query(S(st), ST_TOKEN_COUNT, NULL, &res);
	*n = rc == SO_OK && PQntuples(res) ? col_i64(res, 0, 0) : 0;
	PQclear(res);
	return rc;
}

static int
pgs_baseline_get(so_store_t *st, const char *principal, char **doc)
{
	struct params p = {0};
	PGresult *res;
	*doc = NULL;
	p_text(&p, principal);
	int rc = query(S(st), ST_BL_GET, &p, &res);
	if (rc == SO_OK) {
		if (PQntuples(res))
			rc = (*doc = col_dup(res, 0, 0)) ? SO_OK : SO_ENOMEM;
		else
			rc = SO_ENOTFOUND;
	}
	PQclear(res);
	return rc;
}

static int
pgs_baseline_put(so_store_t *st, const char *principal, const char *doc, int64_t now)
{
	struct params p = {0};
	p_text(&p, principal);
	p_text(&p, doc);
	p_i64(&p, now);
	return command(S(st), ST_BL_PUT, &p, NULL);
}

/* ---- console sessions ---- */

static int
pgs_session_put(so_store_t *st, const char *hash, const char *kind, const char *principal,
                int64_t expires_at, int64_t now)
{
	struct params prune = {0}, p = {0};
	p_i64(&prune, now);
	p_text(&p, hash);
	p_text(&p, kind);
	p_text(&p, principal);
	p_i64(&p, expires_at);
	p_i64(&p, now);
	struct params cap = {0};
	p_text(&cap, principal);
	p_text(&cap, kind);
	int rc = command(S(st), ST_SS_PRUNE, &prune, NULL);
	if (rc == SO_OK)
		rc = command(S(st), ST_SS_PUT, &p, NULL);
	return rc ? rc : command(S(st), ST_SS_CAP, &cap, NULL);
}

/* Run `id` for at most one row: its first column as text into `out` (and the second as a
 * number into `second`, when asked). */
static int
one_text(pg_store_t *s, enum stmt_id id, const struct params *p, char *out, size_t len,
         int64_t *second)
{
	PGresult *res;
	int rc = query(s, id, p, &res);
	if (rc == SO_OK) {
		if (PQntuples(res)) {
			snprintf(out, len, "%s", PQgetvalue(res, 0, 0));
			if (second)
				*second = col_i64(res, 0, 1);
		} else {
			rc = SO_ENOTFOUND;
		}
	}
	PQclear(res);
	return rc;
}

static int
pgs_session_get(so_store_t *st, const char *hash, int64_t now, char *principal, size_t len,
                int64_t *expires_at)
{
	struct params p = {0};
	p_text(&p, hash);
	p_i64(&p, now);
	return one_text(S(st), ST_SS_GET, &p, principal, len, expires_at);
}

static int
pgs_session_take(so_store_t *st, const char *hash, int64_t now, char *principal, size_t len)
{
	struct params p = {0};
	p_text(&p, hash);
	p_i64(&p, now);
	return one_text(S(st), ST_SS_TAKE, &p, principal, len, NULL);
}

static int
pgs_session_delete(so_store_t *st, const char *hash)
{
	struct params p = {0};
	p_text(&p, hash);
	return command(S(st), ST_SS_DELETE, &p, NULL);
}

static int
pgs_signature_seen(so_store_t *st, const char *sig, int64_t now, int64_t until, int *seen)
{
	struct params prune = {0}, p = {0};
	long added = 0;
	*seen = 1; /* until known otherwise: a replay is refused */
	p_i64(&prune, now);
	p_text(&p, sig);
	p_i64(&p, until);
	int rc = command(S(st), ST_SIG_PRUNE, &prune, NULL);
	if (rc == SO_OK && (rc = command(S(st), ST_SIG_NOTE, &p, &added)) == SO_OK)
		*seen = added == 0;
	return rc;
}

/* ---- nodes telling each other (LISTEN/NOTIFY) ---- */

static int
pgs_announce(so_store_t *st, const char *payload)
{
	struct params p = {0};
	PGresult *res = NULL;
	p_text(&p, payload);
	int rc = query(S(st), ST_ANNOUNCE, &p, &res);
	PQclear(res);
	return rc;
}

static int
pgs_listen(so_store_t *st)
{
	pg_store_t *s = S(st);
	int rc = command(s, ST_LISTEN, NULL, NULL);
	if (rc == SO_OK) {
		s->listening = 1;
		s->listen_lost = 0;
	}
	return rc;
}

static int
pgs_next_announcement(so_store_t *st, int timeout_ms, int wake_fd, char *payload, size_t len)
{
	pg_store_t *s = S(st);
	int64_t deadline = so_clock_mono_ms() + timeout_ms;
	if (s->listen_lost)
		return SO_ESTORE;
	for (;;) {
		PGnotify *n = PQnotifies(s->conn);
		if (n) {
			snprintf(payload, len, "%s", n->extra);
			PQfreemem(n);
			return SO_OK;
		}
		if (PQstatus(s->conn) != CONNECTION_OK)
			return SO_ESTORE;
		int64_t left = deadline - so_clock_mono_ms();
		if (left <= 0)
			return SO_EBUSY;
		struct pollfd pfd[2] = {{.fd = PQsocket(s->conn), .events = POLLIN},
		                        {.fd = wake_fd, .events = POLLIN}};
		int ready_fds = poll(pfd, wake_fd >= 0 ? 2 : 1, (int)left);
		if (ready_fds < 0 && errno != EINTR)
			return SO_ESTORE;
		if (wake_fd >= 0 && pfd[1].revents)
			return SO_EBUSY;
		/* Input that ends the connection (a closed socket, a FATAL message) shows in the
		 * status on the next turn. */
		if (ready_fds > 0 && !PQconsumeInput(s->conn)) {
			const char *msg = PQerrorMessage(s->conn);
			so_warn("postgres: the listening connection was lost: %.*s",
			        (int)strcspn(msg, "\n"), msg);
			return SO_ESTORE;
		}
	}
}

/* ---- open, migrations, close ---- */

static void
pgs_close(so_store_t *st)
{
	pg_store_t *s = S(st);
	PQfinish(s->conn);
	free(s);
}

/* Run fixed SQL (no values in it) or, with `value`, one statement with that one parameter. */
static int
exec_sql(PGconn *conn, const char *sql, const char *value, PGresult **out, char *err,
         size_t errlen)
{
	PGresult *res = value ? PQexecParams(conn, sql, 1, NULL, &value, NULL, NULL, 0)
	                      : PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		const char *msg = res ? PQresultErrorMessage(res) : "";
		snprintf(err, errlen, "postgres: %s", msg && *msg ? msg : PQerrorMessage(conn));
		/* libpq's messages end with a newline */
		err[strcspn(err, "\n")] = '\0';
		PQclear(res);
		return SO_ESTORE;
	}
	if (out)
		*out = res;
	else
		PQclear(res);
	return SO_OK;
}

/*
 * Bring the schema to the latest version, all or nothing, in one transaction that first
 * takes a fixed advisory lock: a second node opening at the same time waits for it (at most
 * MIGRATION_LOCK_WAIT), then finds the migrations applied. signoff_schema has one row per
 * applied migration.
 */
static int
migrate(PGconn *conn, char *err, size_t errlen)
{
	const int latest = (int)(sizeof(migrations) / sizeof(migrations[0]));
	PGresult *res = NULL;
	char ignore[8];
	int version;
	int rc = exec_sql(conn,
	                  "BEGIN; SET LOCAL lock_timeout = '" MIGRATION_LOCK_WAIT "'; "
	                  "SET LOCAL statement_timeout = 0; SET LOCAL client_min_messages = warning",
	                  NULL, NULL, err, errlen);
	if (rc)
		return rc;
	if ((rc = exec_sql(conn, "SELECT pg_advisory_xact_lock($1::bigint)", MIGRATION_LOCK_KEY,
	                   NULL, err, errlen)) ||
	    (rc = exec_sql(conn,
	                   "CREATE TABLE IF NOT EXISTS signoff_schema ("
	                   "  version INTEGER PRIMARY KEY,"
	                   "  applied_at BIGINT NOT NULL)",
	                   NULL, NULL, err, errlen)) ||
	    (rc = exec_sql(conn, "SELECT coalesce(max(version), 0) FROM signoff_schema", NULL, &res,
	                   err, errlen)))
		goto out;
	version = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	if (version > latest) {
		snprintf(err, errlen, "database schema version %d is newer than this signoffd (%d)",
		         version, latest);
		rc = SO_ESTORE;
		goto out;
	}
	for (int v = version; v < latest && rc == SO_OK; v++) {
		char next[16];
		snprintf(next, sizeof(next), "%d", v + 1);
		if ((rc = exec_sql(conn, migrations[v], NULL, NULL, err, errlen)) == SO_OK &&
		    (rc = exec_sql(conn,
		                   "INSERT INTO signoff_schema(version, applied_at) VALUES ($1::integer, "
		                   "(extract(epoch FROM clock_timestamp()) * 1000)::bigint)",
		                   next, NULL, err, errlen)) == SO_OK)
			so_info("store: applied schema migration %d", v + 1);
	}
	if (rc == SO_OK)
		return exec_sql(conn, "COMMIT", NULL, NULL, err, errlen);
out:
	exec_sql(conn, "ROLLBACK", NULL, NULL, ignore, sizeof(ignore));
	return rc;
}

static int
pgs_open(const char *target, so_store_t **out, char *err, size_t errlen)
{
	/* `target` is what followed the scheme: "//host:port/db?params". */
	const char *keys[NDEFAULTS + 3], *values[NDEFAULTS + 3];
	size_t uri_len = strlen("postgresql:") + strlen(target) + 1;
	char *uri = NULL;
	pg_store_t *s = NULL;
	size_t k = 0;
	int rc = SO_ECONFIG;

	if (strncmp(target, "//", 2)) {
		snprintf(err, errlen, "postgresql store needs a URL like "
		                      "postgresql://[user@]host[:port]/dbname[?param=value&...]");
		goto fail;
	}
	rc = SO_ENOMEM;
	if (!(uri = malloc(uri_len)) || !(s = calloc(1, sizeof(*s))))
		goto fail;
	snprintf(uri, uri_len, "postgresql:%s", target);
	s->base.ops = &so_store_postgres_ops;
	/* A URL libpq cannot read is a configuration error, not an outage. */
	char *why = NULL;
	PQconninfoOption *parsed = PQconninfoParse(uri, &why);
	if (!parsed) {
		snprintf(err, errlen, "postgresql store URL: %s", why ? why : "out of memory");
		err[strcspn(err, "\n")] = '\0';
		rc = why ? SO_ECONFIG : SO_ENOMEM;
		PQfreemem(why);
		goto fail;
	}
	PQconninfoFree(parsed);
	/* Ours first, then the URL (which overrides them), then what must hold whatever it says. */
	for (size_t i = 0; i < NDEFAULTS; i++, k++) {
		keys[k] = default_keys[i];
		values[k] = default_values[i];
	}
	keys[k] = "dbname";
	values[k++] = uri;
	keys[k] = "client_encoding";
	values[k++] = "UTF8";
	keys[k] = NULL;
	values[k] = NULL;
	s->conn = PQconnectdbParams(keys, values, 1);
	rc = SO_ESTORE;
	if (!s->conn) {
		snprintf(err, errlen, "postgres: out of memory");
		goto fail;
	}
	if (PQstatus(s->conn) != CONNECTION_OK) {
		/* libpq's message names host and port, never the password */
		snprintf(err, errlen, "postgres: cannot connect: %s", PQerrorMessage(s->conn));
		err[strcspn(err, "\n")] = '\0';
		goto fail;
	}
	PQsetNoticeReceiver(s->conn, on_notice, NULL);
	if ((rc = migrate(s->conn, err, errlen)))
		goto fail;
	free(uri);
	*out = &s->base;
	return SO_OK;
fail:
	free(uri);
	if (s)
		pgs_close(&s->base);
	return rc;
}

#define PG_OPS(name)                                                                       \
	{                                                                                      \
		.scheme = name,                                                                    \
		.open = pgs_open,                                                                  \
		.close = pgs_close,                                                                \
		.begin = pgs_begin,                                                                \
		.commit = pgs_commit,                                                              \
		.rollback = pgs_rollback,                                                          \
		.savepoint = pgs_savepoint,                                                        \
		.release = pgs_release,                                                            \
		.rollback_to = pgs_rollback_to,                                                    \
		.request_insert = pgs_request_insert,                                              \
		.request_update = pgs_request_update,                                              \
		.request_get = pgs_request_get,                                                    \
		.request_find_idem = pgs_request_find_idem,                                        \
		.request_list = pgs_request_list,                                                  \
		.request_due = pgs_request_due,                                                    \
		.request_counts = pgs_request_counts,                                              \
		.audit_head = pgs_audit_head,                                                      \
		.audit_insert = pgs_audit_insert,                                                  \
		.audit_list = pgs_audit_list,                                                      \
		.audit_each = pgs_audit_each,                                                      \
		.audit_for_request = pgs_audit_for_request,                                        \
		.audit_base_get = pgs_audit_base_get,                                              \
		.audit_prune = pgs_audit_prune,                                                    \
		.checkpoint_insert = pgs_checkpoint_insert,                                        \
		.checkpoint_latest = pgs_checkpoint_latest,                                        \
		.checkpoint_list = pgs_checkpoint_list,                                            \
		.checkpoint_get = pgs_checkpoint_get,                                              \
		.outbox_insert = pgs_outbox_insert,                                                \
		.outbox_due = pgs_outbox_due,                                                      \
		.outbox_waiting = pgs_outbox_waiting,                                              \
		.outbox_settle = pgs_outbox_settle,                                                \
		.chat_message_insert = pgs_chat_message_insert,                                    \
		.chat_messages = pgs_chat_messages,                                                \
		.token_insert = pgs_token_insert,                                                  \
		.token_lookup = pgs_token_lookup,                                                  \
		.token_count = pgs_token_count,                                                    \
		.baseline_get = pgs_baseline_get,                                                  \
		.baseline_put = pgs_baseline_put,                                                  \
		.outbox_claim = pgs_outbox_claim,                                                  \
		.session_put = pgs_session_put,                                                    \
		.session_get = pgs_session_get,                                                    \
		.session_take = pgs_session_take,                                                  \
		.session_delete = pgs_session_delete,                                              \
		.signature_seen = pgs_signature_seen,                                              \
		.announce = pgs_announce,                                                          \
		.listen = pgs_listen,                                                              \
		.next_announcement = pgs_next_announcement,                                        \
	}

/* "postgresql://..." and its short spelling "postgres://...", as libpq accepts both. */
const so_store_ops_t so_store_postgres_ops = PG_OPS("postgresql");
const so_store_ops_t so_store_postgres_alias_ops = PG_OPS("postgres");
