/*
 * Several nodes on one shared store (PostgreSQL): each change a node commits is announced
 * in its transaction ("<node> <request id> <status>"), and every node listens on a connection
 * of its own. An announcement from another node wakes the long-polls of that request here and
 * tells the console's live streams, exactly as a change made here does.
 *
 * Announcements are not stored: while the listening connection is down they are lost. So
 * after (re)connecting, and every CHECK_MS as a safety net, the listener reads the status of
 * every request a long-poll waits on here and wakes those that are no longer pending.
 *
 * Owns: the listening connection and its thread. Nothing starts for a store only one process
 * uses (SQLite): there the writer's own wake-ups are all there is.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "server/internal.h"

#define WAIT_MS 1000        /* longest wait for an announcement before looking at `stopping` */
#define CHECK_MS 5000       /* the safety net's period */
#define RETRY_MS 1000       /* between attempts to reconnect */
#define MAX_CHECKED 4096    /* most long-polled requests read per safety-net pass */

struct cluster {
	so_server_t *srv;
	so_store_t *conn; /* the listening connection */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t stop_cond;
	int stopping;
	int wake[2]; /* a pipe: written once at stop, so a wait for announcements ends at once */
};

int
cluster_announce(so_server_t *srv, so_store_t *s, const char *id, int status)
{
	char payload[SO_ANNOUNCE_MAX];
	if (!s->ops->announce)
		return SO_OK;
	snprintf(payload, sizeof(payload), "%s %s %s", srv->node, id,
	         status >= 0 ? so_status_name((enum so_status)status) : "-");
	return s->ops->announce(s, payload);
}

/* Wait up to `ms` unless stopping; returns whether to stop. */
static int
pause_or_stop(struct cluster *cl, int64_t ms)
{
	struct timespec ts;
	so_clock_mono_after(ms, &ts);
	pthread_mutex_lock(&cl->lock);
	if (!cl->stopping)
		pthread_cond_timedwait(&cl->stop_cond, &cl->lock, &ts);
	int stop = cl->stopping;
	pthread_mutex_unlock(&cl->lock);
	return stop;
}

static int
stopping(struct cluster *cl)
{
	pthread_mutex_lock(&cl->lock);
	int stop = cl->stopping;
	pthread_mutex_unlock(&cl->lock);
	return stop;
}

/* "<node> <id> <status>" from another node: wake here what this one changed. */
static void
on_announcement(struct cluster *cl, char *payload)
{
	char *id = strchr(payload, ' ');
	if (!id)
		return;
	*id++ = '\0';
	char *status = strchr(id, ' ');
	if (!status)
		return;
	*status++ = '\0';
	if (!strcmp(payload, cl->srv->node) || strlen(id) != SO_ID_LEN)
		return; /* our own change: woken already, when it committed */
	waiters_wake(cl->srv->waiters, id);
	events_publish(cl->srv->events, id, strcmp(status, "-") ? status : NULL);
}

/* The safety net: wake the long-polls whose request is no longer pending. */
static int
check_waiters(struct cluster *cl)
{
	char(*ids)[SO_ID_LEN + 1] = malloc(MAX_CHECKED * sizeof(*ids));
	if (!ids)
		return SO_ENOMEM;
	size_t n = waiters_ids(cl->srv->waiters, ids, MAX_CHECKED);
	int rc = SO_OK;
	for (size_t i = 0; i < n && rc == SO_OK; i++) {
		so_request_t *r = NULL;
		rc = cl->conn->ops->request_get(cl->conn, ids[i], &r);
		if (rc == SO_ENOTFOUND) {
			rc = SO_OK;
			continue;
		}
		if (rc == SO_OK && r->status != SO_ST_PENDING) {
			so_debug("cluster: %s was %s without an announcement here", ids[i],
			         so_status_name(r->status));
			waiters_wake(cl->srv->waiters, ids[i]);
			events_publish(cl->srv->events, ids[i], so_status_name(r->status));
		}
		so_request_free(r);
	}
	free(ids);
	return rc;
}

static void *
listener_main(void *arg)
{
	struct cluster *cl = arg;
	char payload[SO_ANNOUNCE_MAX];
	int listening = 1; /* cluster_start() listened already */
	int64_t next_check = so_clock_mono_ms() + CHECK_MS;
	while (!stopping(cl)) {
		if (!listening) {
			if (cl->conn->ops->listen(cl->conn) || check_waiters(cl)) {
				if (pause_or_stop(cl, RETRY_MS))
					break;
				continue;
			}
			so_info("cluster: listening for other nodes' changes again");
			listening = 1;
		}
		int rc = cl->conn->ops->next_announcement(cl->conn, WAIT_MS, cl->wake[0], payload,
		                                          sizeof(payload));
		if (rc == SO_OK) {
			on_announcement(cl, payload);
		} else if (rc != SO_EBUSY) {
			so_warn("cluster: lost the connection other nodes' changes come on; reconnecting");
			listening = 0;
			continue;
		}
		if (so_clock_mono_ms() >= next_check) {
			next_check = so_clock_mono_ms() + CHECK_MS;
			if (check_waiters(cl))
				listening = 0;
		}
	}
	return NULL;
}

int
cluster_start(so_server_t *srv, struct cluster **out, char *err, size_t errlen)
{
	unsigned char rnd[6];
	so_store_t *conn = NULL;
	struct cluster *cl = NULL;
	int rc;

	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(srv->node, sizeof(srv->node), rnd, sizeof(rnd));
	*out = NULL;
	so_store_t *reader = readers_take(&srv->readers);
	int shared = reader->ops->listen != NULL;
	readers_give(&srv->readers, reader);
	if (!shared)
		return SO_OK; /* one process owns this store: nothing to hear */
	if ((rc = so_store_open(srv->cfg->store_url, &conn, err, errlen)))
		return rc;
	rc = SO_ENOMEM;
	if (!(cl = calloc(1, sizeof(*cl)))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	cl->srv = srv;
	cl->conn = conn;
	cl->wake[0] = cl->wake[1] = -1;
	pthread_mutex_init(&cl->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&cl->stop_cond, &attr);
	pthread_condattr_destroy(&attr);
	if (pipe2(cl->wake, O_CLOEXEC | O_NONBLOCK)) {
		rc = SO_EIO;
		snprintf(err, errlen, "cannot make the cluster listener's pipe: %s", strerror(errno));
		goto fail;
	}
	if ((rc = conn->ops->listen(conn))) {
		snprintf(err, errlen, "cannot listen for other nodes' changes: %s", so_strerror(rc));
		goto fail;
	}
	if (pthread_create(&cl->thread, NULL, listener_main, cl)) {
		rc = SO_ENOMEM;
		snprintf(err, errlen, "cannot start the cluster listener thread");
		goto fail;
	}
	so_info("cluster: node %s; the store is shared: other nodes' changes wake waiters here",
	        srv->node);
	*out = cl;
	return SO_OK;
fail:
	if (cl) {
		if (cl->wake[0] >= 0) {
			close(cl->wake[0]);
			close(cl->wake[1]);
		}
		pthread_mutex_destroy(&cl->lock);
		pthread_cond_destroy(&cl->stop_cond);
		free(cl);
	}
	so_store_close(conn);
	return rc;
}

void
cluster_stop(struct cluster *cl)
{
	if (!cl)
		return;
	pthread_mutex_lock(&cl->lock);
	cl->stopping = 1;
	pthread_cond_signal(&cl->stop_cond);
	pthread_mutex_unlock(&cl->lock);
	ssize_t ignored = write(cl->wake[1], "x", 1);
	(void)ignored;
	pthread_join(cl->thread, NULL);
	close(cl->wake[0]);
	close(cl->wake[1]);
	so_store_close(cl->conn);
	pthread_mutex_destroy(&cl->lock);
	pthread_cond_destroy(&cl->stop_cond);
	free(cl);
}
