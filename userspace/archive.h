/* archive.h - a recording's archive: the files of an rr trace directory as one tar
 * stream compressed with zstd, where the binaries rr pack copied in (ELF files of
 * 64 KiB and more) are kept outside it, compressed once per distinct content in a
 * shared directory and named in the archive's manifest (glimpse-binaries), so a
 * hundred recordings of one app store its binary once.
 */
#ifndef GLIMPSE_ARCHIVE_H
#define GLIMPSE_ARCHIVE_H
#include <stdint.h>

#define ARCHIVE_MANIFEST "glimpse-binaries"

struct archive_stats {
	uint64_t bytes_raw;		/* the directory's files, binaries included */
	uint64_t bytes_packed;		/* the archive (binaries excluded) */
	uint64_t bytes_binaries;	/* the binaries' bytes before compression */
	unsigned int binaries;		/* binaries in the directory */
	unsigned int binaries_new;	/* of them, stored now (the others were there) */
};

/* Packs the regular files of dir (subdirectories are refused) into path, the
 * binaries into blobs/HASH-SIZE.zst unless an identical one is there (blobs NULL:
 * binaries in the archive, a self-contained trace). Fills st.
 * Returns 0 or a negative code with a message; on failure path is removed. */
int archive_pack(const char *dir, const char *path, const char *blobs, struct archive_stats *st);
/* Unpacks path into dir (created; must not exist), the binaries from blobs.
 * Returns 0 or a negative code with a message. */
int archive_unpack(const char *path, const char *blobs, const char *dir);

/* Removes a flat directory archive_unpack made (its files, then itself). */
void archive_remove_dir(const char *dir);

#endif
