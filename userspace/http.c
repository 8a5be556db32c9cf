/* http.c - glimpse's HTTP server on libmicrohttpd: routing, the token check,
 * bounded requests, TLS and the access log. See http.h.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "json.h"

#define TOKEN_COOKIE "glimpse_token"

struct http_server {
	struct MHD_Daemon *d;
	struct http_opts o;
	uint16_t port;
};

/* Per request, from its first call to its completion. */
struct request {
	struct buf body;
	bool too_big;
	bool answered;
	int status;
	const char *route;
	struct timespec t0;
	uint64_t bytes;
};

static double since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

bool http_token_equal(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	unsigned char diff = (unsigned char)(na != nb);

	/* Walk the expected token's length whatever the input, so timing says nothing
	 * about how much of it matched. */
	for (size_t i = 0; i < nb; i++)
		diff |= (unsigned char)(b[i] ^ (i < na ? a[i] : 0));
	return diff == 0;
}

const char *http_query(const struct http_req *r, const char *key)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_header(const struct http_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

void http_error(struct http_resp *w, int status, const char *fmt, ...)
{
	struct buf msg = {0};
	struct json j;
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	w->status = status;
	w->type = "application/json";
	buf_reset(&w->body);
	json_init(&j, &w->body);
	json_obj(&j);
	json_kv_str(&j, "error", buf_str(&msg));
	json_end(&j);
	buf_putc(&w->body, '\n');
	buf_free(&msg);
}

void http_add_header(struct http_resp *w, const char *name, const char *value)
{
	struct buf b = {0};

	if (w->nheaders == HTTP_MAX_HEADERS)
		return;
	buf_printf(&b, "%s: %s", name, value);
	w->headers[w->nheaders++] = buf_detach(&b);
}

bool http_query_int(const struct http_req *r, struct http_resp *w, const char *key, int64_t min, int64_t max,
		    int64_t *out)
{
	const char *v = http_query(r, key);
	char *end;
	long long n;

	if (!v)
		return true;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (!*v || *end || errno || n < min || n > max) {
		http_error(w, 400, "%s must be an integer from %lld to %lld, not '%s'", key, (long long)min,
			   (long long)max, v);
		return false;
	}
	*out = n;
	return true;
}

bool http_param_id(const struct http_req *r, struct http_resp *w, int i, const char *what, int64_t *id)
{
	char *end;
	long long v;

	errno = 0;
	v = i < r->nparams ? strtoll(r->params[i], &end, 10) : 0;
	if (i >= r->nparams || *end || errno || v <= 0) {
		http_error(w, 400, "'%s' is not a %s id", i < r->nparams ? r->params[i] : "", what);
		return false;
	}
	*id = v;
	return true;
}

/* Matches url against pattern ("*" matches one non-empty segment, a final two stars
 * the rest of the url, empty or not); fills params. */
static bool match(const char *pattern, const char *url, struct http_req *r)
{
	const char *p = pattern, *u = url;

	r->nparams = 0;
	while (*p && *u) {
		if (p[0] == '*' && p[1] == '*')
			return true;
		if (*p == '*') {
			const char *e = strchr(u, '/');
			size_t n = e ? (size_t)(e - u) : strlen(u);

			if (n == 0 || r->nparams == HTTP_MAX_PARAMS)
				return false;
			r->params[r->nparams++] = xstrndup(u, n);
			p++;
			u += n;
			continue;
		}
		if (*p != *u)
			return false;
		p++;
		u++;
	}
	return (!*p || strcmp(p, "**") == 0) && !*u;
}

static void free_params(struct http_req *r)
{
	for (int i = 0; i < r->nparams; i++)
		free((char *)r->params[i]);
	r->nparams = 0;
}

/* The token the request carries: Authorization: Bearer, the cookie, or ?token=. */
static const char *request_token(struct MHD_Connection *c, bool *from_query)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	const char *v;

	*from_query = false;
	if (h && strncasecmp(h, "Bearer ", 7) == 0)
		return h + 7;
	v = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, TOKEN_COOKIE);
	if (v)
		return v;
	v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token");
	if (v)
		*from_query = true;
	return v;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct http_stream *s = cls;
	ssize_t n;

	(void)pos;
	n = s->read(s->ctx, buf, max);
	if (n < 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	return n;
}

static void stream_free(void *cls)
{
	struct http_stream *s = cls;

	if (s->done)
		s->done(s->ctx);
	free(s);
}

static enum MHD_Result send_resp(struct MHD_Connection *c, struct request *rq, struct http_resp *w)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (w->stream.read) {
		struct http_stream *s = xmalloc(sizeof(*s));

		*s = w->stream;
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, s, stream_free);
	} else {
		size_t n = w->body.len;

		resp = MHD_create_response_from_buffer_with_free_callback(n, buf_detach(&w->body), free);
		rq->bytes = n;
	}
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, w->type ? w->type : "application/json");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	for (int i = 0; i < w->nheaders; i++) {
		char *colon = strchr(w->headers[i], ':');

		if (colon) {
			*colon = 0;
			MHD_add_response_header(resp, w->headers[i], colon + 2);
		}
		free(w->headers[i]);
	}
	w->nheaders = 0;
	/* API answers are never cached; a handler may say otherwise (the web UI's assets). */
	if (!MHD_get_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	rq->status = w->status ? w->status : 200;
	ret = MHD_queue_response(c, (unsigned int)rq->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result answer_error(struct MHD_Connection *c, struct request *rq, int status, const char *msg,
				    const char *allow)
{
	struct http_resp w = {0};

	http_error(&w, status, "%s", msg);
	if (allow)
		http_add_header(&w, "Allow", allow);
	return send_resp(c, rq, &w);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct http_server *srv = cls;
	struct request *rq = *con_cls;
	const struct http_route *route = NULL;
	struct http_req r = {0};
	struct http_resp w = {0};
	bool from_query = false;
	struct buf allow = {0};
	const char *tok;
	enum MHD_Result ret;

	(void)version;
	if (!rq) {
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

		rq = xcalloc(1, sizeof(*rq));
		clock_gettime(CLOCK_MONOTONIC, &rq->t0);
		*con_cls = rq;
		if (cl && strtoull(cl, NULL, 10) > srv->o.max_body)
			rq->too_big = true;
		return MHD_YES;
	}
	if (*upload_size) {
		if (!rq->too_big && rq->body.len + *upload_size <= srv->o.max_body)
			buf_add(&rq->body, upload, *upload_size);
		else
			rq->too_big = true;
		*upload_size = 0;
		return MHD_YES;
	}
	if (rq->answered)
		return MHD_YES;
	rq->answered = true;

	/* Route first (404 and 405 say nothing secret), then the token. A route
	 * ending in "**" (the web UI) is a fallback: taken only when no other route
	 * has the path. */
	for (size_t i = 0, n = srv->o.nroutes; i < 2 * n && !route; i++) {
		const struct http_route *rt = &srv->o.routes[i < n ? i : i - n];
		bool fallback = strstr(rt->pattern, "**") != NULL;

		if (fallback != (i >= n) || (fallback && allow.len))
			continue;
		if (!match(rt->pattern, url, &r))
			continue;
		buf_printf(&allow, "%s%s", allow.len ? ", " : "", rt->method);
		if (strcmp(rt->method, method) == 0) {
			route = rt;
			break;
		}
		free_params(&r);
	}
	if (!route) {
		free_params(&r);
		rq->route = "";
		if (allow.len) {
			char msg[128];

			snprintf(msg, sizeof(msg), "%s is not allowed here; use %s", method, buf_str(&allow));
			ret = answer_error(c, rq, 405, msg, buf_str(&allow));
			buf_free(&allow);
			return ret;
		}
		return answer_error(c, rq, 404, "no such route (see the README's HTTP API)", NULL);
	}
	buf_free(&allow);
	rq->route = route->pattern;
	tok = request_token(c, &from_query);
	if (!route->open && srv->o.token && (!tok || !http_token_equal(tok, srv->o.token))) {
		free_params(&r);
		return answer_error(c, rq, 401,
				    tok ? "wrong token" : "a token is required: Authorization: Bearer TOKEN (see serve's output)",
				    NULL);
	}
	if (rq->too_big) {
		char msg[128];

		free_params(&r);
		snprintf(msg, sizeof(msg), "request body over the limit of %zu bytes", srv->o.max_body);
		return answer_error(c, rq, 413, msg, NULL);
	}
	r.method = method;
	r.url = url;
	r.route = route->pattern;
	r.body = buf_str(&rq->body);
	r.body_len = rq->body.len;
	r.app = srv->o.app;
	r.conn = c;
	w.status = 200;
	route->fn(&r, &w);
	free_params(&r);
	if (from_query && !route->open && srv->o.token) {
		/* Taken once from the URL into a cookie, as Jupyter does. */
		struct buf ck = {0};

		buf_printf(&ck, TOKEN_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict%s", srv->o.token,
			   srv->o.tls_cert ? "; Secure" : "");
		http_add_header(&w, MHD_HTTP_HEADER_SET_COOKIE, buf_str(&ck));
		buf_free(&ck);
	}
	ret = send_resp(c, rq, &w);
	buf_free(&w.body);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct http_server *srv = cls;
	struct request *rq = *con_cls;
	const union MHD_ConnectionInfo *ci;
	char addr[INET6_ADDRSTRLEN] = "?";
	double secs;

	if (!rq)
		return;
	secs = since(&rq->t0);
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr) {
		const struct sockaddr *sa = ci->client_addr;

		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, addr, sizeof(addr));
		else if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, addr,
				  sizeof(addr));
	}
	if (srv->o.observe)
		srv->o.observe(srv->o.app, rq->route ? rq->route : "", rq->status, secs);
	if (srv->o.access_log && rq->status) {
		char line[512];
		time_t now = time(NULL);
		struct tm tm;
		int n;

		gmtime_r(&now, &tm);
		n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02dZ %s %s %d %llu %.1fms%s\n",
			     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, addr,
			     rq->route && *rq->route ? rq->route : "-", rq->status, (unsigned long long)rq->bytes,
			     secs * 1e3, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (cut short)");
		if (n > 0)
			fwrite(line, 1, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1, stderr);
	}
	buf_free(&rq->body);
	free(rq);
	*con_cls = NULL;
}

static void on_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	if (getenv("GLIMPSE_HTTP_DEBUG")) {
		fputs("glimpse serve: libmicrohttpd: ", stderr);
		vfprintf(stderr, fmt, ap);
	}
}

int http_start(const struct http_opts *o, struct http_server **out)
{
	struct http_server *s = xcalloc(1, sizeof(*s));
	struct sockaddr_storage ss = {0};
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC;
	struct MHD_OptionItem opts[16];
	int n = 0;
	const union MHD_DaemonInfo *di;

	s->o = *o;
	if (inet_pton(AF_INET, o->addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons(o->port);
	} else if (inet_pton(AF_INET6, o->addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(o->port);
		flags |= MHD_USE_IPv6;
	} else {
		free(s);
		return err_set(EINVAL, "--listen: '%s' is not an IPv4 or IPv6 address", o->addr);
	}
	if (o->threads == 0)
		flags = (flags & ~(unsigned int)MHD_USE_INTERNAL_POLLING_THREAD) | MHD_USE_THREAD_PER_CONNECTION |
			MHD_USE_INTERNAL_POLLING_THREAD;
	else
		flags |= MHD_USE_EPOLL;
	if (o->tls_cert) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			free(s);
			return err_set(ENOTSUP, "this libmicrohttpd was built without TLS");
		}
		flags |= MHD_USE_TLS;
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)o->tls_cert};
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)o->tls_key};
	}
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, o->timeout_s, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)o->max_header, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, o->max_conns, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_log, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL};
	if (o->threads)
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, o->threads, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	s->d = MHD_start_daemon(flags, o->port, NULL, NULL, on_request, s, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (!s->d) {
		free(s);
		return err_set(EADDRINUSE, "cannot listen on %s port %u (in use, not an address of this host, or the TLS "
				     "key or certificate refused)", o->addr, (unsigned int)o->port);
	}
	di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = di ? di->port : o->port;
	*out = s;
	return 0;
}

uint16_t http_port(const struct http_server *s)
{
	return s->port;
}

void http_quiesce(struct http_server *s)
{
	if (s && s->d) {
		MHD_socket fd = MHD_quiesce_daemon(s->d);

		if (fd != MHD_INVALID_SOCKET)
			close(fd);
	}
}

void http_stop(struct http_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->d);
	free(s);
}
