/* The `policy` section: approvers, rules (with their expressions), include files, time zone. */
#include <errno.h>
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/error.h"
#include "common/json.h"
#include "daemon/config.h"
#include "daemon/policy_config.h"

#define MAX_RULES 10000
#define MAX_REQUIREMENTS 16
#define MAX_REQUIRE 16
#define MAX_INCLUDES 256

static const char *const outcome_names[] = {"allow", "review", "deny", NULL};

/* Where messages point: the file and whether lines are said "line N: " (main file) or in
 * full "@FILE:N: " (an included file). */
struct where {
	const char *file; /* NULL for the main file */
};

static int
say(const struct where *w, char *err, size_t errlen, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int
say(const struct where *w, char *err, size_t errlen, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (w->file)
		snprintf(err, errlen, "@%s:%d: %s", w->file, line, msg);
	else
		snprintf(err, errlen, "line %d: %s", line, msg);
	return SO_ECONFIG;
}

static int
parse_outcome(const so_yaml_node_t *v, int *out)
{
	if (v->kind != SO_YAML_SCALAR)
		return SO_ECONFIG;
	for (int i = 0; outcome_names[i]; i++) {
		if (!strcmp(v->value, outcome_names[i])) {
			*out = i;
			return SO_OK;
		}
	}
	return SO_ECONFIG;
}

int
so_policy_cfg_default(const so_yaml_node_t *n, void *target, char *err, size_t errlen)
{
	so_config_t *cfg = target;
	if (parse_outcome(n, &cfg->policy.def)) {
		snprintf(err, errlen, "expected one of: allow review deny");
		return SO_ECONFIG;
	}
	if (cfg->loading)
		cfg->loading->default_line = n->line;
	return SO_OK;
}

/* A group that names a field (owner.team) is resolved per request. */
static int
looks_like_path(const char *s)
{
	static const char *const roots[] = {"requester.", "owner.", "context.", "action.", NULL};
	for (int i = 0; roots[i]; i++)
		if (!strncmp(s, roots[i], strlen(roots[i])))
			return 1;
	return 0;
}

/* Position of expression-relative (line, col) in the YAML file. */
static void
expr_position(const so_yaml_node_t *v, int eline, int ecol, int *line, int *col)
{
	if (v->block) {
		*line = v->line + eline;
		*col = ecol;
	} else {
		*line = v->line + eline - 1;
		*col = eline > 1 ? ecol : v->column + (v->plain ? 0 : 1) + ecol - 1;
	}
}

static int
compile_at(const struct where *w, const so_yaml_node_t *v, enum so_expr_kind kind,
           const char *what, so_expr_t **out, char *err, size_t errlen)
{
	char msg[400];
	int eline, ecol, line, col;
	if (v->kind != SO_YAML_SCALAR)
		return say(w, err, errlen, v->line, "%s must be an expression in text", what);
	if (so_expr_compile(v->value, kind, out, &eline, &ecol, msg, sizeof(msg)) != SO_OK) {
		expr_position(v, eline, ecol, &line, &col);
		return say(w, err, errlen, line, "column %d: %s: %s", col, what, msg);
	}
	return SO_OK;
}

static int
parse_spec(const struct where *w, const so_yaml_node_t *n, so_approver_spec_t *a, char *err,
           size_t errlen)
{
	char msg[256];
	int rc;
	if (n->kind != SO_YAML_MAP)
		return say(w, err, errlen, n->line,
		           "an approver requirement is {group: G, count: N} or {principals: [...], "
		           "count: N}");
	a->count = 1;
	for (size_t i = 0; i < n->n; i++) {
		const char *k = n->keys[i];
		const so_yaml_node_t *v = n->items[i];
		msg[0] = '\0';
		if (!strcmp(k, "group")) {
			if (v->kind == SO_YAML_SCALAR && looks_like_path(v->value)) {
				if ((rc = compile_at(w, v, SO_EXPR_PATH, "approvers.group", &a->group_expr, err,
				                     errlen)))
					return rc;
				continue;
			}
			rc = so_cfg_scalar_string(v, &a->group, msg, sizeof(msg));
		} else if (!strcmp(k, "principals")) {
			rc = so_cfg_string_list(v, &a->principals, NULL, msg, sizeof(msg));
		} else if (!strcmp(k, "count")) {
			rc = so_cfg_scalar_int(v, 1, 100, &a->count, msg, sizeof(msg));
		} else {
			return say(w, err, errlen, n->key_lines[i], "unknown key 'approvers.%s'", k);
		}
		if (rc)
			return say(w, err, errlen, v->line, "approvers.%s: %s", k, msg);
	}
	if ((!a->group && !a->group_expr) == !a->principals)
		return say(w, err, errlen, n->line,
		           "an approver requirement names either a group or principals");
	return SO_OK;
}

static int
parse_specs(const struct where *w, const so_yaml_node_t *n, so_approver_spec_t **out,
            size_t *count, char *err, size_t errlen)
{
	size_t k = n->kind == SO_YAML_SEQ ? n->n : 1;
	if (k > MAX_REQUIREMENTS || !k)
		return say(w, err, errlen, n->line, "between 1 and %d approver requirements",
		           MAX_REQUIREMENTS);
	so_approver_spec_t *list = calloc(k, sizeof(*list));
	if (!list)
		return SO_ENOMEM;
	*out = list;
	for (size_t i = 0; i < k; i++) {
		*count = i + 1;
		int rc = parse_spec(w, n->kind == SO_YAML_SEQ ? n->items[i] : n, &list[i], err, errlen);
		if (rc)
			return rc;
	}
	return SO_OK;
}

int
so_policy_cfg_approvers(const so_yaml_node_t *n, void *target, char *err, size_t errlen)
{
	so_config_t *cfg = target;
	struct where w = {NULL};
	so_policy_cfg_free_approvers(target);
	if (cfg->loading)
		cfg->loading->approvers_line = n->line;
	return parse_specs(&w, n, &cfg->policy.approvers, &cfg->policy.napprovers, err, errlen);
}

void
so_policy_cfg_free_approvers(void *target)
{
	so_policy_t *p = &((so_config_t *)target)->policy;
	for (size_t i = 0; i < p->napprovers; i++)
		so_approver_spec_free(&p->approvers[i]);
	free(p->approvers);
	p->approvers = NULL;
	p->napprovers = 0;
}

static int
parse_duration(const struct where *w, const so_yaml_node_t *v, const char *what, int64_t *out,
               char *err, size_t errlen)
{
	if (v->kind != SO_YAML_SCALAR || so_clock_parse_duration(v->value, out) || *out < 1 ||
	    *out > 86400)
		return say(w, err, errlen, v->line, "%s: expected a duration from 1s to 1d (like 10m)",
		           what);
	return SO_OK;
}

static int
parse_escalate(const struct where *w, const so_yaml_node_t *n, so_rule_t *rule, char *err,
               size_t errlen)
{
	if (n->kind != SO_YAML_MAP)
		return say(w, err, errlen, n->line, "escalate is {after: 10m, to: {group: G}}");
	for (size_t i = 0; i < n->n; i++) {
		const so_yaml_node_t *v = n->items[i];
		int rc;
		if (!strcmp(n->keys[i], "after")) {
			if ((rc = parse_duration(w, v, "escalate.after", &rule->escalate_after, err, errlen)))
				return rc;
		} else if (!strcmp(n->keys[i], "to")) {
			const so_yaml_node_t *g = so_yaml_get(v, "group");
			if (!g || g->kind != SO_YAML_SCALAR || v->n != 1)
				return say(w, err, errlen, v->line, "escalate.to is {group: G}");
			if (!(rule->escalate_group = strdup(g->value)))
				return SO_ENOMEM;
		} else {
			return say(w, err, errlen, n->key_lines[i], "unknown key 'escalate.%s'", n->keys[i]);
		}
	}
	if (!rule->escalate_after || !rule->escalate_group)
		return say(w, err, errlen, n->line, "escalate needs both after and to");
	return SO_OK;
}

/* YAML to JSON for `route` (scalars stay strings). */
static json_t *
yaml_to_json(const so_yaml_node_t *n)
{
	if (n->kind == SO_YAML_SCALAR)
		return json_string(n->value);
	json_t *o = n->kind == SO_YAML_MAP ? json_object() : json_array();
	for (size_t i = 0; o && i < n->n; i++) {
		json_t *v = yaml_to_json(n->items[i]);
		if (n->kind == SO_YAML_MAP)
			json_object_set_new(o, n->keys[i], v);
		else
			json_array_append_new(o, v);
	}
	return o;
}

static int
parse_rule(const struct where *w, const so_yaml_node_t *n, const so_policy_t *pol, so_rule_t *rule,
           char *err, size_t errlen)
{
	char msg[256];
	int rc;
	const so_yaml_node_t *when = NULL;
	int has_decide = 0;
	if (n->kind != SO_YAML_MAP)
		return say(w, err, errlen, n->line, "each rule is a mapping with name, when and decide");
	rule->line = n->line;
	rule->owner_may_approve = -1;
	const so_yaml_node_t *name = so_yaml_get(n, "name");
	if (!name || name->kind != SO_YAML_SCALAR || !*name->value)
		return say(w, err, errlen, n->line, "a rule needs a name");
	if (!(rule->name = strdup(name->value)))
		return SO_ENOMEM;
	for (size_t i = 0; i < n->n; i++) {
		const char *k = n->keys[i];
		const so_yaml_node_t *v = n->items[i];
		rc = SO_OK;
		msg[0] = '\0';
		if (!strcmp(k, "name")) {
			continue;
		} else if (!strcmp(k, "when")) {
			when = v;
			char what[300];
			snprintf(what, sizeof(what), "rule '%s': when", rule->name);
			if ((rc = compile_at(w, v, SO_EXPR_CONDITION, what, &rule->when, err, errlen)))
				return rc;
			continue;
		} else if (!strcmp(k, "decide")) {
			has_decide = 1;
			if (parse_outcome(v, &rule->decide))
				return say(w, err, errlen, v->line, "rule '%s': decide is allow, review or deny",
				           rule->name);
			continue;
		} else if (!strcmp(k, "reason")) {
			rc = so_cfg_scalar_string(v, &rule->reason, msg, sizeof(msg));
		} else if (!strcmp(k, "approvers")) {
			if ((rc = parse_specs(w, v, &rule->approvers, &rule->napprovers, err, errlen)))
				return rc;
			continue;
		} else if (!strcmp(k, "owner_may_approve")) {
			int b;
			rc = so_cfg_scalar_bool(v, &b, msg, sizeof(msg));
			rule->owner_may_approve = b;
		} else if (!strcmp(k, "ttl")) {
			if ((rc = parse_duration(w, v, "ttl", &rule->ttl, err, errlen)))
				return rc;
			continue;
		} else if (!strcmp(k, "escalate")) {
			if ((rc = parse_escalate(w, v, rule, err, errlen)))
				return rc;
			continue;
		} else if (!strcmp(k, "route")) {
			if (v->kind != SO_YAML_MAP)
				return say(w, err, errlen, v->line, "route is a mapping like {slack: \"#ops\"}");
			if (!(rule->route = yaml_to_json(v)))
				return SO_ENOMEM;
			continue;
		} else if (!strcmp(k, "require")) {
			size_t cnt = v->kind == SO_YAML_SEQ ? v->n : 1;
			if (cnt > MAX_REQUIRE)
				return say(w, err, errlen, v->line, "at most %d required fields", MAX_REQUIRE);
			if (!(rule->require = calloc(cnt, sizeof(*rule->require))))
				return SO_ENOMEM;
			for (size_t j = 0; j < cnt; j++) {
				const so_yaml_node_t *f = v->kind == SO_YAML_SEQ ? v->items[j] : v;
				rule->nrequire = j + 1;
				char what[300];
				snprintf(what, sizeof(what), "rule '%s': require", rule->name);
				if ((rc = compile_at(w, f, SO_EXPR_PATH, what, &rule->require[j], err, errlen)))
					return rc;
			}
			continue;
		} else {
			return say(w, err, errlen, n->key_lines[i], "rule '%s': unknown key '%s'", rule->name,
			           k);
		}
		if (rc)
			return say(w, err, errlen, v->line, "rule '%s': %s: %s", rule->name, k, msg);
	}
	if (!when || !has_decide)
		return say(w, err, errlen, n->line, "rule '%s' needs when and decide", rule->name);
	if (rule->decide != SO_OUT_REVIEW &&
	    (rule->napprovers || rule->escalate_group || rule->ttl || rule->route))
		return say(w, err, errlen, n->line,
		           "rule '%s': approvers, ttl, escalate and route only apply to decide: review",
		           rule->name);
	(void)pol;
	return SO_OK;
}

static int
add_rules(so_config_t *cfg, const struct where *w, const so_yaml_node_t *n, char *err,
          size_t errlen)
{
	so_policy_t *p = &cfg->policy;
	if (n->kind != SO_YAML_SEQ)
		return say(w, err, errlen, n->line, "rules is a list of rules");
	if (p->nrules + n->n > MAX_RULES)
		return say(w, err, errlen, n->line, "more than %d rules", MAX_RULES);
	so_rule_t *rules = realloc(p->rules, (p->nrules + n->n + 1) * sizeof(*rules));
	if (!rules)
		return SO_ENOMEM;
	p->rules = rules;
	for (size_t i = 0; i < n->n; i++) {
		so_rule_t *rule = &p->rules[p->nrules];
		memset(rule, 0, sizeof(*rule));
		p->nrules++;
		int rc = parse_rule(w, n->items[i], p, rule, err, errlen);
		if (rc)
			return rc;
		for (size_t j = 0; j + 1 < p->nrules; j++)
			if (!strcmp(p->rules[j].name, rule->name))
				return say(w, err, errlen, n->items[i]->line, "rule '%s' is defined twice",
				           rule->name);
	}
	return SO_OK;
}

int
so_policy_cfg_rules(const so_yaml_node_t *n, void *target, char *err, size_t errlen)
{
	struct where w = {NULL};
	return add_rules(target, &w, n, err, errlen);
}

void
so_policy_cfg_free_rules(void *target)
{
	so_policy_t *p = &((so_config_t *)target)->policy;
	for (size_t i = 0; i < p->nrules; i++)
		so_rule_free(&p->rules[i]);
	free(p->rules);
	p->rules = NULL;
	p->nrules = 0;
}

static int
include_file(so_config_t *cfg, const char *path, char *err, size_t errlen)
{
	so_yaml_node_t *root = NULL;
	char msg[512];
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "cannot open included file %s: %s", path, strerror(errno));
		return SO_ECONFIG;
	}
	so_buf_t text;
	so_buf_init(&text, SO_YAML_MAX_BYTES);
	int rc = so_buf_read_file(&text, f);
	fclose(f);
	if (rc) {
		so_buf_free(&text);
		if (rc == SO_ETOOLARGE)
			snprintf(err, errlen, "included file %s is too large", path);
		else
			snprintf(err, errlen, "cannot read included file %s", path);
		return SO_ECONFIG;
	}
	if (cfg->loading) {
		/* The version must not depend on where signoffd was started: name the file as the
		 * configuration does, relative to its directory. */
		const char *name = path;
		size_t dl = strlen(cfg->loading->dir);
		if (dl && !strncmp(path, cfg->loading->dir, dl) && path[dl] == '/')
			name = path + dl + 1;
		so_buf_printf(&cfg->loading->text, "\n--- %s\n%s", name, so_buf_cstr(&text));
	}
	rc = so_yaml_parse(so_buf_cstr(&text), text.len, &root, msg, sizeof(msg));
	so_buf_free(&text);
	if (rc) {
		int line, used = 0;
		if (sscanf(msg, "line %d: %n", &line, &used) == 1 && used > 0)
			snprintf(err, errlen, "@%s:%d: %s", path, line, msg + used);
		else
			snprintf(err, errlen, "@%s: %s", path, msg);
		return SO_ECONFIG;
	}
	struct where w = {path};
	for (size_t i = 0; i < root->n && rc == SO_OK; i++) {
		if (!strcmp(root->keys[i], "rules"))
			rc = add_rules(cfg, &w, root->items[i], err, errlen);
		else
			rc = say(&w, err, errlen, root->key_lines[i],
			         "unknown key '%s' (an included policy file holds rules:)", root->keys[i]);
	}
	so_yaml_free(root);
	return rc;
}

int
so_policy_cfg_include(const so_yaml_node_t *n, void *target, char *err, size_t errlen)
{
	so_config_t *cfg = target;
	char **patterns = NULL;
	size_t count = 0;
	int rc = so_cfg_string_list(n, &patterns, &count, err, errlen);
	if (rc)
		return rc;
	size_t files = 0;
	for (size_t i = 0; i < count && rc == SO_OK; i++) {
		char pattern[8192 + 2];
		if (patterns[i][0] == '/' || !cfg->loading || !cfg->loading->dir[0])
			snprintf(pattern, sizeof(pattern), "%.4096s", patterns[i]);
		else
			snprintf(pattern, sizeof(pattern), "%.4096s/%.4096s", cfg->loading->dir, patterns[i]);
		glob_t g;
		int grc = glob(pattern, GLOB_ERR, NULL, &g);
		if (grc == GLOB_NOMATCH) {
			snprintf(err, errlen, "line %d: policy.include: nothing matches %s", n->line, pattern);
			rc = SO_ECONFIG;
		} else if (grc) {
			snprintf(err, errlen, "line %d: policy.include: cannot read %s", n->line, pattern);
			rc = SO_ECONFIG;
		}
		for (size_t k = 0; grc == 0 && k < g.gl_pathc && rc == SO_OK; k++) {
			if (++files > MAX_INCLUDES) {
				snprintf(err, errlen, "line %d: more than %d included files", n->line,
				         MAX_INCLUDES);
				rc = SO_ECONFIG;
				break;
			}
			rc = include_file(cfg, g.gl_pathv[k], err, errlen);
			if (rc && err[0] != '@') {
				/* Name the include line for errors that do not name their own file. */
				char inner[512];
				snprintf(inner, sizeof(inner), "%s", err);
				snprintf(err, errlen, "line %d: policy.include: %s", n->line, inner);
			}
		}
		if (grc == 0)
			globfree(&g);
	}
	so_cfg_free_list(patterns);
	return rc;
}

int
so_policy_cfg_timezone(const so_yaml_node_t *n, void *target, char *err, size_t errlen)
{
	so_config_t *cfg = target;
	if (n->kind != SO_YAML_SCALAR) {
		snprintf(err, errlen, "timezone is UTC, an offset like +02:00, or a name like "
		         "Europe/Berlin");
		return SO_ECONFIG;
	}
	so_tz_free(&cfg->policy.tz);
	return so_tz_load(n->value, NULL, &cfg->policy.tz, err, errlen);
}
