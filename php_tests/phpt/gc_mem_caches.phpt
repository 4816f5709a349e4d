--TEST--
gc_mem_caches() returns an int and leaves the heap usable
--FILE--
<?php
$a = [];
for ($i = 0; $i < 100000; $i++) { $a[] = "s$i"; }
unset($a);
$n = gc_mem_caches();
var_dump(is_int($n), $n >= 0);
var_dump(gc_mem_caches() >= 0);
$b = array_map(fn($i) => str_repeat("z", $i % 100), range(1, 50000));
echo count($b), " ", strlen(implode("", $b)), "\n";
?>
--EXPECT--
bool(true)
bool(true)
bool(true)
50000 2475000
