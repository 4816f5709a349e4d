# zendmm: build, header, tests. `make test` is what CI runs (.ci/run).

CARGO ?= cargo
ifeq ($(origin CC),default)
CC = gcc
endif

LIBDIR  := target/release
LIB     := $(LIBDIR)/libzendmm.so
HEADERS := $(wildcard include/*.h) $(wildcard c_tests/*.h)

# _GNU_SOURCE: the C tests use fork, setenv and sigsetjmp, which strict
# -std=c11 hides. Sources must not #define it again (-Werror on redefinition).
CPPFLAGS += -D_GNU_SOURCE -Iinclude
CFLAGS   ?= -std=c11 -Wall -Wextra -Werror -Wpedantic -O2 -g
LDFLAGS  += -L$(LIBDIR) -Wl,-rpath,$(CURDIR)/$(LIBDIR)
LDLIBS   += -lzendmm

C_TESTS := $(patsubst c_tests/%.c,target/c_tests/%,$(wildcard c_tests/*.c))

banner = @printf '\n==> %s\n' $(1)

.PHONY: all header deps test rust-test c-test php-test abi-test demo clean FORCE

all: $(LIB)

# cargo decides whether anything needs rebuilding; make only asks it each time.
# Programs linked here record the SONAME, libzendmm.so.0, which cargo does not
# create: the symlink lets them run from target/release via their rpath.
$(LIB): FORCE
	$(call banner,"cargo build --release")
	$(CARGO) build --release
	@ln -sf libzendmm.so $(LIBDIR)/libzendmm.so.0

header:
	$(call banner,"regenerating include/zendmm.h")
	ZENDMM_WRITE_HEADER=1 $(CARGO) build --release

deps:
	@scripts/install-deps.sh test php

# Stages run one after another even under -j, and the first failure stops make.
test: deps
	@$(MAKE) --no-print-directory rust-test
	@$(MAKE) --no-print-directory c-test
	@$(MAKE) --no-print-directory php-test
	@$(MAKE) --no-print-directory abi-test
	$(call banner,"make test: all stages passed")

# Includes tests/header_fresh.rs, which fails on a stale include/zendmm.h.
rust-test:
	$(call banner,"Rust tests (cargo test -p zendmm)")
	$(CARGO) test -p zendmm --no-fail-fast

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

# Stock php8.2 and libphp8.2 with and without LD_PRELOAD=libzendmm.so (php_tests/run.sh).
php-test: $(LIB)
	$(call banner,"PHP tests (php_tests/run.sh: stock PHP 8.2 on zendmm)")
	php_tests/run.sh

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

clean:
	$(CARGO) clean

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
	$(call banner,"benchmark: bench/run.py (takes 10-20 minutes)")
	$(BENCH_RUN)

bench-quick: bench-deps
	@$(MAKE) --no-print-directory $(LIB) target/bench/replay
	$(call banner,"quick benchmark: bench/run.py --quick")
	$(BENCH_RUN) --quick
