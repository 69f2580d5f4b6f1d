/* Prometheus text exposition of signoffd's counters and histograms. */
#include <inttypes.h>

#include "common/error.h"
#include "server/internal.h"

struct metrics so_metrics;

const double so_hist_bounds[HIST_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                             0.05,   0.1,   0.5,    1,     10,   60};

void
hist_observe(struct histogram *h, int64_t usec)
{
	double secs = (double)usec / 1e6;
	size_t i = 0;
	while (i < HIST_BUCKETS && secs > so_hist_bounds[i])
		i++;
	atomic_fetch_add(&h->bucket[i], 1);
	atomic_fetch_add(&h->count, 1);
	atomic_fetch_add(&h->sum_usec, (uint64_t)(usec > 0 ? usec : 0));
}

void
so_server_observe_commit(int64_t commit_usec, size_t batch)
{
	hist_observe(&so_metrics.commit_latency, commit_usec);
	atomic_fetch_add(&so_metrics.commits, 1);
	atomic_fetch_add(&so_metrics.committed_changes, batch);
}

static void
render_hist(so_buf_t *out, const char *name, const char *help, struct histogram *h)
{
	so_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	uint64_t cum = 0;
	for (size_t i = 0; i < HIST_BUCKETS; i++) {
		cum += atomic_load(&h->bucket[i]);
		so_buf_printf(out, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, so_hist_bounds[i], cum);
	}
	cum += atomic_load(&h->bucket[HIST_BUCKETS]);
	so_buf_printf(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cum);
	so_buf_printf(out, "%s_sum %.6f\n%s_count %" PRIu64 "\n", name,
	              (double)atomic_load(&h->sum_usec) / 1e6, name, atomic_load(&h->count));
}

void
metrics_render(so_server_t *srv, so_buf_t *out)
{
	int64_t counts[SO_ST__COUNT] = {0};
	so_store_t *s = readers_take(&srv->readers);
	int rc = s->ops->request_counts(s, counts);
	readers_give(&srv->readers, s);

	so_buf_adds(out, "# HELP signoff_requests Requests in the store by status.\n"
	                 "# TYPE signoff_requests gauge\n");
	for (int i = 0; rc == SO_OK && i < SO_ST__COUNT; i++)
		so_buf_printf(out, "signoff_requests{status=\"%s\"} %" PRId64 "\n",
		              so_status_name((enum so_status)i), counts[i]);
	so_buf_adds(out, "# HELP signoff_requests_submitted_total Requests submitted since start.\n"
	                 "# TYPE signoff_requests_submitted_total counter\n");
	so_buf_printf(out, "signoff_requests_submitted_total %" PRIu64 "\n",
	              atomic_load(&so_metrics.submitted));
	so_buf_adds(out, "# HELP signoff_transitions_total State changes since start, by new status.\n"
	                 "# TYPE signoff_transitions_total counter\n");
	for (int i = 0; i < SO_ST__COUNT; i++)
		so_buf_printf(out, "signoff_transitions_total{status=\"%s\"} %" PRIu64 "\n",
		              so_status_name((enum so_status)i), atomic_load(&so_metrics.transitions[i]));
	so_buf_adds(out, "# HELP signoff_waiters Long-poll waiters now suspended.\n"
	                 "# TYPE signoff_waiters gauge\n");
	so_buf_printf(out, "signoff_waiters %zu\n", waiters_count(srv->waiters));
	render_hist(out, "signoff_decision_latency_seconds",
	            "Time from submission to approval or denial.", &so_metrics.decision_latency);
	render_hist(out, "signoff_store_commit_seconds", "Duration of one group commit.",
	            &so_metrics.commit_latency);
	so_buf_adds(out, "# HELP signoff_store_committed_changes_total Changes written by commits.\n"
	                 "# TYPE signoff_store_committed_changes_total counter\n");
	so_buf_printf(out, "signoff_store_committed_changes_total %" PRIu64 "\n",
	              atomic_load(&so_metrics.committed_changes));
	so_buf_adds(out, "# HELP signoff_http_responses_total HTTP responses by status class.\n"
	                 "# TYPE signoff_http_responses_total counter\n");
	for (int i = 1; i < 6; i++)
		so_buf_printf(out, "signoff_http_responses_total{class=\"%dxx\"} %" PRIu64 "\n", i,
		              atomic_load(&so_metrics.http_by_class[i]));
}
