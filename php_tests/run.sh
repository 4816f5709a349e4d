#!/usr/bin/env bash
# zendmm as the allocator of Debian's stock PHP 8.2 (`make php-test`).
#
# Every PHP run here is done twice: by the stock php8.2 / libphp8.2 on PHP's
# own ZendMM, and with LD_PRELOAD=libzendmm.so. Both must give the expected
# output; the stock runs check that the scripts and expectations are sound.
#
#   symbols  the memory-manager symbols exported by libzendmm.so are exactly
#            libphp8.2.so's (118 names)
#   proof    zendmm is really the allocator: PHP's allocations show up in
#            zendmm_stats(), read through FFI (stock CLI, default ini, -n, JIT)
#   suite    suite/*.php vs suite/*.out (stdout; stderr empty, exit 0), in
#            three modes: -n, -n + opcache tracing JIT, Debian's php.ini
#   limit    limit/*.php hit memory_limit: exit status, stdout and stderr vs
#            limit/*.expect (-n modes) and limit/*.ini.expect (php.ini: the
#            error is only logged to stderr). The limit N is compared exactly;
#            "tried to allocate M bytes" differs by design (256 KiB segments
#            vs 2 MiB chunks) and is normalised to %M.
#   embed    embed/embed_requests.c, linked with -lphp8.2: 12 requests in one
#            process, usage back to its baseline after each
#   phpt     PHP's run-tests.php over phpt/*.phpt, LD_PRELOAD inherited by
#            every test process
#
# Usage: php_tests/run.sh            run everything
#        php_tests/run.sh --regen    rewrite suite/*.out and limit/*.expect
#                                    from the stock PHP (no zendmm), then run
# Environment: ZENDMM_LIB (default target/release/libzendmm.so), PHP
# (default /usr/bin/php8.2), CC (default gcc).
# Ends with "php_tests: N passed, M failed"; exits 1 if M > 0.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
LIB=${ZENDMM_LIB:-$root/target/release/libzendmm.so}
PHP=${PHP:-/usr/bin/php8.2}
CC=${CC:-gcc}
RUN_TESTS=/usr/lib/php/20220829/build/run-tests.php
LIBPHP=/usr/lib/libphp8.2.so
work=$root/target/php_tests
regen=0
[ "${1:-}" = "--regen" ] && regen=1

JIT=(-d zend_extension=opcache -d opcache.enable_cli=1 -d opcache.jit=tracing -d opcache.jit_buffer_size=32M)

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "PASS $1"; }
bad() {
    failed=$((failed + 1))
    echo "FAIL $1"
    shift
    [ $# -gt 0 ] && printf '%s\n' "$@" | head -40 | sed 's/^/    /'
}
# Runs "$@" under zendmm.
zmm() { LD_PRELOAD=$LIB "$@"; }

if [ ! -f "$LIB" ]; then
    echo "php_tests: $LIB not found (run make first)"
    echo "php_tests: 0 passed, 1 failed"
    exit 1
fi
for f in "$PHP" "$RUN_TESTS" "$LIBPHP"; do
    if [ ! -e "$f" ]; then
        echo "php_tests: $f not found (scripts/install-deps.sh php)"
        echo "php_tests: 0 passed, 1 failed"
        exit 1
    fi
done
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
echo "php_tests: $($PHP -n -r 'echo PHP_VERSION;') with $LIB"

# ---------------------------------------------------------------- symbols
mm_symbols() {
    nm -D --defined-only "$1" | awk '{print $3}' \
        | grep -E '^(_e|_safe_|_fe|zend_mm|zend_memory|zend_set_memory|zend_alloc|is_zend|start_memory|shutdown_memory|zend_strndup|__zend|_zend_m|zend_handle_delayed)' \
        | grep -v -E 'zend_alloc_ce_cache|^_edata|^_end' | sort
}
mm_symbols "$LIBPHP" > symbols.libphp
mm_symbols "$LIB" > symbols.zendmm
n_php=$(wc -l < symbols.libphp)
if [ "$n_php" -ne 118 ]; then
    bad "symbols: libphp8.2.so has $n_php memory-manager symbols, expected 118"
elif diff -u symbols.libphp symbols.zendmm > symbols.diff; then
    ok "symbols: libzendmm.so exports the same $n_php memory-manager symbols as libphp8.2.so"
else
    bad "symbols: libzendmm.so's memory-manager symbols differ from libphp8.2.so's (- only in libphp, + only in zendmm)" \
        "$(grep -E '^[-+][^-+]' symbols.diff | tr '\n' ' ')"
fi

# ---------------------------------------------------------------- proof
proof="$here/proof/ffi_stats.php"
header="$root/include/zendmm.h"
check_proof() {   # name expected-rc command...
    local name=$1 want=$2
    shift 2
    "$@" > proof.out 2>&1
    local rc=$?
    if [ "$rc" -eq "$want" ] && { [ "$want" -ne 0 ] || grep -qx 'zendmm is the allocator' proof.out; }; then
        ok "proof: $name"
    else
        bad "proof: $name (exit $rc, expected $want)" "$(cat proof.out)"
    fi
}
check_proof "stock php8.2 does not see zendmm_stats (the check discriminates)" 3 \
    "$PHP" -d ffi.enable=1 -d memory_limit=200M "$proof" "$header"
check_proof "php8.2 with Debian's php.ini allocates from zendmm" 0 \
    zmm "$PHP" -d ffi.enable=1 -d memory_limit=200M "$proof" "$header"
check_proof "php8.2 -n allocates from zendmm" 0 \
    zmm "$PHP" -n -d extension=ffi -d ffi.enable=1 -d memory_limit=200M "$proof" "$header"
check_proof "php8.2 -n with the tracing JIT allocates from zendmm" 0 \
    zmm "$PHP" -n "${JIT[@]}" -d extension=ffi -d ffi.enable=1 -d memory_limit=200M "$proof" "$header"
jit_on=$(zmm "$PHP" -n "${JIT[@]}" -r 'echo json_encode(opcache_get_status()["jit"]["on"] ?? null);' 2>&1)
if [ "$jit_on" = "true" ]; then
    ok "proof: the tracing JIT is on under zendmm"
else
    bad "proof: the tracing JIT is on under zendmm" "opcache_get_status()['jit']['on'] = $jit_on"
fi

# ---------------------------------------------------------------- suite
suite_modes=(n jit ini)
suite_args() {
    case $1 in
        n) echo "-n -d memory_limit=1G" ;;
        jit) echo "-n -d memory_limit=1G ${JIT[*]}" ;;
        ini) echo "-d memory_limit=1G" ;;
    esac
}
if [ $regen -eq 1 ]; then
    for s in "$here"/suite/*.php; do
        "$PHP" -n -d memory_limit=1G "$s" > "${s%.php}.out"
    done
fi
for s in "$here"/suite/*.php; do
    name=$(basename "$s" .php)
    for mode in "${suite_modes[@]}"; do
        # shellcheck disable=SC2046
        for who in stock zendmm; do
            pre=()
            [ $who = zendmm ] && pre=(env "LD_PRELOAD=$LIB")
            "${pre[@]}" "$PHP" $(suite_args $mode) "$s" > "suite.$name.$mode.$who.out" 2> "suite.$name.$mode.$who.err"
            rc=$?
            label="suite: $name ($who, $mode)"
            if [ $rc -ne 0 ]; then
                bad "$label: exit status $rc" "$(tail -5 "suite.$name.$mode.$who.err")"
            elif [ -s "suite.$name.$mode.$who.err" ]; then
                bad "$label: stderr not empty" "$(head -5 "suite.$name.$mode.$who.err")"
            elif ! diff -u "${s%.php}.out" "suite.$name.$mode.$who.out" > "suite.$name.$mode.$who.diff"; then
                bad "$label: output differs from suite/$name.out" "$(tail -n +3 "suite.$name.$mode.$who.diff" | head -20)"
            else
                ok "$label"
            fi
        done
    done
done

# ---------------------------------------------------------------- limit
limit_render() {   # rc stdout-file stderr-file
    echo "exit status: $1"
    echo "--- stdout"
    sed -e "s|$here/limit/||g" -e 's/(tried to allocate [0-9]* bytes)/(tried to allocate %M bytes)/g' "$2"
    echo "--- stderr"
    sed -e "s|$here/limit/||g" -e 's/(tried to allocate [0-9]* bytes)/(tried to allocate %M bytes)/g' "$3"
}
limit_modes=(n jit ini)
for s in "$here"/limit/*.php; do
    name=$(basename "$s" .php)
    limit=$(sed -n 's|^// memory_limit: *||p' "$s")
    if [ -z "$limit" ]; then
        bad "limit: $name has no '// memory_limit: ' line"
        continue
    fi
    for mode in "${limit_modes[@]}"; do
        case $mode in
            n) args=(-n -d log_errors=1 -d "memory_limit=$limit"); expect="${s%.php}.expect" ;;
            jit) args=(-n -d log_errors=1 -d "memory_limit=$limit" "${JIT[@]}"); expect="${s%.php}.expect" ;;
            ini) args=(-d "memory_limit=$limit"); expect="${s%.php}.ini.expect" ;;
        esac
        for who in stock zendmm; do
            pre=()
            [ $who = zendmm ] && pre=(env "LD_PRELOAD=$LIB")
            base="limit.$name.$mode.$who"
            "${pre[@]}" "$PHP" "${args[@]}" "$s" > "$base.stdout" 2> "$base.stderr"
            rc=$?
            limit_render $rc "$base.stdout" "$base.stderr" > "$base.got"
            if [ $regen -eq 1 ] && [ $who = stock ] && [ $mode != jit ]; then
                cp "$base.got" "$expect"
            fi
            label="limit: $name, memory_limit=$limit ($who, $mode)"
            if diff -u "$expect" "$base.got" > "$base.diff"; then
                ok "$label"
            else
                bad "$label: differs from limit/$(basename "$expect")" "$(tail -n +3 "$base.diff" | head -20)"
            fi
        done
    done
done

# ---------------------------------------------------------------- environment
# USE_ZEND_ALLOC=0 hands request memory to libc malloc, still counted and
# limited (stock PHP needs USE_TRACKED_ALLOC=1 for that); ZEND_MM_MAX_ALLOCS
# then stops the script like a limit error, with exit status 121.
env_case() {   # label expected-rc expected-stdout command...
    local label=$1 want_rc=$2 want_out=$3 out rc
    shift 3
    out=$("$@" 2>/dev/null | sed 's/(tried to allocate [0-9]* bytes)/(tried to allocate %M bytes)/'; exit "${PIPESTATUS[0]}")
    rc=$?
    if [ "$rc" = "$want_rc" ] && [ "$out" = "$want_out" ]; then
        ok "environment: $label"
    else
        bad "environment: $label" "exit status $rc (want $want_rc)" "stdout: $out" "want:   $want_out"
    fi
}
grow='$a=[]; for($i=0;$i<100000;$i++) $a[]="x$i"; echo "done\n";'
limit_msg=$'\nFatal error: Allowed memory size of 134217728 bytes exhausted (tried to allocate %M bytes) in Command line code on line 1'
env_case "ZEND_MM_MAX_ALLOCS=1000, stock tracked allocator" 121 "$limit_msg" \
    env USE_ZEND_ALLOC=0 USE_TRACKED_ALLOC=1 ZEND_MM_MAX_ALLOCS=1000 "$PHP" -n -r "$grow"
env_case "ZEND_MM_MAX_ALLOCS=1000 with USE_ZEND_ALLOC=0, zendmm" 121 "$limit_msg" \
    env USE_ZEND_ALLOC=0 ZEND_MM_MAX_ALLOCS=1000 LD_PRELOAD="$LIB" "$PHP" -n -r "$grow"
env_case "USE_ZEND_ALLOC=0 counts usage and keeps memory_limit, zendmm" 255 \
    $'counted\n\nFatal error: Allowed memory size of 8388608 bytes exhausted (tried to allocate %M bytes) in Command line code on line 1' \
    env USE_ZEND_ALLOC=0 LD_PRELOAD="$LIB" "$PHP" -n -d memory_limit=8M \
    -r 'echo memory_get_usage() > 0 ? "counted\n" : "zero\n"; $s = str_repeat("x", 16 << 20); echo "survived\n";'
env_case "USE_ZEND_ALLOC=0 runs the suite's arrays script, zendmm" 0 "$(cat "$here/suite/arrays.out")" \
    env USE_ZEND_ALLOC=0 LD_PRELOAD="$LIB" "$PHP" -n -d memory_limit=-1 "$here/suite/arrays.php"

# ---------------------------------------------------------------- embed
embed_bin=$work/embed_requests
# shellcheck disable=SC2046
if "$CC" -std=gnu11 -O2 -Wall -Wextra -Wno-unused-parameter $(php-config8.2 --includes) \
        "$here/embed/embed_requests.c" -o "$embed_bin" -lphp8.2 -ldl > embed.cc.log 2>&1; then
    ok "embed: embed_requests.c builds against libphp8.2"
    for who in stock zendmm; do
        if [ $who = stock ]; then
            "$embed_bin" --expect-stock "$here/embed" > embed.$who.out 2> embed.$who.err
        else
            zmm "$embed_bin" --expect-zendmm "$here/embed" > embed.$who.out 2> embed.$who.err
        fi
        rc=$?
        if [ $rc -eq 0 ] && grep -q '^embed: [0-9]* checks, 0 failed$' embed.$who.out; then
            ok "embed: 12 requests ($who): usage back to the baseline after each, $(grep -o '[0-9]* checks' embed.$who.out)"
        else
            bad "embed: 12 requests ($who): exit status $rc" "$(grep -v '^\(request.php\|eval\):' embed.$who.out)" "$(head -20 embed.$who.err)"
        fi
        # The same output apart from the zendmm line, the check count and M.
        grep -v -e '^embed: zendmm ' -e '^embed: [0-9]* checks' embed.$who.out > embed.$who.cmp
        sed -e 's/(tried to allocate [0-9]* bytes)/(tried to allocate %M bytes)/g' embed.$who.err > embed.$who.cmperr
    done
    if diff -u embed.stock.cmp embed.zendmm.cmp > embed.diff && diff -u embed.stock.cmperr embed.zendmm.cmperr >> embed.diff; then
        ok "embed: stdout and stderr (fatal errors) as with PHP's allocator"
    else
        bad "embed: output differs from the stock run" "$(cat embed.diff)"
    fi
else
    bad "embed: embed_requests.c does not build" "$(cat embed.cc.log)"
fi

# ---------------------------------------------------------------- phpt
run_phpt() {   # who dir
    local who=$1 dir=$2
    if [ $who = stock ]; then
        TEST_PHP_EXECUTABLE=$PHP "$PHP" "$RUN_TESTS" -j2 --offline -q "$dir" > "phpt.$who.log" 2>&1
    else
        (export LD_PRELOAD=$LIB TEST_PHP_EXECUTABLE=$PHP; "$PHP" "$RUN_TESTS" -j2 --offline -q "$dir") > "phpt.$who.log" 2>&1
    fi
    local n
    n=$(ls "$dir"/*.phpt | wc -l)
    local want="Tests passed    : *$n "
    if grep -q "^$want" "phpt.$who.log" && grep -q '^Tests failed    : *0 ' "phpt.$who.log" \
            && grep -q '^Tests skipped   : *0 ' "phpt.$who.log" && grep -q '^Tests warned    : *0 ' "phpt.$who.log"; then
        ok "phpt: run-tests.php ($who): all $n passed"
    else
        local diffs
        diffs=$(for d in "$dir"/*.diff; do [ -f "$d" ] && { echo "== $(basename "$d")"; head -15 "$d"; }; done)
        bad "phpt: run-tests.php ($who): not all $n passed" \
            "$(sed -n '/^Number of tests/,/^Time taken/p;/^FAILED TEST SUMMARY/,/^====/p' "phpt.$who.log" | grep -v '^[=-]*$')" "$diffs"
    fi
}
mkdir -p phpt.stock phpt.zendmm
cp "$here"/phpt/*.phpt phpt.zendmm/
cp "$here"/phpt/*.phpt phpt.stock/
rm phpt.stock/zendmm_active.phpt     # fails by design without zendmm
run_phpt stock "$work/phpt.stock"
run_phpt zendmm "$work/phpt.zendmm"

echo "php_tests: $passed passed, $failed failed"
[ $failed -eq 0 ]
