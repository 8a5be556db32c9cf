/* fixtures.h - what the unit tests share: the Go versions the fixtures are built
 * with, where the fixtures are (GLIMPSE_FIXTURES, default build/fixtures), opening
 * them, and a millisecond clock. Header-only: each test is one translation unit.
 */
#ifndef GLIMPSE_TEST_FIXTURES_H
#define GLIMPSE_TEST_FIXTURES_H
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "err.h"
#include "gobin.h"

static const int versions[] = { 19, 21, 22, 23, 24, 25, 26 };
#define NVERSIONS (int)(sizeof(versions) / sizeof(versions[0]))
enum { PLAIN, STRIPPED, PIE, NFLAVOURS };
static const char *const flavours[NFLAVOURS] = { "target", "target.stripped", "target.pie" };

static inline const char *fixture_dir(void)
{
	const char *d = getenv("GLIMPSE_FIXTURES");

	return d && *d ? d : "build/fixtures";
}

/* Opens build/fixtures/go1.<minor>/<file>; prints why on failure. Returns 0 or a negative code. */
static inline int fixture_open(int minor, const char *file, struct gobin **out)
{
	char path[512];
	int rc;

	snprintf(path, sizeof(path), "%s/go1.%d/%s", fixture_dir(), minor, file);
	rc = gobin_open(path, out);
	if (rc)
		fprintf(stderr, "cannot open fixture %s: %s\n", path, err_msg(rc));
	return rc;
}

/* Opens the target fixture of every version in every flavour into bins. */
static inline int fixtures_open_all(struct gobin *bins[][NFLAVOURS])
{
	for (int v = 0; v < NVERSIONS; v++)
		for (int fl = 0; fl < NFLAVOURS; fl++)
			if (fixture_open(versions[v], flavours[fl], &bins[v][fl]))
				return -1;
	return 0;
}

static inline void fixtures_close_all(struct gobin *bins[][NFLAVOURS])
{
	for (int v = 0; v < NVERSIONS; v++)
		for (int fl = 0; fl < NFLAVOURS; fl++) {
			gobin_close(bins[v][fl]);
			bins[v][fl] = NULL;
		}
}

static inline double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

#endif
