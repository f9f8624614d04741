/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Why a thread: xenstored serves one request at a time, and Debian's
 * 4.17 pays for each write of an existing node once per connected domain
 * (it checks every domain's right to see the node's parent, looking each
 * domain up in a list): about 1 ms with 500 domains. Waiting for each
 * hotplug-status write, the event loop and xenstored took turns; now the
 * loop configures the next vifs while xenstored writes, and a script's
 * request is answered when its write is made. The round trips that tell
 * the loop it has every watch event (xn_xs_sync) are made here too, ahead
 * of the writes, so that the loop does not wait for them either. */
#include "xennet/xsqueue.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "xennet/xs.h"

#define CLOSE_WAIT_MS 1000 /* for the thread to end, once the queue is flushed */

struct job {
	struct job *next;
	bool sync; /* a round trip on the watch connection, not a write */
	uint64_t cookie;
	int result;
	char *error; /* NULL: connected */
	char dir[];
};

struct list {
	struct job *head, **tail;
};

struct xn_xsq {
	struct xn_xs *xs; /* the thread's own connection */
	struct xn_xs *watch; /* the loop's, whose watch events a sync orders */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t work; /* signalled on post and stop */
	pthread_cond_t idle; /* signalled when the queue runs dry */
	struct list syncs, queued, done; /* syncs go first */
	bool busy; /* the thread is writing one */
	bool stop;
	bool exited; /* the thread is past its last request */
	int efd;
};

static void list_init(struct list *l)
{
	l->head = NULL;
	l->tail = &l->head;
}

static void list_push(struct list *l, struct job *j)
{
	j->next = NULL;
	*l->tail = j;
	l->tail = &j->next;
}

static struct job *list_pop(struct list *l)
{
	struct job *j = l->head;

	if (j) {
		l->head = j->next;
		if (!l->head)
			l->tail = &l->head;
	}
	return j;
}

static void free_jobs(struct job *j)
{
	while (j) {
		struct job *next = j->next;
		free(j->error);
		free(j);
		j = next;
	}
}

static int do_job(struct xn_xsq *q, const struct job *j)
{
	char path[256];

	if (j->sync)
		return xn_xs_sync(q->watch);
	if (j->error)
		return xn_xs_write_error(q->xs, j->dir, j->error);
	snprintf(path, sizeof(path), "%s/hotplug-status", j->dir);
	return xn_xs_write(q->xs, path, "connected");
}

static void *run(void *arg)
{
	struct xn_xsq *q = arg;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		struct job *j = list_pop(&q->syncs);
		bool wake;

		if (!j)
			j = list_pop(&q->queued);

		if (!j) {
			if (q->stop)
				break;
			pthread_cond_broadcast(&q->idle);
			pthread_cond_wait(&q->work, &q->lock);
			continue;
		}
		q->busy = true;
		pthread_mutex_unlock(&q->lock);
		j->result = do_job(q, j);
		pthread_mutex_lock(&q->lock);
		q->busy = false;
		wake = !q->done.head;
		list_push(&q->done, j);
		if (wake) {
			uint64_t one = 1;
			/* Cannot fail but on overflow, which a reader prevents. */
			(void)!write(q->efd, &one, sizeof(one));
		}
	}
	q->exited = true;
	pthread_cond_broadcast(&q->idle);
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

int xn_xsq_open(struct xn_xs *watch, struct xn_xsq **ret)
{
	struct xn_xsq *q = calloc(1, sizeof(*q));
	pthread_attr_t attr;
	sigset_t all, old;
	int r;

	if (!q)
		return -ENOMEM;
	q->watch = watch;
	list_init(&q->syncs);
	list_init(&q->queued);
	list_init(&q->done);
	q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->efd < 0) {
		r = -errno;
		free(q);
		return r;
	}
	r = xn_xs_open_requests(&q->xs);
	if (r < 0) {
		close(q->efd);
		free(q);
		return r;
	}
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->work, NULL);
	pthread_cond_init(&q->idle, NULL);
	/* Signals are the loop's (signalfd): the thread takes none. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	(void)pthread_attr_setstacksize(&attr, 256 * 1024); /* else the default */
	r = -pthread_create(&q->thread, &attr, run, q);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		pthread_mutex_destroy(&q->lock);
		pthread_cond_destroy(&q->work);
		pthread_cond_destroy(&q->idle);
		xn_xs_close(q->xs);
		close(q->efd);
		free(q);
		return r;
	}
	*ret = q;
	return 0;
}

/* Wait on idle until done(q) or timeout_ms (< 0: no limit); 0 or
 * -ETIMEDOUT. With q->lock held. */
static int wait_idle(struct xn_xsq *q, bool (*done)(const struct xn_xsq *q), int timeout_ms)
{
	struct timespec until;

	if (timeout_ms >= 0) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += timeout_ms / 1000;
		until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
	}
	while (!done(q))
		if (timeout_ms < 0)
			pthread_cond_wait(&q->idle, &q->lock);
		else if (pthread_cond_timedwait(&q->idle, &q->lock, &until) == ETIMEDOUT)
			return done(q) ? 0 : -ETIMEDOUT;
	return 0;
}

static bool drained(const struct xn_xsq *q)
{
	return !q->syncs.head && !q->queued.head && !q->busy;
}

static bool exited(const struct xn_xsq *q)
{
	return q->exited;
}

bool xn_xsq_close(struct xn_xsq *q)
{
	int r;

	if (!q)
		return true;
	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_signal(&q->work);
	r = wait_idle(q, exited, CLOSE_WAIT_MS);
	pthread_mutex_unlock(&q->lock);
	if (r < 0) {
		/* Stuck in a request xenstored does not answer: the process
		 * is about to exit, which ends the thread; q stays its. */
		pthread_detach(q->thread);
		return false;
	}
	pthread_join(q->thread, NULL);
	free_jobs(q->done.head);
	xn_xs_close(q->xs);
	close(q->efd);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->work);
	pthread_cond_destroy(&q->idle);
	free(q);
	return true;
}

static void post(struct xn_xsq *q, struct list *l, struct job *j)
{
	pthread_mutex_lock(&q->lock);
	list_push(l, j);
	pthread_cond_signal(&q->work);
	pthread_mutex_unlock(&q->lock);
}

int xn_xsq_post(struct xn_xsq *q, const char *dir, const char *error, uint64_t cookie)
{
	size_t len = strlen(dir) + 1;
	struct job *j = malloc(sizeof(*j) + len);

	if (!j)
		return -ENOMEM;
	memcpy(j->dir, dir, len);
	j->sync = false;
	j->cookie = cookie;
	j->result = 0;
	j->error = NULL;
	if (error && !(j->error = strdup(error))) {
		free(j);
		return -ENOMEM;
	}
	post(q, &q->queued, j);
	return 0;
}

int xn_xsq_post_sync(struct xn_xsq *q, uint64_t cookie)
{
	struct job *j = calloc(1, sizeof(*j) + 1);

	if (!j)
		return -ENOMEM;
	j->sync = true;
	j->cookie = cookie;
	post(q, &q->syncs, j);
	return 0;
}

int xn_xsq_fd(const struct xn_xsq *q)
{
	return q->efd;
}

size_t xn_xsq_collect(struct xn_xsq *q,
		      void (*done)(bool sync, uint64_t cookie, int result, void *ud), void *ud)
{
	struct job *jobs;
	size_t count = 0;
	uint64_t n;

	pthread_mutex_lock(&q->lock);
	(void)!read(q->efd, &n, sizeof(n)); /* EAGAIN when nothing is done */
	jobs = q->done.head;
	list_init(&q->done);
	pthread_mutex_unlock(&q->lock);
	for (struct job *j = jobs; j; j = j->next, count++)
		done(j->sync, j->cookie, j->result, ud);
	free_jobs(jobs);
	return count;
}

int xn_xsq_flush(struct xn_xsq *q, int timeout_ms)
{
	int r;

	pthread_mutex_lock(&q->lock);
	r = wait_idle(q, drained, timeout_ms);
	pthread_mutex_unlock(&q->lock);
	return r;
}
