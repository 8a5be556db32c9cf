/* http.h - glimpse's one HTTP server: libmicrohttpd set up with its own threads,
 * a route table, the token check, bounded bodies and headers, connection
 * timeouts, TLS, and one access-log line per request.
 *
 * Handlers fill a struct http_resp; every error answer is {"error": "..."} with
 * a status that means what it says (http_error). Routes name path segments with
 * "*" ("/api/snapshots/ * /goroutines" without the spaces); the segments matched
 * are req->params[].
 */
#ifndef GLIMPSE_HTTP_H
#define GLIMPSE_HTTP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

#define HTTP_MAX_PARAMS 4
#define HTTP_MAX_HEADERS 8

struct MHD_Connection;
struct http_server;

struct http_req {
	const char *method;		/* "GET", "POST", ... */
	const char *url;		/* the path, without the query */
	const char *route;		/* the matched route's pattern (for metrics) */
	const char *params[HTTP_MAX_PARAMS]; /* the "*" segments of the route, in order */
	int nparams;
	const char *body;		/* the request body, NUL-terminated; "" when none */
	size_t body_len;
	void *app;			/* http_opts.app */
	struct MHD_Connection *conn;
};

/* A streamed answer: read() fills up to max bytes at buf and returns how many,
 * 0 to wait and be called again (it should block a little itself, up to a
 * second), or -1 at the end. done() is called once when the connection ends. */
struct http_stream {
	ssize_t (*read)(void *ctx, char *buf, size_t max);
	void (*done)(void *ctx);
	void *ctx;
};

struct http_resp {
	int status;			/* 200 unless set */
	const char *type;		/* Content-Type; "application/json" unless set */
	struct buf body;
	char *headers[HTTP_MAX_HEADERS]; /* "Name: value", owned */
	int nheaders;
	struct http_stream stream;	/* used instead of body when stream.read is set */
};

typedef void (*http_handler)(struct http_req *req, struct http_resp *resp);

struct http_route {
	const char *method;
	const char *pattern;
	http_handler fn;
	bool open;			/* answered without the token (only /api/health) */
};

struct http_opts {
	const char *addr;		/* IPv4 or IPv6 address to listen on */
	uint16_t port;			/* 0: any free port (see http_port) */
	const char *token;		/* required on every route but the open ones */
	const char *tls_cert;		/* PEM text, or NULL for plain HTTP */
	const char *tls_key;
	size_t max_body;		/* bytes; larger bodies get 413 */
	size_t max_header;		/* bytes of request line and headers; more gets 431 */
	unsigned int timeout_s;		/* idle connections are closed after this */
	unsigned int threads;		/* worker threads; 0: one thread per connection */
	unsigned int max_conns;		/* connections at once */
	const struct http_route *routes;
	size_t nroutes;
	void *app;
	bool access_log;		/* one line per request on stderr */
	/* Called after each request with its route ("" when none matched), status
	 * and time, for metrics. */
	void (*observe)(void *app, const char *route, int status, double seconds);
};

/* Starts serving. Returns 0 and *out, or a negative code with a message
 * (address in use, bad address, TLS key refused). */
int http_start(const struct http_opts *o, struct http_server **out);
/* The port listened on (useful with port 0). */
uint16_t http_port(const struct http_server *s);
/* Stops accepting new connections; those open finish. */
void http_quiesce(struct http_server *s);
/* Stops the server and waits for its threads. */
void http_stop(struct http_server *s);

/* The value of query argument key (URL-decoded), or NULL. */
const char *http_query(const struct http_req *r, const char *key);
/* The value of request header name (case-insensitive), or NULL. */
const char *http_header(const struct http_req *r, const char *name);
/* Sets an error answer: status and {"error": "<message>"}. */
void http_error(struct http_resp *w, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Adds a response header. */
void http_add_header(struct http_resp *w, const char *name, const char *value);
/* Parses a query argument as an integer in [min, max]: returns false and sets a
 * 400 answer naming the argument when it is present and malformed; *out keeps
 * its value when absent. */
bool http_query_int(const struct http_req *r, struct http_resp *w, const char *key, int64_t min, int64_t max,
		    int64_t *out);
/* Parses route parameter i as a positive id of a `what` ("snapshot"): false and
 * a 400 answer naming it when it is not one. */
bool http_param_id(const struct http_req *r, struct http_resp *w, int i, const char *what, int64_t *id);
/* Whether a and b (NUL-terminated) are equal, in time that depends only on
 * their lengths. */
bool http_token_equal(const char *a, const char *b);

#endif
