/* json.c - the JSON writer behind every --json output and HTTP answer. */
#include "json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

void json_init(struct json *j, struct buf *out)
{
	memset(j, 0, sizeof(*j));
	j->out = out;
}

static void sep(struct json *j)
{
	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (j->need_comma[j->depth])
		buf_putc(j->out, ',');
	j->need_comma[j->depth] = true;
}

static void open(struct json *j, char c)
{
	sep(j);
	buf_putc(j->out, c);
	if (j->depth < JSON_MAX_DEPTH - 1)
		j->depth++;
	j->need_comma[j->depth] = false;
	j->closer[j->depth] = c == '{' ? '}' : ']';
}

void json_obj(struct json *j) { open(j, '{'); }
void json_arr(struct json *j) { open(j, '['); }

void json_end(struct json *j)
{
	j->after_key = false;
	buf_putc(j->out, j->closer[j->depth]);
	if (j->depth > 0)
		j->depth--;
}

void json_key(struct json *j, const char *key)
{
	json_keyn(j, key, strlen(key));
}

void json_keyn(struct json *j, const char *key, size_t n)
{
	sep(j);
	json_quote(j->out, key, n);
	buf_putc(j->out, ':');
	j->after_key = true;
}

/* Length of the valid UTF-8 sequence at s (max n bytes), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

void json_quote(struct buf *out, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;

	buf_putc(out, '"');
	for (size_t i = 0; i < n;) {
		unsigned char c = u[i];
		size_t l, run = i;

		/* Printable ASCII other than '"' and '\\' goes as it is, a run at a time. */
		while (run < n && u[run] >= 0x20 && u[run] < 0x7f && u[run] != '"' && u[run] != '\\')
			run++;
		if (run > i) {
			buf_add(out, u + i, run - i);
			i = run;
			continue;
		}
		switch (c) {
		case '"': buf_puts(out, "\\\""); i++; continue;
		case '\\': buf_puts(out, "\\\\"); i++; continue;
		case '\n': buf_puts(out, "\\n"); i++; continue;
		case '\r': buf_puts(out, "\\r"); i++; continue;
		case '\t': buf_puts(out, "\\t"); i++; continue;
		default: break;
		}
		if (c < 0x20 || c == 0x7f) {
			buf_printf(out, "\\u%04x", c);
			i++;
			continue;
		}
		l = utf8_len(u + i, n - i);
		if (l == 0) {
			buf_puts(out, "\\ufffd");
			i++;
			continue;
		}
		buf_add(out, u + i, l);
		i += l;
	}
	buf_putc(out, '"');
}

void json_str(struct json *j, const char *s)
{
	if (!s) {
		json_null(j);
		return;
	}
	json_strn(j, s, strlen(s));
}

void json_strn(struct json *j, const char *s, size_t n)
{
	sep(j);
	json_quote(j->out, s, n);
}

void json_int(struct json *j, int64_t v)
{
	sep(j);
	buf_printf(j->out, "%" PRId64, v);
}

void json_uint(struct json *j, uint64_t v)
{
	sep(j);
	buf_printf(j->out, "%" PRIu64, v);
}

void json_double(struct json *j, double v)
{
	sep(j);
	if (isnan(v) || isinf(v)) {
		/* JSON has no NaN/Inf: write them as strings so nothing is lost. */
		buf_puts(j->out, isnan(v) ? "\"NaN\"" : v > 0 ? "\"+Inf\"" : "\"-Inf\"");
		return;
	}
	buf_printf(j->out, "%.17g", v);
}

void json_bool(struct json *j, bool v)
{
	sep(j);
	buf_puts(j->out, v ? "true" : "false");
}

void json_null(struct json *j)
{
	sep(j);
	buf_puts(j->out, "null");
}

void json_raw(struct json *j, const char *text)
{
	sep(j);
	buf_puts(j->out, text);
}
