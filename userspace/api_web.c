/* api_web.c - the web UI at /: the bundle web/ builds into build/web (make),
 * compiled into the binary by scripts/embed.sh and served from memory.
 *
 * Every path that is not a file of the bundle and not under /api/ answers
 * index.html, so that each view of the UI has its own URL. The bundle's
 * assets/ have content hashes in their names and are cached for a year;
 * index.html is revalidated every time. A gzip copy made at build time is sent
 * to clients that accept it. A Content-Security-Policy allows only the page's
 * own origin: nothing is loaded from elsewhere. The editor (CodeMirror) adds
 * <style> elements: index.html gets a fresh nonce for them in each answer
 * (its "__CSP_NONCE__" replaced), which the policy names; no other inline
 * style or script runs.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "api.h"

struct embedded {
	const char *name;
	const unsigned char *data;
	size_t len;
};

const struct embedded *embedded_file(const char *name);

#define CSP_HEAD "default-src 'self'; script-src 'self'; style-src 'self'"
#define CSP_TAIL                                                                                                \
	"; img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none';" \
	" frame-ancestors 'none'; form-action 'self'"
#define NONCE_MARK "__CSP_NONCE__"

/* The Content-Type for a file name, by its extension. */
static const char *content_type(const char *name)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
		{".html", "text/html; charset=utf-8"},	      {".js", "text/javascript; charset=utf-8"},
		{".css", "text/css; charset=utf-8"},	      {".json", "application/json"},
		{".svg", "image/svg+xml"},		      {".png", "image/png"},
		{".ico", "image/x-icon"},		      {".map", "application/json"},
		{".txt", "text/plain; charset=utf-8"},	      {".woff2", "font/woff2"},
	};
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return "application/octet-stream";
}

/* Whether the client takes gzip (Accept-Encoding names it without q=0). */
static bool accepts_gzip(const struct http_req *r)
{
	const char *ae = http_header(r, "Accept-Encoding");
	const char *g = ae ? strcasestr(ae, "gzip") : NULL;

	return g && strncmp(g + 4, ";q=0", 4) != 0;
}

/* Answers the embedded file web/<path>, its gzip copy when there is one and the
 * client takes it; false when the bundle has no such file. */
static bool send_file(struct http_req *r, struct http_resp *w, const char *path)
{
	char name[512], gz[520];
	const struct embedded *e, *z;

	if (snprintf(name, sizeof(name), "web/%s", path) >= (int)sizeof(name))
		return false;
	e = embedded_file(name);
	if (!e)
		return false;
	w->type = content_type(name);
	if (strcmp(path, "index.html") == 0) {
		unsigned char rnd[16];
		char nonce[33], policy[512];
		const char *p = (const char *)e->data, *end = p + e->len, *m;

		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
			http_error(w, 500, "no random bytes for the page's nonce");
			return true;
		}
		for (size_t i = 0; i < sizeof(rnd); i++)
			snprintf(nonce + 2 * i, 3, "%02x", rnd[i]);
		while ((m = memmem(p, (size_t)(end - p), NONCE_MARK, strlen(NONCE_MARK)))) {
			buf_add(&w->body, p, (size_t)(m - p));
			buf_puts(&w->body, nonce);
			p = m + strlen(NONCE_MARK);
		}
		buf_add(&w->body, p, (size_t)(end - p));
		snprintf(policy, sizeof(policy), CSP_HEAD " 'nonce-%s'" CSP_TAIL, nonce);
		http_add_header(w, "Content-Security-Policy", policy);
	} else {
		snprintf(gz, sizeof(gz), "%s.gz", name);
		z = accepts_gzip(r) ? embedded_file(gz) : NULL;
		buf_add(&w->body, z ? z->data : e->data, z ? z->len : e->len);
		if (z)
			http_add_header(w, "Content-Encoding", "gzip");
		http_add_header(w, "Content-Security-Policy", CSP_HEAD CSP_TAIL);
	}
	http_add_header(w, "Vary", "Accept-Encoding");
	http_add_header(w, "Cache-Control",
			strncmp(path, "assets/", 7) == 0 ? "public, max-age=31536000, immutable" : "no-cache");
	/* The first URL carries the token: never send it on as a Referer. */
	http_add_header(w, "Referrer-Policy", "no-referrer");
	return true;
}

static void get_web(struct http_req *r, struct http_resp *w)
{
	const char *path = r->url + strspn(r->url, "/");

	if (strncmp(r->url, "/api/", 5) == 0 || strcmp(r->url, "/api") == 0) {
		http_error(w, 404, "no such route (see the README's HTTP API)");
		return;
	}
	if (*path && !strstr(path, "..") && send_file(r, w, path))
		return;
	if (strncmp(path, "assets/", 7) == 0) {
		http_error(w, 404, "no such file in the web UI's bundle: %s", path);
		return;
	}
	if (!send_file(r, w, "index.html"))
		http_error(w, 404, "this glimpse was built without its web UI (make builds web/ with npm)");
}

const struct http_route api_web_routes[] = {
	{"GET", "/**", get_web, false},
};
const size_t api_web_nroutes = sizeof(api_web_routes) / sizeof(api_web_routes[0]);
