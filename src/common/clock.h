/**
 * Time as integer milliseconds since the Unix epoch, and its RFC 3339 form.
 * The pure modules (core, policy) never call these: the daemon passes `now` in.
 */
#ifndef SO_COMMON_CLOCK_H
#define SO_COMMON_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/** Wall-clock time in milliseconds since the epoch. */
int64_t so_clock_now_ms(void);
/** Monotonic time in milliseconds (for intervals only). */
int64_t so_clock_mono_ms(void);
/** The CLOCK_MONOTONIC time `ms` from now, for pthread_cond_timedwait on a condition made
 * with that clock. */
void so_clock_mono_after(int64_t ms, struct timespec *ts);
/** Format `ms` as "YYYY-MM-DDTHH:MM:SS.mmmZ" into `out` (at least 25 bytes). */
void so_clock_format(int64_t ms, char *out, size_t outlen);
/**
 * Parse "YYYY-MM-DDTHH:MM:SS[.fff]Z" (RFC 3339, UTC) into milliseconds since the epoch.
 * Returns SO_OK or SO_EINVAL.
 */
int so_clock_parse_rfc3339(const char *s, int64_t *ms);
/**
 * Parse a duration: an integer (seconds) or an integer followed by s, m, h or d.
 * Stores seconds in `*secs`. Returns SO_OK or SO_EINVAL.
 */
int so_clock_parse_duration(const char *s, int64_t *secs);

#endif
