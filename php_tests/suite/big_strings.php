<?php
// str_repeat of tens of MiB, growing and shrinking huge strings.
$a = str_repeat("0123456789", 4 << 20);       // 40 MiB
echo "repeat: ", strlen($a), " ", md5($a), "\n";
$b = str_repeat("x", 24 << 20);               // 24 MiB
$c = $a . $b;                                  // 64 MiB
echo "concat: ", strlen($c), " ", crc32($c), "\n";
unset($c);
$b .= str_repeat("y", 8 << 20);               // in-place growth of a huge string
echo "grown: ", strlen($b), " ", md5($b), "\n";
$b = substr($b, 0, 1 << 20);                  // shrink
echo "shrunk: ", strlen($b), " ", md5($b), "\n";
$u = strtoupper(str_repeat("abc", 10 << 20));
echo "upper: ", strlen($u), " ", substr($u, -6), "\n";
unset($u);
$r = str_replace("5", "five", $a);
echo "replace: ", strlen($r), " ", md5($r), "\n";
unset($r);
$h = hash('sha256', $a);
echo "sha256: ", $h, "\n";
$parts = str_split(substr($a, 0, 8 << 20), 1 << 16);
echo "split: ", count($parts), "\n";
$j = implode("", $parts);
echo "join: ", strlen($j), " ", $j === substr($a, 0, 8 << 20) ? "same" : "different", "\n";
unset($parts, $j);
// Repeatedly allocate and free huge strings of varied sizes.
$acc = 0;
for ($i = 1; $i <= 30; $i++) {
    $t = str_repeat(chr(64 + $i), $i * 700000 + $i);
    $acc += strlen($t) + ord($t[strlen($t) >> 1]);
}
echo "varied: ", $acc, "\n";
$pad = str_pad("", 20 << 20, "ab");
echo "pad: ", strlen($pad), " ", substr($pad, -4), "\n";
$file = tempnam(sys_get_temp_dir(), "zmm");
file_put_contents($file, $a);
$read = file_get_contents($file);
unlink($file);
echo "file roundtrip: ", $read === $a ? "same" : "different", "\n";
