<?php
// A large array/object graph: build records and objects that point at each
// other, index them, sort them several ways, walk and tear down parts.
// Prints one checksum line; the benchmark compares it across allocators.
ini_set("memory_limit", "2G");

final class Node {
    public int $id;
    public string $name;
    public float $score;
    public array $tags = [];
    public ?Node $parent = null;
    public array $children = [];
    public function __construct(int $id, string $name, float $score) {
        $this->id = $id; $this->name = $name; $this->score = $score;
    }
}

$n = 120000;
$seed = 7;
$rand = function () use (&$seed) {
    $seed = ($seed * 1103515245 + 12345) & 0x7fffffff;
    return $seed;
};

$nodes = [];
for ($i = 0; $i < $n; $i++) {
    $node = new Node($i, 'node-' . dechex($rand()), ($rand() % 100000) / 7.0);
    $k = $rand() % 4;
    for ($t = 0; $t < $k; $t++) $node->tags[] = 't' . ($rand() % 50);
    if ($i > 0) {
        $p = $nodes[$rand() % $i];
        $node->parent = $p;
        $p->children[] = $node;
    }
    $nodes[] = $node;
}

// Records as nested arrays, plus indexes by name and by tag.
$records = [];
$byName = [];
$byTag = [];
foreach ($nodes as $node) {
    $rec = ['id' => $node->id, 'name' => $node->name, 'score' => $node->score,
            'depth' => 0, 'kids' => count($node->children), 'meta' => ['tags' => $node->tags]];
    $records[] = $rec;
    $byName[$node->name] = $node->id;
    foreach ($node->tags as $t) $byTag[$t][] = $node->id;
}

// Depths through the parent links.
foreach ($nodes as $node) {
    $d = 0;
    for ($p = $node->parent; $p !== null && $d < 64; $p = $p->parent) $d++;
    $records[$node->id]['depth'] = $d;
}

usort($records, fn($a, $b) => $b['score'] <=> $a['score'] ?: $a['id'] <=> $b['id']);
$top = array_slice($records, 0, 10);
usort($records, fn($a, $b) => strcmp($a['name'], $b['name']));
$first = $records[0]['name'];
ksort($byName);
$sortedTags = array_map(fn($ids) => count($ids), $byTag);
arsort($sortedTags);

// Group, filter, map.
$groups = [];
foreach ($records as $rec) $groups[$rec['depth']][] = $rec['score'];
$stats = [];
foreach ($groups as $depth => $scores) {
    sort($scores);
    $stats[$depth] = [count($scores), $scores[intdiv(count($scores), 2)], array_sum($scores)];
}
$filtered = array_filter($records, fn($r) => $r['kids'] > 1);
$mapped = array_map(fn($r) => $r['id'] * 2 + $r['kids'], $filtered);

// Tear down half of the graph and rebuild it.
for ($i = 0; $i < $n; $i += 2) {
    $nodes[$i]->children = [];
    $nodes[$i]->tags = array_reverse($nodes[$i]->tags);
}
$copy = [];
foreach ($nodes as $node) $copy[$node->id % 1000][] = $node->name;
unset($records, $filtered);

$sum = 0;
foreach ($stats as $d => $s) $sum += $s[0] * ($d + 1);
echo "graph ", md5(json_encode([$top[0]['id'], $first, array_key_first($sortedTags), $sum,
    array_sum($mapped), count($copy), count($byName)])), "\n";
