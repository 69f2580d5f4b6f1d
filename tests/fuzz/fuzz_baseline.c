/*
 * A persisted baseline as the store hands it back: bounded parse, so_baseline_from_json,
 * then scoring, learning and describing on what was read. The input may carry a "probe"
 * member ({"action", "context"}, ignored by the reader) whose features are scored and
 * learned, so feature extraction is fuzzed too; the input's length picks the time.
 *
 * Checks: a refusal leaves no baseline; a score is within [0, 1] with bounded UTF-8
 * reasons; the persisted form of what was read reads back and is stable; after a learn and
 * a submission the persisted form still reads back; the description is UTF-8.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "anomaly/anomaly.h"
#include "common/error.h"
#include "common/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_result(const so_anomaly_result_t *r)
{
	if (!(r->score >= 0 && r->score <= 1) || r->nreasons > SO_ANOMALY_MAX_REASONS)
		abort();
	for (size_t i = 0; i < r->nreasons; i++) {
		size_t len = strnlen(r->reasons[i], SO_ANOMALY_REASON_LEN);
		if (len == 0 || len == SO_ANOMALY_REASON_LEN || so_utf8_prefix(r->reasons[i], len) != len)
			abort();
	}
	json_t *j = so_anomaly_result_to_json(r);
	if (!j)
		abort();
	json_decref(j);
}

/* The persisted form of `b`, read back, must give the same persisted form. */
static void
check_round_trip(const so_baseline_t *b)
{
	json_t *doc = so_baseline_to_json(b);
	so_baseline_t *back = NULL;
	if (!doc || so_baseline_from_json(doc, &back) != SO_OK || !back)
		abort();
	json_t *again = so_baseline_to_json(back);
	char *x = so_json_canonical_str(doc), *y = again ? so_json_canonical_str(again) : NULL;
	if (!x || !y || strcmp(x, y))
		abort();
	free(x);
	free(y);
	json_decref(again);
	json_decref(doc);
	so_baseline_free(back);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const so_json_limits_t lim = {.max_depth = 32, .max_string = 65536, .max_items = 1000};
	static char sentinel;
	json_t *doc = NULL;
	so_baseline_t *b = (so_baseline_t *)&sentinel; /* a refusal must reset it to NULL */
	char err[256];

	if (so_json_parse((const char *)data, size, &lim, &doc, err, sizeof(err)) != SO_OK)
		return 0;
	int rc = so_baseline_from_json(doc, &b);
	if (rc != SO_OK) {
		if (b || rc != SO_EINVAL)
			abort();
		json_decref(doc);
		return 0;
	}
	if (!b)
		abort();
	check_round_trip(b);

	so_anomaly_params_t p;
	so_anomaly_params_default(&p);
	p.learning_events = 0;
	p.learning_ms = 0;
	p.tz_offset_minutes = (int)(size % 1681) - 840;
	const json_t *probe = json_object_get(doc, "probe");
	so_anomaly_features_t f;
	so_anomaly_features(json_object_get(probe, "action"), json_object_get(probe, "context"), &f);

	json_t *as_of = json_object_get(doc, "as_of");
	int64_t base = json_is_integer(as_of) ? (int64_t)json_integer_value(as_of) : 0;
	int64_t times[] = {base, base + (int64_t)size * 60000, base - (int64_t)size * 3600000,
	                   INT64_MAX, INT64_MIN};
	so_anomaly_result_t r;
	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		so_anomaly_score(b, &p, "fuzz-bot", &f, times[i], &r);
		check_result(&r);
	}
	so_buf_t out;
	so_buf_init(&out, 1 << 20);
	if (so_baseline_describe(b, &p, "fuzz-bot", times[1], &out) != SO_OK ||
	    so_utf8_prefix(so_buf_cstr(&out), out.len) != out.len)
		abort();
	so_buf_free(&out);

	/* Learning on what was read keeps the persisted form readable. */
	so_baseline_note_submitted(b, &p, times[1]);
	so_baseline_learn(b, &p, &f, times[1]);
	so_baseline_learn(b, &p, &f, times[2]);
	so_anomaly_score(b, &p, "fuzz-bot", &f, times[1] + 1000, &r);
	check_result(&r);
	check_round_trip(b);

	so_baseline_free(b);
	json_decref(doc);
	return 0;
}
