--TEST--
Fibers: allocations inside fibers are counted and released; a limit error inside a fiber
--INI--
memory_limit=64M
--FILE--
<?php
$base = memory_get_usage();
$fibers = [];
for ($i = 0; $i < 100; $i++) {
    $f = new Fiber(function (int $n) {
        $data = str_repeat("f", 100000 + $n);
        $x = Fiber::suspend(strlen($data));
        return strlen($data) + $x;
    });
    $fibers[] = [$f, $f->start($i)];
}
var_dump(memory_get_usage() - $base >= 100 * 100000);
$sum = 0;
foreach ($fibers as [$f, $len]) { $f->resume(1); $sum += $f->getReturn() - $len; }
var_dump($sum);
unset($fibers, $f);
var_dump(memory_get_usage() - $base < 65536);
register_shutdown_function(function () { echo "shutdown\n"; });
$hog = new Fiber(function () {
    $all = [];
    while (true) { $all[] = str_repeat("h", 10000); }
});
$hog->start();
echo "not reached\n";
?>
--EXPECTF--
bool(true)
int(100)
bool(true)

Fatal error: Allowed memory size of 67108864 bytes exhausted (tried to allocate %d bytes) in %s on line 21
shutdown
