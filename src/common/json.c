#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/error.h"
#include "common/json.h"

/* Depth of [ and { outside strings, measured without recursion. */
static int
json_depth_ok(const char *p, size_t len, size_t max_depth)
{
	size_t depth = 0;
	int in_string = 0;
	for (size_t i = 0; i < len; i++) {
		char c = p[i];
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = 0;
			continue;
		}
		if (c == '"') {
			in_string = 1;
		} else if (c == '[' || c == '{') {
			if (++depth > max_depth)
				return 0;
		} else if (c == ']' || c == '}') {
			if (depth)
				depth--;
		}
	}
	return 1;
}

/* Walk the parsed tree (its depth is already bounded) checking sizes. */
static int
json_sizes_ok(const json_t *v, const so_json_limits_t *lim, char *err, size_t errlen)
{
	const char *key;
	json_t *item;
	size_t i;

	switch (json_typeof(v)) {
	case JSON_STRING:
		if (json_string_length(v) > lim->max_string) {
			snprintf(err, errlen, "a string is %zu bytes long; the limit is %zu",
			         json_string_length(v), lim->max_string);
			return 0;
		}
		return 1;
	case JSON_ARRAY:
		if (json_array_size(v) > lim->max_items) {
			snprintf(err, errlen, "a list has %zu items; the limit is %zu",
			         json_array_size(v), lim->max_items);
			return 0;
		}
		json_array_foreach(v, i, item) {
			if (!json_sizes_ok(item, lim, err, errlen))
				return 0;
		}
		return 1;
	case JSON_OBJECT:
		if (json_object_size(v) > lim->max_items) {
			snprintf(err, errlen, "an object has %zu members; the limit is %zu",
			         json_object_size(v), lim->max_items);
			return 0;
		}
		json_object_foreach((json_t *)v, key, item) {
			if (strlen(key) > lim->max_string) {
				snprintf(err, errlen, "an object key is %zu bytes long; the limit is %zu",
				         strlen(key), lim->max_string);
				return 0;
			}
			if (!json_sizes_ok(item, lim, err, errlen))
				return 0;
		}
		return 1;
	default:
		return 1;
	}
}

int
so_json_parse(const char *data, size_t len, const so_json_limits_t *lim, json_t **out,
              char *err, size_t errlen)
{
	json_error_t jerr;

	*out = NULL;
	if (!json_depth_ok(data, len, lim->max_depth)) {
		snprintf(err, errlen, "JSON is nested deeper than %zu levels", lim->max_depth);
		return SO_ETOODEEP;
	}
	json_t *v = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!v) {
		snprintf(err, errlen, "malformed JSON at line %d column %d: %s", jerr.line,
		         jerr.column, jerr.text);
		/* jansson quotes the input near the error, possibly half a character of it: the
		 * message goes into JSON answers, so it must be whole UTF-8. */
		if (errlen > 0)
			err[so_utf8_prefix(err, strlen(err))] = '\0';
		return SO_EBADJSON;
	}
	if (!json_sizes_ok(v, lim, err, errlen)) {
		json_decref(v);
		return SO_ETOOLONG;
	}
	*out = v;
	return SO_OK;
}

int
so_json_canonical_string(const char *s, size_t n, so_buf_t *b)
{
	static const char hex[] = "0123456789abcdef";
	int rc = so_buf_add(b, "\"", 1);
	size_t start = 0;
	for (size_t i = 0; i < n && rc == SO_OK; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[7];
		size_t esclen = 2;
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
		} else if (c < 0x20) {
			esc[0] = '\\';
			switch (c) {
			case '\b': esc[1] = 'b'; break;
			case '\f': esc[1] = 'f'; break;
			case '\n': esc[1] = 'n'; break;
			case '\r': esc[1] = 'r'; break;
			case '\t': esc[1] = 't'; break;
			default:
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 15];
				esclen = 6;
			}
		} else {
			continue;
		}
		rc = so_buf_add(b, s + start, i - start);
		if (rc == SO_OK)
			rc = so_buf_add(b, esc, esclen);
		start = i + 1;
	}
	if (rc == SO_OK)
		rc = so_buf_add(b, s + start, n - start);
	if (rc == SO_OK)
		rc = so_buf_add(b, "\"", 1);
	return rc;
}

static int
key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int
so_json_canonical(const json_t *v, so_buf_t *b)
{
	int rc = SO_OK;
	const char *key;
	json_t *item;
	size_t i;

	switch (json_typeof(v)) {
	case JSON_NULL: return so_buf_add(b, "null", 4);
	case JSON_TRUE: return so_buf_add(b, "true", 4);
	case JSON_FALSE: return so_buf_add(b, "false", 5);
	case JSON_INTEGER: return so_buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	case JSON_REAL: {
		double d = json_real_value(v);
		if (!isfinite(d))
			return SO_EINVAL;
		if (d == 0)
			return so_buf_add(b, "0", 1); /* -0.0 and 0.0 are one number */
		return so_buf_printf(b, "%.17g", d);
	}
	case JSON_STRING: return so_json_canonical_string(json_string_value(v), json_string_length(v), b);
	case JSON_ARRAY:
		rc = so_buf_add(b, "[", 1);
		json_array_foreach(v, i, item) {
			if (rc == SO_OK && i)
				rc = so_buf_add(b, ",", 1);
			if (rc == SO_OK)
				rc = so_json_canonical(item, b);
		}
		return rc ? rc : so_buf_add(b, "]", 1);
	case JSON_OBJECT: {
		size_t n = json_object_size(v);
		const char **keys = calloc(n ? n : 1, sizeof(*keys));
		if (!keys)
			return SO_ENOMEM;
		i = 0;
		json_object_foreach((json_t *)v, key, item) keys[i++] = key;
		qsort(keys, n, sizeof(*keys), key_cmp);
		rc = so_buf_add(b, "{", 1);
		for (i = 0; i < n && rc == SO_OK; i++) {
			if (i)
				rc = so_buf_add(b, ",", 1);
			if (rc == SO_OK)
				rc = so_json_canonical_string(keys[i], strlen(keys[i]), b);
			if (rc == SO_OK)
				rc = so_buf_add(b, ":", 1);
			if (rc == SO_OK)
				rc = so_json_canonical(json_object_get(v, keys[i]), b);
		}
		free(keys);
		return rc ? rc : so_buf_add(b, "}", 1);
	}
	}
	return SO_EINVAL;
}

char *
so_json_canonical_str(const json_t *v)
{
	so_buf_t b;
	so_buf_init(&b, (size_t)1 << 30);
	if (so_json_canonical(v, &b) != SO_OK) {
		so_buf_free(&b);
		return NULL;
	}
	if (!b.data)
		return strdup("");
	return so_buf_steal(&b);
}

int
so_json_digest(const json_t *v, char hex[65])
{
	unsigned char md[crypto_hash_sha256_BYTES];
	so_buf_t b;
	so_buf_init(&b, (size_t)1 << 30);
	int rc = so_json_canonical(v, &b);
	if (rc == SO_OK) {
		crypto_hash_sha256(md, (const unsigned char *)so_buf_cstr(&b), b.len);
		sodium_bin2hex(hex, 65, md, sizeof(md));
	}
	so_buf_free(&b);
	return rc;
}

const char *
so_json_str(const json_t *o, const char *key, const char *fallback)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : fallback;
}

void
so_json_join_argv(const json_t *argv, so_buf_t *b)
{
	size_t i;
	json_t *arg;
	json_array_foreach(argv, i, arg) {
		if (i)
			so_buf_add(b, " ", 1);
		so_buf_adds(b, json_is_string(arg) ? json_string_value(arg) : "?");
	}
}

size_t
so_utf8_prefix(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		unsigned char c = p[i];
		size_t len, k;
		unsigned cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			len = 2;
			cp = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			len = 3;
			cp = c & 0x0F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			len = 4;
			cp = c & 0x07;
		} else {
			break;
		}
		if (n - i < len)
			break;
		for (k = 1; k < len && (p[i + k] & 0xC0) == 0x80; k++)
			cp = (cp << 6) | (p[i + k] & 0x3F);
		if (k < len || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			break;
		i += len;
	}
	return i;
}
