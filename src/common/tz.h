/**
 * Time zones for policy rules (time.hour, time.weekday): a fixed offset, or an IANA zone
 * read once from the system's zoneinfo (TZif) files. Looking up an offset is pure and
 * allocation-free; only so_tz_load() reads a file.
 *
 * A so_tz_t owns its transition table (so_tz_free()).
 */
#ifndef SO_COMMON_TZ_H
#define SO_COMMON_TZ_H

#include <stddef.h>
#include <stdint.h>

typedef struct so_tz {
	char name[64];       /**< "UTC", "+02:00", or "Europe/Berlin" */
	int32_t fixed;       /**< seconds east of UTC when there is no table */
	int64_t *times;      /**< transition instants (Unix seconds), ascending */
	int32_t *offsets;    /**< offset in force from times[i] on */
	size_t n;
	int32_t before;      /**< offset before the first transition */
} so_tz_t;

#define SO_TZ_DIR "/usr/share/zoneinfo"

/**
 * Parse `spec`: "UTC", an offset like "+05:30" or "-08:00", or an IANA name, whose TZif file
 * is read from `dir` (SO_TZ_DIR when NULL). Past the file's last transition the last offset
 * holds (Debian's files list transitions through 2037). SO_OK or SO_ECONFIG with `err`.
 */
int so_tz_load(const char *spec, const char *dir, so_tz_t *out, char *err, size_t errlen);
/** Seconds east of UTC in force at `unix_seconds`. */
int32_t so_tz_offset(const so_tz_t *tz, int64_t unix_seconds);
void so_tz_free(so_tz_t *tz);

#endif
