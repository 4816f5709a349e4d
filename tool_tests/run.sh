#!/usr/bin/env bash
# make test-valgrind / make test-asan: zendmm's blocks under memcheck and
# AddressSanitizer (src/tool.rs).
#
#   tool_tests/run.sh valgrind   every C test (target/c_tests/*) under memcheck,
#                                PHP 8.2 on zendmm under memcheck, and the
#                                misuse cases of tool_misuse.c
#   tool_tests/run.sh asan       every C test built with gcc -fsanitize=address
#                                (target/c_tests_asan/*, made by the Makefile)
#                                and the misuse cases
#
# Clean runs must have zero reports, in every process (forked children
# included: each writes its own log, and every log is read). Each misuse case
# must be reported by the tool, with the kind of access and the block, and a
# clean run of the same program must not be: a test that cannot fail is not
# a test.
#
# Environment: ZENDMM_LIB (default target/release/libzendmm.so), PHP
# (default /usr/bin/php8.2). Ends with "tool_tests (TOOL): N passed, M failed";
# exits 1 if M > 0.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
tool=${1:-}
LIB=${ZENDMM_LIB:-$root/target/release/libzendmm.so}
PHP=${PHP:-/usr/bin/php8.2}
work=$root/target/tool_tests/$tool

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "PASS $1"; }
bad() {
    failed=$((failed + 1))
    echo "FAIL $1"
    shift
    [ $# -gt 0 ] && printf '%s\n' "$@" | head -40 | sed 's/^/    /'
}

# memcheck: every error counts (--error-exitcode), definite leaks count as
# errors, one log per process (%p), so forked children are checked too.
VALGRIND=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
          --show-leak-kinds=definite --num-callers=30)

# Logs of the processes of one run whose ERROR SUMMARY is not 0 (a process
# killed by a signal writes none; its parent's checks see that).
vg_errors() { grep -L "ERROR SUMMARY: 0 errors" "$1"/*.log 2>/dev/null | while read -r f; do
    grep -q "ERROR SUMMARY" "$f" && echo "$f"; done; }

# The first lines of memcheck's report in each log given, banner left out.
show_logs() { local f; for f in "$@"; do echo "$f:"; grep -v '^==[0-9]*== *$' "$f" | sed -n '6,30p'; done; }

# The misuse cases and what the tool must say about each: an access of the
# right kind, at the right place.
declare -A VG_EXPECT=(
    [overflow-small]="Invalid write of size 1|0 bytes after a block of size 104 alloc'd"
    [overflow-large]="Invalid write of size 1|0 bytes after a block of size 5,000 alloc'd"
    [underflow]="Invalid write of size 1|1 bytes before a block of size 104 alloc'd"
    [uaf-small]="Invalid read of size 1|0 bytes inside a block of size 104 free'd"
    [uaf-large]="Invalid read of size 1|100 bytes inside a block of size 5,000 free'd"
    [stale-realloc]="Invalid read of size 1|8 bytes inside a block of size 104 free'd|realloc"
    [after-shutdown]="Invalid read of size 1|8 bytes inside a block of size 104 free'd|shutdown"
    [no-shutdown]="3,000 bytes in 3 blocks are definitely lost|zendmm_vg_malloclike"
)
declare -A ASAN_EXPECT=(
    [overflow-small]="AddressSanitizer: use-after-poison|WRITE of size 1"
    [overflow-large]="AddressSanitizer: use-after-poison|WRITE of size 1"
    [underflow]="AddressSanitizer: use-after-poison|WRITE of size 1"
    [uaf-small]="AddressSanitizer: use-after-poison|READ of size 1"
    [uaf-large]="AddressSanitizer: use-after-poison|READ of size 1"
    [stale-realloc]="AddressSanitizer: use-after-poison|READ of size 1"
    [after-shutdown]="AddressSanitizer: use-after-poison|READ of size 1"
)
CASES=(overflow-small overflow-large underflow uaf-small uaf-large stale-realloc after-shutdown)
VG_CASES=("${CASES[@]}" no-shutdown)

# has_all FILE "a|b": FILE contains every |-separated text.
has_all() {
    local IFS='|'
    for want in $2; do grep -qF -- "$want" "$1" || return 1; done
}

run_valgrind() {
    command -v valgrind >/dev/null || { bad "valgrind is not installed (scripts/install-deps.sh test)"; return; }
    local t name dir rc errs
    for t in "$root"/target/c_tests/*; do
        name=$(basename "$t")
        dir=$work/$name
        rm -rf "$dir" && mkdir -p "$dir"
        started=$SECONDS
        "${VALGRIND[@]}" --suppressions="$here/request_blocks.supp" --log-file="$dir/%p.log" \
            "$t" >"$dir/out" 2>&1
        rc=$?
        errs=$(vg_errors "$dir")
        if [ $rc -eq 0 ] && [ -z "$errs" ]; then
            ok "valgrind $name ($(tail -1 "$dir/out"); $((SECONDS - started)) s)"
        else
            bad "valgrind $name (exit $rc)" "$(grep -A3 "CHECK failed" "$dir/out" | head -12)" \
                "$(show_logs $errs)"
        fi
    done

    # PHP on zendmm: the stock CLI, redirected by the preload (see README).
    # --trace-children: `env LD_PRELOAD=... php` execs php under memcheck.
    # pcre.jit=0: PCRE2's JIT code branches on match data it never wrote,
    # which memcheck reports with stock PHP on libc malloc too
    # (USE_ZEND_ALLOC=0); PCRE2's documentation says to run valgrind
    # without the JIT. No suppression is needed.
    local php_runs=(
        "strings|-n $root/php_tests/suite/strings.php"
        "objects_gc|-n $root/php_tests/suite/objects_gc.php"
        "proof|-n -d extension=ffi -d ffi.enable=1 $root/php_tests/proof/ffi_stats.php $root/include/zendmm.h"
        "limit|-n -d memory_limit=8M $root/php_tests/limit/loop_concat.php"
    )
    local entry args want_rc
    for entry in "${php_runs[@]}"; do
        name=php-${entry%%|*}
        args=${entry#*|}
        dir=$work/$name
        rm -rf "$dir" && mkdir -p "$dir"
        want_rc=0
        [ "$name" = php-limit ] && want_rc=255
        # shellcheck disable=SC2086
        "${VALGRIND[@]}" --trace-children=yes --log-file="$dir/%p.log" \
            env LD_PRELOAD="$LIB" USE_ZEND_ALLOC=1 "$PHP" -d pcre.jit=0 $args \
            >"$dir/out" 2>&1
        rc=$?
        errs=$(vg_errors "$dir")
        if [ $rc -eq $want_rc ] && [ -z "$errs" ] && ! grep -q "not patching" "$dir/out"; then
            ok "valgrind $name (exit $rc)"
        else
            bad "valgrind $name (exit $rc, expected $want_rc)" "$(tail -5 "$dir/out")" \
                "$(show_logs $errs)"
        fi
    done
    if grep -q "zendmm is the allocator" "$work/php-proof/out" 2>/dev/null; then
        ok "valgrind php-proof: PHP ran on zendmm"
    else
        bad "valgrind php-proof: PHP did not run on zendmm" "$(cat "$work/php-proof/out" 2>/dev/null)"
    fi

    local prog=$root/target/tool_tests/tool_misuse c
    dir=$work/misuse
    rm -rf "$dir" && mkdir -p "$dir"
    "${VALGRIND[@]}" --log-file="$dir/clean.log" "$prog" clean >"$dir/clean.out" 2>&1
    rc=$?
    if [ $rc -eq 0 ] && grep -q "ERROR SUMMARY: 0 errors" "$dir/clean.log"; then
        ok "valgrind misuse clean: no report"
    else
        bad "valgrind misuse clean (exit $rc)" "$(head -30 "$dir/clean.log")"
    fi
    # Both storages: a malloc'd segment is a block of its own to memcheck,
    # and must not be the one its reports name.
    local mem log
    for mem in mmap_anon malloc; do
        for c in "${VG_CASES[@]}"; do
            log=$dir/$c.$mem.log
            ZEND_MM_MEM_TYPE=$mem "${VALGRIND[@]}" --log-file="$log" "$prog" "$c" >"$dir/$c.$mem.out" 2>&1
            rc=$?
            if [ $rc -eq 99 ] && has_all "$log" "${VG_EXPECT[$c]}"; then
                ok "valgrind misuse $c ($mem): reported"
            else
                bad "valgrind misuse $c ($mem): not reported as expected (exit $rc; want ${VG_EXPECT[$c]})" \
                    "$(head -20 "$log")"
            fi
        done
    done
}

run_asan() {
    local t name dir rc reports
    # Every process logs to its own file (log_path appends .PID), forked
    # children included. LSan stays on: zendmm's segments are reachable from
    # its heaps, so request memory does not look leaked.
    for t in "$root"/target/c_tests_asan/*; do
        name=$(basename "$t")
        dir=$work/$name
        rm -rf "$dir" && mkdir -p "$dir"
        ASAN_OPTIONS="log_path=$dir/asan:detect_leaks=1" "$t" >"$dir/out" 2>&1
        rc=$?
        # The logs also hold warnings (a huge malloc refused on purpose);
        # a report starts with "ERROR: AddressSanitizer" or "ERROR: LeakSanitizer".
        reports=$(grep -l "ERROR: [A-Za-z]*Sanitizer" "$dir"/asan.* 2>/dev/null |
            while read -r f; do head -30 "$f"; done)
        if [ $rc -eq 0 ] && [ -z "$reports" ]; then
            ok "asan $name ($(tail -1 "$dir/out"))"
        else
            bad "asan $name (exit $rc)" "$(tail -5 "$dir/out")" "$reports"
        fi
    done

    local prog=$root/target/tool_tests/tool_misuse_asan c
    dir=$work/misuse
    rm -rf "$dir" && mkdir -p "$dir"
    "$prog" clean >"$dir/clean.out" 2>&1
    rc=$?
    if [ $rc -eq 0 ] && ! grep -q AddressSanitizer "$dir/clean.out"; then
        ok "asan misuse clean: no report"
    else
        bad "asan misuse clean (exit $rc)" "$(head -30 "$dir/clean.out")"
    fi
    for c in "${CASES[@]}"; do
        "$prog" "$c" >"$dir/$c.out" 2>&1
        rc=$?
        if [ $rc -ne 0 ] && has_all "$dir/$c.out" "${ASAN_EXPECT[$c]}" &&
            ! grep -q "tool_misuse $c done" "$dir/$c.out"; then
            ok "asan misuse $c: reported"
        else
            bad "asan misuse $c: not reported as expected (exit $rc; want ${ASAN_EXPECT[$c]})" \
                "$(head -20 "$dir/$c.out")"
        fi
    done
}

case $tool in
valgrind) run_valgrind ;;
asan) run_asan ;;
*)
    echo "usage: $0 valgrind|asan" >&2
    exit 2
    ;;
esac

echo "tool_tests ($tool): $passed passed, $failed failed"
[ $failed -eq 0 ]
