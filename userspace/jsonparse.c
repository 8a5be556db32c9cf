/* jsonparse.c - a small recursive-descent JSON parser for request bodies. */
#include "jsonparse.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

struct jv {
	enum jv_type type;
	bool b, is_int;
	double num;
	int64_t i;
	char *s;		/* JV_STR */
	size_t n;		/* elements or members */
	struct jv **items;	/* JV_ARR, JV_OBJ values */
	char **keys;		/* JV_OBJ */
};

struct parser {
	const char *p, *end, *start;
	char *err;
	size_t errlen;
	bool failed;
};

static void fail(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct parser *ps, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ps->failed)
		return;
	ps->failed = true;
	n = snprintf(ps->err, ps->errlen, "at byte %zu: ", (size_t)(ps->p - ps->start));
	if (n < 0 || (size_t)n >= ps->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static int hex4(struct parser *ps, unsigned int *out)
{
	unsigned int v = 0;

	if (ps->end - ps->p < 4) {
		fail(ps, "short \\u escape");
		return -1;
	}
	for (int i = 0; i < 4; i++) {
		char c = *ps->p++;

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned int)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned int)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned int)(c - 'A' + 10);
		else {
			fail(ps, "bad \\u escape");
			return -1;
		}
	}
	*out = v;
	return 0;
}

static void put_utf8(struct buf *b, unsigned int cp)
{
	char u[4];

	if (cp < 0x80) {
		buf_putc(b, (char)cp);
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		buf_add(b, u, 2);
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		buf_add(b, u, 3);
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		buf_add(b, u, 4);
	}
}

/* Parses a string at ps->p (the opening quote); returns it (caller frees) or NULL. */
static char *parse_string(struct parser *ps)
{
	struct buf b = {0};

	ps->p++;
	while (ps->p < ps->end && *ps->p != '"') {
		unsigned char c = (unsigned char)*ps->p++;
		unsigned int cp, lo;

		if (c < 0x20) {
			fail(ps, "control character in a string");
			goto bad;
		}
		if (c != '\\') {
			buf_putc(&b, (char)c);
			continue;
		}
		if (ps->p >= ps->end)
			break;
		c = (unsigned char)*ps->p++;
		switch (c) {
		case '"': case '\\': case '/': buf_putc(&b, (char)c); break;
		case 'b': buf_putc(&b, '\b'); break;
		case 'f': buf_putc(&b, '\f'); break;
		case 'n': buf_putc(&b, '\n'); break;
		case 'r': buf_putc(&b, '\r'); break;
		case 't': buf_putc(&b, '\t'); break;
		case 'u':
			if (hex4(ps, &cp))
				goto bad;
			if (cp >= 0xd800 && cp < 0xdc00 && ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u') {
				ps->p += 2;
				if (hex4(ps, &lo))
					goto bad;
				if (lo >= 0xdc00 && lo < 0xe000)
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				else
					cp = 0xfffd;
			} else if (cp >= 0xd800 && cp < 0xe000) {
				cp = 0xfffd;
			}
			if (cp == 0)
				cp = 0xfffd; /* no NULs inside C strings */
			put_utf8(&b, cp);
			break;
		default:
			fail(ps, "bad escape \\%c", c);
			goto bad;
		}
	}
	if (ps->p >= ps->end) {
		fail(ps, "unterminated string");
		goto bad;
	}
	ps->p++;
	return buf_detach(&b);
bad:
	buf_free(&b);
	return NULL;
}

static struct jv *parse_value(struct parser *ps, int depth);

static void push(struct jv *v, struct jv *item, char *key, size_t *cap)
{
	if (v->n == *cap) {
		*cap = *cap ? *cap * 2 : 4;
		v->items = xrealloc(v->items, *cap * sizeof(struct jv *));
		if (v->type == JV_OBJ)
			v->keys = xrealloc(v->keys, *cap * sizeof(*v->keys));
	}
	if (v->type == JV_OBJ)
		v->keys[v->n] = key;
	v->items[v->n++] = item;
}

static struct jv *parse_container(struct parser *ps, int depth, bool obj)
{
	struct jv *v = xcalloc(1, sizeof(*v));
	size_t cap = 0;
	char close = obj ? '}' : ']';

	v->type = obj ? JV_OBJ : JV_ARR;
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		return v;
	}
	for (;;) {
		char *key = NULL;
		struct jv *item;

		skip_ws(ps);
		if (obj) {
			if (ps->p >= ps->end || *ps->p != '"') {
				fail(ps, "expected a member name");
				break;
			}
			key = parse_string(ps);
			if (!key)
				break;
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':') {
				free(key);
				fail(ps, "expected ':'");
				break;
			}
			ps->p++;
		}
		item = parse_value(ps, depth + 1);
		if (!item) {
			free(key);
			break;
		}
		push(v, item, key, &cap);
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			return v;
		}
		fail(ps, "expected ',' or '%c'", close);
		break;
	}
	jv_free(v);
	return NULL;
}

static bool literal(struct parser *ps, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return false;
	ps->p += n;
	return true;
}

static struct jv *parse_number(struct parser *ps)
{
	const char *s = ps->p;
	char tmp[64], *end;
	struct jv *v;
	size_t n;

	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	while (ps->p < ps->end && strchr("0123456789+-.eE", *ps->p))
		ps->p++;
	n = (size_t)(ps->p - s);
	if (n == 0 || n >= sizeof(tmp)) {
		fail(ps, "bad number");
		return NULL;
	}
	memcpy(tmp, s, n);
	tmp[n] = 0;
	v = xcalloc(1, sizeof(*v));
	v->type = JV_NUM;
	v->num = strtod(tmp, &end);
	if (*end || !isfinite(v->num)) {
		free(v);
		ps->p = s;
		fail(ps, "bad number");
		return NULL;
	}
	if (!strpbrk(tmp, ".eE")) {
		long long i = strtoll(tmp, &end, 10);

		if (!*end && (double)i == v->num) {
			v->is_int = true;
			v->i = i;
		}
	} else if (v->num == floor(v->num) && fabs(v->num) < 9.0e15) {
		v->is_int = true;
		v->i = (int64_t)v->num;
	}
	return v;
}

static struct jv *parse_value(struct parser *ps, int depth)
{
	struct jv *v;

	if (depth > JSONPARSE_MAX_DEPTH) {
		fail(ps, "nested deeper than %d", JSONPARSE_MAX_DEPTH);
		return NULL;
	}
	skip_ws(ps);
	if (ps->p >= ps->end) {
		fail(ps, "unexpected end");
		return NULL;
	}
	switch (*ps->p) {
	case '{': return parse_container(ps, depth, true);
	case '[': return parse_container(ps, depth, false);
	case '"': {
		char *s = parse_string(ps);

		if (!s)
			return NULL;
		v = xcalloc(1, sizeof(*v));
		v->type = JV_STR;
		v->s = s;
		return v;
	}
	default:
		break;
	}
	if (literal(ps, "true") || literal(ps, "false")) {
		v = xcalloc(1, sizeof(*v));
		v->type = JV_BOOL;
		v->b = ps->p[-1] == 'e' && ps->p[-2] == 'u';
		return v;
	}
	if (literal(ps, "null")) {
		v = xcalloc(1, sizeof(*v));
		v->type = JV_NULL;
		return v;
	}
	if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
		return parse_number(ps);
	fail(ps, "unexpected character '%c'", *ps->p);
	return NULL;
}

int jv_parse(const char *text, size_t len, struct jv **out, char *err, size_t errlen)
{
	struct parser ps = {.p = text, .end = text + len, .start = text, .err = err, .errlen = errlen};
	struct jv *v;

	*out = NULL;
	if (errlen)
		err[0] = 0;
	v = parse_value(&ps, 0);
	if (v) {
		skip_ws(&ps);
		if (ps.p != ps.end) {
			fail(&ps, "text after the value");
			jv_free(v);
			v = NULL;
		}
	}
	if (!v)
		return -1;
	*out = v;
	return 0;
}

void jv_free(struct jv *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		jv_free(v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->s);
	free(v);
}

enum jv_type jv_type(const struct jv *v)
{
	return v ? v->type : JV_NULL;
}

const struct jv *jv_get(const struct jv *obj, const char *key)
{
	if (!obj || obj->type != JV_OBJ)
		return NULL;
	for (size_t i = 0; i < obj->n; i++)
		if (strcmp(obj->keys[i], key) == 0)
			return obj->items[i];
	return NULL;
}

size_t jv_len(const struct jv *v)
{
	return v && (v->type == JV_ARR || v->type == JV_OBJ) ? v->n : 0;
}

const struct jv *jv_at(const struct jv *arr, size_t i)
{
	return arr && arr->type == JV_ARR && i < arr->n ? arr->items[i] : NULL;
}

const char *jv_key_at(const struct jv *obj, size_t i)
{
	return obj && obj->type == JV_OBJ && i < obj->n ? obj->keys[i] : NULL;
}

const struct jv *jv_val_at(const struct jv *obj, size_t i)
{
	return obj && obj->type == JV_OBJ && i < obj->n ? obj->items[i] : NULL;
}

const char *jv_str(const struct jv *v)
{
	return v && v->type == JV_STR ? v->s : NULL;
}

double jv_num(const struct jv *v)
{
	return v && v->type == JV_NUM ? v->num : 0;
}

bool jv_bool(const struct jv *v)
{
	return v && v->type == JV_BOOL && v->b;
}

bool jv_is_int(const struct jv *v)
{
	return v && v->type == JV_NUM && v->is_int;
}

int64_t jv_int(const struct jv *v)
{
	return jv_is_int(v) ? v->i : 0;
}
