/* record_relay.c - glimpse record's byte relay: one thread with an epoll loop that
 * accepts client connections, reads a new connection's first request headers when
 * the key needs them, connects it to its client's instance and moves bytes both
 * ways with splice(2) through a pipe per direction, so relayed bytes never pass
 * through userspace (pipes are reused across connections). A connection whose
 * instance has to start (or is starting) waits in a thread of its own, so a slow
 * start holds no other connection up; it is handed back once it has its instance.
 *
 * Each direction is a flow: bytes read from one socket into its pipe, written from
 * the pipe to the other socket. A flow reads only while its pipe is empty and
 * writes what the pipe holds as soon as the other socket takes it; epoll interest
 * follows (EPOLLIN to read, EPOLLOUT while bytes wait), level-triggered. A flow
 * whose source ended shuts the other side's write half down; a connection ends
 * when both flows have, or on any error.
 */
#include "record_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"

#define HEAD_MAX	(32 * 1024) /* request line and headers read for the key */
#define HEAD_TIMEOUT_NS (10 * NS_PER_S)
#define SPLICE_MAX	(64 * 1024) /* bytes moved into a pipe at once (its default size) */
#define RELAY_EVENTS	128	    /* epoll events taken at once */
#define PIPE_POOL	128	    /* empty pipes kept for new connections */

enum side { CLIENT, APP };

enum phase {
	PH_HEAD,  /* reading the first request's headers for the key */
	PH_START, /* a starter thread gets its instance; not in the epoll set */
	PH_RELAY, /* from the instance's connect on (loopback: established at once, else
		   * bytes wait for EPOLLOUT like any others) */
};

/* Bytes from one side to the other: read from fd[from] into pipe, written to fd[!from]. */
struct flow {
	int pipe[2];	/* -1 until first used */
	size_t pending; /* bytes in the pipe */
	bool eof;	/* the source has ended */
	bool done;	/* eof and everything written: the other side's write half is shut */
};

struct rconn;

/* What an epoll event points at: a side of a connection, or (c NULL) the listening
 * socket (side CLIENT) or the wake-up eventfd (side APP). */
struct tag {
	struct rconn *c;
	enum side side;
};

struct rconn {
	struct rconn *prev, *next; /* the relay's connections (not while PH_START) */
	enum phase phase;
	bool dead;	     /* closed; freed after the current batch of events */
	bool app_spoke;	     /* a byte came from the instance */
	int fd[2];	     /* by enum side; fd[APP] -1 until connecting */
	uint32_t want[2];    /* epoll interest of fd[i]; 0: not in the epoll set */
	struct flow flow[2]; /* flow[i]: from fd[i] to fd[!i] */
	struct instance *in; /* with a connection counted, from PH_RELAY on */
	struct buf head;     /* the first request's start, read for the key */
	size_t head_sent;    /* of head, written to the app (ahead of flow[CLIENT]'s pipe) */
	int64_t head_deadline;
	char *key;
	int status; /* a start that failed: the answer's status and message */
	char *msg;
	char ip[INET6_ADDRSTRLEN];
	struct tag tag[2];
	struct relay *rl;
};

struct relay {
	struct recorder *r;
	int ep, wake; /* epoll set; eventfd: stop, or connections handed back */
	pthread_t thread;
	struct rconn *conns, *dead;
	int64_t now;	    /* CLOCK_MONOTONIC ns at the last wake-up */
	int64_t next_sweep; /* for head time-outs */
	int npipes;
	int pipes[PIPE_POOL][2];
	struct tag listen_tag, wake_tag;
	pthread_mutex_t mu; /* back, closed, starting */
	pthread_cond_t cv;
	struct rconn *back; /* connections a starter thread has finished with */
	bool closed;	    /* the relay thread has ended: starters clean up themselves */
	int starting;	    /* starter threads running */
};

/* Writes all of n bytes to a socket, without SIGPIPE. Returns 0 or -1. */
static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Answers a client that gets no instance with status and message (the connection
 * is closed after). */
static void answer_error(int fd, int status, const char *msg)
{
	struct buf b = {0};

	buf_printf(&b,
		   "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n"
		   "Connection: close\r\n\r\n%s\n",
		   status, status == 503 ? "Service Unavailable" : "Bad Gateway", strlen(msg) + 1, msg);
	send_all(fd, b.p, b.len);
	buf_free(&b);
}

/* Sets fd[side]'s epoll interest to want (0 takes it out of the set, so that a
 * hang-up nobody waits for is not reported over and over). */
static void set_want(struct rconn *c, enum side side, uint32_t want)
{
	struct epoll_event ev = {.events = want, .data.ptr = &c->tag[side]};
	int op = !want ? EPOLL_CTL_DEL : c->want[side] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;

	if (want == c->want[side])
		return;
	epoll_ctl(c->rl->ep, op, c->fd[side], &ev);
	c->want[side] = want;
}

/* An empty pipe for f, from the pool or new. Returns 0 or -1. */
static int pipe_get(struct relay *rl, struct flow *f)
{
	if (rl->npipes) {
		rl->npipes--;
		f->pipe[0] = rl->pipes[rl->npipes][0];
		f->pipe[1] = rl->pipes[rl->npipes][1];
		return 0;
	}
	return pipe2(f->pipe, O_NONBLOCK | O_CLOEXEC);
}

/* Gives f's pipe back to the pool when empty (pool true), else closes it. */
static void pipe_put(struct relay *rl, struct flow *f, bool pool)
{
	if (f->pipe[0] < 0)
		return;
	if (pool && !f->pending && rl->npipes < PIPE_POOL) {
		rl->pipes[rl->npipes][0] = f->pipe[0];
		rl->pipes[rl->npipes][1] = f->pipe[1];
		rl->npipes++;
	} else {
		close(f->pipe[0]);
		close(f->pipe[1]);
	}
	f->pipe[0] = f->pipe[1] = -1;
}

/* Frees c: its sockets, pipes (to the pool when from_relay), instance count. */
static void conn_free(struct relay *rl, struct rconn *c, bool from_relay)
{
	for (int i = 0; i < 2; i++) {
		pipe_put(rl, &c->flow[i], from_relay);
		if (c->fd[i] >= 0)
			close(c->fd[i]);
	}
	if (c->in)
		record_instance_release(rl->r, c->in);
	buf_free(&c->head);
	free(c->key);
	free(c->msg);
	free(c);
}

/* Takes c out of the relay's list of connections (conn_link puts it back). */
static void conn_unlink(struct relay *rl, struct rconn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		rl->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
}

/* Ends c from the relay thread: out of the list and the epoll set now, freed once
 * the current batch of events (which may still point at it) is handled. */
static void conn_close(struct relay *rl, struct rconn *c)
{
	if (c->dead)
		return;
	c->dead = true;
	conn_unlink(rl, c);
	for (int i = 0; i < 2; i++)
		if (c->fd[i] >= 0) {
			close(c->fd[i]); /* leaves the epoll set: no other descriptor shares it */
			c->fd[i] = -1;
		}
	c->next = rl->dead;
	rl->dead = c;
}

static void conn_link(struct relay *rl, struct rconn *c)
{
	c->prev = NULL;
	c->next = rl->conns;
	if (rl->conns)
		rl->conns->prev = c;
	rl->conns = c;
}

/* Bytes flow d still has to write: the head (client to app only), then its pipe. */
static size_t pending_out(const struct rconn *c, enum side d)
{
	return c->flow[d].pending + (d == CLIENT ? c->head.len - c->head_sent : 0);
}

/* Writes what flow d holds to the other side, as much as it takes now. Returns 1
 * when all is written, 0 when the socket is full, -1 on an error. */
static int flow_flush(struct rconn *c, enum side d)
{
	struct flow *f = &c->flow[d];
	int to = c->fd[!d];

	while (d == CLIENT && c->head_sent < c->head.len) {
		ssize_t n = send(to, c->head.p + c->head_sent, c->head.len - c->head_sent, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return -1;
		c->head_sent += (size_t)n;
		if (c->head_sent == c->head.len) {
			buf_free(&c->head);
			c->head_sent = 0;
		}
	}
	while (f->pending) {
		ssize_t n = splice(f->pipe[0], NULL, to, NULL, f->pending, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return -1;
		f->pending -= (size_t)n;
		if (f->pending)
			return 0; /* the socket took part: it is full */
	}
	return 1;
}

/* Moves what flow d can move now: what it holds out when fd[!d] may take it, then
 * (once empty) a read from fd[d] when readable, written straight on. Passes an end
 * on as a half-close. Returns -1 when the connection is over by an error. */
static int flow_step(struct relay *rl, struct rconn *c, enum side d, bool readable, bool writable)
{
	struct flow *f = &c->flow[d];
	ssize_t n;

	if (pending_out(c, d) && writable && flow_flush(c, d) < 0)
		return -1;
	if (pending_out(c, d))
		return 0;
	if (!f->eof && readable) {
		if (f->pipe[0] < 0 && pipe_get(rl, f) != 0)
			return -1;
		do
			n = splice(c->fd[d], NULL, f->pipe[1], NULL, SPLICE_MAX, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno != EAGAIN)
			return -1;
		if (n == 0)
			f->eof = true;
		if (n > 0) {
			f->pending = (size_t)n;
			c->app_spoke |= d == APP;
			__atomic_store_n(&c->in->last_active, rl->now, __ATOMIC_RELAXED);
			if (flow_flush(c, d) < 0)
				return -1;
		}
	}
	if (f->eof && !f->pending && !f->done) {
		if (!c->flow[!d].done) /* else both are done: closing it says as much */
			shutdown(c->fd[!d], SHUT_WR);
		f->done = true;
	}
	return 0;
}

/* Runs both flows of c after events on its sides (ready[i]: fd[i]'s events), then
 * sets the epoll interest they need; closes c when both have ended or one failed. */
static void relay_step(struct relay *rl, struct rconn *c, const uint32_t ready[2])
{
	for (int d = CLIENT; d <= APP; d++) {
		bool readable = ready[d] & (EPOLLIN | EPOLLHUP | EPOLLERR);
		bool writable = ready[!d] & (EPOLLOUT | EPOLLHUP | EPOLLERR);

		if (flow_step(rl, c, (enum side)d, readable, writable) < 0) {
			if (errno == ECONNREFUSED && !c->app_spoke)
				answer_error(c->fd[CLIENT], 502,
					     "glimpse record: the client's instance refused the connection");
			conn_close(rl, c);
			return;
		}
	}
	if (c->flow[CLIENT].done && c->flow[APP].done) {
		conn_close(rl, c);
		return;
	}
	for (int d = CLIENT; d <= APP; d++) {
		uint32_t want = 0;

		if (!c->flow[d].eof && !pending_out(c, (enum side)d))
			want |= EPOLLIN;
		if (pending_out(c, (enum side) !d))
			want |= EPOLLOUT;
		set_want(c, (enum side)d, want);
	}
}

/* Fails c with a 502 and closes it. */
static void conn_fail(struct relay *rl, struct rconn *c, const char *msg)
{
	answer_error(c->fd[CLIENT], 502, msg);
	conn_close(rl, c);
}

/* c has its instance (c->in): connects to it and relays from then on, without
 * waiting for the connect (to loopback it is established at once; if it is not,
 * bytes for it wait for EPOLLOUT; a refusal before the app said anything is
 * answered 502). */
static void connect_app(struct relay *rl, struct rconn *c)
{
	struct sockaddr_in a = {
	    .sin_family = AF_INET, .sin_port = htons(c->in->port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	static const uint32_t ready[2] = {0, EPOLLOUT};
	int one = 1;

	c->fd[APP] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd[APP] < 0) {
		conn_fail(rl, c, "glimpse record: out of sockets");
		return;
	}
	setsockopt(c->fd[APP], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd[APP], (struct sockaddr *)&a, sizeof(a)) != 0 && errno != EINPROGRESS) {
		conn_fail(rl, c, "glimpse record: the client's instance refused the connection");
		return;
	}
	c->phase = PH_RELAY;
	__atomic_store_n(&c->in->last_active, rl->now, __ATOMIC_RELAXED);
	relay_step(rl, c, ready); /* the head, if any, goes out now */
}

static void *start_thread(void *arg);

/* c's key is known: connects it to its running instance, or hands it to a starter
 * thread that starts (or waits for) one. */
static void route(struct relay *rl, struct rconn *c)
{
	pthread_attr_t at;
	pthread_t t;
	int rc;

	c->key = record_client_key(rl->r, buf_str(&c->head), c->ip);
	c->in = record_instance_get(rl->r, c->key);
	if (c->in) {
		connect_app(rl, c);
		return;
	}
	c->phase = PH_START;
	set_want(c, CLIENT, 0);
	/* Out of the list while a starter thread owns it. */
	conn_unlink(rl, c);
	pthread_mutex_lock(&rl->mu);
	rl->starting++;
	pthread_mutex_unlock(&rl->mu);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 256 * 1024);
	rc = pthread_create(&t, &at, start_thread, c);
	pthread_attr_destroy(&at);
	if (rc) {
		pthread_mutex_lock(&rl->mu);
		rl->starting--;
		pthread_mutex_unlock(&rl->mu);
		conn_link(rl, c);
		answer_error(c->fd[CLIENT], 503, "glimpse record: out of threads");
		conn_close(rl, c);
	}
}

/* Gets the instance of c's key, starting it if need be (blocking), then hands c
 * back to the relay thread, or frees it when the relay has ended. */
static void *start_thread(void *arg)
{
	struct rconn *c = arg;
	struct relay *rl = c->rl;
	uint64_t one = 1;

	c->in = record_instance_for(rl->r, c->key, &c->status, &c->msg);
	pthread_mutex_lock(&rl->mu);
	if (rl->closed) {
		pthread_mutex_unlock(&rl->mu);
		conn_free(rl, c, false);
		pthread_mutex_lock(&rl->mu);
	} else {
		c->next = rl->back;
		rl->back = c;
		if (write(rl->wake, &one, sizeof(one)) < 0)
			(void)0;
	}
	rl->starting--;
	pthread_cond_broadcast(&rl->cv);
	pthread_mutex_unlock(&rl->mu);
	return NULL;
}

/* Connections starter threads have finished with: connected, or answered. */
static void take_back(struct relay *rl)
{
	struct rconn *c, *next;

	pthread_mutex_lock(&rl->mu);
	c = rl->back;
	rl->back = NULL;
	pthread_mutex_unlock(&rl->mu);
	for (; c; c = next) {
		next = c->next;
		conn_link(rl, c);
		if (c->in) {
			connect_app(rl, c);
		} else {
			answer_error(c->fd[CLIENT], c->status, c->msg ? c->msg : "glimpse record: no instance");
			conn_close(rl, c);
		}
	}
}

/* Reads what the client sent of its first request; routes c once the headers are
 * complete, HEAD_MAX bytes are in, or the client has stopped sending. */
static void head_read(struct relay *rl, struct rconn *c)
{
	ssize_t n;

	size_t room;

	buf_grow(&c->head, 4096);
	room = c->head.cap - c->head.len - 1;
	if (room > HEAD_MAX - c->head.len)
		room = HEAD_MAX - c->head.len;
	do
		n = recv(c->fd[CLIENT], c->head.p + c->head.len, room, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n > 0) {
		c->head.len += (size_t)n;
		c->head.p[c->head.len] = 0;
		if (c->head.len < HEAD_MAX && !strstr(c->head.p, "\r\n\r\n"))
			return;
	}
	if (!c->head.len) {
		conn_close(rl, c);
		return;
	}
	route(rl, c);
}

/* Closes or routes the connections whose headers did not come in time (routed with
 * what came, as before: the key falls back to the address). */
static void sweep_heads(struct relay *rl)
{
	struct rconn *c, *next;

	for (c = rl->conns; c; c = next) {
		next = c->next;
		if (c->phase != PH_HEAD || rl->now < c->head_deadline)
			continue;
		if (c->head.len)
			route(rl, c);
		else
			conn_close(rl, c);
	}
	rl->next_sweep = rl->now + NS_PER_S;
}

/* Accepts a connection waiting on the listening socket (one per wake-up: the
 * listening socket is level-triggered, and a second accept would mostly find
 * nothing). TCP_NODELAY comes from the listening socket. */
static void accept_one(struct relay *rl)
{
	struct recorder *r = rl->r;
	struct sockaddr_storage sa = {0};
	socklen_t len = sizeof(sa);
	int fd = accept4(r->lfd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct rconn *c;

	if (fd < 0) {
		/* Out of descriptors or memory: the listening socket stays readable, so
		 * wait a little rather than spin; connections in flight go on after. */
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			usleep(10000);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->rl = rl;
	c->fd[CLIENT] = fd;
	c->fd[APP] = -1;
	for (int s = 0; s < 2; s++) {
		c->flow[s].pipe[0] = c->flow[s].pipe[1] = -1;
		c->tag[s] = (struct tag){.c = c, .side = (enum side)s};
	}
	if (sa.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, c->ip, sizeof(c->ip));
	else
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, c->ip, sizeof(c->ip));
	conn_link(rl, c);
	if (r->o.key == RECORD_KEY_IP) {
		route(rl, c);
	} else {
		c->phase = PH_HEAD;
		c->head_deadline = rl->now + HEAD_TIMEOUT_NS;
		set_want(c, CLIENT, EPOLLIN);
	}
}

/* Handles one epoll event. */
static void on_event(struct relay *rl, const struct tag *t, uint32_t events)
{
	struct rconn *c = t->c;
	uint32_t ready[2] = {0, 0};

	if (!c) {
		if (t->side == CLIENT) {
			accept_one(rl);
		} else {
			uint64_t n;

			if (read(rl->wake, &n, sizeof(n)) < 0)
				(void)0;
			take_back(rl);
		}
		return;
	}
	if (c->dead)
		return;
	switch (c->phase) {
	case PH_HEAD:
		head_read(rl, c);
		break;
	case PH_RELAY:
		ready[t->side] = events;
		relay_step(rl, c, ready);
		break;
	case PH_START:
		break;
	}
}

static void *relay_thread(void *arg)
{
	struct relay *rl = arg;
	struct epoll_event ev[RELAY_EVENTS];
	sigset_t pipe_sig;

	sigemptyset(&pipe_sig);
	sigaddset(&pipe_sig, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_sig, NULL);
	while (!__atomic_load_n(&rl->r->stopping, __ATOMIC_ACQUIRE)) {
		int n = epoll_wait(rl->ep, ev, RELAY_EVENTS, 1000);

		rl->now = record_now(CLOCK_MONOTONIC);
		for (int i = 0; i < n; i++)
			on_event(rl, ev[i].data.ptr, ev[i].events);
		while (rl->dead) {
			struct rconn *c = rl->dead;

			rl->dead = c->next;
			conn_free(rl, c, true);
		}
		if (rl->now >= rl->next_sweep && rl->r->o.key != RECORD_KEY_IP)
			sweep_heads(rl);
	}
	return NULL;
}

int relay_start(struct recorder *r)
{
	struct relay *rl = xcalloc(1, sizeof(*rl));
	struct epoll_event ev = {.events = EPOLLIN};

	rl->r = r;
	rl->listen_tag = (struct tag){.c = NULL, .side = CLIENT};
	rl->wake_tag = (struct tag){.c = NULL, .side = APP};
	pthread_mutex_init(&rl->mu, NULL);
	pthread_cond_init(&rl->cv, NULL);
	rl->ep = epoll_create1(EPOLL_CLOEXEC);
	rl->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (rl->ep < 0 || rl->wake < 0)
		goto fail;
	ev.data.ptr = &rl->listen_tag;
	if (epoll_ctl(rl->ep, EPOLL_CTL_ADD, r->lfd, &ev) != 0)
		goto fail;
	ev.data.ptr = &rl->wake_tag;
	if (epoll_ctl(rl->ep, EPOLL_CTL_ADD, rl->wake, &ev) != 0)
		goto fail;
	if (pthread_create(&rl->thread, NULL, relay_thread, rl) != 0)
		goto fail;
	r->relay = rl;
	return 0;
fail : {
	int rc = err_set(errno, "cannot start the proxy's relay: %s", strerror(errno));

	if (rl->ep >= 0)
		close(rl->ep);
	if (rl->wake >= 0)
		close(rl->wake);
	pthread_mutex_destroy(&rl->mu);
	pthread_cond_destroy(&rl->cv);
	free(rl);
	return rc;
}
}

void relay_stop(struct recorder *r)
{
	struct relay *rl = r->relay;
	uint64_t one = 1;
	struct rconn *c;

	if (!rl)
		return;
	if (write(rl->wake, &one, sizeof(one)) < 0)
		(void)0;
	pthread_join(rl->thread, NULL);
	while (rl->conns)
		conn_close(rl, rl->conns);
	pthread_mutex_lock(&rl->mu);
	rl->closed = true;
	c = rl->back;
	rl->back = NULL;
	while (rl->starting) /* instances still starting give up: r->stopping */
		pthread_cond_wait(&rl->cv, &rl->mu);
	pthread_mutex_unlock(&rl->mu);
	for (struct rconn *next; c; c = next) {
		next = c->next;
		conn_free(rl, c, false);
	}
	while (rl->dead) {
		c = rl->dead;
		rl->dead = c->next;
		conn_free(rl, c, false);
	}
	for (int i = 0; i < rl->npipes; i++) {
		close(rl->pipes[i][0]);
		close(rl->pipes[i][1]);
	}
	close(rl->ep);
	close(rl->wake);
	pthread_mutex_destroy(&rl->mu);
	pthread_cond_destroy(&rl->cv);
	free(rl);
	r->relay = NULL;
}
