<?php
// Sane relations between the memory figures. The numbers themselves differ
// by allocator by design, so only "ok <check>" lines are printed; a failed
// check prints "FAIL <check>: <figures>".
function check(string $what, bool $ok, array $figures = []): void {
    if ($ok) {
        echo "ok $what\n";
    } else {
        echo "FAIL $what: ", json_encode($figures), "\n";
    }
}
function figures(): array {
    return [
        'usage' => memory_get_usage(),
        'real' => memory_get_usage(true),
        'peak' => memory_get_peak_usage(),
        'real_peak' => memory_get_peak_usage(true),
    ];
}
$mb = 1 << 20;

$f = figures();
check("usage figures are positive ints", is_int($f['usage']) && $f['usage'] > 0 && is_int($f['real']) && $f['real'] > 0, $f);
check("peak >= usage", $f['peak'] >= $f['usage'], $f);
check("real peak >= real usage", $f['real_peak'] >= $f['real'], $f);
check("real usage >= usage", $f['real'] >= $f['usage'], $f);

// A 20 MiB string shows up in every figure.
$base = figures();
$s = str_repeat("x", 20 * $mb);
$with = figures();
check("usage grows by the string", $with['usage'] - $base['usage'] >= 20 * $mb, [$base, $with]);
check("usage grows by not much more", $with['usage'] - $base['usage'] < 21 * $mb, [$base, $with]);
check("real usage grows by the string", $with['real'] - $base['real'] >= 20 * $mb, [$base, $with]);
check("peak follows", $with['peak'] >= $with['usage'] && $with['real_peak'] >= $with['real'], $with);
unset($s);
$after = figures();
// (less a little: the figures array $with is alive now, not when measured)
check("usage drops after unset", $with['usage'] - $after['usage'] >= 20 * $mb - 4096, [$with, $after]);
check("usage back near the baseline", abs($after['usage'] - $base['usage']) < 64 * 1024, [$base, $after]);
check("real usage drops after unset of a huge string", $with['real'] - $after['real'] >= 20 * $mb, [$with, $after]);
check("peak kept after unset", $after['peak'] >= $with['usage'] && $after['real_peak'] >= $with['real'], [$with, $after]);

// memory_reset_peak_usage() lowers both peaks to the current usage.
memory_reset_peak_usage();
$reset = figures();
check("reset lowers the peak", $reset['peak'] < $after['peak'] - 19 * $mb, [$after, $reset]);
check("reset lowers the real peak", $reset['real_peak'] < $after['real_peak'] - 19 * $mb, [$after, $reset]);
check("peak >= usage after reset", $reset['peak'] >= $reset['usage'] && $reset['real_peak'] >= $reset['real'], $reset);
check("peak close to usage after reset", $reset['peak'] - $reset['usage'] < 64 * 1024, $reset);
$t = str_repeat("y", 5 * $mb);
unset($t);
$again = figures();
check("peak rises again after reset", $again['peak'] - $reset['peak'] >= 5 * $mb, [$reset, $again]);

// A million-element array: at least 16 bytes per element, released by unset.
$base = figures();
$a = range(1, 1000000);
$with = figures();
check("array of 1e6 ints costs >= 16 MB", $with['usage'] - $base['usage'] >= 16000000, [$base, $with]);
check("array of 1e6 ints costs < 40 MB", $with['usage'] - $base['usage'] < 40000000, [$base, $with]);
unset($a);
$after = figures();
check("array memory released", abs($after['usage'] - $base['usage']) < 64 * 1024, [$base, $after]);

// Many small blocks: usage grows, and comes back after unset. The first
// round grows PHP's object store for good, so the second one is measured.
function make_objects(): array {
    $objs = [];
    for ($i = 0; $i < 200000; $i++) {
        $o = new stdClass;
        $o->v = "v$i";
        $objs[] = $o;
    }
    return $objs;
}
$objs = make_objects();
unset($objs);
$base = figures();
$objs = make_objects();
$with = figures();
check("small objects cost >= 200000 * 40 bytes", $with['usage'] - $base['usage'] >= 200000 * 40, [$base, $with]);
unset($objs);
$after = figures();
check("small objects released", $after['usage'] - $base['usage'] < 256 * 1024, [$base, $after]);
$freed = gc_mem_caches();
check("gc_mem_caches() returns an int >= 0", is_int($freed) && $freed >= 0, [$freed]);
$post = figures();
check("gc_mem_caches() does not raise usage", $post['usage'] <= $after['usage'] + 4096, [$after, $post]);

// Limit: ini_get reflects ini_set, and a limit below usage is refused.
$old = ini_get('memory_limit');
$big = str_repeat("z", 16 * $mb);
$r = @ini_set('memory_limit', '4M');
check("limit below usage refused", $r === false && ini_get('memory_limit') === $old, [$r, ini_get('memory_limit')]);
$r = ini_set('memory_limit', '900M');
check("limit above usage accepted", $r === $old && ini_get('memory_limit') === '900M', [$r, ini_get('memory_limit')]);
unset($big);

// Fibers: a fiber's allocations count in the same heap.
$base = figures();
$fiber = new Fiber(function () use ($mb) {
    $inside = str_repeat("f", 10 * $mb);
    Fiber::suspend(memory_get_usage());
    return strlen($inside);
});
$during = $fiber->start();
check("fiber allocation visible outside", $during - $base['usage'] >= 10 * $mb, [$base, $during]);
$fiber->resume();
check("fiber returned", $fiber->getReturn() === 10 * $mb);
unset($fiber);
$after = figures();
check("fiber memory released", $after['usage'] - $base['usage'] < 64 * 1024, [$base, $after]);
