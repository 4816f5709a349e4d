#!/usr/bin/env bash
# tests/install_test.sh: `make install` and `make uninstall` (run by
# `make install-test`, part of `make test`).
#
# For two layouts (PREFIX=/usr/local; PREFIX=/usr with a multiarch LIBDIR) it
# installs into a fresh `mktemp -d` DESTDIR that already holds a few unrelated
# files, and checks:
#   - exactly the expected files were added: lib/libzendmm.so.VERSION (the
#     built library, SONAME libzendmm.so.0), the libzendmm.so.0 and
#     libzendmm.so links, lib/libzendmm.a, include/zendmm.h,
#     include/zendmm_alloc.h, lib/pkgconfig/zendmm.pc and bin/zendmm-run,
#     with their modes and contents;
#   - zendmm.pc is valid and what pkg-config makes of it;
#   - a C program built with `pkg-config --cflags --libs zendmm` runs against
#     the staged libzendmm.so, and one built with `pkg-config --static --libs`
#     and libzendmm.a runs without it (no libzendmm in its NEEDED);
#   - examples/strbuf builds through its own Makefile, shared and static, and
#     shows its requests ending back at the baseline;
#   - the staged bin/zendmm-run preloads the staged library;
#   - `make uninstall` with the same variables leaves only the unrelated files.
# Prints `install_test: N passed, M failed` last; exits 1 on any failure.
set -u

root=$(cd "$(dirname "$0")/.." && pwd -P)
MAKE=${MAKE:-make}
CC=${CC:-cc}
STRICT_CFLAGS="-std=c11 -Wall -Wextra -Werror -Wpedantic -O2"

# Nothing from the caller's make or environment may change the layout.
unset MAKEFLAGS MFLAGS MAKEOVERRIDES MAKELEVEL GNUMAKEFLAGS
unset DESTDIR PREFIX LIBDIR INCLUDEDIR BINDIR PKGCONFIGDIR LD_PRELOAD LD_LIBRARY_PATH
unset PKG_CONFIG_PATH ZENDMM_LIB

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   - $*"; }
fail() { failed=$((failed + 1)); echo "FAIL - $*"; }
# check DESCRIPTION COMMAND...: passes when COMMAND succeeds.
check() {
	local desc=$1
	shift
	if "$@"; then pass "$desc"; else fail "$desc"; fi
}
# same DESCRIPTION EXPECTED ACTUAL
same() {
	if [ "$2" = "$3" ]; then
		pass "$1"
	else
		fail "$1"
		printf '       expected: %s\n       got:      %s\n' "$2" "$3"
	fi
}
# Runs a command quietly; on failure shows its output.
quiet() {
	local out
	if out=$("$@" 2>&1); then return 0; fi
	printf '%s\n' "$out" | tail -n 30 | sed 's/^/       | /'
	return 1
}

version=$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' "$root/Cargo.toml")
if [ -z "$version" ]; then
	fail "a version in Cargo.toml's [package]"
	echo "install_test: $passed passed, $failed failed"
	exit 1
fi
multiarch=$($CC -print-multiarch 2>/dev/null)
[ -n "$multiarch" ] || multiarch=x86_64-linux-gnu

work=$(mktemp -d "${TMPDIR:-/tmp}/zendmm-install-test.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
work=$(cd "$work" && pwd -P)

# A program that uses the macro layer and checks itself; prints "ok".
cat >"$work/prog.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include <zendmm_alloc.h>

int main(void)
{
	start_memory_manager();
	size_t base = zend_memory_usage(0), base_real = zend_memory_usage(1);
	char *s = estrdup("request");
	int *v = ecalloc(100, sizeof *v);
	v = erealloc(v, 100000 * sizeof *v);
	char *kept = pemalloc(32, 1);
	strcpy(kept, "persistent");
	if (strcmp(s, "request") != 0 || zend_memory_usage(0) <= base) {
		puts("request memory is wrong");
		return 1;
	}
	efree(s);
	shutdown_memory_manager(1, 0); /* v is left to the request shutdown */
	if (zend_memory_usage(0) != base || zend_memory_usage(1) != base_real) {
		printf("after the request: %zu/%zu, not %zu/%zu\n", zend_memory_usage(0),
		       zend_memory_usage(1), base, base_real);
		return 1;
	}
	if (strcmp(kept, "persistent") != 0 || zendmm_check_heap(NULL) != 0) {
		puts("persistent memory or heap is wrong");
		return 1;
	}
	pefree(kept, 1);
	shutdown_memory_manager(1, 1);
	puts("ok");
	return 0;
}
EOF

# needed FILE: the NEEDED entries of an ELF file, one a line.
needed() { readelf -d "$1" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
soname() { readelf -d "$1" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p'; }
mode() { stat -c %a "$1" 2>/dev/null; }
# is_file PATH MODE SOURCE: a regular file (not a link) with MODE, equal to SOURCE.
is_file() { [ -f "$1" ] && [ ! -L "$1" ] && [ "$(mode "$1")" = "$2" ] && cmp -s "$1" "$3"; }
is_link() { [ -L "$1" ] && [ "$(readlink "$1")" = "$2" ]; }

# round NAME PREFIX [LIBDIR]
round() {
	local name=$1 prefix=$2 libdir=${3-}
	local stage=$work/$name
	local vars=(DESTDIR="$stage" PREFIX="$prefix")
	[ -n "$libdir" ] && vars+=(LIBDIR="$libdir")
	[ -n "$libdir" ] || libdir=$prefix/lib
	local L=$stage$libdir I=$stage$prefix/include B=$stage$prefix/bin
	local P=$L/pkgconfig
	echo "--- $name: make install DESTDIR=(temporary) ${vars[*]:1}"

	# Unrelated files that share the directories: uninstall must keep them.
	mkdir -p "$L" "$P" "$I" "$B"
	local sentinels=("$L/libother.so.1" "$P/other.pc" "$I/other.h" "$B/other")
	touch "${sentinels[@]}"

	check "$name: make install" quiet "$MAKE" -C "$root" --no-print-directory install "${vars[@]}"

	local expected actual
	expected=$(printf '%s\n' "${sentinels[@]}" "$L/libzendmm.so.$version" "$L/libzendmm.so.0" \
		"$L/libzendmm.so" "$L/libzendmm.a" "$I/zendmm.h" "$I/zendmm_alloc.h" \
		"$P/zendmm.pc" "$B/zendmm-run" | sort)
	actual=$(find "$stage" ! -type d | sort)
	same "$name: exactly the expected files installed" "$expected" "$actual"

	check "$name: lib/libzendmm.so.$version is the built library, mode 755" \
		is_file "$L/libzendmm.so.$version" 755 "$root/target/release/libzendmm.so"
	check "$name: lib/libzendmm.so.0 -> libzendmm.so.$version" is_link "$L/libzendmm.so.0" "libzendmm.so.$version"
	check "$name: lib/libzendmm.so -> libzendmm.so.0" is_link "$L/libzendmm.so" libzendmm.so.0
	same "$name: SONAME of the installed library" libzendmm.so.0 "$(soname "$L/libzendmm.so.$version")"
	check "$name: lib/libzendmm.a is the built archive, mode 644" \
		is_file "$L/libzendmm.a" 644 "$root/target/release/libzendmm.a"
	check "$name: include/zendmm.h, mode 644" is_file "$I/zendmm.h" 644 "$root/include/zendmm.h"
	check "$name: include/zendmm_alloc.h, mode 644" is_file "$I/zendmm_alloc.h" 644 "$root/include/zendmm_alloc.h"
	check "$name: bin/zendmm-run, mode 755" is_file "$B/zendmm-run" 755 "$root/scripts/zendmm-run"
	check "$name: lib/pkgconfig/zendmm.pc, mode 644" [ "$(mode "$P/zendmm.pc")" = 644 ]

	# zendmm.pc as written (without DESTDIR: it describes the final layout).
	local libdir_pc=$libdir
	case $libdir in "$prefix"/*) libdir_pc="\${prefix}${libdir#"$prefix"}" ;; esac
	same "$name: zendmm.pc variables" \
		"prefix=$prefix|libdir=$libdir_pc|includedir=\${prefix}/include|Version: $version" \
		"$(grep -E '^(prefix=|libdir=|includedir=|Version:)' "$P/zendmm.pc" | paste -sd'|')"
	same "$name: zendmm.pc Libs, Libs.private, Cflags" \
		'Libs: -L${libdir} -lzendmm|Libs.private: -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc|Cflags: -I${includedir}' \
		"$(grep -E '^(Libs|Libs.private|Cflags):' "$P/zendmm.pc" | paste -sd'|')"

	# pkg-config sees only the staged zendmm.pc and puts DESTDIR in front.
	local pc=(env PKG_CONFIG_LIBDIR="$P" PKG_CONFIG_SYSROOT_DIR="$stage"
		PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1 pkg-config)
	check "$name: pkg-config --validate zendmm" quiet "${pc[@]}" --validate zendmm
	same "$name: pkg-config --modversion" "$version" "$("${pc[@]}" --modversion zendmm 2>&1)"
	local cflags libs slibs
	cflags=$("${pc[@]}" --cflags zendmm 2>&1)
	libs=$("${pc[@]}" --libs zendmm 2>&1)
	slibs=$("${pc[@]}" --static --libs zendmm 2>&1)
	same "$name: pkg-config --cflags --libs" "-I$I -L$L -lzendmm" "$(echo $cflags $libs)"
	same "$name: pkg-config --static --libs" "-L$L -lzendmm -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc" "$(echo $slibs)"

	# A program against the shared library.
	local exe=$work/$name-shared
	# shellcheck disable=SC2086 # pkg-config output is a list of flags
	if check "$name: cc \$(pkg-config --cflags --libs zendmm) (shared)" \
		quiet "$CC" $STRICT_CFLAGS $cflags "$work/prog.c" -o "$exe" $libs; then
		same "$name: shared program needs libzendmm.so.0" libzendmm.so.0 "$(needed "$exe" | grep zendmm)"
		same "$name: shared program runs with LD_LIBRARY_PATH=staged lib" ok \
			"$(LD_LIBRARY_PATH=$L "$exe" 2>&1)"
		check "$name: ldd finds the staged libzendmm.so.0" \
			grep -q "libzendmm.so.0 => $L/libzendmm.so.0 " <(LD_LIBRARY_PATH=$L ldd "$exe")
		same "$name: zendmm-run alone lets the shared program find libzendmm.so.0" ok \
			"$("$B/zendmm-run" "$exe" 2>&1)"
	fi

	# A program with libzendmm.a linked in: -l:libzendmm.a, or ld would take
	# the .so that sits beside it.
	exe=$work/$name-static
	# shellcheck disable=SC2086
	if check "$name: cc \$(pkg-config --static --libs zendmm) with libzendmm.a" \
		quiet "$CC" $STRICT_CFLAGS $cflags "$work/prog.c" -o "$exe" ${slibs/-lzendmm/-l:libzendmm.a}; then
		same "$name: static program does not need libzendmm" "" "$(needed "$exe" | grep zendmm)"
		check "$name: static program defines _emalloc itself" \
			grep -qE ' T _emalloc$' <(nm "$exe")
		same "$name: static program runs without the staged lib" ok \
			"$(LD_LIBRARY_PATH=/nonexistent "$exe" 2>&1)"
	fi

	# examples/strbuf through its own Makefile, in a copy.
	local ex=$work/$name-strbuf out_shared out_static
	cp -R "$root/examples/strbuf" "$ex"
	local exmake=(env PKG_CONFIG_LIBDIR="$P" PKG_CONFIG_SYSROOT_DIR="$stage"
		PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1
		"$MAKE" -C "$ex" --no-print-directory CC="$CC" CFLAGS="$STRICT_CFLAGS -g")
	if check "$name: examples/strbuf: make (shared)" quiet "${exmake[@]}" all; then
		out_shared=$(LD_LIBRARY_PATH=$L "$ex/demo" 2>&1)
		same "$name: examples/strbuf: demo's four requests end at the baseline" 4 \
			"$(grep -cE '^  after the request: +usage +8208  real +262144 ' <<<"$out_shared")"
		check "$name: examples/strbuf: the registry survived the requests" \
			grep -qE '^  /products +2 hit\(s\)$' <<<"$out_shared"
		same "$name: examples/strbuf: demo needs libzendmm.so.0" libzendmm.so.0 "$(needed "$ex/demo" | grep zendmm)"
	fi
	if check "$name: examples/strbuf: make static" quiet "${exmake[@]}" static; then
		out_static=$(LD_LIBRARY_PATH=/nonexistent "$ex/demo-static" 2>&1)
		same "$name: examples/strbuf: demo-static prints what demo prints" "${out_shared-}" "$out_static"
		same "$name: examples/strbuf: demo-static does not need libzendmm" "" \
			"$(needed "$ex/demo-static" | grep zendmm)"
	fi

	# The wrapper finds the staged library: from bin/ and through a symlink.
	local want
	want=$(cd "$L" && pwd -P)/libzendmm.so
	# shellcheck disable=SC2016 # $LD_PRELOAD is for the inner shell
	same "$name: bin/zendmm-run preloads the staged lib" "$want" \
		"$("$B/zendmm-run" sh -c 'echo $LD_PRELOAD' 2>&1)"
	mkdir -p "$work/$name-elsewhere"
	ln -s "$B/zendmm-run" "$work/$name-elsewhere/zendmm-run"
	# shellcheck disable=SC2016
	same "$name: zendmm-run through a symlink preloads the staged lib" "$want" \
		"$("$work/$name-elsewhere/zendmm-run" sh -c 'echo $LD_PRELOAD' 2>&1)"

	check "$name: make install again over the installed files" \
		quiet "$MAKE" -C "$root" --no-print-directory install "${vars[@]}"
	same "$name: the second install leaves the same files" "$expected" "$(find "$stage" ! -type d | sort)"

	check "$name: make uninstall" quiet "$MAKE" -C "$root" --no-print-directory uninstall "${vars[@]}"
	same "$name: uninstall removes exactly what was installed" \
		"$(printf '%s\n' "${sentinels[@]}" | sort)" "$(find "$stage" ! -type d | sort)"
	check "$name: make uninstall again (nothing left) succeeds" \
		quiet "$MAKE" -C "$root" --no-print-directory uninstall "${vars[@]}"
}

round usr-local /usr/local
round usr-multiarch /usr "/usr/lib/$multiarch"

echo "install_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
