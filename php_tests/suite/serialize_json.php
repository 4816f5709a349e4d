<?php
// serialize/unserialize, json_encode/json_decode, var_export on big structures.
$data = [];
for ($i = 0; $i < 60000; $i++) {
    $data[] = [
        'id' => $i,
        'name' => "item $i",
        'tags' => ["t" . ($i % 10), "u" . ($i % 7)],
        'price' => $i / 4,
        'active' => $i % 3 === 0,
        'meta' => $i % 5 ? null : ['nested' => ['deep' => str_repeat("d", $i % 30)]],
    ];
}
$ser = serialize($data);
echo "serialize: ", strlen($ser), " ", md5($ser), "\n";
$back = unserialize($ser);
echo "unserialize: ", $back === $data ? "equal" : "different", "\n";
unset($back);

$json = json_encode($data);
echo "json_encode: ", strlen($json), " ", md5($json), "\n";
$decoded = json_decode($json, true);
echo "json_decode assoc: ", $decoded === $data ? "equal" : "different", "\n";
$objs = json_decode($json);
echo "json_decode objects: ", count($objs), " ", $objs[59999]->name, " ", $objs[5]->meta->nested->deep, "\n";
echo "json pretty: ", md5(json_encode(array_slice($data, 0, 1000), JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES)), "\n";
unset($objs, $decoded, $json);

class Point {
    public function __construct(public int $x = 0, public int $y = 0, private array $hist = []) {}
    public function __serialize(): array { return [$this->x, $this->y, count($this->hist)]; }
    public function __unserialize(array $d): void { [$this->x, $this->y] = $d; $this->hist = array_fill(0, $d[2], 0); }
}
$points = [];
for ($i = 0; $i < 20000; $i++) {
    $points[] = new Point($i, -$i, range(0, $i % 10));
}
$ps = serialize($points);
echo "objects serialized: ", strlen($ps), " ", md5($ps), "\n";
$pb = unserialize($ps);
echo "objects back: ", count($pb), " ", $pb[19999]->x, " ", serialize($pb) === $ps ? "stable" : "unstable", "\n";

$shared = new stdClass;
$shared->v = 1;
$refs = ['a' => $shared, 'b' => $shared];
$rb = unserialize(serialize($refs));
$rb['a']->v = 2;
echo "shared identity kept: ", $rb['b']->v, "\n";

echo "var_export: ", md5(var_export(array_slice($data, 0, 5000), true)), "\n";
echo "bad json: ", var_export(json_decode("{bad"), true), " ", json_last_error_msg(), "\n";
echo "bad serialize: ", var_export(@unserialize("a:1:{i:0;"), true), "\n";
try {
    json_decode(str_repeat("[", 600) . str_repeat("]", 600), true, 512, JSON_THROW_ON_ERROR);
} catch (JsonException $e) {
    echo "json depth: ", $e->getMessage(), "\n";
}
