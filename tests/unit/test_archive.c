/* test_archive.c - recording archives (archive.c): a trace-like directory holding
 * a real Go binary, rr-like text files and an empty file is packed to tar + zstd
 * and unpacked back byte for byte; a second recording of the same binary stores no
 * new binary; a binary that differs is stored apart; the archive is a real tar
 * that GNU tar lists; a corrupt archive is refused with a message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "archive.h"
#include "buf.h"
#include "err.h"

#include "fixture_path.h"

static char root[] = "/tmp/glimpse-test-archive-XXXXXX";

static void slurp(const char *path, struct buf *b)
{
	FILE *f = fopen(path, "rb");
	char chunk[65536];
	size_t n;

	assert_non_null(f);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(b, chunk, n);
	fclose(f);
}

static void put(const char *dir, const char *name, const void *p, size_t n)
{
	struct buf path = {0};
	FILE *f;

	buf_printf(&path, "%s/%s", dir, name);
	f = fopen(path.p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
	buf_free(&path);
}

/* A trace-like directory: the webapp binary under rr pack's kind of name, text. */
static void make_trace(const char *dir, const struct buf *exe)
{
	static const char events[] = "events: 1 2 3\n";

	assert_int_equal(mkdir(dir, 0755), 0);
	put(dir, "mmap_pack_0_webapp", exe->p, exe->len);
	put(dir, "events", events, sizeof(events) - 1);
	put(dir, "version", "85\n", 3);
	put(dir, "incomplete", "", 0);
}

static void same_file(const char *a, const char *b)
{
	struct buf x = {0}, y = {0};

	slurp(a, &x);
	slurp(b, &y);
	assert_int_equal(x.len, y.len);
	assert_memory_equal(x.p, y.p, x.len);
	buf_free(&x);
	buf_free(&y);
}

static void test_binaries_are_stored_once_and_everything_unpacks_byte_for_byte(void **state)
{
	struct buf exe = {0}, t1 = {0}, t2 = {0}, t3 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, blobs = {0}, out = {0};
	struct archive_stats s1, s2, s3;
	const char *names[] = {"mmap_pack_0_webapp", "events", "version", "incomplete"};
	char exe_path[512];

	snprintf(exe_path, sizeof(exe_path), "%s/go1.23/webapp", fixture_dir());
	if (access(exe_path, R_OK) != 0)
		skip();
	slurp(exe_path, &exe);
	buf_printf(&blobs, "%s/binaries", root);
	assert_int_equal(mkdir(blobs.p, 0755), 0);
	buf_printf(&t1, "%s/t1", root);
	buf_printf(&t2, "%s/t2", root);
	buf_printf(&t3, "%s/t3", root);
	buf_printf(&a1, "%s/t1.tar.zst", root);
	buf_printf(&a2, "%s/t2.tar.zst", root);
	buf_printf(&a3, "%s/t3.tar.zst", root);
	make_trace(t1.p, &exe);
	make_trace(t2.p, &exe);
	exe.p[exe.len / 2] ^= 1; /* another build */
	make_trace(t3.p, &exe);

	assert_int_equal(archive_pack(t1.p, a1.p, blobs.p, &s1), 0);
	assert_int_equal(archive_pack(t2.p, a2.p, blobs.p, &s2), 0);
	assert_int_equal(archive_pack(t3.p, a3.p, blobs.p, &s3), 0);
	assert_int_equal(s1.binaries, 1);
	assert_int_equal(s1.binaries_new, 1);
	assert_int_equal(s2.binaries_new, 0); /* the same binary: stored once */
	assert_int_equal(s3.binaries_new, 1); /* a different one */
	assert_int_equal(s1.bytes_raw, exe.len + 14 + 3);
	assert_true(s1.bytes_packed < 2048); /* the binary is not in the archive */
	printf("archive: %llu bytes raw -> %llu packed, binary of %llu bytes stored apart\n",
	       (unsigned long long)s1.bytes_raw, (unsigned long long)s1.bytes_packed,
	       (unsigned long long)s1.bytes_binaries);

	buf_printf(&out, "%s/u2", root);
	assert_int_equal(archive_unpack(a2.p, blobs.p, out.p), 0);
	for (size_t i = 0; i < 4; i++) {
		struct buf x = {0}, y = {0};

		buf_printf(&x, "%s/%s", t2.p, names[i]);
		buf_printf(&y, "%s/%s", out.p, names[i]);
		same_file(x.p, y.p);
		buf_free(&x);
		buf_free(&y);
	}
	/* A self-contained archive (binaries inside) of the unpacked copy. */
	{
		struct buf full = {0}, cmd = {0};
		struct archive_stats sf;

		buf_printf(&full, "%s/full.tar.zst", root);
		assert_int_equal(archive_pack(out.p, full.p, NULL, &sf), 0);
		assert_true(sf.bytes_packed > 100000);
		buf_printf(&cmd, "tar --zstd -tf %s | sort | tr '\\n' ' ' | grep -qx 'events glimpse-binaries incomplete "
				 "mmap_pack_0_webapp version '", full.p);
		assert_int_equal(system(cmd.p), 0);
		buf_free(&full);
		buf_free(&cmd);
	}
	/* A corrupt archive is refused. */
	{
		struct buf bad = {0}, dst = {0};
		int rc;

		buf_printf(&bad, "%s/bad.tar.zst", root);
		buf_printf(&dst, "%s/ubad", root);
		put(root, "bad.tar.zst", "not zstd at all", 15);
		rc = archive_unpack(bad.p, blobs.p, dst.p);
		assert_true(rc < 0);
		assert_non_null(strstr(err_msg(rc), "bad.tar.zst"));
		buf_free(&bad);
		buf_free(&dst);
	}
	buf_free(&exe);
	buf_free(&t1);
	buf_free(&t2);
	buf_free(&t3);
	buf_free(&a1);
	buf_free(&a2);
	buf_free(&a3);
	buf_free(&blobs);
	buf_free(&out);
}

static int setup(void **state)
{
	return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
	struct buf cmd = {0};
	int rc;

	buf_printf(&cmd, "rm -rf '%s'", root);
	rc = system(cmd.p);
	buf_free(&cmd);
	return rc == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_binaries_are_stored_once_and_everything_unpacks_byte_for_byte),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
