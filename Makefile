# zendmm: build, header, tests. `make test` is what CI runs (.ci/run).

CARGO ?= cargo
ifeq ($(origin CC),default)
CC = gcc
endif

BUILD_DIR := target/release
LIB       := $(BUILD_DIR)/libzendmm.so
HEADERS := $(wildcard include/*.h) $(wildcard c_tests/*.h)

# _GNU_SOURCE: the C tests use fork, setenv and sigsetjmp, which strict
# -std=c11 hides. Sources must not #define it again (-Werror on redefinition).
CPPFLAGS += -D_GNU_SOURCE -Iinclude
CFLAGS   ?= -std=c11 -Wall -Wextra -Werror -Wpedantic -O2 -g
LDFLAGS  += -L$(BUILD_DIR) -Wl,-rpath,$(CURDIR)/$(BUILD_DIR)
LDLIBS   += -lzendmm

C_TESTS := $(patsubst c_tests/%.c,target/c_tests/%,$(wildcard c_tests/*.c))

banner = @printf '\n==> %s\n' $(1)

.PHONY: all header deps test rust-test c-test php-test abi-test demo clean FORCE \
        test-valgrind test-asan

all: $(LIB)

# cargo decides whether anything needs rebuilding; make only asks it each time.
# Programs linked here record the SONAME, libzendmm.so.0, which cargo does not
# create: the symlink lets them run from target/release via their rpath.
$(LIB): FORCE
	$(call banner,"cargo build --release")
	$(CARGO) build --release
	@ln -sf libzendmm.so $(BUILD_DIR)/libzendmm.so.0

header:
	$(call banner,"regenerating include/zendmm.h")
	ZENDMM_WRITE_HEADER=1 $(CARGO) build --release

deps:
	@scripts/install-deps.sh test php

# Stages run one after another even under -j, and the first failure stops make.
test: deps
	@$(MAKE) --no-print-directory rust-test
	@$(MAKE) --no-print-directory c-test
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory test-valgrind
	@$(MAKE) --no-print-directory php-test
	@$(MAKE) --no-print-directory install-test
	@$(MAKE) --no-print-directory abi-test
	$(call banner,"make test: all stages passed")

# Includes tests/header_fresh.rs, which fails on a stale include/zendmm.h.
# The ignored tests check which pages are mapped, which other tests'
# threads change: they run alone, one at a time.
rust-test:
	$(call banner,"Rust tests (cargo test -p zendmm)")
	$(CARGO) test -p zendmm --no-fail-fast
	$(CARGO) test -p zendmm --lib -- --ignored --test-threads=1

# The stress test runs threads.
target/c_tests/test_stress: CFLAGS += -pthread

target/c_tests/%: c_tests/%.c $(HEADERS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(LDLIBS)

c-test: $(C_TESTS)
	$(call banner,"C tests")
	@if [ -z "$(C_TESTS)" ]; then echo "no C tests in c_tests/"; exit 1; fi
	@for t in $(C_TESTS); do \
		echo "--> $$t"; \
		./$$t || { echo "FAILED: $$t (exit $$?)"; exit 1; }; \
	done
	$(call banner,"C tests again with heap protection off (ZENDMM_PROTECT=0)")
	@mkdir -p target/c_tests_logs
	@for t in $(C_TESTS); do \
		echo "--> $$t (ZENDMM_PROTECT=0)"; \
		ZENDMM_PROTECT=0 ./$$t > target/c_tests_logs/unprotected.log 2>&1 \
			|| { cat target/c_tests_logs/unprotected.log; echo "FAILED: $$t with ZENDMM_PROTECT=0"; exit 1; }; \
		tail -n 1 target/c_tests_logs/unprotected.log; \
	done

# Stock php8.2 and libphp8.2 with and without LD_PRELOAD=libzendmm.so (php_tests/run.sh).
php-test: $(LIB)
	$(call banner,"PHP tests (php_tests/run.sh: stock PHP 8.2 on zendmm)")
	php_tests/run.sh
	$(call banner,"PHP tests again with heap protection off (ZENDMM_PROTECT=0)")
	ZENDMM_PROTECT=0 php_tests/run.sh

# Memory tools (tool_tests/run.sh, README "Valgrind and ASan"): the C tests,
# PHP on zendmm and tool_tests/tool_misuse.c under memcheck; the C tests and
# tool_misuse.c built with gcc's AddressSanitizer. tool_misuse is not a C test
# (c_tests/ runs it nowhere): its misuses only mean something under a tool.
ASAN_CFLAGS ?= -std=c11 -Wall -Wextra -Werror -Wpedantic -O1 -g -fsanitize=address -fno-omit-frame-pointer
C_TESTS_ASAN := $(patsubst c_tests/%.c,target/c_tests_asan/%,$(wildcard c_tests/*.c))

target/c_tests_asan/%: c_tests/%.c $(HEADERS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ASAN_CFLAGS) $< -o $@ $(LDFLAGS) $(LDLIBS)

target/tool_tests/tool_misuse: tool_tests/tool_misuse.c $(HEADERS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(LDLIBS)

target/tool_tests/tool_misuse_asan: tool_tests/tool_misuse.c $(HEADERS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ASAN_CFLAGS) $< -o $@ $(LDFLAGS) $(LDLIBS)

test-valgrind: $(C_TESTS) target/tool_tests/tool_misuse
	$(call banner,"valgrind memcheck (tool_tests/run.sh valgrind)")
	tool_tests/run.sh valgrind

test-asan: $(C_TESTS_ASAN) target/tool_tests/tool_misuse_asan
	$(call banner,"AddressSanitizer (tool_tests/run.sh asan)")
	tool_tests/run.sh asan

abi-test:
	$(call banner,"ABI check (ctest2: abi-test/src/decls.rs vs include/zendmm.h)")
	$(CARGO) run --release -p zendmm-abi-test

target/demo: demo/demo.c $(HEADERS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS) $(LDLIBS)

demo: deps
	@$(MAKE) --no-print-directory target/demo
	$(call banner,"demo")
	./target/demo
	$(call banner,"examples/arena.rs: the safe Rust API")
	$(CARGO) run --release --example arena

clean:
	$(CARGO) clean

# make install [PREFIX=/usr/local] [DESTDIR=stage] [LIBDIR=... INCLUDEDIR=... BINDIR=...]
# installs lib/libzendmm.so.$(VERSION) with the libzendmm.so.0 (SONAME) and
# libzendmm.so links, lib/libzendmm.a, include/zendmm.h, include/zendmm_alloc.h,
# lib/pkgconfig/zendmm.pc and bin/zendmm-run; `make uninstall` with the same
# variables removes exactly those. tests/install_test.sh (make install-test)
# checks both.
.PHONY: install uninstall install-test
PREFIX       ?= /usr/local
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
BINDIR       ?= $(PREFIX)/bin
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
VERSION      := $(shell sed -n '/^\[package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml)
# Must match the -soname that build.rs gives the linker.
SONAME       := libzendmm.so.0
# What the Rust staticlib needs (`cargo rustc --release --lib --crate-type
# staticlib -- --print native-static-libs`); the PHP glue object inside
# libzendmm.a only adds libdl's dlsym and dladdr1, already in the list.
LIBS_PRIVATE := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
INSTALL      ?= install
# A directory under $(PREFIX) is written as ${prefix}/... in zendmm.pc.
pc_path = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))

# A real install as root (no DESTDIR) refreshes the dynamic loader's cache,
# which /usr/local/lib needs before programs find libzendmm.so.0 there.
run_ldconfig = @if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" -eq 0 ] && command -v ldconfig >/dev/null 2>&1; then \
	echo ldconfig; ldconfig; fi

# Builds first, except when the library is built and cargo is not on PATH
# (`make && sudo make install` with a per-user Rust toolchain).
INSTALL_PREREQ := $(if $(and $(wildcard $(LIB)),$(if $(shell command -v $(CARGO) 2>/dev/null),,no-cargo)),,$(LIB))

install: $(INSTALL_PREREQ)
	@test -n "$(VERSION)" || { echo "make install: no version in Cargo.toml's [package]" >&2; exit 1; }
	$(call banner,"installing zendmm $(VERSION) into $(DESTDIR)$(PREFIX)")
	@rm -f $(BUILD_DIR)/zendmm.pc # it may be root's, from an earlier sudo make install
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(call pc_path,$(LIBDIR))|g' \
	    -e 's|@INCLUDEDIR@|$(call pc_path,$(INCLUDEDIR))|g' -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@LIBS_PRIVATE@|$(LIBS_PRIVATE)|g' zendmm.pc.in > $(BUILD_DIR)/zendmm.pc
	$(INSTALL) -d -m 755 $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(BINDIR)
	$(INSTALL) -m 755 $(LIB) $(DESTDIR)$(LIBDIR)/libzendmm.so.$(VERSION)
	ln -sfn libzendmm.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sfn $(SONAME) $(DESTDIR)$(LIBDIR)/libzendmm.so
	$(INSTALL) -m 644 $(BUILD_DIR)/libzendmm.a $(DESTDIR)$(LIBDIR)/libzendmm.a
	$(INSTALL) -m 644 include/zendmm.h include/zendmm_alloc.h $(DESTDIR)$(INCLUDEDIR)/
	$(INSTALL) -m 644 $(BUILD_DIR)/zendmm.pc $(DESTDIR)$(PKGCONFIGDIR)/zendmm.pc
	$(INSTALL) -m 755 scripts/zendmm-run $(DESTDIR)$(BINDIR)/zendmm-run
	$(run_ldconfig)

uninstall:
	$(call banner,"removing zendmm from $(DESTDIR)$(PREFIX)")
	rm -f $(DESTDIR)$(LIBDIR)/libzendmm.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME) \
	      $(DESTDIR)$(LIBDIR)/libzendmm.so $(DESTDIR)$(LIBDIR)/libzendmm.a \
	      $(DESTDIR)$(INCLUDEDIR)/zendmm.h $(DESTDIR)$(INCLUDEDIR)/zendmm_alloc.h \
	      $(DESTDIR)$(PKGCONFIGDIR)/zendmm.pc $(DESTDIR)$(BINDIR)/zendmm-run
	$(run_ldconfig)

# Installs into temporary DESTDIRs, builds C programs and examples/ through
# pkg-config against the shared and the static library, then uninstalls.
install-test: $(LIB)
	$(call banner,"install test (tests/install_test.sh: make install/uninstall, pkg-config, examples/)")
	tests/install_test.sh

# The benchmark (bench/README.md): takes minutes, never part of `make test`.
# `make bench TRACES=dir` replays the traces in dir; BENCH_ARGS go to bench/run.py.
.PHONY: bench bench-quick bench-deps
BENCH_CFLAGS ?= -std=gnu11 -O2 -g -Wall -Wextra
BENCH_RUN = python3 bench/run.py $(if $(TRACES),--traces $(TRACES)) $(BENCH_ARGS)

target/bench/replay: bench/replay.c
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) $< -o $@ -ldl

bench-deps:
	@scripts/install-deps.sh test bench php

bench: bench-deps
	@$(MAKE) --no-print-directory $(LIB) target/bench/replay
	$(call banner,"benchmark: bench/run.py (takes about 6-10 minutes)")
	$(BENCH_RUN)

bench-quick: bench-deps
	@$(MAKE) --no-print-directory $(LIB) target/bench/replay
	$(call banner,"quick benchmark: bench/run.py --quick")
	$(BENCH_RUN) --quick
