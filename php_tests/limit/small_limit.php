<?php
// memory_limit: 2M
// A tight limit, reached by small blocks.
echo "limit ", ini_get('memory_limit'), "\n";
$objs = [];
while (true) {
    $objs[] = [str_repeat("p", 200), new stdClass];
}
