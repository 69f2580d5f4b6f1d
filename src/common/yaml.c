#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "common/error.h"
#include "common/yaml.h"

struct yaml_reader {
	yaml_parser_t parser;
	char *err;
	size_t errlen;
};

void
so_yaml_free(so_yaml_node_t *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++) {
		so_yaml_free(n->items[i]);
		if (n->keys)
			free(n->keys[i]);
	}
	free(n->items);
	free(n->keys);
	free(n->key_lines);
	free(n->value);
	free(n);
}

so_yaml_node_t *
so_yaml_get(const so_yaml_node_t *m, const char *key)
{
	if (!m || m->kind != SO_YAML_MAP)
		return NULL;
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->keys[i], key) == 0)
			return m->items[i];
	return NULL;
}

static int
next_event(struct yaml_reader *r, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&r->parser, ev)) {
		snprintf(r->err, r->errlen, "line %zu: %s", r->parser.problem_mark.line + 1,
		         r->parser.problem ? r->parser.problem : "syntax error");
		return SO_ECONFIG;
	}
	return SO_OK;
}

static int
push_child(so_yaml_node_t *parent, so_yaml_node_t *child, char *key, int key_line)
{
	size_t n = parent->n + 1;
	so_yaml_node_t **items = realloc(parent->items, n * sizeof(*items));
	if (!items)
		return SO_ENOMEM;
	parent->items = items;
	if (parent->kind == SO_YAML_MAP) {
		char **keys = realloc(parent->keys, n * sizeof(*keys));
		if (!keys)
			return SO_ENOMEM;
		parent->keys = keys;
		int *lines = realloc(parent->key_lines, n * sizeof(*lines));
		if (!lines)
			return SO_ENOMEM;
		parent->key_lines = lines;
		keys[parent->n] = key;
		lines[parent->n] = key_line;
	}
	items[parent->n] = child;
	parent->n = n;
	return SO_OK;
}

static int read_node(struct yaml_reader *r, yaml_event_t *first, int depth, so_yaml_node_t **out);

/* Read the children of a MAP or SEQ whose start event was consumed. */
static int
read_children(struct yaml_reader *r, so_yaml_node_t *node, int depth)
{
	yaml_event_t ev;
	int rc;
	for (;;) {
		if ((rc = next_event(r, &ev)))
			return rc;
		if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			return SO_OK;
		}
		char *key = NULL;
		int key_line = 0;
		if (node->kind == SO_YAML_MAP) {
			if (ev.type != YAML_SCALAR_EVENT) {
				snprintf(r->err, r->errlen, "line %zu: mapping keys must be plain text",
				         ev.start_mark.line + 1);
				yaml_event_delete(&ev);
				return SO_ECONFIG;
			}
			key = strndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
			key_line = (int)ev.start_mark.line + 1;
			yaml_event_delete(&ev);
			if (!key)
				return SO_ENOMEM;
			if (so_yaml_get(node, key)) {
				snprintf(r->err, r->errlen, "line %d: key '%s' appears twice", key_line, key);
				free(key);
				return SO_ECONFIG;
			}
			if ((rc = next_event(r, &ev))) {
				free(key);
				return rc;
			}
		}
		so_yaml_node_t *child = NULL;
		rc = read_node(r, &ev, depth + 1, &child);
		yaml_event_delete(&ev);
		if (rc == SO_OK)
			rc = push_child(node, child, key, key_line);
		if (rc) {
			free(key);
			so_yaml_free(child);
			return rc;
		}
	}
}

static int
read_node(struct yaml_reader *r, yaml_event_t *ev, int depth, so_yaml_node_t **out)
{
	int line = (int)ev->start_mark.line + 1;
	if (depth > SO_YAML_MAX_DEPTH) {
		snprintf(r->err, r->errlen, "line %d: nested deeper than %d levels", line,
		         SO_YAML_MAX_DEPTH);
		return SO_ECONFIG;
	}
	const yaml_char_t *anchor = ev->type == YAML_SCALAR_EVENT ? ev->data.scalar.anchor
	                            : ev->type == YAML_MAPPING_START_EVENT
	                                ? ev->data.mapping_start.anchor
	                            : ev->type == YAML_SEQUENCE_START_EVENT
	                                ? ev->data.sequence_start.anchor
	                                : NULL;
	if (anchor) {
		snprintf(r->err, r->errlen, "line %d: anchors and aliases are not supported", line);
		return SO_ECONFIG;
	}
	so_yaml_node_t *node = calloc(1, sizeof(*node));
	if (!node)
		return SO_ENOMEM;
	node->line = line;
	node->column = (int)ev->start_mark.column + 1;
	int rc = SO_OK;
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		node->kind = SO_YAML_SCALAR;
		node->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		node->block = ev->data.scalar.style == YAML_LITERAL_SCALAR_STYLE ||
		              ev->data.scalar.style == YAML_FOLDED_SCALAR_STYLE;
		node->value = strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
		if (!node->value)
			rc = SO_ENOMEM;
		else if (strlen(node->value) != ev->data.scalar.length) {
			snprintf(r->err, r->errlen, "line %d: NUL byte in a value", line);
			rc = SO_ECONFIG;
		}
		break;
	case YAML_MAPPING_START_EVENT:
		node->kind = SO_YAML_MAP;
		rc = read_children(r, node, depth);
		break;
	case YAML_SEQUENCE_START_EVENT:
		node->kind = SO_YAML_SEQ;
		rc = read_children(r, node, depth);
		break;
	case YAML_ALIAS_EVENT:
		snprintf(r->err, r->errlen, "line %d: aliases are not supported", line);
		rc = SO_ECONFIG;
		break;
	default:
		snprintf(r->err, r->errlen, "line %d: unexpected YAML structure", line);
		rc = SO_ECONFIG;
	}
	if (rc) {
		so_yaml_free(node);
		return rc;
	}
	*out = node;
	return SO_OK;
}

int
so_yaml_parse(const char *data, size_t len, so_yaml_node_t **out, char *err, size_t errlen)
{
	struct yaml_reader r = {.err = err, .errlen = errlen};
	yaml_event_t ev;
	int rc;
	so_yaml_node_t *root = NULL;

	*out = NULL;
	if (len > SO_YAML_MAX_BYTES) {
		snprintf(err, errlen, "file is larger than %u bytes", SO_YAML_MAX_BYTES);
		return SO_ECONFIG;
	}
	if (!yaml_parser_initialize(&r.parser))
		return SO_ENOMEM;
	yaml_parser_set_input_string(&r.parser, (const unsigned char *)data, len);
	/* stream start, then document start or stream end */
	for (;;) {
		if ((rc = next_event(&r, &ev)))
			goto out;
		yaml_event_type_t t = ev.type;
		if (t == YAML_STREAM_START_EVENT || t == YAML_DOCUMENT_START_EVENT) {
			yaml_event_delete(&ev);
			continue;
		}
		if (t == YAML_STREAM_END_EVENT || t == YAML_DOCUMENT_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		if (root) {
			yaml_event_delete(&ev);
			snprintf(err, errlen, "line %zu: only one document is allowed",
			         ev.start_mark.line + 1);
			rc = SO_ECONFIG;
			goto out;
		}
		rc = read_node(&r, &ev, 0, &root);
		yaml_event_delete(&ev);
		if (rc)
			goto out;
	}
	/* A second document after the first is refused. */
	if ((rc = next_event(&r, &ev)))
		goto out;
	if (ev.type == YAML_DOCUMENT_START_EVENT) {
		snprintf(err, errlen, "line %zu: only one document is allowed", ev.start_mark.line + 1);
		rc = SO_ECONFIG;
	}
	yaml_event_delete(&ev);
	if (rc)
		goto out;
	if (!root) {
		root = calloc(1, sizeof(*root));
		if (!root) {
			rc = SO_ENOMEM;
			goto out;
		}
		root->kind = SO_YAML_MAP;
		root->line = 1;
	}
	if (root->kind != SO_YAML_MAP) {
		snprintf(err, errlen, "line %d: the top level must be a mapping", root->line);
		rc = SO_ECONFIG;
		goto out;
	}
	*out = root;
	root = NULL;
out:
	so_yaml_free(root);
	yaml_parser_delete(&r.parser);
	return rc;
}

int
so_yaml_load_file(const char *path, so_yaml_node_t **out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "cannot open: %s", strerror(errno));
		return SO_EIO;
	}
	char *data = malloc(SO_YAML_MAX_BYTES + 1);
	if (!data) {
		fclose(f);
		return SO_ENOMEM;
	}
	size_t n = fread(data, 1, SO_YAML_MAX_BYTES + 1, f);
	int rc;
	if (ferror(f)) {
		snprintf(err, errlen, "cannot read: %s", strerror(errno));
		rc = SO_EIO;
	} else {
		rc = so_yaml_parse(data, n, out, err, errlen);
	}
	free(data);
	fclose(f);
	return rc;
}
