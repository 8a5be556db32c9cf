/* decode.h - turns the bytes of a Go value and its DWARF type into JSON text.
 *
 * The value's own bytes are given (copied from a stack, registers or a global);
 * everything they point to (string data, slice backing arrays, map tables,
 * interface data, pointer targets) is read through a caller-supplied memory
 * reader, so the same decoder serves live processes (process_vm_readv), BPF
 * captures and core files. Every read is bounded by the limits below and may fail.
 *
 * JSON shapes:
 *   bool, integers, floats     true, -42, 1.5 (NaN/Inf as "NaN", "+Inf", "-Inf")
 *   complex                    [re, im]
 *   string                     "text"; cut at max_string on a UTF-8 boundary and
 *                              ended with "…+N" (N bytes left out)
 *   array, slice               [e0, e1, ...]; over max_entries a last element
 *                              "…+N" (N elements left out); nil slice: null;
 *                              beyond max_depth {"ptr":"0x...","len":N}
 *   struct                     {"Field": value, ...} ("_" fields are skipped)
 *   pointer                    the decoded target; nil: null; beyond max_depth
 *                              {"ptr":"0x..."}; back to a pointer being decoded
 *                              {"ptr":"0x...","cycle":true}
 *   map (string keys)          {"k": v, ...} sorted by key; over max_entries a
 *                              last member "…": N (entries left out); nil: null;
 *                              beyond max_depth {"ptr":"0x..."}
 *   map (other keys)           [[k, v], ...] sorted by key; over max_entries a last
 *                              element "…+N"
 *   interface                  {"type": "<dynamic type, as %T prints it>", "value": v}
 *                              and for error values "error": "<message>" when the
 *                              message is a string field (errors.errorString.s,
 *                              fmt.wrapError.msg, ...); nil: null. A dynamic type
 *                              with no DWARF type (and not a basic kind or a
 *                              pointer to a known type) has "value": {"ptr":"0x..."};
 *                              an unreadable type descriptor "type": "unknown"
 *   chan                       {"len": n, "cap": n} (+ "closed": true); nil: null
 *   func                       "pkg.Name" (or "0x<pc>" if unknown); nil: null
 *   unsafe.Pointer             "0x..."; nil: null
 *   a failed read              {"error": "unreadable 0x..."} in place of that sub-value;
 *                              memory the reader does not hold (a capture that did
 *                              not copy it) {"ptr":"0x..."}, marked truncated; a
 *                              struct or array of which it holds a prefix is
 *                              decoded from that prefix, its later fields "…"
 * Map entries shown are the first max_entries found in table order, then sorted.
 * Depth: the top value is at depth 0; following a pointer, a slice's backing
 * array, a map's entries or an interface's boxed data goes one deeper, and
 * nothing deeper than max_depth is read. Struct and array nesting is free.
 */
#ifndef GLIMPSE_DECODE_H
#define GLIMPSE_DECODE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
struct gobin;
struct gotype;
struct json;

struct decode_limits {
	uint32_t max_string;  /* bytes of a string shown (default 256) */
	uint32_t max_depth;   /* references followed from the top value: pointers,
			       * slice/map contents, interface data (default 4) */
	uint32_t max_entries; /* elements of an array/slice, entries of a map (default 16) */
	uint32_t max_bytes;   /* bytes read from the target per top-level value,
			       * runtime type metadata not counted (default 64 KiB) */
};

/* Reads n bytes at run-time address addr of the target into dst.
 * Returns 0, or a negative code when any of the bytes cannot be read:
 * -ENODATA when the reader does not hold them (a capture that did not copy
 * them), anything else for memory that cannot be read. */
typedef int (*mem_read_fn)(void *ctx, uint64_t addr, void *dst, size_t n);
/* How many of the n bytes at addr a reader holds, from addr on (0 to n). */
typedef size_t (*mem_readable_fn)(void *ctx, uint64_t addr, size_t n);

#define DECODE_MAX_PATH 32

struct decoder {
	const struct gobin *bin; /* types (DWARF), function names, type metadata */
	mem_read_fn read;
	void *ctx;
	uint64_t bias; /* run-time minus link-time address (PIE) */
	struct decode_limits lim;
	mem_readable_fn readable; /* optional (NULL): lets a pointer's target be
				   * decoded from the prefix the reader holds */
	/* private: per-value state and cached facts about the binary */
	uint64_t types_base; /* link-time moduledata.types (runtime.types) */
	bool swiss;	     /* maps are Go 1.24+ swiss tables */
	uint64_t used;	     /* bytes read for the current value */
	bool truncated;
	int npath; /* values being decoded through pointers, */
	struct {   /* for cycle detection */
		uint64_t addr;
		const struct gotype *type;
	} path[DECODE_MAX_PATH];
};

/* Fills l with the defaults (256, 4, 16, 64 KiB). */
void decode_limits_default(struct decode_limits *l);

/* Prepares d to decode values of bin's types in a process where bin is loaded
 * with the given bias, reading memory with read(ctx, ...). Limits start at the
 * defaults; set d->lim afterwards to change them. bin must have DWARF types
 * and must outlive d. Nothing to free. */
void decoder_init(struct decoder *d, const struct gobin *bin, mem_read_fn read, void *ctx, uint64_t bias);

/* Appends to out the JSON of a value of type t whose own t->size bytes are at
 * bytes (copied from a stack, registers, ...); addr is their run-time address
 * in the target, or 0 if they have none (registers): knowing it marks pointers
 * back to the value itself as cycles. Sets *truncated (if not NULL) to whether
 * any limit cut something. Unreadable parts are marked in the JSON, not
 * reported as failures. Returns 0, or a negative code (bad arguments) with
 * nothing appended. */
int decode_value(struct decoder *d, const struct gotype *t, const uint8_t *bytes, uint64_t addr, struct buf *out,
		 bool *truncated);

/* Same, writing the value into an open JSON writer (as an array element or
 * after json_key), for callers that embed values in a larger document. */
int decode_json(struct decoder *d, const struct gotype *t, const uint8_t *bytes, uint64_t addr, struct json *j,
		bool *truncated);

/* Decodes the value of type t stored in the target at run-time address addr
 * (a global, a heap object, a stack slot): reads its bytes (at most
 * d->lim.max_bytes of them) and appends its JSON to out. Knowing the address
 * also marks pointers back to the value itself as cycles. Returns 0, or a
 * negative code if the value's own bytes cannot be read. */
int decode_at(struct decoder *d, const struct gotype *t, uint64_t addr, struct buf *out, bool *truncated);

#endif
