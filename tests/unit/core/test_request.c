/* Request ids, and validation of a submission into a request. */
#include "core/fixture.h"

static const unsigned char rnd10[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};

static void
test_make_id_matches_ulid_layout_vector(void **state)
{
	/*
	 * Python (ULID layout, Crockford base32, 48-bit time then 80 random bits):
	 *   b32 = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'; t = 1795486200123;
	 *   v = int.from_bytes(bytes(range(1, 11)), 'big')
	 *   'req_' + 10 chars of t + 16 chars of v, most significant first
	 */
	char id[SO_ID_LEN + 1];
	so_core_make_id(INT64_C(1795486200123), rnd10, id);
	assert_string_equal(id, "req_01M85N2C9V041061050R3GG28A");
	static const unsigned char zero[10] = {0};
	so_core_make_id(0, zero, id);
	assert_string_equal(id, "req_00000000000000000000000000");
}

static void
test_make_id_uses_crockford_alphabet_and_fixed_length(void **state)
{
	static const unsigned char ff[10] = {0xff, 0xff, 0xff, 0xff, 0xff,
	                                     0xff, 0xff, 0xff, 0xff, 0xff};
	char id[SO_ID_LEN + 1];
	so_core_make_id(INT64_C(281474976710655), ff, id); /* 2^48 - 1 */
	assert_int_equal(strlen(id), SO_ID_LEN);
	assert_string_equal(id, "req_7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
	for (const char *p = id + 4; *p; p++)
		assert_non_null(strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ", *p));
}

static void
test_make_id_sorts_by_time(void **state)
{
	char a[SO_ID_LEN + 1], b[SO_ID_LEN + 1], c[SO_ID_LEN + 1];
	static const unsigned char ff[10] = {0xff, 0xff, 0xff, 0xff, 0xff,
	                                     0xff, 0xff, 0xff, 0xff, 0xff};
	static const unsigned char zero[10] = {0};
	so_core_make_id(NOW, ff, a);
	so_core_make_id(NOW + 1, zero, b);
	so_core_make_id(NOW + 1000, zero, c);
	assert_true(strcmp(a, b) < 0);
	assert_true(strcmp(b, c) < 0);
}

/* Submit `body` as `requester`; expect refusal with `code` (HTTP 400). */
static void
assert_refused(const char *requester, const char *body, const char *code)
{
	json_t *b = json_of(body);
	so_request_t *r = (so_request_t *)0x1;
	so_core_err_t err = {0};
	int rc = so_core_new_request(&fixture_dir, who(requester), b, NOW, rnd10, &r, &err);
	json_decref(b);
	if (rc == SO_OK) {
		so_request_free(r);
		fail_msg("accepted: %s", body);
	}
	assert_int_equal(rc, SO_EINVAL);
	assert_null(r);
	assert_int_equal(err.http, 400);
	assert_non_null(err.code);
	if (strcmp(err.code, code))
		fail_msg("%s gave %s (%s), not %s", body, err.code, err.message, code);
	assert_true(err.message[0] != '\0');
}

static void
test_missing_action_is_bad_request(void **state)
{
	assert_refused("alice", "{\"intent\":\"x\"}", "bad_request");
}

static void
test_action_not_an_object_is_bad_request(void **state)
{
	assert_refused("alice", "{\"action\":\"rm -rf /\"}", "bad_request");
	assert_refused("alice", "{\"action\":[\"shell\"]}", "bad_request");
	assert_refused("alice", "{\"action\":null}", "bad_request");
}

static void
test_missing_or_empty_kind_is_bad_request(void **state)
{
	assert_refused("alice", "{\"action\":{\"command\":[\"ls\"]}}", "bad_request");
	assert_refused("alice", "{\"action\":{\"kind\":\"\"}}", "bad_request");
	assert_refused("alice", "{\"action\":{\"kind\":7}}", "bad_request");
}

static void
test_command_must_be_a_list_of_strings(void **state)
{
	assert_refused("alice", "{\"action\":{\"kind\":\"shell\",\"command\":\"ls -l\"}}", "bad_request");
	assert_refused("alice", "{\"action\":{\"kind\":\"shell\",\"command\":[]}}", "bad_request");
	assert_refused("alice", "{\"action\":{\"kind\":\"shell\",\"command\":[\"ls\",1]}}",
	               "bad_request");
	assert_refused("alice", "{\"action\":{\"kind\":\"shell\",\"command\":[\"ls\",[\"-l\"]]}}",
	               "bad_request");
}

static void
test_typed_action_fields_are_checked(void **state)
{
	assert_refused("alice", "{\"action\":{\"kind\":\"mcp\",\"tool\":{}}}", "bad_request");
	assert_refused("alice", "{\"action\":{\"kind\":\"mcp\",\"arguments\":[1]}}", "bad_request");
	assert_refused("alice", "{\"action\":{\"kind\":\"x\",\"resource\":1}}", "bad_request");
	assert_refused("alice", "{\"action\":{\"kind\":\"x\",\"environment\":false}}", "bad_request");
}

static void
test_unknown_top_level_field_is_bad_request(void **state)
{
	assert_refused("alice", "{\"action\":{\"kind\":\"x\"},\"status\":\"approved\"}", "bad_request");
	assert_refused("alice", "{\"action\":{\"kind\":\"x\"},\"digest\":\"00\"}", "bad_request");
}

static void
test_body_must_be_an_object(void **state)
{
	json_t *b = json_array();
	so_request_t *r = NULL;
	so_core_err_t err = {0};
	assert_int_equal(so_core_new_request(&fixture_dir, who("alice"), b, NOW, rnd10, &r, &err),
	                 SO_EINVAL);
	assert_string_equal(err.code, "bad_request");
	json_decref(b);
}

static void
test_ttl_out_of_range_is_bad_request(void **state)
{
	assert_refused("alice", "{\"action\":{\"kind\":\"x\"},\"ttl_seconds\":0}", "bad_request");
	assert_refused("alice", "{\"action\":{\"kind\":\"x\"},\"ttl_seconds\":-5}", "bad_request");
	assert_refused("alice", "{\"action\":{\"kind\":\"x\"},\"ttl_seconds\":86401}", "bad_request");
	assert_refused("alice", "{\"action\":{\"kind\":\"x\"},\"ttl_seconds\":\"60\"}", "bad_request");
	assert_refused("alice", "{\"action\":{\"kind\":\"x\"},\"ttl_seconds\":1.5}", "bad_request");
}

static void
test_on_behalf_of_must_be_a_configured_human(void **state)
{
	assert_refused("ci", "{\"action\":{\"kind\":\"x\"},\"on_behalf_of\":\"mallory\"}", "bad_request");
	assert_refused("ci", "{\"action\":{\"kind\":\"x\"},\"on_behalf_of\":\"deploy-bot\"}",
	               "bad_request");
	assert_refused("ci", "{\"action\":{\"kind\":\"x\"},\"on_behalf_of\":42}", "bad_request");
}

static void
test_wrong_types_of_optional_fields_are_bad_request(void **state)
{
	assert_refused("alice", "{\"action\":{\"kind\":\"x\"},\"intent\":[\"why\"]}", "bad_request");
	assert_refused("alice", "{\"action\":{\"kind\":\"x\"},\"context\":\"text\"}", "bad_request");
	assert_refused("alice", "{\"action\":{\"kind\":\"x\"},\"idempotency_key\":1}", "bad_request");
}

static void
test_long_idempotency_key_is_too_long(void **state)
{
	char body[512];
	snprintf(body, sizeof(body), "{\"action\":{\"kind\":\"x\"},\"idempotency_key\":\"%0201d\"}", 0);
	assert_refused("alice", body, "too_long");
	snprintf(body, sizeof(body), "{\"action\":{\"kind\":\"x\"},\"idempotency_key\":\"%0200d\"}", 0);
	json_t *b = json_of(body);
	so_request_t *r = NULL;
	so_core_err_t err = {0};
	assert_int_equal(so_core_new_request(&fixture_dir, who("alice"), b, NOW, rnd10, &r, &err),
	                 SO_OK);
	assert_int_equal(strlen(r->idempotency_key), 200);
	so_request_free(r);
	json_decref(b);
}

static void
test_new_request_fills_id_digest_times_and_copies(void **state)
{
	json_t *b = json_of(SHELL_BODY);
	so_request_t *r = NULL;
	so_core_err_t err = {0};
	assert_int_equal(so_core_new_request(&fixture_dir, who("alice"), b, NOW, rnd10, &r, &err),
	                 SO_OK);
	char id[SO_ID_LEN + 1];
	so_core_make_id(NOW, rnd10, id);
	assert_string_equal(r->id, id);
	assert_int_equal(r->status, SO_ST_PENDING);
	assert_string_equal(r->requester, "alice");
	assert_null(r->on_behalf_of); /* a human acts for herself */
	assert_null(r->owner);
	assert_string_equal(r->intent, "restart after INC-4411");
	assert_int_equal(r->created_at, NOW);
	/* Same vector as test_json: sha256 of the canonical JSON of the action (Python hashlib). */
	assert_string_equal(r->digest,
	                    "878d1277dba27291616c9a4e98225455e611e872a20b99c509081d28924a8507");
	/* The request owns copies: changing the body afterwards does not change the request. */
	json_object_set_new(json_object_get(b, "action"), "kind", json_string("sql"));
	assert_string_equal(json_string_value(json_object_get(r->action, "kind")), "shell");
	char hex[65];
	assert_int_equal(so_json_digest(r->action, hex), SO_OK);
	assert_string_equal(hex, r->digest);
	assert_true(json_is_object(r->context));
	so_request_free(r);
	json_decref(b);
}

static void
test_extra_action_fields_are_kept_in_the_digest(void **state)
{
	json_t *a = json_of("{\"action\":{\"kind\":\"x\",\"extra\":1}}");
	json_t *b = json_of("{\"action\":{\"kind\":\"x\",\"extra\":2}}");
	so_request_t *ra = NULL, *rb = NULL;
	so_core_err_t err = {0};
	assert_int_equal(so_core_new_request(&fixture_dir, who("alice"), a, NOW, rnd10, &ra, &err), SO_OK);
	assert_int_equal(so_core_new_request(&fixture_dir, who("alice"), b, NOW, rnd10, &rb, &err), SO_OK);
	assert_string_not_equal(ra->digest, rb->digest);
	assert_int_equal(json_integer_value(json_object_get(ra->action, "extra")), 1);
	so_request_free(ra);
	so_request_free(rb);
	json_decref(a);
	json_decref(b);
}

static void
test_agent_with_owner_acts_on_behalf_of_owner_by_default(void **state)
{
	json_t *b = json_of("{\"action\":{\"kind\":\"x\"}}");
	so_request_t *r = NULL;
	so_core_err_t err = {0};
	assert_int_equal(so_core_new_request(&fixture_dir, who("deploy-bot"), b, NOW, rnd10, &r, &err),
	                 SO_OK);
	assert_string_equal(r->on_behalf_of, "alice");
	assert_string_equal(r->owner, "alice");
	so_request_free(r);
	json_decref(b);
}

static void
test_explicit_on_behalf_of_wins_and_owner_is_kept(void **state)
{
	json_t *b = json_of("{\"action\":{\"kind\":\"x\"},\"on_behalf_of\":\"carol\"}");
	so_request_t *r = NULL;
	so_core_err_t err = {0};
	assert_int_equal(so_core_new_request(&fixture_dir, who("deploy-bot"), b, NOW, rnd10, &r, &err),
	                 SO_OK);
	assert_string_equal(r->on_behalf_of, "carol");
	assert_string_equal(r->owner, "alice");
	so_request_free(r);
	json_decref(b);
}

static void
test_requested_ttl_is_read_from_the_body(void **state)
{
	json_t *b = json_of("{\"action\":{\"kind\":\"x\"},\"ttl_seconds\":120}");
	assert_int_equal(so_core_requested_ttl(b), 120);
	json_decref(b);
	b = json_of("{\"action\":{\"kind\":\"x\"}}");
	assert_int_equal(so_core_requested_ttl(b), 0);
	json_decref(b);
}

static void
test_stored_doc_round_trips(void **state)
{
	so_requirement_t reqs[] = {{.group = "sre", .count = 2}};
	so_policy_t pol;
	policy_init(&pol, SO_OUT_REVIEW, reqs, 1, 1);
	so_request_t *r = submit("deploy-bot", SHELL_BODY, &pol);
	json_t *doc = so_request_to_doc(r);
	assert_non_null(doc);
	so_request_t *back = NULL;
	assert_int_equal(so_request_from_doc(doc, &back), SO_OK);
	assert_string_equal(back->id, r->id);
	assert_int_equal(back->status, r->status);
	assert_string_equal(back->digest, r->digest);
	assert_string_equal(back->on_behalf_of, "alice");
	assert_string_equal(back->owner, "alice");
	assert_true(json_equal(back->action, r->action));
	assert_int_equal(back->expires_at, NOW + 1800 * 1000);
	assert_int_equal(back->decision.outcome, SO_OUT_REVIEW);
	assert_int_equal(back->decision.nreqs, 1);
	assert_string_equal(back->decision.reqs[0].group, "sre");
	assert_int_equal(back->decision.reqs[0].count, 2);
	assert_int_equal(back->decision.owner_may_approve, 1);
	assert_int_equal(back->decision.grant_ttl, 600);
	assert_string_equal(back->decision.policy_version, pol.version);
	json_decref(doc);
	so_request_free(back);
	so_request_free(r);
}

static void
test_from_doc_refuses_malformed_documents(void **state)
{
	static const char *const bad[] = {
		"{}",
		"{\"id\":\"req_1\",\"status\":\"weird\",\"digest\":\"" "0000000000000000000000000000000000000000000000000000000000000000" "\",\"requester\":\"a\",\"action\":{},\"decision\":{\"outcome\":\"allow\"}}",
		"{\"id\":\"req_1\",\"status\":\"pending\",\"digest\":\"00\",\"requester\":\"a\",\"action\":{},\"decision\":{\"outcome\":\"allow\"}}",
		"{\"id\":\"req_1\",\"status\":\"pending\",\"digest\":\"" "0000000000000000000000000000000000000000000000000000000000000000" "\",\"requester\":\"a\",\"action\":{}}",
		"{\"id\":\"req_0123456789012345678901234567890\",\"status\":\"pending\",\"digest\":\"" "0000000000000000000000000000000000000000000000000000000000000000" "\",\"requester\":\"a\",\"action\":{},\"decision\":{\"outcome\":\"allow\"}}",
		NULL,
	};
	for (int i = 0; bad[i]; i++) {
		json_t *doc = json_of(bad[i]);
		so_request_t *r = NULL;
		int rc = so_request_from_doc(doc, &r);
		if (rc == SO_OK) {
			so_request_free(r);
			fail_msg("accepted doc #%d", i);
		}
		assert_int_equal(rc, SO_EINVAL);
		json_decref(doc);
	}
}

static void
test_from_doc_refuses_non_string_principals_without_crashing(void **state)
{
	/*
	 * BUG (src/core/request.c, decision_from_doc): each item of
	 * decision.requirements[].principals goes through strdup(json_string_value(item)), so a
	 * stored document whose list holds a non-string (a corrupted or hand-edited row) makes
	 * strdup(NULL) crash the daemon when it loads the request, instead of SO_EINVAL.
	 * Kept last in this file: under ASan the crash ends the program.
	 */
	json_t *doc = json_of("{\"id\":\"req_1\",\"status\":\"pending\",\"digest\":\""
	                      "0000000000000000000000000000000000000000000000000000000000000000"
	                      "\",\"requester\":\"a\",\"action\":{\"kind\":\"x\"},"
	                      "\"decision\":{\"outcome\":\"review\",\"requirements\":"
	                      "[{\"principals\":[\"bob\",1],\"count\":1}]}}");
	so_request_t *r = NULL;
	int rc = so_request_from_doc(doc, &r);
	so_request_free(r);
	json_decref(doc);
	assert_int_equal(rc, SO_EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_make_id_matches_ulid_layout_vector),
		cmocka_unit_test(test_make_id_uses_crockford_alphabet_and_fixed_length),
		cmocka_unit_test(test_make_id_sorts_by_time),
		cmocka_unit_test(test_missing_action_is_bad_request),
		cmocka_unit_test(test_action_not_an_object_is_bad_request),
		cmocka_unit_test(test_missing_or_empty_kind_is_bad_request),
		cmocka_unit_test(test_command_must_be_a_list_of_strings),
		cmocka_unit_test(test_typed_action_fields_are_checked),
		cmocka_unit_test(test_unknown_top_level_field_is_bad_request),
		cmocka_unit_test(test_body_must_be_an_object),
		cmocka_unit_test(test_ttl_out_of_range_is_bad_request),
		cmocka_unit_test(test_on_behalf_of_must_be_a_configured_human),
		cmocka_unit_test(test_wrong_types_of_optional_fields_are_bad_request),
		cmocka_unit_test(test_long_idempotency_key_is_too_long),
		cmocka_unit_test(test_new_request_fills_id_digest_times_and_copies),
		cmocka_unit_test(test_extra_action_fields_are_kept_in_the_digest),
		cmocka_unit_test(test_agent_with_owner_acts_on_behalf_of_owner_by_default),
		cmocka_unit_test(test_explicit_on_behalf_of_wins_and_owner_is_kept),
		cmocka_unit_test(test_requested_ttl_is_read_from_the_body),
		cmocka_unit_test(test_stored_doc_round_trips),
		cmocka_unit_test(test_from_doc_refuses_malformed_documents),
		cmocka_unit_test(test_from_doc_refuses_non_string_principals_without_crashing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
