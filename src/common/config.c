#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/error.h"

#define FIELD(target, off, type) ((type *)(void *)((char *)(target) + (off)))

int
so_cfg_scalar_string(const so_yaml_node_t *n, char **out, char *err, size_t errlen)
{
	if (n->kind != SO_YAML_SCALAR) {
		snprintf(err, errlen, "expected a text value");
		return SO_ECONFIG;
	}
	char *s = strdup(n->value);
	if (!s)
		return SO_ENOMEM;
	*out = s;
	return SO_OK;
}

int
so_cfg_scalar_int(const so_yaml_node_t *n, int64_t min, int64_t max, int64_t *out, char *err,
                  size_t errlen)
{
	char *end;
	if (n->kind != SO_YAML_SCALAR || !*n->value) {
		snprintf(err, errlen, "expected a whole number");
		return SO_ECONFIG;
	}
	errno = 0;
	long long v = strtoll(n->value, &end, 10);
	if (errno || *end) {
		snprintf(err, errlen, "'%s' is not a whole number", n->value);
		return SO_ECONFIG;
	}
	if (v < min || v > max) {
		snprintf(err, errlen, "%lld is out of range [%" PRId64 ", %" PRId64 "]", v, min, max);
		return SO_ECONFIG;
	}
	*out = (int64_t)v;
	return SO_OK;
}

int
so_cfg_scalar_bool(const so_yaml_node_t *n, int *out, char *err, size_t errlen)
{
	if (n->kind == SO_YAML_SCALAR && (!strcmp(n->value, "true") || !strcmp(n->value, "yes"))) {
		*out = 1;
		return SO_OK;
	}
	if (n->kind == SO_YAML_SCALAR && (!strcmp(n->value, "false") || !strcmp(n->value, "no"))) {
		*out = 0;
		return SO_OK;
	}
	snprintf(err, errlen, "expected true or false");
	return SO_ECONFIG;
}

void
so_cfg_free_list(char **list)
{
	if (!list)
		return;
	for (char **p = list; *p; p++)
		free(*p);
	free(list);
}

int
so_cfg_string_list(const so_yaml_node_t *n, char ***out, size_t *count, char *err, size_t errlen)
{
	size_t k = n->kind == SO_YAML_SEQ ? n->n : 1;
	char **list = calloc(k + 1, sizeof(*list));
	if (!list)
		return SO_ENOMEM;
	for (size_t i = 0; i < k; i++) {
		const so_yaml_node_t *item = n->kind == SO_YAML_SEQ ? n->items[i] : n;
		int rc = so_cfg_scalar_string(item, &list[i], err, errlen);
		if (rc) {
			so_cfg_free_list(list);
			return rc;
		}
	}
	*out = list;
	if (count)
		*count = k;
	return SO_OK;
}

static int
parse_value(const so_cfg_key_t *k, const so_yaml_node_t *n, void *target, char *err, size_t errlen)
{
	int rc;
	switch (k->type) {
	case SO_CFG_STRING: {
		char *s;
		if ((rc = so_cfg_scalar_string(n, &s, err, errlen)))
			return rc;
		char **slot = FIELD(target, k->offset, char *);
		free(*slot);
		*slot = s;
		return SO_OK;
	}
	case SO_CFG_INT:
		return so_cfg_scalar_int(n, k->min, k->max, FIELD(target, k->offset, int64_t), err,
		                         errlen);
	case SO_CFG_DURATION: {
		int64_t secs;
		if (n->kind != SO_YAML_SCALAR || so_clock_parse_duration(n->value, &secs)) {
			snprintf(err, errlen, "'%s' is not a duration (like 30s, 10m, 2h, 1d)",
			         n->kind == SO_YAML_SCALAR ? n->value : "?");
			return SO_ECONFIG;
		}
		if (secs < k->min || secs > k->max) {
			snprintf(err, errlen, "%" PRId64 "s is out of range [%" PRId64 "s, %" PRId64 "s]",
			         secs, k->min, k->max);
			return SO_ECONFIG;
		}
		*FIELD(target, k->offset, int64_t) = secs;
		return SO_OK;
	}
	case SO_CFG_BOOL: {
		int b;
		if ((rc = so_cfg_scalar_bool(n, &b, err, errlen)))
			return rc;
		*FIELD(target, k->offset, int64_t) = b;
		return SO_OK;
	}
	case SO_CFG_ENUM:
		if (n->kind == SO_YAML_SCALAR) {
			for (int i = 0; k->choices[i]; i++) {
				if (strcmp(n->value, k->choices[i]) == 0) {
					*FIELD(target, k->offset, int) = i;
					return SO_OK;
				}
			}
		}
		{
			size_t off = (size_t)snprintf(err, errlen, "expected one of:");
			for (int i = 0; k->choices[i] && off < errlen; i++)
				off += (size_t)snprintf(err + off, errlen - off, " %s", k->choices[i]);
		}
		return SO_ECONFIG;
	case SO_CFG_CUSTOM:
		return k->custom(n, target, err, errlen);
	}
	return SO_EINVAL;
}

static int
apply_default(const so_cfg_key_t *k, void *target, char *err, size_t errlen)
{
	if (!k->def)
		return SO_OK;
	so_yaml_node_t n = {.kind = SO_YAML_SCALAR, .line = 0, .value = (char *)k->def, .plain = 1};
	return parse_value(k, &n, target, err, errlen);
}

static const so_cfg_key_t *
find_key(const so_cfg_key_t *table, const char *section, const char *name)
{
	for (const so_cfg_key_t *k = table; k->section; k++) {
		if (strcmp(k->section, section))
			continue;
		if (!name ? !k->name : (k->name && !strcmp(k->name, name)))
			return k;
	}
	return NULL;
}

static int
section_known(const so_cfg_key_t *table, const char *section)
{
	for (const so_cfg_key_t *k = table; k->section; k++)
		if (!strcmp(k->section, section))
			return 1;
	return 0;
}

int
so_cfg_load(const so_cfg_key_t *table, const so_yaml_node_t *root, void *target,
            const char *file, char *err, size_t errlen)
{
	char msg[512];
	int rc;

	for (const so_cfg_key_t *k = table; k->section; k++) {
		if ((rc = apply_default(k, target, msg, sizeof(msg)))) {
			snprintf(err, errlen, "%s: default of %s.%s: %s", file, k->section,
			         k->name ? k->name : "", msg);
			return rc;
		}
	}
	for (size_t i = 0; i < root->n; i++) {
		const char *sec = root->keys[i];
		const so_yaml_node_t *sn = root->items[i];
		if (!section_known(table, sec)) {
			snprintf(err, errlen, "%s:%d: unknown key '%s'", file, root->key_lines[i], sec);
			return SO_ECONFIG;
		}
		const so_cfg_key_t *whole = find_key(table, sec, NULL);
		if (whole) {
			if ((rc = parse_value(whole, sn, target, msg, sizeof(msg)))) {
				/* Custom parsers may say "line N: ..." for a deeper node. */
				int line = sn->line, used = 0;
				if (msg[0] == '@')
					snprintf(err, errlen, "%s", msg + 1);
				else if (sscanf(msg, "line %d: %n", &line, &used) == 1 && used > 0)
					snprintf(err, errlen, "%s:%d: %s", file, line, msg + used);
				else
					snprintf(err, errlen, "%s:%d: %s: %s", file, sn->line, sec, msg);
				return rc;
			}
			continue;
		}
		if (sn->kind != SO_YAML_MAP) {
			snprintf(err, errlen, "%s:%d: '%s' must be a mapping", file, sn->line, sec);
			return SO_ECONFIG;
		}
		for (size_t j = 0; j < sn->n; j++) {
			const so_cfg_key_t *k = find_key(table, sec, sn->keys[j]);
			if (!k) {
				snprintf(err, errlen, "%s:%d: unknown key '%s.%s'", file, sn->key_lines[j],
				         sec, sn->keys[j]);
				return SO_ECONFIG;
			}
			if ((rc = parse_value(k, sn->items[j], target, msg, sizeof(msg)))) {
				int line = sn->items[j]->line, used = 0;
				if (msg[0] == '@')
					snprintf(err, errlen, "%s", msg + 1);
				else if (sscanf(msg, "line %d: %n", &line, &used) == 1 && used > 0)
					snprintf(err, errlen, "%s:%d: %s", file, line, msg + used);
				else
					snprintf(err, errlen, "%s:%d: %s.%s: %s", file, line, sec, sn->keys[j], msg);
				return rc;
			}
		}
	}
	return SO_OK;
}

void
so_cfg_free(const so_cfg_key_t *table, void *target)
{
	for (const so_cfg_key_t *k = table; k->section; k++) {
		if (k->type == SO_CFG_STRING) {
			char **slot = FIELD(target, k->offset, char *);
			free(*slot);
			*slot = NULL;
		} else if (k->type == SO_CFG_CUSTOM && k->custom_free) {
			k->custom_free(target);
		}
	}
}

void
so_cfg_print_help(const so_cfg_key_t *table, FILE *out)
{
	static const char *const type_names[] = {"text", "integer", "duration", "bool", "choice",
	                                         "structure"};
	for (const so_cfg_key_t *k = table; k->section; k++) {
		char name[128];
		snprintf(name, sizeof(name), "%s%s%s", k->section, k->name ? "." : "",
		         k->name ? k->name : "");
		fprintf(out, "  %-26s %-9s", name, type_names[k->type]);
		if (k->def)
			fprintf(out, " default %s", *k->def ? k->def : "\"\"");
		if (k->type == SO_CFG_INT || k->type == SO_CFG_DURATION)
			fprintf(out, " [%" PRId64 "..%" PRId64 "]", k->min, k->max);
		if (k->type == SO_CFG_ENUM) {
			fprintf(out, " (");
			for (int i = 0; k->choices[i]; i++)
				fprintf(out, "%s%s", i ? "|" : "", k->choices[i]);
			fprintf(out, ")");
		}
		fprintf(out, "\n      %s\n", k->help);
	}
}
