<?php
// Objects, reference cycles collected by gc_collect_cycles(), weak references.
class Node {
    public ?Node $next = null;
    public array $children = [];
    public function __construct(public int $id, public string $label = '') {}
}

gc_collect_cycles();
$before = gc_status()['collected'];

// Rings of objects that only reference each other.
for ($r = 0; $r < 2000; $r++) {
    $first = new Node(0);
    $prev = $first;
    for ($i = 1; $i < 20; $i++) {
        $n = new Node($i, str_repeat("n", $i));
        $prev->next = $n;
        $prev = $n;
    }
    $prev->next = $first;
}
unset($first, $prev, $n);
$collected = gc_collect_cycles();
echo "ring objects collected: ", $collected, "\n";

// Self-referencing arrays.
for ($i = 0; $i < 10000; $i++) {
    $arr = ['i' => $i];
    $arr['self'] = &$arr;
    unset($arr);
}
echo "array cycles collected: ", gc_collect_cycles(), "\n";

// Parent/child trees with back references.
$root = new Node(0, 'root');
for ($i = 1; $i <= 50000; $i++) {
    $child = new Node($i, "c$i");
    $child->children[] = $root;
    $root->children[] = $child;
}
echo "tree children: ", count($root->children), "\n";
unset($root, $child);
echo "tree collected: ", gc_collect_cycles(), "\n";

// Destructors run in a defined order.
class Noisy {
    public static array $log = [];
    public function __construct(public string $name) {}
    public function __destruct() { self::$log[] = $this->name; }
}
$x = new Noisy('a');
$y = new Noisy('b');
unset($y);
$x = null;
echo "destructed: ", implode(",", Noisy::$log), "\n";

// WeakMap and WeakReference.
$wm = new WeakMap();
$objs = [];
for ($i = 0; $i < 10000; $i++) {
    $o = new stdClass;
    $o->i = $i;
    $wm[$o] = str_repeat("w", 100);
    if ($i % 2) {
        $objs[] = $o;
    }
}
unset($o);
echo "weakmap: ", count($wm), "\n";
$ref = WeakReference::create($objs[0]);
echo "weakref alive: ", var_export($ref->get() !== null, true), "\n";
$objs = [];
echo "weakmap after: ", count($wm), " weakref alive: ", var_export($ref->get() !== null, true), "\n";

// Clone, SplObjectStorage, ArrayObject.
$storage = new SplObjectStorage();
$proto = new Node(7, 'proto');
$proto->children = range(1, 100);
for ($i = 0; $i < 20000; $i++) {
    $c = clone $proto;
    $c->id = $i;
    $storage[$c] = $i;
}
$sum = 0;
foreach ($storage as $obj) {
    $sum += $obj->id + count($obj->children);
}
echo "storage: ", count($storage), " ", $sum, "\n";
$ao = new ArrayObject(range(1, 100000));
echo "arrayobject: ", count($ao), " ", $ao[99999], "\n";
unset($storage, $ao);
$status = gc_status();
echo "gc runs happened: ", var_export($status['runs'] > 0, true), "\n";
echo "gc collected total: ", $status['collected'] - $before, "\n";
