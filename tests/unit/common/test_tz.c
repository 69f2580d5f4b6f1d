/* Time zones: fixed offsets, IANA zones from the system's TZif files, and bad names. */
#include "unit.h"

#include <string.h>

#include "common/error.h"
#include "common/tz.h"

#define JAN_15_2026 INT64_C(1768478400) /* 2026-01-15T12:00:00Z */
#define JUL_01_2026 INT64_C(1782907200) /* 2026-07-01T12:00:00Z */
/* Europe/Berlin switched to summer time at 2026-03-29T01:00:00Z */
#define BERLIN_DST_2026 INT64_C(1774746000)

static void
load_ok(const char *spec, so_tz_t *tz)
{
	char err[256] = "";
	if (so_tz_load(spec, NULL, tz, err, sizeof(err)) != SO_OK)
		fail_msg("%s: %s", spec, err);
}

static void
test_utc_and_fixed_offsets(void **state)
{
	so_tz_t tz;
	load_ok("UTC", &tz);
	assert_int_equal(so_tz_offset(&tz, JUL_01_2026), 0);
	load_ok("+05:30", &tz);
	assert_int_equal(so_tz_offset(&tz, JUL_01_2026), 5 * 3600 + 1800);
	load_ok("-08:00", &tz);
	assert_int_equal(so_tz_offset(&tz, JAN_15_2026), -8 * 3600);
}

static void
test_a_named_zone_follows_summer_time(void **state)
{
	so_tz_t tz;
	load_ok("Europe/Berlin", &tz);
	assert_int_equal(so_tz_offset(&tz, JAN_15_2026), 3600);
	assert_int_equal(so_tz_offset(&tz, JUL_01_2026), 7200);
	assert_int_equal(so_tz_offset(&tz, BERLIN_DST_2026 - 1), 3600);
	assert_int_equal(so_tz_offset(&tz, BERLIN_DST_2026), 7200);
	so_tz_free(&tz);
	load_ok("America/New_York", &tz);
	assert_int_equal(so_tz_offset(&tz, JAN_15_2026), -5 * 3600);
	assert_int_equal(so_tz_offset(&tz, JUL_01_2026), -4 * 3600);
	so_tz_free(&tz);
}

static void
test_a_zone_without_transitions_keeps_its_offset(void **state)
{
	so_tz_t tz;
	load_ok("Etc/GMT-2", &tz); /* POSIX sign: two hours east */
	assert_int_equal(so_tz_offset(&tz, JUL_01_2026), 7200);
	so_tz_free(&tz);
}

static void
test_bad_zone_names_are_refused(void **state)
{
	static const char *const bad[] = {"Mars/Olympus", "../../etc/passwd", "/etc/localtime",
	                                  "Europe/Berlin;rm", "+25:00", "", NULL};
	for (int i = 0; bad[i]; i++) {
		so_tz_t tz;
		char err[256] = "";
		if (so_tz_load(bad[i], NULL, &tz, err, sizeof(err)) != SO_ECONFIG)
			fail_msg("'%s' was accepted", bad[i]);
		assert_non_null(strstr(err, "timezone"));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utc_and_fixed_offsets),
		cmocka_unit_test(test_a_named_zone_follows_summer_time),
		cmocka_unit_test(test_a_zone_without_transitions_keeps_its_offset),
		cmocka_unit_test(test_bad_zone_names_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
