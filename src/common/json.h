/**
 * JSON helpers on top of jansson: bounded parsing and canonical encoding.
 *
 * Canonical JSON (what the action digest and the audit chain hash) is:
 * object keys sorted by their UTF-8 bytes, no whitespace, strings as UTF-8 with only
 * '"', '\\' and control characters (< 0x20) escaped (\b \f \n \r \t, else \u00XX lowercase),
 * integers in decimal, reals as C's "%.17g" prints them (0.1 is 0.10000000000000001; zero is 0),
 * true/false/null.
 * Reals that are not finite cannot occur (jansson refuses them).
 */
#ifndef SO_COMMON_JSON_H
#define SO_COMMON_JSON_H

#include <stddef.h>
#include <jansson.h>

#include "common/buf.h"

/** Bounds applied when parsing untrusted JSON. */
typedef struct so_json_limits {
	size_t max_depth;  /**< deepest nesting of arrays and objects */
	size_t max_string; /**< longest string or object key, in bytes */
	size_t max_items;  /**< most elements of one array or members of one object */
} so_json_limits_t;

/**
 * Parse `len` bytes of untrusted JSON, enforcing `lim`. The nesting depth is checked on the
 * raw bytes before jansson sees them, so deep input costs no recursion.
 * On success `*out` owns a new reference (caller json_decref()s it) and SO_OK is returned.
 * On failure returns SO_EBADJSON, SO_ETOODEEP or SO_ETOOLONG and writes a message to `err`.
 */
int so_json_parse(const char *data, size_t len, const so_json_limits_t *lim, json_t **out,
                  char *err, size_t errlen);

/** Append the canonical encoding of `v` to `b`. Returns SO_OK or SO_ENOMEM. */
int so_json_canonical(const json_t *v, so_buf_t *b);

/** Append the canonical encoding of the string s[0, n) (quotes included) to `b`. */
int so_json_canonical_string(const char *s, size_t n, so_buf_t *b);

/** Canonical encoding as a new NUL-terminated string the caller free()s; NULL on ENOMEM. */
char *so_json_canonical_str(const json_t *v);

/** SHA-256 of the canonical encoding of `v`, as 64 lowercase hex chars + NUL in `hex`. */
int so_json_digest(const json_t *v, char hex[65]);

/** The string member `key` of `o`, or `fallback` when it is absent or not a string. */
const char *so_json_str(const json_t *o, const char *key, const char *fallback);

/**
 * Append an argv array (an action's `command`) to `b` as one line: the elements joined by
 * spaces, "?" for an element that is not a string. No quoting: for people to read.
 */
void so_json_join_argv(const json_t *argv, so_buf_t *b);

/**
 * Length of the longest prefix of `s[0..n)` that is valid UTF-8 (no overlong forms, no
 * surrogates): where to cut text that was cut bytewise before it goes into JSON.
 */
size_t so_utf8_prefix(const char *s, size_t n);

#endif
