/*
 * GET /v1/events: Server-Sent Events of request changes, for the console.
 *
 * Each subscriber is a streamed response whose content reader hands out what was queued for
 * it and, when nothing is, suspends its connection; a change (or the heartbeat every 15 s)
 * queues an event and resumes every suspended subscriber. No thread per subscriber, no
 * polling. A subscriber that falls more than SUB_MAX_QUEUED bytes behind is ended; its
 * browser reconnects and refetches.
 *
 * Events say only which request changed (and its new status when the change made one):
 * `event: request` / `data: {"id": "req_...", "status": "approved"}`. The console then reads
 * the request through the API, which applies the visibility rules.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "common/log.h"
#include "server/internal.h"

#define SUB_MAX_QUEUED (256u * 1024u)
#define HEARTBEAT_SECONDS 15
#define SUB_BLOCK 4096

struct sub {
	struct events *ev;
	struct MHD_Connection *mc;
	so_buf_t out;        /* queued bytes not yet handed to MHD, from `sent` on */
	size_t sent;
	int suspended;       /* under ev->lock */
	int ended;           /* under ev->lock: fell behind, or the server stops */
	struct sub *next, *prev;
};

struct events {
	pthread_mutex_t lock;
	pthread_cond_t tick;
	pthread_t heartbeat;
	struct sub *subs;
	size_t n;
	int stopping;
};

/* ---- queueing (under ev->lock) ---- */

static void
sub_wake(struct sub *s)
{
	if (s->suspended) {
		s->suspended = 0;
		MHD_resume_connection(s->mc);
	}
}

static void
sub_queue(struct sub *s, const char *text, size_t len)
{
	if (s->ended)
		return;
	if (so_buf_add(&s->out, text, len) != SO_OK)
		s->ended = 1; /* too far behind: end the stream, the browser reconnects */
	sub_wake(s);
}

static void
queue_all(struct events *ev, const char *text, size_t len)
{
	pthread_mutex_lock(&ev->lock);
	for (struct sub *s = ev->subs; s; s = s->next)
		sub_queue(s, text, len);
	pthread_mutex_unlock(&ev->lock);
}

void
events_publish(struct events *ev, const char *id, const char *status)
{
	char text[256];
	int n;

	if (!ev)
		return;
	if (status)
		n = snprintf(text, sizeof(text),
		             "event: request\ndata: {\"id\":\"%s\",\"status\":\"%s\"}\n\n", id, status);
	else
		n = snprintf(text, sizeof(text), "event: request\ndata: {\"id\":\"%s\"}\n\n", id);
	if (n > 0 && (size_t)n < sizeof(text))
		queue_all(ev, text, (size_t)n);
}

/* ---- the streamed response ---- */

static ssize_t
sub_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sub *s = cls;
	struct events *ev = s->ev;
	ssize_t n = 0;

	(void)pos;
	pthread_mutex_lock(&ev->lock);
	if (s->out.len > s->sent) {
		size_t left = s->out.len - s->sent;
		n = (ssize_t)(left < max ? left : max);
		memcpy(buf, s->out.data + s->sent, (size_t)n);
		s->sent += (size_t)n;
		if (s->sent == s->out.len) {
			so_buf_reset(&s->out);
			s->sent = 0;
		}
	} else if (s->ended) {
		n = MHD_CONTENT_READER_END_OF_STREAM;
	} else {
		/* Nothing to say: park until a change or the heartbeat resumes us. */
		s->suspended = 1;
		MHD_suspend_connection(s->mc);
	}
	pthread_mutex_unlock(&ev->lock);
	return n;
}

static void
sub_free(void *cls)
{
	struct sub *s = cls;
	struct events *ev = s->ev;

	pthread_mutex_lock(&ev->lock);
	if (s->prev)
		s->prev->next = s->next;
	else
		ev->subs = s->next;
	if (s->next)
		s->next->prev = s->prev;
	ev->n--;
	pthread_cond_broadcast(&ev->tick);
	pthread_mutex_unlock(&ev->lock);
	so_buf_free(&s->out);
	free(s);
}

void
h_events(struct conn *c, struct MHD_Connection *mc)
{
	static const char hello[] = "retry: 2000\n: signoff events\n\n";
	struct events *ev = c->srv->events;
	struct MHD_Response *resp;
	struct sub *s;

	if (c->caller->kind != SO_KIND_HUMAN) {
		reply_error(c, 403, "forbidden", "events are for the people who review");
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		reply_error(c, 500, "internal", "out of memory");
		return;
	}
	s->ev = ev;
	s->mc = mc;
	so_buf_init(&s->out, SUB_MAX_QUEUED);
	so_buf_add(&s->out, hello, sizeof(hello) - 1);
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SUB_BLOCK, sub_read, s, sub_free);
	if (!resp) {
		so_buf_free(&s->out);
		free(s);
		reply_error(c, 500, "internal", "out of memory");
		return;
	}
	pthread_mutex_lock(&ev->lock);
	s->ended = ev->stopping; /* shutting down: the stream says hello and ends */
	s->next = ev->subs;
	if (ev->subs)
		ev->subs->prev = s;
	ev->subs = s;
	ev->n++;
	pthread_mutex_unlock(&ev->lock);

	MHD_add_response_header(resp, "Content-Type", "text/event-stream");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	c->queued = 1;
	c->replied = 1;
	atomic_fetch_add(&so_metrics.http_by_class[2], 1);
	MHD_queue_response(mc, 200, resp);
	MHD_destroy_response(resp);
}

/* ---- heartbeat, start and stop ---- */

static void *
heartbeat_main(void *arg)
{
	static const char ping[] = ": ping\n\n";
	struct events *ev = arg;

	pthread_mutex_lock(&ev->lock);
	while (!ev->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += HEARTBEAT_SECONDS;
		pthread_cond_timedwait(&ev->tick, &ev->lock, &ts);
		if (ev->stopping)
			break;
		/* A ping also finds the subscribers whose browser has gone: the write fails. */
		for (struct sub *s = ev->subs; s; s = s->next)
			sub_queue(s, ping, sizeof(ping) - 1);
	}
	pthread_mutex_unlock(&ev->lock);
	return NULL;
}

struct events *
events_start(void)
{
	struct events *ev = calloc(1, sizeof(*ev));

	if (!ev)
		return NULL;
	pthread_mutex_init(&ev->lock, NULL);
	pthread_cond_init(&ev->tick, NULL);
	if (pthread_create(&ev->heartbeat, NULL, heartbeat_main, ev) != 0) {
		pthread_cond_destroy(&ev->tick);
		pthread_mutex_destroy(&ev->lock);
		free(ev);
		return NULL;
	}
	return ev;
}

size_t
events_count(struct events *ev)
{
	size_t n;

	pthread_mutex_lock(&ev->lock);
	n = ev->n;
	pthread_mutex_unlock(&ev->lock);
	return n;
}

void
events_stop(struct events *ev)
{
	pthread_mutex_lock(&ev->lock);
	ev->stopping = 1;
	for (struct sub *s = ev->subs; s; s = s->next) {
		s->ended = 1;
		sub_wake(s);
	}
	pthread_cond_broadcast(&ev->tick);
	pthread_mutex_unlock(&ev->lock);
	pthread_join(ev->heartbeat, NULL);
}

void
events_free(struct events *ev)
{
	if (!ev)
		return;
	pthread_cond_destroy(&ev->tick);
	pthread_mutex_destroy(&ev->lock);
	free(ev);
}
