--TEST--
zendmm is the allocator of this test process (LD_PRELOAD inherited from run-tests)
--EXTENSIONS--
ffi
--INI--
ffi.enable=1
memory_limit=256M
--FILE--
<?php
$decl = "typedef struct { size_t size; uint32_t version; size_t usage, peak, real_usage, real_peak, limit, segments;"
      . " size_t rest[8]; uint64_t hits, misses; } zmm_stats;"
      . " bool zendmm_stats(const void *heap, zmm_stats *out);";
$ffi = FFI::cdef($decl);
$st = $ffi->new("zmm_stats");
$p = FFI::addr($st);
$sample = function () use ($ffi, $st, $p) {
    $st->size = FFI::sizeof($st);
    $ok = $ffi->zendmm_stats(null, $p);
    return [$ok, $st->usage, $st->real_usage, memory_get_usage(true), $st->limit];
};
[$ok, $usage, $real, $php_real, $limit] = $sample();
var_dump($ok, $real === $php_real, $real % 262144, $limit);
$s = str_repeat("z", 20 << 20);
[, $usage2, $real2, $php_real2] = $sample();
var_dump($usage2 - $usage >= 20 << 20, $real2 === $php_real2);
?>
--EXPECT--
bool(true)
bool(true)
int(0)
int(268435456)
bool(true)
bool(true)
