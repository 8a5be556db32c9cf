/* buf.h - a growable byte buffer, used everywhere text or bytes are assembled.
 *
 * A zeroed struct buf is an empty, valid buffer. The contents are always
 * NUL-terminated (b->p may be NULL only while b->len == 0 and nothing was added).
 * Allocation failure aborts: glimpse cannot do anything useful without memory.
 */
#ifndef GLIMPSE_BUF_H
#define GLIMPSE_BUF_H
#include <stddef.h>
#include <stdarg.h>

struct buf {
	char *p;
	size_t len;
	size_t cap;
};

void buf_grow(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *data, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Empties the buffer but keeps its memory. */
void buf_reset(struct buf *b);
/* Writes the first n bytes of b (n <= b->len) to fd and removes them from b:
 * in one write(2) when fd takes them all (a pipe does up to PIPE_BUF bytes at
 * once, nobody else's output in between), continuing after short writes,
 * EINTR, and while a non-blocking fd is full. Returns 0, or -errno with what
 * was written removed. */
int buf_write_fd(struct buf *b, int fd, size_t n);
/* Returns the contents (caller frees) and leaves b empty. Never NULL. */
char *buf_detach(struct buf *b);
void buf_free(struct buf *b);
/* Returns b's text, "" while empty. */
static inline const char *buf_str(const struct buf *b) { return b->p ? b->p : ""; }

/* xmalloc family: abort with a message on allocation failure. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
