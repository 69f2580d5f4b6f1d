/* so_yaml_parse on untrusted bytes: no crash, no leak, and a well-formed tree or an error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const so_yaml_node_t *n, int depth)
{
	if (!n || depth > SO_YAML_MAX_DEPTH + 1 || n->line < 1)
		abort();
	switch (n->kind) {
	case SO_YAML_SCALAR:
		if (!n->value)
			abort();
		break;
	case SO_YAML_MAP:
		for (size_t i = 0; i < n->n; i++) {
			if (!n->keys[i] || so_yaml_get(n, n->keys[i]) != n->items[i])
				abort(); /* keys are unique */
			check(n->items[i], depth + 1);
		}
		break;
	case SO_YAML_SEQ:
		for (size_t i = 0; i < n->n; i++)
			check(n->items[i], depth + 1);
		break;
	default:
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	so_yaml_node_t *root = NULL;
	char err[256] = "";
	int rc = so_yaml_parse((const char *)data, size, &root, err, sizeof(err));
	if (rc == SO_OK) {
		if (!root || root->kind != SO_YAML_MAP)
			abort();
		check(root, 0);
		so_yaml_free(root);
	} else if (root || (rc != SO_ECONFIG && rc != SO_ENOMEM) || !err[0]) {
		abort();
	}
	return 0;
}
