/* The YAML tree: shapes, line numbers, and what it refuses. */
#include "unit.h"

#include "common/yaml.h"

static so_yaml_node_t *
parse_ok(const char *text)
{
	so_yaml_node_t *root = NULL;
	char err[256] = "";
	int rc = so_yaml_parse(text, strlen(text), &root, err, sizeof(err));
	if (rc != SO_OK)
		fail_msg("parse failed (%d): %s", rc, err);
	return root;
}

static void
assert_refused(const char *text, const char *line_prefix, const char *what)
{
	so_yaml_node_t *root = NULL;
	char err[256] = "";
	int rc = so_yaml_parse(text, strlen(text), &root, err, sizeof(err));
	if (rc != SO_ECONFIG) {
		so_yaml_free(root);
		fail_msg("accepted (%d): %s", rc, text);
	}
	assert_null(root);
	assert_prefix(err, line_prefix);
	if (what)
		assert_contains(err, what);
}

static void
test_parse_builds_maps_sequences_and_scalars_with_lines(void **state)
{
	so_yaml_node_t *root = parse_ok("server:\n"
	                                "  listen: \"127.0.0.1:8700\"\n"
	                                "list:\n"
	                                "  - a\n"
	                                "  - { k: v }\n"
	                                "flow: [x, 'y']\n");
	assert_int_equal(root->kind, SO_YAML_MAP);
	assert_int_equal(root->n, 3);
	assert_int_equal(root->key_lines[0], 1);
	assert_int_equal(root->key_lines[2], 6);

	so_yaml_node_t *server = so_yaml_get(root, "server");
	assert_non_null(server);
	assert_int_equal(server->kind, SO_YAML_MAP);
	so_yaml_node_t *listen = so_yaml_get(server, "listen");
	assert_int_equal(listen->kind, SO_YAML_SCALAR);
	assert_string_equal(listen->value, "127.0.0.1:8700");
	assert_int_equal(listen->line, 2);
	assert_false(listen->plain);

	so_yaml_node_t *list = so_yaml_get(root, "list");
	assert_int_equal(list->kind, SO_YAML_SEQ);
	assert_int_equal(list->n, 2);
	assert_string_equal(list->items[0]->value, "a");
	assert_true(list->items[0]->plain);
	assert_int_equal(list->items[1]->kind, SO_YAML_MAP);
	assert_int_equal(list->items[1]->line, 5);
	assert_string_equal(so_yaml_get(list->items[1], "k")->value, "v");

	so_yaml_node_t *flow = so_yaml_get(root, "flow");
	assert_int_equal(flow->n, 2);
	assert_string_equal(flow->items[1]->value, "y");
	assert_false(flow->items[1]->plain);

	assert_null(so_yaml_get(root, "missing"));
	assert_null(so_yaml_get(listen, "x")); /* not a map */
	so_yaml_free(root);
}

static void
test_empty_document_is_an_empty_map(void **state)
{
	so_yaml_node_t *root = parse_ok("");
	assert_int_equal(root->kind, SO_YAML_MAP);
	assert_int_equal(root->n, 0);
	so_yaml_free(root);
	root = parse_ok("# only a comment\n");
	assert_int_equal(root->kind, SO_YAML_MAP);
	so_yaml_free(root);
}

static void
test_duplicate_key_is_refused_with_its_line(void **state)
{
	assert_refused("a: 1\nb: 2\na: 3\n", "line 3:", "'a'");
	assert_refused("s:\n  x: 1\n  x: 2\n", "line 3:", "'x'");
}

static void
test_aliases_are_refused(void **state)
{
	/* The anchor is refused first, on its own line. */
	assert_refused("a: &x 1\nb: *x\n", "line 1:", "alias");
	assert_refused("x: 0\nbase: &b { k: 1 }\nother:\n  <<: *b\n", "line 2:", "alias");
}

static void
test_anchors_are_refused(void **state)
{
	/* yaml.h: "Anchors and aliases are refused". An anchor alone is still an anchor. */
	assert_refused("a: &x 1\n", "line 1:", NULL);
}

static void
test_syntax_error_names_its_line(void **state)
{
	assert_refused("a: 1\nb: [1, 2\nc: 3\n", "line ", NULL);
	assert_refused("a: 1\n  b: 2\n", "line 2:", NULL);
}

static void
test_top_level_must_be_a_mapping(void **state)
{
	assert_refused("- a\n- b\n", "line 1:", "mapping");
	assert_refused("just text\n", "line 1:", "mapping");
}

static void
test_second_document_is_refused(void **state)
{
	assert_refused("a: 1\n---\nb: 2\n", "line 2:", "one document");
}

static void
test_nesting_over_the_limit_is_refused(void **state)
{
	char text[512];
	size_t n = 0;
	for (int i = 0; i < SO_YAML_MAX_DEPTH + 2; i++)
		text[n++] = '[';
	for (int i = 0; i < SO_YAML_MAX_DEPTH + 2; i++)
		text[n++] = ']';
	text[n] = '\0';
	char doc[600];
	snprintf(doc, sizeof(doc), "a: %s\n", text);
	assert_refused(doc, "line 1:", "deeper");
}

static void
test_nul_byte_in_a_value_is_refused(void **state)
{
	const char text[] = "a: \"x\\0y\"\n";
	so_yaml_node_t *root = NULL;
	char err[256] = "";
	assert_int_equal(so_yaml_parse(text, sizeof(text) - 1, &root, err, sizeof(err)), SO_ECONFIG);
	assert_null(root);
	assert_contains(err, "NUL");
}

static void
test_oversized_input_is_refused(void **state)
{
	size_t n = (size_t)SO_YAML_MAX_BYTES + 1;
	char *text = malloc(n);
	assert_non_null(text);
	memset(text, '#', n); /* one long comment: valid YAML, just too big */
	so_yaml_node_t *root = NULL;
	char err[256] = "";
	assert_int_equal(so_yaml_parse(text, n, &root, err, sizeof(err)), SO_ECONFIG);
	assert_null(root);
	assert_contains(err, "larger");
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_builds_maps_sequences_and_scalars_with_lines),
		cmocka_unit_test(test_empty_document_is_an_empty_map),
		cmocka_unit_test(test_duplicate_key_is_refused_with_its_line),
		cmocka_unit_test(test_aliases_are_refused),
		cmocka_unit_test(test_anchors_are_refused),
		cmocka_unit_test(test_syntax_error_names_its_line),
		cmocka_unit_test(test_top_level_must_be_a_mapping),
		cmocka_unit_test(test_second_document_is_refused),
		cmocka_unit_test(test_nesting_over_the_limit_is_refused),
		cmocka_unit_test(test_nul_byte_in_a_value_is_refused),
		cmocka_unit_test(test_oversized_input_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
