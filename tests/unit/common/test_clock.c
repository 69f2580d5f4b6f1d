/* Durations as configuration writes them, and the RFC 3339 form of times. */
#include "unit.h"

#include "common/clock.h"

static void
assert_duration(const char *text, int64_t want)
{
	int64_t secs = -1;
	int rc = so_clock_parse_duration(text, &secs);
	if (rc != SO_OK)
		fail_msg("'%s' did not parse (%d)", text, rc);
	if (secs != want)
		fail_msg("'%s' gave %lld seconds, not %lld", text, (long long)secs, (long long)want);
}

static void
assert_not_duration(const char *text)
{
	int64_t secs = 12345;
	int rc = so_clock_parse_duration(text, &secs);
	if (rc != SO_EINVAL)
		fail_msg("'%s' was accepted as %lld seconds", text, (long long)secs);
	assert_int_equal(secs, 12345);
}

static void
test_duration_units(void **state)
{
	assert_duration("30s", 30);
	assert_duration("10m", 600);
	assert_duration("2h", 7200);
	assert_duration("1d", 86400);
	assert_duration("45", 45);
	assert_duration("0", 0);
}

static void
test_duration_refuses_garbage(void **state)
{
	assert_not_duration("");
	assert_not_duration("s");
	assert_not_duration("10x");
	assert_not_duration("10ms");
	assert_not_duration("1h30m");
	assert_not_duration("-5s");
	assert_not_duration("1.5h");
	assert_not_duration("99999999999999999999d");
	assert_not_duration("9223372036854775807d");
}

static void
test_format_is_rfc3339_utc_with_milliseconds(void **state)
{
	char out[40];
	so_clock_format(0, out, sizeof(out));
	assert_string_equal(out, "1970-01-01T00:00:00.000Z");
	/* date -u -d @1795486200 → 2026-11-24T02:10:00Z */
	so_clock_format(1795486200123, out, sizeof(out));
	assert_string_equal(out, "2026-11-24T02:10:00.123Z");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_units),
		cmocka_unit_test(test_duration_refuses_garbage),
		cmocka_unit_test(test_format_is_rfc3339_utc_with_milliseconds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
