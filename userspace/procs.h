/* procs.h - the Go processes running on this host, listed cheaply enough to
 * do it for every HTTP request: what each one is (command, executable, Go
 * version, build id, stripped, PIE) and where it runs (its pid in its own pid
 * namespace, its cgroup).
 */
#ifndef GLIMPSE_PROCS_H
#define GLIMPSE_PROCS_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct buf;

struct go_proc {
	pid_t pid;	     /* as glimpse sees it */
	pid_t ns_pid;	     /* in its innermost pid namespace (pid when it has none of its own) */
	bool other_ns;	     /* in another pid namespace than glimpse */
	char comm[16 + 1];   /* /proc/PID/comm */
	char *exe;	     /* the executable's path (in the process's mount namespace) */
	char go_version[32]; /* "go1.21.13"; "" when built by Go older than 1.18 */
	char build_id[160];  /* Go build id, else GNU build id in hex, else "" */
	bool stripped;	     /* no DWARF: no variables in snapshots */
	bool pie;
	char *cgroup; /* its cgroup v2 path ("/system.slice/x.service"), "" when unknown */
};

/* Lists the Go processes of this host in pid order: sets *out (free with
 * procs_free) and *n. Kernel threads, processes glimpse may not look at and
 * processes that exit during the scan are left out. Executables are read once
 * each (a few small reads; see gobin_peek()) and remembered by device, inode,
 * mtime and size, so a listing costs a stat per process plus a few /proc reads
 * per Go process. Thread-safe. Returns 0, or a negative code when /proc cannot
 * be read. */
int procs_list(struct go_proc **out, size_t *n);
/* Frees what procs_list returned. */
void procs_free(struct go_proc *procs, size_t n);
/* Appends procs as a JSON array of objects with keys pid, ns_pid, other_ns,
 * command, exe, go_version, build_id, stripped, pie, cgroup. */
void procs_json(const struct go_proc *procs, size_t n, struct buf *out);

#endif
