/*
 * The policy expression language: lexer, recursive-descent parser, type checker and a
 * three-valued evaluator that allocates nothing. See expr.h for the contract and
 * docs/policy.md for the language.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcre2.h>

#include "common/buf.h"
#include "common/error.h"
#include "policy/expr.h"

#define MAX_VARS 8                /* nested exists() */
#define REGEX_MATCH_LIMIT 100000  /* backtracking steps */
#define REGEX_DEPTH_LIMIT 1000
#define REGEX_HEAP_LIMIT_KB 1024
#define EVAL_BUDGET 100000        /* list elements visited by in/exists in one evaluation */

/* ---- tokens ---- */

enum tok {
	T_EOF, T_IDENT, T_INT, T_DBL, T_STR, T_LPAREN, T_RPAREN, T_LBRACK, T_RBRACK, T_COMMA,
	T_DOT, T_NOT, T_AND, T_OR, T_EQ, T_NE, T_LT, T_LE, T_GT, T_GE, T_IN, T_TRUE, T_FALSE, T_NULL,
};

static const char *const tok_names[] = {
	"end of expression", "name", "number", "number", "string", "'('", "')'", "'['", "']'",
	"','", "'.'", "'!'", "'&&'", "'||'", "'=='", "'!='", "'<'", "'<='", "'>'", "'>='", "'in'",
	"'true'", "'false'", "'null'",
};

/* ---- static types ---- */

enum ty { TY_DYN, TY_BOOL, TY_INT, TY_DBL, TY_STR, TY_LIST, TY_MAP, TY_NULL, TY_OBJ };

static const char *const ty_names[] = {"any", "bool", "int", "number", "string", "list", "map",
                                       "null", "object"};

/* ---- AST ---- */

enum node_kind {
	N_BOOL, N_INT, N_DBL, N_STR, N_NULL, N_LIST,
	N_ROOT,   /* a top-level name */
	N_VAR,    /* a variable bound by exists() */
	N_FIELD,  /* a.name */
	N_INDEX,  /* a[b] */
	N_NOT, N_AND, N_OR, N_CMP, N_IN,
	N_HAS, N_SIZE, N_STARTS, N_ENDS, N_CONTAINS, N_MATCHES, N_EXISTS,
};

enum root {
	R_REQUESTER, R_OWNER, R_ON_BEHALF_OF, R_ACTION, R_INTENT, R_CONTEXT, R_TIME, R_ANOMALY,
};

static const struct {
	const char *name;
	enum root root;
	enum ty ty;
} roots[] = {
	{"requester", R_REQUESTER, TY_OBJ}, {"owner", R_OWNER, TY_OBJ},
	{"on_behalf_of", R_ON_BEHALF_OF, TY_STR}, {"action", R_ACTION, TY_MAP},
	{"intent", R_INTENT, TY_STR}, {"context", R_CONTEXT, TY_MAP},
	{"time", R_TIME, TY_OBJ}, {"anomaly", R_ANOMALY, TY_OBJ},
};

/* Known fields of the object roots and of action. */
static const struct {
	enum root root;
	const char *name;
	enum ty ty;
	enum ty elem; /* for lists */
} fields[] = {
	{R_REQUESTER, "id", TY_STR, 0}, {R_REQUESTER, "kind", TY_STR, 0},
	{R_REQUESTER, "groups", TY_LIST, TY_STR}, {R_REQUESTER, "owner", TY_STR, 0},
	{R_REQUESTER, "team", TY_STR, 0},
	{R_OWNER, "id", TY_STR, 0}, {R_OWNER, "kind", TY_STR, 0},
	{R_OWNER, "groups", TY_LIST, TY_STR}, {R_OWNER, "team", TY_STR, 0},
	{R_TIME, "hour", TY_INT, 0}, {R_TIME, "minute", TY_INT, 0}, {R_TIME, "weekday", TY_INT, 0},
	{R_ANOMALY, "score", TY_DBL, 0}, {R_ANOMALY, "reasons", TY_LIST, TY_STR},
	{R_ACTION, "kind", TY_STR, 0}, {R_ACTION, "command", TY_LIST, TY_STR},
	{R_ACTION, "tool", TY_STR, 0}, {R_ACTION, "arguments", TY_MAP, 0},
	{R_ACTION, "resource", TY_STR, 0}, {R_ACTION, "environment", TY_STR, 0},
};

struct node {
	enum node_kind kind;
	enum ty ty, elem;   /* static type; element type for lists */
	int op;             /* N_CMP: the comparison token */
	int root;           /* N_ROOT: enum root; N_FIELD on a root: its root, else -1 */
	int var;            /* N_VAR, N_EXISTS: the variable slot */
	int64_t i;
	double d;
	const char *s;      /* N_STR, N_FIELD name: points into the expr's string store */
	size_t slen;
	struct node *a, *b, *c;
	struct node **items; /* N_LIST */
	size_t nitems;
	size_t src_off, src_len; /* source span, for messages and the trace */
	pcre2_code *re;     /* N_MATCHES */
};

struct so_expr {
	char *text;
	enum so_expr_kind kind;
	struct node *root;
	struct node **nodes; /* every node, for freeing */
	size_t nnodes;
	char **strings;      /* decoded string literals and names */
	size_t nstrings;
};

/* ---- parser state ---- */

struct parser {
	struct so_expr *e;
	const char *src;
	size_t pos;
	/* current token */
	enum tok tok;
	size_t tok_off, tok_len;
	int64_t tok_int;
	double tok_dbl;
	char *tok_str; /* decoded, owned by e->strings once taken */
	int depth;
	char *err;
	size_t errlen;
	size_t err_off;
	int failed;
	const char *vars[MAX_VARS];
	int nvars;
};

static void
fail_at(struct parser *p, size_t off, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
fail_at(struct parser *p, size_t off, const char *fmt, ...)
{
	if (p->failed)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err, p->errlen, fmt, ap);
	va_end(ap);
	p->err_off = off;
	p->failed = 1;
}

static char *
keep_string(struct parser *p, char *s)
{
	if (!s)
		return NULL;
	char **list = realloc(p->e->strings, (p->e->nstrings + 1) * sizeof(*list));
	if (!list) {
		free(s);
		fail_at(p, p->tok_off, "out of memory");
		return NULL;
	}
	p->e->strings = list;
	list[p->e->nstrings++] = s;
	return s;
}

static struct node *
new_node(struct parser *p, enum node_kind kind, size_t off)
{
	if (p->e->nnodes >= SO_EXPR_MAX_NODES) {
		fail_at(p, off, "expression has more than %d parts", SO_EXPR_MAX_NODES);
		return NULL;
	}
	struct node *n = calloc(1, sizeof(*n));
	struct node **list = n ? realloc(p->e->nodes, (p->e->nnodes + 1) * sizeof(*list)) : NULL;
	if (!list) {
		free(n);
		fail_at(p, off, "out of memory");
		return NULL;
	}
	p->e->nodes = list;
	list[p->e->nnodes++] = n;
	n->kind = kind;
	n->root = -1;
	n->src_off = off;
	n->src_len = p->pos > off ? p->pos - off : 0;
	return n;
}

/* ---- lexer ---- */

static int
is_ident_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int
is_ident(char c)
{
	return is_ident_start(c) || (c >= '0' && c <= '9');
}

/* Append the UTF-8 encoding of `cp` to out[*n]. */
static void
put_utf8(char *out, size_t *n, unsigned cp)
{
	if (cp < 0x80) {
		out[(*n)++] = (char)cp;
	} else if (cp < 0x800) {
		out[(*n)++] = (char)(0xc0 | (cp >> 6));
		out[(*n)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		out[(*n)++] = (char)(0xe0 | (cp >> 12));
		out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[(*n)++] = (char)(0x80 | (cp & 0x3f));
	}
}

static void
lex_string(struct parser *p)
{
	const char *s = p->src;
	char quote = s[p->pos++];
	size_t start = p->pos, n = 0;
	char *out = malloc(strlen(s + start) + 1);
	if (!out) {
		fail_at(p, p->tok_off, "out of memory");
		return;
	}
	for (;;) {
		char c = s[p->pos];
		if (!c || c == '\n') {
			free(out);
			fail_at(p, p->tok_off, "unterminated string");
			return;
		}
		p->pos++;
		if (c == quote)
			break;
		if (c != '\\') {
			out[n++] = c;
			continue;
		}
		char esc = s[p->pos];
		if (!esc) {
			free(out);
			fail_at(p, p->tok_off, "unterminated string");
			return;
		}
		p->pos++;
		switch (esc) {
		case '\\': out[n++] = '\\'; break;
		case '"': out[n++] = '"'; break;
		case '\'': out[n++] = '\''; break;
		case 'n': out[n++] = '\n'; break;
		case 't': out[n++] = '\t'; break;
		case 'r': out[n++] = '\r'; break;
		case 'u': {
			unsigned cp = 0;
			for (int i = 0; i < 4; i++) {
				int h = so_hex_digit(s[p->pos]);
				if (h < 0) {
					free(out);
					fail_at(p, p->pos, "\\u needs four hex digits");
					return;
				}
				cp = cp * 16 + (unsigned)h;
				p->pos++;
			}
			if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff)) {
				free(out);
				fail_at(p, p->pos - 6, "\\u%04x is not allowed in a string", cp);
				return;
			}
			put_utf8(out, &n, cp);
			break;
		}
		default:
			free(out);
			fail_at(p, p->pos - 2, "unknown escape '\\%c' (use \\\\ \\\" \\' \\n \\t \\r \\uXXXX)",
			        esc ? esc : '0');
			return;
		}
	}
	out[n] = '\0';
	p->tok_str = keep_string(p, out);
	p->tok_dbl = (double)n; /* length, since strings may not hold NUL */
	p->tok = T_STR;
}

static void
lex_number(struct parser *p)
{
	const char *s = p->src + p->pos;
	char *end;
	size_t k = s[0] == '-'; /* a sign is part of a number literal; there is no arithmetic */
	int is_dbl = 0;
	while (s[k] >= '0' && s[k] <= '9')
		k++;
	if (s[k] == '.' && s[k + 1] >= '0' && s[k + 1] <= '9') {
		is_dbl = 1;
		k++;
		while (s[k] >= '0' && s[k] <= '9')
			k++;
	}
	errno = 0;
	if (is_dbl) {
		p->tok_dbl = strtod(s, &end);
		p->tok = T_DBL;
	} else {
		long long v = strtoll(s, &end, 10);
		p->tok_int = v;
		p->tok = T_INT;
	}
	if (errno || (size_t)(end - s) != k) {
		fail_at(p, p->pos, "number out of range");
		return;
	}
	if (is_ident(s[k])) {
		fail_at(p, p->pos, "malformed number");
		return;
	}
	p->pos += k;
}

static void
next(struct parser *p)
{
	const char *s = p->src;
	while (s[p->pos] == ' ' || s[p->pos] == '\t' || s[p->pos] == '\n' || s[p->pos] == '\r')
		p->pos++;
	p->tok_off = p->pos;
	char c = s[p->pos];
	if (!c) {
		p->tok = T_EOF;
	} else if (is_ident_start(c)) {
		size_t k = p->pos;
		while (is_ident(s[k]))
			k++;
		size_t n = k - p->pos;
		p->tok = T_IDENT;
		if (n == 2 && !strncmp(s + p->pos, "in", 2))
			p->tok = T_IN;
		else if (n == 4 && !strncmp(s + p->pos, "true", 4))
			p->tok = T_TRUE;
		else if (n == 5 && !strncmp(s + p->pos, "false", 5))
			p->tok = T_FALSE;
		else if (n == 4 && !strncmp(s + p->pos, "null", 4))
			p->tok = T_NULL;
		p->pos = k;
	} else if ((c >= '0' && c <= '9') || (c == '-' && s[p->pos + 1] >= '0' && s[p->pos + 1] <= '9')) {
		lex_number(p);
	} else if (c == '"' || c == '\'') {
		lex_string(p);
	} else {
		char d = s[p->pos + 1];
		p->pos++;
		switch (c) {
		case '(': p->tok = T_LPAREN; break;
		case ')': p->tok = T_RPAREN; break;
		case '[': p->tok = T_LBRACK; break;
		case ']': p->tok = T_RBRACK; break;
		case ',': p->tok = T_COMMA; break;
		case '.': p->tok = T_DOT; break;
		case '!':
			p->tok = d == '=' ? (p->pos++, T_NE) : T_NOT;
			break;
		case '=':
			if (d == '=') {
				p->pos++;
				p->tok = T_EQ;
				break;
			}
			fail_at(p, p->tok_off, "'=' is not an operator; compare with '=='");
			break;
		case '<': p->tok = d == '=' ? (p->pos++, T_LE) : T_LT; break;
		case '>': p->tok = d == '=' ? (p->pos++, T_GE) : T_GT; break;
		case '&':
			if (d == '&') {
				p->pos++;
				p->tok = T_AND;
				break;
			}
			fail_at(p, p->tok_off, "'&' is not an operator; use '&&'");
			break;
		case '|':
			if (d == '|') {
				p->pos++;
				p->tok = T_OR;
				break;
			}
			fail_at(p, p->tok_off, "'|' is not an operator; use '||'");
			break;
		default:
			fail_at(p, p->tok_off, "unexpected character '%c'", c);
		}
	}
	p->tok_len = p->pos - p->tok_off;
	if (p->failed)
		p->tok = T_EOF;
}

static int
expect(struct parser *p, enum tok t, const char *what)
{
	if (p->tok != t) {
		fail_at(p, p->tok_off, "expected %s %s, found %s", tok_names[t], what, tok_names[p->tok]);
		return 0;
	}
	next(p);
	return 1;
}

/* ---- parser with type checking ---- */

static struct node *parse_expr(struct parser *p);

static int
numeric(enum ty t)
{
	return t == TY_INT || t == TY_DBL;
}

static void
finish(struct parser *p, struct node *n, size_t off)
{
	n->src_off = off;
	n->src_len = p->tok_off > off ? p->tok_off - off : 0;
	/* trim trailing spaces before the next token */
	while (n->src_len && strchr(" \t\r\n", p->src[off + n->src_len - 1]))
		n->src_len--;
}

static struct node *
field_of(struct parser *p, struct node *obj, const char *name, size_t name_off, size_t start)
{
	struct node *n = new_node(p, N_FIELD, start);
	if (!n)
		return NULL;
	n->a = obj;
	n->s = name;
	n->slen = strlen(name);
	n->ty = TY_DYN;
	int root = obj->kind == N_ROOT ? obj->root : -1;
	if (obj->ty != TY_DYN && obj->ty != TY_MAP && obj->ty != TY_OBJ) {
		fail_at(p, name_off, "cannot take field '%s' of a %s", name, ty_names[obj->ty]);
		return NULL;
	}
	if (root >= 0) {
		n->root = root;
		int known = 0;
		for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
			if (fields[i].root == (enum root)root && !strcmp(fields[i].name, name)) {
				n->ty = fields[i].ty;
				n->elem = fields[i].elem;
				known = 1;
			}
		}
		if (!known && obj->ty == TY_OBJ) {
			fail_at(p, name_off, "'%.*s' has no field '%s'", (int)obj->src_len,
			        p->src + obj->src_off, name);
			return NULL;
		}
		return n;
	}
	if (obj->ty != TY_DYN && obj->ty != TY_MAP) {
		fail_at(p, name_off, "cannot take field '%s' of a %s", name, ty_names[obj->ty]);
		return NULL;
	}
	return n;
}

static int
is_path(const struct node *n)
{
	while (n->kind == N_FIELD || n->kind == N_INDEX)
		n = n->a;
	return n->kind == N_ROOT || n->kind == N_VAR;
}

static struct node *
string_method(struct parser *p, struct node *recv, const char *name, size_t name_off,
              size_t start)
{
	static const struct {
		const char *name;
		enum node_kind kind;
	} methods[] = {
		{"startsWith", N_STARTS}, {"endsWith", N_ENDS}, {"contains", N_CONTAINS},
		{"matches", N_MATCHES},
	};
	enum node_kind kind = N_BOOL;
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (!strcmp(name, methods[i].name))
			kind = methods[i].kind;
	if (kind == N_BOOL) {
		fail_at(p, name_off, "unknown function '%s' (have: startsWith, endsWith, contains, "
		                     "matches, exists, size)", name);
		return NULL;
	}
	if (recv->ty != TY_STR && recv->ty != TY_DYN) {
		fail_at(p, name_off, "%s() needs a string, not a %s", name, ty_names[recv->ty]);
		return NULL;
	}
	size_t arg_off = p->tok_off;
	struct node *arg = parse_expr(p);
	if (!arg)
		return NULL;
	if (arg->ty != TY_STR && arg->ty != TY_DYN) {
		fail_at(p, arg_off, "%s() takes a string, not a %s", name, ty_names[arg->ty]);
		return NULL;
	}
	if (!expect(p, T_RPAREN, "to close the call"))
		return NULL;
	struct node *n = new_node(p, kind, start);
	if (!n)
		return NULL;
	n->a = recv;
	n->b = arg;
	n->ty = TY_BOOL;
	if (kind == N_MATCHES) {
		if (arg->kind != N_STR) {
			fail_at(p, arg_off, "matches() takes a string literal (patterns compile at load)");
			return NULL;
		}
		int code;
		PCRE2_SIZE where;
		n->re = pcre2_compile((PCRE2_SPTR)arg->s, arg->slen, PCRE2_UTF,
		                      &code, &where, NULL);
		if (!n->re) {
			PCRE2_UCHAR msg[160];
			pcre2_get_error_message(code, msg, sizeof(msg));
			fail_at(p, arg_off, "bad pattern at offset %zu: %s", (size_t)where, (char *)msg);
			return NULL;
		}
	}
	return n;
}

static struct node *
exists_call(struct parser *p, struct node *recv, size_t name_off, size_t start)
{
	if (recv->ty != TY_LIST && recv->ty != TY_DYN) {
		fail_at(p, name_off, "exists() needs a list, not a %s", ty_names[recv->ty]);
		return NULL;
	}
	if (p->tok != T_IDENT) {
		fail_at(p, p->tok_off, "exists(x, condition) needs a variable name first");
		return NULL;
	}
	if (p->nvars >= MAX_VARS) {
		fail_at(p, p->tok_off, "exists() nested deeper than %d", MAX_VARS);
		return NULL;
	}
	char *name = keep_string(p, strndup(p->src + p->tok_off, p->tok_len));
	if (!name)
		return NULL;
	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		if (!strcmp(name, roots[i].name)) {
			fail_at(p, p->tok_off, "'%s' is a field name; pick another variable name", name);
			return NULL;
		}
	}
	next(p);
	if (!expect(p, T_COMMA, "after the variable"))
		return NULL;
	int slot = p->nvars;
	p->vars[p->nvars++] = name;
	size_t pred_off = p->tok_off;
	struct node *pred = parse_expr(p);
	p->nvars--;
	if (!pred)
		return NULL;
	if (pred->ty != TY_BOOL && pred->ty != TY_DYN) {
		fail_at(p, pred_off, "the condition of exists() must be true or false, not a %s",
		        ty_names[pred->ty]);
		return NULL;
	}
	if (!expect(p, T_RPAREN, "to close exists("))
		return NULL;
	struct node *n = new_node(p, N_EXISTS, start);
	if (!n)
		return NULL;
	n->a = recv;
	n->b = pred;
	n->var = slot;
	n->elem = recv->ty == TY_LIST ? recv->elem : TY_DYN;
	n->ty = TY_BOOL;
	return n;
}

static struct node *
parse_postfix(struct parser *p, struct node *n, size_t start)
{
	while (n && !p->failed) {
		if (p->tok == T_DOT) {
			next(p);
			if (p->tok != T_IDENT) {
				fail_at(p, p->tok_off, "expected a field name after '.'");
				return NULL;
			}
			size_t name_off = p->tok_off;
			char *name = keep_string(p, strndup(p->src + p->tok_off, p->tok_len));
			if (!name)
				return NULL;
			next(p);
			if (p->tok == T_LPAREN) {
				next(p);
				if (!strcmp(name, "exists"))
					n = exists_call(p, n, name_off, start);
				else if (!strcmp(name, "size")) {
					if (!expect(p, T_RPAREN, "after size("))
						return NULL;
					struct node *s = new_node(p, N_SIZE, start);
					if (!s)
						return NULL;
					if (n->ty != TY_STR && n->ty != TY_LIST && n->ty != TY_MAP &&
					    n->ty != TY_DYN) {
						fail_at(p, name_off, "size() needs a string, list or map");
						return NULL;
					}
					s->a = n;
					s->ty = TY_INT;
					n = s;
				} else
					n = string_method(p, n, name, name_off, start);
			} else {
				n = field_of(p, n, name, name_off, start);
			}
		} else if (p->tok == T_LBRACK) {
			size_t br = p->tok_off;
			next(p);
			size_t idx_off = p->tok_off;
			struct node *idx = parse_expr(p);
			if (!idx || !expect(p, T_RBRACK, "to close the index"))
				return NULL;
			struct node *x = new_node(p, N_INDEX, start);
			if (!x)
				return NULL;
			x->a = n;
			x->b = idx;
			if (n->ty == TY_LIST) {
				if (idx->ty != TY_INT && idx->ty != TY_DYN) {
					fail_at(p, idx_off, "a list index must be a whole number");
					return NULL;
				}
				x->ty = n->elem ? n->elem : TY_DYN;
			} else if (n->ty == TY_MAP || n->ty == TY_DYN) {
				if (idx->ty != TY_STR && idx->ty != TY_INT && idx->ty != TY_DYN) {
					fail_at(p, idx_off, "an index must be a string or a whole number");
					return NULL;
				}
				x->ty = TY_DYN;
			} else {
				fail_at(p, br, "cannot index a %s", ty_names[n->ty]);
				return NULL;
			}
			n = x;
		} else {
			break;
		}
		if (n)
			finish(p, n, start);
	}
	return p->failed ? NULL : n;
}

static struct node *
parse_primary(struct parser *p)
{
	size_t start = p->tok_off;
	struct node *n = NULL;

	if (++p->depth > SO_EXPR_MAX_DEPTH) {
		fail_at(p, start, "expression nested deeper than %d", SO_EXPR_MAX_DEPTH);
		return NULL;
	}
	switch (p->tok) {
	case T_TRUE:
	case T_FALSE:
		if ((n = new_node(p, N_BOOL, start))) {
			n->i = p->tok == T_TRUE;
			n->ty = TY_BOOL;
		}
		next(p);
		break;
	case T_NULL:
		if ((n = new_node(p, N_NULL, start)))
			n->ty = TY_NULL;
		next(p);
		break;
	case T_INT:
		if ((n = new_node(p, N_INT, start))) {
			n->i = p->tok_int;
			n->ty = TY_INT;
		}
		next(p);
		break;
	case T_DBL:
		if ((n = new_node(p, N_DBL, start))) {
			n->d = p->tok_dbl;
			n->ty = TY_DBL;
		}
		next(p);
		break;
	case T_STR:
		if ((n = new_node(p, N_STR, start))) {
			n->s = p->tok_str;
			n->slen = (size_t)p->tok_dbl;
			n->ty = TY_STR;
		}
		next(p);
		break;
	case T_LPAREN:
		next(p);
		n = parse_expr(p);
		if (n && !expect(p, T_RPAREN, "to close '('"))
			n = NULL;
		break;
	case T_LBRACK: {
		next(p);
		if (!(n = new_node(p, N_LIST, start)))
			break;
		n->ty = TY_LIST;
		enum ty elem = TY_NULL;
		while (p->tok != T_RBRACK && !p->failed) {
			size_t item_off = p->tok_off;
			struct node *item = parse_expr(p);
			if (!item)
				break;
			struct node **items = realloc(n->items, (n->nitems + 1) * sizeof(*items));
			if (!items) {
				fail_at(p, item_off, "out of memory");
				break;
			}
			n->items = items;
			items[n->nitems++] = item;
			if (elem == TY_NULL)
				elem = item->ty;
			else if (elem != item->ty && !(numeric(elem) && numeric(item->ty)))
				elem = TY_DYN;
			if (p->tok != T_COMMA)
				break;
			next(p);
		}
		n->elem = elem == TY_NULL ? TY_DYN : elem;
		if (!expect(p, T_RBRACK, "to close the list"))
			n = NULL;
		break;
	}
	case T_IDENT: {
		char *name = keep_string(p, strndup(p->src + p->tok_off, p->tok_len));
		if (!name)
			break;
		size_t name_off = p->tok_off;
		next(p);
		if (p->tok == T_LPAREN) {
			next(p);
			if (!strcmp(name, "has")) {
				size_t arg_off = p->tok_off;
				struct node *arg = parse_expr(p);
				if (!arg || !expect(p, T_RPAREN, "to close has("))
					break;
				if (arg->kind != N_FIELD && arg->kind != N_INDEX && arg->kind != N_ROOT) {
					fail_at(p, arg_off, "has() takes a field, like has(context.ticket)");
					break;
				}
				if ((n = new_node(p, N_HAS, start))) {
					n->a = arg;
					n->ty = TY_BOOL;
				}
			} else if (!strcmp(name, "size")) {
				size_t arg_off = p->tok_off;
				struct node *arg = parse_expr(p);
				if (!arg || !expect(p, T_RPAREN, "to close size("))
					break;
				if (arg->ty != TY_STR && arg->ty != TY_LIST && arg->ty != TY_MAP &&
				    arg->ty != TY_DYN) {
					fail_at(p, arg_off, "size() needs a string, list or map, not a %s",
					        ty_names[arg->ty]);
					break;
				}
				if ((n = new_node(p, N_SIZE, start))) {
					n->a = arg;
					n->ty = TY_INT;
				}
			} else {
				fail_at(p, name_off, "unknown function '%s' (have: has, size)", name);
			}
			break;
		}
		for (int v = p->nvars - 1; v >= 0; v--) {
			if (!strcmp(p->vars[v], name)) {
				if ((n = new_node(p, N_VAR, start))) {
					n->var = v;
					n->ty = TY_DYN;
				}
				goto postfix;
			}
		}
		for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
			if (!strcmp(name, roots[i].name)) {
				if ((n = new_node(p, N_ROOT, start))) {
					n->root = (int)roots[i].root;
					n->ty = roots[i].ty;
				}
				goto postfix;
			}
		}
		fail_at(p, name_off, "unknown name '%s' (have: requester, owner, on_behalf_of, action, "
		                     "intent, context, time, anomaly)", name);
		break;
	postfix:
		if (n)
			finish(p, n, start);
		break;
	}
	default:
		fail_at(p, p->tok_off, "expected a value, found %s", tok_names[p->tok]);
	}
	if (n && !p->failed) {
		finish(p, n, start);
		n = parse_postfix(p, n, start);
	}
	p->depth--;
	return p->failed ? NULL : n;
}

static struct node *
parse_unary(struct parser *p)
{
	if (p->tok != T_NOT)
		return parse_primary(p);
	size_t start = p->tok_off;
	next(p);
	if (++p->depth > SO_EXPR_MAX_DEPTH) {
		fail_at(p, start, "expression nested deeper than %d", SO_EXPR_MAX_DEPTH);
		return NULL;
	}
	size_t arg_off = p->tok_off;
	struct node *a = parse_unary(p);
	p->depth--;
	if (!a)
		return NULL;
	if (a->ty != TY_BOOL && a->ty != TY_DYN) {
		fail_at(p, arg_off, "'!' needs true or false, not a %s", ty_names[a->ty]);
		return NULL;
	}
	struct node *n = new_node(p, N_NOT, start);
	if (n) {
		n->a = a;
		n->ty = TY_BOOL;
		finish(p, n, start);
	}
	return n;
}

static int
comparable(enum ty a, enum ty b)
{
	return a == TY_DYN || b == TY_DYN || a == b || (numeric(a) && numeric(b)) || a == TY_NULL ||
	       b == TY_NULL;
}

static struct node *
parse_cmp(struct parser *p)
{
	size_t start = p->tok_off;
	struct node *a = parse_unary(p);
	if (!a)
		return NULL;
	enum tok op = p->tok;
	if (op != T_EQ && op != T_NE && op != T_LT && op != T_LE && op != T_GT && op != T_GE &&
	    op != T_IN)
		return a;
	size_t op_off = p->tok_off;
	next(p);
	struct node *b = parse_unary(p);
	if (!b)
		return NULL;
	struct node *n = new_node(p, op == T_IN ? N_IN : N_CMP, start);
	if (!n)
		return NULL;
	n->a = a;
	n->b = b;
	n->op = op;
	n->ty = TY_BOOL;
	if (op == T_IN) {
		if (b->ty != TY_LIST && b->ty != TY_MAP && b->ty != TY_DYN) {
			fail_at(p, op_off, "'in' needs a list or map on its right, not a %s",
			        ty_names[b->ty]);
			return NULL;
		}
		enum ty elem = b->ty == TY_LIST ? b->elem : TY_DYN;
		if (b->ty == TY_LIST && !comparable(a->ty, elem ? elem : TY_DYN)) {
			fail_at(p, op_off, "cannot look for a %s in a list of %s", ty_names[a->ty],
			        ty_names[elem]);
			return NULL;
		}
	} else if (op == T_EQ || op == T_NE) {
		if (!comparable(a->ty, b->ty)) {
			fail_at(p, op_off, "cannot compare a %s with a %s", ty_names[a->ty], ty_names[b->ty]);
			return NULL;
		}
	} else {
		int ok = (a->ty == TY_DYN || numeric(a->ty) || a->ty == TY_STR) &&
		         (b->ty == TY_DYN || numeric(b->ty) || b->ty == TY_STR) &&
		         comparable(a->ty, b->ty) && a->ty != TY_NULL && b->ty != TY_NULL;
		if (!ok) {
			fail_at(p, op_off, "cannot order a %s and a %s", ty_names[a->ty], ty_names[b->ty]);
			return NULL;
		}
	}
	finish(p, n, start);
	if (p->tok == T_EQ || p->tok == T_NE || p->tok == T_LT || p->tok == T_LE || p->tok == T_GT ||
	    p->tok == T_GE || p->tok == T_IN) {
		fail_at(p, p->tok_off, "comparisons do not chain; add parentheses or '&&'");
		return NULL;
	}
	return n;
}

static struct node *
parse_logic(struct parser *p, enum tok op, enum node_kind kind,
            struct node *(*operand)(struct parser *))
{
	size_t start = p->tok_off;
	size_t a_off = p->tok_off;
	struct node *a = operand(p);
	while (a && p->tok == op) {
		if (a->ty != TY_BOOL && a->ty != TY_DYN) {
			fail_at(p, a_off, "%s needs true or false on each side, not a %s", tok_names[op],
			        ty_names[a->ty]);
			return NULL;
		}
		next(p);
		size_t b_off = p->tok_off;
		struct node *b = operand(p);
		if (!b)
			return NULL;
		if (b->ty != TY_BOOL && b->ty != TY_DYN) {
			fail_at(p, b_off, "%s needs true or false on each side, not a %s", tok_names[op],
			        ty_names[b->ty]);
			return NULL;
		}
		struct node *n = new_node(p, kind, start);
		if (!n)
			return NULL;
		n->a = a;
		n->b = b;
		n->ty = TY_BOOL;
		finish(p, n, start);
		a = n;
	}
	return a;
}

static struct node *
parse_and(struct parser *p)
{
	return parse_logic(p, T_AND, N_AND, parse_cmp);
}

static struct node *
parse_expr(struct parser *p)
{
	if (++p->depth > SO_EXPR_MAX_DEPTH) {
		fail_at(p, p->tok_off, "expression nested deeper than %d", SO_EXPR_MAX_DEPTH);
		return NULL;
	}
	struct node *n = parse_logic(p, T_OR, N_OR, parse_and);
	p->depth--;
	return n;
}

void
so_expr_free(so_expr_t *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->nnodes; i++) {
		if (e->nodes[i]->re)
			pcre2_code_free(e->nodes[i]->re);
		free(e->nodes[i]->items);
		free(e->nodes[i]);
	}
	free(e->nodes);
	for (size_t i = 0; i < e->nstrings; i++)
		free(e->strings[i]);
	free(e->strings);
	free(e->text);
	free(e);
}

const char *
so_expr_text(const so_expr_t *e)
{
	return e->text;
}

int
so_expr_compile(const char *text, enum so_expr_kind kind, so_expr_t **out, int *line, int *col,
                char *err, size_t errlen)
{
	*out = NULL;
	*line = 1;
	*col = 1;
	size_t len = strlen(text);
	if (len > SO_EXPR_MAX_LEN) {
		snprintf(err, errlen, "expression is longer than %d characters", SO_EXPR_MAX_LEN);
		return SO_EINVAL;
	}
	struct so_expr *e = calloc(1, sizeof(*e));
	if (!e || !(e->text = strdup(text))) {
		free(e);
		return SO_ENOMEM;
	}
	e->kind = kind;
	struct parser p = {.e = e, .src = e->text, .err = err, .errlen = errlen};
	next(&p);
	size_t start = p.tok_off;
	struct node *root = p.failed ? NULL : parse_expr(&p);
	if (root && p.tok != T_EOF)
		fail_at(&p, p.tok_off, "unexpected %s after the expression", tok_names[p.tok]);
	if (root && !p.failed) {
		if (kind == SO_EXPR_CONDITION && root->ty != TY_BOOL && root->ty != TY_DYN)
			fail_at(&p, start, "a condition must be true or false, not a %s", ty_names[root->ty]);
		if (kind == SO_EXPR_PATH && (!is_path(root) || (root->ty != TY_STR && root->ty != TY_DYN)))
			fail_at(&p, start, "expected a field naming a string, like owner.team");
	}
	if (p.failed || !root) {
		if (!p.failed)
			snprintf(err, errlen, "empty expression");
		for (size_t i = 0; i < p.err_off && e->text[i]; i++) {
			if (e->text[i] == '\n') {
				(*line)++;
				*col = 1;
			} else {
				(*col)++;
			}
		}
		so_expr_free(e);
		return SO_EINVAL;
	}
	e->root = root;
	*out = e;
	return SO_OK;
}

/* ---- evaluation ---- */

enum vt { V_UNKNOWN, V_NULL, V_BOOL, V_INT, V_DBL, V_STR, V_JSON, V_LIT_LIST, V_STRV, V_PRINCIPAL,
          V_TIME, V_ANOMALY };

struct val {
	enum vt t;
	union {
		int b;
		int64_t i;
		double d;
		struct {
			const char *p;
			size_t n;
		} s;
		const json_t *j;
		const struct node *list;
		char *const *strv;
		const so_principal_t *pr;
	} u;
};

struct env {
	const so_expr_input_t *in;
	struct val vars[MAX_VARS];
	const struct node *absent; /* first absent path met, for the trace */
	int64_t budget;            /* list elements still allowed; nested exists() is bounded */
};

static const struct val unknown = {.t = V_UNKNOWN};

static struct val
vbool(int b)
{
	struct val v = {.t = V_BOOL};
	v.u.b = b != 0;
	return v;
}

static struct val
vstr(const char *s)
{
	if (!s)
		return unknown;
	struct val v = {.t = V_STR};
	v.u.s.p = s;
	v.u.s.n = strlen(s);
	return v;
}

static struct val
from_json(const json_t *j)
{
	struct val v = unknown;
	if (!j)
		return v;
	switch (json_typeof(j)) {
	case JSON_STRING:
		v.t = V_STR;
		v.u.s.p = json_string_value(j);
		v.u.s.n = json_string_length(j);
		break;
	case JSON_INTEGER:
		v.t = V_INT;
		v.u.i = json_integer_value(j);
		break;
	case JSON_REAL:
		v.t = V_DBL;
		v.u.d = json_real_value(j);
		break;
	case JSON_TRUE: return vbool(1);
	case JSON_FALSE: return vbool(0);
	case JSON_NULL: v.t = V_NULL; break;
	default:
		v.t = V_JSON;
		v.u.j = j;
	}
	return v;
}

static int
is_list(const struct val *v)
{
	return (v->t == V_JSON && json_is_array(v->u.j)) || v->t == V_LIT_LIST || v->t == V_STRV;
}

static struct val eval(struct env *env, const struct node *n);

static size_t
list_len(const struct val *v)
{
	if (v->t == V_JSON)
		return json_array_size(v->u.j);
	if (v->t == V_LIT_LIST)
		return v->u.list->nitems;
	size_t k = 0;
	while (v->u.strv && v->u.strv[k])
		k++;
	return k;
}

static struct val
list_get(struct env *env, const struct val *v, size_t i)
{
	if (v->t == V_JSON)
		return from_json(json_array_get(v->u.j, i));
	if (v->t == V_LIT_LIST)
		return eval(env, v->u.list->items[i]);
	return vstr(v->u.strv[i]);
}

static struct val
principal_field(const so_principal_t *p, const char *name)
{
	if (!p)
		return unknown;
	if (!strcmp(name, "id"))
		return vstr(p->id);
	if (!strcmp(name, "kind"))
		return vstr(so_kind_name(p->kind));
	if (!strcmp(name, "owner"))
		return vstr(p->owner);
	if (!strcmp(name, "team"))
		return vstr(p->team);
	if (!strcmp(name, "groups")) {
		struct val v = {.t = V_STRV};
		v.u.strv = p->groups;
		return p->groups ? v : unknown;
	}
	return unknown;
}

static struct val
root_value(struct env *env, const struct node *n)
{
	const so_expr_input_t *in = env->in;
	const so_request_t *r = in->request;
	struct val v = unknown;
	switch ((enum root)n->root) {
	case R_REQUESTER:
		if (in->requester) {
			v.t = V_PRINCIPAL;
			v.u.pr = in->requester;
		}
		break;
	case R_OWNER:
		if (in->owner) {
			v.t = V_PRINCIPAL;
			v.u.pr = in->owner;
		}
		break;
	case R_ON_BEHALF_OF: v = vstr(r ? r->on_behalf_of : NULL); break;
	case R_ACTION: v = from_json(r ? r->action : NULL); break;
	case R_INTENT: v = vstr(r ? r->intent : NULL); break;
	case R_CONTEXT: v = from_json(r ? r->context : NULL); break;
	case R_TIME: v.t = V_TIME; break;
	case R_ANOMALY: v.t = V_ANOMALY; break;
	}
	return v;
}

static struct val
field_value(struct env *env, const struct node *n)
{
	struct val obj = eval(env, n->a);
	struct val v = unknown;
	switch (obj.t) {
	case V_PRINCIPAL: v = principal_field(obj.u.pr, n->s); break;
	case V_TIME:
		v.t = V_INT;
		if (!strcmp(n->s, "hour"))
			v.u.i = env->in->hour;
		else if (!strcmp(n->s, "minute"))
			v.u.i = env->in->minute;
		else
			v.u.i = env->in->weekday;
		break;
	case V_ANOMALY:
		if (!strcmp(n->s, "score")) {
			v.t = V_DBL;
			v.u.d = env->in->anomaly_score;
		} else if (env->in->anomaly_reasons) {
			v = from_json(env->in->anomaly_reasons);
		}
		break;
	case V_JSON:
		if (json_is_object(obj.u.j))
			v = from_json(json_object_get(obj.u.j, n->s));
		break;
	default: break;
	}
	if (v.t == V_UNKNOWN && !env->absent)
		env->absent = n;
	return v;
}

static struct val
index_value(struct env *env, const struct node *n)
{
	struct val obj = eval(env, n->a);
	struct val idx = eval(env, n->b);
	struct val v = unknown;
	if (idx.t == V_INT && is_list(&obj)) {
		int64_t i = idx.u.i;
		size_t len = list_len(&obj);
		if (i < 0)
			i += (int64_t)len; /* action.command[-1] is the last argument */
		if (i >= 0 && (size_t)i < len)
			v = list_get(env, &obj, (size_t)i);
	} else if (idx.t == V_STR && obj.t == V_JSON && json_is_object(obj.u.j)) {
		/* Keys with NUL cannot exist in jansson objects; idx strings never hold NUL. */
		v = from_json(json_object_get(obj.u.j, idx.u.s.p));
	}
	if (v.t == V_UNKNOWN && !env->absent)
		env->absent = n;
	return v;
}

static int
num_of(const struct val *v, double *d)
{
	if (v->t == V_INT)
		*d = (double)v->u.i;
	else if (v->t == V_DBL)
		*d = v->u.d;
	else
		return 0;
	return 1;
}

/* -1, 0, 1, or 2 when the two cannot be compared. */
static int
compare(const struct val *a, const struct val *b)
{
	double x, y;
	if (a->t == V_INT && b->t == V_INT)
		return a->u.i < b->u.i ? -1 : a->u.i > b->u.i;
	if (num_of(a, &x) && num_of(b, &y))
		return x < y ? -1 : x > y;
	if (a->t == V_STR && b->t == V_STR) {
		size_t n = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;
		int c = memcmp(a->u.s.p, b->u.s.p, n);
		if (c)
			return c < 0 ? -1 : 1;
		return a->u.s.n < b->u.s.n ? -1 : a->u.s.n > b->u.s.n;
	}
	return 2;
}

/* Equality: 1, 0, or -1 when unknown. */
static int
equal(struct env *env, const struct val *a, const struct val *b)
{
	if (a->t == V_UNKNOWN || b->t == V_UNKNOWN)
		return -1;
	if (a->t == V_NULL || b->t == V_NULL)
		return a->t == b->t;
	if (a->t == V_BOOL && b->t == V_BOOL)
		return a->u.b == b->u.b;
	int c = compare(a, b);
	if (c != 2)
		return c == 0;
	if (is_list(a) && is_list(b)) {
		size_t n = list_len(a);
		if (n != list_len(b))
			return 0;
		for (size_t i = 0; i < n; i++) {
			struct val x = list_get(env, a, i), y = list_get(env, b, i);
			int e = equal(env, &x, &y);
			if (e != 1)
				return e;
		}
		return 1;
	}
	if (a->t == V_JSON && b->t == V_JSON)
		return json_equal((json_t *)a->u.j, (json_t *)b->u.j);
	return 0; /* different types are simply different */
}

static struct val
eval_in(struct env *env, const struct node *n)
{
	struct val x = eval(env, n->a);
	struct val coll = eval(env, n->b);
	if (x.t == V_UNKNOWN)
		return unknown;
	if (coll.t == V_JSON && json_is_object(coll.u.j)) {
		if (x.t != V_STR)
			return vbool(0);
		return vbool(json_object_get(coll.u.j, x.u.s.p) != NULL);
	}
	if (!is_list(&coll))
		return unknown;
	size_t len = list_len(&coll);
	int saw_unknown = 0;
	for (size_t i = 0; i < len; i++) {
		if (--env->budget < 0)
			return unknown; /* too much work: undecided, never a silent yes */
		struct val item = list_get(env, &coll, i);
		int e = equal(env, &x, &item);
		if (e == 1)
			return vbool(1);
		saw_unknown |= e < 0;
	}
	return saw_unknown ? unknown : vbool(0);
}

struct matcher {
	pcre2_match_data *md;
	pcre2_match_context *mc;
};

static pthread_key_t matcher_key;
static pthread_once_t matcher_once = PTHREAD_ONCE_INIT;

static void
matcher_free(void *arg)
{
	struct matcher *m = arg;
	pcre2_match_data_free(m->md);
	pcre2_match_context_free(m->mc);
	free(m);
}

static void
matcher_key_init(void)
{
	pthread_key_create(&matcher_key, matcher_free);
}

static struct matcher *
matcher_get(void)
{
	pthread_once(&matcher_once, matcher_key_init);
	struct matcher *m = pthread_getspecific(matcher_key);
	if (m)
		return m;
	if (!(m = calloc(1, sizeof(*m))))
		return NULL;
	m->md = pcre2_match_data_create(1, NULL);
	m->mc = pcre2_match_context_create(NULL);
	if (!m->md || !m->mc || pthread_setspecific(matcher_key, m)) {
		matcher_free(m);
		return NULL;
	}
	pcre2_set_match_limit(m->mc, REGEX_MATCH_LIMIT);
	pcre2_set_depth_limit(m->mc, REGEX_DEPTH_LIMIT);
	pcre2_set_heap_limit(m->mc, REGEX_HEAP_LIMIT_KB);
	return m;
}

static struct val
eval_string_fn(struct env *env, const struct node *n)
{
	struct val s = eval(env, n->a);
	struct val arg = eval(env, n->b);
	if (s.t != V_STR || arg.t != V_STR)
		return unknown;
	const char *p = s.u.s.p, *q = arg.u.s.p;
	size_t sn = s.u.s.n, qn = arg.u.s.n;
	switch (n->kind) {
	case N_STARTS: return vbool(qn <= sn && !memcmp(p, q, qn));
	case N_ENDS: return vbool(qn <= sn && !memcmp(p + sn - qn, q, qn));
	case N_CONTAINS: return vbool(qn == 0 || memmem(p, sn, q, qn) != NULL);
	default: break;
	}
	/* matches: one match block per thread, made on first use, freed when the thread ends. */
	struct matcher *m = matcher_get();
	if (!m)
		return unknown;
	int rc = pcre2_match(n->re, (PCRE2_SPTR)p, sn, 0, 0, m->md, m->mc);
	if (rc >= 0)
		return vbool(1);
	if (rc == PCRE2_ERROR_NOMATCH)
		return vbool(0);
	return unknown; /* limit hit or invalid UTF-8: undecided, never a silent yes */
}

static struct val
eval_exists(struct env *env, const struct node *n)
{
	struct val list = eval(env, n->a);
	if (!is_list(&list))
		return unknown;
	size_t len = list_len(&list);
	int saw_unknown = 0;
	for (size_t i = 0; i < len; i++) {
		if (--env->budget < 0)
			return unknown;
		env->vars[n->var] = list_get(env, &list, i);
		struct val r = eval(env, n->b);
		if (r.t == V_BOOL && r.u.b)
			return vbool(1);
		saw_unknown |= r.t != V_BOOL;
	}
	return saw_unknown ? unknown : vbool(0);
}

static struct val
eval(struct env *env, const struct node *n)
{
	struct val v = unknown;
	switch (n->kind) {
	case N_BOOL: return vbool((int)n->i);
	case N_NULL: v.t = V_NULL; return v;
	case N_INT: v.t = V_INT; v.u.i = n->i; return v;
	case N_DBL: v.t = V_DBL; v.u.d = n->d; return v;
	case N_STR:
		v.t = V_STR;
		v.u.s.p = n->s;
		v.u.s.n = n->slen;
		return v;
	case N_LIST: v.t = V_LIT_LIST; v.u.list = n; return v;
	case N_ROOT:
		v = root_value(env, n);
		if (v.t == V_UNKNOWN && !env->absent)
			env->absent = n;
		return v;
	case N_VAR: return env->vars[n->var];
	case N_FIELD: return field_value(env, n);
	case N_INDEX: return index_value(env, n);
	case N_NOT: {
		struct val a = eval(env, n->a);
		return a.t == V_BOOL ? vbool(!a.u.b) : unknown;
	}
	case N_AND: {
		struct val a = eval(env, n->a);
		if (a.t == V_BOOL && !a.u.b)
			return a;
		struct val b = eval(env, n->b);
		if (b.t == V_BOOL && !b.u.b)
			return b;
		return a.t == V_BOOL && b.t == V_BOOL ? vbool(1) : unknown;
	}
	case N_OR: {
		struct val a = eval(env, n->a);
		if (a.t == V_BOOL && a.u.b)
			return a;
		struct val b = eval(env, n->b);
		if (b.t == V_BOOL && b.u.b)
			return b;
		return a.t == V_BOOL && b.t == V_BOOL ? vbool(0) : unknown;
	}
	case N_CMP: {
		struct val a = eval(env, n->a), b = eval(env, n->b);
		if (a.t == V_UNKNOWN || b.t == V_UNKNOWN)
			return unknown;
		if (n->op == T_EQ || n->op == T_NE) {
			int e = equal(env, &a, &b);
			return e < 0 ? unknown : vbool(n->op == T_EQ ? e : !e);
		}
		int c = compare(&a, &b);
		if (c == 2)
			return unknown;
		switch (n->op) {
		case T_LT: return vbool(c < 0);
		case T_LE: return vbool(c <= 0);
		case T_GT: return vbool(c > 0);
		default: return vbool(c >= 0);
		}
	}
	case N_IN: return eval_in(env, n);
	case N_HAS: {
		const struct node *keep = env->absent;
		struct val a = eval(env, n->a);
		env->absent = keep; /* a missing field asked about is not a reason for unknown */
		return vbool(a.t != V_UNKNOWN);
	}
	case N_SIZE: {
		struct val a = eval(env, n->a);
		v.t = V_INT;
		if (a.t == V_STR)
			v.u.i = (int64_t)a.u.s.n;
		else if (is_list(&a))
			v.u.i = (int64_t)list_len(&a);
		else if (a.t == V_JSON && json_is_object(a.u.j))
			v.u.i = (int64_t)json_object_size(a.u.j);
		else
			v = unknown;
		return v;
	}
	case N_STARTS:
	case N_ENDS:
	case N_CONTAINS:
	case N_MATCHES: return eval_string_fn(env, n);
	case N_EXISTS: return eval_exists(env, n);
	}
	return unknown;
}

enum so_tri
so_expr_eval(const so_expr_t *e, const so_expr_input_t *in, const char **absent,
             size_t *absent_len)
{
	struct env env = {.in = in, .budget = EVAL_BUDGET};
	struct val v = eval(&env, e->root);
	enum so_tri t = v.t == V_BOOL ? (v.u.b ? SO_TRUE : SO_FALSE) : SO_UNKNOWN;
	if (absent) {
		*absent = NULL;
		*absent_len = 0;
		if (t == SO_UNKNOWN && env.absent) {
			*absent = e->text + env.absent->src_off;
			*absent_len = env.absent->src_len;
		}
	}
	return t;
}

int
so_expr_eval_string(const so_expr_t *e, const so_expr_input_t *in, const char **s, size_t *len)
{
	struct env env = {.in = in, .budget = EVAL_BUDGET};
	struct val v = eval(&env, e->root);
	if (v.t != V_STR)
		return 0;
	*s = v.u.s.p;
	*len = v.u.s.n;
	return 1;
}

int
so_expr_present(const so_expr_t *e, const so_expr_input_t *in)
{
	struct env env = {.in = in, .budget = EVAL_BUDGET};
	struct val v = eval(&env, e->root);
	if (v.t == V_UNKNOWN || v.t == V_NULL)
		return 0;
	if (v.t == V_STR)
		return v.u.s.n > 0;
	return 1;
}

/* Whether node `n` is action.kind. */
static int
is_action_kind(const struct node *n)
{
	return n->kind == N_FIELD && n->root == R_ACTION && n->a->kind == N_ROOT &&
	       n->slen == 4 && !memcmp(n->s, "kind", 4);
}

static int
kind_possible(const struct node *n, const char *kind, size_t klen)
{
	if (n->kind == N_AND)
		return kind_possible(n->a, kind, klen) && kind_possible(n->b, kind, klen);
	if (n->kind == N_CMP && n->op == T_EQ) {
		const struct node *f = is_action_kind(n->a) ? n->a : is_action_kind(n->b) ? n->b : NULL;
		const struct node *lit = f == n->a ? n->b : n->a;
		if (f && lit->kind == N_STR)
			return lit->slen == klen && !memcmp(lit->s, kind, klen);
	}
	if (n->kind == N_IN && is_action_kind(n->a) && n->b->kind == N_LIST) {
		for (size_t i = 0; i < n->b->nitems; i++) {
			const struct node *lit = n->b->items[i];
			if (lit->kind != N_STR || (lit->slen == klen && !memcmp(lit->s, kind, klen)))
				return 1;
		}
		return 0;
	}
	return 1;
}

int
so_expr_kind_possible(const so_expr_t *e, const char *kind)
{
	return !kind || kind_possible(e->root, kind, strlen(kind));
}
