/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "xennet/control.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "xn-config.h"

const char *xn_ctl_default_path(void)
{
	const char *e = getenv("XENNET_SOCKET");

	return e && *e ? e : XN_DEFAULT_SOCKET;
}

static int fill_addr(const char *path, struct sockaddr_un *sa)
{
	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, path, strlen(path) + 1);
	return 0;
}

/* Full read/write with an overall deadline (ms since boot, -1 none). */
static int io_full(int fd, void *buf, size_t len, bool writing,
		   int64_t deadline)
{
	char *p = buf;

	while (len) {
		ssize_t n;

		if (deadline >= 0) {
			struct pollfd pfd = { fd, writing ? POLLOUT : POLLIN, 0 };
			int64_t left = deadline - xn_now_ms();
			int r;

			if (left <= 0)
				return -ETIMEDOUT;
			r = poll(&pfd, 1, (int)left);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return -errno;
			if (r == 0)
				return -ETIMEDOUT;
		}
		n = writing ? send(fd, p, len, MSG_NOSIGNAL) : recv(fd, p, len, 0);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int xn_ctl_call(const char *path, const char *const *words, size_t n,
		int timeout_ms, int *ret_status, char **ret_body)
{
	_cleanup_close_ int fd = -1;
	struct sockaddr_un sa;
	char req[XN_CTL_MAX_REQUEST];
	uint32_t len = 0, hdr[2];
	int64_t deadline = timeout_ms < 0 ? -1 : xn_now_ms() + timeout_ms;
	char *body;
	int r;

	if (n == 0 || n > XN_CTL_MAX_WORDS)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(words[i]) + 1;
		if (len + l > sizeof(req))
			return -E2BIG;
		memcpy(req + len, words[i], l);
		len += (uint32_t)l;
	}
	r = fill_addr(path, &sa);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	r = io_full(fd, &len, sizeof(len), true, deadline);
	if (r >= 0)
		r = io_full(fd, req, len, true, deadline);
	if (r >= 0)
		r = io_full(fd, hdr, sizeof(hdr), false, deadline);
	if (r < 0)
		return r;
	if (hdr[1] > XN_CTL_MAX_REPLY)
		return -EBADMSG;
	body = malloc(hdr[1] + 1);
	if (!body)
		return -ENOMEM;
	r = io_full(fd, body, hdr[1], false, deadline);
	if (r < 0) {
		free(body);
		return r;
	}
	body[hdr[1]] = '\0';
	*ret_status = (int)hdr[0];
	*ret_body = body;
	return 0;
}

int xn_ctl_listen(const char *path)
{
	struct sockaddr_un sa;
	int fd, r;

	r = fill_addr(path, &sa);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* A socket file left by a daemon that died is replaced; a live one
	 * is refused so that two daemons never fight. */
	{
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0) {
			int c = connect(probe, (struct sockaddr *)&sa, sizeof(sa));
			close(probe);
			if (c == 0) {
				close(fd);
				return -EADDRINUSE;
			}
		}
	}
	unlink(path);
	{
		mode_t old = umask(0177); /* the socket is born 0600 */
		r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
		umask(old);
	}
	if (r < 0 || chmod(path, 0600) < 0 || listen(fd, 128) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* ---- the server: requests read without blocking ---- */

/* A client has this long from its connection to a complete request. */
#define REQUEST_DEADLINE_MS 2000
/* Connections whose request is not complete yet, at most: beyond, the
 * oldest is dropped (each holds a file descriptor). */
#define MAX_PENDING 256
#define EXPIRE_SLACK_MS 100
/* A reply larger than the socket holds is sent as the client reads it,
 * for this long at most. */
#define REPLY_DEADLINE_MS 10000

/* Connections oldest first: their deadlines are in that order too. */
struct queue {
	struct xn_ctl_request *head, *tail;
	size_t n;
};

struct xn_ctl_server {
	int listen_fd;
	int efd; /* the listening socket and the connections in the queues */
	struct queue reading; /* their request is not complete yet */
	struct queue replying; /* the rest of their reply waits for room */
	unsigned refused, expired, abandoned; /* since last asked */
};

int xn_ctl_server_open(const char *path, struct xn_ctl_server **ret)
{
	struct xn_ctl_server *s = calloc(1, sizeof(*s));
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	int r;

	if (!s)
		return -ENOMEM;
	s->efd = -1;
	s->listen_fd = xn_ctl_listen(path);
	if (s->listen_fd < 0) {
		r = s->listen_fd;
		free(s);
		return r;
	}
	s->efd = epoll_create1(EPOLL_CLOEXEC);
	if (s->efd < 0 || epoll_ctl(s->efd, EPOLL_CTL_ADD, s->listen_fd, &ev) < 0) {
		r = -errno;
		xn_ctl_server_close(s);
		return r;
	}
	*ret = s;
	return 0;
}

int xn_ctl_server_fd(const struct xn_ctl_server *s)
{
	return s->efd;
}

void xn_ctl_request_free(struct xn_ctl_request *q)
{
	if (!q)
		return;
	if (q->fd >= 0)
		close(q->fd);
	free(q->out);
	free(q);
}

static void dequeue(struct xn_ctl_server *s, struct queue *qu, struct xn_ctl_request *q)
{
	epoll_ctl(s->efd, EPOLL_CTL_DEL, q->fd, NULL);
	if (q->prev)
		q->prev->next = q->next;
	else
		qu->head = q->next;
	if (q->next)
		q->next->prev = q->prev;
	else
		qu->tail = q->prev;
	q->prev = q->next = NULL;
	qu->n--;
}

/* Watched for events (EPOLLIN: more of the request; EPOLLOUT: room for
 * the reply) until its deadline. */
static int enqueue(struct xn_ctl_server *s, struct queue *qu, struct xn_ctl_request *q,
		   uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = q };

	if (epoll_ctl(s->efd, EPOLL_CTL_ADD, q->fd, &ev) < 0)
		return -errno;
	q->prev = qu->tail;
	q->next = NULL;
	if (qu->tail)
		qu->tail->next = q;
	else
		qu->head = q;
	qu->tail = q;
	qu->n++;
	return 0;
}

static int add_pending(struct xn_ctl_server *s, struct xn_ctl_request *q)
{
	if (s->reading.n == MAX_PENDING) {
		struct xn_ctl_request *oldest = s->reading.head;
		dequeue(s, &s->reading, oldest);
		xn_ctl_request_free(oldest);
		s->expired++;
	}
	return enqueue(s, &s->reading, q, EPOLLIN | EPOLLRDHUP);
}

/* Sends what the socket takes of the rest of a reply: 1 when all of it
 * is sent, 0 when more waits for room, -errno. */
static int send_rest(struct xn_ctl_request *q)
{
	while (q->out_off < q->out_len) {
		ssize_t k = send(q->fd, q->out + q->out_off, q->out_len - q->out_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
		q->out_off += (size_t)k;
	}
	return 1;
}

int xn_ctl_server_reply(struct xn_ctl_server *s, struct xn_ctl_request *q, int status,
			const char *body)
{
	uint32_t hdr[2] = { (uint32_t)(status < 0 ? -status : status), (uint32_t)strlen(body) };
	size_t len = sizeof(hdr) + hdr[1];
	int r;

	/* The whole reply as one buffer: sent at once when it fits (the
	 * common case), kept for later otherwise. */
	q->out = malloc(len);
	if (!q->out) {
		xn_ctl_request_free(q);
		return -ENOMEM;
	}
	memcpy(q->out, hdr, sizeof(hdr));
	memcpy(q->out + sizeof(hdr), body, hdr[1]);
	q->out_len = len;
	q->out_off = 0;
	r = send_rest(q);
	if (r == 0) {
		q->deadline = xn_now_ms() + REPLY_DEADLINE_MS;
		r = enqueue(s, &s->replying, q, EPOLLOUT);
		if (r >= 0)
			return 0;
	}
	xn_ctl_request_free(q);
	return r < 0 ? r : 0;
}

/* The words of a complete request: NUL-terminated, argv style. */
static int split_words(struct xn_ctl_request *q, uint32_t len)
{
	char *buf = q->raw + sizeof(uint32_t);

	if (buf[len - 1] != '\0')
		return -EBADMSG;
	buf[len] = '\0';
	q->n = 0;
	for (uint32_t off = 0; off < len;) {
		if (q->n == XN_CTL_MAX_WORDS)
			return -E2BIG;
		q->words[q->n++] = buf + off;
		off += (uint32_t)strlen(buf + off) + 1;
	}
	return 0;
}

/* Reads what the socket holds: 1 when the request is complete (or cannot
 * be: q->r), 0 when more is to come. One request per connection: the
 * length and the words come in one recv() when the client sent them. */
int xn_ctl_request_read(struct xn_ctl_request *q)
{
	for (;;) {
		size_t room = sizeof(q->raw) - 1 - q->got;
		uint32_t len = 0;
		ssize_t k = recv(q->fd, q->raw + q->got, room, 0);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (k <= 0) {
			q->r = k < 0 ? -errno : -ECONNRESET;
			return 1;
		}
		q->got += (uint32_t)k;
		if (q->got < sizeof(len))
			continue;
		memcpy(&len, q->raw, sizeof(len));
		if (len == 0 || len > XN_CTL_MAX_REQUEST) {
			q->r = -EMSGSIZE;
			return 1;
		}
		if (q->got >= sizeof(len) + len) {
			q->r = split_words(q, len);
			return 1;
		}
	}
}

static struct xn_ctl_request *accept_one(struct xn_ctl_server *s, int *err)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct xn_ctl_request *q;
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0) {
		*err = -errno;
		return NULL;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != 0) {
		close(fd);
		s->refused++;
		*err = -EPERM;
		return NULL;
	}
	q = malloc(sizeof(*q));
	if (!q) {
		close(fd);
		*err = -ENOMEM;
		return NULL;
	}
	q->fd = fd;
	q->r = 0;
	q->n = 0;
	q->got = 0;
	q->out = NULL;
	q->deadline = xn_now_ms() + REQUEST_DEADLINE_MS;
	q->prev = q->next = NULL;
	return q;
}

/* New connections: read at once (a client sends its request right after
 * connecting); those not complete yet wait in the epoll set. */
static size_t take_new(struct xn_ctl_server *s, struct xn_ctl_request **ready, size_t n,
		       size_t max, int *err)
{
	while (n < max) {
		int e = 0;
		struct xn_ctl_request *q = accept_one(s, &e);

		if (!q) {
			if (e == -EAGAIN || e == -EWOULDBLOCK)
				break;
			if (e != -EPERM && e != -ECONNABORTED) {
				*err = e;
				break;
			}
			continue;
		}
		if (xn_ctl_request_read(q)) {
			ready[n++] = q; /* complete, or answered with its error */
		} else if ((e = add_pending(s, q)) < 0) {
			q->r = e; /* it cannot wait: answered with the error */
			ready[n++] = q;
		}
	}
	return n;
}

size_t xn_ctl_server_take(struct xn_ctl_server *s, struct xn_ctl_request **ready, size_t max,
			  int *err)
{
	struct epoll_event evs[32];
	size_t n = 0;
	int k;

	*err = 0;
	k = epoll_wait(s->efd, evs, (int)XN_ARRAY_SIZE(evs), 0);
	for (int i = 0; i < k && n < max; i++) {
		struct xn_ctl_request *q = evs[i].data.ptr;
		if (q && q->out) { /* room for more of its reply */
			if (send_rest(q) != 0) {
				dequeue(s, &s->replying, q);
				xn_ctl_request_free(q);
			}
			continue;
		}
		if (!q || !xn_ctl_request_read(q))
			continue; /* the listening socket; or more to come */
		dequeue(s, &s->reading, q);
		ready[n++] = q;
	}
	return take_new(s, ready, n, max, err);
}

int xn_ctl_server_timeout_ms(const struct xn_ctl_server *s)
{
	int64_t first = -1, left;

	if (s->reading.head)
		first = s->reading.head->deadline;
	if (s->replying.head && (first < 0 || s->replying.head->deadline < first))
		first = s->replying.head->deadline;
	if (first < 0)
		return -1;
	left = first - xn_now_ms();
	return left < 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

static unsigned expire_queue(struct xn_ctl_server *s, struct queue *qu, int64_t now)
{
	unsigned n = 0;

	while (qu->head && qu->head->deadline <= now) {
		struct xn_ctl_request *q = qu->head;
		dequeue(s, qu, q);
		xn_ctl_request_free(q);
		n++;
	}
	return n;
}

void xn_ctl_server_expire(struct xn_ctl_server *s)
{
	/* Those due in the next moment go too: a burst of clients that
	 * stalled together is dropped (and logged) together. */
	int64_t now = xn_now_ms() + EXPIRE_SLACK_MS;

	s->expired += expire_queue(s, &s->reading, now);
	s->abandoned += expire_queue(s, &s->replying, now);
}

void xn_ctl_server_counts(struct xn_ctl_server *s, unsigned *refused, unsigned *expired,
			  unsigned *abandoned)
{
	*refused = s->refused;
	*expired = s->expired;
	*abandoned = s->abandoned;
	s->refused = s->expired = s->abandoned = 0;
}

void xn_ctl_server_close(struct xn_ctl_server *s)
{
	if (!s)
		return;
	expire_queue(s, &s->reading, INT64_MAX);
	expire_queue(s, &s->replying, INT64_MAX);
	if (s->efd >= 0)
		close(s->efd);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	free(s);
}

int xn_ctl_write_reply(int fd, int status, const char *body)
{
	uint32_t hdr[2] = { (uint32_t)(status < 0 ? -status : status),
			    (uint32_t)strlen(body) };
	int64_t deadline = xn_now_ms() + 2000;
	int r;

	r = io_full(fd, hdr, sizeof(hdr), true, deadline);
	if (r >= 0)
		r = io_full(fd, (void *)body, hdr[1], true, deadline);
	return r;
}

bool xn_ctl_peer_gone(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLRDHUP };

	return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR));
}
