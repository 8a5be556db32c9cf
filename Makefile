# glimpse - build, test, benchmark.
#   make            build build/glimpse (BPF objects and skeletons included)
#   make demo       set up if needed, start a demo Go service and show what glimpse sees
#   make test       set up the machine if needed, build, run every test
#   make bench      run scripts/bench-*.sh
#   make lint       clang-tidy and cppcheck over userspace/
#   make install    install glimpse into $(PREFIX)/bin and its systemd unit into $(UNITDIR)
#   make clean      remove build/ and generated files

PREFIX ?= /usr/local
UNITDIR ?= /etc/systemd/system
CC ?= cc
CLANG ?= clang
BPFTOOL ?= bpftool
B := build
GO_VERSIONS := 1.19 1.21 1.22 1.23 1.24 1.25 1.26

CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wformat=2 \
	-D_GNU_SOURCE -I$(B) -Iuserspace $(shell pkg-config --cflags libbpf libdw libelf capstone libmicrohttpd sqlite3 2>/dev/null)
LDLIBS := $(shell pkg-config --libs libbpf libdw libelf capstone libmicrohttpd sqlite3 libzstd 2>/dev/null) -lz -lpthread -lm

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(B)/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(B)/%.skel.h,$(BPF_SRCS))
SRCS := $(wildcard userspace/*.c)
OBJS := $(patsubst userspace/%.c,$(B)/obj/%.o,$(SRCS))
LIB_OBJS := $(filter-out $(B)/obj/main.o,$(OBJS))
SCHEMA := $(wildcard schema/*.sql)
# The web UI: sources under web/src, bundled by esbuild (web/build.mjs, npm packages
# pinned in web/package-lock.json) into $(B)/web, which is embedded.
WEB_SRCS := $(wildcard web/src/*) web/build.mjs web/package-lock.json
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRCS))

.PHONY: all test unit fixtures bench lint format install clean setup demo
.DELETE_ON_ERROR:

all: $(B)/glimpse

# The two-command promise: a fresh machine runs setup first.
setup:
	@if ! pkg-config --exists libbpf capstone cmocka libmicrohttpd sqlite3 2>/dev/null || \
	    ! command -v $(BPFTOOL) >/dev/null || ! test -x /usr/lib/go-1.26/bin/go || \
	    ! command -v wrk >/dev/null || ! command -v dlv >/dev/null || ! test -x /usr/sbin/haproxy || \
	    ! test -d tests/grafana/node_modules/@grafana/data || \
	    ! test -d web/node_modules/esbuild || ! command -v chromium >/dev/null; then \
		echo "glimpse: installing build dependencies (scripts/setup.sh)"; bash scripts/setup.sh; \
	fi
	@mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
	@mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true

bpf/vmlinux.h:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

$(B)/%.bpf.o: bpf/%.bpf.c bpf/vmlinux.h $(wildcard bpf/*.h) | $(B)
	$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror -Ibpf -c $< -o $@

$(B)/%.skel.h: $(B)/%.bpf.o
	$(BPFTOOL) gen skeleton $< > $@

web/node_modules/.package-lock.json: web/package-lock.json
	cd web && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

$(B)/web/.stamp: $(WEB_SRCS) web/node_modules/.package-lock.json | $(B)
	node web/build.mjs $(B)/web
	touch $@

# schema/*.sql and the web UI's bundle are compiled into the binary.
$(B)/embedded.c: $(SCHEMA) $(B)/web/.stamp scripts/embed.sh | $(B)
	bash scripts/embed.sh $@ $(SCHEMA) $$(find $(B)/web -type f ! -name .stamp | LC_ALL=C sort)

$(B)/obj/embedded.o: $(B)/embedded.c | $(B)/obj
	$(CC) $(CFLAGS) -Wno-overlength-strings -c $< -o $@

$(B)/obj/%.o: userspace/%.c $(wildcard userspace/*.h) $(SKELS) | $(B)/obj
	$(CC) $(CFLAGS) -c $< -o $@

$(B)/glimpse: $(OBJS) $(B)/obj/embedded.o
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/%: tests/unit/%.c $(LIB_OBJS) $(B)/obj/embedded.o | $(B)/tests
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(B) $(B)/obj $(B)/tests:
	mkdir -p $@

# Go fixtures, built with every installed Go version, with DWARF, stripped, and PIE.
fixtures: setup
	bash tests/build-fixtures.sh $(B)/fixtures $(GO_VERSIONS)

demo:
	bash scripts/demo.sh

unit: $(UNIT_BINS)

test: setup
	$(MAKE) --no-print-directory all unit
	$(MAKE) --no-print-directory fixtures
	$(MAKE) --no-print-directory lint
	python3 tests/run.py

bench: all fixtures
	@for s in scripts/bench-*.sh; do echo "== $$s"; bash $$s || exit 1; done

# Static analysis; CI runs it. clang-tidy's checks are in .clang-tidy (every warning fails).
lint: $(SKELS)
	bash scripts/lint.sh

format:
	clang-format -i userspace/*.c userspace/*.h bpf/*.bpf.c $(filter-out bpf/vmlinux.h,$(wildcard bpf/*.h)) tests/unit/*.c

install: all
	install -D -m 0755 $(B)/glimpse $(DESTDIR)$(PREFIX)/bin/glimpse
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/glimpse/README.md
	mkdir -p $(DESTDIR)$(UNITDIR)
	sed 's|@PREFIX@|$(PREFIX)|g' scripts/glimpse.service > $(DESTDIR)$(UNITDIR)/glimpse.service
	@if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then \
		systemctl daemon-reload; echo "glimpse: installed; start it with: systemctl enable --now glimpse"; fi

clean:
	rm -rf $(B) bpf/vmlinux.h
