/*
 * The store's contract, whatever the backend: requests with their reviews, idempotency, the
 * audit table, checkpoints, the outbox, tokens, baselines, transactions and savepoints, and
 * persistence across reopen. Every test gets a fresh, empty store.
 *
 * The backend is the one named by SIGNOFF_TEST_STORE_URL: unset (or empty), a new SQLite file
 * per test; "postgresql://..." (set by tests/unit/store/with-postgres, which runs a temporary
 * server), a new database per test on that server. Tests of what only one backend has are in
 * a group of their own at the end.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "core/fixture.h"

#include "audit/audit.h"
#include "store/store.h"

/* The schema version this signoffd writes (the migrations in src/store/sqlite.c, postgres.c). */
#define SCHEMA_VERSION 9
#define ZEROS "0000000000000000000000000000000000000000000000000000000000000000"
/* Stores opened at once by the migration race test. */
#define RACERS 4

struct fx {
	char dir[64];
	char path[128];
	char dbname[64];
	char url[1024];
	so_store_t *s;
	so_policy_t pol;
};

static so_requirement_t sre2[] = {{.group = "sre", .count = 2}};

/*
 * What the tests need to know of a backend beyond the vtable: how to make a fresh store and
 * remove it, and how to read and force the schema version it records.
 */
struct backend {
	const char *name;
	int (*fresh)(struct fx *f);
	void (*drop)(struct fx *f);
	/** The schema version recorded, or -1 when it cannot be read or is not whole. */
	int (*version)(struct fx *f);
	void (*set_version)(struct fx *f, int v);
};

static const struct backend *backend;
static const char *server_url; /* the PostgreSQL test server (its first database) */

/* ---- SQLite: a file in a new temporary directory ---- */

static int
sqlite_fresh(struct fx *f)
{
	snprintf(f->dir, sizeof(f->dir), "/tmp/so-store-test.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/signoff.db", f->dir);
	snprintf(f->url, sizeof(f->url), "sqlite:%s", f->path);
	return 0;
}

static void
sqlite_drop(struct fx *f)
{
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal", NULL};
	for (int i = 0; suffixes[i]; i++) {
		char p[160];
		snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
		unlink(p);
	}
	rmdir(f->dir);
}

static int
sqlite_version(struct fx *f)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int v = -1;
	if (sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void
sqlite_set_version(struct fx *f, int v)
{
	sqlite3 *db = NULL;
	char pragma[64];
	snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, pragma, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static const struct backend sqlite_backend = {
	"sqlite", sqlite_fresh, sqlite_drop, sqlite_version, sqlite_set_version,
};

/* ---- PostgreSQL: a new database on the test server ---- */

/* `base` with its database name replaced by `db` (postgresql://HOST:PORT/DB?PARAMS). */
static void
url_with_db(const char *base, const char *db, char *out, size_t len)
{
	const char *host = strstr(base, "://");
	host = host ? host + 3 : base;
	const char *end = host + strcspn(host, "/?");
	const char *params = strchr(end, '?');
	snprintf(out, len, "%.*s/%s%s", (int)(end - base), base, db, params ? params : "");
}

/* Run `sql` (with at most one parameter) on a new connection to `url`; the result or NULL. */
static PGresult *
pg_run(const char *url, const char *sql, const char *param)
{
	PGconn *conn = PQconnectdb(url);
	PGresult *res = NULL;
	if (PQstatus(conn) != CONNECTION_OK) {
		print_error("test: cannot connect: %s", PQerrorMessage(conn));
	} else {
		res = PQexecParams(conn, sql, param ? 1 : 0, NULL, &param, NULL, NULL, 0);
		ExecStatusType st = PQresultStatus(res);
		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
			print_error("test: %s: %s", sql, PQresultErrorMessage(res));
			PQclear(res);
			res = NULL;
		}
	}
	PQfinish(conn);
	return res;
}

static int
pg_fresh(struct fx *f)
{
	static int serial;
	char sql[128];
	snprintf(f->dbname, sizeof(f->dbname), "so_test_%d_%d", (int)getpid(), ++serial);
	/* CREATE DATABASE takes no parameters; the name is ours, made just above. */
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", f->dbname);
	PGresult *res = pg_run(server_url, sql, NULL);
	if (!res)
		return -1;
	PQclear(res);
	url_with_db(server_url, f->dbname, f->url, sizeof(f->url));
	return 0;
}

static void
pg_drop(struct fx *f)
{
	char sql[128];
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", f->dbname);
	PQclear(pg_run(server_url, sql, NULL));
}

static int
pg_version(struct fx *f)
{
	PGresult *res = pg_run(f->url,
	                       "SELECT count(*), coalesce(max(version), 0) FROM signoff_schema",
	                       NULL);
	int v = -1;
	/* each version from 1 on recorded once, or the schema is not whole */
	if (res && !strcmp(PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1)))
		v = atoi(PQgetvalue(res, 0, 1));
	PQclear(res);
	return v;
}

static void
pg_set_version(struct fx *f, int v)
{
	char param[16];
	snprintf(param, sizeof(param), "%d", v);
	PGresult *res = pg_run(f->url, "DELETE FROM signoff_schema WHERE version > $1::integer",
	                       param);
	assert_non_null(res);
	PQclear(res);
	res = pg_run(f->url,
	             "INSERT INTO signoff_schema(version, applied_at) SELECT g, 0 FROM "
	             "generate_series((SELECT max(version) + 1 FROM signoff_schema), $1::integer) g",
	             param);
	assert_non_null(res);
	PQclear(res);
}

static const struct backend postgres_backend = {
	"postgresql", pg_fresh, pg_drop, pg_version, pg_set_version,
};

/* ---- fixtures ---- */

static so_store_t *
open_store(struct fx *f)
{
	so_store_t *s = NULL;
	char err[256] = "";
	int rc = so_store_open(f->url, &s, err, sizeof(err));
	if (rc != SO_OK)
		fail_msg("open %s: %s", f->url, err);
	return s;
}

/* A fresh store that nothing has opened yet. */
static int
setup_unopened(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	if (backend->fresh(f)) {
		free(f);
		return -1;
	}
	policy_init(&f->pol, SO_OUT_REVIEW, sre2, 1, 0);
	*state = f;
	return 0;
}

static int
setup(void **state)
{
	if (setup_unopened(state))
		return -1;
	struct fx *f = *state;
	f->s = open_store(f);
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	so_store_close(f->s);
	backend->drop(f);
	free(f);
	return 0;
}

/* A pending request with a distinct id (k orders them in time). */
static so_request_t *
make_request(struct fx *f, const char *requester, const char *body, int k)
{
	unsigned char rnd[10] = {0};
	rnd[9] = (unsigned char)k;
	so_request_t *r = submit(requester, body, &f->pol);
	so_core_make_id(NOW + k, rnd, r->id);
	r->created_at = NOW + k;
	return r;
}

static void
assert_same_request(const so_request_t *a, const so_request_t *b)
{
	assert_string_equal(a->id, b->id);
	assert_int_equal(a->status, b->status);
	assert_string_equal(a->requester, b->requester);
	if (a->on_behalf_of || b->on_behalf_of)
		assert_string_equal(a->on_behalf_of, b->on_behalf_of);
	if (a->owner || b->owner)
		assert_string_equal(a->owner, b->owner);
	assert_true(json_equal(a->action, b->action));
	if (a->intent || b->intent)
		assert_string_equal(a->intent, b->intent);
	assert_true(json_equal(a->context, b->context));
	assert_string_equal(a->digest, b->digest);
	assert_int_equal(a->decision.outcome, b->decision.outcome);
	assert_string_equal(a->decision.policy_version, b->decision.policy_version);
	assert_true(json_equal(a->decision.rules, b->decision.rules));
	assert_int_equal(a->decision.nreqs, b->decision.nreqs);
	for (size_t i = 0; i < a->decision.nreqs; i++) {
		assert_string_equal(a->decision.reqs[i].group, b->decision.reqs[i].group);
		assert_int_equal(a->decision.reqs[i].count, b->decision.reqs[i].count);
	}
	assert_int_equal(a->decision.owner_may_approve, b->decision.owner_may_approve);
	assert_int_equal(a->decision.ttl, b->decision.ttl);
	assert_int_equal(a->decision.grant_ttl, b->decision.grant_ttl);
	if (a->idempotency_key || b->idempotency_key)
		assert_string_equal(a->idempotency_key, b->idempotency_key);
	assert_int_equal(a->created_at, b->created_at);
	assert_int_equal(a->expires_at, b->expires_at);
	assert_int_equal(a->decided_at, b->decided_at);
	assert_int_equal(a->grant_expires_at, b->grant_expires_at);
	assert_int_equal(a->claimed_at, b->claimed_at);
	assert_int_equal(a->finished_at, b->finished_at);
	assert_int_equal(a->has_result, b->has_result);
	assert_int_equal(a->exit_code, b->exit_code);
	assert_int_equal(a->nreviews, b->nreviews);
	for (size_t i = 0; i < a->nreviews; i++) {
		assert_string_equal(a->reviews[i].reviewer, b->reviews[i].reviewer);
		assert_int_equal(a->reviews[i].verdict, b->reviews[i].verdict);
		assert_string_equal(a->reviews[i].channel, b->reviews[i].channel);
		assert_string_equal(a->reviews[i].comment, b->reviews[i].comment);
		assert_int_equal(a->reviews[i].at, b->reviews[i].at);
	}
}

static void
test_open_creates_the_schema(void **state)
{
	struct fx *f = *state;
	assert_int_equal(backend->version(f), SCHEMA_VERSION);
	int64_t n = -1;
	assert_int_equal(f->s->ops->token_count(f->s, &n), SO_OK);
	assert_int_equal(n, 0);
}

static void
test_open_refuses_unknown_schemes(void **state)
{
	so_store_t *s = NULL;
	char err[256] = "";
	assert_int_equal(so_store_open("postgresq://x", &s, err, sizeof(err)), SO_ECONFIG);
	assert_null(s);
	assert_contains(err, "postgresq");
	assert_contains(err, "have: sqlite, postgresql");
	assert_int_equal(so_store_open("no-scheme", &s, err, sizeof(err)), SO_ECONFIG);
	assert_null(s);
}

static void
test_request_round_trip_keeps_fields_and_reviews(void **state)
{
	struct fx *f = *state;
	so_request_t *r = make_request(f, "deploy-bot",
	                               "{\"action\":{\"kind\":\"shell\",\"command\":[\"ls\",\"é\"]},"
	                               "\"intent\":\"why\",\"context\":{\"ticket\":\"INC-1\"},"
	                               "\"idempotency_key\":\"k1\"}",
	                               1);
	so_core_err_t err = {0};
	assert_int_equal(so_core_review(&fixture_dir, r, who("bob"), SO_APPROVE, "ok", "slack",
	                                NOW + 5, &err),
	                 SO_OK);
	assert_int_equal(so_core_review(&fixture_dir, r, who("carol"), SO_APPROVE, "", "api",
	                                NOW + 6, &err),
	                 SO_OK);
	assert_int_equal(r->status, SO_ST_APPROVED);
	assert_int_equal(f->s->ops->request_insert(f->s, r), SO_OK);
	so_request_t *back = NULL;
	assert_int_equal(f->s->ops->request_get(f->s, r->id, &back), SO_OK);
	assert_same_request(r, back);
	so_request_free(back);
	so_request_free(r);
}

static void
test_request_update_adds_new_reviews_and_state(void **state)
{
	struct fx *f = *state;
	so_request_t *r = make_request(f, "deploy-bot", SHELL_BODY, 2);
	assert_int_equal(f->s->ops->request_insert(f->s, r), SO_OK);
	so_core_err_t err = {0};
	size_t first = r->nreviews;
	assert_int_equal(so_core_review(&fixture_dir, r, who("bob"), SO_APPROVE, "", "api", NOW + 10,
	                                &err),
	                 SO_OK);
	assert_int_equal(f->s->ops->request_update(f->s, r, first), SO_OK);
	first = r->nreviews;
	assert_int_equal(so_core_review(&fixture_dir, r, who("carol"), SO_APPROVE, "", "api",
	                                NOW + 20, &err),
	                 SO_OK);
	assert_int_equal(so_core_claim(r, who("deploy-bot"), r->digest, NOW + 30, &err), SO_OK);
	assert_int_equal(so_core_result(r, who("deploy-bot"), 7, "boom", NOW + 40, &err), SO_OK);
	assert_int_equal(f->s->ops->request_update(f->s, r, first), SO_OK);
	so_request_t *back = NULL;
	assert_int_equal(f->s->ops->request_get(f->s, r->id, &back), SO_OK);
	assert_int_equal(back->status, SO_ST_FAILED);
	assert_int_equal(back->nreviews, 2);
	assert_string_equal(back->result_detail, "boom");
	assert_same_request(r, back);
	so_request_free(back);
	so_request_free(r);
}

static void
test_unknown_request_is_not_found(void **state)
{
	struct fx *f = *state;
	so_request_t *back = (so_request_t *)0x1;
	assert_int_equal(f->s->ops->request_get(f->s, "req_NOPE", &back), SO_ENOTFOUND);
	assert_null(back);
	so_request_t *r = make_request(f, "alice", SHELL_BODY, 3);
	assert_int_equal(f->s->ops->request_update(f->s, r, 0), SO_ENOTFOUND);
	so_request_free(r);
}

static void
test_same_id_twice_is_refused(void **state)
{
	struct fx *f = *state;
	so_request_t *r = make_request(f, "alice", SHELL_BODY, 4);
	assert_int_equal(f->s->ops->request_insert(f->s, r), SO_OK);
	assert_int_equal(f->s->ops->request_insert(f->s, r), SO_ECONFLICT);
	so_request_free(r);
}

static void
test_second_review_by_the_same_reviewer_is_refused_by_the_store(void **state)
{
	struct fx *f = *state;
	so_request_t *r = make_request(f, "deploy-bot", SHELL_BODY, 5);
	assert_int_equal(f->s->ops->request_insert(f->s, r), SO_OK);
	/* The core refuses this; the store must refuse it too (two racing writers). */
	assert_int_equal(so_request_add_review(r, "bob", SO_APPROVE, "api", "", NOW + 1), SO_OK);
	assert_int_equal(f->s->ops->request_update(f->s, r, 0), SO_OK);
	assert_int_equal(so_request_add_review(r, "bob", SO_APPROVE, "slack", "", NOW + 2), SO_OK);
	assert_int_equal(f->s->ops->begin(f->s), SO_OK);
	assert_int_equal(f->s->ops->request_update(f->s, r, 1), SO_ECONFLICT);
	assert_int_equal(f->s->ops->rollback(f->s), SO_OK);
	so_request_t *back = NULL;
	assert_int_equal(f->s->ops->request_get(f->s, r->id, &back), SO_OK);
	assert_int_equal(back->nreviews, 1);
	assert_string_equal(back->reviews[0].channel, "api");
	so_request_free(back);
	so_request_free(r);
}

static void
test_rollback_undoes_a_change(void **state)
{
	struct fx *f = *state;
	so_request_t *r = make_request(f, "alice", SHELL_BODY, 6);
	assert_int_equal(f->s->ops->begin(f->s), SO_OK);
	assert_int_equal(f->s->ops->request_insert(f->s, r), SO_OK);
	assert_int_equal(so_audit_append(f->s, "request.created", r->id, "alice", NULL, NOW), SO_OK);
	assert_int_equal(f->s->ops->rollback(f->s), SO_OK);
	so_request_t *back = NULL;
	assert_int_equal(f->s->ops->request_get(f->s, r->id, &back), SO_ENOTFOUND);
	int64_t seq = -1;
	char hash[65];
	assert_int_equal(f->s->ops->audit_head(f->s, &seq, hash), SO_OK);
	assert_int_equal(seq, 0);
	so_request_free(r);
}

static void
test_idempotency_key_lookup(void **state)
{
	struct fx *f = *state;
	so_request_t *r = make_request(f, "deploy-bot",
	                               "{\"action\":{\"kind\":\"x\"},\"idempotency_key\":\"key-1\"}", 7);
	assert_int_equal(f->s->ops->request_insert(f->s, r), SO_OK);
	char id[SO_ID_LEN + 1] = "";
	assert_int_equal(f->s->ops->request_find_idem(f->s, "deploy-bot", "key-1", id), SO_OK);
	assert_string_equal(id, r->id);
	assert_int_equal(f->s->ops->request_find_idem(f->s, "alice", "key-1", id), SO_ENOTFOUND);
	assert_int_equal(f->s->ops->request_find_idem(f->s, "deploy-bot", "key-2", id), SO_ENOTFOUND);
	/* the same key again from the same requester cannot be stored twice */
	so_request_t *r2 = make_request(f, "deploy-bot",
	                                "{\"action\":{\"kind\":\"y\"},\"idempotency_key\":\"key-1\"}", 8);
	assert_int_equal(f->s->ops->request_insert(f->s, r2), SO_ECONFLICT);
	/* ...but another requester may use it */
	so_request_t *r3 = make_request(f, "alice",
	                                "{\"action\":{\"kind\":\"y\"},\"idempotency_key\":\"key-1\"}", 9);
	assert_int_equal(f->s->ops->request_insert(f->s, r3), SO_OK);
	so_request_free(r);
	so_request_free(r2);
	so_request_free(r3);
}

static void
test_list_due_and_counts(void **state)
{
	struct fx *f = *state;
	so_request_t *a = make_request(f, "alice", SHELL_BODY, 10);
	so_request_t *b = make_request(f, "alice", SHELL_BODY, 11);
	so_request_t *c = make_request(f, "alice", SHELL_BODY, 12);
	so_core_err_t err = {0};
	assert_int_equal(so_core_cancel(b, who("alice"), NOW + 20, &err), SO_OK);
	assert_int_equal(f->s->ops->request_insert(f->s, a), SO_OK);
	assert_int_equal(f->s->ops->request_insert(f->s, b), SO_OK);
	assert_int_equal(f->s->ops->request_insert(f->s, c), SO_OK);

	so_store_query_t q = {.limit = 10};
	so_request_t **items = NULL;
	size_t n = 0;
	assert_int_equal(f->s->ops->request_list(f->s, &q, &items, &n), SO_OK);
	assert_int_equal(n, 3);
	assert_string_equal(items[0]->id, c->id); /* newest first */
	assert_string_equal(items[2]->id, a->id);
	for (size_t i = 0; i < n; i++)
		so_request_free(items[i]);
	free(items);

	q.has_status = 1;
	q.status = SO_ST_PENDING;
	assert_int_equal(f->s->ops->request_list(f->s, &q, &items, &n), SO_OK);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(items[i]->status, SO_ST_PENDING);
		so_request_free(items[i]);
	}
	free(items);

	int64_t counts[SO_ST__COUNT];
	assert_int_equal(f->s->ops->request_counts(f->s, counts), SO_OK);
	assert_int_equal(counts[SO_ST_PENDING], 2);
	assert_int_equal(counts[SO_ST_CANCELLED], 1);

	char(*ids)[SO_ID_LEN + 1] = NULL;
	assert_int_equal(f->s->ops->request_due(f->s, a->expires_at - 1, 10, &ids, &n), SO_OK);
	assert_int_equal(n, 0);
	free(ids);
	assert_int_equal(f->s->ops->request_due(f->s, a->expires_at, 10, &ids, &n), SO_OK);
	assert_int_equal(n, 2); /* the two pending ones, not the cancelled one */
	free(ids);
	so_request_free(a);
	so_request_free(b);
	so_request_free(c);
}

static void
test_audit_head_insert_list_and_verify(void **state)
{
	struct fx *f = *state;
	int64_t seq = -1;
	char hash[65];
	assert_int_equal(f->s->ops->audit_head(f->s, &seq, hash), SO_OK);
	assert_int_equal(seq, 0);
	assert_string_equal(hash, ZEROS);

	assert_int_equal(f->s->ops->begin(f->s), SO_OK);
	assert_int_equal(so_audit_append(f->s, "request.created", "req_A", "deploy-bot",
	                                 json_pack("{s:s}", "status", "pending"), NOW),
	                 SO_OK);
	assert_int_equal(so_audit_append(f->s, "request.reviewed", "req_A", "bob", NULL, NOW + 1),
	                 SO_OK);
	assert_int_equal(so_audit_append(f->s, "token.issued", NULL, "root",
	                                 json_pack("{s:s}", "principal", "ci"), NOW + 2),
	                 SO_OK);
	assert_int_equal(f->s->ops->commit(f->s), SO_OK);

	assert_int_equal(f->s->ops->audit_head(f->s, &seq, hash), SO_OK);
	assert_int_equal(seq, 3);

	json_t *events = NULL;
	assert_int_equal(f->s->ops->audit_list(f->s, 0, 100, &events), SO_OK);
	assert_int_equal(json_array_size(events), 3);
	json_t *first = json_array_get(events, 0);
	assert_int_equal(json_integer_value(json_object_get(first, "seq")), 1);
	assert_string_equal(json_string_value(json_object_get(first, "prev_hash")), ZEROS);
	assert_string_equal(json_string_value(json_object_get(json_object_get(first, "data"), "status")),
	                    "pending");
	assert_true(json_is_null(json_object_get(json_array_get(events, 2), "request_id")));
	int64_t vseq = 0, bad = -1;
	char prev[65] = ZEROS;
	assert_int_equal(so_audit_verify_events(events, &vseq, prev, &bad), SO_OK);
	assert_int_equal(vseq, 3);
	assert_string_equal(prev, hash);
	json_decref(events);

	assert_int_equal(f->s->ops->audit_list(f->s, 1, 1, &events), SO_OK);
	assert_int_equal(json_array_size(events), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(events, 0), "seq")), 2);
	json_decref(events);

	/* a second event with an existing seq is refused */
	so_audit_row_t dup = {.seq = 2, .at = NOW, .type = "forged", .data = "{}"};
	memcpy(dup.prev_hash, ZEROS, 65);
	memcpy(dup.hash, ZEROS, 65);
	assert_int_equal(f->s->ops->audit_insert(f->s, &dup), SO_ECONFLICT);
}

static void
test_tokens_insert_and_lookup(void **state)
{
	struct fx *f = *state;
	static const char h1[] = "00fd347dfef842129adfde76aa4c0d4ad6a00d41960171aeac0866bb70df6c13";
	char principal[64] = "";
	assert_int_equal(f->s->ops->token_lookup(f->s, h1, principal, sizeof(principal)), SO_ENOTFOUND);
	assert_int_equal(f->s->ops->token_insert(f->s, h1, "ci", NOW), SO_OK);
	assert_int_equal(f->s->ops->token_lookup(f->s, h1, principal, sizeof(principal)), SO_OK);
	assert_string_equal(principal, "ci");
	assert_int_equal(f->s->ops->token_insert(f->s, h1, "alice", NOW), SO_ECONFLICT);
	int64_t n = 0;
	assert_int_equal(f->s->ops->token_count(f->s, &n), SO_OK);
	assert_int_equal(n, 1);
}

static void
test_reopen_keeps_everything_without_rerunning_migrations(void **state)
{
	struct fx *f = *state;
	so_request_t *r = make_request(f, "deploy-bot", "{\"action\":{\"kind\":\"x\"},\"idempotency_key\":\"p\"}", 20);
	so_core_err_t err = {0};
	assert_int_equal(so_core_review(&fixture_dir, r, who("bob"), SO_APPROVE, "", "api", NOW + 1,
	                                &err),
	                 SO_OK);
	assert_int_equal(f->s->ops->begin(f->s), SO_OK);
	assert_int_equal(f->s->ops->request_insert(f->s, r), SO_OK);
	assert_int_equal(so_audit_append(f->s, "request.created", r->id, "deploy-bot", NULL, NOW), SO_OK);
	assert_int_equal(f->s->ops->token_insert(f->s, ZEROS, "alice", NOW), SO_OK);
	assert_int_equal(f->s->ops->commit(f->s), SO_OK);
	int64_t seq_before;
	char hash_before[65];
	assert_int_equal(f->s->ops->audit_head(f->s, &seq_before, hash_before), SO_OK);

	so_store_close(f->s);
	f->s = open_store(f);
	assert_int_equal(backend->version(f), SCHEMA_VERSION);

	so_request_t *back = NULL;
	assert_int_equal(f->s->ops->request_get(f->s, r->id, &back), SO_OK);
	assert_same_request(r, back);
	so_request_free(back);
	char id[SO_ID_LEN + 1];
	assert_int_equal(f->s->ops->request_find_idem(f->s, "deploy-bot", "p", id), SO_OK);
	assert_string_equal(id, r->id);
	int64_t seq;
	char hash[65];
	assert_int_equal(f->s->ops->audit_head(f->s, &seq, hash), SO_OK);
	assert_int_equal(seq, seq_before);
	assert_string_equal(hash, hash_before);
	char principal[64];
	assert_int_equal(f->s->ops->token_lookup(f->s, ZEROS, principal, sizeof(principal)), SO_OK);
	assert_string_equal(principal, "alice");
	/* and a third open still works (migrations are idempotent by version) */
	so_store_close(f->s);
	f->s = open_store(f);
	assert_int_equal(backend->version(f), SCHEMA_VERSION);
	so_request_free(r);
}

static void
test_newer_schema_is_refused(void **state)
{
	struct fx *f = *state;
	so_store_close(f->s);
	f->s = NULL;
	backend->set_version(f, 99);
	so_store_t *s = NULL;
	char err[256] = "";
	assert_int_equal(so_store_open(f->url, &s, err, sizeof(err)), SO_ESTORE);
	assert_null(s);
	assert_contains(err, "newer");
	/* reset so teardown can close a store */
	backend->set_version(f, SCHEMA_VERSION);
	f->s = open_store(f);
}

static void
test_baselines_put_replace_and_get(void **state)
{
	struct fx *f = *state;
	char *doc = NULL;

	assert_int_equal(f->s->ops->baseline_get(f->s, "deploy-bot", &doc), SO_ENOTFOUND);
	assert_null(doc);
	assert_int_equal(f->s->ops->baseline_put(f->s, "deploy-bot", "{\"v\":1}", NOW), SO_OK);
	assert_int_equal(f->s->ops->baseline_put(f->s, "deploy-bot", "{\"v\":2}", NOW + 1), SO_OK);
	assert_int_equal(f->s->ops->baseline_get(f->s, "deploy-bot", &doc), SO_OK);
	assert_string_equal(doc, "{\"v\":2}");
	free(doc);
	assert_int_equal(f->s->ops->baseline_get(f->s, "report-bot", &doc), SO_ENOTFOUND);
}

static void
test_savepoints_undo_one_change_and_keep_the_others(void **state)
{
	struct fx *f = *state;
	so_request_t *a = make_request(f, "alice", SHELL_BODY, 30);
	so_request_t *b = make_request(f, "alice", SHELL_BODY, 31);
	const so_store_ops_t *ops = f->s->ops;
	/* what the group-commit writer does: one savepoint per change, one commit */
	assert_int_equal(ops->begin(f->s), SO_OK);
	assert_int_equal(ops->savepoint(f->s), SO_OK);
	assert_int_equal(ops->request_insert(f->s, a), SO_OK);
	assert_int_equal(ops->release(f->s), SO_OK);
	assert_int_equal(ops->savepoint(f->s), SO_OK);
	assert_int_equal(ops->token_insert(f->s, ZEROS, "carol", NOW), SO_OK);
	assert_int_equal(ops->request_insert(f->s, a), SO_ECONFLICT);
	assert_int_equal(ops->rollback_to(f->s), SO_OK);
	assert_int_equal(ops->savepoint(f->s), SO_OK);
	assert_int_equal(ops->request_insert(f->s, b), SO_OK);
	assert_int_equal(ops->release(f->s), SO_OK);
	assert_int_equal(ops->commit(f->s), SO_OK);

	so_request_t *back = NULL;
	assert_int_equal(ops->request_get(f->s, a->id, &back), SO_OK);
	so_request_free(back);
	assert_int_equal(ops->request_get(f->s, b->id, &back), SO_OK);
	so_request_free(back);
	/* the failed change's other write went with it */
	char principal[64];
	assert_int_equal(ops->token_lookup(f->s, ZEROS, principal, sizeof(principal)), SO_ENOTFOUND);
	so_request_free(a);
	so_request_free(b);
}

static void
free_list(so_request_t **items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		so_request_free(items[i]);
	free(items);
}

static void
test_list_pages_with_the_cursor(void **state)
{
	struct fx *f = *state;
	so_request_t *r[4];
	for (int k = 0; k < 4; k++) {
		r[k] = make_request(f, "alice", SHELL_BODY, 40 + k);
		if (k == 3)
			r[k]->created_at = r[2]->created_at; /* a tie, broken by id */
		assert_int_equal(f->s->ops->request_insert(f->s, r[k]), SO_OK);
	}
	so_core_err_t err = {0};
	assert_int_equal(so_core_cancel(r[1], who("alice"), NOW + 50, &err), SO_OK);
	assert_int_equal(f->s->ops->request_update(f->s, r[1], 0), SO_OK);

	so_store_query_t q = {.limit = 2};
	so_request_t **items = NULL;
	size_t n = 0;
	assert_int_equal(f->s->ops->request_list(f->s, &q, &items, &n), SO_OK);
	assert_int_equal(n, 2);
	assert_string_equal(items[0]->id, r[3]->id);
	assert_string_equal(items[1]->id, r[2]->id);
	free_list(items, n);

	q.before_created = r[2]->created_at;
	q.before_id = r[2]->id;
	assert_int_equal(f->s->ops->request_list(f->s, &q, &items, &n), SO_OK);
	assert_int_equal(n, 2);
	assert_string_equal(items[0]->id, r[1]->id);
	assert_string_equal(items[1]->id, r[0]->id);
	free_list(items, n);

	q.has_status = 1;
	q.status = SO_ST_PENDING;
	assert_int_equal(f->s->ops->request_list(f->s, &q, &items, &n), SO_OK);
	assert_int_equal(n, 1);
	assert_string_equal(items[0]->id, r[0]->id);
	free_list(items, n);

	q.limit = 0;
	assert_int_equal(f->s->ops->request_list(f->s, &q, &items, &n), SO_OK);
	assert_int_equal(n, 0);
	free_list(items, n);
	for (int k = 0; k < 4; k++)
		so_request_free(r[k]);
}

static void
test_due_finds_grants_that_ran_out(void **state)
{
	struct fx *f = *state;
	so_request_t *r = make_request(f, "deploy-bot", SHELL_BODY, 45);
	so_core_err_t err = {0};
	assert_int_equal(so_core_review(&fixture_dir, r, who("bob"), SO_APPROVE, "", "api", NOW + 50,
	                                &err),
	                 SO_OK);
	assert_int_equal(so_core_review(&fixture_dir, r, who("carol"), SO_APPROVE, "", "api",
	                                NOW + 51, &err),
	                 SO_OK);
	assert_int_equal(r->status, SO_ST_APPROVED);
	assert_true(r->grant_expires_at > 0);
	assert_int_equal(f->s->ops->request_insert(f->s, r), SO_OK);
	char(*ids)[SO_ID_LEN + 1] = NULL;
	size_t n = 9;
	assert_int_equal(f->s->ops->request_due(f->s, r->grant_expires_at - 1, 10, &ids, &n), SO_OK);
	assert_int_equal(n, 0);
	free(ids);
	assert_int_equal(f->s->ops->request_due(f->s, r->grant_expires_at, 10, &ids, &n), SO_OK);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], r->id);
	free(ids);
	assert_int_equal(f->s->ops->request_due(f->s, r->grant_expires_at, 0, &ids, &n), SO_OK);
	assert_int_equal(n, 0);
	free(ids);
	so_request_free(r);
}

/* Three events: two about req_A, one about nothing and by nobody. */
static void
append_three(struct fx *f)
{
	assert_int_equal(f->s->ops->begin(f->s), SO_OK);
	assert_int_equal(so_audit_append(f->s, "request.submitted", "req_A", "deploy-bot", NULL, NOW),
	                 SO_OK);
	assert_int_equal(so_audit_append(f->s, "policy.loaded", NULL, NULL, NULL, NOW + 1), SO_OK);
	assert_int_equal(so_audit_append(f->s, "request.reviewed", "req_A", "bob", NULL, NOW + 2),
	                 SO_OK);
	assert_int_equal(f->s->ops->commit(f->s), SO_OK);
}

struct seen {
	int n;
	int stop_at;
	int64_t seq[8];
	char hash[8][65];
	int null_request[8];
	int null_actor[8];
};

static int
see_row(void *ctx, const so_audit_row_t *row)
{
	struct seen *s = ctx;
	if (s->n == 8)
		return SO_ETOOLONG;
	s->seq[s->n] = row->seq;
	memcpy(s->hash[s->n], row->hash, 65);
	s->null_request[s->n] = row->request_id == NULL;
	s->null_actor[s->n] = row->actor == NULL;
	s->n++;
	return s->n == s->stop_at ? SO_EBUSY : SO_OK;
}

static void
test_audit_rows_by_seq_and_by_request(void **state)
{
	struct fx *f = *state;
	append_three(f);
	struct seen all = {0};
	assert_int_equal(f->s->ops->audit_each(f->s, 0, 100, see_row, &all), SO_OK);
	assert_int_equal(all.n, 3);
	assert_int_equal(all.seq[0], 1);
	assert_int_equal(all.seq[2], 3);
	assert_true(all.null_request[1] && all.null_actor[1]);
	assert_false(all.null_request[0] || all.null_actor[0]);

	struct seen page = {0};
	assert_int_equal(f->s->ops->audit_each(f->s, 1, 1, see_row, &page), SO_OK);
	assert_int_equal(page.n, 1);
	assert_int_equal(page.seq[0], 2);

	struct seen stopped = {.stop_at = 1};
	assert_int_equal(f->s->ops->audit_each(f->s, 0, 100, see_row, &stopped), SO_EBUSY);
	assert_int_equal(stopped.n, 1);

	struct seen mine = {0};
	assert_int_equal(f->s->ops->audit_for_request(f->s, "req_A", see_row, &mine), SO_OK);
	assert_int_equal(mine.n, 2);
	assert_int_equal(mine.seq[0], 1);
	assert_int_equal(mine.seq[1], 3);
}

static so_checkpoint_row_t
checkpoint(int64_t size)
{
	so_checkpoint_row_t cp = {.size = size, .at = NOW + size};
	snprintf(cp.key_id, sizeof(cp.key_id), "k%015d", (int)size);
	memset(cp.root, 'a' + (int)(size % 6), 64);
	memset(cp.signature, 'b', 128);
	return cp;
}

static void
test_checkpoints_latest_list_and_get(void **state)
{
	struct fx *f = *state;
	so_checkpoint_row_t cp;
	assert_int_equal(f->s->ops->checkpoint_latest(f->s, &cp), SO_ENOTFOUND);
	static const int64_t sizes[] = {2, 9, 5};
	for (size_t i = 0; i < 3; i++) {
		so_checkpoint_row_t c = checkpoint(sizes[i]);
		assert_int_equal(f->s->ops->checkpoint_insert(f->s, &c), SO_OK);
	}
	so_checkpoint_row_t again = checkpoint(5);
	assert_int_equal(f->s->ops->checkpoint_insert(f->s, &again), SO_ECONFLICT);

	assert_int_equal(f->s->ops->checkpoint_latest(f->s, &cp), SO_OK);
	so_checkpoint_row_t want = checkpoint(9);
	assert_int_equal(cp.size, 9);
	assert_int_equal(cp.at, want.at);
	assert_string_equal(cp.key_id, want.key_id);
	assert_string_equal(cp.root, want.root);
	assert_string_equal(cp.signature, want.signature);

	assert_int_equal(f->s->ops->checkpoint_get(f->s, 5, 0, &cp), SO_OK);
	assert_int_equal(cp.size, 5);
	assert_int_equal(f->s->ops->checkpoint_get(f->s, 4, 0, &cp), SO_ENOTFOUND);
	assert_int_equal(f->s->ops->checkpoint_get(f->s, 3, 1, &cp), SO_OK);
	assert_int_equal(cp.size, 5);
	assert_int_equal(f->s->ops->checkpoint_get(f->s, 10, 1, &cp), SO_ENOTFOUND);

	so_checkpoint_row_t *list = NULL;
	size_t n = 0;
	assert_int_equal(f->s->ops->checkpoint_list(f->s, 2, 10, &list, &n), SO_OK);
	assert_int_equal(n, 2);
	assert_int_equal(list[0].size, 5);
	assert_int_equal(list[1].size, 9);
	free(list);
	assert_int_equal(f->s->ops->checkpoint_list(f->s, 0, 1, &list, &n), SO_OK);
	assert_int_equal(n, 1);
	assert_int_equal(list[0].size, 2);
	free(list);
	/* a bound past any real count means all of them */
	assert_int_equal(f->s->ops->checkpoint_list(f->s, 0, SIZE_MAX, &list, &n), SO_OK);
	assert_int_equal(n, 3);
	free(list);
}

static void
test_prune_moves_the_base_and_keeps_the_head(void **state)
{
	struct fx *f = *state;
	so_audit_base_t base = {0};
	assert_int_equal(f->s->ops->audit_base_get(f->s, &base), SO_ENOTFOUND);
	append_three(f);
	for (int64_t size = 1; size <= 3; size++) {
		so_checkpoint_row_t c = checkpoint(size);
		assert_int_equal(f->s->ops->checkpoint_insert(f->s, &c), SO_OK);
	}
	struct seen all = {0};
	assert_int_equal(f->s->ops->audit_each(f->s, 0, 100, see_row, &all), SO_OK);

	base.seq = 2;
	memcpy(base.hash, all.hash[1], 65);
	snprintf(base.frontier, sizeof(base.frontier), "%s", ZEROS);
	memset(base.public_key, 'c', 64);
	base.at = NOW + 10;
	assert_int_equal(f->s->ops->audit_prune(f->s, &base), SO_OK);
	struct seen left = {0};
	assert_int_equal(f->s->ops->audit_each(f->s, 0, 100, see_row, &left), SO_OK);
	assert_int_equal(left.n, 1);
	assert_int_equal(left.seq[0], 3);
	so_checkpoint_row_t *list = NULL;
	size_t n = 0;
	assert_int_equal(f->s->ops->checkpoint_list(f->s, 0, 10, &list, &n), SO_OK);
	assert_int_equal(n, 2); /* the one below the base went */
	assert_int_equal(list[0].size, 2);
	free(list);

	/* archive everything: the head now comes from the base */
	base.seq = 3;
	memcpy(base.hash, all.hash[2], 65);
	base.at = NOW + 20;
	assert_int_equal(f->s->ops->audit_prune(f->s, &base), SO_OK);
	so_audit_base_t back = {0};
	assert_int_equal(f->s->ops->audit_base_get(f->s, &back), SO_OK);
	assert_int_equal(back.seq, 3);
	assert_string_equal(back.hash, all.hash[2]);
	assert_string_equal(back.frontier, ZEROS);
	assert_string_equal(back.public_key, base.public_key);
	assert_int_equal(back.at, NOW + 20);
	int64_t seq = 0;
	char hash[65];
	assert_int_equal(f->s->ops->audit_head(f->s, &seq, hash), SO_OK);
	assert_int_equal(seq, 3);
	assert_string_equal(hash, all.hash[2]);
}

static so_outbox_row_t
outbox_row(const char *request_id, const char *channel, const char *kind, char *target)
{
	so_outbox_row_t row = {.target = target};
	snprintf(row.request_id, sizeof(row.request_id), "%s", request_id);
	snprintf(row.channel, sizeof(row.channel), "%s", channel);
	snprintf(row.kind, sizeof(row.kind), "%s", kind);
	return row;
}

static void
test_outbox_keeps_order_per_request_and_channel(void **state)
{
	struct fx *f = *state;
	char c1[] = "C1", hook0[] = "0", hook1[] = "1";
	so_outbox_row_t rows[] = {
		outbox_row("req_A", "slack", "post", c1),
		outbox_row("req_A", "slack", "update", c1),
		outbox_row("req_A", "webhook", "event", hook0),
		outbox_row("req_A", "webhook", "event", hook1),
		outbox_row("", "slack", "ephemeral", c1),
	};
	rows[1].body = "{\"n\":2}";
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(f->s->ops->outbox_insert(f->s, &rows[i], NOW), SO_OK);
	so_outbox_row_t later = outbox_row("req_B", "teams", "post", c1);
	later.next_at = NOW + 1000;
	assert_int_equal(f->s->ops->outbox_insert(f->s, &later, NOW), SO_OK);

	so_outbox_row_t *due = NULL;
	size_t n = 0;
	assert_int_equal(f->s->ops->outbox_due(f->s, NOW, 10, &due, &n), SO_OK);
	/* the update waits behind the post; each webhook URL goes on its own */
	assert_int_equal(n, 4);
	assert_string_equal(due[0].kind, "post");
	assert_string_equal(due[0].body, "{}");
	assert_string_equal(due[1].target, "0");
	assert_string_equal(due[2].target, "1");
	assert_string_equal(due[3].request_id, "");
	assert_string_equal(due[3].kind, "ephemeral");
	assert_int_equal(due[0].next_at, NOW);
	assert_int_equal(due[0].attempts, 0);
	int64_t post_id = due[0].id;
	int waiting = -1;
	assert_int_equal(f->s->ops->outbox_waiting(f->s, &due[0], &waiting), SO_OK);
	assert_false(waiting);
	so_outbox_rows_free(due, n);

	/* the post fails once and is due again later: the update still waits */
	assert_int_equal(f->s->ops->outbox_settle(f->s, post_id, NULL, 1, NOW + 500, "503", NOW),
	                 SO_OK);
	assert_int_equal(f->s->ops->outbox_due(f->s, NOW, 10, &due, &n), SO_OK);
	assert_int_equal(n, 3);
	so_outbox_rows_free(due, n);
	assert_int_equal(f->s->ops->outbox_due(f->s, NOW + 500, 1, &due, &n), SO_OK);
	assert_int_equal(n, 1);
	assert_int_equal(due[0].id, post_id);
	assert_int_equal(due[0].attempts, 1);
	so_outbox_rows_free(due, n);

	/* done: the update is due now, and no longer waiting */
	assert_int_equal(f->s->ops->outbox_settle(f->s, post_id, "done", 2, NOW + 500, NULL, NOW + 1),
	                 SO_OK);
	assert_int_equal(f->s->ops->outbox_due(f->s, NOW + 500, 10, &due, &n), SO_OK);
	assert_int_equal(n, 4);
	assert_string_equal(due[0].kind, "update");
	assert_string_equal(due[0].body, "{\"n\":2}");
	assert_int_equal(f->s->ops->outbox_waiting(f->s, &due[0], &waiting), SO_OK);
	assert_false(waiting);
	assert_int_equal(f->s->ops->outbox_settle(f->s, due[0].id, "failed", 9, 0, "gone", NOW + 2),
	                 SO_OK);
	so_outbox_rows_free(due, n);
	assert_int_equal(f->s->ops->outbox_due(f->s, NOW + 1000, 10, &due, &n), SO_OK);
	assert_int_equal(n, 4); /* the webhooks, the ephemeral one, and req_B's post */
	so_outbox_rows_free(due, n);
}

struct messages {
	int n;
	char seen[4][32];
};

static int
see_message(void *ctx, const char *target, const char *ref)
{
	struct messages *m = ctx;
	if (m->n == 4)
		return SO_ETOOLONG;
	snprintf(m->seen[m->n++], sizeof(m->seen[0]), "%s/%s", target, ref);
	return SO_OK;
}

static int
stop_at_first(void *ctx, const char *target, const char *ref)
{
	(void)target;
	(void)ref;
	(*(int *)ctx)++;
	return SO_EBUSY;
}

static void
test_chat_messages_are_kept_once_in_order(void **state)
{
	struct fx *f = *state;
	const so_store_ops_t *ops = f->s->ops;
	assert_int_equal(ops->chat_message_insert(f->s, "req_A", "slack", "C1", "ts-2", 7), SO_OK);
	assert_int_equal(ops->chat_message_insert(f->s, "req_A", "slack", "C2", "ts-1", 3), SO_OK);
	/* the same message again, or the same outbox row again: kept once, no error */
	assert_int_equal(ops->chat_message_insert(f->s, "req_A", "slack", "C1", "ts-2", 8), SO_OK);
	assert_int_equal(ops->chat_message_insert(f->s, "req_A", "slack", "C9", "ts-9", 3), SO_OK);
	assert_int_equal(ops->chat_message_insert(f->s, "req_A", "teams", "conv", "act", 9), SO_OK);

	struct messages m = {0};
	assert_int_equal(ops->chat_messages(f->s, "req_A", "slack", see_message, &m), SO_OK);
	assert_int_equal(m.n, 2);
	assert_string_equal(m.seen[0], "C2/ts-1"); /* by outbox row */
	assert_string_equal(m.seen[1], "C1/ts-2");
	int calls = 0;
	assert_int_equal(ops->chat_messages(f->s, "req_A", "slack", stop_at_first, &calls), SO_EBUSY);
	assert_int_equal(calls, 1);
	struct messages none = {0};
	assert_int_equal(ops->chat_messages(f->s, "req_B", "slack", see_message, &none), SO_OK);
	assert_int_equal(none.n, 0);
}

/* ---- console sessions and one-time links ---- */

/* Hashes of secrets (the store only ever sees these). */
#define HASH_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HASH_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define HASH_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define HASH_D "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"

static void
test_sessions_are_found_until_they_expire(void **state)
{
	struct fx *f = *state;
	const so_store_ops_t *ops = f->s->ops;
	char principal[64] = "";
	int64_t expires_at = 0;
	assert_int_equal(ops->session_get(f->s, HASH_A, NOW, principal, sizeof(principal),
	                                  &expires_at),
	                 SO_ENOTFOUND);
	assert_int_equal(ops->session_put(f->s, HASH_A, "session", "alice", NOW + 1000, NOW), SO_OK);
	assert_int_equal(ops->session_get(f->s, HASH_A, NOW, principal, sizeof(principal),
	                                  &expires_at),
	                 SO_OK);
	assert_string_equal(principal, "alice");
	assert_int_equal(expires_at, NOW + 1000);
	assert_int_equal(ops->session_get(f->s, HASH_A, NOW + 999, principal, sizeof(principal),
	                                  &expires_at),
	                 SO_OK);
	/* at its end it is over */
	assert_int_equal(ops->session_get(f->s, HASH_A, NOW + 1000, principal, sizeof(principal),
	                                  &expires_at),
	                 SO_ENOTFOUND);
	/* a sign-in link is not a session */
	assert_int_equal(ops->session_put(f->s, HASH_B, "link", "bob", NOW + 1000, NOW), SO_OK);
	assert_int_equal(ops->session_get(f->s, HASH_B, NOW, principal, sizeof(principal),
	                                  &expires_at),
	                 SO_ENOTFOUND);
}

static void
test_links_are_taken_once(void **state)
{
	struct fx *f = *state;
	const so_store_ops_t *ops = f->s->ops;
	char principal[64] = "";
	int64_t expires_at = 0;
	assert_int_equal(ops->session_put(f->s, HASH_A, "link", "bob", NOW + 1000, NOW), SO_OK);
	assert_int_equal(ops->session_take(f->s, HASH_A, NOW + 1, principal, sizeof(principal)),
	                 SO_OK);
	assert_string_equal(principal, "bob");
	assert_int_equal(ops->session_take(f->s, HASH_A, NOW + 2, principal, sizeof(principal)),
	                 SO_ENOTFOUND);
	/* a session cannot be used as a link, and is still there after the try */
	assert_int_equal(ops->session_put(f->s, HASH_B, "session", "alice", NOW + 1000, NOW), SO_OK);
	assert_int_equal(ops->session_take(f->s, HASH_B, NOW, principal, sizeof(principal)),
	                 SO_ENOTFOUND);
	assert_int_equal(ops->session_get(f->s, HASH_B, NOW, principal, sizeof(principal),
	                                  &expires_at),
	                 SO_OK);
	assert_string_equal(principal, "alice");
	/* a link whose time is up cannot be used */
	assert_int_equal(ops->session_put(f->s, HASH_C, "link", "carol", NOW + 10, NOW), SO_OK);
	assert_int_equal(ops->session_take(f->s, HASH_C, NOW + 10, principal, sizeof(principal)),
	                 SO_ENOTFOUND);
	assert_int_equal(ops->session_take(f->s, HASH_D, NOW, principal, sizeof(principal)),
	                 SO_ENOTFOUND);
}

static void
test_a_principal_keeps_only_its_newest_sessions(void **state)
{
	struct fx *f = *state;
	const so_store_ops_t *ops = f->s->ops;
	char hash[65], principal[64];
	int64_t expires_at;
	const int extra = 2;
	assert_int_equal(ops->session_put(f->s, "link-of-alice", "link", "alice", NOW + 500, NOW),
	                 SO_OK);
	assert_int_equal(ops->session_put(f->s, "bob-1", "session", "bob", NOW + 500, NOW), SO_OK);
	for (int i = 0; i < SO_SESSIONS_PER_PRINCIPAL + extra; i++) {
		snprintf(hash, sizeof(hash), "alice-%02d", i);
		assert_int_equal(ops->session_put(f->s, hash, "session", "alice", NOW + 1000 + i, NOW),
		                 SO_OK);
	}
	/* the oldest ended first; the newest are all there */
	for (int i = 0; i < SO_SESSIONS_PER_PRINCIPAL + extra; i++) {
		snprintf(hash, sizeof(hash), "alice-%02d", i);
		assert_int_equal(ops->session_get(f->s, hash, NOW, principal, sizeof(principal),
		                                  &expires_at),
		                 i < extra ? SO_ENOTFOUND : SO_OK);
	}
	/* other principals and the other kind are untouched */
	assert_int_equal(ops->session_get(f->s, "bob-1", NOW, principal, sizeof(principal),
	                                  &expires_at),
	                 SO_OK);
	assert_int_equal(ops->session_take(f->s, "link-of-alice", NOW, principal, sizeof(principal)),
	                 SO_OK);
}

static void
test_a_signature_is_new_once_until_its_time_is_up(void **state)
{
	struct fx *f = *state;
	const so_store_ops_t *ops = f->s->ops;
	int seen = -1;
	assert_int_equal(ops->signature_seen(f->s, "v0=aa", NOW, NOW + 600, &seen), SO_OK);
	assert_int_equal(seen, 0);
	assert_int_equal(ops->signature_seen(f->s, "v0=aa", NOW + 1, NOW + 601, &seen), SO_OK);
	assert_int_equal(seen, 1); /* a replay */
	assert_int_equal(ops->signature_seen(f->s, "v0=bb", NOW + 1, NOW + 601, &seen), SO_OK);
	assert_int_equal(seen, 0);
	/* at its expiry it is forgotten, and counts as new again (its timestamp is stale by
	 * then, so the signature check refuses it first) */
	assert_int_equal(ops->signature_seen(f->s, "v0=aa", NOW + 600, NOW + 1200, &seen), SO_OK);
	assert_int_equal(seen, 0);
	assert_int_equal(ops->signature_seen(f->s, "v0=bb", NOW + 600, NOW + 1200, &seen), SO_OK);
	assert_int_equal(seen, 1);
}

static void
test_session_delete_ends_that_session_only(void **state)
{
	struct fx *f = *state;
	const so_store_ops_t *ops = f->s->ops;
	char principal[64] = "";
	int64_t expires_at = 0;
	assert_int_equal(ops->session_put(f->s, HASH_A, "session", "alice", NOW + 1000, NOW), SO_OK);
	assert_int_equal(ops->session_put(f->s, HASH_B, "session", "alice", NOW + 1000, NOW), SO_OK);
	assert_int_equal(ops->session_delete(f->s, HASH_A), SO_OK);
	assert_int_equal(ops->session_get(f->s, HASH_A, NOW, principal, sizeof(principal),
	                                  &expires_at),
	                 SO_ENOTFOUND);
	assert_int_equal(ops->session_get(f->s, HASH_B, NOW, principal, sizeof(principal),
	                                  &expires_at),
	                 SO_OK);
	assert_string_equal(principal, "alice");
	/* ending one that is not there is no error */
	assert_int_equal(ops->session_delete(f->s, HASH_A), SO_OK);
	assert_int_equal(ops->session_delete(f->s, HASH_C), SO_OK);
}

static void
test_session_put_drops_rows_whose_time_is_up(void **state)
{
	struct fx *f = *state;
	const so_store_ops_t *ops = f->s->ops;
	char principal[64] = "";
	int64_t expires_at = 0;
	assert_int_equal(ops->session_put(f->s, HASH_A, "session", "alice", NOW + 10, NOW), SO_OK);
	assert_int_equal(ops->session_put(f->s, HASH_B, "link", "bob", NOW + 10, NOW), SO_OK);
	assert_int_equal(ops->session_put(f->s, HASH_C, "session", "carol", NOW + 1000, NOW), SO_OK);
	/* a put at NOW + 10 drops the two that ended then: asked about an earlier time, when they
	 * were live, the store no longer has them */
	assert_int_equal(ops->session_put(f->s, HASH_D, "session", "dave", NOW + 2000, NOW + 10),
	                 SO_OK);
	assert_int_equal(ops->session_get(f->s, HASH_A, NOW, principal, sizeof(principal),
	                                  &expires_at),
	                 SO_ENOTFOUND);
	assert_int_equal(ops->session_take(f->s, HASH_B, NOW, principal, sizeof(principal)),
	                 SO_ENOTFOUND);
	assert_int_equal(ops->session_get(f->s, HASH_C, NOW, principal, sizeof(principal),
	                                  &expires_at),
	                 SO_OK);
	assert_string_equal(principal, "carol");
	/* so the hash of an expired row may be put again */
	assert_int_equal(ops->session_put(f->s, HASH_A, "session", "erin", NOW + 3000, NOW + 20),
	                 SO_OK);
	assert_int_equal(ops->session_get(f->s, HASH_A, NOW + 20, principal, sizeof(principal),
	                                  &expires_at),
	                 SO_OK);
	assert_string_equal(principal, "erin");
}

static void
test_session_same_hash_twice_is_refused(void **state)
{
	struct fx *f = *state;
	const so_store_ops_t *ops = f->s->ops;
	char principal[64] = "";
	int64_t expires_at = 0;
	assert_int_equal(ops->session_put(f->s, HASH_A, "session", "alice", NOW + 1000, NOW), SO_OK);
	assert_int_equal(ops->session_put(f->s, HASH_A, "session", "mallory", NOW + 5000, NOW + 1),
	                 SO_ECONFLICT);
	assert_int_equal(ops->session_put(f->s, HASH_A, "link", "mallory", NOW + 5000, NOW + 1),
	                 SO_ECONFLICT);
	assert_int_equal(ops->session_get(f->s, HASH_A, NOW, principal, sizeof(principal),
	                                  &expires_at),
	                 SO_OK);
	assert_string_equal(principal, "alice");
	assert_int_equal(expires_at, NOW + 1000);
}

static void
test_session_principal_longer_than_the_buffer_is_cut(void **state)
{
	struct fx *f = *state;
	const so_store_ops_t *ops = f->s->ops;
	static const char longer[] = "a-principal-much-longer-than-eight-bytes";
	/* eight bytes for the store to write, then eight it must leave alone */
	struct {
		char principal[8];
		char after[8];
	} out;
	int64_t expires_at = 0;
	assert_int_equal(ops->session_put(f->s, HASH_A, "session", longer, NOW + 1000, NOW), SO_OK);
	assert_int_equal(ops->session_put(f->s, HASH_B, "link", longer, NOW + 1000, NOW), SO_OK);

	memset(&out, '#', sizeof(out));
	assert_int_equal(ops->session_get(f->s, HASH_A, NOW, out.principal, sizeof(out.principal),
	                                  &expires_at),
	                 SO_OK);
	assert_string_equal(out.principal, "a-princ");
	assert_memory_equal(out.after, "########", sizeof(out.after));
	assert_int_equal(expires_at, NOW + 1000);

	memset(&out, '#', sizeof(out));
	assert_int_equal(ops->session_take(f->s, HASH_B, NOW, out.principal, sizeof(out.principal)),
	                 SO_OK);
	assert_string_equal(out.principal, "a-princ");
	assert_memory_equal(out.after, "########", sizeof(out.after));
}

struct taker {
	const char *url;
	pthread_barrier_t *go;
	int open_rc;
	int rc;
	char principal[64];
};

/* Open a connection of its own, then use the link HASH_A when every taker is ready. */
static void *
take_at_once(void *arg)
{
	struct taker *t = arg;
	so_store_t *s = NULL;
	char err[256];
	t->open_rc = so_store_open(t->url, &s, err, sizeof(err));
	pthread_barrier_wait(t->go);
	if (t->open_rc == SO_OK) {
		t->rc = s->ops->session_take(s, HASH_A, NOW, t->principal, sizeof(t->principal));
		so_store_close(s);
	}
	return NULL;
}

static void
test_a_link_taken_twice_at_once_is_used_once(void **state)
{
	struct fx *f = *state;
	pthread_barrier_t go;
	pthread_t threads[RACERS];
	struct taker takers[RACERS];
	int won = 0;
	assert_int_equal(f->s->ops->session_put(f->s, HASH_A, "link", "bob", NOW + 1000, NOW), SO_OK);
	assert_int_equal(pthread_barrier_init(&go, NULL, RACERS), 0);
	for (int i = 0; i < RACERS; i++) {
		takers[i] = (struct taker){.url = f->url, .go = &go, .rc = -1};
		assert_int_equal(pthread_create(&threads[i], NULL, take_at_once, &takers[i]), 0);
	}
	for (int i = 0; i < RACERS; i++)
		pthread_join(threads[i], NULL);
	pthread_barrier_destroy(&go);
	for (int i = 0; i < RACERS; i++) {
		assert_int_equal(takers[i].open_rc, SO_OK);
		if (takers[i].rc == SO_OK) {
			assert_string_equal(takers[i].principal, "bob");
			won++;
		} else if (takers[i].rc != SO_ENOTFOUND) {
			fail_msg("taker %d: %s", i, so_strerror(takers[i].rc));
		}
	}
	assert_int_equal(won, 1);
}

/* ---- SQLite only ---- */

static void
test_sqlite_unopenable_path_is_a_store_error(void **state)
{
	(void)state;
	so_store_t *s = NULL;
	char err[256] = "";
	assert_int_equal(so_store_open("sqlite:/nonexistent-dir/x/y.db", &s, err, sizeof(err)),
	                 SO_ESTORE);
	assert_null(s);
	assert_int_equal(so_store_open("sqlite:/tmp/x.db?busy=1", &s, err, sizeof(err)), SO_ECONFIG);
	assert_null(s);
}

static void
test_sqlite_has_no_multi_node_ops(void **state)
{
	struct fx *f = *state;
	/* one process uses a SQLite store: nothing to serialize with, nobody to tell */
	assert_null(f->s->ops->announce);
	assert_null(f->s->ops->listen);
	assert_null(f->s->ops->next_announcement);
	assert_null(f->s->ops->outbox_claim);
}

/* ---- PostgreSQL only ---- */

struct racer {
	const char *url;
	pthread_barrier_t *go;
	so_store_t *s;
	int rc;
	char err[256];
};

static void *
open_at_once(void *arg)
{
	struct racer *r = arg;
	pthread_barrier_wait(r->go);
	r->rc = so_store_open(r->url, &r->s, r->err, sizeof(r->err));
	return NULL;
}

static void
test_postgres_nodes_opening_together_migrate_once(void **state)
{
	struct fx *f = *state; /* a database nobody opened yet */
	pthread_barrier_t go;
	pthread_t threads[RACERS];
	struct racer racers[RACERS];
	assert_int_equal(pthread_barrier_init(&go, NULL, RACERS), 0);
	for (int i = 0; i < RACERS; i++) {
		racers[i] = (struct racer){.url = f->url, .go = &go};
		assert_int_equal(pthread_create(&threads[i], NULL, open_at_once, &racers[i]), 0);
	}
	for (int i = 0; i < RACERS; i++)
		pthread_join(threads[i], NULL);
	pthread_barrier_destroy(&go);
	for (int i = 0; i < RACERS; i++) {
		if (racers[i].rc != SO_OK)
			fail_msg("open %d failed: %s", i, racers[i].err);
		int64_t n = -1;
		assert_int_equal(racers[i].s->ops->token_count(racers[i].s, &n), SO_OK);
		assert_int_equal(n, 0);
		so_store_close(racers[i].s);
	}
	assert_int_equal(backend->version(f), SCHEMA_VERSION);
}

/* End the server side of every connection to the test's database, as a restart would. */
static void
kill_connections(struct fx *f)
{
	PGresult *res = pg_run(server_url,
	                       "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
	                       "WHERE datname = $1 AND pid <> pg_backend_pid()",
	                       f->dbname);
	assert_non_null(res);
	assert_true(PQntuples(res) >= 1);
	assert_string_equal(PQgetvalue(res, 0, 0), "t");
	PQclear(res);
}

static void
test_postgres_an_idle_connection_the_server_ended_is_reset_before_use(void **state)
{
	struct fx *f = *state;
	int64_t n = -1;
	assert_int_equal(f->s->ops->token_insert(f->s, ZEROS, "alice", NOW), SO_OK);
	kill_connections(f);
	/* the server said goodbye on the socket: the next call reconnects first, and prepares
	 * its statements again (inside a transaction it fails instead: the test below) */
	assert_int_equal(f->s->ops->token_count(f->s, &n), SO_OK);
	assert_int_equal(n, 1);
	char principal[64];
	assert_int_equal(f->s->ops->token_lookup(f->s, ZEROS, principal, sizeof(principal)), SO_OK);
	assert_string_equal(principal, "alice");
}

static void
test_postgres_connection_lost_in_a_transaction_writes_nothing(void **state)
{
	struct fx *f = *state;
	const so_store_ops_t *ops = f->s->ops;
	so_request_t *r = make_request(f, "alice", SHELL_BODY, 60);
	assert_int_equal(ops->begin(f->s), SO_OK);
	assert_int_equal(ops->savepoint(f->s), SO_OK);
	assert_int_equal(ops->request_insert(f->s, r), SO_OK);
	kill_connections(f);
	assert_int_equal(so_audit_append(f->s, "request.created", r->id, "alice", NULL, NOW),
	                 SO_ESTORE);
	/* the rest of that transaction must not run on its own on a new connection */
	assert_int_equal(ops->token_insert(f->s, ZEROS, "alice", NOW), SO_ESTORE);
	assert_int_equal(ops->rollback_to(f->s), SO_ESTORE);
	assert_int_equal(ops->commit(f->s), SO_ESTORE);
	assert_int_equal(ops->rollback(f->s), SO_OK);

	/* the store works again, and holds none of it */
	so_request_t *back = NULL;
	assert_int_equal(ops->request_get(f->s, r->id, &back), SO_ENOTFOUND);
	char principal[64];
	assert_int_equal(ops->token_lookup(f->s, ZEROS, principal, sizeof(principal)), SO_ENOTFOUND);
	int64_t seq = -1;
	char hash[65];
	assert_int_equal(ops->audit_head(f->s, &seq, hash), SO_OK);
	assert_int_equal(seq, 0);
	so_request_free(r);
}

static void
test_postgres_commit_after_a_failed_statement_fails(void **state)
{
	struct fx *f = *state;
	const so_store_ops_t *ops = f->s->ops;
	so_request_t *r = make_request(f, "alice", SHELL_BODY, 61);
	assert_int_equal(ops->request_insert(f->s, r), SO_OK);
	assert_int_equal(ops->begin(f->s), SO_OK);
	assert_int_equal(ops->token_insert(f->s, ZEROS, "alice", NOW), SO_OK);
	assert_int_equal(ops->request_insert(f->s, r), SO_ECONFLICT);
	/* PostgreSQL turns this COMMIT into a rollback; the caller must hear it failed */
	assert_int_equal(ops->commit(f->s), SO_ESTORE);
	char principal[64];
	assert_int_equal(ops->token_lookup(f->s, ZEROS, principal, sizeof(principal)), SO_ENOTFOUND);
	so_request_free(r);
}

static void
test_postgres_settled_private_messages_lose_their_body(void **state)
{
	struct fx *f = *state;
	char user[] = "U1";
	so_outbox_row_t row = outbox_row("", "slack", "ephemeral", user);
	row.body = "{\"link\":\"secret\"}";
	assert_int_equal(f->s->ops->outbox_insert(f->s, &row, NOW), SO_OK);
	so_outbox_row_t *due = NULL;
	size_t n = 0;
	assert_int_equal(f->s->ops->outbox_due(f->s, NOW, 10, &due, &n), SO_OK);
	assert_int_equal(n, 1);
	int64_t id = due[0].id;
	so_outbox_rows_free(due, n);
	/* a retry keeps it; done drops it */
	assert_int_equal(f->s->ops->outbox_settle(f->s, id, NULL, 1, NOW, "503", NOW), SO_OK);
	assert_int_equal(f->s->ops->outbox_due(f->s, NOW, 10, &due, &n), SO_OK);
	assert_int_equal(n, 1);
	assert_string_equal(due[0].body, row.body);
	so_outbox_rows_free(due, n);
	assert_int_equal(f->s->ops->outbox_settle(f->s, id, "done", 2, NOW, NULL, NOW), SO_OK);
	PGresult *res = pg_run(f->url, "SELECT body FROM outbox", NULL);
	assert_non_null(res);
	assert_string_equal(PQgetvalue(res, 0, 0), "{}");
	PQclear(res);
}

static void
test_postgres_url_parameters_reach_libpq(void **state)
{
	struct fx *f = *state;
	char url[1200];
	const char *sep = strchr(f->url, '?') ? "&" : "?";
	so_store_t *s = NULL;
	char err[256] = "";

	/* TLS options pass through: this server has no TLS, so requiring it fails */
	snprintf(url, sizeof(url), "%s%ssslmode=require", f->url, sep);
	assert_int_equal(so_store_open(url, &s, err, sizeof(err)), SO_ESTORE);
	assert_null(s);
	assert_contains(err, "SSL");

	/* and any other parameter, overriding signoffd's defaults */
	snprintf(url, sizeof(url), "%s%sapplication_name=so-probe", f->url, sep);
	assert_int_equal(so_store_open(url, &s, err, sizeof(err)), SO_OK);
	PGresult *res = pg_run(server_url,
	                       "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
	                       "so-probe");
	assert_non_null(res);
	assert_string_equal(PQgetvalue(res, 0, 0), "1");
	PQclear(res);
	so_store_close(s);

	/* the short scheme works too */
	snprintf(url, sizeof(url), "postgres%s", f->url + strlen("postgresql"));
	assert_int_equal(so_store_open(url, &s, err, sizeof(err)), SO_OK);
	so_store_close(s);
}

static void
test_postgres_bad_urls_are_refused(void **state)
{
	(void)state;
	so_store_t *s = NULL;
	char err[256] = "";
	assert_int_equal(so_store_open("postgresql:dbname=x", &s, err, sizeof(err)), SO_ECONFIG);
	assert_contains(err, "postgresql://");
	/* a parameter libpq does not know is a configuration error too, named */
	assert_int_equal(so_store_open("postgresql://127.0.0.1/x?no_such_param=1", &s, err,
	                               sizeof(err)),
	                 SO_ECONFIG);
	assert_null(s);
	assert_contains(err, "no_such_param");
	/* nothing listens on port 1: a store error, at once, with libpq's reason */
	assert_int_equal(so_store_open("postgresql://127.0.0.1:1/x?connect_timeout=2", &s, err,
	                               sizeof(err)),
	                 SO_ESTORE);
	assert_null(s);
	assert_contains(err, "cannot connect");
	assert_int_equal(so_store_open("postgresql://so-user:secret-pw@127.0.0.1:1/x", &s, err,
	                               sizeof(err)),
	                 SO_ESTORE);
	if (strstr(err, "secret-pw"))
		fail_msg("the password is in the error: %s", err);
}

/* A due outbox row (request-less, so nothing holds it back); its id. */
static int64_t
due_outbox_row(struct fx *f)
{
	char c1[] = "C1";
	so_outbox_row_t row = outbox_row("", "slack", "post", c1);
	so_outbox_row_t *due = NULL;
	size_t n = 0;
	assert_int_equal(f->s->ops->outbox_insert(f->s, &row, NOW), SO_OK);
	assert_int_equal(f->s->ops->outbox_due(f->s, NOW, 10, &due, &n), SO_OK);
	assert_int_equal(n, 1);
	int64_t id = due[0].id;
	so_outbox_rows_free(due, n);
	return id;
}

static void
test_postgres_outbox_claim_leases_a_row_to_one_node(void **state)
{
	struct fx *f = *state;
	so_store_t *a = f->s, *b = open_store(f);
	const so_store_ops_t *ops = a->ops;
	int64_t id = due_outbox_row(f);
	int claimed = -1;
	so_outbox_row_t *due = NULL;
	size_t n = 9;

	assert_int_equal(ops->outbox_claim(a, id, NOW, NOW + 1000, &claimed), SO_OK);
	assert_int_equal(claimed, 1);
	/* another node, at the same time or during the lease, does not get it */
	assert_int_equal(ops->outbox_claim(b, id, NOW, NOW + 1000, &claimed), SO_OK);
	assert_int_equal(claimed, 0);
	assert_int_equal(ops->outbox_claim(b, id, NOW + 999, NOW + 1999, &claimed), SO_OK);
	assert_int_equal(claimed, 0);
	assert_int_equal(ops->outbox_due(b, NOW + 999, 10, &due, &n), SO_OK);
	assert_int_equal(n, 0);
	so_outbox_rows_free(due, n);
	/* the lease ran out (the first node died before settling it): another node takes it */
	assert_int_equal(ops->outbox_claim(b, id, NOW + 1000, NOW + 2000, &claimed), SO_OK);
	assert_int_equal(claimed, 1);
	/* settled, it is never claimed again */
	assert_int_equal(ops->outbox_settle(b, id, "done", 1, NOW + 1000, NULL, NOW + 1000), SO_OK);
	assert_int_equal(ops->outbox_claim(a, id, NOW + 9000, NOW + 10000, &claimed), SO_OK);
	assert_int_equal(claimed, 0);
	/* nor is a row that does not exist */
	assert_int_equal(ops->outbox_claim(a, id + 1000, NOW, NOW + 1000, &claimed), SO_OK);
	assert_int_equal(claimed, 0);
	so_store_close(b);
}

struct claimer {
	const char *url;
	pthread_barrier_t *go;
	int64_t id;
	int open_rc;
	int rc;
	int claimed;
};

static void *
claim_at_once(void *arg)
{
	struct claimer *c = arg;
	so_store_t *s = NULL;
	char err[256];
	c->open_rc = so_store_open(c->url, &s, err, sizeof(err));
	pthread_barrier_wait(c->go);
	if (c->open_rc == SO_OK) {
		c->rc = s->ops->outbox_claim(s, c->id, NOW, NOW + 1000, &c->claimed);
		so_store_close(s);
	}
	return NULL;
}

static void
test_postgres_outbox_claims_at_once_lease_to_one(void **state)
{
	struct fx *f = *state;
	int64_t id = due_outbox_row(f);
	pthread_barrier_t go;
	pthread_t threads[RACERS];
	struct claimer claimers[RACERS];
	int won = 0;
	assert_int_equal(pthread_barrier_init(&go, NULL, RACERS), 0);
	for (int i = 0; i < RACERS; i++) {
		claimers[i] = (struct claimer){.url = f->url, .go = &go, .id = id, .rc = -1};
		assert_int_equal(pthread_create(&threads[i], NULL, claim_at_once, &claimers[i]), 0);
	}
	for (int i = 0; i < RACERS; i++)
		pthread_join(threads[i], NULL);
	pthread_barrier_destroy(&go);
	for (int i = 0; i < RACERS; i++) {
		assert_int_equal(claimers[i].open_rc, SO_OK);
		assert_int_equal(claimers[i].rc, SO_OK);
		won += claimers[i].claimed;
	}
	assert_int_equal(won, 1);
}

/* Long enough for a notification already sent to arrive; only reached when a test fails. */
#define ANNOUNCE_WAIT_MS 5000
/* How long a test looks for a notification that must not come. */
#define SILENCE_MS 200

static void
test_postgres_announcements_arrive_when_the_transaction_commits(void **state)
{
	struct fx *f = *state;
	so_store_t *a = f->s, *b = open_store(f);
	const so_store_ops_t *ops = a->ops;
	char payload[SO_ANNOUNCE_MAX + 1] = "";
	assert_int_equal(ops->listen(b), SO_OK);
	assert_int_equal(ops->begin(a), SO_OK);
	assert_int_equal(ops->announce(a, "x"), SO_OK);
	assert_int_equal(ops->next_announcement(b, SILENCE_MS, -1, payload, sizeof(payload)), SO_EBUSY);
	assert_int_equal(ops->commit(a), SO_OK);
	assert_int_equal(ops->next_announcement(b, ANNOUNCE_WAIT_MS, -1, payload, sizeof(payload)),
	                 SO_OK);
	assert_string_equal(payload, "x");
	assert_int_equal(ops->next_announcement(b, SILENCE_MS, -1, payload, sizeof(payload)), SO_EBUSY);
	so_store_close(b);
}

static void
test_postgres_a_rolled_back_announcement_is_never_sent(void **state)
{
	struct fx *f = *state;
	so_store_t *a = f->s, *b = open_store(f);
	const so_store_ops_t *ops = a->ops;
	char payload[SO_ANNOUNCE_MAX + 1] = "";
	assert_int_equal(ops->listen(b), SO_OK);
	assert_int_equal(ops->begin(a), SO_OK);
	assert_int_equal(ops->announce(a, "lost"), SO_OK);
	assert_int_equal(ops->rollback(a), SO_OK);
	/* a later one does arrive, and it is the first: announcements come in commit order */
	assert_int_equal(ops->begin(a), SO_OK);
	assert_int_equal(ops->announce(a, "kept"), SO_OK);
	assert_int_equal(ops->commit(a), SO_OK);
	assert_int_equal(ops->next_announcement(b, ANNOUNCE_WAIT_MS, -1, payload, sizeof(payload)),
	                 SO_OK);
	assert_string_equal(payload, "kept");
	assert_int_equal(ops->next_announcement(b, SILENCE_MS, -1, payload, sizeof(payload)), SO_EBUSY);
	so_store_close(b);
}

static void
test_postgres_an_announcement_longer_than_the_buffer_is_cut(void **state)
{
	struct fx *f = *state;
	so_store_t *a = f->s, *b = open_store(f);
	const so_store_ops_t *ops = a->ops;
	struct {
		char payload[4];
		char after[8];
	} out;
	memset(&out, '#', sizeof(out));
	assert_int_equal(ops->listen(b), SO_OK);
	assert_int_equal(ops->announce(a, "request req_A"), SO_OK); /* on its own: sent at once */
	assert_int_equal(ops->next_announcement(b, ANNOUNCE_WAIT_MS, -1, out.payload,
	                                        sizeof(out.payload)),
	                 SO_OK);
	assert_string_equal(out.payload, "req");
	assert_memory_equal(out.after, "########", sizeof(out.after));
	so_store_close(b);
}

static int64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* libpq's lock_timeout for the second connection, in the URL (overriding signoffd's 10 s). */
#define SHORT_LOCK_TIMEOUT_MS 300

static void
test_postgres_write_transactions_of_two_connections_take_turns(void **state)
{
	struct fx *f = *state;
	so_store_t *a = f->s, *b = NULL;
	const so_store_ops_t *ops = a->ops;
	char url[1200], err[256] = "";
	snprintf(url, sizeof(url), "%s%soptions=-c%%20lock_timeout%%3D%d", f->url,
	         strchr(f->url, '?') ? "&" : "?", SHORT_LOCK_TIMEOUT_MS);
	if (so_store_open(url, &b, err, sizeof(err)) != SO_OK)
		fail_msg("open %s: %s", url, err);

	assert_int_equal(ops->begin(a), SO_OK);
	/* reads do not wait for the writer */
	int64_t n = -1;
	assert_int_equal(ops->token_count(b, &n), SO_OK);
	/* a second writer waits its lock_timeout, then fails (not its 10 s default) */
	int64_t t0 = mono_ms();
	assert_int_equal(ops->begin(b), SO_ESTORE);
	int64_t waited = mono_ms() - t0;
	if (waited < SHORT_LOCK_TIMEOUT_MS - 50 || waited > 5000)
		fail_msg("the second begin failed after %" PRId64 " ms", waited);
	/* the failed begin left no transaction behind: it runs once the first writer is done */
	assert_int_equal(ops->token_insert(a, ZEROS, "alice", NOW), SO_OK);
	assert_int_equal(ops->commit(a), SO_OK);
	assert_int_equal(ops->begin(b), SO_OK);
	char principal[64];
	assert_int_equal(ops->token_lookup(b, ZEROS, principal, sizeof(principal)), SO_OK);
	assert_string_equal(principal, "alice");
	/* and now the first one waits for it */
	assert_int_equal(ops->commit(b), SO_OK);
	assert_int_equal(ops->begin(a), SO_OK);
	assert_int_equal(ops->commit(a), SO_OK);
	so_store_close(b);
}

static void
test_postgres_a_lost_listening_connection_says_so_and_listens_again(void **state)
{
	struct fx *f = *state;
	so_store_t *a = f->s, *b = open_store(f);
	const so_store_ops_t *ops = a->ops;
	char payload[SO_ANNOUNCE_MAX + 1] = "";
	assert_int_equal(ops->listen(b), SO_OK);
	kill_connections(f);
	assert_int_equal(ops->next_announcement(b, ANNOUNCE_WAIT_MS, -1, payload, sizeof(payload)),
	                 SO_ESTORE);
	/* asked again before listening again, it says the same at once */
	assert_int_equal(ops->next_announcement(b, ANNOUNCE_WAIT_MS, -1, payload, sizeof(payload)),
	                 SO_ESTORE);
	assert_int_equal(ops->listen(b), SO_OK);
	assert_int_equal(ops->announce(a, "after"), SO_OK);
	assert_int_equal(ops->next_announcement(b, ANNOUNCE_WAIT_MS, -1, payload, sizeof(payload)),
	                 SO_OK);
	assert_string_equal(payload, "after");
	so_store_close(b);
}

static void
test_postgres_a_listening_connection_lost_and_reset_by_another_call_still_says_so(void **state)
{
	struct fx *f = *state;
	so_store_t *a = f->s, *b = open_store(f);
	const so_store_ops_t *ops = a->ops;
	char payload[SO_ANNOUNCE_MAX + 1] = "";
	int64_t n = -1;
	assert_int_equal(ops->listen(b), SO_OK);
	kill_connections(f);
	/* another call on the listening connection (src/server/cluster.c reads requests on it)
	 * reconnects it before next_announcement looks */
	assert_int_equal(ops->token_count(b, &n), SO_OK);
	assert_int_equal(ops->announce(a, "x"), SO_OK);
	/* the new connection listens to nothing: what was announced is lost, and the caller
	 * must hear that the connection was lost, not wait in silence for ever */
	assert_int_equal(ops->next_announcement(b, ANNOUNCE_WAIT_MS, -1, payload, sizeof(payload)),
	                 SO_ESTORE);
	assert_int_equal(ops->listen(b), SO_OK);
	assert_int_equal(ops->announce(a, "y"), SO_OK);
	assert_int_equal(ops->next_announcement(b, ANNOUNCE_WAIT_MS, -1, payload, sizeof(payload)),
	                 SO_OK);
	assert_string_equal(payload, "y");
	so_store_close(b);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define T_UNOPENED(fn) cmocka_unit_test_setup_teardown(fn, setup_unopened, teardown)

int
main(void)
{
	const struct CMUnitTest common[] = {
		T(test_open_creates_the_schema),
		T(test_open_refuses_unknown_schemes),
		T(test_request_round_trip_keeps_fields_and_reviews),
		T(test_request_update_adds_new_reviews_and_state),
		T(test_unknown_request_is_not_found),
		T(test_same_id_twice_is_refused),
		T(test_second_review_by_the_same_reviewer_is_refused_by_the_store),
		T(test_rollback_undoes_a_change),
		T(test_savepoints_undo_one_change_and_keep_the_others),
		T(test_idempotency_key_lookup),
		T(test_list_due_and_counts),
		T(test_list_pages_with_the_cursor),
		T(test_due_finds_grants_that_ran_out),
		T(test_audit_head_insert_list_and_verify),
		T(test_audit_rows_by_seq_and_by_request),
		T(test_checkpoints_latest_list_and_get),
		T(test_prune_moves_the_base_and_keeps_the_head),
		T(test_outbox_keeps_order_per_request_and_channel),
		T(test_chat_messages_are_kept_once_in_order),
		T(test_tokens_insert_and_lookup),
		T(test_baselines_put_replace_and_get),
		T(test_reopen_keeps_everything_without_rerunning_migrations),
		T(test_newer_schema_is_refused),
		T(test_sessions_are_found_until_they_expire),
		T(test_links_are_taken_once),
		T(test_session_delete_ends_that_session_only),
		T(test_a_signature_is_new_once_until_its_time_is_up),
		T(test_a_principal_keeps_only_its_newest_sessions),
		T(test_session_put_drops_rows_whose_time_is_up),
		T(test_session_same_hash_twice_is_refused),
		T(test_session_principal_longer_than_the_buffer_is_cut),
		T(test_a_link_taken_twice_at_once_is_used_once),
	};
	const struct CMUnitTest sqlite_only[] = {
		T(test_sqlite_unopenable_path_is_a_store_error),
		T(test_sqlite_has_no_multi_node_ops),
	};
	const struct CMUnitTest postgres_only[] = {
		T_UNOPENED(test_postgres_nodes_opening_together_migrate_once),
		T(test_postgres_an_idle_connection_the_server_ended_is_reset_before_use),
		T(test_postgres_connection_lost_in_a_transaction_writes_nothing),
		T(test_postgres_commit_after_a_failed_statement_fails),
		T(test_postgres_settled_private_messages_lose_their_body),
		T(test_postgres_url_parameters_reach_libpq),
		T(test_postgres_bad_urls_are_refused),
		T(test_postgres_outbox_claim_leases_a_row_to_one_node),
		T(test_postgres_outbox_claims_at_once_lease_to_one),
		T(test_postgres_announcements_arrive_when_the_transaction_commits),
		T(test_postgres_a_rolled_back_announcement_is_never_sent),
		T(test_postgres_an_announcement_longer_than_the_buffer_is_cut),
		T(test_postgres_write_transactions_of_two_connections_take_turns),
		T(test_postgres_a_lost_listening_connection_says_so_and_listens_again),
		T(test_postgres_a_listening_connection_lost_and_reset_by_another_call_still_says_so),
	};
	const char *url = getenv("SIGNOFF_TEST_STORE_URL");
	int failed;

	if (url && (!strncmp(url, "postgresql://", 13) || !strncmp(url, "postgres://", 11))) {
		backend = &postgres_backend;
		server_url = url;
		failed = cmocka_run_group_tests_name("store (postgresql)", common, NULL, NULL);
		failed += cmocka_run_group_tests_name("postgresql only", postgres_only, NULL, NULL);
	} else if (!url || !*url) {
		backend = &sqlite_backend;
		failed = cmocka_run_group_tests_name("store (sqlite)", common, NULL, NULL);
		failed += cmocka_run_group_tests_name("sqlite only", sqlite_only, NULL, NULL);
	} else {
		fprintf(stderr, "SIGNOFF_TEST_STORE_URL must be empty or postgresql://...\n");
		return 2;
	}
	return failed;
}
