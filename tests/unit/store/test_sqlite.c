/*
 * The SQLite store on a temporary file: requests with their reviews, idempotency, the audit
 * table, tokens, and persistence across reopen.
 */
#include <stdio.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/fixture.h"

#include "audit/audit.h"
#include "store/store.h"

/* The schema version this signoffd writes (src/store/sqlite.c migrations). */
#define SCHEMA_VERSION 7
#define ZEROS "0000000000000000000000000000000000000000000000000000000000000000"

struct fx {
	char dir[64];
	char path[128];
	char url[160];
	so_store_t *s;
	so_policy_t pol;
};

static so_requirement_t sre2[] = {{.group = "sre", .count = 2}};

static void
remove_db(struct fx *f)
{
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal", NULL};
	for (int i = 0; suffixes[i]; i++) {
		char p[160];
		snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
		unlink(p);
	}
	rmdir(f->dir);
}

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

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/so-store-test.XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/signoff.db", f->dir);
	snprintf(f->url, sizeof(f->url), "sqlite:%s", f->path);
	policy_init(&f->pol, SO_OUT_REVIEW, sre2, 1, 0);
	f->s = open_store(f);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	so_store_close(f->s);
	remove_db(f);
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

static int
user_version(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int v = -1;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
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
	assert_int_equal(user_version(f->path), SCHEMA_VERSION);
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
	assert_int_equal(so_store_open("no-scheme", &s, err, sizeof(err)), SO_ECONFIG);
	assert_int_equal(so_store_open("sqlite:/nonexistent-dir/x/y.db", &s, err, sizeof(err)),
	                 SO_ESTORE);
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
	assert_int_equal(user_version(f->path), SCHEMA_VERSION);

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
	assert_int_equal(user_version(f->path), SCHEMA_VERSION);
	so_request_free(r);
}

static void
test_newer_schema_is_refused(void **state)
{
	struct fx *f = *state;
	so_store_close(f->s);
	f->s = NULL;
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	so_store_t *s = NULL;
	char err[256] = "";
	assert_int_equal(so_store_open(f->url, &s, err, sizeof(err)), SO_ESTORE);
	assert_contains(err, "newer");
	/* reset so teardown can close a store */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	char pragma[64];
	snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", SCHEMA_VERSION);
	assert_int_equal(sqlite3_exec(db, pragma, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
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

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_open_creates_the_schema),
		T(test_open_refuses_unknown_schemes),
		T(test_request_round_trip_keeps_fields_and_reviews),
		T(test_request_update_adds_new_reviews_and_state),
		T(test_unknown_request_is_not_found),
		T(test_same_id_twice_is_refused),
		T(test_second_review_by_the_same_reviewer_is_refused_by_the_store),
		T(test_rollback_undoes_a_change),
		T(test_idempotency_key_lookup),
		T(test_list_due_and_counts),
		T(test_audit_head_insert_list_and_verify),
		T(test_tokens_insert_and_lookup),
		T(test_baselines_put_replace_and_get),
		T(test_reopen_keeps_everything_without_rerunning_migrations),
		T(test_newer_schema_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
