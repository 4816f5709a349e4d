<?php
// String building with .=, and the usual string functions on large inputs.
$s = '';
for ($i = 0; $i < 500000; $i++) {
    $s .= "line $i;";
}
echo "concat: ", strlen($s), " ", md5($s), "\n";

$t = '';
for ($i = 0; $i < 2000; $i++) {
    $t .= str_repeat(chr(97 + $i % 26), $i);
}
echo "growing chunks: ", strlen($t), " ", crc32($t), "\n";

$parts = explode(";", $s);
echo "explode: ", count($parts), " ", $parts[123456], "\n";
$joined = implode("|", $parts);
echo "implode: ", strlen($joined), " ", sha1($joined), "\n";
unset($parts, $joined);

echo "replace: ", md5(str_replace(["line", ";"], ["L", "\n"], $s)), "\n";
echo "upper: ", md5(strtoupper($s)), "\n";
echo "rev: ", md5(strrev($s)), "\n";
echo "substr_count: ", substr_count($s, "99"), "\n";
echo "wordwrap: ", md5(wordwrap(substr($s, 0, 100000), 60, "\n", true)), "\n";
echo "pad: ", strlen(str_pad("x", 3000000, "-=", STR_PAD_BOTH)), "\n";
echo "sprintf: ", md5(sprintf("%s/%05d/%x/%.3f", $s, 42, 255, 3.14159)), "\n";
echo "chunk_split: ", md5(chunk_split(substr($s, 0, 200000), 76)), "\n";
echo "base64: ", md5(base64_decode(base64_encode($s))) === md5($s) ? "roundtrip" : "broken", "\n";
echo "hex: ", strlen(bin2hex(substr($s, 0, 1000000))), "\n";
echo "gz: ", md5(gzuncompress(gzcompress($s))) === md5($s) ? "roundtrip" : "broken", "\n";
echo "html: ", md5(htmlspecialchars(str_repeat("<a href='x'>&</a>", 100000))), "\n";
echo "number_format: ", number_format(1234567.891, 2), "\n";

// Many small strings held at once, then released.
$many = [];
for ($i = 0; $i < 300000; $i++) {
    $many[] = "s" . $i . str_repeat("z", $i % 50);
}
echo "many: ", count($many), " ", md5(implode("", array_slice($many, -1000))), "\n";
unset($many);

// Interned and numeric strings.
$keys = [];
foreach (range(0, 99999) as $i) {
    $keys[(string) $i] = true;
}
echo "numeric keys: ", count($keys), " ", var_export(array_key_last($keys), true), "\n";
echo "str_contains: ", var_export(str_contains($s, "line 499999;"), true), "\n";
