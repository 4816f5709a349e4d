<?php
// Arrays of a million elements: packed, hashed, nested, copy-on-write.
$n = 1000000;
$a = [];
for ($i = 0; $i < $n; $i++) {
    $a[] = $i * 2;
}
echo "packed: ", count($a), " sum ", array_sum($a), "\n";

$h = [];
for ($i = 0; $i < $n; $i++) {
    $h["key$i"] = $i;
}
echo "hash: ", count($h), " last ", $h["key999999"], "\n";
for ($i = 0; $i < $n; $i += 3) {
    unset($h["key$i"]);
}
echo "after unset: ", count($h), " ", isset($h["key3"]) ? "yes" : "no", " ", $h["key4"], "\n";
$h["new"] = -1;
echo "first key ", array_key_first($h), " last key ", array_key_last($h), "\n";
unset($h);

$m = array_map(fn($x) => $x + 1, $a);
echo "map: ", array_sum($m), "\n";
$f = array_filter($a, fn($x) => $x % 3 == 0);
echo "filter: ", count($f), " ", array_key_last($f), "\n";
$b = $a;            // shared
$b[0] = -5;         // separated
echo "cow: ", $a[0], " ", $b[0], "\n";
unset($b, $m, $f);

$nested = [];
for ($i = 0; $i < 200000; $i++) {
    $nested[$i % 1000][] = ['i' => $i, 's' => "v$i"];
}
$total = 0;
foreach ($nested as $bucket) {
    foreach ($bucket as $row) {
        $total += $row['i'] + strlen($row['s']);
    }
}
echo "nested: ", count($nested), " ", $total, "\n";

$r = range(1, $n);
mt_srand(42);
shuffle($r);
echo "shuffle: ", md5(implode(",", array_slice($r, 0, 1000))), "\n";
$chunks = array_chunk($r, 1000);
echo "chunks: ", count($chunks), " ", count(end($chunks)), "\n";
$merged = array_merge(...$chunks);
echo "merged: ", count($merged), " ", $merged === $r ? "same" : "different", "\n";
$u = array_unique(array_map(fn($x) => $x % 1000, $r));
echo "unique: ", count($u), "\n";
$flip = array_flip(array_slice($r, 0, 100000));
echo "flip: ", count($flip), "\n";
array_splice($r, 10, 500000);
echo "splice: ", count($r), " ", md5(serialize(array_slice($r, 0, 50))), "\n";
$fill = array_fill(5, 300000, 'x');
echo "fill: ", count($fill), " ", array_key_first($fill), "\n";
$sf = new SplFixedArray($n);
for ($i = 0; $i < $n; $i++) {
    $sf[$i] = $i;
}
echo "splfixed: ", $sf->getSize(), " ", $sf[$n - 1], "\n";
$sf->setSize(10);
echo "splfixed shrunk: ", $sf->getSize(), "\n";
