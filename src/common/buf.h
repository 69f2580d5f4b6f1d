/**
 * A growing byte buffer with a hard limit (the shape of curl's dynbuf).
 * The buffer owns `data`; so_buf_free() releases it. `data` is always NUL-terminated
 * when `len > 0` or after so_buf_cstr().
 */
#ifndef SO_COMMON_BUF_H
#define SO_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

typedef struct so_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max; /**< hard limit on len; appends past it fail with SO_ETOOLARGE */
} so_buf_t;

/** Initialise an empty buffer that may grow to `max` bytes. Allocates nothing. */
void so_buf_init(so_buf_t *b, size_t max);
/** Release the memory and reset to empty. */
void so_buf_free(so_buf_t *b);
/** Forget the contents, keep the memory. */
void so_buf_reset(so_buf_t *b);
/** Append bytes. Returns SO_OK, SO_ENOMEM or SO_ETOOLARGE (buffer unchanged on error). */
int so_buf_add(so_buf_t *b, const void *p, size_t n);
/** Append a NUL-terminated string. */
int so_buf_adds(so_buf_t *b, const char *s);
/** Append formatted text. */
int so_buf_printf(so_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int so_buf_vprintf(so_buf_t *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/**
 * Append the rest of `f`, to its end. Returns SO_OK, SO_ETOOLARGE (the file goes past the
 * limit), SO_ENOMEM, or SO_EIO (a read error, errno set). The caller opens and closes `f`.
 */
int so_buf_read_file(so_buf_t *b, FILE *f);

/** The value of one hex digit (either case), or -1: for %XX and \uXXXX decoders. */
int so_hex_digit(char c);
/** The contents as a C string ("" when empty; never NULL). */
const char *so_buf_cstr(so_buf_t *b);
/** Hand the data to the caller (who free()s it) and reset the buffer. May return NULL when empty. */
char *so_buf_steal(so_buf_t *b);

#endif
