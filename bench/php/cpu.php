<?php
// CPU-bound engine work in the spirit of php-src's Zend/bench.php: loops,
// calls, recursion, small arrays, string concatenation, numeric kernels.
// Prints one checksum line; the benchmark compares it across allocators.

function loops($n) {
    $a = 0;
    for ($i = 0; $i < $n; $i++) { $a += $i ^ ($i >> 3); }
    return $a;
}

function tiny($x) { return $x + 1; }

function calls($n) {
    $s = 0;
    for ($i = 0; $i < $n; $i++) { $s = tiny($s); }
    return $s;
}

function mandel($w, $h) {
    $count = 0;
    for ($y = 0; $y < $h; $y++) {
        for ($x = 0; $x < $w; $x++) {
            $cr = 2.5 * $x / $w - 2.0; $ci = 2.0 * $y / $h - 1.0;
            $zr = 0.0; $zi = 0.0; $k = 0;
            while ($k < 50 && $zr * $zr + $zi * $zi < 4.0) {
                $t = $zr * $zr - $zi * $zi + $cr;
                $zi = 2.0 * $zr * $zi + $ci;
                $zr = $t;
                $k++;
            }
            $count += $k;
        }
    }
    return $count;
}

function ack($m, $n) {
    if ($m == 0) return $n + 1;
    if ($n == 0) return ack($m - 1, 1);
    return ack($m - 1, ack($m, $n - 1));
}

function fib($n) { return $n < 2 ? $n : fib($n - 1) + fib($n - 2); }

function sieve($n) {
    $flags = array_fill(0, $n + 1, true);
    $count = 0;
    for ($i = 2; $i <= $n; $i++) {
        if ($flags[$i]) {
            $count++;
            for ($k = $i + $i; $k <= $n; $k += $i) { $flags[$k] = false; }
        }
    }
    return $count;
}

function hashes($n) {
    $h = [];
    for ($i = 0; $i < $n; $i++) { $h[dechex($i)] = $i; }
    $c = 0;
    for ($i = $n; $i > 0; $i--) { if (isset($h[(string)$i])) $c++; }
    return $c;
}

function heapsort_arr($n) {
    $seed = 42;
    $a = [];
    for ($i = 0; $i < $n; $i++) { $seed = ($seed * 1103515245 + 12345) & 0x7fffffff; $a[] = $seed; }
    $heapify = function (&$a, $i, $len) {
        while (true) {
            $l = 2 * $i + 1; $r = $l + 1; $m = $i;
            if ($l < $len && $a[$l] > $a[$m]) $m = $l;
            if ($r < $len && $a[$r] > $a[$m]) $m = $r;
            if ($m == $i) return;
            $t = $a[$i]; $a[$i] = $a[$m]; $a[$m] = $t; $i = $m;
        }
    };
    for ($i = intdiv($n, 2) - 1; $i >= 0; $i--) $heapify($a, $i, $n);
    for ($end = $n - 1; $end > 0; $end--) {
        $t = $a[0]; $a[0] = $a[$end]; $a[$end] = $t;
        $heapify($a, 0, $end);
    }
    return $a[0] + $a[$n - 1];
}

function matrix($n) {
    $a = []; $b = [];
    for ($i = 0; $i < $n; $i++) for ($j = 0; $j < $n; $j++) { $a[$i][$j] = $i + $j; $b[$i][$j] = $i - $j; }
    $c = [];
    for ($i = 0; $i < $n; $i++) {
        $row = [];
        for ($j = 0; $j < $n; $j++) {
            $s = 0;
            for ($k = 0; $k < $n; $k++) $s += $a[$i][$k] * $b[$k][$j];
            $row[] = $s;
        }
        $c[] = $row;
    }
    return $c[$n - 1][$n - 1];
}

function strcat_loop($n) {
    $s = '';
    for ($i = 0; $i < $n; $i++) { $s .= "item $i, "; }
    return strlen($s);
}

$r = [];
for ($round = 0; $round < 4; $round++) {
$r[] = loops(3000000);
$r[] = calls(2000000);
$r[] = mandel(240, 120);
$r[] = ack(2, 300);
$r[] = fib(25);
$r[] = sieve(600000);
$r[] = hashes(200000);
$r[] = heapsort_arr(60000);
$r[] = matrix(70);
$r[] = strcat_loop(400000);
}
echo "cpu ", md5(implode(',', $r)), "\n";
