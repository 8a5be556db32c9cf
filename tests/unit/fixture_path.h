/* fixture_path.h - where the Go fixtures are: GLIMPSE_FIXTURES, default build/fixtures
 * (tests run from the repository root). Include after <cmocka.h>.
 */
#ifndef GLIMPSE_TEST_FIXTURE_PATH_H
#define GLIMPSE_TEST_FIXTURE_PATH_H
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline const char *fixture_dir(void)
{
	const char *d = getenv("GLIMPSE_FIXTURES");

	return d && *d ? d : "build/fixtures";
}

/* Path of the target fixture built by go<version> ("1.23") in flavour ("", ".stripped",
 * ".pie"), or NULL (with a note) when that Go version is not installed; fails the test
 * when it is installed but the fixture was not built. The path is a static buffer. */
static inline const char *fixture(const char *version, const char *flavour)
{
	static char path[512];
	char go[64];

	snprintf(path, sizeof(path), "%s/go%s/target%s", fixture_dir(), version, flavour);
	if (access(path, R_OK) == 0)
		return path;
	snprintf(go, sizeof(go), "/usr/lib/go-%s/bin/go", version);
	if (access(go, X_OK) == 0)
		fail_msg("fixture %s is missing although go %s is installed: run make fixtures", path, version);
	printf("note: go %s is not installed, skipping its fixtures\n", version);
	return NULL;
}

#endif
