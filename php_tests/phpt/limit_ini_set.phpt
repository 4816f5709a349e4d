--TEST--
ini_set('memory_limit') below the current usage is refused with a warning
--INI--
memory_limit=128M
--FILE--
<?php
$s = str_repeat("s", 8 << 20);
var_dump(ini_set('memory_limit', '2M'));
var_dump(ini_get('memory_limit'));
var_dump(ini_set('memory_limit', '64M'));
var_dump(ini_get('memory_limit'));
var_dump(ini_set('memory_limit', '-1'));
$t = str_repeat("t", 200 << 20);
var_dump(strlen($t));
unset($t);
var_dump(ini_set('memory_limit', '24M'));
$parts = [];
while (true) { $parts[] = str_repeat("p", 1 << 16); }
?>
--EXPECTF--
Warning: Failed to set memory limit to 2097152 bytes (Current memory usage is %d bytes) in %s on line 3
bool(false)
string(4) "128M"
string(4) "128M"
string(3) "64M"
string(3) "64M"
int(209715200)
string(2) "-1"

Fatal error: Allowed memory size of 25165824 bytes exhausted (tried to allocate %d bytes) in %s on line 13
