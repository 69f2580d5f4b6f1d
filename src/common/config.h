/**
 * The typed configuration table (the shape of redis's config table): one row per key with
 * its type, default, bounds and help text. Parsing, `-t` checking, `--help-config` and the
 * docs are all driven from a table, so no key is read anywhere else.
 *
 * Values land in a caller-defined struct at each row's `offset`. STRING values are
 * malloc'd and owned by that struct (so_cfg_free() releases them); ENUM values are stored as
 * the int index of the choice; INT, DURATION (seconds) and BOOL as int64_t.
 */
#ifndef SO_COMMON_CONFIG_H
#define SO_COMMON_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/yaml.h"

enum so_cfg_type { SO_CFG_STRING, SO_CFG_INT, SO_CFG_DURATION, SO_CFG_BOOL, SO_CFG_ENUM, SO_CFG_CUSTOM };

/**
 * Parses one node into `target`; on failure writes "what is wrong" into err: either plain
 * text (the row's line is added), "line N: text" (line N of the same file), or "@text" for a
 * message that is already complete (an included file names itself).
 */
typedef int (*so_cfg_custom_fn)(const so_yaml_node_t *node, void *target, char *err, size_t errlen);
/** Releases what a custom parser stored. */
typedef void (*so_cfg_custom_free_fn)(void *target);

typedef struct so_cfg_key {
	const char *section; /**< top-level key ("server"); */
	const char *name;    /**< key inside it, or NULL when the row is the whole section */
	enum so_cfg_type type;
	size_t offset;       /**< where the value lives in the target struct */
	const char *def;     /**< default, as it would be written in YAML; NULL = none */
	int64_t min, max;    /**< bounds for INT and DURATION */
	const char *const *choices; /**< ENUM: NULL-terminated names */
	so_cfg_custom_fn custom;
	so_cfg_custom_free_fn custom_free;
	const char *help;
} so_cfg_key_t;

/**
 * Apply defaults, then the values in `root`. Unknown sections or keys, wrong types and
 * values out of bounds are errors: "FILE:LINE: message" in `err`, SO_ECONFIG returned.
 * The table ends with a row whose `section` is NULL.
 */
int so_cfg_load(const so_cfg_key_t *table, const so_yaml_node_t *root, void *target,
                const char *file, char *err, size_t errlen);
/** Free what so_cfg_load() stored in `target`. */
void so_cfg_free(const so_cfg_key_t *table, void *target);
/** Print every key with its type, default and help. */
void so_cfg_print_help(const so_cfg_key_t *table, FILE *out);

/** Helpers for custom parsers. Each writes a message without a line number into `err`. */
int so_cfg_scalar_string(const so_yaml_node_t *n, char **out, char *err, size_t errlen);
int so_cfg_scalar_int(const so_yaml_node_t *n, int64_t min, int64_t max, int64_t *out,
                      char *err, size_t errlen);
int so_cfg_scalar_bool(const so_yaml_node_t *n, int *out, char *err, size_t errlen);
/** A string or a list of strings into a NULL-terminated malloc'd array. */
int so_cfg_string_list(const so_yaml_node_t *n, char ***out, size_t *count, char *err, size_t errlen);
void so_cfg_free_list(char **list);

#endif
