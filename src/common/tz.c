#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/tz.h"

#define TZIF_MAX (1 << 20)

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t
be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static int
valid_name(const char *s)
{
	if (!*s || *s == '/' || strstr(s, "..") || strlen(s) >= 64)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '/' || *s == '_' || *s == '-' || *s == '+'))
			return 0;
	return 1;
}

/* The v2+ data block of a TZif file: 64-bit transition times. */
static int
parse_tzif(const unsigned char *d, size_t len, so_tz_t *tz)
{
	if (len < 44 || memcmp(d, "TZif", 4) || d[4] < '2')
		return -1;
	/* skip the v1 block */
	uint32_t isut = be32(d + 20), isstd = be32(d + 24), leap = be32(d + 28), timecnt = be32(d + 32),
	         typecnt = be32(d + 36), charcnt = be32(d + 40);
	size_t v1 = 44 + (size_t)timecnt * 5 + (size_t)typecnt * 6 + charcnt + (size_t)leap * 8 +
	            isstd + isut;
	if (v1 + 44 > len)
		return -1;
	const unsigned char *h = d + v1;
	if (memcmp(h, "TZif", 4))
		return -1;
	isut = be32(h + 20), isstd = be32(h + 24), leap = be32(h + 28), timecnt = be32(h + 32);
	typecnt = be32(h + 36), charcnt = be32(h + 40);
	const unsigned char *times = h + 44, *idx = times + (size_t)timecnt * 8,
	                    *types = idx + timecnt;
	if (!typecnt || typecnt > 256 || timecnt > 100000 ||
	    (size_t)(types + (size_t)typecnt * 6 + charcnt + (size_t)leap * 12 + isstd + isut - d) > len)
		return -1;
	tz->times = calloc(timecnt ? timecnt : 1, sizeof(*tz->times));
	tz->offsets = calloc(timecnt ? timecnt : 1, sizeof(*tz->offsets));
	if (!tz->times || !tz->offsets)
		return -1;
	/* before any transition: the first standard (non-DST) type, else type 0 */
	tz->before = (int32_t)be32(types);
	for (uint32_t t = 0; t < typecnt; t++) {
		if (!types[t * 6 + 4]) {
			tz->before = (int32_t)be32(types + t * 6);
			break;
		}
	}
	for (uint32_t i = 0; i < timecnt; i++) {
		if (idx[i] >= typecnt)
			return -1;
		tz->times[i] = be64(times + (size_t)i * 8);
		tz->offsets[i] = (int32_t)be32(types + (size_t)idx[i] * 6);
		if (i && tz->times[i] <= tz->times[i - 1])
			return -1;
	}
	tz->n = timecnt;
	tz->fixed = tz->before; /* a zone without transitions (Etc/GMT-2) has just this offset */
	return 0;
}

int
so_tz_load(const char *spec, const char *dir, so_tz_t *out, char *err, size_t errlen)
{
	char c;
	int hh, mm, used = 0;
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", spec);
	if (!strcmp(spec, "UTC") || !strcmp(spec, "Z"))
		return SO_OK;
	if (sscanf(spec, "%c%2d:%2d%n", &c, &hh, &mm, &used) == 3 && !spec[used] &&
	    (c == '+' || c == '-') && hh <= 14 && mm < 60) {
		out->fixed = (c == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
		return SO_OK;
	}
	if (!valid_name(spec)) {
		snprintf(err, errlen, "timezone '%s' is not UTC, an offset like +02:00, or a zone name "
		         "like Europe/Berlin", spec);
		return SO_ECONFIG;
	}
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir ? dir : SO_TZ_DIR, spec);
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "timezone '%s': cannot read %s: %s", spec, path, strerror(errno));
		return SO_ECONFIG;
	}
	unsigned char *d = malloc(TZIF_MAX);
	size_t len = d ? fread(d, 1, TZIF_MAX, f) : 0;
	fclose(f);
	int bad = !d || parse_tzif(d, len, out);
	free(d);
	if (bad) {
		so_tz_free(out);
		snprintf(err, errlen, "timezone '%s': %s is not a TZif (version 2 or later) file", spec,
		         path);
		return SO_ECONFIG;
	}
	snprintf(out->name, sizeof(out->name), "%s", spec);
	return SO_OK;
}

int32_t
so_tz_offset(const so_tz_t *tz, int64_t t)
{
	if (!tz->n)
		return tz->fixed;
	if (t < tz->times[0])
		return tz->before;
	size_t lo = 0, hi = tz->n; /* the last transition at or before t */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (tz->times[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	return tz->offsets[lo];
}

void
so_tz_free(so_tz_t *tz)
{
	free(tz->times);
	free(tz->offsets);
	tz->times = NULL;
	tz->offsets = NULL;
	tz->n = 0;
}
