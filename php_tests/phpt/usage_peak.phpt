--TEST--
memory_get_usage() and memory_get_peak_usage(): ints, sane relations, growth and release
--INI--
memory_limit=256M
--FILE--
<?php
$u = memory_get_usage();
$r = memory_get_usage(true);
var_dump(is_int($u) && $u > 0, is_int($r) && $r >= $u);
var_dump(memory_get_peak_usage() >= $u, memory_get_peak_usage(true) >= $r);
$s = str_repeat("a", 10 << 20);
$u2 = memory_get_usage();
var_dump($u2 - $u >= 10 << 20, $u2 - $u < 11 << 20);
var_dump(memory_get_usage(true) - $r >= 10 << 20);
unset($s);
var_dump(abs(memory_get_usage() - $u) < 65536);
var_dump(memory_get_peak_usage() >= $u2);
echo "Done\n";
?>
--EXPECT--
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
Done
