/*
 * What a request looks like to a baseline: kind, verb, environment, resource prefix and
 * sizes, read once from the action and context without allocating.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomaly/internal.h"
#include "common/json.h"

/** Longest command[1] taken as a sub-command ("rollout", "apply", "s3"). */
#define SUBVERB_MAX 24
/** Deepest nesting the argument length walks; deeper values are not counted. */
#define ARG_DEPTH_MAX 64

static const char *const size_names[SO_ANOMALY_NSIZES] = {
	[SO_ANOMALY_SIZE_ROWS] = "rows",       [SO_ANOMALY_SIZE_ROW_COUNT] = "row_count",
	[SO_ANOMALY_SIZE_RECORDS] = "records", [SO_ANOMALY_SIZE_COUNT] = "count",
	[SO_ANOMALY_SIZE_BYTES] = "bytes",     [SO_ANOMALY_SIZE_SIZE] = "size",
	[SO_ANOMALY_SIZE_FILES] = "files",     [SO_ANOMALY_SIZE_ARG_BYTES] = "argument_bytes",
};

const char *
so_anomaly_size_name(int i)
{
	return i >= 0 && i < SO_ANOMALY_NSIZES ? size_names[i] : NULL;
}

uint64_t
so_anomaly_hash(const char *const *parts, size_t n)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	for (size_t i = 0; i < n; i++) {
		for (const unsigned char *p = (const unsigned char *)parts[i]; *p; p++) {
			h ^= *p;
			h *= UINT64_C(0x100000001b3);
		}
		h *= UINT64_C(0x100000001b3); /* the separator: a 0 byte (x ^ 0 == x) */
	}
	return h;
}

void
so_anomaly_copy_name(char *dst, size_t cap, const char *src, size_t len)
{
	if (cap == 0)
		return;
	if (!src)
		len = 0;
	if (len > cap - 1)
		len = cap - 1;
	len = so_utf8_prefix(src ? src : "", len);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[i] = c < 0x20 || c == 0x7f ? '?' : c == '`' ? '\'' : (char)c;
	}
	dst[len] = '\0';
}

/* A string member as (pointer, length), or NULL. */
static const char *
str_member(const json_t *o, const char *key, size_t *len)
{
	const json_t *v = json_object_get(o, key);
	if (!json_is_string(v))
		return NULL;
	*len = json_string_length(v);
	return json_string_value(v);
}

static int
is_subverb(const char *s, size_t len)
{
	if (len == 0 || len > SUBVERB_MAX || s[0] < 'a' || s[0] > 'z')
		return 0;
	for (size_t i = 1; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

static void
command_verb(const json_t *argv, char *out, size_t cap)
{
	const json_t *first = json_array_get(argv, 0);
	const json_t *second = json_array_get(argv, 1);
	char buf[SO_ANOMALY_VERB_LEN * 2];

	if (!json_is_string(first))
		return;
	const char *s = json_string_value(first);
	size_t len = json_string_length(first);
	/* The base name: after the last '/' (a trailing '/' keeps the whole word). */
	for (size_t i = len; i > 0; i--) {
		if (s[i - 1] == '/' && i < len) {
			s += i;
			len -= i;
			break;
		}
	}
	if (len > SO_ANOMALY_VERB_LEN - 1)
		len = SO_ANOMALY_VERB_LEN - 1;
	memcpy(buf, s, len);
	if (json_is_string(second) && is_subverb(json_string_value(second), json_string_length(second))) {
		buf[len++] = ' ';
		memcpy(buf + len, json_string_value(second), json_string_length(second));
		len += json_string_length(second);
	}
	so_anomaly_copy_name(out, cap, buf, len);
}

static void
tool_verb(const json_t *action, char *out, size_t cap)
{
	size_t tlen = 0, slen = 0;
	const char *tool = str_member(action, "tool", &tlen);
	const char *server = str_member(action, "server", &slen);
	char buf[SO_ANOMALY_VERB_LEN * 2];
	size_t len = 0;

	if (!tool)
		return;
	if (server && slen) {
		if (slen > SO_ANOMALY_VERB_LEN - 1)
			slen = SO_ANOMALY_VERB_LEN - 1;
		memcpy(buf, server, slen);
		buf[slen] = '/';
		len = slen + 1;
	}
	if (tlen > sizeof(buf) - len)
		tlen = sizeof(buf) - len;
	memcpy(buf + len, tool, tlen);
	len += tlen;
	so_anomaly_copy_name(out, cap, buf, len);
}

/* The resource the action names, as (pointer, length), with the rule documented in the header. */
static const char *
resource_of(const json_t *action, size_t *len)
{
	const char *s = str_member(action, "resource", len);
	if (s && *len)
		return s;
	s = str_member(action, "path", len);
	if (s && *len) {
		while (*len && *s == '/') {
			s++;
			(*len)--;
		}
		return s;
	}
	s = str_member(action, "url", len);
	if (s && *len) {
		const char *host = memmem(s, *len, "://", 3);
		if (host) {
			host += 3;
			*len -= (size_t)(host - s);
			s = host;
			size_t i = 0;
			while (i < *len && s[i] != '/' && s[i] != ':' && s[i] != '?' && s[i] != '#')
				i++;
			*len = i;
		}
		return s;
	}
	return NULL;
}

static void
resource_prefix(const json_t *action, char *out, size_t cap)
{
	size_t len = 0;
	const char *s = resource_of(action, &len);
	if (!s)
		return;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '/' || s[i] == ':') {
			len = i + 1;
			break;
		}
	}
	so_anomaly_copy_name(out, cap, s, len);
}

/* A size: a non-negative number, or a string of digits with an optional fraction. */
static double
size_value(const json_t *v)
{
	if (json_is_integer(v))
		return json_integer_value(v) >= 0 ? (double)json_integer_value(v) : -1;
	if (json_is_real(v))
		return json_real_value(v) >= 0 ? json_real_value(v) : -1;
	if (!json_is_string(v))
		return -1;
	const char *s = json_string_value(v);
	size_t len = json_string_length(v), i = 0, digits = 0;
	while (i < len && s[i] >= '0' && s[i] <= '9')
		i++, digits++;
	if (i < len && s[i] == '.') {
		i++;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (digits == 0 || digits > 18 || i != len)
		return -1;
	return strtod(s, NULL);
}

static void
find_sizes(const json_t *o, double sizes[SO_ANOMALY_NSIZES])
{
	if (!json_is_object(o))
		return;
	for (int i = 0; i < SO_ANOMALY_SIZE_ARG_BYTES; i++) {
		double v = size_value(json_object_get(o, size_names[i]));
		if (v >= 0 && isfinite(v) && v > sizes[i])
			sizes[i] = v;
	}
}

static size_t
digits_len(json_int_t v)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, v);
	return n > 0 ? (size_t)n : 0;
}

static size_t
string_len(const char *s, size_t n)
{
	size_t len = 2;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
			len += 2;
		else if (c < 0x20)
			len += 6;
		else
			len++;
	}
	return len;
}

/* The length of so_json_canonical(v), computed without building it. */
static size_t
canonical_len(const json_t *v, int depth)
{
	const char *key;
	json_t *item;
	size_t i, len;

	switch (json_typeof(v)) {
	case JSON_NULL:
	case JSON_TRUE: return 4;
	case JSON_FALSE: return 5;
	case JSON_INTEGER: return digits_len(json_integer_value(v));
	case JSON_REAL: {
		char buf[40];
		double d = json_real_value(v);
		int n = d == 0 ? 1 : snprintf(buf, sizeof(buf), "%.17g", d);
		return n > 0 ? (size_t)n : 0;
	}
	case JSON_STRING: return string_len(json_string_value(v), json_string_length(v));
	case JSON_ARRAY:
		len = 2;
		json_array_foreach(v, i, item) {
			len += i ? 1 : 0;
			if (depth < ARG_DEPTH_MAX)
				len += canonical_len(item, depth + 1);
		}
		return len;
	case JSON_OBJECT:
		len = 2;
		i = 0;
		json_object_foreach((json_t *)v, key, item) {
			len += (i++ ? 1 : 0) + string_len(key, strlen(key)) + 1;
			if (depth < ARG_DEPTH_MAX)
				len += canonical_len(item, depth + 1);
		}
		return len;
	}
	return 0;
}

void
so_anomaly_features(const json_t *action, const json_t *context, so_anomaly_features_t *out)
{
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < SO_ANOMALY_NSIZES; i++)
		out->sizes[i] = -1;

	if (json_is_object(action)) {
		size_t len = 0;
		const char *s = str_member(action, "kind", &len);
		so_anomaly_copy_name(out->kind, sizeof(out->kind), s, s ? len : 0);
		s = str_member(action, "environment", &len);
		so_anomaly_copy_name(out->environment, sizeof(out->environment), s, s ? len : 0);

		const json_t *argv = json_object_get(action, "command");
		const json_t *args = json_object_get(action, "arguments");
		if (json_is_array(argv))
			command_verb(argv, out->verb, sizeof(out->verb));
		else
			tool_verb(action, out->verb, sizeof(out->verb));
		resource_prefix(action, out->prefix, sizeof(out->prefix));

		find_sizes(args, out->sizes);
		find_sizes(json_object_get(action, "context"), out->sizes);
		if (json_is_array(argv))
			out->sizes[SO_ANOMALY_SIZE_ARG_BYTES] = (double)canonical_len(argv, 0);
		else if (args)
			out->sizes[SO_ANOMALY_SIZE_ARG_BYTES] = (double)canonical_len(args, 0);
	}
	find_sizes(context, out->sizes);

	const char *verb_parts[] = {out->kind, out->verb};
	const char *shape_parts[] = {out->kind, out->verb, out->environment};
	const char *env_parts[] = {out->environment};
	const char *prefix_parts[] = {out->prefix};
	out->verb_key = so_anomaly_hash(verb_parts, 2);
	out->shape_key = so_anomaly_hash(shape_parts, 3);
	out->env_key = so_anomaly_hash(env_parts, 1);
	out->prefix_key = so_anomaly_hash(prefix_parts, 1);
}

int
so_anomaly_hour_of_week(int64_t ms, int tz_offset_minutes)
{
	int64_t minutes = (ms >= 0 ? ms / MS_PER_MINUTE : (ms - MS_PER_MINUTE + 1) / MS_PER_MINUTE) +
	                  tz_offset_minutes;
	int64_t hours = minutes >= 0 ? minutes / 60 : (minutes - 59) / 60;
	/* 1970-01-01 00:00 UTC was a Thursday: hour 4 * 24 of the week. */
	int64_t how = (hours + 4 * 24) % SO_ANOMALY_HOURS;
	return (int)(how < 0 ? how + SO_ANOMALY_HOURS : how);
}
