/* err.c - one message per failure, carried up to the top level. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static __thread char msg[1024];

int err_set(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err > 0 ? -err : (err < 0 ? err : -EINVAL);
}

int err_wrap(int rc, const char *fmt, ...)
{
	char old[sizeof(msg)];
	size_t n;
	va_list ap;

	snprintf(old, sizeof(old), "%s", err_msg(rc));
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = strlen(msg);
	if (n + 2 < sizeof(msg)) {
		size_t room = sizeof(msg) - n - 3, len = strlen(old);

		memcpy(msg + n, ": ", 2);
		memcpy(msg + n + 2, old, len < room ? len : room);
		msg[n + 2 + (len < room ? len : room)] = '\0';
	}
	return rc;
}

const char *err_msg(int rc)
{
	if (msg[0])
		return msg;
	switch (-rc) {
	case GLIMPSE_ENOTGO: return "not a Go binary";
	case GLIMPSE_EUNSUP: return "unsupported Go version or architecture";
	case GLIMPSE_ECORRUPT: return "malformed binary";
	default: return strerror(-rc);
	}
}

void err_clear(void)
{
	msg[0] = '\0';
}
