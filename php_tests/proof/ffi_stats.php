<?php
// Proof that zendmm is the allocator in use: PHP's own allocations show up in
// zendmm's statistics, read through FFI from zendmm_stats().
// Usage: php -d ffi.enable=1 ffi_stats.php path/to/include/zendmm.h
// Exit 0 and "zendmm is the allocator" when it is; exit 3 when
// zendmm_stats cannot be resolved (zendmm not loaded); exit 1 when it is
// loaded but does not see PHP's allocations.
$header = file_get_contents($argv[1]);
if (!preg_match('/typedef struct zendmm_heap_stats \{.*?\} zendmm_heap_stats;/s', $header, $m)) {
    fwrite(STDERR, "zendmm_heap_stats not found in $argv[1]\n");
    exit(2);
}
$decl = preg_replace('~//[^\n]*~', '', $m[0]);
try {
    $ffi = FFI::cdef($decl . "\nbool zendmm_stats(const void *heap, zendmm_heap_stats *out);");
    $ffi->zendmm_stats(null, null);   // resolves the symbol now
} catch (FFI\Exception $e) {
    echo "zendmm not loaded: ", $e->getMessage(), "\n";
    exit(3);
}
$st = $ffi->new("zendmm_heap_stats");
$addr = FFI::addr($st);
$size = FFI::sizeof($st);
$failures = 0;
function check(string $what, bool $ok, array $figures): void {
    global $failures;
    echo $ok ? "ok " : "FAIL ", $what, $ok ? "" : ": " . json_encode($figures), "\n";
    $failures += $ok ? 0 : 1;
}
// Reads zendmm's figures and PHP's at the same moment.
function sample(): array {
    global $ffi, $st, $addr, $size;
    $st->size = $size;
    $ok = $ffi->zendmm_stats(null, $addr);
    $usage = memory_get_usage();
    $real = memory_get_usage(true);
    return ['ok' => $ok, 'version' => $st->version,
            'zendmm_usage' => $st->usage, 'php_usage' => $usage,
            'zendmm_real' => $st->real_usage, 'php_real' => $real,
            'zendmm_peak' => $st->peak, 'php_peak' => memory_get_peak_usage(),
            'limit' => $st->limit, 'segments' => $st->segments];
}
$mb = 1 << 20;
$before = sample();
check("zendmm_stats() succeeds", $before['ok'] === true && $before['version'] >= 1, $before);
check("memory_get_usage(true) is zendmm's real usage", $before['php_real'] === $before['zendmm_real'], $before);
check("memory_get_usage() is zendmm's usage", abs($before['php_usage'] - $before['zendmm_usage']) <= 4096, $before);
check("real usage is a multiple of 256 KiB", $before['zendmm_real'] % 262144 === 0 && $before['segments'] > 0, $before);
$limit = ini_get('memory_limit');
$expected_limit = $limit === '-1' ? null : (int) $limit * (str_ends_with($limit, 'M') ? $mb : 1);
check("memory_limit is zendmm's limit", $expected_limit === null || $before['limit'] === $expected_limit, [$limit, $before]);

$s = str_repeat("z", 24 * $mb);
$with = sample();
check("a 24 MiB string raises zendmm's usage", $with['zendmm_usage'] - $before['zendmm_usage'] >= 24 * $mb, [$before, $with]);
check("a 24 MiB string raises zendmm's real usage", $with['zendmm_real'] - $before['zendmm_real'] >= 24 * $mb, [$before, $with]);
check("zendmm's peak follows", $with['zendmm_peak'] >= $with['zendmm_usage'], $with);
check("PHP's figures are still zendmm's", $with['php_real'] === $with['zendmm_real'] && abs($with['php_usage'] - $with['zendmm_usage']) <= 4096, $with);

unset($s);
$after = sample();
// (less a little: the array $with is alive now, not when it was measured)
check("unset lowers zendmm's usage", $with['zendmm_usage'] - $after['zendmm_usage'] >= 24 * $mb - 4096, [$with, $after]);

$objs = [];
for ($i = 0; $i < 100000; $i++) {
    $objs[] = new ArrayObject([$i]);
}
$objects = sample();
check("100000 small objects raise zendmm's usage", $objects['zendmm_usage'] - $after['zendmm_usage'] >= 100000 * 40, [$after, $objects]);
if ($failures) {
    exit(1);
}
echo "zendmm is the allocator\n";
