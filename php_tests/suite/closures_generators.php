<?php
// Closures (bound, static, capturing), first-class callables, generators.
$counter = function () {
    static $n = 0;
    return ++$n;
};
for ($i = 0; $i < 1000; $i++) {
    $counter();
}
echo "static counter: ", $counter(), "\n";

$adders = [];
for ($i = 0; $i < 100000; $i++) {
    $adders[] = fn($x) => $x + $i;
}
$sum = 0;
foreach ($adders as $k => $f) {
    $sum += $f($k);
}
echo "arrow closures: ", count($adders), " ", $sum, "\n";
unset($adders);

class Box {
    private array $items = [];
    public function add(string $s): static { $this->items[] = $s; return $this; }
    public function count(): int { return count($this->items); }
}
$peek = function () { return count($this->items); };
$box = (new Box)->add("a")->add("b")->add("c");
echo "bound closure: ", Closure::bind($peek, $box, Box::class)(), "\n";
$fc = strlen(...);
$m = $box->count(...);
echo "first-class: ", $fc("hello"), " ", $m(), "\n";

$compose = fn(callable ...$fs) => fn($x) => array_reduce($fs, fn($acc, $f) => $f($acc), $x);
$pipeline = $compose('strrev', 'strtoupper', fn($s) => str_repeat($s, 3));
echo "compose: ", $pipeline("abc"), "\n";

function numbers(int $n): Generator {
    for ($i = 0; $i < $n; $i++) {
        $cmd = yield $i => $i * $i;
        if ($cmd === 'skip') {
            $i += 10;
        }
    }
    return "done after $n";
}
$gen = numbers(1000000);
$total = 0;
foreach ($gen as $k => $v) {
    $total += $v - $k;
}
echo "generator: ", $total, " ", $gen->getReturn(), "\n";

$g = numbers(100);
$seen = [];
foreach ($g as $k => $v) {
    $seen[] = $k;
    if ($k === 5) {
        $g->send('skip');
    }
}
echo "send: ", implode(",", array_slice($seen, 0, 10)), "\n";

function inner() { yield 1; yield 2; return 3; }
function outer() { $r = yield from inner(); yield $r; yield from ['a' => 4, 'b' => 5]; }
echo "yield from: ", implode(",", iterator_to_array(outer(), false)), "\n";

function lines(): Generator {
    for ($i = 0; $i < 200000; $i++) {
        yield str_repeat("g", $i % 100) . $i;
    }
}
$h = hash_init('md5');
foreach (lines() as $line) {
    hash_update($h, $line);
}
echo "generator strings: ", hash_final($h), "\n";

// Many live generators at once.
$gens = [];
for ($i = 0; $i < 20000; $i++) {
    $gens[] = (function () use ($i) { yield $i; yield $i * 2; })();
}
$s = 0;
foreach ($gens as $gg) {
    foreach ($gg as $v) {
        $s += $v;
    }
}
echo "live generators: ", $s, "\n";
try {
    $broken = (function () { yield 1; throw new RuntimeException("gen failed"); })();
    foreach ($broken as $v) {}
} catch (RuntimeException $e) {
    echo "generator exception: ", $e->getMessage(), "\n";
}
