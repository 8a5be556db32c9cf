/* err.h - error reporting: functions return negative errno-style codes and leave
 * one human-readable message in a thread-local slot; the top level prints it once.
 */
#ifndef GLIMPSE_ERR_H
#define GLIMPSE_ERR_H
#include <errno.h>

/* Records a message (printf-style) for the current failure and returns -err
 * (err > 0, an errno value or one of the GLIMPSE_E* codes). Always returns < 0. */
int err_set(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the current message with more context ("while X: <old>"); returns rc. */
int err_wrap(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The current message, or strerror(-rc) if none was recorded. */
const char *err_msg(int rc);
void err_clear(void);

/* glimpse's own error codes, beyond errno. */
#define GLIMPSE_ENOTGO 1001	/* not a Go binary */
#define GLIMPSE_EUNSUP 1002	/* unsupported Go version or architecture */
#define GLIMPSE_ECORRUPT 1003	/* malformed binary data */

#endif
