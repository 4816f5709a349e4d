<?php
// Fibers: ping-pong, many live fibers, exceptions across fibers, nesting.
$fiber = new Fiber(function (string $x): string {
    $acc = $x;
    for ($i = 0; $i < 10000; $i++) {
        $acc .= Fiber::suspend(strlen($acc));
    }
    return md5($acc);
});
$len = $fiber->start("start");
for ($i = 0; $i < 10000; $i++) {
    $len = $fiber->resume(str_repeat("r", $i % 7));
}
echo "ping-pong: ", $fiber->getReturn(), "\n";

$fibers = [];
for ($i = 0; $i < 2000; $i++) {
    $f = new Fiber(function (int $id): int {
        $data = array_fill(0, 100, $id);
        $more = Fiber::suspend($id);
        $data[] = $more;
        return array_sum($data);
    });
    $f->start($i);
    $fibers[] = $f;
}
$total = 0;
foreach ($fibers as $i => $f) {
    $f->resume($i);
    $total += $f->getReturn();
}
echo "many fibers: ", count($fibers), " ", $total, "\n";
unset($fibers, $f);

$thrower = new Fiber(function () {
    Fiber::suspend(1);
    throw new LogicException("from fiber");
});
$thrower->start();
try {
    $thrower->resume();
} catch (LogicException $e) {
    echo "caught: ", $e->getMessage(), " terminated=", var_export($thrower->isTerminated(), true), "\n";
}

$into = new Fiber(function () {
    try {
        Fiber::suspend();
    } catch (Exception $e) {
        return "fiber caught " . $e->getMessage();
    }
});
$into->start();
$into->throw(new Exception("thrown in"));
echo $into->getReturn(), "\n";

$outer = new Fiber(function () {
    $inner = new Fiber(function () {
        $v = Fiber::suspend('inner-1');
        return "inner got $v";
    });
    $a = $inner->start();
    $b = Fiber::suspend($a);
    $inner->resume($b);
    return $inner->getReturn();
});
$first = $outer->start();
$outer->resume("$first-back");
echo "nested: ", $outer->getReturn(), "\n";

// An unfinished fiber is destroyed: its finally blocks run.
$log = [];
$unfinished = new Fiber(function () use (&$log) {
    try {
        $big = str_repeat("u", 1 << 20);
        Fiber::suspend();
    } finally {
        $log[] = "finally in destroyed fiber";
    }
});
$unfinished->start();
unset($unfinished);
echo implode(",", $log), "\n";
