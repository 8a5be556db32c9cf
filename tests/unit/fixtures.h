/* fixtures.h - what the unit tests share: the Go versions the fixtures are built
 * with, where the fixtures are (GLIMPSE_FIXTURES, default build/fixtures), opening
 * them, and a millisecond clock. Header-only: each test is one translation unit.
 * Include after <cmocka.h>.
 */
#ifndef GLIMPSE_TEST_FIXTURES_H
#define GLIMPSE_TEST_FIXTURES_H
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "fixture_path.h"
#include "gobin.h"

static const int versions[] = { 19, 21, 22, 23, 24, 25, 26 };
#define NVERSIONS (int)(sizeof(versions) / sizeof(versions[0]))
enum { PLAIN, STRIPPED, PIE, NFLAVOURS };
static const char *const flavours[NFLAVOURS] = { "target", "target.stripped", "target.pie" };

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

/* Line number of the first line of the target fixture's source containing text
 * after the first line containing after (NULL: from the top), so tests do not
 * break when the fixture is edited; aborts the test if there is none. */
static inline int source_line_after(const char *after, const char *text)
{
	FILE *f = fopen("tests/fixtures/target/main.go", "r");
	char line[1024];
	int n = 0;
	bool armed = !after;

	while (f && fgets(line, sizeof(line), f)) {
		n++;
		if (!armed) {
			armed = strstr(line, after) != NULL;
			continue;
		}
		if (strstr(line, text)) {
			fclose(f);
			return n;
		}
	}
	if (f)
		fclose(f);
	fprintf(stderr, "tests/fixtures/target/main.go has no line with '%s'\n", text);
	abort();
}

static inline int source_line(const char *text)
{
	return source_line_after(NULL, text);
}

static inline double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

#endif
