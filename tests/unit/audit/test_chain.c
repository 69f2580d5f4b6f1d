/* The audit hash chain: a known vector, and verification that catches every kind of edit. */
#include "unit.h"

#include "audit/audit.h"

#define ZEROS "0000000000000000000000000000000000000000000000000000000000000000"

static json_t *
event_body(int64_t seq, const char *type, const char *request_id, const char *actor, json_t *data)
{
	json_t *ev = json_pack("{s:I, s:I, s:s, s:s?, s:s?, s:o}", "seq", (json_int_t)seq, "at",
	                       (json_int_t)(1764000000000 + seq * 1000), "type", type, "request_id",
	                       request_id, "actor", actor, "data", data);
	assert_non_null(ev);
	return ev;
}

/* A chain of `n` events as GET /v1/audit returns them. */
static json_t *
make_chain(int n)
{
	json_t *list = json_array();
	char prev[65] = ZEROS;
	for (int i = 1; i <= n; i++) {
		char rid[32];
		snprintf(rid, sizeof(rid), "req_%d", i);
		json_t *ev = event_body(i, i % 2 ? "request.created" : "request.reviewed", rid,
		                        i % 3 ? "bob" : NULL, json_pack("{s:i}", "n", i));
		char hash[65];
		assert_int_equal(so_audit_hash(prev, ev, hash), SO_OK);
		json_object_set_new(ev, "prev_hash", json_string(prev));
		json_object_set_new(ev, "hash", json_string(hash));
		json_array_append_new(list, ev);
		memcpy(prev, hash, 65);
	}
	return list;
}

static void
assert_bad_at(json_t *events, int64_t want_bad)
{
	int64_t seq = 0, bad = -1;
	char prev[65] = ZEROS;
	int rc = so_audit_verify_events(events, &seq, prev, &bad);
	if (rc == SO_OK)
		fail_msg("a tampered chain verified");
	assert_int_equal(rc, SO_EINVAL);
	assert_int_equal(bad, want_bad);
}

static void
test_hash_matches_python_vector(void **state)
{
	/*
	 * Python:
	 *   ev = {"seq":1,"at":1764000000000,"type":"request.created",
	 *         "request_id":"req_01JDZ6W3K2T8QXR5V0M4N7B9CA","actor":"deploy-bot",
	 *         "data":{"status":"pending"}}
	 *   c = json.dumps(ev, sort_keys=True, separators=(',',':'), ensure_ascii=False)
	 *   hashlib.sha256(bytes(32) + c.encode()).hexdigest()
	 */
	json_t *ev = json_pack("{s:i, s:I, s:s, s:s, s:s, s:{s:s}}", "seq", 1, "at",
	                       (json_int_t)1764000000000, "type", "request.created", "request_id",
	                       "req_01JDZ6W3K2T8QXR5V0M4N7B9CA", "actor", "deploy-bot", "data",
	                       "status", "pending");
	char out[65];
	assert_int_equal(so_audit_hash(ZEROS, ev, out), SO_OK);
	assert_string_equal(out, "8f26beee04f2b765ea8f766455f55316e3700b8ffae4920782b6433a538297e7");
	json_decref(ev);
}

static void
test_hash_depends_on_prev_hash(void **state)
{
	json_t *ev = event_body(1, "x", NULL, NULL, json_object());
	char a[65], b[65];
	assert_int_equal(so_audit_hash(ZEROS, ev, a), SO_OK);
	assert_int_equal(so_audit_hash("1000000000000000000000000000000000000000000000000000000000000000",
	                               ev, b),
	                 SO_OK);
	assert_string_not_equal(a, b);
	json_decref(ev);
}

static void
test_hash_refuses_a_prev_hash_that_is_not_hex(void **state)
{
	json_t *ev = event_body(1, "x", NULL, NULL, json_object());
	char out[65];
	assert_int_equal(so_audit_hash("zz00000000000000000000000000000000000000000000000000000000000000",
	                               ev, out),
	                 SO_EINVAL);
	json_decref(ev);
}

static void
test_intact_chain_verifies_and_advances(void **state)
{
	json_t *events = make_chain(5);
	int64_t seq = 0, bad = -1;
	char prev[65] = ZEROS;
	assert_int_equal(so_audit_verify_events(events, &seq, prev, &bad), SO_OK);
	assert_int_equal(seq, 5);
	assert_string_equal(prev, json_string_value(json_object_get(json_array_get(events, 4), "hash")));
	assert_int_equal(bad, -1);
	json_decref(events);
}

static void
test_verify_continues_from_a_checkpoint(void **state)
{
	json_t *events = make_chain(5);
	json_t *tail = json_array();
	for (size_t i = 2; i < 5; i++)
		json_array_append(tail, json_array_get(events, i));
	int64_t seq = 2, bad = -1;
	char prev[65];
	memcpy(prev, json_string_value(json_object_get(json_array_get(events, 1), "hash")), 65);
	assert_int_equal(so_audit_verify_events(tail, &seq, prev, &bad), SO_OK);
	assert_int_equal(seq, 5);
	/* the same tail against the wrong head fails at its first event */
	seq = 2;
	memcpy(prev, ZEROS, 65);
	assert_int_equal(so_audit_verify_events(tail, &seq, prev, &bad), SO_EINVAL);
	assert_int_equal(bad, 3);
	json_decref(tail);
	json_decref(events);
}

static void
test_verify_detects_a_modified_event(void **state)
{
	json_t *events = make_chain(5);
	json_object_set_new(json_object_get(json_array_get(events, 2), "data"), "n", json_integer(99));
	assert_bad_at(events, 3);
	json_decref(events);

	events = make_chain(5);
	json_object_set_new(json_array_get(events, 1), "actor", json_string("mallory"));
	assert_bad_at(events, 2);
	json_decref(events);

	events = make_chain(5);
	json_object_set_new(json_array_get(events, 3), "at", json_integer(1));
	assert_bad_at(events, 4);
	json_decref(events);
}

static void
test_verify_detects_an_added_field(void **state)
{
	json_t *events = make_chain(3);
	json_object_set_new(json_array_get(events, 1), "approved", json_true());
	assert_bad_at(events, 2);
	json_decref(events);
}

static void
test_verify_detects_a_rewritten_hash(void **state)
{
	json_t *events = make_chain(4);
	json_object_set_new(json_array_get(events, 1), "hash", json_string(ZEROS));
	assert_bad_at(events, 2);
	json_decref(events);
}

static void
test_verify_detects_a_deleted_event(void **state)
{
	json_t *events = make_chain(5);
	json_array_remove(events, 1); /* seq 2 */
	assert_bad_at(events, 2);
	json_decref(events);

	events = make_chain(5);
	json_array_remove(events, 0); /* seq 1: the chain must start at its head */
	assert_bad_at(events, 1);
	json_decref(events);
}

static void
test_verify_detects_reordered_events(void **state)
{
	json_t *events = make_chain(5);
	json_t *two = json_incref(json_array_get(events, 1));
	json_t *three = json_incref(json_array_get(events, 2));
	json_array_set_new(events, 1, three);
	json_array_set_new(events, 2, two);
	assert_bad_at(events, 2);
	json_decref(events);
}

static void
test_verify_detects_an_inserted_event(void **state)
{
	/* A duplicate of event 1 inserted after it. */
	json_t *events = make_chain(4);
	json_array_insert(events, 1, json_array_get(events, 0));
	assert_bad_at(events, 2);
	json_decref(events);

	/*
	 * A forged event 2, correctly chained onto event 1: everything after it no longer fits,
	 * so the original event 2 (now third) is where the chain breaks.
	 */
	events = make_chain(4);
	const char *h1 = json_string_value(json_object_get(json_array_get(events, 0), "hash"));
	json_t *forged = event_body(2, "request.reviewed", "req_1", "mallory", json_object());
	char hash[65];
	assert_int_equal(so_audit_hash(h1, forged, hash), SO_OK);
	json_object_set_new(forged, "prev_hash", json_string(h1));
	json_object_set_new(forged, "hash", json_string(hash));
	json_array_insert_new(events, 1, forged);
	assert_bad_at(events, 3);
	json_decref(events);
}

static void
test_verify_detects_missing_hash_fields(void **state)
{
	json_t *events = make_chain(3);
	json_object_del(json_array_get(events, 2), "prev_hash");
	assert_bad_at(events, 3);
	json_decref(events);
	events = make_chain(3);
	json_object_del(json_array_get(events, 0), "hash");
	assert_bad_at(events, 1);
	json_decref(events);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_matches_python_vector),
		cmocka_unit_test(test_hash_depends_on_prev_hash),
		cmocka_unit_test(test_hash_refuses_a_prev_hash_that_is_not_hex),
		cmocka_unit_test(test_intact_chain_verifies_and_advances),
		cmocka_unit_test(test_verify_continues_from_a_checkpoint),
		cmocka_unit_test(test_verify_detects_a_modified_event),
		cmocka_unit_test(test_verify_detects_an_added_field),
		cmocka_unit_test(test_verify_detects_a_rewritten_hash),
		cmocka_unit_test(test_verify_detects_a_deleted_event),
		cmocka_unit_test(test_verify_detects_reordered_events),
		cmocka_unit_test(test_verify_detects_an_inserted_event),
		cmocka_unit_test(test_verify_detects_missing_hash_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
