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

.PHONY: all header deps test rust-test c-test abi-test demo clean FORCE

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
	@scripts/install-deps.sh

# Stages run one after another even under -j, and the first failure stops make.
test: deps
	@$(MAKE) --no-print-directory rust-test
	@$(MAKE) --no-print-directory c-test
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
