--TEST--
Strings of tens of MiB: built, grown in place, shrunk, released
--INI--
memory_limit=512M
--FILE--
<?php
$a = str_repeat("0123456789abcdef", 3 << 20);   // 48 MiB
echo strlen($a), " ", md5($a), "\n";
$a .= str_repeat("!", 16 << 20);
echo strlen($a), " ", substr($a, -3), " ", md5($a), "\n";
$b = substr($a, 1 << 20, 5);
echo $b, "\n";
$u = memory_get_usage();
$a = "";
var_dump($u - memory_get_usage() >= 64 << 20);
$s = '';
for ($i = 0; $i < 300000; $i++) { $s .= "chunk$i,"; }
echo strlen($s), " ", crc32($s), "\n";
?>
--EXPECT--
50331648 2ce63a5623939aac279e1942bb3fbb8d
67108864 !!! 2a14dabcc7a72a3935ba13ed5b8b7305
01234
bool(true)
3488890 1330707318
