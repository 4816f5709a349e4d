<?php
// A mix: SPL structures, iterators, Random, dates, sprintf, references.
$heap = new SplMinHeap();
mt_srand(3);
for ($i = 0; $i < 200000; $i++) {
    $heap->insert(mt_rand());
}
$prev = -1;
$ordered = true;
for ($i = 0; $i < 1000; $i++) {
    $v = $heap->extract();
    $ordered = $ordered && $v >= $prev;
    $prev = $v;
}
echo "heap: ", count($heap), " ordered=", var_export($ordered, true), "\n";
$dll = new SplDoublyLinkedList();
for ($i = 0; $i < 200000; $i++) {
    $dll->push($i);
}
for ($i = 0; $i < 100000; $i++) {
    $dll->shift();
}
echo "dll: ", count($dll), " ", $dll->bottom(), "\n";
$q = new SplQueue();
for ($i = 0; $i < 100000; $i++) {
    $q->enqueue([$i]);
}
echo "queue: ", $q->dequeue()[0], " ", count($q), "\n";
$pq = new SplPriorityQueue();
foreach (range(1, 50000) as $i) {
    $pq->insert("v$i", $i % 977);
}
echo "pqueue: ", $pq->extract(), "\n";
$it = new LimitIterator(new InfiniteIterator(new ArrayIterator([1, 2, 3])), 0, 100000);
echo "iterators: ", array_sum(iterator_to_array($it, false)), "\n";
$rng = new Random\Randomizer(new Random\Engine\Mt19937(1234));
echo "randomizer: ", $rng->getInt(1, 1000000), " ", bin2hex($rng->getBytes(8)), " ", implode(",", $rng->shuffleArray(range(1, 10))), "\n";
$d = new DateTimeImmutable('2024-02-28 12:00:00', new DateTimeZone('UTC'));
$dates = [];
for ($i = 0; $i < 10000; $i++) {
    $dates[] = $d->modify("+$i day")->format('Y-m-d');
}
echo "dates: ", $dates[1], " ", end($dates), "\n";
$ref = [];
$r = &$ref;
for ($i = 0; $i < 10000; $i++) {
    $r['next'] = [];
    $r = &$r['next'];
}
unset($r);
$depth = 0;
for ($p = $ref; isset($p['next']); $p = $p['next']) {
    $depth++;
}
echo "reference chain: ", $depth, "\n";
$csv = '';
for ($i = 0; $i < 20000; $i++) {
    $csv .= "$i,\"name $i\",\"a,b\"\n";
}
$rows = array_map('str_getcsv', explode("\n", trim($csv)));
echo "csv: ", count($rows), " ", $rows[19999][1], " ", $rows[0][2], "\n";
$packed = pack("N*", ...range(1, 10000));
echo "pack: ", strlen($packed), " ", array_sum(unpack("N*", $packed)), "\n";
echo "sprintf: ", sprintf("%'*10s|%-10s|%u|%e", "right", "left", 3000000000, 12345.678), "\n";
echo "array functions: ", json_encode(array_count_values(array_map(fn($x) => $x % 5, range(1, 1000)))), "\n";
$str = implode("&", array_map(fn($i) => "k$i=v$i", range(1, 900)));
parse_str($str, $out);
echo "parse_str: ", count($out), "\n";
echo "http_build_query: ", md5(http_build_query(array_fill_keys(array_map(fn($i) => "p$i", range(1, 5000)), "val ue"))), "\n";
echo "gc_mem_caches: ", gettype(gc_mem_caches()), "\n";
