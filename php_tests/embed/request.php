<?php
// Executed by embed_requests.c with php_execute_script(), once per request.
// Leaves big data, objects in cycles and statics alive: the request end
// must release all of it.
$GLOBALS['big'] = str_repeat("e", 12 << 20);
$GLOBALS['arr'] = range(1, 300000);
class EmbedNode { public $peer; public $data; }
for ($i = 0; $i < 20000; $i++) {
    $a = new EmbedNode;
    $b = new EmbedNode;
    $a->peer = $b;
    $b->peer = $a;           // a cycle nobody collects before the request ends
    $a->data = "n$i";
}
function remember(string $s): int { static $kept = []; $kept[] = $s; return count($kept); }
for ($i = 0; $i < 1000; $i++) {
    remember(str_repeat("s", 100) . $i);
}
$f = new Fiber(function () { $x = str_repeat("f", 1 << 20); Fiber::suspend(); });
$f->start();                 // left suspended
echo "request.php: ", strlen($GLOBALS['big']), " ", array_sum($GLOBALS['arr']), " ", remember("last"), "\n";
