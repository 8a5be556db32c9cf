/* jsonparse.h - parses JSON text (request bodies) into a read-only tree.
 *
 * Bounded: nesting deeper than JSONPARSE_MAX_DEPTH is refused, so a hostile
 * body cannot exhaust the stack. Strings are decoded to UTF-8 (\u escapes and
 * surrogate pairs included); numbers are kept as doubles and, when they are
 * integers that fit, as int64 too.
 */
#ifndef GLIMPSE_JSONPARSE_H
#define GLIMPSE_JSONPARSE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSONPARSE_MAX_DEPTH 64

struct jv;
enum jv_type { JV_NULL, JV_BOOL, JV_NUM, JV_STR, JV_ARR, JV_OBJ };

/* Parses len bytes of text. Returns 0 and *out (free with jv_free), or -1 with
 * a message ("at byte N: ...") in err. */
int jv_parse(const char *text, size_t len, struct jv **out, char *err, size_t errlen);
void jv_free(struct jv *v);

enum jv_type jv_type(const struct jv *v);
/* Member key of object obj, or NULL if absent or obj is not an object. */
const struct jv *jv_get(const struct jv *obj, const char *key);
/* Elements of an array or members of an object; 0 otherwise. */
size_t jv_len(const struct jv *v);
const struct jv *jv_at(const struct jv *arr, size_t i);
const char *jv_key_at(const struct jv *obj, size_t i);
const struct jv *jv_val_at(const struct jv *obj, size_t i);
/* The string, or NULL unless v is a string. */
const char *jv_str(const struct jv *v);
/* The number (0 unless a number), the bool (false unless true). */
double jv_num(const struct jv *v);
bool jv_bool(const struct jv *v);
/* Whether v is a number holding an integer that fits int64, and that integer. */
bool jv_is_int(const struct jv *v);
int64_t jv_int(const struct jv *v);

#endif
