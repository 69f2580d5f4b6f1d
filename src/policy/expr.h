/**
 * The policy expression language: a documented subset of CEL (docs/policy.md).
 *
 * so_expr_compile() lexes, parses and type-checks an expression once, at load, and compiles
 * `matches` patterns with PCRE2. so_expr_eval() then decides it against one request without
 * allocating (PCRE2's matcher aside, which runs under match, depth and heap limits) and in
 * bounded time: the only loops are `in` and `exists` over lists, and one evaluation visits at
 * most 100,000 list elements in all (past that the answer is unknown); nesting is bounded at
 * compile time.
 *
 * Missing fields are *absent*. Evaluation is three-valued: true, false, or unknown when the
 * answer depends on an absent field (or a value of the wrong type). `!unknown` is unknown;
 * `false && unknown` is false; `true || unknown` is true; `has(x)` is never unknown.
 *
 * Pure: no I/O, no clock; the caller passes the request, principals and local time in.
 * A so_expr_t owns its AST and compiled patterns (so_expr_free()).
 */
#ifndef SO_POLICY_EXPR_H
#define SO_POLICY_EXPR_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

typedef struct so_expr so_expr_t;

/** Everything an expression can see. Borrowed for the duration of one evaluation. */
typedef struct so_expr_input {
	const so_request_t *request;
	const so_principal_t *requester;
	const so_principal_t *owner; /**< the requester's owner, or NULL */
	int hour, minute, weekday;   /**< local time in the policy's zone; weekday 0 = Sunday */
	double anomaly_score;
	const json_t *anomaly_reasons; /**< array of strings, or NULL */
} so_expr_input_t;

enum so_tri { SO_FALSE = 0, SO_TRUE = 1, SO_UNKNOWN = 2 };

#define SO_EXPR_MAX_LEN 8192   /**< longest expression text */
#define SO_EXPR_MAX_DEPTH 48   /**< deepest nesting */
#define SO_EXPR_MAX_NODES 2048 /**< most AST nodes in one expression */

/** What an expression must produce. */
enum so_expr_kind {
	SO_EXPR_CONDITION, /**< a boolean (a rule's `when`) */
	SO_EXPR_PATH,      /**< a field path naming a string (an approver `group`) */
};

/**
 * Compile `text`. On failure returns SO_EINVAL and writes the message into `err`, with the
 * position in `*line` and `*col` (1-based, relative to the text).
 */
int so_expr_compile(const char *text, enum so_expr_kind kind, so_expr_t **out, int *line,
                    int *col, char *err, size_t errlen);

/**
 * Evaluate a condition; a value of the wrong type or an absent field gives SO_UNKNOWN.
 * When the answer is unknown and `absent` is not NULL, it is pointed at the source text
 * of the first absent field path met (length in `*absent_len`), or set to NULL.
 */
enum so_tri so_expr_eval(const so_expr_t *e, const so_expr_input_t *in, const char **absent,
                         size_t *absent_len);

/**
 * Evaluate a value expression (used for identity-aware approver groups such as
 * `owner.team`): on success points `*s` at a string inside the input and returns 1.
 */
int so_expr_eval_string(const so_expr_t *e, const so_expr_input_t *in, const char **s,
                        size_t *len);

/**
 * Whether a field path has a value: not absent, not null, and not an empty string
 * (`require: [intent]` is not met by "").
 */
int so_expr_present(const so_expr_t *e, const so_expr_input_t *in);

/**
 * 0 when the condition is certainly false for a request whose action.kind is `kind` (it
 * requires another kind in its top-level conjunction), else 1. A cheap pre-filter: rules
 * about other kinds of action are skipped without being evaluated.
 */
int so_expr_kind_possible(const so_expr_t *e, const char *kind);

/** The source text. */
const char *so_expr_text(const so_expr_t *e);

void so_expr_free(so_expr_t *e);

#endif
