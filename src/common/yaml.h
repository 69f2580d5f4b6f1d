/**
 * A YAML document read into a small tree of maps, sequences and scalars, each node
 * remembering its line, so configuration errors can name where they are.
 * Anchors and aliases are refused; nesting and file size are bounded.
 * The tree owns all its memory; so_yaml_free() releases it.
 */
#ifndef SO_COMMON_YAML_H
#define SO_COMMON_YAML_H

#include <stddef.h>

enum so_yaml_kind { SO_YAML_SCALAR, SO_YAML_MAP, SO_YAML_SEQ };

typedef struct so_yaml_node {
	enum so_yaml_kind kind;
	int line;                    /**< 1-based */
	int column;                  /**< 1-based, where the node starts */
	char *value;                 /**< scalar text (SCALAR only) */
	int plain;                   /**< scalar was unquoted (so `null`/`~` mean null) */
	int block;                   /**< scalar was a block (| or >): its text starts a line below */
	size_t n;                    /**< items (SEQ) or members (MAP) */
	struct so_yaml_node **items; /**< SEQ items, or MAP values */
	char **keys;                 /**< MAP keys */
	int *key_lines;              /**< MAP key lines */
} so_yaml_node_t;

#define SO_YAML_MAX_DEPTH 32
#define SO_YAML_MAX_BYTES (4u << 20)

/**
 * Parse `len` bytes. On success `*out` is the root (an empty MAP for an empty document).
 * On failure returns SO_ECONFIG with "line N: what" in `err`.
 */
int so_yaml_parse(const char *data, size_t len, so_yaml_node_t **out, char *err, size_t errlen);
/** Read and parse a file (bounded by SO_YAML_MAX_BYTES). */
int so_yaml_load_file(const char *path, so_yaml_node_t **out, char *err, size_t errlen);
void so_yaml_free(so_yaml_node_t *n);
/** The value of `key` in MAP `m`, or NULL. */
so_yaml_node_t *so_yaml_get(const so_yaml_node_t *m, const char *key);

#endif
