<?php
// Every hash algorithm: one-shot, incremental with copies, HMAC. The
// contexts are request memory; some (xxh3, xxh128) are declared 64-byte
// aligned and initialised with aligned SSE stores.
$small = "abc";
$big = str_repeat("The quick brown fox jumps over the lazy dog. ", 50000);
foreach (hash_algos() as $algo) {
    $one = hash($algo, $small) . " " . hash($algo, $big);
    $ctx = hash_init($algo);
    hash_update($ctx, substr($big, 0, 1000));
    $copy = hash_copy($ctx);
    hash_update($ctx, substr($big, 1000));
    $inc = hash_final($ctx);
    hash_update($copy, "tail");
    $copied = hash_final($copy);
    echo str_pad($algo, 12), " ", md5($one), " ", $inc === hash($algo, $big) ? "incremental ok" : "incremental BROKEN", " ", substr($copied, 0, 16), "\n";
}
foreach (hash_hmac_algos() as $algo) {
    echo "hmac ", str_pad($algo, 12), " ", substr(hash_hmac($algo, $big, "secret key"), 0, 32), "\n";
}
// Many live contexts at once.
$contexts = [];
foreach (range(1, 2000) as $i) {
    $c = hash_init(hash_algos()[$i % count(hash_algos())]);
    hash_update($c, "item $i");
    $contexts[] = $c;
}
$all = '';
foreach ($contexts as $c) {
    $all .= hash_final($c);
}
echo "live contexts: ", strlen($all), " ", md5($all), "\n";
echo "pbkdf2: ", hash_pbkdf2("sha256", "password", "salt", 1000, 32), "\n";
echo "crc32: ", crc32($big), " md5: ", md5($big), " sha1: ", sha1($big), "\n";
