/*
 * What every unit test includes: cmocka (with the headers it needs before it) and the
 * error codes. Tests are small static functions named for the behaviour they pin.
 */
#ifndef SO_TESTS_UNIT_H
#define SO_TESTS_UNIT_H

#include <setjmp.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"

/** Assert that `haystack` contains `needle`, printing both when it does not. */
#define assert_contains(haystack, needle)                                                  \
	do {                                                                                   \
		const char *h_ = (haystack), *n_ = (needle);                                       \
		if (!h_ || !strstr(h_, n_))                                                        \
			fail_msg("expected \"%s\" in \"%s\"", n_, h_ ? h_ : "(null)");                \
	} while (0)

/** Assert that `s` starts with `prefix`. */
#define assert_prefix(s, prefix)                                                           \
	do {                                                                                   \
		const char *s_ = (s), *p_ = (prefix);                                              \
		if (!s_ || strncmp(s_, p_, strlen(p_)))                                            \
			fail_msg("expected \"%s\" to start with \"%s\"", s_ ? s_ : "(null)", p_);     \
	} while (0)

#endif
