<?php
// memory_limit: 32M
// The limit lowered at run time, then exceeded.
$keep = str_repeat("k", 1 << 20);
var_dump(ini_set('memory_limit', '24M'));
var_dump(ini_get('memory_limit'));
$parts = [];
while (true) {
    $parts[] = str_repeat("q", 1 << 18);
}
