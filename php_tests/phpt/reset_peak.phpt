--TEST--
memory_reset_peak_usage() lowers both peaks to the current usage
--INI--
memory_limit=256M
--FILE--
<?php
$s = str_repeat("b", 16 << 20);
unset($s);
$peak = memory_get_peak_usage();
$real_peak = memory_get_peak_usage(true);
var_dump(memory_reset_peak_usage());
var_dump(memory_get_peak_usage() < $peak - (15 << 20));
var_dump(memory_get_peak_usage(true) < $real_peak - (15 << 20));
var_dump(memory_get_peak_usage() >= memory_get_usage());
var_dump(memory_get_peak_usage(true) >= memory_get_usage(true));
$t = str_repeat("c", 4 << 20);
var_dump(memory_get_peak_usage() >= memory_get_usage());
var_dump(memory_get_peak_usage() - $peak < 0);
?>
--EXPECT--
NULL
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
