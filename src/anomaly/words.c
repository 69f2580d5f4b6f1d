/*
 * The words of reasons and descriptions: numbers with thousands separators, durations,
 * rates, what an action is called, and the usual hours and days.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "anomaly/internal.h"
#include "common/json.h"

const char *const so_anomaly_weekday[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                           "Thursday", "Friday", "Saturday"};
static const char *const weekday_short[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

void
so_anomaly_text_init(struct text *t, char *s, size_t cap)
{
	t->s = s;
	t->cap = cap;
	t->len = 0;
	if (cap)
		s[0] = '\0';
}

void
so_anomaly_text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	if (t->cap == 0 || t->len >= t->cap - 1)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= t->cap - t->len) {
		/* Cut: keep whole characters only. */
		t->len = so_utf8_prefix(t->s, t->cap - 1);
		t->s[t->len] = '\0';
		return;
	}
	t->len += (size_t)n;
}

void
so_anomaly_fmt_number(double v, char *out, size_t cap)
{
	if (!isfinite(v) || v >= 1e15 || v <= -1e15) {
		snprintf(out, cap, "%.3g", v);
		return;
	}
	double r = round(v);
	if (fabs(v) < 10 && fabs(v - r) >= 0.05) {
		snprintf(out, cap, "%.1f", v);
		return;
	}
	char digits[32];
	int n = snprintf(digits, sizeof(digits), "%.0f", fabs(r));
	struct text t;
	so_anomaly_text_init(&t, out, cap);
	if (r < 0)
		so_anomaly_text_add(&t, "-");
	for (int i = 0; i < n; i++) {
		so_anomaly_text_add(&t, "%c", digits[i]);
		if (i < n - 1 && (n - 1 - i) % 3 == 0)
			so_anomaly_text_add(&t, ",");
	}
}

void
so_anomaly_fmt_duration(int64_t ms, char *out, size_t cap)
{
	static const struct {
		int64_t ms;
		const char *one, *many;
	} units[] = {
		{MS_PER_DAY, "day", "days"},
		{MS_PER_HOUR, "hour", "hours"},
		{MS_PER_MINUTE, "minute", "minutes"},
		{1000, "second", "seconds"},
	};
	if (ms < 0)
		ms = 0;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (ms >= units[i].ms || i == sizeof(units) / sizeof(units[0]) - 1) {
			int64_t n = (ms + units[i].ms / 2) / units[i].ms;
			snprintf(out, cap, "%lld %s", (long long)n, n == 1 ? units[i].one : units[i].many);
			return;
		}
	}
}

void
so_anomaly_fmt_rate(double per_hour, char *out, size_t cap)
{
	char n[32];
	if (per_hour >= 60) {
		so_anomaly_fmt_number(round(per_hour / 60), n, sizeof(n));
		snprintf(out, cap, "%s a minute", n);
	} else if (per_hour >= 0.95) {
		so_anomaly_fmt_number(round(per_hour), n, sizeof(n));
		snprintf(out, cap, "%s an hour", n);
	} else if (per_hour > 0) {
		double every = round(1 / per_hour);
		if (every < 2)
			every = 2;
		so_anomaly_fmt_number(every, n, sizeof(n));
		snprintf(out, cap, "1 every %s hours", n);
	} else {
		snprintf(out, cap, "none");
	}
}

static int
is_tool_kind(const char *kind)
{
	size_t n = strlen(kind);
	return n >= 5 && !strcmp(kind + n - 5, ".tool");
}

void
so_anomaly_fmt_doing(const char *kind, const char *verb, char *out, size_t cap)
{
	if (!verb[0])
		snprintf(out, cap, "asked for a `%s`", kind[0] ? kind : "?");
	else if (!strcmp(kind, "shell") || !kind[0])
		snprintf(out, cap, "ran `%s`", verb);
	else if (is_tool_kind(kind))
		snprintf(out, cap, "called %s `%s`", kind, verb);
	else
		snprintf(out, cap, "asked for %s `%s`", kind, verb);
}

void
so_anomaly_fmt_shape(const char *kind, const char *verb, char *out, size_t cap)
{
	if (!verb[0])
		snprintf(out, cap, "a `%s`", kind[0] ? kind : "?");
	else
		snprintf(out, cap, "`%s`", verb);
}

void
so_anomaly_fmt_usual_time(const double hod[24], const double dow[7], char *hours, size_t hcap,
                          char *days, size_t dcap)
{
	int on[24], any = 0, all = 1;
	for (int h = 0; h < 24; h++) {
		on[h] = hod[h] >= SO_ANOMALY_KNOWN;
		any |= on[h];
		all &= on[h];
	}
	struct text t;
	so_anomaly_text_init(&t, hours, hcap);
	if (any && !all) {
		/* Runs of known hours around the clock, starting after an unknown hour. */
		int start = 0;
		while (on[start])
			start++;
		int runs = 0;
		for (int i = 1; i <= 24; i++) {
			int h = (start + i) % 24;
			if (!on[h] || on[(h + 23) % 24])
				continue;
			int len = 0;
			while (len < 24 && on[(h + len) % 24])
				len++;
			if (runs == 3) {
				so_anomaly_text_add(&t, " and other hours");
				break;
			}
			int end = h + len == 24 ? 24 : (h + len) % 24;
			so_anomaly_text_add(&t, "%s%02d:00–%02d:00", runs ? ", " : "", h, end);
			runs++;
		}
	}

	int known[7], n = 0;
	for (int d = 0; d < 7; d++) {
		known[d] = dow[d] >= SO_ANOMALY_KNOWN;
		n += known[d];
	}
	so_anomaly_text_init(&t, days, dcap);
	if (n == 7 || n == 0)
		return;
	if (n == 5 && !known[0] && !known[6]) {
		so_anomaly_text_add(&t, "on weekdays");
		return;
	}
	if (n == 2 && known[0] && known[6]) {
		so_anomaly_text_add(&t, "on weekends");
		return;
	}
	so_anomaly_text_add(&t, "on ");
	int said = 0;
	for (int i = 1; i <= 7; i++) {
		int d = i % 7; /* Monday first */
		if (!known[d])
			continue;
		said++;
		so_anomaly_text_add(&t, "%s%s", said == 1 ? "" : said == n ? " and " : ", ",
		                    weekday_short[d]);
	}
}
