<?php
// Sorting large arrays: ints, strings, user comparators, keys, multisort.
mt_srand(7);
$n = 500000;
$ints = [];
for ($i = 0; $i < $n; $i++) {
    $ints[] = mt_rand(0, 1 << 30);
}
$sorted = $ints;
sort($sorted);
echo "sort: ", $sorted[0], " ", $sorted[$n >> 1], " ", $sorted[$n - 1], " ", md5(implode(",", array_slice($sorted, 0, 1000))), "\n";
rsort($sorted);
echo "rsort: ", $sorted[0], "\n";
$strs = array_map(fn($x) => "s" . dechex($x), array_slice($ints, 0, 200000));
sort($strs, SORT_STRING);
echo "string sort: ", $strs[0], " ", $strs[199999], " ", md5(implode("", $strs)), "\n";
natcasesort($strs);
echo "natcasesort: ", md5(implode("", $strs)), "\n";
$recs = [];
for ($i = 0; $i < 100000; $i++) {
    $recs[] = ['k' => $ints[$i] % 1000, 'i' => $i];
}
usort($recs, fn($a, $b) => [$a['k'], $a['i']] <=> [$b['k'], $b['i']]);
echo "usort: ", $recs[0]['k'], "/", $recs[0]['i'], " ", $recs[99999]['k'], "/", $recs[99999]['i'], "\n";
$assoc = [];
foreach (array_slice($ints, 0, 100000) as $i => $v) {
    $assoc["k$v"] = $i;
}
ksort($assoc);
echo "ksort: ", array_key_first($assoc), " ", array_key_last($assoc), "\n";
arsort($assoc);
echo "arsort: ", array_key_first($assoc), " ", reset($assoc), "\n";
uasort($assoc, fn($a, $b) => $a % 100 <=> $b % 100);
echo "uasort stable: ", md5(implode(",", array_slice(array_keys($assoc), 0, 500))), "\n";
$a1 = array_slice($ints, 0, 50000);
$a2 = range(50000, 1);
array_multisort($a1, SORT_DESC, $a2);
echo "multisort: ", $a1[0], " ", $a2[0], "\n";
$floats = array_map(fn($x) => $x / 3, array_slice($ints, 0, 100000));
sort($floats);
echo "floats: ", $floats[0], " ", round($floats[99999], 3), "\n";
$mixed = [10, "9", "abc", 1.5, true, null, "10", [1], "1e1"];
sort($mixed);
echo "mixed: ", json_encode($mixed), "\n";
