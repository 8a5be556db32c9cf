/* json.h - the one JSON writer: appends well-formed JSON text to a struct buf.
 *
 * Commas are inserted automatically. Usage:
 *	struct json j; json_init(&j, &out);
 *	json_obj(&j); json_key(&j, "pid"); json_int(&j, 42); json_end(&j);
 * json_kv_* are shorthands for a key followed by a value.
 */
#ifndef GLIMPSE_JSON_H
#define GLIMPSE_JSON_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "buf.h"

#define JSON_MAX_DEPTH 64

struct json {
	struct buf *out;
	int depth;
	bool need_comma[JSON_MAX_DEPTH];
	char closer[JSON_MAX_DEPTH];
	bool after_key;
};

void json_init(struct json *j, struct buf *out);
void json_obj(struct json *j);
void json_arr(struct json *j);
void json_end(struct json *j);	/* closes the innermost object or array */
void json_key(struct json *j, const char *key);
void json_keyn(struct json *j, const char *key, size_t n);
void json_str(struct json *j, const char *s);
void json_strn(struct json *j, const char *s, size_t n);
void json_int(struct json *j, int64_t v);
void json_uint(struct json *j, uint64_t v);
void json_double(struct json *j, double v);
void json_bool(struct json *j, bool v);
void json_null(struct json *j);
/* Appends already-encoded JSON text as one value. */
void json_raw(struct json *j, const char *text);

static inline void json_kv_str(struct json *j, const char *k, const char *v) { json_key(j, k); json_str(j, v); }
static inline void json_kv_int(struct json *j, const char *k, int64_t v) { json_key(j, k); json_int(j, v); }
static inline void json_kv_uint(struct json *j, const char *k, uint64_t v) { json_key(j, k); json_uint(j, v); }
static inline void json_kv_bool(struct json *j, const char *k, bool v) { json_key(j, k); json_bool(j, v); }

/* Appends s as a quoted JSON string (escaping control characters and
 * replacing invalid UTF-8 with U+FFFD) to out. */
void json_quote(struct buf *out, const char *s, size_t n);

#endif
