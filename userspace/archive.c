/* archive.c - tar (ustar, flat) + zstd archives of rr traces with binaries stored
 * once (archive.h). Binaries are named by a 64-bit FNV-1a hash and their size; a
 * blob of that name is used only after its content was compared equal.
 */
#include "archive.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "buf.h"
#include "err.h"

#define BINARY_MIN (64 * 1024)
#define ZSTD_LEVEL 3

/* Reads all of path into b. Returns 0 or a negative code with a message. */
static int read_file(const char *path, struct buf *b)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char chunk[65536];
	ssize_t n;

	if (fd < 0)
		return err_set(errno, "cannot open %s: %s", path, strerror(errno));
	while ((n = read(fd, chunk, sizeof(chunk))) > 0 || (n < 0 && errno == EINTR))
		if (n > 0)
			buf_add(b, chunk, (size_t)n);
	close(fd);
	if (n < 0)
		return err_set(errno, "cannot read %s: %s", path, strerror(errno));
	return 0;
}

/* Writes n bytes to path through a temporary file renamed into place. */
static int write_file(const char *path, const void *p, size_t n)
{
	struct buf tmp = {0};
	int fd, rc = 0;

	buf_printf(&tmp, "%s.tmp.%d.%d", path, (int)getpid(), (int)gettid()); /* threads pack at once */
	fd = open(tmp.p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = err_set(errno, "cannot create %s: %s", tmp.p, strerror(errno));
		buf_free(&tmp);
		return rc;
	}
	for (const char *c = p; n;) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = err_set(errno, "cannot write %s: %s", tmp.p, strerror(errno));
			break;
		}
		c += w;
		n -= (size_t)w;
	}
	if (close(fd) != 0 && !rc)
		rc = err_set(errno, "cannot write %s: %s", tmp.p, strerror(errno));
	if (!rc && rename(tmp.p, path) != 0)
		rc = err_set(errno, "cannot rename %s: %s", tmp.p, strerror(errno));
	if (rc)
		unlink(tmp.p);
	buf_free(&tmp);
	return rc;
}

static uint64_t fnv1a(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 0x100000001b3ULL;
	return h;
}

/* Decompresses a whole zstd stream (frames of any kind) into out. */
static int unzstd(const char *p, size_t n, struct buf *out, const char *what)
{
	ZSTD_DCtx *d = ZSTD_createDCtx();
	ZSTD_inBuffer in = {p, n, 0};
	size_t r = 1;

	while (in.pos < in.size || r != 0) {
		ZSTD_outBuffer o;
		size_t before = in.pos;

		buf_grow(out, 1 << 20);
		o = (ZSTD_outBuffer){out->p + out->len, out->cap - out->len - 1, 0};
		r = ZSTD_decompressStream(d, &o, &in);
		if (ZSTD_isError(r)) {
			ZSTD_freeDCtx(d);
			return err_set(EIO, "%s: %s", what, ZSTD_getErrorName(r));
		}
		out->len += o.pos;
		out->p[out->len] = 0;
		if (in.pos == before && o.pos == 0 && in.pos == in.size)
			break;
	}
	ZSTD_freeDCtx(d);
	if (r != 0)
		return err_set(EIO, "%s: truncated zstd stream", what);
	return 0;
}

/* Stores one binary in blobs once; appends "NAME BLOB" to the manifest. */
static int store_binary(const char *name, const struct buf *data, const char *blobs, struct buf *manifest,
			struct archive_stats *st)
{
	struct buf blob = {0}, old = {0}, plain = {0};
	char base[64];
	int rc = 0;

	snprintf(base, sizeof(base), "%016llx-%zu.zst", (unsigned long long)fnv1a(data->p, data->len), data->len);
	buf_printf(&blob, "%s/%s", blobs, base);
	if (read_file(blob.p, &old) == 0 && unzstd(old.p, old.len, &plain, blob.p) == 0 && plain.len == data->len &&
	    memcmp(plain.p, data->p, data->len) == 0) {
		/* stored already */
	} else {
		size_t cap = ZSTD_compressBound(data->len), n;
		char *z = xmalloc(cap);

		err_clear();
		n = ZSTD_compress(z, cap, data->p, data->len, ZSTD_LEVEL);
		if (ZSTD_isError(n))
			rc = err_set(EIO, "compressing %s: %s", name, ZSTD_getErrorName(n));
		else
			rc = write_file(blob.p, z, n);
		free(z);
		st->binaries_new++;
	}
	st->binaries++;
	st->bytes_binaries += data->len;
	buf_printf(manifest, "%s %s\n", name, base);
	buf_free(&blob);
	buf_free(&old);
	buf_free(&plain);
	return rc;
}

/* Appends a ustar header and the data of one file to tar. */
static void tar_add(struct buf *tar, const char *name, const char *p, size_t n, unsigned int mode)
{
	char h[512] = {0};
	unsigned int sum = 0;

	snprintf(h, 100, "%s", name);
	snprintf(h + 100, 8, "%07o", mode & 07777);
	snprintf(h + 108, 8, "%07o", 0);
	snprintf(h + 116, 8, "%07o", 0);
	snprintf(h + 124, 12, "%011llo", (unsigned long long)n);
	snprintf(h + 136, 12, "%011o", 0);
	memset(h + 148, ' ', 8);
	h[156] = '0';
	memcpy(h + 257, "ustar", 6);
	h[263] = '0';
	h[264] = '0';
	for (int i = 0; i < 512; i++)
		sum += (unsigned char)h[i];
	snprintf(h + 148, 8, "%06o", sum);
	buf_add(tar, h, sizeof(h));
	buf_add(tar, p, n);
	if (n % 512) {
		char pad[512] = {0};

		buf_add(tar, pad, 512 - n % 512);
	}
}

int archive_pack(const char *dir, const char *path, const char *blobs, struct archive_stats *st)
{
	struct buf tar = {0}, manifest = {0};
	DIR *d = opendir(dir);
	struct dirent *e;
	int rc = 0;

	memset(st, 0, sizeof(*st));
	if (!d)
		return err_set(errno, "cannot open %s: %s", dir, strerror(errno));
	while (!rc && (e = readdir(d))) {
		struct buf file = {0}, full = {0};
		struct stat sb;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		buf_printf(&full, "%s/%s", dir, e->d_name);
		if (lstat(full.p, &sb) != 0)
			rc = err_set(errno, "cannot stat %s: %s", full.p, strerror(errno));
		else if (!S_ISREG(sb.st_mode))
			rc = err_set(EINVAL, "%s is not a regular file; only flat trace directories are archived", full.p);
		else if (strlen(e->d_name) >= 100)
			rc = err_set(EINVAL, "%s: name too long for the archive", full.p);
		else
			rc = read_file(full.p, &file);
		if (!rc) {
			st->bytes_raw += file.len;
			if (blobs && file.len >= BINARY_MIN && memcmp(file.p, "\177ELF", 4) == 0)
				rc = store_binary(e->d_name, &file, blobs, &manifest, st);
			else
				tar_add(&tar, e->d_name, file.p, file.len, sb.st_mode);
		}
		buf_free(&file);
		buf_free(&full);
	}
	closedir(d);
	if (!rc) {
		size_t cap, n;
		char *z, end[1024] = {0};

		tar_add(&tar, ARCHIVE_MANIFEST, manifest.p ? manifest.p : "", manifest.len, 0644);
		buf_add(&tar, end, sizeof(end));
		cap = ZSTD_compressBound(tar.len);
		z = xmalloc(cap);
		n = ZSTD_compress(z, cap, tar.p, tar.len, ZSTD_LEVEL);
		if (ZSTD_isError(n))
			rc = err_set(EIO, "compressing %s: %s", path, ZSTD_getErrorName(n));
		else
			rc = write_file(path, z, n);
		st->bytes_packed = rc ? 0 : n;
		free(z);
	}
	buf_free(&tar);
	buf_free(&manifest);
	return rc;
}

int archive_unpack(const char *path, const char *blobs, const char *dir)
{
	struct buf z = {0}, tar = {0};
	size_t off = 0;
	int rc = read_file(path, &z);

	if (!rc)
		rc = unzstd(z.p, z.len, &tar, path);
	buf_free(&z);
	if (!rc && mkdir(dir, 0755) != 0)
		rc = err_set(errno, "cannot create %s: %s", dir, strerror(errno));
	while (!rc && off + 512 <= tar.len && tar.p[off]) {
		const char *h = tar.p + off, *data = h + 512;
		char name[101];
		size_t n = strtoull(h + 124, NULL, 8);
		struct buf full = {0};

		memcpy(name, h, 100);
		name[100] = 0;
		if (strchr(name, '/') || name[0] == '.' || off + 512 + n > tar.len) {
			rc = err_set(EIO, "%s: malformed archive", path);
			break;
		}
		buf_printf(&full, "%s/%s", dir, name);
		if (strcmp(name, ARCHIVE_MANIFEST) != 0) {
			rc = write_file(full.p, data, n);
		} else {
			/* "NAME BLOB" lines: each binary from the shared store. */
			char *m = xstrndup(data, n), *save = NULL;

			for (char *l = strtok_r(m, "\n", &save); !rc && l; l = strtok_r(NULL, "\n", &save)) {
				char *sp = strchr(l, ' ');
				struct buf bp = {0}, bz = {0}, plain = {0}, out = {0};

				if (!sp || strchr(l, '/') || strchr(sp + 1, '/')) {
					rc = err_set(EIO, "%s: malformed manifest", path);
					break;
				}
				*sp = 0;
				buf_printf(&bp, "%s/%s", blobs, sp + 1);
				buf_printf(&out, "%s/%s", dir, l);
				rc = read_file(bp.p, &bz);
				if (!rc)
					rc = unzstd(bz.p, bz.len, &plain, bp.p);
				if (!rc)
					rc = write_file(out.p, plain.p, plain.len);
				if (!rc)
					chmod(out.p, 0755);
				buf_free(&bp);
				buf_free(&bz);
				buf_free(&plain);
				buf_free(&out);
			}
			free(m);
		}
		buf_free(&full);
		off += 512 + (n + 511) / 512 * 512;
	}
	buf_free(&tar);
	return rc;
}

void archive_remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		struct buf full = {0};

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		buf_printf(&full, "%s/%s", dir, e->d_name);
		unlink(full.p);
		buf_free(&full);
	}
	closedir(d);
	rmdir(dir);
}
