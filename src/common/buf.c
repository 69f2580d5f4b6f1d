#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/error.h"

void
so_buf_init(so_buf_t *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void
so_buf_free(so_buf_t *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void
so_buf_reset(so_buf_t *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

/* Make room for `n` more bytes plus a NUL. */
static int
buf_reserve(so_buf_t *b, size_t n)
{
	if (n > b->max || b->len > b->max - n)
		return SO_ETOOLARGE;
	size_t need = b->len + n + 1;
	if (need <= b->cap)
		return SO_OK;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	char *p = realloc(b->data, cap);
	if (!p)
		return SO_ENOMEM;
	b->data = p;
	b->cap = cap;
	return SO_OK;
}

int
so_buf_add(so_buf_t *b, const void *p, size_t n)
{
	int rc = buf_reserve(b, n);
	if (rc)
		return rc;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return SO_OK;
}

int
so_buf_adds(so_buf_t *b, const char *s)
{
	return so_buf_add(b, s, strlen(s));
}

int
so_buf_vprintf(so_buf_t *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return SO_EINVAL;
	int rc = buf_reserve(b, (size_t)n);
	if (rc)
		return rc;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return SO_OK;
}

int
so_buf_printf(so_buf_t *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = so_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

const char *
so_buf_cstr(so_buf_t *b)
{
	return b->data ? b->data : "";
}

char *
so_buf_steal(so_buf_t *b)
{
	char *p = b->data;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}

int
so_buf_read_file(so_buf_t *b, FILE *f)
{
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		int rc = so_buf_add(b, chunk, n);
		if (rc != SO_OK)
			return rc;
	}
	return ferror(f) ? SO_EIO : SO_OK;
}

int
so_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
