/*
 * A baseline in words, for `signoff anomaly show`.
 */
#include <stdlib.h>
#include <string.h>

#include "anomaly/internal.h"
#include "common/clock.h"
#include "common/error.h"

/* Slots in order of weight, strongest first (indices into the table). */
static void
by_weight(const struct weight *first, size_t stride, size_t n, size_t *order)
{
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	for (size_t i = 1; i < n; i++) {
		for (size_t k = i; k > 0; k--) {
			const struct weight *a = (const struct weight *)((const char *)first + order[k] * stride);
			const struct weight *b = (const struct weight *)((const char *)first + order[k - 1] * stride);
			if (a->w <= b->w)
				break;
			size_t t = order[k];
			order[k] = order[k - 1];
			order[k - 1] = t;
		}
	}
}

static int
add_weight_line(so_buf_t *out, const char *what, double w, int64_t last, int64_t now)
{
	char n[32], ago[32];
	so_anomaly_fmt_number(w, n, sizeof(n));
	so_anomaly_fmt_duration(now - last, ago, sizeof(ago));
	return so_buf_printf(out, "  %-48s %8s  %s ago%s\n", what, n, ago,
	                     w < SO_ANOMALY_KNOWN ? " (faded: unusual again)" : "");
}

static int
describe_names(so_buf_t *out, const char *title, const struct name_slot *slots, size_t n,
               double g, int64_t now)
{
	size_t order[SO_ANOMALY_PREFIXES];
	int rc = so_buf_printf(out, "%s (weight, last use):%s\n", title, n ? "" : " none");
	by_weight(&slots[0].wt, sizeof(slots[0]), n, order);
	for (size_t i = 0; i < n && rc == SO_OK; i++) {
		const struct name_slot *s = &slots[order[i]];
		rc = add_weight_line(out, s->name, s->wt.w / g, s->wt.last, now);
	}
	return rc;
}

int
so_baseline_describe(const so_baseline_t *b, const so_anomaly_params_t *p, const char *principal,
                     int64_t now_ms, so_buf_t *out)
{
	char n[32], m[32], d[32], when[32];
	int64_t now = so_anomaly_clamp_ms(now_ms);
	const char *who = principal && principal[0] ? principal : "this principal";
	int rc;

	if (!b || b->learned == 0) {
		so_anomaly_fmt_duration(p->learning_ms, d, sizeof(d));
		return so_buf_printf(out, "%s: nothing learned yet; it is new until it has %u learned "
		                          "requests over %s\n", who, p->learning_events, d);
	}
	double g = so_anomaly_growth(b, now);
	so_anomaly_fmt_number((double)b->learned, n, sizeof(n));
	so_anomaly_fmt_number((double)b->submitted, m, sizeof(m));
	so_clock_format(b->first_learned, when, sizeof(when));
	when[10] = '\0';
	so_anomaly_fmt_duration(now - b->last_learned, d, sizeof(d));
	rc = so_buf_printf(out, "%s: %s requests learned since %s (the last %s ago), %s submitted\n",
	                   who, n, when, d, m);
	if (rc == SO_OK && so_baseline_is_learning(b, p, now)) {
		so_anomaly_fmt_duration(p->learning_ms, d, sizeof(d));
		rc = so_buf_printf(out, "still learning: new until it has %u learned requests over %s\n",
		                   p->learning_events, d);
	}
	so_anomaly_fmt_number(b->half_life_days, d, sizeof(d));
	if (rc == SO_OK)
		rc = so_buf_printf(out, "weights halve every %s days; %.2f or more is known\n", d,
		                   SO_ANOMALY_KNOWN);

	/* Shapes. */
	size_t order[SO_ANOMALY_SHAPES];
	if (rc == SO_OK)
		rc = so_buf_printf(out, "actions (weight, last use):%s\n", b->nshapes ? "" : " none");
	by_weight(&b->shapes[0].wt, sizeof(b->shapes[0]), b->nshapes, order);
	for (size_t i = 0; i < b->nshapes && rc == SO_OK; i++) {
		const struct shape_slot *s = &b->shapes[order[i]];
		char shape[SO_ANOMALY_VERB_LEN + SO_ANOMALY_KIND_LEN + 16];
		char what[sizeof(shape) + SO_ANOMALY_KIND_LEN + SO_ANOMALY_ENV_LEN + 8];
		so_anomaly_fmt_shape(s->kind, s->verb, shape, sizeof(shape));
		int other_kind = s->verb[0] && s->kind[0] && strcmp(s->kind, "shell");
		snprintf(what, sizeof(what), "%s%s%s%s%s%s", shape, other_kind ? " (" : "",
		         other_kind ? s->kind : "", other_kind ? ")" : "", s->env[0] ? " in " : "", s->env);
		rc = add_weight_line(out, what, s->wt.w / g, s->wt.last, now);
		/* Its own declared sizes (the argument length is in the sizes line below). */
		for (size_t k = 0; k < SHAPE_SIZES && rc == SO_OK; k++) {
			const struct shape_size *ss = &s->sizes[k];
			if (!ss->used || ss->size == SO_ANOMALY_SIZE_ARG_BYTES || ss->st.peak.value <= 0)
				continue;
			so_anomaly_fmt_number(ss->st.peak.value, n, sizeof(n));
			so_anomaly_fmt_duration(now - ss->st.peak.at, d, sizeof(d));
			rc = so_buf_printf(out, "    %s up to %s (%s ago)\n", so_anomaly_size_name(ss->size),
			                   n, d);
		}
	}
	if (rc == SO_OK)
		rc = describe_names(out, "environments", b->envs, b->nenvs, g, now);
	if (rc == SO_OK)
		rc = describe_names(out, "resource prefixes", b->prefixes, b->nprefixes, g, now);

	/* Hours. */
	double hod[24] = {0}, dow[7] = {0};
	for (int day = 0; day < 7; day++) {
		for (int h = 0; h < 24; h++) {
			hod[h] += b->hours[day * 24 + h] / g;
			dow[day] += b->hours[day * 24 + h] / g;
		}
	}
	char hours[96], days[64];
	so_anomaly_fmt_usual_time(hod, dow, hours, sizeof(hours), days, sizeof(days));
	int tz = p->tz_offset_minutes;
	if (rc == SO_OK)
		rc = so_buf_printf(out, "hours: %s%s%s%s (UTC", hours[0] || days[0] ? "usually " : "any time",
		                   hours, hours[0] && days[0] ? " " : "", days);
	if (rc == SO_OK && tz)
		rc = so_buf_printf(out, "%c%02d:%02d", tz > 0 ? '+' : '-', abs(tz) / 60, abs(tz) % 60);
	if (rc == SO_OK)
		rc = so_buf_printf(out, ")\n");

	/* Rates. */
	double rate = b->active_hours_w > 0 ? b->submitted_w / b->active_hours_w : 0;
	so_anomaly_fmt_rate(rate, d, sizeof(d));
	if (rc == SO_OK)
		rc = so_buf_printf(out, "rate: usual %s when active", d);
	static const char *const window[NWINDOWS] = {"minute", "10 minutes"};
	for (int w = 0; w < NWINDOWS && rc == SO_OK; w++) {
		const struct window_peak *wp = &b->windows[w];
		struct peak pk = wp->peak;
		if (wp->pending > 0 && now - wp->pending_at >= so_anomaly_window_ms[w] &&
		    wp->pending >= so_anomaly_peak_at(b, &pk, wp->pending_at)) {
			pk.value = wp->pending;
			pk.at = wp->pending_at;
		}
		if (pk.value <= 0)
			continue;
		so_anomaly_fmt_number(pk.value, n, sizeof(n));
		so_anomaly_fmt_duration(now - pk.at, d, sizeof(d));
		rc = so_buf_printf(out, "; busiest %s %s (%s ago)", window[w], n, d);
	}
	if (rc == SO_OK)
		rc = so_buf_printf(out, "\nsizes:");
	int any = 0;
	for (int i = 0; i < SO_ANOMALY_NSIZES && rc == SO_OK; i++) {
		const struct size_stat *st = &b->sizes[i];
		if (st->peak.value <= 0 && st->n <= 0)
			continue;
		so_anomaly_fmt_number(st->peak.value, n, sizeof(n));
		so_anomaly_fmt_duration(now - st->peak.at, d, sizeof(d));
		so_anomaly_fmt_number(so_anomaly_peak_at(b, &st->peak, now), m, sizeof(m));
		rc = so_buf_printf(out, "%s %s up to %s (%s ago; weighs %s now)", any++ ? ";" : "",
		                   so_anomaly_size_name(i), n, d, m);
	}
	if (rc == SO_OK)
		rc = so_buf_printf(out, "%s\n", any ? "" : " none declared");
	return rc;
}
